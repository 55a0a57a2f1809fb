/* payment_check_test.c - the arbiter's reading of the ledger's answer for a
 * payer's "charged without service" report (src/arbiter/payment_check.c):
 * only a transfer that paid this request, or a hold claimed for it and
 * posted, is a charge; a pending, voided or expired hold, a payment of
 * another request, or one of none is not (the report is then refuted). */
#include <jansson.h>
#include <stdbool.h>

/* clang-format off */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
/* clang-format on */

#include "arbiter/payment_check.h"

#define REQUEST "0190a1b2-c3d4-7e5f-8a6b-7c8d9e0f1a2b"
#define OTHER "0190a1b2-c3d4-7e5f-8a6b-7c8d9e0f1a2c"

static bool charged(const char *json, const char *request)
{
    json_t *transfer = json_loads(json, 0, NULL);
    assert_non_null(transfer);
    bool result = kci_payment_charged(transfer, request);
    json_decref(transfer);
    return result;
}

static void test_charges(void **state)
{
    (void)state;
    assert_true(charged("{\"kind\":\"transfer\",\"paid_request\":\"" REQUEST "\"}", REQUEST));
    assert_true(charged("{\"kind\":\"hold\",\"paid_request\":\"" REQUEST
                        "\",\"hold\":{\"state\":\"posted\"}}",
                        REQUEST));
}

static void test_no_charges(void **state)
{
    (void)state;
    static const char *const states[] = {"pending", "voided", "expired"};
    for (size_t index = 0; index < sizeof states / sizeof states[0]; index++) {
        char json[256];
        snprintf(json, sizeof json,
                 "{\"kind\":\"hold\",\"paid_request\":\"" REQUEST "\",\"hold\":{\"state\":\"%s\"}}",
                 states[index]);
        assert_false(charged(json, REQUEST));
    }
    assert_false(charged("{\"kind\":\"transfer\",\"paid_request\":\"" OTHER "\"}", REQUEST));
    assert_false(charged("{\"kind\":\"transfer\"}", REQUEST));
    assert_false(charged("{\"kind\":\"hold\",\"hold\":{\"state\":\"posted\"}}", REQUEST));
    assert_false(charged("{\"kind\":\"issue\",\"paid_request\":\"" REQUEST "\"}", REQUEST));
    assert_false(charged("{}", REQUEST));
}

/* The queue's record of the request, from kc.reply.get's headers. */
static void test_served(void **state)
{
    (void)state;
    assert_int_equal(kci_payment_served("replied", NULL, "shop", "shop"), 1);
    assert_int_equal(kci_payment_served("replied", "", "shop", "shop"), 1);
    assert_int_equal(kci_payment_served("replied", NULL, NULL, "shop"), 1);
    assert_int_equal(kci_payment_served("replied", "500 broke", "shop", "shop"), 0);
    assert_int_equal(kci_payment_served("replied", NULL, "other", "shop"), 0);
    assert_int_equal(kci_payment_served("dead", "410 dead", NULL, "shop"), 0);
    assert_int_equal(kci_payment_served("pending", "425 not yet", NULL, "shop"), 0);
    assert_int_equal(kci_payment_served("unknown", "404 no request", NULL, "shop"), -1);
    assert_int_equal(kci_payment_served(NULL, NULL, NULL, "shop"), -1);
}

/* Confirmed only when charged and the record does not show the service. */
static void test_confirmed(void **state)
{
    (void)state;
    assert_true(kci_payment_report_confirmed(1, 0));
    assert_true(kci_payment_report_confirmed(1, -1));
    assert_false(kci_payment_report_confirmed(1, 1));
    assert_false(kci_payment_report_confirmed(0, 0));
    assert_false(kci_payment_report_confirmed(0, -1));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_charges),
        cmocka_unit_test(test_no_charges),
        cmocka_unit_test(test_served),
        cmocka_unit_test(test_confirmed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
