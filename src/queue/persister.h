/* persister.h - the persister: durable requests over the fabric, kept in
 * the REQUEST_REPLY.queue log (docs/queue.md).
 *
 *   kc.submit.<type>   append the request; once durable, acknowledge the
 *                      submitter (header Kc-Id, body {"id":"..."}) and
 *                      dispatch it on kc.req.<type> with the same Kc-Id;
 *                      record the reply when it comes, and forward it to the
 *                      subject in the submit's Kc-Notify header if it had one
 *   kc.reply.get       the recorded reply of a request, by id
 *   kc.sys.queue.stats / kc.sys.queue.compact   state and retention on demand
 *   kc.sys.queue.requeue                        dead requests back to pending
 *
 * A durable request without a reply is dispatched again after
 * redelivery_timeout_ms, doubling up to redelivery_backoff_max_ms, until
 * attempts_max dispatches that a service received; then it is dead (a
 * tombstone record) and kc.reply.get says so, until it is requeued. A
 * dispatch nobody received ("no responders") is no attempt: the request
 * waits for a service of its type, which is probed every
 * probe_interval_ms (waiting.c). After a restart every request without a
 * reply waits for its type's first probe, sent at once. Services are
 * idempotent by Kc-Id, so a handler runs once however often a request is
 * dispatched.
 *
 * With record_requests it also keeps plain request/reply traffic, as the
 * original REQUEST_REPLY.queue did: every kc.req.> message (but its own
 * dispatches) as an observed_request record, and the reply that comes back
 * on its _INBOX.> reply subject as an observed_reply record. Those are only
 * kept, never dispatched. Replies are matched by a direct-mapped table of
 * KCI_PERSISTER_OBSERVED_MAX reply subjects (their 64-bit hash), each kept
 * KCI_PERSISTER_OBSERVED_TTL_MS: beyond that a reply is not recorded.
 *
 * It runs on a nats.c connection it is given (kcobrad's host connects it as
 * the internal user; `kcobra queue serve` to any NATS-protocol server). */
#ifndef KCI_PERSISTER_H
#define KCI_PERSISTER_H

#include <nats/nats.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kingcobra/err.h"
#include "log.h"
#include "store_js.h"

#define KCI_SUBMIT_PREFIX "kc.submit."
#define KCI_SUBMIT_SUBJECT "kc.submit.>"
#define KCI_REPLY_GET_SUBJECT "kc.reply.get"
#define KCI_QUEUE_STATS_SUBJECT "kc.sys.queue.stats"
#define KCI_QUEUE_COMPACT_SUBJECT "kc.sys.queue.compact"
#define KCI_QUEUE_REQUEUE_SUBJECT "kc.sys.queue.requeue"
#define KCI_PERSISTER_QUEUE_GROUP "kc-persister"
#define KCI_HEADER_NOTIFY "Kc-Notify"
#define KCI_HEADER_QUEUE_STATE "Kc-Queue-State"

enum {
    KCI_PERSISTER_TIMEOUT_MS_DEFAULT = 5000,
    KCI_PERSISTER_BACKOFF_MS_MAX_DEFAULT = 60 * 1000,
    KCI_PERSISTER_ATTEMPTS_MAX_DEFAULT = 10,
    KCI_PERSISTER_ATTEMPTS_LIMIT = 1000,
    KCI_PERSISTER_RETENTION_MS_DEFAULT = 24 * 60 * 60 * 1000,
    KCI_PERSISTER_COMPACT_INTERVAL_MS = 60 * 1000,
    KCI_PERSISTER_SCAN_INTERVAL_MS = 50,                         /* redelivery checks */
    KCI_PERSISTER_REDELIVER_BATCH_MAX = 4096,                    /* dispatched per check */
    KCI_PERSISTER_IN_FLIGHT_MAX = 2 * KCI_LOG_BATCH_RECORDS_MAX, /* appends awaiting their sync */
    KCI_PERSISTER_OBSERVED_MAX = 1 << 16, /* plain requests whose reply is awaited */
    KCI_PERSISTER_OBSERVED_TTL_MS = 60 * 1000,
    KCI_PERSISTER_PROBE_INTERVAL_MS_DEFAULT = 500, /* a waiting type's probes (waiting.c) */
};

/* Error codes in Kc-Error (HTTP-like, as libkingcobra's). */
enum {
    KCI_PERSISTER_CODE_BAD_REQUEST = 400,
    KCI_PERSISTER_CODE_NOT_FOUND = 404,
    KCI_PERSISTER_CODE_BUSY = 409, /* the same id is being stored right now */
    KCI_PERSISTER_CODE_DEAD = 410, /* no reply after the maximum attempts */
    KCI_PERSISTER_CODE_TOO_LARGE = 413,
    KCI_PERSISTER_CODE_NOT_YET = 425, /* durable, no reply yet */
    KCI_PERSISTER_CODE_STORAGE = 500, /* the append failed: not stored, not acknowledged */
    KCI_PERSISTER_CODE_UNAVAILABLE = 503,
    KCI_PERSISTER_CODE_NO_SPACE = 507, /* disk full or file size limit */
};

typedef struct kci_persister kci_persister;

typedef enum kci_queue_storage {
    KCI_QUEUE_STORAGE_LOCAL = 0,     /* the log's segment files in directory */
    KCI_QUEUE_STORAGE_JETSTREAM = 1, /* a JetStream stream (store_js.h; run by replicated.h) */
} kci_queue_storage;

/* Every field is set: there is no "0 means the default". Start from
 * kci_persister_config_defaults (the one place the defaults are written;
 * src/queue/config.c fills the same struct from the persister { } block or
 * from flags) and change what differs. kci_persister_start refuses a field
 * out of range with KC_ERR_INVALID_ARGUMENT instead of replacing it. */
typedef struct kci_persister_config {
    const char *directory;
    kci_durability durability;
    uint32_t segment_bytes;            /* KCI_SEGMENT_BYTES_MIN..KCI_SEGMENT_BYTES_MAX */
    bool skip_corrupt;                 /* start past corruption in the middle of the log */
    const char *node;                  /* Kc-Node of what it sends */
    int64_t redelivery_timeout_ms;     /* >= 1 */
    int64_t redelivery_backoff_max_ms; /* >= redelivery_timeout_ms */
    int attempts_max;                  /* 1..KCI_PERSISTER_ATTEMPTS_LIMIT */
    int64_t retention_ms;              /* replied segments kept this long (0: removed once replied);
                                          KCI_PERSISTER_RETENTION_KEEP: never removed on its own */
    bool record_requests;              /* also keep plain kc.req.> traffic and its replies */
    int64_t probe_interval_ms;         /* >= 1: a type nobody serves is probed this often */
    kci_queue_storage storage;         /* local (default) or jetstream */
    kci_queue_js_config jetstream;     /* jetstream: the stream, and the term it writes as */
} kci_persister_config;

enum { KCI_PERSISTER_RETENTION_KEEP = -1 };

/* The defaults of docs/queue.md, the log in directory (borrowed). */
kci_persister_config kci_persister_config_defaults(const char *directory);

typedef struct kci_persister_stats {
    uint64_t requests; /* in the index */
    uint64_t pending;  /* durable, no reply */
    uint64_t replied;
    uint64_t dead;
    uint64_t submitted;         /* acknowledged since start */
    uint64_t submit_failed;     /* refused or failed since start */
    uint64_t duplicate_submits; /* an id already stored: acknowledged again */
    uint64_t redelivered;       /* dispatches after the first */
    uint64_t replies_recorded;
    uint64_t replies_duplicate; /* a second reply to a replied request: dropped */
    uint64_t segments_removed;
    uint64_t refused_reply_subjects; /* not an inbox: not answered (docs/security.md) */
    uint64_t waiting;                /* pending requests waiting for a service (no responders) */
    uint64_t types_waiting;          /* types nobody serves right now */
    uint64_t no_responders;          /* dispatches nobody received: not counted as attempts */
    uint64_t probes;                 /* probes sent for types nobody served */
    uint64_t released;               /* waiting requests dispatched once a service appeared */
    uint64_t requeued;               /* dead requests brought back (kcobra queue requeue) */
    int64_t oldest_pending_age_ms;   /* from its UUIDv7 id; -1: none pending with a v7 id */
    kci_queue_log_stats log;
    kci_scan_report recovery;
} kci_persister_stats;

/* Opens (and recovers) the log, subscribes, and starts the redelivery
 * thread. connection is borrowed until kci_persister_stop returns; NULL
 * opens the log alone (offline compaction: no subscriptions, no
 * redelivery). */
kc_err kci_persister_start(kci_persister **out, natsConnection *connection,
                           const kci_persister_config *config, char *error, size_t error_size);
/* Drains the subscriptions within drain_ms, completes what is being
 * written, closes the log. NULL is fine. */
void kci_persister_stop(kci_persister *persister, int64_t drain_ms);
void kci_persister_stats_get(kci_persister *persister, kci_persister_stats *out);
/* Applies retention now; returns the number of segments removed. */
uint32_t kci_persister_compact(kci_persister *persister, int64_t retention_ms);
/* Brings dead requests back to pending (their attempts count from 0
 * again): those of type (NULL: any) and id (NULL: any). Each is recorded
 * in the log (a requeue marker) before it changes state, so a requeue
 * answered survives a crash. *requeued_out: how many. */
kc_err kci_persister_requeue(kci_persister *persister, const char *type, const kci_uuid *id,
                             uint64_t *requeued_out);

#endif
