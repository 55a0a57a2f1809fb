/* log.c - the process-wide logger (see log.h). Each line is formatted into a
 * stack buffer and written with a single write(2) so lines from different
 * threads never interleave mid-line. Lines longer than the buffer are cut.
 * Rate-limited lines (kci_log_limited) carry the count of the lines their
 * limiter held back as a suffix. */
#include "log.h"

#include <assert.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"

enum { LOG_LINE_BYTES_MAX = 2048, LOG_SUFFIX_BYTES_MAX = 64 };

static pthread_mutex_t limiter_mutex = PTHREAD_MUTEX_INITIALIZER;

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

/* Formats one line (prefix, the message, then suffix) and writes it. */
static void log_line(kci_log_level level, const char *suffix, const char *format, va_list args)
{
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
    if (used < sizeof line) {
        n = vsnprintf(line + used, sizeof line - used, format, args);
        if (n > 0) used += (size_t)n;
    }
    if (used < sizeof line && suffix[0] != '\0') {
        n = snprintf(line + used, sizeof line - used, "%s", suffix);
        if (n > 0) used += (size_t)n;
    }
    if (used > sizeof line - 2) used = sizeof line - 2;
    line[used++] = '\n';
    ssize_t ignored = write(log_fd, line, used);
    (void)ignored;
}

void kci_log(kci_log_level level, const char *format, ...)
{
    if (!kci_log_enabled(level)) return;
    va_list args;
    va_start(args, format);
    log_line(level, "", format, args);
    va_end(args);
}

bool kci_log_limiter_admit(kci_log_limiter *limiter, int64_t now_ms, int64_t interval_ms,
                           uint64_t *suppressed_count_out, int64_t *window_ms_out)
{
    assert(limiter != NULL && interval_ms > 0);
    if (limiter->used && now_ms - limiter->last_line_ms < interval_ms) {
        limiter->suppressed_count++;
        return false;
    }
    *suppressed_count_out = limiter->suppressed_count;
    *window_ms_out = limiter->used ? now_ms - limiter->last_line_ms : 0;
    limiter->used = true;
    limiter->last_line_ms = now_ms;
    limiter->suppressed_count = 0;
    return true;
}

void kci_log_limited(kci_log_limiter *limiter, kci_log_level level, const char *format, ...)
{
    if (!kci_log_enabled(level)) return;
    uint64_t suppressed_count = 0;
    int64_t window_ms = 0;
    pthread_mutex_lock(&limiter_mutex);
    bool admitted = kci_log_limiter_admit(limiter, kci_monotonic_ms(), KCI_LOG_LIMIT_INTERVAL_MS,
                                          &suppressed_count, &window_ms);
    pthread_mutex_unlock(&limiter_mutex);
    if (!admitted) return;
    char suffix[LOG_SUFFIX_BYTES_MAX] = "";
    if (suppressed_count > 0) {
        const int64_t ms_per_second = 1000;
        long long seconds = (long long)((window_ms + ms_per_second / 2) / ms_per_second);
        snprintf(suffix, sizeof suffix, " (%llu more in the last %llds)",
                 (unsigned long long)suppressed_count, seconds < 1 ? 1 : seconds);
    }
    va_list args;
    va_start(args, format);
    log_line(level, suffix, format, args);
    va_end(args);
}
