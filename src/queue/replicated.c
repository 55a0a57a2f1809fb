/* replicated.c - one active persister, the others standing by (see
 * replicated.h).
 *
 * The lease's callbacks run on its renewer thread, which must go on
 * renewing: they only note the term held and wake this part's own thread,
 * which starts and stops the active persister (reading the stream can take
 * a while). That thread alone touches `active`; it also looks at the active
 * store every KCI_REPLICATED_CHECK_MS, and restarts the persister when the
 * store broke while the lease is still held. */
#include "replicated.h"

#include <assert.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/clock.h"
#include "common/log.h"
#include "kingcobra/kingcobra.h"

enum { ERROR_BYTES = 512 };

struct kci_persister_replicated {
    natsConnection *connection;
    kci_persister_config config;
    char directory[PATH_MAX];
    char node[KC_NODE_BYTES_MAX + 1];
    char stream[KCI_QUEUE_JS_STREAM_BYTES_MAX + 1];
    char holder[KCI_LEASE_HOLDER_BYTES_MAX + 1];
    kci_lease *lease;

    pthread_mutex_t lock; /* the fields up to the thread's own */
    pthread_cond_t wake;
    uint64_t wanted_term; /* the term the lease says we hold; 0: none */
    int64_t acquired_ms;  /* monotonic, when it was acquired */
    bool stopping;
    uint64_t active_term; /* of the running persister, for readers; 0: none */

    pthread_t thread;
    bool thread_started;
    kci_persister *active; /* the thread's own */
};

static void on_acquired(void *closure, uint64_t term)
{
    kci_persister_replicated *replicated = closure;
    pthread_mutex_lock(&replicated->lock);
    replicated->wanted_term = term;
    replicated->acquired_ms = kci_monotonic_ms();
    pthread_cond_signal(&replicated->wake);
    pthread_mutex_unlock(&replicated->lock);
    kci_info("queue: lease acquired (term %" PRIu64 "): becoming the active persister", term);
}

static void on_lost(void *closure, uint64_t term, kci_lease_loss loss)
{
    kci_persister_replicated *replicated = closure;
    pthread_mutex_lock(&replicated->lock);
    if (replicated->wanted_term == term) replicated->wanted_term = 0;
    pthread_cond_signal(&replicated->wake);
    pthread_mutex_unlock(&replicated->lock);
    kci_warn("queue: lease lost (term %" PRIu64 ", %s): standing by", term,
             loss == KCI_LEASE_LOST_DEPOSED   ? "deposed"
             : loss == KCI_LEASE_LOST_EXPIRED ? "expired"
                                              : "released");
}

static void active_stop(kci_persister_replicated *replicated, int64_t drain_ms)
{
    if (replicated->active == NULL) return;
    pthread_mutex_lock(&replicated->lock);
    uint64_t term = replicated->active_term;
    replicated->active_term = 0;
    pthread_mutex_unlock(&replicated->lock);
    kci_persister_stop(replicated->active, drain_ms);
    replicated->active = NULL;
    kci_info("queue: the persister of term %" PRIu64 " stopped: standing by", term);
}

static void active_start(kci_persister_replicated *replicated, uint64_t term, int64_t acquired_ms)
{
    assert(replicated->active == NULL && term > 0);
    kci_persister_config config = replicated->config;
    config.jetstream.term = term;
    config.jetstream.lease = replicated->lease;
    config.jetstream.writer = replicated->holder;
    char error[ERROR_BYTES] = "";
    kci_persister *persister = NULL;
    kc_err err =
        kci_persister_start(&persister, replicated->connection, &config, error, sizeof error);
    if (err != KC_OK) {
        kci_warn_limited("queue: cannot become active (term %" PRIu64 "): %s; trying again", term,
                         error);
        return;
    }
    replicated->active = persister;
    pthread_mutex_lock(&replicated->lock);
    replicated->active_term = term;
    pthread_mutex_unlock(&replicated->lock);
    kci_info("queue: active persister (term %" PRIu64 ") serving; the lease was acquired %" PRId64
             " ms ago",
             term, kci_monotonic_ms() - acquired_ms);
}

static bool active_broken(kci_persister_replicated *replicated)
{
    kci_persister_stats stats;
    kci_persister_stats_get(replicated->active, &stats);
    return stats.log.broken;
}

static void *replicated_main(void *argument)
{
    kci_persister_replicated *replicated = argument;
    pthread_mutex_lock(&replicated->lock);
    while (!replicated->stopping) {
        uint64_t wanted = replicated->wanted_term;
        int64_t acquired_ms = replicated->acquired_ms;
        pthread_mutex_unlock(&replicated->lock);
        int64_t pause_ms = KCI_REPLICATED_CHECK_MS;
        if (replicated->active != NULL &&
            (wanted != replicated->active_term || active_broken(replicated)))
            active_stop(replicated, KCI_REPLICATED_STEP_DOWN_MS);
        uint64_t held = 0;
        if (replicated->active == NULL && wanted != 0 &&
            kci_lease_holds(replicated->lease, &held) && held == wanted) {
            active_start(replicated, wanted, acquired_ms);
            if (replicated->active == NULL) pause_ms = KCI_REPLICATED_RETRY_MS;
        }
        pthread_mutex_lock(&replicated->lock);
        if (replicated->stopping) break;
        struct timespec deadline = kci_deadline_after(CLOCK_REALTIME, pause_ms);
        if (wanted == replicated->wanted_term)
            pthread_cond_timedwait(&replicated->wake, &replicated->lock, &deadline);
    }
    pthread_mutex_unlock(&replicated->lock);
    return NULL;
}

static void names_keep(kci_persister_replicated *replicated, const kci_persister_config *config)
{
    replicated->config = *config;
    snprintf(replicated->directory, sizeof replicated->directory, "%s", config->directory);
    snprintf(replicated->node, sizeof replicated->node, "%s", config->node);
    snprintf(replicated->stream, sizeof replicated->stream, "%s", config->jetstream.stream);
    replicated->config.directory = replicated->directory;
    replicated->config.node = replicated->node;
    replicated->config.jetstream.stream = replicated->stream;
    kci_lease_holder_make(replicated->holder, sizeof replicated->holder, replicated->node);
}

kc_err kci_persister_replicated_start(kci_persister_replicated **out, natsConnection *connection,
                                      const kci_persister_config *config,
                                      const kci_lease_config *lease, char *error, size_t error_size)
{
    *out = NULL;
    if (config->storage != KCI_QUEUE_STORAGE_JETSTREAM || config->jetstream.stream == NULL ||
        config->directory == NULL || config->node == NULL) {
        snprintf(error, error_size, "queue: a replicated persister needs storage jetstream");
        return KC_ERR_INVALID_ARGUMENT;
    }
    kci_persister_replicated *replicated = calloc(1, sizeof *replicated);
    if (replicated == NULL) {
        snprintf(error, error_size, "out of memory");
        return KC_ERR_NOMEM;
    }
    replicated->connection = connection;
    names_keep(replicated, config);
    pthread_mutex_init(&replicated->lock, NULL);
    pthread_cond_init(&replicated->wake, NULL);
    kci_lease_config lease_config = *lease;
    lease_config.key = KCI_PERSISTER_LEASE_ROLE;
    lease_config.holder = replicated->holder;
    lease_config.on_acquired = on_acquired;
    lease_config.on_lost = on_lost;
    lease_config.closure = replicated;
    kc_err err = kci_lease_config_check(&lease_config);
    if (err == KC_OK) err = kci_lease_open(&replicated->lease, connection, &lease_config);
    if (err == KC_OK && pthread_create(&replicated->thread, NULL, replicated_main, replicated) != 0)
        err = KC_ERR_NOMEM;
    replicated->thread_started = err == KC_OK;
    if (err != KC_OK) {
        snprintf(error, error_size, "queue: lease: %s", kc_last_error());
        kci_persister_replicated_stop(replicated, 0);
        return err;
    }
    kci_info("queue: persister %s standing by for the lease (stream %s)", replicated->holder,
             replicated->stream);
    *out = replicated;
    return KC_OK;
}

bool kci_persister_replicated_active(kci_persister_replicated *replicated, uint64_t *term_out)
{
    pthread_mutex_lock(&replicated->lock);
    uint64_t term = replicated->active_term;
    pthread_mutex_unlock(&replicated->lock);
    if (term_out != NULL) *term_out = term;
    return term != 0;
}

void kci_persister_replicated_stop(kci_persister_replicated *replicated, int64_t drain_ms)
{
    if (replicated == NULL) return;
    if (replicated->thread_started) {
        pthread_mutex_lock(&replicated->lock);
        replicated->stopping = true;
        pthread_cond_signal(&replicated->wake);
        pthread_mutex_unlock(&replicated->lock);
        pthread_join(replicated->thread, NULL);
    }
    active_stop(replicated, drain_ms);
    kci_lease_close(replicated->lease); /* released: a standby takes over at its next read */
    pthread_cond_destroy(&replicated->wake);
    pthread_mutex_destroy(&replicated->lock);
    free(replicated);
}
