/* wallet.h - wallet key files: an Ed25519 key pair (libsodium) kept in
 * "<directory>/<name>.key", mode 0600, created with O_CREAT|O_EXCL and
 * fchmod (so no umask can widen it), never sent anywhere. A wallet's
 * address is its public key, in hex. The mint's key is such a file too, in
 * the ledger's data directory.
 *
 * File format (text): "kingcobra-wallet 1\n<128 hex digits: the secret
 * key>\n"; the public key is the secret key's second half (libsodium's
 * layout), checked on load against the seed. */
#ifndef KCI_LEDGER_WALLET_H
#define KCI_LEDGER_WALLET_H

#include <stddef.h>
#include <stdint.h>

#include "kingcobra/err.h"
#include "ledger/codec.h"

enum {
    KCI_WALLET_NAME_BYTES_MAX = 64,
    KCI_WALLET_FILE_BYTES = 19 + KCI_LEDGER_SECRET_BYTES * 2 + 1, /* header, hex, LF */
};

#define KCI_WALLET_HEADER "kingcobra-wallet 1\n"

typedef struct kci_wallet {
    uint8_t public_key[KCI_LEDGER_KEY_BYTES];
    uint8_t secret_key[KCI_LEDGER_SECRET_BYTES];
} kci_wallet;

/* A wallet name is [A-Za-z0-9_-]{1,64}: it becomes a file name. */
bool kci_wallet_name_valid(const char *name);
/* Makes a new key pair and writes it to path, which must not exist
 * (KC_ERR_EXISTS). The directory is created (0700) if missing. */
kc_err kci_wallet_create(kci_wallet *out, const char *path, char *error, size_t error_size);
/* Reads path; refuses a file others can read (KC_ERR_PERMISSION). */
kc_err kci_wallet_load(kci_wallet *out, const char *path, char *error, size_t error_size);
/* Loads path, or creates it when it does not exist (the mint key). */
kc_err kci_wallet_load_or_create(kci_wallet *out, const char *path, char *error, size_t error_size);
/* The address (hex, KCI_LEDGER_ADDRESS_TEXT_BYTES + 1 bytes). */
void kci_wallet_address(char *text, const kci_wallet *wallet);
/* Zeroes the secret. */
void kci_wallet_wipe(kci_wallet *wallet);

#endif
