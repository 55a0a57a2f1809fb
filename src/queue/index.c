/* index.c - the id -> entry hash table (see index.h). The load limit keeps
 * a free slot in every table, which is what ends each probe. */
#include "index.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

enum { LOAD_PERCENT_MAX = 70 };

_Static_assert((KCI_INDEX_CAPACITY_MIN & (KCI_INDEX_CAPACITY_MIN - 1)) == 0,
               "the capacity is a power of two: slots are hashes masked");
_Static_assert((KCI_INDEX_CAPACITY_MIN * LOAD_PERCENT_MAX) / 100 >= 1,
               "a table one entry over its load limit fits in twice its capacity");

static uint64_t hash_id(const kci_uuid *id)
{
    uint64_t word;
    memcpy(&word, id->bytes + 8, sizeof word);
    word ^= word >> 33;
    word *= 0xff51afd7ed558ccdULL;
    word ^= word >> 33;
    return word;
}

bool kci_index_init(kci_index *index)
{
    index->capacity = KCI_INDEX_CAPACITY_MIN;
    index->count = 0;
    index->entries = calloc(index->capacity, sizeof *index->entries);
    assert((index->capacity & (index->capacity - 1)) == 0);
    return index->entries != NULL;
}

void kci_index_destroy(kci_index *index)
{
    assert(index->entries != NULL || index->count == 0);
    if (index->entries != NULL)
        for (uint64_t slot = 0; slot < index->capacity; slot++)
            free(index->entries[slot].notify);
    free(index->entries);
    memset(index, 0, sizeof *index);
}

static kci_index_entry *probe(const kci_index *index, const kci_uuid *id)
{
    /* A free slot ends the probe: there is one below the load limit. */
    assert(index->count < index->capacity);
    uint64_t mask = index->capacity - 1;
    for (uint64_t slot = hash_id(id) & mask;; slot = (slot + 1) & mask) {
        kci_index_entry *entry = &index->entries[slot];
        if (entry->state == 0 || memcmp(entry->id.bytes, id->bytes, sizeof id->bytes) == 0)
            return entry;
    }
}

kci_index_entry *kci_index_find(kci_index *index, const kci_uuid *id)
{
    kci_index_entry *entry = probe(index, id);
    if (entry->state == 0) return NULL;
    assert(memcmp(entry->id.bytes, id->bytes, sizeof id->bytes) == 0);
    assert(entry->state >= KCI_ENTRY_STORING && entry->state <= KCI_ENTRY_DEAD);
    return entry;
}

static bool grow(kci_index *index)
{
    assert(index->capacity <= UINT64_MAX / 2);
    uint64_t capacity = index->capacity * 2;
    kci_index_entry *entries = calloc(capacity, sizeof *entries);
    if (entries == NULL) return false;
    kci_index old = *index;
    index->entries = entries;
    index->capacity = capacity;
    uint64_t moved = 0;
    for (uint64_t slot = 0; slot < old.capacity; slot++) {
        if (old.entries[slot].state == 0) continue;
        kci_index_entry *target = probe(index, &old.entries[slot].id);
        assert(target->state == 0); /* ids are unique */
        *target = old.entries[slot];
        moved++;
    }
    assert(moved == index->count);
    free(old.entries);
    return true;
}

kci_index_entry *kci_index_insert(kci_index *index, const kci_uuid *id, bool *created)
{
    *created = false;
    kci_index_entry *entry = probe(index, id);
    if (entry->state != 0) return entry;
    if (index->count >= KCI_INDEX_ENTRIES_MAX) return NULL;
    if ((index->count + 1) * 100 > index->capacity * LOAD_PERCENT_MAX) {
        if (!grow(index)) return NULL;
        entry = probe(index, id);
    }
    memset(entry, 0, sizeof *entry);
    entry->id = *id;
    entry->pending_slot = KCI_INDEX_NO_SLOT;
    index->count++;
    *created = true;
    assert(index->count <= KCI_INDEX_ENTRIES_MAX);
    assert(index->count * 100 <= index->capacity * LOAD_PERCENT_MAX);
    return entry; /* the caller sets state != 0 before the next call */
}

/* Backward-shift deletion: later entries of the same run move up so no
 * probe sequence is cut by the hole. */
void kci_index_remove(kci_index *index, kci_index_entry *entry)
{
    assert(entry->state != 0 && index->count > 0);
    assert(entry >= index->entries && entry < index->entries + index->capacity);
    uint64_t mask = index->capacity - 1;
    uint64_t hole = (uint64_t)(entry - index->entries);
    free(entry->notify);
    for (uint64_t slot = (hole + 1) & mask;; slot = (slot + 1) & mask) {
        kci_index_entry *candidate = &index->entries[slot];
        if (candidate->state == 0) break;
        uint64_t home = hash_id(&candidate->id) & mask;
        /* Move it if its home is not within (hole, slot]. */
        bool stays = hole <= slot ? (home > hole && home <= slot) : (home > hole || home <= slot);
        if (stays) continue;
        index->entries[hole] = *candidate;
        hole = slot;
    }
    memset(&index->entries[hole], 0, sizeof index->entries[hole]);
    index->count--;
}

uint64_t kci_index_remove_below(kci_index *index, uint32_t below,
                                void (*removed)(void *context, kci_index_entry *entry),
                                void *context)
{
    uint64_t removed_count = 0;
    uint64_t count_before = index->count;
    for (uint64_t slot = 0; slot < index->capacity;) {
        kci_index_entry *entry = &index->entries[slot];
        if (entry->state != 0 && entry->state != KCI_ENTRY_STORING &&
            kci_position_segment(entry->request) < below) {
            if (removed != NULL) removed(context, entry);
            kci_index_remove(index, entry);
            removed_count++;
            continue; /* another entry may have moved into this slot */
        }
        slot++;
    }
    assert(index->count + removed_count == count_before);
    return removed_count;
}
