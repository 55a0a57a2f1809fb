/* fuzz_cause.c - libFuzzer target for the Kc-Cause parser (service/cause.h).
 *
 * Input: the first byte picks a split point; the rest is the value, copied
 * into a buffer of exactly its size (a read past the length is an ASan
 * report). Checks: the value fed whole and fed in two pieces at the split
 * agree; an accepted value has 1..KCI_CAUSE_IDS_MAX distinct ids, is at most
 * KCI_CAUSE_TEXT_BYTES_MAX - 1 bytes, and its canonical text parses back to
 * the same ids and equals the input ignoring case; append of each id to the
 * canonical text changes nothing. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "service/cause.h"

#define FUZZ_CHECK(condition)                                                                      \
    do {                                                                                           \
        if (!(condition)) abort();                                                                 \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool feed_split(const char *value, size_t length, size_t split, kci_cause_parser *parser)
{
    kci_cause_parser_init(parser);
    return kci_cause_parser_feed(parser, value, split) &&
           kci_cause_parser_feed(parser, value + split, length - split) &&
           kci_cause_parser_finish(parser);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0) return 0;
    size_t length = size - 1;
    char *value = malloc(length > 0 ? length : 1);
    if (value == NULL) return 0;
    if (length > 0) memcpy(value, data + 1, length);
    size_t split = length > 0 ? data[0] % (length + 1) : 0;
    kci_uuid ids[KCI_CAUSE_IDS_MAX];
    size_t count = 0;
    const char *problem = NULL;
    bool accepted = kci_cause_parse(value, length, ids, &count, &problem);
    kci_cause_parser parser;
    FUZZ_CHECK(feed_split(value, length, split, &parser) == accepted);
    if (accepted) {
        FUZZ_CHECK(count >= 1 && count <= KCI_CAUSE_IDS_MAX && parser.id_count == count);
        FUZZ_CHECK(length < KCI_CAUSE_TEXT_BYTES_MAX);
        for (size_t first = 0; first < count; first++)
            for (size_t second = first + 1; second < count; second++)
                FUZZ_CHECK(kci_uuid_compare(&ids[first], &ids[second]) != 0);
        char text[KCI_CAUSE_TEXT_BYTES_MAX];
        kci_cause_format(ids, count, text);
        FUZZ_CHECK(strlen(text) == length && strncasecmp(text, value, length) == 0);
        char again[KCI_CAUSE_TEXT_BYTES_MAX];
        memcpy(again, text, sizeof text);
        for (size_t index = 0; index < count; index++) {
            char id[KC_UUID_TEXT_BYTES + 1];
            kci_uuid_format(&ids[index], id);
            FUZZ_CHECK(kci_cause_append(again, id) && strcmp(again, text) == 0);
        }
    } else {
        FUZZ_CHECK(problem != NULL && count == 0);
    }
    free(value);
    return 0;
}
