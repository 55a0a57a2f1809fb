/* subscriptions.h - a component's subscriptions (the component kit).
 *
 * The persister, the ledger, the keeper and the arbiter each subscribe to a
 * few subjects (some in a queue group, so instances share the work) and, on
 * stop, must not free what their handlers use while a handler still runs.
 * nats.c tells when a subscription's last handler has returned only through
 * its on-complete callback; this set counts those, so "drained" means no
 * handler of the set runs now or will run again (a drain that timed out is
 * cut short with an unsubscribe, and still waited for).
 *
 * Usage: kci_subscriptions_init, one kci_subscriptions_add per subject, then
 * kci_subscriptions_flush so the server knows them before the component
 * says it serves; on stop kci_subscriptions_drain, then (once the
 * component's other threads are done with the connection)
 * kci_subscriptions_destroy. */
#ifndef KCI_SUBSCRIPTIONS_H
#define KCI_SUBSCRIPTIONS_H

#include <nats/nats.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kingcobra/err.h"

typedef struct kci_micro_stats kci_micro_stats; /* micro.h */

enum {
    KCI_SUBSCRIPTIONS_MAX = 16,
    KCI_PENDING_UNLIMITED = -1, /* a pending limit nats.c never applies */
    /* nats.c's own defaults, written out so every subscription states its bound */
    KCI_PENDING_MESSAGES_DEFAULT = 65536,
    KCI_PENDING_BYTES_DEFAULT = 64 * 1024 * 1024,
};

typedef struct kci_subscription_spec {
    const char *subject;
    const char *queue; /* a queue group: one member gets each message; NULL: every one */
    natsMsgHandler handler;
    /* Messages and bytes delivered and not yet handled: past them nats.c
     * drops (and counts) what comes. KCI_PENDING_UNLIMITED: never drop. */
    int pending_messages_max;
    int pending_bytes_max;
    /* An endpoint of the services protocol (micro.h): each message counts
     * as a request, with the time its handler took, and the handler's
     * thread serves this endpoint while it runs (an error answer counts
     * here). NULL: not an endpoint, the handler is called as it is. */
    kci_micro_stats *stats;
} kci_subscription_spec;

/* What a counted subscription calls (the spec's handler and closure). */
typedef struct kci_subscription_counted {
    natsMsgHandler handler;
    void *closure;
    kci_micro_stats *stats;
} kci_subscription_counted;

typedef struct kci_subscriptions {
    natsSubscription *slots[KCI_SUBSCRIPTIONS_MAX];
    kci_subscription_counted counted[KCI_SUBSCRIPTIONS_MAX]; /* by slot, for spec->stats */
    size_t count;
    pthread_mutex_t lock;
    pthread_cond_t completed;
    size_t open; /* subscriptions whose last handler may still run */
} kci_subscriptions;

void kci_subscriptions_init(kci_subscriptions *set);
/* Subscribes spec->handler(closure) to spec->subject. KC_ERR_LIMIT past
 * KCI_SUBSCRIPTIONS_MAX; nats.c's failures as KC_ERR_NOT_CONNECTED (or
 * KC_ERR_INVALID_SUBJECT), with the subject in kc_last_error(). */
kc_err kci_subscriptions_add(kci_subscriptions *set, natsConnection *connection,
                             const kci_subscription_spec *spec, void *closure);
/* Waits until the server has the subscriptions (a PING round trip). */
kc_err kci_subscriptions_flush(natsConnection *connection, int64_t timeout_ms);
/* Stops the deliveries: each subscription drains what it holds within
 * drain_ms; then waits, at most drain_ms + margin_ms in all, until no
 * handler runs. false when one still runs after that (a hung handler: the
 * caller must not free what it uses). */
bool kci_subscriptions_drain(kci_subscriptions *set, int64_t drain_ms, int64_t margin_ms);
/* Frees the subscriptions; after kci_subscriptions_drain returned true, or
 * when none was added. */
void kci_subscriptions_destroy(kci_subscriptions *set);

#endif
