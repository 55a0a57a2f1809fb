/* ranking_test.c - EigenTrust with one-step distrust on small graphs with
 * answers computed by hand, and a colluding clique that praises itself and
 * accuses honest nodes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "arbiter/ranking.h"

enum {
    GRAPH_NODES_MAX = 16,
};

static double positive[GRAPH_NODES_MAX * GRAPH_NODES_MAX];
static double negative[GRAPH_NODES_MAX * GRAPH_NODES_MAX];

static void clear(void)
{
    memset(positive, 0, sizeof positive);
    memset(negative, 0, sizeof negative);
}

#define AT(matrix, n, i, j) (matrix)[(i) * (n) + (j)]

/* A cycle 0 -> 1 -> 2 -> 0, node 0 pre-trusted, alpha 1/2:
 * t0 = (1-a) t2 + a, t1 = (1-a) t0, t2 = (1-a) t1, so t0 = a / (1 - (1-a)^3). */
static void test_cycle(void **state)
{
    (void)state;
    clear();
    AT(positive, 3, 0, 1) = 1;
    AT(positive, 3, 1, 2) = 1;
    AT(positive, 3, 2, 0) = 1;
    bool pretrusted[3] = {true, false, false};
    kci_ranking_params params;
    kci_ranking_params_default(&params);
    params.alpha = 0.5;
    double trust[3], merit[3];
    assert_int_equal(kci_ranking_compute(trust, merit, positive, negative, pretrusted, 3, &params),
                     KC_OK);
    double t0 = 0.5 / (1 - 0.125);
    assert_float_equal(trust[0], t0, 1e-9);
    assert_float_equal(trust[1], 0.5 * t0, 1e-9);
    assert_float_equal(trust[2], 0.25 * t0, 1e-9);
    assert_float_equal(merit[0], 1, 1e-9);
    assert_float_equal(merit[2], 0.25, 1e-9);
}

/* Distrust: the pre-trusted node 0 (t0 as above) accuses node 1 alone:
 * merit_1 = max(0, t1 - t0) = 0. */
static void test_distrust(void **state)
{
    (void)state;
    clear();
    AT(positive, 3, 0, 1) = 1;
    AT(positive, 3, 1, 2) = 1;
    AT(positive, 3, 2, 0) = 1;
    AT(negative, 3, 0, 1) = 1;
    bool pretrusted[3] = {true, false, false};
    kci_ranking_params params;
    kci_ranking_params_default(&params);
    params.alpha = 0.5;
    double trust[3], merit[3];
    assert_int_equal(kci_ranking_compute(trust, merit, positive, negative, pretrusted, 3, &params),
                     KC_OK);
    assert_float_equal(merit[1], 0, 0);
    assert_float_equal(merit[0], 1, 1e-9);
}

/* Honest nodes 0..5 (0 pre-trusted) praise each other; a clique 6..9
 * praises itself a hundred times over and accuses every honest node. The
 * clique gets no trust and every honest node outranks every colluder. */
static void test_collusion(void **state)
{
    (void)state;
    clear();
    const uint32_t n = 10, honest = 6;
    for (uint32_t i = 0; i < n; i++)
        for (uint32_t j = 0; j < n; j++) {
            if (i == j) continue;
            if (i < honest && j < honest) AT(positive, n, i, j) = 1;
            if (i >= honest && j >= honest) AT(positive, n, i, j) = 100;
            if (i >= honest && j < honest) AT(negative, n, i, j) = 100;
        }
    bool pretrusted[10] = {true};
    kci_ranking_params params;
    kci_ranking_params_default(&params);
    double trust[10], merit[10];
    assert_int_equal(kci_ranking_compute(trust, merit, positive, negative, pretrusted, n, &params),
                     KC_OK);
    double sum = 0;
    for (uint32_t i = 0; i < n; i++)
        sum += trust[i];
    assert_float_equal(sum, 1, 1e-9);
    for (uint32_t i = 0; i < honest; i++)
        for (uint32_t j = honest; j < n; j++) {
            assert_true(merit[i] > merit[j]);
            assert_true(merit[i] > 0.5);
        }
}

static void test_bad_input(void **state)
{
    (void)state;
    clear();
    kci_ranking_params params;
    kci_ranking_params_default(&params);
    double trust[2], merit[2];
    AT(positive, 2, 0, 1) = -1;
    assert_int_equal(kci_ranking_compute(trust, merit, positive, negative, NULL, 2, &params),
                     KC_ERR_INVALID_ARGUMENT);
    assert_int_equal(kci_ranking_compute(trust, merit, positive, negative, NULL, 0, &params),
                     KC_ERR_INVALID_ARGUMENT);
    /* no opinions at all: uniform */
    clear();
    assert_int_equal(kci_ranking_compute(trust, merit, positive, negative, NULL, 2, &params),
                     KC_OK);
    assert_float_equal(trust[0], 0.5, 1e-12);
    assert_float_equal(merit[1], 1, 1e-12);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cycle),
        cmocka_unit_test(test_distrust),
        cmocka_unit_test(test_collusion),
        cmocka_unit_test(test_bad_input),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
