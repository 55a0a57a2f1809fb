/*
 * jsqueue.c - the persister on JetStream (storage: jetstream, docs/queue.md):
 * two `kcobra queue serve --storage jetstream` processes (argv[2] is kcobra),
 * one active through the lease, the other standing by; a service counting
 * its effects by Kc-Id; clients submitting durable requests concurrently,
 * each retrying with the same Kc-Id until acknowledged.
 *
 * argv[3] picks the group:
 *   local    one nats-server (argv[1]) with JetStream, R1 stream and lease:
 *     local    kill -9 of the active persister in the middle of the submits;
 *     dead     requests die at a service that never answers, stay dead
 *              across a kill -9 of the active persister, and a requeue on
 *              its successor brings them back to a service that answers.
 *   cluster  three servers (js_cluster.h), R3, the persisters connected to
 *            servers 1 and 2 first, the service to server 3:
 *     killed   kill -9 of the active persister in the middle;
 *     paused   SIGSTOP of the active persister until the other one serves,
 *              one more second, then SIGCONT: it must step down;
 *     leader   kill -9 of the nats-server leading the stream: writes stop
 *              until the other two elect a leader (4-9 s in 2.9), and
 *              whichever persister holds the lease then serves again.
 *     partition  each persister is given only its own server; SIGSTOP of
 *              the active one's server and of the persister itself for 3 s
 *              (longer than the lease), then SIGCONT: a partition as the
 *              others see it (the persister is stopped too because nats.c
 *              learns the other servers and would reconnect). The other
 *              persister takes over; the deposed one writes nothing after
 *              its term and steps down ("lease lost").
 *
 * After each case: every acknowledged request got exactly one handler
 * effect (the service applies a Kc-Id once and counts deliveries) and has
 * its reply recorded (kc.reply.get answers it); `kcobra queue verify
 * --storage jetstream` finds the stream sound (no request or reply twice),
 * `queue stats --json` counts every request replied, `queue dump` prints a
 * line per record; and in stream order the writers' terms (Kc-Term) never go
 * back (verify checks it; stats counts them): no message of a deposed
 * persister follows its successor's term marker. The take-over time (the longest pause of
 * acknowledgements around the fault) is printed, never asserted.
 *
 * The issue asks for 10,000 submits from 16 clients; to stay well under 90 s
 * on a loaded two-core machine under ASan, the cluster cases make 3,000 from
 * 12 clients and the local case 800 from 8 (KC_JSQUEUE_SUBMITS overrides).
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
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "js_cluster.h"

enum {
    PERSISTERS = 2,
    CLIENTS_MAX = 16,
    LOCAL_CLIENTS = 8,
    LOCAL_SUBMITS = 800,
    DEAD_SUBMITS = 20,
    RESTART_SUBMITS = 60, /* a third each replied, dead, pending */
    NOTIFY_SUBMITS = 40,
    CLUSTER_CLIENTS = 12,
    CLUSTER_SUBMITS = 3000,
    SUBMIT_TIMEOUT_MS = 1000, /* a submit in flight to a killed persister is retried after */
    RETRY_PAUSE_MS = 50,
    RUN_TIMEOUT_MS = 90000,    /* every submit acknowledged by then */
    ACTIVE_TIMEOUT_MS = 30000, /* a persister serves by then */
    REPLY_TIMEOUT_MS = 60000,  /* every reply recorded by then */
    STATS_TIMEOUT_MS = 1000,
    STOP_TIMEOUT_MS = 5000,
    POLL_MS = 50,
    PAUSE_EXTRA_MS = 1000,
    SERVER_PAUSE_MS = 3000, /* longer than the lease's 1.2 s, and its margin */
    CLIENT_PING_MS = 500,
    OUTPUT_BYTES_MAX = 1 << 22,
    ID_BYTES = 37,
    SKIP_EXIT_CODE = 77,
};

#define REQUEST_TYPE "work"

typedef struct slot {
    char id[ID_BYTES];
    atomic_bool acked;
    int64_t acked_ms;
    int deliveries;   /* dispatches the service received (under service_lock) */
    int effects;      /* applied once per Kc-Id */
    const char *type; /* its request type (NULL: REQUEST_TYPE) */
    bool mute;        /* the service never answers it: it dies */
} slot;

static const char *kcobra_binary;
static bool clustered;
static const char *storage = "jetstream";               /* the bench compares "local" too */
static const char *redelivery = "3s", *attempts = "10"; /* the dead case's are short */
static atomic_bool silent;                              /* the service answers nothing */
static js_cluster cluster;
static harness_server single;
static char work_directory[HARNESS_PATH_SIZE_MAX];
static char all_urls[JS_CLUSTER_URLS_BYTES_MAX];
static pid_t persisters[PERSISTERS];
static char case_name[32];
static char stream[48];
static slot *slots;
static int slot_count, client_count;
static atomic_int acked_total;
static pthread_mutex_t service_lock = PTHREAD_MUTEX_INITIALIZER;
static natsConnection *service_connection;
static natsSubscription *service_subscription;
static natsSubscription *later_subscription; /* the restart case's second type */
static char single_config[HARNESS_PATH_SIZE_MAX + 64];
static char notify_inbox[128]; /* the submits' Kc-Notify when set */

/* ======================================================================= processes */

static void urls_for(int server_index, char *out, size_t out_size)
{
    if (clustered)
        js_cluster_urls_from(&cluster, server_index % JS_CLUSTER_SIZE, out, out_size);
    else
        snprintf(out, out_size, "%s", single.url);
}

/* partition case: each persister is given only its own server (nats.c still
 * learns the others from the cluster, hence the persister's own SIGSTOP). */
static bool persisters_pinned;

static void persister_spawn(int index)
{
    char urls[JS_CLUSTER_URLS_BYTES_MAX], dir[HARNESS_PATH_SIZE_MAX + 64],
        log[HARNESS_PATH_SIZE_MAX + 64], node[32], bucket[64];
    urls_for(index, urls, sizeof urls);
    if (clustered && persisters_pinned)
        snprintf(urls, sizeof urls, "%s", cluster.nodes[index % JS_CLUSTER_SIZE].server.url);
    snprintf(dir, sizeof dir, "%s/%s-q%d", work_directory, case_name, index);
    snprintf(log, sizeof log, "%s/%s-persister%d.log", work_directory, case_name, index);
    snprintf(node, sizeof node, "persister-%d", index);
    snprintf(bucket, sizeof bucket, "kc_lease_%s", case_name);
    const char *replicas = clustered ? "3" : "1";
    const char *const argv[] = {kcobra_binary, "queue",
                                "serve",       "--storage",
                                storage,       "--server",
                                urls,          "--stream",
                                stream,        "--replicas",
                                replicas,      "--lease-replicas",
                                replicas,      "--lease-bucket",
                                bucket,        "--dir",
                                dir,           "--node",
                                node,          "--redelivery-timeout",
                                redelivery,    "--backoff-max",
                                redelivery,    "--attempts",
                                attempts,      NULL};
    int output = open(log, O_WRONLY | O_CREAT | O_APPEND, 0600);
    assert_true(output >= 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        dup2(output, STDOUT_FILENO);
        dup2(output, STDERR_FILENO);
        execv(argv[0], (char *const *)argv);
        _exit(127);
    }
    close(output);
    persisters[index] = pid;
}

static void persister_kill(int index)
{
    if (persisters[index] == 0) return;
    kill(persisters[index], SIGCONT);
    kill(persisters[index], SIGKILL);
    waitpid(persisters[index], NULL, 0);
    persisters[index] = 0;
}

static void persister_stop(int index)
{
    if (persisters[index] == 0) return;
    kill(persisters[index], SIGCONT);
    kill(persisters[index], SIGTERM);
    int64_t deadline_ms = harness_now_ms() + STOP_TIMEOUT_MS;
    while (harness_now_ms() < deadline_ms && waitpid(persisters[index], NULL, WNOHANG) == 0)
        harness_sleep_ms(POLL_MS);
    persister_kill(index);
}

/* The persister that answers kc.sys.queue.stats (its Kc-Node), other than
 * excluded, within timeout_ms; -1 if none. */
static int active_persister(int excluded, int timeout_ms)
{
    int64_t deadline_ms = harness_now_ms() + timeout_ms;
    while (harness_now_ms() < deadline_ms) {
        natsMsg *reply = NULL;
        const char *node = NULL;
        int found = -1;
        if (natsConnection_RequestString(&reply, service_connection, "kc.sys.queue.stats", "",
                                         STATS_TIMEOUT_MS) == NATS_OK &&
            !natsMsg_IsNoResponders(reply) &&
            natsMsgHeader_Get(reply, "Kc-Node", &node) == NATS_OK &&
            strncmp(node, "persister-", 10) == 0)
            found = atoi(node + 10);
        natsMsg_Destroy(reply);
        if (found >= 0 && found < PERSISTERS && found != excluded) return found;
        harness_sleep_ms(POLL_MS);
    }
    return -1;
}

/* ======================================================================= the service */

/* Applies each Kc-Id once (an idempotent service) and answers the payload. */
static void on_work(natsConnection *connection, natsSubscription *subscription, natsMsg *message,
                    void *closure)
{
    (void)subscription;
    (void)closure;
    const char *id = NULL;
    int index = atoi(natsMsg_GetData(message) != NULL ? natsMsg_GetData(message) : "-1");
    bool known = natsMsgHeader_Get(message, "Kc-Id", &id) == NATS_OK && index >= 0 &&
                 index < slot_count && strcmp(slots[index].id, id) == 0;
    if (known) {
        pthread_mutex_lock(&service_lock);
        slots[index].deliveries++;
        if (slots[index].effects == 0) slots[index].effects = 1;
        pthread_mutex_unlock(&service_lock);
    }
    const char *reply_to = natsMsg_GetReply(message);
    natsMsg *reply = NULL;
    if (known && reply_to != NULL && !atomic_load(&silent) && !slots[index].mute &&
        natsMsg_Create(&reply, reply_to, NULL, natsMsg_GetData(message),
                       natsMsg_GetDataLength(message)) == NATS_OK) {
        natsMsgHeader_Set(reply, "Kc-Id", id);
        natsConnection_PublishMsg(connection, reply);
    }
    natsMsg_Destroy(reply);
    natsMsg_Destroy(message);
}

/* A connection to the servers in order, from server_index's on. */
static natsStatus connect_from(natsConnection **out, int server_index)
{
    char urls[JS_CLUSTER_URLS_BYTES_MAX];
    urls_for(server_index, urls, sizeof urls);
    const char *servers[JS_CLUSTER_SIZE];
    int count = 0;
    char *cursor = urls;
    while (count < JS_CLUSTER_SIZE) {
        servers[count++] = cursor;
        char *comma = strchr(cursor, ',');
        if (comma == NULL) break;
        *comma = '\0';
        cursor = comma + 1;
    }
    natsOptions *options = NULL;
    natsStatus status = natsOptions_Create(&options);
    if (status == NATS_OK) status = natsOptions_SetServers(options, servers, count);
    if (status == NATS_OK) status = natsOptions_SetNoRandomize(options, true);
    if (status == NATS_OK) status = natsOptions_SetMaxReconnect(options, -1);
    if (status == NATS_OK) status = natsOptions_SetReconnectWait(options, 100);
    /* A paused server keeps its sockets open: only pings tell (server_paused). */
    if (status == NATS_OK) status = natsOptions_SetPingInterval(options, CLIENT_PING_MS);
    if (status == NATS_OK) status = natsOptions_SetMaxPingsOut(options, 2);
    if (status == NATS_OK) status = natsConnection_Connect(out, options);
    natsOptions_Destroy(options);
    return status;
}

static void service_start(void)
{
    assert_int_equal(connect_from(&service_connection, 2), NATS_OK);
    assert_int_equal(natsConnection_QueueSubscribe(&service_subscription, service_connection,
                                                   "kc.req." REQUEST_TYPE, REQUEST_TYPE, on_work,
                                                   NULL),
                     NATS_OK);
    natsSubscription_SetPendingLimits(service_subscription, -1, -1);
    assert_int_equal(natsConnection_FlushTimeout(service_connection, 5000), NATS_OK);
}

static void service_stop(void)
{
    if (later_subscription != NULL) {
        natsSubscription_Unsubscribe(later_subscription);
        natsSubscription_Destroy(later_subscription);
        later_subscription = NULL;
    }
    if (service_subscription != NULL) {
        natsSubscription_Unsubscribe(service_subscription);
        natsSubscription_Destroy(service_subscription);
    }
    natsConnection_Destroy(service_connection);
    service_subscription = NULL;
    service_connection = NULL;
}

/* ======================================================================= the clients */

/* true once the persister acknowledged it (no error). */
static bool submit_once(natsConnection *connection, int index)
{
    char payload[16], subject[64];
    snprintf(payload, sizeof payload, "%d", index);
    snprintf(subject, sizeof subject, "kc.submit.%s",
             slots[index].type != NULL ? slots[index].type : REQUEST_TYPE);
    natsMsg *message = NULL, *reply = NULL;
    if (natsMsg_Create(&message, subject, NULL, payload, (int)strlen(payload)) != NATS_OK)
        return false;
    natsMsgHeader_Set(message, "Kc-Id", slots[index].id);
    if (notify_inbox[0] != '\0') natsMsgHeader_Set(message, "Kc-Notify", notify_inbox);
    const char *error = NULL;
    bool acked =
        natsConnection_RequestMsg(&reply, connection, message, SUBMIT_TIMEOUT_MS) == NATS_OK &&
        !natsMsg_IsNoResponders(reply) && natsMsgHeader_Get(reply, "Kc-Error", &error) != NATS_OK;
    natsMsg_Destroy(reply);
    natsMsg_Destroy(message);
    return acked;
}

/* The clients of a case, joined by the case or, if it failed, its teardown
 * (they use the slots it frees). */
static pthread_t threads[CLIENTS_MAX];
static int threads_running;
static atomic_bool clients_stop;

static void clients_join(void)
{
    for (int client = 0; client < threads_running; client++)
        pthread_join(threads[client], NULL);
    threads_running = 0;
}

static void *client_main(void *argument)
{
    int client = (int)(intptr_t)argument;
    natsConnection *connection = NULL;
    if (connect_from(&connection, client) != NATS_OK) return NULL;
    int64_t deadline_ms = harness_now_ms() + RUN_TIMEOUT_MS;
    for (int index = client; index < slot_count && harness_now_ms() < deadline_ms;
         index += client_count) {
        while (!atomic_load(&clients_stop) && !submit_once(connection, index) &&
               harness_now_ms() < deadline_ms)
            harness_sleep_ms(RETRY_PAUSE_MS);
        if (atomic_load(&clients_stop) || harness_now_ms() >= deadline_ms) break;
        slots[index].acked_ms = harness_now_ms();
        atomic_store(&slots[index].acked, true);
        atomic_fetch_add(&acked_total, 1);
    }
    natsConnection_Destroy(connection);
    return NULL;
}

static void slots_make(int count)
{
    slots = calloc((size_t)count, sizeof *slots);
    assert_non_null(slots);
    slot_count = count;
    atomic_store(&acked_total, 0);
    for (int index = 0; index < count; index++) {
        unsigned char bytes[16];
        for (int byte = 0; byte < 16; byte++)
            bytes[byte] = (unsigned char)(rand() & 0xff);
        bytes[6] = (unsigned char)((bytes[6] & 0x0f) | 0x40); /* v4 */
        bytes[8] = (unsigned char)((bytes[8] & 0x3f) | 0x80);
        snprintf(slots[index].id, ID_BYTES,
                 "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", bytes[0],
                 bytes[1], bytes[2], bytes[3], bytes[4], bytes[5], bytes[6], bytes[7], bytes[8],
                 bytes[9], bytes[10], bytes[11], bytes[12], bytes[13], bytes[14], bytes[15]);
    }
}

static int env_int(const char *name, int fallback)
{
    const char *text = getenv(name);
    return text != NULL && atoi(text) > 0 ? atoi(text) : fallback;
}

/* ======================================================================= checks */

/* The longest pause between acknowledgements from fault_ms - 100 on. */
static long long takeover_ms(int64_t fault_ms)
{
    int64_t *times = calloc((size_t)slot_count, sizeof *times);
    assert_non_null(times);
    int count = 0;
    for (int index = 0; index < slot_count; index++)
        if (slots[index].acked_ms >= fault_ms - 100) times[count++] = slots[index].acked_ms;
    for (int a = 1; a < count; a++) /* insertion sort: a few thousand */
        for (int b = a; b > 0 && times[b - 1] > times[b]; b--) {
            int64_t swap = times[b];
            times[b] = times[b - 1];
            times[b - 1] = swap;
        }
    long long longest = count > 0 ? (long long)(times[0] - fault_ms) : -1;
    for (int index = 1; index < count; index++)
        if (times[index] - times[index - 1] > longest) longest = times[index] - times[index - 1];
    free(times);
    return longest;
}

/* Every request acknowledged, applied once, its reply recorded. */
static void check_replies(void)
{
    for (int index = 0; index < slot_count; index++)
        assert_true(atomic_load(&slots[index].acked));
    int64_t deadline_ms = harness_now_ms() + REPLY_TIMEOUT_MS;
    for (int index = 0; index < slot_count; index++) {
        for (;;) {
            natsMsg *reply = NULL;
            const char *error = NULL;
            char expected[16];
            snprintf(expected, sizeof expected, "%d", index);
            bool replied =
                natsConnection_RequestString(&reply, service_connection, "kc.reply.get",
                                             slots[index].id, SUBMIT_TIMEOUT_MS) == NATS_OK &&
                !natsMsg_IsNoResponders(reply) &&
                natsMsgHeader_Get(reply, "Kc-Error", &error) != NATS_OK &&
                natsMsg_GetDataLength(reply) == (int)strlen(expected) &&
                memcmp(natsMsg_GetData(reply), expected, strlen(expected)) == 0;
            natsMsg_Destroy(reply);
            if (replied) break;
            if (harness_now_ms() >= deadline_ms)
                fail_msg("request %d (%s) has no recorded reply", index, slots[index].id);
            harness_sleep_ms(POLL_MS);
        }
    }
    int redelivered = 0;
    pthread_mutex_lock(&service_lock);
    for (int index = 0; index < slot_count; index++) {
        assert_int_equal(slots[index].effects, 1);
        redelivered += slots[index].deliveries - 1;
    }
    pthread_mutex_unlock(&service_lock);
    fprintf(stderr,
            "jsqueue: %s: %d requests acknowledged, replied, applied once (%d extra "
            "deliveries)\n",
            case_name, slot_count, redelivered);
}

/* Runs kcobra with the queue flags for the stream; returns its exit status
 * and its stdout in output (its stderr is shown when it fails). */
static int kcobra_queue(const char *action, const char *extra, char *output, size_t output_size)
{
    char errors[HARNESS_PATH_SIZE_MAX + 64];
    snprintf(errors, sizeof errors, "%s/%s-%s.err", work_directory, case_name, action);
    char command[JS_CLUSTER_URLS_BYTES_MAX + 2 * HARNESS_PATH_SIZE_MAX + 256];
    snprintf(command, sizeof command,
             "'%s' queue %s --storage jetstream --server '%s' --stream %s %s 2>'%s'", kcobra_binary,
             action, all_urls, stream, extra, errors);
    FILE *pipe = popen(command, "r");
    assert_non_null(pipe);
    size_t used = fread(output, 1, output_size - 1, pipe);
    output[used] = '\0';
    int status = pclose(pipe);
    int exit_status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    if (exit_status != 0) {
        snprintf(command, sizeof command, "cat '%s' >&2", errors);
        if (system(command) != 0) fprintf(stderr, "jsqueue: no %s\n", errors);
    }
    return exit_status;
}

/* verify, stats and dump on the stream; returns how many writer terms
 * stats counts (verify fails if one went back: a deposed writer wrote). */
static long long check_cli(void)
{
    char *output = malloc(OUTPUT_BYTES_MAX);
    assert_non_null(output);
    assert_int_equal(kcobra_queue("verify", "", output, OUTPUT_BYTES_MAX), 0);
    assert_non_null(strstr(output, "sound"));
    assert_int_equal(kcobra_queue("stats", "--json", output, OUTPUT_BYTES_MAX), 0);
    json_error_t json_error;
    json_t *stats = json_loads(output, 0, &json_error);
    assert_non_null(stats);
    assert_int_equal(json_integer_value(json_object_get(stats, "requests")), slot_count);
    assert_int_equal(json_integer_value(json_object_get(stats, "replied")), slot_count);
    assert_int_equal(json_integer_value(json_object_get(stats, "pending")), 0);
    long long records = json_integer_value(json_object_get(stats, "records"));
    long long terms = json_integer_value(json_object_get(stats, "writer_terms"));
    assert_int_equal(json_integer_value(json_object_get(stats, "term_regressions")), 0);
    fprintf(stderr,
            "jsqueue: %s: the stream holds %lld records: %lld replies, %lld redeliveries; %lld "
            "writer terms, never going back\n",
            case_name, records, (long long)json_integer_value(json_object_get(stats, "replies")),
            (long long)json_integer_value(json_object_get(stats, "redeliveries")), terms);
    json_decref(stats);
    assert_int_equal(kcobra_queue("dump", "", output, OUTPUT_BYTES_MAX), 0);
    char path[HARNESS_PATH_SIZE_MAX + 64];
    snprintf(path, sizeof path, "%s/%s-dump.txt", work_directory, case_name);
    FILE *file = fopen(path, "w"); /* kept with KC_INTEGRATION_KEEP */
    if (file != NULL) {
        fputs(output, file);
        fclose(file);
    }
    long long lines = 0;
    for (const char *cursor = output; (cursor = strchr(cursor, '\n')) != NULL; cursor++)
        lines++;
    /* At least one line per record counted by stats: a lease that changes
     * hands between the two commands appends a term marker (seen after a
     * partition, when the stream's leader moves again once the paused
     * server is back). */
    assert_true(lines >= records);
    free(output);
    return terms;
}

/* ======================================================================= cases */

static void wait_acked(int count)
{
    int64_t deadline_ms = harness_now_ms() + RUN_TIMEOUT_MS;
    while (atomic_load(&acked_total) < count && harness_now_ms() < deadline_ms)
        harness_sleep_ms(POLL_MS / 5);
}

typedef enum fault_kind {
    FAULT_KILL,   /* kill -9 of the active persister */
    FAULT_PAUSE,  /* SIGSTOP of it, SIGCONT once the other serves */
    FAULT_LEADER, /* kill -9 of the nats-server leading the stream */
    FAULT_SERVER, /* SIGSTOP of the active persister's server for longer than the lease */
} fault_kind;

static const char *const FAULT_NAMES[] = {
    "kill -9 of the active persister", "SIGSTOP of the active persister",
    "kill -9 of the server leading the stream", "SIGSTOP of the active persister's server"};

/* The fault; returns the persister serving after it. */
static int fault(int active, fault_kind kind)
{
    if (kind == FAULT_KILL) {
        persister_kill(active);
        return active_persister(active, ACTIVE_TIMEOUT_MS);
    }
    if (kind == FAULT_SERVER) {
        /* A partition, seen from the others: the active one's server (the
         * service is on server 2) and the active persister itself stop for
         * longer than the lease. Stopping the persister too is what cuts it
         * off: nats.c learns the other servers from the cluster and would
         * otherwise reconnect through one of them, which is no partition.
         * The other persister takes over; the deposed one, back with its
         * server, writes nothing after its term (checked by verify: terms
         * never go back on the stream) and steps down. */
        int server = active % JS_CLUSTER_SIZE;
        assert_true(server != 2);
        assert_int_equal(js_cluster_pause(&cluster, server), HARNESS_OK);
        assert_int_equal(kill(persisters[active], SIGSTOP), 0);
        harness_sleep_ms(SERVER_PAUSE_MS);
        int serving = active_persister(active, ACTIVE_TIMEOUT_MS);
        assert_int_equal(js_cluster_resume(&cluster, server), HARNESS_OK);
        assert_int_equal(kill(persisters[active], SIGCONT), 0);
        return serving;
    }
    if (kind == FAULT_LEADER) {
        int leader = js_cluster_stream_leader(&cluster, stream, ACTIVE_TIMEOUT_MS);
        assert_true(leader >= 0);
        assert_int_equal(js_cluster_kill(&cluster, leader), HARNESS_OK);
        return active_persister(-1, RUN_TIMEOUT_MS);
    }
    assert_int_equal(kill(persisters[active], SIGSTOP), 0);
    int successor = active_persister(active, ACTIVE_TIMEOUT_MS);
    harness_sleep_ms(PAUSE_EXTRA_MS);
    assert_int_equal(kill(persisters[active], SIGCONT), 0);
    return successor;
}

/* The case's persister log contains text. */
static bool log_has(int index, const char *text)
{
    char path[HARNESS_PATH_SIZE_MAX + 64];
    snprintf(path, sizeof path, "%s/%s-persister%d.log", work_directory, case_name, index);
    FILE *file = fopen(path, "r");
    if (file == NULL) return false;
    char line[1024];
    bool found = false;
    while (!found && fgets(line, sizeof line, file) != NULL)
        found = strstr(line, text) != NULL;
    fclose(file);
    return found;
}

static void run_case(const char *name, fault_kind kind, int clients, int submits)
{
    snprintf(case_name, sizeof case_name, "%s", name);
    snprintf(stream, sizeof stream, "KCQ_%s", name);
    client_count = clients;
    slots_make(submits);
    service_start();
    persister_spawn(0);
    int active = active_persister(-1, ACTIVE_TIMEOUT_MS);
    assert_int_equal(active, 0);
    persister_spawn(1);
    int64_t start_ms = harness_now_ms();
    for (int client = 0; client < clients; client++)
        assert_int_equal(
            pthread_create(&threads[client], NULL, client_main, (void *)(intptr_t)client), 0);
    threads_running = clients;
    wait_acked(submits / 2);
    int64_t fault_ms = harness_now_ms();
    int successor = fault(active, kind);
    assert_true(successor >= 0);
    if (kind != FAULT_LEADER) assert_int_equal(successor, 1);
    clients_join();
    int64_t end_ms = harness_now_ms();
    fprintf(stderr,
            "jsqueue: %s: %d durable submits from %d clients in %lld ms (%.0f/s with the fault); "
            "take-over: acknowledgements paused %lld ms after the %s\n",
            name, submits, clients, (long long)(end_ms - start_ms),
            submits * 1000.0 / (double)(end_ms - start_ms + 1), takeover_ms(fault_ms),
            FAULT_NAMES[kind]);
    check_replies();
    assert_true(check_cli() >= (kind == FAULT_LEADER ? 1 : 2));
    if (kind == FAULT_PAUSE || kind == FAULT_SERVER) assert_true(log_has(active, "lease lost"));
}

static int case_teardown(void **state)
{
    (void)state;
    atomic_store(&clients_stop, true);
    clients_join();
    atomic_store(&clients_stop, false);
    for (int index = 0; index < PERSISTERS; index++)
        persister_stop(index);
    service_stop();
    free(slots);
    slots = NULL;
    slot_count = 0;
    redelivery = "3s";
    attempts = "10";
    atomic_store(&silent, false);
    notify_inbox[0] = '\0';
    return 0;
}

static void test_local_killed(void **state)
{
    (void)state;
    run_case("local", FAULT_KILL, env_int("KC_JSQUEUE_CLIENTS", LOCAL_CLIENTS),
             env_int("KC_JSQUEUE_SUBMITS", LOCAL_SUBMITS));
}

static void cluster_case(const char *name, fault_kind kind)
{
    run_case(name, kind, env_int("KC_JSQUEUE_CLIENTS", CLUSTER_CLIENTS),
             env_int("KC_JSQUEUE_SUBMITS", CLUSTER_SUBMITS));
}

static void test_cluster_killed(void **state)
{
    (void)state;
    cluster_case("killed", FAULT_KILL);
}

static void test_cluster_paused(void **state)
{
    (void)state;
    cluster_case("paused", FAULT_PAUSE);
}

static void test_cluster_leader_killed(void **state)
{
    (void)state;
    cluster_case("leader", FAULT_LEADER);
}

static void test_cluster_server_paused(void **state)
{
    (void)state;
    /* Whole again: the leader case leaves the server it killed down. */
    for (int index = 0; index < JS_CLUSTER_SIZE; index++)
        if (!js_cluster_running(&cluster, index))
            assert_int_equal(js_cluster_restart(&cluster, index), HARNESS_OK);
    assert_int_equal(js_cluster_wait_ready(&cluster, ACTIVE_TIMEOUT_MS), HARNESS_OK);
    persisters_pinned = true;
    cluster_case("partition", FAULT_SERVER);
    persisters_pinned = false;
}

/* Persister 0 active, 1 standing by; then one client submits every slot,
 * each acknowledged. */
static void persisters_start_and_submit(void)
{
    persister_spawn(0);
    assert_int_equal(active_persister(-1, ACTIVE_TIMEOUT_MS), 0);
    persister_spawn(1);
    client_main((void *)(intptr_t)0);
    assert_int_equal(atomic_load(&acked_total), slot_count);
}

/* kc.reply.get's Kc-Error for the request at index starts with prefix. */
static bool reply_error_is(int index, const char *prefix)
{
    natsMsg *reply = NULL;
    const char *error = NULL;
    bool matches = natsConnection_RequestString(&reply, service_connection, "kc.reply.get",
                                                slots[index].id, SUBMIT_TIMEOUT_MS) == NATS_OK &&
                   natsMsgHeader_Get(reply, "Kc-Error", &error) == NATS_OK &&
                   strncmp(error, prefix, strlen(prefix)) == 0;
    natsMsg_Destroy(reply);
    return matches;
}

static void wait_all_dead(void)
{
    int64_t deadline_ms = harness_now_ms() + RUN_TIMEOUT_MS;
    for (int index = 0; index < slot_count; index++)
        while (!reply_error_is(index, "410")) {
            assert_true(harness_now_ms() < deadline_ms);
            harness_sleep_ms(POLL_MS);
        }
}

/* Dead requests on the stream: they die at a service that never answers
 * (tombstones), stay dead across a take-over (the successor rebuilds them
 * from the stream), and a requeue (markers on the stream) brings them back
 * to a service that answers. */
static void test_local_dead(void **state)
{
    (void)state;
    snprintf(case_name, sizeof case_name, "dead");
    snprintf(stream, sizeof stream, "KCQ_dead");
    redelivery = "200ms";
    attempts = "2";
    atomic_store(&silent, true);
    client_count = 1;
    slots_make(DEAD_SUBMITS);
    service_start();
    persisters_start_and_submit();
    wait_all_dead();
    persister_kill(0);
    assert_int_equal(active_persister(0, ACTIVE_TIMEOUT_MS), 1);
    wait_all_dead(); /* still dead on the successor: tombstones read back */
    atomic_store(&silent, false);
    natsMsg *reply = NULL;
    assert_int_equal(natsConnection_RequestString(&reply, service_connection,
                                                  "kc.sys.queue.requeue",
                                                  "{\"type\":\"" REQUEST_TYPE "\"}", 5000),
                     NATS_OK);
    json_error_t json_error;
    json_t *answer =
        json_loadb(natsMsg_GetData(reply), (size_t)natsMsg_GetDataLength(reply), 0, &json_error);
    natsMsg_Destroy(reply);
    assert_int_equal(json_integer_value(json_object_get(answer, "requeued")), slot_count);
    json_decref(answer);
    check_replies();
    assert_true(check_cli() >= 2);
}

/* ======================================================================= restart */

/* What kc.reply.get says of the request at index: its state header, the
 * code of its Kc-Error (not the text: it counts attempts) and the payload. */
static void reply_state(int index, char *out, size_t out_size)
{
    natsMsg *reply = NULL;
    const char *state = NULL, *error = NULL;
    out[0] = '\0';
    if (natsConnection_RequestString(&reply, service_connection, "kc.reply.get", slots[index].id,
                                     SUBMIT_TIMEOUT_MS) != NATS_OK ||
        natsMsg_IsNoResponders(reply)) {
        natsMsg_Destroy(reply);
        return;
    }
    if (natsMsgHeader_Get(reply, "Kc-Queue-State", &state) != NATS_OK) state = "-";
    if (natsMsgHeader_Get(reply, "Kc-Error", &error) != NATS_OK) error = "-";
    snprintf(out, out_size, "%s|%.3s|%.*s", state, error, natsMsg_GetDataLength(reply),
             natsMsg_GetData(reply) != NULL ? natsMsg_GetData(reply) : "");
    natsMsg_Destroy(reply);
}

/* A reply_state answer is as expected: a state's prefix, or a replied
 * request's "|payload" at the end. */
static bool state_is(const char *actual, const char *expected)
{
    if (expected[0] != '|') return strncmp(actual, expected, strlen(expected)) == 0;
    size_t length = strlen(actual), tail = strlen(expected);
    return strncmp(actual, "replied|", 8) == 0 && length >= tail &&
           strcmp(actual + length - tail, expected) == 0;
}

/* Waits until kc.reply.get says of every request what its kind leads to:
 * replied (its payload), dead (410) or pending (no reply yet). */
static void wait_settled(bool later_served)
{
    int64_t deadline_ms = harness_now_ms() + REPLY_TIMEOUT_MS;
    for (int index = 0; index < slot_count; index++) {
        char expected[64], actual[256];
        if (slots[index].mute)
            snprintf(expected, sizeof expected, "dead|410|");
        else if (slots[index].type != NULL && !later_served)
            snprintf(expected, sizeof expected, "pending|425|");
        else
            snprintf(expected, sizeof expected, "|%d", index);
        for (reply_state(index, actual, sizeof actual); !state_is(actual, expected);
             reply_state(index, actual, sizeof actual)) {
            if (harness_now_ms() >= deadline_ms)
                fail_msg("request %d: kc.reply.get says '%s', expected '%s'", index, actual,
                         expected);
            harness_sleep_ms(POLL_MS);
        }
    }
}

/* The stats that must survive a restart, as one line. */
static void stats_line(char *out, size_t out_size)
{
    char *output = malloc(OUTPUT_BYTES_MAX);
    assert_non_null(output);
    assert_int_equal(kcobra_queue("stats", "--json", output, OUTPUT_BYTES_MAX), 0);
    json_error_t json_error;
    json_t *stats = json_loads(output, 0, &json_error);
    assert_non_null(stats);
    snprintf(out, out_size,
             "requests %lld replied %lld pending %lld dead %lld replies %lld "
             "tombstones %lld",
             (long long)json_integer_value(json_object_get(stats, "requests")),
             (long long)json_integer_value(json_object_get(stats, "replied")),
             (long long)json_integer_value(json_object_get(stats, "pending")),
             (long long)json_integer_value(json_object_get(stats, "dead")),
             (long long)json_integer_value(json_object_get(stats, "replies")),
             (long long)json_integer_value(json_object_get(stats, "tombstones")));
    json_decref(stats);
    free(output);
}

/* Stops the nats-server(s) and starts them again on the same stores. */
static void servers_restart(void)
{
    if (!clustered) {
        assert_int_equal(harness_server_stop(&single), HARNESS_OK);
        assert_int_equal(harness_server_start(&single, single_config), HARNESS_OK);
        return;
    }
    for (int index = 0; index < JS_CLUSTER_SIZE; index++)
        assert_int_equal(harness_server_stop(&cluster.nodes[index].server), HARNESS_OK);
    /* All at once: one alone has no quorum to be ready with. */
    for (int index = 0; index < JS_CLUSTER_SIZE; index++)
        assert_int_equal(
            harness_server_start(&cluster.nodes[index].server, cluster.nodes[index].config),
            HARNESS_OK);
    assert_int_equal(js_cluster_wait_ready(&cluster, ACTIVE_TIMEOUT_MS), HARNESS_OK);
}

/* Requests of three kinds: replied, dead (the service never answers them),
 * pending (their type has no service yet). Then everything stops: the
 * persisters, the service, the nats-server(s); and starts again from disk.
 * The stream's counts, its records and kc.reply.get's answers are the same,
 * the dead stay dead, and the pending are replied once a service comes. */
static void restart_case(void)
{
    snprintf(case_name, sizeof case_name, "restart");
    snprintf(stream, sizeof stream, "KCQ_restart");
    redelivery = "200ms";
    attempts = "2";
    client_count = 1;
    slots_make(RESTART_SUBMITS);
    for (int index = 0; index < slot_count; index++) {
        slots[index].mute = index % 3 == 1;
        slots[index].type = index % 3 == 2 ? "later" : NULL;
    }
    service_start();
    persisters_start_and_submit();
    wait_settled(false);
    char stats_before[256], stats_after[256];
    stats_line(stats_before, sizeof stats_before);
    char *dump_before = malloc(OUTPUT_BYTES_MAX), *dump_after = malloc(OUTPUT_BYTES_MAX);
    char(*answers)[256] = calloc((size_t)slot_count, sizeof *answers);
    assert_true(dump_before != NULL && dump_after != NULL && answers != NULL);
    assert_int_equal(kcobra_queue("dump", "", dump_before, OUTPUT_BYTES_MAX), 0);
    for (int index = 0; index < slot_count; index++)
        reply_state(index, answers[index], sizeof answers[index]);

    persister_stop(0);
    persister_stop(1);
    service_stop();
    servers_restart();
    service_start();
    persister_spawn(1);
    persister_spawn(0);
    assert_true(active_persister(-1, ACTIVE_TIMEOUT_MS) >= 0);

    wait_settled(false);
    stats_line(stats_after, sizeof stats_after);
    assert_string_equal(stats_after, stats_before);
    assert_int_equal(kcobra_queue("dump", "", dump_after, OUTPUT_BYTES_MAX), 0);
    /* The records from before, in the same order; at most markers after. */
    assert_int_equal(strncmp(dump_after, dump_before, strlen(dump_before)), 0);
    for (int index = 0; index < slot_count; index++) {
        char actual[256];
        reply_state(index, actual, sizeof actual);
        assert_string_equal(actual, answers[index]);
    }
    fprintf(stderr, "jsqueue: restart: the same after a restart from disk: %s\n", stats_after);

    /* Serving goes on: the pending ones are replied, the dead stay dead. */
    assert_int_equal(natsConnection_QueueSubscribe(&later_subscription, service_connection,
                                                   "kc.req.later", "later", on_work, NULL),
                     NATS_OK);
    assert_int_equal(natsConnection_FlushTimeout(service_connection, 5000), NATS_OK);
    wait_settled(true);
    for (int index = 0; index < slot_count; index++)
        assert_int_equal(slots[index].effects, 1);
    assert_int_equal(kcobra_queue("verify", "", dump_after, OUTPUT_BYTES_MAX), 0);
    free(answers);
    free(dump_after);
    free(dump_before);
}

/* Kc-Notify across a take-over: requests with a Kc-Notify wait for a
 * service of their type; the active persister is killed (kill -9); once a
 * service comes, its successor records the replies and forwards each to the
 * notify inbox, which it knows from the stream (a header beside the record). */
static void test_local_notify(void **state)
{
    (void)state;
    snprintf(case_name, sizeof case_name, "notify");
    snprintf(stream, sizeof stream, "KCQ_notify");
    client_count = 1;
    slots_make(NOTIFY_SUBMITS);
    for (int index = 0; index < slot_count; index++)
        slots[index].type = "later";
    service_start();
    natsInbox *inbox = NULL;
    natsSubscription *notified = NULL;
    assert_int_equal(natsInbox_Create(&inbox), NATS_OK);
    snprintf(notify_inbox, sizeof notify_inbox, "%s", (const char *)inbox);
    natsInbox_Destroy(inbox);
    assert_int_equal(natsConnection_SubscribeSync(&notified, service_connection, notify_inbox),
                     NATS_OK);
    natsSubscription_SetPendingLimits(notified, -1, -1);
    persisters_start_and_submit();
    wait_settled(false); /* all pending, none forwarded */
    persister_kill(0);
    assert_int_equal(active_persister(0, ACTIVE_TIMEOUT_MS), 1);
    assert_int_equal(natsConnection_QueueSubscribe(&later_subscription, service_connection,
                                                   "kc.req.later", "later", on_work, NULL),
                     NATS_OK);
    int forwarded = 0;
    int64_t deadline_ms = harness_now_ms() + REPLY_TIMEOUT_MS;
    bool *seen = calloc((size_t)slot_count, sizeof *seen);
    assert_non_null(seen);
    while (forwarded < slot_count && harness_now_ms() < deadline_ms) {
        natsMsg *message = NULL;
        if (natsSubscription_NextMsg(&message, notified, POLL_MS * 10) != NATS_OK) continue;
        const char *id = NULL;
        int index = atoi(natsMsg_GetData(message) != NULL ? natsMsg_GetData(message) : "-1");
        if (index >= 0 && index < slot_count && !seen[index] &&
            natsMsgHeader_Get(message, "Kc-Id", &id) == NATS_OK &&
            strcmp(id, slots[index].id) == 0) {
            seen[index] = true;
            forwarded++;
        }
        natsMsg_Destroy(message);
    }
    free(seen);
    natsSubscription_Unsubscribe(notified);
    natsSubscription_Destroy(notified);
    notify_inbox[0] = '\0';
    fprintf(stderr, "jsqueue: notify: %d of %d replies forwarded by the successor\n", forwarded,
            slot_count);
    assert_int_equal(forwarded, slot_count);
    wait_settled(true);
}

static void test_local_restart(void **state)
{
    (void)state;
    restart_case();
}

static void test_cluster_restart(void **state)
{
    (void)state;
    for (int index = 0; index < JS_CLUSTER_SIZE; index++)
        if (!js_cluster_running(&cluster, index))
            assert_int_equal(js_cluster_restart(&cluster, index), HARNESS_OK);
    restart_case();
}

/* ======================================================================= bench */

/* Durable submits per second with no fault (the persister, its service and
 * the clients all on this machine). */
static double throughput(const char *name, const char *kind, bool on_cluster)
{
    storage = kind;
    clustered = on_cluster;
    snprintf(case_name, sizeof case_name, "%s", name);
    snprintf(stream, sizeof stream, "KCQ_%s", name);
    client_count = env_int("KC_JSQUEUE_CLIENTS", CLIENTS_MAX);
    slots_make(env_int("KC_JSQUEUE_SUBMITS", 5000));
    service_start();
    persister_spawn(0);
    assert_int_equal(active_persister(-1, ACTIVE_TIMEOUT_MS), 0);
    int64_t start_ms = harness_now_ms();
    for (int client = 0; client < client_count; client++)
        assert_int_equal(
            pthread_create(&threads[client], NULL, client_main, (void *)(intptr_t)client), 0);
    threads_running = client_count;
    clients_join();
    double rate = slot_count * 1000.0 / (double)(harness_now_ms() - start_ms + 1);
    assert_int_equal(atomic_load(&acked_total), slot_count);
    fprintf(stderr, "jsqueue bench: %-28s %6d durable submits from %d clients: %8.0f/s\n", name,
            slot_count, client_count, rate);
    case_teardown(NULL);
    return rate;
}

static void test_bench(void **state)
{
    (void)state;
    double local = throughput("local-disk", "local", false);
    double single_r1 = throughput("jetstream-R1-one-server", "jetstream", false);
    double cluster_r3 = throughput("jetstream-R3-three-servers", "jetstream", true);
    fprintf(stderr,
            "jsqueue bench: R3 cluster / local disk = %.2f; R1 one server / local disk = %.2f\n",
            cluster_r3 / local, single_r1 / local);
}

/* ======================================================================= fixtures */

static int work_directory_make(void)
{
    const char *temporary = getenv("TMPDIR");
    snprintf(work_directory, sizeof work_directory, "%s/kc-jsqueue-XXXXXX",
             temporary != NULL && temporary[0] != '\0' ? temporary : "/tmp");
    return mkdtemp(work_directory) != NULL ? 0 : -1;
}

static int local_setup(void **state)
{
    (void)state;
    if (work_directory_make() != 0 ||
        harness_server_init(&single, getenv("KC_NATS_SERVER")) != HARNESS_OK)
        return -1;
    char store[HARNESS_PATH_SIZE_MAX];
    harness_server_path(&single, "store", store, sizeof store);
    snprintf(single_config, sizeof single_config, "jetstream {\n  store_dir: \"%s\"\n}\n", store);
    if (harness_server_start(&single, single_config) != HARNESS_OK) return -1;
    snprintf(all_urls, sizeof all_urls, "%s", single.url);
    return 0;
}

static int cluster_setup(void **state)
{
    (void)state;
    if (work_directory_make() != 0 ||
        js_cluster_start(&cluster, getenv("KC_NATS_SERVER")) != HARNESS_OK)
        return -1;
    snprintf(all_urls, sizeof all_urls, "%s", cluster.urls);
    return 0;
}

static int bench_setup(void **state)
{
    if (local_setup(state) != 0) return -1;
    if (js_cluster_start(&cluster, getenv("KC_NATS_SERVER")) != HARNESS_OK) return -1;
    snprintf(all_urls, sizeof all_urls, "%s", single.url);
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    js_cluster_cleanup(&cluster); /* idempotent, also when never started */
    harness_server_cleanup(&single);
    if (getenv(HARNESS_KEEP_ENVIRONMENT) == NULL) {
        char command[HARNESS_PATH_SIZE_MAX + 16];
        snprintf(command, sizeof command, "rm -rf '%s'", work_directory);
        if (system(command) != 0) fprintf(stderr, "jsqueue: could not remove %s\n", work_directory);
    } else {
        fprintf(stderr, "jsqueue: kept %s\n", work_directory);
    }
    return 0;
}

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: %s NATS_SERVER KCOBRA local|cluster\n", argv[0]);
        return SKIP_EXIT_CODE;
    }
    setenv("KC_NATS_SERVER", argv[1], 1);
    kcobra_binary = argv[2];
    clustered = strcmp(argv[3], "cluster") == 0;
    bool bench = strcmp(argv[3], "bench") == 0;
    signal(SIGPIPE, SIG_IGN);
    srand((unsigned)getpid() ^ (unsigned)harness_now_ms());
    const struct CMUnitTest local_tests[] = {
        cmocka_unit_test_teardown(test_local_killed, case_teardown),
        cmocka_unit_test_teardown(test_local_dead, case_teardown),
        cmocka_unit_test_teardown(test_local_restart, case_teardown),
        cmocka_unit_test_teardown(test_local_notify, case_teardown),
    };
    const struct CMUnitTest cluster_tests[] = {
        cmocka_unit_test_teardown(test_cluster_killed, case_teardown),
        cmocka_unit_test_teardown(test_cluster_paused, case_teardown),
        cmocka_unit_test_teardown(test_cluster_leader_killed, case_teardown),
        cmocka_unit_test_teardown(test_cluster_server_paused, case_teardown),
        cmocka_unit_test_teardown(test_cluster_restart, case_teardown),
    };
    const struct CMUnitTest bench_tests[] = {cmocka_unit_test(test_bench)};
    int failed = bench       ? cmocka_run_group_tests(bench_tests, bench_setup, group_teardown)
                 : clustered ? cmocka_run_group_tests(cluster_tests, cluster_setup, group_teardown)
                             : cmocka_run_group_tests(local_tests, local_setup, group_teardown);
    nats_Close();
    return failed;
}
