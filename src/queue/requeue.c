/* requeue.c - dead requests brought back (kcobra queue requeue).
 *
 * A dead request had attempts_max dispatches that a service received and
 * did not answer. Once the service is fixed, an operator requeues it, by
 * type, by id, or all: each gets a requeue marker (a redelivery marker with
 * attempt 0, record.h) in the log, and only once the marker is durable does
 * the request become PENDING again, its attempts from 0, due at once. So a
 * requeue that was answered survives a crash (rebuild.c reads the marker),
 * and one that was not may be asked again: requeueing a request that is
 * not dead changes nothing.
 *
 * kc.sys.queue.requeue takes {"type":"T","id":"..."} (either, both or
 * neither) and answers {"requeued":n,"dead":m} (m: dead requests left).
 * The caller waits while the markers are written: one append each, in the
 * log's group commits. */
#include <assert.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "common/log.h"
#include "persister_internal.h"
#include "service/headers.h"

typedef struct requeue_batch {
    pthread_mutex_t lock;
    pthread_cond_t done;
    uint64_t outstanding; /* markers whose done has not run */
} requeue_batch;

typedef struct requeue_item {
    kci_uuid id;
    requeue_batch *batch;
    bool stored;
} requeue_item;

static bool type_matches(const kci_persister *persister, const kci_index_entry *entry,
                         const char *type)
{
    if (type == NULL) return true;
    return entry->type_slot != KCI_PERSISTER_TYPE_NONE &&
           strcmp(persister->types[entry->type_slot].name, type) == 0;
}

/* Under the lock: the dead requests that match, at most bound. */
static uint64_t collect_dead(kci_persister *persister, const char *type, const kci_uuid *id,
                             requeue_item *items, uint64_t bound)
{
    uint64_t count = 0;
    if (id != NULL) {
        kci_index_entry *entry = kci_index_find(&persister->index, id);
        if (entry != NULL && entry->state == KCI_ENTRY_DEAD &&
            type_matches(persister, entry, type) && bound > 0)
            items[count++].id = entry->id;
        return count;
    }
    for (uint64_t slot = 0; slot < persister->index.capacity && count < bound; slot++) {
        const kci_index_entry *entry = &persister->index.entries[slot];
        if (entry->state == KCI_ENTRY_DEAD && type_matches(persister, entry, type))
            items[count++].id = entry->id;
    }
    assert(count <= bound);
    return count;
}

static void on_requeue_done(void *closure, kc_err status, kci_position position)
{
    requeue_item *item = closure;
    requeue_batch *batch = item->batch;
    item->stored = status == KC_OK;
    pthread_mutex_lock(&batch->lock);
    assert(batch->outstanding > 0);
    if (--batch->outstanding == 0) pthread_cond_signal(&batch->done);
    pthread_mutex_unlock(&batch->lock);
}

/* Appends a requeue marker for each item and waits until all are done. */
static void append_markers(kci_persister *persister, requeue_item *items, uint64_t count)
{
    requeue_batch batch = {.outstanding = count};
    pthread_mutex_init(&batch.lock, NULL);
    pthread_cond_init(&batch.done, NULL);
    for (uint64_t index = 0; index < count; index++) {
        requeue_item *item = &items[index];
        item->batch = &batch;
        item->stored = false;
        kci_record record =
            kci_persister_marker(KCI_RECORD_REDELIVERY, &item->id, KCI_RECORD_REQUEUE_ATTEMPT);
        assert(kci_record_is_requeue(&record));
        if (kci_queue_log_append(persister->log, &record, on_requeue_done, item) != KC_OK)
            on_requeue_done(item, KC_ERR_IO, 0);
    }
    pthread_mutex_lock(&batch.lock);
    while (batch.outstanding > 0)
        pthread_cond_wait(&batch.done, &batch.lock);
    pthread_mutex_unlock(&batch.lock);
    pthread_cond_destroy(&batch.done);
    pthread_mutex_destroy(&batch.lock);
}

kc_err kci_persister_requeue(kci_persister *persister, const char *type, const kci_uuid *id,
                             uint64_t *requeued_out)
{
    *requeued_out = 0;
    pthread_mutex_lock(&persister->lock);
    uint64_t bound = persister->stats.dead;
    requeue_item *items = bound > 0 ? calloc(bound, sizeof *items) : NULL;
    uint64_t count = items != NULL ? collect_dead(persister, type, id, items, bound) : 0;
    pthread_mutex_unlock(&persister->lock);
    if (bound > 0 && items == NULL) return KC_ERR_NOMEM;
    append_markers(persister, items, count);
    uint64_t requeued = 0, failed = 0;
    int64_t now_ms = kci_monotonic_ms();
    pthread_mutex_lock(&persister->lock);
    for (uint64_t index = 0; index < count; index++) {
        kci_index_entry *entry = kci_index_find(&persister->index, &items[index].id);
        failed += !items[index].stored;
        /* A late reply may have come meanwhile: then it stays replied. */
        if (!items[index].stored || entry == NULL || entry->state != KCI_ENTRY_DEAD) continue;
        kci_persister_entry_requeued(persister, entry, now_ms);
        requeued++;
    }
    persister->pending_due_min_ms = now_ms;
    pthread_cond_signal(&persister->wake);
    pthread_mutex_unlock(&persister->lock);
    free(items);
    *requeued_out = requeued;
    if (requeued > 0) kci_info("queue: %llu dead requests requeued", (unsigned long long)requeued);
    return failed > 0 ? KC_ERR_IO : KC_OK;
}

/* ---- kc.sys.queue.requeue --------------------------------------------------- */

/* The filter of a requeue request; false: malformed (problem says why). */
static bool requeue_filter(natsMsg *message, char *type, bool *has_type, kci_uuid *id, bool *has_id,
                           const char **problem)
{
    *has_type = *has_id = false;
    if (natsMsg_GetDataLength(message) == 0) return true;
    json_error_t json_error;
    json_t *root = json_loadb(natsMsg_GetData(message), (size_t)natsMsg_GetDataLength(message), 0,
                              &json_error);
    const char *type_text = json_string_value(json_object_get(root, "type"));
    const char *id_text = json_string_value(json_object_get(root, "id"));
    *problem = !json_is_object(root) ? "expected {\"type\":\"T\",\"id\":\"...\"} (either or both)"
               : type_text != NULL &&
                       (strlen(type_text) > KC_TYPE_BYTES_MAX || !kci_token_valid(type_text))
                   ? "the type must be one subject token"
               : id_text != NULL && !kci_uuid_parse(id_text, strlen(id_text), id)
                   ? "the id is not a UUID"
                   : NULL;
    if (*problem == NULL && type_text != NULL) {
        strcpy(type, type_text); /* checked: at most KC_TYPE_BYTES_MAX */
        *has_type = true;
    }
    *has_id = *problem == NULL && id_text != NULL;
    json_decref(root);
    return *problem == NULL;
}

void kci_persister_on_requeue(natsConnection *connection, natsSubscription *subscription,
                              natsMsg *message, void *closure)
{
    kci_persister *persister = closure;
    if (!kci_persister_answerable(persister, message, "kc.sys.queue.requeue")) return;
    const char *to = natsMsg_GetReply(message);
    char type[KC_TYPE_BYTES_MAX + 1] = "";
    kci_uuid id;
    bool has_type = false, has_id = false;
    const char *problem = NULL;
    if (!requeue_filter(message, type, &has_type, &id, &has_id, &problem)) {
        kci_persister_respond_error(persister, to, NULL, KCI_PERSISTER_CODE_BAD_REQUEST, NULL, "%s",
                                    problem);
        natsMsg_Destroy(message);
        return;
    }
    uint64_t requeued = 0;
    kc_err err =
        kci_persister_requeue(persister, has_type ? type : NULL, has_id ? &id : NULL, &requeued);
    kci_persister_stats stats;
    kci_persister_stats_get(persister, &stats);
    if (err != KC_OK) {
        kci_persister_respond_error(persister, to, NULL, KCI_PERSISTER_CODE_STORAGE, NULL,
                                    "%llu requeued; the others were not: %s",
                                    (unsigned long long)requeued, kc_strerror(err));
        natsMsg_Destroy(message);
        return;
    }
    json_t *root =
        json_pack("{s:I, s:I}", "requeued", (json_int_t)requeued, "dead", (json_int_t)stats.dead);
    kci_persister_respond_json(persister, message,
                               root != NULL ? json_dumps(root, JSON_COMPACT) : NULL);
    json_decref(root);
    natsMsg_Destroy(message);
}
