/* gather.h - the console's gatherer: a thread in kcobrad that asks the
 * components what the console shows (kc.arbiter.status, .verdicts, .tree,
 * kc.sys.queue.stats, kc.ledger.history and, less often, kc.ledger.audit)
 * through the broker's internal listener, as its own role's user
 * (broker/roles.h: KCI_ROLE_CONSOLE, allowed those requests and nothing
 * else), builds the documents (views.h) and puts them in the feed
 * (common/feed.h), where the monitoring port reads them. */
#ifndef KCI_CONSOLE_GATHER_H
#define KCI_CONSOLE_GATHER_H

#include <stddef.h>

#include "kingcobra/err.h"

enum {
    KCI_CONSOLE_GATHER_INTERVAL_MS = 2000,
    KCI_CONSOLE_WATCHED_MS = 60 * 1000,        /* gathers this long after the last question */
    KCI_CONSOLE_IDLE_CHECK_MS = 200,           /* unwatched: how often it looks again */
    KCI_CONSOLE_AUDIT_INTERVAL_MS = 30 * 1000, /* an audit checks every signature */
    KCI_CONSOLE_AUDIT_GAP_MIN_MS = 4 * 1000,   /* between two audits, at least */
    KCI_CONSOLE_WINDOW_MS = 60 * 1000,         /* the ledger's recent window */
    KCI_CONSOLE_CALL_TIMEOUT_MS = 1500,
    KCI_CONSOLE_AUDIT_TIMEOUT_MS = 10 * 1000,
    KCI_CONSOLE_HISTORY_EDGES_MAX = 50 * 1000, /* of the window, at most */
};

typedef struct kci_console_gatherer kci_console_gatherer;

/* Connects to url as user/password and starts the thread. */
kc_err kci_console_gather_start(kci_console_gatherer **out, const char *url, const char *user,
                                const char *password, char *error, size_t error_size);
/* Stops the thread (within one call's timeout) and disconnects; NULL is fine. */
void kci_console_gather_stop(kci_console_gatherer *gatherer);

#endif
