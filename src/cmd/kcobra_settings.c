/* kcobra_settings.c - a part's settings as flags (kcobra_settings.h). */
#include "kcobra_settings.h"

#include <assert.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "common/metrics_http.h"

/* One flag per key that has a help line, and what the command line gave it. */
enum {
    KCOBRA_SETTINGS_MAX = 24, /* keys of one part that are flags */
    KCOBRA_SETTING_NAME_BYTES = 40,
    KCOBRA_SETTING_HELP_BYTES = 256,
};

typedef struct kcobra_settings {
    void *base; /* the part's config, filled with its defaults */
    int count;  /* flags made */
    const kci_config_key *flag_keys[KCOBRA_SETTINGS_MAX];
    char names[KCOBRA_SETTINGS_MAX][KCOBRA_SETTING_NAME_BYTES];
    char helps[KCOBRA_SETTINGS_MAX][KCOBRA_SETTING_HELP_BYTES];
    const char *texts[KCOBRA_SETTINGS_MAX]; /* a value flag's text, NULL if not given */
    bool given[KCOBRA_SETTINGS_MAX];        /* a bool flag given */
    kcobra_list lists[KCOBRA_SETTINGS_MAX]; /* a list's values, the flag repeated */
} kcobra_settings;

/* Appends the flags of keys to flags (from index *flag_count, at most
 * flag_max in all); base holds the defaults shown in the help. */
static void settings_flags(kcobra_settings *settings, const kci_config_key *keys, size_t key_count,
                           void *base, kcobra_flag *flags, int *flag_count, int flag_max)
{
    memset(settings, 0, sizeof *settings);
    settings->base = base;
    for (size_t k = 0; k < key_count; k++) {
        const kci_config_key *key = &keys[k];
        if (key->help == NULL) continue; /* file only */
        assert(settings->count < KCOBRA_SETTINGS_MAX && *flag_count < flag_max);
        int index = settings->count++;
        settings->flag_keys[index] = key;
        char *name = settings->names[index];
        snprintf(name, KCOBRA_SETTING_NAME_BYTES, "%s", key->flag != NULL ? key->flag : key->name);
        for (char *c = name; *c != '\0'; c++)
            if (*c == '_') *c = '-';
        bool is_bool = key->kind == KCI_KEY_BOOL, is_list = key->kind == KCI_KEY_STRINGS;
        char value[KCI_CONFIG_VALUE_TEXT_BYTES];
        kci_config_format_value(key, base, value, sizeof value);
        if (is_bool || value[0] == '\0')
            snprintf(settings->helps[index], KCOBRA_SETTING_HELP_BYTES, "%s", key->help);
        else
            snprintf(settings->helps[index], KCOBRA_SETTING_HELP_BYTES, "%s (default %s)",
                     key->help, value);
        flags[(*flag_count)++] = (kcobra_flag){
            .name = name,
            .value_name = is_bool                   ? NULL
                          : key->value_name != NULL ? key->value_name
                                                    : "VALUE",
            .kind = is_bool   ? KCOBRA_FLAG_BOOL
                    : is_list ? KCOBRA_FLAG_LIST
                              : KCOBRA_FLAG_STRING,
            .target = is_bool   ? (void *)&settings->given[index]
                      : is_list ? (void *)&settings->lists[index]
                                : (void *)&settings->texts[index],
            .help = settings->helps[index],
        };
    }
}

/* The part of a config error after "flags: " and the quoted key name. */
static const char *reason(const char *error, const char *key_name)
{
    const char *text = strncmp(error, "flags: ", 7) == 0 ? error + 7 : error;
    size_t length = strlen(key_name);
    if (text[0] == '\'' && strncmp(text + 1, key_name, length) == 0 && text[length + 1] == '\'')
        text += length + 2;
    while (*text == ':' || *text == ' ')
        text++;
    return text;
}

/* After kcobra_parse: applies the flags that were given to base. A bad
 * value is a usage error naming the flag. */
static int settings_apply(const kcobra_command *command, kcobra_settings *settings)
{
    char error[KCI_CONFIG_MESSAGE_BYTES_MAX] = "";
    kci_config_context context = {.source = "flags", .error = error, .error_size = sizeof error};
    for (int index = 0; index < settings->count; index++) {
        const kci_config_key *key = settings->flag_keys[index];
        const char *text = settings->texts[index];
        kc_err err = KC_OK;
        if (key->kind == KCI_KEY_STRINGS) {
            const kcobra_list *list = &settings->lists[index];
            if (list->count == 0) continue;
            err = kci_config_apply_texts(&context, key, list->values, (size_t)list->count,
                                         settings->base);
            text = list->values[0];
        } else if (key->kind == KCI_KEY_BOOL) {
            if (!settings->given[index]) continue;
            text = key->flag_negates ? "false" : "true";
        } else if (text == NULL) {
            continue;
        }
        if (key->kind != KCI_KEY_STRINGS)
            err = kci_config_apply_text(&context, key, text, settings->base);
        if (err == KC_ERR_NOMEM) {
            kcobra_error("out of memory");
            return KCOBRA_EXIT_FAILURE;
        }
        if (err != KC_OK) /* error is "flags: '<key>' <why>": say it as a flag */
            return kcobra_usage_error(command, "--%s '%s' is not %s (%s)", settings->names[index],
                                      text, key->value_name != NULL ? key->value_name : "valid",
                                      reason(error, key->name));
    }
    return KCOBRA_EXIT_OK;
}

/* --metrics-listen: every part that serves can show its metrics when run
 * alone, as kcobrad shows them on its monitoring port (docs/operations.md). */
static int metrics_listen(const kcobra_command *command, const char *listen)
{
    if (listen == NULL) return KCOBRA_EXIT_OK;
    char error[256] = "";
    kc_err err = kci_metrics_http_start(listen, NULL, error, sizeof error);
    if (err == KC_ERR_INVALID_ARGUMENT) return kcobra_usage_error(command, "%s", error);
    if (err == KC_OK) return KCOBRA_EXIT_OK;
    kcobra_error("%s", error[0] != '\0' ? error : kc_strerror(err));
    return KCOBRA_EXIT_FAILURE;
}

int kcobra_settings_parse(const kcobra_command *command, int argc, char **argv,
                          const kci_config_key *keys, size_t key_count, void *base,
                          const kcobra_flag *extra, int extra_count, kcobra_invocation *invocation)
{
    kcobra_flag flags[KCOBRA_COMMAND_FLAGS_MAX];
    int flag_count = 0;
    kcobra_settings table;
    settings_flags(&table, keys, key_count, base, flags, &flag_count,
                   KCOBRA_COMMAND_FLAGS_MAX - extra_count - 1);
    assert(extra_count >= 0 && flag_count + extra_count + 1 <= KCOBRA_COMMAND_FLAGS_MAX);
    if (extra_count > 0) memcpy(flags + flag_count, extra, sizeof *extra * (size_t)extra_count);
    const char *listen = NULL;
    flags[flag_count + extra_count] =
        (kcobra_flag){"metrics-listen", "HOST:PORT", KCOBRA_FLAG_STRING, &listen,
                      "serve: also serve /metrics (Prometheus) on HOST:PORT, or :PORT on "
                      "127.0.0.1 (default off)"};
    int status = kcobra_parse(command, flags, flag_count + extra_count + 1, argc, argv, invocation);
    if (status != KCOBRA_EXIT_OK || invocation->help) return status;
    status = settings_apply(command, &table);
    return status != KCOBRA_EXIT_OK ? status : metrics_listen(command, listen);
}
