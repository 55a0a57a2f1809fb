/* verdict_chain.h - the hash chain of the verdicts on their JetStream stream
 * (verdict_js.h): each stored verdict carries "prev", the SHA-256 (hex) of
 * the stored bytes of the verdict just before it in the stream ("" for the
 * first), so a reader can check that nothing was changed, removed or slipped
 * in between (DESIGN.md: hash-chained logs). The writer can fill "prev"
 * truthfully because it appends only after the last verdict it has read
 * (Nats-Expected-Last-Sequence): the stream's order is the chain's.
 *
 * Pure: no I/O. The follower (verdict_js.c) and `kcobra arbiter verdicts
 * --verify` feed it the stream's messages in order. */
#ifndef KCI_VERDICT_CHAIN_H
#define KCI_VERDICT_CHAIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum {
    KCI_VERDICT_HASH_HEX_BYTES = 64, /* SHA-256 in hex, without the NUL */
};

#define KCI_VERDICT_PREV_KEY "prev"

typedef enum kci_verdict_link {
    KCI_VERDICT_LINK_OK = 0,     /* its prev is the hash of the message before it */
    KCI_VERDICT_LINK_ANCHOR = 1, /* the first one seen, after the stream's head was removed:
                                    accepted, not checked */
    KCI_VERDICT_LINK_BROKEN = 2, /* a wrong prev, a missing one, or a gap in the sequence */
} kci_verdict_link;

typedef struct kci_verdict_chain {
    uint64_t last_seq; /* 0: nothing seen */
    char last_hash[KCI_VERDICT_HASH_HEX_BYTES + 1];
    uint64_t checked; /* messages seen */
    uint64_t broken;  /* of them, KCI_VERDICT_LINK_BROKEN */
    uint64_t first_broken_seq;
} kci_verdict_chain;

/* The hex SHA-256 of the length bytes at data. */
void kci_verdict_hash(const void *data, size_t length, char hex[KCI_VERDICT_HASH_HEX_BYTES + 1]);
/* Adds the message stored at seq (its bytes as stored) to the chain; the
 * chain then ends at it, whatever the link's verdict. */
kci_verdict_link kci_verdict_chain_add(kci_verdict_chain *chain, uint64_t seq, const char *data,
                                       size_t length);

#endif
