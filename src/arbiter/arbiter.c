/* arbiter.c - the arbiter component's frame (arbiter.h): configuration,
 * start and stop, the node table, the subscriptions that observe requests,
 * replies and QoS samples, and the tick that drives the rest.
 *
 * Observing: a request on kc.req.<type> is remembered by its Kc-Id
 * (observe.h); a reply (any message on _INBOX.> with Kc-Reply-To) settles
 * it: latency = arrival of the reply - arrival of the request, both on this
 * arbiter's clock, so the arbiter measures what a client near it would see.
 * nats.c delivers the two subscriptions on two threads, so a reply can be
 * handled before its request: whichever comes second settles. */
#include "arbiter/payment_check.h"
#include "arbiter_internal.h"

#include <assert.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "arbiter/metrics.h"
#include "common/clock.h"
#include "common/hash.h"
#include "common/log.h"
#include "report_log.h"
#include "service/component.h"
#include "service/headers.h"

#define PRICE_HEADER "Kc-Price"
#define REQUEST_PREFIX "kc.req."

enum {
    STOP_POLL_MS = 10,
    PENDING_MESSAGES_MAX = 64 * 1024,
    PENDING_BYTES_MAX = 64 * 1024 * 1024,
    SUBSCRIBE_FLUSH_TIMEOUT_MS = 5000,
    STOP_MARGIN_MS = 1000, /* after drain_ms, for the handlers running at stop */
};

void kci_arbiter_config_default(kci_arbiter_config *config)
{
    memset(config, 0, sizeof *config);
    config->arbiter_count = 1;
    config->observe_requests = true;
    config->tick_ms = 1000;
    config->probe_timeout_ms = 1000;
    config->probe_interval_ms = 5000;
    config->request_timeout_ms = 5000;
    config->quarantine_ms = 300 * 1000;
    config->probation_ms = 60 * 1000;
    config->qos_samples_min = 20;
    config->qos_below = 0.5;
    config->price_samples_min = 5;
    config->overcharge_factor = 1.5;
    config->fusion_rounds_min = 2;
    config->tree_fanout = 4;
    config->verdict_stream = KCI_ARBITER_VERDICT_STREAM_DEFAULT;
    config->verdict_replicas = 3;
    config->verdict_open_timeout_ms = 20000;
    kci_qos_params_default(&config->qos);
    kci_credibility_params_default(&config->credibility);
    kci_ranking_params_default(&config->ranking);
}

bool kci_arbiter_probe_parse(kci_arbiter_probe *probe, char *text)
{
    char *equals = strchr(text, '=');
    if (equals == NULL || equals == text) return false;
    *equals = '\0';
    if (strlen(text) > KC_TYPE_BYTES_MAX || !kci_token_valid(text)) return false;
    probe->type = text;
    probe->payload = equals + 1;
    return true;
}

/* ---- the node table --------------------------------------------------------- */

static uint32_t name_slot(const char *name)
{
    return (uint32_t)(kci_hash_bytes(name, strlen(name)) & (ARBITER_NODE_INDEX_SLOTS - 1));
}

arbiter_node *kci_arbiter_node(kci_arbiter *arbiter, const char *name, bool create)
{
    if (name == NULL || name[0] == '\0') return NULL;
    uint32_t slot = name_slot(name);
    for (uint32_t k = 0; k < ARBITER_NODE_INDEX_SLOTS; k++) {
        uint32_t at = (slot + k) & (ARBITER_NODE_INDEX_SLOTS - 1);
        uint32_t number = arbiter->node_index[at];
        if (number == 0) {
            if (!create) return NULL;
            if (arbiter->node_count == ARBITER_NODES_MAX || strlen(name) > KC_NODE_BYTES_MAX ||
                !kci_token_valid(name))
                return NULL;
            arbiter_node *node = calloc(1, sizeof *node);
            if (node == NULL) return NULL;
            snprintf(node->name, sizeof node->name, "%s", name);
            node->status_since_ms = kci_monotonic_ms();
            for (uint32_t i = 0; i < arbiter->config.pretrusted_count; i++)
                node->pretrusted |= strcmp(arbiter->config.pretrusted[i], name) == 0;
            node->is_arbiter = strcmp(name, arbiter->id) == 0;
            for (uint32_t i = 0; i < arbiter->config.peer_count; i++)
                node->is_arbiter |= strcmp(arbiter->config.peers[i], name) == 0;
            node->number = arbiter->node_count;
            arbiter->nodes[arbiter->node_count++] = node;
            arbiter->node_index[at] = arbiter->node_count;
            return node;
        }
        if (strcmp(arbiter->nodes[number - 1]->name, name) == 0) return arbiter->nodes[number - 1];
    }
    return NULL;
}

uint32_t kci_arbiter_node_number(kci_arbiter *arbiter, const arbiter_node *node)
{
    assert(node->number < arbiter->node_count && arbiter->nodes[node->number] == node);
    return node->number;
}

void kci_arbiter_edge_add(arbiter_node *from, uint32_t to, double positive, double negative)
{
    for (uint32_t i = 0; i < from->edge_count; i++) {
        if (from->edges[i].to != to) continue;
        from->edges[i].positive += positive;
        from->edges[i].negative += negative;
        return;
    }
    if (from->edge_count == from->edge_capacity) {
        if (from->edge_capacity == ARBITER_EDGES_PER_NODE_MAX) return; /* bounded: dropped */
        uint32_t capacity = from->edge_capacity == 0 ? 8 : 2 * from->edge_capacity;
        node_edge *edges = realloc(from->edges, capacity * sizeof *edges);
        if (edges == NULL) return;
        from->edges = edges;
        from->edge_capacity = capacity;
    }
    from->edges[from->edge_count++] = (node_edge){to, positive, negative};
}

void kci_arbiter_served_type_add(arbiter_node *node, const char *type)
{
    if (type[0] == '\0' || kci_arbiter_serves(node, type)) return;
    if (node->served_type_count >= ARBITER_SERVED_TYPES_MAX) {
        node->served_type_count = ARBITER_SERVED_TYPES_MAX + 1;
        return;
    }
    snprintf(node->served_types[node->served_type_count++], KCI_OBSERVE_TYPE_BYTES_MAX + 1, "%s",
             type);
}

bool kci_arbiter_serves(const arbiter_node *node, const char *type)
{
    if (node->served_type_count > ARBITER_SERVED_TYPES_MAX) return true;
    for (uint32_t i = 0; i < node->served_type_count; i++)
        if (strncmp(node->served_types[i], type, KCI_OBSERVE_TYPE_BYTES_MAX) == 0) return true;
    return false;
}

void kci_arbiter_evidence_add(arbiter_node *node, const char *request_id)
{
    if (request_id == NULL || request_id[0] == '\0') return;
    snprintf(node->evidence_ids[node->evidence_next % ARBITER_EVIDENCE_IDS_MAX],
             KC_UUID_TEXT_BYTES + 1, "%s", request_id);
    node->evidence_next++;
}

bool kci_arbiter_warn_due(kci_arbiter *arbiter, int64_t now_ms)
{
    if (now_ms - arbiter->last_warning_ms < ARBITER_LOG_EVERY_MS && arbiter->last_warning_ms != 0)
        return false;
    arbiter->last_warning_ms = now_ms;
    return true;
}

void kci_arbiter_publish_json(kci_arbiter *arbiter, const char *subject, json_t *object)
{
    if (object == NULL) return;
    char *text = json_dumps(object, JSON_COMPACT);
    json_decref(object);
    if (text == NULL) return;
    natsStatus status = natsConnection_PublishString(arbiter->connection, subject, text);
    if (status != NATS_OK && kci_arbiter_warn_due(arbiter, kci_monotonic_ms()))
        kci_warn("arbiter %s: cannot publish on %s: %s", arbiter->id, subject,
                 natsStatus_GetText(status));
    free(text);
}

/* ---- observing requests and replies ------------------------------------------ */

static double reply_price(natsMsg *message)
{
    const char *header = NULL;
    if (natsMsgHeader_Get(message, PRICE_HEADER, &header) == NATS_OK && header != NULL) {
        char *end = NULL;
        double price = strtod(header, &end);
        if (end != header && *end == '\0' && isfinite(price) && price >= 0) return price;
    }
    const char *data = natsMsg_GetData(message);
    int length = natsMsg_GetDataLength(message);
    if (data == NULL || length <= 0 || data[0] != '{') return -1;
    json_t *root = json_loadb(data, (size_t)length, 0, NULL);
    json_t *price = json_object_get(root, "price");
    double value = json_is_number(price) ? json_number_value(price) : -1;
    json_decref(root);
    return isfinite(value) && value >= 0 ? value : -1;
}

/* Both the request and its reply have been seen: one QoS sample. */
static void settle(kci_arbiter *arbiter, kci_observation *observation)
{
    arbiter_node *server = kci_arbiter_node(arbiter, observation->server, true);
    observation->settled = true;
    if (server == NULL) return;
    server->served = true;
    kci_arbiter_served_type_add(server, observation->type);
    int64_t latency_ms = observation->replied_ms - observation->requested_ms;
    if (latency_ms < 0) latency_ms = 0;
    /* A refusal the requester caused (402 unpaid, 400 bad request...) is a
     * correct answer, not a failure of the service; the requester is the
     * one it says something about. */
    bool refused = kci_qos_error_is_client_caused(observation->error_code);
    kci_qos_sample sample = {
        .latency_ms = (double)latency_ms,
        .failed = observation->error_code > 0 && !refused,
        .deadline_missed = observation->deadline_wall_ms > 0 &&
                           observation->replied_wall_ms > observation->deadline_wall_ms,
    };
    /* An arbiter's probe is judged by fusion (probe.c), not as QoS: a node
     * can tell probes from its customers' requests, serve them well and
     * fail the rest (take the payment, answer an error), and the probes'
     * share would hide that. Its own probes carry its connection's node
     * (kcobrad's: the server's), the peers' their ids. */
    arbiter_node *prober = kci_arbiter_node(arbiter, observation->requester, false);
    bool probe = (prober != NULL && prober->is_arbiter) ||
                 strcmp(observation->requester, kc_client_node(arbiter->client)) == 0;
    if (!probe) {
        kci_qos_add(&server->qos, &arbiter->config.qos, &sample, observation->replied_ms);
        server->qos_samples++;
        kci_counter_inc(&kci_arbiter_metric_values.samples[KCI_ARBITER_SAMPLE_OBSERVED]);
    }
    bool bad =
        sample.failed || sample.deadline_missed || sample.latency_ms > arbiter->config.qos.slow_ms;
    if (bad) kci_arbiter_evidence_add(server, observation->id);
    /* Paid through the ledger: the price is what the transfer paid (price.c). */
    bool asked = kci_arbiter_price_ask(arbiter, observation, observation->replied_ms);
    if (!asked && observation->price >= 0)
        kci_arbiter_price_add(server, observation->type, observation->price);
    arbiter_node *requester = kci_arbiter_node(arbiter, observation->requester, true);
    if (requester != NULL && refused) requester->refusals_provoked++;
    if (requester != NULL && requester != server && !bad && !refused)
        kci_arbiter_edge_add(requester, kci_arbiter_node_number(arbiter, server), 1, 0);
}

static void on_request(natsConnection *connection, natsSubscription *subscription, natsMsg *message,
                       void *closure)
{
    (void)connection, (void)subscription;
    kci_arbiter *arbiter = closure;
    kci_kc_headers headers;
    kci_headers_clear(&headers);
    const char *subject = natsMsg_GetSubject(message);
    if (kci_headers_read(message, false, &headers) == KC_OK && headers.id[0] != '\0') {
        int64_t now_ms = kci_monotonic_ms();
        pthread_mutex_lock(&arbiter->lock);
        kci_observation *observation = kci_observe_put(arbiter->observe, headers.id, now_ms);
        observation->requested_ms = now_ms;
        snprintf(observation->type, sizeof observation->type, "%s",
                 subject + strlen(REQUEST_PREFIX));
        snprintf(observation->requester, sizeof observation->requester, "%s", headers.node);
        /* A transfer (Kc-Pay) or an escrow hold (Kc-Pay-Hold): either is
         * read back from the ledger for the request's price (price.c). */
        observation->pay_is_hold = headers.pay[0] == '\0' && headers.pay_hold[0] != '\0';
        snprintf(observation->pay, sizeof observation->pay, "%s",
                 observation->pay_is_hold ? headers.pay_hold : headers.pay);
        observation->deadline_wall_ms = headers.deadline_ms;
        if (observation->replied_ms != 0 && !observation->settled) settle(arbiter, observation);
        pthread_mutex_unlock(&arbiter->lock);
    }
    natsMsg_Destroy(message);
}

static void on_reply(natsConnection *connection, natsSubscription *subscription, natsMsg *message,
                     void *closure)
{
    (void)connection, (void)subscription;
    kci_arbiter *arbiter = closure;
    kci_kc_headers headers;
    kci_headers_clear(&headers);
    if (kci_headers_read(message, false, &headers) == KC_OK && headers.reply_to[0] != '\0' &&
        headers.node[0] != '\0') {
        double price = reply_price(message);
        int64_t now_ms = kci_monotonic_ms();
        pthread_mutex_lock(&arbiter->lock);
        kci_observation *observation = kci_observe_get(arbiter->observe, headers.reply_to);
        bool first = observation == NULL;
        if (first) {
            observation = kci_observe_put(arbiter->observe, headers.reply_to, now_ms);
            observation->requested_ms = 0;
        }
        if (observation->replied_ms == 0) {
            observation->replied_ms = now_ms;
            observation->replied_wall_ms = kci_wall_ms();
            snprintf(observation->server, sizeof observation->server, "%s", headers.node);
            observation->error_code = headers.error_code;
            observation->price = price;
            if (!first && observation->requested_ms != 0) settle(arbiter, observation);
        }
        pthread_mutex_unlock(&arbiter->lock);
    }
    natsMsg_Destroy(message);
}

/* Pre-trusted by configuration: this arbiter, its peers, the pretrusted. */
static bool trusted_name(const kci_arbiter *arbiter, const char *name)
{
    if (name[0] == '\0') return false;
    if (strcmp(name, arbiter->id) == 0) return true;
    for (uint32_t i = 0; i < arbiter->config.peer_count; i++)
        if (strcmp(arbiter->config.peers[i], name) == 0) return true;
    for (uint32_t i = 0; i < arbiter->config.pretrusted_count; i++)
        if (strcmp(arbiter->config.pretrusted[i], name) == 0) return true;
    return false;
}

/* A sample signed by its reporter (qos_sample.h), the lock held: counted
 * like an observed request, a refusal the reporter caused (4xx) against the
 * reporter rather than the node; dropped when the reporter is a perjurer
 * (its problem reports were mostly refuted), whose word counts for nothing
 * here either. */
static void signed_sample(kci_arbiter *arbiter, natsMsg *message, const char *reporter_name,
                          const char *name, int64_t now_ms)
{
    const char *signature = NULL;
    natsMsgHeader_Get(message, KCI_QOS_SAMPLE_SIGNATURE_HEADER, &signature);
    arbiter_node *reporter = kci_arbiter_node(arbiter, reporter_name, false);
    kci_qos_last last = reporter != NULL ? reporter->qos_last : (kci_qos_last){0};
    kci_qos_signed sample;
    kci_qos_sample_status status = kci_qos_sample_check(
        &sample, &last, arbiter->config.node_keys, arbiter->config.node_key_count, reporter_name,
        name, signature, natsMsg_GetData(message), (size_t)natsMsg_GetDataLength(message),
        kci_wall_ms());
    if (status == KCI_QOS_SAMPLE_OK) reporter = kci_arbiter_node(arbiter, reporter_name, true);
    arbiter_node *node = reporter != NULL ? kci_arbiter_node(arbiter, name, true) : NULL;
    if (status != KCI_QOS_SAMPLE_OK || node == NULL ||
        kci_credibility_perjurer(&reporter->credibility, &arbiter->config.credibility)) {
        kci_counter_inc(&kci_arbiter_metric_values.samples_refused);
        kci_debug("arbiter %s: QoS sample about %s from %s refused: %s", arbiter->id, name,
                  reporter_name, kci_qos_sample_status_name(status));
        return;
    }
    reporter->qos_last = last;
    reporter->qos_reported++;
    bool refused = !sample.ok && kci_qos_error_is_client_caused(sample.error_code);
    kci_qos_sample qos = {.latency_ms = sample.latency_ms,
                          .failed = !sample.ok && !refused,
                          .deadline_missed = sample.deadline_missed};
    kci_qos_add(&node->qos, &arbiter->config.qos, &qos, now_ms);
    node->qos_samples++;
    node->served = true;
    kci_arbiter_served_type_add(node, sample.type);
    kci_counter_inc(&kci_arbiter_metric_values.samples[KCI_ARBITER_SAMPLE_SIGNED]);
    if (qos.failed || qos.deadline_missed || qos.latency_ms > arbiter->config.qos.slow_ms)
        kci_arbiter_evidence_add(node, sample.request_id);
    if (refused) reporter->refusals_provoked++;
}

/* kc.qos.<node>: {"latency_ms": n, "ok": b, "deadline_missed": b, "price": p,
 * "type": t}, believed from pre-trusted senders, and from reporters in
 * node_keys when signed (signed_sample): anyone else could sink an honest
 * node's score with made-up samples. */
static void on_qos(natsConnection *connection, natsSubscription *subscription, natsMsg *message,
                   void *closure)
{
    (void)connection, (void)subscription;
    kci_arbiter *arbiter = closure;
    kci_kc_headers headers;
    kci_headers_clear(&headers);
    const char *subject = natsMsg_GetSubject(message);
    const char *name = subject + strlen("kc.qos.");
    json_t *root = NULL;
    if (kci_headers_read(message, false, &headers) == KC_OK && natsMsg_GetDataLength(message) > 0)
        root =
            json_loadb(natsMsg_GetData(message), (size_t)natsMsg_GetDataLength(message), 0, NULL);
    json_t *latency = json_object_get(root, "latency_ms");
    int64_t now_ms = kci_monotonic_ms();
    pthread_mutex_lock(&arbiter->lock);
    bool trusted = trusted_name(arbiter, headers.node);
    if (!trusted && headers.node[0] != '\0' && kci_token_valid(name))
        signed_sample(arbiter, message, headers.node, name, now_ms);
    arbiter_node *node = trusted ? kci_arbiter_node(arbiter, name, true) : NULL;
    if (node != NULL && json_is_number(latency) && json_number_value(latency) >= 0) {
        kci_qos_sample sample = {
            .latency_ms = json_number_value(latency),
            /* a refusal the requester caused (error_code 4xx) is not a failure */
            .failed = json_is_false(json_object_get(root, "ok")) &&
                      !kci_qos_error_is_client_caused(
                          (int)json_integer_value(json_object_get(root, "error_code"))),
            .deadline_missed = json_is_true(json_object_get(root, "deadline_missed")),
        };
        kci_qos_add(&node->qos, &arbiter->config.qos, &sample, now_ms);
        node->qos_samples++;
        kci_counter_inc(&kci_arbiter_metric_values.samples[KCI_ARBITER_SAMPLE_TRUSTED]);
        json_t *price = json_object_get(root, "price");
        const char *type = json_string_value(json_object_get(root, "type"));
        if (json_is_number(price) && json_number_value(price) >= 0 && type != NULL)
            kci_arbiter_price_add(node, type, json_number_value(price));
    }
    pthread_mutex_unlock(&arbiter->lock);
    json_decref(root);
    natsMsg_Destroy(message);
}

static void expire_one(kci_observation *observation, void *context)
{
    (void)context;
    observation->settled = true; /* unanswered: nobody to blame but in reports */
}

/* ---- the tick --------------------------------------------------------------------- */

static void tick(kci_arbiter *arbiter)
{
    int64_t now_ms = kci_monotonic_ms();
    pthread_mutex_lock(&arbiter->lock);
    kci_observe_expire(arbiter->observe, now_ms - arbiter->config.request_timeout_ms, expire_one,
                       NULL);
    kci_arbiter_judge_pending(arbiter, now_ms);
    pthread_mutex_unlock(&arbiter->lock);
    kci_arbiter_probe_tick(arbiter, now_ms); /* takes the lock itself: it sends */
    pthread_mutex_lock(&arbiter->lock);
    kci_arbiter_market_tick(arbiter);
    kci_arbiter_rank_tick(arbiter, now_ms);
    kci_arbiter_vote_tick(arbiter, now_ms);
    if (arbiter->enforce_dirty) kci_arbiter_enforce(arbiter);
    kci_arbiter_metrics_count_nodes(arbiter);
    pthread_mutex_unlock(&arbiter->lock);
}

static void *tick_main(void *context)
{
    kci_arbiter *arbiter = context;
    pthread_mutex_lock(&arbiter->lock);
    while (!arbiter->stopping) {
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        int64_t nanoseconds = until.tv_nsec + (arbiter->config.tick_ms % 1000) * 1000000;
        until.tv_sec += arbiter->config.tick_ms / 1000 + nanoseconds / 1000000000;
        until.tv_nsec = nanoseconds % 1000000000;
        pthread_cond_timedwait(&arbiter->changed, &arbiter->lock, &until);
        if (arbiter->stopping) break;
        pthread_mutex_unlock(&arbiter->lock);
        tick(arbiter);
        pthread_mutex_lock(&arbiter->lock);
    }
    pthread_mutex_unlock(&arbiter->lock);
    return NULL;
}

/* ---- start and stop ------------------------------------------------------------- */

static kc_err subscribe(kci_arbiter *arbiter, const char *subject, natsMsgHandler handler,
                        kci_micro_stats *stats, char *error, size_t error_size)
{
    /* An arbiter that falls behind loses samples (nats.c drops and counts
     * them), not memory: at most this much waits per subscription. */
    const kci_subscription_spec spec = {.subject = subject,
                                        .handler = handler,
                                        .pending_messages_max = PENDING_MESSAGES_MAX,
                                        .pending_bytes_max = PENDING_BYTES_MAX,
                                        .stats = stats};
    kc_err err =
        kci_subscriptions_add(&arbiter->subscriptions, arbiter->connection, &spec, arbiter);
    if (err != KC_OK) snprintf(error, error_size, "arbiter: %s", kc_last_error());
    return err;
}

/* Answers $SRV (micro.h) for the queries it serves. */
static void micro_start(kci_arbiter *arbiter)
{
    kci_micro_stats *stats = arbiter->endpoint_stats;
    const kci_micro_endpoint endpoints[ARBITER_ENDPOINTS] = {
        {"status", "kc.arbiter.status", NULL, &stats[0]},
        {"verdicts", "kc.arbiter.verdicts", NULL, &stats[1]},
        {"tree", "kc.arbiter.tree", NULL, &stats[2]},
        {"reinstate", "kc.arbiter.reinstate", NULL, &stats[3]},
    };
    const kci_micro_description about = {
        .name = "kc-arbiter",
        .version = KC_VERSION,
        .description = "KingCobra arbiter: QoS, problem reports, verdicts and quarantine",
        .node = arbiter->id,
        .type = "arbiter",
        .endpoints = endpoints,
        .endpoint_count = ARBITER_ENDPOINTS};
    arbiter->micro = kci_micro_start_logged(arbiter->connection, &about, "arbiter");
}

static kc_err subscribe_all(kci_arbiter *arbiter, char *error, size_t error_size)
{
    static const struct {
        const char *subject;
        natsMsgHandler handler;
        bool observes; /* traffic it watches, not serves: off without observe_requests */
        int endpoint;  /* of the services protocol (micro_start's order), or -1 */
    } table[] = {
        {"kc.req.>", on_request, true, -1},
        {"_INBOX.>", on_reply, true, -1},
        {"_KCQ.>", on_reply, true, -1}, /* the persister's dispatches (docs/queue.md) */
        {"kc.qos.*", on_qos, false, -1},
        {"kc.problem.*", kci_arbiter_on_problem, false, -1},
        {"kc.problem.*", kci_arbiter_on_payment_problem, false, -1}, /* payment_check.c */
        {"kc.endorse.*", kci_arbiter_on_endorse, false, -1},
        {"kc.arbiter.vote", kci_arbiter_on_vote, false, -1},
        {"kc.arbiter.status", kci_arbiter_on_request, false, 0},
        {"kc.arbiter.verdicts", kci_arbiter_on_request, false, 1},
        {"kc.arbiter.tree", kci_arbiter_on_request, false, 2},
        {"kc.arbiter.reinstate", kci_arbiter_on_request, false, 3},
    };
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++) {
        if (table[i].observes && !arbiter->config.observe_requests) continue;
        kci_micro_stats *stats =
            table[i].endpoint >= 0 ? &arbiter->endpoint_stats[table[i].endpoint] : NULL;
        kc_err err =
            subscribe(arbiter, table[i].subject, table[i].handler, stats, error, error_size);
        if (err != KC_OK) return err;
    }
    if (arbiter->config.observe_requests) { /* what paid requests paid (price.c) */
        char subject[256];
        snprintf(subject, sizeof subject, "%s.*", kci_arbiter_market_inbox(arbiter));
        kc_err err =
            subscribe(arbiter, subject, kci_arbiter_on_price_answer, NULL, error, error_size);
        if (err != KC_OK) return err;
    }
    if (arbiter->verdict_js == NULL) { /* the stream is the shared history otherwise */
        kc_err err = subscribe(arbiter, "kc.arbiter.verdict", kci_arbiter_on_verdict, NULL, error,
                               error_size);
        if (err != KC_OK) return err;
    }
    char log_subject[256];
    kci_arbiter_log_subject(arbiter, log_subject, sizeof log_subject, "*");
    kc_err err = subscribe(arbiter, log_subject, kci_arbiter_on_log_reply, NULL, error, error_size);
    if (err != KC_OK) return err;
    err = kci_subscriptions_flush(arbiter->connection, SUBSCRIBE_FLUSH_TIMEOUT_MS);
    if (err != KC_OK) snprintf(error, error_size, "arbiter: %s", kc_last_error());
    return err;
}

static char *copy_text(const char *text)
{
    return text != NULL ? strdup(text) : NULL;
}

/* The arbiter keeps its own copies of the config's strings. */
static kc_err copy_config(kci_arbiter *arbiter, const kci_arbiter_config *config)
{
    arbiter->config = *config;
    arbiter->config.id = NULL;
    arbiter->config.data_dir = copy_text(config->data_dir);
    arbiter->config.verdict_stream = copy_text(config->verdict_stream);
    arbiter->config.verdict_servers = copy_text(config->verdict_servers);
    bool ok = (config->data_dir == NULL || arbiter->config.data_dir != NULL) &&
              (config->verdict_stream == NULL || arbiter->config.verdict_stream != NULL) &&
              (config->verdict_servers == NULL || arbiter->config.verdict_servers != NULL);
    for (uint32_t i = 0; i < config->probe_count; i++) {
        arbiter->config.probes[i].type = copy_text(config->probes[i].type);
        arbiter->config.probes[i].payload = copy_text(config->probes[i].payload);
        ok &= arbiter->config.probes[i].type != NULL && arbiter->config.probes[i].payload != NULL;
    }
    for (uint32_t i = 0; i < config->pretrusted_count; i++) {
        arbiter->config.pretrusted[i] = copy_text(config->pretrusted[i]);
        ok &= arbiter->config.pretrusted[i] != NULL;
    }
    for (uint32_t i = 0; i < config->peer_count; i++) {
        arbiter->config.peers[i] = copy_text(config->peers[i]);
        ok &= arbiter->config.peers[i] != NULL;
    }
    return ok ? KC_OK : KC_ERR_NOMEM;
}

static void free_config(kci_arbiter_config *config)
{
    free((char *)config->data_dir);
    free((char *)config->verdict_stream);
    free((char *)config->verdict_servers);
    for (uint32_t i = 0; i < config->probe_count; i++) {
        free((char *)config->probes[i].type);
        free((char *)config->probes[i].payload);
    }
    for (uint32_t i = 0; i < config->pretrusted_count; i++)
        free((char *)config->pretrusted[i]);
    for (uint32_t i = 0; i < config->peer_count; i++)
        free((char *)config->peers[i]);
}

static kc_err check_config(const kci_arbiter_config *config, char *error, size_t error_size)
{
    const char *what = NULL;
    if (config->arbiter_count == 0 || config->arbiter_count > KCI_QUORUM_ARBITERS_MAX)
        what = "arbiters must be 1..64";
    else if (config->tick_ms < 10 || config->tick_ms > 3600 * 1000)
        what = "tick must be 10 ms .. 1 h";
    else if (config->probe_count > KCI_ARBITER_PROBES_MAX)
        what = "too many probes (at most 16)";
    else if (config->peer_count > KCI_ARBITER_PEERS_MAX)
        what = "too many peers (at most 64)";
    else if (config->pretrusted_count > KCI_ARBITER_PRETRUSTED_MAX)
        what = "too many pre-trusted nodes (at most 64)";
    else if (config->probe_timeout_ms <= 0 || config->probe_interval_ms < config->probe_timeout_ms)
        what = "the probe interval must be at least the probe timeout";
    else if (config->tree_fanout == 0)
        what = "tree fanout must be at least 1";
    else if (config->id != NULL &&
             (strlen(config->id) > KCI_ARBITER_ID_BYTES_MAX || !kci_token_valid(config->id)))
        what = "the arbiter id must be one subject token";
    if (what == NULL) return KC_OK;
    snprintf(error, error_size, "arbiter: %s", what);
    return KC_ERR_CONFIG;
}

static void destroy(kci_arbiter *arbiter)
{
    kci_wallet_wipe(&arbiter->vote_key);
    for (uint32_t i = 0; i < arbiter->node_count; i++) {
        free(arbiter->nodes[i]->edges);
        free(arbiter->nodes[i]);
    }
    if (arbiter->verdicts_file != NULL) fclose(arbiter->verdicts_file);
    kci_report_log_close(arbiter->report_log);
    free(arbiter->verdicts_path);
    json_decref(arbiter->tree);
    json_decref(arbiter->history);
    kci_arbiter_market_close(arbiter);
    kci_observe_destroy(arbiter->observe);
    free_config(&arbiter->config);
    for (int index = 0; index < ARBITER_ENDPOINTS; index++)
        kci_micro_stats_destroy(&arbiter->endpoint_stats[index]);
    pthread_mutex_destroy(&arbiter->lock);
    pthread_cond_destroy(&arbiter->changed);
    free(arbiter);
}

kc_err kci_arbiter_start(kci_arbiter **out, kc_client *client, const kci_arbiter_config *config,
                         char *error, size_t error_size)
{
    *out = NULL;
    kc_err err = check_config(config, error, error_size);
    if (err != KC_OK) return err;
    kci_arbiter *arbiter = calloc(1, sizeof *arbiter);
    if (arbiter == NULL) return KC_ERR_NOMEM;
    kci_arbiter_metrics_register();
    pthread_mutex_init(&arbiter->lock, NULL);
    kci_subscriptions_init(&arbiter->subscriptions);
    for (int index = 0; index < ARBITER_ENDPOINTS; index++)
        kci_micro_stats_init(&arbiter->endpoint_stats[index]);
    pthread_cond_init(&arbiter->changed, NULL);
    arbiter->client = client;
    arbiter->connection = kci_client_connection(client);
    snprintf(arbiter->id, sizeof arbiter->id, "%s",
             config->id != NULL ? config->id : kc_client_node(client));
    arbiter->start_ms = kci_monotonic_ms();
    arbiter->start_wall_ms = kci_wall_ms();
    arbiter->guarantee_holds = true;
    arbiter->observe = kci_observe_create();
    arbiter->history = json_array();
    err = arbiter->observe != NULL && arbiter->history != NULL ? copy_config(arbiter, config)
                                                               : KC_ERR_NOMEM;
    if (err == KC_OK) err = kci_arbiter_market_open(arbiter);
    if (err == KC_OK) {
        arbiter_node *self = kci_arbiter_node(arbiter, arbiter->id, true);
        if (self != NULL) self->is_arbiter = true;
        for (uint32_t i = 0; i < KCI_ARBITER_PROBES_MAX; i++)
            arbiter->probes[i] = (probe_state){.arbiter = arbiter, .index = i};
        err = arbiter->config.verdicts_jetstream ? kci_verdict_js_open(arbiter, error, error_size)
                                                 : kci_arbiter_restore(arbiter, error, error_size);
        if (err == KC_OK) err = kci_arbiter_vote_key_open(arbiter, error, error_size);
        if (err == KC_OK)
            err = kci_report_log_open(&arbiter->report_log, arbiter->config.data_dir, arbiter->id,
                                      error, error_size);
    }
    if (err == KC_OK) err = subscribe_all(arbiter, error, error_size);
    if (err == KC_OK) micro_start(arbiter);
    if (err == KC_OK && pthread_create(&arbiter->tick_thread, NULL, tick_main, arbiter) != 0)
        err = KC_ERR_NOMEM;
    if (err != KC_OK) {
        if (error[0] == '\0') snprintf(error, error_size, "arbiter: %s", kc_strerror(err));
        kci_arbiter_stop(arbiter, 0);
        return err;
    }
    arbiter->tick_started = true;
    if (arbiter->config.enforce) {
        pthread_mutex_lock(&arbiter->lock);
        kci_arbiter_enforce(arbiter); /* the restored set, or empty */
        pthread_mutex_unlock(&arbiter->lock);
    }
    kci_info("arbiter %s: watching the fabric (%u arbiter(s), a verdict needs %u vote(s); %u probe "
             "type(s)%s)",
             arbiter->id, config->arbiter_count, kci_quorum_needed(config->arbiter_count),
             config->probe_count, config->enforce ? "; enforcing quarantine in the broker" : "");
    *out = arbiter;
    return KC_OK;
}

void kci_arbiter_stop(kci_arbiter *arbiter, int64_t drain_ms)
{
    if (arbiter == NULL) return;
    kci_micro_stop(arbiter->micro, drain_ms);
    arbiter->micro = NULL;
    pthread_mutex_lock(&arbiter->lock);
    arbiter->stopping = true;
    pthread_cond_broadcast(&arbiter->changed);
    pthread_mutex_unlock(&arbiter->lock);
    if (arbiter->tick_started) pthread_join(arbiter->tick_thread, NULL);
    /* Drain: no new messages, and wait for the handlers running now. */
    if (!kci_subscriptions_drain(&arbiter->subscriptions, drain_ms, STOP_MARGIN_MS)) {
        kci_error("arbiter %s: a handler did not finish; leaking the arbiter's state", arbiter->id);
        return;
    }
    /* Each probe's callback runs exactly once (a reply or a timeout): wait
     * for them, bounded by the probe timeout, before freeing what they use. */
    int64_t deadline_ms = kci_monotonic_ms() + arbiter->config.probe_timeout_ms + drain_ms + 1000;
    pthread_mutex_lock(&arbiter->lock);
    while (arbiter->probes_in_flight > 0 && kci_monotonic_ms() < deadline_ms) {
        pthread_mutex_unlock(&arbiter->lock);
        struct timespec pause = {0, STOP_POLL_MS * 1000000};
        nanosleep(&pause, NULL);
        pthread_mutex_lock(&arbiter->lock);
    }
    uint32_t left = arbiter->probes_in_flight;
    pthread_mutex_unlock(&arbiter->lock);
    kci_subscriptions_destroy(&arbiter->subscriptions);
    kci_verdict_js_close(arbiter->verdict_js); /* its writer and follower use the state */
    arbiter->verdict_js = NULL;
    if (left > 0) {
        kci_error("arbiter %s: %u probe(s) still in flight at stop; leaking the arbiter's state",
                  arbiter->id, left);
        return;
    }
    kci_info("arbiter %s: stopped", arbiter->id);
    destroy(arbiter);
}
