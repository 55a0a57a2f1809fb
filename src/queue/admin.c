/* admin.c - the persister's state and retention on demand (and the JSON
 * answer requeue.c uses too):
 * kc.sys.queue.stats answers its counters and the log's as one JSON object
 * (what `kcobra queue stats --live` prints), and kc.sys.queue.compact
 * applies retention now (redelivery.c) and answers how many segments went.
 * Both answer only a reply subject the persister may answer. */
#include <assert.h>
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "persister_internal.h"
#include "service/answer.h"
#include "service/reply_subject.h"
#include "service/uuid.h"

/* The age of the oldest pending request, read from its id: a UUIDv7 (what
 * libkingcobra makes) begins with its Unix time in ms, so no time needs
 * keeping per request; ids of other versions are skipped. A scan of the
 * pending array: stats are asked for rarely (kcobra, the console's poll). */
static int64_t oldest_pending_age_ms_locked(const kci_persister *persister)
{
    int64_t oldest_ms = INT64_MAX;
    for (uint32_t index = 0; index < persister->pending_count; index++) {
        const kci_uuid *id = &persister->pending[index].id;
        if (kci_uuid_version(id) != 7) continue;
        int64_t ms = kci_uuid_v7_time_ms(id);
        if (ms < oldest_ms) oldest_ms = ms;
    }
    if (oldest_ms == INT64_MAX) return -1;
    int64_t age_ms = kci_wall_ms() - oldest_ms;
    return age_ms > 0 ? age_ms : 0;
}

void kci_persister_stats_get(kci_persister *persister, kci_persister_stats *out)
{
    pthread_mutex_lock(&persister->lock);
    *out = persister->stats;
    out->requests = persister->index.count;
    out->pending = persister->pending_count;
    out->waiting = kci_persister_waiting_count_locked(persister);
    out->types_waiting = persister->types_waiting;
    out->oldest_pending_age_ms = oldest_pending_age_ms_locked(persister);
    pthread_mutex_unlock(&persister->lock);
    /* Every pending request is in the index (state.c). */
    assert(out->pending <= out->requests);
    kci_queue_log_stats_get(persister->log, &out->log);
}

static char *stats_json(kci_persister *persister)
{
    kci_persister_stats stats;
    kci_persister_stats_get(persister, &stats);
    json_t *root = json_pack(
        "{s:s, s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:b, "
        "s:I, s:I, s:I, s:I, s:I, s:I, s:I}",
        "directory", persister->directory, "durability",
        kci_durability_name(persister->config.durability), "requests", (json_int_t)stats.requests,
        "pending", (json_int_t)stats.pending, "replied", (json_int_t)stats.replied, "dead",
        (json_int_t)stats.dead, "submitted", (json_int_t)stats.submitted, "submit_failed",
        (json_int_t)stats.submit_failed, "duplicate_submits", (json_int_t)stats.duplicate_submits,
        "redelivered", (json_int_t)stats.redelivered, "replies_recorded",
        (json_int_t)stats.replies_recorded, "segments_removed", (json_int_t)stats.segments_removed,
        "appends", (json_int_t)stats.log.append_count, "syncs", (json_int_t)stats.log.sync_count,
        "segment", (json_int_t)stats.log.segment_current, "segment_offset",
        (json_int_t)stats.log.segment_offset, "broken", stats.log.broken, "refused_reply_subjects",
        (json_int_t)stats.refused_reply_subjects, "waiting", (json_int_t)stats.waiting,
        "types_waiting", (json_int_t)stats.types_waiting, "no_responders",
        (json_int_t)stats.no_responders, "probes", (json_int_t)stats.probes, "released",
        (json_int_t)stats.released, "requeued", (json_int_t)stats.requeued);
    if (root != NULL)
        json_object_set_new(root, "oldest_pending_age_ms",
                            stats.oldest_pending_age_ms >= 0
                                ? json_integer((json_int_t)stats.oldest_pending_age_ms)
                                : json_null());
    char *text = root != NULL ? json_dumps(root, JSON_COMPACT) : NULL;
    json_decref(root);
    return text;
}

void kci_persister_respond_json(kci_persister *persister, natsMsg *request, char *text)
{
    if (text != NULL) {
        kci_answer answer = {
            .node = persister->node, .payload = text, .payload_length = strlen(text)};
        kci_answer_send(persister->connection, request, &answer, "queue");
    }
    free(text);
}

void kci_persister_on_stats(natsConnection *connection, natsSubscription *subscription,
                            natsMsg *message, void *closure)
{
    kci_persister *persister = closure;
    kci_persister_respond_json(persister, message, stats_json(persister));
    natsMsg_Destroy(message);
}

/* The retention a compact request asks for: empty (the configured
 * retention) or {"retention_ms": n >= 0}; anything else is the configured
 * retention too. */
static int64_t compact_retention_ms(const kci_persister *persister, natsMsg *message)
{
    int64_t retention_ms = persister->config.retention_ms;
    if (natsMsg_GetDataLength(message) == 0) return retention_ms;
    json_error_t json_error;
    json_t *root = json_loadb(natsMsg_GetData(message), (size_t)natsMsg_GetDataLength(message), 0,
                              &json_error);
    json_t *value = json_object_get(root, "retention_ms");
    if (json_is_integer(value) && json_integer_value(value) >= 0)
        retention_ms = json_integer_value(value);
    json_decref(root);
    return retention_ms;
}

void kci_persister_on_compact(natsConnection *connection, natsSubscription *subscription,
                              natsMsg *message, void *closure)
{
    kci_persister *persister = closure;
    int64_t retention_ms = compact_retention_ms(persister, message);
    uint32_t removed = retention_ms < 0 ? 0 : kci_persister_compact(persister, retention_ms);
    json_t *root = json_pack("{s:I}", "segments_removed", (json_int_t)removed);
    char *text = root != NULL ? json_dumps(root, JSON_COMPACT) : NULL;
    json_decref(root);
    kci_persister_respond_json(persister, message, text);
    natsMsg_Destroy(message);
}
