/* bench_common.h - what bench_nats.c and bench_kingcobra.c share, so that
 * both measure and print request/reply round trips the same way: the clock,
 * the gate that releases the requester threads together, the latency samples
 * and their percentiles, the nats.c connection, the echo responder and the
 * JSON prefix. Names carry the prefix bench_. Limits: the sample buffers are
 * allocated before the measurement and hold at most BENCH_LATENCY_SAMPLES_MAX
 * round trips per requester; a sample longer than UINT32_MAX ns is clamped. */
#ifndef KINGCOBRA_BENCH_COMMON_H
#define KINGCOBRA_BENCH_COMMON_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include <nats/nats.h>

enum {
    BENCH_REQUESTER_COUNT_MAX = 8,
    BENCH_LATENCY_SAMPLES_MAX = 1 << 21, /* per requester: >500k requests/s for 3 s */
    BENCH_CONNECT_TIMEOUT_MS = 5000,
    BENCH_LABEL_BYTES_MAX = 64,
};

#define BENCH_NS_PER_MS INT64_C(1000000)
#define BENCH_NS_PER_S INT64_C(1000000000)

/* CLOCK_MONOTONIC in ns. */
int64_t bench_now_ns(void);

/* Requesters warm up, then wait here so that all measure the same window. */
typedef struct bench_start_gate {
    pthread_mutex_t mutex;
    pthread_cond_t changed;
    int arrived_count;
    bool open;
} bench_start_gate;

#define BENCH_START_GATE_INITIALIZER                                                               \
    {                                                                                              \
        .mutex = PTHREAD_MUTEX_INITIALIZER, .changed = PTHREAD_COND_INITIALIZER                    \
    }

void bench_gate_arrive_and_wait(bench_start_gate *gate);
/* Waits until arrived_count requesters have arrived, then lets all go. */
void bench_gate_open_after(bench_start_gate *gate, int arrived_count);

/* One requester's measured window and its round-trip samples. */
typedef struct bench_latency {
    uint32_t *latency_ns; /* BENCH_LATENCY_SAMPLES_MAX entries */
    int64_t request_count;
    int64_t error_count;
    int64_t start_ns;
    int64_t finish_ns;
} bench_latency;

/* Allocates the samples; false when out of memory. */
bool bench_latency_open(bench_latency *self);
void bench_latency_close(bench_latency *self);
bool bench_latency_full(const bench_latency *self);
/* Stores one sample; the caller checks bench_latency_full first. */
void bench_latency_record(bench_latency *self, int64_t latency_ns);

/* Every requester's samples merged: requests/s over the window from the
 * first start to the last finish, p50 and p99 in µs. */
typedef struct bench_summary {
    int64_t request_count;
    int64_t error_count;
    double requests_per_s;
    double p50_us;
    double p99_us;
} bench_summary;

typedef enum bench_summary_result {
    BENCH_SUMMARY_OK = 0,
    BENCH_SUMMARY_EMPTY = 1, /* no round trip completed */
    BENCH_SUMMARY_NO_MEMORY = 2,
} bench_summary_result;

bench_summary_result bench_summarize(bench_summary *summary, const bench_latency *const *parts,
                                     int part_count);

/* One nats.c connection to url. Reconnecting is off: a server that goes
 * away must fail the run, not stall it. error_handler may be NULL. */
natsStatus bench_nats_connect(natsConnection **connection, const char *url, bool send_asap,
                              natsErrHandler error_handler);

/* A nats.c subscription callback that publishes the payload back to the
 * reply subject. */
void bench_on_echo_request(natsConnection *connection, natsSubscription *subscription,
                           natsMsg *message, void *closure);

/* The label goes into JSON unescaped, so it may hold only safe bytes. */
bool bench_label_valid(const char *label);

/* Prints {"workload":"...","server":"..." without closing the object. */
void bench_print_prefix(const char *workload, const char *label);

#endif
