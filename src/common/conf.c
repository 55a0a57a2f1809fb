/* conf.c - the config file parser's state machine: text in, a tree of
 * values out (grammar in conf.h and docs/config.md). Where values come from
 * besides the text itself ($variables, include) and what can be done with a
 * finished tree live in conf_tree.c; this file only reads bytes.
 *
 * Design: the text goes through a state machine one byte at a time. State
 * names spell what is being matched (KEY_BARE: inside an unquoted key;
 * VALUE_QUOTED: inside "..."). A state's handler either consumes the byte or
 * hands it to the next state (STEP_REPEAT), so nothing ever looks ahead and
 * the text may arrive in pieces of any size; the end of input is handed over
 * as one more byte, CONF_EOF. Keys and scalar values collect in one scratch
 * token; the maps and arrays being filled sit on a fixed stack of frames, one
 * per nesting level, and a finished value is attached to the frame below it.
 * A repeated key replaces the earlier value, so the tree holds each key once.
 *
 * Limits (conf.h): input KCI_CONF_BYTES_MAX; nesting KCI_CONF_DEPTH_MAX, also
 * for trees brought in by $variables and include; one token
 * KCI_CONF_TOKEN_BYTES_MAX; entries per map; items per array; and the memory
 * of the whole tree, KCI_CONF_TREE_BYTES_MAX, so $variables that copy big
 * maps into each other cannot multiply without bound.
 *
 * Known differences from nats-server's parser (docs/config.md lists them
 * all): no "( ... )" block strings and no ISO 8601 datetimes (such a value
 * stays a string); a bare value that starts with a digit but is not a number
 * is a string, also with an unknown size suffix like 1kbb (nats-server drops
 * that value silently); a key without a value, a stray '}' and integer
 * overflow are errors; a key also ends at '{' or '['; NUL bytes are refused. */
#include "conf.h"

#include <assert.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "conf_internal.h"

enum {
    CONF_EOF = -1,
    STEP_REPEAT_MAX = 8, /* hand-offs of one byte between states */
    TOKEN_CAPACITY_MIN = 64,
};

static const char *const state_names[] = {
    [STATE_KEY_START] = "KEY_START",
    [STATE_KEY_BARE] = "KEY_BARE",
    [STATE_KEY_QUOTED] = "KEY_QUOTED",
    [STATE_KEY_END] = "KEY_END",
    [STATE_VALUE_START] = "VALUE_START",
    [STATE_VALUE_BARE] = "VALUE_BARE",
    [STATE_VALUE_QUOTED] = "VALUE_QUOTED",
    [STATE_VALUE_RAW] = "VALUE_RAW",
    [STATE_ESCAPE] = "ESCAPE",
    [STATE_ESCAPE_HEX_HIGH] = "ESCAPE_HEX_HIGH",
    [STATE_ESCAPE_HEX_LOW] = "ESCAPE_HEX_LOW",
    [STATE_VALUE_END] = "VALUE_END",
    [STATE_ARRAY_ITEM_START] = "ARRAY_ITEM_START",
    [STATE_ARRAY_ITEM_END] = "ARRAY_ITEM_END",
    [STATE_COMMENT] = "COMMENT",
    [STATE_COMMENT_SLASH] = "COMMENT_SLASH",
    [STATE_ROOT_END] = "ROOT_END",
    [STATE_DONE] = "DONE",
    [STATE_FAILED] = "FAILED",
};

/* ------------------------------------------------------------- reporting */

static void describe_byte(int byte, char *text, size_t text_size)
{
    if (byte == CONF_EOF)
        snprintf(text, text_size, "end of input");
    else if (byte == '\n' || byte == '\r')
        snprintf(text, text_size, "end of line");
    else if (byte > ' ' && byte < 0x7f)
        snprintf(text, text_size, "'%c'", byte);
    else if (byte == ' ' || byte == '\t')
        snprintf(text, text_size, "a blank");
    else
        snprintf(text, text_size, "byte 0x%02x", (unsigned)byte);
}

step_result kci_conf_fail(kci_conf_parser *parser, kc_err code, const char *format, ...)
{
    assert(code != KC_OK);
    size_t used = 0;
    int written;
    if (parser->variable_name != NULL) /* the parent names the place */
        written = 0;
    else if (parser->source_name != NULL)
        written =
            snprintf(parser->error, sizeof parser->error,
                     "%s: line %u, column %u: ", parser->source_name, parser->line, parser->column);
    else
        written = snprintf(parser->error, sizeof parser->error,
                           "line %u, column %u: ", parser->line, parser->column);
    if (written > 0) used = (size_t)written < sizeof parser->error ? (size_t)written : 0;
    va_list args;
    va_start(args, format);
    vsnprintf(parser->error + used, sizeof parser->error - used, format, args);
    va_end(args);
    parser->error_code = code;
    parser->state = STATE_FAILED;
    return STEP_FAILED;
}

static step_result fail_unexpected(kci_conf_parser *parser, int byte, const char *expected)
{
    char got[24];
    describe_byte(byte, got, sizeof got);
    return kci_conf_fail(parser, KC_ERR_PARSE, "expected %s, got %s", expected, got);
}

step_result kci_conf_fail_no_memory(kci_conf_parser *parser)
{
    return kci_conf_fail(parser, KC_ERR_NOMEM, "out of memory");
}

/* Counts bytes of the tree against KCI_CONF_TREE_BYTES_MAX. */
step_result kci_conf_tree_account(kci_conf_parser *parser, size_t bytes)
{
    if (bytes > KCI_CONF_TREE_BYTES_MAX - parser->tree_bytes)
        return kci_conf_fail(parser, KC_ERR_TOO_LARGE,
                             "the parsed config would take more than %d bytes",
                             KCI_CONF_TREE_BYTES_MAX);
    parser->tree_bytes += bytes;
    return STEP_CONSUMED;
}
/* ----------------------------------------------------------------- token */

static void token_begin(kci_conf_parser *parser)
{
    parser->token_len = 0;
    parser->token_escaped = false;
    parser->token_line = parser->line;
    parser->token_column = parser->column;
}

static step_result token_append(kci_conf_parser *parser, unsigned char byte)
{
    if (parser->token_len == KCI_CONF_TOKEN_BYTES_MAX)
        return kci_conf_fail(parser, KC_ERR_TOO_LARGE, "a key or value is longer than %d bytes",
                             KCI_CONF_TOKEN_BYTES_MAX);
    if (parser->token_len + 1 >= parser->token_capacity) {
        size_t capacity = parser->token_capacity * 2;
        if (capacity < TOKEN_CAPACITY_MIN) capacity = TOKEN_CAPACITY_MIN;
        if (capacity > KCI_CONF_TOKEN_BYTES_MAX + 1) capacity = KCI_CONF_TOKEN_BYTES_MAX + 1;
        char *token = realloc(parser->token, capacity);
        if (token == NULL) return kci_conf_fail_no_memory(parser);
        parser->token = token;
        parser->token_capacity = capacity;
    }
    parser->token[parser->token_len++] = (char)byte;
    parser->token[parser->token_len] = '\0';
    return STEP_CONSUMED;
}

/* The token as an owned string, counted against the tree; NULL on failure
 * (then the parser has failed). */
static char *token_take(kci_conf_parser *parser)
{
    if (kci_conf_tree_account(parser, parser->token_len + 1) == STEP_FAILED) return NULL;
    char *text = malloc(parser->token_len + 1);
    if (text == NULL) {
        kci_conf_fail_no_memory(parser);
        return NULL;
    }
    if (parser->token_len > 0) memcpy(text, parser->token, parser->token_len);
    text[parser->token_len] = '\0';
    return text;
}

static const char *token_text(const kci_conf_parser *parser)
{
    return parser->token_len > 0 ? parser->token : "";
}

/* ---------------------------------------------------------------- frames */

step_result kci_conf_map_put(kci_conf_parser *parser, conf_frame *frame, char *key,
                             kci_conf_value *value)
{
    assert(frame->value.kind == KCI_CONF_MAP && key != NULL);
    kci_conf_entry *existing = kci_conf_map_find_entry(&frame->value, key);
    if (existing != NULL) { /* the last value wins, as in nats-server */
        free(existing->key);
        kci_conf_value_release(&existing->value);
        existing->key = key;
        existing->value = *value;
        return STEP_CONSUMED;
    }
    size_t count = frame->value.as.map.count;
    if (count == KCI_CONF_MAP_ENTRIES_MAX ||
        kci_conf_tree_account(parser, sizeof(kci_conf_entry)) == STEP_FAILED) {
        free(key);
        kci_conf_value_release(value);
        if (parser->error_code != KC_OK) return STEP_FAILED;
        return kci_conf_fail(parser, KC_ERR_TOO_LARGE, "a map has more than %d keys",
                             KCI_CONF_MAP_ENTRIES_MAX);
    }
    if (count == frame->capacity) {
        size_t capacity = frame->capacity > 0 ? frame->capacity * 2 : 8;
        kci_conf_entry *entries = realloc(frame->value.as.map.entries, capacity * sizeof *entries);
        if (entries == NULL) {
            free(key);
            kci_conf_value_release(value);
            return kci_conf_fail_no_memory(parser);
        }
        frame->value.as.map.entries = entries;
        frame->capacity = capacity;
    }
    frame->value.as.map.entries[count] = (kci_conf_entry){key, *value};
    frame->value.as.map.count = count + 1;
    return STEP_CONSUMED;
}

static step_result array_push(kci_conf_parser *parser, conf_frame *frame, kci_conf_value *value)
{
    assert(frame->value.kind == KCI_CONF_ARRAY);
    size_t count = frame->value.as.array.count;
    if (count == KCI_CONF_ARRAY_ITEMS_MAX ||
        kci_conf_tree_account(parser, sizeof *value) == STEP_FAILED) {
        kci_conf_value_release(value);
        if (parser->error_code != KC_OK) return STEP_FAILED;
        return kci_conf_fail(parser, KC_ERR_TOO_LARGE, "an array has more than %d items",
                             KCI_CONF_ARRAY_ITEMS_MAX);
    }
    if (count == frame->capacity) {
        size_t capacity = frame->capacity > 0 ? frame->capacity * 2 : 8;
        kci_conf_value *items = realloc(frame->value.as.array.items, capacity * sizeof *items);
        if (items == NULL) {
            kci_conf_value_release(value);
            return kci_conf_fail_no_memory(parser);
        }
        frame->value.as.array.items = items;
        frame->capacity = capacity;
    }
    frame->value.as.array.items[count] = *value;
    frame->value.as.array.count = count + 1;
    return STEP_CONSUMED;
}

/* Attaches a finished value (ownership moves) to the frame on top and picks
 * the state that follows a value there. */
static step_result emit_value(kci_conf_parser *parser, kci_conf_value *value)
{
    assert(parser->depth >= 1 && parser->depth <= KCI_CONF_DEPTH_MAX);
    conf_frame *top = &parser->frames[parser->depth - 1];
    if (top->value.kind == KCI_CONF_ARRAY) {
        parser->state = STATE_ARRAY_ITEM_END;
        return array_push(parser, top, value);
    }
    assert(top->value.kind == KCI_CONF_MAP && top->key != NULL);
    parser->state = STATE_VALUE_END;
    char *key = top->key;
    top->key = NULL;
    snprintf(parser->last_key, sizeof parser->last_key, "%s", key);
    if (top->key_is_include) {
        top->key_is_include = false;
        free(key);
        return kci_conf_include_file(parser, top, value);
    }
    return kci_conf_map_put(parser, top, key, value);
}

static step_result frame_push(kci_conf_parser *parser, kci_conf_kind kind)
{
    assert(kind == KCI_CONF_MAP || kind == KCI_CONF_ARRAY);
    if (parser->depth == KCI_CONF_DEPTH_MAX)
        return kci_conf_fail(parser, KC_ERR_TOO_LARGE, "maps and arrays nest deeper than %d levels",
                             KCI_CONF_DEPTH_MAX);
    if (kci_conf_tree_account(parser, sizeof(kci_conf_value)) == STEP_FAILED) return STEP_FAILED;
    conf_frame *frame = &parser->frames[parser->depth++];
    memset(frame, 0, sizeof *frame);
    frame->value.kind = kind;
    frame->value.line = parser->line;
    parser->state = kind == KCI_CONF_MAP ? STATE_KEY_START : STATE_ARRAY_ITEM_START;
    return STEP_CONSUMED;
}

/* The map or array on top is complete: hand it to the frame below. */
static step_result frame_pop(kci_conf_parser *parser)
{
    assert(parser->depth > 1);
    conf_frame *frame = &parser->frames[--parser->depth];
    assert(frame->key == NULL);
    kci_conf_value value = frame->value;
    memset(frame, 0, sizeof *frame);
    return emit_value(parser, &value);
}

static step_result close_map(kci_conf_parser *parser)
{
    if (parser->depth > 1) return frame_pop(parser);
    if (parser->frames[0].braced) {
        parser->state = STATE_ROOT_END;
        return STEP_CONSUMED;
    }
    return kci_conf_fail(parser, KC_ERR_PARSE, "'}' without a matching '{'");
}

/* End of input where a key could start or a value has just ended. */
static step_result end_of_map(kci_conf_parser *parser)
{
    const conf_frame *top = &parser->frames[parser->depth - 1];
    if (parser->depth == 1 && !top->braced) {
        parser->state = STATE_DONE;
        return STEP_CONSUMED;
    }
    return kci_conf_fail(parser, KC_ERR_PARSE,
                         "end of input inside the map that starts at line %u: no '}'",
                         top->value.line);
}
/* ------------------------------------------------------ scalar decoding */

static bool word_is(const char *text, const char *word)
{
    return strcasecmp(text, word) == 0;
}

static bool bare_bool(const char *text, bool *out)
{
    if (word_is(text, "true") || word_is(text, "yes") || word_is(text, "on")) {
        *out = true;
        return true;
    }
    if (word_is(text, "false") || word_is(text, "no") || word_is(text, "off")) {
        *out = false;
        return true;
    }
    return false;
}

static bool is_digit(int byte)
{
    return byte >= '0' && byte <= '9';
}

/* -?digits.digits, the only float form nats-server's lexer accepts. */
static bool is_float_text(const char *text, size_t text_len)
{
    size_t index = text_len > 0 && text[0] == '-' ? 1 : 0;
    size_t digits = 0;
    while (index < text_len && is_digit(text[index]))
        index++, digits++;
    if (digits == 0 || index == text_len || text[index] != '.') return false;
    index++;
    digits = 0;
    while (index < text_len && is_digit(text[index]))
        index++, digits++;
    return digits > 0 && index == text_len;
}

typedef enum number_result {
    NUMBER_FOUND,
    NUMBER_NOT_ONE, /* not a number: the token is a string */
    NUMBER_FAILED,
} number_result;

static number_result bare_number(kci_conf_parser *parser, kci_conf_value *value)
{
    const char *text = token_text(parser);
    int64_t integer = 0;
    kc_err err = kci_conf_parse_size(text, parser->token_len, &integer);
    if (err == KC_OK) {
        value->kind = KCI_CONF_INTEGER;
        value->as.integer = integer;
        return NUMBER_FOUND;
    }
    if (err == KC_ERR_TOO_LARGE) {
        kci_conf_fail(parser, KC_ERR_PARSE, "integer '%.64s' is out of range", text);
        return NUMBER_FAILED;
    }
    if (is_float_text(text, parser->token_len)) {
        double real = strtod(text, NULL);
        if (!isfinite(real)) {
            kci_conf_fail(parser, KC_ERR_PARSE, "float '%.64s' is out of range", text);
            return NUMBER_FAILED;
        }
        value->kind = KCI_CONF_FLOAT;
        value->as.real = real;
        return NUMBER_FOUND;
    }
    if (text[0] == '-') {
        kci_conf_fail(parser, KC_ERR_PARSE, "expected a number after '-', got '%.64s'", text);
        return NUMBER_FAILED;
    }
    return NUMBER_NOT_ONE;
}

static bool is_bcrypt_hash(const char *text)
{
    return strncmp(text, "$2a$", 4) == 0 || strncmp(text, "$2b$", 4) == 0 ||
           strncmp(text, "$2y$", 4) == 0;
}

/* A bare value ended: a bool, a $variable, a number or a string. */
static step_result finish_bare_value(kci_conf_parser *parser)
{
    kci_conf_value value = {.line = parser->token_line};
    const char *text = token_text(parser);
    if (!parser->token_escaped) {
        if (bare_bool(text, &value.as.boolean)) {
            value.kind = KCI_CONF_BOOL;
            return emit_value(parser, &value);
        }
        if (text[0] == '$' && !is_bcrypt_hash(text)) {
            if (kci_conf_resolve_variable(parser, text + 1, &value) == STEP_FAILED)
                return STEP_FAILED;
            return emit_value(parser, &value);
        }
        if (text[0] == '-' || is_digit(text[0])) {
            number_result number = bare_number(parser, &value);
            if (number == NUMBER_FAILED) return STEP_FAILED;
            if (number == NUMBER_FOUND) return emit_value(parser, &value);
        }
    }
    value.kind = KCI_CONF_STRING;
    value.as.string = token_take(parser);
    if (value.as.string == NULL) return STEP_FAILED;
    return emit_value(parser, &value);
}

static step_result finish_quoted_value(kci_conf_parser *parser)
{
    kci_conf_value value = {.kind = KCI_CONF_STRING, .line = parser->token_line};
    value.as.string = token_take(parser);
    if (value.as.string == NULL) return STEP_FAILED;
    return emit_value(parser, &value);
}

/* The key in the token is complete: it waits in the frame for its value. */
static step_result finish_key(kci_conf_parser *parser)
{
    conf_frame *top = &parser->frames[parser->depth - 1];
    assert(top->value.kind == KCI_CONF_MAP && top->key == NULL);
    if (parser->token_len == 0)
        return kci_conf_fail(parser, KC_ERR_PARSE, "a key must not be empty");
    top->key = token_take(parser);
    return top->key == NULL ? STEP_FAILED : STEP_CONSUMED;
}

/* ---------------------------------------------------------------- states */

static bool is_blank(int byte)
{
    return byte == ' ' || byte == '\t';
}

static bool is_newline(int byte)
{
    return byte == '\n' || byte == '\r';
}

/* True if byte (not CONF_EOF) is one of set. */
static bool byte_in(int byte, const char *set)
{
    return byte > 0 && strchr(set, byte) != NULL;
}

static step_result start_comment(kci_conf_parser *parser, int byte, conf_state return_state)
{
    assert(byte == '#' || byte == '/');
    parser->return_state = return_state;
    parser->state = byte == '#' ? STATE_COMMENT : STATE_COMMENT_SLASH;
    return STEP_CONSUMED;
}

static step_result on_key_start(kci_conf_parser *parser, int byte)
{
    conf_frame *top = &parser->frames[parser->depth - 1];
    if (is_blank(byte) || is_newline(byte)) return STEP_CONSUMED;
    switch (byte) {
    case '#':
    case '/': return start_comment(parser, byte, STATE_KEY_START);
    case '}': return close_map(parser);
    case CONF_EOF: return end_of_map(parser);
    case '"':
    case '\'':
        parser->quote = (char)byte;
        token_begin(parser);
        parser->state = STATE_KEY_QUOTED;
        return STEP_CONSUMED;
    case '{':
        /* nats-server accepts a whole file wrapped in braces (JSON style). */
        if (parser->depth == 1 && !top->braced && top->value.as.map.count == 0) {
            top->braced = true;
            return STEP_CONSUMED;
        }
        return fail_unexpected(parser, byte, "a key");
    }
    if (byte_in(byte, ":=,;[]")) return fail_unexpected(parser, byte, "a key");
    token_begin(parser);
    parser->state = STATE_KEY_BARE;
    return token_append(parser, (unsigned char)byte);
}

static step_result on_key_bare(kci_conf_parser *parser, int byte)
{
    if (is_blank(byte) || is_newline(byte)) {
        bool include = word_is(token_text(parser), "include");
        if (finish_key(parser) == STEP_FAILED) return STEP_FAILED;
        parser->frames[parser->depth - 1].key_is_include = include;
        parser->state = include ? STATE_VALUE_START : STATE_KEY_END;
        return include && is_newline(byte) ? STEP_REPEAT : STEP_CONSUMED;
    }
    if (byte_in(byte, ":=")) {
        if (finish_key(parser) == STEP_FAILED) return STEP_FAILED;
        parser->state = STATE_VALUE_START;
        return STEP_CONSUMED;
    }
    if (byte_in(byte, "{[}],;") || byte == CONF_EOF) { /* KEY_END takes it from here */
        if (finish_key(parser) == STEP_FAILED) return STEP_FAILED;
        parser->state = STATE_KEY_END;
        return STEP_REPEAT;
    }
    return token_append(parser, (unsigned char)byte);
}

static step_result on_key_quoted(kci_conf_parser *parser, int byte)
{
    if (byte == parser->quote) {
        if (finish_key(parser) == STEP_FAILED) return STEP_FAILED;
        parser->state = STATE_KEY_END;
        return STEP_CONSUMED;
    }
    if (byte == CONF_EOF || is_newline(byte))
        return kci_conf_fail(parser, KC_ERR_PARSE,
                             "quoted key starting at line %u, column %u has no end",
                             parser->token_line, parser->token_column);
    return token_append(parser, (unsigned char)byte);
}

/* Like nats-server, new lines may come between a key and its value. */
static step_result on_key_end(kci_conf_parser *parser, int byte)
{
    const char *key = parser->frames[parser->depth - 1].key;
    if (is_blank(byte) || is_newline(byte)) return STEP_CONSUMED;
    if (byte_in(byte, ":=")) {
        parser->state = STATE_VALUE_START;
        return STEP_CONSUMED;
    }
    if (byte_in(byte, "}],;#") || byte == CONF_EOF) {
        char got[24];
        describe_byte(byte, got, sizeof got);
        return kci_conf_fail(parser, KC_ERR_PARSE, "key '%.64s' has no value (got %s)", key, got);
    }
    parser->state = STATE_VALUE_START;
    return STEP_REPEAT;
}

static step_result on_value_start(kci_conf_parser *parser, int byte)
{
    const conf_frame *top = &parser->frames[parser->depth - 1];
    const char *expected = top->value.kind == KCI_CONF_ARRAY ? "an array item"
                           : top->key_is_include             ? "a file name after include"
                                                             : "a value";
    if (is_blank(byte)) return STEP_CONSUMED;
    switch (byte) {
    case '[': return frame_push(parser, KCI_CONF_ARRAY);
    case '{': return frame_push(parser, KCI_CONF_MAP);
    case '"':
    case '\'':
        token_begin(parser);
        parser->state = byte == '"' ? STATE_VALUE_QUOTED : STATE_VALUE_RAW;
        return STEP_CONSUMED;
    case '(':
        return kci_conf_fail(parser, KC_ERR_PARSE, "block strings '( ... )' are not supported");
    }
    if (is_newline(byte) || byte == CONF_EOF || byte_in(byte, ",;]}") ||
        (top->key_is_include && byte_in(byte, ":=")))
        return fail_unexpected(parser, byte, expected);
    token_begin(parser);
    parser->state = STATE_VALUE_BARE;
    return STEP_REPEAT;
}

static step_result on_value_bare(kci_conf_parser *parser, int byte)
{
    /* The bytes that end a bare value, as in nats-server. */
    bool ends = is_blank(byte) || is_newline(byte) || byte_in(byte, ",;]}") || byte == CONF_EOF;
    if (ends) return finish_bare_value(parser) == STEP_FAILED ? STEP_FAILED : STEP_REPEAT;
    if (byte != '\\') return token_append(parser, (unsigned char)byte);
    parser->token_escaped = true;
    parser->return_state = STATE_VALUE_BARE;
    parser->state = STATE_ESCAPE;
    return STEP_CONSUMED;
}

static step_result on_value_quoted(kci_conf_parser *parser, int byte)
{
    switch (byte) {
    case '"': return finish_quoted_value(parser);
    case '\\':
        parser->return_state = STATE_VALUE_QUOTED;
        parser->state = STATE_ESCAPE;
        return STEP_CONSUMED;
    case CONF_EOF:
        return kci_conf_fail(parser, KC_ERR_PARSE,
                             "string starting at line %u, column %u has no end", parser->token_line,
                             parser->token_column);
    }
    return token_append(parser, (unsigned char)byte);
}

static step_result on_value_raw(kci_conf_parser *parser, int byte)
{
    if (byte == '\'') return finish_quoted_value(parser);
    if (byte == CONF_EOF)
        return kci_conf_fail(parser, KC_ERR_PARSE,
                             "string starting at line %u, column %u has no end", parser->token_line,
                             parser->token_column);
    return token_append(parser, (unsigned char)byte);
}

static step_result on_escape(kci_conf_parser *parser, int byte)
{
    char decoded;
    switch (byte) {
    case 't': decoded = '\t'; break;
    case 'n': decoded = '\n'; break;
    case 'r': decoded = '\r'; break;
    case '"': decoded = '"'; break;
    case '\\': decoded = '\\'; break;
    case 'x': parser->state = STATE_ESCAPE_HEX_HIGH; return STEP_CONSUMED;
    default:
        return fail_unexpected(parser, byte,
                               "an escape \\t, \\n, \\r, \\\", \\\\ or \\xXX after '\\'");
    }
    parser->state = parser->return_state;
    return token_append(parser, (unsigned char)decoded);
}

static int hex_value(int byte)
{
    if (byte >= '0' && byte <= '9') return byte - '0';
    if (byte >= 'a' && byte <= 'f') return byte - 'a' + 10;
    if (byte >= 'A' && byte <= 'F') return byte - 'A' + 10;
    return -1;
}

static step_result on_escape_hex(kci_conf_parser *parser, int byte)
{
    int digit = hex_value(byte);
    if (digit < 0) return fail_unexpected(parser, byte, "two hex digits after '\\x'");
    if (parser->state == STATE_ESCAPE_HEX_HIGH) {
        parser->escape_high = digit;
        parser->state = STATE_ESCAPE_HEX_LOW;
        return STEP_CONSUMED;
    }
    int decoded = parser->escape_high * 16 + digit;
    if (decoded == 0)
        return kci_conf_fail(parser, KC_ERR_PARSE, "'\\x00' is not allowed in a string");
    parser->state = parser->return_state;
    return token_append(parser, (unsigned char)decoded);
}

static step_result on_value_end(kci_conf_parser *parser, int byte)
{
    if (is_blank(byte)) return STEP_CONSUMED;
    switch (byte) {
    case '\n':
    case '\r':
    case ',':
    case ';': parser->state = STATE_KEY_START; return STEP_CONSUMED;
    case '}': return close_map(parser);
    case '#':
    case '/': return start_comment(parser, byte, STATE_VALUE_END);
    case CONF_EOF: return end_of_map(parser);
    }
    char got[24];
    describe_byte(byte, got, sizeof got);
    return kci_conf_fail(parser, KC_ERR_PARSE,
                         "expected a new line, ',', ';' or '}' after the value of '%s', got %s",
                         parser->last_key, got);
}

static step_result fail_array_unclosed(kci_conf_parser *parser)
{
    return kci_conf_fail(parser, KC_ERR_PARSE,
                         "end of input inside the array that starts at line %u: no ']'",
                         parser->frames[parser->depth - 1].value.line);
}

static step_result on_array_item_start(kci_conf_parser *parser, int byte)
{
    if (is_blank(byte) || is_newline(byte)) return STEP_CONSUMED;
    switch (byte) {
    case '#':
    case '/': return start_comment(parser, byte, STATE_ARRAY_ITEM_START);
    case ']': return frame_pop(parser);
    case ',': return fail_unexpected(parser, byte, "an array item or ']'");
    case CONF_EOF: return fail_array_unclosed(parser);
    }
    parser->state = STATE_VALUE_START;
    return STEP_REPEAT;
}

static step_result on_array_item_end(kci_conf_parser *parser, int byte)
{
    if (is_blank(byte)) return STEP_CONSUMED;
    switch (byte) {
    case '\n':
    case '\r':
    case ',': parser->state = STATE_ARRAY_ITEM_START; return STEP_CONSUMED;
    case ']': return frame_pop(parser);
    case '#':
    case '/': return start_comment(parser, byte, STATE_ARRAY_ITEM_END);
    case CONF_EOF: return fail_array_unclosed(parser);
    }
    return fail_unexpected(parser, byte, "',' or ']' after an array item");
}

static step_result on_comment(kci_conf_parser *parser, int byte)
{
    if (byte != CONF_EOF && !is_newline(byte)) return STEP_CONSUMED;
    parser->state = parser->return_state;
    return STEP_REPEAT;
}

static step_result on_comment_slash(kci_conf_parser *parser, int byte)
{
    if (byte != '/') return fail_unexpected(parser, byte, "'/' (comments start with '#' or '//')");
    parser->state = STATE_COMMENT;
    return STEP_CONSUMED;
}

static step_result on_root_end(kci_conf_parser *parser, int byte)
{
    if (is_blank(byte) || is_newline(byte)) return STEP_CONSUMED;
    if (byte == '#' || byte == '/') return start_comment(parser, byte, STATE_ROOT_END);
    if (byte == CONF_EOF) {
        parser->state = STATE_DONE;
        return STEP_CONSUMED;
    }
    return fail_unexpected(parser, byte, "nothing after the '}' that closes the file");
}

static step_result dispatch(kci_conf_parser *parser, int byte)
{
    switch (parser->state) {
    case STATE_KEY_START: return on_key_start(parser, byte);
    case STATE_KEY_BARE: return on_key_bare(parser, byte);
    case STATE_KEY_QUOTED: return on_key_quoted(parser, byte);
    case STATE_KEY_END: return on_key_end(parser, byte);
    case STATE_VALUE_START: return on_value_start(parser, byte);
    case STATE_VALUE_BARE: return on_value_bare(parser, byte);
    case STATE_VALUE_QUOTED: return on_value_quoted(parser, byte);
    case STATE_VALUE_RAW: return on_value_raw(parser, byte);
    case STATE_ESCAPE: return on_escape(parser, byte);
    case STATE_ESCAPE_HEX_HIGH:
    case STATE_ESCAPE_HEX_LOW: return on_escape_hex(parser, byte);
    case STATE_VALUE_END: return on_value_end(parser, byte);
    case STATE_ARRAY_ITEM_START: return on_array_item_start(parser, byte);
    case STATE_ARRAY_ITEM_END: return on_array_item_end(parser, byte);
    case STATE_COMMENT: return on_comment(parser, byte);
    case STATE_COMMENT_SLASH: return on_comment_slash(parser, byte);
    case STATE_ROOT_END: return on_root_end(parser, byte);
    case STATE_DONE:
    case STATE_FAILED: break;
    }
    return kci_conf_fail(parser, KC_ERR_INVALID_ARGUMENT, "input after the end");
}

/* One byte (or CONF_EOF) through the machine; a byte passes through at most
 * STEP_REPEAT_MAX states before one consumes it. */
static kc_err step(kci_conf_parser *parser, int byte)
{
    for (int hand_off = 0; hand_off < STEP_REPEAT_MAX; hand_off++) {
        step_result result = dispatch(parser, byte);
        if (result == STEP_CONSUMED) return KC_OK;
        if (result == STEP_FAILED) return parser->error_code;
    }
    assert(!"a byte was handed between states without end");
    kci_conf_fail(parser, KC_ERR_PARSE, "internal error: parser loop");
    return parser->error_code;
}

/* ------------------------------------------------------------------- API */

kc_err kci_conf_parser_create(kci_conf_parser **out, const char *base_dir)
{
    assert(out != NULL);
    *out = NULL;
    kci_conf_parser *parser = calloc(1, sizeof *parser);
    if (parser == NULL) return KC_ERR_NOMEM;
    if (base_dir != NULL && (parser->base_dir = strdup(base_dir)) == NULL) {
        free(parser);
        return KC_ERR_NOMEM;
    }
    parser->state = STATE_KEY_START;
    parser->depth = 1;
    parser->frames[0].value.kind = KCI_CONF_MAP;
    parser->frames[0].value.line = 1;
    parser->line = 1;
    parser->column = 1;
    *out = parser;
    return KC_OK;
}

kc_err kci_conf_parser_feed(kci_conf_parser *parser, const char *bytes, size_t bytes_len)
{
    assert(parser != NULL && (bytes != NULL || bytes_len == 0));
    if (parser->error_code != KC_OK) return parser->error_code;
    if (parser->finished) {
        kci_conf_fail(parser, KC_ERR_INVALID_ARGUMENT, "input after the end");
        return parser->error_code;
    }
    if (bytes_len > KCI_CONF_BYTES_MAX - parser->bytes_seen) {
        kci_conf_fail(parser, KC_ERR_TOO_LARGE, "the config is larger than %d bytes",
                      KCI_CONF_BYTES_MAX);
        return parser->error_code;
    }
    parser->bytes_seen += bytes_len;
    for (size_t i = 0; i < bytes_len; i++) {
        unsigned char byte = (unsigned char)bytes[i];
        if (byte == '\0') {
            kci_conf_fail(parser, KC_ERR_PARSE, "NUL byte in the config");
            return parser->error_code;
        }
        kc_err err = step(parser, byte);
        if (err != KC_OK) return err;
        if (byte == '\n') {
            parser->line++;
            parser->column = 1;
        } else {
            parser->column++;
        }
    }
    return KC_OK;
}

kc_err kci_conf_parser_finish(kci_conf_parser *parser, kci_conf_value **out)
{
    assert(parser != NULL && out != NULL);
    *out = NULL;
    if (parser->error_code != KC_OK) return parser->error_code;
    if (parser->finished) {
        kci_conf_fail(parser, KC_ERR_INVALID_ARGUMENT, "finished twice");
        return parser->error_code;
    }
    kc_err err = step(parser, CONF_EOF);
    if (err != KC_OK) return err;
    assert(parser->state == STATE_DONE && parser->depth == 1);
    kci_conf_value *root = malloc(sizeof *root);
    if (root == NULL) {
        kci_conf_fail_no_memory(parser);
        return parser->error_code;
    }
    *root = parser->frames[0].value;
    memset(&parser->frames[0], 0, sizeof parser->frames[0]);
    parser->finished = true;
    assert(root->kind == KCI_CONF_MAP);
    *out = root;
    return KC_OK;
}

const char *kci_conf_parser_error(const kci_conf_parser *parser)
{
    return parser->error;
}

const char *kci_conf_parser_state(const kci_conf_parser *parser)
{
    return state_names[parser->state];
}

void kci_conf_parser_destroy(kci_conf_parser *parser)
{
    if (parser == NULL) return;
    for (size_t level = 0; level < parser->depth; level++) {
        free(parser->frames[level].key);
        kci_conf_value_release(&parser->frames[level].value);
    }
    free(parser->token);
    free(parser->base_dir);
    free(parser->source_name);
    free(parser);
}
/* ------------------------------------------------------ size suffixes */

/* As nats-server: k, m, g, t, p, e are powers of 1000; with b, i or ib
 * (kb, ki, kib) powers of 1024; case does not matter. */
static bool size_multiplier(const char *suffix, size_t suffix_len, int64_t *multiplier)
{
    static const char letters[] = "kmgtpe";
    if (suffix_len == 0 || suffix_len > 3) return false;
    const char *letter = strchr(letters, suffix[0] | 0x20);
    if (letter == NULL) return false;
    int power = (int)(letter - letters) + 1;
    bool binary;
    if (suffix_len == 1)
        binary = false;
    else if (suffix_len == 2)
        binary = (suffix[1] | 0x20) == 'b' || (suffix[1] | 0x20) == 'i';
    else
        binary = (suffix[1] | 0x20) == 'i' && (suffix[2] | 0x20) == 'b';
    if (suffix_len > 1 && !binary) return false;
    int64_t result = 1;
    for (int i = 0; i < power; i++)
        result *= binary ? 1024 : 1000;
    *multiplier = result;
    return true;
}

kc_err kci_conf_parse_size(const char *text, size_t text_len, int64_t *out)
{
    assert(out != NULL && (text != NULL || text_len == 0));
    size_t index = 0;
    bool negative = text_len > 0 && text[0] == '-';
    if (negative) index++;
    size_t digits_start = index;
    uint64_t magnitude = 0;
    bool overflow = false;
    for (; index < text_len && is_digit(text[index]); index++) {
        uint64_t digit = (uint64_t)(text[index] - '0');
        if (magnitude > (UINT64_MAX - digit) / 10) overflow = true;
        magnitude = magnitude * 10 + digit;
    }
    if (index == digits_start) return KC_ERR_PARSE;
    int64_t multiplier = 1;
    if (index < text_len && !size_multiplier(text + index, text_len - index, &multiplier))
        return KC_ERR_PARSE;
    uint64_t limit = negative ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
    if (overflow || magnitude > limit / (uint64_t)multiplier) return KC_ERR_TOO_LARGE;
    uint64_t result = magnitude * (uint64_t)multiplier;
    if (negative)
        *out = result == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)result;
    else
        *out = (int64_t)result;
    return KC_OK;
}
