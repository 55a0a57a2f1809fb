/*
 * ledger_replicated.c - the ledger as a replicated state machine on
 * JetStream (storage jetstream: src/ledger/replica.c, docs/ledger.md),
 * between real `kcobra ledger serve` processes (argv[2]) on nats-server
 * (argv[1]).
 *
 * Both cases: several ledgers share one log stream and one mint key; the
 * first one started is active. CLIENTS threads race random one-coin
 * transfers over the same few coins (so many of them collide: the ledger
 * refuses all but one spend of a coin), each sending its signed transfer
 * again after a timeout, no responders or a 503 until it gets an answer
 * that decides (the same transfer again is answered "replayed" if it was
 * applied). In the middle the active ledger is killed with SIGKILL; a
 * standby takes over. Then the killed one is started again (it resumes
 * from its LMDB and catches up), and:
 *   - every acknowledged transfer is in the ledger (transfer.get), and in
 *     its coin's trail; each coin's trail chains (each hop paid by the one
 *     before's payee), and holds exactly the transfers acknowledged for it:
 *     no coin was spent twice and nothing acknowledged was lost;
 *   - `kcobra ledger audit` passes;
 *   - `kcobra ledger audit --replicas` finds every ledger at the same log
 *     entry with the same chain and state digests.
 * Then escrow goes through the log too (issue 15): a hold that its payee
 * posts, one it voids, a refused double post, and one that expires (an
 * expire entry stamped with the active ledger's clock); the audits and the
 * replicas' digests are compared again.
 *
 * Cases:
 *   local_baseline  the same clients against one ledger with storage local:
 *            transfers/s to read the others against (printed)
 *   fencing  a second writer on the log (this test): an entry expecting an
 *            old last sequence is refused; the ledger's own next entry is
 *            refused, it reads and applies the other's entry and writes after
 *   single   one nats-server, R1, two ledgers (fast); at the end everything
 *            (ledgers and server) is stopped and started again from disk:
 *            the same log entry and state digest
 *   single_paused  the same with SIGSTOP instead of kill -9, held until the
 *            standby serves, then SIGCONT: the old active, deposed, has its
 *            late entry refused by the stream (fencing), says it stands by,
 *            and follows; the checks below hold with it as a replica
 *   cluster  three nats-servers (js_cluster.h), R3 stream and lease, three
 *            ledgers each connected first to another server
 *   cluster_server_killed  (its own meson test, third argument "server"):
 *            kill -9 of the nats-server leading the log's stream instead;
 *            writes pause until the others elect a leader (printed), the
 *            server is started again, and the same checks hold
 *
 * The issue asks for 32 clients; CLIENTS is 8 here, over 24 coins of 6
 * wallets, which collides more often than 32 clients over more coins would
 * and keeps the test near a minute on a loaded two-core machine. Prints
 * acknowledged transfers/s before the kill and the take-over time (from the
 * kill to the first acknowledgement by another ledger); asserts no speed.
 */
/* clang-format off */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
/* clang-format on */

#include <fcntl.h>
#include <jansson.h>
#include <nats/nats.h>
#include <pthread.h>
#include <signal.h>
#include <sodium.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "js_cluster.h"
#include "ledger/batch_codec.h"
#include "ledger/client.h"
#include "ledger/codec.h"
#include "ledger/wallet.h"
#include "service/uuid.h"

enum {
    SKIP_EXIT_CODE = 77,
    FAULT_SERVER = -1,         /* a fault that is not a signal to a ledger */
    FAULT_PARTITION = -2,      /* SIGSTOP of the active ledger's only server */
    PARTITION_EXTRA_MS = 2000, /* the server stays paused this long after the take-over */
    CLIENT_PING_MS = 500,
    LEDGERS_MAX = 3,
    WALLETS = 6,
    COINS_PER_WALLET = 4,
    COINS = WALLETS * COINS_PER_WALLET,
    CLIENTS = 8,
    ACKS_MAX = 200000,
    REQUEST_MS = 1000, /* a request the killed ledger held is sent again after this */
    RETRY_PAUSE_MS = 50,
    DECIDE_TIMEOUT_MS = 60000, /* a transfer gets an answer that decides within this */
    READY_TIMEOUT_MS = 60000,
    BEFORE_KILL_MS = 2500,
    DIGEST_ROUND_MS = 700, /* every ledger answers a digest request within this on loopback */
    AFTER_TAKEOVER_MS = 2000,
    SAMPLE_EVERY = 10,     /* transfer.get of every 10th acknowledgement (the trails cover all) */
    AROUND_KILL_MS = 3000, /* and of every one this close to the kill */
    TAKEOVER_TIMEOUT_MS = 60000,
    STOP_TIMEOUT_MS = 10000,
    OUTPUT_BYTES_MAX = 1 << 20,
    PATH_BYTES = HARNESS_PATH_SIZE_MAX + 64,
};

typedef struct ledger_process {
    pid_t pid;
    char directory[PATH_BYTES];
    char log_path[PATH_BYTES];
    char node[16];
    char urls[JS_CLUSTER_URLS_BYTES_MAX];
} ledger_process;

typedef struct acknowledged {
    uint8_t transfer[KCI_LEDGER_ID_BYTES];
    int coin, from, to;
    int64_t at_ms;
    char node[16]; /* the ledger that answered */
} acknowledged;

typedef struct world {
    const char *kcobra;
    char work[HARNESS_PATH_SIZE_MAX];
    char client_urls[JS_CLUSTER_URLS_BYTES_MAX];
    const char *stream_replicas; /* "1" or "3"; NULL: storage local (the baseline) */
    ledger_process ledgers[LEDGERS_MAX];
    int ledger_count;
    uint8_t public_keys[WALLETS][KCI_LEDGER_KEY_BYTES];
    uint8_t secret_keys[WALLETS][KCI_LEDGER_SECRET_BYTES];
    kci_ledger_coin coins[COINS];
    int owner[COINS];
    pthread_mutex_t lock; /* owner, acks */
    acknowledged *acks;
    int ack_count;
    atomic_bool stop;
    atomic_int undecided; /* transfers that got no deciding answer in time */
    atomic_int refused;   /* 409s: collisions the ledger settled */
} world;

static world the_world;
static const char *nats_server_binary;
static js_cluster cluster;
static harness_server single_server;

/* ======================================================================= processes */

static void ledger_spawn(world *w, int index)
{
    ledger_process *ledger = &w->ledgers[index];
    char replicas_flag[8];
    bool local = w->stream_replicas == NULL; /* the baseline: storage local */
    snprintf(replicas_flag, sizeof replicas_flag, "%s", local ? "1" : w->stream_replicas);
    const char *const argv[] = {w->kcobra,
                                "ledger",
                                "serve",
                                "--dir",
                                ledger->directory,
                                "--server",
                                ledger->urls,
                                "--node",
                                ledger->node,
                                "--workers",
                                "1",
                                "--storage",
                                local ? "local" : "jetstream",
                                local ? NULL : "--stream-replicas",
                                replicas_flag,
                                "--lease-replicas",
                                replicas_flag,
                                NULL};
    int output = open(ledger->log_path, O_WRONLY | O_CREAT | O_APPEND, 0600);
    assert_true(output >= 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        dup2(output, STDOUT_FILENO);
        dup2(output, STDERR_FILENO);
        execv(argv[0], (char *const *)argv);
        _exit(127);
    }
    close(output);
    ledger->pid = pid;
}

static void ledger_kill(world *w, int index)
{
    assert_true(w->ledgers[index].pid > 0);
    kill(w->ledgers[index].pid, SIGKILL);
    waitpid(w->ledgers[index].pid, NULL, 0);
    w->ledgers[index].pid = 0;
}

static void ledger_stop(world *w, int index)
{
    ledger_process *ledger = &w->ledgers[index];
    if (ledger->pid == 0) return;
    kill(ledger->pid, SIGCONT); /* a case that failed while it was stopped */
    kill(ledger->pid, SIGTERM);
    int64_t deadline_ms = harness_now_ms() + STOP_TIMEOUT_MS;
    while (harness_now_ms() < deadline_ms && waitpid(ledger->pid, NULL, WNOHANG) == 0)
        harness_sleep_ms(50);
    if (kill(ledger->pid, 0) == 0) {
        kill(ledger->pid, SIGKILL);
        waitpid(ledger->pid, NULL, 0);
    }
    ledger->pid = 0;
}

static void copy_file(const char *from, const char *to)
{
    char bytes[4096];
    int in = open(from, O_RDONLY), out = open(to, O_WRONLY | O_CREAT | O_EXCL, 0600);
    assert_true(in >= 0 && out >= 0);
    ssize_t length = read(in, bytes, sizeof bytes);
    assert_true(length > 0 && write(out, bytes, (size_t)length) == length);
    close(in);
    close(out);
}

/* Runs kcobra with arguments (NULL-terminated); its stdout into output. */
static int kcobra_run(world *w, char *output, size_t output_size, const char *const *arguments)
{
    char command[4096];
    size_t length = (size_t)snprintf(command, sizeof command, "%s", w->kcobra);
    for (int index = 0; arguments[index] != NULL; index++)
        length +=
            (size_t)snprintf(command + length, sizeof command - length, " '%s'", arguments[index]);
    FILE *pipe = popen(command, "r");
    assert_non_null(pipe);
    size_t read_bytes = fread(output, 1, output_size - 1, pipe);
    output[read_bytes] = '\0';
    int status = pclose(pipe);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* ======================================================================= requests */

static natsConnection *connect_to(const char *urls)
{
    natsOptions *options = NULL;
    natsConnection *connection = NULL;
    assert_int_equal(natsOptions_Create(&options), NATS_OK);
    char copy[JS_CLUSTER_URLS_BYTES_MAX];
    const char *servers[JS_CLUSTER_SIZE];
    int count = 0;
    snprintf(copy, sizeof copy, "%s", urls);
    char *save = NULL;
    for (char *url = strtok_r(copy, ",", &save); url != NULL && count < JS_CLUSTER_SIZE;
         url = strtok_r(NULL, ",", &save))
        servers[count++] = url;
    natsOptions_SetServers(options, servers, count);
    natsOptions_SetMaxReconnect(options, -1);
    natsOptions_SetReconnectWait(options, 100);
    /* A paused server keeps its sockets open: only pings tell (partition). */
    natsOptions_SetPingInterval(options, CLIENT_PING_MS);
    natsOptions_SetMaxPingsOut(options, 2);
    natsStatus status = natsConnection_Connect(&connection, options);
    if (status != NATS_OK) fail_msg("cannot connect to %s: %s", urls, nats_GetLastError(NULL));
    natsOptions_Destroy(options);
    return connection;
}

/* Asks until an answer decides (an answer, or a refusal other than 503);
 * 0 and *reply for an answer, the refusal's code otherwise, -1 when none
 * decided within DECIDE_TIMEOUT_MS. */
static int call_until_decided(natsConnection *connection, const char *subject, const char *body,
                              json_t **reply, char *node, size_t node_size)
{
    int64_t deadline_ms = harness_now_ms() + DECIDE_TIMEOUT_MS;
    while (harness_now_ms() < deadline_ms) {
        natsMsg *message = NULL;
        natsStatus status =
            natsConnection_RequestString(&message, connection, subject, body, REQUEST_MS);
        if (status != NATS_OK || natsMsg_IsNoResponders(message)) {
            natsMsg_Destroy(message);
            harness_sleep_ms(RETRY_PAUSE_MS);
            continue;
        }
        const char *error = NULL, *answered_by = NULL;
        int code = natsMsgHeader_Get(message, "Kc-Error", &error) == NATS_OK ? atoi(error) : 0;
        if (node != NULL && natsMsgHeader_Get(message, "Kc-Node", &answered_by) == NATS_OK)
            snprintf(node, node_size, "%s", answered_by);
        if (code == 0 && reply != NULL)
            *reply = json_loadb(natsMsg_GetData(message), (size_t)natsMsg_GetDataLength(message), 0,
                                NULL);
        natsMsg_Destroy(message);
        if (code == 503) {
            harness_sleep_ms(RETRY_PAUSE_MS);
            continue;
        }
        return code;
    }
    return -1;
}

/* COINS_PER_WALLET coins of 1 to each wallet, in one mint. */
static void mint_coins(world *w, natsConnection *connection)
{
    json_t *grants = json_array();
    for (int wallet = 0; wallet < WALLETS; wallet++) {
        char address[KCI_LEDGER_ADDRESS_TEXT_BYTES + 1];
        kci_ledger_hex(address, w->public_keys[wallet], KCI_LEDGER_KEY_BYTES);
        json_t *denominations = json_array();
        for (int coin = 0; coin < COINS_PER_WALLET; coin++)
            json_array_append_new(denominations, json_integer(1));
        json_array_append_new(
            grants, json_pack("{s:s, s:o}", "to", address, "denominations", denominations));
    }
    json_t *body = json_pack("{s:o}", "grants", grants);
    char *text = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    json_t *reply = NULL;
    assert_int_equal(call_until_decided(connection, "kc.ledger.mint", text, &reply, NULL, 0), 0);
    free(text);
    json_t *issued = json_object_get(reply, "issued");
    assert_int_equal(json_array_size(issued), WALLETS);
    for (int wallet = 0; wallet < WALLETS; wallet++) {
        json_t *coins = json_object_get(json_array_get(issued, (size_t)wallet), "coins");
        assert_int_equal(json_array_size(coins), COINS_PER_WALLET);
        for (int coin = 0; coin < COINS_PER_WALLET; coin++) {
            int index = wallet * COINS_PER_WALLET + coin;
            json_t *entry = json_array_get(coins, (size_t)coin);
            assert_true(kci_ledger_id_parse(w->coins[index].id,
                                            json_string_value(json_object_get(entry, "id"))));
            w->coins[index].denomination = 1;
            w->owner[index] = wallet;
        }
    }
    json_decref(reply);
}

/* ======================================================================= clients */

typedef struct client {
    world *w;
    int index;
} client;

/* One signed transfer of coin from its believed owner to another wallet. */
static char *transfer_body(world *w, unsigned *seed, int *coin, int *from, int *to,
                           uint8_t id[KCI_LEDGER_ID_BYTES])
{
    pthread_mutex_lock(&w->lock);
    *coin = (int)(rand_r(seed) % COINS);
    *from = w->owner[*coin];
    kci_ledger_transfer transfer = {
        .kind = KCI_LEDGER_KIND_TRANSFER, .coin_count = 1, .amount = 1, .coins = &w->coins[*coin]};
    pthread_mutex_unlock(&w->lock);
    *to = (*from + 1 + (int)(rand_r(seed) % (WALLETS - 1))) % WALLETS;
    kci_uuid uuid;
    kci_uuid_v7(&uuid);
    memcpy(transfer.id, uuid.bytes, KCI_LEDGER_ID_BYTES);
    memcpy(id, uuid.bytes, KCI_LEDGER_ID_BYTES);
    memcpy(transfer.from, w->public_keys[*from], KCI_LEDGER_KEY_BYTES);
    memcpy(transfer.to, w->public_keys[*to], KCI_LEDGER_KEY_BYTES);
    transfer.time_ms = uuid.bytes[0] == 0xFF ? 0 : kci_uuid_v7_time_ms(&uuid);
    assert_int_equal(kci_ledger_sign(&transfer, w->secret_keys[*from]), KC_OK);
    json_t *json = kci_ledger_transfer_json(&transfer);
    char *text = json_dumps(json, JSON_COMPACT);
    json_decref(json);
    return text;
}

static void *client_main(void *argument)
{
    client *self = argument;
    world *w = self->w;
    unsigned seed = (unsigned)self->index * 7919u + 17u;
    natsConnection *connection = connect_to(w->client_urls);
    while (!atomic_load(&w->stop)) {
        int coin = 0, from = 0, to = 0;
        uint8_t id[KCI_LEDGER_ID_BYTES];
        char *body = transfer_body(w, &seed, &coin, &from, &to, id);
        char node[16] = "";
        json_t *reply = NULL;
        int code =
            call_until_decided(connection, "kc.ledger.transfer", body, &reply, node, sizeof node);
        free(body);
        bool ok = code == 0 && json_is_true(json_object_get(reply, "ok"));
        json_decref(reply);
        if (code == -1) atomic_fetch_add(&w->undecided, 1);
        if (code == 409) atomic_fetch_add(&w->refused, 1);
        if (!ok) continue;
        pthread_mutex_lock(&w->lock);
        if (w->ack_count < ACKS_MAX) {
            acknowledged *ack = &w->acks[w->ack_count++];
            memcpy(ack->transfer, id, KCI_LEDGER_ID_BYTES);
            ack->coin = coin;
            ack->from = from;
            ack->to = to;
            ack->at_ms = harness_now_ms();
            snprintf(ack->node, sizeof ack->node, "%s", node);
        }
        w->owner[coin] = to;
        pthread_mutex_unlock(&w->lock);
    }
    natsConnection_Destroy(connection);
    return NULL;
}

/* ======================================================================= checks */

/* The ledger answering on the digest subject as active, or -1. */
static int active_ledger(world *w, natsConnection *connection)
{
    natsMsg *message = NULL;
    int active = -1;
    natsInbox *inbox = NULL;
    natsSubscription *subscription = NULL;
    natsInbox_Create(&inbox);
    natsConnection_SubscribeSync(&subscription, connection, (const char *)inbox);
    natsConnection_PublishRequestString(connection, "kc.sys.ledger.digest", (const char *)inbox,
                                        "{}");
    while (natsSubscription_NextMsg(&message, subscription, DIGEST_ROUND_MS) == NATS_OK) {
        json_t *reply =
            json_loadb(natsMsg_GetData(message), (size_t)natsMsg_GetDataLength(message), 0, NULL);
        const char *node = json_string_value(json_object_get(reply, "node"));
        for (int index = 0; node != NULL && index < w->ledger_count; index++)
            if (json_is_true(json_object_get(reply, "active")) &&
                strcmp(node, w->ledgers[index].node) == 0)
                active = index;
        json_decref(reply);
        natsMsg_Destroy(message);
    }
    natsSubscription_Destroy(subscription);
    natsInbox_Destroy(inbox);
    return active;
}

static int find_wallet(const world *w, const char *address)
{
    uint8_t key[KCI_LEDGER_KEY_BYTES];
    if (address == NULL || !kci_ledger_address_parse(key, address)) return -1;
    for (int wallet = 0; wallet < WALLETS; wallet++)
        if (memcmp(key, w->public_keys[wallet], KCI_LEDGER_KEY_BYTES) == 0) return wallet;
    return -1;
}

/* The coin's trail chains from the issue, and its transfer hops are
 * exactly the acknowledged transfers of the coin. */
static void check_coin(world *w, natsConnection *connection, int coin)
{
    char id[37], body[128];
    kci_ledger_id_text(id, w->coins[coin].id);
    snprintf(body, sizeof body, "{\"coin\":\"%s\"}", id);
    json_t *trail = NULL;
    assert_int_equal(call_until_decided(connection, "kc.ledger.trail", body, &trail, NULL, 0), 0);
    json_t *hops = json_object_get(trail, "hops");
    assert_true(json_array_size(hops) >= 1);
    assert_string_equal(json_string_value(json_object_get(json_array_get(hops, 0), "kind")),
                        "issue");
    int transfers = 0;
    for (size_t hop = 1; hop < json_array_size(hops); hop++) {
        json_t *this = json_array_get(hops, hop), *before = json_array_get(hops, hop - 1);
        assert_string_equal(json_string_value(json_object_get(this, "from")),
                            json_string_value(json_object_get(before, "to")));
        uint8_t transfer[KCI_LEDGER_ID_BYTES];
        assert_true(
            kci_ledger_id_parse(transfer, json_string_value(json_object_get(this, "transfer"))));
        bool acknowledged_here = false;
        for (int index = 0; index < w->ack_count && !acknowledged_here; index++)
            acknowledged_here = w->acks[index].coin == coin &&
                                memcmp(w->acks[index].transfer, transfer, KCI_LEDGER_ID_BYTES) == 0;
        if (!acknowledged_here)
            fail_msg("coin %s: hop %zu (transfer %s) was never acknowledged", id, hop,
                     json_string_value(json_object_get(this, "transfer")));
        transfers++;
    }
    int acknowledged_count = 0;
    for (int index = 0; index < w->ack_count; index++)
        acknowledged_count += w->acks[index].coin == coin;
    if (acknowledged_count != transfers)
        fail_msg("coin %s: %d transfers acknowledged, %d in its trail", id, acknowledged_count,
                 transfers);
    /* The owner is the last hop's payee (not the clients' belief: two coins' acks can be
     * processed in another order than they were applied when a coin comes back). */
    json_t *last = json_array_get(hops, json_array_size(hops) - 1);
    assert_string_equal(json_string_value(json_object_get(trail, "owner")),
                        json_string_value(json_object_get(last, "to")));
    json_decref(trail);
}

/* Each acknowledged transfer near the kill and a sample of the others
 * (transfer.get); then every coin's trail, which holds exactly the
 * acknowledged transfers of the coin (so all of them). */
static void check_acknowledged(world *w, natsConnection *connection, int64_t killed_ms)
{
    for (int index = 0; index < w->ack_count; index++) {
        int64_t distance_ms = w->acks[index].at_ms - killed_ms;
        if (index % SAMPLE_EVERY != 0 &&
            (distance_ms < -AROUND_KILL_MS || distance_ms > AROUND_KILL_MS))
            continue;
        char id[37], body[128];
        kci_ledger_id_text(id, w->acks[index].transfer);
        snprintf(body, sizeof body, "{\"transfer\":\"%s\"}", id);
        json_t *hop = NULL;
        int code = call_until_decided(connection, "kc.ledger.transfer.get", body, &hop, NULL, 0);
        if (code != 0) fail_msg("acknowledged transfer %s: answered %d", id, code);
        assert_int_equal(find_wallet(w, json_string_value(json_object_get(hop, "from"))),
                         w->acks[index].from);
        assert_int_equal(find_wallet(w, json_string_value(json_object_get(hop, "to"))),
                         w->acks[index].to);
        json_decref(hop);
    }
    for (int coin = 0; coin < COINS; coin++)
        check_coin(w, connection, coin);
}

/* Both audits pass; content (65 bytes, may be NULL) and *sequence get the
 * agreed state digest and log entry. */
static void check_audits(world *w, int replicas_expected, char *content, int64_t *sequence)
{
    char *output = malloc(OUTPUT_BYTES_MAX);
    assert_non_null(output);
    const char *const audit[] = {"ledger", "audit", "--server", w->client_urls, NULL};
    int status = kcobra_run(w, output, OUTPUT_BYTES_MAX, audit);
    if (status != 0) fail_msg("kcobra ledger audit: exit %d: %s", status, output);
    const char *const replicas[] = {"ledger",   "audit",        "--replicas", "--json",
                                    "--server", w->client_urls, NULL};
    status = kcobra_run(w, output, OUTPUT_BYTES_MAX, replicas);
    json_t *report = json_loads(output, 0, NULL);
    if (status != 0 || !json_is_true(json_object_get(report, "ok")))
        fail_msg("kcobra ledger audit --replicas: exit %d: %s", status, output);
    assert_int_equal(json_integer_value(json_object_get(report, "count")), replicas_expected);
    printf("# replicas agree at log entry %" JSON_INTEGER_FORMAT " (%d ledgers)\n",
           json_integer_value(json_object_get(report, "sequence")), replicas_expected);
    if (content != NULL)
        snprintf(content, 65, "%s",
                 json_string_value(json_object_get(
                     json_array_get(json_object_get(report, "replicas"), 0), "content")));
    if (sequence != NULL) *sequence = json_integer_value(json_object_get(report, "sequence"));
    json_decref(report);
    free(output);
}

/* ======================================================================= escrow */

/* A hold of coin from its owner to the next wallet; its id into id. */
static int hold_send(world *w, natsConnection *connection, int coin, int64_t hold_ms,
                     uint8_t id[KCI_LEDGER_ID_BYTES], int *payee)
{
    int from = w->owner[coin];
    *payee = (from + 1) % WALLETS;
    kci_wallet payer;
    memcpy(payer.public_key, w->public_keys[from], KCI_LEDGER_KEY_BYTES);
    memcpy(payer.secret_key, w->secret_keys[from], KCI_LEDGER_SECRET_BYTES);
    kci_ledger_transfer hold;
    assert_int_equal(
        kci_ledger_hold_make(&hold, &payer, w->public_keys[*payee], &w->coins[coin], 1, hold_ms),
        KC_OK);
    memcpy(id, hold.id, KCI_LEDGER_ID_BYTES);
    json_t *json = kci_ledger_transfer_json(&hold);
    char *text = json_dumps(json, JSON_COMPACT);
    json_decref(json);
    kci_ledger_transfer_free(&hold);
    int code = call_until_decided(connection, "kc.ledger.hold", text, NULL, NULL, 0);
    free(text);
    return code;
}

/* The payee's post or void of hold (for request, may be ""): the wire code. */
static int hold_settle(world *w, natsConnection *connection, kci_ledger_settle settle,
                       const uint8_t hold[KCI_LEDGER_ID_BYTES], int payee, const char *request)
{
    uint8_t signature[KCI_LEDGER_SIGNATURE_BYTES];
    kci_ledger_settle_sign(signature, settle, hold, request, 0, w->secret_keys[payee]);
    char hold_text[37], address[KCI_LEDGER_ADDRESS_TEXT_BYTES + 1];
    char signature_text[KCI_LEDGER_SIGNATURE_TEXT_BYTES + 1];
    kci_ledger_id_text(hold_text, hold);
    kci_ledger_hex(address, w->public_keys[payee], KCI_LEDGER_KEY_BYTES);
    kci_ledger_hex(signature_text, signature, KCI_LEDGER_SIGNATURE_BYTES);
    char body[512];
    snprintf(body, sizeof body, "{\"hold\":\"%s\",\"payee\":\"%s\",%s%s%s\"signature\":\"%s\"}",
             hold_text, address, request[0] != '\0' ? "\"request\":\"" : "", request,
             request[0] != '\0' ? "\"," : "", signature_text);
    return call_until_decided(connection,
                              settle == KCI_LEDGER_SETTLE_POST ? "kc.ledger.hold.post"
                                                               : "kc.ledger.hold.void",
                              body, NULL, NULL, 0);
}

/* The hold's state, from transfer.get. */
static bool hold_is(natsConnection *connection, const uint8_t hold[KCI_LEDGER_ID_BYTES],
                    const char *state)
{
    char id[37], body[96];
    kci_ledger_id_text(id, hold);
    snprintf(body, sizeof body, "{\"transfer\":\"%s\"}", id);
    json_t *reply = NULL;
    int code = call_until_decided(connection, "kc.ledger.transfer.get", body, &reply, NULL, 0);
    const char *now = json_string_value(json_object_get(json_object_get(reply, "hold"), "state"));
    bool is = code == 0 && now != NULL && strcmp(now, state) == 0;
    json_decref(reply);
    return is;
}

/* Escrow through the replicated log; every replica must still agree. */
static void escrow_round(world *w, natsConnection *connection)
{
    static const char request_one[] = "0190a1b2-c3d4-7e5f-8a6b-7c8d9e0f1a2b";
    static const char request_two[] = "0190a1b2-c3d4-7e5f-8a6b-7c8d9e0f1a2c";
    uint8_t posted[KCI_LEDGER_ID_BYTES], voided[KCI_LEDGER_ID_BYTES], expiring[KCI_LEDGER_ID_BYTES];
    int posted_payee = 0, voided_payee = 0, expiring_payee = 0;
    assert_int_equal(hold_send(w, connection, 0, 60000, posted, &posted_payee), 0);
    assert_int_equal(hold_send(w, connection, 1, 60000, voided, &voided_payee), 0);
    assert_int_equal(hold_send(w, connection, 2, 1500, expiring, &expiring_payee), 0);
    assert_int_equal(
        hold_settle(w, connection, KCI_LEDGER_SETTLE_POST, posted, posted_payee, request_one), 0);
    assert_int_equal(
        hold_settle(w, connection, KCI_LEDGER_SETTLE_POST, posted, posted_payee, request_two), 409);
    assert_int_equal(hold_settle(w, connection, KCI_LEDGER_SETTLE_VOID, voided, voided_payee, ""),
                     0);
    assert_int_equal(
        hold_settle(w, connection, KCI_LEDGER_SETTLE_POST, voided, voided_payee, request_one), 409);
    int64_t deadline_ms = harness_now_ms() + DECIDE_TIMEOUT_MS;
    while (!hold_is(connection, expiring, "expired")) {
        assert_true(harness_now_ms() < deadline_ms);
        harness_sleep_ms(200);
    }
    assert_true(hold_is(connection, posted, "posted"));
    assert_true(hold_is(connection, voided, "voided"));
    printf("# escrow through the log: a hold posted, one voided, one expired\n");
}

/* ======================================================================= the scenario */

static void world_init(world *w, const char *kcobra, const char *stream_replicas, int ledgers)
{
    memset(w, 0, sizeof *w);
    w->kcobra = kcobra;
    w->stream_replicas = stream_replicas;
    w->ledger_count = ledgers;
    pthread_mutex_init(&w->lock, NULL);
    w->acks = calloc(ACKS_MAX, sizeof *w->acks);
    assert_non_null(w->acks);
    const char *temporary = getenv("TMPDIR");
    snprintf(w->work, sizeof w->work, "%s/kc-ledger-replicated-XXXXXX",
             temporary != NULL && temporary[0] != '\0' ? temporary : "/tmp");
    assert_non_null(mkdtemp(w->work));
    for (int wallet = 0; wallet < WALLETS; wallet++)
        crypto_sign_keypair(w->public_keys[wallet], w->secret_keys[wallet]);
    for (int index = 0; index < ledgers; index++) {
        ledger_process *ledger = &w->ledgers[index];
        snprintf(ledger->directory, sizeof ledger->directory, "%s/ledger-%d", w->work, index);
        snprintf(ledger->log_path, sizeof ledger->log_path, "%s/ledger-%d.log", w->work, index);
        snprintf(ledger->node, sizeof ledger->node, "ledger-%d", index);
    }
}

static void world_free(world *w)
{
    for (int index = 0; index < w->ledger_count; index++)
        ledger_stop(w, index);
    if (getenv(HARNESS_KEEP_ENVIRONMENT) == NULL) {
        char command[HARNESS_PATH_SIZE_MAX + 16];
        snprintf(command, sizeof command, "rm -rf '%s'", w->work);
        if (system(command) != 0) fprintf(stderr, "could not remove %s\n", w->work);
    } else {
        fprintf(stderr, "kept %s\n", w->work);
    }
    free(w->acks);
    pthread_mutex_destroy(&w->lock);
}

/* Ledger 0 first (it makes the mint key, the stream and holds the lease),
 * then the others with a copy of its mint key. */
static void ledgers_start(world *w, natsConnection *connection)
{
    ledger_process *first = &w->ledgers[0];
    ledger_spawn(w, 0);
    char key[PATH_BYTES + 16];
    snprintf(key, sizeof key, "%s/mint.key", first->directory);
    int64_t deadline_ms = harness_now_ms() + READY_TIMEOUT_MS;
    while (active_ledger(w, connection) != 0)
        assert_true(harness_now_ms() < deadline_ms);
    for (int index = 1; index < w->ledger_count; index++) {
        assert_int_equal(mkdir(w->ledgers[index].directory, 0700), 0);
        char copy[PATH_BYTES + 16];
        snprintf(copy, sizeof copy, "%s/mint.key", w->ledgers[index].directory);
        copy_file(key, copy);
        ledger_spawn(w, index);
    }
}

/* Waits until a ledger other than victim acknowledges after since_ms;
 * returns how long after since_ms. */
static int64_t wait_takeover(world *w, int victim, int before, int64_t since_ms)
{
    int64_t takeover_ms = -1;
    while (takeover_ms < 0 && harness_now_ms() < since_ms + TAKEOVER_TIMEOUT_MS) {
        harness_sleep_ms(20);
        pthread_mutex_lock(&w->lock);
        for (int index = before; index < w->ack_count && takeover_ms < 0; index++)
            if (strcmp(w->acks[index].node, w->ledgers[victim].node) != 0 &&
                w->acks[index].at_ms > since_ms)
                takeover_ms = w->acks[index].at_ms - since_ms;
        pthread_mutex_unlock(&w->lock);
    }
    assert_true(takeover_ms >= 0);
    return takeover_ms;
}

/* The log of ledger index holds text. */
static bool log_has(const world *w, int index, const char *text)
{
    FILE *file = fopen(w->ledgers[index].log_path, "r");
    char line[1024];
    bool found = false;
    while (file != NULL && !found && fgets(line, sizeof line, file) != NULL)
        found = strstr(line, text) != NULL;
    if (file != NULL) fclose(file);
    return found;
}

/* The longest pause between two acknowledgements after since_ms. */
static int64_t longest_pause_ms(world *w, int64_t since_ms)
{
    int64_t previous_ms = since_ms, longest_ms = 0;
    pthread_mutex_lock(&w->lock);
    for (int index = 0; index < w->ack_count; index++) {
        if (w->acks[index].at_ms < since_ms) continue;
        if (w->acks[index].at_ms - previous_ms > longest_ms)
            longest_ms = w->acks[index].at_ms - previous_ms;
        previous_ms = w->acks[index].at_ms;
    }
    pthread_mutex_unlock(&w->lock);
    return longest_ms;
}

/* kill -9 of the nats-server leading the log's stream: writes stop until
 * the others elect a leader; then they go on, and the server comes back. */
static void server_kill(world *w, int64_t fault_ms)
{
    int leader = js_cluster_stream_leader(&cluster, "KC_LEDGER", TAKEOVER_TIMEOUT_MS);
    assert_true(leader >= 0);
    assert_int_equal(js_cluster_kill(&cluster, leader), HARNESS_OK);
    int64_t deadline_ms = harness_now_ms() + TAKEOVER_TIMEOUT_MS;
    for (;;) { /* acknowledgements again, well after the kill */
        harness_sleep_ms(100);
        pthread_mutex_lock(&w->lock);
        bool resumed = w->ack_count > 0 && w->acks[w->ack_count - 1].at_ms > fault_ms + 1000;
        pthread_mutex_unlock(&w->lock);
        if (resumed) break;
        assert_true(harness_now_ms() < deadline_ms);
    }
    printf("# kill -9 of %s, the server leading the log: acknowledgements paused for %lld ms\n",
           cluster.nodes[leader].name, (long long)longest_pause_ms(w, fault_ms));
    assert_int_equal(js_cluster_restart(&cluster, leader), HARNESS_OK);
}

/* The fault, and the wait for another ledger (or the log) to serve again.
 * SIGKILL: the active ledger (started again at the end); SIGSTOP: the
 * active ledger, resumed once another serves (it must find itself deposed,
 * its late writes refused by the stream, and follow as a standby);
 * FAULT_SERVER: the server leading the log's stream. */
static void inject(world *w, natsConnection *connection, int fault, int before, int64_t *fault_ms,
                   int *victim)
{
    if (fault == FAULT_SERVER) {
        *fault_ms = harness_now_ms();
        server_kill(w, *fault_ms);
        return;
    }
    *victim = active_ledger(w, connection);
    assert_true(*victim >= 0);
    *fault_ms = harness_now_ms(); /* the time counts from the signal */
    if (fault == FAULT_PARTITION) {
        /* The active ledger's server and the ledger itself stop: nats.c
         * learns the other servers from the cluster and would reconnect
         * through one of them, so only stopping both cuts the ledger off. */
        int server = *victim % JS_CLUSTER_SIZE;
        assert_int_equal(js_cluster_pause(&cluster, server), HARNESS_OK);
        assert_int_equal(kill(w->ledgers[*victim].pid, SIGSTOP), 0);
        printf("# take-over after SIGSTOP of the active ledger's server: %lld ms\n",
               (long long)wait_takeover(w, *victim, before, *fault_ms));
        harness_sleep_ms(PARTITION_EXTRA_MS);
        assert_int_equal(js_cluster_resume(&cluster, server), HARNESS_OK);
        assert_int_equal(kill(w->ledgers[*victim].pid, SIGCONT), 0);
        return;
    }
    if (fault == SIGKILL)
        ledger_kill(w, *victim);
    else
        assert_int_equal(kill(w->ledgers[*victim].pid, SIGSTOP), 0);
    printf("# take-over after %s of the active ledger: %lld ms\n",
           fault == SIGKILL ? "kill -9" : "SIGSTOP",
           (long long)wait_takeover(w, *victim, before, *fault_ms));
    if (fault == SIGSTOP) assert_int_equal(kill(w->ledgers[*victim].pid, SIGCONT), 0);
}

static void run_scenario(world *w, natsConnection *connection, int fault)
{
    ledgers_start(w, connection);
    mint_coins(w, connection);
    client clients[CLIENTS];
    pthread_t threads[CLIENTS];
    int64_t started_ms = harness_now_ms();
    for (int index = 0; index < CLIENTS; index++) {
        clients[index] = (client){.w = w, .index = index};
        assert_int_equal(pthread_create(&threads[index], NULL, client_main, &clients[index]), 0);
    }
    harness_sleep_ms(BEFORE_KILL_MS);
    pthread_mutex_lock(&w->lock);
    int before = w->ack_count;
    pthread_mutex_unlock(&w->lock);
    int64_t fault_ms = harness_now_ms();
    printf("# %d transfers acknowledged in %lld ms before the fault (%.0f/s, %d clients)\n", before,
           (long long)(fault_ms - started_ms), 1000.0 * before / (double)(fault_ms - started_ms),
           CLIENTS);
    int victim = -1;
    inject(w, connection, fault, before, &fault_ms, &victim);
    harness_sleep_ms(AFTER_TAKEOVER_MS);
    atomic_store(&w->stop, true);
    for (int index = 0; index < CLIENTS; index++)
        pthread_join(threads[index], NULL);
    printf("# %d transfers acknowledged, %d refused as collisions, %d undecided\n", w->ack_count,
           atomic_load(&w->refused), atomic_load(&w->undecided));
    assert_int_equal(atomic_load(&w->undecided), 0);
    assert_true(w->ack_count > before);
    if (fault == SIGKILL)
        ledger_spawn(w, victim); /* it comes back from its LMDB and catches up */
    else if (fault == SIGSTOP || fault == FAULT_PARTITION)
        assert_true(log_has(w, victim, "standing by at log entry")); /* it knows it was deposed */
    check_acknowledged(w, connection, fault_ms);
    check_audits(w, w->ledger_count, NULL, NULL);
    escrow_round(w, connection);
    check_audits(w, w->ledger_count, NULL, NULL);
}

/* One server; replicas "1" (two ledgers) or NULL (one ledger, storage local). */
static int one_server_setup(const char *replicas)
{
    world *w = &the_world;
    world_init(w, getenv("KC_KCOBRA"), replicas, replicas != NULL ? 2 : 1);
    if (harness_server_init(&single_server, nats_server_binary) != HARNESS_OK) return -1;
    char config[HARNESS_PATH_SIZE_MAX + 64];
    snprintf(config, sizeof config, "jetstream {\n  store_dir: \"%s/js\"\n}\n",
             single_server.directory_path);
    if (harness_server_start(&single_server, config) != HARNESS_OK) return -1;
    snprintf(w->client_urls, sizeof w->client_urls, "%s", single_server.url);
    for (int index = 0; index < w->ledger_count; index++)
        snprintf(w->ledgers[index].urls, sizeof w->ledgers[index].urls, "%s", single_server.url);
    return 0;
}

static int local_setup(void **state)
{
    (void)state;
    return one_server_setup(NULL);
}

static int fencing_setup(void **state)
{
    (void)state;
    int status = one_server_setup("1");
    the_world.ledger_count = 1;
    return status;
}

static int single_setup(void **state)
{
    (void)state;
    return one_server_setup("1");
}

static int single_teardown(void **state)
{
    (void)state;
    world_free(&the_world);
    harness_server_stop(&single_server);
    harness_server_cleanup(&single_server);
    return 0;
}

static int cluster_setup(void **state)
{
    (void)state;
    world *w = &the_world;
    world_init(w, getenv("KC_KCOBRA"), "3", 3);
    if (js_cluster_start(&cluster, nats_server_binary) != HARNESS_OK) return -1;
    snprintf(w->client_urls, sizeof w->client_urls, "%s", cluster.urls);
    for (int index = 0; index < w->ledger_count; index++)
        js_cluster_urls_from(&cluster, index, w->ledgers[index].urls,
                             sizeof w->ledgers[index].urls);
    return 0;
}

/* The cluster, each ledger given only its own server (nats.c still learns
 * the others from the cluster: the partition case stops the ledger too). */
static int partition_setup(void **state)
{
    if (cluster_setup(state) != 0) return -1;
    world *w = &the_world;
    for (int index = 0; index < w->ledger_count; index++)
        snprintf(w->ledgers[index].urls, sizeof w->ledgers[index].urls, "%s",
                 cluster.nodes[index % JS_CLUSTER_SIZE].server.url);
    return 0;
}

static int cluster_teardown(void **state)
{
    (void)state;
    world_free(&the_world);
    js_cluster_cleanup(&cluster);
    return 0;
}

static void test_scenario(int fault)
{
    world *w = &the_world;
    natsConnection *connection = connect_to(w->client_urls);
    run_scenario(w, connection, fault);
    natsConnection_Destroy(connection);
}

/* The same clients against one ledger with storage local: the baseline the
 * replicated figures are read against (printed, not asserted). */
static void test_local_baseline(void **state)
{
    (void)state;
    world *w = &the_world;
    natsConnection *connection = connect_to(w->client_urls);
    ledger_spawn(w, 0);
    json_t *reply = NULL;
    int64_t deadline_ms = harness_now_ms() + READY_TIMEOUT_MS;
    while (call_until_decided(connection, "kc.ledger.audit", "{}", &reply, NULL, 0) != 0)
        assert_true(harness_now_ms() < deadline_ms);
    json_decref(reply);
    mint_coins(w, connection);
    client clients[CLIENTS];
    pthread_t threads[CLIENTS];
    int64_t started_ms = harness_now_ms();
    for (int index = 0; index < CLIENTS; index++) {
        clients[index] = (client){.w = w, .index = index};
        assert_int_equal(pthread_create(&threads[index], NULL, client_main, &clients[index]), 0);
    }
    harness_sleep_ms(BEFORE_KILL_MS);
    atomic_store(&w->stop, true);
    for (int index = 0; index < CLIENTS; index++)
        pthread_join(threads[index], NULL);
    int64_t elapsed_ms = harness_now_ms() - started_ms;
    printf("# storage local: %d transfers acknowledged in %lld ms (%.0f/s, %d clients)\n",
           w->ack_count, (long long)elapsed_ms, 1000.0 * w->ack_count / (double)elapsed_ms,
           CLIENTS);
    assert_true(w->ack_count > 0);
    natsConnection_Destroy(connection);
}

/* A second writer on the log (this test, with the ledger's mint key): an
 * entry expecting the right last sequence lands; one expecting an older
 * sequence is refused (the fence). The active ledger's next publish is
 * refused in turn; it reads the other writer's entry, applies it, writes
 * its own after it, and the transfer is answered. */
static void test_fencing(void **state)
{
    (void)state;
    world *w = &the_world;
    natsConnection *connection = connect_to(w->client_urls);
    ledgers_start(w, connection);
    mint_coins(w, connection);
    jsCtx *js = NULL;
    assert_int_equal(natsConnection_JetStream(&js, connection, NULL), NATS_OK);
    jsStreamInfo *info = NULL;
    assert_int_equal(js_GetStreamInfo(&info, js, "KC_LEDGER", NULL, NULL), NATS_OK);
    uint64_t last = info->State.LastSeq;
    jsStreamInfo_Destroy(info);
    char path[4096], error[512];
    snprintf(path, sizeof path, "%s/mint.key", w->ledgers[0].directory);
    kci_wallet mint;
    assert_int_equal(kci_wallet_load(&mint, path, error, sizeof error), KC_OK);
    kci_ledger_log_writer writer;
    uint8_t id[KCI_LEDGER_ID_BYTES] = {0x42};
    kci_ledger_log_begin(&writer, id, 0, (int64_t)1765000000000, mint.public_key);
    assert_int_equal(kci_ledger_log_finish(&writer), KC_OK);
    jsPubOptions options;
    jsPubOptions_Init(&options);
    options.ExpectLastSeq = last;
    jsErrCode code = 0;
    assert_int_equal(js_Publish(NULL, js, "kc.ledger_log.KC_LEDGER", writer.bytes,
                                (int)writer.length, &options, &code),
                     NATS_OK);
    assert_int_not_equal(js_Publish(NULL, js, "kc.ledger_log.KC_LEDGER", writer.bytes,
                                    (int)writer.length, &options, &code),
                         NATS_OK);
    assert_int_equal(code, JSStreamWrongLastSequenceErr);
    kci_ledger_log_writer_free(&writer);
    /* The ledger still expects `last`: refused, it reads, applies, writes after. */
    unsigned seed = 1;
    int coin = 0, from = 0, to = 0;
    char *body = transfer_body(w, &seed, &coin, &from, &to, id);
    json_t *reply = NULL;
    assert_int_equal(call_until_decided(connection, "kc.ledger.transfer", body, &reply, NULL, 0),
                     0);
    assert_true(json_is_true(json_object_get(reply, "ok")));
    free(body);
    json_decref(reply);
    assert_true(log_has(w, 0, "another writer wrote first"));
    assert_int_equal(js_GetStreamInfo(&info, js, "KC_LEDGER", NULL, NULL), NATS_OK);
    assert_int_equal(info->State.LastSeq, last + 2); /* the other writer's, then the ledger's */
    jsStreamInfo_Destroy(info);
    jsCtx_Destroy(js);
    natsConnection_Destroy(connection);
}

/* After the kill: everything stopped (the ledgers, the server) and started
 * again from disk: the same log entry, the same state digest. */
static void test_single(void **state)
{
    (void)state;
    world *w = &the_world;
    natsConnection *connection = connect_to(w->client_urls);
    run_scenario(w, connection, SIGKILL);
    char before[65] = "", after[65] = "";
    int64_t sequence_before = 0, sequence_after = 0;
    check_audits(w, w->ledger_count, before, &sequence_before);
    for (int index = 0; index < w->ledger_count; index++)
        ledger_stop(w, index);
    assert_int_equal(harness_server_stop(&single_server), HARNESS_OK);
    char config[HARNESS_PATH_SIZE_MAX + 64];
    snprintf(config, sizeof config, "jetstream {\n  store_dir: \"%s/js\"\n}\n",
             single_server.directory_path);
    assert_int_equal(harness_server_start(&single_server, config), HARNESS_OK);
    for (int index = 0; index < w->ledger_count; index++)
        ledger_spawn(w, index);
    int64_t deadline_ms = harness_now_ms() + READY_TIMEOUT_MS;
    while (active_ledger(w, connection) < 0)
        assert_true(harness_now_ms() < deadline_ms);
    check_audits(w, w->ledger_count, after, &sequence_after);
    assert_int_equal(sequence_after, sequence_before);
    assert_string_equal(after, before);
    printf("# stopped and started again from disk: the same state at log entry %lld\n",
           (long long)sequence_after);
    natsConnection_Destroy(connection);
}

/* A mint with an "id", and its balance. */
static json_t *mint_with_id(natsConnection *connection, const char *id, const char *address)
{
    char body[256];
    snprintf(body, sizeof body,
             "{\"id\":\"%s\",\"grants\":[{\"to\":\"%s\",\"denominations\":[5,3]}]}", id, address);
    json_t *reply = NULL;
    assert_int_equal(call_until_decided(connection, "kc.ledger.mint", body, &reply, NULL, 0), 0);
    assert_non_null(reply);
    return reply;
}

static long long balance_of(natsConnection *connection, const char *address)
{
    char body[128];
    snprintf(body, sizeof body, "{\"wallet\":\"%s\"}", address);
    json_t *reply = NULL;
    assert_int_equal(call_until_decided(connection, "kc.ledger.balance", body, &reply, NULL, 0), 0);
    long long balance = json_integer_value(json_object_get(reply, "balance"));
    json_decref(reply);
    return balance;
}

/* A mint retried with its id after the active ledger died (its answer
 * lost, say) is not minted twice: the successor answers it replayed, with
 * the same issue and coins, and the balance counts it once. */
static void test_mint_retried(void **state)
{
    (void)state;
    world *w = &the_world;
    natsConnection *connection = connect_to(w->client_urls);
    ledgers_start(w, connection);
    char address[KCI_LEDGER_ADDRESS_TEXT_BYTES + 1];
    kci_ledger_hex(address, w->public_keys[0], KCI_LEDGER_KEY_BYTES);
    const char *id = "0190f5a2-7c1e-7b3a-9f00-4d2c6e8a1b10";
    json_t *first = mint_with_id(connection, id, address);
    assert_null(json_object_get(first, "replayed"));
    assert_int_equal(balance_of(connection, address), 8);
    ledger_kill(w, 0);
    int64_t deadline_ms = harness_now_ms() + READY_TIMEOUT_MS;
    while (active_ledger(w, connection) != 1)
        assert_true(harness_now_ms() < deadline_ms);
    json_t *again = mint_with_id(connection, id, address);
    assert_true(json_is_true(json_object_get(again, "replayed")));
    assert_true(json_equal(json_object_get(first, "issued"), json_object_get(again, "issued")));
    assert_int_equal(balance_of(connection, address), 8);
    json_t *other = mint_with_id(connection, "0190f5a2-7c1e-7b3a-9f00-4d2c6e8a1b11", address);
    assert_null(json_object_get(other, "replayed"));
    assert_int_equal(balance_of(connection, address), 16);
    printf("# a mint retried with its id after a take-over: replayed, minted once\n");
    json_decref(first);
    json_decref(again);
    json_decref(other);
    ledger_spawn(w, 0); /* it catches up and agrees */
    check_audits(w, w->ledger_count, NULL, NULL);
    natsConnection_Destroy(connection);
}

/* SIGSTOP of the active ledger for longer than its lease, then SIGCONT. */
static void test_single_paused(void **state)
{
    (void)state;
    test_scenario(SIGSTOP);
}

static void test_cluster(void **state)
{
    (void)state;
    test_scenario(SIGKILL);
}

/* A partition (issue 14, proof 2): the active ledger's only server is
 * stopped for longer than the lease, then resumed. Another ledger takes
 * over; the deposed one writes nothing (the stream's expected sequence
 * refuses it), stands by, and every replica agrees at the end. */
static void test_cluster_partition(void **state)
{
    (void)state;
    test_scenario(FAULT_PARTITION);
}

/* kill -9 of the nats-server leading the log's stream (own meson test:
 * `server` as the third argument). */
static void test_cluster_server_killed(void **state)
{
    (void)state;
    test_scenario(FAULT_SERVER);
}

int main(int argc, char **argv)
{
    if (argc != 3 && argc != 4) {
        fprintf(stderr, "usage: %s NATS_SERVER KCOBRA [server]\n", argv[0]);
        return SKIP_EXIT_CODE;
    }
    nats_server_binary = argv[1];
    setenv("KC_KCOBRA", argv[2], 1);
    signal(SIGPIPE, SIG_IGN);
    if (sodium_init() < 0) return 1;
    setvbuf(stdout, NULL, _IOLBF, 0);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_local_baseline, local_setup, single_teardown),
        cmocka_unit_test_setup_teardown(test_fencing, fencing_setup, single_teardown),
        cmocka_unit_test_setup_teardown(test_single, single_setup, single_teardown),
        cmocka_unit_test_setup_teardown(test_single_paused, single_setup, single_teardown),
        cmocka_unit_test_setup_teardown(test_mint_retried, single_setup, single_teardown),
        cmocka_unit_test_setup_teardown(test_cluster, cluster_setup, cluster_teardown),
    };
    const struct CMUnitTest server_tests[] = {
        cmocka_unit_test_setup_teardown(test_cluster_server_killed, cluster_setup,
                                        cluster_teardown),
        cmocka_unit_test_setup_teardown(test_cluster_partition, partition_setup, cluster_teardown),
    };
    if (argc == 4 && strcmp(argv[3], "server") == 0)
        return cmocka_run_group_tests(server_tests, NULL, NULL);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
