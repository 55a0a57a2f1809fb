/* hold_test.c - escrow (src/ledger/store_hold.c) on a real LMDB: a hold
 * takes the coins out of the payer's wallet; the payee's post pays it once
 * (the trail shows the hold), its void or the expiry returns the coins;
 * post and void are idempotent; and every bad input is refused with a
 * clear error while the state's digest stays the same: someone else's
 * hold, a double post, a post after expiry, a void after post, a post
 * after void, a hold of coins not owned or already held, bad signatures.
 * Expiry is judged by the batch's clock (kci_ledger_batch_begin_at), as a
 * replicated entry carries it. */
#include <sodium.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* clang-format off */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
/* clang-format on */

#include "common/clock.h"
#include "ledger/client.h"
#include "ledger/query.h"
#include "ledger/store.h"

enum {
    HOLD_MS = 60000,
};

#define REQUEST_ONE "0190a1b2-c3d4-7e5f-8a6b-7c8d9e0f1a2b"
#define REQUEST_TWO "0190a1b2-c3d4-7e5f-8a6b-7c8d9e0f1a2c"

typedef struct fixture {
    char directory[64];
    kci_ledger_store *store;
    kci_wallet alice, bob, carol; /* alice pays, bob is the payee, carol a stranger */
    kci_ledger_coin coins[3];
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    if (f == NULL) return -1;
    snprintf(f->directory, sizeof f->directory, "/tmp/kc-hold-test-XXXXXX");
    char error[512];
    if (mkdtemp(f->directory) == NULL ||
        kci_ledger_store_open(&f->store, f->directory, 64u << 20, error, sizeof error) != KC_OK)
        return -1;
    crypto_sign_keypair(f->alice.public_key, f->alice.secret_key);
    crypto_sign_keypair(f->bob.public_key, f->bob.secret_key);
    crypto_sign_keypair(f->carol.public_key, f->carol.secret_key);
    uint64_t denominations[3] = {5, 3, 2};
    kci_ledger_grant grant = {.denomination_count = 3, .denominations = denominations};
    memcpy(grant.to, f->alice.public_key, 32);
    kci_ledger_batch *batch = NULL;
    uint8_t ids[1][16];
    kci_ledger_coin *coins[1] = {f->coins};
    kci_ledger_outcome outcome = {0};
    if (kci_ledger_batch_begin(&batch, f->store) != KC_OK ||
        kci_ledger_apply_mint(batch, &grant, 1, ids, coins, &outcome) != KC_OK ||
        kci_ledger_batch_commit(batch) != KC_OK || outcome.result != KCI_LEDGER_OK)
        return -1;
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

static uint64_t balance(fixture *f, const kci_wallet *wallet)
{
    kci_ledger_read *read = NULL;
    assert_int_equal(kci_ledger_read_begin(&read, f->store), KC_OK);
    uint64_t value = kci_ledger_balance_get(read, wallet->public_key);
    kci_ledger_read_end(read);
    return value;
}

static void digest(fixture *f, uint8_t out[KCI_LEDGER_DIGEST_BYTES])
{
    kci_ledger_read *read = NULL;
    uint64_t entries = 0;
    assert_int_equal(kci_ledger_read_begin(&read, f->store), KC_OK);
    assert_int_equal(kci_ledger_content_digest(read, out, &entries), KC_OK);
    kci_ledger_read_end(read);
}

static void assert_audit_ok(fixture *f, json_int_t pending)
{
    kci_ledger_read *read = NULL;
    kci_ledger_outcome outcome = {0};
    assert_int_equal(kci_ledger_read_begin(&read, f->store), KC_OK);
    json_t *result = kci_ledger_audit(read, &outcome);
    kci_ledger_read_end(read);
    assert_non_null(result);
    char *text = json_dumps(result, 0);
    if (!json_is_true(json_object_get(result, "ok"))) fail_msg("audit failed: %s", text);
    assert_int_equal(
        json_integer_value(json_object_get(json_object_get(result, "holds"), "pending")), pending);
    free(text);
    json_decref(result);
}

/* Applies a hold (as the service does: denominations looked up, the
 * payer's signature verified) in a batch whose clock reads now_ms. */
static kci_ledger_outcome hold_at(fixture *f, kci_ledger_transfer *hold, int64_t now_ms)
{
    kci_ledger_outcome outcome = {0};
    kci_ledger_read *read = NULL;
    assert_int_equal(kci_ledger_read_begin(&read, f->store), KC_OK);
    assert_int_equal(kci_ledger_fill_denominations(read, hold, &outcome), KC_OK);
    kci_ledger_read_end(read);
    if (outcome.result != KCI_LEDGER_OK) return outcome;
    if (!kci_ledger_verify(hold, hold->from)) {
        kci_ledger_refuse(&outcome, KCI_LEDGER_BAD_SIGNATURE);
        return outcome;
    }
    kci_ledger_batch *batch = NULL;
    assert_int_equal(kci_ledger_batch_begin_at(&batch, f->store, now_ms), KC_OK);
    assert_int_equal(kci_ledger_apply_hold(batch, hold, &outcome), KC_OK);
    assert_int_equal(kci_ledger_batch_commit(batch), KC_OK);
    return outcome;
}

/* A settle signed by signer, naming payee, in a batch at now_ms. */
static kci_ledger_outcome settle_at(fixture *f, kci_ledger_settle settle,
                                    const kci_ledger_transfer *hold, const kci_wallet *signer,
                                    const uint8_t *payee, const char *request, uint64_t min_amount,
                                    int64_t now_ms)
{
    uint8_t signature[KCI_LEDGER_SIGNATURE_BYTES];
    kci_ledger_settle_sign(signature, settle, hold->id, request, min_amount, signer->secret_key);
    kci_ledger_outcome outcome = {0};
    kci_ledger_batch *batch = NULL;
    assert_int_equal(kci_ledger_batch_begin_at(&batch, f->store, now_ms), KC_OK);
    assert_int_equal(kci_ledger_apply_settle(batch, settle, hold->id, payee, request, min_amount,
                                             signature, &outcome),
                     KC_OK);
    assert_int_equal(kci_ledger_batch_commit(batch), KC_OK);
    return outcome;
}

static kci_ledger_outcome settle_now(fixture *f, kci_ledger_settle settle,
                                     const kci_ledger_transfer *hold, const char *request)
{
    return settle_at(f, settle, hold, &f->bob, f->bob.public_key, request,
                     settle == KCI_LEDGER_SETTLE_CLAIM ? 8 : 0, kci_wall_ms());
}

/* A refusal: its wire code, its text names what, and the state is unchanged. */
static void assert_refused(fixture *f, kci_ledger_outcome outcome, int code, const char *what,
                           const uint8_t before[KCI_LEDGER_DIGEST_BYTES])
{
    assert_int_equal(kci_ledger_result_code(outcome.result), code);
    if (strstr(outcome.message, what) == NULL)
        fail_msg("expected \"%s\" in \"%s\"", what, outcome.message);
    uint8_t after[KCI_LEDGER_DIGEST_BYTES];
    digest(f, after);
    assert_memory_equal(before, after, KCI_LEDGER_DIGEST_BYTES);
}

/* Alice holds her 5 and 3 for Bob. */
static void make_hold(fixture *f, kci_ledger_transfer *hold)
{
    assert_int_equal(kci_ledger_hold_make(hold, &f->alice, f->bob.public_key, f->coins, 2, HOLD_MS),
                     KC_OK);
    kci_ledger_outcome outcome = hold_at(f, hold, kci_wall_ms());
    assert_int_equal(outcome.result, KCI_LEDGER_OK);
    assert_int_equal(balance(f, &f->alice), 2); /* held coins leave the wallet */
    assert_int_equal(balance(f, &f->bob), 0);
}

static void test_hold_claim_post(void **state)
{
    fixture *f = *state;
    kci_ledger_transfer hold;
    make_hold(f, &hold);
    assert_audit_ok(f, 1);
    kci_ledger_outcome outcome = settle_now(f, KCI_LEDGER_SETTLE_CLAIM, &hold, REQUEST_ONE);
    assert_int_equal(outcome.result, KCI_LEDGER_OK);
    assert_string_equal(outcome.message, "pending");
    outcome = settle_now(f, KCI_LEDGER_SETTLE_POST, &hold, REQUEST_ONE);
    assert_int_equal(outcome.result, KCI_LEDGER_OK);
    assert_false(outcome.replayed);
    assert_string_equal(outcome.message, "posted");
    assert_int_equal(balance(f, &f->alice), 2);
    assert_int_equal(balance(f, &f->bob), 8);
    assert_audit_ok(f, 0);
    /* The same post again: the same answer, nothing moves twice. */
    uint8_t before[KCI_LEDGER_DIGEST_BYTES], after[KCI_LEDGER_DIGEST_BYTES];
    digest(f, before);
    outcome = settle_now(f, KCI_LEDGER_SETTLE_POST, &hold, REQUEST_ONE);
    assert_int_equal(outcome.result, KCI_LEDGER_OK);
    assert_true(outcome.replayed);
    assert_string_equal(outcome.message, "posted");
    digest(f, after);
    assert_memory_equal(before, after, sizeof before);
    /* The trail of a posted coin shows the hold and its outcome. */
    kci_ledger_read *read = NULL;
    kci_ledger_request request = {.operation = KCI_LEDGER_OP_TRAIL};
    memcpy(request.coin, f->coins[0].id, 16);
    assert_int_equal(kci_ledger_read_begin(&read, f->store), KC_OK);
    kci_ledger_outcome trail_outcome = {0};
    json_t *trail = kci_ledger_query_trail(read, &request, &trail_outcome);
    kci_ledger_read_end(read);
    json_t *last = json_array_get(json_object_get(trail, "hops"), 1);
    assert_string_equal(json_string_value(json_object_get(last, "kind")), "hold");
    assert_string_equal(json_string_value(json_object_get(json_object_get(last, "hold"), "state")),
                        "posted");
    json_decref(trail);
    kci_ledger_transfer_free(&hold);
}

static void test_hold_void_returns(void **state)
{
    fixture *f = *state;
    kci_ledger_transfer hold;
    make_hold(f, &hold);
    kci_ledger_outcome outcome = settle_now(f, KCI_LEDGER_SETTLE_VOID, &hold, "");
    assert_int_equal(outcome.result, KCI_LEDGER_OK);
    assert_string_equal(outcome.message, "voided");
    assert_int_equal(balance(f, &f->alice), 10);
    assert_int_equal(balance(f, &f->bob), 0);
    assert_audit_ok(f, 0);
    uint8_t before[KCI_LEDGER_DIGEST_BYTES];
    digest(f, before);
    outcome = settle_now(f, KCI_LEDGER_SETTLE_VOID, &hold, "");
    assert_int_equal(outcome.result, KCI_LEDGER_OK);
    assert_true(outcome.replayed);
    assert_refused(f, outcome, 0, "voided", before);
    /* Post after void. */
    assert_refused(f, settle_now(f, KCI_LEDGER_SETTLE_POST, &hold, REQUEST_ONE),
                   KCI_LEDGER_CODE_CONFLICT, "was voided", before);
    /* The coins are Alice's again: she can spend them. */
    kci_ledger_transfer transfer;
    assert_int_equal(
        kci_ledger_transfer_make(&transfer, &f->alice, f->carol.public_key, f->coins, 2), KC_OK);
    kci_ledger_read *read = NULL;
    assert_int_equal(kci_ledger_read_begin(&read, f->store), KC_OK);
    kci_ledger_outcome filled = {0};
    assert_int_equal(kci_ledger_fill_denominations(read, &transfer, &filled), KC_OK);
    kci_ledger_read_end(read);
    kci_ledger_batch *batch = NULL;
    assert_int_equal(kci_ledger_batch_begin(&batch, f->store), KC_OK);
    assert_int_equal(kci_ledger_apply_transfer(batch, &transfer, &filled), KC_OK);
    assert_int_equal(kci_ledger_batch_commit(batch), KC_OK);
    assert_int_equal(filled.result, KCI_LEDGER_OK);
    assert_int_equal(balance(f, &f->carol), 8);
    assert_audit_ok(f, 0);
    kci_ledger_transfer_free(&transfer);
    kci_ledger_transfer_free(&hold);
}

/* A held coin cannot be spent nor held again; coins not owned cannot be held. */
static void test_held_coins_cannot_move(void **state)
{
    fixture *f = *state;
    kci_ledger_transfer hold, spend, again, stranger;
    make_hold(f, &hold);
    uint8_t before[KCI_LEDGER_DIGEST_BYTES];
    digest(f, before);
    assert_int_equal(kci_ledger_transfer_make(&spend, &f->alice, f->carol.public_key, f->coins, 1),
                     KC_OK);
    kci_ledger_read *read = NULL;
    kci_ledger_outcome outcome = {0};
    assert_int_equal(kci_ledger_read_begin(&read, f->store), KC_OK);
    assert_int_equal(kci_ledger_fill_denominations(read, &spend, &outcome), KC_OK);
    kci_ledger_read_end(read);
    kci_ledger_batch *batch = NULL;
    assert_int_equal(kci_ledger_batch_begin(&batch, f->store), KC_OK);
    assert_int_equal(kci_ledger_apply_transfer(batch, &spend, &outcome), KC_OK);
    assert_int_equal(kci_ledger_batch_commit(batch), KC_OK);
    assert_refused(f, outcome, KCI_LEDGER_CODE_CONFLICT, "is held by hold", before);
    assert_int_equal(
        kci_ledger_hold_make(&again, &f->alice, f->carol.public_key, f->coins, 1, HOLD_MS), KC_OK);
    assert_refused(f, hold_at(f, &again, kci_wall_ms()), KCI_LEDGER_CODE_CONFLICT,
                   "is held by hold", before);
    /* Carol holds Alice's free coin (the 2): not hers. */
    assert_int_equal(
        kci_ledger_hold_make(&stranger, &f->carol, f->bob.public_key, &f->coins[2], 1, HOLD_MS),
        KC_OK);
    assert_refused(f, hold_at(f, &stranger, kci_wall_ms()), KCI_LEDGER_CODE_CONFLICT, "not owned",
                   before);
    /* A hold signed by another key than its payer's. */
    kci_ledger_transfer forged;
    assert_int_equal(
        kci_ledger_hold_make(&forged, &f->alice, f->bob.public_key, &f->coins[2], 1, HOLD_MS),
        KC_OK);
    assert_int_equal(kci_ledger_sign(&forged, f->carol.secret_key), KC_OK);
    assert_refused(f, hold_at(f, &forged, kci_wall_ms()), KCI_LEDGER_CODE_BAD_SIGNATURE,
                   "signature", before);
    /* A hold that would already have expired by the ledger's clock. */
    kci_ledger_transfer stale;
    assert_int_equal(
        kci_ledger_hold_make(&stale, &f->alice, f->bob.public_key, &f->coins[2], 1, HOLD_MS),
        KC_OK);
    assert_refused(f, hold_at(f, &stale, stale.expires_ms + 1), KCI_LEDGER_CODE_BAD_REQUEST,
                   "must expire", before);
    assert_audit_ok(f, 1);
    kci_ledger_transfer_free(&hold);
    kci_ledger_transfer_free(&spend);
    kci_ledger_transfer_free(&again);
    kci_ledger_transfer_free(&stranger);
    kci_ledger_transfer_free(&forged);
    kci_ledger_transfer_free(&stale);
}

static void test_settle_refusals(void **state)
{
    fixture *f = *state;
    kci_ledger_transfer hold;
    make_hold(f, &hold);
    int64_t now_ms = kci_wall_ms();
    uint8_t before[KCI_LEDGER_DIGEST_BYTES];
    digest(f, before);
    /* Someone else's hold: Carol, with her own key, posts and voids Bob's. */
    assert_refused(f,
                   settle_at(f, KCI_LEDGER_SETTLE_POST, &hold, &f->carol, f->carol.public_key,
                             REQUEST_ONE, 0, now_ms),
                   KCI_LEDGER_CODE_FORBIDDEN, "only its payee", before);
    assert_refused(
        f,
        settle_at(f, KCI_LEDGER_SETTLE_VOID, &hold, &f->carol, f->carol.public_key, "", 0, now_ms),
        KCI_LEDGER_CODE_FORBIDDEN, "only its payee", before);
    /* Carol claims to be Bob: the signature is not Bob's. */
    assert_refused(f,
                   settle_at(f, KCI_LEDGER_SETTLE_POST, &hold, &f->carol, f->bob.public_key,
                             REQUEST_ONE, 0, now_ms),
                   KCI_LEDGER_CODE_BAD_SIGNATURE, "not the payee's", before);
    /* A price above what is held. */
    assert_refused(f,
                   settle_at(f, KCI_LEDGER_SETTLE_CLAIM, &hold, &f->bob, f->bob.public_key,
                             REQUEST_ONE, 9, now_ms),
                   KCI_LEDGER_CODE_UNPAID, "the price is 9", before);
    /* An unknown hold. */
    kci_ledger_transfer ghost = hold;
    ghost.id[15] ^= 1;
    assert_refused(f, settle_now(f, KCI_LEDGER_SETTLE_POST, &ghost, REQUEST_ONE),
                   KCI_LEDGER_CODE_NOT_FOUND, "no hold", before);
    /* Claimed for one request, posted for another. */
    assert_int_equal(settle_now(f, KCI_LEDGER_SETTLE_CLAIM, &hold, REQUEST_ONE).result,
                     KCI_LEDGER_OK);
    digest(f, before);
    assert_refused(f, settle_now(f, KCI_LEDGER_SETTLE_POST, &hold, REQUEST_TWO),
                   KCI_LEDGER_CODE_CONFLICT, "claimed for request", before);
    /* Post, then a double post (for another request) and a void after post. */
    assert_int_equal(settle_now(f, KCI_LEDGER_SETTLE_POST, &hold, REQUEST_ONE).result,
                     KCI_LEDGER_OK);
    digest(f, before);
    assert_refused(f, settle_now(f, KCI_LEDGER_SETTLE_POST, &hold, REQUEST_TWO),
                   KCI_LEDGER_CODE_CONFLICT, "posted already", before);
    assert_refused(f, settle_now(f, KCI_LEDGER_SETTLE_VOID, &hold, ""), KCI_LEDGER_CODE_CONFLICT,
                   "cannot be voided", before);
    assert_int_equal(balance(f, &f->bob), 8);
    assert_audit_ok(f, 0);
    kci_ledger_transfer_free(&hold);
}

/* Expiry by the batch's clock: a post after it is refused, the sweep
 * returns the coins, a void after that is a replay. */
static void test_expiry(void **state)
{
    fixture *f = *state;
    kci_ledger_transfer hold;
    make_hold(f, &hold);
    int64_t late_ms = hold.expires_ms;
    uint8_t before[KCI_LEDGER_DIGEST_BYTES];
    digest(f, before);
    assert_refused(f,
                   settle_at(f, KCI_LEDGER_SETTLE_POST, &hold, &f->bob, f->bob.public_key,
                             REQUEST_ONE, 0, late_ms),
                   KCI_LEDGER_CODE_CONFLICT, "expired", before);
    /* Before its expiry, the sweep leaves it alone. */
    kci_ledger_batch *batch = NULL;
    uint32_t expired = 0;
    assert_int_equal(kci_ledger_batch_begin_at(&batch, f->store, late_ms - 1), KC_OK);
    assert_int_equal(kci_ledger_expire(batch, 64, &expired), KC_OK);
    assert_int_equal(kci_ledger_batch_commit(batch), KC_OK);
    assert_int_equal(expired, 0);
    assert_int_equal(balance(f, &f->alice), 2);
    assert_int_equal(kci_ledger_batch_begin_at(&batch, f->store, late_ms), KC_OK);
    assert_int_equal(kci_ledger_expire(batch, 64, &expired), KC_OK);
    assert_int_equal(kci_ledger_batch_commit(batch), KC_OK);
    assert_int_equal(expired, 1);
    assert_int_equal(balance(f, &f->alice), 10);
    assert_audit_ok(f, 0);
    digest(f, before);
    kci_ledger_outcome outcome =
        settle_at(f, KCI_LEDGER_SETTLE_VOID, &hold, &f->bob, f->bob.public_key, "", 0, late_ms + 5);
    assert_int_equal(outcome.result, KCI_LEDGER_OK);
    assert_true(outcome.replayed);
    assert_string_equal(outcome.message, "expired");
    assert_refused(f, outcome, 0, "expired", before);
    assert_refused(f,
                   settle_at(f, KCI_LEDGER_SETTLE_POST, &hold, &f->bob, f->bob.public_key,
                             REQUEST_ONE, 0, late_ms + 5),
                   KCI_LEDGER_CODE_CONFLICT, "expired", before);
    kci_ledger_transfer_free(&hold);
}

int main(void)
{
    if (sodium_init() < 0) return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_hold_claim_post, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hold_void_returns, setup, teardown),
        cmocka_unit_test_setup_teardown(test_held_coins_cannot_move, setup, teardown),
        cmocka_unit_test_setup_teardown(test_settle_refusals, setup, teardown),
        cmocka_unit_test_setup_teardown(test_expiry, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
