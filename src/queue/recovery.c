/* recovery.c - the scan of the whole log (see recovery.h).
 *
 * Each segment is read sequentially with pread into one buffer of
 * KCI_SCAN_READ_BYTES + KCI_RECORD_BYTES_MAX, so a record that straddles a
 * read is completed by moving the partial record to the front and reading
 * on; no mmap, so a segment that kcobrad truncates meanwhile (at roll-over)
 * cannot fault the reader. After a bad spot, the scan searches forward for
 * the magic "KCQR" and accepts the first candidate that decodes with a good
 * checksum (a CRC-32C match by chance is about 2^-32 per candidate).
 *
 * The segment opens, the scan's buffers and the repair of a torn tail
 * (ftruncate, fdatasync) go through the I/O seam (common/io.h); the reads
 * do not (a failed read changes nothing and is reported as it is). */
#include "recovery.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/io.h"

enum { BUFFER_BYTES = KCI_SCAN_READ_BYTES + KCI_RECORD_BYTES_MAX };

typedef struct scan_state {
    const char *directory;
    const kci_scan_options *options;
    kci_scan_visit visit;
    void *context;
    kci_scan_report *report;
    uint8_t *buffer;
    uint8_t *probe; /* KCI_RECORD_BYTES_MAX, for resync candidates */
    char *error;
    size_t error_size;
} scan_state;

static kc_err read_fully(int fd, uint8_t *into, size_t length, uint64_t offset, size_t *got)
{
    *got = 0;
    while (*got < length) {
        ssize_t result = pread(fd, into + *got, length - *got, (off_t)(offset + *got));
        if (result < 0 && errno == EINTR) continue;
        if (result < 0) return KC_ERR_IO;
        if (result == 0) break;
        *got += (size_t)result;
    }
    return KC_OK;
}

kc_err kci_record_read_fd(int fd, uint32_t offset, uint8_t *buffer, kci_record *out)
{
    size_t got = 0;
    if (read_fully(fd, buffer, KCI_RECORD_HEADER_BYTES, offset, &got) != KC_OK) return KC_ERR_IO;
    size_t record_bytes = 0;
    kci_record_status status = kci_record_decode(buffer, got, out, &record_bytes);
    if (status == KCI_RECORD_NEED_MORE && record_bytes > got) {
        if (read_fully(fd, buffer + got, record_bytes - got, offset + got, &got) != KC_OK)
            return KC_ERR_IO;
        status = kci_record_decode(buffer, KCI_RECORD_HEADER_BYTES + got, out, &record_bytes);
    }
    return status == KCI_RECORD_OK ? KC_OK : KC_ERR_CORRUPT;
}

kc_err kci_record_read(const char *directory, kci_position position, uint8_t *buffer,
                       kci_record *out)
{
    char path[PATH_MAX];
    if (!kci_segment_path(path, directory, kci_position_segment(position)))
        return KC_ERR_INVALID_ARGUMENT;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return errno == ENOENT ? KC_ERR_NOT_FOUND : KC_ERR_IO;
    kc_err err = kci_record_read_fd(fd, kci_position_offset(position), buffer, out);
    close(fd);
    return err;
}

/* The first offset >= from where a valid record starts, or -1. */
static int64_t resync(scan_state *state, int fd, uint64_t from, uint64_t file_bytes)
{
    static const size_t chunk_bytes = KCI_SCAN_READ_BYTES;
    uint8_t *chunk = state->buffer;
    for (uint64_t base = from; base < file_bytes;) {
        size_t got = 0;
        if (read_fully(fd, chunk, chunk_bytes, base, &got) != KC_OK || got < 4) return -1;
        size_t index = 0;
        while (index + 4 <= got) {
            uint8_t *hit = memmem(chunk + index, got - index, KCI_RECORD_MAGIC_TEXT, 4);
            if (hit == NULL) break;
            uint64_t candidate = base + (uint64_t)(hit - chunk);
            kci_record record;
            if (candidate <= UINT32_MAX &&
                kci_record_read_fd(fd, (uint32_t)candidate, state->probe, &record) == KC_OK)
                return (int64_t)candidate;
            index = (size_t)(hit - chunk) + 1;
        }
        base += got - 3; /* a magic split across chunks is seen in the next one */
        if (got < chunk_bytes) break;
    }
    return -1;
}

static void note_corruption(kci_scan_report *report, uint32_t segment, uint64_t offset,
                            uint64_t length_bytes)
{
    if (report->corruption_count < KCI_SCAN_CORRUPTIONS_MAX)
        report->corruptions[report->corruption_count] = (kci_scan_corruption){
            .segment = segment, .offset = offset, .length_bytes = length_bytes};
    report->corruption_count++;
}

/* The offset just past the last non-zero byte in [from, file_bytes), or
 * from when they are all zero; UINT64_MAX when it cannot be read. */
static uint64_t data_end(scan_state *state, int fd, uint64_t from, uint64_t file_bytes)
{
    uint64_t end = from;
    for (uint64_t base = from; base < file_bytes;) {
        size_t got = 0;
        if (read_fully(fd, state->buffer, KCI_SCAN_READ_BYTES, base, &got) != KC_OK)
            return UINT64_MAX;
        if (got == 0) break;
        for (size_t index = got; index > 0; index--) {
            if (state->buffer[index - 1] == 0) continue;
            end = base + index;
            break;
        }
        base += got;
    }
    return end;
}

/* Whether the bad record at offset is an unfinished write: the file ends
 * inside it, or everything from its last 512-byte sector on is zeros (what
 * a crash leaves of a write that did not reach the disk: segments are
 * preallocated, so unwritten space reads as zeros). A record that was
 * synced is whole, so this one was never acknowledged, unless something
 * other than the log cut or zeroed the file. A header that fails its own
 * checks counts as a record of KCI_RECORD_HEADER_BYTES. Known limit: a
 * damaged record whose payload ends in a sector of zeros looks unfinished. */
static bool unfinished_write(scan_state *state, int fd, uint64_t offset, uint64_t file_bytes)
{
    uint8_t header[KCI_RECORD_HEADER_BYTES];
    size_t got = 0;
    if (read_fully(fd, header, sizeof header, offset, &got) != KC_OK) return false;
    size_t record_bytes = KCI_RECORD_HEADER_BYTES;
    (void)kci_record_header_length(header, got, &record_bytes);
    if (offset + record_bytes > file_bytes) return true;
    uint64_t last_sector =
        (offset + record_bytes - 1) / KCI_SCAN_SECTOR_BYTES * KCI_SCAN_SECTOR_BYTES;
    return data_end(state, fd, offset, file_bytes) <= last_sector;
}

/* The bad end of the last segment: unfinished (torn) or damaged. A
 * read-only scan may race kcobrad writing that very record, so with
 * settle_tail a damaged look is checked again once it had time to finish. */
static void classify_tail(scan_state *state, int fd, uint64_t offset, uint64_t file_bytes)
{
    bool unfinished = unfinished_write(state, fd, offset, file_bytes);
    if (!unfinished && state->options->settle_tail && !state->options->repair) {
        struct timespec pause = {.tv_nsec = KCI_SCAN_SETTLE_MS * 1000000L};
        nanosleep(&pause, NULL);
        kci_record record;
        struct stat status;
        unfinished = kci_record_read_fd(fd, (uint32_t)offset, state->probe, &record) == KC_OK ||
                     (fstat(fd, &status) == 0 &&
                      unfinished_write(state, fd, offset, (uint64_t)status.st_size));
    }
    kci_scan_report *report = state->report;
    report->torn_tail = unfinished;
    report->tail_damaged = !unfinished;
    report->torn_offset = offset;
    /* The bytes written from there on, not the preallocated zeros after. */
    uint64_t end = data_end(state, fd, offset, file_bytes);
    report->torn_bytes = (end == UINT64_MAX || end <= offset ? file_bytes : end) - offset;
}

typedef enum bad_outcome { BAD_END, BAD_RESUME, BAD_STOP } bad_outcome;

/* A bad spot at offset: decides between end, torn tail and corruption. */
static bad_outcome handle_bad(scan_state *state, int fd, uint32_t segment, bool last, bool zero,
                              uint64_t offset, uint64_t file_bytes, uint64_t *resume)
{
    /* Zeros in the last segment: the preallocated end. Anything after them
     * was written after the last sync, so never acknowledged, and kcobrad
     * cuts it off at start; no search needed. */
    if (zero && last) return BAD_END;
    int64_t next = resync(state, fd, offset + 1, file_bytes);
    if (next < 0 && zero) return BAD_END;
    if (next < 0 && last) {
        classify_tail(state, fd, offset, file_bytes);
        return BAD_END;
    }
    uint64_t end = next < 0 ? file_bytes : (uint64_t)next;
    note_corruption(state->report, segment, offset, end - offset);
    if (!state->options->skip_corrupt) return BAD_STOP;
    if (next < 0) return BAD_END;
    *resume = (uint64_t)next;
    return BAD_RESUME;
}

/* One record handed to the visitor. */
static kc_err accept_record(scan_state *state, const kci_record *record, uint32_t segment,
                            uint64_t offset, size_t record_bytes)
{
    kci_scan_report *report = state->report;
    report->record_count++;
    report->record_bytes += record_bytes;
    report->kind_count[record->kind]++;
    if (state->visit == NULL) return KC_OK;
    return state->visit(state->context, record, kci_position_make(segment, (uint32_t)offset));
}

/* Scans one segment; *end_offset gets where its data ends. */
static kc_err scan_segment(scan_state *state, int fd, uint32_t segment, bool last,
                           uint64_t file_bytes, uint64_t *end_offset)
{
    uint64_t base = 0; /* file offset of buffer[0] */
    size_t have = 0, cursor = 0;
    for (;;) {
        size_t record_bytes = 0;
        kci_record record;
        kci_record_status status =
            kci_record_decode(state->buffer + cursor, have - cursor, &record, &record_bytes);
        uint64_t offset = base + cursor;
        if (status == KCI_RECORD_OK) {
            kc_err err = accept_record(state, &record, segment, offset, record_bytes);
            if (err != KC_OK) return err;
            cursor += record_bytes;
            continue;
        }
        if (status == KCI_RECORD_NEED_MORE &&
            offset + (record_bytes > 0 ? record_bytes : KCI_RECORD_HEADER_BYTES) <= file_bytes) {
            memmove(state->buffer, state->buffer + cursor, have - cursor);
            base += cursor;
            have -= cursor;
            cursor = 0;
            size_t got = 0;
            if (read_fully(fd, state->buffer + have, KCI_SCAN_READ_BYTES, base + have, &got) !=
                KC_OK)
                return KC_ERR_IO;
            if (got == 0) return KC_ERR_IO; /* the file shrank under us */
            have += got;
            continue;
        }
        if (status == KCI_RECORD_NEED_MORE && offset == file_bytes) {
            *end_offset = offset;
            return KC_OK;
        }
        uint64_t resume = 0;
        bad_outcome outcome = handle_bad(state, fd, segment, last, status == KCI_RECORD_ZERO,
                                         offset, file_bytes, &resume);
        if (outcome == BAD_STOP) return KC_ERR_CORRUPT;
        if (outcome == BAD_END) {
            *end_offset = offset;
            return KC_OK;
        }
        base = resume;
        have = cursor = 0;
    }
}

static kc_err repair_tail(scan_state *state, int fd)
{
    kci_scan_report *report = state->report;
    if (kci_io_retry_ftruncate(fd, (off_t)report->torn_offset) != 0 ||
        kci_io_retry_fdatasync(fd) != 0) {
        snprintf(state->error, state->error_size,
                 "cannot cut the torn tail of segment %u at offset %llu: %s", report->segment_last,
                 (unsigned long long)report->torn_offset, strerror(errno));
        return KC_ERR_IO;
    }
    report->torn_repaired = true;
    return KC_OK;
}

static kc_err scan_file(scan_state *state, uint32_t segment, bool last)
{
    char path[PATH_MAX];
    kci_segment_path(path, state->directory, segment);
    int fd = kci_io_retry_open(path,
                               (state->options->repair && last ? O_RDWR : O_RDONLY) | O_CLOEXEC, 0);
    struct stat status;
    if (fd < 0 || fstat(fd, &status) != 0) {
        snprintf(state->error, state->error_size, "cannot open %s: %s", path, strerror(errno));
        if (fd >= 0) kci_io->close(fd);
        return KC_ERR_IO;
    }
    uint64_t end_offset = 0;
    kc_err err = scan_segment(state, fd, segment, last, (uint64_t)status.st_size, &end_offset);
    if (err == KC_ERR_IO)
        snprintf(state->error, state->error_size, "cannot read %s: %s", path, strerror(errno));
    if (err == KC_OK && last) {
        state->report->end_offset = end_offset;
        bool bad_end = state->report->torn_tail || state->report->tail_damaged;
        if (bad_end && state->options->repair) err = repair_tail(state, fd);
    }
    kci_io->close(fd);
    return err;
}

kc_err kci_scan(const char *directory, const kci_scan_options *options, kci_scan_visit visit,
                void *context, kci_scan_report *report, char *error, size_t error_size)
{
    memset(report, 0, sizeof *report);
    int64_t started_us = kci_monotonic_us();
    uint32_t *numbers = NULL;
    size_t count = 0;
    kc_err err = kci_segment_list(directory, &numbers, &count, error, error_size);
    if (err == KC_ERR_NOT_FOUND) return KC_OK;
    if (err != KC_OK) return err;
    scan_state state = {.directory = directory,
                        .options = options,
                        .visit = visit,
                        .context = context,
                        .report = report,
                        .buffer = kci_io->malloc(BUFFER_BYTES),
                        .probe = kci_io->malloc(KCI_RECORD_BYTES_MAX),
                        .error = error,
                        .error_size = error_size};
    if (state.buffer == NULL || state.probe == NULL) {
        snprintf(error, error_size, "out of memory");
        err = KC_ERR_NOMEM;
    }
    report->segment_count = (uint32_t)count;
    if (count > 0) {
        report->segment_first = numbers[0];
        report->segment_last = numbers[count - 1];
    }
    for (size_t index = 0; err == KC_OK && index < count; index++) {
        /* Retention removes only the oldest: a gap lost segments. */
        if (index > 0 && numbers[index] != numbers[index - 1] + 1) {
            if (report->segments_missing == 0)
                report->segment_missing_first = numbers[index - 1] + 1;
            report->segments_missing += numbers[index] - numbers[index - 1] - 1;
        }
        if (numbers[index] < options->from_segment) continue;
        err = scan_file(&state, numbers[index], index + 1 == count);
    }
    if (err == KC_ERR_CORRUPT) {
        const kci_scan_corruption *first = &report->corruptions[0];
        snprintf(error, error_size,
                 "corrupt record in segment %u at offset %llu (%llu bytes fail their checks)",
                 first->segment, (unsigned long long)first->offset,
                 (unsigned long long)first->length_bytes);
    }
    free(state.buffer);
    free(state.probe);
    free(numbers);
    report->duration_us = kci_monotonic_us() - started_us;
    return err;
}
