/* respond.c - what the persister sends, and whom it may answer. Every
 * message it publishes (acknowledgement, dispatch, reply, error, stats)
 * carries its Kc-Id, Kc-Ts and Kc-Node stamped here; errors go out as one
 * "<code> <message>" Kc-Error. A reply subject that is not the client's
 * inbox is refused before anything is done for it (answerable), and checked
 * again as the last thing before an error is published: answering it would
 * publish on a subject of the client's choosing with the persister's
 * identity (service/reply_subject.h, docs/security.md). */
#include <assert.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "common/log.h"
#include "persister_internal.h"
#include "service/answer.h"
#include "service/hlc.h"
#include "service/reply_subject.h"

enum { ERROR_TEXT_BYTES = 256 };

void kci_persister_hlc_now(int64_t *wall_ms, uint32_t *counter)
{
    kci_hlc_timestamp now;
    kci_hlc_now(kci_process_hlc(), &now);
    *wall_ms = now.wall_ms;
    *counter = now.counter;
}

void kci_persister_set_header(natsMsg *message, const char *name, const char *value)
{
    if (natsMsgHeader_Set(message, name, value) != NATS_OK)
        kci_debug("queue: cannot set header %s", name);
}

void kci_persister_stamp(kci_persister *persister, natsMsg *message, const char *id_text)
{
    assert(id_text != NULL);
    char ts[KCI_HLC_TEXT_BYTES_MAX];
    kci_hlc_timestamp now;
    kci_hlc_now(kci_process_hlc(), &now);
    kci_hlc_format(&now, ts);
    kci_persister_set_header(message, KCI_HEADER_ID, id_text);
    kci_persister_set_header(message, KCI_HEADER_TS, ts);
    kci_persister_set_header(message, KCI_HEADER_NODE, persister->node);
}

void kci_persister_publish(kci_persister *persister, natsMsg *message)
{
    assert(persister->connection != NULL && message != NULL); /* only online */
    natsStatus status = natsConnection_PublishMsg(persister->connection, message);
    if (status != NATS_OK) kci_debug("queue: cannot publish: %s", natsStatus_GetText(status));
    natsMsg_Destroy(message);
}

void kci_persister_respond_error(kci_persister *persister, const char *subject, const char *id_text,
                                 int code, const char *state, const char *format, ...)
{
    assert(code > 0);
    char text[ERROR_TEXT_BYTES];
    va_list arguments;
    va_start(arguments, format);
    vsnprintf(text, sizeof text, format, arguments);
    va_end(arguments);
    kci_answer answer = {.node = persister->node,
                         .code = code,
                         .message = text,
                         .id = id_text,
                         .headers = {{KCI_HEADER_QUEUE_STATE, state}}};
    /* The subject was checked where it came in; the kit checks it again, the
     * last line of defence against publishing for a client outside its
     * inbox (reply_subject.h). */
    kci_answer_send_to(persister->connection, subject, &answer, "queue");
}

/* A request whose reply subject is not an inbox gets no answer and is not
 * served: answering it would publish on a subject of the client's choosing
 * with the persister's identity (reply_subject.h). Takes the message when it
 * returns false. */
bool kci_persister_answerable(kci_persister *persister, natsMsg *message, const char *what)
{
    const char *reply = natsMsg_GetReply(message);
    if (reply == NULL || reply[0] == '\0') return true;
    size_t length = strnlen(reply, KCI_REPLY_SUBJECT_BYTES_MAX + 1);
    const char *problem = kci_reply_subject_problem(reply, length, KCI_REPLY_ANSWER);
    if (problem == NULL) return true;
    pthread_mutex_lock(&persister->lock);
    persister->stats.refused_reply_subjects++;
    pthread_mutex_unlock(&persister->lock);
    kci_debug("queue: refused a %s whose reply subject %s", what, problem);
    natsMsg_Destroy(message);
    return false;
}
