/* metrics.h - the seed-format ingress's Prometheus metrics
 * (common/metrics.h; docs/operations.md lists them): its connections, the
 * lines it turned into requests or refused, and how the requests ended.
 * Bumped in ingress.c; registered when an ingress starts. */
#ifndef KCI_INGRESS_METRICS_H
#define KCI_INGRESS_METRICS_H

#include "common/metrics.h"

typedef struct kci_ingress_metrics {
    kci_gauge connections;
    kci_counter connections_accepted;
    kci_counter connections_refused; /* at connections_max */
    kci_counter requests;            /* good lines sent as requests */
    kci_counter malformed_lines;     /* lines answered ERROR by the parser */
    kci_counter replies[2];          /* 0: a reply, 1: an error (timeout, no responders...) */
} kci_ingress_metrics;

extern kci_ingress_metrics kci_ingress_metric_values;

/* Idempotent; called by kci_ingress_start. */
void kci_ingress_metrics_register(void);

#endif
