/* request_caused.c - a component's request to another on behalf of a
 * request it serves, stamped as an EventNet event (client_internal.h): its
 * Kc-Cause names the request served and the payment it carries, so the
 * graph links a payment claim to its request and its transfer or hold. */
#include <string.h>

#include "service/client_internal.h"

natsStatus kci_request_caused(natsMsg **reply, kc_client *client, const char *subject,
                              const char *body, const char *type, const kci_kc_headers *request,
                              int64_t timeout_ms)
{
    natsMsg *message = NULL;
    natsStatus status = natsMsg_Create(&message, subject, NULL, body, (int)strlen(body));
    if (status != NATS_OK) return status;
    kci_kc_headers headers;
    kci_headers_clear(&headers);
    kci_text_copy(headers.type, sizeof headers.type, type);
    (void)kci_cause_append(headers.cause, request->id); /* unusable ids are left out */
    (void)kci_cause_append(headers.cause, request->pay);
    (void)kci_cause_append(headers.cause, request->pay_hold);
    if (kci_client_stamp(client, message, &headers) != KC_OK) status = NATS_NO_MEMORY;
    if (status == NATS_OK)
        status = natsConnection_RequestMsg(reply, client->connection, message, timeout_ms);
    natsMsg_Destroy(message);
    return status;
}
