/* settle_sign.h - what a hold's payee signs to claim, post or void it
 * (docs/ledger.md, "Escrow: holds"). Apart from codec.h because both sides
 * need it: the ledger verifies (store_hold.c) and libkingcobra's paid
 * services sign (src/service/hold.c), and libkingcobra does not link the
 * ledger. Only libsodium and the UUID parser. */
#ifndef KCI_LEDGER_SETTLE_SIGN_H
#define KCI_LEDGER_SETTLE_SIGN_H

#include <stdbool.h>
#include <stdint.h>

/* What the payee (or the ledger's clock) does with a hold. */
typedef enum kci_ledger_settle {
    KCI_LEDGER_SETTLE_CLAIM = 1, /* binds the hold to one request (its Kc-Id) */
    KCI_LEDGER_SETTLE_POST = 2,  /* the coins go to the payee */
    KCI_LEDGER_SETTLE_VOID = 3,  /* the coins go back to the payer */
} kci_ledger_settle;

/* What a claim, post or void signature begins with (domain separation). */
#define KCI_LEDGER_SETTLE_PREFIX "kingcobra-ledger-settle"
enum {
    KCI_LEDGER_SETTLE_HOLD_BYTES = 16,   /* a hold's id (a transfer id) */
    KCI_LEDGER_SETTLE_KEY_BYTES = 32,    /* the payee's Ed25519 public key */
    KCI_LEDGER_SETTLE_SECRET_BYTES = 64, /* libsodium's secret key: seed, then public key */
    KCI_LEDGER_SETTLE_SIGNATURE_BYTES = 64,
    KCI_LEDGER_SETTLE_SIGNING_BYTES = sizeof KCI_LEDGER_SETTLE_PREFIX + 2 +
                                      2 * KCI_LEDGER_SETTLE_HOLD_BYTES +
                                      KCI_LEDGER_SETTLE_KEY_BYTES + 8,
};

/* The signed bytes (integers big-endian): prefix NUL, version u8 (1),
 * settle u8, hold id (16), request id (16 bytes of the Kc-Id's UUID; all
 * zero for none, all 0xFF for text that is not a UUID), payee (32),
 * min_amount u64 (a claim's price; 0 otherwise). */
void kci_ledger_settle_signing_bytes(uint8_t bytes[KCI_LEDGER_SETTLE_SIGNING_BYTES],
                                     kci_ledger_settle settle,
                                     const uint8_t hold[KCI_LEDGER_SETTLE_HOLD_BYTES],
                                     const char *request_id,
                                     const uint8_t payee[KCI_LEDGER_SETTLE_KEY_BYTES],
                                     uint64_t min_amount);
/* Signs as the payee whose key secret_key is. */
void kci_ledger_settle_sign(uint8_t signature[KCI_LEDGER_SETTLE_SIGNATURE_BYTES],
                            kci_ledger_settle settle,
                            const uint8_t hold[KCI_LEDGER_SETTLE_HOLD_BYTES],
                            const char *request_id, uint64_t min_amount,
                            const uint8_t secret_key[KCI_LEDGER_SETTLE_SECRET_BYTES]);
bool kci_ledger_settle_verify(const uint8_t signature[KCI_LEDGER_SETTLE_SIGNATURE_BYTES],
                              kci_ledger_settle settle,
                              const uint8_t hold[KCI_LEDGER_SETTLE_HOLD_BYTES],
                              const char *request_id,
                              const uint8_t payee[KCI_LEDGER_SETTLE_KEY_BYTES],
                              uint64_t min_amount);

#endif
