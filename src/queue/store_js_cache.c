/* store_js_cache.c - the request records read at open, kept for their
 * first read (see store_js_cache.h).
 *
 * The entries are in an array in position order (the scan reads the stream
 * in order), so a read finds its position by binary search; a table of
 * entry indexes hashed by request id finds the entry a reply drops. An
 * entry whose record was dropped or taken keeps its place with no bytes. */
#include "store_js_cache.h"

#include <assert.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

enum {
    ENTRIES_MAX = 1 << 20, /* requests remembered, dropped or not */
    SLOTS_INITIAL = 1024,  /* a power of two */
};

typedef struct cached {
    uint64_t position;
    kci_uuid id;
    uint8_t *bytes; /* malloc'd; NULL once dropped or taken */
    size_t length;
} cached;

struct kci_queue_js_cache {
    pthread_mutex_t lock;
    cached *entries; /* ascending positions */
    size_t count, capacity;
    size_t *slots; /* entry index + 1 by id hash; 0: free */
    size_t slot_count;
    size_t bytes;
};

kci_queue_js_cache *kci_queue_js_cache_new(void)
{
    kci_queue_js_cache *cache = calloc(1, sizeof *cache);
    if (cache == NULL) return NULL;
    pthread_mutex_init(&cache->lock, NULL);
    return cache;
}

void kci_queue_js_cache_free(kci_queue_js_cache *cache)
{
    if (cache == NULL) return;
    for (size_t index = 0; index < cache->count; index++)
        free(cache->entries[index].bytes);
    free(cache->entries);
    free(cache->slots);
    pthread_mutex_destroy(&cache->lock);
    free(cache);
}

static size_t id_hash(const kci_uuid *id)
{
    uint64_t value = 0; /* the random end of a UUIDv4 or v7 */
    memcpy(&value, id->bytes + sizeof id->bytes - sizeof value, sizeof value);
    return (size_t)(value ^ (value >> 29));
}

/* The slot of id: its entry's, or the free one where it would go. */
static size_t *slot_of(kci_queue_js_cache *cache, const kci_uuid *id)
{
    assert(cache->slot_count > 0);
    size_t mask = cache->slot_count - 1;
    for (size_t probe = id_hash(id) & mask;; probe = (probe + 1) & mask) {
        size_t *slot = &cache->slots[probe];
        if (*slot == 0 ||
            memcmp(cache->entries[*slot - 1].id.bytes, id->bytes, sizeof id->bytes) == 0)
            return slot;
    }
}

/* Room for one more entry, and the slot table at most half full. */
static bool grow(kci_queue_js_cache *cache)
{
    if (cache->count == cache->capacity) {
        size_t capacity = cache->capacity > 0 ? cache->capacity * 2 : SLOTS_INITIAL / 2;
        cached *entries = realloc(cache->entries, capacity * sizeof *entries);
        if (entries == NULL) return false;
        cache->entries = entries;
        cache->capacity = capacity;
    }
    if ((cache->count + 1) * 2 <= cache->slot_count) return true;
    size_t slot_count = cache->slot_count > 0 ? cache->slot_count * 2 : SLOTS_INITIAL;
    size_t *slots = calloc(slot_count, sizeof *slots);
    if (slots == NULL) return false;
    free(cache->slots);
    cache->slots = slots;
    cache->slot_count = slot_count;
    for (size_t index = 0; index < cache->count; index++)
        *slot_of(cache, &cache->entries[index].id) = index + 1;
    return true;
}

void kci_queue_js_cache_put(kci_queue_js_cache *cache, const kci_uuid *id, uint64_t position,
                            const uint8_t *bytes, size_t length)
{
    pthread_mutex_lock(&cache->lock);
    bool room = cache->count < ENTRIES_MAX &&
                cache->bytes + length <= KCI_QUEUE_JS_CACHE_BYTES_MAX &&
                (cache->count == 0 || cache->entries[cache->count - 1].position < position);
    if (room && cache->slot_count > 0 && *slot_of(cache, id) != 0) room = false; /* a copy */
    uint8_t *copy = room && grow(cache) ? malloc(length) : NULL;
    if (copy != NULL) {
        memcpy(copy, bytes, length);
        cache->entries[cache->count] =
            (cached){.position = position, .id = *id, .bytes = copy, .length = length};
        cache->count++;
        *slot_of(cache, id) = cache->count;
        cache->bytes += length;
    }
    pthread_mutex_unlock(&cache->lock);
}

static void forget(kci_queue_js_cache *cache, cached *entry)
{
    assert(cache->bytes >= entry->length || entry->bytes == NULL);
    if (entry->bytes == NULL) return;
    free(entry->bytes);
    entry->bytes = NULL;
    cache->bytes -= entry->length;
}

void kci_queue_js_cache_drop(kci_queue_js_cache *cache, const kci_uuid *id)
{
    pthread_mutex_lock(&cache->lock);
    size_t *slot = cache->slot_count > 0 ? slot_of(cache, id) : NULL;
    if (slot != NULL && *slot != 0) forget(cache, &cache->entries[*slot - 1]);
    pthread_mutex_unlock(&cache->lock);
}

bool kci_queue_js_cache_take(kci_queue_js_cache *cache, uint64_t position, uint8_t *buffer,
                             size_t length_max, size_t *length_out)
{
    pthread_mutex_lock(&cache->lock);
    size_t low = 0, high = cache->count;
    while (low < high) { /* the first entry at or after position */
        size_t middle = low + (high - low) / 2;
        if (cache->entries[middle].position < position)
            low = middle + 1;
        else
            high = middle;
    }
    cached *entry = low < cache->count && cache->entries[low].position == position
                        ? &cache->entries[low]
                        : NULL;
    bool found = entry != NULL && entry->bytes != NULL && entry->length <= length_max;
    if (found) {
        memcpy(buffer, entry->bytes, entry->length);
        *length_out = entry->length;
        forget(cache, entry);
    }
    pthread_mutex_unlock(&cache->lock);
    return found;
}
