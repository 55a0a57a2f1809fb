/* market_test.c - the market file, refused markets, the equilibrium on
 * markets solved by hand, KKT residuals, and tatonnement. */
/* clang-format off */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
/* clang-format on */
#include <math.h>
#include <string.h>

#include "econ/dynamics.h"
#include "econ/equilibrium.h"

static void parse_ok(const char *text, kci_econ_market *market)
{
    kci_econ_error error = {{0}};
    kc_err err = kci_econ_market_parse(text, strlen(text), market, &error);
    if (err != KC_OK) fail_msg("%s", error.text);
}

static void solve(const kci_econ_market *market, kci_econ_equilibrium *result)
{
    kci_econ_error error = {{0}};
    assert_int_equal(kci_econ_equilibrium_solve(market, 1e-9, NULL, NULL, result, &error), KC_OK);
    assert_true(result->kkt.max <= 1e-9);
}

static void test_symmetric_market(void **state)
{
    (void)state;
    /* Each buyer prefers a different good 2:1, equal budgets: p = (1, 1),
     * each buyer takes its favourite. */
    kci_econ_market market;
    parse_ok("{\"goods\":[{\"name\":\"g1\"},{\"name\":\"g2\"}],"
             "\"buyers\":[{\"name\":\"b1\",\"budget\":1,\"utilities\":{\"g1\":2,\"g2\":1}},"
             "{\"name\":\"b2\",\"budget\":1,\"utilities\":[1,2]}]}",
             &market);
    kci_econ_equilibrium result;
    solve(&market, &result);
    assert_true(fabs(result.prices[0] - 1) < 1e-12 && fabs(result.prices[1] - 1) < 1e-12);
    assert_true(fabs(result.allocation[0] - 1) < 1e-12 && fabs(result.allocation[3] - 1) < 1e-12);
    assert_true(fabs(result.allocation[1]) < 1e-12 && fabs(result.allocation[2]) < 1e-12);
    /* objective: log 2 + log 2 */
    assert_true(fabs(result.objective - 2 * log(2)) < 1e-12);
    kci_econ_equilibrium_free(&result);
    kci_econ_market_free(&market);
}

static void test_asymmetric_market(void **state)
{
    (void)state;
    /* b1 (budget 3) likes both goods equally, b2 (budget 1) only g1.
     * p = (2, 2): b2 buys 1/2 of g1; b1 spends 1 on the other half of g1
     * and 2 on g2. Check: each good sells 1, each budget is spent, and b1's
     * bang per buck is 1/2 on both. */
    kci_econ_market market;
    parse_ok("{\"goods\":[{\"name\":\"g1\"},{\"name\":\"g2\"}],"
             "\"buyers\":[{\"name\":\"b1\",\"budget\":3,\"utilities\":[1,1]},"
             "{\"name\":\"b2\",\"budget\":1,\"utilities\":[1,0]}]}",
             &market);
    kci_econ_equilibrium result;
    solve(&market, &result);
    assert_true(fabs(result.prices[0] - 2) < 1e-9 && fabs(result.prices[1] - 2) < 1e-9);
    assert_true(fabs(result.allocation[2 + 0] - 0.5) < 1e-9); /* b2, g1 */
    assert_true(fabs(result.allocation[1] - 1) < 1e-9);       /* b1, g2 */
    kci_econ_equilibrium_free(&result);
    kci_econ_market_free(&market);
}

static void test_supplies_scale_prices(void **state)
{
    (void)state;
    /* One buyer, budget 10, two goods of supply 2 and 5 that it values
     * 3 and 1 per unit: at equilibrium both sell out and it spends 10, and
     * bang per buck is equal: 3/p1 = 1/p2, 2 p1 + 5 p2 = 10 -> p2 = 10/11,
     * p1 = 30/11. */
    kci_econ_market market;
    parse_ok("{\"goods\":[{\"name\":\"a\",\"supply\":2},{\"name\":\"b\",\"supply\":5}],"
             "\"buyers\":[{\"name\":\"x\",\"budget\":10,\"utilities\":[3,1]}]}",
             &market);
    kci_econ_equilibrium result;
    solve(&market, &result);
    assert_true(fabs(result.prices[0] - 30.0 / 11) < 1e-9);
    assert_true(fabs(result.prices[1] - 10.0 / 11) < 1e-9);
    kci_econ_equilibrium_free(&result);
    kci_econ_market_free(&market);
}

static void test_kkt_residuals_measure_violations(void **state)
{
    (void)state;
    kci_econ_market market;
    parse_ok("{\"goods\":[{\"name\":\"g1\"},{\"name\":\"g2\"}],"
             "\"buyers\":[{\"name\":\"b1\",\"budget\":1,\"utilities\":[2,1]},"
             "{\"name\":\"b2\",\"budget\":1,\"utilities\":[1,2]}]}",
             &market);
    kci_econ_kkt kkt;
    double prices[2] = {1, 1};
    double right[4] = {1, 0, 0, 1};
    kci_econ_kkt_measure(&market, prices, right, &kkt);
    assert_true(kkt.max == 0);
    /* b1 buys the wrong good: half its money on a good of half the bang */
    double wrong[4] = {0.5, 0.5, 0.5, 0.5};
    kci_econ_kkt_measure(&market, prices, wrong, &kkt);
    assert_true(fabs(kkt.bang - 0.25) < 1e-12); /* 0.5 x (1 - 1/2) / 1 */
    assert_true(kkt.supply == 0 && kkt.budget == 0);
    double short_of_supply[4] = {0.5, 0, 0, 1};
    kci_econ_kkt_measure(&market, prices, short_of_supply, &kkt);
    assert_true(fabs(kkt.supply - 0.5) < 1e-12 && fabs(kkt.budget - 0.5) < 1e-12);
    kci_econ_market_free(&market);
}

typedef struct bad_market {
    const char *text;
    const char *message;
} bad_market;

static void test_refused_markets(void **state)
{
    (void)state;
    const bad_market bad[] = {
        {"{\"goods\":[{\"name\":\"g\"},{\"name\":\"nobody\"}],\"buyers\":[{\"name\":\"b\","
         "\"budget\":1,\"utilities\":{\"g\":1}}]}",
         "good 'nobody' is wanted by nobody"},
        {"{\"goods\":[{\"name\":\"g\"}],\"buyers\":[{\"name\":\"b\",\"budget\":0,"
         "\"utilities\":[1]}]}",
         "buyer 'b' has no budget"},
        {"{\"goods\":[{\"name\":\"g\"}],\"buyers\":[{\"name\":\"b\",\"budget\":1,"
         "\"utilities\":[1]},{\"name\":\"c\",\"budget\":1,\"utilities\":[0]}]}",
         "buyer 'c' wants no good"},
        {"{\"goods\":[{\"name\":\"g\"}],\"buyers\":[{\"name\":\"b\",\"budget\":1,"
         "\"utilities\":{\"h\":1}}]}",
         "unknown good 'h'"},
        {"{\"goods\":[{\"name\":\"g\",\"supply\":-1}],\"buyers\":[]}", "non-empty"},
        {"{\"goods\":[{\"name\":\"g\",\"supply\":-1}],\"buyers\":[{\"budget\":1,"
         "\"utilities\":[1]}]}",
         "supply must be a number > 0"},
        {"{\"goods\":[{\"name\":\"g\"}],\"buyers\":[{\"budget\":1,\"utilities\":[-1]}]}",
         "must be a number >= 0"},
        {"{\"goods\":[{\"name\":\"g\"},{\"name\":\"g\"}],\"buyers\":[]}", "non-empty"},
        {"{\"goods\":[{\"name\":\"g\"},{\"name\":\"g\"}],\"buyers\":[{\"budget\":1,"
         "\"utilities\":[1,1]}]}",
         "listed twice"},
        {"{\"goods\":\n[{\"name\":\"g\"},,]}", "line 2"},
    };
    for (size_t index = 0; index < sizeof bad / sizeof bad[0]; index++) {
        kci_econ_market market;
        kci_econ_error error = {{0}};
        assert_int_not_equal(
            kci_econ_market_parse(bad[index].text, strlen(bad[index].text), &market, &error),
            KC_OK);
        if (strstr(error.text, bad[index].message) == NULL)
            fail_msg("case %zu: '%s' lacks '%s'", index, error.text, bad[index].message);
    }
}

static void test_tatonnement_moves_toward_equilibrium(void **state)
{
    (void)state;
    kci_econ_market market;
    parse_ok("{\"goods\":[{\"name\":\"g1\",\"price\":3},{\"name\":\"g2\",\"price\":0.2}],"
             "\"buyers\":[{\"name\":\"b1\",\"budget\":1,\"utilities\":[2,1]},"
             "{\"name\":\"b2\",\"budget\":1,\"utilities\":[1,2]}]}",
             &market);
    double equilibrium[2] = {1, 1};
    double prices[2] = {market.prices_initial[0], market.prices_initial[1]};
    kci_econ_dynamics_step steps[201];
    assert_int_equal(kci_econ_dynamics_run(&market, 0.2, 200, prices, equilibrium, steps), KC_OK);
    /* at (3, 0.2) both buyers want only g2: demand g2 = 10, g1 = 0 */
    assert_true(fabs(steps[0].excess - 9) < 1e-12);
    assert_true(fabs(steps[0].distance - 2) < 1e-12);
    assert_true(steps[200].distance < 0.1);
    kci_econ_market_free(&market);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_symmetric_market),
        cmocka_unit_test(test_asymmetric_market),
        cmocka_unit_test(test_supplies_scale_prices),
        cmocka_unit_test(test_kkt_residuals_measure_violations),
        cmocka_unit_test(test_refused_markets),
        cmocka_unit_test(test_tatonnement_moves_toward_equilibrium),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
