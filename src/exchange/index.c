/* index.c - the capitalisation-weighted index (index.h). Members are few
 * (at most KCI_BOOKS_SYMBOLS_MAX) and trades update one price, so the
 * capitalisation is summed afresh when asked rather than kept as a running
 * double that would drift. */
#include "exchange/index.h"

#include <assert.h>
#include <string.h>

void kci_index_init(kci_index *index)
{
    memset(index, 0, sizeof *index);
}

const kci_index_member *kci_index_find(const kci_index *index, const char *symbol)
{
    for (uint32_t i = 0; i < index->member_count; i++)
        if (strcmp(index->members[i].symbol, symbol) == 0) return &index->members[i];
    return NULL;
}

kc_err kci_index_list(kci_index *index, const char *symbol, int64_t shares)
{
    if (!kci_book_symbol_valid(symbol) || shares <= 0 || shares > KCI_BOOK_QUANTITY_MAX)
        return KC_ERR_INVALID_ARGUMENT;
    if (kci_index_find(index, symbol)) return KC_ERR_EXISTS;
    if (index->member_count == KCI_BOOKS_SYMBOLS_MAX) return KC_ERR_LIMIT;
    kci_index_member *member = &index->members[index->member_count++];
    memset(member, 0, sizeof *member);
    memcpy(member->symbol, symbol, strlen(symbol) + 1);
    member->shares = shares;
    return KC_OK;
}

double kci_index_capitalisation(const kci_index *index)
{
    double total = 0;
    for (uint32_t i = 0; i < index->member_count; i++)
        total += (double)index->members[i].last_price * (double)index->members[i].shares;
    return total;
}

double kci_index_value(const kci_index *index)
{
    return index->divisor > 0 ? kci_index_capitalisation(index) / index->divisor : 0;
}

kc_err kci_index_trade(kci_index *index, const char *symbol, int64_t price)
{
    if (price <= 0 || price > KCI_BOOK_PRICE_MAX) return KC_ERR_INVALID_ARGUMENT;
    kci_index_member *member = (kci_index_member *)kci_index_find(index, symbol);
    if (!member) return KC_ERR_NOT_FOUND;
    bool joining = member->last_price == 0;
    double value_before = kci_index_value(index);
    member->last_price = price;
    if (!joining) return KC_OK;
    /* A new member: keep the index where it was (or start it at the base). */
    double target = index->divisor > 0 ? value_before : KCI_INDEX_BASE_VALUE;
    index->divisor = kci_index_capitalisation(index) / target;
    assert(index->divisor > 0);
    return KC_OK;
}
