/* monitor_test.c - the HTTP monitor through its contract (monitor.h): a real
 * server on ephemeral ports, requests over real sockets, and the event loop
 * pumped by hand in this one thread, so every step is deterministic.
 *
 * The request parser is checked the nats-server way: a request fed one byte
 * per loop turn, and a table of requests that must fail with a given status. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "broker/monitor.h"
#include "broker/server.h"

enum {
    ANSWER_BYTES_MAX = 256 * 1024,
    PUMP_EVENTS_MAX = 64,
    PUMP_TURNS_MAX = 500,      /* x 10 ms: a generous bound for one answer */
    HTTP_CONNECTIONS_MAX = 64, /* http.c's bound, restated */
    STALLED_CONNECTIONS = HTTP_CONNECTIONS_MAX + 36,
    HEAD_TIMEOUT_MS = 2000 + 1,        /* http.c's HTTP_HEAD_TIMEOUT_MS, restated, and past it */
    DEADLINE_PASSED_MS = 60 * 1000,    /* beyond every monitor deadline */
    REQUEST_BYTES_OVER_MAX = 9 * 1024, /* past monitor.c's 8 KiB */
};

typedef struct test_fixture {
    kci_server *server;
    int http_port;
} test_fixture;

static char answer_bytes[ANSWER_BYTES_MAX];

/* One turn of the loop, HTTP sources only (no client connects here). */
static void pump(kci_server *server, int timeout_ms)
{
    struct epoll_event events[PUMP_EVENTS_MAX];
    int count = epoll_wait(server->epoll_fd, events, PUMP_EVENTS_MAX, timeout_ms);
    server->now_ms = kci_monotonic_ms();
    for (int i = 0; i < count; i++) {
        kci_source *source = events[i].data.ptr;
        if (source->kind == KCI_SOURCE_HTTP_LISTENER || source->kind == KCI_SOURCE_HTTP_CONNECTION)
            kci_monitor_on_event(server->monitor, source, events[i].events);
    }
}

static int create_server(test_fixture *fixture, int http_port)
{
    kci_options options;
    kci_options_init_defaults(&options);
    free(options.host);
    options.host = strdup("127.0.0.1");
    options.port = 0;
    options.http_port = http_port;
    char error[256] = "";
    kc_err err = kci_server_create(&fixture->server, &options, error, sizeof error);
    kci_options_free(&options);
    if (err != KC_OK) {
        fprintf(stderr, "kci_server_create: %s\n", error);
        return -1;
    }
    fixture->http_port = kci_monitor_port(fixture->server->monitor);
    return 0;
}

static int setup(void **state)
{
    static test_fixture the_fixture;
    *state = &the_fixture;
    return create_server(&the_fixture, -1);
}

static int teardown(void **state)
{
    test_fixture *fixture = *state;
    kci_server_destroy(fixture->server);
    return 0;
}

static int connect_http(const test_fixture *fixture)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in address = {.sin_family = AF_INET,
                                  .sin_port = htons((uint16_t)fixture->http_port)};
    inet_pton(AF_INET, "127.0.0.1", &address.sin_addr);
    assert_int_equal(connect(fd, (struct sockaddr *)&address, sizeof address), 0);
    return fd;
}

static void send_bytes(int fd, const char *bytes, size_t len)
{
    assert_int_equal(send(fd, bytes, len, MSG_NOSIGNAL), (ssize_t)len);
}

/* Pumps the loop and reads until the server closes; returns the bytes. */
static size_t read_answer(const test_fixture *fixture, int fd)
{
    size_t len = 0;
    for (int turn = 0; turn < PUMP_TURNS_MAX; turn++) {
        pump(fixture->server, 10);
        ssize_t n = recv(fd, answer_bytes + len, sizeof answer_bytes - 1 - len, MSG_DONTWAIT);
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)) break;
        if (n > 0) len += (size_t)n;
    }
    answer_bytes[len] = '\0';
    close(fd);
    return len;
}

static size_t exchange(const test_fixture *fixture, const char *request, size_t len)
{
    int fd = connect_http(fixture);
    send_bytes(fd, request, len);
    return read_answer(fixture, fd);
}

static int status_of(const char *answer)
{
    int status = 0;
    return sscanf(answer, "HTTP/1.1 %d ", &status) == 1 ? status : -1;
}

static const char *body_of(const char *answer)
{
    const char *blank = strstr(answer, "\r\n\r\n");
    assert_non_null(blank);
    return blank + 4;
}

/* Content-Length must count the body exactly (GET answers only). */
static void assert_length_matches(const char *answer)
{
    const char *header = strstr(answer, "Content-Length: ");
    assert_non_null(header);
    assert_true(header < body_of(answer));
    assert_int_equal(strtoul(header + strlen("Content-Length: "), NULL, 10),
                     strlen(body_of(answer)));
}

static json_t *json_body(const char *answer)
{
    json_error_t error;
    json_t *root = json_loads(body_of(answer), 0, &error);
    if (root == NULL) fail_msg("not JSON (%s): %s", error.text, body_of(answer));
    return root;
}

#define GET(fixture, path)                                                                         \
    exchange(fixture, "GET " path " HTTP/1.1\r\nHost: x\r\n\r\n",                                  \
             sizeof("GET " path " HTTP/1.1\r\nHost: x\r\n\r\n") - 1)

/* ---- tests ---------------------------------------------------------------- */

static void test_healthz_is_compact_ok(void **state)
{
    GET(*state, "/healthz");
    assert_int_equal(status_of(answer_bytes), 200);
    assert_non_null(strstr(answer_bytes, "Content-Length: 15\r\n"));
    assert_non_null(strstr(answer_bytes, "Connection: close\r\n"));
    assert_string_equal(body_of(answer_bytes), "{\"status\":\"ok\"}");
    GET(*state, "/varz");
    assert_length_matches(answer_bytes);
    GET(*state, "/metrics");
    assert_length_matches(answer_bytes);
}

static void test_request_one_byte_per_turn(void **state)
{
    const test_fixture *fixture = *state;
    static const char REQUEST[] = "GET /varz HTTP/1.1\r\nHost: x\r\nAccept: */*\r\n\r\n";
    int fd = connect_http(fixture);
    for (size_t i = 0; i < sizeof REQUEST - 1; i++) {
        send_bytes(fd, &REQUEST[i], 1);
        pump(fixture->server, 1);
    }
    read_answer(fixture, fd);
    assert_int_equal(status_of(answer_bytes), 200);
    json_t *varz = json_body(answer_bytes);
    assert_string_equal(json_string_value(json_object_get(varz, "go")), "kcobrad");
    assert_string_equal(json_string_value(json_object_get(varz, "server_id")),
                        fixture->server->server_id);
    assert_int_equal(json_integer_value(json_object_get(varz, "http_port")), fixture->http_port);
    assert_int_equal(json_integer_value(json_object_get(varz, "ping_interval")),
                     (json_int_t)120 * 1000 * 1000 * 1000);
    assert_true(json_integer_value(json_object_get(varz, "mem")) > 0);
    assert_non_null(json_object_get(varz, "uptime"));
    json_decref(varz);
}

static void test_head_has_no_body(void **state)
{
    static const char REQUEST[] = "HEAD /varz HTTP/1.0\r\n\r\n";
    exchange(*state, REQUEST, sizeof REQUEST - 1);
    assert_int_equal(status_of(answer_bytes), 200);
    assert_null(strstr(answer_bytes, "Content-Length: 0\r\n"));
    assert_string_equal(body_of(answer_bytes), "");
}

static void test_bare_newlines_are_accepted(void **state)
{
    static const char REQUEST[] = "\r\nGET /healthz HTTP/1.0\nHost: x\n\n";
    exchange(*state, REQUEST, sizeof REQUEST - 1);
    assert_int_equal(status_of(answer_bytes), 200);
}

typedef struct failing_request {
    const char *bytes;
    size_t len;
    int status;
} failing_request;

#define FAILING(literal, status)                                                                   \
    {                                                                                              \
        literal, sizeof literal - 1, status                                                        \
    }

static const failing_request FAILING_REQUESTS[] = {
    FAILING("POST /varz HTTP/1.1\r\n\r\n", 405),
    FAILING("get /varz HTTP/1.1\r\n\r\n", 405),
    FAILING("DELETE /connz HTTP/1.1\r\n\r\n", 405),
    FAILING("GET /nope HTTP/1.1\r\n\r\n", 404),
    FAILING("GET /varz/ HTTP/1.1\r\n\r\n", 404),
    FAILING("GET  /varz HTTP/1.1\r\n\r\n", 400),
    FAILING("GET /varz HTTP/2.0\r\n\r\n", 505),
    FAILING("GET /varz\r\n\r\n", 400),
    FAILING("GET /varz \r\n\r\n", 400),
    FAILING("GET /varz HTTP/1.1 x\r\n\r\n", 400),
    FAILING("GET /varz FTP/1.1\r\n\r\n", 400),
    FAILING("GET /varz HTTP/1.11\r\n\r\n", 400),
    FAILING("G\x01T /varz HTTP/1.1\r\n\r\n", 400),
    FAILING(" GET /varz HTTP/1.1\r\n\r\n", 400),
    FAILING("GET /va\x7fz HTTP/1.1\r\n\r\n", 400),
    FAILING("GET /varz HTTP/1.1\rX\r\n\r\n", 400),
    FAILING("GET /varz HTTP/1.1\r\nHost: x\rX\r\n\r\n", 400),
    FAILING("GET /varz HTTP/1.1\r\nHost: \0\r\n\r\n", 400),
    FAILING("GET /varz HTTP/1.1\r\n\rX", 400),
    FAILING("ABCDEFGHIJKLMNOPQ /varz HTTP/1.1\r\n\r\n", 400),
    FAILING("GET /connz?sort=bogus HTTP/1.1\r\n\r\n", 400),
    FAILING("GET /connz?limit=abc HTTP/1.1\r\n\r\n", 400),
    FAILING("GET /connz?offset=-1 HTTP/1.1\r\n\r\n", 400),
    FAILING("GET /connz?limit=1234567890123456789 HTTP/1.1\r\n\r\n", 400),
    FAILING("GET /connz?state=closed HTTP/1.1\r\n\r\n", 400),
    FAILING("GET /connz?sort=\xff\xfe HTTP/1.1\r\n\r\n", 400),
};

static void test_requests_that_must_fail(void **state)
{
    for (size_t i = 0; i < sizeof FAILING_REQUESTS / sizeof FAILING_REQUESTS[0]; i++) {
        const failing_request *request = &FAILING_REQUESTS[i];
        exchange(*state, request->bytes, request->len);
        if (status_of(answer_bytes) != request->status)
            fail_msg("request %zu: wanted %d, got: %.80s", i, request->status, answer_bytes);
        if (request->bytes[0] != 'H') assert_length_matches(answer_bytes);
        json_t *error = json_body(answer_bytes);
        assert_non_null(json_string_value(json_object_get(error, "error")));
        json_decref(error);
    }
}

static void test_long_target_is_414(void **state)
{
    static char request[REQUEST_BYTES_OVER_MAX];
    memset(request, 'a', sizeof request);
    memcpy(request, "GET /", 5);
    int fd = connect_http(*state);
    send_bytes(fd, request, sizeof request); /* never finishes the line */
    read_answer(*state, fd);
    assert_int_equal(status_of(answer_bytes), 414);
}

static void test_oversized_headers_are_431(void **state)
{
    static char request[REQUEST_BYTES_OVER_MAX + 64];
    size_t len = (size_t)snprintf(request, sizeof request, "GET /varz HTTP/1.1\r\nX: ");
    memset(request + len, 'b', REQUEST_BYTES_OVER_MAX - len);
    int fd = connect_http(*state);
    send_bytes(fd, request, REQUEST_BYTES_OVER_MAX);
    read_answer(*state, fd);
    assert_int_equal(status_of(answer_bytes), 431);
}

static void test_too_many_header_lines_are_431(void **state)
{
    static char request[4096];
    size_t len = (size_t)snprintf(request, sizeof request, "GET /varz HTTP/1.1\r\n");
    for (int i = 0; i < 200; i++)
        len += (size_t)snprintf(request + len, sizeof request - len, "A:\r\n");
    len += (size_t)snprintf(request + len, sizeof request - len, "\r\n");
    exchange(*state, request, len);
    assert_int_equal(status_of(answer_bytes), 431);
}

static void test_stale_request_is_closed(void **state)
{
    const test_fixture *fixture = *state;
    int fd = connect_http(fixture);
    send_bytes(fd, "GET /va", 7);
    pump(fixture->server, 10);
    pump(fixture->server, 10);
    kci_monitor_housekeeping(fixture->server->monitor, kci_monotonic_ms() + DEADLINE_PASSED_MS);
    char byte;
    assert_int_equal(recv(fd, &byte, 1, 0), 0); /* closed without an answer */
    close(fd);
}

/* More stalled half-requests than there are slots: a complete request
 * still gets its answer, because it takes the slot of the oldest stalled
 * one, which is closed without an answer. */
static void test_stalled_requests_cannot_hold_the_slots(void **state)
{
    const test_fixture *fixture = *state;
    int stalled[STALLED_CONNECTIONS];
    for (int i = 0; i < STALLED_CONNECTIONS; i++) {
        stalled[i] = connect_http(fixture);
        send_bytes(stalled[i], "GET /va", 7);
        pump(fixture->server, 0);
    }
    for (int turn = 0; turn < 10; turn++)
        pump(fixture->server, 10);
    GET(fixture, "/healthz");
    assert_int_equal(status_of(answer_bytes), 200);
    char byte;
    assert_int_equal(recv(stalled[0], &byte, 1, MSG_DONTWAIT), 0); /* the oldest: closed */
    assert_int_equal(recv(stalled[STALLED_CONNECTIONS - 1], &byte, 1, MSG_DONTWAIT), -1);
    assert_true(errno == EAGAIN || errno == EWOULDBLOCK); /* the newest: still waited for */
    for (int i = 0; i < STALLED_CONNECTIONS; i++)
        close(stalled[i]);
    for (int turn = 0; turn < 10; turn++)
        pump(fixture->server, 10); /* they see EOF */
    GET(fixture, "/healthz");
    assert_int_equal(status_of(answer_bytes), 200);
}

/* The request head has HTTP_HEAD_TIMEOUT_MS (2 s): a slow client is closed
 * well before the 5 s it used to have. */
static void test_request_head_timeout(void **state)
{
    const test_fixture *fixture = *state;
    int fd = connect_http(fixture);
    send_bytes(fd, "GET /va", 7);
    pump(fixture->server, 10);
    pump(fixture->server, 10);
    kci_monitor_housekeeping(fixture->server->monitor, kci_monotonic_ms() + HEAD_TIMEOUT_MS);
    char byte; /* closed by the call above: the FIN is there already */
    assert_int_equal(recv(fd, &byte, 1, MSG_DONTWAIT), 0);
    close(fd);
}

static void test_connz_without_clients(void **state)
{
    GET(*state, "/connz?limit=999999&sort=pending&subs=1");
    assert_int_equal(status_of(answer_bytes), 200);
    json_t *connz = json_body(answer_bytes);
    assert_int_equal(json_integer_value(json_object_get(connz, "total")), 0);
    assert_int_equal(json_integer_value(json_object_get(connz, "num_connections")), 0);
    assert_int_equal(json_integer_value(json_object_get(connz, "limit")), 4096); /* capped */
    assert_int_equal(json_array_size(json_object_get(connz, "connections")), 0);
    json_decref(connz);
}

static void test_subsz_and_request_counts(void **state)
{
    GET(*state, "/subsz");
    assert_int_equal(status_of(answer_bytes), 200);
    json_t *subsz = json_body(answer_bytes);
    assert_int_equal(json_integer_value(json_object_get(subsz, "num_subscriptions")), 0);
    assert_non_null(json_object_get(subsz, "cache_hit_rate"));
    json_decref(subsz);
    GET(*state, "/varz");
    json_t *varz = json_body(answer_bytes);
    json_t *counts = json_object_get(varz, "http_req_stats");
    assert_true(json_integer_value(json_object_get(counts, "/subsz")) >= 1);
    json_decref(varz);
}

static void test_metrics_are_prometheus_text(void **state)
{
    GET(*state, "/metrics");
    assert_int_equal(status_of(answer_bytes), 200);
    assert_non_null(strstr(answer_bytes, "Content-Type: text/plain; version=0.0.4"));
    static const char *const NAMES[] = {
        "kcobra_broker_connections",
        "kcobra_broker_connections_accepted_total",
        "kcobra_broker_in_messages_total",
        "kcobra_broker_out_messages_total",
        "kcobra_broker_in_bytes_total",
        "kcobra_broker_out_bytes_total",
        "kcobra_broker_slow_consumers_total",
        "kcobra_broker_subscriptions",
        "kcobra_resident_memory_bytes",
        "kcobra_uptime_seconds",
        "kcobra_broker_connections_rejected_total",
        "kcobra_broker_auth_verifications_total",
        "kcobra_broker_auth_cache_hits_total",
        "kcobra_broker_auth_busy_refusals_total",
        "kcobra_broker_auth_verifications_pending",
    };
    for (size_t i = 0; i < sizeof NAMES / sizeof NAMES[0]; i++) {
        char line[128];
        snprintf(line, sizeof line, "\n# TYPE %s ", NAMES[i]);
        if (strstr(answer_bytes, line) == NULL) fail_msg("no TYPE line for %s", NAMES[i]);
        snprintf(line, sizeof line, "\n%s ", NAMES[i]);
        if (strstr(answer_bytes, line) == NULL) fail_msg("no sample for %s", NAMES[i]);
    }
}

static void test_index_lists_endpoints(void **state)
{
    GET(*state, "/");
    assert_int_equal(status_of(answer_bytes), 200);
    assert_non_null(strstr(body_of(answer_bytes), "/connz"));
}

static void test_port_zero_means_off(void **state)
{
    test_fixture off;
    assert_int_equal(create_server(&off, 0), 0);
    assert_null(off.server->monitor);
    assert_int_equal(kci_monitor_port(off.server->monitor), 0);
    kci_server_destroy(off.server);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_healthz_is_compact_ok),
        cmocka_unit_test(test_request_one_byte_per_turn),
        cmocka_unit_test(test_head_has_no_body),
        cmocka_unit_test(test_bare_newlines_are_accepted),
        cmocka_unit_test(test_requests_that_must_fail),
        cmocka_unit_test(test_long_target_is_414),
        cmocka_unit_test(test_oversized_headers_are_431),
        cmocka_unit_test(test_too_many_header_lines_are_431),
        cmocka_unit_test(test_stale_request_is_closed),
        cmocka_unit_test(test_stalled_requests_cannot_hold_the_slots),
        cmocka_unit_test(test_request_head_timeout),
        cmocka_unit_test(test_connz_without_clients),
        cmocka_unit_test(test_subsz_and_request_counts),
        cmocka_unit_test(test_metrics_are_prometheus_text),
        cmocka_unit_test(test_index_lists_endpoints),
        cmocka_unit_test(test_port_zero_means_off),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
