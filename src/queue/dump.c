/* dump.c - the one-line form of a record (see dump.h). */
#include "dump.h"

#include <ctype.h>
#include <string.h>

static void escaped(FILE *out, const char *bytes, size_t length)
{
    for (size_t index = 0; index < length; index++) {
        unsigned char byte = (unsigned char)bytes[index];
        switch (byte) {
        case '\n': fputs("\\n", out); break;
        case '\r': fputs("\\r", out); break;
        case '\t': fputs("\\t", out); break;
        case '\\': fputs("\\\\", out); break;
        default:
            if (byte < 0x20 || byte == 0x7f)
                fprintf(out, "\\x%02x", byte);
            else
                fputc(byte, out);
        }
    }
}

static void upper(FILE *out, const char *text)
{
    for (; *text != '\0'; text++)
        fputc(toupper((unsigned char)*text), out);
}

int kci_dump_line(FILE *out, const kci_record *record)
{
    char id[KC_UUID_TEXT_BYTES + 1];
    kci_uuid_format(&record->id, id);
    const char *name =
        kci_record_is_requeue(record) ? "requeue" : kci_record_kind_name(record->kind);
    upper(out, name != NULL ? name : "UNKNOWN");
    fprintf(out, "#%s#%lld.%u", id, (long long)record->ts_wall_ms, record->ts_counter);
    switch (record->kind) {
    case KCI_RECORD_OBSERVED_REQUEST:
    case KCI_RECORD_REQUEST: {
        const char *type = record->subject;
        size_t type_length = record->subject_length;
        if (type_length > 7 && memcmp(type, "kc.req.", 7) == 0) type += 7, type_length -= 7;
        fputc('#', out);
        escaped(out, type, type_length);
        fputc('#', out);
        escaped(out, record->client, record->client_length);
        fputc('#', out);
        escaped(out, record->payload, record->payload_length);
        break;
    }
    case KCI_RECORD_OBSERVED_REPLY:
    case KCI_RECORD_REPLY:
        fputc('#', out);
        escaped(out, record->client, record->client_length);
        fputc('#', out);
        escaped(out, record->reply, record->reply_length);
        fputc('#', out);
        escaped(out, record->payload, record->payload_length);
        break;
    case KCI_RECORD_REDELIVERY:
    case KCI_RECORD_TOMBSTONE: fprintf(out, "#%u", record->attempt); break;
    case KCI_RECORD_ACK: break;
    }
    fputc('\n', out);
    return ferror(out) ? -1 : 0;
}
