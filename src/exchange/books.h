/* books.h - the exchange's books, one per listed symbol (book.h), found by
 * symbol. Listing is the only way a symbol gets a book, so an order for a
 * symbol that was never listed is refused (KC_ERR_NOT_FOUND) before it
 * reaches any book. Bounded: at most KCI_BOOKS_SYMBOLS_MAX symbols, each
 * book with the same orders_max, all allocated at listing. Symbols are kept
 * sorted so a lookup is a binary search and a listing walks in order. */
#ifndef KCI_EXCHANGE_BOOKS_H
#define KCI_EXCHANGE_BOOKS_H

#include <stdint.h>

#include "exchange/book.h"

enum {
    KCI_BOOKS_SYMBOLS_MAX = 1024,
};

typedef struct kci_books kci_books;

/* An empty set whose books will each rest up to orders_max orders. */
kc_err kci_books_create(kci_books **out, uint32_t orders_max);
void kci_books_destroy(kci_books *books); /* NULL is fine */

/* Opens a book for symbol: KC_ERR_INVALID_ARGUMENT for a bad symbol,
 * KC_ERR_EXISTS when listed already, KC_ERR_LIMIT past the bound. */
kc_err kci_books_list(kci_books *books, const char *symbol);

/* The book of a listed symbol, or NULL. */
kci_book *kci_books_find(const kci_books *books, const char *symbol);

uint32_t kci_books_count(const kci_books *books);
/* The index-th book in symbol order (index < kci_books_count). */
kci_book *kci_books_at(const kci_books *books, uint32_t index);

#endif
