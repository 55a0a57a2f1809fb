/* kcobra_econ_graph.c - the `kcobra econ` subcommands on the structure of
 * the money-flow graph: maxflow (maximum flow, minimum cut, crucial
 * accounts), scc (industries and supply chains) and hubs (k-cores); their
 * table and JSON output and the highlight of their DOT. The algorithms are
 * in src/econ/ (flow.c, scc.c, cores.c); docs/econ.md is the manual. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "econ/cores.h"
#include "econ/flow.h"
#include "econ/scc.h"
#include "kcobra_econ.h"

/* ================================================================= maxflow */

static json_t *cut_json(const kci_econ_graph *graph, const kci_econ_maxflow *flow)
{
    json_t *cut = json_array();
    for (igraph_integer_t index = 0; index < igraph_vector_int_size(&flow->cut_edges); index++) {
        igraph_integer_t edge = VECTOR(flow->cut_edges)[index];
        json_array_append_new(cut, json_pack("{s:s,s:s,s:f}", "from",
                                             graph->names[IGRAPH_FROM(&graph->graph, edge)], "to",
                                             graph->names[IGRAPH_TO(&graph->graph, edge)], "amount",
                                             VECTOR(graph->amounts)[edge]));
    }
    return cut;
}

static int maxflow_print(const kcobra_invocation *invocation, const kci_econ_graph *graph,
                         const char *source, const char *sink, const kci_econ_maxflow *flow)
{
    if (invocation->common.json) {
        json_t *out = json_pack(
            "{s:s,s:s,s:f,s:f,s:o,s:I,s:I,s:I}", "source", source, "sink", sink, "value",
            flow->value, "cut_weight", flow->cut_weight, "cut", cut_json(graph, flow),
            "source_side_count", (json_int_t)igraph_vector_int_size(&flow->source_side), "nodes",
            (json_int_t)graph->node_count, "edges", (json_int_t)graph->edge_count);
        if (flow->vertex_cut_computed) {
            json_object_set_new(out, "direct_payment", json_boolean(flow->direct_payment));
            json_object_set_new(out, "crucial",
                                flow->direct_payment ? json_null()
                                                     : kcobra_econ_names(graph, &flow->crucial));
        }
        return kcobra_json_print(out);
    }
    printf("maximum flow %s -> %s: %.15g  (%lld accounts, %lld channels)\n", source, sink,
           flow->value, (long long)graph->node_count, (long long)graph->edge_count);
    igraph_integer_t cut_count = igraph_vector_int_size(&flow->cut_edges);
    printf("minimum cut: %lld channels, weight %.15g\n", (long long)cut_count, flow->cut_weight);
    printf("  %-24s %-24s %16s\n", "FROM", "TO", "AMOUNT");
    for (igraph_integer_t index = 0; index < cut_count && index < KCOBRA_ECON_TABLE_ROWS_MAX;
         index++) {
        igraph_integer_t edge = VECTOR(flow->cut_edges)[index];
        printf("  %-24s %-24s %16.15g\n", graph->names[IGRAPH_FROM(&graph->graph, edge)],
               graph->names[IGRAPH_TO(&graph->graph, edge)], VECTOR(graph->amounts)[edge]);
    }
    if (cut_count > KCOBRA_ECON_TABLE_ROWS_MAX)
        printf("  ... and %lld more (--json lists all)\n",
               (long long)(cut_count - KCOBRA_ECON_TABLE_ROWS_MAX));
    if (flow->vertex_cut_computed && flow->direct_payment)
        printf("crucial accounts: none: %s pays %s directly, no set of other accounts stops "
               "the flow\n",
               source, sink);
    else if (flow->vertex_cut_computed)
        kcobra_econ_print_names("crucial accounts (a minimum vertex cut)", graph, &flow->crucial);
    return kcobra_econ_print_flush();
}

static int maxflow_dot(kcobra_econ_input *input, const kci_econ_graph *graph, int64_t source,
                       int64_t sink, const kci_econ_maxflow *flow)
{
    if (!kcobra_econ_dot_wanted(input)) return kcobra_econ_graph_output(input, graph, NULL);
    unsigned char *vertex_class = calloc((size_t)graph->node_count + 1, 1);
    unsigned char *edge_class = calloc((size_t)graph->edge_count + 1, 1);
    if (vertex_class == NULL || edge_class == NULL) {
        free(vertex_class);
        free(edge_class);
        kcobra_error("out of memory");
        return KCOBRA_EXIT_FAILURE;
    }
    for (int64_t edge = 0; edge < graph->edge_count; edge++)
        if (VECTOR(flow->flow)[edge] > 0) edge_class[edge] = 2;
    for (igraph_integer_t index = 0; index < igraph_vector_int_size(&flow->cut_edges); index++)
        edge_class[VECTOR(flow->cut_edges)[index]] = 1;
    for (igraph_integer_t index = 0; index < igraph_vector_int_size(&flow->crucial); index++)
        vertex_class[VECTOR(flow->crucial)[index]] = 1;
    vertex_class[source] = vertex_class[sink] = 2;
    kci_econ_dot_style style = {"max-flow: cut edges and crucial accounts in red, flow in blue",
                                vertex_class, edge_class};
    int status = kcobra_econ_graph_output(input, graph, &style);
    free(vertex_class);
    free(edge_class);
    return status;
}

const char kcobra_econ_maxflow_description[] =
    "The largest amount of money that can flow from --source to --sink along the\n"
    "payment channels (each channel carries at most what was paid on it), a\n"
    "minimum cut (the channels whose total bounds it), and the crucial accounts: a\n"
    "smallest set of accounts, other than source and sink, whose removal leaves no\n"
    "path of payments from source to sink (a minimum vertex cut, in accounts).\n"
    "\nExamples:\n"
    "  kcobra econ maxflow --edges payments.csv --source alice --sink bob\n"
    "  kcobra econ maxflow --ledger --source alice --sink bob --svg flow.svg\n";

int kcobra_econ_run_maxflow(const kcobra_command *command, int argc, char **argv)
{
    kcobra_econ_input input = {0};
    const char *source = NULL, *sink = NULL;
    bool no_vertex_cut = false;
    const kcobra_flag flags[] = {
        KCOBRA_ECON_GRAPH_FLAGS(input),
        {"source", "S", KCOBRA_FLAG_STRING, &source, "the account money flows from"},
        {"sink", "T", KCOBRA_FLAG_STRING, &sink, "the account money flows to"},
        {"no-vertex-cut", NULL, KCOBRA_FLAG_BOOL, &no_vertex_cut,
         "skip the crucial accounts (a second max-flow)"},
    };
    kcobra_invocation invocation;
    int status = kcobra_parse(command, flags, KCOBRA_ARRAY_COUNT(flags), argc, argv, &invocation);
    if (status != KCOBRA_EXIT_OK || invocation.help) return status;
    if (source == NULL || sink == NULL)
        return kcobra_usage_error(command, "--source and --sink are required");
    kci_econ_graph graph;
    status = kcobra_econ_graph_open(command, &invocation, &input, &graph);
    if (status != KCOBRA_EXIT_OK) return status;
    kci_econ_error error = {{0}};
    int64_t source_vertex = -1, sink_vertex = -1;
    kc_err err = kci_econ_graph_vertex(&graph, source, "--source", &source_vertex, &error);
    if (err == KC_OK) err = kci_econ_graph_vertex(&graph, sink, "--sink", &sink_vertex, &error);
    kci_econ_maxflow flow;
    memset(&flow, 0, sizeof flow);
    bool flow_made = false;
    if (err == KC_OK) {
        err =
            kci_econ_maxflow_run(&graph, source_vertex, sink_vertex, !no_vertex_cut, &flow, &error);
        flow_made = true;
    }
    if (err != KC_OK) {
        status = kcobra_econ_fail(err, &error);
    } else {
        status = maxflow_dot(&input, &graph, source_vertex, sink_vertex, &flow);
        if (status == KCOBRA_EXIT_OK)
            status = maxflow_print(&invocation, &graph, source, sink, &flow);
    }
    if (flow_made) kci_econ_maxflow_free(&flow);
    kci_econ_graph_free(&graph);
    return status;
}

/* ===================================================================== scc */

static void print_cycle(const kci_econ_graph *graph, const igraph_vector_int_t *cycle)
{
    igraph_integer_t length = igraph_vector_int_size(cycle);
    printf("  supply chain (%lld payments):", (long long)length);
    for (igraph_integer_t at = 0; at < length && at < KCOBRA_ECON_TABLE_ROWS_MAX; at++)
        printf(" %s ->", graph->names[VECTOR(*cycle)[at]]);
    if (length > KCOBRA_ECON_TABLE_ROWS_MAX) printf(" ... ->");
    printf(" %s\n", graph->names[VECTOR(*cycle)[0]]);
}

static int scc_print(const kcobra_invocation *invocation, const kci_econ_graph *graph,
                     const kci_econ_scc *scc)
{
    int64_t component_count = scc->component_count;
    /* members per component, in vertex order */
    igraph_vector_int_list_t members;
    igraph_vector_int_list_init(&members, component_count);
    for (int64_t vertex = 0; vertex < graph->node_count; vertex++)
        igraph_vector_int_push_back(
            igraph_vector_int_list_get_ptr(&members, VECTOR(scc->membership)[vertex]), vertex);
    int status;
    if (invocation->common.json) {
        json_t *industries = json_array();
        for (igraph_integer_t index = 0; index < igraph_vector_int_size(&scc->cycle_component);
             index++) {
            igraph_integer_t component = VECTOR(scc->cycle_component)[index];
            json_array_append_new(
                industries,
                json_pack(
                    "{s:I,s:o,s:o}", "size", (json_int_t)VECTOR(scc->sizes)[component], "members",
                    kcobra_econ_names(graph, igraph_vector_int_list_get_ptr(&members, component)),
                    "cycle",
                    kcobra_econ_names(graph, igraph_vector_int_list_get_ptr(&scc->cycles, index))));
        }
        status = kcobra_json_print(json_pack(
            "{s:I,s:I,s:I,s:I,s:I,s:o}", "nodes", (json_int_t)graph->node_count, "edges",
            (json_int_t)graph->edge_count, "components", (json_int_t)component_count,
            "industries_count", (json_int_t)scc->nontrivial_count, "singletons",
            (json_int_t)(component_count - scc->nontrivial_count), "industries", industries));
    } else {
        int64_t singles = component_count - scc->nontrivial_count;
        printf("%lld strongly connected component%s: %lld industr%s (2+ accounts), %lld single "
               "account%s\n",
               (long long)component_count, component_count == 1 ? "" : "s",
               (long long)scc->nontrivial_count, scc->nontrivial_count == 1 ? "y" : "ies",
               (long long)singles, singles == 1 ? "" : "s");
        igraph_integer_t shown = igraph_vector_int_size(&scc->cycle_component);
        for (igraph_integer_t index = 0; index < shown && index < KCOBRA_ECON_TABLE_ROWS_MAX;
             index++) {
            igraph_integer_t component = VECTOR(scc->cycle_component)[index];
            char label[64];
            snprintf(label, sizeof label, "industry %lld, members", (long long)index + 1);
            kcobra_econ_print_names(label, graph,
                                    igraph_vector_int_list_get_ptr(&members, component));
            print_cycle(graph, igraph_vector_int_list_get_ptr(&scc->cycles, index));
        }
        if (shown > KCOBRA_ECON_TABLE_ROWS_MAX)
            printf("... and %lld more industries (--json lists all)\n",
                   (long long)(shown - KCOBRA_ECON_TABLE_ROWS_MAX));
        status = kcobra_econ_print_flush();
    }
    igraph_vector_int_list_destroy(&members);
    return status;
}

static int scc_dot(kcobra_econ_input *input, const kci_econ_graph *graph, const kci_econ_scc *scc)
{
    if (!kcobra_econ_dot_wanted(input)) return kcobra_econ_graph_output(input, graph, NULL);
    unsigned char *vertex_class = calloc((size_t)graph->node_count + 1, 1);
    unsigned char *edge_class = calloc((size_t)graph->edge_count + 1, 1);
    if (vertex_class == NULL || edge_class == NULL) {
        free(vertex_class);
        free(edge_class);
        kcobra_error("out of memory");
        return KCOBRA_EXIT_FAILURE;
    }
    for (int64_t vertex = 0; vertex < graph->node_count; vertex++)
        vertex_class[vertex] = VECTOR(scc->sizes)[VECTOR(scc->membership)[vertex]] > 1 ? 2 : 3;
    for (int64_t edge = 0; edge < graph->edge_count; edge++) {
        igraph_integer_t from = IGRAPH_FROM(&graph->graph, edge),
                         to = IGRAPH_TO(&graph->graph, edge);
        edge_class[edge] = VECTOR(scc->membership)[from] == VECTOR(scc->membership)[to] ? 2 : 3;
    }
    /* the cycles in red: mark their edges */
    for (igraph_integer_t index = 0; index < igraph_vector_int_list_size(&scc->cycles); index++) {
        const igraph_vector_int_t *cycle = igraph_vector_int_list_get_ptr(&scc->cycles, index);
        igraph_integer_t length = igraph_vector_int_size(cycle);
        for (igraph_integer_t at = 0; at < length; at++) {
            igraph_integer_t from = VECTOR(*cycle)[at], to = VECTOR(*cycle)[(at + 1) % length];
            igraph_integer_t edge = -1;
            igraph_get_eid(&graph->graph, &edge, from, to, IGRAPH_DIRECTED, false);
            if (edge >= 0) edge_class[edge] = 1;
            vertex_class[from] = 1;
        }
    }
    kci_econ_dot_style style = {"industries (blue) and one supply chain per industry (red)",
                                vertex_class, edge_class};
    int status = kcobra_econ_graph_output(input, graph, &style);
    free(vertex_class);
    free(edge_class);
    return status;
}

const char kcobra_econ_scc_description[] =
    "The strongly connected components of the money-flow graph: groups of accounts\n"
    "in which money can go from each to each (industries), and for each group of\n"
    "two or more one shortest cycle of payments through its first account (a\n"
    "supply chain).\n"
    "\nExample:\n  kcobra econ scc --edges payments.csv --json\n";

int kcobra_econ_run_scc(const kcobra_command *command, int argc, char **argv)
{
    kcobra_econ_input input = {0};
    bool no_cycles = false;
    const kcobra_flag flags[] = {
        KCOBRA_ECON_GRAPH_FLAGS(input),
        {"no-cycles", NULL, KCOBRA_FLAG_BOOL, &no_cycles, "only the components, no cycles"},
    };
    kcobra_invocation invocation;
    int status = kcobra_parse(command, flags, KCOBRA_ARRAY_COUNT(flags), argc, argv, &invocation);
    if (status != KCOBRA_EXIT_OK || invocation.help) return status;
    kci_econ_graph graph;
    status = kcobra_econ_graph_open(command, &invocation, &input, &graph);
    if (status != KCOBRA_EXIT_OK) return status;
    kci_econ_error error = {{0}};
    kci_econ_scc scc;
    kc_err err = kci_econ_scc_run(&graph, !no_cycles, &scc, &error);
    if (err != KC_OK) {
        status = kcobra_econ_fail(err, &error);
    } else {
        status = scc_dot(&input, &graph, &scc);
        if (status == KCOBRA_EXIT_OK) status = scc_print(&invocation, &graph, &scc);
    }
    kci_econ_scc_free(&scc);
    kci_econ_graph_free(&graph);
    return status;
}

/* ==================================================================== hubs */

static int hubs_print(const kcobra_invocation *invocation, const kci_econ_graph *graph,
                      const kci_econ_cores *cores, int64_t k)
{
    igraph_vector_int_t chosen;
    igraph_vector_int_init(&chosen, 0);
    for (int64_t vertex = 0; vertex < graph->node_count; vertex++)
        if (VECTOR(cores->coreness)[vertex] >= k) igraph_vector_int_push_back(&chosen, vertex);
    int status;
    if (invocation->common.json) {
        json_t *coreness = json_object();
        for (int64_t vertex = 0; vertex < graph->node_count; vertex++)
            json_object_set_new(coreness, graph->names[vertex],
                                json_integer(VECTOR(cores->coreness)[vertex]));
        json_t *distribution = json_array();
        for (int64_t level = 0; level <= cores->k_max; level++)
            json_array_append_new(distribution, json_integer(cores->count_by_k[level]));
        status = kcobra_json_print(json_pack(
            "{s:I,s:I,s:o,s:o,s:o}", "k_max", (json_int_t)cores->k_max, "k", (json_int_t)k, "hubs",
            kcobra_econ_names(graph, &chosen), "count_by_k", distribution, "coreness", coreness));
    } else {
        printf("k-core decomposition (degree = payments in + out): densest core k = %lld\n",
               (long long)cores->k_max);
        printf("  %8s %10s\n", "K", "ACCOUNTS");
        for (int64_t level = cores->k_max;
             level >= 0 && level > cores->k_max - KCOBRA_ECON_TABLE_ROWS_MAX; level--)
            if (cores->count_by_k[level] > 0)
                printf("  %8lld %10lld\n", (long long)level, (long long)cores->count_by_k[level]);
        char label[64];
        snprintf(label, sizeof label, "hubs (the %lld-core)", (long long)k);
        kcobra_econ_print_names(label, graph, &chosen);
        status = kcobra_econ_print_flush();
    }
    igraph_vector_int_destroy(&chosen);
    return status;
}

const char kcobra_econ_hubs_description[] =
    "The k-core decomposition of the money-flow graph (a vertex's degree counts\n"
    "payment channels in and out). The accounts of the densest core, or of the\n"
    "K-core with --k, are the hubs of money circulation.\n"
    "\nExample:\n  kcobra econ hubs --edges payments.csv --k 3\n";

int kcobra_econ_run_hubs(const kcobra_command *command, int argc, char **argv)
{
    kcobra_econ_input input = {0};
    int64_t k = 0;
    const kcobra_flag flags[] = {
        KCOBRA_ECON_GRAPH_FLAGS(input),
        {"k", "K", KCOBRA_FLAG_COUNT, &k, "list the K-core (default: the densest core)"},
    };
    kcobra_invocation invocation;
    int status = kcobra_parse(command, flags, KCOBRA_ARRAY_COUNT(flags), argc, argv, &invocation);
    if (status != KCOBRA_EXIT_OK || invocation.help) return status;
    kci_econ_graph graph;
    status = kcobra_econ_graph_open(command, &invocation, &input, &graph);
    if (status != KCOBRA_EXIT_OK) return status;
    kci_econ_error error = {{0}};
    kci_econ_cores cores;
    kc_err err = kci_econ_cores_run(&graph, &cores, &error);
    if (err != KC_OK) {
        status = kcobra_econ_fail(err, &error);
    } else {
        if (k == 0) k = cores.k_max;
        bool wanted = kcobra_econ_dot_wanted(&input);
        unsigned char *vertex_class = wanted ? calloc((size_t)graph.node_count + 1, 1) : NULL;
        for (int64_t vertex = 0; vertex < graph.node_count && vertex_class; vertex++)
            vertex_class[vertex] = VECTOR(cores.coreness)[vertex] >= k ? 1 : 0;
        kci_econ_dot_style style = {"hubs: the densest core in red", vertex_class, NULL};
        status = kcobra_econ_graph_output(&input, &graph, &style);
        free(vertex_class);
        if (status == KCOBRA_EXIT_OK) status = hubs_print(&invocation, &graph, &cores, k);
    }
    kci_econ_cores_free(&cores);
    kci_econ_graph_free(&graph);
    return status;
}
