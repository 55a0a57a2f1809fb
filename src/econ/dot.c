/* dot.c - the DOT writer (dot.h). Names are quoted with '"' and '\'
 * escaped, so any account name is safe. SVG rendering runs Graphviz's dot
 * as a child process (posix_spawnp, no shell). */
#include "dot.h"

#include <errno.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

extern char **environ;

static const char *const VERTEX_STYLE[] = {
    "",
    " color=red fontcolor=red penwidth=2.5 style=bold",
    " color=blue fontcolor=blue",
    " color=grey70 fontcolor=grey50",
};
static const char *const EDGE_STYLE[] = {
    "",
    " color=red fontcolor=red penwidth=2.5",
    " color=blue fontcolor=blue",
    " color=grey70 fontcolor=grey50",
};

static void quoted(FILE *out, const char *text)
{
    fputc('"', out);
    for (const char *at = text; *at != '\0'; at++) {
        if (*at == '"' || *at == '\\') fputc('\\', out);
        if (*at == '\n') {
            fputs("\\n", out);
            continue;
        }
        fputc(*at, out);
    }
    fputc('"', out);
}

kc_err kci_econ_dot_write(FILE *out, const kci_econ_graph *graph, const kci_econ_dot_style *style)
{
    fputs("digraph money_flow {\n  rankdir=LR;\n  node [shape=box fontname=\"Helvetica\"];\n"
          "  edge [fontname=\"Helvetica\" fontsize=10];\n",
          out);
    if (style != NULL && style->title != NULL) {
        fputs("  labelloc=t; label=", out);
        quoted(out, style->title);
        fputs(";\n", out);
    }
    for (int64_t vertex = 0; vertex < graph->node_count; vertex++) {
        int class = style != NULL && style->vertex_class != NULL ? style->vertex_class[vertex] : 0;
        fprintf(out, "  n%lld [label=", (long long)vertex);
        quoted(out, graph->names[vertex]);
        fprintf(out, "%s];\n", VERTEX_STYLE[class & 3]);
    }
    for (int64_t edge = 0; edge < graph->edge_count; edge++) {
        int class = style != NULL && style->edge_class != NULL ? style->edge_class[edge] : 0;
        fprintf(out, "  n%lld -> n%lld [label=\"%.15g\"%s];\n",
                (long long)IGRAPH_FROM(&graph->graph, edge),
                (long long)IGRAPH_TO(&graph->graph, edge), VECTOR(graph->amounts)[edge],
                EDGE_STYLE[class & 3]);
    }
    fputs("}\n", out);
    return ferror(out) ? KC_ERR_IO : KC_OK;
}

kc_err kci_econ_dot_render_svg(const char *dot_path, const char *svg_path, kci_econ_error *error)
{
    char *const arguments[] = {"dot", "-Tsvg", "-o", (char *)svg_path, (char *)dot_path, NULL};
    pid_t child = 0;
    int status = posix_spawnp(&child, "dot", NULL, NULL, arguments, environ);
    if (status != 0) {
        kci_econ_error_set(error,
                           "cannot run Graphviz's dot (%s): install graphviz for SVG; "
                           "the DOT file %s is written",
                           strerror(status), dot_path);
        return KC_ERR_UNSUPPORTED;
    }
    int wait_status = 0;
    while (waitpid(child, &wait_status, 0) < 0) {
        if (errno != EINTR) {
            kci_econ_error_set(error, "waiting for dot: %s", strerror(errno));
            return KC_ERR_IO;
        }
    }
    if (!WIFEXITED(wait_status) || WEXITSTATUS(wait_status) != 0) {
        kci_econ_error_set(error, "dot -Tsvg failed on %s", dot_path);
        return WIFEXITED(wait_status) && WEXITSTATUS(wait_status) == 127 ? KC_ERR_UNSUPPORTED
                                                                         : KC_ERR_IO;
    }
    return KC_OK;
}

kc_err kci_econ_dot_file(const char *path, const char *svg_path, const kci_econ_graph *graph,
                         const kci_econ_dot_style *style, kci_econ_error *error)
{
    FILE *out = fopen(path, "w");
    if (out == NULL) {
        kci_econ_error_set(error, "cannot write %s: %s", path, strerror(errno));
        return KC_ERR_IO;
    }
    kc_err err = kci_econ_dot_write(out, graph, style);
    if (fclose(out) != 0 || err != KC_OK) {
        kci_econ_error_set(error, "cannot write %s: %s", path, strerror(errno));
        return KC_ERR_IO;
    }
    if (svg_path == NULL) return KC_OK;
    if (graph->edge_count > KCI_ECON_DOT_SVG_EDGES_MAX) {
        kci_econ_error_set(error,
                           "the graph has %lld edges, more than %d: Graphviz would take "
                           "too long; the DOT file %s is written",
                           (long long)graph->edge_count, KCI_ECON_DOT_SVG_EDGES_MAX, path);
        return KC_ERR_TOO_LARGE;
    }
    return kci_econ_dot_render_svg(path, svg_path, error);
}
