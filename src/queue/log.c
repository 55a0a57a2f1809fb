/* log.c - appends, group commit and roll-over (see log.h).
 *
 * Two batches, each a byte buffer of encoded records and an array of their
 * completions. Appenders fill the active batch under the lock; the writer
 * swaps it for the empty one and works on the full one without the lock, so
 * appenders wait only when the active batch fills up while the writer is
 * busy (the named bound: KCI_LOG_BATCH_BYTES / KCI_LOG_BATCH_RECORDS_MAX).
 * Nothing is allocated per append.
 *
 * The writer owns the current segment (fd, number, offset). Positions are
 * assigned by the writer, not the appender, so a failed batch leaves no hole:
 * the next batch is written where the failed one started. A record that does
 * not fit in the rest of the segment starts a new one: the old segment is
 * synced, cut to its used length (so its end is not a run of preallocated
 * zeros) and the new file is created, preallocated, and its directory entry
 * synced before any record in it is acknowledged.
 *
 * Every call that changes the files (open, pwrite, fdatasync, ftruncate,
 * fallocate, unlink, close) and the start-up allocations go through the I/O
 * seam (common/io.h), so tests/queue/fault_test.c can fail each in turn. */
#include "log.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/dir.h"
#include "common/io.h"
#include "common/lock.h"
#include "common/log.h"
#include "queue/metrics.h"
#include "store_js.h"

enum {
    BROKEN_REASON_BYTES = 256,
    PATH_BYTES = PATH_MAX,
    PREALLOCATE_FIRST_BYTES = 1024 * 1024, /* a segment's first step (preallocate) */
};

typedef struct completion {
    kci_queue_log_done done;
    void *context;
    uint32_t size;
    kci_position position; /* set by the writer */
} completion;

typedef struct finished {
    kci_queue_log_done done;
    void *context;
    kc_err status;
    int error_number; /* errno of a failure, restored for the callback */
    kci_position position;
} finished;

enum {
    FINISHED_RING_CAPACITY = 2 * KCI_LOG_BATCH_RECORDS_MAX,
    COMPLETER_CHUNK = 256, /* callbacks run per lock round */
};

typedef struct batch {
    uint8_t *bytes;
    size_t used;
    completion *completions;
    uint32_t count;
} batch;

struct kci_queue_log {
    kci_queue_log_config config;
    char directory[PATH_BYTES];
    kci_directory_lock lock_held; /* the directory's, for the log's life */

    pthread_mutex_t lock; /* the fields up to the writer's own */
    pthread_cond_t work;  /* the writer waits for records */
    pthread_cond_t space; /* appenders wait for an empty batch */
    batch batches[2];
    int active; /* index of the batch appenders fill */
    bool closing;
    bool broken;
    char broken_reason[BROKEN_REASON_BYTES];
    kci_queue_log_stats stats;

    /* Completed appends, handed from the writer to the completer thread so
     * the writer can start the next write and sync while the callbacks
     * (acknowledgements on the network) run. */
    pthread_mutex_t finished_lock;
    pthread_cond_t finished_work;
    pthread_cond_t finished_space;
    finished *finished_ring; /* FINISHED_RING_CAPACITY */
    uint32_t finished_first, finished_count;
    bool writer_done;
    pthread_t completer;
    bool completer_started;

    /* The writer's own (read by stats under the lock as a snapshot). */
    pthread_t writer;
    bool writer_started;
    int segment_fd;
    uint32_t segment_number;
    uint64_t segment_offset;
    uint64_t preallocated_bytes; /* of the current segment; 0: none (or a failed try) */

    kci_queue_js *js; /* storage jetstream: everything above unused */
};

bool kci_durability_parse(const char *text, kci_durability *out)
{
    if (strcmp(text, "batch") == 0)
        *out = KCI_DURABILITY_BATCH;
    else if (strcmp(text, "always") == 0)
        *out = KCI_DURABILITY_ALWAYS;
    else if (strcmp(text, "none") == 0)
        *out = KCI_DURABILITY_NONE;
    else
        return false;
    return true;
}

const char *kci_durability_name(kci_durability durability)
{
    switch (durability) {
    case KCI_DURABILITY_ALWAYS: return "always";
    case KCI_DURABILITY_NONE: return "none";
    case KCI_DURABILITY_BATCH: break;
    }
    return "batch";
}

/* ---- segment files (writer thread) ----------------------------------------- */

/* A segment is preallocated as it fills, never all at once: the first step
 * is PREALLOCATE_FIRST_BYTES, each later one doubles what it holds, up to
 * segment_bytes. A near-empty queue then costs about 1 MiB on disk, not a
 * 64 MiB file to copy (issue 18), and a busy one still allocates a segment
 * in a handful of calls, not at every write. */
static void preallocate(kci_queue_log *log, uint64_t needed_end)
{
    if (!log->config.preallocate) return;
    if (log->preallocated_bytes > 0 && needed_end <= log->preallocated_bytes) return;
    uint64_t target = log->preallocated_bytes * 2;
    if (target < PREALLOCATE_FIRST_BYTES) target = PREALLOCATE_FIRST_BYTES;
    if (target < needed_end) target = needed_end;
    if (target > log->config.segment_bytes) target = log->config.segment_bytes;
    int result = kci_io_retry_fallocate(log->segment_fd, 0, (off_t)target);
    if (result == 0) {
        log->preallocated_bytes = target;
        return;
    }
    /* Not fatal: the writes themselves say whether there is room. */
    kci_debug("queue: cannot preallocate segment %u: %s", log->segment_number, strerror(result));
}

static kc_err segment_open(kci_queue_log *log, uint32_t number, bool create)
{
    /* Segments are numbered from 1 and only ever follow each other. */
    assert(number >= 1 && (log->segment_fd < 0 || number == log->segment_number + 1));
    char path[PATH_MAX];
    if (!kci_segment_path(path, log->directory, number)) return KC_ERR_CONFIG;
    int fd = kci_io_retry_open(path, O_RDWR | O_CLOEXEC | (create ? O_CREAT | O_EXCL : 0), 0644);
    if (fd < 0) {
        kci_error("queue: cannot %s %s: %s", create ? "create" : "open", path, strerror(errno));
        return KC_ERR_IO;
    }
    if (log->segment_fd >= 0) kci_io->close(log->segment_fd);
    log->segment_fd = fd;
    log->segment_number = number;
    log->segment_offset = 0;
    log->preallocated_bytes = 0;
    preallocate(log, 0);
    int sync_error = create ? kci_directory_sync(log->directory) : 0;
    if (sync_error != 0) {
        kci_error("queue: cannot sync directory %s: %s", log->directory, strerror(sync_error));
        return KC_ERR_IO;
    }
    return KC_OK;
}

static kc_err sync_segment(kci_queue_log *log)
{
    if (log->config.durability == KCI_DURABILITY_NONE) return KC_OK;
    int64_t start_ns = kci_metrics_now_ns();
    int result = kci_io_retry_fdatasync(log->segment_fd);
    int saved = errno;
    kci_histogram_observe_since(&kci_persister_metric_values.sync_duration, start_ns);
    kci_counter_inc(&kci_persister_metric_values.syncs);
    pthread_mutex_lock(&log->lock);
    log->stats.sync_count++;
    pthread_mutex_unlock(&log->lock);
    errno = saved;
    return result == 0 ? KC_OK : KC_ERR_IO;
}

/* The current segment is full: sync it, cut it to its data, start the next. */
static kc_err roll(kci_queue_log *log)
{
    assert(log->segment_fd >= 0 && log->segment_offset <= log->config.segment_bytes);
    if (sync_segment(log) != KC_OK) return KC_ERR_IO;
    if (kci_io_retry_ftruncate(log->segment_fd, (off_t)log->segment_offset) != 0)
        kci_warn("queue: cannot cut segment %u to %llu bytes: %s", log->segment_number,
                 (unsigned long long)log->segment_offset, strerror(errno));
    return segment_open(log, log->segment_number + 1, true);
}

/* ---- the writer ----------------------------------------------------------- */

static void mark_broken(kci_queue_log *log, const char *what, int error_number)
{
    pthread_mutex_lock(&log->lock);
    log->broken = true;
    snprintf(log->broken_reason, sizeof log->broken_reason, "%s failed on segment %u: %s", what,
             log->segment_number, strerror(error_number));
    pthread_mutex_unlock(&log->lock);
    kci_error("queue: %s; refusing appends until a restart re-checks the log", log->broken_reason);
}

/* Writes completions [first, *next) (all in the current segment) as one run. */
static kc_err write_run(kci_queue_log *log, const batch *full, uint32_t first, uint32_t *next,
                        size_t *byte_cursor)
{
    uint64_t start = log->segment_offset;
    size_t run_bytes = 0;
    uint32_t index = first;
    assert(first < full->count && *byte_cursor <= full->used);
    bool one_each = log->config.durability == KCI_DURABILITY_ALWAYS;
    while (index < full->count) {
        completion *entry = &full->completions[index];
        if (start + run_bytes + entry->size > log->config.segment_bytes && start + run_bytes > 0)
            break;
        /* A record is whole, and begins where the one before it ends. */
        assert(entry->size >= KCI_RECORD_HEADER_BYTES && entry->size <= KCI_RECORD_BYTES_MAX);
        assert(start + run_bytes <= UINT32_MAX);
        entry->position = kci_position_make(log->segment_number, (uint32_t)(start + run_bytes));
        run_bytes += entry->size;
        index++;
        if (one_each) break;
    }
    *next = index;
    if (run_bytes == 0) return KC_OK;
    if (start + run_bytes > log->preallocated_bytes) preallocate(log, start + run_bytes);
    kc_err err =
        kci_io_pwrite_all(log->segment_fd, full->bytes + *byte_cursor, run_bytes, (off_t)start) == 0
            ? KC_OK
            : KC_ERR_IO;
    if (err != KC_OK) {
        int saved = errno;
        /* Nothing of a failed run may look like data: cut it off. */
        if (kci_io_retry_ftruncate(log->segment_fd, (off_t)start) != 0)
            kci_warn("queue: cannot cut segment %u back: %s", log->segment_number, strerror(errno));
        log->preallocated_bytes = 0;
        errno = saved;
        return err;
    }
    log->segment_offset = start + run_bytes;
    *byte_cursor += run_bytes;
    assert(*byte_cursor <= full->used);
    return KC_OK;
}

/* Hands the batch's outcomes to the completer, in log order. */
static void complete(kci_queue_log *log, batch *full, uint32_t ok_count, kc_err failure)
{
    int error_number = errno;
    /* What is acknowledged is a prefix of the batch, in log order. */
    assert(ok_count <= full->count && (ok_count == full->count || failure != KC_OK));
    pthread_mutex_lock(&log->finished_lock);
    for (uint32_t index = 0; index < full->count; index++) {
        while (log->finished_count == FINISHED_RING_CAPACITY)
            pthread_cond_wait(&log->finished_space, &log->finished_lock);
        completion *entry = &full->completions[index];
        bool ok = index < ok_count;
        uint32_t slot = (log->finished_first + log->finished_count) % FINISHED_RING_CAPACITY;
        log->finished_ring[slot] = (finished){.done = entry->done,
                                              .context = entry->context,
                                              .status = ok ? KC_OK : failure,
                                              .error_number = ok ? 0 : error_number,
                                              .position = ok ? entry->position : 0};
        log->finished_count++;
    }
    pthread_cond_signal(&log->finished_work);
    pthread_mutex_unlock(&log->finished_lock);
    pthread_mutex_lock(&log->lock);
    log->stats.batch_count++;
    log->stats.append_count += ok_count;
    log->stats.append_failed_count += full->count - ok_count;
    pthread_mutex_unlock(&log->lock);
    kci_counter_add(&kci_persister_metric_values.appends, ok_count);
    kci_counter_add(&kci_persister_metric_values.append_failures, full->count - ok_count);
}

/* The completer: runs the done callbacks, in order, until the writer has
 * stopped and every outcome is delivered. */
static void *completer_main(void *argument)
{
    kci_queue_log *log = argument;
    finished chunk[COMPLETER_CHUNK];
    pthread_mutex_lock(&log->finished_lock);
    for (;;) {
        while (log->finished_count == 0 && !log->writer_done)
            pthread_cond_wait(&log->finished_work, &log->finished_lock);
        if (log->finished_count == 0) break;
        uint32_t taken = 0;
        while (taken < COMPLETER_CHUNK && log->finished_count > 0) {
            chunk[taken++] = log->finished_ring[log->finished_first];
            log->finished_first = (log->finished_first + 1) % FINISHED_RING_CAPACITY;
            log->finished_count--;
        }
        pthread_cond_signal(&log->finished_space);
        pthread_mutex_unlock(&log->finished_lock);
        for (uint32_t index = 0; index < taken; index++) {
            errno = chunk[index].error_number;
            chunk[index].done(chunk[index].context, chunk[index].status, chunk[index].position);
        }
        if (log->config.completions_end != NULL)
            log->config.completions_end(log->config.completions_end_context);
        pthread_mutex_lock(&log->finished_lock);
    }
    pthread_mutex_unlock(&log->finished_lock);
    return NULL;
}

static bool is_broken(kci_queue_log *log)
{
    pthread_mutex_lock(&log->lock);
    bool broken = log->broken;
    pthread_mutex_unlock(&log->lock);
    return broken;
}

/* Writes, syncs and completes one batch. Once the log is broken (a failed
 * sync or roll-over) nothing more is written, not even the batch appended
 * before that was known: a later sync that works does not bring back what
 * the failed one lost, and records written after a hole, or in a segment
 * whose name is not durable, would be acknowledged and then lost. */
static void process(kci_queue_log *log, batch *full)
{
    if (is_broken(log)) {
        errno = EIO;
        complete(log, full, 0, KC_ERR_IO);
        return;
    }
    uint32_t index = 0, durable_count = 0;
    size_t byte_cursor = 0;
    kc_err failure = KC_OK;
    bool always = log->config.durability == KCI_DURABILITY_ALWAYS;
    assert(full->count > 0 && full->count <= KCI_LOG_BATCH_RECORDS_MAX);
    while (index < full->count && failure == KC_OK) {
        uint32_t next = index;
        failure = write_run(log, full, index, &next, &byte_cursor);
        if (failure != KC_OK) {
            kci_warn("queue: write to segment %u failed: %s; %u appends fail", log->segment_number,
                     strerror(errno), full->count - index);
            break;
        }
        if (next == index) { /* the next record does not fit: a new segment */
            if ((failure = roll(log)) != KC_OK) {
                mark_broken(log, "starting a new segment", errno);
                break;
            }
            durable_count = index;
            continue;
        }
        index = next;
        if (always) {
            if ((failure = sync_segment(log)) != KC_OK) {
                mark_broken(log, "fdatasync", errno);
                break;
            }
            durable_count = index;
        }
    }
    if (failure == KC_OK && !always) {
        if ((failure = sync_segment(log)) != KC_OK)
            mark_broken(log, "fdatasync", errno);
        else
            durable_count = index;
    }
    assert(durable_count <= index && (failure != KC_OK || byte_cursor == full->used));
    pthread_mutex_lock(&log->lock);
    log->stats.bytes_written += byte_cursor;
    kci_counter_add(&kci_persister_metric_values.appended_bytes, byte_cursor);
    pthread_mutex_unlock(&log->lock);
    complete(log, full, failure == KC_OK ? full->count : durable_count, failure);
}

static void *writer_main(void *argument)
{
    kci_queue_log *log = argument;
    pthread_mutex_lock(&log->lock);
    for (;;) {
        batch *active = &log->batches[log->active];
        while (active->count == 0 && !log->closing)
            pthread_cond_wait(&log->work, &log->lock);
        if (active->count == 0) break;
        log->active = 1 - log->active;
        assert(log->batches[log->active].count == 0);
        pthread_cond_broadcast(&log->space);
        pthread_mutex_unlock(&log->lock);
        process(log, active);
        active->used = 0;
        active->count = 0;
        pthread_mutex_lock(&log->lock);
        log->stats.segment_current = log->segment_number;
        log->stats.segment_offset = log->segment_offset;
        pthread_cond_broadcast(&log->space);
    }
    pthread_mutex_unlock(&log->lock);
    return NULL;
}

/* ---- API --------------------------------------------------------------------- */

kc_err kci_queue_log_append(kci_queue_log *log, const kci_record *record, kci_queue_log_done done,
                            void *context)
{
    assert(done != NULL);
    if (log->js != NULL) return kci_queue_js_append(log->js, record, done, context);
    size_t size = kci_record_size(record);
    if (size == 0) return KC_ERR_TOO_LARGE;
    assert(size <= KCI_LOG_BATCH_BYTES);
    pthread_mutex_lock(&log->lock);
    for (;;) {
        if (log->broken || log->closing) {
            kc_err err = log->broken ? KC_ERR_IO : KC_ERR_CLOSED;
            pthread_mutex_unlock(&log->lock);
            return err;
        }
        batch *active = &log->batches[log->active];
        if (active->used + size <= KCI_LOG_BATCH_BYTES && active->count < KCI_LOG_BATCH_RECORDS_MAX)
            break;
        pthread_cond_wait(&log->space, &log->lock);
    }
    batch *active = &log->batches[log->active];
    assert(active->used + size <= KCI_LOG_BATCH_BYTES);
    kci_record_encode(record, active->bytes + active->used);
    active->used += size;
    active->completions[active->count++] =
        (completion){.done = done, .context = context, .size = (uint32_t)size};
    if (active->count == 1) pthread_cond_signal(&log->work);
    pthread_mutex_unlock(&log->lock);
    return KC_OK;
}

kc_err kci_queue_log_read(kci_queue_log *log, kci_position position, uint8_t *buffer,
                          kci_record *out)
{
    if (log->js != NULL) return kci_queue_js_read(log->js, position, buffer, out);
    return kci_record_read(log->directory, position, buffer, out);
}

void kci_queue_log_stats_get(kci_queue_log *log, kci_queue_log_stats *out)
{
    if (log->js != NULL) {
        kci_queue_js_stats_get(log->js, out);
        return;
    }
    pthread_mutex_lock(&log->lock);
    *out = log->stats;
    out->broken = log->broken;
    pthread_mutex_unlock(&log->lock);
}

const char *kci_queue_log_directory(const kci_queue_log *log)
{
    return log->directory;
}

uint32_t kci_queue_log_remove_segments_below(kci_queue_log *log, uint32_t below)
{
    if (log->js != NULL) return 0; /* the stream's max age removes its front */
    pthread_mutex_lock(&log->lock);
    uint32_t current = log->stats.segment_current;
    pthread_mutex_unlock(&log->lock);
    if (below > current) below = current;
    uint32_t *numbers = NULL;
    size_t count = 0;
    char error[256];
    if (kci_segment_list(log->directory, &numbers, &count, error, sizeof error) != KC_OK) return 0;
    uint32_t removed = 0;
    for (size_t index = 0; index < count && numbers[index] < below; index++) {
        char path[PATH_MAX];
        kci_segment_path(path, log->directory, numbers[index]);
        /* Only a prefix: removing a later segment after a failure would
         * leave a gap, which recovery reports as lost records. */
        if (kci_io->unlink(path) != 0) {
            kci_warn("queue: cannot remove %s: %s; the segments after it are kept too", path,
                     strerror(errno));
            break;
        }
        removed++;
    }
    free(numbers);
    if (removed > 0) kci_directory_sync(log->directory);
    return removed;
}

static kci_queue_log *log_new(const kci_queue_log_config *config)
{
    kci_queue_log *log = kci_io->calloc(1, sizeof *log);
    if (log == NULL) return NULL;
    log->config = *config;
    if (log->config.segment_bytes == 0) log->config.segment_bytes = KCI_SEGMENT_BYTES_DEFAULT;
    snprintf(log->directory, sizeof log->directory, "%s", config->directory);
    log->config.directory = log->directory;
    log->lock_held = (kci_directory_lock){.directory_fd = -1, .file_fd = -1};
    log->segment_fd = -1;
    pthread_mutex_init(&log->lock, NULL);
    pthread_cond_init(&log->work, NULL);
    pthread_cond_init(&log->space, NULL);
    pthread_mutex_init(&log->finished_lock, NULL);
    pthread_cond_init(&log->finished_work, NULL);
    pthread_cond_init(&log->finished_space, NULL);
    log->finished_ring = kci_io->calloc(FINISHED_RING_CAPACITY, sizeof *log->finished_ring);
    if (log->finished_ring == NULL) {
        kci_queue_log_close(log);
        return NULL;
    }
    for (int index = 0; index < 2; index++) {
        log->batches[index].bytes = kci_io->malloc(KCI_LOG_BATCH_BYTES);
        log->batches[index].completions =
            kci_io->calloc(KCI_LOG_BATCH_RECORDS_MAX, sizeof(completion));
        if (log->batches[index].bytes == NULL || log->batches[index].completions == NULL) {
            kci_queue_log_close(log);
            return NULL;
        }
    }
    return log;
}

static kc_err open_tail(kci_queue_log *log, const kci_scan_report *report)
{
    if (report->segment_count == 0) return segment_open(log, 1, true);
    kc_err err = segment_open(log, report->segment_last, false);
    if (err != KC_OK) return err;
    /* Whatever follows the last valid record was never acknowledged: cut it
     * so no stale bytes ever sit behind new records, then preallocate again. */
    if (kci_io_retry_ftruncate(log->segment_fd, (off_t)report->end_offset) != 0) return KC_ERR_IO;
    log->segment_offset = report->end_offset;
    log->preallocated_bytes = 0;
    preallocate(log, report->end_offset);
    return KC_OK;
}

/* What the scan found at the end and in the numbering, said once, here,
 * where the tail is cut: a torn tail is a note (nothing acknowledged was
 * lost); a damaged whole record may have been acknowledged, so it is an
 * error, as is a gap in the segment numbers. */
static void log_scan_findings(const kci_queue_log *log, const kci_scan_report *report)
{
    const char *cut = report->torn_repaired ? "cut off" : "left as is";
    if (report->torn_tail)
        kci_warn("queue: %s: segment %u: torn tail after the last sync: never acknowledged "
                 "(an unfinished write at offset %" PRIu64 ", %" PRIu64 " bytes); %s",
                 log->directory, report->segment_last, report->torn_offset, report->torn_bytes,
                 cut);
    if (report->tail_damaged)
        kci_error("queue: %s: a record that may have been acknowledged is damaged: %" PRIu64
                  " bytes at segment %u offset %" PRIu64
                  " (a whole record that fails its checks, at the end of the log); %s, not served",
                  log->directory, report->torn_bytes, report->segment_last, report->torn_offset,
                  cut);
    if (report->segments_missing > 0)
        kci_error("queue: %s: %u segments are missing from the middle of the log, from number %u "
                  "on: the records in them are lost",
                  log->directory, report->segments_missing, report->segment_missing_first);
}

/* The log on a JetStream stream: the struct only forwards to it. */
static kc_err open_jetstream(kci_queue_log **out, const kci_queue_log_config *config,
                             kci_scan_visit visit, void *context, kci_scan_report *report,
                             char *error, size_t error_size)
{
    kci_queue_log *log = calloc(1, sizeof *log);
    if (log == NULL) {
        snprintf(error, error_size, "out of memory");
        return KC_ERR_NOMEM;
    }
    snprintf(log->directory, sizeof log->directory, "stream %s", config->jetstream->stream);
    kc_err err = kci_queue_js_open(&log->js, config->connection, config->jetstream, config, visit,
                                   context, report, error, error_size);
    if (err != KC_OK) {
        free(log);
        return err;
    }
    *out = log;
    return KC_OK;
}

kc_err kci_queue_log_open(kci_queue_log **out, const kci_queue_log_config *config,
                          kci_scan_visit visit, void *context, kci_scan_report *report, char *error,
                          size_t error_size)
{
    *out = NULL;
    if (config->jetstream != NULL)
        return open_jetstream(out, config, visit, context, report, error, error_size);
    if (config->segment_bytes != 0 && (config->segment_bytes < KCI_SEGMENT_BYTES_MIN ||
                                       config->segment_bytes > KCI_SEGMENT_BYTES_MAX)) {
        snprintf(error, error_size, "queue segment size must be from %d to %d bytes",
                 KCI_SEGMENT_BYTES_MIN, KCI_SEGMENT_BYTES_MAX);
        return KC_ERR_CONFIG;
    }
    kc_err err = kci_directory_make(config->directory, error, error_size);
    if (err != KC_OK) return err;
    /* A file-size limit must fail the write (EFBIG, handled like ENOSPC),
     * not kill the process: the process-wide default for SIGXFSZ is core. */
    signal(SIGXFSZ, SIG_IGN);
    kci_queue_log *log = log_new(config);
    if (log == NULL) {
        snprintf(error, error_size, "out of memory");
        return KC_ERR_NOMEM;
    }
    err = kci_directory_lock_acquire(&log->lock_held, log->directory, KCI_LOCK_FILE_NAME, "queue",
                                     error, error_size);
    kci_scan_options options = {.repair = true, .skip_corrupt = config->skip_corrupt};
    if (err == KC_OK)
        err = kci_scan(log->directory, &options, visit, context, report, error, error_size);
    if (err == KC_OK) log_scan_findings(log, report);
    if (err == KC_OK && (err = open_tail(log, report)) != KC_OK)
        snprintf(error, error_size, "cannot open the tail segment in %s: %s", log->directory,
                 strerror(errno));
    if (err == KC_OK) {
        log->stats.segment_current = log->segment_number;
        log->stats.segment_offset = log->segment_offset;
        if (pthread_create(&log->completer, NULL, completer_main, log) != 0) {
            snprintf(error, error_size, "cannot start the queue completer thread");
            err = KC_ERR_NOMEM;
        } else {
            log->completer_started = true;
        }
        if (err == KC_OK && pthread_create(&log->writer, NULL, writer_main, log) != 0) {
            snprintf(error, error_size, "cannot start the queue writer thread");
            err = KC_ERR_NOMEM;
        } else if (err == KC_OK) {
            log->writer_started = true;
        }
    }
    if (err != KC_OK) {
        kci_queue_log_close(log);
        return err;
    }
    *out = log;
    return KC_OK;
}

void kci_queue_log_close(kci_queue_log *log)
{
    if (log == NULL) return;
    if (log->js != NULL) {
        kci_queue_js_close(log->js);
        free(log);
        return;
    }
    if (log->writer_started) {
        pthread_mutex_lock(&log->lock);
        log->closing = true;
        pthread_cond_broadcast(&log->work);
        pthread_cond_broadcast(&log->space);
        pthread_mutex_unlock(&log->lock);
        pthread_join(log->writer, NULL);
    }
    if (log->completer_started) { /* after the writer: every outcome is queued */
        pthread_mutex_lock(&log->finished_lock);
        log->writer_done = true;
        pthread_cond_broadcast(&log->finished_work);
        pthread_mutex_unlock(&log->finished_lock);
        pthread_join(log->completer, NULL);
    }
    if (log->segment_fd >= 0) kci_io->close(log->segment_fd);
    kci_directory_lock_release(&log->lock_held);
    for (int index = 0; index < 2; index++) {
        free(log->batches[index].bytes);
        free(log->batches[index].completions);
    }
    free(log->finished_ring);
    pthread_cond_destroy(&log->finished_work);
    pthread_cond_destroy(&log->finished_space);
    pthread_mutex_destroy(&log->finished_lock);
    pthread_cond_destroy(&log->work);
    pthread_cond_destroy(&log->space);
    pthread_mutex_destroy(&log->lock);
    free(log);
}
