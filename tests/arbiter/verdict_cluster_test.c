/* verdict_cluster_test.c - the arbiters' verdicts on an R3 JetStream stream
 * of a three-server nats-server cluster (tests/integration/js_cluster.h;
 * argv[1] nats-server, argv[2] kcobra).
 *
 * Arbiters "a" and "b" run in this process, connected first to servers 0
 * and 1, handed votes (verdict_js_world.h); "d" is a `kcobra arbiter serve`
 * process on server 2, voted on through kc.arbiter.vote and asked with
 * kc.arbiter.status. In order:
 *  - a verdict taken by a is taken by b and d from the stream; the same
 *    verdict reached by a and b is stored once;
 *  - a stopped and started again in this process, d killed with kill -9
 *    and started again, while b takes two more verdicts: both come back with
 *    b's quarantined set and epochs;
 *  - "c", started later on server 2, converges to the same set;
 *  - kill -9 of the server leading the stream: a verdict is still stored
 *    (once the other two elect a leader, 4-9 s in 2.9: the writer and the
 *    test's votes retry) and reaches every arbiter, those whose follower
 *    was on the dead server too; the server comes back, and one more
 *    verdict reaches everyone;
 *  - the stream holds each verdict once, its hash chain intact.
 * Every wait is bounded and generous; the times are printed, not asserted. */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "../integration/js_cluster.h"
#include "common/clock.h"
#include "verdict_js_world.h"

enum {
    WAIT_MS = 30000,
    FAULT_WAIT_MS = 60000, /* an election (4-9 s), reconnects, retried writes */
    STATUS_WAIT_MS = 2000,
    SERVE_READY_MS = 30000,
};

static const char STREAM[] = "KC_VERDICTS";
static const char *const node_names[VJ_NODES] = {"n0", "n1", "n2", "n3"};

static const char *server_binary;
static const char *kcobra_binary;
static js_cluster cluster;

static void start(vj_arbiter *a, const char *id, int server)
{
    char urls[JS_CLUSTER_URLS_BYTES_MAX], error[512];
    js_cluster_urls_from(&cluster, server, urls, sizeof urls);
    kc_err err = vj_start(a, id, urls, NULL, STREAM, 3, error, sizeof error);
    if (err != KC_OK) print_error("arbiter %s: %s\n", id, error);
    assert_int_equal(err, KC_OK);
}

/* Every running server has its two routes: js_cluster_start waits for a
 * meta leader, which two servers can elect while the third route is still
 * coming up (seen once under load: no PubAck for 30 s after the stream's
 * creation). */
static bool routes_up(int timeout_ms)
{
    static char response[64 * 1024];
    int64_t deadline_ms = kci_monotonic_ms() + timeout_ms;
    for (;;) {
        int up = 0, running = 0;
        json_int_t routes[JS_CLUSTER_SIZE] = {0};
        for (int i = 0; i < JS_CLUSTER_SIZE; i++) {
            if (!js_cluster_running(&cluster, i)) continue;
            running++;
            const char *body = NULL;
            if (harness_http_get(cluster.nodes[i].server.monitor_port, "/routez", response,
                                 sizeof response, 2000) == HARNESS_OK)
                body = strstr(response, "\r\n\r\n");
            json_t *routez = body != NULL ? json_loads(body + 4, 0, NULL) : NULL;
            routes[i] =
                routez != NULL ? json_integer_value(json_object_get(routez, "num_routes")) : -1;
            json_decref(routez);
        }
        for (int i = 0; i < JS_CLUSTER_SIZE; i++)
            up += js_cluster_running(&cluster, i) && routes[i] >= running - 1;
        if (up == running) return true;
        if (kci_monotonic_ms() >= deadline_ms) return false;
        usleep(100 * 1000);
    }
}

/* ---- d: kcobra arbiter serve ------------------------------------------------------- */

static pid_t serve_d(void)
{
    char urls[JS_CLUSTER_URLS_BYTES_MAX];
    js_cluster_urls_from(&cluster, 2, urls, sizeof urls);
    pid_t pid = fork();
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        execl(kcobra_binary, kcobra_binary, "--server", urls, "arbiter", "serve", "--id", "d",
              "--arbiters", "4", "--peer", "a", "--peer", "b", "--peer", "c", "--tick", "1h",
              "--verdict-storage", "jetstream", "--verdict-stream", STREAM, "--replicas", "3",
              (char *)NULL);
        _exit(127);
    }
    return pid;
}

/* d's quarantined set from its kc.arbiter.status answer; -1 if it did not answer. */
static int status_d(natsConnection *connection)
{
    char inbox[64];
    snprintf(inbox, sizeof inbox, "_INBOX.verdict_cluster_%d", (int)getpid());
    natsSubscription *answers = NULL;
    if (natsConnection_SubscribeSync(&answers, connection, inbox) != NATS_OK) return -1;
    natsConnection_PublishRequestString(connection, "kc.arbiter.status", inbox, "");
    int set = -1;
    int64_t deadline_ms = kci_monotonic_ms() + STATUS_WAIT_MS;
    natsMsg *message = NULL;
    while (set < 0 && kci_monotonic_ms() < deadline_ms &&
           natsSubscription_NextMsg(&message, answers, 100) != NATS_ERR) {
        if (message == NULL) continue;
        json_t *root =
            json_loadb(natsMsg_GetData(message), (size_t)natsMsg_GetDataLength(message), 0, NULL);
        const char *from = json_string_value(json_object_get(root, "arbiter"));
        if (from != NULL && strcmp(from, "d") == 0) {
            set = 0;
            size_t index;
            json_t *node;
            json_array_foreach(json_object_get(root, "nodes"), index, node)
            {
                const char *status = json_string_value(json_object_get(node, "status"));
                const char *name = json_string_value(json_object_get(node, "name"));
                for (int i = 0; i < VJ_NODES && status != NULL && name != NULL; i++)
                    if (strcmp(name, node_names[i]) == 0 && strcmp(status, "quarantined") == 0)
                        set |= 1 << i;
            }
        }
        json_decref(root);
        natsMsg_Destroy(message);
        message = NULL;
    }
    natsSubscription_Destroy(answers);
    return set;
}

static bool wait_d(natsConnection *connection, int want, int timeout_ms)
{
    int64_t deadline_ms = kci_monotonic_ms() + timeout_ms;
    int set = -1;
    while ((set = status_d(connection)) != want && kci_monotonic_ms() < deadline_ms)
        usleep(100 * 1000);
    if (set != want) print_error("arbiter d: quarantined set %d, expected %d\n", set, want);
    return set == want;
}

/* ---- the scenario ------------------------------------------------------------------- */

static void check_stream(const char *url, size_t expected)
{
    kci_verdict_chain chain;
    json_t *ids = NULL;
    assert_true(vj_read_stream(url, STREAM, &chain, &ids));
    char *text = json_dumps(ids, JSON_COMPACT);
    print_message("stream %s: %s, %llu break(s)\n", STREAM, text, (unsigned long long)chain.broken);
    free(text);
    assert_int_equal(json_array_size(ids), expected);
    assert_int_equal(chain.broken, 0);
    json_decref(ids);
}

static void kill_stream_leader(vj_arbiter *a, vj_arbiter *b, vj_arbiter *c, natsConnection *watch)
{
    int leader = js_cluster_stream_leader(&cluster, STREAM, WAIT_MS);
    assert_true(leader >= 0);
    int64_t killed_ms = kci_monotonic_ms();
    assert_int_equal(js_cluster_kill(&cluster, leader), HARNESS_OK);
    print_message("killed %s, the leader of %s\n", cluster.nodes[leader].name, STREAM);
    /* n3 by whichever in-process arbiter is not on the dead server first. */
    vj_arbiter *writer = leader == 0 ? b : a;
    assert_true(vj_vote_until(writer, 3, "quarantine", 14u, FAULT_WAIT_MS));
    int64_t stored_ms = kci_monotonic_ms();
    assert_true(vj_wait_set(a, 14u, FAULT_WAIT_MS));
    assert_true(vj_wait_set(b, 14u, FAULT_WAIT_MS));
    assert_true(vj_wait_set(c, 14u, FAULT_WAIT_MS));
    assert_true(wait_d(watch, 14, FAULT_WAIT_MS));
    print_message("a verdict taken %lld ms after the kill, at every arbiter %lld ms after it\n",
                  (long long)(stored_ms - killed_ms), (long long)(kci_monotonic_ms() - killed_ms));
    assert_int_equal(js_cluster_restart(&cluster, leader), HARNESS_OK);
    assert_true(routes_up(WAIT_MS));
    assert_true(vj_vote_until(a, 1, "clear", 12u, FAULT_WAIT_MS));
    assert_true(vj_wait_set(b, 12u, FAULT_WAIT_MS));
    assert_true(vj_wait_set(c, 12u, FAULT_WAIT_MS));
    assert_true(wait_d(watch, 12, FAULT_WAIT_MS));
}

static void test_cluster(void **state)
{
    (void)state;
    vj_arbiter a, b, c;
    assert_true(routes_up(WAIT_MS));
    start(&a, "a", 0);
    assert_true(js_cluster_stream_leader(&cluster, STREAM, WAIT_MS) >= 0);
    start(&b, "b", 1);
    pid_t d = serve_d();
    natsConnection *watch = NULL;
    assert_int_equal(natsConnection_ConnectTo(&watch, cluster.urls), NATS_OK);
    assert_true(wait_d(watch, 0, SERVE_READY_MS));
    /* One verdict everywhere; the same verdict reached twice, stored once. */
    assert_true(vj_vote_until(&a, 0, "quarantine", 1u, WAIT_MS));
    assert_true(vj_wait_set(&b, 1u, WAIT_MS));
    vj_votes(&a, 1, "quarantine");
    vj_votes(&b, 1, "quarantine");
    assert_true(vj_wait_set(&a, 3u, WAIT_MS));
    assert_true(vj_wait_set(&b, 3u, WAIT_MS));
    assert_true(wait_d(watch, 3, WAIT_MS));
    /* a stopped, d killed; b goes on; both come back to b's set. */
    vj_stop(&a);
    kill(d, SIGKILL);
    waitpid(d, NULL, 0);
    vj_votes(&b, 0, "clear");
    vj_votes(&b, 2, "quarantine");
    assert_true(vj_wait_set(&b, 6u, WAIT_MS));
    start(&a, "a", 0);
    assert_int_equal(vj_set(&a), 6u);
    for (int node = 0; node < VJ_NODES; node++)
        assert_int_equal(vj_epoch(&a, node), vj_epoch(&b, node));
    d = serve_d();
    assert_true(wait_d(watch, 6, SERVE_READY_MS));
    /* A latecomer. */
    start(&c, "c", 2);
    assert_int_equal(vj_set(&c), 6u);
    kill_stream_leader(&a, &b, &c, watch);
    check_stream(cluster.urls, 6); /* n0:1 n1:1 n0:2 n2:1 n3:1 n1:2 */
    kill(d, SIGTERM);
    waitpid(d, NULL, 0);
    natsConnection_Destroy(watch);
    vj_stop(&a), vj_stop(&b), vj_stop(&c);
}

static int setup(void **state)
{
    (void)state;
    return js_cluster_start(&cluster, server_binary) == HARNESS_OK ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    js_cluster_cleanup(&cluster);
    nats_Close();
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: %s <nats-server binary> <kcobra binary>\n", argv[0]);
        return 77;
    }
    server_binary = argv[1];
    kcobra_binary = argv[2];
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_cluster)};
    return cmocka_run_group_tests(tests, setup, teardown);
}
