/* vote_sign.h - signed arbiter votes (docs/arbiter.md, "Signed votes").
 *
 * A vote on kc.arbiter.vote is only as good as the arbiter that cast it, and
 * anyone allowed to publish on the subject could otherwise claim any
 * arbiter's id. Each arbiter therefore has an Ed25519 key (a key file in its
 * data directory, the ledger's wallet format) and signs the exact bytes of
 * each vote it publishes: the headers Kc-Vote-Key (its public key, hex) and
 * Kc-Vote-Signature (the detached signature, hex). The other arbiters and
 * kcobrad's hosted arbiter are told each peer's key (peer_keys:
 * ["<id>=<hex key>", ...]); with keys configured, a vote counts only when
 * it is signed by the key configured for the id it claims, and only once:
 * its ts_ms must be fresh and newer than that arbiter's last vote about the
 * node (no replay). */
#ifndef KCI_ARBITER_VOTE_SIGN_H
#define KCI_ARBITER_VOTE_SIGN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "arbiter/quorum.h"
#include "ledger/codec.h"

#define KCI_VOTE_KEY_HEADER "Kc-Vote-Key"
#define KCI_VOTE_SIGNATURE_HEADER "Kc-Vote-Signature"

enum {
    KCI_VOTE_KEY_TEXT_BYTES = KCI_LEDGER_ADDRESS_TEXT_BYTES + 1,
    KCI_VOTE_SIGNATURE_TEXT_BYTES = KCI_LEDGER_SIGNATURE_TEXT_BYTES + 1,
    KCI_VOTE_AGE_MS_MAX = 60 * 1000, /* older (or this far in the future): a replay */
};

/* A peer's id and key, parsed from "<id>=<hex key>". */
typedef struct kci_vote_key {
    char arbiter[KCI_ARBITER_ID_BYTES_MAX + 1];
    uint8_t key[KCI_LEDGER_KEY_BYTES];
} kci_vote_key;

/* false (out untouched) when text is not "<id>=<64 hex digits>". */
bool kci_vote_key_parse(kci_vote_key *out, const char *text);
/* The signature of body (hex, NUL-terminated) with secret_key. */
void kci_vote_sign(char signature[KCI_VOTE_SIGNATURE_TEXT_BYTES], const void *body, size_t length,
                   const uint8_t secret_key[KCI_LEDGER_SECRET_BYTES]);
/* True when signature (hex) is key's over body. */
bool kci_vote_verify(const uint8_t key[KCI_LEDGER_KEY_BYTES], const char *signature,
                     const void *body, size_t length);
/* A vote's timestamp is usable at now_wall_ms: within KCI_VOTE_AGE_MS_MAX. */
bool kci_vote_fresh(int64_t ts_ms, int64_t now_wall_ms);

#endif
