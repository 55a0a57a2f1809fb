/* ranking.h - merit ranking on the signed citation graph.
 *
 * Positive opinions (i was served well by j, i endorses j, an arbiter's
 * probe of j agreed with the fused answer) and negative ones (i filed a
 * credible problem report about j) are kept apart, as EigenTrust does with
 * trust and as Guha et al. advise for distrust:
 *
 * 1. Trust is EigenTrust (Kamvar, Schlosser, Garcia-Molina 2003) with
 *    pre-trusted nodes p (the arbiters and any configured nodes, uniform
 *    over them): c_ij = s_ij / sum_k s_ik (a row with no opinions uses p),
 *    t <- (1 - alpha) C^T t + alpha p, from t = p until the L1 change is
 *    below epsilon. A clique that praises itself gains nothing unless
 *    trusted nodes send it trust: its members' rows point at each other,
 *    and trust only enters from the pre-trusted.
 * 2. Distrust is one step, not propagated (propagated distrust lets a
 *    clique accuse by proxy): each node spends its own trust on its
 *    accusations, D_j = sum_i t_i n_ij / sum_k n_ik.
 * 3. merit_j = max(0, t_j - distrust_weight D_j), scaled so the best is 1.
 *
 * A clique of colluders that accuses honest nodes spends trust it does not
 * have, so its accusations weigh little; an accusation from a trusted node
 * weighs much. */
#ifndef KCI_ARBITER_RANKING_H
#define KCI_ARBITER_RANKING_H

#include <stdbool.h>
#include <stdint.h>

#include "kingcobra/err.h"

enum {
    KCI_RANKING_NODES_MAX = 4096,
};

typedef struct kci_ranking_params {
    double alpha;            /* weight of the pre-trusted: default 0.15 */
    double distrust_weight;  /* default 1 */
    double epsilon;          /* L1 convergence: default 1e-10 */
    uint32_t iterations_max; /* default 200 */
} kci_ranking_params;

void kci_ranking_params_default(kci_ranking_params *params);
/* positive and negative are n x n row-major (row i: i's opinions), >= 0.
 * pretrusted may be NULL or all false (then p is uniform). Writes trust
 * (sums to 1) and merit (max 1, or all 0) of n entries each. */
kc_err kci_ranking_compute(double *trust, double *merit, const double *positive,
                           const double *negative, const bool *pretrusted, uint32_t n,
                           const kci_ranking_params *params);

#endif
