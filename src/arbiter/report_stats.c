/* report_stats.c - counts, bursts and rings over a set of recorded
 * problem reports (report_stats.h). The graph part reuses the econ tools'
 * igraph code (src/econ/: the graph builder, cores.c, scc.c) on the
 * who-reports-whom graph, as they run on the money-flow graph. */
#include "report_stats.h"

#include <stdlib.h>
#include <string.h>

#include "econ/cores.h"
#include "econ/scc.h"

enum {
    CORE_K_MIN = 2, /* a 1-core is any edge: not a cluster */
};

void kci_report_stats_params_default(kci_report_stats_params *params)
{
    *params = (kci_report_stats_params){.window_ms = 60 * 60 * 1000,
                                        .burst_factor = 3.0,
                                        .burst_count_min = 5,
                                        .baseline_windows_min = 2};
}

static int64_t window_start(int64_t ts_ms, int64_t window_ms)
{
    return ts_ms - ts_ms % window_ms;
}

static bool included(const kci_report_set *set, size_t i, const kci_report_stats_params *params)
{
    return set->records[i].ts_ms >= params->since_ms;
}

static void count(json_t *object, const char *key)
{
    json_t *value = json_object_get(object, key);
    json_object_set_new(object, key, json_integer(json_integer_value(value) + 1));
}

static json_t *counts_new(void)
{
    return json_pack("{s:I,s:o,s:o,s:o}", "total", (json_int_t)0, "by_node", json_object(),
                     "by_reason", json_object(), "by_reporter", json_object());
}

static void counts_add(json_t *counts, const kci_report_set *set, size_t i)
{
    count(counts, "total");
    count(json_object_get(counts, "by_node"), set->names[set->records[i].node]);
    count(json_object_get(counts, "by_reason"),
          kc_problem_reason_name((kc_problem_reason)set->reasons[i]));
    count(json_object_get(counts, "by_reporter"), set->names[set->records[i].reporter]);
}

/* The totals and the non-empty windows, in time order. */
static kc_err counts_run(const kci_report_set *set, const kci_report_stats_params *params,
                         int64_t first_ms, int64_t window_count, json_t *out, kci_econ_error *error)
{
    json_t **windows = calloc((size_t)window_count, sizeof *windows);
    json_t *totals = counts_new();
    json_t *list = json_array();
    kc_err err = windows != NULL && totals != NULL && list != NULL ? KC_OK : KC_ERR_NOMEM;
    for (size_t i = 0; err == KC_OK && i < set->count; i++) {
        if (!included(set, i, params)) continue;
        int64_t w =
            (window_start(set->records[i].ts_ms, params->window_ms) - first_ms) / params->window_ms;
        if (windows[w] == NULL) windows[w] = counts_new();
        if (windows[w] == NULL) {
            err = KC_ERR_NOMEM;
            break;
        }
        counts_add(windows[w], set, i);
        counts_add(totals, set, i);
    }
    for (int64_t w = 0; windows != NULL && w < window_count; w++) {
        if (windows[w] == NULL) continue;
        json_object_set_new(windows[w], "start_ms", json_integer(first_ms + w * params->window_ms));
        if (err == KC_OK) json_array_append(list, windows[w]);
        json_decref(windows[w]);
    }
    free(windows);
    if (err == KC_OK) {
        json_object_del(totals, "total");
        json_object_set_new(out, "totals", totals);
        json_object_set_new(out, "windows", list);
        return KC_OK;
    }
    json_decref(totals);
    json_decref(list);
    kci_econ_error_set(error, "out of memory");
    return err;
}

/* ---- bursts ------------------------------------------------------------------- */

typedef struct node_window {
    uint32_t node;
    int64_t window; /* index from the first window */
} node_window;

static int node_window_compare(const void *a, const void *b)
{
    const node_window *x = a, *y = b;
    if (x->node != y->node) return x->node < y->node ? -1 : 1;
    return (x->window > y->window) - (x->window < y->window);
}

static void burst_check(json_t *bursts, const char *node, int64_t window, int64_t count,
                        int64_t before, int64_t first_ms, const kci_report_stats_params *params)
{
    if (window < params->baseline_windows_min) return;
    double baseline = (double)before / (double)window;
    double threshold = params->burst_factor * (baseline + 1.0);
    if (threshold < (double)params->burst_count_min) threshold = (double)params->burst_count_min;
    if ((double)count < threshold) return;
    json_array_append_new(bursts, json_pack("{s:s,s:I,s:I,s:f,s:f}", "node", node, "start_ms",
                                            (json_int_t)(first_ms + window * params->window_ms),
                                            "count", (json_int_t)count, "baseline", baseline,
                                            "threshold", threshold));
}

/* Each node's windows in order: the baseline before a window is the node's
 * reports in the windows before it over their number (empty ones count). */
static kc_err bursts_run(const kci_report_set *set, const kci_report_stats_params *params,
                         int64_t first_ms, json_t *out, kci_econ_error *error)
{
    node_window *pairs = malloc((set->count ? set->count : 1) * sizeof *pairs);
    json_t *bursts = json_array();
    if (pairs == NULL || bursts == NULL) {
        free(pairs);
        json_decref(bursts);
        kci_econ_error_set(error, "out of memory");
        return KC_ERR_NOMEM;
    }
    size_t n = 0;
    for (size_t i = 0; i < set->count; i++)
        if (included(set, i, params))
            pairs[n++] =
                (node_window){set->records[i].node,
                              (window_start(set->records[i].ts_ms, params->window_ms) - first_ms) /
                                  params->window_ms};
    qsort(pairs, n, sizeof *pairs, node_window_compare);
    int64_t before = 0;
    for (size_t i = 0; i < n;) {
        size_t j = i;
        while (j < n && pairs[j].node == pairs[i].node && pairs[j].window == pairs[i].window)
            j++;
        if (i == 0 || pairs[i - 1].node != pairs[i].node) before = 0;
        burst_check(bursts, set->names[pairs[i].node], pairs[i].window, (int64_t)(j - i), before,
                    first_ms, params);
        before += (int64_t)(j - i);
        i = j;
    }
    free(pairs);
    json_object_set_new(out, "bursts", bursts);
    return KC_OK;
}

/* ---- the who-reports-whom graph --------------------------------------------------- */

static json_t *names_of(const kci_econ_graph *graph, const igraph_vector_int_t *vertices)
{
    json_t *list = json_array();
    for (igraph_integer_t i = 0; list != NULL && i < igraph_vector_int_size(vertices); i++)
        json_array_append_new(list, json_string(graph->names[VECTOR(*vertices)[i]]));
    return list;
}

static json_t *edges_json(const kci_econ_graph *graph)
{
    json_t *edges = json_array();
    for (igraph_integer_t e = 0; edges != NULL && e < graph->edge_count; e++)
        json_array_append_new(edges, json_pack("{s:s,s:s,s:I}", "from",
                                               graph->names[IGRAPH_FROM(&graph->graph, e)], "to",
                                               graph->names[IGRAPH_TO(&graph->graph, e)], "reports",
                                               (json_int_t)VECTOR(graph->amounts)[e]));
    return edges;
}

/* A ring: a component of two or more, its members, the reports among them
 * and one shortest cycle. */
static json_t *rings_json(const kci_econ_graph *graph, const kci_econ_scc *scc)
{
    json_t *rings = json_array();
    for (igraph_integer_t c = 0; rings != NULL && c < igraph_vector_int_size(&scc->cycle_component);
         c++) {
        igraph_integer_t component = VECTOR(scc->cycle_component)[c];
        json_t *members = json_array();
        for (int64_t v = 0; v < graph->node_count; v++)
            if (VECTOR(scc->membership)[v] == component)
                json_array_append_new(members, json_string(graph->names[v]));
        double inside = 0;
        for (igraph_integer_t e = 0; e < graph->edge_count; e++)
            if (VECTOR(scc->membership)[IGRAPH_FROM(&graph->graph, e)] == component &&
                VECTOR(scc->membership)[IGRAPH_TO(&graph->graph, e)] == component)
                inside += VECTOR(graph->amounts)[e];
        json_array_append_new(
            rings,
            json_pack("{s:o,s:I,s:o}", "members", members, "reports", (json_int_t)inside, "cycle",
                      names_of(graph, igraph_vector_int_list_get_ptr(&scc->cycles, c))));
    }
    return rings;
}

static json_t *core_json(const kci_econ_graph *graph, const kci_econ_cores *cores)
{
    json_t *members = json_array();
    for (int64_t v = 0; members != NULL && cores->k_max >= CORE_K_MIN && v < graph->node_count; v++)
        if (VECTOR(cores->coreness)[v] == cores->k_max)
            json_array_append_new(members, json_string(graph->names[v]));
    return members;
}

static kc_err graph_build(const kci_report_set *set, const kci_report_stats_params *params,
                          kci_econ_graph *graph, kci_econ_error *error)
{
    kci_econ_builder builder;
    kci_econ_builder_init(&builder);
    kc_err err = KC_OK;
    for (size_t i = 0; err == KC_OK && i < set->count; i++) {
        if (!included(set, i, params)) continue;
        const char *from = set->names[set->records[i].reporter];
        const char *to = set->names[set->records[i].node];
        err = kci_econ_builder_add(&builder, from, strlen(from), to, strlen(to), 1.0, error);
    }
    if (err == KC_OK) err = kci_econ_graph_finish(&builder, graph, error);
    kci_econ_builder_free(&builder);
    return err;
}

static kc_err graph_run(const kci_report_set *set, const kci_report_stats_params *params,
                        json_t *out, kci_econ_error *error)
{
    kci_econ_graph graph;
    memset(&graph, 0, sizeof graph);
    kc_err err = graph_build(set, params, &graph, error);
    if (err != KC_OK) return err;
    kci_econ_scc scc;
    kci_econ_cores cores;
    memset(&scc, 0, sizeof scc);
    memset(&cores, 0, sizeof cores);
    err = kci_econ_scc_run(&graph, true, &scc, error);
    bool scc_made = err == KC_OK;
    if (err == KC_OK) err = kci_econ_cores_run(&graph, &cores, error);
    if (err == KC_OK)
        json_object_set_new(out, "graph",
                            json_pack("{s:o,s:I,s:o,s:o}", "edges", edges_json(&graph), "k_max",
                                      (json_int_t)(cores.k_max >= CORE_K_MIN ? cores.k_max : 0),
                                      "core", core_json(&graph, &cores), "rings",
                                      rings_json(&graph, &scc)));
    if (err == KC_OK) kci_econ_cores_free(&cores);
    if (scc_made) kci_econ_scc_free(&scc);
    kci_econ_graph_free(&graph);
    return err;
}

/* ---- the whole answer ----------------------------------------------------------- */

static void span(const kci_report_set *set, const kci_report_stats_params *params,
                 int64_t *first_ms, int64_t *last_ms, int64_t *reports)
{
    *first_ms = INT64_MAX, *last_ms = 0, *reports = 0;
    for (size_t i = 0; i < set->count; i++) {
        if (!included(set, i, params)) continue;
        (*reports)++;
        if (set->records[i].ts_ms < *first_ms) *first_ms = set->records[i].ts_ms;
        if (set->records[i].ts_ms > *last_ms) *last_ms = set->records[i].ts_ms;
    }
    if (*reports == 0) *first_ms = *last_ms = params->since_ms;
}

kc_err kci_report_stats_run(const kci_report_set *set, const kci_report_stats_params *params,
                            json_t **out, kci_econ_error *error)
{
    *out = NULL;
    if (params->window_ms <= 0 || params->burst_factor <= 0 || params->since_ms < 0) {
        kci_econ_error_set(error, "the window must be positive, and so the burst factor");
        return KC_ERR_INVALID_ARGUMENT;
    }
    int64_t first_ms, last_ms, reports;
    span(set, params, &first_ms, &last_ms, &reports);
    first_ms = window_start(first_ms, params->window_ms);
    int64_t window_count = (last_ms - first_ms) / params->window_ms + 1;
    if (window_count > KCI_REPORT_WINDOWS_MAX) {
        kci_econ_error_set(error, "%lld windows: at most %d (a longer window, or --since)",
                           (long long)window_count, KCI_REPORT_WINDOWS_MAX);
        return KC_ERR_TOO_LARGE;
    }
    json_t *answer =
        json_pack("{s:I,s:I,s:I,s:I,s:I,s:I,s:{s:f,s:I,s:I}}", "reports", (json_int_t)reports,
                  "skipped", (json_int_t)set->skipped, "since_ms", (json_int_t)params->since_ms,
                  "window_ms", (json_int_t)params->window_ms, "first_ms", (json_int_t)first_ms,
                  "last_ms", (json_int_t)last_ms, "params", "burst_factor", params->burst_factor,
                  "burst_count_min", (json_int_t)params->burst_count_min, "baseline_windows_min",
                  (json_int_t)params->baseline_windows_min);
    if (answer == NULL) return KC_ERR_NOMEM;
    kc_err err = counts_run(set, params, first_ms, window_count, answer, error);
    if (err == KC_OK) err = bursts_run(set, params, first_ms, answer, error);
    if (err == KC_OK) err = graph_run(set, params, answer, error);
    if (err != KC_OK) {
        json_decref(answer);
        return err;
    }
    *out = answer;
    return KC_OK;
}
