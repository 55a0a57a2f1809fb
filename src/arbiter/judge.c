/* judge.c - problem reports and endorsements, and what the arbiter holds
 * against a node (its reasons).
 *
 * A report is rate-limited per reporter, parsed, and queued; at each tick a
 * queued report whose request has settled (or that names none) is judged
 * against what the arbiter observed itself:
 *   - a request id the arbiter saw: the accused must be who replied, and
 *     the reply must show the fault: slow (latency above slow_ms or past
 *     the deadline), error_reply (a Kc-Error the service caused: a 4xx
 *     refusal is the reporter's doing, refuted), no_answer (no reply),
 *     overcharged (a price above the reference), wrong_answer (the accused
 *     failed the recent probes); passing is a refutation;
 *   - a request id the arbiter did not see: it asks the persister's log
 *     (replylog.c) and judges on the recorded reply when there is one;
 *     else, when it was watching as the id (a UUIDv7) was made, the
 *     request never happened: refuted;
 *   - no request id: judged on the node's record (QoS, probes, prices);
 *   - anything it cannot judge moves nothing.
 * A confirmed report raises the reporter's credibility and adds a negative
 * opinion weighted by it; a refuted one lowers it. A report never
 * quarantines on its own: only what the arbiter confirms counts. */
#include "arbiter_internal.h"
#include "report_log.h"

#include <assert.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "arbiter/metrics.h"
#include "arbiter/wire.h"
#include "common/clock.h"
#include "common/log.h"
#include "service/headers.h"
#include "service/uuid.h"

enum {
    REPORT_SETTLE_GRACE_MS = 500, /* a report may overtake the request it is about */
    UNSEEN_ID_GRACE_MS = 2000,    /* ids made this close to our start may predate us */
    UNSEEN_ID_WINDOW_MS = 60 * 1000,
};

typedef enum judgement {
    JUDGE_UNKNOWN = 0,
    JUDGE_CONFIRMED = 1,
    JUDGE_REFUTED = 2,
    JUDGE_WAIT = 3
} judgement;

/* ---- prices ----------------------------------------------------------------- */

void kci_arbiter_price_add(arbiter_node *node, const char *type, double price)
{
    for (uint32_t i = 0; i < node->price_type_count; i++) {
        if (strcmp(node->prices[i].type, type) != 0) continue;
        node->prices[i].sum += price;
        node->prices[i].count++;
        return;
    }
    if (node->price_type_count == ARBITER_PRICE_TYPES_MAX) return;
    node_price *entry = &node->prices[node->price_type_count++];
    snprintf(entry->type, sizeof entry->type, "%s", type);
    entry->sum = price;
    entry->count = 1;
}

double kci_arbiter_price_mean(const arbiter_node *node, const char *type, uint32_t *count)
{
    for (uint32_t i = 0; i < node->price_type_count; i++) {
        if (strcmp(node->prices[i].type, type) != 0) continue;
        *count = node->prices[i].count;
        return node->prices[i].sum / node->prices[i].count;
    }
    *count = 0;
    return 0;
}

static int compare_double(const void *left, const void *right)
{
    double a = *(const double *)left, b = *(const double *)right;
    return a < b ? -1 : a > b;
}

/* The median over the nodes serving type of their mean price. */
static double price_median(kci_arbiter *arbiter, const char *type)
{
    double *values = malloc(arbiter->node_count * sizeof *values);
    if (values == NULL) return 0;
    uint32_t count = 0;
    for (uint32_t i = 0; i < arbiter->node_count; i++) {
        uint32_t samples = 0;
        double mean = kci_arbiter_price_mean(arbiter->nodes[i], type, &samples);
        if (samples >= arbiter->config.price_samples_min) values[count++] = mean;
    }
    double reference = 0;
    if (count > 0) {
        qsort(values, count, sizeof values[0], compare_double);
        reference = count % 2 ? values[count / 2] : (values[count / 2 - 1] + values[count / 2]) / 2;
    }
    free(values);
    return reference;
}

/* The market's equilibrium price of type (price.c), but never below the
 * median of the peers' prices. The market model (linear utilities, demand
 * as utility) puts buyers' money on corner solutions: a type bought beside
 * others, or served by one node alone, can get an equilibrium well under
 * what every node fairly charges (seen: 6.06 against a uniform 10, and an
 * honest node quarantined for overcharging). An overcharger still stands
 * out, against either. */
double kci_arbiter_price_reference(kci_arbiter *arbiter, const char *type)
{
    double equilibrium = kci_arbiter_price_equilibrium(arbiter, type);
    double median = price_median(arbiter, type);
    return equilibrium > median ? equilibrium : median;
}

const char *kci_arbiter_price_reference_source(kci_arbiter *arbiter, const char *type)
{
    double equilibrium = kci_arbiter_price_equilibrium(arbiter, type);
    double median = price_median(arbiter, type);
    if (equilibrium > 0 && equilibrium >= median) return "equilibrium";
    return median > 0 ? "median" : "none";
}

/* 1: over the reference, 0: fair, -1: not enough data. */
static int price_verdict(kci_arbiter *arbiter, const arbiter_node *node, double *ratio_out)
{
    int verdict = -1;
    double ratio_max = 0;
    for (uint32_t i = 0; i < node->price_type_count; i++) {
        const node_price *price = &node->prices[i];
        if (price->count < arbiter->config.price_samples_min) continue;
        double reference = kci_arbiter_price_reference(arbiter, price->type);
        if (reference <= 0) continue;
        double ratio = price->sum / price->count / reference;
        if (ratio > ratio_max) ratio_max = ratio;
        verdict = ratio > arbiter->config.overcharge_factor ? 1 : (verdict == 1 ? 1 : 0);
    }
    if (ratio_out != NULL) *ratio_out = ratio_max;
    return verdict;
}

/* ---- reasons ------------------------------------------------------------------- */

/* 1: below the bar, 0: fine, -1: too few samples. */
static int qos_verdict(kci_arbiter *arbiter, arbiter_node *node, int64_t now_ms)
{
    if (node->qos_samples < arbiter->config.qos_samples_min) return -1;
    return kci_qos_score(&node->qos, &arbiter->config.qos, now_ms) < arbiter->config.qos_below;
}

uint32_t kci_arbiter_reasons(kci_arbiter *arbiter, arbiter_node *node, int64_t now_ms)
{
    if (node->is_arbiter) return 0;
    uint32_t reasons = 0;
    if (arbiter->guarantee_holds && kci_arbiter_probe_verdict(arbiter, node) == 1)
        reasons |= REASON_WRONG;
    if (qos_verdict(arbiter, node, now_ms) == 1)
        reasons |= kci_qos_mostly_failing(&node->qos) ? REASON_FAILING : REASON_SLOW;
    if (price_verdict(arbiter, node, NULL) == 1) reasons |= REASON_OVERCHARGE;
    if (kci_credibility_perjurer(&node->credibility, &arbiter->config.credibility))
        reasons |= REASON_PERJURY;
    return reasons;
}

void kci_arbiter_reasons_json(json_t *list, uint32_t reasons)
{
    if (reasons & REASON_WRONG) json_array_append_new(list, json_string("wrong"));
    if (reasons & REASON_SLOW) json_array_append_new(list, json_string("slow"));
    if (reasons & REASON_FAILING) json_array_append_new(list, json_string("failing"));
    if (reasons & REASON_OVERCHARGE) json_array_append_new(list, json_string("overcharge"));
    if (reasons & REASON_PERJURY) json_array_append_new(list, json_string("false-report"));
}

/* ---- judging a report ------------------------------------------------------------- */

static judgement judge_on_record(kci_arbiter *arbiter, arbiter_node *accused,
                                 kc_problem_reason reason, int64_t now_ms)
{
    switch (reason) {
    case KC_PROBLEM_WRONG_ANSWER: {
        int verdict = kci_arbiter_probe_verdict(arbiter, accused);
        if (!arbiter->guarantee_holds || verdict < 0) return JUDGE_UNKNOWN;
        return verdict ? JUDGE_CONFIRMED : JUDGE_REFUTED;
    }
    case KC_PROBLEM_SLOW:
    case KC_PROBLEM_NO_ANSWER:
    case KC_PROBLEM_ERROR_REPLY: {
        int verdict = qos_verdict(arbiter, accused, now_ms);
        return verdict < 0 ? JUDGE_UNKNOWN : verdict ? JUDGE_CONFIRMED : JUDGE_REFUTED;
    }
    case KC_PROBLEM_OVERCHARGED: {
        int verdict = price_verdict(arbiter, accused, NULL);
        return verdict < 0 ? JUDGE_UNKNOWN : verdict ? JUDGE_CONFIRMED : JUDGE_REFUTED;
    }
    default: return JUDGE_UNKNOWN;
    }
}

static judgement judge_observed(kci_arbiter *arbiter, arbiter_node *accused,
                                kc_problem_reason reason, const kci_observation *seen,
                                int64_t now_ms)
{
    if (!seen->settled) return JUDGE_WAIT;
    bool replied = seen->replied_ms != 0;
    if (replied && strcmp(seen->server, accused->name) != 0) return JUDGE_REFUTED; /* not theirs */
    if (!replied) return reason == KC_PROBLEM_NO_ANSWER ? JUDGE_CONFIRMED : JUDGE_UNKNOWN;
    if (seen->from_log && (reason == KC_PROBLEM_SLOW || reason == KC_PROBLEM_NO_ANSWER))
        return JUDGE_UNKNOWN; /* the log has who and what, not when */
    double latency_ms = (double)(seen->replied_ms - seen->requested_ms);
    bool late = seen->deadline_wall_ms > 0 && seen->replied_wall_ms > seen->deadline_wall_ms;
    switch (reason) {
    case KC_PROBLEM_SLOW:
        /* The reporter's clock saw more than ours (it sent before we saw the
         * request, and got the reply after us): only a reply well within
         * the bar refutes. */
        if (latency_ms > arbiter->config.qos.slow_ms || late) return JUDGE_CONFIRMED;
        return latency_ms < arbiter->config.qos.slow_ms / 2 ? JUDGE_REFUTED : JUDGE_UNKNOWN;
    case KC_PROBLEM_NO_ANSWER: return late ? JUDGE_CONFIRMED : JUDGE_REFUTED;
    case KC_PROBLEM_ERROR_REPLY:
        /* A refusal the reporter caused (400, 402...) was the right answer:
         * complaining of it is a false report, not the service's failure. */
        return kci_qos_error_is_service_fault(seen->error_code) ? JUDGE_CONFIRMED : JUDGE_REFUTED;
    case KC_PROBLEM_OVERCHARGED: {
        if (seen->price < 0) return JUDGE_UNKNOWN;
        double reference = kci_arbiter_price_reference(arbiter, seen->type);
        if (reference <= 0) return JUDGE_UNKNOWN;
        return seen->price > arbiter->config.overcharge_factor * reference ? JUDGE_CONFIRMED
                                                                           : JUDGE_REFUTED;
    }
    default: return judge_on_record(arbiter, accused, reason, now_ms);
    }
}

/* A request id the arbiter should have seen but did not: it never happened. */
static bool never_happened(kci_arbiter *arbiter, const char *request_id, int64_t now_ms)
{
    kci_uuid uuid;
    if (!kci_uuid_parse(request_id, strlen(request_id), &uuid)) return true;
    int64_t made_ms = kci_uuid_v7_time_ms(&uuid);
    int64_t age_ms = kci_wall_ms() - made_ms;
    (void)now_ms;
    return made_ms > arbiter->start_wall_ms + UNSEEN_ID_GRACE_MS && age_ms < UNSEEN_ID_WINDOW_MS;
}

static judgement judge(kci_arbiter *arbiter, pending_report *report, int64_t now_ms)
{
    arbiter_node *accused = arbiter->nodes[report->accused];
    if (report->request_id[0] != '\0') {
        const kci_observation *seen = kci_observe_get(arbiter->observe, report->request_id);
        if (seen != NULL && seen->requested_ms != 0)
            return judge_observed(arbiter, accused, report->reason, seen, now_ms);
        /* Only its reply was seen (a request on another subject): who replied. */
        if (seen != NULL && seen->replied_ms != 0)
            return strcmp(seen->server, accused->name) != 0 ? JUDGE_REFUTED : JUDGE_UNKNOWN;
        if (now_ms - report->received_ms < REPORT_SETTLE_GRACE_MS) return JUDGE_WAIT;
        if (kci_arbiter_log_ask(arbiter, report, now_ms)) return JUDGE_WAIT;
        if (never_happened(arbiter, report->request_id, now_ms)) return JUDGE_REFUTED;
        return JUDGE_UNKNOWN;
    }
    if (!accused->served) return JUDGE_REFUTED; /* about a node that serves nothing */
    return judge_on_record(arbiter, accused, report->reason, now_ms);
}

static void apply(kci_arbiter *arbiter, const pending_report *report, judgement outcome)
{
    arbiter_node *reporter = arbiter->nodes[report->reporter];
    arbiter_node *accused = arbiter->nodes[report->accused];
    if (outcome == JUDGE_UNKNOWN) return;
    double weight = kci_credibility_value(&reporter->credibility);
    kci_credibility_judge(&reporter->credibility, outcome == JUDGE_CONFIRMED);
    if (outcome == JUDGE_CONFIRMED) {
        accused->reports_confirmed++;
        accused->complaint_weight += weight;
        kci_arbiter_evidence_add(accused, report->request_id);
        kci_arbiter_edge_add(reporter, report->accused, 0, weight);
    } else {
        accused->reports_refuted++;
    }
    kci_debug("arbiter %s: report by %s about %s (%s) %s", arbiter->id, reporter->name,
              accused->name, kc_problem_reason_name(report->reason),
              outcome == JUDGE_CONFIRMED ? "confirmed" : "refuted");
}

/* Judges the queued reports in order; one waiting for its request to
 * settle keeps its place (bounded by the request timeout). */
void kci_arbiter_judge_pending(kci_arbiter *arbiter, int64_t now_ms)
{
    uint32_t count = arbiter->report_count, kept = 0;
    for (uint32_t k = 0; k < count; k++) {
        pending_report report =
            arbiter->reports[(arbiter->report_head + k) % ARBITER_REPORTS_PENDING_MAX];
        judgement outcome = judge(arbiter, &report, now_ms);
        if (outcome == JUDGE_WAIT &&
            now_ms - report.received_ms < 2 * arbiter->config.request_timeout_ms) {
            arbiter->reports[(arbiter->report_head + kept) % ARBITER_REPORTS_PENDING_MAX] = report;
            kept++;
            continue;
        }
        apply(arbiter, &report, outcome == JUDGE_WAIT ? JUDGE_UNKNOWN : outcome);
    }
    arbiter->report_count = kept;
}

/* ---- receiving -------------------------------------------------------------------- */

/* The report in message, or why not. */
static const char *parse_report(kci_report *out, natsMsg *message)
{
    kci_kc_headers headers;
    kci_headers_clear(&headers);
    if (kci_headers_read(message, false, &headers) != KC_OK) {
        memset(out, 0, sizeof *out);
        return "malformed KingCobra headers";
    }
    int length = natsMsg_GetDataLength(message);
    return kci_report_parse(out, natsMsg_GetSubject(message) + strlen("kc.problem."), headers.node,
                            natsMsg_GetData(message), length > 0 ? (size_t)length : 0);
}

/* The node that files a report or an endorsement. Names first seen this
 * way may fill at most half of the node table, so that a flood of made-up
 * reporter names cannot crowd out the services observed serving. */
static arbiter_node *speaker(kci_arbiter *arbiter, const char *name, int64_t now_ms)
{
    arbiter_node *node = kci_arbiter_node(arbiter, name, false);
    if (node != NULL) return node;
    if (arbiter->speaker_count >= ARBITER_NODES_MAX / 2) {
        arbiter->reports_dropped++;
        if (kci_arbiter_warn_due(arbiter, now_ms))
            kci_warn("arbiter %s: %u reporters already; ignoring new reporter %s", arbiter->id,
                     arbiter->speaker_count, name);
        return NULL;
    }
    node = kci_arbiter_node(arbiter, name, true);
    arbiter->speaker_count += node != NULL;
    return node;
}

static void queue_report(kci_arbiter *arbiter, const kci_report *parsed, int64_t now_ms)
{
    arbiter_node *reporter = speaker(arbiter, parsed->reporter, now_ms);
    if (reporter == NULL) return;
    if (!kci_credibility_admit(&reporter->credibility, &arbiter->config.credibility, now_ms)) {
        arbiter->reports_dropped++;
        if (kci_arbiter_warn_due(arbiter, now_ms))
            kci_warn("arbiter %s: %s files reports faster than %.0f/s: dropping (%llu so far)",
                     arbiter->id, reporter->name, arbiter->config.credibility.rate_per_s,
                     (unsigned long long)arbiter->reports_dropped);
        return;
    }
    /* An unknown accused is judged as a node that serves nothing, without
     * letting made-up names fill the node table: only known names. */
    arbiter_node *accused = kci_arbiter_node(arbiter, parsed->node, false);
    if (accused == NULL) {
        kci_credibility_judge(&reporter->credibility, false);
        if (kci_arbiter_warn_due(arbiter, now_ms))
            kci_warn("arbiter %s: %s reported unknown node %s: counted against the reporter",
                     arbiter->id, reporter->name, parsed->node);
        return;
    }
    if (arbiter->report_count == ARBITER_REPORTS_PENDING_MAX) {
        arbiter->reports_dropped++;
        kci_counter_inc(&kci_arbiter_metric_values.reports_dropped);
        return;
    }
    pending_report *report = &arbiter->reports[(arbiter->report_head + arbiter->report_count) %
                                               ARBITER_REPORTS_PENDING_MAX];
    arbiter->report_count++;
    kci_counter_inc(&kci_arbiter_metric_values.reports);
    report->reporter = kci_arbiter_node_number(arbiter, reporter);
    report->accused = kci_arbiter_node_number(arbiter, accused);
    report->reason = parsed->reason;
    snprintf(report->request_id, sizeof report->request_id, "%s", parsed->request_id);
    report->received_ms = now_ms;
}

void kci_arbiter_on_problem(natsConnection *connection, natsSubscription *subscription,
                            natsMsg *message, void *closure)
{
    (void)connection, (void)subscription;
    kci_arbiter *arbiter = closure;
    kci_report parsed;
    const char *why = parse_report(&parsed, message);
    int64_t now_ms = kci_monotonic_ms();
    pthread_mutex_lock(&arbiter->lock);
    arbiter->reports_received++;
    if (why != NULL) {
        arbiter->reports_malformed++;
        if (kci_arbiter_warn_due(arbiter, now_ms))
            kci_warn("arbiter %s: ignored a problem report on %s: %s (%llu malformed so far)",
                     arbiter->id, natsMsg_GetSubject(message), why,
                     (unsigned long long)arbiter->reports_malformed);
    } else {
        kci_report_log_append(arbiter->report_log, &parsed, kci_wall_ms()); /* analytics */
        queue_report(arbiter, &parsed, now_ms);
    }
    pthread_mutex_unlock(&arbiter->lock);
    natsMsg_Destroy(message);
}

/* kc.endorse.<node>, sent by the endorser (Kc-Node): a positive opinion,
 * rate-limited like reports. It moves trust only as far as the endorser
 * has trust of its own (ranking.h). */
void kci_arbiter_on_endorse(natsConnection *connection, natsSubscription *subscription,
                            natsMsg *message, void *closure)
{
    (void)connection, (void)subscription;
    kci_arbiter *arbiter = closure;
    kci_kc_headers headers;
    kci_headers_clear(&headers);
    const char *name = natsMsg_GetSubject(message) + strlen("kc.endorse.");
    bool valid = kci_headers_read(message, false, &headers) == KC_OK && headers.node[0] != '\0';
    int64_t now_ms = kci_monotonic_ms();
    pthread_mutex_lock(&arbiter->lock);
    arbiter_node *endorser = valid ? speaker(arbiter, headers.node, now_ms) : NULL;
    arbiter_node *endorsed = valid ? kci_arbiter_node(arbiter, name, false) : NULL;
    if (endorser != NULL && endorsed != NULL && endorser != endorsed &&
        kci_credibility_admit(&endorser->credibility, &arbiter->config.credibility, now_ms))
        kci_arbiter_edge_add(endorser, kci_arbiter_node_number(arbiter, endorsed), 1, 0);
    pthread_mutex_unlock(&arbiter->lock);
    natsMsg_Destroy(message);
}
