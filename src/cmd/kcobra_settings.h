/* kcobra_settings.h - a part's settings as `kcobra <part> serve` flags.
 *
 * A part declares its settings once, as a table of keys
 * (src/common/config_keys.h); kcobrad reads them from the part's block of
 * its config file, and kcobra makes one flag of each key that has a help
 * line: --<key with dashes> (or the key's own flag name) taking the file's
 * syntax ("64MB", "5s", "a,b"), its help line ending in the default read
 * from the part's defaults. One place holds each default. */
#ifndef KCOBRA_SETTINGS_H
#define KCOBRA_SETTINGS_H

#include <stdbool.h>
#include <stddef.h>

#include "common/config_keys.h"
#include "kcobra_common.h"

enum {
    KCOBRA_SETTINGS_MAX = 24, /* keys of one part that are flags */
    KCOBRA_SETTING_NAME_BYTES = 40,
    KCOBRA_SETTING_HELP_BYTES = 256,
};

typedef struct kcobra_settings {
    const kci_config_key *keys;
    size_t key_count;
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
void kcobra_settings_flags(kcobra_settings *settings, const kci_config_key *keys, size_t key_count,
                           void *base, kcobra_flag *flags, int *flag_count, int flag_max);
/* After kcobra_parse: applies the flags that were given to base. A bad
 * value is a usage error naming the flag. */
int kcobra_settings_apply(const kcobra_command *command, kcobra_settings *settings);

/* kcobra_parse for a command whose flags are a part's settings plus its own
 * (extra): parses argv, then applies the settings flags given to base
 * (which holds the part's defaults). invocation->help: --help was shown. */
int kcobra_settings_parse(const kcobra_command *command, int argc, char **argv,
                          const kci_config_key *keys, size_t key_count, void *base,
                          const kcobra_flag *extra, int extra_count, kcobra_invocation *invocation);

#endif
