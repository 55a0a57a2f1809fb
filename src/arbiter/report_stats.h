/* report_stats.h - analytics of the problem reports an arbiter recorded
 * (report_log.h; docs/arbiter.md, "Report analytics"): the patterns of
 * corruption the design notes ask for.
 *
 *  - counts by node (the accused), reason and reporter, in total and per
 *    time window (window_ms, aligned on multiples of it since the epoch);
 *  - bursts: a window in which a node is reported at least
 *    burst_factor x (its baseline + 1) times, and at least burst_count_min
 *    times, where its baseline is its mean count per window over the
 *    windows before (from the first window analysed), judged only once
 *    baseline_windows_min windows lie before it;
 *  - the who-reports-whom graph (reporter -> accused, weighted by
 *    reports) and its dense clusters with the econ tools (src/econ/):
 *    strongly connected components of two or more nodes ("rings": each
 *    member reports, directly or through the others, every other) with one
 *    shortest cycle each, and the k-core of largest k (k >= 2).
 *
 * The set interns names, so a record is 16 bytes; the answer is one JSON
 * object (below), which `kcobra arbiter reports` prints or draws. */
#ifndef KCI_ARBITER_REPORT_STATS_H
#define KCI_ARBITER_REPORT_STATS_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "econ/graph.h"
#include "kingcobra/kingcobra.h"

enum {
    KCI_REPORT_RECORDS_MAX = 16 * 1000 * 1000, /* a file's records analysed */
    KCI_REPORT_NAMES_MAX = 1000 * 1000,        /* distinct node and reporter names */
    KCI_REPORT_WINDOWS_MAX = 100 * 1000,       /* windows in the analysed span */
    KCI_REPORT_REASONS = KC_PROBLEM_OTHER + 1,
};

typedef struct kci_report_record {
    int64_t ts_ms;
    uint32_t node;     /* name index */
    uint32_t reporter; /* name index */
} kci_report_record;

typedef struct kci_report_set {
    kci_report_record *records;
    uint8_t *reasons; /* per record, a kc_problem_reason */
    size_t count, capacity;
    char **names;
    size_t name_count, name_capacity;
    json_t *name_index; /* name -> index */
    uint64_t skipped;   /* lines that were not a report (torn, corrupt, foreign) */
} kci_report_set;

typedef struct kci_report_stats_params {
    int64_t since_ms;  /* reports before are left out; 0: none */
    int64_t window_ms; /* > 0 */
    double burst_factor;
    int64_t burst_count_min;
    int64_t baseline_windows_min;
} kci_report_stats_params;

void kci_report_stats_params_default(kci_report_stats_params *params);

void kci_report_set_init(kci_report_set *set);
void kci_report_set_free(kci_report_set *set);
/* KC_ERR_NOMEM, or KC_ERR_TOO_LARGE past a bound. */
kc_err kci_report_set_add(kci_report_set *set, int64_t ts_ms, const char *node,
                          const char *reporter, kc_problem_reason reason);
/* One line of the report file (without its LF); false: not a report. */
bool kci_report_line_parse(const char *line, size_t length, int64_t *ts_ms, char *node,
                           char *reporter, kc_problem_reason *reason);
/* Reads a report file; lines that are not reports are counted in skipped. */
kc_err kci_report_set_load(kci_report_set *set, const char *path, kci_econ_error *error);

/* The answer:
 * {"reports":N,"skipped":N,"since_ms","window_ms","first_ms","last_ms",
 *  "totals":{"by_node":{name:N},"by_reason":{..},"by_reporter":{..}},
 *  "windows":[{"start_ms","total","by_node","by_reason","by_reporter"}] (non-empty ones),
 *  "bursts":[{"node","start_ms","count","baseline","threshold"}],
 *  "graph":{"edges":[{"from","to","reports"}],"k_max":k,"core":[names],
 *           "rings":[{"members":[..],"reports":N,"cycle":[..]}]},
 *  "params":{...}} */
kc_err kci_report_stats_run(const kci_report_set *set, const kci_report_stats_params *params,
                            json_t **out, kci_econ_error *error);

#endif
