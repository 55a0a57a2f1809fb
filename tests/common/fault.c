/* fault.c - the counting, failing I/O table for the fault tests (fault.h).
 *
 * One mutex guards the counters and the record of unsynced writes: the
 * log's writer thread and the test's thread both make calls. A failed call
 * does nothing (close closes anyway, as Linux's does); a short write writes
 * the first half for real. */
#include "fault.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/io.h"

enum {
    DESCRIPTORS_MAX = 1024, /* descriptors whose path is remembered */
    DIRTY_MAX = 1 << 16,    /* unsynced write ranges remembered */
    CREATED_MAX = 256,      /* files created whose directory was not synced yet */
    ZERO_BYTES = 64 * 1024,
};

typedef struct dirty_range {
    char path[PATH_MAX];
    off_t offset;
    size_t length;
} dirty_range;

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static uint64_t call_count, armed_call;
static int armed_error;
static bool fired;
static fault_call fired_kind;
static int fired_error;
static fault_call kinds[FAULT_CALLS_MAX];
static char *descriptor_paths[DESCRIPTORS_MAX];
static dirty_range *dirty;
static size_t dirty_count;
static char created[CREATED_MAX][PATH_MAX];
static size_t created_count;

static const char *const call_names[FAULT_CALL_KINDS] = {
    "open",      "openat",    "close",  "pwrite", "write",  "fdatasync", "fsync",
    "ftruncate", "fallocate", "rename", "unlink", "malloc", "calloc"};

const char *fault_call_name(fault_call kind)
{
    return kind < FAULT_CALL_KINDS ? call_names[kind] : "?";
}

const char *fault_error_name(int error)
{
    switch (error) {
    case 0: return "none";
    case FAULT_SHORT_WRITE: return "short write";
    case EIO: return "EIO";
    case ENOSPC: return "ENOSPC";
    case EINTR: return "EINTR";
    case ENOMEM: return "ENOMEM";
    default: return "other";
    }
}

size_t fault_errors(fault_call kind, int errors[FAULT_ERRORS_MAX])
{
    size_t count = 0;
    switch (kind) {
    case FAULT_PWRITE:
    case FAULT_WRITE: errors[count++] = FAULT_SHORT_WRITE; /* fall through */
    case FAULT_OPEN:
    case FAULT_OPENAT:
    case FAULT_FDATASYNC:
    case FAULT_FSYNC:
    case FAULT_FALLOCATE: errors[count++] = ENOSPC; /* fall through */
    case FAULT_CLOSE:
    case FAULT_FTRUNCATE:
        errors[count++] = EIO;
        errors[count++] = EINTR;
        break;
    case FAULT_RENAME:
        errors[count++] = EIO;
        errors[count++] = ENOSPC;
        break;
    case FAULT_UNLINK: errors[count++] = EIO; break;
    case FAULT_MALLOC:
    case FAULT_CALLOC: errors[count++] = ENOMEM; break;
    case FAULT_CALL_KINDS: break;
    }
    return count;
}

/* Counts a call; the error to fail it with, or 0. */
static int next_call(fault_call kind)
{
    pthread_mutex_lock(&lock);
    uint64_t number = ++call_count;
    if (number <= FAULT_CALLS_MAX) kinds[number - 1] = kind;
    int error = 0;
    if (number == armed_call) {
        int allowed[FAULT_ERRORS_MAX];
        size_t count = fault_errors(kind, allowed);
        error = kind == FAULT_MALLOC || kind == FAULT_CALLOC ? ENOMEM : EIO;
        for (size_t index = 0; index < count; index++)
            if (allowed[index] == armed_error) error = armed_error;
        fired = true;
        fired_kind = kind;
        fired_error = error;
    }
    pthread_mutex_unlock(&lock);
    return error;
}

static void remember_path(int fd, const char *path)
{
    if (fd < 0 || fd >= DESCRIPTORS_MAX) return;
    pthread_mutex_lock(&lock);
    free(descriptor_paths[fd]);
    descriptor_paths[fd] = strdup(path);
    pthread_mutex_unlock(&lock);
}

static void note_written(int fd, off_t offset, size_t length)
{
    pthread_mutex_lock(&lock);
    if (fd >= 0 && fd < DESCRIPTORS_MAX && descriptor_paths[fd] != NULL && length > 0) {
        if (dirty_count == DIRTY_MAX) {
            fprintf(stderr, "fault: more than %d unsynced writes\n", DIRTY_MAX);
            abort(); /* the test's own bound, not the code under test */
        }
        dirty_range *range = &dirty[dirty_count++];
        snprintf(range->path, sizeof range->path, "%s", descriptor_paths[fd]);
        range->offset = offset;
        range->length = length;
    }
    pthread_mutex_unlock(&lock);
}

static void note_synced(int fd)
{
    pthread_mutex_lock(&lock);
    const char *path = fd >= 0 && fd < DESCRIPTORS_MAX ? descriptor_paths[fd] : NULL;
    size_t kept = 0;
    for (size_t index = 0; path != NULL && index < dirty_count; index++)
        if (strcmp(dirty[index].path, path) != 0) dirty[kept++] = dirty[index];
    if (path != NULL) dirty_count = kept;
    pthread_mutex_unlock(&lock);
}

static int fail_with(int error)
{
    errno = error;
    return -1;
}

/* A file that open created: its name is durable once its directory is synced. */
static void note_created(const char *path)
{
    pthread_mutex_lock(&lock);
    if (created_count == CREATED_MAX) {
        fprintf(stderr, "fault: more than %d files created\n", CREATED_MAX);
        abort(); /* the test's own bound, not the code under test */
    }
    snprintf(created[created_count++], PATH_MAX, "%s", path);
    pthread_mutex_unlock(&lock);
}

/* Whether path's directory (dir.c's reading: up to the last slash) is directory. */
static bool is_in(const char *path, const char *directory)
{
    const char *slash = strrchr(path, '/');
    size_t length = strlen(directory);
    return slash != NULL && (size_t)(slash - path) == length &&
           strncmp(path, directory, length) == 0;
}

/* fd was synced: its unsynced writes are safe, and so are the names of the
 * files created in it if it is a directory. */
static void note_directory_synced(int fd)
{
    pthread_mutex_lock(&lock);
    const char *directory = fd >= 0 && fd < DESCRIPTORS_MAX ? descriptor_paths[fd] : NULL;
    size_t kept = 0;
    for (size_t index = 0; directory != NULL && index < created_count; index++)
        if (!is_in(created[index], directory)) memmove(created[kept++], created[index], PATH_MAX);
    if (directory != NULL) created_count = kept;
    pthread_mutex_unlock(&lock);
}

static int fault_open(const char *path, int flags, mode_t mode)
{
    int error = next_call(FAULT_OPEN);
    if (error != 0) return fail_with(error);
    bool existed = (flags & O_CREAT) == 0 || access(path, F_OK) == 0;
    int fd = kci_io_real.open(path, flags, mode);
    remember_path(fd, path);
    if (fd >= 0 && !existed) note_created(path);
    return fd;
}

static int fault_openat(int directory_fd, const char *path, int flags, mode_t mode)
{
    int error = next_call(FAULT_OPENAT);
    return error != 0 ? fail_with(error) : kci_io_real.openat(directory_fd, path, flags, mode);
}

static int fault_close(int fd)
{
    int error = next_call(FAULT_CLOSE);
    int result = kci_io_real.close(fd);
    return error != 0 ? fail_with(error) : result;
}

static ssize_t fault_pwrite(int fd, const void *bytes, size_t length, off_t offset)
{
    int error = next_call(FAULT_PWRITE);
    if (error > 0) return fail_with(error);
    if (error == FAULT_SHORT_WRITE && length > 1) length /= 2;
    ssize_t result = kci_io_real.pwrite(fd, bytes, length, offset);
    if (result > 0) note_written(fd, offset, (size_t)result);
    return result;
}

static ssize_t fault_write(int fd, const void *bytes, size_t length)
{
    int error = next_call(FAULT_WRITE);
    if (error > 0) return fail_with(error);
    if (error == FAULT_SHORT_WRITE && length > 1) length /= 2;
    ssize_t result = kci_io_real.write(fd, bytes, length);
    off_t end = result > 0 ? lseek(fd, 0, SEEK_CUR) : -1;
    if (end >= result && result > 0) note_written(fd, end - result, (size_t)result);
    return result;
}

static int fault_fdatasync(int fd)
{
    int error = next_call(FAULT_FDATASYNC);
    if (error != 0) return fail_with(error);
    int result = kci_io_real.fdatasync(fd);
    if (result == 0) note_synced(fd);
    return result;
}

static int fault_fsync(int fd)
{
    int error = next_call(FAULT_FSYNC);
    if (error != 0) return fail_with(error);
    int result = kci_io_real.fsync(fd);
    if (result == 0) note_synced(fd);
    if (result == 0) note_directory_synced(fd);
    return result;
}

static int fault_ftruncate(int fd, off_t length_bytes)
{
    int error = next_call(FAULT_FTRUNCATE);
    return error != 0 ? fail_with(error) : kci_io_real.ftruncate(fd, length_bytes);
}

static int fault_fallocate(int fd, off_t offset, off_t length_bytes)
{
    int error = next_call(FAULT_FALLOCATE);
    return error != 0 ? error : kci_io_real.fallocate(fd, offset, length_bytes);
}

static int fault_rename(const char *from, const char *to)
{
    int error = next_call(FAULT_RENAME);
    return error != 0 ? fail_with(error) : kci_io_real.rename(from, to);
}

static int fault_unlink(const char *path)
{
    int error = next_call(FAULT_UNLINK);
    return error != 0 ? fail_with(error) : kci_io_real.unlink(path);
}

static void *fault_malloc(size_t size_bytes)
{
    if (next_call(FAULT_MALLOC) != 0) {
        errno = ENOMEM;
        return NULL;
    }
    return kci_io_real.malloc(size_bytes);
}

static void *fault_calloc(size_t count, size_t size_bytes)
{
    if (next_call(FAULT_CALLOC) != 0) {
        errno = ENOMEM;
        return NULL;
    }
    return kci_io_real.calloc(count, size_bytes);
}

static const kci_io_table fault_table = {
    .open = fault_open,
    .openat = fault_openat,
    .close = fault_close,
    .pwrite = fault_pwrite,
    .write = fault_write,
    .fdatasync = fault_fdatasync,
    .fsync = fault_fsync,
    .ftruncate = fault_ftruncate,
    .fallocate = fault_fallocate,
    .rename = fault_rename,
    .unlink = fault_unlink,
    .malloc = fault_malloc,
    .calloc = fault_calloc,
};

void fault_install(void)
{
    pthread_mutex_lock(&lock);
    call_count = armed_call = 0;
    armed_error = 0;
    fired = false;
    if (dirty == NULL) dirty = calloc(DIRTY_MAX, sizeof *dirty);
    dirty_count = 0;
    created_count = 0;
    for (int fd = 0; fd < DESCRIPTORS_MAX; fd++) {
        free(descriptor_paths[fd]);
        descriptor_paths[fd] = NULL;
    }
    pthread_mutex_unlock(&lock);
    if (dirty == NULL) abort();
    kci_io_install(&fault_table);
}

void fault_remove(void)
{
    kci_io_install(NULL);
}

void fault_arm(uint64_t call_number, int error)
{
    pthread_mutex_lock(&lock);
    armed_call = call_number;
    armed_error = error;
    pthread_mutex_unlock(&lock);
}

uint64_t fault_call_count(void)
{
    pthread_mutex_lock(&lock);
    uint64_t count = call_count;
    pthread_mutex_unlock(&lock);
    return count;
}

fault_call fault_call_kind(uint64_t call_number)
{
    pthread_mutex_lock(&lock);
    fault_call kind =
        call_number >= 1 && call_number <= call_count && call_number <= FAULT_CALLS_MAX
            ? kinds[call_number - 1]
            : FAULT_CALL_KINDS;
    pthread_mutex_unlock(&lock);
    return kind;
}

bool fault_fired(fault_call *kind, int *error)
{
    pthread_mutex_lock(&lock);
    bool result = fired;
    if (kind != NULL) *kind = fired_kind;
    if (error != NULL) *error = fired_error;
    pthread_mutex_unlock(&lock);
    return result;
}

/* Zeroes [offset, offset + length) of path, or cuts the file there when the
 * range reaches its end. */
static void lose_range(const dirty_range *range)
{
    static const char zeros[ZERO_BYTES];
    int fd = open(range->path, O_WRONLY | O_CLOEXEC);
    struct stat status;
    if (fd < 0) return; /* removed since: nothing to lose */
    if (fstat(fd, &status) == 0 && range->offset < status.st_size) {
        off_t end = range->offset + (off_t)range->length;
        if (end >= status.st_size) {
            if (ftruncate(fd, range->offset) != 0) abort();
        } else {
            for (off_t at = range->offset; at < end;) {
                size_t chunk =
                    (size_t)(end - at) < sizeof zeros ? (size_t)(end - at) : sizeof zeros;
                ssize_t wrote = pwrite(fd, zeros, chunk, at);
                if (wrote <= 0) abort();
                at += wrote;
            }
        }
    }
    close(fd);
}

void fault_crash(void)
{
    pthread_mutex_lock(&lock);
    /* Newest first: a range cut off at the end must not be grown back. */
    for (size_t index = dirty_count; index > 0; index--)
        lose_range(&dirty[index - 1]);
    dirty_count = 0;
    for (size_t index = 0; index < created_count; index++)
        unlink(created[index]); /* gone already, when the component removed it */
    created_count = 0;
    pthread_mutex_unlock(&lock);
}

int fault_open_descriptors(void)
{
    DIR *directory = opendir("/proc/self/fd");
    if (directory == NULL) return -1;
    int count = 0;
    while (readdir(directory) != NULL)
        count++;
    closedir(directory);
    return count;
}

void fault_sweep(fault_scenario scenario, void *context, uint64_t stride, fault_sweep_stats *stats)
{
    *stats = (fault_sweep_stats){.stride = stride > 0 ? stride : 1};
    struct timespec start, end;
    clock_gettime(CLOCK_MONOTONIC, &start);
    scenario(context, 0, 0);
    stats->calls_counted = fault_call_count();
    static fault_call counted[FAULT_CALLS_MAX];
    uint64_t known =
        stats->calls_counted < FAULT_CALLS_MAX ? stats->calls_counted : FAULT_CALLS_MAX;
    for (uint64_t number = 1; number <= known; number++)
        counted[number - 1] = fault_call_kind(number);
    /* Past the counted calls a run may still make more (threads); bounded. */
    uint64_t last = 2 * known + FAULT_ERRORS_MAX;
    for (uint64_t number = 1; number <= last; number += stats->stride) {
        int errors[FAULT_ERRORS_MAX] = {EIO};
        size_t count = number <= known ? fault_errors(counted[number - 1], errors) : 1;
        bool reached = false;
        for (size_t index = 0; index < count; index++) {
            scenario(context, number, errors[index]);
            stats->runs++;
            bool did_fire = fault_fired(NULL, NULL);
            stats->fired += did_fire;
            reached = reached || did_fire;
        }
        if (!reached && number > known) break;
    }
    clock_gettime(CLOCK_MONOTONIC, &end);
    stats->seconds =
        (double)(end.tv_sec - start.tv_sec) + (double)(end.tv_nsec - start.tv_nsec) / 1e9;
}

void fault_sweep_print(const char *name, const fault_sweep_stats *stats)
{
    printf("# %s: %llu calls counted, %llu faulty runs (%llu fired), N every %llu, %.1f s\n", name,
           (unsigned long long)stats->calls_counted, (unsigned long long)stats->runs,
           (unsigned long long)stats->fired, (unsigned long long)stats->stride, stats->seconds);
}
