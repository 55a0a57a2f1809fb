/* store_digest.c - a digest of the ledger's whole state (store.h,
 * kci_ledger_content_digest), for `kcobra ledger audit --replicas`: two
 * replicas that applied the same log up to the same entry must hold the
 * same bytes in every table, so the same digest; a replica that diverged
 * (a bug, a disk that lied, a hand edit) shows a different one.
 *
 * BLAKE2b-256 (libsodium's crypto_generichash) over, table by table in a
 * fixed order: the table's name, then each entry in key order as key length
 * (u32 BE), key, value length (u32 BE), value. One read snapshot: the state
 * is one committed transaction's. It reads everything: O(state), run on
 * demand, never on the write path. */
#include "store_internal.h"

#include <assert.h>
#include <sodium.h>
#include <string.h>

static void hash_length(crypto_generichash_state *state, size_t length)
{
    uint8_t bytes[4] = {(uint8_t)(length >> 24), (uint8_t)(length >> 16), (uint8_t)(length >> 8),
                        (uint8_t)length};
    crypto_generichash_update(state, bytes, sizeof bytes);
}

static kc_err hash_table(crypto_generichash_state *state, MDB_txn *txn, MDB_dbi dbi,
                         const char *name, uint64_t *entry_count)
{
    crypto_generichash_update(state, (const unsigned char *)name, strlen(name) + 1);
    MDB_cursor *cursor = NULL;
    int rc = mdb_cursor_open(txn, dbi, &cursor);
    MDB_val key, value;
    for (int op = MDB_FIRST; rc == 0; op = MDB_NEXT) {
        rc = mdb_cursor_get(cursor, &key, &value, (MDB_cursor_op)op);
        if (rc != 0) break;
        hash_length(state, key.mv_size);
        crypto_generichash_update(state, key.mv_data, key.mv_size);
        hash_length(state, value.mv_size);
        crypto_generichash_update(state, value.mv_data, value.mv_size);
        (*entry_count)++;
    }
    if (cursor != NULL) mdb_cursor_close(cursor);
    return rc == MDB_NOTFOUND ? KC_OK : store_error(rc);
}

kc_err kci_ledger_content_digest(kci_ledger_read *read, uint8_t digest[KCI_LEDGER_DIGEST_BYTES],
                                 uint64_t *entry_count)
{
    const kci_ledger_store *store = read->store;
    const struct {
        const char *name;
        MDB_dbi dbi;
    } tables[] = {
        {"meta", store->meta},         {"coins", store->coins},         {"owned", store->owned},
        {"balances", store->balances}, {"transfers", store->transfers}, {"trail", store->trail},
        {"history", store->history},   {"supply", store->supply},       {"retired", store->retired},
        {"chain", store->chain},       {"holds", store->holds},         {"held", store->held},
        {"expiry", store->expiry},
    };
    crypto_generichash_state state;
    crypto_generichash_init(&state, NULL, 0, KCI_LEDGER_DIGEST_BYTES);
    *entry_count = 0;
    kc_err err = KC_OK;
    for (size_t index = 0; err == KC_OK && index < sizeof tables / sizeof tables[0]; index++)
        err = hash_table(&state, read->txn, tables[index].dbi, tables[index].name, entry_count);
    crypto_generichash_final(&state, digest, KCI_LEDGER_DIGEST_BYTES);
    return err;
}
