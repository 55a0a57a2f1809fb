/* answer.c - a component's answer to a request (answer.h). */
#include "answer.h"

#include <assert.h>
#include <string.h>

#include "common/log.h"
#include "service/client_internal.h"
#include "service/headers.h"
#include "service/last_error.h"
#include "service/reply_subject.h"
#include "service/uuid.h"

kc_err kci_answer_send(natsConnection *connection, natsMsg *request, const kci_answer *answer,
                       const char *what)
{
    assert(connection != NULL && request != NULL && answer != NULL && what != NULL);
    const char *reply_subject = natsMsg_GetReply(request);
    if (reply_subject == NULL || reply_subject[0] == '\0') return KC_OK; /* nobody waits */
    if (!kci_reply_subject_allowed(reply_subject, KCI_REPLY_ANSWER)) {
        kci_debug("%s: no answer to a reply subject that is not an inbox", what);
        return KC_ERR_INVALID_SUBJECT;
    }
    natsMsg *reply = NULL;
    natsStatus status =
        natsMsg_Create(&reply, reply_subject, NULL, answer->payload, (int)answer->payload_length);
    if (status != NATS_OK) {
        kci_warn("%s: cannot build an answer: %s", what, natsStatus_GetText(status));
        return kci_nats_fail(status, "answer");
    }
    kci_kc_headers stamp;
    kci_headers_clear(&stamp);
    kci_text_copy(stamp.node, sizeof stamp.node, answer->node);
    kci_text_copy(stamp.type, sizeof stamp.type, answer->type);
    kci_uuid request_id; /* a request's Kc-Id the reader would refuse is left out */
    if (answer->reply_to != NULL &&
        kci_uuid_parse(answer->reply_to, strlen(answer->reply_to), &request_id))
        kci_text_copy(stamp.reply_to, sizeof stamp.reply_to, answer->reply_to);
    stamp.error_code = answer->code;
    if (answer->code != 0 && answer->message != NULL)
        kci_text_copy(stamp.error_message, sizeof stamp.error_message, answer->message);
    kc_err err = kci_headers_stamp(reply, &stamp);
    if (err != KC_OK)
        kci_warn("%s: cannot stamp an answer: %s", what, kc_last_error());
    else if ((status = natsConnection_PublishMsg(connection, reply)) != NATS_OK)
        kci_warn("%s: cannot answer: %s", what, natsStatus_GetText(status));
    if (err == KC_OK && status != NATS_OK) err = kci_nats_fail(status, "answer");
    natsMsg_Destroy(reply);
    return err;
}
