/* sid_index.h - one client's subscriptions by sid, for SUB and UNSUB.
 *
 * An open-addressing table keyed by a seeded hash of the sid, so finding a
 * sid costs one probe run whatever the number of subscriptions: a client
 * with 100,000 subscriptions must not make each SUB scan them all while
 * every other client waits on the single event loop. The seed is drawn per
 * client, so a client cannot aim sids at one run. The table holds
 * pointers; the subscriptions belong to the client. */
#ifndef KCI_SID_INDEX_H
#define KCI_SID_INDEX_H

#include <stddef.h>
#include <stdint.h>

#include "kingcobra/err.h"

struct kci_subscription;

typedef struct kci_sid_slot {
    uint64_t hash;
    struct kci_subscription *subscription; /* NULL: empty */
} kci_sid_slot;

typedef struct kci_sid_index {
    kci_sid_slot *slots;
    uint32_t slot_count; /* 0 or a power of two; at least twice item_count */
    uint32_t item_count;
    uint64_t seed;
} kci_sid_index;

void kci_sid_index_init(kci_sid_index *index, uint64_t seed);
/* The subscription with this sid, or NULL. */
struct kci_subscription *kci_sid_index_find(const kci_sid_index *index, const char *sid,
                                            size_t sid_len);
/* Adds a subscription whose sid is not in the index yet. KC_ERR_NOMEM or
 * KC_ERR_LIMIT leave the index as it was. */
kc_err kci_sid_index_add(kci_sid_index *index, struct kci_subscription *subscription);
/* Removes a subscription that is in the index. */
void kci_sid_index_remove(kci_sid_index *index, const struct kci_subscription *subscription);
void kci_sid_index_release(kci_sid_index *index);

#endif
