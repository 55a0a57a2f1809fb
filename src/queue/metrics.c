/* metrics.c - the persister's metric table (see metrics.h). The sync
 * latency buckets run from 50 us (a write-back cache) to 2.5 s (a disk
 * that stalls); most SSDs land between 0.1 and 5 ms. */
#include "queue/metrics.h"

#include <stdint.h>

static const uint64_t SYNC_BOUNDS_NS[] = {
    50 * KCI_NS_PER_US,  100 * KCI_NS_PER_US,  250 * KCI_NS_PER_US,  500 * KCI_NS_PER_US,
    1 * KCI_NS_PER_MS,   2500 * KCI_NS_PER_US, 5 * KCI_NS_PER_MS,    10 * KCI_NS_PER_MS,
    25 * KCI_NS_PER_MS,  50 * KCI_NS_PER_MS,   100 * KCI_NS_PER_MS,  250 * KCI_NS_PER_MS,
    500 * KCI_NS_PER_MS, 1000 * KCI_NS_PER_MS, 2500 * KCI_NS_PER_MS,
};

kci_persister_metrics kci_persister_metric_values = {
    .sync_duration = KCI_HISTOGRAM_WITH(SYNC_BOUNDS_NS),
};

#define VALUES kci_persister_metric_values

static const kci_metric PERSISTER_METRICS[] = {
    KCI_COUNTER_METRIC("kcobra_persister_submitted_total",
                       "Requests stored durably and acknowledged to their submitter.",
                       &VALUES.submitted),
    KCI_COUNTER_METRIC("kcobra_persister_submit_failures_total",
                       "Submits refused or not stored (the submitter was told).",
                       &VALUES.submit_failures),
    KCI_COUNTER_METRIC("kcobra_persister_appends_total",
                       "Records made durable: requests, replies and markers.", &VALUES.appends),
    KCI_COUNTER_METRIC("kcobra_persister_append_failures_total",
                       "Records the log or stream failed to store.", &VALUES.append_failures),
    KCI_COUNTER_METRIC("kcobra_persister_appended_bytes_total",
                       "Bytes written to the log or stream (records with their headers).",
                       &VALUES.appended_bytes),
    KCI_COUNTER_METRIC("kcobra_persister_syncs_total", "fdatasync calls on the log's segments.",
                       &VALUES.syncs),
    KCI_HISTOGRAM_METRIC("kcobra_persister_sync_duration_seconds",
                         "How long each fdatasync of the log took.", 1e-9, &VALUES.sync_duration),
    KCI_COUNTER_METRIC("kcobra_persister_replies_total", "First replies to requests recorded.",
                       &VALUES.replies),
    KCI_COUNTER_METRIC("kcobra_persister_redeliveries_total",
                       "Dispatches of a request after its first (no reply in time).",
                       &VALUES.redeliveries),
    KCI_COUNTER_METRIC("kcobra_persister_deaths_total",
                       "Requests that became dead: no reply after attempts_max dispatches.",
                       &VALUES.deaths),
    KCI_COUNTER_METRIC("kcobra_persister_requeued_total",
                       "Dead requests brought back to pending (kcobra queue requeue).",
                       &VALUES.requeues),
    KCI_GAUGE_METRIC("kcobra_persister_pending_requests", "Requests stored with no reply yet.",
                     &VALUES.pending),
    KCI_GAUGE_METRIC("kcobra_persister_dead_requests",
                     "Requests dead now: no reply after attempts_max dispatches.", &VALUES.dead),
};

static const kci_metric_set PERSISTER_METRIC_SET = KCI_METRIC_SET(PERSISTER_METRICS);

void kci_persister_metrics_register(void)
{
    kci_metrics_register(&PERSISTER_METRIC_SET);
}
