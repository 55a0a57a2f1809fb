/* probe.c - probe rounds and their fusion.
 *
 * Every probe_interval_ms, for each configured probe type, the arbiter
 * opens a round, and closes it at the first tick after probe_timeout_ms
 * (and again at once while it knows fewer than 4 replicas). A round sends the same
 * payload (fresh Kc-Id each time) to kc.req.<type> about three times as often
 * as there are known replicas: the broker's queue group picks a member at
 * random, so nearly all replicas (1 - e^-3, 95%) answer at least once (a
 * replica cannot be addressed directly through its queue group; the first
 * answer of each replica counts). Answers that all parse as numbers are
 * fused with Brooks–Iyengar, f = (m - 1) / 3 for the m replicas that
 * answered; otherwise they are put to the vote (a hash of the payload).
 *
 * A numeric answer is {"value": v, "accuracy": a} (interval [v - a, v + a])
 * or a bare number (a point). A round where no region reaches m - f, or
 * where more than f replicas miss the fused interval, shows more than f
 * faulty replicas: the n > 3f guarantee does not hold, the round condemns
 * nobody, and the arbiter says so (status, kc.arbiter.alarm, log) until
 * ARBITER_GUARANTEE_WINDOW rounds in a row meet it again. Such a round that
 * heard from fewer than two thirds of the known replicas (a loaded fabric,
 * a short timeout) is only inconclusive: it condemns nobody either, but
 * raises no alarm. */
#include "arbiter_internal.h"

#include <assert.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "arbiter/metrics.h"
#include "common/clock.h"
#include "common/hash.h"
#include "common/log.h"

static bool parse_numeric(const void *payload, size_t length, kci_interval *out)
{
    if (length == 0 || length > 4096) return false;
    json_t *root = json_loadb(payload, length, JSON_DECODE_ANY, NULL);
    bool ok = false;
    if (json_is_number(root)) {
        double value = json_number_value(root);
        *out = (kci_interval){value, value};
        ok = isfinite(value);
    } else if (json_is_object(root)) {
        json_t *value = json_object_get(root, "value"),
               *accuracy = json_object_get(root, "accuracy");
        if (json_is_number(value)) {
            double v = json_number_value(value),
                   a = json_is_number(accuracy) ? fabs(json_number_value(accuracy)) : 0;
            *out = (kci_interval){v - a, v + a};
            ok = isfinite(v) && isfinite(a);
        }
    }
    json_decref(root);
    return ok;
}

static void on_probe_reply(kc_client *client, kc_err status, kc_reply *reply, void *closure)
{
    (void)client;
    probe_state *probe = closure;
    kci_arbiter *arbiter = probe->arbiter;
    pthread_mutex_lock(&arbiter->lock);
    assert(arbiter->probes_in_flight > 0);
    arbiter->probes_in_flight--;
    if (status == KC_OK && reply != NULL && probe->open &&
        probe->answer_count < KCI_FUSION_REPLICAS_MAX) {
        arbiter_node *node = kci_arbiter_node(arbiter, kc_reply_node(reply), true);
        uint32_t number = node != NULL ? kci_arbiter_node_number(arbiter, node) : 0;
        bool seen = node == NULL;
        for (uint32_t i = 0; i < probe->answer_count && !seen; i++)
            seen = probe->answers[i].node == number;
        if (!seen) {
            size_t length = 0;
            const void *payload = kc_reply_payload(reply, &length);
            probe_answer *answer = &probe->answers[probe->answer_count++];
            answer->node = number;
            answer->numeric = parse_numeric(payload, length, &answer->interval);
            answer->hash = kci_hash_bytes(payload, length);
        }
    }
    pthread_mutex_unlock(&arbiter->lock);
    kc_reply_destroy(reply);
}

static void record(kci_arbiter *arbiter, arbiter_node *node, bool suspect,
                   const kci_interval *answer, const kci_interval *fused)
{
    node->fusion_rounds++;
    node->fusion_suspect += suspect;
    node->fusion_history = (uint8_t)((node->fusion_history << 1) | (suspect ? 1 : 0));
    if (node->fusion_history_count < ARBITER_FUSION_HISTORY) node->fusion_history_count++;
    if (answer != NULL) node->fusion_last = *answer;
    if (fused != NULL) node->fusion_last_fused = *fused;
    arbiter_node *self = kci_arbiter_node(arbiter, arbiter->id, false);
    if (self != NULL && !suspect)
        kci_arbiter_edge_add(self, kci_arbiter_node_number(arbiter, node), 1, 0);
    if (self != NULL && suspect)
        kci_arbiter_edge_add(self, kci_arbiter_node_number(arbiter, node), 0, 1);
}

int kci_arbiter_probe_verdict(const kci_arbiter *arbiter, const arbiter_node *node)
{
    uint32_t count = node->fusion_history_count;
    if (count < arbiter->config.fusion_rounds_min) return -1;
    uint32_t suspect =
        (uint32_t)__builtin_popcount((unsigned)(node->fusion_history & ((1u << count) - 1)));
    return 2 * suspect >= count && suspect >= 1 ? 1 : (suspect == 0 ? 0 : -1);
}

static void set_guarantee(kci_arbiter *arbiter, const char *type, const probe_state *probe)
{
    bool holds = true;
    for (uint32_t i = 0; i < arbiter->config.probe_count; i++) {
        const probe_state *other = &arbiter->probes[i];
        uint32_t window = other->round_count < ARBITER_GUARANTEE_WINDOW ? other->round_count
                                                                        : ARBITER_GUARANTEE_WINDOW;
        holds &= (other->broken_history & ((1u << window) - 1)) == 0;
    }
    if (holds == arbiter->guarantee_holds) return;
    arbiter->guarantee_holds = holds;
    if (holds) {
        snprintf(arbiter->guarantee_text, sizeof arbiter->guarantee_text, "%s", "");
        kci_info("arbiter %s: n > 3f holds again on every probed type", arbiter->id);
    } else {
        if (probe->last_found)
            snprintf(arbiter->guarantee_text, sizeof arbiter->guarantee_text,
                     "type %s: %u of the %u replicas that answered miss the fused answer, more "
                     "than f = %u: n > 3f does not hold, fusion condemns nobody",
                     type, probe->last_suspects, probe->last_n, probe->last_f);
        else
            snprintf(arbiter->guarantee_text, sizeof arbiter->guarantee_text,
                     "type %s: no answer is backed by n - f = %u of the %u replicas that "
                     "answered: more than f = %u are faulty, n > 3f does not hold, fusion "
                     "condemns nobody",
                     type, probe->last_n - probe->last_f, probe->last_n, probe->last_f);
        kci_warn("arbiter %s: %s", arbiter->id, arbiter->guarantee_text);
    }
    kci_arbiter_publish_json(arbiter, "kc.arbiter.alarm",
                             json_pack("{s:s, s:b, s:s}", "arbiter", arbiter->id, "guarantee_holds",
                                       holds, "text",
                                       holds ? "n > 3f holds" : arbiter->guarantee_text));
}

/* Fuses (or votes on) the answers of one closed round. */
static void close_round(kci_arbiter *arbiter, probe_state *probe)
{
    probe->open = false;
    uint32_t m = probe->answer_count;
    if (m < 4) return; /* f would be 0: nothing can be told apart */
    uint32_t f = kci_fusion_faults_tolerated(m);
    bool numeric = true, suspects[KCI_FUSION_REPLICAS_MAX];
    for (uint32_t i = 0; i < m; i++)
        numeric &= probe->answers[i].numeric;
    bool found = false;
    uint32_t suspect_count = 0;
    kci_interval fused = {0, 0};
    if (numeric) {
        kci_interval intervals[KCI_FUSION_REPLICAS_MAX];
        for (uint32_t i = 0; i < m; i++)
            intervals[i] = probe->answers[i].interval;
        kci_fusion_result result;
        if (kci_fusion_fuse(&result, intervals, m, f) != KC_OK) return;
        found = result.found, suspect_count = result.suspect_count, fused = result.fused;
        probe->last_value = result.value;
        memcpy(suspects, result.suspect, m * sizeof suspects[0]);
    } else {
        uint64_t hashes[KCI_FUSION_REPLICAS_MAX];
        for (uint32_t i = 0; i < m; i++)
            hashes[i] = probe->answers[i].hash;
        kci_vote_result result;
        if (kci_fusion_vote(&result, hashes, m, f) != KC_OK) return;
        found = result.found, suspect_count = result.suspect_count;
        memcpy(suspects, result.suspect, m * sizeof suspects[0]);
    }
    bool broken = !found || suspect_count > f;
    /* A round that reached fewer than two thirds of the known replicas is a
     * sample: more than f liars in it may be bad luck, not a cloud beyond
     * its bound. It condemns nobody and raises no alarm. */
    if (broken && 3 * m < 2 * probe->expected) return;
    probe->round_count++;
    kci_counter_inc(&kci_arbiter_metric_values.probe_rounds);
    probe->broken_history = (uint8_t)((probe->broken_history << 1) | (broken ? 1 : 0));
    probe->last_n = m, probe->last_f = f, probe->last_found = found;
    probe->last_suspects = suspect_count, probe->last_fused = fused;
    set_guarantee(arbiter, arbiter->config.probes[probe->index].type, probe);
    if (broken) return;
    for (uint32_t i = 0; i < m; i++)
        record(arbiter, arbiter->nodes[probe->answers[i].node], suspects[i],
               numeric ? &probe->answers[i].interval : NULL, numeric ? &fused : NULL);
}

/* Replicas of type the arbiter has seen answer and that are not quarantined. */
static uint32_t known_replicas(kci_arbiter *arbiter, const char *type)
{
    uint32_t count = 0;
    for (uint32_t i = 0; i < arbiter->node_count; i++) {
        const arbiter_node *node = arbiter->nodes[i];
        count += node->served && node->status != NODE_QUARANTINED && kci_arbiter_serves(node, type);
    }
    return count;
}

void kci_arbiter_probe_tick(kci_arbiter *arbiter, int64_t now_ms)
{
    uint32_t attempts[KCI_ARBITER_PROBES_MAX] = {0};
    pthread_mutex_lock(&arbiter->lock);
    for (uint32_t i = 0; i < arbiter->config.probe_count; i++) {
        probe_state *probe = &arbiter->probes[i];
        if (probe->open && now_ms - probe->started_ms < arbiter->config.probe_timeout_ms) continue;
        if (probe->open) close_round(arbiter, probe);
        /* A round that knew fewer than 4 replicas (at start, before any
         * traffic was seen) could tell nothing apart: try again at once. */
        if (probe->started_ms != 0 && probe->expected >= 4 &&
            now_ms - probe->started_ms < arbiter->config.probe_interval_ms)
            continue;
        probe->open = true;
        probe->started_ms = now_ms;
        probe->answer_count = 0;
        uint32_t replicas = known_replicas(arbiter, arbiter->config.probes[i].type);
        probe->expected = replicas;
        attempts[i] = 3 * replicas + 4;
        if (attempts[i] > ARBITER_PROBE_ATTEMPTS_MAX) attempts[i] = ARBITER_PROBE_ATTEMPTS_MAX;
        arbiter->probes_in_flight += attempts[i];
    }
    bool stopping = arbiter->stopping;
    pthread_mutex_unlock(&arbiter->lock);
    for (uint32_t i = 0; i < arbiter->config.probe_count; i++) {
        const kci_arbiter_probe *config = &arbiter->config.probes[i];
        for (uint32_t k = 0; k < attempts[i]; k++) {
            kc_err err = stopping
                             ? KC_ERR_CLOSED
                             : kc_client_request_async(arbiter->client, config->type,
                                                       config->payload, strlen(config->payload),
                                                       arbiter->config.probe_timeout_ms,
                                                       on_probe_reply, &arbiter->probes[i]);
            if (err == KC_OK) continue;
            pthread_mutex_lock(&arbiter->lock);
            arbiter->probes_in_flight -= attempts[i] - k; /* none of the rest was sent */
            pthread_mutex_unlock(&arbiter->lock);
            break;
        }
    }
}
