/* market_data_test.c - the trade tape and the market data bodies
 * (src/exchange/market_data.c): a book with resting orders and trades
 * rendered as JSON, the ring keeping only the newest trades, the index body. */
/* clang-format off */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
/* clang-format on */
#include <stdlib.h>

#include "exchange/market_data.h"

static void tape_record(const kci_book_trade *trade, void *context)
{
    kci_market_tape_add(context, trade);
}

static void submit(kci_book *book, kci_market_tape *tape, uint64_t id, kci_book_side side,
                   int64_t price, int64_t quantity)
{
    kci_book_order order = {
        .order_id = id, .side = side, .kind = KCI_BOOK_LIMIT, .price = price, .quantity = quantity};
    kci_book_result result;
    assert_int_equal(kci_book_submit(book, &order, tape_record, tape, &result), KCI_BOOK_ACCEPTED);
}

static void test_book_and_trades_json(void **state)
{
    (void)state;
    kci_book *book = NULL;
    assert_int_equal(kci_book_create(&book, "ACME", 16), KC_OK);
    kci_market_tape *tape = malloc(sizeof *tape);
    assert_non_null(tape);
    kci_market_tape_init(tape);
    json_t *empty = kci_market_book_json(book, tape, 5);
    assert_true(json_is_null(json_object_get(empty, "last")));
    assert_true(json_is_null(json_object_get(empty, "bid")));
    json_decref(empty);
    submit(book, tape, 1, KCI_BOOK_SELL, 101, 5);
    submit(book, tape, 2, KCI_BOOK_SELL, 102, 5);
    submit(book, tape, 3, KCI_BOOK_BUY, 99, 4);
    submit(book, tape, 4, KCI_BOOK_BUY, 101, 2); /* trades 2 at 101 */
    json_t *body = kci_market_book_json(book, tape, 1);
    assert_non_null(body);
    assert_int_equal(json_integer_value(json_object_get(body, "last")), 101);
    assert_int_equal(json_integer_value(json_object_get(body, "bid")), 99);
    assert_int_equal(json_integer_value(json_object_get(body, "ask")), 101);
    assert_int_equal(json_integer_value(json_object_get(body, "volume")), 2);
    json_t *asks = json_object_get(body, "asks");
    assert_int_equal(json_array_size(asks), 1); /* depth 1 asked */
    assert_int_equal(json_integer_value(json_object_get(json_array_get(asks, 0), "quantity")), 3);
    json_decref(body);
    json_t *trades = kci_market_trades_json("ACME", tape, 10);
    json_t *list = json_object_get(trades, "trades");
    assert_int_equal(json_array_size(list), 1);
    assert_string_equal(json_string_value(json_object_get(json_array_get(list, 0), "taker_side")),
                        "buy");
    json_decref(trades);
    kci_book_destroy(book);
    free(tape);
}

static void test_tape_keeps_the_newest(void **state)
{
    (void)state;
    kci_market_tape *tape = malloc(sizeof *tape);
    assert_non_null(tape);
    kci_market_tape_init(tape);
    for (uint64_t i = 1; i <= KCI_MARKET_TAPE_TRADES + 10; i++) {
        kci_book_trade trade = {.sequence = i, .price = (int64_t)i, .quantity = 1};
        kci_market_tape_add(tape, &trade);
    }
    kci_book_trade recent[3];
    assert_int_equal(kci_market_tape_recent(tape, recent, 3), 3);
    assert_int_equal(recent[0].sequence, KCI_MARKET_TAPE_TRADES + 10);
    assert_int_equal(recent[2].sequence, KCI_MARKET_TAPE_TRADES + 8);
    json_t *trades = kci_market_trades_json("ACME", tape, 5000);
    json_t *list = json_object_get(trades, "trades");
    assert_int_equal(json_array_size(list), KCI_MARKET_TAPE_TRADES);
    assert_int_equal(json_integer_value(json_object_get(
                         json_array_get(list, KCI_MARKET_TAPE_TRADES - 1), "sequence")),
                     11); /* the oldest kept */
    json_decref(trades);
    assert_int_equal(tape->last_price, KCI_MARKET_TAPE_TRADES + 10);
    free(tape);
}

static void test_index_json(void **state)
{
    (void)state;
    kci_index *index = malloc(sizeof *index);
    assert_non_null(index);
    kci_index_init(index);
    assert_int_equal(kci_index_list(index, "AAA", 100), KC_OK);
    assert_int_equal(kci_index_list(index, "BBB", 300), KC_OK);
    assert_int_equal(kci_index_trade(index, "AAA", 30), KC_OK);
    assert_int_equal(kci_index_trade(index, "BBB", 10), KC_OK);
    json_t *body = kci_market_index_json(index);
    assert_non_null(body);
    assert_float_equal(json_real_value(json_object_get(body, "value")), 1000.0, 1e-9);
    assert_float_equal(json_real_value(json_object_get(body, "capitalisation")), 6000.0, 1e-9);
    json_t *members = json_object_get(body, "members");
    assert_float_equal(json_real_value(json_object_get(json_array_get(members, 0), "weight")), 0.5,
                       1e-12);
    json_decref(body);
    free(index);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_book_and_trades_json),
        cmocka_unit_test(test_tape_keeps_the_newest),
        cmocka_unit_test(test_index_json),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
