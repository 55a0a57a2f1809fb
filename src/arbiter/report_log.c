/* report_log.c - appending received problem reports to the arbiter's
 * report file (report_log.h). The caller holds the arbiter's lock, so one
 * appender at a time; a line is built in a stack buffer and written with a
 * single write(2) so a concurrent reader never sees half of it except at
 * the very end of the file. */
#include "report_log.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/log.h"

enum {
    PATH_BYTES_MAX = 4096,
    WARN_INTERVAL_MS = 60 * 1000,
};

struct kci_report_log {
    int fd;
    int64_t bytes;          /* the file's size as we know it */
    int64_t warned_wall_ms; /* the last warning; 0: none */
    bool full_warned;
    char path[PATH_BYTES_MAX];
};

bool kci_report_log_path(char *path, size_t path_size, const char *data_dir, const char *arbiter_id)
{
    int wrote = snprintf(path, path_size, "%s/arbiter-%s.reports.jsonl", data_dir, arbiter_id);
    return wrote > 0 && (size_t)wrote < path_size;
}

kc_err kci_report_log_open(kci_report_log **out, const char *data_dir, const char *arbiter_id,
                           char *error, size_t error_size)
{
    *out = NULL;
    if (data_dir == NULL) return KC_OK;
    kci_report_log *log = calloc(1, sizeof *log);
    if (log == NULL) return KC_ERR_NOMEM;
    if (!kci_report_log_path(log->path, sizeof log->path, data_dir, arbiter_id)) {
        snprintf(error, error_size, "arbiter: the report file's path is too long");
        free(log);
        return KC_ERR_CONFIG;
    }
    log->fd = open(log->path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
    struct stat status;
    if (log->fd < 0 || fstat(log->fd, &status) != 0) {
        snprintf(error, error_size, "arbiter: cannot open %s: %s", log->path, strerror(errno));
        if (log->fd >= 0) close(log->fd);
        free(log);
        return KC_ERR_IO;
    }
    log->bytes = (int64_t)status.st_size;
    *out = log;
    return KC_OK;
}

static void warn(kci_report_log *log, int64_t wall_ms, const char *why)
{
    if (log->warned_wall_ms != 0 && wall_ms - log->warned_wall_ms < WARN_INTERVAL_MS) return;
    log->warned_wall_ms = wall_ms;
    kci_warn("arbiter: cannot record a report in %s: %s", log->path, why);
}

void kci_report_log_append(kci_report_log *log, const kci_report *report, int64_t wall_ms)
{
    if (log == NULL) return;
    /* jansson escapes: a subject token may still hold a quote. */
    json_t *record =
        json_pack("{s:I,s:s,s:s,s:s}", "ts", (json_int_t)wall_ms, "node", report->node, "reason",
                  kc_problem_reason_name(report->reason), "reporter", report->reporter);
    if (record != NULL && report->request_id[0] != '\0')
        json_object_set_new(record, "request_id", json_string(report->request_id));
    char line[KCI_REPORT_LOG_LINE_BYTES_MAX];
    int wrote = record != NULL ? (int)json_dumpb(record, line, sizeof line - 1, JSON_COMPACT) : 0;
    json_decref(record);
    if (wrote <= 0 || (size_t)wrote >= sizeof line - 1) return;
    line[wrote++] = '\n';
    if (log->bytes + wrote > KCI_REPORT_LOG_BYTES_MAX) {
        if (!log->full_warned)
            kci_warn("arbiter: %s is full (%d bytes): reports are no longer recorded until it is "
                     "moved away",
                     log->path, KCI_REPORT_LOG_BYTES_MAX);
        log->full_warned = true;
        return;
    }
    ssize_t written = write(log->fd, line, (size_t)wrote);
    if (written == (ssize_t)wrote)
        log->bytes += wrote;
    else
        warn(log, wall_ms, written < 0 ? strerror(errno) : "short write");
}

void kci_report_log_close(kci_report_log *log)
{
    if (log == NULL) return;
    close(log->fd);
    free(log);
}
