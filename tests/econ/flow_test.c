/* flow_test.c - max-flow, min cut, vertex cut, SCCs, cycles and cores on
 * small graphs worked by hand. */
/* clang-format off */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
/* clang-format on */
#include <string.h>

#include "econ/cores.h"
#include "econ/flow.h"
#include "econ/scc.h"
#include "graph_text.h"

static int64_t vertex(const kci_econ_graph *graph, const char *name)
{
    int64_t found = kci_econ_graph_find(graph, name);
    assert_true(found >= 0);
    return found;
}

static void test_maxflow_cut_and_crucial(void **state)
{
    (void)state;
    kci_econ_graph graph;
    econ_test_graph_load(ECON_TEST_GRAPH, &graph);
    kci_econ_maxflow flow;
    kci_econ_error error = {{0}};
    assert_int_equal(
        kci_econ_maxflow_run(&graph, vertex(&graph, "s"), vertex(&graph, "t"), true, &flow, &error),
        KC_OK);
    /* into t: a->t 4 + b->t 9 = 13, and s can supply 15: the flow is 13 */
    assert_true(flow.value == 13);
    assert_true(flow.cut_weight == 13);
    assert_int_equal(igraph_vector_int_size(&flow.cut_edges), 2);
    assert_false(flow.direct_payment);
    assert_int_equal(igraph_vector_int_size(&flow.crucial), 2); /* {a, b} */
    assert_true(igraph_vector_int_contains(&flow.crucial, vertex(&graph, "a")));
    assert_true(igraph_vector_int_contains(&flow.crucial, vertex(&graph, "b")));
    kci_econ_maxflow_free(&flow);
    /* s -> b: a single crucial account? no: s pays b directly */
    assert_int_equal(
        kci_econ_maxflow_run(&graph, vertex(&graph, "s"), vertex(&graph, "b"), true, &flow, &error),
        KC_OK);
    assert_true(flow.value == 15);
    assert_true(flow.direct_payment);
    kci_econ_maxflow_free(&flow);
    /* t -> b goes only through s: s is crucial */
    assert_int_equal(
        kci_econ_maxflow_run(&graph, vertex(&graph, "t"), vertex(&graph, "a"), true, &flow, &error),
        KC_OK);
    assert_true(flow.value == 3);
    assert_int_equal(igraph_vector_int_size(&flow.crucial), 1);
    assert_int_equal(VECTOR(flow.crucial)[0], vertex(&graph, "s"));
    kci_econ_maxflow_free(&flow);
    /* disconnected, and the same account */
    assert_int_equal(
        kci_econ_maxflow_run(&graph, vertex(&graph, "s"), vertex(&graph, "y"), true, &flow, &error),
        KC_ERR_NOT_FOUND);
    assert_non_null(strstr(error.text, "disconnected"));
    kci_econ_maxflow_free(&flow);
    assert_int_equal(
        kci_econ_maxflow_run(&graph, vertex(&graph, "s"), vertex(&graph, "s"), true, &flow, &error),
        KC_ERR_INVALID_ARGUMENT);
    kci_econ_maxflow_free(&flow);
    kci_econ_graph_free(&graph);
}

static void test_scc_and_cycles(void **state)
{
    (void)state;
    kci_econ_graph graph;
    econ_test_graph_load(ECON_TEST_GRAPH, &graph);
    kci_econ_scc scc;
    kci_econ_error error = {{0}};
    assert_int_equal(kci_econ_scc_run(&graph, true, &scc, &error), KC_OK);
    /* {s,a,b,t} and the singletons {x}, {y} */
    assert_int_equal(scc.component_count, 3);
    assert_int_equal(scc.nontrivial_count, 1);
    assert_int_equal(igraph_vector_int_list_size(&scc.cycles), 1);
    const igraph_vector_int_t *cycle = igraph_vector_int_list_get_ptr(&scc.cycles, 0);
    /* the shortest cycle through s: s -> a -> t -> s or s -> b -> t -> s */
    assert_int_equal(igraph_vector_int_size(cycle), 3);
    assert_int_equal(VECTOR(*cycle)[0], vertex(&graph, "s"));
    igraph_integer_t length = igraph_vector_int_size(cycle);
    for (igraph_integer_t at = 0; at < length; at++) {
        igraph_integer_t edge = -1;
        igraph_get_eid(&graph.graph, &edge, VECTOR(*cycle)[at], VECTOR(*cycle)[(at + 1) % length],
                       IGRAPH_DIRECTED, false);
        assert_true(edge >= 0); /* every step is a payment */
    }
    kci_econ_scc_free(&scc);
    kci_econ_graph_free(&graph);
}

static void test_cores(void **state)
{
    (void)state;
    kci_econ_graph graph;
    econ_test_graph_load(ECON_TEST_GRAPH, &graph);
    kci_econ_cores cores;
    kci_econ_error error = {{0}};
    assert_int_equal(kci_econ_cores_run(&graph, &cores, &error), KC_OK);
    /* s,a,b,t each have in+out degree 3 within the four: a 3-core */
    assert_int_equal(cores.k_max, 3);
    assert_int_equal(VECTOR(cores.coreness)[vertex(&graph, "a")], 3);
    assert_int_equal(VECTOR(cores.coreness)[vertex(&graph, "x")], 1);
    assert_int_equal(cores.count_by_k[3], 4);
    assert_int_equal(cores.count_by_k[1], 2);
    kci_econ_cores_free(&cores);
    kci_econ_graph_free(&graph);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_maxflow_cut_and_crucial),
        cmocka_unit_test(test_scc_and_cycles),
        cmocka_unit_test(test_cores),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
