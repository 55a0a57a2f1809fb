/* persister.c - durable requests (see persister.h and docs/queue.md).
 *
 * Threads: nats.c delivers each subscription on its own thread (submits,
 * replies, kc.reply.get, admin); the log's completer thread runs the done
 * callbacks, which acknowledge and dispatch; one redelivery thread checks
 * for requests whose reply is overdue and applies retention. One mutex
 * guards the index, the pending array, the segment table and the context
 * pool; nothing slow (disk, network) runs under it.
 *
 * Request life: STORING (append in flight; a second submit of the id gets
 * 409) -> PENDING (durable: acknowledged, dispatched, in the pending array)
 * -> REPLYING (the reply's append in flight; further replies are dropped)
 * -> REPLIED; or PENDING -> DEAD after attempts_max dispatches. A failed
 * request append removes the entry (the submitter gets an error, never an
 * acknowledgement); a failed reply append puts it back to PENDING, so the
 * request is dispatched again and the service answers from its idempotence
 * cache.
 *
 * Hot path: the submit's natsMsg itself is kept (not copied) until its
 * record is durable, in a context from a fixed pool of
 * KCI_PERSISTER_IN_FLIGHT_MAX; the record is encoded straight into the log's
 * batch. The only allocations per submit are nats.c's own messages. */
#include "persister.h"

#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/clock.h"
#include "common/hash.h"
#include "common/log.h"
#include "index.h"
#include "service/headers.h"
#include "service/hlc.h"
#include "service/reply_subject.h"
#include "service/uuid.h"

#define REQUEST_PREFIX "kc.req."
#define INBOX_PREFIX "_KCQ."
#define DEFAULT_DIRECTORY "data/queue"
#define DEFAULT_NODE "persister"

enum {
    SUBJECT_BYTES_MAX = KCI_RECORD_FIELD_BYTES_MAX,
    INBOX_BYTES = 64,
    ERROR_TEXT_BYTES = 256,
    ID_TEXT_BYTES = KC_UUID_TEXT_BYTES + 1,
    SUBSCRIPTION_COUNT = 7, /* the last two only with record_requests */
    STOP_MARGIN_MS = 2000,
    FLUSH_TIMEOUT_MS = 1000,
    SEGMENT_TABLE_MIN = 16,
};

typedef enum context_kind { CONTEXT_REQUEST, CONTEXT_REPLY } context_kind;

/* One append awaiting its sync. */
typedef struct append_context {
    kci_persister *persister;
    natsMsg *message; /* the submit or the reply, owned until done */
    kci_uuid id;
    context_kind kind;
    struct append_context *next_free;
} append_context;

/* A request waiting for its reply; the due time lives here so the
 * redelivery scan touches the index only for requests that are due. */
typedef struct pending_item {
    kci_uuid id;
    int64_t due_ms; /* next dispatch, monotonic ms */
} pending_item;

/* A plain request whose reply is awaited (record_requests). */
typedef struct observed_slot {
    uint64_t subject_hash; /* of its reply subject; 0: free */
    kci_uuid id;
    int64_t expires_ms;
} observed_slot;

typedef struct segment_info {
    uint32_t unresolved; /* requests in it without reply or tombstone */
    int64_t newest_ms;   /* wall time of its newest record */
} segment_info;

struct kci_persister {
    natsConnection *connection;
    kci_persister_config config;
    char directory[PATH_MAX];
    char node[KC_NODE_BYTES_MAX + 1];
    char inbox[INBOX_BYTES]; /* "_KCQ.<random>": replies come to <inbox>.<id> */
    kci_queue_log *log;
    natsSubscription *subscriptions[SUBSCRIPTION_COUNT];
    uint8_t *get_buffer; /* kc.reply.get's record buffer (its own thread) */

    pthread_mutex_t lock; /* everything below */
    pthread_cond_t context_free;
    pthread_cond_t wake; /* the redelivery thread */
    kci_index index;
    pending_item *pending;
    uint32_t pending_count, pending_capacity;
    int64_t pending_due_min_ms;
    segment_info *segments;
    uint32_t segment_base; /* the number of segments[0] */
    uint32_t segment_count, segment_capacity;
    append_context *contexts;
    append_context *free_contexts;
    bool stopping;
    kci_persister_stats stats;

    observed_slot *observed; /* KCI_PERSISTER_OBSERVED_MAX, with record_requests */
    uint64_t observed_seed;

    pthread_t redelivery_thread;
    bool redelivery_started;
    uint8_t *redelivery_buffer;
};

static void on_marker_done(void *closure, kc_err status, kci_position position);

/* ---- small helpers ---------------------------------------------------------- */

static void hlc_now(int64_t *wall_ms, uint32_t *counter)
{
    kci_hlc_timestamp now;
    kci_hlc_now(kci_process_hlc(), &now);
    *wall_ms = now.wall_ms;
    *counter = now.counter;
}

static void set_header(natsMsg *message, const char *name, const char *value)
{
    if (natsMsgHeader_Set(message, name, value) != NATS_OK)
        kci_debug("queue: cannot set header %s", name);
}

static void stamp_common(kci_persister *persister, natsMsg *message, const char *id_text)
{
    char ts[KCI_HLC_TEXT_BYTES_MAX];
    kci_hlc_timestamp now;
    kci_hlc_now(kci_process_hlc(), &now);
    kci_hlc_format(&now, ts);
    set_header(message, KCI_HEADER_ID, id_text);
    set_header(message, KCI_HEADER_TS, ts);
    set_header(message, KCI_HEADER_NODE, persister->node);
}

static void publish(kci_persister *persister, natsMsg *message)
{
    natsStatus status = natsConnection_PublishMsg(persister->connection, message);
    if (status != NATS_OK) kci_debug("queue: cannot publish: %s", natsStatus_GetText(status));
    natsMsg_Destroy(message);
}

/* An error reply "<code> <message>" to subject (nothing if there is none). */
static void respond_error(kci_persister *persister, const char *subject, const char *id_text,
                          int code, const char *state, const char *format, ...)
    __attribute__((format(printf, 6, 7)));

static void respond_error(kci_persister *persister, const char *subject, const char *id_text,
                          int code, const char *state, const char *format, ...)
{
    if (subject == NULL || subject[0] == '\0') return;
    /* Checked where the subject came in; this is the last line of defence
     * against publishing for a client outside its inbox (reply_subject.h). */
    if (!kci_reply_subject_allowed(subject, KCI_REPLY_ANSWER)) return;
    char text[ERROR_TEXT_BYTES];
    int prefix = snprintf(text, sizeof text, "%d ", code);
    va_list arguments;
    va_start(arguments, format);
    vsnprintf(text + prefix, sizeof text - (size_t)prefix, format, arguments);
    va_end(arguments);
    natsMsg *message = NULL;
    if (natsMsg_Create(&message, subject, NULL, NULL, 0) != NATS_OK) return;
    char fresh[ID_TEXT_BYTES];
    if (id_text == NULL) kci_uuid_v7_text(fresh);
    stamp_common(persister, message, id_text != NULL ? id_text : fresh);
    set_header(message, KCI_HEADER_ERROR, text);
    if (state != NULL) set_header(message, KCI_HEADER_QUEUE_STATE, state);
    publish(persister, message);
}

/* ---- the segment table (under the lock) ------------------------------------- */

static segment_info *segment_at(kci_persister *persister, uint32_t number)
{
    if (persister->segment_count == 0) persister->segment_base = number;
    if (number < persister->segment_base) return NULL; /* removed already */
    uint32_t index = number - persister->segment_base;
    if (index >= persister->segment_capacity) {
        uint32_t capacity = persister->segment_capacity < SEGMENT_TABLE_MIN
                                ? SEGMENT_TABLE_MIN
                                : persister->segment_capacity;
        while (capacity <= index)
            capacity *= 2;
        segment_info *grown = realloc(persister->segments, capacity * sizeof *grown);
        if (grown == NULL) return NULL;
        memset(grown + persister->segment_capacity, 0,
               (capacity - persister->segment_capacity) * sizeof *grown);
        persister->segments = grown;
        persister->segment_capacity = capacity;
    }
    if (index >= persister->segment_count) persister->segment_count = index + 1;
    return &persister->segments[index];
}

static void segment_touch(kci_persister *persister, kci_position position, int64_t wall_ms)
{
    segment_info *info = segment_at(persister, kci_position_segment(position));
    if (info != NULL && wall_ms > info->newest_ms) info->newest_ms = wall_ms;
}

static void segment_resolve(kci_persister *persister, kci_position request)
{
    segment_info *info = segment_at(persister, kci_position_segment(request));
    if (info != NULL && info->unresolved > 0) info->unresolved--;
}

/* ---- the pending array (under the lock) -------------------------------------- */

static bool pending_add(kci_persister *persister, kci_index_entry *entry, int64_t due_ms)
{
    if (persister->pending_count == persister->pending_capacity) {
        uint32_t capacity =
            persister->pending_capacity == 0 ? 1024 : persister->pending_capacity * 2;
        pending_item *grown = realloc(persister->pending, capacity * sizeof *grown);
        if (grown == NULL) return false;
        persister->pending = grown;
        persister->pending_capacity = capacity;
    }
    entry->pending_slot = persister->pending_count;
    persister->pending[persister->pending_count++] =
        (pending_item){.id = entry->id, .due_ms = due_ms};
    if (due_ms < persister->pending_due_min_ms) persister->pending_due_min_ms = due_ms;
    return true;
}

static void pending_remove(kci_persister *persister, kci_index_entry *entry)
{
    uint32_t slot = entry->pending_slot;
    if (slot == KCI_INDEX_NO_SLOT) return;
    assert(slot < persister->pending_count);
    uint32_t last = persister->pending_count - 1;
    if (slot != last) {
        persister->pending[slot] = persister->pending[last];
        kci_index_entry *moved = kci_index_find(&persister->index, &persister->pending[slot].id);
        assert(moved != NULL);
        moved->pending_slot = slot;
    }
    persister->pending_count--;
    entry->pending_slot = KCI_INDEX_NO_SLOT;
}

/* ---- the context pool ------------------------------------------------------------ */

static append_context *context_take(kci_persister *persister)
{
    pthread_mutex_lock(&persister->lock);
    while (persister->free_contexts == NULL && !persister->stopping)
        pthread_cond_wait(&persister->context_free, &persister->lock);
    append_context *context = persister->free_contexts;
    if (context != NULL) persister->free_contexts = context->next_free;
    pthread_mutex_unlock(&persister->lock);
    return context;
}

static void context_give_locked(kci_persister *persister, append_context *context)
{
    natsMsg_Destroy(context->message);
    context->message = NULL;
    context->next_free = persister->free_contexts;
    persister->free_contexts = context;
    pthread_cond_signal(&persister->context_free);
}

static void context_give(kci_persister *persister, append_context *context)
{
    pthread_mutex_lock(&persister->lock);
    context_give_locked(persister, context);
    pthread_mutex_unlock(&persister->lock);
}

/* ---- dispatch --------------------------------------------------------------------- */

/* Sends the request on its kc.req.<type> subject with the durable id, the
 * reply coming back to <inbox>.<id>. */
static void dispatch(kci_persister *persister, const char *id_text, const char *subject,
                     const void *payload, int payload_length)
{
    char reply[INBOX_BYTES + ID_TEXT_BYTES + 1];
    snprintf(reply, sizeof reply, "%s.%s", persister->inbox, id_text);
    natsMsg *message = NULL;
    if (natsMsg_Create(&message, subject, reply, payload, payload_length) != NATS_OK) return;
    stamp_common(persister, message, id_text);
    if (strncmp(subject, REQUEST_PREFIX, strlen(REQUEST_PREFIX)) == 0)
        set_header(message, KCI_HEADER_TYPE, subject + strlen(REQUEST_PREFIX));
    publish(persister, message);
}

static void acknowledge(kci_persister *persister, const char *reply_subject, const char *id_text)
{
    if (reply_subject == NULL || reply_subject[0] == '\0') return;
    if (!kci_reply_subject_allowed(reply_subject, KCI_REPLY_ANSWER)) return;
    char body[ID_TEXT_BYTES + 16];
    int length = snprintf(body, sizeof body, "{\"id\":\"%s\"}", id_text);
    natsMsg *message = NULL;
    if (natsMsg_Create(&message, reply_subject, NULL, body, length) != NATS_OK) return;
    /* Only Kc-Id: the acknowledgement is on the hot path, and each header
     * costs nats.c allocations. */
    set_header(message, KCI_HEADER_ID, id_text);
    publish(persister, message);
}

/* The log's completer thread, after a run of acknowledgements and
 * dispatches. On a connection that buffers publishes (kcobrad's persister
 * connection: no send asap) they go out now, together in one write, instead
 * of one write each (send asap) or after the 1 ms that nats.c's flusher
 * thread waits. The flush also waits for the server's PONG, so the next run
 * gathers the completions that arrived meanwhile. */
static void flush_published(void *closure)
{
    kci_persister *persister = closure;
    if (natsConnection_Buffered(persister->connection) <= 0 ||
        natsConnection_Status(persister->connection) != NATS_CONN_STATUS_CONNECTED)
        return;
    natsStatus status = natsConnection_FlushTimeout(persister->connection, FLUSH_TIMEOUT_MS);
    if (status != NATS_OK) kci_debug("queue: cannot flush: %s", natsStatus_GetText(status));
}

/* ---- kc.submit.<type> ----------------------------------------------------------- */

static int code_for_failure(kc_err status)
{
    return status == KC_ERR_IO && (errno == ENOSPC || errno == EFBIG || errno == EDQUOT)
               ? KCI_PERSISTER_CODE_NO_SPACE
               : KCI_PERSISTER_CODE_STORAGE;
}

/* The log's completer thread: the request is durable (or failed). */
static void on_request_done(void *closure, kc_err status, kci_position position)
{
    append_context *context = closure;
    kci_persister *persister = context->persister;
    int saved_errno = errno;
    char id_text[ID_TEXT_BYTES];
    kci_uuid_format(&context->id, id_text);
    natsMsg *message = context->message;
    const char *type = natsMsg_GetSubject(message) + strlen(KCI_SUBMIT_PREFIX);
    const char *notify = NULL;
    if (natsMsgHeader_Get(message, KCI_HEADER_NOTIFY, &notify) != NATS_OK) notify = NULL;
    int64_t now_ms = kci_monotonic_ms();
    pthread_mutex_lock(&persister->lock);
    kci_index_entry *entry = kci_index_find(&persister->index, &context->id);
    assert(entry != NULL && entry->state == KCI_ENTRY_STORING);
    if (status == KC_OK) {
        entry->state = KCI_ENTRY_PENDING;
        entry->request = position;
        entry->attempts = 1;
        entry->notify = notify != NULL ? strdup(notify) : NULL;
        pending_add(persister, entry, now_ms + persister->config.redelivery_timeout_ms);
        segment_info *info = segment_at(persister, kci_position_segment(position));
        if (info != NULL) info->unresolved++;
        segment_touch(persister, position, kci_wall_ms());
        persister->stats.submitted++;
    } else {
        kci_index_remove(&persister->index, entry);
        persister->stats.submit_failed++;
    }
    pthread_mutex_unlock(&persister->lock);
    if (status == KC_OK) {
        acknowledge(persister, natsMsg_GetReply(message), id_text);
        char subject[SUBJECT_BYTES_MAX + 1];
        snprintf(subject, sizeof subject, "%s%s", REQUEST_PREFIX, type);
        dispatch(persister, id_text, subject, natsMsg_GetData(message),
                 natsMsg_GetDataLength(message));
    } else {
        errno = saved_errno;
        int code = code_for_failure(status);
        respond_error(persister, natsMsg_GetReply(message), id_text, code, NULL,
                      "the request was not stored: %s",
                      code == KCI_PERSISTER_CODE_NO_SPACE ? "no space left for the queue"
                                                          : kc_strerror(status));
    }
    context_give(persister, context);
}

/* The request's id: its Kc-Id if it has a valid one (a retried submit is
 * then recognised), else a new UUIDv7. false: a malformed Kc-Id. */
static bool submit_id(natsMsg *message, kci_uuid *id)
{
    const char *value = NULL;
    if (natsMsgHeader_Get(message, KCI_HEADER_ID, &value) != NATS_OK || value == NULL) {
        kci_uuid_v7(id);
        return true;
    }
    return kci_uuid_parse(value, strlen(value), id) && !kci_uuid_is_nil_or_max(id);
}

/* The id is known already: acknowledge again (idempotent submit). */
static void answer_known(kci_persister *persister, natsMsg *message, const kci_index_entry *entry,
                         const char *id_text)
{
    persister->stats.duplicate_submits++;
    bool storing = entry->state == KCI_ENTRY_STORING;
    pthread_mutex_unlock(&persister->lock);
    if (storing)
        respond_error(persister, natsMsg_GetReply(message), id_text, KCI_PERSISTER_CODE_BUSY, NULL,
                      "request %s is being stored right now; retry", id_text);
    else
        acknowledge(persister, natsMsg_GetReply(message), id_text);
    natsMsg_Destroy(message);
}

/* A request whose reply subject is not an inbox gets no answer and is not
 * served: answering it would publish on a subject of the client's choosing
 * with the persister's identity (reply_subject.h). Takes the message when it
 * returns false. */
static bool answerable(kci_persister *persister, natsMsg *message, const char *what)
{
    const char *reply = natsMsg_GetReply(message);
    if (reply == NULL || reply[0] == '\0') return true;
    size_t length = strnlen(reply, KCI_REPLY_SUBJECT_BYTES_MAX + 1);
    const char *problem = kci_reply_subject_problem(reply, length, KCI_REPLY_ANSWER);
    if (problem == NULL) return true;
    pthread_mutex_lock(&persister->lock);
    persister->stats.refused_reply_subjects++;
    pthread_mutex_unlock(&persister->lock);
    kci_debug("queue: refused a %s whose reply subject %s", what, problem);
    natsMsg_Destroy(message);
    return false;
}

static const char *submit_check(natsMsg *message, kci_uuid *id, int *code)
{
    const char *subject = natsMsg_GetSubject(message);
    const char *type = subject + strlen(KCI_SUBMIT_PREFIX);
    *code = KCI_PERSISTER_CODE_BAD_REQUEST;
    if (strlen(type) > KC_TYPE_BYTES_MAX || !kci_token_valid(type))
        return "the type after kc.submit. must be one subject token";
    if (!submit_id(message, id)) return "Kc-Id is not a UUID";
    const char *notify = NULL;
    if (natsMsgHeader_Get(message, KCI_HEADER_NOTIFY, &notify) != NATS_OK) notify = NULL;
    /* The persister forwards the service's reply there with its own
     * identity: only to the client's inbox (reply_subject.h). */
    if (notify != NULL && !kci_reply_subject_allowed(notify, KCI_REPLY_NOTIFY))
        return "Kc-Notify must be a literal subject under _INBOX. (the client's own inbox)";
    *code = KCI_PERSISTER_CODE_TOO_LARGE;
    if (natsMsg_GetDataLength(message) > KCI_RECORD_PAYLOAD_BYTES_MAX) return "payload too large";
    *code = 0;
    return NULL;
}

static void build_request_record(kci_record *record, natsMsg *message, const kci_uuid *id,
                                 char *subject, size_t subject_size)
{
    const char *type = natsMsg_GetSubject(message) + strlen(KCI_SUBMIT_PREFIX);
    int subject_length = snprintf(subject, subject_size, "%s%s", REQUEST_PREFIX, type);
    const char *reply = natsMsg_GetReply(message);
    const char *client = NULL;
    if (natsMsgHeader_Get(message, KCI_HEADER_NODE, &client) != NATS_OK || client == NULL)
        client = "";
    memset(record, 0, sizeof *record);
    record->kind = KCI_RECORD_REQUEST;
    record->id = *id;
    hlc_now(&record->ts_wall_ms, &record->ts_counter);
    record->attempt = 1;
    record->subject = subject;
    record->subject_length = (uint16_t)subject_length;
    record->reply = reply != NULL ? reply : "";
    record->reply_length = (uint16_t)strlen(record->reply);
    record->client = client;
    record->client_length =
        (uint16_t)(strlen(client) > KCI_RECORD_FIELD_BYTES_MAX ? KCI_RECORD_FIELD_BYTES_MAX
                                                               : strlen(client));
    record->payload = natsMsg_GetData(message);
    record->payload_length = (uint32_t)natsMsg_GetDataLength(message);
}

static void on_submit(natsConnection *connection, natsSubscription *subscription, natsMsg *message,
                      void *closure)
{
    kci_persister *persister = closure;
    if (!answerable(persister, message, "kc.submit")) return;
    kci_uuid id;
    int code = 0;
    const char *problem = submit_check(message, &id, &code);
    char id_text[ID_TEXT_BYTES];
    if (problem != NULL) {
        respond_error(persister, natsMsg_GetReply(message), NULL, code, NULL, "%s", problem);
        natsMsg_Destroy(message);
        return;
    }
    kci_uuid_format(&id, id_text);
    append_context *context = context_take(persister);
    if (context == NULL) { /* stopping */
        respond_error(persister, natsMsg_GetReply(message), id_text, KCI_PERSISTER_CODE_UNAVAILABLE,
                      NULL, "the persister is stopping");
        natsMsg_Destroy(message);
        return;
    }
    pthread_mutex_lock(&persister->lock);
    bool created = false;
    kci_index_entry *entry = kci_index_insert(&persister->index, &id, &created);
    if (entry != NULL && !created) {
        context_give_locked(persister, context);
        answer_known(persister, message, entry, id_text); /* unlocks */
        return;
    }
    if (entry != NULL) entry->state = KCI_ENTRY_STORING;
    pthread_mutex_unlock(&persister->lock);
    if (entry == NULL) {
        context_give(persister, context);
        respond_error(persister, natsMsg_GetReply(message), id_text, KCI_PERSISTER_CODE_UNAVAILABLE,
                      NULL, "the queue index is full");
        natsMsg_Destroy(message);
        return;
    }
    *context = (append_context){
        .persister = persister, .message = message, .id = id, .kind = CONTEXT_REQUEST};
    char subject[SUBJECT_BYTES_MAX + 1];
    kci_record record;
    build_request_record(&record, message, &id, subject, sizeof subject);
    kc_err err = kci_queue_log_append(persister->log, &record, on_request_done, context);
    if (err != KC_OK) on_request_done(context, err, 0); /* removes, answers, frees */
}

/* ---- replies from services ---------------------------------------------------------- */

static void on_reply_done(void *closure, kc_err status, kci_position position)
{
    append_context *context = closure;
    kci_persister *persister = context->persister;
    char *notify = NULL;
    pthread_mutex_lock(&persister->lock);
    kci_index_entry *entry = kci_index_find(&persister->index, &context->id);
    if (entry != NULL && entry->state == KCI_ENTRY_REPLYING) {
        if (status == KC_OK) {
            entry->state = KCI_ENTRY_REPLIED;
            entry->reply = position;
            pending_remove(persister, entry);
            if (entry->state_before_reply != KCI_ENTRY_DEAD)
                segment_resolve(persister, entry->request);
            segment_touch(persister, position, kci_wall_ms());
            notify = entry->notify;
            entry->notify = NULL;
            persister->stats.replies_recorded++;
            persister->stats.replied++;
            if (entry->state_before_reply == KCI_ENTRY_DEAD && persister->stats.dead > 0)
                persister->stats.dead--;
        } else {
            entry->state = entry->state_before_reply; /* dispatched again later */
        }
    }
    pthread_mutex_unlock(&persister->lock);
    if (status != KC_OK)
        kci_warn("queue: a reply could not be stored (%s); its request will be dispatched again",
                 kc_strerror(status));
    if (notify != NULL) {
        natsMsg *reply = context->message;
        natsMsg *forward = NULL;
        char id_text[ID_TEXT_BYTES];
        kci_uuid_format(&context->id, id_text);
        if (natsMsg_Create(&forward, notify, NULL, natsMsg_GetData(reply),
                           natsMsg_GetDataLength(reply)) == NATS_OK) {
            const char *value = NULL;
            stamp_common(persister, forward, id_text);
            set_header(forward, KCI_HEADER_REPLY_TO, id_text);
            if (natsMsgHeader_Get(reply, KCI_HEADER_ERROR, &value) == NATS_OK && value != NULL)
                set_header(forward, KCI_HEADER_ERROR, value);
            set_header(forward, KCI_HEADER_QUEUE_STATE, "replied");
            publish(persister, forward);
        }
        free(notify);
    }
    context_give(persister, context);
}

static void build_reply_record(kci_record *record, natsMsg *message, const kci_uuid *id)
{
    const char *error = NULL, *node = NULL;
    if (natsMsgHeader_Get(message, KCI_HEADER_ERROR, &error) != NATS_OK || error == NULL)
        error = "";
    if (natsMsgHeader_Get(message, KCI_HEADER_NODE, &node) != NATS_OK || node == NULL) node = "";
    memset(record, 0, sizeof *record);
    record->kind = KCI_RECORD_REPLY;
    record->id = *id;
    hlc_now(&record->ts_wall_ms, &record->ts_counter);
    record->subject = "";
    record->reply = error;
    size_t error_length = strlen(error), node_length = strlen(node);
    record->reply_length =
        (uint16_t)(error_length > KCI_RECORD_FIELD_BYTES_MAX ? KCI_RECORD_FIELD_BYTES_MAX
                                                             : error_length);
    record->client = node;
    record->client_length =
        (uint16_t)(node_length > KCI_RECORD_FIELD_BYTES_MAX ? KCI_RECORD_FIELD_BYTES_MAX
                                                            : node_length);
    record->payload = natsMsg_GetData(message);
    record->payload_length = (uint32_t)natsMsg_GetDataLength(message);
}

static void on_reply(natsConnection *connection, natsSubscription *subscription, natsMsg *message,
                     void *closure)
{
    kci_persister *persister = closure;
    const char *subject = natsMsg_GetSubject(message);
    size_t prefix_length = strlen(persister->inbox) + 1;
    kci_uuid id;
    if (strlen(subject) != prefix_length + KC_UUID_TEXT_BYTES ||
        !kci_uuid_parse(subject + prefix_length, KC_UUID_TEXT_BYTES, &id) ||
        natsMsg_GetDataLength(message) > KCI_RECORD_PAYLOAD_BYTES_MAX) {
        natsMsg_Destroy(message);
        return;
    }
    /* "No responders" (status 503 from the server, no service subscribed,
     * e.g. while services reconnect after a restart) is not an answer: the
     * request stays pending and is dispatched again. */
    if (natsMsg_IsNoResponders(message)) {
        natsMsg_Destroy(message);
        return;
    }
    /* 409 from a service: the same Kc-Id is still being handled there (an
     * earlier dispatch). Not an answer: the earlier one's reply will come,
     * or the request is dispatched again. */
    const char *error = NULL;
    if (natsMsgHeader_Get(message, KCI_HEADER_ERROR, &error) == NATS_OK && error != NULL &&
        strncmp(error, "409", 3) == 0 && (error[3] == ' ' || error[3] == '\0')) {
        natsMsg_Destroy(message);
        return;
    }
    pthread_mutex_lock(&persister->lock);
    kci_index_entry *entry = kci_index_find(&persister->index, &id);
    bool take =
        entry != NULL && (entry->state == KCI_ENTRY_PENDING || entry->state == KCI_ENTRY_DEAD);
    if (take) {
        entry->state_before_reply = entry->state;
        entry->state = KCI_ENTRY_REPLYING;
    } else {
        persister->stats.replies_duplicate++;
    }
    pthread_mutex_unlock(&persister->lock);
    if (!take) {
        natsMsg_Destroy(message);
        return;
    }
    append_context *context = context_take(persister);
    if (context == NULL) { /* stopping: it is dispatched again after the restart */
        pthread_mutex_lock(&persister->lock);
        entry = kci_index_find(&persister->index, &id);
        if (entry != NULL) entry->state = entry->state_before_reply;
        pthread_mutex_unlock(&persister->lock);
        natsMsg_Destroy(message);
        return;
    }
    *context = (append_context){
        .persister = persister, .message = message, .id = id, .kind = CONTEXT_REPLY};
    kci_record record;
    build_reply_record(&record, message, &id);
    kc_err err = kci_queue_log_append(persister->log, &record, on_reply_done, context);
    if (err != KC_OK) on_reply_done(context, err, 0);
}

/* ---- plain kc.req.> traffic (record_requests) ----------------------------------------- */

static observed_slot *observed_at(kci_persister *persister, uint64_t hash)
{
    return &persister->observed[hash & (KCI_PERSISTER_OBSERVED_MAX - 1)];
}

static uint64_t subject_hash(const kci_persister *persister, const char *subject)
{
    uint64_t hash = kci_hash_bytes_seeded(subject, strlen(subject), persister->observed_seed);
    return hash != 0 ? hash : 1; /* 0 marks a free slot */
}

static void observed_record(kci_persister *persister, natsMsg *message, kci_record_kind kind,
                            const kci_uuid *id)
{
    kci_record record;
    if (kind == KCI_RECORD_OBSERVED_REPLY) {
        build_reply_record(&record, message, id);
    } else {
        const char *subject = natsMsg_GetSubject(message);
        const char *reply = natsMsg_GetReply(message);
        const char *client = NULL;
        if (natsMsgHeader_Get(message, KCI_HEADER_NODE, &client) != NATS_OK || client == NULL)
            client = "";
        record = (kci_record){.id = *id,
                              .subject = subject,
                              .reply = reply != NULL ? reply : "",
                              .client = client,
                              .payload = natsMsg_GetData(message),
                              .payload_length = (uint32_t)natsMsg_GetDataLength(message)};
        record.subject_length = (uint16_t)strlen(record.subject);
        record.reply_length = (uint16_t)strlen(record.reply);
        record.client_length = (uint16_t)strlen(record.client);
        hlc_now(&record.ts_wall_ms, &record.ts_counter);
    }
    record.kind = kind;
    if (kci_record_size(&record) == 0 ||
        kci_queue_log_append(persister->log, &record, on_marker_done, persister) != KC_OK)
        kci_debug("queue: an observed %s was not kept",
                  kind == KCI_RECORD_OBSERVED_REPLY ? "reply" : "request");
}

static void on_observed_request(natsConnection *connection, natsSubscription *subscription,
                                natsMsg *message, void *closure)
{
    kci_persister *persister = closure;
    const char *reply = natsMsg_GetReply(message);
    size_t inbox_length = strlen(persister->inbox);
    /* Our own dispatches are kept as durable requests already. */
    if (reply != NULL && strncmp(reply, persister->inbox, inbox_length) == 0) {
        natsMsg_Destroy(message);
        return;
    }
    kci_uuid id;
    const char *id_text = NULL;
    if (natsMsgHeader_Get(message, KCI_HEADER_ID, &id_text) != NATS_OK || id_text == NULL ||
        !kci_uuid_parse(id_text, strlen(id_text), &id))
        kci_uuid_v7(&id);
    if (strlen(natsMsg_GetSubject(message)) <= KCI_RECORD_FIELD_BYTES_MAX &&
        (reply == NULL || strlen(reply) <= KCI_RECORD_FIELD_BYTES_MAX)) {
        observed_record(persister, message, KCI_RECORD_OBSERVED_REQUEST, &id);
        if (reply != NULL && reply[0] != '\0') {
            uint64_t hash = subject_hash(persister, reply);
            pthread_mutex_lock(&persister->lock);
            *observed_at(persister, hash) =
                (observed_slot){.subject_hash = hash,
                                .id = id,
                                .expires_ms = kci_monotonic_ms() + KCI_PERSISTER_OBSERVED_TTL_MS};
            pthread_mutex_unlock(&persister->lock);
        }
    }
    natsMsg_Destroy(message);
}

static void on_observed_reply(natsConnection *connection, natsSubscription *subscription,
                              natsMsg *message, void *closure)
{
    kci_persister *persister = closure;
    uint64_t hash = subject_hash(persister, natsMsg_GetSubject(message));
    pthread_mutex_lock(&persister->lock);
    observed_slot *slot = observed_at(persister, hash);
    bool awaited = slot->subject_hash == hash && slot->expires_ms >= kci_monotonic_ms() &&
                   !natsMsg_IsNoResponders(message);
    kci_uuid id = slot->id;
    if (awaited) slot->subject_hash = 0; /* one reply per request */
    pthread_mutex_unlock(&persister->lock);
    if (awaited && natsMsg_GetDataLength(message) <= KCI_RECORD_PAYLOAD_BYTES_MAX)
        observed_record(persister, message, KCI_RECORD_OBSERVED_REPLY, &id);
    natsMsg_Destroy(message);
}

/* ---- kc.reply.get --------------------------------------------------------------------- */

/* The id in a kc.reply.get payload: the bare id, or {"id":"..."}. */
static bool get_id(natsMsg *message, kci_uuid *id)
{
    const char *data = natsMsg_GetData(message);
    int length = natsMsg_GetDataLength(message);
    while (length > 0 && (data[0] == ' ' || data[0] == '\n' || data[0] == '\t'))
        data++, length--;
    while (length > 0 && (data[length - 1] == ' ' || data[length - 1] == '\n' ||
                          data[length - 1] == '\r' || data[length - 1] == '\t'))
        length--;
    if (length == KC_UUID_TEXT_BYTES) return kci_uuid_parse(data, (size_t)length, id);
    if (length < 2 || data[0] != '{') return false;
    json_error_t json_error;
    json_t *root = json_loadb(data, (size_t)length, 0, &json_error);
    const char *text = json_string_value(json_object_get(root, "id"));
    bool parsed = text != NULL && kci_uuid_parse(text, strlen(text), id);
    json_decref(root);
    return parsed;
}

static void send_recorded_reply(kci_persister *persister, const char *to, const char *id_text,
                                kci_position position)
{
    kci_record record;
    kc_err err = kci_queue_log_read(persister->log, position, persister->get_buffer, &record);
    if (err != KC_OK || record.kind != KCI_RECORD_REPLY) {
        respond_error(persister, to, id_text, KCI_PERSISTER_CODE_STORAGE, NULL,
                      "the reply of %s cannot be read from the log: %s", id_text,
                      kc_strerror(err != KC_OK ? err : KC_ERR_CORRUPT));
        return;
    }
    natsMsg *message = NULL;
    if (natsMsg_Create(&message, to, NULL, record.payload, (int)record.payload_length) != NATS_OK)
        return;
    char node[KCI_RECORD_FIELD_BYTES_MAX + 1], error[KCI_RECORD_FIELD_BYTES_MAX + 1];
    snprintf(node, sizeof node, "%.*s", (int)record.client_length, record.client);
    snprintf(error, sizeof error, "%.*s", (int)record.reply_length, record.reply);
    stamp_common(persister, message, id_text);
    set_header(message, KCI_HEADER_REPLY_TO, id_text);
    set_header(message, KCI_HEADER_QUEUE_STATE, "replied");
    if (node[0] != '\0') set_header(message, "Kc-Replied-By", node);
    if (error[0] != '\0') set_header(message, KCI_HEADER_ERROR, error);
    publish(persister, message);
}

static void on_reply_get(natsConnection *connection, natsSubscription *subscription,
                         natsMsg *message, void *closure)
{
    kci_persister *persister = closure;
    if (!answerable(persister, message, "kc.reply.get")) return;
    const char *to = natsMsg_GetReply(message);
    kci_uuid id;
    char id_text[ID_TEXT_BYTES];
    if (!get_id(message, &id)) {
        respond_error(persister, to, NULL, KCI_PERSISTER_CODE_BAD_REQUEST, NULL,
                      "expected a request id (a UUID) or {\"id\":\"...\"}");
        natsMsg_Destroy(message);
        return;
    }
    kci_uuid_format(&id, id_text);
    pthread_mutex_lock(&persister->lock);
    kci_index_entry *entry = kci_index_find(&persister->index, &id);
    int state = entry != NULL ? entry->state : 0;
    kci_position reply = entry != NULL ? entry->reply : 0;
    int attempts = entry != NULL ? entry->attempts : 0;
    pthread_mutex_unlock(&persister->lock);
    if (state == KCI_ENTRY_REPLIED)
        send_recorded_reply(persister, to, id_text, reply);
    else if (state == 0)
        respond_error(persister, to, id_text, KCI_PERSISTER_CODE_NOT_FOUND, "unknown",
                      "no request %s in the queue", id_text);
    else if (state == KCI_ENTRY_DEAD)
        respond_error(persister, to, id_text, KCI_PERSISTER_CODE_DEAD, "dead",
                      "request %s is dead: no reply after %d attempts", id_text, attempts);
    else
        respond_error(persister, to, id_text, KCI_PERSISTER_CODE_NOT_YET, "pending",
                      "request %s has no reply yet (dispatched %d times so far)", id_text,
                      attempts);
    natsMsg_Destroy(message);
}

/* ---- stats and compaction ------------------------------------------------------------- */

static void removed_entry(void *context, kci_index_entry *entry)
{
    kci_persister *persister = context;
    pending_remove(persister, entry);
}

uint32_t kci_persister_compact(kci_persister *persister, int64_t retention_ms)
{
    kci_queue_log_stats log_stats;
    kci_queue_log_stats_get(persister->log, &log_stats);
    int64_t cutoff_ms = kci_wall_ms() - retention_ms;
    pthread_mutex_lock(&persister->lock);
    /* Only a prefix: a later segment may hold the replies of an earlier one. */
    uint32_t below = persister->segment_base;
    for (uint32_t index = 0; index < persister->segment_count; index++) {
        uint32_t number = persister->segment_base + index;
        const segment_info *info = &persister->segments[index];
        if (number >= log_stats.segment_current || info->unresolved > 0 ||
            info->newest_ms >= cutoff_ms)
            break;
        below = number + 1;
    }
    bool nothing = persister->segment_count == 0 || below <= persister->segment_base;
    pthread_mutex_unlock(&persister->lock);
    if (nothing) return 0;
    uint32_t removed = kci_queue_log_remove_segments_below(persister->log, below);
    pthread_mutex_lock(&persister->lock);
    kci_index_remove_below(&persister->index, below, removed_entry, persister);
    uint32_t shift = below - persister->segment_base;
    if (shift > persister->segment_count) shift = persister->segment_count;
    memmove(persister->segments, persister->segments + shift,
            (persister->segment_count - shift) * sizeof *persister->segments);
    memset(persister->segments + persister->segment_count - shift, 0,
           shift * sizeof *persister->segments);
    persister->segment_count -= shift;
    persister->segment_base = below;
    persister->stats.segments_removed += removed;
    pthread_mutex_unlock(&persister->lock);
    if (removed > 0)
        kci_info("queue: removed %u segments below %u (all replied, older than retention)", removed,
                 below);
    return removed;
}

void kci_persister_stats_get(kci_persister *persister, kci_persister_stats *out)
{
    pthread_mutex_lock(&persister->lock);
    *out = persister->stats;
    out->requests = persister->index.count;
    out->pending = persister->pending_count;
    pthread_mutex_unlock(&persister->lock);
    kci_queue_log_stats_get(persister->log, &out->log);
}

static char *stats_json(kci_persister *persister)
{
    kci_persister_stats stats;
    kci_persister_stats_get(persister, &stats);
    json_t *root = json_pack(
        "{s:s, s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:b, "
        "s:I}",
        "directory", persister->directory, "durability",
        kci_durability_name(persister->config.durability), "requests", (json_int_t)stats.requests,
        "pending", (json_int_t)stats.pending, "replied", (json_int_t)stats.replied, "dead",
        (json_int_t)stats.dead, "submitted", (json_int_t)stats.submitted, "submit_failed",
        (json_int_t)stats.submit_failed, "duplicate_submits", (json_int_t)stats.duplicate_submits,
        "redelivered", (json_int_t)stats.redelivered, "replies_recorded",
        (json_int_t)stats.replies_recorded, "segments_removed", (json_int_t)stats.segments_removed,
        "appends", (json_int_t)stats.log.append_count, "syncs", (json_int_t)stats.log.sync_count,
        "segment", (json_int_t)stats.log.segment_current, "segment_offset",
        (json_int_t)stats.log.segment_offset, "broken", stats.log.broken, "refused_reply_subjects",
        (json_int_t)stats.refused_reply_subjects);
    char *text = root != NULL ? json_dumps(root, JSON_COMPACT) : NULL;
    json_decref(root);
    return text;
}

static void respond_json(kci_persister *persister, natsMsg *request, char *text)
{
    const char *to = natsMsg_GetReply(request);
    natsMsg *message = NULL;
    if (to != NULL && text != NULL && kci_reply_subject_allowed(to, KCI_REPLY_ANSWER) &&
        natsMsg_Create(&message, to, NULL, text, (int)strlen(text)) == NATS_OK) {
        char id_text[ID_TEXT_BYTES];
        kci_uuid_v7_text(id_text);
        stamp_common(persister, message, id_text);
        publish(persister, message);
    }
    free(text);
}

static void on_stats(natsConnection *connection, natsSubscription *subscription, natsMsg *message,
                     void *closure)
{
    kci_persister *persister = closure;
    respond_json(persister, message, stats_json(persister));
    natsMsg_Destroy(message);
}

/* Payload: empty (the configured retention) or {"retention_ms": n >= 0}. */
static void on_compact(natsConnection *connection, natsSubscription *subscription, natsMsg *message,
                       void *closure)
{
    kci_persister *persister = closure;
    int64_t retention_ms = persister->config.retention_ms;
    if (natsMsg_GetDataLength(message) > 0) {
        json_error_t json_error;
        json_t *root = json_loadb(natsMsg_GetData(message), (size_t)natsMsg_GetDataLength(message),
                                  0, &json_error);
        json_t *value = json_object_get(root, "retention_ms");
        if (json_is_integer(value) && json_integer_value(value) >= 0)
            retention_ms = json_integer_value(value);
        json_decref(root);
    }
    uint32_t removed = retention_ms < 0 ? 0 : kci_persister_compact(persister, retention_ms);
    json_t *root = json_pack("{s:I}", "segments_removed", (json_int_t)removed);
    char *text = root != NULL ? json_dumps(root, JSON_COMPACT) : NULL;
    json_decref(root);
    respond_json(persister, message, text);
    natsMsg_Destroy(message);
}

/* ---- redelivery ---------------------------------------------------------------------- */

typedef struct due_request {
    kci_uuid id;
    kci_position position;
    uint16_t attempt;
    bool dead;
} due_request;

static void on_marker_done(void *closure, kc_err status, kci_position position)
{
    if (status != KC_OK)
        kci_debug("queue: a redelivery or tombstone marker was not stored: %s",
                  kc_strerror(status));
}

static void append_marker(kci_persister *persister, kci_record_kind kind, const kci_uuid *id,
                          uint16_t attempt)
{
    kci_record record = {.kind = kind,
                         .id = *id,
                         .attempt = attempt,
                         .subject = "",
                         .reply = "",
                         .client = "",
                         .payload = ""};
    hlc_now(&record.ts_wall_ms, &record.ts_counter);
    if (kci_queue_log_append(persister->log, &record, on_marker_done, persister) != KC_OK)
        kci_debug("queue: a marker was not queued");
}

static int64_t backoff_ms(const kci_persister *persister, uint16_t attempts)
{
    int64_t delay = persister->config.redelivery_timeout_ms;
    for (uint16_t step = 1; step < attempts && delay < persister->config.redelivery_backoff_max_ms;
         step++)
        delay *= 2;
    return delay < persister->config.redelivery_backoff_max_ms
               ? delay
               : persister->config.redelivery_backoff_max_ms;
}

/* Under the lock: the pending requests that are due, at most bound. */
static uint32_t collect_due(kci_persister *persister, int64_t now_ms, due_request *due,
                            uint32_t bound)
{
    uint32_t count = 0;
    int64_t due_min = INT64_MAX;
    for (uint32_t slot = 0; slot < persister->pending_count && count < bound;) {
        pending_item *item = &persister->pending[slot];
        if (item->due_ms > now_ms) {
            if (item->due_ms < due_min) due_min = item->due_ms;
            slot++;
            continue;
        }
        kci_index_entry *entry = kci_index_find(&persister->index, &item->id);
        assert(entry != NULL && entry->pending_slot == slot);
        if (entry->state != KCI_ENTRY_PENDING) { /* its reply is being stored */
            item->due_ms = now_ms + persister->config.redelivery_timeout_ms;
            slot++;
            continue;
        }
        due_request *next = &due[count++];
        next->id = entry->id;
        next->position = entry->request;
        if (entry->attempts >= persister->config.attempts_max) {
            next->dead = true;
            next->attempt = entry->attempts;
            entry->state = KCI_ENTRY_DEAD;
            pending_remove(persister, entry); /* moves the last one into slot */
            segment_resolve(persister, entry->request);
            persister->stats.dead++;
            continue;
        }
        next->dead = false;
        next->attempt = ++entry->attempts;
        item->due_ms = now_ms + backoff_ms(persister, entry->attempts);
        if (item->due_ms < due_min) due_min = item->due_ms;
        persister->stats.redelivered++;
        slot++;
    }
    persister->pending_due_min_ms = count == bound ? now_ms : due_min;
    return count;
}

static void redeliver(kci_persister *persister, const due_request *due)
{
    char id_text[ID_TEXT_BYTES];
    kci_uuid_format(&due->id, id_text);
    if (due->dead) {
        kci_warn("queue: request %s is dead: no reply after %u attempts", id_text, due->attempt);
        append_marker(persister, KCI_RECORD_TOMBSTONE, &due->id, due->attempt);
        return;
    }
    kci_record record;
    kc_err err =
        kci_queue_log_read(persister->log, due->position, persister->redelivery_buffer, &record);
    if (err != KC_OK || record.kind != KCI_RECORD_REQUEST) {
        kci_error("queue: cannot read request %s back from the log: %s", id_text,
                  kc_strerror(err != KC_OK ? err : KC_ERR_CORRUPT));
        return;
    }
    char subject[SUBJECT_BYTES_MAX + 1];
    snprintf(subject, sizeof subject, "%.*s", (int)record.subject_length, record.subject);
    kci_debug("queue: dispatching %s again (attempt %u)", id_text, due->attempt);
    append_marker(persister, KCI_RECORD_REDELIVERY, &due->id, due->attempt);
    dispatch(persister, id_text, subject, record.payload, (int)record.payload_length);
}

static void *redelivery_main(void *argument)
{
    kci_persister *persister = argument;
    due_request *due = calloc(KCI_PERSISTER_REDELIVER_BATCH_MAX, sizeof *due);
    int64_t next_compact_ms = kci_monotonic_ms() + KCI_PERSISTER_COMPACT_INTERVAL_MS;
    pthread_mutex_lock(&persister->lock);
    while (!persister->stopping && due != NULL) {
        int64_t now_ms = kci_monotonic_ms();
        uint32_t count = 0;
        if (persister->pending_due_min_ms <= now_ms)
            count = collect_due(persister, now_ms, due, KCI_PERSISTER_REDELIVER_BATCH_MAX);
        pthread_mutex_unlock(&persister->lock);
        for (uint32_t index = 0; index < count; index++)
            redeliver(persister, &due[index]);
        if (now_ms >= next_compact_ms && persister->config.retention_ms >= 0) {
            kci_persister_compact(persister, persister->config.retention_ms);
            next_compact_ms = now_ms + KCI_PERSISTER_COMPACT_INTERVAL_MS;
        }
        pthread_mutex_lock(&persister->lock);
        if (persister->stopping) break;
        struct timespec deadline =
            kci_deadline_after(CLOCK_REALTIME, KCI_PERSISTER_SCAN_INTERVAL_MS);
        pthread_cond_timedwait(&persister->wake, &persister->lock, &deadline);
    }
    pthread_mutex_unlock(&persister->lock);
    free(due);
    return NULL;
}

/* ---- recovery ------------------------------------------------------------------------- */

static kc_err recover_record(void *closure, const kci_record *record, kci_position position)
{
    kci_persister *persister = closure;
    segment_touch(persister, position, record->ts_wall_ms);
    bool created = false;
    kci_index_entry *entry = NULL;
    if (record->kind == KCI_RECORD_REQUEST) {
        entry = kci_index_insert(&persister->index, &record->id, &created);
        if (entry == NULL) return KC_ERR_NOMEM;
        if (!created) return KC_OK; /* a second copy: the first counts */
        entry->state = KCI_ENTRY_PENDING;
        entry->request = position;
        entry->attempts = 1;
        segment_info *info = segment_at(persister, kci_position_segment(position));
        if (info != NULL) info->unresolved++;
        return KC_OK;
    }
    entry = kci_index_find(&persister->index, &record->id);
    if (entry == NULL) return KC_OK; /* its request was compacted away */
    switch (record->kind) {
    case KCI_RECORD_REPLY:
        if (entry->state == KCI_ENTRY_REPLIED) break;
        if (entry->state == KCI_ENTRY_PENDING) segment_resolve(persister, entry->request);
        entry->state = KCI_ENTRY_REPLIED;
        entry->reply = position;
        break;
    case KCI_RECORD_REDELIVERY:
        if (record->attempt > entry->attempts) entry->attempts = record->attempt;
        break;
    case KCI_RECORD_TOMBSTONE:
        if (entry->state != KCI_ENTRY_PENDING) break;
        entry->state = KCI_ENTRY_DEAD;
        segment_resolve(persister, entry->request);
        break;
    default: break;
    }
    return KC_OK;
}

/* After the scan: every request without a reply is due now. */
static kc_err recovery_finish(kci_persister *persister)
{
    int64_t now_ms = kci_monotonic_ms();
    kci_index *index = &persister->index;
    for (uint64_t slot = 0; slot < index->capacity; slot++) {
        kci_index_entry *entry = &index->entries[slot];
        if (entry->state == KCI_ENTRY_REPLIED) persister->stats.replied++;
        if (entry->state == KCI_ENTRY_DEAD) persister->stats.dead++;
        if (entry->state != KCI_ENTRY_PENDING) continue;
        if (!pending_add(persister, entry, now_ms)) return KC_ERR_NOMEM;
    }
    return KC_OK;
}

static void log_recovery(const kci_persister *persister, const kci_scan_report *report)
{
    kci_info("queue: %s: %u segments, %" PRIu64 " records (%" PRIu64 " bytes) checked in %" PRId64
             " ms: %" PRIu64 " requests, %" PRIu64 " replied, %" PRIu64 " dead, %u to dispatch "
             "again",
             persister->directory, report->segment_count, report->record_count,
             report->record_bytes, report->duration_us / 1000, persister->index.count,
             persister->stats.replied, persister->stats.dead, persister->pending_count);
    /* The tail and segment findings are logged by the log's open. */
    for (uint32_t index = 0; index < report->corruption_count && index < KCI_SCAN_CORRUPTIONS_MAX;
         index++)
        kci_error("queue: CORRUPT: segment %u offset %" PRIu64 ": %" PRIu64
                  " bytes fail their checksum; skipped, never served",
                  report->corruptions[index].segment, report->corruptions[index].offset,
                  report->corruptions[index].length_bytes);
}

/* ---- start and stop ---------------------------------------------------------------------- */

static void config_defaults(kci_persister *persister, const kci_persister_config *config)
{
    persister->config = *config;
    kci_persister_config *own = &persister->config;
    snprintf(persister->directory, sizeof persister->directory, "%s",
             config->directory != NULL ? config->directory : DEFAULT_DIRECTORY);
    own->directory = persister->directory;
    snprintf(persister->node, sizeof persister->node, "%s",
             config->node != NULL ? config->node : DEFAULT_NODE);
    own->node = persister->node;
    if (own->redelivery_timeout_ms <= 0)
        own->redelivery_timeout_ms = KCI_PERSISTER_TIMEOUT_MS_DEFAULT;
    if (own->redelivery_backoff_max_ms <= 0)
        own->redelivery_backoff_max_ms = KCI_PERSISTER_BACKOFF_MS_MAX_DEFAULT;
    if (own->redelivery_backoff_max_ms < own->redelivery_timeout_ms)
        own->redelivery_backoff_max_ms = own->redelivery_timeout_ms;
    if (own->attempts_max <= 0) own->attempts_max = KCI_PERSISTER_ATTEMPTS_MAX_DEFAULT;
    if (own->attempts_max > KCI_PERSISTER_ATTEMPTS_LIMIT)
        own->attempts_max = KCI_PERSISTER_ATTEMPTS_LIMIT;
    if (own->retention_ms == 0) own->retention_ms = KCI_PERSISTER_RETENTION_MS_DEFAULT;
}

static kci_persister *persister_new(const kci_persister_config *config)
{
    kci_persister *persister = calloc(1, sizeof *persister);
    if (persister == NULL) return NULL;
    config_defaults(persister, config);
    pthread_mutex_init(&persister->lock, NULL);
    pthread_cond_init(&persister->context_free, NULL);
    pthread_cond_init(&persister->wake, NULL);
    persister->pending_due_min_ms = INT64_MAX;
    persister->contexts = calloc(KCI_PERSISTER_IN_FLIGHT_MAX, sizeof *persister->contexts);
    persister->get_buffer = malloc(KCI_RECORD_BYTES_MAX);
    persister->redelivery_buffer = malloc(KCI_RECORD_BYTES_MAX);
    bool index_ok = kci_index_init(&persister->index);
    if (config->record_requests)
        persister->observed = calloc(KCI_PERSISTER_OBSERVED_MAX, sizeof *persister->observed);
    if (persister->contexts == NULL || persister->get_buffer == NULL ||
        persister->redelivery_buffer == NULL || !index_ok ||
        (config->record_requests && persister->observed == NULL)) {
        kci_persister_stop(persister, 0);
        return NULL;
    }
    for (int index = KCI_PERSISTER_IN_FLIGHT_MAX - 1; index >= 0; index--) {
        persister->contexts[index].next_free = persister->free_contexts;
        persister->free_contexts = &persister->contexts[index];
    }
    kci_uuid token;
    kci_uuid_v7(&token);
    memcpy(&persister->observed_seed, token.bytes + 8, sizeof persister->observed_seed);
    char text[ID_TEXT_BYTES];
    kci_uuid_format(&token, text);
    /* The random tail of a fresh id: unique to this persister's life. */
    snprintf(persister->inbox, sizeof persister->inbox, INBOX_PREFIX "%.8s%.12s", text + 19,
             text + 24);
    return persister;
}

static kc_err subscribe_all(kci_persister *persister, char *error, size_t error_size)
{
    char inbox_wildcard[INBOX_BYTES + 2];
    snprintf(inbox_wildcard, sizeof inbox_wildcard, "%s.*", persister->inbox);
    struct {
        const char *subject;
        const char *queue;
        natsMsgHandler handler;
    } table[SUBSCRIPTION_COUNT] = {
        {inbox_wildcard, NULL, on_reply},
        {KCI_SUBMIT_SUBJECT, KCI_PERSISTER_QUEUE_GROUP, on_submit},
        {KCI_REPLY_GET_SUBJECT, KCI_PERSISTER_QUEUE_GROUP, on_reply_get},
        {KCI_QUEUE_STATS_SUBJECT, KCI_PERSISTER_QUEUE_GROUP, on_stats},
        {KCI_QUEUE_COMPACT_SUBJECT, KCI_PERSISTER_QUEUE_GROUP, on_compact},
        {"kc.req.>", NULL, on_observed_request},
        {"_INBOX.>", NULL, on_observed_reply},
    };
    int count = persister->config.record_requests ? SUBSCRIPTION_COUNT : SUBSCRIPTION_COUNT - 2;
    for (int index = 0; index < count; index++) {
        natsSubscription **slot = &persister->subscriptions[index];
        natsStatus status =
            table[index].queue != NULL
                ? natsConnection_QueueSubscribe(slot, persister->connection, table[index].subject,
                                                table[index].queue, table[index].handler, persister)
                : natsConnection_Subscribe(slot, persister->connection, table[index].subject,
                                           table[index].handler, persister);
        if (status == NATS_OK) status = natsSubscription_SetPendingLimits(*slot, -1, -1);
        if (status != NATS_OK) {
            snprintf(error, error_size, "queue: cannot subscribe to %s: %s", table[index].subject,
                     natsStatus_GetText(status));
            return KC_ERR_IO;
        }
    }
    natsStatus status = natsConnection_FlushTimeout(persister->connection, 5000);
    if (status != NATS_OK) {
        snprintf(error, error_size, "queue: cannot subscribe: %s", natsStatus_GetText(status));
        return KC_ERR_IO;
    }
    return KC_OK;
}

kc_err kci_persister_start(kci_persister **out, natsConnection *connection,
                           const kci_persister_config *config, char *error, size_t error_size)
{
    *out = NULL;
    kci_persister *persister = persister_new(config);
    if (persister == NULL) {
        snprintf(error, error_size, "out of memory");
        return KC_ERR_NOMEM;
    }
    persister->connection = connection;
    kci_queue_log_config log_config = {.directory = persister->directory,
                                       .durability = persister->config.durability,
                                       .segment_bytes = persister->config.segment_bytes,
                                       .skip_corrupt = persister->config.skip_corrupt,
                                       .preallocate = true,
                                       .completions_end =
                                           connection != NULL ? flush_published : NULL,
                                       .completions_end_context = persister};
    kc_err err = kci_queue_log_open(&persister->log, &log_config, recover_record, persister,
                                    &persister->stats.recovery, error, error_size);
    if (err == KC_OK) err = recovery_finish(persister);
    if (err == KC_OK) log_recovery(persister, &persister->stats.recovery);
    bool online = connection != NULL; /* offline: kcobra queue compact on a stopped queue */
    if (err == KC_OK && online &&
        pthread_create(&persister->redelivery_thread, NULL, redelivery_main, persister) != 0) {
        snprintf(error, error_size, "cannot start the redelivery thread");
        err = KC_ERR_NOMEM;
    }
    persister->redelivery_started = err == KC_OK && online;
    if (err == KC_OK && online) err = subscribe_all(persister, error, error_size);
    if (err != KC_OK) {
        kci_persister_stop(persister, 0);
        return err;
    }
    if (online)
        kci_info("queue: persister on %s (durability %s), log in %s", KCI_SUBMIT_SUBJECT,
                 kci_durability_name(persister->config.durability), persister->directory);
    *out = persister;
    return KC_OK;
}

void kci_persister_stop(kci_persister *persister, int64_t drain_ms)
{
    if (persister == NULL) return;
    if (drain_ms < 1) drain_ms = 1;
    for (int index = 0; index < SUBSCRIPTION_COUNT; index++) {
        natsSubscription *subscription = persister->subscriptions[index];
        if (subscription == NULL) continue;
        if (natsSubscription_DrainTimeout(subscription, drain_ms) != NATS_OK ||
            natsSubscription_WaitForDrainCompletion(subscription, drain_ms + STOP_MARGIN_MS) !=
                NATS_OK)
            natsSubscription_Unsubscribe(subscription);
    }
    pthread_mutex_lock(&persister->lock);
    persister->stopping = true;
    pthread_cond_broadcast(&persister->wake);
    pthread_cond_broadcast(&persister->context_free);
    pthread_mutex_unlock(&persister->lock);
    if (persister->redelivery_started) pthread_join(persister->redelivery_thread, NULL);
    kci_queue_log_close(persister->log); /* completes what is queued: acknowledgements go out */
    for (int index = 0; index < SUBSCRIPTION_COUNT; index++)
        natsSubscription_Destroy(persister->subscriptions[index]);
    kci_index_destroy(&persister->index);
    free(persister->pending);
    free(persister->segments);
    free(persister->contexts);
    free(persister->get_buffer);
    free(persister->redelivery_buffer);
    free(persister->observed);
    pthread_cond_destroy(&persister->context_free);
    pthread_cond_destroy(&persister->wake);
    pthread_mutex_destroy(&persister->lock);
    free(persister);
}
