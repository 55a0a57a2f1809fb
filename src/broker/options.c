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

#include "common/config_keys.h"
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

typedef kci_config_context apply_context;

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
    options->ingress_port_flag = -2; /* not given */
}

void kci_options_free(kci_options *options)
{
    if (options == NULL) return;
    free(options->host);
    free(options->server_name);
    free(options->http_host);
    free(options->http_user);
    free(options->http_password);
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
    free(options->ingress_user);
    kci_conf_free(options->conf);
    free(options->config_file);
    for (int i = 0; i < options->argument_count; i++)
        free(options->arguments[i]);
    free(options->arguments);
    memset(options, 0, sizeof *options);
}

/* ---------------------------------------------------------- messages */

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

#define RULE_COUNT(rules) KCI_CONFIG_KEY_COUNT(rules)

/* -------------------------------------------------------- permissions */

static kc_err check_subject(const apply_context *context, const kci_conf_value *value)
{
    const char *subject = value->as.string;
    if (kci_subject_valid_filter(subject, strlen(subject))) return KC_OK;
    if (strchr(subject, ' ') != NULL)
        return kci_config_error(context, value, KC_ERR_CONFIG,
                                "permission \"%s\": queue group permissions (\"subject queue\") "
                                "are not supported",
                                subject);
    return kci_config_error(context, value, KC_ERR_CONFIG,
                            "permission \"%s\" is not a valid subject", subject);
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
        return kci_config_wrong_type(context, key, value, "a subject or an array of subjects");
    }
    if (count == 0)
        return kci_config_error(context, value, KC_ERR_CONFIG,
                                "'%s' is an empty list, which nats-server reads as \"no limit\"; "
                                "write deny: \">\" to allow nothing, or remove it",
                                key);
    if (count > KCI_OPTIONS_PERMISSION_SUBJECTS_MAX)
        return kci_config_error(context, value, KC_ERR_CONFIG, "'%s' has more than %d subjects",
                                key, KCI_OPTIONS_PERMISSION_SUBJECTS_MAX);
    for (size_t i = 0; i < count; i++) {
        if (items[i].kind != KCI_CONF_STRING)
            return kci_config_wrong_type(context, key, &items[i], "a subject");
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

static const kci_config_key permission_list_rules[] = {
    {.name = "allow", .kind = KCI_KEY_HANDLER, .handler = apply_allow},
    {.name = "deny", .kind = KCI_KEY_HANDLER, .handler = apply_deny},
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
    return kci_config_apply_map(context, entry->key, value, permission_list_rules,
                                RULE_COUNT(permission_list_rules), list);
}

static const kci_config_key permissions_rules[] = {
    {.name = "publish",
     .kind = KCI_KEY_HANDLER,
     .offset = offsetof(kci_permissions, publish),
     .handler = apply_permission_list},
    {.name = "pub",
     .kind = KCI_KEY_HANDLER,
     .offset = offsetof(kci_permissions, publish),
     .handler = apply_permission_list},
    {.name = "import",
     .kind = KCI_KEY_HANDLER,
     .offset = offsetof(kci_permissions, publish),
     .handler = apply_permission_list},
    {.name = "subscribe",
     .kind = KCI_KEY_HANDLER,
     .offset = offsetof(kci_permissions, subscribe),
     .handler = apply_permission_list},
    {.name = "sub",
     .kind = KCI_KEY_HANDLER,
     .offset = offsetof(kci_permissions, subscribe),
     .handler = apply_permission_list},
    {.name = "export",
     .kind = KCI_KEY_HANDLER,
     .offset = offsetof(kci_permissions, subscribe),
     .handler = apply_permission_list},
    {.name = "allow_responses", .kind = KCI_KEY_UNSUPPORTED},
    {.name = "publish_allow_responses", .kind = KCI_KEY_UNSUPPORTED},
};

static kc_err apply_permissions(const apply_context *context, const kci_conf_entry *entry,
                                void *field)
{
    kci_permissions *permissions = field;
    if (entry->value.kind != KCI_CONF_MAP)
        return kci_config_wrong_type(context, entry->key, &entry->value,
                                     "a map {publish: ..., subscribe: ...}");
    permissions_free(permissions);
    return kci_config_apply_map(context, entry->key, &entry->value, permissions_rules,
                                RULE_COUNT(permissions_rules), permissions);
}

/* ------------------------------------------------------ authorization */

static const kci_config_key user_rules[] = {
    {.name = "user", .kind = KCI_KEY_STRING, .offset = offsetof(kci_user, user)},
    {.name = "username", .kind = KCI_KEY_STRING, .offset = offsetof(kci_user, user)},
    {.name = "password", .kind = KCI_KEY_STRING, .offset = offsetof(kci_user, password)},
    {.name = "pass", .kind = KCI_KEY_STRING, .offset = offsetof(kci_user, password)},
    {.name = "permissions",
     .kind = KCI_KEY_HANDLER,
     .offset = offsetof(kci_user, permissions),
     .handler = apply_permissions},
    {.name = "permission",
     .kind = KCI_KEY_HANDLER,
     .offset = offsetof(kci_user, permissions),
     .handler = apply_permissions},
    {.name = "authorization",
     .kind = KCI_KEY_HANDLER,
     .offset = offsetof(kci_user, permissions),
     .handler = apply_permissions},
    {.name = "nkey", .kind = KCI_KEY_UNSUPPORTED},
    {.name = "allowed_connection_types", .kind = KCI_KEY_UNSUPPORTED},
    {.name = "connection_types", .kind = KCI_KEY_UNSUPPORTED},
    {.name = "clients", .kind = KCI_KEY_UNSUPPORTED},
    {.name = "account", .kind = KCI_KEY_UNSUPPORTED},
};

typedef struct user_list {
    kci_user *users;
    size_t count;
    bool present; /* "users" was given, even if empty */
} user_list;

static kc_err user_from_value(const apply_context *context, const kci_conf_value *value,
                              const user_list *earlier, kci_user *user)
{
    if (value->kind != KCI_CONF_MAP)
        return kci_config_wrong_type(context, "users", value, "a map per user");
    kc_err err =
        kci_config_apply_map(context, "a user", value, user_rules, RULE_COUNT(user_rules), user);
    if (err != KC_OK) return err;
    if (user->user == NULL || user->user[0] == '\0')
        return kci_config_error(context, value, KC_ERR_CONFIG, "a user needs a 'user' name");
    if (user->password == NULL && (user->password = strdup("")) == NULL) return KC_ERR_NOMEM;
    for (size_t i = 0; i < earlier->count; i++)
        if (strcmp(earlier->users[i].user, user->user) == 0)
            return kci_config_error(context, value, KC_ERR_CONFIG, "user \"%s\" is defined twice",
                                    user->user);
    return KC_OK;
}

static kc_err apply_users(const apply_context *context, const kci_conf_entry *entry, void *field)
{
    user_list *list = field;
    const kci_conf_value *value = &entry->value;
    if (value->kind != KCI_CONF_ARRAY)
        return kci_config_wrong_type(context, entry->key, value, "an array");
    size_t count = value->as.array.count;
    if (count > KCI_OPTIONS_USERS_MAX)
        return kci_config_error(context, value, KC_ERR_CONFIG, "more than %d users",
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

static const kci_config_key authorization_rules[] = {
    {.name = "token", .kind = KCI_KEY_STRING, .offset = offsetof(authorization_block, token)},
    {.name = "user", .kind = KCI_KEY_STRING, .offset = offsetof(authorization_block, user)},
    {.name = "username", .kind = KCI_KEY_STRING, .offset = offsetof(authorization_block, user)},
    {.name = "password", .kind = KCI_KEY_STRING, .offset = offsetof(authorization_block, password)},
    {.name = "pass", .kind = KCI_KEY_STRING, .offset = offsetof(authorization_block, password)},
    {.name = "users",
     .kind = KCI_KEY_HANDLER,
     .offset = offsetof(authorization_block, users),
     .handler = apply_users},
    {.name = "default_permissions",
     .kind = KCI_KEY_HANDLER,
     .offset = offsetof(authorization_block, default_permissions),
     .handler = apply_permissions},
    {.name = "default_permission",
     .kind = KCI_KEY_HANDLER,
     .offset = offsetof(authorization_block, default_permissions),
     .handler = apply_permissions},
    {.name = "permissions",
     .kind = KCI_KEY_HANDLER,
     .offset = offsetof(authorization_block, default_permissions),
     .handler = apply_permissions},
    {.name = "timeout",
     .kind = KCI_KEY_DURATION_MS,
     .offset = offsetof(authorization_block, timeout_ms)},
};

/* The forms nats-server allows: a token, or one user/password, or users. */
static kc_err authorization_check(const apply_context *context, const kci_conf_value *value,
                                  const authorization_block *block)
{
    if (block->token != NULL && block->token[0] == '\0')
        return kci_config_error(context, value, KC_ERR_CONFIG, "authorization token is empty");
    if (block->token != NULL && (block->user != NULL || block->password != NULL))
        return kci_config_error(context, value, KC_ERR_CONFIG,
                                "authorization cannot have both a token and a user/password");
    if (block->token != NULL && block->users.present)
        return kci_config_error(context, value, KC_ERR_CONFIG,
                                "authorization cannot have both a token and a users array");
    if (block->user != NULL && block->users.present)
        return kci_config_error(context, value, KC_ERR_CONFIG,
                                "authorization cannot have both a single user and a users array");
    if (block->password != NULL && (block->user == NULL || block->user[0] == '\0'))
        return kci_config_error(context, value, KC_ERR_CONFIG,
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
        return kci_config_wrong_type(context, entry->key, &entry->value, "a map");
    authorization_block block = {.timeout_ms = KCI_DEFAULT_AUTH_TIMEOUT_MS};
    kc_err err = kci_config_apply_map(context, "authorization", &entry->value, authorization_rules,
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
        return kci_config_wrong_type(context, entry->key, value, "a non-empty array");
    size_t joined_size = 1;
    for (size_t i = 0; i < value->as.array.count; i++) {
        const kci_conf_value *item = &value->as.array.items[i];
        if (item->kind != KCI_CONF_STRING)
            return kci_config_wrong_type(context, entry->key, item, "an array of names");
        bool known_weak = false;
        const char *mapped = ciphers ? kci_tls_cipher_from_go_name(item->as.string, &known_weak)
                                     : kci_tls_group_from_go_name(item->as.string);
        if (mapped == NULL)
            return kci_config_error(
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

static const kci_config_key tls_rules[] = {
    {.name = "cert_file", .kind = KCI_KEY_STRING, .offset = offsetof(tls_block, cert_file)},
    {.name = "key_file", .kind = KCI_KEY_STRING, .offset = offsetof(tls_block, key_file)},
    {.name = "ca_file", .kind = KCI_KEY_STRING, .offset = offsetof(tls_block, ca_file)},
    {.name = "verify", .kind = KCI_KEY_BOOL, .offset = offsetof(tls_block, verify)},
    {.name = "timeout", .kind = KCI_KEY_DURATION_MS, .offset = offsetof(tls_block, timeout_ms)},
    {.name = "insecure", .kind = KCI_KEY_UNSUPPORTED},
    {.name = "verify_and_map", .kind = KCI_KEY_UNSUPPORTED},
    {.name = "verify_cert_and_check_known_urls", .kind = KCI_KEY_UNSUPPORTED},
    {.name = "cipher_suites",
     .kind = KCI_KEY_HANDLER,
     .offset = offsetof(tls_block, ciphers),
     .handler = apply_cipher_suites},
    {.name = "curve_preferences",
     .kind = KCI_KEY_HANDLER,
     .offset = offsetof(tls_block, groups),
     .handler = apply_curve_preferences},
    {.name = "pinned_certs", .kind = KCI_KEY_UNSUPPORTED},
    {.name = "handshake_first", .kind = KCI_KEY_UNSUPPORTED},
    {.name = "min_version", .kind = KCI_KEY_UNSUPPORTED},
    {.name = "cert_store", .kind = KCI_KEY_UNSUPPORTED},
    {.name = "cert_match", .kind = KCI_KEY_UNSUPPORTED},
    {.name = "cert_match_by", .kind = KCI_KEY_UNSUPPORTED},
    {.name = "certs", .kind = KCI_KEY_UNSUPPORTED},
    {.name = "connection_rate_limit", .kind = KCI_KEY_UNSUPPORTED},
    {.name = "ocsp_peer", .kind = KCI_KEY_UNSUPPORTED},
};

static kc_err apply_tls(const apply_context *context, const kci_conf_entry *entry, void *field)
{
    kci_options *options = field;
    if (entry->value.kind != KCI_CONF_MAP)
        return kci_config_wrong_type(context, entry->key, &entry->value, "a map");
    tls_block block = {.timeout_ms = KCI_DEFAULT_TLS_TIMEOUT_MS};
    kc_err err = kci_config_apply_map(context, "tls", &entry->value, tls_rules,
                                      RULE_COUNT(tls_rules), &block);
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

/* ------------------------------------------ the parts' blocks */

/* suggestions, ingress, arbiter, ledger, persister: each part reads its
 * own block with its own key table (src/<part>/config.c); the broker only checks that it is a map.
 * kcobrad runs the parts' checks at load and reload
 * (kci_options_set_part_check). */
static kc_err apply_part_block(const apply_context *context, const kci_conf_entry *entry,
                               void *field)
{
    if (entry->value.kind != KCI_CONF_MAP)
        return kci_config_wrong_type(context, entry->key, &entry->value, "a map");
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
    return kci_config_size(context, entry->key, &entry->value, 1, INT32_MAX,
                           &options->max_subscriptions);
}

static kc_err apply_listen(const apply_context *context, const kci_conf_entry *entry, void *field)
{
    kci_options *options = field;
    kc_err err =
        kci_config_listen(context, entry->key, &entry->value, &options->host, &options->port);
    if (err == KC_OK && options->host == NULL)
        err = kci_config_string_set(&options->host, "0.0.0.0");
    return err;
}

static kc_err apply_http(const apply_context *context, const kci_conf_entry *entry, void *field)
{
    kci_options *options = field;
    return kci_config_listen(context, entry->key, &entry->value, &options->http_host,
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
    return kci_config_error(context, value, KC_ERR_CONFIG,
                            "nats-server option '%s' is not supported by kcobrad (only "
                            "'jetstream: false')",
                            entry->key);
}

#define OPTION(field) offsetof(kci_options, field)

static const kci_config_key top_level_rules[] = {
    {.name = "listen", .kind = KCI_KEY_HANDLER, .handler = apply_listen},
    {.name = "host", .kind = KCI_KEY_STRING, .offset = OPTION(host)},
    {.name = "net", .kind = KCI_KEY_STRING, .offset = OPTION(host)},
    {.name = "port", .kind = KCI_KEY_PORT, .offset = OPTION(port)},
    {.name = "server_name", .kind = KCI_KEY_STRING, .offset = OPTION(server_name)},
    {.name = "http", .kind = KCI_KEY_HANDLER, .handler = apply_http},
    {.name = "http_port", .kind = KCI_KEY_PORT, .offset = OPTION(http_port)},
    {.name = "monitor_port", .kind = KCI_KEY_PORT, .offset = OPTION(http_port)},
    {.name = "http_user", .kind = KCI_KEY_STRING, .offset = OPTION(http_user)},
    {.name = "http_password", .kind = KCI_KEY_STRING, .offset = OPTION(http_password)},
    {.name = "http_tls", .kind = KCI_KEY_BOOL, .offset = OPTION(http_tls)},
    {.name = "max_payload",
     .kind = KCI_KEY_SIZE,
     .offset = OPTION(max_payload_bytes),
     .maximum = INT32_MAX},
    {.name = "max_pending",
     .kind = KCI_KEY_SIZE,
     .offset = OPTION(max_pending_bytes),
     .maximum = INT64_MAX},
    {.name = "max_control_line",
     .kind = KCI_KEY_SIZE,
     .offset = OPTION(max_control_line_bytes),
     .maximum = INT32_MAX},
    {.name = "max_connections",
     .kind = KCI_KEY_SIZE,
     .offset = OPTION(max_connections),
     .maximum = INT32_MAX},
    {.name = "max_conn",
     .kind = KCI_KEY_SIZE,
     .offset = OPTION(max_connections),
     .maximum = INT32_MAX},
    {.name = "ping_interval", .kind = KCI_KEY_DURATION_MS, .offset = OPTION(ping_interval_ms)},
    {.name = "ping_max", .kind = KCI_KEY_SIZE, .offset = OPTION(ping_max), .maximum = INT32_MAX},
    {.name = "write_deadline", .kind = KCI_KEY_DURATION_MS, .offset = OPTION(write_deadline_ms)},
    {.name = "max_subs", .kind = KCI_KEY_HANDLER, .handler = apply_max_subscriptions},
    {.name = "max_subscriptions", .kind = KCI_KEY_HANDLER, .handler = apply_max_subscriptions},
    {.name = "debug", .kind = KCI_KEY_BOOL, .offset = OPTION(debug)},
    {.name = "trace", .kind = KCI_KEY_BOOL, .offset = OPTION(trace)},
    {.name = "trace_verbose", .kind = KCI_KEY_BOOL, .offset = OPTION(trace)},
    {.name = "logtime", .kind = KCI_KEY_BOOL, .offset = OPTION(logtime)},
    {.name = "log_file", .kind = KCI_KEY_STRING, .offset = OPTION(log_file)},
    {.name = "logfile", .kind = KCI_KEY_STRING, .offset = OPTION(log_file)},
    {.name = "pid_file", .kind = KCI_KEY_STRING, .offset = OPTION(pid_file)},
    {.name = "pidfile", .kind = KCI_KEY_STRING, .offset = OPTION(pid_file)},
    {.name = "authorization", .kind = KCI_KEY_HANDLER, .handler = apply_authorization},
    {.name = "tls", .kind = KCI_KEY_HANDLER, .handler = apply_tls},
    {.name = "jetstream", .kind = KCI_KEY_HANDLER, .handler = apply_jetstream},
    {.name = "data_dir", .kind = KCI_KEY_STRING, .offset = OPTION(data_dir)},
    {.name = "suggestions", .kind = KCI_KEY_HANDLER, .handler = apply_part_block},
    {.name = "ingress", .kind = KCI_KEY_HANDLER, .handler = apply_part_block},
    {.name = "ledger", .kind = KCI_KEY_HANDLER, .handler = apply_part_block},
    {.name = "persister", .kind = KCI_KEY_HANDLER, .handler = apply_part_block},
    {.name = "arbiter", .kind = KCI_KEY_HANDLER, .handler = apply_part_block},
    {.name = "eventnet", .kind = KCI_KEY_HANDLER, .handler = apply_part_block},
    /* accepted and ignored: see docs/config.md */
    {.name = "client_advertise", .kind = KCI_KEY_IGNORED},
    {.name = "ports_file_dir", .kind = KCI_KEY_IGNORED},
    {.name = "syslog", .kind = KCI_KEY_IGNORED},
    {.name = "remote_syslog", .kind = KCI_KEY_IGNORED},
    {.name = "log_size_limit", .kind = KCI_KEY_IGNORED},
    {.name = "logfile_size_limit", .kind = KCI_KEY_IGNORED},
    {.name = "max_traced_msg_len", .kind = KCI_KEY_IGNORED},
    {.name = "disable_sublist_cache", .kind = KCI_KEY_IGNORED},
    {.name = "no_sublist_cache", .kind = KCI_KEY_IGNORED},
    {.name = "prof_port", .kind = KCI_KEY_IGNORED},
    {.name = "connect_error_reports", .kind = KCI_KEY_IGNORED},
    {.name = "reconnect_error_reports", .kind = KCI_KEY_IGNORED},
    {.name = "lame_duck_duration", .kind = KCI_KEY_IGNORED},
    {.name = "lame_duck_grace_period", .kind = KCI_KEY_IGNORED},
    {.name = "server_tags", .kind = KCI_KEY_IGNORED},
    {.name = "http_base_path", .kind = KCI_KEY_IGNORED},
    {.name = "max_sub_tokens", .kind = KCI_KEY_IGNORED},
    {.name = "max_subscription_tokens", .kind = KCI_KEY_IGNORED},
    {.name = "no_header_support", .kind = KCI_KEY_IGNORED},
    /* nats-server features kcobrad does not have */
    {.name = "cluster", .kind = KCI_KEY_UNSUPPORTED},
    {.name = "gateway", .kind = KCI_KEY_UNSUPPORTED},
    {.name = "leafnodes", .kind = KCI_KEY_UNSUPPORTED},
    {.name = "leaf", .kind = KCI_KEY_UNSUPPORTED},
    {.name = "store_dir", .kind = KCI_KEY_UNSUPPORTED},
    {.name = "storedir", .kind = KCI_KEY_UNSUPPORTED},
    {.name = "accounts", .kind = KCI_KEY_UNSUPPORTED},
    {.name = "operator", .kind = KCI_KEY_UNSUPPORTED},
    {.name = "operators", .kind = KCI_KEY_UNSUPPORTED},
    {.name = "resolver", .kind = KCI_KEY_UNSUPPORTED},
    {.name = "resolver_preload", .kind = KCI_KEY_UNSUPPORTED},
    {.name = "system_account", .kind = KCI_KEY_UNSUPPORTED},
    {.name = "no_auth_user", .kind = KCI_KEY_UNSUPPORTED},
    {.name = "websocket", .kind = KCI_KEY_UNSUPPORTED},
    {.name = "ws", .kind = KCI_KEY_UNSUPPORTED},
    {.name = "mqtt", .kind = KCI_KEY_UNSUPPORTED},
    {.name = "mappings", .kind = KCI_KEY_UNSUPPORTED},
    {.name = "https", .kind = KCI_KEY_UNSUPPORTED},
    {.name = "https_port", .kind = KCI_KEY_UNSUPPORTED},
    {.name = "ocsp", .kind = KCI_KEY_UNSUPPORTED},
    {.name = "allow_non_tls", .kind = KCI_KEY_UNSUPPORTED},
};

kc_err kci_options_apply_conf(kci_options *options, const kci_conf_value *root, char *error,
                              size_t error_size)
{
    assert(options != NULL && root != NULL);
    apply_context context = {options->config_file != NULL ? options->config_file : "config", error,
                             error_size};
    if (root->kind != KCI_CONF_MAP)
        return kci_config_error(&context, root, KC_ERR_CONFIG, "not a map");
    kc_err err = kci_config_apply_map(&context, "", root, top_level_rules,
                                      RULE_COUNT(top_level_rules), options);
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

static bool host_is_wildcard(const char *host)
{
    return strcmp(host, "0.0.0.0") == 0 || strcmp(host, "::") == 0 || strcmp(host, "[::]") == 0;
}

static kc_err validate_listen(const kci_options *options, char *error, size_t error_size)
{
    if (options->host == NULL || options->host[0] == '\0')
        return kci_options_plain_error(error, error_size, "the listen host is empty");
    if (!kci_config_port_in_range(options->port) || !kci_config_port_in_range(options->http_port))
        return kci_options_plain_error(error, error_size, "a port must be from 0 to 65535 (or -1)");
    const char *http_host = options->http_host != NULL ? options->http_host : options->host;
    /* The same port on the same host, or on any host beside a wildcard
     * (0.0.0.0 also takes 127.0.0.1's port). */
    bool hosts_overlap = strcmp(http_host, options->host) == 0 || host_is_wildcard(http_host) ||
                         host_is_wildcard(options->host);
    if (options->port > 0 && options->port == options->http_port && hosts_overlap)
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

/* The components' keys: paths not empty, the type one subject token. */
static kc_err validate_components(const kci_options *options, char *error, size_t error_size)
{
    if (options->data_dir != NULL && options->data_dir[0] == '\0')
        return kci_options_plain_error(error, error_size, "data_dir is empty");
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
