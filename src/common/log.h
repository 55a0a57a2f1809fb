/* log.h - one line per notable event, to stderr or a file.
 *
 * Format: "[pid] 2026/11/21 12:00:00.123456 [INF] text" like nats-server, so
 * operators can read both the same way. Levels: error, warn, info, debug
 * (-D), trace (-V). The logger is process-wide and not thread-safe to
 * configure; kci_log itself writes each line with one write(2). */
#ifndef KCI_LOG_H
#define KCI_LOG_H

#include <stdbool.h>
#include <stdint.h>

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

/* ---- rate-limited lines ---------------------------------------------------
 *
 * A warning a peer can trigger (a refused login, a refused accept, a slow
 * consumer) must not let that peer fill the disk or spend the loop's time
 * on write(2): a flood of bad CONNECTs wrote 15,000 lines a second. A
 * limiter lets one line through per interval; the lines held back meanwhile
 * are counted, and the next line that gets through says how many:
 *   "... Authorization Error (1234 more in the last 1s)"
 * So nothing is lost silently; a burst that stops for good leaves its last
 * count unsaid until the next such line. One limiter per call site
 * (KCI_LOG_LIMITED declares a static one); limiters are guarded by one
 * mutex, so a call site reached from several threads is safe. */
enum { KCI_LOG_LIMIT_INTERVAL_MS = 1000 };

typedef struct kci_log_limiter {
    int64_t last_line_ms;      /* monotonic; when the last line got through */
    uint64_t suppressed_count; /* lines held back since then */
    bool used;                 /* false: nothing logged yet (zeroed static) */
} kci_log_limiter;

/* The decision alone, with the clock passed in (tests drive it): true if a
 * line may be written at now_ms; then *suppressed_count_out is how many were
 * held back since the previous one and *window_ms_out how long ago that was.
 * Not locked: kci_log_limited locks around it. */
bool kci_log_limiter_admit(kci_log_limiter *limiter, int64_t now_ms, int64_t interval_ms,
                           uint64_t *suppressed_count_out, int64_t *window_ms_out);
/* kci_log through limiter, at most one line per KCI_LOG_LIMIT_INTERVAL_MS. */
void kci_log_limited(kci_log_limiter *limiter, kci_log_level level, const char *format, ...)
    __attribute__((format(printf, 3, 4)));

#define KCI_LOG_LIMITED(level, ...)                                                                \
    do {                                                                                           \
        static kci_log_limiter kci_call_site_limiter;                                              \
        kci_log_limited(&kci_call_site_limiter, level, __VA_ARGS__);                               \
    } while (0)
#define kci_error_limited(...) KCI_LOG_LIMITED(KCI_LOG_ERROR, __VA_ARGS__)
#define kci_warn_limited(...) KCI_LOG_LIMITED(KCI_LOG_WARN, __VA_ARGS__)
#define kci_info_limited(...) KCI_LOG_LIMITED(KCI_LOG_INFO, __VA_ARGS__)
#define kci_debug_limited(...) KCI_LOG_LIMITED(KCI_LOG_DEBUG, __VA_ARGS__)

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
