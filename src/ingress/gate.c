/* gate.c - the ingress's token line (gate.h). */
#include "gate.h"

#include <assert.h>
#include <string.h>

#define AUTH_PREFIX "AUTH#"

void kci_gate_init(kci_gate *gate)
{
    memset(gate, 0, sizeof *gate);
}

/* Compares the whole of both, whatever their first difference. */
static bool equal_constant_time(const char *given, size_t given_length, const char *expected,
                                size_t expected_length)
{
    unsigned char difference = given_length != expected_length;
    for (size_t i = 0; i < given_length; i++)
        difference |= (unsigned char)(given[i] ^ (i < expected_length ? expected[i] : 0));
    return difference == 0;
}

static kci_gate_state judge(kci_gate *gate, const char *token)
{
    size_t length = gate->length;
    if (length > 0 && gate->line[length - 1] == '\r') length--;
    size_t prefix = sizeof AUTH_PREFIX - 1;
    bool open = length >= prefix && memcmp(gate->line, AUTH_PREFIX, prefix) == 0 &&
                equal_constant_time(gate->line + prefix, length - prefix, token, strlen(token));
    return open ? KCI_GATE_OPEN : KCI_GATE_REFUSED;
}

kci_gate_state kci_gate_feed(kci_gate *gate, const char *token, const uint8_t *bytes, size_t size,
                             size_t *consumed)
{
    assert(gate->length <= sizeof gate->line);
    *consumed = 0;
    while (gate->state == KCI_GATE_READING && *consumed < size) {
        uint8_t byte = bytes[(*consumed)++];
        if (byte == '\n') {
            gate->state = judge(gate, token);
        } else if (gate->length == sizeof gate->line) {
            gate->state = KCI_GATE_REFUSED;
        } else {
            gate->line[gate->length++] = (char)byte;
        }
    }
    if (gate->state != KCI_GATE_READING) memset(gate->line, 0, sizeof gate->line); /* the token */
    return gate->state;
}
