/* redelivery.c - the redelivery thread, and retention.
 *
 * A durable request without a reply is dispatched again after
 * redelivery_timeout_ms, the wait doubling up to redelivery_backoff_max_ms,
 * until attempts_max dispatches that a service received; then it is dead: a
 * tombstone record is appended and kc.reply.get says so. A dispatch nobody
 * received ("no responders") is no attempt: the request waits for a
 * service, and its type is probed (waiting.c); the probes go out from
 * here. Each dispatch after the first appends a redelivery marker, so a
 * restart knows the attempts so far (one given back by "no responders" is
 * still on disk: a restart may count one attempt more). After a restart
 * every request without a reply waits for its type's first probe
 * (rebuild.c).
 * Services are idempotent by Kc-Id, so a handler runs once however often a
 * request is dispatched.
 *
 * The thread wakes every KCI_PERSISTER_SCAN_INTERVAL_MS, collects at most
 * KCI_PERSISTER_REDELIVER_BATCH_MAX due requests under the lock, and reads
 * and dispatches them outside it. Every KCI_PERSISTER_COMPACT_INTERVAL_MS it
 * applies retention: whole segments are removed from the front of the log
 * once every request in them is replied or dead and their newest record is
 * older than retention_ms. */
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "common/log.h"
#include "persister_internal.h"
#include "queue/metrics.h"

enum { PROBE_FLUSH_TIMEOUT_MS = 1000 };

typedef struct due_request {
    kci_uuid id;
    kci_position position;
    uint16_t attempt;
    bool dead;
} due_request;

void kci_persister_on_marker_done(void *closure, kc_err status, kci_position position)
{
    if (status != KC_OK)
        kci_debug("queue: a redelivery or tombstone marker was not stored: %s",
                  kc_strerror(status));
}

kci_record kci_persister_marker(kci_record_kind kind, const kci_uuid *id, uint16_t attempt)
{
    assert(kind == KCI_RECORD_REDELIVERY || kind == KCI_RECORD_TOMBSTONE);
    kci_record record = {.kind = kind,
                         .id = *id,
                         .attempt = attempt,
                         .subject = "",
                         .reply = "",
                         .client = "",
                         .payload = ""};
    kci_persister_hlc_now(&record.ts_wall_ms, &record.ts_counter);
    return record;
}

static void append_marker(kci_persister *persister, kci_record_kind kind, const kci_uuid *id,
                          uint16_t attempt)
{
    assert(attempt >= 1); /* attempt 0 is a requeue (requeue.c) */
    kci_record record = kci_persister_marker(kind, id, attempt);
    if (kci_queue_log_append(persister->log, &record, kci_persister_on_marker_done, persister) !=
        KC_OK)
        kci_debug("queue: a marker was not queued");
}

int64_t kci_persister_backoff_ms(const kci_persister *persister, uint16_t attempts)
{
    int64_t delay = persister->config.redelivery_timeout_ms;
    for (uint16_t step = 1; step < attempts && delay < persister->config.redelivery_backoff_max_ms;
         step++)
        delay *= 2;
    delay = delay < persister->config.redelivery_backoff_max_ms
                ? delay
                : persister->config.redelivery_backoff_max_ms;
    assert(delay > 0 && delay >= persister->config.redelivery_timeout_ms); /* config_defaults */
    return delay;
}

/* Under the lock: the pending requests that are due, at most bound. */
static uint32_t collect_due(kci_persister *persister, int64_t now_ms, due_request *due,
                            uint32_t bound)
{
    uint32_t count = 0;
    int64_t due_min = INT64_MAX;
    for (uint32_t slot = 0; slot < persister->pending_count && count < bound;) {
        kci_persister_pending_item *item = &persister->pending[slot];
        if (item->due_ms > now_ms) {
            if (item->due_ms < due_min) due_min = item->due_ms;
            slot++;
            continue;
        }
        kci_index_entry *entry = kci_index_find(&persister->index, &item->id);
        assert(entry != NULL && entry->pending_slot == slot);
        if (entry->state != KCI_ENTRY_PENDING) { /* its reply is being stored */
            item->due_ms = now_ms + persister->config.redelivery_timeout_ms;
            slot++;
            continue;
        }
        bool dying = entry->attempts >= persister->config.attempts_max;
        if (!dying && kci_persister_type_waiting_locked(persister, entry->type_slot)) {
            /* Nobody serves its type: it waits too, no attempt spent. */
            kci_persister_park_locked(persister, entry, now_ms);
            slot++;
            continue;
        }
        due_request *next = &due[count++];
        next->id = entry->id;
        next->position = entry->request;
        if (dying) { /* its last attempt reached a service, and timed out */
            next->dead = true;
            next->attempt = entry->attempts;
            kci_persister_entry_dead(persister, entry); /* moves the last one into slot */
            continue;
        }
        next->dead = false;
        next->attempt = ++entry->attempts;
        item->due_ms = now_ms + kci_persister_backoff_ms(persister, entry->attempts);
        if (item->due_ms < due_min) due_min = item->due_ms;
        persister->stats.redelivered++;
        kci_counter_inc(&kci_persister_metric_values.redeliveries);
        slot++;
    }
    assert(count <= bound);
    persister->pending_due_min_ms = count == bound ? now_ms : due_min;
    return count;
}

/* Reads the request at position back and dispatches it; attempt 0 is a
 * probe (waiting.c): no marker, it is no attempt unless a service gets it. */
static void dispatch_from_log(kci_persister *persister, const kci_uuid *id, kci_position position,
                              uint16_t attempt)
{
    char id_text[KCI_PERSISTER_ID_TEXT_BYTES];
    kci_uuid_format(id, id_text);
    kci_record record;
    kc_err err =
        kci_queue_log_read(persister->log, position, persister->redelivery_buffer, &record);
    if (err != KC_OK || record.kind != KCI_RECORD_REQUEST) {
        kci_error_limited("queue: cannot read request %s back from the log: %s", id_text,
                          kc_strerror(err != KC_OK ? err : KC_ERR_CORRUPT));
        return;
    }
    /* The record was ours, and the log checked it on the way back. */
    assert(memcmp(record.id.bytes, id->bytes, sizeof id->bytes) == 0);
    char subject[KCI_PERSISTER_SUBJECT_BYTES_MAX + 1];
    snprintf(subject, sizeof subject, "%.*s", (int)record.subject_length, record.subject);
    if (attempt > 0) {
        kci_debug("queue: dispatching %s again (attempt %u)", id_text, attempt);
        append_marker(persister, KCI_RECORD_REDELIVERY, id, attempt);
    }
    kci_persister_dispatch(persister, id_text, subject, record.payload, (int)record.payload_length);
}

/* Deaths are logged as one line a second at most, with their count: a
 * service that takes requests and never answers kills them all, and 50,000
 * lines would hide everything else. The redelivery thread alone uses it. */
typedef struct dead_summary {
    uint64_t count;                            /* died since the last line */
    char id_text[KCI_PERSISTER_ID_TEXT_BYTES]; /* the first of them */
    uint16_t attempts;
    int64_t line_ms; /* monotonic, the last line */
} dead_summary;

static void dead_summary_log(dead_summary *summary, int64_t now_ms)
{
    if (summary->count == 0 || now_ms - summary->line_ms < KCI_LOG_LIMIT_INTERVAL_MS) return;
    if (summary->count == 1)
        kci_warn("queue: request %s is dead: no reply after %u attempts that reached a service "
                 "(kcobra queue requeue brings it back)",
                 summary->id_text, summary->attempts);
    else
        kci_warn("queue: %llu requests are dead (%s first): no reply after %u attempts that "
                 "reached a service (kcobra queue requeue brings them back)",
                 (unsigned long long)summary->count, summary->id_text, summary->attempts);
    summary->count = 0;
    summary->line_ms = now_ms;
}

static void redeliver(kci_persister *persister, const due_request *due, dead_summary *summary)
{
    if (!due->dead) {
        dispatch_from_log(persister, &due->id, due->position, due->attempt);
        return;
    }
    if (summary->count++ == 0) {
        kci_uuid_format(&due->id, summary->id_text);
        summary->attempts = due->attempt;
    }
    append_marker(persister, KCI_RECORD_TOMBSTONE, &due->id, due->attempt);
}

/* The probes due, sent and flushed, so that a "no responders" for one has
 * arrived before the next check looks for it; released requests are due
 * already. */
static void probe(kci_persister *persister, kci_persister_probe *probes)
{
    if (natsConnection_Status(persister->connection) != NATS_CONN_STATUS_CONNECTED) return;
    uint64_t released = 0;
    pthread_mutex_lock(&persister->lock);
    /* Before its inbox is subscribed a probe's 503 would not come back,
     * and the silence would read as a service. */
    uint32_t count =
        persister->types_waiting == 0 || !persister->subscribed
            ? 0
            : kci_persister_probes_collect_locked(persister, kci_monotonic_ms(), probes,
                                                  KCI_PERSISTER_PROBES_MAX, &released);
    pthread_mutex_unlock(&persister->lock);
    if (released > 0)
        kci_info_limited("queue: a service answers again: %llu waiting requests dispatched",
                         (unsigned long long)released);
    for (uint32_t index = 0; index < count; index++)
        dispatch_from_log(persister, &probes[index].id, probes[index].position, 0);
    if (count > 0 &&
        natsConnection_FlushTimeout(persister->connection, PROBE_FLUSH_TIMEOUT_MS) != NATS_OK)
        kci_persister_probes_unsent(persister, probes, count);
}

void *kci_persister_redelivery_main(void *argument)
{
    kci_persister *persister = argument;
    assert(persister->connection != NULL); /* started only online */
    due_request *due = calloc(KCI_PERSISTER_REDELIVER_BATCH_MAX, sizeof *due);
    kci_persister_probe probes[KCI_PERSISTER_PROBES_MAX];
    dead_summary summary = {.line_ms = INT64_MIN / 2};
    int64_t next_compact_ms = kci_monotonic_ms() + KCI_PERSISTER_COMPACT_INTERVAL_MS;
    pthread_mutex_lock(&persister->lock);
    while (!persister->stopping && due != NULL) {
        int64_t now_ms = kci_monotonic_ms();
        uint32_t count = 0;
        if (persister->pending_due_min_ms <= now_ms)
            count = collect_due(persister, now_ms, due, KCI_PERSISTER_REDELIVER_BATCH_MAX);
        pthread_mutex_unlock(&persister->lock);
        for (uint32_t index = 0; index < count; index++)
            redeliver(persister, &due[index], &summary);
        dead_summary_log(&summary, now_ms);
        probe(persister, probes);
        if (now_ms >= next_compact_ms && persister->config.retention_ms >= 0) {
            kci_persister_compact(persister, persister->config.retention_ms);
            next_compact_ms = now_ms + KCI_PERSISTER_COMPACT_INTERVAL_MS;
        }
        pthread_mutex_lock(&persister->lock);
        if (persister->stopping) break;
        struct timespec deadline =
            kci_deadline_after(CLOCK_REALTIME, KCI_PERSISTER_SCAN_INTERVAL_MS);
        pthread_cond_timedwait(&persister->wake, &persister->lock, &deadline);
    }
    pthread_mutex_unlock(&persister->lock);
    summary.line_ms = INT64_MIN / 2; /* the deaths not yet told, told now */
    dead_summary_log(&summary, kci_monotonic_ms());
    free(due);
    return NULL;
}

/* ---- retention -------------------------------------------------------------- */

static void removed_entry(void *context, kci_index_entry *entry)
{
    kci_persister *persister = context;
    assert(entry->state != KCI_ENTRY_STORING); /* kci_index_remove_below keeps those */
    kci_persister_pending_remove(persister, entry);
    assert(entry->pending_slot == KCI_INDEX_NO_SLOT);
}

uint32_t kci_persister_compact(kci_persister *persister, int64_t retention_ms)
{
    assert(retention_ms >= 0);
    kci_queue_log_stats log_stats;
    kci_queue_log_stats_get(persister->log, &log_stats);
    int64_t cutoff_ms = kci_wall_ms() - retention_ms;
    pthread_mutex_lock(&persister->lock);
    uint32_t below =
        kci_persister_segments_removable_below(persister, log_stats.segment_current, cutoff_ms);
    bool nothing = persister->segment_count == 0 || below <= persister->segment_base;
    pthread_mutex_unlock(&persister->lock);
    if (nothing) return 0;
    uint32_t removed = kci_queue_log_remove_segments_below(persister->log, below);
    pthread_mutex_lock(&persister->lock);
    kci_index_remove_below(&persister->index, below, removed_entry, persister);
    kci_persister_segments_forget_below(persister, below);
    persister->stats.segments_removed += removed;
    pthread_mutex_unlock(&persister->lock);
    if (removed > 0)
        kci_info("queue: removed %u segments below %u (all replied, older than retention)", removed,
                 below);
    return removed;
}
