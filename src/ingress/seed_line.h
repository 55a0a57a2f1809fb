/* seed_line.h - the parser of KingCobra's original request line,
 *
 *     REQUEST#<client>#<timestamp>#<payload>\n
 *
 * a resumable byte-at-a-time state machine in the style of nats-server's
 * parser: feed it whatever arrived (one byte, or a whole read buffer), and it
 * reports each complete line or each malformed one, consuming exactly the
 * bytes of that line, so the caller feeds the rest again. State names spell
 * what has been matched (OP_R, OP_RE, ... OP_REQUEST, CLIENT_ARG, ...).
 *
 * Grammar (docs/ingress.md):
 *  - a line ends at LF; one CR right before the LF is dropped (telnet, nc);
 *  - "REQUEST" in upper case, then '#';
 *  - <client>: 1..KCI_SEED_FIELD_BYTES_MAX bytes, no '#', no space and no
 *    control byte (0x00-0x20, 0x7f); then '#';
 *  - <timestamp>: the same rules as <client>; then '#';
 *  - <payload>: every byte up to the end of the line, '#' and CR included
 *    (only the CR right before the LF is dropped); it may be empty.
 * A line holds at most line_bytes_max bytes before its terminator (CR LF or
 * LF). A malformed line is reported only when its LF arrives, so replies stay
 * in line order; the bytes in between are skipped without being stored.
 *
 * Memory: the parser keeps client, timestamp and payload of the current line
 * contiguously in one buffer, allocated at the first byte it stores and grown
 * by doubling up to line_bytes_max + 1; a buffer grown past
 * KCI_SEED_BUFFER_BYTES_KEEP is released once its line is done, so an idle
 * parser holds at most that much. */
#ifndef KCI_SEED_LINE_H
#define KCI_SEED_LINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum {
    KCI_SEED_LINE_BYTES_MAX_DEFAULT = 64 * 1024,
    KCI_SEED_LINE_BYTES_MIN = 64,   /* the smallest line_bytes_max accepted */
    KCI_SEED_FIELD_BYTES_MAX = 256, /* <client> and <timestamp> each */
    KCI_SEED_BUFFER_BYTES_INITIAL = 256,
    KCI_SEED_BUFFER_BYTES_KEEP = 4096, /* a larger buffer is released after its line */
};

typedef enum kci_seed_state {
    KCI_SEED_OP_START = 0, /* nothing of this line yet */
    KCI_SEED_OP_R,
    KCI_SEED_OP_RE,
    KCI_SEED_OP_REQ,
    KCI_SEED_OP_REQU,
    KCI_SEED_OP_REQUE,
    KCI_SEED_OP_REQUES,
    KCI_SEED_OP_REQUEST,
    KCI_SEED_CLIENT_ARG,    /* after "REQUEST#" */
    KCI_SEED_TIMESTAMP_ARG, /* after "REQUEST#<client>#" */
    KCI_SEED_PAYLOAD,       /* after "REQUEST#<client>#<timestamp>#" */
    KCI_SEED_HEADER_CR,     /* a CR before the payload: LF ends the line early */
    KCI_SEED_SKIP_LINE,     /* malformed: skipping to the LF, the error kept */
    KCI_SEED_LINE_DONE,     /* a line or an error was reported; the next feed resets */
} kci_seed_state;

typedef enum kci_seed_error {
    KCI_SEED_ERR_NONE = 0,
    KCI_SEED_ERR_EMPTY_LINE = 1,
    KCI_SEED_ERR_NOT_REQUEST = 2, /* does not start with "REQUEST#" */
    KCI_SEED_ERR_EMPTY_CLIENT = 3,
    KCI_SEED_ERR_BAD_CLIENT = 4, /* a space or control byte in <client> */
    KCI_SEED_ERR_CLIENT_TOO_LONG = 5,
    KCI_SEED_ERR_NO_TIMESTAMP = 6, /* the line ended inside <client> */
    KCI_SEED_ERR_EMPTY_TIMESTAMP = 7,
    KCI_SEED_ERR_BAD_TIMESTAMP = 8,
    KCI_SEED_ERR_TIMESTAMP_TOO_LONG = 9,
    KCI_SEED_ERR_NO_PAYLOAD = 10, /* the line ended inside <timestamp> */
    KCI_SEED_ERR_TOO_LONG = 11,   /* more than line_bytes_max bytes */
    KCI_SEED_ERR_NO_MEMORY = 12,  /* the buffer could not grow */
    KCI_SEED_ERR_INCOMPLETE = 13, /* input ended without a LF (kci_seed_line_finish) */
} kci_seed_error;

typedef enum kci_seed_result {
    KCI_SEED_MORE = 0,  /* every byte consumed; the line is not complete */
    KCI_SEED_LINE = 1,  /* *line_out holds a complete line */
    KCI_SEED_ERROR = 2, /* a malformed line ended; kci_seed_line_parser.error says why */
} kci_seed_result;

/* A parsed line: slices of the parser's buffer, valid until the next feed. */
typedef struct kci_seed_line {
    const char *client;
    size_t client_length;
    const char *timestamp;
    size_t timestamp_length;
    const uint8_t *payload;
    size_t payload_length;
} kci_seed_line;

typedef struct kci_seed_line_parser {
    kci_seed_state state;
    kci_seed_state state_before_cr; /* in KCI_SEED_HEADER_CR: where the CR came */
    kci_seed_error error;           /* the first error of the current line */
    size_t line_bytes_max;
    size_t line_bytes;    /* bytes of the current line so far, terminator excluded */
    size_t client_length; /* client at buffer[0], timestamp after it, then payload */
    size_t timestamp_length;
    uint8_t *buffer;
    size_t buffer_length;
    size_t buffer_capacity;
} kci_seed_line_parser;

/* line_bytes_max 0: the default; smaller than KCI_SEED_LINE_BYTES_MIN is
 * raised to it. Allocates nothing. */
void kci_seed_line_init(kci_seed_line_parser *parser, size_t line_bytes_max);
void kci_seed_line_free(kci_seed_line_parser *parser);
/* Feeds bytes; *consumed says how many were used (all of them on
 * KCI_SEED_MORE; up to and including the LF otherwise). On KCI_SEED_LINE,
 * *line_out is set. Call again with the rest. */
kci_seed_result kci_seed_line_feed(kci_seed_line_parser *parser, const uint8_t *bytes, size_t size,
                                   size_t *consumed, kci_seed_line *line_out);
/* The input ended (the peer closed): true if a partial line was pending,
 * which is then reported as KCI_SEED_ERR_INCOMPLETE in parser->error. */
bool kci_seed_line_finish(kci_seed_line_parser *parser);
/* True when no byte of a line is pending. */
bool kci_seed_line_idle(const kci_seed_line_parser *parser);
/* A short English reason, "empty client"; KCI_SEED_ERR_TOO_LONG's text does
 * not carry the bound (the caller adds it). */
const char *kci_seed_error_text(kci_seed_error error);

#endif
