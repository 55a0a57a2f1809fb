/* config_keys.c - settings as tables of keys (config_keys.h).
 *
 * Values are checked where they are read, with the file and line in the
 * message; cross-key checks belong to each part's validate function. */
#include "config_keys.h"

#include <assert.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/log.h"

enum {
    PORT_MAX = 65535,
    PORT_ANY = -1, /* like 0: any free port, as in nats-server */
};

/* ---- messages ------------------------------------------------------------ */

kc_err kci_config_error(const kci_config_context *context, const kci_conf_value *value, kc_err code,
                        const char *format, ...)
{
    if (context->error_size == 0) return code;
    char message[KCI_CONFIG_MESSAGE_BYTES_MAX];
    va_list args;
    va_start(args, format);
    vsnprintf(message, sizeof message, format, args);
    va_end(args);
    if (value != NULL && value->line > 0)
        snprintf(context->error, context->error_size, "%s: line %u: %s", context->source,
                 value->line, message);
    else
        snprintf(context->error, context->error_size, "%s: %s", context->source, message);
    return code;
}

static const char *kind_name(kci_conf_kind kind)
{
    switch (kind) {
    case KCI_CONF_STRING: return "a string";
    case KCI_CONF_INTEGER: return "an integer";
    case KCI_CONF_FLOAT: return "a float";
    case KCI_CONF_BOOL: return "a boolean";
    case KCI_CONF_MAP: return "a map";
    case KCI_CONF_ARRAY: return "an array";
    }
    return "nothing";
}

kc_err kci_config_wrong_type(const kci_config_context *context, const char *key,
                             const kci_conf_value *value, const char *expected)
{
    return kci_config_error(context, value, KC_ERR_CONFIG, "'%s' must be %s, not %s", key, expected,
                            kind_name(value->kind));
}

/* ---- values ------------------------------------------------------------ */

bool kci_config_parse_duration_ms(const char *text, double *out_ms)
{
    static const struct {
        const char *unit;
        double ms;
    } units[] = {{"ns", 1e-6}, {"us", 1e-3}, {"\xc2\xb5s", 1e-3}, {"\xce\xbcs", 1e-3},
                 {"ms", 1.0},  {"s", 1e3},   {"m", 6e4},          {"h", 3.6e6}};
    const char *cursor = text;
    double sign = 1.0;
    if (*cursor == '-' || *cursor == '+') sign = *cursor++ == '-' ? -1.0 : 1.0;
    if (strcmp(cursor, "0") == 0) return *out_ms = 0, true;
    double total_ms = 0;
    if (*cursor == '\0') return false;
    while (*cursor != '\0') { /* each pass eats at least one byte */
        const char *number_start = cursor;
        int dots = 0;
        for (; (*cursor >= '0' && *cursor <= '9') || *cursor == '.'; cursor++)
            dots += *cursor == '.';
        if (cursor == number_start || dots > 1 || (cursor - number_start == 1 && dots == 1))
            return false;
        double number = strtod(number_start, NULL);
        size_t unit_len = 0;
        while (cursor[unit_len] != '\0' && !(cursor[unit_len] >= '0' && cursor[unit_len] <= '9') &&
               cursor[unit_len] != '.')
            unit_len++;
        bool known = false;
        for (size_t i = 0; i < sizeof units / sizeof units[0] && !known; i++) {
            if (strlen(units[i].unit) != unit_len || strncmp(units[i].unit, cursor, unit_len) != 0)
                continue;
            total_ms += number * units[i].ms;
            known = true;
        }
        if (!known || !isfinite(total_ms)) return false;
        cursor += unit_len;
    }
    *out_ms = sign * total_ms;
    return true;
}

/* An integer or float counts seconds (nats-server's old form), a string is
 * a Go duration. More than zero (or zero, when allowed), at most a day. */
kc_err kci_config_duration(const kci_config_context *context, const char *key,
                           const kci_conf_value *value, bool zero_allowed, int64_t *out_ms)
{
    double ms;
    if (value->kind == KCI_CONF_INTEGER)
        ms = (double)value->as.integer * 1000.0;
    else if (value->kind == KCI_CONF_FLOAT)
        ms = value->as.real * 1000.0;
    else if (value->kind != KCI_CONF_STRING)
        return kci_config_wrong_type(context, key, value,
                                     "a duration (\"2m\", \"10s\") or seconds");
    else if (!kci_config_parse_duration_ms(value->as.string, &ms))
        return kci_config_error(
            context, value, KC_ERR_CONFIG,
            "'%s': \"%s\" is not a duration (write e.g. \"2m\", \"10s\", \"500ms\")", key,
            value->as.string);
    if (ms < 0 || (ms == 0 && !zero_allowed))
        return kci_config_error(context, value, KC_ERR_CONFIG, "'%s' must be longer than zero",
                                key);
    if (ms > KCI_CONFIG_DURATION_MS_MAX)
        return kci_config_error(context, value, KC_ERR_CONFIG,
                                "'%s' is longer than one day (a bare 2m is the number 2000000, "
                                "a size; quote durations: \"2m\")",
                                key);
    int64_t whole_ms = (int64_t)ms; /* rounded up, so 250us is 1 ms, not 0 */
    *out_ms = (double)whole_ms < ms ? whole_ms + 1 : whole_ms;
    return KC_OK;
}

kc_err kci_config_size(const kci_config_context *context, const char *key,
                       const kci_conf_value *value, int64_t minimum, int64_t maximum, int64_t *out)
{
    int64_t number;
    if (value->kind == KCI_CONF_INTEGER)
        number = value->as.integer;
    else if (value->kind != KCI_CONF_STRING ||
             kci_conf_parse_size(value->as.string, strlen(value->as.string), &number) != KC_OK)
        return kci_config_wrong_type(context, key, value,
                                     "an integer (sizes may end in k, kb, m, mb, g, gb)");
    if (minimum < 1) minimum = 1;
    if (number < minimum || number > maximum)
        return kci_config_error(context, value, KC_ERR_CONFIG,
                                "'%s' is %lld; it must be from %lld to %lld", key,
                                (long long)number, (long long)minimum, (long long)maximum);
    *out = number;
    return KC_OK;
}

bool kci_config_port_in_range(int64_t port)
{
    return port >= PORT_ANY && port <= PORT_MAX;
}

kc_err kci_config_port(const kci_config_context *context, const char *key,
                       const kci_conf_value *value, int *out)
{
    if (value->kind != KCI_CONF_INTEGER)
        return kci_config_wrong_type(context, key, value, "a port number");
    if (!kci_config_port_in_range(value->as.integer))
        return kci_config_error(context, value, KC_ERR_CONFIG,
                                "'%s' is %lld; a port is 0 to 65535 (0 or -1: any free port)", key,
                                (long long)value->as.integer);
    *out = (int)value->as.integer;
    return KC_OK;
}

/* "host:port", "[v6]:port" or ":port" (any address), as Go's
 * net.SplitHostPort reads them; the host is text[*host_start, +*host_len). */
static bool split_host_port(const char *text, size_t *host_start, size_t *host_len, int *port)
{
    const char *colon;
    *host_start = 0;
    if (text[0] == '[') {
        const char *close = strchr(text, ']');
        if (close == NULL || close[1] != ':') return false;
        *host_start = 1;
        *host_len = (size_t)(close - text) - 1;
        colon = close + 1;
    } else {
        colon = strchr(text, ':');
        if (colon == NULL || strchr(colon + 1, ':') != NULL) return false;
        *host_len = (size_t)(colon - text);
    }
    int64_t number;
    if (kci_conf_parse_size(colon + 1, strlen(colon + 1), &number) != KC_OK ||
        strspn(colon + 1, "-0123456789") != strlen(colon + 1) || !kci_config_port_in_range(number))
        return false;
    *port = (int)number;
    return true;
}

kc_err kci_config_listen(const kci_config_context *context, const char *key,
                         const kci_conf_value *value, char **host, int *port)
{
    if (value->kind == KCI_CONF_INTEGER) return kci_config_port(context, key, value, port);
    if (value->kind != KCI_CONF_STRING)
        return kci_config_wrong_type(context, key, value, "\"host:port\"");
    size_t host_start;
    size_t host_len;
    if (!split_host_port(value->as.string, &host_start, &host_len, port))
        return kci_config_error(context, value, KC_ERR_CONFIG,
                                "'%s': \"%s\" is not host:port (e.g. \"0.0.0.0:4222\")", key,
                                value->as.string);
    char *parsed_host = NULL; /* none: any address */
    if (host_len > 0 && (parsed_host = strndup(value->as.string + host_start, host_len)) == NULL)
        return KC_ERR_NOMEM;
    free(*host);
    *host = parsed_host;
    return KC_OK;
}

kc_err kci_config_string_set(char **slot, const char *text)
{
    char *copy = NULL;
    if (text != NULL && (copy = strdup(text)) == NULL) return KC_ERR_NOMEM;
    free(*slot);
    *slot = copy;
    return KC_OK;
}

void kci_config_strings_free(kci_config_strings *strings)
{
    for (size_t i = 0; i < strings->count; i++)
        free(strings->items[i]);
    free(strings->items);
    strings->items = NULL;
    strings->count = 0;
}

/* An array of non-empty strings (or, from a flag, one string with commas). */
static kc_err strings_from_value(const kci_config_context *context, const char *key,
                                 const kci_conf_value *value, kci_config_strings *out)
{
    if (value->kind != KCI_CONF_ARRAY || value->as.array.count > KCI_CONFIG_LIST_MAX)
        return kci_config_wrong_type(context, key, value, "an array of at most 64 strings");
    kci_config_strings fresh = {.items = calloc(value->as.array.count + 1, sizeof(char *))};
    if (fresh.items == NULL) return KC_ERR_NOMEM;
    for (size_t i = 0; i < value->as.array.count; i++) {
        const kci_conf_value *item = &value->as.array.items[i];
        kc_err err = KC_OK;
        if (item->kind != KCI_CONF_STRING || item->as.string[0] == '\0')
            err = kci_config_wrong_type(context, key, item, "a non-empty string");
        else if ((fresh.items[i] = strdup(item->as.string)) == NULL)
            err = KC_ERR_NOMEM;
        if (err != KC_OK) {
            kci_config_strings_free(&fresh);
            return err;
        }
        fresh.count = i + 1;
    }
    kci_config_strings_free(out);
    *out = fresh;
    return KC_OK;
}

/* ---- tables ------------------------------------------------------------ */

static kc_err apply_key(const kci_config_context *context, const kci_config_key *key,
                        const kci_conf_entry *entry, void *base)
{
    void *field = (char *)base + key->offset;
    const kci_conf_value *value = &entry->value;
    switch (key->kind) {
    case KCI_KEY_STRING:
        if (value->kind != KCI_CONF_STRING)
            return kci_config_wrong_type(context, entry->key, value, "a string");
        return kci_config_string_set(field, value->as.string);
    case KCI_KEY_BOOL:
        if (value->kind != KCI_CONF_BOOL)
            return kci_config_wrong_type(context, entry->key, value, "true or false");
        *(bool *)field = value->as.boolean;
        return KC_OK;
    case KCI_KEY_PORT: return kci_config_port(context, entry->key, value, field);
    case KCI_KEY_SIZE:
        return kci_config_size(context, entry->key, value, key->minimum, key->maximum, field);
    case KCI_KEY_DURATION_MS:
        return kci_config_duration(context, entry->key, value, key->zero_allowed, field);
    case KCI_KEY_STRINGS: return strings_from_value(context, entry->key, value, field);
    case KCI_KEY_HANDLER: return key->handler(context, entry, field);
    case KCI_KEY_IGNORED:
        kci_warn("%s: line %u: ignoring nats-server option '%s' (kcobrad has no use for it)",
                 context->source, value->line, entry->key);
        return KC_OK;
    case KCI_KEY_UNSUPPORTED:
        return kci_config_error(context, value, KC_ERR_CONFIG,
                                "nats-server option '%s' is not supported by kcobrad", entry->key);
    }
    return KC_ERR_INVALID_ARGUMENT;
}

kc_err kci_config_apply_map(const kci_config_context *context, const char *block,
                            const kci_conf_value *map, const kci_config_key *keys, size_t key_count,
                            void *base)
{
    assert(map->kind == KCI_CONF_MAP);
    for (size_t i = 0; i < map->as.map.count; i++) {
        const kci_conf_entry *entry = &map->as.map.entries[i];
        const kci_config_key *key = NULL;
        for (size_t k = 0; k < key_count && key == NULL; k++)
            if (strcasecmp(keys[k].name, entry->key) == 0) key = &keys[k];
        if (key == NULL && entry->value.referenced) continue; /* a variable, as nats-server */
        if (key == NULL)
            return kci_config_error(context, &entry->value, KC_ERR_CONFIG,
                                    "unknown key '%s'%s%s (see docs/config.md)", entry->key,
                                    block[0] != '\0' ? " in " : "", block);
        kc_err err = apply_key(context, key, entry, base);
        if (err != KC_OK) return err == KC_ERR_NOMEM ? KC_ERR_NOMEM : KC_ERR_CONFIG;
    }
    return KC_OK;
}

/* A flag's text as the file's value: no text or "true"/"false" for a
 * bool, an integer for a port, a string otherwise (sizes and durations
 * parse from strings as in the file). */
static bool text_value(const kci_config_key *key, const char *text, kci_conf_value *value)
{
    memset(value, 0, sizeof *value);
    if (key->kind == KCI_KEY_BOOL) {
        value->kind = KCI_CONF_BOOL;
        value->as.boolean = text == NULL || strcmp(text, "true") == 0;
        return text == NULL || strcmp(text, "true") == 0 || strcmp(text, "false") == 0;
    }
    if (text == NULL) return false;
    char *end = NULL;
    long long number = strtoll(text, &end, 10);
    if (key->kind == KCI_KEY_PORT && end != text && *end == '\0') {
        value->kind = KCI_CONF_INTEGER;
        value->as.integer = number;
        return true;
    }
    value->kind = KCI_CONF_STRING;
    value->as.string = (char *)text;
    return true;
}

kc_err kci_config_apply_texts(const kci_config_context *context, const kci_config_key *key,
                              const char *const *texts, size_t count, void *base)
{
    assert(key->kind == KCI_KEY_STRINGS);
    if (count > KCI_CONFIG_LIST_MAX)
        return kci_config_error(context, NULL, KC_ERR_CONFIG, "'%s' has more than %d values",
                                key->name, KCI_CONFIG_LIST_MAX);
    kci_conf_value list[KCI_CONFIG_LIST_MAX];
    for (size_t i = 0; i < count; i++)
        list[i] = (kci_conf_value){.kind = KCI_CONF_STRING, .as.string = (char *)texts[i]};
    kci_conf_entry entry = {.key = (char *)key->name, .value = {.kind = KCI_CONF_ARRAY}};
    entry.value.as.array.items = list;
    entry.value.as.array.count = count;
    return apply_key(context, key, &entry, base);
}

kc_err kci_config_apply_text(const kci_config_context *context, const kci_config_key *key,
                             const char *text, void *base)
{
    assert(key->kind != KCI_KEY_STRINGS); /* lists: kci_config_apply_texts */
    kci_conf_entry entry = {.key = (char *)key->name};
    if (!text_value(key, text, &entry.value))
        return kci_config_error(context, NULL, KC_ERR_CONFIG, "'%s': expected %s", key->name,
                                key->kind == KCI_KEY_BOOL ? "true or false" : "a value");
    return apply_key(context, key, &entry, base);
}

static void format_duration(int64_t ms, char *out, size_t out_size)
{
    if (ms == 0)
        snprintf(out, out_size, "0");
    else if (ms % 3600000 == 0)
        snprintf(out, out_size, "%" PRId64 "h", ms / 3600000);
    else if (ms % 60000 == 0)
        snprintf(out, out_size, "%" PRId64 "m", ms / 60000);
    else if (ms % 1000 == 0)
        snprintf(out, out_size, "%" PRId64 "s", ms / 1000);
    else
        snprintf(out, out_size, "%" PRId64 "ms", ms);
}

void kci_config_format_value(const kci_config_key *key, const void *base, char *out,
                             size_t out_size)
{
    assert(out_size > 0);
    const void *field = (const char *)base + key->offset;
    out[0] = '\0';
    switch (key->kind) {
    case KCI_KEY_STRING: {
        const char *text = *(char *const *)field;
        snprintf(out, out_size, "%s", text != NULL ? text : "");
        break;
    }
    case KCI_KEY_BOOL:
        snprintf(out, out_size, "%s", *(const bool *)field ? "true" : "false");
        break;
    case KCI_KEY_PORT: snprintf(out, out_size, "%d", *(const int *)field); break;
    case KCI_KEY_SIZE: snprintf(out, out_size, "%" PRId64, *(const int64_t *)field); break;
    case KCI_KEY_DURATION_MS: format_duration(*(const int64_t *)field, out, out_size); break;
    case KCI_KEY_STRINGS: {
        const kci_config_strings *list = field;
        size_t used = 0;
        for (size_t i = 0; i < list->count && used < out_size; i++)
            used += (size_t)snprintf(out + used, out_size - used, "%s%s", i > 0 ? "," : "",
                                     list->items[i]);
        break;
    }
    default: break; /* handlers format themselves */
    }
}

static bool strings_equal(const char *a, const char *b)
{
    if (a == NULL || b == NULL) return a == b;
    return strcmp(a, b) == 0;
}

static bool field_equal(const kci_config_key *key, const void *a, const void *b)
{
    const char *field_a = (const char *)a + key->offset, *field_b = (const char *)b + key->offset;
    switch (key->kind) {
    case KCI_KEY_STRING: return strings_equal(*(char *const *)field_a, *(char *const *)field_b);
    case KCI_KEY_BOOL: return *(const bool *)field_a == *(const bool *)field_b;
    case KCI_KEY_PORT: return *(const int *)field_a == *(const int *)field_b;
    case KCI_KEY_SIZE:
    case KCI_KEY_DURATION_MS: return *(const int64_t *)field_a == *(const int64_t *)field_b;
    case KCI_KEY_STRINGS: {
        const kci_config_strings *list_a = (const void *)field_a, *list_b = (const void *)field_b;
        if (list_a->count != list_b->count) return false;
        for (size_t i = 0; i < list_a->count; i++)
            if (!strings_equal(list_a->items[i], list_b->items[i])) return false;
        return true;
    }
    default: return true; /* a handler's field is compared by its part */
    }
}

bool kci_config_equal(const kci_config_key *keys, size_t key_count, const void *a, const void *b)
{
    for (size_t k = 0; k < key_count; k++)
        if (!field_equal(&keys[k], a, b)) return false;
    return true;
}

void kci_config_free_fields(const kci_config_key *keys, size_t key_count, void *base)
{
    for (size_t k = 0; k < key_count; k++) {
        void *field = (char *)base + keys[k].offset;
        if (keys[k].kind == KCI_KEY_STRING) {
            free(*(char **)field);
            *(char **)field = NULL;
        } else if (keys[k].kind == KCI_KEY_STRINGS) {
            kci_config_strings_free(field);
        }
    }
}
