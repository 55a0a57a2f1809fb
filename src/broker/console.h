/* console.h - the web console on the monitoring port (docs/console.md):
 * its files at / and /console/..., its JSON endpoints /console/api/...,
 * and the port's optional basic auth. monitor.c routes here first.
 *
 * /console/api/broker is rendered from the broker's own state on its loop;
 * nodes, queue and ledger come from the feed (common/feed.h), which the
 * console's gatherer in kcobrad fills by asking the components. */
#ifndef KCI_CONSOLE_H
#define KCI_CONSOLE_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "http.h"
#include "options.h"
#include "server.h"

enum {
    KCI_CONSOLE_RATE_WINDOW_MS = 1000, /* rates are over at least this long */
};

/* The broker's counters at one moment, for rates. */
typedef struct kci_console_traffic {
    int64_t wall_ms;
    uint64_t connections, subscriptions;
    uint64_t in_msgs, out_msgs, in_bytes, out_bytes;
    uint64_t slow_consumers, total_connections;
} kci_console_traffic;

typedef struct kci_console {
    kci_console_traffic older, newer; /* newer.wall_ms 0: no sample yet */
    /* The last credentials that passed bcrypt, so a browser's polling
     * costs one bcrypt, not one a request (the loop waits on it). */
    char *verified_password;
    char *verified_against; /* the configured http_password they passed */
} kci_console;

/* The /console/api/broker document: now's counts, and rates per second
 * from before to now (0 when before is empty or not older). */
json_t *kci_console_broker_json(const kci_console_traffic *now, const kci_console_traffic *before);
/* True when the request may be answered: no http_user configured, or its
 * Authorization carries http_user and http_password. */
bool kci_console_authorized(kci_console *console, const kci_options *options,
                            const kci_http_request *request, const char *bytes);
/* Answers a console path (true); false leaves response alone. */
bool kci_console_answer(kci_console *console, const kci_server *server, const char *path,
                        size_t path_len, kci_http_response *response);
void kci_console_free(kci_console *console);

#endif
