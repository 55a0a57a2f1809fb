/* fuzz_ingress_gate.c - libFuzzer target for the ingress's token line
 * (src/ingress/gate.c).
 *
 * The first input byte picks a token length (1..32; the token is the next
 * bytes, LF and CR replaced); the rest is the stream, fed all at once and
 * one byte at a time. Checks: both end in the same state having consumed
 * the same bytes; a feed never consumes more than it was given, and stops
 * right after the first LF; the gate opens only on a line equal to
 * "AUTH#" and the token (a CR before the LF allowed); the kept line never
 * passes its bound. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ingress/gate.h"

#define FUZZ_CHECK(condition)                                                                      \
    do {                                                                                           \
        if (!(condition)) abort();                                                                 \
    } while (0)

enum { TOKEN_BYTES_MAX = 32 };

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* What the gate should say of the stream, computed the obvious way. */
static kci_gate_state expected_state(const char *token, const uint8_t *bytes, size_t size,
                                     size_t *line_end)
{
    const uint8_t *lf = memchr(bytes, '\n', size);
    size_t length = lf != NULL ? (size_t)(lf - bytes) : size;
    if (length > KCI_INGRESS_GATE_LINE_BYTES_MAX) return *line_end = 0, KCI_GATE_REFUSED;
    if (lf == NULL) return *line_end = size, KCI_GATE_READING;
    *line_end = length + 1;
    if (length > 0 && bytes[length - 1] == '\r') length--;
    size_t token_length = strlen(token);
    bool open = length == 5 + token_length && memcmp(bytes, "AUTH#", 5) == 0 &&
                memcmp(bytes + 5, token, token_length) == 0;
    return open ? KCI_GATE_OPEN : KCI_GATE_REFUSED;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    size_t token_length = 1 + data[0] % TOKEN_BYTES_MAX;
    if (size < 1 + token_length) return 0;
    char token[TOKEN_BYTES_MAX + 1];
    for (size_t i = 0; i < token_length; i++)
        token[i] = data[1 + i] == '\n' || data[1 + i] == '\r' || data[1 + i] == '\0'
                       ? 'x'
                       : (char)data[1 + i];
    token[token_length] = '\0';
    const uint8_t *stream = data + 1 + token_length;
    size_t stream_size = size - 1 - token_length;
    kci_gate whole, bytewise;
    kci_gate_init(&whole);
    kci_gate_init(&bytewise);
    size_t consumed_whole = 0, consumed_bytewise = 0;
    kci_gate_state state_whole = kci_gate_feed(&whole, token, stream, stream_size, &consumed_whole);
    FUZZ_CHECK(consumed_whole <= stream_size && whole.length <= sizeof whole.line);
    kci_gate_state state_bytewise = KCI_GATE_READING;
    for (size_t i = 0; i < stream_size && state_bytewise == KCI_GATE_READING; i++) {
        size_t consumed = 0;
        state_bytewise = kci_gate_feed(&bytewise, token, stream + i, 1, &consumed);
        FUZZ_CHECK(consumed == 1);
        consumed_bytewise += consumed;
    }
    FUZZ_CHECK(state_whole == state_bytewise && consumed_whole == consumed_bytewise);
    size_t line_end = 0;
    kci_gate_state expected = expected_state(token, stream, stream_size, &line_end);
    FUZZ_CHECK(state_whole == expected);
    if (expected != KCI_GATE_REFUSED || line_end > 0) FUZZ_CHECK(consumed_whole == line_end);
    return 0;
}
