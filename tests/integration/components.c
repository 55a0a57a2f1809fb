/*
 * Integration cases for kcobrad's built-in components, run against the real
 * daemon (argv[1]; with any other server, such as nats-server, the program
 * skips with exit status 77, since only kcobrad has components).
 *
 * Seed-format ingress: kcobrad is started with the ingress on an ephemeral
 * port (read back from its log line) and request type "echo", served by a
 * libkingcobra service in this process; raw TCP clients then check a good
 * line, pipelined lines answered in order although the first is slower, a
 * '#' in the payload, escaped replies, malformed lines answered ERROR# on a
 * connection that keeps working, service errors, timeouts, no service for
 * the type, and clients that vanish mid-line or before their answer without
 * disturbing others.
 *
 * Suggestion keeper: kc_client_suggest stores, kc.suggest.list lists, the
 * suggestion survives a restart on the same data directory, a torn last
 * line (a write a crash interrupted) is skipped and cut off so later
 * suggestions land on clean lines, and bad requests get Kc-Error replies.
 *
 * Limits: timing is coarse on purpose (a slow request of 300 ms against a
 * fast one; a timeout of 1 s against a 1.5 s handler) so a loaded machine
 * does not fail the cases.
 */
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
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "fixture.h"
#include "kingcobra/kingcobra.h"

enum {
    EXIT_SKIP = 77,
    CONFIG_BYTES_MAX = 2048,
    LINE_BYTES_MAX = 4096,
    LOG_BYTES_MAX = 256 * 1024,
    LOG_WAIT_MS = 5000,
    LOG_POLL_MS = 20,
    KEEPER_WAIT_MS = 5000, /* the keeper subscribes just after the port opens */
    REQUEST_TIMEOUT_MS = 3000,
    INGRESS_TIMEOUT_MS = 1000, /* configured per request */
    SLOW_HANDLER_MS = 300,
    TIMEOUT_HANDLER_MS = 1500,
    ANSWER_WAIT_MS = 5000,
    SUGGEST_TIMEOUT_MS = 3000,
    LIST_TIMEOUT_MS = 3000,
    TEXT_TOO_LONG_BYTES = 64 * 1024 + 1,
};

#define INGRESS_LOG_TEXT "ingress: listening for seed-format lines on 127.0.0.1:"
#define ECHO_TYPE "echo"

static const char *server_binary;

typedef struct world {
    harness_server server;
    size_t log_offset; /* the log's size before the latest start */
    int ingress_port;
    kc_client *client;
    kc_service *service;
} world;

/* ---- the echo service ----------------------------------------------------------- */

/* "sleep:N" sleeps N ms then echoes; "error" answers 400; "multiline"
 * answers bytes that need escaping; anything else is echoed. */
static void echo_handler(const kc_request *request, kc_response *response, void *closure)
{
    (void)closure;
    size_t length = 0;
    const char *payload = kc_request_payload(request, &length);
    char text[LINE_BYTES_MAX];
    snprintf(text, sizeof text, "%.*s", (int)length, payload != NULL ? payload : "");
    if (strncmp(text, "sleep:", 6) == 0) harness_sleep_ms(atoi(text + 6));
    if (strcmp(text, "error") == 0) {
        kc_response_set_error(response, 400, "bad things");
        return;
    }
    if (strcmp(text, "multiline") == 0) {
        kc_response_set_payload(response, "a\nb\\c\r", 6);
        return;
    }
    kc_response_set_payload(response, payload, length);
}

/* ---- kcobrad and its log ---------------------------------------------------------- */

static size_t file_size(const char *path)
{
    FILE *file = fopen(path, "r");
    if (file == NULL) return 0;
    fseek(file, 0, SEEK_END);
    long size = ftell(file);
    fclose(file);
    return size > 0 ? (size_t)size : 0;
}

/* Waits for needle in the log after offset; returns what follows it. */
static const char *wait_for_log(world *w, const char *needle, char *log, size_t log_size)
{
    int64_t deadline_ms = harness_now_ms() + LOG_WAIT_MS;
    while (harness_now_ms() < deadline_ms) {
        FILE *file = fopen(w->server.log_path, "r");
        size_t got = 0;
        if (file != NULL && fseek(file, (long)w->log_offset, SEEK_SET) == 0)
            got = fread(log, 1, log_size - 1, file);
        if (file != NULL) fclose(file);
        log[got] = '\0';
        const char *found = strstr(log, needle);
        if (found != NULL) return found + strlen(needle);
        harness_sleep_ms(LOG_POLL_MS);
    }
    return NULL;
}

/* kcobrad's config: its data directory and the ingress block given, or
 * the ingress of the cases below. */
static void config_text(const world *w, const char *ingress_block, char *config, size_t size)
{
    char data_path[HARNESS_PATH_SIZE_MAX];
    assert_int_equal(harness_server_path(&w->server, "data", data_path, sizeof data_path),
                     HARNESS_OK);
    char ingress[512];
    snprintf(ingress, sizeof ingress,
             "ingress {\n"
             "  enabled: true\n"
             "  listen: \"127.0.0.1:0\"\n"
             "  type: \"" ECHO_TYPE "\"\n"
             "  timeout: \"%dms\"\n"
             "}\n",
             INGRESS_TIMEOUT_MS);
    snprintf(config, size, "data_dir: \"%s\"\n%s", data_path,
             ingress_block != NULL ? ingress_block : ingress);
}

static void start_kcobrad(world *w)
{
    char config[CONFIG_BYTES_MAX];
    config_text(w, NULL, config, sizeof config);
    w->log_offset = file_size(w->server.log_path);
    assert_int_equal(harness_server_start(&w->server, config), HARNESS_OK);
    char *log = malloc(LOG_BYTES_MAX);
    assert_non_null(log);
    const char *port = wait_for_log(w, INGRESS_LOG_TEXT, log, LOG_BYTES_MAX);
    if (port == NULL) fail_msg("kcobrad did not log its ingress port; see %s", w->server.log_path);
    w->ingress_port = atoi(port);
    free(log);
    assert_true(w->ingress_port > 0);
}

static void open_client(world *w)
{
    kc_client_options options;
    kc_client_options_init(&options);
    options.servers = w->server.url;
    options.node = "components-test";
    assert_int_equal(kc_client_open(&w->client, &options), KC_OK);
}

static int world_setup(void **state)
{
    world *w = calloc(1, sizeof *w);
    assert_non_null(w);
    assert_int_equal(harness_server_init(&w->server, server_binary), HARNESS_OK);
    start_kcobrad(w);
    open_client(w);
    assert_int_equal(kc_service_start(&w->service, w->client, ECHO_TYPE, echo_handler, NULL, NULL),
                     KC_OK);
    *state = w;
    return 0;
}

static int world_teardown(void **state)
{
    world *w = *state;
    if (w->service != NULL) kc_service_stop(w->service);
    if (w->client != NULL) kc_client_close(w->client, REQUEST_TIMEOUT_MS);
    harness_server_cleanup(&w->server);
    free(w);
    return 0;
}

/* ---- ingress helpers ---------------------------------------------------------------- */

static void raw_connect(world *w, harness_raw *raw)
{
    harness_raw_init(raw);
    assert_int_equal(harness_raw_connect(raw, w->ingress_port, 0), HARNESS_OK);
}

/* The next line, read without any NATS PING handling (the ingress speaks
 * its own protocol). */
static void expect_line(harness_raw *raw, const char *expected)
{
    char line[LINE_BYTES_MAX];
    harness_status status = harness_raw_read_line(raw, line, sizeof line, ANSWER_WAIT_MS);
    if (status != HARNESS_OK) fail_msg("expected \"%s\", got status %d", expected, (int)status);
    if (strcmp(line, expected) != 0) fail_msg("expected \"%s\", got \"%s\"", expected, line);
}

/* Sends lines; the next line the ingress answers is answer. */
static void expect_answer(harness_raw *raw, const char *lines, const char *answer)
{
    fixture_raw_send(raw, lines);
    expect_line(raw, answer);
}

/* ---- ingress cases -------------------------------------------------------------------- */

static void test_ingress_good_line(void **state)
{
    world *w = *state;
    harness_raw raw;
    raw_connect(w, &raw);
    expect_answer(&raw, "REQUEST#alice#17#hello\n", "REPLY#alice#17#hello");
    expect_answer(&raw, "REQUEST#bob#2024-01-01T00:00:00Z#a#b#c\r\n",
                  "REPLY#bob#2024-01-01T00:00:00Z#a#b#c");
    expect_answer(&raw, "REQUEST#carol#3#\n", "REPLY#carol#3#");
    expect_answer(&raw, "REQUEST#dave#4#multiline\n", "REPLY#dave#4#a\\nb\\\\c\\r");
    harness_raw_close(&raw);
}

/* The first line's request is slower than the second's: the answers still
 * leave in line order. */
static void test_ingress_pipelined_in_order(void **state)
{
    world *w = *state;
    harness_raw raw;
    raw_connect(w, &raw);
    char lines[LINE_BYTES_MAX];
    snprintf(lines, sizeof lines, "REQUEST#c#1#sleep:%d\nREQUEST#c#2#fast\nREQUEST#c#3#also fast\n",
             SLOW_HANDLER_MS);
    fixture_raw_send(&raw, lines);
    char first[LINE_BYTES_MAX];
    snprintf(first, sizeof first, "REPLY#c#1#sleep:%d", SLOW_HANDLER_MS);
    expect_line(&raw, first);
    expect_line(&raw, "REPLY#c#2#fast");
    expect_line(&raw, "REPLY#c#3#also fast");
    harness_raw_close(&raw);
}

static void test_ingress_malformed_lines(void **state)
{
    world *w = *state;
    harness_raw raw;
    raw_connect(w, &raw);
    expect_answer(&raw, "hello there\n", "ERROR#expected REQUEST#<client>#<timestamp>#<payload>");
    expect_answer(&raw, "REQUEST##17#x\r\n", "ERROR#empty client");
    expect_answer(&raw, "REQUEST#alice#17\n", "ERROR#missing #<payload>");
    expect_answer(&raw, "\n", "ERROR#empty line");
    /* Malformed and good lines pipelined: answered in order. */
    fixture_raw_send(&raw, "REQUEST#a b#1#x\nREQUEST#ok#2#still here\n");
    expect_line(&raw, "ERROR#client holds a space or control byte");
    expect_line(&raw, "REPLY#ok#2#still here");
    /* A line over the bound (64 KiB) is refused without being stored. */
    size_t long_size = 70 * 1024;
    char *long_line = malloc(long_size + 2);
    assert_non_null(long_line);
    memset(long_line, 'x', long_size);
    memcpy(long_line, "REQUEST#c#t#", 12);
    memcpy(long_line + long_size, "\n", 2);
    fixture_raw_send(&raw, long_line);
    free(long_line);
    expect_line(&raw, "ERROR#line too long (more than 65536 bytes)");
    expect_answer(&raw, "REQUEST#alice#18#after all that\n", "REPLY#alice#18#after all that");
    harness_raw_close(&raw);
}

static void test_ingress_service_error_and_timeout(void **state)
{
    world *w = *state;
    harness_raw raw;
    raw_connect(w, &raw);
    expect_answer(&raw, "REQUEST#c#1#error\n", "ERROR#400 bad things");
    char line[LINE_BYTES_MAX];
    snprintf(line, sizeof line, "REQUEST#c#2#sleep:%d\n", TIMEOUT_HANDLER_MS);
    expect_answer(&raw, line, "ERROR#timeout");
    harness_raw_close(&raw);
}

static void test_ingress_no_service(void **state)
{
    world *w = *state;
    kc_service_stop(w->service);
    w->service = NULL;
    harness_raw raw;
    raw_connect(w, &raw);
    expect_answer(&raw, "REQUEST#c#1#anyone?\n", "ERROR#no service for type " ECHO_TYPE);
    harness_raw_close(&raw);
}

/* Clients that vanish mid-line, mid-request, or half-close after a line do
 * not disturb another connection. */
static void test_ingress_disconnects(void **state)
{
    world *w = *state;
    harness_raw steady;
    raw_connect(w, &steady);
    expect_answer(&steady, "REQUEST#steady#1#before\n", "REPLY#steady#1#before");

    harness_raw mid_line;
    raw_connect(w, &mid_line);
    fixture_raw_send(&mid_line, "REQUEST#gone#1#hal");
    harness_raw_abort(&mid_line);

    harness_raw mid_request;
    raw_connect(w, &mid_request);
    char line[LINE_BYTES_MAX];
    snprintf(line, sizeof line, "REQUEST#gone#2#sleep:%d\n", SLOW_HANDLER_MS);
    fixture_raw_send(&mid_request, line);
    harness_raw_abort(&mid_request);

    /* Half-close: the line is still answered, then the ingress closes. */
    harness_raw half;
    raw_connect(w, &half);
    fixture_raw_send(&half, "REQUEST#half#1#bye\nREQUEST#half#2#par");
    shutdown(half.fd, SHUT_WR);
    expect_line(&half, "REPLY#half#1#bye");
    expect_line(&half, "ERROR#incomplete line: the input ended without a newline");
    assert_int_equal(harness_raw_expect_closed(&half, ANSWER_WAIT_MS), HARNESS_OK);
    harness_raw_close(&half);

    expect_answer(&steady, "REQUEST#steady#2#after\n", "REPLY#steady#2#after");
    harness_sleep_ms(SLOW_HANDLER_MS * 2); /* the orphaned answer arrives and is dropped */
    expect_answer(&steady, "REQUEST#steady#3#still\n", "REPLY#steady#3#still");
    harness_raw_close(&steady);
}

/* ---- suggestion keeper ------------------------------------------------------------------ */

/* kc_client_suggest, retried while the keeper is not subscribed yet. */
static void suggest(world *w, const char *text)
{
    int64_t deadline_ms = harness_now_ms() + KEEPER_WAIT_MS;
    kc_err err;
    while ((err = kc_client_suggest(w->client, text, SUGGEST_TIMEOUT_MS, NULL)) ==
               KC_ERR_NO_RESPONDERS &&
           harness_now_ms() < deadline_ms)
        harness_sleep_ms(LOG_POLL_MS);
    if (err != KC_OK) fail_msg("suggest \"%s\": %s (%s)", text, kc_strerror(err), kc_last_error());
}

/* A raw request; the reply's payload parsed as JSON, its Kc-Error copied. */
static json_t *raw_request(world *w, const char *subject, const char *payload, char *kc_error,
                           size_t kc_error_size)
{
    natsConnection *connection = NULL;
    assert_int_equal(natsConnection_ConnectTo(&connection, w->server.url), NATS_OK);
    natsMsg *reply = NULL;
    natsStatus status = NATS_NO_RESPONDERS;
    int64_t deadline_ms = harness_now_ms() + KEEPER_WAIT_MS;
    while (status == NATS_NO_RESPONDERS && harness_now_ms() < deadline_ms) {
        status =
            natsConnection_RequestString(&reply, connection, subject, payload, LIST_TIMEOUT_MS);
        if (status == NATS_NO_RESPONDERS) harness_sleep_ms(LOG_POLL_MS);
    }
    assert_int_equal(status, NATS_OK);
    const char *error = NULL;
    if (kc_error != NULL)
        snprintf(kc_error, kc_error_size, "%s",
                 natsMsgHeader_Get(reply, "Kc-Error", &error) == NATS_OK ? error : "");
    json_error_t json_error;
    json_t *root =
        json_loadb(natsMsg_GetData(reply), (size_t)natsMsg_GetDataLength(reply), 0, &json_error);
    natsMsg_Destroy(reply);
    natsConnection_Destroy(connection);
    assert_non_null(root);
    return root;
}

/* The texts of kc.suggest.list, oldest first, joined by '|'. */
static void list_texts(world *w, char *texts, size_t texts_size, json_int_t *total)
{
    json_t *root = raw_request(w, "kc.suggest.list", "", NULL, 0);
    json_t *array = json_object_get(root, "suggestions");
    assert_true(json_is_array(array));
    texts[0] = '\0';
    for (size_t index = 0; index < json_array_size(array); index++) {
        json_t *entry = json_array_get(array, index);
        const char *id = json_string_value(json_object_get(entry, "id"));
        assert_non_null(id);
        assert_int_equal(strlen(id), KC_UUID_TEXT_BYTES);
        assert_non_null(json_string_value(json_object_get(entry, "ts")));
        assert_string_equal(json_string_value(json_object_get(entry, "node")), "components-test");
        size_t used = strlen(texts);
        snprintf(texts + used, texts_size - used, "%s%s", index > 0 ? "|" : "",
                 json_string_value(json_object_get(entry, "text")));
    }
    *total = json_integer_value(json_object_get(root, "total"));
    assert_false(json_is_true(json_object_get(root, "truncated")));
    json_decref(root);
}

/* Stops the service, the client and kcobrad (the data directory stays). */
static void stop_world(world *w)
{
    if (w->service != NULL) kc_service_stop(w->service);
    w->service = NULL;
    assert_int_equal(kc_client_close(w->client, REQUEST_TIMEOUT_MS), KC_OK);
    w->client = NULL;
    assert_int_equal(harness_server_stop(&w->server), HARNESS_OK);
}

static void restart(world *w)
{
    stop_world(w);
    start_kcobrad(w);
    open_client(w);
}

static void test_suggestions_survive_restart(void **state)
{
    world *w = *state;
    char texts[LINE_BYTES_MAX];
    json_int_t total = 0;
    suggest(w, "first");
    suggest(w, "second, with\na newline");
    list_texts(w, texts, sizeof texts, &total);
    assert_string_equal(texts, "first|second, with\na newline");
    assert_int_equal(total, 2);
    restart(w);
    list_texts(w, texts, sizeof texts, &total);
    assert_string_equal(texts, "first|second, with\na newline");
    assert_int_equal(total, 2);
}

static void test_suggestions_torn_line(void **state)
{
    world *w = *state;
    char texts[LINE_BYTES_MAX];
    json_int_t total = 0;
    suggest(w, "kept");
    stop_world(w);
    char path[HARNESS_PATH_SIZE_MAX];
    assert_int_equal(harness_server_path(&w->server, "data/suggestions.jsonl", path, sizeof path),
                     HARNESS_OK);
    FILE *file = fopen(path, "a");
    assert_non_null(file);
    fputs("{\"id\":\"01a1fe32-48d7-709d-9dc0-68d78f0c4446\",\"ts\":\"1.0\",\"node\":\"x\","
          "\"text\":\"torn",
          file);
    fclose(file);
    start_kcobrad(w);
    open_client(w);
    char log[LINE_BYTES_MAX * 4];
    assert_non_null(wait_for_log(w, "ends in a torn line", log, sizeof log));
    list_texts(w, texts, sizeof texts, &total);
    assert_string_equal(texts, "kept");
    assert_int_equal(total, 1);
    suggest(w, "after the tear");
    list_texts(w, texts, sizeof texts, &total);
    assert_string_equal(texts, "kept|after the tear");
    /* Every line of the file is a whole suggestion. */
    file = fopen(path, "r");
    assert_non_null(file);
    char line[LINE_BYTES_MAX];
    int line_count = 0;
    while (fgets(line, sizeof line, file) != NULL) {
        json_error_t json_error;
        json_t *root = json_loads(line, 0, &json_error);
        if (root == NULL) fail_msg("line %d is not JSON: %s", line_count + 1, line);
        json_decref(root);
        line_count++;
    }
    fclose(file);
    assert_int_equal(line_count, 2);
}

static void test_suggest_bad_requests(void **state)
{
    world *w = *state;
    char kc_error[LINE_BYTES_MAX];
    json_t *root = raw_request(w, "kc.suggest", "not json", kc_error, sizeof kc_error);
    assert_false(json_is_true(json_object_get(root, "stored")));
    assert_true(strncmp(kc_error, "400 bad JSON", 12) == 0);
    json_decref(root);
    root = raw_request(w, "kc.suggest", "{\"text\":\"\"}", kc_error, sizeof kc_error);
    assert_string_equal(kc_error, "400 the text is empty");
    json_decref(root);
    root = raw_request(w, "kc.suggest", "{\"node\":\"n\"}", kc_error, sizeof kc_error);
    assert_true(strncmp(kc_error, "400 expected a JSON object", 26) == 0);
    json_decref(root);
    char *big = malloc(TEXT_TOO_LONG_BYTES + 32);
    assert_non_null(big);
    memcpy(big, "{\"text\":\"", 9);
    memset(big + 9, 'x', TEXT_TOO_LONG_BYTES);
    memcpy(big + 9 + TEXT_TOO_LONG_BYTES, "\"}", 3);
    root = raw_request(w, "kc.suggest", big, kc_error, sizeof kc_error);
    free(big);
    assert_true(strncmp(kc_error, "413 ", 4) == 0);
    json_decref(root);
    root = raw_request(w, "kc.suggest.list", "{\"limit\":0}", kc_error, sizeof kc_error);
    assert_true(strncmp(kc_error, "400 ", 4) == 0);
    json_decref(root);
    /* Nothing was stored. */
    root = raw_request(w, "kc.suggest.list", "{\"limit\":5}", NULL, 0);
    assert_int_equal(json_integer_value(json_object_get(root, "total")), 0);
    json_decref(root);
}

/* ---- reload -------------------------------------------------------------------------------- */

/* Writes config as kcobrad's file, sends SIGHUP, and waits for needle in
 * what kcobrad logs after it. */
static void reload_with(world *w, const char *config, const char *needle)
{
    char path[HARNESS_PATH_SIZE_MAX];
    assert_int_equal(
        harness_server_write_file(&w->server, "server.conf", config, path, sizeof path),
        HARNESS_OK);
    assert_string_equal(path, w->server.config_path);
    w->log_offset = file_size(w->server.log_path);
    assert_int_equal(harness_server_signal(&w->server, SIGHUP), HARNESS_OK);
    char *log = malloc(LOG_BYTES_MAX);
    assert_non_null(log);
    if (wait_for_log(w, needle, log, LOG_BYTES_MAX) == NULL)
        fail_msg("no \"%s\" in kcobrad's log after SIGHUP; see %s", needle, w->server.log_path);
    free(log);
}

/* The port a (re)started ingress logged since the last reload. */
static void read_ingress_port(world *w)
{
    char *log = malloc(LOG_BYTES_MAX);
    assert_non_null(log);
    const char *port = wait_for_log(w, INGRESS_LOG_TEXT, log, LOG_BYTES_MAX);
    assert_non_null(port);
    w->ingress_port = atoi(port);
    free(log);
    assert_true(w->ingress_port > 0);
}

/* SIGHUP starts, stops and restarts the parts whose blocks changed, and a
 * bad block keeps everything as it runs. */
static void test_reload_components(void **state)
{
    world *w = *state;
    char config[CONFIG_BYTES_MAX];
    config_text(w, "ingress { enabled: false }\n", config, sizeof config);
    reload_with(w, config, "reload: the ingress stopped");
    harness_raw raw;
    harness_raw_init(&raw);
    assert_int_not_equal(harness_raw_connect(&raw, w->ingress_port, 0), HARNESS_OK);

    config_text(w, NULL, config, sizeof config);
    reload_with(w, config, "reload: the ingress started");
    read_ingress_port(w);
    raw_connect(w, &raw);
    expect_answer(&raw, "REQUEST#alice#1#back\n", "REPLY#alice#1#back");
    harness_raw_close(&raw);

    /* listen alone changes: restarted there */
    int port = 0;
    assert_int_equal(harness_port_pick(&port), HARNESS_OK);
    char block[256];
    snprintf(block, sizeof block,
             "ingress { enabled: true, listen: \"127.0.0.1:%d\", type: \"" ECHO_TYPE
             "\", timeout: \"%dms\" }\n",
             port, INGRESS_TIMEOUT_MS);
    config_text(w, block, config, sizeof config);
    reload_with(w, config, "reload: the ingress restarted with the new settings");
    read_ingress_port(w);
    assert_int_equal(w->ingress_port, port);

    config_text(w, "ingress { enabled: true, listen: \"127.0.0.1:0\", type: \"a.b\" }\n", config,
                sizeof config);
    reload_with(w, config, "reload failed, keeping the running configuration");
    raw_connect(w, &raw);
    expect_answer(&raw, "REQUEST#alice#2#still\n", "REPLY#alice#2#still");
    harness_raw_close(&raw);

    char data_path[HARNESS_PATH_SIZE_MAX], keeper[CONFIG_BYTES_MAX + HARNESS_PATH_SIZE_MAX + 64];
    assert_int_equal(harness_server_path(&w->server, "data", data_path, sizeof data_path),
                     HARNESS_OK);
    config_text(w, NULL, config, sizeof config);
    snprintf(keeper, sizeof keeper, "%ssuggestions { file: \"%s/other.jsonl\" }\n", config,
             data_path);
    reload_with(w, keeper, "reload: the suggestion keeper restarted with the new settings");
}

#define CASE(name) cmocka_unit_test_setup_teardown(name, world_setup, world_teardown)

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s SERVER_BINARY\n", argv[0]);
        return 2;
    }
    const char *base = strrchr(argv[1], '/');
    base = base != NULL ? base + 1 : argv[1];
    if (strstr(base, "kcobrad") == NULL) {
        printf("components: %s has no built-in components; skipped\n", base);
        return EXIT_SKIP;
    }
    server_binary = argv[1];
    const struct CMUnitTest tests[] = {
        CASE(test_ingress_good_line),           CASE(test_ingress_pipelined_in_order),
        CASE(test_ingress_malformed_lines),     CASE(test_ingress_service_error_and_timeout),
        CASE(test_ingress_no_service),          CASE(test_ingress_disconnects),
        CASE(test_suggestions_survive_restart), CASE(test_suggestions_torn_line),
        CASE(test_suggest_bad_requests),        CASE(test_reload_components),
    };
    return cmocka_run_group_tests_name("components", tests, NULL, NULL);
}
