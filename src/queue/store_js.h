/* store_js.h - the persister's log kept in a JetStream stream instead of
 * local segment files (storage: jetstream, docs/queue.md): the same
 * operations as log.h (log.c hands them here when its config names a
 * stream), so the persister's code above the log does not change.
 *
 *   a record   one stream message on "kcq.<stream>.<kind>" ("kcq.KC_QUEUE.
 *              request"), its body the record exactly as record.c encodes it
 *              (so rebuild, dump and verify reuse the codec), with headers
 *              Kc-Term (the lease term of its writer), Nats-Expected-Last-
 *              Sequence (the fence, below) and, for a request, Nats-Msg-Id =
 *              its Kc-Id (the stream's duplicate window stores a resubmit
 *              once).
 *   a batch    while KCI_QUEUE_JS_BATCH_AFTER messages are in flight, the
 *              records appended meanwhile are gathered (at most
 *              KCI_QUEUE_JS_BATCH_RECORDS, KCI_QUEUE_JS_BATCH_BYTES) and
 *              published as one message on "kcq.<stream>.batch" when an
 *              acknowledgement comes: the records' encodings one after
 *              another, a request's Kc-Notify as header Kc-Notify-<index>,
 *              no Nats-Msg-Id (the persister's index dedupes). Under load a
 *              replicated write then carries several records: fewer Raft
 *              rounds, acknowledgements and store writes per submit.
 *   a position the message's stream sequence times KCI_QUEUE_JS_BATCH_RECORDS
 *              plus the record's index in it (0 alone). All positions are
 *              in "segment" 0: retention is the stream's own (max age), not
 *              segment removal.
 *   append     published at once, pipelined (at most KCI_QUEUE_JS_WINDOW in
 *              flight), or gathered (a batch); done runs on a completer thread, in log order, once
 *              the publish acknowledgement came: a request is acknowledged
 *              only after JetStream's. A publish that fails, is refused or
 *              is not acknowledged within ack_timeout_ms fails with every
 *              append after it (they expected it to be there), and the store
 *              is broken: it refuses appends until it is reopened (the
 *              persister is restarted, which reads the stream again).
 *   the fence  one writer: every publish expects the stream's last sequence
 *              to be the one before it (Nats-Expected-Last-Sequence, checked
 *              when the write is applied, in log order, on every replica).
 *              Open reads the stream to its end, then writes a term marker
 *              ("kcq.<stream>.term", headers Kc-Term and Kc-Writer) expecting
 *              the last sequence it read; if something was written meanwhile
 *              it reads that too and tries again. After its marker, a deposed
 *              writer's publishes all fail, whatever its clock says. The
 *              lease (lease.h) is also checked before each publish.
 *   read       js_GetMsg through the stream's leader.
 *   scan       an ordered consumer from the first sequence; if it stalls,
 *              js_GetMsg for the rest.
 *
 * The stream is created when missing: subjects "kcq.<stream>.>", file
 * storage, the given replicas and max age, discard old. Nothing else may
 * publish on its subjects (a stranger's write fails the fence: the writer
 * steps down and starts again). */
#ifndef KCI_QUEUE_STORE_JS_H
#define KCI_QUEUE_STORE_JS_H

#include <nats/nats.h>
#include <stdbool.h>
#include <stdint.h>

#include "kingcobra/err.h"
#include "log.h"
#include "service/lease.h"

#define KCI_QUEUE_JS_STREAM_DEFAULT "KC_QUEUE"
#define KCI_QUEUE_JS_SUBJECT_PREFIX "kcq."
#define KCI_QUEUE_JS_TERM_KIND "term"
#define KCI_QUEUE_JS_HEADER_TERM "Kc-Term"
#define KCI_QUEUE_JS_HEADER_WRITER "Kc-Writer"
#define KCI_QUEUE_JS_HEADER_NOTIFY "Kc-Notify" /* a request's, as its submit had it */
#define KCI_QUEUE_JS_BATCH_KIND "batch"

enum {
    KCI_QUEUE_JS_STREAM_BYTES_MAX = 64,
    KCI_QUEUE_JS_WINDOW = 8192,   /* appends in flight */
    KCI_QUEUE_JS_BATCH_SHIFT = 3, /* position = sequence << shift | index */
    KCI_QUEUE_JS_BATCH_RECORDS = 1 << KCI_QUEUE_JS_BATCH_SHIFT,
    KCI_QUEUE_JS_BATCH_BYTES = 64 * 1024, /* a larger record goes alone */
    KCI_QUEUE_JS_BATCH_AFTER = 2,         /* messages in flight before records are gathered */
    /* A publish not acknowledged by then fails (a leader lost with it). */
    KCI_QUEUE_JS_ACK_TIMEOUT_MS = 4000,
    KCI_QUEUE_JS_OPEN_TIMEOUT_MS = 20000, /* finding or creating the stream */
    /* The ordered read waits this long per message, then reads the rest one
     * message at a time through the leader (a consumer placed on a lost
     * server delivers nothing). */
    KCI_QUEUE_JS_SCAN_IDLE_MS = 3000,
    KCI_QUEUE_JS_FENCE_TRIES = 20, /* term markers refused before open gives up */
    KCI_QUEUE_JS_REPLICAS_DEFAULT = 3,
    KCI_QUEUE_JS_DUPLICATE_WINDOW_MS = 2 * 60 * 1000,
};

static inline uint64_t kci_queue_js_position(uint64_t seq, uint32_t index)
{
    return seq << KCI_QUEUE_JS_BATCH_SHIFT | index;
}

typedef struct kci_queue_js_config {
    const char *stream; /* "KC_QUEUE": one subject token */
    int replicas;       /* when it creates the stream: 3 on a cluster, 1 on one server */
    int64_t max_age_ms; /* the stream's max age when it creates it; 0: none */
    uint64_t term;      /* the lease term this writer serves */
    const char *writer; /* its Kc-Writer (the lease holder id) */
    kci_lease *lease;   /* checked before each publish; NULL: not checked */
} kci_queue_js_config;

typedef struct kci_queue_js kci_queue_js;

/* Finds or creates the stream, reads it to its end (visit sees every record,
 * report counts them), writes the term marker (the fence) and starts the
 * completer. KC_ERR_EXISTS: a newer term than config->term has written. */
kc_err kci_queue_js_open(kci_queue_js **out, natsConnection *connection,
                         const kci_queue_js_config *config, const kci_queue_log_config *log_config,
                         kci_scan_visit visit, void *context, kci_scan_report *report, char *error,
                         size_t error_size);
kc_err kci_queue_js_append(kci_queue_js *store, const kci_record *record, kci_queue_log_done done,
                           void *context);
kc_err kci_queue_js_read(kci_queue_js *store, kci_position position, uint8_t *buffer,
                         kci_record *out);
void kci_queue_js_stats_get(kci_queue_js *store, kci_queue_log_stats *out);
/* Waits for what is in flight (up to its deadline), completes it, stops. */
void kci_queue_js_close(kci_queue_js *store);

/* What the Kc-Term headers of a stream say, in stream order. */
typedef struct kci_queue_js_terms {
    uint64_t markers;          /* term markers */
    uint64_t writers;          /* times the term grew: the terms that wrote */
    uint64_t last;             /* the term of the last message */
    uint64_t regressions;      /* messages of a term below one before them: a fence broken */
    uint64_t regression_seq;   /* the first of them, */
    uint64_t regression_term;  /* its term, */
    uint64_t regression_after; /* and the term it came after */
} kci_queue_js_terms;

/* Reads stream from its first message to its last, handing each record to
 * visit (dump, stats, verify); creates nothing. report->segment_first is 2
 * when the stream's front was removed (max age, purge), else 1, so verify
 * counts references to removed requests as retention's. terms_out (NULL:
 * not wanted) gets what the writers' terms say. */
kc_err kci_queue_js_scan(natsConnection *connection, const char *stream, kci_scan_visit visit,
                         void *context, kci_scan_report *report, kci_queue_js_terms *terms_out,
                         char *error, size_t error_size);

#endif
