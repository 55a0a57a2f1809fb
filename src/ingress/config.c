/* config.c - the seed-format ingress's settings (config.h). */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "service/headers.h"

#define TYPE_DEFAULT "default"

static kc_err apply_listen(const kci_config_context *context, const kci_conf_entry *entry,
                           void *field)
{
    kci_ingress_settings *settings = field;
    kc_err err =
        kci_config_listen(context, entry->key, &entry->value, &settings->host, &settings->port);
    /* ":4223" (no host) asks for every interface, by name */
    if (err == KC_OK && settings->host == NULL)
        err = kci_config_string_set(&settings->host, "0.0.0.0");
    return err;
}

static const kci_config_key keys[] = {
    {.name = "enabled", .kind = KCI_KEY_BOOL, .offset = offsetof(kci_ingress_settings, enabled)},
    {.name = "listen",
     .kind = KCI_KEY_HANDLER,
     .handler = apply_listen,
     .value_name = "HOST:PORT",
     .help = "where to listen (default 127.0.0.1:4223; port 0: any free port, logged)"},
    {.name = "type",
     .kind = KCI_KEY_STRING,
     .offset = offsetof(kci_ingress_settings, type),
     .value_name = "TYPE",
     .help = "the request type of every line"},
    {.name = "timeout",
     .kind = KCI_KEY_DURATION_MS,
     .offset = offsetof(kci_ingress_settings, timeout_ms),
     .value_name = "DURATION",
     .help = "time limit per request",
     .flag = "request-timeout"}, /* --timeout is the connection's */
    {.name = "token",
     .kind = KCI_KEY_STRING,
     .offset = offsetof(kci_ingress_settings, token),
     .value_name = "TOKEN",
     .help = "every connection's first line must be AUTH#<TOKEN>",
     .flag = "ingress-token"}, /* --token is the connection's */
    {.name = "user", .kind = KCI_KEY_STRING, .offset = offsetof(kci_ingress_settings, user)},
    {.name = "cert_file",
     .kind = KCI_KEY_STRING,
     .offset = offsetof(kci_ingress_settings, cert_file),
     .value_name = "PEM",
     .help = "with key_file: connections speak TLS (the certificate chain)",
     .flag = "ingress-cert"},
    {.name = "key_file",
     .kind = KCI_KEY_STRING,
     .offset = offsetof(kci_ingress_settings, key_file),
     .value_name = "PEM",
     .help = "the TLS private key",
     .flag = "ingress-key"},
};

const kci_config_key *kci_ingress_settings_keys(size_t *count)
{
    *count = KCI_CONFIG_KEY_COUNT(keys);
    return keys;
}

kc_err kci_ingress_settings_init(kci_ingress_settings *settings)
{
    memset(settings, 0, sizeof *settings);
    settings->port = KCI_INGRESS_PORT_DEFAULT;
    settings->timeout_ms = KCI_INGRESS_TIMEOUT_MS_DEFAULT;
    /* Loopback: the seed format has no authentication (issue 15, finding 6). */
    kc_err err = kci_config_string_set(&settings->host, KCI_INGRESS_HOST_DEFAULT);
    return err == KC_OK ? kci_config_string_set(&settings->type, TYPE_DEFAULT) : err;
}

kc_err kci_ingress_settings_check(const kci_ingress_settings *settings, char *error,
                                  size_t error_size)
{
    const char *type = settings->type != NULL ? settings->type : "";
    if (strlen(type) > KC_TYPE_BYTES_MAX || !kci_token_valid(type)) {
        snprintf(error, error_size,
                 "ingress type \"%s\" must be one subject token (no dots, spaces or wildcards, "
                 "at most %d bytes)",
                 type, KC_TYPE_BYTES_MAX);
        return KC_ERR_CONFIG;
    }
    if (!kci_config_port_in_range(settings->port)) {
        snprintf(error, error_size, "the ingress port must be from 0 to 65535 (or -1)");
        return KC_ERR_CONFIG;
    }
    return KC_OK;
}

kci_ingress_config kci_ingress_settings_runtime(const kci_ingress_settings *settings)
{
    return (kci_ingress_config){.host = settings->host,
                                .port = settings->port,
                                .type = settings->type,
                                .timeout_ms = settings->timeout_ms,
                                .token = settings->token,
                                .cert_file = settings->cert_file,
                                .key_file = settings->key_file};
}

bool kci_ingress_settings_equal(const kci_ingress_settings *a, const kci_ingress_settings *b)
{
    bool hosts_equal =
        a->host == NULL || b->host == NULL ? a->host == b->host : strcmp(a->host, b->host) == 0;
    return hosts_equal && a->port == b->port &&
           kci_config_equal(keys, KCI_CONFIG_KEY_COUNT(keys), a, b);
}

void kci_ingress_settings_free(kci_ingress_settings *settings)
{
    free(settings->host);
    settings->host = NULL;
    kci_config_free_fields(keys, KCI_CONFIG_KEY_COUNT(keys), settings);
}
