/* fuzz_headers.c - libFuzzer target for the identifier, clock and header
 * parsers: kci_uuid_parse, kci_hlc_parse and kci_headers_read.
 *
 * Input: a header block like the one on the wire, "NATS/1.0\r\n" (optional)
 * then lines "Key: Value" cut at '\n' (a '\r' before it is dropped, as is one
 * space after the colon, so "K:  V" keeps a leading space). Each pair goes
 * onto a fresh natsMsg with natsMsgHeader_Add, so repeated keys become
 * duplicates. nats.c offers no public call that parses a raw header block, so
 * the split is done here; a NUL in a line ends that key or value early.
 *
 * Checks:
 *  - the whole input and every value, each copied into a buffer of exactly
 *    its size (a read past the length is an ASan report), through
 *    kci_uuid_parse: what parses formats back to the same text in lower case
 *    and parses again to the same bytes; and kci_hlc_parse: what parses
 *    formats back to exactly the input (the parser accepts only the
 *    canonical form);
 *  - kci_headers_read with require_core off and on: the result is KC_OK,
 *    KC_ERR_BAD_HEADER or KC_ERR_NOMEM; a refusal names a "Kc-" header in
 *    kc_last_error() and leaves the output zeroed; on with KC_OK implies off
 *    with KC_OK and the same output;
 *  - what reads is a valid receive event for a clock fixed at
 *    1700000000000 ms: refused exactly when Kc-Ts is past the drift bound
 *    (clock unchanged), else after the message and the previous event;
 *  - what reads with a node stamps onto a new message and reads back (with
 *    require_core) to the same fields: the writer and reader agree. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <nats/nats.h>

#include "service/headers.h"
#include "service/hlc.h"
#include "service/uuid.h"

enum {
    FUZZ_LINES_MAX = 32,
};

/* The receive side's clock: fixed wall time, so whether a Kc-Ts is within
 * the drift bound depends on the input only. */
static const int64_t fuzz_now_ms = 1700000000000;
static kci_hlc fuzz_clock;

#define FUZZ_CHECK(condition)                                                                      \
    do {                                                                                           \
        if (!(condition)) abort();                                                                 \
    } while (0)

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int64_t fuzz_clock_read(void *context)
{
    (void)context;
    return fuzz_now_ms;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    FUZZ_CHECK(nats_Open(-1) == NATS_OK);
    kci_hlc_init(&fuzz_clock, fuzz_clock_read, NULL, 0);
    return 0;
}

static char lower(char c)
{
    if (c >= 'A' && c <= 'Z') return (char)(c - 'A' + 'a');
    return c;
}

static void fuzz_uuid(const char *text, size_t text_len)
{
    kci_uuid uuid, again;
    if (!kci_uuid_parse(text, text_len, &uuid)) return;
    FUZZ_CHECK(text_len == KC_UUID_TEXT_BYTES);
    char formatted[KC_UUID_TEXT_BYTES + 1];
    kci_uuid_format(&uuid, formatted);
    for (size_t index = 0; index < text_len; index++)
        FUZZ_CHECK(formatted[index] == lower(text[index]));
    FUZZ_CHECK(kci_uuid_parse(formatted, KC_UUID_TEXT_BYTES, &again));
    FUZZ_CHECK(kci_uuid_compare(&uuid, &again) == 0);
}

static void fuzz_hlc(const char *text, size_t text_len)
{
    kci_hlc_timestamp timestamp;
    if (!kci_hlc_parse(text, text_len, &timestamp)) return;
    char formatted[KCI_HLC_TEXT_BYTES_MAX];
    size_t formatted_len = kci_hlc_format(&timestamp, formatted);
    FUZZ_CHECK(formatted_len == text_len && memcmp(formatted, text, text_len) == 0);
}

/* Both parsers on an exact-size copy of bytes. */
static void fuzz_value_parsers(const uint8_t *bytes, size_t length)
{
    char *copy = malloc(length > 0 ? length : 1);
    FUZZ_CHECK(copy != NULL);
    if (length > 0) memcpy(copy, bytes, length);
    fuzz_uuid(copy, length);
    fuzz_hlc(copy, length);
    free(copy);
}

/* Adds the "Key: Value" line [line, line + length) to message. */
static void fuzz_add_line(natsMsg *message, const uint8_t *line, size_t length)
{
    if (length > 0 && line[length - 1] == '\r') length--;
    const uint8_t *colon = memchr(line, ':', length);
    if (colon == NULL || colon == line) return;
    size_t key_len = (size_t)(colon - line);
    const uint8_t *value = colon + 1;
    size_t value_len = length - key_len - 1;
    if (value_len > 0 && value[0] == ' ') {
        value++;
        value_len--;
    }
    fuzz_value_parsers(value, value_len);
    char *key_text = strndup((const char *)line, key_len);
    char *value_text = strndup((const char *)value, value_len);
    FUZZ_CHECK(key_text != NULL && value_text != NULL);
    if (key_text[0] != '\0') (void)natsMsgHeader_Add(message, key_text, value_text);
    free(key_text);
    free(value_text);
}

static natsMsg *fuzz_message(const uint8_t *data, size_t size)
{
    natsMsg *message = NULL;
    FUZZ_CHECK(natsMsg_Create(&message, "kc.req.fuzz", NULL, NULL, 0) == NATS_OK);
    static const char preamble[] = "NATS/1.0\r\n";
    if (size >= sizeof preamble - 1 && memcmp(data, preamble, sizeof preamble - 1) == 0) {
        data += sizeof preamble - 1;
        size -= sizeof preamble - 1;
    }
    size_t start = 0, line_count = 0;
    for (size_t index = 0; index <= size && line_count < FUZZ_LINES_MAX; index++) {
        if (index < size && data[index] != '\n') continue;
        fuzz_add_line(message, data + start, index - start);
        line_count++;
        start = index + 1;
    }
    return message;
}

static bool headers_equal(const kci_kc_headers *a, const kci_kc_headers *b)
{
    return strcmp(a->id, b->id) == 0 && strcmp(a->ts, b->ts) == 0 &&
           kci_hlc_compare(&a->timestamp, &b->timestamp) == 0 && strcmp(a->node, b->node) == 0 &&
           strcmp(a->type, b->type) == 0 && a->deadline_ms == b->deadline_ms &&
           strcmp(a->reply_to, b->reply_to) == 0 && a->error_code == b->error_code &&
           strcmp(a->error_message, b->error_message) == 0 && strcmp(a->pay, b->pay) == 0;
}

static bool headers_empty(const kci_kc_headers *headers)
{
    static const kci_kc_headers zero;
    return headers_equal(headers, &zero);
}

/* The fields read, stamped onto a new message and read back. */
static void fuzz_restamp(const kci_kc_headers *read)
{
    kci_kc_headers fields = {0}, back;
    memcpy(fields.node, read->node, sizeof fields.node);
    memcpy(fields.type, read->type, sizeof fields.type);
    fields.deadline_ms = read->deadline_ms;
    memcpy(fields.reply_to, read->reply_to, sizeof fields.reply_to);
    fields.error_code = read->error_code;
    memcpy(fields.error_message, read->error_message, sizeof fields.error_message);
    memcpy(fields.pay, read->pay, sizeof fields.pay);
    natsMsg *message = NULL;
    FUZZ_CHECK(natsMsg_Create(&message, "kc.req.fuzz", NULL, NULL, 0) == NATS_OK);
    FUZZ_CHECK(kci_headers_stamp(message, &fields) == KC_OK);
    FUZZ_CHECK(kci_headers_read(message, true, &back) == KC_OK);
    FUZZ_CHECK(strcmp(back.id, fields.id) == 0 && strcmp(back.ts, fields.ts) == 0);
    FUZZ_CHECK(strcmp(back.node, read->node) == 0 && strcmp(back.type, read->type) == 0);
    FUZZ_CHECK(back.deadline_ms == read->deadline_ms);
    FUZZ_CHECK(strcmp(back.reply_to, read->reply_to) == 0);
    FUZZ_CHECK(back.error_code == read->error_code);
    FUZZ_CHECK(read->error_code == 0 || strcmp(back.error_message, read->error_message) == 0);
    FUZZ_CHECK(strcmp(back.pay, read->pay) == 0);
    natsMsg_Destroy(message);
}

/* The receive event: refused only past the drift bound, and then the clock
 * is unchanged; otherwise after both the message and the previous event. */
static void fuzz_observe(const kci_kc_headers *read)
{
    kci_hlc_timestamp before = fuzz_clock.last, after;
    kc_err err = kci_headers_observe(&fuzz_clock, read, &after);
    bool too_far =
        read->ts[0] != '\0' && read->timestamp.wall_ms - fuzz_now_ms > fuzz_clock.drift_ms_max;
    FUZZ_CHECK(err == (too_far ? KC_ERR_BAD_HEADER : KC_OK));
    if (err != KC_OK) {
        FUZZ_CHECK(kci_hlc_compare(&fuzz_clock.last, &before) == 0);
        return;
    }
    FUZZ_CHECK(kci_hlc_compare(&after, &before) > 0);
    FUZZ_CHECK(read->ts[0] == '\0' || kci_hlc_compare(&after, &read->timestamp) > 0);
}

static void fuzz_headers(const uint8_t *data, size_t size)
{
    natsMsg *message = fuzz_message(data, size);
    kci_kc_headers loose, strict;
    kc_err loose_err = kci_headers_read(message, false, &loose);
    FUZZ_CHECK(loose_err == KC_OK || loose_err == KC_ERR_BAD_HEADER || loose_err == KC_ERR_NOMEM);
    if (loose_err == KC_ERR_BAD_HEADER)
        FUZZ_CHECK(strncmp(kc_last_error(), "Kc-", 3) == 0 && headers_empty(&loose));
    kc_err strict_err = kci_headers_read(message, true, &strict);
    FUZZ_CHECK(strict_err == KC_OK || strict_err == KC_ERR_BAD_HEADER ||
               strict_err == KC_ERR_NOMEM);
    if (strict_err == KC_ERR_BAD_HEADER)
        FUZZ_CHECK(strncmp(kc_last_error(), "Kc-", 3) == 0 && headers_empty(&strict));
    if (strict_err == KC_OK) {
        FUZZ_CHECK(loose_err == KC_OK && headers_equal(&loose, &strict));
        FUZZ_CHECK(strict.id[0] != '\0' && strict.ts[0] != '\0' && strict.node[0] != '\0');
    }
    if (loose_err == KC_OK) fuzz_observe(&loose);
    if (loose_err == KC_OK && loose.node[0] != '\0') fuzz_restamp(&loose);
    natsMsg_Destroy(message);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_value_parsers(data, size);
    fuzz_headers(data, size);
    return 0;
}
