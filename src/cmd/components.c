/* components.c - the host of kcobrad's built-in components (see
 * components.h). No component is wired in yet: the host starts none. */
#include "components.h"

#include <stdlib.h>
#include <string.h>

struct kci_components {
    int component_count;
};

void kci_components_config_from_options(kci_components_config *config,
                                        const kci_options *options)
{
    (void)options;
    memset(config, 0, sizeof *config);
}

void kci_components_config_free(kci_components_config *config)
{
    memset(config, 0, sizeof *config);
}

kc_err kci_components_start(kci_components **out, const kci_components_config *config,
                            kci_server *server, char *error, size_t error_size)
{
    (void)config;
    (void)server;
    (void)error;
    (void)error_size;
    *out = calloc(1, sizeof **out);
    return *out == NULL ? KC_ERR_NOMEM : KC_OK;
}

void kci_components_stop(kci_components *components)
{
    free(components);
}
