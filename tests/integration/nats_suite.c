/*
 * Differential integration suite: what a user of the official C client
 * (nats.c) sees from a NATS server. The server binary is argv[1]; the same
 * program runs against Debian's nats-server (the reference) and against
 * kcobrad, and both must pass, so every expectation here is nats-server's
 * observed behaviour, not our reading of the protocol documents.
 *
 * Where nats.c would hide what the server did (it filters auto-unsubscribed
 * messages itself, strips -ERR quoting, auto-upgrades to TLS), a raw socket
 * checks the exact wire bytes as well.
 *
 * Each case starts its own server in its own temporary directory, on an
 * ephemeral port; all waits are bounded (see FIXTURE_* in fixture.h).
 */
#include "fixture.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum {
    DEFAULT_MAX_PAYLOAD_BYTES = 1048576,
    SMALL_MAX_PAYLOAD_BYTES = 1024,
    TEXT_SIZE_MAX = 256,
    INFO_SIZE_MAX = 4096,
    QUEUE_MEMBER_COUNT = 3,
    QUEUE_MESSAGE_COUNT = 300,
    QUEUE_POLL_MS = 10,
    QUEUE_DRAIN_TIMEOUT_MS = 10000,
    REQUEST_COUNT = 10,
    REQUEST_TIMEOUT_MS = 2000,
    NO_RESPONDERS_TIMEOUT_MS = 5000,
    NO_RESPONDERS_BOUND_MS = 1000, /* "quickly": far below the request timeout */
    AUTO_UNSUBSCRIBE_MAX = 5,
    AUTO_UNSUBSCRIBE_PUBLISHED = 10,
    FLUSH_MESSAGE_COUNT = 10000,
    FLUSH_DEAD_SERVER_TIMEOUT_MS = 500,
    FLUSH_DEAD_SERVER_BOUND_MS = 2000,
    HTTP_RESPONSE_SIZE_MAX = 65536,
};

/* ==================================================================== helpers */

static void expect_info_field(const char *info, const char *key, const char *expected)
{
    char value[TEXT_SIZE_MAX];
    if (harness_json_field(info, key, value, sizeof(value)) != HARNESS_OK)
        fprintf(stderr, "INFO lacks \"%s\": %s\n", key, info);
    assert_int_equal(harness_json_field(info, key, value, sizeof(value)), HARNESS_OK);
    if (expected != NULL) assert_string_equal(value, expected);
}

static void expect_absent_or_false(const char *info, const char *key)
{
    char value[TEXT_SIZE_MAX];
    if (harness_json_field(info, key, value, sizeof(value)) == HARNESS_OK)
        assert_string_equal(value, "false");
}

static void publish_text(natsConnection *connection, const char *subject, const char *text)
{
    assert_int_equal(natsConnection_PublishString(connection, subject, text), NATS_OK);
}

/* ================================================================ connect/INFO */

static void expect_version_at_least_2_2(const char *info)
{
    char version[TEXT_SIZE_MAX];
    assert_int_equal(harness_json_field(info, "version", version, sizeof(version)), HARNESS_OK);
    int major = 0, minor = 0, patch = 0;
    assert_int_equal(sscanf(version, "%d.%d.%d", &major, &minor, &patch), 3);
    /* Clients compare this with nats-server releases to enable features
     * (nats.c's KV checks 2.7.2, nats.js JetStream features 2.6.2 and up).
     * Headers came with 2.2.0: a server offering them must claim at least it. */
    assert_true(major > 2 || (major == 2 && minor >= 2));
}

static void test_connect_info(void **state)
{
    fixture *f = fixture_of(state);
    fixture_start(f, NULL);
    natsConnection *connection = fixture_connect(f);
    char server_id[TEXT_SIZE_MAX], url[TEXT_SIZE_MAX];
    assert_int_equal(natsConnection_GetConnectedServerId(connection, server_id, sizeof(server_id)),
                     NATS_OK);
    assert_true(strlen(server_id) > 0);
    assert_int_equal(natsConnection_GetConnectedUrl(connection, url, sizeof(url)), NATS_OK);
    assert_string_equal(url, f->server.url);
    assert_int_equal(natsConnection_GetMaxPayload(connection), DEFAULT_MAX_PAYLOAD_BYTES);
    assert_int_equal(natsConnection_HasHeaderSupport(connection), NATS_OK);
    uint64_t client_id = 0;
    assert_int_equal(natsConnection_GetClientID(connection, &client_id), NATS_OK);
    assert_true(client_id > 0);

    char info[INFO_SIZE_MAX], port_text[16], name[TEXT_SIZE_MAX];
    fixture_raw_read_info(f, 0, info, sizeof(info));
    expect_info_field(info, "server_id", server_id);
    assert_int_equal(harness_json_field(info, "server_name", name, sizeof(name)), HARNESS_OK);
    assert_true(strlen(name) > 0);
    expect_version_at_least_2_2(info);
    expect_info_field(info, "proto", "1");
    expect_info_field(info, "headers", "true");
    expect_info_field(info, "max_payload", "1048576");
    expect_info_field(info, "host", "127.0.0.1");
    snprintf(port_text, sizeof(port_text), "%d", f->server.port);
    expect_info_field(info, "port", port_text);
    expect_info_field(info, "client_id", NULL);
    expect_absent_or_false(info, "auth_required");
    expect_absent_or_false(info, "tls_required");
}

/* ==================================================================== pub/sub */

static void test_pub_sub(void **state)
{
    fixture *f = fixture_of(state);
    fixture_start(f, NULL);
    natsConnection *subscriber = fixture_connect(f);
    natsConnection *publisher = fixture_connect(f);
    natsSubscription *alice = fixture_subscribe_sync(f, subscriber, "greet.alice");
    natsSubscription *bob = fixture_subscribe_flushed(
        f, subscriber, "greet.bob"); /* the server has the SUBs before anyone publishes */

    const char *const texts[] = {"hello 0", "hello 1", "hello 2"};
    for (size_t index = 0; index < 3; index++)
        publish_text(publisher, "greet.alice", texts[index]);
    publish_text(publisher, "greet.carol", "nobody listens");
    publish_text(publisher, "greet.bob", "hi bob");
    fixture_flush(publisher);
    for (size_t index = 0; index < 3; index++)
        fixture_expect_message(alice, "greet.alice", texts[index]);
    fixture_expect_message(bob, "greet.bob", "hi bob");
    fixture_expect_no_message(alice);
    fixture_expect_no_message(bob);
}

/* The exact MSG bytes, and that UNSUB stops delivery on the server side. */
static void test_raw_msg_and_unsub(void **state)
{
    fixture *f = fixture_of(state);
    fixture_start(f, NULL);
    harness_raw *raw = fixture_raw_handshake(f, FIXTURE_FAST_CONNECT);
    fixture_raw_send_round_trip(raw, "SUB greet.alice 7\r\n");
    natsConnection *publisher = fixture_connect(f);
    publish_text(publisher, "greet.alice", "hello");
    fixture_flush(publisher);
    fixture_raw_expect_message(raw, "MSG greet.alice 7 5", "hello");

    fixture_raw_send_round_trip(raw, "UNSUB 7\r\n");
    publish_text(publisher, "greet.alice", "gone");
    fixture_flush(publisher);
    fixture_raw_round_trip(raw); /* a MSG here would arrive before the PONG */
}

/* ================================================================== wildcards */

typedef struct wildcard_case {
    const char *pattern;
    const char *expected[6]; /* NULL-terminated, in publish order */
} wildcard_case;

static void test_wildcards(void **state)
{
    fixture *f = fixture_of(state);
    fixture_start(f, NULL);
    const char *const published[] = {"foo.bar", "foo.bar.baz", "foo", "bar.bar", "foo.baz.baz.qux"};
    const wildcard_case cases[] = {
        {"foo.*", {"foo.bar", NULL}},
        {"foo.>", {"foo.bar", "foo.bar.baz", "foo.baz.baz.qux", NULL}},
        {">", {"foo.bar", "foo.bar.baz", "foo", "bar.bar", "foo.baz.baz.qux", NULL}},
        {"foo.*.baz", {"foo.bar.baz", NULL}},
        {"*.bar", {"foo.bar", "bar.bar", NULL}},
        {"*.*.*.*", {"foo.baz.baz.qux", NULL}},
        {"foo", {"foo", NULL}},
    };
    enum { CASE_COUNT = sizeof(cases) / sizeof(cases[0]) };
    natsConnection *connection = fixture_connect(f);
    natsSubscription *subscriptions[CASE_COUNT];
    for (size_t index = 0; index < CASE_COUNT; index++)
        subscriptions[index] = fixture_subscribe_flushed(f, connection, cases[index].pattern);
    for (size_t index = 0; index < sizeof(published) / sizeof(published[0]); index++)
        publish_text(connection, published[index], published[index]);
    fixture_flush(connection);
    for (size_t index = 0; index < CASE_COUNT; index++) {
        for (size_t hit = 0; cases[index].expected[hit] != NULL; hit++)
            fixture_expect_message(subscriptions[index], cases[index].expected[hit],
                                   cases[index].expected[hit]);
        fixture_expect_no_message(subscriptions[index]);
    }
}

/* =============================================================== queue groups */

/* Pulls one message off a queue member if one arrives within the poll. */
static bool queue_member_take(natsSubscription *subscription, int *delivered, int *taken)
{
    natsMsg *message = NULL;
    if (natsSubscription_NextMsg(&message, subscription, QUEUE_POLL_MS) != NATS_OK) return false;
    int sequence = atoi(natsMsg_GetData(message));
    natsMsg_Destroy(message);
    assert_in_range(sequence, 0, QUEUE_MESSAGE_COUNT - 1);
    delivered[sequence]++;
    (*taken)++;
    return true;
}

static void queue_drain(natsSubscription **members, int *delivered, int *taken)
{
    int total = 0;
    int64_t deadline_ms = harness_now_ms() + QUEUE_DRAIN_TIMEOUT_MS;
    while (total < QUEUE_MESSAGE_COUNT && harness_now_ms() < deadline_ms) {
        for (int member = 0; member < QUEUE_MEMBER_COUNT; member++)
            total += queue_member_take(members[member], delivered, &taken[member]);
    }
    assert_int_equal(total, QUEUE_MESSAGE_COUNT);
    for (int member = 0; member < QUEUE_MEMBER_COUNT; member++)
        fixture_expect_no_message(members[member]);
}

static void test_queue_groups(void **state)
{
    fixture *f = fixture_of(state);
    fixture_start(f, NULL);
    natsSubscription *members[QUEUE_MEMBER_COUNT];
    for (int member = 0; member < QUEUE_MEMBER_COUNT; member++) {
        natsConnection *connection = fixture_connect(f);
        members[member] = fixture_queue_subscribe_sync(f, connection, "work.items", "workers");
        fixture_flush(connection);
    }
    natsConnection *watcher = fixture_connect(f);
    natsSubscription *plain = fixture_subscribe_flushed(f, watcher, "work.items");

    natsConnection *publisher = fixture_connect(f);
    char text[32];
    for (int sequence = 0; sequence < QUEUE_MESSAGE_COUNT; sequence++) {
        snprintf(text, sizeof(text), "%d", sequence);
        publish_text(publisher, "work.items", text);
    }
    fixture_flush(publisher);

    int delivered[QUEUE_MESSAGE_COUNT] = {0}, taken[QUEUE_MEMBER_COUNT] = {0};
    queue_drain(members, delivered, taken);
    for (int sequence = 0; sequence < QUEUE_MESSAGE_COUNT; sequence++)
        assert_int_equal(delivered[sequence], 1); /* exactly one member each */
    for (int member = 0; member < QUEUE_MEMBER_COUNT; member++)
        assert_true(taken[member] > 0);
    for (int sequence = 0; sequence < QUEUE_MESSAGE_COUNT; sequence++) {
        snprintf(text, sizeof(text), "%d", sequence);
        fixture_expect_message(plain, "work.items", text);
    }
    fixture_expect_no_message(plain);
}

/* ============================================================== request/reply */

static void on_echo_request(natsConnection *connection, natsSubscription *subscription,
                            natsMsg *message, void *closure)
{
    (void)subscription;
    (void)closure;
    char reply[TEXT_SIZE_MAX];
    snprintf(reply, sizeof(reply), "echo:%.*s", natsMsg_GetDataLength(message),
             natsMsg_GetData(message));
    if (natsMsg_GetReply(message) != NULL)
        natsConnection_PublishString(connection, natsMsg_GetReply(message), reply);
    natsMsg_Destroy(message);
}

static void start_echo_service(fixture *f)
{
    natsConnection *responder = fixture_connect(f);
    natsSubscription *service = NULL;
    assert_int_equal(
        natsConnection_Subscribe(&service, responder, "service.echo", on_echo_request, NULL),
        NATS_OK);
    fixture_track_subscription(f, service);
    fixture_flush(responder);
}

static void test_request_reply(void **state)
{
    fixture *f = fixture_of(state);
    fixture_start(f, NULL);
    start_echo_service(f);
    natsConnection *requester = fixture_connect(f);
    for (int index = 0; index < REQUEST_COUNT; index++) {
        char request[32], expected[64];
        snprintf(request, sizeof(request), "ping-%d", index);
        snprintf(expected, sizeof(expected), "echo:%s", request);
        natsMsg *reply = NULL;
        assert_int_equal(natsConnection_RequestString(&reply, requester, "service.echo", request,
                                                      REQUEST_TIMEOUT_MS),
                         NATS_OK);
        bool same = (size_t)natsMsg_GetDataLength(reply) == strlen(expected) &&
                    memcmp(natsMsg_GetData(reply), expected, strlen(expected)) == 0;
        natsMsg_Destroy(reply);
        assert_true(same);
    }

    /* The reply subject on the wire: MSG <subject> <sid> <reply-to> <size>. */
    harness_raw *raw = fixture_raw_handshake(f, FIXTURE_FAST_CONNECT);
    fixture_raw_send_round_trip(raw, "SUB service.echo 5\r\nSUB raw.inbox.1 9\r\n");
    fixture_raw_send(raw, "PUB service.echo raw.inbox.1 3\r\nabc\r\n");
    fixture_raw_expect_message(raw, "MSG service.echo 5 raw.inbox.1 3", "abc");
    fixture_raw_expect_message(raw, "MSG raw.inbox.1 9 8", "echo:abc");
}

/* ==================================================================== headers */

static void expect_header_values(natsMsg *message)
{
    const char *value = NULL;
    assert_int_equal(natsMsgHeader_Get(message, "Kc-Id", &value), NATS_OK);
    assert_string_equal(value, "0190a7e2-7c1f-7000-8000-000000000042");
    const char **values = NULL;
    int count = 0;
    assert_int_equal(natsMsgHeader_Values(message, "Multi", &values, &count), NATS_OK);
    bool same = count == 2 && strcmp(values[0], "one") == 0 && strcmp(values[1], "two") == 0;
    free((void *)values);
    assert_true(same);
}

static void test_headers(void **state)
{
    fixture *f = fixture_of(state);
    fixture_start(f, NULL);
    natsConnection *connection = fixture_connect(f);
    natsSubscription *subscription = fixture_subscribe_flushed(f, connection, "hdr.test");
    natsMsg *message = NULL;
    assert_int_equal(natsMsg_Create(&message, "hdr.test", NULL, "body", 4), NATS_OK);
    natsStatus status = natsMsgHeader_Set(message, "Kc-Id", "0190a7e2-7c1f-7000-8000-000000000042");
    if (status == NATS_OK) status = natsMsgHeader_Add(message, "Multi", "one");
    if (status == NATS_OK) status = natsMsgHeader_Add(message, "Multi", "two");
    if (status == NATS_OK) status = natsConnection_PublishMsg(connection, message);
    natsMsg_Destroy(message);
    assert_int_equal(status, NATS_OK);
    fixture_flush(connection);

    natsMsg *received = NULL;
    assert_int_equal(natsSubscription_NextMsg(&received, subscription, FIXTURE_MESSAGE_TIMEOUT_MS),
                     NATS_OK);
    bool body_same =
        natsMsg_GetDataLength(received) == 4 && memcmp(natsMsg_GetData(received), "body", 4) == 0;
    /* Headers are checked before destroying; a failed check leaks one message. */
    expect_header_values(received);
    natsMsg_Destroy(received);
    assert_true(body_same);
}

/* HPUB in, HMSG out byte for byte; a client that did not ask for headers gets
 * a MSG with the headers stripped (nats-server's behaviour). */
static void test_raw_headers(void **state)
{
    fixture *f = fixture_of(state);
    fixture_start(f, NULL);
    harness_raw *with_headers = fixture_raw_handshake(f, FIXTURE_HEADERS_CONNECT);
    harness_raw *without = fixture_raw_handshake(f, FIXTURE_FAST_CONNECT);
    fixture_raw_send(with_headers, "SUB hdr.raw 1\r\n");
    fixture_raw_send(without, "SUB hdr.raw 2\r\n");
    fixture_raw_round_trip(with_headers);
    fixture_raw_round_trip(without);

    const char header[] = "NATS/1.0\r\nKc-Id: 42\r\nMulti: a\r\nMulti: b\r\n\r\n";
    const size_t header_length = sizeof(header) - 1, total_length = header_length + 4;
    char command[TEXT_SIZE_MAX], expected[TEXT_SIZE_MAX], payload[TEXT_SIZE_MAX];
    snprintf(command, sizeof(command), "HPUB hdr.raw %zu %zu\r\n%sbody\r\n", header_length,
             total_length, header);
    fixture_raw_send(with_headers, command);
    snprintf(expected, sizeof(expected), "HMSG hdr.raw 1 %zu %zu", header_length, total_length);
    fixture_raw_expect_line(with_headers, expected);
    snprintf(payload, sizeof(payload), "%sbody", header);
    fixture_raw_expect_payload(with_headers, payload);
    fixture_raw_expect_message(without, "MSG hdr.raw 2 4", "body");
}

/* ============================================================== no responders */

static void test_no_responders(void **state)
{
    fixture *f = fixture_of(state);
    fixture_start(f, NULL);
    natsConnection *requester = fixture_connect(f);
    natsMsg *reply = NULL;
    int64_t started_ms = harness_now_ms();
    natsStatus status = natsConnection_RequestString(&reply, requester, "nobody.home", "anyone?",
                                                     NO_RESPONDERS_TIMEOUT_MS);
    int64_t elapsed_ms = harness_now_ms() - started_ms;
    natsMsg_Destroy(reply);
    assert_int_equal(status, NATS_NO_RESPONDERS);
    assert_true(elapsed_ms < NO_RESPONDERS_BOUND_MS);

    /* On the wire: an HMSG with status 503 and no body, to the reply subject. */
    harness_raw *raw = fixture_raw_handshake(
        f, "{\"verbose\":false,\"pedantic\":false,\"headers\":true,\"no_responders\":true}");
    fixture_raw_send(raw, "SUB raw.reply 1\r\nPUB nobody.home raw.reply 2\r\nhi\r\n");
    fixture_raw_expect_message(raw, "HMSG raw.reply 1 16 16", "NATS/1.0 503\r\n\r\n");

    /* Without no_responders in CONNECT the request just goes unanswered. */
    harness_raw *plain = fixture_raw_handshake(f, FIXTURE_HEADERS_CONNECT);
    fixture_raw_send_round_trip(plain, "SUB raw.reply 1\r\nPUB nobody.home raw.reply 2\r\nhi\r\n");
    fixture_raw_expect_silence(plain);
}

/* ============================================================ auto-unsubscribe */

static void test_auto_unsubscribe(void **state)
{
    fixture *f = fixture_of(state);
    fixture_start(f, NULL);
    natsConnection *connection = fixture_connect(f);
    natsSubscription *subscription = fixture_subscribe_sync(f, connection, "auto.unsub");
    assert_int_equal(natsSubscription_AutoUnsubscribe(subscription, AUTO_UNSUBSCRIBE_MAX), NATS_OK);
    fixture_flush(connection);
    char text[32];
    for (int index = 0; index < AUTO_UNSUBSCRIBE_PUBLISHED; index++) {
        snprintf(text, sizeof(text), "n-%d", index);
        publish_text(connection, "auto.unsub", text);
    }
    fixture_flush(connection);
    for (int index = 0; index < AUTO_UNSUBSCRIBE_MAX; index++) {
        snprintf(text, sizeof(text), "n-%d", index);
        fixture_expect_message(subscription, "auto.unsub", text);
    }
    natsMsg *extra = NULL;
    natsStatus status = natsSubscription_NextMsg(&extra, subscription, FIXTURE_QUIET_MS);
    natsMsg_Destroy(extra);
    assert_int_not_equal(status, NATS_OK);

    /* nats.c also filters locally; the server itself must stop after max. */
    harness_raw *raw = fixture_raw_handshake(f, FIXTURE_FAST_CONNECT);
    fixture_raw_send_round_trip(raw, "SUB auto.raw 1\r\nUNSUB 1 2\r\n");
    for (int index = 0; index < 3; index++)
        publish_text(connection, "auto.raw", "x");
    fixture_flush(connection);
    for (int index = 0; index < 2; index++)
        fixture_raw_expect_message(raw, "MSG auto.raw 1 1", "x");
    fixture_raw_round_trip(raw);
}

/* ====================================================================== flush */

static void test_flush(void **state)
{
    fixture *f = fixture_of(state);
    fixture_start(f, NULL);
    natsConnection *connection = fixture_connect(f);
    natsSubscription *subscription = fixture_subscribe_flushed(f, connection, "flush.test");
    for (int index = 0; index < FLUSH_MESSAGE_COUNT; index++)
        publish_text(connection, "flush.test", "x");
    assert_int_equal(natsConnection_FlushTimeout(connection, FIXTURE_FLUSH_TIMEOUT_MS), NATS_OK);
    assert_int_equal(natsConnection_Buffered(connection), 0);
    fixture_expect_messages(subscription, FLUSH_MESSAGE_COUNT);
    fixture_expect_no_message(subscription);

    /* With the server gone a flush fails within its timeout instead of hanging. */
    assert_int_equal(harness_server_stop(&f->server), HARNESS_OK);
    int64_t started_ms = harness_now_ms();
    assert_int_not_equal(natsConnection_FlushTimeout(connection, FLUSH_DEAD_SERVER_TIMEOUT_MS),
                         NATS_OK);
    assert_true(harness_now_ms() - started_ms < FLUSH_DEAD_SERVER_BOUND_MS);
}

/* ================================================================== reconnect */

static void test_reconnect_after_restart(void **state)
{
    fixture *f = fixture_of(state);
    fixture_start(f, NULL);
    natsConnection *connection = fixture_connect(f);
    natsSubscription *subscription = fixture_subscribe_flushed(f, connection, "survive.restart");
    publish_text(connection, "survive.restart", "before");
    fixture_flush(connection);
    fixture_expect_message(subscription, "survive.restart", "before");

    int port = f->server.port;
    assert_int_equal(harness_server_stop(&f->server), HARNESS_OK);
    fixture_start(f, NULL);
    assert_int_equal(f->server.port, port);
    assert_true(fixture_wait_reconnects(f, 1, FIXTURE_EVENT_TIMEOUT_MS));
    fixture_flush(connection);

    /* A different connection publishes, so only the server can have routed
     * it: the subscription was restored there. */
    natsConnection *publisher = fixture_connect(f);
    publish_text(publisher, "survive.restart", "after");
    fixture_flush(publisher);
    fixture_expect_message(subscription, "survive.restart", "after");
}

/* ======================================================================== TLS */

/* extra_config: more of the config file (an authorization block), or "". */
static void start_tls_server_with(fixture *f, bool verify, const char *extra_config)
{
    assert_int_equal(harness_tls_generate(&f->server), HARNESS_OK);
    char config[4 * HARNESS_PATH_SIZE_MAX + 1024];
    const char *directory = f->server.directory_path;
    int written =
        snprintf(config, sizeof(config),
                 "tls {\n  cert_file: \"%s/server-cert.pem\"\n  key_file: \"%s/server-key.pem\"\n"
                 "  ca_file: \"%s/ca.pem\"\n  verify: %s\n  timeout: 2\n}\n%s",
                 directory, directory, directory, verify ? "true" : "false", extra_config);
    assert_true(written > 0 && (size_t)written < sizeof(config));
    fixture_start(f, config);
}

static void start_tls_server(fixture *f, bool verify)
{
    start_tls_server_with(f, verify, "");
}

static natsOptions *tls_options(fixture *f, bool with_client_certificate)
{
    natsOptions *options = fixture_options(f);
    char ca[HARNESS_PATH_SIZE_MAX], certificate[HARNESS_PATH_SIZE_MAX], key[HARNESS_PATH_SIZE_MAX];
    harness_server_path(&f->server, "ca.pem", ca, sizeof(ca));
    harness_server_path(&f->server, "client-cert.pem", certificate, sizeof(certificate));
    harness_server_path(&f->server, "client-key.pem", key, sizeof(key));
    natsStatus status = natsOptions_SetSecure(options, true);
    if (status == NATS_OK) status = natsOptions_LoadCATrustedCertificates(options, ca);
    if (status == NATS_OK && with_client_certificate)
        status = natsOptions_LoadCertificatesChain(options, certificate, key);
    if (status != NATS_OK) fprintf(stderr, "TLS options: %s\n", nats_GetLastError(NULL));
    assert_int_equal(status, NATS_OK);
    return options;
}

static void expect_pub_sub_works(fixture *f, natsConnection *connection, const char *subject)
{
    natsSubscription *subscription = fixture_subscribe_flushed(f, connection, subject);
    publish_text(connection, subject, "over tls");
    fixture_flush(connection);
    fixture_expect_message(subscription, subject, "over tls");
}

static void test_tls_pub_sub(void **state)
{
    fixture *f = fixture_of(state);
    start_tls_server(f, false);
    natsConnection *connection = fixture_connect_with(f, tls_options(f, false));
    expect_pub_sub_works(f, connection, "tls.test");
    char info[INFO_SIZE_MAX];
    fixture_raw_read_info(f, 0, info, sizeof(info));
    expect_info_field(info, "tls_required", "true");
}

static void test_tls_client_certificate(void **state)
{
    fixture *f = fixture_of(state);
    start_tls_server(f, true);
    /* All options first: a failed handshake may leave OpenSSL's per-thread
     * error queue dirty, and loading certificates after it is then fragile. */
    natsOptions *with_certificate = tls_options(f, true);
    natsOptions *without_certificate = tls_options(f, false);
    natsConnection *connection = fixture_connect_with(f, with_certificate);
    expect_pub_sub_works(f, connection, "tls.verified");
    fixture_connect_fails(f, without_certificate);
    natsConnection *again = fixture_connect_with(f, with_certificate);
    expect_pub_sub_works(f, again, "tls.still");
    /* kcobrad's own components connect over its internal (loopback, plain)
     * listener even when clients must use TLS: its keeper answers. */
    if (strstr(fixture_server_binary, "kcobrad") != NULL) {
        natsMsg *reply = NULL;
        assert_int_equal(natsConnection_RequestString(&reply, again, "kc.suggest.list", "", 5000),
                         NATS_OK);
        assert_false(natsMsg_IsNoResponders(reply));
        natsMsg_Destroy(reply);
    }
}

static void test_tls_plaintext_rejected(void **state)
{
    fixture *f = fixture_of(state);
    start_tls_server(f, false);
    char info[INFO_SIZE_MAX], received[INFO_SIZE_MAX];
    harness_raw *raw = fixture_raw_read_info(f, 0, info, sizeof(info));
    expect_info_field(info, "tls_required", "true");
    fixture_raw_send(raw, "CONNECT {\"verbose\":false}\r\nPING\r\n");
    assert_int_equal(
        harness_raw_read_until_closed(raw, received, sizeof(received), NULL, HARNESS_IO_TIMEOUT_MS),
        HARNESS_OK);
    assert_null(strstr(received, "PONG"));

    /* nats.c upgrades to TLS by itself, but cannot trust an unknown CA. */
    natsOptions *trusting = tls_options(f, false);
    fixture_connect_fails(f, fixture_options(f));
    natsConnection *connection = fixture_connect_with(f, trusting);
    expect_pub_sub_works(f, connection, "tls.after");
}

/* =============================================================== authentication */

static void expect_authorization_violation(fixture *f, natsOptions *options)
{
    natsStatus status = fixture_connect_fails(f, options);
    const char *text = nats_GetLastError(NULL);
    if (text == NULL || strstr(text, "Authorization Violation") == NULL)
        fprintf(stderr, "connect failed with %s: '%s'\n", natsStatus_GetText(status),
                text != NULL ? text : "");
    assert_int_equal(status, NATS_CONNECTION_AUTH_FAILED);
    assert_non_null(text);
    assert_non_null(strstr(text, "Authorization Violation"));
}

static void test_token_auth(void **state)
{
    fixture *f = fixture_of(state);
    fixture_start(f, "authorization { token: \"s3cr3t\" }\n");
    char info[INFO_SIZE_MAX];
    fixture_raw_read_info(f, 0, info, sizeof(info));
    expect_info_field(info, "auth_required", "true");

    natsOptions *right = fixture_options(f);
    assert_int_equal(natsOptions_SetToken(right, "s3cr3t"), NATS_OK);
    expect_pub_sub_works(f, fixture_connect_with(f, right), "token.ok");

    natsOptions *wrong = fixture_options(f);
    assert_int_equal(natsOptions_SetToken(wrong, "guess"), NATS_OK);
    expect_authorization_violation(f, wrong);
    expect_authorization_violation(f, fixture_options(f));
}

static const char USERS_CONFIG[] =
    "authorization {\n"
    "  users: [\n"
    "    {user: alice, password: wonder, permissions: {publish: {allow: [\"foo.>\", "
    "\"_INBOX.>\"]}, subscribe: {deny: [\"secret.>\"]}}}\n"
    "    {user: bob, password: builder}\n"
    "  ]\n"
    "}\n";

static natsOptions *user_options(fixture *f, const char *user, const char *password)
{
    natsOptions *options = fixture_options(f);
    assert_int_equal(natsOptions_SetUserInfo(options, user, password), NATS_OK);
    return options;
}

static void test_user_password(void **state)
{
    fixture *f = fixture_of(state);
    fixture_start(f, USERS_CONFIG);
    expect_pub_sub_works(f, fixture_connect_with(f, user_options(f, "bob", "builder")), "user.ok");
    expect_authorization_violation(f, user_options(f, "bob", "wrong"));
    expect_authorization_violation(f, user_options(f, "mallory", "builder"));
    expect_authorization_violation(f, fixture_options(f));

    char url[HARNESS_URL_SIZE_MAX + 32];
    snprintf(url, sizeof(url), "nats://bob:builder@127.0.0.1:%d", f->server.port);
    natsOptions *in_url = fixture_options(f);
    assert_int_equal(natsOptions_SetURL(in_url, url), NATS_OK);
    expect_pub_sub_works(f, fixture_connect_with(f, in_url), "user.url");
}

/* ===================================================== bcrypt password hashes */

/* Hashes made once with libxcrypt (crypt_gensalt_rn + crypt_rn) at cost 4,
 * so each check takes about a millisecond. nats-server 2.9 reads only
 * "$2a$" unquoted (other prefixes would be variables): the rest are quoted. */
static const char BCRYPT_USERS_CONFIG[] =
    "authorization {\n"
    "  users: [\n"
    "    {user: alice, password: $2a$04$tsx.7UzPdwdy1PFxn/4SV.nu2CBxIV/Cyo5gAocz.UxR//GeKSVpW}\n"
    "    {user: bob, password: \"$2b$04$0o8LuShNZoBDKNMfEv/oWO6rBkvCuWaOTtKmRF5z75aJkNMIqJzTW\"}\n"
    "    {user: carol, password: "
    "\"$2y$04$JcHRQIt7Mh2JO6l5nLdNlelc6922ruw9pS.X/kcstpxygveJR1ism\"}\n"
    "    {user: dave, password: plain}\n"
    "  ]\n"
    "}\n";

/* The right password connects; a wrong one, none, and the hash itself are
 * refused with nats-server's error. Reconnecting with the same credentials
 * works again (kcobrad answers that one from its cache of verifications). */
static void test_bcrypt_users(void **state)
{
    fixture *f = fixture_of(state);
    fixture_start(f, BCRYPT_USERS_CONFIG);
    expect_pub_sub_works(f, fixture_connect_with(f, user_options(f, "alice", "wonder")), "a.ok");
    expect_pub_sub_works(f, fixture_connect_with(f, user_options(f, "alice", "wonder")), "a.again");
    expect_pub_sub_works(f, fixture_connect_with(f, user_options(f, "bob", "builder")), "b.ok");
    expect_pub_sub_works(f, fixture_connect_with(f, user_options(f, "carol", "sesame")), "c.ok");
    expect_pub_sub_works(f, fixture_connect_with(f, user_options(f, "dave", "plain")), "d.ok");
    expect_authorization_violation(f, user_options(f, "alice", "Wonder"));
    expect_authorization_violation(f, user_options(f, "alice", ""));
    expect_authorization_violation(
        f,
        user_options(f, "alice", "$2a$04$tsx.7UzPdwdy1PFxn/4SV.nu2CBxIV/Cyo5gAocz.UxR//GeKSVpW"));
    expect_authorization_violation(
        f, user_options(f, "bob", "$2b$04$0o8LuShNZoBDKNMfEv/oWO6rBkvCuWaOTtKmRF5z75aJkNMIqJzTW"));
    expect_authorization_violation(f, user_options(f, "carol", "wonder"));
    expect_authorization_violation(f, user_options(f, "mallory", "wonder"));
    expect_authorization_violation(f, fixture_options(f));
}

/* nats-server also takes a bcrypt'd token. */
static void test_bcrypt_token(void **state)
{
    fixture *f = fixture_of(state);
    fixture_start(f, "authorization {\n"
                     "  token: $2a$04$MvAS6BaPYZCquTqa.65VoeQ4Rmo7R/RlMpHJ7e8OGKxRrxSKqd84u\n"
                     "}\n");
    char info[INFO_SIZE_MAX];
    fixture_raw_read_info(f, 0, info, sizeof(info));
    expect_info_field(info, "auth_required", "true");
    natsOptions *right = fixture_options(f);
    assert_int_equal(natsOptions_SetToken(right, "s3cr3t"), NATS_OK);
    expect_pub_sub_works(f, fixture_connect_with(f, right), "token.bcrypt");
    natsOptions *wrong = fixture_options(f);
    assert_int_equal(natsOptions_SetToken(wrong, "s3cr3T"), NATS_OK);
    expect_authorization_violation(f, wrong);
    natsOptions *hash = fixture_options(f);
    assert_int_equal(
        natsOptions_SetToken(hash, "$2a$04$MvAS6BaPYZCquTqa.65VoeQ4Rmo7R/RlMpHJ7e8OGKxRrxSKqd84u"),
        NATS_OK);
    expect_authorization_violation(f, hash);
    expect_authorization_violation(f, fixture_options(f));
}

/* A bcrypt'd password over TLS: nats.c sends CONNECT and PING in one TLS
 * write, so kcobrad holds the PING (decrypted, maybe still inside OpenSSL)
 * while the password is verified, and must answer it after. */
static void test_tls_bcrypt(void **state)
{
    fixture *f = fixture_of(state);
    start_tls_server_with(f, false,
                          "authorization {\n  users: [\n"
                          "    {user: alice, password: "
                          "$2a$04$tsx.7UzPdwdy1PFxn/4SV.nu2CBxIV/Cyo5gAocz.UxR//GeKSVpW}\n"
                          "  ]\n}\n");
    natsOptions *right = tls_options(f, false);
    assert_int_equal(natsOptions_SetUserInfo(right, "alice", "wonder"), NATS_OK);
    expect_pub_sub_works(f, fixture_connect_with(f, right), "tls.bcrypt");
    natsOptions *wrong = tls_options(f, false);
    assert_int_equal(natsOptions_SetUserInfo(wrong, "alice", "wander"), NATS_OK);
    expect_authorization_violation(f, wrong);
}

/* ================================================================ permissions */

static void expect_async_error(fixture *f, int error_index, const char *text)
{
    assert_true(fixture_wait_errors(f, error_index + 1, FIXTURE_EVENT_TIMEOUT_MS));
    natsStatus status = NATS_OK;
    char got[FIXTURE_ERROR_TEXT_SIZE_MAX];
    fixture_error_at(f, error_index, &status, got, sizeof(got));
    assert_int_equal(status, NATS_NOT_PERMITTED);
    assert_string_equal(got, text);
}

static void test_permissions(void **state)
{
    fixture *f = fixture_of(state);
    fixture_start(f, USERS_CONFIG);
    natsConnection *alice = fixture_connect_with(f, user_options(f, "alice", "wonder"));
    publish_text(alice, "bar", "not allowed");
    fixture_flush(alice);
    expect_async_error(f, 0, "Permissions Violation for Publish to \"bar\"");
    assert_int_equal(natsConnection_Status(alice), NATS_CONN_STATUS_CONNECTED);
    expect_pub_sub_works(f, alice, "foo.allowed");

    fixture_subscribe_flushed(f, alice, "secret.plans");
    expect_async_error(f, 1, "Permissions Violation for Subscription to \"secret.plans\"");
    assert_int_equal(natsConnection_Status(alice), NATS_CONN_STATUS_CONNECTED);

    /* A wildcard that covers a denied subject is accepted, but the denied
     * messages are filtered out on delivery. */
    natsSubscription *everything = fixture_subscribe_flushed(f, alice, ">");
    natsConnection *bob = fixture_connect_with(f, user_options(f, "bob", "builder"));
    publish_text(bob, "secret.plans", "hidden");
    publish_text(bob, "foo.news", "visible");
    fixture_flush(bob);
    fixture_expect_message(everything, "foo.news", "visible");
    fixture_expect_no_message(everything);
}

/* ================================================================ max payload */

static void test_max_payload(void **state)
{
    fixture *f = fixture_of(state);
    fixture_start(f, "max_payload: 1024\n");
    natsConnection *connection = fixture_connect(f);
    assert_int_equal(natsConnection_GetMaxPayload(connection), SMALL_MAX_PAYLOAD_BYTES);
    natsSubscription *subscription = fixture_subscribe_flushed(f, connection, "big");
    static char payload[SMALL_MAX_PAYLOAD_BYTES + 1];
    memset(payload, 'p', sizeof(payload));
    assert_int_equal(natsConnection_Publish(connection, "big", payload, sizeof(payload)),
                     NATS_MAX_PAYLOAD);
    assert_int_equal(natsConnection_Publish(connection, "big", payload, SMALL_MAX_PAYLOAD_BYTES),
                     NATS_OK);
    fixture_flush(connection);
    natsMsg *message = NULL;
    assert_int_equal(natsSubscription_NextMsg(&message, subscription, FIXTURE_MESSAGE_TIMEOUT_MS),
                     NATS_OK);
    int length = natsMsg_GetDataLength(message);
    natsMsg_Destroy(message);
    assert_int_equal(length, SMALL_MAX_PAYLOAD_BYTES);

    char info[INFO_SIZE_MAX];
    fixture_raw_read_info(f, 0, info, sizeof(info));
    expect_info_field(info, "max_payload", "1024");
    harness_raw *raw = fixture_raw_handshake(f, FIXTURE_FAST_CONNECT);
    fixture_raw_send(raw, "PUB big 1025\r\n");
    fixture_raw_expect_line(raw, "-ERR 'Maximum Payload Violation'");
    fixture_raw_expect_closed(raw);
    fixture_expect_server_serves(f);
}

/* ================================================================= monitoring */

static void http_get(fixture *f, const char *path, char *response, size_t response_size)
{
    assert_int_equal(harness_http_get(f->server.monitor_port, path, response, response_size,
                                      HARNESS_IO_TIMEOUT_MS),
                     HARNESS_OK);
    assert_memory_equal(response, "HTTP/1.", 7);
}

static void test_monitoring(void **state)
{
    fixture *f = fixture_of(state);
    f->server.monitor_enabled = true;
    fixture_start(f, NULL);
    natsConnection *connection = fixture_connect(f);
    char server_id[TEXT_SIZE_MAX], value[TEXT_SIZE_MAX];
    assert_int_equal(natsConnection_GetConnectedServerId(connection, server_id, sizeof(server_id)),
                     NATS_OK);

    static char response[HTTP_RESPONSE_SIZE_MAX];
    http_get(f, "/varz", response, sizeof(response));
    assert_non_null(strstr(response, " 200 OK\r\n"));
    assert_non_null(strstr(response, "application/json"));
    assert_int_equal(harness_json_field(response, "server_id", value, sizeof(value)), HARNESS_OK);
    assert_string_equal(value, server_id);
    assert_int_equal(harness_json_field(response, "max_payload", value, sizeof(value)), HARNESS_OK);
    assert_string_equal(value, "1048576");

    http_get(f, "/healthz", response, sizeof(response));
    assert_non_null(strstr(response, " 200 OK\r\n"));
    assert_int_equal(harness_json_field(response, "status", value, sizeof(value)), HARNESS_OK);
    assert_string_equal(value, "ok");
}

/* ======================================================================= main */

int main(int argc, char **argv)
{
    if (!fixture_parse_arguments(argc, argv)) return 2;
    const struct CMUnitTest tests[] = {
        FIXTURE_CASE(test_connect_info),
        FIXTURE_CASE(test_pub_sub),
        FIXTURE_CASE(test_raw_msg_and_unsub),
        FIXTURE_CASE(test_wildcards),
        FIXTURE_CASE(test_queue_groups),
        FIXTURE_CASE(test_request_reply),
        FIXTURE_CASE(test_headers),
        FIXTURE_CASE(test_raw_headers),
        FIXTURE_CASE(test_no_responders),
        FIXTURE_CASE(test_auto_unsubscribe),
        FIXTURE_CASE(test_flush),
        FIXTURE_CASE(test_reconnect_after_restart),
        FIXTURE_CASE(test_tls_pub_sub),
        FIXTURE_CASE(test_tls_client_certificate),
        FIXTURE_CASE(test_tls_plaintext_rejected),
        FIXTURE_CASE(test_token_auth),
        FIXTURE_CASE(test_user_password),
        FIXTURE_CASE(test_bcrypt_users),
        FIXTURE_CASE(test_bcrypt_token),
        FIXTURE_CASE(test_tls_bcrypt),
        FIXTURE_CASE(test_permissions),
        FIXTURE_CASE(test_max_payload),
        FIXTURE_CASE(test_monitoring),
    };
    return cmocka_run_group_tests_name("nats_suite", tests, fixture_group_setup,
                                       fixture_group_teardown);
}
