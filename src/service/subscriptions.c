/* subscriptions.c - a component's subscriptions (subscriptions.h). */
#include "subscriptions.h"

#include <assert.h>
#include <string.h>
#include <time.h>

#include "common/clock.h"
#include "service/last_error.h"
#include "service/micro.h"

void kci_subscriptions_init(kci_subscriptions *set)
{
    memset(set, 0, sizeof *set);
    pthread_mutex_init(&set->lock, NULL);
    pthread_condattr_t attributes; /* kci_subscriptions_drain waits on the monotonic clock */
    pthread_condattr_init(&attributes);
    pthread_condattr_setclock(&attributes, CLOCK_MONOTONIC);
    pthread_cond_init(&set->completed, &attributes);
    pthread_condattr_destroy(&attributes);
}

/* nats.c calls this once the subscription is closed and its last handler
 * has returned. */
static void on_complete(void *closure)
{
    kci_subscriptions *set = closure;
    pthread_mutex_lock(&set->lock);
    assert(set->open > 0);
    set->open--;
    pthread_cond_broadcast(&set->completed);
    pthread_mutex_unlock(&set->lock);
}

/* A counted subscription's messages: the request, the time its handler
 * took, and the endpoint this thread serves meanwhile (micro.h). */
static void on_counted(natsConnection *connection, natsSubscription *subscription, natsMsg *message,
                       void *closure)
{
    const kci_subscription_counted *counted = closure;
    int64_t start_ns = kci_micro_now_ns();
    kci_micro_current_set(counted->stats);
    counted->handler(connection, subscription, message, counted->closure);
    kci_micro_current_set(NULL);
    kci_micro_stats_request(counted->stats, kci_micro_now_ns() - start_ns);
}

static kc_err subscribe_failed(natsStatus status, const char *subject)
{
    kc_err err = status == NATS_INVALID_SUBJECT ? KC_ERR_INVALID_SUBJECT : KC_ERR_NOT_CONNECTED;
    return kci_fail(err, "cannot subscribe to %s: %s", subject, natsStatus_GetText(status));
}

kc_err kci_subscriptions_add(kci_subscriptions *set, natsConnection *connection,
                             const kci_subscription_spec *spec, void *closure)
{
    assert(connection != NULL && spec->subject != NULL && spec->handler != NULL);
    if (set->count == KCI_SUBSCRIPTIONS_MAX)
        return kci_fail(KC_ERR_LIMIT, "cannot subscribe to %s: more than %d subscriptions",
                        spec->subject, KCI_SUBSCRIPTIONS_MAX);
    natsSubscription **slot = &set->slots[set->count];
    natsMsgHandler handler = spec->handler;
    if (spec->stats != NULL) { /* the counter calls the handler */
        set->counted[set->count] = (kci_subscription_counted){spec->handler, closure, spec->stats};
        handler = on_counted;
        closure = &set->counted[set->count];
    }
    natsStatus status =
        spec->queue != NULL
            ? natsConnection_QueueSubscribe(slot, connection, spec->subject, spec->queue, handler,
                                            closure)
            : natsConnection_Subscribe(slot, connection, spec->subject, handler, closure);
    if (status != NATS_OK) return subscribe_failed(status, spec->subject);
    set->count++; /* destroyed with the set from here on, whatever follows */
    pthread_mutex_lock(&set->lock);
    set->open++; /* before the callback can possibly run */
    pthread_mutex_unlock(&set->lock);
    status = natsSubscription_SetOnCompleteCB(*slot, on_complete, set);
    if (status != NATS_OK) {
        /* Nothing can have been delivered yet: nobody knew the subject's
         * subscriber. Without the callback the count would never fall. */
        natsSubscription_Unsubscribe(*slot);
        pthread_mutex_lock(&set->lock);
        set->open--;
        pthread_mutex_unlock(&set->lock);
        return subscribe_failed(status, spec->subject);
    }
    status = natsSubscription_SetPendingLimits(*slot, spec->pending_messages_max,
                                               spec->pending_bytes_max);
    return status == NATS_OK ? KC_OK : subscribe_failed(status, spec->subject);
}

kc_err kci_subscriptions_flush(natsConnection *connection, int64_t timeout_ms)
{
    natsStatus status = natsConnection_FlushTimeout(connection, timeout_ms);
    if (status == NATS_OK) return KC_OK;
    return kci_fail(status == NATS_TIMEOUT ? KC_ERR_TIMEOUT : KC_ERR_NOT_CONNECTED,
                    "cannot subscribe: %s", natsStatus_GetText(status));
}

bool kci_subscriptions_drain(kci_subscriptions *set, int64_t drain_ms, int64_t margin_ms)
{
    if (drain_ms < 1) drain_ms = 1; /* nats.c reads 0 as "no timeout" */
    for (size_t index = 0; index < set->count; index++)
        if (natsSubscription_DrainTimeout(set->slots[index], drain_ms) != NATS_OK)
            natsSubscription_Unsubscribe(set->slots[index]); /* closed or failing: stop now */
    struct timespec deadline = kci_deadline_after(CLOCK_MONOTONIC, drain_ms + margin_ms);
    pthread_mutex_lock(&set->lock);
    while (set->open > 0)
        if (pthread_cond_timedwait(&set->completed, &set->lock, &deadline) != 0) break;
    bool drained = set->open == 0;
    pthread_mutex_unlock(&set->lock);
    return drained;
}

void kci_subscriptions_destroy(kci_subscriptions *set)
{
    assert(set->open == 0);
    for (size_t index = 0; index < set->count; index++)
        natsSubscription_Destroy(set->slots[index]);
    set->count = 0;
    pthread_cond_destroy(&set->completed);
    pthread_mutex_destroy(&set->lock);
}
