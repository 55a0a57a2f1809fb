/* fuzz_exchange_order.c - libFuzzer target for the exchange's order
 * messages (src/exchange/order.c) and matching engine (src/exchange/book.c).
 *
 * The input is parsed as one order message; an accepted request must be in
 * bounds. Then the same bytes drive a small book, 12 bytes an operation
 * (kind, side, price, quantity, id, a cancel now and then): after each one
 * every book invariant must hold (kci_book_check), an order's quantity must
 * be split exactly into filled, resting and cancelled, and the trades must
 * add up to the filled quantity and notional. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "exchange/order.h"

enum { BOOK_ORDERS = 32, OPERATION_BYTES = 12 };

#define FUZZ_CHECK(condition)                                                                      \
    do {                                                                                           \
        if (!(condition)) abort();                                                                 \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef struct trade_sum {
    int64_t quantity;
    int64_t notional;
} trade_sum;

static void trade_add(const kci_book_trade *trade, void *context)
{
    trade_sum *sum = context;
    FUZZ_CHECK(trade->quantity > 0 && trade->price > 0);
    sum->quantity += trade->quantity;
    sum->notional += trade->price * trade->quantity;
}

static void request_check(const uint8_t *data, size_t size)
{
    kci_order_request request;
    if (kci_order_parse((const char *)data, size, &request) != KCI_ORDER_OK) return;
    FUZZ_CHECK(kci_book_symbol_valid(request.symbol));
    if (request.type == KCI_ORDER_CANCEL) {
        FUZZ_CHECK(request.order_id > 0);
        return;
    }
    FUZZ_CHECK(request.quantity > 0 && request.quantity <= KCI_BOOK_QUANTITY_MAX);
    if (request.type == KCI_ORDER_LIMIT)
        FUZZ_CHECK(request.price > 0 && request.price <= KCI_BOOK_PRICE_MAX);
}

static void operation_run(kci_book *book, const uint8_t *op)
{
    uint64_t id = op[10] % 48;
    if (op[0] % 5 == 0) {
        (void)kci_book_cancel(book, id, NULL);
        return;
    }
    int64_t price = 90 + op[2] % 20, quantity = op[3] % 30;
    if (op[4] == 0xff) price = KCI_BOOK_PRICE_MAX - op[5];
    if (op[6] == 0xff) quantity = KCI_BOOK_QUANTITY_MAX - op[7];
    if (op[8] == 0xfe) price = -(int64_t)op[9];
    kci_book_order order = {.order_id = id,
                            .owner = op[11],
                            .side = (kci_book_side)(op[1] & 1),
                            .kind = (op[0] & 1) ? KCI_BOOK_MARKET : KCI_BOOK_LIMIT,
                            .price = price,
                            .quantity = quantity};
    trade_sum sum = {0};
    kci_book_result result;
    if (kci_book_submit(book, &order, trade_add, &sum, &result) != KCI_BOOK_ACCEPTED) {
        FUZZ_CHECK(sum.quantity == 0 && result.filled_quantity == 0);
        return;
    }
    FUZZ_CHECK(result.filled_quantity + result.resting_quantity + result.cancelled_quantity ==
               order.quantity);
    FUZZ_CHECK(sum.quantity == result.filled_quantity && sum.notional == result.filled_notional);
    FUZZ_CHECK(order.kind == KCI_BOOK_LIMIT || result.resting_quantity == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    request_check(data, size);
    kci_book *book = NULL;
    if (kci_book_create(&book, "FUZZ", BOOK_ORDERS) != KC_OK) return 0;
    for (size_t at = 0; at + OPERATION_BYTES <= size; at += OPERATION_BYTES) {
        operation_run(book, data + at);
        FUZZ_CHECK(kci_book_check(book));
    }
    kci_book_destroy(book);
    return 0;
}
