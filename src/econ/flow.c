/* flow.c - max-flow, min cut and the minimum vertex cut between two
 * accounts, on igraph's push-relabel solver (igraph_maxflow).
 *
 * The vertex cut is a second max-flow on the split graph: every account v
 * becomes v_in -> v_out with capacity 1 (source and sink: unbounded), every
 * payment a -> b with a positive amount becomes a_out -> b_in, unbounded.
 * A minimum cut there cuts only unit edges, and the accounts whose unit edge
 * is cut are a smallest set whose removal disconnects sink from source
 * (Menger). If the source pays the sink directly no such set exists. */
#include "flow.h"

#include <assert.h>
#include <string.h>

static kc_err reachable(const kci_econ_graph *graph, int64_t source, int64_t sink, bool *out,
                        kci_econ_error *error)
{
    igraph_vector_int_t seen;
    igraph_error_t status = igraph_vector_int_init(&seen, 0);
    if (status == IGRAPH_SUCCESS)
        status = igraph_subcomponent(&graph->graph, &seen, source, IGRAPH_OUT);
    if (status != IGRAPH_SUCCESS) {
        igraph_vector_int_destroy(&seen);
        return kci_econ_igraph_error(status, "reachability", error);
    }
    *out = igraph_vector_int_contains(&seen, sink);
    igraph_vector_int_destroy(&seen);
    return KC_OK;
}

static kc_err vertex_cut(const kci_econ_graph *graph, int64_t source, int64_t sink,
                         kci_econ_maxflow *result, kci_econ_error *error)
{
    int64_t node_count = graph->node_count;
    double unbounded = (double)node_count + 1;
    igraph_vector_int_t edges;
    igraph_vector_t capacity;
    igraph_t split;
    igraph_vector_int_t cut;
    igraph_error_t status = igraph_vector_int_init(&edges, 0);
    if (status != IGRAPH_SUCCESS) return kci_econ_igraph_error(status, "vertex cut", error);
    igraph_vector_init(&capacity, 0);
    igraph_vector_int_init(&cut, 0);
    status = igraph_vector_int_reserve(&edges, 2 * (node_count + graph->edge_count));
    if (status == IGRAPH_SUCCESS)
        status = igraph_vector_reserve(&capacity, node_count + graph->edge_count);
    for (int64_t vertex = 0; vertex < node_count && status == IGRAPH_SUCCESS; vertex++) {
        igraph_vector_int_push_back(&edges, vertex);
        igraph_vector_int_push_back(&edges, node_count + vertex);
        igraph_vector_push_back(&capacity, vertex == source || vertex == sink ? unbounded : 1);
    }
    for (int64_t edge = 0; edge < graph->edge_count && status == IGRAPH_SUCCESS; edge++) {
        if (VECTOR(graph->amounts)[edge] <= 0) continue;
        igraph_integer_t from = IGRAPH_FROM(&graph->graph, edge);
        igraph_integer_t to = IGRAPH_TO(&graph->graph, edge);
        if (from == source && to == sink) result->direct_payment = true;
        igraph_vector_int_push_back(&edges, node_count + from);
        igraph_vector_int_push_back(&edges, to);
        igraph_vector_push_back(&capacity, unbounded);
    }
    if (status == IGRAPH_SUCCESS) status = igraph_create(&split, &edges, 2 * node_count, true);
    igraph_vector_int_destroy(&edges);
    if (status != IGRAPH_SUCCESS) {
        igraph_vector_destroy(&capacity);
        igraph_vector_int_destroy(&cut);
        return kci_econ_igraph_error(status, "vertex cut", error);
    }
    igraph_real_t value = 0;
    if (!result->direct_payment)
        status =
            igraph_maxflow(&split, &value, NULL, &cut, NULL, NULL, source, sink, &capacity, NULL);
    for (igraph_integer_t index = 0; status == IGRAPH_SUCCESS && !result->direct_payment &&
                                     index < igraph_vector_int_size(&cut);
         index++) {
        igraph_integer_t edge = VECTOR(cut)[index];
        assert(edge < node_count); /* only unit edges can be in a minimum cut */
        status = igraph_vector_int_push_back(&result->crucial, edge);
    }
    igraph_destroy(&split);
    igraph_vector_destroy(&capacity);
    igraph_vector_int_destroy(&cut);
    if (status != IGRAPH_SUCCESS) return kci_econ_igraph_error(status, "vertex cut", error);
    result->vertex_cut_computed = true;
    return KC_OK;
}

kc_err kci_econ_maxflow_run(const kci_econ_graph *graph, int64_t source, int64_t sink,
                            bool want_vertex_cut, kci_econ_maxflow *result, kci_econ_error *error)
{
    memset(result, 0, sizeof *result);
    igraph_vector_int_init(&result->cut_edges, 0);
    igraph_vector_int_init(&result->source_side, 0);
    igraph_vector_init(&result->flow, 0);
    igraph_vector_int_init(&result->crucial, 0);
    if (source == sink) {
        kci_econ_error_set(error, "source and sink are the same account '%s'",
                           graph->names[source]);
        return KC_ERR_INVALID_ARGUMENT;
    }
    bool connected = false;
    kc_err err = reachable(graph, source, sink, &connected, error);
    if (err != KC_OK) return err;
    if (!connected) {
        kci_econ_error_set(error,
                           "no path of payments leads from '%s' to '%s': source and sink are "
                           "disconnected, the flow is 0",
                           graph->names[source], graph->names[sink]);
        return KC_ERR_NOT_FOUND;
    }
    igraph_error_t status =
        igraph_maxflow(&graph->graph, &result->value, &result->flow, &result->cut_edges,
                       &result->source_side, NULL, source, sink, &graph->amounts, NULL);
    if (status != IGRAPH_SUCCESS) return kci_econ_igraph_error(status, "max-flow", error);
    for (igraph_integer_t index = 0; index < igraph_vector_int_size(&result->cut_edges); index++)
        result->cut_weight += VECTOR(graph->amounts)[VECTOR(result->cut_edges)[index]];
    if (!want_vertex_cut) return KC_OK;
    return vertex_cut(graph, source, sink, result, error);
}

void kci_econ_maxflow_free(kci_econ_maxflow *result)
{
    igraph_vector_int_destroy(&result->cut_edges);
    igraph_vector_int_destroy(&result->source_side);
    igraph_vector_destroy(&result->flow);
    igraph_vector_int_destroy(&result->crucial);
}
