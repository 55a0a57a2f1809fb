/* strata.h - rich and poor: an edge is rich when its amount is at least the
 * threshold W, poor otherwise; an account is rich when its net storage
 * (inflow minus outflow) is at least W, poor otherwise. */
#ifndef KCI_ECON_STRATA_H
#define KCI_ECON_STRATA_H

#include "graph.h"

typedef struct kci_econ_strata {
    double threshold;
    int64_t rich_edge_count, poor_edge_count;
    double rich_edge_total, poor_edge_total;
    int64_t rich_vertex_count, poor_vertex_count;
    double rich_vertex_total, poor_vertex_total; /* sums of net storage */
    bool *edge_rich;                             /* per edge */
    bool *vertex_rich;                           /* per vertex */
    double *net;                                 /* net storage per vertex */
} kci_econ_strata;

kc_err kci_econ_strata_run(const kci_econ_graph *graph, double threshold, kci_econ_strata *result,
                           kci_econ_error *error);
void kci_econ_strata_free(kci_econ_strata *result);

#endif
