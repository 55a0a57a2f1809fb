/* cores.c - coreness with igraph_coreness (Batagelj-Zaversnik, O(V + E)),
 * mode IGRAPH_ALL: in- plus out-degree, as networkx's core_number counts a
 * directed graph. */
#include "cores.h"

#include <stdlib.h>
#include <string.h>

kc_err kci_econ_cores_run(const kci_econ_graph *graph, kci_econ_cores *result,
                          kci_econ_error *error)
{
    memset(result, 0, sizeof *result);
    igraph_error_t status = igraph_vector_int_init(&result->coreness, 0);
    if (status == IGRAPH_SUCCESS)
        status = igraph_coreness(&graph->graph, &result->coreness, IGRAPH_ALL);
    if (status != IGRAPH_SUCCESS) return kci_econ_igraph_error(status, "coreness", error);
    for (int64_t vertex = 0; vertex < graph->node_count; vertex++)
        if (VECTOR(result->coreness)[vertex] > result->k_max)
            result->k_max = VECTOR(result->coreness)[vertex];
    result->count_by_k = calloc((size_t)result->k_max + 1, sizeof *result->count_by_k);
    if (result->count_by_k == NULL) {
        kci_econ_error_set(error, "out of memory");
        return KC_ERR_NOMEM;
    }
    for (int64_t vertex = 0; vertex < graph->node_count; vertex++)
        result->count_by_k[VECTOR(result->coreness)[vertex]]++;
    return KC_OK;
}

void kci_econ_cores_free(kci_econ_cores *result)
{
    igraph_vector_int_destroy(&result->coreness);
    free(result->count_by_k);
    result->count_by_k = NULL;
}
