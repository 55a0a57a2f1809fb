/* keeper_guard.c - who may change a suggestion's status through kcobrad
 * (docs/ingress.md, "Suggestion keeper"; issue 16, part 4).
 *
 * The keeper answers status changes on kc.suggest.change.<user> and takes
 * <user> as the operator who asks; only the broker knows the login, so
 * kcobrad keeps each operator's subject to that operator, the mechanism
 * the ledger's mint guard uses for kc.ledger.mint (src/broker/reserve.h):
 * for every user named in suggestions { operators: [...] },
 * kc.suggest.change.<user> is refused to every other login and to clients
 * without a user (-ERR 'Permissions Violation for Publish ...'). A
 * non-operator's own subject is not reserved, and the keeper refuses it
 * (403): it is not in the list. Applied at every load and reload of the
 * options. A keeper run as `kcobra keeper serve` is guarded by the server's
 * permissions instead: give kc.suggest.change.<user> to <user> alone. */
#include <stdio.h>
#include <string.h>

#include "broker/auth.h"
#include "broker/reserve.h"
#include "common/log.h"
#include "components.h"
#include "keeper/suggestions.h"

enum { SUBJECT_BYTES_MAX = 256 };

kc_err kci_components_keeper_guard(kci_options *options, char *error, size_t error_size)
{
    kci_components_config config;
    kc_err err = kci_components_config_load(&config, options, error, error_size);
    if (err != KC_OK) return err;
    for (size_t i = 0; err == KC_OK && config.keeper.enabled && i < config.keeper.operators.count;
         i++) {
        char subject[SUBJECT_BYTES_MAX];
        snprintf(subject, sizeof subject, "%s%s", KCI_SUGGEST_CHANGE_PREFIX,
                 config.keeper.operators.items[i]);
        err = kci_options_reserve_publish(options, subject, &config.keeper.operators.items[i], 1);
    }
    if (err == KC_ERR_NOMEM) snprintf(error, error_size, "out of memory");
    kci_components_config_free(&config);
    return err;
}

static bool user_exists(const kci_options *options, const char *name)
{
    for (size_t i = 0; i < options->user_count; i++)
        if (strcmp(options->users[i].user, name) == 0) return true;
    return false;
}

void kci_components_keeper_guard_log(const kci_keeper_config *keeper, const kci_options *options)
{
    if (keeper->operators.count == 0 || !kci_auth_required(options)) {
        kci_info("suggestions: nobody may change a suggestion's status (name operator users in "
                 "suggestions { operators: [...] })");
        if (keeper->operators.count > 0)
            kci_warn("suggestions: operators are named but no users are configured: nobody can "
                     "log in as one");
        return;
    }
    for (size_t i = 0; i < keeper->operators.count; i++) {
        if (user_exists(options, keeper->operators.items[i]))
            kci_info("suggestions: %s may change a suggestion's status",
                     keeper->operators.items[i]);
        else
            kci_warn("suggestions: operator \"%s\" is not a configured user",
                     keeper->operators.items[i]);
    }
}
