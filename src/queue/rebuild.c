/* rebuild.c - the persister's index rebuilt from the log at start.
 *
 * The log's open (log.c, recovery.c) scans every record in order and hands
 * each here: a request adds a PENDING entry (a second copy of an id: the
 * first counts), its reply makes it REPLIED, a tombstone DEAD, a
 * redelivery marker raises its attempts, a requeue marker (attempt 0)
 * makes a dead one PENDING again with its attempts from 0; a reply or
 * marker whose request was compacted away is ignored. After the scan every
 * request without a reply waits, and its type is probed at once
 * (waiting.c): its services may not be back yet, and a dispatch to nobody
 * would only be lost. Nothing is in flight during the scan, so no entry is
 * STORING or REPLYING. */
#include <assert.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "common/log.h"
#include "persister_internal.h"
#include "queue/metrics.h"
#include "service/reply_subject.h"

/* A request record: 0 -> PENDING, counted unresolved in its segment. */
static kc_err rebuild_request(kci_persister *persister, const kci_record *record,
                              kci_position position)
{
    bool created = false;
    kci_index_entry *entry = kci_index_insert(&persister->index, &record->id, &created);
    if (entry == NULL) return KC_ERR_NOMEM;
    if (!created) return KC_OK; /* a second copy: the first counts */
    assert(entry->state == 0 && entry->pending_slot == KCI_INDEX_NO_SLOT);
    entry->state = KCI_ENTRY_PENDING;
    entry->request = position;
    entry->attempts = 1;
    /* A stream keeps Kc-Notify (record.h): the reply is forwarded by
     * whichever persister records it. */
    bool notify = record->notify != NULL &&
                  kci_reply_subject_allowed(record->notify, KCI_REPLY_NOTIFY); /* as submit */
    if (record->notify != NULL && !notify)
        kci_warn("queue: request at %" PRIu64 " has a Kc-Notify that is not an inbox: ignored",
                 position);
    entry->notify = notify ? strdup(record->notify) : NULL;
    if (notify && entry->notify == NULL) return KC_ERR_NOMEM;
    const char *type = record->subject;
    size_t type_length = record->subject_length, prefix = strlen(KCI_PERSISTER_REQUEST_PREFIX);
    bool named = type_length > prefix && memcmp(type, KCI_PERSISTER_REQUEST_PREFIX, prefix) == 0;
    entry->type_slot =
        named ? kci_persister_type_slot_locked(persister, type + prefix, type_length - prefix)
              : KCI_PERSISTER_TYPE_NONE;
    kci_persister_segment_add_request(persister, position);
    return KC_OK;
}

/* A requeue marker: a dead request is pending again, from attempt 0. */
static void rebuild_requeue(kci_persister *persister, kci_index_entry *entry)
{
    if (entry->state == KCI_ENTRY_REPLIED) return;
    if (entry->state == KCI_ENTRY_DEAD)
        kci_persister_segment_add_request(persister, entry->request);
    entry->state = KCI_ENTRY_PENDING;
    entry->attempts = 0;
}

kc_err kci_persister_rebuild_record(void *closure, const kci_record *record, kci_position position)
{
    kci_persister *persister = closure;
    assert(record->kind >= KCI_RECORD_KIND_FIRST && record->kind <= KCI_RECORD_KIND_LAST);
    kci_persister_segment_touch(persister, position, record->ts_wall_ms);
    if (record->kind == KCI_RECORD_REQUEST) return rebuild_request(persister, record, position);
    kci_index_entry *entry = kci_index_find(&persister->index, &record->id);
    if (entry == NULL) return KC_OK; /* its request was compacted away */
    assert(entry->state == KCI_ENTRY_PENDING || entry->state == KCI_ENTRY_REPLIED ||
           entry->state == KCI_ENTRY_DEAD);
    switch (record->kind) {
    case KCI_RECORD_REPLY:
        if (entry->state == KCI_ENTRY_REPLIED) break;
        if (entry->state == KCI_ENTRY_PENDING)
            kci_persister_segment_resolve(persister, entry->request);
        entry->state = KCI_ENTRY_REPLIED;
        entry->reply = position;
        free(entry->notify); /* forwarded when it was recorded */
        entry->notify = NULL;
        break;
    case KCI_RECORD_REDELIVERY:
        if (kci_record_is_requeue(record))
            rebuild_requeue(persister, entry);
        else if (record->attempt > entry->attempts)
            entry->attempts = record->attempt;
        break;
    case KCI_RECORD_TOMBSTONE:
        if (entry->state != KCI_ENTRY_PENDING) break;
        entry->state = KCI_ENTRY_DEAD;
        kci_persister_segment_resolve(persister, entry->request);
        break;
    default: break;
    }
    return KC_OK;
}

/* After the scan: every request without a reply waits for its type's
 * first probe, now (one of a type beyond the type table is due now). */
kc_err kci_persister_rebuild_finish(kci_persister *persister)
{
    int64_t now_ms = kci_monotonic_ms();
    kci_index *index = &persister->index;
    assert(persister->pending_count == 0 && persister->stats.replied == 0);
    for (uint64_t slot = 0; slot < index->capacity; slot++) {
        kci_index_entry *entry = &index->entries[slot];
        if (entry->state == KCI_ENTRY_REPLIED) persister->stats.replied++;
        if (entry->state == KCI_ENTRY_DEAD) persister->stats.dead++;
        if (entry->state != KCI_ENTRY_PENDING) continue;
        if (!kci_persister_pending_add(persister, entry, now_ms)) return KC_ERR_NOMEM;
        if (entry->type_slot != KCI_PERSISTER_TYPE_NONE)
            kci_persister_park_locked(persister, entry, now_ms);
    }
    assert(persister->pending_count + persister->stats.replied + persister->stats.dead ==
           index->count);
    kci_gauge_set(&kci_persister_metric_values.dead, (int64_t)persister->stats.dead);
    return KC_OK;
}

void kci_persister_rebuild_log(const kci_persister *persister, const kci_scan_report *report)
{
    kci_info("queue: %s: %u segments, %" PRIu64 " records (%" PRIu64 " bytes) checked in %" PRId64
             " ms: %" PRIu64 " requests, %" PRIu64 " replied, %" PRIu64 " dead, %u to dispatch "
             "again",
             persister->directory, report->segment_count, report->record_count,
             report->record_bytes, report->duration_us / 1000, persister->index.count,
             persister->stats.replied, persister->stats.dead, persister->pending_count);
    /* The tail and segment findings are logged by the log's open. */
    for (uint32_t index = 0; index < report->corruption_count && index < KCI_SCAN_CORRUPTIONS_MAX;
         index++)
        kci_error("queue: CORRUPT: segment %u offset %" PRIu64 ": %" PRIu64
                  " bytes fail their checksum; skipped, never served",
                  report->corruptions[index].segment, report->corruptions[index].offset,
                  report->corruptions[index].length_bytes);
}
