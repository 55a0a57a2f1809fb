/* persister_internal.h - the persister's state, shared by its files (only
 * src/queue/ includes this):
 *
 *   persister.c   start and stop, the subscriptions, the context pool
 *   state.c       the request states, the pending array, the segment table
 *   rebuild.c     the index rebuilt from the log at start
 *   respond.c     what it sends: Kc headers, error replies, the reply-subject
 *                 guard on what comes in
 *   submit.c      kc.submit.<type>: store, acknowledge, dispatch
 *   replies.c     the services' replies, Kc-Notify forwards, kc.reply.get
 *   redelivery.c  the redelivery thread, backoff, dead requests, retention
 *   waiting.c     requests that wait for a service: no responders, probes
 *   requeue.c     dead requests brought back (kc.sys.queue.requeue)
 *   observed.c    plain kc.req.> traffic kept with record_requests
 *   admin.c       kc.sys.queue.stats and kc.sys.queue.compact
 *
 * Threads: nats.c delivers each subscription on its own thread (submits,
 * replies, kc.reply.get, admin); the log's completer thread runs the done
 * callbacks, which acknowledge and dispatch; one redelivery thread checks
 * for requests whose reply is overdue and applies retention. One mutex
 * (kci_persister.lock) guards the index, the pending array, the segment
 * table and the context pool; nothing slow (disk, network) runs under it.
 * A function named *_locked, and every function of state.c, expects it
 * held. */
#ifndef KCI_PERSISTER_INTERNAL_H
#define KCI_PERSISTER_INTERNAL_H

#include <limits.h>
#include <nats/nats.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "index.h"
#include "persister.h"
#include "record.h"
#include "service/headers.h"
#include "service/micro.h"
#include "service/subscriptions.h"
#include "service/uuid.h"

#define KCI_PERSISTER_REQUEST_PREFIX "kc.req."
#define KCI_PERSISTER_INBOX_PREFIX "_KCQ."

enum {
    KCI_PERSISTER_SUBJECT_BYTES_MAX = KCI_RECORD_FIELD_BYTES_MAX,
    KCI_PERSISTER_INBOX_BYTES = 64,
    KCI_PERSISTER_ID_TEXT_BYTES = KC_UUID_TEXT_BYTES + 1,
    KCI_PERSISTER_TYPES_MAX = 1024, /* types whose requests can wait for a service */
    KCI_PERSISTER_TYPE_SLOTS = 2 * KCI_PERSISTER_TYPES_MAX, /* the type table's hash slots */
    KCI_PERSISTER_PROBES_MAX = 64,                          /* probes sent per redelivery check */
    KCI_PERSISTER_PROBE_WAIT_MS = 200, /* a probe without "no responders" by then was served */
    KCI_PERSISTER_ENDPOINTS = 5,       /* of the services protocol: see subscribe_all */
};
#define KCI_PERSISTER_TYPE_NONE UINT16_MAX /* a request whose type has no row (table full) */
#define KCI_PERSISTER_WAITING INT64_MAX    /* due_ms of a request waiting for a service */

/* A type's dispatch state (waiting.c). */
typedef enum kci_persister_type_state {
    KCI_PERSISTER_TYPE_SERVED = 0,  /* dispatch as usual */
    KCI_PERSISTER_TYPE_WAITING = 1, /* nobody serves it: its requests wait; a probe at probe_ms */
    KCI_PERSISTER_TYPE_PROBING = 2, /* a probe went out at probe_ms */
} kci_persister_type_state;

typedef struct kci_persister_type {
    char name[KC_TYPE_BYTES_MAX + 1];
    uint8_t state;     /* kci_persister_type_state */
    kci_uuid probe_id; /* a waiting request of the type: the next probe, or the one out */
    int64_t probe_ms;  /* WAITING: when the next probe goes; PROBING: when it went */
} kci_persister_type;

/* A waiting request sent as its type's probe (read back from the log). */
typedef struct kci_persister_probe {
    kci_uuid id;
    kci_position position;
    uint16_t type_slot;
} kci_persister_probe;

typedef enum kci_persister_context_kind {
    KCI_PERSISTER_CONTEXT_REQUEST,
    KCI_PERSISTER_CONTEXT_REPLY
} kci_persister_context_kind;

/* One append awaiting its sync. */
typedef struct kci_persister_context {
    kci_persister *persister;
    natsMsg *message;   /* the submit or the reply, owned until done */
    const char *notify; /* a request's Kc-Notify, in message's headers, or NULL */
    kci_uuid id;
    kci_persister_context_kind kind;
    struct kci_persister_context *next_free;
} kci_persister_context;

/* A request waiting for its reply; the due time lives here so the
 * redelivery scan touches the index only for requests that are due. */
typedef struct kci_persister_pending_item {
    kci_uuid id;
    int64_t due_ms; /* next dispatch, monotonic ms */
} kci_persister_pending_item;

/* A plain request whose reply is awaited (record_requests). */
typedef struct kci_persister_observed_slot {
    uint64_t subject_hash; /* of its reply subject; 0: free */
    kci_uuid id;
    int64_t expires_ms;
} kci_persister_observed_slot;

typedef struct kci_persister_segment_info {
    uint32_t unresolved; /* requests in it without reply or tombstone */
    int64_t newest_ms;   /* wall time of its newest record */
} kci_persister_segment_info;

struct kci_persister {
    natsConnection *connection;
    kci_persister_config config;
    char directory[PATH_MAX];
    char node[KC_NODE_BYTES_MAX + 1];
    char inbox[KCI_PERSISTER_INBOX_BYTES]; /* "_KCQ.<random>": replies come to <inbox>.<id> */
    kci_queue_log *log;
    kci_subscriptions subscriptions;
    uint8_t *get_buffer; /* kc.reply.get's record buffer (its own thread) */
    /* The services protocol (micro.h): submit, reply_get, stats, compact,
     * requeue; the responder, NULL offline or when it could not start. */
    kci_micro_stats endpoint_stats[KCI_PERSISTER_ENDPOINTS];
    kci_micro *micro;

    pthread_mutex_t lock; /* everything below */
    pthread_cond_t context_free;
    pthread_cond_t wake; /* the redelivery thread */
    kci_index index;
    kci_persister_pending_item *pending;
    uint32_t pending_count, pending_capacity;
    int64_t pending_due_min_ms;
    kci_persister_segment_info *segments;
    uint32_t segment_base; /* the number of segments[0] */
    uint32_t segment_count, segment_capacity;
    bool segment_counts_inexact;     /* see state.c: an unresolved count may be short */
    kci_persister_context *contexts; /* KCI_PERSISTER_IN_FLIGHT_MAX */
    kci_persister_context *free_contexts;
    uint32_t contexts_taken; /* out of the pool: appends in flight or about to be */
    bool stopping;
    kci_persister_stats stats;

    kci_persister_type *types; /* KCI_PERSISTER_TYPES_MAX rows, type_count used */
    uint16_t *type_slots;      /* KCI_PERSISTER_TYPE_SLOTS: row + 1, 0 free */
    uint32_t type_count;
    uint32_t types_waiting; /* rows not SERVED */
    bool subscribed;        /* its inbox listens: a probe's "no responders" can come back */

    kci_persister_observed_slot *observed; /* KCI_PERSISTER_OBSERVED_MAX, with record_requests */
    uint64_t observed_seed;

    pthread_t redelivery_thread;
    bool redelivery_started;
    uint8_t *redelivery_buffer;
};

/* persister.c: the context pool. take returns NULL once stopping. */
kci_persister_context *kci_persister_context_take(kci_persister *persister);
void kci_persister_context_give(kci_persister *persister, kci_persister_context *context);
void kci_persister_context_give_locked(kci_persister *persister, kci_persister_context *context);

/* state.c: every function here expects the lock held (or, in rebuild.c at
 * start, no other thread running yet). */
void kci_persister_entry_storing(kci_index_entry *entry);
/* true: dispatch it now; false: its type waits for a service, so it waits
 * too (waiting.c). */
bool kci_persister_entry_stored(kci_persister *persister, kci_index_entry *entry,
                                kci_position position, const char *notify, int64_t due_ms,
                                uint16_t type_slot);
void kci_persister_entry_store_failed(kci_persister *persister, kci_index_entry *entry);
bool kci_persister_entry_replying(kci_persister *persister, kci_index_entry *entry);
/* Returns the Kc-Notify subject to forward the reply to (the caller frees
 * it), or NULL. */
char *kci_persister_entry_replied(kci_persister *persister, kci_index_entry *entry,
                                  kci_position position);
void kci_persister_entry_reply_failed(kci_index_entry *entry);
void kci_persister_entry_dead(kci_persister *persister, kci_index_entry *entry);
void kci_persister_entry_requeued(kci_persister *persister, kci_index_entry *entry, int64_t now_ms);
bool kci_persister_pending_add(kci_persister *persister, kci_index_entry *entry, int64_t due_ms);
void kci_persister_pending_remove(kci_persister *persister, kci_index_entry *entry);
void kci_persister_segment_add_request(kci_persister *persister, kci_position position);
void kci_persister_segment_touch(kci_persister *persister, kci_position position, int64_t wall_ms);
void kci_persister_segment_resolve(kci_persister *persister, kci_position request);
/* The first segment retention may not remove: every segment below it is
 * before segment_current, resolved and older than cutoff_ms. */
uint32_t kci_persister_segments_removable_below(const kci_persister *persister,
                                                uint32_t segment_current, int64_t cutoff_ms);
void kci_persister_segments_forget_below(kci_persister *persister, uint32_t below);

/* rebuild.c */
kc_err kci_persister_rebuild_record(void *closure, const kci_record *record, kci_position position);
kc_err kci_persister_rebuild_finish(kci_persister *persister);
void kci_persister_rebuild_log(const kci_persister *persister, const kci_scan_report *report);

/* respond.c */
void kci_persister_hlc_now(int64_t *wall_ms, uint32_t *counter);
void kci_persister_set_header(natsMsg *message, const char *name, const char *value);
void kci_persister_stamp(kci_persister *persister, natsMsg *message, const char *id_text);
/* Publishes and destroys message. */
void kci_persister_publish(kci_persister *persister, natsMsg *message);
/* An error reply "<code> <message>" to subject (nothing if there is none). */
void kci_persister_respond_error(kci_persister *persister, const char *subject, const char *id_text,
                                 int code, const char *state, const char *format, ...)
    __attribute__((format(printf, 6, 7)));
/* false (and the message destroyed) when its reply subject is not one the
 * persister may answer. */
bool kci_persister_answerable(kci_persister *persister, natsMsg *message, const char *what);

/* submit.c */
void kci_persister_on_submit(natsConnection *connection, natsSubscription *subscription,
                             natsMsg *message, void *closure);
void kci_persister_dispatch(kci_persister *persister, const char *id_text, const char *subject,
                            const void *payload, int payload_length);
void kci_persister_flush_published(void *closure);

/* replies.c */
void kci_persister_on_reply(natsConnection *connection, natsSubscription *subscription,
                            natsMsg *message, void *closure);
void kci_persister_on_reply_get(natsConnection *connection, natsSubscription *subscription,
                                natsMsg *message, void *closure);
void kci_persister_build_reply_record(kci_record *record, natsMsg *message, const kci_uuid *id);

/* redelivery.c */
void *kci_persister_redelivery_main(void *argument);
int64_t kci_persister_backoff_ms(const kci_persister *persister, uint16_t attempts);
/* A redelivery, requeue (attempt 0) or tombstone record, stamped now. */
kci_record kci_persister_marker(kci_record_kind kind, const kci_uuid *id, uint16_t attempt);
/* The done callback of records nobody waits for (markers, observed). */
void kci_persister_on_marker_done(void *closure, kc_err status, kci_position position);

/* observed.c */
void kci_persister_on_observed_request(natsConnection *connection, natsSubscription *subscription,
                                       natsMsg *message, void *closure);
void kci_persister_on_observed_reply(natsConnection *connection, natsSubscription *subscription,
                                     natsMsg *message, void *closure);

/* waiting.c: the type table and waiting requests; *_locked expect the
 * lock held. */
bool kci_persister_types_init(kci_persister *persister);
void kci_persister_types_free(kci_persister *persister);
/* The row of a type (a bare type name), added if new; TYPE_NONE when the
 * table is full. */
uint16_t kci_persister_type_slot_locked(kci_persister *persister, const char *type,
                                        size_t type_length);
bool kci_persister_type_waiting_locked(const kci_persister *persister, uint16_t type_slot);
/* The pending entry waits for its type's service; the type waits from
 * now, its first probe at probe_at_ms: true if it did not wait before. */
bool kci_persister_park_locked(kci_persister *persister, kci_index_entry *entry,
                               int64_t probe_at_ms);
/* A "no responders" status for a dispatch of id. */
void kci_persister_on_no_responders(kci_persister *persister, const kci_uuid *id);
/* Releases the types whose probe was served, and picks the probes due
 * (at most bound); returns how many. released_out: requests released. */
uint32_t kci_persister_probes_collect_locked(kci_persister *persister, int64_t now_ms,
                                             kci_persister_probe *probes, uint32_t bound,
                                             uint64_t *released_out);
/* The probes could not be sent: their types wait for the next interval. */
void kci_persister_probes_unsent(kci_persister *persister, const kci_persister_probe *probes,
                                 uint32_t count);
uint64_t kci_persister_waiting_count_locked(const kci_persister *persister);

/* requeue.c */
void kci_persister_on_requeue(natsConnection *connection, natsSubscription *subscription,
                              natsMsg *message, void *closure);

/* admin.c */
/* Answers request with text (and frees it); NULL (out of memory) answers
 * nothing. */
void kci_persister_respond_json(kci_persister *persister, natsMsg *request, char *text);
void kci_persister_on_stats(natsConnection *connection, natsSubscription *subscription,
                            natsMsg *message, void *closure);
void kci_persister_on_compact(natsConnection *connection, natsSubscription *subscription,
                              natsMsg *message, void *closure);

#endif
