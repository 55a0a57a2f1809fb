/* parser.h - the NATS client protocol, as a server reads it.
 *
 * A byte-at-a-time state machine (after nats-server's parser.go): each state
 * names what has been matched so far (OP_P, OP_PU, OP_PUB, PUB_ARG, ...).
 * Operation names are case-insensitive. Arguments are slices of the caller's
 * buffer when a line arrives whole; a line split across reads is gathered in
 * a scratch buffer bounded by the max control line. A payload that arrives
 * whole is passed as a slice of the caller's buffer; a split payload is
 * gathered in a payload buffer bounded by max_payload. So the caller may
 * reuse its read buffer as soon as kci_parser_feed returns.
 *
 * Events are delivered through kci_parser_handlers; a handler returns 0 to go
 * on or non-zero to stop parsing (for example after closing the client).
 * Memory: an idle parser holds no heap memory; buffers are allocated when a
 * split happens and released by kci_parser_release_buffers(). */
#ifndef KCI_PARSER_H
#define KCI_PARSER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum kci_parse_error {
    KCI_PARSE_OK = 0,
    KCI_PARSE_UNKNOWN_OPERATION = 1, /* bytes that are no operation */
    KCI_PARSE_CONTROL_LINE_TOO_LONG = 2,
    KCI_PARSE_MAX_PAYLOAD = 3,   /* announced size above max_payload */
    KCI_PARSE_BAD_ARGUMENTS = 4, /* wrong count, bad size, bad sid ... */
    KCI_PARSE_NO_MEMORY = 5,
    KCI_PARSE_STOPPED = 6, /* a handler asked to stop */
} kci_parse_error;

/* What a publication carries; slices are valid during the callback only. */
typedef struct kci_pub_args {
    const char *subject;
    size_t subject_len;
    const char *reply; /* NULL when absent */
    size_t reply_len;
    int64_t header_bytes;   /* -1 for PUB; >= 0 for HPUB */
    const uint8_t *payload; /* headers then body for HPUB */
    size_t payload_len;
} kci_pub_args;

typedef struct kci_parser_handlers {
    int (*on_connect)(void *context, const char *json, size_t json_len);
    int (*on_pub)(void *context, const kci_pub_args *pub);
    int (*on_sub)(void *context, const char *subject, size_t subject_len, const char *queue,
                  size_t queue_len, const char *sid, size_t sid_len);
    /* max_messages: 0 when absent, -1 when not a size. */
    int (*on_unsub)(void *context, const char *sid, size_t sid_len, int64_t max_messages);
    int (*on_ping)(void *context);
    int (*on_pong)(void *context);
    /* -ERR sent by the peer (optional; NULL ignores it). */
    int (*on_error_from_peer)(void *context, const char *text, size_t text_len);
    /* Called before any other operation while awaiting CONNECT; returning
     * non-zero stops parsing (auth required and the first op is not CONNECT). */
    int (*on_before_connect_op)(void *context);
} kci_parser_handlers;

typedef struct kci_parser {
    uint8_t state;
    bool connected; /* CONNECT seen; cleared by nobody */
    uint32_t max_control_line_bytes;
    uint32_t max_payload_bytes;
    /* A line split across feeds is gathered here. */
    char *scratch;
    uint32_t scratch_len;
    uint32_t scratch_capacity;
    /* The publication being read (args point into scratch or the buffer). */
    kci_pub_args pub;
    int64_t pub_total_bytes;
    /* A payload split across feeds is gathered here. */
    uint8_t *payload_buffer;
    uint32_t payload_received;
    uint32_t payload_capacity;
    uint32_t arg_start; /* index in the current buffer where the arg began */
    bool arg_split;     /* the arg so far is in scratch */
    bool pub_is_hpub;
} kci_parser;

void kci_parser_init(kci_parser *parser, uint32_t max_control_line_bytes,
                     uint32_t max_payload_bytes);
/* Frees the scratch and payload buffers (the parser stays usable). */
void kci_parser_release_buffers(kci_parser *parser);
/* Feeds len bytes. On error, *error_offset (if not NULL) is the index of the
 * offending byte. After an error other than STOPPED the parser must not be
 * fed again. */
kci_parse_error kci_parser_feed(kci_parser *parser, const kci_parser_handlers *handlers,
                                void *context, const uint8_t *buffer, size_t len,
                                size_t *error_offset);
const char *kci_parse_error_text(kci_parse_error error);
/* True while the parser is between operations (nothing partial held). */
bool kci_parser_idle(const kci_parser *parser);

#endif
