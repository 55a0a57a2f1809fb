/* verdict_js_test.c - the arbiters' verdicts on a JetStream stream
 * (src/arbiter/verdict_js.h) on one nats-server with JetStream (argv[1]),
 * R1: the fast case; verdict_cluster_test.c runs R3 on three servers.
 *
 *  - the hash chain alone (verdict_chain.h): intact, a wrong prev, a gap,
 *    and a stream whose head was removed;
 *  - two arbiters: a verdict taken by one is taken by the other from the
 *    stream, without any vote of its own; the same quorum verdict reached
 *    by both is stored once (Nats-Msg-Id); the stream's chain is intact;
 *    announced on kc.arbiter.verdict and handed to the broker
 *    (kc.sys.quarantine.set) only once in the stream;
 *  - one arbiter stopped while the other takes two verdicts, started again:
 *    the same quarantined set and epochs; a third one started later (its
 *    own connection to the server: verdict_servers) converges too;
 *  - a message slipped into the stream breaks the chain, which `kcobra
 *    arbiter verdicts --verify` reports (exit 1; 0 before), and every
 *    arbiter still reads past it;
 *  - a kcobrad hosting an arbiter on the stream (verdict_servers) hands
 *    its broker the stream's quarantined set, after its restart too;
 *  - local stays the default (kci_arbiter_settings). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "../integration/harness.h"
#include "arbiter/config.h"
#include "arbiter/verdict_chain.h"
#include "verdict_js_world.h"

enum {
    WAIT_MS = 20000,
    OUTPUT_BYTES_MAX = 64 * 1024,
};

static const char STREAM[] = "KC_VERDICTS_R1";
static const char KCOBRAD_STREAM[] = "KC_VERDICTS_K";

typedef struct world {
    harness_server server;
    natsConnection *watcher;
    natsSubscription *announced; /* kc.arbiter.verdict */
    natsSubscription *enforced;  /* kc.sys.quarantine.set */
} world;

static const char *server_binary;
static const char *kcobrad_binary;

/* ---- the chain alone -------------------------------------------------------------- */

static void link_message(char *out, size_t size, const char *prev, int number)
{
    snprintf(out, size, "{\"id\":\"n%d:1\",\"prev\":\"%s\"}", number, prev);
}

static void test_chain(void **state)
{
    (void)state;
    char lines[4][256], hash[KCI_VERDICT_HASH_HEX_BYTES + 1];
    kci_verdict_chain chain = {0};
    link_message(lines[0], sizeof lines[0], "", 0);
    kci_verdict_hash(lines[0], strlen(lines[0]), hash);
    link_message(lines[1], sizeof lines[1], hash, 1);
    kci_verdict_hash(lines[1], strlen(lines[1]), hash);
    link_message(lines[2], sizeof lines[2], hash, 2);
    for (int i = 0; i < 3; i++)
        assert_int_equal(kci_verdict_chain_add(&chain, (uint64_t)i + 1, lines[i], strlen(lines[i])),
                         KCI_VERDICT_LINK_OK);
    assert_int_equal(chain.broken, 0);
    /* A wrong prev (the hash of an older one), then a gap. */
    link_message(lines[3], sizeof lines[3], hash, 3);
    assert_int_equal(kci_verdict_chain_add(&chain, 4, lines[3], strlen(lines[3])),
                     KCI_VERDICT_LINK_BROKEN);
    kci_verdict_hash(lines[3], strlen(lines[3]), hash);
    link_message(lines[0], sizeof lines[0], hash, 5);
    assert_int_equal(kci_verdict_chain_add(&chain, 6, lines[0], strlen(lines[0])),
                     KCI_VERDICT_LINK_BROKEN);
    assert_int_equal(chain.broken, 2);
    assert_int_equal(chain.first_broken_seq, 4);
    /* The first message not at 1: an anchor; a first at 1 must have prev "". */
    kci_verdict_chain other = {0};
    assert_int_equal(kci_verdict_chain_add(&other, 7, lines[1], strlen(lines[1])),
                     KCI_VERDICT_LINK_ANCHOR);
    kci_verdict_chain third = {0};
    assert_int_equal(kci_verdict_chain_add(&third, 1, lines[1], strlen(lines[1])),
                     KCI_VERDICT_LINK_BROKEN);
    assert_int_equal(kci_verdict_chain_add(&third, 2, "not json", 8), KCI_VERDICT_LINK_BROKEN);
}

static void test_local_is_default(void **state)
{
    (void)state;
    kci_arbiter_settings settings;
    kci_arbiter_settings_init(&settings);
    kci_arbiter_config config;
    char *probe_texts[KCI_ARBITER_PROBES_MAX];
    char error[256];
    assert_int_equal(
        kci_arbiter_settings_runtime(&settings, &config, probe_texts, error, sizeof error), KC_OK);
    assert_false(config.verdicts_jetstream);
    assert_string_equal(config.verdict_stream, "KC_VERDICTS");
    assert_int_equal(config.verdict_replicas, 3);
    kci_arbiter_probe_texts_free(probe_texts);
    assert_int_equal(kci_config_string_set(&settings.verdict_storage, "jetstreem"), KC_OK);
    assert_int_equal(kci_arbiter_settings_check(&settings, error, sizeof error), KC_ERR_CONFIG);
    assert_non_null(strstr(error, "local or jetstream"));
    kci_arbiter_settings_free(&settings);
}

/* ---- two, then three arbiters ------------------------------------------------------ */

static size_t pending_messages(natsSubscription *subscription)
{
    int count = 0;
    natsSubscription_GetPending(subscription, &count, NULL);
    return count > 0 ? (size_t)count : 0;
}

static void drain_messages(natsSubscription *subscription)
{
    natsMsg *message = NULL;
    while (natsSubscription_NextMsg(&message, subscription, 1) == NATS_OK)
        natsMsg_Destroy(message);
}

static size_t stream_count(world *w, kci_verdict_chain *chain)
{
    json_t *ids = NULL;
    assert_true(vj_read_stream(w->server.url, STREAM, chain, &ids));
    size_t count = json_array_size(ids);
    json_decref(ids);
    return count;
}

static void start(world *w, vj_arbiter *a, const char *id, const char *verdict_servers)
{
    char error[512];
    kc_err err = vj_start(a, id, w->server.url, verdict_servers, STREAM, 1, error, sizeof error);
    if (err != KC_OK) print_error("arbiter %s: %s\n", id, error);
    assert_int_equal(err, KC_OK);
}

static void test_two_arbiters(void **state)
{
    world *w = *state;
    vj_arbiter a, b, c;
    start(w, &a, "a", NULL);
    start(w, &b, "b", NULL);
    assert_int_equal(vj_set(&a), 0);
    drain_messages(w->announced);
    /* Taken by a; b takes it from the stream. */
    vj_votes(&a, 0, "quarantine");
    assert_true(vj_wait_set(&a, 1u, WAIT_MS));
    assert_true(vj_wait_set(&b, 1u, WAIT_MS));
    /* The same quorum verdict reached by both: stored once. */
    vj_votes(&a, 1, "quarantine");
    vj_votes(&b, 1, "quarantine");
    assert_true(vj_wait_set(&a, 3u, WAIT_MS));
    assert_true(vj_wait_set(&b, 3u, WAIT_MS));
    kci_verdict_chain chain;
    assert_int_equal(stream_count(w, &chain), 2);
    assert_int_equal(chain.broken, 0);
    assert_int_equal(vj_epoch(&b, 1), 1);
    /* Each arbiter announced each verdict once (readers de-duplicate by id). */
    assert_int_equal(natsConnection_Flush(w->watcher), NATS_OK);
    assert_int_equal(pending_messages(w->announced), 4);
    /* a stopped; b reinstates n0 and quarantines n2; a again: the same set. */
    vj_stop(&a);
    vj_votes(&b, 0, "clear");
    vj_votes(&b, 2, "quarantine");
    assert_true(vj_wait_set(&b, 6u, WAIT_MS));
    start(w, &a, "a", NULL);
    assert_int_equal(vj_set(&a), 6u); /* read to the end before the start returns */
    for (int node = 0; node < VJ_NODES; node++)
        assert_int_equal(vj_epoch(&a, node), vj_epoch(&b, node));
    pthread_mutex_lock(&a.arbiter->lock);
    assert_int_equal(kci_arbiter_node(a.arbiter, "n0", false)->status, NODE_PROBATION);
    assert_int_equal(kci_arbiter_node(a.arbiter, "n1", false)->offences, 1);
    pthread_mutex_unlock(&a.arbiter->lock);
    /* A third, later, on its own connection (verdict_servers). */
    start(w, &c, "c", w->server.url);
    assert_int_equal(vj_set(&c), 6u);
    /* A new verdict reaches all three. */
    vj_votes(&c, 3, "quarantine");
    assert_true(vj_wait_set(&a, 14u, WAIT_MS));
    assert_true(vj_wait_set(&b, 14u, WAIT_MS));
    assert_true(vj_wait_set(&c, 14u, WAIT_MS));
    assert_int_equal(stream_count(w, &chain), 5);
    assert_int_equal(chain.broken, 0);
    vj_stop(&a), vj_stop(&b), vj_stop(&c);
}

/* Runs KCOBRA arbiter verdicts --verify; its exit status, its output in output. */
static int verify(world *w, char *output)
{
    const char *kcobra = getenv("KCOBRA");
    int pipe_fds[2];
    if (kcobra == NULL || pipe(pipe_fds) != 0) return -1;
    pid_t pid = fork();
    if (pid == 0) {
        dup2(pipe_fds[1], 1);
        close(pipe_fds[0]);
        execl(kcobra, kcobra, "--server", w->server.url, "arbiter", "verdicts", "--verify",
              "--verdict-stream", STREAM, (char *)NULL);
        _exit(127);
    }
    close(pipe_fds[1]);
    size_t used = 0;
    ssize_t got;
    while (used + 1 < OUTPUT_BYTES_MAX &&
           (got = read(pipe_fds[0], output + used, OUTPUT_BYTES_MAX - used - 1)) > 0)
        used += (size_t)got;
    output[used] = '\0';
    close(pipe_fds[0]);
    int status = 0;
    waitpid(pid, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static void test_tampered(void **state)
{
    world *w = *state;
    if (getenv("KCOBRA") == NULL) skip();
    static char output[OUTPUT_BYTES_MAX];
    kci_verdict_chain chain;
    size_t before = stream_count(w, &chain);
    assert_true(before > 0);
    assert_int_equal(verify(w, output), 0);
    assert_non_null(strstr(output, "hash chain intact"));
    /* Slipped in by someone who may publish on the subject. */
    char subject[96];
    snprintf(subject, sizeof subject, "kc.verdicts.%s", STREAM);
    jsCtx *js = NULL;
    assert_int_equal(natsConnection_JetStream(&js, w->watcher, NULL), NATS_OK);
    const char forged[] = "{\"id\":\"n2:9\",\"action\":\"reinstate\",\"node\":\"n2\",\"epoch\":9,"
                          "\"prev\":\"0000\"}";
    assert_int_equal(js_Publish(NULL, js, subject, forged, (int)strlen(forged), NULL, NULL),
                     NATS_OK);
    jsCtx_Destroy(js);
    assert_int_equal(verify(w, output), 1);
    assert_non_null(strstr(output, "BROKEN"));
    /* An arbiter reads past it (and logs the break); the chain goes on from there. */
    vj_arbiter a;
    start(w, &a, "a", NULL);
    vj_votes(&a, 0, "quarantine");
    assert_true(vj_wait_set(&a, 1u | 2u | 8u, WAIT_MS)); /* n2 reinstated by the forgery */
    assert_int_equal(stream_count(w, &chain), before + 2);
    assert_int_equal(chain.broken, 1);
    vj_stop(&a);
}

/* The next kc.sys.quarantine.set whose nodes are exactly want (a comma-joined
 * list), within WAIT_MS. */
static bool quarantine_set_seen(natsSubscription *sets, const char *want)
{
    int64_t deadline_ms = harness_now_ms() + WAIT_MS;
    bool seen = false;
    natsMsg *message = NULL;
    while (!seen && harness_now_ms() < deadline_ms) {
        if (natsSubscription_NextMsg(&message, sets, 100) != NATS_OK) continue;
        json_t *root =
            json_loadb(natsMsg_GetData(message), (size_t)natsMsg_GetDataLength(message), 0, NULL);
        char nodes[256] = "";
        size_t index, used = 0;
        json_t *node;
        json_array_foreach(json_object_get(root, "nodes"), index, node)
        {
            used += (size_t)snprintf(nodes + used, sizeof nodes - used, "%s%s", index ? "," : "",
                                     json_string_value(node));
        }
        seen = strcmp(nodes, want) == 0;
        json_decref(root);
        natsMsg_Destroy(message);
    }
    return seen;
}

/* A kcobrad hosting an arbiter on the stream (verdict_servers: this server)
 * hands its broker the stream's quarantined set, also after its restart. */
static void test_kcobrad_enforces(void **state)
{
    world *w = *state;
    if (kcobrad_binary == NULL) skip();
    harness_server kcobrad;
    assert_int_equal(harness_server_init(&kcobrad, kcobrad_binary), HARNESS_OK);
    /* Without verdict_servers it cannot work (kcobrad has no JetStream): it says so, exits 1. */
    int exit_status = 0;
    (void)harness_server_start(&kcobrad, /* it may listen before it exits */
                               "arbiter {\n  enabled: true\n  verdict_storage: \"jetstream\"\n}\n");
    assert_int_equal(harness_server_wait_exit(&kcobrad, WAIT_MS, &exit_status), HARNESS_OK);
    assert_int_equal(exit_status, 1);
    char config[1024];
    snprintf(config, sizeof config,
             "arbiter {\n  enabled: true\n  id: \"k\"\n  arbiters: 4\n"
             "  peers: [\"a\", \"b\", \"c\"]\n  tick: \"1h\"\n  verdict_storage: \"jetstream\"\n"
             "  verdict_stream: \"%s\"\n  replicas: 1\n  verdict_servers: \"%s\"\n}\n",
             KCOBRAD_STREAM, w->server.url);
    assert_int_equal(harness_server_start(&kcobrad, config), HARNESS_OK);
    natsConnection *on_kcobrad = NULL;
    natsSubscription *sets = NULL;
    assert_int_equal(natsConnection_ConnectTo(&on_kcobrad, kcobrad.url), NATS_OK);
    assert_int_equal(natsConnection_SubscribeSync(&sets, on_kcobrad, "kc.sys.quarantine.set"),
                     NATS_OK);
    assert_int_equal(natsConnection_Flush(on_kcobrad), NATS_OK);
    vj_arbiter a;
    char error[512];
    assert_int_equal(vj_start(&a, "a", w->server.url, NULL, KCOBRAD_STREAM, 1, error, sizeof error),
                     KC_OK);
    vj_votes(&a, 0, "quarantine");
    assert_true(vj_wait_set(&a, 1u, WAIT_MS));
    assert_true(quarantine_set_seen(sets, "n0"));
    /* Restarted, it reads n0's and n2's quarantines back from the stream
     * (n2's written while it was down): the next set it hands over, once
     * the watcher is back, holds them and the new n3. */
    assert_int_equal(harness_server_stop(&kcobrad), HARNESS_OK);
    vj_votes(&a, 2, "quarantine");
    assert_true(vj_wait_set(&a, 5u, WAIT_MS));
    assert_int_equal(harness_server_start(&kcobrad, config), HARNESS_OK);
    int64_t deadline_ms = harness_now_ms() + WAIT_MS;
    while (natsConnection_Flush(on_kcobrad) != NATS_OK && harness_now_ms() < deadline_ms)
        harness_sleep_ms(50);
    vj_votes(&a, 3, "quarantine");
    assert_true(vj_wait_set(&a, 13u, WAIT_MS));
    assert_true(quarantine_set_seen(sets, "n0,n2,n3"));
    vj_stop(&a);
    natsSubscription_Destroy(sets);
    natsConnection_Destroy(on_kcobrad);
    harness_server_cleanup(&kcobrad);
}

static int setup(void **state)
{
    world *w = calloc(1, sizeof *w);
    if (w == NULL || harness_server_init(&w->server, server_binary) != HARNESS_OK) return -1;
    char config[HARNESS_PATH_SIZE_MAX + 64];
    snprintf(config, sizeof config, "jetstream {\n  store_dir: \"%s/js\"\n}\n",
             w->server.directory_path);
    if (harness_server_start(&w->server, config) != HARNESS_OK) return -1;
    if (natsConnection_ConnectTo(&w->watcher, w->server.url) != NATS_OK) return -1;
    if (natsConnection_SubscribeSync(&w->announced, w->watcher, "kc.arbiter.verdict") != NATS_OK ||
        natsConnection_SubscribeSync(&w->enforced, w->watcher, "kc.sys.quarantine.set") != NATS_OK)
        return -1;
    *state = w;
    return 0;
}

static int teardown(void **state)
{
    world *w = *state;
    natsSubscription_Destroy(w->announced);
    natsSubscription_Destroy(w->enforced);
    natsConnection_Destroy(w->watcher);
    harness_server_cleanup(&w->server);
    free(w);
    nats_Close();
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s <nats-server binary> [kcobrad binary]\n", argv[0]);
        return 77;
    }
    server_binary = argv[1];
    kcobrad_binary = argc > 2 ? argv[2] : NULL;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_chain), cmocka_unit_test(test_local_is_default),
        cmocka_unit_test(test_two_arbiters), cmocka_unit_test(test_tampered),
        cmocka_unit_test(test_kcobrad_enforces)};
    return cmocka_run_group_tests(tests, setup, teardown);
}
