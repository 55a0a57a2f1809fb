/* market.h - a Fisher market with linear utilities, read from JSON:
 *
 *   {"goods":  [{"name":"bread","supply":10,"price":1.5}, ...],
 *    "buyers": [{"name":"ann","budget":100,"utilities":{"bread":3,"milk":1}},
 *               {"name":"bob","budget":50,"utilities":[1,2]}, ...]}
 *
 * supply defaults to 1; price (optional) is the starting price for
 * `econ dynamics`; utilities are an object by good name (missing goods are
 * worth 0) or an array in the order of "goods". Budgets and supplies must be
 * > 0, utilities >= 0 and finite; every buyer must want some good and every
 * good must be wanted by some buyer, else the market has no equilibrium
 * with positive prices and is refused with a message naming who. */
#ifndef KCI_ECON_MARKET_H
#define KCI_ECON_MARKET_H

#include <jansson.h>

#include "graph.h"

enum {
    KCI_ECON_MARKET_SIDE_MAX = 100000,            /* buyers, and goods */
    KCI_ECON_MARKET_CELLS_MAX = 25 * 1000 * 1000, /* buyers x goods */
};

typedef struct kci_econ_market {
    int64_t buyer_count;
    int64_t good_count;
    char **buyer_names;
    char **good_names;
    double *budgets;        /* per buyer */
    double *supplies;       /* per good */
    double *utilities;      /* buyer-major: utilities[i * good_count + j] */
    double *prices_initial; /* per good, or NULL when no good has a "price" */
    json_t *good_index;     /* good name -> index (a jansson hash table) */
} kci_econ_market;

/* Parses and checks a market document. */
kc_err kci_econ_market_from_json(const json_t *document, kci_econ_market *market,
                                 kci_econ_error *error);
/* Parses text (JSON syntax errors carry the line). */
kc_err kci_econ_market_parse(const char *text, size_t length, kci_econ_market *market,
                             kci_econ_error *error);
kc_err kci_econ_market_load_file(const char *path, kci_econ_market *market, kci_econ_error *error);
void kci_econ_market_free(kci_econ_market *market);

#endif
