/* log.h - one line per notable event, to stderr or a file.
 *
 * Format: "[pid] 2026/11/21 12:00:00.123456 [INF] text" like nats-server, so
 * operators can read both the same way. Levels: error, warn, info, debug
 * (-D), trace (-V). The logger is process-wide and not thread-safe to
 * configure; kci_log itself writes each line with one write(2). */
#ifndef KCI_LOG_H
#define KCI_LOG_H

#include <stdbool.h>

typedef enum kci_log_level {
    KCI_LOG_ERROR = 0,
    KCI_LOG_WARN = 1,
    KCI_LOG_INFO = 2,
    KCI_LOG_DEBUG = 3,
    KCI_LOG_TRACE = 4,
} kci_log_level;

/* Sets the most verbose level written, and whether to prefix a timestamp. */
void kci_log_configure(kci_log_level level_max, bool with_time);
/* Sends lines to path (appended) instead of stderr; returns 0 or -1. */
int kci_log_open_file(const char *path);
bool kci_log_enabled(kci_log_level level);
void kci_log(kci_log_level level, const char *format, ...) __attribute__((format(printf, 2, 3)));

#define kci_error(...) kci_log(KCI_LOG_ERROR, __VA_ARGS__)
#define kci_warn(...) kci_log(KCI_LOG_WARN, __VA_ARGS__)
#define kci_info(...) kci_log(KCI_LOG_INFO, __VA_ARGS__)
#define kci_debug(...)                                                                             \
    do {                                                                                           \
        if (kci_log_enabled(KCI_LOG_DEBUG)) kci_log(KCI_LOG_DEBUG, __VA_ARGS__);                   \
    } while (0)
#define kci_trace(...)                                                                             \
    do {                                                                                           \
        if (kci_log_enabled(KCI_LOG_TRACE)) kci_log(KCI_LOG_TRACE, __VA_ARGS__);                   \
    } while (0)

#endif
