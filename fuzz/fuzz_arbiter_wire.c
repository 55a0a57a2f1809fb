/* fuzz_arbiter_wire.c - libFuzzer target for the arbiter's parsers of
 * problem reports and votes (src/arbiter/wire.c), the messages any client
 * of the fabric can send it.
 *
 * The first byte picks the parser and the subject's node ("n1" or a name
 * taken from the input); the rest is the payload. Checks: no crash or
 * sanitizer report; on success every name is one valid subject token of
 * bounded length, the report's node equals the subject's, its reason is
 * known, its request id is empty or a UUID, and parsing is deterministic
 * (a second parse of the same bytes gives the same result). */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "arbiter/wire.h"
#include "service/headers.h"
#include "service/uuid.h"

#define FUZZ_CHECK(condition)                                                                      \
    do {                                                                                           \
        if (!(condition)) abort();                                                                 \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_report(const char *subject_node, const char *payload, size_t length)
{
    kci_report report, again;
    const char *why = kci_report_parse(&report, subject_node, NULL, payload, length);
    const char *why_again = kci_report_parse(&again, subject_node, NULL, payload, length);
    FUZZ_CHECK((why == NULL) == (why_again == NULL));
    if (why != NULL) return;
    FUZZ_CHECK(memcmp(&report, &again, sizeof report) == 0);
    FUZZ_CHECK(kci_token_valid(report.node) && kci_token_valid(report.reporter));
    FUZZ_CHECK(strcmp(report.node, subject_node) == 0);
    FUZZ_CHECK(report.reason >= KC_PROBLEM_WRONG_ANSWER && report.reason <= KC_PROBLEM_OTHER);
    kci_uuid uuid;
    FUZZ_CHECK(report.request_id[0] == '\0' ||
               kci_uuid_parse(report.request_id, strlen(report.request_id), &uuid));
}

static void check_vote(const char *payload, size_t length)
{
    kci_vote vote;
    if (kci_vote_parse(&vote, payload, length) != NULL) return;
    FUZZ_CHECK(kci_token_valid(vote.arbiter) && kci_token_valid(vote.node));
    FUZZ_CHECK(vote.kind == KCI_VOTE_QUARANTINE || vote.kind == KCI_VOTE_CLEAR);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0) return 0;
    const char *payload = (const char *)data + 1;
    size_t length = size - 1;
    switch (data[0] % 3) {
    case 0: check_report("n1", payload, length); break;
    case 1: check_vote(payload, length); break;
    default: {
        /* the subject's node: the input up to its first NUL, at most 128 bytes */
        char node[KC_NODE_BYTES_MAX + 1];
        size_t node_length =
            strnlen(payload, length < KC_NODE_BYTES_MAX ? length : KC_NODE_BYTES_MAX);
        memcpy(node, payload, node_length);
        node[node_length] = '\0';
        size_t skip = node_length < length ? node_length + 1 : length;
        check_report(node, payload + skip, length - skip);
    }
    }
    return 0;
}
