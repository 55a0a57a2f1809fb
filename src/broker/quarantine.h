/* quarantine.h - nodes the arbiters have quarantined: the broker stops
 * delivering service requests (kc.req.>) to their connections, so the
 * quarantine does not depend on the node's goodwill.
 *
 * Identity: a connection is node X when it logged in as user X (servers
 * with users), else when its CONNECT name is X. Without users a node can
 * pick any name, so operators who rely on quarantine give each node its own
 * user (docs/arbiter.md). Queue groups then pick another member; a plain
 * subscription of a quarantined node simply gets nothing.
 *
 * Control: the set is replaced whole by a publication on
 * KCI_QUARANTINE_SET_SUBJECT carrying {"nodes": ["a", "b", ...]}, accepted
 * only from kcobrad's own components (the internal listener, which only the
 * internal user can use); from anyone else it is an ordinary message with
 * no effect. Cost on the hot path: one flag test per delivery. */
#ifndef KCI_QUARANTINE_H
#define KCI_QUARANTINE_H

#include <stdbool.h>

#include "client.h"

#define KCI_QUARANTINE_SET_SUBJECT "kc.sys.quarantine.set"

enum {
    KCI_QUARANTINE_NODES_MAX = 4096,
};

/* Handles a publication if it is a quarantine control message from an
 * internal client (the set is replaced and every connection re-marked). */
void kci_quarantine_on_publish(kci_client *publisher, const kci_pub_args *pub);
/* Marks a connection that has just sent CONNECT. */
void kci_quarantine_on_connect(kci_client *client);
/* Whether pub must not reach client (already known to be quarantined). */
bool kci_quarantine_blocks(const kci_pub_args *pub);
/* Frees the set (server destroy). */
void kci_quarantine_free(kci_server *server);

#endif
