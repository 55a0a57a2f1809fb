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

/* Added by the implementation: */

/* The largest Unix time in ms a UUIDv7 can hold (48 bits, year 10889). */
#define KCI_UUID_TIME_MS_MAX ((int64_t)0xFFFFFFFFFFFF)

/* kci_uuid_v7 with the clock reading passed in (a test hook, and the core of
 * kci_uuid_v7): the id carries max(now_ms, the last id's time) and is still
 * greater than every id this process made before, whatever now_ms says. */
void kci_uuid_v7_at(kci_uuid *out, int64_t now_ms);
/* The version field (7 for ours, 4 for random ones). */
int kci_uuid_version(const kci_uuid *uuid);
/* True for the RFC 9562 variant (bits 10xx in byte 8). */
bool kci_uuid_variant_rfc(const kci_uuid *uuid);
/* True for the Nil (all 0) and Max (all 1) UUIDs, which name nothing. */
bool kci_uuid_is_nil_or_max(const kci_uuid *uuid);
/* < 0, 0, > 0 like memcmp: the byte order, which is time order for v7. */
int kci_uuid_compare(const kci_uuid *a, const kci_uuid *b);

#endif
