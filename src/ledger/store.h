/* store.h - the ledger's state in LMDB (docs/ledger.md, "LMDB layout") and
 * the state transitions: issue, transfer, exchange, payment claim, reap.
 *
 * Writes happen in a kci_ledger_batch: one LMDB write transaction that the
 * service's single writer thread fills with many requests (group commit)
 * and commits once; a request is refused (its outcome says why) before it
 * writes anything, so a refusal never leaves half a transfer behind, and
 * an LMDB failure aborts the whole batch. Reads use read transactions from
 * any thread (MDB_NOTLS).
 *
 * The singleton rule lives here: a coin record names one owner, the
 * wallet index ("owned") holds exactly one entry for each live coin and
 * none for a retired one: a coin's reference count is 0 or 1. Every move
 * deletes the sender's reference and adds the receiver's in the same
 * transaction; a reference that is missing or doubled is reported as
 * corruption and aborts the batch. audit.c checks the same over the whole
 * state. */
#ifndef KCI_LEDGER_STORE_H
#define KCI_LEDGER_STORE_H

#include <lmdb.h>
#include <stdbool.h>
#include <stdint.h>

#include "common/lock.h"
#include "ledger/codec.h"
#include "ledger/wallet.h"

/* HTTP-like codes in Kc-Error and in the "code" of an error body. */
enum {
    KCI_LEDGER_CODE_BAD_REQUEST = 400,   /* malformed, or inconsistent (amount != coins) */
    KCI_LEDGER_CODE_BAD_SIGNATURE = 401, /* the signature does not verify */
    KCI_LEDGER_CODE_UNPAID = 402,        /* a payment claim the transfer does not satisfy */
    KCI_LEDGER_CODE_FORBIDDEN = 403,     /* the mint is not a wallet; minting disabled */
    KCI_LEDGER_CODE_NOT_FOUND = 404,     /* unknown coin or transfer */
    KCI_LEDGER_CODE_CONFLICT = 409,      /* double spend; a reused transfer id; paid already */
    KCI_LEDGER_CODE_TOO_LARGE = 413,
    KCI_LEDGER_CODE_INTERNAL = 500, /* storage failed: nothing of the batch was applied */
    KCI_LEDGER_CODE_BUSY = 503,     /* the request queue is full */
    KCI_LEDGER_CODE_FULL = 507,     /* the LMDB map is full (raise map_size) */
};

enum {
    KCI_LEDGER_COIN_LIVE = 1,
    KCI_LEDGER_COIN_RETIRED = 2, /* exchanged: reference count 0, waiting for the reaper */
    KCI_LEDGER_COIN_REAPED = 3,  /* the reaper freed its trail; the id stays spent */
};

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

typedef struct kci_ledger_store {
    MDB_env *env;
    MDB_dbi meta, coins, owned, balances, transfers, trail, history, supply, retired;
    kci_directory_lock lock; /* the directory's (common/lock.h) */
    kci_wallet mint;
    char mint_address[KCI_LEDGER_ADDRESS_TEXT_BYTES + 1];
    char *directory;
    /* The writer's committed counters (read under the batch only). */
    uint64_t history_next;
    uint64_t supply_total;
} kci_ledger_store;

/* A refusal: code 0 when the request was applied (or replayed). */
typedef struct kci_ledger_outcome {
    int code;
    bool replayed; /* the same transfer was applied before: nothing done again */
    char message[KCI_LEDGER_ERROR_BYTES_MAX];
} kci_ledger_outcome;

void kci_ledger_outcome_fail(kci_ledger_outcome *outcome, int code, const char *format, ...)
    __attribute__((format(printf, 3, 4)));

/* Opens (creating) the ledger in directory: locks it against a second
 * ledger, opens LMDB with a map of map_bytes, loads or creates the mint key
 * (0600). */
kc_err kci_ledger_store_open(kci_ledger_store **out, const char *directory, uint64_t map_bytes,
                             char *error, size_t error_size);
void kci_ledger_store_close(kci_ledger_store *store);

/* ---- reads (any thread) ---------------------------------------------------- */

int kci_ledger_read_begin(kci_ledger_store *store, MDB_txn **txn);
/* 0, MDB_NOTFOUND or an LMDB error. */
int kci_ledger_coin_get(MDB_txn *txn, const kci_ledger_store *store,
                        const uint8_t id[KCI_LEDGER_ID_BYTES], kci_ledger_coin_record *out);
/* A stored transfer, decoded (coins malloc'd: kci_ledger_transfer_free);
 * paid_request (may be NULL, 37 bytes) gets the request it paid, or "". */
int kci_ledger_transfer_get(MDB_txn *txn, const kci_ledger_store *store,
                            const uint8_t id[KCI_LEDGER_ID_BYTES], kci_ledger_transfer *out,
                            char *paid_request);
/* Fills in the denominations of a request's coins (outcome 404 for an
 * unknown coin). */
int kci_ledger_fill_denominations(MDB_txn *txn, const kci_ledger_store *store,
                                  kci_ledger_transfer *transfer, kci_ledger_outcome *outcome);
uint64_t kci_ledger_balance_get(MDB_txn *txn, const kci_ledger_store *store,
                                const uint8_t wallet[KCI_LEDGER_KEY_BYTES]);

/* ---- writes (the writer thread) ------------------------------------------------ */

typedef struct kci_ledger_batch {
    kci_ledger_store *store;
    MDB_txn *txn;
    uint64_t history_next;
    uint64_t supply_total;
    int64_t now_ms;
} kci_ledger_batch;

int kci_ledger_batch_begin(kci_ledger_batch *batch, kci_ledger_store *store);
/* Commits (durably: LMDB syncs on commit) and publishes the counters. */
int kci_ledger_batch_commit(kci_ledger_batch *batch);
void kci_ledger_batch_abort(kci_ledger_batch *batch);

/* Each returns an LMDB error (the batch must be aborted) or 0, with the
 * request's outcome in *outcome. */

/* Mints coins of the grant's denominations to grant->to, the mint signing
 * the issue hop; ids of the new coins in coins_out (grant->denomination_count). */
int kci_ledger_apply_issue(kci_ledger_batch *batch, const kci_ledger_grant *grant,
                           uint8_t transfer_id[KCI_LEDGER_ID_BYTES], kci_ledger_coin *coins_out,
                           kci_ledger_outcome *outcome);
/* A verified transfer (signature checked by the caller, denominations
 * filled in): checks ownership and moves every coin, or nothing. */
int kci_ledger_apply_transfer(kci_ledger_batch *batch, const kci_ledger_transfer *transfer,
                              kci_ledger_outcome *outcome);
/* A verified exchange: retires its coins and issues the asked ones. */
int kci_ledger_apply_exchange(kci_ledger_batch *batch, const kci_ledger_transfer *exchange,
                              uint8_t issue_id[KCI_LEDGER_ID_BYTES], kci_ledger_coin *coins_out,
                              kci_ledger_outcome *outcome);
/* Marks transfer as the payment of request_id, if it paid payee at least
 * min_amount and paid no other request. */
int kci_ledger_apply_payment(kci_ledger_batch *batch, const uint8_t transfer[KCI_LEDGER_ID_BYTES],
                             const uint8_t payee[KCI_LEDGER_KEY_BYTES], uint64_t min_amount,
                             const char *request_id, kci_ledger_outcome *outcome);
/* The reaper: frees the trails of at most count_max coins retired before
 * now - age_ms_min; *reaped_count says how many. */
int kci_ledger_reap(kci_ledger_batch *batch, int64_t age_ms_min, uint32_t count_max,
                    uint32_t *reaped_count);

/* The text of an error a store function returned. */
const char *kci_ledger_rc_text(int rc);

/* Key of a trail row: coin id then the hop index, big-endian. */
void kci_ledger_trail_key(uint8_t key[KCI_LEDGER_ID_BYTES + 4],
                          const uint8_t coin[KCI_LEDGER_ID_BYTES], uint32_t hop_index);
/* A history edge by its sequence key (big-endian u64). */
void kci_ledger_sequence_key(uint8_t key[8], uint64_t sequence);
uint64_t kci_ledger_sequence_from_key(const uint8_t key[8]);

#endif
