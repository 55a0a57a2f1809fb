/* submit.c - durable submits from libkingcobra: kc_client_submit_async and
 * kc_client_submit (docs/service.md, "Durable submits"; the persister's side
 * is docs/queue.md).
 *
 * A submit is a message on kc.submit.<type> stamped as `kcobra submit`
 * stamps it (Kc-Id a new UUIDv7, Kc-Ts, Kc-Type, Kc-Node; no Kc-Deadline:
 * the timeout bounds the wait for the acknowledgement, not the request's
 * life). It rides request.c's asynchronous machinery (one inbox
 * subscription, a slot per message, one timeout thread), so a client can
 * keep many submits in flight on one connection: that is what lets the
 * persister group many appends behind one fdatasync. request.c also bounds
 * them by the client's window (submits_in_flight_max).
 *
 * The persister's acknowledgement is not a kc_reply (it carries only
 * Kc-Id, to stay cheap on its hot path), so it is read here: a Kc-Error is
 * a refusal (KC_ERR_SERVICE with the code), a no-responders status is
 * KC_ERR_NO_RESPONDERS, anything else with our Kc-Id (or none) is the
 * acknowledgement. */
#include <pthread.h>
#include <string.h>
#include <strings.h>

#include "service/call.h"
#include "service/client_internal.h"
#include "service/last_error.h"

/* The persister's submit subjects (src/queue/persister.h: KCI_SUBMIT_PREFIX). */
static const char SUBMIT_PREFIX[] = "kc.submit.";

/* What the persister's answer means for the submit id. */
static kc_err answer_read(natsMsg *message, const char *id, kci_refusal *refusal)
{
    if (natsMsg_IsNoResponders(message))
        return kci_fail(KC_ERR_NO_RESPONDERS, "no persister serves kc.submit.>");
    if (kci_refusal_read(message, refusal))
        return kci_fail(KC_ERR_SERVICE, "the persister refused %s: %d %s", id, refusal->code,
                        refusal->message);
    const char *acknowledged = NULL;
    if (natsMsgHeader_Get(message, KCI_HEADER_ID, &acknowledged) == NATS_OK &&
        acknowledged != NULL && strcasecmp(acknowledged, id) != 0)
        return kci_fail(KC_ERR_BAD_HEADER, "%s: the acknowledgement of %s names %s", KCI_HEADER_ID,
                        id, acknowledged);
    return KC_OK;
}

void kci_submit_complete(kc_client *client, const kci_async_target *target, const char *id,
                         kc_err status, natsMsg *message)
{
    kci_refusal refusal = {0};
    if (message != NULL) status = answer_read(message, id, &refusal);
    natsMsg_Destroy(message);
    const char *text = status == KC_ERR_SERVICE ? refusal.message
                       : status == KC_OK        ? ""
                                                : kc_last_error();
    target->submit_callback(client, status, id, refusal.code, text, target->closure);
}

kc_err kc_client_submit_async(kc_client *client, const char *type, const void *payload,
                              size_t payload_len, int64_t timeout_ms, kc_submit_callback callback,
                              void *closure, char id_out[KC_UUID_TEXT_BYTES + 1])
{
    if (client == NULL || callback == NULL)
        return kci_fail(KC_ERR_INVALID_ARGUMENT, "client or callback is NULL");
    if (type == NULL || !kci_token_valid(type))
        return kci_fail(KC_ERR_INVALID_ARGUMENT, "submit type \"%s\" is not one subject token",
                        type != NULL ? type : "(null)");
    char subject[KCI_SUBJECT_BYTES_MAX];
    _Static_assert(sizeof(SUBMIT_PREFIX) + KC_TYPE_BYTES_MAX <= KCI_SUBJECT_BYTES_MAX,
                   "subject bound");
    memcpy(subject, SUBMIT_PREFIX, sizeof(SUBMIT_PREFIX) - 1);
    memcpy(subject + sizeof(SUBMIT_PREFIX) - 1, type, strlen(type) + 1);
    kci_async_target target = {.submit_callback = callback, .closure = closure};
    return kci_async_send(client, subject, type, payload, payload_len, timeout_ms, &target, id_out);
}

/* ---- synchronous, on top ------------------------------------------------- */

typedef struct waiter {
    pthread_mutex_t lock;
    pthread_cond_t done_changed;
    bool done;
    kc_err status;
    int error_code;
    char message[KC_ERROR_MESSAGE_BYTES_MAX];
} waiter;

static void on_submitted(kc_client *client, kc_err status, const char *id, int error_code,
                         const char *error_message, void *closure)
{
    waiter *w = closure;
    pthread_mutex_lock(&w->lock);
    w->status = status;
    w->error_code = error_code;
    kci_text_copy(w->message, sizeof w->message, error_message);
    w->done = true;
    pthread_cond_signal(&w->done_changed);
    pthread_mutex_unlock(&w->lock);
}

kc_err kc_client_submit(kc_client *client, const char *type, const void *payload,
                        size_t payload_len, int64_t timeout_ms, char id_out[KC_UUID_TEXT_BYTES + 1],
                        int *error_code)
{
    if (error_code != NULL) *error_code = 0;
    waiter w = {.done = false};
    pthread_mutex_init(&w.lock, NULL);
    pthread_cond_init(&w.done_changed, NULL);
    char id[KC_UUID_TEXT_BYTES + 1] = "";
    kc_err err = kc_client_submit_async(client, type, payload, payload_len, timeout_ms,
                                        on_submitted, &w, id);
    if (err == KC_OK) {
        /* The callback always comes: the timeout thread bounds the wait. */
        pthread_mutex_lock(&w.lock);
        while (!w.done)
            pthread_cond_wait(&w.done_changed, &w.lock);
        pthread_mutex_unlock(&w.lock);
        err = w.status;
        if (err != KC_OK) kci_set_error(err, "%s", w.message);
        if (error_code != NULL) *error_code = w.error_code;
    }
    if (id_out != NULL) memcpy(id_out, id, sizeof id);
    pthread_cond_destroy(&w.done_changed);
    pthread_mutex_destroy(&w.lock);
    return err;
}
