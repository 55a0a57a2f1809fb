/* verdict_fault_test.c - the arbiter's verdict file under I/O faults, in
 * SQLite's style (tests/common/fault.h), on a NATS server the test starts
 * (argv[1]).
 *
 * Scenario: start an arbiter (one of one: its own vote is a quorum; with
 * enforce) on a new data directory, and hand it its own votes, as its
 * subscription to kc.arbiter.vote would (kci_arbiter_on_vote): quarantine
 * n0, n1 and n2, then clear n0 (reinstate on probation); a vote that did
 * not make a verdict is handed again once, as the next tick's vote would
 * be. Then stop. It runs once to count the calls through the I/O seam
 * (open, the directory's sync, a write and an fsync per verdict), then
 * again failing call N, for every N (about a dozen calls: the full sweep
 * takes a few seconds), with each error the call can return (EIO, ENOSPC,
 * EINTR, a short write).
 *
 * After each run: a start that failed said why, and a failed append is in
 * the log; no descriptor leaked (memory: ASan); EINTR and short writes
 * changed nothing (every verdict at the first vote); every start that
 * succeeded ends with its four verdicts taken. Then the writes never synced
 * are dropped (fault.c's crash simulation), and: every line of the file is
 * a whole verdict; the verdicts announced on kc.arbiter.verdict are the
 * ones in the file; the last set handed to the broker
 * (kc.sys.quarantine.set) is the file's quarantined set; the next start
 * (real calls) replays the file to that set and appends a new verdict on a
 * line of its own.
 *
 * The second sweep runs the same from a file that holds one verdict and a
 * torn last line (a power cut in the middle of an append): the start cuts
 * it off (ftruncate and fsync, swept too); a start that failed leaves it,
 * and the next start cuts it. Before the fixes in verdict.c, the first
 * sweep found verdicts announced and enforced although their append had
 * failed (gone after the crash), and the second a verdict appended to the
 * torn line (unreadable at the next replay). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <errno.h>
#include <jansson.h>
#include <nats/nats.h>
#include <unistd.h>

#include "../common/fault.h"
#include "../integration/harness.h"
#include "arbiter/arbiter_internal.h"
#include "common/log.h"

enum {
    NODES = 4,
    STEPS = 4,
    VOTE_ATTEMPTS_MAX = 2, /* the vote, and the next tick's */
    STOP_DRAIN_MS = 2000,
    VERDICTS_MAX = 16,
    ID_TEXT_BYTES = 64,
    FILE_BYTES_MAX = 64 * 1024,
    LINE_BYTES_MAX = 16 * 1024,
};

/* n3 is only in the file a torn start begins with. */
static const char *const node_names[NODES] = {"n0", "n1", "n2", "n3"};

static const struct {
    int node;
    const char *vote;
} steps[STEPS] = {{0, "quarantine"}, {1, "quarantine"}, {2, "quarantine"}, {0, "clear"}};

/* Verdicts seen: their ids, and the quarantined nodes (bit i: node_names[i]). */
typedef struct verdicts {
    char ids[VERDICTS_MAX][ID_TEXT_BYTES];
    int count;
    unsigned quarantined;
} verdicts;

typedef struct world {
    harness_server server;
    kc_client *client; /* the arbiter's; shared by the runs */
    natsConnection *watcher;
    natsSubscription *announced; /* kc.arbiter.verdict */
    natsSubscription *enforced;  /* kc.sys.quarantine.set */
    char data_dir[HARNESS_PATH_SIZE_MAX + 16];
    char file_path[HARNESS_PATH_SIZE_MAX + 64];
    char log_path[HARNESS_PATH_SIZE_MAX + 16];
    bool torn_start; /* the runs begin with a file whose last line is torn */
    int seeded;      /* whole verdicts in the file a run begins with */
} world;

static const char *server_binary;

static int node_index(const char *name)
{
    for (int index = 0; name != NULL && index < NODES; index++)
        if (strcmp(name, node_names[index]) == 0) return index;
    return -1;
}

static kc_err start_arbiter(world *w, kci_arbiter **arbiter, char *error, size_t error_size)
{
    kci_arbiter_config config;
    kci_arbiter_config_default(&config);
    config.id = "arb";
    config.arbiter_count = 1;
    config.data_dir = w->data_dir;
    config.enforce = true;
    error[0] = '\0';
    kc_err err = kci_arbiter_start(arbiter, w->client, &config, error, error_size);
    /* The nodes are known from the fabric in real life; here, made known. */
    for (int index = 0; err == KC_OK && index < NODES; index++) {
        pthread_mutex_lock(&(*arbiter)->lock);
        assert_non_null(kci_arbiter_node(*arbiter, node_names[index], true));
        pthread_mutex_unlock(&(*arbiter)->lock);
    }
    return err;
}

static uint64_t verdict_count(kci_arbiter *arbiter)
{
    pthread_mutex_lock(&arbiter->lock);
    uint64_t count = arbiter->verdict_count;
    pthread_mutex_unlock(&arbiter->lock);
    return count;
}

/* The arbiter's own vote about node, at the node's epoch, as delivered on
 * kc.arbiter.vote; true when it made a verdict. */
static bool vote(kci_arbiter *arbiter, const char *node, const char *kind)
{
    pthread_mutex_lock(&arbiter->lock);
    uint32_t epoch = kci_arbiter_node(arbiter, node, false)->epoch;
    pthread_mutex_unlock(&arbiter->lock);
    char body[256];
    int length = snprintf(body, sizeof body,
                          "{\"arbiter\":\"arb\",\"node\":\"%s\",\"vote\":\"%s\",\"epoch\":%u}",
                          node, kind, epoch);
    natsMsg *message = NULL;
    assert_int_equal(natsMsg_Create(&message, "kc.arbiter.vote", NULL, body, length), NATS_OK);
    /* Signed with its key, as its own votes are (vote_sign.h). */
    char key[KCI_VOTE_KEY_TEXT_BYTES], signature[KCI_VOTE_SIGNATURE_TEXT_BYTES];
    kci_wallet_address(key, &arbiter->vote_key);
    kci_vote_sign(signature, body, (size_t)length, arbiter->vote_key.secret_key);
    assert_int_equal(natsMsgHeader_Set(message, KCI_VOTE_KEY_HEADER, key), NATS_OK);
    assert_int_equal(natsMsgHeader_Set(message, KCI_VOTE_SIGNATURE_HEADER, signature), NATS_OK);
    uint64_t before = verdict_count(arbiter);
    kci_arbiter_on_vote(NULL, NULL, message, arbiter); /* destroys message */
    return verdict_count(arbiter) == before + 1;
}

/* What the arbiter published, now in the watcher's subscriptions. */
static void collect_announced(world *w, kci_arbiter *arbiter, verdicts *out, unsigned *enforced)
{
    assert_int_equal(natsConnection_Flush(arbiter->connection), NATS_OK);
    assert_int_equal(natsConnection_Flush(w->watcher), NATS_OK); /* after them */
    natsMsg *message = NULL;
    while (natsSubscription_NextMsg(&message, w->announced, 1) == NATS_OK) {
        json_t *root =
            json_loadb(natsMsg_GetData(message), (size_t)natsMsg_GetDataLength(message), 0, NULL);
        assert_true(out->count < VERDICTS_MAX);
        snprintf(out->ids[out->count++], ID_TEXT_BYTES, "%s",
                 json_string_value(json_object_get(root, "id")));
        json_decref(root);
        natsMsg_Destroy(message);
    }
    while (natsSubscription_NextMsg(&message, w->enforced, 1) == NATS_OK) {
        json_t *root =
            json_loadb(natsMsg_GetData(message), (size_t)natsMsg_GetDataLength(message), 0, NULL);
        json_t *nodes = json_object_get(root, "nodes");
        *enforced = 0;
        for (size_t index = 0; index < json_array_size(nodes); index++) {
            int number = node_index(json_string_value(json_array_get(nodes, index)));
            if (number >= 0) *enforced |= 1u << number;
        }
        json_decref(root);
        natsMsg_Destroy(message);
    }
}

/* The file's verdicts; every line must be a whole verdict, but for a torn
 * last one when torn_allowed. */
static void read_file(const world *w, verdicts *out, bool torn_allowed)
{
    memset(out, 0, sizeof *out);
    FILE *file = fopen(w->file_path, "r");
    static char line[LINE_BYTES_MAX];
    while (file != NULL && fgets(line, sizeof line, file) != NULL) {
        if (torn_allowed && strchr(line, '\n') == NULL && feof(file)) break;
        assert_non_null(strchr(line, '\n'));
        json_t *root = json_loads(line, 0, NULL);
        if (root == NULL) print_error("torn verdict line: %s\n", line);
        assert_non_null(root);
        const char *action = json_string_value(json_object_get(root, "action"));
        int number = node_index(json_string_value(json_object_get(root, "node")));
        assert_true(number >= 0 && action != NULL && out->count < VERDICTS_MAX);
        if (strcmp(action, "quarantine") == 0)
            out->quarantined |= 1u << number;
        else
            out->quarantined &= ~(1u << number);
        snprintf(out->ids[out->count++], ID_TEXT_BYTES, "%s",
                 json_string_value(json_object_get(root, "id")));
        json_decref(root);
    }
    if (file != NULL) fclose(file);
}

static unsigned quarantined_set(kci_arbiter *arbiter)
{
    unsigned set = 0;
    pthread_mutex_lock(&arbiter->lock);
    for (int index = 0; index < NODES; index++)
        if (kci_arbiter_node(arbiter, node_names[index], false)->status == NODE_QUARANTINED)
            set |= 1u << index;
    pthread_mutex_unlock(&arbiter->lock);
    return set;
}

/* The next start replays the file to its quarantined set, and appends. */
static void check_next_start(world *w, const verdicts *durable)
{
    char error[512];
    kci_arbiter *arbiter = NULL;
    kc_err err = start_arbiter(w, &arbiter, error, sizeof error);
    if (err != KC_OK) print_error("next start: %s\n", error);
    assert_int_equal(err, KC_OK);
    assert_int_equal(quarantined_set(arbiter), durable->quarantined);
    bool n0_quarantined = (durable->quarantined & 1u) != 0;
    assert_true(vote(arbiter, "n0", n0_quarantined ? "clear" : "quarantine"));
    verdicts announced = {0};
    unsigned enforced = 0;
    collect_announced(w, arbiter, &announced, &enforced);
    assert_int_equal(announced.count, 1);
    assert_int_equal(enforced, durable->quarantined ^ 1u);
    kci_arbiter_stop(arbiter, STOP_DRAIN_MS);
    verdicts after;
    read_file(w, &after, false);
    assert_int_equal(after.count, durable->count + 1);
    assert_int_equal(after.quarantined, durable->quarantined ^ 1u);
}

static bool log_says(const world *w, const char *text)
{
    static char log[FILE_BYTES_MAX + 1];
    FILE *file = fopen(w->log_path, "r");
    size_t length = file != NULL ? fread(log, 1, FILE_BYTES_MAX, file) : 0;
    if (file != NULL) fclose(file);
    log[length] = '\0';
    return strstr(log, text) != NULL;
}

/* The votes of the scenario; how many verdicts were taken, and how many
 * votes were handed again. */
static int run_steps(kci_arbiter *arbiter, int *again)
{
    int taken = 0;
    for (int step = 0; step < STEPS; step++) {
        const char *node = node_names[steps[step].node];
        bool made = false;
        for (int attempt = 0; !made && attempt < VOTE_ATTEMPTS_MAX; attempt++) {
            made = vote(arbiter, node, steps[step].vote);
            *again += !made;
        }
        taken += made;
    }
    return taken;
}

/* The file a run begins with: none, or n3's quarantine and a torn line (a
 * power cut in the middle of an append: a page written, the next not). */
static void seed_file(world *w)
{
    unlink(w->file_path);
    w->seeded = 0;
    if (!w->torn_start) return;
    FILE *file = fopen(w->file_path, "w");
    assert_non_null(file);
    fputs("{\"id\":\"n3:1\",\"action\":\"quarantine\",\"node\":\"n3\",\"epoch\":1}\n", file);
    fputs("{\"id\":\"n2:1\",\"action\":\"quarantine\",\"node\":\"n2\",\"ep", file);
    assert_int_equal(fclose(file), 0);
    w->seeded = 1;
}

static void run_arbiter(void *context, uint64_t call_number, int error)
{
    world *w = context;
    seed_file(w);
    assert_int_equal(truncate(w->log_path, 0), 0);
    int descriptors = fault_open_descriptors();
    fault_install();
    if (call_number > 0) fault_arm(call_number, error);
    char message[512];
    kci_arbiter *arbiter = NULL;
    kc_err started = start_arbiter(w, &arbiter, message, sizeof message);
    int taken = 0, again = 0;
    verdicts announced = {0};
    unsigned enforced = 0;
    if (started == KC_OK) {
        taken = run_steps(arbiter, &again);
        collect_announced(w, arbiter, &announced, &enforced);
        kci_arbiter_stop(arbiter, STOP_DRAIN_MS);
    }
    fault_remove();
    assert_int_equal(fault_open_descriptors(), descriptors);
    fault_call kind = FAULT_CALL_KINDS;
    int fired_error = 0;
    bool fired = fault_fired(&kind, &fired_error);
    bool harmless = fired_error == EINTR || fired_error == FAULT_SHORT_WRITE;
    if (started != KC_OK) assert_true(message[0] != '\0');
    if (started == KC_OK) assert_int_equal(taken, STEPS); /* the next vote retried */
    if (fired && harmless) assert_int_equal(again, 0);
    if (again > 0) assert_true(log_says(w, "cannot append verdict"));
    /* A directory's close changes nothing; nor does a failed write of the
     * signed head (verdict_log.h), which comes after the verdict is durable
     * and is written again at the next append. */
    if (fired && !harmless && kind != FAULT_CLOSE)
        assert_true(started != KC_OK || again > 0 || log_says(w, "cannot write the signed head"));
    fault_crash();
    verdicts durable;
    read_file(w, &durable, started != KC_OK); /* a start cuts a torn line off */
    /* Announced exactly what is durable: nothing before its sync, and a
     * failed append was cut off, not left to be replayed. */
    assert_int_equal(announced.count, durable.count - w->seeded);
    for (int index = 0; index < announced.count; index++)
        assert_string_equal(announced.ids[index], durable.ids[w->seeded + index]);
    if (started == KC_OK) assert_int_equal(enforced, durable.quarantined);
    check_next_start(w, &durable);
}

static void test_verdicts_file(void **state)
{
    world *w = *state;
    assert_int_equal(kci_log_open_file(w->log_path), 0); /* the expected errors */
    fault_sweep_stats stats;
    fault_sweep(run_arbiter, w, 1, &stats);
    assert_int_equal(kci_log_open_file("/dev/stderr"), 0);
    fault_sweep_print("arbiter verdicts", &stats);
    assert_true(stats.calls_counted >= 2 * STEPS);
    assert_true(stats.fired > 0);
}

/* The same, beginning with a torn last line: the start cuts it off (a
 * write of its own, swept too) and the verdicts go on lines of their own. */
static void test_verdicts_file_torn(void **state)
{
    world *w = *state;
    w->torn_start = true;
    assert_int_equal(kci_log_open_file(w->log_path), 0);
    fault_sweep_stats stats;
    fault_sweep(run_arbiter, w, 1, &stats);
    assert_int_equal(kci_log_open_file("/dev/stderr"), 0);
    w->torn_start = false;
    fault_sweep_print("arbiter verdicts, torn start", &stats);
    assert_true(stats.calls_counted >= 2 * STEPS + 2);
    assert_true(stats.fired > 0);
}

static int setup(void **state)
{
    world *w = calloc(1, sizeof *w);
    if (w == NULL || harness_server_init(&w->server, server_binary) != HARNESS_OK) return -1;
    if (harness_server_start(&w->server, NULL) != HARNESS_OK) return -1;
    kc_client_options options;
    kc_client_options_init(&options);
    options.servers = w->server.url;
    options.node = "arb";
    if (kc_client_open(&w->client, &options) != KC_OK) return -1;
    if (natsConnection_ConnectTo(&w->watcher, w->server.url) != NATS_OK) return -1;
    if (natsConnection_SubscribeSync(&w->announced, w->watcher, "kc.arbiter.verdict") != NATS_OK ||
        natsConnection_SubscribeSync(&w->enforced, w->watcher, "kc.sys.quarantine.set") != NATS_OK)
        return -1;
    snprintf(w->data_dir, sizeof w->data_dir, "%s/arbiter", w->server.directory_path);
    snprintf(w->file_path, sizeof w->file_path, "%s/arbiter-arb.verdicts.jsonl", w->data_dir);
    snprintf(w->log_path, sizeof w->log_path, "%s/test.log", w->server.directory_path);
    *state = w;
    return 0;
}

static int teardown(void **state)
{
    world *w = *state;
    natsSubscription_Destroy(w->announced);
    natsSubscription_Destroy(w->enforced);
    natsConnection_Destroy(w->watcher);
    kc_client_close(w->client, STOP_DRAIN_MS);
    harness_server_cleanup(&w->server);
    free(w);
    nats_Close();
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s <nats-server binary>\n", argv[0]);
        return 77;
    }
    server_binary = argv[1];
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_verdicts_file),
                                       cmocka_unit_test(test_verdicts_file_torn)};
    return cmocka_run_group_tests(tests, setup, teardown);
}
