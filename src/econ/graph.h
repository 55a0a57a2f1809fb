/* graph.h - the money-flow graph: accounts are vertices, payments are
 * directed edges payer -> payee weighted by the amount paid.
 *
 * A builder interns account names (an open-addressing table, name -> vertex
 * id) and sums every payment with the same (payer, payee) into one edge, so
 * a ledger history of millions of transfers becomes a graph with one edge
 * per pair of accounts that ever paid each other. Payments to oneself are
 * dropped (they move no money between accounts). kci_econ_graph_finish
 * turns the builder into an igraph graph with the amounts as a vector, which
 * every algorithm reads. */
#ifndef KCI_ECON_GRAPH_H
#define KCI_ECON_GRAPH_H

#include <igraph.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kingcobra/err.h"

enum {
    KCI_ECON_NAME_BYTES_MAX = 256,          /* an account name */
    KCI_ECON_NODES_MAX = 50 * 1000 * 1000,  /* bounds every table below */
    KCI_ECON_EDGES_MAX = 200 * 1000 * 1000, /* distinct (payer, payee) pairs */
    KCI_ECON_ERROR_BYTES = 512,
    KCI_ECON_ARENA_CHUNK_BYTES = 1024 * 1024,
    KCI_ECON_RESERVE_PAYMENTS_MAX = 1024 * 1024, /* see kci_econ_builder_reserve */
    KCI_ECON_PENDING_MAX = 64,                   /* payments queued before their lookups run */
    KCI_ECON_PENDING_TEXT_BYTES = KCI_ECON_PENDING_MAX * 2 * KCI_ECON_NAME_BYTES_MAX,
};

/* A payment queued in the builder: its names (in the builder's pending
 * text), their hashes, and, once looked up, their vertex ids. */
typedef struct kci_econ_pending {
    uint64_t from_hash, to_hash;
    uint32_t from_offset, to_offset;
    uint32_t from_length, to_length;
    int32_t from_id, to_id;
    double amount;
} kci_econ_pending;

/* Error text of a failed load or algorithm, shown to the user as is. */
typedef struct kci_econ_error {
    char text[KCI_ECON_ERROR_BYTES];
} kci_econ_error;

void kci_econ_error_set(kci_econ_error *error, const char *format, ...)
    __attribute__((format(printf, 2, 3)));

/* A slot of the name table: the name itself (NULL: empty), 32 bits of its
 * hash, so a probe compares strings only on a likely match, and the vertex
 * id; a hit costs the slot's cache line and the name's, nothing more. */
typedef struct kci_econ_name_slot {
    const char *name;
    uint32_t tag;
    uint32_t id;
} kci_econ_name_slot;

/* Names live in chunks that never move, so names[] can point into them. */
typedef struct kci_econ_arena {
    char **chunks;
    int64_t chunk_count;
    size_t used; /* in the last chunk */
} kci_econ_arena;

typedef struct kci_econ_builder {
    /* vertices */
    char **names;
    int64_t node_count;
    int64_t node_capacity;
    kci_econ_arena arena;
    kci_econ_name_slot *name_slots;
    int64_t name_slot_count;
    /* edges */
    int32_t *edge_from;
    int32_t *edge_to;
    double *edge_amount;
    int64_t edge_count; /* payments kept (self-payments dropped) */
    int64_t edge_capacity;
    int64_t compacted_count; /* edges [0, this) are distinct, grouped by payer */
    int64_t payments_read;   /* before summing */
    int64_t self_payments_dropped;
    /* payments queued for kci_econ_builder_flush */
    kci_econ_pending pending[KCI_ECON_PENDING_MAX];
    int pending_count;
    char *pending_text;
    size_t pending_text_used;
} kci_econ_builder;

typedef struct kci_econ_graph {
    igraph_t graph;          /* directed; vertex i is names[i] */
    igraph_vector_t amounts; /* per edge id */
    char **names;
    int64_t node_count;
    int64_t edge_count;
    int64_t payments_read;
    kci_econ_arena arena;
    kci_econ_name_slot *name_slots; /* kept for lookups by name */
    int64_t name_slot_count;
    bool made; /* graph and amounts are allocated */
} kci_econ_graph;

void kci_econ_builder_init(kci_econ_builder *builder);
void kci_econ_builder_free(kci_econ_builder *builder);
/* Sizes the payment arrays for about payments_expected payments at once
 * (an estimate, e.g. from the file's size), so that they are not summed in
 * batches (edges_compact) before the end only because the arrays started
 * small. At most KCI_ECON_RESERVE_PAYMENTS_MAX (16 MiB of arrays): a large
 * file of repeated payments is still summed in batches as it is read, in
 * memory bounded by its distinct pairs. Never shrinks; NOMEM if the memory
 * is not there. */
kc_err kci_econ_builder_reserve(kci_econ_builder *builder, int64_t payments_expected);
/* Adds the payment from -> to of amount (finite, >= 0: checked by the
 * caller, which knows the line). The names need not be NUL-terminated.
 * Payments are queued and looked up in batches (kci_econ_builder_flush,
 * called when the queue is full and by kci_econ_graph_finish): a name is
 * checked here, but running out of memory or past a bound is reported by
 * the call that flushes. */
kc_err kci_econ_builder_flush(kci_econ_builder *builder, kci_econ_error *error);
kc_err kci_econ_builder_add(kci_econ_builder *builder, const char *from, size_t from_length,
                            const char *to, size_t to_length, double amount, kci_econ_error *error);
/* Makes the graph; the builder is emptied (its names move to the graph). */
kc_err kci_econ_graph_finish(kci_econ_builder *builder, kci_econ_graph *graph,
                             kci_econ_error *error);
void kci_econ_graph_free(kci_econ_graph *graph);
/* The vertex id of name, or -1. */
int64_t kci_econ_graph_find(const kci_econ_graph *graph, const char *name);
/* The vertex id of name, or KC_ERR_NOT_FOUND with "unknown account 'x' (given
 * as <what>)" in error. */
kc_err kci_econ_graph_vertex(const kci_econ_graph *graph, const char *name, const char *what,
                             int64_t *vertex_out, kci_econ_error *error);
/* Sum of the amounts into / out of each vertex (vectors of node_count). */
void kci_econ_graph_inflow(const kci_econ_graph *graph, double *inflow, double *outflow);

/* Maps igraph's status to ours, with igraph's reason in error. */
kc_err kci_econ_igraph_error(igraph_error_t status, const char *what, kci_econ_error *error);

#endif
