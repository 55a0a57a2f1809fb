/* record_test.c - the record codec and CRC-32C: known CRC values and the
 * hardware path against the table path, encode/decode round trips of every
 * kind, every proper prefix of a record is NEED_MORE (a byte at a time), a
 * table of records that must be refused (each header field broken in turn),
 * a flip of every single bit of a record is caught, and an all-zero header
 * reads as ZERO (the preallocated end of a segment). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "queue/crc32c.h"
#include "queue/record.h"

static void test_crc32c_known_values(void **state)
{
    (void)state;
    assert_int_equal(kci_crc32c(0, "123456789", 9), 0xE3069283u);
    assert_int_equal(kci_crc32c(0, "", 0), 0);
    uint8_t zeros[32] = {0};
    assert_int_equal(kci_crc32c(0, zeros, sizeof zeros), 0x8A9136AAu); /* RFC 3720 B.4 */
    uint8_t ones[32];
    memset(ones, 0xFF, sizeof ones);
    assert_int_equal(kci_crc32c(0, ones, sizeof ones), 0x62A8AB43u);
    /* Incremental equals one shot. */
    uint32_t split = kci_crc32c(kci_crc32c(0, "1234", 4), "56789", 5);
    assert_int_equal(split, 0xE3069283u);
}

static void test_crc32c_paths_agree(void **state)
{
    (void)state;
    uint8_t bytes[4096];
    for (size_t index = 0; index < sizeof bytes; index++)
        bytes[index] = (uint8_t)(index * 131 + 7);
    for (size_t length = 0; length < 300; length++)
        for (size_t start = 0; start < 9; start++)
            assert_int_equal(kci_crc32c(0, bytes + start, length),
                             kci_crc32c_software(0, bytes + start, length));
}

static kci_record sample(kci_record_kind kind, const char *payload)
{
    kci_record record = {.kind = kind,
                         .ts_wall_ms = 1700000000123,
                         .ts_counter = 7,
                         .attempt = 3,
                         .subject = "kc.req.thumbnail",
                         .subject_length = 16,
                         .reply = "_INBOX.abc.1",
                         .reply_length = 12,
                         .client = "node-7",
                         .client_length = 6,
                         .payload = payload,
                         .payload_length = (uint32_t)strlen(payload)};
    kci_uuid_v7(&record.id);
    return record;
}

static void assert_same(const kci_record *a, const kci_record *b)
{
    assert_int_equal(a->kind, b->kind);
    assert_memory_equal(a->id.bytes, b->id.bytes, 16);
    assert_int_equal(a->ts_wall_ms, b->ts_wall_ms);
    assert_int_equal(a->ts_counter, b->ts_counter);
    assert_int_equal(a->attempt, b->attempt);
    assert_int_equal(a->subject_length, b->subject_length);
    assert_memory_equal(a->subject, b->subject, a->subject_length);
    assert_int_equal(a->reply_length, b->reply_length);
    assert_memory_equal(a->reply, b->reply, a->reply_length);
    assert_int_equal(a->client_length, b->client_length);
    assert_memory_equal(a->client, b->client, a->client_length);
    assert_int_equal(a->payload_length, b->payload_length);
    if (a->payload_length > 0) assert_memory_equal(a->payload, b->payload, a->payload_length);
}

static void test_round_trip_every_kind(void **state)
{
    (void)state;
    uint8_t buffer[1024];
    for (int kind = KCI_RECORD_KIND_FIRST; kind <= KCI_RECORD_KIND_LAST; kind++) {
        kci_record record = sample((kci_record_kind)kind, kind == 2 ? "" : "payload \0 bytes");
        size_t size = kci_record_encode(&record, buffer);
        assert_int_equal(size, kci_record_size(&record));
        kci_record decoded;
        size_t record_bytes = 0;
        assert_int_equal(kci_record_decode(buffer, size, &decoded, &record_bytes), KCI_RECORD_OK);
        assert_int_equal(record_bytes, size);
        assert_same(&record, &decoded);
        /* Trailing bytes belong to the next record. */
        assert_int_equal(kci_record_decode(buffer, sizeof buffer, &decoded, &record_bytes),
                         KCI_RECORD_OK);
        assert_int_equal(record_bytes, size);
    }
}

static void test_every_prefix_needs_more(void **state)
{
    (void)state;
    uint8_t buffer[512];
    kci_record record = sample(KCI_RECORD_REQUEST, "a payload of some length");
    size_t size = kci_record_encode(&record, buffer);
    for (size_t available = 0; available < size; available++) {
        kci_record decoded;
        size_t record_bytes = 0;
        assert_int_equal(kci_record_decode(buffer, available, &decoded, &record_bytes),
                         KCI_RECORD_NEED_MORE);
        if (available >= KCI_RECORD_HEADER_BYTES) assert_int_equal(record_bytes, size);
    }
}

static void test_every_bit_flip_is_caught(void **state)
{
    (void)state;
    uint8_t buffer[512];
    kci_record record = sample(KCI_RECORD_REPLY, "reply bytes");
    size_t size = kci_record_encode(&record, buffer);
    for (size_t bit = 0; bit < size * 8; bit++) {
        buffer[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        kci_record decoded;
        size_t record_bytes = 0;
        kci_record_status status = kci_record_decode(buffer, size, &decoded, &record_bytes);
        /* A flipped length may claim more bytes; never OK. */
        assert_true(status == KCI_RECORD_CORRUPT || status == KCI_RECORD_NEED_MORE);
        buffer[bit / 8] ^= (uint8_t)(1u << (bit % 8));
    }
}

typedef struct breakage {
    const char *what;
    size_t offset;
    uint8_t value;
} breakage;

static void test_refused_headers(void **state)
{
    (void)state;
    static const breakage table[] = {
        {"magic", 0, 'X'},
        {"crc", 4, 0x55},
        {"length", 8, 0x01},
        {"version 0", 12, 0},
        {"version 2", 12, 2},
        {"kind 0", 13, 0},
        {"kind 8", 13, 8},
        {"flags", 14, 1},
        {"subject length", 45, 0x80},
        {"reply length", 47, 0x80},
        {"client length", 49, 0x80},
        {"payload length", 55, 0x7F},
    };
    for (size_t index = 0; index < sizeof table / sizeof table[0]; index++) {
        uint8_t buffer[512];
        kci_record record = sample(KCI_RECORD_REQUEST, "x");
        size_t size = kci_record_encode(&record, buffer);
        uint8_t *byte = &buffer[table[index].offset];
        /* The crc is not known in advance: when it already held the value
         * (once in 256 runs), it is broken by flipping instead. */
        *byte = *byte == table[index].value ? (uint8_t) ~*byte : table[index].value;
        kci_record decoded;
        size_t record_bytes = 0;
        kci_record_status status = kci_record_decode(buffer, size, &decoded, &record_bytes);
        if (status != KCI_RECORD_CORRUPT)
            fail_msg("%s: not refused (%d)", table[index].what, status);
    }
}

static void test_zero_header_is_the_end(void **state)
{
    (void)state;
    uint8_t zeros[KCI_RECORD_HEADER_BYTES] = {0};
    kci_record decoded;
    size_t record_bytes = 0;
    assert_int_equal(kci_record_decode(zeros, sizeof zeros, &decoded, &record_bytes),
                     KCI_RECORD_ZERO);
    zeros[30] = 1; /* not all zero: garbage */
    assert_int_equal(kci_record_decode(zeros, sizeof zeros, &decoded, &record_bytes),
                     KCI_RECORD_CORRUPT);
}

static void test_bounds(void **state)
{
    (void)state;
    kci_record record = sample(KCI_RECORD_REQUEST, "x");
    record.payload_length = KCI_RECORD_PAYLOAD_BYTES_MAX + 1;
    assert_int_equal(kci_record_size(&record), 0);
    record.payload_length = 1;
    record.subject_length = KCI_RECORD_FIELD_BYTES_MAX + 1;
    assert_int_equal(kci_record_size(&record), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_crc32c_known_values),
        cmocka_unit_test(test_crc32c_paths_agree),
        cmocka_unit_test(test_round_trip_every_kind),
        cmocka_unit_test(test_every_prefix_needs_more),
        cmocka_unit_test(test_every_bit_flip_is_caught),
        cmocka_unit_test(test_refused_headers),
        cmocka_unit_test(test_zero_header_is_the_end),
        cmocka_unit_test(test_bounds),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
