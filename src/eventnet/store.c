/* store.c - the EventNet graph in LMDB (store.h).
 *
 * Five named databases in one environment:
 *   events   id (16 bytes) -> ts (12, big-endian wall ms and counter),
 *            kind, node and subject, each NUL-terminated
 *   time     ts (12) + id (16) -> "": the HLC order, for scans and retention
 *   causes   effect id -> cause id (DUPSORT, DUPFIXED): effect -> cause
 *   effects  cause id -> effect id (DUPSORT, DUPFIXED): cause -> effect
 *   meta     "horizon" -> ts (12): the newest time dropped by retention
 * A cause edge is kept even when the cause was never seen (check reports it
 * missing). Each add is one write transaction. The environment is opened
 * with MDB_NOSYNC: a committed transaction is in the file (the page cache)
 * when add returns, so a kill -9 of the recorder loses nothing; a power cut
 * may lose the last transactions (the graph is an observation, not a
 * ledger; docs/eventnet.md). MDB_NOTLS: a scan's visitor may read in
 * its own transaction on the same thread. */
#include "eventnet/store.h"

#include <assert.h>
#include <lmdb.h>
#include <stdlib.h>
#include <string.h>

#include "common/dir.h"

#include "service/last_error.h"

enum {
    TS_BYTES = 12,
    ID_BYTES = 16,
    TIME_KEY_BYTES = TS_BYTES + ID_BYTES,
    RECORD_BYTES_MAX = TS_BYTES + KCI_EVENT_KIND_BYTES_MAX + KCI_EVENT_NODE_BYTES_MAX +
                       KCI_EVENT_SUBJECT_BYTES_MAX + 3,
    DATABASE_COUNT = 5,
};
#define MAP_SIZE_BYTES ((size_t)1 << 30)
_Static_assert(sizeof(kci_uuid) == ID_BYTES, "a uuid is 16 bytes");

struct kci_eventnet_store {
    MDB_env *env;
    MDB_dbi events, time, causes, effects, meta;
    uint64_t events_max;
};

static kc_err lmdb_fail(int rc, const char *what)
{
    if (rc == MDB_MAP_FULL)
        return kci_fail(KC_ERR_LIMIT, "eventnet: %s: %s", what, mdb_strerror(rc));
    return kci_fail(KC_ERR_IO, "eventnet: %s: %s", what, mdb_strerror(rc));
}

static void ts_encode(const kci_hlc_timestamp *ts, unsigned char out[TS_BYTES])
{
    uint64_t wall = (uint64_t)ts->wall_ms;
    for (int index = 0; index < 8; index++)
        out[index] = (unsigned char)(wall >> (56 - 8 * index));
    for (int index = 0; index < 4; index++)
        out[8 + index] = (unsigned char)(ts->counter >> (24 - 8 * index));
}

static void ts_decode(const unsigned char in[TS_BYTES], kci_hlc_timestamp *ts)
{
    uint64_t wall = 0;
    uint32_t counter = 0;
    for (int index = 0; index < 8; index++)
        wall = wall << 8 | in[index];
    for (int index = 0; index < 4; index++)
        counter = counter << 8 | in[8 + index];
    ts->wall_ms = (int64_t)wall;
    ts->counter = counter;
}

static kc_err open_databases(kci_eventnet_store *store, bool read_only)
{
    MDB_txn *txn = NULL;
    int rc = mdb_txn_begin(store->env, NULL, read_only ? MDB_RDONLY : 0, &txn);
    if (rc != 0) return lmdb_fail(rc, "begin");
    unsigned create = read_only ? 0 : MDB_CREATE;
    unsigned dup = MDB_DUPSORT | MDB_DUPFIXED;
    if (rc == 0) rc = mdb_dbi_open(txn, "events", create, &store->events);
    if (rc == 0) rc = mdb_dbi_open(txn, "time", create, &store->time);
    if (rc == 0) rc = mdb_dbi_open(txn, "causes", create | dup, &store->causes);
    if (rc == 0) rc = mdb_dbi_open(txn, "effects", create | dup, &store->effects);
    if (rc == 0) rc = mdb_dbi_open(txn, "meta", create, &store->meta);
    if (rc != 0) {
        mdb_txn_abort(txn);
        return lmdb_fail(rc, rc == MDB_NOTFOUND ? "no graph there yet" : "open databases");
    }
    rc = mdb_txn_commit(txn);
    return rc == 0 ? KC_OK : lmdb_fail(rc, "commit");
}

kc_err kci_eventnet_store_open(kci_eventnet_store **out, const char *directory, bool read_only,
                               uint64_t events_max)
{
    *out = NULL;
    int error_number =
        read_only || directory[0] == '\0' ? 0 : kci_directory_create_path(directory, 0700);
    if (error_number != 0)
        return kci_fail(KC_ERR_IO, "eventnet: cannot create %s: %s", directory,
                        strerror(error_number));
    kci_eventnet_store *store = calloc(1, sizeof *store);
    if (store == NULL) return kci_fail(KC_ERR_NOMEM, "eventnet: out of memory");
    store->events_max = events_max;
    int rc = mdb_env_create(&store->env);
    if (rc == 0) rc = mdb_env_set_maxdbs(store->env, DATABASE_COUNT);
    if (rc == 0) rc = mdb_env_set_mapsize(store->env, MAP_SIZE_BYTES);
    if (rc == 0)
        rc = mdb_env_open(store->env, directory,
                          (read_only ? MDB_RDONLY : 0) | MDB_NOSYNC | MDB_NOTLS, 0600);
    kc_err err = rc == 0 ? open_databases(store, read_only) : lmdb_fail(rc, directory);
    if (err != KC_OK) {
        kci_eventnet_store_close(store);
        return err;
    }
    *out = store;
    return KC_OK;
}

void kci_eventnet_store_close(kci_eventnet_store *store)
{
    if (store == NULL) return;
    if (store->env != NULL) mdb_env_close(store->env);
    free(store);
}

/* ---- records --------------------------------------------------------------- */

static size_t record_encode(const kci_event *event, unsigned char out[RECORD_BYTES_MAX])
{
    ts_encode(&event->ts, out);
    size_t position = TS_BYTES;
    const char *texts[] = {event->kind, event->node, event->subject};
    for (size_t index = 0; index < 3; index++) {
        size_t length = strlen(texts[index]);
        memcpy(out + position, texts[index], length + 1);
        position += length + 1;
    }
    assert(position <= RECORD_BYTES_MAX);
    return position;
}

/* Checks the record's shape before trusting it (the file may be damaged). */
static kc_err record_decode(const MDB_val *value, kci_event *out)
{
    const unsigned char *bytes = value->mv_data;
    if (value->mv_size < TS_BYTES + 3 || value->mv_size > RECORD_BYTES_MAX ||
        bytes[value->mv_size - 1] != '\0')
        return kci_fail(KC_ERR_CORRUPT, "eventnet: an event record of %zu bytes is damaged",
                        value->mv_size);
    ts_decode(bytes, &out->ts);
    const char *text = (const char *)bytes + TS_BYTES;
    const char *end = (const char *)bytes + value->mv_size;
    char *fields[] = {out->kind, out->node, out->subject};
    size_t sizes[] = {sizeof out->kind, sizeof out->node, sizeof out->subject};
    for (size_t index = 0; index < 3; index++) {
        if (text >= end) return kci_fail(KC_ERR_CORRUPT, "eventnet: an event record is damaged");
        size_t length = strnlen(text, (size_t)(end - text));
        if (length >= sizes[index])
            return kci_fail(KC_ERR_CORRUPT, "eventnet: an event record is damaged");
        memcpy(fields[index], text, length + 1);
        text += length + 1;
    }
    return KC_OK;
}

static int dup_list(MDB_txn *txn, MDB_dbi dbi, const kci_uuid *id, kci_uuid *ids, size_t ids_max,
                    size_t *count)
{
    *count = 0;
    MDB_cursor *cursor = NULL;
    int rc = mdb_cursor_open(txn, dbi, &cursor);
    if (rc != 0) return rc;
    MDB_val key = {ID_BYTES, (void *)id}, value;
    rc = mdb_cursor_get(cursor, &key, &value, MDB_SET_KEY);
    while (rc == 0 && *count < ids_max) {
        if (value.mv_size == ID_BYTES) memcpy(&ids[(*count)++], value.mv_data, ID_BYTES);
        rc = mdb_cursor_get(cursor, &key, &value, MDB_NEXT_DUP);
    }
    mdb_cursor_close(cursor);
    return rc == MDB_NOTFOUND ? 0 : rc;
}

static kc_err get_in(kci_eventnet_store *store, MDB_txn *txn, const kci_uuid *id, kci_event *out)
{
    MDB_val key = {ID_BYTES, (void *)id}, value;
    int rc = mdb_get(txn, store->events, &key, &value);
    if (rc == MDB_NOTFOUND) return KC_ERR_NOT_FOUND;
    if (rc != 0) return lmdb_fail(rc, "get");
    kc_err err = record_decode(&value, out);
    if (err != KC_OK) return err;
    out->id = *id;
    rc = dup_list(txn, store->causes, id, out->causes, KCI_CAUSE_IDS_MAX, &out->cause_count);
    return rc == 0 ? KC_OK : lmdb_fail(rc, "causes");
}

/* ---- adding and retention -------------------------------------------------- */

static int delete_list(MDB_txn *txn, MDB_dbi dbi, const kci_uuid *id)
{
    MDB_val key = {ID_BYTES, (void *)id};
    int rc = mdb_del(txn, dbi, &key, NULL);
    return rc == MDB_NOTFOUND ? 0 : rc;
}

/* Drops the oldest event: its record, its time key and both of its edge
 * lists; others' edges to it stay (their cause is then behind the horizon). */
static int drop_oldest(kci_eventnet_store *store, MDB_txn *txn)
{
    MDB_cursor *cursor = NULL;
    int rc = mdb_cursor_open(txn, store->time, &cursor);
    if (rc != 0) return rc;
    MDB_val key, value;
    rc = mdb_cursor_get(cursor, &key, &value, MDB_FIRST);
    if (rc == 0 && key.mv_size != TIME_KEY_BYTES) rc = MDB_CORRUPTED;
    unsigned char time_key[TIME_KEY_BYTES];
    if (rc == 0) memcpy(time_key, key.mv_data, TIME_KEY_BYTES);
    if (rc == 0) rc = mdb_cursor_del(cursor, 0);
    mdb_cursor_close(cursor);
    if (rc != 0) return rc;
    kci_uuid id;
    memcpy(&id, time_key + TS_BYTES, ID_BYTES);
    MDB_val id_key = {ID_BYTES, &id};
    rc = mdb_del(txn, store->events, &id_key, NULL);
    if (rc == 0 || rc == MDB_NOTFOUND) rc = delete_list(txn, store->causes, &id);
    if (rc == 0) rc = delete_list(txn, store->effects, &id);
    MDB_val horizon_key = {sizeof "horizon" - 1, "horizon"}, horizon = {TS_BYTES, time_key};
    if (rc == 0) rc = mdb_put(txn, store->meta, &horizon_key, &horizon, 0);
    return rc;
}

static int retain(kci_eventnet_store *store, MDB_txn *txn)
{
    MDB_stat stat;
    int rc = mdb_stat(txn, store->events, &stat);
    for (size_t excess = rc == 0 && stat.ms_entries > store->events_max
                             ? stat.ms_entries - store->events_max
                             : 0;
         rc == 0 && excess > 0; excess--)
        rc = drop_oldest(store, txn);
    return rc;
}

static int put_event(kci_eventnet_store *store, MDB_txn *txn, const kci_event *event)
{
    unsigned char record[RECORD_BYTES_MAX], time_key[TIME_KEY_BYTES];
    MDB_val key = {ID_BYTES, (void *)&event->id}, value = {record_encode(event, record), record};
    int rc = mdb_put(txn, store->events, &key, &value, MDB_NOOVERWRITE);
    if (rc != 0) return rc;
    ts_encode(&event->ts, time_key);
    memcpy(time_key + TS_BYTES, &event->id, ID_BYTES);
    MDB_val time = {TIME_KEY_BYTES, time_key}, empty = {0, ""};
    rc = mdb_put(txn, store->time, &time, &empty, 0);
    for (size_t index = 0; rc == 0 && index < event->cause_count; index++) {
        MDB_val cause = {ID_BYTES, (void *)&event->causes[index]};
        rc = mdb_put(txn, store->causes, &key, &cause, MDB_NODUPDATA);
        if (rc == 0 || rc == MDB_KEYEXIST)
            rc = mdb_put(txn, store->effects, &cause, &key, MDB_NODUPDATA);
        if (rc == MDB_KEYEXIST) rc = 0;
    }
    return rc;
}

kc_err kci_eventnet_store_add(kci_eventnet_store *store, const kci_event *event, bool *added)
{
    assert(store != NULL && event != NULL && event->cause_count <= KCI_CAUSE_IDS_MAX);
    *added = false;
    MDB_txn *txn = NULL;
    int rc = mdb_txn_begin(store->env, NULL, 0, &txn);
    if (rc != 0) return lmdb_fail(rc, "begin");
    rc = put_event(store, txn, event);
    if (rc == MDB_KEYEXIST) {
        mdb_txn_abort(txn);
        return KC_OK;
    }
    if (rc == 0) rc = retain(store, txn);
    if (rc != 0) {
        mdb_txn_abort(txn);
        return lmdb_fail(rc, "add");
    }
    rc = mdb_txn_commit(txn);
    if (rc != 0) return lmdb_fail(rc, "commit");
    *added = true;
    return KC_OK;
}

/* ---- reading --------------------------------------------------------------- */

kc_err kci_eventnet_store_get(kci_eventnet_store *store, const kci_uuid *id, kci_event *out)
{
    MDB_txn *txn = NULL;
    int rc = mdb_txn_begin(store->env, NULL, MDB_RDONLY, &txn);
    if (rc != 0) return lmdb_fail(rc, "begin");
    kc_err err = get_in(store, txn, id, out);
    mdb_txn_abort(txn);
    return err;
}

kc_err kci_eventnet_store_neighbours(kci_eventnet_store *store, const kci_uuid *id, bool effects,
                                     kci_uuid *ids, size_t ids_max, size_t *count)
{
    MDB_txn *txn = NULL;
    int rc = mdb_txn_begin(store->env, NULL, MDB_RDONLY, &txn);
    if (rc != 0) return lmdb_fail(rc, "begin");
    rc = dup_list(txn, effects ? store->effects : store->causes, id, ids, ids_max, count);
    mdb_txn_abort(txn);
    return rc == 0 ? KC_OK : lmdb_fail(rc, "edges");
}

static kc_err scan_in(kci_eventnet_store *store, MDB_txn *txn, MDB_cursor *cursor,
                      const kci_hlc_timestamp *since, uint64_t limit, kci_event_visit visit,
                      void *context)
{
    unsigned char start[TIME_KEY_BYTES] = {0};
    if (since != NULL) ts_encode(since, start);
    MDB_val key = {TIME_KEY_BYTES, start}, value;
    int rc = mdb_cursor_get(cursor, &key, &value, MDB_SET_RANGE);
    for (uint64_t visited = 0; rc == 0 && visited < limit; visited++) {
        if (key.mv_size != TIME_KEY_BYTES)
            return kci_fail(KC_ERR_CORRUPT, "eventnet: a time key is damaged");
        kci_uuid id;
        memcpy(&id, (const unsigned char *)key.mv_data + TS_BYTES, ID_BYTES);
        kci_event event;
        kc_err err = get_in(store, txn, &id, &event);
        if (err != KC_OK) return err == KC_ERR_NOT_FOUND ? lmdb_fail(MDB_CORRUPTED, "scan") : err;
        if (!visit(&event, context)) return KC_OK;
        rc = mdb_cursor_get(cursor, &key, &value, MDB_NEXT);
    }
    return rc == 0 || rc == MDB_NOTFOUND ? KC_OK : lmdb_fail(rc, "scan");
}

kc_err kci_eventnet_store_scan(kci_eventnet_store *store, const kci_hlc_timestamp *since,
                               uint64_t limit, kci_event_visit visit, void *context)
{
    MDB_txn *txn = NULL;
    int rc = mdb_txn_begin(store->env, NULL, MDB_RDONLY, &txn);
    if (rc != 0) return lmdb_fail(rc, "begin");
    MDB_cursor *cursor = NULL;
    rc = mdb_cursor_open(txn, store->time, &cursor);
    kc_err err = rc == 0 ? scan_in(store, txn, cursor, since, limit, visit, context)
                         : lmdb_fail(rc, "cursor");
    if (cursor != NULL) mdb_cursor_close(cursor);
    mdb_txn_abort(txn);
    return err;
}

kc_err kci_eventnet_store_stats(kci_eventnet_store *store, kci_hlc_timestamp *horizon,
                                uint64_t *event_count)
{
    MDB_txn *txn = NULL;
    int rc = mdb_txn_begin(store->env, NULL, MDB_RDONLY, &txn);
    if (rc != 0) return lmdb_fail(rc, "begin");
    horizon->wall_ms = 0;
    horizon->counter = 0;
    MDB_val key = {sizeof "horizon" - 1, "horizon"}, value;
    rc = mdb_get(txn, store->meta, &key, &value);
    if (rc == 0 && value.mv_size == TS_BYTES) ts_decode(value.mv_data, horizon);
    MDB_stat stat;
    rc = mdb_stat(txn, store->events, &stat);
    *event_count = rc == 0 ? stat.ms_entries : 0;
    mdb_txn_abort(txn);
    return rc == 0 ? KC_OK : lmdb_fail(rc, "stat");
}
