/* strata.c - classifying edges and accounts as rich or poor (strata.h). */
#include "strata.h"

#include <stdlib.h>
#include <string.h>

kc_err kci_econ_strata_run(const kci_econ_graph *graph, double threshold, kci_econ_strata *result,
                           kci_econ_error *error)
{
    memset(result, 0, sizeof *result);
    result->threshold = threshold;
    size_t node_count = (size_t)graph->node_count;
    result->edge_rich = calloc((size_t)graph->edge_count + 1, sizeof *result->edge_rich);
    result->vertex_rich = calloc(node_count + 1, sizeof *result->vertex_rich);
    result->net = calloc(node_count + 1, sizeof *result->net);
    double *outflow = calloc(node_count + 1, sizeof *outflow);
    if (result->edge_rich == NULL || result->vertex_rich == NULL || result->net == NULL ||
        outflow == NULL) {
        free(outflow);
        kci_econ_strata_free(result);
        kci_econ_error_set(error, "out of memory");
        return KC_ERR_NOMEM;
    }
    for (int64_t edge = 0; edge < graph->edge_count; edge++) {
        double amount = VECTOR(graph->amounts)[edge];
        bool rich = amount >= threshold;
        result->edge_rich[edge] = rich;
        if (rich) {
            result->rich_edge_count++;
            result->rich_edge_total += amount;
        } else {
            result->poor_edge_count++;
            result->poor_edge_total += amount;
        }
    }
    kci_econ_graph_inflow(graph, result->net, outflow);
    for (int64_t vertex = 0; vertex < graph->node_count; vertex++) {
        double net = result->net[vertex] - outflow[vertex];
        result->net[vertex] = net;
        bool rich = net >= threshold;
        result->vertex_rich[vertex] = rich;
        if (rich) {
            result->rich_vertex_count++;
            result->rich_vertex_total += net;
        } else {
            result->poor_vertex_count++;
            result->poor_vertex_total += net;
        }
    }
    free(outflow);
    return KC_OK;
}

void kci_econ_strata_free(kci_econ_strata *result)
{
    free(result->edge_rich);
    free(result->vertex_rich);
    free(result->net);
    memset(result, 0, sizeof *result);
}
