/* store_internal.h - what store.c (the environment, reads, iterators,
 * batches) and store_apply.c (the state transitions) share: the handles,
 * the stored transfer's layout, key encodings and the one place LMDB
 * return codes become kc_err. Included by those two files only: nothing
 * else in the ledger sees LMDB. */
#ifndef KCI_LEDGER_STORE_INTERNAL_H
#define KCI_LEDGER_STORE_INTERNAL_H

#include <lmdb.h>

#include "common/lock.h"
#include "ledger/store.h"

enum {
    STORE_PAID_REQUEST_BYTES = 40, /* a Kc-Id text (36) + NUL, padded */
    STORE_TRAIL_KEY_BYTES = KCI_LEDGER_ID_BYTES + 4,
    STORE_SEQUENCE_KEY_BYTES = 8,
    STORE_EXPIRY_KEY_BYTES = 8 + KCI_LEDGER_ID_BYTES, /* expires_ms big-endian, hold id */
};

/* A hold's state beside its stored transfer (table "holds"). */
typedef struct store_hold_record {
    uint8_t state; /* KCI_LEDGER_HOLD_* */
    uint8_t reserved[7];
    int64_t expires_ms;
    int64_t settled_ms;
} store_hold_record;

struct kci_ledger_store {
    MDB_env *env;
    MDB_dbi meta, coins, owned, balances, transfers, trail, history, supply, retired, chain;
    MDB_dbi holds, held, expiry; /* store_hold.c: hold -> state, coin -> hold, due holds */
    kci_directory_lock lock;     /* the directory's (common/lock.h) */
    kci_wallet mint;
    char mint_address[KCI_LEDGER_ADDRESS_TEXT_BYTES + 1];
    char *directory;
    /* The writer's committed counters (read and written under a batch only). */
    kci_ledger_counters committed;
};

struct kci_ledger_read {
    kci_ledger_store *store;
    MDB_txn *txn;
};

struct kci_ledger_batch {
    kci_ledger_store *store;
    MDB_txn *txn;                 /* the batch's, or a mint's nested one */
    kci_ledger_counters counters; /* as they will be after the commit */
    int64_t now_ms;
};

/* A stored transfer: this head, then its coins (kci_ledger_coin each), then
 * the asked denominations of an exchange (u64 each). */
typedef struct store_head {
    uint8_t kind;
    uint8_t reserved[3];
    uint32_t coin_count;
    uint32_t denomination_count;
    uint32_t reserved2;
    uint8_t from[KCI_LEDGER_KEY_BYTES];
    uint8_t to[KCI_LEDGER_KEY_BYTES];
    uint64_t amount;
    int64_t time_ms;
    uint8_t signature[KCI_LEDGER_SIGNATURE_BYTES];
    char paid_request[STORE_PAID_REQUEST_BYTES];
} store_head;

/* An LMDB return code as a kc_err, its text recorded for kc_last_error()
 * (MDB_NOTFOUND is KC_ERR_NOT_FOUND, an answer rather than a failure: no
 * text). */
kc_err store_error(int rc);
/* A broken invariant found in the stored state: logged, KC_ERR_CORRUPT. */
kc_err store_invariant_broken(const char *format, ...) __attribute__((format(printf, 1, 2)));

static inline MDB_val store_value(const void *data, size_t size)
{
    return (MDB_val){.mv_size = size, .mv_data = (void *)data};
}

/* Key of a trail row: coin id then the hop index, big-endian. */
void store_trail_key(uint8_t key[STORE_TRAIL_KEY_BYTES], const uint8_t coin[KCI_LEDGER_ID_BYTES],
                     uint32_t hop_index);
/* A big-endian u64 key (history sequence, supply denomination). */
void store_sequence_key(uint8_t key[STORE_SEQUENCE_KEY_BYTES], uint64_t sequence);
uint64_t store_sequence_from_key(const uint8_t key[STORE_SEQUENCE_KEY_BYTES]);

/* Reads inside any transaction, a read's or a batch's. */
kc_err store_coin_get(MDB_txn *txn, const kci_ledger_store *store,
                      const uint8_t id[KCI_LEDGER_ID_BYTES], kci_ledger_coin_record *out);
/* value is the whole stored record (LMDB's memory, valid in txn). */
kc_err store_head_get(MDB_txn *txn, const kci_ledger_store *store,
                      const uint8_t id[KCI_LEDGER_ID_BYTES], store_head *head, MDB_val *value);
kc_err store_trail_get(MDB_txn *txn, const kci_ledger_store *store,
                       const uint8_t coin[KCI_LEDGER_ID_BYTES], uint32_t hop_index,
                       uint8_t transfer[KCI_LEDGER_ID_BYTES]);
uint64_t store_balance_get(MDB_txn *txn, const kci_ledger_store *store,
                           const uint8_t wallet[KCI_LEDGER_KEY_BYTES]);
/* A stored transfer decoded (coins malloc'd), expires_ms left 0. */
kc_err store_transfer_get(MDB_txn *txn, const kci_ledger_store *store,
                          const uint8_t id[KCI_LEDGER_ID_BYTES], kci_ledger_transfer *out,
                          char *paid_request);
kc_err store_hold_get(MDB_txn *txn, const kci_ledger_store *store,
                      const uint8_t id[KCI_LEDGER_ID_BYTES], store_hold_record *out);
kc_err store_held_get(MDB_txn *txn, const kci_ledger_store *store,
                      const uint8_t coin[KCI_LEDGER_ID_BYTES], uint8_t hold[KCI_LEDGER_ID_BYTES]);

/* The primitive writes of store_apply.c that store_hold.c shares. */
kc_err store_coin_put(kci_ledger_batch *batch, const uint8_t id[KCI_LEDGER_ID_BYTES],
                      const kci_ledger_coin_record *record);
kc_err store_balance_add(kci_ledger_batch *batch, const uint8_t wallet[KCI_LEDGER_KEY_BYTES],
                         uint64_t amount, int sign);
kc_err store_reference_change(kci_ledger_batch *batch, const uint8_t wallet[KCI_LEDGER_KEY_BYTES],
                              const uint8_t coin[KCI_LEDGER_ID_BYTES], int delta);
kc_err store_transfer_put(kci_ledger_batch *batch, const kci_ledger_transfer *transfer);
kc_err store_history_append(kci_ledger_batch *batch, const kci_ledger_transfer *transfer);
kc_err store_coin_move(kci_ledger_batch *batch, const kci_ledger_transfer *transfer,
                       const uint8_t coin[KCI_LEDGER_ID_BYTES], kci_ledger_coin_record *record);
/* The checks a transfer, exchange or hold passes before it writes: *go
 * says whether to write; records gets each coin's record. */
kc_err store_check_spend(kci_ledger_batch *batch, const kci_ledger_transfer *transfer,
                         kci_ledger_coin_record *records, kci_ledger_outcome *outcome, bool *go);

#endif
