/* views_test.c - the console's documents (src/console/views.h) from
 * answers shaped as the components give them: the nodes' rows, counts,
 * tree and last verdicts; the queue's figures and redelivery rates; the
 * ledger's window (transfers per second, flows summed per pair, the
 * largest first, hubs and strata, the supply per asset from the audit);
 * and the feed they are served from (common/feed.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "common/feed.h"
#include "console/views.h"

static json_t *parse(const char *text)
{
    json_error_t error;
    json_t *root = json_loads(text, 0, &error);
    if (root == NULL) fail_msg("bad test JSON: %s", error.text);
    return root;
}

static json_int_t integer_at(const json_t *object, const char *key)
{
    return json_integer_value(json_object_get(object, key));
}

static void test_nodes_view(void **state)
{
    (void)state;
    json_t *status = parse(
        "{\"arbiter\":\"arb\",\"nodes\":["
        "{\"name\":\"a\",\"status\":\"active\",\"qos\":0.9,\"merit\":1.0,\"credibility\":0.5,"
        "\"role\":\"service\",\"reasons\":[],\"samples\":12,\"trust\":1},"
        "{\"name\":\"b\",\"status\":\"quarantined\",\"qos\":0.1,\"merit\":0.0,\"credibility\":0.5,"
        "\"role\":\"service\",\"reasons\":[\"slow\"],\"samples\":30},"
        "{\"name\":\"c\",\"status\":\"probation\",\"qos\":0.5,\"merit\":0.2,\"credibility\":0.4,"
        "\"role\":\"client\",\"reasons\":[]}]}");
    json_t *verdicts = json_object();
    json_t *list = json_array();
    for (int i = 0; i < KCI_CONSOLE_VERDICTS_SHOWN_MAX + 5; i++)
        json_array_append_new(list,
                              json_pack("{s:i, s:s, s:s, s:[s], s:{}}", "id", i, "action",
                                        "quarantine", "node", "b", "votes", "arb", "evidence"));
    json_object_set_new(verdicts, "verdicts", list);
    json_t *tree = parse("{\"root\":\"a\",\"nodes\":[{\"name\":\"a\",\"merit\":1,\"qos\":0.9},"
                         "{\"name\":\"c\",\"merit\":0.2,\"qos\":0.5,\"supervisor\":\"a\"}]}");
    json_t *view = kci_console_nodes_view(status, verdicts, tree, 42);
    assert_non_null(view);
    assert_true(json_is_true(json_object_get(view, "available")));
    assert_int_equal(integer_at(view, "updated_ms"), 42);
    const json_t *counts = json_object_get(view, "counts");
    assert_int_equal(integer_at(counts, "active"), 1);
    assert_int_equal(integer_at(counts, "probation"), 1);
    assert_int_equal(integer_at(counts, "quarantined"), 1);
    const json_t *b = json_array_get(json_object_get(view, "nodes"), 1);
    assert_string_equal(json_string_value(json_object_get(b, "status")), "quarantined");
    assert_string_equal(json_string_value(json_array_get(json_object_get(b, "reasons"), 0)),
                        "slow");
    assert_null(json_object_get(b, "trust")); /* only the console's fields */
    const json_t *shown = json_object_get(view, "verdicts");
    assert_int_equal(json_array_size(shown), KCI_CONSOLE_VERDICTS_SHOWN_MAX);
    assert_int_equal(integer_at(json_array_get(shown, 0), "id"), 5); /* the last ones */
    assert_string_equal(json_string_value(json_object_get(json_object_get(view, "tree"), "root")),
                        "a");
    json_decref(view);
    /* no tree or verdicts answer: empty, not missing */
    view = kci_console_nodes_view(status, NULL, NULL, 1);
    assert_int_equal(json_array_size(json_object_get(view, "verdicts")), 0);
    assert_int_equal(json_array_size(json_object_get(json_object_get(view, "tree"), "nodes")), 0);
    json_decref(view);
    json_decref(status);
    json_decref(verdicts);
    json_decref(tree);
}

static void test_queue_view(void **state)
{
    (void)state;
    json_t *before = parse("{\"submitted\":100,\"redelivered\":4}");
    json_t *now = parse("{\"submitted\":200,\"pending\":3,\"replied\":190,\"dead\":2,"
                        "\"redelivered\":10,\"waiting\":1}");
    json_t *view = kci_console_queue_view(now, before, 2000, 7);
    assert_int_equal(integer_at(view, "submitted"), 200);
    assert_int_equal(integer_at(view, "pending"), 3);
    assert_int_equal(integer_at(view, "replied"), 190);
    assert_int_equal(integer_at(view, "dead"), 2);
    assert_int_equal(integer_at(view, "waiting"), 1);
    assert_float_equal(json_real_value(json_object_get(view, "redelivery_ratio")), 0.05, 1e-9);
    assert_float_equal(json_real_value(json_object_get(view, "redeliveries_per_s")), 3.0, 1e-9);
    assert_true(json_is_null(json_object_get(view, "oldest_pending_age_ms")));
    json_decref(view);
    json_t *aged = parse("{\"pending\":3,\"oldest_pending_age_ms\":1500}");
    view = kci_console_queue_view(aged, NULL, 0, 7);
    assert_int_equal(integer_at(view, "oldest_pending_age_ms"), 1500);
    json_decref(view);
    json_decref(aged);
    view = kci_console_queue_view(now, NULL, 0, 7); /* the first answer: no rate yet */
    assert_float_equal(json_real_value(json_object_get(view, "redeliveries_per_s")), 0.0, 1e-9);
    json_decref(view);
    json_decref(before);
    json_decref(now);
}

/* mint -> h 40; h pays a, b, c 10 each and d 2; a pays h 1 (twice): h has
 * 5 counterparties (a hub), the others 1; W = the mean transfer, 74/7. */
static void test_ledger_view(void **state)
{
    (void)state;
    json_t *edges = parse("["
                          "{\"from\":\"mint\",\"to\":\"h\",\"amount\":40,\"time_ms\":1},"
                          "{\"from\":\"h\",\"to\":\"a\",\"amount\":10,\"time_ms\":2},"
                          "{\"from\":\"h\",\"to\":\"b\",\"amount\":10,\"time_ms\":3},"
                          "{\"from\":\"h\",\"to\":\"c\",\"amount\":10,\"time_ms\":4},"
                          "{\"from\":\"h\",\"to\":\"d\",\"amount\":2,\"time_ms\":5},"
                          "{\"from\":\"a\",\"to\":\"h\",\"amount\":1,\"time_ms\":6},"
                          "{\"from\":\"a\",\"to\":\"h\",\"amount\":0,\"time_ms\":7},"
                          "{\"from\":\"a\",\"to\":\"h\",\"amount\":1,\"time_ms\":8}]");
    json_t *audit = parse("{\"ok\":true,\"supply\":40,\"supply_by_denomination\":{\"10\":4}}");
    json_t *view = kci_console_ledger_view(edges, audit, 10000, 9);
    assert_non_null(view);
    assert_int_equal(integer_at(view, "supply"), 40);
    assert_int_equal(integer_at(view, "window_transfers"), 7); /* the 0 is no transfer */
    assert_float_equal(json_real_value(json_object_get(view, "transfers_per_s")), 0.7, 1e-9);
    const json_t *asset = json_array_get(json_object_get(view, "assets"), 0);
    assert_string_equal(json_string_value(json_object_get(asset, "asset")), "coin");
    assert_int_equal(integer_at(asset, "supply"), 40);
    const json_t *largest = json_object_get(view, "largest_flows");
    assert_int_equal(json_array_size(largest), 6); /* pairs, a -> h summed */
    assert_int_equal(integer_at(json_array_get(largest, 0), "amount"), 40);
    const json_t *last = json_array_get(largest, 5);
    assert_int_equal(integer_at(last, "amount"), 2);
    const json_t *graph = json_object_get(view, "graph");
    assert_float_equal(json_real_value(json_object_get(graph, "strata_threshold")), 74.0 / 7, 1e-9);
    const json_t *vertex;
    size_t i, hubs = 0;
    json_array_foreach(json_object_get(graph, "vertices"), i, vertex)
    {
        const char *id = json_string_value(json_object_get(vertex, "id"));
        const char *stratum = json_string_value(json_object_get(vertex, "stratum"));
        if (json_is_true(json_object_get(vertex, "hub"))) {
            hubs++;
            assert_string_equal(id, "h");
        }
        if (strcmp(id, "mint") == 0) assert_string_equal(stratum, "mint");
        if (strcmp(id, "b") == 0) assert_string_equal(stratum, "poor"); /* net 10 < W */
        if (strcmp(id, "h") == 0) assert_string_equal(stratum, "poor"); /* 42 - 32 = 10 */
    }
    assert_int_equal(hubs, 1);
    assert_int_equal(json_array_size(json_object_get(graph, "vertices")), 6);
    assert_int_equal(json_array_size(json_object_get(graph, "edges")), 6);
    json_decref(view);
    /* before any audit: the window, and no supply yet */
    view = kci_console_ledger_view(edges, NULL, 10000, 9);
    assert_true(json_is_null(json_object_get(view, "supply")));
    assert_int_equal(json_array_size(json_object_get(view, "assets")), 0);
    json_decref(view);
    json_decref(edges);
    json_decref(audit);
}

static void test_unavailable(void **state)
{
    (void)state;
    json_t *view = kci_console_unavailable("nobody answers", 3);
    assert_true(json_is_false(json_object_get(view, "available")));
    assert_string_equal(json_string_value(json_object_get(view, "error")), "nobody answers");
    json_decref(view);
}

static void test_feed(void **state)
{
    (void)state;
    size_t len = 0;
    int64_t wall_ms = 0;
    assert_null(kci_feed_get("nodes", &len, &wall_ms));
    assert_true(kci_feed_put("nodes", "{\"a\":1}", 7, 5));
    assert_true(kci_feed_put("nodes", "{\"a\":2}", 7, 6)); /* replaces */
    char *text = kci_feed_get("nodes", &len, &wall_ms);
    assert_string_equal(text, "{\"a\":2}");
    assert_int_equal(len, 7);
    assert_int_equal(wall_ms, 6);
    free(text);
    char name[8];
    for (int i = 1; i < KCI_FEED_NAMES_MAX; i++) {
        snprintf(name, sizeof name, "n%d", i);
        assert_true(kci_feed_put(name, "1", 1, 0));
    }
    assert_false(kci_feed_put("one-too-many", "1", 1, 0)); /* the table is bounded */
    assert_false(kci_feed_put("", "1", 1, 0));
    assert_int_equal(kci_feed_wanted_ms(), 0);
    kci_feed_want(77);
    assert_int_equal(kci_feed_wanted_ms(), 77);
    kci_feed_clear();
    assert_int_equal(kci_feed_wanted_ms(), 0);
    assert_null(kci_feed_get("nodes", &len, &wall_ms));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_nodes_view),  cmocka_unit_test(test_queue_view),
        cmocka_unit_test(test_ledger_view), cmocka_unit_test(test_unavailable),
        cmocka_unit_test(test_feed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
