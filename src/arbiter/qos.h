/* qos.h - the quality-of-service model of one node: a score in [0, 1] from
 * the requests it served, forgetting old behaviour with a half-life.
 *
 * Each observed request is one sample: its latency, and whether it went
 * badly (no answer in time, an error reply, a missed Kc-Deadline, or a
 * latency above slow_ms). Counters decay by 2^(-elapsed / half_life_ms)
 * before each update and read. With r the decayed request count, b the
 * decayed bad count and m the decayed mean latency:
 *
 *   success = 1 - b / (r + prior_requests)
 *   latency = 1 / (1 + max(0, m / target_ms - 1))
 *   score   = success * latency
 *
 * prior_requests (2) is a pseudo-count of good requests so that one bad
 * sample of a new node does not sink it; a node never seen scores 1. The
 * parameters are in kci_qos_params; docs/arbiter.md gives their defaults. */
#ifndef KCI_ARBITER_QOS_H
#define KCI_ARBITER_QOS_H

#include <stdbool.h>
#include <stdint.h>

typedef struct kci_qos_params {
    int64_t half_life_ms;  /* default 60 s */
    double target_ms;      /* latency the type should meet; default 50 ms */
    double slow_ms;        /* a sample above this is bad; default 250 ms */
    double prior_requests; /* default 2 */
} kci_qos_params;

typedef struct kci_qos {
    double requests; /* decayed counts */
    double bad;
    double failed; /* of which failures (no answer, a service-caused error): decayed too */
    double latency_ms_sum;
    int64_t updated_ms; /* when the counts were last decayed */
    uint64_t samples;   /* undecayed, for "enough evidence" */
} kci_qos;

typedef struct kci_qos_sample {
    double latency_ms;
    bool failed;          /* timeout, no answer or error reply */
    bool deadline_missed; /* answered after Kc-Deadline */
} kci_qos_sample;

void kci_qos_params_default(kci_qos_params *params);
void kci_qos_add(kci_qos *qos, const kci_qos_params *params, const kci_qos_sample *sample,
                 int64_t now_ms);
/* In [0, 1]; 1 for a node with no samples. */
double kci_qos_score(kci_qos *qos, const kci_qos_params *params, int64_t now_ms);
/* The decayed mean latency (0 with no samples). */
double kci_qos_latency_ms(const kci_qos *qos);
/* Whether the bad samples are mostly failures rather than slow answers: a
 * low score's reason is then "failing", else "slow" (a verdict names what
 * was observed). */
bool kci_qos_mostly_failing(const kci_qos *qos);
/* An error reply the requester caused (a Kc-Error code 400-499: bad
 * request, unpaid, not allowed, unknown, too large) says nothing of the
 * service's quality; any other code (5xx, a command's exit status) is the
 * service failing. */
bool kci_qos_error_is_client_caused(int error_code);
/* Whether a complaint of an error reply with error_code holds against the
 * service: only for a failure it caused (no error, or a refusal the
 * complainer caused, refutes it). */
bool kci_qos_error_is_service_fault(int error_code);

#endif
