/* micro_test.c - the NATS services protocol's pieces (src/service/micro.h):
 * the io.nats.micro.v1 JSON against the schemas' required fields and types,
 * service names and semver versions, the endpoint counters, and the
 * service error headers stamped beside Kc-Error (headers.c). */
#include <jansson.h>
#include <pthread.h>
#include <string.h>

/* clang-format off */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
/* clang-format on */

#include "service/headers.h"
#include "service/micro.h"

enum { THREADS = 4, ADDS_PER_THREAD = 10000 };

#define ID "01a25309-1894-72b5-bd81-8cb0e41de0cb"

/* A description with two endpoints, one without a queue group. */
typedef struct fixture {
    kci_micro_stats stats[2];
    kci_micro_endpoint endpoints[2];
    kci_micro_description description;
} fixture;

static void fixture_init(fixture *f)
{
    kci_micro_stats_init(&f->stats[0]);
    kci_micro_stats_init(&f->stats[1]);
    f->endpoints[0] = (kci_micro_endpoint){"submit", "kc.submit.>", "kc-persister", &f->stats[0]};
    f->endpoints[1] = (kci_micro_endpoint){"status", "kc.arbiter.status", NULL, &f->stats[1]};
    f->description = (kci_micro_description){.name = "kc-test",
                                             .version = "1.2.3",
                                             .description = "a test service",
                                             .node = "node-1",
                                             .type = "test",
                                             .price = 25,
                                             .endpoints = f->endpoints,
                                             .endpoint_count = 2};
}

static void fixture_destroy(fixture *f)
{
    kci_micro_stats_destroy(&f->stats[0]);
    kci_micro_stats_destroy(&f->stats[1]);
}

static json_t *parse(char *text)
{
    assert_non_null(text);
    json_t *object = json_loads(text, 0, NULL);
    free(text);
    assert_true(json_is_object(object));
    return object;
}

static void assert_text(json_t *object, const char *key, const char *expected)
{
    json_t *value = json_object_get(object, key);
    assert_true(json_is_string(value));
    assert_string_equal(json_string_value(value), expected);
}

static void assert_integer(json_t *object, const char *key, json_int_t expected)
{
    json_t *value = json_object_get(object, key);
    assert_true(json_is_integer(value));
    assert_int_equal(json_integer_value(value), expected);
}

/* type, name, id, version and metadata (a map of strings): every answer. */
static void assert_identity(json_t *object, const char *type)
{
    assert_text(object, "type", type);
    assert_text(object, "name", "kc-test");
    assert_text(object, "id", ID);
    assert_text(object, "version", "1.2.3");
    json_t *metadata = json_object_get(object, "metadata");
    assert_true(json_is_object(metadata));
    assert_text(metadata, "kc_node", "node-1");
    assert_text(metadata, "kc_type", "test");
    assert_text(metadata, "kc_price", "25");
    assert_int_equal(json_object_size(metadata), 3);
}

static void test_ping_json(void **state)
{
    fixture f;
    fixture_init(&f);
    json_t *ping = parse(kci_micro_ping_json(&f.description, ID));
    assert_identity(ping, KCI_MICRO_PING_TYPE);
    assert_int_equal(json_object_size(ping), 5);
    json_decref(ping);
    fixture_destroy(&f);
}

static void test_info_json(void **state)
{
    fixture f;
    fixture_init(&f);
    json_t *info = parse(kci_micro_info_json(&f.description, ID));
    assert_identity(info, KCI_MICRO_INFO_TYPE);
    assert_text(info, "description", "a test service");
    json_t *endpoints = json_object_get(info, "endpoints");
    assert_int_equal(json_array_size(endpoints), 2);
    json_t *first = json_array_get(endpoints, 0);
    assert_text(first, "name", "submit");
    assert_text(first, "subject", "kc.submit.>");
    assert_text(first, "queue_group", "kc-persister");
    assert_true(json_is_object(json_object_get(first, "metadata")));
    json_t *second = json_array_get(endpoints, 1);
    assert_text(second, "subject", "kc.arbiter.status");
    assert_null(json_object_get(second, "queue_group")); /* none: left out */
    json_decref(info);
    fixture_destroy(&f);
}

static void test_stats_json(void **state)
{
    fixture f;
    fixture_init(&f);
    kci_micro_stats_request(&f.stats[0], 1000);
    kci_micro_stats_request(&f.stats[0], 3000);
    kci_micro_stats_request(&f.stats[0], 2000);
    kci_micro_stats_error(&f.stats[0], 503, "no log");
    /* 2026-12-08T01:02:03.045Z */
    json_t *stats = parse(kci_micro_stats_json(&f.description, ID, 1796691723045));
    assert_identity(stats, KCI_MICRO_STATS_TYPE);
    assert_text(stats, "started", "2026-12-08T01:02:03.045Z");
    json_t *endpoints = json_object_get(stats, "endpoints");
    assert_int_equal(json_array_size(endpoints), 2);
    json_t *first = json_array_get(endpoints, 0);
    assert_text(first, "name", "submit");
    assert_text(first, "subject", "kc.submit.>");
    assert_text(first, "queue_group", "kc-persister");
    assert_integer(first, "num_requests", 3);
    assert_integer(first, "num_errors", 1);
    assert_text(first, "last_error", "503:no log");
    assert_integer(first, "processing_time", 6000);
    assert_integer(first, "average_processing_time", 2000);
    json_t *idle = json_array_get(endpoints, 1);
    assert_integer(idle, "num_requests", 0);
    assert_integer(idle, "num_errors", 0);
    assert_text(idle, "last_error", "");
    assert_integer(idle, "processing_time", 0);
    assert_integer(idle, "average_processing_time", 0); /* no division by zero */
    json_decref(stats);
    fixture_destroy(&f);
}

static void test_names(void **state)
{
    static const char *const good[] = {"calc", "kc-ledger", "A_b-9"};
    static const char *const bad[] = {"", "a.b", "a b", "a*", "é", "a>"};
    for (size_t index = 0; index < sizeof good / sizeof good[0]; index++)
        assert_true(kci_micro_name_valid(good[index]));
    for (size_t index = 0; index < sizeof bad / sizeof bad[0]; index++)
        assert_false(kci_micro_name_valid(bad[index]));
    assert_false(kci_micro_name_valid(NULL));
    char name[16];
    kci_micro_name_from(name, sizeof name, "pay:item$1");
    assert_string_equal(name, "pay_item_1");
    kci_micro_name_from(name, sizeof name, "");
    assert_string_equal(name, "service");
    kci_micro_name_from(name, 5, "abcdefgh");
    assert_string_equal(name, "abcd");
}

static void test_versions(void **state)
{
    static const char *const good[] = {"0.1.0",        "1.2.3",         "10.20.30",
                                       "1.0.0-alpha",  "1.0.0-alpha.1", "1.0.0+build.5",
                                       "1.0.0-rc.1+b7"};
    static const char *const bad[] = {"",           "1",      "1.2",    "1.2.3.4",
                                      "01.2.3",     "1.02.3", "1.2.3-", "1.2.3+",
                                      "1.2.3-a..b", "v1.2.3", "1.2.3 ", "1.2.x"};
    for (size_t index = 0; index < sizeof good / sizeof good[0]; index++)
        assert_true(kci_micro_version_valid(good[index]));
    for (size_t index = 0; index < sizeof bad / sizeof bad[0]; index++)
        assert_false(kci_micro_version_valid(bad[index]));
    assert_false(kci_micro_version_valid(NULL));
}

static void *add_requests(void *argument)
{
    kci_micro_stats *stats = argument;
    for (int index = 0; index < ADDS_PER_THREAD; index++) {
        kci_micro_stats_request(stats, 2);
        if (index % 10 == 0) kci_micro_stats_error(stats, 500, "boom");
    }
    return NULL;
}

/* Concurrent request paths lose no count. */
static void test_counters_concurrent(void **state)
{
    kci_micro_stats stats;
    kci_micro_stats_init(&stats);
    pthread_t threads[THREADS];
    for (int index = 0; index < THREADS; index++)
        assert_int_equal(pthread_create(&threads[index], NULL, add_requests, &stats), 0);
    for (int index = 0; index < THREADS; index++)
        pthread_join(threads[index], NULL);
    kci_micro_stats_snapshot snapshot;
    kci_micro_stats_read(&stats, &snapshot);
    assert_int_equal(snapshot.request_count, THREADS * ADDS_PER_THREAD);
    assert_int_equal(snapshot.error_count, THREADS * ADDS_PER_THREAD / 10);
    assert_int_equal(snapshot.processing_ns, 2 * THREADS * ADDS_PER_THREAD);
    assert_string_equal(snapshot.last_error, "500:boom");
    kci_micro_stats_request(&stats, -5); /* a clock that went back adds no time */
    kci_micro_stats_read(&stats, &snapshot);
    assert_int_equal(snapshot.processing_ns, 2 * THREADS * ADDS_PER_THREAD);
    kci_micro_stats_destroy(&stats);
}

static const char *header(natsMsg *message, const char *name)
{
    const char *value = NULL;
    return natsMsgHeader_Get(message, name, &value) == NATS_OK ? value : NULL;
}

/* An error reply carries Kc-Error and the NATS service error headers; a
 * message stamped again without the error loses all three. */
static void test_error_headers(void **state)
{
    natsMsg *message = NULL;
    assert_int_equal(natsMsg_Create(&message, "_INBOX.x", NULL, NULL, 0), NATS_OK);
    kci_kc_headers headers;
    kci_headers_clear(&headers);
    strcpy(headers.node, "node-1");
    headers.error_code = 402;
    strcpy(headers.error_message, "payment\nrequired");
    assert_int_equal(kci_headers_stamp(message, &headers), KC_OK);
    assert_string_equal(header(message, KCI_HEADER_ERROR), "402 payment required");
    assert_string_equal(header(message, KCI_HEADER_SERVICE_ERROR_CODE), "402");
    assert_string_equal(header(message, KCI_HEADER_SERVICE_ERROR), "payment required");
    headers.error_code = 0;
    headers.error_message[0] = '\0';
    assert_int_equal(kci_headers_stamp(message, &headers), KC_OK);
    assert_null(header(message, KCI_HEADER_ERROR));
    assert_null(header(message, KCI_HEADER_SERVICE_ERROR_CODE));
    assert_null(header(message, KCI_HEADER_SERVICE_ERROR));
    natsMsg_Destroy(message);
    /* A request (no error) gets none of them. */
    assert_int_equal(natsMsg_Create(&message, "kc.req.x", NULL, NULL, 0), NATS_OK);
    kci_headers_clear(&headers);
    strcpy(headers.node, "node-1");
    assert_int_equal(kci_headers_stamp(message, &headers), KC_OK);
    assert_null(header(message, KCI_HEADER_SERVICE_ERROR_CODE));
    natsMsg_Destroy(message);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ping_json),     cmocka_unit_test(test_info_json),
        cmocka_unit_test(test_stats_json),    cmocka_unit_test(test_names),
        cmocka_unit_test(test_versions),      cmocka_unit_test(test_counters_concurrent),
        cmocka_unit_test(test_error_headers),
    };
    if (nats_Open(-1) != NATS_OK) return 1; /* natsMsg_Destroy needs the library open */
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    nats_Close();
    return failed;
}
