/* replies.c - the services' replies, and kc.reply.get.
 *
 * A dispatched request's reply comes back to <inbox>.<id>. The first one
 * for a pending (or dead) request is appended to the log; once durable it
 * is the request's answer, and it is forwarded to the subject in the
 * submit's Kc-Notify header if there was one. Later replies are dropped
 * (services are idempotent by Kc-Id, so they say the same). "No responders"
 * and a service's 409 are not answers: the request stays pending (after
 * "no responders" it waits for a service: waiting.c).
 *
 * kc.reply.get answers with the recorded reply of a request, read back from
 * the log, or with an error that says the request's state (unknown, pending,
 * dead) in Kc-Queue-State. */
#include <assert.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "persister_internal.h"
#include "service/answer.h"
#include "service/reply_subject.h"

/* The reply of the request in context, to the Kc-Notify subject its submit
 * named (checked then by submit_check). */
static void forward_notify(kci_persister *persister, const kci_persister_context *context,
                           const char *notify)
{
    /* Checked by submit_check when the submit came in, or by rebuild.c when
     * read back from a stream (the local log keeps it in memory only). */
    assert(kci_reply_subject_allowed(notify, KCI_REPLY_NOTIFY));
    natsMsg *reply = context->message;
    char id_text[KCI_PERSISTER_ID_TEXT_BYTES];
    kci_uuid_format(&context->id, id_text);
    const char *error = NULL;
    if (natsMsgHeader_Get(reply, KCI_HEADER_ERROR, &error) != NATS_OK) error = NULL;
    kci_answer answer = {
        .node = persister->node,
        .reply_to = id_text,
        .payload = natsMsg_GetData(reply),
        .payload_length = (size_t)natsMsg_GetDataLength(reply),
        .id = id_text,
        .headers = {{KCI_HEADER_QUEUE_STATE, "replied"}, {KCI_HEADER_ERROR, error}}};
    kci_answer_send_to(persister->connection, notify, &answer, "queue");
}

static void on_reply_done(void *closure, kc_err status, kci_position position)
{
    kci_persister_context *context = closure;
    kci_persister *persister = context->persister;
    assert(context->kind == KCI_PERSISTER_CONTEXT_REPLY && context->message != NULL);
    char *notify = NULL;
    pthread_mutex_lock(&persister->lock);
    kci_index_entry *entry = kci_index_find(&persister->index, &context->id);
    if (entry != NULL && entry->state == KCI_ENTRY_REPLYING) {
        if (status == KC_OK)
            notify = kci_persister_entry_replied(persister, entry, position);
        else
            kci_persister_entry_reply_failed(entry); /* dispatched again later */
    }
    pthread_mutex_unlock(&persister->lock);
    if (status != KC_OK)
        kci_warn_limited("queue: a reply could not be stored (%s); its request will be dispatched "
                         "again",
                         kc_strerror(status));
    if (notify != NULL) {
        forward_notify(persister, context, notify);
        free(notify);
    }
    kci_persister_context_give(persister, context);
}

void kci_persister_build_reply_record(kci_record *record, natsMsg *message, const kci_uuid *id)
{
    const char *error = NULL, *node = NULL;
    if (natsMsgHeader_Get(message, KCI_HEADER_ERROR, &error) != NATS_OK || error == NULL)
        error = "";
    if (natsMsgHeader_Get(message, KCI_HEADER_NODE, &node) != NATS_OK || node == NULL) node = "";
    memset(record, 0, sizeof *record);
    record->kind = KCI_RECORD_REPLY;
    record->id = *id;
    kci_persister_hlc_now(&record->ts_wall_ms, &record->ts_counter);
    record->subject = "";
    record->reply = error;
    size_t error_length = strlen(error), node_length = strlen(node);
    record->reply_length =
        (uint16_t)(error_length > KCI_RECORD_FIELD_BYTES_MAX ? KCI_RECORD_FIELD_BYTES_MAX
                                                             : error_length);
    record->client = node;
    record->client_length =
        (uint16_t)(node_length > KCI_RECORD_FIELD_BYTES_MAX ? KCI_RECORD_FIELD_BYTES_MAX
                                                            : node_length);
    record->payload = natsMsg_GetData(message);
    record->payload_length = (uint32_t)natsMsg_GetDataLength(message);
    assert(record->reply_length <= KCI_RECORD_FIELD_BYTES_MAX &&
           record->client_length <= KCI_RECORD_FIELD_BYTES_MAX);
}

/* The request id a message on <inbox>.<id> is for; false: none. */
static bool reply_id(const kci_persister *persister, natsMsg *message, kci_uuid *id)
{
    const char *subject = natsMsg_GetSubject(message);
    size_t prefix_length = strlen(persister->inbox) + 1;
    return strlen(subject) == prefix_length + KC_UUID_TEXT_BYTES &&
           kci_uuid_parse(subject + prefix_length, KC_UUID_TEXT_BYTES, id);
}

/* false: not an answer to record (its subject names no id, it is too
 * large, "no responders", or a service's 409). */
static bool reply_is_answer(const kci_persister *persister, natsMsg *message, kci_uuid *id)
{
    if (!reply_id(persister, message, id) ||
        natsMsg_GetDataLength(message) > KCI_RECORD_PAYLOAD_BYTES_MAX)
        return false;
    /* "No responders" (status 503 from the server, no service subscribed,
     * e.g. while services reconnect after a restart) is not an answer: the
     * request waits for a service (waiting.c). */
    if (natsMsg_IsNoResponders(message)) return false;
    /* 409 from a service: the same Kc-Id is still being handled there (an
     * earlier dispatch). Not an answer: the earlier one's reply will come,
     * or the request is dispatched again. */
    const char *error = NULL;
    if (natsMsgHeader_Get(message, KCI_HEADER_ERROR, &error) == NATS_OK && error != NULL &&
        strncmp(error, "409", 3) == 0 && (error[3] == ' ' || error[3] == '\0'))
        return false;
    return true;
}

void kci_persister_on_reply(natsConnection *connection, natsSubscription *subscription,
                            natsMsg *message, void *closure)
{
    kci_persister *persister = closure;
    kci_uuid id;
    if (natsMsg_IsNoResponders(message) && reply_id(persister, message, &id))
        kci_persister_on_no_responders(persister, &id);
    if (!reply_is_answer(persister, message, &id)) {
        natsMsg_Destroy(message);
        return;
    }
    pthread_mutex_lock(&persister->lock);
    kci_index_entry *entry = kci_index_find(&persister->index, &id);
    bool take = kci_persister_entry_replying(persister, entry);
    pthread_mutex_unlock(&persister->lock);
    if (!take) {
        natsMsg_Destroy(message);
        return;
    }
    kci_persister_context *context = kci_persister_context_take(persister);
    if (context == NULL) { /* stopping: it is dispatched again after the restart */
        pthread_mutex_lock(&persister->lock);
        entry = kci_index_find(&persister->index, &id);
        if (entry != NULL && entry->state == KCI_ENTRY_REPLYING)
            kci_persister_entry_reply_failed(entry);
        pthread_mutex_unlock(&persister->lock);
        natsMsg_Destroy(message);
        return;
    }
    *context = (kci_persister_context){
        .persister = persister, .message = message, .id = id, .kind = KCI_PERSISTER_CONTEXT_REPLY};
    kci_record record;
    kci_persister_build_reply_record(&record, message, &id);
    assert(kci_record_size(&record) != 0); /* reply_is_answer bounds the payload */
    kc_err err = kci_queue_log_append(persister->log, &record, on_reply_done, context);
    if (err != KC_OK) on_reply_done(context, err, 0);
}

/* ---- kc.reply.get ----------------------------------------------------------- */

/* The id in a kc.reply.get payload: the bare id, or {"id":"..."}. */
static bool get_id(natsMsg *message, kci_uuid *id)
{
    const char *data = natsMsg_GetData(message);
    int length = natsMsg_GetDataLength(message);
    while (length > 0 && (data[0] == ' ' || data[0] == '\n' || data[0] == '\t'))
        data++, length--;
    while (length > 0 && (data[length - 1] == ' ' || data[length - 1] == '\n' ||
                          data[length - 1] == '\r' || data[length - 1] == '\t'))
        length--;
    if (length == KC_UUID_TEXT_BYTES) return kci_uuid_parse(data, (size_t)length, id);
    if (length < 2 || data[0] != '{') return false;
    json_error_t json_error;
    json_t *root = json_loadb(data, (size_t)length, 0, &json_error);
    const char *text = json_string_value(json_object_get(root, "id"));
    bool parsed = text != NULL && kci_uuid_parse(text, strlen(text), id);
    json_decref(root);
    return parsed;
}

static void send_recorded_reply(kci_persister *persister, const char *to, const char *id_text,
                                kci_position position)
{
    kci_record record;
    kc_err err = kci_queue_log_read(persister->log, position, persister->get_buffer, &record);
    if (err != KC_OK || record.kind != KCI_RECORD_REPLY) {
        kci_persister_respond_error(persister, to, id_text, KCI_PERSISTER_CODE_STORAGE, NULL,
                                    "the reply of %s cannot be read from the log: %s", id_text,
                                    kc_strerror(err != KC_OK ? err : KC_ERR_CORRUPT));
        return;
    }
    /* What the log hands out passed its checks (record.h). */
    assert(record.client_length <= KCI_RECORD_FIELD_BYTES_MAX &&
           record.reply_length <= KCI_RECORD_FIELD_BYTES_MAX);
    char node[KCI_RECORD_FIELD_BYTES_MAX + 1], error[KCI_RECORD_FIELD_BYTES_MAX + 1];
    snprintf(node, sizeof node, "%.*s", (int)record.client_length, record.client);
    snprintf(error, sizeof error, "%.*s", (int)record.reply_length, record.reply);
    /* The service's Kc-Error goes back as it was recorded, byte for byte. */
    kci_answer answer = {.node = persister->node,
                         .reply_to = id_text,
                         .payload = record.payload,
                         .payload_length = record.payload_length,
                         .id = id_text,
                         .headers = {{KCI_HEADER_QUEUE_STATE, "replied"},
                                     {"Kc-Replied-By", node},
                                     {KCI_HEADER_ERROR, error}}};
    kci_answer_send_to(persister->connection, to, &answer, "queue");
}

/* The answer to kc.reply.get for a request in state (0: unknown). */
static void answer_state(kci_persister *persister, const char *to, const char *id_text, int state,
                         kci_position reply, int attempts, bool waiting)
{
    assert(state >= 0 && state <= KCI_ENTRY_DEAD);
    if (state == KCI_ENTRY_REPLIED)
        send_recorded_reply(persister, to, id_text, reply);
    else if (state == 0)
        kci_persister_respond_error(persister, to, id_text, KCI_PERSISTER_CODE_NOT_FOUND, "unknown",
                                    "no request %s in the queue", id_text);
    else if (state == KCI_ENTRY_DEAD)
        kci_persister_respond_error(persister, to, id_text, KCI_PERSISTER_CODE_DEAD, "dead",
                                    "request %s is dead: no reply after %d attempts", id_text,
                                    attempts);
    else if (waiting)
        kci_persister_respond_error(persister, to, id_text, KCI_PERSISTER_CODE_NOT_YET, "pending",
                                    "request %s has no reply yet: no service of its type is "
                                    "subscribed, it waits for one (%d attempts so far)",
                                    id_text, attempts);
    else
        kci_persister_respond_error(persister, to, id_text, KCI_PERSISTER_CODE_NOT_YET, "pending",
                                    "request %s has no reply yet (dispatched %d times so far)",
                                    id_text, attempts);
}

void kci_persister_on_reply_get(natsConnection *connection, natsSubscription *subscription,
                                natsMsg *message, void *closure)
{
    kci_persister *persister = closure;
    if (!kci_persister_answerable(persister, message, "kc.reply.get")) return;
    const char *to = natsMsg_GetReply(message);
    kci_uuid id;
    char id_text[KCI_PERSISTER_ID_TEXT_BYTES];
    if (!get_id(message, &id)) {
        kci_persister_respond_error(persister, to, NULL, KCI_PERSISTER_CODE_BAD_REQUEST, NULL,
                                    "expected a request id (a UUID) or {\"id\":\"...\"}");
        natsMsg_Destroy(message);
        return;
    }
    kci_uuid_format(&id, id_text);
    pthread_mutex_lock(&persister->lock);
    kci_index_entry *entry = kci_index_find(&persister->index, &id);
    int state = entry != NULL ? entry->state : 0;
    kci_position reply = entry != NULL ? entry->reply : 0;
    int attempts = entry != NULL ? entry->attempts : 0;
    bool waiting = entry != NULL && entry->pending_slot != KCI_INDEX_NO_SLOT &&
                   persister->pending[entry->pending_slot].due_ms == KCI_PERSISTER_WAITING;
    pthread_mutex_unlock(&persister->lock);
    /* A dead request had attempts_max attempts that reached a service. */
    assert(state != KCI_ENTRY_DEAD || attempts >= 1);
    answer_state(persister, to, id_text, state, reply, attempts, waiting);
    natsMsg_Destroy(message);
}
