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
 * last messages yet), then skipped; the hash chain reports the gap. */
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
    RECENT_MAX = 1000, /* verdicts kept for kc.arbiter.verdicts */
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
    int64_t next_look_ms = kci_monotonic_ms() + POLL_MS;
    pthread_mutex_lock(&verdicts->arbiter->lock);
    while (!verdicts->closing) {
        if (verdicts->known_last > verdicts->applied_seq)
            read_next(verdicts, &missing_tries);
        else
            look_again(verdicts, &next_look_ms);
    }
    pthread_mutex_unlock(&verdicts->arbiter->lock);
    return NULL;
}
