/* report_set.c - a set of recorded problem reports (report_stats.h): the
 * report file's lines parsed, names interned, so millions of reports fit
 * in memory (16 bytes and a reason each). A line that is not a report (a
 * torn last line after a crash, a corrupt or foreign one) is counted and
 * skipped, as the suggestion keeper's loader does. */
#include "report_stats.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "service/headers.h"

enum {
    SET_CAPACITY_FIRST = 1024,
    LINE_BYTES_MAX = 4096, /* a longer line is not one of ours */
};

void kci_report_set_init(kci_report_set *set)
{
    memset(set, 0, sizeof *set);
}

void kci_report_set_free(kci_report_set *set)
{
    for (size_t i = 0; i < set->name_count; i++)
        free(set->names[i]);
    free(set->names);
    free(set->records);
    free(set->reasons);
    json_decref(set->name_index);
    memset(set, 0, sizeof *set);
}

static kc_err intern(kci_report_set *set, const char *name, uint32_t *index)
{
    if (set->name_index == NULL && (set->name_index = json_object()) == NULL) return KC_ERR_NOMEM;
    json_t *known = json_object_get(set->name_index, name);
    if (known != NULL) {
        *index = (uint32_t)json_integer_value(known);
        return KC_OK;
    }
    if (set->name_count == KCI_REPORT_NAMES_MAX) return KC_ERR_TOO_LARGE;
    if (set->name_count == set->name_capacity) {
        size_t capacity = set->name_capacity ? set->name_capacity * 2 : SET_CAPACITY_FIRST;
        char **grown = realloc(set->names, capacity * sizeof *grown);
        if (grown == NULL) return KC_ERR_NOMEM;
        set->names = grown;
        set->name_capacity = capacity;
    }
    char *copy = strdup(name);
    if (copy == NULL ||
        json_object_set_new(set->name_index, name, json_integer((json_int_t)set->name_count))) {
        free(copy);
        return KC_ERR_NOMEM;
    }
    set->names[set->name_count] = copy;
    *index = (uint32_t)set->name_count++;
    return KC_OK;
}

static kc_err grow_records(kci_report_set *set)
{
    if (set->count < set->capacity) return KC_OK;
    if (set->count == KCI_REPORT_RECORDS_MAX) return KC_ERR_TOO_LARGE;
    size_t capacity = set->capacity ? set->capacity * 2 : SET_CAPACITY_FIRST;
    if (capacity > KCI_REPORT_RECORDS_MAX) capacity = KCI_REPORT_RECORDS_MAX;
    kci_report_record *records = realloc(set->records, capacity * sizeof *records);
    if (records == NULL) return KC_ERR_NOMEM;
    set->records = records;
    uint8_t *reasons = realloc(set->reasons, capacity);
    if (reasons == NULL) return KC_ERR_NOMEM;
    set->reasons = reasons;
    set->capacity = capacity;
    return KC_OK;
}

kc_err kci_report_set_add(kci_report_set *set, int64_t ts_ms, const char *node,
                          const char *reporter, kc_problem_reason reason)
{
    if (reason < KC_PROBLEM_WRONG_ANSWER || (int)reason >= KCI_REPORT_REASONS)
        return KC_ERR_INVALID_ARGUMENT;
    kci_report_record record = {.ts_ms = ts_ms};
    kc_err err = grow_records(set);
    if (err == KC_OK) err = intern(set, node, &record.node);
    if (err == KC_OK) err = intern(set, reporter, &record.reporter);
    if (err != KC_OK) return err;
    set->records[set->count] = record;
    set->reasons[set->count++] = (uint8_t)reason;
    return KC_OK;
}

static bool name_field(json_t *root, const char *key, char *out)
{
    const char *text = json_string_value(json_object_get(root, key));
    if (text == NULL || text[0] == '\0' || strlen(text) > KC_NODE_BYTES_MAX ||
        !kci_token_valid(text))
        return false;
    memcpy(out, text, strlen(text) + 1);
    return true;
}

bool kci_report_line_parse(const char *line, size_t length, int64_t *ts_ms, char *node,
                           char *reporter, kc_problem_reason *reason)
{
    if (length == 0 || length > LINE_BYTES_MAX) return false;
    json_t *root = json_loadb(line, length, JSON_REJECT_DUPLICATES, NULL);
    json_t *ts = json_object_get(root, "ts");
    const char *reason_name = json_string_value(json_object_get(root, "reason"));
    bool ok = json_is_integer(ts) && json_integer_value(ts) >= 0 && reason_name != NULL &&
              name_field(root, "node", node) && name_field(root, "reporter", reporter);
    if (ok) {
        *ts_ms = (int64_t)json_integer_value(ts);
        *reason = kc_problem_reason_from_name(reason_name);
        ok = *reason >= KC_PROBLEM_WRONG_ANSWER && (int)*reason < KCI_REPORT_REASONS;
    }
    json_decref(root);
    return ok;
}

static kc_err load_line(kci_report_set *set, const char *line, size_t length)
{
    int64_t ts_ms;
    char node[KC_NODE_BYTES_MAX + 1], reporter[KC_NODE_BYTES_MAX + 1];
    kc_problem_reason reason;
    if (!kci_report_line_parse(line, length, &ts_ms, node, reporter, &reason)) {
        set->skipped++;
        return KC_OK;
    }
    return kci_report_set_add(set, ts_ms, node, reporter, reason);
}

kc_err kci_report_set_load(kci_report_set *set, const char *path, kci_econ_error *error)
{
    FILE *file = fopen(path, "r");
    if (file == NULL) {
        kci_econ_error_set(error, "cannot open %s: %s", path, strerror(errno));
        return errno == ENOENT ? KC_ERR_NOT_FOUND : KC_ERR_IO;
    }
    char *line = NULL;
    size_t line_capacity = 0;
    ssize_t length;
    kc_err err = KC_OK;
    while (err == KC_OK && (length = getline(&line, &line_capacity, file)) >= 0) {
        /* a last line without its LF is a torn write: not a report */
        if (length == 0 || line[length - 1] != '\n') {
            set->skipped++;
            continue;
        }
        err = load_line(set, line, (size_t)length - 1);
    }
    bool failed = ferror(file);
    free(line);
    fclose(file);
    if (err == KC_OK && failed) err = KC_ERR_IO;
    if (err != KC_OK)
        kci_econ_error_set(error, "cannot read %s: %s", path,
                           err == KC_ERR_TOO_LARGE ? "too many reports or names"
                                                   : kc_strerror(err));
    return err;
}
