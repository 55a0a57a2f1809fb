/* hold.c - a paid service's side of escrow (client_internal.h;
 * docs/ledger.md, "Escrow: holds"). A request paid with Kc-Pay-Hold names
 * a hold of the payer's coins for the service's wallet. Before the handler
 * runs, the service claims it for the request's Kc-Id on kc.ledger.hold.claim
 * (the ledger checks that it pays this wallet at least the price, is
 * pending, and is not claimed for another request); after the handler, it
 * posts the hold (kc.ledger.hold.post: the coins become the service's) when
 * the reply is a success and voids it (kc.ledger.hold.void: the coins go
 * back) when the reply is an error. Each is signed with the wallet's key,
 * so nobody else can settle the service's holds. A settle that fails (no
 * ledger, a timeout) is logged: the hold then expires back to the payer,
 * which errs on the payer's side. */
#include <inttypes.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "common/log.h"
#include "ledger/settle_sign.h"
#include "service/client_internal.h"

#define HOLD_CLAIM_SUBJECT "kc.ledger.hold.claim"
#define HOLD_POST_SUBJECT "kc.ledger.hold.post"
#define HOLD_VOID_SUBJECT "kc.ledger.hold.void"

enum {
    HOLD_BODY_BYTES = 512,
    HEX_SIGNATURE_BYTES = 2 * KCI_LEDGER_SETTLE_SIGNATURE_BYTES + 1,
    HEX_KEY_BYTES = 2 * KCI_LEDGER_SETTLE_KEY_BYTES + 1,
};

static void hex(char *text, const uint8_t *bytes, size_t length)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t index = 0; index < length; index++) {
        text[2 * index] = digits[bytes[index] >> 4];
        text[2 * index + 1] = digits[bytes[index] & 15];
    }
    text[2 * length] = '\0';
}

/* The signed body of a claim (price > 0), post or void of the request's hold. */
static bool settle_body(char body[HOLD_BODY_BYTES], kci_ledger_settle settle,
                        const uint8_t secret_key[KCI_WALLET_SECRET_BYTES], int64_t price,
                        const kci_kc_headers *headers)
{
    kci_uuid hold;
    if (!kci_uuid_parse(headers->pay_hold, strlen(headers->pay_hold), &hold)) return false;
    uint8_t signature[KCI_LEDGER_SETTLE_SIGNATURE_BYTES];
    uint64_t min_amount = settle == KCI_LEDGER_SETTLE_CLAIM ? (uint64_t)price : 0;
    kci_ledger_settle_sign(signature, settle, hold.bytes, headers->id, min_amount, secret_key);
    char signature_text[HEX_SIGNATURE_BYTES], payee[HEX_KEY_BYTES];
    hex(signature_text, signature, sizeof signature);
    hex(payee, secret_key + KCI_WALLET_SECRET_BYTES - KCI_LEDGER_SETTLE_KEY_BYTES,
        KCI_LEDGER_SETTLE_KEY_BYTES);
    char amount[32] = "";
    if (settle == KCI_LEDGER_SETTLE_CLAIM)
        snprintf(amount, sizeof amount, ",\"min_amount\":%" PRId64, price);
    /* Every field is a UUID, hex or an integer: nothing to escape. */
    int length = snprintf(body, HOLD_BODY_BYTES,
                          "{\"hold\":\"%s\",\"payee\":\"%s\",\"request\":\"%s\"%s,"
                          "\"signature\":\"%s\"}",
                          headers->pay_hold, payee, headers->id, amount, signature_text);
    return length > 0 && length < HOLD_BODY_BYTES;
}

bool kci_wallet_key_matches(const char *wallet, const uint8_t secret_key[KCI_WALLET_SECRET_BYTES])
{
    if (sodium_init() < 0) return false;
    char address[HEX_KEY_BYTES];
    hex(address, secret_key + KCI_WALLET_SECRET_BYTES - KCI_LEDGER_SETTLE_KEY_BYTES,
        KCI_LEDGER_SETTLE_KEY_BYTES);
    return strcasecmp(address, wallet) == 0;
}

kc_err kci_hold_claim(kc_client *client, const uint8_t secret_key[KCI_WALLET_SECRET_BYTES],
                      int64_t price, const kci_kc_headers *headers, char *message,
                      size_t message_size)
{
    char body[HOLD_BODY_BYTES], what[64];
    snprintf(what, sizeof what, "hold %s", headers->pay_hold);
    if (secret_key == NULL) {
        snprintf(message, message_size,
                 "%s: this service takes transfers only (Kc-Pay): it was started without its "
                 "wallet's key, which settling a hold needs",
                 what);
        return KC_ERR_PAYMENT;
    }
    if (!settle_body(body, KCI_LEDGER_SETTLE_CLAIM, secret_key, price, headers)) {
        snprintf(message, message_size, "%s: not a hold id", what);
        return KC_ERR_PAYMENT;
    }
    return kci_ledger_ask(client, HOLD_CLAIM_SUBJECT, body, headers,
                          kci_payment_timeout_ms(headers), what, message, message_size);
}

void kci_hold_settle(kc_client *client, const uint8_t secret_key[KCI_WALLET_SECRET_BYTES],
                     const kci_kc_headers *headers, bool post)
{
    char body[HOLD_BODY_BYTES], what[64], message[KC_ERROR_MESSAGE_BYTES_MAX];
    snprintf(what, sizeof what, "%s of hold %s", post ? "post" : "void", headers->pay_hold);
    if (!settle_body(body, post ? KCI_LEDGER_SETTLE_POST : KCI_LEDGER_SETTLE_VOID, secret_key, 0,
                     headers))
        return; /* the claim checked it */
    /* Not bounded by the request's deadline: the reply is ready, the money
     * must still be settled. */
    if (kci_ledger_ask(client, post ? HOLD_POST_SUBJECT : HOLD_VOID_SUBJECT, body, headers,
                       KCI_PAYMENT_TIMEOUT_MS, what, message, sizeof message) != KC_OK)
        kci_warn("kingcobra: %s; the hold returns to the payer at its expiry", message);
}
