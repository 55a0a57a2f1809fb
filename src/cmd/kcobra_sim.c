/* kcobra_sim.c - `kcobra sim`: a cloud with corrupt nodes, real services and
 * clients over the fabric, and the arbiters at work; prints how well they
 * found the corrupt nodes.
 *
 * The cloud: N nodes serve the request type "sense" (a payload x; the true
 * answer is 2x + 1, given as {"value", "accuracy": 0.5, "price"}); C
 * clients send R requests in total at --rate per second and report what
 * they see go wrong (wrong answers, slow replies, overcharges) with
 * probability 1/2 each, on kc.problem.<node>; a --false-reporters fraction
 * of the clients also files false reports against nodes that served them
 * well. round(N x corrupt) nodes, picked by the seed, are corrupt, each
 * with one of the --behaviour list in turn:
 *   wrong         answers far off the truth (a different lie each time)
 *   slow          answers right, 250 ms late
 *   overcharge    answers right, at three times its price
 *   false-report  serves well, files false reports about honest nodes
 *   collude       answers the same lie as the other colluders, endorses
 *                 them (kc.endorse.<node>) and accuses honest nodes
 * Every node, client and arbiter has its own connection and node name (the
 * connection name too, which is how kcobrad knows whom to quarantine).
 *
 * The arbiters: 4 (3f + 1, f = 1) unless --arbiters says otherwise. Without
 * --server, kcobra starts a kcobrad (--kcobrad, else the one beside kcobra,
 * else PATH) in a temporary directory hosting arbiter-0, which enforces the
 * quarantine, and runs the others in this process; with --server all run
 * here and nothing is enforced. They probe "sense" with 21.5 every second.
 *
 * Deterministic for a seed: who is corrupt, every payload and every
 * client's choices. Timing is not, so the figures vary a little between
 * runs; the thresholds in CI leave room for that. Detection time counts
 * from the start of the requests to the final verdict (quorum). */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/hash.h"
#include "common/log.h"
#include "kcobra_sim.h"
#include "service/component.h"
#include "service/uuid.h"

const sim_behaviour BEHAVIOURS[BEHAVIOUR_COUNT] = {
    {"wrong", B_WRONG},
    {"slow", B_SLOW},
    {"overcharge", B_OVERCHARGE},
    {"false-report", B_FALSE_REPORT},
    {"collude", B_COLLUDE},
    {"sybil", B_SYBIL},
    {"take-payment", B_TAKE_PAYMENT},
};

/* ---- seeded randomness ---------------------------------------------------------- */

static uint64_t next_random(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

uint64_t kcobra_sim_random(uint64_t *state)
{
    return next_random(state);
}

static double unit_random(uint64_t *state)
{
    return (double)(next_random(state) >> 11) / 9007199254740992.0;
}

void kcobra_sim_sleep_ms(int64_t duration_ms)
{
    if (duration_ms <= 0) return;
    struct timespec pause = {duration_ms / 1000, (duration_ms % 1000) * 1000000};
    while (nanosleep(&pause, &pause) != 0 && errno == EINTR) {
    }
}

/* ---- the service ------------------------------------------------------------------ */

static void handle_sense(const kc_request *request, kc_response *response, void *closure)
{
    sim_node *node = closure;
    size_t length = 0;
    const char *payload = kc_request_payload(request, &length);
    char text[64] = "";
    if (length < sizeof text) memcpy(text, payload, length), text[length] = '\0';
    char *end = NULL;
    double x = strtod(text, &end);
    if (end == text || !isfinite(x)) {
        kc_response_set_error(response, 400, "the payload must be a number");
        return;
    }
    /* take-payment: serves the arbiters' probes well, and answers every
     * client (who paid, with --economy) with an error it caused itself. */
    const char *requester = kc_request_node(request);
    if (node->behaviour & B_TAKE_PAYMENT && requester != NULL &&
        strncmp(requester, "client-", strlen("client-")) == 0) {
        kc_response_set_error(response, 500, "out of order");
        return;
    }
    const char *id = kc_request_id(request);
    uint64_t hash = kci_hash_bytes(id, strlen(id)) ^ kci_hash_bytes(node->name, strlen(node->name));
    double noise = ((double)(hash >> 11) / 9007199254740992.0 * 2 - 1) * SIM_NOISE;
    double value = 2 * x + 1 + noise;
    if (node->behaviour & B_COLLUDE)
        value = 3 * x + 7; /* the colluders' common lie */
    else if (node->behaviour & B_SYBIL)
        value = 2 * x + 9; /* the sybil ring's, one owner's copies */
    else if (node->behaviour & B_WRONG)
        value = 2 * x + 6 + 10 * (double)(hash & 0xffff) / 65535.0;
    if (node->behaviour & B_SLOW) kcobra_sim_sleep_ms(SIM_SLOW_DELAY_MS);
    double price = node->price;
    char answer[128];
    int answer_length =
        snprintf(answer, sizeof answer, "{\"value\":%.6f,\"accuracy\":%.2f,\"price\":%.4f}", value,
                 SIM_ACCURACY, price);
    kc_response_set_payload(response, answer, (size_t)answer_length);
}

/* ---- connections ------------------------------------------------------------------ */

static int open_client(kc_client **out, const sim *s, const char *node)
{
    kc_client_options options;
    kc_client_options_init(&options);
    options.servers = s->url[0] != '\0' ? s->url : s->common.server;
    options.node = node;
    options.name = node; /* kcobrad's quarantine knows a node by its connection name */
    options.token = s->common.token;
    options.user = s->common.user;
    options.password = s->common.password;
    options.connect_timeout_ms = SIM_START_TIMEOUT_MS;
    kc_err err = kc_client_open(out, &options);
    if (err == KC_OK) return KCOBRA_EXIT_OK;
    kcobra_error("sim: %s cannot connect to %s: %s", node, options.servers, kc_last_error());
    return KCOBRA_EXIT_CONNECT;
}

/* ---- false reports and endorsements ------------------------------------------------- */

static void endorse(sim_node *node, const sim_node *peer)
{
    char subject[64];
    snprintf(subject, sizeof subject, "kc.endorse.%s", peer->name);
    natsMsg *message = NULL;
    if (natsMsg_Create(&message, subject, NULL, "{}", 2) != NATS_OK) return;
    natsMsgHeader_Set(message, "Kc-Node", node->name);
    natsConnection_PublishMsg(kci_client_connection(node->client), message);
    natsMsg_Destroy(message);
}

static int start_service(sim_node *node);

/* A sybil is fresh: it starts serving once a quarter of the requests are
 * done, under a name the arbiters have not seen serve, and from then on
 * praises the other sybils (endorsements) and is praised by them. */
static bool sybil_join(sim_node *node)
{
    sim *s = node->sim;
    int64_t join_at = s->options.requests / SIM_SYBIL_JOIN_DIVISOR;
    while (!atomic_load(&s->stop) && atomic_load(&s->requests_done) < join_at)
        kcobra_sim_sleep_ms(SIM_REPORTER_PERIOD_MS / 4);
    if (atomic_load(&s->stop)) return false;
    pthread_mutex_lock(&s->lock);
    node->joined_ms = kci_monotonic_ms() - s->start_ms;
    node->joined_requests = atomic_load(&s->requests_done);
    pthread_mutex_unlock(&s->lock);
    return start_service(node) == KCOBRA_EXIT_OK;
}

static void *reporter_main(void *context)
{
    sim_node *node = context;
    sim *s = node->sim;
    static const kc_problem_reason reasons[] = {KC_PROBLEM_WRONG_ANSWER, KC_PROBLEM_SLOW,
                                                KC_PROBLEM_OVERCHARGED, KC_PROBLEM_ERROR_REPLY};
    if (node->behaviour & B_SYBIL && !sybil_join(node)) return NULL;
    while (!atomic_load(&s->stop)) {
        kcobra_sim_sleep_ms(SIM_REPORTER_PERIOD_MS);
        if (node->behaviour & B_SYBIL) {
            const sim_node *peer = &s->nodes[next_random(&node->random) % s->node_count];
            if (peer != node && peer->behaviour & B_SYBIL) endorse(node, peer);
            continue; /* praise only: no accusations */
        }
        const sim_node *target = &s->nodes[next_random(&node->random) % s->node_count];
        if (target->behaviour != 0) {
            if (node->behaviour & B_COLLUDE && target->behaviour & B_COLLUDE && target != node)
                endorse(node, target);
            continue; /* accuse only honest nodes */
        }
        char id[KC_UUID_TEXT_BYTES + 1];
        kci_uuid_v7_text(id); /* a request that never happened */
        bool with_id = next_random(&node->random) % 2 == 0;
        kc_client_report_problem(node->client, target->name,
                                 reasons[next_random(&node->random) % 4], with_id ? id : NULL,
                                 "sim: a false report");
    }
    return NULL;
}

/* ---- clients ---------------------------------------------------------------------- */

/* What a client paid a node for a bad answer (wrong, slow or overcharged:
 * all of its price) is money lost to it while it is not quarantined. */
void kcobra_sim_money_lost(sim *s, const char *server, double price)
{
    pthread_mutex_lock(&s->lock);
    for (uint32_t i = 0; i < s->node_count; i++) {
        sim_node *node = &s->nodes[i];
        if (strcmp(node->name, server) == 0 && !node->quarantined) node->money_lost += price;
    }
    pthread_mutex_unlock(&s->lock);
}

/* Checks a reply as a client would, reports what it finds (each with
 * probability 1/2), counts what was paid for a bad answer (wrong, slow or
 * overcharged) as lost; whether the service itself was bad (wrong or
 * slow: an overcharged answer is still a good one). paid: what the client
 * paid (the declared price without --economy). */
bool kcobra_sim_check_reply(sim_client *client, kc_reply *reply, double x, int64_t latency_ms,
                            double paid)
{
    size_t length = 0;
    const char *payload = kc_reply_payload(reply, &length);
    json_t *root = json_loadb(payload, length, 0, NULL);
    double value = json_number_value(json_object_get(root, "value"));
    double price = json_number_value(json_object_get(root, "price"));
    json_decref(root);
    const char *server = kc_reply_node(reply), *id = kc_reply_request_id(reply);
    bool problem = false, bad_service = false;
    uint64_t *random = &client->random;
    if (fabs(value - (2 * x + 1)) > 1) {
        problem = true;
        if (next_random(random) % 2 == 0)
            kc_client_report_problem(client->client, server, KC_PROBLEM_WRONG_ANSWER, id,
                                     "sim: wrong");
    }
    if (latency_ms > SIM_SLOW_BAR_MS) {
        problem = true;
        if (next_random(random) % 2 == 0)
            kc_client_report_problem(client->client, server, KC_PROBLEM_SLOW, id, "sim: slow");
    }
    bad_service = problem;
    if (price > 2 * (client->sim->options.economy ? SIM_PRICE_UNITS : 1)) {
        problem = true;
        if (next_random(random) % 2 == 0)
            kc_client_report_problem(client->client, server, KC_PROBLEM_OVERCHARGED, id,
                                     "sim: price");
    }
    if (problem && server != NULL)
        kcobra_sim_money_lost(client->sim, server, paid < 0 ? price : paid);
    if (!problem && client->false_reporter && unit_random(random) < 0.3) {
        kc_problem_reason reason =
            next_random(random) % 2 ? KC_PROBLEM_SLOW : KC_PROBLEM_WRONG_ANSWER;
        kc_client_report_problem(client->client, server, reason, id, "sim: a false report");
    }
    return bad_service;
}

/* A provoking client's request: a payload the service must refuse (400),
 * and a complaint about the refusal (error_reply, with the request id), as
 * if the refusal were the service's fault. */
static void provoke(sim_client *client, int64_t k)
{
    char payload[32];
    int length = snprintf(payload, sizeof payload, "not-a-number-%lld", (long long)k);
    kc_reply *reply = NULL;
    kc_err err = kc_client_request(&reply, client->client, SIM_TYPE, payload, (size_t)length,
                                   SIM_REQUEST_TIMEOUT_MS);
    atomic_fetch_add(&client->sim->requests_done, 1);
    if (err == KC_ERR_SERVICE && reply != NULL && kc_reply_node(reply) != NULL &&
        kc_reply_node(reply)[0] != '\0' && next_random(&client->random) % 2 == 0)
        kc_client_report_problem(client->client, kc_reply_node(reply), KC_PROBLEM_ERROR_REPLY,
                                 kc_reply_request_id(reply), "sim: refused");
    kc_reply_destroy(reply);
}

static void *client_main(void *context)
{
    sim_client *client = context;
    sim *s = client->sim;
    /* Each client sends its share at rate / clients per second. */
    double interval_ms = 1000.0 * s->client_count / (double)s->options.rate;
    int64_t start_ms = kci_monotonic_ms();
    for (int64_t k = 0; k < client->request_count && !atomic_load(&s->stop); k++) {
        kcobra_sim_sleep_ms(start_ms + (int64_t)(k * interval_ms) - kci_monotonic_ms());
        if (s->options.economy) {
            if (client->provoker)
                kcobra_sim_economy_provoke(client, k);
            else
                kcobra_sim_economy_request(client, k);
            continue;
        }
        if (client->provoker) {
            provoke(client, k);
            continue;
        }
        double x = round(unit_random(&client->random) * 100000) / 1000;
        char payload[32];
        int length = snprintf(payload, sizeof payload, "%.3f", x);
        kc_reply *reply = NULL;
        int64_t sent_ms = kci_monotonic_ms();
        kc_err err = kc_client_request(&reply, client->client, SIM_TYPE, payload, (size_t)length,
                                       SIM_REQUEST_TIMEOUT_MS);
        int64_t latency_ms = kci_monotonic_ms() - sent_ms;
        atomic_fetch_add(&s->requests_done, 1);
        if (err == KC_OK) kcobra_sim_check_reply(client, reply, x, latency_ms, -1);
        kc_reply_destroy(reply);
    }
    return NULL;
}

/* ---- verdicts ---------------------------------------------------------------------- */

static void on_verdict(natsConnection *connection, natsSubscription *subscription, natsMsg *message,
                       void *closure)
{
    (void)connection, (void)subscription;
    sim *s = closure;
    json_t *root =
        json_loadb(natsMsg_GetData(message), (size_t)natsMsg_GetDataLength(message), 0, NULL);
    const char *action = json_string_value(json_object_get(root, "action"));
    const char *name = json_string_value(json_object_get(root, "node"));
    int64_t now_ms = kci_monotonic_ms();
    pthread_mutex_lock(&s->lock);
    if (action != NULL && name != NULL && strcmp(action, "quarantine") == 0) {
        for (uint32_t i = 0; i < s->node_count; i++) {
            sim_node *node = &s->nodes[i];
            if (strcmp(node->name, name) != 0) continue;
            node->epoch = (uint32_t)json_integer_value(json_object_get(root, "epoch"));
            if (node->quarantined) continue;
            node->quarantined = true;
            /* from its start: a sybil's when it joined */
            node->detected_ms = now_ms - s->start_ms - node->joined_ms;
            node->detected_requests = atomic_load(&s->requests_done) - node->joined_requests;
            if (s->options.verbose)
                fprintf(stderr, "sim: %s quarantined after %lld ms, %lld requests (%s)\n", name,
                        (long long)node->detected_ms, (long long)node->detected_requests,
                        node->behaviour ? "corrupt" : "HONEST");
        }
        for (uint32_t i = 0; i < s->client_count; i++)
            if (strcmp(s->clients[i].name, name) == 0) s->clients[i].quarantined = true;
    }
    pthread_mutex_unlock(&s->lock);
    json_decref(root);
    natsMsg_Destroy(message);
}

static void on_alarm(natsConnection *connection, natsSubscription *subscription, natsMsg *message,
                     void *closure)
{
    (void)connection, (void)subscription;
    sim *s = closure;
    json_t *root =
        json_loadb(natsMsg_GetData(message), (size_t)natsMsg_GetDataLength(message), 0, NULL);
    pthread_mutex_lock(&s->lock);
    if (json_is_false(json_object_get(root, "guarantee_holds")) && !s->guarantee_broken) {
        s->guarantee_broken = true;
        snprintf(s->guarantee_text, sizeof s->guarantee_text, "%s",
                 json_string_value(json_object_get(root, "text"))
                     ? json_string_value(json_object_get(root, "text"))
                     : "");
    }
    pthread_mutex_unlock(&s->lock);
    json_decref(root);
    natsMsg_Destroy(message);
}

/* ---- the cloud ------------------------------------------------------------------------ */

static void pick_corrupt(sim *s)
{
    uint64_t random = (uint64_t)s->options.seed;
    uint32_t order[SIM_NODES_MAX] = {0};
    for (uint32_t i = 0; i < s->node_count; i++)
        order[i] = i;
    for (uint32_t i = s->node_count; i > 1; i--) { /* Fisher-Yates */
        uint32_t j = (uint32_t)(next_random(&random) % i);
        uint32_t swap = order[i - 1];
        order[i - 1] = order[j], order[j] = swap;
    }
    s->corrupt_count = (uint32_t)lround(s->options.corrupt * s->node_count);
    for (uint32_t i = 0; i < s->node_count; i++) {
        sim_node *node = &s->nodes[i];
        node->sim = s;
        snprintf(node->name, sizeof node->name, "node-%02u", i);
        node->base_price = 0.9 + 0.2 * unit_random(&random);
        snprintf(node->paid_type, sizeof node->paid_type, SIM_TYPE "-node-%02u", i);
        node->random = next_random(&random);
    }
    for (uint32_t k = 0; k < s->corrupt_count; k++)
        s->nodes[order[k]].behaviour =
            s->options.behaviours[k % (uint32_t)s->options.behaviour_count];
    for (uint32_t i = 0; i < s->node_count; i++) {
        sim_node *node = &s->nodes[i];
        double factor = node->behaviour & B_OVERCHARGE ? 3 : 1;
        node->price = s->options.economy
                          ? (double)lround(node->base_price * SIM_PRICE_UNITS) * factor
                          : node->base_price * factor;
    }
    uint32_t false_count = (uint32_t)lround(s->options.false_reporters * s->client_count);
    uint32_t provoker_count = (uint32_t)lround(s->options.provokers * s->client_count);
    for (uint32_t i = 0; i < s->client_count; i++) {
        sim_client *client = &s->clients[i];
        client->sim = s;
        snprintf(client->name, sizeof client->name, "client-%02u", i);
        client->random = next_random(&random);
        client->false_reporter = i < false_count;
        /* the last ones, so that both fractions together stay disjoint */
        client->provoker = i >= s->client_count - provoker_count;
        client->request_count = s->options.requests / s->client_count +
                                ((int64_t)i < s->options.requests % (int64_t)s->client_count);
    }
}

/* "sense" for everyone (the arbiters probe it), and with --economy the
 * node's own type sense-<name>, paid at its price into its wallet. */
static int start_service(sim_node *node)
{
    kc_service_options options;
    kc_service_options_init(&options);
    options.worker_count = node->behaviour & B_SLOW ? SIM_SLOW_WORKERS : SIM_WORKERS;
    kc_err err =
        kc_service_start(&node->service, node->client, SIM_TYPE, handle_sense, node, &options);
    if (err == KC_OK && node->sim->options.economy) {
        options.price = (int64_t)node->price;
        options.wallet = node->address;
        err = kc_service_start(&node->paid_service, node->client, node->paid_type, handle_sense,
                               node, &options);
    }
    if (err == KC_OK) {
        pthread_mutex_lock(&node->sim->lock);
        node->serving = true;
        pthread_mutex_unlock(&node->sim->lock);
        return KCOBRA_EXIT_OK;
    }
    kcobra_error("sim: %s cannot serve: %s", node->name, kc_last_error());
    return KCOBRA_EXIT_FAILURE;
}

static int start_nodes(sim *s)
{
    for (uint32_t i = 0; i < s->node_count; i++) {
        sim_node *node = &s->nodes[i];
        int status = open_client(&node->client, s, node->name);
        if (status != KCOBRA_EXIT_OK) return status;
        if (node->behaviour & B_SYBIL) continue; /* joins later (sybil_join) */
        status = start_service(node);
        if (status != KCOBRA_EXIT_OK) return status;
    }
    return KCOBRA_EXIT_OK;
}

static int start_arbiters(sim *s)
{
    /* With our own kcobrad, arbiter-0 is kcobrad's. */
    uint32_t first = s->kcobrad_pid > 0 && s->hosts_arbiter ? 1 : 0;
    for (uint32_t a = first; a < (uint32_t)s->options.arbiters; a++) {
        char id[SIM_NAME_BYTES];
        kcobra_sim_arbiter_id(s, a, id);
        if (kcobra_sim_arbiter_corrupt(s, a)) {
            kc_client *client = NULL;
            int status = open_client(&client, s, id);
            if (status == KCOBRA_EXIT_OK)
                status = kcobra_sim_corrupt_arbiter_start(s, a, client);
            else if (client != NULL)
                kc_client_close(client, SIM_CLOSE_TIMEOUT_MS);
            if (status != KCOBRA_EXIT_OK) return status;
            continue;
        }
        kc_client **client = &s->arbiter_clients[s->arbiter_count];
        int status = open_client(client, s, id);
        if (status != KCOBRA_EXIT_OK) return status;
        kci_arbiter_config config;
        kci_arbiter_config_default(&config);
        config.id = id;
        config.arbiter_count = (uint32_t)s->options.arbiters;
        config.tick_ms = 250;
        config.probe_timeout_ms = 500;
        config.probe_interval_ms = 1000;
        config.qos.slow_ms = SIM_SLOW_BAR_MS;
        config.qos.target_ms = SIM_SLOW_BAR_MS;
        config.qos_samples_min = 20;
        config.quarantine_ms = 10 * 60 * 1000;
        config.data_dir = s->keys_made ? s->data_dir : NULL; /* its vote key, its verdicts */
        char peers[SIM_ARBITERS_MAX][SIM_NAME_BYTES];
        for (uint32_t other = 0; other < (uint32_t)s->options.arbiters; other++) {
            kcobra_sim_arbiter_id(s, other, peers[other]);
            config.peers[config.peer_count++] = peers[other];
            if (s->keys_made)
                config.peer_key_count += kci_vote_key_parse(
                    &config.peer_keys[config.peer_key_count], s->peer_keys[other]);
        }
        char probe[] = SIM_PROBE;
        kci_arbiter_probe_parse(&config.probes[0], probe);
        config.probe_count = 1;
        char error[512] = "";
        if (kci_arbiter_start(&s->arbiters[s->arbiter_count], *client, &config, error,
                              sizeof error) != KC_OK) {
            kcobra_error("sim: %s", error);
            return KCOBRA_EXIT_FAILURE;
        }
        s->arbiter_count++;
    }
    return KCOBRA_EXIT_OK;
}

static int start_observer(sim *s)
{
    int status = open_client(&s->observer, s, "sim-observer");
    if (status != KCOBRA_EXIT_OK) return status;
    natsConnection *connection = kci_client_connection(s->observer);
    const kci_subscription_spec specs[] = {
        {"kc.arbiter.verdict", NULL, on_verdict, KCI_PENDING_UNLIMITED, KCI_PENDING_UNLIMITED,
         NULL},
        {"kc.arbiter.alarm", NULL, on_alarm, KCI_PENDING_UNLIMITED, KCI_PENDING_UNLIMITED, NULL},
    };
    kc_err err = KC_OK;
    for (size_t i = 0; i < sizeof specs / sizeof specs[0] && err == KC_OK; i++)
        err = kci_subscriptions_add(&s->observed, connection, &specs[i], s);
    if (err == KC_OK) err = kci_subscriptions_flush(connection, SIM_CLOSE_TIMEOUT_MS);
    if (err == KC_OK) return KCOBRA_EXIT_OK;
    kcobra_error("sim: cannot subscribe to the verdicts: %s", kc_last_error());
    return KCOBRA_EXIT_FAILURE;
}

/* How many refusals the arbiters saw each client provoke (status's
 * refusals_provoked): provokers are visible even when they do not complain. */
static void ask_refusals(sim *s)
{
    natsMsg *reply = NULL;
    if (natsConnection_RequestString(&reply, kci_client_connection(s->observer),
                                     "kc.arbiter.status", "{}", SIM_STATUS_TIMEOUT_MS) != NATS_OK)
        return;
    json_t *root =
        json_loadb(natsMsg_GetData(reply), (size_t)natsMsg_GetDataLength(reply), 0, NULL);
    size_t index;
    json_t *entry;
    json_array_foreach(json_object_get(root, "nodes"), index, entry)
    {
        const char *name = json_string_value(json_object_get(entry, "name"));
        for (uint32_t i = 0; s->options.verbose && name != NULL && i < s->node_count; i++)
            if (strcmp(s->nodes[i].name, name) == 0 && s->nodes[i].behaviour != 0) {
                char *text = json_dumps(entry, JSON_COMPACT);
                fprintf(stderr, "sim: the arbiters on corrupt %s: %s\n", name, text ? text : "");
                free(text);
            }
        for (uint32_t i = 0; name != NULL && i < s->client_count; i++)
            if (strcmp(s->clients[i].name, name) == 0)
                s->clients[i].refusals_seen =
                    json_integer_value(json_object_get(entry, "refusals_provoked"));
    }
    json_decref(root);
    natsMsg_Destroy(reply);
}

static int run_cloud(sim *s)
{
    int status = start_observer(s);
    if (status == KCOBRA_EXIT_OK) status = start_nodes(s);
    if (status == KCOBRA_EXIT_OK) status = start_arbiters(s);
    for (uint32_t i = 0; status == KCOBRA_EXIT_OK && i < s->client_count; i++)
        status = open_client(&s->clients[i].client, s, s->clients[i].name);
    if (status == KCOBRA_EXIT_OK && s->options.economy) status = kcobra_sim_economy_start(s);
    if (status != KCOBRA_EXIT_OK) return status;
    s->start_ms = kci_monotonic_ms();
    for (uint32_t i = 0; i < s->node_count; i++) {
        sim_node *node = &s->nodes[i];
        if (node->behaviour & (B_FALSE_REPORT | B_COLLUDE | B_SYBIL))
            node->reporter_started =
                pthread_create(&node->reporter, NULL, reporter_main, node) == 0;
    }
    for (uint32_t i = 0; i < s->client_count; i++)
        s->clients[i].started =
            pthread_create(&s->clients[i].thread, NULL, client_main, &s->clients[i]) == 0;
    for (uint32_t i = 0; i < s->client_count; i++)
        if (s->clients[i].started) pthread_join(s->clients[i].thread, NULL);
    kcobra_sim_sleep_ms(s->options.settle_ms); /* the last verdicts */
    ask_refusals(s);
    if (s->options.economy) kcobra_sim_economy_finish(s);
    return KCOBRA_EXIT_OK;
}

static void stop_cloud(sim *s)
{
    atomic_store(&s->stop, true);
    for (uint32_t i = 0; i < s->node_count; i++)
        if (s->nodes[i].reporter_started) pthread_join(s->nodes[i].reporter, NULL);
    kcobra_sim_corrupt_arbiters_stop(s);
    for (uint32_t i = 0; i < s->client_count; i++)
        if (s->clients[i].client != NULL)
            kc_client_close(s->clients[i].client, SIM_CLOSE_TIMEOUT_MS);
    for (uint32_t a = 0; a < s->arbiter_count; a++)
        kci_arbiter_stop(s->arbiters[a], SIM_CLOSE_TIMEOUT_MS);
    for (uint32_t a = 0; a < s->arbiter_count; a++)
        kc_client_close(s->arbiter_clients[a], SIM_CLOSE_TIMEOUT_MS);
    for (uint32_t i = 0; i < s->node_count; i++) {
        if (s->nodes[i].service != NULL) kc_service_stop(s->nodes[i].service);
        if (s->nodes[i].paid_service != NULL) kc_service_stop(s->nodes[i].paid_service);
        if (s->nodes[i].client != NULL) kc_client_close(s->nodes[i].client, SIM_CLOSE_TIMEOUT_MS);
    }
    if (kci_subscriptions_drain(&s->observed, SIM_CLOSE_TIMEOUT_MS, SIM_CLOSE_TIMEOUT_MS))
        kci_subscriptions_destroy(&s->observed);
    if (s->observer != NULL) kc_client_close(s->observer, SIM_CLOSE_TIMEOUT_MS);
}

/* ---- the command ------------------------------------------------------------------------- */

static const char SIM_DESCRIPTION[] =
    "Runs a cloud of N nodes serving the type 'sense' (round(N x F) of them corrupt,\n"
    "each with one of the --behaviour list in turn), C clients sending R requests in\n"
    "total, and 3f+1 arbiters; then prints, per behaviour, how many corrupt nodes\n"
    "were quarantined (recall), how many quarantined nodes were corrupt (precision),\n"
    "the time and the number of requests until each was detected, and the false\n"
    "quarantines of honest nodes. Deterministic for a seed (timing aside).\n"
    "Behaviours: wrong, slow, overcharge, false-report, collude, sybil, take-payment.\n"
    "--economy: each client has a wallet and a budget minted through the ledger kcobrad\n"
    "hosts, and pays each request to the node it picks (its own type sense-<node>, at\n"
    "its price); the report adds the money lost, prices against the equilibrium,\n"
    "wealth inequality (Gini) over time, and checks that money was conserved.\n"
    "Without --server, kcobra starts a kcobrad that hosts arbiter-0 and enforces the\n"
    "quarantine (--kcobrad /usr/sbin/nats-server runs the same cloud on nats-server,\n"
    "all arbiters in this process, nothing enforced); exit 1 if a --min/--max/--expect\n"
    "check fails.\n"
    "\n"
    "Examples:\n"
    "  kcobra sim --nodes 30 --corrupt 0.2 --behaviour wrong,slow --seed 7\n"
    "  kcobra sim --corrupt 0.2 --behaviour wrong --min-precision 0.95 --min-recall 0.95 --json\n"
    "  kcobra sim --corrupt 0.4 --behaviour wrong --expect-guarantee-broken\n"
    "  kcobra sim --provokers 0.2 --false-reporters 0.2 --corrupt-arbiters 1 --max-false-rate 0\n"
    "  kcobra sim --economy --behaviour take-payment,overcharge --requests 2000 --rate 400 \\\n"
    "      --history run.json && kcobra econ hubs --edges run.json\n";

static bool parse_behaviours(const char *text, sim_options *options)
{
    char copy[256];
    snprintf(copy, sizeof copy, "%s", text);
    options->behaviour_count = 0;
    char *save = NULL;
    for (char *word = strtok_r(copy, ",", &save); word != NULL; word = strtok_r(NULL, ",", &save)) {
        int found = -1;
        for (int b = 0; b < BEHAVIOUR_COUNT; b++)
            if (strcmp(word, BEHAVIOURS[b].name) == 0) found = b;
        if (found < 0 || options->behaviour_count == BEHAVIOUR_COUNT) return false;
        options->behaviours[options->behaviour_count++] = BEHAVIOURS[found].bit;
    }
    return options->behaviour_count > 0;
}

static int check_options(const kcobra_command *command, sim_options *o, const char *behaviours)
{
    if (o->nodes < 4 || o->nodes > SIM_NODES_MAX)
        return kcobra_usage_error(command, "--nodes is 4 to %d", SIM_NODES_MAX);
    if (o->clients > SIM_CLIENTS_MAX)
        return kcobra_usage_error(command, "--clients is at most %d", SIM_CLIENTS_MAX);
    if (o->arbiters > SIM_ARBITERS_MAX)
        return kcobra_usage_error(command, "--arbiters is at most %d", SIM_ARBITERS_MAX);
    if (!kcobra_sim_fraction(o->corrupt_text, &o->corrupt, 0.2))
        return kcobra_usage_error(command, "--corrupt is a fraction from 0 to 1");
    if (!kcobra_sim_fraction(o->false_reporters_text, &o->false_reporters, 0))
        return kcobra_usage_error(command, "--false-reporters is a fraction from 0 to 1");
    if (!kcobra_sim_fraction(o->provokers_text, &o->provokers, 0) ||
        o->provokers + o->false_reporters > 1)
        return kcobra_usage_error(
            command, "--provokers is a fraction from 0 to 1, with --false-reporters at most 1");
    if (o->corrupt_arbiters >= o->arbiters)
        return kcobra_usage_error(command, "--corrupt-arbiters must leave an honest arbiter");
    double unused;
    if (!kcobra_sim_fraction(o->min_precision_text, &unused, 0) ||
        !kcobra_sim_fraction(o->min_recall_text, &unused, 0) ||
        !kcobra_sim_fraction(o->max_false_rate_text, &unused, 1) ||
        !kcobra_sim_fraction(o->min_client_recall_text, &unused, 0) ||
        !kcobra_sim_fraction(o->max_money_lost_text, &unused, 1))
        return kcobra_usage_error(command, "--min-precision, --min-recall, --max-false-rate and "
                                           "--min-client-recall are fractions");
    if (!parse_behaviours(behaviours, o))
        return kcobra_usage_error(command,
                                  "--behaviour is a comma list of wrong, slow, overcharge, "
                                  "false-report, collude, sybil, take-payment; not '%s'",
                                  behaviours);
    return KCOBRA_EXIT_OK;
}

static int simulate(sim *s)
{
    s->options.keep = s->options.verbose;
    kci_log_configure(s->options.verbose ? KCI_LOG_INFO : KCI_LOG_ERROR, true);
    signal(SIGPIPE, SIG_IGN);
    int status = kcobra_sim_keys_make(s);
    if (status == KCOBRA_EXIT_OK && !s->server_given) status = kcobra_sim_server_start(s);
    if (status == KCOBRA_EXIT_OK) status = run_cloud(s);
    stop_cloud(s);
    kcobra_sim_server_stop(s);
    return status == KCOBRA_EXIT_OK ? kcobra_sim_report(s) : status;
}

static int run_sim(const kcobra_command *command, int argc, char **argv)
{
    sim *s = calloc(1, sizeof *s);
    if (s == NULL) return KCOBRA_EXIT_FAILURE;
    kci_subscriptions_init(&s->observed);
    sim_options *o = &s->options;
    o->nodes = 30, o->clients = 20, o->requests = 10000, o->seed = 1, o->arbiters = 4;
    o->rate = 1000, o->settle_ms = 3000;
    const char *behaviours = "wrong,slow,overcharge,false-report,collude,sybil,take-payment";
    const kcobra_flag flags[] = {
        {"nodes", "N", KCOBRA_FLAG_COUNT, &o->nodes, "nodes serving (default 30)"},
        {"corrupt", "F", KCOBRA_FLAG_STRING, &o->corrupt_text,
         "fraction of corrupt nodes (default 0.2)"},
        {"behaviour", "LIST", KCOBRA_FLAG_STRING, &behaviours,
         "the corrupt nodes' behaviours, in turn (default all seven)"},
        {"clients", "C", KCOBRA_FLAG_COUNT, &o->clients, "clients (default 20)"},
        {"requests", "R", KCOBRA_FLAG_COUNT, &o->requests, "requests in total (default 10000)"},
        {"seed", "S", KCOBRA_FLAG_COUNT, &o->seed, "the seed (default 1)"},
        {"arbiters", "A", KCOBRA_FLAG_COUNT, &o->arbiters, "arbiters, 3f+1 (default 4)"},
        {"rate", "N", KCOBRA_FLAG_COUNT, &o->rate,
         "requests per second, all clients together (default 1000)"},
        {"settle", "DURATION", KCOBRA_FLAG_DURATION, &o->settle_ms,
         "wait after the last request (default 3s)"},
        {"false-reporters", "F", KCOBRA_FLAG_STRING, &o->false_reporters_text,
         "fraction of clients filing false reports (default 0)"},
        {"provokers", "F", KCOBRA_FLAG_STRING, &o->provokers_text,
         "fraction of clients sending requests meant to be refused, and complaining (default 0)"},
        {"corrupt-arbiters", "K", KCOBRA_FLAG_COUNT, &o->corrupt_arbiters,
         "arbiters (the last K) signing wrong votes instead of judging (default 0)"},
        {"table", "PATH", KCOBRA_FLAG_STRING, &o->table_path,
         "also write the table (markdown) to PATH"},
        {"label", "TEXT", KCOBRA_FLAG_STRING, &o->label, "the run's name in the --table file"},
        {"kcobrad", "PATH", KCOBRA_FLAG_STRING, &o->kcobrad,
         "the kcobrad (or nats-server) to start (default: beside kcobra, else PATH)"},
        {"min-precision", "P", KCOBRA_FLAG_STRING, &o->min_precision_text,
         "exit 1 below this precision"},
        {"min-recall", "R", KCOBRA_FLAG_STRING, &o->min_recall_text, "exit 1 below this recall"},
        {"max-false-rate", "X", KCOBRA_FLAG_STRING, &o->max_false_rate_text,
         "exit 1 above this false-quarantine rate"},
        {"min-client-recall", "R", KCOBRA_FLAG_STRING, &o->min_client_recall_text,
         "exit 1 below this share of false-reporting and provoking clients quarantined, or if "
         "an honest client is"},
        {"expect-guarantee-broken", NULL, KCOBRA_FLAG_BOOL, &o->expect_broken,
         "exit 1 unless the arbiters report n > 3f broken"},
        {"economy", NULL, KCOBRA_FLAG_BOOL, &o->economy,
         "clients pay each request through the ledger kcobrad hosts (wallets, budgets)"},
        {"history", "PATH", KCOBRA_FLAG_STRING, &o->history_path,
         "--economy: write the ledger's history (names for addresses) for kcobra econ --edges"},
        {"max-money-lost", "F", KCOBRA_FLAG_STRING, &o->max_money_lost_text,
         "--economy: exit 1 if more than this share of the money spent was lost to corrupt "
         "nodes, or if money was not conserved"},
        {"verbose", NULL, KCOBRA_FLAG_BOOL, &o->verbose,
         "log the arbiters and each verdict; keep kcobrad's directory (config, log, verdicts)"},
    };
    for (int i = 1; i < argc; i++)
        s->server_given |= strncmp(argv[i], "--server", strlen("--server")) == 0;
    kcobra_invocation invocation;
    int status = kcobra_parse(command, flags, KCOBRA_ARRAY_COUNT(flags), argc, argv, &invocation);
    if (status == KCOBRA_EXIT_OK && !invocation.help)
        status = check_options(command, o, behaviours);
    if (status == KCOBRA_EXIT_OK && !invocation.help) {
        s->common = invocation.common;
        s->node_count = (uint32_t)o->nodes;
        s->client_count = (uint32_t)o->clients;
        s->corrupt_arbiter_count = (uint32_t)o->corrupt_arbiters;
        pthread_mutex_init(&s->lock, NULL);
        pick_corrupt(s);
        if (o->economy) kcobra_sim_economy_wallets(s);
        status = simulate(s);
        pthread_mutex_destroy(&s->lock);
    }
    free(s);
    return status;
}

const kcobra_command kcobra_command_sim = {
    .name = "sim",
    .synopsis =
        "sim [--nodes N] [--corrupt F] [--behaviour LIST] [--clients C] [--requests R] [--seed S]",
    .summary = "simulate a cloud with corrupt nodes and measure the arbiters",
    .description = SIM_DESCRIPTION,
    .run = run_sim,
    .positional_min = 0,
    .positional_max = 0,
};
