/* seed_line.c - the seed-format line parser (see seed_line.h for the
 * grammar). One switch per byte for the short header; the payload, which is
 * most of a line, is copied in runs up to the next LF (memchr).
 *
 * Errors: the first error of a line is kept and the state moves to
 * SKIP_LINE, which stores nothing, so a hostile line of any length costs no
 * memory; the error is reported when the LF arrives. */
#include "seed_line.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

static const char *const error_texts[] = {
    [KCI_SEED_ERR_NONE] = "no error",
    [KCI_SEED_ERR_EMPTY_LINE] = "empty line",
    [KCI_SEED_ERR_NOT_REQUEST] = "expected REQUEST#<client>#<timestamp>#<payload>",
    [KCI_SEED_ERR_EMPTY_CLIENT] = "empty client",
    [KCI_SEED_ERR_BAD_CLIENT] = "client holds a space or control byte",
    [KCI_SEED_ERR_CLIENT_TOO_LONG] = "client longer than 256 bytes",
    [KCI_SEED_ERR_NO_TIMESTAMP] = "missing #<timestamp>#<payload>",
    [KCI_SEED_ERR_EMPTY_TIMESTAMP] = "empty timestamp",
    [KCI_SEED_ERR_BAD_TIMESTAMP] = "timestamp holds a space or control byte",
    [KCI_SEED_ERR_TIMESTAMP_TOO_LONG] = "timestamp longer than 256 bytes",
    [KCI_SEED_ERR_NO_PAYLOAD] = "missing #<payload>",
    [KCI_SEED_ERR_TOO_LONG] = "line too long",
    [KCI_SEED_ERR_NO_MEMORY] = "out of memory",
    [KCI_SEED_ERR_INCOMPLETE] = "incomplete line: the input ended without a newline",
};

enum {
    ERROR_TEXT_COUNT = sizeof(error_texts) / sizeof(error_texts[0]),
};

/* The texts name the field bound; keep them in step. */
_Static_assert(KCI_SEED_FIELD_BYTES_MAX == 256, "update the *_TOO_LONG texts");

const char *kci_seed_error_text(kci_seed_error error)
{
    if ((int)error < 0 || (int)error >= ERROR_TEXT_COUNT) return "unknown error";
    return error_texts[error];
}

void kci_seed_line_init(kci_seed_line_parser *parser, size_t line_bytes_max)
{
    assert(parser != NULL);
    memset(parser, 0, sizeof *parser);
    if (line_bytes_max == 0) line_bytes_max = KCI_SEED_LINE_BYTES_MAX_DEFAULT;
    if (line_bytes_max < KCI_SEED_LINE_BYTES_MIN) line_bytes_max = KCI_SEED_LINE_BYTES_MIN;
    parser->line_bytes_max = line_bytes_max;
    parser->state = KCI_SEED_OP_START;
}

void kci_seed_line_free(kci_seed_line_parser *parser)
{
    if (parser == NULL) return;
    free(parser->buffer);
    parser->buffer = NULL;
    parser->buffer_capacity = 0;
    parser->buffer_length = 0;
}

static void reset(kci_seed_line_parser *parser)
{
    if (parser->buffer_capacity > KCI_SEED_BUFFER_BYTES_KEEP) kci_seed_line_free(parser);
    parser->state = KCI_SEED_OP_START;
    parser->state_before_cr = KCI_SEED_OP_START;
    parser->error = KCI_SEED_ERR_NONE;
    parser->line_bytes = 0;
    parser->client_length = 0;
    parser->timestamp_length = 0;
    parser->buffer_length = 0;
}

static void fail(kci_seed_line_parser *parser, kci_seed_error error)
{
    assert(error != KCI_SEED_ERR_NONE);
    if (parser->error == KCI_SEED_ERR_NONE) parser->error = error;
    parser->state = KCI_SEED_SKIP_LINE;
}

/* Room for `more` bytes; false (and the parser failed) if it cannot grow. */
static bool reserve(kci_seed_line_parser *parser, size_t more)
{
    size_t needed = parser->buffer_length + more;
    if (needed <= parser->buffer_capacity) return true;
    size_t capacity_max = parser->line_bytes_max + 1; /* + the CR of a CR LF */
    assert(needed <= capacity_max);
    size_t capacity =
        parser->buffer_capacity > 0 ? parser->buffer_capacity : KCI_SEED_BUFFER_BYTES_INITIAL;
    while (capacity < needed)
        capacity *= 2;
    if (capacity > capacity_max) capacity = capacity_max;
    uint8_t *buffer = realloc(parser->buffer, capacity);
    if (buffer == NULL) {
        fail(parser, KCI_SEED_ERR_NO_MEMORY);
        return false;
    }
    parser->buffer = buffer;
    parser->buffer_capacity = capacity;
    return true;
}

static void store(kci_seed_line_parser *parser, const uint8_t *bytes, size_t size)
{
    if (size == 0 || !reserve(parser, size)) return;
    memcpy(parser->buffer + parser->buffer_length, bytes, size);
    parser->buffer_length += size;
}

/* A space or control byte: not part of a token. */
static bool token_byte(uint8_t byte)
{
    return byte > ' ' && byte != 0x7f && byte != '#';
}

/* One byte of <client> or <timestamp>; `next` is the state after its '#'. */
static void step_field(kci_seed_line_parser *parser, uint8_t byte, size_t *field_length,
                       kci_seed_state next, kci_seed_error empty, kci_seed_error bad,
                       kci_seed_error too_long)
{
    if (byte == '#') {
        if (*field_length == 0) {
            fail(parser, empty);
            return;
        }
        parser->state = next;
        return;
    }
    if (byte == '\r') {
        parser->state_before_cr = parser->state;
        parser->state = KCI_SEED_HEADER_CR;
        return;
    }
    if (!token_byte(byte)) {
        fail(parser, bad);
        return;
    }
    if (*field_length == KCI_SEED_FIELD_BYTES_MAX) {
        fail(parser, too_long);
        return;
    }
    store(parser, &byte, 1);
    if (parser->state != KCI_SEED_SKIP_LINE) (*field_length)++;
}

/* "REQUEST#", one letter at a time: the state after `state` on `expected`. */
static void step_keyword(kci_seed_line_parser *parser, uint8_t byte, uint8_t expected,
                         kci_seed_state next)
{
    if (byte == expected) {
        parser->state = next;
    } else if (byte == '\r') {
        parser->state_before_cr = parser->state;
        parser->state = KCI_SEED_HEADER_CR;
    } else {
        fail(parser, KCI_SEED_ERR_NOT_REQUEST);
    }
}

/* A byte other than LF after a CR in the header: a control byte where it
 * does not belong. */
static void step_after_cr(kci_seed_line_parser *parser)
{
    switch (parser->state_before_cr) {
    case KCI_SEED_CLIENT_ARG: fail(parser, KCI_SEED_ERR_BAD_CLIENT); break;
    case KCI_SEED_TIMESTAMP_ARG: fail(parser, KCI_SEED_ERR_BAD_TIMESTAMP); break;
    default: fail(parser, KCI_SEED_ERR_NOT_REQUEST); break;
    }
}

/* One byte that is not LF, outside the payload. */
static void step(kci_seed_line_parser *parser, uint8_t byte)
{
    parser->line_bytes++;
    if (parser->state == KCI_SEED_SKIP_LINE) return;
    if (parser->line_bytes > parser->line_bytes_max + 1) {
        fail(parser, KCI_SEED_ERR_TOO_LONG);
        return;
    }
    switch (parser->state) {
    case KCI_SEED_OP_START: step_keyword(parser, byte, 'R', KCI_SEED_OP_R); break;
    case KCI_SEED_OP_R: step_keyword(parser, byte, 'E', KCI_SEED_OP_RE); break;
    case KCI_SEED_OP_RE: step_keyword(parser, byte, 'Q', KCI_SEED_OP_REQ); break;
    case KCI_SEED_OP_REQ: step_keyword(parser, byte, 'U', KCI_SEED_OP_REQU); break;
    case KCI_SEED_OP_REQU: step_keyword(parser, byte, 'E', KCI_SEED_OP_REQUE); break;
    case KCI_SEED_OP_REQUE: step_keyword(parser, byte, 'S', KCI_SEED_OP_REQUES); break;
    case KCI_SEED_OP_REQUES: step_keyword(parser, byte, 'T', KCI_SEED_OP_REQUEST); break;
    case KCI_SEED_OP_REQUEST: step_keyword(parser, byte, '#', KCI_SEED_CLIENT_ARG); break;
    case KCI_SEED_CLIENT_ARG:
        step_field(parser, byte, &parser->client_length, KCI_SEED_TIMESTAMP_ARG,
                   KCI_SEED_ERR_EMPTY_CLIENT, KCI_SEED_ERR_BAD_CLIENT,
                   KCI_SEED_ERR_CLIENT_TOO_LONG);
        break;
    case KCI_SEED_TIMESTAMP_ARG:
        step_field(parser, byte, &parser->timestamp_length, KCI_SEED_PAYLOAD,
                   KCI_SEED_ERR_EMPTY_TIMESTAMP, KCI_SEED_ERR_BAD_TIMESTAMP,
                   KCI_SEED_ERR_TIMESTAMP_TOO_LONG);
        break;
    case KCI_SEED_HEADER_CR: step_after_cr(parser); break;
    case KCI_SEED_PAYLOAD: store(parser, &byte, 1); break;
    case KCI_SEED_SKIP_LINE:
    case KCI_SEED_LINE_DONE: assert(!"no byte is stepped in this state"); break;
    }
}

/* A run of payload bytes without LF. */
static void step_payload(kci_seed_line_parser *parser, const uint8_t *bytes, size_t size)
{
    parser->line_bytes += size;
    if (parser->line_bytes > parser->line_bytes_max + 1) {
        fail(parser, KCI_SEED_ERR_TOO_LONG);
        return;
    }
    store(parser, bytes, size);
}

/* Why a line that ended (LF) in `state` is malformed. */
static kci_seed_error ended_error(const kci_seed_line_parser *parser, kci_seed_state state)
{
    switch (state) {
    case KCI_SEED_OP_START: return KCI_SEED_ERR_EMPTY_LINE;
    case KCI_SEED_CLIENT_ARG:
        return parser->client_length == 0 ? KCI_SEED_ERR_EMPTY_CLIENT : KCI_SEED_ERR_NO_TIMESTAMP;
    case KCI_SEED_TIMESTAMP_ARG:
        return parser->timestamp_length == 0 ? KCI_SEED_ERR_EMPTY_TIMESTAMP
                                             : KCI_SEED_ERR_NO_PAYLOAD;
    default: return KCI_SEED_ERR_NOT_REQUEST;
    }
}

/* The LF: a line, or why not. */
static kci_seed_result end_line(kci_seed_line_parser *parser, kci_seed_line *line_out)
{
    kci_seed_state state = parser->state;
    bool payload_cr = state == KCI_SEED_PAYLOAD && parser->buffer_length > 0 &&
                      parser->buffer[parser->buffer_length - 1] == '\r';
    size_t content_bytes = parser->line_bytes - (payload_cr || state == KCI_SEED_HEADER_CR);
    if (content_bytes > parser->line_bytes_max) fail(parser, KCI_SEED_ERR_TOO_LONG);
    if (state == KCI_SEED_HEADER_CR)
        fail(parser, ended_error(parser, parser->state_before_cr));
    else if (state != KCI_SEED_PAYLOAD && state != KCI_SEED_SKIP_LINE)
        fail(parser, ended_error(parser, state));
    parser->state = KCI_SEED_LINE_DONE;
    if (parser->error != KCI_SEED_ERR_NONE) return KCI_SEED_ERROR;
    if (payload_cr) parser->buffer_length--;
    size_t header_length = parser->client_length + parser->timestamp_length;
    assert(parser->buffer_length >= header_length);
    const char *text = (const char *)parser->buffer;
    *line_out = (kci_seed_line){
        .client = text,
        .client_length = parser->client_length,
        .timestamp = text + parser->client_length,
        .timestamp_length = parser->timestamp_length,
        .payload = parser->buffer + header_length,
        .payload_length = parser->buffer_length - header_length,
    };
    return KCI_SEED_LINE;
}

kci_seed_result kci_seed_line_feed(kci_seed_line_parser *parser, const uint8_t *bytes, size_t size,
                                   size_t *consumed, kci_seed_line *line_out)
{
    assert(parser != NULL && consumed != NULL && line_out != NULL);
    assert(bytes != NULL || size == 0);
    if (parser->state == KCI_SEED_LINE_DONE) reset(parser);
    size_t index = 0;
    while (index < size) {
        if (parser->state == KCI_SEED_PAYLOAD || parser->state == KCI_SEED_SKIP_LINE) {
            const uint8_t *newline = memchr(bytes + index, '\n', size - index);
            size_t run = newline != NULL ? (size_t)(newline - (bytes + index)) : size - index;
            if (parser->state == KCI_SEED_PAYLOAD)
                step_payload(parser, bytes + index, run);
            else
                parser->line_bytes += run;
            index += run;
            if (index == size) break;
        }
        uint8_t byte = bytes[index++];
        if (byte == '\n') {
            *consumed = index;
            return end_line(parser, line_out);
        }
        step(parser, byte);
    }
    *consumed = size;
    return KCI_SEED_MORE;
}

bool kci_seed_line_finish(kci_seed_line_parser *parser)
{
    assert(parser != NULL);
    if (kci_seed_line_idle(parser)) return false;
    parser->error = KCI_SEED_ERR_INCOMPLETE;
    parser->state = KCI_SEED_LINE_DONE;
    return true;
}

bool kci_seed_line_idle(const kci_seed_line_parser *parser)
{
    assert(parser != NULL);
    if (parser->state == KCI_SEED_LINE_DONE) return true;
    return parser->state == KCI_SEED_OP_START && parser->line_bytes == 0;
}
