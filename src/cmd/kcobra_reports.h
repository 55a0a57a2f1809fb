/* kcobra_reports.h - `kcobra arbiter reports` (kcobra_reports.c), called by
 * kcobra_arbiter.c's dispatch with the flags it parsed. */
#ifndef KCOBRA_REPORTS_H
#define KCOBRA_REPORTS_H

#include <jansson.h>
#include <stdint.h>
#include <stdio.h>

#include "arbiter/config.h"
#include "kcobra_common.h"

typedef struct kcobra_reports_flags {
    const char *file;         /* the report file; else from --data-dir and --id */
    int64_t window_ms;        /* 0: the default (1 h) */
    int64_t since_ms;         /* a duration before now; 0: everything */
    const char *svg;          /* write the picture here ("-": stdout) */
    const char *burst_factor; /* a number > 0 */
    int64_t burst_min;        /* 0: the default */
} kcobra_reports_flags;

int kcobra_reports_run(const kcobra_command *command, const kcobra_invocation *invocation,
                       const kci_arbiter_settings *settings, const kcobra_reports_flags *flags);

/* The picture of an analysis (kcobra_reports_svg.c): reports per window
 * (bursts in red) above the who-reports-whom graph (rings in red, the
 * densest core circled). Returns false on a write error. */
bool kcobra_reports_svg_write(FILE *out, json_t *stats);

#endif
