/* fusion_test.c - Brooks–Iyengar against the worked example (five
 * processes, f = 1, as in the algorithm's Wikipedia article after Brooks &
 * Iyengar 1996) computed by hand, against a brute force on random cases
 * (the fused interval from every subset of n - f intervals, the value from
 * a quadratic cover count), the guarantee (with at most f liars and n > 3f
 * the fused interval holds the truth), bad input, and the vote. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>
#include <math.h>

#include "arbiter/fusion.h"

enum {
    RANDOM_CASES = 3000,
    RANDOM_REPLICAS_MAX = 10, /* subsets: 2^10 */
};

static void test_worked_example(void **state)
{
    (void)state;
    const kci_interval intervals[] = {{2.7, 6.7}, {0, 3.2}, {1.5, 4.5}, {0.8, 2.8}, {1.4, 4.6}};
    kci_fusion_result result;
    assert_int_equal(kci_fusion_fuse(&result, intervals, 5, 1), KC_OK);
    assert_true(result.found);
    assert_true(result.bound_met);
    /* Regions with cover >= 4: [1.5,2.7] x4, [2.7,2.8] x5, [2.8,3.2] x4. */
    assert_int_equal(result.region_count, 3);
    assert_float_equal(result.fused.low, 1.5, 1e-12);
    assert_float_equal(result.fused.high, 3.2, 1e-12);
    double expected = (4 * 2.1 + 5 * 2.75 + 4 * 3.0) / 13; /* 2.6269..., "about 2.625" */
    assert_float_equal(result.value, expected, 1e-12);
    assert_int_equal(result.suspect_count, 0);
}

static void test_liar_is_suspect(void **state)
{
    (void)state;
    const kci_interval intervals[] = {{9, 9.5}, {1, 3}, {1.5, 3.5}, {2, 4}};
    kci_fusion_result result;
    assert_int_equal(kci_fusion_fuse(&result, intervals, 4, 1), KC_OK);
    assert_true(result.found);
    assert_true(result.suspect[0]);
    assert_int_equal(result.suspect_count, 1);
    assert_float_equal(result.fused.low, 2, 1e-12); /* all three honest: [2, 3] */
    assert_float_equal(result.fused.high, 3, 1e-12);
}

static void test_bound_not_met(void **state)
{
    (void)state;
    const kci_interval intervals[] = {{1, 2}, {1, 2}, {5, 6}};
    kci_fusion_result result;
    assert_int_equal(kci_fusion_fuse(&result, intervals, 3, 1), KC_OK);
    assert_false(result.bound_met); /* n = 3 is not > 3 */
    assert_true(result.found);
    /* Spread liars: no piece has n - f covers. */
    const kci_interval spread[] = {{1, 2}, {3, 4}, {5, 6}, {7, 8}};
    assert_int_equal(kci_fusion_fuse(&result, spread, 4, 1), KC_OK);
    assert_false(result.found);
    assert_int_equal(kci_fusion_faults_tolerated(4), 1);
    assert_int_equal(kci_fusion_faults_tolerated(3), 0);
    assert_int_equal(kci_fusion_faults_tolerated(10), 3);
}

static void test_points(void **state)
{
    (void)state;
    const kci_interval intervals[] = {{4, 4}, {4, 4}, {4, 4}, {7, 7}};
    kci_fusion_result result;
    assert_int_equal(kci_fusion_fuse(&result, intervals, 4, 1), KC_OK);
    assert_true(result.found);
    assert_float_equal(result.value, 4, 0);
    assert_true(result.suspect[3]);
    assert_int_equal(result.suspect_count, 1);
}

static void test_bad_input(void **state)
{
    (void)state;
    kci_fusion_result result;
    const kci_interval backwards[] = {{2, 1}};
    assert_int_equal(kci_fusion_fuse(&result, backwards, 1, 0), KC_ERR_INVALID_ARGUMENT);
    const kci_interval nan_interval[] = {{NAN, 1}, {0, 1}};
    assert_int_equal(kci_fusion_fuse(&result, nan_interval, 2, 0), KC_ERR_INVALID_ARGUMENT);
    const kci_interval one[] = {{0, 1}};
    assert_int_equal(kci_fusion_fuse(&result, one, 0, 0), KC_ERR_INVALID_ARGUMENT);
    assert_int_equal(kci_fusion_fuse(&result, one, 1, 1), KC_ERR_INVALID_ARGUMENT);
}

/* ---- brute force ---- */

static double random_unit(void)
{
    return (double)rand() / RAND_MAX;
}

/* The fused interval: over every subset of size >= n - f with a non-empty
 * intersection of positive width, the union of those intersections. */
static bool brute_interval(const kci_interval *intervals, uint32_t n, uint32_t f, kci_interval *out)
{
    bool found = false;
    for (uint32_t mask = 1; mask < (1u << n); mask++) {
        if ((uint32_t)__builtin_popcount(mask) < n - f) continue;
        double low = -INFINITY, high = INFINITY;
        for (uint32_t i = 0; i < n; i++) {
            if (!(mask & (1u << i))) continue;
            low = fmax(low, intervals[i].low);
            high = fmin(high, intervals[i].high);
        }
        if (!(high > low)) continue;
        if (!found || low < out->low) out->low = low;
        if (!found || high > out->high) out->high = high;
        found = true;
    }
    return found;
}

static int compare_double(const void *left, const void *right)
{
    double a = *(const double *)left, b = *(const double *)right;
    return a < b ? -1 : a > b;
}

/* The value: every piece between consecutive distinct ends, its cover
 * counted directly. */
static double brute_value(const kci_interval *intervals, uint32_t n, uint32_t f)
{
    double ends[2 * RANDOM_REPLICAS_MAX] = {0};
    for (uint32_t i = 0; i < n; i++)
        ends[2 * i] = intervals[i].low, ends[2 * i + 1] = intervals[i].high;
    qsort(ends, 2 * n, sizeof ends[0], compare_double);
    double sum = 0, weight = 0;
    for (uint32_t k = 0; k + 1 < 2 * n; k++) {
        if (!(ends[k + 1] > ends[k])) continue;
        uint32_t cover = 0;
        for (uint32_t i = 0; i < n; i++)
            cover += intervals[i].low <= ends[k] && intervals[i].high >= ends[k + 1];
        if (cover < n - f) continue;
        sum += cover * (ends[k] + ends[k + 1]) / 2;
        weight += cover;
    }
    return sum / weight;
}

static void test_random_against_brute_force(void **state)
{
    (void)state;
    srand(20261121);
    for (int c = 0; c < RANDOM_CASES; c++) {
        uint32_t n = 1 + (uint32_t)(rand() % RANDOM_REPLICAS_MAX);
        uint32_t f = (uint32_t)(rand() % n);
        kci_interval intervals[RANDOM_REPLICAS_MAX];
        for (uint32_t i = 0; i < n; i++) {
            double center = random_unit() * 10, width = 0.1 + random_unit() * 5;
            intervals[i] = (kci_interval){center - width / 2, center + width / 2};
        }
        kci_fusion_result result;
        assert_int_equal(kci_fusion_fuse(&result, intervals, n, f), KC_OK);
        kci_interval expected;
        bool found = brute_interval(intervals, n, f, &expected);
        assert_int_equal(result.found, found);
        if (!found) continue;
        assert_float_equal(result.fused.low, expected.low, 1e-9);
        assert_float_equal(result.fused.high, expected.high, 1e-9);
        assert_float_equal(result.value, brute_value(intervals, n, f), 1e-9);
        assert_true(result.value >= result.fused.low && result.value <= result.fused.high);
    }
}

/* With n > 3f, at most f liars anywhere, correct intervals holding the
 * truth: the fused interval holds it too, and no correct replica is a
 * suspect. */
static void test_guarantee(void **state)
{
    (void)state;
    srand(7);
    for (int c = 0; c < RANDOM_CASES; c++) {
        uint32_t n = 4 + (uint32_t)(rand() % 60);
        uint32_t f = kci_fusion_faults_tolerated(n);
        uint32_t liars = (uint32_t)rand() % (f + 1);
        double truth = random_unit() * 100;
        kci_interval intervals[64];
        for (uint32_t i = 0; i < n; i++) {
            double width = 0.5 + random_unit() * 2, offset = (random_unit() - 0.5) * width;
            double center = i < liars ? random_unit() * 1000 - 500 : truth + offset;
            intervals[i] = (kci_interval){center - width / 2, center + width / 2};
        }
        kci_fusion_result result;
        assert_int_equal(kci_fusion_fuse(&result, intervals, n, f), KC_OK);
        assert_true(result.found);
        assert_true(result.fused.low <= truth && truth <= result.fused.high);
        for (uint32_t i = liars; i < n; i++)
            assert_false(result.suspect[i]);
    }
}

static void test_vote(void **state)
{
    (void)state;
    const uint64_t answers[] = {7, 7, 9, 7};
    kci_vote_result result;
    assert_int_equal(kci_fusion_vote(&result, answers, 4, 1), KC_OK);
    assert_true(result.found && result.bound_met);
    assert_int_equal(result.winner, 7);
    assert_true(result.suspect[2]);
    assert_int_equal(result.suspect_count, 1);
    const uint64_t split[] = {1, 1, 2, 2};
    assert_int_equal(kci_fusion_vote(&result, split, 4, 1), KC_OK);
    assert_false(result.found);
    assert_int_equal(kci_fusion_vote(&result, split, 0, 0), KC_ERR_INVALID_ARGUMENT);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_worked_example), cmocka_unit_test(test_liar_is_suspect),
        cmocka_unit_test(test_bound_not_met),  cmocka_unit_test(test_points),
        cmocka_unit_test(test_bad_input),      cmocka_unit_test(test_random_against_brute_force),
        cmocka_unit_test(test_guarantee),      cmocka_unit_test(test_vote),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
