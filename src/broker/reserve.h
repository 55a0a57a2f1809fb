/* reserve.h - a publish subject reserved to some users (docs/config.md).
 *
 * kcobrad keeps kc.ledger.mint to the operators its hosted ledger names
 * (ledger { operators }, docs/ledger.md, "Who may mint"): every other
 * login, and every client of a server without users, is refused the
 * publish as by a deny entry of its permissions (-ERR 'Permissions
 * Violation for Publish to ...'). The reservation is applied to the
 * options after each load and reload, so it holds with the permissions the
 * configuration gives and a reload re-checks it with the rest. */
#ifndef KCI_BROKER_RESERVE_H
#define KCI_BROKER_RESERVE_H

#include <stddef.h>

#include "kingcobra/err.h"
#include "options.h"

/* Denies publishing on subject to every user but those named in users
 * (their permissions are unchanged: their own, else a copy of the
 * defaults, else all), and to clients without a user (the defaults).
 * KC_ERR_NOMEM leaves options partly changed: free them. */
kc_err kci_options_reserve_publish(kci_options *options, const char *subject, char *const *users,
                                   size_t user_count);

#endif
