/* metrics.c - the ledger's metric table (see metrics.h). Every refusal
 * reason of result.h is a series from the start, named after its enum
 * value in snake_case, so a dashboard can show a reason that is still 0.
 * Buckets: a commit syncs LMDB (0.1 to 100 ms on most disks); an Ed25519
 * check takes tens of microseconds; a batch holds up to batch_max
 * requests. */
#include "ledger/metrics.h"

#include <stddef.h>

/* Each refusal of result.h and its label value. */
#define LEDGER_REFUSALS(X)                                                                         \
    X(KCI_LEDGER_BAD_HEADERS, "bad_headers")                                                       \
    X(KCI_LEDGER_MALFORMED, "malformed")                                                           \
    X(KCI_LEDGER_TOO_LARGE, "too_large")                                                           \
    X(KCI_LEDGER_OPERATION_UNKNOWN, "operation_unknown")                                           \
    X(KCI_LEDGER_BAD_SIGNATURE, "bad_signature")                                                   \
    X(KCI_LEDGER_DENOMINATION_MISMATCH, "denomination_mismatch")                                   \
    X(KCI_LEDGER_AMOUNT_MISMATCH, "amount_mismatch")                                               \
    X(KCI_LEDGER_COIN_UNKNOWN, "coin_unknown")                                                     \
    X(KCI_LEDGER_COIN_NOT_OWNED, "coin_not_owned")                                                 \
    X(KCI_LEDGER_COIN_IS_RETIRED, "coin_is_retired")                                               \
    X(KCI_LEDGER_DOUBLE_SPEND, "double_spend")                                                     \
    X(KCI_LEDGER_TRANSFER_ID_REUSED, "transfer_id_reused")                                         \
    X(KCI_LEDGER_MINT_NOT_A_WALLET, "mint_not_a_wallet")                                           \
    X(KCI_LEDGER_TRANSFER_UNKNOWN, "transfer_unknown")                                             \
    X(KCI_LEDGER_MINT_DISABLED, "mint_disabled")                                                   \
    X(KCI_LEDGER_MINT_TO_MINT, "mint_to_mint")                                                     \
    X(KCI_LEDGER_SUPPLY_EXCEEDED, "supply_exceeded")                                               \
    X(KCI_LEDGER_PAYMENT_UNKNOWN, "payment_unknown")                                               \
    X(KCI_LEDGER_PAYMENT_NOT_TRANSFER, "payment_not_transfer")                                     \
    X(KCI_LEDGER_PAYMENT_WRONG_PAYEE, "payment_wrong_payee")                                       \
    X(KCI_LEDGER_PAYMENT_TOO_SMALL, "payment_too_small")                                           \
    X(KCI_LEDGER_PAYMENT_CLAIMED, "payment_claimed")                                               \
    X(KCI_LEDGER_QUEUE_FULL, "queue_full")                                                         \
    X(KCI_LEDGER_AUDIT_BUSY, "audit_busy")                                                         \
    X(KCI_LEDGER_OUT_OF_MEMORY, "out_of_memory")                                                   \
    X(KCI_LEDGER_STORAGE_FAILED, "storage_failed")                                                 \
    X(KCI_LEDGER_STORAGE_FULL, "storage_full")                                                     \
    X(KCI_LEDGER_READ_FAILED, "read_failed")                                                       \
    X(KCI_LEDGER_COIN_IS_HELD, "coin_is_held")                                                     \
    X(KCI_LEDGER_HOLD_UNKNOWN, "hold_unknown")                                                     \
    X(KCI_LEDGER_HOLD_NOT_PAYEE, "hold_not_payee")                                                 \
    X(KCI_LEDGER_HOLD_EXPIRED, "hold_expired")                                                     \
    X(KCI_LEDGER_HOLD_POSTED, "hold_posted")                                                       \
    X(KCI_LEDGER_HOLD_VOIDED, "hold_voided")                                                       \
    X(KCI_LEDGER_HOLD_TOO_SMALL, "hold_too_small")                                                 \
    X(KCI_LEDGER_HOLD_CLAIMED, "hold_claimed")                                                     \
    X(KCI_LEDGER_HOLD_BAD_EXPIRY, "hold_bad_expiry")

#define REFUSAL_SLOT(result, label) SLOT_##result,
#define REFUSAL_LABEL(result, label) label,
#define REFUSAL_CASE(result, label)                                                                \
    case result: return SLOT_##result;

enum { LEDGER_REFUSALS(REFUSAL_SLOT) REFUSAL_COUNT };
_Static_assert((int)REFUSAL_COUNT <= (int)KCI_METRIC_LABEL_VALUES_MAX, "a series per refusal");

static const char *const REFUSAL_LABELS[REFUSAL_COUNT] = {LEDGER_REFUSALS(REFUSAL_LABEL)};
static kci_counter refusals[REFUSAL_COUNT];

static const uint64_t BATCH_BOUNDS[] = {1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024};
static const uint64_t COMMIT_BOUNDS_NS[] = {
    100 * KCI_NS_PER_US,  250 * KCI_NS_PER_US, 500 * KCI_NS_PER_US, 1 * KCI_NS_PER_MS,
    2500 * KCI_NS_PER_US, 5 * KCI_NS_PER_MS,   10 * KCI_NS_PER_MS,  25 * KCI_NS_PER_MS,
    50 * KCI_NS_PER_MS,   100 * KCI_NS_PER_MS, 250 * KCI_NS_PER_MS, 1000 * KCI_NS_PER_MS,
};
static const uint64_t VERIFY_BOUNDS_NS[] = {
    10 * KCI_NS_PER_US,  25 * KCI_NS_PER_US,  50 * KCI_NS_PER_US, 100 * KCI_NS_PER_US,
    250 * KCI_NS_PER_US, 500 * KCI_NS_PER_US, 1 * KCI_NS_PER_MS,  10 * KCI_NS_PER_MS,
};

kci_ledger_metrics kci_ledger_metric_values = {
    .batch_requests = KCI_HISTOGRAM_WITH(BATCH_BOUNDS),
    .commit_duration = KCI_HISTOGRAM_WITH(COMMIT_BOUNDS_NS),
    .verify_duration = KCI_HISTOGRAM_WITH(VERIFY_BOUNDS_NS),
};

#define VALUES kci_ledger_metric_values

static const kci_metric LEDGER_METRICS[] = {
    KCI_COUNTER_METRIC("kcobra_ledger_transfers_total",
                       "Transfers applied (each entry of a batch; replays not counted).",
                       &VALUES.transfers),
    {.name = "kcobra_ledger_refusals_total",
     .help = "Requests or transfers refused, by reason (docs/ledger.md lists them).",
     .type = KCI_METRIC_COUNTER,
     .label = "reason",
     .label_values = REFUSAL_LABELS,
     .series_count = REFUSAL_COUNT,
     .series.counters = refusals},
    KCI_HISTOGRAM_METRIC("kcobra_ledger_batch_requests",
                         "Write requests answered per batch (one LMDB transaction).", 1.0,
                         &VALUES.batch_requests),
    KCI_HISTOGRAM_METRIC("kcobra_ledger_commit_duration_seconds",
                         "How long each LMDB commit took, its sync included.", 1e-9,
                         &VALUES.commit_duration),
    KCI_HISTOGRAM_METRIC("kcobra_ledger_signature_verification_duration_seconds",
                         "How long each check of a transfer's Ed25519 signature took.", 1e-9,
                         &VALUES.verify_duration),
};

static const kci_metric_set LEDGER_METRIC_SET = KCI_METRIC_SET(LEDGER_METRICS);

static int refusal_slot(kci_ledger_result result)
{
    switch (result) {
        LEDGER_REFUSALS(REFUSAL_CASE)
    case KCI_LEDGER_OK: break;
    }
    return -1;
}

void kci_ledger_metrics_refused(kci_ledger_result result)
{
    int slot = refusal_slot(result);
    if (slot >= 0) kci_counter_inc(&refusals[slot]);
}

void kci_ledger_metrics_register(void)
{
    kci_metrics_register(&LEDGER_METRIC_SET);
}
