/* bench_nats.c - runs one named workload against one NATS server with the
 * official nats.c client and prints the result as one JSON object per line.
 *
 *   bench_nats [-l LABEL] [-d DURATION_MS] [-n COUNT] [-p SERVER_PID] WORKLOAD URL
 *   bench_nats free-port
 *
 * Workloads (bench/README.md says what each one measures):
 *   reqrep1, reqrep8  request/reply round trips from 1 or 8 requesters (one
 *                     thread and one connection each) to a queue-group echo
 *                     responder; requests/s, p50 and p99 latency in µs.
 *   pubsub            1 publisher, 1 subscriber; msgs/s at the subscriber.
 *   fanout            1 publisher, 4 subscribers; total delivered msgs/s.
 *   idle              the server's resident memory per idle connection
 *                     (VmRSS of SERVER_PID, before and after).
 *   free-port         prints a port on 127.0.0.1 that the kernel says is free,
 *                     so bench/run.sh needs nothing but bash and this program.
 *
 * Design. The bench must measure the server, not itself, and measure every
 * server the same way:
 * - The echo responder lives in this process on its own connection. That way
 *   it is subscribed and flushed before the first request by construction, it
 *   dies with the bench, and run.sh has no third process to manage. On a
 *   2-core machine a separate process would compete for the same cores.
 *   Requesters and the responder use send-asap so no client-side batching
 *   hides the server's latency. Each requester sends what
 *   natsConnection_Request sends (a fresh reply subject under its own inbox)
 *   but waits on a sync subscription, which saves nats.c a thread hop per
 *   round trip (see requester_open).
 * - The stream workloads (pubsub, fanout) let the publisher batch (nats.c's
 *   default) and keep at most STREAM_IN_FLIGHT_MAX messages between the
 *   publisher and the slowest subscriber. Without this window a publisher
 *   that outruns its subscriber fills the server's per-client pending buffer
 *   and the server drops the subscriber as a slow consumer; with it the figure
 *   is the rate the whole path sustains. The subscriber's callback only counts
 *   and reads the clock at the first message and every STREAM_CLOCK_INTERVAL
 *   messages; each subscription has its own delivery thread (no global pool).
 * - Every loop, buffer and wait has a named bound below; latency samples are
 *   allocated before the measurement starts.
 * Limits: nats.c allocates one natsMsg per delivered message and hands it
 * from its reader thread to the delivery thread, so at high rates the client
 * costs about as much CPU as the server; the ratio between two servers
 * measured the same way is what bench/run.sh reports. */
#include <arpa/inet.h>
#include <assert.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <nats/nats.h>

#include "bench_common.h"

enum {
    PAYLOAD_BYTES = 128,
    FLUSH_TIMEOUT_MS = 5000,
    CLOSE_TIMEOUT_MS = 5000,
    /* reqrep */
    REQREP_DURATION_MS_DEFAULT = 3000,
    REQREP_DURATION_MS_MAX = 60 * 1000,
    REQUEST_TIMEOUT_MS = 2000,
    REQUEST_WARMUP_COUNT = 1000,
    INBOX_BYTES_MAX = 64,
    REPLY_SUBJECT_BYTES_MAX = INBOX_BYTES_MAX + 24,
    STALE_REPLIES_MAX = 16, /* late replies to timed-out requests skipped */
    /* pubsub, fanout */
    PUBSUB_MESSAGE_COUNT_DEFAULT = 2000000,
    FANOUT_MESSAGE_COUNT_DEFAULT = 500000,
    FANOUT_SUBSCRIBER_COUNT = 4,
    STREAM_SUBSCRIBER_COUNT_MAX = FANOUT_SUBSCRIBER_COUNT,
    STREAM_MESSAGE_COUNT_MAX = 100000000,
    STREAM_IN_FLIGHT_MAX = 65536, /* ~11 MB on the wire, well under 64 MB */
    STREAM_WINDOW_CHECK_INTERVAL = 256,
    STREAM_CLOCK_INTERVAL = 1024,
    STREAM_POLL_US = 50,
    STREAM_STALL_TIMEOUT_MS = 3000, /* no progress for this long: give up */
    /* idle */
    IDLE_CONNECTION_COUNT_DEFAULT = 1000,
    IDLE_CONNECTION_COUNT_MAX = 10000,
    IDLE_FILE_DESCRIPTORS_SPARE = 256,
    IDLE_SETTLE_MS = 1000,
    IDLE_SAMPLE_INTERVAL_MS = 250,
    IDLE_SAMPLE_COUNT_MAX = 20,
    IDLE_STABLE_PER_MILLE = 5, /* two samples this close: settled */
    STATUS_LINE_BYTES_MAX = 256,
    PROC_STAT_BYTES_MAX = 1024,
};

static const char REQUEST_SUBJECT[] = "bench.echo";
static const char RESPONDER_QUEUE[] = "echo";
static const char STREAM_SUBJECT[] = "bench.stream";

typedef struct bench_config {
    const char *workload;
    const char *url;
    const char *label;
    long server_pid;     /* 0: not given */
    int64_t duration_ms; /* 0: the workload's default */
    int64_t count;       /* messages or connections; 0: the workload's default */
} bench_config;

static atomic_int_fast64_t slow_consumer_count;

/* ===================================================================== *
 * Helpers
 * ===================================================================== */

static void sleep_us(int64_t microseconds)
{
    assert(microseconds >= 0);
    struct timespec left = {.tv_sec = microseconds / 1000000,
                            .tv_nsec = (microseconds % 1000000) * 1000};
    while (nanosleep(&left, &left) != 0 && errno == EINTR) {
    }
}

static void on_async_error(natsConnection *connection, natsSubscription *subscription,
                           natsStatus status, void *closure)
{
    if (status == NATS_SLOW_CONSUMER) atomic_fetch_add(&slow_consumer_count, 1);
}

/* One connection to url that counts slow-consumer errors; send_asap for the
 * latency workloads. */
static natsStatus connect_to(natsConnection **connection, const char *url, bool send_asap)
{
    return bench_nats_connect(connection, url, send_asap, on_async_error);
}

/* CPU time (user + system, all threads) the server has used, in ns, or -1
 * when no pid was given or /proc cannot say: fields 14 and 15 of
 * /proc/<pid>/stat, counted after the ')' that ends the command name. */
static int64_t server_cpu_ns(const bench_config *config)
{
    if (config->server_pid <= 0) return -1;
    char path[64], text[PROC_STAT_BYTES_MAX];
    snprintf(path, sizeof path, "/proc/%ld/stat", config->server_pid);
    FILE *file = fopen(path, "r");
    if (file == NULL) return -1;
    size_t length = fread(text, 1, sizeof text - 1, file);
    fclose(file);
    text[length] = '\0';
    const char *after_name = strrchr(text, ')');
    unsigned long long user_ticks = 0, system_ticks = 0;
    if (after_name == NULL ||
        sscanf(after_name + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu",
               &user_ticks, &system_ticks) != 2) {
        return -1;
    }
    long ticks_per_s = sysconf(_SC_CLK_TCK);
    if (ticks_per_s <= 0) return -1;
    return (int64_t)(user_ticks + system_ticks) * (BENCH_NS_PER_S / ticks_per_s);
}

/* Appends the server's CPU time per operation, when it is known. */
static void print_server_cpu(const int64_t cpu_ns[2], int64_t operation_count)
{
    if (cpu_ns[0] < 0 || cpu_ns[1] < cpu_ns[0] || operation_count <= 0) return;
    double used_ns = (double)(cpu_ns[1] - cpu_ns[0]);
    printf(",\"server_cpu_ms\":%.0f,\"server_cpu_ns_per_op\":%.0f", used_ns / 1e6,
           used_ns / (double)operation_count);
}

/* Closes the connection first: that joins its reader thread, which could
 * otherwise still be delivering to the subscription being destroyed (nats.c
 * 3.4.1 crashes so when the server goes away mid-run). */
static void subscription_close(natsSubscription *subscription, natsConnection *connection)
{
    if (connection != NULL) natsConnection_Close(connection);
    natsSubscription_Destroy(subscription);
    natsConnection_Destroy(connection);
}

static void print_prefix(const bench_config *config)
{
    bench_print_prefix(config->workload, config->label);
}

/* ===================================================================== *
 * reqrep: request/reply round trips
 * ===================================================================== */

typedef struct requester {
    pthread_t thread;
    natsConnection *connection;
    natsSubscription *inbox; /* sync, on "<inbox_prefix>.*" */
    char inbox_prefix[INBOX_BYTES_MAX];
    uint64_t request_sequence; /* the reply subject's last token */
    bench_start_gate *gate;
    int64_t duration_ns;
    bench_latency latency;
    natsStatus status;
} requester;

/* The requester's own inbox, "_INBOX.<nuid>", subscribed as "_INBOX.<nuid>.*":
 * what natsConnection_Request does on the wire (a new reply subject per
 * request, one wildcard subscription), but the reply goes from nats.c's
 * reader thread straight to the waiting requester instead of through a
 * delivery thread first: one thread hop less per round trip for the bench. */
static natsStatus requester_open(requester *self, const char *url)
{
    natsInbox *inbox = NULL;
    natsStatus status = connect_to(&self->connection, url, true);
    if (status == NATS_OK) status = natsInbox_Create(&inbox);
    if (status == NATS_OK) {
        int length = snprintf(self->inbox_prefix, sizeof self->inbox_prefix, "%s", inbox);
        if (length < 0 || length >= (int)sizeof self->inbox_prefix) status = NATS_INVALID_ARG;
    }
    natsInbox_Destroy(inbox);
    char wildcard[REPLY_SUBJECT_BYTES_MAX];
    snprintf(wildcard, sizeof wildcard, "%s.*", self->inbox_prefix);
    if (status == NATS_OK) {
        status = natsConnection_SubscribeSync(&self->inbox, self->connection, wildcard);
    }
    if (status == NATS_OK) status = natsConnection_FlushTimeout(self->connection, FLUSH_TIMEOUT_MS);
    return status;
}

/* Waits for the reply to reply_subject, skipping late replies to earlier
 * requests that timed out; a reply of the wrong length is an error. */
static natsStatus reply_wait(requester *self, const char *reply_subject)
{
    natsStatus status = NATS_OK;
    for (int skipped = 0; skipped <= STALE_REPLIES_MAX; skipped++) {
        natsMsg *reply = NULL;
        status = natsSubscription_NextMsg(&reply, self->inbox, REQUEST_TIMEOUT_MS);
        if (status != NATS_OK) return status;
        bool ours = strcmp(natsMsg_GetSubject(reply), reply_subject) == 0;
        if (ours && natsMsg_GetDataLength(reply) != PAYLOAD_BYTES) status = NATS_PROTOCOL_ERROR;
        natsMsg_Destroy(reply);
        if (ours) return status;
    }
    return NATS_TIMEOUT;
}

static natsStatus request_once(requester *self, const char *payload, int64_t *latency_ns)
{
    char reply_subject[REPLY_SUBJECT_BYTES_MAX];
    snprintf(reply_subject, sizeof reply_subject, "%s.%" PRIu64, self->inbox_prefix,
             ++self->request_sequence);
    int64_t start_ns = bench_now_ns();
    natsStatus status = natsConnection_PublishRequest(self->connection, REQUEST_SUBJECT,
                                                      reply_subject, payload, PAYLOAD_BYTES);
    if (status == NATS_OK) status = reply_wait(self, reply_subject);
    *latency_ns = bench_now_ns() - start_ns;
    return status;
}

static natsStatus requester_warm_up(requester *self, const char *payload)
{
    int64_t latency_ns = 0;
    natsStatus status = NATS_OK;
    for (int index = 0; index < REQUEST_WARMUP_COUNT && status == NATS_OK; index++) {
        status = request_once(self, payload, &latency_ns);
    }
    return status;
}

static void *requester_main(void *argument)
{
    requester *self = argument;
    char payload[PAYLOAD_BYTES];
    memset(payload, 'k', sizeof payload);
    self->status = requester_warm_up(self, payload);
    bench_gate_arrive_and_wait(self->gate); /* even after a failed warm-up */
    self->latency.start_ns = bench_now_ns();
    int64_t deadline_ns = self->latency.start_ns + self->duration_ns;
    while (self->status == NATS_OK && !bench_latency_full(&self->latency) &&
           bench_now_ns() < deadline_ns) {
        int64_t latency_ns = 0;
        natsStatus status = request_once(self, payload, &latency_ns);
        if (status != NATS_OK) {
            /* A lost reply is counted; a dead connection ends the run. */
            self->latency.error_count++;
            if (status != NATS_TIMEOUT && status != NATS_PROTOCOL_ERROR) self->status = status;
            continue;
        }
        bench_latency_record(&self->latency, latency_ns);
    }
    self->latency.finish_ns = bench_now_ns();
    return NULL;
}

/* Merges every requester's samples and prints. */
static natsStatus reqrep_report(const bench_config *config, requester *requesters,
                                int requester_count, const int64_t cpu_ns[2])
{
    const bench_latency *parts[BENCH_REQUESTER_COUNT_MAX];
    for (int index = 0; index < requester_count; index++) {
        if (requesters[index].status != NATS_OK) return requesters[index].status;
        parts[index] = &requesters[index].latency;
    }
    bench_summary summary;
    bench_summary_result result = bench_summarize(&summary, parts, requester_count);
    if (result == BENCH_SUMMARY_EMPTY) return NATS_TIMEOUT;
    if (result == BENCH_SUMMARY_NO_MEMORY) return NATS_NO_MEMORY;
    print_prefix(config);
    printf(",\"requesters\":%d,\"requests\":%" PRId64 ",\"errors\":%" PRId64
           ",\"rps\":%.0f,\"p50_us\":%.1f,\"p99_us\":%.1f",
           requester_count, summary.request_count, summary.error_count, summary.requests_per_s,
           summary.p50_us, summary.p99_us);
    print_server_cpu(cpu_ns, summary.request_count);
    printf("}\n");
    return NATS_OK;
}

static natsStatus requesters_run(const bench_config *config, requester *requesters,
                                 int requester_count)
{
    bench_start_gate gate = BENCH_START_GATE_INITIALIZER;
    int64_t duration_ms =
        config->duration_ms > 0 ? config->duration_ms : REQREP_DURATION_MS_DEFAULT;
    int started_count = 0;
    for (; started_count < requester_count; started_count++) {
        requester *self = &requesters[started_count];
        self->gate = &gate;
        self->duration_ns = duration_ms * BENCH_NS_PER_MS;
        if (pthread_create(&self->thread, NULL, requester_main, self) != 0) break;
    }
    /* Warm-up ends at the gate, so the CPU window holds measured requests. */
    int64_t cpu_ns[2] = {0};
    bench_gate_open_after(&gate, started_count);
    cpu_ns[0] = server_cpu_ns(config);
    for (int index = 0; index < started_count; index++) {
        pthread_join(requesters[index].thread, NULL);
    }
    cpu_ns[1] = server_cpu_ns(config);
    if (started_count < requester_count) return NATS_SYS_ERROR;
    return reqrep_report(config, requesters, requester_count, cpu_ns);
}

static natsStatus run_reqrep(const bench_config *config, int requester_count)
{
    if (requester_count < 1 || requester_count > BENCH_REQUESTER_COUNT_MAX) return NATS_INVALID_ARG;
    requester requesters[BENCH_REQUESTER_COUNT_MAX] = {0};
    natsConnection *responder = NULL;
    natsSubscription *subscription = NULL;
    natsStatus status = connect_to(&responder, config->url, true);
    if (status == NATS_OK) {
        status = natsConnection_QueueSubscribe(&subscription, responder, REQUEST_SUBJECT,
                                               RESPONDER_QUEUE, bench_on_echo_request, NULL);
    }
    if (status == NATS_OK) status = natsConnection_FlushTimeout(responder, FLUSH_TIMEOUT_MS);
    int ready = 0;
    for (; status == NATS_OK && ready < requester_count; ready++) {
        if (!bench_latency_open(&requesters[ready].latency)) status = NATS_NO_MEMORY;
        if (status == NATS_OK) status = requester_open(&requesters[ready], config->url);
    }
    if (status == NATS_OK) status = requesters_run(config, requesters, requester_count);
    for (int index = 0; index < requester_count; index++) {
        subscription_close(requesters[index].inbox, requesters[index].connection);
        bench_latency_close(&requesters[index].latency);
    }
    subscription_close(subscription, responder);
    return status;
}

static natsStatus run_reqrep1(const bench_config *config)
{
    return run_reqrep(config, 1);
}

static natsStatus run_reqrep8(const bench_config *config)
{
    return run_reqrep(config, 8);
}

/* ===================================================================== *
 * pubsub and fanout: one publisher, N subscribers
 * ===================================================================== */

typedef struct subscriber {
    natsConnection *connection;
    natsSubscription *subscription;
    int64_t expected_count;
    /* Written by the subscription's delivery thread only. */
    atomic_int_fast64_t received_count;
    atomic_int_fast64_t first_ns;
    atomic_int_fast64_t last_ns;
} subscriber;

static void on_stream_message(natsConnection *connection, natsSubscription *subscription,
                              natsMsg *message, void *closure)
{
    subscriber *self = closure;
    int64_t count = atomic_load_explicit(&self->received_count, memory_order_relaxed) + 1;
    if (count == 1) atomic_store_explicit(&self->first_ns, bench_now_ns(), memory_order_relaxed);
    if (count % STREAM_CLOCK_INTERVAL == 0 || count == self->expected_count) {
        atomic_store_explicit(&self->last_ns, bench_now_ns(), memory_order_relaxed);
    }
    natsMsg_Destroy(message);
    atomic_store_explicit(&self->received_count, count, memory_order_release);
}

static int64_t stream_received_min(subscriber *subscribers, int subscriber_count)
{
    int64_t minimum = INT64_MAX;
    for (int index = 0; index < subscriber_count; index++) {
        int64_t count =
            atomic_load_explicit(&subscribers[index].received_count, memory_order_acquire);
        if (count < minimum) minimum = count;
    }
    return minimum;
}

/* Sleeps until the slowest subscriber is within in_flight_max of target;
 * false when it made no progress for STREAM_STALL_TIMEOUT_MS (drops). */
static bool stream_wait(subscriber *subscribers, int subscriber_count, int64_t target,
                        int64_t in_flight_max)
{
    assert(subscriber_count >= 1 && subscriber_count <= STREAM_SUBSCRIBER_COUNT_MAX);
    assert(in_flight_max >= 0);
    int64_t received = stream_received_min(subscribers, subscriber_count);
    int64_t progress_ns = bench_now_ns();
    while (target - received > in_flight_max) {
        sleep_us(STREAM_POLL_US);
        int64_t now = stream_received_min(subscribers, subscriber_count);
        if (now != received) {
            received = now;
            progress_ns = bench_now_ns();
        } else if (bench_now_ns() - progress_ns > STREAM_STALL_TIMEOUT_MS * BENCH_NS_PER_MS) {
            return false;
        }
    }
    return true;
}

/* Publishes up to message_count messages, fewer if the subscribers stall;
 * *published_count says how many. Returns once all arrived or stalled. */
static natsStatus stream_publish(natsConnection *publisher, subscriber *subscribers,
                                 int subscriber_count, int64_t message_count,
                                 int64_t *published_count)
{
    char payload[PAYLOAD_BYTES];
    memset(payload, 'k', sizeof payload);
    natsStatus status = NATS_OK;
    int64_t index = 0;
    for (; index < message_count && status == NATS_OK; index++) {
        if (index % STREAM_WINDOW_CHECK_INTERVAL == 0 &&
            !stream_wait(subscribers, subscriber_count, index, STREAM_IN_FLIGHT_MAX)) {
            break;
        }
        status = natsConnection_Publish(publisher, STREAM_SUBJECT, payload, PAYLOAD_BYTES);
    }
    *published_count = index;
    if (status == NATS_OK) status = natsConnection_FlushTimeout(publisher, FLUSH_TIMEOUT_MS);
    if (status == NATS_OK) stream_wait(subscribers, subscriber_count, index, 0);
    return status;
}

/* The rate counts every delivery between the first message at any
 * subscriber and the last one at any subscriber. */
static natsStatus stream_report(const bench_config *config, subscriber *subscribers,
                                int subscriber_count, int64_t published_count,
                                const int64_t cpu_ns[2])
{
    int64_t delivered = 0, dropped_by_client = 0, first_ns = INT64_MAX, last_ns = 0;
    for (int index = 0; index < subscriber_count; index++) {
        subscriber *self = &subscribers[index];
        int64_t dropped = 0;
        natsSubscription_GetDropped(self->subscription, &dropped);
        dropped_by_client += dropped;
        int64_t received = atomic_load(&self->received_count);
        if (received == 0) continue;
        delivered += received;
        if (atomic_load(&self->first_ns) < first_ns) first_ns = atomic_load(&self->first_ns);
        if (atomic_load(&self->last_ns) > last_ns) last_ns = atomic_load(&self->last_ns);
    }
    if (delivered == 0 || last_ns <= first_ns) return NATS_TIMEOUT;
    int64_t expected = published_count * subscriber_count;
    double elapsed_s = (double)(last_ns - first_ns) / (double)BENCH_NS_PER_S;
    print_prefix(config);
    printf(",\"subscribers\":%d,\"messages\":%" PRId64 ",\"delivered\":%" PRId64
           ",\"dropped\":%" PRId64 ",\"client_dropped\":%" PRId64
           ",\"slow_consumer_errors\":%" PRId64 ",\"msgs_per_s\":%.0f",
           subscriber_count, published_count, delivered, expected - delivered, dropped_by_client,
           (int64_t)atomic_load(&slow_consumer_count), (double)delivered / elapsed_s);
    print_server_cpu(cpu_ns, delivered);
    printf("}\n");
    return NATS_OK;
}

static natsStatus subscriber_open(subscriber *self, const char *url, int64_t message_count)
{
    self->expected_count = message_count;
    natsStatus status = connect_to(&self->connection, url, false);
    if (status == NATS_OK) {
        status = natsConnection_Subscribe(&self->subscription, self->connection, STREAM_SUBJECT,
                                          on_stream_message, self);
    }
    /* Room for every message, so the client itself never drops one. */
    int64_t bytes_limit = message_count * PAYLOAD_BYTES * 2;
    if (status == NATS_OK) {
        status =
            natsSubscription_SetPendingLimits(self->subscription, (int)message_count,
                                              bytes_limit > INT_MAX ? INT_MAX : (int)bytes_limit);
    }
    if (status == NATS_OK) status = natsConnection_FlushTimeout(self->connection, FLUSH_TIMEOUT_MS);
    return status;
}

static natsStatus run_stream(const bench_config *config, int subscriber_count,
                             int64_t message_count)
{
    if (subscriber_count < 1 || subscriber_count > STREAM_SUBSCRIBER_COUNT_MAX) {
        return NATS_INVALID_ARG;
    }
    if (message_count < 1 || message_count > STREAM_MESSAGE_COUNT_MAX) return NATS_INVALID_ARG;
    subscriber subscribers[STREAM_SUBSCRIBER_COUNT_MAX] = {0};
    natsConnection *publisher = NULL;
    natsStatus status = NATS_OK;
    for (int index = 0; index < subscriber_count && status == NATS_OK; index++) {
        status = subscriber_open(&subscribers[index], config->url, message_count);
    }
    if (status == NATS_OK) status = connect_to(&publisher, config->url, false);
    int64_t published_count = 0, cpu_ns[2] = {0};
    if (status == NATS_OK) {
        cpu_ns[0] = server_cpu_ns(config);
        status = stream_publish(publisher, subscribers, subscriber_count, message_count,
                                &published_count);
        cpu_ns[1] = server_cpu_ns(config);
    }
    if (status == NATS_OK) {
        status = stream_report(config, subscribers, subscriber_count, published_count, cpu_ns);
    }
    natsConnection_Destroy(publisher);
    for (int index = 0; index < subscriber_count; index++) {
        subscription_close(subscribers[index].subscription, subscribers[index].connection);
    }
    return status;
}

static natsStatus run_pubsub(const bench_config *config)
{
    int64_t count = config->count > 0 ? config->count : PUBSUB_MESSAGE_COUNT_DEFAULT;
    return run_stream(config, 1, count);
}

static natsStatus run_fanout(const bench_config *config)
{
    int64_t count = config->count > 0 ? config->count : FANOUT_MESSAGE_COUNT_DEFAULT;
    return run_stream(config, FANOUT_SUBSCRIBER_COUNT, count);
}

/* ===================================================================== *
 * idle: server memory per idle connection
 * ===================================================================== */

/* VmRSS of pid in bytes, or -1. */
static int64_t rss_bytes(long pid)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%ld/status", pid);
    FILE *file = fopen(path, "r");
    if (file == NULL) return -1;
    char line[STATUS_LINE_BYTES_MAX];
    int64_t kibibytes = -1;
    while (fgets(line, sizeof line, file) != NULL) {
        if (sscanf(line, "VmRSS: %" SCNd64 " kB", &kibibytes) == 1) break;
    }
    fclose(file);
    return kibibytes < 0 ? -1 : kibibytes * 1024;
}

/* Samples until two readings in a row agree within IDLE_STABLE_PER_MILLE. */
static int64_t rss_bytes_settled(long pid)
{
    sleep_us(IDLE_SETTLE_MS * 1000);
    int64_t previous = rss_bytes(pid);
    for (int sample = 0; sample < IDLE_SAMPLE_COUNT_MAX && previous > 0; sample++) {
        sleep_us(IDLE_SAMPLE_INTERVAL_MS * 1000);
        int64_t current = rss_bytes(pid);
        int64_t difference = current > previous ? current - previous : previous - current;
        previous = current;
        if (difference * 1000 <= current * IDLE_STABLE_PER_MILLE) break;
    }
    return previous;
}

static natsStatus raise_file_limit(int64_t needed)
{
    struct rlimit limit;
    if (getrlimit(RLIMIT_NOFILE, &limit) != 0) return NATS_SYS_ERROR;
    if (limit.rlim_cur != RLIM_INFINITY && (int64_t)limit.rlim_cur >= needed) return NATS_OK;
    if (limit.rlim_max != RLIM_INFINITY && (int64_t)limit.rlim_max < needed) {
        fprintf(stderr, "bench_nats: RLIMIT_NOFILE hard limit %ld < %" PRId64 "\n",
                (long)limit.rlim_max, needed);
        return NATS_SYS_ERROR;
    }
    limit.rlim_cur = (rlim_t)needed;
    return setrlimit(RLIMIT_NOFILE, &limit) == 0 ? NATS_OK : NATS_SYS_ERROR;
}

static natsStatus run_idle(const bench_config *config)
{
    int64_t count = config->count > 0 ? config->count : IDLE_CONNECTION_COUNT_DEFAULT;
    if (config->server_pid <= 0 || count > IDLE_CONNECTION_COUNT_MAX) return NATS_INVALID_ARG;
    natsStatus status = raise_file_limit(count + IDLE_FILE_DESCRIPTORS_SPARE);
    natsConnection **connections = calloc((size_t)count, sizeof *connections);
    if (connections == NULL) status = NATS_NO_MEMORY;
    int64_t before_bytes = status == NATS_OK ? rss_bytes_settled(config->server_pid) : -1;
    if (status == NATS_OK && before_bytes < 0) status = NATS_SYS_ERROR;
    int64_t opened = 0;
    for (; status == NATS_OK && opened < count; opened++) {
        /* Connect ends with PING/PONG: the server has processed CONNECT. */
        status = connect_to(&connections[opened], config->url, false);
    }
    int64_t after_bytes = status == NATS_OK ? rss_bytes_settled(config->server_pid) : -1;
    if (status == NATS_OK && after_bytes < 0) status = NATS_SYS_ERROR;
    if (status == NATS_OK) {
        print_prefix(config);
        printf(",\"connections\":%" PRId64 ",\"rss_before_bytes\":%" PRId64
               ",\"rss_after_bytes\":%" PRId64 ",\"bytes_per_conn\":%.0f}\n",
               count, before_bytes, after_bytes, (double)(after_bytes - before_bytes) / count);
    }
    for (int64_t index = 0; connections != NULL && index < opened; index++) {
        natsConnection_Destroy(connections[index]);
    }
    free(connections);
    return status;
}

/* ===================================================================== *
 * free-port, command line, main
 * ===================================================================== */

static int print_free_port(void)
{
    int socket_fd = socket(AF_INET, SOCK_STREAM, 0);
    if (socket_fd < 0) return 1;
    struct sockaddr_in address = {.sin_family = AF_INET, .sin_port = 0};
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t length = sizeof address;
    int result = bind(socket_fd, (struct sockaddr *)&address, sizeof address) != 0 ||
                 getsockname(socket_fd, (struct sockaddr *)&address, &length) != 0;
    if (result == 0) printf("%d\n", ntohs(address.sin_port));
    close(socket_fd);
    return result;
}

typedef struct workload {
    const char *name;
    natsStatus (*run)(const bench_config *config);
} workload;

static const workload WORKLOADS[] = {
    {"reqrep1", run_reqrep1}, {"reqrep8", run_reqrep8}, {"pubsub", run_pubsub},
    {"fanout", run_fanout},   {"idle", run_idle},
};

static const workload *workload_find(const char *name)
{
    for (size_t index = 0; index < sizeof WORKLOADS / sizeof WORKLOADS[0]; index++) {
        if (strcmp(WORKLOADS[index].name, name) == 0) return &WORKLOADS[index];
    }
    return NULL;
}

static int usage(void)
{
    fprintf(stderr, "usage: bench_nats [-l LABEL] [-d DURATION_MS] [-n COUNT] [-p SERVER_PID] "
                    "reqrep1|reqrep8|pubsub|fanout|idle URL\n"
                    "       bench_nats free-port\n");
    return 2;
}

static bool parse_arguments(bench_config *config, int argc, char **argv)
{
    int option;
    while ((option = getopt(argc, argv, "l:d:n:p:")) != -1) {
        switch (option) {
        case 'l': config->label = optarg; break;
        case 'd': config->duration_ms = strtoll(optarg, NULL, 10); break;
        case 'n': config->count = strtoll(optarg, NULL, 10); break;
        case 'p': config->server_pid = strtol(optarg, NULL, 10); break;
        default: return false;
        }
    }
    if (argc - optind != 2) return false;
    config->workload = argv[optind];
    config->url = argv[optind + 1];
    return bench_label_valid(config->label) && config->duration_ms >= 0 &&
           config->duration_ms <= REQREP_DURATION_MS_MAX && config->count >= 0;
}

int main(int argc, char **argv)
{
    if (argc == 2 && strcmp(argv[1], "free-port") == 0) return print_free_port();
    bench_config config = {.label = "server"};
    if (!parse_arguments(&config, argc, argv)) return usage();
    const workload *chosen = workload_find(config.workload);
    if (chosen == NULL) return usage();
    natsStatus status = nats_Open(-1);
    if (status == NATS_OK) status = chosen->run(&config);
    if (status != NATS_OK) {
        print_prefix(&config);
        printf(",\"error\":\"%s\"}\n", natsStatus_GetText(status));
    }
    fflush(stdout);
    nats_CloseAndWait(CLOSE_TIMEOUT_MS);
    return status == NATS_OK ? 0 : 1;
}
