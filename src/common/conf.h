/* conf.h - parser for the configuration file format shared with
 * nats-server, so one file can configure either server.
 *
 * The grammar (a subset of nats-server's): a file is a map. Entries are
 *   key = value | key: value | key value | key { map }
 * separated by newlines, ';' or ','. Values: quoted strings ("..." with
 * escapes, '...' raw), bare strings, integers with optional size suffixes
 * (k/kb/m/mb/g/gb: see docs/config.md), floats, booleans
 * (true/false/yes/no/on/off), arrays [a, b] and maps { ... }. Comments start
 * with '#' or '//' and run to the end of the line. Keys are compared
 * case-insensitively; when a key repeats in one map the last value wins (the
 * tree holds each key once). A bare value "$name" is replaced by a copy of
 * the value of the key "name" in an enclosing map, else by the environment
 * variable parsed as a value; "include path" (files only) merges another
 * file into the current map. The parser is a byte state machine with bounded
 * depth (KCI_CONF_DEPTH_MAX) and input size (KCI_CONF_BYTES_MAX); it can be
 * fed in pieces of any size (kci_conf_parser_*). See docs/config.md. */
#ifndef KCI_CONF_H
#define KCI_CONF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kingcobra/err.h"

enum {
    KCI_CONF_DEPTH_MAX = 32,
    KCI_CONF_BYTES_MAX = 4 * 1024 * 1024,
    KCI_CONF_TOKEN_BYTES_MAX = 64 * 1024,       /* one key or scalar value */
    KCI_CONF_MAP_ENTRIES_MAX = 4096,            /* keys in one map */
    KCI_CONF_ARRAY_ITEMS_MAX = 64 * 1024,       /* items in one array */
    KCI_CONF_TREE_BYTES_MAX = 32 * 1024 * 1024, /* memory of one parsed tree */
    KCI_CONF_INCLUDE_DEPTH_MAX = 8,             /* include inside include ... */
    KCI_CONF_VARIABLE_DEPTH_MAX = 8,            /* $VAR whose value uses $VAR ... */
    KCI_CONF_ERROR_BYTES_MAX = 512,
};

typedef enum kci_conf_kind {
    KCI_CONF_STRING = 1,
    KCI_CONF_INTEGER = 2,
    KCI_CONF_FLOAT = 3,
    KCI_CONF_BOOL = 4,
    KCI_CONF_MAP = 5,
    KCI_CONF_ARRAY = 6,
} kci_conf_kind;

typedef struct kci_conf_entry kci_conf_entry;

typedef struct kci_conf_value {
    kci_conf_kind kind;
    uint32_t line;   /* 1-based line where the value starts, for messages */
    bool referenced; /* read through a $variable: nats-server does not call
                        such a key unknown, so neither does options.c */
    union {
        char *string; /* NUL-terminated, owned */
        int64_t integer;
        double real;
        bool boolean;
        struct {
            kci_conf_entry *entries;
            size_t count;
        } map;
        struct {
            struct kci_conf_value *items;
            size_t count;
        } array;
    } as;
} kci_conf_value;

struct kci_conf_entry {
    char *key; /* NUL-terminated, owned */
    kci_conf_value value;
};

/* Parses text into a tree (*out is a MAP). On error, writes a message with
 * the line and column into error (if error_size > 0) and returns
 * KC_ERR_PARSE or KC_ERR_TOO_LARGE or KC_ERR_NOMEM. */
kc_err kci_conf_parse(const char *text, size_t text_len, kci_conf_value **out, char *error,
                      size_t error_size);
/* Reads and parses a file (include allowed, relative to its directory);
 * errors name the file, and a file that cannot be read is KC_ERR_IO. */
kc_err kci_conf_parse_file(const char *path, kci_conf_value **out, char *error, size_t error_size);
void kci_conf_free(kci_conf_value *value);
/* Looks up key (case-insensitive) in a MAP; NULL if absent or not a map. */
const kci_conf_value *kci_conf_get(const kci_conf_value *map, const char *key);

/* Reads an integer with an optional size suffix as the config file does
 * ("512", "64kb", "1MB", "2g"); KC_ERR_PARSE if it is not one,
 * KC_ERR_TOO_LARGE if it does not fit in int64_t. */
kc_err kci_conf_parse_size(const char *text, size_t text_len, int64_t *out);

/* The resumable parser behind kci_conf_parse: feed it the text in pieces of
 * any size, then finish. base_dir is where relative include paths start; NULL
 * forbids include. After an error every call returns that error again and
 * kci_conf_parser_error() holds the message. */
typedef struct kci_conf_parser kci_conf_parser;
kc_err kci_conf_parser_create(kci_conf_parser **out, const char *base_dir);
kc_err kci_conf_parser_feed(kci_conf_parser *parser, const char *bytes, size_t bytes_len);
kc_err kci_conf_parser_finish(kci_conf_parser *parser, kci_conf_value **out);
const char *kci_conf_parser_error(const kci_conf_parser *parser);
/* The name of the current state ("KEY_START", "VALUE_BARE", ...), for tests. */
const char *kci_conf_parser_state(const kci_conf_parser *parser);
void kci_conf_parser_destroy(kci_conf_parser *parser);

#endif
