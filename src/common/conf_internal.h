/* conf_internal.h - what the two halves of the config parser share, and
 * nothing else: conf.c (the byte state machine that turns text into a tree)
 * and conf_tree.c (the tree's values, $variables, include and file reading).
 *
 * The parser struct is here, not in conf.c, because a $variable or an
 * include is resolved in conf_tree.c against the parser's open frames and
 * its chain of parent parsers (to find cycles and bound nesting). Only those
 * two files include this header; everyone else uses conf.h. */
#ifndef KCI_CONF_INTERNAL_H
#define KCI_CONF_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "conf.h"
#include "kingcobra/err.h"

enum {
    LAST_KEY_BYTES_MAX = 64,
};

typedef enum conf_state {
    STATE_KEY_START,        /* before a key, a '}' or the end */
    STATE_KEY_BARE,         /* inside an unquoted key */
    STATE_KEY_QUOTED,       /* inside a quoted key */
    STATE_KEY_END,          /* after a key: ':' or '=' or the value */
    STATE_VALUE_START,      /* before a value */
    STATE_VALUE_BARE,       /* inside an unquoted value */
    STATE_VALUE_QUOTED,     /* inside "..." */
    STATE_VALUE_RAW,        /* inside '...' */
    STATE_ESCAPE,           /* after '\' */
    STATE_ESCAPE_HEX_HIGH,  /* after '\x' */
    STATE_ESCAPE_HEX_LOW,   /* after '\x' and one hex digit */
    STATE_VALUE_END,        /* after a map value: new line , ; } or comment */
    STATE_ARRAY_ITEM_START, /* after '[' or ',' */
    STATE_ARRAY_ITEM_END,   /* after an array item: , ] new line or comment */
    STATE_COMMENT,          /* after '#' or '//', up to the end of the line */
    STATE_COMMENT_SLASH,    /* after a '/' that must be followed by '/' */
    STATE_ROOT_END,         /* after the '}' closing a braced file */
    STATE_DONE,
    STATE_FAILED,
} conf_state;

typedef enum step_result {
    STEP_CONSUMED, /* the byte is used up */
    STEP_REPEAT,   /* hand the same byte to the new state */
    STEP_FAILED,   /* parser->error holds the message */
} step_result;

typedef struct conf_frame {
    kci_conf_value value; /* the MAP or ARRAY being filled */
    size_t capacity;      /* entries or items allocated */
    char *key;            /* MAP: the key waiting for its value */
    bool key_is_include;  /* MAP: the "include" directive; the value is a path */
    bool braced;          /* root only: the whole text is wrapped in { } */
} conf_frame;

struct kci_conf_parser {
    conf_state state;
    conf_state return_state; /* where COMMENT and ESCAPE go back to */
    char quote;              /* KEY_QUOTED: '"' or '\'' */
    int escape_high;         /* ESCAPE_HEX_LOW: value of the first digit */
    bool finished;
    conf_frame frames[KCI_CONF_DEPTH_MAX];
    size_t depth; /* frames in use; frames[0] is the root map */
    char *token;  /* always has room for a NUL after token_len bytes */
    size_t token_len;
    size_t token_capacity;
    bool token_escaped; /* a bare token with an escape is always a string */
    uint32_t token_line;
    uint32_t token_column;
    uint32_t line; /* of the byte being handled */
    uint32_t column;
    size_t bytes_seen;
    size_t tree_bytes;
    char *base_dir;    /* NULL: include is refused */
    char *source_name; /* the file, for messages; NULL for text */
    bool has_source_file;
    dev_t source_device; /* the file, to find include cycles */
    ino_t source_inode;
    const kci_conf_parser *parent; /* whose include or $variable this reads */
    const char *variable_name;     /* the environment variable this reads */
    unsigned include_depth;
    unsigned variable_depth;
    kc_err error_code; /* KC_OK until the first error */
    char last_key[LAST_KEY_BYTES_MAX];
    char error[KCI_CONF_ERROR_BYTES_MAX];
};

/* ------------------------------------------------------ from conf.c */

/* Fails the parser: the message, prefixed with the file, line and column,
 * goes to parser->error; the state becomes FAILED. Returns STEP_FAILED. */
__attribute__((format(printf, 3, 4))) step_result
kci_conf_fail(kci_conf_parser *parser, kc_err code, const char *format, ...);
step_result kci_conf_fail_no_memory(kci_conf_parser *parser);
/* Counts bytes of the tree against KCI_CONF_TREE_BYTES_MAX. */
step_result kci_conf_tree_account(kci_conf_parser *parser, size_t bytes);
/* Puts key and value (ownership moves, also on failure) into the MAP frame;
 * a key already there gets the new value, as in nats-server. */
step_result kci_conf_map_put(kci_conf_parser *parser, conf_frame *frame, char *key,
                             kci_conf_value *value);

/* -------------------------------------------------- from conf_tree.c */

/* Frees what value owns and zeroes it (a zeroed value is released again
 * harmlessly). */
void kci_conf_value_release(kci_conf_value *value);
kci_conf_entry *kci_conf_map_find_entry(const kci_conf_value *map, const char *key);
/* $name (name without the '$'): a copy of an enclosing map's key, else the
 * environment variable read as a value, into *out. */
step_result kci_conf_resolve_variable(kci_conf_parser *parser, const char *name,
                                      kci_conf_value *out);
/* include "path": merges the file's keys into frame; releases path. */
step_result kci_conf_include_file(kci_conf_parser *parser, conf_frame *frame, kci_conf_value *path);

#endif
