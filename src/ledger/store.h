/* store.h - the ledger's state (docs/ledger.md, "LMDB layout") and its
 * transitions: issue, transfer, exchange, payment claim, reap. The only
 * way to the storage engine: nothing outside store*.c sees LMDB, and every
 * failure comes out as a kc_err with its detail in kc_last_error() (the
 * calling thread's).
 *
 * Reads happen in a kci_ledger_read: one snapshot of committed state,
 * taken from any thread, that never blocks the writer; iterators walk a
 * table in key order inside it.
 *
 * Writes happen in a kci_ledger_batch: one write transaction that the
 * service's single writer thread fills with many requests (group commit)
 * and commits once; a request is refused (its outcome says why) before it
 * writes anything, so a refusal never leaves half a transfer behind, and a
 * storage failure aborts the whole batch.
 *
 * The singleton rule lives here: a coin record names one owner, the
 * wallet index ("owned") holds exactly one entry for each live coin and
 * none for a retired one: a coin's reference count is 0 or 1. Every move
 * deletes the sender's reference and adds the receiver's in the same
 * transaction; a reference that is missing or doubled is reported as
 * corruption (KC_ERR_CORRUPT) and aborts the batch. audit.c checks the
 * same over the whole state. */
#ifndef KCI_LEDGER_STORE_H
#define KCI_LEDGER_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kingcobra/err.h"
#include "ledger/codec.h"
#include "ledger/result.h"
#include "ledger/wallet.h"

enum {
    KCI_LEDGER_COIN_LIVE = 1,
    KCI_LEDGER_COIN_RETIRED = 2, /* exchanged: reference count 0, waiting for the reaper */
    KCI_LEDGER_COIN_REAPED = 3,  /* the reaper freed its trail; the id stays spent */
    KCI_LEDGER_COIN_HELD = 4,    /* under a pending hold: out of the payer's wallet, still its */
};

/* A hold's life (store_hold.c): pending until posted, voided or expired. */
enum {
    KCI_LEDGER_HOLD_PENDING = 1,
    KCI_LEDGER_HOLD_POSTED_STATE = 2,
    KCI_LEDGER_HOLD_VOIDED_STATE = 3,
    KCI_LEDGER_HOLD_EXPIRED_STATE = 4,
};

typedef struct kci_ledger_hold_status {
    uint8_t state;
    int64_t expires_ms;
    int64_t settled_ms; /* the ledger's clock at the post, void or expiry; 0 while pending */
} kci_ledger_hold_status;

#define KCI_LEDGER_DATA_FILE "data.mdb"
#define KCI_LEDGER_MINT_KEY_FILE "mint.key"
#define KCI_LEDGER_LOCK_FILE "ledger.lock"
#define KCI_LEDGER_MINT_NAME "mint" /* "from" of issues in history */

typedef struct kci_ledger_coin_record {
    uint64_t denomination;
    uint8_t owner[KCI_LEDGER_KEY_BYTES]; /* the mint's address once retired */
    uint8_t last_transfer[KCI_LEDGER_ID_BYTES];
    int64_t moved_ms; /* the last hop's time */
    uint32_t hop_count;
    uint8_t state;
    uint8_t reserved[3];
} kci_ledger_coin_record;

typedef struct kci_ledger_edge {
    uint8_t from[KCI_LEDGER_KEY_BYTES]; /* all zero: the mint */
    uint8_t to[KCI_LEDGER_KEY_BYTES];
    uint64_t amount;
    int64_t time_ms;
    uint8_t transfer[KCI_LEDGER_ID_BYTES];
} kci_ledger_edge;

/* The counters kept beside the tables ("meta"). */
typedef struct kci_ledger_counters {
    uint64_t history_next; /* the sequence the next history edge gets */
    uint64_t supply_total; /* the sum of live coins' denominations */
} kci_ledger_counters;

typedef struct kci_ledger_store kci_ledger_store;
typedef struct kci_ledger_read kci_ledger_read;
typedef struct kci_ledger_cursor kci_ledger_cursor;
typedef struct kci_ledger_batch kci_ledger_batch;

/* Opens (creating) the ledger in directory: locks it against a second
 * ledger, opens LMDB with a map of map_bytes, loads or creates the mint key
 * (0600). */
kc_err kci_ledger_store_open(kci_ledger_store **out, const char *directory, uint64_t map_bytes,
                             char *error, size_t error_size);
void kci_ledger_store_close(kci_ledger_store *store);
const char *kci_ledger_store_mint_address(const kci_ledger_store *store);
const uint8_t *kci_ledger_store_mint_key(const kci_ledger_store *store); /* public, 32 bytes */

/* ---- reads (any thread) ---------------------------------------------------- */

kc_err kci_ledger_read_begin(kci_ledger_read **out, kci_ledger_store *store);
void kci_ledger_read_end(kci_ledger_read *read); /* NULL is fine */
const kci_ledger_store *kci_ledger_read_store(const kci_ledger_read *read);
/* The counters as of the snapshot. */
kc_err kci_ledger_counters_get(kci_ledger_read *read, kci_ledger_counters *out);
/* KC_ERR_NOT_FOUND for an unknown coin, KC_ERR_CORRUPT for a bad record. */
kc_err kci_ledger_coin_get(kci_ledger_read *read, const uint8_t id[KCI_LEDGER_ID_BYTES],
                           kci_ledger_coin_record *out);
/* A stored transfer, decoded (coins malloc'd: kci_ledger_transfer_free);
 * paid_request (may be NULL, 37 bytes) gets the request it paid, or "".
 * KC_ERR_NOT_FOUND for an unknown id. */
kc_err kci_ledger_transfer_get(kci_ledger_read *read, const uint8_t id[KCI_LEDGER_ID_BYTES],
                               kci_ledger_transfer *out, char *paid_request);
/* A hold's state; KC_ERR_NOT_FOUND for an id that is not a hold. */
kc_err kci_ledger_hold_get(kci_ledger_read *read, const uint8_t id[KCI_LEDGER_ID_BYTES],
                           kci_ledger_hold_status *out);
/* "pending", "posted", "voided", "expired". */
const char *kci_ledger_hold_state_name(uint8_t state);
/* The pending hold a held coin is under; KC_ERR_NOT_FOUND if none. */
kc_err kci_ledger_held_by(kci_ledger_read *read, const uint8_t coin[KCI_LEDGER_ID_BYTES],
                          uint8_t hold[KCI_LEDGER_ID_BYTES]);
/* What the audit learns of the holds (audit.c): each pending hold's coins
 * are held, owned by its payer and point back at it; each held coin is in
 * exactly one pending hold. problem is called for each violation. */
typedef struct kci_ledger_holds_summary {
    uint64_t holds_pending, holds_settled;
    uint64_t coins_held; /* coins of pending holds */
    uint64_t value_held;
    uint64_t held_rows; /* entries coin -> hold */
} kci_ledger_holds_summary;
kc_err kci_ledger_holds_audit(kci_ledger_read *read, kci_ledger_holds_summary *out,
                              void (*problem)(void *context, const char *text), void *context);
/* The transfer of hop hop_index of coin's trail. KC_ERR_NOT_FOUND once
 * reaped (or past the trail's end). */
kc_err kci_ledger_trail_hop(kci_ledger_read *read, const uint8_t coin[KCI_LEDGER_ID_BYTES],
                            uint32_t hop_index, uint8_t transfer[KCI_LEDGER_ID_BYTES]);
/* Fills in the denominations of a request's coins (refused
 * KCI_LEDGER_COIN_UNKNOWN for an unknown coin). */
kc_err kci_ledger_fill_denominations(kci_ledger_read *read, kci_ledger_transfer *transfer,
                                     kci_ledger_outcome *outcome);
/* 0 for a wallet that holds nothing (or on a read failure). */
uint64_t kci_ledger_balance_get(kci_ledger_read *read, const uint8_t wallet[KCI_LEDGER_KEY_BYTES]);
/* How many coins wallet holds (its references). */
kc_err kci_ledger_wallet_coin_count(kci_ledger_read *read,
                                    const uint8_t wallet[KCI_LEDGER_KEY_BYTES], size_t *count);

/* ---- iterators (inside a read) ------------------------------------------------
 *
 * Each *_open positions a cursor; each *_next gives the next entry: KC_OK,
 * KC_ERR_NOT_FOUND past the last one, KC_ERR_CORRUPT for an entry of the
 * wrong size (its key bytes, zero-padded, still given; the walk can go on),
 * another kc_err when the read failed. A cursor is closed before its read
 * ends. */

/* wallet's coins in id order, from the first after *after (NULL: all). */
kc_err kci_ledger_wallet_coins_open(kci_ledger_cursor **out, kci_ledger_read *read,
                                    const uint8_t wallet[KCI_LEDGER_KEY_BYTES],
                                    const uint8_t *after);
kc_err kci_ledger_wallet_coins_next(kci_ledger_cursor *cursor, uint8_t coin[KCI_LEDGER_ID_BYTES]);
/* History edges in sequence order, from first_sequence. */
kc_err kci_ledger_history_open(kci_ledger_cursor **out, kci_ledger_read *read,
                               uint64_t first_sequence);
kc_err kci_ledger_history_next(kci_ledger_cursor *cursor, uint64_t *sequence,
                               kci_ledger_edge *edge);
/* Whole tables, for the audit: opened by name, walked with the *_next of
 * the table (a cursor remembers its table). */
typedef enum kci_ledger_table {
    KCI_LEDGER_TABLE_TRANSFERS = 1,
    KCI_LEDGER_TABLE_COINS = 2,
    KCI_LEDGER_TABLE_REFERENCES = 3, /* wallet -> coin, wallet by wallet */
    KCI_LEDGER_TABLE_BALANCES = 4,
    KCI_LEDGER_TABLE_SUPPLY = 5, /* live coins per denomination */
} kci_ledger_table;

kc_err kci_ledger_table_open(kci_ledger_cursor **out, kci_ledger_read *read,
                             kci_ledger_table table);
kc_err kci_ledger_transfers_next(kci_ledger_cursor *cursor, uint8_t transfer[KCI_LEDGER_ID_BYTES]);
kc_err kci_ledger_coins_next(kci_ledger_cursor *cursor, uint8_t coin[KCI_LEDGER_ID_BYTES],
                             kci_ledger_coin_record *record);
kc_err kci_ledger_references_next(kci_ledger_cursor *cursor, uint8_t wallet[KCI_LEDGER_KEY_BYTES],
                                  uint8_t coin[KCI_LEDGER_ID_BYTES]);
kc_err kci_ledger_balances_next(kci_ledger_cursor *cursor, uint8_t wallet[KCI_LEDGER_KEY_BYTES],
                                uint64_t *balance);
kc_err kci_ledger_supply_next(kci_ledger_cursor *cursor, uint64_t *denomination,
                              uint64_t *coin_count);
void kci_ledger_cursor_close(kci_ledger_cursor *cursor); /* NULL is fine */

/* ---- writes (the writer thread) ------------------------------------------------ */

kc_err kci_ledger_batch_begin(kci_ledger_batch **out, kci_ledger_store *store);
/* A batch whose clock reads now_ms (Unix ms) throughout: a replicated batch
 * carries the time its writer gave it, so every replica stamps the same. */
kc_err kci_ledger_batch_begin_at(kci_ledger_batch **out, kci_ledger_store *store, int64_t now_ms);
/* Commits (durably: LMDB syncs on commit), publishes the counters and
 * frees the batch, whatever the result. KC_ERR_LIMIT: the map is full. */
/* The clock of what follows in the batch (a group of replicated log entries
 * applied in one transaction, each by its own clock: batch_apply.h). */
void kci_ledger_batch_set_now(kci_ledger_batch *batch, int64_t now_ms);
kc_err kci_ledger_batch_commit(kci_ledger_batch *batch);
void kci_ledger_batch_abort(kci_ledger_batch *batch); /* frees it; NULL is fine */

/* Each returns a storage error (the batch must be aborted) or KC_OK, with
 * the request's outcome in *outcome. */

/* Mints coins of each grant's denominations to grant->to, the mint signing
 * the issue hops, all grants or none (a nested transaction: a grant can be
 * refused after earlier ones were written). transfer_ids[i] and coins_out[i]
 * (grants[i].denomination_count entries) get the issue of grant i. */
kc_err kci_ledger_apply_mint(kci_ledger_batch *batch, const kci_ledger_grant *grants,
                             uint32_t grant_count, uint8_t (*transfer_ids)[KCI_LEDGER_ID_BYTES],
                             kci_ledger_coin **coins_out, kci_ledger_outcome *outcome);
/* The same with the issues' ids given (transfer_ids[i], and coins[i]: the
 * ids and denominations of grant i's coins, sorted by id), so that a batch
 * replayed from the replicated log (replica.c) makes the very same coins. */
kc_err kci_ledger_apply_mint_given(kci_ledger_batch *batch, const kci_ledger_grant *grants,
                                   uint32_t grant_count,
                                   const uint8_t (*transfer_ids)[KCI_LEDGER_ID_BYTES],
                                   kci_ledger_coin *const *coins, kci_ledger_outcome *outcome);
/* The ids of grant grant_index of the mint mint_id (a client's UUID),
 * derived from both (BLAKE2b): a retried mint gets the ids it got the first
 * time, its issue is found already applied, and nothing is minted again
 * (outcome->replayed), on every replica alike. The coins sorted by id. */
void kci_ledger_mint_ids_derive(const uint8_t mint_id[KCI_LEDGER_ID_BYTES], uint32_t grant_index,
                                uint8_t transfer_id[KCI_LEDGER_ID_BYTES], kci_ledger_coin *coins,
                                const uint64_t *denominations, uint32_t count);
/* New ids for an issue of count coins of denominations: a UUIDv7 for the
 * issue, then one per coin (increasing, so sorted), with the denominations. */
void kci_ledger_issue_ids_make(uint8_t transfer_id[KCI_LEDGER_ID_BYTES], kci_ledger_coin *coins,
                               const uint64_t *denominations, uint32_t count);
/* A verified transfer (signature checked by the caller, denominations
 * filled in): checks ownership and moves every coin, or nothing. */
kc_err kci_ledger_apply_transfer(kci_ledger_batch *batch, const kci_ledger_transfer *transfer,
                                 kci_ledger_outcome *outcome);
/* A verified exchange: retires its coins and issues the asked ones. */
kc_err kci_ledger_apply_exchange(kci_ledger_batch *batch, const kci_ledger_transfer *exchange,
                                 uint8_t issue_id[KCI_LEDGER_ID_BYTES], kci_ledger_coin *coins_out,
                                 kci_ledger_outcome *outcome);
/* The same with the new coins' ids given (issue_id, coins: one per asked
 * denomination, sorted by id). */
kc_err kci_ledger_apply_exchange_given(kci_ledger_batch *batch, const kci_ledger_transfer *exchange,
                                       const uint8_t issue_id[KCI_LEDGER_ID_BYTES],
                                       const kci_ledger_coin *coins, kci_ledger_outcome *outcome);
/* Marks transfer as the payment of request_id, if it paid payee at least
 * min_amount and paid no other request. */
kc_err kci_ledger_apply_payment(kci_ledger_batch *batch,
                                const uint8_t transfer[KCI_LEDGER_ID_BYTES],
                                const uint8_t payee[KCI_LEDGER_KEY_BYTES], uint64_t min_amount,
                                const char *request_id, kci_ledger_outcome *outcome);
/* A verified hold (signature checked by the caller, denominations filled
 * in): the coins leave the payer's wallet and wait, held, for the payee's
 * post or void or for the expiry; refused if its expiry is not within
 * (now, now + KCI_LEDGER_HOLD_MS_MAX]. */
kc_err kci_ledger_apply_hold(kci_ledger_batch *batch, const kci_ledger_transfer *hold,
                             kci_ledger_outcome *outcome);
/* The payee's claim, post or void of hold, signature checked here (the
 * payee is in the stored hold). Idempotent: the same settle again is
 * answered OK and replayed. On success outcome->message names the hold's
 * state after it ("pending", "posted", "voided", "expired"). Expiry is
 * judged by the batch's clock, so every replica decides the same. */
kc_err kci_ledger_apply_settle(kci_ledger_batch *batch, kci_ledger_settle settle,
                               const uint8_t hold[KCI_LEDGER_ID_BYTES],
                               const uint8_t payee[KCI_LEDGER_KEY_BYTES], const char *request_id,
                               uint64_t min_amount,
                               const uint8_t signature[KCI_LEDGER_SIGNATURE_BYTES],
                               kci_ledger_outcome *outcome);
/* Returns at most count_max holds whose expiry is at or before the batch's
 * clock to their payers; *expired_count says how many. */
kc_err kci_ledger_expire(kci_ledger_batch *batch, uint32_t count_max, uint32_t *expired_count);
/* The reaper: frees the trails of at most count_max coins retired before
 * now - age_ms_min; *reaped_count says how many. */
kc_err kci_ledger_reap(kci_ledger_batch *batch, int64_t age_ms_min, uint32_t count_max,
                       uint32_t *reaped_count);

/* ---- the replicated log (storage jetstream: replica.c) -------------------------- */

enum {
    KCI_LEDGER_DIGEST_BYTES = 32, /* BLAKE2b-256 */
};

/* Where a replica stands in the ledger's log: the last entry applied and
 * the chain digest after it (chain_N = H(chain_N-1 || entry_N's bytes)). */
typedef struct kci_ledger_applied {
    uint64_t sequence; /* 0: nothing applied (storage local, or a new replica) */
    uint8_t chain[KCI_LEDGER_DIGEST_BYTES];
} kci_ledger_applied;

/* As of the snapshot. */
kc_err kci_ledger_applied_get(kci_ledger_read *read, kci_ledger_applied *out);
/* The chain digest after entry sequence; KC_ERR_NOT_FOUND if not applied. */
kc_err kci_ledger_chain_get(kci_ledger_read *read, uint64_t sequence,
                            uint8_t digest[KCI_LEDGER_DIGEST_BYTES]);
/* Records, in the batch's transaction, that it applies entry
 * applied->sequence: a restart resumes after it, and nothing is applied
 * twice (an entry already applied is refused with KC_ERR_EXISTS). */
kc_err kci_ledger_batch_set_applied(kci_ledger_batch *batch, const kci_ledger_applied *applied);
/* A digest of the whole state in the snapshot: every table's keys and
 * values in key order (store_digest.c). Replicas at the same log position
 * must give the same bytes. *entry_count gets how many entries it read. */
kc_err kci_ledger_content_digest(kci_ledger_read *read, uint8_t digest[KCI_LEDGER_DIGEST_BYTES],
                                 uint64_t *entry_count);

#endif
