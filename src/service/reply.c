/* reply.c - kc_reply: a received reply message and its KingCobra headers.
 *
 * The reply keeps the nats.c message, so the payload is never copied. A
 * reply must carry the core headers (Kc-Id, Kc-Ts, Kc-Node: it comes from a
 * libkingcobra service); its Kc-Ts is observed on the process clock, so
 * whatever the caller does next orders after the service's reply. A reply
 * whose Kc-Reply-To names another request is refused as malformed: a
 * service must answer the request it was sent. */
#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "service/client_internal.h"
#include "service/last_error.h"

kc_err kci_reply_adopt(kc_reply **out, natsMsg *message, const char *request_id)
{
    assert(out != NULL && message != NULL);
    *out = NULL;
    if (natsMsg_IsNoResponders(message)) {
        natsMsg_Destroy(message);
        return kci_fail(KC_ERR_NO_RESPONDERS, "no service serves the request's type");
    }
    /* malloc, not calloc: glibc's calloc skips the thread cache, and
     * kci_headers_read sets every field anyway. */
    kc_reply *reply = malloc(sizeof(*reply));
    if (reply == NULL) {
        natsMsg_Destroy(message);
        return kci_fail(KC_ERR_NOMEM, "reply");
    }
    kc_err err = kci_headers_read(message, true, &reply->headers);
    if (err == KC_OK) err = kci_client_observe(&reply->headers);
    if (err == KC_OK && request_id != NULL && request_id[0] != '\0' &&
        reply->headers.reply_to[0] != '\0' && strcmp(reply->headers.reply_to, request_id) != 0)
        err = kci_fail(KC_ERR_BAD_HEADER, "%s: %s answers another request than %s",
                       KCI_HEADER_REPLY_TO, reply->headers.reply_to, request_id);
    if (err != KC_OK) {
        natsMsg_Destroy(message);
        free(reply);
        return err; /* KC_ERR_BAD_HEADER with the header named, or KC_ERR_NOMEM */
    }
    reply->message = message;
    *out = reply;
    if (reply->headers.error_code != 0)
        return kci_fail(KC_ERR_SERVICE, "%s answered %d %s", reply->headers.node,
                        reply->headers.error_code, reply->headers.error_message);
    return KC_OK;
}

const void *kc_reply_payload(const kc_reply *reply, size_t *payload_len)
{
    if (reply == NULL) {
        if (payload_len != NULL) *payload_len = 0;
        return NULL;
    }
    if (payload_len != NULL) *payload_len = (size_t)natsMsg_GetDataLength(reply->message);
    return natsMsg_GetData(reply->message);
}

const char *kc_reply_id(const kc_reply *reply)
{
    return reply != NULL ? reply->headers.id : "";
}

const char *kc_reply_request_id(const kc_reply *reply)
{
    return reply != NULL ? reply->headers.reply_to : "";
}

const char *kc_reply_node(const kc_reply *reply)
{
    return reply != NULL ? reply->headers.node : "";
}

const char *kc_reply_timestamp(const kc_reply *reply)
{
    return reply != NULL ? reply->headers.ts : "";
}

int kc_reply_error_code(const kc_reply *reply)
{
    return reply != NULL ? reply->headers.error_code : 0;
}

const char *kc_reply_error_message(const kc_reply *reply)
{
    return reply != NULL ? reply->headers.error_message : "";
}

void kc_reply_destroy(kc_reply *reply)
{
    if (reply == NULL) return;
    natsMsg_Destroy(reply->message);
    free(reply);
}
