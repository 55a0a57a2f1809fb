/* index_test.c - the capitalisation-weighted index (src/exchange/index.c),
 * worked by hand: the base at the first trade, prices moving it in
 * proportion to capitalisation, a member joining without moving it. */
/* clang-format off */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
/* clang-format on */
#include <stdlib.h>

#include "exchange/index.h"

static void test_index_by_hand(void **state)
{
    (void)state;
    kci_index *index = calloc(1, sizeof *index);
    assert_non_null(index);
    kci_index_init(index);
    assert_int_equal(kci_index_list(index, "AAA", 100), KC_OK);
    assert_int_equal(kci_index_list(index, "BBB", 300), KC_OK);
    assert_int_equal(kci_index_list(index, "AAA", 5), KC_ERR_EXISTS);
    assert_int_equal(kci_index_list(index, "CCC", 0), KC_ERR_INVALID_ARGUMENT);
    assert_int_equal(kci_index_list(index, "c", 5), KC_ERR_INVALID_ARGUMENT);
    assert_true(kci_index_value(index) == 0);
    /* The first trade sets the base. */
    assert_int_equal(kci_index_trade(index, "AAA", 10), KC_OK);
    assert_float_equal(kci_index_value(index), 1000.0, 1e-9);
    /* Capitalisation doubles, so does the index. */
    assert_int_equal(kci_index_trade(index, "AAA", 20), KC_OK);
    assert_float_equal(kci_index_value(index), 2000.0, 1e-9);
    /* BBB joins at 5 (cap 1500): the index stays at 2000, divisor 3500/2000. */
    assert_int_equal(kci_index_trade(index, "BBB", 5), KC_OK);
    assert_float_equal(kci_index_capitalisation(index), 3500.0, 1e-9);
    assert_float_equal(kci_index_value(index), 2000.0, 1e-9);
    /* BBB to 10: cap 5000, index 5000 / 1.75. */
    assert_int_equal(kci_index_trade(index, "BBB", 10), KC_OK);
    assert_float_equal(kci_index_value(index), 5000.0 / 1.75, 1e-9);
    assert_int_equal(kci_index_trade(index, "ZZZ", 10), KC_ERR_NOT_FOUND);
    assert_int_equal(kci_index_trade(index, "AAA", 0), KC_ERR_INVALID_ARGUMENT);
    assert_int_equal(kci_index_trade(index, "AAA", KCI_BOOK_PRICE_MAX + 1),
                     KC_ERR_INVALID_ARGUMENT);
    assert_int_equal(kci_index_find(index, "AAA")->last_price, 20);
    free(index);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_index_by_hand),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
