/* store_test.c - the ledger's state transitions on a real LMDB in a temp
 * directory: issue, transfer, double spend (the error names the coin and
 * the transfer that spent it), atomic refusal, replay, exchange and
 * retired coins, payment claims, the reaper, and the audit (which must
 * also catch a state broken behind the store's back). */
#include <lmdb.h>
#include <sodium.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* clang-format off */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
/* clang-format on */

#include "ledger/client.h"
#include "ledger/query.h"
#include "ledger/store.h"
#include "service/uuid.h"

typedef struct fixture {
    char directory[64];
    kci_ledger_store *store;
    kci_wallet alice, bob, carol;
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    if (f == NULL) return -1;
    snprintf(f->directory, sizeof f->directory, "/tmp/kc-ledger-test-XXXXXX");
    if (mkdtemp(f->directory) == NULL) {
        free(f);
        return -1;
    }
    char error[512];
    if (kci_ledger_store_open(&f->store, f->directory, 64u << 20, error, sizeof error) != KC_OK) {
        fprintf(stderr, "%s\n", error);
        return -1;
    }
    crypto_sign_keypair(f->alice.public_key, f->alice.secret_key);
    crypto_sign_keypair(f->bob.public_key, f->bob.secret_key);
    crypto_sign_keypair(f->carol.public_key, f->carol.secret_key);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    kci_ledger_store_close(f->store);
    char command[128];
    snprintf(command, sizeof command, "rm -rf %s", f->directory);
    if (system(command) != 0) return -1;
    free(f);
    return 0;
}

/* Mints denominations to wallet; coins_out gets the coins. */
static void mint(fixture *f, const kci_wallet *wallet, const uint64_t *denominations,
                 uint32_t count, kci_ledger_coin *coins_out)
{
    kci_ledger_grant grant = {.denomination_count = count,
                              .denominations = (uint64_t *)denominations};
    memcpy(grant.to, wallet->public_key, 32);
    kci_ledger_batch batch;
    kci_ledger_outcome outcome = {0};
    uint8_t id[16];
    assert_int_equal(kci_ledger_batch_begin(&batch, f->store), 0);
    assert_int_equal(kci_ledger_apply_issue(&batch, &grant, id, coins_out, &outcome), 0);
    assert_int_equal(outcome.code, 0);
    assert_int_equal(kci_ledger_batch_commit(&batch), 0);
}

/* Applies a transfer (as the service does: denominations looked up,
 * signature verified) in its own batch; returns the outcome. */
static kci_ledger_outcome apply(fixture *f, kci_ledger_transfer *transfer)
{
    kci_ledger_outcome outcome = {0};
    MDB_txn *txn = NULL;
    assert_int_equal(kci_ledger_read_begin(f->store, &txn), 0);
    assert_int_equal(kci_ledger_fill_denominations(txn, f->store, transfer, &outcome), 0);
    mdb_txn_abort(txn);
    if (outcome.code != 0) return outcome;
    if (!kci_ledger_verify(transfer, transfer->from)) {
        outcome.code = KCI_LEDGER_CODE_BAD_SIGNATURE;
        return outcome;
    }
    kci_ledger_batch batch;
    assert_int_equal(kci_ledger_batch_begin(&batch, f->store), 0);
    int rc = transfer->kind == KCI_LEDGER_KIND_EXCHANGE
                 ? 0
                 : kci_ledger_apply_transfer(&batch, transfer, &outcome);
    assert_int_equal(rc, 0);
    assert_int_equal(kci_ledger_batch_commit(&batch), 0);
    return outcome;
}

static uint64_t balance(fixture *f, const kci_wallet *wallet)
{
    MDB_txn *txn = NULL;
    assert_int_equal(kci_ledger_read_begin(f->store, &txn), 0);
    uint64_t value = kci_ledger_balance_get(txn, f->store, wallet->public_key);
    mdb_txn_abort(txn);
    return value;
}

static json_t *audit(fixture *f)
{
    MDB_txn *txn = NULL;
    kci_ledger_outcome outcome = {0};
    assert_int_equal(kci_ledger_read_begin(f->store, &txn), 0);
    json_t *result = kci_ledger_audit(txn, f->store, &outcome);
    mdb_txn_abort(txn);
    assert_non_null(result);
    return result;
}

static void assert_audit_ok(fixture *f)
{
    json_t *result = audit(f);
    if (!json_is_true(json_object_get(result, "ok"))) {
        char *text = json_dumps(result, 0);
        fail_msg("audit failed: %s", text);
    }
    json_decref(result);
}

static void test_transfer_and_double_spend(void **state)
{
    fixture *f = *state;
    kci_ledger_coin coins[3];
    mint(f, &f->alice, (uint64_t[]){100, 50, 10}, 3, coins);
    assert_int_equal(balance(f, &f->alice), 160);
    kci_ledger_transfer first, again, stranger;
    assert_int_equal(kci_ledger_transfer_make(&first, &f->alice, f->bob.public_key, coins, 2),
                     KC_OK);
    char first_id[37], coin_text[37];
    kci_ledger_id_text(first_id, first.id);
    kci_ledger_outcome outcome = apply(f, &first);
    assert_int_equal(outcome.code, 0);
    assert_int_equal(balance(f, &f->alice), 10);
    assert_int_equal(balance(f, &f->bob), 150);
    /* The same transfer again: a harmless replay. */
    outcome = apply(f, &first);
    assert_int_equal(outcome.code, 0);
    assert_true(outcome.replayed);
    assert_int_equal(balance(f, &f->bob), 150);
    /* Alice spends coin 0 again, with the coin she still has: all refused. */
    kci_ledger_coin both[2] = {coins[0], coins[2]};
    assert_int_equal(kci_ledger_transfer_make(&again, &f->alice, f->carol.public_key, both, 2),
                     KC_OK);
    outcome = apply(f, &again);
    assert_int_equal(outcome.code, KCI_LEDGER_CODE_CONFLICT);
    kci_ledger_id_text(coin_text, coins[0].id);
    assert_non_null(strstr(outcome.message, coin_text));
    assert_non_null(strstr(outcome.message, first_id)); /* the transfer that spent it */
    assert_non_null(strstr(outcome.message, "double spend"));
    assert_int_equal(balance(f, &f->alice), 10); /* coin 2 did not move either */
    assert_int_equal(balance(f, &f->carol), 0);
    /* Carol, who never held it, cannot move Bob's coin. */
    assert_int_equal(kci_ledger_transfer_make(&stranger, &f->carol, f->alice.public_key, coins, 1),
                     KC_OK);
    outcome = apply(f, &stranger);
    assert_int_equal(outcome.code, KCI_LEDGER_CODE_CONFLICT);
    assert_non_null(strstr(outcome.message, "not owned"));
    kci_ledger_transfer_free(&first);
    kci_ledger_transfer_free(&again);
    kci_ledger_transfer_free(&stranger);
    assert_audit_ok(f);
}

static void test_refusals_change_nothing(void **state)
{
    fixture *f = *state;
    kci_ledger_coin coins[2];
    mint(f, &f->alice, (uint64_t[]){5, 5}, 2, coins);
    kci_ledger_transfer transfer;
    /* Signed by Bob's key for Alice's wallet: the signature does not verify. */
    assert_int_equal(kci_ledger_transfer_make(&transfer, &f->alice, f->bob.public_key, coins, 2),
                     KC_OK);
    assert_int_equal(kci_ledger_sign(&transfer, f->bob.secret_key), KC_OK);
    assert_int_equal(apply(f, &transfer).code, KCI_LEDGER_CODE_BAD_SIGNATURE);
    kci_ledger_transfer_free(&transfer);
    /* An unknown coin. */
    kci_ledger_coin ghost = {.denomination = 5};
    kci_uuid uuid;
    kci_uuid_v7(&uuid);
    memcpy(ghost.id, uuid.bytes, 16);
    assert_int_equal(kci_ledger_transfer_make(&transfer, &f->alice, f->bob.public_key, &ghost, 1),
                     KC_OK);
    kci_ledger_outcome outcome = apply(f, &transfer);
    assert_int_equal(outcome.code, KCI_LEDGER_CODE_NOT_FOUND);
    assert_non_null(strstr(outcome.message, "unknown coin"));
    kci_ledger_transfer_free(&transfer);
    /* An amount that is not what the coins are worth. */
    assert_int_equal(kci_ledger_transfer_make(&transfer, &f->alice, f->bob.public_key, coins, 2),
                     KC_OK);
    transfer.amount = 11;
    assert_int_equal(kci_ledger_sign(&transfer, f->alice.secret_key), KC_OK);
    assert_int_equal(apply(f, &transfer).code, KCI_LEDGER_CODE_BAD_REQUEST);
    /* The same id with other content: a reused id. */
    transfer.amount = 10;
    assert_int_equal(kci_ledger_sign(&transfer, f->alice.secret_key), KC_OK);
    assert_int_equal(apply(f, &transfer).code, 0);
    transfer.time_ms++;
    assert_int_equal(kci_ledger_sign(&transfer, f->alice.secret_key), KC_OK);
    assert_int_equal(apply(f, &transfer).code, KCI_LEDGER_CODE_CONFLICT);
    kci_ledger_transfer_free(&transfer);
    assert_int_equal(balance(f, &f->bob), 10);
    assert_audit_ok(f);
}

static void test_exchange_payment_reaper(void **state)
{
    fixture *f = *state;
    kci_ledger_coin coins[1], issued[2];
    mint(f, &f->alice, (uint64_t[]){100}, 1, coins);
    kci_ledger_transfer exchange;
    assert_int_equal(kci_ledger_exchange_make(&exchange, &f->alice, f->store->mint.public_key,
                                              coins, 1, (uint64_t[]){60, 40}, 2),
                     KC_OK);
    kci_ledger_outcome outcome = {0};
    MDB_txn *txn = NULL;
    assert_int_equal(kci_ledger_read_begin(f->store, &txn), 0);
    assert_int_equal(kci_ledger_fill_denominations(txn, f->store, &exchange, &outcome), 0);
    mdb_txn_abort(txn);
    assert_true(kci_ledger_verify(&exchange, f->alice.public_key));
    kci_ledger_batch batch;
    uint8_t issue_id[16];
    assert_int_equal(kci_ledger_batch_begin(&batch, f->store), 0);
    assert_int_equal(kci_ledger_apply_exchange(&batch, &exchange, issue_id, issued, &outcome), 0);
    assert_int_equal(outcome.code, 0);
    assert_int_equal(kci_ledger_batch_commit(&batch), 0);
    kci_ledger_transfer_free(&exchange);
    assert_int_equal(balance(f, &f->alice), 100);
    assert_int_equal(issued[0].denomination, 60);
    assert_audit_ok(f);
    /* The retired coin cannot move. */
    kci_ledger_transfer transfer;
    assert_int_equal(kci_ledger_transfer_make(&transfer, &f->alice, f->bob.public_key, coins, 1),
                     KC_OK);
    outcome = apply(f, &transfer);
    assert_int_equal(outcome.code, KCI_LEDGER_CODE_CONFLICT);
    kci_ledger_transfer_free(&transfer);
    /* Pay Bob 40; claim it for a request, once. */
    assert_int_equal(
        kci_ledger_transfer_make(&transfer, &f->alice, f->bob.public_key, &issued[1], 1), KC_OK);
    assert_int_equal(apply(f, &transfer).code, 0);
    struct {
        const uint8_t *payee;
        uint64_t price;
        const char *request;
        int code;
    } claims[] = {
        {f->carol.public_key, 40, "0190b6e2-5c1a-7d3e-9f00-000000000001", KCI_LEDGER_CODE_UNPAID},
        {f->bob.public_key, 41, "0190b6e2-5c1a-7d3e-9f00-000000000001", KCI_LEDGER_CODE_UNPAID},
        {f->bob.public_key, 40, "0190b6e2-5c1a-7d3e-9f00-000000000001", 0},
        {f->bob.public_key, 40, "0190b6e2-5c1a-7d3e-9f00-000000000001", 0}, /* the same request */
        {f->bob.public_key, 40, "0190b6e2-5c1a-7d3e-9f00-000000000002", KCI_LEDGER_CODE_CONFLICT},
    };
    for (size_t index = 0; index < sizeof claims / sizeof claims[0]; index++) {
        outcome = (kci_ledger_outcome){0};
        assert_int_equal(kci_ledger_batch_begin(&batch, f->store), 0);
        assert_int_equal(kci_ledger_apply_payment(&batch, transfer.id, claims[index].payee,
                                                  claims[index].price, claims[index].request,
                                                  &outcome),
                         0);
        assert_int_equal(kci_ledger_batch_commit(&batch), 0);
        if (outcome.code != claims[index].code)
            fail_msg("claim %zu: %d %s", index, outcome.code, outcome.message);
    }
    kci_ledger_transfer_free(&transfer);
    /* The reaper frees the retired coin's trail; the audit still passes. */
    uint32_t reaped = 0;
    assert_int_equal(kci_ledger_batch_begin(&batch, f->store), 0);
    assert_int_equal(kci_ledger_reap(&batch, 0, 64, &reaped), 0);
    assert_int_equal(kci_ledger_batch_commit(&batch), 0);
    assert_int_equal(reaped, 1);
    json_t *result = audit(f);
    assert_true(json_is_true(json_object_get(result, "ok")));
    assert_int_equal(json_integer_value(json_object_get(result, "coins_reaped")), 1);
    json_decref(result);
}

/* A second reference written behind the store's back: the audit sees a
 * coin with two owners. */
static void test_audit_catches_two_owners(void **state)
{
    fixture *f = *state;
    kci_ledger_coin coins[1];
    mint(f, &f->alice, (uint64_t[]){7}, 1, coins);
    MDB_txn *txn = NULL;
    assert_int_equal(mdb_txn_begin(f->store->env, NULL, 0, &txn), 0);
    MDB_val key = {.mv_size = 32, .mv_data = f->bob.public_key};
    MDB_val value = {.mv_size = 16, .mv_data = coins[0].id};
    assert_int_equal(mdb_put(txn, f->store->owned, &key, &value, 0), 0);
    assert_int_equal(mdb_txn_commit(txn), 0);
    json_t *result = audit(f);
    assert_false(json_is_true(json_object_get(result, "ok")));
    char *text = json_dumps(json_object_get(result, "problems"), 0);
    assert_non_null(strstr(text, "does not own"));
    assert_non_null(strstr(text, "a second owner"));
    free(text);
    json_decref(result);
}

/* Storage that fails mid-batch (a full LMDB map): the batch is aborted,
 * nothing of it is applied, and the ledger stays consistent. */
static void test_full_map_applies_nothing(void **state)
{
    (void)state;
    char directory[] = "/tmp/kc-ledger-full-XXXXXX";
    assert_non_null(mkdtemp(directory));
    kci_ledger_store *store = NULL;
    char error[512];
    assert_int_equal(kci_ledger_store_open(&store, directory, 1024 * 1024, error, sizeof error),
                     KC_OK);
    kci_wallet wallet;
    crypto_sign_keypair(wallet.public_key, wallet.secret_key);
    uint64_t denominations[KCI_LEDGER_DENOMINATIONS_MAX];
    for (int index = 0; index < KCI_LEDGER_DENOMINATIONS_MAX; index++)
        denominations[index] = 1;
    kci_ledger_grant grant = {.denomination_count = 256, .denominations = denominations};
    memcpy(grant.to, wallet.public_key, 32);
    static kci_ledger_coin coins[KCI_LEDGER_DENOMINATIONS_MAX];
    uint64_t committed_supply = 0;
    int rc = 0;
    for (int attempt = 0; attempt < 100 && rc == 0; attempt++) {
        kci_ledger_batch batch;
        kci_ledger_outcome outcome = {0};
        uint8_t id[16];
        assert_int_equal(kci_ledger_batch_begin(&batch, store), 0);
        rc = kci_ledger_apply_issue(&batch, &grant, id, coins, &outcome);
        if (rc == 0)
            rc = kci_ledger_batch_commit(&batch);
        else
            kci_ledger_batch_abort(&batch);
        if (rc == 0) committed_supply += 256;
    }
    assert_int_equal(rc, MDB_MAP_FULL);
    assert_true(committed_supply > 0);
    assert_int_equal(store->supply_total, committed_supply);
    fixture f = {.store = store};
    json_t *result = audit(&f);
    assert_true(json_is_true(json_object_get(result, "ok")));
    assert_int_equal(json_integer_value(json_object_get(result, "balances_total")),
                     committed_supply);
    json_decref(result);
    kci_ledger_store_close(store);
    char command[128];
    snprintf(command, sizeof command, "rm -rf %s", directory);
    assert_int_equal(system(command), 0);
}

/* Deleting ledger.lock must not let a second store open the directory. */
static void test_second_store_refused_without_its_lock_file(void **state)
{
    fixture *f = *state;
    char path[128], error[512] = "";
    snprintf(path, sizeof path, "%s/%s", f->directory, KCI_LEDGER_LOCK_FILE);
    assert_int_equal(unlink(path), 0);
    kci_ledger_store *second = NULL;
    assert_int_equal(kci_ledger_store_open(&second, f->directory, 64u << 20, error, sizeof error),
                     KC_ERR_EXISTS);
    assert_null(second);
    assert_non_null(strstr(error, "in use by process"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_transfer_and_double_spend, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refusals_change_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_exchange_payment_reaper, setup, teardown),
        cmocka_unit_test_setup_teardown(test_audit_catches_two_owners, setup, teardown),
        cmocka_unit_test(test_full_map_applies_nothing),
        cmocka_unit_test_setup_teardown(test_second_store_refused_without_its_lock_file, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
