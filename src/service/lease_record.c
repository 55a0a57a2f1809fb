/* lease_record.c - a lease's KV value as text, and the standby's and the
 * holder's rules (lease_record.h). Pure: no I/O, no clock, no allocation. */
#include "service/lease_record.h"

#include <assert.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "service/last_error.h"

static const char MAGIC[] = "kc-lease/1 ";
static const char STATE_HELD[] = "held";
static const char STATE_RELEASED[] = "released";
static const char FIELD_TERM[] = " term=";
static const char FIELD_TTL[] = " ttl_ms=";
static const char FIELD_HOLDER[] = " holder=";

enum {
    DECIMAL_DIGITS_MAX = 20, /* UINT64_MAX has 20 digits */
};

static bool holder_byte_valid(char byte)
{
    return byte > ' ' && byte <= '~'; /* visible ASCII: no space, no control, no 8-bit */
}

bool kci_lease_holder_valid(const char *holder)
{
    if (holder == NULL) return false;
    size_t length = strnlen(holder, KCI_LEASE_HOLDER_BYTES_MAX + 1);
    if (length == 0 || length > KCI_LEASE_HOLDER_BYTES_MAX) return false;
    for (size_t index = 0; index < length; index++)
        if (!holder_byte_valid(holder[index])) return false;
    return true;
}

kc_err kci_lease_record_format(const kci_lease_record *record, char *out, size_t out_size,
                               size_t *length_out)
{
    assert(record != NULL && out != NULL && length_out != NULL);
    if (!kci_lease_holder_valid(record->holder))
        return kci_fail(KC_ERR_INVALID_ARGUMENT, "lease holder \"%s\" is not 1 to %d visible bytes",
                        record->holder, KCI_LEASE_HOLDER_BYTES_MAX);
    if (record->ttl_ms < 1 || record->ttl_ms > KCI_LEASE_TTL_MS_MAX)
        return kci_fail(KC_ERR_INVALID_ARGUMENT, "lease ttl %" PRId64 " ms out of range",
                        record->ttl_ms);
    if (record->state != KCI_LEASE_HELD && record->state != KCI_LEASE_RELEASED)
        return kci_fail(KC_ERR_INVALID_ARGUMENT, "lease state %d unknown", (int)record->state);
    int length = snprintf(out, out_size, "%s%s%s%" PRIu64 "%s%" PRId64 "%s%s", MAGIC,
                          record->state == KCI_LEASE_HELD ? STATE_HELD : STATE_RELEASED, FIELD_TERM,
                          record->term, FIELD_TTL, record->ttl_ms, FIELD_HOLDER, record->holder);
    if (length < 0 || (size_t)length >= out_size)
        return kci_fail(KC_ERR_TOO_LARGE, "lease record longer than %zu bytes", out_size);
    assert((size_t)length <= KCI_LEASE_RECORD_BYTES_MAX);
    *length_out = (size_t)length;
    return KC_OK;
}

/* ---- parsing --------------------------------------------------------------- */

typedef struct cursor {
    const char *bytes;
    size_t length;
    size_t offset;
} cursor;

static bool cursor_literal(cursor *at, const char *literal)
{
    size_t literal_length = strlen(literal);
    if (at->length - at->offset < literal_length) return false;
    if (memcmp(at->bytes + at->offset, literal, literal_length) != 0) return false;
    at->offset += literal_length;
    return true;
}

/* A decimal without a sign or leading zeros ("0" itself is fine), at most
 * maximum. */
static bool cursor_decimal(cursor *at, uint64_t maximum, uint64_t *value)
{
    size_t start = at->offset;
    uint64_t result = 0;
    while (at->offset < at->length && at->offset - start < DECIMAL_DIGITS_MAX) {
        char byte = at->bytes[at->offset];
        if (byte < '0' || byte > '9') break;
        uint64_t digit = (uint64_t)(byte - '0');
        if (result > (maximum - digit) / 10) return false;
        result = result * 10 + digit;
        at->offset++;
    }
    size_t digits = at->offset - start;
    if (digits == 0 || (digits > 1 && at->bytes[start] == '0')) return false;
    *value = result;
    return true;
}

static bool cursor_state(cursor *at, kci_lease_state *state)
{
    if (cursor_literal(at, STATE_HELD)) {
        *state = KCI_LEASE_HELD;
        return true;
    }
    if (cursor_literal(at, STATE_RELEASED)) {
        *state = KCI_LEASE_RELEASED;
        return true;
    }
    return false;
}

/* The holder runs to the end of the value. */
static bool cursor_holder(cursor *at, char holder[KCI_LEASE_HOLDER_BYTES_MAX + 1])
{
    size_t length = at->length - at->offset;
    if (length == 0 || length > KCI_LEASE_HOLDER_BYTES_MAX) return false;
    for (size_t index = 0; index < length; index++)
        if (!holder_byte_valid(at->bytes[at->offset + index])) return false;
    memcpy(holder, at->bytes + at->offset, length);
    holder[length] = '\0';
    at->offset += length;
    return true;
}

kc_err kci_lease_record_parse(const char *bytes, size_t length, kci_lease_record *record)
{
    assert(record != NULL && (bytes != NULL || length == 0));
    if (length > KCI_LEASE_RECORD_BYTES_MAX)
        return kci_fail(KC_ERR_TOO_LARGE, "lease record of %zu bytes (at most %d)", length,
                        KCI_LEASE_RECORD_BYTES_MAX);
    cursor at = {.bytes = bytes, .length = length, .offset = 0};
    kci_lease_record parsed = {0};
    uint64_t ttl_ms = 0;
    const char *what = "the magic \"kc-lease/1 \"";
    if (!cursor_literal(&at, MAGIC)) goto refuse;
    what = "a state (held or released)";
    if (!cursor_state(&at, &parsed.state)) goto refuse;
    what = "\" term=\" and a decimal";
    if (!cursor_literal(&at, FIELD_TERM) || !cursor_decimal(&at, UINT64_MAX, &parsed.term))
        goto refuse;
    what = "\" ttl_ms=\" and 1 to 86400000";
    if (!cursor_literal(&at, FIELD_TTL) || !cursor_decimal(&at, KCI_LEASE_TTL_MS_MAX, &ttl_ms) ||
        ttl_ms == 0)
        goto refuse;
    parsed.ttl_ms = (int64_t)ttl_ms;
    what = "\" holder=\" and 1 to 128 visible bytes to the end";
    if (!cursor_literal(&at, FIELD_HOLDER) || !cursor_holder(&at, parsed.holder)) goto refuse;
    assert(at.offset == length);
    *record = parsed;
    return KC_OK;
refuse:
    return kci_fail(KC_ERR_PARSE, "lease record: expected %s at byte %zu", what, at.offset);
}

/* ---- rules ------------------------------------------------------------------ */

kci_lease_action kci_lease_decide(kci_lease_observation *observation, const kci_lease_view *view,
                                  const char *self, int64_t own_ttl_ms, int64_t margin_ms,
                                  int64_t now_ms)
{
    assert(observation != NULL && view != NULL && self != NULL);
    assert(own_ttl_ms > 0 && margin_ms >= 0);
    if (!view->present) {
        *observation = (kci_lease_observation){0};
        return KCI_LEASE_CREATE;
    }
    assert(view->revision > 0);
    if (view->deleted) return KCI_LEASE_TAKE_OVER;
    if (view->parsed &&
        (view->record.state == KCI_LEASE_RELEASED || strcmp(view->record.holder, self) == 0))
        return KCI_LEASE_TAKE_OVER;
    if (observation->revision != view->revision) {
        /* A new record (a renewal, a new holder): the holder's clock restarts
         * for us from this read, never from its own timestamps. */
        observation->revision = view->revision;
        observation->since_ms = now_ms;
        return KCI_LEASE_WAIT;
    }
    int64_t ttl_ms = view->parsed ? view->record.ttl_ms : own_ttl_ms;
    return now_ms - observation->since_ms >= ttl_ms + margin_ms ? KCI_LEASE_TAKE_OVER
                                                                : KCI_LEASE_WAIT;
}

int64_t kci_lease_valid_until_ms(int64_t confirmed_ms, int64_t ttl_ms, int64_t margin_ms)
{
    assert(ttl_ms > margin_ms && margin_ms >= 0);
    return confirmed_ms + ttl_ms - margin_ms;
}

kci_lease_verdict kci_lease_judge(const kci_lease_view *view, const char *self, uint64_t term)
{
    assert(view != NULL && self != NULL && term > 0);
    if (!view->present || view->deleted || !view->parsed || view->record.state != KCI_LEASE_HELD)
        return KCI_LEASE_DEPOSED;
    if (strcmp(view->record.holder, self) != 0) return KCI_LEASE_DEPOSED;
    uint64_t record_term = view->record.term != 0 ? view->record.term : view->revision;
    return record_term == term ? KCI_LEASE_OURS : KCI_LEASE_DEPOSED;
}
