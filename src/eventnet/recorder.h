/* recorder.h - the EventNet recorder (docs/eventnet.md): a component that
 * observes the traffic (kc.>, _INBOX.> and the persister's _KCQ.> replies)
 * without taking part in it, and
 * records every message that carries a Kc-Id and a Kc-Ts as an event, with
 * its Kc-Cause (and Kc-Reply-To) as edges, in the store. It answers walks
 * on kc.eventnet.walk.
 *
 * On kcobrad it logs in as the eventnet role, whose wildcard subscriptions
 * are taps (broker/roles.h): they see every message and are never a
 * responder, so turning it on changes no delivery. On nats-server they are
 * ordinary subscriptions: they receive copies too, but a request that no
 * service answers then times out instead of failing at once with "no
 * responders" (the recorder counts as a subscriber there). */
#ifndef KCI_EVENTNET_RECORDER_H
#define KCI_EVENTNET_RECORDER_H

#include <nats/nats.h>
#include <stddef.h>
#include <stdint.h>

#include "kingcobra/err.h"

#define KCI_EVENTNET_WALK_SUBJECT "kc.eventnet.walk"
#define KCI_EVENTNET_WALK_QUEUE "kc-eventnet-walk"
#define KCI_EVENTNET_TYPE "eventnet" /* Kc-Type of its answers; such traffic is not recorded */

enum { KCI_EVENTNET_SUBSCRIBE_TIMEOUT_MS = 5000 };

typedef struct kci_eventnet_recorder kci_eventnet_recorder;

typedef struct kci_eventnet_recorder_config {
    const char *directory; /* the LMDB environment (created) */
    int64_t events_max;
    const char *node; /* Kc-Node of its answers */
} kci_eventnet_recorder_config;

kc_err kci_eventnet_recorder_start(kci_eventnet_recorder **out, natsConnection *connection,
                                   const kci_eventnet_recorder_config *config, char *error,
                                   size_t error_size);
/* Drains (bounded) and closes the store; NULL is fine. */
void kci_eventnet_recorder_stop(kci_eventnet_recorder *recorder, int64_t drain_ms);

#endif
