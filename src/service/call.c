/* call.c - one component calls another with a deadline (call.h). */
#include "call.h"

#include <assert.h>
#include <limits.h>
#include <string.h>

#include "service/headers.h"
#include "service/last_error.h"

bool kci_refusal_read(natsMsg *reply, kci_refusal *refusal)
{
    const char *text = NULL;
    if (natsMsgHeader_Get(reply, KCI_HEADER_ERROR, &text) != NATS_OK || text == NULL) return false;
    kci_kc_headers headers;
    kci_headers_clear(&headers);
    if (kci_headers_read(reply, false, &headers) == KC_OK && headers.error_code > 0) {
        refusal->code = headers.error_code;
        kci_text_copy(refusal->message, sizeof refusal->message, headers.error_message);
    } else {
        refusal->code = KCI_REFUSAL_CODE_UNREADABLE;
        kci_text_copy(refusal->message, sizeof refusal->message, text);
    }
    return true;
}

/* The server's refusal of our publish on subject, if that is what the
 * connection's last error says: a publish the server's permissions refuse
 * is dropped with an asynchronous -ERR, so the request itself only times
 * out (e.g. kc.ledger.mint, kept to operators). */
static const char *publish_refused(natsConnection *connection, const char *subject)
{
    const char *text = NULL;
    if (natsConnection_GetLastError(connection, &text) != NATS_NOT_PERMITTED || text == NULL)
        return NULL;
    const char *quoted = strstr(text, "Publish to \"");
    if (quoted == NULL) return NULL;
    quoted += strlen("Publish to \"");
    size_t length = strlen(subject);
    return strncmp(quoted, subject, length) == 0 && quoted[length] == '"' ? text : NULL;
}

/* What a request's status means (call.h). */
static kc_err call_outcome(natsConnection *connection, natsStatus status, natsMsg *reply,
                           const char *subject, int64_t timeout_ms, kci_refusal *refusal)
{
    if (status == NATS_NO_RESPONDERS)
        return kci_fail(KC_ERR_NO_RESPONDERS, "nobody serves %s", subject);
    const char *refused = status == NATS_TIMEOUT ? publish_refused(connection, subject) : NULL;
    if (refused != NULL)
        return kci_fail(KC_ERR_PERMISSION, "the server refused the request on %s: %s", subject,
                        refused);
    if (status == NATS_TIMEOUT)
        return kci_fail(KC_ERR_TIMEOUT, "no answer on %s within %lld ms", subject,
                        (long long)timeout_ms);
    if (status != NATS_OK)
        return kci_fail(KC_ERR_NOT_CONNECTED, "%s: %s", subject, natsStatus_GetText(status));
    assert(reply != NULL);
    if (!kci_refusal_read(reply, refusal)) return KC_OK;
    return kci_fail(KC_ERR_SERVICE, "%s: %d %s", subject, refusal->code, refusal->message);
}

kc_err kci_call(natsMsg **reply, natsConnection *connection, const char *subject, const void *body,
                size_t body_length, int64_t timeout_ms, kci_refusal *refusal)
{
    assert(reply != NULL && connection != NULL && subject != NULL && refusal != NULL);
    *reply = NULL;
    *refusal = (kci_refusal){0};
    if (body_length > INT_MAX)
        return kci_fail(KC_ERR_TOO_LARGE, "%s: a body of %zu bytes", subject, body_length);
    natsStatus status = natsConnection_Request(reply, connection, subject, body, (int)body_length,
                                               timeout_ms > 0 ? timeout_ms : 1);
    return call_outcome(connection, status, *reply, subject, timeout_ms, refusal);
}

kc_err kci_call_message(natsMsg **reply, natsConnection *connection, natsMsg *request,
                        int64_t timeout_ms, kci_refusal *refusal)
{
    assert(reply != NULL && connection != NULL && request != NULL && refusal != NULL);
    *reply = NULL;
    *refusal = (kci_refusal){0};
    natsStatus status =
        natsConnection_RequestMsg(reply, connection, request, timeout_ms > 0 ? timeout_ms : 1);
    return call_outcome(connection, status, *reply, natsMsg_GetSubject(request), timeout_ms,
                        refusal);
}

kc_err kci_call_first(natsMsg **reply, natsConnection *connection, const char *subject,
                      const void *body, size_t body_length, int64_t timeout_ms,
                      kci_refusal *refusal)
{
    assert(reply != NULL && connection != NULL && subject != NULL && refusal != NULL);
    *reply = NULL;
    *refusal = (kci_refusal){0};
    if (body_length > INT_MAX)
        return kci_fail(KC_ERR_TOO_LARGE, "%s: a body of %zu bytes", subject, body_length);
    natsInbox *inbox = NULL;
    natsSubscription *answers = NULL;
    natsStatus status = natsInbox_Create(&inbox);
    if (status == NATS_OK) status = natsConnection_SubscribeSync(&answers, connection, inbox);
    if (status == NATS_OK) status = natsSubscription_AutoUnsubscribe(answers, 1);
    if (status == NATS_OK)
        status = natsConnection_PublishRequest(connection, subject, inbox, body, (int)body_length);
    if (status == NATS_OK)
        status = natsSubscription_NextMsg(reply, answers, timeout_ms > 0 ? timeout_ms : 1);
    if (status == NATS_OK && natsMsg_IsNoResponders(*reply)) {
        natsMsg_Destroy(*reply);
        *reply = NULL;
        status = NATS_NO_RESPONDERS;
    }
    if (status != NATS_OK && *reply != NULL) {
        natsMsg_Destroy(*reply);
        *reply = NULL;
    }
    natsSubscription_Destroy(answers);
    natsInbox_Destroy(inbox);
    return call_outcome(connection, status, *reply, subject, timeout_ms, refusal);
}
