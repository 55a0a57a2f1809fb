/* store_js.c - the persister's log on a JetStream stream (see store_js.h).
 *
 * Appends are published at once, from the appender's thread, under the
 * store's lock: the order on the wire is the order of the expected
 * sequences. Each publish has its own reply subject "<ack inbox>.<n>" (n
 * counts publishes), so an acknowledgement finds its slot in the ring of
 * appends in flight whatever order acknowledgements arrive in. A completer
 * thread hands outcomes to the done callbacks in ring order, so the
 * persister acknowledges and dispatches in log order, never ahead of
 * JetStream. Nothing is retried here: a failure breaks the store, and the
 * persister above is restarted (replicated.c), which reads the stream again
 * and so learns what was stored. */
#include "store_js.h"

#include <assert.h>
#include <inttypes.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/clock.h"
#include "common/log.h"
#include "kingcobra/kingcobra.h"
#include "queue/metrics.h"
#include "service/subscriptions.h"
#include "service/uuid.h"
#include "store_js_cache.h"

enum {
    SUBJECT_BYTES = 128,
    INBOX_BYTES = 64,
    REASON_BYTES = 256,
    COMPLETER_CHUNK = 256,
    OPEN_RETRY_PAUSE_MS = 250,
    JS_WAIT_MS = 5000,
    NUMBER_TEXT_BYTES = 24,
    ACKS_DRAIN_MS = 500,
    SCAN_HEARTBEAT_MS = 500,
};

typedef enum flight_state { FLIGHT_WAITING = 0, FLIGHT_STORED = 1, FLIGHT_FAILED = 2 } flight_state;

typedef struct flight {
    kci_queue_log_done done;
    void *context;
    uint64_t expected_seq; /* its message's sequence if the fence holds */
    uint64_t message;      /* the publish number of its message */
    uint32_t index;        /* its place in that message (a batch), else 0 */
    int64_t deadline_ms;
    flight_state state;
    kc_err status;
    uint64_t seq;
} flight;

typedef struct finished {
    kci_queue_log_done done;
    void *context;
    kc_err status;
    kci_position position;
} finished;

struct kci_queue_js {
    natsConnection *connection;
    jsCtx *js;
    kci_queue_js_config config;
    char stream[KCI_QUEUE_JS_STREAM_BYTES_MAX + 1];
    char writer[KCI_LEASE_HOLDER_BYTES_MAX + 1];
    char term_text[NUMBER_TEXT_BYTES];
    char ack_prefix[INBOX_BYTES];
    kci_subscriptions acks; /* the publish acknowledgements */
    void (*completions_end)(void *context);
    void *completions_end_context;
    uint8_t *encode_buffer;    /* KCI_RECORD_BYTES_MAX, under lock */
    kci_queue_js_cache *cache; /* the requests read at open, for their first read */

    pthread_mutex_t lock;
    pthread_cond_t work;  /* the completer: an outcome, or closing */
    pthread_cond_t space; /* appenders: a free slot */
    flight *ring;         /* KCI_QUEUE_JS_WINDOW */
    uint32_t first, count;
    uint64_t next_message; /* the publish number of the next message */
    uint32_t in_flight;    /* messages published, no outcome yet */
    uint64_t next_seq;     /* the sequence the next publish gets */
    uint8_t *batch_buffer; /* KCI_QUEUE_JS_BATCH_BYTES: the records gathered */
    size_t batch_bytes;
    uint32_t batch_count;
    char *batch_notify[KCI_QUEUE_JS_BATCH_RECORDS]; /* malloc'd or NULL */
    bool broken, closing;
    char broken_reason[REASON_BYTES];
    kci_queue_log_stats stats;
    pthread_t completer;
    bool completer_started;
};

/* ---- the subjects -------------------------------------------------------------- */

static void subject_of(char *out, size_t out_size, const char *stream, const char *kind)
{
    int length = snprintf(out, out_size, KCI_QUEUE_JS_SUBJECT_PREFIX "%s.%s", stream, kind);
    assert(length > 0 && (size_t)length < out_size); /* the stream name is bounded */
}

enum { SUBJECT_BATCH = KCI_RECORD_KIND_LAST + 1 };

/* The kind a message's subject names: a record kind, 0 for the term marker,
 * SUBJECT_BATCH for a batch, -1 for anything else. */
static int kind_of_subject(const char *subject, const char *stream)
{
    size_t prefix = strlen(KCI_QUEUE_JS_SUBJECT_PREFIX), stream_length = strlen(stream);
    if (strncmp(subject, KCI_QUEUE_JS_SUBJECT_PREFIX, prefix) != 0 ||
        strncmp(subject + prefix, stream, stream_length) != 0 ||
        subject[prefix + stream_length] != '.')
        return -1;
    const char *kind = subject + prefix + stream_length + 1;
    if (strcmp(kind, KCI_QUEUE_JS_TERM_KIND) == 0) return 0;
    if (strcmp(kind, KCI_QUEUE_JS_BATCH_KIND) == 0) return SUBJECT_BATCH;
    for (int candidate = KCI_RECORD_KIND_FIRST; candidate <= KCI_RECORD_KIND_LAST; candidate++)
        if (strcmp(kind, kci_record_kind_name((kci_record_kind)candidate)) == 0) return candidate;
    return -1;
}

/* ---- the stream ---------------------------------------------------------------- */

static natsStatus stream_create(jsCtx *js, const kci_queue_js_config *config, jsErrCode *code)
{
    char subject[SUBJECT_BYTES];
    subject_of(subject, sizeof subject, config->stream, ">");
    const char *subjects[] = {subject};
    jsStreamConfig stream_config;
    jsStreamConfig_Init(&stream_config);
    stream_config.Name = config->stream;
    stream_config.Description = "KingCobra REQUEST_REPLY.queue: the persister's records";
    stream_config.Subjects = subjects;
    stream_config.SubjectsLen = 1;
    stream_config.Storage = js_FileStorage;
    stream_config.Replicas = config->replicas;
    stream_config.Retention = js_LimitsPolicy;
    stream_config.Discard = js_DiscardOld;
    stream_config.MaxAge = config->max_age_ms * 1000000LL;
    stream_config.Duplicates = (int64_t)KCI_QUEUE_JS_DUPLICATE_WINDOW_MS * 1000000LL;
    jsStreamInfo *info = NULL;
    natsStatus status = js_AddStream(&info, js, &stream_config, NULL, code);
    jsStreamInfo_Destroy(info);
    return status;
}

/* The stream's first and last sequences, creating it when missing (config
 * NULL: never), retrying while a leader is elected. */
static kc_err stream_bounds(jsCtx *js, const char *stream, const kci_queue_js_config *config,
                            uint64_t *first_out, uint64_t *last_out, char *error, size_t error_size)
{
    int64_t deadline_ms = kci_monotonic_ms() + KCI_QUEUE_JS_OPEN_TIMEOUT_MS;
    for (;;) {
        jsStreamInfo *info = NULL;
        jsErrCode code = 0;
        natsStatus status = js_GetStreamInfo(&info, js, stream, NULL, &code);
        if (status == NATS_OK) {
            *first_out = info->State.FirstSeq;
            *last_out = info->State.LastSeq;
            jsStreamInfo_Destroy(info);
            return KC_OK;
        }
        bool missing = status == NATS_NOT_FOUND || code == JSStreamNotFoundErr;
        if (missing && config == NULL) {
            snprintf(error, error_size, "no stream %s", stream);
            return KC_ERR_NOT_FOUND;
        }
        if (missing && stream_create(js, config, &code) != NATS_OK && code != 0)
            kci_debug("queue: cannot create stream %s yet: %s (%d)", stream,
                      nats_GetLastError(NULL), (int)code);
        if (kci_monotonic_ms() >= deadline_ms) {
            snprintf(error, error_size, "stream %s: %s (JetStream error %d)", stream,
                     natsStatus_GetText(status), (int)code);
            return KC_ERR_TIMEOUT;
        }
        nats_Sleep(OPEN_RETRY_PAUSE_MS);
    }
}

/* ---- reading ------------------------------------------------------------------- */

typedef struct scan_state {
    const char *stream;
    kci_scan_visit visit;
    void *context;
    kci_scan_report *report;
    kci_queue_js_terms terms;
    uint64_t term_max;         /* the highest Kc-Term of a marker */
    uint64_t last_seen;        /* the last sequence handed on */
    kci_queue_js_cache *cache; /* the open's: requests without a reply yet; or NULL */
} scan_state;

static uint64_t header_number(natsMsg *message, const char *name)
{
    const char *value = NULL;
    if (natsMsgHeader_Get(message, name, &value) != NATS_OK || value == NULL) return 0;
    return strtoull(value, NULL, 10);
}

/* The message's Kc-Term against those before it. */
static void scan_term(kci_queue_js_terms *terms, uint64_t term, uint64_t seq)
{
    if (term > terms->last) {
        terms->writers++;
        terms->last = term;
        return;
    }
    if (term == terms->last) return;
    if (terms->regressions++ > 0) return;
    terms->regression_seq = seq;
    terms->regression_term = term;
    terms->regression_after = terms->last;
}

static void scan_corrupt(kci_scan_report *report, uint64_t seq, size_t length)
{
    if (report->corruption_count < KCI_SCAN_CORRUPTIONS_MAX)
        report->corruptions[report->corruption_count] =
            (kci_scan_corruption){.segment = 0, .offset = seq, .length_bytes = (uint64_t)length};
    report->corruption_count++;
}

/* A request is kept for its dispatch after the open until its reply or
 * tombstone comes (store_js_cache.h). */
static void scan_cache(kci_queue_js_cache *cache, const kci_record *record, uint64_t position,
                       const uint8_t *bytes, size_t length)
{
    if (cache == NULL) return;
    if (record->kind == KCI_RECORD_REQUEST)
        kci_queue_js_cache_put(cache, &record->id, position, bytes, length);
    else if (record->kind == KCI_RECORD_REPLY || record->kind == KCI_RECORD_TOMBSTONE)
        kci_queue_js_cache_drop(cache, &record->id);
}

/* The Kc-Notify of the record at index of a message (NULL: none). */
static const char *notify_of(natsMsg *message, bool batch, uint32_t index)
{
    char name[sizeof KCI_QUEUE_JS_HEADER_NOTIFY + NUMBER_TEXT_BYTES];
    if (batch)
        snprintf(name, sizeof name, KCI_QUEUE_JS_HEADER_NOTIFY "-%" PRIu32, index);
    else
        snprintf(name, sizeof name, "%s", KCI_QUEUE_JS_HEADER_NOTIFY);
    const char *value = NULL;
    return natsMsgHeader_Get(message, name, &value) == NATS_OK ? value : NULL;
}

/* One message of the stream at seq: a record, a batch of them, a marker. */
static kc_err scan_message(scan_state *state, natsMsg *message, uint64_t seq)
{
    int kind = kind_of_subject(natsMsg_GetSubject(message), state->stream);
    uint64_t term = header_number(message, KCI_QUEUE_JS_HEADER_TERM);
    state->last_seen = seq;
    scan_term(&state->terms, term, seq);
    if (kind == 0) {
        state->terms.markers++;
        if (term > state->term_max) state->term_max = term;
        return KC_OK;
    }
    const uint8_t *data = (const uint8_t *)natsMsg_GetData(message);
    size_t length = (size_t)natsMsg_GetDataLength(message), offset = 0;
    bool batch = kind == SUBJECT_BATCH;
    kc_err err = KC_OK;
    for (uint32_t index = 0; err == KC_OK && (index == 0 || (batch && offset < length)); index++) {
        kci_record record;
        size_t bytes = 0;
        bool whole =
            kind > 0 && data != NULL && index < KCI_QUEUE_JS_BATCH_RECORDS &&
            kci_record_decode(data + offset, length - offset, &record, &bytes) == KCI_RECORD_OK &&
            (batch || (bytes == length && (int)record.kind == kind));
        if (!whole) { /* the rest of the message is not read */
            scan_corrupt(state->report, seq, length);
            return KC_OK;
        }
        scan_cache(state->cache, &record, kci_queue_js_position(seq, index), data + offset, bytes);
        offset += bytes;
        /* The request's Kc-Notify, kept beside the record (record.h). */
        record.notify = record.kind == KCI_RECORD_REQUEST ? notify_of(message, batch, index) : NULL;
        state->report->record_count++;
        state->report->record_bytes += bytes;
        state->report->kind_count[record.kind]++;
        if (state->visit != NULL)
            err = state->visit(state->context, &record, kci_queue_js_position(seq, index));
    }
    return err;
}

/* Reads from state->last_seen + 1 to last one message at a time, through
 * the leader; a sequence that is gone (max age, purge) is skipped. */
static kc_err scan_by_get(jsCtx *js, scan_state *state, uint64_t last, char *error,
                          size_t error_size)
{
    kc_err err = KC_OK;
    while (err == KC_OK && state->last_seen < last) {
        uint64_t seq = state->last_seen + 1;
        natsMsg *message = NULL;
        jsErrCode code = 0;
        natsStatus status = js_GetMsg(&message, js, state->stream, seq, NULL, &code);
        if (status == NATS_OK) {
            err = scan_message(state, message, seq);
        } else if (status == NATS_NOT_FOUND || code == JSNoMessageFoundErr) {
            state->last_seen = seq;
        } else {
            snprintf(error, error_size, "reading stream %s at sequence %" PRIu64 ": %s",
                     state->stream, seq, natsStatus_GetText(status));
            err = KC_ERR_TIMEOUT;
        }
        natsMsg_Destroy(message);
    }
    return err;
}

/* Reads the messages from sequence from to last: an ordered consumer, and
 * when it stalls, the rest one by one. */
static kc_err scan_range(jsCtx *js, scan_state *state, uint64_t from, uint64_t last, char *error,
                         size_t error_size)
{
    if (from > last) return KC_OK;
    char filter[SUBJECT_BYTES];
    subject_of(filter, sizeof filter, state->stream, ">");
    jsSubOptions options;
    jsSubOptions_Init(&options);
    options.Stream = state->stream;
    options.Ordered = true;
    options.Config.DeliverPolicy = js_DeliverByStartSequence;
    options.Config.OptStartSeq = from;
    /* Missed heartbeats make nats.c recreate the ordered consumer where it
     * stopped: soon, not after its default of three 5 s beats. */
    options.Config.Heartbeat = (int64_t)SCAN_HEARTBEAT_MS * 1000000LL;
    natsSubscription *subscription = NULL;
    jsErrCode code = 0;
    natsStatus status = js_SubscribeSync(&subscription, js, filter, NULL, &options, &code);
    kc_err err = KC_OK;
    while (status == NATS_OK && err == KC_OK && state->last_seen < last) {
        natsMsg *message = NULL;
        status = natsSubscription_NextMsg(&message, subscription, KCI_QUEUE_JS_SCAN_IDLE_MS);
        if (status != NATS_OK) break;
        jsMsgMetaData *meta = NULL;
        if (natsMsg_GetMetaData(&meta, message) == NATS_OK) {
            uint64_t seq = meta->Sequence.Stream;
            if (seq > state->last_seen) err = scan_message(state, message, seq);
            jsMsgMetaData_Destroy(meta);
        }
        natsMsg_Destroy(message);
    }
    if (subscription != NULL) natsSubscription_Unsubscribe(subscription);
    natsSubscription_Destroy(subscription);
    if (err != KC_OK || state->last_seen >= last) return err;
    kci_debug("queue: stream %s: the ordered read stopped at %" PRIu64 " of %" PRIu64
              " (%s); reading the rest one by one",
              state->stream, state->last_seen, last, natsStatus_GetText(status));
    return scan_by_get(js, state, last, error, error_size);
}

static void report_front(kci_scan_report *report, uint64_t first, uint64_t last)
{
    /* One "segment": verify.c reads segment_first > 1 as "the front was
     * removed by retention", which a stream's max age or purge does. */
    report->segment_count = last > 0 ? 1 : 0;
    report->segment_first = first > 1 ? 2 : 1;
    report->segment_last = report->segment_first;
    report->end_offset = last;
}

kc_err kci_queue_js_scan(natsConnection *connection, const char *stream, kci_scan_visit visit,
                         void *context, kci_scan_report *report, kci_queue_js_terms *terms_out,
                         char *error, size_t error_size)
{
    memset(report, 0, sizeof *report);
    int64_t start_us = kci_monotonic_us();
    jsOptions options;
    jsOptions_Init(&options);
    options.Wait = JS_WAIT_MS;
    jsCtx *js = NULL;
    if (natsConnection_JetStream(&js, connection, &options) != NATS_OK) {
        snprintf(error, error_size, "JetStream: %s", nats_GetLastError(NULL));
        return KC_ERR_IO;
    }
    uint64_t first = 0, last = 0;
    kc_err err = stream_bounds(js, stream, NULL, &first, &last, error, error_size);
    scan_state state = {.stream = stream, .visit = visit, .context = context, .report = report};
    if (err == KC_OK) {
        state.last_seen = first > 0 ? first - 1 : 0;
        err = scan_range(js, &state, first, last, error, error_size);
        report_front(report, first, last);
    }
    jsCtx_Destroy(js);
    if (terms_out != NULL) *terms_out = state.terms;
    report->duration_us = kci_monotonic_us() - start_us;
    return err;
}

/* ---- the completer --------------------------------------------------------------- */

static void mark_broken_locked(kci_queue_js *store, const char *reason)
{
    if (store->broken) return;
    store->broken = true;
    snprintf(store->broken_reason, sizeof store->broken_reason, "%s", reason);
    kci_error("queue: stream %s: %s; refusing appends until the persister starts again",
              store->stream, reason);
}

/* Under the lock: the outcomes at the front of the ring that are known (or
 * overdue), at most COMPLETER_CHUNK, taken out. */
static uint32_t take_outcomes(kci_queue_js *store, finished *chunk, int64_t now_ms)
{
    uint32_t taken = 0;
    while (taken < COMPLETER_CHUNK && store->count > 0) {
        flight *head = &store->ring[store->first];
        if (head->state == FLIGHT_WAITING && now_ms < head->deadline_ms && !store->broken) break;
        if (head->state == FLIGHT_WAITING && !store->broken)
            mark_broken_locked(store, "a publish was not acknowledged in time");
        bool stored = head->state == FLIGHT_STORED && !store->broken;
        if (stored && head->seq != head->expected_seq)
            mark_broken_locked(store, "a publish was stored at another sequence than expected");
        if (head->state == FLIGHT_FAILED) mark_broken_locked(store, "a publish was refused");
        stored = stored && !store->broken;
        chunk[taken++] =
            (finished){.done = head->done,
                       .context = head->context,
                       .status = stored                         ? KC_OK
                                 : head->state == FLIGHT_FAILED ? head->status
                                                                : KC_ERR_IO,
                       .position = stored ? kci_queue_js_position(head->seq, head->index) : 0};
        store->stats.append_count += stored;
        store->stats.append_failed_count += !stored;
        kci_counter_inc(stored ? &kci_persister_metric_values.appends
                               : &kci_persister_metric_values.append_failures);
        store->first = (store->first + 1) % KCI_QUEUE_JS_WINDOW;
        store->count--;
    }
    if (taken > 0) pthread_cond_broadcast(&store->space);
    return taken;
}

static void *completer_main(void *argument)
{
    kci_queue_js *store = argument;
    finished *chunk = calloc(COMPLETER_CHUNK, sizeof *chunk);
    pthread_mutex_lock(&store->lock);
    while (chunk != NULL) {
        while (store->count == 0 && !store->closing)
            pthread_cond_wait(&store->work, &store->lock);
        if (store->count == 0) break;
        uint32_t taken = take_outcomes(store, chunk, kci_monotonic_ms());
        if (taken == 0) {
            int64_t wait_ms = store->ring[store->first].deadline_ms - kci_monotonic_ms();
            struct timespec deadline =
                kci_deadline_after(CLOCK_REALTIME, wait_ms > 0 ? (int)wait_ms : 1);
            pthread_cond_timedwait(&store->work, &store->lock, &deadline);
            continue;
        }
        pthread_mutex_unlock(&store->lock);
        for (uint32_t index = 0; index < taken; index++)
            chunk[index].done(chunk[index].context, chunk[index].status, chunk[index].position);
        if (store->completions_end != NULL) store->completions_end(store->completions_end_context);
        pthread_mutex_lock(&store->lock);
    }
    pthread_mutex_unlock(&store->lock);
    free(chunk);
    return NULL;
}

/* ---- publishing ------------------------------------------------------------------- */

/* Publishes message, made for the next publish number (its reply subject
 * names it) and the next sequence; its records are in the ring already. */
static kc_err publish_locked(kci_queue_js *store, natsMsg *message)
{
    natsStatus status =
        message != NULL ? natsConnection_PublishMsg(store->connection, message) : NATS_NO_MEMORY;
    natsMsg_Destroy(message);
    if (status != NATS_OK) {
        /* Whether it left is unknown: nothing after it can expect a sequence. */
        mark_broken_locked(store, "a publish failed");
        return KC_ERR_IO;
    }
    store->next_message++;
    store->next_seq++;
    store->in_flight++;
    store->stats.batch_count++; /* messages: a record alone or a batch */
    return KC_OK;
}

/* The reply subject and fence of the next message. */
static natsMsg *message_new(kci_queue_js *store, const char *kind, const void *data, size_t size)
{
    char subject[SUBJECT_BYTES], reply[INBOX_BYTES + NUMBER_TEXT_BYTES],
        expected[NUMBER_TEXT_BYTES];
    subject_of(subject, sizeof subject, store->stream, kind);
    snprintf(reply, sizeof reply, "%s.%" PRIu64, store->ack_prefix, store->next_message);
    snprintf(expected, sizeof expected, "%" PRIu64, store->next_seq - 1);
    natsMsg *message = NULL;
    if (natsMsg_Create(&message, subject, reply, data, (int)size) != NATS_OK) return NULL;
    natsStatus status = natsMsgHeader_Set(message, "Nats-Expected-Last-Sequence", expected);
    if (status == NATS_OK)
        status = natsMsgHeader_Set(message, KCI_QUEUE_JS_HEADER_TERM, store->term_text);
    if (status != NATS_OK) {
        natsMsg_Destroy(message);
        return NULL;
    }
    return message;
}

static void batch_clear_locked(kci_queue_js *store)
{
    for (uint32_t index = 0; index < store->batch_count; index++) {
        free(store->batch_notify[index]);
        store->batch_notify[index] = NULL;
    }
    store->batch_count = 0;
    store->batch_bytes = 0;
}

/* Publishes the records gathered, if any, as one message (a broken store
 * drops them: the completer fails their appends). */
static kc_err batch_publish_locked(kci_queue_js *store)
{
    if (store->batch_count == 0) return KC_OK;
    natsMsg *message = NULL;
    if (!store->broken)
        message =
            message_new(store, KCI_QUEUE_JS_BATCH_KIND, store->batch_buffer, store->batch_bytes);
    for (uint32_t index = 0; message != NULL && index < store->batch_count; index++) {
        char name[sizeof KCI_QUEUE_JS_HEADER_NOTIFY + NUMBER_TEXT_BYTES];
        snprintf(name, sizeof name, KCI_QUEUE_JS_HEADER_NOTIFY "-%" PRIu32, index);
        if (store->batch_notify[index] != NULL &&
            natsMsgHeader_Set(message, name, store->batch_notify[index]) != NATS_OK) {
            natsMsg_Destroy(message);
            message = NULL;
        }
    }
    batch_clear_locked(store);
    if (store->broken) return KC_ERR_IO;
    return publish_locked(store, message);
}

/* ---- acknowledgements -------------------------------------------------------------- */

/* The outcome a publish acknowledgement (or a "no responders") says. */
static flight_state ack_outcome(natsMsg *message, uint64_t *seq, kc_err *status)
{
    *seq = 0;
    *status = KC_ERR_IO;
    if (natsMsg_IsNoResponders(message)) { /* no stream leader right now */
        *status = KC_ERR_NOT_CONNECTED;
        return FLIGHT_FAILED;
    }
    json_error_t json_error;
    json_t *root = json_loadb(natsMsg_GetData(message), (size_t)natsMsg_GetDataLength(message), 0,
                              &json_error);
    json_t *sequence = json_object_get(root, "seq");
    bool stored = json_object_get(root, "error") == NULL && json_is_integer(sequence) &&
                  json_integer_value(sequence) > 0;
    if (stored) *seq = (uint64_t)json_integer_value(sequence);
    json_decref(root);
    return stored ? FLIGHT_STORED : FLIGHT_FAILED;
}

static void on_ack(natsConnection *connection, natsSubscription *subscription, natsMsg *message,
                   void *closure)
{
    kci_queue_js *store = closure;
    const char *subject = natsMsg_GetSubject(message);
    size_t prefix = strlen(store->ack_prefix);
    uint64_t number = strncmp(subject, store->ack_prefix, prefix) == 0 && subject[prefix] == '.'
                          ? strtoull(subject + prefix + 1, NULL, 10)
                          : 0;
    uint64_t seq = 0;
    kc_err status = KC_OK;
    flight_state outcome = ack_outcome(message, &seq, &status);
    pthread_mutex_lock(&store->lock);
    /* The records of message number: together in the ring, near its front
     * (acknowledgements come in publish order). */
    bool matched = false;
    for (uint32_t offset = 0; offset < store->count && number < store->next_message; offset++) {
        flight *slot = &store->ring[(store->first + offset) % KCI_QUEUE_JS_WINDOW];
        if (slot->message > number) break;
        if (slot->message != number || slot->state != FLIGHT_WAITING) continue;
        slot->state = outcome;
        slot->seq = seq;
        slot->status = status;
        matched = true;
    }
    if (matched) {
        assert(store->in_flight > 0);
        store->in_flight--;
        pthread_cond_signal(&store->work);
        /* What was gathered meanwhile; not after a refusal: the store breaks
         * (the completer), and the batch's appends fail with it. */
        if (outcome == FLIGHT_STORED) batch_publish_locked(store);
    }
    pthread_mutex_unlock(&store->lock);
    natsMsg_Destroy(message);
}

/* ---- appends ---------------------------------------------------------------------- */

/* The message for a record alone (encoded), fenced on the sequence before it. */
static natsMsg *record_message(kci_queue_js *store, const kci_record *record, size_t size)
{
    natsMsg *message =
        message_new(store, kci_record_kind_name(record->kind), store->encode_buffer, size);
    if (message == NULL) return NULL;
    natsStatus status = NATS_OK;
    if (record->kind == KCI_RECORD_REQUEST) {
        char id_text[KC_UUID_TEXT_BYTES + 1];
        kci_uuid_format(&record->id, id_text);
        status = natsMsgHeader_Set(message, "Nats-Msg-Id", id_text);
    }
    if (status == NATS_OK && record->kind == KCI_RECORD_REQUEST && record->notify != NULL)
        status = natsMsgHeader_Set(message, KCI_QUEUE_JS_HEADER_NOTIFY, record->notify);
    if (status != NATS_OK) {
        natsMsg_Destroy(message);
        return NULL;
    }
    return message;
}

/* A batch with no room for size more bytes is published now. */
static kc_err batch_full_locked(kci_queue_js *store, size_t size)
{
    if (store->batch_count < KCI_QUEUE_JS_BATCH_RECORDS &&
        store->batch_bytes + size <= KCI_QUEUE_JS_BATCH_BYTES)
        return KC_OK;
    return batch_publish_locked(store);
}

/* The encoded record joins the batch gathered. */
static kc_err batch_add_locked(kci_queue_js *store, const kci_record *record, size_t size)
{
    assert(store->batch_count < KCI_QUEUE_JS_BATCH_RECORDS &&
           store->batch_bytes + size <= KCI_QUEUE_JS_BATCH_BYTES);
    if (record->kind == KCI_RECORD_REQUEST && record->notify != NULL) {
        store->batch_notify[store->batch_count] = strdup(record->notify);
        if (store->batch_notify[store->batch_count] == NULL) return KC_ERR_NOMEM;
    }
    memcpy(store->batch_buffer + store->batch_bytes, store->encode_buffer, size);
    store->batch_bytes += size;
    store->batch_count++;
    return KC_OK;
}

/* Under the lock: the lease still ours, with our term. */
static bool lease_ours_locked(kci_queue_js *store)
{
    if (store->config.lease == NULL) return true;
    uint64_t term = 0;
    if (kci_lease_holds(store->config.lease, &term) && term == store->config.term) return true;
    mark_broken_locked(store, "the lease is no longer ours");
    return false;
}

kc_err kci_queue_js_append(kci_queue_js *store, const kci_record *record, kci_queue_log_done done,
                           void *context)
{
    assert(done != NULL);
    size_t size = kci_record_size(record);
    if (size == 0) return KC_ERR_TOO_LARGE;
    pthread_mutex_lock(&store->lock);
    while (!store->broken && !store->closing && store->count == KCI_QUEUE_JS_WINDOW)
        pthread_cond_wait(&store->space, &store->lock);
    if (store->broken || store->closing || !lease_ours_locked(store)) {
        kc_err err = store->closing ? KC_ERR_CLOSED : KC_ERR_IO;
        pthread_mutex_unlock(&store->lock);
        return err;
    }
    kci_record_encode(record, store->encode_buffer);
    /* Gathered while enough is in flight; published alone otherwise. */
    bool gather = size <= KCI_QUEUE_JS_BATCH_BYTES &&
                  (store->batch_count > 0 || store->in_flight >= KCI_QUEUE_JS_BATCH_AFTER);
    kc_err err = gather ? batch_full_locked(store, size) : batch_publish_locked(store);
    uint64_t expected_seq = store->next_seq, number = store->next_message;
    uint32_t index = gather ? store->batch_count : 0;
    if (err == KC_OK && gather)
        err = batch_add_locked(store, record, size);
    else if (err == KC_OK)
        err = publish_locked(store, record_message(store, record, size));
    if (err != KC_OK) {
        pthread_mutex_unlock(&store->lock);
        return err;
    }
    store->ring[(store->first + store->count) % KCI_QUEUE_JS_WINDOW] =
        (flight){.done = done,
                 .context = context,
                 .expected_seq = expected_seq,
                 .message = number,
                 .index = index,
                 .deadline_ms = kci_monotonic_ms() + KCI_QUEUE_JS_ACK_TIMEOUT_MS};
    store->count++;
    /* Nothing in flight would publish what was gathered. */
    if (gather && store->in_flight == 0 && batch_publish_locked(store) != KC_OK) {
        pthread_mutex_unlock(&store->lock); /* its done fails on the completer */
        return KC_OK;
    }
    store->stats.bytes_written += size;
    kci_counter_add(&kci_persister_metric_values.appended_bytes, size);
    pthread_cond_signal(&store->work);
    pthread_mutex_unlock(&store->lock);
    return KC_OK;
}

kc_err kci_queue_js_read(kci_queue_js *store, kci_position position, uint8_t *buffer,
                         kci_record *out)
{
    natsMsg *message = NULL;
    jsErrCode code = 0;
    /* Through the leader ($JS.API.STREAM.MSG.GET), not a direct get that a
     * lagging replica may answer. */
    size_t cached = 0;
    if (kci_queue_js_cache_take(store->cache, position, buffer, KCI_RECORD_BYTES_MAX, &cached)) {
        size_t used = 0; /* read and checked at open */
        return kci_record_decode(buffer, cached, out, &used) == KCI_RECORD_OK && used == cached
                   ? KC_OK
                   : KC_ERR_CORRUPT;
    }
    uint64_t seq = position >> KCI_QUEUE_JS_BATCH_SHIFT;
    uint32_t index = (uint32_t)(position & (KCI_QUEUE_JS_BATCH_RECORDS - 1));
    natsStatus status = js_GetMsg(&message, store->js, store->stream, seq, NULL, &code);
    if (status != NATS_OK) return status == NATS_NOT_FOUND ? KC_ERR_NOT_FOUND : KC_ERR_IO;
    int kind = kind_of_subject(natsMsg_GetSubject(message), store->stream);
    const uint8_t *data = (const uint8_t *)natsMsg_GetData(message);
    size_t length = (size_t)natsMsg_GetDataLength(message), offset = 0, bytes = 0;
    bool found = kind > 0 && data != NULL && (kind == SUBJECT_BATCH || index == 0);
    /* In a batch: past the records before it. */
    for (uint32_t skipped = 0; found && kind == SUBJECT_BATCH && skipped < index; skipped++) {
        found = kci_record_decode(data + offset, length - offset, out, &bytes) == KCI_RECORD_OK;
        offset += found ? bytes : 0;
    }
    kc_err err = KC_ERR_CORRUPT;
    if (found && kind != SUBJECT_BATCH) bytes = length;
    if (found && kind == SUBJECT_BATCH &&
        kci_record_decode(data + offset, length - offset, out, &bytes) != KCI_RECORD_OK)
        found = false;
    if (found && bytes > 0 && bytes <= KCI_RECORD_BYTES_MAX && offset + bytes <= length) {
        memcpy(buffer, data + offset, bytes); /* out points into buffer, not the message */
        size_t used = 0;
        if (kci_record_decode(buffer, bytes, out, &used) == KCI_RECORD_OK && used == bytes)
            err = KC_OK;
    }
    natsMsg_Destroy(message);
    return err;
}

void kci_queue_js_stats_get(kci_queue_js *store, kci_queue_log_stats *out)
{
    pthread_mutex_lock(&store->lock);
    *out = store->stats;
    out->broken = store->broken;
    out->segment_current = 0;
    out->segment_offset = store->next_seq - 1; /* the last sequence written or in flight */
    pthread_mutex_unlock(&store->lock);
}

/* ---- open and close ------------------------------------------------------------------ */

/* Writes the term marker expecting last; *seq_out its sequence. KC_ERR_AGAIN:
 * the stream moved on (something was written after last). */
static kc_err write_term(kci_queue_js *store, uint64_t last, uint64_t *seq_out)
{
    char subject[SUBJECT_BYTES], expected[NUMBER_TEXT_BYTES];
    subject_of(subject, sizeof subject, store->stream, KCI_QUEUE_JS_TERM_KIND);
    snprintf(expected, sizeof expected, "%" PRIu64, last);
    jsPubOptions options;
    jsPubOptions_Init(&options);
    options.MaxWait = JS_WAIT_MS;
    natsMsg *message = NULL;
    natsStatus status = natsMsg_Create(&message, subject, NULL, "", 0);
    /* Set by hand: nats.c leaves ExpectLastSeq 0 out, and an empty stream
     * must be fenced too. */
    if (status == NATS_OK)
        status = natsMsgHeader_Set(message, "Nats-Expected-Last-Sequence", expected);
    if (status == NATS_OK)
        status = natsMsgHeader_Set(message, KCI_QUEUE_JS_HEADER_TERM, store->term_text);
    if (status == NATS_OK)
        status = natsMsgHeader_Set(message, KCI_QUEUE_JS_HEADER_WRITER, store->writer);
    jsPubAck *ack = NULL;
    jsErrCode code = 0;
    if (status == NATS_OK) status = js_PublishMsg(&ack, store->js, message, &options, &code);
    if (status == NATS_OK) *seq_out = ack->Sequence;
    jsPubAck_Destroy(ack);
    natsMsg_Destroy(message);
    if (status == NATS_OK) return KC_OK;
    return code == JSStreamWrongLastSequenceErr ? KC_ERR_AGAIN : KC_ERR_IO;
}

/* Reads to the stream's end and fences it with the term marker. */
static kc_err catch_up_and_fence(kci_queue_js *store, scan_state *state, char *error,
                                 size_t error_size)
{
    uint64_t first = 0, last = 0;
    kc_err err =
        stream_bounds(store->js, store->stream, &store->config, &first, &last, error, error_size);
    if (err != KC_OK) return err;
    report_front(state->report, first, last);
    state->last_seen = first > 0 ? first - 1 : 0;
    for (int tries = 0; tries < KCI_QUEUE_JS_FENCE_TRIES; tries++) {
        err = scan_range(store->js, state, state->last_seen + 1, last, error, error_size);
        if (err != KC_OK) return err;
        if (state->term_max > store->config.term) {
            snprintf(error, error_size,
                     "stream %s: term %" PRIu64 " wrote after ours (%" PRIu64 ")", store->stream,
                     state->term_max, store->config.term);
            return KC_ERR_EXISTS;
        }
        uint64_t marker = 0;
        err = write_term(store, state->last_seen, &marker);
        if (err == KC_OK) {
            store->next_seq = marker + 1;
            report_front(state->report, first, marker);
            return KC_OK;
        }
        if (err != KC_ERR_AGAIN || stream_bounds(store->js, store->stream, NULL, &first, &last,
                                                 error, error_size) != KC_OK) {
            snprintf(error, error_size, "stream %s: cannot write the term marker: %s",
                     store->stream, nats_GetLastError(NULL));
            return KC_ERR_IO;
        }
    }
    snprintf(error, error_size, "stream %s keeps moving: another writer?", store->stream);
    return KC_ERR_EXISTS;
}

static kci_queue_js *store_new(natsConnection *connection, const kci_queue_js_config *config,
                               const kci_queue_log_config *log_config)
{
    kci_queue_js *store = calloc(1, sizeof *store);
    if (store == NULL) return NULL;
    store->connection = connection;
    store->config = *config;
    snprintf(store->stream, sizeof store->stream, "%s", config->stream);
    snprintf(store->writer, sizeof store->writer, "%s",
             config->writer != NULL ? config->writer : "");
    store->config.stream = store->stream;
    store->config.writer = store->writer;
    snprintf(store->term_text, sizeof store->term_text, "%" PRIu64, config->term);
    store->completions_end = log_config->completions_end;
    store->completions_end_context = log_config->completions_end_context;
    kci_uuid token;
    kci_uuid_v7(&token);
    char text[KC_UUID_TEXT_BYTES + 1];
    kci_uuid_format(&token, text);
    snprintf(store->ack_prefix, sizeof store->ack_prefix, "_KCS.%.8s%.12s", text + 19, text + 24);
    pthread_mutex_init(&store->lock, NULL);
    pthread_cond_init(&store->work, NULL);
    pthread_cond_init(&store->space, NULL);
    kci_subscriptions_init(&store->acks);
    store->ring = calloc(KCI_QUEUE_JS_WINDOW, sizeof *store->ring);
    store->encode_buffer = malloc(KCI_RECORD_BYTES_MAX);
    store->batch_buffer = malloc(KCI_QUEUE_JS_BATCH_BYTES);
    store->cache = kci_queue_js_cache_new();
    if (store->ring == NULL || store->encode_buffer == NULL || store->batch_buffer == NULL ||
        store->cache == NULL) {
        kci_queue_js_close(store);
        return NULL;
    }
    return store;
}

static kc_err store_start(kci_queue_js *store, char *error, size_t error_size)
{
    char wildcard[INBOX_BYTES + 4];
    snprintf(wildcard, sizeof wildcard, "%s.*", store->ack_prefix);
    kci_subscription_spec spec = {
        wildcard, NULL, on_ack, KCI_PENDING_UNLIMITED, KCI_PENDING_UNLIMITED, NULL};
    kc_err err = kci_subscriptions_add(&store->acks, store->connection, &spec, store);
    if (err == KC_OK) err = kci_subscriptions_flush(store->connection, JS_WAIT_MS);
    if (err != KC_OK) {
        snprintf(error, error_size, "cannot subscribe for acknowledgements: %s", kc_last_error());
        return err;
    }
    if (pthread_create(&store->completer, NULL, completer_main, store) != 0) {
        snprintf(error, error_size, "cannot start the stream's completer thread");
        return KC_ERR_NOMEM;
    }
    store->completer_started = true;
    return KC_OK;
}

kc_err kci_queue_js_open(kci_queue_js **out, natsConnection *connection,
                         const kci_queue_js_config *config, const kci_queue_log_config *log_config,
                         kci_scan_visit visit, void *context, kci_scan_report *report, char *error,
                         size_t error_size)
{
    *out = NULL;
    memset(report, 0, sizeof *report);
    int64_t start_us = kci_monotonic_us();
    kci_queue_js *store = store_new(connection, config, log_config);
    if (store == NULL) {
        snprintf(error, error_size, "out of memory");
        return KC_ERR_NOMEM;
    }
    jsOptions options;
    jsOptions_Init(&options);
    options.Wait = JS_WAIT_MS;
    kc_err err = KC_OK;
    if (natsConnection_JetStream(&store->js, connection, &options) != NATS_OK) {
        snprintf(error, error_size, "JetStream: %s", nats_GetLastError(NULL));
        err = KC_ERR_IO;
    }
    scan_state state = {.stream = store->stream,
                        .visit = visit,
                        .context = context,
                        .report = report,
                        .cache = store->cache};
    if (err == KC_OK) err = catch_up_and_fence(store, &state, error, error_size);
    if (err == KC_OK) err = store_start(store, error, error_size);
    report->duration_us = kci_monotonic_us() - start_us;
    if (err != KC_OK) {
        kci_queue_js_close(store);
        return err;
    }
    kci_info("queue: stream %s read to sequence %" PRIu64 " (%" PRIu64 " records, %" PRIu64
             " term markers); writing as term %" PRIu64,
             store->stream, store->next_seq - 1, report->record_count, state.terms.markers,
             config->term);
    *out = store;
    return KC_OK;
}

void kci_queue_js_close(kci_queue_js *store)
{
    if (store == NULL) return;
    if (store->completer_started) {
        pthread_mutex_lock(&store->lock);
        store->closing = true; /* in flight: completed at its ack or deadline */
        pthread_cond_broadcast(&store->work);
        pthread_cond_broadcast(&store->space);
        pthread_mutex_unlock(&store->lock);
        pthread_join(store->completer, NULL);
    }
    /* No acknowledgement handler may run once the store is freed. */
    if (!kci_subscriptions_drain(&store->acks, ACKS_DRAIN_MS, ACKS_DRAIN_MS)) {
        kci_error("queue: an acknowledgement handler did not finish; leaking the store");
        return;
    }
    kci_subscriptions_destroy(&store->acks);
    jsCtx_Destroy(store->js);
    pthread_cond_destroy(&store->work);
    pthread_cond_destroy(&store->space);
    pthread_mutex_destroy(&store->lock);
    batch_clear_locked(store); /* nothing runs any more */
    if (store->stats.append_count > 0)
        kci_info("queue: stream %s: %" PRIu64 " records appended in %" PRIu64 " messages",
                 store->stream, store->stats.append_count, store->stats.batch_count);
    free(store->ring);
    free(store->encode_buffer);
    free(store->batch_buffer);
    kci_queue_js_cache_free(store->cache);
    free(store);
}
