/* io.h - the I/O seam: the calls the durable parts make to put bytes on a
 * disk, behind one table of function pointers, so a test can fail any one
 * of them (SQLite's I/O-error injection: count the calls of a scenario, then
 * run it again failing call N, for every N).
 *
 * Who goes through it: the queue log (log.c, recovery's tail repair, the
 * segment files), the directory lock (common/lock.c), the directory sync
 * (common/dir.c), the suggestion keeper's file, wallet key files and the
 * arbiter's verdict file. Reads stay direct: a failed read is reported by
 * the reader and changes nothing on disk.
 *
 * Contract of the table (kci_io_table):
 *   - each entry has the signature and the meaning of the POSIX call it is
 *     named after, errno included, except fallocate, which is
 *     posix_fallocate's (it returns the error number and leaves errno);
 *   - a replacement may fail any call with any error the call can return
 *     (EIO, ENOSPC, EINTR, ...), or make pwrite/write write fewer bytes than
 *     asked; it must leave the disk as the failed call would (a call that
 *     fails did nothing, except close, which closes the descriptor anyway);
 *   - malloc and calloc are the allocations on the write path whose failure
 *     must be survived (the log's start-up buffers, the scan's buffers);
 *     what they return is released with free().
 * Callers: call through kci_io (one load and one indirect call; the real
 * table is the default), and retry EINTR with the kci_io_retry_* helpers
 * below (bounded), never report it; close is not retried (Linux releases
 * the descriptor even when close says EINTR).
 *
 * Replacing the table is for tests: kci_io_install swaps it while no other
 * thread makes I/O through it (install before opening, restore after
 * closing); it is a plain pointer, not an atomic. */
#ifndef KCI_IO_H
#define KCI_IO_H

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

enum {
    /* EINTR retries of one call before the interruption is reported: a
     * signal storm that outlasts this is a problem to report, not to spin on. */
    KCI_IO_EINTR_RETRIES_MAX = 64,
};

typedef struct kci_io_table {
    int (*open)(const char *path, int flags, mode_t mode);
    int (*openat)(int directory_fd, const char *path, int flags, mode_t mode);
    int (*close)(int fd);
    ssize_t (*pwrite)(int fd, const void *bytes, size_t length, off_t offset);
    ssize_t (*write)(int fd, const void *bytes, size_t length);
    int (*fdatasync)(int fd);
    int (*fsync)(int fd);
    int (*ftruncate)(int fd, off_t length_bytes);
    int (*fallocate)(int fd, off_t offset, off_t length_bytes); /* returns an errno */
    int (*rename)(const char *from, const char *to);
    int (*unlink)(const char *path);
    void *(*malloc)(size_t size_bytes);
    void *(*calloc)(size_t count, size_t size_bytes);
} kci_io_table;

/* The table in use; never NULL. */
extern const kci_io_table *kci_io;
/* The real calls. */
extern const kci_io_table kci_io_real;

/* Makes table the one in use (NULL: the real one); returns the previous. */
const kci_io_table *kci_io_install(const kci_io_table *table);

/* The calls that may be retried after EINTR, retried at most
 * KCI_IO_EINTR_RETRIES_MAX times: the result of the last attempt. */
static inline bool kci_io_interrupted(int result, int retries)
{
    return result < 0 && errno == EINTR && retries < KCI_IO_EINTR_RETRIES_MAX;
}

static inline int kci_io_retry_open(const char *path, int flags, mode_t mode)
{
    int result = kci_io->open(path, flags, mode);
    for (int retries = 0; kci_io_interrupted(result, retries); retries++)
        result = kci_io->open(path, flags, mode);
    return result;
}

static inline int kci_io_retry_openat(int directory_fd, const char *path, int flags, mode_t mode)
{
    int result = kci_io->openat(directory_fd, path, flags, mode);
    for (int retries = 0; kci_io_interrupted(result, retries); retries++)
        result = kci_io->openat(directory_fd, path, flags, mode);
    return result;
}

static inline int kci_io_retry_fdatasync(int fd)
{
    int result = kci_io->fdatasync(fd);
    for (int retries = 0; kci_io_interrupted(result, retries); retries++)
        result = kci_io->fdatasync(fd);
    return result;
}

static inline int kci_io_retry_fsync(int fd)
{
    int result = kci_io->fsync(fd);
    for (int retries = 0; kci_io_interrupted(result, retries); retries++)
        result = kci_io->fsync(fd);
    return result;
}

static inline int kci_io_retry_ftruncate(int fd, off_t length_bytes)
{
    int result = kci_io->ftruncate(fd, length_bytes);
    for (int retries = 0; kci_io_interrupted(result, retries); retries++)
        result = kci_io->ftruncate(fd, length_bytes);
    return result;
}

/* posix_fallocate's convention: 0 or the error number. */
static inline int kci_io_retry_fallocate(int fd, off_t offset, off_t length_bytes)
{
    int result = 0;
    for (int attempt = 0; attempt <= KCI_IO_EINTR_RETRIES_MAX; attempt++)
        if ((result = kci_io->fallocate(fd, offset, length_bytes)) != EINTR) break;
    return result;
}

/* Writes all of bytes at offset (pwrite; a short write goes on, EINTR is
 * retried): 0, or -1 with errno set (ENOSPC when a write wrote nothing). */
int kci_io_pwrite_all(int fd, const void *bytes, size_t length, off_t offset);
/* The same with write, at the file position. */
int kci_io_write_all(int fd, const void *bytes, size_t length);

#endif
