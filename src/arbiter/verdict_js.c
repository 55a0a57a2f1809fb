/* verdict_js.c - the arbiters' verdicts on a JetStream stream (verdict_js.h):
 * the stream, open and close, the writer's queue, and the reading for
 * --verify. The writer and the follower are threads of their own
 * (verdict_js_write.c, verdict_js_follow.c). */
#include "arbiter/verdict_js.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "common/log.h"
#include "verdict_js_internal.h"

enum {
    OPEN_RETRY_PAUSE_MS = 250, /* finding the stream while a leader is elected */
    DUPLICATE_WINDOW_MS = 10 * 60 * 1000,
    CLOSE_DRAIN_MS = 3000,
};

static const char SUBJECT_PREFIX[] = "kc.verdicts.";

/* ---- the writer's queue ------------------------------------------------------------ */

void kci_verdict_js_append(kci_verdict_js *verdicts, json_t *verdict, const char *node,
                           uint32_t epoch)
{
    const char *action = json_string_value(json_object_get(verdict, "action"));
    char msg_id[VERDICT_JS_MSG_ID_BYTES_MAX];
    snprintf(msg_id, sizeof msg_id, "%s:%u:%s", node, epoch, action != NULL ? action : "");
    for (uint32_t i = 0; i < verdicts->pending_count; i++)
        if (strcmp(verdicts->pending[i].msg_id, msg_id) == 0) {
            json_decref(verdict); /* in the queue already */
            return;
        }
    if (verdicts->closing || verdicts->pending_count == VERDICT_JS_PENDING_MAX) {
        if (!verdicts->closing && kci_arbiter_warn_due(verdicts->arbiter, kci_monotonic_ms()))
            kci_warn("arbiter %s: %d verdicts wait for stream %s already; %s waits for the next "
                     "vote",
                     verdicts->arbiter->id, VERDICT_JS_PENDING_MAX, verdicts->stream, msg_id);
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

void kci_verdict_js_describe(kci_verdict_js *verdicts, json_t *status)
{
    json_object_set_new(status, "verdict_stream", json_string(verdicts->stream));
    json_object_set_new(status, "verdict_seq", json_integer((json_int_t)verdicts->applied_seq));
    json_object_set_new(status, "verdict_chain_breaks",
                        json_integer((json_int_t)verdicts->chain.broken));
    json_object_set_new(status, "verdicts_pending",
                        json_integer((json_int_t)verdicts->pending_count));
}

/* ---- open and close ------------------------------------------------------------------ */

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
    /* None of the servers answers yet: it keeps trying, and finding the
     * stream waits for it (verdict_open_timeout_ms). */
    return status == NATS_NOT_YET_CONNECTED ? NATS_OK : status;
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

/* Under the lock: reads up to last_seq by the deadline, or says how far it got. */
static bool catch_up(kci_verdict_js *verdicts, uint64_t last_seq, int64_t deadline_ms)
{
    while (verdicts->applied_seq < last_seq && kci_monotonic_ms() < deadline_ms)
        kci_verdict_js_wait_read_past(verdicts, verdicts->applied_seq,
                                      deadline_ms - kci_monotonic_ms());
    return verdicts->applied_seq >= last_seq;
}

static kc_err connect_and_find(kci_verdict_js *verdicts, uint64_t *last_seq, char *error,
                               size_t error_size)
{
    const kci_arbiter_config *config = &verdicts->arbiter->config;
    natsStatus status = NATS_OK;
    if (config->verdict_servers != NULL) status = connect_own(verdicts, config->verdict_servers);
    if (status != NATS_OK) {
        snprintf(error, error_size, "arbiter: cannot connect to %s: %s", config->verdict_servers,
                 natsStatus_GetText(status));
        return KC_ERR_NOT_CONNECTED;
    }
    verdicts->connection = verdicts->own != NULL ? verdicts->own : verdicts->arbiter->connection;
    jsOptions options;
    jsOptions_Init(&options);
    options.Wait = VERDICT_JS_API_WAIT_MS;
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
    if (status == NATS_MISMATCH) {
        snprintf(error, error_size, "arbiter: stream %s exists but does not take the subject %s",
                 verdicts->stream, verdicts->subject);
        return KC_ERR_CONFIG;
    }
    if (status != NATS_OK) {
        snprintf(error, error_size,
                 "arbiter: cannot find or create the verdict stream %s: %s (JetStream error %d; "
                 "is JetStream enabled, and are there as many servers as replicas?)",
                 verdicts->stream, natsStatus_GetText(status), (int)error_code);
        return KC_ERR_NOT_CONNECTED;
    }
    return KC_OK;
}

/* The hint subscription and the two threads. */
static kc_err start_threads(kci_verdict_js *verdicts, char *error, size_t error_size)
{
    natsStatus status = natsConnection_Subscribe(
        &verdicts->hint, verdicts->connection, verdicts->subject, kci_verdict_js_on_hint, verdicts);
    if (status != NATS_OK) {
        snprintf(error, error_size, "arbiter: cannot subscribe to %s: %s", verdicts->subject,
                 natsStatus_GetText(status));
        return KC_ERR_NOT_CONNECTED;
    }
    verdicts->follower_started =
        pthread_create(&verdicts->follower, NULL, kci_verdict_js_follower_main, verdicts) == 0;
    verdicts->writer_started =
        pthread_create(&verdicts->writer, NULL, kci_verdict_js_writer_main, verdicts) == 0;
    return verdicts->follower_started && verdicts->writer_started ? KC_OK : KC_ERR_NOMEM;
}

static bool stream_name_valid(const char *name)
{
    size_t length = name != NULL ? strlen(name) : 0;
    return length > 0 && length <= VERDICT_JS_STREAM_BYTES_MAX &&
           strpbrk(name, ".*> \t\r\n") == NULL;
}

static kci_verdict_js *create(kci_arbiter *arbiter)
{
    kci_verdict_js *verdicts = calloc(1, sizeof *verdicts);
    json_t *recent = json_array();
    pthread_condattr_t attributes;
    if (verdicts == NULL || recent == NULL || pthread_condattr_init(&attributes) != 0) {
        free(verdicts), json_decref(recent);
        return NULL;
    }
    pthread_condattr_setclock(&attributes, CLOCK_MONOTONIC);
    pthread_cond_init(&verdicts->changed, &attributes);
    pthread_condattr_destroy(&attributes);
    verdicts->arbiter = arbiter, verdicts->recent = recent;
    snprintf(verdicts->stream, sizeof verdicts->stream, "%s", arbiter->config.verdict_stream);
    snprintf(verdicts->subject, sizeof verdicts->subject, "%s%s", SUBJECT_PREFIX, verdicts->stream);
    return verdicts;
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
    kci_verdict_js *verdicts = create(arbiter);
    if (verdicts == NULL) return KC_ERR_NOMEM;
    arbiter->verdict_js = verdicts; /* closed by kci_arbiter_stop, opened or not */
    int64_t deadline_ms = kci_monotonic_ms() + config->verdict_open_timeout_ms;
    uint64_t last_seq = 0;
    kc_err err = connect_and_find(verdicts, &last_seq, error, error_size);
    verdicts->known_last = last_seq; /* before the follower starts */
    if (err == KC_OK) err = start_threads(verdicts, error, error_size);
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
    /* Each waits at most one JetStream call (READ_WAIT_MS, PUBLISH_WAIT_MS). */
    if (verdicts->writer_started) pthread_join(verdicts->writer, NULL);
    if (verdicts->follower_started) pthread_join(verdicts->follower, NULL);
    if (verdicts->hint != NULL) {
        /* Its handler uses verdicts: none may run once they are freed. */
        if (natsSubscription_Drain(verdicts->hint) != NATS_OK ||
            natsSubscription_WaitForDrainCompletion(verdicts->hint, CLOSE_DRAIN_MS) != NATS_OK) {
            kci_error("arbiter %s: the verdict hint subscription did not drain; leaking it",
                      verdicts->arbiter->id);
            return;
        }
        natsSubscription_Destroy(verdicts->hint);
    }
    while (verdicts->pending_count > 0)
        kci_verdict_js_pending_drop_first(verdicts);
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
    options.Wait = VERDICT_JS_API_WAIT_MS;
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
