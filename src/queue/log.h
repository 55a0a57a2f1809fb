/* log.h - the REQUEST_REPLY.queue log: appends with group commit, one
 * writer thread, segment roll-over, and the three durability modes.
 *
 * kci_queue_log_append copies the encoded record into the batch being filled and
 * returns; the writer thread takes the whole batch, writes it with as few
 * pwrite calls as segments it spans, makes it durable with one fdatasync
 * (batch mode), and only then hands each record's done callback, in log
 * order, with its position, to a completer thread (so the next write and
 * sync start while the acknowledgements go out). So an acknowledgement sent from done is never
 * ahead of the disk. In `always` mode each record gets its own write and
 * fdatasync; in `none` mode nothing is synced.
 *
 * Failures: a write that fails (ENOSPC, EFBIG, EIO) fails every record of
 * its batch from that point (done gets the error, nothing of it counts: the
 * file is cut back to where the batch started) and the next batch tries
 * again, so the log serves again when space returns. A failed fdatasync is
 * different: the kernel may have dropped the dirty pages, so what is on disk
 * is unknown; the log then refuses every append (KC_ERR_IO) until it is
 * reopened, which re-reads and checks the tail.
 *
 * One log per directory: open takes the directory's exclusive lock
 * (common/lock.h: a flock on the directory itself and on <dir>/LOCK, which
 * holds the owner's pid), so removing LOCK does not let a second writer in.
 * With config.jetstream set, the same functions keep the log in a
 * JetStream stream instead (store_js.h: no directory, no segments, no
 * lock; positions are stream sequences).
 * Every writer of the directory opens it through here (kcobrad's persister,
 * `kcobra queue serve`, offline `kcobra queue compact`); the readers
 * (dump, stats, verify) take no lock. Open
 * also sets SIGXFSZ to ignored (process-wide), so a file-size limit fails
 * the write with EFBIG instead of killing the process. */
#ifndef KCI_LOG_H_QUEUE
#define KCI_LOG_H_QUEUE

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <nats/nats.h>

#include "kingcobra/err.h"
#include "record.h"
#include "recovery.h"
#include "segment.h"

typedef enum kci_durability {
    KCI_DURABILITY_BATCH = 0,  /* done after the fdatasync of its group (default) */
    KCI_DURABILITY_ALWAYS = 1, /* done after a fdatasync of its own */
    KCI_DURABILITY_NONE = 2,   /* done after the write; never synced */
} kci_durability;

enum {
    KCI_LOG_BATCH_BYTES = 8 * 1024 * 1024, /* each of the two batches; > one record */
    KCI_LOG_BATCH_RECORDS_MAX = 16384,
};

typedef struct kci_queue_log kci_queue_log;

typedef struct kci_queue_log_config {
    const char *directory;
    kci_durability durability;
    uint32_t segment_bytes; /* 0: KCI_SEGMENT_BYTES_DEFAULT */
    bool skip_corrupt;      /* open past corruption in the middle of the log */
    bool preallocate;       /* fallocate each segment to its full size (default on) */
    /* Called on the completer thread after each run of done callbacks, so a
     * caller that buffers what its callbacks send (the persister's
     * acknowledgements and dispatches) can send it in one write. NULL: none. */
    void (*completions_end)(void *context);
    void *completions_end_context;
    /* Not NULL: the log is this stream (store_js.h), on connection. */
    const struct kci_queue_js_config *jetstream;
    natsConnection *connection;
} kci_queue_log_config;

/* Called on the log's completer thread, once per append, in log order,
 * with errno set to the failure's errno when status is not KC_OK. */
typedef void (*kci_queue_log_done)(void *context, kc_err status, kci_position position);

typedef struct kci_queue_log_stats {
    uint64_t append_count;
    uint64_t append_failed_count;
    uint64_t sync_count;
    uint64_t batch_count;
    uint64_t bytes_written;
    uint32_t segment_current;
    uint64_t segment_offset;
    bool broken;
} kci_queue_log_stats;

/* "batch", "always", "none" -> mode; false if none of them. */
bool kci_durability_parse(const char *text, kci_durability *out);
const char *kci_durability_name(kci_durability durability);

/* Creates the directory if needed, locks it, scans it (repairing a torn
 * tail; visit sees every record, report says what was found) and starts the
 * writer. KC_ERR_EXISTS: another process holds the lock. KC_ERR_CORRUPT:
 * corruption in the middle and not skip_corrupt. */
kc_err kci_queue_log_open(kci_queue_log **out, const kci_queue_log_config *config,
                          kci_scan_visit visit, void *context, kci_scan_report *report, char *error,
                          size_t error_size);
/* Queues record; done is called exactly once, later, unless this returns an
 * error (KC_ERR_TOO_LARGE, KC_ERR_IO when broken, KC_ERR_CLOSED). Blocks
 * while both batches are full. */
kc_err kci_queue_log_append(kci_queue_log *log, const kci_record *record, kci_queue_log_done done,
                            void *context);
/* Reads the record at position (durable: its done has run) into buffer
 * (KCI_RECORD_BYTES_MAX bytes). */
kc_err kci_queue_log_read(kci_queue_log *log, kci_position position, uint8_t *buffer,
                          kci_record *out);
void kci_queue_log_stats_get(kci_queue_log *log, kci_queue_log_stats *out);
const char *kci_queue_log_directory(const kci_queue_log *log);
/* Removes the segments numbered below `below` (never the current one),
 * oldest first, stopping at the first that cannot be removed (so the log
 * stays one run of numbers), and syncs the directory; returns how many
 * were removed. */
uint32_t kci_queue_log_remove_segments_below(kci_queue_log *log, uint32_t below);
/* Writes and completes what is queued, stops the writer, unlocks, frees. */
void kci_queue_log_close(kci_queue_log *log);

#endif
