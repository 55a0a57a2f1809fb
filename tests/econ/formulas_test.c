/* formulas_test.c - strata, coloured money and value() on cases worked by
 * hand (the numbers are in the comments). */
/* clang-format off */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
/* clang-format on */
#include <math.h>
#include <string.h>

#include "econ/colored.h"
#include "econ/strata.h"
#include "econ/value.h"
#include "graph_text.h"

static void test_strata(void **state)
{
    (void)state;
    kci_econ_graph graph;
    econ_test_graph_load(ECON_TEST_GRAPH, &graph);
    kci_econ_strata strata;
    kci_econ_error error = {{0}};
    assert_int_equal(kci_econ_strata_run(&graph, 5, &strata, &error), KC_OK);
    /* rich edges (>= 5): 10, 5, 15, 9 = 39; poor: 4, 3, 1 = 8 */
    assert_int_equal(strata.rich_edge_count, 4);
    assert_true(strata.rich_edge_total == 39);
    assert_int_equal(strata.poor_edge_count, 3);
    assert_true(strata.poor_edge_total == 8);
    /* net = in - out: s 3-15=-12, a 10-19=-9, b 20-9=11, t 13-3=10, x -1, y 1 */
    assert_int_equal(strata.rich_vertex_count, 2); /* b, t */
    assert_true(strata.rich_vertex_total == 21);
    assert_int_equal(strata.poor_vertex_count, 4);
    assert_true(strata.poor_vertex_total == -21);
    assert_true(strata.net[kci_econ_graph_find(&graph, "s")] == -12);
    kci_econ_strata_free(&strata);
    kci_econ_graph_free(&graph);
}

static void test_colored(void **state)
{
    (void)state;
    kci_econ_colored colored = {0};
    /* inflow(s) = 3, inflow(b) = 20, inflow(t) = 13, rate 0.1:
     * storage = |3 - 20| = 17, direct = |17 x 0.1 - 13| = 11.3 */
    kci_econ_colored_direct(3, 20, 13, 0.1, &colored);
    assert_true(colored.storage == 17);
    assert_true(fabs(colored.direct - 11.3) < 1e-12);
    /* indirect: |100 x 0.2 - 13| = 7 */
    kci_econ_colored_indirect(100, 13, 0.2, &colored);
    assert_true(fabs(colored.indirect - 7) < 1e-12);
    /* the absolute value: |10 x 0.5 - 13| = 8 */
    kci_econ_colored_indirect(10, 13, 0.5, &colored);
    assert_true(colored.indirect == 8);
    kci_econ_graph graph;
    econ_test_graph_load(ECON_TEST_GRAPH, &graph);
    assert_true(kci_econ_graph_total(&graph) == 47);
    kci_econ_graph_free(&graph);
}

static kc_err bom_parse(const char *text, kci_econ_bom *bom, kci_econ_error *error)
{
    json_error_t json_error;
    json_t *document = json_loads(text, 0, &json_error);
    assert_non_null(document);
    kc_err err = kci_econ_bom_from_json(document, bom, error);
    json_decref(document);
    return err;
}

static void test_value(void **state)
{
    (void)state;
    const char *text =
        "{\"items\":{\"car\":{\"cost\":500,\"ingredients\":{\"wheel\":4,\"engine\":1}},"
        "\"wheel\":{\"cost\":40},"
        "\"engine\":{\"cost\":900,\"ingredients\":{\"bolt\":12}},"
        "\"bolt\":{\"cost\":0.5},"
        "\"kit\":{\"cost\":1,\"ingredients\":{\"bolt\":2,\"engine\":1}}}}";
    kci_econ_bom bom;
    kci_econ_error error = {{0}};
    assert_int_equal(bom_parse(text, &bom, &error), KC_OK);
    kci_econ_value value;
    /* engine = 900 + 12 x 0.5 = 906; car = 500 + 4 x 40 + 906 = 1566 */
    assert_int_equal(
        kci_econ_value_compute(&bom, kci_econ_bom_find(&bom, "car"), 100, &value, &error), KC_OK);
    assert_true(value.value == 1566);
    assert_int_equal(value.height, 2);
    assert_int_equal(value.items_evaluated, 4);
    kci_econ_value_free(&value);
    /* kit shares bolt and engine (a DAG, not a tree): 1 + 2 x 0.5 + 906 = 908 */
    assert_int_equal(
        kci_econ_value_compute(&bom, kci_econ_bom_find(&bom, "kit"), 100, &value, &error), KC_OK);
    assert_true(value.value == 908);
    kci_econ_value_free(&value);
    /* depth bound: car is 2 levels deep */
    assert_int_equal(
        kci_econ_value_compute(&bom, kci_econ_bom_find(&bom, "car"), 1, &value, &error),
        KC_ERR_LIMIT);
    assert_non_null(strstr(error.text, "2 levels deep"));
    kci_econ_bom_free(&bom);
}

static void test_value_cycle_is_named(void **state)
{
    (void)state;
    const char *text = "{\"items\":{\"a\":{\"cost\":1,\"ingredients\":{\"b\":1}},"
                       "\"b\":{\"cost\":1,\"ingredients\":{\"c\":2}},"
                       "\"c\":{\"cost\":1,\"ingredients\":{\"a\":1}},"
                       "\"top\":{\"cost\":1,\"ingredients\":{\"b\":1}}}}";
    kci_econ_bom bom;
    kci_econ_error error = {{0}};
    assert_int_equal(bom_parse(text, &bom, &error), KC_OK);
    kci_econ_value value;
    assert_int_equal(
        kci_econ_value_compute(&bom, kci_econ_bom_find(&bom, "top"), 100, &value, &error),
        KC_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(error.text, "cycle: b -> c -> a -> b"));
    kci_econ_bom_free(&bom);
    /* unknown ingredient, negative cost */
    assert_int_equal(bom_parse("{\"items\":{\"a\":{\"ingredients\":{\"zz\":1}}}}", &bom, &error),
                     KC_ERR_NOT_FOUND);
    assert_non_null(strstr(error.text, "unknown item 'zz'"));
    assert_int_equal(bom_parse("{\"items\":{\"a\":{\"cost\":-1}}}", &bom, &error), KC_ERR_PARSE);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_strata),
        cmocka_unit_test(test_colored),
        cmocka_unit_test(test_value),
        cmocka_unit_test(test_value_cycle_is_named),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
