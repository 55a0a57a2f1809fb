/* kcobra_econ.c - `kcobra econ <subcommand>`: computational economics on the
 * money-flow graph of the ledger (or of an edge file) and on Fisher markets.
 *
 * This file holds the dispatcher and the shared input/output helpers (edge
 * file or ledger history, DOT/SVG, --stats, progress). The subcommands are
 * in kcobra_econ_graph.c (maxflow, scc, hubs), kcobra_econ_money.c (strata,
 * poverty, colored) and kcobra_econ_market.c (value, equilibrium,
 * dynamics).
 * The algorithms are in src/econ/; docs/econ.md is the manual.
 *
 * The ledger's history is read with raw nats.c requests on
 * kc.ledger.history, {"since_ms","after","limit"} -> {"edges":[...],
 * "next":cursor|null}, paged until next is null; a Kc-Error header is the
 * ledger's error reply. */
#include "kcobra_econ.h"

#include <inttypes.h>
#include <malloc.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "common/clock.h"
#include "econ/colored.h"
#include "ledger/client.h"

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
    json_t *document = NULL;
    kci_ledger_refusal refusal;
    kc_err called =
        kci_ledger_call(&document, connection, "history", request, common->timeout_ms, &refusal);
    if (called == KC_ERR_SERVICE)
        kci_econ_error_set(error, "the ledger refused the history request: %d %s", refusal.code,
                           refusal.message);
    else if (called != KC_OK)
        kci_econ_error_set(error, "%s", refusal.message);
    if (called != KC_OK) {
        json_decref(document);
        return called;
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

/* Loading frees large arrays (the builder's payments, igraph's sort
 * buffers) just before allocating others of the same size. By default glibc
 * maps each large block afresh and unmaps it when freed, so every page is
 * faulted in and zeroed again. While loading, freed blocks stay in the heap
 * and are reused instead (page faults of `econ scc` on 1,000,000 payments:
 * 31,000 -> 20,500, perf stat); afterwards glibc's default thresholds, so
 * that the algorithms' own large blocks are returned when freed (kept, they
 * raised the peak of the vertex cut by 12%). */
static void keep_freed_memory(bool keep)
{
#ifdef M_MMAP_THRESHOLD
    enum { GLIBC_DEFAULT_BYTES = 128 * 1024 };
    mallopt(M_MMAP_THRESHOLD, keep ? 1 << 30 : GLIBC_DEFAULT_BYTES);
    mallopt(M_TRIM_THRESHOLD, keep ? 1 << 30 : GLIBC_DEFAULT_BYTES);
#else
    (void)keep;
#endif
}

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
    keep_freed_memory(true);
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
    keep_freed_memory(false);
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

int kcobra_econ_print_flush(void)
{
    return fflush(stdout) == 0 ? KCOBRA_EXIT_OK : KCOBRA_EXIT_FAILURE;
}

void kcobra_econ_print_names(const char *label, const kci_econ_graph *graph,
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

/* ============================================================== dispatcher */

static const kcobra_command SUBCOMMANDS[] = {
    {"econ maxflow", "econ maxflow --source S --sink T (--edges FILE | --ledger)",
     "maximum money flow, a minimum cut and the crucial accounts", kcobra_econ_maxflow_description,
     kcobra_econ_run_maxflow, 0, 0},
    {"econ scc", "econ scc (--edges FILE | --ledger)",
     "strongly connected components (industries) and cycles (supply chains)",
     kcobra_econ_scc_description, kcobra_econ_run_scc, 0, 0},
    {"econ hubs", "econ hubs [--k K] (--edges FILE | --ledger)",
     "k-core decomposition; the densest core's accounts are the hubs", kcobra_econ_hubs_description,
     kcobra_econ_run_hubs, 0, 0},
    {"econ strata", "econ strata --threshold W (--edges FILE | --ledger)",
     "rich and poor channels and accounts, with totals", kcobra_econ_strata_description,
     kcobra_econ_run_strata, 0, 0},
    {"econ poverty", "econ poverty --epsilon E [--threshold W] (--edges FILE | --ledger)",
     "the poverty-alleviation linear program (GLPK)", kcobra_econ_poverty_description,
     kcobra_econ_run_poverty, 0, 0},
    {"econ colored",
     "econ colored --hub H --rate R [--source S --sink T] [--indirect --gdp G] "
     "(--edges FILE | --ledger)",
     "storage money and coloured-money estimates", kcobra_econ_colored_description,
     kcobra_econ_run_colored, 0, 0},
    {"econ value", "econ value --bom FILE --item X [--depth T]",
     "the value of an item over a bill-of-materials DAG", kcobra_econ_value_description,
     kcobra_econ_run_value, 0, 0},
    {"econ equilibrium", "econ equilibrium --market FILE",
     "Fisher-market equilibrium prices and allocation, with KKT residuals",
     kcobra_econ_equilibrium_description, kcobra_econ_run_equilibrium, 0, 0},
    {"econ dynamics", "econ dynamics --market FILE --steps N [--plot FILE.svg]",
     "tatonnement: prices follow excess demand; distance to the equilibrium",
     kcobra_econ_dynamics_description, kcobra_econ_run_dynamics, 0, 0},
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
