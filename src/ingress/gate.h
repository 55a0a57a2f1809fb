/* gate.h - the ingress's token: with `ingress { token }` set, the first
 * line of every connection must be AUTH#<token> (docs/ingress.md).
 *
 * A byte-at-a-time state machine over that first line only: it takes bytes
 * until the LF (a CR before it is dropped), at most
 * KCI_INGRESS_GATE_LINE_BYTES_MAX of them, and then compares the line with
 * "AUTH#" and the token in time that does not depend on where they differ.
 * What follows the LF is left to the seed-line parser. A line that is too
 * long, or the end of the input before a whole line, refuses. */
#ifndef KCI_INGRESS_GATE_H
#define KCI_INGRESS_GATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum {
    KCI_INGRESS_GATE_LINE_BYTES_MAX = 512, /* "AUTH#" and a token */
    KCI_INGRESS_TOKEN_BYTES_MAX = KCI_INGRESS_GATE_LINE_BYTES_MAX - 5,
};

typedef enum kci_gate_state {
    KCI_GATE_READING = 0, /* the first line is not whole yet */
    KCI_GATE_OPEN = 1,    /* it named the token */
    KCI_GATE_REFUSED = 2, /* it did not, or it was too long */
} kci_gate_state;

typedef struct kci_gate {
    kci_gate_state state;
    size_t length;
    char line[KCI_INGRESS_GATE_LINE_BYTES_MAX];
} kci_gate;

void kci_gate_init(kci_gate *gate);
/* Feeds bytes; *consumed says how many it took (up to and including the
 * first LF once it is READING). The state after. */
kci_gate_state kci_gate_feed(kci_gate *gate, const char *token, const uint8_t *bytes, size_t size,
                             size_t *consumed);

#endif
