/* component.h - what a built-in component (the arbiter, the simulator's
 * nodes) may take from the kc_client it runs on, without reaching into the
 * client's private struct: its nats.c connection, for subscriptions and
 * publishes that are not requests (observing kc.req.>, votes, QoS samples).
 * The client keeps owning it; it lives until kc_client_close. */
#ifndef KCI_COMPONENT_H
#define KCI_COMPONENT_H

#include <nats/nats.h>

#include "kingcobra/kingcobra.h"

natsConnection *kci_client_connection(const kc_client *client);

#endif
