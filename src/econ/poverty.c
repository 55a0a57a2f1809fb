/* poverty.c - the poverty-alleviation LP on GLPK (formulation in poverty.h
 * and docs/econ.md). One column per edge, one equality row per account
 * (net storage kept), one row for the epsilon constraint. The conservation
 * rows of a weakly connected component sum to zero, so one of them is
 * redundant; GLPK's simplex copes with that. */
#include "poverty.h"

#include <glpk.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

void kci_econ_poverty_free(kci_econ_poverty *result)
{
    free(result->flow);
    free(result->rich);
    result->flow = NULL;
    result->rich = NULL;
}

static int glpk_quiet(void *info, const char *text)
{
    (void)info;
    (void)text;
    return 1; /* nothing on stdout: the command prints its own table */
}

static void load_problem(glp_prob *lp, const kci_econ_graph *graph, const kci_econ_poverty *result,
                         const double *net)
{
    int64_t n = graph->node_count, e_count = graph->edge_count;
    double w = result->threshold;
    glp_set_obj_dir(lp, GLP_MIN);
    glp_add_rows(lp, (int)n + 1);
    for (int64_t v = 0; v < n; v++)
        glp_set_row_bnds(lp, (int)v + 1, GLP_FX, net[v], net[v]);
    glp_set_row_bnds(lp, (int)n + 1, GLP_LO, 0, 0); /* sum_R f - eps sum_P f >= 0 */
    glp_add_cols(lp, (int)e_count);
    int *ia = malloc(sizeof(int) * (size_t)(3 * e_count + 1));
    int *ja = malloc(sizeof(int) * (size_t)(3 * e_count + 1));
    double *ar = malloc(sizeof(double) * (size_t)(3 * e_count + 1));
    int k = 0;
    for (int64_t e = 0; e < e_count; e++) {
        int column = (int)e + 1;
        double amount = VECTOR(graph->amounts)[e];
        bool rich = result->rich[e];
        /* parity bounds: nobody crosses the threshold */
        double low = rich ? w : amount, high = rich ? amount : w;
        glp_set_col_bnds(lp, column, low == high ? GLP_FX : GLP_DB, low, high);
        glp_set_obj_coef(lp, column, rich ? 1 : -1);
        ++k, ia[k] = (int)IGRAPH_TO(&graph->graph, e) + 1, ja[k] = column, ar[k] = 1;
        ++k, ia[k] = (int)IGRAPH_FROM(&graph->graph, e) + 1, ja[k] = column, ar[k] = -1;
        ++k, ia[k] = (int)n + 1, ja[k] = column, ar[k] = rich ? 1 : -result->epsilon;
    }
    glp_load_matrix(lp, k, ia, ja, ar);
    free(ia);
    free(ja);
    free(ar);
}

kc_err kci_econ_poverty_solve(const kci_econ_graph *graph, double threshold, double epsilon,
                              kci_econ_poverty *result, kci_econ_error *error)
{
    memset(result, 0, sizeof *result);
    if (graph->edge_count > 100 * 1000 * 1000 / 3 || graph->node_count >= 100 * 1000 * 1000) {
        kci_econ_error_set(error, "graph too large for the LP");
        return KC_ERR_TOO_LARGE;
    }
    result->threshold = threshold;
    result->epsilon = epsilon;
    result->flow = calloc((size_t)graph->edge_count + 1, sizeof(double));
    result->rich = calloc((size_t)graph->edge_count + 1, sizeof(bool));
    double *net = calloc((size_t)graph->node_count + 1, sizeof(double));
    double *outflow = calloc((size_t)graph->node_count + 1, sizeof(double));
    if (result->flow == NULL || result->rich == NULL || net == NULL || outflow == NULL) {
        free(net);
        free(outflow);
        kci_econ_poverty_free(result);
        kci_econ_error_set(error, "out of memory");
        return KC_ERR_NOMEM;
    }
    kci_econ_graph_inflow(graph, net, outflow);
    for (int64_t v = 0; v < graph->node_count; v++)
        net[v] -= outflow[v];
    free(outflow);
    for (int64_t e = 0; e < graph->edge_count; e++) {
        double amount = VECTOR(graph->amounts)[e];
        result->rich[e] = amount >= threshold;
        if (result->rich[e]) {
            result->rich_count++;
            result->rich_before += amount;
        } else {
            result->poor_count++;
            result->poor_before += amount;
        }
    }
    glp_term_hook(glpk_quiet, NULL);
    glp_prob *lp = glp_create_prob();
    load_problem(lp, graph, result, net);
    free(net);
    glp_smcp parameters;
    glp_init_smcp(&parameters);
    parameters.msg_lev = GLP_MSG_OFF;
    parameters.presolve = GLP_ON;
    int status = glp_simplex(lp, &parameters);
    int solution = status == 0 ? glp_get_status(lp) : GLP_UNDEF;
    kc_err err = KC_OK;
    if (status == GLP_ENOPFS || solution == GLP_NOFEAS || solution == GLP_INFEAS) {
        kci_econ_error_set(error,
                           "the program is infeasible: the rich channels (amount >= %g) cannot "
                           "carry %g times what the poor ones carry within the parity bounds "
                           "(now %g vs %g)",
                           threshold, epsilon, result->rich_before, result->poor_before);
        err = KC_ERR_INVALID_ARGUMENT;
    } else if (status != 0 || solution != GLP_OPT) {
        kci_econ_error_set(error, "GLPK did not find an optimum (simplex status %d, solution %d)",
                           status, solution);
        err = KC_ERR_INVALID_ARGUMENT;
    }
    for (int64_t e = 0; e < graph->edge_count && err == KC_OK; e++) {
        double flow = glp_get_col_prim(lp, (int)e + 1);
        result->flow[e] = flow;
        if (result->rich[e])
            result->rich_after += flow;
        else
            result->poor_after += flow;
        double amount = VECTOR(graph->amounts)[e];
        if (fabs(flow - amount) > 1e-9 * fmax(1, amount)) result->changed_count++;
    }
    result->objective = result->rich_after - result->poor_after;
    glp_delete_prob(lp);
    glp_term_hook(NULL, NULL);
    if (err != KC_OK) kci_econ_poverty_free(result);
    return err;
}
