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

#include <stddef.h>

#include "common/config_keys.h"
#include "kcobra_common.h"

/* kcobra_parse for a command whose flags are a part's settings plus its own
 * (extra): parses argv, then applies the settings flags given to base
 * (which holds the part's defaults). invocation->help: --help was shown. */
int kcobra_settings_parse(const kcobra_command *command, int argc, char **argv,
                          const kci_config_key *keys, size_t key_count, void *base,
                          const kcobra_flag *extra, int extra_count, kcobra_invocation *invocation);

#endif
