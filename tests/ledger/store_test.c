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

/* The refusals name their reason, not only their wire code: a double
 * spend, a coin never held, a retired coin and a reused id share 409. */
static void test_refusals_are_specific(void **state)
{
    fixture *f = *state;
    kci_ledger_coin coins[2], issued[1];
    mint(f, &f->alice, (uint64_t[]){3, 4}, 2, coins);
    kci_ledger_transfer first, again, stranger, exchange;
    assert_int_equal(kci_ledger_transfer_make(&first, &f->alice, f->bob.public_key, coins, 1),
                     KC_OK);
    kci_ledger_outcome outcome = {0};
    kci_ledger_batch *batch = NULL;
    assert_int_equal(kci_ledger_batch_begin(&batch, f->store), KC_OK);
    assert_int_equal(kci_ledger_apply_transfer(batch, &first, &outcome), KC_OK);
    assert_int_equal(outcome.result, KCI_LEDGER_OK);
    /* In the same batch: the same transfer replays, a second spend is refused. */
    outcome = (kci_ledger_outcome){0};
    assert_int_equal(kci_ledger_apply_transfer(batch, &first, &outcome), KC_OK);
    assert_true(outcome.replayed && outcome.result == KCI_LEDGER_OK);
    assert_int_equal(kci_ledger_transfer_make(&again, &f->alice, f->carol.public_key, coins, 1),
                     KC_OK);
    outcome = (kci_ledger_outcome){0};
    assert_int_equal(kci_ledger_apply_transfer(batch, &again, &outcome), KC_OK);
    assert_int_equal(outcome.result, KCI_LEDGER_DOUBLE_SPEND);
    assert_int_equal(kci_ledger_transfer_make(&stranger, &f->carol, f->alice.public_key, coins, 1),
                     KC_OK);
    outcome = (kci_ledger_outcome){0};
    assert_int_equal(kci_ledger_apply_transfer(batch, &stranger, &outcome), KC_OK);
    assert_int_equal(outcome.result, KCI_LEDGER_COIN_NOT_OWNED);
    again.time_ms++; /* the id of first, other content */
    memcpy(again.id, first.id, sizeof again.id);
    outcome = (kci_ledger_outcome){0};
    assert_int_equal(kci_ledger_apply_transfer(batch, &again, &outcome), KC_OK);
    assert_int_equal(outcome.result, KCI_LEDGER_TRANSFER_ID_REUSED);
    /* Alice exchanges her other coin; it cannot move again. */
    assert_int_equal(kci_ledger_exchange_make(&exchange, &f->alice,
                                              kci_ledger_store_mint_key(f->store), &coins[1], 1,
                                              (uint64_t[]){4}, 1),
                     KC_OK);
    uint8_t issue_id[16];
    outcome = (kci_ledger_outcome){0};
    assert_int_equal(kci_ledger_apply_exchange(batch, &exchange, issue_id, issued, &outcome),
                     KC_OK);
    assert_int_equal(outcome.result, KCI_LEDGER_OK);
    kci_ledger_transfer_free(&stranger);
    assert_int_equal(
        kci_ledger_transfer_make(&stranger, &f->alice, f->bob.public_key, &coins[1], 1), KC_OK);
    outcome = (kci_ledger_outcome){0};
    assert_int_equal(kci_ledger_apply_transfer(batch, &stranger, &outcome), KC_OK);
    assert_int_equal(outcome.result, KCI_LEDGER_COIN_IS_RETIRED);
    assert_int_equal(kci_ledger_batch_commit(batch), KC_OK);
    kci_ledger_transfer_free(&first);
    kci_ledger_transfer_free(&again);
    kci_ledger_transfer_free(&stranger);
    kci_ledger_transfer_free(&exchange);
    assert_int_equal(balance(f, &f->alice), 4);
    assert_int_equal(balance(f, &f->bob), 3);
    assert_audit_ok(f);
}

/* A mint is all grants or none: the second grant passes the supply bound
 * after the first was written, and nothing of it stays (the nested
 * transaction inside the store). The rest of the batch is kept. */
static void test_mint_is_all_or_nothing(void **state)
{
    fixture *f = *state;
    kci_ledger_coin kept[1], first[1], second[1];
    kci_ledger_grant grants[2] = {
        {.denomination_count = 1, .denominations = (uint64_t[]){5}},
        {.denomination_count = 1, .denominations = (uint64_t[]){KCI_LEDGER_AMOUNT_MAX}},
    };
    memcpy(grants[0].to, f->alice.public_key, 32);
    memcpy(grants[1].to, f->bob.public_key, 32);
    kci_ledger_batch *batch = NULL;
    kci_ledger_outcome outcome = {0};
    uint8_t ids[2][16];
    kci_ledger_coin *coins[2] = {first, second};
    assert_int_equal(kci_ledger_batch_begin(&batch, f->store), KC_OK);
    uint8_t kept_id[1][16];
    kci_ledger_coin *kept_coins[1] = {kept};
    assert_int_equal(kci_ledger_apply_mint(batch, &grants[0], 1, kept_id, kept_coins, &outcome),
                     KC_OK);
    assert_int_equal(outcome.result, KCI_LEDGER_OK);
    assert_int_equal(kci_ledger_apply_mint(batch, grants, 2, ids, coins, &outcome), KC_OK);
    assert_int_equal(outcome.result, KCI_LEDGER_SUPPLY_EXCEEDED);
    assert_int_equal(kci_ledger_result_code(outcome.result), KCI_LEDGER_CODE_BAD_REQUEST);
    assert_int_equal(kci_ledger_batch_commit(batch), KC_OK);
    assert_int_equal(balance(f, &f->alice), 5); /* the first mint only */
    assert_int_equal(balance(f, &f->bob), 0);
    kci_ledger_read *read = NULL;
    kci_ledger_counters counters;
    kci_ledger_coin_record record;
    assert_int_equal(kci_ledger_read_begin(&read, f->store), KC_OK);
    assert_int_equal(kci_ledger_counters_get(read, &counters), KC_OK);
    assert_int_equal(counters.supply_total, 5);
    assert_int_equal(counters.history_next, 1);
    assert_int_equal(kci_ledger_coin_get(read, first[0].id, &record), KC_ERR_NOT_FOUND);
    kci_ledger_read_end(read);
    assert_audit_ok(f);
}

/* The iterators: a wallet's coins in id order, paged with "after"; the
 * history from a sequence; the audit's whole-table walks. */
static void test_iterators(void **state)
{
    fixture *f = *state;
    kci_ledger_coin coins[4], bobs[1];
    mint(f, &f->alice, (uint64_t[]){1, 2, 3, 4}, 4, coins);
    mint(f, &f->bob, (uint64_t[]){9}, 1, bobs);
    kci_ledger_read *read = NULL;
    kci_ledger_cursor *cursor = NULL;
    uint8_t coin[16], wallet[32];
    assert_int_equal(kci_ledger_read_begin(&read, f->store), KC_OK);
    assert_int_equal(kci_ledger_wallet_coins_open(&cursor, read, f->alice.public_key, coins[1].id),
                     KC_OK);
    for (int index = 2; index < 4; index++) {
        assert_int_equal(kci_ledger_wallet_coins_next(cursor, coin), KC_OK);
        assert_memory_equal(coin, coins[index].id, 16);
    }
    assert_int_equal(kci_ledger_wallet_coins_next(cursor, coin), KC_ERR_NOT_FOUND);
    assert_int_equal(kci_ledger_wallet_coins_next(cursor, coin), KC_ERR_NOT_FOUND);
    kci_ledger_cursor_close(cursor);
    size_t count = 0;
    assert_int_equal(kci_ledger_wallet_coin_count(read, f->alice.public_key, &count), KC_OK);
    assert_int_equal(count, 4);
    assert_int_equal(kci_ledger_wallet_coin_count(read, f->carol.public_key, &count), KC_OK);
    assert_int_equal(count, 0);
    /* History: two issues, sequences 0 and 1. */
    uint64_t sequence = 0;
    kci_ledger_edge edge;
    assert_int_equal(kci_ledger_history_open(&cursor, read, 1), KC_OK);
    assert_int_equal(kci_ledger_history_next(cursor, &sequence, &edge), KC_OK);
    assert_int_equal(sequence, 1);
    assert_int_equal(edge.amount, 9);
    assert_memory_equal(edge.to, f->bob.public_key, 32);
    assert_int_equal(kci_ledger_history_next(cursor, &sequence, &edge), KC_ERR_NOT_FOUND);
    kci_ledger_cursor_close(cursor);
    /* Every reference, wallet by wallet: five, one per live coin. */
    int references = 0;
    assert_int_equal(kci_ledger_table_open(&cursor, read, KCI_LEDGER_TABLE_REFERENCES), KC_OK);
    while (kci_ledger_references_next(cursor, wallet, coin) == KC_OK)
        references++;
    kci_ledger_cursor_close(cursor);
    assert_int_equal(references, 5);
    uint64_t denomination = 0, live = 0, value = 0;
    assert_int_equal(kci_ledger_table_open(&cursor, read, KCI_LEDGER_TABLE_SUPPLY), KC_OK);
    while (kci_ledger_supply_next(cursor, &denomination, &live) == KC_OK)
        value += denomination * live;
    kci_ledger_cursor_close(cursor);
    assert_int_equal(value, 19);
    uint8_t hop[16];
    assert_int_equal(kci_ledger_trail_hop(read, bobs[0].id, 0, hop), KC_OK);
    assert_int_equal(kci_ledger_trail_hop(read, bobs[0].id, 1, hop), KC_ERR_NOT_FOUND);
    kci_ledger_read_end(read);
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
        cmocka_unit_test_setup_teardown(test_refusals_are_specific, setup, teardown),
        cmocka_unit_test_setup_teardown(test_mint_is_all_or_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_iterators, setup, teardown),
        cmocka_unit_test(test_full_map_applies_nothing),
        cmocka_unit_test_setup_teardown(test_second_store_refused_without_its_lock_file, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
