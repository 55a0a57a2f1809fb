/* replicated.h - the persister on JetStream (storage: jetstream): several
 * persisters may run, on any servers of a cluster; one is active, the
 * others stand by (docs/cluster.md, docs/queue.md).
 *
 * Each holds a lease contender (service/lease.h, role "persister"). The
 * one that acquires the lease starts a persister (persister.h) on the
 * stream with the lease's term: it reads the stream to its end, rebuilding
 * the index (so the requests without a reply are dispatched again, after
 * their types' probes), fences the stream with its term marker
 * (store_js.h), and only then subscribes to kc.submit.> and the rest. When
 * the lease is lost, or the store breaks (a publish refused or not
 * acknowledged: another writer, or a leader lost), the active persister is
 * stopped: it unsubscribes, completes what is in flight (failures are
 * answered as errors, never acknowledged), and stands by again; while the
 * lease is still held it starts again at once, reading the stream anew.
 * A deposed active cannot write after its successor's marker: the stream
 * refuses its fenced publishes. */
#ifndef KCI_QUEUE_REPLICATED_H
#define KCI_QUEUE_REPLICATED_H

#include <nats/nats.h>
#include <stdbool.h>
#include <stdint.h>

#include "kingcobra/err.h"
#include "persister.h"
#include "service/lease.h"

#define KCI_PERSISTER_LEASE_ROLE "persister"

enum {
    KCI_REPLICATED_CHECK_MS = 100,     /* how often the active one's store is looked at */
    KCI_REPLICATED_RETRY_MS = 500,     /* after a start that failed */
    KCI_REPLICATED_STEP_DOWN_MS = 500, /* drain when stepping down */
};

typedef struct kci_persister_replicated kci_persister_replicated;

/* config: storage jetstream with its stream settings (term, lease and
 * writer are set here); lease: the lease's settings (bucket, durations,
 * replicas: key, holder and callbacks are set here). Returns once the
 * lease contender runs: the persister becomes active later, if ever.
 * connection is borrowed until stop returns. */
kc_err kci_persister_replicated_start(kci_persister_replicated **out, natsConnection *connection,
                                      const kci_persister_config *config,
                                      const kci_lease_config *lease, char *error,
                                      size_t error_size);
/* True while a persister runs here as the active one; *term_out its term. */
bool kci_persister_replicated_active(kci_persister_replicated *replicated, uint64_t *term_out);
/* Stops the active persister (drain_ms), then releases the lease so a
 * standby takes over at once. NULL is fine. */
void kci_persister_replicated_stop(kci_persister_replicated *replicated, int64_t drain_ms);

#endif
