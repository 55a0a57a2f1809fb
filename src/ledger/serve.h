/* serve.h - the ledger service: answers kc.ledger.<operation> (docs/ledger.md)
 * on a nats.c connection it is given, so the same code runs inside kcobrad
 * (src/cmd/components.c) and on its own (kcobra ledger serve).
 *
 * Threads: nats.c's delivery thread only queues a request (bounded in count
 * and bytes over everything held until it is answered: past the bounds it
 * is answered 503 at once). worker_count workers parse, look up
 * denominations and verify signatures in parallel (Ed25519 verification
 * is the costly part) and answer reads from LMDB read transactions. One
 * writer thread applies every queued write in one LMDB transaction, commits
 * it (synced to disk), and only then acknowledges each request: group
 * commit. The same writer runs the reaper between batches.
 *
 * One ledger per fabric: the subscription has a queue group so a restart
 * overlapping the old process does not answer twice, but two ledgers with
 * different data directories would split the state, unless they replicate
 * it (config.replicated, storage jetstream: replica.c keeps one active and
 * the others following the log). */
#ifndef KCI_LEDGER_SERVE_H
#define KCI_LEDGER_SERVE_H

#include <nats/nats.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kingcobra/err.h"

#define KCI_LEDGER_SUBJECT "kc.ledger.>"
#define KCI_LEDGER_QUEUE "kc-ledger"

enum {
    KCI_LEDGER_QUEUE_MAX = 65536, /* requests taken and not yet answered */
    KCI_LEDGER_WORKERS_MAX = 64,
    KCI_LEDGER_BATCH_TRANSFERS_MAX = 16384, /* writes in one LMDB transaction */
    KCI_LEDGER_REAP_COUNT_MAX = 64,         /* coins the reaper frees per pass */
    KCI_LEDGER_EXPIRE_COUNT_MAX = 64,       /* holds one expiry pass returns */
    KCI_LEDGER_EXPIRE_INTERVAL_MS = 500,    /* how often the writer looks for expired holds */
    KCI_LEDGER_SUBSCRIBE_TIMEOUT_MS = 5000,
    KCI_LEDGER_STOP_MARGIN_MS = 5000,
};

/* The payload bytes of the requests held (queued, verifying, waiting). */
#define KCI_LEDGER_HELD_BYTES_MAX ((size_t)256 << 20)
#define KCI_LEDGER_MAP_BYTES_DEFAULT ((uint64_t)1 << 30) /* 1 GiB of address space */
#define KCI_LEDGER_REAP_INTERVAL_MS_DEFAULT 60000
#define KCI_LEDGER_REAP_AGE_MS_DEFAULT 3600000

typedef struct kci_ledger kci_ledger;
struct kci_lease_settings;

#define KCI_LEDGER_STREAM_DEFAULT "KC_LEDGER"
enum {
    KCI_LEDGER_STREAM_REPLICAS_DEFAULT = 3, /* a 3-server cluster; 1 on one server */
    KCI_LEDGER_STREAM_REPLICAS_MAX = 5,     /* JetStream's own limit */
};

/* Every field is set: there is no "0 means the default". Start from
 * kci_ledger_config_defaults (the one place the defaults are written;
 * src/ledger/config.c fills the same struct from the ledger { } block or
 * from flags) and change what differs. kci_ledger_start refuses a field out
 * of range instead of replacing it. */
typedef struct kci_ledger_config {
    const char *directory;    /* the data directory (created) */
    const char *node;         /* Kc-Node of replies: one subject token */
    int worker_count;         /* 1..KCI_LEDGER_WORKERS_MAX; default: one per core */
    uint64_t map_bytes;       /* LMDB map size; default 1 GiB */
    bool mint_disabled;       /* refuse kc.ledger.mint (another ledger mints) */
    int64_t reap_interval_ms; /* how often the reaper runs; default 60 s */
    int64_t reap_age_ms;      /* retired this long before it is freed; default 1 h */
    /* Storage jetstream (replica.c): the state machine replicated through a
     * stream, one active ledger by a lease. false: local LMDB only. */
    bool replicated;
    const char *stream;                     /* the log's stream; default KC_LEDGER */
    int stream_replicas;                    /* when this ledger creates it; default 3 */
    const struct kci_lease_settings *lease; /* replicated: the lease's settings */
} kci_ledger_config;

/* The defaults, the store in directory (borrowed). */
kci_ledger_config kci_ledger_config_defaults(const char *directory);

/* Opens the store, starts the threads and subscribes. connection is
 * borrowed: it must stay open until kci_ledger_stop returns. */
kc_err kci_ledger_start(kci_ledger **out, natsConnection *connection,
                        const kci_ledger_config *config, char *error, size_t error_size);
/* The mint's address (hex), for logs and the CLI. */
const char *kci_ledger_mint_address(const kci_ledger *ledger);
/* Drains the subscription within drain_ms, lets the writer apply and
 * acknowledge what it has, stops the threads, closes the store. */
void kci_ledger_stop(kci_ledger *ledger, int64_t drain_ms);

#endif
