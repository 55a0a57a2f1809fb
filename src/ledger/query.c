/* query.c - balance, coins, trail, history and transfer.get (query.h).
 *
 * Sizes: a coin entry is at most COIN_JSON_BYTES_MAX bytes of JSON and a
 * history edge at most EDGE_JSON_BYTES_MAX, so a page holds as many as fit
 * in the fabric's max_payload without building the text twice. */
#include "query.h"

#include <inttypes.h>
#include <string.h>

enum {
    COIN_JSON_BYTES_MAX = 80,  /* {"id":"<36>","denomination":<16 digits>}, */
    EDGE_JSON_BYTES_MAX = 300, /* two addresses, an id, two integers and the names */
    TRAIL_HOPS_MAX = 100000,   /* a longer trail is cut (the reply says so) */
};

json_t *kci_ledger_address_json(const uint8_t address[KCI_LEDGER_KEY_BYTES])
{
    char text[KCI_LEDGER_ADDRESS_TEXT_BYTES + 1];
    kci_ledger_hex(text, address, KCI_LEDGER_KEY_BYTES);
    return json_string(text);
}

json_t *kci_ledger_id_json(const uint8_t id[KCI_LEDGER_ID_BYTES])
{
    char text[37];
    kci_ledger_id_text(text, id);
    return json_string(text);
}

const char *kci_ledger_kind_name(uint8_t kind)
{
    switch (kind) {
    case KCI_LEDGER_KIND_ISSUE: return "issue";
    case KCI_LEDGER_KIND_TRANSFER: return "transfer";
    case KCI_LEDGER_KIND_EXCHANGE: return "exchange";
    case KCI_LEDGER_KIND_HOLD: return "hold";
    default: return "unknown";
    }
}

json_t *kci_ledger_coins_json(const kci_ledger_coin *coins, uint32_t count)
{
    json_t *list = json_array();
    for (uint32_t index = 0; list != NULL && index < count; index++)
        json_array_append_new(list,
                              json_pack("{s:o, s:I}", "id", kci_ledger_id_json(coins[index].id),
                                        "denomination", (json_int_t)coins[index].denomination));
    return list;
}

static uint32_t page_items(size_t bytes_max, size_t item_bytes, uint32_t limit)
{
    size_t fit = bytes_max > KCI_LEDGER_REPLY_RESERVE_BYTES
                     ? (bytes_max - KCI_LEDGER_REPLY_RESERVE_BYTES) / item_bytes
                     : 1;
    if (fit < 1) fit = 1;
    return fit < limit ? (uint32_t)fit : limit;
}

json_t *kci_ledger_query_balance(kci_ledger_read *read, const kci_ledger_request *request,
                                 kci_ledger_outcome *outcome)
{
    (void)outcome;
    size_t coin_count = 0;
    (void)kci_ledger_wallet_coin_count(read, request->wallet, &coin_count); /* 0 if unreadable */
    return json_pack("{s:o, s:I, s:I, s:s}", "wallet", kci_ledger_address_json(request->wallet),
                     "balance", (json_int_t)kci_ledger_balance_get(read, request->wallet), "coins",
                     (json_int_t)coin_count, "mint",
                     kci_ledger_store_mint_address(kci_ledger_read_store(read)));
}

/* The wallet's coins in id order, from after request->after. */
json_t *kci_ledger_query_coins(kci_ledger_read *read, const kci_ledger_request *request,
                               size_t bytes_max, kci_ledger_outcome *outcome)
{
    (void)outcome;
    uint32_t limit = page_items(bytes_max, COIN_JSON_BYTES_MAX, request->limit);
    json_t *coins = json_array();
    kci_ledger_cursor *cursor = NULL;
    kc_err err = kci_ledger_wallet_coins_open(&cursor, read, request->wallet,
                                              request->has_after ? request->after : NULL);
    bool more = false;
    kci_ledger_coin coin = {0};
    while (err == KC_OK && coins != NULL &&
           (err = kci_ledger_wallet_coins_next(cursor, coin.id)) == KC_OK) {
        if (json_array_size(coins) == limit) {
            more = true;
            break;
        }
        kci_ledger_coin_record record;
        coin.denomination = 0;
        if (kci_ledger_coin_get(read, coin.id, &record) == KC_OK)
            coin.denomination = record.denomination;
        json_t *one = kci_ledger_coins_json(&coin, 1);
        json_array_extend(coins, one);
        json_decref(one);
    }
    kci_ledger_cursor_close(cursor);
    json_t *last = json_array_get(coins, json_array_size(coins) - 1);
    json_t *next = more ? json_incref(json_object_get(last, "id")) : json_null();
    return json_pack(
        "{s:o, s:I, s:o, s:o, s:s}", "wallet", kci_ledger_address_json(request->wallet), "balance",
        (json_int_t)kci_ledger_balance_get(read, request->wallet), "coins", coins, "next", next,
        "mint", kci_ledger_store_mint_address(kci_ledger_read_store(read)));
}

static const char *state_name(uint8_t state)
{
    switch (state) {
    case KCI_LEDGER_COIN_LIVE: return "live";
    case KCI_LEDGER_COIN_RETIRED: return "retired";
    case KCI_LEDGER_COIN_REAPED: return "reaped";
    case KCI_LEDGER_COIN_HELD: return "held";
    default: return "unknown";
    }
}

/* A hold's state and outcome, for the trail and transfer.get. */
static void hold_json_add(kci_ledger_read *read, json_t *hop, const kci_ledger_transfer *transfer)
{
    kci_ledger_hold_status status;
    if (transfer->kind != KCI_LEDGER_KIND_HOLD ||
        kci_ledger_hold_get(read, transfer->id, &status) != KC_OK)
        return;
    json_object_set_new(hop, "expires_ms", json_integer((json_int_t)transfer->expires_ms));
    json_object_set_new(hop, "hold",
                        json_pack("{s:s, s:I}", "state", kci_ledger_hold_state_name(status.state),
                                  "settled_ms", (json_int_t)status.settled_ms));
}

/* A stored transfer as JSON: what a verifier needs to check its signature. */
static json_t *hop_json(const kci_ledger_transfer *transfer, const char *paid_request)
{
    json_t *hop = json_pack(
        "{s:o, s:s, s:o, s:o, s:I, s:I, s:o}", "transfer", kci_ledger_id_json(transfer->id), "kind",
        kci_ledger_kind_name(transfer->kind), "from", kci_ledger_address_json(transfer->from), "to",
        kci_ledger_address_json(transfer->to), "amount", (json_int_t)transfer->amount, "time_ms",
        (json_int_t)transfer->time_ms, "coins",
        kci_ledger_coins_json(transfer->coins, transfer->coin_count));
    char signature[KCI_LEDGER_SIGNATURE_TEXT_BYTES + 1];
    kci_ledger_hex(signature, transfer->signature, KCI_LEDGER_SIGNATURE_BYTES);
    json_object_set_new(hop, "signature", json_string(signature));
    if (transfer->kind == KCI_LEDGER_KIND_EXCHANGE) {
        json_t *asked = json_array();
        for (uint32_t index = 0; index < transfer->denomination_count; index++)
            json_array_append_new(asked, json_integer((json_int_t)transfer->denominations[index]));
        json_object_set_new(hop, "denominations", asked);
    }
    if (paid_request != NULL && paid_request[0] != '\0')
        json_object_set_new(hop, "paid_request", json_string(paid_request));
    return hop;
}

json_t *kci_ledger_query_trail(kci_ledger_read *read, const kci_ledger_request *request,
                               kci_ledger_outcome *outcome)
{
    kci_ledger_coin_record record;
    char coin_text[37];
    kci_ledger_id_text(coin_text, request->coin);
    kc_err err = kci_ledger_coin_get(read, request->coin, &record);
    if (err == KC_ERR_NOT_FOUND) {
        kci_ledger_refuse_with(outcome, KCI_LEDGER_COIN_UNKNOWN, "unknown coin %s", coin_text);
        return NULL;
    }
    if (err != KC_OK) return NULL;
    json_t *hops = json_array();
    for (uint32_t hop = 0; hops != NULL && hop < record.hop_count && hop < TRAIL_HOPS_MAX; hop++) {
        uint8_t transfer_id[KCI_LEDGER_ID_BYTES];
        kci_ledger_transfer transfer;
        if (kci_ledger_trail_hop(read, request->coin, hop, transfer_id) != KC_OK ||
            kci_ledger_transfer_get(read, transfer_id, &transfer, NULL) != KC_OK)
            break; /* reaped */
        json_t *hop_object = hop_json(&transfer, NULL);
        hold_json_add(read, hop_object, &transfer);
        json_array_append_new(hops, hop_object);
        kci_ledger_transfer_free(&transfer);
    }
    json_t *reply = json_pack(
        "{s:s, s:I, s:s, s:o, s:o, s:I, s:s, s:o}", "coin", coin_text, "denomination",
        (json_int_t)record.denomination, "state", state_name(record.state), "owner",
        record.state == KCI_LEDGER_COIN_LIVE ? kci_ledger_address_json(record.owner) : json_null(),
        "last_transfer", kci_ledger_id_json(record.last_transfer), "hop_count",
        (json_int_t)record.hop_count, "mint",
        kci_ledger_store_mint_address(kci_ledger_read_store(read)), "hops", hops);
    uint8_t hold[KCI_LEDGER_ID_BYTES];
    if (reply != NULL && record.state == KCI_LEDGER_COIN_HELD &&
        kci_ledger_held_by(read, request->coin, hold) == KC_OK) {
        json_object_set_new(reply, "held_by", kci_ledger_id_json(hold));
        json_object_set_new(reply, "held_for", kci_ledger_address_json(record.owner));
    }
    return reply;
}

json_t *kci_ledger_query_transfer(kci_ledger_read *read, const kci_ledger_request *request,
                                  kci_ledger_outcome *outcome)
{
    kci_ledger_transfer transfer;
    char paid_request[37] = {0};
    kc_err err = kci_ledger_transfer_get(read, request->transfer, &transfer, paid_request);
    if (err == KC_ERR_NOT_FOUND) {
        char id[37];
        kci_ledger_id_text(id, request->transfer);
        kci_ledger_refuse_with(outcome, KCI_LEDGER_TRANSFER_UNKNOWN, "unknown transfer %s", id);
        return NULL;
    }
    if (err != KC_OK) return NULL;
    json_t *reply = hop_json(&transfer, paid_request);
    if (reply != NULL) hold_json_add(read, reply, &transfer);
    kci_ledger_transfer_free(&transfer);
    return reply;
}

/* The contract with the economics tools (docs/ledger.md, "history"). */
json_t *kci_ledger_query_history(kci_ledger_read *read, const kci_ledger_request *request,
                                 size_t bytes_max, kci_ledger_outcome *outcome)
{
    (void)outcome;
    uint32_t limit = page_items(bytes_max, EDGE_JSON_BYTES_MAX, request->limit);
    json_t *edges = json_array();
    kci_ledger_cursor *cursor = NULL;
    kc_err err = KC_ERR_NOT_FOUND; /* after the last possible sequence: nothing */
    if (!request->has_after || request->after_sequence < UINT64_MAX)
        err = kci_ledger_history_open(&cursor, read,
                                      request->has_after ? request->after_sequence + 1 : 0);
    uint64_t last_sequence = 0, sequence = 0;
    bool more = false;
    kci_ledger_edge edge;
    while ((err == KC_OK || err == KC_ERR_CORRUPT) && edges != NULL) {
        err = kci_ledger_history_next(cursor, &sequence, &edge);
        if (err != KC_OK) continue; /* an unreadable edge is skipped; the end stops */
        if (json_array_size(edges) == limit) {
            more = true;
            break;
        }
        last_sequence = sequence;
        if (edge.time_ms < request->since_ms) continue;
        static const uint8_t zero[KCI_LEDGER_KEY_BYTES] = {0};
        json_t *from = memcmp(edge.from, zero, sizeof zero) == 0
                           ? json_string(KCI_LEDGER_MINT_NAME)
                           : kci_ledger_address_json(edge.from);
        json_array_append_new(edges, json_pack("{s:o, s:o, s:I, s:I, s:o}", "from", from, "to",
                                               kci_ledger_address_json(edge.to), "amount",
                                               (json_int_t)edge.amount, "time_ms",
                                               (json_int_t)edge.time_ms, "transfer",
                                               kci_ledger_id_json(edge.transfer)));
    }
    kci_ledger_cursor_close(cursor);
    char cursor_text[24];
    snprintf(cursor_text, sizeof cursor_text, "%" PRIu64, last_sequence);
    return json_pack("{s:o, s:o}", "edges", edges, "next",
                     more ? json_string(cursor_text) : json_null());
}
