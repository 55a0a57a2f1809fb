/* cause.c - the Kc-Cause header's parser and formatter (cause.h).
 *
 * A byte at a time: in KCI_CAUSE_ID the byte must be a hex digit, or a '-'
 * at positions 8, 13, 18 and 23; the 36th byte completes the id, which is
 * then checked (not Nil or Max, not a duplicate, room for it) and kept.
 * After an id only ',' (another id follows) is allowed; the end is
 * accepted only there. One error exit (fail) sets the problem. Limits: at
 * most KCI_CAUSE_IDS_MAX ids, so at most KCI_CAUSE_TEXT_BYTES_MAX - 1
 * bytes are ever accepted; the parser holds no pointer into the input. */
#include "service/cause.h"

#include <assert.h>
#include <string.h>

static bool fail(kci_cause_parser *parser, const char *problem)
{
    parser->state = KCI_CAUSE_ERROR;
    parser->problem = problem;
    return false;
}

void kci_cause_parser_init(kci_cause_parser *parser)
{
    assert(parser != NULL);
    parser->state = KCI_CAUSE_ID;
    parser->position = 0;
    parser->id_count = 0;
    parser->problem = NULL;
}

static bool is_hex(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

static bool dash_position(size_t position)
{
    return position == 8 || position == 13 || position == 18 || position == 23;
}

/* The current id is complete: keep it. */
static bool id_complete(kci_cause_parser *parser)
{
    kci_uuid uuid;
    bool parsed = kci_uuid_parse(parser->current, KC_UUID_TEXT_BYTES, &uuid);
    assert(parsed); /* the state machine admitted only the 8-4-4-4-12 form */
    (void)parsed;
    if (kci_uuid_is_nil_or_max(&uuid)) return fail(parser, "the Nil or Max UUID");
    for (size_t index = 0; index < parser->id_count; index++)
        if (kci_uuid_compare(&parser->ids[index], &uuid) == 0)
            return fail(parser, "an id given twice");
    if (parser->id_count == KCI_CAUSE_IDS_MAX) return fail(parser, "more than 8 ids");
    parser->ids[parser->id_count++] = uuid;
    parser->state = KCI_CAUSE_AFTER_ID;
    return true;
}

static bool feed_byte(kci_cause_parser *parser, char c)
{
    switch (parser->state) {
    case KCI_CAUSE_ID:
        if (dash_position(parser->position) ? c != '-' : !is_hex(c))
            return fail(parser, "not a UUID (8-4-4-4-12 hex digits)");
        parser->current[parser->position++] = c;
        if (parser->position == KC_UUID_TEXT_BYTES) return id_complete(parser);
        return true;
    case KCI_CAUSE_AFTER_ID:
        if (c != ',') return fail(parser, "ids not separated by one ','");
        parser->state = KCI_CAUSE_ID;
        parser->position = 0;
        return true;
    case KCI_CAUSE_ERROR: return false;
    }
    return fail(parser, "bad state");
}

bool kci_cause_parser_feed(kci_cause_parser *parser, const char *bytes, size_t length)
{
    assert(parser != NULL && (bytes != NULL || length == 0));
    for (size_t index = 0; index < length; index++)
        if (!feed_byte(parser, bytes[index])) return false;
    return parser->state != KCI_CAUSE_ERROR;
}

bool kci_cause_parser_finish(kci_cause_parser *parser)
{
    if (parser->state == KCI_CAUSE_ERROR) return false;
    if (parser->state != KCI_CAUSE_AFTER_ID)
        return fail(parser,
                    parser->id_count == 0 && parser->position == 0 ? "empty" : "an id cut short");
    assert(parser->id_count >= 1 && parser->id_count <= KCI_CAUSE_IDS_MAX);
    return true;
}

bool kci_cause_parse(const char *text, size_t text_len, kci_uuid ids[KCI_CAUSE_IDS_MAX],
                     size_t *id_count, const char **problem)
{
    kci_cause_parser parser;
    kci_cause_parser_init(&parser);
    bool ok = kci_cause_parser_feed(&parser, text, text_len) && kci_cause_parser_finish(&parser);
    *id_count = 0;
    *problem = parser.problem;
    if (!ok) return false;
    memcpy(ids, parser.ids, parser.id_count * sizeof ids[0]);
    *id_count = parser.id_count;
    return true;
}

void kci_cause_format(const kci_uuid *ids, size_t id_count, char text[KCI_CAUSE_TEXT_BYTES_MAX])
{
    assert(id_count >= 1 && id_count <= KCI_CAUSE_IDS_MAX);
    size_t position = 0;
    for (size_t index = 0; index < id_count; index++) {
        if (index > 0) text[position++] = ',';
        kci_uuid_format(&ids[index], text + position);
        position += KC_UUID_TEXT_BYTES;
    }
    assert(position < KCI_CAUSE_TEXT_BYTES_MAX);
    text[position] = '\0';
}

bool kci_cause_append(char cause[KCI_CAUSE_TEXT_BYTES_MAX], const char *id)
{
    kci_uuid ids[KCI_CAUSE_IDS_MAX + 1];
    size_t id_count = 0;
    const char *problem = NULL;
    size_t length = strnlen(cause, KCI_CAUSE_TEXT_BYTES_MAX);
    if (length > 0 && !kci_cause_parse(cause, length, ids, &id_count, &problem)) return false;
    if (!kci_uuid_parse(id, strnlen(id, KC_UUID_TEXT_BYTES + 1), &ids[id_count]) ||
        kci_uuid_is_nil_or_max(&ids[id_count]))
        return false;
    for (size_t index = 0; index < id_count; index++)
        if (kci_uuid_compare(&ids[index], &ids[id_count]) == 0) return true;
    if (id_count == KCI_CAUSE_IDS_MAX) return false;
    kci_cause_format(ids, id_count + 1, cause);
    return true;
}
