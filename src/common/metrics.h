/* metrics.h - counters, gauges and histograms that the parts bump on their
 * hot paths, a process-wide registry of them, and a writer of the
 * Prometheus text exposition format 0.0.4 (docs/operations.md lists the
 * names).
 *
 * A part declares its metrics once, as static storage (a kci_metric table
 * in a kci_metric_set), and registers the set when it starts; the registry
 * keeps pointers, never copies. Bumping a metric is one relaxed atomic
 * operation: no lock, no allocation, no system call. Rendering (a scrape)
 * reads each value with a relaxed load; a histogram's count is the sum of
 * its buckets as read, so its +Inf bucket always equals its _count.
 *
 * Values are process-wide: a process runs one of each component (kcobrad,
 * or `kcobra <part> serve`), and a component stopped and started again by
 * a reload keeps counting from where it was. */
#ifndef KCI_METRICS_H
#define KCI_METRICS_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum {
    KCI_HISTOGRAM_BOUNDS_MAX = 24, /* finite buckets; +Inf comes on top */
    KCI_METRIC_SETS_MAX = 32,      /* registered sets (one or two per part) */
    KCI_METRIC_LABEL_VALUES_MAX = 64,
    KCI_METRICS_TEXT_BYTES_MAX = 1024 * 1024, /* one scrape's answer */
};

typedef struct kci_counter {
    _Atomic uint64_t value;
} kci_counter;

typedef struct kci_gauge {
    _Atomic int64_t value;
} kci_gauge;

/* Observations are integers in the metric's own unit (nanoseconds, a
 * count); bounds are in that unit too, ascending, so observing compares
 * integers. The metric's scale turns them into the base unit on output. */
typedef struct kci_histogram {
    const uint64_t *bounds;
    uint32_t bound_count;                                   /* at most KCI_HISTOGRAM_BOUNDS_MAX */
    _Atomic uint64_t buckets[KCI_HISTOGRAM_BOUNDS_MAX + 1]; /* not cumulative; last: +Inf */
    _Atomic uint64_t sum;
} kci_histogram;

typedef enum kci_metric_type {
    KCI_METRIC_COUNTER = 0,
    KCI_METRIC_GAUGE = 1,
    KCI_METRIC_HISTOGRAM = 2,
} kci_metric_type;

/* One family. Without a label it has one series; with one, a series per
 * label value, all present from the start (a reason never seen shows 0). */
typedef struct kci_metric {
    const char *name; /* kcobra_<part>_..., base unit last, _total on counters */
    const char *help;
    kci_metric_type type;
    double scale;                    /* histograms: the base unit per observed unit (1e-9) */
    const char *label;               /* NULL: no label */
    const char *const *label_values; /* series_count of them when label is set */
    uint32_t series_count;           /* entries of the array below */
    union {
        kci_counter *counters;
        kci_gauge *gauges;
        kci_histogram *histograms;
    } series;
} kci_metric;

typedef struct kci_metric_set {
    const kci_metric *metrics;
    size_t count;
} kci_metric_set;

/* Rows of a part's kci_metric table (static storage). */
#define KCI_COUNTER_METRIC(metric_name, text, counter)                                             \
    {                                                                                              \
        .name = (metric_name), .help = (text), .type = KCI_METRIC_COUNTER, .series_count = 1,      \
        .series.counters = (counter)                                                               \
    }
#define KCI_GAUGE_METRIC(metric_name, text, gauge)                                                 \
    {                                                                                              \
        .name = (metric_name), .help = (text), .type = KCI_METRIC_GAUGE, .series_count = 1,        \
        .series.gauges = (gauge)                                                                   \
    }
#define KCI_HISTOGRAM_METRIC(metric_name, text, unit_scale, histogram)                             \
    {                                                                                              \
        .name = (metric_name), .help = (text), .type = KCI_METRIC_HISTOGRAM,                       \
        .scale = (unit_scale), .series_count = 1, .series.histograms = (histogram)                 \
    }
#define KCI_METRIC_SET(table)                                                                      \
    {                                                                                              \
        .metrics = (table), .count = sizeof(table) / sizeof((table)[0])                            \
    }
#define KCI_HISTOGRAM_WITH(bound_table)                                                            \
    {                                                                                              \
        .bounds = (bound_table), .bound_count = sizeof(bound_table) / sizeof((bound_table)[0])     \
    }
#define KCI_NS_PER_US UINT64_C(1000)
#define KCI_NS_PER_MS UINT64_C(1000000)

static inline void kci_counter_add(kci_counter *counter, uint64_t amount)
{
    atomic_fetch_add_explicit(&counter->value, amount, memory_order_relaxed);
}

static inline void kci_counter_inc(kci_counter *counter)
{
    kci_counter_add(counter, 1);
}

static inline void kci_gauge_set(kci_gauge *gauge, int64_t value)
{
    atomic_store_explicit(&gauge->value, value, memory_order_relaxed);
}

static inline void kci_gauge_add(kci_gauge *gauge, int64_t amount)
{
    atomic_fetch_add_explicit(&gauge->value, amount, memory_order_relaxed);
}

static inline uint64_t kci_counter_value(const kci_counter *counter)
{
    return atomic_load_explicit(&counter->value, memory_order_relaxed);
}

/* One observation: a linear search over at most KCI_HISTOGRAM_BOUNDS_MAX
 * integers, then two relaxed additions. */
void kci_histogram_observe(kci_histogram *histogram, uint64_t value);

/* The nanoseconds since start_ns (kci_metrics_now_ns), for latencies. */
int64_t kci_metrics_now_ns(void);
void kci_histogram_observe_since(kci_histogram *histogram, int64_t start_ns);

/* Adds set to what kci_metrics_render shows; a set registered again is
 * kept once. Checks the names (asserts: they are constants of the code).
 * false when KCI_METRIC_SETS_MAX are registered already. */
bool kci_metrics_register(const kci_metric_set *set);

/* ---- the writer ---------------------------------------------------------- */

/* A growing text; failed once it ran out of memory or past
 * KCI_METRICS_TEXT_BYTES_MAX (then the scrape answers 500). */
typedef struct kci_metrics_text {
    char *bytes;
    size_t len;
    size_t capacity;
    bool failed;
} kci_metrics_text;

/* HELP and TYPE, then one unlabelled sample: for values a part keeps in
 * its own state and writes at scrape time (the broker's, on its loop). */
void kci_metrics_write_value(kci_metrics_text *text, const char *name, const char *type,
                             const char *help, double value);
/* HELP, TYPE (gauge) and one sample with the given labels, whose values
 * are escaped: "key1", value1, "key2", value2 ..., label_count pairs. */
void kci_metrics_write_info(kci_metrics_text *text, const char *name, const char *help,
                            const char *const *labels, size_t label_count);
void kci_metrics_write_metric(kci_metrics_text *text, const kci_metric *metric);
/* Every registered set, in the order they were registered. */
void kci_metrics_write_registered(kci_metrics_text *text);
/* The text's bytes, NUL-terminated, handed to the caller (free them);
 * NULL when it failed. */
char *kci_metrics_text_take(kci_metrics_text *text, size_t *len);
void kci_metrics_text_free(kci_metrics_text *text);

/* The content type of the format. */
#define KCI_METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

#endif
