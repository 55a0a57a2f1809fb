/* verdict_js.c - the arbiters' verdicts on a JetStream stream (verdict_js.h):
 * the stream, the writer thread, the follower and the reader for --verify. */
#include "arbiter/verdict_js.h"

#include <assert.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arbiter_internal.h"
#include "common/clock.h"
#include "common/log.h"

enum {
    STREAM_NAME_BYTES_MAX = 64,
    SUBJECT_BYTES_MAX = 16 + STREAM_NAME_BYTES_MAX,
    MSG_ID_BYTES_MAX = KC_NODE_BYTES_MAX + 32,
    PENDING_MAX = 256,          /* verdicts waiting for the writer */
    WRITE_PATIENCE_MS = 30000,  /* a queued verdict is dropped after (the next vote queues it
                                   again): longer than a stream leader's election (4-9 s) */
    PUBLISH_WAIT_MS = 5000,     /* a PubAck, or a stream API answer */
    READ_BACK_WAIT_MS = 5000,   /* after its PubAck, for the follower to read it */
    RETRY_PAUSE_MS = 250,       /* after no responders (an election) or a timeout */
    OPEN_RETRY_PAUSE_MS = 250,  /* finding the stream while a leader is elected */
    FOLLOW_HEARTBEAT_MS = 1000, /* the ordered consumer notices a lost server by these */
    RECENT_MAX = 1000,          /* verdicts kept for kc.arbiter.verdicts */
    DUPLICATE_WINDOW_MS = 10 * 60 * 1000,
    CLOSE_DRAIN_MS = 3000,
};

static const char SUBJECT_PREFIX[] = "kc.verdicts.";

typedef struct pending_verdict {
    json_t *verdict;
    char node[KC_NODE_BYTES_MAX + 1];
    uint32_t epoch;
    int64_t queued_ms;
    char msg_id[MSG_ID_BYTES_MAX];
} pending_verdict;

struct kci_verdict_js {
    kci_arbiter *arbiter;
    natsConnection *own;        /* to verdict_servers; NULL: the arbiter's is used */
    natsConnection *connection; /* own, or the arbiter's */
    jsCtx *js;
    natsSubscription *follow;
    char stream[STREAM_NAME_BYTES_MAX + 1];
    char subject[SUBJECT_BYTES_MAX];
    pthread_t writer;
    bool writer_started;
    pthread_cond_t changed; /* CLOCK_MONOTONIC: read, queued, closing */
    /* under the arbiter's lock */
    bool closing;
    bool live; /* read to the end at start: verdicts read from now on are announced */
    uint64_t applied_seq;
    kci_verdict_chain chain;
    json_t *recent;
    pending_verdict pending[PENDING_MAX];
    uint32_t pending_count;
};

/* ---- the follower ----------------------------------------------------------------- */

static void note_broken(kci_verdict_js *verdicts, uint64_t seq)
{
    kci_arbiter *arbiter = verdicts->arbiter;
    if (kci_arbiter_warn_due(arbiter, kci_monotonic_ms()))
        kci_warn("arbiter %s: verdict stream %s: the hash chain is broken at sequence %" PRIu64
                 " (%" PRIu64 " break(s) so far): a message was changed, removed or not "
                 "written after the one before it",
                 arbiter->id, verdicts->stream, seq, verdicts->chain.broken);
}

/* Under the lock: one message of the stream, in order. */
static void read_one(kci_verdict_js *verdicts, uint64_t seq, const char *data, size_t length)
{
    kci_arbiter *arbiter = verdicts->arbiter;
    if (kci_verdict_chain_add(&verdicts->chain, seq, data, length) == KCI_VERDICT_LINK_BROKEN)
        note_broken(verdicts, seq);
    json_t *verdict = json_loadb(data, length, 0, NULL);
    if (verdict != NULL) {
        kci_arbiter_verdict_apply(arbiter, verdict, kci_monotonic_ms(), verdicts->live);
        json_object_set_new(verdict, "seq", json_integer((json_int_t)seq));
        json_array_append_new(verdicts->recent, verdict);
        if (json_array_size(verdicts->recent) > RECENT_MAX) json_array_remove(verdicts->recent, 0);
    } else if (kci_arbiter_warn_due(arbiter, kci_monotonic_ms())) {
        kci_warn("arbiter %s: verdict stream %s: message %" PRIu64 " is not JSON; skipped",
                 arbiter->id, verdicts->stream, seq);
    }
    verdicts->applied_seq = seq;
    if (arbiter->enforce_dirty) kci_arbiter_enforce(arbiter);
    pthread_cond_broadcast(&verdicts->changed);
}

static void on_stored(natsConnection *connection, natsSubscription *subscription, natsMsg *message,
                      void *closure)
{
    (void)connection, (void)subscription;
    kci_verdict_js *verdicts = closure;
    jsMsgMetaData *meta = NULL;
    uint64_t seq = natsMsg_GetMetaData(&meta, message) == NATS_OK ? meta->Sequence.Stream : 0;
    jsMsgMetaData_Destroy(meta);
    int length = natsMsg_GetDataLength(message);
    pthread_mutex_lock(&verdicts->arbiter->lock);
    /* An ordered consumer that was reset starts after the last one it
     * delivered: an older sequence is not expected, and is skipped. */
    if (!verdicts->closing && seq > verdicts->applied_seq)
        read_one(verdicts, seq, natsMsg_GetData(message), length > 0 ? (size_t)length : 0);
    pthread_mutex_unlock(&verdicts->arbiter->lock);
    natsMsg_Destroy(message);
}

/* ---- the writer ------------------------------------------------------------------- */

static void pending_drop_first(kci_verdict_js *verdicts)
{
    assert(verdicts->pending_count > 0);
    json_decref(verdicts->pending[0].verdict);
    verdicts->pending_count--;
    memmove(&verdicts->pending[0], &verdicts->pending[1],
            verdicts->pending_count * sizeof verdicts->pending[0]);
}

/* Under the lock, for at most wait_ms: until the follower has read past seq. */
static void wait_read_past(kci_verdict_js *verdicts, uint64_t seq, int64_t wait_ms)
{
    struct timespec deadline = kci_deadline_after(CLOCK_MONOTONIC, wait_ms);
    while (!verdicts->closing && verdicts->applied_seq <= seq)
        if (pthread_cond_timedwait(&verdicts->changed, &verdicts->arbiter->lock, &deadline) != 0)
            break;
}

typedef enum write_outcome {
    WRITE_STORED,    /* stored now, or found stored (a duplicate) */
    WRITE_NOT_AFTER, /* another verdict came first: read it, then see */
    WRITE_FAILED,    /* no responders, a timeout, ... */
} write_outcome;

/* Outside the lock: one attempt; *seq the stored sequence. */
static write_outcome publish(kci_verdict_js *verdicts, const char *line, const char *msg_id,
                             uint64_t expected_last, uint64_t *seq)
{
    jsPubOptions options;
    jsPubOptions_Init(&options);
    options.MsgId = msg_id;
    options.MaxWait = PUBLISH_WAIT_MS;
    /* nats.c sends an expected last sequence only when it is not 0; the
     * stream has one subject, so "no message on it yet" says the same. */
    if (expected_last > 0)
        options.ExpectLastSeq = expected_last;
    else
        options.ExpectNoMessage = true;
    jsPubAck *ack = NULL;
    jsErrCode error_code = 0;
    natsStatus status = js_Publish(&ack, verdicts->js, verdicts->subject, line, (int)strlen(line),
                                   &options, &error_code);
    write_outcome outcome = WRITE_FAILED;
    if (status == NATS_OK) {
        *seq = ack->Sequence;
        outcome = WRITE_STORED;
    } else if (error_code == JSStreamWrongLastSequenceErr) {
        outcome = WRITE_NOT_AFTER;
    } else if (kci_arbiter_warn_due(verdicts->arbiter, kci_monotonic_ms())) {
        kci_warn("arbiter %s: cannot append verdict %s to stream %s: %s (error %d; retried)",
                 verdicts->arbiter->id, msg_id, verdicts->stream, natsStatus_GetText(status),
                 (int)error_code);
    }
    jsPubAck_Destroy(ack);
    return outcome;
}

/* Under the lock: the first queued verdict, written once more unless it is
 * no longer news (the follower took it, or a later verdict about its node). */
static void write_first(kci_verdict_js *verdicts)
{
    kci_arbiter *arbiter = verdicts->arbiter;
    pending_verdict *first = &verdicts->pending[0];
    arbiter_node *node = kci_arbiter_node(arbiter, first->node, false);
    if (node == NULL || node->epoch >= first->epoch ||
        kci_monotonic_ms() - first->queued_ms > WRITE_PATIENCE_MS) {
        pending_drop_first(verdicts);
        return;
    }
    uint64_t expected_last = verdicts->applied_seq;
    json_object_set_new(first->verdict, KCI_VERDICT_PREV_KEY,
                        json_string(expected_last > 0 ? verdicts->chain.last_hash : ""));
    char *line = json_dumps(first->verdict, JSON_COMPACT);
    char msg_id[MSG_ID_BYTES_MAX];
    snprintf(msg_id, sizeof msg_id, "%s", first->msg_id);
    pthread_mutex_unlock(&arbiter->lock);
    uint64_t seq = 0;
    write_outcome outcome =
        line != NULL ? publish(verdicts, line, msg_id, expected_last, &seq) : WRITE_FAILED;
    free(line);
    pthread_mutex_lock(&arbiter->lock);
    if (outcome == WRITE_STORED) {
        wait_read_past(verdicts, seq - 1, READ_BACK_WAIT_MS); /* taken there, by the follower */
    } else if (outcome == WRITE_NOT_AFTER) {
        wait_read_past(verdicts, expected_last, READ_BACK_WAIT_MS);
    } else {
        struct timespec pause = kci_deadline_after(CLOCK_MONOTONIC, RETRY_PAUSE_MS);
        while (!verdicts->closing &&
               pthread_cond_timedwait(&verdicts->changed, &arbiter->lock, &pause) == 0) {
        }
    }
}

static void *writer_main(void *context)
{
    kci_verdict_js *verdicts = context;
    pthread_mutex_lock(&verdicts->arbiter->lock);
    while (!verdicts->closing) {
        if (verdicts->pending_count == 0)
            pthread_cond_wait(&verdicts->changed, &verdicts->arbiter->lock);
        else
            write_first(verdicts);
    }
    pthread_mutex_unlock(&verdicts->arbiter->lock);
    return NULL;
}

void kci_verdict_js_append(kci_verdict_js *verdicts, json_t *verdict, const char *node,
                           uint32_t epoch)
{
    const char *action = json_string_value(json_object_get(verdict, "action"));
    char msg_id[MSG_ID_BYTES_MAX];
    snprintf(msg_id, sizeof msg_id, "%s:%u:%s", node, epoch, action != NULL ? action : "");
    for (uint32_t i = 0; i < verdicts->pending_count; i++)
        if (strcmp(verdicts->pending[i].msg_id, msg_id) == 0) {
            json_decref(verdict); /* in the queue already */
            return;
        }
    if (verdicts->closing || verdicts->pending_count == PENDING_MAX) {
        if (!verdicts->closing && kci_arbiter_warn_due(verdicts->arbiter, kci_monotonic_ms()))
            kci_warn("arbiter %s: %d verdicts wait for stream %s already; %s waits for the next "
                     "vote",
                     verdicts->arbiter->id, PENDING_MAX, verdicts->stream, msg_id);
        json_decref(verdict);
        return;
    }
    pending_verdict *slot = &verdicts->pending[verdicts->pending_count++];
    *slot = (pending_verdict){.verdict = verdict, .epoch = epoch, .queued_ms = kci_monotonic_ms()};
    snprintf(slot->node, sizeof slot->node, "%s", node);
    snprintf(slot->msg_id, sizeof slot->msg_id, "%s", msg_id);
    pthread_cond_broadcast(&verdicts->changed);
}

json_t *kci_verdict_js_recent(kci_verdict_js *verdicts)
{
    return json_deep_copy(verdicts->recent);
}

/* ---- open and close ------------------------------------------------------------------ */

static kc_err fail(char *error, size_t error_size, kc_err err, const char *format, const char *what,
                   natsStatus status, jsErrCode error_code)
{
    snprintf(error, error_size, format, what, natsStatus_GetText(status), (int)error_code);
    return err;
}

static natsStatus connect_own(kci_verdict_js *verdicts, const char *servers)
{
    natsOptions *options = NULL;
    char name[KCI_ARBITER_ID_BYTES_MAX + 16];
    snprintf(name, sizeof name, "%s-verdicts", verdicts->arbiter->id);
    natsStatus status = natsOptions_Create(&options);
    if (status == NATS_OK) status = natsOptions_SetURL(options, servers);
    if (status == NATS_OK) status = natsOptions_SetName(options, name);
    if (status == NATS_OK) status = natsOptions_SetMaxReconnect(options, -1);
    if (status == NATS_OK) status = natsOptions_SetRetryOnFailedConnect(options, true, NULL, NULL);
    if (status == NATS_OK) status = natsConnection_Connect(&verdicts->own, options);
    natsOptions_Destroy(options);
    return status;
}

/* The stream's last sequence, the stream created first when it does not
 * exist (two arbiters may create it at once: the loser finds it next time). */
static natsStatus stream_find(kci_verdict_js *verdicts, uint32_t replicas, uint64_t *last_seq,
                              jsErrCode *error_code)
{
    jsStreamInfo *info = NULL;
    natsStatus status = js_GetStreamInfo(&info, verdicts->js, verdicts->stream, NULL, error_code);
    if (status == NATS_NOT_FOUND) {
        jsStreamConfig config;
        jsStreamConfig_Init(&config);
        const char *subjects[] = {verdicts->subject};
        config.Name = verdicts->stream;
        config.Description = "KingCobra arbiters' verdicts (docs/arbiter.md)";
        config.Subjects = subjects;
        config.SubjectsLen = 1;
        config.Storage = js_FileStorage;
        config.Replicas = (int64_t)replicas;
        config.Duplicates = (int64_t)DUPLICATE_WINDOW_MS * 1000000;
        status = js_AddStream(&info, verdicts->js, &config, NULL, error_code);
    }
    if (status == NATS_OK) {
        bool ours = false;
        for (int i = 0; i < info->Config->SubjectsLen; i++)
            ours |= strcmp(info->Config->Subjects[i], verdicts->subject) == 0;
        *last_seq = info->State.LastSeq;
        if (!ours) status = NATS_MISMATCH;
    }
    jsStreamInfo_Destroy(info);
    return status;
}

static natsStatus follow(kci_verdict_js *verdicts, jsErrCode *error_code)
{
    jsSubOptions options;
    jsSubOptions_Init(&options);
    options.Stream = verdicts->stream;
    options.Ordered = true;
    options.Config.DeliverPolicy = js_DeliverAll;
    options.Config.Heartbeat = (int64_t)FOLLOW_HEARTBEAT_MS * 1000000;
    return js_Subscribe(&verdicts->follow, verdicts->js, verdicts->subject, on_stored, verdicts,
                        NULL, &options, error_code);
}

/* Under the lock: reads up to last_seq by the deadline, or says how far it got. */
static bool catch_up(kci_verdict_js *verdicts, uint64_t last_seq, int64_t deadline_ms)
{
    while (verdicts->applied_seq < last_seq && kci_monotonic_ms() < deadline_ms)
        wait_read_past(verdicts, verdicts->applied_seq, deadline_ms - kci_monotonic_ms());
    return verdicts->applied_seq >= last_seq;
}

static kc_err connect_and_find(kci_verdict_js *verdicts, uint64_t *last_seq, char *error,
                               size_t error_size)
{
    const kci_arbiter_config *config = &verdicts->arbiter->config;
    natsStatus status = NATS_OK;
    if (config->verdict_servers != NULL) status = connect_own(verdicts, config->verdict_servers);
    if (status != NATS_OK)
        return fail(error, error_size, KC_ERR_NOT_CONNECTED,
                    "arbiter: cannot connect to %s: %s (%d)", config->verdict_servers, status, 0);
    verdicts->connection = verdicts->own != NULL ? verdicts->own : verdicts->arbiter->connection;
    jsOptions options;
    jsOptions_Init(&options);
    options.Wait = PUBLISH_WAIT_MS;
    status = natsConnection_JetStream(&verdicts->js, verdicts->connection, &options);
    jsErrCode error_code = 0;
    int64_t deadline_ms = kci_monotonic_ms() + config->verdict_open_timeout_ms;
    while (status == NATS_OK) { /* until found, or the deadline while a leader is elected */
        status = stream_find(verdicts, config->verdict_replicas, last_seq, &error_code);
        if (status == NATS_OK || status == NATS_MISMATCH || kci_monotonic_ms() >= deadline_ms)
            break;
        status = NATS_OK;
        nats_Sleep(OPEN_RETRY_PAUSE_MS);
    }
    if (status == NATS_MISMATCH)
        return fail(error, error_size, KC_ERR_CONFIG,
                    "arbiter: stream %s exists but does not take the verdicts' subject (%s, %d)",
                    verdicts->stream, status, 0);
    if (status != NATS_OK)
        return fail(error, error_size, KC_ERR_NOT_CONNECTED,
                    "arbiter: cannot find or create the verdict stream %s: %s (JetStream error "
                    "%d; is JetStream enabled, and are there as many servers as replicas?)",
                    verdicts->stream, status, error_code);
    return KC_OK;
}

static bool stream_name_valid(const char *name)
{
    size_t length = name != NULL ? strlen(name) : 0;
    return length > 0 && length <= STREAM_NAME_BYTES_MAX && strpbrk(name, ".*> \t\r\n") == NULL;
}

kc_err kci_verdict_js_open(kci_arbiter *arbiter, char *error, size_t error_size)
{
    const kci_arbiter_config *config = &arbiter->config;
    if (!stream_name_valid(config->verdict_stream) || config->verdict_replicas == 0 ||
        config->verdict_replicas > KCI_ARBITER_VERDICT_REPLICAS_MAX ||
        config->verdict_open_timeout_ms <= 0) {
        snprintf(error, error_size,
                 "arbiter: the verdict stream needs a name (no '.', '*', '>' "
                 "or blanks), 1..5 replicas and an open timeout");
        return KC_ERR_CONFIG;
    }
    kci_verdict_js *verdicts = calloc(1, sizeof *verdicts);
    json_t *recent = json_array();
    pthread_condattr_t attributes;
    if (verdicts == NULL || recent == NULL || pthread_condattr_init(&attributes) != 0) {
        free(verdicts), json_decref(recent);
        return KC_ERR_NOMEM;
    }
    pthread_condattr_setclock(&attributes, CLOCK_MONOTONIC);
    pthread_cond_init(&verdicts->changed, &attributes);
    pthread_condattr_destroy(&attributes);
    verdicts->arbiter = arbiter, verdicts->recent = recent;
    snprintf(verdicts->stream, sizeof verdicts->stream, "%s", config->verdict_stream);
    snprintf(verdicts->subject, sizeof verdicts->subject, "%s%s", SUBJECT_PREFIX, verdicts->stream);
    arbiter->verdict_js = verdicts; /* closed by kci_arbiter_stop, opened or not */
    int64_t deadline_ms = kci_monotonic_ms() + config->verdict_open_timeout_ms;
    uint64_t last_seq = 0;
    kc_err err = connect_and_find(verdicts, &last_seq, error, error_size);
    jsErrCode error_code = 0;
    natsStatus status = err == KC_OK ? follow(verdicts, &error_code) : NATS_OK;
    if (status != NATS_OK)
        err = fail(error, error_size, KC_ERR_NOT_CONNECTED,
                   "arbiter: cannot follow the verdict stream %s: %s (JetStream error %d)",
                   verdicts->stream, status, error_code);
    if (err == KC_OK && pthread_create(&verdicts->writer, NULL, writer_main, verdicts) != 0)
        err = KC_ERR_NOMEM;
    verdicts->writer_started = err == KC_OK;
    if (err != KC_OK) return err;
    pthread_mutex_lock(&arbiter->lock);
    bool caught_up = catch_up(verdicts, last_seq, deadline_ms);
    verdicts->live = caught_up;
    uint64_t applied = verdicts->applied_seq;
    pthread_mutex_unlock(&arbiter->lock);
    if (!caught_up) {
        snprintf(error, error_size,
                 "arbiter: read %" PRIu64 " of the %" PRIu64 " verdicts of stream %s in %" PRId64
                 " ms; not starting on a partial quarantine",
                 applied, last_seq, verdicts->stream, config->verdict_open_timeout_ms);
        return KC_ERR_TIMEOUT;
    }
    kci_info("arbiter %s: following verdict stream %s (%" PRIu64 " verdict(s) read)", arbiter->id,
             verdicts->stream, applied);
    return KC_OK;
}

void kci_verdict_js_close(kci_verdict_js *verdicts)
{
    if (verdicts == NULL) return;
    pthread_mutex_lock(&verdicts->arbiter->lock);
    verdicts->closing = true;
    pthread_cond_broadcast(&verdicts->changed);
    pthread_mutex_unlock(&verdicts->arbiter->lock);
    if (verdicts->writer_started) pthread_join(verdicts->writer, NULL);
    if (verdicts->follow != NULL) {
        /* No handler may run once the follower is freed: drain and wait. */
        if (natsSubscription_Drain(verdicts->follow) != NATS_OK ||
            natsSubscription_WaitForDrainCompletion(verdicts->follow, CLOSE_DRAIN_MS) != NATS_OK) {
            natsSubscription_Unsubscribe(verdicts->follow);
            nats_Sleep(CLOSE_DRAIN_MS); /* a handler waits for the lock at most this long */
        }
        natsSubscription_Destroy(verdicts->follow);
    }
    while (verdicts->pending_count > 0)
        pending_drop_first(verdicts);
    jsCtx_Destroy(verdicts->js);
    if (verdicts->own != NULL) {
        natsConnection_Close(verdicts->own);
        natsConnection_Destroy(verdicts->own);
    }
    json_decref(verdicts->recent);
    pthread_cond_destroy(&verdicts->changed);
    free(verdicts);
}

/* ---- reading it all, for --verify ------------------------------------------------------ */

kc_err kci_verdict_js_read_all(natsConnection *connection, const char *stream,
                               kci_verdict_chain *chain, json_t *list, char *error,
                               size_t error_size)
{
    jsOptions options;
    jsOptions_Init(&options);
    options.Wait = PUBLISH_WAIT_MS;
    jsCtx *js = NULL;
    jsStreamInfo *info = NULL;
    jsErrCode error_code = 0;
    natsStatus status = natsConnection_JetStream(&js, connection, &options);
    if (status == NATS_OK) status = js_GetStreamInfo(&info, js, stream, NULL, &error_code);
    uint64_t first = info != NULL ? info->State.FirstSeq : 0;
    uint64_t last = info != NULL ? info->State.LastSeq : 0;
    jsStreamInfo_Destroy(info);
    /* Through the stream's leader, one message at a time: a deleted one is
     * a gap, which the chain reports. */
    for (uint64_t seq = first; status == NATS_OK && seq > 0 && seq <= last; seq++) {
        natsMsg *message = NULL;
        status = js_GetMsg(&message, js, stream, seq, NULL, &error_code);
        if (status == NATS_NOT_FOUND) {
            status = NATS_OK;
            continue;
        }
        if (status != NATS_OK) break;
        int length = natsMsg_GetDataLength(message);
        size_t size = length > 0 ? (size_t)length : 0;
        kci_verdict_chain_add(chain, seq, natsMsg_GetData(message), size);
        json_t *verdict = json_loadb(natsMsg_GetData(message), size, 0, NULL);
        if (verdict == NULL) verdict = json_object(); /* unreadable: the chain said so */
        json_object_set_new(verdict, "seq", json_integer((json_int_t)seq));
        json_array_append_new(list, verdict);
        natsMsg_Destroy(message);
    }
    jsCtx_Destroy(js);
    if (status == NATS_OK) return KC_OK;
    snprintf(error, error_size, "cannot read the verdict stream %s: %s (JetStream error %d)",
             stream, natsStatus_GetText(status), (int)error_code);
    return status == NATS_NOT_FOUND ? KC_ERR_NOT_FOUND : KC_ERR_IO;
}
