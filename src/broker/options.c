/* options.c - kcobrad's options: the defaults, the config file's keys
 * applied to them, and the checks on the result. The command line (flags,
 * --help, load and reload, which put defaults, file and flags together) is
 * options_flags.c.
 *
 * Design: the keys of each config block (top level, authorization, users,
 * permissions, tls) are a table of rules naming the key, what kind of value
 * it takes and where it goes, so adding a key is one line and an unknown key
 * is always a clear error with its line. A block such as authorization or tls
 * is read into a staging struct first and committed whole, so it replaces the
 * earlier settings as it does in nats-server. Cross-key checks live in one
 * place, kci_options_validate, run after the flags so that a flag can finish
 * what the file started (--tlskey for a file's cert_file).
 *
 * Limits: at most KCI_OPTIONS_USERS_MAX users and
 * KCI_OPTIONS_PERMISSION_SUBJECTS_MAX subjects per list; durations at most
 * OPTIONS_DURATION_MS_MAX. */
#include "options.h"

#include <assert.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/log.h"
#include "options_internal.h"
#include "subject.h"
#include "tls.h"

enum {
    OPTIONS_PORT_MAX = 65535,
    OPTIONS_PORT_ANY = -1,                         /* like 0: any free port, as in nats-server */
    OPTIONS_DURATION_MS_MAX = 24 * 60 * 60 * 1000, /* one day; longer is a mistake */
    OPTIONS_MESSAGE_BYTES_MAX = 512,
    OPTIONS_TOKEN_BYTES_MAX = 128, /* a request type, as libkingcobra's KC_TYPE_BYTES_MAX */
};

typedef struct apply_context {
    const char *source; /* the config file, or "config" */
    char *error;
    size_t error_size;
} apply_context;

/* ------------------------------------------------------------- memory */

static void strings_free(char **strings, size_t count)
{
    for (size_t i = 0; i < count; i++)
        free(strings[i]);
    free(strings);
}

static void permission_list_free(kci_permission_list *list)
{
    strings_free(list->allow, list->allow_count);
    strings_free(list->deny, list->deny_count);
    memset(list, 0, sizeof *list);
}

static void permissions_free(kci_permissions *permissions)
{
    permission_list_free(&permissions->publish);
    permission_list_free(&permissions->subscribe);
}

static void user_free(kci_user *user)
{
    free(user->user);
    free(user->password);
    permissions_free(&user->permissions);
    memset(user, 0, sizeof *user);
}

void kci_options_users_free(kci_user *users, size_t count)
{
    for (size_t i = 0; i < count; i++)
        user_free(&users[i]);
    free(users);
}

/* Replaces *slot with a copy of text (NULL clears it). */
kc_err kci_options_string_set(char **slot, const char *text)
{
    char *copy = NULL;
    if (text != NULL && (copy = strdup(text)) == NULL) return KC_ERR_NOMEM;
    free(*slot);
    *slot = copy;
    return KC_OK;
}

void kci_options_init_defaults(kci_options *options)
{
    assert(options != NULL);
    memset(options, 0, sizeof *options);
    options->host = strdup(KCI_OPTIONS_DEFAULT_HOST); /* NULL here is reported by load */
    options->port = KCI_DEFAULT_PORT;
    options->max_payload_bytes = KCI_DEFAULT_MAX_PAYLOAD_BYTES;
    options->max_pending_bytes = KCI_DEFAULT_MAX_PENDING_BYTES;
    options->max_control_line_bytes = KCI_DEFAULT_MAX_CONTROL_LINE_BYTES;
    options->max_connections = KCI_DEFAULT_MAX_CONNECTIONS;
    options->ping_interval_ms = KCI_DEFAULT_PING_INTERVAL_MS;
    options->ping_max = KCI_DEFAULT_PING_MAX;
    options->write_deadline_ms = KCI_DEFAULT_WRITE_DEADLINE_MS;
    options->auth_timeout_ms = KCI_DEFAULT_AUTH_TIMEOUT_MS;
    options->tls_timeout_ms = KCI_DEFAULT_TLS_TIMEOUT_MS;
    options->logtime = true;
    options->suggestions_enabled = true;
    options->ingress_port = KCI_DEFAULT_INGRESS_PORT;
    options->ingress_timeout_ms = KCI_DEFAULT_INGRESS_TIMEOUT_MS;
    options->ledger_reap_age_ms = -1;
    options->persister_enabled = true;
}

void kci_options_free(kci_options *options)
{
    if (options == NULL) return;
    free(options->host);
    free(options->server_name);
    free(options->http_host);
    free(options->auth_token);
    kci_options_users_free(options->users, options->user_count);
    permissions_free(&options->default_permissions);
    free(options->tls_cert_file);
    free(options->tls_key_file);
    free(options->tls_ca_file);
    free(options->tls_ciphers);
    free(options->tls_groups);
    free(options->log_file);
    free(options->pid_file);
    free(options->data_dir);
    free(options->suggestions_file);
    free(options->ingress_host);
    free(options->ingress_type);
    free(options->ledger_dir);
    free(options->persister_dir);
    free(options->persister_durability);
    free(options->arbiter_id);
    strings_free(options->arbiter_probes, options->arbiter_probe_count);
    strings_free(options->arbiter_pretrusted, options->arbiter_pretrusted_count);
    strings_free(options->arbiter_peers, options->arbiter_peer_count);
    free(options->config_file);
    for (int i = 0; i < options->argument_count; i++)
        free(options->arguments[i]);
    free(options->arguments);
    memset(options, 0, sizeof *options);
}

/* ---------------------------------------------------------- messages */

__attribute__((format(printf, 4, 5))) static kc_err config_error(const apply_context *context,
                                                                 const kci_conf_value *value,
                                                                 kc_err code, const char *format,
                                                                 ...)
{
    if (context->error_size == 0) return code;
    char message[OPTIONS_MESSAGE_BYTES_MAX];
    va_list args;
    va_start(args, format);
    vsnprintf(message, sizeof message, format, args);
    va_end(args);
    if (value != NULL)
        snprintf(context->error, context->error_size, "%s: line %u: %s", context->source,
                 value->line, message);
    else
        snprintf(context->error, context->error_size, "%s: %s", context->source, message);
    return code;
}

kc_err kci_options_plain_error(char *error, size_t error_size, const char *format, ...)
{
    if (error_size > 0) {
        va_list args;
        va_start(args, format);
        vsnprintf(error, error_size, format, args);
        va_end(args);
    }
    return KC_ERR_CONFIG;
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

static kc_err wrong_type(const apply_context *context, const char *key, const kci_conf_value *value,
                         const char *expected)
{
    return config_error(context, value, KC_ERR_CONFIG, "'%s' must be %s, not %s", key, expected,
                        kind_name(value->kind));
}

/* --------------------------------------------------- values of keys */

/* Go's time.ParseDuration, in milliseconds: "300ms", "1.5h", "2h45m". */
static bool parse_duration_ms(const char *text, double *out_ms)
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

/* A duration: an integer or float counts seconds (nats-server's old form),
 * a string is a Go duration. Positive and at most OPTIONS_DURATION_MS_MAX. */
static kc_err duration_from_value(const apply_context *context, const char *key,
                                  const kci_conf_value *value, int64_t *out_ms)
{
    double ms;
    if (value->kind == KCI_CONF_INTEGER)
        ms = (double)value->as.integer * 1000.0;
    else if (value->kind == KCI_CONF_FLOAT)
        ms = value->as.real * 1000.0;
    else if (value->kind != KCI_CONF_STRING)
        return wrong_type(context, key, value, "a duration (\"2m\", \"10s\") or seconds");
    else if (!parse_duration_ms(value->as.string, &ms))
        return config_error(
            context, value, KC_ERR_CONFIG,
            "'%s': \"%s\" is not a duration (write e.g. \"2m\", \"10s\", \"500ms\")", key,
            value->as.string);
    if (ms <= 0)
        return config_error(context, value, KC_ERR_CONFIG, "'%s' must be longer than zero", key);
    if (ms > OPTIONS_DURATION_MS_MAX)
        return config_error(context, value, KC_ERR_CONFIG,
                            "'%s' is longer than one day (a bare 2m is the number 2000000, "
                            "a size; quote durations: \"2m\")",
                            key);
    int64_t whole_ms = (int64_t)ms; /* rounded up, so 250us is 1 ms, not 0 */
    *out_ms = (double)whole_ms < ms ? whole_ms + 1 : whole_ms;
    return KC_OK;
}

static kc_err size_from_value(const apply_context *context, const char *key,
                              const kci_conf_value *value, int64_t maximum, int64_t *out)
{
    int64_t number;
    if (value->kind == KCI_CONF_INTEGER)
        number = value->as.integer;
    else if (value->kind != KCI_CONF_STRING ||
             kci_conf_parse_size(value->as.string, strlen(value->as.string), &number) != KC_OK)
        return wrong_type(context, key, value, "an integer (sizes may end in k, kb, m, mb, g, gb)");
    if (number < 1 || number > maximum)
        return config_error(context, value, KC_ERR_CONFIG,
                            "'%s' is %lld; it must be from 1 to %lld", key, (long long)number,
                            (long long)maximum);
    *out = number;
    return KC_OK;
}

bool kci_options_port_in_range(int64_t port)
{
    return port >= OPTIONS_PORT_ANY && port <= OPTIONS_PORT_MAX;
}

static kc_err port_from_value(const apply_context *context, const char *key,
                              const kci_conf_value *value, int *out)
{
    if (value->kind != KCI_CONF_INTEGER) return wrong_type(context, key, value, "a port number");
    if (!kci_options_port_in_range(value->as.integer))
        return config_error(context, value, KC_ERR_CONFIG,
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
        strspn(colon + 1, "-0123456789") != strlen(colon + 1) || !kci_options_port_in_range(number))
        return false;
    *port = (int)number;
    return true;
}

/* listen / http: a port, or "host:port". */
static kc_err listen_from_value(const apply_context *context, const char *key,
                                const kci_conf_value *value, char **host, int *port)
{
    if (value->kind == KCI_CONF_INTEGER) return port_from_value(context, key, value, port);
    if (value->kind != KCI_CONF_STRING) return wrong_type(context, key, value, "\"host:port\"");
    size_t host_start;
    size_t host_len;
    if (!split_host_port(value->as.string, &host_start, &host_len, port))
        return config_error(context, value, KC_ERR_CONFIG,
                            "'%s': \"%s\" is not host:port (e.g. \"0.0.0.0:4222\")", key,
                            value->as.string);
    char *parsed_host = NULL; /* none: any address */
    if (host_len > 0 && (parsed_host = strndup(value->as.string + host_start, host_len)) == NULL)
        return KC_ERR_NOMEM;
    free(*host);
    *host = parsed_host;
    return KC_OK;
}

/* ------------------------------------------------------- key tables */

typedef enum key_kind {
    KEY_STRING,      /* char * at offset */
    KEY_BOOL,        /* bool at offset */
    KEY_PORT,        /* int at offset, -1 to 65535 */
    KEY_SIZE,        /* int64_t at offset, 1 to maximum; bytes or a count */
    KEY_DURATION_MS, /* int64_t at offset: seconds, or a duration string */
    KEY_HANDLER,     /* handler(context, entry, base + offset) */
    KEY_IGNORED,     /* a nats-server option kcobrad has no use for: warn */
    KEY_UNSUPPORTED, /* a nats-server feature kcobrad lacks: error */
} key_kind;

typedef kc_err (*key_handler)(const apply_context *context, const kci_conf_entry *entry,
                              void *field);

typedef struct key_rule {
    const char *name;
    key_kind kind;
    size_t offset;
    int64_t maximum; /* KEY_SIZE */
    key_handler handler;
} key_rule;

#define RULE_COUNT(rules) (sizeof(rules) / sizeof((rules)[0]))

static kc_err apply_rule(const apply_context *context, const key_rule *rule,
                         const kci_conf_entry *entry, void *base)
{
    void *field = (char *)base + rule->offset;
    const kci_conf_value *value = &entry->value;
    switch (rule->kind) {
    case KEY_STRING:
        if (value->kind != KCI_CONF_STRING)
            return wrong_type(context, entry->key, value, "a string");
        return kci_options_string_set(field, value->as.string);
    case KEY_BOOL:
        if (value->kind != KCI_CONF_BOOL)
            return wrong_type(context, entry->key, value, "true or false");
        *(bool *)field = value->as.boolean;
        return KC_OK;
    case KEY_PORT: return port_from_value(context, entry->key, value, field);
    case KEY_SIZE: return size_from_value(context, entry->key, value, rule->maximum, field);
    case KEY_DURATION_MS: return duration_from_value(context, entry->key, value, field);
    case KEY_HANDLER: return rule->handler(context, entry, field);
    case KEY_IGNORED:
        kci_warn("%s: line %u: ignoring nats-server option '%s' (kcobrad has no use for it)",
                 context->source, value->line, entry->key);
        return KC_OK;
    case KEY_UNSUPPORTED:
        return config_error(context, value, KC_ERR_CONFIG,
                            "nats-server option '%s' is not supported by kcobrad", entry->key);
    }
    return KC_ERR_INVALID_ARGUMENT;
}

/* Applies every entry of map by the rules; block names it in messages. */
static kc_err apply_map(const apply_context *context, const char *block, const kci_conf_value *map,
                        const key_rule *rules, size_t rule_count, void *base)
{
    assert(map->kind == KCI_CONF_MAP);
    for (size_t i = 0; i < map->as.map.count; i++) {
        const kci_conf_entry *entry = &map->as.map.entries[i];
        const key_rule *rule = NULL;
        for (size_t r = 0; r < rule_count && rule == NULL; r++)
            if (strcasecmp(rules[r].name, entry->key) == 0) rule = &rules[r];
        if (rule == NULL && entry->value.referenced) continue; /* a variable, as nats-server */
        if (rule == NULL)
            return config_error(context, &entry->value, KC_ERR_CONFIG,
                                "unknown key '%s'%s%s (see docs/config.md)", entry->key,
                                block[0] != '\0' ? " in " : "", block);
        kc_err err = apply_rule(context, rule, entry, base);
        if (err != KC_OK) return err == KC_ERR_NOMEM ? KC_ERR_NOMEM : KC_ERR_CONFIG;
    }
    return KC_OK;
}

/* -------------------------------------------------------- permissions */

static kc_err check_subject(const apply_context *context, const kci_conf_value *value)
{
    const char *subject = value->as.string;
    if (kci_subject_valid_filter(subject, strlen(subject))) return KC_OK;
    if (strchr(subject, ' ') != NULL)
        return config_error(context, value, KC_ERR_CONFIG,
                            "permission \"%s\": queue group permissions (\"subject queue\") "
                            "are not supported",
                            subject);
    return config_error(context, value, KC_ERR_CONFIG, "permission \"%s\" is not a valid subject",
                        subject);
}

/* A subject or an array of subjects, each a valid filter. */
static kc_err subjects_from_value(const apply_context *context, const char *key,
                                  const kci_conf_value *value, char ***out, size_t *out_count)
{
    const kci_conf_value *items = value;
    size_t count = 1;
    if (value->kind == KCI_CONF_ARRAY) {
        items = value->as.array.items;
        count = value->as.array.count;
    } else if (value->kind != KCI_CONF_STRING) {
        return wrong_type(context, key, value, "a subject or an array of subjects");
    }
    if (count == 0)
        return config_error(context, value, KC_ERR_CONFIG,
                            "'%s' is an empty list, which nats-server reads as \"no limit\"; "
                            "write deny: \">\" to allow nothing, or remove it",
                            key);
    if (count > KCI_OPTIONS_PERMISSION_SUBJECTS_MAX)
        return config_error(context, value, KC_ERR_CONFIG, "'%s' has more than %d subjects", key,
                            KCI_OPTIONS_PERMISSION_SUBJECTS_MAX);
    for (size_t i = 0; i < count; i++) {
        if (items[i].kind != KCI_CONF_STRING)
            return wrong_type(context, key, &items[i], "a subject");
        kc_err err = check_subject(context, &items[i]);
        if (err != KC_OK) return err;
    }
    char **subjects = calloc(count, sizeof *subjects);
    if (subjects == NULL) return KC_ERR_NOMEM;
    for (size_t i = 0; i < count; i++) {
        if ((subjects[i] = strdup(items[i].as.string)) == NULL) {
            strings_free(subjects, i);
            return KC_ERR_NOMEM;
        }
    }
    strings_free(*out, *out_count);
    *out = subjects;
    *out_count = count;
    return KC_OK;
}

static kc_err apply_allow(const apply_context *context, const kci_conf_entry *entry, void *field)
{
    kci_permission_list *list = field;
    return subjects_from_value(context, entry->key, &entry->value, &list->allow,
                               &list->allow_count);
}

static kc_err apply_deny(const apply_context *context, const kci_conf_entry *entry, void *field)
{
    kci_permission_list *list = field;
    return subjects_from_value(context, entry->key, &entry->value, &list->deny, &list->deny_count);
}

static const key_rule permission_list_rules[] = {
    {"allow", KEY_HANDLER, 0, 0, apply_allow},
    {"deny", KEY_HANDLER, 0, 0, apply_deny},
};

/* publish: "subject" | [subjects] (an allow list) | {allow: ..., deny: ...} */
static kc_err apply_permission_list(const apply_context *context, const kci_conf_entry *entry,
                                    void *field)
{
    kci_permission_list *list = field;
    permission_list_free(list);
    const kci_conf_value *value = &entry->value;
    if (value->kind != KCI_CONF_MAP) {
        list->present = true;
        return subjects_from_value(context, entry->key, value, &list->allow, &list->allow_count);
    }
    if (value->as.map.count == 0) return KC_OK; /* nats-server: no permission set */
    list->present = true;
    return apply_map(context, entry->key, value, permission_list_rules,
                     RULE_COUNT(permission_list_rules), list);
}

static const key_rule permissions_rules[] = {
    {"publish", KEY_HANDLER, offsetof(kci_permissions, publish), 0, apply_permission_list},
    {"pub", KEY_HANDLER, offsetof(kci_permissions, publish), 0, apply_permission_list},
    {"import", KEY_HANDLER, offsetof(kci_permissions, publish), 0, apply_permission_list},
    {"subscribe", KEY_HANDLER, offsetof(kci_permissions, subscribe), 0, apply_permission_list},
    {"sub", KEY_HANDLER, offsetof(kci_permissions, subscribe), 0, apply_permission_list},
    {"export", KEY_HANDLER, offsetof(kci_permissions, subscribe), 0, apply_permission_list},
    {"allow_responses", KEY_UNSUPPORTED, 0, 0, NULL},
    {"publish_allow_responses", KEY_UNSUPPORTED, 0, 0, NULL},
};

static kc_err apply_permissions(const apply_context *context, const kci_conf_entry *entry,
                                void *field)
{
    kci_permissions *permissions = field;
    if (entry->value.kind != KCI_CONF_MAP)
        return wrong_type(context, entry->key, &entry->value,
                          "a map {publish: ..., subscribe: ...}");
    permissions_free(permissions);
    return apply_map(context, entry->key, &entry->value, permissions_rules,
                     RULE_COUNT(permissions_rules), permissions);
}

/* ------------------------------------------------------ authorization */

static const key_rule user_rules[] = {
    {"user", KEY_STRING, offsetof(kci_user, user), 0, NULL},
    {"username", KEY_STRING, offsetof(kci_user, user), 0, NULL},
    {"password", KEY_STRING, offsetof(kci_user, password), 0, NULL},
    {"pass", KEY_STRING, offsetof(kci_user, password), 0, NULL},
    {"permissions", KEY_HANDLER, offsetof(kci_user, permissions), 0, apply_permissions},
    {"permission", KEY_HANDLER, offsetof(kci_user, permissions), 0, apply_permissions},
    {"authorization", KEY_HANDLER, offsetof(kci_user, permissions), 0, apply_permissions},
    {"nkey", KEY_UNSUPPORTED, 0, 0, NULL},
    {"allowed_connection_types", KEY_UNSUPPORTED, 0, 0, NULL},
    {"connection_types", KEY_UNSUPPORTED, 0, 0, NULL},
    {"clients", KEY_UNSUPPORTED, 0, 0, NULL},
    {"account", KEY_UNSUPPORTED, 0, 0, NULL},
};

typedef struct user_list {
    kci_user *users;
    size_t count;
    bool present; /* "users" was given, even if empty */
} user_list;

static kc_err user_from_value(const apply_context *context, const kci_conf_value *value,
                              const user_list *earlier, kci_user *user)
{
    if (value->kind != KCI_CONF_MAP) return wrong_type(context, "users", value, "a map per user");
    kc_err err = apply_map(context, "a user", value, user_rules, RULE_COUNT(user_rules), user);
    if (err != KC_OK) return err;
    if (user->user == NULL || user->user[0] == '\0')
        return config_error(context, value, KC_ERR_CONFIG, "a user needs a 'user' name");
    if (user->password == NULL && (user->password = strdup("")) == NULL) return KC_ERR_NOMEM;
    for (size_t i = 0; i < earlier->count; i++)
        if (strcmp(earlier->users[i].user, user->user) == 0)
            return config_error(context, value, KC_ERR_CONFIG, "user \"%s\" is defined twice",
                                user->user);
    return KC_OK;
}

static kc_err apply_users(const apply_context *context, const kci_conf_entry *entry, void *field)
{
    user_list *list = field;
    const kci_conf_value *value = &entry->value;
    if (value->kind != KCI_CONF_ARRAY) return wrong_type(context, entry->key, value, "an array");
    size_t count = value->as.array.count;
    if (count > KCI_OPTIONS_USERS_MAX)
        return config_error(context, value, KC_ERR_CONFIG, "more than %d users",
                            KCI_OPTIONS_USERS_MAX);
    kci_options_users_free(list->users, list->count);
    *list = (user_list){.present = true};
    if (count == 0) return KC_OK;
    if ((list->users = calloc(count, sizeof *list->users)) == NULL) return KC_ERR_NOMEM;
    for (size_t i = 0; i < count; i++) {
        kci_user user = {0};
        kc_err err = user_from_value(context, &value->as.array.items[i], list, &user);
        if (err != KC_OK) {
            user_free(&user);
            return err;
        }
        list->users[list->count++] = user;
    }
    return KC_OK;
}

typedef struct authorization_block {
    char *token;
    char *user; /* the single user/password form */
    char *password;
    user_list users;
    kci_permissions default_permissions;
    int64_t timeout_ms;
} authorization_block;

static void authorization_block_free(authorization_block *block)
{
    free(block->token);
    free(block->user);
    free(block->password);
    kci_options_users_free(block->users.users, block->users.count);
    permissions_free(&block->default_permissions);
}

static const key_rule authorization_rules[] = {
    {"token", KEY_STRING, offsetof(authorization_block, token), 0, NULL},
    {"user", KEY_STRING, offsetof(authorization_block, user), 0, NULL},
    {"username", KEY_STRING, offsetof(authorization_block, user), 0, NULL},
    {"password", KEY_STRING, offsetof(authorization_block, password), 0, NULL},
    {"pass", KEY_STRING, offsetof(authorization_block, password), 0, NULL},
    {"users", KEY_HANDLER, offsetof(authorization_block, users), 0, apply_users},
    {"default_permissions", KEY_HANDLER, offsetof(authorization_block, default_permissions), 0,
     apply_permissions},
    {"default_permission", KEY_HANDLER, offsetof(authorization_block, default_permissions), 0,
     apply_permissions},
    {"permissions", KEY_HANDLER, offsetof(authorization_block, default_permissions), 0,
     apply_permissions},
    {"timeout", KEY_DURATION_MS, offsetof(authorization_block, timeout_ms), 0, NULL},
};

/* The forms nats-server allows: a token, or one user/password, or users. */
static kc_err authorization_check(const apply_context *context, const kci_conf_value *value,
                                  const authorization_block *block)
{
    if (block->token != NULL && block->token[0] == '\0')
        return config_error(context, value, KC_ERR_CONFIG, "authorization token is empty");
    if (block->token != NULL && (block->user != NULL || block->password != NULL))
        return config_error(context, value, KC_ERR_CONFIG,
                            "authorization cannot have both a token and a user/password");
    if (block->token != NULL && block->users.present)
        return config_error(context, value, KC_ERR_CONFIG,
                            "authorization cannot have both a token and a users array");
    if (block->user != NULL && block->users.present)
        return config_error(context, value, KC_ERR_CONFIG,
                            "authorization cannot have both a single user and a users array");
    if (block->password != NULL && (block->user == NULL || block->user[0] == '\0'))
        return config_error(context, value, KC_ERR_CONFIG,
                            "authorization has a password but no user");
    return KC_OK;
}

static kc_err authorization_commit(kci_options *options, authorization_block *block)
{
    if (block->user != NULL) { /* the single user becomes a list of one */
        kci_user *user = calloc(1, sizeof *user);
        if (user == NULL) return KC_ERR_NOMEM;
        user->user = block->user;
        user->password = block->password != NULL ? block->password : strdup("");
        block->user = block->password = NULL;
        if (user->password == NULL) {
            kci_options_users_free(user, 1);
            return KC_ERR_NOMEM;
        }
        block->users = (user_list){user, 1, true}; /* the list owns the user now */
        // cppcheck-suppress memleak ; cppcheck does not follow the compound literal
    }
    free(options->auth_token);
    kci_options_users_free(options->users, options->user_count);
    permissions_free(&options->default_permissions);
    options->auth_token = block->token;
    options->users = block->users.users;
    options->user_count = block->users.count;
    options->default_permissions = block->default_permissions;
    options->auth_timeout_ms = block->timeout_ms;
    memset(block, 0, sizeof *block);
    return KC_OK;
}

static kc_err apply_authorization(const apply_context *context, const kci_conf_entry *entry,
                                  void *field)
{
    kci_options *options = field;
    if (entry->value.kind != KCI_CONF_MAP)
        return wrong_type(context, entry->key, &entry->value, "a map");
    authorization_block block = {.timeout_ms = KCI_DEFAULT_AUTH_TIMEOUT_MS};
    kc_err err = apply_map(context, "authorization", &entry->value, authorization_rules,
                           RULE_COUNT(authorization_rules), &block);
    if (err == KC_OK) err = authorization_check(context, &entry->value, &block);
    if (err == KC_OK) err = authorization_commit(options, &block);
    authorization_block_free(&block);
    return err;
}

/* ---------------------------------------------------------------- tls */

typedef struct tls_block {
    char *cert_file;
    char *key_file;
    char *ca_file;
    bool verify;
    int64_t timeout_ms;
    char *ciphers; /* OpenSSL names, ':'-joined (tls.h) */
    char *groups;
} tls_block;

/* cipher_suites and curve_preferences: an array of nats-server's (Go's)
 * names, each mapped by tls.c to OpenSSL's and joined with ':'. */
static kc_err tls_name_list(const apply_context *context, const kci_conf_entry *entry,
                            char **joined_out, bool ciphers)
{
    const kci_conf_value *value = &entry->value;
    if (value->kind != KCI_CONF_ARRAY || value->as.array.count == 0)
        return wrong_type(context, entry->key, value, "a non-empty array");
    size_t joined_size = 1;
    for (size_t i = 0; i < value->as.array.count; i++) {
        const kci_conf_value *item = &value->as.array.items[i];
        if (item->kind != KCI_CONF_STRING)
            return wrong_type(context, entry->key, item, "an array of names");
        bool known_weak = false;
        const char *mapped = ciphers ? kci_tls_cipher_from_go_name(item->as.string, &known_weak)
                                     : kci_tls_group_from_go_name(item->as.string);
        if (mapped == NULL)
            return config_error(
                context, item, KC_ERR_CONFIG, "'%s': %s \"%s\"; use %s", entry->key,
                known_weak ? "no forward secrecy or no AEAD in" : "unknown name", item->as.string,
                ciphers ? kci_tls_cipher_names_accepted() : kci_tls_group_names_accepted());
        joined_size += strlen(mapped) + 1;
    }
    char *joined = calloc(1, joined_size);
    if (joined == NULL) return KC_ERR_NOMEM;
    for (size_t i = 0; i < value->as.array.count; i++) {
        bool known_weak = false;
        const char *name = value->as.array.items[i].as.string;
        if (i > 0) strcat(joined, ":");
        strcat(joined, ciphers ? kci_tls_cipher_from_go_name(name, &known_weak)
                               : kci_tls_group_from_go_name(name));
    }
    free(*joined_out);
    *joined_out = joined;
    return KC_OK;
}

static kc_err apply_cipher_suites(const apply_context *context, const kci_conf_entry *entry,
                                  void *field)
{
    return tls_name_list(context, entry, field, true);
}

static kc_err apply_curve_preferences(const apply_context *context, const kci_conf_entry *entry,
                                      void *field)
{
    return tls_name_list(context, entry, field, false);
}

static const key_rule tls_rules[] = {
    {"cert_file", KEY_STRING, offsetof(tls_block, cert_file), 0, NULL},
    {"key_file", KEY_STRING, offsetof(tls_block, key_file), 0, NULL},
    {"ca_file", KEY_STRING, offsetof(tls_block, ca_file), 0, NULL},
    {"verify", KEY_BOOL, offsetof(tls_block, verify), 0, NULL},
    {"timeout", KEY_DURATION_MS, offsetof(tls_block, timeout_ms), 0, NULL},
    {"insecure", KEY_UNSUPPORTED, 0, 0, NULL},
    {"verify_and_map", KEY_UNSUPPORTED, 0, 0, NULL},
    {"verify_cert_and_check_known_urls", KEY_UNSUPPORTED, 0, 0, NULL},
    {"cipher_suites", KEY_HANDLER, offsetof(tls_block, ciphers), 0, apply_cipher_suites},
    {"curve_preferences", KEY_HANDLER, offsetof(tls_block, groups), 0, apply_curve_preferences},
    {"pinned_certs", KEY_UNSUPPORTED, 0, 0, NULL},
    {"handshake_first", KEY_UNSUPPORTED, 0, 0, NULL},
    {"min_version", KEY_UNSUPPORTED, 0, 0, NULL},
    {"cert_store", KEY_UNSUPPORTED, 0, 0, NULL},
    {"cert_match", KEY_UNSUPPORTED, 0, 0, NULL},
    {"cert_match_by", KEY_UNSUPPORTED, 0, 0, NULL},
    {"certs", KEY_UNSUPPORTED, 0, 0, NULL},
    {"connection_rate_limit", KEY_UNSUPPORTED, 0, 0, NULL},
    {"ocsp_peer", KEY_UNSUPPORTED, 0, 0, NULL},
};

static kc_err apply_tls(const apply_context *context, const kci_conf_entry *entry, void *field)
{
    kci_options *options = field;
    if (entry->value.kind != KCI_CONF_MAP)
        return wrong_type(context, entry->key, &entry->value, "a map");
    tls_block block = {.timeout_ms = KCI_DEFAULT_TLS_TIMEOUT_MS};
    kc_err err = apply_map(context, "tls", &entry->value, tls_rules, RULE_COUNT(tls_rules), &block);
    if (err == KC_OK) { /* the block replaces all earlier TLS settings */
        free(options->tls_cert_file);
        free(options->tls_key_file);
        free(options->tls_ca_file);
        options->tls_cert_file = block.cert_file;
        options->tls_key_file = block.key_file;
        options->tls_ca_file = block.ca_file;
        options->tls_verify = block.verify;
        options->tls_timeout_ms = block.timeout_ms;
        free(options->tls_ciphers);
        free(options->tls_groups);
        options->tls_ciphers = block.ciphers;
        options->tls_groups = block.groups;
        options->tls_enabled = block.cert_file != NULL && block.key_file != NULL;
        return KC_OK;
    }
    free(block.cert_file);
    free(block.key_file);
    free(block.ca_file);
    free(block.ciphers);
    free(block.groups);
    return err;
}

/* ------------------------------------------ suggestions and ingress */

/* kcobrad's own components (docs/ingress.md). Each block is staged and
 * replaces the earlier settings whole, as tls does. */

typedef struct suggestions_block {
    bool enabled;
    char *file;
} suggestions_block;

static const key_rule suggestions_rules[] = {
    {"enabled", KEY_BOOL, offsetof(suggestions_block, enabled), 0, NULL},
    {"file", KEY_STRING, offsetof(suggestions_block, file), 0, NULL},
};

static kc_err apply_suggestions(const apply_context *context, const kci_conf_entry *entry,
                                void *field)
{
    kci_options *options = field;
    if (entry->value.kind != KCI_CONF_MAP)
        return wrong_type(context, entry->key, &entry->value, "a map");
    suggestions_block block = {.enabled = true};
    kc_err err = apply_map(context, "suggestions", &entry->value, suggestions_rules,
                           RULE_COUNT(suggestions_rules), &block);
    if (err != KC_OK) {
        free(block.file);
        return err;
    }
    free(options->suggestions_file);
    options->suggestions_file = block.file;
    options->suggestions_enabled = block.enabled;
    return KC_OK;
}

typedef struct ingress_block {
    bool enabled;
    char *host;
    int port;
    char *type;
    int64_t timeout_ms;
} ingress_block;

static kc_err apply_ingress_listen(const apply_context *context, const kci_conf_entry *entry,
                                   void *field)
{
    ingress_block *block = field;
    return listen_from_value(context, entry->key, &entry->value, &block->host, &block->port);
}

static const key_rule ingress_rules[] = {
    {"enabled", KEY_BOOL, offsetof(ingress_block, enabled), 0, NULL},
    {"listen", KEY_HANDLER, 0, 0, apply_ingress_listen},
    {"type", KEY_STRING, offsetof(ingress_block, type), 0, NULL},
    {"timeout", KEY_DURATION_MS, offsetof(ingress_block, timeout_ms), 0, NULL},
};

static kc_err apply_ingress(const apply_context *context, const kci_conf_entry *entry, void *field)
{
    kci_options *options = field;
    if (entry->value.kind != KCI_CONF_MAP)
        return wrong_type(context, entry->key, &entry->value, "a map");
    ingress_block block = {.port = KCI_DEFAULT_INGRESS_PORT,
                           .timeout_ms = KCI_DEFAULT_INGRESS_TIMEOUT_MS};
    kc_err err = apply_map(context, "ingress", &entry->value, ingress_rules,
                           RULE_COUNT(ingress_rules), &block);
    if (err != KC_OK) {
        free(block.host);
        free(block.type);
        return err;
    }
    free(options->ingress_host);
    free(options->ingress_type);
    options->ingress_enabled = block.enabled;
    options->ingress_host = block.host;
    options->ingress_port = block.port;
    options->ingress_type = block.type;
    options->ingress_timeout_ms = block.timeout_ms;
    return KC_OK;
}

/* ---------------------------------------------------------- ledger */

/* The ledger component (docs/ledger.md); off unless enabled. */
typedef struct ledger_block {
    bool enabled;
    char *dir;
    int64_t workers;
    bool mint;
    int64_t map_bytes;
    int64_t reap_interval_ms;
    int64_t reap_age_ms;
} ledger_block;

static const key_rule ledger_rules[] = {
    {"enabled", KEY_BOOL, offsetof(ledger_block, enabled), 0, NULL},
    {"dir", KEY_STRING, offsetof(ledger_block, dir), 0, NULL},
    {"workers", KEY_SIZE, offsetof(ledger_block, workers), 64, NULL},
    {"mint", KEY_BOOL, offsetof(ledger_block, mint), 0, NULL},
    {"map_size", KEY_SIZE, offsetof(ledger_block, map_bytes), INT64_MAX, NULL},
    {"reap_interval", KEY_DURATION_MS, offsetof(ledger_block, reap_interval_ms), 0, NULL},
    {"reap_age", KEY_DURATION_MS, offsetof(ledger_block, reap_age_ms), 0, NULL},
};

static kc_err apply_ledger(const apply_context *context, const kci_conf_entry *entry, void *field)
{
    kci_options *options = field;
    if (entry->value.kind != KCI_CONF_MAP)
        return wrong_type(context, entry->key, &entry->value, "a map");
    ledger_block block = {.enabled = true, .mint = true, .reap_age_ms = -1};
    kc_err err =
        apply_map(context, "ledger", &entry->value, ledger_rules, RULE_COUNT(ledger_rules), &block);
    if (err != KC_OK) {
        free(block.dir);
        return err;
    }
    free(options->ledger_dir);
    options->ledger_enabled = block.enabled;
    options->ledger_dir = block.dir;
    options->ledger_workers = block.workers;
    options->ledger_mint_disabled = !block.mint;
    options->ledger_map_bytes = block.map_bytes;
    options->ledger_reap_interval_ms = block.reap_interval_ms;
    options->ledger_reap_age_ms = block.reap_age_ms;
    return KC_OK;
}

/* ---------------------------------------------------------- persister */

/* The persister (docs/queue.md): staged and replacing earlier settings
 * whole, as the other component blocks. */
typedef struct persister_block {
    bool enabled;
    char *dir;
    char *durability;
    int64_t segment_bytes;
    int64_t redelivery_timeout_ms;
    int64_t redelivery_backoff_max_ms;
    int64_t attempts_max;
    int64_t retention_ms;
    bool skip_corrupt;
    bool record_requests;
} persister_block;

static const key_rule persister_rules[] = {
    {"enabled", KEY_BOOL, offsetof(persister_block, enabled), 0, NULL},
    {"dir", KEY_STRING, offsetof(persister_block, dir), 0, NULL},
    {"durability", KEY_STRING, offsetof(persister_block, durability), 0, NULL},
    {"segment_size", KEY_SIZE, offsetof(persister_block, segment_bytes), 1024 * 1024 * 1024, NULL},
    {"redelivery_timeout", KEY_DURATION_MS, offsetof(persister_block, redelivery_timeout_ms), 0,
     NULL},
    {"redelivery_backoff_max", KEY_DURATION_MS,
     offsetof(persister_block, redelivery_backoff_max_ms), 0, NULL},
    {"max_attempts", KEY_SIZE, offsetof(persister_block, attempts_max), 1000, NULL},
    {"retention", KEY_DURATION_MS, offsetof(persister_block, retention_ms), 0, NULL},
    {"skip_corrupt", KEY_BOOL, offsetof(persister_block, skip_corrupt), 0, NULL},
    {"record_requests", KEY_BOOL, offsetof(persister_block, record_requests), 0, NULL},
};

static kc_err apply_persister(const apply_context *context, const kci_conf_entry *entry,
                              void *field)
{
    kci_options *options = field;
    if (entry->value.kind != KCI_CONF_MAP)
        return wrong_type(context, entry->key, &entry->value, "a map");
    persister_block block = {.enabled = true};
    kc_err err = apply_map(context, "persister", &entry->value, persister_rules,
                           RULE_COUNT(persister_rules), &block);
    if (err != KC_OK) {
        free(block.dir);
        free(block.durability);
        return err;
    }
    free(options->persister_dir);
    free(options->persister_durability);
    options->persister_enabled = block.enabled;
    options->persister_dir = block.dir;
    options->persister_durability = block.durability;
    options->persister_segment_bytes = block.segment_bytes;
    options->persister_redelivery_timeout_ms = block.redelivery_timeout_ms;
    options->persister_redelivery_backoff_max_ms = block.redelivery_backoff_max_ms;
    options->persister_attempts_max = block.attempts_max;
    options->persister_retention_ms = block.retention_ms;
    options->persister_skip_corrupt = block.skip_corrupt;
    options->persister_record_requests = block.record_requests;
    return KC_OK;
}

/* ---------------------------------------------------------- arbiter */

/* docs/arbiter.md. Staged and applied whole, as the blocks above. */
typedef struct arbiter_block {
    bool enabled;
    char *id;
    int64_t count;
    int64_t tick_ms;
    int64_t probe_interval_ms;
    int64_t probe_timeout_ms;
    int64_t quarantine_ms;
    int64_t probation_ms;
    int64_t slow_ms;
    int64_t target_ms;
    int64_t qos_samples;
    char **probes;
    size_t probe_count;
    char **pretrusted;
    size_t pretrusted_count;
    char **peers;
    size_t peer_count;
} arbiter_block;

enum { ARBITER_LIST_MAX = 64 };

/* An array of non-empty strings (at most ARBITER_LIST_MAX). */
static kc_err strings_from_value(const apply_context *context, const kci_conf_entry *entry,
                                 char ***out, size_t *out_count)
{
    const kci_conf_value *value = &entry->value;
    if (value->kind != KCI_CONF_ARRAY || value->as.array.count > ARBITER_LIST_MAX)
        return wrong_type(context, entry->key, value, "an array of at most 64 strings");
    size_t count = value->as.array.count;
    char **strings = calloc(count + 1, sizeof *strings);
    if (strings == NULL) return KC_ERR_NOMEM;
    for (size_t i = 0; i < count; i++) {
        const kci_conf_value *item = &value->as.array.items[i];
        if (item->kind != KCI_CONF_STRING || item->as.string[0] == '\0') {
            strings_free(strings, i);
            return wrong_type(context, entry->key, item, "a non-empty string");
        }
        if ((strings[i] = strdup(item->as.string)) == NULL) {
            strings_free(strings, i);
            return KC_ERR_NOMEM;
        }
    }
    strings_free(*out, *out_count);
    *out = strings;
    *out_count = count;
    return KC_OK;
}

static kc_err apply_arbiter_probes(const apply_context *context, const kci_conf_entry *entry,
                                   void *field)
{
    arbiter_block *block = field;
    kc_err err = strings_from_value(context, entry, &block->probes, &block->probe_count);
    for (size_t i = 0; err == KC_OK && i < block->probe_count; i++)
        if (strchr(block->probes[i], '=') == NULL || block->probes[i][0] == '=')
            err =
                config_error(context, &entry->value, KC_ERR_CONFIG,
                             "arbiter probe \"%s\" is not \"<type>=<payload>\"", block->probes[i]);
    return err;
}

static kc_err apply_arbiter_pretrusted(const apply_context *context, const kci_conf_entry *entry,
                                       void *field)
{
    arbiter_block *block = field;
    return strings_from_value(context, entry, &block->pretrusted, &block->pretrusted_count);
}

static kc_err apply_arbiter_peers(const apply_context *context, const kci_conf_entry *entry,
                                  void *field)
{
    arbiter_block *block = field;
    return strings_from_value(context, entry, &block->peers, &block->peer_count);
}

static const key_rule arbiter_rules[] = {
    {"enabled", KEY_BOOL, offsetof(arbiter_block, enabled), 0, NULL},
    {"id", KEY_STRING, offsetof(arbiter_block, id), 0, NULL},
    {"arbiters", KEY_SIZE, offsetof(arbiter_block, count), 64, NULL},
    {"tick", KEY_DURATION_MS, offsetof(arbiter_block, tick_ms), 0, NULL},
    {"probe_interval", KEY_DURATION_MS, offsetof(arbiter_block, probe_interval_ms), 0, NULL},
    {"probe_timeout", KEY_DURATION_MS, offsetof(arbiter_block, probe_timeout_ms), 0, NULL},
    {"quarantine", KEY_DURATION_MS, offsetof(arbiter_block, quarantine_ms), 0, NULL},
    {"probation", KEY_DURATION_MS, offsetof(arbiter_block, probation_ms), 0, NULL},
    {"slow", KEY_DURATION_MS, offsetof(arbiter_block, slow_ms), 0, NULL},
    {"target", KEY_DURATION_MS, offsetof(arbiter_block, target_ms), 0, NULL},
    {"qos_samples", KEY_SIZE, offsetof(arbiter_block, qos_samples), 1000000, NULL},
    {"probes", KEY_HANDLER, 0, 0, apply_arbiter_probes},
    {"pretrusted", KEY_HANDLER, 0, 0, apply_arbiter_pretrusted},
    {"peers", KEY_HANDLER, 0, 0, apply_arbiter_peers},
};

static kc_err apply_arbiter(const apply_context *context, const kci_conf_entry *entry, void *field)
{
    kci_options *options = field;
    if (entry->value.kind != KCI_CONF_MAP)
        return wrong_type(context, entry->key, &entry->value, "a map");
    arbiter_block block = {0};
    kc_err err = apply_map(context, "arbiter", &entry->value, arbiter_rules,
                           RULE_COUNT(arbiter_rules), &block);
    if (err != KC_OK) {
        free(block.id);
        strings_free(block.probes, block.probe_count);
        strings_free(block.pretrusted, block.pretrusted_count);
        strings_free(block.peers, block.peer_count);
        return err;
    }
    free(options->arbiter_id);
    strings_free(options->arbiter_probes, options->arbiter_probe_count);
    strings_free(options->arbiter_pretrusted, options->arbiter_pretrusted_count);
    strings_free(options->arbiter_peers, options->arbiter_peer_count);
    options->arbiter_peers = block.peers;
    options->arbiter_peer_count = block.peer_count;
    options->arbiter_enabled = block.enabled;
    options->arbiter_id = block.id;
    options->arbiter_count = block.count;
    options->arbiter_tick_ms = block.tick_ms;
    options->arbiter_probe_interval_ms = block.probe_interval_ms;
    options->arbiter_probe_timeout_ms = block.probe_timeout_ms;
    options->arbiter_quarantine_ms = block.quarantine_ms;
    options->arbiter_probation_ms = block.probation_ms;
    options->arbiter_slow_ms = block.slow_ms;
    options->arbiter_target_ms = block.target_ms;
    options->arbiter_qos_samples = block.qos_samples;
    options->arbiter_probes = block.probes;
    options->arbiter_probe_count = block.probe_count;
    options->arbiter_pretrusted = block.pretrusted;
    options->arbiter_pretrusted_count = block.pretrusted_count;
    return KC_OK;
}

/* ---------------------------------------------------------- top level */

/* max_subs: 0 (nats-server's default) means no limit. */
static kc_err apply_max_subscriptions(const apply_context *context, const kci_conf_entry *entry,
                                      void *field)
{
    kci_options *options = field;
    if (entry->value.kind == KCI_CONF_INTEGER && entry->value.as.integer == 0) {
        options->max_subscriptions = 0;
        return KC_OK;
    }
    return size_from_value(context, entry->key, &entry->value, INT32_MAX,
                           &options->max_subscriptions);
}

static kc_err apply_listen(const apply_context *context, const kci_conf_entry *entry, void *field)
{
    kci_options *options = field;
    kc_err err =
        listen_from_value(context, entry->key, &entry->value, &options->host, &options->port);
    if (err == KC_OK && options->host == NULL)
        err = kci_options_string_set(&options->host, "0.0.0.0");
    return err;
}

static kc_err apply_http(const apply_context *context, const kci_conf_entry *entry, void *field)
{
    kci_options *options = field;
    return listen_from_value(context, entry->key, &entry->value, &options->http_host,
                             &options->http_port);
}

/* "jetstream: false" (or "disabled") is harmless; anything else asks for a
 * feature kcobrad does not have. */
static kc_err apply_jetstream(const apply_context *context, const kci_conf_entry *entry,
                              void *field)
{
    const kci_conf_value *value = &entry->value;
    if (value->kind == KCI_CONF_BOOL && !value->as.boolean) return KC_OK;
    if (value->kind == KCI_CONF_STRING && (strcasecmp(value->as.string, "disabled") == 0 ||
                                           strcasecmp(value->as.string, "disable") == 0))
        return KC_OK;
    return config_error(context, value, KC_ERR_CONFIG,
                        "nats-server option '%s' is not supported by kcobrad (only "
                        "'jetstream: false')",
                        entry->key);
}

#define OPTION(field) offsetof(kci_options, field)

static const key_rule top_level_rules[] = {
    {"listen", KEY_HANDLER, 0, 0, apply_listen},
    {"host", KEY_STRING, OPTION(host), 0, NULL},
    {"net", KEY_STRING, OPTION(host), 0, NULL},
    {"port", KEY_PORT, OPTION(port), 0, NULL},
    {"server_name", KEY_STRING, OPTION(server_name), 0, NULL},
    {"http", KEY_HANDLER, 0, 0, apply_http},
    {"http_port", KEY_PORT, OPTION(http_port), 0, NULL},
    {"monitor_port", KEY_PORT, OPTION(http_port), 0, NULL},
    {"max_payload", KEY_SIZE, OPTION(max_payload_bytes), INT32_MAX, NULL},
    {"max_pending", KEY_SIZE, OPTION(max_pending_bytes), INT64_MAX, NULL},
    {"max_control_line", KEY_SIZE, OPTION(max_control_line_bytes), INT32_MAX, NULL},
    {"max_connections", KEY_SIZE, OPTION(max_connections), INT32_MAX, NULL},
    {"max_conn", KEY_SIZE, OPTION(max_connections), INT32_MAX, NULL},
    {"ping_interval", KEY_DURATION_MS, OPTION(ping_interval_ms), 0, NULL},
    {"ping_max", KEY_SIZE, OPTION(ping_max), INT32_MAX, NULL},
    {"write_deadline", KEY_DURATION_MS, OPTION(write_deadline_ms), 0, NULL},
    {"max_subs", KEY_HANDLER, 0, 0, apply_max_subscriptions},
    {"max_subscriptions", KEY_HANDLER, 0, 0, apply_max_subscriptions},
    {"debug", KEY_BOOL, OPTION(debug), 0, NULL},
    {"trace", KEY_BOOL, OPTION(trace), 0, NULL},
    {"trace_verbose", KEY_BOOL, OPTION(trace), 0, NULL},
    {"logtime", KEY_BOOL, OPTION(logtime), 0, NULL},
    {"log_file", KEY_STRING, OPTION(log_file), 0, NULL},
    {"logfile", KEY_STRING, OPTION(log_file), 0, NULL},
    {"pid_file", KEY_STRING, OPTION(pid_file), 0, NULL},
    {"pidfile", KEY_STRING, OPTION(pid_file), 0, NULL},
    {"authorization", KEY_HANDLER, 0, 0, apply_authorization},
    {"tls", KEY_HANDLER, 0, 0, apply_tls},
    {"jetstream", KEY_HANDLER, 0, 0, apply_jetstream},
    {"data_dir", KEY_STRING, OPTION(data_dir), 0, NULL},
    {"suggestions", KEY_HANDLER, 0, 0, apply_suggestions},
    {"ingress", KEY_HANDLER, 0, 0, apply_ingress},
    {"ledger", KEY_HANDLER, 0, 0, apply_ledger},
    {"persister", KEY_HANDLER, 0, 0, apply_persister},
    {"arbiter", KEY_HANDLER, 0, 0, apply_arbiter},
    /* accepted and ignored: see docs/config.md */
    {"client_advertise", KEY_IGNORED, 0, 0, NULL},
    {"ports_file_dir", KEY_IGNORED, 0, 0, NULL},
    {"syslog", KEY_IGNORED, 0, 0, NULL},
    {"remote_syslog", KEY_IGNORED, 0, 0, NULL},
    {"log_size_limit", KEY_IGNORED, 0, 0, NULL},
    {"logfile_size_limit", KEY_IGNORED, 0, 0, NULL},
    {"max_traced_msg_len", KEY_IGNORED, 0, 0, NULL},
    {"disable_sublist_cache", KEY_IGNORED, 0, 0, NULL},
    {"no_sublist_cache", KEY_IGNORED, 0, 0, NULL},
    {"prof_port", KEY_IGNORED, 0, 0, NULL},
    {"connect_error_reports", KEY_IGNORED, 0, 0, NULL},
    {"reconnect_error_reports", KEY_IGNORED, 0, 0, NULL},
    {"lame_duck_duration", KEY_IGNORED, 0, 0, NULL},
    {"lame_duck_grace_period", KEY_IGNORED, 0, 0, NULL},
    {"server_tags", KEY_IGNORED, 0, 0, NULL},
    {"http_base_path", KEY_IGNORED, 0, 0, NULL},
    {"max_sub_tokens", KEY_IGNORED, 0, 0, NULL},
    {"max_subscription_tokens", KEY_IGNORED, 0, 0, NULL},
    {"no_header_support", KEY_IGNORED, 0, 0, NULL},
    /* nats-server features kcobrad does not have */
    {"cluster", KEY_UNSUPPORTED, 0, 0, NULL},
    {"gateway", KEY_UNSUPPORTED, 0, 0, NULL},
    {"leafnodes", KEY_UNSUPPORTED, 0, 0, NULL},
    {"leaf", KEY_UNSUPPORTED, 0, 0, NULL},
    {"store_dir", KEY_UNSUPPORTED, 0, 0, NULL},
    {"storedir", KEY_UNSUPPORTED, 0, 0, NULL},
    {"accounts", KEY_UNSUPPORTED, 0, 0, NULL},
    {"operator", KEY_UNSUPPORTED, 0, 0, NULL},
    {"operators", KEY_UNSUPPORTED, 0, 0, NULL},
    {"resolver", KEY_UNSUPPORTED, 0, 0, NULL},
    {"resolver_preload", KEY_UNSUPPORTED, 0, 0, NULL},
    {"system_account", KEY_UNSUPPORTED, 0, 0, NULL},
    {"no_auth_user", KEY_UNSUPPORTED, 0, 0, NULL},
    {"websocket", KEY_UNSUPPORTED, 0, 0, NULL},
    {"ws", KEY_UNSUPPORTED, 0, 0, NULL},
    {"mqtt", KEY_UNSUPPORTED, 0, 0, NULL},
    {"mappings", KEY_UNSUPPORTED, 0, 0, NULL},
    {"https", KEY_UNSUPPORTED, 0, 0, NULL},
    {"https_port", KEY_UNSUPPORTED, 0, 0, NULL},
    {"ocsp", KEY_UNSUPPORTED, 0, 0, NULL},
    {"allow_non_tls", KEY_UNSUPPORTED, 0, 0, NULL},
};

kc_err kci_options_apply_conf(kci_options *options, const kci_conf_value *root, char *error,
                              size_t error_size)
{
    assert(options != NULL && root != NULL);
    apply_context context = {options->config_file != NULL ? options->config_file : "config", error,
                             error_size};
    if (root->kind != KCI_CONF_MAP) return config_error(&context, root, KC_ERR_CONFIG, "not a map");
    kc_err err =
        apply_map(&context, "", root, top_level_rules, RULE_COUNT(top_level_rules), options);
    if (err == KC_ERR_NOMEM)
        return kci_options_plain_error(error, error_size, "out of memory"), KC_ERR_NOMEM;
    options->tls_enabled = options->tls_cert_file != NULL && options->tls_key_file != NULL;
    return err;
}

/* --------------------------------------------------------- validation */

static kc_err validate_limits(const kci_options *options, char *error, size_t error_size)
{
    if (options->max_payload_bytes < 1 || options->max_payload_bytes > INT32_MAX)
        return kci_options_plain_error(error, error_size, "max_payload must be from 1 to %d",
                                       INT32_MAX);
    if (options->max_pending_bytes < 1)
        return kci_options_plain_error(error, error_size, "max_pending must be at least 1");
    if (options->max_payload_bytes > options->max_pending_bytes)
        return kci_options_plain_error(
            error, error_size, "max_payload (%lld) must not be larger than max_pending (%lld)",
            (long long)options->max_payload_bytes, (long long)options->max_pending_bytes);
    if (options->max_control_line_bytes < 1 || options->max_control_line_bytes > INT32_MAX)
        return kci_options_plain_error(error, error_size, "max_control_line must be from 1 to %d",
                                       INT32_MAX);
    if (options->max_connections < 1)
        return kci_options_plain_error(error, error_size, "max_connections must be at least 1");
    if (options->ping_max < 1)
        return kci_options_plain_error(error, error_size, "ping_max must be at least 1");
    const int64_t durations[] = {options->ping_interval_ms, options->write_deadline_ms,
                                 options->auth_timeout_ms, options->tls_timeout_ms};
    const char *duration_names[] = {"ping_interval", "write_deadline", "authorization timeout",
                                    "tls timeout"};
    for (size_t i = 0; i < sizeof durations / sizeof durations[0]; i++)
        if (durations[i] < 1 || durations[i] > OPTIONS_DURATION_MS_MAX)
            return kci_options_plain_error(error, error_size, "%s must be from 1 ms to one day",
                                           duration_names[i]);
    return KC_OK;
}

static kc_err validate_listen(const kci_options *options, char *error, size_t error_size)
{
    if (options->host == NULL || options->host[0] == '\0')
        return kci_options_plain_error(error, error_size, "the listen host is empty");
    if (!kci_options_port_in_range(options->port) || !kci_options_port_in_range(options->http_port))
        return kci_options_plain_error(error, error_size, "a port must be from 0 to 65535 (or -1)");
    const char *http_host = options->http_host != NULL ? options->http_host : options->host;
    if (options->port > 0 && options->port == options->http_port &&
        strcmp(http_host, options->host) == 0)
        return kci_options_plain_error(error, error_size, "port and http_port are both %d",
                                       options->port);
    if (options->server_name != NULL && strpbrk(options->server_name, " \t\r\n") != NULL)
        return kci_options_plain_error(
            error, error_size, "server_name \"%s\" must not contain spaces", options->server_name);
    return KC_OK;
}

static kc_err validate_security(const kci_options *options, char *error, size_t error_size)
{
    if (options->auth_token != NULL && options->user_count > 0)
        return kci_options_plain_error(error, error_size,
                                       "an authorization token and users cannot be used together");
    if (options->auth_token != NULL && options->auth_token[0] == '\0')
        return kci_options_plain_error(error, error_size, "the authorization token is empty");
    for (size_t i = 0; i < options->user_count; i++) {
        const kci_user *user = &options->users[i];
        if (user->user == NULL || user->user[0] == '\0' || user->password == NULL)
            return kci_options_plain_error(error, error_size, "user %zu has no name or password",
                                           i + 1);
        for (size_t j = 0; j < i; j++)
            if (strcmp(options->users[j].user, user->user) == 0)
                return kci_options_plain_error(error, error_size, "user \"%s\" is defined twice",
                                               user->user);
    }
    bool cert = options->tls_cert_file != NULL, key = options->tls_key_file != NULL;
    if (cert != key)
        return kci_options_plain_error(
            error, error_size,
            "TLS needs both a certificate (cert_file, --tlscert) and a key (key_file, --tlskey)");
    if (!cert && (options->tls_verify || options->tls_ca_file != NULL))
        return kci_options_plain_error(error, error_size,
                                       "TLS verify and ca_file need cert_file and key_file");
    return KC_OK;
}

/* One subject token as libkingcobra reads a request type: 1..128 bytes, no
 * '.', '*', '>', space or control byte. */
static bool request_type_valid(const char *type)
{
    size_t length = strlen(type);
    if (length == 0 || length > OPTIONS_TOKEN_BYTES_MAX) return false;
    for (size_t i = 0; i < length; i++) {
        unsigned char byte = (unsigned char)type[i];
        if (byte <= ' ' || byte == 0x7f || strchr(".*>", byte) != NULL) return false;
    }
    return true;
}

/* The components' keys: paths not empty, the type one subject token. */
static kc_err validate_components(const kci_options *options, char *error, size_t error_size)
{
    if (options->data_dir != NULL && options->data_dir[0] == '\0')
        return kci_options_plain_error(error, error_size, "data_dir is empty");
    if (options->suggestions_file != NULL && options->suggestions_file[0] == '\0')
        return kci_options_plain_error(error, error_size, "suggestions file is empty");
    const char *type = options->ingress_type;
    if (type != NULL && !request_type_valid(type))
        return kci_options_plain_error(error, error_size,
                                       "ingress type \"%s\" must be one subject token (no dots, "
                                       "spaces or wildcards, at most %d bytes)",
                                       type, OPTIONS_TOKEN_BYTES_MAX);
    const char *durability = options->persister_durability;
    if (durability != NULL && strcmp(durability, "batch") != 0 &&
        strcmp(durability, "always") != 0 && strcmp(durability, "none") != 0)
        return kci_options_plain_error(error, error_size,
                                       "persister durability \"%s\" must be batch, always or none",
                                       durability);
    if (options->persister_segment_bytes != 0 && options->persister_segment_bytes < 64 * 1024)
        return kci_options_plain_error(error, error_size,
                                       "persister segment_size must be at least 64KB");
    if (options->persister_dir != NULL && options->persister_dir[0] == '\0')
        return kci_options_plain_error(error, error_size, "persister dir is empty");
    if (!kci_options_port_in_range(options->ingress_port))
        return kci_options_plain_error(error, error_size,
                                       "the ingress port must be from 0 to 65535 (or -1)");
    if (options->ingress_timeout_ms < 1 || options->ingress_timeout_ms > OPTIONS_DURATION_MS_MAX)
        return kci_options_plain_error(error, error_size,
                                       "ingress timeout must be from 1 ms to one day");
    return KC_OK;
}

kc_err kci_options_validate(const kci_options *options, char *error, size_t error_size)
{
    assert(options != NULL);
    kc_err err = validate_listen(options, error, error_size);
    if (err == KC_OK) err = validate_limits(options, error, error_size);
    if (err == KC_OK) err = validate_security(options, error, error_size);
    if (err == KC_OK) err = validate_components(options, error, error_size);
    return err;
}
