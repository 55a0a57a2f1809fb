/* io.c - the real I/O table and the write loops (see io.h).
 *
 * The entries are thin wrappers only where the POSIX signature differs
 * from the table's (open and openat are variadic; posix_fallocate takes
 * the same arguments but is named so the table reads like the calls). */
#include "common/io.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static int real_open(const char *path, int flags, mode_t mode)
{
    return open(path, flags, mode);
}

static int real_openat(int directory_fd, const char *path, int flags, mode_t mode)
{
    return openat(directory_fd, path, flags, mode);
}

const kci_io_table kci_io_real = {
    .open = real_open,
    .openat = real_openat,
    .close = close,
    .pwrite = pwrite,
    .write = write,
    .fdatasync = fdatasync,
    .fsync = fsync,
    .ftruncate = ftruncate,
    .fallocate = posix_fallocate,
    .rename = rename,
    .unlink = unlink,
    .malloc = malloc,
    .calloc = calloc,
};

const kci_io_table *kci_io = &kci_io_real;

const kci_io_table *kci_io_install(const kci_io_table *table)
{
    const kci_io_table *previous = kci_io;
    kci_io = table != NULL ? table : &kci_io_real;
    return previous;
}

/* One step of a write loop: result of the call, bytes so far; false when
 * the loop must stop with an error (errno set). */
static bool write_step(ssize_t result, size_t *written, int *interruptions)
{
    if (result > 0) {
        *written += (size_t)result;
        return true;
    }
    if (result < 0 && errno == EINTR && (*interruptions)++ < KCI_IO_EINTR_RETRIES_MAX) return true;
    if (result == 0) errno = ENOSPC; /* wrote nothing and said nothing: no room */
    return false;
}

int kci_io_pwrite_all(int fd, const void *bytes, size_t length, off_t offset)
{
    const char *from = bytes;
    size_t written = 0;
    int interruptions = 0;
    while (written < length) {
        ssize_t result =
            kci_io->pwrite(fd, from + written, length - written, offset + (off_t)written);
        if (!write_step(result, &written, &interruptions)) return -1;
    }
    return 0;
}

int kci_io_write_all(int fd, const void *bytes, size_t length)
{
    const char *from = bytes;
    size_t written = 0;
    int interruptions = 0;
    while (written < length) {
        ssize_t result = kci_io->write(fd, from + written, length - written);
        if (!write_step(result, &written, &interruptions)) return -1;
    }
    return 0;
}
