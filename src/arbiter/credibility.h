/* credibility.h - how much a reporter's problem reports are believed, and a
 * per-reporter rate limit.
 *
 * A reporter starts at Beta(1, 1): credibility 0.5. A report the arbiter
 * confirms adds 1 to alpha, one it refutes (the request never happened, was
 * served well, or the accused passed the probes) adds 1 to beta; a report it
 * cannot judge moves nothing. credibility = alpha / (alpha + beta). A
 * reporter with at least perjury_reports_min judged reports and credibility
 * below perjury_below is a perjurer: its reports weigh nothing and it earns
 * a verdict of its own.
 *
 * The rate limit is a token bucket per reporter (rate_per_s, burst): a flood
 * from one reporter is counted and dropped, never queued. */
#ifndef KCI_ARBITER_CREDIBILITY_H
#define KCI_ARBITER_CREDIBILITY_H

#include <stdbool.h>
#include <stdint.h>

typedef struct kci_credibility_params {
    double perjury_below;         /* default 0.3 */
    uint32_t perjury_reports_min; /* default 5 */
    double rate_per_s;            /* default 50 reports per second */
    double burst;                 /* default 200 */
} kci_credibility_params;

typedef struct kci_credibility {
    uint32_t confirmed;
    uint32_t refuted;
    uint64_t dropped; /* over the rate limit */
    double tokens;
    int64_t tokens_ms;
} kci_credibility;

void kci_credibility_params_default(kci_credibility_params *params);
double kci_credibility_value(const kci_credibility *credibility);
void kci_credibility_judge(kci_credibility *credibility, bool confirmed);
bool kci_credibility_perjurer(const kci_credibility *credibility,
                              const kci_credibility_params *params);
/* Takes a token; false (and counts a drop) when the reporter is over its rate. */
bool kci_credibility_admit(kci_credibility *credibility, const kci_credibility_params *params,
                           int64_t now_ms);

#endif
