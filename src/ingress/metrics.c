/* metrics.c - the ingress's metric table (see metrics.h). */
#include "ingress/metrics.h"

kci_ingress_metrics kci_ingress_metric_values;

#define VALUES kci_ingress_metric_values

static const char *const REPLY_RESULTS[] = {"reply", "error"};

static const kci_metric INGRESS_METRICS[] = {
    KCI_GAUGE_METRIC("kcobra_ingress_connections", "Seed-format connections open now.",
                     &VALUES.connections),
    KCI_COUNTER_METRIC("kcobra_ingress_connections_accepted_total",
                       "Seed-format connections accepted.", &VALUES.connections_accepted),
    KCI_COUNTER_METRIC("kcobra_ingress_connections_refused_total",
                       "Seed-format connections refused at connections_max.",
                       &VALUES.connections_refused),
    KCI_COUNTER_METRIC("kcobra_ingress_requests_total",
                       "REQUEST lines sent on as requests of the configured type.",
                       &VALUES.requests),
    KCI_COUNTER_METRIC("kcobra_ingress_malformed_lines_total",
                       "Lines answered ERROR because they do not parse.", &VALUES.malformed_lines),
    {.name = "kcobra_ingress_answers_total",
     .help = "Requests answered, by result: the service's reply, or an error (timeout, no "
             "responders, a failed send).",
     .type = KCI_METRIC_COUNTER,
     .label = "result",
     .label_values = REPLY_RESULTS,
     .series_count = 2,
     .series.counters = VALUES.replies},
};

static const kci_metric_set INGRESS_METRIC_SET = KCI_METRIC_SET(INGRESS_METRICS);

void kci_ingress_metrics_register(void)
{
    kci_metrics_register(&INGRESS_METRIC_SET);
}
