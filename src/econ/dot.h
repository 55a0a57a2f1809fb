/* dot.h - writing the money-flow graph as Graphviz DOT with the result of a
 * command highlighted, and rendering it to SVG with `dot -Tsvg` when
 * Graphviz is installed. */
#ifndef KCI_ECON_DOT_H
#define KCI_ECON_DOT_H

#include <stdio.h>

#include "graph.h"

enum {
    KCI_ECON_DOT_SVG_EDGES_MAX = 20000, /* dot takes minutes beyond this */
};

/* Vertex and edge classes: 0 plain, 1 highlighted (red), 2 marked (blue),
 * 3 dimmed (grey). Either array may be NULL (all plain). */
typedef struct kci_econ_dot_style {
    const char *title;
    const unsigned char *vertex_class;
    const unsigned char *edge_class;
} kci_econ_dot_style;

kc_err kci_econ_dot_write(FILE *out, const kci_econ_graph *graph, const kci_econ_dot_style *style);
/* Writes path (DOT); if svg_path is not NULL, also renders it. */
kc_err kci_econ_dot_file(const char *path, const char *svg_path, const kci_econ_graph *graph,
                         const kci_econ_dot_style *style, kci_econ_error *error);
/* Runs `dot -Tsvg -o svg_path dot_path`; KC_ERR_UNSUPPORTED if dot is missing. */
kc_err kci_econ_dot_render_svg(const char *dot_path, const char *svg_path, kci_econ_error *error);

#endif
