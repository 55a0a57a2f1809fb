/* graph_load.c - CSV and JSON edge files (grammar in graph_load.h and
 * docs/econ.md).
 *
 * The CSV parser moves one byte at a time through kci_econ_csv_state;
 * fields of the three columns it needs are copied into fixed buffers with
 * named bounds, other columns are only bounded, so a hostile file costs no
 * memory beyond the graph it describes. The first error stops the parse
 * and names the line. */
#include "graph_load.h"

#include <assert.h>
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "json_file.h"

/* ================================================================== numbers */

kc_err kci_econ_parse_amount(const char *text, size_t length, double *out, kci_econ_error *error)
{
    char buffer[KCI_ECON_CSV_NUMBER_BYTES_MAX + 1];
    if (length == 0) {
        kci_econ_error_set(error, "empty amount");
        return KC_ERR_PARSE;
    }
    if (length > KCI_ECON_CSV_NUMBER_BYTES_MAX) {
        kci_econ_error_set(error, "amount longer than %d bytes", KCI_ECON_CSV_NUMBER_BYTES_MAX);
        return KC_ERR_PARSE;
    }
    /* Ledger amounts are integers: read plain digits exactly, fast. */
    if (length <= 15) {
        double value = 0;
        size_t index = 0;
        while (index < length && text[index] >= '0' && text[index] <= '9')
            value = value * 10 + (text[index++] - '0');
        if (index == length) {
            *out = value;
            return KC_OK;
        }
    }
    memcpy(buffer, text, length);
    buffer[length] = '\0';
    /* strtod also takes "inf", "nan" and hex; an amount is plain decimal. */
    for (size_t index = 0; index < length; index++) {
        if (strchr("0123456789+-.eE", buffer[index]) == NULL) {
            kci_econ_error_set(error, "amount '%s' is not a decimal number", buffer);
            return KC_ERR_PARSE;
        }
    }
    char *end = NULL;
    errno = 0;
    double value = strtod(buffer, &end);
    if (end != buffer + length || errno == ERANGE || !isfinite(value)) {
        kci_econ_error_set(error, "amount '%s' is not a decimal number", buffer);
        return KC_ERR_PARSE;
    }
    if (value < 0) {
        kci_econ_error_set(error,
                           "negative amount %s: a payment moves money from payer to "
                           "payee, so swap them instead",
                           buffer);
        return KC_ERR_PARSE;
    }
    *out = value;
    return KC_OK;
}

/* ====================================================================== CSV */

void kci_econ_csv_init(kci_econ_csv *csv, kci_econ_builder *builder)
{
    memset(csv, 0, sizeof *csv);
    csv->builder = builder;
    csv->line = 1;
    csv->record_line = 1;
    csv->line_empty = true;
    csv->state = KCI_ECON_CSV_FIELD_START;
}

static kc_err csv_fail(kci_econ_csv *csv, kci_econ_error *error, kc_err err, const char *reason)
{
    kci_econ_error_set(error, "line %lld: %s", (long long)csv->record_line, reason);
    csv->state = KCI_ECON_CSV_FAILED;
    csv->err = err;
    return err;
}

static kc_err csv_fail_inner(kci_econ_csv *csv, kci_econ_error *error, kc_err err)
{
    char reason[KCI_ECON_ERROR_BYTES];
    snprintf(reason, sizeof reason, "%s", error->text);
    return csv_fail(csv, error, err, reason);
}

/* The longest field column may hold once the header is read. */
static size_t column_bound(const kci_econ_csv *csv, int column)
{
    if (column >= csv->column_count) return 0;
    switch (csv->columns[column]) {
    case KCI_ECON_CSV_COLUMN_FROM:
    case KCI_ECON_CSV_COLUMN_TO: return KCI_ECON_NAME_BYTES_MAX;
    case KCI_ECON_CSV_COLUMN_AMOUNT: return KCI_ECON_CSV_NUMBER_BYTES_MAX;
    case KCI_ECON_CSV_COLUMN_IGNORED: return KCI_ECON_CSV_FIELD_BYTES_MAX;
    }
    return 0;
}

static size_t field_bound(const kci_econ_csv *csv)
{
    if (!csv->header_done) return KCI_ECON_CSV_HEADER_BYTES_MAX;
    return column_bound(csv, csv->column);
}

static kc_err field_byte(kci_econ_csv *csv, char byte, kci_econ_error *error)
{
    if (csv->field_length >= field_bound(csv)) {
        if (csv->header_done && csv->column >= csv->column_count)
            return csv_fail(csv, error, KC_ERR_PARSE, "more fields than the header has columns");
        char reason[128];
        snprintf(reason, sizeof reason, "field %d is longer than %zu bytes", csv->column + 1,
                 field_bound(csv));
        return csv_fail(csv, error, KC_ERR_TOO_LARGE, reason);
    }
    csv->field[csv->field_length++] = byte;
    return KC_OK;
}

static void trim(const char **text, size_t *length)
{
    while (*length > 0 && ((*text)[0] == ' ' || (*text)[0] == '\t')) {
        (*text)++;
        (*length)--;
    }
    while (*length > 0 && ((*text)[*length - 1] == ' ' || (*text)[*length - 1] == '\t'))
        (*length)--;
}

static kc_err header_field_end(kci_econ_csv *csv, kci_econ_error *error)
{
    if (csv->column >= KCI_ECON_CSV_COLUMNS_MAX)
        return csv_fail(csv, error, KC_ERR_TOO_LARGE, "more than 64 columns in the header");
    const char *name = csv->field;
    size_t length = csv->field_length;
    trim(&name, &length);
    kci_econ_csv_column column = KCI_ECON_CSV_COLUMN_IGNORED;
    if (length == 4 && memcmp(name, "from", 4) == 0) column = KCI_ECON_CSV_COLUMN_FROM;
    if (length == 2 && memcmp(name, "to", 2) == 0) column = KCI_ECON_CSV_COLUMN_TO;
    if (length == 6 && memcmp(name, "amount", 6) == 0) column = KCI_ECON_CSV_COLUMN_AMOUNT;
    for (int index = 0; index < csv->column; index++) {
        if (column != KCI_ECON_CSV_COLUMN_IGNORED && csv->columns[index] == column)
            return csv_fail(csv, error, KC_ERR_PARSE, "a column is named twice in the header");
    }
    csv->columns[csv->column] = column;
    csv->column_count = csv->column + 1;
    return KC_OK;
}

static void data_field_end(kci_econ_csv *csv)
{
    if (csv->column >= csv->column_count) return;
    const char *text = csv->field;
    size_t length = csv->field_length;
    switch (csv->columns[csv->column]) {
    case KCI_ECON_CSV_COLUMN_FROM:
        memcpy(csv->from, text, length);
        csv->from_length = length;
        csv->seen_from = true;
        break;
    case KCI_ECON_CSV_COLUMN_TO:
        memcpy(csv->to, text, length);
        csv->to_length = length;
        csv->seen_to = true;
        break;
    case KCI_ECON_CSV_COLUMN_AMOUNT:
        trim(&text, &length);
        memcpy(csv->amount, text, length);
        csv->amount_length = length;
        csv->seen_amount = true;
        break;
    case KCI_ECON_CSV_COLUMN_IGNORED: break;
    }
}

static kc_err field_end(kci_econ_csv *csv, kci_econ_error *error)
{
    kc_err err = KC_OK;
    if (!csv->header_done)
        err = header_field_end(csv, error);
    else if (csv->column >= csv->column_count)
        return csv_fail(csv, error, KC_ERR_PARSE, "more fields than the header has columns");
    else
        data_field_end(csv);
    csv->column++;
    csv->field_length = 0;
    return err;
}

static kc_err header_end(kci_econ_csv *csv, kci_econ_error *error)
{
    bool from = false, to = false, amount = false;
    for (int index = 0; index < csv->column_count; index++) {
        from |= csv->columns[index] == KCI_ECON_CSV_COLUMN_FROM;
        to |= csv->columns[index] == KCI_ECON_CSV_COLUMN_TO;
        amount |= csv->columns[index] == KCI_ECON_CSV_COLUMN_AMOUNT;
    }
    if (!from || !to || !amount)
        return csv_fail(csv, error, KC_ERR_PARSE,
                        "the header must name the columns from, to and amount "
                        "(e.g. \"from,to,amount\")");
    csv->header_done = true;
    return KC_OK;
}

static kc_err record_end(kci_econ_csv *csv, kci_econ_error *error)
{
    kc_err err = field_end(csv, error);
    if (err != KC_OK) return err;
    if (!csv->header_done) return header_end(csv, error);
    if (csv->column < csv->column_count) {
        char reason[128];
        snprintf(reason, sizeof reason, "%d fields where the header has %d columns", csv->column,
                 csv->column_count);
        return csv_fail(csv, error, KC_ERR_PARSE, reason);
    }
    assert(csv->seen_from && csv->seen_to && csv->seen_amount);
    double amount = 0;
    err = kci_econ_parse_amount(csv->amount, csv->amount_length, &amount, error);
    if (err == KC_OK)
        err = kci_econ_builder_add(csv->builder, csv->from, csv->from_length, csv->to,
                                   csv->to_length, amount, error);
    if (err != KC_OK) return csv_fail_inner(csv, error, err);
    return KC_OK;
}

static void line_reset(kci_econ_csv *csv)
{
    csv->column = 0;
    csv->field_length = 0;
    csv->line_empty = true;
    csv->seen_from = csv->seen_to = csv->seen_amount = false;
    csv->record_line = csv->line;
    csv->state = KCI_ECON_CSV_FIELD_START;
}

/* The end of a line (LF) in a state where a record may end. */
static kc_err line_end(kci_econ_csv *csv, kci_econ_error *error)
{
    kc_err err = KC_OK;
    if (!csv->line_empty) err = record_end(csv, error);
    csv->line++;
    if (err == KC_OK) line_reset(csv);
    return err;
}

static kc_err csv_byte(kci_econ_csv *csv, char byte, kci_econ_error *error)
{
    switch (csv->state) {
    case KCI_ECON_CSV_FIELD_START:
        if (byte == '#' && csv->line_empty) {
            csv->state = KCI_ECON_CSV_COMMENT;
            return KC_OK;
        }
        if (byte == '"') {
            csv->line_empty = false;
            csv->state = KCI_ECON_CSV_QUOTED;
            return KC_OK;
        }
        csv->state = KCI_ECON_CSV_UNQUOTED;
        return csv_byte(csv, byte, error);
    case KCI_ECON_CSV_UNQUOTED:
        if (byte == ',') {
            csv->line_empty = false;
            csv->state = KCI_ECON_CSV_FIELD_START;
            return field_end(csv, error);
        }
        if (byte == '\n') return line_end(csv, error);
        if (byte == '\r') {
            csv->state = KCI_ECON_CSV_CR;
            return KC_OK;
        }
        if (byte == '"')
            return csv_fail(csv, error, KC_ERR_PARSE, "a quote inside an unquoted field");
        csv->line_empty = false;
        return field_byte(csv, byte, error);
    case KCI_ECON_CSV_QUOTED:
        if (byte == '"') {
            csv->state = KCI_ECON_CSV_QUOTED_QUOTE;
            return KC_OK;
        }
        if (byte == '\n') csv->line++;
        return field_byte(csv, byte, error);
    case KCI_ECON_CSV_QUOTED_QUOTE:
        if (byte == '"') {
            csv->state = KCI_ECON_CSV_QUOTED;
            return field_byte(csv, byte, error);
        }
        csv->state = KCI_ECON_CSV_AFTER_QUOTED;
        return csv_byte(csv, byte, error);
    case KCI_ECON_CSV_AFTER_QUOTED:
        if (byte == ',') {
            csv->state = KCI_ECON_CSV_FIELD_START;
            return field_end(csv, error);
        }
        if (byte == '\n') return line_end(csv, error);
        if (byte == '\r') {
            csv->state = KCI_ECON_CSV_CR;
            return KC_OK;
        }
        return csv_fail(csv, error, KC_ERR_PARSE, "text after a closing quote");
    case KCI_ECON_CSV_COMMENT:
        if (byte == '\n') {
            csv->line++;
            line_reset(csv);
        }
        return KC_OK;
    case KCI_ECON_CSV_CR:
        if (byte != '\n') return csv_fail(csv, error, KC_ERR_PARSE, "a CR not followed by LF");
        return line_end(csv, error);
    case KCI_ECON_CSV_FAILED: return csv->err;
    }
    return KC_OK;
}

static bool csv_special(char byte)
{
    return byte == ',' || byte == '\n' || byte == '\r' || byte == '"';
}

/* A data line that is whole in bytes and plain: not a comment, no quote, no
 * CR, as many fields as the header has columns, each within its bound. Its
 * fields are read in place, without the per-byte states and the copies
 * (measured: loading 1,000,000 payments took 55 ms less of about 330).
 * Any other line returns 0 and goes through the state machine,
 * whose result is the same byte by byte (fuzz_econ_edges checks that whole,
 * byte-at-a-time and split feeding agree). Returns the bytes consumed, LF
 * included, or 0; *err is the record's outcome. */
static size_t csv_plain_line(kci_econ_csv *csv, const char *bytes, size_t length, kc_err *err,
                             kci_econ_error *error)
{
    assert(csv->header_done && csv->state == KCI_ECON_CSV_FIELD_START && csv->line_empty &&
           csv->column == 0 && csv->field_length == 0);
    const char *end = memchr(bytes, '\n', length);
    if (end == NULL || end == bytes || bytes[0] == '#') return 0;
    const char *from = NULL, *to = NULL, *amount = NULL;
    size_t from_length = 0, to_length = 0, amount_length = 0;
    int column = 0;
    const char *start = bytes;
    for (const char *at = bytes;; at++) {
        if (at < end && *at != ',') {
            if (*at == '"' || *at == '\r') return 0;
            continue;
        }
        size_t field_length = (size_t)(at - start);
        if (column >= csv->column_count || field_length > column_bound(csv, column)) return 0;
        switch (csv->columns[column]) {
        case KCI_ECON_CSV_COLUMN_FROM: from = start, from_length = field_length; break;
        case KCI_ECON_CSV_COLUMN_TO: to = start, to_length = field_length; break;
        case KCI_ECON_CSV_COLUMN_AMOUNT: amount = start, amount_length = field_length; break;
        case KCI_ECON_CSV_COLUMN_IGNORED: break;
        }
        column++;
        if (at == end) break;
        start = at + 1;
    }
    if (column != csv->column_count) return 0;
    assert(from != NULL && to != NULL && amount != NULL);
    trim(&amount, &amount_length);
    double value = 0;
    *err = kci_econ_parse_amount(amount, amount_length, &value, error);
    if (*err == KC_OK)
        *err = kci_econ_builder_add(csv->builder, from, from_length, to, to_length, value, error);
    if (*err != KC_OK) {
        csv_fail_inner(csv, error, *err);
        return (size_t)(end - bytes) + 1;
    }
    csv->line++;
    line_reset(csv);
    return (size_t)(end - bytes) + 1;
}

kc_err kci_econ_csv_feed(kci_econ_csv *csv, const char *bytes, size_t length, kci_econ_error *error)
{
    if (csv->state == KCI_ECON_CSV_FAILED) return csv->err;
    size_t index = 0;
    while (index < length) {
        if (csv->state == KCI_ECON_CSV_FIELD_START && csv->line_empty && csv->header_done &&
            csv->column == 0) {
            kc_err err = KC_OK;
            size_t used = csv_plain_line(csv, bytes + index, length - index, &err, error);
            if (err != KC_OK) return err;
            if (used > 0) {
                index += used;
                continue;
            }
        }
        /* The common case, a run of plain bytes of an unquoted field, is
         * copied at once; a run that would pass the field's bound goes
         * through the state machine byte by byte to report it. */
        if (csv->state == KCI_ECON_CSV_UNQUOTED) {
            size_t start = index;
            while (index < length && !csv_special(bytes[index]))
                index++;
            size_t run = index - start;
            if (csv->field_length + run <= field_bound(csv)) {
                memcpy(csv->field + csv->field_length, bytes + start, run);
                csv->field_length += run;
                if (run > 0) csv->line_empty = false;
            } else {
                index = start;
                while (index < length && !csv_special(bytes[index])) {
                    kc_err err = csv_byte(csv, bytes[index++], error);
                    if (err != KC_OK) return err;
                }
            }
            if (index == length) break;
        }
        kc_err err = csv_byte(csv, bytes[index++], error);
        if (err != KC_OK) return err;
    }
    return KC_OK;
}

kc_err kci_econ_csv_finish(kci_econ_csv *csv, kci_econ_error *error)
{
    switch (csv->state) {
    case KCI_ECON_CSV_FAILED: return csv->err;
    case KCI_ECON_CSV_QUOTED:
        return csv_fail(csv, error, KC_ERR_PARSE, "the file ends inside a quoted field");
    case KCI_ECON_CSV_COMMENT: break;
    case KCI_ECON_CSV_CR:
    case KCI_ECON_CSV_FIELD_START:
    case KCI_ECON_CSV_UNQUOTED:
    case KCI_ECON_CSV_QUOTED_QUOTE:
    case KCI_ECON_CSV_AFTER_QUOTED:
        if (csv->line_empty && csv->field_length == 0 && csv->column == 0) break;
        {
            kc_err err = record_end(csv, error);
            if (err != KC_OK) return err;
        }
        break;
    }
    if (!csv->header_done)
        return csv_fail(csv, error, KC_ERR_PARSE,
                        "no header line: the first line must name the columns, e.g. "
                        "\"from,to,amount\"");
    return KC_OK;
}

/* ===================================================================== JSON */

kc_err kci_econ_json_edges(const json_t *document, kci_econ_builder *builder, kci_econ_error *error)
{
    const json_t *edges = document;
    if (json_is_object(document)) edges = json_object_get(document, "edges");
    if (!json_is_array(edges)) {
        kci_econ_error_set(error, "expected {\"edges\":[...]} or an array of edges");
        return KC_ERR_PARSE;
    }
    size_t index = 0;
    const json_t *edge = NULL;
    json_array_foreach(edges, index, edge)
    {
        const json_t *from = json_object_get(edge, "from");
        const json_t *to = json_object_get(edge, "to");
        const json_t *amount = json_object_get(edge, "amount");
        if (!json_is_string(from) || !json_is_string(to) || !json_is_number(amount)) {
            kci_econ_error_set(error,
                               "edge #%zu: needs \"from\" and \"to\" (strings) and \"amount\" "
                               "(a number)",
                               index + 1);
            return KC_ERR_PARSE;
        }
        double value = json_number_value(amount);
        if (!isfinite(value) || value < 0) {
            kci_econ_error_set(error, "edge #%zu: negative amount %g", index + 1, value);
            return KC_ERR_PARSE;
        }
        kc_err err =
            kci_econ_builder_add(builder, json_string_value(from), json_string_length(from),
                                 json_string_value(to), json_string_length(to), value, error);
        if (err != KC_OK) {
            char reason[KCI_ECON_ERROR_BYTES];
            snprintf(reason, sizeof reason, "%s", error->text);
            kci_econ_error_set(error, "edge #%zu: %s", index + 1, reason);
            return err;
        }
    }
    return KC_OK;
}

kc_err kci_econ_json_load(const char *text, size_t length, kci_econ_builder *builder,
                          kci_econ_error *error)
{
    json_t *document = kci_econ_json_load_text(text, length, error);
    if (document == NULL) return KC_ERR_PARSE;
    kc_err err = kci_econ_json_edges(document, builder, error);
    json_decref(document);
    return err;
}

/* ===================================================================== file */

/* Sizes the builder for a regular file from its size and the lines in its
 * first chunk: one edge per line at most (repeated payments only make it
 * less). An estimate only, so running short of memory here is not an error:
 * the tables then grow as they go. */
static void reserve_for_file(FILE *file, const char *chunk, size_t length,
                             kci_econ_builder *builder)
{
    struct stat status;
    if (fstat(fileno(file), &status) != 0 || !S_ISREG(status.st_mode) || length == 0) return;
    int64_t lines = 0;
    for (const char *at = chunk; (at = memchr(at, '\n', length - (size_t)(at - chunk))) != NULL;
         at++)
        lines++;
    if (lines == 0) return;
    int64_t bytes_per_line = (int64_t)length / lines;
    if (bytes_per_line == 0) bytes_per_line = 1;
    (void)kci_econ_builder_reserve(builder, (int64_t)status.st_size / bytes_per_line + 1);
}

static kc_err load_stream(FILE *file, const char *path, kci_econ_builder *builder,
                          kci_econ_progress progress, void *progress_context, kci_econ_error *error)
{
    char *chunk = malloc(KCI_ECON_READ_CHUNK_BYTES);
    kci_econ_csv *csv = malloc(sizeof *csv);
    if (chunk == NULL || csv == NULL) {
        free(chunk);
        free(csv);
        kci_econ_error_set(error, "%s: out of memory", path);
        return KC_ERR_NOMEM;
    }
    /* Peek: JSON starts with '{' or '['; JSON is read whole (jansson). */
    size_t length = fread(chunk, 1, KCI_ECON_READ_CHUNK_BYTES, file);
    size_t first = 0;
    while (first < length && isspace((unsigned char)chunk[first]))
        first++;
    kc_err err = KC_OK;
    if (first < length && (chunk[first] == '{' || chunk[first] == '[')) {
        free(csv);
        /* Read it whole (stdin cannot be rewound), then parse with jansson. */
        size_t capacity = KCI_ECON_READ_CHUNK_BYTES;
        size_t used = length;
        while (length > 0) {
            if (used == capacity) {
                char *grown = realloc(chunk, capacity * 2);
                if (grown == NULL) {
                    free(chunk);
                    kci_econ_error_set(error, "%s: out of memory", path);
                    return KC_ERR_NOMEM;
                }
                chunk = grown;
                capacity *= 2;
            }
            length = fread(chunk + used, 1, capacity - used, file);
            used += length;
        }
        err = kci_econ_json_load(chunk, used, builder, error);
        free(chunk);
    } else {
        kci_econ_csv_init(csv, builder);
        reserve_for_file(file, chunk, length, builder);
        int64_t bytes_read = 0;
        while (length > 0 && err == KC_OK) {
            err = kci_econ_csv_feed(csv, chunk, length, error);
            bytes_read += (int64_t)length;
            if (progress != NULL) progress(progress_context, "bytes read", bytes_read, -1);
            length = fread(chunk, 1, KCI_ECON_READ_CHUNK_BYTES, file);
        }
        if (err == KC_OK && ferror(file)) {
            kci_econ_error_set(error, "cannot read: %s", strerror(errno));
            err = KC_ERR_IO;
        }
        if (err == KC_OK) err = kci_econ_csv_finish(csv, error);
        free(chunk);
        free(csv);
    }
    if (err != KC_OK) {
        char reason[KCI_ECON_ERROR_BYTES];
        snprintf(reason, sizeof reason, "%s", error->text);
        if (strncmp(reason, path, strlen(path)) != 0)
            kci_econ_error_set(error, "%s: %s", path, reason);
    }
    return err;
}

kc_err kci_econ_graph_load_file(const char *path, kci_econ_graph *graph, kci_econ_progress progress,
                                void *progress_context, kci_econ_error *error)
{
    FILE *file = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
    if (file == NULL) {
        kci_econ_error_set(error, "cannot open %s: %s", path, strerror(errno));
        return KC_ERR_IO;
    }
    kci_econ_builder builder;
    kci_econ_builder_init(&builder);
    kc_err err = load_stream(file, path, &builder, progress, progress_context, error);
    if (file != stdin) fclose(file);
    if (err == KC_OK) err = kci_econ_graph_finish(&builder, graph, error);
    kci_econ_builder_free(&builder);
    return err;
}
