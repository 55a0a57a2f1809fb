/* store.c - the ledger's LMDB environment (store.h): open and close, read
 * snapshots and their iterators, write batches, and the one place an LMDB
 * return code becomes a kc_err. The state transitions are store_apply.c.
 *
 * Databases (one LMDB environment, data.mdb in the data directory):
 *   meta       "mint" -> mint public key; "history_next", "supply_total" -> u64
 *   coins      coin id (16) -> kci_ledger_coin_record
 *   owned      wallet (32) -> coin id (16), DUPSORT|DUPFIXED: the references
 *   balances   wallet (32) -> u64, the sum of its live coins
 *   transfers  transfer id (16) -> store_head, coins (id, denomination),
 *              asked denominations (exchange)
 *   trail      coin id (16) + hop index (u32 BE) -> transfer id (16)
 *   history    sequence (u64 BE) -> kci_ledger_edge (money flow: issues and
 *              transfers; exchanges move no value between wallets)
 *   supply     denomination (u64 BE) -> live coin count (u64)
 *   retired    coin id (16) -> "" : coins waiting for the reaper
 *   chain      log sequence (u64 BE) -> chain digest (32): storage
 *              jetstream only (replica.c), with meta "applied"
 * Values are copied with memcpy: LMDB does not align them. Reads use read
 * transactions from any thread (MDB_NOTLS). */
#include "store_internal.h"

#include <assert.h>
#include <errno.h>
#include <limits.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/clock.h"
#include "common/log.h"
#include "kingcobra/kingcobra.h"
#include "ledger/metrics.h"
#include "service/last_error.h"

enum {
    STORE_DATABASES_MAX = 16,
    STORE_HEAD_BYTES = 200,
};

_Static_assert(sizeof(kci_ledger_coin) == 24, "coin layout on disk");
_Static_assert(sizeof(kci_ledger_coin_record) == 72, "coin record layout on disk");
_Static_assert(sizeof(kci_ledger_edge) == 96, "edge layout on disk");
_Static_assert(sizeof(store_head) == STORE_HEAD_BYTES, "transfer head layout on disk");

/* ---- errors and keys ---------------------------------------------------------- */

kc_err store_error(int rc)
{
    switch (rc) {
    case MDB_SUCCESS: return KC_OK;
    case MDB_NOTFOUND: return KC_ERR_NOT_FOUND;
    case ENOMEM: return kci_fail(KC_ERR_NOMEM, "out of memory");
    case MDB_MAP_FULL: return kci_fail(KC_ERR_LIMIT, "%s", mdb_strerror(rc));
    case MDB_KEYEXIST: return kci_fail(KC_ERR_EXISTS, "%s", mdb_strerror(rc));
    case MDB_INCOMPATIBLE: return kci_fail(KC_ERR_CONFIG, "%s", mdb_strerror(rc));
    case MDB_CORRUPTED:
    case MDB_PAGE_NOTFOUND: return kci_fail(KC_ERR_CORRUPT, "%s", mdb_strerror(rc));
    default: return kci_fail(KC_ERR_IO, "%s", mdb_strerror(rc));
    }
}

kc_err store_invariant_broken(const char *format, ...)
{
    char text[KCI_LEDGER_ERROR_BYTES_MAX];
    va_list arguments;
    va_start(arguments, format);
    vsnprintf(text, sizeof text, format, arguments);
    va_end(arguments);
    kci_error("ledger: invariant broken: %s", text);
    return kci_fail(KC_ERR_CORRUPT, "an invariant of the stored state is broken");
}

void store_trail_key(uint8_t key[STORE_TRAIL_KEY_BYTES], const uint8_t coin[KCI_LEDGER_ID_BYTES],
                     uint32_t hop_index)
{
    memcpy(key, coin, KCI_LEDGER_ID_BYTES);
    for (int index = 0; index < 4; index++)
        key[KCI_LEDGER_ID_BYTES + index] = (uint8_t)(hop_index >> (24 - 8 * index));
}

void store_sequence_key(uint8_t key[STORE_SEQUENCE_KEY_BYTES], uint64_t sequence)
{
    for (int index = 0; index < STORE_SEQUENCE_KEY_BYTES; index++)
        key[index] = (uint8_t)(sequence >> (56 - 8 * index));
}

uint64_t store_sequence_from_key(const uint8_t key[STORE_SEQUENCE_KEY_BYTES])
{
    uint64_t sequence = 0;
    for (int index = 0; index < STORE_SEQUENCE_KEY_BYTES; index++)
        sequence = sequence << 8 | key[index];
    return sequence;
}

/* ---- open and close --------------------------------------------------------- */

static kc_err make_directory(const char *path)
{
    char copy[PATH_MAX];
    if (snprintf(copy, sizeof copy, "%s", path) >= (int)sizeof copy)
        return kci_fail(KC_ERR_CONFIG, "ledger directory path too long");
    for (char *cursor = strchr(copy + 1, '/');; cursor = strchr(cursor + 1, '/')) {
        if (cursor != NULL) *cursor = '\0';
        if (mkdir(copy, 0700) != 0 && errno != EEXIST)
            return kci_fail(KC_ERR_IO, "cannot create directory %s: %s", copy, strerror(errno));
        if (cursor == NULL) return KC_OK;
        *cursor = '/';
    }
}

static int meta_get_u64(MDB_txn *txn, MDB_dbi dbi, const char *name, uint64_t *out)
{
    MDB_val key = store_value(name, strlen(name)), value;
    int rc = mdb_get(txn, dbi, &key, &value);
    if (rc == MDB_NOTFOUND) {
        *out = 0;
        return 0;
    }
    if (rc == 0 && value.mv_size != sizeof *out) return MDB_CORRUPTED;
    if (rc == 0) memcpy(out, value.mv_data, sizeof *out);
    return rc;
}

static int meta_put_u64(MDB_txn *txn, MDB_dbi dbi, const char *name, uint64_t number)
{
    MDB_val key = store_value(name, strlen(name)), value = store_value(&number, sizeof number);
    return mdb_put(txn, dbi, &key, &value, 0);
}

static int counters_get(MDB_txn *txn, const kci_ledger_store *store, kci_ledger_counters *out)
{
    int rc = meta_get_u64(txn, store->meta, "history_next", &out->history_next);
    if (rc == 0) rc = meta_get_u64(txn, store->meta, "supply_total", &out->supply_total);
    return rc;
}

/* The mint key checked against the one the ledger began with (recorded
 * the first time). */
static int check_mint_key(MDB_txn *txn, kci_ledger_store *store)
{
    MDB_val key = store_value("mint", 4), value;
    int found = mdb_get(txn, store->meta, &key, &value);
    if (found == MDB_NOTFOUND) {
        value = store_value(store->mint.public_key, KCI_LEDGER_KEY_BYTES);
        return mdb_put(txn, store->meta, &key, &value, 0);
    }
    if (found == 0 && (value.mv_size != KCI_LEDGER_KEY_BYTES ||
                       memcmp(value.mv_data, store->mint.public_key, KCI_LEDGER_KEY_BYTES) != 0))
        return MDB_INCOMPATIBLE; /* mint.key was replaced: every trail would fail */
    return found;
}

static int open_databases(kci_ledger_store *store)
{
    MDB_txn *txn = NULL;
    int rc = mdb_txn_begin(store->env, NULL, 0, &txn);
    if (rc != 0) return rc;
    struct {
        const char *name;
        unsigned flags;
        MDB_dbi *dbi;
    } tables[] = {
        {"meta", 0, &store->meta},
        {"coins", 0, &store->coins},
        {"owned", MDB_DUPSORT | MDB_DUPFIXED, &store->owned},
        {"balances", 0, &store->balances},
        {"transfers", 0, &store->transfers},
        {"trail", 0, &store->trail},
        {"history", 0, &store->history},
        {"supply", 0, &store->supply},
        {"retired", 0, &store->retired},
        {"chain", 0, &store->chain},   /* replica.c: log sequence -> chain digest */
        {"holds", 0, &store->holds},   /* store_hold.c: hold id -> store_hold_record */
        {"held", 0, &store->held},     /* held coin -> its pending hold */
        {"expiry", 0, &store->expiry}, /* expires_ms, hold id -> "" while pending */
    };
    for (size_t index = 0; rc == 0 && index < sizeof tables / sizeof tables[0]; index++)
        rc = mdb_dbi_open(txn, tables[index].name, MDB_CREATE | tables[index].flags,
                          tables[index].dbi);
    if (rc == 0) rc = check_mint_key(txn, store);
    if (rc == 0) rc = counters_get(txn, store, &store->committed);
    if (rc == 0) return mdb_txn_commit(txn);
    mdb_txn_abort(txn);
    return rc;
}

static kc_err open_environment(kci_ledger_store *store, uint64_t map_bytes)
{
    int rc = mdb_env_create(&store->env);
    if (rc == 0) rc = mdb_env_set_maxdbs(store->env, STORE_DATABASES_MAX);
    if (rc == 0) rc = mdb_env_set_mapsize(store->env, (size_t)map_bytes);
    /* Default sync: a commit is on disk when mdb_txn_commit returns. */
    if (rc == 0) rc = mdb_env_open(store->env, store->directory, MDB_NOTLS, 0600);
    if (rc != 0)
        return kci_fail(KC_ERR_IO, "cannot open the ledger in %s: %s", store->directory,
                        mdb_strerror(rc));
    /* A ledger killed mid-read leaves its reader slots behind; they would pin
     * old pages (the file would only grow) until cleared. */
    int dead_readers = 0;
    if (mdb_reader_check(store->env, &dead_readers) == 0 && dead_readers > 0)
        kci_info("ledger: cleared %d reader slots of a process that died", dead_readers);
    rc = open_databases(store);
    if (rc == MDB_INCOMPATIBLE)
        return kci_fail(KC_ERR_CONFIG, "%s/%s is not the key this ledger was minted with",
                        store->directory, KCI_LEDGER_MINT_KEY_FILE);
    if (rc != 0)
        return kci_fail(KC_ERR_IO, "cannot open the ledger's databases: %s", mdb_strerror(rc));
    return KC_OK;
}

/* The directory, then its lock (common/lock.h: removing ledger.lock cannot
 * let a second ledger in), the mint key, LMDB. */
static kc_err open_parts(kci_ledger_store *store, uint64_t map_bytes, char *error,
                         size_t error_size)
{
    kc_err err = make_directory(store->directory);
    if (err != KC_OK) return kci_fail(err, "%s", kc_last_error());
    err = kci_directory_lock_acquire(&store->lock, store->directory, KCI_LEDGER_LOCK_FILE, "ledger",
                                     error, error_size);
    char key_path[PATH_MAX];
    snprintf(key_path, sizeof key_path, "%s/%s", store->directory, KCI_LEDGER_MINT_KEY_FILE);
    if (err == KC_OK) err = kci_wallet_load_or_create(&store->mint, key_path, error, error_size);
    if (err != KC_OK) return kci_fail(err, "%s", error);
    return open_environment(store, map_bytes);
}

kc_err kci_ledger_store_open(kci_ledger_store **out, const char *directory, uint64_t map_bytes,
                             char *error, size_t error_size)
{
    *out = NULL;
    kci_ledger_store *store = calloc(1, sizeof *store);
    if (store == NULL) {
        snprintf(error, error_size, "out of memory");
        return kci_fail(KC_ERR_NOMEM, "out of memory");
    }
    store->lock = (kci_directory_lock){.directory_fd = -1, .file_fd = -1};
    kc_err err = KC_OK;
    if (sodium_init() < 0)
        err = kci_fail(KC_ERR_IO, "libsodium cannot start");
    else if ((store->directory = strdup(directory)) == NULL)
        err = kci_fail(KC_ERR_NOMEM, "out of memory");
    if (err == KC_OK) err = open_parts(store, map_bytes, error, error_size);
    if (err != KC_OK) {
        snprintf(error, error_size, "%s", kc_last_error());
        kci_ledger_store_close(store);
        return err;
    }
    kci_wallet_address(store->mint_address, &store->mint);
    *out = store;
    return KC_OK;
}

void kci_ledger_store_close(kci_ledger_store *store)
{
    if (store == NULL) return;
    if (store->env != NULL) mdb_env_close(store->env);
    kci_directory_lock_release(&store->lock);
    kci_wallet_wipe(&store->mint);
    free(store->directory);
    free(store);
}

const char *kci_ledger_store_mint_address(const kci_ledger_store *store)
{
    return store->mint_address;
}

const uint8_t *kci_ledger_store_mint_key(const kci_ledger_store *store)
{
    return store->mint.public_key;
}

/* ---- reads inside any transaction --------------------------------------------- */

kc_err store_coin_get(MDB_txn *txn, const kci_ledger_store *store,
                      const uint8_t id[KCI_LEDGER_ID_BYTES], kci_ledger_coin_record *out)
{
    MDB_val key = store_value(id, KCI_LEDGER_ID_BYTES), value;
    int rc = mdb_get(txn, store->coins, &key, &value);
    if (rc != 0) return store_error(rc);
    if (value.mv_size != sizeof *out) return store_error(MDB_CORRUPTED);
    memcpy(out, value.mv_data, sizeof *out);
    return KC_OK;
}

kc_err store_head_get(MDB_txn *txn, const kci_ledger_store *store,
                      const uint8_t id[KCI_LEDGER_ID_BYTES], store_head *head, MDB_val *value)
{
    MDB_val key = store_value(id, KCI_LEDGER_ID_BYTES);
    int rc = mdb_get(txn, store->transfers, &key, value);
    if (rc != 0) return store_error(rc);
    if (value->mv_size < sizeof *head) return store_error(MDB_CORRUPTED);
    memcpy(head, value->mv_data, sizeof *head);
    size_t expected = sizeof *head + (size_t)head->coin_count * sizeof(kci_ledger_coin) +
                      (size_t)head->denomination_count * sizeof(uint64_t);
    if (head->coin_count > KCI_LEDGER_COINS_PER_TRANSFER_MAX ||
        head->denomination_count > KCI_LEDGER_DENOMINATIONS_MAX || value->mv_size != expected)
        return store_error(MDB_CORRUPTED);
    return KC_OK;
}

kc_err store_trail_get(MDB_txn *txn, const kci_ledger_store *store,
                       const uint8_t coin[KCI_LEDGER_ID_BYTES], uint32_t hop_index,
                       uint8_t transfer[KCI_LEDGER_ID_BYTES])
{
    uint8_t key_bytes[STORE_TRAIL_KEY_BYTES];
    store_trail_key(key_bytes, coin, hop_index);
    MDB_val key = store_value(key_bytes, sizeof key_bytes), value;
    int rc = mdb_get(txn, store->trail, &key, &value);
    if (rc != 0) return store_error(rc);
    if (value.mv_size != KCI_LEDGER_ID_BYTES) return store_error(MDB_CORRUPTED);
    memcpy(transfer, value.mv_data, KCI_LEDGER_ID_BYTES);
    return KC_OK;
}

uint64_t store_balance_get(MDB_txn *txn, const kci_ledger_store *store,
                           const uint8_t wallet[KCI_LEDGER_KEY_BYTES])
{
    MDB_val key = store_value(wallet, KCI_LEDGER_KEY_BYTES), value;
    uint64_t balance = 0;
    if (mdb_get(txn, store->balances, &key, &value) == 0 && value.mv_size == sizeof balance)
        memcpy(&balance, value.mv_data, sizeof balance);
    return balance;
}

/* ---- read snapshots ------------------------------------------------------------ */

kc_err kci_ledger_read_begin(kci_ledger_read **out, kci_ledger_store *store)
{
    *out = NULL;
    kci_ledger_read *read = calloc(1, sizeof *read);
    if (read == NULL) return kci_fail(KC_ERR_NOMEM, "out of memory");
    read->store = store;
    kc_err err = store_error(mdb_txn_begin(store->env, NULL, MDB_RDONLY, &read->txn));
    if (err != KC_OK) {
        free(read);
        return err == KC_ERR_NOT_FOUND ? kci_fail(KC_ERR_IO, "no read snapshot") : err;
    }
    *out = read;
    return KC_OK;
}

void kci_ledger_read_end(kci_ledger_read *read)
{
    if (read == NULL) return;
    mdb_txn_abort(read->txn);
    free(read);
}

const kci_ledger_store *kci_ledger_read_store(const kci_ledger_read *read)
{
    return read->store;
}

kc_err kci_ledger_counters_get(kci_ledger_read *read, kci_ledger_counters *out)
{
    return store_error(counters_get(read->txn, read->store, out));
}

kc_err kci_ledger_coin_get(kci_ledger_read *read, const uint8_t id[KCI_LEDGER_ID_BYTES],
                           kci_ledger_coin_record *out)
{
    return store_coin_get(read->txn, read->store, id, out);
}

kc_err store_transfer_get(MDB_txn *txn, const kci_ledger_store *store,
                          const uint8_t id[KCI_LEDGER_ID_BYTES], kci_ledger_transfer *out,
                          char *paid_request)
{
    store_head head;
    MDB_val value;
    memset(out, 0, sizeof *out);
    kc_err err = store_head_get(txn, store, id, &head, &value);
    if (err != KC_OK) return err;
    memcpy(out->id, id, KCI_LEDGER_ID_BYTES);
    out->kind = head.kind;
    memcpy(out->from, head.from, KCI_LEDGER_KEY_BYTES);
    memcpy(out->to, head.to, KCI_LEDGER_KEY_BYTES);
    out->amount = head.amount;
    out->time_ms = head.time_ms;
    memcpy(out->signature, head.signature, KCI_LEDGER_SIGNATURE_BYTES);
    out->coin_count = head.coin_count;
    out->denomination_count = head.denomination_count;
    out->coins = calloc(head.coin_count + 1, sizeof *out->coins);
    out->denominations = calloc(head.denomination_count + 1, sizeof *out->denominations);
    if (out->coins == NULL || out->denominations == NULL) {
        kci_ledger_transfer_free(out);
        return kci_fail(KC_ERR_NOMEM, "out of memory");
    }
    /* store_head_get checked the counts against their bounds and the size. */
    assert(head.coin_count <= KCI_LEDGER_COINS_PER_TRANSFER_MAX);
    assert(value.mv_size == sizeof head + head.coin_count * sizeof(kci_ledger_coin) +
                                head.denomination_count * sizeof(uint64_t));
    const uint8_t *cursor = (const uint8_t *)value.mv_data + sizeof head;
    memcpy(out->coins, cursor, head.coin_count * sizeof(kci_ledger_coin));
    cursor += head.coin_count * sizeof(kci_ledger_coin);
    memcpy(out->denominations, cursor, head.denomination_count * sizeof(uint64_t));
    if (paid_request != NULL) {
        memcpy(paid_request, head.paid_request, 36);
        paid_request[36] = '\0';
    }
    return KC_OK;
}

kc_err kci_ledger_transfer_get(kci_ledger_read *read, const uint8_t id[KCI_LEDGER_ID_BYTES],
                               kci_ledger_transfer *out, char *paid_request)
{
    kc_err err = store_transfer_get(read->txn, read->store, id, out, paid_request);
    if (err != KC_OK || out->kind != KCI_LEDGER_KIND_HOLD) return err;
    /* A hold signs its expiry, kept beside it: a verifier needs it back. */
    store_hold_record hold;
    err = store_hold_get(read->txn, read->store, id, &hold);
    if (err == KC_ERR_NOT_FOUND) err = store_error(MDB_CORRUPTED);
    if (err != KC_OK) {
        kci_ledger_transfer_free(out);
        return err;
    }
    out->expires_ms = hold.expires_ms;
    return KC_OK;
}

kc_err kci_ledger_trail_hop(kci_ledger_read *read, const uint8_t coin[KCI_LEDGER_ID_BYTES],
                            uint32_t hop_index, uint8_t transfer[KCI_LEDGER_ID_BYTES])
{
    return store_trail_get(read->txn, read->store, coin, hop_index, transfer);
}

kc_err kci_ledger_fill_denominations(kci_ledger_read *read, kci_ledger_transfer *transfer,
                                     kci_ledger_outcome *outcome)
{
    for (uint32_t index = 0; index < transfer->coin_count; index++) {
        kci_ledger_coin_record record;
        kc_err err = store_coin_get(read->txn, read->store, transfer->coins[index].id, &record);
        if (err == KC_ERR_NOT_FOUND) {
            char coin[37];
            kci_ledger_id_text(coin, transfer->coins[index].id);
            kci_ledger_refuse_with(outcome, KCI_LEDGER_COIN_UNKNOWN, "unknown coin %s", coin);
            return KC_OK;
        }
        if (err != KC_OK) return err;
        transfer->coins[index].denomination = record.denomination;
    }
    return KC_OK;
}

uint64_t kci_ledger_balance_get(kci_ledger_read *read, const uint8_t wallet[KCI_LEDGER_KEY_BYTES])
{
    return store_balance_get(read->txn, read->store, wallet);
}

/* ---- iterators ---------------------------------------------------------------------- */

/* The two walks that are not whole tables. */
enum {
    CURSOR_WALLET_COINS = 101,
    CURSOR_HISTORY = 102,
};

struct kci_ledger_cursor {
    int table; /* a kci_ledger_table, or one of the walks above */
    MDB_cursor *cursor;
    MDB_cursor_op step; /* MDB_NEXT, or MDB_NEXT_DUP to stay within one wallet */
    bool positioned;    /* the entry under the cursor is the next one to give */
    bool ended;
    MDB_val key, value;
};

static kc_err cursor_open(kci_ledger_cursor **out, kci_ledger_read *read, MDB_dbi dbi, int table)
{
    *out = NULL;
    kci_ledger_cursor *cursor = calloc(1, sizeof *cursor);
    if (cursor == NULL) return kci_fail(KC_ERR_NOMEM, "out of memory");
    kc_err err = store_error(mdb_cursor_open(read->txn, dbi, &cursor->cursor));
    if (err != KC_OK) {
        free(cursor);
        return err;
    }
    cursor->step = MDB_NEXT;
    cursor->table = table;
    *out = cursor;
    return KC_OK;
}

/* Positions the cursor with op (key and value as its arguments); an empty
 * range leaves it ended. */
static kc_err cursor_position(kci_ledger_cursor *cursor, MDB_cursor_op op)
{
    int rc = mdb_cursor_get(cursor->cursor, &cursor->key, &cursor->value, op);
    cursor->positioned = rc == 0;
    cursor->ended = rc == MDB_NOTFOUND;
    assert(!(cursor->positioned && cursor->ended));
    return rc == MDB_NOTFOUND ? KC_OK : store_error(rc);
}

/* The next entry into cursor->key and ->value; KC_ERR_NOT_FOUND at the end. */
static kc_err cursor_step(kci_ledger_cursor *cursor)
{
    assert(!(cursor->ended && cursor->positioned));
    if (cursor->ended) return KC_ERR_NOT_FOUND;
    if (cursor->positioned) {
        cursor->positioned = false;
        return KC_OK;
    }
    int rc = mdb_cursor_get(cursor->cursor, &cursor->key, &cursor->value, cursor->step);
    cursor->ended = rc != 0;
    return store_error(rc);
}

/* The entry's key, zero-padded to size bytes; KC_ERR_CORRUPT unless the
 * key is key_size bytes and the value value_size (0: any). */
static kc_err cursor_entry(const kci_ledger_cursor *cursor, void *key, size_t key_size,
                           size_t value_size)
{
    memset(key, 0, key_size);
    memcpy(key, cursor->key.mv_data,
           cursor->key.mv_size < key_size ? cursor->key.mv_size : key_size);
    if (cursor->key.mv_size != key_size || (value_size > 0 && cursor->value.mv_size != value_size))
        return KC_ERR_CORRUPT;
    return KC_OK;
}

/* The next entry of a table of fixed-size keys and values: the key into
 * key (zero-padded when it has the wrong size), the value into value (may
 * be NULL: any size). */
static kc_err cursor_next_fixed(kci_ledger_cursor *cursor, void *key, size_t key_size, void *value,
                                size_t value_size)
{
    kc_err err = cursor_step(cursor);
    if (err == KC_OK) err = cursor_entry(cursor, key, key_size, value != NULL ? value_size : 0);
    if (err == KC_OK && value != NULL) memcpy(value, cursor->value.mv_data, value_size);
    return err;
}

void kci_ledger_cursor_close(kci_ledger_cursor *cursor)
{
    if (cursor == NULL) return;
    if (cursor->cursor != NULL) mdb_cursor_close(cursor->cursor);
    free(cursor);
}

kc_err kci_ledger_wallet_coins_open(kci_ledger_cursor **out, kci_ledger_read *read,
                                    const uint8_t wallet[KCI_LEDGER_KEY_BYTES],
                                    const uint8_t *after)
{
    kc_err err = cursor_open(out, read, read->store->owned, CURSOR_WALLET_COINS);
    if (err != KC_OK) return err;
    kci_ledger_cursor *cursor = *out;
    cursor->step = MDB_NEXT_DUP;
    cursor->key = store_value(wallet, KCI_LEDGER_KEY_BYTES);
    cursor->value = store_value(after, KCI_LEDGER_ID_BYTES);
    err = cursor_position(cursor, after != NULL ? MDB_GET_BOTH_RANGE : MDB_SET_KEY);
    /* GET_BOTH_RANGE lands on the first coin >= after: skip after itself. */
    if (err == KC_OK && cursor->positioned && after != NULL &&
        memcmp(cursor->value.mv_data, after, KCI_LEDGER_ID_BYTES) == 0) {
        cursor->positioned = false;
        err = cursor_step(cursor);
        cursor->positioned = err == KC_OK;
        if (err == KC_ERR_NOT_FOUND) err = KC_OK;
    }
    if (err != KC_OK) {
        kci_ledger_cursor_close(cursor);
        *out = NULL;
    }
    return err;
}

kc_err kci_ledger_wallet_coins_next(kci_ledger_cursor *cursor, uint8_t coin[KCI_LEDGER_ID_BYTES])
{
    assert(cursor->table == CURSOR_WALLET_COINS && cursor->step == MDB_NEXT_DUP);
    kc_err err = cursor_step(cursor);
    if (err != KC_OK) return err;
    memset(coin, 0, KCI_LEDGER_ID_BYTES);
    if (cursor->value.mv_size != KCI_LEDGER_ID_BYTES) return KC_ERR_CORRUPT;
    memcpy(coin, cursor->value.mv_data, KCI_LEDGER_ID_BYTES);
    return KC_OK;
}

kc_err kci_ledger_wallet_coin_count(kci_ledger_read *read,
                                    const uint8_t wallet[KCI_LEDGER_KEY_BYTES], size_t *count)
{
    *count = 0;
    kci_ledger_cursor *cursor = NULL;
    kc_err err = kci_ledger_wallet_coins_open(&cursor, read, wallet, NULL);
    if (err == KC_OK && cursor->positioned)
        err = store_error(mdb_cursor_count(cursor->cursor, count));
    kci_ledger_cursor_close(cursor);
    return err;
}

kc_err kci_ledger_history_open(kci_ledger_cursor **out, kci_ledger_read *read,
                               uint64_t first_sequence)
{
    kc_err err = cursor_open(out, read, read->store->history, CURSOR_HISTORY);
    if (err != KC_OK) return err;
    uint8_t start[STORE_SEQUENCE_KEY_BYTES];
    store_sequence_key(start, first_sequence);
    (*out)->key = store_value(start, sizeof start);
    err = cursor_position(*out, MDB_SET_RANGE);
    if (err != KC_OK) {
        kci_ledger_cursor_close(*out);
        *out = NULL;
    }
    return err;
}

kc_err kci_ledger_history_next(kci_ledger_cursor *cursor, uint64_t *sequence, kci_ledger_edge *edge)
{
    assert(cursor->table == CURSOR_HISTORY);
    uint8_t key[STORE_SEQUENCE_KEY_BYTES];
    kc_err err = cursor_next_fixed(cursor, key, sizeof key, edge, sizeof *edge);
    if (err == KC_OK) *sequence = store_sequence_from_key(key);
    return err;
}

kc_err kci_ledger_table_open(kci_ledger_cursor **out, kci_ledger_read *read, kci_ledger_table table)
{
    const kci_ledger_store *store = read->store;
    MDB_dbi dbi = table == KCI_LEDGER_TABLE_TRANSFERS    ? store->transfers
                  : table == KCI_LEDGER_TABLE_COINS      ? store->coins
                  : table == KCI_LEDGER_TABLE_REFERENCES ? store->owned
                  : table == KCI_LEDGER_TABLE_BALANCES   ? store->balances
                                                         : store->supply;
    assert(table >= KCI_LEDGER_TABLE_TRANSFERS && table <= KCI_LEDGER_TABLE_SUPPLY);
    kc_err err = cursor_open(out, read, dbi, (int)table);
    if (err == KC_OK) err = cursor_position(*out, MDB_FIRST);
    if (err != KC_OK) {
        kci_ledger_cursor_close(*out);
        *out = NULL;
    }
    return err;
}

kc_err kci_ledger_transfers_next(kci_ledger_cursor *cursor, uint8_t transfer[KCI_LEDGER_ID_BYTES])
{
    assert(cursor->table == KCI_LEDGER_TABLE_TRANSFERS);
    return cursor_next_fixed(cursor, transfer, KCI_LEDGER_ID_BYTES, NULL, 0);
}

kc_err kci_ledger_coins_next(kci_ledger_cursor *cursor, uint8_t coin[KCI_LEDGER_ID_BYTES],
                             kci_ledger_coin_record *record)
{
    assert(cursor->table == KCI_LEDGER_TABLE_COINS);
    return cursor_next_fixed(cursor, coin, KCI_LEDGER_ID_BYTES, record, sizeof *record);
}

kc_err kci_ledger_references_next(kci_ledger_cursor *cursor, uint8_t wallet[KCI_LEDGER_KEY_BYTES],
                                  uint8_t coin[KCI_LEDGER_ID_BYTES])
{
    assert(cursor->table == KCI_LEDGER_TABLE_REFERENCES);
    return cursor_next_fixed(cursor, wallet, KCI_LEDGER_KEY_BYTES, coin, KCI_LEDGER_ID_BYTES);
}

kc_err kci_ledger_balances_next(kci_ledger_cursor *cursor, uint8_t wallet[KCI_LEDGER_KEY_BYTES],
                                uint64_t *balance)
{
    assert(cursor->table == KCI_LEDGER_TABLE_BALANCES);
    return cursor_next_fixed(cursor, wallet, KCI_LEDGER_KEY_BYTES, balance, sizeof *balance);
}

kc_err kci_ledger_supply_next(kci_ledger_cursor *cursor, uint64_t *denomination,
                              uint64_t *coin_count)
{
    assert(cursor->table == KCI_LEDGER_TABLE_SUPPLY);
    uint8_t key[STORE_SEQUENCE_KEY_BYTES];
    kc_err err = cursor_next_fixed(cursor, key, sizeof key, coin_count, sizeof *coin_count);
    if (err == KC_OK) *denomination = store_sequence_from_key(key);
    return err;
}

/* ---- batches -------------------------------------------------------------------- */

kc_err kci_ledger_batch_begin(kci_ledger_batch **out, kci_ledger_store *store)
{
    return kci_ledger_batch_begin_at(out, store, kci_wall_ms());
}

kc_err kci_ledger_batch_begin_at(kci_ledger_batch **out, kci_ledger_store *store, int64_t now_ms)
{
    *out = NULL;
    kci_ledger_batch *batch = calloc(1, sizeof *batch);
    if (batch == NULL) return kci_fail(KC_ERR_NOMEM, "out of memory");
    *batch = (kci_ledger_batch){.store = store, .counters = store->committed, .now_ms = now_ms};
    /* A batch starts from what is on disk: the counters the last commit left. */
    assert(batch->counters.supply_total <= KCI_LEDGER_AMOUNT_MAX);
    kc_err err = store_error(mdb_txn_begin(store->env, NULL, 0, &batch->txn));
    if (err != KC_OK) {
        free(batch);
        return err;
    }
    *out = batch;
    return KC_OK;
}

void kci_ledger_batch_set_now(kci_ledger_batch *batch, int64_t now_ms)
{
    batch->now_ms = now_ms;
}

kc_err kci_ledger_batch_commit(kci_ledger_batch *batch)
{
    kci_ledger_store *store = batch->store;
    /* Sequences only grow; the supply moves only by what the batch minted. */
    assert(batch->counters.history_next >= store->committed.history_next);
    assert(batch->counters.supply_total <= KCI_LEDGER_AMOUNT_MAX);
    int rc = meta_put_u64(batch->txn, store->meta, "history_next", batch->counters.history_next);
    if (rc == 0)
        rc = meta_put_u64(batch->txn, store->meta, "supply_total", batch->counters.supply_total);
    if (rc != 0) {
        kc_err err = store_error(rc);
        kci_ledger_batch_abort(batch);
        return err;
    }
    int64_t start_ns = kci_metrics_now_ns();
    rc = mdb_txn_commit(batch->txn);
    kci_histogram_observe_since(&kci_ledger_metric_values.commit_duration, start_ns);
    if (rc == 0) store->committed = batch->counters;
    free(batch);
    return store_error(rc);
}

void kci_ledger_batch_abort(kci_ledger_batch *batch)
{
    if (batch == NULL) return;
    if (batch->txn != NULL) mdb_txn_abort(batch->txn);
    free(batch);
}

/* ---- the replicated log's position (replica.c) ------------------------------ */

enum {
    APPLIED_BYTES = 8 + KCI_LEDGER_DIGEST_BYTES, /* meta "applied": sequence, chain digest */
};

kc_err kci_ledger_applied_get(kci_ledger_read *read, kci_ledger_applied *out)
{
    memset(out, 0, sizeof *out);
    MDB_val key = store_value("applied", 7), value;
    int rc = mdb_get(read->txn, read->store->meta, &key, &value);
    if (rc == MDB_NOTFOUND) return KC_OK;
    if (rc == 0 && value.mv_size != APPLIED_BYTES) rc = MDB_CORRUPTED;
    if (rc != 0) return store_error(rc);
    memcpy(&out->sequence, value.mv_data, 8);
    memcpy(out->chain, (const uint8_t *)value.mv_data + 8, KCI_LEDGER_DIGEST_BYTES);
    return KC_OK;
}

kc_err kci_ledger_chain_get(kci_ledger_read *read, uint64_t sequence,
                            uint8_t digest[KCI_LEDGER_DIGEST_BYTES])
{
    uint8_t key_bytes[STORE_SEQUENCE_KEY_BYTES];
    store_sequence_key(key_bytes, sequence);
    MDB_val key = store_value(key_bytes, sizeof key_bytes), value;
    int rc = mdb_get(read->txn, read->store->chain, &key, &value);
    if (rc == 0 && value.mv_size != KCI_LEDGER_DIGEST_BYTES) rc = MDB_CORRUPTED;
    if (rc != 0) return store_error(rc);
    memcpy(digest, value.mv_data, KCI_LEDGER_DIGEST_BYTES);
    return KC_OK;
}

kc_err kci_ledger_batch_set_applied(kci_ledger_batch *batch, const kci_ledger_applied *applied)
{
    assert(applied->sequence > 0);
    uint8_t bytes[APPLIED_BYTES];
    memcpy(bytes, &applied->sequence, 8);
    memcpy(bytes + 8, applied->chain, KCI_LEDGER_DIGEST_BYTES);
    MDB_val key = store_value("applied", 7), value = store_value(bytes, sizeof bytes);
    int rc = mdb_put(batch->txn, batch->store->meta, &key, &value, 0);
    uint8_t key_bytes[STORE_SEQUENCE_KEY_BYTES];
    store_sequence_key(key_bytes, applied->sequence);
    MDB_val chain_key = store_value(key_bytes, sizeof key_bytes);
    MDB_val chain_value = store_value(applied->chain, KCI_LEDGER_DIGEST_BYTES);
    /* MDB_APPEND: a log position applied twice is an error, never a silent overwrite. */
    if (rc == 0)
        rc = mdb_put(batch->txn, batch->store->chain, &chain_key, &chain_value, MDB_APPEND);
    return store_error(rc);
}
