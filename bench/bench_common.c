/* bench_common.c - the clock, start gate, latency samples, percentiles,
 * nats.c connection and echo responder that bench_nats.c and
 * bench_kingcobra.c share (see bench_common.h). */
#include "bench_common.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int64_t bench_now_ns(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (int64_t)now.tv_sec * BENCH_NS_PER_S + now.tv_nsec;
}

/* ===================================================================== *
 * Start gate
 * ===================================================================== */

void bench_gate_arrive_and_wait(bench_start_gate *gate)
{
    pthread_mutex_lock(&gate->mutex);
    gate->arrived_count++;
    pthread_cond_broadcast(&gate->changed);
    while (!gate->open)
        pthread_cond_wait(&gate->changed, &gate->mutex);
    pthread_mutex_unlock(&gate->mutex);
}

void bench_gate_open_after(bench_start_gate *gate, int arrived_count)
{
    assert(arrived_count >= 0 && arrived_count <= BENCH_REQUESTER_COUNT_MAX);
    pthread_mutex_lock(&gate->mutex);
    while (gate->arrived_count < arrived_count)
        pthread_cond_wait(&gate->changed, &gate->mutex);
    gate->open = true;
    pthread_cond_broadcast(&gate->changed);
    pthread_mutex_unlock(&gate->mutex);
}

/* ===================================================================== *
 * Latency samples and percentiles
 * ===================================================================== */

bool bench_latency_open(bench_latency *self)
{
    self->latency_ns = malloc(BENCH_LATENCY_SAMPLES_MAX * sizeof(uint32_t));
    return self->latency_ns != NULL;
}

void bench_latency_close(bench_latency *self)
{
    free(self->latency_ns);
    self->latency_ns = NULL;
}

bool bench_latency_full(const bench_latency *self)
{
    return self->request_count >= BENCH_LATENCY_SAMPLES_MAX;
}

void bench_latency_record(bench_latency *self, int64_t latency_ns)
{
    assert(self->request_count < BENCH_LATENCY_SAMPLES_MAX);
    self->latency_ns[self->request_count++] =
        latency_ns > UINT32_MAX ? UINT32_MAX : (uint32_t)latency_ns;
}

static int compare_uint32(const void *left, const void *right)
{
    uint32_t a = *(const uint32_t *)left;
    uint32_t b = *(const uint32_t *)right;
    return (a > b) - (a < b);
}

/* Merges every part's samples into one sorted array and reads the
 * percentiles from it. */
bench_summary_result bench_summarize(bench_summary *summary, const bench_latency *const *parts,
                                     int part_count)
{
    assert(part_count >= 0 && part_count <= BENCH_REQUESTER_COUNT_MAX);
    int64_t total = 0, errors = 0, start_ns = INT64_MAX, finish_ns = 0;
    for (int index = 0; index < part_count; index++) {
        total += parts[index]->request_count;
        errors += parts[index]->error_count;
        if (parts[index]->start_ns < start_ns) start_ns = parts[index]->start_ns;
        if (parts[index]->finish_ns > finish_ns) finish_ns = parts[index]->finish_ns;
    }
    if (total == 0) return BENCH_SUMMARY_EMPTY;
    uint32_t *all = malloc((size_t)total * sizeof *all);
    if (all == NULL) return BENCH_SUMMARY_NO_MEMORY;
    size_t offset = 0;
    for (int index = 0; index < part_count; index++) {
        size_t count = (size_t)parts[index]->request_count;
        memcpy(all + offset, parts[index]->latency_ns, count * sizeof *all);
        offset += count;
    }
    assert(offset == (size_t)total);
    qsort(all, (size_t)total, sizeof *all, compare_uint32);
    double elapsed_s = (double)(finish_ns - start_ns) / (double)BENCH_NS_PER_S;
    summary->request_count = total;
    summary->error_count = errors;
    summary->requests_per_s = (double)total / elapsed_s;
    summary->p50_us = all[(total - 1) * 50 / 100] / 1000.0;
    summary->p99_us = all[(total - 1) * 99 / 100] / 1000.0;
    free(all);
    return BENCH_SUMMARY_OK;
}

/* ===================================================================== *
 * nats.c connection, echo responder, output
 * ===================================================================== */

natsStatus bench_nats_connect(natsConnection **connection, const char *url, bool send_asap,
                              natsErrHandler error_handler)
{
    natsOptions *options = NULL;
    natsStatus status = natsOptions_Create(&options);
    if (status == NATS_OK) status = natsOptions_SetURL(options, url);
    if (status == NATS_OK) status = natsOptions_SetTimeout(options, BENCH_CONNECT_TIMEOUT_MS);
    if (status == NATS_OK) status = natsOptions_SetAllowReconnect(options, false);
    if (status == NATS_OK) status = natsOptions_SetSendAsap(options, send_asap);
    if (status == NATS_OK) status = natsOptions_UseGlobalMessageDelivery(options, false);
    if (status == NATS_OK && error_handler != NULL) {
        status = natsOptions_SetErrorHandler(options, error_handler, NULL);
    }
    if (status == NATS_OK) status = natsConnection_Connect(connection, options);
    natsOptions_Destroy(options);
    return status;
}

void bench_on_echo_request(natsConnection *connection, natsSubscription *subscription,
                           natsMsg *message, void *closure)
{
    const char *reply = natsMsg_GetReply(message);
    if (reply != NULL) {
        natsConnection_Publish(connection, reply, natsMsg_GetData(message),
                               natsMsg_GetDataLength(message));
    }
    natsMsg_Destroy(message);
}

bool bench_label_valid(const char *label)
{
    size_t length = strlen(label);
    if (length == 0 || length > BENCH_LABEL_BYTES_MAX) return false;
    return strspn(label, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.") ==
           length;
}

void bench_print_prefix(const char *workload, const char *label)
{
    printf("{\"workload\":\"%s\",\"server\":\"%s\"", workload, label);
}
