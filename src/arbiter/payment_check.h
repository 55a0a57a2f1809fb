/* payment_check.h - the arbiter's check of a payer's "charged without
 * service" report (docs/arbiter.md, "Payment reports"). */
#ifndef KCI_ARBITER_PAYMENT_CHECK_H
#define KCI_ARBITER_PAYMENT_CHECK_H

#include <jansson.h>
#include <nats/nats.h>
#include <stdbool.h>

/* Whether the ledger's kc.ledger.transfer.get answer (transfer) says the
 * payment was charged for request_id: a transfer that paid it, or a hold
 * claimed for it and posted (a pending, voided or expired hold charged
 * nothing). */
bool kci_payment_charged(const json_t *transfer, const char *request_id);

/* What the persister's record of the request (kc.reply.get) says of the
 * service, from its answer's headers: 1 node answered it without an error
 * (Kc-Queue-State "replied"); 0 no service (dead, pending, an error reply,
 * or another node's reply); -1 no record (not a durable request, or no
 * persister answered: queue_state NULL or "unknown"). */
int kci_payment_served(const char *queue_state, const char *error, const char *replied_by,
                       const char *node);

/* The report's verdict from the ledger (charged: 1, 0) and the queue's
 * record (served: 1, 0, -1): confirmed only when the payment was charged
 * for the request and the record does not show the node serving it. */
bool kci_payment_report_confirmed(int charged, int served);

/* kc.problem.<node> (a second subscription beside judge.c's): a report
 * with "transfer" is checked with the ledger and the queue's record.
 * Confirmed: the report is credible and the request becomes evidence
 * against the node; otherwise a false claim, counted against the
 * reporter. */
void kci_arbiter_on_payment_problem(natsConnection *connection, natsSubscription *subscription,
                                    natsMsg *message, void *closure);

#endif
