/*
 * Durable requests wait for a service instead of dying (docs/queue.md,
 * "Waiting for a service"), against kcobrad (argv[1] is kcobrad: the
 * persister runs inside it) and against nats-server (the persister runs as
 * `kcobra queue serve`, argv[2]).
 *
 *   absent    200 submits of a type nobody serves, with a backoff that
 *             killed them all within a second before: after 3 s none is
 *             dead and none logged as dead; a service that then appears
 *             answers them all
 *   prompt    with a 60 s redelivery timeout, a service that appears after
 *             the submits answers them within 10 s, not after the timeout
 *   restart   the same across kill -9 and a restart of the persister: the
 *             service appears after the restart, all answered within 10 s
 *   requeue   100 requests die at a service that never answers (their
 *             deaths are summarised: a few log lines, not 100); one is
 *             requeued by id on the running persister, the persister is
 *             killed (-9), the rest are requeued by type on the stopped
 *             queue (`kcobra queue requeue --dir`); verify passes, dump
 *             shows the requeue markers, and after a restart a service
 *             answers all 100
 */
#include <jansson.h>
#include <nats/nats.h>
#include <signal.h>
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

#include "harness.h"

enum {
    REQUEST_MS = 2000,
    READY_TIMEOUT_MS = 30000,
    PROMPT_MS = 10000, /* far below the 60 s redelivery timeout of LONG */
    DEATH_TIMEOUT_MS = 30000,
    ABSENT_COUNT = 200,
    PROMPT_COUNT = 100,
    DOOMED_COUNT = 100,
    ABSENT_WAIT_MS = 3000, /* 5 times what 3 attempts at 100-200 ms took to kill */
    DEAD_LINES_MAX = 10,   /* 100 deaths in about a second: one line a second */
    OUTPUT_BYTES_MAX = 1 << 20,
    ARGUMENTS_MAX = 24,
};

/* Three attempts of 100, 200 and 200 ms: dead within a second before. */
static const char *const SHORT[] = {"100ms", "200ms", "3"};
/* A first wait of a minute: anything answered in seconds was not redelivered. */
static const char *const LONG[] = {"60s", "60s", "3"};

static const char *server_binary;
static const char *kcobra_binary;
static bool persister_in_server; /* kcobrad */

typedef struct world {
    harness_server server;
    const char *const *timing; /* SHORT or LONG */
    pid_t persister_pid;       /* `kcobra queue serve`, with nats-server */
    char queue_dir[HARNESS_PATH_SIZE_MAX + 32];
    char persister_log[HARNESS_PATH_SIZE_MAX + 32];
    natsConnection *client;
    natsSubscription *service;
} world;

static world the_world;

/* ---- the persister ------------------------------------------------------------------ */

static void spawn_serve(world *w)
{
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        if (freopen(w->persister_log, "a", stderr) == NULL) _exit(127);
        execl(kcobra_binary, kcobra_binary, "queue", "serve", "--server", w->server.url, "--dir",
              w->queue_dir, "--redelivery-timeout", w->timing[0], "--backoff-max", w->timing[1],
              "--attempts", w->timing[2], (char *)NULL);
        _exit(127);
    }
    w->persister_pid = pid;
}

static void wait_ready(world *w)
{
    int64_t deadline_ms = harness_now_ms() + READY_TIMEOUT_MS;
    for (;;) {
        natsMsg *reply = NULL;
        bool ready = natsConnection_RequestString(&reply, w->client, "kc.sys.queue.stats", "",
                                                  500) == NATS_OK &&
                     !natsMsg_IsNoResponders(reply);
        natsMsg_Destroy(reply);
        if (ready) return;
        assert_true(harness_now_ms() < deadline_ms);
        harness_sleep_ms(100);
    }
}

static void persister_start(world *w)
{
    if (persister_in_server) {
        char config[1024];
        snprintf(config, sizeof config,
                 "persister {\n  redelivery_timeout: \"%s\"\n  redelivery_backoff_max: \"%s\"\n"
                 "  max_attempts: %s\n}\n",
                 w->timing[0], w->timing[1], w->timing[2]);
        assert_int_equal(harness_server_start(&w->server, config), HARNESS_OK);
    } else {
        spawn_serve(w);
    }
}

/* kill -9, and reaped. */
static void persister_kill(world *w)
{
    if (persister_in_server) {
        assert_int_equal(harness_server_signal(&w->server, SIGKILL), HARNESS_OK);
        int status = 0;
        assert_int_equal(harness_server_wait_exit(&w->server, 5000, &status), HARNESS_OK);
        return;
    }
    kill(w->persister_pid, SIGKILL);
    waitpid(w->persister_pid, NULL, 0);
    w->persister_pid = 0;
}

/* ---- the client and the services --------------------------------------------------- */

static natsConnection *connect_client(const world *w)
{
    natsOptions *options = NULL;
    natsConnection *connection = NULL;
    assert_int_equal(natsOptions_Create(&options), NATS_OK);
    natsOptions_SetURL(options, w->server.url);
    natsOptions_SetMaxReconnect(options, -1);
    natsOptions_SetReconnectWait(options, 50);
    assert_int_equal(natsConnection_Connect(&connection, options), NATS_OK);
    natsOptions_Destroy(options);
    return connection;
}

static void on_echo(natsConnection *connection, natsSubscription *subscription, natsMsg *message,
                    void *closure)
{
    (void)subscription, (void)closure;
    if (natsMsg_GetReply(message) != NULL)
        natsConnection_Publish(connection, natsMsg_GetReply(message), "ok", 2);
    natsMsg_Destroy(message);
}

/* A service of type: echo answers; silent takes every request and never
 * answers. */
static void service_start(world *w, const char *type, bool silent)
{
    char subject[128];
    snprintf(subject, sizeof subject, "kc.req.%s", type);
    natsStatus status = silent ? natsConnection_SubscribeSync(&w->service, w->client, subject)
                               : natsConnection_QueueSubscribe(&w->service, w->client, subject,
                                                               type, on_echo, NULL);
    assert_int_equal(status, NATS_OK);
    natsSubscription_SetPendingLimits(w->service, -1, -1);
    assert_int_equal(natsConnection_FlushTimeout(w->client, REQUEST_MS), NATS_OK);
}

static void service_stop(world *w)
{
    natsSubscription_Unsubscribe(w->service);
    natsSubscription_Destroy(w->service);
    w->service = NULL;
    assert_int_equal(natsConnection_FlushTimeout(w->client, REQUEST_MS), NATS_OK);
}

/* count acknowledged submits of type; the first id in first_id. */
static void submit_many(world *w, const char *type, int count, char first_id[40])
{
    char subject[128];
    snprintf(subject, sizeof subject, "kc.submit.%s", type);
    for (int index = 0; index < count; index++) {
        natsMsg *ack = NULL;
        assert_int_equal(natsConnection_RequestString(&ack, w->client, subject, "job", REQUEST_MS),
                         NATS_OK);
        const char *error = NULL, *id = NULL;
        assert_int_not_equal(natsMsgHeader_Get(ack, "Kc-Error", &error), NATS_OK);
        assert_int_equal(natsMsgHeader_Get(ack, "Kc-Id", &id), NATS_OK);
        if (index == 0 && first_id != NULL) snprintf(first_id, 40, "%s", id);
        natsMsg_Destroy(ack);
    }
}

static json_int_t queue_stat(world *w, const char *name)
{
    natsMsg *answer = NULL;
    assert_int_equal(
        natsConnection_RequestString(&answer, w->client, "kc.sys.queue.stats", "", REQUEST_MS),
        NATS_OK);
    json_error_t json_error;
    json_t *root =
        json_loadb(natsMsg_GetData(answer), (size_t)natsMsg_GetDataLength(answer), 0, &json_error);
    json_t *value = json_object_get(root, name);
    assert_true(json_is_integer(value));
    json_int_t number = json_integer_value(value);
    json_decref(root);
    natsMsg_Destroy(answer);
    return number;
}

/* Until the stat reaches at least target; false when within_ms ran out. */
static bool wait_stat(world *w, const char *name, json_int_t target, int within_ms)
{
    int64_t deadline_ms = harness_now_ms() + within_ms;
    while (queue_stat(w, name) < target) {
        if (harness_now_ms() >= deadline_ms) return false;
        harness_sleep_ms(50);
    }
    return true;
}

/* Lines of the persister's log that say requests died (one each before,
 * "request <id> is dead: ..."; now "<n> requests are dead ..." too). */
static int dead_lines(const world *w)
{
    FILE *log = fopen(persister_in_server ? w->server.log_path : w->persister_log, "r");
    if (log == NULL) return 0;
    char line[4096];
    int count = 0;
    while (fgets(line, sizeof line, log) != NULL)
        count += strstr(line, "queue: ") != NULL &&
                 (strstr(line, " is dead") != NULL || strstr(line, " are dead") != NULL);
    fclose(log);
    return count;
}

/* Runs kcobra with arguments; its stdout in output. Returns its exit status. */
static int run_kcobra(const char *const *arguments, char *output, size_t output_size)
{
    int pipe_fds[2];
    assert_int_equal(pipe(pipe_fds), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        const char *argv[ARGUMENTS_MAX] = {kcobra_binary};
        for (int index = 0; arguments[index] != NULL && index + 2 < ARGUMENTS_MAX; index++)
            argv[index + 1] = arguments[index];
        dup2(pipe_fds[1], STDOUT_FILENO);
        close(pipe_fds[0]);
        execv(kcobra_binary, (char *const *)argv);
        _exit(127);
    }
    close(pipe_fds[1]);
    size_t length = 0;
    ssize_t got;
    while ((got = read(pipe_fds[0], output + length, output_size - 1 - length)) > 0)
        length += (size_t)got;
    output[length] = '\0';
    close(pipe_fds[0]);
    int status = 0;
    waitpid(pid, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}

/* The requeue's JSON answer: requeued and dead. */
static void requeue_expect(const char *const *arguments, json_int_t requeued, json_int_t dead)
{
    char *output = malloc(OUTPUT_BYTES_MAX);
    assert_non_null(output);
    assert_int_equal(run_kcobra(arguments, output, OUTPUT_BYTES_MAX), 0);
    json_error_t json_error;
    json_t *root = json_loads(output, 0, &json_error);
    if (root == NULL) fprintf(stderr, "waiting: kcobra printed: %s\n", output);
    assert_true(json_is_object(root));
    assert_int_equal(json_integer_value(json_object_get(root, "requeued")), requeued);
    assert_int_equal(json_integer_value(json_object_get(root, "dead")), dead);
    json_decref(root);
    free(output);
}

/* ---- setup ---------------------------------------------------------------------------- */

static int setup_with(void **state, const char *const *timing)
{
    world *w = &the_world;
    memset(w, 0, sizeof *w);
    w->timing = timing;
    if (harness_server_init(&w->server, server_binary) != HARNESS_OK) return -1;
    snprintf(w->queue_dir, sizeof w->queue_dir, "%.200s/data/queue", w->server.directory_path);
    snprintf(w->persister_log, sizeof w->persister_log, "%.200s/persister.log",
             w->server.directory_path);
    if (persister_in_server)
        persister_start(w);
    else if (harness_server_start(&w->server, NULL) != HARNESS_OK)
        return -1;
    if (!persister_in_server) persister_start(w);
    w->client = connect_client(w);
    wait_ready(w);
    *state = w;
    return 0;
}

static int setup_short(void **state)
{
    return setup_with(state, SHORT);
}

static int setup_long(void **state)
{
    return setup_with(state, LONG);
}

static int teardown(void **state)
{
    world *w = *state;
    if (w->service != NULL) natsSubscription_Destroy(w->service);
    natsConnection_Destroy(w->client);
    if (w->persister_pid > 0) {
        kill(w->persister_pid, SIGTERM);
        waitpid(w->persister_pid, NULL, 0);
    }
    harness_server_cleanup(&w->server);
    return 0;
}

/* ---- the cases ------------------------------------------------------------------------- */

static void test_absent(void **state)
{
    world *w = *state;
    submit_many(w, "absent", ABSENT_COUNT, NULL);
    harness_sleep_ms(ABSENT_WAIT_MS);
    assert_int_equal(queue_stat(w, "dead"), 0);
    assert_int_equal(queue_stat(w, "pending"), ABSENT_COUNT);
    /* Its ids (the persister's UUIDv7s) tell how long the oldest waited. */
    assert_true(queue_stat(w, "oldest_pending_age_ms") >= ABSENT_WAIT_MS / 2);
    assert_int_equal(dead_lines(w), 0);
    service_start(w, "absent", false);
    assert_true(wait_stat(w, "replied", ABSENT_COUNT, PROMPT_MS));
    assert_int_equal(queue_stat(w, "dead"), 0);
}

static void test_prompt(void **state)
{
    world *w = *state;
    submit_many(w, "late", PROMPT_COUNT, NULL);
    harness_sleep_ms(1000); /* every first dispatch found nobody */
    int64_t start_ms = harness_now_ms();
    service_start(w, "late", false);
    assert_true(wait_stat(w, "replied", PROMPT_COUNT, PROMPT_MS));
    fprintf(stderr, "waiting: %d requests answered %lld ms after their service appeared\n",
            PROMPT_COUNT, (long long)(harness_now_ms() - start_ms));
}

static void test_restart(void **state)
{
    world *w = *state;
    submit_many(w, "reborn", PROMPT_COUNT, NULL);
    persister_kill(w);
    persister_start(w);
    wait_ready(w);
    harness_sleep_ms(1000); /* the restarted persister found nobody */
    int64_t start_ms = harness_now_ms();
    service_start(w, "reborn", false);
    assert_true(wait_stat(w, "replied", PROMPT_COUNT, PROMPT_MS));
    fprintf(stderr,
            "waiting: after a restart, %d requests answered %lld ms after their service "
            "appeared\n",
            PROMPT_COUNT, (long long)(harness_now_ms() - start_ms));
}

static void test_requeue(void **state)
{
    world *w = *state;
    char first_id[40];
    service_start(w, "doomed", true);
    submit_many(w, "doomed", DOOMED_COUNT, first_id);
    assert_true(wait_stat(w, "dead", DOOMED_COUNT, DEATH_TIMEOUT_MS));
    service_stop(w);
    harness_sleep_ms(1500); /* the last deaths' summary line is out */
    int lines = dead_lines(w);
    fprintf(stderr, "waiting: %d deaths told in %d log lines\n", DOOMED_COUNT, lines);
    assert_true(lines >= 1 && lines <= DEAD_LINES_MAX);

    const char *const by_id[] = {"--server", w->server.url, "--json", "queue", "requeue",
                                 "--live",   "--id",        first_id, NULL};
    requeue_expect(by_id, 1, DOOMED_COUNT - 1);
    persister_kill(w);
    const char *const by_type[] = {"--json",     "queue",  "requeue", "--dir",
                                   w->queue_dir, "--type", "doomed",  NULL};
    requeue_expect(by_type, DOOMED_COUNT - 1, 0);

    char *output = malloc(OUTPUT_BYTES_MAX);
    assert_non_null(output);
    const char *const verify[] = {"queue", "verify", "--dir", w->queue_dir, NULL};
    assert_int_equal(run_kcobra(verify, output, OUTPUT_BYTES_MAX), 0);
    const char *const dump[] = {"--json", "queue", "dump", "--dir", w->queue_dir, NULL};
    assert_int_equal(run_kcobra(dump, output, OUTPUT_BYTES_MAX), 0);
    int requeues = 0;
    for (const char *at = output; (at = strstr(at, "\"kind\":\"requeue\"")) != NULL; at++)
        requeues++;
    free(output);
    assert_int_equal(requeues, DOOMED_COUNT);

    persister_start(w);
    wait_ready(w);
    assert_int_equal(queue_stat(w, "dead"), 0);
    service_start(w, "doomed", false);
    assert_true(wait_stat(w, "replied", DOOMED_COUNT, PROMPT_MS));
    assert_int_equal(queue_stat(w, "dead"), 0);
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: waiting SERVER KCOBRA\n");
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    server_binary = argv[1];
    kcobra_binary = argv[2];
    persister_in_server = strstr(server_binary, "kcobrad") != NULL;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_absent, setup_short, teardown),
        cmocka_unit_test_setup_teardown(test_prompt, setup_long, teardown),
        cmocka_unit_test_setup_teardown(test_restart, setup_long, teardown),
        cmocka_unit_test_setup_teardown(test_requeue, setup_short, teardown),
    };
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    nats_Close();
    return failed;
}
