/* config.h - the EventNet recorder's settings (docs/eventnet.md): the
 * `eventnet { }` block of kcobrad's config and `kcobra eventnet serve`'s
 * flags, from one table (src/common/config_keys.h). Off by default. */
#ifndef KCI_EVENTNET_CONFIG_H
#define KCI_EVENTNET_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/config_keys.h"

enum { KCI_EVENTNET_EVENTS_MAX_DEFAULT = 1000000 };
#define KCI_EVENTNET_EVENTS_MAX_LIMIT ((int64_t)100000000)

typedef struct kci_eventnet_config {
    bool enabled;       /* kcobrad runs it (file only); default false */
    char *directory;    /* the LMDB environment; default <data_dir>/eventnet */
    int64_t events_max; /* retention: the newest events kept; default 1,000,000 */
} kci_eventnet_config;

const kci_config_key *kci_eventnet_config_keys(size_t *count);
/* The defaults; KC_ERR_NOMEM. */
kc_err kci_eventnet_config_init(kci_eventnet_config *config, const char *data_dir);
kc_err kci_eventnet_config_check(const kci_eventnet_config *config, char *error, size_t error_size);
void kci_eventnet_config_free(kci_eventnet_config *config);

#endif
