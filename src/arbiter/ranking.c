/* ranking.c - EigenTrust with one-step distrust (ranking.h).
 *
 * Dense: O(n^2) per iteration on at most KCI_RANKING_NODES_MAX nodes; a
 * cloud of a few hundred nodes ranks in milliseconds, and the arbiter ranks
 * once per tick, not per message. */
#include "ranking.h"

#include <assert.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

void kci_ranking_params_default(kci_ranking_params *params)
{
    params->alpha = 0.15;
    params->distrust_weight = 1.0;
    params->epsilon = 1e-10;
    params->iterations_max = 200;
}

static void pretrust_vector(double *p, const bool *pretrusted, uint32_t n)
{
    uint32_t count = 0;
    for (uint32_t i = 0; pretrusted != NULL && i < n; i++)
        count += pretrusted[i];
    for (uint32_t i = 0; i < n; i++)
        p[i] = count == 0 ? 1.0 / n : (pretrusted[i] ? 1.0 / count : 0.0);
}

static double row_sum(const double *matrix, uint32_t n, uint32_t row)
{
    double sum = 0;
    for (uint32_t j = 0; j < n; j++)
        sum += matrix[(size_t)row * n + j];
    return sum;
}

/* next = (1 - alpha) C^T t + alpha p; returns the L1 change. */
static double step(double *next, const double *t, const double *positive, const double *sums,
                   const double *p, uint32_t n, double alpha)
{
    for (uint32_t j = 0; j < n; j++)
        next[j] = alpha * p[j];
    for (uint32_t i = 0; i < n; i++) {
        double mass = (1 - alpha) * t[i];
        if (mass == 0) continue;
        if (sums[i] <= 0) {
            for (uint32_t j = 0; j < n; j++)
                next[j] += mass * p[j];
            continue;
        }
        const double *row = positive + (size_t)i * n;
        for (uint32_t j = 0; j < n; j++)
            if (row[j] > 0) next[j] += mass * row[j] / sums[i];
    }
    double change = 0;
    for (uint32_t j = 0; j < n; j++)
        change += fabs(next[j] - t[j]);
    return change;
}

static void merit_from(double *merit, const double *trust, const double *negative, uint32_t n,
                       double distrust_weight)
{
    for (uint32_t j = 0; j < n; j++)
        merit[j] = trust[j];
    for (uint32_t i = 0; i < n; i++) {
        double sum = row_sum(negative, n, i);
        if (sum <= 0 || trust[i] == 0) continue;
        for (uint32_t j = 0; j < n; j++)
            merit[j] -= distrust_weight * trust[i] * negative[(size_t)i * n + j] / sum;
    }
    double best = 0;
    for (uint32_t j = 0; j < n; j++) {
        if (merit[j] < 0) merit[j] = 0;
        if (merit[j] > best) best = merit[j];
    }
    for (uint32_t j = 0; j < n; j++)
        merit[j] = best > 0 ? merit[j] / best : 0;
}

static kc_err check(const double *positive, const double *negative, uint32_t n,
                    const kci_ranking_params *params)
{
    if (n == 0 || n > KCI_RANKING_NODES_MAX) return KC_ERR_INVALID_ARGUMENT;
    if (!(params->alpha > 0 && params->alpha <= 1)) return KC_ERR_INVALID_ARGUMENT;
    for (size_t k = 0; k < (size_t)n * n; k++)
        if (!(positive[k] >= 0) || !(negative[k] >= 0) || !isfinite(positive[k]) ||
            !isfinite(negative[k]))
            return KC_ERR_INVALID_ARGUMENT;
    return KC_OK;
}

kc_err kci_ranking_compute(double *trust, double *merit, const double *positive,
                           const double *negative, const bool *pretrusted, uint32_t n,
                           const kci_ranking_params *params)
{
    kc_err err = check(positive, negative, n, params);
    if (err != KC_OK) return err;
    double *p = malloc(3 * (size_t)n * sizeof *p);
    if (p == NULL) return KC_ERR_NOMEM;
    double *sums = p + n, *next = p + 2 * (size_t)n;
    pretrust_vector(p, pretrusted, n);
    for (uint32_t i = 0; i < n; i++)
        sums[i] = row_sum(positive, n, i);
    memcpy(trust, p, n * sizeof *trust);
    for (uint32_t iteration = 0; iteration < params->iterations_max; iteration++) {
        double change = step(next, trust, positive, sums, p, n, params->alpha);
        memcpy(trust, next, n * sizeof *trust);
        if (change < params->epsilon) break;
    }
    merit_from(merit, trust, negative, n, params->distrust_weight);
    free(p);
    return KC_OK;
}
