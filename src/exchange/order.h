/* order.h - the exchange's order messages (the body of a request on
 * kc.stocks.order), parsed with jansson and then validated field by field:
 *
 *   {"type":"limit","symbol":"ACME","side":"buy","price":105,"quantity":10}
 *   {"type":"market","symbol":"ACME","side":"sell","quantity":5}
 *   {"type":"cancel","symbol":"ACME","order":42}
 *
 * plus an optional "wallet" (the placing wallet's name, 1..KCI_ORDER_WALLET_BYTES_MAX
 * of A-Z a-z 0-9 _ - .). Prices are in the currency's smallest unit,
 * quantities in whole shares, both integers in 1..10^12 (JSON reals such as
 * 5.0 or 1e3 are refused: an amount is never a float); a limit order's
 * price x quantity must fit in int64. A market order has no price. Unknown
 * or repeated fields are refused, so a typo never turns into a default.
 * Every refusal is one value of kci_order_refusal with a message fit to
 * return to the client as is. */
#ifndef KCI_EXCHANGE_ORDER_H
#define KCI_EXCHANGE_ORDER_H

#include <stddef.h>
#include <stdint.h>

#include "exchange/book.h"

enum {
    KCI_ORDER_BYTES_MAX = 1024,      /* a message longer than this is refused unread */
    KCI_ORDER_WALLET_BYTES_MAX = 64, /* wallet names, as the ledger's */
};

typedef enum kci_order_type {
    KCI_ORDER_LIMIT = 0,
    KCI_ORDER_MARKET = 1,
    KCI_ORDER_CANCEL = 2,
} kci_order_type;

typedef enum kci_order_refusal {
    KCI_ORDER_OK = 0,
    KCI_ORDER_TOO_LARGE = 1,
    KCI_ORDER_NOT_JSON = 2,
    KCI_ORDER_NOT_OBJECT = 3,
    KCI_ORDER_UNKNOWN_FIELD = 4,
    KCI_ORDER_NUMBER_OVERFLOW = 5,
    KCI_ORDER_TYPE_BAD = 6,
    KCI_ORDER_SYMBOL_BAD = 7,
    KCI_ORDER_SIDE_BAD = 8,
    KCI_ORDER_PRICE_MISSING = 9,
    KCI_ORDER_PRICE_NOT_INTEGER = 10,
    KCI_ORDER_PRICE_NOT_POSITIVE = 11,
    KCI_ORDER_PRICE_OVERFLOW = 12,
    KCI_ORDER_PRICE_FORBIDDEN = 13,
    KCI_ORDER_QUANTITY_MISSING = 14,
    KCI_ORDER_QUANTITY_NOT_INTEGER = 15,
    KCI_ORDER_QUANTITY_NOT_POSITIVE = 16,
    KCI_ORDER_QUANTITY_OVERFLOW = 17,
    KCI_ORDER_NOTIONAL_OVERFLOW = 18,
    KCI_ORDER_ID_BAD = 19,
    KCI_ORDER_WALLET_BAD = 20,
    KCI_ORDER_FIELD_FORBIDDEN = 21,
} kci_order_refusal;

typedef struct kci_order_request {
    kci_order_type type;
    char symbol[KCI_BOOK_SYMBOL_BYTES_MAX + 1];
    char wallet[KCI_ORDER_WALLET_BYTES_MAX + 1]; /* "" when absent */
    kci_book_side side;                          /* limit and market */
    int64_t price;                               /* limit only, else 0 */
    int64_t quantity;                            /* limit and market, else 0 */
    uint64_t order_id;                           /* cancel only, else 0 */
} kci_order_request;

/* Parses one order message of length bytes (need not be NUL-terminated).
 * On refusal *request is zeroed. */
kci_order_refusal kci_order_parse(const char *text, size_t length, kci_order_request *request);

const char *kci_order_refusal_message(kci_order_refusal refusal);

#endif
