/* sublist.h - the subscription index: a trie of subject tokens with separate
 * children for '*' and '>', plus a bounded cache of match results.
 *
 * The sublist stores opaque subscription pointers; it never dereferences
 * them. A subscription is identified by (subject, queue, pointer).
 *
 * Lifetime of results: kci_sublist_match returns a pointer to a result owned
 * by the sublist. It stays valid, with its contents unchanged, until
 * kci_sublist_collect() is called, even if subscriptions are inserted or
 * removed meanwhile (retired results are parked, not freed). The broker
 * calls collect at a safe point after each batch of input.
 *
 * Single-threaded: the broker's event loop owns it. */
#ifndef KCI_SUBLIST_H
#define KCI_SUBLIST_H

#include <stddef.h>
#include <stdint.h>

#include "kingcobra/err.h"

typedef struct kci_sublist kci_sublist;

/* All members of one queue group that match a subject. */
typedef struct kci_match_group {
    const char *name; /* queue group name, not NUL-terminated */
    size_t name_len;
    void **members;
    uint32_t member_count;
} kci_match_group;

typedef struct kci_match {
    void **plain; /* subscriptions without a queue group */
    uint32_t plain_count;
    kci_match_group *groups;
    uint32_t group_count;
} kci_match;

typedef struct kci_sublist_stats {
    uint64_t subscription_count;
    uint64_t cache_entry_count;
    uint64_t insert_count;
    uint64_t remove_count;
    uint64_t match_count;
    uint64_t cache_hit_count;
    uint32_t fanout_max;   /* most subscriptions one match returned */
    double fanout_average; /* subscriptions per match, averaged over matches */
} kci_sublist_stats;

enum { KCI_SUBLIST_CACHE_ENTRIES_DEFAULT = 1024 };

kc_err kci_sublist_create(kci_sublist **out, uint32_t cache_entries_max);
void kci_sublist_destroy(kci_sublist *sublist);

/* subject must be a valid filter; queue may be NULL (queue_len 0). The
 * sublist copies what it needs. Inserting the same (subject, queue, sub)
 * twice returns KC_ERR_EXISTS. */
kc_err kci_sublist_insert(kci_sublist *sublist, const char *subject, size_t subject_len,
                          const char *queue, size_t queue_len, void *sub);
/* Returns KC_ERR_NOT_FOUND if no such subscription. */
kc_err kci_sublist_remove(kci_sublist *sublist, const char *subject, size_t subject_len,
                          const char *queue, size_t queue_len, void *sub);
/* subject must be a valid literal, or a valid filter whose '*' and '>'
 * tokens are then matched as literal tokens (nats-server's behaviour for a
 * non-pedantic publish; such results are not cached). *out is never NULL
 * on KC_OK (an empty result has zero counts). */
kc_err kci_sublist_match(kci_sublist *sublist, const char *subject, size_t subject_len,
                         const kci_match **out);
/* Frees results retired since the previous call. */
void kci_sublist_collect(kci_sublist *sublist);
void kci_sublist_get_stats(const kci_sublist *sublist, kci_sublist_stats *out);
/* Trie nodes currently allocated: 0 once every subscription is removed, so
 * tests and monitoring can see that churn does not leak. */
uint64_t kci_sublist_node_count(const kci_sublist *sublist);

#endif
