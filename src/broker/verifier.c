/* verifier.c - the bcrypt worker threads, their queue and the hand-back to
 * the event loop (see verifier.h for the design). */
#include "verifier.h"

#include <assert.h>
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <unistd.h>

#include "auth.h"
#include "common/log.h"

struct kci_verifier {
    kci_source source; /* first: epoll data points here */
    int event_fd;
    kci_verifier_done_fn done;
    void *done_context;
    kci_auth_cache cache;        /* the loop's */
    uint32_t pending_count;      /* the loop's: submitted, not yet handed back */
    uint64_t verification_count; /* the loop's, as the rest of the stats */
    uint64_t busy_refusal_count;
    pthread_mutex_t mutex; /* guards what follows */
    pthread_cond_t work_ready;
    kci_verify_job *queue_head; /* to verify, oldest first */
    kci_verify_job *queue_tail;
    kci_verify_job *done_list; /* verified, for the loop (any order) */
    bool stopping;
    uint32_t thread_count;
    pthread_t threads[KCI_VERIFIER_THREADS];
};

/* ---- jobs --------------------------------------------------------------- */

static char *copy_into(char **at, const char *text)
{
    if (text == NULL) return NULL;
    size_t len = strlen(text) + 1;
    char *copy = memcpy(*at, text, len);
    *at += len;
    return copy;
}

static size_t size_of(const char *text)
{
    return text != NULL ? strlen(text) + 1 : 0;
}

static kci_verify_job *job_new(const kci_credentials *given, const kci_auth_decision *decision)
{
    const char *matched_user = decision->user != NULL ? decision->user->user : NULL;
    size_t strings_size = size_of(given->auth_token) + size_of(given->user) +
                          size_of(given->password) + size_of(matched_user) +
                          size_of(decision->secret) + size_of(decision->hash);
    kci_verify_job *job = calloc(1, sizeof *job + strings_size);
    if (job == NULL) return NULL;
    char *at = (char *)(job + 1);
    job->auth_token = copy_into(&at, given->auth_token);
    job->user = copy_into(&at, given->user);
    job->password = copy_into(&at, given->password);
    job->matched_user = copy_into(&at, matched_user);
    job->secret = copy_into(&at, decision->secret);
    job->hash = copy_into(&at, decision->hash);
    job->strings_size = strings_size;
    atomic_init(&job->cancelled, false);
    return job;
}

static void job_free(kci_verify_job *job)
{
    explicit_bzero(job + 1, job->strings_size); /* passwords */
    free(job);
}

/* ---- workers -------------------------------------------------------------- */

static void ring(kci_verifier *verifier)
{
    uint64_t one = 1;
    ssize_t ignored = write(verifier->event_fd, &one, sizeof one);
    (void)ignored; /* a full counter still wakes the loop */
}

static kci_verify_job *next_job(kci_verifier *verifier)
{
    pthread_mutex_lock(&verifier->mutex);
    while (verifier->queue_head == NULL && !verifier->stopping)
        pthread_cond_wait(&verifier->work_ready, &verifier->mutex);
    kci_verify_job *job = verifier->queue_head;
    if (job != NULL && !verifier->stopping) {
        verifier->queue_head = job->next;
        if (verifier->queue_head == NULL) verifier->queue_tail = NULL;
        job->next = NULL;
    } else {
        job = NULL;
    }
    pthread_mutex_unlock(&verifier->mutex);
    return job;
}

static void *worker_main(void *argument)
{
    kci_verifier *verifier = argument;
    /* Linux nice is per thread: below the loop, so a flood of logins slows
     * logins, not the traffic of connected clients. Best effort. */
    if (setpriority(PRIO_PROCESS, (id_t)gettid(), KCI_VERIFIER_NICE) != 0)
        kci_debug("verifier: cannot lower the worker's priority: %s", strerror(errno));
    for (;;) {
        kci_verify_job *job = next_job(verifier);
        if (job == NULL) return NULL;
        job->hashed = !atomic_load(&job->cancelled);
        job->accepted = job->hashed && kci_bcrypt_verify(job->secret, job->hash);
        pthread_mutex_lock(&verifier->mutex);
        job->next = verifier->done_list;
        verifier->done_list = job;
        pthread_mutex_unlock(&verifier->mutex);
        ring(verifier);
    }
}

static kc_err start_workers(kci_verifier *verifier)
{
    while (verifier->thread_count < KCI_VERIFIER_THREADS) {
        int error =
            pthread_create(&verifier->threads[verifier->thread_count], NULL, worker_main, verifier);
        if (error != 0) {
            kci_error("verifier: cannot start a bcrypt worker thread: %s", strerror(error));
            return verifier->thread_count > 0 ? KC_OK : KC_ERR_IO;
        }
        verifier->thread_count++;
    }
    return KC_OK;
}

/* ---- the loop's side ------------------------------------------------------- */

kc_err kci_verifier_create(kci_verifier **out, kci_verifier_done_fn done, void *context)
{
    kci_verifier *verifier = calloc(1, sizeof *verifier);
    if (verifier == NULL) return KC_ERR_NOMEM;
    verifier->source.kind = KCI_SOURCE_VERIFIER;
    verifier->done = done;
    verifier->done_context = context;
    kci_auth_cache_init(&verifier->cache);
    verifier->event_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (verifier->event_fd < 0) {
        free(verifier);
        return KC_ERR_IO;
    }
    pthread_mutex_init(&verifier->mutex, NULL);
    pthread_cond_init(&verifier->work_ready, NULL);
    *out = verifier;
    return KC_OK;
}

static void free_list(kci_verify_job *job)
{
    while (job != NULL) {
        kci_verify_job *next = job->next;
        job_free(job);
        job = next;
    }
}

void kci_verifier_destroy(kci_verifier *verifier)
{
    if (verifier == NULL) return;
    pthread_mutex_lock(&verifier->mutex);
    verifier->stopping = true;
    pthread_cond_broadcast(&verifier->work_ready);
    pthread_mutex_unlock(&verifier->mutex);
    for (uint32_t i = 0; i < verifier->thread_count; i++)
        pthread_join(verifier->threads[i], NULL);
    free_list(verifier->queue_head);
    free_list(verifier->done_list);
    pthread_cond_destroy(&verifier->work_ready);
    pthread_mutex_destroy(&verifier->mutex);
    close(verifier->event_fd);
    explicit_bzero(&verifier->cache, sizeof verifier->cache);
    free(verifier);
}

int kci_verifier_fd(const kci_verifier *verifier)
{
    return verifier->event_fd;
}

kci_source *kci_verifier_source(kci_verifier *verifier)
{
    return &verifier->source;
}

kci_auth_cache *kci_verifier_cache(kci_verifier *verifier)
{
    return &verifier->cache;
}

uint32_t kci_verifier_pending_count(const kci_verifier *verifier)
{
    return verifier->pending_count;
}

void kci_verifier_get_stats(const kci_verifier *verifier, kci_verifier_stats *stats)
{
    *stats = (kci_verifier_stats){
        .verification_count = verifier->verification_count,
        .cache_hit_count = verifier->cache.hit_count,
        .busy_refusal_count = verifier->busy_refusal_count,
        .pending_count = verifier->pending_count,
    };
}

kc_err kci_verifier_submit(kci_verifier *verifier, struct kci_client *client,
                           const kci_credentials *given, const kci_auth_decision *decision,
                           kci_verify_job **job_out)
{
    assert(decision->verdict == KCI_AUTH_HASH_NEEDED);
    assert(decision->secret != NULL && decision->hash != NULL);
    if (verifier->pending_count >= KCI_VERIFIER_PENDING_MAX) {
        verifier->busy_refusal_count++;
        return KC_ERR_LIMIT;
    }
    if (start_workers(verifier) != KC_OK) return KC_ERR_IO;
    kci_verify_job *job = job_new(given, decision);
    if (job == NULL) return KC_ERR_NOMEM;
    job->client = client;
    pthread_mutex_lock(&verifier->mutex);
    if (verifier->queue_tail != NULL)
        verifier->queue_tail->next = job;
    else
        verifier->queue_head = job;
    verifier->queue_tail = job;
    pthread_cond_signal(&verifier->work_ready);
    pthread_mutex_unlock(&verifier->mutex);
    verifier->pending_count++;
    *job_out = job;
    return KC_OK;
}

void kci_verifier_cancel(kci_verify_job *job)
{
    job->client = NULL;
    atomic_store(&job->cancelled, true);
}

void kci_verifier_on_ready(kci_verifier *verifier)
{
    uint64_t rings = 0;
    ssize_t ignored = read(verifier->event_fd, &rings, sizeof rings);
    (void)ignored;
    pthread_mutex_lock(&verifier->mutex);
    kci_verify_job *job = verifier->done_list;
    verifier->done_list = NULL;
    pthread_mutex_unlock(&verifier->mutex);
    while (job != NULL) {
        kci_verify_job *next = job->next;
        assert(verifier->pending_count > 0);
        verifier->pending_count--;
        verifier->verification_count += job->hashed;
        /* A verified credential stays true for this hash, client or not. */
        if (job->accepted)
            kci_auth_cache_insert(&verifier->cache, job->matched_user, job->secret, job->hash);
        if (job->client != NULL) verifier->done(verifier->done_context, job);
        job_free(job);
        job = next;
    }
}
