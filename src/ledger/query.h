/* query.h - the read side of the ledger: the JSON replies of balance,
 * coins, trail, history and transfer.get (query.c), and the audit
 * (audit.c). Each runs in one read snapshot (store.h), so it sees one
 * committed state, and never blocks the writer.
 *
 * Paged replies stay under bytes_max (the fabric's max_payload) and say
 * where to continue ("next"). */
#ifndef KCI_LEDGER_QUERY_H
#define KCI_LEDGER_QUERY_H

#include <jansson.h>
#include <stddef.h>

#include "ledger/codec.h"
#include "ledger/store.h"

enum {
    KCI_LEDGER_AUDIT_PROBLEMS_MAX = 32,        /* problems listed in an audit reply */
    KCI_LEDGER_AUDIT_DENOMINATIONS_MAX = 1000, /* supply_by_denomination entries listed */
    KCI_LEDGER_REPLY_RESERVE_BYTES = 2048,     /* headers and the envelope */
};

/* Each returns a new JSON object, or NULL with outcome set (or, when
 * outcome->code is 0, NULL means out of memory or a storage error). */
json_t *kci_ledger_query_balance(kci_ledger_read *read, const kci_ledger_request *request,
                                 kci_ledger_outcome *outcome);
json_t *kci_ledger_query_coins(kci_ledger_read *read, const kci_ledger_request *request,
                               size_t bytes_max, kci_ledger_outcome *outcome);
json_t *kci_ledger_query_trail(kci_ledger_read *read, const kci_ledger_request *request,
                               kci_ledger_outcome *outcome);
json_t *kci_ledger_query_history(kci_ledger_read *read, const kci_ledger_request *request,
                                 size_t bytes_max, kci_ledger_outcome *outcome);
json_t *kci_ledger_query_transfer(kci_ledger_read *read, const kci_ledger_request *request,
                                  kci_ledger_outcome *outcome);

/* The audit (audit.c): total supply equals the sum of balances and of live
 * coins; every live coin has exactly one reference, from its owner; every
 * stored transfer's signature verifies (issues by the mint's key); every
 * trail chains from the mint's issue to the owner. {"ok": ..., counts,
 * "problems": [...]}. */
json_t *kci_ledger_audit(kci_ledger_read *read, kci_ledger_outcome *outcome);

/* Helpers shared by both files. */
json_t *kci_ledger_coins_json(const kci_ledger_coin *coins, uint32_t count);
json_t *kci_ledger_address_json(const uint8_t address[KCI_LEDGER_KEY_BYTES]);
json_t *kci_ledger_id_json(const uint8_t id[KCI_LEDGER_ID_BYTES]);
const char *kci_ledger_kind_name(uint8_t kind);

#endif
