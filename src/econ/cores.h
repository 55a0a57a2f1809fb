/* cores.h - k-core decomposition of the money-flow graph, degrees counted
 * in both directions (a payment in and a payment out each count one). The
 * densest core (largest k) holds the hubs of money circulation. */
#ifndef KCI_ECON_CORES_H
#define KCI_ECON_CORES_H

#include "graph.h"

typedef struct kci_econ_cores {
    igraph_vector_int_t coreness; /* per vertex */
    int64_t k_max;
    int64_t *count_by_k; /* k_max + 1 entries: vertices of coreness exactly k */
} kci_econ_cores;

kc_err kci_econ_cores_run(const kci_econ_graph *graph, kci_econ_cores *result,
                          kci_econ_error *error);
void kci_econ_cores_free(kci_econ_cores *result);

#endif
