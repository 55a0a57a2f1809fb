/* record.h - one record of the REQUEST_REPLY.queue log: its byte layout
 * (docs/queue.md, "Record format"), encoding and decoding.
 *
 * A record is a fixed 56-byte header followed by four variable fields:
 *
 *   offset size field
 *        0    4 magic "KCQR"
 *        4    4 crc32c of bytes 8 .. length-1 (little-endian, as all integers)
 *        8    4 length: the whole record in bytes, header included
 *       12    1 format version (1)
 *       13    1 kind (kci_record_kind)
 *       14    2 flags (0; readers refuse unknown bits)
 *       16   16 id: the request's Kc-Id, binary (replies and markers: the request's)
 *       32    8 Kc-Ts wall time, ms
 *       40    4 Kc-Ts counter
 *       44    2 subject length
 *       46    2 reply length
 *       48    2 client length
 *       50    2 attempt
 *       52    4 payload length
 *       56    . subject, reply, client, payload (no padding, no terminators)
 *
 * The decoder trusts nothing: the length must equal the header plus the four
 * field lengths and lie within the bounds below, and the checksum must match,
 * before a single field is handed out. */
#ifndef KCI_RECORD_H
#define KCI_RECORD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "service/uuid.h"

#define KCI_RECORD_MAGIC_TEXT "KCQR"

enum {
    KCI_RECORD_HEADER_BYTES = 56,
    KCI_RECORD_VERSION = 1,
    KCI_RECORD_FIELD_BYTES_MAX = 1024,              /* subject, reply, client */
    KCI_RECORD_PAYLOAD_BYTES_MAX = 4 * 1024 * 1024, /* above any sane max_payload */
    KCI_RECORD_BYTES_MAX =
        KCI_RECORD_HEADER_BYTES + 3 * KCI_RECORD_FIELD_BYTES_MAX + KCI_RECORD_PAYLOAD_BYTES_MAX,
};

typedef enum kci_record_kind {
    KCI_RECORD_REQUEST = 1, /* a durable request: subject kc.req.<type>, reply = submitter inbox */
    KCI_RECORD_REPLY = 2,   /* the reply: client = the replying node, reply = its Kc-Error */
    KCI_RECORD_ACK = 3,     /* reserved: the submitter confirmed it has the reply */
    KCI_RECORD_REDELIVERY = 4, /* a dispatch attempt after the first; attempt = its number;
                                  attempt 0: a requeue (KCI_RECORD_REQUEUE_ATTEMPT) */
    KCI_RECORD_TOMBSTONE = 5,  /* the request is dead: no reply after `attempt` attempts */
    /* Plain kc.req.> traffic seen on the fabric (record_requests): kept,
     * never dispatched; fields as request and reply. */
    KCI_RECORD_OBSERVED_REQUEST = 6,
    KCI_RECORD_OBSERVED_REPLY = 7,
    KCI_RECORD_KIND_FIRST = KCI_RECORD_REQUEST,
    KCI_RECORD_KIND_LAST = KCI_RECORD_OBSERVED_REPLY,
} kci_record_kind;

/* The fields point into the caller's buffer (encode) or into the decoded
 * bytes (decode); nothing is owned. */
typedef struct kci_record {
    kci_record_kind kind;
    kci_uuid id;
    int64_t ts_wall_ms;
    uint32_t ts_counter;
    uint16_t attempt;
    const char *subject;
    uint16_t subject_length;
    const char *reply;
    uint16_t reply_length;
    const char *client;
    uint16_t client_length;
    const void *payload;
    uint32_t payload_length;
    /* Not encoded: a request's Kc-Notify subject (NULL: none), carried
     * beside the record by a store that can (the stream keeps it in a
     * header, so a successor persister still forwards the reply); the local
     * log drops it, its notify subjects living in memory only. */
    const char *notify;
} kci_record;

/* A redelivery marker with attempt 0 is a requeue: an operator brought the
 * dead request back (kcobra queue requeue), its attempts count from 0
 * again. A marker, not a new kind, so a reader that predates requeue still
 * reads the log (and sees the request dead). */
enum { KCI_RECORD_REQUEUE_ATTEMPT = 0 };

static inline bool kci_record_is_requeue(const kci_record *record)
{
    return record->kind == KCI_RECORD_REDELIVERY && record->attempt == KCI_RECORD_REQUEUE_ATTEMPT;
}

typedef enum kci_record_status {
    KCI_RECORD_OK = 0,        /* *out and *record_bytes are set */
    KCI_RECORD_NEED_MORE = 1, /* the header is fine; *record_bytes are needed */
    KCI_RECORD_ZERO = 2,      /* the header bytes are all zero: preallocated, never written */
    KCI_RECORD_CORRUPT = 3,   /* bad magic, version, kind, flags, lengths or checksum */
} kci_record_status;

/* The encoded size, or 0 when a field is over its bound. */
size_t kci_record_size(const kci_record *record);
/* Encodes into out (at least kci_record_size bytes); returns the size. */
size_t kci_record_encode(const kci_record *record, uint8_t *out);
/* Decodes the record at the start of bytes (available of them). On
 * NEED_MORE, *record_bytes is the length the header claims; on OK, the
 * record's length; otherwise 0. */
kci_record_status kci_record_decode(const uint8_t *bytes, size_t available, kci_record *out,
                                    size_t *record_bytes);
/* The length a well-formed header claims (magic, version, kind, flags and
 * the length arithmetic check out; the checksum is not looked at): true and
 * *record_bytes set, or false. */
bool kci_record_header_length(const uint8_t *bytes, size_t available, size_t *record_bytes);
/* "request", "reply", ... or NULL. */
const char *kci_record_kind_name(kci_record_kind kind);

#endif
