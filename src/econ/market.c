/* market.c - reading and checking a Fisher market (format in market.h). */
#include "market.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "json_file.h"

void kci_econ_market_free(kci_econ_market *market)
{
    for (int64_t index = 0; index < market->buyer_count && market->buyer_names; index++)
        free(market->buyer_names[index]);
    for (int64_t index = 0; index < market->good_count && market->good_names; index++)
        free(market->good_names[index]);
    free(market->buyer_names);
    free(market->good_names);
    free(market->budgets);
    free(market->supplies);
    free(market->utilities);
    free(market->prices_initial);
    json_decref(market->good_index);
    memset(market, 0, sizeof *market);
}

static bool positive_number(const json_t *value, double *out)
{
    if (!json_is_number(value)) return false;
    *out = json_number_value(value);
    return isfinite(*out) && *out > 0;
}

static char *name_copy(const json_t *name, const char *kind, int64_t index)
{
    char fallback[64];
    const char *text = json_string_value(name);
    if (text == NULL) {
        snprintf(fallback, sizeof fallback, "%s%lld", kind, (long long)index + 1);
        text = fallback;
    }
    return strdup(text);
}

static kc_err read_goods(const json_t *goods, kci_econ_market *market, kci_econ_error *error)
{
    size_t index = 0;
    const json_t *good = NULL;
    json_array_foreach(goods, index, good)
    {
        if (!json_is_object(good)) {
            kci_econ_error_set(error, "goods[%zu] is not an object", index);
            return KC_ERR_PARSE;
        }
        const json_t *name = json_object_get(good, "name");
        if (name != NULL && (!json_is_string(name) || json_string_length(name) == 0 ||
                             json_string_length(name) > KCI_ECON_NAME_BYTES_MAX)) {
            kci_econ_error_set(error, "goods[%zu]: \"name\" must be a string of 1..%d bytes", index,
                               KCI_ECON_NAME_BYTES_MAX);
            return KC_ERR_PARSE;
        }
        market->good_names[index] = name_copy(name, "good", (int64_t)index);
        if (market->good_names[index] == NULL) return KC_ERR_NOMEM;
        const char *label = market->good_names[index];
        if (json_object_get(market->good_index, label) != NULL) {
            kci_econ_error_set(error, "good '%s' is listed twice", label);
            return KC_ERR_PARSE;
        }
        if (json_object_set_new(market->good_index, label, json_integer((json_int_t)index)) != 0)
            return KC_ERR_NOMEM;
        const json_t *supply = json_object_get(good, "supply");
        market->supplies[index] = 1;
        if (supply != NULL && !positive_number(supply, &market->supplies[index])) {
            kci_econ_error_set(error, "good '%s': supply must be a number > 0", label);
            return KC_ERR_PARSE;
        }
        const json_t *price = json_object_get(good, "price");
        if (price == NULL) continue;
        if (market->prices_initial == NULL) {
            market->prices_initial = calloc((size_t)market->good_count, sizeof(double));
            if (market->prices_initial == NULL) return KC_ERR_NOMEM;
        }
        if (!positive_number(price, &market->prices_initial[index])) {
            kci_econ_error_set(error, "good '%s': price must be a number > 0", label);
            return KC_ERR_PARSE;
        }
    }
    if (market->prices_initial != NULL) {
        for (int64_t good_index = 0; good_index < market->good_count; good_index++) {
            if (market->prices_initial[good_index] <= 0) {
                kci_econ_error_set(error, "good '%s' has no price while others have one",
                                   market->good_names[good_index]);
                return KC_ERR_PARSE;
            }
        }
    }
    return KC_OK;
}

static int64_t good_find(const kci_econ_market *market, const char *name)
{
    const json_t *index = json_object_get(market->good_index, name);
    return index != NULL ? (int64_t)json_integer_value(index) : -1;
}

static kc_err utility_set(kci_econ_market *market, int64_t buyer, int64_t good, const json_t *value,
                          kci_econ_error *error)
{
    double utility = json_is_number(value) ? json_number_value(value) : -1;
    if (!isfinite(utility) || utility < 0) {
        kci_econ_error_set(error, "buyer '%s': the utility of '%s' must be a number >= 0",
                           market->buyer_names[buyer], market->good_names[good]);
        return KC_ERR_PARSE;
    }
    market->utilities[buyer * market->good_count + good] = utility;
    return KC_OK;
}

static kc_err read_utilities(const json_t *utilities, kci_econ_market *market, int64_t buyer,
                             kci_econ_error *error)
{
    const char *label = market->buyer_names[buyer];
    if (json_is_array(utilities)) {
        if ((int64_t)json_array_size(utilities) != market->good_count) {
            kci_econ_error_set(error, "buyer '%s': %zu utilities for %lld goods", label,
                               json_array_size(utilities), (long long)market->good_count);
            return KC_ERR_PARSE;
        }
        for (int64_t good = 0; good < market->good_count; good++) {
            kc_err err =
                utility_set(market, buyer, good, json_array_get(utilities, (size_t)good), error);
            if (err != KC_OK) return err;
        }
        return KC_OK;
    }
    if (!json_is_object(utilities)) {
        kci_econ_error_set(error, "buyer '%s': \"utilities\" must be an object or an array", label);
        return KC_ERR_PARSE;
    }
    const char *key = NULL;
    const json_t *value = NULL;
    json_object_foreach((json_t *)utilities, key, value)
    {
        int64_t good = good_find(market, key);
        if (good < 0) {
            kci_econ_error_set(error, "buyer '%s': unknown good '%s'", label, key);
            return KC_ERR_NOT_FOUND;
        }
        kc_err err = utility_set(market, buyer, good, value, error);
        if (err != KC_OK) return err;
    }
    return KC_OK;
}

static kc_err read_buyers(const json_t *buyers, kci_econ_market *market, kci_econ_error *error)
{
    size_t index = 0;
    const json_t *buyer = NULL;
    json_array_foreach(buyers, index, buyer)
    {
        if (!json_is_object(buyer)) {
            kci_econ_error_set(error, "buyers[%zu] is not an object", index);
            return KC_ERR_PARSE;
        }
        const json_t *name = json_object_get(buyer, "name");
        if (name != NULL && (!json_is_string(name) || json_string_length(name) == 0 ||
                             json_string_length(name) > KCI_ECON_NAME_BYTES_MAX)) {
            kci_econ_error_set(error, "buyers[%zu]: \"name\" must be a string of 1..%d bytes",
                               index, KCI_ECON_NAME_BYTES_MAX);
            return KC_ERR_PARSE;
        }
        market->buyer_names[index] = name_copy(name, "buyer", (int64_t)index);
        if (market->buyer_names[index] == NULL) return KC_ERR_NOMEM;
        const char *label = market->buyer_names[index];
        const json_t *budget = json_object_get(buyer, "budget");
        if (!json_is_number(budget)) {
            kci_econ_error_set(error, "buyer '%s' has no \"budget\" (a number > 0)", label);
            return KC_ERR_PARSE;
        }
        if (!positive_number(budget, &market->budgets[index])) {
            kci_econ_error_set(error,
                               "buyer '%s' has no budget (%g): a buyer without money "
                               "cannot take part in the market; remove it",
                               label, json_number_value(budget));
            return KC_ERR_INVALID_ARGUMENT;
        }
        kc_err err =
            read_utilities(json_object_get(buyer, "utilities"), market, (int64_t)index, error);
        if (err != KC_OK) return err;
    }
    return KC_OK;
}

static kc_err check_wants(const kci_econ_market *market, kci_econ_error *error)
{
    for (int64_t buyer = 0; buyer < market->buyer_count; buyer++) {
        bool wants = false;
        for (int64_t good = 0; good < market->good_count; good++)
            wants |= market->utilities[buyer * market->good_count + good] > 0;
        if (!wants) {
            kci_econ_error_set(error,
                               "buyer '%s' wants no good (every utility is 0): the "
                               "market has no equilibrium; remove the buyer",
                               market->buyer_names[buyer]);
            return KC_ERR_INVALID_ARGUMENT;
        }
    }
    for (int64_t good = 0; good < market->good_count; good++) {
        bool wanted = false;
        for (int64_t buyer = 0; buyer < market->buyer_count; buyer++)
            wanted |= market->utilities[buyer * market->good_count + good] > 0;
        if (!wanted) {
            kci_econ_error_set(error,
                               "good '%s' is wanted by nobody (every utility is 0): its "
                               "price would be 0 and it would not sell; remove the good",
                               market->good_names[good]);
            return KC_ERR_INVALID_ARGUMENT;
        }
    }
    return KC_OK;
}

kc_err kci_econ_market_from_json(const json_t *document, kci_econ_market *market,
                                 kci_econ_error *error)
{
    memset(market, 0, sizeof *market);
    const json_t *goods = json_object_get(document, "goods");
    const json_t *buyers = json_object_get(document, "buyers");
    if (!json_is_array(goods) || !json_is_array(buyers) || json_array_size(goods) == 0 ||
        json_array_size(buyers) == 0) {
        kci_econ_error_set(error, "a market is {\"goods\":[...],\"buyers\":[...]}, both "
                                  "non-empty arrays");
        return KC_ERR_PARSE;
    }
    market->good_count = (int64_t)json_array_size(goods);
    market->buyer_count = (int64_t)json_array_size(buyers);
    if (market->good_count > KCI_ECON_MARKET_SIDE_MAX ||
        market->buyer_count > KCI_ECON_MARKET_SIDE_MAX ||
        market->good_count * market->buyer_count > KCI_ECON_MARKET_CELLS_MAX) {
        kci_econ_error_set(error, "market too large: %lld buyers x %lld goods (at most %d cells)",
                           (long long)market->buyer_count, (long long)market->good_count,
                           KCI_ECON_MARKET_CELLS_MAX);
        market->good_count = market->buyer_count = 0;
        return KC_ERR_TOO_LARGE;
    }
    size_t goods_size = (size_t)market->good_count;
    size_t buyers_size = (size_t)market->buyer_count;
    market->good_names = calloc(goods_size, sizeof(char *));
    market->buyer_names = calloc(buyers_size, sizeof(char *));
    market->supplies = calloc(goods_size, sizeof(double));
    market->budgets = calloc(buyers_size, sizeof(double));
    market->utilities = calloc(goods_size * buyers_size, sizeof(double));
    market->good_index = json_object();
    kc_err err = KC_ERR_NOMEM;
    if (market->good_index != NULL && market->good_names != NULL && market->buyer_names != NULL &&
        market->supplies != NULL && market->budgets != NULL && market->utilities != NULL) {
        err = read_goods(goods, market, error);
        if (err == KC_OK) err = read_buyers(buyers, market, error);
        if (err == KC_OK) err = check_wants(market, error);
    }
    if (err == KC_ERR_NOMEM) kci_econ_error_set(error, "out of memory reading the market");
    if (err != KC_OK) kci_econ_market_free(market);
    return err;
}

kc_err kci_econ_market_parse(const char *text, size_t length, kci_econ_market *market,
                             kci_econ_error *error)
{
    json_t *document = kci_econ_json_load_text(text, length, error);
    if (document == NULL) {
        memset(market, 0, sizeof *market);
        return KC_ERR_PARSE;
    }
    kc_err err = kci_econ_market_from_json(document, market, error);
    json_decref(document);
    return err;
}

kc_err kci_econ_market_load_file(const char *path, kci_econ_market *market, kci_econ_error *error)
{
    memset(market, 0, sizeof *market);
    json_t *document = kci_econ_json_load_file(path, error);
    if (document == NULL) return KC_ERR_PARSE;
    kc_err err = kci_econ_market_from_json(document, market, error);
    json_decref(document);
    if (err != KC_OK) kci_econ_error_prefix_path(error, path);
    return err;
}
