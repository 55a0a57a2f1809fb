/* index.h - the persister's in-memory index: request id -> where its
 * request and reply are in the log, and its state. Open addressing with
 * linear probing and backward-shift deletion, keyed by the 16 bytes of the
 * id (hashed from its last 8, which are random in UUIDv7 and v4); it
 * doubles at 70 % load. Not thread-safe: the persister's lock guards it.
 * Entry pointers are valid until the next insert or remove. */
#ifndef KCI_INDEX_H
#define KCI_INDEX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "segment.h"
#include "service/uuid.h"

enum {
    KCI_INDEX_CAPACITY_MIN = 1024,
    KCI_INDEX_ENTRIES_MAX = 1 << 28, /* 268 M requests: 15 GiB of index */
};
#define KCI_INDEX_NO_SLOT UINT32_MAX /* pending_slot of an entry not pending */

typedef enum kci_entry_state {
    KCI_ENTRY_STORING = 1,  /* the request's append is in flight: not acknowledged */
    KCI_ENTRY_PENDING = 2,  /* durable, dispatched, no reply yet */
    KCI_ENTRY_REPLYING = 3, /* the reply's append is in flight */
    KCI_ENTRY_REPLIED = 4,
    KCI_ENTRY_DEAD = 5, /* no reply after the maximum attempts */
} kci_entry_state;

typedef struct kci_index_entry {
    kci_uuid id;
    kci_position request;
    kci_position reply;
    char *notify;          /* Kc-Notify subject while it waits; malloc'd or NULL */
    uint32_t pending_slot; /* in the persister's pending array, or KCI_INDEX_NO_SLOT */
    uint16_t attempts;     /* dispatches so far that reached a service */
    uint8_t state;         /* kci_entry_state; 0: free slot */
    uint8_t state_before_reply;
    uint16_t type_slot; /* the persister's row for its type (waiting.c); 0 in verify */
} kci_index_entry;

typedef struct kci_index {
    kci_index_entry *entries;
    uint64_t capacity; /* a power of two */
    uint64_t count;
} kci_index;

bool kci_index_init(kci_index *index);
void kci_index_destroy(kci_index *index);
kci_index_entry *kci_index_find(kci_index *index, const kci_uuid *id);
/* Finds or adds (state 0 and *created when new); NULL when out of memory or
 * at KCI_INDEX_ENTRIES_MAX. */
kci_index_entry *kci_index_insert(kci_index *index, const kci_uuid *id, bool *created);
void kci_index_remove(kci_index *index, kci_index_entry *entry);
/* Removes every entry whose request is in a segment below `below`; calls
 * removed(context, entry) for each first (to free what it owns). */
uint64_t kci_index_remove_below(kci_index *index, uint32_t below,
                                void (*removed)(void *context, kci_index_entry *entry),
                                void *context);

#endif
