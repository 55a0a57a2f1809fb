/* settle_sign.c - the payee's signature over a claim, post or void of a
 * hold (settle_sign.h). Compiled into libkingcobra (src/service/meson.build)
 * so a paid service signs its own posts; the ledger gets it from there. */
#include "settle_sign.h"

#include <assert.h>
#include <sodium.h>
#include <string.h>

#include "service/uuid.h"

enum {
    SETTLE_VERSION = 1,
};

static uint8_t *put_u64(uint8_t *cursor, uint64_t value)
{
    for (int shift = 56; shift >= 0; shift -= 8)
        *cursor++ = (uint8_t)(value >> shift);
    return cursor;
}

void kci_ledger_settle_signing_bytes(uint8_t bytes[KCI_LEDGER_SETTLE_SIGNING_BYTES],
                                     kci_ledger_settle settle,
                                     const uint8_t hold[KCI_LEDGER_SETTLE_HOLD_BYTES],
                                     const char *request_id,
                                     const uint8_t payee[KCI_LEDGER_SETTLE_KEY_BYTES],
                                     uint64_t min_amount)
{
    uint8_t *cursor = bytes;
    memcpy(cursor, KCI_LEDGER_SETTLE_PREFIX, sizeof KCI_LEDGER_SETTLE_PREFIX); /* with NUL */
    cursor += sizeof KCI_LEDGER_SETTLE_PREFIX;
    *cursor++ = SETTLE_VERSION;
    *cursor++ = (uint8_t)settle;
    memcpy(cursor, hold, KCI_LEDGER_SETTLE_HOLD_BYTES);
    cursor += KCI_LEDGER_SETTLE_HOLD_BYTES;
    memset(cursor, 0, KCI_LEDGER_SETTLE_HOLD_BYTES);
    kci_uuid uuid;
    if (request_id != NULL && request_id[0] != '\0') {
        /* Text that is not a UUID signs bytes no valid request has. */
        if (kci_uuid_parse(request_id, strlen(request_id), &uuid))
            memcpy(cursor, uuid.bytes, KCI_LEDGER_SETTLE_HOLD_BYTES);
        else
            memset(cursor, 0xFF, KCI_LEDGER_SETTLE_HOLD_BYTES);
    }
    cursor += KCI_LEDGER_SETTLE_HOLD_BYTES;
    memcpy(cursor, payee, KCI_LEDGER_SETTLE_KEY_BYTES);
    cursor = put_u64(cursor + KCI_LEDGER_SETTLE_KEY_BYTES, min_amount);
    assert((size_t)(cursor - bytes) == KCI_LEDGER_SETTLE_SIGNING_BYTES);
}

void kci_ledger_settle_sign(uint8_t signature[KCI_LEDGER_SETTLE_SIGNATURE_BYTES],
                            kci_ledger_settle settle,
                            const uint8_t hold[KCI_LEDGER_SETTLE_HOLD_BYTES],
                            const char *request_id, uint64_t min_amount,
                            const uint8_t secret_key[KCI_LEDGER_SETTLE_SECRET_BYTES])
{
    uint8_t bytes[KCI_LEDGER_SETTLE_SIGNING_BYTES];
    /* libsodium's secret key ends with the public key: the payee. */
    kci_ledger_settle_signing_bytes(
        bytes, settle, hold, request_id,
        secret_key + KCI_LEDGER_SETTLE_SECRET_BYTES - KCI_LEDGER_SETTLE_KEY_BYTES, min_amount);
    crypto_sign_detached(signature, NULL, bytes, sizeof bytes, secret_key);
}

bool kci_ledger_settle_verify(const uint8_t signature[KCI_LEDGER_SETTLE_SIGNATURE_BYTES],
                              kci_ledger_settle settle,
                              const uint8_t hold[KCI_LEDGER_SETTLE_HOLD_BYTES],
                              const char *request_id,
                              const uint8_t payee[KCI_LEDGER_SETTLE_KEY_BYTES], uint64_t min_amount)
{
    uint8_t bytes[KCI_LEDGER_SETTLE_SIGNING_BYTES];
    kci_ledger_settle_signing_bytes(bytes, settle, hold, request_id, payee, min_amount);
    return crypto_sign_verify_detached(signature, bytes, sizeof bytes, payee) == 0;
}
