/* fuzz_report_line.c - libFuzzer target for a line of the arbiter's report
 * file (kci_report_line_parse, src/arbiter/report_set.c), which `kcobra
 * arbiter reports` reads from disk. Checks: an accepted line has a
 * non-negative time, a reason among ours and names that are subject tokens
 * within KC_NODE_BYTES_MAX; the set accepts what the parser accepted; and
 * parsing is deterministic. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "arbiter/report_stats.h"
#include "service/headers.h"

#define FUZZ_CHECK(condition)                                                                      \
    do {                                                                                           \
        if (!(condition)) abort();                                                                 \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int64_t ts = 0, ts_again = 0;
    char node[KC_NODE_BYTES_MAX + 1], reporter[KC_NODE_BYTES_MAX + 1];
    char node_again[KC_NODE_BYTES_MAX + 1], reporter_again[KC_NODE_BYTES_MAX + 1];
    kc_problem_reason reason, reason_again;
    bool ok = kci_report_line_parse((const char *)data, size, &ts, node, reporter, &reason);
    bool again = kci_report_line_parse((const char *)data, size, &ts_again, node_again,
                                       reporter_again, &reason_again);
    FUZZ_CHECK(ok == again);
    if (!ok) return 0;
    FUZZ_CHECK(ts == ts_again && reason == reason_again && strcmp(node, node_again) == 0 &&
               strcmp(reporter, reporter_again) == 0);
    FUZZ_CHECK(ts >= 0 && reason >= KC_PROBLEM_WRONG_ANSWER && reason <= KC_PROBLEM_OTHER);
    FUZZ_CHECK(kci_token_valid(node) && kci_token_valid(reporter));
    kci_report_set set;
    kci_report_set_init(&set);
    FUZZ_CHECK(kci_report_set_add(&set, ts, node, reporter, reason) == KC_OK && set.count == 1);
    kci_report_set_free(&set);
    return 0;
}
