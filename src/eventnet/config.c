/* config.c - the EventNet recorder's settings (config.h). */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DIRECTORY_NAME "eventnet"

static const kci_config_key keys[] = {
    {.name = "enabled", .kind = KCI_KEY_BOOL, .offset = offsetof(kci_eventnet_config, enabled)},
    {.name = "directory",
     .kind = KCI_KEY_STRING,
     .offset = offsetof(kci_eventnet_config, directory),
     .value_name = "DIR",
     .help = "the graph's LMDB directory"},
    {.name = "events_max",
     .kind = KCI_KEY_SIZE,
     .offset = offsetof(kci_eventnet_config, events_max),
     .minimum = 1,
     .maximum = KCI_EVENTNET_EVENTS_MAX_LIMIT,
     .value_name = "N",
     .help = "retention: the newest events kept (older ones are dropped)"},
};

const kci_config_key *kci_eventnet_config_keys(size_t *count)
{
    *count = KCI_CONFIG_KEY_COUNT(keys);
    return keys;
}

kc_err kci_eventnet_config_init(kci_eventnet_config *config, const char *data_dir)
{
    memset(config, 0, sizeof *config);
    config->enabled = false;
    config->events_max = KCI_EVENTNET_EVENTS_MAX_DEFAULT;
    size_t size = strlen(data_dir) + sizeof "/" DIRECTORY_NAME;
    if ((config->directory = malloc(size)) == NULL) return KC_ERR_NOMEM;
    snprintf(config->directory, size, "%s/%s", data_dir, DIRECTORY_NAME);
    return KC_OK;
}

kc_err kci_eventnet_config_check(const kci_eventnet_config *config, char *error, size_t error_size)
{
    if (config->directory == NULL || config->directory[0] == '\0') {
        snprintf(error, error_size, "eventnet directory is empty");
        return KC_ERR_CONFIG;
    }
    if (config->events_max < 1 || config->events_max > KCI_EVENTNET_EVENTS_MAX_LIMIT) {
        snprintf(error, error_size, "eventnet events_max is out of range");
        return KC_ERR_CONFIG;
    }
    return KC_OK;
}

void kci_eventnet_config_free(kci_eventnet_config *config)
{
    kci_config_free_fields(keys, KCI_CONFIG_KEY_COUNT(keys), config);
}
