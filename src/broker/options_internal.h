/* options_internal.h - the helpers options.c (defaults, config keys,
 * validation) shares with options_flags.c (the command line, load and
 * reload). Only those two files include it; everyone else uses options.h. */
#ifndef KCI_OPTIONS_INTERNAL_H
#define KCI_OPTIONS_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/config_keys.h"
#include "kingcobra/err.h"
#include "options.h"

#define KCI_OPTIONS_DEFAULT_HOST "0.0.0.0"

/* Frees count users and the array itself. */
void kci_options_users_free(kci_user *users, size_t count);
/* Writes the message into error (if error_size > 0); returns KC_ERR_CONFIG. */
__attribute__((format(printf, 3, 4))) kc_err kci_options_plain_error(char *error, size_t error_size,
                                                                     const char *format, ...);

#endif
