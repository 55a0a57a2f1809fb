/* store_js_cache.h - the request records a persister read while it opened
 * its stream (store_js.c), kept until they are read once more.
 *
 * A persister that takes over reads the whole stream, then dispatches every
 * request without a reply again, each read back by its position. Without
 * this each of those reads is one js_GetMsg round trip through the stream's
 * leader: thousands pending took seconds. The scan puts each request's
 * encoded record here and drops it when its reply or tombstone follows, so
 * what is left is what will be dispatched; a read takes its record from
 * here (once: a later redelivery reads the stream). Bounded in bytes; past
 * the bound, requests are read from the stream as before. */
#ifndef KCI_QUEUE_STORE_JS_CACHE_H
#define KCI_QUEUE_STORE_JS_CACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "service/uuid.h"

enum { KCI_QUEUE_JS_CACHE_BYTES_MAX = 64 * 1024 * 1024 };

typedef struct kci_queue_js_cache kci_queue_js_cache;

kci_queue_js_cache *kci_queue_js_cache_new(void); /* NULL: out of memory */
void kci_queue_js_cache_free(kci_queue_js_cache *cache);
/* Keeps a copy of the request id's record at position (positions only grow);
 * a second copy of an id, or one past the bound, is not kept. */
void kci_queue_js_cache_put(kci_queue_js_cache *cache, const kci_uuid *id, uint64_t position,
                            const uint8_t *bytes, size_t length);
/* Its reply or tombstone was read: the request will not be dispatched. */
void kci_queue_js_cache_drop(kci_queue_js_cache *cache, const kci_uuid *id);
/* Copies the record at position into buffer (at least length_max bytes) and
 * forgets it; false if it is not here. */
bool kci_queue_js_cache_take(kci_queue_js_cache *cache, uint64_t position, uint8_t *buffer,
                             size_t length_max, size_t *length_out);

#endif
