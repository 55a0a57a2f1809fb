/* dynamics.h - tatonnement on a linear Fisher market: prices rise with
 * excess demand and fall with excess supply,
 *
 *     p_j <- p_j * exp(clamp(step / sqrt(t) * (demand_j - s_j) / s_j, -1, 1))
 *
 * at step t = 1, 2, ...
 *
 * where demand is what the buyers want at the current prices (each spends
 * the whole budget on goods of maximum bang per buck, split evenly between
 * ties). Linear demand jumps where bang-per-buck ties change, so the path
 * can oscillate near the equilibrium; the distance to the equilibrium is
 * what the command reports at each step. */
#ifndef KCI_ECON_DYNAMICS_H
#define KCI_ECON_DYNAMICS_H

#include "market.h"

typedef struct kci_econ_dynamics_step {
    double excess;   /* max_j |demand_j - s_j| / s_j */
    double distance; /* max_j |p_j - p*_j| / p*_j, or NAN without p* */
} kci_econ_dynamics_step;

/* The demand at prices (per good, in units). */
void kci_econ_demand(const kci_econ_market *market, const double *prices, double *demand);
/* Runs step_count steps from prices (updated in place); steps[0] is the
 * start, steps[k] after step k (step_count + 1 entries). */
kc_err kci_econ_dynamics_run(const kci_econ_market *market, double step_size, int64_t step_count,
                             double *prices, const double *equilibrium_prices,
                             kci_econ_dynamics_step *steps);

#endif
