/* queue_bench.c - the REQUEST_REPLY.queue's speed (bench/run_queue.sh drives
 * it; see docs/queue.md, "Speed").
 *
 *   queue_bench submit URL THREADS PAYLOAD_BYTES DURATION_MS
 *       durable submits to kcobrad's persister: each thread has its own
 *       connection and sends requests to kc.submit.bench one at a time,
 *       waiting for the acknowledgement (closed loop).
 *   queue_bench jetstream URL THREADS PAYLOAD_BYTES DURATION_MS
 *       the same shape against nats-server JetStream: a file-storage stream
 *       on kc.submit.> and js_Publish, which waits for the publish ack.
 *   queue_bench submit-async URL CLIENTS WINDOW PAYLOAD_BYTES DURATION_MS
 *   queue_bench jetstream-async URL CLIENTS WINDOW PAYLOAD_BYTES DURATION_MS
 *       pipelined: libkingcobra's asynchronous submits against the
 *       js_PublishAsync of nats.c, WINDOW in flight per client
 *       (queue_bench_async.c).
 *   queue_bench raw DIR RECORD_PAYLOAD_BYTES DURATION_MS THREADS
 *       the log alone (batch mode, THREADS appenders each waiting for its
 *       own completion) against a plain write + fdatasync loop of records
 *       of the same size in one preallocated file: one record per write
 *       (the device's limit for one writer) and the log's mean group per
 *       write (what the log should reach: grouped_ratio >= 0.9).
 *   queue_bench recover DIR BYTES
 *       writes a log of about BYTES (durability none, 256-byte payloads,
 *       half of the requests replied) unless DIR holds one, then measures
 *       the persister's recovery of it: scan, checksums, index.
 *
 * Each prints one JSON object on stdout. Latencies are per acknowledged
 * submit, in µs; p50/p99 over every sample of every thread. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <nats/nats.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "queue/log.h"
#include "queue/persister.h"
#include "queue_bench.h"

enum {
    THREADS_MAX = 256,
    SAMPLES_MAX = 1 << 20, /* per thread */
    PAYLOAD_BYTES_MAX = 64 * 1024,
    REQUEST_TIMEOUT_MS = 5000,
};

int64_t now_ns(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (int64_t)now.tv_sec * 1000000000 + now.tv_nsec;
}

typedef struct worker {
    pthread_t thread;
    const char *url;
    bool jetstream;
    int payload_bytes;
    int64_t deadline_ns;
    uint32_t *samples_us;
    int64_t count;
    int64_t errors;
    natsConnection *connection;
    jsCtx *js;
} worker;

static atomic_int ready_count;
static atomic_bool go;

int compare_u32(const void *a, const void *b)
{
    uint32_t left = *(const uint32_t *)a, right = *(const uint32_t *)b;
    return (left > right) - (left < right);
}

static bool submit_once(worker *self, natsMsg *message, const char *payload)
{
    if (self->jetstream) {
        jsPubAck *ack = NULL;
        jsErrCode code = 0;
        natsStatus status = js_Publish(&ack, self->js, "kc.submit.bench", payload,
                                       self->payload_bytes, NULL, &code);
        jsPubAck_Destroy(ack);
        return status == NATS_OK;
    }
    natsMsg *reply = NULL;
    natsStatus status =
        natsConnection_RequestMsg(&reply, self->connection, message, REQUEST_TIMEOUT_MS);
    const char *error = NULL;
    bool ok = status == NATS_OK && natsMsgHeader_Get(reply, "Kc-Error", &error) != NATS_OK;
    natsMsg_Destroy(reply);
    return ok;
}

static void *worker_main(void *argument)
{
    worker *self = argument;
    char payload[PAYLOAD_BYTES_MAX];
    memset(payload, 'b', sizeof payload);
    natsMsg *message = NULL;
    natsMsg_Create(&message, "kc.submit.bench", NULL, payload, self->payload_bytes);
    atomic_fetch_add(&ready_count, 1);
    while (!atomic_load(&go))
        usleep(100);
    while (now_ns() < self->deadline_ns && self->count < SAMPLES_MAX) {
        int64_t started = now_ns();
        if (!submit_once(self, message, payload)) {
            self->errors++;
            continue;
        }
        int64_t took_us = (now_ns() - started) / 1000;
        self->samples_us[self->count++] = took_us > UINT32_MAX ? UINT32_MAX : (uint32_t)took_us;
    }
    natsMsg_Destroy(message);
    return NULL;
}

natsConnection *connect_to(const char *url)
{
    natsOptions *options = NULL;
    natsConnection *connection = NULL;
    natsOptions_Create(&options);
    natsOptions_SetURL(options, url);
    natsOptions_SetTimeout(options, 5000);
    natsStatus status = natsConnection_Connect(&connection, options);
    natsOptions_Destroy(options);
    if (status != NATS_OK) {
        fprintf(stderr, "queue_bench: cannot connect to %s: %s\n", url, natsStatus_GetText(status));
        exit(1);
    }
    return connection;
}

void jetstream_stream(natsConnection *connection)
{
    jsCtx *js = NULL;
    if (natsConnection_JetStream(&js, connection, NULL) != NATS_OK) exit(1);
    jsStreamConfig config;
    jsStreamConfig_Init(&config);
    const char *subjects[] = {"kc.submit.>"};
    config.Name = "BENCH";
    config.Subjects = subjects;
    config.SubjectsLen = 1;
    config.Storage = js_FileStorage;
    jsStreamInfo *info = NULL;
    jsErrCode code = 0;
    natsStatus status = js_AddStream(&info, js, &config, NULL, &code);
    if (status != NATS_OK && code != JSStreamNameExistErr) {
        fprintf(stderr, "queue_bench: cannot create the stream: %s (%d)\n",
                natsStatus_GetText(status), (int)code);
        exit(1);
    }
    jsStreamInfo_Destroy(info);
    jsCtx_Destroy(js);
}

static int run_submit(const char *url, int threads, int payload_bytes, int64_t duration_ms,
                      bool jetstream)
{
    static worker workers[THREADS_MAX];
    if (jetstream) {
        natsConnection *setup = connect_to(url);
        jetstream_stream(setup);
        natsConnection_Destroy(setup);
    }
    for (int index = 0; index < threads; index++) {
        worker *self = &workers[index];
        *self = (worker){.url = url,
                         .jetstream = jetstream,
                         .payload_bytes = payload_bytes,
                         .samples_us = malloc(SAMPLES_MAX * sizeof(uint32_t))};
        self->connection = connect_to(url);
        if (jetstream && natsConnection_JetStream(&self->js, self->connection, NULL) != NATS_OK)
            return 1;
    }
    for (int index = 0; index < threads; index++)
        pthread_create(&workers[index].thread, NULL, worker_main, &workers[index]);
    while (atomic_load(&ready_count) < threads)
        usleep(1000);
    int64_t started = now_ns();
    for (int index = 0; index < threads; index++)
        workers[index].deadline_ns = started + duration_ms * 1000000;
    atomic_store(&go, true);
    int64_t total = 0, errors = 0;
    for (int index = 0; index < threads; index++) {
        pthread_join(workers[index].thread, NULL);
        total += workers[index].count;
        errors += workers[index].errors;
    }
    double elapsed_s = (double)(now_ns() - started) / 1e9;
    uint32_t *all = malloc((size_t)(total > 0 ? total : 1) * sizeof(uint32_t));
    int64_t used = 0;
    for (int index = 0; index < threads; index++) {
        memcpy(all + used, workers[index].samples_us, (size_t)workers[index].count * sizeof *all);
        used += workers[index].count;
        jsCtx_Destroy(workers[index].js);
        natsConnection_Destroy(workers[index].connection);
        free(workers[index].samples_us);
    }
    qsort(all, (size_t)used, sizeof *all, compare_u32);
    uint32_t p50 = used > 0 ? all[used / 2] : 0;
    uint32_t p99 = used > 0 ? all[(used * 99) / 100] : 0;
    printf("{\"peer\":\"%s\",\"threads\":%d,\"payload_bytes\":%d,\"acked\":%" PRId64
           ",\"errors\":%" PRId64 ",\"acked_per_s\":%.0f,\"p50_us\":%u,\"p99_us\":%u}\n",
           jetstream ? "jetstream" : "kcobrad", threads, payload_bytes, total, errors,
           (double)total / elapsed_s, p50, p99);
    free(all);
    nats_Close();
    return total > 0 ? 0 : 1;
}

/* ---- the log alone ---- */

typedef struct appender {
    pthread_t thread;
    kci_queue_log *log;
    int payload_bytes;
    int64_t deadline_ns;
    int64_t count;
    pthread_mutex_t lock;
    pthread_cond_t done_cond;
    bool done;
} appender;

static void on_appended(void *context, kc_err status, kci_position position)
{
    appender *self = context;
    pthread_mutex_lock(&self->lock);
    self->done = true;
    pthread_cond_signal(&self->done_cond);
    pthread_mutex_unlock(&self->lock);
}

static void *appender_main(void *argument)
{
    appender *self = argument;
    char payload[PAYLOAD_BYTES_MAX];
    memset(payload, 'r', sizeof payload);
    kci_record record = {.kind = KCI_RECORD_REQUEST,
                         .subject = "kc.req.bench",
                         .subject_length = 12,
                         .reply = "",
                         .client = "",
                         .payload = payload,
                         .payload_length = (uint32_t)self->payload_bytes};
    while (now_ns() < self->deadline_ns) {
        kci_uuid_v7(&record.id);
        self->done = false;
        if (kci_queue_log_append(self->log, &record, on_appended, self) != KC_OK) break;
        pthread_mutex_lock(&self->lock);
        while (!self->done)
            pthread_cond_wait(&self->done_cond, &self->lock);
        pthread_mutex_unlock(&self->lock);
        self->count++;
    }
    return NULL;
}

enum { PLAIN_FILE_BYTES = 256 << 20 }; /* preallocated like a log segment; writes wrap */

/* A plain write + fdatasync loop, GROUP records of RECORD_BYTES per write.
 * GROUP 1, appending to a growing file: the device's limit for one writer,
 * as measured before (kept comparable). The log's mean group, into a file
 * preallocated as the log's segments are: what the log should come close
 * to. Records per second. */
static double plain_sync_rate(const char *directory, size_t record_bytes, size_t group,
                              int64_t duration_ms)
{
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/plain.dat", directory);
    int fd = open(path, O_CREAT | O_TRUNC | O_WRONLY, 0644);
    if (fd < 0) return 0;
    size_t write_bytes = record_bytes * (group > 0 ? group : 1);
    char *bytes = calloc(1, write_bytes);
    bool preallocated = group > 1;
    if (bytes == NULL ||
        (preallocated && (posix_fallocate(fd, 0, PLAIN_FILE_BYTES) != 0 || fdatasync(fd) != 0))) {
        close(fd);
        free(bytes);
        return 0;
    }
    int64_t started = now_ns(), deadline = started + duration_ms * 1000000, count = 0;
    off_t offset = 0;
    while (now_ns() < deadline) {
        if (preallocated && offset + (off_t)write_bytes > PLAIN_FILE_BYTES) offset = 0;
        if (pwrite(fd, bytes, write_bytes, offset) != (ssize_t)write_bytes || fdatasync(fd) != 0)
            break;
        offset += (off_t)write_bytes;
        count += (int64_t)(group > 0 ? group : 1);
    }
    double rate = (double)count / ((double)(now_ns() - started) / 1e9);
    close(fd);
    unlink(path);
    free(bytes);
    return rate;
}

static int run_raw(const char *directory, int payload_bytes, int64_t duration_ms, int threads)
{
    kci_queue_log_config config = {
        .directory = directory, .durability = KCI_DURABILITY_BATCH, .preallocate = true};
    kci_queue_log *log = NULL;
    kci_scan_report report;
    char error[256];
    if (kci_queue_log_open(&log, &config, NULL, NULL, &report, error, sizeof error) != KC_OK) {
        fprintf(stderr, "queue_bench: %s\n", error);
        return 1;
    }
    static appender appenders[THREADS_MAX];
    int64_t started = now_ns();
    for (int index = 0; index < threads; index++) {
        appenders[index] = (appender){.log = log,
                                      .payload_bytes = payload_bytes,
                                      .deadline_ns = started + duration_ms * 1000000};
        pthread_mutex_init(&appenders[index].lock, NULL);
        pthread_cond_init(&appenders[index].done_cond, NULL);
        pthread_create(&appenders[index].thread, NULL, appender_main, &appenders[index]);
    }
    int64_t total = 0;
    for (int index = 0; index < threads; index++) {
        pthread_join(appenders[index].thread, NULL);
        total += appenders[index].count;
    }
    double log_rate = (double)total / ((double)(now_ns() - started) / 1e9);
    kci_queue_log_stats stats;
    kci_queue_log_stats_get(log, &stats);
    kci_queue_log_close(log);
    size_t record_bytes = KCI_RECORD_HEADER_BYTES + 12 + (size_t)payload_bytes;
    double per_sync =
        stats.sync_count > 0 ? (double)stats.append_count / (double)stats.sync_count : 0.0;
    double plain_rate = plain_sync_rate(directory, record_bytes, 1, duration_ms);
    size_t group = per_sync >= 2 ? (size_t)(per_sync + 0.5) : 2;
    double grouped_rate = plain_sync_rate(directory, record_bytes, group, duration_ms);
    printf("{\"record_bytes\":%zu,\"threads\":%d,\"log_appends_per_s\":%.0f,\"syncs\":%" PRIu64
           ",\"records_per_sync\":%.1f,\"plain_write_fdatasync_per_s\":%.0f,\"ratio\":%.2f"
           ",\"plain_grouped_per_s\":%.0f,\"grouped_ratio\":%.2f}\n",
           record_bytes, threads, log_rate, stats.sync_count, per_sync, plain_rate,
           plain_rate > 0 ? log_rate / plain_rate : 0.0, grouped_rate,
           grouped_rate > 0 ? log_rate / grouped_rate : 0.0);
    return 0;
}

/* ---- recovery ---- */

static void on_ignored(void *context, kc_err status, kci_position position)
{
}

static int fill_log(const char *directory, int64_t bytes)
{
    kci_queue_log_config config = {
        .directory = directory, .durability = KCI_DURABILITY_NONE, .preallocate = true};
    kci_queue_log *log = NULL;
    kci_scan_report report;
    char error[256];
    if (kci_queue_log_open(&log, &config, NULL, NULL, &report, error, sizeof error) != KC_OK) {
        fprintf(stderr, "queue_bench: %s\n", error);
        return 1;
    }
    char payload[256];
    memset(payload, 'q', sizeof payload);
    kci_record request = {.kind = KCI_RECORD_REQUEST,
                          .subject = "kc.req.bench",
                          .subject_length = 12,
                          .reply = "_INBOX.bench.1",
                          .reply_length = 14,
                          .client = "bench",
                          .client_length = 5,
                          .payload = payload,
                          .payload_length = sizeof payload};
    kci_record reply = request;
    reply.kind = KCI_RECORD_REPLY;
    reply.subject_length = reply.reply_length = 0;
    reply.payload_length = 16;
    int64_t written = 0;
    for (int64_t count = 0; written < bytes; count++) {
        kci_uuid_v7(&request.id);
        kci_queue_log_append(log, &request, on_ignored, NULL);
        written += (int64_t)kci_record_size(&request);
        if (count % 2 == 0) {
            reply.id = request.id;
            kci_queue_log_append(log, &reply, on_ignored, NULL);
            written += (int64_t)kci_record_size(&reply);
        }
    }
    kci_queue_log_close(log);
    return 0;
}

static int run_recover(const char *directory, int64_t bytes)
{
    char first[PATH_MAX];
    kci_segment_path(first, directory, 1);
    struct stat status;
    if (stat(first, &status) != 0 && fill_log(directory, bytes) != 0) return 1;
    /* The measured part: what kcobrad does at start, minus the connection. */
    int64_t started = now_ns();
    kci_persister_config config = kci_persister_config_defaults(directory);
    config.retention_ms = KCI_PERSISTER_RETENTION_KEEP;
    kci_persister *persister = NULL;
    char error[256];
    if (kci_persister_start(&persister, NULL, &config, error, sizeof error) != KC_OK) {
        fprintf(stderr, "queue_bench: %s\n", error);
        return 1;
    }
    int64_t recovered_ns = now_ns() - started;
    kci_persister_stats stats;
    kci_persister_stats_get(persister, &stats);
    kci_persister_stop(persister, 0);
    printf("{\"bytes\":%" PRIu64 ",\"records\":%" PRIu64 ",\"requests\":%" PRIu64
           ",\"pending\":%" PRIu64 ",\"recover_ms\":%.0f,\"scan_ms\":%.0f,\"mib_per_s\":%.0f}\n",
           stats.recovery.record_bytes, stats.recovery.record_count, stats.requests, stats.pending,
           (double)recovered_ns / 1e6, (double)stats.recovery.duration_us / 1e3,
           (double)stats.recovery.record_bytes / 1048576.0 / ((double)recovered_ns / 1e9));
    return 0;
}

int main(int argc, char **argv)
{
    if (argc >= 6 && (strcmp(argv[1], "submit") == 0 || strcmp(argv[1], "jetstream") == 0)) {
        int threads = atoi(argv[3]);
        if (threads < 1 || threads > THREADS_MAX) threads = 64;
        int payload = atoi(argv[4]);
        if (payload < 0 || payload > PAYLOAD_BYTES_MAX) payload = 256;
        return run_submit(argv[2], threads, payload, atoll(argv[5]),
                          strcmp(argv[1], "jetstream") == 0);
    }
    if (argc >= 7 &&
        (strcmp(argv[1], "submit-async") == 0 || strcmp(argv[1], "jetstream-async") == 0))
        return run_async(argv[2], atoi(argv[3]), atoi(argv[4]), atoi(argv[5]), atoll(argv[6]),
                         strcmp(argv[1], "jetstream-async") == 0);
    if (argc >= 6 && strcmp(argv[1], "raw") == 0) {
        int threads = atoi(argv[5]);
        if (threads < 1 || threads > THREADS_MAX) threads = 64;
        return run_raw(argv[2], atoi(argv[3]), atoll(argv[4]), threads);
    }
    if (argc >= 4 && strcmp(argv[1], "recover") == 0) return run_recover(argv[2], atoll(argv[3]));
    fprintf(stderr, "usage: queue_bench submit|jetstream URL THREADS PAYLOAD_BYTES DURATION_MS\n"
                    "       queue_bench submit-async|jetstream-async URL CLIENTS WINDOW "
                    "PAYLOAD_BYTES DURATION_MS\n"
                    "       queue_bench raw DIR PAYLOAD_BYTES DURATION_MS THREADS\n"
                    "       queue_bench recover DIR BYTES\n");
    return 2;
}
