/* batch_apply.h - applying an entry of the replicated log (batch_codec.h)
 * to the store: the one path by which both the active ledger (its own
 * entry, once JetStream acknowledged it) and every standby (following the
 * stream) change their state in storage jetstream, so the state after
 * entry N is the same bytes everywhere. */
#ifndef KCI_LEDGER_BATCH_APPLY_H
#define KCI_LEDGER_BATCH_APPLY_H

#include <stddef.h>
#include <stdint.h>

#include "kingcobra/err.h"
#include "ledger/batch_codec.h"
#include "ledger/store.h"

/* chain_out = BLAKE2b-256(previous || bytes): the chain digest after an
 * entry. previous is all zero before the first entry. */
void kci_ledger_log_chain(const uint8_t previous[KCI_LEDGER_DIGEST_BYTES], const uint8_t *bytes,
                          size_t length, uint8_t chain_out[KCI_LEDGER_DIGEST_BYTES]);

/* Applies entry (decoded from bytes, length) as log entry sequence, which
 * must follow *applied (updated on success), in one LMDB transaction with
 * the entry's clock, and commits it with the new position. outcomes (one
 * per op, zeroed by the caller; NULL: not wanted) get each op's result. A
 * mint key other than the store's is KC_ERR_CONFIG; a storage failure
 * leaves nothing applied. */
kc_err kci_ledger_log_apply(kci_ledger_store *store, kci_ledger_applied *applied, uint64_t sequence,
                            const kci_ledger_log_entry *entry, const uint8_t *bytes, size_t length,
                            kci_ledger_outcome *outcomes);

/* One entry of a group (kci_ledger_log_apply_group). */
typedef struct kci_ledger_log_item {
    const kci_ledger_log_entry *entry;
    const uint8_t *bytes;
    size_t length;
} kci_ledger_log_item;

/* Applies items[0..count) as the log entries after *applied (updated on
 * success), in order, each by its own clock and with its own chain digest,
 * in one LMDB transaction and one commit: the same state, byte for byte,
 * as count kci_ledger_log_apply calls, with one sync instead of count and
 * each page the entries share written once. For catching up on a backlog
 * (a standby behind, a restart): the log is durable already, so nothing is
 * acknowledged per entry and no outcomes are kept. All or nothing; errors
 * as kci_ledger_log_apply. */
kc_err kci_ledger_log_apply_group(kci_ledger_store *store, kci_ledger_applied *applied,
                                  const kci_ledger_log_item *items, uint32_t count);

#endif
