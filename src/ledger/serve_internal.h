/* serve_internal.h - what the ledger service (serve.c) shares with its
 * replicated mode (replica.c, storage jetstream): the job a write request
 * becomes, the service's state, and the steps of the writer that replica.c
 * runs in its own order (take the queued jobs, answer them, subscribe to
 * the requests only while active). Included by those two files only. */
#ifndef KCI_LEDGER_SERVE_INTERNAL_H
#define KCI_LEDGER_SERVE_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>

#include "ledger/codec.h"
#include "ledger/result.h"
#include "ledger/serve.h"
#include "ledger/store.h"
#include "service/headers.h"
#include "service/micro.h"
#include "service/subscriptions.h"

typedef struct kci_ledger_replica kci_ledger_replica;

typedef struct kci_ledger_job {
    struct kci_ledger_job *next;
    natsMsg *message;
    kci_kc_headers headers;
    kci_ledger_request request;
    kci_ledger_outcome *outcomes;              /* one per transfer, or one for the request */
    uint32_t issue_count;                      /* entries of issue_ids and issued */
    uint8_t (*issue_ids)[KCI_LEDGER_ID_BYTES]; /* mint: per grant; exchange: one */
    kci_ledger_coin **issued;                  /* the new coins, likewise */
    uint32_t transfer_weight;                  /* how much of a batch it takes */
} kci_ledger_job;

struct kci_ledger {
    natsConnection *connection;
    kci_subscriptions subscriptions; /* the requests (storage jetstream: while active) */
    kci_ledger_store *store;
    kci_ledger_config config;
    char node[KC_NODE_BYTES_MAX + 1];
    size_t reply_bytes_max;
    kci_ledger_replica *replica;    /* storage jetstream; NULL for local */
    kci_micro_stats endpoint_stats; /* kc.ledger.> for $SRV.STATS (micro.h) */
    kci_micro *micro;               /* NULL when it could not start */

    pthread_mutex_t lock; /* the request queue, the job list, the flags */
    pthread_cond_t requests_ready;
    pthread_cond_t jobs_ready;
    natsMsg **queue; /* ring of KCI_LEDGER_QUEUE_MAX */
    uint32_t queue_first, queue_count;
    uint32_t held_count; /* requests taken and not yet answered: queued, verifying, or in jobs */
    size_t held_bytes;   /* their payload bytes */
    kci_ledger_job *jobs_first, *jobs_last;
    uint32_t jobs_in_flight; /* taken by a worker, not yet queued for the writer */
    bool stopping;
    pthread_t workers[KCI_LEDGER_WORKERS_MAX];
    int worker_count;
    pthread_t writer;
    bool writer_started;
    atomic_bool audit_running;
};

/* The queued jobs up to the batch bound, waiting at most wait_ms for one;
 * NULL when none came. */
kci_ledger_job *kci_ledger_jobs_take(kci_ledger *ledger, int64_t wait_ms);
/* True once kci_ledger_stop asked to stop and no request is left anywhere
 * before the writer. */
bool kci_ledger_stopped_idle(kci_ledger *ledger);
/* Answers every job of the list from its outcomes, or all with failed when
 * it is not NULL (nothing of them was applied), and frees them. */
void kci_ledger_jobs_answer(kci_ledger *ledger, kci_ledger_job *jobs,
                            const kci_ledger_outcome *failed);
/* Subscribes to the requests (kc.ledger.>, queue group kc-ledger). */
kc_err kci_ledger_requests_subscribe(kci_ledger *ledger, char *error, size_t error_size);

/* replica.c, for serve.c. */
kc_err kci_ledger_replica_open(kci_ledger_replica **out, kci_ledger *ledger, char *error,
                               size_t error_size);
/* The writer thread's body in storage jetstream. */
void kci_ledger_replica_run(kci_ledger_replica *replica);
/* No more taking over: called first by kci_ledger_stop. */
void kci_ledger_replica_closing(kci_ledger_replica *replica);
/* Drains the request subscription if the replica made one (under the lock
 * that makes and drains it). false: a handler still runs. */
bool kci_ledger_replica_drain_requests(kci_ledger_replica *replica, int64_t drain_ms);
/* Releases the lease (a standby takes over at once), stops answering the
 * digest subject, frees. After the writer thread ended. */
void kci_ledger_replica_close(kci_ledger_replica *replica);

#endif
