/* sid_index.c - one client's subscriptions by sid (see sid_index.h).
 *
 * Linear probing at a load of at most one half, backward-shift delete (no
 * tombstones, so a client that subscribes and unsubscribes forever keeps
 * short runs). Each slot keeps the sid's hash, so growing and deleting never
 * hash again. The table does not shrink: it is sized by the client's peak
 * and freed with the client. */
#include "sid_index.h"

#include <assert.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "client.h"
#include "common/hash.h"

enum {
    SID_SLOTS_MIN = 8,
    SID_SLOTS_MAX = 1u << 30, /* past every sublist's subscription limit */
};

void kci_sid_index_init(kci_sid_index *index, uint64_t seed)
{
    *index = (kci_sid_index){.seed = seed};
}

static uint64_t sid_hash(const kci_sid_index *index, const char *sid, size_t sid_len)
{
    return kci_hash_bytes_seeded(sid, sid_len, index->seed);
}

static bool sid_equal(const kci_subscription *subscription, const char *sid, size_t sid_len)
{
    return subscription->sid_len == sid_len && memcmp(subscription->sid, sid, sid_len) == 0;
}

/* The slot holding sid, or the empty slot that ends its run. */
static uint32_t slot_of(const kci_sid_index *index, uint64_t hash, const char *sid, size_t sid_len)
{
    assert(index->slot_count > 0 && index->item_count < index->slot_count);
    uint32_t mask = index->slot_count - 1;
    uint32_t at = (uint32_t)hash & mask;
    for (uint32_t step = 0; step < index->slot_count; step++) {
        const kci_sid_slot *slot = &index->slots[at];
        if (slot->subscription == NULL) return at;
        if (slot->hash == hash && sid_equal(slot->subscription, sid, sid_len)) return at;
        at = (at + 1) & mask;
    }
    assert(false && "a table at most half full has an empty slot");
    return at;
}

/* Into the first empty slot of hash's run (the sid is known to be absent). */
static void place(kci_sid_slot *slots, uint32_t slot_count, uint64_t hash,
                  kci_subscription *subscription)
{
    uint32_t mask = slot_count - 1;
    uint32_t at = (uint32_t)hash & mask;
    for (uint32_t step = 0; step < slot_count && slots[at].subscription != NULL; step++)
        at = (at + 1) & mask;
    assert(slots[at].subscription == NULL);
    slots[at] = (kci_sid_slot){hash, subscription};
}

static kc_err grow(kci_sid_index *index)
{
    if (index->slot_count >= SID_SLOTS_MAX) return KC_ERR_LIMIT;
    uint32_t slot_count = index->slot_count == 0 ? SID_SLOTS_MIN : index->slot_count * 2;
    kci_sid_slot *slots = calloc(slot_count, sizeof *slots);
    if (slots == NULL) return KC_ERR_NOMEM;
    for (uint32_t at = 0; at < index->slot_count; at++) {
        const kci_sid_slot *slot = &index->slots[at];
        if (slot->subscription != NULL) place(slots, slot_count, slot->hash, slot->subscription);
    }
    free(index->slots);
    index->slots = slots;
    index->slot_count = slot_count;
    return KC_OK;
}

kci_subscription *kci_sid_index_find(const kci_sid_index *index, const char *sid, size_t sid_len)
{
    if (index->item_count == 0) return NULL;
    uint32_t at = slot_of(index, sid_hash(index, sid, sid_len), sid, sid_len);
    return index->slots[at].subscription;
}

kc_err kci_sid_index_add(kci_sid_index *index, kci_subscription *subscription)
{
    assert(subscription != NULL);
    assert(kci_sid_index_find(index, subscription->sid, subscription->sid_len) == NULL);
    if ((uint64_t)(index->item_count + 1) * 2 > index->slot_count) {
        kc_err err = grow(index);
        if (err != KC_OK) return err;
    }
    place(index->slots, index->slot_count,
          sid_hash(index, subscription->sid, subscription->sid_len), subscription);
    index->item_count++;
    return KC_OK;
}

/* Backward-shift: pull later entries of the run into the hole unless that
 * would move one before its home slot. */
static void delete_at(kci_sid_index *index, uint32_t hole)
{
    uint32_t mask = index->slot_count - 1;
    uint32_t at = (hole + 1) & mask;
    for (uint32_t step = 0; step < index->slot_count; step++) {
        const kci_sid_slot *slot = &index->slots[at];
        if (slot->subscription == NULL) break;
        uint32_t home = (uint32_t)slot->hash & mask;
        if (((at - home) & mask) >= ((at - hole) & mask)) {
            index->slots[hole] = *slot;
            hole = at;
        }
        at = (at + 1) & mask;
    }
    index->slots[hole] = (kci_sid_slot){0, NULL};
    index->item_count--;
}

void kci_sid_index_remove(kci_sid_index *index, const kci_subscription *subscription)
{
    assert(index->item_count > 0);
    uint64_t hash = sid_hash(index, subscription->sid, subscription->sid_len);
    uint32_t at = slot_of(index, hash, subscription->sid, subscription->sid_len);
    assert(index->slots[at].subscription == subscription);
    delete_at(index, at);
}

void kci_sid_index_release(kci_sid_index *index)
{
    free(index->slots);
    index->slots = NULL;
    index->slot_count = index->item_count = 0;
}
