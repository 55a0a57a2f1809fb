/* verdict_js_follow.c - the follower thread of the verdicts on JetStream
 * (verdict_js.h): reads the stream from its first message, one message at a
 * time through the stream's leader (js_GetMsg: a follower replica may lag),
 * and takes each verdict in order (verdict.c's kci_arbiter_verdict_apply).
 *
 * It reads on as long as the stream's last sequence, as last seen, is ahead
 * of it; then it waits for a hint (a plain subscription to the stream's
 * subject sees every write as it is published), the writer's word after a
 * PubAck, or POLL_MS, and asks the stream's last sequence again. A thread
 * of its own rather than nats.c's ordered consumer: after missed heartbeats
 * nats.c 3.4.1 recreates that consumer in a detached thread that can
 * outlive the subscription, and at exit it aborted the process (2 runs of
 * about 20 of verdict_cluster_test). This thread is joined at close.
 *
 * A message missing below the last sequence (deleted) is asked for again
 * MISSING_TRIES_MAX times (a leader just elected may not have applied the
 * last messages yet), then skipped; the hash chain reports the gap.
 *
 * Far behind (at start, or after a long pause), it reads in batches
 * instead: an ephemeral pull consumer from the next sequence, no
 * acknowledgements, BATCH_MAX messages per fetch, deleted after the
 * catch-up (a pull consumer has no heartbeats, so nats.c starts no thread
 * for it). A replica that lags only delivers less; any error, or a gap, and
 * the rest is read one message at a time as above. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "common/log.h"
#include "verdict_js_internal.h"

enum {
    POLL_MS = 1000,      /* the last sequence asked again without a hint */
    READ_WAIT_MS = 2000, /* one message */
    MISSING_TRIES_MAX = 5,
    RECENT_MAX = 1000,         /* verdicts kept for kc.arbiter.verdicts */
    BATCH_FROM = 4,            /* messages behind before reading in batches */
    BATCH_MAX = 256,           /* messages per fetch */
    BATCH_INACTIVE_MS = 10000, /* the server deletes a consumer left behind after */
};

static void note_broken(kci_verdict_js *verdicts, uint64_t seq)
{
    kci_arbiter *arbiter = verdicts->arbiter;
    if (kci_arbiter_warn_due(arbiter, kci_monotonic_ms()))
        kci_warn("arbiter %s: verdict stream %s: the hash chain is broken at sequence %" PRIu64
                 " (%" PRIu64 " break(s) so far): a message was changed, removed or not "
                 "written after the one before it",
                 arbiter->id, verdicts->stream, seq, verdicts->chain.broken);
}

/* Under the lock: the message at seq, the next one. */
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

void kci_verdict_js_wait_read_past(kci_verdict_js *verdicts, uint64_t seq, int64_t wait_ms)
{
    struct timespec deadline = kci_deadline_after(CLOCK_MONOTONIC, wait_ms);
    while (!verdicts->closing && verdicts->applied_seq <= seq)
        if (pthread_cond_timedwait(&verdicts->changed, &verdicts->arbiter->lock, &deadline) != 0)
            break;
}

natsStatus kci_verdict_js_last_seq(kci_verdict_js *verdicts, uint64_t *last_seq,
                                   jsErrCode *error_code)
{
    jsStreamInfo *info = NULL;
    natsStatus status = js_GetStreamInfo(&info, verdicts->js, verdicts->stream, NULL, error_code);
    if (status == NATS_OK) *last_seq = info->State.LastSeq;
    jsStreamInfo_Destroy(info);
    return status;
}

void kci_verdict_js_on_hint(natsConnection *connection, natsSubscription *subscription,
                            natsMsg *message, void *closure)
{
    (void)connection, (void)subscription;
    kci_verdict_js *verdicts = closure;
    natsMsg_Destroy(message);
    pthread_mutex_lock(&verdicts->arbiter->lock);
    verdicts->hinted = true;
    pthread_cond_broadcast(&verdicts->changed);
    pthread_mutex_unlock(&verdicts->arbiter->lock);
}

/* Unlocked: an ephemeral pull consumer from seq, or NULL. */
static natsSubscription *batch_subscribe(kci_verdict_js *verdicts, uint64_t seq)
{
    jsSubOptions options;
    jsSubOptions_Init(&options);
    options.Stream = verdicts->stream;
    options.Config.DeliverPolicy = js_DeliverByStartSequence;
    options.Config.OptStartSeq = seq;
    options.Config.AckPolicy = js_AckNone;
    options.Config.InactiveThreshold = (int64_t)BATCH_INACTIVE_MS * 1000000LL;
    jsOptions js_options;
    jsOptions_Init(&js_options);
    js_options.Wait = READ_WAIT_MS;
    natsSubscription *subscription = NULL;
    jsErrCode error_code = 0;
    if (js_PullSubscribe(&subscription, verdicts->js, verdicts->subject, NULL, &js_options,
                         &options, &error_code) != NATS_OK) {
        kci_debug("arbiter: verdict stream %s: no batch read (%s, %d): one by one",
                  verdicts->stream, nats_GetLastError(NULL), (int)error_code);
        return NULL;
    }
    return subscription;
}

/* Under the lock: the fetched messages that come next, in order; false at
 * the first that does not (a gap: read one by one). */
static bool batch_apply(kci_verdict_js *verdicts, natsMsgList *list)
{
    for (int index = 0; index < list->Count; index++) {
        jsMsgMetaData *meta = NULL;
        if (natsMsg_GetMetaData(&meta, list->Msgs[index]) != NATS_OK) return false;
        uint64_t seq = meta->Sequence.Stream;
        jsMsgMetaData_Destroy(meta);
        if (seq <= verdicts->applied_seq) continue;
        if (seq != verdicts->applied_seq + 1) return false;
        int length = natsMsg_GetDataLength(list->Msgs[index]);
        read_one(verdicts, seq, natsMsg_GetData(list->Msgs[index]),
                 length > 0 ? (size_t)length : 0);
    }
    return list->Count > 0;
}

/* Under the lock (released while asking): reads in batches to the last
 * sequence known; false if nothing was read that way. */
static bool read_batches(kci_verdict_js *verdicts)
{
    uint64_t start = verdicts->applied_seq;
    pthread_mutex_unlock(&verdicts->arbiter->lock);
    natsSubscription *subscription = batch_subscribe(verdicts, start + 1);
    pthread_mutex_lock(&verdicts->arbiter->lock);
    bool going = subscription != NULL;
    while (going && !verdicts->closing && verdicts->known_last > verdicts->applied_seq) {
        pthread_mutex_unlock(&verdicts->arbiter->lock);
        natsMsgList list = {0};
        jsErrCode error_code = 0;
        natsStatus status =
            natsSubscription_Fetch(&list, subscription, BATCH_MAX, READ_WAIT_MS, &error_code);
        pthread_mutex_lock(&verdicts->arbiter->lock);
        going = status == NATS_OK && batch_apply(verdicts, &list);
        natsMsgList_Destroy(&list);
    }
    pthread_mutex_unlock(&verdicts->arbiter->lock);
    if (subscription != NULL) natsSubscription_Unsubscribe(subscription); /* deletes it */
    natsSubscription_Destroy(subscription);
    pthread_mutex_lock(&verdicts->arbiter->lock);
    return verdicts->applied_seq > start;
}

/* Under the lock (released while asking): the next message, or a pause. */
static void read_next(kci_verdict_js *verdicts, uint32_t *missing_tries)
{
    uint64_t seq = verdicts->applied_seq + 1;
    pthread_mutex_unlock(&verdicts->arbiter->lock);
    jsOptions options;
    jsOptions_Init(&options);
    options.Wait = READ_WAIT_MS;
    natsMsg *message = NULL;
    jsErrCode error_code = 0;
    natsStatus status =
        js_GetMsg(&message, verdicts->js, verdicts->stream, seq, &options, &error_code);
    pthread_mutex_lock(&verdicts->arbiter->lock);
    if (status == NATS_OK && verdicts->applied_seq + 1 == seq) {
        int length = natsMsg_GetDataLength(message);
        read_one(verdicts, seq, natsMsg_GetData(message), length > 0 ? (size_t)length : 0);
        *missing_tries = 0;
    } else if (status == NATS_NOT_FOUND && ++*missing_tries >= MISSING_TRIES_MAX) {
        verdicts->applied_seq = seq; /* deleted: the chain breaks at the next one */
        *missing_tries = 0;
    } else if (status != NATS_OK) {
        struct timespec pause = kci_deadline_after(CLOCK_MONOTONIC, VERDICT_JS_RETRY_PAUSE_MS);
        while (!verdicts->closing &&
               pthread_cond_timedwait(&verdicts->changed, &verdicts->arbiter->lock, &pause) == 0) {
        }
    }
    natsMsg_Destroy(message);
}

/* Under the lock (released while asking): the stream's last sequence, after
 * a hint or POLL_MS. */
static void look_again(kci_verdict_js *verdicts, int64_t *next_look_ms)
{
    if (!verdicts->hinted && kci_monotonic_ms() < *next_look_ms) {
        struct timespec deadline =
            kci_deadline_after(CLOCK_MONOTONIC, *next_look_ms - kci_monotonic_ms());
        pthread_cond_timedwait(&verdicts->changed, &verdicts->arbiter->lock, &deadline);
        return;
    }
    verdicts->hinted = false;
    *next_look_ms = kci_monotonic_ms() + POLL_MS;
    pthread_mutex_unlock(&verdicts->arbiter->lock);
    uint64_t last_seq = 0;
    jsErrCode error_code = 0;
    natsStatus status = kci_verdict_js_last_seq(verdicts, &last_seq, &error_code);
    pthread_mutex_lock(&verdicts->arbiter->lock);
    if (status == NATS_OK && last_seq > verdicts->known_last) verdicts->known_last = last_seq;
}

void *kci_verdict_js_follower_main(void *context)
{
    kci_verdict_js *verdicts = context;
    uint32_t missing_tries = 0;
    uint64_t batch_after = 0; /* no batch read before this sequence */
    int64_t next_look_ms = kci_monotonic_ms() + POLL_MS;
    pthread_mutex_lock(&verdicts->arbiter->lock);
    while (!verdicts->closing) {
        /* After a batch read that read nothing, one by one for a while. */
        if (verdicts->known_last >= verdicts->applied_seq + BATCH_FROM &&
            verdicts->applied_seq >= batch_after) {
            if (read_batches(verdicts)) continue;
            batch_after = verdicts->applied_seq + BATCH_FROM;
        }
        if (verdicts->known_last > verdicts->applied_seq)
            read_next(verdicts, &missing_tries);
        else
            look_again(verdicts, &next_look_ms);
    }
    pthread_mutex_unlock(&verdicts->arbiter->lock);
    return NULL;
}
