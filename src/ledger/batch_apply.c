/* batch_apply.c - one log entry into the store (batch_apply.h), with the
 * store's own state transitions (store_apply.c): the ids and the clock
 * come from the entry, so the result is the same on every replica. A
 * refusal inside (a double spend lost to an earlier op) is part of the
 * deterministic result, not a failure: only storage errors abort. */
#include "batch_apply.h"

#include <assert.h>
#include <sodium.h>
#include <string.h>

#include "service/last_error.h"

void kci_ledger_log_chain(const uint8_t previous[KCI_LEDGER_DIGEST_BYTES], const uint8_t *bytes,
                          size_t length, uint8_t chain_out[KCI_LEDGER_DIGEST_BYTES])
{
    crypto_generichash_state state;
    crypto_generichash_init(&state, NULL, 0, KCI_LEDGER_DIGEST_BYTES);
    crypto_generichash_update(&state, previous, KCI_LEDGER_DIGEST_BYTES);
    crypto_generichash_update(&state, bytes, length);
    crypto_generichash_final(&state, chain_out, KCI_LEDGER_DIGEST_BYTES);
}

static kc_err apply_op(kci_ledger_batch *batch, const kci_ledger_log_op *op,
                       kci_ledger_outcome *outcome)
{
    assert(outcome->result == KCI_LEDGER_OK);
    switch (op->kind) {
    case KCI_LEDGER_LOG_MINT:
        return kci_ledger_apply_mint_given(batch, op->grants, op->grant_count,
                                           (const uint8_t(*)[KCI_LEDGER_ID_BYTES])op->issue_ids,
                                           op->issued, outcome);
    case KCI_LEDGER_LOG_TRANSFER: return kci_ledger_apply_transfer(batch, &op->transfer, outcome);
    case KCI_LEDGER_LOG_EXCHANGE:
        return kci_ledger_apply_exchange_given(batch, &op->transfer, op->issue_ids[0],
                                               op->issued[0], outcome);
    case KCI_LEDGER_LOG_PAYMENT:
        return kci_ledger_apply_payment(batch, op->paid_transfer, op->payee, op->min_amount,
                                        op->request_id, outcome);
    case KCI_LEDGER_LOG_REAP: {
        uint32_t reaped = 0;
        return kci_ledger_reap(batch, op->reap_age_ms, op->reap_count_max, &reaped);
    }
    case KCI_LEDGER_LOG_HOLD: return kci_ledger_apply_hold(batch, &op->transfer, outcome);
    case KCI_LEDGER_LOG_SETTLE:
        return kci_ledger_apply_settle(batch, op->settle, op->paid_transfer, op->payee,
                                       op->request_id, op->min_amount, op->signature, outcome);
    case KCI_LEDGER_LOG_EXPIRE: {
        uint32_t expired = 0; /* by the entry's clock: the same holds on every replica */
        return kci_ledger_expire(batch, op->expire_count_max, &expired);
    }
    default: assert(false); return KC_ERR_INVALID_ARGUMENT; /* the decoder let only these through */
    }
}

/* One entry into an open batch: its ops by its clock, then its position. */
static kc_err apply_entry(kci_ledger_store *store, kci_ledger_batch *batch,
                          kci_ledger_applied *position, uint64_t sequence,
                          const kci_ledger_log_item *item, kci_ledger_outcome *outcomes)
{
    assert(sequence == position->sequence + 1); /* the log is applied in order, once */
    const kci_ledger_log_entry *entry = item->entry;
    if (memcmp(entry->mint, kci_ledger_store_mint_key(store), KCI_LEDGER_KEY_BYTES) != 0)
        return kci_fail(KC_ERR_CONFIG,
                        "ledger log entry %llu names another mint than %s: every replica "
                        "needs the same mint.key",
                        (unsigned long long)sequence, kci_ledger_store_mint_address(store));
    kci_ledger_batch_set_now(batch, entry->now_ms);
    kc_err err = KC_OK;
    for (uint32_t index = 0; err == KC_OK && index < entry->op_count; index++) {
        kci_ledger_outcome scratch = {0};
        err = apply_op(batch, &entry->ops[index], outcomes != NULL ? &outcomes[index] : &scratch);
    }
    kci_ledger_applied next = {.sequence = sequence};
    kci_ledger_log_chain(position->chain, item->bytes, item->length, next.chain);
    if (err == KC_OK) err = kci_ledger_batch_set_applied(batch, &next);
    if (err == KC_OK) *position = next;
    return err;
}

kc_err kci_ledger_log_apply(kci_ledger_store *store, kci_ledger_applied *applied, uint64_t sequence,
                            const kci_ledger_log_entry *entry, const uint8_t *bytes, size_t length,
                            kci_ledger_outcome *outcomes)
{
    kci_ledger_log_item item = {.entry = entry, .bytes = bytes, .length = length};
    kci_ledger_batch *batch = NULL;
    kci_ledger_applied next = *applied;
    kc_err err = kci_ledger_batch_begin_at(&batch, store, entry->now_ms);
    if (err == KC_OK) err = apply_entry(store, batch, &next, sequence, &item, outcomes);
    if (err == KC_OK)
        err = kci_ledger_batch_commit(batch);
    else
        kci_ledger_batch_abort(batch);
    if (err == KC_OK) *applied = next;
    return err;
}

kc_err kci_ledger_log_apply_group(kci_ledger_store *store, kci_ledger_applied *applied,
                                  const kci_ledger_log_item *items, uint32_t count)
{
    assert(count > 0);
    kci_ledger_batch *batch = NULL;
    kci_ledger_applied next = *applied;
    kc_err err = kci_ledger_batch_begin_at(&batch, store, items[0].entry->now_ms);
    for (uint32_t index = 0; err == KC_OK && index < count; index++)
        err = apply_entry(store, batch, &next, next.sequence + 1, &items[index], NULL);
    if (err == KC_OK)
        err = kci_ledger_batch_commit(batch);
    else
        kci_ledger_batch_abort(batch);
    if (err == KC_OK) *applied = next;
    return err;
}
