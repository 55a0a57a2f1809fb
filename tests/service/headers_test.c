/* headers_test.c - the KingCobra headers on nats.c messages: stamp then read
 * gives back every field; a second stamp removes optional headers it no
 * longer sets; stamping refuses fields the reader would refuse; a table of
 * malformed values, one row per header and problem, each refused with
 * KC_ERR_BAD_HEADER and kc_last_error() naming the header; duplicates, empty
 * and NULL values; require_core on and off; canonical forms (lower-case ids);
 * the receive event (kci_headers_observe) and its drift bound; and the token
 * rule for node names and types. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "service/headers.h"

enum {
    LONG_TEXT_BYTES = 700,
};

static const char id_good[] = "017f22e2-79b0-7cc3-98c4-dc0c0c07398f";
static const char ts_good[] = "1700000000000.3";
static const char reply_to_good[] = "0190b6e2-1234-7abc-8def-0123456789ab";
static const char pay_good[] = "6ba7b810-9dad-41d1-80b4-00c04fd430c8"; /* a v4: any version */

typedef struct mock_clock {
    int64_t now_ms;
} mock_clock;

static int64_t mock_clock_read(void *context)
{
    return ((mock_clock *)context)->now_ms;
}

static int group_setup(void **state)
{
    (void)state;
    return nats_Open(-1) == NATS_OK ? 0 : -1;
}

static int group_teardown(void **state)
{
    (void)state;
    nats_Close();
    return 0;
}

static natsMsg *message_new(void)
{
    natsMsg *message = NULL;
    assert_int_equal(natsMsg_Create(&message, "kc.req.echo", NULL, "hi", 2), NATS_OK);
    return message;
}

/* A message with valid core headers, as a peer would send it. */
static natsMsg *message_with_core(void)
{
    natsMsg *message = message_new();
    assert_int_equal(natsMsgHeader_Set(message, KCI_HEADER_ID, id_good), NATS_OK);
    assert_int_equal(natsMsgHeader_Set(message, KCI_HEADER_TS, ts_good), NATS_OK);
    assert_int_equal(natsMsgHeader_Set(message, KCI_HEADER_NODE, "node-1"), NATS_OK);
    return message;
}

static void fields_full(kci_kc_headers *headers)
{
    memset(headers, 0, sizeof *headers);
    strcpy(headers->node, "node-1");
    strcpy(headers->type, "echo");
    headers->deadline_ms = 1700000005000;
    strcpy(headers->reply_to, reply_to_good);
    headers->error_code = 503;
    strcpy(headers->error_message, "busy: try later");
    strcpy(headers->pay, pay_good);
}

static void test_stamp_read_round_trip(void **state)
{
    (void)state;
    mock_clock clock = {.now_ms = 1700000000000};
    kci_hlc hlc;
    kci_hlc_init(&hlc, mock_clock_read, &clock, 0);
    kci_kc_headers sent, received;
    fields_full(&sent);
    natsMsg *message = message_new();
    assert_int_equal(kci_headers_stamp_with_hlc(message, &sent, &hlc), KC_OK);
    assert_string_equal(sent.ts, "1700000000000.0");
    kci_uuid id;
    assert_true(kci_uuid_parse(sent.id, strlen(sent.id), &id));
    assert_int_equal(kci_uuid_version(&id), 7);
    const char *value = NULL;
    assert_int_equal(natsMsgHeader_Get(message, KCI_HEADER_ERROR, &value), NATS_OK);
    assert_string_equal(value, "503 busy: try later");

    assert_int_equal(kci_headers_read(message, true, &received), KC_OK);
    assert_string_equal(received.id, sent.id);
    assert_string_equal(received.ts, sent.ts);
    assert_int_equal(kci_hlc_compare(&received.timestamp, &sent.timestamp), 0);
    assert_string_equal(received.node, "node-1");
    assert_string_equal(received.type, "echo");
    assert_int_equal(received.deadline_ms, 1700000005000);
    assert_string_equal(received.reply_to, reply_to_good);
    assert_int_equal(received.error_code, 503);
    assert_string_equal(received.error_message, "busy: try later");
    assert_string_equal(received.pay, pay_good);

    /* a second stamp: new id and time, and the optional headers are gone */
    kci_kc_headers again = {0};
    strcpy(again.node, "node-2");
    assert_int_equal(kci_headers_stamp_with_hlc(message, &again, &hlc), KC_OK);
    assert_string_equal(again.ts, "1700000000000.1");
    assert_string_not_equal(again.id, sent.id);
    assert_int_equal(kci_headers_read(message, true, &received), KC_OK);
    assert_string_equal(received.node, "node-2");
    assert_string_equal(received.type, "");
    assert_int_equal(received.deadline_ms, 0);
    assert_string_equal(received.reply_to, "");
    assert_int_equal(received.error_code, 0);
    assert_string_equal(received.pay, "");
    natsMsg_Destroy(message);
    kci_hlc_destroy(&hlc);
}

static void test_stamp_process_clock(void **state)
{
    (void)state;
    kci_kc_headers headers = {0};
    strcpy(headers.node, "n");
    natsMsg *message = message_new();
    int64_t before_ms = kci_clock_real_ms(NULL);
    assert_int_equal(kci_headers_stamp(message, &headers), KC_OK);
    assert_true(headers.timestamp.wall_ms >= before_ms);
    kci_kc_headers received;
    assert_int_equal(kci_headers_read(message, true, &received), KC_OK);
    assert_string_equal(received.id, headers.id);
    natsMsg_Destroy(message);
}

/* Control bytes become spaces; a long message is cut, never inside a UTF-8
 * sequence; an empty message reads back empty. */
static void test_stamp_error_message(void **state)
{
    (void)state;
    kci_kc_headers headers = {0}, received;
    strcpy(headers.node, "n");
    headers.error_code = 400;
    strcpy(headers.error_message, "line1\nline2\tend\x7f");
    natsMsg *message = message_new();
    assert_int_equal(kci_headers_stamp(message, &headers), KC_OK);
    assert_int_equal(kci_headers_read(message, true, &received), KC_OK);
    assert_string_equal(received.error_message, "line1 line2 end ");

    memset(headers.error_message, 'a', sizeof headers.error_message);   /* no NUL at all */
    headers.error_message[KC_ERROR_MESSAGE_BYTES_MAX - 2] = (char)0xC3; /* é cut in half */
    headers.error_message[KC_ERROR_MESSAGE_BYTES_MAX - 1] = (char)0xA9;
    assert_int_equal(kci_headers_stamp(message, &headers), KC_OK);
    assert_int_equal(kci_headers_read(message, true, &received), KC_OK);
    assert_int_equal(strlen(received.error_message), KC_ERROR_MESSAGE_BYTES_MAX - 2);

    headers.error_message[0] = '\0';
    assert_int_equal(kci_headers_stamp(message, &headers), KC_OK);
    assert_int_equal(kci_headers_read(message, true, &received), KC_OK);
    assert_int_equal(received.error_code, 400);
    assert_string_equal(received.error_message, "");
    natsMsg_Destroy(message);
}

typedef struct stamp_case {
    const char *what;
    void (*spoil)(kci_kc_headers *headers);
} stamp_case;

static void spoil_node_empty(kci_kc_headers *h)
{
    h->node[0] = '\0';
}
static void spoil_node_dot(kci_kc_headers *h)
{
    strcpy(h->node, "a.b");
}
static void spoil_node_unterminated(kci_kc_headers *h)
{
    memset(h->node, 'n', sizeof h->node);
}
static void spoil_type_wildcard(kci_kc_headers *h)
{
    strcpy(h->type, "echo*");
}
static void spoil_deadline_negative(kci_kc_headers *h)
{
    h->deadline_ms = -1;
}
static void spoil_deadline_huge(kci_kc_headers *h)
{
    h->deadline_ms = KCI_DEADLINE_MS_MAX + 1;
}
static void spoil_error_negative(kci_kc_headers *h)
{
    h->error_code = -5;
}
static void spoil_reply_to(kci_kc_headers *h)
{
    strcpy(h->reply_to, "not-a-uuid");
}
static void spoil_pay_nil(kci_kc_headers *h)
{
    strcpy(h->pay, "00000000-0000-0000-0000-000000000000");
}

static const stamp_case stamp_cases[] = {
    {"Kc-Node", spoil_node_empty},
    {"Kc-Node", spoil_node_dot},
    {"headers", spoil_node_unterminated},
    {"Kc-Type", spoil_type_wildcard},
    {"Kc-Deadline", spoil_deadline_negative},
    {"Kc-Deadline", spoil_deadline_huge},
    {"Kc-Error", spoil_error_negative},
    {"Kc-Reply-To", spoil_reply_to},
    {"Kc-Pay", spoil_pay_nil},
};

static void test_stamp_refuses_bad_fields(void **state)
{
    (void)state;
    for (size_t index = 0; index < sizeof stamp_cases / sizeof stamp_cases[0]; index++) {
        kci_kc_headers headers;
        fields_full(&headers);
        stamp_cases[index].spoil(&headers);
        natsMsg *message = message_new();
        if (kci_headers_stamp(message, &headers) != KC_ERR_INVALID_ARGUMENT)
            fail_msg("row %zu (%s) accepted", index, stamp_cases[index].what);
        if (strncmp(kc_last_error(), stamp_cases[index].what, strlen(stamp_cases[index].what)))
            fail_msg("row %zu: \"%s\"", index, kc_last_error());
        const char *value = NULL; /* nothing was written */
        assert_int_equal(natsMsgHeader_Get(message, KCI_HEADER_ID, &value), NATS_NOT_FOUND);
        natsMsg_Destroy(message);
    }
    kci_kc_headers headers;
    fields_full(&headers);
    assert_int_equal(kci_headers_stamp(NULL, &headers), KC_ERR_INVALID_ARGUMENT);
}

typedef struct bad_header {
    const char *name;
    const char *value;
} bad_header;

static const bad_header bad_headers[] = {
    {KCI_HEADER_ID, ""},
    {KCI_HEADER_ID, "not-a-uuid"},
    {KCI_HEADER_ID, "017f22e2-79b0-7cc3-98c4-dc0c0c07398"},
    {KCI_HEADER_ID, "017f22e2-79b0-7cc3-98c4-dc0c0c07398f0"},
    {KCI_HEADER_ID, "017f22e279b07cc398c4dc0c0c07398f"},
    {KCI_HEADER_ID, "{017f22e2-79b0-7cc3-98c4-dc0c0c07398f}"},
    {KCI_HEADER_ID, "urn:uuid:017f22e2-79b0-7cc3-98c4-dc0c0c07398f"},
    {KCI_HEADER_ID, "017f22e2-79b0-7cc3-98c4-dc0c0c07398g"},
    {KCI_HEADER_ID, " 017f22e2-79b0-7cc3-98c4-dc0c0c07398f"},
    {KCI_HEADER_ID, "017f22e2-79b0-7cc3-98c4-dc0c0c07398f "},
    {KCI_HEADER_ID, "00000000-0000-0000-0000-000000000000"},
    {KCI_HEADER_ID, "ffffffff-ffff-ffff-ffff-ffffffffffff"},
    {KCI_HEADER_TS, ""},
    {KCI_HEADER_TS, "1"},
    {KCI_HEADER_TS, "1."},
    {KCI_HEADER_TS, ".1"},
    {KCI_HEADER_TS, "01.0"},
    {KCI_HEADER_TS, "1.01"},
    {KCI_HEADER_TS, "-1.0"},
    {KCI_HEADER_TS, "+1.0"},
    {KCI_HEADER_TS, "1.0.0"},
    {KCI_HEADER_TS, "1.0 "},
    {KCI_HEADER_TS, "1.4294967296"},
    {KCI_HEADER_TS, "281474976710656.0"},
    {KCI_HEADER_TS, "1700000000000"},
    {KCI_HEADER_TS, "2023-11-14T22:13:20Z"},
    {KCI_HEADER_TS, "1700000000000.3333333333333333333333333333333"},
    {KCI_HEADER_NODE, ""},
    {KCI_HEADER_NODE, "a.b"},
    {KCI_HEADER_NODE, "a*"},
    {KCI_HEADER_NODE, "*"},
    {KCI_HEADER_NODE, ">"},
    {KCI_HEADER_NODE, "a>b"},
    {KCI_HEADER_NODE, "a b"},
    {KCI_HEADER_NODE, "a\tb"},
    {KCI_HEADER_NODE, "a\x01"},
    {KCI_HEADER_NODE, "a\x7f"},
    {KCI_HEADER_TYPE, ""},
    {KCI_HEADER_TYPE, "echo.v2"},
    {KCI_HEADER_TYPE, "echo*"},
    {KCI_HEADER_TYPE, ">"},
    {KCI_HEADER_TYPE, " echo"},
    {KCI_HEADER_DEADLINE, ""},
    {KCI_HEADER_DEADLINE, "0"},
    {KCI_HEADER_DEADLINE, "-1"},
    {KCI_HEADER_DEADLINE, "+5"},
    {KCI_HEADER_DEADLINE, "05"},
    {KCI_HEADER_DEADLINE, "1.5"},
    {KCI_HEADER_DEADLINE, "1e3"},
    {KCI_HEADER_DEADLINE, " 5"},
    {KCI_HEADER_DEADLINE, "5 "},
    {KCI_HEADER_DEADLINE, "soon"},
    {KCI_HEADER_DEADLINE, "281474976710656"},
    {KCI_HEADER_DEADLINE, "99999999999999999999"},
    {KCI_HEADER_REPLY_TO, ""},
    {KCI_HEADER_REPLY_TO, "abc"},
    {KCI_HEADER_REPLY_TO, "00000000-0000-0000-0000-000000000000"},
    {KCI_HEADER_ERROR, ""},
    {KCI_HEADER_ERROR, "0 zero"},
    {KCI_HEADER_ERROR, "-1 minus"},
    {KCI_HEADER_ERROR, "+1 plus"},
    {KCI_HEADER_ERROR, "01 leading"},
    {KCI_HEADER_ERROR, "abc"},
    {KCI_HEADER_ERROR, "oops 500"},
    {KCI_HEADER_ERROR, " 500 space first"},
    {KCI_HEADER_ERROR, "500\ttab"},
    {KCI_HEADER_ERROR, "500x"},
    {KCI_HEADER_ERROR, "2147483648 too big"},
    {KCI_HEADER_ERROR, "99999999999 too big"},
    {KCI_HEADER_ERROR, "500 a\x01 control"},
    {KCI_HEADER_ERROR, "500 tab\tinside"},
    {KCI_HEADER_PAY, "x"},
    {KCI_HEADER_PAY, "ffffffff-ffff-ffff-ffff-ffffffffffff"},
};

static void check_refused(natsMsg *message, const char *name, size_t row)
{
    kci_kc_headers out;
    memset(&out, 0x55, sizeof out);
    for (int require_core = 0; require_core <= 1; require_core++) {
        kc_err err = kci_headers_read(message, require_core, &out);
        if (err != KC_ERR_BAD_HEADER) fail_msg("row %zu (%s): %s", row, name, kc_strerror(err));
        if (strncmp(kc_last_error(), name, strlen(name)) != 0 ||
            kc_last_error()[strlen(name)] != ':')
            fail_msg("row %zu (%s): \"%s\"", row, name, kc_last_error());
        assert_string_equal(out.id, ""); /* cleared on failure */
        assert_int_equal(out.error_code, 0);
    }
}

static void test_malformed_refused(void **state)
{
    (void)state;
    for (size_t index = 0; index < sizeof bad_headers / sizeof bad_headers[0]; index++) {
        natsMsg *message = message_with_core();
        assert_int_equal(
            natsMsgHeader_Set(message, bad_headers[index].name, bad_headers[index].value), NATS_OK);
        check_refused(message, bad_headers[index].name, index);
        natsMsg_Destroy(message);
    }
}

static void set_long(natsMsg *message, const char *name, const char *prefix, char fill)
{
    char value[LONG_TEXT_BYTES + 1];
    size_t prefix_length = strlen(prefix);
    memcpy(value, prefix, prefix_length);
    memset(value + prefix_length, fill, LONG_TEXT_BYTES - prefix_length);
    value[LONG_TEXT_BYTES] = '\0';
    assert_int_equal(natsMsgHeader_Set(message, name, value), NATS_OK);
}

static void test_oversized_refused(void **state)
{
    (void)state;
    const struct {
        const char *name, *prefix;
        char fill;
    } rows[] = {
        {KCI_HEADER_ID, "", 'a'},       {KCI_HEADER_TS, "1.", '1'},
        {KCI_HEADER_NODE, "", 'n'},     {KCI_HEADER_TYPE, "", 't'},
        {KCI_HEADER_DEADLINE, "", '9'}, {KCI_HEADER_ERROR, "500 ", 'e'},
        {KCI_HEADER_ERROR, "", '5'},    {KCI_HEADER_REPLY_TO, "", 'f'},
    };
    for (size_t index = 0; index < sizeof rows / sizeof rows[0]; index++) {
        natsMsg *message = message_with_core();
        set_long(message, rows[index].name, rows[index].prefix, rows[index].fill);
        check_refused(message, rows[index].name, index);
        natsMsg_Destroy(message);
    }
    /* at the bounds: a 128-byte node and a 511-byte message are fine */
    natsMsg *message = message_with_core();
    char node[KC_NODE_BYTES_MAX + 2];
    memset(node, 'n', sizeof node);
    node[KC_NODE_BYTES_MAX] = '\0';
    assert_int_equal(natsMsgHeader_Set(message, KCI_HEADER_NODE, node), NATS_OK);
    char error[KC_ERROR_MESSAGE_BYTES_MAX + 8];
    strcpy(error, "7 ");
    memset(error + 2, 'e', KC_ERROR_MESSAGE_BYTES_MAX - 1);
    error[2 + KC_ERROR_MESSAGE_BYTES_MAX - 1] = '\0';
    assert_int_equal(natsMsgHeader_Set(message, KCI_HEADER_ERROR, error), NATS_OK);
    kci_kc_headers out;
    assert_int_equal(kci_headers_read(message, true, &out), KC_OK);
    assert_int_equal(strlen(out.node), KC_NODE_BYTES_MAX);
    assert_int_equal(strlen(out.error_message), KC_ERROR_MESSAGE_BYTES_MAX - 1);
    node[KC_NODE_BYTES_MAX] = 'n';
    node[KC_NODE_BYTES_MAX + 1] = '\0';
    assert_int_equal(natsMsgHeader_Set(message, KCI_HEADER_NODE, node), NATS_OK);
    check_refused(message, KCI_HEADER_NODE, 0);
    natsMsg_Destroy(message);
}

static void test_duplicate_and_null_refused(void **state)
{
    (void)state;
    natsMsg *message = message_with_core();
    assert_int_equal(natsMsgHeader_Add(message, KCI_HEADER_ID, id_good), NATS_OK);
    check_refused(message, KCI_HEADER_ID, 0);
    assert_non_null(strstr(kc_last_error(), "given 2 times"));
    natsMsg_Destroy(message);

    message = message_with_core();
    assert_int_equal(natsMsgHeader_Add(message, KCI_HEADER_TYPE, "a"), NATS_OK);
    assert_int_equal(natsMsgHeader_Add(message, KCI_HEADER_TYPE, "b"), NATS_OK);
    check_refused(message, KCI_HEADER_TYPE, 0);
    natsMsg_Destroy(message);

    message = message_with_core();
    assert_int_equal(natsMsgHeader_Set(message, KCI_HEADER_TYPE, NULL), NATS_OK);
    check_refused(message, KCI_HEADER_TYPE, 0);
    assert_non_null(strstr(kc_last_error(), "empty"));
    natsMsg_Destroy(message);
}

static void test_error_text(void **state)
{
    (void)state;
    natsMsg *message = message_with_core();
    assert_int_equal(natsMsgHeader_Set(message, KCI_HEADER_TS, "12x\x01\"\\"), NATS_OK);
    kci_kc_headers out;
    assert_int_equal(kci_headers_read(message, false, &out), KC_ERR_BAD_HEADER);
    assert_string_equal(kc_last_error(),
                        "Kc-Ts: not \"<wall ms>.<counter>\": \"12x\\x01\\x22\\x5c\"");
    set_long(message, KCI_HEADER_TS, "", 'z');
    assert_int_equal(kci_headers_read(message, false, &out), KC_ERR_BAD_HEADER);
    assert_non_null(strstr(kc_last_error(), "zzz\"..."));
    assert_true(strlen(kc_last_error()) < 128);
    natsMsg_Destroy(message);
}

static void test_require_core(void **state)
{
    (void)state;
    kci_kc_headers out;
    natsMsg *message = message_new(); /* a plain NATS request: no headers */
    assert_int_equal(kci_headers_read(message, false, &out), KC_OK);
    assert_string_equal(out.id, "");
    assert_string_equal(out.node, "");
    assert_int_equal(out.deadline_ms, 0);
    assert_int_equal(kci_headers_read(message, true, &out), KC_ERR_BAD_HEADER);
    assert_string_equal(kc_last_error(), "Kc-Id: missing");

    assert_int_equal(natsMsgHeader_Set(message, KCI_HEADER_TYPE, "echo"), NATS_OK);
    assert_int_equal(natsMsgHeader_Set(message, KCI_HEADER_DEADLINE, "1700000001000"), NATS_OK);
    assert_int_equal(kci_headers_read(message, false, &out), KC_OK);
    assert_string_equal(out.type, "echo");
    assert_int_equal(out.deadline_ms, 1700000001000);

    const char *core[] = {KCI_HEADER_ID, KCI_HEADER_TS, KCI_HEADER_NODE};
    for (size_t missing = 0; missing < 3; missing++) {
        natsMsg *partial = message_with_core();
        assert_int_equal(natsMsgHeader_Delete(partial, core[missing]), NATS_OK);
        assert_int_equal(kci_headers_read(partial, false, &out), KC_OK);
        assert_int_equal(kci_headers_read(partial, true, &out), KC_ERR_BAD_HEADER);
        char expected[64];
        snprintf(expected, sizeof expected, "%s: missing", core[missing]);
        assert_string_equal(kc_last_error(), expected);
        natsMsg_Destroy(partial);
    }
    /* other headers are none of our business */
    assert_int_equal(natsMsgHeader_Set(message, "X-Trace", "a.b.c"), NATS_OK);
    assert_int_equal(natsMsgHeader_Set(message, "kc-id", "junk"), NATS_OK);
    assert_int_equal(kci_headers_read(message, false, &out), KC_OK);
    assert_int_equal(kci_headers_read(NULL, false, &out), KC_ERR_INVALID_ARGUMENT);
    natsMsg_Destroy(message);
}

static void test_canonical_forms(void **state)
{
    (void)state;
    natsMsg *message = message_with_core();
    assert_int_equal(
        natsMsgHeader_Set(message, KCI_HEADER_ID, "017F22E2-79B0-7CC3-98C4-DC0C0C07398F"), NATS_OK);
    assert_int_equal(natsMsgHeader_Set(message, KCI_HEADER_ERROR, "503"), NATS_OK);
    assert_int_equal(natsMsgHeader_Set(message, KCI_HEADER_NODE, "\xc3\xa9t\xc3\xa9-1_$"), NATS_OK);
    kci_kc_headers out;
    assert_int_equal(kci_headers_read(message, true, &out), KC_OK);
    assert_string_equal(out.id, id_good);
    assert_int_equal(out.error_code, 503);
    assert_string_equal(out.error_message, "");
    assert_string_equal(out.node, "\xc3\xa9t\xc3\xa9-1_$");
    assert_int_equal(out.timestamp.wall_ms, 1700000000000);
    assert_int_equal(out.timestamp.counter, 3);
    natsMsg_Destroy(message);
}

static void test_observe(void **state)
{
    (void)state;
    mock_clock clock = {.now_ms = 1700000000000 - 10};
    kci_hlc hlc;
    kci_hlc_init(&hlc, mock_clock_read, &clock, 100);
    kci_kc_headers headers = {0};
    kci_hlc_timestamp local;
    assert_int_equal(kci_headers_observe(&hlc, &headers, &local), KC_OK); /* no Kc-Ts */
    assert_int_equal(local.wall_ms, clock.now_ms);
    assert_int_equal(local.counter, 0);
    strcpy(headers.ts, ts_good);
    assert_true(kci_hlc_parse(ts_good, strlen(ts_good), &headers.timestamp));
    assert_int_equal(kci_headers_observe(&hlc, &headers, &local), KC_OK);
    assert_int_equal(local.wall_ms, 1700000000000);
    assert_int_equal(local.counter, 4);
    headers.timestamp.wall_ms += 1000; /* too far ahead */
    assert_int_equal(kci_headers_observe(&hlc, &headers, NULL), KC_ERR_BAD_HEADER);
    assert_int_equal(hlc.last.wall_ms, 1700000000000);
    kci_hlc_destroy(&hlc);
}

static void test_token_valid(void **state)
{
    (void)state;
    const char *valid[] = {"a", "node-1", "echo_v2", "$SYS", "\xc3\xa9t\xc3\xa9", "a:b", "#"};
    const char *invalid[] = {"",    "a.b", ".",   "*",  ">",  "a*",    "a>",
                             "a b", " ",   "a\t", "\r", "\n", "a\x01", "\x7f"};
    for (size_t index = 0; index < sizeof valid / sizeof valid[0]; index++)
        assert_true(kci_token_valid(valid[index]));
    for (size_t index = 0; index < sizeof invalid / sizeof invalid[0]; index++)
        assert_false(kci_token_valid(invalid[index]));
    assert_false(kci_token_valid(NULL));
    char token[KCI_TOKEN_BYTES_MAX + 2];
    memset(token, 't', sizeof token);
    token[KCI_TOKEN_BYTES_MAX] = '\0';
    assert_true(kci_token_valid(token));
    token[KCI_TOKEN_BYTES_MAX] = 't';
    token[KCI_TOKEN_BYTES_MAX + 1] = '\0';
    assert_false(kci_token_valid(token));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_stamp_read_round_trip),
        cmocka_unit_test(test_stamp_process_clock),
        cmocka_unit_test(test_stamp_error_message),
        cmocka_unit_test(test_stamp_refuses_bad_fields),
        cmocka_unit_test(test_malformed_refused),
        cmocka_unit_test(test_oversized_refused),
        cmocka_unit_test(test_duplicate_and_null_refused),
        cmocka_unit_test(test_error_text),
        cmocka_unit_test(test_require_core),
        cmocka_unit_test(test_canonical_forms),
        cmocka_unit_test(test_observe),
        cmocka_unit_test(test_token_valid),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
