/* graph_load.h - reading a money-flow graph from an edge file.
 *
 * CSV (docs/econ.md): a header line naming the columns, among them "from",
 * "to" and "amount" in any order (others, such as "time_ms" or "transfer",
 * are ignored); then one payment per line. Fields are separated by commas
 * and may be quoted ("a ""quoted"" name"); lines end with LF or CR LF; blank
 * lines and lines starting with '#' are skipped. Amounts are decimal
 * numbers >= 0. The parser is a resumable byte state machine: feed it any
 * slices, errors name the line.
 *
 * JSON: {"edges":[{"from":"a","to":"b","amount":5}, ...]} (the ledger's
 * history reply) or a bare array of such objects.
 *
 * A file whose first non-blank byte is '{' or '[' is JSON, else CSV. */
#ifndef KCI_ECON_GRAPH_LOAD_H
#define KCI_ECON_GRAPH_LOAD_H

#include <jansson.h>
#include <stdio.h>

#include "graph.h"

enum {
    KCI_ECON_CSV_COLUMNS_MAX = 64,
    KCI_ECON_CSV_HEADER_BYTES_MAX = 64, /* one column name */
    KCI_ECON_CSV_NUMBER_BYTES_MAX = 64,
    KCI_ECON_CSV_FIELD_BYTES_MAX = 4096, /* an ignored column */
    KCI_ECON_READ_CHUNK_BYTES = 256 * 1024,
};

typedef enum kci_econ_csv_state {
    KCI_ECON_CSV_FIELD_START = 0, /* at the start of a field */
    KCI_ECON_CSV_UNQUOTED,        /* inside a field that did not start with '"' */
    KCI_ECON_CSV_QUOTED,          /* inside "..." */
    KCI_ECON_CSV_QUOTED_QUOTE,    /* a '"' inside "...": "" or the closing quote */
    KCI_ECON_CSV_AFTER_QUOTED,    /* after the closing quote: ',' or end of line */
    KCI_ECON_CSV_COMMENT,         /* a '#' line, skipped to its LF */
    KCI_ECON_CSV_CR,              /* a CR ended the line: only LF may follow */
    KCI_ECON_CSV_FAILED,          /* an error was reported; feeding stops */
} kci_econ_csv_state;

typedef enum kci_econ_csv_column {
    KCI_ECON_CSV_COLUMN_IGNORED = 0,
    KCI_ECON_CSV_COLUMN_FROM,
    KCI_ECON_CSV_COLUMN_TO,
    KCI_ECON_CSV_COLUMN_AMOUNT,
} kci_econ_csv_column;

typedef struct kci_econ_csv {
    kci_econ_csv_state state;
    kci_econ_builder *builder;
    int64_t line;        /* 1-based line of the current byte */
    int64_t record_line; /* the line where the current record started */
    int column;          /* index of the current field */
    bool header_done;
    bool line_empty; /* nothing but the line terminator so far */
    int column_count;
    kci_econ_csv_column columns[KCI_ECON_CSV_COLUMNS_MAX];
    /* the field being read; header fields and from/to/amount are stored */
    char field[KCI_ECON_CSV_FIELD_BYTES_MAX + 1];
    size_t field_length;
    char from[KCI_ECON_NAME_BYTES_MAX + 1];
    size_t from_length;
    char to[KCI_ECON_NAME_BYTES_MAX + 1];
    size_t to_length;
    char amount[KCI_ECON_CSV_NUMBER_BYTES_MAX + 1];
    size_t amount_length;
    bool seen_from, seen_to, seen_amount;
    kc_err err;
} kci_econ_csv;

void kci_econ_csv_init(kci_econ_csv *csv, kci_econ_builder *builder);
/* Feeds bytes; KC_OK or the first error (the parser then stays failed). */
kc_err kci_econ_csv_feed(kci_econ_csv *csv, const char *bytes, size_t length,
                         kci_econ_error *error);
/* At end of input: completes a last line without LF. */
kc_err kci_econ_csv_finish(kci_econ_csv *csv, kci_econ_error *error);

/* Adds the edges of a parsed JSON document (object with "edges" or array).
 * Errors name the edge's index. */
kc_err kci_econ_json_edges(const json_t *document, kci_econ_builder *builder,
                           kci_econ_error *error);
/* Parses JSON text into the builder (syntax errors carry line and column). */
kc_err kci_econ_json_load(const char *text, size_t length, kci_econ_builder *builder,
                          kci_econ_error *error);

/* Parses a decimal amount: finite and >= 0. what names it in the error. */
kc_err kci_econ_parse_amount(const char *text, size_t length, double *out, kci_econ_error *error);

/* Reads path (CSV or JSON by its first byte) into a graph. progress, when
 * not NULL, is called now and then with the bytes read so far. Errors start
 * with the path. */
typedef void (*kci_econ_progress)(void *context, const char *what, int64_t done, int64_t total);
kc_err kci_econ_graph_load_file(const char *path, kci_econ_graph *graph, kci_econ_progress progress,
                                void *progress_context, kci_econ_error *error);

#endif
