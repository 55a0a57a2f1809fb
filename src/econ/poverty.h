/* poverty.h - the poverty-alleviation linear program (docs/econ.md gives
 * the formulation): move money along the existing payment channels so as
 * to shrink the gap between the money on rich channels (amount >= W) and on
 * poor ones, keeping every account's net storage, no channel crossing the
 * threshold (the parity bounds), and the rich channels carrying at least
 * epsilon times what the poor ones carry. Solved with GLPK's simplex. */
#ifndef KCI_ECON_POVERTY_H
#define KCI_ECON_POVERTY_H

#include "graph.h"

typedef struct kci_econ_poverty {
    double threshold, epsilon;
    int64_t rich_count, poor_count;
    double rich_before, poor_before; /* totals on rich / poor edges */
    double rich_after, poor_after;
    double objective;      /* rich_after - poor_after */
    double *flow;          /* per edge, the new amount */
    bool *rich;            /* per edge */
    int64_t changed_count; /* edges whose amount changed */
} kci_econ_poverty;

/* KC_ERR_INVALID_ARGUMENT (message says why) when the program is
 * infeasible, e.g. the rich already carry less than epsilon times the poor
 * and cannot be given more. */
kc_err kci_econ_poverty_solve(const kci_econ_graph *graph, double threshold, double epsilon,
                              kci_econ_poverty *result, kci_econ_error *error);
void kci_econ_poverty_free(kci_econ_poverty *result);

#endif
