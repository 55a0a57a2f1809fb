/* conf_tree.c - the config parser's tree: its values, and the places a
 * value can come from other than the text being read (conf.c reads that).
 *
 * Values: deep release, copy, size and depth of a tree, and lookup of a key
 * (case-insensitive, as nats-server). A $variable copies the value of a key
 * in an enclosing map, else parses the environment variable as a value
 * through a nested parser (nats-server's "pk=" trick), so "1MB" is an integer
 * there too. include parses another file relative to the including one and
 * merges its keys into the current map. Either way the tree that comes in is
 * checked against the nesting and memory bounds of the parser it joins, and
 * the chain of parent parsers is walked to refuse cycles ($A using $A, a file
 * including itself); KCI_CONF_VARIABLE_DEPTH_MAX and
 * KCI_CONF_INCLUDE_DEPTH_MAX bound the chain. Files are read in
 * READ_CHUNK_BYTES pieces and must be regular files (a FIFO could block);
 * the whole-text and whole-file entry points of conf.h are here too.
 *
 * Split from conf.c so that the state machine stays about bytes and frames;
 * the two share the parser struct through conf_internal.h. */
#include "conf.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "conf_internal.h"

enum {
    PATH_BYTES_MAX = 4096,
    READ_CHUNK_BYTES = 16 * 1024,
};

static kc_err parse_file_at(const char *path, const kci_conf_parser *parent, kci_conf_value **out,
                            char *error, size_t error_size);

/* ---------------------------------------------------------------- values */

void kci_conf_value_release(kci_conf_value *value)
{
    switch (value->kind) {
    case KCI_CONF_STRING: free(value->as.string); break;
    case KCI_CONF_MAP:
        for (size_t i = 0; i < value->as.map.count; i++) {
            free(value->as.map.entries[i].key);
            kci_conf_value_release(&value->as.map.entries[i].value);
        }
        free(value->as.map.entries);
        break;
    case KCI_CONF_ARRAY:
        for (size_t i = 0; i < value->as.array.count; i++)
            kci_conf_value_release(&value->as.array.items[i]);
        free(value->as.array.items);
        break;
    default: break; /* scalars own nothing; kind 0 is a zeroed slot */
    }
    memset(value, 0, sizeof *value);
}

/* Levels of maps and arrays in value: 0 for a scalar. Trees are bounded by
 * KCI_CONF_DEPTH_MAX, so the recursion is too. */
static size_t value_depth(const kci_conf_value *value)
{
    size_t deepest = 0;
    if (value->kind == KCI_CONF_MAP) {
        for (size_t i = 0; i < value->as.map.count; i++) {
            size_t depth = value_depth(&value->as.map.entries[i].value);
            if (depth > deepest) deepest = depth;
        }
        return deepest + 1;
    }
    if (value->kind == KCI_CONF_ARRAY) {
        for (size_t i = 0; i < value->as.array.count; i++) {
            size_t depth = value_depth(&value->as.array.items[i]);
            if (depth > deepest) deepest = depth;
        }
        return deepest + 1;
    }
    return 0;
}

/* The memory a tree holds, as counted against KCI_CONF_TREE_BYTES_MAX. */
static size_t value_bytes(const kci_conf_value *value)
{
    size_t bytes = sizeof *value;
    if (value->kind == KCI_CONF_STRING) bytes += strlen(value->as.string) + 1;
    if (value->kind == KCI_CONF_MAP) {
        for (size_t i = 0; i < value->as.map.count; i++) {
            const kci_conf_entry *entry = &value->as.map.entries[i];
            bytes += strlen(entry->key) + 1 + value_bytes(&entry->value);
        }
    }
    if (value->kind == KCI_CONF_ARRAY) {
        for (size_t i = 0; i < value->as.array.count; i++)
            bytes += value_bytes(&value->as.array.items[i]);
    }
    return bytes;
}

/* Deep copy. On failure (out of memory) returns false and leaves copy in a
 * state kci_conf_value_release() can free: unfilled slots are zero. */
static bool value_copy(const kci_conf_value *source, kci_conf_value *copy)
{
    *copy = *source;
    copy->referenced = false;
    if (source->kind == KCI_CONF_STRING) {
        copy->as.string = strdup(source->as.string);
        return copy->as.string != NULL;
    }
    if (source->kind == KCI_CONF_MAP) {
        size_t count = source->as.map.count;
        copy->as.map.entries = calloc(count > 0 ? count : 1, sizeof(kci_conf_entry));
        if (copy->as.map.entries == NULL) {
            copy->as.map.count = 0;
            return false;
        }
        for (size_t i = 0; i < count; i++) {
            kci_conf_entry *entry = &copy->as.map.entries[i];
            entry->key = strdup(source->as.map.entries[i].key);
            if (entry->key == NULL) return false;
            if (!value_copy(&source->as.map.entries[i].value, &entry->value)) return false;
        }
    }
    if (source->kind == KCI_CONF_ARRAY) {
        size_t count = source->as.array.count;
        copy->as.array.items = calloc(count > 0 ? count : 1, sizeof(kci_conf_value));
        if (copy->as.array.items == NULL) {
            copy->as.array.count = 0;
            return false;
        }
        for (size_t i = 0; i < count; i++)
            if (!value_copy(&source->as.array.items[i], &copy->as.array.items[i])) return false;
    }
    return true;
}

kci_conf_entry *kci_conf_map_find_entry(const kci_conf_value *map, const char *key)
{
    if (map == NULL || map->kind != KCI_CONF_MAP) return NULL;
    for (size_t i = 0; i < map->as.map.count; i++)
        if (strcasecmp(map->as.map.entries[i].key, key) == 0) return &map->as.map.entries[i];
    return NULL;
}

static kci_conf_value *map_find(const kci_conf_value *map, const char *key)
{
    kci_conf_entry *entry = kci_conf_map_find_entry(map, key);
    return entry != NULL ? &entry->value : NULL;
}
/* ------------------------------------------------ variables and includes */

/* Moves (or, when source is in the tree, copies) a whole tree into *out after
 * checking the depth and memory bounds it adds. */
static step_result adopt_tree(kci_conf_parser *parser, kci_conf_value *source, bool copy,
                              kci_conf_value *out)
{
    if (parser->depth + value_depth(source) > KCI_CONF_DEPTH_MAX)
        return kci_conf_fail(parser, KC_ERR_TOO_LARGE, "maps and arrays nest deeper than %d levels",
                             KCI_CONF_DEPTH_MAX);
    if (kci_conf_tree_account(parser, value_bytes(source)) == STEP_FAILED) return STEP_FAILED;
    if (!copy) {
        *out = *source;
        memset(source, 0, sizeof *source);
    } else if (!value_copy(source, out)) {
        kci_conf_value_release(out);
        return kci_conf_fail_no_memory(parser);
    }
    out->line = parser->token_line;
    return STEP_CONSUMED;
}

/* nats-server reads an environment variable as a value ("pk=" + text), so
 * "1MB" is an integer and "[a, b]" an array; that value may use variables
 * too, so the chain of parsers is checked for a cycle, and bounded. */
static step_result resolve_environment(kci_conf_parser *parser, const char *name,
                                       kci_conf_value *out)
{
    const char *text = getenv(name);
    if (text == NULL)
        return kci_conf_fail(
            parser, KC_ERR_PARSE,
            "variable '$%.64s' is not defined (neither a key above nor in the environment)", name);
    for (const kci_conf_parser *above = parser; above != NULL; above = above->parent)
        if (above->variable_name != NULL && strcmp(above->variable_name, name) == 0)
            return kci_conf_fail(parser, KC_ERR_PARSE, "variable '$%.64s' refers to itself", name);
    if (parser->variable_depth == KCI_CONF_VARIABLE_DEPTH_MAX)
        return kci_conf_fail(parser, KC_ERR_PARSE, "variables nest deeper than %d",
                             KCI_CONF_VARIABLE_DEPTH_MAX);
    kci_conf_parser *nested = NULL;
    if (kci_conf_parser_create(&nested, NULL) != KC_OK) return kci_conf_fail_no_memory(parser);
    nested->parent = parser;
    nested->variable_name = name;
    nested->variable_depth = parser->variable_depth + 1;
    kci_conf_value *tree = NULL;
    kc_err err = kci_conf_parser_feed(nested, "pk=", 3);
    if (err == KC_OK) err = kci_conf_parser_feed(nested, text, strlen(text));
    if (err == KC_OK) err = kci_conf_parser_finish(nested, &tree);
    step_result result;
    if (err != KC_OK)
        result = kci_conf_fail(parser, err, "environment variable '%.64s' is not a value: %s", name,
                               nested->error);
    else if (map_find(tree, "pk") == NULL) /* e.g. the text itself set PK */
        result = kci_conf_fail(parser, KC_ERR_PARSE, "environment variable '%.64s' is not a value",
                               name);
    else
        result = adopt_tree(parser, map_find(tree, "pk"), false, out);
    kci_conf_free(tree);
    kci_conf_parser_destroy(nested);
    return result;
}

/* $name: the nearest enclosing map's key "name" (already parsed), else the
 * environment. Like nats-server, "$2a$..." (a bcrypt hash) is a string. */
step_result kci_conf_resolve_variable(kci_conf_parser *parser, const char *name,
                                      kci_conf_value *out)
{
    if (name[0] == '\0')
        return kci_conf_fail(parser, KC_ERR_PARSE, "'$' must be followed by a name");
    for (size_t level = parser->depth; level-- > 0;) {
        kci_conf_value *found = map_find(&parser->frames[level].value, name);
        if (found == NULL) continue;
        found->referenced = true;
        return adopt_tree(parser, found, true, out);
    }
    return resolve_environment(parser, name, out);
}

static step_result include_merge(kci_conf_parser *parser, conf_frame *frame, kci_conf_value *tree)
{
    if (parser->depth - 1 + value_depth(tree) > KCI_CONF_DEPTH_MAX)
        return kci_conf_fail(parser, KC_ERR_TOO_LARGE, "maps and arrays nest deeper than %d levels",
                             KCI_CONF_DEPTH_MAX);
    if (kci_conf_tree_account(parser, value_bytes(tree)) == STEP_FAILED) return STEP_FAILED;
    for (size_t i = 0; i < tree->as.map.count; i++) {
        kci_conf_entry *entry = &tree->as.map.entries[i];
        char *key = entry->key;
        entry->key = NULL;
        kci_conf_value value = entry->value;
        memset(&entry->value, 0, sizeof entry->value);
        if (kci_conf_map_put(parser, frame, key, &value) == STEP_FAILED) return STEP_FAILED;
    }
    return STEP_CONSUMED;
}

/* include "path": parses the file (relative to the including file) and puts
 * its keys into the current map, as nats-server does. */
step_result kci_conf_include_file(kci_conf_parser *parser, conf_frame *frame, kci_conf_value *path)
{
    step_result result;
    char full_path[PATH_BYTES_MAX];
    kci_conf_value *tree = NULL;
    char nested_error[KCI_CONF_ERROR_BYTES_MAX];
    if (path->kind != KCI_CONF_STRING || path->as.string[0] == '\0')
        result = kci_conf_fail(parser, KC_ERR_PARSE, "include needs a file name");
    else if (parser->base_dir == NULL)
        result = kci_conf_fail(parser, KC_ERR_PARSE, "include is only allowed in a config file");
    else if (parser->include_depth == KCI_CONF_INCLUDE_DEPTH_MAX)
        result = kci_conf_fail(parser, KC_ERR_TOO_LARGE, "includes nest deeper than %d",
                               KCI_CONF_INCLUDE_DEPTH_MAX);
    else if ((size_t)snprintf(full_path, sizeof full_path, "%s%s%s",
                              path->as.string[0] == '/' ? "" : parser->base_dir,
                              path->as.string[0] == '/' ? "" : "/",
                              path->as.string) >= sizeof full_path)
        result = kci_conf_fail(parser, KC_ERR_TOO_LARGE, "include path is too long");
    else {
        kc_err err = parse_file_at(full_path, parser, &tree, nested_error, sizeof nested_error);
        if (err != KC_OK)
            result = kci_conf_fail(parser, err, "in included file: %s", nested_error);
        else
            result = include_merge(parser, frame, tree);
    }
    kci_conf_free(tree);
    kci_conf_value_release(path);
    return result;
}

/* ------------------------------------------------- whole texts and files */

static void copy_error(char *error, size_t error_size, const char *message)
{
    if (error_size > 0) snprintf(error, error_size, "%s", message);
}

kc_err kci_conf_parse(const char *text, size_t text_len, kci_conf_value **out, char *error,
                      size_t error_size)
{
    assert(out != NULL);
    *out = NULL;
    kci_conf_parser *parser = NULL;
    if (kci_conf_parser_create(&parser, NULL) != KC_OK) {
        copy_error(error, error_size, "out of memory");
        return KC_ERR_NOMEM;
    }
    kc_err err = kci_conf_parser_feed(parser, text_len > 0 ? text : "", text_len);
    if (err == KC_OK) err = kci_conf_parser_finish(parser, out);
    if (err != KC_OK) copy_error(error, error_size, parser->error);
    kci_conf_parser_destroy(parser);
    return err;
}

/* The directory part of path, for relative includes. */
static char *directory_of(const char *path)
{
    const char *slash = strrchr(path, '/');
    if (slash == NULL) return strdup(".");
    if (slash == path) return strdup("/");
    return strndup(path, (size_t)(slash - path));
}

static kc_err feed_from_fd(kci_conf_parser *parser, int fd, const char *path)
{
    char chunk[READ_CHUNK_BYTES];
    for (;;) { /* bounded: the parser refuses more than KCI_CONF_BYTES_MAX */
        ssize_t got = read(fd, chunk, sizeof chunk);
        if (got < 0 && errno == EINTR) continue;
        if (got < 0) {
            snprintf(parser->error, sizeof parser->error, "%s: cannot read: %s", path,
                     strerror(errno));
            parser->state = STATE_FAILED;
            return parser->error_code = KC_ERR_IO;
        }
        if (got == 0) return KC_OK;
        kc_err err = kci_conf_parser_feed(parser, chunk, (size_t)got);
        if (err != KC_OK) return err;
    }
}

static bool file_is_open_above(const kci_conf_parser *parent, const struct stat *status)
{
    for (const kci_conf_parser *above = parent; above != NULL; above = above->parent)
        if (above->has_source_file && above->source_device == status->st_dev &&
            above->source_inode == status->st_ino)
            return true;
    return false;
}

/* Opens and checks the file: a regular file (a FIFO or a device could block
 * or never end) that is not already being read by an including parser. */
static int open_config_file(const char *path, const kci_conf_parser *parent, struct stat *status,
                            char *error, size_t error_size)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0 || fstat(fd, status) != 0) {
        if (error_size > 0) snprintf(error, error_size, "%s: %s", path, strerror(errno));
        if (fd >= 0) close(fd);
        return -1;
    }
    const char *problem = NULL;
    if (!S_ISREG(status->st_mode))
        problem = "not a regular file";
    else if (file_is_open_above(parent, status))
        problem = "included by itself (an include cycle)";
    if (problem == NULL) return fd;
    if (error_size > 0) snprintf(error, error_size, "%s: %s", path, problem);
    close(fd);
    return -1;
}

static kc_err parse_file_at(const char *path, const kci_conf_parser *parent, kci_conf_value **out,
                            char *error, size_t error_size)
{
    *out = NULL;
    struct stat status;
    int fd = open_config_file(path, parent, &status, error, error_size);
    if (fd < 0) return KC_ERR_IO;
    char *directory = directory_of(path);
    kci_conf_parser *parser = NULL;
    kc_err err = directory != NULL ? kci_conf_parser_create(&parser, directory) : KC_ERR_NOMEM;
    free(directory);
    if (err == KC_OK && (parser->source_name = strdup(path)) == NULL) err = KC_ERR_NOMEM;
    if (err != KC_OK) {
        copy_error(error, error_size, "out of memory");
        kci_conf_parser_destroy(parser);
        close(fd);
        return err;
    }
    parser->parent = parent;
    parser->include_depth = parent != NULL ? parent->include_depth + 1 : 0;
    parser->has_source_file = true;
    parser->source_device = status.st_dev;
    parser->source_inode = status.st_ino;
    err = feed_from_fd(parser, fd, path);
    close(fd);
    if (err == KC_OK) err = kci_conf_parser_finish(parser, out);
    if (err != KC_OK) copy_error(error, error_size, parser->error);
    kci_conf_parser_destroy(parser);
    return err;
}

kc_err kci_conf_parse_file(const char *path, kci_conf_value **out, char *error, size_t error_size)
{
    assert(path != NULL && out != NULL);
    return parse_file_at(path, NULL, out, error, error_size);
}

void kci_conf_free(kci_conf_value *value)
{
    if (value == NULL) return;
    kci_conf_value_release(value);
    free(value);
}

const kci_conf_value *kci_conf_get(const kci_conf_value *map, const char *key)
{
    return map_find(map, key);
}
