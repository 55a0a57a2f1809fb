/* lease_record.h - the value a lease keeps in its JetStream KV key, and the
 * pure rules that decide from what a process observed whether it may take the
 * lease (lease.h does the I/O; these functions only compute, so the unit tests
 * and the fuzzer drive them without a server).
 *
 * The value is one line of text, readable with any KV tool:
 *
 *     kc-lease/1 held term=4711 ttl_ms=1200 holder=ledger-b/0190f3a2-...
 *
 * in exactly this order, single spaces, no newline:
 *   - the state: "held" (the holder renews it) or "released" (its holder
 *     stopped cleanly: take it at once);
 *   - term: the holder's fencing token, the KV revision of the write that
 *     acquired the lease, so 0 in that first write itself (a record cannot
 *     name its own revision: term 0 means "this record's revision");
 *   - ttl_ms: the holder's lease duration, which a standby uses to judge
 *     expiry (the holder's, not its own: they may be configured apart);
 *   - holder: the holder's id, 1 to KCI_LEASE_HOLDER_BYTES_MAX visible ASCII
 *     characters (no space), unique per process ("<node>/<UUIDv7>").
 *
 * The parser is not a resumable state machine like the wire parsers: a KV
 * value arrives whole, in one message, and anything longer than
 * KCI_LEASE_RECORD_BYTES_MAX is refused before a byte is read. It checks
 * every byte once, left to right, and has one error exit. */
#ifndef KCI_LEASE_RECORD_H
#define KCI_LEASE_RECORD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kingcobra/err.h"

enum {
    KCI_LEASE_HOLDER_BYTES_MAX = 128,
    KCI_LEASE_RECORD_BYTES_MAX = 256, /* the longest valid record is well under this */
    KCI_LEASE_TTL_MS_MAX = 24 * 60 * 60 * 1000,
};

typedef enum kci_lease_state {
    KCI_LEASE_HELD = 1,
    KCI_LEASE_RELEASED = 2,
} kci_lease_state;

typedef struct kci_lease_record {
    kci_lease_state state;
    uint64_t term; /* 0: the revision of the record itself */
    int64_t ttl_ms;
    char holder[KCI_LEASE_HOLDER_BYTES_MAX + 1];
} kci_lease_record;

/* Writes record as text into out (NUL-terminated); *length_out gets its
 * length. KC_ERR_INVALID_ARGUMENT if the record would not parse back (empty
 * or long holder, a space in it, ttl out of range). */
kc_err kci_lease_record_format(const kci_lease_record *record, char *out, size_t out_size,
                               size_t *length_out);
/* Parses bytes[0..length) (no NUL needed). KC_ERR_TOO_LARGE or KC_ERR_PARSE
 * with a message (kc_last_error()) when it is not a record. */
kc_err kci_lease_record_parse(const char *bytes, size_t length, kci_lease_record *record);
/* True for a holder id the record can carry. */
bool kci_lease_holder_valid(const char *holder);

/* ---- what a standby decides ------------------------------------------------ */

/* What a contender saw when it read the key. */
typedef struct kci_lease_view {
    bool present;      /* false: the key never had a message (or was purged) */
    uint64_t revision; /* of the latest message (when present) */
    bool deleted;      /* that message is a delete or purge marker */
    bool parsed;       /* it is a kc-lease record */
    kci_lease_record record;
} kci_lease_view;

/* A standby's memory between reads: since when it has seen the same revision.
 * Zero-initialise it; kci_lease_decide keeps it. */
typedef struct kci_lease_observation {
    uint64_t revision; /* 0: nothing observed yet */
    int64_t since_ms;  /* monotonic time of the first read that saw it */
} kci_lease_observation;

typedef enum kci_lease_action {
    KCI_LEASE_WAIT = 1,      /* someone holds it: read again later */
    KCI_LEASE_CREATE = 2,    /* no message: write, expecting none for the key */
    KCI_LEASE_TAKE_OVER = 3, /* write, expecting view->revision as the last */
} kci_lease_action;

/* The standby's rule. The record is free to take when it is absent, deleted,
 * released, or our own (the latest write is ours, so nobody else can believe it holds);
 * a held record is expired when this observer has seen the same revision,
 * unchanged, for at least the holder's ttl_ms + margin_ms of its own clock.
 * A record that does not parse is judged with own_ttl_ms. Updates
 * observation; never touches a clock (now_ms is given). */
kci_lease_action kci_lease_decide(kci_lease_observation *observation, const kci_lease_view *view,
                                  const char *self, int64_t own_ttl_ms, int64_t margin_ms,
                                  int64_t now_ms);

/* ---- what a holder decides ------------------------------------------------- */

/* Until when a holder may act on a renewal sent at confirmed_ms (monotonic):
 * ttl_ms - margin_ms later. The write may have reached the server a little
 * after it was sent, so measuring from the send is the conservative side. */
int64_t kci_lease_valid_until_ms(int64_t confirmed_ms, int64_t ttl_ms, int64_t margin_ms);

typedef enum kci_lease_verdict {
    KCI_LEASE_OURS = 1,    /* the latest record is our term's: keep going */
    KCI_LEASE_DEPOSED = 2, /* someone else's record (or none) is the latest */
} kci_lease_verdict;

/* After a renewal failed, a holder reads the key back: a renewal that timed
 * out may still have been applied, so "the update failed" alone does not
 * mean "deposed". Ours means: present, parsed, held, holder == self and the
 * same term (term 0 in the record names its own revision). */
kci_lease_verdict kci_lease_judge(const kci_lease_view *view, const char *self, uint64_t term);

#endif
