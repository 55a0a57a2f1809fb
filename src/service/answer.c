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

/* The Kc headers, then the answer's own id and headers over them. */
static kc_err answer_stamp(natsMsg *reply, const kci_answer *answer)
{
    kci_kc_headers stamp;
    kci_headers_clear(&stamp);
    kci_text_copy(stamp.node, sizeof stamp.node, answer->node);
    if (answer->type != NULL) kci_text_copy(stamp.type, sizeof stamp.type, answer->type);
    kci_uuid request_id; /* a request's Kc-Id the reader would refuse is left out */
    if (answer->reply_to != NULL &&
        kci_uuid_parse(answer->reply_to, strlen(answer->reply_to), &request_id))
        kci_text_copy(stamp.reply_to, sizeof stamp.reply_to, answer->reply_to);
    stamp.error_code = answer->code;
    if (answer->code != 0 && answer->message != NULL)
        kci_text_copy(stamp.error_message, sizeof stamp.error_message, answer->message);
    kc_err err = kci_headers_stamp(reply, &stamp);
    natsStatus status = NATS_OK;
    if (err == KC_OK && answer->id != NULL)
        status = natsMsgHeader_Set(reply, KCI_HEADER_ID, answer->id);
    for (size_t index = 0; index < KCI_ANSWER_HEADERS_MAX && status == NATS_OK; index++) {
        const kci_answer_header *header = &answer->headers[index];
        if (header->name != NULL && header->value != NULL && header->value[0] != '\0')
            status = natsMsgHeader_Set(reply, header->name, header->value);
    }
    if (err == KC_OK && status != NATS_OK) err = kci_nats_fail(status, "answer headers");
    return err;
}

kc_err kci_answer_send_to(natsConnection *connection, const char *to, const kci_answer *answer,
                          const char *what)
{
    assert(connection != NULL && answer != NULL && what != NULL);
    kci_micro_stats *stats = answer->stats != NULL ? answer->stats : kci_micro_current();
    if (stats != NULL && answer->code != 0)
        kci_micro_stats_error(stats, answer->code, answer->message);
    if (to == NULL || to[0] == '\0') return KC_OK; /* nobody waits */
    if (!kci_reply_subject_allowed(to, KCI_REPLY_ANSWER)) {
        kci_debug("%s: no answer to a reply subject that is not an inbox", what);
        return KC_ERR_INVALID_SUBJECT;
    }
    natsMsg *reply = NULL;
    natsStatus status =
        natsMsg_Create(&reply, to, NULL, answer->payload, (int)answer->payload_length);
    if (status != NATS_OK) {
        kci_warn("%s: cannot build an answer: %s", what, natsStatus_GetText(status));
        return kci_nats_fail(status, "answer");
    }
    kc_err err = answer_stamp(reply, answer);
    if (err != KC_OK)
        kci_warn("%s: cannot stamp an answer: %s", what, kc_last_error());
    else if ((status = natsConnection_PublishMsg(connection, reply)) != NATS_OK)
        kci_warn("%s: cannot answer: %s", what, natsStatus_GetText(status));
    if (err == KC_OK && status != NATS_OK) err = kci_nats_fail(status, "answer");
    natsMsg_Destroy(reply);
    return err;
}

kc_err kci_answer_send(natsConnection *connection, natsMsg *request, const kci_answer *answer,
                       const char *what)
{
    assert(request != NULL);
    return kci_answer_send_to(connection, natsMsg_GetReply(request), answer, what);
}
