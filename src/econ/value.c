/* value.c - bill-of-materials valuation (value.h).
 *
 * The DFS keeps an explicit stack of (item, next ingredient); an item is
 * WHITE (not seen), GREY (on the stack) or BLACK (valued, memoised). Meeting
 * a GREY ingredient is a cycle: the stack from that ingredient up is the
 * cycle, printed in the error. */
#include "value.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "json_file.h"

enum { WHITE = 0, GREY = 1, BLACK = 2 };

void kci_econ_bom_free(kci_econ_bom *bom)
{
    for (int64_t index = 0; index < bom->item_count && bom->names; index++)
        free(bom->names[index]);
    free(bom->names);
    free(bom->costs);
    free(bom->ingredient_offsets);
    free(bom->ingredients);
    memset(bom, 0, sizeof *bom);
}

int64_t kci_econ_bom_find(const kci_econ_bom *bom, const char *name)
{
    for (int64_t index = 0; index < bom->item_count; index++)
        if (strcmp(bom->names[index], name) == 0) return index;
    return -1;
}

static kc_err bom_links(const json_t *items, kci_econ_bom *bom, kci_econ_error *error)
{
    const char *name = NULL;
    const json_t *item = NULL;
    int64_t link = 0, index = 0;
    json_object_foreach((json_t *)items, name, item)
    {
        bom->ingredient_offsets[index] = link;
        const json_t *ingredients = json_object_get(item, "ingredients");
        const char *ingredient = NULL;
        const json_t *quantity = NULL;
        json_object_foreach((json_t *)ingredients, ingredient, quantity)
        {
            const json_t *target = json_object_get(items, ingredient);
            if (target == NULL) {
                kci_econ_error_set(error, "item '%s' needs unknown item '%s'", name, ingredient);
                return KC_ERR_NOT_FOUND;
            }
            double amount = json_is_number(quantity) ? json_number_value(quantity) : -1;
            if (!isfinite(amount) || amount < 0) {
                kci_econ_error_set(error, "item '%s': the quantity of '%s' must be a number >= 0",
                                   name, ingredient);
                return KC_ERR_PARSE;
            }
            bom->ingredients[link].item = json_integer_value(json_object_get(target, "\x01id"));
            bom->ingredients[link].quantity = amount;
            link++;
        }
        index++;
    }
    bom->ingredient_offsets[index] = link;
    return KC_OK;
}

kc_err kci_econ_bom_from_json(const json_t *document, kci_econ_bom *bom, kci_econ_error *error)
{
    memset(bom, 0, sizeof *bom);
    json_t *items = json_deep_copy(json_object_get(document, "items"));
    if (!json_is_object(items) || json_object_size(items) == 0) {
        json_decref(items);
        kci_econ_error_set(error, "a bill of materials is {\"items\":{\"name\":{\"cost\":C,"
                                  "\"ingredients\":{\"name\":quantity}}}}");
        return KC_ERR_PARSE;
    }
    if (json_object_size(items) > KCI_ECON_BOM_ITEMS_MAX) {
        json_decref(items);
        kci_econ_error_set(error, "more than %d items", KCI_ECON_BOM_ITEMS_MAX);
        return KC_ERR_TOO_LARGE;
    }
    int64_t count = (int64_t)json_object_size(items), links = 0, index = 0;
    bom->names = calloc((size_t)count, sizeof(char *));
    bom->costs = calloc((size_t)count, sizeof(double));
    bom->ingredient_offsets = calloc((size_t)count + 1, sizeof(int64_t));
    kc_err err = bom->names && bom->costs && bom->ingredient_offsets ? KC_OK : KC_ERR_NOMEM;
    const char *name = NULL;
    json_t *item = NULL;
    json_object_foreach(items, name, item)
    {
        if (err != KC_OK) break;
        const json_t *cost = json_object_get(item, "cost");
        const json_t *ingredients = json_object_get(item, "ingredients");
        if (!json_is_object(item) || (cost != NULL && !json_is_number(cost)) ||
            (ingredients != NULL && !json_is_object(ingredients))) {
            kci_econ_error_set(error,
                               "item '%s': expected {\"cost\": number, \"ingredients\": "
                               "{\"name\": quantity}}",
                               name);
            err = KC_ERR_PARSE;
            break;
        }
        double value = cost != NULL ? json_number_value(cost) : 0;
        if (!isfinite(value) || value < 0) {
            kci_econ_error_set(error, "item '%s': negative cost %g", name, value);
            err = KC_ERR_PARSE;
            break;
        }
        bom->names[index] = strdup(name);
        bom->costs[index] = value;
        bom->item_count = index + 1;
        links += (int64_t)json_object_size(ingredients);
        /* the id, under a key no JSON text of ours can hold */
        json_object_set_new(item, "\x01id", json_integer(index));
        index++;
    }
    if (err == KC_OK) {
        bom->ingredients = calloc((size_t)links + 1, sizeof *bom->ingredients);
        err = bom->ingredients != NULL ? bom_links(items, bom, error) : KC_ERR_NOMEM;
    }
    json_decref(items);
    if (err == KC_ERR_NOMEM) kci_econ_error_set(error, "out of memory");
    if (err != KC_OK) kci_econ_bom_free(bom);
    return err;
}

kc_err kci_econ_bom_load_file(const char *path, kci_econ_bom *bom, kci_econ_error *error)
{
    memset(bom, 0, sizeof *bom);
    json_t *document = kci_econ_json_load_file(path, error);
    if (document == NULL) return KC_ERR_PARSE;
    kc_err err = kci_econ_bom_from_json(document, bom, error);
    json_decref(document);
    if (err != KC_OK) kci_econ_error_prefix_path(error, path);
    return err;
}

static void cycle_error(const kci_econ_bom *bom, const int64_t *stack, int64_t top, int64_t item,
                        kci_econ_error *error)
{
    char text[KCI_ECON_ERROR_BYTES];
    size_t used = 0;
    int64_t start = top;
    while (start > 0 && stack[start] != item)
        start--;
    for (int64_t at = start; at <= top && used < sizeof text; at++)
        used += (size_t)snprintf(text + used, sizeof text - used, "%s -> ", bom->names[stack[at]]);
    if (used < sizeof text) snprintf(text + used, sizeof text - used, "%s", bom->names[item]);
    kci_econ_error_set(error, "the bill of materials has a cycle: %s", text);
}

kc_err kci_econ_value_compute(const kci_econ_bom *bom, int64_t item, int64_t depth_max,
                              kci_econ_value *result, kci_econ_error *error)
{
    memset(result, 0, sizeof *result);
    int64_t count = bom->item_count;
    unsigned char *color = calloc((size_t)count, 1);
    int64_t *stack = calloc((size_t)count + 1, sizeof(int64_t));
    int64_t *next = calloc((size_t)count, sizeof(int64_t)); /* next ingredient link per item */
    int64_t *height = calloc((size_t)count, sizeof(int64_t));
    result->values = calloc((size_t)count, sizeof(double));
    kc_err err = color && stack && next && height && result->values ? KC_OK : KC_ERR_NOMEM;
    if (err != KC_OK) kci_econ_error_set(error, "out of memory");
    for (int64_t index = 0; index < count && result->values; index++)
        result->values[index] = NAN;
    int64_t top = 0;
    if (err == KC_OK) {
        stack[0] = item;
        color[item] = GREY;
        next[item] = bom->ingredient_offsets[item];
    }
    while (err == KC_OK && top >= 0) {
        int64_t at = stack[top];
        if (next[at] < bom->ingredient_offsets[at + 1]) {
            int64_t child = bom->ingredients[next[at]++].item;
            if (color[child] == BLACK) continue;
            if (color[child] == GREY) {
                cycle_error(bom, stack, top, child, error);
                err = KC_ERR_INVALID_ARGUMENT;
                break;
            }
            color[child] = GREY;
            next[child] = bom->ingredient_offsets[child];
            stack[++top] = child; /* at most count deep: every item on the stack is GREY */
            continue;
        }
        /* all ingredients valued: value this item */
        double value = bom->costs[at];
        int64_t levels = 0;
        for (int64_t link = bom->ingredient_offsets[at]; link < bom->ingredient_offsets[at + 1];
             link++) {
            const kci_econ_ingredient *ingredient = &bom->ingredients[link];
            value += ingredient->quantity * result->values[ingredient->item];
            if (height[ingredient->item] + 1 > levels) levels = height[ingredient->item] + 1;
        }
        result->values[at] = value;
        height[at] = levels;
        color[at] = BLACK;
        result->items_evaluated++;
        if (levels > depth_max) {
            kci_econ_error_set(error,
                               "the bill of materials below '%s' is %lld levels deep, more "
                               "than the depth bound %lld",
                               bom->names[at], (long long)levels, (long long)depth_max);
            err = KC_ERR_LIMIT;
        }
        top--;
    }
    if (err == KC_OK) {
        result->value = result->values[item];
        result->height = height[item];
    }
    free(color);
    free(stack);
    free(next);
    free(height);
    if (err != KC_OK) kci_econ_value_free(result);
    return err;
}

void kci_econ_value_free(kci_econ_value *result)
{
    free(result->values);
    result->values = NULL;
}
