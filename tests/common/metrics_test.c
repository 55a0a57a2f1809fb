/* metrics_test.c - src/common/metrics.c: what the writer writes passes the
 * strict exposition parser (tests/common/exposition.c) and says what was
 * counted; escaping of HELP and label values; a histogram's buckets,
 * sum and count; a set registered twice is written once; threads bumping
 * the same metrics lose nothing. And the parser itself: a table of
 * expositions it must refuse, so that "it parses" means something. */
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* clang-format off */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
/* clang-format on */

#include "common/metrics.h"
#include "common/metrics_http.h"
#include "exposition.h"

enum {
    THREADS = 4,
    BUMPS_PER_THREAD = 100000,
};

static const uint64_t TEST_BOUNDS_NS[] = {KCI_NS_PER_MS, 10 * KCI_NS_PER_MS, 100 * KCI_NS_PER_MS};
static const uint64_t SIZE_BOUNDS[] = {1, 8, 64};
static const char *const COLOURS[] = {"red", "green"};

static kci_counter events;
static kci_gauge depth;
static kci_counter by_colour[2];
static kci_histogram latency = KCI_HISTOGRAM_WITH(TEST_BOUNDS_NS);
static kci_histogram sizes[2] = {KCI_HISTOGRAM_WITH(SIZE_BOUNDS), KCI_HISTOGRAM_WITH(SIZE_BOUNDS)};

static const kci_metric TEST_METRICS[] = {
    KCI_COUNTER_METRIC("kcobra_test_events_total", "Events \\ counted\nhere.", &events),
    KCI_GAUGE_METRIC("kcobra_test_depth", "How deep.", &depth),
    {.name = "kcobra_test_colours_total",
     .help = "By colour.",
     .type = KCI_METRIC_COUNTER,
     .label = "colour",
     .label_values = COLOURS,
     .series_count = 2,
     .series.counters = by_colour},
    KCI_HISTOGRAM_METRIC("kcobra_test_latency_seconds", "Latency.", 1e-9, &latency),
    {.name = "kcobra_test_sizes",
     .help = "Sizes by colour.",
     .type = KCI_METRIC_HISTOGRAM,
     .scale = 1.0,
     .label = "colour",
     .label_values = COLOURS,
     .series_count = 2,
     .series.histograms = sizes},
};
static const kci_metric_set TEST_SET = KCI_METRIC_SET(TEST_METRICS);

static exposition parsed; /* large: static */

static char *render(size_t *len)
{
    kci_metrics_text text = {0};
    kci_metrics_write_registered(&text);
    char *bytes = kci_metrics_text_take(&text, len);
    assert_non_null(bytes);
    assert_int_equal(strlen(bytes), *len);
    return bytes;
}

static void parse_ok(const char *bytes, size_t len)
{
    if (!exposition_parse(&parsed, bytes, len)) fail_msg("refused: %s\n%s", parsed.error, bytes);
}

static double value_of(const char *series)
{
    double value = NAN;
    if (!exposition_value(&parsed, series, &value)) fail_msg("no sample %s", series);
    return value;
}

static void test_written_and_parsed(void **state)
{
    kci_counter_add(&events, 3);
    kci_gauge_set(&depth, -7);
    kci_counter_inc(&by_colour[1]);
    kci_histogram_observe(&latency, 500 * KCI_NS_PER_US);  /* le 0.001 */
    kci_histogram_observe(&latency, 1 * KCI_NS_PER_MS);    /* le 0.001: bounds are inclusive */
    kci_histogram_observe(&latency, 50 * KCI_NS_PER_MS);   /* le 0.1 */
    kci_histogram_observe(&latency, 5000 * KCI_NS_PER_MS); /* +Inf */
    kci_histogram_observe(&sizes[0], 64);
    size_t len = 0;
    char *bytes = render(&len);
    parse_ok(bytes, len);
    assert_non_null(strstr(bytes, "# HELP kcobra_test_events_total Events \\\\ counted\\nhere.\n"));
    assert_non_null(strstr(bytes, "kcobra_test_latency_seconds_bucket{le=\"0.001\"} 2\n"));
    assert_true(value_of("kcobra_test_events_total") == 3);
    assert_true(value_of("kcobra_test_depth") == -7);
    assert_true(value_of("kcobra_test_colours_total{colour=\"red\"}") == 0);
    assert_true(value_of("kcobra_test_colours_total{colour=\"green\"}") == 1);
    assert_true(value_of("kcobra_test_latency_seconds_bucket{le=\"0.01\"}") == 2);
    assert_true(value_of("kcobra_test_latency_seconds_bucket{le=\"0.1\"}") == 3);
    assert_true(value_of("kcobra_test_latency_seconds_bucket{le=\"+Inf\"}") == 4);
    assert_true(value_of("kcobra_test_latency_seconds_count") == 4);
    assert_true(fabs(value_of("kcobra_test_latency_seconds_sum") - 5.0515) < 1e-9);
    assert_true(value_of("kcobra_test_sizes_bucket{colour=\"red\",le=\"64\"}") == 1);
    assert_true(value_of("kcobra_test_sizes_bucket{colour=\"red\",le=\"8\"}") == 0);
    assert_true(value_of("kcobra_test_sizes_count{colour=\"green\"}") == 0);
    assert_string_equal(exposition_family_find(&parsed, "kcobra_test_sizes")->type, "histogram");
    free(bytes);
}

static void test_registered_once(void **state)
{
    assert_true(kci_metrics_register(&TEST_SET));
    size_t len = 0;
    char *bytes = render(&len);
    parse_ok(bytes, len); /* a second copy would be refused: a second HELP */
    const char *first = strstr(bytes, "# TYPE kcobra_test_depth gauge\n");
    assert_non_null(first);
    assert_null(strstr(first + 1, "# TYPE kcobra_test_depth gauge\n"));
    free(bytes);
}

static void test_info_labels_escaped(void **state)
{
    kci_metrics_text text = {0};
    const char *const labels[] = {"version", "1.0", "name", "a\"b\\c\nd"};
    kci_metrics_write_info(&text, "kcobra_test_info", "Info.", labels, 2);
    kci_metrics_write_value(&text, "kcobra_test_ratio", "gauge", "A ratio.", 0.25);
    size_t len = 0;
    char *bytes = kci_metrics_text_take(&text, &len);
    assert_non_null(bytes);
    parse_ok(bytes, len);
    assert_non_null(
        strstr(bytes, "kcobra_test_info{version=\"1.0\",name=\"a\\\"b\\\\c\\nd\"} 1\n"));
    assert_true(value_of("kcobra_test_ratio") == 0.25);
    free(bytes);
}

static void *bump(void *argument)
{
    (void)argument;
    for (int i = 0; i < BUMPS_PER_THREAD; i++) {
        kci_counter_inc(&events);
        kci_histogram_observe(&sizes[1], (uint64_t)(i % 100));
    }
    return NULL;
}

static void test_threads_lose_nothing(void **state)
{
    uint64_t before = kci_counter_value(&events);
    pthread_t threads[THREADS];
    for (int i = 0; i < THREADS; i++)
        assert_int_equal(pthread_create(&threads[i], NULL, bump, NULL), 0);
    for (int i = 0; i < THREADS; i++)
        pthread_join(threads[i], NULL);
    assert_int_equal(kci_counter_value(&events) - before, (uint64_t)THREADS * BUMPS_PER_THREAD);
    size_t len = 0;
    char *bytes = render(&len);
    parse_ok(bytes, len);
    assert_true(value_of("kcobra_test_sizes_count{colour=\"green\"}") ==
                THREADS * BUMPS_PER_THREAD);
    /* i % 100 <= 64: 65 of every 100 */
    assert_true(value_of("kcobra_test_sizes_bucket{colour=\"green\",le=\"64\"}") ==
                THREADS * (BUMPS_PER_THREAD / 100) * 65);
    free(bytes);
}

/* ---- the parser refuses ------------------------------------------------------ */

#define HEAD(name, type) "# HELP " name " h\n# TYPE " name " " type "\n"

static const struct {
    const char *why;
    const char *text;
} REFUSED[] = {
    {"no LF at the end", HEAD("a_total", "counter") "a_total 1"},
    {"a blank line", HEAD("a_total", "counter") "\na_total 1\n"},
    {"no TYPE", "a_total 1\n"},
    {"a second TYPE", HEAD("a_total", "counter") "# TYPE a_total counter\na_total 1\n"},
    {"a second HELP", "# HELP a h\n# HELP a h\n# TYPE a gauge\na 1\n"},
    {"a counter without _total", HEAD("a", "counter") "a 1\n"},
    {"a negative counter", HEAD("a_total", "counter") "a_total -1\n"},
    {"an unknown type", "# TYPE a gauges\na 1\n"},
    {"another comment", "# hello\n"},
    {"a bad value", HEAD("a", "gauge") "a 1x\n"},
    {"a bad name", HEAD("a", "gauge") "1a 1\n"},
    {"a bad label escape", HEAD("a", "gauge") "a{b=\"\\x\"} 1\n"},
    {"an unterminated label", HEAD("a", "gauge") "a{b=\"x} 1\n"},
    {"a label twice", HEAD("a", "gauge") "a{b=\"x\",b=\"y\"} 1\n"},
    {"a series twice", HEAD("a", "gauge") "a{b=\"x\"} 1\na{b=\"x\"} 2\n"},
    {"samples apart", HEAD("a", "gauge") "a{b=\"x\"} 1\n" HEAD("c", "gauge") "c 1\na{b=\"y\"} 1\n"},
    {"HELP after samples", HEAD("a", "gauge") "a 1\n# HELP a again\n"},
    {"a bad HELP escape", "# HELP a h\\t\n# TYPE a gauge\na 1\n"},
    {"a bad timestamp", HEAD("a", "gauge") "a 1 12x\n"},
    {"le missing", HEAD("h", "histogram") "h_bucket 1\nh_sum 1\nh_count 1\n"},
    {"le on a gauge", HEAD("a", "gauge") "a{le=\"1\"} 1\n"},
    {"no +Inf", HEAD("h", "histogram") "h_bucket{le=\"1\"} 1\nh_sum 1\nh_count 1\n"},
    {"+Inf not the count",
     HEAD("h", "histogram") "h_bucket{le=\"1\"} 1\nh_bucket{le=\"+Inf\"} 2\nh_sum 1\nh_count 3\n"},
    {"buckets not cumulative",
     HEAD("h", "histogram") "h_bucket{le=\"1\"} 2\nh_bucket{le=\"+Inf\"} 1\nh_sum 1\nh_count 1\n"},
    {"le not increasing", HEAD("h", "histogram") "h_bucket{le=\"2\"} 1\nh_bucket{le=\"1\"} 1\n"
                                                 "h_bucket{le=\"+Inf\"} 1\nh_sum 1\nh_count 1\n"},
    {"no _sum", HEAD("h", "histogram") "h_bucket{le=\"+Inf\"} 1\nh_count 1\n"},
    {"no _count", HEAD("h", "histogram") "h_bucket{le=\"+Inf\"} 1\nh_sum 1\n"},
};

static void test_parser_refuses(void **state)
{
    for (size_t i = 0; i < sizeof REFUSED / sizeof REFUSED[0]; i++)
        if (exposition_parse(&parsed, REFUSED[i].text, strlen(REFUSED[i].text)))
            fail_msg("accepted %s:\n%s", REFUSED[i].why, REFUSED[i].text);
}

static void test_parser_accepts(void **state)
{
    static const char GOOD[] = HEAD(
        "a_total",
        "counter") "a_total 1 1700000000000\n"
                   "# TYPE g gauge\n# HELP g help \\\\ \\n\ng{x=\"1\",y=\"\\\"\",} -Inf\n" HEAD(
                       "h", "histogram") "h_bucket{le=\"0.5\"} 0\nh_bucket{le=\"1e3\"} 1\n"
                                         "h_bucket{le=\"+Inf\"} 1\nh_sum 7.5\nh_count 1\n";
    if (!exposition_parse(&parsed, GOOD, strlen(GOOD))) fail_msg("refused: %s", parsed.error);
    assert_true(isinf(value_of("g{x=\"1\",y=\"\\\"\"}")));
}

/* ---- the --metrics-listen request classifier ---------------------------------- */

static const struct {
    const char *text;
    kci_metrics_request expected;
} REQUESTS[] = {
    {"GET /metrics HTTP/1.1\r\nHost: a\r\n\r\n", KCI_METRICS_REQUEST_GET},
    {"GET /metrics?x=1 HTTP/1.0\n\n", KCI_METRICS_REQUEST_GET},
    {"HEAD /metrics HTTP/1.1\r\n\r\n", KCI_METRICS_REQUEST_HEAD},
    {"GET /varz HTTP/1.1\r\n\r\n", KCI_METRICS_REQUEST_NOT_FOUND},
    {"GET /metrics/ HTTP/1.1\r\n\r\n", KCI_METRICS_REQUEST_NOT_FOUND},
    {"POST /metrics HTTP/1.1\r\n\r\n", KCI_METRICS_REQUEST_METHOD},
    {"GET /metrics\r\n\r\n", KCI_METRICS_REQUEST_BAD},           /* no version */
    {"GET /metrics HTTP/2.0\r\n\r\n", KCI_METRICS_REQUEST_BAD},  /* not 1.x */
    {"GET  /metrics HTTP/1.1\r\n\r\n", KCI_METRICS_REQUEST_BAD}, /* two spaces */
    {"get /metrics HTTP/1.1\r\n\r\n", KCI_METRICS_REQUEST_BAD},  /* lower case */
    {"GET metrics HTTP/1.1\r\n\r\n", KCI_METRICS_REQUEST_BAD},   /* not a path */
    {"\r\n\r\n", KCI_METRICS_REQUEST_BAD},
    {"GET /metrics HTTP/1.1\r\nHost: a\r\n", KCI_METRICS_REQUEST_INCOMPLETE},
    {"", KCI_METRICS_REQUEST_INCOMPLETE},
};

static void test_requests_classified(void **state)
{
    for (size_t i = 0; i < sizeof REQUESTS / sizeof REQUESTS[0]; i++)
        if (kci_metrics_request_classify(REQUESTS[i].text, strlen(REQUESTS[i].text)) !=
            REQUESTS[i].expected)
            fail_msg("'%s' not classified %d", REQUESTS[i].text, REQUESTS[i].expected);
    /* Byte at a time: undecided until the blank line, then decided. */
    const char *get = REQUESTS[0].text;
    for (size_t len = 0; len < strlen(get); len++)
        assert_int_equal(kci_metrics_request_classify(get, len), KCI_METRICS_REQUEST_INCOMPLETE);
    /* No blank line within the bound: refused, not waited for. */
    static char endless[KCI_METRICS_HTTP_REQUEST_BYTES_MAX + 10];
    memset(endless, 'A', sizeof endless);
    assert_int_equal(kci_metrics_request_classify(endless, sizeof endless),
                     KCI_METRICS_REQUEST_BAD);
}

int main(void)
{
    kci_metrics_register(&TEST_SET);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_written_and_parsed),  cmocka_unit_test(test_registered_once),
        cmocka_unit_test(test_info_labels_escaped), cmocka_unit_test(test_threads_lose_nothing),
        cmocka_unit_test(test_parser_refuses),      cmocka_unit_test(test_parser_accepts),
        cmocka_unit_test(test_requests_classified),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
