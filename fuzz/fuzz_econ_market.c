/* fuzz_econ_market.c - libFuzzer target for the Fisher-market file
 * (src/econ/market.c) and, on the small markets it accepts, the
 * equilibrium solver (src/econ/equilibrium.c).
 *
 * Checks: a market that loads has budgets and supplies > 0, finite
 * utilities >= 0, every buyer wanting and every good wanted; its
 * equilibrium (markets of at most SOLVE_CELLS_MAX cells) has finite
 * positive prices, a finite allocation >= 0 and finite KKT residuals. */
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "econ/equilibrium.h"

enum { SOLVE_CELLS_MAX = 64 };

#define FUZZ_CHECK(condition)                                                                      \
    do {                                                                                           \
        if (!(condition)) abort();                                                                 \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void market_check(const kci_econ_market *market)
{
    int64_t n = market->buyer_count, m = market->good_count;
    for (int64_t i = 0; i < n; i++)
        FUZZ_CHECK(market->budgets[i] > 0 && isfinite(market->budgets[i]));
    for (int64_t j = 0; j < m; j++)
        FUZZ_CHECK(market->supplies[j] > 0 && isfinite(market->supplies[j]));
    for (int64_t i = 0; i < n; i++) {
        bool wants = false;
        for (int64_t j = 0; j < m; j++) {
            double u = market->utilities[i * m + j];
            FUZZ_CHECK(isfinite(u) && u >= 0);
            wants |= u > 0;
        }
        FUZZ_CHECK(wants);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    kci_econ_market market;
    kci_econ_error error = {{0}};
    if (kci_econ_market_parse((const char *)data, size, &market, &error) != KC_OK) return 0;
    market_check(&market);
    if (market.buyer_count * market.good_count <= SOLVE_CELLS_MAX) {
        kci_econ_equilibrium result;
        if (kci_econ_equilibrium_solve(&market, 1e-9, NULL, NULL, &result, &error) == KC_OK) {
            for (int64_t j = 0; j < market.good_count; j++)
                FUZZ_CHECK(isfinite(result.prices[j]) && result.prices[j] > 0);
            for (int64_t k = 0; k < market.buyer_count * market.good_count; k++)
                FUZZ_CHECK(isfinite(result.allocation[k]) && result.allocation[k] >= 0);
            FUZZ_CHECK(isfinite(result.kkt.max));
            kci_econ_equilibrium_free(&result);
        }
    }
    kci_econ_market_free(&market);
    return 0;
}
