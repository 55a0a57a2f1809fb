/* metrics.h - the arbiter's Prometheus metrics (common/metrics.h;
 * docs/operations.md lists them): QoS samples taken, problem reports,
 * probe rounds, verdicts by action, and the nodes it knows by state.
 * Bumped in arbiter.c, judge.c, probe.c and verdict.c; registered when an
 * arbiter starts. */
#ifndef KCI_ARBITER_METRICS_H
#define KCI_ARBITER_METRICS_H

#include <stdbool.h>

#include "arbiter/arbiter.h"
#include "common/metrics.h"

typedef enum kci_arbiter_sample_source {
    KCI_ARBITER_SAMPLE_OBSERVED = 0, /* a request and its reply seen on the fabric */
    KCI_ARBITER_SAMPLE_TRUSTED = 1,  /* kc.qos.<node> from a pre-trusted sender */
    KCI_ARBITER_SAMPLE_SIGNED = 2,   /* kc.qos.<node> signed by a reporter in node_keys */
    KCI_ARBITER_SAMPLE_SOURCES = 3,
} kci_arbiter_sample_source;

typedef struct kci_arbiter_metrics {
    kci_counter samples[KCI_ARBITER_SAMPLE_SOURCES];
    kci_counter samples_refused; /* kc.qos.<node> neither trusted nor validly signed */
    kci_counter reports;         /* problem reports queued for judgement */
    kci_counter reports_dropped; /* the queue of reports was full */
    kci_counter probe_rounds;
    kci_counter verdicts[2]; /* 0: quarantine, 1: reinstate */
    kci_gauge nodes[3];      /* by node_status: active, quarantined, probation */
} kci_arbiter_metrics;

extern kci_arbiter_metrics kci_arbiter_metric_values;

void kci_arbiter_metrics_verdict(bool quarantine);
/* Sets the node gauges; the arbiter's lock held. */
void kci_arbiter_metrics_count_nodes(const kci_arbiter *arbiter);
/* Idempotent; called by kci_arbiter_start. */
void kci_arbiter_metrics_register(void);

#endif
