/* payment_check.c - a payer's "charged without service" report, checked
 * against the ledger (payment_check.h). A report on kc.problem.<node> that
 * names the payment ("transfer": a hold or transfer id) and the request
 * ("request_id") is weighed by judge.c like any other report; here the
 * money side is checked: kc.ledger.transfer.get says whether that payment
 * was charged for that request. A claim the ledger refutes (the hold was
 * voided, expired or never claimed; the transfer paid another request or
 * none) lowers the reporter's credibility, so a false reporter cannot use
 * payment reports to smear an honest node; a confirmed one raises it and
 * keeps the request as evidence against the node. A check the ledger does
 * not answer judges nothing.
 *
 * Then the service side, for a charge: kc.reply.get asks the persister
 * for its record of the request. A recorded reply from the node without an
 * error refutes "without service"; a dead or pending request, an error
 * reply, or no record at all (a request that was not submitted durably)
 * leaves the ledger's word standing.
 *
 * Limits: the record says the node answered, not whether it answered well
 * (that is the QoS and fusion judgement's job); the node's wallet is not
 * known here, so a report naming some other node's payment is only as good
 * as the reporter's credibility. */
#include "arbiter/payment_check.h"

#include <stdio.h>
#include <string.h>

#include "arbiter/arbiter_internal.h"
#include "common/clock.h"
#include "common/log.h"
#include "service/headers.h"
#include "service/uuid.h"

#define PAYMENT_CHECK_SUBJECT "kc.ledger.transfer.get"
#define QUEUE_RECORD_SUBJECT "kc.reply.get"
#define QUEUE_STATE_HEADER "Kc-Queue-State" /* queue/persister.h, not linked here */
#define REPLIED_BY_HEADER "Kc-Replied-By"

enum {
    PAYMENT_CHECK_TIMEOUT_MS = 2000,
    PAYMENT_REPORT_BYTES_MAX = 20 * 1024,
};

bool kci_payment_charged(const json_t *transfer, const char *request_id)
{
    const char *paid = json_string_value(json_object_get(transfer, "paid_request"));
    const char *kind = json_string_value(json_object_get(transfer, "kind"));
    if (paid == NULL || request_id == NULL || strcmp(paid, request_id) != 0 || kind == NULL)
        return false;
    if (strcmp(kind, "transfer") == 0) return true;
    const char *state =
        json_string_value(json_object_get(json_object_get(transfer, "hold"), "state"));
    return strcmp(kind, "hold") == 0 && state != NULL && strcmp(state, "posted") == 0;
}

int kci_payment_served(const char *queue_state, const char *error, const char *replied_by,
                       const char *node)
{
    if (queue_state == NULL || strcmp(queue_state, "unknown") == 0) return -1;
    if (strcmp(queue_state, "replied") != 0) return 0; /* dead or pending */
    if (error != NULL && error[0] != '\0') return 0;
    return replied_by == NULL || strcmp(replied_by, node) == 0 ? 1 : 0;
}

bool kci_payment_report_confirmed(int charged, int served)
{
    return charged == 1 && served != 1;
}

typedef struct payment_report {
    char node[KC_NODE_BYTES_MAX + 1];
    char reporter[KC_NODE_BYTES_MAX + 1];
    char request_id[KC_UUID_TEXT_BYTES + 1];
    char payment[KC_UUID_TEXT_BYTES + 1];
} payment_report;

static bool uuid_text(const char *text)
{
    kci_uuid uuid;
    return text != NULL && kci_uuid_parse(text, strlen(text), &uuid);
}

/* A report that names a payment; false for every other (judge.c's alone). */
static bool report_read(payment_report *out, natsMsg *message)
{
    int length = natsMsg_GetDataLength(message);
    if (length <= 0 || length > PAYMENT_REPORT_BYTES_MAX) return false;
    json_t *root = json_loadb(natsMsg_GetData(message), (size_t)length, 0, NULL);
    kci_kc_headers headers;
    kci_headers_clear(&headers);
    (void)kci_headers_read(message, false, &headers);
    const char *node = json_string_value(json_object_get(root, "node"));
    const char *reporter = headers.node[0] != '\0'
                               ? headers.node
                               : json_string_value(json_object_get(root, "reporter"));
    const char *request_id = json_string_value(json_object_get(root, "request_id"));
    const char *payment = json_string_value(json_object_get(root, "transfer"));
    bool valid = node != NULL && reporter != NULL && kci_token_valid(node) &&
                 kci_token_valid(reporter) && strlen(node) <= KC_NODE_BYTES_MAX &&
                 strlen(reporter) <= KC_NODE_BYTES_MAX && uuid_text(request_id) &&
                 uuid_text(payment);
    if (valid) {
        snprintf(out->node, sizeof out->node, "%s", node);
        snprintf(out->reporter, sizeof out->reporter, "%s", reporter);
        snprintf(out->request_id, sizeof out->request_id, "%s", request_id);
        snprintf(out->payment, sizeof out->payment, "%s", payment);
    }
    json_decref(root);
    return valid;
}

/* 1 charged, 0 not, -1 the ledger did not say. */
static int ledger_says(natsConnection *connection, const payment_report *report)
{
    char body[96];
    snprintf(body, sizeof body, "{\"transfer\":\"%s\"}", report->payment);
    natsMsg *reply = NULL;
    natsStatus status = natsConnection_RequestString(&reply, connection, PAYMENT_CHECK_SUBJECT,
                                                     body, PAYMENT_CHECK_TIMEOUT_MS);
    if (status != NATS_OK) return -1;
    const char *error = NULL;
    int answer = -1;
    if (natsMsgHeader_Get(reply, KCI_HEADER_ERROR, &error) == NATS_OK && error != NULL) {
        answer = strncmp(error, "404", 3) == 0 ? 0 : -1; /* no such payment: not charged */
    } else {
        json_t *transfer =
            json_loadb(natsMsg_GetData(reply), (size_t)natsMsg_GetDataLength(reply), 0, NULL);
        answer = transfer != NULL ? kci_payment_charged(transfer, report->request_id) : -1;
        json_decref(transfer);
    }
    natsMsg_Destroy(reply);
    return answer;
}

/* kci_payment_served of the persister's answer about the request. */
static int queue_says(natsConnection *connection, const payment_report *report)
{
    char body[96];
    snprintf(body, sizeof body, "{\"id\":\"%s\"}", report->request_id);
    natsMsg *reply = NULL;
    if (natsConnection_RequestString(&reply, connection, QUEUE_RECORD_SUBJECT, body,
                                     PAYMENT_CHECK_TIMEOUT_MS) != NATS_OK)
        return -1;
    const char *state = NULL, *error = NULL, *replied_by = NULL;
    (void)natsMsgHeader_Get(reply, QUEUE_STATE_HEADER, &state);
    (void)natsMsgHeader_Get(reply, KCI_HEADER_ERROR, &error);
    (void)natsMsgHeader_Get(reply, REPLIED_BY_HEADER, &replied_by);
    int served = kci_payment_served(state, error, replied_by, report->node);
    natsMsg_Destroy(reply);
    return served;
}

void kci_arbiter_on_payment_problem(natsConnection *connection, natsSubscription *subscription,
                                    natsMsg *message, void *closure)
{
    (void)subscription;
    kci_arbiter *arbiter = closure;
    payment_report report;
    bool named = report_read(&report, message);
    natsMsg_Destroy(message);
    if (!named) return;
    /* Outside the lock: the ledger's answer can take PAYMENT_CHECK_TIMEOUT_MS. */
    int charged = ledger_says(connection, &report);
    if (charged < 0) {
        kci_debug("arbiter %s: payment %s of request %s: the ledger did not say", arbiter->id,
                  report.payment, report.request_id);
        return;
    }
    int served = charged == 1 ? queue_says(connection, &report) : -1;
    bool confirmed = kci_payment_report_confirmed(charged, served);
    pthread_mutex_lock(&arbiter->lock);
    arbiter_node *reporter = kci_arbiter_node(arbiter, report.reporter, false);
    /* judge.c's handler makes the reporter known, on another thread; this
     * one may come first. The same bound on names first seen filing. */
    if (reporter == NULL && arbiter->speaker_count < ARBITER_NODES_MAX / 2) {
        reporter = kci_arbiter_node(arbiter, report.reporter, true);
        arbiter->speaker_count += reporter != NULL;
    }
    arbiter_node *accused = kci_arbiter_node(arbiter, report.node, false);
    if (reporter != NULL) kci_credibility_judge(&reporter->credibility, confirmed);
    if (confirmed && accused != NULL) kci_arbiter_evidence_add(accused, report.request_id);
    pthread_mutex_unlock(&arbiter->lock);
    kci_info("arbiter %s: %s reports it paid %s (%s) for request %s without service: %s",
             arbiter->id, report.reporter, report.node, report.payment, report.request_id,
             charged != 1  ? "the ledger shows no charge: counted against the reporter"
             : served == 1 ? "the queue's record shows the node's reply: counted against the "
                             "reporter"
                           : "the ledger confirms the charge");
}
