/* quarantine_test.c - the arbiter hosted by kcobrad, end to end (argv[1]
 * is kcobrad; with any other server the program skips, exit 77):
 *
 *  - two services share a queue group; "bad" answers in 120 ms where the
 *    arbiter's bar is 50 ms; the arbiter quarantines it, after which every
 *    request is served by "good" (the broker enforces it); an operator's
 *    kc.arbiter.reinstate brings "bad" back on probation and it serves
 *    again; the verdicts file holds both verdicts;
 *  - kc.sys.quarantine.set from an ordinary client changes nothing;
 *  - a quarantine ends by itself after its time (here 1 s), the node is
 *    reinstated on probation, and, still slow, quarantined again for twice
 *    as long;
 *  - kc.qos.<node> samples count from a pre-trusted sender only: a made-up
 *    stream of bad samples from anyone else changes nothing, the same from
 *    the pre-trusted monitor quarantines the node;
 *  - a report about a request the arbiter never saw is checked against the
 *    persister's log (kc.reply.get; a stand-in persister here): confirmed
 *    when the log says the accused replied with an error, refuted when
 *    someone else replied;
 *  - a quarantine survives a restart of kcobrad (the arbiter replays its
 *    verdicts file and hands the set to the broker again);
 *  - malformed reports, reports about unknown nodes and a flood from one
 *    reporter are counted and dropped, and the arbiter keeps answering;
 *  - kcobra arbiter status, verdicts, tree (text, JSON, DOT) and reinstate
 *    against it (KCOBRA names the binary; skipped without), and exit 4
 *    when no arbiter runs.
 *
 * Timing is coarse: a slow reply of 120 ms against a bar of 50 ms, and
 * every wait bounded by a count or seconds, never asserted. */
#include <jansson.h>
#include <nats/nats.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "fixture.h"
#include "kingcobra/kingcobra.h"

enum {
    EXIT_SKIP = 77,
    SLOW_MS = 120,
    REQUEST_TIMEOUT_MS = 3000,
    DETECT_REQUESTS_MAX = 400,
    AFTER_REQUESTS = 40,
    SERVE_AGAIN_REQUESTS_MAX = 200,
    VERDICT_WAIT_MS = 10000,
    FLOOD_REPORTS = 3000,
    OUTPUT_BYTES_MAX = 256 * 1024,
};

static const char ARBITER_CONFIG[] =
    "arbiter {\n  enabled: true\n  id: \"arb\"\n  tick: \"100ms\"\n  slow: \"50ms\"\n"
    "  target: \"50ms\"\n  qos_samples: 10\n  quarantine: \"1h\"\n  probation: \"1h\"\n}\n";

static void sleep_ms(int duration_ms)
{
    struct timespec pause = {duration_ms / 1000, (duration_ms % 1000) * 1000000L};
    nanosleep(&pause, NULL);
}

static void handler(const kc_request *request, kc_response *response, void *closure)
{
    (void)request;
    if (closure != NULL) sleep_ms(SLOW_MS);
    kc_response_set_payload(response, "ok", 2);
}

typedef struct node {
    kc_client *client;
    kc_service *service;
} node;

static kc_client *open_client(fixture *f, const char *name)
{
    kc_client_options options;
    kc_client_options_init(&options);
    options.servers = f->server.url;
    options.node = name;
    options.name = name; /* the broker knows the node by its connection name */
    kc_client *client = NULL;
    assert_int_equal(kc_client_open(&client, &options), KC_OK);
    return client;
}

static void serve(fixture *f, node *out, const char *name, bool slow)
{
    out->client = open_client(f, name);
    assert_int_equal(
        kc_service_start(&out->service, out->client, "t", handler, slow ? out : NULL, NULL), KC_OK);
}

static void unserve(node *n)
{
    kc_service_stop(n->service);
    kc_client_close(n->client, 2000);
}

/* One request of type t; returns who answered (copied into who). */
static bool ask(kc_client *client, char who[KC_NODE_BYTES_MAX + 1])
{
    kc_reply *reply = NULL;
    kc_err err = kc_client_request(&reply, client, "t", "x", 1, REQUEST_TIMEOUT_MS);
    if (err == KC_OK) snprintf(who, KC_NODE_BYTES_MAX + 1, "%s", kc_reply_node(reply));
    kc_reply_destroy(reply);
    return err == KC_OK;
}

/* The next verdict about name with action, within VERDICT_WAIT_MS. */
static bool verdict_seen(natsSubscription *verdicts, const char *name, const char *action,
                         int wait_ms)
{
    natsMsg *message = NULL;
    while (natsSubscription_NextMsg(&message, verdicts, wait_ms) == NATS_OK) {
        json_t *root =
            json_loadb(natsMsg_GetData(message), (size_t)natsMsg_GetDataLength(message), 0, NULL);
        const char *node_name = json_string_value(json_object_get(root, "node"));
        const char *verdict_action = json_string_value(json_object_get(root, "action"));
        bool match = node_name != NULL && verdict_action != NULL && strcmp(node_name, name) == 0 &&
                     strcmp(verdict_action, action) == 0;
        json_decref(root);
        natsMsg_Destroy(message);
        if (match) return true;
    }
    return false;
}

static int run_kcobra(const char *url, const char *const *arguments, char *output, size_t size);
static double status_number(natsConnection *connection, const char *name, const char *field);

/* Sends requests until the arbiter quarantines "bad"; then every request
 * goes to "good". */
static void quarantine_bad(kc_client *client, natsSubscription *verdicts)
{
    char who[KC_NODE_BYTES_MAX + 1];
    bool quarantined = false;
    for (int i = 0; i < DETECT_REQUESTS_MAX && !quarantined; i++) {
        assert_true(ask(client, who));
        quarantined = verdict_seen(verdicts, "bad", "quarantine", 0);
    }
    if (!quarantined) quarantined = verdict_seen(verdicts, "bad", "quarantine", VERDICT_WAIT_MS);
    assert_true(quarantined);
    sleep_ms(200); /* the broker applies the set right after the verdict */
    for (int i = 0; i < AFTER_REQUESTS; i++) {
        assert_true(ask(client, who));
        assert_string_equal(who, "good");
    }
}

static void test_quarantine_and_reinstate(void **state)
{
    fixture *f = fixture_of(state);
    fixture_start(f, ARBITER_CONFIG);
    natsConnection *watcher = fixture_connect(f);
    natsSubscription *verdicts = fixture_subscribe_flushed(f, watcher, "kc.arbiter.verdict");
    node good, bad;
    serve(f, &good, "good", false);
    serve(f, &bad, "bad", true);
    kc_client *client = open_client(f, "client");
    char who[KC_NODE_BYTES_MAX + 1];
    quarantine_bad(client, verdicts);
    if (getenv("KCOBRA") != NULL) { /* the stanza that would enforce it on nats-server */
        char output[8192];
        const char *const permissions[] = {"arbiter", "permissions", NULL};
        assert_int_equal(run_kcobra(f->server.url, permissions, output, sizeof output), 0);
        assert_non_null(strstr(
            output, "{ user: \"bad\", permissions: { subscribe: { deny: [\"kc.req.>\"] } } }"));
    }
    natsMsg *reply = NULL;
    assert_int_equal(natsConnection_RequestString(&reply, watcher, "kc.arbiter.reinstate",
                                                  "{\"node\":\"bad\"}", REQUEST_TIMEOUT_MS),
                     NATS_OK);
    assert_non_null(strstr(natsMsg_GetData(reply), "\"reinstating\":true"));
    natsMsg_Destroy(reply);
    assert_true(verdict_seen(verdicts, "bad", "reinstate", VERDICT_WAIT_MS));
    sleep_ms(200);
    bool served_again = false;
    for (int i = 0; i < SERVE_AGAIN_REQUESTS_MAX && !served_again; i++)
        served_again = ask(client, who) && strcmp(who, "bad") == 0;
    assert_true(served_again);
    /* Both verdicts are on disk, in kcobrad's data directory. */
    char path[512], line[1 << 16];
    snprintf(path, sizeof path, "%s/data/arbiter-arb.verdicts.jsonl", f->server.directory_path);
    FILE *file = fopen(path, "r");
    assert_non_null(file);
    int lines = 0;
    while (fgets(line, sizeof line, file) != NULL)
        lines += strstr(line, "\"node\":\"bad\"") != NULL;
    fclose(file);
    assert_true(lines >= 2);
    kc_client_close(client, 2000);
    unserve(&bad);
    unserve(&good);
}

/* The arbiter watches kc.req.> but is not a responder (issue 15, finding
 * 1): with it on, a request nobody serves still gets "no responders" at once,
 * and so does one whose only server is quarantined (docs/arbiter.md). Both
 * used to time out, the arbiter's subscription counting as a delivery. */
static void test_no_responders_with_the_arbiter(void **state)
{
    fixture *f = fixture_of(state);
    fixture_start(f, ARBITER_CONFIG);
    natsConnection *watcher = fixture_connect(f);
    natsSubscription *verdicts = fixture_subscribe_flushed(f, watcher, "kc.arbiter.verdict");
    kc_client *client = open_client(f, "client");
    kc_reply *reply = NULL;
    assert_int_equal(kc_client_request(&reply, client, "nobody", "x", 1, REQUEST_TIMEOUT_MS),
                     KC_ERR_NO_RESPONDERS);
    node good, bad;
    serve(f, &good, "good", false);
    serve(f, &bad, "bad", true);
    quarantine_bad(client, verdicts);
    unserve(&good); /* "bad", quarantined, is the only one left */
    assert_int_equal(kc_client_request(&reply, client, "t", "x", 1, REQUEST_TIMEOUT_MS),
                     KC_ERR_NO_RESPONDERS);
    kc_client_close(client, 2000);
    unserve(&bad);
}

static void refusing_handler(const kc_request *request, kc_response *response, void *closure)
{
    (void)request, (void)closure;
    kc_response_set_error(response, 402, "payment required");
}

/* A refusal the requester caused (402 unpaid) is a correct answer (issue 15,
 * finding 2): sixty of them from one client do not quarantine the honest
 * service, whose QoS stays whole; the client is the one they show up on.
 * They used to count as failures and got the service quarantined, "slow". */
static void test_refusals_do_not_condemn(void **state)
{
    fixture *f = fixture_of(state);
    fixture_start(f, ARBITER_CONFIG);
    natsConnection *watcher = fixture_connect(f);
    natsSubscription *verdicts = fixture_subscribe_flushed(f, watcher, "kc.arbiter.verdict");
    kc_client *translate = open_client(f, "translate");
    kc_service *service = NULL;
    assert_int_equal(
        kc_service_start(&service, translate, "translate", refusing_handler, NULL, NULL), KC_OK);
    kc_client *attacker = open_client(f, "attacker");
    enum { REFUSALS = 60 };
    for (int i = 0; i < REFUSALS; i++) {
        kc_reply *reply = NULL;
        assert_int_equal(
            kc_client_request(&reply, attacker, "translate", "x", 1, REQUEST_TIMEOUT_MS),
            KC_ERR_SERVICE);
        kc_reply_destroy(reply);
    }
    assert_false(verdict_seen(verdicts, "translate", "quarantine", 1500)); /* 15 ticks */
    assert_true(status_number(watcher, "translate", "qos") > 0.9);
    assert_true(status_number(watcher, "attacker", "refusals_provoked") >= REFUSALS / 2);
    kc_client_close(attacker, 2000);
    kc_service_stop(service);
    kc_client_close(translate, 2000);
}

/* A quarantine of 1 s ends by itself (reinstatement on probation); still
 * slow, the node is quarantined again, for twice as long. */
static void test_quarantine_expires_and_doubles(void **state)
{
    fixture *f = fixture_of(state);
    static const char config[] =
        "arbiter {\n  enabled: true\n  id: \"arb\"\n  tick: \"100ms\"\n  slow: \"50ms\"\n"
        "  target: \"50ms\"\n  qos_samples: 10\n  quarantine: \"1s\"\n  probation: \"1h\"\n}\n";
    fixture_start(f, config);
    natsConnection *watcher = fixture_connect(f);
    natsSubscription *verdicts = fixture_subscribe_flushed(f, watcher, "kc.arbiter.verdict");
    node good, bad;
    serve(f, &good, "good", false);
    serve(f, &bad, "bad", true);
    kc_client *client = open_client(f, "client");
    quarantine_bad(client, verdicts);
    assert_true(verdict_seen(verdicts, "bad", "reinstate", VERDICT_WAIT_MS));
    char who[KC_NODE_BYTES_MAX + 1];
    bool again = false;
    for (int i = 0; i < DETECT_REQUESTS_MAX && !again; i++) {
        assert_true(ask(client, who));
        again = verdict_seen(verdicts, "bad", "quarantine", 0);
    }
    assert_true(again || verdict_seen(verdicts, "bad", "quarantine", VERDICT_WAIT_MS));
    /* The file: quarantine 1 s, reinstate, quarantine 2 s (epochs 1, 2, 3). */
    char path[512], line[1 << 16];
    snprintf(path, sizeof path, "%s/data/arbiter-arb.verdicts.jsonl", f->server.directory_path);
    FILE *file = fopen(path, "r");
    assert_non_null(file);
    json_int_t lengths[3] = {-1, -1, -1};
    int count = 0;
    while (count < 3 && fgets(line, sizeof line, file) != NULL) {
        json_t *verdict = json_loads(line, 0, NULL);
        assert_int_equal(json_integer_value(json_object_get(verdict, "epoch")), count + 1);
        lengths[count++] = json_integer_value(json_object_get(verdict, "quarantine_ms"));
        json_decref(verdict);
    }
    fclose(file);
    assert_int_equal(lengths[0], 1000);
    assert_int_equal(lengths[1], 0);
    assert_int_equal(lengths[2], 2000);
    kc_client_close(client, 2000);
    unserve(&bad);
    unserve(&good);
}

static void test_quarantine_survives_restart(void **state)
{
    fixture *f = fixture_of(state);
    fixture_start(f, ARBITER_CONFIG);
    natsConnection *watcher = fixture_connect(f);
    natsSubscription *verdicts = fixture_subscribe_flushed(f, watcher, "kc.arbiter.verdict");
    node good, bad;
    serve(f, &good, "good", false);
    serve(f, &bad, "bad", true);
    kc_client *client = open_client(f, "client");
    quarantine_bad(client, verdicts);
    assert_int_equal(harness_server_stop(&f->server), HARNESS_OK);
    assert_int_equal(harness_server_start(&f->server, ARBITER_CONFIG), HARNESS_OK);
    /* The clients reconnect by themselves (nats.c); requests until then fail. */
    char who[KC_NODE_BYTES_MAX + 1];
    int answered = 0;
    for (int i = 0; i < DETECT_REQUESTS_MAX && answered < AFTER_REQUESTS; i++) {
        if (!ask(client, who)) {
            sleep_ms(100);
            continue;
        }
        answered++;
        assert_string_equal(who, "good");
    }
    assert_int_equal(answered, AFTER_REQUESTS);
    kc_client_close(client, 2000);
    unserve(&bad);
    unserve(&good);
}

/* Runs KCOBRA with arguments; its stdout into output; returns its exit
 * status (-1 if it could not run). */
static int run_kcobra(const char *url, const char *const *arguments, char *output, size_t size)
{
    return harness_run(getenv("KCOBRA"), url, arguments, output, size);
}

static void test_cli(void **state)
{
    if (getenv("KCOBRA") == NULL) skip();
    fixture *f = fixture_of(state);
    fixture_start(f, ARBITER_CONFIG);
    node good;
    serve(f, &good, "good", false);
    kc_client *client = open_client(f, "client");
    char who[KC_NODE_BYTES_MAX + 1];
    for (int i = 0; i < 5; i++)
        assert_true(ask(client, who));
    sleep_ms(500); /* a few ticks: ranked, in the tree */
    char *output = malloc(OUTPUT_BYTES_MAX);
    assert_non_null(output);
    const char *const status_text[] = {"arbiter", "status", NULL};
    assert_int_equal(run_kcobra(f->server.url, status_text, output, OUTPUT_BYTES_MAX), 0);
    assert_non_null(strstr(output, "good"));
    assert_non_null(strstr(output, "n > 3f holds"));
    const char *const status_json[] = {"arbiter", "status", "--json", NULL};
    assert_int_equal(run_kcobra(f->server.url, status_json, output, OUTPUT_BYTES_MAX), 0);
    json_t *status = json_loads(output, 0, NULL);
    assert_string_equal(json_string_value(json_object_get(status, "arbiter")), "arb");
    json_decref(status);
    const char *const tree_dot[] = {"arbiter", "tree", "--format", "dot", NULL};
    assert_int_equal(run_kcobra(f->server.url, tree_dot, output, OUTPUT_BYTES_MAX), 0);
    assert_non_null(strstr(output, "digraph reporting"));
    assert_non_null(strstr(output, "\"good\""));
    const char *const tree_text[] = {"arbiter", "tree", NULL};
    assert_int_equal(run_kcobra(f->server.url, tree_text, output, OUTPUT_BYTES_MAX), 0);
    assert_non_null(strstr(output, "good  merit"));
    const char *const verdicts[] = {"arbiter", "verdicts", NULL};
    assert_int_equal(run_kcobra(f->server.url, verdicts, output, OUTPUT_BYTES_MAX), 0);
    assert_non_null(strstr(output, "no verdicts yet"));
    const char *const reinstate_good[] = {"arbiter", "reinstate", "good", NULL};
    assert_int_equal(run_kcobra(f->server.url, reinstate_good, output, OUTPUT_BYTES_MAX), 0);
    assert_non_null(strstr(output, "good is active"));
    const char *const reinstate_nobody[] = {"arbiter", "reinstate", "nobody", NULL};
    assert_int_equal(run_kcobra(f->server.url, reinstate_nobody, output, OUTPUT_BYTES_MAX), 5);
    const char *const permissions[] = {"arbiter", "permissions", NULL};
    assert_int_equal(run_kcobra(f->server.url, permissions, output, OUTPUT_BYTES_MAX), 0);
    assert_non_null(strstr(output, "no node is quarantined"));
    const char *const bogus[] = {"arbiter", "bogus", NULL};
    assert_int_equal(run_kcobra(f->server.url, bogus, output, OUTPUT_BYTES_MAX), 2);
    const char *const bad_format[] = {"arbiter", "tree", "--format", "png", NULL};
    assert_int_equal(run_kcobra(f->server.url, bad_format, output, OUTPUT_BYTES_MAX), 2);
    free(output);
    kc_client_close(client, 2000);
    unserve(&good);
}

static void publish_qos(natsConnection *connection, const char *sender, int count)
{
    for (int i = 0; i < count; i++) {
        natsMsg *message = NULL;
        const char sample[] = "{\"latency_ms\":900,\"ok\":false,\"type\":\"t\"}";
        assert_int_equal(natsMsg_Create(&message, "kc.qos.good", NULL, sample, (int)strlen(sample)),
                         NATS_OK);
        natsMsgHeader_Set(message, "Kc-Node", sender);
        assert_int_equal(natsConnection_PublishMsg(connection, message), NATS_OK);
        natsMsg_Destroy(message);
    }
    fixture_flush(connection);
}

static void test_qos_samples_from_pretrusted_only(void **state)
{
    fixture *f = fixture_of(state);
    static const char config[] =
        "arbiter {\n  enabled: true\n  id: \"arb\"\n  tick: \"100ms\"\n  qos_samples: 10\n"
        "  quarantine: \"1h\"\n  pretrusted: [\"monitor\"]\n}\n";
    fixture_start(f, config);
    natsConnection *watcher = fixture_connect(f);
    natsSubscription *verdicts = fixture_subscribe_flushed(f, watcher, "kc.arbiter.verdict");
    node good;
    serve(f, &good, "good", false);
    kc_client *client = open_client(f, "client");
    char who[KC_NODE_BYTES_MAX + 1];
    assert_true(ask(client, who));
    publish_qos(watcher, "liar", 50);
    assert_false(verdict_seen(verdicts, "good", "quarantine", 1000));
    publish_qos(watcher, "monitor", 50);
    assert_true(verdict_seen(verdicts, "good", "quarantine", VERDICT_WAIT_MS));
    kc_client_close(client, 2000);
    unserve(&good);
}

/* A stand-in persister: kc.reply.get <id> answers the recorded reply of
 * two requests (docs/queue.md): LOG_ID_GOOD replied by "good" with an
 * error, LOG_ID_OTHER replied by "other". */
#define LOG_ID_GOOD "0190b6e2-5c1a-7d3e-9f00-000000000001"
#define LOG_ID_OTHER "0190b6e2-5c1a-7d3e-9f00-000000000002"

static void on_reply_get(natsConnection *connection, natsSubscription *subscription,
                         natsMsg *message, void *closure)
{
    (void)subscription, (void)closure;
    const char *id = natsMsg_GetData(message);
    bool good = id != NULL && strcmp(id, LOG_ID_GOOD) == 0;
    natsMsg *answer = NULL;
    if (natsMsg_Create(&answer, natsMsg_GetReply(message), NULL, "boom", 4) == NATS_OK) {
        natsMsgHeader_Set(answer, "Kc-Reply-To", id);
        natsMsgHeader_Set(answer, "Kc-Queue-State", "replied");
        natsMsgHeader_Set(answer, "Kc-Replied-By", good ? "good" : "other");
        natsMsgHeader_Set(answer, "Kc-Error", "500 boom");
        natsConnection_PublishMsg(connection, answer);
        natsMsg_Destroy(answer);
    }
    natsMsg_Destroy(message);
}

/* A number of the arbiter's status entry for name (-1: no such node). */
static double status_number(natsConnection *connection, const char *name, const char *field)
{
    natsMsg *reply = NULL;
    assert_int_equal(natsConnection_RequestString(&reply, connection, "kc.arbiter.status", "",
                                                  REQUEST_TIMEOUT_MS),
                     NATS_OK);
    json_t *status =
        json_loadb(natsMsg_GetData(reply), (size_t)natsMsg_GetDataLength(reply), 0, NULL);
    natsMsg_Destroy(reply);
    double value = -1;
    size_t index;
    json_t *entry;
    json_array_foreach(json_object_get(status, "nodes"), index, entry)
    {
        if (strcmp(json_string_value(json_object_get(entry, "name")), name) == 0)
            value = json_number_value(json_object_get(entry, field));
    }
    json_decref(status);
    return value;
}

static double credibility_of(natsConnection *connection, const char *name)
{
    return status_number(connection, name, "credibility");
}

static void test_reports_checked_against_the_log(void **state)
{
    fixture *f = fixture_of(state);
    fixture_start(f, ARBITER_CONFIG);
    natsConnection *persister = fixture_connect(f);
    natsSubscription *get = NULL;
    assert_int_equal(natsConnection_Subscribe(&get, persister, "kc.reply.get", on_reply_get, NULL),
                     NATS_OK);
    fixture_track_subscription(f, get);
    fixture_flush(persister);
    node good;
    serve(f, &good, "good", false);
    kc_client *client = open_client(f, "client");
    char who[KC_NODE_BYTES_MAX + 1];
    assert_true(ask(client, who));
    kc_client *honest = open_client(f, "honest-reporter");
    kc_client *liar = open_client(f, "lying-reporter");
    assert_int_equal(
        kc_client_report_problem(honest, "good", KC_PROBLEM_ERROR_REPLY, LOG_ID_GOOD, "500"),
        KC_OK);
    assert_int_equal(
        kc_client_report_problem(liar, "good", KC_PROBLEM_ERROR_REPLY, LOG_ID_OTHER, "500"), KC_OK);
    double honest_credibility = 0.5, liar_credibility = 0.5;
    for (int i = 0; i < 50 && (honest_credibility == 0.5 || liar_credibility == 0.5); i++) {
        sleep_ms(100);
        honest_credibility = credibility_of(persister, "honest-reporter");
        liar_credibility = credibility_of(persister, "lying-reporter");
    }
    assert_float_equal(honest_credibility, 2.0 / 3, 1e-9); /* Beta(2, 1) */
    assert_float_equal(liar_credibility, 1.0 / 3, 1e-9);   /* Beta(1, 2) */
    kc_client_close(liar, 2000);
    kc_client_close(honest, 2000);
    kc_client_close(client, 2000);
    unserve(&good);
}

static void test_control_subject_is_internal(void **state)
{
    fixture *f = fixture_of(state);
    fixture_start(f, NULL);
    node good;
    serve(f, &good, "good", false);
    natsConnection *outsider = fixture_connect(f);
    assert_int_equal(
        natsConnection_PublishString(outsider, "kc.sys.quarantine.set", "{\"nodes\":[\"good\"]}"),
        NATS_OK);
    fixture_flush(outsider);
    kc_client *client = open_client(f, "client");
    char who[KC_NODE_BYTES_MAX + 1];
    for (int i = 0; i < 10; i++) {
        assert_true(ask(client, who));
        assert_string_equal(who, "good");
    }
    /* No arbiter in this kcobrad: kcobra arbiter says so, exit 4. */
    char output[4096];
    const char *const status_text[] = {"arbiter", "status", NULL};
    if (getenv("KCOBRA") != NULL)
        assert_int_equal(run_kcobra(f->server.url, status_text, output, sizeof output), 4);
    kc_client_close(client, 2000);
    unserve(&good);
}

static void test_bad_reports(void **state)
{
    fixture *f = fixture_of(state);
    fixture_start(f, ARBITER_CONFIG);
    node good;
    serve(f, &good, "good", false);
    kc_client *client = open_client(f, "client");
    char who[KC_NODE_BYTES_MAX + 1];
    assert_true(ask(client, who)); /* the arbiter knows "good" now */
    natsConnection *raw = fixture_connect(f);
    static const char *const garbage[] = {
        "not json",
        "{}",
        "{\"node\":\"other\",\"reason\":\"slow\",\"reporter\":\"r\"}",
        "{\"node\":\"good\",\"reason\":\"bored\",\"reporter\":\"r\"}",
        "{\"node\":\"good\",\"reason\":\"slow\",\"reporter\":\"r\",\"request_id\":\"nope\"}",
        "{\"node\":\"good\",\"reason\":\"slow\",\"reporter\":\"bad reporter\"}",
    };
    for (size_t i = 0; i < sizeof garbage / sizeof garbage[0]; i++)
        assert_int_equal(natsConnection_PublishString(raw, "kc.problem.good", garbage[i]), NATS_OK);
    natsConnection_Publish(raw, "kc.problem.good", "\xff\x00\x01", 3);
    /* about a node nobody knows */
    assert_int_equal(kc_client_report_problem(client, "ghost", KC_PROBLEM_SLOW, NULL, "who?"),
                     KC_OK);
    /* a flood from one reporter */
    kc_client *flooder = open_client(f, "flooder");
    for (int i = 0; i < FLOOD_REPORTS; i++)
        kc_client_report_problem(flooder, "good", KC_PROBLEM_WRONG_ANSWER, NULL, "flood");
    fixture_flush(raw);
    sleep_ms(500);
    natsMsg *reply = NULL;
    assert_int_equal(
        natsConnection_RequestString(&reply, raw, "kc.arbiter.status", "", REQUEST_TIMEOUT_MS),
        NATS_OK);
    json_t *status =
        json_loadb(natsMsg_GetData(reply), (size_t)natsMsg_GetDataLength(reply), 0, NULL);
    natsMsg_Destroy(reply);
    assert_non_null(status);
    assert_true(json_integer_value(json_object_get(status, "reports_malformed")) >= 6);
    assert_true(json_integer_value(json_object_get(status, "reports_dropped")) > 0);
    json_decref(status);
    assert_true(ask(client, who)); /* still serving, still arbitrated */
    kc_client_close(flooder, 2000);
    kc_client_close(client, 2000);
    unserve(&good);
}

int main(int argc, char **argv)
{
    if (!fixture_parse_arguments(argc, argv)) return 2;
    if (strstr(fixture_server_binary, "kcobrad") == NULL) {
        fprintf(stderr, "quarantine_test: only kcobrad hosts an arbiter; skipping\n");
        return EXIT_SKIP;
    }
    const struct CMUnitTest tests[] = {
        FIXTURE_CASE(test_quarantine_and_reinstate),
        FIXTURE_CASE(test_no_responders_with_the_arbiter),
        FIXTURE_CASE(test_refusals_do_not_condemn),
        FIXTURE_CASE(test_quarantine_expires_and_doubles),
        FIXTURE_CASE(test_quarantine_survives_restart),
        FIXTURE_CASE(test_reports_checked_against_the_log),
        FIXTURE_CASE(test_qos_samples_from_pretrusted_only),
        FIXTURE_CASE(test_cli),
        FIXTURE_CASE(test_control_subject_is_internal),
        FIXTURE_CASE(test_bad_reports),
    };
    return cmocka_run_group_tests(tests, fixture_group_setup, fixture_group_teardown);
}
