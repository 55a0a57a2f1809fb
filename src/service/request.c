/* request.c - sending requests: kc_client_request (synchronous, on a reply
 * channel of the client's, channel.c, or natsConnection_RequestMsg when all
 * KCI_CHANNELS_MAX are busy), kc_client_request_async, and under it the
 * machinery that submit.c's asynchronous submits share (kci_async_send).
 *
 * A request is a message on kc.req.<type> stamped with Kc-Id, Kc-Ts,
 * Kc-Node, Kc-Type and Kc-Deadline (wall-clock now + timeout), so a service
 * can tell a request nobody waits for any more.
 *
 * Asynchronous machinery, made on a client's first async request:
 *  - one wildcard subscription on "_INBOX.<nuid>.*"; request i replies to
 *    "_INBOX.<nuid>.<token>", token = generation << SLOT_BITS | slot;
 *  - a fixed table of KCI_ASYNC_PENDING_MAX slots (a full table is
 *    KC_ERR_LIMIT), each with a generation so that a late reply to a slot
 *    reused since is recognised and dropped;
 *  - submits also count against the client's window (submits_in_flight_max):
 *    a submit waits up to its timeout for room, then is KC_ERR_LIMIT;
 *  - an indexed binary min-heap of deadlines over the slots, and one timeout
 *    thread that sleeps until the earliest deadline (nats.c's timers are not
 *    public API) and answers expired requests with KC_ERR_TIMEOUT.
 * A reply is matched on the subscription's delivery thread. Either way the
 * slot is released under the lock before the callback runs, so each request
 * gets exactly one callback, outside any lock. The server's no-responders
 * status message (Status: 503) arrives on the inbox like a reply and is
 * answered with KC_ERR_NO_RESPONDERS.
 *
 * Limits: callbacks run on the library's two threads (reply delivery and
 * timeouts); a callback that blocks delays the others. A request is armed
 * (its deadline enters the heap) only once its publish succeeded, and a
 * failed publish returns an error instead of calling back. */
#include <assert.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "service/client_internal.h"
#include "service/last_error.h"
#include "service/qos_report.h"

#define SLOT_NONE UINT32_MAX

enum {
    INBOX_BYTES_MAX = 96,
    TIMEOUT_BATCH_MAX = 64, /* callbacks run per wake of the timeout thread */
    /* A submitter blocked on a full window is woken once 1/8 of the window
     * is free, not at each completion: a wake per submit cost a context
     * switch per submit, a third of the client's CPU in the benchmark. */
    WINDOW_WAKE_FRACTION = 8,
};

typedef struct slot {
    bool in_use;
    uint32_t generation;
    uint32_t heap_index; /* SLOT_NONE until armed */
    uint32_t free_next;
    int64_t deadline_ms; /* monotonic */
    int64_t timeout_ms;
    kci_async_target target;
    char request_id[KC_UUID_TEXT_BYTES + 1];
} slot;

struct kci_async {
    pthread_mutex_t lock;
    pthread_cond_t wake;   /* the timeout thread: heap top changed or stopping */
    pthread_cond_t idle;   /* pending_count reached 0, or the subscription ended */
    pthread_cond_t window; /* a submit completed: submit_count < submit_max again */
    natsSubscription *subscription;
    char inbox[INBOX_BYTES_MAX]; /* "_INBOX.<nuid>" */
    slot *slots;
    uint32_t *heap; /* slot indices ordered by deadline_ms */
    uint32_t heap_count;
    uint32_t free_head;
    uint32_t pending_count;
    uint32_t submit_count;   /* of pending_count, submits (target.submit_callback) */
    uint32_t submit_max;     /* the client's submits_in_flight_max */
    uint32_t window_wake_at; /* wake window waiters when submit_count falls to it */
    uint32_t window_waiters; /* threads in window_wait */
    pthread_t timeout_thread;
    bool stopping;
    bool subscription_done;
    bool completion_set; /* on_inbox_complete will run */
};

typedef struct expired {
    kci_async_target target;
    char request_id[KC_UUID_TEXT_BYTES + 1];
    int64_t timeout_ms;
} expired;

/* ---- synchronous -------------------------------------------------------- */

static kc_err check_timeout(int64_t timeout_ms)
{
    if (timeout_ms <= 0 || timeout_ms > KCI_TIMEOUT_MS_MAX)
        return kci_fail(KC_ERR_INVALID_ARGUMENT, "timeout_ms %" PRId64 " is not in 1..%d",
                        timeout_ms, KCI_TIMEOUT_MS_MAX);
    return KC_OK;
}

/* Names the limit (issue 18: "exceeds the server's maximum" said not which). */
static kc_err too_large(const kc_client *client, size_t payload_len)
{
    int64_t max_payload = natsConnection_GetMaxPayload(client->connection);
    if (max_payload <= 0)
        return kci_fail(KC_ERR_TOO_LARGE,
                        "payload of %zu bytes (with the headers) exceeds the server's maximum",
                        payload_len);
    return kci_fail(KC_ERR_TOO_LARGE,
                    "payload of %zu bytes (with the headers) exceeds the server's max_payload of "
                    "%" PRId64 " bytes",
                    payload_len, max_payload);
}

/* A stamped request message; headers->id is the request's Kc-Id. */
static kc_err build_request(natsMsg **out, kc_client *client, const char *subject,
                            const char *reply_subject, const char *type, const void *payload,
                            size_t payload_len, int64_t timeout_ms, kci_kc_headers *headers)
{
    *out = NULL; /* timeout_ms 0: no Kc-Deadline */
    if (payload == NULL && payload_len > 0)
        return kci_fail(KC_ERR_INVALID_ARGUMENT, "payload is NULL but payload_len > 0");
    /* The server's maximum is nats.c's to check, at publish (headers
     * included, and current after a reconnect: NATS_MAX_PAYLOAD, then
     * too_large). Asking here too would take the connection's lock once more
     * per request. natsMsg_Create takes an int. */
    if (payload_len > (size_t)INT32_MAX) return too_large(client, payload_len);
    natsMsg *message = NULL;
    natsStatus status = natsMsg_Create(&message, subject, reply_subject,
                                       payload_len > 0 ? payload : NULL, (int)payload_len);
    if (status != NATS_OK) return kci_nats_fail(status, "request");
    kci_text_copy(headers->type, sizeof(headers->type), type);
    if (timeout_ms > 0) headers->deadline_ms = kci_wall_ms() + timeout_ms;
    kc_err err = kci_client_stamp(client, message, headers);
    if (err != KC_OK) {
        natsMsg_Destroy(message);
        return err;
    }
    *out = message;
    return KC_OK;
}

/* Publishes request (its reply subject is reply_subject, on channel) and
 * waits for the reply; the server's no-responders status becomes
 * NATS_NO_RESPONDERS, as natsConnection_RequestMsg reports it. */
static natsStatus channel_round_trip(kc_client *client, kci_channel *channel, natsMsg *request,
                                     const char *reply_subject, int64_t timeout_ms, natsMsg **reply)
{
    natsStatus status = natsConnection_PublishMsg(client->connection, request);
    if (status == NATS_OK) status = kci_channel_wait(channel, reply_subject, timeout_ms, reply);
    if (status == NATS_OK && natsMsg_IsNoResponders(*reply)) {
        natsMsg_Destroy(*reply);
        *reply = NULL;
        status = NATS_NO_RESPONDERS;
    }
    return status;
}

/* A synchronous request; pay (may be NULL) becomes Kc-Pay, or Kc-Pay-Hold
 * when hold. */
static kc_err request_sync(kc_reply **out, kc_client *client, const char *type, const void *payload,
                           size_t payload_len, int64_t timeout_ms, const char *pay, bool hold)
{
    if (out == NULL || client == NULL)
        return kci_fail(KC_ERR_INVALID_ARGUMENT, "out or client is NULL");
    *out = NULL;
    char subject[KCI_SUBJECT_BYTES_MAX];
    kc_err err = kci_request_subject(subject, type);
    if (err == KC_OK) err = check_timeout(timeout_ms);
    if (err != KC_OK) return err;
    kci_kc_headers headers;
    kci_headers_clear(&headers);
    if (pay != NULL && !hold) kci_text_copy(headers.pay, sizeof(headers.pay), pay);
    if (pay != NULL && hold) kci_text_copy(headers.pay_hold, sizeof(headers.pay_hold), pay);
    kci_channel *channel = NULL;
    err = kci_channel_take(client, &channel);
    if (err != KC_OK) return err;
    char reply_subject[KCI_SUBJECT_BYTES_MAX];
    if (channel != NULL) kci_channel_reply_subject(channel, reply_subject);
    natsMsg *request = NULL;
    err = build_request(&request, client, subject, channel != NULL ? reply_subject : NULL, type,
                        payload, payload_len, timeout_ms, &headers);
    if (err != KC_OK) {
        kci_channel_give_back(client, channel);
        return err;
    }
    natsMsg *reply = NULL;
    int64_t started_ms = kci_monotonic_ms();
    natsStatus status =
        channel != NULL
            ? channel_round_trip(client, channel, request, reply_subject, timeout_ms, &reply)
            : natsConnection_RequestMsg(&reply, client->connection, request, timeout_ms);
    kci_channel_give_back(client, channel);
    natsMsg_Destroy(request);
    if (status == NATS_MAX_PAYLOAD) return too_large(client, payload_len);
    if (status == NATS_TIMEOUT)
        return kci_fail(KC_ERR_TIMEOUT, "no reply to %s %s within %" PRId64 " ms", type, headers.id,
                        timeout_ms);
    if (status == NATS_NO_RESPONDERS)
        return kci_fail(KC_ERR_NO_RESPONDERS, "no service serves type %s", type);
    if (status != NATS_OK) return kci_nats_fail(status, "request");
    err = kci_reply_adopt(out, reply, headers.id);
    kci_qos_report_reply(client, *out, type, headers.id, kci_monotonic_ms() - started_ms);
    return err;
}

kc_err kc_client_request(kc_reply **out, kc_client *client, const char *type, const void *payload,
                         size_t payload_len, int64_t timeout_ms)
{
    return request_sync(out, client, type, payload, payload_len, timeout_ms, NULL, false);
}

static kc_err request_paid(kc_reply **out, kc_client *client, const char *type, const void *payload,
                           size_t payload_len, int64_t timeout_ms, const char *pay, bool hold)
{
    kci_uuid uuid;
    if (pay == NULL || !kci_uuid_parse(pay, strlen(pay), &uuid))
        return kci_fail(KC_ERR_INVALID_ARGUMENT, "pay must be a %s id (a UUID)",
                        hold ? "hold" : "transfer");
    kc_err err = request_sync(out, client, type, payload, payload_len, timeout_ms, pay, hold);
    if (err == KC_ERR_SERVICE && *out != NULL && kc_reply_error_code(*out) == KCI_CODE_PAYMENT)
        return kci_fail(KC_ERR_PAYMENT, "%s", kc_reply_error_message(*out));
    return err;
}

kc_err kc_client_request_paid(kc_reply **out, kc_client *client, const char *type,
                              const void *payload, size_t payload_len, int64_t timeout_ms,
                              const char *pay)
{
    return request_paid(out, client, type, payload, payload_len, timeout_ms, pay, false);
}

kc_err kc_client_request_held(kc_reply **out, kc_client *client, const char *type,
                              const void *payload, size_t payload_len, int64_t timeout_ms,
                              const char *hold)
{
    return request_paid(out, client, type, payload, payload_len, timeout_ms, hold, true);
}

/* ---- the deadline heap (under async->lock) ------------------------------ */

static bool heap_less(const kci_async *async, uint32_t a, uint32_t b)
{
    return async->slots[async->heap[a]].deadline_ms < async->slots[async->heap[b]].deadline_ms;
}

static void heap_swap(kci_async *async, uint32_t a, uint32_t b)
{
    uint32_t slot_a = async->heap[a];
    async->heap[a] = async->heap[b];
    async->heap[b] = slot_a;
    async->slots[async->heap[a]].heap_index = a;
    async->slots[async->heap[b]].heap_index = b;
}

static void heap_sift_up(kci_async *async, uint32_t index)
{
    while (index > 0 && heap_less(async, index, (index - 1) / 2)) {
        heap_swap(async, index, (index - 1) / 2);
        index = (index - 1) / 2;
    }
}

static void heap_sift_down(kci_async *async, uint32_t index)
{
    for (;;) {
        uint32_t smallest = index;
        uint32_t left = 2 * index + 1, right = 2 * index + 2;
        if (left < async->heap_count && heap_less(async, left, smallest)) smallest = left;
        if (right < async->heap_count && heap_less(async, right, smallest)) smallest = right;
        if (smallest == index) return;
        heap_swap(async, index, smallest);
        index = smallest;
    }
}

static void heap_push(kci_async *async, uint32_t slot_index)
{
    assert(async->heap_count < KCI_ASYNC_PENDING_MAX);
    uint32_t index = async->heap_count++;
    async->heap[index] = slot_index;
    async->slots[slot_index].heap_index = index;
    heap_sift_up(async, index);
}

static void heap_remove(kci_async *async, uint32_t slot_index)
{
    uint32_t index = async->slots[slot_index].heap_index;
    if (index == SLOT_NONE) return;
    assert(index < async->heap_count && async->heap[index] == slot_index);
    uint32_t last = --async->heap_count;
    if (index != last) {
        heap_swap(async, index, last);
        heap_sift_up(async, index);
        heap_sift_down(async, index);
    }
    async->slots[slot_index].heap_index = SLOT_NONE;
}

/* ---- slots (under async->lock) ------------------------------------------ */

static uint64_t slot_token(const kci_async *async, uint32_t slot_index)
{
    return ((uint64_t)async->slots[slot_index].generation << KCI_ASYNC_SLOT_BITS) | slot_index;
}

static uint32_t slot_find(const kci_async *async, uint64_t token)
{
    uint32_t slot_index = (uint32_t)(token & (KCI_ASYNC_PENDING_MAX - 1));
    const slot *candidate = &async->slots[slot_index];
    if (!candidate->in_use || candidate->generation != (uint32_t)(token >> KCI_ASYNC_SLOT_BITS))
        return SLOT_NONE;
    return slot_index;
}

static void slot_release(kci_async *async, uint32_t slot_index)
{
    slot *s = &async->slots[slot_index];
    assert(s->in_use && async->pending_count > 0);
    heap_remove(async, slot_index);
    s->in_use = false;
    s->generation++;
    if (s->target.submit_callback != NULL) {
        assert(async->submit_count > 0);
        async->submit_count--;
        if (async->window_waiters > 0 && async->submit_count <= async->window_wake_at)
            pthread_cond_broadcast(&async->window);
    }
    s->free_next = async->free_head;
    async->free_head = slot_index;
    if (--async->pending_count == 0) pthread_cond_broadcast(&async->idle);
}

/* ---- the two callback threads ------------------------------------------- */

/* The one callback of a request or submit, outside any lock; message (the
 * answer, may be NULL) is taken. */
static void target_call(kc_client *client, const kci_async_target *target, const char *request_id,
                        kc_err status, natsMsg *message)
{
    if (target->submit_callback != NULL) {
        kci_submit_complete(client, target, request_id, status, message);
        return;
    }
    kc_reply *reply = NULL;
    if (message != NULL) status = kci_reply_adopt(&reply, message, request_id);
    target->reply_callback(client, status, reply, target->closure);
}

static uint64_t parse_token(const kci_async *async, const char *subject)
{
    size_t inbox_len = strlen(async->inbox);
    if (subject == NULL || strncmp(subject, async->inbox, inbox_len) != 0 ||
        subject[inbox_len] != '.')
        return UINT64_MAX;
    const char *digits = subject + inbox_len + 1;
    uint64_t token = 0;
    size_t digit_count = 0;
    for (; digits[digit_count] >= '0' && digits[digit_count] <= '9'; digit_count++) {
        if (digit_count == 19) return UINT64_MAX; /* would overflow: not ours */
        token = token * 10 + (uint64_t)(digits[digit_count] - '0');
    }
    return digit_count > 0 && digits[digit_count] == '\0' ? token : UINT64_MAX;
}

static void on_inbox_message(natsConnection *connection, natsSubscription *subscription,
                             natsMsg *message, void *closure)
{
    kc_client *client = closure;
    kci_async *async = client->async;
    uint64_t token = parse_token(async, natsMsg_GetSubject(message));
    pthread_mutex_lock(&async->lock);
    uint32_t slot_index = token == UINT64_MAX ? SLOT_NONE : slot_find(async, token);
    if (slot_index == SLOT_NONE) {
        pthread_mutex_unlock(&async->lock);
        natsMsg_Destroy(message); /* late (timed out already) or not ours */
        return;
    }
    slot taken = async->slots[slot_index];
    slot_release(async, slot_index);
    pthread_mutex_unlock(&async->lock);

    target_call(client, &taken.target, taken.request_id, KC_OK, message);
}

static void on_inbox_complete(void *closure)
{
    kci_async *async = closure;
    pthread_mutex_lock(&async->lock);
    async->subscription_done = true;
    pthread_cond_broadcast(&async->idle);
    pthread_mutex_unlock(&async->lock);
}

/* Takes up to TIMEOUT_BATCH_MAX expired requests off the heap; when none
 * is due, sets *sleep_until_ms to the earliest deadline (0: none). */
static uint32_t collect_expired(kci_async *async, expired batch[TIMEOUT_BATCH_MAX],
                                int64_t *sleep_until_ms)
{
    uint32_t count = 0;
    int64_t now_ms = kci_monotonic_ms();
    *sleep_until_ms = 0;
    while (async->heap_count > 0 && count < TIMEOUT_BATCH_MAX) {
        uint32_t slot_index = async->heap[0];
        slot *s = &async->slots[slot_index];
        if (s->deadline_ms > now_ms) {
            *sleep_until_ms = s->deadline_ms;
            break;
        }
        batch[count].target = s->target;
        batch[count].timeout_ms = s->timeout_ms;
        memcpy(batch[count].request_id, s->request_id, sizeof(s->request_id));
        count++;
        slot_release(async, slot_index);
    }
    return count;
}

static void *timeout_thread_main(void *argument)
{
    kc_client *client = argument;
    kci_async *async = client->async;
    expired batch[TIMEOUT_BATCH_MAX];
    pthread_mutex_lock(&async->lock);
    while (!async->stopping) {
        int64_t sleep_until_ms = 0;
        uint32_t count = collect_expired(async, batch, &sleep_until_ms);
        if (count > 0) {
            pthread_mutex_unlock(&async->lock);
            for (uint32_t i = 0; i < count; i++) {
                kci_set_error(KC_ERR_TIMEOUT, "no reply to %s within %" PRId64 " ms",
                              batch[i].request_id, batch[i].timeout_ms);
                target_call(client, &batch[i].target, batch[i].request_id, KC_ERR_TIMEOUT, NULL);
            }
            pthread_mutex_lock(&async->lock);
            continue;
        }
        if (sleep_until_ms == 0) {
            pthread_cond_wait(&async->wake, &async->lock);
        } else {
            struct timespec until = {sleep_until_ms / 1000,
                                     (long)(sleep_until_ms % 1000) * 1000000};
            pthread_cond_timedwait(&async->wake, &async->lock, &until);
        }
    }
    pthread_mutex_unlock(&async->lock);
    return NULL;
}

/* ---- making and destroying the machinery -------------------------------- */

static kc_err async_sync_init(kci_async *async)
{
    pthread_condattr_t attributes;
    if (pthread_condattr_init(&attributes) != 0) return KC_ERR_NOMEM;
    pthread_condattr_setclock(&attributes, CLOCK_MONOTONIC);
    bool ok = pthread_mutex_init(&async->lock, NULL) == 0;
    ok = ok && pthread_cond_init(&async->wake, &attributes) == 0;
    ok = ok && pthread_cond_init(&async->idle, &attributes) == 0;
    ok = ok && pthread_cond_init(&async->window, &attributes) == 0;
    pthread_condattr_destroy(&attributes);
    return ok ? KC_OK : KC_ERR_NOMEM; /* on Linux these inits do not fail */
}

static kci_async *async_alloc(void)
{
    kci_async *async = calloc(1, sizeof(*async));
    if (async == NULL) return NULL;
    async->slots = calloc(KCI_ASYNC_PENDING_MAX, sizeof(slot));
    async->heap = calloc(KCI_ASYNC_PENDING_MAX, sizeof(uint32_t));
    if (async->slots == NULL || async->heap == NULL || async_sync_init(async) != KC_OK) {
        free(async->slots);
        free(async->heap);
        free(async);
        return NULL;
    }
    for (uint32_t i = 0; i < KCI_ASYNC_PENDING_MAX; i++) {
        async->slots[i].heap_index = SLOT_NONE;
        async->slots[i].free_next = i + 1 < KCI_ASYNC_PENDING_MAX ? i + 1 : SLOT_NONE;
    }
    return async;
}

static void async_free(kci_async *async)
{
    pthread_cond_destroy(&async->window);
    pthread_cond_destroy(&async->idle);
    pthread_cond_destroy(&async->wake);
    pthread_mutex_destroy(&async->lock);
    natsSubscription_Destroy(async->subscription);
    free(async->slots);
    free(async->heap);
    free(async);
}

static kc_err async_subscribe(kc_client *client, kci_async *async)
{
    natsInbox *inbox = NULL;
    natsStatus status = natsInbox_Create(&inbox);
    if (status != NATS_OK) return kci_nats_fail(status, "inbox");
    snprintf(async->inbox, sizeof(async->inbox), "%s", (const char *)inbox);
    natsInbox_Destroy(inbox);
    char subject[INBOX_BYTES_MAX + 2];
    snprintf(subject, sizeof(subject), "%s.*", async->inbox);
    status = natsConnection_Subscribe(&async->subscription, client->connection, subject,
                                      on_inbox_message, client);
    if (status == NATS_OK) {
        /* Unlimited: the table bounds what may be pending, not nats.c. */
        natsSubscription_SetPendingLimits(async->subscription, -1, -1);
        status = natsSubscription_SetOnCompleteCB(async->subscription, on_inbox_complete, async);
        async->completion_set = status == NATS_OK;
    }
    if (status != NATS_OK) return kci_nats_fail(status, "inbox subscription");
    return KC_OK;
}

/* Called with client->lock held. */
static kc_err async_create(kc_client *client)
{
    kci_async *async = async_alloc();
    if (async == NULL) return kci_fail(KC_ERR_NOMEM, "async request table");
    async->submit_max = client->submits_in_flight_max;
    uint32_t wake_room = async->submit_max / WINDOW_WAKE_FRACTION;
    async->window_wake_at = async->submit_max - (wake_room > 0 ? wake_room : 1);
    client->async = async; /* the callbacks find it here */
    kc_err err = async_subscribe(client, async);
    if (err == KC_OK &&
        pthread_create(&async->timeout_thread, NULL, timeout_thread_main, client) != 0)
        err = kci_fail(KC_ERR_NOMEM, "cannot start the async timeout thread");
    if (err != KC_OK) {
        if (async->subscription != NULL) natsSubscription_Unsubscribe(async->subscription);
        if (async->completion_set) {
            pthread_mutex_lock(&async->lock);
            while (!async->subscription_done)
                pthread_cond_wait(&async->idle, &async->lock);
            pthread_mutex_unlock(&async->lock);
        }
        client->async = NULL;
        async_free(async);
    }
    return err;
}

void kci_async_wait_idle(kc_client *client, int64_t deadline_ms)
{
    kci_async *async = client->async;
    if (async == NULL) return;
    struct timespec deadline = {deadline_ms / 1000, (long)(deadline_ms % 1000) * 1000000};
    pthread_mutex_lock(&async->lock);
    while (async->pending_count > 0 && !async->subscription_done) {
        if (pthread_cond_timedwait(&async->idle, &async->lock, &deadline) != 0) break;
    }
    pthread_mutex_unlock(&async->lock);
}

void kci_async_destroy(kc_client *client)
{
    kci_async *async = client->async;
    if (async == NULL) return;
    pthread_mutex_lock(&async->lock);
    /* The connection is closed: the delivery thread ends after its last
     * callback, which may still be running a user's callback. */
    assert(async->completion_set);
    while (!async->subscription_done)
        pthread_cond_wait(&async->idle, &async->lock);
    async->stopping = true;
    pthread_cond_broadcast(&async->wake);
    pthread_mutex_unlock(&async->lock);
    pthread_join(async->timeout_thread, NULL);
    for (uint32_t i = 0; i < KCI_ASYNC_PENDING_MAX && async->pending_count > 0; i++) {
        if (!async->slots[i].in_use) continue;
        slot taken = async->slots[i];
        slot_release(async, i);
        kci_set_error(KC_ERR_CLOSED, "the client closed before %s was answered", taken.request_id);
        target_call(client, &taken.target, taken.request_id, KC_ERR_CLOSED, NULL);
    }
    client->async = NULL;
    async_free(async);
}

/* ---- asynchronous requests ---------------------------------------------- */

static kc_err async_get(kci_async **out, kc_client *client)
{
    kc_err err = KC_OK;
    pthread_mutex_lock(&client->lock);
    if (client->closing || client->connection_closed)
        err = kci_fail(KC_ERR_CLOSED, "the client is closing");
    else if (client->async == NULL)
        err = async_create(client);
    *out = client->async;
    pthread_mutex_unlock(&client->lock);
    return err;
}

/* A submit waits (at most timeout_ms) for room in the client's window. */
static kc_err window_wait(kci_async *async, int64_t timeout_ms)
{
    int64_t until_ms = kci_monotonic_ms() + timeout_ms;
    struct timespec until = {until_ms / 1000, (long)(until_ms % 1000) * 1000000};
    kc_err err = KC_OK;
    async->window_waiters++;
    while (err == KC_OK && async->submit_count >= async->submit_max) {
        if (pthread_cond_timedwait(&async->window, &async->lock, &until) != 0 &&
            async->submit_count >= async->submit_max)
            err = kci_fail(KC_ERR_LIMIT,
                           "%u submits were in flight for %" PRId64 " ms (submits_in_flight_max)",
                           async->submit_max, timeout_ms);
    }
    async->window_waiters--;
    return err;
}

static kc_err slot_reserve(kci_async *async, uint64_t *token, int64_t timeout_ms,
                           const kci_async_target *target)
{
    pthread_mutex_lock(&async->lock);
    kc_err err = target->submit_callback != NULL ? window_wait(async, timeout_ms) : KC_OK;
    uint32_t slot_index = async->free_head;
    if (err == KC_OK && slot_index == SLOT_NONE)
        err = kci_fail(KC_ERR_LIMIT, "%d asynchronous requests are pending already",
                       KCI_ASYNC_PENDING_MAX);
    if (err != KC_OK) {
        pthread_mutex_unlock(&async->lock);
        return err;
    }
    slot *s = &async->slots[slot_index];
    assert(!s->in_use && s->heap_index == SLOT_NONE);
    async->free_head = s->free_next;
    s->in_use = true;
    s->timeout_ms = timeout_ms;
    s->deadline_ms = kci_monotonic_ms() + timeout_ms;
    s->target = *target;
    s->request_id[0] = '\0'; /* known once stamped, before the publish */
    async->pending_count++;
    if (target->submit_callback != NULL) async->submit_count++;
    *token = slot_token(async, slot_index);
    pthread_mutex_unlock(&async->lock);
    return KC_OK;
}

static void slot_set_request_id(kci_async *async, uint64_t token, const char *request_id)
{
    pthread_mutex_lock(&async->lock);
    uint32_t slot_index = slot_find(async, token);
    assert(slot_index != SLOT_NONE); /* nothing can answer it before it is published */
    memcpy(async->slots[slot_index].request_id, request_id, KC_UUID_TEXT_BYTES + 1);
    pthread_mutex_unlock(&async->lock);
}

/* Arms the deadline, unless a reply came first; or, on failure, forgets. */
static void slot_settle(kci_async *async, uint64_t token, bool published)
{
    pthread_mutex_lock(&async->lock);
    uint32_t slot_index = slot_find(async, token);
    if (slot_index != SLOT_NONE) {
        if (!published) {
            slot_release(async, slot_index);
        } else {
            heap_push(async, slot_index);
            if (async->heap[0] == slot_index) pthread_cond_signal(&async->wake);
        }
    }
    pthread_mutex_unlock(&async->lock);
}

kc_err kci_async_send(kc_client *client, const char *subject, const char *type, const void *payload,
                      size_t payload_len, int64_t timeout_ms, const kci_async_target *target,
                      char *id_out)
{
    kc_err err = check_timeout(timeout_ms);
    kci_async *async = NULL;
    if (err == KC_OK) err = async_get(&async, client);
    if (err != KC_OK) return err;
    uint64_t token = 0;
    err = slot_reserve(async, &token, timeout_ms, target);
    if (err != KC_OK) return err;
    char reply_subject[KCI_SUBJECT_BYTES_MAX];
    snprintf(reply_subject, sizeof(reply_subject), "%s.%" PRIu64, async->inbox, token);
    kci_kc_headers headers;
    kci_headers_clear(&headers);
    natsMsg *request = NULL;
    bool submit = target->submit_callback != NULL;
    err = build_request(&request, client, subject, reply_subject, type, payload, payload_len,
                        submit ? 0 : timeout_ms, &headers);
    if (err == KC_OK) {
        slot_set_request_id(async, token, headers.id);
        if (id_out != NULL) memcpy(id_out, headers.id, KC_UUID_TEXT_BYTES + 1);
        natsStatus status = natsConnection_PublishMsg(client->connection, request);
        if (status == NATS_MAX_PAYLOAD)
            err = too_large(client, payload_len);
        else if (status != NATS_OK)
            err = kci_nats_fail(status, "request");
        natsMsg_Destroy(request);
    }
    slot_settle(async, token, err == KC_OK);
    return err;
}

kc_err kc_client_request_async(kc_client *client, const char *type, const void *payload,
                               size_t payload_len, int64_t timeout_ms, kc_reply_callback callback,
                               void *closure)
{
    if (client == NULL || callback == NULL)
        return kci_fail(KC_ERR_INVALID_ARGUMENT, "client or callback is NULL");
    char subject[KCI_SUBJECT_BYTES_MAX];
    kc_err err = kci_request_subject(subject, type);
    if (err != KC_OK) return err;
    kci_async_target target = {.reply_callback = callback, .closure = closure};
    return kci_async_send(client, subject, type, payload, payload_len, timeout_ms, &target, NULL);
}
