/* batch_codec_test.c - the replicated ledger's log entries
 * (src/ledger/batch_codec.c) and their application (batch_apply.c):
 *   - an entry with every kind of op decodes to what was encoded, and
 *     encodes back to the same bytes;
 *   - every strict prefix of it is refused, and so is a table of entries
 *     that break one rule each (the rules the state transitions assert);
 *   - determinism: the same entries applied to two stores with the same
 *     mint key give the same chain and the same state digest, refusals
 *     (a double spend inside one entry) included; an entry applied twice
 *     is refused; an entry of another mint is refused. */
#include <fcntl.h>
#include <sodium.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* clang-format off */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
/* clang-format on */

#include "kingcobra/kingcobra.h"
#include "ledger/batch_apply.h"
#include "ledger/batch_codec.h"
#include "ledger/store.h"
#include "service/uuid.h"

#define NOW_MS ((int64_t)1765000000000)
enum {
    MAP_BYTES = 64u << 20,
};

typedef struct keys {
    uint8_t public_key[KCI_LEDGER_KEY_BYTES];
    uint8_t secret_key[KCI_LEDGER_SECRET_BYTES];
} keys;

/* ---- building entries ----------------------------------------------------------- */

static void new_id(uint8_t id[KCI_LEDGER_ID_BYTES])
{
    kci_uuid uuid;
    kci_uuid_v7(&uuid);
    memcpy(id, uuid.bytes, KCI_LEDGER_ID_BYTES);
}

/* A signed transfer of coins (sorted) from payer to payee. */
static kci_ledger_transfer make_transfer(const keys *payer, const uint8_t *payee,
                                         const kci_ledger_coin *coins, uint32_t count)
{
    kci_ledger_transfer transfer = {
        .kind = KCI_LEDGER_KIND_TRANSFER, .time_ms = NOW_MS, .coin_count = count};
    new_id(transfer.id);
    memcpy(transfer.from, payer->public_key, KCI_LEDGER_KEY_BYTES);
    memcpy(transfer.to, payee, KCI_LEDGER_KEY_BYTES);
    transfer.coins = calloc(count, sizeof *transfer.coins);
    assert_non_null(transfer.coins);
    for (uint32_t index = 0; index < count; index++) {
        transfer.coins[index] = coins[index];
        transfer.amount += coins[index].denomination;
    }
    assert_int_equal(kci_ledger_sign(&transfer, payer->secret_key), KC_OK);
    return transfer;
}

typedef struct world {
    keys mint, alice, bob;
    kci_ledger_grant grant;
    uint64_t denominations[3];
    uint8_t issue_id[1][KCI_LEDGER_ID_BYTES];
    kci_ledger_coin minted[3];
    kci_ledger_coin *minted_list[1];
    kci_ledger_transfer pay, again, exchange;
    uint8_t exchange_issue[KCI_LEDGER_ID_BYTES];
    kci_ledger_coin exchanged[2];
    char request_id[37];
} world;

/* mint: the mint's key pair (NULL: a new one). */
static void world_make(world *w, const kci_wallet *mint)
{
    memset(w, 0, sizeof *w);
    if (mint != NULL) {
        memcpy(w->mint.public_key, mint->public_key, KCI_LEDGER_KEY_BYTES);
        memcpy(w->mint.secret_key, mint->secret_key, KCI_LEDGER_SECRET_BYTES);
    } else {
        crypto_sign_keypair(w->mint.public_key, w->mint.secret_key);
    }
    crypto_sign_keypair(w->alice.public_key, w->alice.secret_key);
    crypto_sign_keypair(w->bob.public_key, w->bob.secret_key);
    w->denominations[0] = 100;
    w->denominations[1] = 50;
    w->denominations[2] = 10;
    memcpy(w->grant.to, w->alice.public_key, KCI_LEDGER_KEY_BYTES);
    w->grant.denomination_count = 3;
    w->grant.denominations = w->denominations;
    kci_ledger_issue_ids_make(w->issue_id[0], w->minted, w->denominations, 3);
    w->minted_list[0] = w->minted;
    /* alice pays bob the 100; then pays the same 100 again (refused when applied). */
    w->pay = make_transfer(&w->alice, w->bob.public_key, &w->minted[0], 1);
    w->again = make_transfer(&w->alice, w->mint.public_key, &w->minted[0], 1);
    memcpy(w->again.to, w->bob.public_key, KCI_LEDGER_KEY_BYTES);
    new_id(w->again.id);
    assert_int_equal(kci_ledger_sign(&w->again, w->alice.secret_key), KC_OK);
    /* alice exchanges her 50 for 25 + 25. */
    w->exchange = make_transfer(&w->alice, w->mint.public_key, &w->minted[1], 1);
    w->exchange.kind = KCI_LEDGER_KIND_EXCHANGE;
    w->exchange.denomination_count = 2;
    w->exchange.denominations = calloc(2, sizeof(uint64_t));
    assert_non_null(w->exchange.denominations);
    w->exchange.denominations[0] = 25;
    w->exchange.denominations[1] = 25;
    assert_int_equal(kci_ledger_sign(&w->exchange, w->alice.secret_key), KC_OK);
    kci_ledger_issue_ids_make(w->exchange_issue, w->exchanged, w->exchange.denominations, 2);
    kci_uuid_v7_text(w->request_id);
}

static void world_free(world *w)
{
    kci_ledger_transfer_free(&w->pay);
    kci_ledger_transfer_free(&w->again);
    kci_ledger_transfer_free(&w->exchange);
}

/* The genesis (no ops) into writer. */
static void encode_genesis(const world *w, kci_ledger_log_writer *writer)
{
    uint8_t id[KCI_LEDGER_ID_BYTES];
    new_id(id);
    kci_ledger_log_begin(writer, id, 0, NOW_MS, w->mint.public_key);
    assert_int_equal(kci_ledger_log_finish(writer), KC_OK);
}

/* One entry with every kind of op. */
static void encode_everything(const world *w, kci_ledger_log_writer *writer)
{
    uint8_t id[KCI_LEDGER_ID_BYTES];
    new_id(id);
    kci_ledger_log_begin(writer, id, 7, NOW_MS + 1, w->mint.public_key);
    kci_ledger_log_put_mint(writer, &w->grant, 1,
                            (const uint8_t(*)[KCI_LEDGER_ID_BYTES])w->issue_id, w->minted_list);
    kci_ledger_log_put_transfer(writer, &w->pay);
    kci_ledger_log_put_transfer(writer, &w->again);
    kci_ledger_log_put_exchange(writer, &w->exchange, w->exchange_issue, w->exchanged);
    kci_ledger_log_put_payment(writer, w->pay.id, w->bob.public_key, 100, w->request_id);
    kci_ledger_log_put_reap(writer, 0, 64);
    assert_int_equal(kci_ledger_log_finish(writer), KC_OK);
    assert_int_equal(writer->op_count, 6);
}

static void assert_transfer_equal(const kci_ledger_transfer *a, const kci_ledger_transfer *b)
{
    assert_memory_equal(a->id, b->id, KCI_LEDGER_ID_BYTES);
    assert_int_equal(a->kind, b->kind);
    assert_memory_equal(a->from, b->from, KCI_LEDGER_KEY_BYTES);
    assert_memory_equal(a->to, b->to, KCI_LEDGER_KEY_BYTES);
    assert_int_equal(a->amount, b->amount);
    assert_int_equal(a->time_ms, b->time_ms);
    assert_int_equal(a->coin_count, b->coin_count);
    assert_memory_equal(a->coins, b->coins, a->coin_count * sizeof *a->coins);
    assert_memory_equal(a->signature, b->signature, KCI_LEDGER_SIGNATURE_BYTES);
    assert_int_equal(a->denomination_count, b->denomination_count);
    if (a->denomination_count > 0)
        assert_memory_equal(a->denominations, b->denominations,
                            a->denomination_count * sizeof(uint64_t));
}

/* ---- the codec ----------------------------------------------------------------- */

static void test_round_trip(void **state)
{
    (void)state;
    world w;
    world_make(&w, NULL);
    kci_ledger_log_writer writer;
    encode_everything(&w, &writer);
    kci_ledger_log_entry entry;
    char error[256] = "";
    assert_int_equal(
        kci_ledger_log_decode(&entry, writer.bytes, writer.length, error, sizeof error), KC_OK);
    assert_int_equal(entry.term, 7);
    assert_int_equal(entry.now_ms, NOW_MS + 1);
    assert_memory_equal(entry.mint, w.mint.public_key, KCI_LEDGER_KEY_BYTES);
    assert_int_equal(entry.op_count, 6);
    const kci_ledger_log_op *ops = entry.ops;
    assert_int_equal(ops[0].kind, KCI_LEDGER_LOG_MINT);
    assert_int_equal(ops[0].grant_count, 1);
    assert_memory_equal(ops[0].grants[0].to, w.alice.public_key, KCI_LEDGER_KEY_BYTES);
    assert_memory_equal(ops[0].grants[0].denominations, w.denominations, sizeof w.denominations);
    assert_memory_equal(ops[0].issue_ids[0], w.issue_id[0], KCI_LEDGER_ID_BYTES);
    assert_memory_equal(ops[0].issued[0], w.minted, sizeof w.minted);
    assert_transfer_equal(&ops[1].transfer, &w.pay);
    assert_transfer_equal(&ops[2].transfer, &w.again);
    assert_int_equal(ops[3].kind, KCI_LEDGER_LOG_EXCHANGE);
    assert_transfer_equal(&ops[3].transfer, &w.exchange);
    assert_memory_equal(ops[3].issue_ids[0], w.exchange_issue, KCI_LEDGER_ID_BYTES);
    assert_memory_equal(ops[3].issued[0], w.exchanged, sizeof w.exchanged);
    assert_int_equal(ops[4].kind, KCI_LEDGER_LOG_PAYMENT);
    assert_memory_equal(ops[4].paid_transfer, w.pay.id, KCI_LEDGER_ID_BYTES);
    assert_int_equal(ops[4].min_amount, 100);
    assert_string_equal(ops[4].request_id, w.request_id);
    assert_int_equal(ops[5].kind, KCI_LEDGER_LOG_REAP);
    assert_int_equal(ops[5].reap_count_max, 64);
    /* Encoded again from what was decoded: the same bytes. */
    kci_ledger_log_writer again;
    kci_ledger_log_begin(&again, entry.id, entry.term, entry.now_ms, entry.mint);
    kci_ledger_log_put_mint(&again, ops[0].grants, 1,
                            (const uint8_t(*)[KCI_LEDGER_ID_BYTES])ops[0].issue_ids, ops[0].issued);
    kci_ledger_log_put_transfer(&again, &ops[1].transfer);
    kci_ledger_log_put_transfer(&again, &ops[2].transfer);
    kci_ledger_log_put_exchange(&again, &ops[3].transfer, ops[3].issue_ids[0], ops[3].issued[0]);
    kci_ledger_log_put_payment(&again, ops[4].paid_transfer, ops[4].payee, ops[4].min_amount,
                               ops[4].request_id);
    kci_ledger_log_put_reap(&again, ops[5].reap_age_ms, ops[5].reap_count_max);
    assert_int_equal(kci_ledger_log_finish(&again), KC_OK);
    assert_int_equal(again.length, writer.length);
    assert_memory_equal(again.bytes, writer.bytes, writer.length);
    kci_ledger_log_writer_free(&again);
    kci_ledger_log_entry_free(&entry);
    kci_ledger_log_writer_free(&writer);
    world_free(&w);
}

static void test_every_cut_is_refused(void **state)
{
    (void)state;
    world w;
    world_make(&w, NULL);
    kci_ledger_log_writer writer;
    encode_everything(&w, &writer);
    char error[256];
    for (size_t length = 0; length < writer.length; length++) {
        kci_ledger_log_entry entry;
        if (kci_ledger_log_decode(&entry, writer.bytes, length, error, sizeof error) !=
            KC_ERR_PARSE)
            fail_msg("a cut at %zu of %zu bytes was accepted", length, writer.length);
        assert_true(strlen(error) > 0);
        kci_ledger_log_entry_free(&entry);
    }
    kci_ledger_log_writer_free(&writer);
    world_free(&w);
}

/* Offsets inside the first transfer op of an entry holding only w.pay. */
enum {
    OP = KCI_LEDGER_LOG_HEAD_BYTES + 1, /* after the kind */
    FROM = OP + KCI_LEDGER_ID_BYTES,
    TO = FROM + KCI_LEDGER_KEY_BYTES,
    AMOUNT = TO + KCI_LEDGER_KEY_BYTES,
    TIME = AMOUNT + 8,
    COUNT = TIME + 8,
    DENOMINATION = COUNT + 4 + KCI_LEDGER_ID_BYTES,
};

typedef struct breakage {
    const char *name;
    size_t offset; /* SIZE_MAX: append a byte */
    uint8_t value;
} breakage;

static const breakage BREAKAGES[] = {
    {"magic", 0, 'X'},
    {"version", 4, 2},
    {"a reserved byte", 5, 1},
    {"the op count", KCI_LEDGER_LOG_HEAD_BYTES - 1, 2},
    {"an unknown kind", KCI_LEDGER_LOG_HEAD_BYTES, 9},
    {"the kind zero", KCI_LEDGER_LOG_HEAD_BYTES, 0},
    {"an amount of zero (its high byte stays 0, the low one is cleared)", AMOUNT + 7, 0},
    {"an amount above 2^53 - 1", AMOUNT, 0xFF},
    {"a time above 48 bits", TIME, 0x01},
    {"a coin count of zero", COUNT + 3, 0},
    {"a coin count of 2 (the entry ends early)", COUNT + 3, 2},
    {"a denomination above 2^53 - 1", DENOMINATION, 0xFF},
    {"trailing bytes", SIZE_MAX, 0},
};

static void test_broken_entries_are_refused(void **state)
{
    (void)state;
    world w;
    world_make(&w, NULL);
    for (size_t index = 0; index < sizeof BREAKAGES / sizeof BREAKAGES[0]; index++) {
        const breakage *broken = &BREAKAGES[index];
        kci_ledger_log_writer writer;
        uint8_t id[KCI_LEDGER_ID_BYTES] = {1};
        kci_ledger_log_begin(&writer, id, 1, NOW_MS, w.mint.public_key);
        kci_ledger_log_put_transfer(&writer, &w.pay);
        assert_int_equal(kci_ledger_log_finish(&writer), KC_OK);
        kci_ledger_log_entry entry;
        char error[256];
        assert_int_equal(
            kci_ledger_log_decode(&entry, writer.bytes, writer.length, error, sizeof error), KC_OK);
        kci_ledger_log_entry_free(&entry);
        uint8_t *bytes = calloc(writer.length + 1, 1);
        assert_non_null(bytes);
        memcpy(bytes, writer.bytes, writer.length);
        size_t length = writer.length;
        if (broken->offset == SIZE_MAX)
            length++;
        else
            bytes[broken->offset] = broken->value;
        if (kci_ledger_log_decode(&entry, bytes, length, error, sizeof error) != KC_ERR_PARSE)
            fail_msg("an entry with %s was accepted", broken->name);
        kci_ledger_log_entry_free(&entry);
        free(bytes);
        kci_ledger_log_writer_free(&writer);
    }
    world_free(&w);
}

/* from == to, coins out of order, an exchange whose asked coins do not add
 * up: rules the state transitions assert, so the decoder must refuse. */
static void test_rule_breaking_ops_are_refused(void **state)
{
    (void)state;
    world w;
    world_make(&w, NULL);
    kci_ledger_transfer *pay = &w.pay;
    memcpy(pay->to, pay->from, KCI_LEDGER_KEY_BYTES);
    kci_ledger_log_writer writer;
    uint8_t id[KCI_LEDGER_ID_BYTES] = {2};
    kci_ledger_log_begin(&writer, id, 1, NOW_MS, w.mint.public_key);
    kci_ledger_log_put_transfer(&writer, pay);
    assert_int_equal(kci_ledger_log_finish(&writer), KC_OK);
    kci_ledger_log_entry entry;
    char error[256];
    assert_int_equal(
        kci_ledger_log_decode(&entry, writer.bytes, writer.length, error, sizeof error),
        KC_ERR_PARSE);
    assert_non_null(strstr(error, "its own payer"));
    kci_ledger_log_entry_free(&entry);
    kci_ledger_log_writer_free(&writer);
    /* An exchange asking 25 + 25 for 50, then one 25 made 26 in the bytes. */
    kci_ledger_log_begin(&writer, id, 1, NOW_MS, w.mint.public_key);
    kci_ledger_log_put_exchange(&writer, &w.exchange, w.exchange_issue, w.exchanged);
    assert_int_equal(kci_ledger_log_finish(&writer), KC_OK);
    size_t asked =
        writer.length - (KCI_LEDGER_ID_BYTES * 3) - 16 + 7; /* first asked u64's low byte */
    assert_int_equal(writer.bytes[asked], 25);
    writer.bytes[asked] = 26;
    assert_int_equal(
        kci_ledger_log_decode(&entry, writer.bytes, writer.length, error, sizeof error),
        KC_ERR_PARSE);
    assert_non_null(strstr(error, "add up"));
    kci_ledger_log_entry_free(&entry);
    /* The two new coins' ids in the wrong order. */
    writer.bytes[asked] = 25;
    uint8_t *first = writer.bytes + writer.length - 2 * KCI_LEDGER_ID_BYTES,
            swap[KCI_LEDGER_ID_BYTES];
    memcpy(swap, first, KCI_LEDGER_ID_BYTES);
    memcpy(first, first + KCI_LEDGER_ID_BYTES, KCI_LEDGER_ID_BYTES);
    memcpy(first + KCI_LEDGER_ID_BYTES, swap, KCI_LEDGER_ID_BYTES);
    assert_int_equal(
        kci_ledger_log_decode(&entry, writer.bytes, writer.length, error, sizeof error),
        KC_ERR_PARSE);
    assert_non_null(strstr(error, "sorted"));
    kci_ledger_log_entry_free(&entry);
    kci_ledger_log_writer_free(&writer);
    world_free(&w);
}

/* ---- determinism ----------------------------------------------------------------- */

typedef struct replica {
    char directory[64];
    kci_ledger_store *store;
    kci_ledger_applied applied;
} replica;

/* A store in a new directory; with the mint key of mint_key_file when it
 * is not NULL (every replica needs the same mint.key), else a new one. */
static void replica_open(replica *r, const char *mint_key_file)
{
    memset(r, 0, sizeof *r);
    snprintf(r->directory, sizeof r->directory, "/tmp/kc-ledger-log-XXXXXX");
    assert_non_null(mkdtemp(r->directory));
    if (mint_key_file != NULL) {
        char path[128], bytes[4096];
        snprintf(path, sizeof path, "%s/%s", r->directory, KCI_LEDGER_MINT_KEY_FILE);
        int in = open(mint_key_file, O_RDONLY), out = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
        assert_true(in >= 0 && out >= 0);
        ssize_t length = read(in, bytes, sizeof bytes);
        assert_true(length > 0 && write(out, bytes, (size_t)length) == length);
        close(in);
        close(out);
    }
    char error[512];
    assert_int_equal(kci_ledger_store_open(&r->store, r->directory, MAP_BYTES, error, sizeof error),
                     KC_OK);
}

static void mint_key_path(const replica *r, char *path, size_t size)
{
    snprintf(path, size, "%s/%s", r->directory, KCI_LEDGER_MINT_KEY_FILE);
}

static void replica_close(replica *r)
{
    kci_ledger_store_close(r->store);
    char command[128];
    snprintf(command, sizeof command, "rm -rf %s", r->directory);
    assert_int_equal(system(command), 0);
}

static kc_err replica_apply(replica *r, const kci_ledger_log_writer *writer,
                            kci_ledger_outcome *outcomes)
{
    kci_ledger_log_entry entry;
    char error[256];
    assert_int_equal(
        kci_ledger_log_decode(&entry, writer->bytes, writer->length, error, sizeof error), KC_OK);
    kc_err err = kci_ledger_log_apply(r->store, &r->applied, r->applied.sequence + 1, &entry,
                                      writer->bytes, writer->length, outcomes);
    kci_ledger_log_entry_free(&entry);
    return err;
}

static void state_digest(replica *r, uint8_t digest[KCI_LEDGER_DIGEST_BYTES])
{
    kci_ledger_read *read = NULL;
    uint64_t entries = 0;
    assert_int_equal(kci_ledger_read_begin(&read, r->store), KC_OK);
    assert_int_equal(kci_ledger_content_digest(read, digest, &entries), KC_OK);
    kci_ledger_applied applied;
    assert_int_equal(kci_ledger_applied_get(read, &applied), KC_OK);
    assert_int_equal(applied.sequence, r->applied.sequence);
    assert_memory_equal(applied.chain, r->applied.chain, KCI_LEDGER_DIGEST_BYTES);
    kci_ledger_read_end(read);
    assert_true(entries > 10);
}

/* Two replicas with one mint key, and a world signed by that mint. */
static void replicas_open(replica *a, replica *b, world *w)
{
    replica_open(a, NULL);
    char path[128], error[512];
    mint_key_path(a, path, sizeof path);
    replica_open(b, path);
    kci_wallet mint;
    assert_int_equal(kci_wallet_load(&mint, path, error, sizeof error), KC_OK);
    world_make(w, &mint);
}

static void test_replicas_end_with_the_same_bytes(void **state)
{
    (void)state;
    replica a, b;
    world w;
    replicas_open(&a, &b, &w);
    kci_ledger_log_writer genesis, everything;
    encode_genesis(&w, &genesis);
    encode_everything(&w, &everything);
    kci_ledger_outcome outcomes_a[6] = {0}, outcomes_b[6] = {0};
    assert_int_equal(replica_apply(&a, &genesis, NULL), KC_OK);
    assert_int_equal(replica_apply(&a, &everything, outcomes_a), KC_OK);
    /* b applies the same later (another process, another clock: no matter). */
    sleep(1);
    assert_int_equal(replica_apply(&b, &genesis, NULL), KC_OK);
    assert_int_equal(replica_apply(&b, &everything, outcomes_b), KC_OK);
    for (int index = 0; index < 6; index++) {
        assert_int_equal(outcomes_a[index].result, outcomes_b[index].result);
        assert_int_equal(outcomes_a[index].replayed, outcomes_b[index].replayed);
    }
    assert_int_equal(outcomes_a[1].result, KCI_LEDGER_OK);
    assert_int_equal(outcomes_a[2].result, KCI_LEDGER_DOUBLE_SPEND); /* the 100 went to bob */
    assert_int_equal(outcomes_a[3].result, KCI_LEDGER_OK);
    assert_int_equal(outcomes_a[4].result, KCI_LEDGER_OK);
    uint8_t digest_a[KCI_LEDGER_DIGEST_BYTES], digest_b[KCI_LEDGER_DIGEST_BYTES];
    state_digest(&a, digest_a);
    state_digest(&b, digest_b);
    assert_int_equal(a.applied.sequence, 2);
    assert_memory_equal(a.applied.chain, b.applied.chain, KCI_LEDGER_DIGEST_BYTES);
    assert_memory_equal(digest_a, digest_b, KCI_LEDGER_DIGEST_BYTES);
    /* The same entry again at a position already taken: refused, nothing changes. */
    kci_ledger_applied stale = {.sequence = 1};
    memcpy(stale.chain, a.applied.chain, KCI_LEDGER_DIGEST_BYTES);
    kci_ledger_applied kept = a.applied;
    a.applied = stale;
    assert_int_not_equal(replica_apply(&a, &everything, NULL), KC_OK);
    a.applied = kept;
    state_digest(&a, digest_b);
    assert_memory_equal(digest_a, digest_b, KCI_LEDGER_DIGEST_BYTES);
    replica_close(&a);
    replica_close(&b);
    kci_ledger_log_writer_free(&genesis);
    kci_ledger_log_writer_free(&everything);
    world_free(&w);
}

/* A backlog applied as a group in one transaction (catching up) ends with
 * the same bytes, the same chain and the same per-entry chain digests as
 * the entries applied one by one; a group that does not follow the applied
 * position changes nothing. */
static void test_a_group_applies_like_its_entries(void **state)
{
    (void)state;
    replica a, b;
    world w;
    replicas_open(&a, &b, &w);
    kci_ledger_log_writer genesis, everything;
    encode_genesis(&w, &genesis);
    encode_everything(&w, &everything);
    assert_int_equal(replica_apply(&a, &genesis, NULL), KC_OK);
    assert_int_equal(replica_apply(&a, &everything, NULL), KC_OK);
    kci_ledger_log_entry decoded[2];
    const kci_ledger_log_writer *writers[2] = {&genesis, &everything};
    kci_ledger_log_item items[2];
    char error[256];
    for (int index = 0; index < 2; index++) {
        assert_int_equal(kci_ledger_log_decode(&decoded[index], writers[index]->bytes,
                                               writers[index]->length, error, sizeof error),
                         KC_OK);
        items[index] = (kci_ledger_log_item){.entry = &decoded[index],
                                             .bytes = writers[index]->bytes,
                                             .length = writers[index]->length};
    }
    assert_int_equal(kci_ledger_log_apply_group(b.store, &b.applied, items, 2), KC_OK);
    assert_int_equal(b.applied.sequence, 2);
    uint8_t digest_a[KCI_LEDGER_DIGEST_BYTES], digest_b[KCI_LEDGER_DIGEST_BYTES];
    state_digest(&a, digest_a);
    state_digest(&b, digest_b);
    assert_memory_equal(digest_a, digest_b, KCI_LEDGER_DIGEST_BYTES);
    assert_memory_equal(a.applied.chain, b.applied.chain, KCI_LEDGER_DIGEST_BYTES);
    kci_ledger_read *read_a = NULL, *read_b = NULL;
    uint8_t first_a[KCI_LEDGER_DIGEST_BYTES], first_b[KCI_LEDGER_DIGEST_BYTES];
    assert_int_equal(kci_ledger_read_begin(&read_a, a.store), KC_OK);
    assert_int_equal(kci_ledger_read_begin(&read_b, b.store), KC_OK);
    assert_int_equal(kci_ledger_chain_get(read_a, 1, first_a), KC_OK);
    assert_int_equal(kci_ledger_chain_get(read_b, 1, first_b), KC_OK);
    assert_memory_equal(first_a, first_b, KCI_LEDGER_DIGEST_BYTES);
    kci_ledger_read_end(read_a);
    kci_ledger_read_end(read_b);
    /* Again at positions already taken: refused, nothing changes. */
    kci_ledger_applied stale = {.sequence = 1}, kept = b.applied;
    memcpy(stale.chain, first_b, KCI_LEDGER_DIGEST_BYTES);
    b.applied = stale;
    assert_int_not_equal(kci_ledger_log_apply_group(b.store, &b.applied, &items[1], 1), KC_OK);
    assert_int_equal(b.applied.sequence, 1);
    b.applied = kept;
    state_digest(&b, digest_b);
    assert_memory_equal(digest_a, digest_b, KCI_LEDGER_DIGEST_BYTES);
    for (int index = 0; index < 2; index++)
        kci_ledger_log_entry_free(&decoded[index]);
    replica_close(&a);
    replica_close(&b);
    kci_ledger_log_writer_free(&genesis);
    kci_ledger_log_writer_free(&everything);
    world_free(&w);
}

/* A hold of alice's coin for bob, expiring at expires_ms. */
static kci_ledger_transfer make_hold(const world *w, const kci_ledger_coin *coin,
                                     int64_t expires_ms)
{
    kci_ledger_transfer hold = make_transfer(&w->alice, w->bob.public_key, coin, 1);
    hold.kind = KCI_LEDGER_KIND_HOLD;
    hold.expires_ms = expires_ms;
    assert_int_equal(kci_ledger_sign(&hold, w->alice.secret_key), KC_OK);
    return hold;
}

/* Escrow in the log (issue 15): holds, settles and an expire decided by
 * the entries' clocks only, so two replicas applying them at other times
 * end with the same bytes; settle bytes the state transitions could not
 * take are refused by the decoder. */
static void test_escrow_entries_replay_alike(void **state)
{
    (void)state;
    replica a, b;
    world w;
    replicas_open(&a, &b, &w);
    kci_ledger_transfer soon = make_hold(&w, &w.minted[2], NOW_MS + 1000);
    kci_ledger_transfer later = make_hold(&w, &w.minted[1], NOW_MS + 60000);
    uint8_t claim[KCI_LEDGER_SIGNATURE_BYTES], post[KCI_LEDGER_SIGNATURE_BYTES];
    kci_ledger_settle_sign(claim, KCI_LEDGER_SETTLE_CLAIM, later.id, w.request_id, 50,
                           w.bob.secret_key);
    kci_ledger_settle_sign(post, KCI_LEDGER_SETTLE_POST, later.id, w.request_id, 0,
                           w.bob.secret_key);
    kci_ledger_log_writer genesis, first, second;
    encode_genesis(&w, &genesis);
    uint8_t id[KCI_LEDGER_ID_BYTES];
    new_id(id);
    kci_ledger_log_begin(&first, id, 1, NOW_MS + 1, w.mint.public_key);
    kci_ledger_log_put_mint(&first, &w.grant, 1, (const uint8_t(*)[KCI_LEDGER_ID_BYTES])w.issue_id,
                            w.minted_list);
    kci_ledger_log_put_hold(&first, &soon);
    kci_ledger_log_put_hold(&first, &later);
    kci_ledger_log_put_settle(&first, KCI_LEDGER_SETTLE_CLAIM, later.id, w.bob.public_key,
                              w.request_id, 50, claim);
    kci_ledger_log_put_settle(&first, KCI_LEDGER_SETTLE_POST, later.id, w.bob.public_key,
                              w.request_id, 0, post);
    assert_int_equal(kci_ledger_log_finish(&first), KC_OK);
    /* The second entry's clock is past the first hold's expiry. */
    uint8_t late_post[KCI_LEDGER_SIGNATURE_BYTES];
    kci_ledger_settle_sign(late_post, KCI_LEDGER_SETTLE_POST, soon.id, "", 0, w.bob.secret_key);
    new_id(id);
    kci_ledger_log_begin(&second, id, 1, NOW_MS + 2000, w.mint.public_key);
    kci_ledger_log_put_settle(&second, KCI_LEDGER_SETTLE_POST, soon.id, w.bob.public_key, "", 0,
                              late_post);
    kci_ledger_log_put_expire(&second, 64);
    assert_int_equal(kci_ledger_log_finish(&second), KC_OK);
    kci_ledger_outcome first_a[5] = {0}, first_b[5] = {0}, second_a[2] = {0}, second_b[2] = {0};
    assert_int_equal(replica_apply(&a, &genesis, NULL), KC_OK);
    assert_int_equal(replica_apply(&a, &first, first_a), KC_OK);
    assert_int_equal(replica_apply(&a, &second, second_a), KC_OK);
    sleep(1); /* b applies later, by another clock: no matter */
    assert_int_equal(replica_apply(&b, &genesis, NULL), KC_OK);
    assert_int_equal(replica_apply(&b, &first, first_b), KC_OK);
    assert_int_equal(replica_apply(&b, &second, second_b), KC_OK);
    for (int index = 0; index < 5; index++) {
        assert_int_equal(first_a[index].result, KCI_LEDGER_OK);
        assert_int_equal(first_b[index].result, KCI_LEDGER_OK);
    }
    assert_string_equal(first_a[4].message, "posted");
    assert_int_equal(second_a[0].result, KCI_LEDGER_HOLD_EXPIRED); /* by the entry's clock */
    assert_int_equal(second_b[0].result, KCI_LEDGER_HOLD_EXPIRED);
    uint8_t digest_a[KCI_LEDGER_DIGEST_BYTES], digest_b[KCI_LEDGER_DIGEST_BYTES];
    state_digest(&a, digest_a);
    state_digest(&b, digest_b);
    assert_memory_equal(digest_a, digest_b, KCI_LEDGER_DIGEST_BYTES);
    kci_ledger_read *read = NULL;
    assert_int_equal(kci_ledger_read_begin(&read, a.store), KC_OK);
    assert_int_equal(kci_ledger_balance_get(read, w.alice.public_key), 110); /* 100 + the 10 back */
    assert_int_equal(kci_ledger_balance_get(read, w.bob.public_key), 50);
    kci_ledger_read_end(read);
    /* A settle of kind 4, and a claim naming no request: refused. */
    kci_ledger_log_entry entry;
    char error[256];
    size_t settle_at = KCI_LEDGER_LOG_HEAD_BYTES + 1;
    second.bytes[settle_at] = 4;
    assert_int_equal(
        kci_ledger_log_decode(&entry, second.bytes, second.length, error, sizeof error),
        KC_ERR_PARSE);
    assert_non_null(strstr(error, "unknown kind"));
    kci_ledger_log_entry_free(&entry);
    second.bytes[settle_at] = KCI_LEDGER_SETTLE_CLAIM;
    assert_int_equal(
        kci_ledger_log_decode(&entry, second.bytes, second.length, error, sizeof error),
        KC_ERR_PARSE);
    kci_ledger_log_entry_free(&entry);
    replica_close(&a);
    replica_close(&b);
    kci_ledger_log_writer_free(&genesis);
    kci_ledger_log_writer_free(&first);
    kci_ledger_log_writer_free(&second);
    kci_ledger_transfer_free(&soon);
    kci_ledger_transfer_free(&later);
    world_free(&w);
}

static void test_another_mint_is_refused(void **state)
{
    (void)state;
    world w, other;
    world_make(&w, NULL);
    world_make(&other, NULL);
    kci_ledger_log_writer genesis;
    encode_genesis(&other, &genesis);
    replica a;
    replica_open(&a, NULL);
    assert_int_equal(replica_apply(&a, &genesis, NULL), KC_ERR_CONFIG);
    assert_int_equal(a.applied.sequence, 0);
    replica_close(&a);
    kci_ledger_log_writer_free(&genesis);
    world_free(&w);
    world_free(&other);
}

int main(void)
{
    if (sodium_init() < 0) return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_every_cut_is_refused),
        cmocka_unit_test(test_broken_entries_are_refused),
        cmocka_unit_test(test_rule_breaking_ops_are_refused),
        cmocka_unit_test(test_replicas_end_with_the_same_bytes),
        cmocka_unit_test(test_a_group_applies_like_its_entries),
        cmocka_unit_test(test_another_mint_is_refused),
        cmocka_unit_test(test_escrow_entries_replay_alike),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
