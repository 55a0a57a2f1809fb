/* fuzz_parser.c - libFuzzer target for the protocol parser.
 *
 * The first byte chooses where to cut the rest into three reads. Besides
 * "no crash, no leak, no out-of-bounds", it checks the parser's central
 * property: the events reported for the split feed equal those for the
 * whole input, whatever the bytes are. */
#include <assert.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "../tests/broker/parser_recorder.h"

enum { CONTROL_LINE_MAX = 512, PAYLOAD_MAX = 4096 };

static recorder whole_record;
static recorder split_record;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2) return 0;
    uint8_t selector = data[0];
    data++;
    size--;
    memset(&whole_record, 0, sizeof whole_record);
    memset(&split_record, 0, sizeof split_record);
    kci_parser parser;
    kci_parser_init(&parser, CONTROL_LINE_MAX, PAYLOAD_MAX);
    recorder_feed_split(&whole_record, &parser, data, size, NULL, 0);
    kci_parser_release_buffers(&parser);

    size_t cuts[2] = {(size_t)(selector & 0x0f) * size / 16, (size_t)(selector >> 4) * size / 16};
    if (cuts[1] < cuts[0]) {
        size_t swap = cuts[0];
        cuts[0] = cuts[1];
        cuts[1] = swap;
    }
    kci_parser_init(&parser, CONTROL_LINE_MAX, PAYLOAD_MAX);
    recorder_feed_split(&split_record, &parser, data, size, cuts, 2);
    kci_parser_release_buffers(&parser);
    /* Errors may be found at different offsets, but what came before agrees. */
    size_t len = whole_record.len < split_record.len ? whole_record.len : split_record.len;
    const char *whole_error = strstr(whole_record.text, "ERROR[");
    const char *split_error = strstr(split_record.text, "ERROR[");
    if (whole_error == NULL && split_error == NULL) {
        assert(whole_record.len == split_record.len);
        assert(memcmp(whole_record.text, split_record.text, len) == 0);
    }
    return 0;
}
