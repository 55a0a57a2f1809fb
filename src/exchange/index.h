/* index.h - the exchange's capitalisation-weighted index over the listed
 * symbols (docs/exchange.md, "The index"). Pure arithmetic, no I/O.
 *
 *   capitalisation = sum over priced members of last price x shares listed
 *   index          = capitalisation / divisor
 *
 * A listed symbol joins the index at its first trade (before that it has no
 * price). The first member's first trade sets the index to
 * KCI_INDEX_BASE_VALUE; every later joining adjusts the divisor so that the
 * index does not move at that moment (as the classic cap-weighted indices
 * do at a constituent change): only price changes move it. The index is a
 * display figure computed in double, never an amount of coins: nothing is
 * paid or held by it, so no integer exactness is needed, and capitalisation
 * (up to 10^12 x 10^12) would not fit in int64 anyway. */
#ifndef KCI_EXCHANGE_INDEX_H
#define KCI_EXCHANGE_INDEX_H

#include <stdbool.h>
#include <stdint.h>

#include "exchange/books.h"

#define KCI_INDEX_BASE_VALUE 1000.0

typedef struct kci_index_member {
    char symbol[KCI_BOOK_SYMBOL_BYTES_MAX + 1];
    int64_t shares;     /* issued at listing, fixed */
    int64_t last_price; /* 0 until its first trade */
} kci_index_member;

typedef struct kci_index {
    uint32_t member_count;
    double divisor; /* 0 until the first trade */
    kci_index_member members[KCI_BOOKS_SYMBOLS_MAX];
} kci_index;

void kci_index_init(kci_index *index);
/* Adds symbol with its listed shares (1..KCI_BOOK_QUANTITY_MAX):
 * KC_ERR_INVALID_ARGUMENT, KC_ERR_EXISTS, KC_ERR_LIMIT. */
kc_err kci_index_list(kci_index *index, const char *symbol, int64_t shares);
/* Records a trade's price (1..KCI_BOOK_PRICE_MAX) for symbol:
 * KC_ERR_NOT_FOUND for a symbol not listed, KC_ERR_INVALID_ARGUMENT for a
 * bad price. */
kc_err kci_index_trade(kci_index *index, const char *symbol, int64_t price);
/* The index's value, 0 before any trade. */
double kci_index_value(const kci_index *index);
/* Sum of last price x shares over the priced members. */
double kci_index_capitalisation(const kci_index *index);
const kci_index_member *kci_index_find(const kci_index *index, const char *symbol);

#endif
