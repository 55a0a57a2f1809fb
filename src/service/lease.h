/* lease.h - one active, the others standing by: a lease on a role ("persister",
 * "ledger") kept in a JetStream KV bucket with revision compare-and-set.
 *
 * Every contender opens the same bucket and key with its own holder id
 * (unique per process: "<node>/<UUIDv7>", kci_lease_holder_make). The record
 * under the key (lease_record.h) names the holder, its term and its ttl. The
 * bucket holds that one key (one bucket per role: "kc_lease_persister"), for
 * the compare-and-set is on the bucket's last sequence (see below).
 *
 *   acquire   a standby reads the key (from the stream's leader) every
 *             renew_ms. No record: it writes one, expecting the key to have
 *             no message. A released or deleted record, or one it has seen
 *             unchanged (same revision) for the holder's ttl_ms + margin_ms
 *             by its own clock: it writes, expecting that revision to be the
 *             bucket's last. That is the compare-and-set: of several
 *             standbys, one write wins, the others fail and observe the
 *             winner's record. Nobody trusts another machine's clock: a record
 *             carries a duration, never a deadline.
 *   renew     the holder, every renew_ms: the same write, expecting the
 *             revision of its own last write. A failed write is read back (a
 *             renewal that timed out may have been applied): our term's record
 *             still the latest means keep going with its revision; anything
 *             else means deposed.
 *   give up   the holder acts only until ttl_ms - margin_ms after sending its
 *             last confirmed renewal (kci_lease_holds). It keeps trying to
 *             renew past that point: a compare-and-set that still succeeds
 *             proves nobody took over, and the holding goes on; one that
 *             fails, read back, reports "deposed" (a holder resumed after
 *             SIGSTOP learns it so); no answer at all reports "expired".
 *   release   kci_lease_close marks the record released (a compare-and-set
 *             again), so a standby takes over at its next read, not a ttl
 *             later.
 *
 * The margin. The holder stops at (send of its last renewal) + ttl - margin;
 * a standby, which cannot have seen that renewal before it was sent, takes
 * over no earlier than (first sight of it) + ttl + margin: 2 x margin apart,
 * as long as both processes run and their clocks tick at the same rate. The
 * margin covers scheduling delays between a check and an action, not more.
 *
 * Fencing, not timing, is the guarantee. A holder stopped by SIGSTOP, a long
 * page-in or a VM pause runs on after a standby took over, and a write it
 * started before its deadline can arrive after. So the lease gives a term
 * (kci_lease_term): the KV revision of the write that acquired it, strictly
 * greater for every later acquisition of the key. A component fences its
 * writes with it, on the resource it writes to, not on the lease:
 *   - a stream written by one active (the persister's, the ledger's): on
 *     acquiring, the new active reads the stream's last sequence, writes a
 *     "term T begins" record with Nats-Expected-Last-Sequence = that sequence,
 *     and then writes only with the expected last sequence it knows. A
 *     deposed active's next write carries an older expected sequence and the
 *     stream refuses it, whatever its clock says;
 *   - records carry the term (a Kc-Term header), and readers ignore a record
 *     whose term is lower than one they have already seen.
 * kci_lease_holds is the cheap local check before each write; the stream's
 * check is what makes a late write harmless.
 *
 * How a part uses it (the persister, say):
 *
 *     kci_lease_config config;
 *     kci_lease_config_init(&config);
 *     kci_lease_settings_apply(&settings->lease, &config);  // lease_settings.h
 *     config.key = "persister";
 *     config.holder = holder;          // kci_lease_holder_make(holder, ..., node)
 *     config.on_acquired = become_active;   // catch up to the stream's end,
 *                                           // write "term T begins" fenced,
 *                                           // then serve (redeliveries too)
 *     config.on_lost = stand_by;            // stop writing, keep following
 *     config.closure = persister;
 *     kci_lease_open(&persister->lease, connection, &config);
 *     ...
 *     if (!kci_lease_holds(persister->lease, &term)) refuse;  // before a write
 *     ...publish with Nats-Expected-Last-Sequence...
 *     kci_lease_close(persister->lease);   // on stop: a standby takes over now
 *
 * JetStream facts this relies on (nats-server 2.9.10, nats.c 3.4.1):
 *   - The compare-and-set is Nats-Expected-Last-Sequence (the bucket's last
 *     sequence), which a clustered stream checks when it applies a write, in
 *     log order on every replica: of two writes expecting the same sequence,
 *     the second fails. kvStore_Update's Nats-Expected-Last-Subject-Sequence
 *     is NOT safe on a 2.9 cluster: the leader checks it before proposing,
 *     against what is applied, so two updates in flight together both pass
 *     (tests/integration/lease.c saw two holders of one lease that way).
 *     Creating (expected subject sequence 0) is checked when applied: safe.
 *   - Reads go through the stream's leader ($JS.API.STREAM.MSG.GET, as
 *     js_GetLastMsg), not kvStore_Get: a bucket made by js_CreateKeyValue
 *     allows direct get, which any replica answers, and a lagging follower
 *     answers with an old revision (seen alternating between two revisions
 *     while the leader was being replaced).
 *   - A revision is the stream's sequence: terms grow with every write to
 *     the bucket. Deleting the bucket starts the sequence again: never
 *     delete a lease bucket in use (purging the key is harmless).
 *   - When the server leading the bucket's stream dies, no write succeeds
 *     until the others elect a new leader (4 to 9 s in 2.9, not
 *     configurable): a holder then loses the lease if its ttl is shorter, and
 *     the role has no active until the election. See docs/cluster.md.
 *
 * Threads: kci_lease_open starts a renewer thread that reads or renews every
 * renew_ms and calls on_acquired and on_lost from that thread, never with a
 * lock held. With config.manual_ticks the caller runs kci_lease_tick from its
 * own timer instead (the callbacks then run inside kci_lease_tick). The
 * query functions are safe from any thread; kci_lease_close is not to be
 * called from a callback (it waits for the thread that runs them). */
#ifndef KCI_LEASE_H
#define KCI_LEASE_H

#include <nats/nats.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kingcobra/err.h"
#include "service/lease_record.h"

enum {
    KCI_LEASE_NAME_BYTES_MAX = 64, /* bucket and key names */
    KCI_LEASE_TTL_MS_DEFAULT = 1200,
    KCI_LEASE_RENEW_MS_DEFAULT = 200,
    KCI_LEASE_MARGIN_MS_DEFAULT = 200,
    KCI_LEASE_REPLICAS_DEFAULT = 3,
    KCI_LEASE_REPLICAS_MAX = 5, /* JetStream's own limit */
    KCI_LEASE_OPEN_TIMEOUT_MS_DEFAULT = 15000,
};

typedef struct kci_lease kci_lease;

typedef enum kci_lease_loss {
    KCI_LEASE_LOST_DEPOSED = 1,  /* another record replaced ours */
    KCI_LEASE_LOST_EXPIRED = 2,  /* no renewal confirmed within ttl - margin */
    KCI_LEASE_LOST_RELEASED = 3, /* kci_lease_close gave it up */
} kci_lease_loss;

/* term: the fencing token of the holding that begins or ends. */
typedef void (*kci_lease_acquired_callback)(void *closure, uint64_t term);
typedef void (*kci_lease_lost_callback)(void *closure, uint64_t term, kci_lease_loss loss);

typedef struct kci_lease_config {
    const char *bucket; /* created if missing; this key alone: "kc_lease_persister" */
    const char *key;    /* the role: "persister", "ledger" */
    /* Unique per process (kci_lease_holder_make): two processes with one id
     * would each take the other's record for their own, at once. */
    const char *holder;
    int64_t ttl_ms;          /* how long a holding lasts without a renewal */
    int64_t renew_ms;        /* how often the holder renews and a standby reads */
    int64_t margin_ms;       /* see "The margin"; ttl_ms >= 2 x renew_ms + margin_ms */
    int replicas;            /* of the bucket when it is created: 3 on a cluster, 1 alone */
    int64_t open_timeout_ms; /* kci_lease_open's bound on finding or creating the bucket */
    bool manual_ticks;       /* no thread: the caller runs kci_lease_tick every renew_ms */
    kci_lease_acquired_callback on_acquired; /* NULL: not told */
    kci_lease_lost_callback on_lost;         /* NULL: not told */
    void *closure;
} kci_lease_config;

/* Defaults above; bucket, key and holder NULL (the caller names them). */
void kci_lease_config_init(kci_lease_config *config);
/* KC_ERR_CONFIG with a message when the durations do not fit the rule above,
 * a name is not a KV token, or the holder is not a valid id. */
kc_err kci_lease_config_check(const kci_lease_config *config);
/* "<node>/<UUIDv7>" into out (at least KCI_LEASE_HOLDER_BYTES_MAX + 1 bytes);
 * the node is cut so that the whole fits. */
void kci_lease_holder_make(char *out, size_t out_size, const char *node);

/* Finds or creates the bucket (bounded by open_timeout_ms: a leader election
 * can make the first attempts fail) and, unless manual_ticks, starts the
 * renewer, whose first read happens at once. The lease copies what config
 * points to; connection must outlive it. */
kc_err kci_lease_open(kci_lease **lease_out, natsConnection *connection,
                      const kci_lease_config *config);
/* One step: a standby reads and maybe acquires; a holder renews (or gives
 * up). Only with manual_ticks. */
void kci_lease_tick(kci_lease *lease);
/* True while this process holds the lease and its last confirmed renewal is
 * recent enough (now < kci_lease_valid_until_ms); *term_out gets the term.
 * The check to make right before each write, with the term to fence it. */
bool kci_lease_holds(kci_lease *lease, uint64_t *term_out);
/* The monotonic time (kci_monotonic_ms) until which the lease is held, 0
 * when it is not; *term_out gets the term. For a caller that compares with
 * its own clock reading, taken after this call. */
int64_t kci_lease_valid_until(kci_lease *lease, uint64_t *term_out);
/* The current term while held, else 0. */
uint64_t kci_lease_term(kci_lease *lease);
/* The KV revision of the holder's last confirmed write while held, else 0. */
uint64_t kci_lease_revision(kci_lease *lease);
/* Stops the renewer and, when held, marks the record released (so a standby
 * takes over at its next read) and reports KCI_LEASE_LOST_RELEASED.
 * NULL is fine. */
void kci_lease_close(kci_lease *lease);

#endif
