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

/* kc.problem.<node> (a second subscription beside judge.c's): a report
 * with "transfer" is checked with the ledger. Charged: the report is
 * credible and the request becomes evidence against the node; not
 * charged: a false money claim, counted against the reporter. */
void kci_arbiter_on_payment_problem(natsConnection *connection, natsSubscription *subscription,
                                    natsMsg *message, void *closure);

#endif
