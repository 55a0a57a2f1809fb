/* scc.h - strongly connected components of the money-flow graph (groups of
 * accounts where money can circulate from each to each: "industries") and,
 * for each component of more than one account, one shortest cycle of
 * payments through its first account (a supply chain). */
#ifndef KCI_ECON_SCC_H
#define KCI_ECON_SCC_H

#include "graph.h"

typedef struct kci_econ_scc {
    igraph_vector_int_t membership; /* component id per vertex */
    igraph_vector_int_t sizes;      /* vertices per component */
    int64_t component_count;
    int64_t nontrivial_count;            /* components of more than one vertex */
    igraph_vector_int_list_t cycles;     /* one per non-trivial component, by component id order */
    igraph_vector_int_t cycle_component; /* the component of each cycle */
} kci_econ_scc;

/* cycles: also find the cycles (one BFS per non-trivial component, linear
 * in the graph overall). */
kc_err kci_econ_scc_run(const kci_econ_graph *graph, bool cycles, kci_econ_scc *result,
                        kci_econ_error *error);
void kci_econ_scc_free(kci_econ_scc *result);

#endif
