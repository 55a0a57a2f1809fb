/* market_data.h - what the exchange tells the market: per symbol a tape of
 * recent trades (a bounded ring) with the last price, and the JSON bodies
 * of a book snapshot (last, best bid and ask, depth), of the recent trades
 * and of the index (docs/exchange.md, "Market data"). Pure: the component
 * publishes and answers with these bodies; this file does no I/O. */
#ifndef KCI_EXCHANGE_MARKET_DATA_H
#define KCI_EXCHANGE_MARKET_DATA_H

#include <jansson.h>
#include <stdint.h>

#include "exchange/book.h"
#include "exchange/index.h"

enum {
    KCI_MARKET_TAPE_TRADES = 1024, /* trades kept per symbol (older ones leave the ring) */
    KCI_MARKET_DEPTH_LEVELS_MAX = 100,
};

typedef struct kci_market_tape {
    kci_book_trade trades[KCI_MARKET_TAPE_TRADES];
    uint64_t trade_count; /* ever added; the ring holds the last min(count, size) */
    int64_t last_price;   /* 0 before the first trade */
    int64_t volume;       /* shares traded, summed */
} kci_market_tape;

void kci_market_tape_init(kci_market_tape *tape);
void kci_market_tape_add(kci_market_tape *tape, const kci_book_trade *trade);
/* Up to count_max recent trades, newest first; returns how many. */
uint32_t kci_market_tape_recent(const kci_market_tape *tape, kci_book_trade *trades,
                                uint32_t count_max);

/* {"symbol","last","bid","ask","volume","trades","bids":[{"price","quantity","orders"}...],
 *  "asks":[...]}: depth_levels (capped at KCI_MARKET_DEPTH_LEVELS_MAX) per
 * side, best first; bid, ask and last are null when there is none. NULL
 * when out of memory. */
json_t *kci_market_book_json(const kci_book *book, const kci_market_tape *tape,
                             uint32_t depth_levels);
/* {"symbol","trades":[{"sequence","price","quantity","taker_side","maker_order",
 *  "taker_order"}...]}, newest first, at most count_max. */
json_t *kci_market_trades_json(const char *symbol, const kci_market_tape *tape, uint32_t count_max);
/* {"value","capitalisation","base":1000,"members":[{"symbol","shares","last","weight"}...]};
 * weight is the member's share of the capitalisation (0 before its first trade). */
json_t *kci_market_index_json(const kci_index *index);

#endif
