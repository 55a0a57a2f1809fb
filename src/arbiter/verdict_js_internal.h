/* verdict_js_internal.h - what the files of the verdicts on JetStream
 * share (verdict_js.h): verdict_js.c (the stream, open and close, the queue,
 * the reading for --verify), verdict_js_write.c (the writer thread),
 * verdict_js_follow.c (the follower thread). Everything below "under the
 * arbiter's lock" is guarded by the arbiter's mutex; both threads wait on
 * changed with it. */
#ifndef KCI_VERDICT_JS_INTERNAL_H
#define KCI_VERDICT_JS_INTERNAL_H

#include <jansson.h>
#include <nats/nats.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "arbiter_internal.h"

enum {
    VERDICT_JS_STREAM_BYTES_MAX = 64,
    VERDICT_JS_SUBJECT_BYTES_MAX = 16 + VERDICT_JS_STREAM_BYTES_MAX,
    VERDICT_JS_MSG_ID_BYTES_MAX = KC_NODE_BYTES_MAX + 32,
    VERDICT_JS_PENDING_MAX = 256,        /* verdicts waiting for the writer */
    VERDICT_JS_API_WAIT_MS = 5000,       /* a stream API answer */
    VERDICT_JS_RETRY_PAUSE_MS = 250,     /* after no responders (an election) or a timeout */
    VERDICT_JS_READ_BACK_WAIT_MS = 5000, /* for the follower to read a write */
};

typedef struct pending_verdict {
    json_t *verdict;
    char node[KC_NODE_BYTES_MAX + 1];
    uint32_t epoch;
    int64_t queued_ms;
    char msg_id[VERDICT_JS_MSG_ID_BYTES_MAX];
} pending_verdict;

struct kci_verdict_js {
    kci_arbiter *arbiter;
    natsConnection *own;        /* to verdict_servers; NULL: the arbiter's is used */
    natsConnection *connection; /* own, or the arbiter's */
    jsCtx *js;
    natsSubscription *hint; /* the stream's subject, plain: something was written */
    char stream[VERDICT_JS_STREAM_BYTES_MAX + 1];
    char subject[VERDICT_JS_SUBJECT_BYTES_MAX];
    pthread_t writer;
    bool writer_started;
    pthread_t follower;
    bool follower_started;
    pthread_cond_t changed; /* CLOCK_MONOTONIC: read, written, hinted, queued, closing */
    /* under the arbiter's lock */
    bool closing;
    bool live; /* read to the end at start: verdicts read from now on are announced */
    bool hinted;
    uint64_t applied_seq; /* the last message read */
    uint64_t known_last;  /* the stream's last sequence, as last seen */
    kci_verdict_chain chain;
    json_t *recent;
    pending_verdict pending[VERDICT_JS_PENDING_MAX];
    uint32_t pending_count;
};

/* verdict_js_write.c */
void *kci_verdict_js_writer_main(void *context);
void kci_verdict_js_pending_drop_first(kci_verdict_js *verdicts);

/* verdict_js_follow.c */
void *kci_verdict_js_follower_main(void *context);
void kci_verdict_js_on_hint(natsConnection *connection, natsSubscription *subscription,
                            natsMsg *message, void *closure);
/* Under the lock, for at most wait_ms: until the follower has read past seq. */
void kci_verdict_js_wait_read_past(kci_verdict_js *verdicts, uint64_t seq, int64_t wait_ms);
/* Outside the lock: the stream's last sequence (through its leader). */
natsStatus kci_verdict_js_last_seq(kci_verdict_js *verdicts, uint64_t *last_seq,
                                   jsErrCode *error_code);

#endif
