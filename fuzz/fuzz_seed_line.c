/* fuzz_seed_line.c - libFuzzer target for the seed-format line parser
 * (src/ingress/seed_line.c).
 *
 * The first input byte picks the line bound (64..319 bytes, so the length
 * errors are reached) and a split seed; the rest is the stream. It is parsed
 * three ways: all at once, one byte at a time, and in pieces whose sizes
 * come from the seed (awkward split points on purpose, as nats-server's
 * fuzzer does). Checks:
 *  - the three give the same sequence of lines and errors, byte for byte;
 *  - every feed consumes at least one byte and never more than it was given;
 *  - a line's client and timestamp are 1..256 bytes without '#', space or
 *    control bytes, and the whole line respects the bound;
 *  - the buffer never grows past the bound + 1;
 *  - every line, written back as REQUEST#c#t#payload\r\n, parses to the
 *    same fields (the grammar and its writer agree). */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ingress/seed_line.h"

enum {
    BOUND_BASE = 64,
    EVENT_OVERHEAD_BYTES = 32, /* per event in a summary: kind, error, lengths */
};

#define FUZZ_CHECK(condition)                                                                      \
    do {                                                                                           \
        if (!(condition)) abort();                                                                 \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef struct summary {
    uint8_t *bytes;
    size_t length;
    size_t capacity;
} summary;

static void summary_add(summary *out, const void *bytes, size_t size)
{
    FUZZ_CHECK(out->length + size <= out->capacity);
    if (size > 0) memcpy(out->bytes + out->length, bytes, size);
    out->length += size;
}

static bool token_valid(const char *token, size_t length)
{
    if (length == 0 || length > KCI_SEED_FIELD_BYTES_MAX) return false;
    for (size_t index = 0; index < length; index++) {
        uint8_t byte = (uint8_t)token[index];
        if (byte <= ' ' || byte == 0x7f || byte == '#') return false;
    }
    return true;
}

static void check_line(const kci_seed_line_parser *parser, const kci_seed_line *line)
{
    FUZZ_CHECK(token_valid(line->client, line->client_length));
    FUZZ_CHECK(token_valid(line->timestamp, line->timestamp_length));
    size_t total = sizeof "REQUEST###" - 1 + line->client_length + line->timestamp_length +
                   line->payload_length;
    FUZZ_CHECK(total <= parser->line_bytes_max);
    FUZZ_CHECK(memchr(line->payload, '\n', line->payload_length) == NULL);
}

static void record_event(summary *out, kci_seed_result result, const kci_seed_line_parser *parser,
                         const kci_seed_line *line)
{
    uint8_t kind = (uint8_t)result;
    summary_add(out, &kind, 1);
    if (result == KCI_SEED_ERROR) {
        uint8_t error = (uint8_t)parser->error;
        summary_add(out, &error, 1);
        return;
    }
    check_line(parser, line);
    size_t lengths[3] = {line->client_length, line->timestamp_length, line->payload_length};
    summary_add(out, lengths, sizeof lengths);
    summary_add(out, line->client, line->client_length);
    summary_add(out, line->timestamp, line->timestamp_length);
    summary_add(out, line->payload, line->payload_length);
}

/* Pieces of 1..256 bytes from a xorshift seed; 0 pieces = all at once;
 * piece_max 1 = one byte at a time. */
static void parse(summary *out, const uint8_t *stream, size_t size, size_t bound, uint32_t seed,
                  size_t piece_max)
{
    kci_seed_line_parser parser;
    kci_seed_line_init(&parser, bound);
    size_t offset = 0;
    while (offset < size) {
        seed ^= seed << 13;
        seed ^= seed >> 17;
        seed ^= seed << 5;
        size_t piece = piece_max == 0 ? size - offset : 1 + seed % piece_max;
        if (piece > size - offset) piece = size - offset;
        size_t piece_offset = 0;
        while (piece_offset < piece) {
            size_t consumed = 0;
            kci_seed_line line;
            kci_seed_result result = kci_seed_line_feed(&parser, stream + offset + piece_offset,
                                                        piece - piece_offset, &consumed, &line);
            FUZZ_CHECK(consumed >= 1 && consumed <= piece - piece_offset);
            FUZZ_CHECK(parser.buffer_capacity <= parser.line_bytes_max + 1);
            piece_offset += consumed;
            if (result != KCI_SEED_MORE) record_event(out, result, &parser, &line);
        }
        offset += piece;
    }
    if (kci_seed_line_finish(&parser)) {
        uint8_t incomplete = 0xff;
        summary_add(out, &incomplete, 1);
    }
    kci_seed_line_free(&parser);
}

/* Each line of a summary, written back, parses to the same fields. */
static void check_round_trip(const summary *reference, size_t bound)
{
    size_t offset = 0;
    while (offset < reference->length) {
        uint8_t kind = reference->bytes[offset++];
        if (kind == 0xff) break;
        if (kind == KCI_SEED_ERROR) {
            offset++;
            continue;
        }
        size_t lengths[3];
        memcpy(lengths, reference->bytes + offset, sizeof lengths);
        offset += sizeof lengths;
        size_t fields = lengths[0] + lengths[1] + lengths[2];
        size_t line_size = sizeof "REQUEST####\r\n" - 2 + fields + 2;
        uint8_t *line = malloc(line_size);
        FUZZ_CHECK(line != NULL);
        const uint8_t *field = reference->bytes + offset;
        size_t used = 0;
        memcpy(line + used, "REQUEST#", 8), used += 8;
        memcpy(line + used, field, lengths[0]), used += lengths[0];
        line[used++] = '#';
        memcpy(line + used, field + lengths[0], lengths[1]), used += lengths[1];
        line[used++] = '#';
        memcpy(line + used, field + lengths[0] + lengths[1], lengths[2]), used += lengths[2];
        memcpy(line + used, "\r\n", 2), used += 2;
        summary again = {.bytes = malloc(fields + 64), .capacity = fields + 64};
        FUZZ_CHECK(again.bytes != NULL);
        parse(&again, line, used, bound, 1, 0);
        FUZZ_CHECK(again.length == 1 + sizeof lengths + fields);
        FUZZ_CHECK(
            memcmp(again.bytes, reference->bytes + offset - 1 - sizeof lengths, again.length) == 0);
        free(again.bytes);
        free(line);
        offset += fields;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    size_t bound = BOUND_BASE + data[0];
    uint32_t seed = 0x9e3779b9u ^ data[0];
    const uint8_t *stream = data + 1;
    size_t stream_size = size - 1;
    size_t capacity = stream_size * (EVENT_OVERHEAD_BYTES + 1) + EVENT_OVERHEAD_BYTES;
    summary whole = {.bytes = malloc(capacity), .capacity = capacity};
    summary bytewise = {.bytes = malloc(capacity), .capacity = capacity};
    summary pieces = {.bytes = malloc(capacity), .capacity = capacity};
    FUZZ_CHECK(whole.bytes != NULL && bytewise.bytes != NULL && pieces.bytes != NULL);
    parse(&whole, stream, stream_size, bound, seed, 0);
    parse(&bytewise, stream, stream_size, bound, seed, 1);
    parse(&pieces, stream, stream_size, bound, seed, 256);
    FUZZ_CHECK(whole.length == bytewise.length && whole.length == pieces.length);
    FUZZ_CHECK(memcmp(whole.bytes, bytewise.bytes, whole.length) == 0);
    FUZZ_CHECK(memcmp(whole.bytes, pieces.bytes, whole.length) == 0);
    check_round_trip(&whole, bound);
    free(whole.bytes);
    free(bytewise.bytes);
    free(pieces.bytes);
    return 0;
}
