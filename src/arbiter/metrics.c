/* metrics.c - the arbiter's metric table (see metrics.h). The node
 * gauges are counted by kci_arbiter_metrics_count_nodes, under the
 * arbiter's lock, each tick and after each verdict: a scrape never takes
 * that lock. */
#include "arbiter/metrics.h"

#include "arbiter_internal.h"

kci_arbiter_metrics kci_arbiter_metric_values;

#define VALUES kci_arbiter_metric_values

static const char *const SAMPLE_SOURCES[KCI_ARBITER_SAMPLE_SOURCES] = {"observed", "trusted",
                                                                       "signed"};
static const char *const VERDICT_ACTIONS[] = {"quarantine", "reinstate"};
/* In node_status order (arbiter_internal.h). */
static const char *const NODE_STATES[] = {"active", "quarantined", "probation"};
_Static_assert(NODE_ACTIVE == 0 && NODE_QUARANTINED == 1 && NODE_PROBATION == 2,
               "NODE_STATES follows node_status");

static const kci_metric ARBITER_METRICS[] = {
    {.name = "kcobra_arbiter_samples_total",
     .help = "QoS samples taken, by source: observed on the fabric, sent by a trusted node, "
             "or signed by a reporter in node_keys.",
     .type = KCI_METRIC_COUNTER,
     .label = "source",
     .label_values = SAMPLE_SOURCES,
     .series_count = KCI_ARBITER_SAMPLE_SOURCES,
     .series.counters = VALUES.samples},
    KCI_COUNTER_METRIC("kcobra_arbiter_samples_refused_total",
                       "QoS samples dropped: neither from a trusted node nor signed by a key in "
                       "node_keys (unknown key, bad signature, malformed, replayed).",
                       &VALUES.samples_refused),
    KCI_COUNTER_METRIC("kcobra_arbiter_reports_total", "Problem reports queued for judgement.",
                       &VALUES.reports),
    KCI_COUNTER_METRIC("kcobra_arbiter_reports_dropped_total",
                       "Problem reports dropped: too many waited for judgement.",
                       &VALUES.reports_dropped),
    KCI_COUNTER_METRIC("kcobra_arbiter_probe_rounds_total", "Probe rounds fused and judged.",
                       &VALUES.probe_rounds),
    {.name = "kcobra_arbiter_verdicts_total",
     .help = "Verdicts taken (a quorum of arbiters agreed), by action.",
     .type = KCI_METRIC_COUNTER,
     .label = "action",
     .label_values = VERDICT_ACTIONS,
     .series_count = 2,
     .series.counters = VALUES.verdicts},
    {.name = "kcobra_arbiter_nodes",
     .help = "Nodes the arbiter knows, by state.",
     .type = KCI_METRIC_GAUGE,
     .label = "state",
     .label_values = NODE_STATES,
     .series_count = 3,
     .series.gauges = VALUES.nodes},
};

static const kci_metric_set ARBITER_METRIC_SET = KCI_METRIC_SET(ARBITER_METRICS);

void kci_arbiter_metrics_verdict(bool quarantine)
{
    kci_counter_inc(&VALUES.verdicts[quarantine ? 0 : 1]);
}

void kci_arbiter_metrics_count_nodes(const kci_arbiter *arbiter)
{
    int64_t counts[3] = {0};
    for (uint32_t i = 0; i < arbiter->node_count; i++) {
        node_status status = arbiter->nodes[i]->status;
        if ((unsigned)status < 3) counts[status]++;
    }
    for (int status = 0; status < 3; status++)
        kci_gauge_set(&VALUES.nodes[status], counts[status]);
}

void kci_arbiter_metrics_register(void)
{
    kci_metrics_register(&ARBITER_METRIC_SET);
}
