/* verdict_js_write.c - the writer thread of the verdicts on JetStream
 * (verdict_js.h): appends the queued verdicts to the stream, one at a time,
 * each after the last message the follower has read (its "prev" and its
 * Nats-Expected-Last-Sequence), outside the arbiter's lock; it never takes a
 * verdict itself: the follower does, on reading it back. */
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "common/log.h"
#include "verdict_js_internal.h"

enum {
    WRITE_PATIENCE_MS = 30000, /* a queued verdict is dropped after (the next vote queues it
                                  again): longer than a stream leader's election (4-9 s) */
    PUBLISH_WAIT_MS = 2000,    /* a PubAck; a write lost in an election is retried sooner (the
                                  same Nats-Msg-Id: stored once however often it is sent) */
};

void kci_verdict_js_pending_drop_first(kci_verdict_js *verdicts)
{
    assert(verdicts->pending_count > 0);
    json_decref(verdicts->pending[0].verdict);
    verdicts->pending_count--;
    memmove(&verdicts->pending[0], &verdicts->pending[1],
            verdicts->pending_count * sizeof verdicts->pending[0]);
}

typedef enum write_outcome {
    WRITE_STORED,    /* stored now, or found stored (a duplicate) */
    WRITE_NOT_AFTER, /* another verdict came first: read it, then see */
    WRITE_FAILED,    /* no responders, a timeout, ... */
} write_outcome;

/* Outside the lock: one attempt; *seq the stored sequence, or *status and
 * *error_code why not. */
static write_outcome publish(kci_verdict_js *verdicts, const char *line, const char *msg_id,
                             uint64_t expected_last, uint64_t *seq, natsStatus *status,
                             jsErrCode *error_code)
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
    *status = js_Publish(&ack, verdicts->js, verdicts->subject, line, (int)strlen(line), &options,
                         error_code);
    if (*status == NATS_OK) *seq = ack->Sequence;
    jsPubAck_Destroy(ack);
    if (*status == NATS_OK) return WRITE_STORED;
    return *error_code == JSStreamWrongLastSequenceErr ? WRITE_NOT_AFTER : WRITE_FAILED;
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
        kci_verdict_js_pending_drop_first(verdicts);
        return;
    }
    uint64_t expected_last = verdicts->applied_seq;
    json_object_set_new(first->verdict, KCI_VERDICT_PREV_KEY,
                        json_string(expected_last > 0 ? verdicts->chain.last_hash : ""));
    char *line = json_dumps(first->verdict, JSON_COMPACT);
    char msg_id[VERDICT_JS_MSG_ID_BYTES_MAX];
    snprintf(msg_id, sizeof msg_id, "%s", first->msg_id);
    pthread_mutex_unlock(&arbiter->lock);
    uint64_t seq = 0;
    natsStatus status = NATS_NO_MEMORY;
    jsErrCode error_code = 0;
    write_outcome outcome =
        line != NULL ? publish(verdicts, line, msg_id, expected_last, &seq, &status, &error_code)
                     : WRITE_FAILED;
    free(line);
    pthread_mutex_lock(&arbiter->lock);
    if (outcome == WRITE_FAILED && kci_arbiter_warn_due(arbiter, kci_monotonic_ms()))
        kci_warn("arbiter %s: cannot append verdict %s to stream %s: %s (JetStream error %d; "
                 "retried)",
                 arbiter->id, msg_id, verdicts->stream, natsStatus_GetText(status),
                 (int)error_code);
    if (outcome == WRITE_STORED) { /* taken when the follower reads it */
        if (seq > verdicts->known_last) verdicts->known_last = seq;
        pthread_cond_broadcast(&verdicts->changed);
        kci_verdict_js_wait_read_past(verdicts, seq - 1, VERDICT_JS_READ_BACK_WAIT_MS);
    } else if (outcome == WRITE_NOT_AFTER) { /* the follower is behind: it looks again */
        verdicts->hinted = true;
        pthread_cond_broadcast(&verdicts->changed);
        kci_verdict_js_wait_read_past(verdicts, expected_last, VERDICT_JS_READ_BACK_WAIT_MS);
    } else {
        struct timespec pause = kci_deadline_after(CLOCK_MONOTONIC, VERDICT_JS_RETRY_PAUSE_MS);
        while (!verdicts->closing &&
               pthread_cond_timedwait(&verdicts->changed, &arbiter->lock, &pause) == 0) {
        }
    }
}

void *kci_verdict_js_writer_main(void *context)
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
