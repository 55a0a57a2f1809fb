/* verdict_cause.c - a verdict announced as an event of the EventNet
 * (docs/eventnet.md): kc.arbiter.verdict stamped with the Kc headers, its
 * Kc-Cause the evidence the verdict names (the node's sample request ids in
 * evidence.request_ids, at most KCI_CAUSE_IDS_MAX). The JSON body is the
 * same as before; only headers are added. Evidence that is not a usable id
 * is left out of the cause, never refused: the verdict is announced. */
#include <stdlib.h>
#include <string.h>

#include "arbiter_internal.h"
#include "common/clock.h"
#include "common/log.h"
#include "service/headers.h"

static void verdict_cause(const json_t *verdict, char cause[KCI_CAUSE_TEXT_BYTES_MAX])
{
    json_t *ids = json_object_get(json_object_get(verdict, "evidence"), "request_ids");
    size_t index;
    json_t *id;
    cause[0] = '\0';
    json_array_foreach(ids, index, id)
    {
        const char *text = json_string_value(id);
        if (text != NULL) (void)kci_cause_append(cause, text);
    }
}

void kci_arbiter_publish_verdict(kci_arbiter *arbiter, json_t *verdict)
{
    if (verdict == NULL) return;
    char *text = json_dumps(verdict, JSON_COMPACT);
    kci_kc_headers headers;
    kci_headers_clear(&headers);
    kci_text_copy(headers.node, sizeof headers.node, arbiter->id);
    kci_text_copy(headers.type, sizeof headers.type, "verdict");
    verdict_cause(verdict, headers.cause);
    json_decref(verdict);
    natsMsg *message = NULL;
    natsStatus status =
        text != NULL ? natsMsg_Create(&message, "kc.arbiter.verdict", NULL, text, (int)strlen(text))
                     : NATS_NO_MEMORY;
    if (status == NATS_OK && kci_headers_stamp(message, &headers) != KC_OK)
        status = NATS_ERR; /* the id is one token: cannot happen */
    if (status == NATS_OK) status = natsConnection_PublishMsg(arbiter->connection, message);
    if (status != NATS_OK && kci_arbiter_warn_due(arbiter, kci_monotonic_ms()))
        kci_warn("arbiter %s: cannot publish its verdict: %s", arbiter->id,
                 natsStatus_GetText(status));
    natsMsg_Destroy(message);
    free(text);
}
