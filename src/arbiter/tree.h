/* tree.h - the reporting structure: a tree of nodes with the best-rated as
 * supervisors. Nodes are sorted by merit (then QoS score, then name) and
 * laid out breadth-first with at most fanout reports each: the best node
 * is the root, the next fanout its reports, and so on, so a node's
 * supervisor is always rated at least as well as the node. Rebuilt from
 * the ranking on every arbiter tick. Quarantined nodes are left out. */
#ifndef KCI_ARBITER_TREE_H
#define KCI_ARBITER_TREE_H

#include <jansson.h>
#include <stdint.h>
#include <stdio.h>

#include "kingcobra/err.h"

typedef struct kci_tree_node {
    const char *name;
    double merit;
    double qos;
} kci_tree_node;

/* Sorts nodes best first in place and writes parent[i] (index into the
 * sorted array; -1 for the root). fanout >= 1. */
kc_err kci_tree_build(kci_tree_node *nodes, int32_t *parent, uint32_t n, uint32_t fanout);
/* {"root": name, "nodes": [{"name","merit","qos","supervisor"}...]} */
json_t *kci_tree_json(const kci_tree_node *nodes, const int32_t *parent, uint32_t n);
/* Renders the JSON form (as kci_tree_json makes and the arbiter publishes)
 * as indented text or as Graphviz DOT. */
kc_err kci_tree_print_text(FILE *out, json_t *tree);
kc_err kci_tree_print_dot(FILE *out, json_t *tree);

#endif
