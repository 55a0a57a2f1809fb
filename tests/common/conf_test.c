/* conf_test.c - the config parser: a table of texts that must parse, with the
 * tree each must give (written compactly by dump()); a table that must fail,
 * with words the message must hold (the line and column); the same texts fed
 * one byte at a time, split at every point, and cut short at every length
 * (each piece in a buffer of exactly its size, so the sanitizers see any read
 * past the end); the state after each byte of a small text; the nesting,
 * size, key and token bounds; size suffixes; $variables; include; and a real
 * nats-server config. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/conf.h"

enum {
    DUMP_BYTES_MAX = 8192,
    ERROR_BYTES = KCI_CONF_ERROR_BYTES_MAX,
};

/* ---------------------------------------------------------------- dump */

typedef struct dump_buffer {
    char text[DUMP_BYTES_MAX];
    size_t used;
} dump_buffer;

static void dump_append(dump_buffer *buffer, const char *format, ...)
{
    va_list args;
    va_start(args, format);
    int written =
        vsnprintf(buffer->text + buffer->used, sizeof buffer->text - buffer->used, format, args);
    va_end(args);
    assert_true(written >= 0 && (size_t)written < sizeof buffer->text - buffer->used);
    buffer->used += (size_t)written;
}

static void dump_string(dump_buffer *buffer, const char *text)
{
    dump_append(buffer, "\"");
    for (const unsigned char *cursor = (const unsigned char *)text; *cursor != '\0'; cursor++) {
        if (*cursor == '\t')
            dump_append(buffer, "\\t");
        else if (*cursor == '\n')
            dump_append(buffer, "\\n");
        else if (*cursor == '\r')
            dump_append(buffer, "\\r");
        else if (*cursor == '"' || *cursor == '\\')
            dump_append(buffer, "\\%c", *cursor);
        else if (*cursor < ' ' || *cursor >= 0x7f)
            dump_append(buffer, "\\x%02x", *cursor);
        else
            dump_append(buffer, "%c", *cursor);
    }
    dump_append(buffer, "\"");
}

/* {key:value,...} [a,b] "string" 12 1.5 true */
static void dump_value(dump_buffer *buffer, const kci_conf_value *value)
{
    switch (value->kind) {
    case KCI_CONF_STRING: dump_string(buffer, value->as.string); break;
    case KCI_CONF_INTEGER: dump_append(buffer, "%lld", (long long)value->as.integer); break;
    case KCI_CONF_FLOAT: dump_append(buffer, "%g", value->as.real); break;
    case KCI_CONF_BOOL: dump_append(buffer, value->as.boolean ? "true" : "false"); break;
    case KCI_CONF_MAP:
        dump_append(buffer, "{");
        for (size_t i = 0; i < value->as.map.count; i++) {
            dump_append(buffer, "%s%s:", i > 0 ? "," : "", value->as.map.entries[i].key);
            dump_value(buffer, &value->as.map.entries[i].value);
        }
        dump_append(buffer, "}");
        break;
    case KCI_CONF_ARRAY:
        dump_append(buffer, "[");
        for (size_t i = 0; i < value->as.array.count; i++) {
            if (i > 0) dump_append(buffer, ",");
            dump_value(buffer, &value->as.array.items[i]);
        }
        dump_append(buffer, "]");
        break;
    default: fail_msg("value of unknown kind %d", (int)value->kind);
    }
}

static const char *dump(dump_buffer *buffer, const kci_conf_value *value)
{
    buffer->used = 0;
    buffer->text[0] = '\0';
    dump_value(buffer, value);
    return buffer->text;
}

/* Parses text (as a C string) whole; returns the code, fills dumped or error. */
static kc_err parse_text(const char *text, dump_buffer *dumped, char *error)
{
    kci_conf_value *root = NULL;
    kc_err err = kci_conf_parse(text, strlen(text), &root, error, ERROR_BYTES);
    if (err == KC_OK) {
        assert_non_null(root);
        dump(dumped, root);
        kci_conf_free(root);
    } else {
        assert_null(root);
        assert_true(error[0] != '\0');
    }
    return err;
}

/* ------------------------------------------------------------ tables */

typedef struct good_case {
    const char *text;
    const char *tree;
} good_case;

static const good_case good_cases[] = {
    {"", "{}"},
    {"\n\n  \t\n", "{}"},
    {"# only a comment", "{}"},
    {"// only a comment\n", "{}"},
    {"a = 1", "{a:1}"},
    {"a: 1", "{a:1}"},
    {"a 1", "{a:1}"},
    {"a=1\nb=2", "{a:1,b:2}"},
    {"a=1; b=2, c=3", "{a:1,b:2,c:3}"},
    {"a=1;\r\nb=2\r\n", "{a:1,b:2}"},
    {"a = -42", "{a:-42}"},
    {"a = 0", "{a:0}"},
    {"a = 007", "{a:7}"},
    {"a = 1.5", "{a:1.5}"},
    {"a = -0.25", "{a:-0.25}"},
    {"a = true\nb = FALSE\nc = yes\nd = No\ne = on\nf = off",
     "{a:true,b:false,c:true,d:false,e:true,f:false}"},
    {"a = \"true\"", "{a:\"true\"}"},
    {"a = hello", "{a:\"hello\"}"},
    {"a = hello world", NULL}, /* in the failure table instead */
    {"a = 'raw \\t text'", "{a:\"raw \\\\t text\"}"},
    {"a = \"tab\\there\"", "{a:\"tab\\there\"}"},
    {"a = \"\\n\\r\\\"\\\\\"", "{a:\"\\n\\r\\\"\\\\\"}"},
    {"a = \"\\x41\\x7a\"", "{a:\"Az\"}"},
    {"a = \"two\nlines\"", "{a:\"two\\nlines\"}"},
    {"a = \"\"", "{a:\"\"}"},
    {"a = ''", "{a:\"\"}"},
    {"a = \"# not a comment\"", "{a:\"# not a comment\"}"},
    {"a = bare\\tescape", "{a:\"bare\\tescape\"}"},
    {"a = 1 # comment", "{a:1}"},
    {"a = 1 // comment", "{a:1}"},
    {"a = 1#glued", "{a:\"1#glued\"}"},
    {"a = x//y", "{a:\"x//y\"}"},
    {"a = /var/log/kcobrad.log", "{a:\"/var/log/kcobrad.log\"}"},
    {"a = 127.0.0.1:4222", "{a:\"127.0.0.1:4222\"}"},
    {"a = 0.0.0.0", "{a:\"0.0.0.0\"}"},
    {"a = 10s", "{a:\"10s\"}"},
    {"a = 1ms", "{a:\"1ms\"}"},
    {"a = 2m", "{a:2000000}"},
    {"a = 1k\nb = 1kb\nc = 1KB\nd = 1Ki\ne = 1kib", "{a:1000,b:1024,c:1024,d:1024,e:1024}"},
    {"a = 1m\nb = 1MB\nc = 1mib", "{a:1000000,b:1048576,c:1048576}"},
    {"a = 1g\nb = 1GB\nc = 2gi", "{a:1000000000,b:1073741824,c:2147483648}"},
    {"a = 1t\nb = 1tb", "{a:1000000000000,b:1099511627776}"},
    {"a = -1k", "{a:-1000}"},
    {"a = 1kbb", "{a:\"1kbb\"}"},
    {"a = 9223372036854775807", "{a:9223372036854775807}"},
    {"a = -9223372036854775808", "{a:-9223372036854775808}"},
    {"a = [1, 2, 3]", "{a:[1,2,3]}"},
    {"a = [1, 2, 3,]", "{a:[1,2,3]}"},
    {"a = []", "{a:[]}"},
    {"a = [\n  1\n  2 # two\n  // three\n  3\n]", "{a:[1,2,3]}"},
    {"a = [x, \"y\", 'z', 1.5, true]", "{a:[\"x\",\"y\",\"z\",1.5,true]}"},
    {"a = [[1], [[2]], []]", "{a:[[1],[[2]],[]]}"},
    {"a = [{b: 1}, {c: 2}]", "{a:[{b:1},{c:2}]}"},
    {"a = {}", "{a:{}}"},
    {"a {}", "{a:{}}"},
    {"a{b=1}", "{a:{b:1}}"},
    {"a [1]", "{a:[1]}"},
    {"a {\n  b = 1\n  c { d: [e] }\n}", "{a:{b:1,c:{d:[\"e\"]}}}"},
    {"a { b: 1, c: 2; d: 3 }", "{a:{b:1,c:2,d:3}}"},
    {"a { b: 1 } # after", "{a:{b:1}}"},
    {"a {b: x}", "{a:{b:\"x\"}}"},
    {"a\n{\n  b = 1\n}", "{a:{b:1}}"},
    {"\"quoted key\" = 1", "{quoted key:1}"},
    {"'single key': 2", "{single key:2}"},
    {"a { \"b c\": 1 }", "{a:{b c:1}}"},
    {"a=1\nA=2", "{A:2}"},
    {"a=1\nb=2\na=3", "{a:3,b:2}"},
    {"{ \"port\": 4222, \"debug\": true }", "{port:4222,debug:true}"},
    {"{\n  \"users\": [{\"user\": \"a\"}]\n}\n# end", "{users:[{user:\"a\"}]}"},
    {"a = 1\nb = $a", "{a:1,b:1}"},
    {"a = {x: [1]}\nb = $a", "{a:{x:[1]},b:{x:[1]}}"},
    {"v = 1\nm { w = 2, n { x = $v, y = $w } }", "{v:1,m:{w:2,n:{x:1,y:2}}}"},
    {"a = \"$not_a_variable\"", "{a:\"$not_a_variable\"}"},
    {"a = $2a$11$abcdefghijklmnopqrstu", "{a:\"$2a$11$abcdefghijklmnopqrstu\"}"},
    {"a = caf\xc3\xa9", "{a:\"caf\\xc3\\xa9\"}"},
    {"a = -1.5", "{a:-1.5}"},
    {"a = 1.2.3", "{a:\"1.2.3\"}"},
    {"a = 2019-01-01T00:00:00Z", "{a:\"2019-01-01T00:00:00Z\"}"},
    {"include_x = 1", "{include_x:1}"},
};

typedef struct bad_case {
    const char *text;
    kc_err code;
    const char *message; /* a part the message must hold */
} bad_case;

static const bad_case bad_cases[] = {
    {"a", KC_ERR_PARSE, "line 1, column 2: key 'a' has no value"},
    {"a =", KC_ERR_PARSE, "expected a value, got end of input"},
    {"a =\n1", KC_ERR_PARSE, "line 1, column 4: expected a value, got end of line"},
    {"a = hello world", KC_ERR_PARSE, "after the value of 'a', got 'w'"},
    {"a = 1 2", KC_ERR_PARSE, "line 1, column 7"},
    {"a = \"abc", KC_ERR_PARSE, "string starting at line 1, column 5 has no end"},
    {"a = 'abc", KC_ERR_PARSE, "has no end"},
    {"a = \"\\q\"", KC_ERR_PARSE, "line 1, column 7: expected an escape"},
    {"a = \"\\x4\"", KC_ERR_PARSE, "two hex digits"},
    {"a = \"\\xZZ\"", KC_ERR_PARSE, "two hex digits"},
    {"a = \"\\x00\"", KC_ERR_PARSE, "'\\x00' is not allowed"},
    {"a = \"\\", KC_ERR_PARSE, "got end of input"},
    {"a = {", KC_ERR_PARSE, "inside the map that starts at line 1: no '}'"},
    {"a = {\nb = 1\n", KC_ERR_PARSE, "line 3, column 1: end of input inside the map"},
    {"a = [1, 2", KC_ERR_PARSE, "inside the array that starts at line 1: no ']'"},
    {"a = [1,,2]", KC_ERR_PARSE, "expected an array item or ']', got ','"},
    {"a = [,]", KC_ERR_PARSE, "got ','"},
    {"a = [1 2]", KC_ERR_PARSE, "expected ',' or ']' after an array item, got '2'"},
    {"a = [1}", KC_ERR_PARSE, "got '}'"},
    {"a = {b: 1]", KC_ERR_PARSE, "got ']'"},
    {"}", KC_ERR_PARSE, "line 1, column 1: '}' without a matching '{'"},
    {"a = 1 }", KC_ERR_PARSE, "'}' without a matching '{'"},
    {"]", KC_ERR_PARSE, "expected a key, got ']'"},
    {"= 1", KC_ERR_PARSE, "expected a key, got '='"},
    {": 1", KC_ERR_PARSE, "expected a key"},
    {"a = 1\n\n  , b = 2", KC_ERR_PARSE, "line 3, column 3: expected a key, got ','"},
    {"a = ,", KC_ERR_PARSE, "expected a value, got ','"},
    {"a = ;", KC_ERR_PARSE, "expected a value, got ';'"},
    {"a = (\nblock\n)", KC_ERR_PARSE, "block strings"},
    {"/ a = 1", KC_ERR_PARSE, "comments start with '#' or '//'"},
    {"a = 1 / x", KC_ERR_PARSE, "comments start with"},
    {"\"\" = 1", KC_ERR_PARSE, "a key must not be empty"},
    {"\"a = 1", KC_ERR_PARSE, "quoted key starting at line 1, column 1 has no end"},
    {"a = -", KC_ERR_PARSE, "expected a number after '-', got '-'"},
    {"a = -x", KC_ERR_PARSE, "expected a number after '-'"},
    {"a = 9223372036854775808", KC_ERR_PARSE, "out of range"},
    {"a = 99999999999999999999999", KC_ERR_PARSE, "out of range"},
    {"a = 9300000000G", KC_ERR_PARSE, "out of range"},
    {"a = -9223372036854775809", KC_ERR_PARSE, "out of range"},
    {"a = $", KC_ERR_PARSE, "'$' must be followed by a name"},
    {"a = $KCOBRAD_TEST_SURELY_UNSET", KC_ERR_PARSE, "'$KCOBRAD_TEST_SURELY_UNSET' is not defined"},
    {"a = $b\nb = 1", KC_ERR_PARSE, "line 1"},
    {"include other.conf", KC_ERR_PARSE, "include is only allowed in a config file"},
    {"include\n", KC_ERR_PARSE, "expected a file name after include, got end of line"},
    {"include = x", KC_ERR_PARSE, "expected a file name after include, got '='"},
    {"{ a = 1 } b = 2", KC_ERR_PARSE, "nothing after the '}' that closes the file"},
    {"{ a = 1", KC_ERR_PARSE, "no '}'"},
    {"a { b }", KC_ERR_PARSE, "key 'b' has no value (got '}')"},
    {"a\n\n\n  b c = 1", KC_ERR_PARSE, "line 4, column 5: expected a new line"},
};

/* ------------------------------------------------------ table tests */

static void test_good_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof good_cases / sizeof good_cases[0]; i++) {
        const good_case *c = &good_cases[i];
        if (c->tree == NULL) continue;
        dump_buffer dumped;
        char error[ERROR_BYTES] = "";
        kc_err err = parse_text(c->text, &dumped, error);
        if (err != KC_OK) fail_msg("case %zu \"%s\": %s", i, c->text, error);
        if (strcmp(dumped.text, c->tree) != 0)
            fail_msg("case %zu \"%s\": got %s, want %s", i, c->text, dumped.text, c->tree);
    }
}

static void test_bad_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof bad_cases / sizeof bad_cases[0]; i++) {
        const bad_case *c = &bad_cases[i];
        dump_buffer dumped;
        char error[ERROR_BYTES] = "";
        kc_err err = parse_text(c->text, &dumped, error);
        if (err == KC_OK) fail_msg("case %zu \"%s\" parsed: %s", i, c->text, dumped.text);
        if (err != c->code) fail_msg("case %zu \"%s\": code %d, want %d", i, c->text, err, c->code);
        if (strstr(error, c->message) == NULL)
            fail_msg("case %zu \"%s\": message \"%s\" lacks \"%s\"", i, c->text, error, c->message);
        if (strstr(error, "line ") == NULL) fail_msg("case %zu: no line in \"%s\"", i, error);
    }
}

/* ----------------------------------------------- pieces and prefixes */

typedef struct outcome {
    kc_err code;
    char text[DUMP_BYTES_MAX]; /* the tree, or the error message */
} outcome;

/* Feeds text in pieces ending at the offsets in cuts (ascending), each piece
 * copied into a heap block of exactly its size. */
static void parse_in_pieces(const char *text, size_t text_len, const size_t *cuts, size_t cut_count,
                            outcome *result)
{
    kci_conf_parser *parser = NULL;
    assert_int_equal(kci_conf_parser_create(&parser, NULL), KC_OK);
    size_t start = 0;
    kc_err err = KC_OK;
    for (size_t i = 0; i <= cut_count && err == KC_OK; i++) {
        size_t end = i < cut_count ? cuts[i] : text_len;
        size_t piece_len = end - start;
        char *piece = malloc(piece_len > 0 ? piece_len : 1);
        assert_non_null(piece);
        memcpy(piece, text + start, piece_len);
        err = kci_conf_parser_feed(parser, piece, piece_len);
        free(piece);
        start = end;
    }
    kci_conf_value *root = NULL;
    if (err == KC_OK) err = kci_conf_parser_finish(parser, &root);
    result->code = err;
    if (err == KC_OK) {
        dump_buffer dumped;
        snprintf(result->text, sizeof result->text, "%s", dump(&dumped, root));
    } else {
        snprintf(result->text, sizeof result->text, "%s", kci_conf_parser_error(parser));
    }
    kci_conf_free(root);
    kci_conf_parser_destroy(parser);
}

static void check_pieces_agree(const char *text)
{
    size_t text_len = strlen(text);
    outcome whole;
    outcome pieces;
    parse_in_pieces(text, text_len, NULL, 0, &whole);
    size_t cuts[DUMP_BYTES_MAX];
    assert_true(text_len < DUMP_BYTES_MAX);
    for (size_t i = 0; i < text_len; i++)
        cuts[i] = i + 1;
    parse_in_pieces(text, text_len, cuts, text_len > 0 ? text_len - 1 : 0, &pieces);
    if (pieces.code != whole.code || strcmp(pieces.text, whole.text) != 0)
        fail_msg("byte at a time \"%s\": %s / %s", text, pieces.text, whole.text);
    for (size_t split = 0; split <= text_len; split++) {
        parse_in_pieces(text, text_len, &split, 1, &pieces);
        if (pieces.code != whole.code || strcmp(pieces.text, whole.text) != 0)
            fail_msg("split at %zu \"%s\": %s / %s", split, text, pieces.text, whole.text);
    }
}

static void test_pieces_agree_with_whole(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof good_cases / sizeof good_cases[0]; i++)
        check_pieces_agree(good_cases[i].text);
    for (size_t i = 0; i < sizeof bad_cases / sizeof bad_cases[0]; i++)
        check_pieces_agree(bad_cases[i].text);
}

/* Every prefix of every text, in a buffer of exactly that length. */
static void test_truncated_prefixes(void **state)
{
    (void)state;
    const char
        *texts[sizeof good_cases / sizeof good_cases[0] + sizeof bad_cases / sizeof bad_cases[0]];
    size_t count = 0;
    for (size_t i = 0; i < sizeof good_cases / sizeof good_cases[0]; i++)
        texts[count++] = good_cases[i].text;
    for (size_t i = 0; i < sizeof bad_cases / sizeof bad_cases[0]; i++)
        texts[count++] = bad_cases[i].text;
    for (size_t t = 0; t < count; t++) {
        size_t text_len = strlen(texts[t]);
        for (size_t prefix_len = 0; prefix_len <= text_len; prefix_len++) {
            char *copy = malloc(prefix_len > 0 ? prefix_len : 1);
            assert_non_null(copy);
            memcpy(copy, texts[t], prefix_len);
            kci_conf_value *root = NULL;
            char error[ERROR_BYTES] = "";
            kc_err err = kci_conf_parse(copy, prefix_len, &root, error, sizeof error);
            assert_true(err == KC_OK || err == KC_ERR_PARSE);
            assert_true((err == KC_OK) == (root != NULL));
            kci_conf_free(root);
            free(copy);
        }
    }
}

/* "a=1\n" one byte at a time, and the state after each. */
static void test_states_byte_by_byte(void **state)
{
    (void)state;
    static const struct {
        char byte;
        const char *state_after;
    } steps[] = {
        {'a', "KEY_BARE"},         {'b', "KEY_BARE"},         {' ', "KEY_END"},
        {'=', "VALUE_START"},      {' ', "VALUE_START"},      {'"', "VALUE_QUOTED"},
        {'\\', "ESCAPE"},          {'x', "ESCAPE_HEX_HIGH"},  {'4', "ESCAPE_HEX_LOW"},
        {'1', "VALUE_QUOTED"},     {'"', "VALUE_END"},        {' ', "VALUE_END"},
        {'#', "COMMENT"},          {'c', "COMMENT"},          {'\n', "KEY_START"},
        {'l', "KEY_BARE"},         {'[', "ARRAY_ITEM_START"}, {'7', "VALUE_BARE"},
        {',', "ARRAY_ITEM_START"}, {'x', "VALUE_BARE"},       {']', "VALUE_END"},
        {'/', "COMMENT_SLASH"},    {'/', "COMMENT"},          {'\n', "KEY_START"},
        {'m', "KEY_BARE"},         {':', "VALUE_START"},      {'{', "KEY_START"},
        {'n', "KEY_BARE"},         {'=', "VALUE_START"},      {'\'', "VALUE_RAW"},
        {'\\', "VALUE_RAW"},       {'\'', "VALUE_END"},       {'}', "VALUE_END"},
    };
    kci_conf_parser *parser = NULL;
    assert_int_equal(kci_conf_parser_create(&parser, NULL), KC_OK);
    assert_string_equal(kci_conf_parser_state(parser), "KEY_START");
    for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++) {
        assert_int_equal(kci_conf_parser_feed(parser, &steps[i].byte, 1), KC_OK);
        if (strcmp(kci_conf_parser_state(parser), steps[i].state_after) != 0)
            fail_msg("after byte %zu '%c': %s, want %s", i, steps[i].byte,
                     kci_conf_parser_state(parser), steps[i].state_after);
    }
    kci_conf_value *root = NULL;
    assert_int_equal(kci_conf_parser_finish(parser, &root), KC_OK);
    assert_string_equal(kci_conf_parser_state(parser), "DONE");
    dump_buffer dumped;
    assert_string_equal(dump(&dumped, root), "{ab:\"A\",l:[7,\"x\"],m:{n:\"\\\\\"}}");
    kci_conf_free(root);
    /* after the end, and after an error, every call fails */
    assert_int_equal(kci_conf_parser_feed(parser, "x", 1), KC_ERR_INVALID_ARGUMENT);
    assert_int_equal(kci_conf_parser_finish(parser, &root), KC_ERR_INVALID_ARGUMENT);
    assert_null(root);
    kci_conf_parser_destroy(parser);

    assert_int_equal(kci_conf_parser_create(&parser, NULL), KC_OK);
    assert_int_equal(kci_conf_parser_feed(parser, "]", 1), KC_ERR_PARSE);
    assert_string_equal(kci_conf_parser_state(parser), "FAILED");
    assert_int_equal(kci_conf_parser_feed(parser, "a=1", 3), KC_ERR_PARSE);
    assert_int_equal(kci_conf_parser_finish(parser, &root), KC_ERR_PARSE);
    assert_non_null(strstr(kci_conf_parser_error(parser), "got ']'"));
    kci_conf_parser_destroy(parser);
}

/* ------------------------------------------------------------ bounds */

/* "a=" and levels of '[' then as many ']'. */
static char *nested_arrays(size_t levels)
{
    char *text = malloc(2 + levels * 2 + 1);
    assert_non_null(text);
    size_t used = 0;
    text[used++] = 'a';
    text[used++] = '=';
    for (size_t i = 0; i < levels; i++)
        text[used++] = '[';
    for (size_t i = 0; i < levels; i++)
        text[used++] = ']';
    text[used] = '\0';
    return text;
}

static kc_err parse_quietly(const char *text, size_t text_len, char *error)
{
    kci_conf_value *root = NULL;
    kc_err err = kci_conf_parse(text, text_len, &root, error, ERROR_BYTES);
    kci_conf_free(root);
    return err;
}

static void test_depth_bound(void **state)
{
    (void)state;
    char error[ERROR_BYTES];
    /* the root map is level 1, so 31 more levels fit and 32 do not */
    char *fits = nested_arrays(KCI_CONF_DEPTH_MAX - 1);
    char *deep = nested_arrays(KCI_CONF_DEPTH_MAX);
    assert_int_equal(parse_quietly(fits, strlen(fits), error), KC_OK);
    assert_int_equal(parse_quietly(deep, strlen(deep), error), KC_ERR_TOO_LARGE);
    assert_non_null(strstr(error, "nest deeper than 32"));
    free(fits);
    free(deep);
    char maps[1024] = "";
    for (int i = 0; i < KCI_CONF_DEPTH_MAX - 1; i++)
        strcat(maps, "k{");
    strcat(maps, "x=1");
    for (int i = 0; i < KCI_CONF_DEPTH_MAX - 1; i++)
        strcat(maps, "}");
    assert_int_equal(parse_quietly(maps, strlen(maps), error), KC_OK);
    char too_deep[1024] = "k{";
    strcat(too_deep, maps);
    strcat(too_deep, "}");
    assert_int_equal(parse_quietly(too_deep, strlen(too_deep), error), KC_ERR_TOO_LARGE);
    /* a $variable may not carry a deep tree deeper than the bound */
    char copied[2048] = "";
    strcat(copied, "d = [[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]\n");
    for (int i = 0; i < 16; i++)
        strcat(copied, "k{");
    strcat(copied, "x=$d");
    for (int i = 0; i < 16; i++)
        strcat(copied, "}");
    assert_int_equal(parse_quietly(copied, strlen(copied), error), KC_ERR_TOO_LARGE);
}

static void test_size_bounds(void **state)
{
    (void)state;
    char error[ERROR_BYTES];
    /* one token: at the bound and one past it */
    size_t text_len = 4 + KCI_CONF_TOKEN_BYTES_MAX + 1;
    char *text = malloc(text_len + 1);
    assert_non_null(text);
    memcpy(text, "a = ", 4);
    memset(text + 4, 'x', KCI_CONF_TOKEN_BYTES_MAX + 1);
    assert_int_equal(parse_quietly(text, text_len - 1, error), KC_OK);
    assert_int_equal(parse_quietly(text, text_len, error), KC_ERR_TOO_LARGE);
    assert_non_null(strstr(error, "longer than 65536 bytes"));
    free(text);
    /* the whole input */
    text_len = (size_t)KCI_CONF_BYTES_MAX + 1;
    text = malloc(text_len);
    assert_non_null(text);
    memset(text, '\n', text_len);
    assert_int_equal(parse_quietly(text, text_len - 1, error), KC_OK);
    assert_int_equal(parse_quietly(text, text_len, error), KC_ERR_TOO_LARGE);
    free(text);
    /* a NUL byte */
    assert_int_equal(parse_quietly("a = x\0y", 7, error), KC_ERR_PARSE);
    assert_non_null(strstr(error, "NUL byte"));
}

static void test_count_bounds(void **state)
{
    (void)state;
    char error[ERROR_BYTES];
    size_t capacity = (size_t)(KCI_CONF_MAP_ENTRIES_MAX + 1) * 16;
    char *text = malloc(capacity);
    assert_non_null(text);
    size_t used = 0;
    for (int i = 0; i < KCI_CONF_MAP_ENTRIES_MAX; i++)
        used += (size_t)snprintf(text + used, capacity - used, "k%d=1\n", i);
    assert_int_equal(parse_quietly(text, used, error), KC_OK);
    used += (size_t)snprintf(text + used, capacity - used, "k0=2\n"); /* a repeat replaces */
    assert_int_equal(parse_quietly(text, used, error), KC_OK);
    used += (size_t)snprintf(text + used, capacity - used, "one_more=1\n");
    assert_int_equal(parse_quietly(text, used, error), KC_ERR_TOO_LARGE);
    assert_non_null(strstr(error, "more than 4096 keys"));
    free(text);

    capacity = (size_t)KCI_CONF_ARRAY_ITEMS_MAX * 2 + 16;
    text = malloc(capacity);
    assert_non_null(text);
    used = (size_t)snprintf(text, capacity, "a=[");
    for (int i = 0; i < KCI_CONF_ARRAY_ITEMS_MAX; i++) {
        text[used++] = '1';
        text[used++] = ',';
    }
    text[used++] = ']';
    assert_int_equal(parse_quietly(text, used, error), KC_OK);
    text[used - 1] = '1';
    text[used++] = ']';
    assert_int_equal(parse_quietly(text, used, error), KC_ERR_TOO_LARGE);
    assert_non_null(strstr(error, "more than 65536 items"));
    free(text);
}

/* Variables copying a big value into each other would double each time. */
static void test_tree_bytes_bound(void **state)
{
    (void)state;
    char text[4096];
    size_t used = (size_t)snprintf(text, sizeof text, "v0 = \"");
    memset(text + used, 'x', 2000);
    used += 2000;
    used += (size_t)snprintf(text + used, sizeof text - used, "\"\n");
    for (int i = 1; i < 30; i++)
        used += (size_t)snprintf(text + used, sizeof text - used, "v%d = [$v%d, $v%d]\n", i, i - 1,
                                 i - 1);
    char error[ERROR_BYTES];
    assert_int_equal(parse_quietly(text, used, error), KC_ERR_TOO_LARGE);
    assert_non_null(strstr(error, "would take more than"));
}

/* ------------------------------------------------------ size suffixes */

static void test_size_suffixes(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        kc_err code;
        int64_t value;
    } cases[] = {
        {"0", KC_OK, 0},
        {"512", KC_OK, 512},
        {"-3", KC_OK, -3},
        {"1k", KC_OK, 1000},
        {"1K", KC_OK, 1000},
        {"1kb", KC_OK, 1024},
        {"1KB", KC_OK, 1024},
        {"1kB", KC_OK, 1024},
        {"1ki", KC_OK, 1024},
        {"1KiB", KC_OK, 1024},
        {"64KB", KC_OK, 65536},
        {"1m", KC_OK, 1000000},
        {"1MB", KC_OK, 1048576},
        {"1mi", KC_OK, 1048576},
        {"8MiB", KC_OK, 8388608},
        {"1g", KC_OK, 1000000000},
        {"1gb", KC_OK, 1073741824},
        {"1t", KC_OK, 1000000000000},
        {"1tb", KC_OK, 1099511627776},
        {"1p", KC_OK, 1000000000000000},
        {"1pb", KC_OK, 1125899906842624},
        {"1e", KC_OK, 1000000000000000000},
        {"1eb", KC_OK, 1152921504606846976},
        {"7eb", KC_OK, 8070450532247928832},
        {"8eb", KC_ERR_TOO_LARGE, 0},
        {"9223372036854775807", KC_OK, INT64_MAX},
        {"9223372036854775808", KC_ERR_TOO_LARGE, 0},
        {"-9223372036854775808", KC_OK, INT64_MIN},
        {"", KC_ERR_PARSE, 0},
        {"-", KC_ERR_PARSE, 0},
        {"k", KC_ERR_PARSE, 0},
        {"1x", KC_ERR_PARSE, 0},
        {"1kbb", KC_ERR_PARSE, 0},
        {"1kx", KC_ERR_PARSE, 0},
        {"1bk", KC_ERR_PARSE, 0},
        {"1 k", KC_ERR_PARSE, 0},
        {"1.5k", KC_ERR_PARSE, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int64_t value = -12345;
        kc_err err = kci_conf_parse_size(cases[i].text, strlen(cases[i].text), &value);
        if (err != cases[i].code) fail_msg("\"%s\": code %d", cases[i].text, err);
        if (err == KC_OK && value != cases[i].value)
            fail_msg("\"%s\": %lld", cases[i].text, (long long)value);
    }
}

/* ------------------------------------------------ variables, lines */

static void test_environment_variables(void **state)
{
    (void)state;
    dump_buffer dumped;
    char error[ERROR_BYTES];
    setenv("KCOBRAD_TEST_PORT", "4333", 1);
    setenv("KCOBRAD_TEST_SIZE", "2MB", 1);
    setenv("KCOBRAD_TEST_LIST", "[a, b]", 1);
    setenv("KCOBRAD_TEST_TEXT", "hello there", 1);
    setenv("KCOBRAD_TEST_NESTED", "$KCOBRAD_TEST_PORT", 1);
    setenv("KCOBRAD_TEST_SELF", "$KCOBRAD_TEST_SELF", 1);
    assert_int_equal(parse_text("p = $KCOBRAD_TEST_PORT\ns = $KCOBRAD_TEST_SIZE\n"
                                "l = $KCOBRAD_TEST_LIST\nn = $KCOBRAD_TEST_NESTED",
                                &dumped, error),
                     KC_OK);
    assert_string_equal(dumped.text, "{p:4333,s:2097152,l:[\"a\",\"b\"],n:4333}");
    /* a key of the file wins over the environment */
    assert_int_equal(parse_text("KCOBRAD_TEST_PORT = 1\np = $KCOBRAD_TEST_PORT", &dumped, error),
                     KC_OK);
    assert_string_equal(dumped.text, "{KCOBRAD_TEST_PORT:1,p:1}");
    assert_int_equal(parse_text("t = $KCOBRAD_TEST_TEXT", &dumped, error), KC_ERR_PARSE);
    assert_non_null(strstr(error, "environment variable 'KCOBRAD_TEST_TEXT' is not a value"));
    assert_int_equal(parse_text("x = $KCOBRAD_TEST_SELF", &dumped, error), KC_ERR_PARSE);
    assert_non_null(strstr(error, "refers to itself"));
    unsetenv("KCOBRAD_TEST_SELF");
}

static void test_lines_and_references(void **state)
{
    (void)state;
    const char *text = "a = 1\n\nb {\n  c = [\n    x\n  ]\n}\nd = $a\n";
    kci_conf_value *root = NULL;
    char error[ERROR_BYTES];
    assert_int_equal(kci_conf_parse(text, strlen(text), &root, error, sizeof error), KC_OK);
    assert_int_equal(root->line, 1);
    const kci_conf_value *a = kci_conf_get(root, "A");
    assert_non_null(a);
    assert_int_equal(a->line, 1);
    assert_true(a->referenced);
    const kci_conf_value *b = kci_conf_get(root, "b");
    assert_int_equal(b->line, 3);
    assert_false(b->referenced);
    const kci_conf_value *c = kci_conf_get(b, "c");
    assert_int_equal(c->kind, KCI_CONF_ARRAY);
    assert_int_equal(c->line, 4);
    assert_int_equal(c->as.array.items[0].line, 5);
    const kci_conf_value *d = kci_conf_get(root, "d");
    assert_int_equal(d->line, 8);
    assert_false(d->referenced);
    assert_null(kci_conf_get(root, "missing"));
    assert_null(kci_conf_get(a, "a")); /* not a map */
    kci_conf_free(root);
    kci_conf_free(NULL);
}

/* ------------------------------------------------------------ files */

typedef struct temp_dir {
    char path[256];
} temp_dir;

static void temp_dir_make(temp_dir *dir)
{
    snprintf(dir->path, sizeof dir->path, "/tmp/kcobrad_conf_test_XXXXXX");
    assert_non_null(mkdtemp(dir->path));
}

static void write_file(const temp_dir *dir, const char *name, const char *text)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir->path, name);
    FILE *file = fopen(path, "w");
    assert_non_null(file);
    fputs(text, file);
    fclose(file);
}

static void temp_dir_remove(const temp_dir *dir, const char *const *names, size_t count)
{
    char path[512];
    for (size_t i = 0; i < count; i++) {
        snprintf(path, sizeof path, "%s/%s", dir->path, names[i]);
        unlink(path);
    }
    rmdir(dir->path);
}

static kc_err parse_file_in(const temp_dir *dir, const char *name, dump_buffer *dumped, char *error)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir->path, name);
    kci_conf_value *root = NULL;
    kc_err err = kci_conf_parse_file(path, &root, error, ERROR_BYTES);
    if (err == KC_OK) dump(dumped, root);
    kci_conf_free(root);
    return err;
}

static void test_files_and_include(void **state)
{
    (void)state;
    temp_dir dir;
    temp_dir_make(&dir);
    static const char *const names[] = {"main.conf", "auth.conf", "loop.conf", "bad.conf",
                                        "deep.conf"};
    write_file(&dir, "main.conf",
               "port = 1\ninclude auth.conf\nlimits { include 'auth.conf' }\n"
               "port = 2\n");
    write_file(&dir, "auth.conf", "authorization { token: abc }\nport = 9\n");
    write_file(&dir, "loop.conf", "a = 1\ninclude \"loop.conf\"\n");
    write_file(&dir, "bad.conf", "a = 1\nb = [1,\n");
    write_file(&dir, "deep.conf", "include missing.conf\n");
    dump_buffer dumped;
    char error[ERROR_BYTES];
    assert_int_equal(parse_file_in(&dir, "main.conf", &dumped, error), KC_OK);
    assert_string_equal(dumped.text, "{port:2,authorization:{token:\"abc\"},"
                                     "limits:{authorization:{token:\"abc\"},port:9}}");
    assert_int_equal(parse_file_in(&dir, "loop.conf", &dumped, error), KC_ERR_IO);
    assert_non_null(strstr(error, "loop.conf: included by itself (an include cycle)"));
    assert_int_equal(parse_file_in(&dir, "bad.conf", &dumped, error), KC_ERR_PARSE);
    assert_non_null(strstr(error, "bad.conf: line 3, column 1: end of input inside the array"));
    assert_int_equal(parse_file_in(&dir, "deep.conf", &dumped, error), KC_ERR_IO);
    assert_non_null(strstr(error, "deep.conf: line 1, column 21: in included file: "));
    assert_non_null(strstr(error, "missing.conf: No such file"));
    assert_int_equal(parse_file_in(&dir, "absent.conf", &dumped, error), KC_ERR_IO);
    assert_non_null(strstr(error, "absent.conf: No such file or directory"));
    kci_conf_value *root = NULL;
    assert_int_equal(kci_conf_parse_file(dir.path, &root, error, sizeof error), KC_ERR_IO);
    assert_non_null(strstr(error, "not a regular file"));
    temp_dir_remove(&dir, names, sizeof names / sizeof names[0]);
}

/* A config in the style of nats-server's documentation. */
static const char nats_server_config[] =
    "# Client port of 4222 on all interfaces\n"
    "port: 4222\n"
    "\n"
    "# HTTP monitoring port\n"
    "monitor_port: 8222\n"
    "\n"
    "server_name: \"n1\"\n"
    "max_payload: 1MB\n"
    "max_pending: 64MB\n"
    "max_control_line: 4KB\n"
    "ping_interval: \"2m\"\n"
    "write_deadline: \"10s\"\n"
    "\n"
    "authorization {\n"
    "  ADMIN = {\n"
    "    publish = \">\"\n"
    "    subscribe = \">\"\n"
    "  }\n"
    "  REQUESTOR = {\n"
    "    publish = [\"req.foo\", \"req.bar\"]\n"
    "    subscribe = \"_INBOX.>\"\n"
    "  }\n"
    "  users = [\n"
    "    {user: admin,   password: $2a$11$W2zko751KUvVy59mUTWmpOdWjpEm5qhcCZRd05GjI/sSOT.xtiHyG,"
    " permissions: $ADMIN}\n"
    "    {user: client,  password: \"s3cr3t\", permissions: $REQUESTOR}\n"
    "  ]\n"
    "}\n"
    "\n"
    "tls {\n"
    "  cert_file: \"./configs/certs/server-cert.pem\"\n"
    "  key_file:  \"./configs/certs/server-key.pem\"\n"
    "  timeout:   2\n"
    "}\n";

static void test_nats_server_config(void **state)
{
    (void)state;
    kci_conf_value *root = NULL;
    char error[ERROR_BYTES];
    assert_int_equal(
        kci_conf_parse(nats_server_config, strlen(nats_server_config), &root, error, sizeof error),
        KC_OK);
    const kci_conf_value *authorization = kci_conf_get(root, "authorization");
    assert_true(kci_conf_get(authorization, "ADMIN")->referenced);
    const kci_conf_value *users = kci_conf_get(authorization, "users");
    assert_int_equal(users->as.array.count, 2);
    dump_buffer dumped;
    assert_string_equal(dump(&dumped, &users->as.array.items[1]),
                        "{user:\"client\",password:\"s3cr3t\",permissions:"
                        "{publish:[\"req.foo\",\"req.bar\"],subscribe:\"_INBOX.>\"}}");
    assert_int_equal(kci_conf_get(root, "max_control_line")->as.integer, 4096);
    kci_conf_free(root);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_good_table),
        cmocka_unit_test(test_bad_table),
        cmocka_unit_test(test_pieces_agree_with_whole),
        cmocka_unit_test(test_truncated_prefixes),
        cmocka_unit_test(test_states_byte_by_byte),
        cmocka_unit_test(test_depth_bound),
        cmocka_unit_test(test_size_bounds),
        cmocka_unit_test(test_count_bounds),
        cmocka_unit_test(test_tree_bytes_bound),
        cmocka_unit_test(test_size_suffixes),
        cmocka_unit_test(test_environment_variables),
        cmocka_unit_test(test_lines_and_references),
        cmocka_unit_test(test_files_and_include),
        cmocka_unit_test(test_nats_server_config),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
