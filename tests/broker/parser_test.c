/* parser_test.c - the protocol parser: byte-at-a-time feeding, every split
 * point, case-insensitivity, and a table of inputs that must fail with a
 * given error. The property behind most cases: however the bytes are cut
 * into reads, the parser reports the same events. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include "parser_recorder.h"

enum { CONTROL_LINE_MAX = 256, PAYLOAD_MAX = 1024 };

static const char SESSION[] = "CONNECT {\"verbose\":false,\"name\":\"t\"}\r\n"
                              "SUB foo.* 1\r\n"
                              "SUB bar q 22\r\n"
                              "PUB foo.x 5\r\nhello\r\n"
                              "PUB foo.y _INBOX.1 0\r\n\r\n"
                              "HPUB foo.z 12 14\r\nNATS/1.0\r\n\r\nhi\r\n"
                              "HPUB foo.z reply.to 12 12\r\nNATS/1.0\r\n\r\n\r\n"
                              "UNSUB 1\r\n"
                              "UNSUB 22 10\r\n"
                              "UNSUB 3 -1\r\n"
                              "UNSUB 4 x\r\n"
                              "PING\r\nPONG\r\n"
                              "pub lower 3\r\nabc\r\n"
                              "+OK\r\n-ERR 'whatever'\r\nINFO {}\r\n"
                              "PUB  spaced \t 2\r\nok\r\n";

static void record_whole(recorder *r, const char *input, size_t len)
{
    kci_parser parser;
    kci_parser_init(&parser, CONTROL_LINE_MAX, PAYLOAD_MAX);
    recorder_feed_split(r, &parser, (const uint8_t *)input, len, NULL, 0);
    kci_parser_release_buffers(&parser);
}

static void test_session_events(void **state)
{
    (void)state;
    static recorder r;
    memset(&r, 0, sizeof r);
    record_whole(&r, SESSION, sizeof SESSION - 1);
    assert_string_equal(r.text, "CONNECT[{\"verbose\":false,\"name\":\"t\"}][][0][]\n"
                                "SUB[foo.*][][0][1]\n"
                                "SUB[bar][q][0][22]\n"
                                "PUB[foo.x][][-1][hello]\n"
                                "PUB[foo.y][_INBOX.1][-1][]\n"
                                "PUB[foo.z][][12][NATS/1.0\r\n\r\nhi]\n"
                                "PUB[foo.z][reply.to][12][NATS/1.0\r\n\r\n]\n"
                                "UNSUB[1][][0][]\n"
                                "UNSUB[22][][10][]\n"
                                "UNSUB[3][][-1][]\n"
                                "UNSUB[4][][-1][]\n"
                                "PING[][][0][]\n"
                                "PONG[][][0][]\n"
                                "PUB[lower][][-1][abc]\n"
                                "PUB[spaced][][-1][ok]\n");
}

static void test_every_split_point(void **state)
{
    (void)state;
    static recorder whole, split;
    memset(&whole, 0, sizeof whole);
    record_whole(&whole, SESSION, sizeof SESSION - 1);
    size_t len = sizeof SESSION - 1;
    for (size_t cut = 1; cut < len; cut++) {
        for (size_t second = cut; second < len; second += 7) {
            memset(&split, 0, sizeof split);
            kci_parser parser;
            kci_parser_init(&parser, CONTROL_LINE_MAX, PAYLOAD_MAX);
            size_t cuts[2] = {cut, second};
            recorder_feed_split(&split, &parser, (const uint8_t *)SESSION, len, cuts, 2);
            kci_parser_release_buffers(&parser);
            assert_string_equal(whole.text, split.text);
        }
    }
}

static void test_byte_at_a_time(void **state)
{
    (void)state;
    static recorder whole, split;
    memset(&whole, 0, sizeof whole);
    memset(&split, 0, sizeof split);
    record_whole(&whole, SESSION, sizeof SESSION - 1);
    size_t len = sizeof SESSION - 1;
    size_t *cuts = malloc(len * sizeof *cuts);
    for (size_t i = 0; i < len; i++)
        cuts[i] = i + 1;
    kci_parser parser;
    kci_parser_init(&parser, CONTROL_LINE_MAX, PAYLOAD_MAX);
    recorder_feed_split(&split, &parser, (const uint8_t *)SESSION, len, cuts, len - 1);
    kci_parser_release_buffers(&parser);
    free(cuts);
    assert_string_equal(whole.text, split.text);
}

/* PING one byte at a time: nothing happens until the '\n', and the parser
 * is mid-operation after every byte but the last. */
static void test_ping_state_per_byte(void **state)
{
    (void)state;
    static recorder r;
    memset(&r, 0, sizeof r);
    kci_parser parser;
    kci_parser_init(&parser, CONTROL_LINE_MAX, PAYLOAD_MAX);
    const char *ping = "PING\r\n";
    for (size_t i = 0; i < 6; i++) {
        assert_int_equal(
            kci_parser_feed(&parser, &recorder_handlers, &r, (const uint8_t *)ping + i, 1, NULL),
            KCI_PARSE_OK);
        assert_int_equal(r.events, i == 5 ? 1 : 0);
        assert_int_equal(kci_parser_idle(&parser), i == 5);
    }
    kci_parser_release_buffers(&parser);
}

typedef struct failing_case {
    const char *input;
    kci_parse_error error;
} failing_case;

static void test_must_fail_table(void **state)
{
    (void)state;
    static char long_line[CONTROL_LINE_MAX + 64];
    memcpy(long_line, "SUB ", 4);
    memset(long_line + 4, 'a', CONTROL_LINE_MAX + 10);
    memcpy(long_line + 4 + CONTROL_LINE_MAX + 10, " 1\r\n", 5);
    const failing_case cases[] = {
        {"XYZ\r\n", KCI_PARSE_UNKNOWN_OPERATION},
        {"PUBX foo 1\r\n", KCI_PARSE_UNKNOWN_OPERATION},
        {"PUB\r\n", KCI_PARSE_UNKNOWN_OPERATION},
        {"\r\n", KCI_PARSE_UNKNOWN_OPERATION},
        {"PUB foo\r\n", KCI_PARSE_BAD_ARGUMENTS},
        {"PUB foo bar\r\n", KCI_PARSE_BAD_ARGUMENTS},
        {"PUB foo -1\r\n", KCI_PARSE_BAD_ARGUMENTS},
        {"PUB a b c 1\r\n", KCI_PARSE_BAD_ARGUMENTS},
        {"PUB foo 5\r\nhelloXX", KCI_PARSE_UNKNOWN_OPERATION},
        {"PUB foo 2\r\nhello\r\n", KCI_PARSE_UNKNOWN_OPERATION},
        {"PUB foo 99999999999\r\n", KCI_PARSE_BAD_ARGUMENTS},
        {"PUB foo 1025\r\n", KCI_PARSE_MAX_PAYLOAD},
        {"HPUB foo 10 5\r\n", KCI_PARSE_BAD_ARGUMENTS},
        {"HPUB foo 5\r\n", KCI_PARSE_BAD_ARGUMENTS},
        {"SUB foo\r\n", KCI_PARSE_BAD_ARGUMENTS},
        {"SUB a b c d\r\n", KCI_PARSE_BAD_ARGUMENTS},
        {"UNSUB\r\n", KCI_PARSE_UNKNOWN_OPERATION},
        {"UNSUB 1 2 3\r\n", KCI_PARSE_BAD_ARGUMENTS},
        {"CONNEC {}\r\n", KCI_PARSE_UNKNOWN_OPERATION},
        {long_line, KCI_PARSE_CONTROL_LINE_TOO_LONG},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        for (size_t cut = 1; cut < strlen(cases[i].input); cut++) {
            static recorder r;
            memset(&r, 0, sizeof r);
            kci_parser parser;
            kci_parser_init(&parser, CONTROL_LINE_MAX, PAYLOAD_MAX);
            size_t cuts[1] = {cut};
            kci_parse_error error = recorder_feed_split(
                &r, &parser, (const uint8_t *)cases[i].input, strlen(cases[i].input), cuts, 1);
            kci_parser_release_buffers(&parser);
            if (error != cases[i].error) fail_msg("case %zu cut %zu: got %d", i, cut, error);
        }
    }
}

static void test_handler_stop(void **state)
{
    (void)state;
    static recorder r;
    memset(&r, 0, sizeof r);
    r.stop_after = 2;
    kci_parser parser;
    kci_parser_init(&parser, CONTROL_LINE_MAX, PAYLOAD_MAX);
    const char *input = "PING\r\nPING\r\nPING\r\n";
    assert_int_equal(kci_parser_feed(&parser, &recorder_handlers, &r, (const uint8_t *)input,
                                     strlen(input), NULL),
                     KCI_PARSE_STOPPED);
    assert_int_equal(r.events, 2);
    kci_parser_release_buffers(&parser);
}

static void test_before_connect_hook(void **state)
{
    (void)state;
    static recorder r;
    memset(&r, 0, sizeof r);
    r.refuse_before_connect = 1;
    kci_parser parser;
    kci_parser_init(&parser, CONTROL_LINE_MAX, PAYLOAD_MAX);
    const char *input = "PUB foo 1\r\nx\r\n";
    assert_int_equal(kci_parser_feed(&parser, &recorder_handlers, &r, (const uint8_t *)input,
                                     strlen(input), NULL),
                     KCI_PARSE_STOPPED);
    assert_int_equal(r.events, 0);
    assert_int_equal(r.before_connect_calls, 1);
    /* after CONNECT, the hook is no longer asked */
    kci_parser_init(&parser, CONTROL_LINE_MAX, PAYLOAD_MAX);
    r.refuse_before_connect = 0;
    r.before_connect_calls = 0;
    input = "CONNECT {}\r\nPING\r\n";
    assert_int_equal(kci_parser_feed(&parser, &recorder_handlers, &r, (const uint8_t *)input,
                                     strlen(input), NULL),
                     KCI_PARSE_OK);
    assert_int_equal(r.before_connect_calls, 0);
    kci_parser_release_buffers(&parser);
}

static void test_large_split_payload(void **state)
{
    (void)state;
    static recorder whole, split;
    memset(&whole, 0, sizeof whole);
    memset(&split, 0, sizeof split);
    char input[PAYLOAD_MAX + 64];
    int n = snprintf(input, sizeof input, "PUB big %d\r\n", PAYLOAD_MAX);
    memset(input + n, 'z', PAYLOAD_MAX);
    memcpy(input + n + PAYLOAD_MAX, "\r\n", 2);
    size_t len = (size_t)n + PAYLOAD_MAX + 2;
    record_whole(&whole, input, len);
    kci_parser parser;
    kci_parser_init(&parser, CONTROL_LINE_MAX, PAYLOAD_MAX);
    size_t cuts[3] = {5, 100, len - 1};
    recorder_feed_split(&split, &parser, (const uint8_t *)input, len, cuts, 3);
    kci_parser_release_buffers(&parser);
    assert_string_equal(whole.text, split.text);
    assert_int_equal(split.events, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_session_events),      cmocka_unit_test(test_every_split_point),
        cmocka_unit_test(test_byte_at_a_time),      cmocka_unit_test(test_ping_state_per_byte),
        cmocka_unit_test(test_must_fail_table),     cmocka_unit_test(test_handler_stop),
        cmocka_unit_test(test_before_connect_hook), cmocka_unit_test(test_large_split_payload),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
