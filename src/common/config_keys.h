/* config_keys.h - settings declared once, as a table of keys, and read from
 * a config block or from command-line flags.
 *
 * Every part (the broker, the persister, the ledger, the arbiter, the
 * keeper, the ingress) declares its settings as a table of kci_config_key:
 * the key's name, what kind of value it takes, where it goes in the part's
 * config struct, its bounds and a help line. The same table then
 *   - reads the part's block of kcobrad's config file (kci_config_apply_map:
 *     an unknown key or a bad value is an error naming the file and line),
 *   - reads `kcobra <part> serve` flags (kci_config_apply_text: --name-with-
 *     dashes VALUE, the same value syntax as in the file),
 *   - prints the help of those flags with the defaults taken from the
 *     part's defaults (kci_config_format_value), and
 *   - tells whether two configs differ (kci_config_equal), so a reload knows
 *     which parts to restart.
 * One convention for "unset": there is none. A part's defaults function
 * fills every field with its real default, and the file or the flags
 * overwrite what they name.
 *
 * Values: strings; booleans; sizes (an integer, or a string with k, kb, m,
 * mb, g, gb: 1 to maximum); durations (seconds as a number, or a Go duration
 * string "500ms", "2m", "1h30m": more than zero, or zero where the key
 * says so, at most a day); ports; lists of strings; and handlers for
 * anything else. */
#ifndef KCI_CONFIG_KEYS_H
#define KCI_CONFIG_KEYS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/conf.h"
#include "kingcobra/err.h"

enum {
    KCI_CONFIG_DURATION_MS_MAX = 24 * 60 * 60 * 1000, /* one day; longer is a mistake */
    KCI_CONFIG_MESSAGE_BYTES_MAX = 512,
    KCI_CONFIG_LIST_MAX = 64, /* strings in a KCI_KEY_STRINGS list */
    KCI_CONFIG_VALUE_TEXT_BYTES = 64,
};

/* Where messages go: "<source>: line N: <what>". */
typedef struct kci_config_context {
    const char *source; /* the config file, "config", or "flags" */
    char *error;
    size_t error_size;
} kci_config_context;

typedef struct kci_config_key kci_config_key;
typedef kc_err (*kci_config_handler)(const kci_config_context *context, const kci_conf_entry *entry,
                                     void *field);

typedef enum kci_config_kind {
    KCI_KEY_STRING = 1,      /* char * at offset (owned, malloc'd) */
    KCI_KEY_BOOL = 2,        /* bool at offset */
    KCI_KEY_PORT = 3,        /* int at offset, -1 to 65535 */
    KCI_KEY_SIZE = 4,        /* int64_t at offset, minimum (at least 1) to maximum */
    KCI_KEY_DURATION_MS = 5, /* int64_t at offset, in ms */
    KCI_KEY_STRINGS = 6,     /* kci_config_strings at offset */
    KCI_KEY_HANDLER = 7,     /* handler(context, entry, base + offset) */
    KCI_KEY_IGNORED = 8,     /* a nats-server option kcobrad has no use for: warn */
    KCI_KEY_UNSUPPORTED = 9, /* a nats-server feature kcobrad lacks: error */
} kci_config_kind;

/* A list of strings (KCI_KEY_STRINGS): owned, each malloc'd. */
typedef struct kci_config_strings {
    char **items;
    size_t count;
} kci_config_strings;

struct kci_config_key {
    const char *name; /* in the file; as a flag, '_' becomes '-' */
    kci_config_kind kind;
    size_t offset;
    int64_t minimum;   /* KCI_KEY_SIZE (0 means 1) */
    int64_t maximum;   /* KCI_KEY_SIZE */
    bool zero_allowed; /* KCI_KEY_DURATION_MS: 0 is a value (e.g. "no retention") */
    kci_config_handler handler;
    const char *value_name; /* shown in flag help: "DIR", "SIZE" (NULL: a bool) */
    const char *help;       /* one line; NULL: not a flag (file only) */
    const char *flag;       /* the flag's name when it is not the key's with dashes */
    bool flag_negates;      /* KCI_KEY_BOOL: the flag sets false ("--no-mint") */
};

#define KCI_CONFIG_KEY_COUNT(keys) (sizeof(keys) / sizeof((keys)[0]))

/* ---- messages ------------------------------------------------------------ */

__attribute__((format(printf, 4, 5))) kc_err kci_config_error(const kci_config_context *context,
                                                              const kci_conf_value *value,
                                                              kc_err code, const char *format, ...);
kc_err kci_config_wrong_type(const kci_config_context *context, const char *key,
                             const kci_conf_value *value, const char *expected);

/* ---- values ------------------------------------------------------------ */

/* Go's time.ParseDuration, in milliseconds: "300ms", "1.5h", "2h45m". */
bool kci_config_parse_duration_ms(const char *text, double *out_ms);
kc_err kci_config_duration(const kci_config_context *context, const char *key,
                           const kci_conf_value *value, bool zero_allowed, int64_t *out_ms);
kc_err kci_config_size(const kci_config_context *context, const char *key,
                       const kci_conf_value *value, int64_t minimum, int64_t maximum, int64_t *out);
/* -1 to 65535: 0 and -1 both mean any free port, as in nats-server. */
bool kci_config_port_in_range(int64_t port);
kc_err kci_config_port(const kci_config_context *context, const char *key,
                       const kci_conf_value *value, int *out);
/* A port, or "host:port" ("[v6]:port", ":port" for any address); *host
 * (malloc'd, NULL for any address) is replaced. */
kc_err kci_config_listen(const kci_config_context *context, const char *key,
                         const kci_conf_value *value, char **host, int *port);
/* Replaces *slot with a copy of text (NULL clears it). */
kc_err kci_config_string_set(char **slot, const char *text);
void kci_config_strings_free(kci_config_strings *strings);

/* ---- tables ------------------------------------------------------------ */

/* Applies every entry of map (a KCI_CONF_MAP) by the keys; block names it
 * in messages ("" at the top level). An unknown key is an error, except
 * one only read through a $variable (as nats-server). */
kc_err kci_config_apply_map(const kci_config_context *context, const char *block,
                            const kci_conf_value *map, const kci_config_key *keys, size_t key_count,
                            void *base);
/* A flag's value (NULL for a bool flag given without one) applied by its
 * key, with the file's syntax for sizes and durations; not for a list. */
kc_err kci_config_apply_text(const kci_config_context *context, const kci_config_key *key,
                             const char *text, void *base);
/* A repeated flag's values as one list (KCI_KEY_STRINGS). */
kc_err kci_config_apply_texts(const kci_config_context *context, const kci_config_key *key,
                              const char *const *texts, size_t count, void *base);
/* The value of the key's field in base as the file would write it ("64MiB"
 * is written 67108864; durations as "5s" or "1500ms"; lists comma-joined). */
void kci_config_format_value(const kci_config_key *key, const void *base, char *out,
                             size_t out_size);
/* Every key's field equal in a and b (strings by content). */
bool kci_config_equal(const kci_config_key *keys, size_t key_count, const void *a, const void *b);
/* Frees the owned fields the keys name (strings, lists) and zeroes them. */
void kci_config_free_fields(const kci_config_key *keys, size_t key_count, void *base);

#endif
