/* metrics.h - the ledger's Prometheus metrics (common/metrics.h;
 * docs/operations.md lists them): transfers applied, refusals by reason,
 * how many requests a write batch carried, how long a commit and a
 * signature check take. Bumped in serve.c and store.c; registered when a
 * ledger starts. */
#ifndef KCI_LEDGER_METRICS_H
#define KCI_LEDGER_METRICS_H

#include <stdint.h>

#include "common/metrics.h"
#include "ledger/result.h"

typedef struct kci_ledger_metrics {
    kci_counter transfers;         /* applied, not replayed (batch entries one each) */
    kci_histogram batch_requests;  /* requests answered per write batch */
    kci_histogram commit_duration; /* nanoseconds of each LMDB commit (its sync included) */
    kci_histogram verify_duration; /* nanoseconds of each Ed25519 check of a transfer */
} kci_ledger_metrics;

extern kci_ledger_metrics kci_ledger_metric_values;

/* One refusal sent (KCI_LEDGER_OK is not one and is ignored). */
void kci_ledger_metrics_refused(kci_ledger_result result);
/* Idempotent; called by kci_ledger_start. */
void kci_ledger_metrics_register(void);

#endif
