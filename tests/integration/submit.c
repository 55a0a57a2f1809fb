/*
 * Asynchronous durable submits from libkingcobra (kc_client_submit_async,
 * kc_client_submit; docs/service.md) against a real persister: kcobrad's
 * (argv[1] kcobrad) or `kcobra queue serve` (argv[2]) on nats-server
 * (argv[1] nats-server); and against a stand-in persister (a raw nats.c
 * subscription on kc.submit.> of a second server without a persister) that
 * answers when and how a case says.
 *
 *   many       3,000 submits through a window of 64: each calls back exactly
 *              once, KC_OK, with the id the call returned; ids unique; the
 *              persister counts them all; never more than the window in flight
 *   refused    a payload over the persister's 4 MiB: KC_ERR_SERVICE, 413
 *   sync       kc_client_submit: KC_OK and an id; the refusal's code
 *   headers    the stand-in sees Kc-Id (= the returned id), Kc-Ts, Kc-Type,
 *              Kc-Node and no Kc-Deadline, on kc.submit.<type>
 *   errors     a Kc-Error refusal, an acknowledgement of another id, no
 *              answer (timeout), nobody subscribed (no responders)
 *   window     with the window full the call blocks for its timeout and
 *              returns KC_ERR_LIMIT; one acknowledgement makes room
 *   close      kc_client_close with submits in flight: each calls back once
 *              with KC_ERR_CLOSED
 *   batch      `kcobra submit --batch`: a file of 500 lines through a window
 *              of 32, all stored (the persister counts them); stdin and
 *              --json; without a persister every line fails, named by line
 *              number, exit 1; a payload beside --batch is a usage error
 */
#include <nats/nats.h>
#include <pthread.h>
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
#include "kingcobra/kingcobra.h"

enum {
    TIMEOUT_MS = 10000, /* generous: a loaded 2-core machine */
    READY_TIMEOUT_MS = 30000,
    MANY_COUNT = 3000,
    MANY_WINDOW = 64,
    HELD_MAX = 64,
    CONFIG_BYTES_MAX = 1024,
    PAYLOAD_OVER_PERSISTER_BYTES = 4 * 1024 * 1024 + 16, /* over its 4 MiB */
};

static const char *server_binary;
static const char *kcobra_binary;
static bool persister_in_server; /* kcobrad hosts it */

/* The stand-in persister: holds what it receives until a case answers. */
typedef struct stand_in {
    pthread_mutex_t lock;
    natsMsg *held[HELD_MAX];
    int held_count;
} stand_in;

typedef struct world {
    harness_server server; /* with a persister */
    harness_server bare;   /* without: the stand-in answers */
    pid_t persister_pid;   /* with nats-server */
    natsConnection *fake;  /* the stand-in's connection, on bare */
    natsSubscription *fake_subscription;
    stand_in stand_in;
} world;

static world the_world;

/* ---- servers ----------------------------------------------------------------------- */

static pid_t spawn_persister(world *w)
{
    char directory[HARNESS_PATH_SIZE_MAX + 16], log_path[HARNESS_PATH_SIZE_MAX + 32];
    snprintf(directory, sizeof directory, "%.200s/queue", w->server.directory_path);
    snprintf(log_path, sizeof log_path, "%.200s/queue.log", w->server.directory_path);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        if (freopen(log_path, "a", stderr) == NULL) _exit(127);
        execl(kcobra_binary, kcobra_binary, "queue", "serve", "--server", w->server.url, "--dir",
              directory, (char *)NULL);
        _exit(127);
    }
    return pid;
}

static kc_client *open_client(const harness_server *server, uint32_t window)
{
    kc_client_options options;
    kc_client_options_init(&options);
    options.servers = server->url;
    options.node = "submitter";
    options.submits_in_flight_max = window;
    kc_client *client = NULL;
    assert_int_equal(kc_client_open(&client, &options), KC_OK);
    return client;
}

static int64_t queue_submitted(const harness_server *server)
{
    natsConnection *connection = NULL;
    assert_int_equal(natsConnection_ConnectTo(&connection, server->url), NATS_OK);
    natsMsg *reply = NULL;
    natsStatus status =
        natsConnection_RequestString(&reply, connection, "kc.sys.queue.stats", "", TIMEOUT_MS);
    int64_t value = -1;
    if (status == NATS_OK && !natsMsg_IsNoResponders(reply)) {
        const char *text = strstr(natsMsg_GetData(reply), "\"submitted\":");
        if (text != NULL) value = strtoll(text + strlen("\"submitted\":"), NULL, 10);
    }
    natsMsg_Destroy(reply);
    natsConnection_Destroy(connection);
    return value;
}

/* Until a submit is acknowledged (the persister starts after the port). */
static void wait_ready(world *w)
{
    kc_client *client = open_client(&w->server, 0);
    int64_t deadline_ms = harness_now_ms() + READY_TIMEOUT_MS;
    kc_err err = KC_ERR_NO_RESPONDERS;
    while (err != KC_OK && harness_now_ms() < deadline_ms) {
        err = kc_client_submit(client, "ready", "x", 1, 1000, NULL, NULL);
        if (err != KC_OK) harness_sleep_ms(100);
    }
    assert_int_equal(err, KC_OK);
    assert_int_equal(kc_client_close(client, TIMEOUT_MS), KC_OK);
}

static void on_fake_submit(natsConnection *connection, natsSubscription *subscription,
                           natsMsg *message, void *closure)
{
    (void)connection, (void)subscription;
    stand_in *s = closure;
    pthread_mutex_lock(&s->lock);
    if (s->held_count < HELD_MAX)
        s->held[s->held_count++] = message;
    else
        natsMsg_Destroy(message);
    pthread_mutex_unlock(&s->lock);
}

static int setup(void **state)
{
    world *w = &the_world;
    memset(w, 0, sizeof *w);
    pthread_mutex_init(&w->stand_in.lock, NULL);
    char config[CONFIG_BYTES_MAX];
    const char *payload = "max_payload: 8MB\nmax_pending: 64MB\n";
    if (harness_server_init(&w->server, server_binary) != HARNESS_OK) return -1;
    if (persister_in_server)
        snprintf(config, sizeof config, "%sdata_dir: \"%.200s/data\"\n", payload,
                 w->server.directory_path);
    else
        snprintf(config, sizeof config, "%s", payload);
    if (harness_server_start(&w->server, config) != HARNESS_OK) return -1;
    if (!persister_in_server) w->persister_pid = spawn_persister(w);
    if (harness_server_init(&w->bare, server_binary) != HARNESS_OK) return -1;
    if (persister_in_server)
        snprintf(config, sizeof config, "data_dir: \"%.200s/data\"\npersister { enabled: false }\n",
                 w->bare.directory_path);
    else
        config[0] = '\0';
    if (harness_server_start(&w->bare, config) != HARNESS_OK) return -1;
    wait_ready(w);
    *state = w;
    return 0;
}

static int teardown(void **state)
{
    world *w = *state;
    if (w->persister_pid > 0) {
        kill(w->persister_pid, SIGTERM);
        waitpid(w->persister_pid, NULL, 0);
    }
    harness_server_cleanup(&w->bare);
    harness_server_cleanup(&w->server);
    pthread_mutex_destroy(&w->stand_in.lock);
    return 0;
}

/* ---- outcomes ---------------------------------------------------------------------- */

typedef struct outcome {
    int calls;
    kc_err status;
    int error_code;
    char id[KC_UUID_TEXT_BYTES + 1];        /* what the call returned */
    char called_id[KC_UUID_TEXT_BYTES + 1]; /* what the callback said */
    char message[KC_ERROR_MESSAGE_BYTES_MAX];
} outcome;

typedef struct tally {
    pthread_mutex_t lock;
    pthread_cond_t changed;
    int done;
    int in_flight; /* counted from before the call to the callback */
    int in_flight_max;
} tally;

static tally the_tally;

static void tally_reset(void)
{
    pthread_mutex_destroy(&the_tally.lock);
    pthread_cond_destroy(&the_tally.changed);
    memset(&the_tally, 0, sizeof the_tally);
    pthread_mutex_init(&the_tally.lock, NULL);
    pthread_cond_init(&the_tally.changed, NULL);
}

static void on_submitted(kc_client *client, kc_err status, const char *id, int error_code,
                         const char *error_message, void *closure)
{
    (void)client;
    outcome *o = closure;
    pthread_mutex_lock(&the_tally.lock);
    o->calls++;
    o->status = status;
    o->error_code = error_code;
    snprintf(o->called_id, sizeof o->called_id, "%s", id);
    snprintf(o->message, sizeof o->message, "%s", error_message);
    the_tally.done++;
    the_tally.in_flight--;
    pthread_cond_broadcast(&the_tally.changed);
    pthread_mutex_unlock(&the_tally.lock);
}

static void in_flight_add(void)
{
    pthread_mutex_lock(&the_tally.lock);
    if (++the_tally.in_flight > the_tally.in_flight_max)
        the_tally.in_flight_max = the_tally.in_flight;
    pthread_mutex_unlock(&the_tally.lock);
}

static kc_err submit(kc_client *client, const char *type, const char *payload, int64_t timeout_ms,
                     outcome *o)
{
    in_flight_add();
    kc_err err = kc_client_submit_async(client, type, payload, strlen(payload), timeout_ms,
                                        on_submitted, o, o->id);
    if (err != KC_OK) {
        pthread_mutex_lock(&the_tally.lock);
        the_tally.in_flight--;
        pthread_mutex_unlock(&the_tally.lock);
    }
    return err;
}

static void wait_done(int count)
{
    int64_t deadline_ms = harness_now_ms() + 3 * TIMEOUT_MS;
    pthread_mutex_lock(&the_tally.lock);
    while (the_tally.done < count && harness_now_ms() < deadline_ms) {
        pthread_mutex_unlock(&the_tally.lock);
        harness_sleep_ms(10);
        pthread_mutex_lock(&the_tally.lock);
    }
    int done = the_tally.done;
    pthread_mutex_unlock(&the_tally.lock);
    assert_int_equal(done, count);
}

static int id_compare(const void *left, const void *right)
{
    return strcmp(((const outcome *)left)->id, ((const outcome *)right)->id);
}

/* ---- against the persister --------------------------------------------------------- */

static void test_many(void **state)
{
    world *w = *state;
    tally_reset();
    int64_t before = queue_submitted(&w->server);
    assert_true(before >= 0);
    kc_client *client = open_client(&w->server, MANY_WINDOW);
    outcome *outcomes = calloc(MANY_COUNT, sizeof *outcomes);
    assert_non_null(outcomes);
    for (int index = 0; index < MANY_COUNT; index++) {
        char payload[64];
        snprintf(payload, sizeof payload, "job %d", index);
        assert_int_equal(submit(client, "many", payload, TIMEOUT_MS, &outcomes[index]), KC_OK);
    }
    wait_done(MANY_COUNT);
    harness_sleep_ms(200); /* a second callback would show up here */
    for (int index = 0; index < MANY_COUNT; index++) {
        assert_int_equal(outcomes[index].calls, 1);
        assert_int_equal(outcomes[index].status, KC_OK);
        assert_string_equal(outcomes[index].called_id, outcomes[index].id);
    }
    /* The library frees a submit's place before its callback runs (on one of
     * its two threads): at most the window, plus the call under way, plus
     * one freed but not yet called back per library thread. */
    if (the_tally.in_flight_max > MANY_WINDOW + 3)
        fail_msg("%d in flight, window %d", the_tally.in_flight_max, MANY_WINDOW);
    qsort(outcomes, MANY_COUNT, sizeof *outcomes, id_compare);
    for (int index = 1; index < MANY_COUNT; index++)
        assert_true(strcmp(outcomes[index - 1].id, outcomes[index].id) != 0);
    assert_int_equal(queue_submitted(&w->server) - before, MANY_COUNT);
    free(outcomes);
    assert_int_equal(kc_client_close(client, TIMEOUT_MS), KC_OK);
}

static void test_refused(void **state)
{
    world *w = *state;
    tally_reset();
    kc_client *client = open_client(&w->server, 0);
    char *payload = malloc(PAYLOAD_OVER_PERSISTER_BYTES + 1);
    assert_non_null(payload);
    memset(payload, 'p', PAYLOAD_OVER_PERSISTER_BYTES);
    payload[PAYLOAD_OVER_PERSISTER_BYTES] = '\0';
    outcome o = {0};
    assert_int_equal(submit(client, "big", payload, TIMEOUT_MS, &o), KC_OK);
    wait_done(1);
    assert_int_equal(o.status, KC_ERR_SERVICE);
    assert_int_equal(o.error_code, 413);
    assert_true(o.message[0] != '\0');
    int code = 0;
    assert_int_equal(kc_client_submit(client, "big", payload, PAYLOAD_OVER_PERSISTER_BYTES,
                                      TIMEOUT_MS, NULL, &code),
                     KC_ERR_SERVICE);
    assert_int_equal(code, 413);
    free(payload);
    assert_int_equal(kc_client_close(client, TIMEOUT_MS), KC_OK);
}

static void test_sync(void **state)
{
    world *w = *state;
    kc_client *client = open_client(&w->server, 0);
    char id[KC_UUID_TEXT_BYTES + 1] = "";
    int code = -1;
    assert_int_equal(kc_client_submit(client, "sync", "hello", 5, TIMEOUT_MS, id, &code), KC_OK);
    assert_int_equal(code, 0);
    assert_int_equal(strlen(id), KC_UUID_TEXT_BYTES);
    assert_int_equal(kc_client_close(client, TIMEOUT_MS), KC_OK);
}

/* ---- against the stand-in ---------------------------------------------------------- */

static void fake_start(world *w)
{
    w->stand_in.held_count = 0;
    assert_int_equal(natsConnection_ConnectTo(&w->fake, w->bare.url), NATS_OK);
    assert_int_equal(natsConnection_Subscribe(&w->fake_subscription, w->fake, "kc.submit.>",
                                              on_fake_submit, &w->stand_in),
                     NATS_OK);
    assert_int_equal(natsConnection_FlushTimeout(w->fake, TIMEOUT_MS), NATS_OK);
}

static void fake_stop(world *w)
{
    natsSubscription_Destroy(w->fake_subscription);
    w->fake_subscription = NULL;
    natsConnection_Destroy(w->fake);
    w->fake = NULL;
    for (int index = 0; index < w->stand_in.held_count; index++)
        natsMsg_Destroy(w->stand_in.held[index]);
    w->stand_in.held_count = 0;
}

static void wait_held(world *w, int count)
{
    int64_t deadline_ms = harness_now_ms() + TIMEOUT_MS;
    int held = 0;
    while (harness_now_ms() < deadline_ms) {
        pthread_mutex_lock(&w->stand_in.lock);
        held = w->stand_in.held_count;
        pthread_mutex_unlock(&w->stand_in.lock);
        if (held >= count) break;
        harness_sleep_ms(10);
    }
    assert_int_equal(held, count);
}

/* Answers held message index: Kc-Id id (NULL: its own), Kc-Error error (may be NULL). */
static void fake_answer(world *w, int index, const char *id, const char *error)
{
    natsMsg *held = w->stand_in.held[index];
    const char *own = NULL;
    assert_int_equal(natsMsgHeader_Get(held, "Kc-Id", &own), NATS_OK);
    natsMsg *answer = NULL;
    assert_int_equal(natsMsg_Create(&answer, natsMsg_GetReply(held), NULL, "{}", 2), NATS_OK);
    natsMsgHeader_Set(answer, "Kc-Id", id != NULL ? id : own);
    if (error != NULL) natsMsgHeader_Set(answer, "Kc-Error", error);
    assert_int_equal(natsConnection_PublishMsg(w->fake, answer), NATS_OK);
    natsMsg_Destroy(answer);
}

static void test_headers(void **state)
{
    world *w = *state;
    tally_reset();
    fake_start(w);
    kc_client *client = open_client(&w->bare, 0);
    outcome o = {0};
    assert_int_equal(submit(client, "thumbnail", "img", TIMEOUT_MS, &o), KC_OK);
    wait_held(w, 1);
    natsMsg *held = w->stand_in.held[0];
    assert_string_equal(natsMsg_GetSubject(held), "kc.submit.thumbnail");
    const char *value = NULL;
    assert_int_equal(natsMsgHeader_Get(held, "Kc-Id", &value), NATS_OK);
    assert_string_equal(value, o.id);
    assert_int_equal(natsMsgHeader_Get(held, "Kc-Ts", &value), NATS_OK);
    assert_int_equal(natsMsgHeader_Get(held, "Kc-Type", &value), NATS_OK);
    assert_string_equal(value, "thumbnail");
    assert_int_equal(natsMsgHeader_Get(held, "Kc-Node", &value), NATS_OK);
    assert_string_equal(value, "submitter");
    assert_int_equal(natsMsgHeader_Get(held, "Kc-Deadline", &value), NATS_NOT_FOUND);
    fake_answer(w, 0, NULL, NULL);
    wait_done(1);
    assert_int_equal(o.status, KC_OK);
    assert_int_equal(kc_client_close(client, TIMEOUT_MS), KC_OK);
    fake_stop(w);
}

static void test_errors(void **state)
{
    world *w = *state;
    tally_reset();
    fake_start(w);
    kc_client *client = open_client(&w->bare, 0);
    outcome refused = {0}, other = {0}, late = {0}, nobody = {0};
    assert_int_equal(submit(client, "e", "1", TIMEOUT_MS, &refused), KC_OK);
    assert_int_equal(submit(client, "e", "2", TIMEOUT_MS, &other), KC_OK);
    assert_int_equal(submit(client, "e", "3", 300, &late), KC_OK);
    wait_held(w, 3);
    fake_answer(w, 0, NULL, "503 the persister is stopping");
    fake_answer(w, 1, "0190b6e2-0000-7000-8000-000000000000", NULL);
    wait_done(3);
    assert_int_equal(refused.status, KC_ERR_SERVICE);
    assert_int_equal(refused.error_code, 503);
    assert_string_equal(refused.message, "the persister is stopping");
    assert_int_equal(other.status, KC_ERR_BAD_HEADER);
    assert_int_equal(late.status, KC_ERR_TIMEOUT);
    assert_int_equal(late.error_code, 0);
    assert_true(late.message[0] != '\0');
    fake_stop(w);
    assert_int_equal(submit(client, "e", "4", TIMEOUT_MS, &nobody), KC_OK);
    wait_done(4);
    assert_int_equal(nobody.status, KC_ERR_NO_RESPONDERS);
    assert_int_equal(kc_client_close(client, TIMEOUT_MS), KC_OK);
}

static void test_window(void **state)
{
    world *w = *state;
    tally_reset();
    fake_start(w);
    enum { WINDOW = 4, BLOCK_MS = 300 };
    kc_client *client = open_client(&w->bare, WINDOW);
    outcome outcomes[WINDOW + 1] = {0};
    for (int index = 0; index < WINDOW; index++)
        assert_int_equal(submit(client, "w", "x", TIMEOUT_MS, &outcomes[index]), KC_OK);
    wait_held(w, WINDOW);
    int64_t started_ms = harness_now_ms();
    assert_int_equal(submit(client, "w", "x", BLOCK_MS, &outcomes[WINDOW]), KC_ERR_LIMIT);
    assert_true(harness_now_ms() - started_ms >= BLOCK_MS - 20);
    fake_answer(w, 0, NULL, NULL);
    assert_int_equal(submit(client, "w", "x", TIMEOUT_MS, &outcomes[WINDOW]), KC_OK);
    wait_held(w, WINDOW + 1);
    for (int index = 1; index <= WINDOW; index++)
        fake_answer(w, index, NULL, NULL);
    wait_done(WINDOW + 1);
    for (int index = 0; index <= WINDOW; index++) {
        assert_int_equal(outcomes[index].calls, 1);
        assert_int_equal(outcomes[index].status, KC_OK);
    }
    assert_int_equal(kc_client_close(client, TIMEOUT_MS), KC_OK);
    fake_stop(w);
}

static void test_close(void **state)
{
    world *w = *state;
    tally_reset();
    fake_start(w);
    enum { COUNT = 10 };
    kc_client *client = open_client(&w->bare, 0);
    outcome outcomes[COUNT] = {0};
    for (int index = 0; index < COUNT; index++)
        assert_int_equal(submit(client, "c", "x", TIMEOUT_MS, &outcomes[index]), KC_OK);
    wait_held(w, COUNT);
    kc_client_close(client, 200); /* nothing answers: they are still in flight */
    for (int index = 0; index < COUNT; index++) {
        assert_int_equal(outcomes[index].calls, 1);
        assert_int_equal(outcomes[index].status, KC_ERR_CLOSED);
    }
    fake_stop(w);
}

/* ---- kcobra submit --batch ----------------------------------------------------------- */

typedef struct cli_run {
    int status;
    char out[4096];
} cli_run;

/* Runs "sh -c command" (kcobra is $KCOBRA in it), stdout captured. */
static void cli(cli_run *run, const char *format, ...)
{
    char command[2048];
    va_list arguments;
    va_start(arguments, format);
    vsnprintf(command, sizeof command, format, arguments);
    va_end(arguments);
    setenv("KCOBRA", kcobra_binary, 1);
    FILE *pipe = popen(command, "r");
    assert_non_null(pipe);
    size_t length = fread(run->out, 1, sizeof run->out - 1, pipe);
    run->out[length] = '\0';
    int wait_status = pclose(pipe);
    run->status = WIFEXITED(wait_status) ? WEXITSTATUS(wait_status) : -1;
}

static void test_batch_file(void **state)
{
    world *w = *state;
    enum { LINES = 500 };
    char path[HARNESS_PATH_SIZE_MAX + 16];
    snprintf(path, sizeof path, "%.200s/batch.txt", w->server.directory_path);
    FILE *file = fopen(path, "w");
    assert_non_null(file);
    for (int index = 0; index < LINES; index++)
        fprintf(file, "{\"job\":%d}\n", index);
    fclose(file);
    int64_t before = queue_submitted(&w->server);
    cli_run run;
    cli(&run, "\"$KCOBRA\" submit batch --batch '%s' --window 32 --server %s 2>/dev/null", path,
        w->server.url);
    assert_int_equal(run.status, 0);
    assert_string_equal(run.out, "500 lines: acknowledged 500, failed 0\n");
    assert_int_equal(queue_submitted(&w->server) - before, LINES);
}

static void test_batch_stdin_json(void **state)
{
    world *w = *state;
    cli_run run;
    cli(&run, "printf 'a\\nb\\nc' | \"$KCOBRA\" submit batch --batch - --json --server %s",
        w->server.url);
    assert_int_equal(run.status, 0);
    assert_string_equal(run.out, "{\"lines\":3,\"acknowledged\":3,\"failed\":0,\"failures\":[]}\n");
}

static void test_batch_failed(void **state)
{
    world *w = *state; /* the bare server: nobody serves kc.submit */
    cli_run run;
    cli(&run, "printf 'a\\nb\\n' | \"$KCOBRA\" submit batch --batch - --json --server %s",
        w->bare.url);
    assert_int_equal(run.status, 1);
    assert_non_null(strstr(run.out, "\"acknowledged\":0,\"failed\":2,"));
    assert_non_null(strstr(run.out, "{\"line\":1,"));
    assert_non_null(strstr(run.out, "{\"line\":2,"));
    assert_non_null(strstr(run.out, "\"status\":\"")); /* kc_strerror's no responders */
    cli(&run, "\"$KCOBRA\" submit batch payload --batch - --server %s </dev/null 2>/dev/null",
        w->bare.url);
    assert_int_equal(run.status, 2);
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: %s SERVER_BINARY KCOBRA_BINARY\n", argv[0]);
        return 2;
    }
    server_binary = argv[1];
    kcobra_binary = argv[2];
    persister_in_server = strstr(server_binary, "nats-server") == NULL;
    pthread_mutex_init(&the_tally.lock, NULL);
    pthread_cond_init(&the_tally.changed, NULL);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_many),
        cmocka_unit_test(test_refused),
        cmocka_unit_test(test_sync),
        cmocka_unit_test(test_headers),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_window),
        cmocka_unit_test(test_close),
        cmocka_unit_test(test_batch_file),
        cmocka_unit_test(test_batch_stdin_json),
        cmocka_unit_test(test_batch_failed),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
