/* kcobra_econ.h - what the `kcobra econ` subcommands share: the graph input
 * (an edge file or the ledger's history over the fabric), DOT/SVG output,
 * progress on a terminal, --stats, and number parsing. */
#ifndef KCOBRA_ECON_H
#define KCOBRA_ECON_H

#include "econ/dot.h"
#include "econ/graph.h"
#include "econ/graph_load.h"
#include "kcobra_common.h"

enum {
    KCOBRA_ECON_TABLE_ROWS_MAX = 20, /* rows of a list in the table output */
    KCOBRA_ECON_LEDGER_PAGE_LIMIT = 10000,
    KCOBRA_ECON_LEDGER_PAGES_MAX = 100000,
};

/* The flags of every graph subcommand, bound by KCOBRA_ECON_GRAPH_FLAGS. */
typedef struct kcobra_econ_input {
    const char *edges_path;
    bool ledger;
    const char *since_ms;
    const char *dot_path;
    const char *svg_path;
    bool stats;
    int64_t load_started_us;
    int64_t load_us;
    int64_t compute_started_us;
    int64_t cpu_started_us; /* user + system CPU time, getrusage */
    int64_t compute_cpu_started_us;
} kcobra_econ_input;

/* clang-format off */
#define KCOBRA_ECON_GRAPH_FLAGS(input)                                                             \
    {"edges", "FILE", KCOBRA_FLAG_STRING, &(input).edges_path,                                     \
     "the payments: a CSV or JSON edge file, - for stdin (docs/econ.md)"},                         \
    {"ledger", NULL, KCOBRA_FLAG_BOOL, &(input).ledger,                                            \
     "read the ledger's history over the fabric (kc.ledger.history, --server)"},                   \
    {"since-ms", "MS", KCOBRA_FLAG_STRING, &(input).since_ms,                                      \
     "with --ledger: only transfers at or after this unix time in ms"},                            \
    {"dot", "FILE", KCOBRA_FLAG_STRING, &(input).dot_path,                                         \
     "write the graph as Graphviz DOT, the result highlighted"},                                   \
    {"svg", "FILE", KCOBRA_FLAG_STRING, &(input).svg_path,                                         \
     "also render it to SVG with dot -Tsvg (needs --dot or writes FILE.dot)"},                     \
    {"stats", NULL, KCOBRA_FLAG_BOOL, &(input).stats,                                              \
     "print load and compute time and peak memory on stderr"}
/* clang-format on */

/* Loads the graph from --edges or --ledger; prints the error and returns an
 * exit code on failure. */
int kcobra_econ_graph_open(const kcobra_command *command, const kcobra_invocation *invocation,
                           kcobra_econ_input *input, kci_econ_graph *graph);
/* Whether --dot or --svg was given (the highlight needs computing). */
bool kcobra_econ_dot_wanted(const kcobra_econ_input *input);
/* Marks the end of the computation (for --stats) and writes the DOT/SVG. */
int kcobra_econ_graph_output(kcobra_econ_input *input, const kci_econ_graph *graph,
                             const kci_econ_dot_style *style);
/* --stats: marks the start of loading, and of computing. */
void kcobra_econ_stats_load_start(kcobra_econ_input *input);
void kcobra_econ_stats_compute_start(kcobra_econ_input *input);
/* --stats line on stderr: load_ms, compute_ms, the same in CPU time
 * (load_cpu_ms, compute_cpu_ms: less disturbed by a busy machine), and
 * peak_rss_kib. */
void kcobra_econ_stats_print(const kcobra_econ_input *input);

/* The exit code for an econ error (prints it). */
int kcobra_econ_fail(kc_err err, const kci_econ_error *error);
/* A finite number; a usage error names the flag. */
int kcobra_econ_number(const kcobra_command *command, const char *flag, const char *text,
                       double *out);
/* Progress on a terminal's stderr (nothing when stderr is not a tty). */
void kcobra_econ_progress(void *context, const char *what, int64_t done, int64_t total);
void kcobra_econ_progress_end(void);
/* A JSON array of vertex names. */
json_t *kcobra_econ_names(const kci_econ_graph *graph, const igraph_vector_int_t *vertices);

/* Output helpers: flush stdout (an exit code), and a list of names cut to
 * KCOBRA_ECON_TABLE_ROWS_MAX in the table. */
int kcobra_econ_print_flush(void);
void kcobra_econ_print_names(const char *label, const kci_econ_graph *graph,
                             const igraph_vector_int_t *vertices);

/* The subcommands: graph structure (kcobra_econ_graph.c), money
 * distribution (kcobra_econ_money.c), markets (kcobra_econ_market.c). */
/* Each subcommand's --help text (paragraphs and examples), beside its runner. */
extern const char kcobra_econ_maxflow_description[];
extern const char kcobra_econ_scc_description[];
extern const char kcobra_econ_hubs_description[];
extern const char kcobra_econ_strata_description[];
extern const char kcobra_econ_poverty_description[];
extern const char kcobra_econ_colored_description[];
extern const char kcobra_econ_value_description[];
extern const char kcobra_econ_equilibrium_description[];
extern const char kcobra_econ_dynamics_description[];

int kcobra_econ_run_maxflow(const kcobra_command *command, int argc, char **argv);
int kcobra_econ_run_scc(const kcobra_command *command, int argc, char **argv);
int kcobra_econ_run_hubs(const kcobra_command *command, int argc, char **argv);
int kcobra_econ_run_strata(const kcobra_command *command, int argc, char **argv);
int kcobra_econ_run_poverty(const kcobra_command *command, int argc, char **argv);
int kcobra_econ_run_colored(const kcobra_command *command, int argc, char **argv);
int kcobra_econ_run_value(const kcobra_command *command, int argc, char **argv);
int kcobra_econ_run_equilibrium(const kcobra_command *command, int argc, char **argv);
int kcobra_econ_run_dynamics(const kcobra_command *command, int argc, char **argv);

#endif
