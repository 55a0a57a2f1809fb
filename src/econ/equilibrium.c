/* equilibrium.c - Fisher-market equilibrium with linear utilities.
 *
 * The program solved is the dual of Eisenberg-Gale (Devanur's form), in the
 * prices p_j and beta_i = 1 / (buyer i's maximum bang per buck):
 *
 *     min  sum_j s_j p_j - sum_i B_i log beta_i
 *     s.t. p_j >= u_ij beta_i  for every (i, j) with u_ij > 0.
 *
 * Its Lagrange multipliers x_ij are the allocation, and its KKT conditions
 * are exactly the equilibrium: sum_i x_ij = s_j (goods sold out),
 * sum_j u_ij x_ij = B_i / beta_i (budgets spent), x_ij (p_j - u_ij beta_i) =
 * 0 (only goods of maximum bang per buck bought).
 *
 * 1. Scaling: supplies to 1 (u_ij s_j), each buyer's best utility to 1,
 *    budgets to sum 1. Prices and allocations are mapped back at the end.
 * 2. Mehrotra predictor-corrector interior-point method on the program
 *    above. The Newton system in (dp, dbeta, dx) is reduced, dx first, then
 *    dp (a diagonal block), to an n x n symmetric positive definite system
 *    in dbeta (n = buyers), formed in O(sum_j deg_j^2) and factored by
 *    Cholesky: for 200 x 200 about 8 M multiply-adds per iteration, and
 *    some 25-40 iterations.
 * 3. Polish: once the duality gap is small, the support (edges with
 *    x_ij > relative slack) is read off; on each connected component of the
 *    support, p_j = u_ij beta_i fixes the prices up to a factor, and money
 *    conservation (the component's budgets buy its goods) fixes the factor.
 *    The spending b_ij on the support is the interior point's, projected
 *    (minimum norm, conjugate gradients on the support graph) onto
 *    "each buyer spends B_i, each good earns p_j" (or, if that leaves a
 *    negative bid, found by a maximum flow through the support). The
 *    result is accepted if its KKT residuals, measured on the original
 *    market, are within the tolerance; else the interior point goes on and
 *    the polish is retried.
 * The unpolished interior point is the answer of last resort, with its
 * (larger) residuals printed. */
#include "equilibrium.h"

#include <assert.h>
#include <igraph.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

enum {
    CG_ROUNDS = 3,
};

static const double STEP_TO_BOUNDARY = 0.99;
static const double POLISH_GAP = 1e-3; /* try the polish below this gap */
static const double FINAL_GAP = 1e-14; /* the interior point stops here */
static const double REGULARIZATION = 1e-13;
static const double BETA_CHANGE_MAX = 0.5; /* relative, per step */

typedef struct eg_problem {
    int64_t buyer_count, good_count, edge_count;
    int32_t *edge_buyer, *edge_good; /* edges sorted by buyer */
    double *utility;                 /* scaled u per edge */
    double *budget;                  /* scaled, sum 1 */
    int64_t *buyer_offsets;          /* buyer_count + 1 */
    int64_t *good_offsets;           /* good_count + 1, into good_edges */
    int64_t *good_edges;
    /* state */
    double *price, *beta, *x;
    /* work */
    double *slack, *weight, *rc, *dx, *dz, *dp, *dbeta, *g, *h, *schur, *column_w;
    double *dx_affine, *dz_affine;
    double *scaled; /* dense markets: C W^-1/2, good-major (good_count x buyer_count) */
} eg_problem;

static void problem_free(eg_problem *problem)
{
    double **arrays[] = {&problem->utility,  &problem->budget,    &problem->price,
                         &problem->beta,     &problem->x,         &problem->slack,
                         &problem->weight,   &problem->rc,        &problem->dx,
                         &problem->dz,       &problem->dp,        &problem->dbeta,
                         &problem->g,        &problem->h,         &problem->schur,
                         &problem->column_w, &problem->dx_affine, &problem->dz_affine};
    for (size_t index = 0; index < sizeof arrays / sizeof arrays[0]; index++)
        free(*arrays[index]);
    free(problem->scaled);
    free(problem->edge_buyer);
    free(problem->edge_good);
    free(problem->buyer_offsets);
    free(problem->good_offsets);
    free(problem->good_edges);
}

static double *doubles(int64_t count)
{
    return calloc((size_t)count + 1, sizeof(double));
}

static bool problem_alloc(eg_problem *problem)
{
    int64_t n = problem->buyer_count, m = problem->good_count, e = problem->edge_count;
    problem->edge_buyer = calloc((size_t)e + 1, sizeof(int32_t));
    problem->edge_good = calloc((size_t)e + 1, sizeof(int32_t));
    problem->buyer_offsets = calloc((size_t)n + 1, sizeof(int64_t));
    problem->good_offsets = calloc((size_t)m + 2, sizeof(int64_t));
    problem->good_edges = calloc((size_t)e + 1, sizeof(int64_t));
    double **edge_arrays[] = {&problem->utility, &problem->x,         &problem->slack,
                              &problem->weight,  &problem->rc,        &problem->dx,
                              &problem->dz,      &problem->dx_affine, &problem->dz_affine};
    for (size_t index = 0; index < sizeof edge_arrays / sizeof edge_arrays[0]; index++)
        *edge_arrays[index] = doubles(e);
    problem->budget = doubles(n);
    problem->beta = doubles(n);
    problem->dbeta = doubles(n);
    problem->h = doubles(n);
    problem->schur = doubles(n * n);
    problem->price = doubles(m);
    problem->dp = doubles(m);
    problem->g = doubles(m);
    problem->column_w = doubles(m);
    bool ok = problem->edge_buyer && problem->edge_good && problem->buyer_offsets &&
              problem->good_offsets && problem->good_edges && problem->budget && problem->beta &&
              problem->dbeta && problem->h && problem->schur && problem->price && problem->dp &&
              problem->g && problem->column_w;
    for (size_t index = 0; index < sizeof edge_arrays / sizeof edge_arrays[0]; index++)
        ok = ok && *edge_arrays[index] != NULL;
    return ok;
}

/* Builds the scaled problem and the starting point. */
static bool problem_build(const kci_econ_market *market, eg_problem *problem)
{
    memset(problem, 0, sizeof *problem);
    int64_t n = market->buyer_count, m = market->good_count;
    problem->buyer_count = n;
    problem->good_count = m;
    for (int64_t cell = 0; cell < n * m; cell++)
        if (market->utilities[cell] > 0) problem->edge_count++;
    if (!problem_alloc(problem)) return false;
    double budget_total = 0;
    for (int64_t i = 0; i < n; i++)
        budget_total += market->budgets[i];
    int64_t e = 0;
    for (int64_t i = 0; i < n; i++) {
        problem->buyer_offsets[i] = e;
        problem->budget[i] = market->budgets[i] / budget_total;
        double best = 0;
        for (int64_t j = 0; j < m; j++)
            best = fmax(best, market->utilities[i * m + j] * market->supplies[j]);
        assert(best > 0); /* market.c refuses buyers who want nothing */
        for (int64_t j = 0; j < m; j++) {
            double u = market->utilities[i * m + j];
            if (u <= 0) continue;
            problem->edge_buyer[e] = (int32_t)i;
            problem->edge_good[e] = (int32_t)j;
            problem->utility[e] = u * market->supplies[j] / best;
            problem->good_offsets[j + 1]++;
            e++;
        }
    }
    problem->buyer_offsets[n] = e;
    for (int64_t j = 0; j < m; j++)
        problem->good_offsets[j + 1] += problem->good_offsets[j];
    int64_t *fill = calloc((size_t)m + 1, sizeof *fill);
    if (fill == NULL) return false;
    for (e = 0; e < problem->edge_count; e++) {
        int64_t j = problem->edge_good[e];
        problem->good_edges[problem->good_offsets[j] + fill[j]++] = e;
    }
    free(fill);
    /* Start: each good split evenly among those who want it; beta_i so that
     * buyer i's stationarity holds (B_i / beta_i = sum_j u_ij x_ij), prices
     * twice above every u_ij beta_i. Both residuals start at zero, so the
     * path has only the nonlinearity of log beta to correct. */
    for (e = 0; e < problem->edge_count; e++) {
        int64_t j = problem->edge_good[e];
        problem->x[e] = 1.0 / (double)(problem->good_offsets[j + 1] - problem->good_offsets[j]);
    }
    for (int64_t i = 0; i < n; i++) {
        double utility = 0;
        for (e = problem->buyer_offsets[i]; e < problem->buyer_offsets[i + 1]; e++)
            utility += problem->utility[e] * problem->x[e];
        problem->beta[i] = problem->budget[i] / utility;
    }
    for (int64_t j = 0; j < m; j++)
        problem->price[j] = 0;
    for (e = 0; e < problem->edge_count; e++) {
        int64_t j = problem->edge_good[e];
        problem->price[j] =
            fmax(problem->price[j], problem->utility[e] * problem->beta[problem->edge_buyer[e]]);
    }
    for (int64_t j = 0; j < m; j++)
        problem->price[j] *= 2;
    return true;
}

/* ============================================================ interior point */

typedef struct residuals {
    double gap;    /* sum x z (budgets sum to 1) */
    double primal; /* max_j |1 - sum x| */
    double dual;   /* max_i |B_i/beta_i - sum u x| * beta_i / B_i */
} residuals;

static void slacks_compute(eg_problem *problem)
{
    for (int64_t e = 0; e < problem->edge_count; e++)
        problem->slack[e] = problem->price[problem->edge_good[e]] -
                            problem->utility[e] * problem->beta[problem->edge_buyer[e]];
}

/* g_j starts as -Lp_j = sum x - 1; h_i as -Lbeta_i = B_i/beta_i - sum u x. */
static residuals residuals_compute(eg_problem *problem, double *minus_lp, double *minus_lbeta)
{
    residuals out = {0};
    for (int64_t j = 0; j < problem->good_count; j++)
        minus_lp[j] = -1;
    for (int64_t i = 0; i < problem->buyer_count; i++)
        minus_lbeta[i] = problem->budget[i] / problem->beta[i];
    for (int64_t e = 0; e < problem->edge_count; e++) {
        minus_lp[problem->edge_good[e]] += problem->x[e];
        minus_lbeta[problem->edge_buyer[e]] -= problem->utility[e] * problem->x[e];
        out.gap += problem->x[e] * problem->slack[e];
    }
    for (int64_t j = 0; j < problem->good_count; j++)
        out.primal = fmax(out.primal, fabs(minus_lp[j]));
    for (int64_t i = 0; i < problem->buyer_count; i++)
        out.dual = fmax(out.dual, fabs(minus_lbeta[i]) * problem->beta[i] / problem->budget[i]);
    return out;
}

/* In-place Cholesky of the n x n matrix (lower triangle); false if not PD. */
static bool cholesky(double *matrix, int64_t n)
{
    for (int64_t k = 0; k < n; k++) {
        double *row_k = matrix + k * n;
        double pivot = row_k[k];
        for (int64_t t = 0; t < k; t++)
            pivot -= row_k[t] * row_k[t];
        if (!(pivot > 0)) return false;
        pivot = sqrt(pivot);
        row_k[k] = pivot;
        for (int64_t r = k + 1; r < n; r++) {
            double *row_r = matrix + r * n;
            double sum = row_r[k];
            for (int64_t t = 0; t < k; t++)
                sum -= row_r[t] * row_k[t];
            row_r[k] = sum / pivot;
        }
    }
    return true;
}

static void cholesky_solve(const double *factor, int64_t n, double *vector)
{
    for (int64_t r = 0; r < n; r++) {
        double sum = vector[r];
        for (int64_t t = 0; t < r; t++)
            sum -= factor[r * n + t] * vector[t];
        vector[r] = sum / factor[r * n + r];
    }
    for (int64_t r = n - 1; r >= 0; r--) {
        double sum = vector[r];
        for (int64_t t = r + 1; t < n; t++)
            sum -= factor[t * n + r] * vector[t];
        vector[r] = sum / factor[r * n + r];
    }
}

/* S -= C^T W^-1 C, good by good over the buyers who want it (lower
 * triangle only: a good's edges are in buyer order). */
static void schur_subtract_sparse(eg_problem *problem)
{
    int64_t n = problem->buyer_count;
    for (int64_t j = 0; j < problem->good_count; j++) {
        double total = problem->column_w[j];
        for (int64_t a = problem->good_offsets[j]; a < problem->good_offsets[j + 1]; a++) {
            int64_t ea = problem->good_edges[a];
            double ca = problem->weight[ea] * problem->utility[ea] / total;
            double *row = problem->schur + problem->edge_buyer[ea] * n;
            for (int64_t b = problem->good_offsets[j]; b <= a; b++) {
                int64_t eb = problem->good_edges[b];
                row[problem->edge_buyer[eb]] -= ca * problem->weight[eb] * problem->utility[eb];
            }
        }
    }
}

/* The same for a dense market, as S -= A^T A with A = W^-1/2 C stored
 * densely: the inner loop is a contiguous axpy the compiler vectorises,
 * where the sparse form scatters through buyer ids. */
static void schur_subtract_dense(eg_problem *problem)
{
    int64_t n = problem->buyer_count, m = problem->good_count;
    double *scaled = problem->scaled;
    memset(scaled, 0, sizeof(double) * (size_t)(n * m));
    for (int64_t j = 0; j < m; j++) {
        double scale = 1 / sqrt(problem->column_w[j]);
        for (int64_t k = problem->good_offsets[j]; k < problem->good_offsets[j + 1]; k++) {
            int64_t e = problem->good_edges[k];
            scaled[j * n + problem->edge_buyer[e]] =
                problem->weight[e] * problem->utility[e] * scale;
        }
    }
    for (int64_t j = 0; j < m; j++) {
        const double *column = scaled + j * n;
        for (int64_t i = 0; i < n; i++) {
            double value = column[i];
            if (value == 0) continue;
            double *row = problem->schur + i * n;
            for (int64_t k = 0; k <= i; k++)
                row[k] -= value * column[k];
        }
    }
}

/* Forms and factors the Schur complement S = D - C^T W^-1 C in dbeta. */
static bool schur_factor(eg_problem *problem)
{
    int64_t n = problem->buyer_count;
    double *schur = problem->schur;
    memset(schur, 0, sizeof(double) * (size_t)(n * n));
    for (int64_t i = 0; i < n; i++)
        schur[i * n + i] = problem->budget[i] / (problem->beta[i] * problem->beta[i]);
    for (int64_t e = 0; e < problem->edge_count; e++) {
        problem->weight[e] = problem->x[e] / problem->slack[e];
        schur[problem->edge_buyer[e] * (n + 1)] +=
            problem->weight[e] * problem->utility[e] * problem->utility[e];
    }
    for (int64_t j = 0; j < problem->good_count; j++) {
        double total = 0;
        for (int64_t k = problem->good_offsets[j]; k < problem->good_offsets[j + 1]; k++)
            total += problem->weight[problem->good_edges[k]];
        problem->column_w[j] = total;
    }
    if (problem->scaled != NULL)
        schur_subtract_dense(problem);
    else
        schur_subtract_sparse(problem);
    double diagonal_max = 0;
    for (int64_t i = 0; i < n; i++)
        diagonal_max = fmax(diagonal_max, schur[i * n + i]);
    for (int64_t i = 0; i < n; i++)
        schur[i * n + i] += REGULARIZATION * diagonal_max;
    return cholesky(schur, n);
}

/* Solves the Newton system for the right-hand side rc (complementarity)
 * and the current residuals minus_lp, minus_lbeta; writes dp, dbeta, dx, dz. */
static void newton_solve(eg_problem *problem, const double *rc, const double *minus_lp,
                         const double *minus_lbeta, double *dx, double *dz)
{
    int64_t n = problem->buyer_count, m = problem->good_count;
    for (int64_t j = 0; j < m; j++)
        problem->g[j] = minus_lp[j];
    for (int64_t i = 0; i < n; i++)
        problem->h[i] = minus_lbeta[i];
    for (int64_t e = 0; e < problem->edge_count; e++) {
        double ratio = rc[e] / problem->slack[e];
        problem->g[problem->edge_good[e]] += ratio;
        problem->h[problem->edge_buyer[e]] -= problem->utility[e] * ratio;
    }
    for (int64_t i = 0; i < n; i++)
        problem->dbeta[i] = problem->h[i];
    for (int64_t e = 0; e < problem->edge_count; e++) {
        int64_t j = problem->edge_good[e];
        problem->dbeta[problem->edge_buyer[e]] +=
            problem->weight[e] * problem->utility[e] * problem->g[j] / problem->column_w[j];
    }
    cholesky_solve(problem->schur, n, problem->dbeta);
    for (int64_t j = 0; j < m; j++)
        problem->dp[j] = problem->g[j];
    for (int64_t e = 0; e < problem->edge_count; e++)
        problem->dp[problem->edge_good[e]] +=
            problem->weight[e] * problem->utility[e] * problem->dbeta[problem->edge_buyer[e]];
    for (int64_t j = 0; j < m; j++)
        problem->dp[j] /= problem->column_w[j];
    for (int64_t e = 0; e < problem->edge_count; e++) {
        dz[e] = problem->dp[problem->edge_good[e]] -
                problem->utility[e] * problem->dbeta[problem->edge_buyer[e]];
        dx[e] = (rc[e] - problem->x[e] * dz[e]) / problem->slack[e];
    }
}

static double step_max(const eg_problem *problem, const double *dx, const double *dz)
{
    double step = 1;
    for (int64_t e = 0; e < problem->edge_count; e++) {
        if (dx[e] < 0) step = fmin(step, -problem->x[e] / dx[e]);
        if (dz[e] < 0) step = fmin(step, -problem->slack[e] / dz[e]);
    }
    for (int64_t i = 0; i < problem->buyer_count; i++)
        if (problem->dbeta[i] < 0) step = fmin(step, -problem->beta[i] / problem->dbeta[i]);
    return step;
}

/* One predictor-corrector step; false if the system could not be factored. */
static bool ipm_step(eg_problem *problem, const residuals *now, double *minus_lp,
                     double *minus_lbeta)
{
    int64_t e_count = problem->edge_count;
    if (!schur_factor(problem)) return false;
    double mu = now->gap / (double)e_count;
    for (int64_t e = 0; e < e_count; e++)
        problem->rc[e] = -problem->x[e] * problem->slack[e];
    newton_solve(problem, problem->rc, minus_lp, minus_lbeta, problem->dx_affine,
                 problem->dz_affine);
    double step = step_max(problem, problem->dx_affine, problem->dz_affine);
    double mu_affine = 0;
    for (int64_t e = 0; e < e_count; e++)
        mu_affine += (problem->x[e] + step * problem->dx_affine[e]) *
                     (problem->slack[e] + step * problem->dz_affine[e]);
    mu_affine /= (double)e_count;
    double sigma = pow(fmin(1, fmax(0, mu_affine / mu)), 3);
    /* Stationarity is nonlinear in beta (B_i / beta_i): when it lags behind
     * the gap, stay nearer the central path so the Newton steps can catch up
     * before the system becomes ill-conditioned. */
    if (fmax(now->primal, now->dual) > now->gap) sigma = fmax(sigma, 0.1);
    for (int64_t e = 0; e < e_count; e++)
        problem->rc[e] = sigma * mu - problem->x[e] * problem->slack[e] -
                         problem->dx_affine[e] * problem->dz_affine[e];
    newton_solve(problem, problem->rc, minus_lp, minus_lbeta, problem->dx, problem->dz);
    step = fmin(1, STEP_TO_BOUNDARY * step_max(problem, problem->dx, problem->dz));
    /* B_i / beta_i is linearised in the Newton system; a step that more than
     * doubles (or halves) some beta_i makes that linearisation meaningless
     * and stationarity worse, so such steps are shortened. */
    for (int64_t i = 0; i < problem->buyer_count; i++) {
        double relative = fabs(problem->dbeta[i]) / problem->beta[i];
        if (step * relative > BETA_CHANGE_MAX) step = BETA_CHANGE_MAX / relative;
    }
    for (int64_t j = 0; j < problem->good_count; j++)
        problem->price[j] += step * problem->dp[j];
    for (int64_t i = 0; i < problem->buyer_count; i++)
        problem->beta[i] += step * problem->dbeta[i];
    for (int64_t e = 0; e < e_count; e++)
        problem->x[e] += step * problem->dx[e];
    return true;
}

/* =================================================================== polish */

typedef struct polish_work {
    bool *support;         /* per edge */
    int64_t *support_list; /* the support's edge ids */
    int64_t support_count;
    int64_t *node_offsets; /* support adjacency over nodes: buyers 0..n-1, goods n.. */
    int64_t *node_edges;
    int64_t *queue;
    int64_t *component;        /* per node */
    double *bid;               /* per edge, money */
    double *saved_bid;         /* per edge: the max-flow bids, while projecting them */
    double *target;            /* per node: B_i, or p_j */
    double *y, *r, *d, *q, *t; /* CG, per node (t per edge) */
    double *price, *beta;
} polish_work;

static void polish_free(polish_work *work)
{
    free(work->support);
    free(work->support_list);
    free(work->node_offsets);
    free(work->node_edges);
    free(work->queue);
    free(work->component);
    free(work->bid);
    free(work->saved_bid);
    free(work->target);
    free(work->y);
    free(work->r);
    free(work->d);
    free(work->q);
    free(work->t);
    free(work->price);
    free(work->beta);
}

static bool polish_alloc(const eg_problem *problem, polish_work *work)
{
    int64_t nodes = problem->buyer_count + problem->good_count, e = problem->edge_count;
    memset(work, 0, sizeof *work);
    work->support = calloc((size_t)e + 1, sizeof(bool));
    work->support_list = calloc((size_t)e + 1, sizeof(int64_t));
    work->node_offsets = calloc((size_t)nodes + 2, sizeof(int64_t));
    work->node_edges = calloc(2 * (size_t)e + 1, sizeof(int64_t));
    work->queue = calloc((size_t)nodes + 1, sizeof(int64_t));
    work->component = calloc((size_t)nodes + 1, sizeof(int64_t));
    work->bid = doubles(e);
    work->saved_bid = doubles(e);
    work->t = doubles(e);
    work->target = doubles(nodes);
    work->y = doubles(nodes);
    work->r = doubles(nodes);
    work->d = doubles(nodes);
    work->q = doubles(nodes);
    work->price = doubles(problem->good_count);
    work->beta = doubles(problem->buyer_count);
    return work->support && work->support_list && work->node_offsets && work->node_edges &&
           work->queue && work->component && work->bid && work->t && work->target && work->y &&
           work->r && work->d && work->q && work->price && work->beta;
}

static int64_t edge_other(const eg_problem *problem, int64_t e, int64_t node)
{
    int64_t buyer = problem->edge_buyer[e];
    int64_t good_node = problem->buyer_count + problem->edge_good[e];
    return node == buyer ? good_node : buyer;
}

/* Support adjacency; false if some buyer or good has no support edge. */
static bool support_build(const eg_problem *problem, polish_work *work)
{
    int64_t n = problem->buyer_count, nodes = n + problem->good_count;
    memset(work->node_offsets, 0, sizeof(int64_t) * (size_t)(nodes + 2));
    work->support_count = 0;
    for (int64_t e = 0; e < problem->edge_count; e++) {
        double relative_slack = problem->slack[e] / problem->price[problem->edge_good[e]];
        work->support[e] = problem->x[e] > relative_slack;
        if (!work->support[e]) continue;
        work->support_list[work->support_count++] = e;
        work->node_offsets[problem->edge_buyer[e] + 2]++;
        work->node_offsets[n + problem->edge_good[e] + 2]++;
    }
    for (int64_t node = 0; node < nodes; node++) {
        if (work->node_offsets[node + 2] == 0) return false;
        work->node_offsets[node + 2] += work->node_offsets[node + 1];
    }
    for (int64_t e = 0; e < problem->edge_count; e++) {
        if (!work->support[e]) continue;
        work->node_edges[work->node_offsets[problem->edge_buyer[e] + 1]++] = e;
        work->node_edges[work->node_offsets[n + problem->edge_good[e] + 1]++] = e;
    }
    return true;
}

/* Prices and betas from p_j = u_ij beta_i on a BFS tree of each component,
 * scaled so that the component's budgets equal its goods' prices. */
static bool support_prices(const eg_problem *problem, polish_work *work)
{
    int64_t n = problem->buyer_count, nodes = n + problem->good_count;
    for (int64_t node = 0; node < nodes; node++)
        work->component[node] = -1;
    for (int64_t root = 0; root < nodes; root++) {
        if (work->component[root] >= 0) continue;
        int64_t head = 0, tail = 0;
        work->queue[tail++] = root;
        work->component[root] = root;
        if (root < n)
            work->beta[root] = problem->beta[root];
        else
            work->price[root - n] = problem->price[root - n];
        double budgets = 0, prices = 0;
        while (head < tail) {
            int64_t node = work->queue[head++];
            if (node < n)
                budgets += problem->budget[node];
            else
                prices += work->price[node - n];
            for (int64_t k = work->node_offsets[node]; k < work->node_offsets[node + 1]; k++) {
                int64_t e = work->node_edges[k];
                int64_t other = edge_other(problem, e, node);
                if (work->component[other] >= 0) continue;
                work->component[other] = root;
                if (other < n)
                    work->beta[other] = work->price[node - n] / problem->utility[e];
                else
                    work->price[other - n] = problem->utility[e] * work->beta[node];
                work->queue[tail++] = other;
            }
        }
        if (!(prices > 0)) return false;
        double factor = budgets / prices;
        for (int64_t k = 0; k < tail; k++) {
            int64_t node = work->queue[k];
            if (node < n)
                work->beta[node] *= factor;
            else
                work->price[node - n] *= factor;
        }
    }
    return true;
}

/* (A A^T y) on the support graph: t_e = y_buyer + y_good, out_v = sum t_e. */
static void support_apply(const eg_problem *problem, polish_work *work, const double *y,
                          double *out)
{
    int64_t n = problem->buyer_count, nodes = n + problem->good_count;
    for (int64_t node = 0; node < nodes; node++)
        out[node] = 0;
    for (int64_t k = 0; k < work->support_count; k++) {
        int64_t e = work->support_list[k];
        double t = y[problem->edge_buyer[e]] + y[n + problem->edge_good[e]];
        out[problem->edge_buyer[e]] += t;
        out[n + problem->edge_good[e]] += t;
    }
}

/* Minimum-norm change of the bids so that every buyer spends its budget and
 * every good earns its price: bids += A^T y with A A^T y = target - A bids
 * (conjugate gradients; the system is consistent by construction). */
static void bids_project(const eg_problem *problem, polish_work *work)
{
    int64_t n = problem->buyer_count, nodes = n + problem->good_count;
    int64_t iterations_max = 4 * nodes + 100;
    for (int round = 0; round < CG_ROUNDS; round++) {
        double *r = work->r, *d = work->d, *q = work->q, *y = work->y;
        for (int64_t node = 0; node < nodes; node++)
            r[node] = work->target[node];
        for (int64_t k = 0; k < work->support_count; k++) {
            int64_t e = work->support_list[k];
            r[problem->edge_buyer[e]] -= work->bid[e];
            r[n + problem->edge_good[e]] -= work->bid[e];
        }
        double rr = 0, target_squared = 0;
        for (int64_t node = 0; node < nodes; node++)
            target_squared += work->target[node] * work->target[node];
        /* relative 1e-16: below that, rounding noise would drive y along the
         * null space (+1 on buyers, -1 on goods) without bound */
        double rr_stop = 1e-32 * target_squared;
        for (int64_t node = 0; node < nodes; node++) {
            y[node] = 0;
            d[node] = r[node];
            rr += r[node] * r[node];
        }
        for (int64_t iteration = 0; iteration < iterations_max && rr > rr_stop; iteration++) {
            support_apply(problem, work, d, q);
            double dq = 0;
            for (int64_t node = 0; node < nodes; node++)
                dq += d[node] * q[node];
            if (!(dq > 0)) break;
            double alpha = rr / dq, rr_next = 0;
            for (int64_t node = 0; node < nodes; node++) {
                y[node] += alpha * d[node];
                r[node] -= alpha * q[node];
                rr_next += r[node] * r[node];
            }
            for (int64_t node = 0; node < nodes; node++)
                d[node] = r[node] + rr_next / rr * d[node];
            rr = rr_next;
        }
        for (int64_t k = 0; k < work->support_count; k++) {
            int64_t e = work->support_list[k];
            work->bid[e] += y[problem->edge_buyer[e]] + y[n + problem->edge_good[e]];
        }
    }
}

/* Bids by a maximum flow source -> buyer (B_i) -> good (support edges,
 * unbounded) -> sink (p_j): nonnegative by construction, and feasible if
 * the flow carries every budget. The fallback when the projection leaves
 * negative bids: at a degenerate equilibrium the interior point's spending
 * is a poor starting point, but the support and the prices may be right. */
static bool bids_by_flow(const eg_problem *problem, polish_work *work)
{
    int64_t n = problem->buyer_count, m = problem->good_count;
    int64_t source = 0, sink = n + m + 1, edge_count = n + m + work->support_count;
    igraph_vector_int_t edges;
    igraph_vector_t capacity, flow;
    if (igraph_vector_int_init(&edges, 2 * edge_count) != IGRAPH_SUCCESS) return false;
    if (igraph_vector_init(&capacity, edge_count) != IGRAPH_SUCCESS) {
        igraph_vector_int_destroy(&edges);
        return false;
    }
    igraph_vector_init(&flow, 0);
    int64_t k = 0;
    double budgets = 0;
    for (int64_t i = 0; i < n; i++, k++) {
        VECTOR(edges)[2 * k] = source, VECTOR(edges)[2 * k + 1] = 1 + i;
        VECTOR(capacity)[k] = problem->budget[i];
        budgets += problem->budget[i];
    }
    for (int64_t j = 0; j < m; j++, k++) {
        VECTOR(edges)[2 * k] = 1 + n + j, VECTOR(edges)[2 * k + 1] = sink;
        VECTOR(capacity)[k] = work->price[j];
    }
    for (int64_t s = 0; s < work->support_count; s++, k++) {
        int64_t e = work->support_list[s];
        VECTOR(edges)[2 * k] = 1 + problem->edge_buyer[e];
        VECTOR(edges)[2 * k + 1] = 1 + n + problem->edge_good[e];
        VECTOR(capacity)[k] = 2 * budgets;
    }
    igraph_t graph;
    igraph_real_t value = 0;
    bool ok = igraph_create(&graph, &edges, n + m + 2, IGRAPH_DIRECTED) == IGRAPH_SUCCESS;
    if (ok) {
        ok = igraph_maxflow(&graph, &value, &flow, NULL, NULL, NULL, source, sink, &capacity,
                            NULL) == IGRAPH_SUCCESS &&
             value >= budgets * (1 - 1e-12);
        igraph_destroy(&graph);
    }
    for (int64_t s = 0; ok && s < work->support_count; s++)
        work->bid[work->support_list[s]] = VECTOR(flow)[n + m + s];
    igraph_vector_int_destroy(&edges);
    igraph_vector_destroy(&capacity);
    igraph_vector_destroy(&flow);
    return ok;
}

/* Writes prices and allocation in the original units. */
static void unscale(const kci_econ_market *market, const eg_problem *problem, const double *price,
                    const double *x, kci_econ_equilibrium *result)
{
    int64_t m = market->good_count;
    double budget_total = 0;
    for (int64_t i = 0; i < market->buyer_count; i++)
        budget_total += market->budgets[i];
    for (int64_t j = 0; j < m; j++)
        result->prices[j] = price[j] * budget_total / market->supplies[j];
    memset(result->allocation, 0, sizeof(double) * (size_t)(market->buyer_count * m));
    for (int64_t e = 0; e < problem->edge_count; e++) {
        int64_t j = problem->edge_good[e];
        result->allocation[problem->edge_buyer[e] * m + j] = fmax(0, x[e]) * market->supplies[j];
    }
}

/* Tries the exact solve on the current support; true if accepted. */
static bool polish(const kci_econ_market *market, const eg_problem *problem, polish_work *work,
                   double tolerance, kci_econ_equilibrium *result)
{
    if (!support_build(problem, work) || !support_prices(problem, work)) return false;
    int64_t n = problem->buyer_count;
    for (int64_t e = 0; e < problem->edge_count; e++) {
        double price = work->price[problem->edge_good[e]];
        double offer = problem->utility[e] * work->beta[problem->edge_buyer[e]];
        /* Every edge must be at most tight; support edges exactly (cycles). */
        if (offer > price * (1 + 1e-12)) return false;
        if (work->support[e] && offer < price * (1 - 1e-10)) return false;
        work->bid[e] = work->support[e] ? problem->x[e] * price : 0;
    }
    for (int64_t i = 0; i < n; i++)
        work->target[i] = problem->budget[i];
    for (int64_t j = 0; j < problem->good_count; j++)
        work->target[n + j] = work->price[j];
    bids_project(problem, work);
    bool negative = false;
    for (int64_t k = 0; k < work->support_count && !negative; k++) {
        int64_t e = work->support_list[k];
        negative = work->bid[e] < -1e-12 * problem->budget[problem->edge_buyer[e]];
    }
    if (negative) {
        if (!bids_by_flow(problem, work)) return false;
        /* the flow's sums carry push-relabel's rounding: project once more,
         * now from a nonnegative point, to balance them to the last bit,
         * unless that dips below zero again (then the flow's bids stand) */
        memcpy(work->saved_bid, work->bid, sizeof(double) * (size_t)problem->edge_count);
        bids_project(problem, work);
        for (int64_t k = 0; k < work->support_count; k++) {
            int64_t e = work->support_list[k];
            if (work->bid[e] < -1e-12 * problem->budget[problem->edge_buyer[e]]) {
                memcpy(work->bid, work->saved_bid, sizeof(double) * (size_t)problem->edge_count);
                break;
            }
        }
    }
    double *x = work->t; /* reuse: allocation per edge */
    int64_t support_edges = 0;
    for (int64_t e = 0; e < problem->edge_count; e++) {
        if (work->bid[e] < -1e-12 * problem->budget[problem->edge_buyer[e]]) return false;
        x[e] = work->support[e] ? fmax(0, work->bid[e]) / work->price[problem->edge_good[e]] : 0;
        support_edges += work->support[e];
    }
    unscale(market, problem, work->price, x, result);
    kci_econ_kkt_measure(market, result->prices, result->allocation, &result->kkt);
    result->support_edges = support_edges;
    return result->kkt.max <= tolerance;
}

/* ===================================================================== KKT */

void kci_econ_kkt_measure(const kci_econ_market *market, const double *prices,
                          const double *allocation, kci_econ_kkt *kkt)
{
    int64_t n = market->buyer_count, m = market->good_count;
    memset(kkt, 0, sizeof *kkt);
    double budget_total = 0, supply_total = 0;
    for (int64_t i = 0; i < n; i++)
        budget_total += market->budgets[i];
    for (int64_t j = 0; j < m; j++)
        supply_total += market->supplies[j];
    double price_scale = budget_total / supply_total;
    for (int64_t j = 0; j < m; j++) {
        double sold = 0;
        for (int64_t i = 0; i < n; i++)
            sold += allocation[i * m + j];
        if (prices[j] > 0)
            kkt->supply = fmax(kkt->supply, fabs(sold - market->supplies[j]) / market->supplies[j]);
        kkt->nonnegative = fmax(kkt->nonnegative, -prices[j] / price_scale);
    }
    for (int64_t i = 0; i < n; i++) {
        const double *u = market->utilities + i * m;
        double alpha = 0, spent = 0, misspent = 0;
        for (int64_t j = 0; j < m; j++)
            if (prices[j] > 0) alpha = fmax(alpha, u[j] / prices[j]);
        for (int64_t j = 0; j < m; j++) {
            double x = allocation[i * m + j];
            kkt->nonnegative = fmax(kkt->nonnegative, -x / market->supplies[j]);
            if (x <= 0) continue;
            spent += prices[j] * x;
            double bang = prices[j] > 0 ? u[j] / prices[j] : 0;
            misspent += prices[j] * x * (1 - bang / alpha);
        }
        kkt->budget = fmax(kkt->budget, fabs(spent - market->budgets[i]) / market->budgets[i]);
        kkt->bang = fmax(kkt->bang, misspent / market->budgets[i]);
    }
    kkt->max = fmax(fmax(kkt->supply, kkt->budget), fmax(kkt->bang, kkt->nonnegative));
}

/* =================================================================== solve */

static bool result_alloc(const kci_econ_market *market, kci_econ_equilibrium *result)
{
    memset(result, 0, sizeof *result);
    result->prices = doubles(market->good_count);
    result->allocation = doubles(market->good_count * market->buyer_count);
    result->bang = doubles(market->buyer_count);
    result->utility = doubles(market->buyer_count);
    return result->prices && result->allocation && result->bang && result->utility;
}

static void result_finish(const kci_econ_market *market, kci_econ_equilibrium *result)
{
    int64_t n = market->buyer_count, m = market->good_count;
    result->objective = 0;
    for (int64_t i = 0; i < n; i++) {
        double utility = 0, alpha = 0;
        for (int64_t j = 0; j < m; j++) {
            utility += market->utilities[i * m + j] * result->allocation[i * m + j];
            if (result->prices[j] > 0)
                alpha = fmax(alpha, market->utilities[i * m + j] / result->prices[j]);
        }
        result->utility[i] = utility;
        result->bang[i] = alpha;
        /* log(0) is -inf: a buyer left with nothing makes the objective -inf */
        result->objective += market->budgets[i] * (utility > 0 ? log(utility) : -INFINITY);
    }
}

kc_err kci_econ_equilibrium_solve(const kci_econ_market *market, double tolerance,
                                  kci_econ_iteration_report report, void *report_context,
                                  kci_econ_equilibrium *result, kci_econ_error *error)
{
    assert(market->buyer_count > 0 && market->good_count > 0);
    if (tolerance <= 0) tolerance = 1e-9;
    if (market->buyer_count > KCI_ECON_EQUILIBRIUM_BUYERS_MAX) {
        memset(result, 0, sizeof *result);
        kci_econ_error_set(error,
                           "%lld buyers: the solver's Newton system is buyers x buyers and "
                           "takes at most %d buyers",
                           (long long)market->buyer_count, KCI_ECON_EQUILIBRIUM_BUYERS_MAX);
        return KC_ERR_TOO_LARGE;
    }
    eg_problem problem;
    polish_work work;
    bool ok = result_alloc(market, result);
    ok = problem_build(market, &problem) && ok;
    ok = polish_alloc(&problem, &work) && ok;
    if (!ok) {
        problem_free(&problem);
        polish_free(&work);
        kci_econ_equilibrium_free(result);
        kci_econ_error_set(error, "out of memory for a market of %lld buyers x %lld goods",
                           (long long)market->buyer_count, (long long)market->good_count);
        return KC_ERR_NOMEM;
    }
    double *minus_lp = doubles(market->good_count);
    double *minus_lbeta = doubles(market->buyer_count);
    kc_err err = KC_OK;
    for (int iteration = 0;; iteration++) {
        slacks_compute(&problem);
        residuals now = residuals_compute(&problem, minus_lp, minus_lbeta);
        double residual = fmax(now.primal, now.dual);
        result->iterations = iteration;
        if (report != NULL) report(report_context, iteration, now.gap, residual);
        if (now.gap < POLISH_GAP && residual < POLISH_GAP &&
            polish(market, &problem, &work, tolerance, result)) {
            result->polished = true;
            break;
        }
        bool done = now.gap < FINAL_GAP && residual < FINAL_GAP;
        if (done || iteration >= KCI_ECON_IPM_ITERATIONS_MAX ||
            !ipm_step(&problem, &now, minus_lp, minus_lbeta)) {
            /* The interior point as it stands. */
            unscale(market, &problem, problem.price, problem.x, result);
            kci_econ_kkt_measure(market, result->prices, result->allocation, &result->kkt);
            break;
        }
    }
    result_finish(market, result);
    free(minus_lp);
    free(minus_lbeta);
    problem_free(&problem);
    polish_free(&work);
    return err;
}

void kci_econ_equilibrium_free(kci_econ_equilibrium *result)
{
    free(result->prices);
    free(result->allocation);
    free(result->bang);
    free(result->utility);
    memset(result, 0, sizeof *result);
}
