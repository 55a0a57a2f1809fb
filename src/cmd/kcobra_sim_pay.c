/* kcobra_sim_pay.c - how a simulated client pays for one request
 * (--economy), kept in one function so that it is the one place to change
 * when payments become escrow holds.
 *
 * Today's path (docs/ledger.md, "Paying for service"): the client pays the
 * node's wallet the whole price with a signed ledger transfer
 * (kci_ledger_pay: picks coins, makes change through an exchange when no
 * subset adds up), then sends the request with the transfer's id as Kc-Pay
 * to the node's own paid type; the node's service claims the payment on
 * kc.ledger.payment before its handler runs and answers 402 if the claim
 * fails. The payment is final: a node that answers with an error keeps it
 * (issue 15, finding 3), which is what take-payment exploits.
 *
 * With escrow (two-phase transfers), this function makes a hold on the
 * client's coins for the node instead of a transfer, and sends its id the
 * same way; the service posts the hold when it serves and voids it when it
 * answers an error, so the money lost to take-payment should fall to what
 * holds that are never voided leave. */
#include <string.h>

#include "common/clock.h"
#include "kcobra_sim.h"
#include "ledger/client.h"
#include "service/component.h"

kc_err kcobra_sim_pay_request(kc_reply **out, sim_client *client, const sim_node *node,
                              int64_t amount, const char *payload, size_t length, bool *paid,
                              int64_t *latency_ms)
{
    *out = NULL;
    *paid = false;
    *latency_ms = 0;
    uint8_t to[KCI_LEDGER_KEY_BYTES];
    memcpy(to, node->wallet.public_key, sizeof to);
    json_t *receipt = NULL;
    bool exchanged = false;
    kci_ledger_refusal refusal;
    kc_err err =
        kci_ledger_pay(&receipt, &exchanged, kci_client_connection(client->client), &client->wallet,
                       to, (uint64_t)amount, SIM_LEDGER_TIMEOUT_MS, &refusal);
    const char *transfer = json_string_value(json_object_get(receipt, "transfer"));
    if (err != KC_OK || transfer == NULL) {
        json_decref(receipt);
        return err != KC_OK ? err : KC_ERR_SERVICE;
    }
    *paid = true;
    int64_t sent_ms = kci_monotonic_ms(); /* the service's latency, not the payment's */
    err = kc_client_request_paid(out, client->client, node->paid_type, payload, length,
                                 SIM_REQUEST_TIMEOUT_MS, transfer);
    *latency_ms = kci_monotonic_ms() - sent_ms;
    json_decref(receipt);
    return err;
}
