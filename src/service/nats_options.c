/* nats_options.c - kc_client_options into nats.c options (nats_options.h). */
#include "nats_options.h"

#include <string.h>

#include "service/client_internal.h"
#include "service/last_error.h"

/* Splits "a, b,c" into natsOptions_SetServers's array (copied into scratch). */
static kc_err set_servers(natsOptions *nats_options, const char *servers)
{
    if (servers == NULL || servers[0] == '\0') servers = KCI_SERVERS_DEFAULT;
    size_t length = strlen(servers);
    if (length >= KCI_CLIENT_SERVERS_BYTES_MAX)
        return kci_fail(KC_ERR_INVALID_ARGUMENT, "servers: longer than %d bytes",
                        KCI_CLIENT_SERVERS_BYTES_MAX - 1);
    char scratch[KCI_CLIENT_SERVERS_BYTES_MAX];
    memcpy(scratch, servers, length + 1);
    const char *urls[KCI_CLIENT_SERVERS_MAX];
    int url_count = 0;
    char *save = NULL;
    for (char *url = strtok_r(scratch, ", \t", &save); url != NULL;
         url = strtok_r(NULL, ", \t", &save)) {
        if (url_count == KCI_CLIENT_SERVERS_MAX)
            return kci_fail(KC_ERR_INVALID_ARGUMENT, "servers: more than %d URLs",
                            KCI_CLIENT_SERVERS_MAX);
        urls[url_count++] = url;
    }
    if (url_count == 0)
        return kci_fail(KC_ERR_INVALID_ARGUMENT, "servers: no URL in \"%s\"", servers);
    natsStatus status = natsOptions_SetServers(nats_options, urls, url_count);
    return status == NATS_OK ? KC_OK : kci_nats_fail(status, "servers");
}

static kc_err set_tls(natsOptions *nats_options, const kc_client_options *options)
{
    bool wanted = options->tls || options->tls_ca_file != NULL || options->tls_cert_file != NULL;
    if (!wanted) return KC_OK;
    if ((options->tls_cert_file == NULL) != (options->tls_key_file == NULL))
        return kci_fail(KC_ERR_INVALID_ARGUMENT, "tls: a client certificate needs its key");
    natsStatus status = natsOptions_SetSecure(nats_options, true);
    if (status == NATS_OK && options->tls_ca_file != NULL)
        status = natsOptions_LoadCATrustedCertificates(nats_options, options->tls_ca_file);
    if (status == NATS_OK && options->tls_cert_file != NULL)
        status = natsOptions_LoadCertificatesChain(nats_options, options->tls_cert_file,
                                                   options->tls_key_file);
    return status == NATS_OK ? KC_OK : kci_nats_fail(status, "tls");
}

static kc_err set_auth(natsOptions *nats_options, const kc_client_options *options)
{
    natsStatus status = NATS_OK;
    if (options->token != NULL && options->user != NULL)
        return kci_fail(KC_ERR_INVALID_ARGUMENT, "auth: give a token or a user, not both");
    if (options->token != NULL) status = natsOptions_SetToken(nats_options, options->token);
    if (options->user != NULL)
        status = natsOptions_SetUserInfo(nats_options, options->user, options->password);
    return status == NATS_OK ? KC_OK : kci_nats_fail(status, "auth");
}

kc_err kci_nats_options_fill(natsOptions *nats_options, const kc_client_options *options,
                             const char *name)
{
    kc_err err = set_servers(nats_options, options->servers);
    if (err == KC_OK) err = set_auth(nats_options, options);
    if (err == KC_OK) err = set_tls(nats_options, options);
    if (err != KC_OK) return err;
    int64_t connect_timeout_ms = options->connect_timeout_ms > 0
                                     ? options->connect_timeout_ms
                                     : KCI_CLIENT_CONNECT_TIMEOUT_MS_DEFAULT;
    int64_t reconnect_wait_ms = options->reconnect_wait_ms > 0
                                    ? options->reconnect_wait_ms
                                    : KCI_CLIENT_RECONNECT_WAIT_MS_DEFAULT;
    natsStatus status = NATS_OK;
    if (name != NULL) status = natsOptions_SetName(nats_options, name);
    if (status == NATS_OK) status = natsOptions_SetTimeout(nats_options, connect_timeout_ms);
    if (status == NATS_OK)
        status = natsOptions_SetMaxReconnect(nats_options, options->reconnect_attempts_max);
    if (status == NATS_OK) status = natsOptions_SetReconnectWait(nats_options, reconnect_wait_ms);
    return status == NATS_OK ? KC_OK : kci_nats_fail(status, "options");
}
