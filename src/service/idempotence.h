/* idempotence.h - the replies a service remembers by request id (Kc-Id), so
 * that a redelivered request gets the same reply without running its handler
 * again.
 *
 * An entry is either IN PROGRESS (a worker is running the handler for that
 * id) or DONE (the reply is stored). A second delivery of an id that is in
 * progress waits, up to a bound the caller gives, for the first to finish
 * and then gets the same reply; if the first never finishes in time the
 * caller is told BUSY and answers with an error rather than running the
 * handler twice.
 *
 * Bounds: at most entries_max entries (allocated up front, at most
 * KCI_IDEMPOTENCE_ENTRIES_MAX) and at most bytes_max bytes of stored replies;
 * when either is reached the least recently used DONE entry is evicted. An
 * entry in progress is never evicted nor expired (there are at most as many
 * as there are workers); when every entry is in progress, begin() answers
 * UNTRACKED and the caller serves the request without the cache. A DONE
 * entry lives ttl_ms after its reply was stored (measured on the injectable
 * clock), then it is as if it had never been. Thread-safe: one mutex. */
#ifndef KCI_IDEMPOTENCE_H
#define KCI_IDEMPOTENCE_H

#include <stddef.h>
#include <stdint.h>

#include "kingcobra/kingcobra.h"
#include "service/hlc.h" /* kci_clock_ms */

enum {
    KCI_IDEMPOTENCE_ENTRIES_MAX = 1 << 20,
    KCI_IDEMPOTENCE_BYTES_DEFAULT = 64 * 1024 * 1024,
    KCI_IDEMPOTENCE_KEY_BYTES_MAX = KC_UUID_TEXT_BYTES,
};

typedef struct kci_idempotence kci_idempotence;

typedef enum kci_idempotence_outcome {
    KCI_IDEMPOTENCE_CLAIMED = 1,   /* the caller runs the handler, then finish or abandon */
    KCI_IDEMPOTENCE_DONE = 2,      /* *stored holds the reply to send again */
    KCI_IDEMPOTENCE_BUSY = 3,      /* still in progress after the wait */
    KCI_IDEMPOTENCE_UNTRACKED = 4, /* no room: serve without the cache */
} kci_idempotence_outcome;

/* A copy of a stored reply, owned by the caller (kci_stored_reply_clear). */
typedef struct kci_stored_reply {
    void *payload; /* malloc'd, NULL when payload_len is 0 */
    size_t payload_len;
    char reply_id[KC_UUID_TEXT_BYTES + 1]; /* the Kc-Id the first reply carried */
    int error_code;
    char error_message[KC_ERROR_MESSAGE_BYTES_MAX];
} kci_stored_reply;

/* clock NULL: CLOCK_REALTIME in ms. entries_max in [1, ENTRIES_MAX],
 * bytes_max > 0 and ttl_ms > 0, else KC_ERR_INVALID_ARGUMENT. */
kc_err kci_idempotence_create(kci_idempotence **out, uint32_t entries_max, size_t bytes_max,
                              int64_t ttl_ms, kci_clock_ms clock, void *clock_context);
/* No entry may be in progress (the service's workers have stopped). */
void kci_idempotence_destroy(kci_idempotence *cache);

/* Looks id up (at most KEY_BYTES_MAX bytes, else KC_ERR_INVALID_ARGUMENT).
 * Unknown or expired: marks it in progress and answers CLAIMED. Done:
 * copies the reply into *stored and answers DONE. In progress: waits up to
 * wait_ms (real time) for it to finish. KC_ERR_NOMEM if the copy fails. */
kc_err kci_idempotence_begin(kci_idempotence *cache, const char *id, int64_t wait_ms,
                             kci_idempotence_outcome *outcome, kci_stored_reply *stored);
/* Stores the reply of an id this caller CLAIMED and wakes waiters. A reply
 * larger than the byte bound is not stored (the entry is dropped). */
kc_err kci_idempotence_finish(kci_idempotence *cache, const char *id, const char *reply_id,
                              const void *payload, size_t payload_len, int error_code,
                              const char *error_message);
/* Forgets a CLAIMED id without a reply (the next delivery runs the handler). */
void kci_idempotence_abandon(kci_idempotence *cache, const char *id);

void kci_stored_reply_clear(kci_stored_reply *stored);

typedef struct kci_idempotence_stats {
    uint32_t entry_count;
    uint32_t in_progress_count;
    size_t bytes;
    uint64_t hit_count;
    uint64_t eviction_count;
    uint64_t expiry_count;
} kci_idempotence_stats;

void kci_idempotence_stats_get(kci_idempotence *cache, kci_idempotence_stats *out);

#endif
