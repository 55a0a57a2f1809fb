/* fuzz_econ_edges.c - libFuzzer target for the money-flow edge-file parsers
 * (src/econ/graph_load.c).
 *
 * The first byte picks the format (even: CSV, odd: JSON) and a split seed;
 * the rest is the file. CSV is parsed three ways: whole, one byte at a
 * time, and in pieces whose sizes come from the seed. Checks:
 *  - the three agree: same status, same error text, same graph (accounts,
 *    edges, payments, total amount);
 *  - a loaded graph has finite amounts >= 0, no more edges than payments,
 *    no self-loop, and every account name is found again by its name. */
#include <math.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "econ/graph_load.h"

#define FUZZ_CHECK(condition)                                                                      \
    do {                                                                                           \
        if (!(condition)) abort();                                                                 \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef struct outcome {
    kc_err err;
    kci_econ_error error;
    int64_t node_count, edge_count, payments;
    double total;
} outcome;

static void graph_check(kci_econ_graph *graph, outcome *out)
{
    out->node_count = graph->node_count;
    out->edge_count = graph->edge_count;
    out->payments = graph->payments_read;
    FUZZ_CHECK(graph->edge_count <= graph->payments_read);
    for (int64_t edge = 0; edge < graph->edge_count; edge++) {
        double amount = VECTOR(graph->amounts)[edge];
        FUZZ_CHECK(isfinite(amount) && amount >= 0);
        FUZZ_CHECK(IGRAPH_FROM(&graph->graph, edge) != IGRAPH_TO(&graph->graph, edge));
        out->total += amount;
    }
    for (int64_t vertex = 0; vertex < graph->node_count; vertex++)
        FUZZ_CHECK(kci_econ_graph_find(graph, graph->names[vertex]) == vertex);
}

/* piece_seed 0: whole; 1: bytewise; else pieces of 1 + (seed-driven) bytes. */
static void parse_csv(const uint8_t *data, size_t size, unsigned piece_seed, outcome *out)
{
    memset(out, 0, sizeof *out);
    kci_econ_builder builder;
    kci_econ_builder_init(&builder);
    kci_econ_csv *csv = malloc(sizeof *csv);
    FUZZ_CHECK(csv != NULL);
    kci_econ_csv_init(csv, &builder);
    size_t at = 0;
    unsigned state = piece_seed;
    while (at < size && out->err == KC_OK) {
        size_t piece = size - at;
        if (piece_seed == 1) piece = 1;
        if (piece_seed > 1) {
            state = state * 1103515245u + 12345u;
            piece = 1 + (state >> 16) % 17;
            if (piece > size - at) piece = size - at;
        }
        out->err = kci_econ_csv_feed(csv, (const char *)data + at, piece, &out->error);
        at += piece;
    }
    if (out->err == KC_OK) out->err = kci_econ_csv_finish(csv, &out->error);
    free(csv);
    kci_econ_graph graph;
    if (out->err == KC_OK) out->err = kci_econ_graph_finish(&builder, &graph, &out->error);
    if (out->err == KC_OK) {
        graph_check(&graph, out);
        kci_econ_graph_free(&graph);
    }
    kci_econ_builder_free(&builder);
}

static void same(const outcome *a, const outcome *b)
{
    FUZZ_CHECK(a->err == b->err);
    FUZZ_CHECK(strcmp(a->error.text, b->error.text) == 0);
    FUZZ_CHECK(a->node_count == b->node_count && a->edge_count == b->edge_count);
    FUZZ_CHECK(a->payments == b->payments);
    /* sums in a different order may round differently only if the graph
     * differs; same order here, so exactly equal */
    FUZZ_CHECK(a->total == b->total || (isnan(a->total) && isnan(b->total)));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    unsigned control = data[0];
    data++;
    size--;
    if (control % 2 == 1) {
        kci_econ_builder builder;
        kci_econ_builder_init(&builder);
        kci_econ_error error = {{0}};
        kc_err err = kci_econ_json_load((const char *)data, size, &builder, &error);
        kci_econ_graph graph;
        if (err == KC_OK) err = kci_econ_graph_finish(&builder, &graph, &error);
        if (err == KC_OK) {
            outcome out = {0};
            graph_check(&graph, &out);
            kci_econ_graph_free(&graph);
        }
        kci_econ_builder_free(&builder);
        return 0;
    }
    static outcome whole, bytewise, pieces;
    parse_csv(data, size, 0, &whole);
    parse_csv(data, size, 1, &bytewise);
    parse_csv(data, size, 2 + control, &pieces);
    same(&whole, &bytewise);
    same(&whole, &pieces);
    return 0;
}
