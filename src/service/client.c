/* client.c - kc_client: one nats.c connection, a node name, and the
 * services and asynchronous requests that run on it.
 *
 * Open: the options map one to one onto natsOptions (servers list, name,
 * token or user/password, TLS with CA/certificate/key, connect timeout,
 * reconnect attempts and wait). The node name defaults to the host name up
 * to its first dot, because a node name is one subject token.
 *
 * Close, in order, within timeout_ms: stop the services (each drains its
 * subscription and lets running handlers finish), wait for asynchronous
 * requests in flight to be answered, drain the connection
 * (natsConnection_DrainTimeout: pending messages are delivered, buffered
 * publishes flushed, then nats.c closes it), wait for nats.c's closed
 * callback, answer what is still pending with KC_ERR_CLOSED, free. The
 * client is freed even when the timeout passes (KC_ERR_TIMEOUT then).
 *
 * Limits: kc_client_close must not race other calls on the same client, and
 * handles of services it stopped must not be used afterwards. */
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "service/client_internal.h"
#include "service/component.h"
#include "service/hlc.h"
#include "service/last_error.h"
#include "service/nats_options.h"
#include "service/qos_report.h"

enum { CLIENT_URL_TEXT_BYTES = 256 }; /* a server URL in a log line */

/* ---- helpers shared by the service layer -------------------------------- */

static kc_err nats_status_to_err(natsStatus status)
{
    switch (status) {
    case NATS_OK: return KC_OK;
    case NATS_TIMEOUT: return KC_ERR_TIMEOUT;
    case NATS_NO_RESPONDERS: return KC_ERR_NO_RESPONDERS;
    case NATS_NO_MEMORY: return KC_ERR_NOMEM;
    case NATS_INVALID_ARG:
    case NATS_INVALID_TIMEOUT:
    case NATS_INVALID_QUEUE_NAME: return KC_ERR_INVALID_ARGUMENT;
    case NATS_INVALID_SUBJECT: return KC_ERR_INVALID_SUBJECT;
    case NATS_MAX_PAYLOAD: return KC_ERR_TOO_LARGE;
    case NATS_SSL_ERROR:
    case NATS_SECURE_CONNECTION_WANTED:
    case NATS_SECURE_CONNECTION_REQUIRED: return KC_ERR_TLS;
    case NATS_CONNECTION_AUTH_FAILED: return KC_ERR_AUTH;
    case NATS_NOT_PERMITTED: return KC_ERR_PERMISSION;
    case NATS_SLOW_CONSUMER:
    case NATS_MAX_DELIVERED_MSGS: return KC_ERR_LIMIT;
    case NATS_CONNECTION_CLOSED:
    case NATS_DRAINING: return KC_ERR_CLOSED;
    case NATS_NO_SERVER:
    case NATS_NOT_YET_CONNECTED:
    case NATS_CONNECTION_DISCONNECTED:
    case NATS_STALE_CONNECTION: return KC_ERR_NOT_CONNECTED;
    case NATS_NOT_FOUND: return KC_ERR_NOT_FOUND;
    case NATS_PROTOCOL_ERROR: return KC_ERR_PARSE;
    default: return KC_ERR_IO;
    }
}

kc_err kci_nats_fail(natsStatus status, const char *what)
{
    assert(status != NATS_OK && what != NULL);
    natsStatus last_status = NATS_OK;
    const char *detail = nats_GetLastError(&last_status);
    if (detail == NULL || detail[0] == '\0' || last_status != status)
        detail = natsStatus_GetText(status);
    return kci_fail(nats_status_to_err(status), "%s: %s", what, detail);
}

kc_err kci_client_stamp(kc_client *client, natsMsg *message, kci_kc_headers *headers)
{
    assert(client != NULL && message != NULL && headers != NULL);
    kci_text_copy(headers->node, sizeof(headers->node), client->node);
    return kci_headers_stamp(message, headers); /* a new Kc-Id, Kc-Ts from the process clock */
}

kc_err kci_client_observe(const kci_kc_headers *headers)
{
    assert(headers != NULL);
    if (headers->ts[0] == '\0') return KC_OK;
    kc_err err = kci_headers_observe(kci_process_hlc(), headers, NULL);
    /* Too far ahead is KC_ERR_BAD_HEADER already, the detail naming Kc-Ts. */
    if (err == KC_OK || err == KC_ERR_BAD_HEADER) return err;
    return kci_fail(KC_ERR_BAD_HEADER, "%s: %s is out of the clock's range", KCI_HEADER_TS,
                    headers->ts);
}

kc_err kci_request_subject(char subject[KCI_SUBJECT_BYTES_MAX], const char *type)
{
    static const char prefix[] = "kc.req.";
    /* kci_token_valid bounds the length by KC_TYPE_BYTES_MAX. */
    if (type == NULL || !kci_token_valid(type))
        return kci_fail(KC_ERR_INVALID_ARGUMENT, "request type \"%s\" is not one subject token",
                        type != NULL ? type : "(null)");
    size_t type_length = strlen(type);
    _Static_assert(sizeof(prefix) + KC_TYPE_BYTES_MAX <= KCI_SUBJECT_BYTES_MAX, "subject bound");
    assert(type_length <= KC_TYPE_BYTES_MAX);
    memcpy(subject, prefix, sizeof(prefix) - 1);
    memcpy(subject + sizeof(prefix) - 1, type, type_length + 1);
    return KC_OK;
}

/* ---- options ------------------------------------------------------------ */

void kc_client_options_init(kc_client_options *options)
{
    if (options == NULL) return;
    memset(options, 0, sizeof(*options));
    options->servers = "nats://127.0.0.1:4222";
    options->connect_timeout_ms = KCI_CLIENT_CONNECT_TIMEOUT_MS_DEFAULT;
    options->reconnect_attempts_max = -1;
    options->reconnect_wait_ms = KCI_CLIENT_RECONNECT_WAIT_MS_DEFAULT;
}

static void on_closed(natsConnection *connection, void *closure)
{
    kc_client *client = closure;
    pthread_mutex_lock(&client->lock);
    client->connection_closed = true;
    pthread_cond_broadcast(&client->changed);
    pthread_mutex_unlock(&client->lock);
}

static void on_async_error(natsConnection *connection, natsSubscription *subscription,
                           natsStatus status, void *closure)
{
    const char *subject = subscription != NULL ? natsSubscription_GetSubject(subscription) : NULL;
    kci_warn("kingcobra: %s%s%s", natsStatus_GetText(status), subject != NULL ? " on " : "",
             subject != NULL ? subject : "");
}

/* A long-running client (kcobra serve) says when it loses and regains the
 * server: it used to go quiet while its requests went nowhere (issue 18). */
static void on_disconnected(natsConnection *connection, void *closure)
{
    kc_client *client = closure;
    pthread_mutex_lock(&client->lock);
    bool closing = client->closing;
    pthread_mutex_unlock(&client->lock);
    if (closing || natsConnection_IsClosed(connection)) return; /* our own close */
    kci_warn("kingcobra: lost the server; reconnecting");
}

static void on_reconnected(natsConnection *connection, void *closure)
{
    char url[CLIENT_URL_TEXT_BYTES] = "";
    natsConnection_GetConnectedUrl(connection, url, sizeof url);
    kci_info("kingcobra: reconnected to %s", url);
}

static kc_err build_nats_options(natsOptions *nats_options, const kc_client_options *options,
                                 kc_client *client)
{
    /* The node name by default: kcobrad knows a node by its connection name
     * (or its user) when it enforces the arbiters' quarantine. */
    const char *name = options->name != NULL ? options->name : client->node;
    kc_err err = kci_nats_options_fill(nats_options, options, name);
    if (err != KC_OK) return err;
    /* Send at once unless asked to buffer (kingcobra.h: publish_buffered). */
    natsStatus status = natsOptions_SetSendAsap(nats_options, !options->publish_buffered);
    if (status == NATS_OK) status = natsOptions_SetClosedCB(nats_options, on_closed, client);
    if (status == NATS_OK) status = natsOptions_SetErrorHandler(nats_options, on_async_error, NULL);
    if (status == NATS_OK)
        status = natsOptions_SetDisconnectedCB(nats_options, on_disconnected, client);
    if (status == NATS_OK)
        status = natsOptions_SetReconnectedCB(nats_options, on_reconnected, client);
    return status == NATS_OK ? KC_OK : kci_nats_fail(status, "options");
}

/* The host name up to its first dot: one subject token. */
static kc_err set_node(kc_client *client, const char *node)
{
    if (node != NULL) {
        if (strlen(node) > KC_NODE_BYTES_MAX || !kci_token_valid(node))
            return kci_fail(KC_ERR_INVALID_ARGUMENT, "node \"%s\" is not one subject token", node);
        snprintf(client->node, sizeof(client->node), "%s", node);
        return KC_OK;
    }
    char host[KC_NODE_BYTES_MAX + 1];
    kc_err err = kci_node_from_host(host);
    if (err != KC_OK) {
        char reason[KCI_ERROR_TEXT_BYTES_MAX]; /* kc_last_error() is about to be rewritten */
        snprintf(reason, sizeof reason, "%s", kc_last_error());
        return kci_fail(err, "%s; set kc_client_options.node", reason);
    }
    snprintf(client->node, sizeof(client->node), "%s", host);
    return KC_OK;
}

static kc_client *client_new(void)
{
    kc_client *client = calloc(1, sizeof(*client));
    if (client == NULL) return NULL;
    pthread_condattr_t attributes;
    pthread_condattr_init(&attributes);
    pthread_condattr_setclock(&attributes, CLOCK_MONOTONIC);
    int rc = pthread_cond_init(&client->changed, &attributes);
    pthread_condattr_destroy(&attributes);
    if (rc != 0 || pthread_mutex_init(&client->lock, NULL) != 0) {
        if (rc == 0) pthread_cond_destroy(&client->changed);
        free(client);
        return NULL;
    }
    return client;
}

static void client_free(kc_client *client)
{
    pthread_cond_destroy(&client->changed);
    pthread_mutex_destroy(&client->lock);
    free(client);
}

kc_err kc_client_open(kc_client **out, const kc_client_options *options)
{
    if (out == NULL) return kci_fail(KC_ERR_INVALID_ARGUMENT, "out is NULL");
    *out = NULL;
    kc_client_options defaults;
    kc_client_options_init(&defaults);
    if (options == NULL) options = &defaults;
    if (options->submits_in_flight_max > KCI_ASYNC_PENDING_MAX)
        return kci_fail(KC_ERR_INVALID_ARGUMENT, "submits_in_flight_max %u is over %d",
                        options->submits_in_flight_max, KCI_ASYNC_PENDING_MAX);
    kc_client *client = client_new();
    if (client == NULL) return kci_fail(KC_ERR_NOMEM, NULL);
    client->submits_in_flight_max = options->submits_in_flight_max > 0
                                        ? options->submits_in_flight_max
                                        : KCI_SUBMITS_IN_FLIGHT_DEFAULT;
    kc_err err = set_node(client, options->node);
    /* Before the connection: it publishes only what requests queue. */
    if (err == KC_OK && options->qos_secret_key != NULL)
        err = kci_qos_reporter_start(client, options->qos_secret_key);
    natsOptions *nats_options = NULL;
    if (err == KC_OK) {
        natsStatus status = natsOptions_Create(&nats_options);
        err = status == NATS_OK ? build_nats_options(nats_options, options, client)
                                : kci_nats_fail(status, "options");
    }
    if (err == KC_OK) {
        natsStatus status = natsConnection_Connect(&client->connection, nats_options);
        if (status != NATS_OK) err = kci_nats_fail(status, "connect");
    }
    natsOptions_Destroy(nats_options);
    if (err != KC_OK) {
        kci_qos_reporter_stop(client);
        /* A failed connect never ran the closed callback: nothing refers to client. */
        assert(client->connection == NULL);
        client_free(client);
        return err;
    }
    *out = client;
    return KC_OK;
}

const char *kc_client_node(const kc_client *client)
{
    return client != NULL ? client->node : "";
}

/* ---- close -------------------------------------------------------------- */

static void stop_services(kc_client *client)
{
    for (uint32_t step = 0; step <= KCI_CLIENT_SERVICES_MAX; step++) {
        pthread_mutex_lock(&client->lock);
        kc_service *service = client->services;
        pthread_mutex_unlock(&client->lock);
        if (service == NULL) return;
        kc_service_stop(service); /* unlinks itself from client->services */
    }
    assert(!"more services than KCI_CLIENT_SERVICES_MAX");
}

static struct timespec monotonic_timespec(int64_t deadline_ms)
{
    struct timespec deadline = {deadline_ms / 1000, (long)(deadline_ms % 1000) * 1000000};
    return deadline;
}

/* Waits for nats.c's closed callback until deadline_ms; true once closed. */
static bool wait_closed(kc_client *client, int64_t deadline_ms)
{
    struct timespec deadline = monotonic_timespec(deadline_ms);
    pthread_mutex_lock(&client->lock);
    while (!client->connection_closed) {
        if (pthread_cond_timedwait(&client->changed, &client->lock, &deadline) != 0) break;
    }
    bool closed = client->connection_closed;
    pthread_mutex_unlock(&client->lock);
    return closed;
}

/* Drains within deadline_ms; returns KC_ERR_TIMEOUT if it did not finish. */
static kc_err drain_connection(kc_client *client, int64_t deadline_ms)
{
    int64_t remaining_ms = deadline_ms - kci_monotonic_ms();
    /* nats.c reads a drain timeout of 0 as "none": never pass it. */
    natsStatus status =
        natsConnection_DrainTimeout(client->connection, remaining_ms > 0 ? remaining_ms : 1);
    if (status != NATS_OK) natsConnection_Close(client->connection);
    kc_err err = KC_OK;
    if (!wait_closed(client, deadline_ms)) {
        err = kci_fail(KC_ERR_TIMEOUT, "close: the connection did not drain in time");
        if (!wait_closed(client, deadline_ms + KCI_CLOSE_MARGIN_MS)) {
            natsConnection_Close(client->connection);
            wait_closed(client, kci_monotonic_ms() + KCI_CLOSE_MARGIN_MS);
        }
    }
    return err;
}

kc_err kc_client_close(kc_client *client, int64_t timeout_ms)
{
    if (client == NULL) return KC_OK;
    if (timeout_ms < 0) timeout_ms = 0;
    if (timeout_ms > KCI_TIMEOUT_MS_MAX) timeout_ms = KCI_TIMEOUT_MS_MAX;
    int64_t deadline_ms = kci_monotonic_ms() + timeout_ms;
    pthread_mutex_lock(&client->lock);
    client->closing = true;
    pthread_mutex_unlock(&client->lock);

    stop_services(client);
    kci_async_wait_idle(client, deadline_ms);
    kci_channels_unsubscribe(client);
    kci_qos_reporter_stop(client); /* publishes what is queued before the drain */
    kc_err err = drain_connection(client, deadline_ms);
    kci_async_destroy(client);
    kci_channels_destroy(client);

    pthread_mutex_lock(&client->lock);
    bool closed = client->connection_closed;
    pthread_mutex_unlock(&client->lock);
    natsConnection_Destroy(client->connection);
    if (!closed) {
        /* nats.c still holds client as its callback's closure: leaking the
         * small struct is safer than freeing it under a late callback. */
        kci_error("kingcobra: connection did not report closed; leaking the client");
        return kci_fail(KC_ERR_TIMEOUT, "close: the connection did not close");
    }
    assert(client->services == NULL && client->service_count == 0);
    client_free(client);
    return err;
}

natsConnection *kci_client_connection(const kc_client *client)
{
    assert(client != NULL);
    return client->connection;
}
