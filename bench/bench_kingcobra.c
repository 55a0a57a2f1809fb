/* bench_kingcobra.c - what libkingcobra costs on top of nats.c: request/reply
 * round trips through the library against the same round trips through
 * nats.c alone, on the same server, with the same payload and requesters.
 *
 *   bench_kingcobra [-l LABEL] [-d DURATION_MS] [-r REQUESTERS] [-w WORKERS]
 *                   kingcobra|raw|raw-headers|raw-inbox URL
 *
 * kingcobra: each requester is a kc_client calling kc_client_request (type
 *   "bench") against one kc_service echo with WORKERS workers (default 1)
 *   on its own kc_client. Every request and reply carries the KingCobra
 *   headers (Kc-Id, Kc-Ts, Kc-Node, Kc-Type, Kc-Deadline, Kc-Reply-To), the
 *   service runs its idempotence cache, and a worker thread runs the handler.
 * raw: each requester is a nats.c connection calling natsConnection_Request
 *   on the same subject (kc.req.bench) against a nats.c echo responder in
 *   queue group "bench" that answers from its subscription callback. All raw
 *   connections use send-asap, as bench_nats.c does.
 * raw-headers: raw, but each request and reply is a natsMsg carrying five
 *   headers of the sizes libkingcobra sends (fixed values: no clock, no id
 *   generator, no validation beyond "present once"), set with
 *   natsMsgHeader_Set and read with natsMsgHeader_Values: what nats.c's own
 *   header handling costs (a hash table and a few allocations per header,
 *   freed by nats.c's garbage-collector thread). By hand only.
 * raw-inbox: raw, but each requester waits on a sync subscription of its own
 *   ("<inbox>.*", reply "<inbox>.<n>"), as kc_client_request does
 *   (src/service/channel.c): one thread wake-up per reply fewer than
 *   natsConnection_Request. run.sh runs it as a reference, so that
 *   libkingcobra/raw-inbox shows the library's cost alone.
 * All: 128-byte payloads, REQUESTERS threads (default 1, at most 8) with one
 * connection each; 1,000 unmeasured requests per requester, then all start
 * together and run for DURATION_MS (default 3,000). The responder lives in
 * this process on its own connection (see bench/README.md for why). Prints
 * one JSON object: requests/s over the window, p50 and p99 of every round
 * trip in µs, and lost replies (errors: timeouts or replies of the wrong
 * size). A failure prints {"error": ...} and exits 1.
 *
 * Service side, every mode: one wake-up of the answering thread (nats.c's
 * delivery thread for raw, libkingcobra's leader/followers workers,
 * docs/service.md). bench/run.sh runs kingcobra, raw and raw-inbox and
 * prints the ratios.
 *
 * Limits: every loop, buffer and wait has a named bound below; latency
 * samples are allocated before the measurement starts. */
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <nats/nats.h>

#include "bench_common.h"
#include "kingcobra/kingcobra.h"

enum {
    PAYLOAD_BYTES = 128,
    SERVICE_WORKERS_MAX = 64,
    DURATION_MS_DEFAULT = 3000,
    DURATION_MS_MAX = 60 * 1000,
    REQUEST_TIMEOUT_MS = 2000,
    REQUEST_WARMUP_COUNT = 1000,
    FLUSH_TIMEOUT_MS = 5000,
    CLOSE_TIMEOUT_MS = 5000,
    NODE_BYTES_MAX = 32,
    FAILURE_BYTES_MAX = 256,
    INBOX_BYTES_MAX = 96, /* "_INBOX.<nuid>", and ".<sequence>" */
};

static const char REQUEST_TYPE[] = "bench";
static const char REQUEST_SUBJECT[] = "kc.req.bench"; /* what kc_client_request sends to */
static const char RESPONDER_QUEUE[] = "bench";        /* and the queue group a kc_service uses */

typedef enum client_kind {
    CLIENT_KINGCOBRA,
    CLIENT_RAW,
    CLIENT_RAW_HEADERS, /* raw, plus five constant headers each way */
    CLIENT_RAW_INBOX,   /* raw, but replies come to the requester's own sync subscription */
} client_kind;

static const char *const CLIENT_KIND_NAMES[] = {"kingcobra", "raw", "raw-headers", "raw-inbox"};

typedef struct bench_config {
    client_kind kind;
    const char *url;
    const char *label;
    int64_t duration_ms;
    int requester_count;
    int worker_count;
} bench_config;

/* How one round trip ended. */
typedef enum round_trip {
    ROUND_TRIP_OK,
    ROUND_TRIP_LOST,   /* timed out or a wrong reply: counted, the run goes on */
    ROUND_TRIP_FAILED, /* the connection broke: the run ends */
} round_trip;

typedef struct requester {
    pthread_t thread;
    const bench_config *config;
    natsConnection *connection; /* raw */
    natsSubscription *inbox;    /* raw-inbox: "<inbox>.*", read synchronously */
    char inbox_prefix[INBOX_BYTES_MAX];
    uint64_t inbox_sequence;
    kc_client *client; /* kingcobra */
    bench_start_gate *gate;
    bench_latency latency;
    bool failed;
    char failure[FAILURE_BYTES_MAX];
} requester;

/* The responder side: a kc_service or a raw nats.c queue subscription. */
typedef struct responder {
    kc_client *client;
    kc_service *service;
    natsConnection *connection;
    natsSubscription *subscription;
} responder;

/* ===================================================================== *
 * Helpers
 * ===================================================================== */

static void print_prefix(const bench_config *config)
{
    bench_print_prefix(CLIENT_KIND_NAMES[config->kind], config->label);
}

/* One nats.c connection with send-asap (see bench_nats_connect). */
static natsStatus raw_connect(natsConnection **connection, const char *url)
{
    return bench_nats_connect(connection, url, true, NULL);
}

static kc_err kingcobra_connect(kc_client **client, const char *url, const char *node)
{
    kc_client_options options;
    kc_client_options_init(&options);
    options.servers = url;
    options.node = node;
    options.name = node;
    options.connect_timeout_ms = BENCH_CONNECT_TIMEOUT_MS;
    options.reconnect_attempts_max = 0; /* as raw_connect: fail, do not stall */
    return kc_client_open(client, &options);
}

/* ===================================================================== *
 * Responders
 * ===================================================================== */

/* Five headers of the sizes libkingcobra sends (values fixed: no clock, no
 * id generator), set on a message of nats.c's; the reader gets each. */
typedef struct constant_header {
    const char *name, *value;
} constant_header;

enum { CONSTANT_HEADER_COUNT = 5 };

static const constant_header REQUEST_HEADERS[CONSTANT_HEADER_COUNT] = {
    {"Kc-Id", "0190b6e2-5a1c-7d3e-8f00-0123456789ab"},
    {"Kc-Ts", "1700000000000.3"},
    {"Kc-Node", "bench-requester-0"},
    {"Kc-Type", "bench"},
    {"Kc-Deadline", "1700000002000"},
};

static const constant_header REPLY_HEADERS[CONSTANT_HEADER_COUNT] = {
    {"Kc-Id", "0190b6e2-5a1c-7d3e-8f00-0123456789ac"},
    {"Kc-Ts", "1700000000000.4"},
    {"Kc-Node", "bench-service"},
    {"Kc-Type", "bench"},
    {"Kc-Reply-To", "0190b6e2-5a1c-7d3e-8f00-0123456789ab"},
};

static natsStatus headers_set(natsMsg *message, const constant_header *headers)
{
    natsStatus status = NATS_OK;
    for (int index = 0; index < CONSTANT_HEADER_COUNT && status == NATS_OK; index++)
        status = natsMsgHeader_Set(message, headers[index].name, headers[index].value);
    return status;
}

/* True if every header is there, once (as libkingcobra checks). */
static bool headers_present(natsMsg *message, const constant_header *headers)
{
    for (int index = 0; index < CONSTANT_HEADER_COUNT; index++) {
        const char **values = NULL;
        int count = 0;
        if (natsMsgHeader_Values(message, headers[index].name, &values, &count) != NATS_OK)
            return false;
        free((void *)values);
        if (count != 1) return false;
    }
    return true;
}

static void on_raw_headers_request(natsConnection *connection, natsSubscription *subscription,
                                   natsMsg *message, void *closure)
{
    const char *reply_subject = natsMsg_GetReply(message);
    natsMsg *reply = NULL;
    if (reply_subject != NULL && headers_present(message, REQUEST_HEADERS) &&
        natsMsg_Create(&reply, reply_subject, NULL, natsMsg_GetData(message),
                       natsMsg_GetDataLength(message)) == NATS_OK &&
        headers_set(reply, REPLY_HEADERS) == NATS_OK)
        natsConnection_PublishMsg(connection, reply);
    natsMsg_Destroy(reply);
    natsMsg_Destroy(message);
}

static void on_kingcobra_request(const kc_request *request, kc_response *response, void *closure)
{
    size_t payload_len = 0;
    const void *payload = kc_request_payload(request, &payload_len);
    kc_response_set_payload(response, payload, payload_len);
}

/* Subscribed, and the server has the subscription, when this returns. */
static bool responder_start(responder *self, const bench_config *config, char *failure,
                            size_t failure_size)
{
    if (config->kind != CLIENT_KINGCOBRA) {
        natsStatus status = raw_connect(&self->connection, config->url);
        if (status == NATS_OK)
            status = natsConnection_QueueSubscribe(
                &self->subscription, self->connection, REQUEST_SUBJECT, RESPONDER_QUEUE,
                config->kind != CLIENT_RAW_HEADERS ? bench_on_echo_request : on_raw_headers_request,
                NULL);
        if (status == NATS_OK)
            status = natsConnection_FlushTimeout(self->connection, FLUSH_TIMEOUT_MS);
        if (status != NATS_OK)
            snprintf(failure, failure_size, "responder: %s", natsStatus_GetText(status));
        return status == NATS_OK;
    }
    kc_service_options options;
    kc_service_options_init(&options);
    options.worker_count = config->worker_count;
    kc_err err = kingcobra_connect(&self->client, config->url, "bench-service");
    if (err == KC_OK)
        err = kc_service_start(&self->service, self->client, REQUEST_TYPE, on_kingcobra_request,
                               NULL, &options);
    if (err != KC_OK)
        snprintf(failure, failure_size, "service: %s: %s", kc_strerror(err), kc_last_error());
    return err == KC_OK;
}

/* Closes the connection before destroying the subscription: that joins the
 * delivery thread, which could otherwise still run the callback. */
static void responder_stop(responder *self)
{
    if (self->client != NULL) kc_client_close(self->client, CLOSE_TIMEOUT_MS); /* stops service */
    if (self->connection != NULL) natsConnection_Close(self->connection);
    natsSubscription_Destroy(self->subscription);
    natsConnection_Destroy(self->connection);
    memset(self, 0, sizeof(*self));
}

/* ===================================================================== *
 * Requesters
 * ===================================================================== */

/* raw-inbox: the requester's own "<inbox>.*" sync subscription. */
static natsStatus inbox_open(requester *self)
{
    natsInbox *inbox = NULL;
    natsStatus status = natsInbox_Create(&inbox);
    if (status != NATS_OK) return status;
    char subject[INBOX_BYTES_MAX + 2];
    snprintf(self->inbox_prefix, sizeof(self->inbox_prefix), "%s", inbox);
    snprintf(subject, sizeof(subject), "%s.*", inbox);
    natsInbox_Destroy(inbox);
    status = natsConnection_SubscribeSync(&self->inbox, self->connection, subject);
    if (status == NATS_OK) status = natsConnection_FlushTimeout(self->connection, FLUSH_TIMEOUT_MS);
    return status;
}

static bool requester_open(requester *self, int index)
{
    if (self->config->kind != CLIENT_KINGCOBRA) {
        natsStatus status = raw_connect(&self->connection, self->config->url);
        if (status == NATS_OK && self->config->kind == CLIENT_RAW_INBOX) status = inbox_open(self);
        if (status != NATS_OK)
            snprintf(self->failure, sizeof(self->failure), "requester: %s",
                     natsStatus_GetText(status));
        return status == NATS_OK;
    }
    char node[NODE_BYTES_MAX];
    snprintf(node, sizeof(node), "bench-requester-%d", index);
    kc_err err = kingcobra_connect(&self->client, self->config->url, node);
    if (err != KC_OK)
        snprintf(self->failure, sizeof(self->failure), "requester: %s: %s", kc_strerror(err),
                 kc_last_error());
    return err == KC_OK;
}

static void requester_close(requester *self)
{
    if (self->client != NULL) kc_client_close(self->client, CLOSE_TIMEOUT_MS);
    if (self->connection != NULL) natsConnection_Close(self->connection);
    natsSubscription_Destroy(self->inbox);
    natsConnection_Destroy(self->connection);
    self->inbox = NULL;
    self->client = NULL;
    self->connection = NULL;
}

static round_trip raw_round_trip(requester *self, const char *payload)
{
    natsMsg *reply = NULL;
    natsStatus status = natsConnection_Request(&reply, self->connection, REQUEST_SUBJECT, payload,
                                               PAYLOAD_BYTES, REQUEST_TIMEOUT_MS);
    bool complete = status == NATS_OK && natsMsg_GetDataLength(reply) == PAYLOAD_BYTES;
    natsMsg_Destroy(reply);
    if (complete) return ROUND_TRIP_OK;
    if (status == NATS_OK || status == NATS_TIMEOUT) return ROUND_TRIP_LOST;
    snprintf(self->failure, sizeof(self->failure), "request: %s", natsStatus_GetText(status));
    return ROUND_TRIP_FAILED;
}

static round_trip raw_headers_round_trip(requester *self, const char *payload)
{
    natsMsg *request = NULL;
    natsMsg *reply = NULL;
    natsStatus status = natsMsg_Create(&request, REQUEST_SUBJECT, NULL, payload, PAYLOAD_BYTES);
    if (status == NATS_OK) status = headers_set(request, REQUEST_HEADERS);
    if (status == NATS_OK)
        status = natsConnection_RequestMsg(&reply, self->connection, request, REQUEST_TIMEOUT_MS);
    natsMsg_Destroy(request);
    bool complete = status == NATS_OK && natsMsg_GetDataLength(reply) == PAYLOAD_BYTES &&
                    headers_present(reply, REPLY_HEADERS);
    natsMsg_Destroy(reply);
    if (complete) return ROUND_TRIP_OK;
    if (status == NATS_OK || status == NATS_TIMEOUT) return ROUND_TRIP_LOST;
    snprintf(self->failure, sizeof(self->failure), "request: %s", natsStatus_GetText(status));
    return ROUND_TRIP_FAILED;
}

/* Publishes with reply "<inbox>.<n>" and reads the inbox until reply n
 * (a late reply to an earlier, lost request is dropped). */
static round_trip raw_inbox_round_trip(requester *self, const char *payload)
{
    char reply_subject[INBOX_BYTES_MAX + 24];
    uint64_t sequence = ++self->inbox_sequence;
    snprintf(reply_subject, sizeof(reply_subject), "%s.%" PRIu64, self->inbox_prefix, sequence);
    natsStatus status = natsConnection_PublishRequest(self->connection, REQUEST_SUBJECT,
                                                      reply_subject, payload, PAYLOAD_BYTES);
    natsMsg *reply = NULL;
    while (status == NATS_OK) {
        status = natsSubscription_NextMsg(&reply, self->inbox, REQUEST_TIMEOUT_MS);
        if (status != NATS_OK || strcmp(natsMsg_GetSubject(reply), reply_subject) == 0) break;
        natsMsg_Destroy(reply);
        reply = NULL;
    }
    bool complete = status == NATS_OK && natsMsg_GetDataLength(reply) == PAYLOAD_BYTES;
    natsMsg_Destroy(reply);
    if (complete) return ROUND_TRIP_OK;
    if (status == NATS_OK || status == NATS_TIMEOUT) return ROUND_TRIP_LOST;
    snprintf(self->failure, sizeof(self->failure), "request: %s", natsStatus_GetText(status));
    return ROUND_TRIP_FAILED;
}

static round_trip kingcobra_round_trip(requester *self, const char *payload)
{
    kc_reply *reply = NULL;
    kc_err err = kc_client_request(&reply, self->client, REQUEST_TYPE, payload, PAYLOAD_BYTES,
                                   REQUEST_TIMEOUT_MS);
    size_t reply_len = 0;
    kc_reply_payload(reply, &reply_len);
    kc_reply_destroy(reply);
    if (err == KC_OK && reply_len == PAYLOAD_BYTES) return ROUND_TRIP_OK;
    if (err == KC_OK || err == KC_ERR_TIMEOUT) return ROUND_TRIP_LOST;
    snprintf(self->failure, sizeof(self->failure), "request: %s: %s", kc_strerror(err),
             kc_last_error());
    return ROUND_TRIP_FAILED;
}

static round_trip round_trip_once(requester *self, const char *payload, int64_t *latency_ns)
{
    int64_t start_ns = bench_now_ns();
    round_trip result = ROUND_TRIP_FAILED;
    switch (self->config->kind) {
    case CLIENT_RAW: result = raw_round_trip(self, payload); break;
    case CLIENT_RAW_HEADERS: result = raw_headers_round_trip(self, payload); break;
    case CLIENT_RAW_INBOX: result = raw_inbox_round_trip(self, payload); break;
    case CLIENT_KINGCOBRA: result = kingcobra_round_trip(self, payload); break;
    }
    *latency_ns = bench_now_ns() - start_ns;
    return result;
}

static void *requester_main(void *argument)
{
    requester *self = argument;
    char payload[PAYLOAD_BYTES];
    memset(payload, 'k', sizeof(payload));
    int64_t latency_ns = 0;
    for (int index = 0; index < REQUEST_WARMUP_COUNT && !self->failed; index++)
        self->failed = round_trip_once(self, payload, &latency_ns) != ROUND_TRIP_OK;
    if (self->failed && self->failure[0] == '\0')
        snprintf(self->failure, sizeof(self->failure), "warm-up: a reply was lost");
    bench_gate_arrive_and_wait(self->gate); /* even after a failed warm-up */
    self->latency.start_ns = bench_now_ns();
    int64_t deadline_ns = self->latency.start_ns + self->config->duration_ms * BENCH_NS_PER_MS;
    while (!self->failed && !bench_latency_full(&self->latency) && bench_now_ns() < deadline_ns) {
        round_trip result = round_trip_once(self, payload, &latency_ns);
        if (result == ROUND_TRIP_FAILED) self->failed = true;
        if (result == ROUND_TRIP_LOST) self->latency.error_count++;
        if (result != ROUND_TRIP_OK) continue;
        bench_latency_record(&self->latency, latency_ns);
    }
    self->latency.finish_ns = bench_now_ns();
    return NULL;
}

/* ===================================================================== *
 * Run and report
 * ===================================================================== */

/* Merges every requester's samples and prints. */
static bool report(const bench_config *config, requester *requesters, char *failure,
                   size_t failure_size)
{
    const bench_latency *parts[BENCH_REQUESTER_COUNT_MAX];
    for (int index = 0; index < config->requester_count; index++)
        parts[index] = &requesters[index].latency;
    bench_summary summary;
    bench_summary_result result = bench_summarize(&summary, parts, config->requester_count);
    if (result != BENCH_SUMMARY_OK) {
        snprintf(failure, failure_size,
                 result == BENCH_SUMMARY_NO_MEMORY ? "out of memory" : "no reply at all");
        return false;
    }
    print_prefix(config);
    printf(",\"workers\":%d,\"requesters\":%d,\"requests\":%" PRId64 ",\"errors\":%" PRId64
           ",\"rps\":%.0f,\"p50_us\":%.1f,\"p99_us\":%.1f}\n",
           config->kind == CLIENT_KINGCOBRA ? config->worker_count : 1, config->requester_count,
           summary.request_count, summary.error_count, summary.requests_per_s, summary.p50_us,
           summary.p99_us);
    return true;
}

/* Starts the requesters, opens the gate when all have warmed up, joins. */
static bool requesters_run(const bench_config *config, requester *requesters, char *failure,
                           size_t failure_size)
{
    bench_start_gate gate = BENCH_START_GATE_INITIALIZER;
    int started_count = 0;
    for (; started_count < config->requester_count; started_count++) {
        requesters[started_count].gate = &gate;
        if (pthread_create(&requesters[started_count].thread, NULL, requester_main,
                           &requesters[started_count]) != 0)
            break;
    }
    bench_gate_open_after(&gate, started_count);
    for (int index = 0; index < started_count; index++)
        pthread_join(requesters[index].thread, NULL);
    if (started_count < config->requester_count) {
        snprintf(failure, failure_size, "cannot start requester threads");
        return false;
    }
    for (int index = 0; index < config->requester_count; index++) {
        if (requesters[index].failed) {
            snprintf(failure, failure_size, "%s", requesters[index].failure);
            return false;
        }
    }
    return report(config, requesters, failure, failure_size);
}

static bool run(const bench_config *config, char *failure, size_t failure_size)
{
    requester requesters[BENCH_REQUESTER_COUNT_MAX] = {0};
    responder answering = {0};
    bool ok = responder_start(&answering, config, failure, failure_size);
    int opened_count = 0;
    for (; ok && opened_count < config->requester_count; opened_count++) {
        requester *self = &requesters[opened_count];
        self->config = config;
        bool allocated = bench_latency_open(&self->latency);
        ok = allocated && requester_open(self, opened_count);
        if (!ok) snprintf(failure, failure_size, "%s", allocated ? self->failure : "out of memory");
    }
    if (ok) ok = requesters_run(config, requesters, failure, failure_size);
    for (int index = 0; index < opened_count; index++) {
        requester_close(&requesters[index]);
        bench_latency_close(&requesters[index].latency);
    }
    responder_stop(&answering);
    return ok;
}

/* ===================================================================== *
 * Command line, main
 * ===================================================================== */

static int usage(void)
{
    fprintf(stderr, "usage: bench_kingcobra [-l LABEL] [-d DURATION_MS] [-r REQUESTERS] "
                    "[-w WORKERS] kingcobra|raw|raw-headers|raw-inbox URL\n");
    return 2;
}

static bool parse_arguments(bench_config *config, int argc, char **argv)
{
    int option;
    while ((option = getopt(argc, argv, "l:d:r:w:")) != -1) {
        switch (option) {
        case 'l': config->label = optarg; break;
        case 'd': config->duration_ms = strtoll(optarg, NULL, 10); break;
        case 'r': config->requester_count = atoi(optarg); break;
        case 'w': config->worker_count = atoi(optarg); break;
        default: return false;
        }
    }
    if (argc - optind != 2) return false;
    if (strcmp(argv[optind], "kingcobra") == 0)
        config->kind = CLIENT_KINGCOBRA;
    else if (strcmp(argv[optind], "raw") == 0)
        config->kind = CLIENT_RAW;
    else if (strcmp(argv[optind], "raw-headers") == 0)
        config->kind = CLIENT_RAW_HEADERS;
    else if (strcmp(argv[optind], "raw-inbox") == 0)
        config->kind = CLIENT_RAW_INBOX;
    else
        return false;
    config->url = argv[optind + 1];
    return bench_label_valid(config->label) && config->duration_ms > 0 &&
           config->duration_ms <= DURATION_MS_MAX && config->requester_count >= 1 &&
           config->requester_count <= BENCH_REQUESTER_COUNT_MAX && config->worker_count >= 1 &&
           config->worker_count <= SERVICE_WORKERS_MAX;
}

int main(int argc, char **argv)
{
    bench_config config = {.label = "server",
                           .duration_ms = DURATION_MS_DEFAULT,
                           .requester_count = 1,
                           .worker_count = 1};
    if (!parse_arguments(&config, argc, argv)) return usage();
    char failure[FAILURE_BYTES_MAX] = "";
    natsStatus status = nats_Open(-1);
    if (status != NATS_OK) snprintf(failure, sizeof(failure), "%s", natsStatus_GetText(status));
    bool ok = status == NATS_OK && run(&config, failure, sizeof(failure));
    if (!ok) {
        /* The text goes into JSON: keep it to bytes that need no escaping. */
        for (char *cursor = failure; *cursor != '\0'; cursor++)
            if (*cursor == '"' || *cursor == '\\' || (unsigned char)*cursor < ' ') *cursor = '\'';
        print_prefix(&config);
        printf(",\"workers\":%d,\"requesters\":%d,\"error\":\"%s\"}\n",
               config.kind == CLIENT_KINGCOBRA ? config.worker_count : 1, config.requester_count,
               failure);
    }
    fflush(stdout);
    nats_CloseAndWait(CLOSE_TIMEOUT_MS);
    return ok ? 0 : 1;
}
