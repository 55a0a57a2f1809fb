/*
 * cluster.c - libkingcobra on a three-server nats-server cluster: what
 * docs/cluster.md promises, checked on 127.0.0.1.
 *
 * The cluster: three nats-server processes (argv[1]) started by the harness,
 * each with its client port and monitoring port on the command line and a
 * config file whose cluster block names the cluster, its own route port and
 * the other two route ports. Route ports are picked before any server starts
 * (every config names all three); a port stolen meanwhile makes a start fail,
 * and the whole cluster is started again on fresh ports. The cluster is up
 * when every server's /routez counts two routes. Interest (a service's queue
 * subscription, a raw subscriber) travels between servers after the
 * subscriber's own server has it, so every case first probes, bounded, until
 * the far side is reachable.
 *
 * Cases:
 *  spread    services of type "echo" on servers B and C (nodes node-b and
 *            node-c), a caller on A: 1,000 sync requests all answered, both
 *            instances answered some (told by the reply's Kc-Node); problem
 *            reports published on A reach a raw subscriber on C, in order.
 *  async     the same shape with 1,000 asynchronous requests, and a request
 *            of a type nobody serves anywhere in the cluster (no responders).
 *  failover  caller and services connect with all three URLs; the server the
 *            caller and one service instance share is killed (SIGKILL) while
 *            the caller sends a stream of sync requests. Every request gets a
 *            correct reply or an error the caller sees (timeout, no
 *            responders, closed, not connected): none is lost silently, none
 *            is answered with another request's reply; requests succeed again
 *            within a bounded window, and the moved service instance serves
 *            from its new server. The killed server is restarted before the
 *            next case.
 * Every reply is checked against its request: the handler echoes
 * "<payload>|<its request's Kc-Id>", and the caller compares the payload it
 * sent and the reply's Kc-Reply-To with that echo.
 *
 * Limits: nats-server only (kcobrad has no routes). Timing bounds are
 * generous so that a loaded machine passes; the whole program stays well
 * under its 120 s meson timeout (typically 5-10 s).
 */
/* clang-format off */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
/* clang-format on */

#include <jansson.h>
#include <nats/nats.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "kingcobra/kingcobra.h"
#include "service/client_internal.h" /* the nats.c connection: where a client is */

enum {
    CLUSTER_SIZE = 3,
    CLUSTER_START_ATTEMPTS_MAX = 3,
    CONFIG_BYTES_MAX = 1024,
    SERVERS_TEXT_BYTES_MAX = CLUSTER_SIZE * HARNESS_URL_SIZE_MAX,
    ROUTES_TIMEOUT_MS = 15000,
    ROUTES_POLL_INTERVAL_MS = 50,
    HTTP_RESPONSE_BYTES_MAX = 16 * 1024,
    HTTP_TIMEOUT_MS = 2000,
    NUMBER_TEXT_BYTES_MAX = 32,
    /* clients and services */
    CASE_CLIENTS_MAX = 16,
    CONNECT_TIMEOUT_MS = 2000,
    RECONNECT_WAIT_MS = 100,
    CLOSE_TIMEOUT_MS = 5000,
    SERVICE_WORKERS = 4,
    PAYLOAD_BYTES_MAX = 64,
    ECHO_BYTES_MAX = PAYLOAD_BYTES_MAX + 1 + KC_UUID_TEXT_BYTES + 1,
    REQUEST_TIMEOUT_MS = 2000,
    INTEREST_TIMEOUT_MS = 10000, /* for a subscription to reach every server */
    PROBE_TIMEOUT_MS = 250,
    PROBE_PAUSE_MS = 20,
    /* spread */
    SPREAD_REQUEST_COUNT = 1000,
    PROBLEM_REPORT_COUNT = 20,
    MESSAGE_TIMEOUT_MS = 5000,
    STALE_PROBES_MAX = 256, /* late probe reports skipped before the real ones */
    /* async */
    ASYNC_REQUEST_COUNT = 1000,
    ASYNC_WAIT_TIMEOUT_MS = 3 * REQUEST_TIMEOUT_MS,
    ASYNC_POLL_INTERVAL_MS = 5,
    /* failover */
    FAILOVER_SERVICE_CLIENT_ATTEMPTS_MAX = 60, /* each lands on the victim w.p. 1/3 */
    FAILOVER_KILL_AFTER_REQUESTS = 200,
    FAILOVER_KILL_WAIT_MS = 10000, /* for the stream to reach the kill point */
    FAILOVER_REQUEST_TIMEOUT_MS = 1000,
    FAILOVER_ERROR_PAUSE_MS = 10, /* after a failed request: no busy loop */
    FAILOVER_RECOVERY_TIMEOUT_MS = 20000,
    FAILOVER_RECOVERED_STREAK = 100, /* consecutive successes: recovered */
    FAILOVER_REQUESTS_MAX = 200000,
    FAILOVER_EXIT_TIMEOUT_MS = 5000,
    SKIP_EXIT_CODE = 77,
    SIGNALLED_EXIT_BASE = 128, /* harness_server_wait_exit: 128 + the signal */
    CODE_TOO_LARGE = 413,      /* the echo's error reply to an oversized payload */
};

static const char CLUSTER_NAME[] = "kc";
static const char ECHO_TYPE[] = "echo";

typedef struct cluster_node {
    harness_server server;
    int route_port;
    char config[CONFIG_BYTES_MAX];
} cluster_node;

static const char *server_binary;
static cluster_node nodes[CLUSTER_SIZE];
static char all_servers[SERVERS_TEXT_BYTES_MAX]; /* "nats://A,nats://B,nats://C" */

/* What a case opened, closed by its teardown even after a failed assertion. */
static struct {
    int client_count;
    kc_client *clients[CASE_CLIENTS_MAX];
    natsConnection *raw_connection;
    natsSubscription *raw_subscription;
} opened;

/* ======================================================================= cluster */

static void node_write_config(int index)
{
    cluster_node *node = &nodes[index];
    int length = snprintf(node->config, sizeof(node->config),
                          "cluster {\n  name: %s\n  listen: \"127.0.0.1:%d\"\n  routes: [\n",
                          CLUSTER_NAME, node->route_port);
    for (int other = 0; other < CLUSTER_SIZE; other++) {
        if (other == index) continue;
        length += snprintf(node->config + length, sizeof(node->config) - (size_t)length,
                           "    \"nats://127.0.0.1:%d\"\n", nodes[other].route_port);
    }
    length += snprintf(node->config + length, sizeof(node->config) - (size_t)length, "  ]\n}\n");
    assert_true(length > 0 && (size_t)length < sizeof(node->config));
}

/* The server's num_routes from /routez, or -1. */
static int node_route_count(const cluster_node *node)
{
    static char body[HTTP_RESPONSE_BYTES_MAX];
    char value[NUMBER_TEXT_BYTES_MAX];
    if (harness_http_get(node->server.monitor_port, "/routez", body, sizeof(body),
                         HTTP_TIMEOUT_MS) != HARNESS_OK)
        return -1;
    if (harness_json_field(body, "num_routes", value, sizeof(value)) != HARNESS_OK) return -1;
    return atoi(value);
}

/* Every running server sees a route to each of the others. */
static bool cluster_wait_routes(void)
{
    int64_t deadline_ms = harness_now_ms() + ROUTES_TIMEOUT_MS;
    while (harness_now_ms() < deadline_ms) {
        bool complete = true;
        for (int index = 0; index < CLUSTER_SIZE && complete; index++)
            complete = node_route_count(&nodes[index]) >= CLUSTER_SIZE - 1;
        if (complete) return true;
        harness_sleep_ms(ROUTES_POLL_INTERVAL_MS);
    }
    fprintf(stderr, "cluster: routes did not form within %d ms\n", ROUTES_TIMEOUT_MS);
    return false;
}

static void cluster_cleanup(void)
{
    for (int index = 0; index < CLUSTER_SIZE; index++)
        harness_server_cleanup(&nodes[index].server);
}

/* One attempt: fresh route ports, three configs, three servers. */
static bool cluster_start_once(void)
{
    for (int index = 0; index < CLUSTER_SIZE; index++) {
        if (harness_server_init(&nodes[index].server, server_binary) != HARNESS_OK) return false;
        nodes[index].server.monitor_enabled = true;
        if (harness_port_pick(&nodes[index].route_port) != HARNESS_OK) return false;
    }
    for (int index = 0; index < CLUSTER_SIZE; index++)
        node_write_config(index);
    for (int index = 0; index < CLUSTER_SIZE; index++)
        if (harness_server_start(&nodes[index].server, nodes[index].config) != HARNESS_OK)
            return false;
    int length = 0;
    for (int index = 0; index < CLUSTER_SIZE; index++)
        length += snprintf(all_servers + length, sizeof(all_servers) - (size_t)length, "%s%s",
                           index > 0 ? "," : "", nodes[index].server.url);
    return cluster_wait_routes();
}

static int group_setup(void **state)
{
    (void)state;
    for (int attempt = 0; attempt < CLUSTER_START_ATTEMPTS_MAX; attempt++) {
        if (cluster_start_once()) return 0;
        cluster_cleanup();
    }
    return -1;
}

static int group_teardown(void **state)
{
    (void)state;
    cluster_cleanup();
    return 0;
}

/* Restarts a server a case killed (same ports, same config). */
static int case_setup(void **state)
{
    (void)state;
    memset(&opened, 0, sizeof(opened));
    for (int index = 0; index < CLUSTER_SIZE; index++) {
        harness_server *server = &nodes[index].server;
        if (server->pid == 0 && harness_server_start(server, nodes[index].config) != HARNESS_OK)
            return -1;
    }
    return cluster_wait_routes() ? 0 : -1;
}

static int case_teardown(void **state)
{
    (void)state;
    for (int index = opened.client_count - 1; index >= 0; index--)
        kc_client_close(opened.clients[index], CLOSE_TIMEOUT_MS); /* stops its services */
    if (opened.raw_connection != NULL) natsConnection_Close(opened.raw_connection);
    natsSubscription_Destroy(opened.raw_subscription);
    natsConnection_Destroy(opened.raw_connection);
    memset(&opened, 0, sizeof(opened));
    return 0;
}

/* ======================================================================= helpers */

static kc_client *client_open(const char *servers, const char *node)
{
    assert_true(opened.client_count < CASE_CLIENTS_MAX);
    kc_client_options options;
    kc_client_options_init(&options);
    options.servers = servers;
    options.node = node;
    options.connect_timeout_ms = CONNECT_TIMEOUT_MS;
    options.reconnect_wait_ms = RECONNECT_WAIT_MS;
    kc_client *client = NULL;
    kc_err err = kc_client_open(&client, &options);
    if (err != KC_OK) fprintf(stderr, "open %s: %s: %s\n", node, kc_strerror(err), kc_last_error());
    assert_int_equal(err, KC_OK);
    opened.clients[opened.client_count++] = client;
    return client;
}

/* The index of the server client is connected to, or -1 (reconnecting). */
static int client_server_index(kc_client *client)
{
    char url[HARNESS_URL_SIZE_MAX];
    if (natsConnection_Status(client->connection) != NATS_CONN_STATUS_CONNECTED) return -1;
    if (natsConnection_GetConnectedUrl(client->connection, url, sizeof(url)) != NATS_OK) return -1;
    const char *colon = strrchr(url, ':');
    int port = colon != NULL ? atoi(colon + 1) : 0;
    for (int index = 0; index < CLUSTER_SIZE; index++)
        if (nodes[index].server.port == port) return index;
    return -1;
}

typedef struct service_counter {
    atomic_int served_count;
} service_counter;

/* Answers "<payload>|<this request's Kc-Id>". */
static void echo_handler(const kc_request *request, kc_response *response, void *closure)
{
    service_counter *counter = closure;
    size_t length = 0;
    const char *payload = kc_request_payload(request, &length);
    if (length > PAYLOAD_BYTES_MAX) {
        kc_response_set_error(response, CODE_TOO_LARGE, "payload longer than the test sends");
        return;
    }
    char text[ECHO_BYTES_MAX];
    int written =
        snprintf(text, sizeof(text), "%.*s|%s", (int)length, payload, kc_request_id(request));
    kc_response_set_payload(response, text, (size_t)written);
    atomic_fetch_add(&counter->served_count, 1);
}

static kc_service *service_start(kc_client *client, service_counter *counter)
{
    kc_service_options options;
    kc_service_options_init(&options);
    options.worker_count = SERVICE_WORKERS;
    kc_service *service = NULL;
    kc_err err = kc_service_start(&service, client, ECHO_TYPE, echo_handler, counter, &options);
    if (err != KC_OK) fprintf(stderr, "service: %s: %s\n", kc_strerror(err), kc_last_error());
    assert_int_equal(err, KC_OK);
    return service;
}

/* The reply echoes payload and names, after '|', the request its
 * Kc-Reply-To names: the service answered this request, not another. */
static bool reply_matches(const kc_reply *reply, const char *payload)
{
    size_t length = 0;
    const char *echoed = kc_reply_payload(reply, &length);
    size_t payload_length = strlen(payload);
    const char *request_id = kc_reply_request_id(reply);
    size_t id_length = strlen(request_id);
    return id_length == KC_UUID_TEXT_BYTES && length == payload_length + 1 + id_length &&
           memcmp(echoed, payload, payload_length) == 0 && echoed[payload_length] == '|' &&
           memcmp(echoed + payload_length + 1, request_id, id_length) == 0;
}

/* Probes until a reply from node arrives (its interest reached the caller's
 * server); false after INTEREST_TIMEOUT_MS. */
static bool await_node(kc_client *caller, const char *node)
{
    int64_t deadline_ms = harness_now_ms() + INTEREST_TIMEOUT_MS;
    while (harness_now_ms() < deadline_ms) {
        kc_reply *reply = NULL;
        kc_err err = kc_client_request(&reply, caller, ECHO_TYPE, "probe", 5, PROBE_TIMEOUT_MS);
        bool found = err == KC_OK && strcmp(kc_reply_node(reply), node) == 0;
        kc_reply_destroy(reply);
        if (found) return true;
        if (err != KC_OK) harness_sleep_ms(PROBE_PAUSE_MS);
    }
    fprintf(stderr, "cluster: no reply from %s within %d ms\n", node, INTEREST_TIMEOUT_MS);
    return false;
}

/* ======================================================================== spread */

typedef struct node_tally {
    const char *nodes[2];
    int counts[2];
    int other_count; /* replies from neither node */
} node_tally;

static void tally_node(node_tally *tally, const char *node)
{
    for (int index = 0; index < 2; index++) {
        if (strcmp(node, tally->nodes[index]) == 0) {
            tally->counts[index]++;
            return;
        }
    }
    tally->other_count++;
}

static void spread_requests(kc_client *caller, node_tally *tally)
{
    for (int index = 0; index < SPREAD_REQUEST_COUNT; index++) {
        char payload[PAYLOAD_BYTES_MAX];
        snprintf(payload, sizeof(payload), "spread-%d", index);
        kc_reply *reply = NULL;
        kc_err err = kc_client_request(&reply, caller, ECHO_TYPE, payload, strlen(payload),
                                       REQUEST_TIMEOUT_MS);
        if (err != KC_OK)
            fprintf(stderr, "request %d: %s: %s\n", index, kc_strerror(err), kc_last_error());
        assert_int_equal(err, KC_OK);
        assert_true(reply_matches(reply, payload));
        tally_node(tally, kc_reply_node(reply));
        kc_reply_destroy(reply);
    }
}

/* A raw subscriber on kc.problem.> at server subscriber_index, reachable from
 * reporter (its interest propagated): probe reports until one arrives. */
static natsSubscription *problem_subscriber(int subscriber_index, kc_client *reporter)
{
    assert_int_equal(
        natsConnection_ConnectTo(&opened.raw_connection, nodes[subscriber_index].server.url),
        NATS_OK);
    assert_int_equal(natsConnection_SubscribeSync(&opened.raw_subscription, opened.raw_connection,
                                                  "kc.problem.>"),
                     NATS_OK);
    assert_int_equal(natsConnection_Flush(opened.raw_connection), NATS_OK);
    int64_t deadline_ms = harness_now_ms() + INTEREST_TIMEOUT_MS;
    while (harness_now_ms() < deadline_ms) {
        assert_int_equal(
            kc_client_report_problem(reporter, "probe-node", KC_PROBLEM_OTHER, NULL, "probe"),
            KC_OK);
        natsMsg *message = NULL;
        natsStatus status =
            natsSubscription_NextMsg(&message, opened.raw_subscription, PROBE_TIMEOUT_MS);
        natsMsg_Destroy(message);
        if (status == NATS_OK) return opened.raw_subscription;
    }
    fail_msg("problem reports from the reporter never reached server %d", subscriber_index);
    return NULL;
}

/* The next report that is not a probe: about node, with this text. */
static void expect_report(natsSubscription *subscription, const char *node, const char *text,
                          const char *reporter)
{
    natsMsg *message = NULL;
    for (int skipped = 0; skipped <= STALE_PROBES_MAX; skipped++) {
        assert_int_equal(natsSubscription_NextMsg(&message, subscription, MESSAGE_TIMEOUT_MS),
                         NATS_OK);
        if (strcmp(natsMsg_GetSubject(message), "kc.problem.probe-node") != 0) break;
        natsMsg_Destroy(message);
        message = NULL;
    }
    assert_non_null(message);
    char subject[KC_NODE_BYTES_MAX + sizeof("kc.problem.")];
    snprintf(subject, sizeof(subject), "kc.problem.%s", node);
    assert_string_equal(natsMsg_GetSubject(message), subject);
    json_error_t error;
    json_t *object =
        json_loadb(natsMsg_GetData(message), (size_t)natsMsg_GetDataLength(message), 0, &error);
    natsMsg_Destroy(message);
    assert_non_null(object);
    const char *got_text = json_string_value(json_object_get(object, "text"));
    const char *got_reporter = json_string_value(json_object_get(object, "reporter"));
    bool matches = got_text != NULL && strcmp(got_text, text) == 0 && got_reporter != NULL &&
                   strcmp(got_reporter, reporter) == 0;
    json_decref(object);
    assert_true(matches);
}

static void test_spread_and_problem_reports(void **state)
{
    (void)state;
    static service_counter counter_b, counter_c;
    atomic_store(&counter_b.served_count, 0);
    atomic_store(&counter_c.served_count, 0);
    service_start(client_open(nodes[1].server.url, "node-b"), &counter_b);
    service_start(client_open(nodes[2].server.url, "node-c"), &counter_c);
    kc_client *caller = client_open(nodes[0].server.url, "caller-a");
    assert_true(await_node(caller, "node-b"));
    assert_true(await_node(caller, "node-c"));

    node_tally tally = {.nodes = {"node-b", "node-c"}};
    spread_requests(caller, &tally);
    fprintf(stderr, "cluster: %d requests from A: %d answered by node-b, %d by node-c\n",
            SPREAD_REQUEST_COUNT, tally.counts[0], tally.counts[1]);
    assert_int_equal(tally.counts[0] + tally.counts[1], SPREAD_REQUEST_COUNT);
    assert_int_equal(tally.other_count, 0);
    assert_true(tally.counts[0] > 0);
    assert_true(tally.counts[1] > 0);

    natsSubscription *subscription = problem_subscriber(2, caller);
    for (int index = 0; index < PROBLEM_REPORT_COUNT; index++) {
        char text[PAYLOAD_BYTES_MAX];
        snprintf(text, sizeof(text), "report-%d", index);
        assert_int_equal(
            kc_client_report_problem(caller, "node-b", KC_PROBLEM_WRONG_ANSWER, NULL, text), KC_OK);
    }
    for (int index = 0; index < PROBLEM_REPORT_COUNT; index++) {
        char text[PAYLOAD_BYTES_MAX];
        snprintf(text, sizeof(text), "report-%d", index);
        expect_report(subscription, "node-b", text, "caller-a");
    }
}

/* ========================================================================= async */

typedef struct async_tally {
    pthread_mutex_t lock;
    int done_count;
    int ok_count;
    int mismatch_count;
    int no_responders_count;
    kc_err last_error;
    node_tally nodes;
} async_tally;

typedef struct async_call {
    async_tally *tally;
    int index; /* -1: the request of a type nobody serves */
} async_call;

static void on_async_reply(kc_client *client, kc_err status, kc_reply *reply, void *closure)
{
    (void)client;
    async_call *call = closure;
    char payload[PAYLOAD_BYTES_MAX];
    snprintf(payload, sizeof(payload), "async-%d", call->index);
    bool matches = status == KC_OK && reply_matches(reply, payload);
    async_tally *tally = call->tally;
    pthread_mutex_lock(&tally->lock);
    tally->done_count++;
    tally->ok_count += status == KC_OK;
    tally->mismatch_count += status == KC_OK && !matches;
    tally->no_responders_count += status == KC_ERR_NO_RESPONDERS;
    if (status != KC_OK) tally->last_error = status;
    if (status == KC_OK) tally_node(&tally->nodes, kc_reply_node(reply));
    pthread_mutex_unlock(&tally->lock);
    kc_reply_destroy(reply);
}

static int async_done_count(async_tally *tally)
{
    pthread_mutex_lock(&tally->lock);
    int count = tally->done_count;
    pthread_mutex_unlock(&tally->lock);
    return count;
}

static void test_async_across_cluster(void **state)
{
    (void)state;
    static service_counter counter_b, counter_c;
    static async_tally tally;
    static async_call calls[ASYNC_REQUEST_COUNT + 1];
    service_start(client_open(nodes[1].server.url, "node-b"), &counter_b);
    service_start(client_open(nodes[2].server.url, "node-c"), &counter_c);
    kc_client *caller = client_open(nodes[0].server.url, "caller-a");
    assert_true(await_node(caller, "node-b"));
    assert_true(await_node(caller, "node-c"));
    memset(&tally, 0, sizeof(tally));
    pthread_mutex_init(&tally.lock, NULL);
    tally.nodes.nodes[0] = "node-b";
    tally.nodes.nodes[1] = "node-c";

    for (int index = 0; index < ASYNC_REQUEST_COUNT; index++) {
        calls[index] = (async_call){&tally, index};
        char payload[PAYLOAD_BYTES_MAX];
        snprintf(payload, sizeof(payload), "async-%d", index);
        assert_int_equal(kc_client_request_async(caller, ECHO_TYPE, payload, strlen(payload),
                                                 REQUEST_TIMEOUT_MS, on_async_reply, &calls[index]),
                         KC_OK);
    }
    calls[ASYNC_REQUEST_COUNT] = (async_call){&tally, -1};
    assert_int_equal(kc_client_request_async(caller, "nobody", "x", 1, REQUEST_TIMEOUT_MS,
                                             on_async_reply, &calls[ASYNC_REQUEST_COUNT]),
                     KC_OK);
    int64_t deadline_ms = harness_now_ms() + ASYNC_WAIT_TIMEOUT_MS;
    while (async_done_count(&tally) < ASYNC_REQUEST_COUNT + 1 && harness_now_ms() < deadline_ms)
        harness_sleep_ms(ASYNC_POLL_INTERVAL_MS);

    pthread_mutex_lock(&tally.lock);
    async_tally seen = tally; /* a copy: callbacks are over, or late ones count no more */
    pthread_mutex_unlock(&tally.lock);
    fprintf(stderr, "cluster: %d async requests: %d ok, node-b %d, node-c %d\n",
            ASYNC_REQUEST_COUNT, seen.ok_count, seen.nodes.counts[0], seen.nodes.counts[1]);
    assert_int_equal(seen.done_count, ASYNC_REQUEST_COUNT + 1);
    assert_int_equal(seen.ok_count, ASYNC_REQUEST_COUNT);
    assert_int_equal(seen.mismatch_count, 0);
    assert_int_equal(seen.no_responders_count, 1);
    assert_int_equal(seen.nodes.other_count, 0);
    assert_true(seen.nodes.counts[0] > 0);
    assert_true(seen.nodes.counts[1] > 0);
}

/* ====================================================================== failover */

typedef struct failover_run {
    int victim_index;
    atomic_int started_count; /* requests begun, read by the killer */
    atomic_bool killed;
    atomic_int_fast64_t killed_at_ms;
    pthread_t killer;
    /* the requester's own tallies */
    int ok_count;
    int error_count;      /* timeout, no responders, closed, not connected */
    int mismatch_count;   /* a reply that is not this request's */
    int unexpected_count; /* any other status */
    kc_err unexpected_last;
    int ok_before_kill_count;
    int streak_after_kill; /* consecutive successes begun after the kill */
    int64_t first_ok_after_kill_ms;
} failover_run;

/* Opens service clients with all three URLs until one is connected to the
 * victim's server and one to another server. */
static void failover_place_services(int victim_index, kc_client **on_victim, kc_client **elsewhere)
{
    *on_victim = NULL;
    *elsewhere = NULL;
    for (int attempt = 0; attempt < FAILOVER_SERVICE_CLIENT_ATTEMPTS_MAX; attempt++) {
        if (*on_victim != NULL && *elsewhere != NULL) return;
        kc_client_options options;
        kc_client_options_init(&options);
        options.servers = all_servers;
        options.node = *on_victim == NULL ? "failover-1" : "failover-2";
        options.connect_timeout_ms = CONNECT_TIMEOUT_MS;
        options.reconnect_wait_ms = RECONNECT_WAIT_MS;
        kc_client *client = NULL;
        assert_int_equal(kc_client_open(&client, &options), KC_OK);
        bool on_victim_server = client_server_index(client) == victim_index;
        if (on_victim_server && *on_victim == NULL) {
            *on_victim = client;
        } else if (!on_victim_server && *on_victim != NULL && *elsewhere == NULL) {
            *elsewhere = client;
        } else {
            kc_client_close(client, CLOSE_TIMEOUT_MS);
            continue;
        }
        assert_true(opened.client_count < CASE_CLIENTS_MAX);
        opened.clients[opened.client_count++] = client;
    }
    assert_non_null(*on_victim);
    assert_non_null(*elsewhere);
}

/* Kills the victim with SIGKILL once the stream is well under way, so that
 * requests are in flight when its connections vanish. */
static void *failover_killer(void *argument)
{
    failover_run *run = argument;
    int64_t deadline_ms = harness_now_ms() + FAILOVER_KILL_WAIT_MS;
    while (atomic_load(&run->started_count) < FAILOVER_KILL_AFTER_REQUESTS &&
           harness_now_ms() < deadline_ms)
        harness_sleep_ms(1);
    atomic_store(&run->killed_at_ms, harness_now_ms());
    harness_server_signal(&nodes[run->victim_index].server, SIGKILL);
    atomic_store(&run->killed, true);
    return NULL;
}

static bool status_is_visible_failure(kc_err err)
{
    return err == KC_ERR_TIMEOUT || err == KC_ERR_NO_RESPONDERS || err == KC_ERR_CLOSED ||
           err == KC_ERR_NOT_CONNECTED;
}

static void failover_tally(failover_run *run, bool after_kill, kc_err err, const kc_reply *reply,
                           const char *payload)
{
    bool ok = err == KC_OK && reply_matches(reply, payload);
    if (ok) {
        run->ok_count++;
        run->ok_before_kill_count += !after_kill;
        if (after_kill && run->first_ok_after_kill_ms == 0)
            run->first_ok_after_kill_ms = harness_now_ms();
    } else if (err == KC_OK || err == KC_ERR_BAD_HEADER) {
        run->mismatch_count++; /* BAD_HEADER: the library saw Kc-Reply-To name another */
    } else if (status_is_visible_failure(err)) {
        run->error_count++;
    } else {
        run->unexpected_count++;
        run->unexpected_last = err;
    }
    run->streak_after_kill = after_kill && ok ? run->streak_after_kill + 1 : 0;
}

/* Sync requests, one after the other, until FAILOVER_RECOVERED_STREAK in a
 * row have succeeded after the kill, or the recovery window closes. */
static int failover_stream(kc_client *caller, failover_run *run)
{
    int sent_count = 0;
    int64_t deadline_ms = harness_now_ms() + FAILOVER_KILL_WAIT_MS + FAILOVER_RECOVERY_TIMEOUT_MS;
    while (sent_count < FAILOVER_REQUESTS_MAX && harness_now_ms() < deadline_ms &&
           run->streak_after_kill < FAILOVER_RECOVERED_STREAK) {
        char payload[PAYLOAD_BYTES_MAX];
        snprintf(payload, sizeof(payload), "failover-%d", sent_count);
        bool after_kill = atomic_load(&run->killed);
        atomic_fetch_add(&run->started_count, 1);
        kc_reply *reply = NULL;
        kc_err err = kc_client_request(&reply, caller, ECHO_TYPE, payload, strlen(payload),
                                       FAILOVER_REQUEST_TIMEOUT_MS);
        sent_count++;
        failover_tally(run, after_kill, err, reply, payload);
        kc_reply_destroy(reply);
        if (err != KC_OK) harness_sleep_ms(FAILOVER_ERROR_PAUSE_MS);
    }
    return sent_count;
}

/* Waits for client to be connected to a server other than the victim. */
static int await_reconnected(kc_client *client, int victim_index)
{
    int64_t deadline_ms = harness_now_ms() + FAILOVER_RECOVERY_TIMEOUT_MS;
    int index = client_server_index(client);
    while ((index < 0 || index == victim_index) && harness_now_ms() < deadline_ms) {
        harness_sleep_ms(PROBE_PAUSE_MS);
        index = client_server_index(client);
    }
    return index;
}

static void failover_report(const failover_run *run, int sent_count)
{
    int64_t killed_at_ms = atomic_load(&run->killed_at_ms);
    fprintf(stderr,
            "cluster: failover: %d requests (%d before the kill): %d ok, %d errors seen, "
            "%d mismatched, %d unexpected (last %s); first success %lld ms after the kill\n",
            sent_count, run->ok_before_kill_count, run->ok_count, run->error_count,
            run->mismatch_count, run->unexpected_count,
            run->unexpected_count > 0 ? kc_strerror(run->unexpected_last) : "none",
            run->first_ok_after_kill_ms > 0
                ? (long long)(run->first_ok_after_kill_ms - killed_at_ms)
                : -1LL);
}

static void test_failover(void **state)
{
    (void)state;
    static service_counter counter_1, counter_2;
    static failover_run run;
    memset(&run, 0, sizeof(run));
    kc_client *caller = client_open(all_servers, "failover-caller");
    run.victim_index = client_server_index(caller);
    assert_true(run.victim_index >= 0);
    kc_client *service_client_1 = NULL, *service_client_2 = NULL;
    failover_place_services(run.victim_index, &service_client_1, &service_client_2);
    service_start(service_client_1, &counter_1);
    kc_service *service_2 = service_start(service_client_2, &counter_2);
    assert_true(await_node(caller, "failover-1")); /* the local member: served first */

    assert_int_equal(pthread_create(&run.killer, NULL, failover_killer, &run), 0);
    int sent_count = failover_stream(caller, &run);
    pthread_join(run.killer, NULL);
    int exit_status = 0;
    harness_status exited = harness_server_wait_exit(&nodes[run.victim_index].server,
                                                     FAILOVER_EXIT_TIMEOUT_MS, &exit_status);
    failover_report(&run, sent_count);

    assert_int_equal(exited, HARNESS_OK);
    assert_int_equal(exit_status, SIGNALLED_EXIT_BASE + SIGKILL);
    assert_int_equal(run.ok_count + run.error_count + run.mismatch_count + run.unexpected_count,
                     sent_count); /* every request came back one way or the other */
    assert_int_equal(run.mismatch_count, 0);
    assert_int_equal(run.unexpected_count, 0);
    assert_true(run.ok_before_kill_count > 0);
    assert_int_equal(run.streak_after_kill, FAILOVER_RECOVERED_STREAK);

    /* Both moved; the moved service serves from its new server. */
    assert_true(await_reconnected(caller, run.victim_index) >= 0);
    assert_true(await_reconnected(service_client_1, run.victim_index) >= 0);
    kc_service_stop(service_2);
    assert_true(await_node(caller, "failover-1"));
}

/* ========================================================================== main */

int main(int argc, char **argv)
{
    server_binary = argc > 1 ? argv[1] : NULL;
    if (server_binary == NULL || server_binary[0] == '\0') {
        fprintf(stderr, "usage: %s NATS_SERVER_BINARY (skipped)\n", argv[0]);
        return SKIP_EXIT_CODE;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_spread_and_problem_reports, case_setup, case_teardown),
        cmocka_unit_test_setup_teardown(test_async_across_cluster, case_setup, case_teardown),
        cmocka_unit_test_setup_teardown(test_failover, case_setup, case_teardown),
    };
    int failures = cmocka_run_group_tests(tests, group_setup, group_teardown);
    nats_CloseAndWait(CLOSE_TIMEOUT_MS);
    return failures;
}
