/* metrics.h - the persister's Prometheus metrics (common/metrics.h;
 * docs/operations.md lists them): what its log appends and syncs, how
 * long a sync takes, and the requests' states. Bumped where the work is
 * done (log.c, store_js.c, state.c, redelivery.c); registered when a
 * persister starts. */
#ifndef KCI_QUEUE_METRICS_H
#define KCI_QUEUE_METRICS_H

#include "common/metrics.h"

typedef struct kci_persister_metrics {
    kci_counter submitted;       /* requests stored and acknowledged */
    kci_counter submit_failures; /* refused or failed */
    kci_counter appends;         /* records made durable: requests, replies, markers */
    kci_counter append_failures;
    kci_counter appended_bytes;
    kci_counter syncs;
    kci_histogram sync_duration; /* nanoseconds */
    kci_counter replies;         /* first replies recorded */
    kci_counter redeliveries;    /* dispatches after the first */
    kci_counter deaths;          /* requests that became dead */
    kci_counter requeues;        /* dead requests brought back */
    kci_gauge pending;           /* durable, no reply yet */
    kci_gauge dead;              /* dead now */
} kci_persister_metrics;

extern kci_persister_metrics kci_persister_metric_values;

/* Idempotent; called by kci_persister_start. */
void kci_persister_metrics_register(void);

#endif
