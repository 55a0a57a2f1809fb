/* io_test.c - the I/O seam's own rules (src/common/io.h): the real table is
 * the default and install swaps it back; EINTR is retried, at most
 * KCI_IO_EINTR_RETRIES_MAX times; the write loops go on after a short
 * write and call a write of nothing ENOSPC. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>
#include <errno.h>

#include "common/io.h"

static int fsync_calls, pwrite_calls;
static size_t pwrite_bytes;

static int always_interrupted(int fd)
{
    (void)fd;
    fsync_calls++;
    errno = EINTR;
    return -1;
}

static int interrupted_twice(int fd)
{
    (void)fd;
    if (++fsync_calls <= 2) {
        errno = EINTR;
        return -1;
    }
    return 0;
}

/* One byte at a time, an EINTR between. */
static ssize_t trickle(int fd, const void *bytes, size_t length, off_t offset)
{
    (void)fd, (void)bytes, (void)offset;
    if (++pwrite_calls % 2 == 0) {
        errno = EINTR;
        return -1;
    }
    pwrite_bytes += length > 0 ? 1 : 0;
    return length > 0 ? 1 : 0;
}

static ssize_t nothing_written(int fd, const void *bytes, size_t length, off_t offset)
{
    (void)fd, (void)bytes, (void)length, (void)offset;
    errno = 0;
    return 0;
}

static void test_install(void **state)
{
    (void)state;
    assert_ptr_equal(kci_io, &kci_io_real);
    kci_io_table table = kci_io_real;
    assert_ptr_equal(kci_io_install(&table), &kci_io_real);
    assert_ptr_equal(kci_io, &table);
    assert_ptr_equal(kci_io_install(NULL), &table);
    assert_ptr_equal(kci_io, &kci_io_real);
}

static void test_eintr_retried_and_bounded(void **state)
{
    (void)state;
    kci_io_table table = kci_io_real;
    table.fsync = interrupted_twice;
    kci_io_install(&table);
    fsync_calls = 0;
    assert_int_equal(kci_io_retry_fsync(3), 0);
    assert_int_equal(fsync_calls, 3);
    table.fsync = always_interrupted;
    fsync_calls = 0;
    assert_int_equal(kci_io_retry_fsync(3), -1);
    assert_int_equal(errno, EINTR);
    assert_int_equal(fsync_calls, KCI_IO_EINTR_RETRIES_MAX + 1);
    kci_io_install(NULL);
}

static void test_short_writes(void **state)
{
    (void)state;
    kci_io_table table = kci_io_real;
    table.pwrite = trickle;
    kci_io_install(&table);
    pwrite_calls = 0;
    pwrite_bytes = 0;
    assert_int_equal(kci_io_pwrite_all(3, "twelve bytes", 12, 0), 0);
    assert_int_equal(pwrite_bytes, 12);
    table.pwrite = nothing_written;
    assert_int_equal(kci_io_pwrite_all(3, "x", 1, 0), -1);
    assert_int_equal(errno, ENOSPC);
    assert_int_equal(kci_io_pwrite_all(3, "", 0, 0), 0); /* nothing to write: no call */
    kci_io_install(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_install),
        cmocka_unit_test(test_eintr_retried_and_bounded),
        cmocka_unit_test(test_short_writes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
