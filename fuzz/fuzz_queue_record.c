/* fuzz_queue_record.c - libFuzzer target for the log's record reader
 * (src/queue/record.c) and the scan over a segment (src/queue/recovery.c).
 *
 * The input is read as a segment's bytes two ways:
 *  - in memory: decode at each offset; a good record is skipped whole, a bad
 *    spot one byte at a time (as the scan's resync does);
 *  - on disk (one input in four, by length): written as segment 1 of a
 *    temporary directory and scanned with kci_scan (read-only, skipping
 *    corruption), which reads in chunks.
 * Checks:
 *  - decode never claims more bytes than it was given for an OK record, and
 *    NEED_MORE only names a length within the bounds;
 *  - every OK record encodes back to exactly the bytes it came from (the
 *    reader accepts only what the writer writes);
 *  - every record the scan hands out was also found in memory at the same
 *    offset, and the scan never hands out more records than there are. */
#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "queue/record.h"
#include "queue/recovery.h"

#define FUZZ_CHECK(condition)                                                                      \
    do {                                                                                           \
        if (!(condition)) abort();                                                                 \
    } while (0)

enum { FOUND_MAX = 4096 };

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char directory[64];
static uint8_t *scratch;
static bool found_at[1 << 16];

typedef struct scan_check {
    const uint8_t *data;
    size_t size;
    size_t visited;
} scan_check;

static kc_err on_record(void *context, const kci_record *record, kci_position position)
{
    scan_check *check = context;
    uint32_t offset = kci_position_offset(position);
    FUZZ_CHECK(kci_position_segment(position) == 1);
    FUZZ_CHECK(offset < check->size && offset < sizeof found_at);
    FUZZ_CHECK(found_at[offset]);
    check->visited++;
    return KC_OK;
}

static size_t decode_in_memory(const uint8_t *data, size_t size)
{
    size_t count = 0;
    memset(found_at, 0, sizeof found_at);
    for (size_t offset = 0; offset < size;) {
        kci_record record;
        size_t record_bytes = 0;
        kci_record_status status =
            kci_record_decode(data + offset, size - offset, &record, &record_bytes);
        if (status == KCI_RECORD_NEED_MORE && record_bytes > 0)
            FUZZ_CHECK(record_bytes > size - offset && record_bytes <= KCI_RECORD_BYTES_MAX);
        if (status != KCI_RECORD_OK) {
            offset++;
            continue;
        }
        FUZZ_CHECK(record_bytes >= KCI_RECORD_HEADER_BYTES && record_bytes <= size - offset);
        FUZZ_CHECK(kci_record_size(&record) == record_bytes);
        FUZZ_CHECK(kci_record_encode(&record, scratch) == record_bytes);
        FUZZ_CHECK(memcmp(scratch, data + offset, record_bytes) == 0);
        if (offset < sizeof found_at) found_at[offset] = true;
        count++;
        offset += record_bytes;
    }
    return count;
}

static void remove_directory(void)
{
    rmdir(directory);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (scratch == NULL) {
        scratch = malloc(KCI_RECORD_BYTES_MAX);
        snprintf(directory, sizeof directory, "/tmp/kc-fuzz-queue-XXXXXX");
        if (scratch == NULL || mkdtemp(directory) == NULL) abort();
        atexit(remove_directory);
    }
    if (size >= sizeof found_at) return 0;
    size_t in_memory = decode_in_memory(data, size);
    /* The scan allocates its 8 MiB read buffer and touches the disk: one
     * input in four is enough to keep it covered without slowing the rest. */
    if (size % 4 != 0) return 0;
    char path[PATH_MAX];
    kci_segment_path(path, directory, 1);
    FILE *file = fopen(path, "wb");
    if (file == NULL) abort();
    if (size > 0 && fwrite(data, 1, size, file) != size) abort();
    fclose(file);
    scan_check check = {.data = data, .size = size};
    kci_scan_options options = {.skip_corrupt = true};
    kci_scan_report report;
    char error[256];
    kc_err err = kci_scan(directory, &options, on_record, &check, &report, error, sizeof error);
    FUZZ_CHECK(err == KC_OK);
    FUZZ_CHECK(check.visited <= in_memory);
    FUZZ_CHECK(report.record_count == check.visited);
    unlink(path);
    return 0;
}
