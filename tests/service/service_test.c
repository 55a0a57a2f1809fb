/* service_test.c - libkingcobra against a real NATS-protocol server: sync
 * and async requests, error replies, timeout versus no responders, replies
 * with bad headers, idempotence by Kc-Id (a raw nats.c client resends the
 * same Kc-Id, one after the other and at the same time), worker_count
 * concurrency (a free worker takes the next request while another is busy),
 * replies of every size, payloads over the server's maximum, malformed and
 * expired requests, plain NATS callers, HLC order of request and reply,
 * problem reports, suggestions, a prompt stop, and a close that drains.
 *
 * The server is the binary in argv[1] or in $KC_TEST_SERVER (kcobrad or
 * nats-server: both take `-a 127.0.0.1 -p PORT`); without either the test
 * is skipped (exit 77). One server, on an ephemeral port, serves the whole
 * group. Servers are started with the integration suite's harness. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>
#include <nats/nats.h>
#include <pthread.h>
#include <stdatomic.h>

#include "../integration/harness.h"
#include "kingcobra/kingcobra.h"
#include "service/client_internal.h"
#include "service/headers.h"
#include "service/hlc.h"

enum {
    TIMEOUT_MS = 5000,
    SHORT_TIMEOUT_MS = 200,
    ASYNC_COUNT = 100,
    WORKERS = 4,
    SLEEPS = 8,
    SLEEP_MS = 100,
    SLOW_HANDLER_MS = 600,
    CLOSE_REQUESTS = 10,
    SHARED_THREADS = 16,  /* synchronous requesters sharing one client */
    SHARED_REQUESTS = 50, /* each */
    FAST_REQUESTS = 5,
    BIG_REPLY_BYTES = 5000,            /* over the service's inline reply buffer */
    OVERSIZED_BYTES = 2 * 1024 * 1024, /* over both servers' default max_payload */
    STOP_PROMPT_MS = 3000, /* an idle service stops at once, not after a receive timeout */
    TEXT_BYTES_MAX = 512,
    SKIP_EXIT_CODE = 77,
};

static harness_server server;
static const char *server_binary;

/* ---- helpers ------------------------------------------------------------ */

static void sleep_ms(int duration_ms)
{
    harness_sleep_ms(duration_ms);
}

static kc_client *open_client(const char *node)
{
    kc_client_options options;
    kc_client_options_init(&options);
    options.servers = server.url;
    options.node = node;
    kc_client *client = NULL;
    kc_err err = kc_client_open(&client, &options);
    if (err != KC_OK) fprintf(stderr, "open: %s: %s\n", kc_strerror(err), kc_last_error());
    assert_int_equal(err, KC_OK);
    return client;
}

static void close_client(kc_client *client)
{
    assert_int_equal(kc_client_close(client, TIMEOUT_MS), KC_OK);
}

static natsConnection *open_raw(void)
{
    natsConnection *connection = NULL;
    assert_int_equal(natsConnection_ConnectTo(&connection, server.url), NATS_OK);
    return connection;
}

static kc_service *start(kc_client *client, const char *type, kc_handler handler, void *closure,
                         int worker_count)
{
    kc_service_options options;
    kc_service_options_init(&options);
    options.worker_count = worker_count;
    kc_service *service = NULL;
    assert_int_equal(kc_service_start(&service, client, type, handler, closure, &options), KC_OK);
    return service;
}

typedef struct counter {
    atomic_int calls;
    atomic_bool release;    /* lets slow_or_fast_handler's "slow" finish */
    atomic_int running;     /* handlers inside echo_handler now */
    atomic_int running_max; /* the most that ever ran at once */
    int sleep_ms;
    char last_timestamp[KCI_HLC_TEXT_BYTES_MAX];
    char last_id[KC_UUID_TEXT_BYTES + 1];
    pthread_mutex_t lock;
} counter;

static void counter_init(counter *c, int handler_sleep_ms)
{
    memset(c, 0, sizeof(*c));
    c->sleep_ms = handler_sleep_ms;
    pthread_mutex_init(&c->lock, NULL);
}

/* Answers "echo:<payload>#<call number>", after sleeping if asked. */
static void echo_handler(const kc_request *request, kc_response *response, void *closure)
{
    counter *c = closure;
    int call = atomic_fetch_add(&c->calls, 1) + 1;
    pthread_mutex_lock(&c->lock);
    snprintf(c->last_timestamp, sizeof(c->last_timestamp), "%s", kc_request_timestamp(request));
    snprintf(c->last_id, sizeof(c->last_id), "%s", kc_request_id(request));
    pthread_mutex_unlock(&c->lock);
    int running = atomic_fetch_add(&c->running, 1) + 1;
    int seen = atomic_load(&c->running_max);
    while (running > seen && !atomic_compare_exchange_weak(&c->running_max, &seen, running)) {
    }
    if (c->sleep_ms > 0) sleep_ms(c->sleep_ms);
    atomic_fetch_sub(&c->running, 1);
    size_t length = 0;
    const char *payload = kc_request_payload(request, &length);
    char text[TEXT_BYTES_MAX];
    int written = snprintf(text, sizeof(text), "echo:%.*s#%d", (int)length, payload, call);
    kc_response_set_payload(response, text, (size_t)written);
}

static void teapot_handler(const kc_request *request, kc_response *response, void *closure)
{
    (void)request;
    atomic_fetch_add(&((counter *)closure)->calls, 1);
    kc_response_set_payload(response, "tea", 3);
    kc_response_set_error(response, 418, "I'm a teapot\r\nnot coffee");
}

static void assert_payload(const kc_reply *reply, const char *expected)
{
    size_t length = 0;
    const char *payload = kc_reply_payload(reply, &length);
    assert_int_equal(length, strlen(expected));
    assert_memory_equal(payload, expected, length);
}

/* A raw request message with the given KingCobra headers (NULL: absent). */
static natsMsg *raw_request(const char *subject, const char *id, const char *ts, const char *node,
                            const char *deadline, const char *payload)
{
    natsMsg *message = NULL;
    assert_int_equal(natsMsg_Create(&message, subject, NULL, payload, (int)strlen(payload)),
                     NATS_OK);
    if (id != NULL) assert_int_equal(natsMsgHeader_Set(message, "Kc-Id", id), NATS_OK);
    if (ts != NULL) assert_int_equal(natsMsgHeader_Set(message, "Kc-Ts", ts), NATS_OK);
    if (node != NULL) assert_int_equal(natsMsgHeader_Set(message, "Kc-Node", node), NATS_OK);
    if (deadline != NULL)
        assert_int_equal(natsMsgHeader_Set(message, "Kc-Deadline", deadline), NATS_OK);
    return message;
}

static const char *header_of(natsMsg *message, const char *name)
{
    const char *value = NULL;
    if (natsMsgHeader_Get(message, name, &value) != NATS_OK) return NULL;
    return value;
}

static void now_ts(char text[KCI_HLC_TEXT_BYTES_MAX])
{
    kci_hlc_timestamp now;
    kci_hlc_now(kci_process_hlc(), &now);
    kci_hlc_format(&now, text);
}

/* ---- sync --------------------------------------------------------------- */

static void test_sync_request_reply(void **state)
{
    (void)state;
    counter c;
    counter_init(&c, 0);
    kc_client *service_client = open_client("svc-node");
    kc_client *client = open_client("caller");
    assert_string_equal(kc_client_node(client), "caller");
    kc_service *service = start(service_client, "echo", echo_handler, &c, 1);
    kc_reply *reply = NULL;
    assert_int_equal(kc_client_request(&reply, client, "echo", "hi", 2, TIMEOUT_MS), KC_OK);
    assert_payload(reply, "echo:hi#1");
    assert_string_equal(kc_reply_node(reply), "svc-node");
    assert_int_equal(kc_reply_error_code(reply), 0);
    assert_int_equal(strlen(kc_reply_id(reply)), KC_UUID_TEXT_BYTES);
    assert_string_equal(kc_reply_request_id(reply), c.last_id);
    assert_string_not_equal(kc_reply_id(reply), c.last_id);

    /* HLC: the reply's Kc-Ts orders after the request's. */
    kci_hlc_timestamp request_ts, reply_ts;
    assert_true(kci_hlc_parse(c.last_timestamp, strlen(c.last_timestamp), &request_ts));
    const char *reply_text = kc_reply_timestamp(reply);
    assert_true(kci_hlc_parse(reply_text, strlen(reply_text), &reply_ts));
    assert_true(kci_hlc_compare(&reply_ts, &request_ts) > 0);
    kc_reply_destroy(reply);

    /* An empty payload and a NULL one are fine. */
    assert_int_equal(kc_client_request(&reply, client, "echo", NULL, 0, TIMEOUT_MS), KC_OK);
    assert_payload(reply, "echo:#2");
    kc_reply_destroy(reply);
    kc_service_stop(service);
    close_client(client);
    close_client(service_client);
}

static void test_bad_arguments(void **state)
{
    (void)state;
    kc_client *client = open_client("caller");
    kc_reply *reply = NULL;
    assert_int_equal(kc_client_request(&reply, client, "a.b", "x", 1, TIMEOUT_MS),
                     KC_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(kc_last_error(), "a.b"));
    assert_int_equal(kc_client_request(&reply, client, "ok", "x", 1, 0), KC_ERR_INVALID_ARGUMENT);
    assert_int_equal(kc_client_request(&reply, client, "", "x", 1, 10), KC_ERR_INVALID_ARGUMENT);
    assert_int_equal(kc_client_request_async(client, "ok", "x", 1, 10, NULL, NULL),
                     KC_ERR_INVALID_ARGUMENT);
    kc_service *service = NULL;
    counter c;
    counter_init(&c, 0);
    assert_int_equal(kc_service_start(&service, client, "x>", echo_handler, &c, NULL),
                     KC_ERR_INVALID_ARGUMENT);
    kc_service_options options;
    kc_service_options_init(&options);
    options.worker_count = 0;
    assert_int_equal(kc_service_start(&service, client, "x", echo_handler, &c, &options),
                     KC_ERR_INVALID_ARGUMENT);
    assert_null(service);

    kc_client_options client_options;
    kc_client_options_init(&client_options);
    client_options.servers = server.url;
    client_options.node = "bad.node";
    kc_client *bad = NULL;
    assert_int_equal(kc_client_open(&bad, &client_options), KC_ERR_INVALID_ARGUMENT);
    client_options.node = NULL; /* the host name */
    assert_int_equal(kc_client_open(&bad, &client_options), KC_OK);
    assert_true(kci_token_valid(kc_client_node(bad)));
    close_client(bad);
    close_client(client);
}

/* ---- async -------------------------------------------------------------- */

typedef struct async_result {
    pthread_mutex_t lock;
    pthread_cond_t done;
    int count;
    int ok_count;
    int index_mismatches;
    kc_err last_status;
    int64_t last_at_ms;
} async_result;

typedef struct async_call {
    async_result *result;
    int index;
} async_call;

static void async_result_init(async_result *result)
{
    memset(result, 0, sizeof(*result));
    pthread_mutex_init(&result->lock, NULL);
    pthread_cond_init(&result->done, NULL);
}

static void on_reply(kc_client *client, kc_err status, kc_reply *reply, void *closure)
{
    async_call *call = closure;
    async_result *result = call->result;
    bool matches = true;
    if (status == KC_OK) {
        size_t length = 0;
        const char *payload = kc_reply_payload(reply, &length);
        char expected[32];
        int written = snprintf(expected, sizeof(expected), "echo:%d#", call->index);
        matches = length > (size_t)written && memcmp(payload, expected, (size_t)written) == 0;
    }
    kc_reply_destroy(reply);
    pthread_mutex_lock(&result->lock);
    result->count++;
    result->ok_count += status == KC_OK;
    result->index_mismatches += !matches;
    result->last_status = status;
    result->last_at_ms = harness_now_ms();
    pthread_cond_broadcast(&result->done);
    pthread_mutex_unlock(&result->lock);
}

static void await_count(async_result *result, int count)
{
    int64_t deadline_ms = harness_now_ms() + 2 * (int64_t)TIMEOUT_MS;
    pthread_mutex_lock(&result->lock);
    while (result->count < count && harness_now_ms() < deadline_ms) {
        pthread_mutex_unlock(&result->lock);
        sleep_ms(5);
        pthread_mutex_lock(&result->lock);
    }
    int got = result->count;
    pthread_mutex_unlock(&result->lock);
    assert_int_equal(got, count);
}

static void test_async_hundred(void **state)
{
    (void)state;
    counter c;
    counter_init(&c, 0);
    kc_client *service_client = open_client("svc-node");
    kc_client *client = open_client("caller");
    kc_service *service = start(service_client, "echo", echo_handler, &c, WORKERS);
    static async_result result;
    static async_call calls[ASYNC_COUNT];
    async_result_init(&result);
    for (int i = 0; i < ASYNC_COUNT; i++) {
        calls[i] = (async_call){&result, i};
        char payload[16];
        int length = snprintf(payload, sizeof(payload), "%d", i);
        assert_int_equal(kc_client_request_async(client, "echo", payload, (size_t)length,
                                                 TIMEOUT_MS, on_reply, &calls[i]),
                         KC_OK);
    }
    await_count(&result, ASYNC_COUNT);
    assert_int_equal(result.ok_count, ASYNC_COUNT);
    assert_int_equal(result.index_mismatches, 0);
    assert_int_equal(atomic_load(&c.calls), ASYNC_COUNT);
    kc_service_stop(service);
    close_client(client);
    close_client(service_client);
}

/* ---- errors ------------------------------------------------------------- */

static void test_service_error_reply(void **state)
{
    (void)state;
    counter c;
    counter_init(&c, 0);
    kc_client *service_client = open_client("svc-node");
    kc_client *client = open_client("caller");
    kc_service *service = start(service_client, "teapot", teapot_handler, &c, 1);
    kc_reply *reply = NULL;
    assert_int_equal(kc_client_request(&reply, client, "teapot", "x", 1, TIMEOUT_MS),
                     KC_ERR_SERVICE);
    assert_non_null(reply);
    assert_int_equal(kc_reply_error_code(reply), 418);
    assert_string_equal(kc_reply_error_message(reply), "I'm a teapot  not coffee");
    assert_payload(reply, "tea");
    assert_non_null(strstr(kc_last_error(), "418"));
    kc_reply_destroy(reply);
    kc_service_stop(service);
    close_client(client);
    close_client(service_client);
}

static void test_timeout_and_no_responders(void **state)
{
    (void)state;
    counter c;
    counter_init(&c, SLOW_HANDLER_MS);
    kc_client *service_client = open_client("svc-node");
    kc_client *client = open_client("caller");
    kc_reply *reply = NULL;
    int64_t started_ms = harness_now_ms();
    assert_int_equal(kc_client_request(&reply, client, "nobody", "x", 1, TIMEOUT_MS),
                     KC_ERR_NO_RESPONDERS);
    assert_true(harness_now_ms() - started_ms < TIMEOUT_MS / 2); /* not a timeout */
    assert_null(reply);

    kc_service *service = start(service_client, "slow", echo_handler, &c, 1);
    started_ms = harness_now_ms();
    assert_int_equal(kc_client_request(&reply, client, "slow", "x", 1, SHORT_TIMEOUT_MS),
                     KC_ERR_TIMEOUT);
    assert_true(harness_now_ms() - started_ms >= SHORT_TIMEOUT_MS - 10);
    assert_null(reply);

    static async_result result;
    static async_call calls[2];
    async_result_init(&result);
    calls[0] = (async_call){&result, 0};
    calls[1] = (async_call){&result, 1};
    assert_int_equal(
        kc_client_request_async(client, "nobody", "x", 1, TIMEOUT_MS, on_reply, &calls[0]), KC_OK);
    await_count(&result, 1);
    assert_int_equal(result.last_status, KC_ERR_NO_RESPONDERS);
    started_ms = harness_now_ms();
    assert_int_equal(
        kc_client_request_async(client, "slow", "x", 1, SHORT_TIMEOUT_MS, on_reply, &calls[1]),
        KC_OK);
    await_count(&result, 2);
    assert_int_equal(result.last_status, KC_ERR_TIMEOUT);
    assert_true(result.last_at_ms - started_ms >= SHORT_TIMEOUT_MS - 10);
    assert_true(result.last_at_ms - started_ms < 3 * (int64_t)SLOW_HANDLER_MS);
    kc_service_stop(service); /* waits for the slow handlers */
    close_client(client);
    close_client(service_client);
}

/* Synchronous requests wait on the client's reply channels (channel.c): a
 * reply that comes after its request timed out is dropped by the next
 * request on the channel, never taken for that request's reply, and a close
 * does not wait for late replies nobody reads. */
static void test_sync_late_reply_dropped(void **state)
{
    (void)state;
    counter c;
    counter_init(&c, SLOW_HANDLER_MS);
    kc_client *service_client = open_client("svc-node");
    kc_client *client = open_client("caller");
    kc_service *service = start(service_client, "late", echo_handler, &c, 1);
    kc_reply *reply = NULL;
    assert_int_equal(kc_client_request(&reply, client, "late", "first", 5, SHORT_TIMEOUT_MS),
                     KC_ERR_TIMEOUT);
    assert_null(reply);
    /* The reply to "first" arrives while this one waits on the same channel. */
    assert_int_equal(kc_client_request(&reply, client, "late", "second", 6, TIMEOUT_MS), KC_OK);
    assert_payload(reply, "echo:second#2");
    assert_string_equal(kc_reply_request_id(reply), c.last_id);
    kc_reply_destroy(reply);

    /* A late reply left unread in the channel when the client closes. */
    assert_int_equal(kc_client_request(&reply, client, "late", "third", 5, SHORT_TIMEOUT_MS),
                     KC_ERR_TIMEOUT);
    while (atomic_load(&c.calls) < 3 || atomic_load(&c.running) > 0)
        sleep_ms(5);
    sleep_ms(SLEEP_MS); /* for the reply to reach the client */
    int64_t started_ms = harness_now_ms();
    assert_int_equal(kc_client_close(client, TIMEOUT_MS), KC_OK);
    assert_true(harness_now_ms() - started_ms < TIMEOUT_MS / 2); /* not the drain timeout */
    kc_service_stop(service);
    close_client(service_client);
}

typedef struct shared_requester {
    pthread_t thread;
    kc_client *client;
    int index;
    int ok_count;
    int mismatch_count;
} shared_requester;

static void *shared_requester_run(void *argument)
{
    shared_requester *self = argument;
    for (int i = 0; i < SHARED_REQUESTS; i++) {
        char payload[32], prefix[48];
        int length = snprintf(payload, sizeof(payload), "t%d-r%d", self->index, i);
        int prefix_length = snprintf(prefix, sizeof(prefix), "echo:%s#", payload);
        kc_reply *reply = NULL;
        kc_err err =
            kc_client_request(&reply, self->client, "shared", payload, (size_t)length, TIMEOUT_MS);
        size_t reply_length = 0;
        const char *text = kc_reply_payload(reply, &reply_length);
        if (err != KC_OK)
            fprintf(stderr, "shared %d/%d: %s: %s\n", self->index, i, kc_strerror(err),
                    kc_last_error());
        else if (reply_length > (size_t)prefix_length &&
                 memcmp(text, prefix, (size_t)prefix_length) == 0)
            self->ok_count++;
        else
            self->mismatch_count++;
        kc_reply_destroy(reply);
    }
    return NULL;
}

/* Many threads share one client: each gets its own reply, every time. */
static void test_sync_threads_share_client(void **state)
{
    (void)state;
    counter c;
    counter_init(&c, 0);
    kc_client *service_client = open_client("svc-node");
    kc_client *client = open_client("caller");
    kc_service *service = start(service_client, "shared", echo_handler, &c, WORKERS);
    static shared_requester requesters[SHARED_THREADS];
    for (int index = 0; index < SHARED_THREADS; index++) {
        requesters[index] = (shared_requester){.client = client, .index = index};
        assert_int_equal(pthread_create(&requesters[index].thread, NULL, shared_requester_run,
                                        &requesters[index]),
                         0);
    }
    int ok_count = 0, mismatch_count = 0;
    for (int index = 0; index < SHARED_THREADS; index++) {
        pthread_join(requesters[index].thread, NULL);
        ok_count += requesters[index].ok_count;
        mismatch_count += requesters[index].mismatch_count;
    }
    assert_int_equal(mismatch_count, 0);
    assert_int_equal(ok_count, SHARED_THREADS * SHARED_REQUESTS);
    assert_int_equal(atomic_load(&c.calls), SHARED_THREADS * SHARED_REQUESTS);
    kc_service_stop(service);
    close_client(client);
    close_client(service_client);
}

/* A responder that is not a KingCobra service: its reply has no headers. */
static void plain_responder(natsConnection *connection, natsSubscription *subscription,
                            natsMsg *message, void *closure)
{
    (void)closure;
    natsConnection_PublishString(connection, natsMsg_GetReply(message), "plain");
    natsMsg_Destroy(message);
}

static void test_reply_with_bad_headers(void **state)
{
    (void)state;
    natsConnection *raw = open_raw();
    natsSubscription *subscription = NULL;
    assert_int_equal(
        natsConnection_Subscribe(&subscription, raw, "kc.req.plain", plain_responder, NULL),
        NATS_OK);
    assert_int_equal(natsConnection_Flush(raw), NATS_OK);
    kc_client *client = open_client("caller");
    kc_reply *reply = NULL;
    assert_int_equal(kc_client_request(&reply, client, "plain", "x", 1, TIMEOUT_MS),
                     KC_ERR_BAD_HEADER);
    assert_non_null(strstr(kc_last_error(), "Kc-"));
    assert_null(reply);
    close_client(client);
    natsSubscription_Destroy(subscription);
    natsConnection_Destroy(raw);
}

/* ---- idempotence -------------------------------------------------------- */

typedef struct raw_call {
    natsConnection *connection;
    const char *id;
    natsMsg *reply;
    natsStatus status;
} raw_call;

static void *raw_call_run(void *argument)
{
    raw_call *call = argument;
    char ts[KCI_HLC_TEXT_BYTES_MAX];
    now_ts(ts);
    natsMsg *request = NULL;
    natsMsg_Create(&request, "kc.req.once", NULL, "p", 1);
    natsMsgHeader_Set(request, "Kc-Id", call->id);
    natsMsgHeader_Set(request, "Kc-Ts", ts);
    natsMsgHeader_Set(request, "Kc-Node", "raw");
    call->status = natsConnection_RequestMsg(&call->reply, call->connection, request, TIMEOUT_MS);
    natsMsg_Destroy(request);
    return NULL;
}

static void assert_same_reply(natsMsg *a, natsMsg *b)
{
    assert_int_equal(natsMsg_GetDataLength(a), natsMsg_GetDataLength(b));
    assert_memory_equal(natsMsg_GetData(a), natsMsg_GetData(b), natsMsg_GetDataLength(a));
    assert_string_equal(header_of(a, "Kc-Id"), header_of(b, "Kc-Id"));
    assert_string_equal(header_of(a, "Kc-Reply-To"), header_of(b, "Kc-Reply-To"));
}

static void test_idempotent_by_id(void **state)
{
    (void)state;
    counter c;
    counter_init(&c, 0);
    kc_client *service_client = open_client("svc-node");
    kc_service *service = start(service_client, "once", echo_handler, &c, WORKERS);
    natsConnection *raw = open_raw();

    /* One after the other. */
    raw_call first = {raw, "0190b6e2-0000-7000-8000-000000000001", NULL, NATS_OK};
    raw_call second = first;
    raw_call_run(&first);
    raw_call_run(&second);
    assert_int_equal(first.status, NATS_OK);
    assert_int_equal(second.status, NATS_OK);
    assert_int_equal(atomic_load(&c.calls), 1);
    assert_same_reply(first.reply, second.reply);
    assert_string_equal(header_of(first.reply, "Kc-Reply-To"), first.id);
    assert_memory_equal(natsMsg_GetData(first.reply), "echo:p#1", 8);
    natsMsg_Destroy(first.reply);
    natsMsg_Destroy(second.reply);

    /* At the same time, with a slow handler: the second waits for the first. */
    c.sleep_ms = 300;
    raw_call calls[3];
    pthread_t threads[3];
    for (int i = 0; i < 3; i++) {
        calls[i] = (raw_call){raw, "0190b6e2-0000-7000-8000-000000000002", NULL, NATS_OK};
        assert_int_equal(pthread_create(&threads[i], NULL, raw_call_run, &calls[i]), 0);
    }
    for (int i = 0; i < 3; i++)
        pthread_join(threads[i], NULL);
    assert_int_equal(atomic_load(&c.calls), 2);
    for (int i = 0; i < 3; i++)
        assert_int_equal(calls[i].status, NATS_OK);
    assert_null(header_of(calls[0].reply, "Kc-Error"));
    assert_same_reply(calls[0].reply, calls[1].reply);
    assert_same_reply(calls[0].reply, calls[2].reply);
    for (int i = 0; i < 3; i++)
        natsMsg_Destroy(calls[i].reply);

    kci_service_stats stats;
    kci_service_stats_get(service, &stats);
    assert_int_equal(stats.served_count, 2);
    assert_int_equal(stats.replayed_count, 3);
    natsConnection_Destroy(raw);
    kc_service_stop(service);
    close_client(service_client);
}

/* ---- concurrency -------------------------------------------------------- */

static void test_worker_concurrency(void **state)
{
    (void)state;
    counter c;
    counter_init(&c, SLEEP_MS);
    kc_client *service_client = open_client("svc-node");
    kc_client *client = open_client("caller");
    kc_service *service = start(service_client, "nap", echo_handler, &c, WORKERS);
    static async_result result;
    static async_call calls[SLEEPS];
    async_result_init(&result);
    int64_t started_ms = harness_now_ms();
    for (int i = 0; i < SLEEPS; i++) {
        calls[i] = (async_call){&result, i};
        char payload[16];
        int length = snprintf(payload, sizeof(payload), "%d", i);
        assert_int_equal(kc_client_request_async(client, "nap", payload, (size_t)length, TIMEOUT_MS,
                                                 on_reply, &calls[i]),
                         KC_OK);
    }
    await_count(&result, SLEEPS);
    int64_t elapsed_ms = harness_now_ms() - started_ms;
    fprintf(stderr, "service_test: %d sleeps of %d ms on %d workers took %lld ms\n", SLEEPS,
            SLEEP_MS, WORKERS, (long long)elapsed_ms);
    assert_int_equal(result.ok_count, SLEEPS);
    /* Concurrency is counted, not timed: all workers ran at once, never more. */
    assert_int_equal(atomic_load(&c.running_max), WORKERS);
    assert_true(elapsed_ms >= (SLEEPS / WORKERS) * SLEEP_MS - 10); /* cannot beat 2 rounds */
    kc_service_stop(service);
    close_client(client);
    close_client(service_client);
}

/* "slow" sleeps SLOW_HANDLER_MS, anything else is answered at once. */
static void slow_or_fast_handler(const kc_request *request, kc_response *response, void *closure)
{
    counter *c = closure;
    atomic_fetch_add(&c->calls, 1);
    size_t length = 0;
    const char *payload = kc_request_payload(request, &length);
    /* "slow" holds its worker until the test lets it go (bounded), so the
     * test needs no clock to know the fast requests went around it. */
    if (length == 4 && memcmp(payload, "slow", 4) == 0) {
        for (int waited_ms = 0; !atomic_load(&c->release) && waited_ms < TIMEOUT_MS; waited_ms += 5)
            sleep_ms(5);
    }
    kc_response_set_payload(response, payload, length);
}

/* The pool property of the leader/followers workers: while one worker runs a
 * slow handler, requests behind it go to the other, never wait for it. */
static void test_free_worker_takes_next(void **state)
{
    (void)state;
    counter c;
    counter_init(&c, 0);
    kc_client *service_client = open_client("svc-node");
    kc_client *client = open_client("caller");
    kc_service *service = start(service_client, "mixed", slow_or_fast_handler, &c, 2);
    static async_result result;
    static async_call slow_call;
    async_result_init(&result);
    slow_call = (async_call){&result, 0};
    assert_int_equal(
        kc_client_request_async(client, "mixed", "slow", 4, TIMEOUT_MS, on_reply, &slow_call),
        KC_OK);
    while (atomic_load(&c.calls) == 0)
        sleep_ms(5);
    int64_t started_ms = harness_now_ms();
    for (int i = 0; i < FAST_REQUESTS; i++) {
        kc_reply *reply = NULL;
        assert_int_equal(kc_client_request(&reply, client, "mixed", "fast", 4, TIMEOUT_MS), KC_OK);
        assert_payload(reply, "fast");
        kc_reply_destroy(reply);
    }
    fprintf(stderr, "service_test: %d requests beside a held handler took %lld ms\n", FAST_REQUESTS,
            (long long)(harness_now_ms() - started_ms));
    pthread_mutex_lock(&result.lock);
    int answered = result.count;
    pthread_mutex_unlock(&result.lock);
    assert_int_equal(answered, 0); /* the slow one is still held */
    atomic_store(&c.release, true);
    await_count(&result, 1);
    assert_int_equal(result.last_status, KC_OK);
    kc_service_stop(service);
    close_client(client);
    close_client(service_client);
}

/* Sets the reply twice, crossing the service's inline buffer both ways. */
static void resize_handler(const kc_request *request, kc_response *response, void *closure)
{
    (void)closure;
    static char big[BIG_REPLY_BYTES];
    memset(big, 'b', sizeof(big));
    size_t length = 0;
    const char *payload = kc_request_payload(request, &length);
    bool grow = length == 4 && memcmp(payload, "grow", 4) == 0;
    assert_int_equal(
        kc_response_set_payload(response, grow ? "small" : big, grow ? 5 : sizeof(big)), KC_OK);
    assert_int_equal(
        kc_response_set_payload(response, grow ? big : "small", grow ? sizeof(big) : 5), KC_OK);
}

static void test_reply_sizes(void **state)
{
    (void)state;
    kc_client *service_client = open_client("svc-node");
    kc_client *client = open_client("caller");
    kc_service *service = start(service_client, "resize", resize_handler, NULL, 1);
    kc_reply *reply = NULL;
    assert_int_equal(kc_client_request(&reply, client, "resize", "shrink", 6, TIMEOUT_MS), KC_OK);
    assert_payload(reply, "small");
    kc_reply_destroy(reply);
    assert_int_equal(kc_client_request(&reply, client, "resize", "grow", 4, TIMEOUT_MS), KC_OK);
    size_t length = 0;
    const char *payload = kc_reply_payload(reply, &length);
    assert_int_equal(length, BIG_REPLY_BYTES);
    assert_true(payload[0] == 'b' && payload[BIG_REPLY_BYTES - 1] == 'b');
    kc_reply_destroy(reply);

    /* Over the server's maximum: refused by nats.c at publish, either way. */
    static char oversized[OVERSIZED_BYTES];
    assert_int_equal(
        kc_client_request(&reply, client, "resize", oversized, sizeof(oversized), TIMEOUT_MS),
        KC_ERR_TOO_LARGE);
    assert_null(reply);
    assert_non_null(strstr(kc_last_error(), "max_payload"));
    static async_result result;
    static async_call call;
    async_result_init(&result);
    call = (async_call){&result, 0};
    assert_int_equal(kc_client_request_async(client, "resize", oversized, sizeof(oversized),
                                             TIMEOUT_MS, on_reply, &call),
                     KC_ERR_TOO_LARGE);
    kc_service_stop(service);
    close_client(client);
    assert_int_equal(result.count, 0); /* refused: no callback */
    close_client(service_client);
}

/* Stop wakes the worker waiting for requests at once (it does not sit out
 * its wait), with one worker and with several. */
static void test_stop_is_prompt(void **state)
{
    (void)state;
    counter c;
    counter_init(&c, 0);
    kc_client *service_client = open_client("svc-node");
    kc_client *client = open_client("caller");
    const int worker_counts[] = {1, WORKERS};
    for (size_t i = 0; i < sizeof(worker_counts) / sizeof(worker_counts[0]); i++) {
        kc_service *service = start(service_client, "idle", echo_handler, &c, worker_counts[i]);
        kc_reply *reply = NULL;
        assert_int_equal(kc_client_request(&reply, client, "idle", "x", 1, TIMEOUT_MS), KC_OK);
        kc_reply_destroy(reply);
        sleep_ms(50); /* the leader is back in its wait */
        int64_t started_ms = harness_now_ms();
        kc_service_stop(service);
        assert_true(harness_now_ms() - started_ms < STOP_PROMPT_MS);
        assert_int_equal(kc_client_request(&reply, client, "idle", "x", 1, TIMEOUT_MS),
                         KC_ERR_NO_RESPONDERS);
    }
    close_client(client);
    close_client(service_client);
}

/* ---- malformed, expired, plain ------------------------------------------ */

static natsMsg *raw_round_trip(natsConnection *raw, natsMsg *request)
{
    natsMsg *reply = NULL;
    assert_int_equal(natsConnection_RequestMsg(&reply, raw, request, TIMEOUT_MS), NATS_OK);
    natsMsg_Destroy(request);
    return reply;
}

static void test_malformed_expired_and_plain(void **state)
{
    (void)state;
    counter c;
    counter_init(&c, 0);
    kc_client *service_client = open_client("svc-node");
    kc_service *service = start(service_client, "strict", echo_handler, &c, 1);
    natsConnection *raw = open_raw();
    char ts[KCI_HLC_TEXT_BYTES_MAX];
    now_ts(ts);

    natsMsg *reply =
        raw_round_trip(raw, raw_request("kc.req.strict", "not-a-uuid", ts, "raw", NULL, "x"));
    const char *error = header_of(reply, "Kc-Error");
    assert_non_null(error);
    assert_memory_equal(error, "400 ", 4);
    assert_non_null(strstr(error, "Kc-Id"));
    assert_non_null(header_of(reply, "Kc-Id"));
    natsMsg_Destroy(reply);
    const char *bad_ts_id = "0190b6e2-0000-7000-8000-00000000000b";
    reply = raw_round_trip(raw, raw_request("kc.req.strict", bad_ts_id, "12x", "raw", NULL, "x"));
    assert_non_null(strstr(header_of(reply, "Kc-Error"), "Kc-Ts"));
    assert_string_equal(header_of(reply, "Kc-Reply-To"), bad_ts_id);
    natsMsg_Destroy(reply);
    assert_int_equal(atomic_load(&c.calls), 0);

    /* A deadline in the past: 504, and the handler does not run. */
    reply = raw_round_trip(raw, raw_request("kc.req.strict", "0190b6e2-0000-7000-8000-00000000000e",
                                            ts, "raw", "1000", "x"));
    assert_memory_equal(header_of(reply, "Kc-Error"), "504 ", 4);
    assert_string_equal(header_of(reply, "Kc-Reply-To"), "0190b6e2-0000-7000-8000-00000000000e");
    natsMsg_Destroy(reply);
    assert_int_equal(atomic_load(&c.calls), 0);

    /* Answered once, then redelivered past its deadline: the stored reply. */
    const char *answered_id = "0190b6e2-0000-7000-8000-00000000000f";
    char future[32];
    snprintf(future, sizeof(future), "%lld", (long long)(kci_clock_real_ms(NULL) + TIMEOUT_MS));
    natsMsg *first =
        raw_round_trip(raw, raw_request("kc.req.strict", answered_id, ts, "raw", future, "late"));
    assert_null(header_of(first, "Kc-Error"));
    reply =
        raw_round_trip(raw, raw_request("kc.req.strict", answered_id, ts, "raw", "1000", "late"));
    assert_null(header_of(reply, "Kc-Error"));
    assert_same_reply(first, reply);
    natsMsg_Destroy(first);
    natsMsg_Destroy(reply);
    assert_int_equal(atomic_load(&c.calls), 1);

    /* A plain NATS request without any header is served. */
    assert_int_equal(
        natsConnection_RequestString(&reply, raw, "kc.req.strict", "plain", TIMEOUT_MS), NATS_OK);
    assert_memory_equal(natsMsg_GetData(reply), "echo:plain#2", 12);
    assert_null(header_of(reply, "Kc-Error"));
    assert_int_equal(strlen(header_of(reply, "Kc-Reply-To")), KC_UUID_TEXT_BYTES);
    natsMsg_Destroy(reply);

    kci_service_stats stats;
    kci_service_stats_get(service, &stats);
    assert_int_equal(stats.rejected_count, 2);
    assert_int_equal(stats.expired_count, 1);
    assert_int_equal(stats.served_count, 2);
    assert_int_equal(stats.replayed_count, 1);
    natsConnection_Destroy(raw);
    kc_service_stop(service);
    close_client(service_client);
}

/* ---- problem reports and suggestions ------------------------------------ */

static void test_problem_report(void **state)
{
    (void)state;
    assert_string_equal(kc_problem_reason_name(KC_PROBLEM_SLOW), "slow");
    assert_int_equal(kc_problem_reason_from_name("overcharged"), KC_PROBLEM_OVERCHARGED);
    assert_int_equal(kc_problem_reason_from_name("bogus"), 0);
    natsConnection *raw = open_raw();
    natsSubscription *subscription = NULL;
    assert_int_equal(natsConnection_SubscribeSync(&subscription, raw, "kc.problem.bad-node"),
                     NATS_OK);
    assert_int_equal(natsConnection_Flush(raw), NATS_OK);
    kc_client *client = open_client("reporter-node");
    const char *request_id = "0190b6e2-0000-7000-8000-0000000000aa";
    assert_int_equal(kc_client_report_problem(client, "bad-node", KC_PROBLEM_WRONG_ANSWER,
                                              request_id, "2+2=5 \"really\""),
                     KC_OK);
    assert_int_equal(kc_client_report_problem(client, "a.b", KC_PROBLEM_SLOW, NULL, NULL),
                     KC_ERR_INVALID_ARGUMENT);
    assert_int_equal(kc_client_report_problem(client, "n", 99, NULL, NULL),
                     KC_ERR_INVALID_ARGUMENT);
    assert_int_equal(kc_client_report_problem(client, "n", KC_PROBLEM_SLOW, "nope", NULL),
                     KC_ERR_INVALID_ARGUMENT);
    assert_int_equal(kc_client_report_problem(client, "n", KC_PROBLEM_SLOW, NULL, "bad \xff utf-8"),
                     KC_ERR_INVALID_ARGUMENT);
    static char long_text[16 * 1024 + 2];
    memset(long_text, 'x', sizeof(long_text) - 1);
    assert_int_equal(kc_client_report_problem(client, "n", KC_PROBLEM_SLOW, NULL, long_text),
                     KC_ERR_TOO_LARGE);
    natsMsg *message = NULL;
    assert_int_equal(natsSubscription_NextMsg(&message, subscription, TIMEOUT_MS), NATS_OK);
    json_error_t error;
    json_t *object =
        json_loadb(natsMsg_GetData(message), (size_t)natsMsg_GetDataLength(message), 0, &error);
    assert_non_null(object);
    assert_string_equal(json_string_value(json_object_get(object, "node")), "bad-node");
    assert_string_equal(json_string_value(json_object_get(object, "reason")), "wrong_answer");
    assert_string_equal(json_string_value(json_object_get(object, "request_id")), request_id);
    assert_string_equal(json_string_value(json_object_get(object, "text")), "2+2=5 \"really\"");
    assert_string_equal(json_string_value(json_object_get(object, "reporter")), "reporter-node");
    json_decref(object);
    kci_kc_headers headers;
    assert_int_equal(kci_headers_read(message, true, &headers), KC_OK);
    assert_string_equal(headers.node, "reporter-node");
    natsMsg_Destroy(message);
    close_client(client);
    natsSubscription_Destroy(subscription);
    natsConnection_Destroy(raw);
}

static void keeper(natsConnection *connection, natsSubscription *subscription, natsMsg *message,
                   void *closure)
{
    const char *answer = closure;
    json_error_t error;
    json_t *object =
        json_loadb(natsMsg_GetData(message), (size_t)natsMsg_GetDataLength(message), 0, &error);
    bool well_formed = object != NULL && json_is_string(json_object_get(object, "text")) &&
                       json_is_string(json_object_get(object, "node"));
    json_decref(object);
    natsConnection_PublishString(connection, natsMsg_GetReply(message),
                                 well_formed ? answer : "{}");
    natsMsg_Destroy(message);
}

static void test_suggest(void **state)
{
    (void)state;
    kc_client *client = open_client("caller");
    assert_int_equal(kc_client_suggest(client, "", TIMEOUT_MS, NULL), KC_ERR_INVALID_ARGUMENT);
    kc_err err = kc_client_suggest(client, "more cowbell", TIMEOUT_MS, NULL);
    if (err == KC_OK) {
        /* This server runs a keeper of its own: the fake ones below would race it. */
        close_client(client);
        return;
    }
    assert_int_equal(err, KC_ERR_NO_RESPONDERS);
    assert_non_null(strstr(kc_last_error(), "start kcobrad"));

    natsConnection *raw = open_raw();
    natsSubscription *subscription = NULL;
    assert_int_equal(natsConnection_Subscribe(&subscription, raw, "kc.suggest", keeper,
                                              "{\"id\":\"s-1\",\"stored\":true}"),
                     NATS_OK);
    assert_int_equal(natsConnection_Flush(raw), NATS_OK);
    char id[KC_UUID_TEXT_BYTES + 1];
    assert_int_equal(kc_client_suggest(client, "more cowbell", TIMEOUT_MS, id), KC_OK);
    assert_string_equal(id, "s-1"); /* the keeper's id is handed back */
    natsSubscription_Unsubscribe(subscription);
    natsSubscription_Destroy(subscription);
    assert_int_equal(
        natsConnection_Subscribe(&subscription, raw, "kc.suggest", keeper, "{\"stored\":false}"),
        NATS_OK);
    assert_int_equal(natsConnection_Flush(raw), NATS_OK);
    assert_int_equal(kc_client_suggest(client, "less cowbell", TIMEOUT_MS, NULL), KC_ERR_SERVICE);
    natsSubscription_Unsubscribe(subscription);
    natsSubscription_Destroy(subscription);
    natsConnection_Destroy(raw);
    close_client(client);
}

/* ---- close -------------------------------------------------------------- */

static void test_close_drains(void **state)
{
    (void)state;
    counter c;
    counter_init(&c, SLEEP_MS * 2);
    kc_client *service_client = open_client("svc-node");
    kc_client *client = open_client("caller");
    start(service_client, "drain", echo_handler, &c, 2);
    static async_result result;
    static async_call calls[CLOSE_REQUESTS];
    async_result_init(&result);
    for (int i = 0; i < CLOSE_REQUESTS; i++) {
        calls[i] = (async_call){&result, i};
        char payload[16];
        int length = snprintf(payload, sizeof(payload), "%d", i);
        assert_int_equal(kc_client_request_async(client, "drain", payload, (size_t)length,
                                                 TIMEOUT_MS, on_reply, &calls[i]),
                         KC_OK);
    }
    /* The requester closes at once: it waits for the answers in flight. */
    assert_int_equal(kc_client_close(client, 4 * (int64_t)TIMEOUT_MS), KC_OK);
    assert_int_equal(result.count, CLOSE_REQUESTS);
    assert_int_equal(result.ok_count, CLOSE_REQUESTS);
    assert_int_equal(result.index_mismatches, 0);

    /* The service side closes with its (still registered) service running a
     * slow request: the handler finishes and the reply goes out first. */
    counter slow;
    counter_init(&slow, SLOW_HANDLER_MS);
    start(service_client, "last", echo_handler, &slow, 1);
    client = open_client("caller");
    async_result_init(&result);
    calls[0] = (async_call){&result, 0};
    assert_int_equal(
        kc_client_request_async(client, "last", "0", 1, TIMEOUT_MS, on_reply, &calls[0]), KC_OK);
    while (atomic_load(&slow.calls) == 0)
        sleep_ms(5);
    assert_int_equal(kc_client_close(service_client, TIMEOUT_MS), KC_OK);
    await_count(&result, 1);
    assert_int_equal(result.ok_count, 1);

    /* Requests nobody will answer in time: close answers them KC_ERR_CLOSED. */
    kc_client *lonely = open_client("svc-node");
    counter never;
    counter_init(&never, 3 * SLOW_HANDLER_MS);
    kc_service *service = start(lonely, "never", echo_handler, &never, 1);
    async_result_init(&result);
    assert_int_equal(
        kc_client_request_async(client, "never", "0", 1, TIMEOUT_MS, on_reply, &calls[0]), KC_OK);
    int64_t started_ms = harness_now_ms();
    kc_err err = kc_client_close(client, SHORT_TIMEOUT_MS);
    assert_true(err == KC_OK || err == KC_ERR_TIMEOUT);
    assert_true(harness_now_ms() - started_ms < SHORT_TIMEOUT_MS + 3000);
    assert_int_equal(result.count, 1);
    assert_int_equal(result.last_status, KC_ERR_CLOSED);
    kc_service_stop(service);
    close_client(lonely);
}

/* ---- main --------------------------------------------------------------- */

static int group_setup(void **state)
{
    (void)state;
    if (harness_server_init(&server, server_binary) != HARNESS_OK) return -1;
    return harness_server_start(&server, NULL) == HARNESS_OK ? 0 : -1;
}

static int group_teardown(void **state)
{
    (void)state;
    harness_server_cleanup(&server);
    return 0;
}

int main(int argc, char **argv)
{
    server_binary = argc > 1 ? argv[1] : getenv("KC_TEST_SERVER");
    if (server_binary == NULL || server_binary[0] == '\0') {
        fprintf(stderr, "service_test: no server (argv[1] or KC_TEST_SERVER): skipped\n");
        return SKIP_EXIT_CODE;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sync_request_reply),
        cmocka_unit_test(test_bad_arguments),
        cmocka_unit_test(test_async_hundred),
        cmocka_unit_test(test_service_error_reply),
        cmocka_unit_test(test_timeout_and_no_responders),
        cmocka_unit_test(test_sync_late_reply_dropped),
        cmocka_unit_test(test_sync_threads_share_client),
        cmocka_unit_test(test_reply_with_bad_headers),
        cmocka_unit_test(test_idempotent_by_id),
        cmocka_unit_test(test_worker_concurrency),
        cmocka_unit_test(test_free_worker_takes_next),
        cmocka_unit_test(test_reply_sizes),
        cmocka_unit_test(test_stop_is_prompt),
        cmocka_unit_test(test_malformed_expired_and_plain),
        cmocka_unit_test(test_problem_report),
        cmocka_unit_test(test_suggest),
        cmocka_unit_test(test_close_drains),
    };
    int failures = cmocka_run_group_tests(tests, group_setup, group_teardown);
    nats_CloseAndWait(TIMEOUT_MS);
    return failures;
}
