/* client.h - talking to the ledger over the fabric, for kcobra, the
 * benchmark and the tests: one request/reply call with the ledger's error
 * convention decoded, and payment (pick coins, make change through an
 * exchange when no subset of the wallet's coins adds up to the amount,
 * sign, transfer). The secret key never leaves the process: only
 * signatures are sent. */
#ifndef KCI_LEDGER_CLIENT_H
#define KCI_LEDGER_CLIENT_H

#include <jansson.h>
#include <nats/nats.h>
#include <stdint.h>

#include "kingcobra/err.h"
#include "ledger/codec.h"
#include "ledger/result.h"
#include "ledger/wallet.h"

enum {
    KCI_LEDGER_CLIENT_COINS_MAX = 100000, /* coins of one wallet a payer looks at */
};

/* A refusal as a client sees it: the wire code of Kc-Error (result.h; 0
 * when the ledger was not reached) and the message. */
typedef struct kci_ledger_refusal {
    int code;
    char message[KCI_LEDGER_ERROR_BYTES_MAX];
} kci_ledger_refusal;

/* Sends body (taken; NULL sends {}) to kc.ledger.<operation>. KC_OK: *out
 * is the JSON reply. KC_ERR_SERVICE: the ledger refused; refusal has its
 * code and message (and *out the body, if any). KC_ERR_TIMEOUT,
 * KC_ERR_NO_RESPONDERS (no ledger runs), KC_ERR_IO otherwise; the text is
 * in refusal->message in every failure. */
kc_err kci_ledger_call(json_t **out, natsConnection *connection, const char *operation,
                       json_t *body, int64_t timeout_ms, kci_ledger_refusal *refusal);

/* Every coin of wallet (pages through kc.ledger.coins): *coins malloc'd,
 * *mint the mint's address. */
kc_err kci_ledger_wallet_coins(kci_ledger_coin **coins, uint32_t *count,
                               uint8_t mint[KCI_LEDGER_KEY_BYTES], natsConnection *connection,
                               const uint8_t wallet[KCI_LEDGER_KEY_BYTES], int64_t timeout_ms,
                               kci_ledger_refusal *refusal);

/* A signed transfer of coins (sorted, with denominations) from wallet to
 * to; the id is a new UUIDv7 and the time now. */
kc_err kci_ledger_transfer_make(kci_ledger_transfer *out, const kci_wallet *wallet,
                                const uint8_t to[KCI_LEDGER_KEY_BYTES],
                                const kci_ledger_coin *coins, uint32_t coin_count);
/* A signed hold of coins for to, expiring hold_ms from now. */
kc_err kci_ledger_hold_make(kci_ledger_transfer *out, const kci_wallet *wallet,
                            const uint8_t to[KCI_LEDGER_KEY_BYTES], const kci_ledger_coin *coins,
                            uint32_t coin_count, int64_t hold_ms);
/* A signed exchange of coins for coins of denominations (same total). */
kc_err kci_ledger_exchange_make(kci_ledger_transfer *out, const kci_wallet *wallet,
                                const uint8_t mint[KCI_LEDGER_KEY_BYTES],
                                const kci_ledger_coin *coins, uint32_t coin_count,
                                const uint64_t *denominations, uint32_t denomination_count);

/* Pays amount from wallet to to: *out is the transfer's reply
 * ({"transfer": id, "ok": true}); *exchanged says whether change had to
 * be made first. */
kc_err kci_ledger_pay(json_t **out, bool *exchanged, natsConnection *connection,
                      const kci_wallet *wallet, const uint8_t to[KCI_LEDGER_KEY_BYTES],
                      uint64_t amount, int64_t timeout_ms, kci_ledger_refusal *refusal);

/* The same as a hold (escrow) that expires hold_ms from now: *out is the
 * hold's reply ({"transfer": id, "ok": true}). */
kc_err kci_ledger_hold_pay(json_t **out, bool *exchanged, natsConnection *connection,
                           const kci_wallet *wallet, const uint8_t to[KCI_LEDGER_KEY_BYTES],
                           uint64_t amount, int64_t hold_ms, int64_t timeout_ms,
                           kci_ledger_refusal *refusal);

#endif
