/* books.c - the books by symbol (books.h): a sorted array of book pointers. */
#include "exchange/books.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

struct kci_books {
    uint32_t orders_max;
    uint32_t count;
    kci_book *books[KCI_BOOKS_SYMBOLS_MAX]; /* by symbol, ascending */
};

kc_err kci_books_create(kci_books **out, uint32_t orders_max)
{
    *out = NULL;
    if (orders_max == 0 || orders_max > KCI_BOOK_ORDERS_MAX) return KC_ERR_INVALID_ARGUMENT;
    kci_books *books = calloc(1, sizeof *books);
    if (!books) return KC_ERR_NOMEM;
    books->orders_max = orders_max;
    *out = books;
    return KC_OK;
}

void kci_books_destroy(kci_books *books)
{
    if (!books) return;
    for (uint32_t i = 0; i < books->count; i++)
        kci_book_destroy(books->books[i]);
    free(books);
}

/* The position of symbol, or where it would be inserted; *found says which. */
static uint32_t books_search(const kci_books *books, const char *symbol, bool *found)
{
    uint32_t low = 0, high = books->count;
    while (low < high) {
        uint32_t middle = low + (high - low) / 2;
        int order = strcmp(kci_book_symbol(books->books[middle]), symbol);
        if (order == 0) {
            *found = true;
            return middle;
        }
        if (order < 0)
            low = middle + 1;
        else
            high = middle;
    }
    *found = false;
    return low;
}

kc_err kci_books_list(kci_books *books, const char *symbol)
{
    if (!kci_book_symbol_valid(symbol)) return KC_ERR_INVALID_ARGUMENT;
    bool found;
    uint32_t position = books_search(books, symbol, &found);
    if (found) return KC_ERR_EXISTS;
    if (books->count == KCI_BOOKS_SYMBOLS_MAX) return KC_ERR_LIMIT;
    kci_book *book = NULL;
    kc_err err = kci_book_create(&book, symbol, books->orders_max);
    if (err != KC_OK) return err;
    memmove(&books->books[position + 1], &books->books[position],
            (books->count - position) * sizeof books->books[0]);
    books->books[position] = book;
    books->count++;
    return KC_OK;
}

kci_book *kci_books_find(const kci_books *books, const char *symbol)
{
    bool found;
    uint32_t position = books_search(books, symbol, &found);
    return found ? books->books[position] : NULL;
}

uint32_t kci_books_count(const kci_books *books)
{
    return books->count;
}

kci_book *kci_books_at(const kci_books *books, uint32_t index)
{
    assert(index < books->count);
    return books->books[index];
}
