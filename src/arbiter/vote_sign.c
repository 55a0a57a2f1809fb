/* vote_sign.c - signed arbiter votes (vote_sign.h). */
#include "vote_sign.h"

#include <sodium.h>
#include <string.h>

bool kci_vote_key_parse(kci_vote_key *out, const char *text)
{
    const char *equals = text != NULL ? strchr(text, '=') : NULL;
    if (equals == NULL || equals == text || (size_t)(equals - text) > KCI_ARBITER_ID_BYTES_MAX)
        return false;
    kci_vote_key parsed;
    memset(&parsed, 0, sizeof parsed);
    if (!kci_ledger_address_parse(parsed.key, equals + 1)) return false;
    memcpy(parsed.arbiter, text, (size_t)(equals - text));
    *out = parsed;
    return true;
}

void kci_vote_sign(char signature[KCI_VOTE_SIGNATURE_TEXT_BYTES], const void *body, size_t length,
                   const uint8_t secret_key[KCI_LEDGER_SECRET_BYTES])
{
    uint8_t bytes[KCI_LEDGER_SIGNATURE_BYTES];
    crypto_sign_detached(bytes, NULL, body, length, secret_key);
    kci_ledger_hex(signature, bytes, sizeof bytes);
}

bool kci_vote_verify(const uint8_t key[KCI_LEDGER_KEY_BYTES], const char *signature,
                     const void *body, size_t length)
{
    uint8_t bytes[KCI_LEDGER_SIGNATURE_BYTES];
    if (signature == NULL || !kci_ledger_unhex(bytes, sizeof bytes, signature, strlen(signature)))
        return false;
    return crypto_sign_verify_detached(bytes, body, length, key) == 0;
}

bool kci_vote_fresh(int64_t ts_ms, int64_t now_wall_ms)
{
    return ts_ms > now_wall_ms - KCI_VOTE_AGE_MS_MAX && ts_ms < now_wall_ms + KCI_VOTE_AGE_MS_MAX;
}
