/* store_hold.c - escrow: two-phase transfers (store.h; docs/ledger.md,
 * "Escrow: holds").
 *
 * A hold is a transfer of kind HOLD, signed by the payer like any other and
 * stored with it in "transfers", that moves nothing yet: its coins leave the
 * payer's wallet (reference and balance) and wait in state HELD, still
 * naming the payer as owner, each with an entry coin -> hold in "held".
 * Beside it, "holds" keeps its state and expiry, and "expiry" orders the
 * pending holds by when they fall due. Then exactly one of:
 *   post   (the payee, signed): the coins go to the payee, one trail hop
 *          each whose transfer is the hold, one history edge;
 *   void   (the payee, signed): the coins go back to the payer, no hop;
 *   expiry (the ledger's clock): the same as a void, state "expired".
 * A claim (the payee, signed) binds a pending hold to one request's Kc-Id
 * before the paid handler runs, so one hold pays one request.
 *
 * Time is the batch's clock (batch->now_ms), never this machine's: a
 * replicated batch carries it, so every replica decides "expired" alike.
 * Each settle checks everything before it writes; the same settle again
 * finds the state it left and is answered as a replay, changing nothing. */
#include "store_internal.h"

#include <assert.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "service/last_error.h"

enum {
    EXPIRE_COLLECT_MAX = 64, /* due holds gathered before they are written */
};

/* ---- reads ------------------------------------------------------------------------ */

kc_err store_hold_get(MDB_txn *txn, const kci_ledger_store *store,
                      const uint8_t id[KCI_LEDGER_ID_BYTES], store_hold_record *out)
{
    MDB_val key = store_value(id, KCI_LEDGER_ID_BYTES), value;
    int rc = mdb_get(txn, store->holds, &key, &value);
    if (rc != 0) return store_error(rc);
    if (value.mv_size != sizeof *out) return store_error(MDB_CORRUPTED);
    memcpy(out, value.mv_data, sizeof *out);
    return KC_OK;
}

kc_err store_held_get(MDB_txn *txn, const kci_ledger_store *store,
                      const uint8_t coin[KCI_LEDGER_ID_BYTES], uint8_t hold[KCI_LEDGER_ID_BYTES])
{
    MDB_val key = store_value(coin, KCI_LEDGER_ID_BYTES), value;
    int rc = mdb_get(txn, store->held, &key, &value);
    if (rc != 0) return store_error(rc);
    if (value.mv_size != KCI_LEDGER_ID_BYTES) return store_error(MDB_CORRUPTED);
    memcpy(hold, value.mv_data, KCI_LEDGER_ID_BYTES);
    return KC_OK;
}

kc_err kci_ledger_hold_get(kci_ledger_read *read, const uint8_t id[KCI_LEDGER_ID_BYTES],
                           kci_ledger_hold_status *out)
{
    store_hold_record record;
    kc_err err = store_hold_get(read->txn, read->store, id, &record);
    if (err != KC_OK) return err;
    *out = (kci_ledger_hold_status){
        .state = record.state, .expires_ms = record.expires_ms, .settled_ms = record.settled_ms};
    return KC_OK;
}

kc_err kci_ledger_held_by(kci_ledger_read *read, const uint8_t coin[KCI_LEDGER_ID_BYTES],
                          uint8_t hold[KCI_LEDGER_ID_BYTES])
{
    return store_held_get(read->txn, read->store, coin, hold);
}

const char *kci_ledger_hold_state_name(uint8_t state)
{
    switch (state) {
    case KCI_LEDGER_HOLD_PENDING: return "pending";
    case KCI_LEDGER_HOLD_POSTED_STATE: return "posted";
    case KCI_LEDGER_HOLD_VOIDED_STATE: return "voided";
    case KCI_LEDGER_HOLD_EXPIRED_STATE: return "expired";
    default: return "unknown";
    }
}

/* ---- primitive writes ------------------------------------------------------------- */

static void expiry_key(uint8_t key[STORE_EXPIRY_KEY_BYTES], int64_t expires_ms,
                       const uint8_t hold[KCI_LEDGER_ID_BYTES])
{
    store_sequence_key(key, (uint64_t)expires_ms);
    memcpy(key + STORE_SEQUENCE_KEY_BYTES, hold, KCI_LEDGER_ID_BYTES);
}

static kc_err hold_put(kci_ledger_batch *batch, const uint8_t id[KCI_LEDGER_ID_BYTES],
                       const store_hold_record *record)
{
    assert(record->state >= KCI_LEDGER_HOLD_PENDING &&
           record->state <= KCI_LEDGER_HOLD_EXPIRED_STATE);
    assert((record->state == KCI_LEDGER_HOLD_PENDING) == (record->settled_ms == 0));
    MDB_val key = store_value(id, KCI_LEDGER_ID_BYTES), value = store_value(record, sizeof *record);
    return store_error(mdb_put(batch->txn, batch->store->holds, &key, &value, 0));
}

/* Adds (true) or drops (false) the hold's entry in the expiry order. */
static kc_err expiry_change(kci_ledger_batch *batch, const uint8_t hold[KCI_LEDGER_ID_BYTES],
                            int64_t expires_ms, bool add)
{
    uint8_t key_bytes[STORE_EXPIRY_KEY_BYTES];
    expiry_key(key_bytes, expires_ms, hold);
    MDB_val key = store_value(key_bytes, sizeof key_bytes), empty = store_value("", 0);
    int rc = add ? mdb_put(batch->txn, batch->store->expiry, &key, &empty, MDB_NOOVERWRITE)
                 : mdb_del(batch->txn, batch->store->expiry, &key, NULL);
    if (rc == MDB_KEYEXIST || rc == MDB_NOTFOUND)
        return store_invariant_broken("a pending hold's expiry entry is %s",
                                      add ? "doubled" : "missing");
    return store_error(rc);
}

/* coin -> hold: added when the coin is held (it must not be already: one
 * live hold per coin), dropped when the hold ends. */
static kc_err held_change(kci_ledger_batch *batch, const uint8_t coin[KCI_LEDGER_ID_BYTES],
                          const uint8_t hold[KCI_LEDGER_ID_BYTES], bool add)
{
    MDB_val key = store_value(coin, KCI_LEDGER_ID_BYTES);
    MDB_val value = store_value(hold, KCI_LEDGER_ID_BYTES);
    int rc = add ? mdb_put(batch->txn, batch->store->held, &key, &value, MDB_NOOVERWRITE)
                 : mdb_del(batch->txn, batch->store->held, &key, NULL);
    if (rc == MDB_KEYEXIST || rc == MDB_NOTFOUND) {
        char text[37];
        kci_ledger_id_text(text, coin);
        return store_invariant_broken("coin %s %s", text,
                                      add ? "is under a second hold" : "lost its hold");
    }
    return store_error(rc);
}

/* ---- hold ------------------------------------------------------------------------- */

static bool refuse_expiry(const kci_ledger_batch *batch, const kci_ledger_transfer *hold,
                          kci_ledger_outcome *outcome)
{
    if (hold->expires_ms > batch->now_ms &&
        hold->expires_ms - batch->now_ms <= KCI_LEDGER_HOLD_MS_MAX)
        return false;
    char id[37];
    kci_ledger_id_text(id, hold->id);
    kci_ledger_refuse_with(outcome, KCI_LEDGER_HOLD_BAD_EXPIRY,
                           "hold %s expires at %" PRId64 " ms but the ledger's clock reads %" PRId64
                           " ms: a hold must expire within the next %" PRId64 " ms",
                           id, hold->expires_ms, batch->now_ms, KCI_LEDGER_HOLD_MS_MAX);
    return true;
}

kc_err kci_ledger_apply_hold(kci_ledger_batch *batch, const kci_ledger_transfer *hold,
                             kci_ledger_outcome *outcome)
{
    assert(hold->kind == KCI_LEDGER_KIND_HOLD);
    kci_ledger_coin_record records[KCI_LEDGER_COINS_PER_TRANSFER_MAX];
    bool go = false;
    kc_err err = store_check_spend(batch, hold, records, outcome, &go);
    if (err != KC_OK || !go || refuse_expiry(batch, hold, outcome)) return err;
    uint64_t supply = batch->counters.supply_total;
    for (uint32_t index = 0; err == KC_OK && index < hold->coin_count; index++) {
        const uint8_t *coin = hold->coins[index].id;
        assert(records[index].state == KCI_LEDGER_COIN_LIVE);
        records[index].state = KCI_LEDGER_COIN_HELD; /* its owner stays the payer */
        err = store_reference_change(batch, hold->from, coin, -1);
        if (err == KC_OK) err = held_change(batch, coin, hold->id, true);
        if (err == KC_OK) err = store_coin_put(batch, coin, &records[index]);
    }
    if (err == KC_OK) err = store_balance_add(batch, hold->from, hold->amount, -1);
    if (err == KC_OK) err = store_transfer_put(batch, hold);
    store_hold_record record = {.state = KCI_LEDGER_HOLD_PENDING, .expires_ms = hold->expires_ms};
    if (err == KC_OK) err = hold_put(batch, hold->id, &record);
    if (err == KC_OK) err = expiry_change(batch, hold->id, hold->expires_ms, true);
    assert(batch->counters.supply_total == supply); /* held value stays in the supply */
    return err;
}

/* ---- ending a hold ------------------------------------------------------------------ */

/* Posts (to the payee) or returns (to the payer) every coin of the pending
 * hold, then records its final state. */
static kc_err hold_end(kci_ledger_batch *batch, const kci_ledger_transfer *hold,
                       store_hold_record *record, uint8_t state)
{
    assert(record->state == KCI_LEDGER_HOLD_PENDING);
    assert(state != KCI_LEDGER_HOLD_PENDING);
    bool post = state == KCI_LEDGER_HOLD_POSTED_STATE;
    const uint8_t *receiver = post ? hold->to : hold->from;
    kc_err err = KC_OK;
    for (uint32_t index = 0; err == KC_OK && index < hold->coin_count; index++) {
        const uint8_t *coin = hold->coins[index].id;
        kci_ledger_coin_record coin_record;
        err = store_coin_get(batch->txn, batch->store, coin, &coin_record);
        if (err == KC_OK && (coin_record.state != KCI_LEDGER_COIN_HELD ||
                             memcmp(coin_record.owner, hold->from, KCI_LEDGER_KEY_BYTES) != 0))
            err = store_invariant_broken("a coin of a pending hold is not held for its payer");
        if (err == KC_OK) err = held_change(batch, coin, hold->id, false);
        coin_record.state = KCI_LEDGER_COIN_LIVE;
        if (err == KC_OK) err = store_reference_change(batch, receiver, coin, +1);
        if (err == KC_OK && post) err = store_coin_move(batch, hold, coin, &coin_record);
        if (err == KC_OK && !post) err = store_coin_put(batch, coin, &coin_record);
    }
    if (err == KC_OK) err = store_balance_add(batch, receiver, hold->amount, +1);
    if (err == KC_OK && post) err = store_history_append(batch, hold);
    if (err == KC_OK) err = expiry_change(batch, hold->id, record->expires_ms, false);
    record->state = state;
    record->settled_ms = batch->now_ms > 0 ? batch->now_ms : 1;
    if (err == KC_OK) err = hold_put(batch, hold->id, record);
    return err;
}

/* Rewrites the stored hold with the request it is claimed for. */
static kc_err claim_write(kci_ledger_batch *batch, const uint8_t id[KCI_LEDGER_ID_BYTES],
                          const char *request_id)
{
    store_head head;
    MDB_val value;
    kc_err err = store_head_get(batch->txn, batch->store, id, &head, &value);
    if (err != KC_OK) return err;
    uint8_t *copy = malloc(value.mv_size);
    if (copy == NULL) return kci_fail(KC_ERR_NOMEM, "out of memory");
    memcpy(copy, value.mv_data, value.mv_size);
    snprintf(head.paid_request, sizeof head.paid_request, "%s", request_id);
    memcpy(copy, &head, sizeof head);
    MDB_val key = store_value(id, KCI_LEDGER_ID_BYTES), updated = store_value(copy, value.mv_size);
    err = store_error(mdb_put(batch->txn, batch->store->transfers, &key, &updated, 0));
    free(copy);
    return err;
}

/* ---- settle ------------------------------------------------------------------------- */

typedef struct settle_request {
    kci_ledger_settle settle;
    const char *id; /* the hold's, as text */
    const char *request_id;
    uint64_t min_amount;
} settle_request;

/* A settle of a hold that is no longer pending: a replay of what ended it,
 * or a refusal. */
static void settle_ended(const settle_request *asked, const store_hold_record *record,
                         const char *claimed, kci_ledger_outcome *outcome)
{
    bool same_request = asked->request_id[0] == '\0' || strcmp(asked->request_id, claimed) == 0;
    if (record->state == KCI_LEDGER_HOLD_POSTED_STATE) {
        if (asked->settle != KCI_LEDGER_SETTLE_VOID && same_request)
            outcome->replayed = true;
        else if (asked->settle == KCI_LEDGER_SETTLE_VOID)
            kci_ledger_refuse_with(outcome, KCI_LEDGER_HOLD_POSTED,
                                   "hold %s was posted already: its coins are the payee's and "
                                   "cannot be voided",
                                   asked->id);
        else
            kci_ledger_refuse_with(outcome, KCI_LEDGER_HOLD_POSTED,
                                   "hold %s was posted already for request %s: it pays one "
                                   "request once",
                                   asked->id, claimed[0] != '\0' ? claimed : "(none)");
    } else if (asked->settle == KCI_LEDGER_SETTLE_VOID) {
        outcome->replayed = true; /* voided or expired: the coins are back either way */
    } else if (record->state == KCI_LEDGER_HOLD_VOIDED_STATE) {
        kci_ledger_refuse_with(outcome, KCI_LEDGER_HOLD_VOIDED,
                               "hold %s was voided: its coins went back to the payer", asked->id);
    } else {
        kci_ledger_refuse_with(outcome, KCI_LEDGER_HOLD_EXPIRED,
                               "hold %s expired at %" PRId64
                               " ms: its coins went back to the payer",
                               asked->id, record->expires_ms);
    }
}

/* Why a pending hold cannot be claimed or posted now (outcome set), or
 * nothing; *replayed for a claim made before. */
static void settle_pending_check(const kci_ledger_batch *batch, const settle_request *asked,
                                 const store_hold_record *record, const store_head *head,
                                 kci_ledger_outcome *outcome)
{
    const char *claimed = head->paid_request;
    if (asked->settle == KCI_LEDGER_SETTLE_VOID) return; /* the payee may always give back */
    if (batch->now_ms >= record->expires_ms) {
        kci_ledger_refuse_with(outcome, KCI_LEDGER_HOLD_EXPIRED,
                               "hold %s expired at %" PRId64
                               " ms (the ledger's clock reads %" PRId64
                               " ms): it can only return to the payer",
                               asked->id, record->expires_ms, batch->now_ms);
    } else if (claimed[0] != '\0' && asked->request_id[0] != '\0' &&
               strcmp(claimed, asked->request_id) != 0) {
        kci_ledger_refuse_with(outcome, KCI_LEDGER_HOLD_CLAIMED,
                               "hold %s is claimed for request %s, not %s", asked->id, claimed,
                               asked->request_id);
    } else if (asked->settle == KCI_LEDGER_SETTLE_CLAIM && head->amount < asked->min_amount) {
        kci_ledger_refuse_with(outcome, KCI_LEDGER_HOLD_TOO_SMALL,
                               "hold %s holds %" PRIu64 ", the price is %" PRIu64, asked->id,
                               head->amount, asked->min_amount);
    } else if (asked->settle == KCI_LEDGER_SETTLE_CLAIM && claimed[0] != '\0') {
        outcome->replayed = true;
    }
}

/* Who may settle: the payee, with its signature over this settle. */
static bool settle_refuse_signer(const store_head *head, const settle_request *asked,
                                 const uint8_t payee[KCI_LEDGER_KEY_BYTES],
                                 const uint8_t hold[KCI_LEDGER_ID_BYTES],
                                 const uint8_t signature[KCI_LEDGER_SIGNATURE_BYTES],
                                 kci_ledger_outcome *outcome)
{
    char to[KCI_LEDGER_ADDRESS_TEXT_BYTES + 1], who[KCI_LEDGER_ADDRESS_TEXT_BYTES + 1];
    if (memcmp(head->to, payee, KCI_LEDGER_KEY_BYTES) != 0) {
        kci_ledger_hex(to, head->to, KCI_LEDGER_KEY_BYTES);
        kci_ledger_hex(who, payee, KCI_LEDGER_KEY_BYTES);
        kci_ledger_refuse_with(outcome, KCI_LEDGER_HOLD_NOT_PAYEE,
                               "hold %s pays wallet %.16s..., not %.16s...: only its payee can "
                               "claim, post or void it",
                               asked->id, to, who);
        return true;
    }
    if (kci_ledger_settle_verify(signature, asked->settle, hold, asked->request_id, payee,
                                 asked->min_amount))
        return false;
    kci_ledger_refuse_with(outcome, KCI_LEDGER_BAD_SIGNATURE,
                           "hold %s: the signature is not the payee's over this %s", asked->id,
                           asked->settle == KCI_LEDGER_SETTLE_CLAIM  ? "claim"
                           : asked->settle == KCI_LEDGER_SETTLE_POST ? "post"
                                                                     : "void");
    return true;
}

static kc_err settle_load(kci_ledger_batch *batch, const uint8_t hold[KCI_LEDGER_ID_BYTES],
                          const char *id, store_head *head, store_hold_record *record,
                          kci_ledger_outcome *outcome)
{
    MDB_val value;
    kc_err err = store_head_get(batch->txn, batch->store, hold, head, &value);
    if (err == KC_OK && head->kind != KCI_LEDGER_KIND_HOLD) err = KC_ERR_NOT_FOUND;
    if (err == KC_ERR_NOT_FOUND) {
        kci_ledger_refuse_with(outcome, KCI_LEDGER_HOLD_UNKNOWN, "no hold %s in the ledger", id);
        return KC_OK;
    }
    if (err == KC_OK) err = store_hold_get(batch->txn, batch->store, hold, record);
    if (err == KC_ERR_NOT_FOUND) return store_invariant_broken("hold %s has no state", id);
    head->paid_request[STORE_PAID_REQUEST_BYTES - 1] = '\0';
    return err;
}

/* Writes what a settle of a pending hold does. */
static kc_err settle_write(kci_ledger_batch *batch, const uint8_t hold[KCI_LEDGER_ID_BYTES],
                           const settle_request *asked, const store_head *head,
                           store_hold_record *record)
{
    kc_err err = KC_OK;
    if (asked->request_id[0] != '\0' && head->paid_request[0] == '\0' &&
        asked->settle != KCI_LEDGER_SETTLE_VOID)
        err = claim_write(batch, hold, asked->request_id);
    if (err != KC_OK || asked->settle == KCI_LEDGER_SETTLE_CLAIM) return err;
    kci_ledger_transfer transfer;
    err = store_transfer_get(batch->txn, batch->store, hold, &transfer, NULL);
    if (err != KC_OK) return err;
    transfer.expires_ms = record->expires_ms;
    err = hold_end(batch, &transfer, record,
                   asked->settle == KCI_LEDGER_SETTLE_POST ? KCI_LEDGER_HOLD_POSTED_STATE
                                                           : KCI_LEDGER_HOLD_VOIDED_STATE);
    kci_ledger_transfer_free(&transfer);
    return err;
}

kc_err kci_ledger_apply_settle(kci_ledger_batch *batch, kci_ledger_settle settle,
                               const uint8_t hold[KCI_LEDGER_ID_BYTES],
                               const uint8_t payee[KCI_LEDGER_KEY_BYTES], const char *request_id,
                               uint64_t min_amount,
                               const uint8_t signature[KCI_LEDGER_SIGNATURE_BYTES],
                               kci_ledger_outcome *outcome)
{
    assert(outcome->result == KCI_LEDGER_OK);
    assert(settle >= KCI_LEDGER_SETTLE_CLAIM && settle <= KCI_LEDGER_SETTLE_VOID);
    char id[37];
    kci_ledger_id_text(id, hold);
    settle_request asked = {
        .settle = settle, .id = id, .request_id = request_id, .min_amount = min_amount};
    store_head head;
    store_hold_record record;
    kc_err err = settle_load(batch, hold, id, &head, &record, outcome);
    if (err != KC_OK || outcome->result != KCI_LEDGER_OK) return err;
    if (settle_refuse_signer(&head, &asked, payee, hold, signature, outcome)) return KC_OK;
    if (record.state != KCI_LEDGER_HOLD_PENDING)
        settle_ended(&asked, &record, head.paid_request, outcome);
    else
        settle_pending_check(batch, &asked, &record, &head, outcome);
    if (outcome->result == KCI_LEDGER_OK && !outcome->replayed)
        err = settle_write(batch, hold, &asked, &head, &record);
    if (err == KC_OK && outcome->result == KCI_LEDGER_OK)
        snprintf(outcome->message, sizeof outcome->message, "%s",
                 kci_ledger_hold_state_name(record.state));
    return err;
}

/* ---- expiry ----------------------------------------------------------------------------- */

/* Up to count_max holds due at the batch's clock, in expiry order. */
static kc_err collect_due(kci_ledger_batch *batch, uint8_t (*holds)[KCI_LEDGER_ID_BYTES],
                          uint32_t count_max, uint32_t *found)
{
    assert(count_max <= EXPIRE_COLLECT_MAX);
    *found = 0;
    MDB_cursor *cursor = NULL;
    int rc = mdb_cursor_open(batch->txn, batch->store->expiry, &cursor);
    MDB_val key, value;
    for (int op = MDB_FIRST; rc == 0 && *found < count_max; op = MDB_NEXT) {
        rc = mdb_cursor_get(cursor, &key, &value, (MDB_cursor_op)op);
        if (rc != 0) break;
        if (key.mv_size != STORE_EXPIRY_KEY_BYTES) {
            rc = MDB_CORRUPTED;
            break;
        }
        int64_t expires_ms = (int64_t)store_sequence_from_key(key.mv_data);
        if (expires_ms > batch->now_ms) break; /* ordered: the rest are later */
        memcpy(holds[(*found)++], (const uint8_t *)key.mv_data + STORE_SEQUENCE_KEY_BYTES,
               KCI_LEDGER_ID_BYTES);
    }
    if (cursor != NULL) mdb_cursor_close(cursor);
    kc_err err = store_error(rc);
    return err == KC_ERR_NOT_FOUND ? KC_OK : err;
}

kc_err kci_ledger_expire(kci_ledger_batch *batch, uint32_t count_max, uint32_t *expired_count)
{
    *expired_count = 0;
    uint8_t holds[EXPIRE_COLLECT_MAX][KCI_LEDGER_ID_BYTES];
    uint32_t found = 0;
    /* Collect first, then write: a cursor must not see its own deletes. */
    kc_err err = collect_due(
        batch, holds, count_max < EXPIRE_COLLECT_MAX ? count_max : EXPIRE_COLLECT_MAX, &found);
    for (uint32_t index = 0; err == KC_OK && index < found; index++) {
        store_hold_record record;
        kci_ledger_transfer transfer;
        err = store_hold_get(batch->txn, batch->store, holds[index], &record);
        if (err == KC_OK && record.state != KCI_LEDGER_HOLD_PENDING)
            err = store_invariant_broken("a settled hold is still in the expiry order");
        if (err == KC_OK)
            err = store_transfer_get(batch->txn, batch->store, holds[index], &transfer, NULL);
        if (err != KC_OK) break;
        transfer.expires_ms = record.expires_ms;
        err = hold_end(batch, &transfer, &record, KCI_LEDGER_HOLD_EXPIRED_STATE);
        kci_ledger_transfer_free(&transfer);
        if (err == KC_OK) (*expired_count)++;
    }
    assert(*expired_count <= found);
    return err;
}

/* ---- the audit's view --------------------------------------------------------------- */

typedef struct holds_walk {
    kci_ledger_read *read;
    kci_ledger_holds_summary *summary;
    void (*problem)(void *context, const char *text);
    void *context;
} holds_walk;

static void walk_problem(holds_walk *walk, const char *id, const char *what)
{
    char text[KCI_LEDGER_ERROR_BYTES_MAX];
    snprintf(text, sizeof text, "hold %s: %s", id, what);
    walk->problem(walk->context, text);
}

/* One pending hold: each coin held for its payer and pointing back at it. */
static void audit_pending(holds_walk *walk, const uint8_t id[KCI_LEDGER_ID_BYTES],
                          const char *id_text, const store_hold_record *record)
{
    kci_ledger_transfer hold;
    MDB_txn *txn = walk->read->txn;
    if (store_transfer_get(txn, walk->read->store, id, &hold, NULL) != KC_OK) {
        walk_problem(walk, id_text, "unreadable");
        return;
    }
    walk->summary->holds_pending++;
    for (uint32_t index = 0; index < hold.coin_count; index++) {
        kci_ledger_coin_record coin;
        uint8_t held_by[KCI_LEDGER_ID_BYTES];
        if (store_coin_get(txn, walk->read->store, hold.coins[index].id, &coin) != KC_OK ||
            coin.state != KCI_LEDGER_COIN_HELD ||
            memcmp(coin.owner, hold.from, KCI_LEDGER_KEY_BYTES) != 0)
            walk_problem(walk, id_text, "a coin of this pending hold is not held for its payer");
        else if (store_held_get(txn, walk->read->store, hold.coins[index].id, held_by) != KC_OK ||
                 memcmp(held_by, id, KCI_LEDGER_ID_BYTES) != 0)
            walk_problem(walk, id_text, "a coin of this pending hold is under another hold");
        walk->summary->coins_held++;
    }
    walk->summary->value_held += hold.amount;
    uint8_t key_bytes[STORE_EXPIRY_KEY_BYTES];
    expiry_key(key_bytes, record->expires_ms, id);
    MDB_val key = store_value(key_bytes, sizeof key_bytes), value;
    if (mdb_get(txn, walk->read->store->expiry, &key, &value) != 0)
        walk_problem(walk, id_text, "pending but not in the expiry order");
    kci_ledger_transfer_free(&hold);
}

kc_err kci_ledger_holds_audit(kci_ledger_read *read, kci_ledger_holds_summary *out,
                              void (*problem)(void *context, const char *text), void *context)
{
    memset(out, 0, sizeof *out);
    holds_walk walk = {.read = read, .summary = out, .problem = problem, .context = context};
    MDB_cursor *cursor = NULL;
    MDB_val key, value;
    int rc = mdb_cursor_open(read->txn, read->store->holds, &cursor);
    for (int op = MDB_FIRST; rc == 0; op = MDB_NEXT) {
        rc = mdb_cursor_get(cursor, &key, &value, (MDB_cursor_op)op);
        if (rc != 0) break;
        char id_text[37] = "?";
        store_hold_record record;
        if (key.mv_size == KCI_LEDGER_ID_BYTES) kci_ledger_id_text(id_text, key.mv_data);
        if (key.mv_size != KCI_LEDGER_ID_BYTES || value.mv_size != sizeof record) {
            walk_problem(&walk, id_text, "unreadable state");
            continue;
        }
        memcpy(&record, value.mv_data, sizeof record);
        if (record.state == KCI_LEDGER_HOLD_PENDING)
            audit_pending(&walk, key.mv_data, id_text, &record);
        else
            out->holds_settled++;
    }
    if (cursor != NULL) mdb_cursor_close(cursor);
    if (rc != MDB_NOTFOUND) return store_error(rc);
    MDB_stat stat;
    rc = mdb_stat(read->txn, read->store->held, &stat);
    if (rc != 0) return store_error(rc);
    out->held_rows = stat.ms_entries;
    return KC_OK;
}
