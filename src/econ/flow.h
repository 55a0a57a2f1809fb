/* flow.h - maximum money flow from one account to another, a minimum cut
 * (the payment channels whose total bounds the flow) and the crucial
 * accounts: a smallest set of accounts other than source and sink whose
 * removal leaves no path of payments from source to sink (a minimum s-t
 * vertex cut, counted in accounts, not weighted). */
#ifndef KCI_ECON_FLOW_H
#define KCI_ECON_FLOW_H

#include "graph.h"

typedef struct kci_econ_maxflow {
    double value;
    double cut_weight;               /* sum of the cut edges' amounts == value */
    igraph_vector_int_t cut_edges;   /* edge ids, source side -> sink side */
    igraph_vector_int_t source_side; /* vertex ids on the source's side */
    igraph_vector_t flow;            /* per edge id */
    bool vertex_cut_computed;
    bool direct_payment;         /* source pays sink directly: no vertex cut */
    igraph_vector_int_t crucial; /* the minimum vertex cut */
} kci_econ_maxflow;

/* Computes the flow; KC_ERR_NOT_FOUND when no path of payments leads from
 * source to sink, KC_ERR_INVALID_ARGUMENT when source == sink. */
kc_err kci_econ_maxflow_run(const kci_econ_graph *graph, int64_t source, int64_t sink,
                            bool vertex_cut, kci_econ_maxflow *result, kci_econ_error *error);
void kci_econ_maxflow_free(kci_econ_maxflow *result);

#endif
