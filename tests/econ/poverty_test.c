/* poverty_test.c - the poverty LP on a case solved by hand.
 *
 * a->b 10 (rich at W = 5), a->c 1 and c->b 1 (poor). Conservation forces
 * a->c = c->b = t and a->b = 11 - t; parity bounds: t in [1, 5],
 * a->b in [5, 10]. Objective (11 - t) - 2t = 11 - 3t.
 *  - epsilon 0.5: 11 - t >= t, t = 5 is allowed: a->b 6, objective -4.
 *  - epsilon 1:   11 - t >= 2t: t = 11/3, objective 0.
 *  - epsilon 10:  11 - t >= 20t: t <= 11/21 < 1: infeasible. */
/* clang-format off */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
/* clang-format on */
#include <math.h>
#include <string.h>

#include "econ/poverty.h"
#include "graph_text.h"

static const char POVERTY_GRAPH[] = "from,to,amount\na,b,10\na,c,1\nc,b,1\n";

static void test_poverty_lp(void **state)
{
    (void)state;
    kci_econ_graph graph;
    econ_test_graph_load(POVERTY_GRAPH, &graph);
    kci_econ_poverty result;
    kci_econ_error error = {{0}};
    assert_int_equal(kci_econ_poverty_solve(&graph, 5, 0.5, &result, &error), KC_OK);
    assert_true(fabs(result.objective - -4) < 1e-9);
    assert_true(fabs(result.rich_after - 6) < 1e-9);
    assert_true(fabs(result.poor_after - 10) < 1e-9);
    assert_true(result.rich_before == 10 && result.poor_before == 2);
    assert_int_equal(result.changed_count, 3);
    kci_econ_poverty_free(&result);
    assert_int_equal(kci_econ_poverty_solve(&graph, 5, 1, &result, &error), KC_OK);
    assert_true(fabs(result.objective) < 1e-9);
    assert_true(fabs(result.rich_after - 22.0 / 3) < 1e-9);
    kci_econ_poverty_free(&result);
    assert_int_equal(kci_econ_poverty_solve(&graph, 5, 10, &result, &error),
                     KC_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(error.text, "infeasible"));
    kci_econ_graph_free(&graph);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_poverty_lp),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
