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

#include "kingcobra/kingcobra.h"
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
    snprintf(f->directory, sizeof f->directory, "/tmp/kc-ledger-test-XXXXXX");
    if (f == NULL || mkdtemp(f->directory) == NULL) return -1;
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

/* What a client would see: the wire code of an outcome (0: applied). */
typedef struct seen {
    int code;
    bool replayed;
    char message[KCI_LEDGER_ERROR_BYTES_MAX];
} seen;

static seen seen_of(const kci_ledger_outcome *outcome)
{
    seen result = {.code = kci_ledger_result_code(outcome->result), .replayed = outcome->replayed};
    memcpy(result.message, outcome->message, sizeof result.message);
    return result;
}

/* One grant to wallet in its own batch (a mint of one grant). */
static kc_err mint_grant(kci_ledger_store *store, const kci_ledger_grant *grant,
                         kci_ledger_coin *coins_out, kci_ledger_outcome *outcome)
{
    kci_ledger_batch *batch = NULL;
    uint8_t id[1][16];
    kci_ledger_coin *coins[1] = {coins_out};
    assert_int_equal(kci_ledger_batch_begin(&batch, store), KC_OK);
    kc_err err = kci_ledger_apply_mint(batch, grant, 1, id, coins, outcome);
    if (err == KC_OK) return kci_ledger_batch_commit(batch);
    kci_ledger_batch_abort(batch);
    return err;
}

/* Mints denominations to wallet; coins_out gets the coins. */
static void mint(fixture *f, const kci_wallet *wallet, const uint64_t *denominations,
                 uint32_t count, kci_ledger_coin *coins_out)
{
    kci_ledger_grant grant = {.denomination_count = count,
                              .denominations = (uint64_t *)denominations};
    memcpy(grant.to, wallet->public_key, 32);
    kci_ledger_outcome outcome = {0};
    assert_int_equal(mint_grant(f->store, &grant, coins_out, &outcome), KC_OK);
    assert_int_equal(seen_of(&outcome).code, 0);
}

/* Applies a transfer (as the service does: denominations looked up,
 * signature verified) in its own batch; returns the outcome. */
static seen apply(fixture *f, kci_ledger_transfer *transfer)
{
    kci_ledger_outcome outcome = {0};
    kci_ledger_read *read = NULL;
    assert_int_equal(kci_ledger_read_begin(&read, f->store), KC_OK);
    assert_int_equal(kci_ledger_fill_denominations(read, transfer, &outcome), KC_OK);
    kci_ledger_read_end(read);
    if (outcome.result != KCI_LEDGER_OK) return seen_of(&outcome);
    if (!kci_ledger_verify(transfer, transfer->from)) {
        kci_ledger_refuse(&outcome, KCI_LEDGER_BAD_SIGNATURE);
        return seen_of(&outcome);
    }
    kci_ledger_batch *batch = NULL;
    assert_int_equal(kci_ledger_batch_begin(&batch, f->store), KC_OK);
    kc_err err = transfer->kind == KCI_LEDGER_KIND_EXCHANGE
                     ? KC_OK
                     : kci_ledger_apply_transfer(batch, transfer, &outcome);
    assert_int_equal(err, KC_OK);
    assert_int_equal(kci_ledger_batch_commit(batch), KC_OK);
    return seen_of(&outcome);
}

static uint64_t balance(fixture *f, const kci_wallet *wallet)
{
    kci_ledger_read *read = NULL;
    assert_int_equal(kci_ledger_read_begin(&read, f->store), KC_OK);
    uint64_t value = kci_ledger_balance_get(read, wallet->public_key);
    kci_ledger_read_end(read);
    return value;
}

static json_t *audit(fixture *f)
{
    kci_ledger_read *read = NULL;
    kci_ledger_outcome outcome = {0};
    assert_int_equal(kci_ledger_read_begin(&read, f->store), KC_OK);
    json_t *result = kci_ledger_audit(read, &outcome);
    kci_ledger_read_end(read);
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
    seen outcome = apply(f, &first);
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
    seen outcome = apply(f, &transfer);
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
    assert_int_equal(kci_ledger_exchange_make(&exchange, &f->alice,
                                              kci_ledger_store_mint_key(f->store), coins, 1,
                                              (uint64_t[]){60, 40}, 2),
                     KC_OK);
    kci_ledger_outcome exchanged = {0};
    kci_ledger_read *read = NULL;
    assert_int_equal(kci_ledger_read_begin(&read, f->store), KC_OK);
    assert_int_equal(kci_ledger_fill_denominations(read, &exchange, &exchanged), KC_OK);
    kci_ledger_read_end(read);
    assert_true(kci_ledger_verify(&exchange, f->alice.public_key));
    kci_ledger_batch *batch = NULL;
    uint8_t issue_id[16];
    assert_int_equal(kci_ledger_batch_begin(&batch, f->store), KC_OK);
    assert_int_equal(kci_ledger_apply_exchange(batch, &exchange, issue_id, issued, &exchanged),
                     KC_OK);
    assert_int_equal(seen_of(&exchanged).code, 0);
    assert_int_equal(kci_ledger_batch_commit(batch), KC_OK);
    kci_ledger_transfer_free(&exchange);
    assert_int_equal(balance(f, &f->alice), 100);
    assert_int_equal(issued[0].denomination, 60);
    assert_audit_ok(f);
    /* The retired coin cannot move. */
    kci_ledger_transfer transfer;
    assert_int_equal(kci_ledger_transfer_make(&transfer, &f->alice, f->bob.public_key, coins, 1),
                     KC_OK);
    seen outcome = apply(f, &transfer);
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
        kci_ledger_outcome claimed = {0};
        assert_int_equal(kci_ledger_batch_begin(&batch, f->store), KC_OK);
        assert_int_equal(kci_ledger_apply_payment(batch, transfer.id, claims[index].payee,
                                                  claims[index].price, claims[index].request,
                                                  &claimed),
                         KC_OK);
        assert_int_equal(kci_ledger_batch_commit(batch), KC_OK);
        outcome = seen_of(&claimed);
        if (outcome.code != claims[index].code)
            fail_msg("claim %zu: %d %s", index, outcome.code, outcome.message);
    }
    kci_ledger_transfer_free(&transfer);
    /* The reaper frees the retired coin's trail; the audit still passes. */
    uint32_t reaped = 0;
    assert_int_equal(kci_ledger_batch_begin(&batch, f->store), KC_OK);
    assert_int_equal(kci_ledger_reap(batch, 0, 64, &reaped), KC_OK);
    assert_int_equal(kci_ledger_batch_commit(batch), KC_OK);
    assert_int_equal(reaped, 1);
    json_t *result = audit(f);
    assert_true(json_is_true(json_object_get(result, "ok")));
    assert_int_equal(json_integer_value(json_object_get(result, "coins_reaped")), 1);
    json_decref(result);
}

/* A second reference written behind the store's back (the store closed,
 * LMDB opened by hand, then the store again): the audit sees a coin with
 * two owners. */
static void test_audit_catches_two_owners(void **state)
{
    fixture *f = *state;
    kci_ledger_coin coins[1];
    mint(f, &f->alice, (uint64_t[]){7}, 1, coins);
    kci_ledger_store_close(f->store);
    MDB_env *env = NULL;
    MDB_txn *txn = NULL;
    MDB_dbi owned;
    assert_int_equal(mdb_env_create(&env), 0);
    assert_int_equal(mdb_env_set_maxdbs(env, 16), 0);
    assert_int_equal(mdb_env_open(env, f->directory, 0, 0600), 0);
    assert_int_equal(mdb_txn_begin(env, NULL, 0, &txn), 0);
    assert_int_equal(mdb_dbi_open(txn, "owned", MDB_DUPSORT | MDB_DUPFIXED, &owned), 0);
    MDB_val key = {.mv_size = 32, .mv_data = f->bob.public_key};
    MDB_val value = {.mv_size = 16, .mv_data = coins[0].id};
    assert_int_equal(mdb_put(txn, owned, &key, &value, 0), 0);
    assert_int_equal(mdb_txn_commit(txn), 0);
    mdb_env_close(env);
    char error[512];
    assert_int_equal(kci_ledger_store_open(&f->store, f->directory, 64u << 20, error, sizeof error),
                     KC_OK);
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
    kc_err err = KC_OK;
    for (int attempt = 0; attempt < 100 && err == KC_OK; attempt++) {
        kci_ledger_outcome outcome = {0};
        err = mint_grant(store, &grant, coins, &outcome);
        if (err == KC_OK) committed_supply += 256;
    }
    assert_int_equal(err, KC_ERR_LIMIT); /* MDB_MAP_FULL */
    assert_non_null(strstr(kc_last_error(), "MDB_MAP_FULL"));
    assert_true(committed_supply > 0);
    kci_ledger_read *read = NULL;
    kci_ledger_counters counters;
    assert_int_equal(kci_ledger_read_begin(&read, store), KC_OK);
    assert_int_equal(kci_ledger_counters_get(read, &counters), KC_OK);
    kci_ledger_read_end(read);
    assert_int_equal(counters.supply_total, committed_supply);
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
