/* equilibrium.h - the competitive equilibrium of a linear Fisher market:
 * the optimum of the Eisenberg-Gale convex program
 *
 *     max  sum_i B_i log(sum_j u_ij x_ij)  s.t.  sum_i x_ij <= s_j,  x >= 0,
 *
 * whose dual variables are the equilibrium prices. The algorithm (details in
 * equilibrium.c and docs/econ.md): a primal-dual interior-point method on
 * the dual program in prices and inverse bang-per-buck, then a polish that
 * reads the support off the interior point and solves the equilibrium
 * equations on it exactly; KKT residuals are measured on the original
 * market and reported. */
#ifndef KCI_ECON_EQUILIBRIUM_H
#define KCI_ECON_EQUILIBRIUM_H

#include "market.h"

enum {
    KCI_ECON_IPM_ITERATIONS_MAX = 200,
    /* the Newton system is dense in the buyers: 10,000 is 800 MB and
     * minutes a step; beyond, the solver refuses rather than thrash */
    KCI_ECON_EQUILIBRIUM_BUYERS_MAX = 10000,
};

typedef struct kci_econ_kkt {
    double supply;      /* max_j |sum_i x_ij - s_j| / s_j (goods with p_j > 0) */
    double budget;      /* max_i |sum_j p_j x_ij - B_i| / B_i */
    double bang;        /* max_i sum_j p_j x_ij (1 - (u_ij/p_j)/alpha_i) / B_i */
    double nonnegative; /* max(0, max_ij -x_ij / s_j, max_j -p_j / (sum B / sum s)) */
    double max;         /* the largest of the four */
} kci_econ_kkt;

typedef struct kci_econ_equilibrium {
    double *prices;     /* per good */
    double *allocation; /* buyer-major, units of each good */
    double *bang;       /* per buyer: alpha_i = max_j u_ij / p_j */
    double *utility;    /* per buyer: sum_j u_ij x_ij */
    double objective;   /* sum_i B_i log(utility_i) */
    kci_econ_kkt kkt;
    int iterations; /* interior-point iterations */
    bool polished;  /* the exact solve on the support was accepted */
    int64_t support_edges;
} kci_econ_equilibrium;

typedef void (*kci_econ_iteration_report)(void *context, int iteration, double gap,
                                          double residual);

/* Solves the market (already checked by market.c). tolerance is the KKT
 * residual to reach (1e-9 if 0). */
kc_err kci_econ_equilibrium_solve(const kci_econ_market *market, double tolerance,
                                  kci_econ_iteration_report report, void *report_context,
                                  kci_econ_equilibrium *result, kci_econ_error *error);
/* Measures the KKT residuals of prices and allocation on market. */
void kci_econ_kkt_measure(const kci_econ_market *market, const double *prices,
                          const double *allocation, kci_econ_kkt *kkt);
void kci_econ_equilibrium_free(kci_econ_equilibrium *result);

#endif
