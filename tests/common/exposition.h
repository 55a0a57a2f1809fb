/* exposition.h - a strict parser of the Prometheus text exposition format
 * 0.0.4, for tests: it refuses what a lenient scraper would let through,
 * so that what kcobrad serves is checked against the format and against
 * our naming conventions (docs/operations.md), not against itself.
 *
 * Refused: a line without its final LF, blank lines, a sample whose family
 * has no TYPE before it, a second HELP or TYPE for a family, a family whose
 * samples are not together, the same series twice, bad names or label
 * names, duplicated labels, bad escapes, values that are not floats,
 * counters not named *_total or negative, a histogram without le labels,
 * with le not increasing, buckets not cumulative, no +Inf bucket, or +Inf
 * not equal to _count, or a histogram missing _sum or _count. Comments
 * other than HELP and TYPE are refused too (we write none). */
#ifndef KC_TEST_EXPOSITION_H
#define KC_TEST_EXPOSITION_H

#include <stdbool.h>
#include <stddef.h>

enum {
    EXPOSITION_FAMILIES_MAX = 512,
    EXPOSITION_SAMPLES_MAX = 4096,
    EXPOSITION_NAME_BYTES_MAX = 128,
    EXPOSITION_SERIES_BYTES_MAX = 512,
    EXPOSITION_ERROR_BYTES_MAX = 512,
};

typedef struct exposition_family {
    char name[EXPOSITION_NAME_BYTES_MAX];
    char type[16]; /* counter, gauge, histogram, summary, untyped */
    bool has_help, has_type, has_samples, closed;
} exposition_family;

typedef struct exposition_sample {
    /* name{label="value",...} as written (values still escaped), without le */
    char series[EXPOSITION_SERIES_BYTES_MAX];
    char full[EXPOSITION_SERIES_BYTES_MAX]; /* the same with le, as written */
    char name[EXPOSITION_NAME_BYTES_MAX];
    char le[32]; /* "" when absent */
    double value;
    size_t family;
} exposition_sample;

typedef struct exposition {
    exposition_family families[EXPOSITION_FAMILIES_MAX];
    size_t family_count;
    exposition_sample samples[EXPOSITION_SAMPLES_MAX];
    size_t sample_count;
    char error[EXPOSITION_ERROR_BYTES_MAX]; /* why it was refused, with the line number */
} exposition;

/* Parses text (len bytes); false with out->error set when it is refused.
 * out is large: allocate it. */
bool exposition_parse(exposition *out, const char *text, size_t len);
/* The value of a sample by its series text, such as
 * kcobra_ledger_refusals_total{reason="double_spend"} or, for a bucket,
 * name_bucket{le="0.001"}; false if there is none. */
bool exposition_value(const exposition *parsed, const char *series, double *value);
/* The family named name, or NULL. */
const exposition_family *exposition_family_find(const exposition *parsed, const char *name);

#endif
