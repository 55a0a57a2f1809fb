/* eventnet.c - EventNet end to end (docs/eventnet.md): kcobrad (argv[1])
 * with eventnet { enabled: true } records the traffic of four nodes whose
 * wall clocks are skewed (-5 s, 0, +3 s, +1 s: the method of
 * tests/service/hlc_test.c, each node's HLC reading the real clock plus its
 * skew, stamping with kci_headers_stamp_with_hlc and observing each receive
 * with kci_headers_observe). The nodes exchange requests and replies, a
 * submit that the persister dispatches and the service answers, a problem
 * report and a verdict naming its evidence, and one message whose cause
 * was deliberately never sent. Then:
 *   - every edge the nodes made is in the graph, both ways, with each
 *     cause's Kc-Ts before its effect's, although a reply to the fast node
 *     is sent when the replier's own wall clock is 3 s behind the request's
 *     (the HLC, not the wall clock, orders it);
 *   - `kcobra eventnet check` finds no order violation and exactly one
 *     missing cause, the dropped one, and exits 1 for it;
 *   - `kcobra eventnet causes` over NATS walks from the verdict back to
 *     the request;
 *   - kcobrad is killed with SIGKILL and restarted on the same directory:
 *     every event is still there, and new traffic is recorded after it.
 * kcobra is argv[2]. Skipped on a server other than kcobrad. */
#include <jansson.h>
#include <nats/nats.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include <cmocka.h>

#include "eventnet/store.h"
#include "fixture.h"
#include "harness.h"
#include "service/headers.h"

enum {
    NODE_COUNT = 4,
    RECEIVE_TIMEOUT_MS = 10000,
    RECORD_TIMEOUT_MS = 20000,
    POLL_MS = 100,
    DRIFT_MS_MAX = 60000,
    SENT_MAX = 32,
    COMMAND_BYTES_MAX = 2048,
    OUTPUT_BYTES_MAX = 256 * 1024,
    EXIT_SKIP = 77, /* meson: skipped */
};

static const char *server_binary;
static const char *kcobra_binary;

typedef struct sim_node {
    const char *name;
    int64_t skew_ms;
    kci_hlc hlc;
} sim_node;

/* What a node sent: the edges it made, to be found in the graph. */
typedef struct sent_event {
    char id[KC_UUID_TEXT_BYTES + 1];
    kci_hlc_timestamp ts;
    char cause[KCI_CAUSE_TEXT_BYTES_MAX];
} sent_event;

typedef struct world {
    harness_server server;
    char eventnet_path[HARNESS_PATH_SIZE_MAX + 16];
    natsConnection *connection;
    sim_node nodes[NODE_COUNT];
    sent_event sent[SENT_MAX];
    size_t sent_count;
} world;

enum { NODE_A = 0, NODE_B = 1, NODE_C = 2, NODE_D = 3 };

static int64_t skewed_clock_ms(void *context)
{
    return kci_clock_real_ms(NULL) + ((const sim_node *)context)->skew_ms;
}

static void start_kcobrad(world *w)
{
    char data_path[HARNESS_PATH_SIZE_MAX], config[1024];
    assert_int_equal(harness_server_path(&w->server, "data", data_path, sizeof data_path),
                     HARNESS_OK);
    snprintf(w->eventnet_path, sizeof w->eventnet_path, "%s/eventnet", data_path);
    snprintf(config, sizeof config, "data_dir: \"%s\"\neventnet {\n  enabled: true\n}\n",
             data_path);
    assert_int_equal(harness_server_start(&w->server, config), HARNESS_OK);
    assert_int_equal(natsConnection_ConnectTo(&w->connection, w->server.url), NATS_OK);
}

static int setup(void **state)
{
    world *w = calloc(1, sizeof *w);
    if (w == NULL || harness_server_init(&w->server, server_binary) != HARNESS_OK) return -1;
    const char *names[NODE_COUNT] = {"node-a", "node-b", "node-c", "arbiter-d"};
    const int64_t skews_ms[NODE_COUNT] = {-5000, 0, 3000, 1000};
    for (int index = 0; index < NODE_COUNT; index++) {
        w->nodes[index] = (sim_node){.name = names[index], .skew_ms = skews_ms[index]};
        kci_hlc_init(&w->nodes[index].hlc, skewed_clock_ms, &w->nodes[index], DRIFT_MS_MAX);
    }
    start_kcobrad(w);
    *state = w;
    return 0;
}

static int teardown(void **state)
{
    world *w = *state;
    natsConnection_Destroy(w->connection);
    harness_server_cleanup(&w->server);
    for (int index = 0; index < NODE_COUNT; index++)
        kci_hlc_destroy(&w->nodes[index].hlc);
    free(w);
    return 0;
}

/* Node sends on subject (reply: its reply subject or NULL), caused by cause
 * (or "") and, for a reply, answering reply_to (or ""). Returns the entry. */
static const sent_event *send_event(world *w, int node, const char *subject, const char *reply,
                                    const char *cause, const char *reply_to)
{
    assert_true(w->sent_count < SENT_MAX);
    natsMsg *message = NULL;
    assert_int_equal(natsMsg_Create(&message, subject, reply, "{}", 2), NATS_OK);
    kci_kc_headers headers;
    kci_headers_clear(&headers);
    snprintf(headers.node, sizeof headers.node, "%s", w->nodes[node].name);
    snprintf(headers.cause, sizeof headers.cause, "%s", cause);
    snprintf(headers.reply_to, sizeof headers.reply_to, "%s", reply_to);
    assert_int_equal(kci_headers_stamp_with_hlc(message, &headers, &w->nodes[node].hlc), KC_OK);
    assert_int_equal(natsConnection_PublishMsg(w->connection, message), NATS_OK);
    natsMsg_Destroy(message);
    sent_event *sent = &w->sent[w->sent_count++];
    snprintf(sent->id, sizeof sent->id, "%s", headers.id);
    sent->ts = headers.timestamp;
    snprintf(sent->cause, sizeof sent->cause, "%s", cause);
    if (reply_to[0] != '\0') (void)kci_cause_append(sent->cause, reply_to);
    return sent;
}

/* The next message on subscription, observed by node's clock. */
static natsMsg *receive(world *w, int node, natsSubscription *subscription, kci_kc_headers *headers)
{
    natsMsg *message = NULL;
    assert_int_equal(natsSubscription_NextMsg(&message, subscription, RECEIVE_TIMEOUT_MS), NATS_OK);
    assert_int_equal(kci_headers_read(message, false, headers), KC_OK);
    if (headers->ts[0] != '\0')
        assert_int_equal(kci_headers_observe(&w->nodes[node].hlc, headers, NULL), KC_OK);
    return message;
}

/* Runs kcobra with arguments; its stdout in output, its exit status back. */
static int kcobra_run(const char *arguments, char *output, size_t output_size)
{
    char command[COMMAND_BYTES_MAX];
    snprintf(command, sizeof command, "%s %s 2>&1", kcobra_binary, arguments);
    FILE *pipe = popen(command, "r");
    assert_non_null(pipe);
    size_t length = fread(output, 1, output_size - 1, pipe);
    output[length] = '\0';
    int status = pclose(pipe);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static json_t *check_json(const world *w, int *exit_status)
{
    char arguments[COMMAND_BYTES_MAX];
    snprintf(arguments, sizeof arguments, "eventnet check --json --data-dir %s", w->eventnet_path);
    char *output = malloc(OUTPUT_BYTES_MAX);
    assert_non_null(output);
    *exit_status = kcobra_run(arguments, output, OUTPUT_BYTES_MAX);
    json_t *result = json_loads(output, 0, NULL);
    if (result == NULL) fail_msg("kcobra eventnet check printed no JSON: %s", output);
    free(output);
    return result;
}

/* Waits until every sent event is in the store (the recorder is asynchronous). */
static void wait_recorded(const world *w)
{
    int64_t deadline_ms = harness_now_ms() + RECORD_TIMEOUT_MS;
    for (;;) {
        size_t found = 0;
        kci_eventnet_store *store = NULL;
        if (kci_eventnet_store_open(&store, w->eventnet_path, true, 1) == KC_OK) {
            for (size_t index = 0; index < w->sent_count; index++) {
                kci_uuid id;
                kci_event event;
                assert_true(kci_uuid_parse(w->sent[index].id, KC_UUID_TEXT_BYTES, &id));
                if (kci_eventnet_store_get(store, &id, &event) == KC_OK) found++;
            }
            kci_eventnet_store_close(store);
        }
        if (found == w->sent_count) return;
        if (harness_now_ms() > deadline_ms)
            fail_msg("%zu of %zu events recorded; see %s", found, w->sent_count,
                     w->server.log_path);
        harness_sleep_ms(POLL_MS);
    }
}

/* Every edge the nodes made is in the graph both ways, in HLC order, with
 * the Kc-Ts the sender stamped. */
static void verify_edges(const world *w)
{
    kci_eventnet_store *store = NULL;
    assert_int_equal(kci_eventnet_store_open(&store, w->eventnet_path, true, 1), KC_OK);
    for (size_t index = 0; index < w->sent_count; index++) {
        const sent_event *sent = &w->sent[index];
        kci_uuid id, causes[KCI_CAUSE_IDS_MAX];
        kci_event event;
        assert_true(kci_uuid_parse(sent->id, KC_UUID_TEXT_BYTES, &id));
        assert_int_equal(kci_eventnet_store_get(store, &id, &event), KC_OK);
        assert_int_equal(kci_hlc_compare(&event.ts, &sent->ts), 0);
        size_t cause_count = 0;
        const char *problem = NULL;
        if (sent->cause[0] != '\0')
            assert_true(
                kci_cause_parse(sent->cause, strlen(sent->cause), causes, &cause_count, &problem));
        assert_int_equal(event.cause_count, cause_count);
        for (size_t position = 0; position < cause_count; position++) {
            kci_uuid effects[64];
            size_t effect_count = 0, hits = 0;
            assert_int_equal(kci_eventnet_store_neighbours(store, &causes[position], true, effects,
                                                           64, &effect_count),
                             KC_OK);
            for (size_t k = 0; k < effect_count; k++)
                hits += kci_uuid_compare(&effects[k], &id) == 0;
            assert_int_equal(hits, 1);
            kci_event cause;
            if (kci_eventnet_store_get(store, &causes[position], &cause) == KC_OK)
                assert_true(kci_hlc_compare(&cause.ts, &event.ts) < 0);
        }
    }
    kci_eventnet_store_close(store);
}

static natsSubscription *subscribe(world *w, const char *subject)
{
    natsSubscription *subscription = NULL;
    assert_int_equal(natsConnection_SubscribeSync(&subscription, w->connection, subject), NATS_OK);
    return subscription;
}

/* A request from node to B on kc.req.work and B's reply back to inbox. */
static void request_reply(world *w, int node, natsSubscription *service, const char *inbox,
                          natsSubscription *inbox_subscription, const sent_event **request,
                          const sent_event **reply)
{
    *request = send_event(w, node, "kc.req.work", inbox, "", "");
    kci_kc_headers headers;
    natsMsg *message = receive(w, NODE_B, service, &headers);
    assert_string_equal(headers.id, (*request)->id);
    natsMsg_Destroy(message);
    *reply = send_event(w, NODE_B, inbox, NULL, "", (*request)->id);
    natsMsg_Destroy(receive(w, node, inbox_subscription, &headers));
}

/* A's submit: the persister acknowledges it and dispatches it to B (with
 * the submit's Kc-Id), B answers the dispatch. */
static const sent_event *submit_dispatch(world *w, natsSubscription *service,
                                         natsSubscription *a_inbox, const char *cause)
{
    const sent_event *submit = send_event(w, NODE_A, "kc.submit.work", "_INBOX.a.s", cause, "");
    kci_kc_headers headers;
    natsMsg *message = receive(w, NODE_A, a_inbox, &headers); /* the acknowledgement */
    assert_string_equal(headers.id, submit->id);
    natsMsg_Destroy(message);
    message = receive(w, NODE_B, service, &headers); /* the dispatch */
    assert_string_equal(headers.id, submit->id);
    char reply_subject[256];
    snprintf(reply_subject, sizeof reply_subject, "%s", natsMsg_GetReply(message));
    natsMsg_Destroy(message);
    send_event(w, NODE_B, reply_subject, NULL, "", submit->id);
    return submit;
}

static void graph_check_expect(const world *w, const char *dropped_id)
{
    int exit_status = 0;
    json_t *result = check_json(w, &exit_status);
    assert_int_equal(json_integer_value(json_object_get(result, "order_violations")), 0);
    assert_int_equal(json_integer_value(json_object_get(result, "missing_causes")), 1);
    json_t *problem = json_array_get(json_object_get(result, "problems"), 0);
    assert_string_equal(json_string_value(json_object_get(problem, "problem")), "missing");
    assert_string_equal(json_string_value(json_object_get(problem, "cause")), dropped_id);
    assert_true(json_integer_value(json_object_get(result, "events")) >= (json_int_t)w->sent_count);
    assert_int_equal(exit_status, 1); /* a missing cause is a problem */
    json_decref(result);
}

static void test_skewed_nodes(void **state)
{
    world *w = *state;
    natsSubscription *service = subscribe(w, "kc.req.work");
    natsSubscription *a_inbox = subscribe(w, "_INBOX.a.>");
    natsSubscription *c_inbox = subscribe(w, "_INBOX.c.>");
    natsSubscription *d_sees_c = subscribe(w, "_INBOX.c.>");
    natsSubscription *d_problems = subscribe(w, "kc.problem.>");
    assert_int_equal(natsConnection_Flush(w->connection), NATS_OK);

    const sent_event *r1, *p1, *r2, *p2;
    request_reply(w, NODE_A, service, "_INBOX.a.1", a_inbox, &r1, &p1);
    request_reply(w, NODE_C, service, "_INBOX.c.2", c_inbox, &r2, &p2);
    /* B answered C while B's own wall clock was behind C's stamp: only the
     * HLC puts the reply after the request. */
    assert_true(kci_clock_real_ms(NULL) < r2->ts.wall_ms);
    assert_true(kci_hlc_compare(&r2->ts, &p2->ts) < 0);
    kci_kc_headers headers;
    natsMsg_Destroy(receive(w, NODE_D, d_sees_c, &headers)); /* D sees the reply to C */
    submit_dispatch(w, service, a_inbox, p1->id);
    const sent_event *report = send_event(w, NODE_C, "kc.problem.node-b", NULL, r2->id, "");
    natsMsg_Destroy(receive(w, NODE_D, d_problems, &headers));
    char evidence[KCI_CAUSE_TEXT_BYTES_MAX];
    snprintf(evidence, sizeof evidence, "%s,%s", report->id, p2->id);
    const sent_event *verdict = send_event(w, NODE_D, "kc.arbiter.verdict", NULL, evidence, "");
    char dropped[KC_UUID_TEXT_BYTES + 1];
    kci_uuid_v7_text(dropped); /* a cause never sent */
    send_event(w, NODE_A, "kc.test.orphan", NULL, dropped, "");

    wait_recorded(w);
    verify_edges(w);
    graph_check_expect(w, dropped);

    /* the recorder answers a walk over NATS: the verdict back to C's request */
    char arguments[COMMAND_BYTES_MAX], *output = malloc(OUTPUT_BYTES_MAX);
    assert_non_null(output);
    snprintf(arguments, sizeof arguments, "--server %s eventnet causes %s --depth 5 --json",
             w->server.url, verdict->id);
    assert_int_equal(kcobra_run(arguments, output, OUTPUT_BYTES_MAX), 0);
    if (strstr(output, r2->id) == NULL || strstr(output, report->id) == NULL)
        fail_msg("the walk from the verdict misses its causes: %s", output);
    free(output);

    natsSubscription *subscriptions[] = {service, a_inbox, c_inbox, d_sees_c, d_problems};
    for (size_t index = 0; index < 5; index++)
        natsSubscription_Destroy(subscriptions[index]);

    /* kill -9 and restart: the graph is kept, and recording goes on */
    assert_int_equal(harness_server_signal(&w->server, SIGKILL), HARNESS_OK);
    int exit_status = 0;
    harness_server_wait_exit(&w->server, HARNESS_STOP_TIMEOUT_MS, &exit_status);
    natsConnection_Destroy(w->connection);
    w->connection = NULL;
    start_kcobrad(w);
    size_t before_restart = w->sent_count;
    wait_recorded(w); /* at once: everything from before */
    send_event(w, NODE_A, "kc.test.after", NULL, p1->id, "");
    wait_recorded(w);
    assert_int_equal(w->sent_count, before_restart + 1);
    verify_edges(w);
    graph_check_expect(w, dropped);
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: %s SERVER_BINARY KCOBRA\n", argv[0]);
        return 2;
    }
    const char *base = strrchr(argv[1], '/');
    base = base != NULL ? base + 1 : argv[1];
    if (strstr(base, "kcobrad") == NULL) {
        printf("eventnet: %s hosts no recorder; skipped\n", base);
        return EXIT_SKIP;
    }
    server_binary = argv[1];
    kcobra_binary = argv[2];
    if (nats_Open(-1) != NATS_OK) return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_skewed_nodes, setup, teardown),
    };
    int failures = cmocka_run_group_tests_name("eventnet", tests, NULL, NULL);
    nats_Close();
    return failures;
}
