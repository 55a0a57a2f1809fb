/* book.c - the limit order book (rules in book.h).
 *
 * Layout, all allocated by kci_book_create and never again:
 * - slots: a pool of orders_max order records; free ones form a list.
 * - levels[side]: the side's price levels in a sorted array with the best
 *   price LAST (bids ascending, asks descending), so taking the best level
 *   off is a pop and the common insert near the top moves little. Each
 *   level chains its orders oldest first (head) through the slots.
 * - index: order id -> slot, open addressing with linear probing and
 *   backward-shift deletion (no tombstones), at most half full.
 * Matching walks the best level's chain from its head; a cancel finds the
 * slot through the index and its level by binary search on its price. */
#include "exchange/book.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#define SLOT_NONE UINT32_MAX

typedef struct book_slot {
    uint64_t order_id;
    uint64_t owner;
    int64_t price;
    int64_t remaining;
    uint32_t next; /* younger order at the same level, or the free list */
    uint32_t prev;
    kci_book_side side;
} book_slot;

typedef struct book_level {
    int64_t price;
    int64_t quantity;
    uint32_t order_count;
    uint32_t head; /* oldest */
    uint32_t tail;
} book_level;

struct kci_book {
    char symbol[KCI_BOOK_SYMBOL_BYTES_MAX + 1];
    uint32_t orders_max;
    uint32_t order_count;
    uint32_t free_head;
    book_slot *slots;
    uint32_t *index; /* slot numbers or SLOT_NONE */
    uint32_t index_mask;
    book_level *levels[2];
    uint32_t level_count[2];
    uint64_t trade_sequence;
};

bool kci_book_symbol_valid(const char *symbol)
{
    size_t length = strlen(symbol);
    if (length == 0 || length > KCI_BOOK_SYMBOL_BYTES_MAX) return false;
    for (size_t i = 0; i < length; i++) {
        char c = symbol[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))) return false;
    }
    return true;
}

kc_err kci_book_create(kci_book **out, const char *symbol, uint32_t orders_max)
{
    *out = NULL;
    if (!kci_book_symbol_valid(symbol) || orders_max == 0 || orders_max > KCI_BOOK_ORDERS_MAX)
        return KC_ERR_INVALID_ARGUMENT;
    kci_book *book = calloc(1, sizeof *book);
    if (!book) return KC_ERR_NOMEM;
    uint32_t index_size = 2;
    while (index_size < 2 * orders_max)
        index_size *= 2;
    book->slots = calloc(orders_max, sizeof *book->slots);
    book->index = malloc(index_size * sizeof *book->index);
    book->levels[KCI_BOOK_BUY] = calloc(orders_max, sizeof(book_level));
    book->levels[KCI_BOOK_SELL] = calloc(orders_max, sizeof(book_level));
    if (!book->slots || !book->index || !book->levels[0] || !book->levels[1]) {
        kci_book_destroy(book);
        return KC_ERR_NOMEM;
    }
    memcpy(book->symbol, symbol, strlen(symbol) + 1);
    book->orders_max = orders_max;
    book->index_mask = index_size - 1;
    memset(book->index, 0xff, index_size * sizeof *book->index);
    for (uint32_t i = 0; i < orders_max; i++)
        book->slots[i].next = i + 1 < orders_max ? i + 1 : SLOT_NONE;
    book->free_head = 0;
    *out = book;
    return KC_OK;
}

void kci_book_destroy(kci_book *book)
{
    if (!book) return;
    free(book->slots);
    free(book->index);
    free(book->levels[0]);
    free(book->levels[1]);
    free(book);
}

const char *kci_book_symbol(const kci_book *book)
{
    return book->symbol;
}

/* ---- the id index ---- */

static uint32_t index_home(const kci_book *book, uint64_t order_id)
{
    /* Fibonacci hashing: ids are often sequential, which this spreads. */
    return (uint32_t)((order_id * UINT64_C(0x9E3779B97F4A7C15)) >> 32) & book->index_mask;
}

/* The index position of order_id, or the empty position where it would go. */
static uint32_t index_find(const kci_book *book, uint64_t order_id)
{
    uint32_t position = index_home(book, order_id);
    while (book->index[position] != SLOT_NONE &&
           book->slots[book->index[position]].order_id != order_id)
        position = (position + 1) & book->index_mask;
    return position;
}

static void index_remove(kci_book *book, uint32_t position)
{
    uint32_t hole = position;
    uint32_t probe = (hole + 1) & book->index_mask;
    while (book->index[probe] != SLOT_NONE) {
        uint32_t home = index_home(book, book->slots[book->index[probe]].order_id);
        /* The entry at probe may fill the hole if its home is not in (hole, probe]. */
        bool home_between =
            hole <= probe ? (home > hole && home <= probe) : (home > hole || home <= probe);
        if (!home_between) {
            book->index[hole] = book->index[probe];
            hole = probe;
        }
        probe = (probe + 1) & book->index_mask;
    }
    book->index[hole] = SLOT_NONE;
}

/* ---- levels ---- */

/* True when price a is better than b for side's resting orders. */
static bool price_better(kci_book_side side, int64_t a, int64_t b)
{
    return side == KCI_BOOK_BUY ? a > b : a < b;
}

/* Position of price in the side's level array (best last), or where it
 * would be inserted; *found says which. */
static uint32_t level_search(const kci_book *book, kci_book_side side, int64_t price, bool *found)
{
    const book_level *levels = book->levels[side];
    uint32_t low = 0, high = book->level_count[side];
    while (low < high) {
        uint32_t middle = low + (high - low) / 2;
        if (levels[middle].price == price) {
            *found = true;
            return middle;
        }
        /* Worse prices sit before better ones. */
        if (price_better(side, price, levels[middle].price))
            low = middle + 1;
        else
            high = middle;
    }
    *found = false;
    return low;
}

static void level_remove(kci_book *book, kci_book_side side, uint32_t position)
{
    book_level *levels = book->levels[side];
    assert(levels[position].order_count == 0 && levels[position].quantity == 0);
    memmove(&levels[position], &levels[position + 1],
            (book->level_count[side] - position - 1) * sizeof *levels);
    book->level_count[side]--;
}

/* Unlinks slot from its level's chain and frees it; removes the level when
 * it empties. */
static void slot_release(kci_book *book, uint32_t slot_number, uint32_t level_position)
{
    book_slot *slot = &book->slots[slot_number];
    book_level *level = &book->levels[slot->side][level_position];
    assert(level->price == slot->price);
    if (slot->prev != SLOT_NONE)
        book->slots[slot->prev].next = slot->next;
    else
        level->head = slot->next;
    if (slot->next != SLOT_NONE)
        book->slots[slot->next].prev = slot->prev;
    else
        level->tail = slot->prev;
    level->quantity -= slot->remaining;
    level->order_count--;
    index_remove(book, index_find(book, slot->order_id));
    slot->next = book->free_head;
    book->free_head = slot_number;
    book->order_count--;
    if (level->order_count == 0) level_remove(book, slot->side, level_position);
}

static void order_rest(kci_book *book, const kci_book_order *order, int64_t quantity,
                       uint32_t index_position)
{
    assert(book->free_head != SLOT_NONE && quantity > 0);
    uint32_t slot_number = book->free_head;
    book_slot *slot = &book->slots[slot_number];
    book->free_head = slot->next;
    *slot = (book_slot){.order_id = order->order_id,
                        .owner = order->owner,
                        .price = order->price,
                        .remaining = quantity,
                        .next = SLOT_NONE,
                        .side = order->side};
    bool found;
    uint32_t position = level_search(book, order->side, order->price, &found);
    book_level *levels = book->levels[order->side];
    if (!found) {
        memmove(&levels[position + 1], &levels[position],
                (book->level_count[order->side] - position) * sizeof *levels);
        book->level_count[order->side]++;
        levels[position] =
            (book_level){.price = order->price, .head = SLOT_NONE, .tail = SLOT_NONE};
    }
    book_level *level = &levels[position];
    slot->prev = level->tail;
    if (level->tail != SLOT_NONE)
        book->slots[level->tail].next = slot_number;
    else
        level->head = slot_number;
    level->tail = slot_number;
    level->quantity += quantity;
    level->order_count++;
    book->index[index_position] = slot_number;
    book->order_count++;
}

/* ---- orders ---- */

static kci_book_refusal order_check(const kci_book *book, const kci_book_order *order,
                                    uint32_t *index_position)
{
    if (order->side != KCI_BOOK_BUY && order->side != KCI_BOOK_SELL)
        return KCI_BOOK_BAD_SIDE_OR_KIND;
    if (order->kind != KCI_BOOK_LIMIT && order->kind != KCI_BOOK_MARKET)
        return KCI_BOOK_BAD_SIDE_OR_KIND;
    if (order->quantity <= 0) return KCI_BOOK_QUANTITY_NOT_POSITIVE;
    if (order->quantity > KCI_BOOK_QUANTITY_MAX) return KCI_BOOK_QUANTITY_TOO_LARGE;
    if (order->order_id == 0) return KCI_BOOK_ORDER_ID_ZERO;
    *index_position = index_find(book, order->order_id);
    if (book->index[*index_position] != SLOT_NONE) return KCI_BOOK_ORDER_ID_DUPLICATE;
    if (order->kind == KCI_BOOK_MARKET) return KCI_BOOK_ACCEPTED;
    if (order->price <= 0) return KCI_BOOK_PRICE_NOT_POSITIVE;
    if (order->price > KCI_BOOK_PRICE_MAX) return KCI_BOOK_PRICE_TOO_LARGE;
    int64_t notional;
    if (__builtin_mul_overflow(order->price, order->quantity, &notional))
        return KCI_BOOK_NOTIONAL_OVERFLOW;
    if (book->order_count == book->orders_max) return KCI_BOOK_FULL;
    return KCI_BOOK_ACCEPTED;
}

/* True when the taker may trade at the opposite side's best price. */
static bool crosses(const kci_book_order *order, int64_t best_price)
{
    if (order->kind == KCI_BOOK_MARKET) return true;
    return order->side == KCI_BOOK_BUY ? order->price >= best_price : order->price <= best_price;
}

/* Trades the taker against the opposite side until it is filled, the book
 * no longer crosses, or (market orders) the notional would overflow. */
static void order_match(kci_book *book, const kci_book_order *order, kci_book_trade_fn *on_trade,
                        void *context, kci_book_result *result)
{
    kci_book_side maker_side = order->side == KCI_BOOK_BUY ? KCI_BOOK_SELL : KCI_BOOK_BUY;
    int64_t wanted = order->quantity;
    while (wanted > 0 && book->level_count[maker_side] > 0) {
        uint32_t level_position = book->level_count[maker_side] - 1;
        book_level *level = &book->levels[maker_side][level_position];
        if (!crosses(order, level->price)) break;
        uint32_t slot_number = level->head;
        book_slot *maker = &book->slots[slot_number];
        int64_t quantity = maker->remaining < wanted ? maker->remaining : wanted;
        int64_t notional, total;
        /* A resting order's notional fits (order_check), so only the sum can overflow. */
        if (__builtin_mul_overflow(level->price, quantity, &notional) ||
            __builtin_add_overflow(result->filled_notional, notional, &total))
            break;
        kci_book_trade trade = {.sequence = ++book->trade_sequence,
                                .maker_order_id = maker->order_id,
                                .maker_owner = maker->owner,
                                .taker_order_id = order->order_id,
                                .taker_owner = order->owner,
                                .taker_side = order->side,
                                .price = level->price,
                                .quantity = quantity};
        maker->remaining -= quantity;
        level->quantity -= quantity;
        wanted -= quantity;
        result->filled_quantity += quantity;
        result->filled_notional = total;
        result->trade_count++;
        if (maker->remaining == 0) slot_release(book, slot_number, level_position);
        if (on_trade) on_trade(&trade, context);
    }
}

kci_book_refusal kci_book_submit(kci_book *book, const kci_book_order *order,
                                 kci_book_trade_fn *on_trade, void *context,
                                 kci_book_result *result)
{
    *result = (kci_book_result){0};
    uint32_t index_position = 0;
    kci_book_refusal refusal = order_check(book, order, &index_position);
    if (refusal != KCI_BOOK_ACCEPTED) return refusal;
    order_match(book, order, on_trade, context, result);
    int64_t left = order->quantity - result->filled_quantity;
    assert(left >= 0);
    if (left == 0) return KCI_BOOK_ACCEPTED;
    if (order->kind == KCI_BOOK_MARKET) {
        result->cancelled_quantity = left;
        return KCI_BOOK_ACCEPTED;
    }
    /* Matching may have moved entries of the index: look the position up again. */
    order_rest(book, order, left, index_find(book, order->order_id));
    result->resting_quantity = left;
    return KCI_BOOK_ACCEPTED;
}

kci_book_refusal kci_book_cancel(kci_book *book, uint64_t order_id, kci_book_order *removed)
{
    if (order_id == 0) return KCI_BOOK_ORDER_UNKNOWN;
    uint32_t slot_number = book->index[index_find(book, order_id)];
    if (slot_number == SLOT_NONE) return KCI_BOOK_ORDER_UNKNOWN;
    const book_slot *slot = &book->slots[slot_number];
    if (removed)
        *removed = (kci_book_order){.order_id = slot->order_id,
                                    .owner = slot->owner,
                                    .side = slot->side,
                                    .kind = KCI_BOOK_LIMIT,
                                    .price = slot->price,
                                    .quantity = slot->remaining};
    bool found;
    uint32_t level_position = level_search(book, slot->side, slot->price, &found);
    assert(found);
    slot_release(book, slot_number, level_position);
    return KCI_BOOK_ACCEPTED;
}

int64_t kci_book_remaining(const kci_book *book, uint64_t order_id)
{
    if (order_id == 0) return 0;
    uint32_t slot_number = book->index[index_find(book, order_id)];
    return slot_number == SLOT_NONE ? 0 : book->slots[slot_number].remaining;
}

uint32_t kci_book_depth(const kci_book *book, kci_book_side side, kci_book_level_view *levels,
                        uint32_t levels_max)
{
    uint32_t count = book->level_count[side] < levels_max ? book->level_count[side] : levels_max;
    for (uint32_t i = 0; i < count; i++) {
        const book_level *level = &book->levels[side][book->level_count[side] - 1 - i];
        levels[i] = (kci_book_level_view){
            .price = level->price, .quantity = level->quantity, .order_count = level->order_count};
    }
    return count;
}

int64_t kci_book_best(const kci_book *book, kci_book_side side)
{
    uint32_t count = book->level_count[side];
    return count == 0 ? 0 : book->levels[side][count - 1].price;
}

uint32_t kci_book_order_count(const kci_book *book)
{
    return book->order_count;
}

uint64_t kci_book_trade_count(const kci_book *book)
{
    return book->trade_sequence;
}

/* ---- checks and messages ---- */

static bool level_check(const kci_book *book, kci_book_side side, const book_level *level,
                        uint32_t *orders_seen)
{
    int64_t quantity = 0;
    uint32_t count = 0, previous = SLOT_NONE;
    for (uint32_t s = level->head; s != SLOT_NONE; s = book->slots[s].next) {
        const book_slot *slot = &book->slots[s];
        if (count++ >= book->orders_max) return false; /* a cycle */
        if (slot->prev != previous || slot->side != side || slot->price != level->price ||
            slot->remaining <= 0)
            return false;
        if (book->index[index_find(book, slot->order_id)] != s) return false;
        quantity += slot->remaining;
        previous = s;
    }
    *orders_seen += count;
    return previous == level->tail && count == level->order_count && count > 0 &&
           quantity == level->quantity;
}

bool kci_book_check(const kci_book *book)
{
    uint32_t orders_seen = 0;
    for (int side = 0; side < 2; side++) {
        const book_level *levels = book->levels[side];
        for (uint32_t i = 0; i < book->level_count[side]; i++) {
            if (i > 0 && !price_better((kci_book_side)side, levels[i].price, levels[i - 1].price))
                return false;
            if (!level_check(book, (kci_book_side)side, &levels[i], &orders_seen)) return false;
        }
    }
    uint32_t indexed = 0;
    for (uint32_t i = 0; i <= book->index_mask; i++)
        indexed += book->index[i] != SLOT_NONE;
    int64_t bid = kci_book_best(book, KCI_BOOK_BUY), ask = kci_book_best(book, KCI_BOOK_SELL);
    bool crossed = bid != 0 && ask != 0 && bid >= ask;
    return !crossed && orders_seen == book->order_count && indexed == book->order_count;
}

const char *kci_book_refusal_message(kci_book_refusal refusal)
{
    switch (refusal) {
    case KCI_BOOK_ACCEPTED: return "accepted";
    case KCI_BOOK_QUANTITY_NOT_POSITIVE: return "quantity must be a positive integer";
    case KCI_BOOK_QUANTITY_TOO_LARGE: return "quantity overflow: more than 10^12";
    case KCI_BOOK_PRICE_NOT_POSITIVE: return "price must be a positive integer";
    case KCI_BOOK_PRICE_TOO_LARGE: return "price overflow: more than 10^12";
    case KCI_BOOK_NOTIONAL_OVERFLOW: return "price x quantity overflows a 64-bit amount";
    case KCI_BOOK_ORDER_ID_ZERO: return "order id must not be 0";
    case KCI_BOOK_ORDER_ID_DUPLICATE: return "an order with this id is already in the book";
    case KCI_BOOK_FULL: return "the symbol's book is full";
    case KCI_BOOK_ORDER_UNKNOWN: return "no such order in the book";
    case KCI_BOOK_BAD_SIDE_OR_KIND: return "side must be buy or sell, type limit or market";
    }
    return "unknown refusal";
}
