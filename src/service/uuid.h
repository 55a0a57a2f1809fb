/* uuid.h - UUIDv7 (RFC 9562, section 5.7): 48 bits of Unix time in ms, then
 * a counter in rand_a that keeps ids from one process strictly increasing
 * even within one millisecond (RFC 9562 section 6.2, method 1), then random
 * bits. Thread-safe. */
#ifndef KCI_UUID_H
#define KCI_UUID_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kingcobra/kingcobra.h"

typedef struct kci_uuid {
    uint8_t bytes[16];
} kci_uuid;

/* A new id, greater than every id this process made before. */
void kci_uuid_v7(kci_uuid *out);
/* Lower-case hex with dashes, NUL-terminated: text holds 37 bytes. */
void kci_uuid_format(const kci_uuid *uuid, char text[KC_UUID_TEXT_BYTES + 1]);
/* Parses the 36-character form (either case); false if malformed. */
bool kci_uuid_parse(const char *text, size_t text_len, kci_uuid *out);
/* The Unix time in ms a UUIDv7 carries. */
int64_t kci_uuid_v7_time_ms(const kci_uuid *uuid);
/* Convenience: a new id straight to text. */
void kci_uuid_v7_text(char text[KC_UUID_TEXT_BYTES + 1]);

#endif
