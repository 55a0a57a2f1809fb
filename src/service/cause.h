/* cause.h - the Kc-Cause header (docs/protocol.md, docs/eventnet.md): the
 * Kc-Ids of the events that caused this message, so that the causal graph
 * of everything that happened (EventNet) can be rebuilt from the traffic.
 *
 * Grammar (ABNF, RFC 5234):
 *   cause = id *( "," id )          ; 1 to KCI_CAUSE_IDS_MAX ids, no spaces
 *   id    = 8HEXDIG "-" 4HEXDIG "-" 4HEXDIG "-" 4HEXDIG "-" 12HEXDIG
 * Hex digits in either case (stored lower-case); not the Nil or Max UUID;
 * an id given twice is refused (the graph has one edge per pair). So the
 * value is at most KCI_CAUSE_TEXT_BYTES_MAX - 1 bytes.
 *
 * The parser is a resumable byte state machine (the style of
 * src/broker/parser.c): feed it any split of the value, then finish. */
#ifndef KCI_CAUSE_H
#define KCI_CAUSE_H

#include <stdbool.h>
#include <stddef.h>

#include "kingcobra/kingcobra.h"
#include "uuid.h"

enum {
    KCI_CAUSE_IDS_MAX = 8,
    /* 8 ids of 36 bytes, 7 commas, the NUL */
    KCI_CAUSE_TEXT_BYTES_MAX = KCI_CAUSE_IDS_MAX * (KC_UUID_TEXT_BYTES + 1),
};

typedef enum kci_cause_state {
    KCI_CAUSE_ID = 0,   /* in an id: position says where */
    KCI_CAUSE_AFTER_ID, /* an id ended: ',' or the end */
    KCI_CAUSE_ERROR,    /* refused; problem says why */
} kci_cause_state;

typedef struct kci_cause_parser {
    kci_cause_state state;
    size_t position; /* bytes of the current id seen, 0..KC_UUID_TEXT_BYTES */
    char current[KC_UUID_TEXT_BYTES];
    size_t id_count;
    kci_uuid ids[KCI_CAUSE_IDS_MAX];
    const char *problem; /* static text when state is KCI_CAUSE_ERROR */
} kci_cause_parser;

void kci_cause_parser_init(kci_cause_parser *parser);
/* Feeds length bytes; false once the value is refused (parser->problem). */
bool kci_cause_parser_feed(kci_cause_parser *parser, const char *bytes, size_t length);
/* The value ended: true if it was a whole cause (at least one id). */
bool kci_cause_parser_finish(kci_cause_parser *parser);

/* The whole value at once: ids and their count, or false with *problem. */
bool kci_cause_parse(const char *text, size_t text_len, kci_uuid ids[KCI_CAUSE_IDS_MAX],
                     size_t *id_count, const char **problem);
/* ids (1..KCI_CAUSE_IDS_MAX) as the canonical value. */
void kci_cause_format(const kci_uuid *ids, size_t id_count, char text[KCI_CAUSE_TEXT_BYTES_MAX]);
/* Adds the id text to a canonical cause value unless it is there already or
 * the value is full (false then); id must be a usable UUID text. */
bool kci_cause_append(char cause[KCI_CAUSE_TEXT_BYTES_MAX], const char *id);

#endif
