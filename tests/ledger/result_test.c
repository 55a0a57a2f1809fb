/* result_test.c - the ledger's refusals (result.h): every result has the
 * wire code it had as an integer before the enum (the codes are part of
 * the wire format), a message of its own, and a refusal carries both. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

/* clang-format off */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
/* clang-format on */

#include "ledger/result.h"

enum {
    RESULT_VALUES_SCANNED = 256, /* past the largest value in use */
};

static const struct {
    kci_ledger_result result;
    int code;
} EXPECTED[] = {
    {KCI_LEDGER_OK, 0},
    {KCI_LEDGER_BAD_HEADERS, 400},
    {KCI_LEDGER_MALFORMED, 400},
    {KCI_LEDGER_TOO_LARGE, 413},
    {KCI_LEDGER_OPERATION_UNKNOWN, 404},
    {KCI_LEDGER_BAD_SIGNATURE, 401},
    {KCI_LEDGER_DENOMINATION_MISMATCH, 401},
    {KCI_LEDGER_AMOUNT_MISMATCH, 400},
    {KCI_LEDGER_COIN_UNKNOWN, 404},
    {KCI_LEDGER_COIN_NOT_OWNED, 409},
    {KCI_LEDGER_COIN_IS_RETIRED, 409},
    {KCI_LEDGER_DOUBLE_SPEND, 409},
    {KCI_LEDGER_TRANSFER_ID_REUSED, 409},
    {KCI_LEDGER_MINT_NOT_A_WALLET, 403},
    {KCI_LEDGER_TRANSFER_UNKNOWN, 404},
    {KCI_LEDGER_MINT_DISABLED, 403},
    {KCI_LEDGER_MINT_TO_MINT, 403},
    {KCI_LEDGER_SUPPLY_EXCEEDED, 400},
    {KCI_LEDGER_PAYMENT_UNKNOWN, 402},
    {KCI_LEDGER_PAYMENT_NOT_TRANSFER, 402},
    {KCI_LEDGER_PAYMENT_WRONG_PAYEE, 402},
    {KCI_LEDGER_PAYMENT_TOO_SMALL, 402},
    {KCI_LEDGER_PAYMENT_CLAIMED, 409},
    {KCI_LEDGER_QUEUE_FULL, 503},
    {KCI_LEDGER_AUDIT_BUSY, 503},
    {KCI_LEDGER_OUT_OF_MEMORY, 500},
    {KCI_LEDGER_STORAGE_FAILED, 500},
    {KCI_LEDGER_STORAGE_FULL, 507},
    {KCI_LEDGER_READ_FAILED, 500},
    {KCI_LEDGER_COIN_IS_HELD, 409},
    {KCI_LEDGER_HOLD_UNKNOWN, 404},
    {KCI_LEDGER_HOLD_NOT_PAYEE, 403},
    {KCI_LEDGER_HOLD_EXPIRED, 409},
    {KCI_LEDGER_HOLD_POSTED, 409},
    {KCI_LEDGER_HOLD_VOIDED, 409},
    {KCI_LEDGER_HOLD_TOO_SMALL, 402},
    {KCI_LEDGER_HOLD_CLAIMED, 409},
    {KCI_LEDGER_HOLD_BAD_EXPIRY, 400},
};

enum { EXPECTED_COUNT = sizeof EXPECTED / sizeof EXPECTED[0] };

static void test_wire_codes(void **state)
{
    (void)state;
    for (size_t index = 0; index < EXPECTED_COUNT; index++)
        if (kci_ledger_result_code(EXPECTED[index].result) != EXPECTED[index].code)
            fail_msg("result %d: code %d, expected %d", (int)EXPECTED[index].result,
                     kci_ledger_result_code(EXPECTED[index].result), EXPECTED[index].code);
}

/* Every value the switches know is in the table above, and each has a
 * message of its own: a result added to the enum must be added here too. */
static void test_every_result_has_a_message(void **state)
{
    (void)state;
    const char *unknown = kci_ledger_result_message((kci_ledger_result)RESULT_VALUES_SCANNED);
    size_t known = 0;
    for (int value = 0; value < RESULT_VALUES_SCANNED; value++) {
        const char *message = kci_ledger_result_message((kci_ledger_result)value);
        if (strcmp(message, unknown) == 0) {
            assert_int_equal(kci_ledger_result_code((kci_ledger_result)value), 500);
            continue;
        }
        known++;
        assert_true(strlen(message) > 0 && strlen(message) < KCI_LEDGER_ERROR_BYTES_MAX);
        for (int other = 0; other < value; other++)
            if (strcmp(message, kci_ledger_result_message((kci_ledger_result)other)) == 0)
                fail_msg("results %d and %d share the message \"%s\"", other, value, message);
    }
    assert_int_equal(known, EXPECTED_COUNT);
}

static void test_refusals(void **state)
{
    (void)state;
    kci_ledger_outcome outcome = {0};
    kci_ledger_refuse(&outcome, KCI_LEDGER_MINT_DISABLED);
    assert_int_equal(outcome.result, KCI_LEDGER_MINT_DISABLED);
    assert_int_equal(kci_ledger_result_code(outcome.result), 403);
    assert_string_equal(outcome.message, "minting is disabled on this ledger");
    outcome = (kci_ledger_outcome){0};
    kci_ledger_refuse_with(&outcome, KCI_LEDGER_COIN_UNKNOWN, "unknown coin %s", "0190-x");
    assert_int_equal(outcome.result, KCI_LEDGER_COIN_UNKNOWN);
    assert_string_equal(outcome.message, "unknown coin 0190-x");
    /* A message past the bound is cut, not overflowed. */
    char long_text[KCI_LEDGER_ERROR_BYTES_MAX * 2];
    memset(long_text, 'x', sizeof long_text - 1);
    long_text[sizeof long_text - 1] = '\0';
    outcome = (kci_ledger_outcome){0};
    kci_ledger_refuse_with(&outcome, KCI_LEDGER_MALFORMED, "%s", long_text);
    assert_int_equal(strlen(outcome.message), KCI_LEDGER_ERROR_BYTES_MAX - 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_wire_codes),
        cmocka_unit_test(test_every_result_has_a_message),
        cmocka_unit_test(test_refusals),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
