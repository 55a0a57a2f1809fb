/* config.h - the suggestion keeper's settings (docs/ingress.md): the
 * `suggestions { }` block of kcobrad's config and `kcobra keeper serve`'s
 * flags, from one table (src/common/config_keys.h). */
#ifndef KCI_KEEPER_CONFIG_H
#define KCI_KEEPER_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

#include "common/config_keys.h"

typedef struct kci_keeper_config {
    bool enabled; /* kcobrad runs it (file only); default true */
    char *file;   /* the JSON-lines file; default <data_dir>/suggestions.jsonl */
    /* who may change a suggestion's status; kcobrad keeps each one's
     * kc.suggest.change.<user> to that user (src/cmd/keeper_guard.c) */
    kci_config_strings operators;
} kci_keeper_config;

const kci_config_key *kci_keeper_config_keys(size_t *count);
/* The defaults; KC_ERR_NOMEM. */
kc_err kci_keeper_config_init(kci_keeper_config *config, const char *data_dir);
/* Cross-key checks after the file or the flags. */
kc_err kci_keeper_config_check(const kci_keeper_config *config, char *error, size_t error_size);
void kci_keeper_config_free(kci_keeper_config *config);

#endif
