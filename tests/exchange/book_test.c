/* book_test.c - the matching engine (src/exchange/book.c, and books.c for
 * the books by symbol): cases worked by hand (price-time priority, partial
 * fills, market orders, cancel, bounds, symbols), then random order streams
 * (seeded) against a brute-force reference that keeps resting orders in a
 * plain array and finds the best maker by a full scan, comparing refusals,
 * results, every trade, depth and each order's rest after every step. */
/* clang-format off */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
/* clang-format on */
#include <stdlib.h>
#include <string.h>

#include "exchange/books.h"

enum {
    TRADES_MAX = 4096,
    REFERENCE_ORDERS_MAX = 1024, /* the largest book a stream uses */
    DEPTH_MAX = 128,
};

typedef struct trade_log {
    kci_book_trade trades[TRADES_MAX];
    uint32_t count;
} trade_log;

static void trade_record(const kci_book_trade *trade, void *context)
{
    trade_log *log = context;
    assert_true(log->count < TRADES_MAX);
    log->trades[log->count++] = *trade;
}

static kci_book *book_new(uint32_t orders_max)
{
    kci_book *book = NULL;
    assert_int_equal(kci_book_create(&book, "ACME", orders_max), KC_OK);
    return book;
}

static kci_book_refusal limit(kci_book *book, uint64_t id, kci_book_side side, int64_t price,
                              int64_t quantity, trade_log *log, kci_book_result *result)
{
    kci_book_order order = {.order_id = id,
                            .owner = id * 10,
                            .side = side,
                            .kind = KCI_BOOK_LIMIT,
                            .price = price,
                            .quantity = quantity};
    return kci_book_submit(book, &order, trade_record, log, result);
}

static void test_price_time_priority(void **state)
{
    (void)state;
    kci_book *book = book_new(16);
    trade_log log = {0};
    kci_book_result result;
    assert_int_equal(limit(book, 1, KCI_BOOK_SELL, 101, 5, &log, &result), KCI_BOOK_ACCEPTED);
    assert_int_equal(limit(book, 2, KCI_BOOK_SELL, 100, 5, &log, &result), KCI_BOOK_ACCEPTED);
    assert_int_equal(limit(book, 3, KCI_BOOK_SELL, 100, 5, &log, &result), KCI_BOOK_ACCEPTED);
    assert_int_equal(log.count, 0);
    assert_int_equal(kci_book_best(book, KCI_BOOK_SELL), 100);
    /* A buy of 12 at 101 takes order 2 (best price, oldest), then 3, then 2 of 1. */
    assert_int_equal(limit(book, 4, KCI_BOOK_BUY, 101, 12, &log, &result), KCI_BOOK_ACCEPTED);
    assert_int_equal(log.count, 3);
    assert_int_equal(log.trades[0].maker_order_id, 2);
    assert_int_equal(log.trades[1].maker_order_id, 3);
    assert_int_equal(log.trades[2].maker_order_id, 1);
    assert_int_equal(log.trades[2].quantity, 2);
    assert_int_equal(log.trades[2].price, 101);
    assert_int_equal(result.filled_quantity, 12);
    assert_int_equal(result.filled_notional, 5 * 100 + 5 * 100 + 2 * 101);
    assert_int_equal(result.resting_quantity, 0);
    assert_int_equal(kci_book_remaining(book, 1), 3);
    /* Trades are at the maker's price even when the taker bids more. */
    assert_int_equal(limit(book, 5, KCI_BOOK_BUY, 200, 10, &log, &result), KCI_BOOK_ACCEPTED);
    assert_int_equal(log.trades[3].price, 101);
    assert_int_equal(result.resting_quantity, 7);
    assert_int_equal(kci_book_best(book, KCI_BOOK_BUY), 200);
    assert_int_equal(kci_book_best(book, KCI_BOOK_SELL), 0);
    assert_true(kci_book_check(book));
    kci_book_destroy(book);
}

static void test_market_and_cancel(void **state)
{
    (void)state;
    kci_book *book = book_new(16);
    trade_log log = {0};
    kci_book_result result;
    assert_int_equal(limit(book, 1, KCI_BOOK_BUY, 99, 4, &log, &result), KCI_BOOK_ACCEPTED);
    assert_int_equal(limit(book, 2, KCI_BOOK_BUY, 98, 4, &log, &result), KCI_BOOK_ACCEPTED);
    kci_book_order removed;
    assert_int_equal(kci_book_cancel(book, 1, &removed), KCI_BOOK_ACCEPTED);
    assert_int_equal(removed.quantity, 4);
    assert_int_equal(removed.price, 99);
    assert_int_equal(kci_book_cancel(book, 1, NULL), KCI_BOOK_ORDER_UNKNOWN);
    kci_book_order market = {
        .order_id = 3, .owner = 3, .side = KCI_BOOK_SELL, .kind = KCI_BOOK_MARKET, .quantity = 10};
    assert_int_equal(kci_book_submit(book, &market, trade_record, &log, &result),
                     KCI_BOOK_ACCEPTED);
    assert_int_equal(result.filled_quantity, 4);
    assert_int_equal(result.cancelled_quantity, 6);
    assert_int_equal(result.resting_quantity, 0);
    assert_int_equal(kci_book_order_count(book), 0);
    assert_int_equal(kci_book_remaining(book, 3), 0);
    assert_true(kci_book_check(book));
    kci_book_destroy(book);
}

static void test_refusals(void **state)
{
    (void)state;
    kci_book *book = book_new(1);
    trade_log log = {0};
    kci_book_result result;
    assert_int_equal(limit(book, 1, KCI_BOOK_BUY, 10, 0, &log, &result),
                     KCI_BOOK_QUANTITY_NOT_POSITIVE);
    assert_int_equal(limit(book, 1, KCI_BOOK_BUY, 10, -3, &log, &result),
                     KCI_BOOK_QUANTITY_NOT_POSITIVE);
    assert_int_equal(limit(book, 1, KCI_BOOK_BUY, 0, 3, &log, &result),
                     KCI_BOOK_PRICE_NOT_POSITIVE);
    assert_int_equal(limit(book, 1, KCI_BOOK_BUY, -1, 3, &log, &result),
                     KCI_BOOK_PRICE_NOT_POSITIVE);
    assert_int_equal(limit(book, 1, KCI_BOOK_BUY, KCI_BOOK_PRICE_MAX + 1, 3, &log, &result),
                     KCI_BOOK_PRICE_TOO_LARGE);
    assert_int_equal(limit(book, 1, KCI_BOOK_BUY, 3, KCI_BOOK_QUANTITY_MAX + 1, &log, &result),
                     KCI_BOOK_QUANTITY_TOO_LARGE);
    assert_int_equal(
        limit(book, 1, KCI_BOOK_BUY, KCI_BOOK_PRICE_MAX, KCI_BOOK_QUANTITY_MAX, &log, &result),
        KCI_BOOK_NOTIONAL_OVERFLOW);
    assert_int_equal(limit(book, 0, KCI_BOOK_BUY, 10, 3, &log, &result), KCI_BOOK_ORDER_ID_ZERO);
    assert_int_equal(limit(book, 1, KCI_BOOK_BUY, 10, 3, &log, &result), KCI_BOOK_ACCEPTED);
    assert_int_equal(limit(book, 1, KCI_BOOK_SELL, 20, 3, &log, &result),
                     KCI_BOOK_ORDER_ID_DUPLICATE);
    assert_int_equal(limit(book, 2, KCI_BOOK_SELL, 20, 3, &log, &result), KCI_BOOK_FULL);
    kci_book_order bad = {.order_id = 5, .side = (kci_book_side)7, .quantity = 1, .price = 1};
    assert_int_equal(kci_book_submit(book, &bad, NULL, NULL, &result), KCI_BOOK_BAD_SIDE_OR_KIND);
    /* Refusals changed nothing. */
    assert_int_equal(kci_book_order_count(book), 1);
    assert_int_equal(log.count, 0);
    assert_true(kci_book_check(book));
    for (int r = 0; r <= KCI_BOOK_BAD_SIDE_OR_KIND; r++)
        assert_string_not_equal(kci_book_refusal_message((kci_book_refusal)r), "unknown refusal");
    kci_book *other = NULL;
    assert_int_equal(kci_book_create(&other, "acme", 4), KC_ERR_INVALID_ARGUMENT);
    assert_int_equal(kci_book_create(&other, "", 4), KC_ERR_INVALID_ARGUMENT);
    assert_int_equal(kci_book_create(&other, "ACME", 0), KC_ERR_INVALID_ARGUMENT);
    kci_book_destroy(book);
}

/* A market buy whose summed notional would overflow stops before it does. */
static void test_market_notional_bound(void **state)
{
    (void)state;
    kci_book *book = book_new(4);
    trade_log log = {0};
    kci_book_result result;
    int64_t quantity = INT64_MAX / KCI_BOOK_PRICE_MAX;
    assert_int_equal(limit(book, 1, KCI_BOOK_SELL, KCI_BOOK_PRICE_MAX, quantity, &log, &result),
                     KCI_BOOK_ACCEPTED);
    assert_int_equal(limit(book, 2, KCI_BOOK_SELL, KCI_BOOK_PRICE_MAX, quantity, &log, &result),
                     KCI_BOOK_ACCEPTED);
    kci_book_order market = {
        .order_id = 3, .side = KCI_BOOK_BUY, .kind = KCI_BOOK_MARKET, .quantity = 2 * quantity};
    assert_int_equal(kci_book_submit(book, &market, trade_record, &log, &result),
                     KCI_BOOK_ACCEPTED);
    assert_int_equal(result.filled_quantity, quantity);
    assert_int_equal(result.cancelled_quantity, quantity);
    assert_int_equal(kci_book_remaining(book, 2), quantity);
    assert_true(kci_book_check(book));
    kci_book_destroy(book);
}

/* ---- the brute-force reference ---- */

/* The reference checks amounts in 128 bits, not with the engine's overflow builtins. */
__extension__ typedef __int128 wide_int;

typedef struct reference_order {
    uint64_t order_id, owner, sequence;
    kci_book_side side;
    int64_t price, remaining;
} reference_order;

typedef struct reference_book {
    reference_order orders[REFERENCE_ORDERS_MAX];
    uint32_t capacity; /* the book's orders_max */
    uint32_t count;
    uint64_t sequence, trade_sequence;
} reference_book;

static int reference_find(const reference_book *ref, uint64_t order_id)
{
    for (uint32_t i = 0; i < ref->count; i++)
        if (ref->orders[i].order_id == order_id) return (int)i;
    return -1;
}

static kci_book_refusal reference_check(const reference_book *ref, const kci_book_order *order)
{
    if (order->quantity <= 0) return KCI_BOOK_QUANTITY_NOT_POSITIVE;
    if (order->quantity > KCI_BOOK_QUANTITY_MAX) return KCI_BOOK_QUANTITY_TOO_LARGE;
    if (order->order_id == 0) return KCI_BOOK_ORDER_ID_ZERO;
    if (reference_find(ref, order->order_id) >= 0) return KCI_BOOK_ORDER_ID_DUPLICATE;
    if (order->kind == KCI_BOOK_MARKET) return KCI_BOOK_ACCEPTED;
    if (order->price <= 0) return KCI_BOOK_PRICE_NOT_POSITIVE;
    if (order->price > KCI_BOOK_PRICE_MAX) return KCI_BOOK_PRICE_TOO_LARGE;
    wide_int notional = (wide_int)order->price * order->quantity;
    if (notional > INT64_MAX) return KCI_BOOK_NOTIONAL_OVERFLOW;
    if (ref->count == ref->capacity) return KCI_BOOK_FULL;
    return KCI_BOOK_ACCEPTED;
}

/* The best crossing maker by full scan: best price, then oldest. */
static int reference_best_maker(const reference_book *ref, const kci_book_order *order)
{
    int best = -1;
    for (uint32_t i = 0; i < ref->count; i++) {
        const reference_order *maker = &ref->orders[i];
        if (maker->side == order->side) continue;
        if (order->kind == KCI_BOOK_LIMIT &&
            (order->side == KCI_BOOK_BUY ? maker->price > order->price
                                         : maker->price < order->price))
            continue;
        if (best < 0) {
            best = (int)i;
            continue;
        }
        const reference_order *current = &ref->orders[best];
        bool better = order->side == KCI_BOOK_BUY ? maker->price < current->price
                                                  : maker->price > current->price;
        if (better || (maker->price == current->price && maker->sequence < current->sequence))
            best = (int)i;
    }
    return best;
}

static kci_book_refusal reference_submit(reference_book *ref, const kci_book_order *order,
                                         trade_log *log, kci_book_result *result)
{
    *result = (kci_book_result){0};
    kci_book_refusal refusal = reference_check(ref, order);
    if (refusal != KCI_BOOK_ACCEPTED) return refusal;
    int64_t wanted = order->quantity;
    int maker_index;
    while (wanted > 0 && (maker_index = reference_best_maker(ref, order)) >= 0) {
        reference_order *maker = &ref->orders[maker_index];
        int64_t quantity = maker->remaining < wanted ? maker->remaining : wanted;
        wide_int total = (wide_int)result->filled_notional + (wide_int)maker->price * quantity;
        if (total > INT64_MAX) break;
        log->trades[log->count++] = (kci_book_trade){.sequence = ++ref->trade_sequence,
                                                     .maker_order_id = maker->order_id,
                                                     .maker_owner = maker->owner,
                                                     .taker_order_id = order->order_id,
                                                     .taker_owner = order->owner,
                                                     .taker_side = order->side,
                                                     .price = maker->price,
                                                     .quantity = quantity};
        maker->remaining -= quantity;
        wanted -= quantity;
        result->filled_quantity += quantity;
        result->filled_notional = (int64_t)total;
        result->trade_count++;
        if (maker->remaining == 0) ref->orders[maker_index] = ref->orders[--ref->count];
    }
    if (wanted > 0 && order->kind == KCI_BOOK_MARKET) result->cancelled_quantity = wanted;
    if (wanted > 0 && order->kind == KCI_BOOK_LIMIT) {
        ref->orders[ref->count++] = (reference_order){.order_id = order->order_id,
                                                      .owner = order->owner,
                                                      .sequence = ++ref->sequence,
                                                      .side = order->side,
                                                      .price = order->price,
                                                      .remaining = wanted};
        result->resting_quantity = wanted;
    }
    return KCI_BOOK_ACCEPTED;
}

/* The reference's depth of a side, best first, aggregated by price. */
static uint32_t reference_depth(const reference_book *ref, kci_book_side side,
                                kci_book_level_view *levels)
{
    uint32_t count = 0;
    for (uint32_t i = 0; i < ref->count; i++) {
        const reference_order *order = &ref->orders[i];
        if (order->side != side) continue;
        uint32_t j = 0;
        while (j < count && levels[j].price != order->price)
            j++;
        if (j == count) levels[count++] = (kci_book_level_view){.price = order->price};
        levels[j].quantity += order->remaining;
        levels[j].order_count++;
    }
    for (uint32_t i = 1; i < count; i++) /* insertion sort, best first */
        for (uint32_t j = i; j > 0; j--) {
            bool swap = side == KCI_BOOK_BUY ? levels[j].price > levels[j - 1].price
                                             : levels[j].price < levels[j - 1].price;
            if (!swap) break;
            kci_book_level_view keep = levels[j];
            levels[j] = levels[j - 1];
            levels[j - 1] = keep;
        }
    return count;
}

/* ---- random streams ---- */

static uint64_t random_next(uint64_t *state)
{
    /* splitmix64: a fixed, seedable stream independent of the libc. */
    uint64_t z = (*state += UINT64_C(0x9E3779B97F4A7C15));
    z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
    return z ^ (z >> 31);
}

static int64_t random_range(uint64_t *state, int64_t low, int64_t high)
{
    return low + (int64_t)(random_next(state) % (uint64_t)(high - low + 1));
}

/* A kind of stream: a small book of few prices fills and crosses often; a
 * larger one with many prices exercises many levels and a busier index. */
typedef struct stream_shape {
    uint32_t orders_max;
    int64_t price_low, price_high;
    uint64_t seeds;
    int steps;
} stream_shape;

static const stream_shape stream_shapes[] = {
    {.orders_max = 64, .price_low = 95, .price_high = 105, .seeds = 150, .steps = 1500},
    {.orders_max = 1024, .price_low = 50, .price_high = 150, .seeds = 6, .steps = 6000},
};

/* Mostly ordinary orders within the shape's prices so books cross often; now
 * and then an edge: zero or negative amounts, huge prices, an id reused. */
static kci_book_order random_order(uint64_t *state, uint64_t *next_id, const stream_shape *shape)
{
    kci_book_order order = {.order_id = (*next_id)++,
                            .owner = (uint64_t)random_range(state, 1, 8),
                            .side = (kci_book_side)random_range(state, 0, 1),
                            .kind =
                                random_range(state, 0, 9) < 2 ? KCI_BOOK_MARKET : KCI_BOOK_LIMIT,
                            .price = random_range(state, shape->price_low, shape->price_high),
                            .quantity = random_range(state, 1, 20)};
    switch (random_range(state, 0, 60)) {
    case 0: order.quantity = random_range(state, -2, 0); break;
    case 1: order.price = random_range(state, -2, 0); break;
    case 2: order.price = KCI_BOOK_PRICE_MAX + random_range(state, 0, 1); break;
    case 3: order.quantity = KCI_BOOK_QUANTITY_MAX; break;
    case 4:
        order.order_id = *next_id > 3 ? (uint64_t)random_range(state, 1, (int64_t)*next_id - 1) : 0;
        break;
    default: break;
    }
    return order;
}

static void compare_books(const kci_book *book, const reference_book *ref)
{
    kci_book_level_view got[DEPTH_MAX], want[DEPTH_MAX];
    for (int side = 0; side < 2; side++) {
        uint32_t want_count = reference_depth(ref, (kci_book_side)side, want);
        uint32_t got_count = kci_book_depth(book, (kci_book_side)side, got, DEPTH_MAX);
        assert_int_equal(got_count, want_count);
        for (uint32_t i = 0; i < got_count; i++) {
            assert_int_equal(got[i].price, want[i].price);
            assert_int_equal(got[i].quantity, want[i].quantity);
            assert_int_equal(got[i].order_count, want[i].order_count);
        }
    }
    /* Same count and every reference order resting with its rest: the same orders. */
    for (uint32_t i = 0; i < ref->count; i++)
        assert_int_equal(kci_book_remaining(book, ref->orders[i].order_id),
                         ref->orders[i].remaining);
    assert_int_equal(kci_book_order_count(book), ref->count);
    assert_true(kci_book_check(book));
}

static void trade_compare(const kci_book_trade *got, const kci_book_trade *want)
{
    assert_int_equal(got->sequence, want->sequence);
    assert_int_equal(got->maker_order_id, want->maker_order_id);
    assert_int_equal(got->maker_owner, want->maker_owner);
    assert_int_equal(got->taker_order_id, want->taker_order_id);
    assert_int_equal(got->taker_owner, want->taker_owner);
    assert_int_equal(got->taker_side, want->taker_side);
    assert_int_equal(got->price, want->price);
    assert_int_equal(got->quantity, want->quantity);
}

static void compare_step(kci_book *book, reference_book *ref, uint64_t *state, uint64_t *next_id,
                         const stream_shape *shape)
{
    static trade_log got_log, want_log;
    got_log.count = want_log.count = 0;
    if (random_range(state, 0, 3) == 0) {
        uint64_t id = (uint64_t)random_range(state, 0, (int64_t)*next_id);
        int i = reference_find(ref, id);
        if (i >= 0) ref->orders[i] = ref->orders[--ref->count];
        assert_int_equal(kci_book_cancel(book, id, NULL),
                         i >= 0 ? KCI_BOOK_ACCEPTED : KCI_BOOK_ORDER_UNKNOWN);
        return;
    }
    kci_book_order order = random_order(state, next_id, shape);
    kci_book_result got, want;
    kci_book_refusal want_refusal = reference_submit(ref, &order, &want_log, &want);
    assert_int_equal(kci_book_submit(book, &order, trade_record, &got_log, &got), want_refusal);
    assert_int_equal(got.filled_quantity, want.filled_quantity);
    assert_int_equal(got.filled_notional, want.filled_notional);
    assert_int_equal(got.resting_quantity, want.resting_quantity);
    assert_int_equal(got.cancelled_quantity, want.cancelled_quantity);
    assert_int_equal(got.trade_count, want.trade_count);
    assert_int_equal(got_log.count, want_log.count);
    for (uint32_t i = 0; i < got_log.count; i++)
        trade_compare(&got_log.trades[i], &want_log.trades[i]);
}

static void test_random_streams_match_reference(void **state_unused)
{
    (void)state_unused;
    for (size_t s = 0; s < sizeof stream_shapes / sizeof stream_shapes[0]; s++) {
        const stream_shape *shape = &stream_shapes[s];
        for (uint64_t seed = 1; seed <= shape->seeds; seed++) {
            kci_book *book = book_new(shape->orders_max);
            static reference_book ref;
            memset(&ref, 0, sizeof ref);
            ref.capacity = shape->orders_max;
            uint64_t state = seed * 1000 + s, next_id = 1;
            for (int step = 0; step < shape->steps; step++) {
                compare_step(book, &ref, &state, &next_id, shape);
                compare_books(book, &ref);
            }
            assert_int_equal(kci_book_trade_count(book), ref.trade_sequence);
            kci_book_destroy(book);
        }
    }
}

/* Books by symbol: listing, lookup, unknown symbols, independence. */
static void test_books_by_symbol(void **state)
{
    (void)state;
    kci_books *books = NULL;
    assert_int_equal(kci_books_create(&books, 8), KC_OK);
    assert_int_equal(kci_books_list(books, "ZETA"), KC_OK);
    assert_int_equal(kci_books_list(books, "ACME"), KC_OK);
    assert_int_equal(kci_books_list(books, "NODE7"), KC_OK);
    assert_int_equal(kci_books_list(books, "ACME"), KC_ERR_EXISTS);
    assert_int_equal(kci_books_list(books, "acme"), KC_ERR_INVALID_ARGUMENT);
    assert_int_equal(kci_books_count(books), 3);
    assert_string_equal(kci_book_symbol(kci_books_at(books, 0)), "ACME");
    assert_string_equal(kci_book_symbol(kci_books_at(books, 1)), "NODE7");
    assert_string_equal(kci_book_symbol(kci_books_at(books, 2)), "ZETA");
    assert_null(kci_books_find(books, "NOPE"));
    assert_null(kci_books_find(books, ""));
    kci_book *acme = kci_books_find(books, "ACME"), *zeta = kci_books_find(books, "ZETA");
    assert_non_null(acme);
    trade_log log = {0};
    kci_book_result result;
    assert_int_equal(limit(acme, 1, KCI_BOOK_SELL, 50, 3, &log, &result), KCI_BOOK_ACCEPTED);
    assert_int_equal(limit(zeta, 1, KCI_BOOK_BUY, 60, 3, &log, &result), KCI_BOOK_ACCEPTED);
    assert_int_equal(log.count, 0); /* the same id and crossing prices, but other books */
    assert_int_equal(kci_book_best(acme, KCI_BOOK_SELL), 50);
    assert_int_equal(kci_book_best(zeta, KCI_BOOK_BUY), 60);
    kci_books_destroy(books);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_price_time_priority),
        cmocka_unit_test(test_market_and_cancel),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_market_notional_bound),
        cmocka_unit_test(test_random_streams_match_reference),
        cmocka_unit_test(test_books_by_symbol),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
