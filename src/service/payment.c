/* payment.c - the paid-service check (client_internal.h): a request to a
 * service with a price carries Kc-Pay, the id of a ledger transfer; the
 * service claims it on kc.ledger.payment with
 *   {"transfer": <Kc-Pay>, "payee": <its wallet>, "min_amount": <price>,
 *    "request": <the request's Kc-Id>}
 * and the ledger answers only if that transfer paid the wallet at least the
 * price and has paid no other request (it records the request atomically;
 * the same request claiming again is fine, so redeliveries pass). Any
 * other answer - a refusal, no ledger, no answer in time - refuses the
 * request: an unverifiable payment is no payment. docs/ledger.md. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "service/client_internal.h"

#define PAYMENT_SUBJECT "kc.ledger.payment"

bool kci_wallet_address_valid(const char *wallet)
{
    if (wallet == NULL || strlen(wallet) != KCI_WALLET_TEXT_BYTES) return false;
    for (const char *cursor = wallet; *cursor != '\0'; cursor++)
        if (!((*cursor >= '0' && *cursor <= '9') || (*cursor >= 'a' && *cursor <= 'f') ||
              (*cursor >= 'A' && *cursor <= 'F')))
            return false;
    return true;
}

int64_t kci_payment_timeout_ms(const kci_kc_headers *headers)
{
    int64_t timeout_ms = KCI_PAYMENT_TIMEOUT_MS;
    if (headers->deadline_ms != 0) {
        int64_t left_ms = headers->deadline_ms - kci_wall_ms();
        if (left_ms < timeout_ms) timeout_ms = left_ms > 1 ? left_ms : 1;
    }
    return timeout_ms;
}

kc_err kci_payment_claim(kc_client *client, const char *wallet, int64_t price,
                         const kci_kc_headers *headers, char *message, size_t message_size)
{
    if (headers->pay[0] == '\0') {
        snprintf(message, message_size,
                 "payment required: this service costs %" PRId64 "; pay wallet %s and send the "
                 "transfer id as Kc-Pay",
                 price, wallet);
        return KC_ERR_PAYMENT;
    }
    char body[256];
    /* Every field is a UUID, hex or an integer: nothing to escape. */
    snprintf(body, sizeof(body),
             "{\"transfer\":\"%s\",\"payee\":\"%s\",\"min_amount\":%" PRId64 ",\"request\":\"%s\"}",
             headers->pay, wallet, price, headers->id);
    char what[64];
    snprintf(what, sizeof what, "payment %s", headers->pay);
    return kci_ledger_ask(client, PAYMENT_SUBJECT, body, headers, kci_payment_timeout_ms(headers),
                          what, message, message_size);
}

kc_err kci_ledger_ask(kc_client *client, const char *subject, const char *body,
                      const kci_kc_headers *request, int64_t timeout_ms, const char *what,
                      char *message, size_t message_size)
{
    natsMsg *reply = NULL;
    natsStatus status =
        kci_request_caused(&reply, client, subject, body, "payment", request, timeout_ms);
    const char *error = NULL;
    if (status == NATS_OK && natsMsgHeader_Get(reply, KCI_HEADER_ERROR, &error) == NATS_OK &&
        error != NULL) {
        const char *text = strchr(error, ' ');
        snprintf(message, message_size, "%s refused by the ledger: %s", what,
                 text != NULL ? text + 1 : error);
    } else if (status == NATS_NO_RESPONDERS) {
        snprintf(message, message_size, "%s cannot be checked: no ledger answers on %s", what,
                 subject);
    } else if (status != NATS_OK) {
        snprintf(message, message_size, "%s cannot be checked: %s", what,
                 natsStatus_GetText(status));
    }
    bool paid = status == NATS_OK && error == NULL;
    natsMsg_Destroy(reply);
    return paid ? KC_OK : KC_ERR_PAYMENT;
}
