/* dynamics.c - tatonnement (dynamics.h). O(buyers x goods) per step. */
#include "dynamics.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static const double TIE_RELATIVE = 1e-12; /* bang per buck this close counts as a tie */

void kci_econ_demand(const kci_econ_market *market, const double *prices, double *demand)
{
    int64_t n = market->buyer_count, m = market->good_count;
    memset(demand, 0, sizeof(double) * (size_t)m);
    for (int64_t i = 0; i < n; i++) {
        const double *u = market->utilities + i * m;
        double best = 0;
        for (int64_t j = 0; j < m; j++)
            best = fmax(best, u[j] / prices[j]);
        int64_t ties = 0;
        for (int64_t j = 0; j < m; j++)
            ties += u[j] / prices[j] >= best * (1 - TIE_RELATIVE);
        double share = market->budgets[i] / (double)ties;
        for (int64_t j = 0; j < m; j++)
            if (u[j] / prices[j] >= best * (1 - TIE_RELATIVE)) demand[j] += share / prices[j];
    }
}

static kci_econ_dynamics_step measure(const kci_econ_market *market, const double *prices,
                                      const double *demand, const double *equilibrium_prices)
{
    kci_econ_dynamics_step step = {0, equilibrium_prices != NULL ? 0 : NAN};
    for (int64_t j = 0; j < market->good_count; j++) {
        step.excess =
            fmax(step.excess, fabs(demand[j] - market->supplies[j]) / market->supplies[j]);
        if (equilibrium_prices != NULL)
            step.distance = fmax(step.distance,
                                 fabs(prices[j] - equilibrium_prices[j]) / equilibrium_prices[j]);
    }
    return step;
}

kc_err kci_econ_dynamics_run(const kci_econ_market *market, double step_size, int64_t step_count,
                             double *prices, const double *equilibrium_prices,
                             kci_econ_dynamics_step *steps)
{
    double *demand = calloc((size_t)market->good_count, sizeof(double));
    if (demand == NULL) return KC_ERR_NOMEM;
    kci_econ_demand(market, prices, demand);
    steps[0] = measure(market, prices, demand, equilibrium_prices);
    for (int64_t step = 1; step <= step_count; step++) {
        /* A step size shrinking as 1/sqrt(t): linear demand jumps where
         * bang-per-buck ties change, and a fixed step keeps prices cycling
         * around the equilibrium instead of closing in. */
        double size = step_size / sqrt((double)step);
        for (int64_t j = 0; j < market->good_count; j++) {
            double excess = (demand[j] - market->supplies[j]) / market->supplies[j];
            prices[j] *= exp(fmin(1, fmax(-1, size * excess)));
        }
        kci_econ_demand(market, prices, demand);
        steps[step] = measure(market, prices, demand, equilibrium_prices);
    }
    free(demand);
    return KC_OK;
}
