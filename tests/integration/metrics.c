/* metrics.c - kcobrad's /metrics end to end (argv[1] is kcobrad; with any
 * other server the program skips, exit 77): kcobrad runs the persister,
 * the ledger, the arbiter and the ingress; the test drives each of them,
 * then fetches /metrics and
 *
 *  - parses it with the strict exposition parser (tests/common/
 *    exposition.c): one HELP and one TYPE per family, counters named
 *    *_total, histogram buckets cumulative with +Inf equal to _count, no
 *    series twice; every family named kcobra_* with a HELP line;
 *  - checks the values against what was done: durable submits and their
 *    replies (and the log's appends and syncs, with a sync histogram that
 *    counts every sync), one transfer applied, a double spend and a forged
 *    signature refused by reason, the write batches and commits, three
 *    signature checks, the arbiter's samples and its quarantine of a slow
 *    node (a verdict, one quarantined node), an ingress line answered and
 *    a malformed one, the broker's connections and messages;
 *  - `kcobra ledger serve --metrics-listen :PORT` (KCOBRA names the binary;
 *    skipped without) serves the same module's output on its own port:
 *    strict, the ledger's figures, none of the broker's; 404 elsewhere.
 *
 * Every wait is bounded (the counters settle within seconds) and no speed
 * is asserted. */
#include <nats/nats.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* clang-format off */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
/* clang-format on */

#include "../common/exposition.h"
#include "harness.h"
#include "kingcobra/kingcobra.h"
#include "ledger/client.h"
#include "traffic.h"

enum {
    EXIT_SKIP = 77,
    SUBMITS = 5,
    REQUEST_TIMEOUT_MS = 5000,
    SETTLE_WAIT_MS = 15000,
    POLL_MS = 100,
    HTTP_TIMEOUT_MS = 5000,
    RESPONSE_BYTES_MAX = 512 * 1024,
    CONFIG_BYTES_MAX = 2048,
    LINE_BYTES_MAX = 1024,
};

static const char *server_binary;
static const char *kcobra_binary; /* KCOBRA: `kcobra ledger serve` alone */
static harness_server server;
static int ingress_port;
static char response[RESPONSE_BYTES_MAX];
static exposition parsed; /* large: static */

/* ---- /metrics ------------------------------------------------------------------ */

/* Fetches and strictly parses /metrics from port into parsed. */
static void scrape_port(int port)
{
    assert_int_equal(harness_http_get(port, "/metrics", response, sizeof response, HTTP_TIMEOUT_MS),
                     HARNESS_OK);
    assert_true(strncmp(response, "HTTP/1.", 7) == 0 && strncmp(response + 8, " 200 ", 5) == 0);
    assert_non_null(strstr(response, "Content-Type: text/plain; version=0.0.4"));
    const char *body = strstr(response, "\r\n\r\n");
    assert_non_null(body);
    body += 4;
    if (!exposition_parse(&parsed, body, strlen(body)))
        fail_msg("/metrics refused by the strict parser: %s", parsed.error);
}

static void scrape(void)
{
    scrape_port(server.monitor_port);
}

static double value_of(const char *series)
{
    double value = 0;
    if (!exposition_value(&parsed, series, &value)) fail_msg("no sample %s in /metrics", series);
    return value;
}

/* Scrapes until series reaches at least target (bounded); its last value. */
static double wait_for(const char *series, double target)
{
    int64_t deadline_ms = harness_now_ms() + SETTLE_WAIT_MS;
    for (;;) {
        scrape();
        double value = value_of(series);
        if (value >= target || harness_now_ms() > deadline_ms) return value;
        harness_sleep_ms(POLL_MS);
    }
}

/* ---- driving each part ------------------------------------------------------------- */

static void drive_persister(kc_client *client)
{
    for (int i = 0; i < SUBMITS; i++) {
        char id[KC_UUID_TEXT_BYTES + 1];
        int code = 0;
        assert_int_equal(kc_client_submit(client, "echo", "job", 3, REQUEST_TIMEOUT_MS, id, &code),
                         KC_OK);
    }
}

static bool arbiter_quarantined(void)
{
    scrape();
    return value_of("kcobra_arbiter_nodes{state=\"quarantined\"}") >= 1;
}

/* One good line and one malformed one on the seed-format port. */
static void drive_ingress(void)
{
    harness_raw *raw = malloc(sizeof *raw);
    assert_non_null(raw);
    char line[LINE_BYTES_MAX];
    assert_int_equal(harness_raw_connect(raw, ingress_port, 0), HARNESS_OK);
    assert_int_equal(harness_raw_send_text(raw, "REQUEST#c1#1#hello\nNONSENSE\n"), HARNESS_OK);
    assert_int_equal(harness_raw_read_line(raw, line, sizeof line, REQUEST_TIMEOUT_MS), HARNESS_OK);
    assert_string_equal(line, "REPLY#c1#1#hello");
    assert_int_equal(harness_raw_read_line(raw, line, sizeof line, REQUEST_TIMEOUT_MS), HARNESS_OK);
    assert_true(strncmp(line, "ERROR#", 6) == 0);
    harness_raw_close(raw);
    free(raw);
}

/* ---- the checks ------------------------------------------------------------------ */

/* Every family is ours and says what it is. */
static void expect_conventions(void)
{
    assert_true(parsed.family_count >= 40);
    for (size_t i = 0; i < parsed.family_count; i++) {
        const exposition_family *family = &parsed.families[i];
        if (strncmp(family->name, "kcobra_", 7) != 0) fail_msg("%s is not kcobra_*", family->name);
        if (!family->has_help || !family->has_type) fail_msg("%s lacks HELP or TYPE", family->name);
        if (!family->has_samples) fail_msg("%s has no samples", family->name);
    }
}

static void expect_persister(void)
{
    assert_int_equal(value_of("kcobra_persister_submitted_total"), SUBMITS);
    assert_int_equal(wait_for("kcobra_persister_replies_total", SUBMITS), SUBMITS);
    assert_int_equal(value_of("kcobra_persister_pending_requests"), 0);
    assert_int_equal(value_of("kcobra_persister_dead_requests"), 0);
    assert_int_equal(value_of("kcobra_persister_submit_failures_total"), 0);
    assert_true(value_of("kcobra_persister_appends_total") >= 2 * SUBMITS); /* requests, replies */
    assert_true(value_of("kcobra_persister_appended_bytes_total") > 0);
    double syncs = value_of("kcobra_persister_syncs_total");
    assert_true(syncs >= 1); /* durability batch: at least one per group commit */
    assert_true(value_of("kcobra_persister_sync_duration_seconds_count") == syncs);
    assert_true(value_of("kcobra_persister_sync_duration_seconds_sum") > 0);
}

static void expect_ledger(void)
{
    assert_int_equal(value_of("kcobra_ledger_transfers_total"), 1);
    assert_int_equal(value_of("kcobra_ledger_refusals_total{reason=\"double_spend\"}"), 1);
    assert_int_equal(value_of("kcobra_ledger_refusals_total{reason=\"bad_signature\"}"), 1);
    assert_int_equal(value_of("kcobra_ledger_refusals_total{reason=\"coin_unknown\"}"), 0);
    /* Three transfers were checked; the forged one never reached the writer. */
    assert_int_equal(value_of("kcobra_ledger_signature_verification_duration_seconds_count"), 3);
    /* The mint and the three transfers went through the writer (the forged
     * one to be skipped), in one to four batches (one each here, as they
     * came one by one). */
    double batches = value_of("kcobra_ledger_batch_requests_count");
    assert_true(batches >= 1 && batches <= 4);
    assert_int_equal(value_of("kcobra_ledger_batch_requests_sum"), 4);
    assert_true(value_of("kcobra_ledger_commit_duration_seconds_count") >= batches);
}

static void expect_arbiter(void)
{
    assert_true(value_of("kcobra_arbiter_samples_total{source=\"observed\"}") >= 10);
    assert_int_equal(value_of("kcobra_arbiter_samples_total{source=\"trusted\"}"), 0);
    /* "bad" at least; another node slowed by a loaded machine may join it,
     * but every quarantine is a verdict, and nothing was reinstated. */
    double verdicts = value_of("kcobra_arbiter_verdicts_total{action=\"quarantine\"}");
    assert_true(verdicts >= 1);
    assert_int_equal(value_of("kcobra_arbiter_verdicts_total{action=\"reinstate\"}"), 0);
    assert_true(value_of("kcobra_arbiter_nodes{state=\"quarantined\"}") == verdicts);
    assert_true(value_of("kcobra_arbiter_nodes{state=\"active\"}") >= 1); /* good at least */
}

static void expect_ingress_and_broker(void)
{
    assert_int_equal(value_of("kcobra_ingress_connections_accepted_total"), 1);
    assert_int_equal(value_of("kcobra_ingress_requests_total"), 1);
    assert_int_equal(value_of("kcobra_ingress_malformed_lines_total"), 1);
    assert_int_equal(value_of("kcobra_ingress_answers_total{result=\"reply\"}"), 1);
    assert_int_equal(value_of("kcobra_ingress_answers_total{result=\"error\"}"), 0);
    assert_int_equal(wait_for("kcobra_ingress_connections", 0), 0);
    assert_true(value_of("kcobra_broker_connections") >= 2); /* the test's clients */
    assert_true(value_of("kcobra_broker_in_messages_total") > 0);
    assert_true(value_of("kcobra_broker_out_messages_total") > 0);
    assert_true(value_of("kcobra_broker_in_bytes_total") > 0);
    assert_true(value_of("kcobra_broker_subscriptions") > 0);
    assert_int_equal(value_of("kcobra_broker_slow_consumers_total"), 0);
}

static void test_metrics_after_traffic(void **state)
{
    (void)state;
    kc_client *requester = traffic_open_client(server.url, "requester");
    kc_client *echo = traffic_open_client(server.url, "echo-node");
    kc_service *echo_service = NULL;
    assert_int_equal(kc_service_start(&echo_service, echo, "echo", traffic_echo, NULL, NULL),
                     KC_OK);
    natsConnection *connection = NULL;
    assert_int_equal(natsConnection_ConnectTo(&connection, server.url), NATS_OK);
    scrape(); /* before any traffic: already whole and strict */
    expect_conventions();
    assert_int_equal(value_of("kcobra_ledger_transfers_total"), 0);

    drive_persister(requester);
    traffic_drive_ledger(connection);
    drive_ingress();
    traffic_drive_arbiter(server.url, requester, arbiter_quarantined);
    scrape();
    expect_conventions();
    expect_persister();
    expect_ledger();
    expect_arbiter();
    expect_ingress_and_broker();

    natsConnection_Destroy(connection);
    kc_service_stop(echo_service);
    kc_client_close(echo, 2000);
    kc_client_close(requester, 2000);
}

/* ---- a part run alone: kcobra ledger serve --metrics-listen ------------------------ */

static pid_t start_ledger_alone(const harness_server *broker, int metrics_port)
{
    char directory[HARNESS_PATH_SIZE_MAX + 16], log_path[HARNESS_PATH_SIZE_MAX + 16];
    char listen[32];
    snprintf(directory, sizeof directory, "%.200s/alone-ledger", broker->directory_path);
    snprintf(log_path, sizeof log_path, "%.200s/alone-ledger.log", broker->directory_path);
    snprintf(listen, sizeof listen, ":%d", metrics_port);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        FILE *log = freopen(log_path, "a", stderr);
        (void)log;
        execl(kcobra_binary, kcobra_binary, "ledger", "serve", "--server", broker->url, "--dir",
              directory, "--metrics-listen", listen, (char *)NULL);
        _exit(127);
    }
    return pid;
}

/* The ledger answers a cheap question (bounded wait). */
static void wait_ledger(natsConnection *connection)
{
    char nobody[65];
    memset(nobody, '0', 64);
    nobody[64] = '\0';
    int64_t deadline_ms = harness_now_ms() + SETTLE_WAIT_MS;
    for (;;) {
        json_t *reply = NULL;
        kci_ledger_refusal refusal;
        kc_err err = kci_ledger_call(&reply, connection, "balance",
                                     json_pack("{s:s}", "wallet", nobody), 1000, &refusal);
        json_decref(reply);
        if (err == KC_OK) return;
        if (harness_now_ms() > deadline_ms) fail_msg("kcobra ledger serve did not come up");
        harness_sleep_ms(POLL_MS);
    }
}

/* The same module's output, on the part's own port: strict, the ledger's
 * families and no broker's; 404 elsewhere, HEAD without a body. */
static void test_part_alone(void **state)
{
    (void)state;
    if (kcobra_binary == NULL) skip();
    harness_server broker;
    assert_int_equal(harness_server_init(&broker, server_binary), HARNESS_OK);
    assert_int_equal(harness_server_start(&broker, "persister { enabled: false }\n"
                                                   "ledger { enabled: false }\n"),
                     HARNESS_OK);
    int metrics_port = 0;
    assert_int_equal(harness_port_pick(&metrics_port), HARNESS_OK);
    pid_t ledger = start_ledger_alone(&broker, metrics_port);
    natsConnection *connection = NULL;
    assert_int_equal(natsConnection_ConnectTo(&connection, broker.url), NATS_OK);
    wait_ledger(connection);
    traffic_drive_ledger(connection);
    scrape_port(metrics_port);
    expect_ledger();
    assert_null(exposition_family_find(&parsed, "kcobra_broker_connections"));
    assert_null(exposition_family_find(&parsed, "kcobra_persister_submitted_total"));
    assert_int_equal(
        harness_http_get(metrics_port, "/varz", response, sizeof response, HTTP_TIMEOUT_MS),
        HARNESS_OK);
    assert_true(strncmp(response, "HTTP/1.0 404 ", 13) == 0);
    natsConnection_Destroy(connection);
    kill(ledger, SIGTERM);
    int status = 0;
    waitpid(ledger, &status, 0);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    harness_server_cleanup(&broker);
}

/* ---- setup ------------------------------------------------------------------------ */

static bool server_is_kcobrad(void)
{
    const char *slash = strrchr(server_binary, '/');
    return strstr(slash != NULL ? slash + 1 : server_binary, "kcobrad") != NULL;
}

static int group_setup(void **state)
{
    (void)state;
    if (harness_server_init(&server, server_binary) != HARNESS_OK) return -1;
    if (harness_port_pick(&ingress_port) != HARNESS_OK) return -1;
    server.monitor_enabled = true;
    char config[CONFIG_BYTES_MAX];
    snprintf(config, sizeof config,
             "persister { dir: \"%s/queue\" }\n"
             "ledger { dir: \"%s/ledger\", mint_open: true }\n"
             "arbiter {\n  enabled: true\n  id: \"arb\"\n  tick: \"100ms\"\n  slow: \"50ms\"\n"
             "  target: \"50ms\"\n  qos_samples: 10\n  quarantine: \"1h\"\n  probation: \"1h\"\n}\n"
             "ingress { enabled: true, listen: \"127.0.0.1:%d\", type: \"echo\" }\n",
             server.directory_path, server.directory_path, ingress_port);
    return harness_server_start(&server, config) == HARNESS_OK ? 0 : -1;
}

static int group_teardown(void **state)
{
    (void)state;
    harness_server_cleanup(&server);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s SERVER_BINARY\n", argv[0]);
        return 2;
    }
    server_binary = argv[1];
    if (!server_is_kcobrad()) return EXIT_SKIP; /* only kcobrad hosts the parts */
    if (sodium_init() < 0) return 1;
    kcobra_binary = getenv("KCOBRA");
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_metrics_after_traffic),
                                       cmocka_unit_test(test_part_alone)};
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
