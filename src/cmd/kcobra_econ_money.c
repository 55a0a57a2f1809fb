/* kcobra_econ_money.c - the `kcobra econ` subcommands on how the money is
 * spread: strata (rich and poor), poverty (the poverty-alleviation LP) and
 * colored (coloured money); their table and JSON output and the highlight
 * of their DOT. The algorithms are in src/econ/ (strata.c, poverty.c,
 * colored.c); docs/econ.md is the manual. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "econ/colored.h"
#include "econ/poverty.h"
#include "econ/strata.h"
#include "kcobra_econ.h"

/* ================================================================== strata */

static json_t *strata_vertices(const kci_econ_graph *graph, const kci_econ_strata *strata,
                               bool rich)
{
    json_t *array = json_array();
    for (int64_t vertex = 0; vertex < graph->node_count; vertex++)
        if (strata->vertex_rich[vertex] == rich)
            json_array_append_new(array, json_pack("{s:s,s:f}", "name", graph->names[vertex], "net",
                                                   strata->net[vertex]));
    return array;
}

static int strata_print(const kcobra_invocation *invocation, const kci_econ_graph *graph,
                        const kci_econ_strata *strata)
{
    if (invocation->common.json)
        return kcobra_json_print(json_pack(
            "{s:f,s:{s:{s:I,s:f},s:{s:I,s:f}},s:{s:{s:I,s:f},s:{s:I,s:f}},s:o,s:o}", "threshold",
            strata->threshold, "edges", "rich", "count", (json_int_t)strata->rich_edge_count,
            "total", strata->rich_edge_total, "poor", "count", (json_int_t)strata->poor_edge_count,
            "total", strata->poor_edge_total, "vertices", "rich", "count",
            (json_int_t)strata->rich_vertex_count, "total", strata->rich_vertex_total, "poor",
            "count", (json_int_t)strata->poor_vertex_count, "total", strata->poor_vertex_total,
            "rich_vertices", strata_vertices(graph, strata, true), "poor_vertices",
            strata_vertices(graph, strata, false)));
    printf("threshold W = %.15g (rich: amount or net storage >= W)\n", strata->threshold);
    printf("  %-16s %12s %20s\n", "CLASS", "COUNT", "TOTAL");
    printf("  %-16s %12lld %20.15g\n", "rich channels", (long long)strata->rich_edge_count,
           strata->rich_edge_total);
    printf("  %-16s %12lld %20.15g\n", "poor channels", (long long)strata->poor_edge_count,
           strata->poor_edge_total);
    printf("  %-16s %12lld %20.15g\n", "rich accounts", (long long)strata->rich_vertex_count,
           strata->rich_vertex_total);
    printf("  %-16s %12lld %20.15g\n", "poor accounts", (long long)strata->poor_vertex_count,
           strata->poor_vertex_total);
    printf("rich accounts (net storage):");
    int64_t shown = 0;
    for (int64_t vertex = 0; vertex < graph->node_count; vertex++) {
        if (!strata->vertex_rich[vertex]) continue;
        if (shown++ == KCOBRA_ECON_TABLE_ROWS_MAX) {
            printf(" ... (--json lists all)");
            break;
        }
        printf(" %s (%.15g)", graph->names[vertex], strata->net[vertex]);
    }
    printf("\n");
    return kcobra_econ_print_flush();
}

const char kcobra_econ_strata_description[] =
    "Rich and poor: a payment channel is rich when its amount is at least W, an\n"
    "account when its net storage (money in minus money out) is at least W; the\n"
    "counts and totals of each class.\n"
    "\nExample:\n  kcobra econ strata --edges payments.csv --threshold 1000\n";

int kcobra_econ_run_strata(const kcobra_command *command, int argc, char **argv)
{
    kcobra_econ_input input = {0};
    const char *threshold_text = NULL;
    const kcobra_flag flags[] = {
        KCOBRA_ECON_GRAPH_FLAGS(input),
        {"threshold", "W", KCOBRA_FLAG_STRING, &threshold_text, "the rich/poor threshold"},
    };
    kcobra_invocation invocation;
    int status = kcobra_parse(command, flags, KCOBRA_ARRAY_COUNT(flags), argc, argv, &invocation);
    if (status != KCOBRA_EXIT_OK || invocation.help) return status;
    if (threshold_text == NULL) return kcobra_usage_error(command, "--threshold is required");
    double threshold = 0;
    status = kcobra_econ_number(command, "threshold", threshold_text, &threshold);
    if (status != KCOBRA_EXIT_OK) return status;
    kci_econ_graph graph;
    status = kcobra_econ_graph_open(command, &invocation, &input, &graph);
    if (status != KCOBRA_EXIT_OK) return status;
    kci_econ_error error = {{0}};
    kci_econ_strata strata;
    kc_err err = kci_econ_strata_run(&graph, threshold, &strata, &error);
    if (err != KC_OK) {
        status = kcobra_econ_fail(err, &error);
    } else {
        bool wanted = kcobra_econ_dot_wanted(&input);
        unsigned char *vertex_class = wanted ? calloc((size_t)graph.node_count + 1, 1) : NULL;
        unsigned char *edge_class = wanted ? calloc((size_t)graph.edge_count + 1, 1) : NULL;
        for (int64_t vertex = 0; vertex < graph.node_count && vertex_class; vertex++)
            vertex_class[vertex] = strata.vertex_rich[vertex] ? 1 : 2;
        for (int64_t edge = 0; edge < graph.edge_count && edge_class; edge++)
            edge_class[edge] = strata.edge_rich[edge] ? 1 : 2;
        kci_econ_dot_style style = {"rich in red, poor in blue", vertex_class, edge_class};
        status = kcobra_econ_graph_output(&input, &graph, &style);
        free(vertex_class);
        free(edge_class);
        if (status == KCOBRA_EXIT_OK) status = strata_print(&invocation, &graph, &strata);
        kci_econ_strata_free(&strata);
    }
    kci_econ_graph_free(&graph);
    return status;
}

/* ================================================================= poverty */

static int poverty_print(const kcobra_invocation *invocation, const kci_econ_graph *graph,
                         const kci_econ_poverty *poverty)
{
    if (invocation->common.json) {
        json_t *changes = json_array();
        for (int64_t edge = 0; edge < graph->edge_count; edge++) {
            double amount = VECTOR(graph->amounts)[edge];
            if (fabs(poverty->flow[edge] - amount) <= 1e-9 * fmax(1, amount)) continue;
            json_array_append_new(
                changes, json_pack("{s:s,s:s,s:f,s:f,s:b}", "from",
                                   graph->names[IGRAPH_FROM(&graph->graph, edge)], "to",
                                   graph->names[IGRAPH_TO(&graph->graph, edge)], "before", amount,
                                   "after", poverty->flow[edge], "rich", poverty->rich[edge]));
        }
        return kcobra_json_print(json_pack(
            "{s:f,s:f,s:I,s:I,s:f,s:f,s:f,s:f,s:f,s:o}", "threshold", poverty->threshold, "epsilon",
            poverty->epsilon, "rich_count", (json_int_t)poverty->rich_count, "poor_count",
            (json_int_t)poverty->poor_count, "rich_before", poverty->rich_before, "poor_before",
            poverty->poor_before, "rich_after", poverty->rich_after, "poor_after",
            poverty->poor_after, "objective", poverty->objective, "changes", changes));
    }
    printf("poverty alleviation (GLPK simplex), W = %.15g, epsilon = %.15g\n", poverty->threshold,
           poverty->epsilon);
    printf("  %-14s %8s %20s %20s\n", "CHANNELS", "COUNT", "BEFORE", "AFTER");
    printf("  %-14s %8lld %20.15g %20.15g\n", "rich", (long long)poverty->rich_count,
           poverty->rich_before, poverty->rich_after);
    printf("  %-14s %8lld %20.15g %20.15g\n", "poor", (long long)poverty->poor_count,
           poverty->poor_before, poverty->poor_after);
    printf("rich - poor: %.15g -> %.15g; %lld channels changed\n",
           poverty->rich_before - poverty->poor_before, poverty->objective,
           (long long)poverty->changed_count);
    int64_t shown = 0;
    for (int64_t edge = 0; edge < graph->edge_count && shown < KCOBRA_ECON_TABLE_ROWS_MAX; edge++) {
        double amount = VECTOR(graph->amounts)[edge];
        if (fabs(poverty->flow[edge] - amount) <= 1e-9 * fmax(1, amount)) continue;
        printf("  %-20s -> %-20s %14.15g -> %.15g\n",
               graph->names[IGRAPH_FROM(&graph->graph, edge)],
               graph->names[IGRAPH_TO(&graph->graph, edge)], amount, poverty->flow[edge]);
        shown++;
    }
    return kcobra_econ_print_flush();
}

const char kcobra_econ_poverty_description[] =
    "The poverty-alleviation linear program, solved by GLPK: new amounts f_e on\n"
    "the existing channels that minimise (money on rich channels) - (money on poor\n"
    "channels), subject to every account keeping its net storage, the parity\n"
    "bounds (a rich channel keeps between W and its amount, a poor one between its\n"
    "amount and W) and rich >= epsilon x poor. docs/econ.md has the formulation.\n"
    "W defaults to the mean amount.\n"
    "\nExample:\n  kcobra econ poverty --edges payments.csv --epsilon 0.5 --threshold 100\n";

int kcobra_econ_run_poverty(const kcobra_command *command, int argc, char **argv)
{
    kcobra_econ_input input = {0};
    const char *epsilon_text = NULL, *threshold_text = NULL;
    const kcobra_flag flags[] = {
        KCOBRA_ECON_GRAPH_FLAGS(input),
        {"epsilon", "E", KCOBRA_FLAG_STRING, &epsilon_text,
         "the rich carry at least E times what the poor carry (E >= 0)"},
        {"threshold", "W", KCOBRA_FLAG_STRING, &threshold_text,
         "the rich/poor threshold (default: the mean amount)"},
    };
    kcobra_invocation invocation;
    int status = kcobra_parse(command, flags, KCOBRA_ARRAY_COUNT(flags), argc, argv, &invocation);
    if (status != KCOBRA_EXIT_OK || invocation.help) return status;
    if (epsilon_text == NULL) return kcobra_usage_error(command, "--epsilon is required");
    double epsilon = 0, threshold = NAN;
    status = kcobra_econ_number(command, "epsilon", epsilon_text, &epsilon);
    if (status == KCOBRA_EXIT_OK && epsilon < 0)
        return kcobra_usage_error(command, "--epsilon must be >= 0");
    if (status == KCOBRA_EXIT_OK && threshold_text != NULL)
        status = kcobra_econ_number(command, "threshold", threshold_text, &threshold);
    if (status != KCOBRA_EXIT_OK) return status;
    kci_econ_graph graph;
    status = kcobra_econ_graph_open(command, &invocation, &input, &graph);
    if (status != KCOBRA_EXIT_OK) return status;
    if (isnan(threshold)) threshold = kci_econ_graph_total(&graph) / (double)graph.edge_count;
    kci_econ_error error = {{0}};
    kci_econ_poverty poverty;
    kc_err err = kci_econ_poverty_solve(&graph, threshold, epsilon, &poverty, &error);
    if (err != KC_OK) {
        status = kcobra_econ_fail(err, &error);
    } else {
        unsigned char *edge_class =
            kcobra_econ_dot_wanted(&input) ? calloc((size_t)graph.edge_count + 1, 1) : NULL;
        for (int64_t edge = 0; edge < graph.edge_count && edge_class; edge++) {
            double amount = VECTOR(graph.amounts)[edge];
            edge_class[edge] = fabs(poverty.flow[edge] - amount) > 1e-9 * fmax(1, amount) ? 1 : 0;
        }
        kci_econ_dot_style style = {"poverty LP: changed channels in red", NULL, edge_class};
        status = kcobra_econ_graph_output(&input, &graph, &style);
        free(edge_class);
        if (status == KCOBRA_EXIT_OK) status = poverty_print(&invocation, &graph, &poverty);
        kci_econ_poverty_free(&poverty);
    }
    kci_econ_graph_free(&graph);
    return status;
}

/* ================================================================= colored */

const char kcobra_econ_colored_description[] =
    "Coloured money; either estimate or both. Direct (--source and --sink):\n"
    "  storage = |inflow(S) - inflow(T)|,  direct = |storage x R - inflow(H)|\n"
    "Indirect (--indirect): indirect = |G x R - inflow(H)| where H is the\n"
    "indirect-tax hub and G the goods-and-services total (--gdp, default: the\n"
    "total of all payments). inflow(v) is the sum of the amounts paid to v.\n"
    "\nExamples:\n"
    "  kcobra econ colored --edges p.csv --hub treasury --rate 0.1 --source a --sink b\n"
    "  kcobra econ colored --edges p.csv --hub vat --rate 0.2 --indirect --gdp 5e6\n";

static int colored_print(const kcobra_invocation *invocation, const char *hub, const char *source,
                         const char *sink, bool direct, bool indirect,
                         const kci_econ_colored *colored)
{
    if (invocation->common.json) {
        json_t *out = json_pack("{s:s,s:f,s:f}", "hub", hub, "rate", colored->rate, "inflow_hub",
                                colored->inflow_hub);
        if (indirect) {
            json_object_set_new(out, "gdp", json_real(colored->gdp));
            json_object_set_new(out, "indirect", json_real(colored->indirect));
        }
        if (direct) {
            json_object_set_new(out, "source", json_string(source));
            json_object_set_new(out, "sink", json_string(sink));
            json_object_set_new(out, "inflow_source", json_real(colored->inflow_source));
            json_object_set_new(out, "inflow_sink", json_real(colored->inflow_sink));
            json_object_set_new(out, "storage", json_real(colored->storage));
            json_object_set_new(out, "direct", json_real(colored->direct));
        }
        return kcobra_json_print(out);
    }
    printf("  %-28s %20s\n", "INPUT", "VALUE");
    printf("  %-28s %20.15g\n", "rate R", colored->rate);
    char label[KCI_ECON_NAME_BYTES_MAX + 32];
    snprintf(label, sizeof label, "inflow(hub %s)", hub);
    printf("  %-28s %20.15g\n", label, colored->inflow_hub);
    if (indirect) printf("  %-28s %20.15g\n", "goods and services G", colored->gdp);
    if (direct) {
        snprintf(label, sizeof label, "inflow(source %s)", source);
        printf("  %-28s %20.15g\n", label, colored->inflow_source);
        snprintf(label, sizeof label, "inflow(sink %s)", sink);
        printf("  %-28s %20.15g\n", label, colored->inflow_sink);
        printf("storage money |inflow(S) - inflow(T)| = %.15g\n", colored->storage);
        printf("direct coloured money |storage x R - inflow(hub)| = %.15g\n", colored->direct);
    }
    if (indirect)
        printf("indirect coloured money |G x R - inflow(hub)| = %.15g\n", colored->indirect);
    return kcobra_econ_print_flush();
}

int kcobra_econ_run_colored(const kcobra_command *command, int argc, char **argv)
{
    kcobra_econ_input input = {0};
    const char *hub = NULL, *rate_text = NULL, *source = NULL, *sink = NULL, *gdp_text = NULL;
    bool indirect = false;
    const kcobra_flag flags[] = {
        KCOBRA_ECON_GRAPH_FLAGS(input),
        {"hub", "H", KCOBRA_FLAG_STRING, &hub, "the tax hub account"},
        {"rate", "R", KCOBRA_FLAG_STRING, &rate_text, "the tax rate"},
        {"source", "S", KCOBRA_FLAG_STRING, &source, "direct: the source account"},
        {"sink", "T", KCOBRA_FLAG_STRING, &sink, "direct: the sink account"},
        {"indirect", NULL, KCOBRA_FLAG_BOOL, &indirect,
         "the indirect estimate (H: indirect-tax hub)"},
        {"gdp", "G", KCOBRA_FLAG_STRING, &gdp_text,
         "indirect: goods-and-services total (default: all payments)"},
    };
    kcobra_invocation invocation;
    int status = kcobra_parse(command, flags, KCOBRA_ARRAY_COUNT(flags), argc, argv, &invocation);
    if (status != KCOBRA_EXIT_OK || invocation.help) return status;
    if (hub == NULL || rate_text == NULL)
        return kcobra_usage_error(command, "--hub and --rate are required");
    if ((source == NULL) != (sink == NULL))
        return kcobra_usage_error(command, "--source and --sink go together");
    bool direct = source != NULL;
    if (!direct && !indirect)
        return kcobra_usage_error(command, "the direct estimate needs --source and --sink; "
                                           "the indirect one --indirect (or give both)");
    if (!indirect && gdp_text != NULL)
        return kcobra_usage_error(command, "--gdp goes with --indirect");
    double rate = 0, gdp = NAN;
    status = kcobra_econ_number(command, "rate", rate_text, &rate);
    if (status == KCOBRA_EXIT_OK && gdp_text != NULL)
        status = kcobra_econ_number(command, "gdp", gdp_text, &gdp);
    if (status != KCOBRA_EXIT_OK) return status;
    kci_econ_graph graph;
    status = kcobra_econ_graph_open(command, &invocation, &input, &graph);
    if (status != KCOBRA_EXIT_OK) return status;
    kci_econ_error error = {{0}};
    int64_t hub_vertex = -1, source_vertex = -1, sink_vertex = -1;
    kc_err err = kci_econ_graph_vertex(&graph, hub, "--hub", &hub_vertex, &error);
    if (err == KC_OK && direct)
        err = kci_econ_graph_vertex(&graph, source, "--source", &source_vertex, &error);
    if (err == KC_OK && direct)
        err = kci_econ_graph_vertex(&graph, sink, "--sink", &sink_vertex, &error);
    double *inflow = calloc((size_t)graph.node_count + 1, sizeof(double));
    double *outflow = calloc((size_t)graph.node_count + 1, sizeof(double));
    if (err == KC_OK && (inflow == NULL || outflow == NULL)) {
        kci_econ_error_set(&error, "out of memory");
        err = KC_ERR_NOMEM;
    }
    if (err == KC_OK) {
        kci_econ_graph_inflow(&graph, inflow, outflow);
        kci_econ_colored colored = {0};
        if (direct)
            kci_econ_colored_direct(inflow[source_vertex], inflow[sink_vertex], inflow[hub_vertex],
                                    rate, &colored);
        if (indirect)
            kci_econ_colored_indirect(isnan(gdp) ? kci_econ_graph_total(&graph) : gdp,
                                      inflow[hub_vertex], rate, &colored);
        unsigned char *vertex_class = calloc((size_t)graph.node_count + 1, 1);
        if (vertex_class != NULL) {
            vertex_class[hub_vertex] = 1;
            if (direct) vertex_class[source_vertex] = vertex_class[sink_vertex] = 2;
        }
        kci_econ_dot_style style = {"coloured money: hub in red, source and sink in blue",
                                    vertex_class, NULL};
        status = kcobra_econ_graph_output(&input, &graph, &style);
        free(vertex_class);
        if (status == KCOBRA_EXIT_OK)
            status = colored_print(&invocation, hub, source, sink, direct, indirect, &colored);
    } else {
        status = kcobra_econ_fail(err, &error);
    }
    free(inflow);
    free(outflow);
    kci_econ_graph_free(&graph);
    return status;
}
