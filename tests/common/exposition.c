/* exposition.c - the strict exposition-format parser for tests (see
 * exposition.h). Line by line: a line is a HELP, a TYPE or a sample; each
 * is checked on its own, then the histograms as wholes once every line is
 * in. The first fault ends the parse with its line number. */
#include "exposition.h"

#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { LABELS_MAX = 16 };

typedef struct line_cursor {
    const char *at, *end;
    size_t number;
    exposition *out;
} line_cursor;

static bool fault(line_cursor *cursor, const char *format, ...)
    __attribute__((format(printf, 2, 3)));

static bool fault(line_cursor *cursor, const char *format, ...)
{
    char reason[EXPOSITION_ERROR_BYTES_MAX - 32];
    va_list args;
    va_start(args, format);
    vsnprintf(reason, sizeof reason, format, args);
    va_end(args);
    snprintf(cursor->out->error, sizeof cursor->out->error, "line %zu: %s", cursor->number, reason);
    return false;
}

/* snprintf("%s") without the compiler's worry about overlap. */
static void copy_text(char *to, size_t size, const char *from)
{
    size_t len = strnlen(from, size - 1);
    memmove(to, from, len);
    to[len] = '\0';
}

static bool name_char(char c, bool first, bool colon)
{
    bool letter = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
    return letter || (colon && c == ':') || (!first && c >= '0' && c <= '9');
}

/* A metric (colon true) or label name at *at; its length, 0 if none. */
static size_t name_length(const char *at, const char *end, bool colon)
{
    size_t len = 0;
    while (at + len < end && name_char(at[len], len == 0, colon))
        len++;
    return len;
}

static bool ends_with(const char *text, const char *suffix)
{
    size_t len = strlen(text), suffix_len = strlen(suffix);
    return len >= suffix_len && strcmp(text + len - suffix_len, suffix) == 0;
}

/* A float as Go's ParseFloat takes it in this format: digits with an
 * optional sign, point and exponent, or NaN, +Inf, -Inf. */
static bool parse_value(const char *text, size_t len, double *out)
{
    char copy[64];
    if (len == 0 || len >= sizeof copy) return false;
    memcpy(copy, text, len);
    copy[len] = '\0';
    if (strcmp(copy, "NaN") == 0) return *out = NAN, true;
    if (strcmp(copy, "+Inf") == 0 || strcmp(copy, "Inf") == 0) return *out = INFINITY, true;
    if (strcmp(copy, "-Inf") == 0) return *out = -INFINITY, true;
    for (size_t i = 0; i < len; i++)
        if (strchr("0123456789+-.eE", copy[i]) == NULL) return false;
    char *after = NULL;
    *out = strtod(copy, &after);
    return after == copy + len;
}

static exposition_family *family_named(exposition *out, const char *name)
{
    for (size_t i = 0; i < out->family_count; i++)
        if (strcmp(out->families[i].name, name) == 0) return &out->families[i];
    return NULL;
}

const exposition_family *exposition_family_find(const exposition *parsed, const char *name)
{
    return family_named((exposition *)parsed, name);
}

/* The family that a HELP or TYPE line names: a new one, or the last one
 * if its samples have not started (HELP and TYPE in either order). */
static exposition_family *metadata_family(line_cursor *cursor, const char *name)
{
    exposition *out = cursor->out;
    exposition_family *family = family_named(out, name);
    if (family != NULL) {
        if (family->has_samples)
            return fault(cursor, "HELP or TYPE after samples of %s", name), NULL;
        return family;
    }
    if (out->family_count == EXPOSITION_FAMILIES_MAX)
        return fault(cursor, "too many families"), NULL;
    if (out->family_count > 0) out->families[out->family_count - 1].closed = true;
    family = &out->families[out->family_count++];
    memset(family, 0, sizeof *family);
    snprintf(family->name, sizeof family->name, "%s", name);
    return family;
}

static bool help_text_ok(const char *at, const char *end)
{
    for (; at < end; at++)
        if (*at == '\\' && (at + 1 == end || (at[1] != '\\' && at[1] != 'n')))
            return false;
        else if (*at == '\\')
            at++;
    return true;
}

static bool parse_metadata(line_cursor *cursor, const char *line, const char *end)
{
    bool help = strncmp(line, "# HELP ", 7) == 0, type = strncmp(line, "# TYPE ", 7) == 0;
    if (!help && !type) return fault(cursor, "a comment other than HELP or TYPE");
    const char *name = line + 7;
    size_t len = name_length(name, end, true);
    if (len == 0 || len >= EXPOSITION_NAME_BYTES_MAX || name + len == end || name[len] != ' ')
        return fault(cursor, "a bad metric name after %.6s", line + 2);
    char family_name[EXPOSITION_NAME_BYTES_MAX];
    snprintf(family_name, sizeof family_name, "%.*s", (int)len, name);
    exposition_family *family = metadata_family(cursor, family_name);
    if (family == NULL) return false;
    const char *rest = name + len + 1;
    if (help) {
        if (family->has_help) return fault(cursor, "a second HELP for %s", family_name);
        if (!help_text_ok(rest, end)) return fault(cursor, "a bad escape in HELP");
        family->has_help = true;
        return true;
    }
    if (family->has_type) return fault(cursor, "a second TYPE for %s", family_name);
    static const char *const TYPES[] = {"counter", "gauge", "histogram", "summary", "untyped"};
    for (size_t i = 0; i < sizeof TYPES / sizeof TYPES[0]; i++)
        if ((size_t)(end - rest) == strlen(TYPES[i]) &&
            memcmp(rest, TYPES[i], strlen(TYPES[i])) == 0) {
            snprintf(family->type, sizeof family->type, "%s", TYPES[i]);
            family->has_type = true;
            return true;
        }
    return fault(cursor, "an unknown type '%.*s'", (int)(end - rest), rest);
}

/* {name="value",...}: appended to series (le apart, into sample->le). */
static const char *parse_labels(line_cursor *cursor, const char *at, const char *end,
                                exposition_sample *sample, char *series, size_t series_size)
{
    char names[LABELS_MAX][EXPOSITION_NAME_BYTES_MAX];
    size_t count = 0, used = strlen(series);
    at++; /* '{' */
    bool first = true;
    while (at < end && *at != '}') {
        size_t len = name_length(at, end, false);
        if (len == 0 || len >= EXPOSITION_NAME_BYTES_MAX || at + len + 1 >= end || at[len] != '=' ||
            at[len + 1] != '"')
            return fault(cursor, "a bad label"), NULL;
        if (count == LABELS_MAX) return fault(cursor, "too many labels"), NULL;
        snprintf(names[count], sizeof names[count], "%.*s", (int)len, at);
        if (strncmp(names[count], "__", 2) == 0)
            return fault(cursor, "a reserved label name"), NULL;
        for (size_t i = 0; i < count; i++)
            if (strcmp(names[i], names[count]) == 0)
                return fault(cursor, "label %s twice", names[count]), NULL;
        const char *value = at + len + 2, *scan = value;
        while (scan < end && *scan != '"') {
            if (*scan == '\\' && (scan + 1 == end || strchr("\\\"n", scan[1]) == NULL))
                return fault(cursor, "a bad escape in a label value"), NULL;
            scan += *scan == '\\' ? 2 : 1;
        }
        if (scan >= end) return fault(cursor, "an unterminated label value"), NULL;
        bool le = strcmp(names[count], "le") == 0;
        if (le && (size_t)(scan - value) < sizeof sample->le)
            snprintf(sample->le, sizeof sample->le, "%.*s", (int)(scan - value), value);
        else if (le)
            return fault(cursor, "an le too long"), NULL;
        else
            used += (size_t)snprintf(series + used, series_size - used, "%s%.*s", first ? "{" : ",",
                                     (int)(scan - at + 1), at);
        if (!le) first = false;
        if (used >= series_size) return fault(cursor, "a series too long"), NULL;
        count++;
        at = scan + 1;
        if (at < end && *at == ',')
            at++;
        else if (at < end && *at != '}')
            return fault(cursor, "no ',' between labels"), NULL;
    }
    if (at >= end) return fault(cursor, "an unterminated label set"), NULL;
    if (!first) snprintf(series + used, series_size - used, "}");
    return at + 1;
}

/* Which family a sample belongs to, and whether its name fits the type. */
static exposition_family *sample_family(line_cursor *cursor, const char *name)
{
    exposition *out = cursor->out;
    exposition_family *family = family_named(out, name);
    if (family != NULL && strcmp(family->type, "histogram") != 0 &&
        strcmp(family->type, "summary") != 0)
        return family;
    static const char *const SUFFIXES[] = {"_bucket", "_sum", "_count"};
    for (size_t i = 0; i < 3; i++) {
        if (!ends_with(name, SUFFIXES[i])) continue;
        char base[EXPOSITION_NAME_BYTES_MAX];
        snprintf(base, sizeof base, "%.*s", (int)(strlen(name) - strlen(SUFFIXES[i])), name);
        family = family_named(out, base);
        bool histogram = family != NULL && strcmp(family->type, "histogram") == 0;
        bool summary = family != NULL && strcmp(family->type, "summary") == 0 && i > 0;
        if (histogram || summary) return family;
    }
    return fault(cursor, "sample %s has no TYPE before it", name), NULL;
}

static bool check_sample(line_cursor *cursor, exposition_family *family, exposition_sample *sample)
{
    bool bucket = strcmp(family->type, "histogram") == 0 && ends_with(sample->name, "_bucket");
    if (bucket != (sample->le[0] != '\0'))
        return fault(cursor, "%s: le %s", sample->name,
                     bucket ? "missing" : "where it has no place");
    if (strcmp(family->type, "counter") == 0 && !ends_with(family->name, "_total"))
        return fault(cursor, "counter %s does not end in _total", family->name);
    bool counting =
        strcmp(family->type, "counter") == 0 || bucket || ends_with(sample->name, "_count");
    if (counting && !(sample->value >= 0))
        return fault(cursor, "%s is negative or NaN", sample->name);
    if (family->closed) /* another family's lines came since its HELP and TYPE */
        return fault(cursor, "samples of %s are not together with its HELP and TYPE", family->name);
    for (size_t i = 0; i < cursor->out->sample_count; i++)
        if (strcmp(cursor->out->samples[i].full, sample->full) == 0)
            return fault(cursor, "series %s twice", sample->full);
    return true;
}

static bool parse_sample(line_cursor *cursor, const char *line, const char *end)
{
    exposition *out = cursor->out;
    if (out->sample_count == EXPOSITION_SAMPLES_MAX) return fault(cursor, "too many samples");
    exposition_sample *sample = &out->samples[out->sample_count];
    memset(sample, 0, sizeof *sample);
    size_t len = name_length(line, end, true);
    if (len == 0 || len >= EXPOSITION_NAME_BYTES_MAX) return fault(cursor, "a bad metric name");
    snprintf(sample->name, sizeof sample->name, "%.*s", (int)len, line);
    copy_text(sample->series, sizeof sample->series, sample->name);
    const char *at = line + len;
    if (at < end && *at == '{') {
        at = parse_labels(cursor, at, end, sample, sample->series, sizeof sample->series);
        if (at == NULL) return false;
    }
    if (at >= end || *at != ' ') return fault(cursor, "no space before the value");
    const char *value = ++at;
    while (at < end && *at != ' ')
        at++;
    if (!parse_value(value, (size_t)(at - value), &sample->value))
        return fault(cursor, "a bad value '%.*s'", (int)(at - value), value);
    if (at < end) { /* a timestamp: an integer of milliseconds */
        const char *stamp = ++at;
        if (at < end && *at == '-') at++;
        while (at < end && *at >= '0' && *at <= '9')
            at++;
        if (at != end || at == stamp) return fault(cursor, "a bad timestamp");
    }
    char full[EXPOSITION_SERIES_BYTES_MAX];
    bool labelled = strchr(sample->series, '{') != NULL;
    if (sample->le[0] != '\0')
        snprintf(full, sizeof full, "%.*s%sle=\"%s\"}",
                 (int)(strlen(sample->series) - (labelled ? 1 : 0)), sample->series,
                 labelled ? "," : "{", sample->le);
    else
        copy_text(full, sizeof full, sample->series);
    copy_text(sample->full, sizeof sample->full, full);
    exposition_family *family = sample_family(cursor, sample->name);
    if (family == NULL || !check_sample(cursor, family, sample)) return false;
    family->has_samples = true;
    sample->family = (size_t)(family - out->families);
    out->sample_count++;
    return true;
}

/* One histogram series (its samples from index first on): le strictly
 * increasing, counts cumulative, +Inf last and equal to _count, _sum. */
static bool check_histogram_series(exposition *out, size_t first)
{
    const exposition_sample *head = &out->samples[first];
    char base[EXPOSITION_SERIES_BYTES_MAX];
    const char *name = out->families[head->family].name;
    const char *labels = strchr(head->series, '{');
    double previous_le = -INFINITY, previous_count = 0, infinity_count = -1;
    bool have_sum = false, have_count = false;
    double count = -1;
    for (size_t i = first; i < out->sample_count; i++) {
        const exposition_sample *sample = &out->samples[i];
        if (sample->family != head->family) break;
        const char *sample_labels = strchr(sample->series, '{');
        if ((labels == NULL) != (sample_labels == NULL) ||
            (labels != NULL && strcmp(labels, sample_labels) != 0))
            continue;
        snprintf(base, sizeof base, "%s_bucket", name);
        if (strcmp(sample->name, base) == 0) {
            double le = 0;
            if (!parse_value(sample->le, strlen(sample->le), &le) || isnan(le) ||
                le <= previous_le || sample->value < previous_count || infinity_count >= 0) {
                snprintf(out->error, sizeof out->error, "%s: buckets out of order at le=%s",
                         sample->full, sample->le);
                return false;
            }
            previous_le = le, previous_count = sample->value;
            if (isinf(le)) infinity_count = sample->value;
        } else if (ends_with(sample->name, "_sum")) {
            have_sum = true;
        } else {
            have_count = true;
            count = sample->value;
        }
    }
    if (infinity_count < 0 || !have_sum || !have_count || count != infinity_count) {
        snprintf(out->error, sizeof out->error,
                 "histogram %s: +Inf bucket %g, _sum %s, _count %g: not whole", head->series,
                 infinity_count, have_sum ? "present" : "missing", count);
        return false;
    }
    return true;
}

static const char *labels_of(const char *series)
{
    const char *labels = strchr(series, '{');
    return labels != NULL ? labels : "";
}

static bool check_histograms(exposition *out)
{
    for (size_t i = 0; i < out->sample_count; i++) {
        const exposition_sample *sample = &out->samples[i];
        if (strcmp(out->families[sample->family].type, "histogram") != 0) continue;
        bool first_of_series = true; /* checked once, at its first sample */
        for (size_t j = 0; j < i && first_of_series; j++)
            first_of_series =
                !(out->samples[j].family == sample->family &&
                  strcmp(labels_of(out->samples[j].series), labels_of(sample->series)) == 0);
        if (first_of_series && !check_histogram_series(out, i)) return false;
    }
    return true;
}

bool exposition_parse(exposition *out, const char *text, size_t len)
{
    memset(out, 0, offsetof(exposition, samples));
    out->sample_count = 0;
    out->error[0] = '\0';
    line_cursor cursor = {.at = text, .end = text + len, .number = 0, .out = out};
    while (cursor.at < cursor.end) {
        cursor.number++;
        const char *newline = memchr(cursor.at, '\n', (size_t)(cursor.end - cursor.at));
        if (newline == NULL) return fault(&cursor, "the last line has no LF");
        if (newline == cursor.at) return fault(&cursor, "a blank line");
        if (memchr(cursor.at, '\0', (size_t)(newline - cursor.at)) != NULL)
            return fault(&cursor, "a NUL byte");
        bool ok = cursor.at[0] == '#' ? parse_metadata(&cursor, cursor.at, newline)
                                      : parse_sample(&cursor, cursor.at, newline);
        if (!ok) return false;
        cursor.at = newline + 1;
    }
    return check_histograms(out);
}

bool exposition_value(const exposition *parsed, const char *series, double *value)
{
    for (size_t i = 0; i < parsed->sample_count; i++)
        if (strcmp(parsed->samples[i].full, series) == 0) {
            *value = parsed->samples[i].value;
            return true;
        }
    return false;
}
