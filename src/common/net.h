/* net.h - TCP listening sockets, shared by every listener kcobrad opens
 * (clients, HTTP monitoring, the seed-format ingress). */
#ifndef KCI_NET_H
#define KCI_NET_H

#include <stdbool.h>
#include <stddef.h>

#include "kingcobra/err.h"

/* Opens a non-blocking, close-on-exec listening socket on host:port (port 0
 * or negative: an ephemeral port). what names the listener in errors
 * ("client", "http monitoring"). On success *fd_out and *port_out (the port
 * actually bound) are set. */
kc_err kci_listen_tcp(const char *host, int port, int backlog, const char *what, int *fd_out,
                      int *port_out, char *error, size_t error_size);

/* Whether a listener on host is reachable from this host only: 127.0.0.0/8
 * ("127." and anything after), "::1" or "localhost". A listener without
 * authentication warns at start otherwise (monitoring, the ingress). */
bool kci_host_is_loopback(const char *host);

#endif
