/* connect.h - a component connects and disconnects (the component kit).
 *
 * kcobrad's built-in components (as its internal users) and the same
 * components run by `kcobra <part> serve` or the CLI's one-shot commands
 * (as any user of any NATS-protocol server) open their nats.c connection
 * here, from kc_client_options through the one options builder
 * (nats_options.h), so a server list, TLS or a credential means the same
 * everywhere. What differs between them is said in kci_connect_spec. */
#ifndef KCI_CONNECT_H
#define KCI_CONNECT_H

#include <nats/nats.h>
#include <stdbool.h>

#include "kingcobra/kingcobra.h"

typedef struct kci_connect_spec {
    const kc_client_options *options; /* servers, credentials, TLS, timeouts, reconnects */
    const char *name;                 /* the connection's name on the server */
    /* One delivery thread for all its subscriptions, so messages are handled
     * in the order the server sent them (the persister's record of a plain
     * request must come before its reply's: src/queue/observed.c). */
    bool ordered;
    /* No "no responders" status for requests nobody serves: for a sender
     * that publishes with its own reply inbox and never waits on a request
     * (the persister's dispatches), such a status would be traffic for
     * nothing. */
    bool no_responders_off;
    /* Log each loss of the server and each reconnection (long-running). */
    bool log_reconnects;
    /* A lease holder's connection: pings every KCI_CONNECT_LEASE_PING_MS (2
     * outstanding at most), since a server stopped with SIGSTOP keeps its
     * sockets open and only pings notice it. false: nats.c's 2 minutes. */
    bool short_pings;
} kci_connect_spec;

enum { KCI_CONNECT_LEASE_PING_MS = 500, KCI_CONNECT_LEASE_PINGS_OUT = 2 };

/* Connects; KC_ERR_INVALID_ARGUMENT for bad options, KC_ERR_NOT_CONNECTED
 * when no server answers, with the servers and nats.c's reason in
 * kc_last_error(). */
kc_err kci_connect(natsConnection **out, const kci_connect_spec *spec);
/* Closes (what was published is flushed first) and frees the connection,
 * and forgets it; NULL is fine. After the components using it stopped. */
void kci_disconnect(natsConnection **connection);

#endif
