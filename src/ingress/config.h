/* config.h - the seed-format ingress's settings (docs/ingress.md): the
 * `ingress { }` block of kcobrad's config and `kcobra ingress serve`'s
 * flags, from one table (src/common/config_keys.h). */
#ifndef KCI_INGRESS_CONFIG_H
#define KCI_INGRESS_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/config_keys.h"
#include "ingress/ingress.h"

#define KCI_INGRESS_HOST_DEFAULT "127.0.0.1" /* the seed format has no authentication */

enum {
    KCI_INGRESS_PORT_DEFAULT = 4223,
    KCI_INGRESS_TIMEOUT_MS_DEFAULT = 5 * 1000,
};

typedef struct kci_ingress_settings {
    bool enabled;       /* kcobrad runs it (file only); default false */
    char *host;         /* listen address; default KCI_INGRESS_HOST_DEFAULT */
    int port;           /* default 4223; 0: any free port (logged) */
    char *type;         /* the request type of every line; default "default" */
    int64_t timeout_ms; /* per request; default 5 s */
    char *token;        /* the first line of a connection must be AUTH#<token>; NULL: none */
    char *cert_file;    /* with key_file: connections speak TLS (PEM files) */
    char *key_file;
    /* kcobrad only: the user whose permissions its ingress's requests have
     * (src/cmd/mint_guard.c hands them to the broker); NULL: the role's */
    char *user;
} kci_ingress_settings;

const kci_config_key *kci_ingress_settings_keys(size_t *count);
kc_err kci_ingress_settings_init(kci_ingress_settings *settings);
kc_err kci_ingress_settings_check(const kci_ingress_settings *settings, char *error,
                                  size_t error_size);
/* The settings as kci_ingress_start's parameters (pointers into settings). */
kci_ingress_config kci_ingress_settings_runtime(const kci_ingress_settings *settings);
/* The same settings (listen is a handler key, so the table alone cannot
 * tell: a reload compares with this). */
bool kci_ingress_settings_equal(const kci_ingress_settings *a, const kci_ingress_settings *b);
void kci_ingress_settings_free(kci_ingress_settings *settings);

#endif
