/* verdict_chain.c - the verdicts' hash chain (verdict_chain.h). */
#include "arbiter/verdict_chain.h"

#include <jansson.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void kci_verdict_hash(const void *data, size_t length, char hex[KCI_VERDICT_HASH_HEX_BYTES + 1])
{
    unsigned char digest[crypto_hash_sha256_BYTES];
    if (sodium_init() < 0) abort(); /* once per process; cheap after; fails only without memory */
    crypto_hash_sha256(digest, data, length);
    sodium_bin2hex(hex, KCI_VERDICT_HASH_HEX_BYTES + 1, digest, sizeof digest);
}

/* Whether the message is a JSON object whose string "prev" is expected. */
static bool prev_matches(const char *data, size_t length, const char *expected)
{
    json_t *root = json_loadb(data, length, 0, NULL);
    const char *prev = json_string_value(json_object_get(root, KCI_VERDICT_PREV_KEY));
    bool matches = prev != NULL && strcmp(prev, expected) == 0;
    json_decref(root);
    return matches;
}

kci_verdict_link kci_verdict_chain_add(kci_verdict_chain *chain, uint64_t seq, const char *data,
                                       size_t length)
{
    kci_verdict_link link;
    if (chain->last_seq == 0 && seq > 1)
        link = KCI_VERDICT_LINK_ANCHOR; /* what came before is gone: nothing to check against */
    else if (seq != chain->last_seq + 1)
        link = KCI_VERDICT_LINK_BROKEN; /* a message removed, or out of order */
    else
        link = prev_matches(data, length, chain->last_seq == 0 ? "" : chain->last_hash)
                   ? KCI_VERDICT_LINK_OK
                   : KCI_VERDICT_LINK_BROKEN;
    chain->checked++;
    if (link == KCI_VERDICT_LINK_BROKEN && chain->broken++ == 0) chain->first_broken_seq = seq;
    chain->last_seq = seq;
    kci_verdict_hash(data, length, chain->last_hash);
    return link;
}
