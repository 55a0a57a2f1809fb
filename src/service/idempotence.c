/* idempotence.c - the reply cache keyed by Kc-Id (see idempotence.h).
 *
 * Layout: a fixed array of entries allocated at creation, a chained hash
 * table of entry indices (buckets: a power of two >= entries_max, keys
 * hashed with a per-cache random seed because ids come from the network),
 * a free list threaded through the chain links, and a doubly linked LRU list
 * holding only DONE entries (most recent at the head). Entries in progress
 * stay off the LRU list, so eviction can never take one.
 *
 * Expiry is lazy: a lookup that finds an expired entry drops it, and room is
 * made by first dropping expired entries from the LRU tail, then evicting
 * the LRU tail. A hit refreshes an entry's LRU place but not its expiry
 * time, so an expired entry may linger in the middle of the list until it
 * is looked up or reaches the tail; it is never served.
 *
 * Stored replies are one allocation each (payload, then the error message
 * and its NUL); that is the one allocation per stored reply this cache
 * makes, outside the hot path of requests that are not stored. */
#include "service/idempotence.h"

#include <assert.h>
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "common/clock.h"
#include "common/hash.h"

#define ENTRY_NONE UINT32_MAX

enum {
    BUCKETS_MIN = 16,
};

typedef enum entry_state {
    ENTRY_FREE = 0,
    ENTRY_IN_PROGRESS = 1,
    ENTRY_DONE = 2,
} entry_state;

typedef struct entry {
    char id[KCI_IDEMPOTENCE_KEY_BYTES_MAX + 1];
    size_t id_len;
    uint64_t hash;
    entry_state state;
    uint32_t chain_next; /* hash chain, or the free list when FREE */
    uint32_t lru_prev;
    uint32_t lru_next;
    int64_t expires_ms;
    char reply_id[KC_UUID_TEXT_BYTES + 1];
    int error_code;
    char *data; /* payload, then the error message and its NUL */
    size_t payload_len;
    size_t data_bytes;
} entry;

struct kci_idempotence {
    pthread_mutex_t lock;
    pthread_cond_t finished; /* CLOCK_MONOTONIC: an entry left the in-progress state */
    entry *entries;
    uint32_t entries_max;
    uint32_t *buckets;
    uint32_t bucket_mask;
    uint32_t free_head;
    uint32_t lru_head;
    uint32_t lru_tail;
    uint64_t seed;
    size_t bytes_max;
    int64_t ttl_ms;
    kci_clock_ms clock;
    void *clock_context;
    kci_idempotence_stats stats;
};

static int64_t realtime_ms(void *context)
{
    (void)context;
    return kci_wall_ms();
}

static int64_t cache_now_ms(const kci_idempotence *cache)
{
    return cache->clock(cache->clock_context);
}

/* ---- lists -------------------------------------------------------------- */

static uint32_t *bucket_of(kci_idempotence *cache, uint64_t hash)
{
    return &cache->buckets[hash & cache->bucket_mask];
}

static uint32_t find(kci_idempotence *cache, const char *id, size_t id_len, uint64_t hash)
{
    uint32_t index = *bucket_of(cache, hash);
    for (uint32_t step = 0; index != ENTRY_NONE && step < cache->entries_max; step++) {
        const entry *candidate = &cache->entries[index];
        if (candidate->hash == hash && candidate->id_len == id_len &&
            memcmp(candidate->id, id, id_len) == 0)
            return index;
        index = candidate->chain_next;
    }
    return ENTRY_NONE;
}

static void chain_unlink(kci_idempotence *cache, uint32_t index)
{
    uint32_t *link = bucket_of(cache, cache->entries[index].hash);
    for (uint32_t step = 0; *link != ENTRY_NONE && step < cache->entries_max; step++) {
        if (*link == index) {
            *link = cache->entries[index].chain_next;
            return;
        }
        link = &cache->entries[*link].chain_next;
    }
    assert(!"entry missing from its hash chain");
}

static void lru_unlink(kci_idempotence *cache, uint32_t index)
{
    entry *e = &cache->entries[index];
    if (e->lru_prev != ENTRY_NONE)
        cache->entries[e->lru_prev].lru_next = e->lru_next;
    else
        cache->lru_head = e->lru_next;
    if (e->lru_next != ENTRY_NONE)
        cache->entries[e->lru_next].lru_prev = e->lru_prev;
    else
        cache->lru_tail = e->lru_prev;
    e->lru_prev = e->lru_next = ENTRY_NONE;
}

static void lru_push_front(kci_idempotence *cache, uint32_t index)
{
    entry *e = &cache->entries[index];
    e->lru_prev = ENTRY_NONE;
    e->lru_next = cache->lru_head;
    if (cache->lru_head != ENTRY_NONE) cache->entries[cache->lru_head].lru_prev = index;
    cache->lru_head = index;
    if (cache->lru_tail == ENTRY_NONE) cache->lru_tail = index;
}

/* Returns an entry of any state to the free list. */
static void entry_release(kci_idempotence *cache, uint32_t index)
{
    entry *e = &cache->entries[index];
    assert(e->state != ENTRY_FREE);
    chain_unlink(cache, index);
    if (e->state == ENTRY_DONE) {
        lru_unlink(cache, index);
        assert(cache->stats.bytes >= e->data_bytes);
        cache->stats.bytes -= e->data_bytes;
    } else {
        assert(cache->stats.in_progress_count > 0);
        cache->stats.in_progress_count--;
    }
    free(e->data);
    e->data = NULL;
    e->data_bytes = 0;
    e->state = ENTRY_FREE;
    e->chain_next = cache->free_head;
    cache->free_head = index;
    assert(cache->stats.entry_count > 0);
    cache->stats.entry_count--;
}

/* Drops entries expired at now_ms from the LRU tail; then, if want_entry
 * and nothing is free, or while the bytes exceed bytes_needed's room,
 * evicts the tail. */
static void make_room(kci_idempotence *cache, int64_t now_ms, bool want_entry, size_t bytes_needed)
{
    for (uint32_t step = 0; cache->lru_tail != ENTRY_NONE && step < cache->entries_max; step++) {
        if (cache->entries[cache->lru_tail].expires_ms > now_ms) break;
        entry_release(cache, cache->lru_tail);
        cache->stats.expiry_count++;
    }
    for (uint32_t step = 0; cache->lru_tail != ENTRY_NONE && step < cache->entries_max; step++) {
        bool short_of_entries = want_entry && cache->free_head == ENTRY_NONE;
        bool short_of_bytes = cache->stats.bytes + bytes_needed > cache->bytes_max;
        if (!short_of_entries && !short_of_bytes) break;
        entry_release(cache, cache->lru_tail);
        cache->stats.eviction_count++;
    }
}

static uint32_t claim(kci_idempotence *cache, const char *id, size_t id_len, uint64_t hash)
{
    if (cache->free_head == ENTRY_NONE) make_room(cache, cache_now_ms(cache), true, 0);
    uint32_t index = cache->free_head;
    if (index == ENTRY_NONE) return ENTRY_NONE;
    entry *e = &cache->entries[index];
    assert(e->state == ENTRY_FREE);
    cache->free_head = e->chain_next;
    memcpy(e->id, id, id_len);
    e->id[id_len] = '\0';
    e->id_len = id_len;
    e->hash = hash;
    e->state = ENTRY_IN_PROGRESS;
    e->lru_prev = e->lru_next = ENTRY_NONE;
    uint32_t *bucket = bucket_of(cache, hash);
    e->chain_next = *bucket;
    *bucket = index;
    cache->stats.entry_count++;
    cache->stats.in_progress_count++;
    return index;
}

/* ---- API ---------------------------------------------------------------- */

static uint32_t bucket_count_for(uint32_t entries_max)
{
    uint32_t count = BUCKETS_MIN;
    while (count < entries_max)
        count <<= 1;
    return count;
}

static kc_err cache_init_sync(kci_idempotence *cache)
{
    pthread_condattr_t attributes;
    if (pthread_condattr_init(&attributes) != 0) return KC_ERR_NOMEM;
    pthread_condattr_setclock(&attributes, CLOCK_MONOTONIC);
    int rc = pthread_cond_init(&cache->finished, &attributes);
    pthread_condattr_destroy(&attributes);
    if (rc != 0) return KC_ERR_NOMEM;
    if (pthread_mutex_init(&cache->lock, NULL) != 0) {
        pthread_cond_destroy(&cache->finished);
        return KC_ERR_NOMEM;
    }
    return KC_OK;
}

kc_err kci_idempotence_create(kci_idempotence **out, uint32_t entries_max, size_t bytes_max,
                              int64_t ttl_ms, kci_clock_ms clock, void *clock_context)
{
    assert(out != NULL);
    *out = NULL;
    if (entries_max == 0 || entries_max > KCI_IDEMPOTENCE_ENTRIES_MAX || bytes_max == 0 ||
        ttl_ms <= 0)
        return KC_ERR_INVALID_ARGUMENT;
    kci_idempotence *cache = calloc(1, sizeof(*cache));
    if (cache == NULL) return KC_ERR_NOMEM;
    uint32_t bucket_count = bucket_count_for(entries_max);
    cache->entries = calloc(entries_max, sizeof(entry));
    cache->buckets = malloc((size_t)bucket_count * sizeof(uint32_t));
    if (cache->entries == NULL || cache->buckets == NULL || cache_init_sync(cache) != KC_OK) {
        free(cache->entries);
        free(cache->buckets);
        free(cache);
        return KC_ERR_NOMEM;
    }
    for (uint32_t i = 0; i < bucket_count; i++)
        cache->buckets[i] = ENTRY_NONE;
    for (uint32_t i = 0; i < entries_max; i++)
        cache->entries[i].chain_next = (i + 1 < entries_max) ? i + 1 : ENTRY_NONE;
    cache->entries_max = entries_max;
    cache->bucket_mask = bucket_count - 1;
    cache->free_head = 0;
    cache->lru_head = cache->lru_tail = ENTRY_NONE;
    if (getrandom(&cache->seed, sizeof(cache->seed), 0) != (ssize_t)sizeof(cache->seed))
        cache->seed = (uint64_t)realtime_ms(NULL) ^ (uint64_t)(uintptr_t)cache;
    cache->bytes_max = bytes_max;
    cache->ttl_ms = ttl_ms;
    cache->clock = clock != NULL ? clock : realtime_ms;
    cache->clock_context = clock_context;
    *out = cache;
    return KC_OK;
}

void kci_idempotence_destroy(kci_idempotence *cache)
{
    if (cache == NULL) return;
    assert(cache->stats.in_progress_count == 0);
    for (uint32_t i = 0; i < cache->entries_max; i++)
        free(cache->entries[i].data);
    pthread_cond_destroy(&cache->finished);
    pthread_mutex_destroy(&cache->lock);
    free(cache->entries);
    free(cache->buckets);
    free(cache);
}

void kci_stored_reply_clear(kci_stored_reply *stored)
{
    if (stored == NULL) return;
    free(stored->payload);
    memset(stored, 0, sizeof(*stored));
}

static kc_err copy_out(const entry *e, kci_stored_reply *stored)
{
    memset(stored, 0, sizeof(*stored));
    if (e->payload_len > 0) {
        stored->payload = malloc(e->payload_len);
        if (stored->payload == NULL) return KC_ERR_NOMEM;
        memcpy(stored->payload, e->data, e->payload_len);
    }
    stored->payload_len = e->payload_len;
    memcpy(stored->reply_id, e->reply_id, sizeof(stored->reply_id));
    stored->error_code = e->error_code;
    const char *message = e->data != NULL ? e->data + e->payload_len : "";
    snprintf(stored->error_message, sizeof(stored->error_message), "%s", message);
    return KC_OK;
}

/* One look at id under the lock; *waiting is true when it is in progress. */
static kc_err begin_once(kci_idempotence *cache, const char *id, size_t id_len, uint64_t hash,
                         kci_idempotence_outcome *outcome, kci_stored_reply *stored, bool *waiting)
{
    *waiting = false;
    uint32_t index = find(cache, id, id_len, hash);
    if (index != ENTRY_NONE && cache->entries[index].state == ENTRY_DONE &&
        cache->entries[index].expires_ms <= cache_now_ms(cache)) {
        entry_release(cache, index);
        cache->stats.expiry_count++;
        index = ENTRY_NONE;
    }
    if (index == ENTRY_NONE) {
        index = claim(cache, id, id_len, hash);
        *outcome = index == ENTRY_NONE ? KCI_IDEMPOTENCE_UNTRACKED : KCI_IDEMPOTENCE_CLAIMED;
        return KC_OK;
    }
    if (cache->entries[index].state == ENTRY_IN_PROGRESS) {
        *waiting = true;
        *outcome = KCI_IDEMPOTENCE_BUSY;
        return KC_OK;
    }
    kc_err err = copy_out(&cache->entries[index], stored);
    if (err != KC_OK) return err;
    lru_unlink(cache, index);
    lru_push_front(cache, index);
    cache->stats.hit_count++;
    *outcome = KCI_IDEMPOTENCE_DONE;
    return KC_OK;
}

kc_err kci_idempotence_begin(kci_idempotence *cache, const char *id, int64_t wait_ms,
                             kci_idempotence_outcome *outcome, kci_stored_reply *stored)
{
    assert(cache != NULL && outcome != NULL && stored != NULL);
    stored->payload = NULL; /* the rest is set with DONE (copy_out) */
    stored->payload_len = 0;
    size_t id_len = id != NULL ? strnlen(id, KCI_IDEMPOTENCE_KEY_BYTES_MAX + 1) : 0;
    if (id_len == 0 || id_len > KCI_IDEMPOTENCE_KEY_BYTES_MAX) return KC_ERR_INVALID_ARGUMENT;
    uint64_t hash = kci_hash_bytes_seeded(id, id_len, cache->seed);
    struct timespec deadline = {0, 0}; /* read when first needed: most ids are new */
    kc_err err = KC_OK;
    bool waiting = false;
    bool timed_out = false;
    pthread_mutex_lock(&cache->lock);
    for (;;) {
        err = begin_once(cache, id, id_len, hash, outcome, stored, &waiting);
        if (err != KC_OK || !waiting || timed_out) break;
        if (deadline.tv_sec == 0)
            deadline = kci_deadline_after(CLOCK_MONOTONIC, wait_ms > 0 ? wait_ms : 0);
        /* Spurious wake-ups and other ids' finishes just loop; the deadline
         * bounds the total wait. */
        timed_out = pthread_cond_timedwait(&cache->finished, &cache->lock, &deadline) == ETIMEDOUT;
    }
    pthread_mutex_unlock(&cache->lock);
    return err;
}

static uint32_t find_in_progress(kci_idempotence *cache, const char *id)
{
    size_t id_len = strnlen(id, KCI_IDEMPOTENCE_KEY_BYTES_MAX + 1);
    assert(id_len > 0 && id_len <= KCI_IDEMPOTENCE_KEY_BYTES_MAX);
    uint64_t hash = kci_hash_bytes_seeded(id, id_len, cache->seed);
    uint32_t index = find(cache, id, id_len, hash);
    /* Only the claimer finishes or abandons, and in-progress entries are
     * never evicted: the entry must be there. */
    assert(index != ENTRY_NONE && cache->entries[index].state == ENTRY_IN_PROGRESS);
    return index;
}

static kc_err store(kci_idempotence *cache, uint32_t index, const char *reply_id,
                    const void *payload, size_t payload_len, int error_code,
                    const char *error_message)
{
    size_t message_len = strnlen(error_message, KC_ERROR_MESSAGE_BYTES_MAX - 1);
    size_t data_bytes = payload_len + message_len + 1;
    if (data_bytes > cache->bytes_max) {
        entry_release(cache, index);
        return KC_OK; /* too large to remember: documented, not an error */
    }
    int64_t now_ms = cache_now_ms(cache);
    make_room(cache, now_ms, false, data_bytes);
    char *data = malloc(data_bytes);
    if (data == NULL) {
        entry_release(cache, index);
        return KC_ERR_NOMEM;
    }
    if (payload_len > 0) memcpy(data, payload, payload_len);
    memcpy(data + payload_len, error_message, message_len);
    data[payload_len + message_len] = '\0';
    entry *e = &cache->entries[index];
    e->data = data;
    e->data_bytes = data_bytes;
    e->payload_len = payload_len;
    e->error_code = error_code;
    size_t reply_id_len = reply_id != NULL ? strnlen(reply_id, KC_UUID_TEXT_BYTES) : 0;
    if (reply_id_len > 0) memcpy(e->reply_id, reply_id, reply_id_len);
    e->reply_id[reply_id_len] = '\0';
    e->expires_ms = now_ms + cache->ttl_ms;
    e->state = ENTRY_DONE;
    assert(cache->stats.in_progress_count > 0);
    cache->stats.in_progress_count--;
    cache->stats.bytes += data_bytes;
    lru_push_front(cache, index);
    return KC_OK;
}

kc_err kci_idempotence_finish(kci_idempotence *cache, const char *id, const char *reply_id,
                              const void *payload, size_t payload_len, int error_code,
                              const char *error_message)
{
    assert(cache != NULL && id != NULL);
    assert(payload != NULL || payload_len == 0);
    pthread_mutex_lock(&cache->lock);
    uint32_t index = find_in_progress(cache, id);
    kc_err err = store(cache, index, reply_id, payload, payload_len, error_code,
                       error_message != NULL ? error_message : "");
    pthread_cond_broadcast(&cache->finished);
    pthread_mutex_unlock(&cache->lock);
    return err;
}

void kci_idempotence_abandon(kci_idempotence *cache, const char *id)
{
    assert(cache != NULL && id != NULL);
    pthread_mutex_lock(&cache->lock);
    entry_release(cache, find_in_progress(cache, id));
    pthread_cond_broadcast(&cache->finished);
    pthread_mutex_unlock(&cache->lock);
}

void kci_idempotence_stats_get(kci_idempotence *cache, kci_idempotence_stats *out)
{
    assert(cache != NULL && out != NULL);
    pthread_mutex_lock(&cache->lock);
    *out = cache->stats;
    pthread_mutex_unlock(&cache->lock);
}
