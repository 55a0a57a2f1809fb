/* shared_history_test.c - `kcobra arbiter verdicts` answers from the
 * shared verdict history, whichever arbiter answers (issue 15, finding 9).
 * argv[1] is kcobrad (any other server: skipped, exit 77), KCOBRA the
 * kcobra binary.
 *
 * docs/arbiter.md's four-arbiter setup: kcobrad hosts arbiter-0 (with a
 * data directory, so a verdicts file), and arbiter-1..3 run as `kcobra
 * arbiter serve` without one, each listing the other three as peers. A
 * slow service is quarantined; then `kcobra arbiter verdicts`, asked
 * repeatedly, must list the verdict every time. It used to print "no
 * verdicts yet" whenever one of arbiter-1..3 answered first (they have no
 * file, and the answering arbiter read only its own).
 *
 * Also: a verdict published on kc.arbiter.verdict by a client that is not
 * one of the arbiters (an id outside the peers) does not join the
 * history.
 *
 * The verdicts file is tamper-evident (src/arbiter/verdict_log.h): after a
 * quarantine and a reinstatement, `kcobra arbiter verdicts --verify
 * --data-dir D --id ID` says the file is intact (exit 0); with a byte of
 * its first line changed it finds the broken hash chain, and with its last
 * line cut off the signed head shows the truncation (exit 1 both). The
 * file had no chain and no head before, and --verify read only a stream. */
#include <jansson.h>
#include <nats/nats.h>
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
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "fixture.h"
#include "kingcobra/kingcobra.h"

enum {
    EXIT_SKIP = 77,
    PEERS = 3,
    SLOW_MS = 120,
    REQUEST_TIMEOUT_MS = 3000,
    DETECT_REQUESTS_MAX = 400,
    VERDICT_WAIT_MS = 15000,
    READY_WAIT_MS = 30000,
    ASKS = 8,
    OUTPUT_BYTES_MAX = 256 * 1024,
    STOP_WAIT_MS = 5000,
};

static const char CONFIG[] =
    "arbiter {\n  enabled: true\n  id: \"arbiter-0\"\n  arbiters: 4\n  tick: \"100ms\"\n"
    "  slow: \"50ms\"\n  target: \"50ms\"\n  qos_samples: 10\n  quarantine: \"1h\"\n"
    "  peers: [\"arbiter-1\", \"arbiter-2\", \"arbiter-3\"]\n}\n";

static const char *const ids[PEERS + 1] = {"arbiter-0", "arbiter-1", "arbiter-2", "arbiter-3"};

static void sleep_ms(int duration_ms)
{
    struct timespec pause = {duration_ms / 1000, (duration_ms % 1000) * 1000000L};
    nanosleep(&pause, NULL);
}

static void handler(const kc_request *request, kc_response *response, void *closure)
{
    (void)request;
    if (closure != NULL) sleep_ms(SLOW_MS);
    kc_response_set_payload(response, "ok", 2);
}

/* `kcobra arbiter serve` as arbiter-<index>, its output in the server's
 * directory. */
static pid_t serve_arbiter(fixture *f, int index)
{
    char log_path[512];
    snprintf(log_path, sizeof log_path, "%s/%s.log", f->server.directory_path, ids[index]);
    const char *kcobra = getenv("KCOBRA");
    const char *argv[32] = {kcobra,          "--server", f->server.url,  "arbiter",  "serve",
                            "--id",          ids[index], "--arbiters",   "4",        "--tick",
                            "100ms",         "--slow",   "50ms",         "--target", "50ms",
                            "--qos-samples", "10",       "--quarantine", "1h"};
    int argc = 19;
    for (int i = 0; i <= PEERS; i++) {
        if (i == index) continue;
        argv[argc++] = "--peer";
        argv[argc++] = ids[i];
    }
    pid_t pid = fork();
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        FILE *log = freopen(log_path, "w", stderr);
        if (log != NULL) dup2(fileno(stderr), 1);
        execv(kcobra, (char *const *)argv);
        _exit(127);
    }
    assert_true(pid > 0);
    return pid;
}

static void stop(pid_t pid)
{
    kill(pid, SIGTERM);
    for (int waited_ms = 0; waited_ms < STOP_WAIT_MS; waited_ms += 50) {
        if (waitpid(pid, NULL, WNOHANG) == pid) return;
        sleep_ms(50);
    }
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
}

/* How many distinct arbiters answer one kc.arbiter.status asked of all. */
static int arbiters_answering(natsConnection *connection)
{
    natsSubscription *answers = NULL;
    char inbox[64];
    snprintf(inbox, sizeof inbox, "_INBOX.shared_history_%d", (int)getpid());
    assert_int_equal(natsConnection_SubscribeSync(&answers, connection, inbox), NATS_OK);
    assert_int_equal(
        natsConnection_PublishRequestString(connection, "kc.arbiter.status", inbox, ""), NATS_OK);
    bool seen[PEERS + 1] = {false};
    int count = 0;
    natsMsg *message = NULL;
    while (count <= PEERS && natsSubscription_NextMsg(&message, answers, 1000) == NATS_OK) {
        json_t *root =
            json_loadb(natsMsg_GetData(message), (size_t)natsMsg_GetDataLength(message), 0, NULL);
        const char *from = json_string_value(json_object_get(root, "arbiter"));
        for (int i = 0; from != NULL && i <= PEERS; i++)
            if (strcmp(from, ids[i]) == 0 && !seen[i]) seen[i] = true, count++;
        json_decref(root);
        natsMsg_Destroy(message);
    }
    natsSubscription_Destroy(answers);
    return count;
}

static kc_client *open_client(fixture *f, const char *name)
{
    kc_client_options options;
    kc_client_options_init(&options);
    options.servers = f->server.url;
    options.node = name;
    options.name = name;
    kc_client *client = NULL;
    assert_int_equal(kc_client_open(&client, &options), KC_OK);
    return client;
}

static bool quarantined(natsSubscription *verdicts, int wait_ms)
{
    natsMsg *message = NULL;
    while (natsSubscription_NextMsg(&message, verdicts, wait_ms) == NATS_OK) {
        bool match = strstr(natsMsg_GetData(message), "\"node\":\"bad\"") != NULL &&
                     strstr(natsMsg_GetData(message), "\"action\":\"quarantine\"") != NULL;
        natsMsg_Destroy(message);
        if (match) return true;
    }
    return false;
}

/* "good" and "bad" (slow) serve type t; "client" asks until the arbiters
 * quarantine bad (the verdict seen on verdicts). */
typedef struct cloud {
    kc_client *good_client, *bad_client, *client;
    kc_service *good, *bad;
} cloud;

static void quarantine_bad(fixture *f, natsSubscription *verdicts, cloud *c)
{
    c->good_client = open_client(f, "good"), c->bad_client = open_client(f, "bad");
    assert_int_equal(kc_service_start(&c->good, c->good_client, "t", handler, NULL, NULL), KC_OK);
    assert_int_equal(kc_service_start(&c->bad, c->bad_client, "t", handler, c->bad_client, NULL),
                     KC_OK);
    c->client = open_client(f, "client");
    bool done = false;
    for (int i = 0; i < DETECT_REQUESTS_MAX && !done; i++) {
        kc_reply *reply = NULL;
        kc_client_request(&reply, c->client, "t", "x", 1, REQUEST_TIMEOUT_MS);
        kc_reply_destroy(reply);
        done = quarantined(verdicts, 0);
    }
    if (!done) done = quarantined(verdicts, VERDICT_WAIT_MS);
    assert_true(done);
}

static void cloud_close(cloud *c)
{
    kc_client_close(c->client, 2000);
    kc_service_stop(c->bad);
    kc_service_stop(c->good);
    kc_client_close(c->bad_client, 2000);
    kc_client_close(c->good_client, 2000);
}

/* Runs kcobra with arguments; stdout into output; its exit status. */
static int run_kcobra(const char *url, const char *const *arguments, char *output, size_t size)
{
    return harness_run(getenv("KCOBRA"), url, arguments, output, size);
}

static void test_verdicts_from_any_arbiter(void **state)
{
    if (getenv("KCOBRA") == NULL) skip();
    fixture *f = fixture_of(state);
    fixture_start(f, CONFIG);
    pid_t pids[PEERS];
    for (int i = 0; i < PEERS; i++)
        pids[i] = serve_arbiter(f, i + 1);
    natsConnection *watcher = fixture_connect(f);
    int64_t deadline_ms = harness_now_ms() + READY_WAIT_MS;
    while (arbiters_answering(watcher) < PEERS + 1 && harness_now_ms() < deadline_ms)
        sleep_ms(200);
    assert_int_equal(arbiters_answering(watcher), PEERS + 1);
    natsSubscription *verdicts = fixture_subscribe_flushed(f, watcher, "kc.arbiter.verdict");
    cloud c;
    quarantine_bad(f, verdicts, &c);
    sleep_ms(1000);                       /* ten ticks: every arbiter has reached or heard it */
    static char output[OUTPUT_BYTES_MAX]; /* static: nothing leaks when an assertion jumps out */
    const char *const ask[] = {"arbiter", "verdicts", NULL};
    for (int i = 0; i < ASKS; i++) {
        int status = run_kcobra(f->server.url, ask, output, OUTPUT_BYTES_MAX);
        if (status != 0 || strstr(output, "bad") == NULL)
            fail_msg("ask %d: exit %d: %s", i, status, output);
        assert_non_null(strstr(output, "quarantine"));
        assert_non_null(strstr(output, "bad"));
    }
    /* A verdict from someone who is not an arbiter is not listed. */
    const char forged[] = "{\"id\":\"good:1\",\"action\":\"quarantine\",\"node\":\"good\","
                          "\"epoch\":1,\"arbiter\":\"mallory\",\"votes\":[\"mallory\"]}";
    assert_int_equal(natsConnection_PublishString(watcher, "kc.arbiter.verdict", forged), NATS_OK);
    fixture_flush(watcher);
    sleep_ms(300);
    const char *const ask_json[] = {"arbiter", "verdicts", "--json", NULL};
    for (int i = 0; i < ASKS; i++) {
        assert_int_equal(run_kcobra(f->server.url, ask_json, output, OUTPUT_BYTES_MAX), 0);
        assert_non_null(strstr(output, "\"bad\""));
        assert_null(strstr(output, "mallory"));
    }
    cloud_close(&c);
    for (int i = 0; i < PEERS; i++)
        stop(pids[i]);
}

static const char SINGLE_CONFIG[] =
    "arbiter {\n  enabled: true\n  id: \"arb\"\n  tick: \"100ms\"\n  slow: \"50ms\"\n"
    "  target: \"50ms\"\n  qos_samples: 10\n  quarantine: \"1h\"\n}\n";

static size_t file_read(const char *path, char *bytes, size_t size)
{
    FILE *file = fopen(path, "r");
    assert_non_null(file);
    size_t length = fread(bytes, 1, size - 1, file);
    fclose(file);
    bytes[length] = '\0';
    return length;
}

static void file_write(const char *path, const char *bytes, size_t length)
{
    FILE *file = fopen(path, "w");
    assert_non_null(file);
    assert_int_equal(fwrite(bytes, 1, length, file), length);
    assert_int_equal(fclose(file), 0);
}

static void test_verdicts_file_tamper_evident(void **state)
{
    if (getenv("KCOBRA") == NULL) skip();
    fixture *f = fixture_of(state);
    fixture_start(f, SINGLE_CONFIG);
    natsConnection *watcher = fixture_connect(f);
    natsSubscription *verdicts = fixture_subscribe_flushed(f, watcher, "kc.arbiter.verdict");
    cloud c;
    quarantine_bad(f, verdicts, &c);
    natsMsg *reply = NULL;
    assert_int_equal(natsConnection_RequestString(&reply, watcher, "kc.arbiter.reinstate",
                                                  "{\"node\":\"bad\"}", REQUEST_TIMEOUT_MS),
                     NATS_OK);
    natsMsg_Destroy(reply);
    bool reinstated = false;
    natsMsg *message = NULL;
    while (!reinstated &&
           natsSubscription_NextMsg(&message, verdicts, VERDICT_WAIT_MS) == NATS_OK) {
        reinstated = strstr(natsMsg_GetData(message), "\"action\":\"reinstate\"") != NULL;
        natsMsg_Destroy(message);
    }
    assert_true(reinstated);
    char data_dir[512], path[600];
    snprintf(data_dir, sizeof data_dir, "%s/data", f->server.directory_path);
    snprintf(path, sizeof path, "%s/arbiter-arb.verdicts.jsonl", data_dir);
    static char output[OUTPUT_BYTES_MAX], original[OUTPUT_BYTES_MAX], changed[OUTPUT_BYTES_MAX];
    const char *const verify[] = {"arbiter", "verdicts", "--verify", "--data-dir",
                                  data_dir,  "--id",     "arb",      NULL};
    assert_int_equal(run_kcobra(f->server.url, verify, output, sizeof output), 0);
    assert_non_null(strstr(output, "2 verdict(s), hash chain intact"));
    size_t length = file_read(path, original, sizeof original);
    /* a byte of the first line changed: the second line's prev no longer holds */
    memcpy(changed, original, length + 1);
    char *node = strstr(changed, "\"node\":\"bad\"");
    assert_non_null(node);
    node[9] = 'x';
    file_write(path, changed, length);
    assert_int_equal(run_kcobra(f->server.url, verify, output, sizeof output), 1);
    assert_non_null(strstr(output, "hash chain breaks at line 2"));
    /* the last line cut off: the chain holds, the signed head does not */
    char *second = strchr(original, '\n');
    assert_non_null(second);
    file_write(path, original, (size_t)(second + 1 - original));
    assert_int_equal(run_kcobra(f->server.url, verify, output, sizeof output), 1);
    assert_non_null(strstr(output, "truncated"));
    file_write(path, original, length);
    assert_int_equal(run_kcobra(f->server.url, verify, output, sizeof output), 0);
    cloud_close(&c);
}

int main(int argc, char **argv)
{
    if (!fixture_parse_arguments(argc, argv)) return 2;
    if (strstr(fixture_server_binary, "kcobrad") == NULL) {
        fprintf(stderr, "shared_history_test: kcobrad hosts arbiter-0; skipping\n");
        return EXIT_SKIP;
    }
    const struct CMUnitTest tests[] = {
        FIXTURE_CASE(test_verdicts_from_any_arbiter),
        FIXTURE_CASE(test_verdicts_file_tamper_evident),
    };
    return cmocka_run_group_tests(tests, fixture_group_setup, fixture_group_teardown);
}
