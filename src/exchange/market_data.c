/* market_data.c - the trade tape and the market data bodies (market_data.h).
 * The bodies are built with jansson's pack, which returns NULL if any part
 * failed to allocate, so one check covers a whole body. */
#include "exchange/market_data.h"

#include <assert.h>
#include <string.h>

void kci_market_tape_init(kci_market_tape *tape)
{
    memset(tape, 0, sizeof *tape);
}

void kci_market_tape_add(kci_market_tape *tape, const kci_book_trade *trade)
{
    assert(trade->price > 0 && trade->quantity > 0);
    tape->trades[tape->trade_count % KCI_MARKET_TAPE_TRADES] = *trade;
    tape->trade_count++;
    tape->last_price = trade->price;
    tape->volume += trade->quantity; /* at most 10^12 a trade: ~9 million trades of the most */
}

/* The i-th most recent trade kept (i < the count kept). */
static const kci_book_trade *tape_recent(const kci_market_tape *tape, uint32_t i)
{
    return &tape->trades[(tape->trade_count - 1 - i) % KCI_MARKET_TAPE_TRADES];
}

/* How many of the newest trades to give for count_max. */
static uint32_t tape_count(const kci_market_tape *tape, uint32_t count_max)
{
    uint64_t kept =
        tape->trade_count < KCI_MARKET_TAPE_TRADES ? tape->trade_count : KCI_MARKET_TAPE_TRADES;
    return kept < count_max ? (uint32_t)kept : count_max;
}

uint32_t kci_market_tape_recent(const kci_market_tape *tape, kci_book_trade *trades,
                                uint32_t count_max)
{
    uint32_t count = tape_count(tape, count_max);
    for (uint32_t i = 0; i < count; i++)
        trades[i] = *tape_recent(tape, i);
    return count;
}

/* A price, or null for 0 (no such price yet). */
static json_t *price_json(int64_t price)
{
    return price > 0 ? json_integer(price) : json_null();
}

static json_t *depth_json(const kci_book *book, kci_book_side side, uint32_t depth_levels)
{
    kci_book_level_view levels[KCI_MARKET_DEPTH_LEVELS_MAX];
    uint32_t count = kci_book_depth(book, side, levels, depth_levels);
    json_t *array = json_array();
    for (uint32_t i = 0; array && i < count; i++) {
        json_t *level =
            json_pack("{sIsIsI}", "price", (json_int_t)levels[i].price, "quantity",
                      (json_int_t)levels[i].quantity, "orders", (json_int_t)levels[i].order_count);
        if (!level || json_array_append_new(array, level) != 0) {
            json_decref(array);
            return NULL;
        }
    }
    return array;
}

json_t *kci_market_book_json(const kci_book *book, const kci_market_tape *tape,
                             uint32_t depth_levels)
{
    if (depth_levels > KCI_MARKET_DEPTH_LEVELS_MAX) depth_levels = KCI_MARKET_DEPTH_LEVELS_MAX;
    return json_pack("{sssosososIsIsoso}", "symbol", kci_book_symbol(book), "last",
                     price_json(tape->last_price), "bid",
                     price_json(kci_book_best(book, KCI_BOOK_BUY)), "ask",
                     price_json(kci_book_best(book, KCI_BOOK_SELL)), "volume",
                     (json_int_t)tape->volume, "trades", (json_int_t)tape->trade_count, "bids",
                     depth_json(book, KCI_BOOK_BUY, depth_levels), "asks",
                     depth_json(book, KCI_BOOK_SELL, depth_levels));
}

static json_t *trade_json(const kci_book_trade *trade)
{
    return json_pack("{sIsIsIsssIsI}", "sequence", (json_int_t)trade->sequence, "price",
                     (json_int_t)trade->price, "quantity", (json_int_t)trade->quantity,
                     "taker_side", trade->taker_side == KCI_BOOK_BUY ? "buy" : "sell",
                     "maker_order", (json_int_t)trade->maker_order_id, "taker_order",
                     (json_int_t)trade->taker_order_id);
}

json_t *kci_market_trades_json(const char *symbol, const kci_market_tape *tape, uint32_t count_max)
{
    uint32_t count = tape_count(tape, count_max);
    json_t *array = json_array();
    for (uint32_t i = 0; array && i < count; i++) {
        json_t *item = trade_json(tape_recent(tape, i));
        if (!item || json_array_append_new(array, item) != 0) {
            json_decref(array);
            return NULL;
        }
    }
    return json_pack("{ssso}", "symbol", symbol, "trades", array);
}

json_t *kci_market_index_json(const kci_index *index)
{
    double capitalisation = kci_index_capitalisation(index);
    json_t *members = json_array();
    for (uint32_t i = 0; members && i < index->member_count; i++) {
        const kci_index_member *member = &index->members[i];
        double weight = capitalisation > 0
                            ? (double)member->last_price * (double)member->shares / capitalisation
                            : 0;
        json_t *item =
            json_pack("{sssIsosf}", "symbol", member->symbol, "shares", (json_int_t)member->shares,
                      "last", price_json(member->last_price), "weight", weight);
        if (!item || json_array_append_new(members, item) != 0) {
            json_decref(members);
            return NULL;
        }
    }
    return json_pack("{sfsfsfso}", "value", kci_index_value(index), "capitalisation",
                     capitalisation, "base", KCI_INDEX_BASE_VALUE, "members", members);
}
