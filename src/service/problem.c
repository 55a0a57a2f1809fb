/* problem.c - problem reports (kc.problem.<node>) and suggestions
 * (kc.suggest), the two ways a client speaks about the cloud rather than
 * to a service.
 *
 * A problem report is published, not requested: the arbiter listens on
 * kc.problem.> and nobody answers. Its payload is a JSON object
 *   {"node": ..., "reason": "wrong_answer", "request_id": ... or null,
 *    "text": ..., "reporter": <this client's node>}
 * and, from a payer charged without service, "transfer": the ledger hold
 * or transfer that paid request_id (the arbiters check it with the ledger).
 * A suggestion is a request on kc.suggest with {"text": ..., "node": ...};
 * the suggestion keeper (a kcobrad component) stores it and answers
 * {"id": ..., "stored": true}. No keeper is KC_ERR_NO_RESPONDERS; a reply
 * that does not say stored is KC_ERR_SERVICE.
 *
 * Limits: a problem text is at most 16 KiB, a suggestion 64 KiB (what the
 * keeper stores), of valid UTF-8 (jansson refuses anything else, which
 * becomes KC_ERR_INVALID_ARGUMENT); longer is KC_ERR_TOO_LARGE. Both are
 * stamped with the KingCobra headers; a report's Kc-Type is "problem", a
 * suggestion's "suggest". */
#include <assert.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "service/client_internal.h"
#include "service/last_error.h"

enum {
    PROBLEM_TEXT_BYTES_MAX = 16 * 1024,
    SUGGESTION_TEXT_BYTES_MAX = 64 * 1024, /* what the keeper stores (src/keeper) */
};

static const char *const reason_names[] = {
    [KC_PROBLEM_WRONG_ANSWER] = "wrong_answer", [KC_PROBLEM_SLOW] = "slow",
    [KC_PROBLEM_NO_ANSWER] = "no_answer",       [KC_PROBLEM_ERROR_REPLY] = "error_reply",
    [KC_PROBLEM_OVERCHARGED] = "overcharged",   [KC_PROBLEM_OTHER] = "other",
};

enum {
    REASON_COUNT = sizeof(reason_names) / sizeof(reason_names[0]),
};

const char *kc_problem_reason_name(kc_problem_reason reason)
{
    if ((int)reason <= 0 || (int)reason >= REASON_COUNT) return "unknown";
    return reason_names[reason];
}

kc_problem_reason kc_problem_reason_from_name(const char *name)
{
    if (name == NULL) return 0;
    for (int reason = 1; reason < REASON_COUNT; reason++)
        if (strcmp(name, reason_names[reason]) == 0) return (kc_problem_reason)reason;
    return 0;
}

static kc_err check_text(const char *what, const char *text, size_t bytes_max)
{
    size_t length = strnlen(text, bytes_max + 1);
    if (length > bytes_max)
        return kci_fail(KC_ERR_TOO_LARGE, "%s: longer than %zu bytes", what, bytes_max);
    return KC_OK;
}

/* Serialises object (which it consumes) compactly into *out (free()). */
static kc_err json_take(char **out, json_t *object, const char *what)
{
    *out = NULL;
    if (object == NULL)
        return kci_fail(KC_ERR_INVALID_ARGUMENT, "%s: a text is not valid UTF-8", what);
    *out = json_dumps(object, JSON_COMPACT);
    json_decref(object);
    return *out != NULL ? KC_OK : kci_fail(KC_ERR_NOMEM, "%s", what);
}

static kc_err problem_payload(char **out, kc_client *client, const char *node,
                              kc_problem_reason reason, const char *request_id, const char *payment,
                              const char *text)
{
    /* "s?": a NULL request_id becomes null. json_pack fails on bad UTF-8. */
    json_t *object = json_pack("{s:s, s:s, s:s?, s:s, s:s}", "node", node, "reason",
                               kc_problem_reason_name(reason), "request_id", request_id, "text",
                               text, "reporter", client->node);
    if (object != NULL && payment != NULL)
        json_object_set_new(object, "transfer", json_string(payment));
    return json_take(out, object, "problem report");
}

static kc_err check_problem(const kc_client *client, const char *node, kc_problem_reason reason,
                            const char *request_id)
{
    if (client == NULL) return kci_fail(KC_ERR_INVALID_ARGUMENT, "client is NULL");
    if (node == NULL || strlen(node) > KC_NODE_BYTES_MAX || !kci_token_valid(node))
        return kci_fail(KC_ERR_INVALID_ARGUMENT, "node \"%s\" is not one subject token",
                        node != NULL ? node : "(null)");
    if ((int)reason <= 0 || (int)reason >= REASON_COUNT)
        return kci_fail(KC_ERR_INVALID_ARGUMENT, "problem reason %d is unknown", (int)reason);
    kci_uuid uuid;
    if (request_id != NULL && !kci_uuid_parse(request_id, strlen(request_id), &uuid))
        return kci_fail(KC_ERR_INVALID_ARGUMENT, "request_id \"%s\" is not a UUID", request_id);
    return KC_OK;
}

/* cause (NULL: none) becomes Kc-Cause: a problem report names the request
 * it is about (docs/eventnet.md). */
static kc_err publish_stamped(kc_client *client, const char *subject, const char *type,
                              const char *payload, const char *cause)
{
    assert(payload != NULL);
    natsMsg *message = NULL;
    natsStatus status = natsMsg_Create(&message, subject, NULL, payload, (int)strlen(payload));
    if (status != NATS_OK) return kci_nats_fail(status, subject);
    kci_kc_headers headers = {0};
    snprintf(headers.type, sizeof(headers.type), "%s", type);
    if (cause != NULL) (void)kci_cause_append(headers.cause, cause); /* Nil/Max: no cause */
    kc_err err = kci_client_stamp(client, message, &headers);
    if (err == KC_OK) {
        status = natsConnection_PublishMsg(client->connection, message);
        if (status != NATS_OK) err = kci_nats_fail(status, subject);
    }
    natsMsg_Destroy(message);
    return err;
}

static kc_err report(kc_client *client, const char *node, kc_problem_reason reason,
                     const char *request_id, const char *payment, const char *text)
{
    if (text == NULL) text = "";
    kc_err err = check_problem(client, node, reason, request_id);
    if (err == KC_OK) err = check_text("problem text", text, PROBLEM_TEXT_BYTES_MAX);
    if (err != KC_OK) return err;
    char *payload = NULL;
    err = problem_payload(&payload, client, node, reason, request_id, payment, text);
    if (err != KC_OK) return err;
    char subject[KCI_SUBJECT_BYTES_MAX];
    snprintf(subject, sizeof(subject), "kc.problem.%s", node);
    err = publish_stamped(client, subject, "problem", payload, request_id);
    free(payload);
    return err;
}

kc_err kc_client_report_problem(kc_client *client, const char *node, kc_problem_reason reason,
                                const char *request_id, const char *text)
{
    return report(client, node, reason, request_id, NULL, text);
}

kc_err kc_client_report_paid_problem(kc_client *client, const char *node, kc_problem_reason reason,
                                     const char *request_id, const char *payment, const char *text)
{
    kci_uuid uuid;
    if (request_id == NULL || payment == NULL || !kci_uuid_parse(payment, strlen(payment), &uuid))
        return kci_fail(KC_ERR_INVALID_ARGUMENT,
                        "a payment report names the request and its payment (a hold or "
                        "transfer id)");
    return report(client, node, reason, request_id, payment, text);
}

/* ---- suggestions -------------------------------------------------------- */

/* The keeper's answer: headers (optional, observed) and {"stored": true}. */
/* id_out (may be NULL) receives the keeper's id for the stored suggestion. */
static kc_err read_keeper_reply(natsMsg *reply, char id_out[KC_UUID_TEXT_BYTES + 1])
{
    kci_kc_headers headers = {0};
    kc_err err = kci_headers_read(reply, false, &headers);
    if (err == KC_OK) err = kci_client_observe(&headers);
    if (err != KC_OK) return err;
    if (headers.error_code != 0)
        return kci_fail(KC_ERR_SERVICE, "the suggestion keeper answered %d %s", headers.error_code,
                        headers.error_message);
    json_error_t error;
    json_t *object =
        json_loadb(natsMsg_GetData(reply), (size_t)natsMsg_GetDataLength(reply), 0, &error);
    bool stored = object != NULL && json_is_true(json_object_get(object, "stored"));
    const char *id = json_string_value(json_object_get(object, "id"));
    if (stored && id_out != NULL) snprintf(id_out, KC_UUID_TEXT_BYTES + 1, "%s", id ? id : "");
    json_decref(object);
    if (!stored)
        return kci_fail(KC_ERR_SERVICE, "the suggestion keeper did not store it: %.200s",
                        natsMsg_GetData(reply) != NULL ? natsMsg_GetData(reply) : "");
    return KC_OK;
}

static kc_err suggest_request(natsMsg **reply, kc_client *client, const char *payload,
                              int64_t timeout_ms)
{
    assert(payload != NULL);
    natsMsg *message = NULL;
    natsStatus status = natsMsg_Create(&message, "kc.suggest", NULL, payload, (int)strlen(payload));
    if (status != NATS_OK) return kci_nats_fail(status, "suggest");
    kci_kc_headers headers = {0};
    snprintf(headers.type, sizeof(headers.type), "suggest");
    headers.deadline_ms = kci_wall_ms() + timeout_ms;
    kc_err err = kci_client_stamp(client, message, &headers);
    if (err == KC_OK) {
        status = natsConnection_RequestMsg(reply, client->connection, message, timeout_ms);
        if (status == NATS_NO_RESPONDERS)
            err = kci_fail(KC_ERR_NO_RESPONDERS, "no suggestion keeper is running (start kcobrad)");
        else if (status == NATS_TIMEOUT)
            err =
                kci_fail(KC_ERR_TIMEOUT,
                         "the suggestion keeper did not answer within %" PRId64 " ms", timeout_ms);
        else if (status != NATS_OK)
            err = kci_nats_fail(status, "suggest");
    }
    natsMsg_Destroy(message);
    return err;
}

kc_err kc_client_suggest(kc_client *client, const char *text, int64_t timeout_ms,
                         char id_out[KC_UUID_TEXT_BYTES + 1])
{
    if (id_out != NULL) id_out[0] = '\0';
    if (client == NULL || text == NULL || text[0] == '\0')
        return kci_fail(KC_ERR_INVALID_ARGUMENT, "a suggestion needs a client and a text");
    if (timeout_ms <= 0 || timeout_ms > KCI_TIMEOUT_MS_MAX)
        return kci_fail(KC_ERR_INVALID_ARGUMENT, "timeout_ms %" PRId64 " is not in 1..%d",
                        timeout_ms, KCI_TIMEOUT_MS_MAX);
    kc_err err = check_text("suggestion", text, SUGGESTION_TEXT_BYTES_MAX);
    if (err != KC_OK) return err;
    char *payload = NULL;
    err = json_take(&payload, json_pack("{s:s, s:s}", "text", text, "node", client->node),
                    "suggestion");
    if (err != KC_OK) return err;
    natsMsg *reply = NULL;
    err = suggest_request(&reply, client, payload, timeout_ms);
    free(payload);
    if (err == KC_OK) err = read_keeper_reply(reply, id_out);
    natsMsg_Destroy(reply);
    return err;
}
