/* reports_test.c - report analytics end to end, through a real kcobrad
 * with its hosted arbiter (docs/arbiter.md, "Report analytics"):
 *
 *  - reports filed with `kcobra problem` by several reporters (--node):
 *    three clients against node "bad", and r1 -> r2 -> r3 -> r1 against
 *    one another; the arbiter records each in
 *    <data_dir>/arbiter-arb.reports.jsonl;
 *  - `kcobra arbiter reports --json` counts them by node, reason and
 *    reporter and finds the ring {r1, r2, r3} (and not "bad"); --svg draws
 *    a picture;
 *  - after a kill -9 and a restart of kcobrad the recorded reports are all
 *    still counted, and new ones are added to them.
 *
 * KCOBRA names the kcobra binary (meson passes it); skipped without. Every
 * wait is bounded; nothing asserts a speed. */
#include <jansson.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "fixture.h"
#include "kcobra_run.h"

enum {
    EXIT_SKIP = 77,
    OUTPUT_BYTES_MAX = 1024 * 1024,
    RECORD_WAIT_MS = 15000, /* the arbiter records what it received */
    POLL_MS = 100,
};

static const char CONFIG[] = "arbiter {\n  enabled: true\n  id: \"arb\"\n}\n";

static void sleep_ms(int duration_ms)
{
    struct timespec pause = {duration_ms / 1000, (duration_ms % 1000) * 1000000L};
    nanosleep(&pause, NULL);
}

static void report(fixture *f, const char *reporter, const char *node, const char *reason)
{
    char output[1024];
    const char *arguments[] = {"problem", node, reason, "--node", reporter, NULL};
    assert_int_equal(kcobra_run(f->server.url, arguments, output, sizeof output), 0);
}

/* kcobra arbiter reports --json, until it counts want reports (bounded). */
static json_t *analysis(fixture *f, long long want)
{
    char path[HARNESS_PATH_SIZE_MAX + 64];
    snprintf(path, sizeof path, "%s/data/arbiter-arb.reports.jsonl", f->server.directory_path);
    const char *arguments[] = {"arbiter",  "reports", "--file", path,
                               "--window", "1m",      "--json", NULL};
    char *output = malloc(OUTPUT_BYTES_MAX);
    assert_non_null(output);
    json_t *stats = NULL;
    for (int64_t deadline = harness_now_ms() + RECORD_WAIT_MS; harness_now_ms() < deadline;
         sleep_ms(POLL_MS)) {
        json_decref(stats);
        stats = NULL;
        if (kcobra_run(f->server.url, arguments, output, OUTPUT_BYTES_MAX) != 0) continue;
        stats = json_loads(output, 0, NULL);
        if (json_integer_value(json_object_get(stats, "reports")) >= want) break;
    }
    free(output);
    assert_non_null(stats);
    assert_int_equal(json_integer_value(json_object_get(stats, "reports")), want);
    return stats;
}

static long long total(json_t *stats, const char *group, const char *key)
{
    return (long long)json_integer_value(
        json_object_get(json_object_get(json_object_get(stats, "totals"), group), key));
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

static void file_reports(fixture *f)
{
    const char *clients[] = {"c1", "c2", "c3"};
    for (int i = 0; i < 3; i++) {
        report(f, clients[i], "bad", "wrong_answer");
        report(f, clients[i], "bad", "slow");
    }
    report(f, "r1", "r2", "overcharged");
    report(f, "r2", "r3", "overcharged");
    report(f, "r3", "r1", "overcharged");
}

static void check_ring(json_t *stats)
{
    json_t *rings = json_object_get(json_object_get(stats, "graph"), "rings");
    assert_int_equal(json_array_size(rings), 1);
    json_t *members = json_object_get(json_array_get(rings, 0), "members");
    assert_int_equal(json_array_size(members), 3);
    assert_true(has(members, "r1") && has(members, "r2") && has(members, "r3"));
    assert_false(has(members, "bad"));
}

static void test_reports_counted_and_ring_found(void **state)
{
    fixture *f = fixture_of(state);
    if (getenv("KCOBRA") == NULL) skip();
    fixture_start(f, CONFIG);
    file_reports(f);
    json_t *stats = analysis(f, 9);
    assert_int_equal(total(stats, "by_node", "bad"), 6);
    assert_int_equal(total(stats, "by_node", "r1"), 1);
    assert_int_equal(total(stats, "by_reason", "wrong_answer"), 3);
    assert_int_equal(total(stats, "by_reason", "slow"), 3);
    assert_int_equal(total(stats, "by_reason", "overcharged"), 3);
    assert_int_equal(total(stats, "by_reporter", "c2"), 2);
    assert_int_equal(total(stats, "by_reporter", "r3"), 1);
    check_ring(stats);
    json_decref(stats);
    /* the picture */
    char svg[HARNESS_PATH_SIZE_MAX + 64], output[4096];
    snprintf(svg, sizeof svg, "%s/reports.svg", f->server.directory_path);
    char file[HARNESS_PATH_SIZE_MAX + 64];
    snprintf(file, sizeof file, "%s/data/arbiter-arb.reports.jsonl", f->server.directory_path);
    const char *draw[] = {"arbiter", "reports", "--file", file, "--svg", svg, NULL};
    assert_int_equal(kcobra_run(f->server.url, draw, output, sizeof output), 0);
    assert_non_null(strstr(output, "ring of 3"));
    FILE *picture = fopen(svg, "r");
    assert_non_null(picture);
    char *text = calloc(1, OUTPUT_BYTES_MAX);
    assert_non_null(text);
    size_t length = fread(text, 1, OUTPUT_BYTES_MAX - 1, picture);
    fclose(picture);
    assert_true(length > 0 && strncmp(text, "<?xml", 5) == 0);
    assert_non_null(strstr(text, "</svg>"));
    assert_non_null(strstr(text, ">r2</text>"));
    free(text);
}

static void test_reports_survive_kill(void **state)
{
    fixture *f = fixture_of(state);
    if (getenv("KCOBRA") == NULL) skip();
    fixture_start(f, CONFIG);
    file_reports(f);
    json_decref(analysis(f, 9));
    assert_int_equal(harness_server_signal(&f->server, SIGKILL), HARNESS_OK);
    int exit_status = 0;
    assert_int_equal(harness_server_wait_exit(&f->server, 5000, &exit_status), HARNESS_OK);
    assert_int_equal(harness_server_start(&f->server, CONFIG), HARNESS_OK);
    report(f, "c1", "bad", "no_answer");
    json_t *stats = analysis(f, 10);
    assert_int_equal(total(stats, "by_node", "bad"), 7);
    assert_int_equal(total(stats, "by_reason", "no_answer"), 1);
    check_ring(stats);
    json_decref(stats);
}

int main(int argc, char **argv)
{
    if (!fixture_parse_arguments(argc, argv)) return 2;
    if (strstr(fixture_server_binary, "kcobrad") == NULL) {
        fprintf(stderr, "reports_test: only kcobrad hosts an arbiter; skipping\n");
        return EXIT_SKIP;
    }
    const struct CMUnitTest tests[] = {
        FIXTURE_CASE(test_reports_counted_and_ring_found),
        FIXTURE_CASE(test_reports_survive_kill),
    };
    return cmocka_run_group_tests(tests, fixture_group_setup, fixture_group_teardown);
}
