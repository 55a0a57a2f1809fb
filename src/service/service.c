/* service.c - kc_service: serving one request type.
 *
 * Threading (leader/followers; docs/service.md, "Threading"): one
 * synchronous nats.c queue subscription on kc.req.<type> (queue group
 * <type>) and worker_count threads of our own. At most one worker, the
 * leader, waits in natsSubscription_NextMsg; when a request arrives it
 * hands the leadership to an idle worker, if any, and runs the handler
 * itself, on the thread nats.c's reader woke. So a request costs the same
 * thread hand-offs as with a raw nats.c subscriber (reader thread to the
 * thread that answers), where a delivery thread feeding a pool would add
 * one more wake-up per request; and, unlike worker_count separate queue
 * subscriptions, a free worker still always takes the next request: the
 * server's random choice among queue members cannot pile requests behind a
 * slow handler while another worker idles. Promoting a follower is one
 * futex wake, paid only when another worker is idle; with worker_count 1
 * nobody is ever woken. Requests nobody has taken yet wait in nats.c's
 * pending list (its default limits, 65,536 messages or 64 MiB, then nats.c
 * drops them and reports a slow consumer).
 *
 * Per request, in order:
 *  1. read the headers without requiring the core ones (a plain NATS client
 *     may call a service) and observe Kc-Ts; a malformed KingCobra header is
 *     answered 400 "<header>: <what is wrong>" and the handler does not run;
 *  2. no Kc-Id: one is made up, and the request bypasses the cache;
 *  2b. a paid service (price > 0): the Kc-Pay-Hold (hold.c, escrow) or
 *     the Kc-Pay (payment.c, a transfer made already) is claimed with the
 *     ledger for this request's Kc-Id (the ledger makes the claim
 *     idempotent per request, so a redelivery passes again) and a missing
 *     or refused payment is answered 402 without running the handler;
 *  3. the idempotence cache: a reply stored for this Kc-Id is sent again
 *     (same payload, error and reply Kc-Id), deadline or not; an id in
 *     progress on another worker is waited for (at most
 *     IN_PROGRESS_WAIT_MS_MAX and the request's own deadline), then
 *     answered with the first reply, or 409 if it is still running;
 *  4. Kc-Deadline passed (wall clock) and nothing stored: answered 504
 *     without running the handler (a requester still waiting, e.g. behind
 *     a skewed clock, learns why; one that gave up drops it) and counted;
 *     never cached;
 *  5. the handler runs; a hold is posted when it answered, voided when it
 *     answered an error (before the reply leaves, so the payer who gets
 *     the reply sees its money settled); its reply is stored in the cache,
 *     then published
 *     with Kc-Reply-To = the request's Kc-Id, Kc-Type, and Kc-Error
 *     "<code> <message>" when the handler set an error.
 * The cache is per service instance: a redelivery that the queue group
 * hands to another process is not caught here.
 *
 * Stop: drain the subscription (requests already delivered are still
 * served); the leader takes what nats.c holds, then NextMsg reports the
 * subscription's end and every worker returns; join them, free. Stop waits
 * for running handlers: a handler that never returns blocks it, and a
 * handler must not stop its own service. */
#include <assert.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "service/client_internal.h"
#include "service/idempotence.h"
#include "service/last_error.h"
#include "service/micro.h"

enum {
    WORKERS_DEFAULT = 4,
    WORKERS_MAX = 256,
    LEADER_WAIT_MS = 1000, /* one wait in NextMsg; stop, drain and close end it sooner */
    IDEMPOTENCE_ENTRIES_DEFAULT = 10000,
    IDEMPOTENCE_TTL_MS_DEFAULT = 10 * 60 * 1000,
    IN_PROGRESS_WAIT_MS_MAX = 5000,
    RESPONSE_INLINE_BYTES = 1024,      /* replies up to this size are not malloc'd */
    SUBSCRIBE_FLUSH_TIMEOUT_MS = 5000, /* the server has the SUB before start returns */
    MICRO_DRAIN_MS = 1000,             /* $SRV answers being built at stop */
    DESCRIPTION_BYTES_MAX = 256,
};

struct kc_service {
    kc_client *client;
    kc_service *next; /* the client's list, under client->lock */
    char type[KC_TYPE_BYTES_MAX + 1];
    char subject[KCI_SUBJECT_BYTES_MAX];
    kc_handler handler;
    void *closure;
    kci_idempotence *cache; /* NULL: idempotence_entries_max was 0 */
    natsSubscription *subscription;
    size_t payload_max;

    pthread_mutex_t lock;           /* the leadership, below */
    pthread_cond_t leadership_free; /* followers wait here to lead */
    bool has_leader;                /* a worker waits in NextMsg, or is about to */
    bool ended;                     /* the subscription delivers nothing more */
    int idle_count;                 /* followers waiting for the leadership */
    pthread_t *workers;
    int worker_count;
    int workers_started;

    _Atomic uint64_t served_count;
    _Atomic uint64_t replayed_count;
    _Atomic uint64_t expired_count;
    _Atomic uint64_t rejected_count;
    _Atomic uint64_t busy_count;
    int64_t price; /* > 0: a paid service */
    char wallet[KCI_WALLET_TEXT_BYTES + 1];
    kci_micro_stats stats; /* its one endpoint's, for $SRV.STATS (micro.h) */
    kci_micro *micro;      /* answers $SRV; NULL when it could not start */
    bool has_wallet_key;   /* it settles holds (Kc-Pay-Hold) */
    uint8_t wallet_secret_key[KCI_WALLET_SECRET_BYTES];
};

struct kc_request {
    const kci_kc_headers *headers;
    natsMsg *message;
    const char *type;
};

struct kc_response {
    void *payload; /* inline_payload, or malloc'd when larger */
    size_t payload_len;
    size_t payload_max;
    char inline_payload[RESPONSE_INLINE_BYTES];
    int error_code;
    char error_message[KC_ERROR_MESSAGE_BYTES_MAX];
};

/* ---- kc_request and kc_response ----------------------------------------- */

/* The subject says the type; a Kc-Type that disagrees does not count. */
const char *kc_request_type(const kc_request *request)
{
    return request != NULL ? request->type : "";
}

const char *kc_request_id(const kc_request *request)
{
    return request != NULL ? request->headers->id : "";
}

const char *kc_request_node(const kc_request *request)
{
    return request != NULL ? request->headers->node : "";
}

const char *kc_request_timestamp(const kc_request *request)
{
    return request != NULL ? request->headers->ts : "";
}

const char *kc_request_payment(const kc_request *request)
{
    return request != NULL ? request->headers->pay : "";
}

int64_t kc_request_deadline_ms(const kc_request *request)
{
    return request != NULL ? request->headers->deadline_ms : 0;
}

const void *kc_request_payload(const kc_request *request, size_t *payload_len)
{
    if (request == NULL) {
        if (payload_len != NULL) *payload_len = 0;
        return NULL;
    }
    if (payload_len != NULL) *payload_len = (size_t)natsMsg_GetDataLength(request->message);
    return natsMsg_GetData(request->message);
}

static void response_payload_free(kc_response *response)
{
    if (response->payload != response->inline_payload) free(response->payload);
    response->payload = NULL;
}

kc_err kc_response_set_payload(kc_response *response, const void *payload, size_t payload_len)
{
    if (response == NULL || (payload == NULL && payload_len > 0))
        return kci_fail(KC_ERR_INVALID_ARGUMENT, "response or payload is NULL");
    if (payload_len > response->payload_max)
        return kci_fail(KC_ERR_TOO_LARGE, "reply of %zu bytes exceeds the server's maximum %zu",
                        payload_len, response->payload_max);
    if (payload_len == 0) {
        response_payload_free(response);
        response->payload_len = 0;
        return KC_OK;
    }
    void *copy = response->inline_payload;
    if (payload_len > sizeof(response->inline_payload)) {
        copy = malloc(payload_len);
        if (copy == NULL) return kci_fail(KC_ERR_NOMEM, "reply payload");
    }
    /* Copied before the old copy is freed; memmove in case a caller hands
     * back bytes of the current copy. */
    memmove(copy, payload, payload_len);
    response_payload_free(response);
    response->payload = copy;
    response->payload_len = payload_len;
    return KC_OK;
}

/* Header values must not carry CR, LF or other control bytes. */
static void copy_header_text(char *out, size_t out_size, const char *text)
{
    assert(out_size > 0);
    size_t i = 0;
    for (; text[i] != '\0' && i + 1 < out_size; i++) {
        out[i] = text[i];
        if ((unsigned char)text[i] < 0x20 || text[i] == 0x7f) out[i] = ' ';
    }
    out[i] = '\0';
}

kc_err kc_response_set_error(kc_response *response, int code, const char *message)
{
    if (response == NULL || code <= 0)
        return kci_fail(KC_ERR_INVALID_ARGUMENT, "an error reply needs a code > 0");
    response->error_code = code;
    copy_header_text(response->error_message, sizeof(response->error_message),
                     message != NULL && message[0] != '\0' ? message : "error");
    return KC_OK;
}

void kc_service_options_init(kc_service_options *options)
{
    if (options == NULL) return;
    options->worker_count = WORKERS_DEFAULT;
    options->idempotence_entries_max = IDEMPOTENCE_ENTRIES_DEFAULT;
    options->idempotence_ttl_ms = IDEMPOTENCE_TTL_MS_DEFAULT;
    options->price = 0;
    options->wallet = NULL;
    options->description = NULL;
    options->version = NULL;
    options->wallet_secret_key = NULL;
}

/* ---- replies ------------------------------------------------------------ */

typedef struct outgoing {
    const char *reply_id; /* NULL: the new Kc-Id stamping gives; else a replay's first id */
    const void *payload;
    size_t payload_len;
    int error_code;
    const char *error_message;
} outgoing;

/* A stamped reply to request, or NULL (logged) when it cannot be built;
 * reply_id gets its Kc-Id. */
static natsMsg *build_reply(kc_service *service, const char *reply_subject, const char *request_id,
                            const outgoing *reply, char reply_id[KC_UUID_TEXT_BYTES + 1])
{
    natsMsg *message = NULL;
    natsStatus status =
        natsMsg_Create(&message, reply_subject, NULL,
                       reply->payload_len > 0 ? reply->payload : NULL, (int)reply->payload_len);
    if (status != NATS_OK) {
        kci_nats_fail(status, "reply");
        return NULL;
    }
    kci_kc_headers headers;
    kci_headers_clear(&headers);
    kci_text_copy(headers.type, sizeof(headers.type), service->type);
    kci_text_copy(headers.reply_to, sizeof(headers.reply_to), request_id);
    headers.error_code = reply->error_code;
    if (reply->error_code != 0)
        copy_header_text(headers.error_message, sizeof(headers.error_message),
                         reply->error_message);
    kc_err err = kci_client_stamp(service->client, message, &headers);
    /* A replay is the same reply sent again: it keeps the first Kc-Id. */
    if (err == KC_OK && reply->reply_id != NULL && reply->reply_id[0] != '\0' &&
        natsMsgHeader_Set(message, KCI_HEADER_ID, reply->reply_id) != NATS_OK)
        err = kci_fail(KC_ERR_NOMEM, "reply: Kc-Id");
    if (err != KC_OK) {
        natsMsg_Destroy(message);
        return NULL;
    }
    kci_text_copy(reply_id, KC_UUID_TEXT_BYTES + 1,
                  reply->reply_id != NULL && reply->reply_id[0] != '\0' ? reply->reply_id
                                                                        : headers.id);
    return message;
}

static void publish_reply(kc_service *service, natsMsg *message, const char *request_id)
{
    if (message == NULL) {
        kci_warn("kingcobra: %s: reply to %s not built: %s", service->type, request_id,
                 kc_last_error());
        return;
    }
    natsStatus status = natsConnection_PublishMsg(service->client->connection, message);
    if (status != NATS_OK) {
        kci_nats_fail(status, "reply");
        kci_warn("kingcobra: %s: reply to %s not sent: %s", service->type, request_id,
                 kc_last_error());
    }
    natsMsg_Destroy(message);
}

static void send_reply(kc_service *service, natsMsg *request, const char *request_id,
                       const outgoing *reply)
{
    if (reply->error_code != 0)
        kci_micro_stats_error(&service->stats, reply->error_code, reply->error_message);
    const char *reply_subject = natsMsg_GetReply(request);
    if (reply_subject == NULL || reply_subject[0] == '\0') return; /* a publish: nobody waits */
    char reply_id[KC_UUID_TEXT_BYTES + 1];
    publish_reply(service, build_reply(service, reply_subject, request_id, reply, reply_id),
                  request_id);
}

static void send_error(kc_service *service, natsMsg *request, const char *request_id, int code,
                       const char *message)
{
    outgoing reply = {NULL, NULL, 0, code, message};
    send_reply(service, request, request_id, &reply);
}

/* Runs the handler; stores the reply under headers->id when claimed. */
static void run_handler(kc_service *service, natsMsg *message, const kci_kc_headers *headers,
                        bool claimed)
{
    kc_request request = {headers, message, service->type};
    kc_response response; /* the buffers need no zeroing: 1.5 KiB per request */
    response.payload = NULL;
    response.payload_len = 0;
    response.payload_max = service->payload_max;
    response.error_code = 0;
    response.error_message[0] = '\0';
    service->handler(&request, &response, service->closure);
    atomic_fetch_add(&service->served_count, 1);
    if (response.error_code != 0)
        kci_micro_stats_error(&service->stats, response.error_code, response.error_message);
    if (service->price > 0 && service->has_wallet_key && headers->pay_hold[0] != '\0')
        kci_hold_settle(service->client, service->wallet_secret_key, headers,
                        response.error_code == 0);

    outgoing reply = {NULL, response.payload, response.payload_len, response.error_code,
                      response.error_message};
    const char *reply_subject = natsMsg_GetReply(message);
    char reply_id[KC_UUID_TEXT_BYTES + 1] = "";
    natsMsg *reply_message = NULL;
    if (reply_subject != NULL && reply_subject[0] != '\0')
        reply_message = build_reply(service, reply_subject, headers->id, &reply, reply_id);
    if (reply_id[0] == '\0') kci_uuid_v7_text(reply_id); /* nobody waits, or no message */
    if (claimed) {
        /* Stored before it is sent: a redelivery after the requester saw
         * the reply always finds it. */
        kc_err err = kci_idempotence_finish(service->cache, headers->id, reply_id, response.payload,
                                            response.payload_len, response.error_code,
                                            response.error_message);
        if (err != KC_OK)
            kci_warn("kingcobra: %s: reply to %s not remembered: %s", service->type, headers->id,
                     kc_strerror(err));
    }
    if (reply_subject != NULL && reply_subject[0] != '\0')
        publish_reply(service, reply_message, headers->id);
    response_payload_free(&response);
}

static void replay(kc_service *service, natsMsg *message, const char *request_id,
                   kci_stored_reply *stored)
{
    atomic_fetch_add(&service->replayed_count, 1);
    outgoing reply = {stored->reply_id, stored->payload, stored->payload_len, stored->error_code,
                      stored->error_message};
    send_reply(service, message, request_id, &reply);
    kci_stored_reply_clear(stored);
}

static int64_t in_progress_wait_ms(const kci_kc_headers *headers)
{
    int64_t wait_ms = IN_PROGRESS_WAIT_MS_MAX;
    if (headers->deadline_ms != 0) {
        int64_t left_ms = headers->deadline_ms - kci_wall_ms();
        if (left_ms < wait_ms) wait_ms = left_ms > 0 ? left_ms : 0;
    }
    return wait_ms;
}

static void reply_expired(kc_service *service, natsMsg *message, const char *request_id)
{
    atomic_fetch_add(&service->expired_count, 1);
    send_error(service, message, request_id, KCI_CODE_DEADLINE_PASSED,
               "the deadline passed before the request was served");
}

/* A stored reply is sent again even past the deadline (it costs nothing and
 * keeps redeliveries consistent); otherwise an expired request gets 504. */
static void serve_cached(kc_service *service, natsMsg *message, const kci_kc_headers *headers,
                         bool expired)
{
    kci_idempotence_outcome outcome = 0;
    kci_stored_reply stored;
    int64_t wait_ms = expired ? 0 : in_progress_wait_ms(headers);
    kc_err err = kci_idempotence_begin(service->cache, headers->id, wait_ms, &outcome, &stored);
    if (err != KC_OK) {
        send_error(service, message, headers->id, KCI_CODE_INTERNAL, kc_strerror(err));
        return;
    }
    if (outcome == KCI_IDEMPOTENCE_DONE) {
        replay(service, message, headers->id, &stored);
        return;
    }
    if (expired) {
        if (outcome == KCI_IDEMPOTENCE_CLAIMED)
            kci_idempotence_abandon(service->cache, headers->id);
        reply_expired(service, message, headers->id);
        return;
    }
    switch (outcome) {
    case KCI_IDEMPOTENCE_CLAIMED: run_handler(service, message, headers, true); return;
    case KCI_IDEMPOTENCE_UNTRACKED: run_handler(service, message, headers, false); return;
    case KCI_IDEMPOTENCE_BUSY:
        atomic_fetch_add(&service->busy_count, 1);
        send_error(service, message, headers->id, KCI_CODE_CONFLICT,
                   "a request with this Kc-Id is still being handled");
        return;
    case KCI_IDEMPOTENCE_DONE: break; /* handled above */
    }
    assert(outcome == KCI_IDEMPOTENCE_DONE && !"unreachable");
}

/* The request's Kc-Id when it is a UUID, even if another header is bad, so
 * the 400 reply still names the request it answers. */
static void raw_request_id(natsMsg *message, char id[KC_UUID_TEXT_BYTES + 1])
{
    id[0] = '\0';
    const char *value = NULL;
    kci_uuid uuid;
    if (natsMsgHeader_Get(message, KCI_HEADER_ID, &value) == NATS_OK && value != NULL &&
        kci_uuid_parse(value, strnlen(value, KC_UUID_TEXT_BYTES + 1), &uuid))
        kci_uuid_format(&uuid, id);
}

static void reject(kc_service *service, natsMsg *message)
{
    atomic_fetch_add(&service->rejected_count, 1);
    char detail[KC_ERROR_MESSAGE_BYTES_MAX];
    snprintf(detail, sizeof(detail), "%s", kc_last_error());
    char request_id[KC_UUID_TEXT_BYTES + 1];
    raw_request_id(message, request_id);
    send_error(service, message, request_id, KCI_CODE_BAD_REQUEST, detail);
}

/* False after answering 402: the payment is missing or the ledger refused it. */
static bool payment_accepted(kc_service *service, natsMsg *message, const kci_kc_headers *headers)
{
    char detail[KC_ERROR_MESSAGE_BYTES_MAX];
    kc_err err = headers->pay_hold[0] != '\0'
                     ? kci_hold_claim(service->client,
                                      service->has_wallet_key ? service->wallet_secret_key : NULL,
                                      service->price, headers, detail, sizeof(detail))
                     : kci_payment_claim(service->client, service->wallet, service->price, headers,
                                         detail, sizeof(detail));
    if (err == KC_OK) return true;
    send_error(service, message, headers->id, KCI_CODE_PAYMENT, detail);
    return false;
}

static void serve(kc_service *service, natsMsg *message)
{
    kci_kc_headers headers;
    kci_headers_clear(&headers);
    kc_err err = kci_headers_read(message, false, &headers);
    if (err == KC_OK) err = kci_client_observe(&headers);
    if (err != KC_OK) {
        reject(service, message);
        return;
    }
    bool tracked = headers.id[0] != '\0';
    if (!tracked) kci_uuid_v7_text(headers.id);
    bool expired = headers.deadline_ms != 0 && kci_wall_ms() >= headers.deadline_ms;
    if (service->price > 0 && !expired && !payment_accepted(service, message, &headers)) return;
    if (service->cache != NULL && tracked)
        serve_cached(service, message, &headers, expired);
    else if (expired)
        reply_expired(service, message, headers.id);
    else
        run_handler(service, message, &headers, false);
}

/* ---- the workers: leader and followers ---------------------------------- */

/* Leader/followers (see the file comment). Why not let every idle worker
 * wait in NextMsg: nats.c signals one waiter only when the pending list
 * goes from empty to non-empty, so with several waiters a second request
 * arriving before the first is taken wakes nobody and waits for a busy
 * worker; and a drained synchronous subscription completes in the NextMsg
 * that finds the list empty, which must happen once. One consumer at a
 * time avoids both. Takes the leadership; false once the subscription
 * ended. */
static bool leader_take(kc_service *service)
{
    pthread_mutex_lock(&service->lock);
    while (service->has_leader && !service->ended) {
        service->idle_count++;
        assert(service->idle_count < service->worker_count); /* the leader is not idle */
        pthread_cond_wait(&service->leadership_free, &service->lock);
        service->idle_count--;
    }
    bool ended = service->ended;
    if (!ended) service->has_leader = true;
    pthread_mutex_unlock(&service->lock);
    return !ended;
}

/* Gives the leadership up; wakes a follower to take it when one is idle
 * (a request will keep this worker busy), or every worker when the
 * subscription ended. */
static void leader_release(kc_service *service, bool ended)
{
    pthread_mutex_lock(&service->lock);
    assert(service->has_leader);
    service->has_leader = false;
    if (ended) {
        service->ended = true;
        pthread_cond_broadcast(&service->leadership_free);
    } else if (service->idle_count > 0) {
        pthread_cond_signal(&service->leadership_free);
    }
    pthread_mutex_unlock(&service->lock);
}

/* NextMsg's answers that leave the subscription open: a timeout, or a slow
 * consumer (nats.c dropped requests and told the error handler, which logs
 * it). Drained, unsubscribed or closed ends it: nats.c then answers
 * NATS_INVALID_SUBSCRIPTION or NATS_CONNECTION_CLOSED, after delivering
 * every request it holds. */
static bool wait_again(natsStatus status)
{
    return status == NATS_TIMEOUT || status == NATS_SLOW_CONSUMER;
}

/* The next request, as the leader: NATS_OK, or the status that ended the
 * subscription. Loops for as long as the subscription lives; each wait is
 * bounded by LEADER_WAIT_MS, and stop, drain and close wake it at once. */
static natsStatus leader_next(kc_service *service, natsMsg **message)
{
    for (;;) {
        natsStatus status =
            natsSubscription_NextMsg(message, service->subscription, LEADER_WAIT_MS);
        if (!wait_again(status)) return status;
    }
}

static void *worker_main(void *argument)
{
    kc_service *service = argument;
    while (leader_take(service)) {
        natsMsg *message = NULL;
        natsStatus status = leader_next(service, &message);
        leader_release(service, status != NATS_OK);
        if (status != NATS_OK) return NULL;
        int64_t start_ns = kci_micro_now_ns();
        serve(service, message);
        kci_micro_stats_request(&service->stats, kci_micro_now_ns() - start_ns);
        natsMsg_Destroy(message);
    }
    return NULL;
}

/* ---- start and stop ----------------------------------------------------- */

static kc_err check_options(const kc_service_options *options)
{
    if (options->worker_count < 1 || options->worker_count > WORKERS_MAX)
        return kci_fail(KC_ERR_INVALID_ARGUMENT, "worker_count %d is not in 1..%d",
                        options->worker_count, WORKERS_MAX);
    if (options->idempotence_entries_max > KCI_IDEMPOTENCE_ENTRIES_MAX)
        return kci_fail(KC_ERR_INVALID_ARGUMENT, "idempotence_entries_max %" PRIu32 " exceeds %d",
                        options->idempotence_entries_max, KCI_IDEMPOTENCE_ENTRIES_MAX);
    if (options->idempotence_entries_max > 0 && options->idempotence_ttl_ms <= 0)
        return kci_fail(KC_ERR_INVALID_ARGUMENT, "idempotence_ttl_ms must be > 0");
    if (options->price < 0) return kci_fail(KC_ERR_INVALID_ARGUMENT, "price must be >= 0");
    if (options->version != NULL && !kci_micro_version_valid(options->version))
        return kci_fail(KC_ERR_INVALID_ARGUMENT, "version \"%s\" is not semver (1.2.3)",
                        options->version);
    if (options->price > 0 && !kci_wallet_address_valid(options->wallet))
        return kci_fail(KC_ERR_INVALID_ARGUMENT,
                        "a paid service needs its wallet address (64 hex digits)");
    if (options->price > 0 && options->wallet_secret_key != NULL &&
        !kci_wallet_key_matches(options->wallet, options->wallet_secret_key))
        return kci_fail(KC_ERR_INVALID_ARGUMENT, "wallet_secret_key is not the key of wallet %s",
                        options->wallet);
    return KC_OK;
}

static void service_free(kc_service *service)
{
    kci_micro_stats_destroy(&service->stats);
    if (service->subscription != NULL) natsSubscription_Destroy(service->subscription);
    kci_idempotence_destroy(service->cache);
    pthread_cond_destroy(&service->leadership_free);
    pthread_mutex_destroy(&service->lock);
    free(service->workers);
    free(service);
}

static kc_service *service_alloc(const kc_service_options *options)
{
    kc_service *service = calloc(1, sizeof(*service));
    if (service == NULL) return NULL;
    service->worker_count = options->worker_count;
    service->price = options->price;
    if (options->price > 0)
        kci_text_copy(service->wallet, sizeof(service->wallet), options->wallet);
    if (options->price > 0 && options->wallet_secret_key != NULL) {
        memcpy(service->wallet_secret_key, options->wallet_secret_key, KCI_WALLET_SECRET_BYTES);
        service->has_wallet_key = true;
    }
    service->workers = calloc((size_t)options->worker_count, sizeof(pthread_t));
    pthread_mutex_init(&service->lock, NULL);
    pthread_cond_init(&service->leadership_free, NULL);
    kci_micro_stats_init(&service->stats);
    bool ok = service->workers != NULL;
    if (ok && options->idempotence_entries_max > 0)
        ok = kci_idempotence_create(&service->cache, options->idempotence_entries_max,
                                    KCI_IDEMPOTENCE_BYTES_DEFAULT, options->idempotence_ttl_ms,
                                    NULL, NULL) == KC_OK;
    if (!ok) {
        service_free(service);
        return NULL;
    }
    return service;
}

static kc_err client_register(kc_client *client, kc_service *service)
{
    kc_err err = KC_OK;
    pthread_mutex_lock(&client->lock);
    if (client->closing || client->connection_closed)
        err = kci_fail(KC_ERR_CLOSED, "the client is closing");
    else if (client->service_count >= KCI_CLIENT_SERVICES_MAX)
        err = kci_fail(KC_ERR_LIMIT, "a client runs at most %d services", KCI_CLIENT_SERVICES_MAX);
    if (err == KC_OK) {
        service->next = client->services;
        client->services = service;
        client->service_count++;
    }
    pthread_mutex_unlock(&client->lock);
    return err;
}

static void client_unregister(kc_client *client, kc_service *service)
{
    pthread_mutex_lock(&client->lock);
    kc_service **link = &client->services;
    for (uint32_t step = 0; *link != NULL && step < KCI_CLIENT_SERVICES_MAX; step++) {
        if (*link == service) {
            *link = service->next;
            assert(client->service_count > 0);
            client->service_count--;
            break;
        }
        link = &(*link)->next;
    }
    pthread_mutex_unlock(&client->lock);
}

/* The subscription's drain at stop (subscription_end). */
enum {
    SERVICE_DRAIN_CONNECTED_MS = 30 * 1000, /* nats.c's default: a live server answers at once */
    SERVICE_DRAIN_DISCONNECTED_MS = 500,    /* no server: only what is queued here */
};

/* Ends the subscription: drained (what nats.c holds is still served) or,
 * if that cannot start (the connection is closed), unsubscribed. Either way
 * the leader's NextMsg then reports the end and every worker returns.
 * Connected, the drain ends as soon as the server has seen the UNSUB; without
 * a server it could only end at nats.c's 30 s default, so SIGTERM of a serve
 * that lost its server waited that long with nothing running (issue 18):
 * what is queued here still gets a short bound to be taken. */
static void subscription_end(kc_service *service)
{
    natsConnection *connection = service->client->connection;
    int64_t drain_ms = natsConnection_Status(connection) == NATS_CONN_STATUS_CONNECTED
                           ? SERVICE_DRAIN_CONNECTED_MS
                           : SERVICE_DRAIN_DISCONNECTED_MS;
    if (natsSubscription_DrainTimeout(service->subscription, drain_ms) != NATS_OK)
        natsSubscription_Unsubscribe(service->subscription); /* closed already: harmless */
}

static void workers_join(kc_service *service)
{
    for (int i = 0; i < service->workers_started; i++)
        pthread_join(service->workers[i], NULL);
    assert(service->workers_started == 0 || service->ended);
    service->workers_started = 0;
}

static kc_err workers_start(kc_service *service)
{
    for (int i = 0; i < service->worker_count; i++) {
        if (pthread_create(&service->workers[i], NULL, worker_main, service) != 0)
            return kci_fail(KC_ERR_NOMEM, "cannot start worker %d of %s", i, service->type);
        service->workers_started++;
    }
    return KC_OK;
}

/* A synchronous queue subscription: the workers take its requests with
 * NextMsg (see "the workers"), nats.c runs no delivery thread for it. */
static kc_err subscribe(kc_service *service)
{
    natsConnection *connection = service->client->connection;
    natsStatus status = natsConnection_QueueSubscribeSync(&service->subscription, connection,
                                                          service->subject, service->type);
    if (status == NATS_OK)
        status = natsConnection_FlushTimeout(connection, SUBSCRIBE_FLUSH_TIMEOUT_MS);
    if (status != NATS_OK) {
        kc_err err = kci_nats_fail(status, "subscribe");
        if (service->subscription != NULL) natsSubscription_Unsubscribe(service->subscription);
        return err;
    }
    return KC_OK;
}

/* The services protocol's responder (micro.h). Its failure (e.g. a user
 * not allowed to subscribe to $SRV.>) leaves the service serving,
 * undiscoverable, and says so. */
static void micro_start(kc_service *service, const kc_service_options *options)
{
    char name[KCI_MICRO_NAME_BYTES_MAX + 1], description[DESCRIPTION_BYTES_MAX];
    kci_micro_name_from(name, sizeof name, service->type);
    snprintf(description, sizeof description, "KingCobra service %s", service->type);
    const kci_micro_endpoint endpoint = {service->type, service->subject, service->type,
                                         &service->stats};
    const kci_micro_description about = {
        .name = name,
        .version = options->version != NULL ? options->version : KC_VERSION,
        .description = options->description != NULL ? options->description : description,
        .node = kc_client_node(service->client),
        .type = service->type,
        .price = service->price,
        .endpoints = &endpoint,
        .endpoint_count = 1};
    char what[KC_TYPE_BYTES_MAX + 16];
    snprintf(what, sizeof what, "kingcobra: %s", service->type);
    service->micro = kci_micro_start_logged(service->client->connection, &about, what);
}

kc_err kc_service_start(kc_service **out, kc_client *client, const char *type, kc_handler handler,
                        void *closure, const kc_service_options *options)
{
    if (out == NULL || client == NULL || handler == NULL)
        return kci_fail(KC_ERR_INVALID_ARGUMENT, "out, client or handler is NULL");
    *out = NULL;
    kc_service_options defaults;
    kc_service_options_init(&defaults);
    if (options == NULL) options = &defaults;
    char subject[KCI_SUBJECT_BYTES_MAX];
    kc_err err = kci_request_subject(subject, type);
    if (err == KC_OK) err = check_options(options);
    if (err != KC_OK) return err;
    kc_service *service = service_alloc(options);
    if (service == NULL) return kci_fail(KC_ERR_NOMEM, "service %s", type);
    service->client = client;
    snprintf(service->type, sizeof(service->type), "%s", type);
    memcpy(service->subject, subject, sizeof(subject));
    service->handler = handler;
    service->closure = closure;
    service->payload_max = (size_t)natsConnection_GetMaxPayload(client->connection);
    err = client_register(client, service);
    if (err != KC_OK) {
        service_free(service);
        return err;
    }
    err = subscribe(service);
    if (err == KC_OK) {
        err = workers_start(service);
        if (err != KC_OK) { /* the started workers see the subscription close, and return */
            natsSubscription_Unsubscribe(service->subscription);
            workers_join(service);
        }
    }
    if (err != KC_OK) {
        client_unregister(client, service);
        service_free(service);
        return err;
    }
    micro_start(service, options);
    *out = service;
    return KC_OK;
}

void kc_service_stop(kc_service *service)
{
    if (service == NULL) return;
    kci_micro_stop(service->micro, MICRO_DRAIN_MS);
    subscription_end(service);
    workers_join(service);
    client_unregister(service->client, service);
    service_free(service);
}

void kci_service_stats_get(kc_service *service, kci_service_stats *out)
{
    assert(service != NULL && out != NULL);
    out->served_count = atomic_load(&service->served_count);
    out->replayed_count = atomic_load(&service->replayed_count);
    out->expired_count = atomic_load(&service->expired_count);
    out->rejected_count = atomic_load(&service->rejected_count);
    out->busy_count = atomic_load(&service->busy_count);
}
