/* seed_line_test.c - the seed-format line parser: the state after each byte
 * of a line fed one byte at a time, lines split at every position, a table
 * of lines that must fail (with the reason), the length bounds, and recovery
 * after an error. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "ingress/seed_line.h"

enum {
    SMALL_LINE_BYTES_MAX = 100,
    LINES_MAX = 16,
    FIELD_TEXT_BYTES = 512,
};

typedef struct parsed {
    kci_seed_result result;
    kci_seed_error error;
    char client[FIELD_TEXT_BYTES];
    char timestamp[FIELD_TEXT_BYTES];
    char payload[FIELD_TEXT_BYTES];
    size_t payload_length;
} parsed;

/* NUL-terminated, cut to fit (lengths are kept beside). */
static void copy_field(char *to, const void *from, size_t length)
{
    if (length >= FIELD_TEXT_BYTES) length = FIELD_TEXT_BYTES - 1;
    memcpy(to, from, length);
    to[length] = '\0';
}

/* Feeds input in pieces of `step` bytes (0: all at once); records every
 * line or error. Returns how many. */
static int parse_all(kci_seed_line_parser *parser, const char *input, size_t size, size_t step,
                     parsed out[LINES_MAX])
{
    int count = 0;
    size_t offset = 0;
    while (offset < size) {
        size_t piece = step == 0 || size - offset < step ? size - offset : step;
        size_t piece_offset = 0;
        while (piece_offset < piece) {
            size_t consumed = 0;
            kci_seed_line line;
            kci_seed_result result =
                kci_seed_line_feed(parser, (const uint8_t *)input + offset + piece_offset,
                                   piece - piece_offset, &consumed, &line);
            assert_true(consumed > 0 && consumed <= piece - piece_offset);
            piece_offset += consumed;
            if (result == KCI_SEED_MORE) continue;
            assert_true(count < LINES_MAX);
            parsed *record = &out[count++];
            memset(record, 0, sizeof *record);
            record->result = result;
            record->error = parser->error;
            if (result != KCI_SEED_LINE) continue;
            copy_field(record->client, line.client, line.client_length);
            copy_field(record->timestamp, line.timestamp, line.timestamp_length);
            copy_field(record->payload, line.payload, line.payload_length);
            record->payload_length = line.payload_length;
        }
        offset += piece;
    }
    return count;
}

static void test_states_byte_at_a_time(void **state)
{
    (void)state;
    static const char input[] = "REQUEST#al#17#h#\r\n";
    static const kci_seed_state expected[] = {
        KCI_SEED_OP_R,          KCI_SEED_OP_RE,      KCI_SEED_OP_REQ,        KCI_SEED_OP_REQU,
        KCI_SEED_OP_REQUE,      KCI_SEED_OP_REQUES,  KCI_SEED_OP_REQUEST,    KCI_SEED_CLIENT_ARG,
        KCI_SEED_CLIENT_ARG,    KCI_SEED_CLIENT_ARG, KCI_SEED_TIMESTAMP_ARG, KCI_SEED_TIMESTAMP_ARG,
        KCI_SEED_TIMESTAMP_ARG, KCI_SEED_PAYLOAD,    KCI_SEED_PAYLOAD,       KCI_SEED_PAYLOAD,
        KCI_SEED_PAYLOAD,       KCI_SEED_LINE_DONE,
    };
    _Static_assert(sizeof expected / sizeof expected[0] == sizeof input - 1, "one per byte");
    kci_seed_line_parser parser;
    kci_seed_line_init(&parser, 0);
    assert_true(kci_seed_line_idle(&parser));
    for (size_t index = 0; index < sizeof input - 1; index++) {
        size_t consumed = 0;
        kci_seed_line line;
        kci_seed_result result =
            kci_seed_line_feed(&parser, (const uint8_t *)input + index, 1, &consumed, &line);
        assert_int_equal(consumed, 1);
        assert_int_equal(parser.state, expected[index]);
        bool last = index == sizeof input - 2;
        assert_int_equal(result, last ? KCI_SEED_LINE : KCI_SEED_MORE);
        assert_int_equal(kci_seed_line_idle(&parser), last);
        if (!last) continue;
        assert_int_equal(line.client_length, 2);
        assert_memory_equal(line.client, "al", 2);
        assert_int_equal(line.timestamp_length, 2);
        assert_memory_equal(line.timestamp, "17", 2);
        assert_int_equal(line.payload_length, 2);
        assert_memory_equal(line.payload, "h#", 2);
    }
    kci_seed_line_free(&parser);
}

/* Three lines (LF, CR LF, an error between) give the same results however
 * the input is split. */
static void test_split_at_every_position(void **state)
{
    (void)state;
    static const char input[] = "REQUEST#c1#t1#a#b#c\n"
                                "REQUEST##t#x\r\n"
                                "REQUEST#c2#2024-01-01T00:00:00Z#\r\n"
                                "REQUEST#c3#t3#cr\rinside\n";
    size_t size = sizeof input - 1;
    for (size_t step = 0; step <= size; step++) {
        kci_seed_line_parser parser;
        kci_seed_line_init(&parser, 0);
        parsed out[LINES_MAX];
        assert_int_equal(parse_all(&parser, input, size, step, out), 4);
        assert_int_equal(out[0].result, KCI_SEED_LINE);
        assert_string_equal(out[0].client, "c1");
        assert_string_equal(out[0].timestamp, "t1");
        assert_string_equal(out[0].payload, "a#b#c");
        assert_int_equal(out[1].result, KCI_SEED_ERROR);
        assert_int_equal(out[1].error, KCI_SEED_ERR_EMPTY_CLIENT);
        assert_int_equal(out[2].result, KCI_SEED_LINE);
        assert_string_equal(out[2].timestamp, "2024-01-01T00:00:00Z");
        assert_int_equal(out[2].payload_length, 0);
        assert_int_equal(out[3].result, KCI_SEED_LINE);
        assert_string_equal(out[3].payload, "cr\rinside");
        assert_true(kci_seed_line_idle(&parser));
        kci_seed_line_free(&parser);
    }
}

static const struct {
    const char *line;
    kci_seed_error error;
} failing_lines[] = {
    {"\n", KCI_SEED_ERR_EMPTY_LINE},
    {"\r\n", KCI_SEED_ERR_EMPTY_LINE},
    {"REPLY#a#b#c\n", KCI_SEED_ERR_NOT_REQUEST},
    {"request#a#b#c\n", KCI_SEED_ERR_NOT_REQUEST},
    {"REQUES\n", KCI_SEED_ERR_NOT_REQUEST},
    {"REQUEST\n", KCI_SEED_ERR_NOT_REQUEST},
    {"REQUEST a#b#c\n", KCI_SEED_ERR_NOT_REQUEST},
    {" REQUEST#a#b#c\n", KCI_SEED_ERR_NOT_REQUEST},
    {"REQUEST\r#a#b#c\n", KCI_SEED_ERR_NOT_REQUEST},
    {"\rREQUEST#a#b#c\n", KCI_SEED_ERR_NOT_REQUEST},
    {"REQUEST#\n", KCI_SEED_ERR_EMPTY_CLIENT},
    {"REQUEST#\r\n", KCI_SEED_ERR_EMPTY_CLIENT},
    {"REQUEST##b#c\n", KCI_SEED_ERR_EMPTY_CLIENT},
    {"REQUEST#a b#c#d\n", KCI_SEED_ERR_BAD_CLIENT},
    {"REQUEST#a\tb#c#d\n", KCI_SEED_ERR_BAD_CLIENT},
    {"REQUEST#a\rb#c#d\n", KCI_SEED_ERR_BAD_CLIENT},
    {"REQUEST#a\x7f#c#d\n", KCI_SEED_ERR_BAD_CLIENT},
    {"REQUEST#client\n", KCI_SEED_ERR_NO_TIMESTAMP},
    {"REQUEST#client\r\n", KCI_SEED_ERR_NO_TIMESTAMP},
    {"REQUEST#a#\n", KCI_SEED_ERR_EMPTY_TIMESTAMP},
    {"REQUEST#a##payload\n", KCI_SEED_ERR_EMPTY_TIMESTAMP},
    {"REQUEST#a#1 2#payload\n", KCI_SEED_ERR_BAD_TIMESTAMP},
    {"REQUEST#a#1\x01#payload\n", KCI_SEED_ERR_BAD_TIMESTAMP},
    {"REQUEST#a#b\n", KCI_SEED_ERR_NO_PAYLOAD},
    {"REQUEST#a#b\r\n", KCI_SEED_ERR_NO_PAYLOAD},
    {"REQUEST#a#b\rx#c\n", KCI_SEED_ERR_BAD_TIMESTAMP},
};

static void test_failing_lines(void **state)
{
    (void)state;
    kci_seed_line_parser parser;
    kci_seed_line_init(&parser, 0);
    for (size_t index = 0; index < sizeof failing_lines / sizeof failing_lines[0]; index++) {
        const char *line = failing_lines[index].line;
        for (size_t step = 0; step <= 1; step++) {
            parsed out[LINES_MAX];
            int count = parse_all(&parser, line, strlen(line), step, out);
            if (count != 1 || out[0].result != KCI_SEED_ERROR ||
                out[0].error != failing_lines[index].error)
                fail_msg("line %zu (%s): count %d, error %d, expected %d", index, line, count,
                         count > 0 ? (int)out[0].error : -1, (int)failing_lines[index].error);
            assert_string_not_equal(kci_seed_error_text(out[0].error), "unknown error");
        }
    }
    kci_seed_line_free(&parser);
}

static void test_field_bounds(void **state)
{
    (void)state;
    char line[2 * KCI_SEED_FIELD_BYTES_MAX + 64];
    for (int field = 0; field < 2; field++) {
        for (int extra = 0; extra <= 1; extra++) {
            char token[KCI_SEED_FIELD_BYTES_MAX + 2];
            memset(token, 'x', sizeof token);
            token[KCI_SEED_FIELD_BYTES_MAX + extra] = '\0';
            snprintf(line, sizeof line, "REQUEST#%s#%s#p\n", field == 0 ? token : "c",
                     field == 1 ? token : "t");
            kci_seed_line_parser parser;
            kci_seed_line_init(&parser, 0);
            parsed out[LINES_MAX];
            assert_int_equal(parse_all(&parser, line, strlen(line), 0, out), 1);
            kci_seed_error expected = extra == 0   ? KCI_SEED_ERR_NONE
                                      : field == 0 ? KCI_SEED_ERR_CLIENT_TOO_LONG
                                                   : KCI_SEED_ERR_TIMESTAMP_TOO_LONG;
            assert_int_equal(out[0].error, expected);
            assert_int_equal(out[0].result, extra == 0 ? KCI_SEED_LINE : KCI_SEED_ERROR);
            kci_seed_line_free(&parser);
        }
    }
}

/* A line of exactly line_bytes_max bytes passes with LF and with CR LF; one
 * more byte fails; a huge line never grows the buffer past the bound. */
static void test_line_bounds(void **state)
{
    (void)state;
    static const char prefix[] = "REQUEST#c#t#";
    char line[SMALL_LINE_BYTES_MAX + 8];
    for (int extra = 0; extra <= 1; extra++) {
        for (int crlf = 0; crlf <= 1; crlf++) {
            size_t content = SMALL_LINE_BYTES_MAX + (size_t)extra;
            memset(line, 'p', content);
            memcpy(line, prefix, sizeof prefix - 1);
            memcpy(line + content, crlf ? "\r\n" : "\n", crlf ? 2 : 1);
            kci_seed_line_parser parser;
            kci_seed_line_init(&parser, SMALL_LINE_BYTES_MAX);
            parsed out[LINES_MAX];
            assert_int_equal(parse_all(&parser, line, content + 1 + (size_t)crlf, 1, out), 1);
            assert_int_equal(out[0].result, extra ? KCI_SEED_ERROR : KCI_SEED_LINE);
            if (extra)
                assert_int_equal(out[0].error, KCI_SEED_ERR_TOO_LONG);
            else
                assert_int_equal(out[0].payload_length, content - (sizeof prefix - 1));
            kci_seed_line_free(&parser);
        }
    }
    size_t huge = 1024 * 1024;
    char *big = malloc(huge + 32);
    assert_non_null(big);
    memset(big, 'p', huge);
    memcpy(big, prefix, sizeof prefix - 1);
    memcpy(big + huge, "\nREQUEST#a#b#ok\n", 16);
    kci_seed_line_parser parser;
    kci_seed_line_init(&parser, SMALL_LINE_BYTES_MAX);
    parsed out[LINES_MAX];
    assert_int_equal(parse_all(&parser, big, huge + 16, 4096, out), 2);
    assert_int_equal(out[0].error, KCI_SEED_ERR_TOO_LONG);
    assert_true(parser.buffer_capacity <= SMALL_LINE_BYTES_MAX + 1);
    assert_int_equal(out[1].result, KCI_SEED_LINE);
    assert_string_equal(out[1].payload, "ok");
    kci_seed_line_free(&parser);
    free(big);
}

/* A large line's buffer is released after it; small ones keep theirs. */
static void test_buffer_released(void **state)
{
    (void)state;
    size_t size = 3 * KCI_SEED_BUFFER_BYTES_KEEP;
    char *line = malloc(size + 1);
    assert_non_null(line);
    memset(line, 'p', size);
    memcpy(line, "REQUEST#c#t#", 12);
    line[size] = '\n';
    kci_seed_line_parser parser;
    kci_seed_line_init(&parser, 0);
    parsed out[LINES_MAX];
    assert_int_equal(parse_all(&parser, line, size + 1, 0, out), 1);
    assert_int_equal(out[0].result, KCI_SEED_LINE);
    assert_true(parser.buffer_capacity > KCI_SEED_BUFFER_BYTES_KEEP);
    assert_int_equal(parse_all(&parser, "REQUEST#a#b#c\n", 14, 0, out), 1);
    assert_true(parser.buffer_capacity <= KCI_SEED_BUFFER_BYTES_KEEP);
    kci_seed_line_free(&parser);
    free(line);
}

static void test_finish(void **state)
{
    (void)state;
    kci_seed_line_parser parser;
    kci_seed_line_init(&parser, 0);
    assert_false(kci_seed_line_finish(&parser));
    parsed out[LINES_MAX];
    assert_int_equal(parse_all(&parser, "REQUEST#a#b#c\nREQ", 17, 0, out), 1);
    assert_false(kci_seed_line_idle(&parser));
    assert_true(kci_seed_line_finish(&parser));
    assert_int_equal(parser.error, KCI_SEED_ERR_INCOMPLETE);
    assert_true(kci_seed_line_idle(&parser));
    assert_false(kci_seed_line_finish(&parser));
    /* The parser is usable again. */
    assert_int_equal(parse_all(&parser, "REQUEST#a#b#c\n", 14, 0, out), 1);
    assert_int_equal(out[0].result, KCI_SEED_LINE);
    kci_seed_line_free(&parser);
}

/* Binary payloads, NUL included, pass through unchanged. */
static void test_binary_payload(void **state)
{
    (void)state;
    static const char input[] = "REQUEST#c#t#\x00\xff\x01#\r\r\n";
    kci_seed_line_parser parser;
    kci_seed_line_init(&parser, 0);
    parsed out[LINES_MAX];
    assert_int_equal(parse_all(&parser, input, sizeof input - 1, 1, out), 1);
    assert_int_equal(out[0].result, KCI_SEED_LINE);
    assert_int_equal(out[0].payload_length, 5);
    assert_memory_equal(out[0].payload, "\x00\xff\x01#\r", 5);
    kci_seed_line_free(&parser);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_states_byte_at_a_time),
        cmocka_unit_test(test_split_at_every_position),
        cmocka_unit_test(test_failing_lines),
        cmocka_unit_test(test_field_bounds),
        cmocka_unit_test(test_line_bounds),
        cmocka_unit_test(test_buffer_released),
        cmocka_unit_test(test_finish),
        cmocka_unit_test(test_binary_payload),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
