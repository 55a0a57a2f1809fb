/* service_test.c - the ledger end to end over a real fabric and a real
 * disk. Run against nats-server (the ledger then runs as `kcobra ledger
 * serve`, argv[2]) and against kcobrad (the ledger is its component).
 *
 *   bad input   forged and wrong-key signatures, unknown coins, zero,
 *               negative and overflowing amounts, malformed JSON, unknown
 *               operations, a double spend: each refused with its code and
 *               a clear message, the audit unchanged
 *   race        32 clients on their own connections spend overlapping
 *               coins at once (single transfers and batches): exactly one
 *               spend per coin succeeds, multi-coin transfers are all or
 *               nothing, the audit passes
 *   crash       kill -9 the ledger while a client streams batches; after a
 *               restart every acknowledged transfer is there and the audit
 *               (no half-applied transfer) passes
 *   pay         a paid libkingcobra service: refused unpaid, served when
 *               paid, the same payment refused for a second request */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <nats/nats.h>
#include <pthread.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* clang-format off */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
/* clang-format on */

#include "../integration/harness.h"
#include "kingcobra/kingcobra.h"
#include "ledger/client.h"

enum {
    SKIP_EXIT_CODE = 77,
    TIMEOUT_MS = 10000,
    READY_TIMEOUT_MS = 30000,
    AUDIT_TIMEOUT_MS = 120000, /* it checks every signature */
    RACE_CLIENTS = 32,
    RACE_COINS = 64,
    RACE_ATTEMPTS = 8, /* transfers each client tries */
    CRASH_COINS = 2000,
    CRASH_BATCH = 40,
    CRASH_ACKED_BEFORE_KILL = 200,
    CRASH_STREAMS = 4, /* concurrent clients, so batches are in flight at the kill */
};

static const char *server_binary;
static const char *kcobra_binary;
static bool ledger_in_server; /* kcobrad hosts the ledger */

typedef struct world {
    harness_server server;
    char ledger_dir[HARNESS_PATH_SIZE_MAX + 16];
    pid_t ledger_pid; /* kcobra ledger serve, with nats-server */
    natsConnection *connection;
} world;

static world the_world;

/* ---- starting and killing the ledger ------------------------------------------ */

/* A cheap question (an audit can take seconds on a slow, sanitized build). */
static bool ledger_answers(natsConnection *connection)
{
    json_t *reply = NULL;
    kci_ledger_refusal refusal;
    char nobody[65];
    memset(nobody, '0', 64);
    nobody[64] = '\0';
    kc_err err = kci_ledger_call(&reply, connection, "balance",
                                 json_pack("{s:s}", "wallet", nobody), 1000, &refusal);
    json_decref(reply);
    return err == KC_OK;
}

static void wait_ready(world *w)
{
    int64_t deadline = harness_now_ms() + READY_TIMEOUT_MS;
    while (!ledger_answers(w->connection)) {
        if (harness_now_ms() > deadline) fail_msg("the ledger did not come up");
        harness_sleep_ms(50);
    }
}

static void ledger_start(world *w)
{
    if (ledger_in_server) {
        char config[512];
        snprintf(config, sizeof config, "ledger { dir: \"%s\", mint_open: true }\n", w->ledger_dir);
        assert_int_equal(harness_server_start(&w->server, config), HARNESS_OK);
    } else {
        char log_path[HARNESS_PATH_SIZE_MAX + 32];
        snprintf(log_path, sizeof log_path, "%.240s/ledger.log", w->server.directory_path);
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            FILE *log = freopen(log_path, "a", stderr);
            (void)log;
            execl(kcobra_binary, kcobra_binary, "ledger", "serve", "--server", w->server.url,
                  "--dir", w->ledger_dir, (char *)NULL);
            _exit(127);
        }
        w->ledger_pid = pid;
    }
}

static void ledger_kill(world *w)
{
    if (ledger_in_server) {
        int status = 0;
        assert_int_equal(harness_server_signal(&w->server, SIGKILL), HARNESS_OK);
        assert_int_equal(harness_server_wait_exit(&w->server, TIMEOUT_MS, &status), HARNESS_OK);
        return;
    }
    if (w->ledger_pid <= 0) return;
    kill(w->ledger_pid, SIGKILL);
    waitpid(w->ledger_pid, NULL, 0);
    w->ledger_pid = 0;
}

static void ledger_stop(world *w)
{
    if (ledger_in_server || w->ledger_pid <= 0) return;
    kill(w->ledger_pid, SIGTERM);
    int status = 0;
    waitpid(w->ledger_pid, &status, 0);
    w->ledger_pid = 0;
}

static natsConnection *connect_to(const world *w)
{
    natsOptions *options = NULL;
    natsConnection *connection = NULL;
    assert_int_equal(natsOptions_Create(&options), NATS_OK);
    natsOptions_SetURL(options, w->server.url);
    natsOptions_SetMaxReconnect(options, -1);
    natsOptions_SetReconnectWait(options, 50);
    natsOptions_SetRetryOnFailedConnect(options, true, NULL, NULL);
    assert_int_equal(natsConnection_Connect(&connection, options), NATS_OK);
    natsOptions_Destroy(options);
    return connection;
}

static int group_setup(void **state)
{
    world *w = &the_world;
    if (harness_server_init(&w->server, server_binary) != HARNESS_OK) return -1;
    snprintf(w->ledger_dir, sizeof w->ledger_dir, "%.240s/ledger", w->server.directory_path);
    if (ledger_in_server) {
        char config[512];
        snprintf(config, sizeof config, "ledger { dir: \"%s\", mint_open: true }\n", w->ledger_dir);
        if (harness_server_start(&w->server, config) != HARNESS_OK) return -1;
    } else if (harness_server_start(&w->server, NULL) != HARNESS_OK) {
        return -1;
    }
    w->connection = connect_to(w);
    if (!ledger_in_server) ledger_start(w);
    wait_ready(w);
    *state = w;
    return 0;
}

static int group_teardown(void **state)
{
    world *w = *state;
    ledger_stop(w);
    natsConnection_Destroy(w->connection);
    harness_server_cleanup(&w->server);
    return 0;
}

/* ---- helpers ---------------------------------------------------------------------- */

static void new_wallet(kci_wallet *wallet)
{
    crypto_sign_keypair(wallet->public_key, wallet->secret_key);
}

static json_t *call_ok(natsConnection *connection, const char *operation, json_t *body)
{
    json_t *reply = NULL;
    kci_ledger_refusal refusal;
    kc_err err = kci_ledger_call(&reply, connection, operation, body, TIMEOUT_MS, &refusal);
    if (err != KC_OK) fail_msg("kc.ledger.%s: %d %s", operation, refusal.code, refusal.message);
    return reply;
}

/* Mints count coins of denomination to wallet; coins_out gets them. */
static void mint(natsConnection *connection, const kci_wallet *wallet, uint32_t count,
                 uint64_t denomination, kci_ledger_coin *coins_out)
{
    char address[65];
    kci_ledger_hex(address, wallet->public_key, 32);
    for (uint32_t done = 0; done < count;) {
        uint32_t part = count - done > 1000 ? 1000 : count - done;
        json_t *list = json_array();
        for (uint32_t index = 0; index < part; index++)
            json_array_append_new(list, json_integer((json_int_t)denomination));
        json_t *reply = call_ok(connection, "mint",
                                json_pack("{s:s, s:o}", "to", address, "denominations", list));
        json_t *coins =
            json_object_get(json_array_get(json_object_get(reply, "issued"), 0), "coins");
        assert_int_equal(json_array_size(coins), part);
        for (uint32_t index = 0; index < part; index++) {
            json_t *coin = json_array_get(coins, index);
            assert_true(kci_ledger_id_parse(coins_out[done + index].id,
                                            json_string_value(json_object_get(coin, "id"))));
            coins_out[done + index].denomination = denomination;
        }
        json_decref(reply);
        done += part;
    }
}

static json_t *audit_ok(natsConnection *connection)
{
    json_t *reply = NULL;
    kci_ledger_refusal refusal;
    if (kci_ledger_call(&reply, connection, "audit", NULL, AUDIT_TIMEOUT_MS, &refusal) != KC_OK)
        fail_msg("kc.ledger.audit: %d %s", refusal.code, refusal.message);
    if (!json_is_true(json_object_get(reply, "ok"))) {
        char *text = json_dumps(reply, 0);
        fail_msg("audit failed: %s", text);
    }
    return reply;
}

/* A raw request: the Kc-Error code (0 if none) and the reply's text. */
static int raw_request(natsConnection *connection, const char *subject, const char *body,
                       char *error, size_t error_size)
{
    natsMsg *reply = NULL;
    assert_int_equal(natsConnection_RequestString(&reply, connection, subject, body, TIMEOUT_MS),
                     NATS_OK);
    const char *text = NULL;
    int code = 0;
    error[0] = '\0';
    if (natsMsgHeader_Get(reply, "Kc-Error", &text) == NATS_OK && text != NULL) {
        code = atoi(text);
        snprintf(error, error_size, "%s", text);
    }
    natsMsg_Destroy(reply);
    return code;
}

static char *signed_json(const kci_ledger_transfer *transfer)
{
    json_t *object = kci_ledger_transfer_json(transfer);
    char *text = json_dumps(object, JSON_COMPACT);
    json_decref(object);
    return text;
}

/* ---- bad input ---------------------------------------------------------------------- */

static void expect_refused(natsConnection *connection, const char *subject, const char *body,
                           int code, const char *word)
{
    char error[1024];
    int got = raw_request(connection, subject, body, error, sizeof error);
    if (got != code || strstr(error, word) == NULL)
        fail_msg("%s %.200s: expected %d with \"%s\", got %d \"%s\"", subject, body, code, word,
                 got, error);
}

static void test_bad_input(void **state)
{
    world *w = *state;
    kci_wallet alice, bob, mallory;
    new_wallet(&alice);
    new_wallet(&bob);
    new_wallet(&mallory);
    kci_ledger_coin coins[2];
    mint(w->connection, &alice, 2, 10, coins);
    json_t *before = audit_ok(w->connection);

    kci_ledger_transfer transfer;
    assert_int_equal(kci_ledger_transfer_make(&transfer, &alice, bob.public_key, coins, 1), KC_OK);
    transfer.signature[3] ^= 1; /* forged */
    char *text = signed_json(&transfer);
    expect_refused(w->connection, "kc.ledger.transfer", text, 401, "signature");
    free(text);
    assert_int_equal(kci_ledger_sign(&transfer, mallory.secret_key), KC_OK); /* the wrong key */
    text = signed_json(&transfer);
    expect_refused(w->connection, "kc.ledger.transfer", text, 401, "signature");
    free(text);
    kci_ledger_transfer_free(&transfer);
    /* Mallory signs her own transfer of Alice's coin. */
    assert_int_equal(kci_ledger_transfer_make(&transfer, &mallory, bob.public_key, coins, 1),
                     KC_OK);
    text = signed_json(&transfer);
    expect_refused(w->connection, "kc.ledger.transfer", text, 409, "not owned");
    free(text);
    kci_ledger_transfer_free(&transfer);
    /* Unknown coin; zero, negative, overflowing amounts; malformed. */
    kci_ledger_coin ghost = coins[0];
    ghost.id[15] ^= 0x5a;
    assert_int_equal(kci_ledger_transfer_make(&transfer, &alice, bob.public_key, &ghost, 1), KC_OK);
    text = signed_json(&transfer);
    expect_refused(w->connection, "kc.ledger.transfer", text, 404, "unknown coin");
    static const struct {
        const char *from, *to, *word;
    } edits[] = {
        {"\"amount\":10", "\"amount\":0", "positive"},
        {"\"amount\":10", "\"amount\":-10", "positive"},
        {"\"amount\":10", "\"amount\":18446744073709551626", "bad JSON"},
        {"\"amount\":10", "\"amount\":9007199254740993", "above"},
        {"\"amount\":10", "\"amount\":1e3", "integer"},
    };
    for (size_t index = 0; index < sizeof edits / sizeof edits[0]; index++) {
        char bad[2048];
        const char *at = strstr(text, edits[index].from);
        assert_non_null(at);
        snprintf(bad, sizeof bad, "%.*s%s%s", (int)(at - text), text, edits[index].to,
                 at + strlen(edits[index].from));
        expect_refused(w->connection, "kc.ledger.transfer", bad, 400, edits[index].word);
    }
    free(text);
    kci_ledger_transfer_free(&transfer);
    expect_refused(w->connection, "kc.ledger.transfer", "{\"id\":", 400, "bad JSON");
    expect_refused(w->connection, "kc.ledger.transfer", "[1,2]", 400, "object");
    expect_refused(w->connection, "kc.ledger.nothing", "{}", 404, "no such ledger operation");
    expect_refused(w->connection, "kc.ledger.mint", "{\"to\":\"xyz\",\"denominations\":[1]}", 400,
                   "address");
    expect_refused(w->connection, "kc.ledger.balance", "{}", 400, "wallet");

    /* A real transfer, then the double spend names the coin and the transfer. */
    assert_int_equal(kci_ledger_transfer_make(&transfer, &alice, bob.public_key, coins, 1), KC_OK);
    char spent_by[37], coin_text[37];
    kci_ledger_id_text(spent_by, transfer.id);
    kci_ledger_id_text(coin_text, coins[0].id);
    text = signed_json(&transfer);
    char error[512];
    assert_int_equal(raw_request(w->connection, "kc.ledger.transfer", text, error, sizeof error),
                     0);
    /* Sent again (a retry after a lost answer): answered, not applied twice. */
    json_t *again = call_ok(w->connection, "transfer", json_loads(text, 0, NULL));
    assert_true(json_is_true(json_object_get(again, "replayed")));
    json_decref(again);
    free(text);
    kci_ledger_transfer_free(&transfer);
    assert_int_equal(kci_ledger_transfer_make(&transfer, &alice, mallory.public_key, coins, 1),
                     KC_OK);
    text = signed_json(&transfer);
    expect_refused(w->connection, "kc.ledger.transfer", text, 409, spent_by);
    expect_refused(w->connection, "kc.ledger.transfer", text, 409, coin_text);
    free(text);
    kci_ledger_transfer_free(&transfer);

    /* A mint whose second grant would pass the supply bound: neither grant is applied. */
    char mint_body[512], alice_address[65];
    kci_ledger_hex(alice_address, alice.public_key, 32);
    snprintf(mint_body, sizeof mint_body,
             "{\"grants\":[{\"to\":\"%s\",\"denominations\":[5]},"
             "{\"to\":\"%s\",\"denominations\":[9007199254740991]}]}",
             alice_address, alice_address);
    expect_refused(w->connection, "kc.ledger.mint", mint_body, 400, "total supply");

    /* Nothing refused changed the state: one transfer more, same supply. */
    json_t *after = audit_ok(w->connection);
    assert_int_equal(json_integer_value(json_object_get(after, "supply")),
                     json_integer_value(json_object_get(before, "supply")));
    assert_int_equal(json_integer_value(json_object_get(after, "transfers_verified")),
                     json_integer_value(json_object_get(before, "transfers_verified")) + 1);
    json_decref(before);
    json_decref(after);
}

/* ---- the race ------------------------------------------------------------------------ */

typedef struct racer {
    world *w;
    int index;
    const kci_wallet *payer;
    kci_wallet payee;
    const kci_ledger_coin *coins;
    bool batch; /* send all attempts in one transfer.batch */
    int pairs;  /* 1: single-coin transfers; 2: two coins each */
    uint32_t tried[RACE_ATTEMPTS][2];
    bool succeeded[RACE_ATTEMPTS];
    pthread_barrier_t *start;
} racer;

static void *race_main(void *argument)
{
    racer *r = argument;
    natsConnection *connection = connect_to(r->w);
    kci_ledger_transfer transfers[RACE_ATTEMPTS];
    json_t *list = json_array();
    for (int attempt = 0; attempt < RACE_ATTEMPTS; attempt++) {
        /* Overlapping: client i tries coins 2i .. 2i+7, so four clients want each coin. */
        uint32_t first = (uint32_t)(r->index * 2 + attempt) % RACE_COINS;
        kci_ledger_coin chosen[2] = {r->coins[first], r->coins[(first + 1) % RACE_COINS]};
        r->tried[attempt][0] = first;
        r->tried[attempt][1] = r->pairs == 2 ? (first + 1) % RACE_COINS : UINT32_MAX;
        kci_ledger_transfer_make(&transfers[attempt], r->payer, r->payee.public_key, chosen,
                                 (uint32_t)r->pairs);
        json_array_append_new(list, kci_ledger_transfer_json(&transfers[attempt]));
    }
    pthread_barrier_wait(r->start);
    kci_ledger_refusal refusal;
    if (r->batch) {
        json_t *reply = NULL;
        kc_err err = kci_ledger_call(&reply, connection, "transfer.batch",
                                     json_pack("{s:o}", "transfers", list), TIMEOUT_MS, &refusal);
        json_t *results = json_object_get(reply, "results");
        for (int attempt = 0; err == KC_OK && attempt < RACE_ATTEMPTS; attempt++)
            r->succeeded[attempt] =
                json_is_true(json_object_get(json_array_get(results, attempt), "ok"));
        json_decref(reply);
    } else {
        for (int attempt = 0; attempt < RACE_ATTEMPTS; attempt++) {
            json_t *reply = NULL;
            kc_err err =
                kci_ledger_call(&reply, connection, "transfer",
                                json_incref(json_array_get(list, attempt)), TIMEOUT_MS, &refusal);
            r->succeeded[attempt] = err == KC_OK;
            json_decref(reply);
        }
        json_decref(list);
    }
    for (int attempt = 0; attempt < RACE_ATTEMPTS; attempt++)
        kci_ledger_transfer_free(&transfers[attempt]);
    natsConnection_Destroy(connection);
    return NULL;
}

/* Who holds coin now (its trail's owner), as a racer index, -1 for the payer. */
static int holder(natsConnection *connection, const kci_ledger_coin *coin, const racer *racers)
{
    char id[37];
    kci_ledger_id_text(id, coin->id);
    json_t *reply = call_ok(connection, "trail", json_pack("{s:s}", "coin", id));
    uint8_t owner[32];
    assert_true(
        kci_ledger_address_parse(owner, json_string_value(json_object_get(reply, "owner"))));
    json_decref(reply);
    for (int index = 0; index < RACE_CLIENTS; index++)
        if (memcmp(owner, racers[index].payee.public_key, 32) == 0) return index;
    return -1;
}

static void race_round(world *w, int pairs)
{
    kci_wallet payer;
    new_wallet(&payer);
    kci_ledger_coin coins[RACE_COINS];
    mint(w->connection, &payer, RACE_COINS, 1, coins);
    static racer racers[RACE_CLIENTS];
    pthread_t threads[RACE_CLIENTS];
    pthread_barrier_t start;
    pthread_barrier_init(&start, NULL, RACE_CLIENTS);
    for (int index = 0; index < RACE_CLIENTS; index++) {
        racers[index] = (racer){.w = w,
                                .index = index,
                                .payer = &payer,
                                .coins = coins,
                                .batch = index % 2 == 1,
                                .pairs = pairs,
                                .start = &start};
        new_wallet(&racers[index].payee);
        assert_int_equal(pthread_create(&threads[index], NULL, race_main, &racers[index]), 0);
    }
    for (int index = 0; index < RACE_CLIENTS; index++)
        pthread_join(threads[index], NULL);
    pthread_barrier_destroy(&start);
    int spends[RACE_COINS] = {0}, spent_to[RACE_COINS];
    for (int index = 0; index < RACE_CLIENTS; index++)
        for (int attempt = 0; attempt < RACE_ATTEMPTS; attempt++)
            for (int slot = 0; slot < pairs && racers[index].succeeded[attempt]; slot++) {
                uint32_t coin = racers[index].tried[attempt][slot];
                spends[coin]++;
                spent_to[coin] = index;
            }
    for (int coin = 0; coin < RACE_COINS; coin++) {
        if (pairs == 1 && spends[coin] != 1)
            fail_msg("coin %d was spent %d times (exactly once expected)", coin, spends[coin]);
        if (spends[coin] > 1) fail_msg("coin %d was spent %d times", coin, spends[coin]);
        /* All or nothing: a coin is where its one successful transfer sent it. */
        int now = holder(w->connection, &coins[coin], racers);
        assert_int_equal(now, spends[coin] == 1 ? spent_to[coin] : -1);
    }
    json_decref(audit_ok(w->connection));
}

static void test_race_single_coins(void **state)
{
    race_round(*state, 1);
}

static void test_race_coin_pairs(void **state)
{
    race_round(*state, 2);
}

/* ---- the crash ---------------------------------------------------------------------- */

typedef struct stream {
    world *w;
    const kci_wallet *payer;
    kci_wallet payee;
    const kci_ledger_coin *coins;
    pthread_mutex_t lock;
    uint32_t acked_count; /* transfers 0 .. acked_count-1 ... see acked[] */
    bool acked[CRASH_COINS];
    uint8_t ids[CRASH_COINS][16];
    bool stop;
    uint32_t next_stream; /* each thread takes its slice of the coins */
} stream;

static void *stream_main(void *argument)
{
    stream *s = argument;
    natsConnection *connection = connect_to(s->w);
    pthread_mutex_lock(&s->lock);
    uint32_t slice = s->next_stream++;
    pthread_mutex_unlock(&s->lock);
    uint32_t begin = slice * (CRASH_COINS / CRASH_STREAMS),
             end = begin + CRASH_COINS / CRASH_STREAMS;
    for (uint32_t first = begin; first < end; first += CRASH_BATCH) {
        pthread_mutex_lock(&s->lock);
        bool stop = s->stop;
        pthread_mutex_unlock(&s->lock);
        if (stop) break;
        json_t *list = json_array();
        for (uint32_t index = first; index < first + CRASH_BATCH && index < end; index++) {
            kci_ledger_transfer transfer;
            kci_ledger_transfer_make(&transfer, s->payer, s->payee.public_key, &s->coins[index], 1);
            memcpy(s->ids[index], transfer.id, 16);
            json_array_append_new(list, kci_ledger_transfer_json(&transfer));
            kci_ledger_transfer_free(&transfer);
        }
        json_t *reply = NULL;
        kci_ledger_refusal refusal;
        kc_err err = kci_ledger_call(&reply, connection, "transfer.batch",
                                     json_pack("{s:o}", "transfers", list), 2000, &refusal);
        json_t *results = json_object_get(reply, "results");
        pthread_mutex_lock(&s->lock);
        for (uint32_t index = 0; err == KC_OK && index < json_array_size(results); index++)
            if (json_is_true(json_object_get(json_array_get(results, index), "ok"))) {
                s->acked[first + index] = true;
                s->acked_count++;
            }
        pthread_mutex_unlock(&s->lock);
        json_decref(reply);
    }
    natsConnection_Destroy(connection);
    return NULL;
}

static void test_crash_keeps_acknowledged(void **state)
{
    world *w = *state;
    kci_wallet payer;
    new_wallet(&payer);
    static kci_ledger_coin coins[CRASH_COINS];
    mint(w->connection, &payer, CRASH_COINS, 3, coins);
    static stream s;
    memset(&s, 0, sizeof s);
    s.w = w;
    s.payer = &payer;
    s.coins = coins;
    new_wallet(&s.payee);
    pthread_mutex_init(&s.lock, NULL);
    pthread_t threads[CRASH_STREAMS];
    for (int index = 0; index < CRASH_STREAMS; index++)
        assert_int_equal(pthread_create(&threads[index], NULL, stream_main, &s), 0);
    int64_t deadline = harness_now_ms() + 60000;
    for (;;) {
        pthread_mutex_lock(&s.lock);
        uint32_t acked = s.acked_count;
        pthread_mutex_unlock(&s.lock);
        if (acked >= CRASH_ACKED_BEFORE_KILL) break;
        if (harness_now_ms() > deadline) fail_msg("the stream did not get going");
        harness_sleep_ms(1);
    }
    pthread_mutex_lock(&s.lock);
    uint32_t acked_at_kill = s.acked_count;
    pthread_mutex_unlock(&s.lock);
    ledger_kill(w); /* in the middle of the stream */
    harness_sleep_ms(300);
    pthread_mutex_lock(&s.lock);
    s.stop = true;
    pthread_mutex_unlock(&s.lock);
    for (int index = 0; index < CRASH_STREAMS; index++)
        pthread_join(threads[index], NULL);
    natsConnection_Destroy(w->connection);
    ledger_start(w);
    w->connection = connect_to(w);
    wait_ready(w);
    uint32_t present = 0, acked = 0;
    for (uint32_t index = 0; index < CRASH_COINS; index++) {
        if (!s.acked[index]) continue; /* an unacknowledged one may or may not be there */
        acked++;
        char id[37];
        kci_ledger_id_text(id, s.ids[index]);
        json_t *reply = NULL;
        kci_ledger_refusal refusal;
        kc_err err = kci_ledger_call(&reply, w->connection, "transfer.get",
                                     json_pack("{s:s}", "transfer", id), TIMEOUT_MS, &refusal);
        if (err != KC_OK) fail_msg("acknowledged transfer %s is lost: %s", id, refusal.message);
        present++;
        json_decref(reply);
    }
    assert_int_equal(present, acked);
    print_message("crash: %u acknowledged when killed, %u in all, every one present\n",
                  acked_at_kill, acked);
    assert_true(acked >= CRASH_ACKED_BEFORE_KILL);
    json_decref(audit_ok(w->connection));
    pthread_mutex_destroy(&s.lock);
}

/* ---- history: the contract with kcobra econ ------------------------------------------ */

static void test_history_pages(void **state)
{
    world *w = *state;
    kci_wallet alice, bob;
    new_wallet(&alice);
    new_wallet(&bob);
    kci_ledger_coin coins[3];
    mint(w->connection, &alice, 3, 4, coins);
    for (int index = 0; index < 3; index++) {
        kci_ledger_transfer transfer;
        assert_int_equal(
            kci_ledger_transfer_make(&transfer, &alice, bob.public_key, &coins[index], 1), KC_OK);
        json_decref(call_ok(w->connection, "transfer", kci_ledger_transfer_json(&transfer)));
        kci_ledger_transfer_free(&transfer);
    }
    json_t *all = call_ok(w->connection, "history", NULL);
    size_t total = json_array_size(json_object_get(all, "edges"));
    assert_true(json_is_null(json_object_get(all, "next")));
    assert_true(total >= 4);
    /* Pages of 2 give the same edges in the same order. */
    json_t *after = json_null();
    size_t seen = 0;
    char alice_address[65], bob_address[65];
    kci_ledger_hex(alice_address, alice.public_key, 32);
    kci_ledger_hex(bob_address, bob.public_key, 32);
    int mints = 0, payments = 0;
    for (int page = 0; page < 1000; page++) {
        json_t *body = json_pack("{s:i}", "limit", 2);
        if (!json_is_null(after)) json_object_set(body, "after", after);
        json_t *reply = call_ok(w->connection, "history", body);
        json_t *edges = json_object_get(reply, "edges");
        assert_true(json_array_size(edges) <= 2);
        for (size_t index = 0; index < json_array_size(edges); index++, seen++) {
            json_t *edge = json_array_get(edges, index);
            assert_true(json_equal(edge, json_array_get(json_object_get(all, "edges"), seen)));
            const char *from = json_string_value(json_object_get(edge, "from"));
            const char *to = json_string_value(json_object_get(edge, "to"));
            assert_true(json_is_integer(json_object_get(edge, "amount")));
            assert_true(json_is_integer(json_object_get(edge, "time_ms")));
            assert_non_null(json_string_value(json_object_get(edge, "transfer")));
            mints += strcmp(from, "mint") == 0 && strcmp(to, alice_address) == 0;
            payments += strcmp(from, alice_address) == 0 && strcmp(to, bob_address) == 0 &&
                        json_integer_value(json_object_get(edge, "amount")) == 4;
        }
        json_decref(after);
        after = json_incref(json_object_get(reply, "next"));
        json_decref(reply);
        if (json_is_null(after)) break;
    }
    json_decref(after);
    assert_int_equal(seen, total);
    assert_int_equal(mints, 1);
    assert_int_equal(payments, 3);
    /* since_ms after everything: nothing. */
    json_t *none = call_ok(w->connection, "history",
                           json_pack("{s:I}", "since_ms", (json_int_t)0xFFFFFFFFFFFF));
    assert_int_equal(json_array_size(json_object_get(none, "edges")), 0);
    json_decref(none);
    json_decref(all);
}

/* ---- the CLI, end to end -------------------------------------------------------------- */

/* Runs kcobra with arguments (a shell fragment) and --json; the parsed
 * output, or NULL; *exit_status the exit status. */
static json_t *kcobra_json(const world *w, const char *arguments, int *exit_status)
{
    char command[2048];
    snprintf(
        command, sizeof command,
        "KCOBRA_WALLET_DIR='%.200s/wallets' '%s' %s --server %s --timeout 30s --json 2>/dev/null",
        w->server.directory_path, kcobra_binary, arguments, w->server.url);
    FILE *pipe = popen(command, "r");
    assert_non_null(pipe);
    char output[65536];
    size_t length = fread(output, 1, sizeof output - 1, pipe);
    output[length] = '\0';
    int status = pclose(pipe);
    *exit_status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    return json_loads(output, 0, NULL);
}

static void test_cli(void **state)
{
    world *w = *state;
    int status = 0;
    json_t *alice = kcobra_json(w, "wallet new alice", &status);
    assert_int_equal(status, 0);
    json_t *shop = kcobra_json(w, "wallet new shop", &status);
    assert_int_equal(status, 0);
    json_decref(kcobra_json(w, "wallet new alice", &status));
    assert_int_equal(status, 1); /* exists already */
    json_t *minted = kcobra_json(w, "mint --to alice --denominations 100,50,10", &status);
    assert_int_equal(status, 0);
    assert_int_equal(json_array_size(json_object_get(
                         json_array_get(json_object_get(minted, "issued"), 0), "coins")),
                     3);
    char arguments[256];
    snprintf(arguments, sizeof arguments, "pay --from alice --to %s --amount 30",
             json_string_value(json_object_get(shop, "address")));
    json_t *paid = kcobra_json(w, arguments, &status);
    assert_int_equal(status, 0);
    assert_true(json_is_true(json_object_get(paid, "exchanged"))); /* 30 needs change */
    json_t *balance = kcobra_json(w, "wallet balance alice", &status);
    assert_int_equal(json_integer_value(json_object_get(balance, "balance")), 130);
    json_decref(balance);
    balance = kcobra_json(w, "wallet balance shop", &status);
    assert_int_equal(json_integer_value(json_object_get(balance, "balance")), 30);
    json_decref(balance);
    json_decref(kcobra_json(w, "pay --from shop --to alice --amount 31", &status));
    assert_int_equal(status, 5); /* insufficient funds: the ledger's refusal */
    json_t *coins = kcobra_json(w, "wallet coins shop", &status);
    const char *coin = json_string_value(
        json_object_get(json_array_get(json_object_get(coins, "coins"), 0), "id"));
    assert_non_null(coin);
    snprintf(arguments, sizeof arguments, "coin trail %s", coin);
    json_t *trail = kcobra_json(w, arguments, &status);
    assert_int_equal(status, 0);
    assert_true(json_is_true(json_object_get(trail, "verified")));
    assert_int_equal(json_array_size(json_object_get(trail, "hops")), 2); /* issue, transfer */
    /* Change-making by hand: alice's 50 into 25 + 20 + 5. */
    json_t *held = kcobra_json(w, "wallet coins alice", &status);
    const char *fifty = NULL;
    json_t *held_coins = json_object_get(held, "coins");
    for (size_t index = 0; index < json_array_size(held_coins); index++)
        if (json_integer_value(
                json_object_get(json_array_get(held_coins, index), "denomination")) == 50)
            fifty = json_string_value(json_object_get(json_array_get(held_coins, index), "id"));
    assert_non_null(fifty);
    snprintf(arguments, sizeof arguments, "exchange --from alice --coins %s --into 25,20,5", fifty);
    json_t *exchanged = kcobra_json(w, arguments, &status);
    assert_int_equal(status, 0);
    assert_int_equal(
        json_array_size(json_object_get(json_object_get(exchanged, "issued"), "coins")), 3);
    json_decref(kcobra_json(w, arguments, &status)); /* the 50 is retired now */
    assert_int_equal(status, 1);                     /* not in the wallet any more */
    json_decref(held);
    json_decref(exchanged);
    balance = kcobra_json(w, "wallet balance alice", &status);
    assert_int_equal(json_integer_value(json_object_get(balance, "balance")), 130);
    json_decref(balance);
    json_t *audit = kcobra_json(w, "ledger audit", &status);
    assert_int_equal(status, 0);
    assert_true(json_is_true(json_object_get(audit, "ok")));
    json_t *history = kcobra_json(w, "ledger history --limit 1", &status);
    assert_int_equal(status, 0);
    assert_int_equal(json_array_size(json_object_get(history, "edges")), 1);
    json_decref(kcobra_json(w, "mint --to alice --amount -5", &status));
    assert_int_equal(status, 2); /* a usage error */
    json_decref(alice);
    json_decref(shop);
    json_decref(minted);
    json_decref(paid);
    json_decref(coins);
    json_decref(trail);
    json_decref(audit);
    json_decref(history);
}

/* kcobra serve --price/--wallet and kcobra request --pay: a paid service
 * and its callers through the CLI alone. */
static void test_cli_paid_service(void **state)
{
    world *w = *state;
    int status = 0;
    json_decref(kcobra_json(w, "wallet new payer", &status));
    assert_int_equal(status, 0);
    json_t *seller = kcobra_json(w, "wallet new seller", &status);
    assert_int_equal(status, 0);
    const char *address = json_string_value(json_object_get(seller, "address"));
    assert_non_null(address);
    json_decref(kcobra_json(w, "mint --to payer --denominations 5,5", &status));
    assert_int_equal(status, 0);
    char log_path[PATH_MAX];
    snprintf(log_path, sizeof log_path, "%s/paid-serve.log", w->server.directory_path);
    pid_t server = fork();
    assert_true(server >= 0);
    if (server == 0) {
        int log_fd = open(log_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        dup2(log_fd, STDERR_FILENO);
        dup2(log_fd, STDOUT_FILENO);
        execl(kcobra_binary, kcobra_binary, "serve", "paid-up", "--exec", "tr a-z A-Z", "--price",
              "5", "--wallet", address, "--server", w->server.url, (char *)NULL);
        _exit(127);
    }
    /* Ready when the service answers (without payment: 402, exit 5). */
    int64_t deadline_ms = harness_now_ms() + TIMEOUT_MS;
    do {
        json_decref(kcobra_json(w, "request paid-up hi", &status));
        if (status == 5) break;
        harness_sleep_ms(50);
    } while (harness_now_ms() < deadline_ms);
    assert_int_equal(status, 5); /* payment required */
    json_t *paid = kcobra_json(w, "pay --from payer --to seller --amount 5", &status);
    assert_int_equal(status, 0);
    const char *transfer = json_string_value(json_object_get(paid, "transfer"));
    assert_non_null(transfer);
    char arguments[256];
    snprintf(arguments, sizeof arguments, "request paid-up hello --pay %s", transfer);
    json_t *reply = kcobra_json(w, arguments, &status);
    assert_int_equal(status, 0);
    assert_string_equal(json_string_value(json_object_get(reply, "payload")), "HELLO");
    json_decref(reply);
    reply = kcobra_json(w, arguments, &status); /* the same transfer again */
    assert_int_equal(status, 5);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(reply, "error"), "code")),
                     402);
    json_decref(reply);
    kill(server, SIGTERM);
    int wait_status = 0;
    assert_int_equal(waitpid(server, &wait_status, 0), server);
    assert_true(WIFEXITED(wait_status) && WEXITSTATUS(wait_status) == 0);
    json_decref(paid);
    json_decref(seller);
}

/* ---- a paid service ------------------------------------------------------------------ */

static void echo_handler(const kc_request *request, kc_response *response, void *closure)
{
    (void)closure;
    size_t length = 0;
    const void *payload = kc_request_payload(request, &length);
    kc_response_set_payload(response, payload, length);
}

/* Pays coin from payer to payee; returns the transfer id (text). */
static void pay(natsConnection *connection, const kci_wallet *payer, const kci_wallet *payee,
                const kci_ledger_coin *coin, char id[37])
{
    kci_ledger_transfer transfer;
    assert_int_equal(kci_ledger_transfer_make(&transfer, payer, payee->public_key, coin, 1), KC_OK);
    kci_ledger_id_text(id, transfer.id);
    json_decref(call_ok(connection, "transfer", kci_ledger_transfer_json(&transfer)));
    kci_ledger_transfer_free(&transfer);
}

static void test_paid_service(void **state)
{
    world *w = *state;
    kci_wallet alice, shop, other;
    new_wallet(&alice);
    new_wallet(&shop);
    new_wallet(&other);
    char shop_address[65];
    kci_ledger_hex(shop_address, shop.public_key, 32);
    kci_ledger_coin coins[3];
    mint(w->connection, &alice, 1, 5, &coins[0]);
    mint(w->connection, &alice, 1, 3, &coins[1]);
    mint(w->connection, &alice, 1, 9, &coins[2]);
    char paid[37], short_paid[37], elsewhere[37];
    pay(w->connection, &alice, &shop, &coins[0], paid);
    pay(w->connection, &alice, &shop, &coins[1], short_paid);
    pay(w->connection, &alice, &other, &coins[2], elsewhere);

    kc_client_options options;
    kc_client_options_init(&options);
    options.servers = w->server.url;
    kc_client *client = NULL;
    assert_int_equal(kc_client_open(&client, &options), KC_OK);
    kc_service_options service_options;
    kc_service_options_init(&service_options);
    service_options.price = 5;
    service_options.wallet = shop_address;
    kc_service *service = NULL;
    assert_int_equal(
        kc_service_start(&service, client, "paid-echo", echo_handler, NULL, &service_options),
        KC_OK);
    kc_reply *reply = NULL;
    /* Unpaid. */
    assert_int_equal(kc_client_request(&reply, client, "paid-echo", "hi", 2, TIMEOUT_MS),
                     KC_ERR_SERVICE);
    assert_int_equal(kc_reply_error_code(reply), 402);
    assert_non_null(strstr(kc_reply_error_message(reply), "payment required"));
    kc_reply_destroy(reply);
    /* Too little, and paid to someone else. */
    assert_int_equal(
        kc_client_request_paid(&reply, client, "paid-echo", "hi", 2, TIMEOUT_MS, short_paid),
        KC_ERR_PAYMENT);
    assert_non_null(strstr(kc_reply_error_message(reply), "the price is 5"));
    kc_reply_destroy(reply);
    assert_int_equal(
        kc_client_request_paid(&reply, client, "paid-echo", "hi", 2, TIMEOUT_MS, elsewhere),
        KC_ERR_PAYMENT);
    assert_non_null(strstr(kc_reply_error_message(reply), "not this service's wallet"));
    kc_reply_destroy(reply);
    /* Paid: served. */
    assert_int_equal(kc_client_request_paid(&reply, client, "paid-echo", "hi", 2, TIMEOUT_MS, paid),
                     KC_OK);
    size_t length = 0;
    const char *payload = kc_reply_payload(reply, &length);
    assert_int_equal(length, 2);
    assert_memory_equal(payload, "hi", 2);
    kc_reply_destroy(reply);
    /* The same payment for a second request: refused. */
    assert_int_equal(
        kc_client_request_paid(&reply, client, "paid-echo", "again", 5, TIMEOUT_MS, paid),
        KC_ERR_PAYMENT);
    assert_non_null(strstr(kc_reply_error_message(reply), "already paid request"));
    kc_reply_destroy(reply);
    kc_service_stop(service);
    assert_int_equal(kc_client_close(client, TIMEOUT_MS), KC_OK);
}

int main(int argc, char **argv)
{
    server_binary = argc > 1 ? argv[1] : NULL;
    kcobra_binary = argc > 2 ? argv[2] : getenv("KCOBRA");
    if (server_binary == NULL) {
        fprintf(stderr, "ledger service_test: no server binary: skipped\n");
        return SKIP_EXIT_CODE;
    }
    const char *base = strrchr(server_binary, '/');
    ledger_in_server = strstr(base != NULL ? base : server_binary, "kcobrad") != NULL;
    if (!ledger_in_server && kcobra_binary == NULL) {
        fprintf(stderr,
                "ledger service_test: no kcobra binary for `kcobra ledger serve`: skipped\n");
        return SKIP_EXIT_CODE;
    }
    if (sodium_init() < 0) return 1;
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bad_input),
        cmocka_unit_test(test_race_single_coins),
        cmocka_unit_test(test_race_coin_pairs),
        cmocka_unit_test(test_history_pages),
        cmocka_unit_test(test_cli),
        cmocka_unit_test(test_paid_service),
        cmocka_unit_test(test_cli_paid_service),
        cmocka_unit_test(test_crash_keeps_acknowledged),
    };
    int failures = cmocka_run_group_tests(tests, group_setup, group_teardown);
    nats_CloseAndWait(TIMEOUT_MS);
    return failures;
}
