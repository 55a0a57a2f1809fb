/* store.c - the ledger's LMDB state and its transitions (store.h).
 *
 * Databases (one LMDB environment, data.mdb in the data directory):
 *   meta       "mint" -> mint public key; "history_next", "supply_total" -> u64
 *   coins      coin id (16) -> kci_ledger_coin_record
 *   owned      wallet (32) -> coin id (16), DUPSORT|DUPFIXED: the references
 *   balances   wallet (32) -> u64, the sum of its live coins
 *   transfers  transfer id (16) -> stored_head, coins (id, denomination),
 *              asked denominations (exchange)
 *   trail      coin id (16) + hop index (u32 BE) -> transfer id (16)
 *   history    sequence (u64 BE) -> kci_ledger_edge (money flow: issues and
 *              transfers; exchanges move no value between wallets)
 *   supply     denomination (u64 BE) -> live coin count (u64)
 *   retired    coin id (16) -> "" : coins waiting for the reaper
 * Values are copied with memcpy: LMDB does not align them. */
#include "store.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/lock.h"
#include "common/log.h"
#include "service/uuid.h"

enum {
    PAID_REQUEST_BYTES = 40, /* a Kc-Id text (36) + NUL, padded */
    TRAIL_KEY_BYTES = KCI_LEDGER_ID_BYTES + 4,
    STORE_DATABASES_MAX = 16,
    /* An invariant found broken on disk: the batch is aborted with this. */
    STORE_INVARIANT_BROKEN = MDB_LAST_ERRCODE + 1,
};

typedef struct stored_head {
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
    char paid_request[PAID_REQUEST_BYTES];
} stored_head;

_Static_assert(sizeof(kci_ledger_coin) == 24, "coin layout on disk");
_Static_assert(sizeof(kci_ledger_coin_record) == 72, "coin record layout on disk");
_Static_assert(sizeof(kci_ledger_edge) == 96, "edge layout on disk");

void kci_ledger_outcome_fail(kci_ledger_outcome *outcome, int code, const char *format, ...)
{
    assert(code > 0);
    outcome->code = code;
    va_list arguments;
    va_start(arguments, format);
    vsnprintf(outcome->message, sizeof outcome->message, format, arguments);
    va_end(arguments);
}

static kc_err fail(char *error, size_t error_size, kc_err err, const char *format, ...)
    __attribute__((format(printf, 4, 5)));

static kc_err fail(char *error, size_t error_size, kc_err err, const char *format, ...)
{
    va_list arguments;
    va_start(arguments, format);
    vsnprintf(error, error_size, format, arguments);
    va_end(arguments);
    return err;
}

static MDB_val value_of(const void *data, size_t size)
{
    return (MDB_val){.mv_size = size, .mv_data = (void *)data};
}

void kci_ledger_trail_key(uint8_t key[TRAIL_KEY_BYTES], const uint8_t coin[KCI_LEDGER_ID_BYTES],
                          uint32_t hop_index)
{
    memcpy(key, coin, KCI_LEDGER_ID_BYTES);
    for (int index = 0; index < 4; index++)
        key[KCI_LEDGER_ID_BYTES + index] = (uint8_t)(hop_index >> (24 - 8 * index));
}

void kci_ledger_sequence_key(uint8_t key[8], uint64_t sequence)
{
    for (int index = 0; index < 8; index++)
        key[index] = (uint8_t)(sequence >> (56 - 8 * index));
}

uint64_t kci_ledger_sequence_from_key(const uint8_t key[8])
{
    uint64_t sequence = 0;
    for (int index = 0; index < 8; index++)
        sequence = sequence << 8 | key[index];
    return sequence;
}

/* ---- open and close --------------------------------------------------------- */

static kc_err make_directory(const char *path, char *error, size_t error_size)
{
    char copy[PATH_MAX];
    if (snprintf(copy, sizeof copy, "%s", path) >= (int)sizeof copy)
        return fail(error, error_size, KC_ERR_CONFIG, "ledger directory path too long");
    for (char *cursor = strchr(copy + 1, '/');; cursor = strchr(cursor + 1, '/')) {
        if (cursor != NULL) *cursor = '\0';
        if (mkdir(copy, 0700) != 0 && errno != EEXIST)
            return fail(error, error_size, KC_ERR_IO, "cannot create directory %s: %s", copy,
                        strerror(errno));
        if (cursor == NULL) return KC_OK;
        *cursor = '/';
    }
}

static int meta_get_u64(MDB_txn *txn, MDB_dbi dbi, const char *name, uint64_t *out)
{
    MDB_val key = value_of(name, strlen(name)), value;
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
    MDB_val key = value_of(name, strlen(name)), value = value_of(&number, sizeof number);
    return mdb_put(txn, dbi, &key, &value, 0);
}

/* The databases, and the mint key checked against the one the ledger began with. */
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
    };
    for (size_t index = 0; rc == 0 && index < sizeof tables / sizeof tables[0]; index++)
        rc = mdb_dbi_open(txn, tables[index].name, MDB_CREATE | tables[index].flags,
                          tables[index].dbi);
    MDB_val key = value_of("mint", 4), value;
    int found = rc == 0 ? mdb_get(txn, store->meta, &key, &value) : rc;
    if (found == MDB_NOTFOUND) {
        value = value_of(store->mint.public_key, KCI_LEDGER_KEY_BYTES);
        rc = mdb_put(txn, store->meta, &key, &value, 0);
    } else if (found == 0 &&
               (value.mv_size != KCI_LEDGER_KEY_BYTES ||
                memcmp(value.mv_data, store->mint.public_key, KCI_LEDGER_KEY_BYTES) != 0)) {
        rc = MDB_INCOMPATIBLE; /* mint.key was replaced: every trail would fail */
    } else {
        rc = found;
    }
    if (rc == 0) rc = meta_get_u64(txn, store->meta, "history_next", &store->history_next);
    if (rc == 0) rc = meta_get_u64(txn, store->meta, "supply_total", &store->supply_total);
    if (rc == 0) return mdb_txn_commit(txn);
    mdb_txn_abort(txn);
    return rc;
}

/* The directory itself is locked (common/lock.h), so removing ledger.lock
 * cannot let a second ledger in. */
static kc_err lock_directory(kci_ledger_store *store, char *error, size_t error_size)
{
    return kci_directory_lock_acquire(&store->lock, store->directory, KCI_LEDGER_LOCK_FILE,
                                      "ledger", error, error_size);
}

static kc_err open_environment(kci_ledger_store *store, uint64_t map_bytes, char *error,
                               size_t error_size)
{
    int rc = mdb_env_create(&store->env);
    if (rc == 0) rc = mdb_env_set_maxdbs(store->env, STORE_DATABASES_MAX);
    if (rc == 0) rc = mdb_env_set_mapsize(store->env, (size_t)map_bytes);
    /* Default sync: a commit is on disk when mdb_txn_commit returns. */
    if (rc == 0) rc = mdb_env_open(store->env, store->directory, MDB_NOTLS, 0600);
    if (rc != 0)
        return fail(error, error_size, KC_ERR_IO, "cannot open the ledger in %s: %s",
                    store->directory, mdb_strerror(rc));
    /* A ledger killed mid-read leaves its reader slots behind; they would pin
     * old pages (the file would only grow) until cleared. */
    int dead_readers = 0;
    if (mdb_reader_check(store->env, &dead_readers) == 0 && dead_readers > 0)
        kci_info("ledger: cleared %d reader slots of a process that died", dead_readers);
    rc = open_databases(store);
    if (rc == MDB_INCOMPATIBLE)
        return fail(error, error_size, KC_ERR_CONFIG,
                    "%s/%s is not the key this ledger was minted with", store->directory,
                    KCI_LEDGER_MINT_KEY_FILE);
    if (rc != 0)
        return fail(error, error_size, KC_ERR_IO, "cannot open the ledger's databases: %s",
                    mdb_strerror(rc));
    return KC_OK;
}

kc_err kci_ledger_store_open(kci_ledger_store **out, const char *directory, uint64_t map_bytes,
                             char *error, size_t error_size)
{
    *out = NULL;
    if (sodium_init() < 0) return fail(error, error_size, KC_ERR_IO, "libsodium cannot start");
    kci_ledger_store *store = calloc(1, sizeof *store);
    if (store == NULL) return fail(error, error_size, KC_ERR_NOMEM, "out of memory");
    store->lock = (kci_directory_lock){.directory_fd = -1, .file_fd = -1};
    store->directory = strdup(directory);
    kc_err err = store->directory != NULL ? make_directory(directory, error, error_size)
                                          : fail(error, error_size, KC_ERR_NOMEM, "out of memory");
    if (err == KC_OK) err = lock_directory(store, error, error_size);
    char key_path[PATH_MAX];
    snprintf(key_path, sizeof key_path, "%s/%s", directory, KCI_LEDGER_MINT_KEY_FILE);
    if (err == KC_OK) err = kci_wallet_load_or_create(&store->mint, key_path, error, error_size);
    if (err == KC_OK) err = open_environment(store, map_bytes, error, error_size);
    if (err != KC_OK) {
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

/* ---- reads ------------------------------------------------------------------- */

int kci_ledger_read_begin(kci_ledger_store *store, MDB_txn **txn)
{
    return mdb_txn_begin(store->env, NULL, MDB_RDONLY, txn);
}

int kci_ledger_coin_get(MDB_txn *txn, const kci_ledger_store *store,
                        const uint8_t id[KCI_LEDGER_ID_BYTES], kci_ledger_coin_record *out)
{
    MDB_val key = value_of(id, KCI_LEDGER_ID_BYTES), value;
    int rc = mdb_get(txn, store->coins, &key, &value);
    if (rc != 0) return rc;
    if (value.mv_size != sizeof *out) return MDB_CORRUPTED;
    memcpy(out, value.mv_data, sizeof *out);
    return 0;
}

static int head_get(MDB_txn *txn, const kci_ledger_store *store,
                    const uint8_t id[KCI_LEDGER_ID_BYTES], stored_head *head, MDB_val *value)
{
    MDB_val key = value_of(id, KCI_LEDGER_ID_BYTES);
    int rc = mdb_get(txn, store->transfers, &key, value);
    if (rc != 0) return rc;
    if (value->mv_size < sizeof *head) return MDB_CORRUPTED;
    memcpy(head, value->mv_data, sizeof *head);
    size_t expected = sizeof *head + (size_t)head->coin_count * sizeof(kci_ledger_coin) +
                      (size_t)head->denomination_count * sizeof(uint64_t);
    if (head->coin_count > KCI_LEDGER_COINS_PER_TRANSFER_MAX ||
        head->denomination_count > KCI_LEDGER_DENOMINATIONS_MAX || value->mv_size != expected)
        return MDB_CORRUPTED;
    return 0;
}

int kci_ledger_transfer_get(MDB_txn *txn, const kci_ledger_store *store,
                            const uint8_t id[KCI_LEDGER_ID_BYTES], kci_ledger_transfer *out,
                            char *paid_request)
{
    stored_head head;
    MDB_val value;
    memset(out, 0, sizeof *out);
    int rc = head_get(txn, store, id, &head, &value);
    if (rc != 0) return rc;
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
        return ENOMEM;
    }
    const uint8_t *cursor = (const uint8_t *)value.mv_data + sizeof head;
    memcpy(out->coins, cursor, head.coin_count * sizeof(kci_ledger_coin));
    cursor += head.coin_count * sizeof(kci_ledger_coin);
    memcpy(out->denominations, cursor, head.denomination_count * sizeof(uint64_t));
    if (paid_request != NULL) {
        memcpy(paid_request, head.paid_request, 36);
        paid_request[36] = '\0';
    }
    return 0;
}

int kci_ledger_fill_denominations(MDB_txn *txn, const kci_ledger_store *store,
                                  kci_ledger_transfer *transfer, kci_ledger_outcome *outcome)
{
    for (uint32_t index = 0; index < transfer->coin_count; index++) {
        kci_ledger_coin_record record;
        int rc = kci_ledger_coin_get(txn, store, transfer->coins[index].id, &record);
        if (rc == MDB_NOTFOUND) {
            char coin[37];
            kci_ledger_id_text(coin, transfer->coins[index].id);
            kci_ledger_outcome_fail(outcome, KCI_LEDGER_CODE_NOT_FOUND, "unknown coin %s", coin);
            return 0;
        }
        if (rc != 0) return rc;
        transfer->coins[index].denomination = record.denomination;
    }
    return 0;
}

uint64_t kci_ledger_balance_get(MDB_txn *txn, const kci_ledger_store *store,
                                const uint8_t wallet[KCI_LEDGER_KEY_BYTES])
{
    MDB_val key = value_of(wallet, KCI_LEDGER_KEY_BYTES), value;
    uint64_t balance = 0;
    if (mdb_get(txn, store->balances, &key, &value) == 0 && value.mv_size == sizeof balance)
        memcpy(&balance, value.mv_data, sizeof balance);
    return balance;
}

/* ---- batches -------------------------------------------------------------------- */

int kci_ledger_batch_begin(kci_ledger_batch *batch, kci_ledger_store *store)
{
    *batch = (kci_ledger_batch){.store = store,
                                .history_next = store->history_next,
                                .supply_total = store->supply_total,
                                .now_ms = kci_wall_ms()};
    return mdb_txn_begin(store->env, NULL, 0, &batch->txn);
}

int kci_ledger_batch_commit(kci_ledger_batch *batch)
{
    kci_ledger_store *store = batch->store;
    int rc = meta_put_u64(batch->txn, store->meta, "history_next", batch->history_next);
    if (rc == 0) rc = meta_put_u64(batch->txn, store->meta, "supply_total", batch->supply_total);
    if (rc != 0) {
        kci_ledger_batch_abort(batch);
        return rc;
    }
    rc = mdb_txn_commit(batch->txn);
    batch->txn = NULL;
    if (rc == 0) {
        store->history_next = batch->history_next;
        store->supply_total = batch->supply_total;
    }
    return rc;
}

void kci_ledger_batch_abort(kci_ledger_batch *batch)
{
    if (batch->txn != NULL) mdb_txn_abort(batch->txn);
    batch->txn = NULL;
}

const char *kci_ledger_rc_text(int rc)
{
    if (rc == STORE_INVARIANT_BROKEN) return "an invariant of the stored state is broken";
    if (rc == ENOMEM) return "out of memory";
    return mdb_strerror(rc);
}

/* ---- primitive writes ----------------------------------------------------------- */

static int coin_put(kci_ledger_batch *batch, const uint8_t id[KCI_LEDGER_ID_BYTES],
                    const kci_ledger_coin_record *record)
{
    MDB_val key = value_of(id, KCI_LEDGER_ID_BYTES), value = value_of(record, sizeof *record);
    return mdb_put(batch->txn, batch->store->coins, &key, &value, 0);
}

/* Adds (sign +1) or removes (-1) amount from wallet's balance. */
static int balance_add(kci_ledger_batch *batch, const uint8_t wallet[KCI_LEDGER_KEY_BYTES],
                       uint64_t amount, int sign)
{
    uint64_t balance = kci_ledger_balance_get(batch->txn, batch->store, wallet);
    if (sign < 0 && balance < amount) return STORE_INVARIANT_BROKEN; /* a negative balance */
    balance = sign > 0 ? balance + amount : balance - amount;
    assert(balance <= KCI_LEDGER_AMOUNT_MAX); /* total supply bounds every balance */
    MDB_val key = value_of(wallet, KCI_LEDGER_KEY_BYTES);
    if (balance == 0) {
        int rc = mdb_del(batch->txn, batch->store->balances, &key, NULL);
        return rc == MDB_NOTFOUND ? 0 : rc;
    }
    MDB_val value = value_of(&balance, sizeof balance);
    return mdb_put(batch->txn, batch->store->balances, &key, &value, 0);
}

/* The reference wallet -> coin: +1 adds it (it must not exist: a coin has
 * one holder), -1 drops it (it must exist). Either failure means the
 * singleton rule is broken in the stored state. */
static int reference_change(kci_ledger_batch *batch, const uint8_t wallet[KCI_LEDGER_KEY_BYTES],
                            const uint8_t coin[KCI_LEDGER_ID_BYTES], int delta)
{
    MDB_val key = value_of(wallet, KCI_LEDGER_KEY_BYTES);
    MDB_val value = value_of(coin, KCI_LEDGER_ID_BYTES);
    int rc = delta > 0 ? mdb_put(batch->txn, batch->store->owned, &key, &value, MDB_NODUPDATA)
                       : mdb_del(batch->txn, batch->store->owned, &key, &value);
    if (rc == MDB_KEYEXIST || rc == MDB_NOTFOUND) {
        char text[37];
        kci_ledger_id_text(text, coin);
        kci_error("ledger: invariant broken: coin %s %s", text,
                  delta > 0 ? "has a second reference" : "lost its reference");
        return STORE_INVARIANT_BROKEN;
    }
    return rc;
}

static int supply_add(kci_ledger_batch *batch, uint64_t denomination, int delta)
{
    uint8_t key_bytes[8];
    kci_ledger_sequence_key(key_bytes, denomination);
    MDB_val key = value_of(key_bytes, sizeof key_bytes), value;
    uint64_t count = 0;
    int rc = mdb_get(batch->txn, batch->store->supply, &key, &value);
    if (rc == 0 && value.mv_size == sizeof count) memcpy(&count, value.mv_data, sizeof count);
    if (rc != 0 && rc != MDB_NOTFOUND) return rc;
    if (delta < 0 && count == 0) return STORE_INVARIANT_BROKEN;
    count = delta > 0 ? count + 1 : count - 1;
    if (count == 0) return mdb_del(batch->txn, batch->store->supply, &key, NULL);
    value = value_of(&count, sizeof count);
    return mdb_put(batch->txn, batch->store->supply, &key, &value, 0);
}

static int transfer_put(kci_ledger_batch *batch, const kci_ledger_transfer *transfer)
{
    stored_head head = {
        .kind = transfer->kind,
        .coin_count = transfer->coin_count,
        .denomination_count = transfer->denomination_count,
        .amount = transfer->amount,
        .time_ms = transfer->time_ms,
    };
    memcpy(head.from, transfer->from, KCI_LEDGER_KEY_BYTES);
    memcpy(head.to, transfer->to, KCI_LEDGER_KEY_BYTES);
    memcpy(head.signature, transfer->signature, KCI_LEDGER_SIGNATURE_BYTES);
    size_t coins_bytes = (size_t)transfer->coin_count * sizeof(kci_ledger_coin);
    size_t asked_bytes = (size_t)transfer->denomination_count * sizeof(uint64_t);
    MDB_val key = value_of(transfer->id, KCI_LEDGER_ID_BYTES);
    MDB_val value = {.mv_size = sizeof head + coins_bytes + asked_bytes};
    int rc = mdb_put(batch->txn, batch->store->transfers, &key, &value, MDB_RESERVE);
    if (rc != 0) return rc;
    uint8_t *cursor = value.mv_data;
    memcpy(cursor, &head, sizeof head);
    memcpy(cursor + sizeof head, transfer->coins, coins_bytes);
    if (asked_bytes > 0)
        memcpy(cursor + sizeof head + coins_bytes, transfer->denominations, asked_bytes);
    return 0;
}

static int history_append(kci_ledger_batch *batch, const kci_ledger_transfer *transfer)
{
    /* The ledger's clock, not the signer's: history pages by when it happened here. */
    kci_ledger_edge edge = {.amount = transfer->amount, .time_ms = batch->now_ms};
    if (transfer->kind != KCI_LEDGER_KIND_ISSUE)
        memcpy(edge.from, transfer->from, KCI_LEDGER_KEY_BYTES);
    memcpy(edge.to, transfer->to, KCI_LEDGER_KEY_BYTES);
    memcpy(edge.transfer, transfer->id, KCI_LEDGER_ID_BYTES);
    uint8_t key_bytes[8];
    kci_ledger_sequence_key(key_bytes, batch->history_next++);
    MDB_val key = value_of(key_bytes, sizeof key_bytes), value = value_of(&edge, sizeof edge);
    return mdb_put(batch->txn, batch->store->history, &key, &value, MDB_APPEND);
}

/* One hop of coin: record, reference, trail row. */
static int coin_move(kci_ledger_batch *batch, const kci_ledger_transfer *transfer,
                     const uint8_t coin[KCI_LEDGER_ID_BYTES], kci_ledger_coin_record *record)
{
    memcpy(record->owner, transfer->to, KCI_LEDGER_KEY_BYTES);
    memcpy(record->last_transfer, transfer->id, KCI_LEDGER_ID_BYTES);
    record->moved_ms = transfer->time_ms;
    uint8_t key_bytes[TRAIL_KEY_BYTES];
    kci_ledger_trail_key(key_bytes, coin, record->hop_count);
    record->hop_count++;
    MDB_val key = value_of(key_bytes, sizeof key_bytes);
    MDB_val value = value_of(transfer->id, KCI_LEDGER_ID_BYTES);
    int rc = mdb_put(batch->txn, batch->store->trail, &key, &value, MDB_NOOVERWRITE);
    if (rc == 0) rc = coin_put(batch, coin, record);
    return rc;
}

/* ---- issue ------------------------------------------------------------------------ */

/* New coins to issue->to: the issue is signed by the mint here. */
static int issue_coins(kci_ledger_batch *batch, kci_ledger_transfer *issue)
{
    kci_ledger_store *store = batch->store;
    int rc = 0;
    for (uint32_t index = 0; rc == 0 && index < issue->coin_count; index++) {
        kci_ledger_coin_record record = {.denomination = issue->coins[index].denomination,
                                         .state = KCI_LEDGER_COIN_LIVE};
        rc = coin_move(batch, issue, issue->coins[index].id, &record);
        if (rc == 0) rc = reference_change(batch, issue->to, issue->coins[index].id, +1);
        if (rc == 0) rc = supply_add(batch, record.denomination, +1);
    }
    if (rc == 0) rc = balance_add(batch, issue->to, issue->amount, +1);
    if (rc == 0 && kci_ledger_sign(issue, store->mint.secret_key) != KC_OK) rc = ENOMEM;
    if (rc == 0) rc = transfer_put(batch, issue);
    return rc;
}

/* Fills issue with new coin ids (UUIDv7, sorted as made) of denominations. */
static kc_err issue_prepare(kci_ledger_batch *batch, kci_ledger_transfer *issue,
                            const uint8_t to[KCI_LEDGER_KEY_BYTES], const uint64_t *denominations,
                            uint32_t count)
{
    memset(issue, 0, sizeof *issue);
    issue->coins = calloc(count, sizeof *issue->coins);
    if (issue->coins == NULL) return KC_ERR_NOMEM;
    kci_uuid uuid;
    kci_uuid_v7(&uuid);
    memcpy(issue->id, uuid.bytes, KCI_LEDGER_ID_BYTES);
    issue->kind = KCI_LEDGER_KIND_ISSUE;
    memcpy(issue->from, batch->store->mint.public_key, KCI_LEDGER_KEY_BYTES);
    memcpy(issue->to, to, KCI_LEDGER_KEY_BYTES);
    issue->time_ms = batch->now_ms;
    issue->coin_count = count;
    for (uint32_t index = 0; index < count; index++) {
        kci_uuid_v7(&uuid); /* increasing within the process: sorted */
        memcpy(issue->coins[index].id, uuid.bytes, KCI_LEDGER_ID_BYTES);
        issue->coins[index].denomination = denominations[index];
        issue->amount += denominations[index];
    }
    return KC_OK;
}

int kci_ledger_apply_issue(kci_ledger_batch *batch, const kci_ledger_grant *grant,
                           uint8_t transfer_id[KCI_LEDGER_ID_BYTES], kci_ledger_coin *coins_out,
                           kci_ledger_outcome *outcome)
{
    if (memcmp(grant->to, batch->store->mint.public_key, KCI_LEDGER_KEY_BYTES) == 0) {
        kci_ledger_outcome_fail(outcome, KCI_LEDGER_CODE_FORBIDDEN,
                                "the mint cannot mint to itself");
        return 0;
    }
    kci_ledger_transfer issue;
    if (issue_prepare(batch, &issue, grant->to, grant->denominations, grant->denomination_count) !=
        KC_OK)
        return ENOMEM;
    if (batch->supply_total + issue.amount > KCI_LEDGER_AMOUNT_MAX) {
        kci_ledger_outcome_fail(outcome, KCI_LEDGER_CODE_BAD_REQUEST,
                                "minting %" PRIu64 " would take the total supply above %" PRIu64,
                                issue.amount, KCI_LEDGER_AMOUNT_MAX);
        kci_ledger_transfer_free(&issue);
        return 0;
    }
    int rc = issue_coins(batch, &issue);
    if (rc == 0) rc = history_append(batch, &issue);
    if (rc == 0) {
        batch->supply_total += issue.amount;
        memcpy(transfer_id, issue.id, KCI_LEDGER_ID_BYTES);
        memcpy(coins_out, issue.coins, issue.coin_count * sizeof *coins_out);
    }
    kci_ledger_transfer_free(&issue);
    return rc;
}

/* ---- transfer ---------------------------------------------------------------------- */

/* A transfer id seen before: the same transfer again is a harmless replay
 * (a client retrying after a lost acknowledgement); anything else is a
 * reused id. Returns 1 when the id is taken (outcome set), 0 when new. */
static int check_replay(kci_ledger_batch *batch, const kci_ledger_transfer *transfer,
                        kci_ledger_outcome *outcome, int *rc_out)
{
    stored_head head;
    MDB_val value;
    int rc = head_get(batch->txn, batch->store, transfer->id, &head, &value);
    *rc_out = rc == MDB_NOTFOUND ? 0 : rc;
    if (rc != 0) return rc == MDB_NOTFOUND ? 0 : 1;
    char id[37];
    kci_ledger_id_text(id, transfer->id);
    if (head.kind == transfer->kind &&
        memcmp(head.signature, transfer->signature, KCI_LEDGER_SIGNATURE_BYTES) == 0 &&
        memcmp(head.from, transfer->from, KCI_LEDGER_KEY_BYTES) == 0)
        outcome->replayed = true;
    else
        kci_ledger_outcome_fail(outcome, KCI_LEDGER_CODE_CONFLICT,
                                "transfer id %s is already used by another transfer", id);
    return 1;
}

/* For a double spend: the hop of coin's trail that moved it away from
 * wallet (the newest such), into spent_by; false if wallet never held it. */
static bool find_spend(MDB_txn *txn, const kci_ledger_store *store,
                       const uint8_t coin[KCI_LEDGER_ID_BYTES], uint32_t hop_count,
                       const uint8_t wallet[KCI_LEDGER_KEY_BYTES], uint8_t spent_by[16])
{
    for (uint32_t hop = hop_count; hop-- > 0;) {
        uint8_t key_bytes[TRAIL_KEY_BYTES];
        kci_ledger_trail_key(key_bytes, coin, hop);
        MDB_val key = value_of(key_bytes, sizeof key_bytes), value;
        stored_head head;
        MDB_val transfer_value;
        if (mdb_get(txn, store->trail, &key, &value) != 0 || value.mv_size != KCI_LEDGER_ID_BYTES ||
            head_get(txn, store, value.mv_data, &head, &transfer_value) != 0)
            return false;
        if (head.kind != KCI_LEDGER_KIND_ISSUE &&
            memcmp(head.from, wallet, KCI_LEDGER_KEY_BYTES) == 0) {
            memcpy(spent_by, value.mv_data, KCI_LEDGER_ID_BYTES);
            return true;
        }
    }
    return false;
}

static void refuse_not_owner(kci_ledger_batch *batch, const kci_ledger_transfer *transfer,
                             const uint8_t coin[KCI_LEDGER_ID_BYTES],
                             const kci_ledger_coin_record *record, kci_ledger_outcome *outcome)
{
    char coin_text[37], last[37], spent[37], from[KCI_LEDGER_ADDRESS_TEXT_BYTES + 1];
    kci_ledger_id_text(coin_text, coin);
    kci_ledger_id_text(last, record->last_transfer);
    kci_ledger_hex(from, transfer->from, KCI_LEDGER_KEY_BYTES);
    uint8_t spent_by[KCI_LEDGER_ID_BYTES];
    if (record->state != KCI_LEDGER_COIN_LIVE)
        kci_ledger_outcome_fail(outcome, KCI_LEDGER_CODE_CONFLICT,
                                "coin %s was retired by exchange %s and cannot move", coin_text,
                                last);
    else if (find_spend(batch->txn, batch->store, coin, record->hop_count, transfer->from,
                        spent_by)) {
        kci_ledger_id_text(spent, spent_by);
        kci_ledger_outcome_fail(outcome, KCI_LEDGER_CODE_CONFLICT,
                                "double spend refused: coin %s was already spent by transfer %s",
                                coin_text, spent);
    } else
        kci_ledger_outcome_fail(outcome, KCI_LEDGER_CODE_CONFLICT,
                                "coin %s is not owned by the signer %.16s...; transfer %s moved "
                                "it last",
                                coin_text, from, last);
}

/* Checks every coin before anything is written: 0 and outcome untouched
 * when all are transferable. records gets each coin's record. */
static int check_coins(kci_ledger_batch *batch, const kci_ledger_transfer *transfer,
                       kci_ledger_coin_record *records, kci_ledger_outcome *outcome)
{
    uint64_t sum = 0;
    for (uint32_t index = 0; index < transfer->coin_count; index++) {
        const kci_ledger_coin *coin = &transfer->coins[index];
        int rc = kci_ledger_coin_get(batch->txn, batch->store, coin->id, &records[index]);
        char text[37] = "";
        if (rc != 0 || records[index].denomination != coin->denomination)
            kci_ledger_id_text(text, coin->id); /* only a refusal names it */
        if (rc == MDB_NOTFOUND) {
            kci_ledger_outcome_fail(outcome, KCI_LEDGER_CODE_NOT_FOUND, "unknown coin %s", text);
            return 0;
        }
        if (rc != 0) return rc;
        if (records[index].state != KCI_LEDGER_COIN_LIVE ||
            memcmp(records[index].owner, transfer->from, KCI_LEDGER_KEY_BYTES) != 0) {
            refuse_not_owner(batch, transfer, coin->id, &records[index], outcome);
            return 0;
        }
        if (records[index].denomination != coin->denomination) {
            kci_ledger_outcome_fail(outcome, KCI_LEDGER_CODE_BAD_SIGNATURE,
                                    "coin %s is worth %" PRIu64 ", not %" PRIu64, text,
                                    records[index].denomination, coin->denomination);
            return 0;
        }
        sum += coin->denomination;
    }
    if (sum != transfer->amount)
        kci_ledger_outcome_fail(outcome, KCI_LEDGER_CODE_BAD_REQUEST,
                                "the coins add up to %" PRIu64 ", not the amount %" PRIu64, sum,
                                transfer->amount);
    return 0;
}

/* Moves every coin from transfer->from to transfer->to (checked before). */
static int move_coins(kci_ledger_batch *batch, const kci_ledger_transfer *transfer,
                      kci_ledger_coin_record *records, bool retire)
{
    int rc = 0;
    for (uint32_t index = 0; rc == 0 && index < transfer->coin_count; index++) {
        const uint8_t *coin = transfer->coins[index].id;
        rc = reference_change(batch, transfer->from, coin, -1);
        if (rc == 0 && retire) {
            records[index].state = KCI_LEDGER_COIN_RETIRED;
            rc = supply_add(batch, records[index].denomination, -1);
            MDB_val key = value_of(coin, KCI_LEDGER_ID_BYTES), empty = value_of("", 0);
            if (rc == 0) rc = mdb_put(batch->txn, batch->store->retired, &key, &empty, 0);
        } else if (rc == 0) {
            rc = reference_change(batch, transfer->to, coin, +1);
        }
        if (rc == 0) rc = coin_move(batch, transfer, coin, &records[index]);
    }
    if (rc == 0) rc = balance_add(batch, transfer->from, transfer->amount, -1);
    if (rc == 0 && !retire) rc = balance_add(batch, transfer->to, transfer->amount, +1);
    if (rc == 0) rc = transfer_put(batch, transfer);
    return rc;
}

static bool refuse_mint_party(kci_ledger_batch *batch, const kci_ledger_transfer *transfer,
                              kci_ledger_outcome *outcome)
{
    const uint8_t *mint = batch->store->mint.public_key;
    if (memcmp(transfer->from, mint, KCI_LEDGER_KEY_BYTES) == 0 ||
        (transfer->kind == KCI_LEDGER_KIND_TRANSFER &&
         memcmp(transfer->to, mint, KCI_LEDGER_KEY_BYTES) == 0)) {
        kci_ledger_outcome_fail(outcome, KCI_LEDGER_CODE_FORBIDDEN,
                                "the mint is not a wallet: it only issues (mint) and takes coins "
                                "back (exchange)");
        return true;
    }
    return false;
}

int kci_ledger_apply_transfer(kci_ledger_batch *batch, const kci_ledger_transfer *transfer,
                              kci_ledger_outcome *outcome)
{
    assert(transfer->kind == KCI_LEDGER_KIND_TRANSFER);
    assert(transfer->coin_count > 0 && transfer->coin_count <= KCI_LEDGER_COINS_PER_TRANSFER_MAX);
    int rc = 0;
    if (refuse_mint_party(batch, transfer, outcome) || check_replay(batch, transfer, outcome, &rc))
        return rc;
    kci_ledger_coin_record records[KCI_LEDGER_COINS_PER_TRANSFER_MAX];
    rc = check_coins(batch, transfer, records, outcome);
    if (rc != 0 || outcome->code != 0) return rc;
    rc = move_coins(batch, transfer, records, false);
    if (rc == 0) rc = history_append(batch, transfer);
    return rc;
}

int kci_ledger_apply_exchange(kci_ledger_batch *batch, const kci_ledger_transfer *exchange,
                              uint8_t issue_id[KCI_LEDGER_ID_BYTES], kci_ledger_coin *coins_out,
                              kci_ledger_outcome *outcome)
{
    assert(exchange->kind == KCI_LEDGER_KIND_EXCHANGE);
    int rc = 0;
    if (refuse_mint_party(batch, exchange, outcome) || check_replay(batch, exchange, outcome, &rc))
        return rc;
    kci_ledger_coin_record records[KCI_LEDGER_COINS_PER_TRANSFER_MAX];
    rc = check_coins(batch, exchange, records, outcome);
    if (rc != 0 || outcome->code != 0) return rc;
    rc = move_coins(batch, exchange, records, true);
    kci_ledger_transfer issue;
    if (rc == 0 && issue_prepare(batch, &issue, exchange->from, exchange->denominations,
                                 exchange->denomination_count) != KC_OK)
        return ENOMEM;
    if (rc != 0) return rc;
    /* The retired value comes back as the new coins: the supply is unchanged. */
    rc = issue_coins(batch, &issue);
    if (rc == 0) {
        memcpy(issue_id, issue.id, KCI_LEDGER_ID_BYTES);
        memcpy(coins_out, issue.coins, issue.coin_count * sizeof *coins_out);
    }
    kci_ledger_transfer_free(&issue);
    return rc;
}

/* ---- payment claims ---------------------------------------------------------------- */

int kci_ledger_apply_payment(kci_ledger_batch *batch, const uint8_t transfer[KCI_LEDGER_ID_BYTES],
                             const uint8_t payee[KCI_LEDGER_KEY_BYTES], uint64_t min_amount,
                             const char *request_id, kci_ledger_outcome *outcome)
{
    stored_head head;
    MDB_val value;
    char id[37], to[KCI_LEDGER_ADDRESS_TEXT_BYTES + 1];
    kci_ledger_id_text(id, transfer);
    int rc = head_get(batch->txn, batch->store, transfer, &head, &value);
    if (rc == MDB_NOTFOUND) {
        kci_ledger_outcome_fail(outcome, KCI_LEDGER_CODE_UNPAID,
                                "payment %s: no such transfer in the ledger", id);
        return 0;
    }
    if (rc != 0) return rc;
    kci_ledger_hex(to, head.to, KCI_LEDGER_KEY_BYTES);
    head.paid_request[PAID_REQUEST_BYTES - 1] = '\0';
    if (head.kind != KCI_LEDGER_KIND_TRANSFER)
        kci_ledger_outcome_fail(outcome, KCI_LEDGER_CODE_UNPAID,
                                "payment %s: not a transfer between wallets", id);
    else if (memcmp(head.to, payee, KCI_LEDGER_KEY_BYTES) != 0)
        kci_ledger_outcome_fail(outcome, KCI_LEDGER_CODE_UNPAID,
                                "payment %s paid wallet %.16s..., not this service's wallet", id,
                                to);
    else if (head.amount < min_amount)
        kci_ledger_outcome_fail(outcome, KCI_LEDGER_CODE_UNPAID,
                                "payment %s paid %" PRIu64 ", the price is %" PRIu64, id,
                                head.amount, min_amount);
    else if (head.paid_request[0] != '\0' && strcmp(head.paid_request, request_id) != 0)
        kci_ledger_outcome_fail(outcome, KCI_LEDGER_CODE_CONFLICT,
                                "payment %s already paid request %s", id, head.paid_request);
    if (outcome->code != 0 || head.paid_request[0] != '\0') {
        outcome->replayed = outcome->code == 0;
        return 0;
    }
    /* Rewrite the record in place with the request that it paid. */
    uint8_t *copy = malloc(value.mv_size);
    if (copy == NULL) return ENOMEM;
    memcpy(copy, value.mv_data, value.mv_size);
    snprintf(head.paid_request, sizeof head.paid_request, "%s", request_id);
    memcpy(copy, &head, sizeof head);
    MDB_val key = value_of(transfer, KCI_LEDGER_ID_BYTES), updated = value_of(copy, value.mv_size);
    rc = mdb_put(batch->txn, batch->store->transfers, &key, &updated, 0);
    free(copy);
    return rc;
}

/* ---- the reaper --------------------------------------------------------------------- */

/* Frees coin's trail rows; the record stays (REAPED) so the id stays spent. */
static int reap_coin(kci_ledger_batch *batch, const uint8_t coin[KCI_LEDGER_ID_BYTES],
                     kci_ledger_coin_record *record)
{
    assert(record->state == KCI_LEDGER_COIN_RETIRED);
    int rc = 0;
    for (uint32_t hop = 0; rc == 0 && hop < record->hop_count; hop++) {
        uint8_t key_bytes[TRAIL_KEY_BYTES];
        kci_ledger_trail_key(key_bytes, coin, hop);
        MDB_val key = value_of(key_bytes, sizeof key_bytes);
        rc = mdb_del(batch->txn, batch->store->trail, &key, NULL);
        if (rc == MDB_NOTFOUND) rc = 0;
    }
    record->state = KCI_LEDGER_COIN_REAPED;
    if (rc == 0) rc = coin_put(batch, coin, record);
    MDB_val key = value_of(coin, KCI_LEDGER_ID_BYTES);
    if (rc == 0) rc = mdb_del(batch->txn, batch->store->retired, &key, NULL);
    return rc;
}

int kci_ledger_reap(kci_ledger_batch *batch, int64_t age_ms_min, uint32_t count_max,
                    uint32_t *reaped_count)
{
    *reaped_count = 0;
    MDB_cursor *cursor = NULL;
    int rc = mdb_cursor_open(batch->txn, batch->store->retired, &cursor);
    MDB_val key, value;
    uint8_t coins[64][KCI_LEDGER_ID_BYTES];
    uint32_t found = 0;
    /* Collect first, then write: a cursor must not see its own deletes. */
    for (int op = MDB_FIRST; rc == 0 && found < count_max && found < 64; op = MDB_NEXT) {
        rc = mdb_cursor_get(cursor, &key, &value, (MDB_cursor_op)op);
        if (rc == 0 && key.mv_size == KCI_LEDGER_ID_BYTES)
            memcpy(coins[found++], key.mv_data, KCI_LEDGER_ID_BYTES);
    }
    if (cursor != NULL) mdb_cursor_close(cursor);
    if (rc == MDB_NOTFOUND) rc = 0;
    for (uint32_t index = 0; rc == 0 && index < found; index++) {
        kci_ledger_coin_record record;
        rc = kci_ledger_coin_get(batch->txn, batch->store, coins[index], &record);
        if (rc != 0 || record.state != KCI_LEDGER_COIN_RETIRED) {
            rc = rc == 0 ? STORE_INVARIANT_BROKEN : rc;
            break;
        }
        if (batch->now_ms - record.moved_ms < age_ms_min) continue;
        rc = reap_coin(batch, coins[index], &record);
        if (rc == 0) (*reaped_count)++;
    }
    return rc;
}
