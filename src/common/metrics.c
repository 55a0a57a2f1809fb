/* metrics.c - the metric types' slow halves, the registry and the text
 * writer (see metrics.h).
 *
 * The writer follows the text exposition format 0.0.4: per family a
 * "# HELP name text" line (backslash and newline escaped), a
 * "# TYPE name type" line, then its samples, "name{label="value"} number",
 * label values escaped (backslash, double quote, newline). A histogram
 * writes cumulative name_bucket{le="bound"} lines ending with le="+Inf",
 * then name_sum and name_count. Counters and histogram counts are written
 * as integers, bounds and sums as %.15g (enough for the bounds we choose:
 * 0.001 stays "0.001", not 0.0010000000000000002).
 *
 * The registry is a fixed array of pointers behind one mutex, taken when a
 * part registers and while a scrape writes; the parts' hot paths never
 * touch it. */
#include "metrics.h"

#include <assert.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum {
    TEXT_BYTES_INITIAL = 16 * 1024,
    NUMBER_TEXT_BYTES = 64,
};

#define NS_PER_S INT64_C(1000000000)

static pthread_mutex_t registry_lock = PTHREAD_MUTEX_INITIALIZER;
static const kci_metric_set *registry[KCI_METRIC_SETS_MAX];
static size_t registry_count;

/* ---- observing ----------------------------------------------------------- */

void kci_histogram_observe(kci_histogram *histogram, uint64_t value)
{
    assert(histogram->bound_count <= KCI_HISTOGRAM_BOUNDS_MAX);
    uint32_t bucket = 0;
    while (bucket < histogram->bound_count && value > histogram->bounds[bucket])
        bucket++;
    atomic_fetch_add_explicit(&histogram->buckets[bucket], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&histogram->sum, value, memory_order_relaxed);
}

int64_t kci_metrics_now_ns(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (int64_t)now.tv_sec * NS_PER_S + now.tv_nsec;
}

void kci_histogram_observe_since(kci_histogram *histogram, int64_t start_ns)
{
    int64_t elapsed_ns = kci_metrics_now_ns() - start_ns;
    kci_histogram_observe(histogram, elapsed_ns > 0 ? (uint64_t)elapsed_ns : 0);
}

/* ---- registering ------------------------------------------------------------ */

static bool name_is_valid(const char *name, bool colon_allowed)
{
    if (name == NULL || name[0] == '\0' || (name[0] >= '0' && name[0] <= '9')) return false;
    for (const char *at = name; *at != '\0'; at++) {
        char c = *at;
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '_' || (colon_allowed && c == ':');
        if (!ok) return false;
    }
    return true;
}

static bool ends_with(const char *text, const char *suffix)
{
    size_t len = strlen(text), suffix_len = strlen(suffix);
    return len >= suffix_len && strcmp(text + len - suffix_len, suffix) == 0;
}

/* The conventions the names follow (docs/operations.md): a bug if not. */
static bool metric_is_valid(const kci_metric *metric)
{
    if (!name_is_valid(metric->name, true) || strncmp(metric->name, "kcobra_", 7) != 0)
        return false;
    if ((metric->type == KCI_METRIC_COUNTER) != ends_with(metric->name, "_total")) return false;
    if (metric->help == NULL || metric->series_count == 0) return false;
    if (metric->label == NULL) return metric->series_count == 1;
    if (!name_is_valid(metric->label, false) || strncmp(metric->label, "__", 2) == 0) return false;
    if (metric->type == KCI_METRIC_HISTOGRAM && strcmp(metric->label, "le") == 0) return false;
    return metric->label_values != NULL && metric->series_count <= KCI_METRIC_LABEL_VALUES_MAX;
}

bool kci_metrics_register(const kci_metric_set *set)
{
    assert(set != NULL && set->metrics != NULL);
    for (size_t i = 0; i < set->count; i++)
        assert(metric_is_valid(&set->metrics[i]) && "a metric breaks the naming conventions");
    pthread_mutex_lock(&registry_lock);
    bool known = false;
    for (size_t i = 0; i < registry_count; i++)
        known = known || registry[i] == set;
    bool room = known || registry_count < KCI_METRIC_SETS_MAX;
    if (!known && room) registry[registry_count++] = set;
    pthread_mutex_unlock(&registry_lock);
    return room;
}

/* ---- the text ------------------------------------------------------------------- */

static bool text_reserve(kci_metrics_text *text, size_t more)
{
    if (text->failed) return false;
    if (text->len + more + 1 <= text->capacity) return true;
    size_t capacity = text->capacity > 0 ? text->capacity : TEXT_BYTES_INITIAL;
    while (capacity < text->len + more + 1)
        capacity *= 2;
    if (capacity > KCI_METRICS_TEXT_BYTES_MAX) capacity = KCI_METRICS_TEXT_BYTES_MAX;
    char *bytes = text->len + more + 1 <= capacity ? realloc(text->bytes, capacity) : NULL;
    if (bytes == NULL) {
        text->failed = true;
        return false;
    }
    text->bytes = bytes;
    text->capacity = capacity;
    return true;
}

static void append_bytes(kci_metrics_text *text, const char *bytes, size_t len)
{
    if (!text_reserve(text, len)) return;
    memcpy(text->bytes + text->len, bytes, len);
    text->len += len;
    text->bytes[text->len] = '\0';
}

static void append(kci_metrics_text *text, const char *bytes)
{
    append_bytes(text, bytes, strlen(bytes));
}

static void appendf(kci_metrics_text *text, const char *format, ...)
    __attribute__((format(printf, 2, 3)));

static void appendf(kci_metrics_text *text, const char *format, ...)
{
    char line[NUMBER_TEXT_BYTES * 2];
    va_list args;
    va_start(args, format);
    int n = vsnprintf(line, sizeof line, format, args);
    va_end(args);
    assert(n >= 0 && (size_t)n < sizeof line && "appendf is for numbers and short names");
    append_bytes(text, line, (size_t)n);
}

/* HELP text escapes backslash and newline; label values also '"'. */
static void append_escaped(kci_metrics_text *text, const char *value, bool quote)
{
    for (const char *at = value; *at != '\0'; at++) {
        if (*at == '\\')
            append(text, "\\\\");
        else if (*at == '\n')
            append(text, "\\n");
        else if (quote && *at == '"')
            append(text, "\\\"");
        else
            append_bytes(text, at, 1);
    }
}

static void append_header(kci_metrics_text *text, const char *name, const char *type,
                          const char *help)
{
    append(text, "# HELP ");
    append(text, name);
    append(text, " ");
    append_escaped(text, help, false);
    append(text, "\n# TYPE ");
    append(text, name);
    append(text, " ");
    append(text, type);
    append(text, "\n");
}

/* A double as the format wants it: NaN and the infinities by name. */
static void append_double(kci_metrics_text *text, double value)
{
    if (isnan(value))
        append(text, "NaN");
    else if (isinf(value))
        append(text, value > 0 ? "+Inf" : "-Inf");
    else
        appendf(text, "%.15g", value);
}

void kci_metrics_write_value(kci_metrics_text *text, const char *name, const char *type,
                             const char *help, double value)
{
    append_header(text, name, type, help);
    append(text, name);
    append(text, " ");
    append_double(text, value);
    append(text, "\n");
}

void kci_metrics_write_info(kci_metrics_text *text, const char *name, const char *help,
                            const char *const *labels, size_t label_count)
{
    append_header(text, name, "gauge", help);
    append(text, name);
    for (size_t i = 0; i < label_count; i++) {
        append(text, i == 0 ? "{" : ",");
        append(text, labels[2 * i]);
        append(text, "=\"");
        append_escaped(text, labels[2 * i + 1], true);
        append(text, "\"");
    }
    append(text, label_count > 0 ? "} 1\n" : " 1\n");
}

static const char *type_name(kci_metric_type type)
{
    switch (type) {
    case KCI_METRIC_COUNTER: return "counter";
    case KCI_METRIC_GAUGE: return "gauge";
    case KCI_METRIC_HISTOGRAM: return "histogram";
    }
    return "untyped";
}

/* name{label="value"} or name{label="value",le=" (open: the caller ends it). */
static void append_series_name(kci_metrics_text *text, const kci_metric *metric, uint32_t series,
                               const char *suffix, bool le_follows)
{
    append(text, metric->name);
    append(text, suffix);
    if (metric->label == NULL && !le_follows) return;
    append(text, "{");
    if (metric->label != NULL) {
        append(text, metric->label);
        append(text, "=\"");
        append_escaped(text, metric->label_values[series], true);
        append(text, le_follows ? "\"," : "\"}");
    }
    if (le_follows) append(text, "le=\"");
}

static void write_histogram(kci_metrics_text *text, const kci_metric *metric, uint32_t series)
{
    kci_histogram *histogram = &metric->series.histograms[series];
    double scale = metric->scale > 0 ? metric->scale : 1.0;
    uint64_t cumulative = 0;
    for (uint32_t bucket = 0; bucket <= histogram->bound_count; bucket++) {
        cumulative += atomic_load_explicit(&histogram->buckets[bucket], memory_order_relaxed);
        append_series_name(text, metric, series, "_bucket", true);
        if (bucket < histogram->bound_count)
            append_double(text, (double)histogram->bounds[bucket] * scale);
        else
            append(text, "+Inf");
        appendf(text, "\"} %llu\n", (unsigned long long)cumulative);
    }
    uint64_t sum = atomic_load_explicit(&histogram->sum, memory_order_relaxed);
    append_series_name(text, metric, series, "_sum", false);
    append(text, " ");
    append_double(text, (double)sum * scale);
    append(text, "\n");
    append_series_name(text, metric, series, "_count", false);
    appendf(text, " %llu\n", (unsigned long long)cumulative);
}

void kci_metrics_write_metric(kci_metrics_text *text, const kci_metric *metric)
{
    append_header(text, metric->name, type_name(metric->type), metric->help);
    for (uint32_t series = 0; series < metric->series_count; series++) {
        if (metric->type == KCI_METRIC_HISTOGRAM) {
            write_histogram(text, metric, series);
            continue;
        }
        append_series_name(text, metric, series, "", false);
        if (metric->type == KCI_METRIC_COUNTER)
            appendf(text, " %llu\n",
                    (unsigned long long)kci_counter_value(&metric->series.counters[series]));
        else
            appendf(text, " %lld\n",
                    (long long)atomic_load_explicit(&metric->series.gauges[series].value,
                                                    memory_order_relaxed));
    }
}

void kci_metrics_write_registered(kci_metrics_text *text)
{
    pthread_mutex_lock(&registry_lock);
    for (size_t i = 0; i < registry_count; i++)
        for (size_t j = 0; j < registry[i]->count; j++)
            kci_metrics_write_metric(text, &registry[i]->metrics[j]);
    pthread_mutex_unlock(&registry_lock);
}

char *kci_metrics_text_take(kci_metrics_text *text, size_t *len)
{
    if (!text->failed && text->bytes == NULL) append(text, ""); /* an empty text is "" */
    if (text->failed) {
        kci_metrics_text_free(text);
        return NULL;
    }
    char *bytes = text->bytes;
    *len = text->len;
    *text = (kci_metrics_text){0};
    return bytes;
}

void kci_metrics_text_free(kci_metrics_text *text)
{
    free(text->bytes);
    *text = (kci_metrics_text){0};
}
