/* data_dir.h - where kcobrad's configuration and kept data are found, one
 * rule for kcobrad and for kcobra (docs/config.md, "Files and directories"):
 *
 * - The default configuration is KCI_DEFAULT_CONFIG
 *   (<sysconfdir>/kingcobra/kcobrad.conf, /etc/kingcobra/kcobrad.conf for a
 *   Debian install). Only a program run from the installed <bindir> reads it
 *   when no -c is given, and only if it exists: a kcobrad or kcobra run from
 *   a build tree never picks up an installed file behind its user's back.
 * - A relative data_dir in a configuration file is relative to that file's
 *   directory, never to the working directory; a relative --data_dir or
 *   --data-dir on the command line is relative to the working directory.
 * - Without a data_dir the installed kcobrad keeps its data in
 *   KCI_DATA_DIR_INSTALLED (/var/lib/kingcobra, kcobrad.service's
 *   StateDirectory); one run from a build tree in "data" in the working
 *   directory. (The key stays out of etc/kcobrad.conf, which nats-server
 *   also accepts.) */
#ifndef KCI_DATA_DIR_H
#define KCI_DATA_DIR_H

#include <stddef.h>

#include "kingcobra/err.h"

#define KCI_DEFAULT_CONFIG KC_SYSCONFDIR "/kingcobra/kcobrad.conf"
#define KCI_DATA_DIR_DEFAULT "data"
#define KCI_DATA_DIR_INSTALLED "/var/lib/kingcobra"

/* KCI_DATA_DIR_INSTALLED for the installed program, else KCI_DATA_DIR_DEFAULT. */
const char *kci_data_dir_default(void);

/* KCI_DEFAULT_CONFIG when this program is the installed one and the file
 * exists; NULL otherwise. */
const char *kci_default_config_path(void);

/* data_dir as a configuration file at config_path means it: a relative one
 * joined to the file's directory. Newly allocated; NULL when out of memory. */
char *kci_data_dir_resolve(const char *config_path, const char *data_dir);

/* The data directory a configuration file names (resolved as above), or
 * kci_data_dir_default() when it names none. *out newly allocated. */
kc_err kci_data_dir_from_config(const char *config_path, char **out, char *error,
                                size_t error_size);

#endif
