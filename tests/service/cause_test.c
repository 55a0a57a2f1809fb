/* cause_test.c - the Kc-Cause header (service/cause.h): a table of values
 * that parse (one to eight ids, either case, made canonical) and a table
 * that must fail (empty, spaces, a trailing or doubled comma, a cut id,
 * Nil and Max, a duplicate, nine ids, bad hex, dashes misplaced); every
 * valid value fed a byte at a time and split at every point gives the same
 * ids; append; and the headers: a reply stamped with Kc-Reply-To carries it
 * in Kc-Cause, a caller's cause is kept and read back, and a bad cause is
 * refused when stamping and when reading. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "service/cause.h"
#include "service/headers.h"

#define ID_A "017f22e2-79b0-7cc3-98c4-dc0c0c07398f"
#define ID_B "0190b6e2-1234-7abc-8def-0123456789ab"
#define ID_C "6ba7b810-9dad-41d1-80b4-00c04fd430c8"

static const char *const valid_values[] = {
    ID_A,
    ID_A "," ID_B,
    ID_A "," ID_B "," ID_C,
    "017F22E2-79B0-7CC3-98C4-DC0C0C07398F", /* upper case: canonical is lower */
    "01000000-0000-7000-8000-000000000001,01000000-0000-7000-8000-000000000002,"
    "01000000-0000-7000-8000-000000000003,01000000-0000-7000-8000-000000000004,"
    "01000000-0000-7000-8000-000000000005,01000000-0000-7000-8000-000000000006,"
    "01000000-0000-7000-8000-000000000007,01000000-0000-7000-8000-000000000008",
};
static const size_t valid_counts[] = {1, 2, 3, 1, 8};

static const char *const invalid_values[] = {
    "",
    ",",
    ID_A ",",
    "," ID_A,
    ID_A ",," ID_B,
    ID_A ", " ID_B,
    " " ID_A,
    ID_A " ",
    "017f22e2-79b0-7cc3-98c4-dc0c0c07398",   /* cut */
    "017f22e2-79b0-7cc3-98c4-dc0c0c07398ff", /* one hex too many */
    "017f22e279b0-7cc3-98c4-dc0c0c07398f-",  /* dash misplaced */
    "017f22g2-79b0-7cc3-98c4-dc0c0c07398f",  /* not hex */
    "00000000-0000-0000-0000-000000000000",  /* Nil */
    "ffffffff-ffff-ffff-ffff-ffffffffffff",  /* Max */
    ID_A "," ID_A,
    ID_A ",017F22E2-79B0-7CC3-98C4-DC0C0C07398F", /* the same id in another case */
    "01000000-0000-7000-8000-000000000001,01000000-0000-7000-8000-000000000002,"
    "01000000-0000-7000-8000-000000000003,01000000-0000-7000-8000-000000000004,"
    "01000000-0000-7000-8000-000000000005,01000000-0000-7000-8000-000000000006,"
    "01000000-0000-7000-8000-000000000007,01000000-0000-7000-8000-000000000008,"
    "01000000-0000-7000-8000-000000000009", /* nine */
    ID_A ";" ID_B,
};

static void test_valid_table(void **state)
{
    (void)state;
    for (size_t row = 0; row < sizeof valid_values / sizeof valid_values[0]; row++) {
        kci_uuid ids[KCI_CAUSE_IDS_MAX];
        size_t count = 0;
        const char *problem = NULL;
        assert_true(
            kci_cause_parse(valid_values[row], strlen(valid_values[row]), ids, &count, &problem));
        assert_int_equal(count, valid_counts[row]);
        char text[KCI_CAUSE_TEXT_BYTES_MAX];
        kci_cause_format(ids, count, text);
        assert_int_equal(strlen(text), strlen(valid_values[row]));
        assert_true(strcasecmp(text, valid_values[row]) == 0);
        for (const char *cursor = text; *cursor != '\0'; cursor++)
            assert_false(*cursor >= 'A' && *cursor <= 'F'); /* canonical: lower case */
    }
}

static void test_invalid_table(void **state)
{
    (void)state;
    for (size_t row = 0; row < sizeof invalid_values / sizeof invalid_values[0]; row++) {
        kci_uuid ids[KCI_CAUSE_IDS_MAX];
        size_t count = 99;
        const char *problem = NULL;
        if (kci_cause_parse(invalid_values[row], strlen(invalid_values[row]), ids, &count,
                            &problem))
            fail_msg("accepted \"%s\"", invalid_values[row]);
        assert_non_null(problem);
        assert_int_equal(count, 0);
    }
}

/* Every split point, and a byte at a time, agree with the whole value. */
static void test_splits_and_bytes(void **state)
{
    (void)state;
    for (size_t row = 0; row < sizeof valid_values / sizeof valid_values[0]; row++) {
        const char *value = valid_values[row];
        size_t length = strlen(value);
        for (size_t split = 0; split <= length; split++) {
            kci_cause_parser parser;
            kci_cause_parser_init(&parser);
            assert_true(kci_cause_parser_feed(&parser, value, split));
            assert_true(kci_cause_parser_feed(&parser, value + split, length - split));
            assert_true(kci_cause_parser_finish(&parser));
            assert_int_equal(parser.id_count, valid_counts[row]);
        }
        kci_cause_parser parser;
        kci_cause_parser_init(&parser);
        for (size_t index = 0; index < length; index++) {
            assert_true(kci_cause_parser_feed(&parser, value + index, 1));
            /* an id completes exactly at its 36th byte */
            bool id_ended = (index + 1) % (KC_UUID_TEXT_BYTES + 1) == KC_UUID_TEXT_BYTES;
            assert_int_equal(parser.state, id_ended ? KCI_CAUSE_AFTER_ID : KCI_CAUSE_ID);
        }
        assert_true(kci_cause_parser_finish(&parser));
    }
    for (size_t row = 0; row < sizeof invalid_values / sizeof invalid_values[0]; row++) {
        const char *value = invalid_values[row];
        kci_cause_parser parser;
        kci_cause_parser_init(&parser);
        bool ok = true;
        for (size_t index = 0; ok && value[index] != '\0'; index++)
            ok = kci_cause_parser_feed(&parser, value + index, 1);
        if (ok) ok = kci_cause_parser_finish(&parser);
        assert_false(ok);
        assert_int_equal(parser.state, KCI_CAUSE_ERROR);
        assert_false(kci_cause_parser_feed(&parser, ",", 1)); /* an error is final */
    }
}

static void test_append(void **state)
{
    (void)state;
    char cause[KCI_CAUSE_TEXT_BYTES_MAX] = "";
    assert_true(kci_cause_append(cause, ID_A));
    assert_string_equal(cause, ID_A);
    assert_true(kci_cause_append(cause, "0190B6E2-1234-7ABC-8DEF-0123456789AB"));
    assert_string_equal(cause, ID_A "," ID_B);
    assert_true(kci_cause_append(cause, ID_A)); /* there already: unchanged */
    assert_string_equal(cause, ID_A "," ID_B);
    assert_false(kci_cause_append(cause, "00000000-0000-0000-0000-000000000000"));
    assert_false(kci_cause_append(cause, "not an id"));
    char full[KCI_CAUSE_TEXT_BYTES_MAX];
    snprintf(full, sizeof full, "%s", valid_values[4]);
    assert_false(kci_cause_append(full, ID_A)); /* eight already */
}

static natsMsg *message_new(void)
{
    natsMsg *message = NULL;
    assert_int_equal(natsMsg_Create(&message, "_INBOX.x", NULL, "hi", 2), NATS_OK);
    return message;
}

static void test_headers(void **state)
{
    (void)state;
    assert_int_equal(nats_Open(-1), NATS_OK);
    /* a reply names its request in Kc-Cause too */
    natsMsg *message = message_new();
    kci_kc_headers headers;
    kci_headers_clear(&headers);
    snprintf(headers.node, sizeof headers.node, "n1");
    snprintf(headers.reply_to, sizeof headers.reply_to, "%s", ID_B);
    snprintf(headers.cause, sizeof headers.cause, "%s", ID_A);
    assert_int_equal(kci_headers_stamp(message, &headers), KC_OK);
    const char *value = NULL;
    assert_int_equal(natsMsgHeader_Get(message, KCI_HEADER_CAUSE, &value), NATS_OK);
    assert_string_equal(value, ID_A "," ID_B);
    kci_kc_headers read;
    assert_int_equal(kci_headers_read(message, true, &read), KC_OK);
    assert_string_equal(read.cause, ID_A "," ID_B);
    natsMsg_Destroy(message);
    /* a bad cause: refused when stamping, and when reading */
    message = message_new();
    kci_headers_clear(&headers);
    snprintf(headers.node, sizeof headers.node, "n1");
    snprintf(headers.cause, sizeof headers.cause, "%s", ID_A ",");
    assert_int_equal(kci_headers_stamp(message, &headers), KC_ERR_INVALID_ARGUMENT);
    kci_headers_clear(&headers);
    snprintf(headers.node, sizeof headers.node, "n1");
    assert_int_equal(kci_headers_stamp(message, &headers), KC_OK);
    assert_int_equal(natsMsgHeader_Get(message, KCI_HEADER_CAUSE, &value), NATS_NOT_FOUND);
    assert_int_equal(natsMsgHeader_Set(message, KCI_HEADER_CAUSE, ID_A " " ID_B), NATS_OK);
    assert_int_equal(kci_headers_read(message, true, &read), KC_ERR_BAD_HEADER);
    assert_non_null(strstr(kc_last_error(), "Kc-Cause"));
    natsMsg_Destroy(message);
    nats_Close();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_table),      cmocka_unit_test(test_invalid_table),
        cmocka_unit_test(test_splits_and_bytes), cmocka_unit_test(test_append),
        cmocka_unit_test(test_headers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
