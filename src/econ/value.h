/* value.h - the value of an item over a bill of materials (a DAG):
 *
 *     value(i) = cost(i) + sum over ingredients j of quantity(i, j) * value(j)
 *
 * where cost(i) is the cost of integrating i's ingredients (for a raw
 * material, its price). The BOM file is JSON:
 *
 *   {"items": {"car":   {"cost": 500, "ingredients": {"wheel": 4, "engine": 1}},
 *              "wheel": {"cost": 40},
 *              "engine":{"cost": 900, "ingredients": {"bolt": 12}},
 *              "bolt":  {"cost": 0.5}}}
 *
 * Evaluation is an iterative depth-first search with a memo, so each item
 * and each ingredient link is visited once (time linear in the DAG) and the
 * depth of the DAG costs no C stack. A cycle is an error that names it; a
 * DAG deeper than depth_max below the asked item is an error too. */
#ifndef KCI_ECON_VALUE_H
#define KCI_ECON_VALUE_H

#include <jansson.h>

#include "graph.h"

enum {
    KCI_ECON_BOM_ITEMS_MAX = 10 * 1000 * 1000,
    KCI_ECON_BOM_DEPTH_DEFAULT = 10000,
};

typedef struct kci_econ_ingredient {
    int64_t item;
    double quantity;
} kci_econ_ingredient;

typedef struct kci_econ_bom {
    int64_t item_count;
    char **names;
    double *costs;
    int64_t *ingredient_offsets; /* item_count + 1 */
    kci_econ_ingredient *ingredients;
} kci_econ_bom;

typedef struct kci_econ_value {
    double value;
    int64_t height;          /* levels below the item (a raw material: 0) */
    int64_t items_evaluated; /* distinct items below and including it */
    double *values;          /* per item, NAN where not evaluated */
} kci_econ_value;

kc_err kci_econ_bom_from_json(const json_t *document, kci_econ_bom *bom, kci_econ_error *error);
kc_err kci_econ_bom_load_file(const char *path, kci_econ_bom *bom, kci_econ_error *error);
void kci_econ_bom_free(kci_econ_bom *bom);
int64_t kci_econ_bom_find(const kci_econ_bom *bom, const char *name);
kc_err kci_econ_value_compute(const kci_econ_bom *bom, int64_t item, int64_t depth_max,
                              kci_econ_value *result, kci_econ_error *error);
void kci_econ_value_free(kci_econ_value *result);

#endif
