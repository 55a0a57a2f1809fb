/* record.c - encoding and decoding log records (see record.h). Integers are
 * little-endian on disk whatever the host; the field copies are explicit so
 * the layout in record.h is the whole truth. */
#include "record.h"

#include <assert.h>
#include <string.h>

#include "crc32c.h"

enum {
    OFFSET_CRC = 4,
    OFFSET_LENGTH = 8,
    OFFSET_VERSION = 12,
    OFFSET_KIND = 13,
    OFFSET_FLAGS = 14,
    OFFSET_ID = 16,
    OFFSET_WALL_MS = 32,
    OFFSET_COUNTER = 40,
    OFFSET_SUBJECT_LENGTH = 44,
    OFFSET_REPLY_LENGTH = 46,
    OFFSET_CLIENT_LENGTH = 48,
    OFFSET_ATTEMPT = 50,
    OFFSET_PAYLOAD_LENGTH = 52,
    CHECKED_FROM = OFFSET_LENGTH, /* the crc covers everything after itself */
};

static void put16(uint8_t *out, uint16_t value)
{
    out[0] = (uint8_t)value;
    out[1] = (uint8_t)(value >> 8);
}

static void put32(uint8_t *out, uint32_t value)
{
    for (int index = 0; index < 4; index++)
        out[index] = (uint8_t)(value >> (8 * index));
}

static void put64(uint8_t *out, uint64_t value)
{
    for (int index = 0; index < 8; index++)
        out[index] = (uint8_t)(value >> (8 * index));
}

static uint16_t get16(const uint8_t *in)
{
    return (uint16_t)(in[0] | (in[1] << 8));
}

static uint32_t get32(const uint8_t *in)
{
    return (uint32_t)in[0] | ((uint32_t)in[1] << 8) | ((uint32_t)in[2] << 16) |
           ((uint32_t)in[3] << 24);
}

static uint64_t get64(const uint8_t *in)
{
    return (uint64_t)get32(in) | ((uint64_t)get32(in + 4) << 32);
}

const char *kci_record_kind_name(kci_record_kind kind)
{
    switch (kind) {
    case KCI_RECORD_REQUEST: return "request";
    case KCI_RECORD_REPLY: return "reply";
    case KCI_RECORD_ACK: return "ack";
    case KCI_RECORD_REDELIVERY: return "redelivery";
    case KCI_RECORD_TOMBSTONE: return "tombstone";
    case KCI_RECORD_OBSERVED_REQUEST: return "observed_request";
    case KCI_RECORD_OBSERVED_REPLY: return "observed_reply";
    }
    return NULL;
}

size_t kci_record_size(const kci_record *record)
{
    if (record->subject_length > KCI_RECORD_FIELD_BYTES_MAX ||
        record->reply_length > KCI_RECORD_FIELD_BYTES_MAX ||
        record->client_length > KCI_RECORD_FIELD_BYTES_MAX ||
        record->payload_length > KCI_RECORD_PAYLOAD_BYTES_MAX)
        return 0;
    size_t size = (size_t)KCI_RECORD_HEADER_BYTES + record->subject_length + record->reply_length +
                  record->client_length + record->payload_length;
    assert(size >= KCI_RECORD_HEADER_BYTES && size <= KCI_RECORD_BYTES_MAX);
    return size;
}

static uint8_t *put_field(uint8_t *out, const void *bytes, size_t length)
{
    assert(length == 0 || bytes != NULL);
    if (length > 0) memcpy(out, bytes, length);
    return out + length;
}

size_t kci_record_encode(const kci_record *record, uint8_t *out)
{
    size_t size = kci_record_size(record);
    assert(size >= KCI_RECORD_HEADER_BYTES);
    assert(record->kind >= KCI_RECORD_KIND_FIRST && record->kind <= KCI_RECORD_KIND_LAST);
    memcpy(out, KCI_RECORD_MAGIC_TEXT, 4);
    put32(out + OFFSET_LENGTH, (uint32_t)size);
    out[OFFSET_VERSION] = KCI_RECORD_VERSION;
    out[OFFSET_KIND] = (uint8_t)record->kind;
    put16(out + OFFSET_FLAGS, 0);
    memcpy(out + OFFSET_ID, record->id.bytes, sizeof record->id.bytes);
    put64(out + OFFSET_WALL_MS, (uint64_t)record->ts_wall_ms);
    put32(out + OFFSET_COUNTER, record->ts_counter);
    put16(out + OFFSET_SUBJECT_LENGTH, record->subject_length);
    put16(out + OFFSET_REPLY_LENGTH, record->reply_length);
    put16(out + OFFSET_CLIENT_LENGTH, record->client_length);
    put16(out + OFFSET_ATTEMPT, record->attempt);
    put32(out + OFFSET_PAYLOAD_LENGTH, record->payload_length);
    uint8_t *cursor = out + KCI_RECORD_HEADER_BYTES;
    cursor = put_field(cursor, record->subject, record->subject_length);
    cursor = put_field(cursor, record->reply, record->reply_length);
    cursor = put_field(cursor, record->client, record->client_length);
    cursor = put_field(cursor, record->payload, record->payload_length);
    assert((size_t)(cursor - out) == size);
    put32(out + OFFSET_CRC, kci_crc32c(0, out + CHECKED_FROM, size - CHECKED_FROM));
    /* What a reader will check first: the header claims exactly these bytes. */
    size_t claimed = 0;
    bool header_read = kci_record_header_length(out, size, &claimed);
    assert(header_read && claimed == size);
    (void)header_read;
    return size;
}

static bool all_zero(const uint8_t *bytes, size_t length)
{
    for (size_t index = 0; index < length; index++)
        if (bytes[index] != 0) return false;
    return true;
}

/* The header alone: magic, version, kind, flags and the length arithmetic. */
static kci_record_status check_header(const uint8_t *bytes, size_t *record_bytes)
{
    if (memcmp(bytes, KCI_RECORD_MAGIC_TEXT, 4) != 0)
        return all_zero(bytes, KCI_RECORD_HEADER_BYTES) ? KCI_RECORD_ZERO : KCI_RECORD_CORRUPT;
    uint8_t kind = bytes[OFFSET_KIND];
    if (bytes[OFFSET_VERSION] != KCI_RECORD_VERSION || kind < KCI_RECORD_KIND_FIRST ||
        kind > KCI_RECORD_KIND_LAST || get16(bytes + OFFSET_FLAGS) != 0)
        return KCI_RECORD_CORRUPT;
    uint32_t subject_length = get16(bytes + OFFSET_SUBJECT_LENGTH);
    uint32_t reply_length = get16(bytes + OFFSET_REPLY_LENGTH);
    uint32_t client_length = get16(bytes + OFFSET_CLIENT_LENGTH);
    uint32_t payload_length = get32(bytes + OFFSET_PAYLOAD_LENGTH);
    if (subject_length > KCI_RECORD_FIELD_BYTES_MAX || reply_length > KCI_RECORD_FIELD_BYTES_MAX ||
        client_length > KCI_RECORD_FIELD_BYTES_MAX || payload_length > KCI_RECORD_PAYLOAD_BYTES_MAX)
        return KCI_RECORD_CORRUPT;
    uint64_t expected = (uint64_t)KCI_RECORD_HEADER_BYTES + subject_length + reply_length +
                        client_length + payload_length;
    if (get32(bytes + OFFSET_LENGTH) != expected) return KCI_RECORD_CORRUPT;
    assert(expected >= KCI_RECORD_HEADER_BYTES && expected <= KCI_RECORD_BYTES_MAX);
    *record_bytes = (size_t)expected;
    return KCI_RECORD_OK;
}

bool kci_record_header_length(const uint8_t *bytes, size_t available, size_t *record_bytes)
{
    if (available < KCI_RECORD_HEADER_BYTES) return false;
    size_t length = 0;
    if (check_header(bytes, &length) != KCI_RECORD_OK) return false;
    assert(length >= KCI_RECORD_HEADER_BYTES);
    *record_bytes = length;
    return true;
}

kci_record_status kci_record_decode(const uint8_t *bytes, size_t available, kci_record *out,
                                    size_t *record_bytes)
{
    *record_bytes = 0;
    if (available < KCI_RECORD_HEADER_BYTES) return KCI_RECORD_NEED_MORE;
    size_t length = 0;
    kci_record_status status = check_header(bytes, &length);
    if (status != KCI_RECORD_OK) return status;
    *record_bytes = length;
    if (available < length) return KCI_RECORD_NEED_MORE;
    if (kci_crc32c(0, bytes + CHECKED_FROM, length - CHECKED_FROM) != get32(bytes + OFFSET_CRC)) {
        *record_bytes = 0;
        return KCI_RECORD_CORRUPT;
    }
    memset(out, 0, sizeof *out);
    out->kind = (kci_record_kind)bytes[OFFSET_KIND];
    memcpy(out->id.bytes, bytes + OFFSET_ID, sizeof out->id.bytes);
    out->ts_wall_ms = (int64_t)get64(bytes + OFFSET_WALL_MS);
    out->ts_counter = get32(bytes + OFFSET_COUNTER);
    out->attempt = get16(bytes + OFFSET_ATTEMPT);
    out->subject_length = get16(bytes + OFFSET_SUBJECT_LENGTH);
    out->reply_length = get16(bytes + OFFSET_REPLY_LENGTH);
    out->client_length = get16(bytes + OFFSET_CLIENT_LENGTH);
    out->payload_length = get32(bytes + OFFSET_PAYLOAD_LENGTH);
    const char *cursor = (const char *)bytes + KCI_RECORD_HEADER_BYTES;
    out->subject = cursor;
    cursor += out->subject_length;
    out->reply = cursor;
    cursor += out->reply_length;
    out->client = cursor;
    cursor += out->client_length;
    out->payload = cursor;
    assert((size_t)(cursor + out->payload_length - (const char *)bytes) == length);
    /* Encode and decode agree on the size of what was decoded. */
    assert(kci_record_size(out) == length);
    return KCI_RECORD_OK;
}
