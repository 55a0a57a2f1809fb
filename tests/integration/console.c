/* console.c - the web console on kcobrad's monitoring port, end to end
 * (argv[1] is kcobrad; with another server the program skips, exit 77):
 *
 *  - HTTPS (http_tls with the tls block's certificate): a client that
 *    checks the certificate against the CA gets the console and its JSON;
 *    a plain HTTP request on that port gets no HTTP answer;
 *  - basic auth: with http_user and a bcrypt'd http_password configured,
 *    every path but /healthz answers 401 (with WWW-Authenticate) without
 *    credentials or with a wrong password, and 200 with the right ones;
 *  - the panels' JSON: kcobrad runs the persister, the ledger and the
 *    arbiter; the test submits requests, pays (a mint, a payment, a double
 *    spend, a forgery) and slows a node until the arbiter quarantines it,
 *    then checks /console/api/broker, nodes, queue and ledger against what
 *    it did;
 *  - in a real browser, when CONSOLE_BROWSER names console_browser.js
 *    (console_browser.sh sets it, with playwright-core and Debian's
 *    chromium): the page is loaded, its panels compared with the JSON
 *    endpoints, and screenshots saved (console_browser.js says what).
 *
 * Every wait is bounded; no speed is asserted. */
#include <jansson.h>
#include <nats/nats.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

/* clang-format off */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
/* clang-format on */

#include "harness.h"
#include "kingcobra/kingcobra.h"
#include "traffic.h"

enum {
    EXIT_SKIP = 77,
    SUBMITS = 7,
    SETTLE_WAIT_MS = 20000,
    POLL_MS = 200,
    HTTP_TIMEOUT_MS = 5000,
    RESPONSE_BYTES_MAX = 512 * 1024,
    CONFIG_BYTES_MAX = 2048,
    REQUEST_BYTES_MAX = 512,
    BROWSER_WAIT_MS = 120 * 1000,
};

/* "console-pw" with bcrypt, cost 4 (cheap for a test; the port caches it). */
#define CONSOLE_PASSWORD_HASH "$2b$04$2nYjR87RyDySvFCK2lcUbuAbEs9qZOVt7q/s.IOaRDoSx4JBMa.ju"
#define GOOD_CREDENTIALS "b3BzOmNvbnNvbGUtcHc=" /* base64 of "ops:console-pw" */
#define WRONG_CREDENTIALS "b3BzOndyb25nLXB3"    /* base64 of "ops:wrong-pw" */

static const char *server_binary;
static harness_server server;
static char response[RESPONSE_BYTES_MAX];

/* ---- HTTP ------------------------------------------------------------------------ */

/* GET path with credentials (NULL: none); the status, the response in response. */
static int get_status(int port, const char *path, const char *credentials)
{
    char request[REQUEST_BYTES_MAX];
    snprintf(request, sizeof request, "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\n%s%s%s\r\n", path,
             credentials ? "Authorization: Basic " : "", credentials ? credentials : "",
             credentials ? "\r\n" : "");
    harness_raw *raw = malloc(sizeof *raw);
    assert_non_null(raw);
    assert_int_equal(harness_raw_connect(raw, port, 0), HARNESS_OK);
    assert_int_equal(harness_raw_send_text(raw, request), HARNESS_OK);
    assert_int_equal(
        harness_raw_read_until_closed(raw, response, sizeof response, NULL, HTTP_TIMEOUT_MS),
        HARNESS_OK);
    harness_raw_close(raw);
    free(raw);
    assert_true(strncmp(response, "HTTP/1.1 ", 9) == 0);
    return atoi(response + 9);
}

/* The JSON body of a 200 answer to GET path. */
static json_t *get_json(const char *path)
{
    assert_int_equal(get_status(server.monitor_port, path, NULL), 200);
    const char *body = strstr(response, "\r\n\r\n");
    assert_non_null(body);
    json_error_t error;
    json_t *root = json_loads(body + 4, 0, &error);
    if (root == NULL) fail_msg("%s: not JSON: %s", path, error.text);
    return root;
}

static json_int_t integer_at(const json_t *object, const char *key)
{
    return json_integer_value(json_object_get(object, key));
}

/* ---- basic auth -------------------------------------------------------------------- */

static void test_basic_auth(void **state)
{
    (void)state;
    harness_server guarded;
    assert_int_equal(harness_server_init(&guarded, server_binary), HARNESS_OK);
    guarded.monitor_enabled = true;
    assert_int_equal(harness_server_start(&guarded,
                                          "persister { enabled: false }\n"
                                          "http_user: \"ops\"\n"
                                          "http_password: \"" CONSOLE_PASSWORD_HASH "\"\n"),
                     HARNESS_OK);
    const int port = guarded.monitor_port;
    const char *const paths[] = {"/", "/console/console.js", "/console/api/broker", "/varz",
                                 "/metrics"};
    for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) {
        assert_int_equal(get_status(port, paths[i], NULL), 401);
        assert_non_null(strstr(response, "WWW-Authenticate: Basic realm=\"kcobrad\""));
        assert_int_equal(get_status(port, paths[i], WRONG_CREDENTIALS), 401);
        assert_int_equal(get_status(port, paths[i], GOOD_CREDENTIALS), 200);
    }
    assert_non_null(strstr(response, "kcobra_broker_connections")); /* /metrics, last */
    assert_int_equal(get_status(port, "/", GOOD_CREDENTIALS), 200);
    assert_non_null(strstr(response, "<title>kcobrad console</title>"));
    assert_int_equal(get_status(port, "/healthz", NULL), 200); /* probes stay open */
    harness_server_cleanup(&guarded);
}

/* ---- HTTPS ------------------------------------------------------------------------ */

/* GET path over TLS, the certificate checked against ca; the status. */
static int https_status(const harness_server *target, const char *path)
{
    char ca[HARNESS_PATH_SIZE_MAX];
    assert_int_equal(harness_server_path(target, "ca.pem", ca, sizeof ca), HARNESS_OK);
    int fd = harness_tcp_connect(target->monitor_port, 0);
    assert_true(fd >= 0);
    struct timeval timeout = {.tv_sec = HTTP_TIMEOUT_MS / 1000};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
    SSL_CTX *context = SSL_CTX_new(TLS_client_method());
    assert_non_null(context);
    assert_int_equal(SSL_CTX_load_verify_locations(context, ca, NULL), 1);
    SSL_CTX_set_verify(context, SSL_VERIFY_PEER, NULL);
    SSL *ssl = SSL_new(context);
    SSL_set_fd(ssl, fd);
    SSL_set1_host(ssl, "127.0.0.1");
    if (SSL_connect(ssl) != 1) fail_msg("TLS handshake with the monitoring port failed");
    char request[REQUEST_BYTES_MAX];
    snprintf(request, sizeof request, "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", path);
    assert_true(SSL_write(ssl, request, (int)strlen(request)) > 0);
    size_t len = 0;
    int n;
    while (len < sizeof response - 1 &&
           (n = SSL_read(ssl, response + len, (int)(sizeof response - 1 - len))) > 0)
        len += (size_t)n;
    response[len] = '\0';
    ERR_clear_error();
    SSL_free(ssl);
    SSL_CTX_free(context);
    close(fd);
    assert_true(strncmp(response, "HTTP/1.1 ", 9) == 0);
    return atoi(response + 9);
}

static void test_https(void **state)
{
    (void)state;
    harness_server secure;
    assert_int_equal(harness_server_init(&secure, server_binary), HARNESS_OK);
    assert_int_equal(harness_tls_generate(&secure), HARNESS_OK);
    secure.monitor_enabled = true;
    char config[CONFIG_BYTES_MAX];
    snprintf(config, sizeof config,
             "persister { enabled: false }\nhttp_tls: true\n"
             "tls {\n  cert_file: \"%s/server-cert.pem\"\n  key_file: \"%s/server-key.pem\"\n}\n",
             secure.directory_path, secure.directory_path);
    assert_int_equal(harness_server_start(&secure, config), HARNESS_OK);
    assert_int_equal(https_status(&secure, "/"), 200);
    assert_non_null(strstr(response, "<title>kcobrad console</title>"));
    assert_int_equal(https_status(&secure, "/console/api/broker"), 200);
    assert_non_null(strstr(response, "\"connections\""));
    /* plain HTTP on the HTTPS port: no HTTP answer */
    harness_raw *raw = malloc(sizeof *raw);
    assert_non_null(raw);
    assert_int_equal(harness_raw_connect(raw, secure.monitor_port, 0), HARNESS_OK);
    assert_int_equal(harness_raw_send_text(raw, "GET /varz HTTP/1.0\r\n\r\n"), HARNESS_OK);
    response[0] = '\0';
    harness_raw_read_until_closed(raw, response, sizeof response, NULL, HTTP_TIMEOUT_MS);
    assert_null(strstr(response, "HTTP/1."));
    harness_raw_close(raw);
    free(raw);
    harness_server_cleanup(&secure);
}

/* ---- the panels' JSON --------------------------------------------------------------- */

static natsConnection *asking; /* the test's plain connection */

/* Asked of the arbiter itself: the console's feed lags by its interval. */
static bool arbiter_quarantined(void)
{
    natsMsg *reply = NULL;
    if (natsConnection_RequestString(&reply, asking, "kc.arbiter.status", "", 2000) != NATS_OK)
        return false;
    bool found = strstr(natsMsg_GetData(reply), "\"status\":\"quarantined\"") != NULL;
    natsMsg_Destroy(reply);
    return found;
}

/* Polls path until ready(document) (bounded); the document. The first
 * questions may be answered 503: the gatherer starts when watched. */
static json_t *wait_document(const char *path, bool (*ready)(const json_t *))
{
    int64_t deadline_ms = harness_now_ms() + SETTLE_WAIT_MS;
    while (get_status(server.monitor_port, path, NULL) == 503) {
        if (harness_now_ms() > deadline_ms) fail_msg("%s: still 503", path);
        harness_sleep_ms(POLL_MS);
    }
    for (;;) {
        json_t *document = get_json(path);
        if (ready(document)) return document;
        if (harness_now_ms() > deadline_ms) {
            char *text = json_dumps(document, JSON_COMPACT);
            fail_msg("%s never settled: %s", path, text ? text : "?");
        }
        json_decref(document);
        harness_sleep_ms(POLL_MS);
    }
}

static bool queue_settled(const json_t *queue)
{
    return integer_at(queue, "submitted") >= SUBMITS && integer_at(queue, "replied") >= SUBMITS;
}

static bool ledger_settled(const json_t *ledger)
{
    return integer_at(ledger, "window_transfers") >= 2 && integer_at(ledger, "supply") == 20;
}

static bool nodes_settled(const json_t *nodes)
{
    return integer_at(json_object_get(nodes, "counts"), "quarantined") >= 1 &&
           json_array_size(json_object_get(nodes, "verdicts")) >= 1;
}

static void expect_nodes(void)
{
    json_t *nodes = wait_document("/console/api/nodes", nodes_settled);
    bool bad_quarantined = false;
    const json_t *node;
    size_t i;
    json_array_foreach(json_object_get(nodes, "nodes"), i, node)
    {
        assert_non_null(json_object_get(node, "qos"));
        assert_non_null(json_object_get(node, "merit"));
        assert_non_null(json_object_get(node, "credibility"));
        if (strcmp(json_string_value(json_object_get(node, "name")), "bad") == 0)
            bad_quarantined =
                strcmp(json_string_value(json_object_get(node, "status")), "quarantined") == 0;
    }
    assert_true(bad_quarantined);
    const json_t *verdict = json_array_get(json_object_get(nodes, "verdicts"), 0);
    assert_string_equal(json_string_value(json_object_get(verdict, "action")), "quarantine");
    assert_true(json_array_size(json_object_get(verdict, "votes")) >= 1);
    assert_non_null(json_object_get(verdict, "evidence"));
    assert_non_null(json_object_get(json_object_get(nodes, "tree"), "nodes"));
    json_decref(nodes);
}

/* mint -> alice 20 (an issue of two coins), alice -> bob 10: the largest
 * flow is the issue, alice is the hub of neither (two counterparties). */
static void expect_ledger(void)
{
    json_t *ledger = wait_document("/console/api/ledger", ledger_settled);
    const json_t *largest = json_array_get(json_object_get(ledger, "largest_flows"), 0);
    assert_string_equal(json_string_value(json_object_get(largest, "from")), "mint");
    assert_int_equal(integer_at(largest, "amount"), 20);
    const json_t *asset = json_array_get(json_object_get(ledger, "assets"), 0);
    assert_int_equal(integer_at(asset, "supply"), 20);
    const json_t *graph = json_object_get(ledger, "graph");
    assert_int_equal(json_array_size(json_object_get(graph, "vertices")), 3);
    assert_int_equal(json_array_size(json_object_get(graph, "edges")), 2);
    assert_true(json_real_value(json_object_get(ledger, "transfers_per_s")) > 0);
    json_decref(ledger);
}

static void expect_queue_and_broker(void)
{
    json_t *queue = wait_document("/console/api/queue", queue_settled);
    assert_int_equal(integer_at(queue, "dead"), 0);
    assert_int_equal(integer_at(queue, "pending"), 0);
    json_decref(queue);
    json_t *broker = get_json("/console/api/broker");
    assert_true(integer_at(broker, "connections") >= 2); /* the test's clients */
    assert_true(integer_at(broker, "in_msgs") > 0 && integer_at(broker, "subscriptions") > 0);
    assert_int_equal(integer_at(broker, "slow_consumers"), 0);
    json_decref(broker);
}

/* node console_browser.js URL SHOTS (bounded by the script's own waits). */
static void run_browser(const char *script)
{
    char url[64], shots[HARNESS_PATH_SIZE_MAX];
    snprintf(url, sizeof url, "http://127.0.0.1:%d", server.monitor_port);
    const char *directory = getenv("CONSOLE_SHOTS");
    snprintf(shots, sizeof shots, "%s", directory != NULL ? directory : server.directory_path);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        execlp("node", "node", script, url, shots, (char *)NULL);
        _exit(127);
    }
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        fail_msg("console_browser.js failed (status %d): see its output above", status);
}

static void test_panels(void **state)
{
    (void)state;
    kc_client *requester = traffic_open_client(server.url, "requester");
    kc_client *echo = traffic_open_client(server.url, "echo-node");
    kc_service *echo_service = NULL;
    assert_int_equal(kc_service_start(&echo_service, echo, "echo", traffic_echo, NULL, NULL),
                     KC_OK);
    natsConnection *connection = NULL;
    assert_int_equal(natsConnection_ConnectTo(&connection, server.url), NATS_OK);
    asking = connection;
    for (int i = 0; i < SUBMITS; i++) {
        char id[KC_UUID_TEXT_BYTES + 1];
        int code = 0;
        assert_int_equal(
            kc_client_submit(requester, "echo", "job", 3, TRAFFIC_REQUEST_TIMEOUT_MS, id, &code),
            KC_OK);
    }
    traffic_drive_ledger(connection);
    traffic_drive_arbiter(server.url, requester, arbiter_quarantined);
    expect_nodes();
    expect_ledger();
    expect_queue_and_broker();
    const char *script = getenv("CONSOLE_BROWSER");
    if (script != NULL) run_browser(script); /* while the clients are still connected */
    natsConnection_Destroy(connection);
    kc_service_stop(echo_service);
    kc_client_close(echo, 2000);
    kc_client_close(requester, 2000);
}

/* ---- setup ------------------------------------------------------------------------- */

static bool server_is_kcobrad(void)
{
    const char *slash = strrchr(server_binary, '/');
    return strstr(slash != NULL ? slash + 1 : server_binary, "kcobrad") != NULL;
}

static int group_setup(void **state)
{
    (void)state;
    if (harness_server_init(&server, server_binary) != HARNESS_OK) return -1;
    server.monitor_enabled = true;
    char config[CONFIG_BYTES_MAX];
    snprintf(
        config, sizeof config,
        "persister { dir: \"%s/queue\" }\n"
        "ledger { dir: \"%s/ledger\", mint_open: true }\n"
        "arbiter {\n  enabled: true\n  id: \"arb\"\n  tick: \"100ms\"\n  slow: \"50ms\"\n"
        "  target: \"50ms\"\n  qos_samples: 10\n  quarantine: \"1h\"\n  probation: \"1h\"\n}\n",
        server.directory_path, server.directory_path);
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
    if (!server_is_kcobrad()) return EXIT_SKIP; /* only kcobrad hosts the console */
    if (sodium_init() < 0) return 1;
    /* console_browser.sh runs the panels again, in a browser, and only them. */
    if (getenv("CONSOLE_BROWSER") != NULL) cmocka_set_test_filter("test_panels");
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_https),
                                       cmocka_unit_test(test_basic_auth),
                                       cmocka_unit_test(test_panels)};
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
