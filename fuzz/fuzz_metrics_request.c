/* fuzz_metrics_request.c - libFuzzer target for the request classifier of
 * `--metrics-listen` (src/common/metrics_http.c), the only code of that
 * server that reads what a client sent.
 *
 * The input is what a client sends. It is classified whole and at prefix
 * lengths spread over it (as bytes arrive). Checks:
 *  - once a prefix is classified (not INCOMPLETE), every longer prefix and
 *    the whole input get the same answer: bytes after the head never
 *    change it, so the server may answer as soon as the head is in;
 *  - an input of KCI_METRICS_HTTP_REQUEST_BYTES_MAX bytes or more is never
 *    INCOMPLETE (the server never waits for more than its bound);
 *  - GET and HEAD answers are given only to requests that start with
 *    "GET /metrics" or "HEAD /metrics". */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/metrics_http.h"

enum { PREFIXES_CHECKED = 64 };

#define FUZZ_CHECK(condition)                                                                      \
    do {                                                                                           \
        if (!(condition)) abort();                                                                 \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool starts_with(const uint8_t *data, size_t size, const char *prefix)
{
    size_t len = strlen(prefix);
    return size >= len && memcmp(data, prefix, len) == 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *bytes = (const char *)data;
    kci_metrics_request whole = kci_metrics_request_classify(bytes, size);
    if (size >= KCI_METRICS_HTTP_REQUEST_BYTES_MAX)
        FUZZ_CHECK(whole != KCI_METRICS_REQUEST_INCOMPLETE);
    if (whole == KCI_METRICS_REQUEST_GET) FUZZ_CHECK(starts_with(data, size, "GET /metrics"));
    if (whole == KCI_METRICS_REQUEST_HEAD) FUZZ_CHECK(starts_with(data, size, "HEAD /metrics"));
    size_t step = size / PREFIXES_CHECKED + 1;
    kci_metrics_request settled = KCI_METRICS_REQUEST_INCOMPLETE;
    for (size_t len = 0; len <= size; len += step) {
        kci_metrics_request prefix = kci_metrics_request_classify(bytes, len);
        if (settled != KCI_METRICS_REQUEST_INCOMPLETE) FUZZ_CHECK(prefix == settled);
        settled = prefix;
    }
    if (settled != KCI_METRICS_REQUEST_INCOMPLETE) FUZZ_CHECK(whole == settled);
    return 0;
}
