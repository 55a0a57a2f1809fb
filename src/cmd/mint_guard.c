/* mint_guard.c - who may mint through kcobrad (docs/ledger.md, "Who may
 * mint"; issue 15, finding 10).
 *
 * A ledger hosted by kcobrad mints for whoever publishes on kc.ledger.mint,
 * and the ledger cannot tell who that is: only the broker knows the
 * login. So kcobrad keeps the subject to the users the ledger block names,
 * `ledger { operators: ["admin"] }`, through the broker's permissions
 * (src/broker/reserve.h): every other login, and every client of a server
 * without users, gets -ERR 'Permissions Violation for Publish to
 * "kc.ledger.mint"'. `mint_open: true` lets every client mint, as before,
 * and kcobrad warns about it at start; `mint: false` (another ledger
 * mints) leaves the subject alone. Applied at every load and reload of the
 * options, so a reload that changes the operators takes effect with the
 * other permissions. A ledger run as `kcobra ledger serve` is not guarded
 * by this: give kc.ledger.mint to the operators in the server's
 * permissions. */
#include <stdio.h>
#include <string.h>

#include "broker/auth.h"
#include "broker/reserve.h"
#include "common/log.h"
#include "components.h"

#define MINT_SUBJECT "kc.ledger.mint"

static bool guarded(const kci_ledger_settings *ledger)
{
    return ledger->enabled && ledger->mint && !ledger->mint_open;
}

kc_err kci_components_mint_guard(kci_options *options, const kci_ledger_settings *ledger)
{
    if (!guarded(ledger)) return KC_OK;
    return kci_options_reserve_publish(options, MINT_SUBJECT, ledger->operators.items,
                                       ledger->operators.count);
}

static bool user_exists(const kci_options *options, const char *name)
{
    for (size_t i = 0; i < options->user_count; i++)
        if (strcmp(options->users[i].user, name) == 0) return true;
    return false;
}

void kci_components_mint_guard_log(const kci_ledger_settings *ledger, const kci_options *options)
{
    if (!ledger->mint) return;
    if (ledger->mint_open) {
        kci_warn("ledger: any client can mint (ledger { mint_open: true }): restrict %s to "
                 "operators (ledger { operators: [...] } with users) unless this is a test",
                 MINT_SUBJECT);
        return;
    }
    if (ledger->operators.count == 0 || !kci_auth_required(options)) {
        kci_info("ledger: minting is closed: %s is refused to every client (name operator users "
                 "in ledger { operators: [...] }, or open it with mint_open: true)",
                 MINT_SUBJECT);
        if (ledger->operators.count > 0)
            kci_warn("ledger: operators are named but no users are configured: nobody can log "
                     "in as one");
        return;
    }
    for (size_t i = 0; i < ledger->operators.count; i++) {
        if (user_exists(options, ledger->operators.items[i]))
            kci_info("ledger: %s may mint", ledger->operators.items[i]);
        else
            kci_warn("ledger: operator \"%s\" is not a configured user",
                     ledger->operators.items[i]);
    }
}
