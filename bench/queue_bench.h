/* queue_bench.h - what queue_bench.c (closed-loop submits, the log,
 * recovery) and queue_bench_async.c (pipelined submits) share. */
#ifndef KC_BENCH_QUEUE_BENCH_H
#define KC_BENCH_QUEUE_BENCH_H

#include <nats/nats.h>
#include <stdbool.h>
#include <stdint.h>

int64_t now_ns(void);
int compare_u32(const void *a, const void *b);
/* Connects or exits. */
natsConnection *connect_to(const char *url);
/* The file-storage stream BENCH on kc.submit.> (exits on failure). */
void jetstream_stream(natsConnection *connection);
/* CLIENTS clients each keep WINDOW submits in flight for DURATION_MS;
 * prints one JSON line. */
int run_async(const char *url, int clients, int window, int payload_bytes, int64_t duration_ms,
              bool jetstream);

#endif
