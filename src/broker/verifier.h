/* verifier.h - bcrypt verification of CONNECT credentials, off the event
 * loop.
 *
 * Why: bcrypt costs 50-300 ms per check at the usual cost of 10-12, on
 * purpose. The broker runs everything on one thread (server.h); verifying on
 * it would stop every client for that long per login.
 *
 * How (the whole life of a CONNECT whose configured secret is a hash):
 *  1. The loop decides everything else at once (kci_auth_decide): unknown
 *     user, plain passwords, no auth. For a hash it asks the cache of
 *     successful verifications (auth_cache.h); a hit is accepted at once.
 *  2. On a miss it submits a job (copies of the credentials and the hash) and
 *     pauses the client: its parser stops after the CONNECT line, the bytes
 *     read after it (a PUB pipelined in the same write) are kept aside, and
 *     EPOLLIN is off, so nothing more is read from it meanwhile. Its auth
 *     timeout stops, as in nats-server once CONNECT has arrived.
 *  3. One of KCI_VERIFIER_THREADS worker threads (started on the first job,
 *     niced so the loop wins a contended core) runs kci_bcrypt_verify and
 *     puts the job on the done list, then rings the verifier's eventfd: the
 *     same doorbell pattern as the server's control requests.
 *  4. The loop takes the done jobs, caches successes, and hands each back to
 *     its client (kci_client_on_verified): the CONNECT is finished (-ERR and
 *     close, or +OK), then the kept bytes are parsed and reading resumes.
 *
 * Bounds: at most KCI_VERIFIER_PENDING_MAX jobs queued or running; beyond
 * that a CONNECT is refused at once with nats-server's bad-password error
 * ("Authorization Violation"), so a flood of CONNECTs costs bounded memory
 * and at most KCI_VERIFIER_THREADS cores. One job per client (its parser
 * is paused).
 *
 * A client that closes while its job runs (a reset or hang-up, a server
 * close) clears job->client; the job stays owned by the verifier, a worker
 * that has not started it skips the hash, and its result finds no client. A
 * client that half-closes (FIN) is noticed when reading resumes.
 *
 * Reload (SIGHUP) while a job runs: when the job comes back, the client's
 * credentials are decided again against the configuration now in force
 * (kci_client_on_verified): a removed user is refused; a password now plain
 * text is compared at once; a changed hash is verified again; only an
 * unchanged hash uses the result. The cache is cleared on reload.
 *
 * Threads: job fields are written by the loop before submit and read by one
 * worker; the worker writes `accepted` before handing the job back under the
 * mutex; `client` and `next` are the loop's alone. `cancelled` is the one
 * field both read while the job runs (atomic). */
#ifndef KCI_VERIFIER_H
#define KCI_VERIFIER_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "auth.h"
#include "auth_cache.h"
#include "kingcobra/err.h"
#include "server.h"

enum {
    KCI_VERIFIER_THREADS = 2,       /* bcrypt at most on this many cores */
    KCI_VERIFIER_PENDING_MAX = 128, /* queued + running jobs */
    KCI_VERIFIER_NICE = 10,         /* worker priority below the loop's */
};

struct kci_client;

typedef struct kci_verify_job {
    struct kci_verify_job *next;
    struct kci_client *client; /* the loop's; NULL once the client closed */
    atomic_bool cancelled;     /* set with client = NULL; workers skip the hash */
    bool accepted;             /* the worker's answer */
    bool hashed;               /* the worker ran bcrypt (not skipped) */
    /* What the client sent (token, user, password: NULL when absent), the
     * configured user the hash belongs to (NULL: the token), and the secret
     * and hash the worker compares; one allocation. */
    char *auth_token;
    char *user;
    char *password;
    char *matched_user;
    char *secret;
    char *hash;
    size_t strings_size;
} kci_verify_job;

typedef struct kci_verifier kci_verifier;

/* The loop's callback for a finished job whose client is still there. */
typedef void (*kci_verifier_done_fn)(void *context, kci_verify_job *job);

/* Makes the eventfd (watched by the caller with kci_verifier_source) and
 * the cache; threads start with the first job. */
kc_err kci_verifier_create(kci_verifier **out, kci_verifier_done_fn done, void *context);
/* Stops and joins the workers (each finishes the hash it runs), frees jobs. */
void kci_verifier_destroy(kci_verifier *verifier);
int kci_verifier_fd(const kci_verifier *verifier);
kci_source *kci_verifier_source(kci_verifier *verifier);
kci_auth_cache *kci_verifier_cache(kci_verifier *verifier);
/* Queues a job for client: given is what it sent, decision (HASH_NEEDED)
 * what to verify. Copies both. KC_ERR_LIMIT when
 * KCI_VERIFIER_PENDING_MAX jobs are pending, KC_ERR_NOMEM, or KC_ERR_IO if no
 * worker could be started. On KC_OK, *job_out is the job (the client keeps
 * it to cancel). */
kc_err kci_verifier_submit(kci_verifier *verifier, struct kci_client *client,
                           const kci_credentials *given, const kci_auth_decision *decision,
                           kci_verify_job **job_out);
/* The client is going away: its job's result will find nobody. */
void kci_verifier_cancel(kci_verify_job *job);
/* The eventfd rang: caches successes, calls done for each live job, frees. */
void kci_verifier_on_ready(kci_verifier *verifier);
uint32_t kci_verifier_pending_count(const kci_verifier *verifier);

/* For /metrics (the loop's view; counters since start). */
typedef struct kci_verifier_stats {
    uint64_t verification_count; /* bcrypt checks run */
    uint64_t cache_hit_count;    /* CONNECTs accepted from the cache */
    uint64_t busy_refusal_count; /* CONNECTs refused at KCI_VERIFIER_PENDING_MAX */
    uint32_t pending_count;
} kci_verifier_stats;
void kci_verifier_get_stats(const kci_verifier *verifier, kci_verifier_stats *stats);

#endif
