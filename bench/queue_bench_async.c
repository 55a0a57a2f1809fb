/* queue_bench_async.c - pipelined durable submits (bench/run_queue.sh,
 * docs/queue.md "Speed"): CLIENTS clients, each on its own connection and
 * thread, keep WINDOW submits in flight for DURATION_MS, then wait for the
 * last acknowledgement.
 *
 *   kcobrad:   kc_client_submit_async to kc.submit.bench with
 *              kc_client_options.submits_in_flight_max = WINDOW (the call
 *              blocks while the window is full) and publish_buffered (nats.c
 *              writes in batches, as it does for the JetStream client);
 *   JetStream: js_PublishAsync to a file-storage stream on kc.submit.>, with
 *              jsOptions.PublishAsync.MaxPending = WINDOW (the call stalls
 *              while MaxPending are out), then js_PublishAsyncComplete.
 *
 * Both send PAYLOAD_BYTES-byte payloads. A latency runs from just before
 * the submit call (so it includes any wait for room in the window, the
 * same for both) to its acknowledgement; JetStream's start time rides in
 * the payload's first 8 bytes (its ack handler gets the message back),
 * kcobrad's in the closure. acked/s counts acknowledgements over the time
 * from the start to the last one. */
#include <inttypes.h>
#include <nats/nats.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kingcobra/kingcobra.h"
#include "queue_bench.h"

enum {
    CLIENTS_MAX = 64,
    WINDOW_MAX = 65536,
    RING_SLACK = 64, /* kcobrad frees a window place just before its callback */
    SAMPLES_PER_CLIENT_MAX = 1 << 20,
    PAYLOAD_BYTES_MIN = 8, /* the start time */
    PAYLOAD_BYTES_MAX_ASYNC = 64 * 1024,
    SUBMIT_TIMEOUT_MS = 10000,
};

typedef struct client_run client_run;

typedef struct in_flight {
    client_run *owner;
    int64_t started_ns;
} in_flight;

struct client_run {
    pthread_t thread;
    bool jetstream;
    int payload_bytes;
    int64_t deadline_ns;
    kc_client *client;
    natsConnection *connection;
    jsCtx *js;
    in_flight *ring; /* kcobrad: window + RING_SLACK entries */
    int ring_size;
    pthread_mutex_t lock; /* what follows */
    pthread_cond_t completed_changed;
    int64_t sent, completed, acked, errors;
    uint32_t *samples_us;
    int64_t sample_count;
    int64_t last_ack_ns;
};

static atomic_int ready_count;
static atomic_bool go;

static void record(client_run *self, bool ok, int64_t started_ns)
{
    int64_t now = now_ns();
    pthread_mutex_lock(&self->lock);
    self->completed++;
    if (ok) {
        self->acked++;
        self->last_ack_ns = now;
        int64_t took_us = (now - started_ns) / 1000;
        if (self->sample_count < SAMPLES_PER_CLIENT_MAX)
            self->samples_us[self->sample_count++] =
                took_us > UINT32_MAX ? UINT32_MAX : (uint32_t)took_us;
    } else {
        self->errors++;
    }
    pthread_cond_signal(&self->completed_changed);
    pthread_mutex_unlock(&self->lock);
}

static void on_submitted(kc_client *client, kc_err status, const char *id, int error_code,
                         const char *error_message, void *closure)
{
    in_flight *entry = closure;
    record(entry->owner, status == KC_OK, entry->started_ns);
}

static void on_published(jsCtx *js, natsMsg *message, jsPubAck *ack, jsPubAckErr *error,
                         void *closure)
{
    int64_t started_ns = 0;
    memcpy(&started_ns, natsMsg_GetData(message), sizeof started_ns);
    record(closure, error == NULL, started_ns);
    natsMsg_Destroy(message);
}

static bool send_one(client_run *self, char *payload)
{
    int64_t started_ns = now_ns();
    if (self->jetstream) {
        memcpy(payload, &started_ns, sizeof started_ns);
        return js_PublishAsync(self->js, "kc.submit.bench", payload, self->payload_bytes, NULL) ==
               NATS_OK;
    }
    in_flight *entry = &self->ring[self->sent % self->ring_size];
    *entry = (in_flight){.owner = self, .started_ns = started_ns};
    return kc_client_submit_async(self->client, "bench", payload, (size_t)self->payload_bytes,
                                  SUBMIT_TIMEOUT_MS, on_submitted, entry, NULL) == KC_OK;
}

static void *client_main(void *argument)
{
    client_run *self = argument;
    char payload[PAYLOAD_BYTES_MAX_ASYNC];
    memset(payload, 'b', sizeof payload);
    atomic_fetch_add(&ready_count, 1);
    while (!atomic_load(&go))
        usleep(100);
    while (now_ns() < self->deadline_ns) {
        bool sent = send_one(self, payload);
        pthread_mutex_lock(&self->lock);
        if (sent)
            self->sent++;
        else
            self->errors++;
        pthread_mutex_unlock(&self->lock);
    }
    if (self->jetstream) js_PublishAsyncComplete(self->js, NULL);
    pthread_mutex_lock(&self->lock);
    while (self->completed < self->sent)
        pthread_cond_wait(&self->completed_changed, &self->lock);
    pthread_mutex_unlock(&self->lock);
    return NULL;
}

static void client_connect(client_run *self, const char *url, int window)
{
    if (!self->jetstream) {
        kc_client_options options;
        kc_client_options_init(&options);
        options.servers = url;
        options.node = "bench";
        options.submits_in_flight_max = (uint32_t)window;
        options.publish_buffered = true; /* as nats.c's JetStream client does by default */
        if (kc_client_open(&self->client, &options) != KC_OK) {
            fprintf(stderr, "queue_bench: %s\n", kc_last_error());
            exit(1);
        }
        self->ring_size = window + RING_SLACK;
        self->ring = calloc((size_t)self->ring_size, sizeof *self->ring);
        return;
    }
    self->connection = connect_to(url);
    jsOptions options;
    jsOptions_Init(&options);
    options.PublishAsync.MaxPending = window;
    options.PublishAsync.StallWait = SUBMIT_TIMEOUT_MS;
    options.PublishAsync.AckHandler = on_published;
    options.PublishAsync.AckHandlerClosure = self;
    if (natsConnection_JetStream(&self->js, self->connection, &options) != NATS_OK) exit(1);
}

static void client_free(client_run *self)
{
    if (self->client != NULL) kc_client_close(self->client, SUBMIT_TIMEOUT_MS);
    jsCtx_Destroy(self->js);
    natsConnection_Destroy(self->connection);
    free(self->ring);
    free(self->samples_us);
    pthread_cond_destroy(&self->completed_changed);
    pthread_mutex_destroy(&self->lock);
}

static void print_result(client_run *runs, int clients, int window, int payload_bytes,
                         bool jetstream, int64_t started_ns)
{
    int64_t acked = 0, errors = 0, samples = 0, last_ns = started_ns;
    for (int index = 0; index < clients; index++) {
        acked += runs[index].acked;
        errors += runs[index].errors;
        samples += runs[index].sample_count;
        if (runs[index].last_ack_ns > last_ns) last_ns = runs[index].last_ack_ns;
    }
    uint32_t *all = malloc((size_t)(samples > 0 ? samples : 1) * sizeof(uint32_t));
    int64_t used = 0;
    for (int index = 0; index < clients; index++) {
        memcpy(all + used, runs[index].samples_us, (size_t)runs[index].sample_count * sizeof *all);
        used += runs[index].sample_count;
    }
    qsort(all, (size_t)used, sizeof *all, compare_u32);
    double elapsed_s = (double)(last_ns - started_ns) / 1e9;
    printf("{\"peer\":\"%s\",\"clients\":%d,\"window\":%d,\"payload_bytes\":%d,\"acked\":%" PRId64
           ",\"errors\":%" PRId64 ",\"acked_per_s\":%.0f,\"p50_us\":%u,\"p99_us\":%u}\n",
           jetstream ? "jetstream" : "kcobrad", clients, window, payload_bytes, acked, errors,
           elapsed_s > 0 ? (double)acked / elapsed_s : 0.0, used > 0 ? all[used / 2] : 0,
           used > 0 ? all[(used * 99) / 100] : 0);
    free(all);
}

int run_async(const char *url, int clients, int window, int payload_bytes, int64_t duration_ms,
              bool jetstream)
{
    if (clients < 1 || clients > CLIENTS_MAX || window < 1 || window > WINDOW_MAX ||
        payload_bytes < PAYLOAD_BYTES_MIN || payload_bytes > PAYLOAD_BYTES_MAX_ASYNC) {
        fprintf(stderr, "queue_bench: clients 1..%d, window 1..%d, payload %d..%d bytes\n",
                CLIENTS_MAX, WINDOW_MAX, PAYLOAD_BYTES_MIN, PAYLOAD_BYTES_MAX_ASYNC);
        return 2;
    }
    if (jetstream) {
        natsConnection *setup = connect_to(url);
        jetstream_stream(setup);
        natsConnection_Destroy(setup);
    }
    static client_run runs[CLIENTS_MAX];
    for (int index = 0; index < clients; index++) {
        client_run *self = &runs[index];
        *self = (client_run){.jetstream = jetstream, .payload_bytes = payload_bytes};
        self->samples_us = malloc(SAMPLES_PER_CLIENT_MAX * sizeof(uint32_t));
        pthread_mutex_init(&self->lock, NULL);
        pthread_cond_init(&self->completed_changed, NULL);
        client_connect(self, url, window);
    }
    for (int index = 0; index < clients; index++)
        pthread_create(&runs[index].thread, NULL, client_main, &runs[index]);
    while (atomic_load(&ready_count) < clients)
        usleep(1000);
    int64_t started_ns = now_ns();
    for (int index = 0; index < clients; index++)
        runs[index].deadline_ns = started_ns + duration_ms * 1000000;
    atomic_store(&go, true);
    for (int index = 0; index < clients; index++)
        pthread_join(runs[index].thread, NULL);
    print_result(runs, clients, window, payload_bytes, jetstream, started_ns);
    int64_t acked = 0;
    for (int index = 0; index < clients; index++) {
        acked += runs[index].acked;
        client_free(&runs[index]);
    }
    nats_Close();
    return acked > 0 ? 0 : 1;
}
