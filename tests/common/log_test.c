/* log_test.c - the rate-limited log lines (log.h): the limiter's decision
 * driven by a clock the test sets, then kci_log_limited writing to a file:
 * a burst of lines from one call site comes out as one line, and the next
 * line that gets through carries the count of those held back. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/log.h"

enum {
    INTERVAL_MS = 1000,
    BURST_COUNT = 5000,
    LOG_TEXT_BYTES_MAX = 64 * 1024,
};

static void test_first_line_passes(void **state)
{
    (void)state;
    kci_log_limiter limiter = {0};
    uint64_t suppressed = 99;
    int64_t window_ms = 99;
    assert_true(kci_log_limiter_admit(&limiter, 5, INTERVAL_MS, &suppressed, &window_ms));
    assert_int_equal(suppressed, 0);
    assert_int_equal(window_ms, 0);
}

static void test_one_line_per_interval(void **state)
{
    (void)state;
    kci_log_limiter limiter = {0};
    uint64_t suppressed = 0;
    int64_t window_ms = 0;
    assert_true(kci_log_limiter_admit(&limiter, 1000, INTERVAL_MS, &suppressed, &window_ms));
    for (int64_t now_ms = 1000; now_ms < 2000; now_ms += 10)
        assert_false(kci_log_limiter_admit(&limiter, now_ms, INTERVAL_MS, &suppressed, &window_ms));
    assert_true(kci_log_limiter_admit(&limiter, 2000, INTERVAL_MS, &suppressed, &window_ms));
    assert_int_equal(suppressed, 100);
    assert_int_equal(window_ms, 1000);
    /* The count starts over with each line that gets through. */
    assert_false(kci_log_limiter_admit(&limiter, 2500, INTERVAL_MS, &suppressed, &window_ms));
    assert_true(kci_log_limiter_admit(&limiter, 7000, INTERVAL_MS, &suppressed, &window_ms));
    assert_int_equal(suppressed, 1);
    assert_int_equal(window_ms, 5000);
    assert_true(kci_log_limiter_admit(&limiter, 8000, INTERVAL_MS, &suppressed, &window_ms));
    assert_int_equal(suppressed, 0);
}

/* A monotonic clock may start near zero or be negative in a test: the
 * first line passes whatever the clock says. */
static void test_first_line_passes_at_any_time(void **state)
{
    (void)state;
    kci_log_limiter limiter = {0};
    uint64_t suppressed = 0;
    int64_t window_ms = 0;
    assert_true(kci_log_limiter_admit(&limiter, -50, INTERVAL_MS, &suppressed, &window_ms));
    assert_false(kci_log_limiter_admit(&limiter, 0, INTERVAL_MS, &suppressed, &window_ms));
}

static int count_lines(const char *text)
{
    int count = 0;
    for (const char *cursor = text; *cursor != '\0'; cursor++)
        count += *cursor == '\n';
    return count;
}

static void read_whole(const char *path, char *text, size_t text_size)
{
    FILE *file = fopen(path, "r");
    assert_non_null(file);
    size_t len = fread(text, 1, text_size - 1, file);
    text[len] = '\0';
    fclose(file);
}

static void burst(int count)
{
    for (int i = 0; i < count; i++)
        kci_warn_limited("peer %d refused", i);
}

/* One call site, a burst far shorter than the interval: one line. After the
 * interval the next line says how many were held back. */
static void test_burst_writes_one_line_then_the_count(void **state)
{
    (void)state;
    char path[] = "/tmp/kc-log-test-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    assert_int_equal(kci_log_open_file(path), 0);
    kci_log_configure(KCI_LOG_INFO, false);
    burst(BURST_COUNT);
    static char text[LOG_TEXT_BYTES_MAX];
    read_whole(path, text, sizeof text);
    assert_int_equal(count_lines(text), 1);
    assert_non_null(strstr(text, "[WRN] peer 0 refused\n"));
    usleep((INTERVAL_MS + 100) * 1000);
    burst(1);
    read_whole(path, text, sizeof text);
    assert_int_equal(count_lines(text), 2);
    char expected[128];
    snprintf(expected, sizeof expected, "[WRN] peer 0 refused (%d more in the last 1s)\n",
             BURST_COUNT - 1);
    assert_non_null(strstr(text, expected));
    /* A level that is not enabled is not counted either. */
    kci_log_configure(KCI_LOG_ERROR, false);
    burst(10);
    read_whole(path, text, sizeof text);
    assert_int_equal(count_lines(text), 2);
    unlink(path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_first_line_passes),
        cmocka_unit_test(test_one_line_per_interval),
        cmocka_unit_test(test_first_line_passes_at_any_time),
        cmocka_unit_test(test_burst_writes_one_line_then_the_count),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
