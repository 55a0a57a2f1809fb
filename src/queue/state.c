/* state.c - what the persister knows about each request, under its lock:
 * the state of its index entry, the pending array of requests awaiting a
 * reply, and the segment table that says which segments retention may
 * remove. Every change of a request's state is a function here, so the
 * state machine can be read (and its invariants asserted) in one place.
 *
 * Request life: STORING (append in flight; a second submit of the id gets
 * 409) -> PENDING (durable: acknowledged, dispatched, in the pending array)
 * -> REPLYING (the reply's append in flight; further replies are dropped)
 * -> REPLIED; or PENDING -> DEAD after attempts_max dispatches that a
 * service received (a late reply still takes DEAD -> REPLYING -> REPLIED;
 * a requeue takes DEAD -> PENDING). A PENDING request may wait for a
 * service (waiting.c): its pending item's due time is then
 * KCI_PERSISTER_WAITING. A failed request append removes
 * the entry (the submitter gets an error, never an acknowledgement); a
 * failed reply append puts it back to the state before, so the request is
 * dispatched again and the service answers from its idempotence cache.
 * Recovery (rebuild.c) sets the states a scan of the log implies.
 *
 * A segment's unresolved count is the number of its requests with neither
 * reply nor tombstone: each request adds one when it becomes PENDING and
 * takes it back once, when it is replied or dies. The count is exact unless
 * the table once failed to grow, or two compactions raced and the later
 * forgot rows the earlier had kept (segment_counts_inexact): then a request
 * may have gone uncounted, and the count stops at zero. */
#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "persister_internal.h"
#include "queue/metrics.h"

enum {
    SEGMENT_TABLE_MIN = 16,
    PENDING_CAPACITY_MIN = 1024,
};

/* ---- the request states ---------------------------------------------------- */

/* A new entry (kci_index_insert): 0 -> STORING. */
void kci_persister_entry_storing(kci_index_entry *entry)
{
    assert(entry->state == 0 && entry->pending_slot == KCI_INDEX_NO_SLOT);
    entry->state = KCI_ENTRY_STORING;
    assert(entry->notify == NULL);
}

/* STORING -> PENDING: the request is durable; it is acknowledged and
 * dispatched next, so it waits for its reply from now; unless nobody
 * serves its type: then it waits for a service (waiting.c) and false says
 * not to dispatch it. */
bool kci_persister_entry_stored(kci_persister *persister, kci_index_entry *entry,
                                kci_position position, const char *notify, int64_t due_ms,
                                uint16_t type_slot)
{
    assert(entry->state == KCI_ENTRY_STORING);
    assert(entry->pending_slot == KCI_INDEX_NO_SLOT && entry->notify == NULL);
    entry->state = KCI_ENTRY_PENDING;
    entry->request = position;
    entry->attempts = 1;
    entry->type_slot = type_slot;
    entry->notify = notify != NULL ? strdup(notify) : NULL;
    bool added = kci_persister_pending_add(persister, entry, due_ms);
    kci_persister_segment_add_request(persister, position);
    kci_persister_segment_touch(persister, position, kci_wall_ms());
    persister->stats.submitted++;
    kci_counter_inc(&kci_persister_metric_values.submitted);
    if (!added || !kci_persister_type_waiting_locked(persister, type_slot)) return true;
    entry->attempts = 0; /* not dispatched: no attempt yet */
    kci_persister_park_locked(persister, entry, due_ms);
    return false;
}

/* STORING -> gone: the append failed; nothing was acknowledged. */
void kci_persister_entry_store_failed(kci_persister *persister, kci_index_entry *entry)
{
    assert(entry->state == KCI_ENTRY_STORING && entry->pending_slot == KCI_INDEX_NO_SLOT);
    uint64_t count = persister->index.count;
    kci_index_remove(&persister->index, entry);
    persister->stats.submit_failed++;
    kci_counter_inc(&kci_persister_metric_values.submit_failures);
    assert(persister->index.count == count - 1);
}

/* PENDING or DEAD -> REPLYING: the first reply is taken; false (counted as
 * a duplicate) for an unknown id or one replied or being replied. */
bool kci_persister_entry_replying(kci_persister *persister, kci_index_entry *entry)
{
    bool take =
        entry != NULL && (entry->state == KCI_ENTRY_PENDING || entry->state == KCI_ENTRY_DEAD);
    if (!take) {
        persister->stats.replies_duplicate++;
        return false;
    }
    entry->state_before_reply = entry->state;
    entry->state = KCI_ENTRY_REPLYING;
    assert(entry->state_before_reply == KCI_ENTRY_PENDING ||
           entry->pending_slot == KCI_INDEX_NO_SLOT); /* a dead one is not pending */
    return true;
}

/* REPLYING -> REPLIED: the reply is durable. A request that was pending is
 * resolved now; a dead one was resolved when it died. */
char *kci_persister_entry_replied(kci_persister *persister, kci_index_entry *entry,
                                  kci_position position)
{
    assert(entry->state == KCI_ENTRY_REPLYING);
    assert(entry->state_before_reply == KCI_ENTRY_PENDING ||
           entry->state_before_reply == KCI_ENTRY_DEAD);
    entry->state = KCI_ENTRY_REPLIED;
    entry->reply = position;
    kci_persister_pending_remove(persister, entry);
    if (entry->state_before_reply != KCI_ENTRY_DEAD)
        kci_persister_segment_resolve(persister, entry->request);
    kci_persister_segment_touch(persister, position, kci_wall_ms());
    char *notify = entry->notify;
    entry->notify = NULL;
    persister->stats.replies_recorded++;
    persister->stats.replied++;
    if (entry->state_before_reply == KCI_ENTRY_DEAD && persister->stats.dead > 0)
        persister->stats.dead--;
    kci_counter_inc(&kci_persister_metric_values.replies);
    kci_gauge_set(&kci_persister_metric_values.dead, (int64_t)persister->stats.dead);
    assert(entry->pending_slot == KCI_INDEX_NO_SLOT);
    return notify;
}

/* REPLYING -> PENDING or DEAD again: the reply was not stored (or not even
 * appended); the request will be dispatched again. */
void kci_persister_entry_reply_failed(kci_index_entry *entry)
{
    assert(entry->state == KCI_ENTRY_REPLYING);
    assert(entry->state_before_reply == KCI_ENTRY_PENDING ||
           entry->state_before_reply == KCI_ENTRY_DEAD);
    entry->state = entry->state_before_reply;
}

/* PENDING -> DEAD: no reply after attempts_max dispatches. */
void kci_persister_entry_dead(kci_persister *persister, kci_index_entry *entry)
{
    assert(entry->state == KCI_ENTRY_PENDING);
    assert(entry->attempts >= persister->config.attempts_max);
    entry->state = KCI_ENTRY_DEAD;
    kci_persister_pending_remove(persister, entry);
    kci_persister_segment_resolve(persister, entry->request);
    persister->stats.dead++;
    kci_counter_inc(&kci_persister_metric_values.deaths);
    kci_gauge_set(&kci_persister_metric_values.dead, (int64_t)persister->stats.dead);
    assert(entry->pending_slot == KCI_INDEX_NO_SLOT);
}

/* DEAD -> PENDING: requeued (requeue.c); its requeue marker is durable. Its
 * attempts count from 0 again, and it is due now (or waits with its type). */
void kci_persister_entry_requeued(kci_persister *persister, kci_index_entry *entry, int64_t now_ms)
{
    assert(entry->state == KCI_ENTRY_DEAD && entry->pending_slot == KCI_INDEX_NO_SLOT);
    entry->state = KCI_ENTRY_PENDING;
    entry->attempts = 0;
    kci_persister_segment_add_request(persister, entry->request);
    if (persister->stats.dead > 0) persister->stats.dead--;
    persister->stats.requeued++;
    kci_counter_inc(&kci_persister_metric_values.requeues);
    kci_gauge_set(&kci_persister_metric_values.dead, (int64_t)persister->stats.dead);
    /* Out of memory: it stays out of the array, dispatched again after a
     * restart (its marker says pending). */
    if (!kci_persister_pending_add(persister, entry, now_ms)) return;
    if (kci_persister_type_waiting_locked(persister, entry->type_slot))
        kci_persister_park_locked(persister, entry, now_ms);
}

/* ---- the pending array ------------------------------------------------------ */

/* false: out of memory (the entry stays out of the array). */
bool kci_persister_pending_add(kci_persister *persister, kci_index_entry *entry, int64_t due_ms)
{
    assert(entry->pending_slot == KCI_INDEX_NO_SLOT);
    assert(persister->pending_count <= persister->pending_capacity);
    if (persister->pending_count == persister->pending_capacity) {
        uint32_t capacity = persister->pending_capacity == 0 ? PENDING_CAPACITY_MIN
                                                             : persister->pending_capacity * 2;
        kci_persister_pending_item *grown = realloc(persister->pending, capacity * sizeof *grown);
        if (grown == NULL) return false;
        persister->pending = grown;
        persister->pending_capacity = capacity;
    }
    entry->pending_slot = persister->pending_count;
    persister->pending[persister->pending_count++] =
        (kci_persister_pending_item){.id = entry->id, .due_ms = due_ms};
    kci_gauge_set(&kci_persister_metric_values.pending, persister->pending_count);
    if (due_ms < persister->pending_due_min_ms) persister->pending_due_min_ms = due_ms;
    assert(persister->pending_due_min_ms <= due_ms);
    return true;
}

/* Takes the entry out of the array (if it is in it); the last item moves
 * into its slot. */
void kci_persister_pending_remove(kci_persister *persister, kci_index_entry *entry)
{
    uint32_t slot = entry->pending_slot;
    if (slot == KCI_INDEX_NO_SLOT) return;
    assert(slot < persister->pending_count);
    assert(memcmp(persister->pending[slot].id.bytes, entry->id.bytes, sizeof entry->id.bytes) == 0);
    uint32_t last = persister->pending_count - 1;
    if (slot != last) {
        persister->pending[slot] = persister->pending[last];
        kci_index_entry *moved = kci_index_find(&persister->index, &persister->pending[slot].id);
        assert(moved != NULL && moved->pending_slot == last);
        moved->pending_slot = slot;
    }
    persister->pending_count--;
    kci_gauge_set(&kci_persister_metric_values.pending, persister->pending_count);
    entry->pending_slot = KCI_INDEX_NO_SLOT;
}

/* ---- the segment table ------------------------------------------------------ */

/* The segment's row, the table grown to hold it; NULL for a segment removed
 * already, or when the table cannot grow. */
static kci_persister_segment_info *segment_at(kci_persister *persister, uint32_t number)
{
    if (persister->segment_count == 0) persister->segment_base = number;
    if (number < persister->segment_base) return NULL; /* removed already */
    uint32_t index = number - persister->segment_base;
    if (index >= persister->segment_capacity) {
        uint32_t capacity = persister->segment_capacity < SEGMENT_TABLE_MIN
                                ? SEGMENT_TABLE_MIN
                                : persister->segment_capacity;
        while (capacity <= index)
            capacity *= 2;
        kci_persister_segment_info *grown = realloc(persister->segments, capacity * sizeof *grown);
        if (grown == NULL) {
            persister->segment_counts_inexact = true;
            return NULL;
        }
        memset(grown + persister->segment_capacity, 0,
               (capacity - persister->segment_capacity) * sizeof *grown);
        persister->segments = grown;
        persister->segment_capacity = capacity;
    }
    if (index >= persister->segment_count) persister->segment_count = index + 1;
    assert(persister->segment_count <= persister->segment_capacity);
    return &persister->segments[index];
}

/* A request became PENDING: its segment has one more unresolved. */
void kci_persister_segment_add_request(kci_persister *persister, kci_position position)
{
    kci_persister_segment_info *info = segment_at(persister, kci_position_segment(position));
    if (info == NULL) return;
    assert(info->unresolved < UINT32_MAX);
    info->unresolved++;
}

void kci_persister_segment_touch(kci_persister *persister, kci_position position, int64_t wall_ms)
{
    kci_persister_segment_info *info = segment_at(persister, kci_position_segment(position));
    if (info != NULL && wall_ms > info->newest_ms) info->newest_ms = wall_ms;
}

/* A request was replied or died: its segment has one fewer unresolved. */
void kci_persister_segment_resolve(kci_persister *persister, kci_position request)
{
    kci_persister_segment_info *info = segment_at(persister, kci_position_segment(request));
    /* Never below zero: a request is resolved once, after it was counted. */
    assert(info == NULL || info->unresolved > 0 || persister->segment_counts_inexact);
    if (info != NULL && info->unresolved > 0) info->unresolved--;
}

/* Only a prefix: a later segment may hold the replies of an earlier one. */
uint32_t kci_persister_segments_removable_below(const kci_persister *persister,
                                                uint32_t segment_current, int64_t cutoff_ms)
{
    uint32_t below = persister->segment_base;
    for (uint32_t index = 0; index < persister->segment_count; index++) {
        uint32_t number = persister->segment_base + index;
        const kci_persister_segment_info *info = &persister->segments[index];
        if (number >= segment_current || info->unresolved > 0 || info->newest_ms >= cutoff_ms)
            break;
        below = number + 1;
    }
    assert(below >= persister->segment_base);
    assert(below - persister->segment_base <= persister->segment_count);
    return below;
}

/* The segments below `below` are gone from the log: drop their rows. A
 * compaction that raced another may come with a `below` under the base
 * already: then every row is dropped, and the counts are no longer exact. */
void kci_persister_segments_forget_below(kci_persister *persister, uint32_t below)
{
    if (below < persister->segment_base) persister->segment_counts_inexact = true;
    uint32_t shift = below - persister->segment_base;
    if (shift > persister->segment_count) shift = persister->segment_count;
    memmove(persister->segments, persister->segments + shift,
            (persister->segment_count - shift) * sizeof *persister->segments);
    memset(persister->segments + persister->segment_count - shift, 0,
           shift * sizeof *persister->segments);
    persister->segment_count -= shift;
    persister->segment_base = below;
    assert(persister->segment_count <= persister->segment_capacity);
    assert(persister->segment_count == 0 || persister->segments != NULL);
}
