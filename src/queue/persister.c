/* persister.c - durable requests (see persister.h and docs/queue.md): start
 * and stop, the subscriptions, and the pool of append contexts. The work is
 * done in the files persister_internal.h lists.
 *
 * Start opens the log, which scans it and hands every record to rebuild.c
 * (no other thread runs yet, so the lock is not taken), then starts the
 * redelivery thread and subscribes last, so nothing is served before the
 * index is whole. Stop goes the other way: drain the subscriptions, wake
 * and join the redelivery thread, and close the log, which completes what
 * is queued, so every durable request is still acknowledged.
 *
 * The context pool: an append awaiting its sync holds one of
 * KCI_PERSISTER_IN_FLIGHT_MAX contexts, allocated at start. A submit or a
 * reply waits for a free one (back-pressure on the fabric instead of an
 * unbounded queue), except once stopping. */
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "persister_internal.h"
#include "queue/metrics.h"

#define DEFAULT_NODE "persister"

enum {
    STOP_MARGIN_MS = 2000,
    SUBSCRIBE_FLUSH_TIMEOUT_MS = 5000,
};

/* ---- the context pool ------------------------------------------------------- */

static bool context_in_pool(const kci_persister *persister, const kci_persister_context *context)
{
    return context >= persister->contexts &&
           context < persister->contexts + KCI_PERSISTER_IN_FLIGHT_MAX;
}

kci_persister_context *kci_persister_context_take(kci_persister *persister)
{
    pthread_mutex_lock(&persister->lock);
    while (persister->free_contexts == NULL && !persister->stopping)
        pthread_cond_wait(&persister->context_free, &persister->lock);
    kci_persister_context *context = persister->free_contexts;
    if (context != NULL) {
        persister->free_contexts = context->next_free;
        persister->contexts_taken++;
        assert(context_in_pool(persister, context));
        assert(persister->contexts_taken <= KCI_PERSISTER_IN_FLIGHT_MAX);
    }
    pthread_mutex_unlock(&persister->lock);
    return context;
}

void kci_persister_context_give_locked(kci_persister *persister, kci_persister_context *context)
{
    assert(context_in_pool(persister, context));
    assert(persister->contexts_taken > 0);
    natsMsg_Destroy(context->message);
    context->message = NULL;
    context->next_free = persister->free_contexts;
    persister->free_contexts = context;
    persister->contexts_taken--;
    pthread_cond_signal(&persister->context_free);
}

void kci_persister_context_give(kci_persister *persister, kci_persister_context *context)
{
    pthread_mutex_lock(&persister->lock);
    kci_persister_context_give_locked(persister, context);
    pthread_mutex_unlock(&persister->lock);
}

/* ---- start and stop --------------------------------------------------------- */

kci_persister_config kci_persister_config_defaults(const char *directory)
{
    return (kci_persister_config){
        .directory = directory,
        .durability = KCI_DURABILITY_BATCH,
        .segment_bytes = KCI_SEGMENT_BYTES_DEFAULT,
        .node = DEFAULT_NODE,
        .redelivery_timeout_ms = KCI_PERSISTER_TIMEOUT_MS_DEFAULT,
        .redelivery_backoff_max_ms = KCI_PERSISTER_BACKOFF_MS_MAX_DEFAULT,
        .attempts_max = KCI_PERSISTER_ATTEMPTS_MAX_DEFAULT,
        .retention_ms = KCI_PERSISTER_RETENTION_MS_DEFAULT,
        .probe_interval_ms = KCI_PERSISTER_PROBE_INTERVAL_MS_DEFAULT,
        .storage = KCI_QUEUE_STORAGE_LOCAL,
    };
}

/* A field out of range is the caller's mistake, reported, not replaced. */
static kc_err config_check(const kci_persister_config *config, char *error, size_t error_size)
{
    const char *problem = NULL;
    if (config->directory == NULL || config->directory[0] == '\0')
        problem = "no directory";
    else if (config->node == NULL || strlen(config->node) > KC_NODE_BYTES_MAX ||
             !kci_token_valid(config->node))
        problem = "the node is not one subject token (its Kc-Node)";
    else if (strlen(config->directory) >= PATH_MAX)
        problem = "the directory's path is too long";
    else if (config->segment_bytes < KCI_SEGMENT_BYTES_MIN ||
             config->segment_bytes > KCI_SEGMENT_BYTES_MAX)
        problem = "segment_bytes is out of range";
    else if (config->redelivery_timeout_ms < 1 ||
             config->redelivery_backoff_max_ms < config->redelivery_timeout_ms)
        problem = "the redelivery backoff must be at least its first timeout, 1 ms or more";
    else if (config->attempts_max < 1 || config->attempts_max > KCI_PERSISTER_ATTEMPTS_LIMIT)
        problem = "attempts_max is out of range";
    else if (config->retention_ms < 0 && config->retention_ms != KCI_PERSISTER_RETENTION_KEEP)
        problem = "retention_ms is negative";
    else if (config->probe_interval_ms < 1)
        problem = "probe_interval_ms must be 1 ms or more";
    else if (config->storage == KCI_QUEUE_STORAGE_JETSTREAM && config->jetstream.stream == NULL)
        problem = "storage jetstream names no stream";
    if (problem == NULL) return KC_OK;
    snprintf(error, error_size, "queue: %s", problem);
    return KC_ERR_INVALID_ARGUMENT;
}

static void config_keep(kci_persister *persister, const kci_persister_config *config)
{
    persister->config = *config;
    kci_persister_config *own = &persister->config;
    snprintf(persister->directory, sizeof persister->directory, "%s", config->directory);
    own->directory = persister->directory;
    snprintf(persister->node, sizeof persister->node, "%s", config->node);
    own->node = persister->node;
    /* What the redelivery thread's backoff relies on (config_check). */
    assert(own->redelivery_timeout_ms > 0 &&
           own->redelivery_backoff_max_ms >= own->redelivery_timeout_ms);
    assert(own->attempts_max >= 1 && own->attempts_max <= KCI_PERSISTER_ATTEMPTS_LIMIT);
}

/* Every context free, chained in array order. */
static void contexts_chain(kci_persister *persister)
{
    for (int index = KCI_PERSISTER_IN_FLIGHT_MAX - 1; index >= 0; index--) {
        persister->contexts[index].next_free = persister->free_contexts;
        persister->free_contexts = &persister->contexts[index];
    }
    assert(persister->free_contexts == &persister->contexts[0]);
    assert(persister->contexts_taken == 0);
}

/* The seed of the observed table and the inbox, both from one fresh id. */
static void identity_init(kci_persister *persister)
{
    kci_uuid token;
    kci_uuid_v7(&token);
    memcpy(&persister->observed_seed, token.bytes + 8, sizeof persister->observed_seed);
    char text[KCI_PERSISTER_ID_TEXT_BYTES];
    kci_uuid_format(&token, text);
    /* The random tail of a fresh id: unique to this persister's life. */
    int length = snprintf(persister->inbox, sizeof persister->inbox,
                          KCI_PERSISTER_INBOX_PREFIX "%.8s%.12s", text + 19, text + 24);
    assert(length > 0 && (size_t)length < sizeof persister->inbox);
}

static kci_persister *persister_new(const kci_persister_config *config)
{
    kci_persister *persister = calloc(1, sizeof *persister);
    if (persister == NULL) return NULL;
    config_keep(persister, config);
    pthread_mutex_init(&persister->lock, NULL);
    kci_subscriptions_init(&persister->subscriptions);
    for (int index = 0; index < KCI_PERSISTER_ENDPOINTS; index++)
        kci_micro_stats_init(&persister->endpoint_stats[index]);
    pthread_cond_init(&persister->context_free, NULL);
    pthread_cond_init(&persister->wake, NULL);
    persister->pending_due_min_ms = INT64_MAX;
    persister->contexts = calloc(KCI_PERSISTER_IN_FLIGHT_MAX, sizeof *persister->contexts);
    persister->get_buffer = malloc(KCI_RECORD_BYTES_MAX);
    persister->redelivery_buffer = malloc(KCI_RECORD_BYTES_MAX);
    bool index_ok = kci_index_init(&persister->index);
    bool types_ok = kci_persister_types_init(persister);
    if (config->record_requests)
        persister->observed = calloc(KCI_PERSISTER_OBSERVED_MAX, sizeof *persister->observed);
    if (persister->contexts == NULL || persister->get_buffer == NULL ||
        persister->redelivery_buffer == NULL || !index_ok || !types_ok ||
        (config->record_requests && persister->observed == NULL)) {
        kci_persister_stop(persister, 0);
        return NULL;
    }
    contexts_chain(persister);
    identity_init(persister);
    return persister;
}

/* Answers $SRV (micro.h) for the endpoints, specs[0 .. KCI_PERSISTER_ENDPOINTS). */
static void micro_start(kci_persister *persister, const kci_subscription_spec *specs)
{
    static const char *const names[KCI_PERSISTER_ENDPOINTS] = {"submit", "reply_get", "stats",
                                                               "compact", "requeue"};
    kci_micro_endpoint endpoints[KCI_PERSISTER_ENDPOINTS];
    for (int index = 0; index < KCI_PERSISTER_ENDPOINTS; index++)
        endpoints[index] = (kci_micro_endpoint){names[index], specs[index].subject,
                                                specs[index].queue, specs[index].stats};
    const kci_micro_description about = {
        .name = "kc-persister",
        .version = KC_VERSION,
        .description = "KingCobra persister: durable submits on the REQUEST_REPLY.queue",
        .node = persister->node,
        .type = "persister",
        .endpoints = endpoints,
        .endpoint_count = KCI_PERSISTER_ENDPOINTS};
    persister->micro = kci_micro_start_logged(persister->connection, &about, "queue");
}

static kc_err subscribe_all(kci_persister *persister, char *error, size_t error_size)
{
    assert(persister->connection != NULL);
    char inbox_wildcard[KCI_PERSISTER_INBOX_BYTES + 2];
    snprintf(inbox_wildcard, sizeof inbox_wildcard, "%s.*", persister->inbox);
    /* Never drop what came: a submit's sender waits for its acknowledgement,
     * and back-pressure is the pool of append contexts. */
    /* The endpoints (counted for $SRV.STATS) are rows 1 to KCI_PERSISTER_ENDPOINTS. */
    kci_micro_stats *counted = persister->endpoint_stats;
#define SPEC(subject, queue, handler, stats)                                                       \
    {                                                                                              \
        subject, queue, handler, KCI_PENDING_UNLIMITED, KCI_PENDING_UNLIMITED, stats               \
    }
    const kci_subscription_spec table[] = {
        SPEC(inbox_wildcard, NULL, kci_persister_on_reply, NULL),
        SPEC(KCI_SUBMIT_SUBJECT, KCI_PERSISTER_QUEUE_GROUP, kci_persister_on_submit, &counted[0]),
        SPEC(KCI_REPLY_GET_SUBJECT, KCI_PERSISTER_QUEUE_GROUP, kci_persister_on_reply_get,
             &counted[1]),
        SPEC(KCI_QUEUE_STATS_SUBJECT, KCI_PERSISTER_QUEUE_GROUP, kci_persister_on_stats,
             &counted[2]),
        SPEC(KCI_QUEUE_COMPACT_SUBJECT, KCI_PERSISTER_QUEUE_GROUP, kci_persister_on_compact,
             &counted[3]),
        SPEC(KCI_QUEUE_REQUEUE_SUBJECT, KCI_PERSISTER_QUEUE_GROUP, kci_persister_on_requeue,
             &counted[4]),
        SPEC("kc.req.>", NULL, kci_persister_on_observed_request, NULL), /* record_requests only */
        SPEC("_INBOX.>", NULL, kci_persister_on_observed_reply, NULL),   /* record_requests only */
    };
#undef SPEC
    size_t count = sizeof table / sizeof table[0] - (persister->config.record_requests ? 0 : 2);
    kc_err err = KC_OK;
    for (size_t index = 0; index < count && err == KC_OK; index++)
        err = kci_subscriptions_add(&persister->subscriptions, persister->connection, &table[index],
                                    persister);
    if (err == KC_OK)
        err = kci_subscriptions_flush(persister->connection, SUBSCRIBE_FLUSH_TIMEOUT_MS);
    if (err != KC_OK) snprintf(error, error_size, "queue: %s", kc_last_error());
    if (err == KC_OK) micro_start(persister, table + 1);
    return err;
}

/* Opens the log, rebuilding the index from it. */
static kc_err open_log(kci_persister *persister, char *error, size_t error_size)
{
    bool online = persister->connection != NULL;
    kci_queue_log_config log_config = {.directory = persister->directory,
                                       .durability = persister->config.durability,
                                       .segment_bytes = persister->config.segment_bytes,
                                       .skip_corrupt = persister->config.skip_corrupt,
                                       .preallocate = true,
                                       .completions_end =
                                           online ? kci_persister_flush_published : NULL,
                                       .completions_end_context = persister,
                                       .connection = persister->connection};
    if (persister->config.storage == KCI_QUEUE_STORAGE_JETSTREAM) {
        if (!online) { /* the stream's writer is the active persister alone */
            snprintf(error, error_size, "queue: storage jetstream needs a connection");
            return KC_ERR_UNSUPPORTED;
        }
        log_config.jetstream = &persister->config.jetstream;
    }
    kc_err err = kci_queue_log_open(&persister->log, &log_config, kci_persister_rebuild_record,
                                    persister, &persister->stats.recovery, error, error_size);
    if (err == KC_OK) err = kci_persister_rebuild_finish(persister);
    if (err == KC_OK) kci_persister_rebuild_log(persister, &persister->stats.recovery);
    assert(err != KC_OK || persister->log != NULL);
    return err;
}

kc_err kci_persister_start(kci_persister **out, natsConnection *connection,
                           const kci_persister_config *config, char *error, size_t error_size)
{
    *out = NULL;
    kc_err checked = config_check(config, error, error_size);
    if (checked != KC_OK) return checked;
    kci_persister *persister = persister_new(config);
    if (persister == NULL) {
        snprintf(error, error_size, "out of memory");
        return KC_ERR_NOMEM;
    }
    persister->connection = connection;
    bool online = connection != NULL; /* offline: kcobra queue compact on a stopped queue */
    if (online) kci_persister_metrics_register();
    kc_err err = open_log(persister, error, error_size);
    if (err == KC_OK && online &&
        pthread_create(&persister->redelivery_thread, NULL, kci_persister_redelivery_main,
                       persister) != 0) {
        snprintf(error, error_size, "cannot start the redelivery thread");
        err = KC_ERR_NOMEM;
    }
    persister->redelivery_started = err == KC_OK && online;
    if (err == KC_OK && online) err = subscribe_all(persister, error, error_size);
    pthread_mutex_lock(&persister->lock);
    persister->subscribed = err == KC_OK && online; /* probes may go out (waiting.c) */
    pthread_mutex_unlock(&persister->lock);
    if (err != KC_OK) {
        kci_persister_stop(persister, 0);
        return err;
    }
    if (online)
        kci_info("queue: persister on %s (durability %s), log in %s", KCI_SUBMIT_SUBJECT,
                 kci_durability_name(persister->config.durability), persister->directory);
    *out = persister;
    return KC_OK;
}

void kci_persister_stop(kci_persister *persister, int64_t drain_ms)
{
    if (persister == NULL) return;
    kci_micro_stop(persister->micro, drain_ms);
    persister->micro = NULL;
    bool drained = kci_subscriptions_drain(&persister->subscriptions, drain_ms, STOP_MARGIN_MS);
    pthread_mutex_lock(&persister->lock);
    persister->stopping = true; /* a handler waiting for a context gives up now */
    pthread_cond_broadcast(&persister->wake);
    pthread_cond_broadcast(&persister->context_free);
    pthread_mutex_unlock(&persister->lock);
    if (!drained && !kci_subscriptions_drain(&persister->subscriptions, 1, STOP_MARGIN_MS)) {
        kci_error("queue: a handler did not finish; leaking the persister");
        return;
    }
    if (persister->redelivery_started) {
        pthread_join(persister->redelivery_thread, NULL);
        /* Gone: what it had pending is not pending in this process now. */
        kci_gauge_set(&kci_persister_metric_values.pending, 0);
        kci_gauge_set(&kci_persister_metric_values.dead, 0);
    }
    kci_queue_log_close(persister->log); /* completes what is queued: acknowledgements go out */
    kci_subscriptions_destroy(&persister->subscriptions);
    kci_index_destroy(&persister->index);
    free(persister->pending);
    free(persister->segments);
    free(persister->contexts);
    free(persister->get_buffer);
    free(persister->redelivery_buffer);
    free(persister->observed);
    kci_persister_types_free(persister);
    for (int index = 0; index < KCI_PERSISTER_ENDPOINTS; index++)
        kci_micro_stats_destroy(&persister->endpoint_stats[index]);
    pthread_cond_destroy(&persister->context_free);
    pthread_cond_destroy(&persister->wake);
    pthread_mutex_destroy(&persister->lock);
    free(persister);
}
