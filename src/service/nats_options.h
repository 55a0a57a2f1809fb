/* nats_options.h - the one builder of nats.c connection options.
 *
 * libkingcobra's clients, kcobra's raw nats.c connections and kcobrad's
 * built-in components all connect through it, so a server list, a TLS
 * setting or a credential means the same everywhere: "nats://a:4222,
 * nats://b:4222" (commas or blanks between URLs, as kcobra's --server and
 * kc_client_options.servers take it) becomes nats.c's server list, not one
 * URL that no server answers. */
#ifndef KCI_NATS_OPTIONS_H
#define KCI_NATS_OPTIONS_H

#include <nats/nats.h>

#include "kingcobra/kingcobra.h"

#define KCI_SERVERS_DEFAULT "nats://127.0.0.1:4222" /* when options name none */

/* Sets the servers, the token or user and password, TLS, the connection
 * name (NULL: nats.c's default), the connect timeout and the reconnect
 * policy from options. Bad options are KC_ERR_INVALID_ARGUMENT with the
 * reason in kc_last_error(). */
kc_err kci_nats_options_fill(natsOptions *nats_options, const kc_client_options *options,
                             const char *name);

#endif
