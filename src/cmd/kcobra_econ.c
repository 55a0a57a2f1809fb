/* kcobra_econ.c - `kcobra econ <subcommand>`: computational economics on the
 * money-flow graph of the ledger (or of an edge file) and on Fisher markets.
 *
 * This file holds the dispatcher, the shared input/output helpers (edge
 * file or ledger history, DOT/SVG, --stats, progress) and the graph
 * subcommands: maxflow, scc, hubs, strata, poverty and colored. The market
 * subcommands (value, equilibrium, dynamics) are in kcobra_econ_market.c.
 * The algorithms are in src/econ/; docs/econ.md is the manual.
 *
 * The ledger's history is read with raw nats.c requests on
 * kc.ledger.history, {"since_ms","after","limit"} -> {"edges":[...],
 * "next":cursor|null}, paged until next is null; a Kc-Error header is the
 * ledger's error reply. */
#include "kcobra_econ.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "common/clock.h"
#include "econ/colored.h"
#include "econ/cores.h"
#include "econ/flow.h"
#include "econ/poverty.h"
#include "econ/scc.h"
#include "econ/strata.h"

#define LEDGER_HISTORY_SUBJECT "kc.ledger.history"
#define KC_ERROR_HEADER "Kc-Error"

/* ================================================================= helpers */

int kcobra_econ_fail(kc_err err, const kci_econ_error *error)
{
    kcobra_error("%s", error->text);
    switch (err) {
    case KC_ERR_TIMEOUT: return KCOBRA_EXIT_TIMEOUT;
    case KC_ERR_NO_RESPONDERS: return KCOBRA_EXIT_NO_RESPONDERS;
    case KC_ERR_SERVICE: return KCOBRA_EXIT_SERVICE_ERROR;
    case KC_ERR_NOT_CONNECTED: return KCOBRA_EXIT_CONNECT;
    default: return KCOBRA_EXIT_FAILURE;
    }
}

int kcobra_econ_number(const kcobra_command *command, const char *flag, const char *text,
                       double *out)
{
    char *end = NULL;
    double value = strtod(text, &end);
    if (end == text || *end != '\0' || !isfinite(value))
        return kcobra_usage_error(command, "--%s '%s' is not a number", flag, text);
    *out = value;
    return KCOBRA_EXIT_OK;
}

static bool progress_shown;

void kcobra_econ_progress(void *context, const char *what, int64_t done, int64_t total)
{
    (void)context;
    static int64_t last_us;
    if (!isatty(STDERR_FILENO)) return;
    int64_t now_us = kci_monotonic_us();
    if (now_us - last_us < 200 * 1000) return; /* five updates a second */
    last_us = now_us;
    if (total > 0)
        fprintf(stderr, "\r%s: %" PRId64 " / %" PRId64 "   ", what, done, total);
    else
        fprintf(stderr, "\r%s: %" PRId64 "   ", what, done);
    progress_shown = true;
}

void kcobra_econ_progress_end(void)
{
    if (progress_shown) fputs("\r\033[K", stderr);
    progress_shown = false;
}

json_t *kcobra_econ_names(const kci_econ_graph *graph, const igraph_vector_int_t *vertices)
{
    json_t *array = json_array();
    for (igraph_integer_t index = 0; index < igraph_vector_int_size(vertices); index++)
        json_array_append_new(array, json_string(graph->names[VECTOR(*vertices)[index]]));
    return array;
}

static int64_t cpu_us(void)
{
    struct rusage usage;
    getrusage(RUSAGE_SELF, &usage);
    return (int64_t)(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) * 1000000 +
           usage.ru_utime.tv_usec + usage.ru_stime.tv_usec;
}

void kcobra_econ_stats_load_start(kcobra_econ_input *input)
{
    input->load_started_us = kci_monotonic_us();
    input->cpu_started_us = cpu_us();
}

void kcobra_econ_stats_compute_start(kcobra_econ_input *input)
{
    input->compute_started_us = kci_monotonic_us();
    input->compute_cpu_started_us = cpu_us();
    input->load_us = input->compute_started_us - input->load_started_us;
}

void kcobra_econ_stats_print(const kcobra_econ_input *input)
{
    if (!input->stats) return;
    struct rusage usage;
    getrusage(RUSAGE_SELF, &usage);
    int64_t now_us = kci_monotonic_us(), now_cpu_us = cpu_us();
    fprintf(stderr,
            "kcobra-stats load_ms=%.3f compute_ms=%.3f load_cpu_ms=%.3f compute_cpu_ms=%.3f "
            "peak_rss_kib=%ld\n",
            (double)input->load_us / 1000.0, (double)(now_us - input->compute_started_us) / 1000.0,
            (double)(input->compute_cpu_started_us - input->cpu_started_us) / 1000.0,
            (double)(now_cpu_us - input->compute_cpu_started_us) / 1000.0, usage.ru_maxrss);
}

/* ================================================================== ledger */

static kc_err ledger_page(natsConnection *connection, const kcobra_common *common,
                          const char *since_ms, const char *after, kci_econ_builder *builder,
                          char **next_out, kci_econ_error *error)
{
    json_t *request = json_pack("{s:I}", "limit", (json_int_t)KCOBRA_ECON_LEDGER_PAGE_LIMIT);
    if (since_ms != NULL)
        json_object_set_new(request, "since_ms", json_integer(strtoll(since_ms, NULL, 10)));
    if (after != NULL) json_object_set_new(request, "after", json_string(after));
    char *body = json_dumps(request, JSON_COMPACT);
    json_decref(request);
    natsMsg *reply = NULL;
    natsStatus status = natsConnection_Request(&reply, connection, LEDGER_HISTORY_SUBJECT, body,
                                               (int)strlen(body), common->timeout_ms);
    free(body);
    if (status == NATS_NO_RESPONDERS) {
        kci_econ_error_set(error,
                           "no ledger answers on %s (no responders): is the ledger "
                           "running?",
                           LEDGER_HISTORY_SUBJECT);
        return KC_ERR_NO_RESPONDERS;
    }
    if (status == NATS_TIMEOUT) {
        kci_econ_error_set(error, "the ledger did not answer %s within %lld ms",
                           LEDGER_HISTORY_SUBJECT, (long long)common->timeout_ms);
        return KC_ERR_TIMEOUT;
    }
    if (status != NATS_OK) {
        kci_econ_error_set(error, "request on %s failed: %s", LEDGER_HISTORY_SUBJECT,
                           kcobra_nats_error(status));
        return KC_ERR_IO;
    }
    const char *problem = NULL;
    if (natsMsgHeader_Get(reply, KC_ERROR_HEADER, &problem) == NATS_OK && problem != NULL) {
        kci_econ_error_set(error, "the ledger refused the history request: %s", problem);
        natsMsg_Destroy(reply);
        return KC_ERR_SERVICE;
    }
    json_error_t json_error;
    json_t *document =
        json_loadb(natsMsg_GetData(reply), (size_t)natsMsg_GetDataLength(reply), 0, &json_error);
    natsMsg_Destroy(reply);
    if (document == NULL) {
        kci_econ_error_set(error, "the ledger's history reply is not JSON: %s", json_error.text);
        return KC_ERR_PARSE;
    }
    kc_err err = kci_econ_json_edges(document, builder, error);
    const json_t *next = json_object_get(document, "next");
    *next_out = json_is_string(next) ? strdup(json_string_value(next)) : NULL;
    json_decref(document);
    return err;
}

static int ledger_load(const kcobra_invocation *invocation, const kcobra_econ_input *input,
                       kci_econ_graph *graph)
{
    natsConnection *connection = NULL;
    int status = kcobra_nats_connect(&connection, &invocation->common);
    if (status != KCOBRA_EXIT_OK) return status;
    kci_econ_builder builder;
    kci_econ_builder_init(&builder);
    kci_econ_error error = {{0}};
    char *cursor = NULL;
    kc_err err = KC_OK;
    for (int page = 0; page < KCOBRA_ECON_LEDGER_PAGES_MAX; page++) {
        char *next = NULL;
        err = ledger_page(connection, &invocation->common, input->since_ms, cursor, &builder, &next,
                          &error);
        free(cursor);
        cursor = next;
        kcobra_econ_progress(NULL, "transfers read", builder.payments_read, -1);
        if (err != KC_OK || cursor == NULL) break;
    }
    free(cursor);
    kcobra_econ_progress_end();
    kcobra_nats_finish(connection);
    if (err == KC_OK) err = kci_econ_graph_finish(&builder, graph, &error);
    kci_econ_builder_free(&builder);
    return err == KC_OK ? KCOBRA_EXIT_OK : kcobra_econ_fail(err, &error);
}

/* ============================================================ input/output */

int kcobra_econ_graph_open(const kcobra_command *command, const kcobra_invocation *invocation,
                           kcobra_econ_input *input, kci_econ_graph *graph)
{
    memset(graph, 0, sizeof *graph);
    if ((input->edges_path == NULL) == !input->ledger)
        return kcobra_usage_error(command, "give exactly one of --edges FILE and --ledger");
    if (input->since_ms != NULL && !input->ledger)
        return kcobra_usage_error(command, "--since-ms goes with --ledger");
    if (input->since_ms != NULL) {
        char *end = NULL;
        long long since = strtoll(input->since_ms, &end, 10);
        if (end == input->since_ms || *end != '\0' || since < 0)
            return kcobra_usage_error(command, "--since-ms '%s' is not a unix time in ms",
                                      input->since_ms);
    }
    kcobra_econ_stats_load_start(input);
    int status = KCOBRA_EXIT_OK;
    if (input->ledger) {
        status = ledger_load(invocation, input, graph);
    } else {
        kci_econ_error error = {{0}};
        kc_err err =
            kci_econ_graph_load_file(input->edges_path, graph, kcobra_econ_progress, NULL, &error);
        kcobra_econ_progress_end();
        if (err != KC_OK) status = kcobra_econ_fail(err, &error);
    }
    if (status == KCOBRA_EXIT_OK && graph->node_count == 0) {
        kcobra_error("%s holds no payments",
                     input->ledger ? "the ledger's history" : input->edges_path);
        kci_econ_graph_free(graph);
        status = KCOBRA_EXIT_FAILURE;
    }
    kcobra_econ_stats_compute_start(input);
    return status;
}

bool kcobra_econ_dot_wanted(const kcobra_econ_input *input)
{
    return input->dot_path != NULL || input->svg_path != NULL;
}

int kcobra_econ_graph_output(kcobra_econ_input *input, const kci_econ_graph *graph,
                             const kci_econ_dot_style *style)
{
    kcobra_econ_stats_print(input);
    if (input->dot_path == NULL && input->svg_path == NULL) return KCOBRA_EXIT_OK;
    char dot_path[4096];
    if (input->dot_path != NULL)
        snprintf(dot_path, sizeof dot_path, "%s", input->dot_path);
    else
        snprintf(dot_path, sizeof dot_path, "%s.dot", input->svg_path);
    kci_econ_error error = {{0}};
    kc_err err = kci_econ_dot_file(dot_path, input->svg_path, graph, style, &error);
    return err == KC_OK ? KCOBRA_EXIT_OK : kcobra_econ_fail(err, &error);
}

static int print_flush(void)
{
    return fflush(stdout) == 0 ? KCOBRA_EXIT_OK : KCOBRA_EXIT_FAILURE;
}

static void print_names(const char *label, const kci_econ_graph *graph,
                        const igraph_vector_int_t *vertices)
{
    igraph_integer_t count = igraph_vector_int_size(vertices);
    printf("%s (%lld):", label, (long long)count);
    for (igraph_integer_t index = 0; index < count && index < KCOBRA_ECON_TABLE_ROWS_MAX; index++)
        printf(" %s", graph->names[VECTOR(*vertices)[index]]);
    if (count > KCOBRA_ECON_TABLE_ROWS_MAX)
        printf(" ... and %lld more (--json lists all)",
               (long long)(count - KCOBRA_ECON_TABLE_ROWS_MAX));
    printf("\n");
}

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
        print_names("crucial accounts (a minimum vertex cut)", graph, &flow->crucial);
    return print_flush();
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

static const char MAXFLOW_DESCRIPTION[] =
    "The largest amount of money that can flow from --source to --sink along the\n"
    "payment channels (each channel carries at most what was paid on it), a\n"
    "minimum cut (the channels whose total bounds it), and the crucial accounts: a\n"
    "smallest set of accounts, other than source and sink, whose removal leaves no\n"
    "path of payments from source to sink (a minimum vertex cut, in accounts).\n"
    "\nExamples:\n"
    "  kcobra econ maxflow --edges payments.csv --source alice --sink bob\n"
    "  kcobra econ maxflow --ledger --source alice --sink bob --svg flow.svg\n";

static int run_maxflow(const kcobra_command *command, int argc, char **argv)
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
            print_names(label, graph, igraph_vector_int_list_get_ptr(&members, component));
            print_cycle(graph, igraph_vector_int_list_get_ptr(&scc->cycles, index));
        }
        if (shown > KCOBRA_ECON_TABLE_ROWS_MAX)
            printf("... and %lld more industries (--json lists all)\n",
                   (long long)(shown - KCOBRA_ECON_TABLE_ROWS_MAX));
        status = print_flush();
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

static const char SCC_DESCRIPTION[] =
    "The strongly connected components of the money-flow graph: groups of accounts\n"
    "in which money can go from each to each (industries), and for each group of\n"
    "two or more one shortest cycle of payments through its first account (a\n"
    "supply chain).\n"
    "\nExample:\n  kcobra econ scc --edges payments.csv --json\n";

static int run_scc(const kcobra_command *command, int argc, char **argv)
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
        print_names(label, graph, &chosen);
        status = print_flush();
    }
    igraph_vector_int_destroy(&chosen);
    return status;
}

static const char HUBS_DESCRIPTION[] =
    "The k-core decomposition of the money-flow graph (a vertex's degree counts\n"
    "payment channels in and out). The accounts of the densest core, or of the\n"
    "K-core with --k, are the hubs of money circulation.\n"
    "\nExample:\n  kcobra econ hubs --edges payments.csv --k 3\n";

static int run_hubs(const kcobra_command *command, int argc, char **argv)
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
    return print_flush();
}

static const char STRATA_DESCRIPTION[] =
    "Rich and poor: a payment channel is rich when its amount is at least W, an\n"
    "account when its net storage (money in minus money out) is at least W; the\n"
    "counts and totals of each class.\n"
    "\nExample:\n  kcobra econ strata --edges payments.csv --threshold 1000\n";

static int run_strata(const kcobra_command *command, int argc, char **argv)
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
    return print_flush();
}

static const char POVERTY_DESCRIPTION[] =
    "The poverty-alleviation linear program, solved by GLPK: new amounts f_e on\n"
    "the existing channels that minimise (money on rich channels) - (money on poor\n"
    "channels), subject to every account keeping its net storage, the parity\n"
    "bounds (a rich channel keeps between W and its amount, a poor one between its\n"
    "amount and W) and rich >= epsilon x poor. docs/econ.md has the formulation.\n"
    "W defaults to the mean amount.\n"
    "\nExample:\n  kcobra econ poverty --edges payments.csv --epsilon 0.5 --threshold 100\n";

static int run_poverty(const kcobra_command *command, int argc, char **argv)
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

static const char COLORED_DESCRIPTION[] =
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
    return print_flush();
}

static int run_colored(const kcobra_command *command, int argc, char **argv)
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

/* ============================================================== dispatcher */

static const kcobra_command SUBCOMMANDS[] = {
    {"econ maxflow", "econ maxflow --source S --sink T (--edges FILE | --ledger)",
     "maximum money flow, a minimum cut and the crucial accounts", MAXFLOW_DESCRIPTION, run_maxflow,
     0, 0},
    {"econ scc", "econ scc (--edges FILE | --ledger)",
     "strongly connected components (industries) and cycles (supply chains)", SCC_DESCRIPTION,
     run_scc, 0, 0},
    {"econ hubs", "econ hubs [--k K] (--edges FILE | --ledger)",
     "k-core decomposition; the densest core's accounts are the hubs", HUBS_DESCRIPTION, run_hubs,
     0, 0},
    {"econ strata", "econ strata --threshold W (--edges FILE | --ledger)",
     "rich and poor channels and accounts, with totals", STRATA_DESCRIPTION, run_strata, 0, 0},
    {"econ poverty", "econ poverty --epsilon E [--threshold W] (--edges FILE | --ledger)",
     "the poverty-alleviation linear program (GLPK)", POVERTY_DESCRIPTION, run_poverty, 0, 0},
    {"econ colored",
     "econ colored --hub H --rate R [--source S --sink T] [--indirect --gdp G] "
     "(--edges FILE | --ledger)",
     "storage money and coloured-money estimates", COLORED_DESCRIPTION, run_colored, 0, 0},
    {"econ value", "econ value --bom FILE --item X [--depth T]",
     "the value of an item over a bill-of-materials DAG", NULL, kcobra_econ_run_value, 0, 0},
    {"econ equilibrium", "econ equilibrium --market FILE",
     "Fisher-market equilibrium prices and allocation, with KKT residuals", NULL,
     kcobra_econ_run_equilibrium, 0, 0},
    {"econ dynamics", "econ dynamics --market FILE --steps N [--plot FILE.svg]",
     "tatonnement: prices follow excess demand; distance to the equilibrium", NULL,
     kcobra_econ_run_dynamics, 0, 0},
};

static void econ_help(void)
{
    printf("Usage: kcobra econ <subcommand> [options]\n\n"
           "Computational economics on the cloud's money-flow graph (payer -> payee,\n"
           "weighted by amount; from an edge file or the ledger's history) and on Fisher\n"
           "markets. Tables by default, --json on request; docs/econ.md is the manual.\n\n"
           "Subcommands:\n");
    for (int index = 0; index < KCOBRA_ARRAY_COUNT(SUBCOMMANDS); index++)
        printf("  %-12s %s\n", SUBCOMMANDS[index].name + 5, SUBCOMMANDS[index].summary);
    printf("\nRun 'kcobra econ <subcommand> --help' for its options.\n\n");
    kcobra_print_exit_status();
}

static int run_econ(const kcobra_command *command, int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
        strcmp(argv[1], "help") == 0) {
        econ_help();
        return argc < 2 ? KCOBRA_EXIT_USAGE : KCOBRA_EXIT_OK;
    }
    for (int index = 0; index < KCOBRA_ARRAY_COUNT(SUBCOMMANDS); index++) {
        if (strcmp(argv[1], SUBCOMMANDS[index].name + 5) == 0)
            return SUBCOMMANDS[index].run(&SUBCOMMANDS[index], argc - 1, argv + 1);
    }
    return kcobra_usage_error(command, "unknown subcommand '%s'; see 'kcobra econ --help'",
                              argv[1]);
}

const kcobra_command kcobra_command_econ = {
    .name = "econ",
    .synopsis = "econ <subcommand> [options]",
    .summary = "money-flow analytics and market equilibria (econ --help lists them)",
    .description = NULL,
    .run = run_econ,
    .positional_min = 0,
    .positional_max = KCOBRA_POSITIONAL_MAX,
};
