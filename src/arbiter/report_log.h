/* report_log.h - the arbiter's durable record of the problem reports it
 * received (docs/arbiter.md, "Report analytics").
 *
 * Each well-formed report on kc.problem.<node> is appended, as it arrives
 * and before rate limiting or judging, to <data_dir>/arbiter-<id>.reports.jsonl
 * as one JSON line {"ts":<wall ms>,"node","reason","reporter","request_id"?}.
 * `kcobra arbiter reports` reads that file (report_stats.h): the reports
 * themselves are nowhere else (they are published, not requested, so the
 * persister never sees them, and the arbiter keeps only a bounded queue).
 *
 * Each line is one write(2) on an O_APPEND descriptor, not fsync'd: a kill
 * -9 of the arbiter loses nothing written, a machine crash may lose the
 * last lines, and a torn last line is skipped by the reader. The file is
 * capped at KCI_REPORT_LOG_BYTES_MAX; past it, reports are no longer
 * recorded (warned once) until the operator moves the file away. */
#ifndef KCI_ARBITER_REPORT_LOG_H
#define KCI_ARBITER_REPORT_LOG_H

#include <stddef.h>
#include <stdint.h>

#include "kingcobra/err.h"
#include "wire.h"

enum {
    KCI_REPORT_LOG_BYTES_MAX = 256 * 1024 * 1024,
    KCI_REPORT_LOG_LINE_BYTES_MAX = 1024, /* a line; longer ones are not ours: skipped */
};

typedef struct kci_report_log kci_report_log;

/* The file's path for an arbiter; false if it does not fit. */
bool kci_report_log_path(char *path, size_t path_size, const char *data_dir,
                         const char *arbiter_id);
/* Opens (creating) the file in data_dir; data_dir NULL: *out = NULL, no
 * record is kept, KC_OK. */
kc_err kci_report_log_open(kci_report_log **out, const char *data_dir, const char *arbiter_id,
                           char *error, size_t error_size);
/* Appends one report received at wall_ms. NULL log: nothing. Never fails
 * the caller: a write error is logged (at most once per minute). */
void kci_report_log_append(kci_report_log *log, const kci_report *report, int64_t wall_ms);
void kci_report_log_close(kci_report_log *log);

#endif
