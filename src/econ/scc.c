/* scc.c - strongly connected components (igraph_connected_components,
 * IGRAPH_STRONG) and one cycle per non-trivial component.
 *
 * igraph 0.10 has cycle functions only for undirected graphs (fundamental
 * cycles, minimum cycle basis), so the cycle is found here: a BFS from the
 * component's first vertex, over edges that stay in the component, stops at
 * the first edge back to that vertex; the BFS tree path plus that edge is a
 * shortest cycle through it. Each vertex is visited by the BFS of its own
 * component only, so all cycles together cost O(V + E). */
#include "scc.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

typedef struct out_csr {
    int64_t *offsets; /* node_count + 1 */
    int32_t *targets;
} out_csr;

static bool csr_build(const kci_econ_graph *graph, out_csr *csr)
{
    int64_t node_count = graph->node_count;
    csr->offsets = calloc((size_t)node_count + 1, sizeof *csr->offsets);
    csr->targets = malloc(((size_t)graph->edge_count + 1) * sizeof *csr->targets);
    if (csr->offsets == NULL || csr->targets == NULL) return false;
    for (int64_t edge = 0; edge < graph->edge_count; edge++)
        csr->offsets[IGRAPH_FROM(&graph->graph, edge) + 1]++;
    for (int64_t vertex = 0; vertex < node_count; vertex++)
        csr->offsets[vertex + 1] += csr->offsets[vertex];
    int64_t *fill = malloc(((size_t)node_count + 1) * sizeof *fill);
    if (fill == NULL) return false;
    memcpy(fill, csr->offsets, ((size_t)node_count + 1) * sizeof *fill);
    for (int64_t edge = 0; edge < graph->edge_count; edge++)
        csr->targets[fill[IGRAPH_FROM(&graph->graph, edge)]++] =
            (int32_t)IGRAPH_TO(&graph->graph, edge);
    free(fill);
    return true;
}

/* BFS from start inside its component; writes the cycle start -> ... -> start
 * (start listed once) into cycle. parent[] is -2 for unvisited, shared
 * across components (each vertex is touched by one BFS only). */
static igraph_error_t cycle_through(const out_csr *csr, const igraph_vector_int_t *membership,
                                    int32_t start, int32_t *parent, int32_t *queue,
                                    igraph_vector_int_t *cycle)
{
    igraph_integer_t component = VECTOR(*membership)[start];
    int64_t head = 0, tail = 0;
    queue[tail++] = start;
    parent[start] = -1;
    while (head < tail) {
        int32_t vertex = queue[head++];
        for (int64_t index = csr->offsets[vertex]; index < csr->offsets[vertex + 1]; index++) {
            int32_t next = csr->targets[index];
            if (VECTOR(*membership)[next] != component) continue;
            if (next == start) {
                /* Walk back from vertex to start, then reverse. */
                igraph_vector_int_clear(cycle);
                for (int32_t at = vertex; at != -1; at = parent[at])
                    IGRAPH_CHECK(igraph_vector_int_push_back(cycle, at));
                igraph_vector_int_reverse(cycle);
                return IGRAPH_SUCCESS;
            }
            if (parent[next] != -2) continue;
            parent[next] = vertex;
            queue[tail++] = next;
        }
    }
    assert(false && "a strongly connected component of two or more vertices has a cycle");
    return IGRAPH_FAILURE;
}

static kc_err find_cycles(const kci_econ_graph *graph, kci_econ_scc *result, kci_econ_error *error)
{
    out_csr csr = {0};
    int32_t *parent = malloc(((size_t)graph->node_count + 1) * sizeof *parent);
    int32_t *queue = malloc(((size_t)graph->node_count + 1) * sizeof *queue);
    bool *started = calloc((size_t)result->component_count + 1, sizeof *started);
    kc_err err = KC_OK;
    if (parent == NULL || queue == NULL || started == NULL || !csr_build(graph, &csr)) {
        kci_econ_error_set(error, "out of memory finding cycles");
        err = KC_ERR_NOMEM;
        goto done;
    }
    for (int64_t vertex = 0; vertex < graph->node_count; vertex++)
        parent[vertex] = -2;
    for (int64_t vertex = 0; vertex < graph->node_count; vertex++) {
        igraph_integer_t component = VECTOR(result->membership)[vertex];
        if (started[component] || VECTOR(result->sizes)[component] < 2) continue;
        started[component] = true;
        igraph_vector_int_t cycle;
        igraph_error_t status = igraph_vector_int_init(&cycle, 0);
        if (status == IGRAPH_SUCCESS)
            status =
                cycle_through(&csr, &result->membership, (int32_t)vertex, parent, queue, &cycle);
        if (status == IGRAPH_SUCCESS)
            status = igraph_vector_int_list_push_back(&result->cycles, &cycle); /* takes it */
        else
            igraph_vector_int_destroy(&cycle);
        if (status == IGRAPH_SUCCESS)
            status = igraph_vector_int_push_back(&result->cycle_component, component);
        if (status != IGRAPH_SUCCESS) {
            err = kci_econ_igraph_error(status, "finding cycles", error);
            goto done;
        }
    }
done:
    free(csr.offsets);
    free(csr.targets);
    free(parent);
    free(queue);
    free(started);
    return err;
}

kc_err kci_econ_scc_run(const kci_econ_graph *graph, bool cycles, kci_econ_scc *result,
                        kci_econ_error *error)
{
    memset(result, 0, sizeof *result);
    igraph_vector_int_init(&result->membership, 0);
    igraph_vector_int_init(&result->sizes, 0);
    igraph_vector_int_list_init(&result->cycles, 0);
    igraph_vector_int_init(&result->cycle_component, 0);
    igraph_integer_t count = 0;
    igraph_error_t status = igraph_connected_components(&graph->graph, &result->membership,
                                                        &result->sizes, &count, IGRAPH_STRONG);
    if (status != IGRAPH_SUCCESS) return kci_econ_igraph_error(status, "components", error);
    result->component_count = count;
    for (igraph_integer_t component = 0; component < count; component++)
        if (VECTOR(result->sizes)[component] > 1) result->nontrivial_count++;
    if (!cycles) return KC_OK;
    return find_cycles(graph, result, error);
}

void kci_econ_scc_free(kci_econ_scc *result)
{
    igraph_vector_int_destroy(&result->membership);
    igraph_vector_int_destroy(&result->sizes);
    igraph_vector_int_list_destroy(&result->cycles);
    igraph_vector_int_destroy(&result->cycle_component);
}
