/* audit.c - the ledger's self-check (query.h), over one read snapshot.
 *
 * Passes, each linear in what it reads:
 *   1. transfers: every signature verifies with its "from" key; an issue
 *      is signed by the mint; an exchange goes to the mint.
 *   2. coins: a live coin's last hop goes to its owner and its trail
 *      chains: hop 0 is the mint's issue, each hop's "from" is the previous
 *      hop's "to", each hop's transfer lists the coin at its denomination;
 *      live coins' denominations add up to the supply table.
 *   3. references: each entry wallet -> coin names a live coin owned by
 *      that wallet, and there are as many entries as live coins: no coin
 *      has two owners, none has none (the reference count is exactly 1).
 *   4. balances: each wallet's balance is the sum of its coins, and the
 *      balances and the value under pending holds add up to the total
 *      supply.
 *   5. holds (store_hold.c): each pending hold's coins are held for its
 *      payer and point back at it, each held coin is in exactly one
 *      pending hold (coins held = entries coin -> hold = coins of pending
 *      holds), and the held value is what pass 2 counted.
 * Signatures are checked once per transfer (pass 1), not once per hop. */
#include "query.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct audit {
    kci_ledger_read *read;
    const uint8_t *mint; /* the mint's public key */
    uint64_t supply;     /* the total supply as of the snapshot */
    json_t *problems;
    uint64_t problem_count;
    uint64_t transfers_verified;
    uint64_t coins_live, coins_retired, coins_reaped, coins_held;
    uint64_t live_value; /* the sum of live (and held) coins' denominations */
    uint64_t held_value; /* held coins' */
    kci_ledger_holds_summary holds;
    uint64_t hops_checked;
    uint64_t references;
    uint64_t wallets;
    uint64_t balances_total;
    uint64_t supply_table_total;
    json_t *supply_by_denomination; /* "<denomination>": live coins, the first ones */
} audit;

static void problem(audit *state, const char *format, ...) __attribute__((format(printf, 2, 3)));

static void problem(audit *state, const char *format, ...)
{
    state->problem_count++;
    if (json_array_size(state->problems) >= KCI_LEDGER_AUDIT_PROBLEMS_MAX) return;
    char text[KCI_LEDGER_ERROR_BYTES_MAX];
    va_list arguments;
    va_start(arguments, format);
    vsnprintf(text, sizeof text, format, arguments);
    va_end(arguments);
    json_array_append_new(state->problems, json_string(text));
}

/* The end of a walk: KC_OK, or why the read failed. */
static kc_err walk_end(kci_ledger_cursor *cursor, kc_err err)
{
    kci_ledger_cursor_close(cursor);
    return err == KC_ERR_NOT_FOUND ? KC_OK : err;
}

/* Pass 1. */
static kc_err audit_transfers(audit *state)
{
    kci_ledger_cursor *cursor = NULL;
    const uint8_t *mint = state->mint;
    uint8_t key[KCI_LEDGER_ID_BYTES];
    kc_err err = kci_ledger_table_open(&cursor, state->read, KCI_LEDGER_TABLE_TRANSFERS);
    while (err == KC_OK || err == KC_ERR_CORRUPT) {
        err = kci_ledger_transfers_next(cursor, key);
        if (err != KC_OK && err != KC_ERR_CORRUPT) break;
        kci_ledger_transfer transfer;
        char id[37];
        kci_ledger_id_text(id, key);
        if (err == KC_ERR_CORRUPT ||
            kci_ledger_transfer_get(state->read, key, &transfer, NULL) != KC_OK) {
            problem(state, "transfer %s: unreadable record", id);
            err = KC_OK;
            continue;
        }
        bool issue = transfer.kind == KCI_LEDGER_KIND_ISSUE;
        if (issue != (memcmp(transfer.from, mint, KCI_LEDGER_KEY_BYTES) == 0))
            problem(state, "transfer %s: %s", id,
                    issue ? "an issue not by the mint" : "the mint as a payer");
        if (transfer.kind == KCI_LEDGER_KIND_EXCHANGE &&
            memcmp(transfer.to, mint, KCI_LEDGER_KEY_BYTES) != 0)
            problem(state, "exchange %s: not paid to the mint", id);
        if (!kci_ledger_verify(&transfer, transfer.from))
            problem(state, "transfer %s: the signature does not verify", id);
        else
            state->transfers_verified++;
        kci_ledger_transfer_free(&transfer);
    }
    return walk_end(cursor, err);
}

static bool transfer_lists(const kci_ledger_transfer *transfer,
                           const uint8_t coin[KCI_LEDGER_ID_BYTES], uint64_t denomination)
{
    kci_ledger_coin probe = {.denomination = 0};
    memcpy(probe.id, coin, KCI_LEDGER_ID_BYTES);
    for (uint32_t low = 0, high = transfer->coin_count; low < high;) {
        uint32_t middle = low + (high - low) / 2;
        int order = memcmp(transfer->coins[middle].id, coin, KCI_LEDGER_ID_BYTES);
        if (order == 0) return transfer->coins[middle].denomination == denomination;
        if (order < 0)
            low = middle + 1;
        else
            high = middle;
    }
    return false;
}

/* The trail of one coin (pass 2). */
static void audit_trail(audit *state, const uint8_t coin[KCI_LEDGER_ID_BYTES],
                        const kci_ledger_coin_record *record, const char *coin_text)
{
    uint8_t previous_to[KCI_LEDGER_KEY_BYTES];
    for (uint32_t hop = 0; hop < record->hop_count; hop++) {
        uint8_t transfer_id[KCI_LEDGER_ID_BYTES];
        kci_ledger_transfer transfer;
        if (kci_ledger_trail_hop(state->read, coin, hop, transfer_id) != KC_OK ||
            kci_ledger_transfer_get(state->read, transfer_id, &transfer, NULL) != KC_OK) {
            problem(state, "coin %s: hop %" PRIu32 " is missing", coin_text, hop);
            return;
        }
        state->hops_checked++;
        if (hop == 0 && transfer.kind != KCI_LEDGER_KIND_ISSUE)
            problem(state, "coin %s: its first hop is not the mint's issue", coin_text);
        if (hop > 0 && memcmp(transfer.from, previous_to, KCI_LEDGER_KEY_BYTES) != 0)
            problem(state, "coin %s: hop %" PRIu32 " is paid by a wallet that did not hold it",
                    coin_text, hop);
        if (!transfer_lists(&transfer, coin, record->denomination))
            problem(state, "coin %s: hop %" PRIu32 "'s transfer does not list it", coin_text, hop);
        memcpy(previous_to, transfer.to, KCI_LEDGER_KEY_BYTES);
        kci_ledger_transfer_free(&transfer);
    }
    if (record->hop_count == 0 || memcmp(previous_to, record->owner, KCI_LEDGER_KEY_BYTES) != 0)
        problem(state, "coin %s: its trail does not end at its owner", coin_text);
}

/* Pass 2. */
static kc_err audit_coins(audit *state)
{
    kci_ledger_cursor *cursor = NULL;
    uint8_t coin[KCI_LEDGER_ID_BYTES];
    kc_err err = kci_ledger_table_open(&cursor, state->read, KCI_LEDGER_TABLE_COINS);
    while (err == KC_OK || err == KC_ERR_CORRUPT) {
        kci_ledger_coin_record record;
        err = kci_ledger_coins_next(cursor, coin, &record);
        if (err != KC_OK && err != KC_ERR_CORRUPT) break;
        char coin_text[37];
        kci_ledger_id_text(coin_text, coin);
        if (err == KC_ERR_CORRUPT) {
            problem(state, "coin %s: unreadable record", coin_text);
            continue;
        }
        if (record.state == KCI_LEDGER_COIN_LIVE) {
            state->coins_live++;
            state->live_value += record.denomination;
        } else if (record.state == KCI_LEDGER_COIN_HELD) {
            state->coins_held++; /* out of every wallet, still in the supply */
            state->live_value += record.denomination;
            state->held_value += record.denomination;
        } else if (record.state == KCI_LEDGER_COIN_RETIRED) {
            state->coins_retired++;
        } else {
            state->coins_reaped++;
            continue; /* its trail was freed */
        }
        audit_trail(state, coin, &record, coin_text);
    }
    return walk_end(cursor, err);
}

/* Compares one wallet's coins with its stored balance (pass 3 and 4). */
static void wallet_done(audit *state, const uint8_t wallet[KCI_LEDGER_KEY_BYTES], uint64_t sum)
{
    uint64_t balance = kci_ledger_balance_get(state->read, wallet);
    char text[KCI_LEDGER_ADDRESS_TEXT_BYTES + 1];
    kci_ledger_hex(text, wallet, KCI_LEDGER_KEY_BYTES);
    if (balance != sum)
        problem(state, "wallet %.16s...: balance %" PRIu64 " but its coins are worth %" PRIu64,
                text, balance, sum);
    state->wallets++;
}

/* Pass 3. */
static kc_err audit_references(audit *state)
{
    kci_ledger_cursor *cursor = NULL;
    uint8_t wallet[KCI_LEDGER_KEY_BYTES], key[KCI_LEDGER_KEY_BYTES], coin[KCI_LEDGER_ID_BYTES];
    uint64_t sum = 0;
    bool have_wallet = false;
    kc_err err = kci_ledger_table_open(&cursor, state->read, KCI_LEDGER_TABLE_REFERENCES);
    while (err == KC_OK || err == KC_ERR_CORRUPT) {
        err = kci_ledger_references_next(cursor, key, coin);
        if (err != KC_OK) continue; /* the end stops; an entry of the wrong size is skipped */
        if (have_wallet && memcmp(wallet, key, KCI_LEDGER_KEY_BYTES) != 0) {
            wallet_done(state, wallet, sum);
            sum = 0;
        }
        memcpy(wallet, key, KCI_LEDGER_KEY_BYTES);
        have_wallet = true;
        state->references++;
        kci_ledger_coin_record record;
        char coin_text[37];
        kci_ledger_id_text(coin_text, coin);
        if (kci_ledger_coin_get(state->read, coin, &record) != KC_OK ||
            record.state != KCI_LEDGER_COIN_LIVE ||
            memcmp(record.owner, wallet, KCI_LEDGER_KEY_BYTES) != 0)
            problem(state, "coin %s: referenced by a wallet that does not own it", coin_text);
        else
            sum += record.denomination;
    }
    if (have_wallet) wallet_done(state, wallet, sum);
    if (state->references != state->coins_live)
        problem(state, "%" PRIu64 " references for %" PRIu64 " live coins: a coin has %s owner",
                state->references, state->coins_live,
                state->references > state->coins_live ? "a second" : "no");
    return walk_end(cursor, err);
}

/* The stored balances: their sum and how many. */
static kc_err sum_balances(audit *state, uint64_t *entries)
{
    kci_ledger_cursor *cursor = NULL;
    uint8_t wallet[KCI_LEDGER_KEY_BYTES];
    uint64_t balance = 0;
    kc_err err = kci_ledger_table_open(&cursor, state->read, KCI_LEDGER_TABLE_BALANCES);
    while (err == KC_OK || err == KC_ERR_CORRUPT) {
        err = kci_ledger_balances_next(cursor, wallet, &balance);
        if (err != KC_OK) continue; /* an entry of the wrong size is not counted */
        state->balances_total += balance;
        (*entries)++;
    }
    return walk_end(cursor, err);
}

/* The supply table: live coins times their denomination, and the first
 * denominations listed in the reply. */
static kc_err sum_supply(audit *state)
{
    kci_ledger_cursor *cursor = NULL;
    uint64_t denomination = 0, count = 0;
    kc_err err = kci_ledger_table_open(&cursor, state->read, KCI_LEDGER_TABLE_SUPPLY);
    while (err == KC_OK || err == KC_ERR_CORRUPT) {
        err = kci_ledger_supply_next(cursor, &denomination, &count);
        if (err != KC_OK) continue;
        if (json_object_size(state->supply_by_denomination) < KCI_LEDGER_AUDIT_DENOMINATIONS_MAX) {
            char name[24];
            snprintf(name, sizeof name, "%" PRIu64, denomination);
            json_object_set_new(state->supply_by_denomination, name,
                                json_integer((json_int_t)count));
        }
        state->supply_table_total += count * denomination;
    }
    return walk_end(cursor, err);
}

/* Pass 4. */
static kc_err audit_totals(audit *state)
{
    uint64_t balance_entries = 0;
    kc_err err = sum_balances(state, &balance_entries);
    if (err == KC_OK) err = sum_supply(state);
    if (err != KC_OK) return err;
    if (balance_entries != state->wallets)
        problem(state, "%" PRIu64 " balances stored for %" PRIu64 " wallets holding coins",
                balance_entries, state->wallets);
    uint64_t supply = state->supply;
    if (state->balances_total + state->held_value != supply ||
        state->supply_table_total != supply || state->live_value != supply)
        problem(state,
                "total supply %" PRIu64 ", balances add up to %" PRIu64 " (and %" PRIu64
                " held), live coins to %" PRIu64 ", the supply table to %" PRIu64,
                supply, state->balances_total, state->held_value, state->live_value,
                state->supply_table_total);
    return KC_OK;
}

static void hold_problem(void *context, const char *text)
{
    problem(context, "%s", text);
}

/* Pass 5. */
static kc_err audit_holds(audit *state)
{
    kci_ledger_holds_summary *holds = &state->holds;
    kc_err err = kci_ledger_holds_audit(state->read, holds, hold_problem, state);
    if (err != KC_OK) return err;
    if (holds->coins_held != state->coins_held || holds->held_rows != state->coins_held)
        problem(state,
                "%" PRIu64 " coins held, %" PRIu64 " entries coin -> hold, %" PRIu64
                " coins in pending holds: a held coin has not exactly one live hold",
                state->coins_held, holds->held_rows, holds->coins_held);
    if (holds->value_held != state->held_value)
        problem(state, "pending holds hold %" PRIu64 " but the held coins are worth %" PRIu64,
                holds->value_held, state->held_value);
    return KC_OK;
}

json_t *kci_ledger_audit(kci_ledger_read *read, kci_ledger_outcome *outcome)
{
    (void)outcome;
    const kci_ledger_store *store = kci_ledger_read_store(read);
    kci_ledger_counters counters;
    audit state = {.read = read,
                   .mint = kci_ledger_store_mint_key(store),
                   .problems = json_array(),
                   .supply_by_denomination = json_object()};
    kc_err err = kci_ledger_counters_get(read, &counters);
    state.supply = counters.supply_total;
    if (err == KC_OK && (state.problems == NULL || state.supply_by_denomination == NULL))
        err = KC_ERR_NOMEM;
    if (err == KC_OK) err = audit_transfers(&state);
    if (err == KC_OK) err = audit_coins(&state);
    if (err == KC_OK) err = audit_references(&state);
    if (err == KC_OK) err = audit_totals(&state);
    if (err == KC_OK) err = audit_holds(&state);
    if (err != KC_OK) {
        json_decref(state.problems);
        json_decref(state.supply_by_denomination);
        return NULL;
    }
    json_t *body = json_pack(
        "{s:b, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:s, s:I, s:o, s:o}", "ok",
        state.problem_count == 0, "supply", (json_int_t)state.supply, "balances_total",
        (json_int_t)state.balances_total, "wallets", (json_int_t)state.wallets, "coins_live",
        (json_int_t)state.coins_live, "coins_retired", (json_int_t)state.coins_retired,
        "coins_reaped", (json_int_t)state.coins_reaped, "transfers_verified",
        (json_int_t)state.transfers_verified, "hops_checked", (json_int_t)state.hops_checked,
        "references", (json_int_t)state.references, "mint", kci_ledger_store_mint_address(store),
        "problem_count", (json_int_t)state.problem_count, "problems", state.problems,
        "supply_by_denomination", state.supply_by_denomination);
    if (body != NULL)
        json_object_set_new(
            body, "holds",
            json_pack("{s:I, s:I, s:I, s:I}", "pending", (json_int_t)state.holds.holds_pending,
                      "settled", (json_int_t)state.holds.holds_settled, "coins_held",
                      (json_int_t)state.coins_held, "value_held", (json_int_t)state.held_value));
    return body;
}
