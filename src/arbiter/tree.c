/* tree.c - the reporting structure (tree.h). */
#include "tree.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

enum {
    TREE_DEPTH_MAX = 64, /* fanout 1 over 4096 nodes would be deeper: text cuts indentation */
};

static int compare_nodes(const void *left, const void *right)
{
    const kci_tree_node *a = left, *b = right;
    if (a->merit != b->merit) return a->merit > b->merit ? -1 : 1;
    if (a->qos != b->qos) return a->qos > b->qos ? -1 : 1;
    return strcmp(a->name, b->name);
}

kc_err kci_tree_build(kci_tree_node *nodes, int32_t *parent, uint32_t n, uint32_t fanout)
{
    if (fanout == 0) return KC_ERR_INVALID_ARGUMENT;
    if (n == 0) return KC_OK;
    qsort(nodes, n, sizeof nodes[0], compare_nodes);
    for (uint32_t i = 0; i < n; i++)
        parent[i] = i == 0 ? -1 : (int32_t)((i - 1) / fanout);
    return KC_OK;
}

json_t *kci_tree_json(const kci_tree_node *nodes, const int32_t *parent, uint32_t n)
{
    json_t *list = json_array();
    for (uint32_t i = 0; i < n; i++) {
        assert(parent[i] < (int32_t)i);
        json_array_append_new(list,
                              json_pack("{s:s, s:f, s:f, s:s?}", "name", nodes[i].name, "merit",
                                        nodes[i].merit, "qos", nodes[i].qos, "supervisor",
                                        parent[i] < 0 ? NULL : nodes[parent[i]].name));
    }
    return json_pack("{s:s?, s:o}", "root", n > 0 ? nodes[0].name : NULL, "nodes", list);
}

static const char *supervisor_of(json_t *node)
{
    return json_string_value(json_object_get(node, "supervisor"));
}

static void print_subtree(FILE *out, json_t *nodes, const char *name, int depth)
{
    size_t index;
    json_t *node;
    json_array_foreach(nodes, index, node)
    {
        const char *supervisor = supervisor_of(node);
        const char *self = json_string_value(json_object_get(node, "name"));
        if (self == NULL) continue;
        if (!(name == NULL ? supervisor == NULL
                           : supervisor != NULL && strcmp(supervisor, name) == 0))
            continue;
        fprintf(out, "%*s%s  merit %.3f  qos %.3f\n",
                2 * (depth < TREE_DEPTH_MAX ? depth : TREE_DEPTH_MAX), "", self,
                json_number_value(json_object_get(node, "merit")),
                json_number_value(json_object_get(node, "qos")));
        if (depth < 4 * TREE_DEPTH_MAX) print_subtree(out, nodes, self, depth + 1);
    }
}

kc_err kci_tree_print_text(FILE *out, json_t *tree)
{
    json_t *nodes = json_object_get(tree, "nodes");
    if (!json_is_array(nodes)) return KC_ERR_PARSE;
    if (json_array_size(nodes) == 0) fprintf(out, "(no nodes rated yet)\n");
    print_subtree(out, nodes, NULL, 0);
    return KC_OK;
}

/* A DOT string's contents: node names are subject tokens, which may hold
 * '"' and '\\'. */
static void dot_string(FILE *out, const char *text)
{
    for (; *text != '\0'; text++) {
        if (*text == '"' || *text == '\\') fputc('\\', out);
        fputc(*text, out);
    }
}

kc_err kci_tree_print_dot(FILE *out, json_t *tree)
{
    json_t *nodes = json_object_get(tree, "nodes");
    if (!json_is_array(nodes)) return KC_ERR_PARSE;
    fprintf(out, "digraph reporting {\n  rankdir=TB;\n");
    size_t index;
    json_t *node;
    json_array_foreach(nodes, index, node)
    {
        const char *self = json_string_value(json_object_get(node, "name"));
        if (self == NULL) continue;
        fprintf(out, "  \"");
        dot_string(out, self);
        fprintf(out, "\" [label=\"");
        dot_string(out, self);
        fprintf(out, "\\nmerit %.3f qos %.3f\"];\n",
                json_number_value(json_object_get(node, "merit")),
                json_number_value(json_object_get(node, "qos")));
        const char *supervisor = supervisor_of(node);
        if (supervisor == NULL) continue;
        fprintf(out, "  \"");
        dot_string(out, supervisor);
        fprintf(out, "\" -> \"");
        dot_string(out, self);
        fprintf(out, "\";\n");
    }
    fprintf(out, "}\n");
    return KC_OK;
}
