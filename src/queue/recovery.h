/* recovery.h - reading the whole log back: every record of every segment is
 * checked (length arithmetic and CRC-32C) and handed to a visitor in log
 * order, with its position. The same scan serves kcobrad's start (repair:
 * a torn tail is cut off), and `kcobra queue dump|stats|verify` (read-only,
 * safe while kcobrad appends).
 *
 * What a bad spot means depends on where it is:
 *   - zeros where a record should start, with nothing valid after them in
 *     the segment: the end of the data (segments are preallocated);
 *   - a bad record in the LAST segment with nothing valid after it. If it
 *     is an unfinished write (the file, or its non-zero bytes, end before
 *     the record's last 512-byte sector: the rest never reached the disk)
 *     it is a torn tail, a write a crash interrupted, never acknowledged
 *     (the acknowledgement follows the sync of the whole record). A whole
 *     record that fails its checks is not that: it was written out, maybe
 *     synced and acknowledged, and damaged since (tail_damaged). Either is
 *     cut off with repair, so appends can go on; the log reports which;
 *   - anything bad followed by a valid record, or a bad end of an earlier
 *     segment: corruption in the middle of the log. It is reported with its
 *     segment and offset and never handed out; the scan stops there
 *     (KC_ERR_CORRUPT) unless skip_corrupt, which resumes at the next valid
 *     record. */
#ifndef KCI_RECOVERY_H
#define KCI_RECOVERY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kingcobra/err.h"
#include "record.h"
#include "segment.h"

enum {
    KCI_SCAN_CORRUPTIONS_MAX = 32, /* reported individually; more are counted */
    KCI_SCAN_READ_BYTES = 4 * 1024 * 1024,
    KCI_SCAN_SECTOR_BYTES = 512, /* the unit a crash tears writes at */
    /* settle_tail: how long before a damaged-looking tail is looked at again. */
    KCI_SCAN_SETTLE_MS = 100,
};

typedef struct kci_scan_corruption {
    uint32_t segment;
    uint64_t offset;
    uint64_t length_bytes; /* up to the next valid record, or the segment's end */
} kci_scan_corruption;

typedef struct kci_scan_report {
    uint32_t segment_count;
    uint32_t segment_first; /* 0 when there are none */
    uint32_t segment_last;
    uint64_t end_offset; /* where the next record goes in segment_last */
    uint64_t record_count;
    uint64_t record_bytes;
    uint64_t kind_count[KCI_RECORD_KIND_LAST + 1];
    /* The bad end of the last segment (no valid record after it): */
    bool torn_tail;       /* an unfinished write: never acknowledged */
    bool tail_damaged;    /* a whole record that fails its checks: it may have been acknowledged */
    uint64_t torn_offset; /* of either, in segment_last */
    uint64_t torn_bytes;  /* written from there on (preallocated zeros not counted) */
    bool torn_repaired;   /* either was cut off (repair) */
    uint32_t segments_missing;      /* numbers absent between segment_first and segment_last */
    uint32_t segment_missing_first; /* the lowest of them */
    uint32_t corruption_count;
    kci_scan_corruption corruptions[KCI_SCAN_CORRUPTIONS_MAX];
    int64_t duration_us;
} kci_scan_report;

typedef struct kci_scan_options {
    bool repair;           /* cut a torn tail off (needs the directory lock) */
    bool skip_corrupt;     /* go on after corruption in the middle */
    uint32_t from_segment; /* 0: all */
    /* A read-only scan of a log kcobrad may be appending to: a tail that
     * looks damaged is looked at again after KCI_SCAN_SETTLE_MS, as it may
     * be a record being written right then. */
    bool settle_tail;
} kci_scan_options;

/* A non-OK return stops the scan and is returned by kci_scan. */
typedef kc_err (*kci_scan_visit)(void *context, const kci_record *record, kci_position position);

/* Scans directory; visit may be NULL. Returns KC_OK, KC_ERR_CORRUPT
 * (corruption and not skip_corrupt: report says where), or an I/O error
 * with error filled in. A missing directory is an empty log. */
kc_err kci_scan(const char *directory, const kci_scan_options *options, kci_scan_visit visit,
                void *context, kci_scan_report *report, char *error, size_t error_size);

/* Reads the one record at position into buffer (KCI_RECORD_BYTES_MAX) and
 * decodes it; KC_ERR_CORRUPT if it fails its checks. */
kc_err kci_record_read(const char *directory, kci_position position, uint8_t *buffer,
                       kci_record *out);
/* The same from an open segment file. */
kc_err kci_record_read_fd(int fd, uint32_t offset, uint8_t *buffer, kci_record *out);

#endif
