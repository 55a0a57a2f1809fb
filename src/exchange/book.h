/* book.h - the exchange's matching engine: one limit order book per symbol,
 * price-time priority, limit and market orders, cancel. A pure module: no
 * I/O, no clock, no ledger; the exchange component (holds, settlement) sits
 * on top and is told each trade through a callback while the book matches.
 *
 * Rules (docs/exchange.md):
 * - A limit order trades against the best opposite prices while they cross
 *   (a buy at >= the ask, a sell at <= the bid), each trade at the resting
 *   (maker) order's price; what is left rests at its own price, behind every
 *   order already resting at that price (time priority).
 * - A market order trades like a limit order with no price bound and never
 *   rests: what the book cannot fill is cancelled (immediate-or-cancel). It
 *   also stops before its summed notional (price x quantity) would overflow
 *   int64, so a caller's coin total always fits.
 * - Prices and quantities are positive integers (the currency's smallest
 *   unit, whole shares) within the named bounds below, and a limit order's
 *   notional must fit in int64: no float, no wrap-around anywhere.
 * - Self-trades are allowed: the book knows owners only to report them.
 * - Every bound is fixed at creation (orders_max); the book allocates
 *   nothing after kci_book_create. A limit order is refused when the book
 *   is full, before it matches, so a refusal never leaves a partial trade.
 * - A refused order changes nothing. */
#ifndef KCI_EXCHANGE_BOOK_H
#define KCI_EXCHANGE_BOOK_H

#include <stdbool.h>
#include <stdint.h>

#include "kingcobra/err.h"

enum {
    KCI_BOOK_SYMBOL_BYTES_MAX = 12, /* A-Z and 0-9, e.g. "ACME", "NODE7" */
    KCI_BOOK_ORDERS_MAX = 1 << 22,  /* resting orders in one book, at most */
};

/* Price and quantity bounds: 10^12 each, so that a bad order says "price
 * overflow" long before int64 could; their product can still overflow, which
 * kci_book_submit checks and refuses. */
#define KCI_BOOK_PRICE_MAX INT64_C(1000000000000)
#define KCI_BOOK_QUANTITY_MAX INT64_C(1000000000000)

typedef enum kci_book_side {
    KCI_BOOK_BUY = 0,
    KCI_BOOK_SELL = 1,
} kci_book_side;

typedef enum kci_book_kind {
    KCI_BOOK_LIMIT = 0,
    KCI_BOOK_MARKET = 1,
} kci_book_kind;

/* Why the book refused an order or a cancel; every value has a message
 * (kci_book_refusal_message) fit to show the client as is. */
typedef enum kci_book_refusal {
    KCI_BOOK_ACCEPTED = 0,
    KCI_BOOK_QUANTITY_NOT_POSITIVE = 1,
    KCI_BOOK_QUANTITY_TOO_LARGE = 2,
    KCI_BOOK_PRICE_NOT_POSITIVE = 3,
    KCI_BOOK_PRICE_TOO_LARGE = 4,
    KCI_BOOK_NOTIONAL_OVERFLOW = 5,
    KCI_BOOK_ORDER_ID_ZERO = 6,
    KCI_BOOK_ORDER_ID_DUPLICATE = 7,
    KCI_BOOK_FULL = 8,
    KCI_BOOK_ORDER_UNKNOWN = 9,
    KCI_BOOK_BAD_SIDE_OR_KIND = 10,
} kci_book_refusal;

typedef struct kci_book_order {
    uint64_t order_id; /* unique in the book while resting, never 0 */
    uint64_t owner;    /* the caller's handle on who placed it */
    kci_book_side side;
    kci_book_kind kind;
    int64_t price; /* limit orders only; ignored for market orders */
    int64_t quantity;
} kci_book_order;

typedef struct kci_book_trade {
    uint64_t sequence; /* 1, 2, ... per book */
    uint64_t maker_order_id;
    uint64_t maker_owner;
    uint64_t taker_order_id;
    uint64_t taker_owner;
    kci_book_side taker_side;
    int64_t price; /* the maker's */
    int64_t quantity;
} kci_book_trade;

/* What became of a submitted order. */
typedef struct kci_book_result {
    int64_t filled_quantity;
    int64_t filled_notional; /* sum of price x quantity of its trades */
    int64_t resting_quantity;
    int64_t cancelled_quantity; /* a market order's unfilled rest */
    uint32_t trade_count;
} kci_book_result;

/* One price level of one side, as depth reports it. */
typedef struct kci_book_level_view {
    int64_t price;
    int64_t quantity;
    uint32_t order_count;
} kci_book_level_view;

typedef struct kci_book kci_book;
typedef void kci_book_trade_fn(const kci_book_trade *trade, void *context);

/* A book for symbol with room for orders_max resting orders
 * (1..KCI_BOOK_ORDERS_MAX); KC_ERR_INVALID_ARGUMENT for a bad symbol. */
kc_err kci_book_create(kci_book **out, const char *symbol, uint32_t orders_max);
void kci_book_destroy(kci_book *book);
const char *kci_book_symbol(const kci_book *book);

/* True when symbol is 1..KCI_BOOK_SYMBOL_BYTES_MAX of A-Z, 0-9. */
bool kci_book_symbol_valid(const char *symbol);

/* Checks the order, matches it (on_trade, which may be NULL, is called for
 * each trade in order, before the next is made) and rests what a limit order
 * has left. On refusal nothing changed and result is zeroed. */
kci_book_refusal kci_book_submit(kci_book *book, const kci_book_order *order,
                                 kci_book_trade_fn *on_trade, void *context,
                                 kci_book_result *result);

/* Removes a resting order; when removed is not NULL it receives the order as
 * it rested (quantity = its unfilled rest). */
kci_book_refusal kci_book_cancel(kci_book *book, uint64_t order_id, kci_book_order *removed);

/* A resting order's unfilled quantity, or 0 when it does not rest. */
int64_t kci_book_remaining(const kci_book *book, uint64_t order_id);

/* The best levels of a side, best first: fills up to levels_max views and
 * returns how many it filled. */
uint32_t kci_book_depth(const kci_book *book, kci_book_side side, kci_book_level_view *levels,
                        uint32_t levels_max);

/* Best bid (highest buy) or ask (lowest sell) price, 0 when that side is empty. */
int64_t kci_book_best(const kci_book *book, kci_book_side side);
uint32_t kci_book_order_count(const kci_book *book);
uint64_t kci_book_trade_count(const kci_book *book);

/* Walks every structure and returns false on any broken invariant (levels
 * ordered and non-empty, level totals, FIFO links, index, counts, no crossed
 * book). For tests and the fuzz target: O(orders). */
bool kci_book_check(const kci_book *book);

const char *kci_book_refusal_message(kci_book_refusal refusal);

#endif
