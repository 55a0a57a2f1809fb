/* store_apply.c - the ledger's state transitions inside a write batch
 * (store.h): issue (mint), transfer, exchange, payment claim, reap.
 *
 * Each transition checks everything it can refuse before it writes, so a
 * refusal leaves nothing behind; a mint is the exception (a later grant
 * can pass the supply bound after earlier ones were written) and runs in a
 * nested transaction of its own.
 *
 * Two kinds of check: what the stored state could get wrong (a reference
 * missing or doubled, a negative balance) is an error, KC_ERR_CORRUPT,
 * that aborts the batch, because the disk is outside this process's
 * control; what this code guarantees by construction (an owner changes on
 * every move, a trail grows by one hop per move, sequences only grow, an
 * exchange gives back what it retired) is an assertion, on in every
 * build. */
#include "store_internal.h"

#include <assert.h>
#include <inttypes.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "service/last_error.h"
#include "service/uuid.h"

enum {
    REAP_COLLECT_MAX = 64, /* retired coins the reaper gathers before it writes */
};

/* ---- primitive writes ----------------------------------------------------------- */

kc_err store_coin_put(kci_ledger_batch *batch, const uint8_t id[KCI_LEDGER_ID_BYTES],
                      const kci_ledger_coin_record *record)
{
    assert(record->hop_count > 0); /* a stored coin has at least its issue hop */
    assert(record->state >= KCI_LEDGER_COIN_LIVE && record->state <= KCI_LEDGER_COIN_HELD);
    MDB_val key = store_value(id, KCI_LEDGER_ID_BYTES), value = store_value(record, sizeof *record);
    return store_error(mdb_put(batch->txn, batch->store->coins, &key, &value, 0));
}

/* Adds (sign +1) or removes (-1) amount from wallet's balance. */
kc_err store_balance_add(kci_ledger_batch *batch, const uint8_t wallet[KCI_LEDGER_KEY_BYTES],
                         uint64_t amount, int sign)
{
    assert(sign == 1 || sign == -1);
    uint64_t balance = store_balance_get(batch->txn, batch->store, wallet);
    if (sign < 0 && balance < amount)
        return store_invariant_broken("a balance of %" PRIu64 " pays %" PRIu64, balance, amount);
    balance = sign > 0 ? balance + amount : balance - amount;
    assert(balance <= KCI_LEDGER_AMOUNT_MAX); /* total supply bounds every balance */
    MDB_val key = store_value(wallet, KCI_LEDGER_KEY_BYTES);
    if (balance == 0) {
        kc_err err = store_error(mdb_del(batch->txn, batch->store->balances, &key, NULL));
        return err == KC_ERR_NOT_FOUND ? KC_OK : err;
    }
    MDB_val value = store_value(&balance, sizeof balance);
    return store_error(mdb_put(batch->txn, batch->store->balances, &key, &value, 0));
}

/* The reference wallet -> coin: +1 adds it (it must not exist: a coin has
 * one holder), -1 drops it (it must exist). Either failure means the
 * singleton rule is broken in the stored state. */
kc_err store_reference_change(kci_ledger_batch *batch, const uint8_t wallet[KCI_LEDGER_KEY_BYTES],
                              const uint8_t coin[KCI_LEDGER_ID_BYTES], int delta)
{
    assert(delta == 1 || delta == -1);
    assert(memcmp(wallet, batch->store->mint.public_key, KCI_LEDGER_KEY_BYTES) != 0);
    MDB_val key = store_value(wallet, KCI_LEDGER_KEY_BYTES);
    MDB_val value = store_value(coin, KCI_LEDGER_ID_BYTES);
    int rc = delta > 0 ? mdb_put(batch->txn, batch->store->owned, &key, &value, MDB_NODUPDATA)
                       : mdb_del(batch->txn, batch->store->owned, &key, &value);
    if (rc == MDB_KEYEXIST || rc == MDB_NOTFOUND) {
        char text[37];
        kci_ledger_id_text(text, coin);
        return store_invariant_broken("coin %s %s", text,
                                      delta > 0 ? "has a second reference" : "lost its reference");
    }
    return store_error(rc);
}

/* The live coins of denomination: one more (+1) or one fewer (-1). */
static kc_err supply_add(kci_ledger_batch *batch, uint64_t denomination, int delta)
{
    assert(delta == 1 || delta == -1);
    assert(denomination > 0);
    uint8_t key_bytes[STORE_SEQUENCE_KEY_BYTES];
    store_sequence_key(key_bytes, denomination);
    MDB_val key = store_value(key_bytes, sizeof key_bytes), value;
    uint64_t count = 0;
    int rc = mdb_get(batch->txn, batch->store->supply, &key, &value);
    if (rc == 0 && value.mv_size == sizeof count) memcpy(&count, value.mv_data, sizeof count);
    if (rc != 0 && rc != MDB_NOTFOUND) return store_error(rc);
    if (delta < 0 && count == 0)
        return store_invariant_broken("no live coin of %" PRIu64 " to retire", denomination);
    count = delta > 0 ? count + 1 : count - 1;
    if (count == 0) return store_error(mdb_del(batch->txn, batch->store->supply, &key, NULL));
    value = store_value(&count, sizeof count);
    return store_error(mdb_put(batch->txn, batch->store->supply, &key, &value, 0));
}

kc_err store_transfer_put(kci_ledger_batch *batch, const kci_ledger_transfer *transfer)
{
    assert(transfer->coin_count <= KCI_LEDGER_COINS_PER_TRANSFER_MAX);
    assert(transfer->denomination_count <= KCI_LEDGER_DENOMINATIONS_MAX);
    store_head head = {
        .kind = transfer->kind,
        .coin_count = transfer->coin_count,
        .denomination_count = transfer->denomination_count,
        .amount = transfer->amount,
        .time_ms = transfer->time_ms,
    };
    memcpy(head.from, transfer->from, KCI_LEDGER_KEY_BYTES);
    memcpy(head.to, transfer->to, KCI_LEDGER_KEY_BYTES);
    memcpy(head.signature, transfer->signature, KCI_LEDGER_SIGNATURE_BYTES);
    size_t coins_bytes = (size_t)transfer->coin_count * sizeof(kci_ledger_coin);
    size_t asked_bytes = (size_t)transfer->denomination_count * sizeof(uint64_t);
    MDB_val key = store_value(transfer->id, KCI_LEDGER_ID_BYTES);
    MDB_val value = {.mv_size = sizeof head + coins_bytes + asked_bytes};
    int rc = mdb_put(batch->txn, batch->store->transfers, &key, &value, MDB_RESERVE);
    if (rc != 0) return store_error(rc);
    uint8_t *cursor = value.mv_data;
    memcpy(cursor, &head, sizeof head);
    memcpy(cursor + sizeof head, transfer->coins, coins_bytes);
    if (asked_bytes > 0)
        memcpy(cursor + sizeof head + coins_bytes, transfer->denominations, asked_bytes);
    return KC_OK;
}

kc_err store_history_append(kci_ledger_batch *batch, const kci_ledger_transfer *transfer)
{
    assert(transfer->kind != KCI_LEDGER_KIND_EXCHANGE); /* moves no value between wallets */
    /* The ledger's clock, not the signer's: history pages by when it happened here. */
    kci_ledger_edge edge = {.amount = transfer->amount, .time_ms = batch->now_ms};
    if (transfer->kind != KCI_LEDGER_KIND_ISSUE)
        memcpy(edge.from, transfer->from, KCI_LEDGER_KEY_BYTES);
    memcpy(edge.to, transfer->to, KCI_LEDGER_KEY_BYTES);
    memcpy(edge.transfer, transfer->id, KCI_LEDGER_ID_BYTES);
    uint64_t sequence = batch->counters.history_next++;
    assert(batch->counters.history_next > sequence); /* never wraps: sequences only grow */
    uint8_t key_bytes[STORE_SEQUENCE_KEY_BYTES];
    store_sequence_key(key_bytes, sequence);
    MDB_val key = store_value(key_bytes, sizeof key_bytes), value = store_value(&edge, sizeof edge);
    /* MDB_APPEND refuses a key not past the last one: a sequence reused on
     * disk is an error, not silently overwritten history. */
    return store_error(mdb_put(batch->txn, batch->store->history, &key, &value, MDB_APPEND));
}

/* One hop of coin: record, trail row. The record's owner changes from
 * the payer (or nobody, for an issue) to the payee; its trail grows by
 * exactly one hop. */
kc_err store_coin_move(kci_ledger_batch *batch, const kci_ledger_transfer *transfer,
                       const uint8_t coin[KCI_LEDGER_ID_BYTES], kci_ledger_coin_record *record)
{
    assert(transfer->kind == KCI_LEDGER_KIND_ISSUE
               ? record->hop_count == 0
               : memcmp(record->owner, transfer->from, KCI_LEDGER_KEY_BYTES) == 0);
    uint32_t hops_before = record->hop_count;
    memcpy(record->owner, transfer->to, KCI_LEDGER_KEY_BYTES);
    memcpy(record->last_transfer, transfer->id, KCI_LEDGER_ID_BYTES);
    record->moved_ms = transfer->time_ms;
    uint8_t key_bytes[STORE_TRAIL_KEY_BYTES];
    store_trail_key(key_bytes, coin, record->hop_count);
    record->hop_count++;
    assert(record->hop_count == hops_before + 1);
    MDB_val key = store_value(key_bytes, sizeof key_bytes);
    MDB_val value = store_value(transfer->id, KCI_LEDGER_ID_BYTES);
    kc_err err =
        store_error(mdb_put(batch->txn, batch->store->trail, &key, &value, MDB_NOOVERWRITE));
    if (err == KC_ERR_EXISTS) {
        char text[37];
        kci_ledger_id_text(text, coin);
        return store_invariant_broken("coin %s has a hop %" PRIu32 " already", text, hops_before);
    }
    return err == KC_OK ? store_coin_put(batch, coin, record) : err;
}

/* ---- issue ------------------------------------------------------------------------ */

/* New coins to issue->to: the issue is signed by the mint here. */
static kc_err issue_coins(kci_ledger_batch *batch, kci_ledger_transfer *issue)
{
    assert(issue->kind == KCI_LEDGER_KIND_ISSUE);
    assert(memcmp(issue->from, batch->store->mint.public_key, KCI_LEDGER_KEY_BYTES) == 0);
    kci_ledger_store *store = batch->store;
    kc_err err = KC_OK;
    for (uint32_t index = 0; err == KC_OK && index < issue->coin_count; index++) {
        kci_ledger_coin_record record = {.denomination = issue->coins[index].denomination,
                                         .state = KCI_LEDGER_COIN_LIVE};
        err = store_coin_move(batch, issue, issue->coins[index].id, &record);
        if (err == KC_OK)
            err = store_reference_change(batch, issue->to, issue->coins[index].id, +1);
        if (err == KC_OK) err = supply_add(batch, record.denomination, +1);
    }
    if (err == KC_OK) err = store_balance_add(batch, issue->to, issue->amount, +1);
    if (err == KC_OK && kci_ledger_sign(issue, store->mint.secret_key) != KC_OK)
        err = kci_fail(KC_ERR_NOMEM, "out of memory");
    if (err == KC_OK) err = store_transfer_put(batch, issue);
    return err;
}

void kci_ledger_issue_ids_make(uint8_t transfer_id[KCI_LEDGER_ID_BYTES], kci_ledger_coin *coins,
                               const uint64_t *denominations, uint32_t count)
{
    assert(count > 0 && count <= KCI_LEDGER_DENOMINATIONS_MAX);
    kci_uuid uuid;
    kci_uuid_v7(&uuid);
    memcpy(transfer_id, uuid.bytes, KCI_LEDGER_ID_BYTES);
    for (uint32_t index = 0; index < count; index++) {
        kci_uuid_v7(&uuid); /* increasing within the process: sorted */
        memcpy(coins[index].id, uuid.bytes, KCI_LEDGER_ID_BYTES);
        coins[index].denomination = denominations[index];
    }
}

/* A UUID (version 8: made by us) from BLAKE2b of the mint id, the grant's
 * index and the coin's (UINT32_MAX for the issue itself). */
static void mint_id_derive(uint8_t out[KCI_LEDGER_ID_BYTES], const uint8_t mint_id[],
                           uint32_t grant_index, uint32_t coin_index)
{
    static const char DOMAIN[] = "kingcobra mint id v1";
    uint8_t input[sizeof DOMAIN + KCI_LEDGER_ID_BYTES + 8];
    memcpy(input, DOMAIN, sizeof DOMAIN);
    memcpy(input + sizeof DOMAIN, mint_id, KCI_LEDGER_ID_BYTES);
    for (int shift = 0; shift < 4; shift++) {
        input[sizeof DOMAIN + KCI_LEDGER_ID_BYTES + shift] = (uint8_t)(grant_index >> (8 * shift));
        input[sizeof DOMAIN + KCI_LEDGER_ID_BYTES + 4 + shift] =
            (uint8_t)(coin_index >> (8 * shift));
    }
    crypto_generichash(out, KCI_LEDGER_ID_BYTES, input, sizeof input, NULL, 0);
    out[6] = (uint8_t)((out[6] & 0x0f) | 0x80); /* version 8 */
    out[8] = (uint8_t)((out[8] & 0x3f) | 0x80); /* the RFC 4122 variant */
}

static int coin_compare(const void *left, const void *right)
{
    return memcmp(((const kci_ledger_coin *)left)->id, ((const kci_ledger_coin *)right)->id,
                  KCI_LEDGER_ID_BYTES);
}

void kci_ledger_mint_ids_derive(const uint8_t mint_id[KCI_LEDGER_ID_BYTES], uint32_t grant_index,
                                uint8_t transfer_id[KCI_LEDGER_ID_BYTES], kci_ledger_coin *coins,
                                const uint64_t *denominations, uint32_t count)
{
    assert(count > 0 && count <= KCI_LEDGER_DENOMINATIONS_MAX);
    mint_id_derive(transfer_id, mint_id, grant_index, UINT32_MAX);
    for (uint32_t index = 0; index < count; index++) {
        mint_id_derive(coins[index].id, mint_id, grant_index, index);
        coins[index].denomination = denominations[index];
    }
    qsort(coins, count, sizeof *coins, coin_compare); /* a transfer's coins are sorted */
}

/* Fills issue with the given ids (made by kci_ledger_issue_ids_make, or
 * read back from a replicated batch): the coins are sorted by id, so the
 * same ids give the same issue on every replica. */
static kc_err issue_prepare(kci_ledger_batch *batch, kci_ledger_transfer *issue,
                            const uint8_t to[KCI_LEDGER_KEY_BYTES],
                            const uint8_t transfer_id[KCI_LEDGER_ID_BYTES],
                            const kci_ledger_coin *coins, uint32_t count)
{
    assert(count > 0 && count <= KCI_LEDGER_DENOMINATIONS_MAX);
    memset(issue, 0, sizeof *issue);
    issue->coins = calloc(count, sizeof *issue->coins);
    if (issue->coins == NULL) return kci_fail(KC_ERR_NOMEM, "out of memory");
    memcpy(issue->id, transfer_id, KCI_LEDGER_ID_BYTES);
    issue->kind = KCI_LEDGER_KIND_ISSUE;
    memcpy(issue->from, batch->store->mint.public_key, KCI_LEDGER_KEY_BYTES);
    memcpy(issue->to, to, KCI_LEDGER_KEY_BYTES);
    issue->time_ms = batch->now_ms;
    issue->coin_count = count;
    for (uint32_t index = 0; index < count; index++) {
        issue->coins[index] = coins[index];
        issue->amount += coins[index].denomination;
        /* The coins of a transfer are sorted by id (the audit searches them). */
        assert(index == 0 ||
               memcmp(issue->coins[index - 1].id, issue->coins[index].id, KCI_LEDGER_ID_BYTES) < 0);
    }
    return KC_OK;
}

/* An issue id seen before (a mint retried with its id): the same grant
 * again is a replay, nothing is written; anything else reuses the id.
 * *taken says whether the id is taken (outcome set). */
static kc_err check_issue_replay(kci_ledger_batch *batch, const kci_ledger_grant *grant,
                                 const uint8_t transfer_id[KCI_LEDGER_ID_BYTES],
                                 kci_ledger_outcome *outcome, bool *taken)
{
    store_head head;
    MDB_val value;
    kc_err err = store_head_get(batch->txn, batch->store, transfer_id, &head, &value);
    *taken = err != KC_ERR_NOT_FOUND;
    if (err != KC_OK) return err == KC_ERR_NOT_FOUND ? KC_OK : err;
    uint64_t amount = 0;
    for (uint32_t index = 0; index < grant->denomination_count; index++)
        amount += grant->denominations[index];
    if (head.kind == KCI_LEDGER_KIND_ISSUE && head.amount == amount &&
        memcmp(head.to, grant->to, KCI_LEDGER_KEY_BYTES) == 0) {
        outcome->replayed = true;
        return KC_OK;
    }
    char id[37];
    kci_ledger_id_text(id, transfer_id);
    kci_ledger_refuse_with(outcome, KCI_LEDGER_TRANSFER_ID_REUSED,
                           "mint id: issue %s is already another transfer", id);
    return KC_OK;
}

static kc_err apply_issue(kci_ledger_batch *batch, const kci_ledger_grant *grant,
                          const uint8_t transfer_id[KCI_LEDGER_ID_BYTES],
                          const kci_ledger_coin *coins, kci_ledger_outcome *outcome)
{
    assert(outcome->result == KCI_LEDGER_OK);
    if (memcmp(grant->to, batch->store->mint.public_key, KCI_LEDGER_KEY_BYTES) == 0) {
        kci_ledger_refuse(outcome, KCI_LEDGER_MINT_TO_MINT);
        return KC_OK;
    }
    bool taken = false;
    kc_err err = check_issue_replay(batch, grant, transfer_id, outcome, &taken);
    if (err != KC_OK || taken) return err;
    kci_ledger_transfer issue;
    err = issue_prepare(batch, &issue, grant->to, transfer_id, coins, grant->denomination_count);
    if (err != KC_OK) return err;
    if (batch->counters.supply_total + issue.amount > KCI_LEDGER_AMOUNT_MAX) {
        kci_ledger_refuse_with(outcome, KCI_LEDGER_SUPPLY_EXCEEDED,
                               "minting %" PRIu64 " would take the total supply above %" PRIu64,
                               issue.amount, KCI_LEDGER_AMOUNT_MAX);
        kci_ledger_transfer_free(&issue);
        return KC_OK;
    }
    uint64_t supply_before = batch->counters.supply_total;
    err = issue_coins(batch, &issue);
    if (err == KC_OK) err = store_history_append(batch, &issue);
    if (err == KC_OK) {
        batch->counters.supply_total += issue.amount;
        assert(batch->counters.supply_total == supply_before + issue.amount);
    }
    kci_ledger_transfer_free(&issue);
    return err;
}

/* All grants or none: a nested transaction, aborted alone when a grant is
 * refused (or fails) after earlier ones were written; mints are rare
 * enough for the cost. */
kc_err kci_ledger_apply_mint_given(kci_ledger_batch *batch, const kci_ledger_grant *grants,
                                   uint32_t grant_count,
                                   const uint8_t (*transfer_ids)[KCI_LEDGER_ID_BYTES],
                                   kci_ledger_coin *const *coins, kci_ledger_outcome *outcome)
{
    assert(grant_count > 0);
    assert(outcome->result == KCI_LEDGER_OK);
    MDB_txn *parent = batch->txn, *child = NULL;
    kci_ledger_counters counters = batch->counters;
    kc_err err = store_error(mdb_txn_begin(batch->store->env, parent, 0, &child));
    if (err != KC_OK) return err;
    batch->txn = child;
    uint32_t replayed = 0;
    for (uint32_t index = 0; err == KC_OK && index < grant_count; index++) {
        assert(grants[index].denomination_count > 0);
        outcome->replayed = false;
        err = apply_issue(batch, &grants[index], transfer_ids[index], coins[index], outcome);
        replayed += outcome->replayed;
        if (outcome->result != KCI_LEDGER_OK) break;
    }
    outcome->replayed = replayed > 0;
    if (err == KC_OK && outcome->result == KCI_LEDGER_OK && replayed > 0 && replayed < grant_count)
        kci_ledger_refuse_with(outcome, KCI_LEDGER_TRANSFER_ID_REUSED,
                               "mint id: used before for other grants");
    batch->txn = parent;
    if (err == KC_OK && outcome->result == KCI_LEDGER_OK) return store_error(mdb_txn_commit(child));
    mdb_txn_abort(child);
    batch->counters = counters;
    return err;
}

kc_err kci_ledger_apply_mint(kci_ledger_batch *batch, const kci_ledger_grant *grants,
                             uint32_t grant_count, uint8_t (*transfer_ids)[KCI_LEDGER_ID_BYTES],
                             kci_ledger_coin **coins_out, kci_ledger_outcome *outcome)
{
    for (uint32_t index = 0; index < grant_count; index++)
        kci_ledger_issue_ids_make(transfer_ids[index], coins_out[index],
                                  grants[index].denominations, grants[index].denomination_count);
    return kci_ledger_apply_mint_given(batch, grants, grant_count,
                                       (const uint8_t(*)[KCI_LEDGER_ID_BYTES])transfer_ids,
                                       coins_out, outcome);
}

/* ---- transfer ---------------------------------------------------------------------- */

/* A transfer id seen before: the same transfer again is a harmless replay
 * (a client retrying after a lost acknowledgement); anything else is a
 * reused id. *taken says whether the id is taken (outcome set). */
static kc_err check_replay(kci_ledger_batch *batch, const kci_ledger_transfer *transfer,
                           kci_ledger_outcome *outcome, bool *taken)
{
    assert(outcome->result == KCI_LEDGER_OK && !outcome->replayed);
    store_head head;
    MDB_val value;
    kc_err err = store_head_get(batch->txn, batch->store, transfer->id, &head, &value);
    *taken = err != KC_ERR_NOT_FOUND;
    if (err != KC_OK) return err == KC_ERR_NOT_FOUND ? KC_OK : err;
    char id[37];
    kci_ledger_id_text(id, transfer->id);
    if (head.kind == transfer->kind &&
        memcmp(head.signature, transfer->signature, KCI_LEDGER_SIGNATURE_BYTES) == 0 &&
        memcmp(head.from, transfer->from, KCI_LEDGER_KEY_BYTES) == 0)
        outcome->replayed = true;
    else
        kci_ledger_refuse_with(outcome, KCI_LEDGER_TRANSFER_ID_REUSED,
                               "transfer id %s is already used by another transfer", id);
    assert(outcome->replayed != (outcome->result == KCI_LEDGER_TRANSFER_ID_REUSED));
    return KC_OK;
}

/* For a double spend: the hop of coin's trail that moved it away from
 * wallet (the newest such), into spent_by; false if wallet never held it. */
static bool find_spend(kci_ledger_batch *batch, const uint8_t coin[KCI_LEDGER_ID_BYTES],
                       uint32_t hop_count, const uint8_t wallet[KCI_LEDGER_KEY_BYTES],
                       uint8_t spent_by[KCI_LEDGER_ID_BYTES])
{
    for (uint32_t hop = hop_count; hop-- > 0;) {
        uint8_t transfer[KCI_LEDGER_ID_BYTES];
        store_head head;
        MDB_val transfer_value;
        if (store_trail_get(batch->txn, batch->store, coin, hop, transfer) != KC_OK ||
            store_head_get(batch->txn, batch->store, transfer, &head, &transfer_value) != KC_OK)
            return false;
        if (head.kind != KCI_LEDGER_KIND_ISSUE &&
            memcmp(head.from, wallet, KCI_LEDGER_KEY_BYTES) == 0) {
            memcpy(spent_by, transfer, KCI_LEDGER_ID_BYTES);
            return true;
        }
    }
    return false;
}

static void refuse_not_owner(kci_ledger_batch *batch, const kci_ledger_transfer *transfer,
                             const uint8_t coin[KCI_LEDGER_ID_BYTES],
                             const kci_ledger_coin_record *record, kci_ledger_outcome *outcome)
{
    /* Only a coin the payer does not hold (any more) is refused here. */
    assert(record->state != KCI_LEDGER_COIN_LIVE ||
           memcmp(record->owner, transfer->from, KCI_LEDGER_KEY_BYTES) != 0);
    char coin_text[37], last[37], spent[37], from[KCI_LEDGER_ADDRESS_TEXT_BYTES + 1];
    kci_ledger_id_text(coin_text, coin);
    kci_ledger_id_text(last, record->last_transfer);
    kci_ledger_hex(from, transfer->from, KCI_LEDGER_KEY_BYTES);
    uint8_t spent_by[KCI_LEDGER_ID_BYTES];
    if (record->state == KCI_LEDGER_COIN_HELD &&
        memcmp(record->owner, transfer->from, KCI_LEDGER_KEY_BYTES) == 0) {
        uint8_t hold[KCI_LEDGER_ID_BYTES] = {0};
        (void)store_held_get(batch->txn, batch->store, coin, hold);
        kci_ledger_id_text(spent, hold);
        kci_ledger_refuse_with(outcome, KCI_LEDGER_COIN_IS_HELD,
                               "coin %s is held by hold %s: it cannot move until the hold is "
                               "posted, voided or expired",
                               coin_text, spent);
    } else if (record->state != KCI_LEDGER_COIN_LIVE && record->state != KCI_LEDGER_COIN_HELD) {
        kci_ledger_refuse_with(outcome, KCI_LEDGER_COIN_IS_RETIRED,
                               "coin %s was retired by exchange %s and cannot move", coin_text,
                               last);
    } else if (find_spend(batch, coin, record->hop_count, transfer->from, spent_by)) {
        kci_ledger_id_text(spent, spent_by);
        kci_ledger_refuse_with(outcome, KCI_LEDGER_DOUBLE_SPEND,
                               "double spend refused: coin %s was already spent by transfer %s",
                               coin_text, spent);
    } else {
        kci_ledger_refuse_with(outcome, KCI_LEDGER_COIN_NOT_OWNED,
                               "coin %s is not owned by the signer %.16s...; transfer %s moved "
                               "it last",
                               coin_text, from, last);
    }
    assert(kci_ledger_result_code(outcome->result) == KCI_LEDGER_CODE_CONFLICT);
}

/* Checks every coin before anything is written: KC_OK and outcome
 * untouched when all are transferable. records gets each coin's record. */
static kc_err check_coins(kci_ledger_batch *batch, const kci_ledger_transfer *transfer,
                          kci_ledger_coin_record *records, kci_ledger_outcome *outcome)
{
    assert(outcome->result == KCI_LEDGER_OK);
    uint64_t sum = 0;
    for (uint32_t index = 0; index < transfer->coin_count; index++) {
        const kci_ledger_coin *coin = &transfer->coins[index];
        kc_err err = store_coin_get(batch->txn, batch->store, coin->id, &records[index]);
        char text[37] = "";
        if (err != KC_OK || records[index].denomination != coin->denomination)
            kci_ledger_id_text(text, coin->id); /* only a refusal names it */
        if (err == KC_ERR_NOT_FOUND) {
            kci_ledger_refuse_with(outcome, KCI_LEDGER_COIN_UNKNOWN, "unknown coin %s", text);
            return KC_OK;
        }
        if (err != KC_OK) return err;
        if (records[index].state != KCI_LEDGER_COIN_LIVE ||
            memcmp(records[index].owner, transfer->from, KCI_LEDGER_KEY_BYTES) != 0) {
            refuse_not_owner(batch, transfer, coin->id, &records[index], outcome);
            return KC_OK;
        }
        if (records[index].denomination != coin->denomination) {
            kci_ledger_refuse_with(outcome, KCI_LEDGER_DENOMINATION_MISMATCH,
                                   "coin %s is worth %" PRIu64 ", not %" PRIu64, text,
                                   records[index].denomination, coin->denomination);
            return KC_OK;
        }
        sum += coin->denomination;
    }
    if (sum != transfer->amount)
        kci_ledger_refuse_with(outcome, KCI_LEDGER_AMOUNT_MISMATCH,
                               "the coins add up to %" PRIu64 ", not the amount %" PRIu64, sum,
                               transfer->amount);
    assert(outcome->result != KCI_LEDGER_OK || sum == transfer->amount);
    return KC_OK;
}

/* Moves one checked coin: the payer's reference goes, the payee's comes
 * (or, retiring, the coin leaves the supply for the reaper's list). */
static kc_err move_coin(kci_ledger_batch *batch, const kci_ledger_transfer *transfer,
                        const uint8_t coin[KCI_LEDGER_ID_BYTES], kci_ledger_coin_record *record,
                        bool retire)
{
    assert(record->state == KCI_LEDGER_COIN_LIVE); /* check_coins let only live coins through */
    kc_err err = store_reference_change(batch, transfer->from, coin, -1);
    if (err == KC_OK && retire) {
        record->state = KCI_LEDGER_COIN_RETIRED;
        err = supply_add(batch, record->denomination, -1);
        MDB_val key = store_value(coin, KCI_LEDGER_ID_BYTES), empty = store_value("", 0);
        if (err == KC_OK)
            err = store_error(mdb_put(batch->txn, batch->store->retired, &key, &empty, 0));
    } else if (err == KC_OK) {
        err = store_reference_change(batch, transfer->to, coin, +1);
    }
    if (err == KC_OK) err = store_coin_move(batch, transfer, coin, record);
    /* The payer no longer owns it: it has the payee (the mint, retired) as its one owner. */
    assert(err != KC_OK || memcmp(record->owner, transfer->from, KCI_LEDGER_KEY_BYTES) != 0);
    return err;
}

/* Moves every coin from transfer->from to transfer->to (checked before). */
static kc_err move_coins(kci_ledger_batch *batch, const kci_ledger_transfer *transfer,
                         kci_ledger_coin_record *records, bool retire)
{
    assert(memcmp(transfer->from, transfer->to, KCI_LEDGER_KEY_BYTES) != 0); /* the codec's rule */
    assert(retire == (transfer->kind == KCI_LEDGER_KIND_EXCHANGE));
    kc_err err = KC_OK;
    for (uint32_t index = 0; err == KC_OK && index < transfer->coin_count; index++)
        err = move_coin(batch, transfer, transfer->coins[index].id, &records[index], retire);
    if (err == KC_OK) err = store_balance_add(batch, transfer->from, transfer->amount, -1);
    if (err == KC_OK && !retire) err = store_balance_add(batch, transfer->to, transfer->amount, +1);
    if (err == KC_OK) err = store_transfer_put(batch, transfer);
    return err;
}

static bool refuse_mint_party(kci_ledger_batch *batch, const kci_ledger_transfer *transfer,
                              kci_ledger_outcome *outcome)
{
    assert(transfer->kind != KCI_LEDGER_KIND_ISSUE); /* issues are made here, not received */
    const uint8_t *mint = batch->store->mint.public_key;
    if (memcmp(transfer->from, mint, KCI_LEDGER_KEY_BYTES) == 0 ||
        (transfer->kind != KCI_LEDGER_KIND_EXCHANGE &&
         memcmp(transfer->to, mint, KCI_LEDGER_KEY_BYTES) == 0)) {
        kci_ledger_refuse(outcome, KCI_LEDGER_MINT_NOT_A_WALLET);
        return true;
    }
    return false;
}

/* The checks both a transfer and an exchange pass before they write:
 * *go says whether to write (false: refused or replayed). */
kc_err store_check_spend(kci_ledger_batch *batch, const kci_ledger_transfer *transfer,
                         kci_ledger_coin_record *records, kci_ledger_outcome *outcome, bool *go)
{
    assert(transfer->coin_count > 0 && transfer->coin_count <= KCI_LEDGER_COINS_PER_TRANSFER_MAX);
    assert(outcome->result == KCI_LEDGER_OK);
    *go = false;
    bool taken = false;
    if (refuse_mint_party(batch, transfer, outcome)) return KC_OK;
    kc_err err = check_replay(batch, transfer, outcome, &taken);
    if (err != KC_OK || taken) return err;
    err = check_coins(batch, transfer, records, outcome);
    *go = err == KC_OK && outcome->result == KCI_LEDGER_OK;
    return err;
}

kc_err kci_ledger_apply_transfer(kci_ledger_batch *batch, const kci_ledger_transfer *transfer,
                                 kci_ledger_outcome *outcome)
{
    assert(transfer->kind == KCI_LEDGER_KIND_TRANSFER);
    kci_ledger_coin_record records[KCI_LEDGER_COINS_PER_TRANSFER_MAX];
    bool go = false;
    kc_err err = store_check_spend(batch, transfer, records, outcome, &go);
    if (err != KC_OK || !go) return err;
    uint64_t supply = batch->counters.supply_total;
    err = move_coins(batch, transfer, records, false);
    if (err == KC_OK) err = store_history_append(batch, transfer);
    assert(batch->counters.supply_total == supply); /* a transfer moves value, makes none */
    return err;
}

kc_err kci_ledger_apply_exchange_given(kci_ledger_batch *batch, const kci_ledger_transfer *exchange,
                                       const uint8_t issue_id[KCI_LEDGER_ID_BYTES],
                                       const kci_ledger_coin *coins, kci_ledger_outcome *outcome)
{
    assert(exchange->kind == KCI_LEDGER_KIND_EXCHANGE);
    kci_ledger_coin_record records[KCI_LEDGER_COINS_PER_TRANSFER_MAX];
    bool go = false;
    kc_err err = store_check_spend(batch, exchange, records, outcome, &go);
    if (err != KC_OK || !go) return err;
    err = move_coins(batch, exchange, records, true);
    kci_ledger_transfer issue;
    if (err == KC_OK)
        err = issue_prepare(batch, &issue, exchange->from, issue_id, coins,
                            exchange->denomination_count);
    if (err != KC_OK) return err;
    /* The retired value comes back as the new coins: the supply is unchanged. */
    assert(issue.amount == exchange->amount);
    err = issue_coins(batch, &issue);
    kci_ledger_transfer_free(&issue);
    return err;
}

kc_err kci_ledger_apply_exchange(kci_ledger_batch *batch, const kci_ledger_transfer *exchange,
                                 uint8_t issue_id[KCI_LEDGER_ID_BYTES], kci_ledger_coin *coins_out,
                                 kci_ledger_outcome *outcome)
{
    kci_ledger_issue_ids_make(issue_id, coins_out, exchange->denominations,
                              exchange->denomination_count);
    return kci_ledger_apply_exchange_given(batch, exchange, issue_id, coins_out, outcome);
}

/* ---- payment claims ---------------------------------------------------------------- */

/* Why head cannot be the payment (outcome set), or nothing. */
static void check_payment(const store_head *head, const char *id,
                          const uint8_t payee[KCI_LEDGER_KEY_BYTES], uint64_t min_amount,
                          const char *request_id, kci_ledger_outcome *outcome)
{
    assert(outcome->result == KCI_LEDGER_OK);
    assert(memchr(head->paid_request, '\0', sizeof head->paid_request) != NULL);
    char to[KCI_LEDGER_ADDRESS_TEXT_BYTES + 1];
    kci_ledger_hex(to, head->to, KCI_LEDGER_KEY_BYTES);
    if (head->kind != KCI_LEDGER_KIND_TRANSFER)
        kci_ledger_refuse_with(outcome, KCI_LEDGER_PAYMENT_NOT_TRANSFER,
                               "payment %s: not a transfer between wallets", id);
    else if (memcmp(head->to, payee, KCI_LEDGER_KEY_BYTES) != 0)
        kci_ledger_refuse_with(outcome, KCI_LEDGER_PAYMENT_WRONG_PAYEE,
                               "payment %s paid wallet %.16s..., not this service's wallet", id,
                               to);
    else if (head->amount < min_amount)
        kci_ledger_refuse_with(outcome, KCI_LEDGER_PAYMENT_TOO_SMALL,
                               "payment %s paid %" PRIu64 ", the price is %" PRIu64, id,
                               head->amount, min_amount);
    else if (head->paid_request[0] != '\0' && strcmp(head->paid_request, request_id) != 0)
        kci_ledger_refuse_with(outcome, KCI_LEDGER_PAYMENT_CLAIMED,
                               "payment %s already paid request %s", id, head->paid_request);
}

kc_err kci_ledger_apply_payment(kci_ledger_batch *batch,
                                const uint8_t transfer[KCI_LEDGER_ID_BYTES],
                                const uint8_t payee[KCI_LEDGER_KEY_BYTES], uint64_t min_amount,
                                const char *request_id, kci_ledger_outcome *outcome)
{
    assert(outcome->result == KCI_LEDGER_OK);
    store_head head;
    MDB_val value;
    char id[37];
    kci_ledger_id_text(id, transfer);
    kc_err err = store_head_get(batch->txn, batch->store, transfer, &head, &value);
    if (err == KC_ERR_NOT_FOUND) {
        kci_ledger_refuse_with(outcome, KCI_LEDGER_PAYMENT_UNKNOWN,
                               "payment %s: no such transfer in the ledger", id);
        return KC_OK;
    }
    if (err != KC_OK) return err;
    head.paid_request[STORE_PAID_REQUEST_BYTES - 1] = '\0';
    check_payment(&head, id, payee, min_amount, request_id, outcome);
    if (outcome->result != KCI_LEDGER_OK || head.paid_request[0] != '\0') {
        outcome->replayed = outcome->result == KCI_LEDGER_OK;
        assert(!outcome->replayed || strcmp(head.paid_request, request_id) == 0);
        return KC_OK;
    }
    /* Rewrite the record in place with the request that it paid. */
    uint8_t *copy = malloc(value.mv_size);
    if (copy == NULL) return kci_fail(KC_ERR_NOMEM, "out of memory");
    memcpy(copy, value.mv_data, value.mv_size);
    snprintf(head.paid_request, sizeof head.paid_request, "%s", request_id);
    memcpy(copy, &head, sizeof head);
    MDB_val key = store_value(transfer, KCI_LEDGER_ID_BYTES);
    MDB_val updated = store_value(copy, value.mv_size);
    err = store_error(mdb_put(batch->txn, batch->store->transfers, &key, &updated, 0));
    free(copy);
    return err;
}

/* ---- the reaper --------------------------------------------------------------------- */

/* Frees coin's trail rows; the record stays (REAPED) so the id stays spent. */
static kc_err reap_coin(kci_ledger_batch *batch, const uint8_t coin[KCI_LEDGER_ID_BYTES],
                        kci_ledger_coin_record *record)
{
    assert(record->state == KCI_LEDGER_COIN_RETIRED);
    kc_err err = KC_OK;
    for (uint32_t hop = 0; err == KC_OK && hop < record->hop_count; hop++) {
        uint8_t key_bytes[STORE_TRAIL_KEY_BYTES];
        store_trail_key(key_bytes, coin, hop);
        MDB_val key = store_value(key_bytes, sizeof key_bytes);
        err = store_error(mdb_del(batch->txn, batch->store->trail, &key, NULL));
        if (err == KC_ERR_NOT_FOUND) err = KC_OK;
    }
    record->state = KCI_LEDGER_COIN_REAPED;
    assert(record->hop_count > 0); /* kept: the id stays spent, its trail length known */
    if (err == KC_OK) err = store_coin_put(batch, coin, record);
    MDB_val key = store_value(coin, KCI_LEDGER_ID_BYTES);
    if (err == KC_OK) err = store_error(mdb_del(batch->txn, batch->store->retired, &key, NULL));
    return err;
}

/* Up to count_max coins of the retired list into coins. */
static kc_err collect_retired(kci_ledger_batch *batch, uint8_t (*coins)[KCI_LEDGER_ID_BYTES],
                              uint32_t count_max, uint32_t *found)
{
    assert(count_max <= REAP_COLLECT_MAX);
    *found = 0;
    MDB_cursor *cursor = NULL;
    int rc = mdb_cursor_open(batch->txn, batch->store->retired, &cursor);
    MDB_val key, value;
    for (int op = MDB_FIRST; rc == 0 && *found < count_max; op = MDB_NEXT) {
        rc = mdb_cursor_get(cursor, &key, &value, (MDB_cursor_op)op);
        if (rc == 0 && key.mv_size == KCI_LEDGER_ID_BYTES)
            memcpy(coins[(*found)++], key.mv_data, KCI_LEDGER_ID_BYTES);
    }
    if (cursor != NULL) mdb_cursor_close(cursor);
    assert(*found <= count_max);
    kc_err err = store_error(rc);
    return err == KC_ERR_NOT_FOUND ? KC_OK : err;
}

kc_err kci_ledger_reap(kci_ledger_batch *batch, int64_t age_ms_min, uint32_t count_max,
                       uint32_t *reaped_count)
{
    assert(age_ms_min >= 0);
    *reaped_count = 0;
    uint8_t coins[REAP_COLLECT_MAX][KCI_LEDGER_ID_BYTES];
    uint32_t found = 0;
    /* Collect first, then write: a cursor must not see its own deletes. */
    kc_err err = collect_retired(
        batch, coins, count_max < REAP_COLLECT_MAX ? count_max : REAP_COLLECT_MAX, &found);
    for (uint32_t index = 0; err == KC_OK && index < found; index++) {
        kci_ledger_coin_record record;
        err = store_coin_get(batch->txn, batch->store, coins[index], &record);
        if ((err == KC_OK && record.state != KCI_LEDGER_COIN_RETIRED) || err == KC_ERR_NOT_FOUND) {
            char text[37];
            kci_ledger_id_text(text, coins[index]);
            err = store_invariant_broken("coin %s is on the retired list but not retired", text);
        }
        if (err != KC_OK) break;
        if (batch->now_ms - record.moved_ms < age_ms_min) continue;
        err = reap_coin(batch, coins[index], &record);
        if (err == KC_OK) (*reaped_count)++;
    }
    assert(*reaped_count <= found);
    return err;
}
