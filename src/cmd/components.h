/* components.h - the built-in components kcobrad runs beside its broker:
 * the suggestion keeper, the persister, the seed-format ingress, the ledger
 * and the arbiter. Each is an ordinary client of the broker, logged in as
 * its role (broker/roles.h), so the same code runs as a separate process
 * against any NATS-protocol server. */
#ifndef KCI_COMPONENTS_H
#define KCI_COMPONENTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "arbiter/config.h"
#include "broker/options.h"
#include "broker/server.h"
#include "eventnet/config.h"
#include "ingress/config.h"
#include "keeper/config.h"
#include "kingcobra/err.h"
#include "ledger/config.h"
#include "queue/config.h"

typedef struct kci_components kci_components;

/* What the components need from the options, copied before the server
 * takes ownership of them. */
typedef struct kci_components_config {
    char *node;                       /* Kc-Node of the components; default: server name or host */
    kci_keeper_config keeper;         /* suggestions { } (src/keeper/config.h) */
    kci_ingress_settings ingress;     /* ingress { } (src/ingress/config.h) */
    kci_ledger_settings ledger;       /* ledger { } (src/ledger/config.h) */
    kci_persister_settings persister; /* persister { } (src/queue/config.h) */
    kci_arbiter_settings arbiter;     /* arbiter { } (src/arbiter/config.h) */
    kci_eventnet_config eventnet;     /* eventnet { } (src/eventnet/config.h) */
} kci_components_config;

/* Each part's defaults, then its block of the config file (read with its
 * own key table), then checks; KC_ERR_CONFIG with the reason in error. */
kc_err kci_components_config_load(kci_components_config *config, const kci_options *options,
                                  char *error, size_t error_size);
/* The same, only to check (kci_options_set_part_check). */
kc_err kci_components_check(const kci_options *options, char *error, size_t error_size);
void kci_components_config_free(kci_components_config *config);
/* What the parts' blocks change in the broker's options, at every load and
 * reload (kci_options_set_part_adjust): the mint guard below, the
 * ingress user's permissions for kcobrad's ingress (ingress { user }), and
 * the keeper's guard of the operators' change subjects. */
kc_err kci_components_adjust(kci_options *options, char *error, size_t error_size);
/* With the ledger hosted, keeps kc.ledger.mint to its operators unless
 * mint_open (mint_guard.c). */
kc_err kci_components_mint_guard(kci_options *options, const kci_ledger_settings *ledger);
/* What the mint guard says at start: who may mint, and warnings. */
void kci_components_mint_guard_log(const kci_ledger_settings *ledger, const kci_options *options);
/* With the keeper hosted, keeps each operator's kc.suggest.change.<user>
 * to that user (keeper_guard.c; called by kci_components_adjust). */
kc_err kci_components_keeper_guard(kci_options *options, char *error, size_t error_size);
/* Who may change a suggestion's status, said at the keeper's start. */
void kci_components_keeper_guard_log(const kci_keeper_config *keeper, const kci_options *options);
/* Starts the enabled components against the running server (its bound
 * port, TLS, and internal credentials). */
kc_err kci_components_start(kci_components **out, const kci_components_config *config,
                            kci_server *server, char *error, size_t error_size);
/* After kcobrad reloaded its options (kci_server_reload_wait): each part
 * whose settings changed is stopped and started again with them, started,
 * or stopped; the others go on untouched. running is updated. Says in the
 * log what it did and what needs a restart. */
void kci_components_reload(kci_components *components, kci_components_config *running,
                           const kci_options *options, const kci_server *server);
/* Drains and stops them (bounded); NULL is fine. */
void kci_components_stop(kci_components *components);

#endif
