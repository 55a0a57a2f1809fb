/* config.c - the suggestion keeper's settings (config.h). */
#include "config.h"

#include "service/headers.h"
#include "suggestion_state.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FILE_NAME "suggestions.jsonl"

static const kci_config_key keys[] = {
    {.name = "enabled", .kind = KCI_KEY_BOOL, .offset = offsetof(kci_keeper_config, enabled)},
    {.name = "file",
     .kind = KCI_KEY_STRING,
     .offset = offsetof(kci_keeper_config, file),
     .value_name = "PATH",
     .help = "the JSON-lines file"},
    {.name = "operators",
     .kind = KCI_KEY_STRINGS,
     .offset = offsetof(kci_keeper_config, operators),
     .value_name = "USER",
     .help = "a user who may change a suggestion's status (repeatable)"},
};

const kci_config_key *kci_keeper_config_keys(size_t *count)
{
    *count = KCI_CONFIG_KEY_COUNT(keys);
    return keys;
}

kc_err kci_keeper_config_init(kci_keeper_config *config, const char *data_dir)
{
    memset(config, 0, sizeof *config);
    config->enabled = true;
    size_t size = strlen(data_dir) + sizeof "/" FILE_NAME;
    if ((config->file = malloc(size)) == NULL) return KC_ERR_NOMEM;
    snprintf(config->file, size, "%s/%s", data_dir, FILE_NAME);
    return KC_OK;
}

kc_err kci_keeper_config_check(const kci_keeper_config *config, char *error, size_t error_size)
{
    if (config->file == NULL || config->file[0] == '\0') {
        snprintf(error, error_size, "suggestions file is empty");
        return KC_ERR_CONFIG;
    }
    for (size_t i = 0; i < config->operators.count; i++)
        if (strlen(config->operators.items[i]) > KCI_SUGGESTION_USER_BYTES_MAX ||
            !kci_token_valid(config->operators.items[i])) {
            snprintf(error, error_size, "suggestions operator \"%s\" is not one subject token",
                     config->operators.items[i]);
            return KC_ERR_CONFIG;
        }
    return KC_OK;
}

void kci_keeper_config_free(kci_keeper_config *config)
{
    kci_config_free_fields(keys, KCI_CONFIG_KEY_COUNT(keys), config);
}
