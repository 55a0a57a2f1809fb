/* recorder.c - observing the traffic into the EventNet store (recorder.h).
 *
 * Each observed message is read with kci_headers_read (a malformed Kc
 * header: the message is skipped and counted, never half-recorded); one
 * without Kc-Id or Kc-Ts is not an event. Its causes are its Kc-Cause ids
 * and its Kc-Reply-To (an old client's reply names its request only
 * there). The kind is told from the subject and the headers. The first
 * record of an id stands: the persister's dispatch carries its submit's
 * Kc-Id, so submit and dispatch are one event (docs/eventnet.md). */
#include "eventnet/recorder.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "eventnet/graph.h"
#include "eventnet/store.h"
#include "service/answer.h"
#include "service/headers.h"
#include "service/last_error.h"
#include "service/subscriptions.h"

enum { STOP_MARGIN_MS = 1000, WALK_BODY_BYTES_MAX = 4096 };

struct kci_eventnet_recorder {
    natsConnection *connection;
    kci_eventnet_store *store;
    kci_subscriptions subscriptions;
    char node[KC_NODE_BYTES_MAX + 1];
};

static bool prefixed(const char *subject, const char *prefix)
{
    return strncmp(subject, prefix, strlen(prefix)) == 0;
}

static const char *event_kind(const char *subject, const kci_kc_headers *headers)
{
    if (headers->error_code != 0) return "error";
    if (headers->reply_to[0] != '\0') return "reply";
    if (prefixed(subject, "kc.req.")) return "request";
    if (prefixed(subject, "kc.submit.")) return "submit";
    if (strcmp(subject, "kc.ledger.payment") == 0) return "payment";
    if (prefixed(subject, "kc.ledger.")) return "ledger";
    if (prefixed(subject, "kc.arbiter.")) return "arbiter";
    if (prefixed(subject, "kc.problem.")) return "problem";
    if (prefixed(subject, "kc.suggest")) return "suggest";
    return "message";
}

/* The event of a message, or false when it is none. */
static bool event_from(const char *subject, const kci_kc_headers *headers, kci_event *event)
{
    if (headers->id[0] == '\0' || headers->ts[0] == '\0') return false;
    if (strcmp(headers->type, KCI_EVENTNET_TYPE) == 0 || prefixed(subject, "kc.eventnet."))
        return false;
    memset(event, 0, sizeof *event);
    bool parsed = kci_uuid_parse(headers->id, strlen(headers->id), &event->id);
    assert(parsed); /* kci_headers_read checked it */
    (void)parsed;
    event->ts = headers->timestamp;
    kci_text_copy(event->kind, sizeof event->kind, event_kind(subject, headers));
    kci_text_copy(event->subject, sizeof event->subject, subject);
    kci_text_copy(event->node, sizeof event->node, headers->node);
    char cause[KCI_CAUSE_TEXT_BYTES_MAX];
    kci_text_copy(cause, sizeof cause, headers->cause);
    if (headers->reply_to[0] != '\0') (void)kci_cause_append(cause, headers->reply_to);
    const char *problem = NULL;
    if (cause[0] != '\0' &&
        !kci_cause_parse(cause, strlen(cause), event->causes, &event->cause_count, &problem))
        event->cause_count = 0; /* kci_headers_read checked it: cannot happen */
    return true;
}

static void on_traffic(natsConnection *connection, natsSubscription *subscription, natsMsg *message,
                       void *closure)
{
    (void)connection;
    (void)subscription;
    kci_eventnet_recorder *recorder = closure;
    kci_kc_headers headers;
    kci_event event;
    if (kci_headers_read(message, false, &headers) != KC_OK) {
        kci_debug("eventnet: skipped a message on %s: %s", natsMsg_GetSubject(message),
                  kc_last_error());
    } else if (event_from(natsMsg_GetSubject(message), &headers, &event)) {
        bool added = false;
        if (kci_eventnet_store_add(recorder->store, &event, &added) != KC_OK)
            kci_warn("eventnet: cannot record %s: %s", headers.id, kc_last_error());
    }
    natsMsg_Destroy(message);
}

/* {"id": ..., "direction": "causes"|"effects", "depth": N} -> the walk. */
static void on_walk(natsConnection *connection, natsSubscription *subscription, natsMsg *message,
                    void *closure)
{
    (void)subscription;
    kci_eventnet_recorder *recorder = closure;
    json_error_t json_error;
    json_t *request = json_loadb(natsMsg_GetData(message), (size_t)natsMsg_GetDataLength(message),
                                 0, &json_error);
    const char *id_text = json_string_value(json_object_get(request, "id"));
    const char *direction = json_string_value(json_object_get(request, "direction"));
    json_t *depth = json_object_get(request, "depth");
    kci_uuid id;
    kci_answer answer = {.node = recorder->node, .type = KCI_EVENTNET_TYPE};
    json_t *walk = NULL;
    char *text = NULL;
    if (id_text == NULL || !kci_uuid_parse(id_text, strlen(id_text), &id) || direction == NULL ||
        (strcmp(direction, "causes") != 0 && strcmp(direction, "effects") != 0) ||
        !json_is_integer(depth)) {
        answer.code = 400;
        answer.message = "expected {\"id\": UUID, \"direction\": \"causes\"|\"effects\", "
                         "\"depth\": N}";
    } else if (kci_eventnet_walk(recorder->store, &id, strcmp(direction, "effects") == 0,
                                 (int)json_integer_value(depth), &walk) != KC_OK) {
        answer.code = 400;
        answer.message = kc_last_error();
    } else if ((text = json_dumps(walk, JSON_COMPACT)) == NULL) {
        answer.code = 500;
        answer.message = "out of memory";
    } else {
        answer.payload = text;
        answer.payload_length = strlen(text);
    }
    (void)kci_answer_send(connection, message, &answer, "eventnet");
    free(text);
    json_decref(walk);
    json_decref(request);
    natsMsg_Destroy(message);
}

static kc_err subscribe(kci_eventnet_recorder *recorder, const char *subject, const char *queue,
                        natsMsgHandler handler)
{
    const kci_subscription_spec spec = {.subject = subject,
                                        .queue = queue,
                                        .handler = handler,
                                        .pending_messages_max = KCI_PENDING_MESSAGES_DEFAULT,
                                        .pending_bytes_max = KCI_PENDING_BYTES_DEFAULT};
    return kci_subscriptions_add(&recorder->subscriptions, recorder->connection, &spec, recorder);
}

kc_err kci_eventnet_recorder_start(kci_eventnet_recorder **out, natsConnection *connection,
                                   const kci_eventnet_recorder_config *config, char *error,
                                   size_t error_size)
{
    assert(out != NULL && connection != NULL && config != NULL);
    *out = NULL;
    kci_eventnet_recorder *recorder = calloc(1, sizeof *recorder);
    if (recorder == NULL) {
        snprintf(error, error_size, "eventnet: out of memory");
        return KC_ERR_NOMEM;
    }
    recorder->connection = connection;
    kci_text_copy(recorder->node, sizeof recorder->node, config->node);
    kci_subscriptions_init(&recorder->subscriptions);
    kc_err err = kci_eventnet_store_open(&recorder->store, config->directory, false,
                                         (uint64_t)config->events_max);
    if (err == KC_OK) err = subscribe(recorder, "kc.>", NULL, on_traffic);
    if (err == KC_OK) err = subscribe(recorder, "_INBOX.>", NULL, on_traffic);
    if (err == KC_OK) err = subscribe(recorder, "_KCQ.>", NULL, on_traffic);
    if (err == KC_OK)
        err = subscribe(recorder, KCI_EVENTNET_WALK_SUBJECT, KCI_EVENTNET_WALK_QUEUE, on_walk);
    if (err == KC_OK) err = kci_subscriptions_flush(connection, KCI_EVENTNET_SUBSCRIBE_TIMEOUT_MS);
    if (err != KC_OK) {
        snprintf(error, error_size, "eventnet: %s", kc_last_error());
        kci_eventnet_recorder_stop(recorder, 0);
        return err;
    }
    kci_info("eventnet: recording kc.>, _INBOX.> and _KCQ.> into %s", config->directory);
    *out = recorder;
    return KC_OK;
}

void kci_eventnet_recorder_stop(kci_eventnet_recorder *recorder, int64_t drain_ms)
{
    if (recorder == NULL) return;
    if (!kci_subscriptions_drain(&recorder->subscriptions, drain_ms, STOP_MARGIN_MS)) {
        kci_error("eventnet: a handler did not finish; leaking the recorder");
        return;
    }
    kci_subscriptions_destroy(&recorder->subscriptions);
    kci_eventnet_store_close(recorder->store);
    free(recorder);
}
