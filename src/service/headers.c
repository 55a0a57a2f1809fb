/* headers.c - stamping and reading the KingCobra headers (see headers.h).
 *
 * Reading is table-driven: one row per header with its name, whether it is
 * core (required when the caller asks), and a parser that validates the
 * value and stores it in canonical form. Every refusal is KC_ERR_BAD_HEADER
 * with kc_last_error() saying "<header>: <problem>: \"<value>\"" (the value
 * escaped and cut to QUOTE_BYTES_MAX bytes). The rules:
 *   Kc-Id, Kc-Reply-To, Kc-Pay  a UUID in the 8-4-4-4-12 hex form (either
 *                               case; stored lower-case), not Nil or Max;
 *                               any version, so plain clients may send v4
 *   Kc-Ts                       "<wall ms>.<counter>" as hlc.c parses it
 *   Kc-Node, Kc-Type            one subject token (kci_token_valid)
 *   Kc-Deadline                 a positive decimal ms, no sign or leading 0
 *   Kc-Cause                    1 to 8 UUIDs, comma-separated (cause.h)
 *   Kc-Error                    "<code> <message>": code a positive decimal
 *                               int; message printable (no control bytes),
 *                               under KC_ERROR_MESSAGE_BYTES_MAX; "<code>"
 *                               alone is an empty message (NATS trims the
 *                               trailing space of "<code> " on the wire)
 * A header given twice, or an empty one, is refused: which value counts would
 * otherwise depend on the reader. A header block nats.c cannot lift is
 * refused the same way.
 *
 * Stamping validates the caller's fields against the same rules before
 * writing anything (KC_ERR_INVALID_ARGUMENT), so what we send, we accept.
 *
 * Limits: reading calls natsMsgHeader_Values once per present header (one
 * small allocation each, to count duplicates); header names are matched
 * exactly (nats.c 3.x is case-sensitive; our names are already in the MIME
 * canonical form other clients produce). */
#include "service/headers.h"

#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "service/last_error.h"
#include "service/micro.h"

enum {
    QUOTE_BYTES_MAX = 64,                       /* of an offending value shown in kc_last_error() */
    QUOTE_TEXT_BYTES = 4 * QUOTE_BYTES_MAX + 8, /* each byte as \xNN, quotes, "...", NUL */
    DEADLINE_DIGITS_MAX = 15,                   /* KCI_DEADLINE_MS_MAX has 15 */
    ERROR_CODE_DIGITS_MAX = 10,                 /* KCI_ERROR_CODE_MAX has 10 */
    ERROR_VALUE_BYTES = ERROR_CODE_DIGITS_MAX + 1 + KC_ERROR_MESSAGE_BYTES_MAX,
    DECIMAL_TEXT_BYTES = 24,
};

_Static_assert((int)KCI_TOKEN_BYTES_MAX == (int)KC_NODE_BYTES_MAX, "node and token bounds differ");
_Static_assert((int)KCI_TOKEN_BYTES_MAX == (int)KC_TYPE_BYTES_MAX, "type and token bounds differ");
_Static_assert(KCI_ERROR_CODE_MAX <= 2147483647, "a code is an int");

/* ---- helpers ------------------------------------------------------------- */

static bool byte_is_control(unsigned char c)
{
    return c < ' ' || c == 0x7F;
}

bool kci_token_valid(const char *token)
{
    if (token == NULL) return false;
    size_t length = strnlen(token, KCI_TOKEN_BYTES_MAX + 1);
    if (length == 0 || length > KCI_TOKEN_BYTES_MAX) return false;
    for (size_t index = 0; index < length; index++) {
        unsigned char c = (unsigned char)token[index];
        if (c <= ' ' || c == 0x7F || c == '.' || c == '*' || c == '>') return false;
    }
    return true;
}

kc_err kci_node_from_host(char out[KC_NODE_BYTES_MAX + 1])
{
    char host[KC_NODE_BYTES_MAX + 1] = {0};
    out[0] = '\0';
    if (gethostname(host, sizeof host - 1) != 0)
        return kci_fail(KC_ERR_IO, "gethostname failed: %s", strerror(errno));
    host[strcspn(host, ".")] = '\0';
    if (host[0] == '\0' || !kci_token_valid(host))
        return kci_fail(KC_ERR_CONFIG, "host name \"%s\" is not a valid node name", host);
    memcpy(out, host, strlen(host) + 1);
    return KC_OK;
}

/* value as a C string literal for an error text: printable ASCII kept, other
 * bytes as \xNN, at most QUOTE_BYTES_MAX bytes of value shown. */
static const char *quote(const char *value, char quoted[QUOTE_TEXT_BYTES])
{
    static const char hex[] = "0123456789abcdef";
    size_t position = 0;
    quoted[position++] = '"';
    size_t index = 0;
    for (; index < QUOTE_BYTES_MAX && value[index] != '\0'; index++) {
        unsigned char c = (unsigned char)value[index];
        if (c >= ' ' && c < 0x7F && c != '"' && c != '\\') {
            quoted[position++] = (char)c;
            continue;
        }
        quoted[position++] = '\\';
        quoted[position++] = 'x';
        quoted[position++] = hex[c >> 4];
        quoted[position++] = hex[c & 0xF];
    }
    quoted[position++] = '"';
    if (value[index] != '\0') {
        memcpy(quoted + position, "...", 3);
        position += 3;
    }
    assert(position < QUOTE_TEXT_BYTES);
    quoted[position] = '\0';
    return quoted;
}

static kc_err header_fail(const char *name, const char *problem, const char *value)
{
    char quoted[QUOTE_TEXT_BYTES];
    return kci_fail(KC_ERR_BAD_HEADER, "%s: %s: %s", name, problem, quote(value, quoted));
}

/* Canonical unsigned decimal of 1..digits_max digits, no sign, no leading 0. */
static bool decimal_parse(const char *text, size_t text_len, size_t digits_max, uint64_t value_max,
                          uint64_t *out)
{
    if (text_len == 0 || text_len > digits_max) return false;
    if (text[0] == '0' && text_len > 1) return false;
    uint64_t value = 0;
    for (size_t index = 0; index < text_len; index++) {
        if (text[index] < '0' || text[index] > '9') return false;
        value = value * 10 + (uint64_t)(text[index] - '0'); /* at most 15 digits: no overflow */
    }
    if (value > value_max) return false;
    *out = value;
    return true;
}

/* A UUID that can name something, from a NUL-terminated text of any length. */
static bool uuid_text_usable(const char *text, kci_uuid *uuid)
{
    size_t length = strnlen(text, KC_UUID_TEXT_BYTES + 1);
    return kci_uuid_parse(text, length, uuid) && !kci_uuid_is_nil_or_max(uuid);
}

static kc_err status_to_err(natsStatus status, const char *name)
{
    if (status == NATS_NO_MEMORY) return kci_fail(KC_ERR_NOMEM, "%s: out of memory", name);
    if (status == NATS_PROTOCOL_ERROR)
        return kci_fail(KC_ERR_BAD_HEADER, "%s: malformed header block: %s", name,
                        natsStatus_GetText(status));
    return kci_fail(KC_ERR_INVALID_ARGUMENT, "%s: %s", name, natsStatus_GetText(status));
}

/* ---- reading ------------------------------------------------------------- */

typedef kc_err (*header_parse)(const char *name, const char *value, kci_kc_headers *out);

static kc_err uuid_parse_into(const char *name, const char *value,
                              char text[KC_UUID_TEXT_BYTES + 1])
{
    kci_uuid uuid;
    if (!kci_uuid_parse(value, strnlen(value, KC_UUID_TEXT_BYTES + 1), &uuid))
        return header_fail(name, "not a UUID (8-4-4-4-12 hex digits)", value);
    if (kci_uuid_is_nil_or_max(&uuid)) return header_fail(name, "the Nil or Max UUID", value);
    kci_uuid_format(&uuid, text);
    return KC_OK;
}

static kc_err parse_id(const char *name, const char *value, kci_kc_headers *out)
{
    return uuid_parse_into(name, value, out->id);
}

static kc_err parse_reply_to(const char *name, const char *value, kci_kc_headers *out)
{
    return uuid_parse_into(name, value, out->reply_to);
}

static kc_err parse_pay(const char *name, const char *value, kci_kc_headers *out)
{
    return uuid_parse_into(name, value, out->pay);
}

static kc_err parse_pay_hold(const char *name, const char *value, kci_kc_headers *out)
{
    return uuid_parse_into(name, value, out->pay_hold);
}

static kc_err parse_cause(const char *name, const char *value, kci_kc_headers *out)
{
    kci_uuid ids[KCI_CAUSE_IDS_MAX];
    size_t id_count = 0;
    const char *problem = NULL;
    if (!kci_cause_parse(value, strnlen(value, KCI_CAUSE_TEXT_BYTES_MAX), ids, &id_count, &problem))
        return header_fail(name, problem, value);
    kci_cause_format(ids, id_count, out->cause);
    return KC_OK;
}

static kc_err parse_ts(const char *name, const char *value, kci_kc_headers *out)
{
    if (!kci_hlc_parse(value, strnlen(value, KCI_HLC_TEXT_BYTES_MAX), &out->timestamp))
        return header_fail(name, "not \"<wall ms>.<counter>\"", value);
    kci_hlc_format(&out->timestamp, out->ts);
    assert(strcmp(out->ts, value) == 0); /* the parser takes only the canonical form */
    return KC_OK;
}

static kc_err token_parse_into(const char *name, const char *value, char *token)
{
    if (!kci_token_valid(value))
        return header_fail(name,
                           "not one subject token (1 to 128 bytes; no '.', '*', '>', "
                           "space or control bytes)",
                           value);
    size_t length = strlen(value);
    memcpy(token, value, length + 1);
    return KC_OK;
}

static kc_err parse_node(const char *name, const char *value, kci_kc_headers *out)
{
    return token_parse_into(name, value, out->node);
}

static kc_err parse_type(const char *name, const char *value, kci_kc_headers *out)
{
    return token_parse_into(name, value, out->type);
}

static kc_err parse_deadline(const char *name, const char *value, kci_kc_headers *out)
{
    uint64_t deadline_ms = 0;
    size_t length = strnlen(value, DEADLINE_DIGITS_MAX + 1);
    if (!decimal_parse(value, length, DEADLINE_DIGITS_MAX, (uint64_t)KCI_DEADLINE_MS_MAX,
                       &deadline_ms) ||
        deadline_ms == 0)
        return header_fail(name, "not a positive decimal Unix time in ms", value);
    out->deadline_ms = (int64_t)deadline_ms;
    return KC_OK;
}

static kc_err parse_error(const char *name, const char *value, kci_kc_headers *out)
{
    const char *space = strchr(value, ' ');
    size_t code_length =
        space != NULL ? (size_t)(space - value) : strnlen(value, ERROR_CODE_DIGITS_MAX + 1);
    uint64_t code = 0;
    if (!decimal_parse(value, code_length, ERROR_CODE_DIGITS_MAX, KCI_ERROR_CODE_MAX, &code) ||
        code == 0)
        return header_fail(name, "not \"<code> <message>\" with a positive decimal code", value);
    const char *message = space != NULL ? space + 1 : "";
    size_t message_length = strnlen(message, KC_ERROR_MESSAGE_BYTES_MAX);
    if (message_length == KC_ERROR_MESSAGE_BYTES_MAX)
        return header_fail(name, "message longer than KC_ERROR_MESSAGE_BYTES_MAX - 1", value);
    for (size_t index = 0; index < message_length; index++)
        if (byte_is_control((unsigned char)message[index]))
            return header_fail(name, "control byte in the message", value);
    out->error_code = (int)code;
    memcpy(out->error_message, message, message_length + 1);
    return KC_OK;
}

typedef struct header_field {
    const char *name;
    bool core; /* required when the reader asks for the core headers */
    header_parse parse;
} header_field;

static const header_field header_fields[] = {
    {KCI_HEADER_ID, true, parse_id},
    {KCI_HEADER_TS, true, parse_ts},
    {KCI_HEADER_NODE, true, parse_node},
    {KCI_HEADER_TYPE, false, parse_type},
    {KCI_HEADER_DEADLINE, false, parse_deadline},
    {KCI_HEADER_REPLY_TO, false, parse_reply_to},
    {KCI_HEADER_ERROR, false, parse_error},
    {KCI_HEADER_PAY, false, parse_pay},
    {KCI_HEADER_PAY_HOLD, false, parse_pay_hold},
    {KCI_HEADER_CAUSE, false, parse_cause},
};
enum { HEADER_FIELD_COUNT = sizeof header_fields / sizeof header_fields[0] };

/* The single value of header name, or *value NULL if absent. The pointer
 * belongs to the message. */
static kc_err header_get(natsMsg *message, const char *name, const char **value)
{
    const char **values = NULL;
    int count = 0;
    *value = NULL;
    natsStatus status = natsMsgHeader_Values(message, name, &values, &count);
    if (status == NATS_NOT_FOUND) return KC_OK;
    if (status != NATS_OK) return status_to_err(status, name);
    assert(values != NULL && count > 0);
    const char *first = values[0] != NULL ? values[0] : "";
    free((void *)values);
    if (count > 1) return kci_fail(KC_ERR_BAD_HEADER, "%s: given %d times", name, count);
    *value = first;
    return KC_OK;
}

static kc_err headers_read_fields(natsMsg *message, bool require_core, kci_kc_headers *out)
{
    for (size_t index = 0; index < HEADER_FIELD_COUNT; index++) {
        const header_field *field = &header_fields[index];
        const char *value = NULL;
        kc_err err = header_get(message, field->name, &value);
        if (err != KC_OK) return err;
        if (value == NULL) {
            if (require_core && field->core)
                return kci_fail(KC_ERR_BAD_HEADER, "%s: missing", field->name);
            continue;
        }
        if (value[0] == '\0') return header_fail(field->name, "empty", value);
        err = field->parse(field->name, value, out);
        if (err != KC_OK) return err;
    }
    return KC_OK;
}

kc_err kci_headers_read(natsMsg *message, bool require_core, kci_kc_headers *out)
{
    if (message == NULL || out == NULL)
        return kci_fail(KC_ERR_INVALID_ARGUMENT, "headers: no message or no output");
    kci_headers_clear(out);
    kc_err err = headers_read_fields(message, require_core, out);
    if (err != KC_OK) {
        kci_headers_clear(out);
        return err;
    }
    assert(!require_core || (out->id[0] != '\0' && out->ts[0] != '\0' && out->node[0] != '\0'));
    return KC_OK;
}

/* ---- stamping ------------------------------------------------------------ */

/* The canonical text of an optional UUID field ("" if unset), or
 * KC_ERR_INVALID_ARGUMENT if it is set but not a usable UUID. */
static kc_err stamp_uuid_canonical(const char *name, const char *text,
                                   char canonical[KC_UUID_TEXT_BYTES + 1])
{
    canonical[0] = '\0';
    if (text[0] == '\0') return KC_OK;
    kci_uuid uuid;
    if (uuid_text_usable(text, &uuid)) {
        kci_uuid_format(&uuid, canonical);
        return KC_OK;
    }
    char quoted[QUOTE_TEXT_BYTES];
    return kci_fail(KC_ERR_INVALID_ARGUMENT, "%s: %s is not a usable UUID", name,
                    quote(text, quoted));
}

/* The caller's cause made canonical, with the request a reply answers
 * added: a reply names its request in Kc-Cause like every other effect. */
static kc_err stamp_cause_canonical(const kci_kc_headers *headers,
                                    const char reply_to[KC_UUID_TEXT_BYTES + 1],
                                    char cause[KCI_CAUSE_TEXT_BYTES_MAX])
{
    cause[0] = '\0';
    size_t length = strnlen(headers->cause, KCI_CAUSE_TEXT_BYTES_MAX);
    kci_uuid ids[KCI_CAUSE_IDS_MAX];
    size_t id_count = 0;
    const char *problem = NULL;
    char quoted[QUOTE_TEXT_BYTES];
    if (length == KCI_CAUSE_TEXT_BYTES_MAX ||
        (length > 0 && !kci_cause_parse(headers->cause, length, ids, &id_count, &problem)))
        return kci_fail(KC_ERR_INVALID_ARGUMENT, "Kc-Cause: %s: %s",
                        problem != NULL ? problem : "too long", quote(headers->cause, quoted));
    if (id_count > 0) kci_cause_format(ids, id_count, cause);
    if (reply_to[0] != '\0' && !kci_cause_append(cause, reply_to))
        return kci_fail(KC_ERR_INVALID_ARGUMENT, "Kc-Cause: no room for the Kc-Reply-To");
    return KC_OK;
}

static bool field_terminated(const char *field, size_t size)
{
    return strnlen(field, size) < size;
}

/* The caller's fields, against the reader's rules (the UUID fields are
 * checked as they are made canonical). The text arrays may lack a NUL
 * (error_message may: it is cut to size when written). */
static kc_err stamp_check(const kci_kc_headers *headers)
{
    char quoted[QUOTE_TEXT_BYTES];
    if (!field_terminated(headers->node, sizeof headers->node) ||
        !field_terminated(headers->type, sizeof headers->type) ||
        !field_terminated(headers->reply_to, sizeof headers->reply_to) ||
        !field_terminated(headers->pay, sizeof headers->pay) ||
        !field_terminated(headers->pay_hold, sizeof headers->pay_hold))
        return kci_fail(KC_ERR_INVALID_ARGUMENT, "headers: a text field is not NUL-terminated");
    if (!kci_token_valid(headers->node))
        return kci_fail(KC_ERR_INVALID_ARGUMENT, "Kc-Node: %s is not one subject token",
                        quote(headers->node, quoted));
    if (headers->type[0] != '\0' && !kci_token_valid(headers->type))
        return kci_fail(KC_ERR_INVALID_ARGUMENT, "Kc-Type: %s is not one subject token",
                        quote(headers->type, quoted));
    if (headers->deadline_ms < 0 || headers->deadline_ms > KCI_DEADLINE_MS_MAX)
        return kci_fail(KC_ERR_INVALID_ARGUMENT, "Kc-Deadline: %" PRId64 " out of range",
                        headers->deadline_ms);
    if (headers->error_code < 0)
        return kci_fail(KC_ERR_INVALID_ARGUMENT, "Kc-Error: negative code %d", headers->error_code);
    return KC_OK;
}

/* "<code> <message>" with control bytes as spaces, the message cut (at a
 * UTF-8 sequence start) to what the reader accepts. */
static void error_value_format(int code, const char *message, char value[ERROR_VALUE_BYTES])
{
    assert(code > 0);
    int written = snprintf(value, ERROR_VALUE_BYTES, "%d ", code);
    assert(written > 1 && written <= ERROR_CODE_DIGITS_MAX + 1);
    size_t length = strnlen(message, KC_ERROR_MESSAGE_BYTES_MAX);
    if (length > KC_ERROR_MESSAGE_BYTES_MAX - 1) {
        length = KC_ERROR_MESSAGE_BYTES_MAX - 1;
        while (length > 0 && ((unsigned char)message[length] & 0xC0) == 0x80)
            length--;
    }
    char *out = value + written;
    memcpy(out, message, length);
    for (size_t index = 0; index < length; index++)
        if (byte_is_control((unsigned char)out[index])) out[index] = ' ';
    out[length] = '\0';
    assert((size_t)written + length < ERROR_VALUE_BYTES);
}

/* Sets name to value, or deletes it when value is empty. */
static kc_err stamp_set(natsMsg *message, const char *name, const char *value)
{
    natsStatus status = NATS_OK;
    if (value[0] != '\0') {
        status = natsMsgHeader_Set(message, name, value);
    } else {
        status = natsMsgHeader_Delete(message, name);
        if (status == NATS_NOT_FOUND) status = NATS_OK;
    }
    return status == NATS_OK ? KC_OK : status_to_err(status, name);
}

/* The NATS services protocol's error headers (micro.h) beside Kc-Error, so
 * a NATS service client sees the refusal too: the code and the message of
 * error ("<code> <message>"), or neither when error is empty. */
static kc_err stamp_service_error(natsMsg *message, const char *error, bool stamped_before)
{
    if (error[0] == '\0' && !stamped_before) return KC_OK;
    char code[ERROR_CODE_DIGITS_MAX + 1] = "";
    const char *text = "";
    const char *space = strchr(error, ' ');
    if (space != NULL) {
        size_t length = (size_t)(space - error);
        assert(length < sizeof code);
        memcpy(code, error, length);
        code[length] = '\0';
        text = space + 1;
    }
    kc_err err = stamp_set(message, KCI_HEADER_SERVICE_ERROR_CODE, code);
    if (err == KC_OK) err = stamp_set(message, KCI_HEADER_SERVICE_ERROR, text);
    return err;
}

/* value (> 0) in decimal, NUL-terminated: a Kc-Deadline. No snprintf: it
 * is on every request's path. */
static void deadline_format(int64_t value, char text[DECIMAL_TEXT_BYTES])
{
    assert(value > 0 && value <= KCI_DEADLINE_MS_MAX);
    char reversed[DEADLINE_DIGITS_MAX];
    size_t digit_count = 0;
    for (uint64_t rest = (uint64_t)value; rest != 0; rest /= 10) {
        assert(digit_count < DEADLINE_DIGITS_MAX);
        reversed[digit_count++] = (char)('0' + rest % 10);
    }
    for (size_t index = 0; index < digit_count; index++)
        text[index] = reversed[digit_count - 1 - index];
    text[digit_count] = '\0';
}

void kci_headers_clear(kci_kc_headers *headers)
{
    assert(headers != NULL);
    headers->id[0] = '\0';
    headers->ts[0] = '\0';
    headers->timestamp.wall_ms = 0;
    headers->timestamp.counter = 0;
    headers->node[0] = '\0';
    headers->type[0] = '\0';
    headers->deadline_ms = 0;
    headers->reply_to[0] = '\0';
    headers->error_code = 0;
    headers->error_message[0] = '\0';
    headers->pay[0] = '\0';
    headers->pay_hold[0] = '\0';
    headers->cause[0] = '\0';
}

size_t kci_text_copy(char *out, size_t out_size, const char *text)
{
    assert(out != NULL && out_size > 0 && text != NULL);
    size_t length = strnlen(text, out_size - 1);
    memcpy(out, text, length);
    out[length] = '\0';
    return length;
}

kc_err kci_headers_stamp_with_hlc(natsMsg *message, kci_kc_headers *headers, kci_hlc *hlc)
{
    if (message == NULL || headers == NULL || hlc == NULL)
        return kci_fail(KC_ERR_INVALID_ARGUMENT, "headers: no message, fields or clock");
    char reply_to[KC_UUID_TEXT_BYTES + 1], pay[KC_UUID_TEXT_BYTES + 1];
    char pay_hold[KC_UUID_TEXT_BYTES + 1];
    kc_err err = stamp_check(headers);
    if (err == KC_OK) err = stamp_uuid_canonical(KCI_HEADER_REPLY_TO, headers->reply_to, reply_to);
    if (err == KC_OK) err = stamp_uuid_canonical(KCI_HEADER_PAY, headers->pay, pay);
    if (err == KC_OK) err = stamp_uuid_canonical(KCI_HEADER_PAY_HOLD, headers->pay_hold, pay_hold);
    char cause[KCI_CAUSE_TEXT_BYTES_MAX];
    if (err == KC_OK) err = stamp_cause_canonical(headers, reply_to, cause);
    if (err != KC_OK) return err;

    /* A fresh message has no optional header to delete: one lookup instead
     * of a delete per empty field. */
    const char *previous_id = NULL;
    bool stamped_before = natsMsgHeader_Get(message, KCI_HEADER_ID, &previous_id) == NATS_OK;
    kci_uuid_v7_text(headers->id);
    kci_hlc_now(hlc, &headers->timestamp);
    kci_hlc_format(&headers->timestamp, headers->ts);
    char deadline[DECIMAL_TEXT_BYTES] = "";
    if (headers->deadline_ms > 0) deadline_format(headers->deadline_ms, deadline);
    char error[ERROR_VALUE_BYTES] = "";
    if (headers->error_code > 0)
        error_value_format(headers->error_code, headers->error_message, error);

    const struct {
        const char *name, *value;
    } settings[] = {
        {KCI_HEADER_ID, headers->id},     {KCI_HEADER_TS, headers->ts},
        {KCI_HEADER_NODE, headers->node}, {KCI_HEADER_TYPE, headers->type},
        {KCI_HEADER_DEADLINE, deadline},  {KCI_HEADER_REPLY_TO, reply_to},
        {KCI_HEADER_ERROR, error},        {KCI_HEADER_PAY, pay},
        {KCI_HEADER_PAY_HOLD, pay_hold},  {KCI_HEADER_CAUSE, cause},
    };
    _Static_assert(sizeof settings / sizeof settings[0] == HEADER_FIELD_COUNT,
                   "stamp writes every header read reads");
    for (size_t index = 0; index < HEADER_FIELD_COUNT; index++) {
        if (settings[index].value[0] == '\0' && !stamped_before) continue;
        err = stamp_set(message, settings[index].name, settings[index].value);
        if (err != KC_OK) return err;
    }
    return stamp_service_error(message, error, stamped_before);
}

kc_err kci_headers_stamp(natsMsg *message, kci_kc_headers *headers)
{
    return kci_headers_stamp_with_hlc(message, headers, kci_process_hlc());
}

kc_err kci_headers_observe(kci_hlc *hlc, const kci_kc_headers *headers, kci_hlc_timestamp *out)
{
    assert(hlc != NULL && headers != NULL);
    kci_hlc_timestamp local;
    if (headers->ts[0] == '\0') {
        kci_hlc_now(hlc, &local);
    } else {
        kc_err err = kci_hlc_observe(hlc, &headers->timestamp, &local);
        if (err != KC_OK) return err;
    }
    if (out != NULL) *out = local;
    return KC_OK;
}
