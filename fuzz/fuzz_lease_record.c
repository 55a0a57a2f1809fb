/* fuzz_lease_record.c - libFuzzer target for the lease record parser
 * (src/service/lease_record.h).
 *
 * Input: the value of a lease's KV key, copied into a buffer of exactly its
 * size (a read past the length is an ASan report). Checks: what parses
 * formats back to the very same bytes (one spelling per record), and the
 * standby's and the holder's rules accept any parsed record without
 * tripping an assertion. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "service/lease_record.h"

#define FUZZ_CHECK(condition)                                                                      \
    do {                                                                                           \
        if (!(condition)) abort();                                                                 \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *value = malloc(size > 0 ? size : 1);
    if (value == NULL) return 0;
    if (size > 0) memcpy(value, data, size);
    kci_lease_record record;
    if (kci_lease_record_parse(value, size, &record) == KC_OK) {
        char text[KCI_LEASE_RECORD_BYTES_MAX + 1];
        size_t length = 0;
        FUZZ_CHECK(kci_lease_record_format(&record, text, sizeof(text), &length) == KC_OK);
        FUZZ_CHECK(length == size && memcmp(text, value, size) == 0);
        kci_lease_view view = {.present = true, .revision = 7, .parsed = true, .record = record};
        kci_lease_observation observation = {0};
        kci_lease_action action = kci_lease_decide(&observation, &view, "self/1", 1000, 100, 0);
        FUZZ_CHECK(action == KCI_LEASE_WAIT || action == KCI_LEASE_TAKE_OVER);
        kci_lease_verdict verdict = kci_lease_judge(&view, record.holder, 7);
        FUZZ_CHECK(verdict == KCI_LEASE_OURS || verdict == KCI_LEASE_DEPOSED);
    }
    free(value);
    return 0;
}
