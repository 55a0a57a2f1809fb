/* report_stats_test.c - the report analytics (src/arbiter/report_stats.h)
 * on constructed report sets whose answer is known: counts per node,
 * reason, reporter and window; bursts against a node's own baseline (and
 * the steady or too-early cases that are not bursts); the ring and the
 * densest core of the who-reports-whom graph; --since; and the report
 * file's lines (a torn last line and corrupt lines skipped). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "arbiter/report_stats.h"

enum { MINUTE_MS = 60 * 1000 };
static const int64_t T0_MS = 1700000040000; /* a multiple of a minute */

static void add(kci_report_set *set, int64_t ts_ms, const char *node, const char *reporter,
                kc_problem_reason reason)
{
    assert_int_equal(kci_report_set_add(set, ts_ms, node, reporter, reason), KC_OK);
}

static json_t *run(const kci_report_set *set, int64_t since_ms)
{
    kci_report_stats_params params;
    kci_report_stats_params_default(&params);
    params.window_ms = MINUTE_MS;
    params.since_ms = since_ms;
    json_t *stats = NULL;
    kci_econ_error error = {{0}};
    assert_int_equal(kci_report_stats_run(set, &params, &stats, &error), KC_OK);
    assert_non_null(stats);
    return stats;
}

static int64_t at(json_t *stats, const char *group, const char *key)
{
    return (int64_t)json_integer_value(
        json_object_get(json_object_get(json_object_get(stats, "totals"), group), key));
}

static void test_counts(void **state)
{
    (void)state;
    kci_report_set set;
    kci_report_set_init(&set);
    add(&set, T0_MS + 1, "n1", "c1", KC_PROBLEM_SLOW);
    add(&set, T0_MS + 2, "n1", "c2", KC_PROBLEM_SLOW);
    add(&set, T0_MS + MINUTE_MS + 5, "n2", "c1", KC_PROBLEM_WRONG_ANSWER);
    add(&set, T0_MS + 3 * MINUTE_MS, "n1", "c1", KC_PROBLEM_OVERCHARGED);
    json_t *stats = run(&set, 0);
    assert_int_equal(json_integer_value(json_object_get(stats, "reports")), 4);
    assert_int_equal(at(stats, "by_node", "n1"), 3);
    assert_int_equal(at(stats, "by_node", "n2"), 1);
    assert_int_equal(at(stats, "by_reason", "slow"), 2);
    assert_int_equal(at(stats, "by_reason", "wrong_answer"), 1);
    assert_int_equal(at(stats, "by_reason", "overcharged"), 1);
    assert_int_equal(at(stats, "by_reporter", "c1"), 3);
    assert_int_equal(at(stats, "by_reporter", "c2"), 1);
    json_t *windows = json_object_get(stats, "windows");
    assert_int_equal(json_array_size(windows), 3); /* the empty third minute is left out */
    json_t *first = json_array_get(windows, 0);
    assert_int_equal(json_integer_value(json_object_get(first, "start_ms")), T0_MS);
    assert_int_equal(json_integer_value(json_object_get(first, "total")), 2);
    json_t *last = json_array_get(windows, 2);
    assert_int_equal(json_integer_value(json_object_get(last, "start_ms")), T0_MS + 3 * MINUTE_MS);
    assert_int_equal(json_array_size(json_object_get(stats, "bursts")), 0);
    json_decref(stats);
    /* --since: only the last report */
    stats = run(&set, T0_MS + 2 * MINUTE_MS);
    assert_int_equal(json_integer_value(json_object_get(stats, "reports")), 1);
    assert_int_equal(at(stats, "by_reason", "overcharged"), 1);
    assert_null(
        json_object_get(json_object_get(json_object_get(stats, "totals"), "by_node"), "n2"));
    json_decref(stats);
    kci_report_set_free(&set);
}

static void test_bursts(void **state)
{
    (void)state;
    kci_report_set set;
    kci_report_set_init(&set);
    /* calm: one a minute for four minutes, then 20 in the fifth: baseline
     * 1, threshold 3 x (1 + 1) = 6, 20 >= 6: a burst */
    for (int w = 0; w < 4; w++)
        add(&set, T0_MS + w * MINUTE_MS, "calm", "c1", KC_PROBLEM_SLOW);
    for (int i = 0; i < 20; i++)
        add(&set, T0_MS + 4 * MINUTE_MS + i, "calm", "c2", KC_PROBLEM_SLOW);
    /* steady: 6 a minute throughout: baseline 6, threshold 21: never */
    for (int w = 0; w < 5; w++)
        for (int i = 0; i < 6; i++)
            add(&set, T0_MS + w * MINUTE_MS + i, "steady", "c3", KC_PROBLEM_NO_ANSWER);
    /* early: 30 in the first minute, before any baseline: not judged */
    for (int i = 0; i < 30; i++)
        add(&set, T0_MS + i, "early", "c4", KC_PROBLEM_OTHER);
    /* few: 4 in the fifth minute after nothing: below burst_count_min 5 */
    for (int i = 0; i < 4; i++)
        add(&set, T0_MS + 4 * MINUTE_MS + i, "few", "c5", KC_PROBLEM_OTHER);
    json_t *stats = run(&set, 0);
    json_t *bursts = json_object_get(stats, "bursts");
    assert_int_equal(json_array_size(bursts), 1);
    json_t *burst = json_array_get(bursts, 0);
    assert_string_equal(json_string_value(json_object_get(burst, "node")), "calm");
    assert_int_equal(json_integer_value(json_object_get(burst, "count")), 20);
    assert_int_equal(json_integer_value(json_object_get(burst, "start_ms")), T0_MS + 4 * MINUTE_MS);
    assert_float_equal(json_real_value(json_object_get(burst, "baseline")), 1.0, 1e-9);
    assert_float_equal(json_real_value(json_object_get(burst, "threshold")), 6.0, 1e-9);
    json_decref(stats);
    kci_report_set_free(&set);
}

static bool has(json_t *names, const char *name)
{
    size_t index;
    json_t *value;
    json_array_foreach(names, index, value)
    {
        if (strcmp(json_string_value(value), name) == 0) return true;
    }
    return false;
}

static void test_rings(void **state)
{
    (void)state;
    kci_report_set set;
    kci_report_set_init(&set);
    /* a ring r1 -> r2 -> r3 -> r1 with r1 -> r3 too; honest clients
     * reporting a bad node (a star: no cycle); a self-report is dropped */
    const char *pairs[][2] = {{"r1", "r2"},  {"r2", "r3"},  {"r3", "r1"},
                              {"r1", "r3"},  {"r1", "r2"},  {"c1", "bad"},
                              {"c2", "bad"}, {"c3", "bad"}, {"bad", "bad"}};
    for (size_t i = 0; i < sizeof pairs / sizeof pairs[0]; i++)
        add(&set, T0_MS + (int64_t)i, pairs[i][1], pairs[i][0], KC_PROBLEM_WRONG_ANSWER);
    json_t *stats = run(&set, 0);
    json_t *graph = json_object_get(stats, "graph");
    json_t *rings = json_object_get(graph, "rings");
    assert_int_equal(json_array_size(rings), 1);
    json_t *members = json_object_get(json_array_get(rings, 0), "members");
    assert_int_equal(json_array_size(members), 3);
    assert_true(has(members, "r1") && has(members, "r2") && has(members, "r3"));
    assert_int_equal(json_integer_value(json_object_get(json_array_get(rings, 0), "reports")), 5);
    /* the shortest cycle through the first member: r1 -> r3 -> r1 */
    assert_int_equal(json_array_size(json_object_get(json_array_get(rings, 0), "cycle")), 2);
    assert_int_equal(json_integer_value(json_object_get(graph, "k_max")), 2);
    json_t *core = json_object_get(graph, "core");
    assert_int_equal(json_array_size(core), 3);
    assert_false(has(core, "bad"));
    /* edges: r1->r2 (2), r2->r3, r3->r1, r1->r3, and three into bad */
    assert_int_equal(json_array_size(json_object_get(graph, "edges")), 7);
    json_decref(stats);
    kci_report_set_free(&set);
}

static void test_lines(void **state)
{
    (void)state;
    int64_t ts;
    char node[KC_NODE_BYTES_MAX + 1], reporter[KC_NODE_BYTES_MAX + 1];
    kc_problem_reason reason;
    const char *good = "{\"ts\":5,\"node\":\"n\",\"reason\":\"slow\",\"reporter\":\"r\"}";
    assert_true(kci_report_line_parse(good, strlen(good), &ts, node, reporter, &reason));
    assert_int_equal(ts, 5);
    assert_string_equal(node, "n");
    assert_string_equal(reporter, "r");
    assert_int_equal(reason, KC_PROBLEM_SLOW);
    const char *bad[] = {
        "{\"ts\":5,\"node\":\"n\",\"reason\":\"rude\",\"reporter\":\"r\"}",
        "{\"ts\":-1,\"node\":\"n\",\"reason\":\"slow\",\"reporter\":\"r\"}",
        "{\"ts\":5,\"node\":\"a.b\",\"reason\":\"slow\",\"reporter\":\"r\"}",
        "{\"ts\":5,\"node\":\"n\",\"reason\":\"slow\"}",
        "{\"ts\":5,\"ts\":6,\"node\":\"n\",\"reason\":\"slow\",\"reporter\":\"r\"}",
        "{\"ts\":5,\"node\":\"n\",\"rea",
        "[]",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_false(kci_report_line_parse(bad[i], strlen(bad[i]), &ts, node, reporter, &reason));
    /* a file: two reports, a corrupt line between, a torn last line */
    char path[] = "/tmp/report_stats_test_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    FILE *file = fdopen(fd, "w");
    fprintf(file, "%s\nnot json\n%s\n{\"ts\":7,\"node\":\"n\"", good, good);
    fclose(file);
    kci_report_set set;
    kci_report_set_init(&set);
    kci_econ_error error = {{0}};
    assert_int_equal(kci_report_set_load(&set, path, &error), KC_OK);
    assert_int_equal(set.count, 2);
    assert_int_equal(set.skipped, 2);
    assert_int_equal(set.name_count, 2);
    kci_report_set_free(&set);
    unlink(path);
    kci_report_set_init(&set);
    assert_int_equal(kci_report_set_load(&set, path, &error), KC_ERR_NOT_FOUND);
    kci_report_set_free(&set);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_counts),
        cmocka_unit_test(test_bursts),
        cmocka_unit_test(test_rings),
        cmocka_unit_test(test_lines),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
