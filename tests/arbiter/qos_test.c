/* qos_test.c - the QoS formula (src/arbiter/qos.h) on hand-computed cases:
 * a new node, all good, some bad, slow means, decay by the half-life. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "arbiter/qos.h"

static kci_qos_params params(void)
{
    kci_qos_params p;
    kci_qos_params_default(&p);
    p.half_life_ms = 1000;
    p.target_ms = 50;
    p.slow_ms = 250;
    p.prior_requests = 2;
    return p;
}

static void add(kci_qos *qos, const kci_qos_params *p, int count, double latency_ms, bool failed,
                int64_t now_ms)
{
    kci_qos_sample sample = {.latency_ms = latency_ms, .failed = failed};
    for (int i = 0; i < count; i++)
        kci_qos_add(qos, p, &sample, now_ms);
}

static void test_new_node_scores_one(void **state)
{
    (void)state;
    kci_qos_params p = params();
    kci_qos qos = {0};
    assert_float_equal(kci_qos_score(&qos, &p, 1000), 1.0, 0);
}

static void test_formula(void **state)
{
    (void)state;
    kci_qos_params p = params();
    kci_qos qos = {0};
    add(&qos, &p, 8, 10, false, 5000);
    add(&qos, &p, 2, 10, true, 5000);
    /* success = 1 - 2 / (10 + 2); latency 10 ms <= target: factor 1 */
    assert_float_equal(kci_qos_score(&qos, &p, 5000), 1 - 2.0 / 12, 1e-12);
    kci_qos slow = {0};
    add(&slow, &p, 10, 300, false, 5000); /* all above slow_ms: bad */
    /* success = 1 - 10/12; mean 300 = 6 x target: factor 1 / (1 + 5) */
    assert_float_equal(kci_qos_score(&slow, &p, 5000), (1 - 10.0 / 12) / 6, 1e-12);
    kci_qos moderate = {0};
    add(&moderate, &p, 10, 100, false, 5000); /* 2 x target, not bad */
    assert_float_equal(kci_qos_score(&moderate, &p, 5000), 0.5, 1e-12);
    assert_float_equal(kci_qos_latency_ms(&moderate), 100, 1e-12);
}

/* What a low score is blamed on, and which error replies count at all. */
static void test_failing_or_slow(void **state)
{
    (void)state;
    kci_qos_params p = params();
    kci_qos failing = {0};
    add(&failing, &p, 10, 1, true, 5000); /* fast errors */
    assert_true(kci_qos_mostly_failing(&failing));
    kci_qos slow = {0};
    add(&slow, &p, 10, 300, false, 5000); /* slow answers */
    assert_false(kci_qos_mostly_failing(&slow));
    kci_qos fine = {0};
    add(&fine, &p, 10, 1, false, 5000);
    assert_false(kci_qos_mostly_failing(&fine));
    assert_true(kci_qos_error_is_client_caused(400));
    assert_true(kci_qos_error_is_client_caused(402));
    assert_true(kci_qos_error_is_client_caused(499));
    assert_false(kci_qos_error_is_client_caused(500));
    assert_false(kci_qos_error_is_client_caused(7)); /* a command's exit status */
    assert_false(kci_qos_error_is_client_caused(0));
    /* a complaint of an error reply holds only for the service's own failures */
    assert_true(kci_qos_error_is_service_fault(500));
    assert_true(kci_qos_error_is_service_fault(7));
    assert_false(kci_qos_error_is_service_fault(400));
    assert_false(kci_qos_error_is_service_fault(402));
    assert_false(kci_qos_error_is_service_fault(0));
}

static void test_decay(void **state)
{
    (void)state;
    kci_qos_params p = params();
    kci_qos qos = {0};
    add(&qos, &p, 10, 10, true, 1000);
    /* one half-life later: 5 bad out of 5, then 5 good: 5 / (10 + 2) */
    add(&qos, &p, 5, 10, false, 2000);
    assert_float_equal(qos.requests, 10, 1e-9);
    assert_float_equal(kci_qos_score(&qos, &p, 2000), 1 - 5.0 / 12, 1e-9);
    /* much later, the past is forgotten: close to 1 */
    assert_true(kci_qos_score(&qos, &p, 2000 + 30 * 1000) > 0.999);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_new_node_scores_one),
        cmocka_unit_test(test_formula),
        cmocka_unit_test(test_decay),
        cmocka_unit_test(test_failing_or_slow),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
