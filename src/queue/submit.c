/* submit.c - kc.submit.<type>: a request is checked, appended to the log,
 * and only once it is durable acknowledged to the submitter (header Kc-Id,
 * body {"id":"..."}) and dispatched on kc.req.<type> with the same Kc-Id, its
 * reply coming back to the persister's own inbox (replies.c). A failed
 * append answers an error and acknowledges nothing. A submit of an id that
 * is known already is acknowledged again (submits are idempotent by Kc-Id),
 * or answered 409 while that id is still being stored.
 *
 * Hot path: the submit's natsMsg itself is kept (not copied) until its
 * record is durable, in a context from the fixed pool of
 * KCI_PERSISTER_IN_FLIGHT_MAX (persister.c); the record is encoded straight
 * into the log's batch. The only allocations per submit are nats.c's own
 * messages. */
#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "common/clock.h"
#include "common/log.h"
#include "persister_internal.h"
#include "service/reply_subject.h"

enum { FLUSH_TIMEOUT_MS = 1000 };

/* Sends the request on its kc.req.<type> subject with the durable id, the
 * reply coming back to <inbox>.<id>. */
void kci_persister_dispatch(kci_persister *persister, const char *id_text, const char *subject,
                            const void *payload, int payload_length)
{
    assert(strlen(id_text) == KC_UUID_TEXT_BYTES);
    assert(payload_length >= 0 && payload_length <= KCI_RECORD_PAYLOAD_BYTES_MAX);
    char reply[KCI_PERSISTER_INBOX_BYTES + KCI_PERSISTER_ID_TEXT_BYTES + 1];
    snprintf(reply, sizeof reply, "%s.%s", persister->inbox, id_text);
    natsMsg *message = NULL;
    if (natsMsg_Create(&message, subject, reply, payload, payload_length) != NATS_OK) return;
    kci_persister_stamp(persister, message, id_text);
    if (strncmp(subject, KCI_PERSISTER_REQUEST_PREFIX, strlen(KCI_PERSISTER_REQUEST_PREFIX)) == 0)
        kci_persister_set_header(message, KCI_HEADER_TYPE,
                                 subject + strlen(KCI_PERSISTER_REQUEST_PREFIX));
    kci_persister_publish(persister, message);
}

static void acknowledge(kci_persister *persister, const char *reply_subject, const char *id_text)
{
    if (reply_subject == NULL || reply_subject[0] == '\0') return;
    if (!kci_reply_subject_allowed(reply_subject, KCI_REPLY_ANSWER)) return;
    /* {"id":"<id>"}, without printf: this runs once per submit. */
    static const char head[] = "{\"id\":\"", tail[] = "\"}";
    char body[sizeof head - 1 + KC_UUID_TEXT_BYTES + sizeof tail];
    assert(strlen(id_text) == KC_UUID_TEXT_BYTES);
    memcpy(body, head, sizeof head - 1);
    memcpy(body + sizeof head - 1, id_text, KC_UUID_TEXT_BYTES);
    memcpy(body + sizeof head - 1 + KC_UUID_TEXT_BYTES, tail, sizeof tail);
    natsMsg *message = NULL;
    if (natsMsg_Create(&message, reply_subject, NULL, body, (int)sizeof body - 1) != NATS_OK)
        return;
    /* Only Kc-Id: the acknowledgement is on the hot path, and each header
     * costs nats.c allocations. */
    kci_persister_set_header(message, KCI_HEADER_ID, id_text);
    kci_persister_publish(persister, message);
}

/* The log's completer thread, after a run of acknowledgements and
 * dispatches. On a connection that buffers publishes (kcobrad's persister
 * connection: no send asap) they go out now, together in one write, instead
 * of one write each (send asap) or after the 1 ms that nats.c's flusher
 * thread waits. The flush also waits for the server's PONG, so the next run
 * gathers the completions that arrived meanwhile. */
void kci_persister_flush_published(void *closure)
{
    kci_persister *persister = closure;
    assert(persister->connection != NULL); /* set only for an online persister */
    if (natsConnection_Buffered(persister->connection) <= 0 ||
        natsConnection_Status(persister->connection) != NATS_CONN_STATUS_CONNECTED)
        return;
    natsStatus status = natsConnection_FlushTimeout(persister->connection, FLUSH_TIMEOUT_MS);
    if (status != NATS_OK) kci_debug("queue: cannot flush: %s", natsStatus_GetText(status));
}

static int code_for_failure(kc_err status)
{
    return status == KC_ERR_IO && (errno == ENOSPC || errno == EFBIG || errno == EDQUOT)
               ? KCI_PERSISTER_CODE_NO_SPACE
               : KCI_PERSISTER_CODE_STORAGE;
}

/* Durable: acknowledge, then dispatch (unless its type waits for a
 * service: waiting.c). */
static void request_stored(kci_persister *persister, natsMsg *message, const char *id_text,
                           bool dispatch)
{
    const char *type = natsMsg_GetSubject(message) + strlen(KCI_SUBMIT_PREFIX);
    assert(strlen(type) <= KC_TYPE_BYTES_MAX); /* submit_check */
    acknowledge(persister, natsMsg_GetReply(message), id_text);
    if (!dispatch) return;
    char subject[KCI_PERSISTER_SUBJECT_BYTES_MAX + 1];
    snprintf(subject, sizeof subject, "%s%s", KCI_PERSISTER_REQUEST_PREFIX, type);
    kci_persister_dispatch(persister, id_text, subject, natsMsg_GetData(message),
                           natsMsg_GetDataLength(message));
}

/* errno is the append's. */
static void request_failed(kci_persister *persister, natsMsg *message, const char *id_text,
                           kc_err status)
{
    assert(status != KC_OK);
    int code = code_for_failure(status);
    kci_persister_respond_error(
        persister, natsMsg_GetReply(message), id_text, code, NULL, "the request was not stored: %s",
        code == KCI_PERSISTER_CODE_NO_SPACE ? "no space left for the queue" : kc_strerror(status));
}

/* The log's completer thread: the request is durable (or failed). */
static void on_request_done(void *closure, kc_err status, kci_position position)
{
    kci_persister_context *context = closure;
    kci_persister *persister = context->persister;
    assert(context->kind == KCI_PERSISTER_CONTEXT_REQUEST && context->message != NULL);
    int saved_errno = errno;
    char id_text[KCI_PERSISTER_ID_TEXT_BYTES];
    kci_uuid_format(&context->id, id_text);
    natsMsg *message = context->message;
    const char *notify = context->notify;
    int64_t now_ms = kci_monotonic_ms();
    const char *type = natsMsg_GetSubject(message) + strlen(KCI_SUBMIT_PREFIX);
    bool dispatch = false;
    pthread_mutex_lock(&persister->lock);
    kci_index_entry *entry = kci_index_find(&persister->index, &context->id);
    assert(entry != NULL && entry->state == KCI_ENTRY_STORING);
    if (status == KC_OK)
        dispatch = kci_persister_entry_stored(
            persister, entry, position, notify, now_ms + persister->config.redelivery_timeout_ms,
            kci_persister_type_slot_locked(persister, type, strlen(type)));
    else
        kci_persister_entry_store_failed(persister, entry);
    pthread_mutex_unlock(&persister->lock);
    if (status == KC_OK) {
        request_stored(persister, message, id_text, dispatch);
    } else {
        errno = saved_errno;
        request_failed(persister, message, id_text, status);
    }
    kci_persister_context_give(persister, context);
}

/* The request's id: its Kc-Id if it has a valid one (a retried submit is
 * then recognised), else a new UUIDv7. false: a malformed Kc-Id. */
static bool submit_id(natsMsg *message, kci_uuid *id)
{
    const char *value = NULL;
    if (natsMsgHeader_Get(message, KCI_HEADER_ID, &value) != NATS_OK || value == NULL) {
        kci_uuid_v7(id);
        return true;
    }
    return kci_uuid_parse(value, strlen(value), id) && !kci_uuid_is_nil_or_max(id);
}

/* The id is known already: acknowledge again (idempotent submit). Called
 * with the lock held; releases it. */
static void answer_known(kci_persister *persister, natsMsg *message, const kci_index_entry *entry,
                         const char *id_text)
{
    assert(entry->state >= KCI_ENTRY_STORING && entry->state <= KCI_ENTRY_DEAD);
    persister->stats.duplicate_submits++;
    bool storing = entry->state == KCI_ENTRY_STORING;
    pthread_mutex_unlock(&persister->lock);
    if (storing)
        kci_persister_respond_error(persister, natsMsg_GetReply(message), id_text,
                                    KCI_PERSISTER_CODE_BUSY, NULL,
                                    "request %s is being stored right now; retry", id_text);
    else
        acknowledge(persister, natsMsg_GetReply(message), id_text);
    natsMsg_Destroy(message);
}

/* NULL when the submit is acceptable, with its id and its Kc-Notify (or
 * NULL), else the problem and the code to answer. */
static const char *submit_check(natsMsg *message, kci_uuid *id, const char **notify_out, int *code)
{
    const char *subject = natsMsg_GetSubject(message);
    const char *type = subject + strlen(KCI_SUBMIT_PREFIX);
    *code = KCI_PERSISTER_CODE_BAD_REQUEST;
    if (strlen(type) > KC_TYPE_BYTES_MAX || !kci_token_valid(type))
        return "the type after kc.submit. must be one subject token";
    if (!submit_id(message, id)) return "Kc-Id is not a UUID";
    const char *notify = NULL;
    if (natsMsgHeader_Get(message, KCI_HEADER_NOTIFY, &notify) != NATS_OK) notify = NULL;
    *notify_out = notify;
    /* The persister forwards the service's reply there with its own
     * identity: only to the client's inbox (reply_subject.h). */
    if (notify != NULL && !kci_reply_subject_allowed(notify, KCI_REPLY_NOTIFY))
        return "Kc-Notify must be a literal subject under _INBOX. (the client's own inbox)";
    *code = KCI_PERSISTER_CODE_TOO_LARGE;
    if (natsMsg_GetDataLength(message) > KCI_RECORD_PAYLOAD_BYTES_MAX) return "payload too large";
    *code = 0;
    return NULL;
}

static void build_request_record(kci_record *record, natsMsg *message, const kci_uuid *id,
                                 const char *notify, char *subject, size_t subject_size)
{
    const char *type = natsMsg_GetSubject(message) + strlen(KCI_SUBMIT_PREFIX);
    size_t prefix_length = strlen(KCI_PERSISTER_REQUEST_PREFIX), type_length = strlen(type);
    size_t subject_length = prefix_length + type_length;
    assert(subject_length < subject_size); /* submit_check */
    memcpy(subject, KCI_PERSISTER_REQUEST_PREFIX, prefix_length);
    memcpy(subject + prefix_length, type, type_length + 1);
    const char *reply = natsMsg_GetReply(message);
    const char *client = NULL;
    if (natsMsgHeader_Get(message, KCI_HEADER_NODE, &client) != NATS_OK || client == NULL)
        client = "";
    memset(record, 0, sizeof *record);
    record->kind = KCI_RECORD_REQUEST;
    record->id = *id;
    kci_persister_hlc_now(&record->ts_wall_ms, &record->ts_counter);
    record->attempt = 1;
    record->subject = subject;
    record->subject_length = (uint16_t)subject_length;
    record->reply = reply != NULL ? reply : "";
    record->reply_length = (uint16_t)strlen(record->reply);
    record->client = client;
    record->client_length =
        (uint16_t)(strlen(client) > KCI_RECORD_FIELD_BYTES_MAX ? KCI_RECORD_FIELD_BYTES_MAX
                                                               : strlen(client));
    record->payload = natsMsg_GetData(message);
    record->payload_length = (uint32_t)natsMsg_GetDataLength(message);
    record->notify = notify;                                        /* checked by submit_check */
    assert(record->payload_length <= KCI_RECORD_PAYLOAD_BYTES_MAX); /* submit_check */
}

/* A new entry for the id, STORING: true. false when the id is known or the
 * index is full: then it has answered, and taken the message and given the
 * context back. */
static bool submit_entry(kci_persister *persister, natsMsg *message, kci_persister_context *context,
                         const kci_uuid *id, const char *id_text)
{
    pthread_mutex_lock(&persister->lock);
    bool created = false;
    kci_index_entry *entry = kci_index_insert(&persister->index, id, &created);
    if (entry != NULL && !created) {
        kci_persister_context_give_locked(persister, context);
        answer_known(persister, message, entry, id_text); /* unlocks */
        return false;
    }
    if (entry != NULL) kci_persister_entry_storing(entry);
    pthread_mutex_unlock(&persister->lock);
    /* entry may move once the lock is released: only its absence is used. */
    if (entry == NULL) {
        kci_persister_context_give(persister, context);
        kci_persister_respond_error(persister, natsMsg_GetReply(message), id_text,
                                    KCI_PERSISTER_CODE_UNAVAILABLE, NULL,
                                    "the queue index is full");
        natsMsg_Destroy(message);
        return false;
    }
    return true;
}

void kci_persister_on_submit(natsConnection *connection, natsSubscription *subscription,
                             natsMsg *message, void *closure)
{
    kci_persister *persister = closure;
    if (!kci_persister_answerable(persister, message, "kc.submit")) return;
    kci_uuid id;
    int code = 0;
    const char *notify = NULL;
    const char *problem = submit_check(message, &id, &notify, &code);
    char id_text[KCI_PERSISTER_ID_TEXT_BYTES];
    if (problem != NULL) {
        kci_persister_respond_error(persister, natsMsg_GetReply(message), NULL, code, NULL, "%s",
                                    problem);
        natsMsg_Destroy(message);
        return;
    }
    kci_uuid_format(&id, id_text);
    kci_persister_context *context = kci_persister_context_take(persister);
    if (context == NULL) { /* stopping */
        kci_persister_respond_error(persister, natsMsg_GetReply(message), id_text,
                                    KCI_PERSISTER_CODE_UNAVAILABLE, NULL,
                                    "the persister is stopping");
        natsMsg_Destroy(message);
        return;
    }
    if (!submit_entry(persister, message, context, &id, id_text)) return;
    *context = (kci_persister_context){.persister = persister,
                                       .message = message,
                                       .notify = notify,
                                       .id = id,
                                       .kind = KCI_PERSISTER_CONTEXT_REQUEST};
    char subject[KCI_PERSISTER_SUBJECT_BYTES_MAX + 1];
    kci_record record;
    build_request_record(&record, message, &id, notify, subject, sizeof subject);
    /* submit_check and answerable bound every field: the log takes it. */
    assert(kci_record_size(&record) != 0);
    kc_err err = kci_queue_log_append(persister->log, &record, on_request_done, context);
    if (err != KC_OK) on_request_done(context, err, 0); /* removes, answers, frees */
}
