/* connect.c - a component connects and disconnects (connect.h). */
#include "connect.h"

#include <assert.h>

#include "common/log.h"
#include "service/last_error.h"
#include "service/nats_options.h"

/* A long-running component says when it loses and regains the server. */
static void on_disconnected(natsConnection *connection, void *closure)
{
    (void)closure;
    if (natsConnection_IsClosed(connection)) return; /* our own stop */
    kci_warn("disconnected from the server; reconnecting");
}

static void on_reconnected(natsConnection *connection, void *closure)
{
    (void)closure;
    char url[256] = "";
    natsConnection_GetConnectedUrl(connection, url, sizeof url);
    kci_info("reconnected to %s", url);
}

static natsStatus options_apply(natsOptions *options, const kci_connect_spec *spec)
{
    natsStatus status = NATS_OK;
    if (spec->no_responders_off) status = natsOptions_DisableNoResponders(options, true);
    if (status == NATS_OK && spec->ordered)
        status = natsOptions_UseGlobalMessageDelivery(options, true);
    if (status == NATS_OK && spec->log_reconnects)
        status = natsOptions_SetDisconnectedCB(options, on_disconnected, NULL);
    if (status == NATS_OK && spec->log_reconnects)
        status = natsOptions_SetReconnectedCB(options, on_reconnected, NULL);
    if (status == NATS_OK && spec->short_pings)
        status = natsOptions_SetPingInterval(options, KCI_CONNECT_LEASE_PING_MS);
    if (status == NATS_OK && spec->short_pings)
        status = natsOptions_SetMaxPingsOut(options, KCI_CONNECT_LEASE_PINGS_OUT);
    return status;
}

kc_err kci_connect(natsConnection **out, const kci_connect_spec *spec)
{
    assert(out != NULL && spec != NULL && spec->options != NULL);
    *out = NULL;
    natsOptions *options = NULL;
    natsStatus status = natsOptions_Create(&options);
    if (status != NATS_OK)
        return kci_fail(KC_ERR_NOMEM, "cannot create the connection options: %s",
                        natsStatus_GetText(status));
    kc_err err = kci_nats_options_fill(options, spec->options, spec->name);
    if (err == KC_OK && (status = options_apply(options, spec)) != NATS_OK)
        err = kci_fail(KC_ERR_INVALID_ARGUMENT, "cannot set the connection options: %s",
                       natsStatus_GetText(status));
    if (err == KC_OK && (status = natsConnection_Connect(out, options)) != NATS_OK) {
        const char *servers = spec->options->servers;
        const char *detail = nats_GetLastError(NULL); /* e.g. the TLS handshake's reason */
        err = kci_fail(KC_ERR_NOT_CONNECTED, "cannot connect to %s: %s",
                       servers != NULL && servers[0] != '\0' ? servers : KCI_SERVERS_DEFAULT,
                       detail != NULL && detail[0] != '\0' ? detail : natsStatus_GetText(status));
        *out = NULL;
    }
    natsOptions_Destroy(options);
    return err;
}

void kci_disconnect(natsConnection **connection)
{
    if (*connection != NULL) {
        natsConnection_Close(*connection);
        natsConnection_Destroy(*connection);
    }
    *connection = NULL;
}
