/* ledger_test.c - `kcobra econ ... --ledger` against a real server
 * (nats-server or kcobrad, argv[1]) and a fake ledger: a nats.c subscriber
 * in this program that speaks the kc.ledger.history contract,
 *
 *   request  {"since_ms":<int, optional>, "after":"<cursor>", "limit":<int>}
 *   reply    {"edges":[{"from","to","amount","time_ms","transfer"}...],
 *             "next":"<cursor>" | null}
 *
 * It serves at most PAGE_EDGES edges a page whatever the limit, so kcobra
 * must follow the cursor. Cases: paging and summing duplicate pairs,
 * since_ms passed through, the ledger's error reply (Kc-Error, exit 5), and
 * no ledger at all (no responders, exit 4). argv[2] is the kcobra binary. */
/* clang-format off */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
/* clang-format on */
#include <jansson.h>
#include <nats/nats.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../integration/harness.h"

enum {
    PAGE_EDGES = 2,
    OUTPUT_BYTES_MAX = 64 * 1024,
};

typedef struct history_edge {
    const char *from, *to;
    int amount;
} history_edge;

/* a->b 3 twice (summed to 6), a->c 4, b->d 5, c->d 2, c->b 1: the max
 * flow a -> d is min(6 + 1, 5) + min(4 - 1, 2) = 5 + 2 = 7. */
static const history_edge HISTORY[] = {
    {"a", "b", 3}, {"a", "c", 4}, {"b", "d", 5}, {"a", "b", 3}, {"c", "d", 2}, {"c", "b", 1},
};
enum { HISTORY_COUNT = sizeof HISTORY / sizeof HISTORY[0] };

static const char *server_binary;
static const char *kcobra_binary;
static harness_server server;

typedef struct ledger_state {
    pthread_mutex_t mutex;
    int requests;
    long long since_ms_seen; /* -1: absent */
    bool fail;               /* answer with a Kc-Error header */
} ledger_state;

static ledger_state ledger = {PTHREAD_MUTEX_INITIALIZER, 0, -1, false};

static void on_history(natsConnection *connection, natsSubscription *subscription, natsMsg *message,
                       void *closure)
{
    (void)subscription;
    (void)closure;
    json_t *request =
        json_loadb(natsMsg_GetData(message), (size_t)natsMsg_GetDataLength(message), 0, NULL);
    const char *after = json_string_value(json_object_get(request, "after"));
    int first = after != NULL ? atoi(after) : 0;
    pthread_mutex_lock(&ledger.mutex);
    ledger.requests++;
    json_t *since = json_object_get(request, "since_ms");
    ledger.since_ms_seen = json_is_integer(since) ? (long long)json_integer_value(since) : -1;
    bool fail = ledger.fail;
    pthread_mutex_unlock(&ledger.mutex);
    natsMsg *reply = NULL;
    if (fail) {
        natsMsg_Create(&reply, natsMsg_GetReply(message), NULL, "", 0);
        natsMsgHeader_Set(reply, "Kc-Error", "7 history unavailable");
    } else {
        json_t *edges = json_array();
        int last = first + PAGE_EDGES < HISTORY_COUNT ? first + PAGE_EDGES : HISTORY_COUNT;
        for (int index = first; index < last; index++)
            json_array_append_new(edges, json_pack("{s:s,s:s,s:i,s:i,s:s}", "from",
                                                   HISTORY[index].from, "to", HISTORY[index].to,
                                                   "amount", HISTORY[index].amount, "time_ms",
                                                   1000 + index, "transfer", "t"));
        char next[16];
        snprintf(next, sizeof next, "%d", last);
        json_t *body = json_pack("{s:o,s:o}", "edges", edges, "next",
                                 last < HISTORY_COUNT ? json_string(next) : json_null());
        char *text = json_dumps(body, JSON_COMPACT);
        natsMsg_Create(&reply, natsMsg_GetReply(message), NULL, text, (int)strlen(text));
        free(text);
        json_decref(body);
    }
    natsConnection_PublishMsg(connection, reply);
    natsMsg_Destroy(reply);
    natsMsg_Destroy(message);
    json_decref(request);
}

/* Runs kcobra with args; stdout into output; returns the exit status. */
static int run_kcobra(const char *const *args, char *output, size_t output_size)
{
    int pipe_fds[2];
    assert_int_equal(pipe(pipe_fds), 0);
    pid_t child = fork();
    assert_true(child >= 0);
    if (child == 0) {
        dup2(pipe_fds[1], STDOUT_FILENO);
        close(pipe_fds[0]);
        close(pipe_fds[1]);
        execv(kcobra_binary, (char *const *)args);
        _exit(127);
    }
    close(pipe_fds[1]);
    size_t used = 0;
    ssize_t got;
    while ((got = read(pipe_fds[0], output + used, output_size - 1 - used)) > 0)
        used += (size_t)got;
    output[used] = '\0';
    close(pipe_fds[0]);
    int status = 0;
    assert_int_equal(waitpid(child, &status, 0), child);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}

static natsConnection *ledger_start(natsSubscription **subscription)
{
    natsConnection *connection = NULL;
    assert_int_equal(natsConnection_ConnectTo(&connection, server.url), NATS_OK);
    assert_int_equal(
        natsConnection_Subscribe(subscription, connection, "kc.ledger.history", on_history, NULL),
        NATS_OK);
    assert_int_equal(natsConnection_FlushTimeout(connection, 2000), NATS_OK);
    return connection;
}

static void ledger_stop(natsConnection *connection, natsSubscription *subscription)
{
    natsSubscription_Unsubscribe(subscription);
    natsSubscription_Destroy(subscription);
    natsConnection_Destroy(connection);
}

static void test_maxflow_over_ledger_pages(void **state)
{
    (void)state;
    natsSubscription *subscription = NULL;
    natsConnection *connection = ledger_start(&subscription);
    ledger.requests = 0;
    const char *args[] = {kcobra_binary, "econ", "maxflow", "--ledger", "--server", server.url,
                          "--source",    "a",    "--sink",  "d",        "--json",   NULL};
    char output[OUTPUT_BYTES_MAX];
    assert_int_equal(run_kcobra(args, output, sizeof output), 0);
    json_t *result = json_loads(output, 0, NULL);
    assert_non_null(result);
    assert_true(json_real_value(json_object_get(result, "value")) == 7);
    assert_int_equal(json_integer_value(json_object_get(result, "edges")), 5); /* a->b summed */
    json_decref(result);
    assert_int_equal(ledger.requests, 3); /* 6 edges, 2 a page */
    assert_int_equal(ledger.since_ms_seen, -1);
    /* since_ms is passed to the ledger */
    const char *since_args[] = {kcobra_binary, "econ",       "scc",  "--ledger", "--server",
                                server.url,    "--since-ms", "1002", "--json",   NULL};
    assert_int_equal(run_kcobra(since_args, output, sizeof output), 0);
    assert_int_equal(ledger.since_ms_seen, 1002);
    ledger_stop(connection, subscription);
}

static void test_ledger_error_reply_exits_5(void **state)
{
    (void)state;
    natsSubscription *subscription = NULL;
    natsConnection *connection = ledger_start(&subscription);
    ledger.fail = true;
    const char *args[] = {kcobra_binary, "econ", "hubs", "--ledger", "--server", server.url, NULL};
    char output[OUTPUT_BYTES_MAX];
    assert_int_equal(run_kcobra(args, output, sizeof output), 5);
    ledger.fail = false;
    ledger_stop(connection, subscription);
}

static void test_no_ledger_exits_4(void **state)
{
    (void)state;
    const char *args[] = {kcobra_binary, "econ",      "scc", "--ledger", "--server",
                          server.url,    "--timeout", "1s",  NULL};
    char output[OUTPUT_BYTES_MAX];
    assert_int_equal(run_kcobra(args, output, sizeof output), 4);
}

static int group_setup(void **state)
{
    (void)state;
    if (harness_server_init(&server, server_binary) != HARNESS_OK) return -1;
    return harness_server_start(&server, NULL) == HARNESS_OK ? 0 : -1;
}

static int group_teardown(void **state)
{
    (void)state;
    harness_server_cleanup(&server);
    nats_Close();
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: %s SERVER_BINARY KCOBRA_BINARY\n", argv[0]);
        return 2;
    }
    server_binary = argv[1];
    kcobra_binary = argv[2];
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_maxflow_over_ledger_pages),
        cmocka_unit_test(test_ledger_error_reply_exits_5),
        cmocka_unit_test(test_no_ledger_exits_4),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
