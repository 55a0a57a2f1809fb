/* http_test.c - the HTTP/1.x request parser (http.h) on its own: a request
 * fed one byte at a time with the state checked after each byte, every
 * split point of a few requests giving the same result as one whole feed, a
 * table of requests that must fail with a given status, and each bound at
 * and one past its limit. The server half of http.c is exercised through
 * real sockets in monitor_test.c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "broker/http.h"

enum {
    /* Room for every request built here: the request limit plus slack. */
    REQUEST_BUILD_BYTES_MAX = KCI_HTTP_REQUEST_BYTES_MAX + 256,
};

typedef struct request_text {
    const char *bytes; /* may hold NUL bytes */
    size_t len;
} request_text;

#define TEXT(literal)                                                                              \
    {                                                                                              \
        literal, sizeof literal - 1                                                                \
    }

static char built[REQUEST_BUILD_BYTES_MAX];

static kci_http_result feed_whole(kci_http_request *request, const char *bytes, size_t len)
{
    kci_http_parse_init(request);
    return kci_http_parse_feed(request, bytes, len);
}

/* Fails the test with the first field that differs. */
static void assert_requests_equal(const kci_http_request *a, const kci_http_request *b,
                                  const char *what)
{
    const struct {
        const char *name;
        long long a, b;
    } fields[] = {
        {"state", a->state, b->state},
        {"position", a->position, b->position},
        {"method_start", a->method_start, b->method_start},
        {"method_len", a->method_len, b->method_len},
        {"target_start", a->target_start, b->target_start},
        {"target_len", a->target_len, b->target_len},
        {"path_len", a->path_len, b->path_len},
        {"query_start", a->query_start, b->query_start},
        {"query_len", a->query_len, b->query_len},
        {"version_start", a->version_start, b->version_start},
        {"version_len", a->version_len, b->version_len},
        {"header_line_count", a->header_line_count, b->header_line_count},
        {"error_status", a->error_status, b->error_status},
    };
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++)
        if (fields[i].a != fields[i].b)
            fail_msg("%s: %s is %lld, wanted %lld", what, fields[i].name, fields[i].b, fields[i].a);
}

static void assert_slice(const char *bytes, uint32_t start, uint32_t len, const char *expected)
{
    if (len != strlen(expected) || memcmp(bytes + start, expected, len) != 0)
        fail_msg("slice \"%.*s\", wanted \"%s\"", (int)len, bytes + start, expected);
}

/* ---- byte at a time ------------------------------------------------------- */

typedef struct byte_step {
    char byte;
    kci_http_parse_state state; /* after the byte */
} byte_step;

/* GET /a?b HTTP/1.1 with one header and a bare '\n' ending the request. */
static const byte_step GET_STEPS[] = {
    {'G', KCI_HTTP_PARSE_METHOD},      {'E', KCI_HTTP_PARSE_METHOD},
    {'T', KCI_HTTP_PARSE_METHOD},      {' ', KCI_HTTP_PARSE_TARGET},
    {'/', KCI_HTTP_PARSE_TARGET},      {'a', KCI_HTTP_PARSE_TARGET},
    {'?', KCI_HTTP_PARSE_TARGET},      {'b', KCI_HTTP_PARSE_TARGET},
    {' ', KCI_HTTP_PARSE_VERSION},     {'H', KCI_HTTP_PARSE_VERSION},
    {'T', KCI_HTTP_PARSE_VERSION},     {'T', KCI_HTTP_PARSE_VERSION},
    {'P', KCI_HTTP_PARSE_VERSION},     {'/', KCI_HTTP_PARSE_VERSION},
    {'1', KCI_HTTP_PARSE_VERSION},     {'.', KCI_HTTP_PARSE_VERSION},
    {'1', KCI_HTTP_PARSE_VERSION},     {'\r', KCI_HTTP_PARSE_REQUEST_LINE_CR},
    {'\n', KCI_HTTP_PARSE_LINE_START}, {'H', KCI_HTTP_PARSE_HEADER},
    {':', KCI_HTTP_PARSE_HEADER},      {' ', KCI_HTTP_PARSE_HEADER},
    {'x', KCI_HTTP_PARSE_HEADER},      {'\r', KCI_HTTP_PARSE_HEADER_CR},
    {'\n', KCI_HTTP_PARSE_LINE_START}, {'\r', KCI_HTTP_PARSE_BLANK_LINE_CR},
    {'\n', KCI_HTTP_PARSE_DONE},
};

/* The buffer grows by one byte per feed, as a socket dribbling the request
 * would fill it; each feed consumes exactly the new byte. */
static void test_state_after_each_byte(void **state)
{
    (void)state;
    enum { STEP_COUNT = sizeof GET_STEPS / sizeof GET_STEPS[0] };
    char bytes[STEP_COUNT];
    for (size_t i = 0; i < STEP_COUNT; i++)
        bytes[i] = GET_STEPS[i].byte;
    kci_http_request request;
    kci_http_parse_init(&request);
    assert_int_equal(request.state, KCI_HTTP_PARSE_METHOD);
    for (size_t i = 0; i < STEP_COUNT; i++) {
        kci_http_result result = kci_http_parse_feed(&request, bytes, i + 1);
        if (request.state != GET_STEPS[i].state)
            fail_msg("byte %zu ('%c'): state %d, wanted %d", i, GET_STEPS[i].byte, request.state,
                     GET_STEPS[i].state);
        assert_int_equal(request.position, i + 1);
        assert_int_equal(result, i + 1 < STEP_COUNT ? KCI_HTTP_INCOMPLETE : KCI_HTTP_COMPLETE);
    }
    assert_slice(bytes, request.method_start, request.method_len, "GET");
    assert_slice(bytes, request.target_start, request.path_len, "/a");
    assert_slice(bytes, request.query_start, request.query_len, "b");
    assert_int_equal(request.header_line_count, 1);
}

/* Feeding nothing new is not an error and moves nothing. */
static void test_empty_feed_changes_nothing(void **state)
{
    (void)state;
    static const char BYTES[] = "GET";
    kci_http_request request, before;
    kci_http_parse_init(&request);
    assert_int_equal(kci_http_parse_feed(&request, BYTES, 0), KCI_HTTP_INCOMPLETE);
    assert_int_equal(kci_http_parse_feed(&request, BYTES, 2), KCI_HTTP_INCOMPLETE);
    before = request;
    assert_int_equal(kci_http_parse_feed(&request, BYTES, 2), KCI_HTTP_INCOMPLETE);
    assert_requests_equal(&before, &request, "fed again");
}

/* ---- the parts of a request ----------------------------------------------- */

static void test_parts_of_a_request(void **state)
{
    (void)state;
    static const char BYTES[] = "GET /connz?limit=5&sort=cid?x HTTP/1.0\r\nHost: x\r\nA: b\r\n\r\n";
    kci_http_request request;
    assert_int_equal(feed_whole(&request, BYTES, sizeof BYTES - 1), KCI_HTTP_COMPLETE);
    assert_int_equal(request.position, sizeof BYTES - 1);
    assert_slice(BYTES, request.method_start, request.method_len, "GET");
    assert_slice(BYTES, request.target_start, request.target_len, "/connz?limit=5&sort=cid?x");
    assert_slice(BYTES, request.target_start, request.path_len, "/connz");
    assert_slice(BYTES, request.query_start, request.query_len, "limit=5&sort=cid?x");
    assert_slice(BYTES, request.version_start, request.version_len, "HTTP/1.0");
    assert_int_equal(request.header_line_count, 2);
    assert_int_equal(request.error_status, 0);
}

static void test_query_absent_or_empty(void **state)
{
    (void)state;
    static const char NO_QUERY[] = "GET /varz HTTP/1.1\r\n\r\n";
    static const char EMPTY_QUERY[] = "GET /varz? HTTP/1.1\r\n\r\n";
    kci_http_request request;
    assert_int_equal(feed_whole(&request, NO_QUERY, sizeof NO_QUERY - 1), KCI_HTTP_COMPLETE);
    assert_slice(NO_QUERY, request.target_start, request.path_len, "/varz");
    assert_int_equal(request.query_start, request.target_start + request.target_len);
    assert_int_equal(request.query_len, 0);
    assert_int_equal(feed_whole(&request, EMPTY_QUERY, sizeof EMPTY_QUERY - 1), KCI_HTTP_COMPLETE);
    assert_slice(EMPTY_QUERY, request.target_start, request.path_len, "/varz");
    assert_int_equal(request.query_start, request.target_start + request.target_len);
    assert_int_equal(request.query_len, 0);
}

/* Leading blank lines are skipped and bare '\n' ends lines, as most servers
 * accept; HEAD is the other method served. */
static void test_lenient_line_ends(void **state)
{
    (void)state;
    static const char BYTES[] = "\r\n\nHEAD /healthz HTTP/1.0\nHost: x\n\n";
    kci_http_request request;
    assert_int_equal(feed_whole(&request, BYTES, sizeof BYTES - 1), KCI_HTTP_COMPLETE);
    assert_true(kci_http_method_is(&request, BYTES, "HEAD"));
    assert_false(kci_http_method_is(&request, BYTES, "GET"));
    assert_slice(BYTES, request.target_start, request.path_len, "/healthz");
}

/* Bytes after the blank line (a pipelined request, a body) are not read. */
static void test_stops_at_the_blank_line(void **state)
{
    (void)state;
    static const char BYTES[] = "GET / HTTP/1.1\r\n\r\nGET /varz HTTP/1.1\r\n\r\n";
    static const size_t FIRST_LEN = sizeof "GET / HTTP/1.1\r\n\r\n" - 1;
    kci_http_request request, before;
    assert_int_equal(feed_whole(&request, BYTES, sizeof BYTES - 1), KCI_HTTP_COMPLETE);
    assert_int_equal(request.position, FIRST_LEN);
    before = request;
    assert_int_equal(kci_http_parse_feed(&request, BYTES, sizeof BYTES - 1), KCI_HTTP_COMPLETE);
    assert_requests_equal(&before, &request, "fed after the end");
}

/* ---- every split point ---------------------------------------------------- */

static const request_text SPLIT_REQUESTS[] = {
    TEXT("GET /connz?offset=2&limit=9&subs=detail HTTP/1.1\r\nHost: x\r\nAccept: */*\r\n\r\n"),
    TEXT("\r\nHEAD /varz HTTP/1.0\nUser-Agent: curl\n\n"),
    TEXT("POST /varz HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc"),
    TEXT("GET /varz HTTP/2.0\r\n\r\n"),
    TEXT("GET /varz HTTP/1.1\r\nHost: \0\r\n\r\n"),
    TEXT("GET /a b HTTP/1.1\r\n\r\n"),
};

/* One cut: whatever the first read held, the second finishes the same. */
static void test_every_split_point(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof SPLIT_REQUESTS / sizeof SPLIT_REQUESTS[0]; i++) {
        const request_text *text = &SPLIT_REQUESTS[i];
        kci_http_request whole, split;
        kci_http_result whole_result = feed_whole(&whole, text->bytes, text->len);
        for (size_t cut = 0; cut <= text->len; cut++) {
            kci_http_parse_init(&split);
            kci_http_parse_feed(&split, text->bytes, cut);
            kci_http_result result = kci_http_parse_feed(&split, text->bytes, text->len);
            char what[64];
            snprintf(what, sizeof what, "request %zu cut at %zu", i, cut);
            assert_int_equal(result, whole_result);
            assert_requests_equal(&whole, &split, what);
        }
    }
}

static void test_byte_at_a_time_equals_whole(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof SPLIT_REQUESTS / sizeof SPLIT_REQUESTS[0]; i++) {
        const request_text *text = &SPLIT_REQUESTS[i];
        kci_http_request whole, split;
        kci_http_result whole_result = feed_whole(&whole, text->bytes, text->len);
        kci_http_result result = KCI_HTTP_INCOMPLETE;
        kci_http_parse_init(&split);
        for (size_t len = 1; len <= text->len; len++)
            result = kci_http_parse_feed(&split, text->bytes, len);
        assert_int_equal(result, whole_result);
        assert_requests_equal(&whole, &split, "byte at a time");
    }
}

/* ---- requests that must fail ---------------------------------------------- */

typedef struct failing_request {
    request_text text;
    int status;
} failing_request;

#define FAILING(literal, status)                                                                   \
    {                                                                                              \
        TEXT(literal), status                                                                      \
    }

static const failing_request FAILING_REQUESTS[] = {
    FAILING("POST /varz HTTP/1.1\r\n\r\n", 405),
    FAILING("get /varz HTTP/1.1\r\n\r\n", 405),
    FAILING("DELETE /connz HTTP/1.1\r\n\r\n", 405),
    FAILING("GETS /varz HTTP/1.1\r\n\r\n", 405),
    FAILING("HEAD-X / HTTP/1.1\r\n\r\n", 405),
    FAILING("GET  /varz HTTP/1.1\r\n\r\n", 400), /* empty target */
    FAILING("GET /varz HTTP/2.0\r\n\r\n", 505),
    FAILING("GET /varz HTTP/3.0\r\n\r\n", 505),
    FAILING("GET /varz HTTP/0.9\r\n\r\n", 505),
    FAILING("GET /varz HTTP/1.x\r\n\r\n", 505),
    FAILING("GET /varz\r\n\r\n", 400), /* HTTP/0.9 style: no version */
    FAILING("GET /varz \r\n\r\n", 400),
    FAILING("GET /varz HTTP/1.1 x\r\n\r\n", 400),
    FAILING("GET /varz FTP/1.1\r\n\r\n", 400),
    FAILING("GET /varz http/1.1\r\n\r\n", 400),
    FAILING("GET /varz HTTP/1.11\r\n\r\n", 400),
    FAILING("GET /varz HTTP/1.\r\n\r\n", 400),
    FAILING("G\x01T /varz HTTP/1.1\r\n\r\n", 400),
    FAILING("G_T /varz HTTP/1.1\r\n\r\n", 400),
    FAILING(" GET /varz HTTP/1.1\r\n\r\n", 400),
    FAILING("\tGET /varz HTTP/1.1\r\n\r\n", 400),
    FAILING("GET\t/varz HTTP/1.1\r\n\r\n", 400),
    FAILING("GET /va\x7fz HTTP/1.1\r\n\r\n", 400),
    FAILING("GET /va\tz HTTP/1.1\r\n\r\n", 400),
    FAILING("GET /va\0z HTTP/1.1\r\n\r\n", 400),
    FAILING("GET /varz HTTP/1.1\rX\r\n\r\n", 400),
    FAILING("GET /varz HTTP/1.1\r\nHost: x\rX\r\n\r\n", 400),
    FAILING("GET /varz HTTP/1.1\r\nHost: \0\r\n\r\n", 400),
    FAILING("GET /varz HTTP/1.1\r\n\0\r\n\r\n", 400),
    FAILING("GET /varz HTTP/1.1\r\n\rX", 400),
    FAILING("ABCDEFGHIJKLMNOPQ /varz HTTP/1.1\r\n\r\n", 400), /* method of 17 */
    /* A parse error wins over a method that is not served. */
    FAILING("POST /varz HTTP/2.0\r\n\r\n", 505),
    FAILING("POST /varz HTTP/1.1\r\n\rX", 400),
};

static void test_requests_that_must_fail(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof FAILING_REQUESTS / sizeof FAILING_REQUESTS[0]; i++) {
        const failing_request *failing = &FAILING_REQUESTS[i];
        kci_http_request request;
        kci_http_result result = feed_whole(&request, failing->text.bytes, failing->text.len);
        if (result != KCI_HTTP_FAILED || request.error_status != failing->status)
            fail_msg("request %zu (%.40s): result %d status %d, wanted status %d", i,
                     failing->text.bytes, result, request.error_status, failing->status);
        assert_int_equal(request.state, KCI_HTTP_PARSE_FAILED);
        kci_http_request before = request;
        assert_int_equal(kci_http_parse_feed(&request, failing->text.bytes, failing->text.len),
                         KCI_HTTP_FAILED);
        assert_requests_equal(&before, &request, "fed after failing");
    }
}

/* A failed request keeps its method bytes: a refused HEAD is answered
 * without a body. */
static void test_failed_head_is_still_head(void **state)
{
    (void)state;
    static const char BYTES[] = "HEAD /varz HTTP/2.0\r\n\r\n";
    kci_http_request request;
    assert_int_equal(feed_whole(&request, BYTES, sizeof BYTES - 1), KCI_HTTP_FAILED);
    assert_int_equal(request.error_status, 505);
    assert_true(kci_http_method_is(&request, BYTES, "HEAD"));
}

/* ---- limits --------------------------------------------------------------- */

/* "GET /aaa...a HTTP/1.1\r\n\r\n" with a target of target_len bytes. */
static size_t build_target(size_t target_len)
{
    assert_true(target_len + 32 < sizeof built);
    size_t len = (size_t)snprintf(built, sizeof built, "GET /");
    memset(built + len, 'a', target_len - 1);
    len += target_len - 1;
    len += (size_t)snprintf(built + len, sizeof built - len, " HTTP/1.1\r\n\r\n");
    return len;
}

static void test_target_limit(void **state)
{
    (void)state;
    kci_http_request request;
    size_t len = build_target(KCI_HTTP_TARGET_BYTES_MAX);
    assert_int_equal(feed_whole(&request, built, len), KCI_HTTP_COMPLETE);
    assert_int_equal(request.target_len, KCI_HTTP_TARGET_BYTES_MAX);
    len = build_target(KCI_HTTP_TARGET_BYTES_MAX + 1);
    assert_int_equal(feed_whole(&request, built, len), KCI_HTTP_FAILED);
    assert_int_equal(request.error_status, 414);
}

static void test_method_limit(void **state)
{
    (void)state;
    kci_http_request request;
    size_t len = (size_t)snprintf(built, sizeof built, "%.*s / HTTP/1.1\r\n\r\n",
                                  KCI_HTTP_METHOD_BYTES_MAX, "ABCDEFGHIJKLMNOPQRSTUVWXYZ");
    assert_int_equal(feed_whole(&request, built, len), KCI_HTTP_FAILED);
    assert_int_equal(request.error_status, 405); /* parsed whole, then refused */
    assert_int_equal(request.method_len, KCI_HTTP_METHOD_BYTES_MAX);
    len = (size_t)snprintf(built, sizeof built, "%.*s / HTTP/1.1\r\n\r\n",
                           KCI_HTTP_METHOD_BYTES_MAX + 1, "ABCDEFGHIJKLMNOPQRSTUVWXYZ");
    assert_int_equal(feed_whole(&request, built, len), KCI_HTTP_FAILED);
    assert_int_equal(request.error_status, 400);
}

static size_t build_header_lines(size_t line_count)
{
    size_t len = (size_t)snprintf(built, sizeof built, "GET / HTTP/1.1\r\n");
    for (size_t i = 0; i < line_count; i++)
        len += (size_t)snprintf(built + len, sizeof built - len, "A:\r\n");
    len += (size_t)snprintf(built + len, sizeof built - len, "\r\n");
    assert_true(len < sizeof built);
    return len;
}

static void test_header_line_limit(void **state)
{
    (void)state;
    kci_http_request request;
    size_t len = build_header_lines(KCI_HTTP_HEADER_LINES_MAX);
    assert_int_equal(feed_whole(&request, built, len), KCI_HTTP_COMPLETE);
    assert_int_equal(request.header_line_count, KCI_HTTP_HEADER_LINES_MAX);
    len = build_header_lines(KCI_HTTP_HEADER_LINES_MAX + 1);
    assert_int_equal(feed_whole(&request, built, len), KCI_HTTP_FAILED);
    assert_int_equal(request.error_status, 431);
}

/* One header line padded so the request is total_len bytes long. */
static size_t build_request_of(size_t total_len)
{
    static const char LINE[] = "GET / HTTP/1.1\r\nX: ";
    static const char END[] = "\r\n\r\n";
    size_t fixed_len = sizeof LINE - 1 + sizeof END - 1;
    assert_true(total_len > fixed_len && total_len <= sizeof built);
    memcpy(built, LINE, sizeof LINE - 1);
    memset(built + sizeof LINE - 1, 'b', total_len - fixed_len);
    memcpy(built + total_len - (sizeof END - 1), END, sizeof END - 1);
    return total_len;
}

static void test_request_limit(void **state)
{
    (void)state;
    kci_http_request request;
    size_t len = build_request_of(KCI_HTTP_REQUEST_BYTES_MAX);
    assert_int_equal(feed_whole(&request, built, len), KCI_HTTP_COMPLETE);
    assert_int_equal(request.position, KCI_HTTP_REQUEST_BYTES_MAX);
    len = build_request_of(KCI_HTTP_REQUEST_BYTES_MAX + 1);
    assert_int_equal(feed_whole(&request, built, len), KCI_HTTP_FAILED);
    assert_int_equal(request.error_status, 431);
    assert_int_equal(request.position, KCI_HTTP_REQUEST_BYTES_MAX);
}

/* Blank lines before the method are skipped but still count: a flood of
 * them hits the request limit before any target, which is 414. */
static void test_blank_line_flood(void **state)
{
    (void)state;
    kci_http_request request;
    memset(built, '\n', KCI_HTTP_REQUEST_BYTES_MAX);
    kci_http_parse_init(&request);
    assert_int_equal(kci_http_parse_feed(&request, built, KCI_HTTP_REQUEST_BYTES_MAX - 1),
                     KCI_HTTP_INCOMPLETE);
    assert_int_equal(kci_http_parse_feed(&request, built, KCI_HTTP_REQUEST_BYTES_MAX),
                     KCI_HTTP_FAILED);
    assert_int_equal(request.error_status, 414);
}

/* Told that more bytes are there than the limit, the parser still reads
 * only up to the limit: the buffer ends exactly there, so a read past it
 * is an AddressSanitizer report. */
static void test_never_reads_past_the_limit(void **state)
{
    (void)state;
    char *bytes = malloc(KCI_HTTP_REQUEST_BYTES_MAX);
    assert_non_null(bytes);
    memcpy(bytes, "GET / HTTP/1.1\r\nX: ", 19);
    memset(bytes + 19, 'c', KCI_HTTP_REQUEST_BYTES_MAX - 19);
    kci_http_request request;
    kci_http_parse_init(&request);
    assert_int_equal(kci_http_parse_feed(&request, bytes, 2 * KCI_HTTP_REQUEST_BYTES_MAX),
                     KCI_HTTP_FAILED);
    assert_int_equal(request.error_status, 431);
    assert_int_equal(request.position, KCI_HTTP_REQUEST_BYTES_MAX);
    free(bytes);
}

/* ---- status texts --------------------------------------------------------- */

static void test_status_texts(void **state)
{
    (void)state;
    static const int PARSER_STATUSES[] = {400, 405, 414, 431, 505};
    assert_string_equal(kci_http_status_text(200), "OK");
    assert_string_equal(kci_http_status_text(404), "Not Found");
    assert_string_equal(kci_http_status_text(999), "Internal Server Error");
    for (size_t i = 0; i < sizeof PARSER_STATUSES / sizeof PARSER_STATUSES[0]; i++)
        assert_string_not_equal(kci_http_status_text(PARSER_STATUSES[i]), "Internal Server Error");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_state_after_each_byte),
        cmocka_unit_test(test_empty_feed_changes_nothing),
        cmocka_unit_test(test_parts_of_a_request),
        cmocka_unit_test(test_query_absent_or_empty),
        cmocka_unit_test(test_lenient_line_ends),
        cmocka_unit_test(test_stops_at_the_blank_line),
        cmocka_unit_test(test_every_split_point),
        cmocka_unit_test(test_byte_at_a_time_equals_whole),
        cmocka_unit_test(test_requests_that_must_fail),
        cmocka_unit_test(test_failed_head_is_still_head),
        cmocka_unit_test(test_target_limit),
        cmocka_unit_test(test_method_limit),
        cmocka_unit_test(test_header_line_limit),
        cmocka_unit_test(test_request_limit),
        cmocka_unit_test(test_blank_line_flood),
        cmocka_unit_test(test_never_reads_past_the_limit),
        cmocka_unit_test(test_status_texts),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
