/* serve.c - the ledger service (serve.h): the request queue, the workers,
 * the writer with group commit, the reaper's schedule, the replies.
 *
 * A write request becomes a job: the worker parses it, fills in the coins'
 * denominations from a read snapshot (they never change) and verifies
 * every signature, so the writer only checks ownership and writes. A
 * transfer that fails verification gets its outcome there and the writer
 * skips it. The writer takes every job queued (up to
 * KCI_LEDGER_BATCH_TRANSFERS_MAX transfers), applies them in order in one
 * LMDB write transaction, commits (LMDB syncs), then replies: a request is
 * acknowledged only once its effect is on disk. If the commit fails,
 * nothing of the batch happened and every job in it is answered 500 (or
 * 507 when the map is full). The store (store.h) is the only way to LMDB:
 * this file sees read snapshots, batches and kc_err.
 *
 * Replies carry the KingCobra headers (Kc-Reply-To the request's Kc-Id) and,
 * for an error, Kc-Error "<code> <message>" with the same in the JSON body. */
#include "serve.h"
#include "serve_internal.h"

#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/log.h"
#include "ledger/codec.h"
#include "ledger/metrics.h"
#include "ledger/query.h"
#include "ledger/store.h"
#include "service/answer.h"
#include "service/headers.h"
#include "service/subscriptions.h"

#define NODE_DEFAULT "ledger"

enum {
    REPLY_BYTES_DEFAULT = 1024 * 1024, /* when the server does not say its max_payload */
};

typedef kci_ledger_job job;

/* ---- replies ---------------------------------------------------------------- */

static void publish(kci_ledger *ledger, natsMsg *request, const kci_kc_headers *headers, int code,
                    const char *message, const char *body)
{
    kci_answer answer = {.node = ledger->node,
                         .type = "ledger",
                         .reply_to = headers->id,
                         .code = code,
                         .message = message,
                         .payload = body,
                         .payload_length = strlen(body),
                         .stats = &ledger->endpoint_stats};
    kci_answer_send(ledger->connection, request, &answer, "ledger");
}

/* Takes body (may be NULL: out of memory). */
static void reply_json(kci_ledger *ledger, natsMsg *request, const kci_kc_headers *headers,
                       json_t *body)
{
    char *text = body != NULL ? json_dumps(body, JSON_COMPACT) : NULL;
    json_decref(body);
    if (text == NULL)
        publish(ledger, request, headers, KCI_LEDGER_CODE_INTERNAL, "out of memory",
                "{\"error\":\"out of memory\",\"code\":500}");
    else
        publish(ledger, request, headers, 0, "", text);
    free(text);
}

static void reply_error(kci_ledger *ledger, natsMsg *request, const kci_kc_headers *headers,
                        const kci_ledger_outcome *outcome)
{
    int code = kci_ledger_result_code(outcome->result);
    assert(code > 0);
    kci_ledger_metrics_refused(outcome->result);
    json_t *body = json_pack("{s:s, s:i}", "error", outcome->message, "code", code);
    char *text = body != NULL ? json_dumps(body, JSON_COMPACT) : NULL;
    json_decref(body);
    publish(ledger, request, headers, code, outcome->message, text != NULL ? text : "{}");
    free(text);
}

/* ---- the writer ------------------------------------------------------------------ */

/* Applies one job inside the batch. A mint is all grants or none (the
 * store nests it); transfers and exchanges check before they write; one
 * refused in a worker (its outcome set) is skipped. */
static kc_err apply_job(kci_ledger_batch *batch, job *work)
{
    kci_ledger_request *request = &work->request;
    assert(work->outcomes != NULL && work->issue_ids != NULL && work->issued != NULL);
    assert(request->operation != KCI_LEDGER_OP_MINT || work->issue_count == request->grant_count);
    switch (request->operation) {
    case KCI_LEDGER_OP_MINT:
        if (!request->has_mint_id)
            return kci_ledger_apply_mint(batch, request->grants, request->grant_count,
                                         work->issue_ids, work->issued, &work->outcomes[0]);
        for (uint32_t index = 0; index < request->grant_count; index++)
            kci_ledger_mint_ids_derive(request->mint_id, index, work->issue_ids[index],
                                       work->issued[index], request->grants[index].denominations,
                                       request->grants[index].denomination_count);
        return kci_ledger_apply_mint_given(batch, request->grants, request->grant_count,
                                           (const uint8_t(*)[KCI_LEDGER_ID_BYTES])work->issue_ids,
                                           work->issued, &work->outcomes[0]);
    case KCI_LEDGER_OP_TRANSFER:
    case KCI_LEDGER_OP_TRANSFER_BATCH: {
        kc_err err = KC_OK;
        for (uint32_t index = 0; err == KC_OK && index < request->transfer_count; index++)
            if (work->outcomes[index].result == KCI_LEDGER_OK)
                err = kci_ledger_apply_transfer(batch, &request->transfers[index],
                                                &work->outcomes[index]);
        return err;
    }
    case KCI_LEDGER_OP_EXCHANGE:
        if (work->outcomes[0].result != KCI_LEDGER_OK) return KC_OK;
        return kci_ledger_apply_exchange(batch, &request->transfers[0], work->issue_ids[0],
                                         work->issued[0], &work->outcomes[0]);
    case KCI_LEDGER_OP_PAYMENT:
        return kci_ledger_apply_payment(batch, request->transfer, request->payee,
                                        request->min_amount, request->request_id,
                                        &work->outcomes[0]);
    case KCI_LEDGER_OP_HOLD:
        if (work->outcomes[0].result != KCI_LEDGER_OK) return KC_OK;
        return kci_ledger_apply_hold(batch, &request->transfers[0], &work->outcomes[0]);
    case KCI_LEDGER_OP_HOLD_CLAIM:
    case KCI_LEDGER_OP_HOLD_POST:
    case KCI_LEDGER_OP_HOLD_VOID:
        return kci_ledger_apply_settle(batch, kci_ledger_settle_of(request->operation),
                                       request->transfer, request->payee, request->request_id,
                                       request->min_amount, request->signature, &work->outcomes[0]);
    default: assert(false); return KC_ERR_INVALID_ARGUMENT;
    }
}

static json_t *transfer_result(const kci_ledger_transfer *transfer,
                               const kci_ledger_outcome *outcome)
{
    bool ok = outcome->result == KCI_LEDGER_OK;
    json_t *result =
        json_pack("{s:o, s:b}", "transfer", kci_ledger_id_json(transfer->id), "ok", ok);
    if (!ok) {
        json_object_set_new(result, "code", json_integer(kci_ledger_result_code(outcome->result)));
        json_object_set_new(result, "error", json_string(outcome->message));
    } else if (outcome->replayed) {
        json_object_set_new(result, "replayed", json_true());
    }
    return result;
}

static json_t *issued_json(const job *work, uint32_t index, const uint8_t to[KCI_LEDGER_KEY_BYTES],
                           uint32_t count)
{
    return json_pack("{s:o, s:o, s:o}", "transfer", kci_ledger_id_json(work->issue_ids[index]),
                     "to", kci_ledger_address_json(to), "coins",
                     kci_ledger_coins_json(work->issued[index], count));
}

/* A transfer's outcome, as it is answered: applied or refused (why). */
static void count_transfer(const kci_ledger_outcome *outcome)
{
    if (outcome->result != KCI_LEDGER_OK)
        kci_ledger_metrics_refused(outcome->result);
    else if (!outcome->replayed)
        kci_counter_inc(&kci_ledger_metric_values.transfers);
}

static void reply_job(kci_ledger *ledger, job *work)
{
    kci_ledger_request *request = &work->request;
    if (request->operation == KCI_LEDGER_OP_TRANSFER_BATCH) {
        json_t *results = json_array();
        uint32_t applied = 0;
        for (uint32_t index = 0; index < request->transfer_count; index++) {
            count_transfer(&work->outcomes[index]);
            applied += work->outcomes[index].result == KCI_LEDGER_OK;
            json_array_append_new(
                results, transfer_result(&request->transfers[index], &work->outcomes[index]));
        }
        reply_json(ledger, work->message, &work->headers,
                   json_pack("{s:o, s:I, s:I}", "results", results, "applied", (json_int_t)applied,
                             "refused", (json_int_t)(request->transfer_count - applied)));
        return;
    }
    if (work->outcomes[0].result != KCI_LEDGER_OK) {
        reply_error(ledger, work->message, &work->headers, &work->outcomes[0]);
        return;
    }
    json_t *body = NULL;
    if (request->operation == KCI_LEDGER_OP_TRANSFER || request->operation == KCI_LEDGER_OP_HOLD) {
        count_transfer(&work->outcomes[0]);
        body = transfer_result(&request->transfers[0], &work->outcomes[0]);
    } else if (kci_ledger_settle_of(request->operation) != 0) {
        body = json_pack("{s:o, s:s, s:b}", "hold", kci_ledger_id_json(request->transfer), "state",
                         work->outcomes[0].message, "replayed", work->outcomes[0].replayed);
        if (body != NULL && request->request_id[0] != '\0')
            json_object_set_new(body, "request", json_string(request->request_id));
    } else if (request->operation == KCI_LEDGER_OP_MINT) {
        json_t *issued = json_array();
        for (uint32_t index = 0; index < request->grant_count; index++)
            json_array_append_new(issued, issued_json(work, index, request->grants[index].to,
                                                      request->grants[index].denomination_count));
        body = json_pack("{s:o}", "issued", issued);
        if (work->outcomes[0].replayed) json_object_set_new(body, "replayed", json_true());
    } else if (request->operation == KCI_LEDGER_OP_EXCHANGE) {
        const kci_ledger_transfer *exchange = &request->transfers[0];
        body = transfer_result(exchange, &work->outcomes[0]);
        if (!work->outcomes[0].replayed)
            json_object_set_new(body, "issued",
                                issued_json(work, 0, exchange->from, exchange->denomination_count));
    } else {
        body = json_pack("{s:b, s:o, s:s, s:b}", "paid", 1, "transfer",
                         kci_ledger_id_json(request->transfer), "request", request->request_id,
                         "replayed", work->outcomes[0].replayed);
    }
    reply_json(ledger, work->message, &work->headers, body);
}

/* A request is answered (or dropped): it no longer counts against the bounds. */
static void release_message(kci_ledger *ledger, natsMsg *message)
{
    if (message == NULL) return;
    size_t length = (size_t)natsMsg_GetDataLength(message);
    pthread_mutex_lock(&ledger->lock);
    assert(ledger->held_count > 0 && ledger->held_bytes >= length);
    ledger->held_count--;
    ledger->held_bytes -= length;
    pthread_mutex_unlock(&ledger->lock);
    natsMsg_Destroy(message);
}

static void job_free(kci_ledger *ledger, job *work)
{
    if (work == NULL) return;
    for (uint32_t index = 0; work->issued != NULL && index < work->issue_count; index++)
        free(work->issued[index]);
    free(work->issued);
    free(work->issue_ids);
    free(work->outcomes);
    kci_ledger_request_free(&work->request);
    release_message(ledger, work->message);
    free(work);
}

/* Applies jobs (a list) in one transaction and answers each. */
static void write_batch(kci_ledger *ledger, job *jobs)
{
    assert(jobs != NULL);
    kci_ledger_batch *batch = NULL;
    kc_err err = kci_ledger_batch_begin(&batch, ledger->store);
    for (job *work = jobs; err == KC_OK && work != NULL; work = work->next)
        err = apply_job(batch, work);
    if (err == KC_OK)
        err = kci_ledger_batch_commit(batch);
    else
        kci_ledger_batch_abort(batch);
    kci_ledger_outcome failed = {0};
    if (err != KC_OK) {
        char detail[KCI_LEDGER_ERROR_BYTES_MAX] = "";
        snprintf(detail, sizeof detail, "%s", kc_last_error());
        kci_error("ledger: a batch failed and was not applied: %s", detail);
        /* Nothing of the batch is on disk: every request in it failed. */
        kci_ledger_refuse_with(
            &failed, err == KC_ERR_LIMIT ? KCI_LEDGER_STORAGE_FULL : KCI_LEDGER_STORAGE_FAILED,
            "%s: %s", kci_ledger_result_message(KCI_LEDGER_STORAGE_FAILED), detail);
    }
    kci_ledger_jobs_answer(ledger, jobs, err != KC_OK ? &failed : NULL);
}

void kci_ledger_jobs_answer(kci_ledger *ledger, job *jobs, const kci_ledger_outcome *failed)
{
    uint64_t count = 0;
    for (const job *work = jobs; work != NULL; work = work->next)
        count++;
    if (count > 0) kci_histogram_observe(&kci_ledger_metric_values.batch_requests, count);
    for (job *work = jobs, *next; work != NULL; work = next) {
        next = work->next;
        if (failed != NULL)
            reply_error(ledger, work->message, &work->headers, failed);
        else
            reply_job(ledger, work);
        job_free(ledger, work);
    }
}

/* The writer's tick: holds past their expiry go back to their payers (by
 * this batch's clock), then the reaper runs if it is due. */
static void reap(kci_ledger *ledger, bool reap_due)
{
    kci_ledger_batch *batch = NULL;
    uint32_t reaped = 0, expired = 0;
    kc_err err = kci_ledger_batch_begin(&batch, ledger->store);
    if (err == KC_OK) err = kci_ledger_expire(batch, KCI_LEDGER_EXPIRE_COUNT_MAX, &expired);
    if (err == KC_OK && reap_due)
        err =
            kci_ledger_reap(batch, ledger->config.reap_age_ms, KCI_LEDGER_REAP_COUNT_MAX, &reaped);
    if (err == KC_OK && expired > 0)
        kci_info("ledger: %" PRIu32 " holds expired and went back to their payers", expired);
    if (err == KC_OK && reaped + expired > 0)
        err = kci_ledger_batch_commit(batch);
    else
        kci_ledger_batch_abort(batch);
    if (err != KC_OK)
        kci_warn("ledger: the reaper failed: %s", kc_last_error());
    else if (reaped > 0)
        kci_info("ledger: the reaper freed the trails of %" PRIu32 " retired coins", reaped);
}

/* Takes the first jobs of the list up to the batch bound (lock held). */
static job *take_first_jobs(kci_ledger *ledger)
{
    job *first = ledger->jobs_first, *last = first;
    uint32_t weight = first != NULL ? first->transfer_weight : 0;
    while (last != NULL && last->next != NULL &&
           weight + last->next->transfer_weight <= KCI_LEDGER_BATCH_TRANSFERS_MAX) {
        last = last->next;
        weight += last->transfer_weight;
    }
    if (last != NULL) {
        ledger->jobs_first = last->next;
        if (ledger->jobs_first == NULL) ledger->jobs_last = NULL;
        last->next = NULL;
    }
    return first;
}

/* Takes queued jobs up to the batch bound; NULL when stopping and idle. */
static job *take_jobs(kci_ledger *ledger, int64_t *next_reap_ms)
{
    pthread_mutex_lock(&ledger->lock);
    while (ledger->jobs_first == NULL &&
           !(ledger->stopping && ledger->jobs_in_flight == 0 && ledger->queue_count == 0)) {
        if (kci_monotonic_ms() >= *next_reap_ms) break;
        struct timespec deadline;
        clock_gettime(CLOCK_MONOTONIC, &deadline);
        deadline.tv_sec += 1;
        pthread_cond_timedwait(&ledger->jobs_ready, &ledger->lock, &deadline);
    }
    job *first = take_first_jobs(ledger);
    pthread_mutex_unlock(&ledger->lock);
    return first;
}

job *kci_ledger_jobs_take(kci_ledger *ledger, int64_t wait_ms)
{
    struct timespec deadline = kci_deadline_after(CLOCK_MONOTONIC, wait_ms);
    pthread_mutex_lock(&ledger->lock);
    while (ledger->jobs_first == NULL &&
           !(ledger->stopping && ledger->jobs_in_flight == 0 && ledger->queue_count == 0))
        if (pthread_cond_timedwait(&ledger->jobs_ready, &ledger->lock, &deadline) != 0) break;
    job *first = take_first_jobs(ledger);
    pthread_mutex_unlock(&ledger->lock);
    return first;
}

bool kci_ledger_stopped_idle(kci_ledger *ledger)
{
    pthread_mutex_lock(&ledger->lock);
    bool done = ledger->stopping && ledger->jobs_first == NULL && ledger->jobs_in_flight == 0 &&
                ledger->queue_count == 0;
    pthread_mutex_unlock(&ledger->lock);
    return done;
}

static void *writer_main(void *argument)
{
    kci_ledger *ledger = argument;
    if (ledger->replica != NULL) {
        kci_ledger_replica_run(ledger->replica);
        return NULL;
    }
    int64_t next_reap_ms = kci_monotonic_ms() + ledger->config.reap_interval_ms;
    int64_t next_tick_ms = kci_monotonic_ms() + KCI_LEDGER_EXPIRE_INTERVAL_MS;
    for (;;) {
        int64_t wake_ms = next_tick_ms < next_reap_ms ? next_tick_ms : next_reap_ms;
        job *jobs = take_jobs(ledger, &wake_ms);
        if (jobs != NULL) write_batch(ledger, jobs); /* a busy ledger still ticks: */
        if (kci_monotonic_ms() >= wake_ms) {
            bool reap_due = kci_monotonic_ms() >= next_reap_ms;
            reap(ledger, reap_due);
            if (reap_due) next_reap_ms = kci_monotonic_ms() + ledger->config.reap_interval_ms;
            next_tick_ms = kci_monotonic_ms() + KCI_LEDGER_EXPIRE_INTERVAL_MS;
            continue;
        }
        if (jobs != NULL) continue;
        if (kci_ledger_stopped_idle(ledger)) return NULL;
    }
}

/* ---- workers ------------------------------------------------------------------------ */

/* Denominations and signatures of every transfer in the job, outside the
 * writer: a refused one gets its outcome and the writer skips it. */
static void verify_transfers(kci_ledger *ledger, job *work)
{
    kci_ledger_read *read = NULL;
    kc_err err = kci_ledger_read_begin(&read, ledger->store);
    char detail[KCI_LEDGER_ERROR_BYTES_MAX] = "";
    for (uint32_t index = 0; index < work->request.transfer_count; index++) {
        kci_ledger_transfer *transfer = &work->request.transfers[index];
        kci_ledger_outcome *outcome = &work->outcomes[index];
        if (transfer->kind == KCI_LEDGER_KIND_EXCHANGE)
            memcpy(transfer->to, kci_ledger_store_mint_key(ledger->store), KCI_LEDGER_KEY_BYTES);
        if (err == KC_OK) err = kci_ledger_fill_denominations(read, transfer, outcome);
        if (err != KC_OK) {
            if (detail[0] == '\0') snprintf(detail, sizeof detail, "%s", kc_last_error());
            kci_ledger_refuse_with(outcome, KCI_LEDGER_READ_FAILED, "%s: %s",
                                   kci_ledger_result_message(KCI_LEDGER_READ_FAILED), detail);
            continue;
        }
        if (outcome->result != KCI_LEDGER_OK) continue;
        int64_t start_ns = kci_metrics_now_ns();
        bool verified = kci_ledger_verify(transfer, transfer->from);
        kci_histogram_observe_since(&kci_ledger_metric_values.verify_duration, start_ns);
        if (verified) continue;
        char id[37];
        kci_ledger_id_text(id, transfer->id);
        kci_ledger_refuse_with(outcome, KCI_LEDGER_BAD_SIGNATURE, "transfer %s: %s", id,
                               kci_ledger_result_message(KCI_LEDGER_BAD_SIGNATURE));
    }
    kci_ledger_read_end(read);
}

static job *job_new(kci_ledger *ledger, natsMsg *message, const kci_kc_headers *headers,
                    const kci_ledger_request *request)
{
    job *work = calloc(1, sizeof *work);
    if (work == NULL) return NULL;
    work->message = message;
    work->headers = *headers;
    work->request = *request;
    uint32_t count = request->transfer_count > 0 ? request->transfer_count : 1;
    uint32_t issues = request->grant_count > 0 ? request->grant_count : 1;
    work->issue_count = issues;
    work->outcomes = calloc(count, sizeof *work->outcomes);
    work->issue_ids = calloc(issues, sizeof *work->issue_ids);
    work->issued = calloc(issues, sizeof *work->issued);
    bool ok = work->outcomes != NULL && work->issue_ids != NULL && work->issued != NULL;
    for (uint32_t index = 0; ok && index < issues; index++) {
        uint32_t coins =
            request->operation == KCI_LEDGER_OP_MINT
                ? request->grants[index].denomination_count
                : (request->transfer_count > 0 ? request->transfers[0].denomination_count : 0);
        work->issued[index] = calloc(coins + 1, sizeof(kci_ledger_coin));
        ok = work->issued[index] != NULL;
        work->transfer_weight += coins;
    }
    work->transfer_weight += count;
    if (!ok) {
        work->message = NULL; /* the caller still owns it */
        work->request = (kci_ledger_request){0};
        job_free(ledger, work);
        return NULL;
    }
    return work;
}

static void queue_job(kci_ledger *ledger, job *work)
{
    pthread_mutex_lock(&ledger->lock);
    if (ledger->jobs_last != NULL)
        ledger->jobs_last->next = work;
    else
        ledger->jobs_first = work;
    ledger->jobs_last = work;
    pthread_cond_signal(&ledger->jobs_ready);
    pthread_mutex_unlock(&ledger->lock);
}

/* One audit at a time: it checks every signature, and two at once would
 * take both default workers from the writes. */
static json_t *run_audit(kci_ledger *ledger, kci_ledger_read *read, kci_ledger_outcome *outcome)
{
    if (atomic_exchange(&ledger->audit_running, true)) {
        kci_ledger_refuse(outcome, KCI_LEDGER_AUDIT_BUSY);
        return NULL;
    }
    json_t *body = kci_ledger_audit(read, outcome);
    atomic_store(&ledger->audit_running, false);
    return body;
}

/* A read: answered here from a snapshot. Takes request's contents. */
static void answer_read(kci_ledger *ledger, natsMsg *message, const kci_kc_headers *headers,
                        kci_ledger_request *request)
{
    kci_ledger_read *read = NULL;
    kci_ledger_outcome outcome = {0};
    json_t *body = NULL;
    kc_err err = kci_ledger_read_begin(&read, ledger->store);
    if (err == KC_OK) {
        switch (request->operation) {
        case KCI_LEDGER_OP_BALANCE: body = kci_ledger_query_balance(read, request, &outcome); break;
        case KCI_LEDGER_OP_COINS:
            body = kci_ledger_query_coins(read, request, ledger->reply_bytes_max, &outcome);
            break;
        case KCI_LEDGER_OP_TRAIL: body = kci_ledger_query_trail(read, request, &outcome); break;
        case KCI_LEDGER_OP_HISTORY:
            body = kci_ledger_query_history(read, request, ledger->reply_bytes_max, &outcome);
            break;
        case KCI_LEDGER_OP_TRANSFER_GET:
            body = kci_ledger_query_transfer(read, request, &outcome);
            break;
        default: body = run_audit(ledger, read, &outcome); break;
        }
        kci_ledger_read_end(read);
    }
    if (body == NULL && outcome.result == KCI_LEDGER_OK)
        kci_ledger_refuse_with(&outcome, KCI_LEDGER_READ_FAILED, "%s: %s",
                               kci_ledger_result_message(KCI_LEDGER_READ_FAILED),
                               err != KC_OK ? kc_last_error() : "out of memory");
    if (outcome.result != KCI_LEDGER_OK)
        reply_error(ledger, message, headers, &outcome);
    else
        reply_json(ledger, message, headers, body);
    kci_ledger_request_free(request);
    release_message(ledger, message);
}

static bool is_write(kci_ledger_operation operation)
{
    return operation == KCI_LEDGER_OP_MINT || operation == KCI_LEDGER_OP_TRANSFER ||
           operation == KCI_LEDGER_OP_TRANSFER_BATCH || operation == KCI_LEDGER_OP_EXCHANGE ||
           operation == KCI_LEDGER_OP_PAYMENT || operation == KCI_LEDGER_OP_HOLD ||
           kci_ledger_settle_of(operation) != 0;
}

/* Parses, checks, and either answers or hands over to the writer. */
static void handle(kci_ledger *ledger, natsMsg *message)
{
    kci_kc_headers headers;
    kci_headers_clear(&headers);
    kci_ledger_outcome outcome = {0};
    kci_ledger_request request = {0};
    kci_ledger_operation operation = kci_ledger_operation_from_subject(natsMsg_GetSubject(message));
    char error[KCI_LEDGER_ERROR_BYTES_MAX] = {0};
    if (kci_headers_read(message, false, &headers) != KC_OK ||
        kci_headers_observe(kci_process_hlc(), &headers, NULL) != KC_OK)
        kci_ledger_refuse_with(&outcome, KCI_LEDGER_BAD_HEADERS, "%s", kc_last_error());
    else if (operation == KCI_LEDGER_OP_UNKNOWN)
        kci_ledger_refuse_with(&outcome, KCI_LEDGER_OPERATION_UNKNOWN,
                               "no such ledger operation: %.80s (see docs/ledger.md)",
                               natsMsg_GetSubject(message));
    else if (operation == KCI_LEDGER_OP_MINT && ledger->config.mint_disabled)
        kci_ledger_refuse(&outcome, KCI_LEDGER_MINT_DISABLED);
    else {
        kc_err err =
            kci_ledger_request_parse(&request, operation, natsMsg_GetData(message),
                                     (size_t)natsMsg_GetDataLength(message), error, sizeof error);
        if (err != KC_OK)
            kci_ledger_refuse_with(
                &outcome, err == KC_ERR_TOO_LARGE ? KCI_LEDGER_TOO_LARGE : KCI_LEDGER_MALFORMED,
                "kc.ledger.%s: %s", kci_ledger_operation_name(operation), error);
    }
    if (outcome.result != KCI_LEDGER_OK) {
        kci_debug("ledger: refused %s: %d %s", natsMsg_GetSubject(message),
                  kci_ledger_result_code(outcome.result), outcome.message);
        reply_error(ledger, message, &headers, &outcome);
        release_message(ledger, message);
        return;
    }
    if (!is_write(operation)) {
        answer_read(ledger, message, &headers, &request);
        return;
    }
    job *work = job_new(ledger, message, &headers, &request);
    if (work == NULL) {
        kci_ledger_refuse(&outcome, KCI_LEDGER_OUT_OF_MEMORY);
        reply_error(ledger, message, &headers, &outcome);
        kci_ledger_request_free(&request);
        release_message(ledger, message);
        return;
    }
    if (work->request.transfer_count > 0) verify_transfers(ledger, work);
    queue_job(ledger, work);
}

static void *worker_main(void *argument)
{
    kci_ledger *ledger = argument;
    for (;;) {
        pthread_mutex_lock(&ledger->lock);
        while (ledger->queue_count == 0 && !ledger->stopping)
            pthread_cond_wait(&ledger->requests_ready, &ledger->lock);
        if (ledger->queue_count == 0) {
            pthread_mutex_unlock(&ledger->lock);
            return NULL;
        }
        natsMsg *message = ledger->queue[ledger->queue_first];
        ledger->queue_first = (ledger->queue_first + 1) % KCI_LEDGER_QUEUE_MAX;
        ledger->queue_count--;
        ledger->jobs_in_flight++;
        pthread_mutex_unlock(&ledger->lock);
        handle(ledger, message);
        pthread_mutex_lock(&ledger->lock);
        ledger->jobs_in_flight--;
        pthread_cond_broadcast(&ledger->jobs_ready);
        pthread_mutex_unlock(&ledger->lock);
    }
}

/* ---- the subscription -------------------------------------------------------------- */

static void on_message(natsConnection *connection, natsSubscription *subscription, natsMsg *message,
                       void *closure)
{
    (void)connection;
    (void)subscription;
    kci_ledger *ledger = closure;
    size_t length = (size_t)natsMsg_GetDataLength(message);
    pthread_mutex_lock(&ledger->lock);
    /* Bounded in count and bytes, whether queued, verifying or waiting for
     * the writer: a slow disk makes clients wait for 503s, not the ledger
     * grow without limit. */
    bool full = ledger->held_count == KCI_LEDGER_QUEUE_MAX ||
                ledger->held_bytes + length > KCI_LEDGER_HELD_BYTES_MAX;
    if (!full) {
        assert(ledger->queue_count < KCI_LEDGER_QUEUE_MAX);
        ledger->queue[(ledger->queue_first + ledger->queue_count) % KCI_LEDGER_QUEUE_MAX] = message;
        ledger->queue_count++;
        ledger->held_count++;
        ledger->held_bytes += length;
        pthread_cond_signal(&ledger->requests_ready);
    }
    pthread_mutex_unlock(&ledger->lock);
    if (!full) return;
    kci_kc_headers headers;
    kci_headers_clear(&headers);
    (void)kci_headers_read(message, false, &headers);
    kci_ledger_outcome outcome = {0};
    kci_ledger_refuse(&outcome, KCI_LEDGER_QUEUE_FULL);
    reply_error(ledger, message, &headers, &outcome);
    natsMsg_Destroy(message);
}

kc_err kci_ledger_requests_subscribe(kci_ledger *ledger, char *error, size_t error_size)
{
    /* Requests are held until verified and applied (back-pressure is the
     * ledger's own bounded queue, not nats.c dropping what came). */
    const kci_subscription_spec spec = {.subject = KCI_LEDGER_SUBJECT,
                                        .queue = KCI_LEDGER_QUEUE,
                                        .handler = on_message,
                                        .pending_messages_max = KCI_PENDING_UNLIMITED,
                                        .pending_bytes_max = KCI_PENDING_UNLIMITED,
                                        .stats = &ledger->endpoint_stats};
    kc_err err = kci_subscriptions_add(&ledger->subscriptions, ledger->connection, &spec, ledger);
    if (err == KC_OK)
        err = kci_subscriptions_flush(ledger->connection, KCI_LEDGER_SUBSCRIBE_TIMEOUT_MS);
    if (err != KC_OK) snprintf(error, error_size, "ledger: %s", kc_last_error());
    return err;
}

/* ---- start and stop ------------------------------------------------------------------ */

kci_ledger_config kci_ledger_config_defaults(const char *directory)
{
    /* Verification is CPU-bound: one worker per core. */
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    return (kci_ledger_config){
        .directory = directory,
        .node = NODE_DEFAULT,
        .worker_count = cores < 1                        ? 1
                        : cores > KCI_LEDGER_WORKERS_MAX ? KCI_LEDGER_WORKERS_MAX
                                                         : (int)cores,
        .map_bytes = KCI_LEDGER_MAP_BYTES_DEFAULT,
        .reap_interval_ms = KCI_LEDGER_REAP_INTERVAL_MS_DEFAULT,
        .reap_age_ms = KCI_LEDGER_REAP_AGE_MS_DEFAULT,
        .stream = KCI_LEDGER_STREAM_DEFAULT,
        .stream_replicas = KCI_LEDGER_STREAM_REPLICAS_DEFAULT,
    };
}

/* A field out of range is the caller's mistake, reported, not replaced. */
static kc_err check_config(const kci_ledger_config *config, char *error, size_t error_size)
{
    if (config->directory == NULL || config->directory[0] == '\0') {
        snprintf(error, error_size, "ledger: no data directory configured");
        return KC_ERR_CONFIG;
    }
    if (config->node == NULL || strlen(config->node) > KC_NODE_BYTES_MAX ||
        !kci_token_valid(config->node)) {
        snprintf(error, error_size, "ledger: node \"%s\" is not one subject token",
                 config->node != NULL ? config->node : "");
        return KC_ERR_CONFIG;
    }
    const char *problem = NULL;
    if (config->worker_count < 1 || config->worker_count > KCI_LEDGER_WORKERS_MAX)
        problem = "worker_count is out of range";
    else if (config->map_bytes == 0)
        problem = "map_bytes is 0";
    else if (config->reap_interval_ms < 1 || config->reap_age_ms < 0)
        problem = "the reaper's interval must be 1 ms or more and its age not negative";
    else if (config->replicated &&
             (config->stream == NULL || !kci_token_valid(config->stream) ||
              config->stream_replicas < 1 ||
              config->stream_replicas > KCI_LEDGER_STREAM_REPLICAS_MAX || config->lease == NULL))
        problem = "storage jetstream needs a stream name (one token), 1 to 5 replicas and a lease";
    if (problem == NULL) return KC_OK;
    snprintf(error, error_size, "ledger: %s", problem);
    return KC_ERR_INVALID_ARGUMENT;
}

static kc_err start_threads(kci_ledger *ledger, char *error, size_t error_size)
{
    for (int index = 0; index < ledger->config.worker_count; index++) {
        if (pthread_create(&ledger->workers[index], NULL, worker_main, ledger) != 0) {
            snprintf(error, error_size, "ledger: cannot start a worker thread");
            return KC_ERR_NOMEM;
        }
        ledger->worker_count++;
    }
    if (pthread_create(&ledger->writer, NULL, writer_main, ledger) != 0) {
        snprintf(error, error_size, "ledger: cannot start the writer thread");
        return KC_ERR_NOMEM;
    }
    ledger->writer_started = true;
    return KC_OK;
}

/* Answers $SRV (micro.h), a standby too: it says it is there, with no requests. */
static void micro_start(kci_ledger *ledger)
{
    const kci_micro_endpoint endpoint = {"ledger", KCI_LEDGER_SUBJECT, KCI_LEDGER_QUEUE,
                                         &ledger->endpoint_stats};
    const kci_micro_description about = {
        .name = "kc-ledger",
        .version = KC_VERSION,
        .description = "KingCobra ledger: coins, transfers, balances and trails",
        .node = ledger->node,
        .type = "ledger",
        .endpoints = &endpoint,
        .endpoint_count = 1};
    ledger->micro = kci_micro_start_logged(ledger->connection, &about, "ledger");
}

kc_err kci_ledger_start(kci_ledger **out, natsConnection *connection,
                        const kci_ledger_config *config, char *error, size_t error_size)
{
    assert(out != NULL && connection != NULL && config != NULL);
    *out = NULL;
    kci_ledger *ledger = calloc(1, sizeof *ledger);
    if (ledger == NULL) return KC_ERR_NOMEM;
    kci_ledger_metrics_register();
    ledger->connection = connection;
    ledger->config = *config;
    pthread_mutex_init(&ledger->lock, NULL);
    pthread_cond_init(&ledger->requests_ready, NULL);
    pthread_condattr_t attributes;
    pthread_condattr_init(&attributes);
    pthread_condattr_setclock(&attributes, CLOCK_MONOTONIC);
    pthread_cond_init(&ledger->jobs_ready, &attributes);
    pthread_condattr_destroy(&attributes);
    kci_subscriptions_init(&ledger->subscriptions);
    kci_micro_stats_init(&ledger->endpoint_stats);
    ledger->queue = calloc(KCI_LEDGER_QUEUE_MAX, sizeof *ledger->queue);
    kc_err err =
        ledger->queue != NULL ? check_config(&ledger->config, error, error_size) : KC_ERR_NOMEM;
    if (err == KC_OK) {
        kci_text_copy(ledger->node, sizeof ledger->node, ledger->config.node);
        int64_t payload_max = natsConnection_GetMaxPayload(connection);
        ledger->reply_bytes_max = payload_max > 0 ? (size_t)payload_max : REPLY_BYTES_DEFAULT;
        err = kci_ledger_store_open(&ledger->store, ledger->config.directory,
                                    ledger->config.map_bytes, error, error_size);
    }
    /* Replicated: the writer subscribes to the requests once it is the active one. */
    if (err == KC_OK && ledger->config.replicated)
        err = kci_ledger_replica_open(&ledger->replica, ledger, error, error_size);
    if (err == KC_OK) err = start_threads(ledger, error, error_size);
    if (err == KC_OK && ledger->replica == NULL)
        err = kci_ledger_requests_subscribe(ledger, error, error_size);
    if (err != KC_OK) {
        kci_ledger_stop(ledger, 0);
        return err;
    }
    micro_start(ledger);
    kci_info("ledger: serving %s from %s (mint %s, %d workers)", KCI_LEDGER_SUBJECT,
             ledger->config.directory, kci_ledger_store_mint_address(ledger->store),
             ledger->worker_count);
    *out = ledger;
    return KC_OK;
}

const char *kci_ledger_mint_address(const kci_ledger *ledger)
{
    return kci_ledger_store_mint_address(ledger->store);
}

void kci_ledger_stop(kci_ledger *ledger, int64_t drain_ms)
{
    if (ledger == NULL) return;
    kci_micro_stop(ledger->micro, drain_ms);
    ledger->micro = NULL;
    if (ledger->replica != NULL) kci_ledger_replica_closing(ledger->replica);
    bool drained =
        ledger->replica != NULL
            ? kci_ledger_replica_drain_requests(ledger->replica, drain_ms)
            : kci_subscriptions_drain(&ledger->subscriptions, drain_ms, KCI_LEDGER_STOP_MARGIN_MS);
    if (!drained) {
        kci_error("ledger: the subscription did not drain; leaking the ledger");
        return;
    }
    /* The workers finish the queue, the writer applies and answers the rest. */
    pthread_mutex_lock(&ledger->lock);
    ledger->stopping = true;
    pthread_cond_broadcast(&ledger->requests_ready);
    pthread_cond_broadcast(&ledger->jobs_ready);
    pthread_mutex_unlock(&ledger->lock);
    for (int index = 0; index < ledger->worker_count; index++)
        pthread_join(ledger->workers[index], NULL);
    if (ledger->writer_started) pthread_join(ledger->writer, NULL);
    kci_ledger_replica_close(ledger->replica);
    kci_subscriptions_destroy(&ledger->subscriptions);
    while (ledger->queue != NULL && ledger->queue_count > 0) { /* only if no worker ran */
        natsMsg_Destroy(ledger->queue[ledger->queue_first]);
        ledger->queue_first = (ledger->queue_first + 1) % KCI_LEDGER_QUEUE_MAX;
        ledger->queue_count--;
    }
    kci_ledger_store_close(ledger->store);
    free(ledger->queue);
    pthread_cond_destroy(&ledger->requests_ready);
    pthread_cond_destroy(&ledger->jobs_ready);
    pthread_mutex_destroy(&ledger->lock);
    kci_micro_stats_destroy(&ledger->endpoint_stats);
    free(ledger);
}
