/* log.c - the process-wide logger (see log.h). Each line is formatted into a
 * stack buffer and written with a single write(2) so lines from different
 * threads never interleave mid-line. Lines longer than the buffer are cut. */
#include "log.h"

#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

enum { LOG_LINE_BYTES_MAX = 2048 };

static kci_log_level log_level_max = KCI_LOG_INFO;
static bool log_with_time = true;
static int log_fd = 2;

void kci_log_configure(kci_log_level level_max, bool with_time)
{
    log_level_max = level_max;
    log_with_time = with_time;
}

int kci_log_open_file(const char *path)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0) return -1;
    if (log_fd > 2) close(log_fd);
    log_fd = fd;
    return 0;
}

bool kci_log_enabled(kci_log_level level)
{
    return level <= log_level_max;
}

static const char *level_tag(kci_log_level level)
{
    switch (level) {
    case KCI_LOG_ERROR: return "ERR";
    case KCI_LOG_WARN: return "WRN";
    case KCI_LOG_INFO: return "INF";
    case KCI_LOG_DEBUG: return "DBG";
    case KCI_LOG_TRACE: return "TRC";
    }
    return "???";
}

void kci_log(kci_log_level level, const char *format, ...)
{
    if (!kci_log_enabled(level)) return;
    char line[LOG_LINE_BYTES_MAX];
    size_t used = 0;
    int n = snprintf(line, sizeof line, "[%d] ", (int)getpid());
    if (n > 0) used = (size_t)n;
    if (log_with_time) {
        struct timeval now;
        gettimeofday(&now, NULL);
        struct tm tm_now;
        localtime_r(&now.tv_sec, &tm_now);
        used += strftime(line + used, sizeof line - used, "%Y/%m/%d %H:%M:%S", &tm_now);
        n = snprintf(line + used, sizeof line - used, ".%06ld ", (long)now.tv_usec);
        if (n > 0) used += (size_t)n;
    }
    n = snprintf(line + used, sizeof line - used, "[%s] ", level_tag(level));
    if (n > 0) used += (size_t)n;
    va_list args;
    va_start(args, format);
    n = vsnprintf(line + used, sizeof line - used, format, args);
    va_end(args);
    if (n > 0) used += (size_t)n;
    if (used > sizeof line - 2) used = sizeof line - 2;
    line[used++] = '\n';
    ssize_t ignored = write(log_fd, line, used);
    (void)ignored;
}
