/* crash_test.c - the persister's promise, end to end through the real
 * kcobrad, libkingcobra and disk: an acknowledged request is never lost and
 * its handler's effect happens once.
 *
 * crash: kcobrad (harness) with a fresh data directory; a libkingcobra
 *   service of type "crash" in this process counts each Kc-Id it handles;
 *   SUBMITTERS nats.c clients submit REQUESTS_PER_RUN durable requests at
 *   full rate while a killer thread SIGKILLs kcobrad at a random moment
 *   (seeded; the seed is printed, KC_CRASH_SEED repeats it) and restarts it
 *   on the same port and directory. After RUNS such runs: every
 *   acknowledged id has a recorded reply (kc.reply.get), exactly one reply
 *   record in the log and exactly one handler effect; no id has two; and
 *   `kcobra queue verify` exits 0.
 * disk_full: kcobrad's file-size limit is lowered (prlimit) below its
 *   segment: submits then fail with 507 and are not acknowledged; when the
 *   limit is lifted submits succeed again; every acknowledged id is replied
 *   and no refused id is known to the persister.
 *
 * Usage: crash_test KCOBRAD KCOBRA */
#include <errno.h>
#include <inttypes.h>
#include <nats/nats.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../integration/harness.h"
#include "kingcobra/kingcobra.h"
#include "queue/index.h"
#include "queue/persister.h"
#include "queue/recovery.h"
#include "service/headers.h"
#include "service/uuid.h"

enum {
    RUNS = 3,
    REQUESTS_PER_RUN = 10000,
    SUBMITTERS = 8,
    SUBMIT_TIMEOUT_MS = 1000,
    KILL_AFTER_MS_MIN = 100,
    KILL_AFTER_MS_SPAN = 1500,
    REPLY_DEADLINE_MS = 60000,
    DISK_LIMIT_BYTES = 256 * 1024,
    DISK_PAYLOAD_BYTES = 4096,
    DISK_SUBMITS = 120,
    DISK_AFTER_SUBMITS = 20,
    TOTAL_MAX = RUNS * REQUESTS_PER_RUN + DISK_SUBMITS + DISK_AFTER_SUBMITS,
};

#define CHECK(condition, ...)                                                                      \
    do {                                                                                           \
        if (!(condition)) {                                                                        \
            fprintf(stderr, "crash_test: FAILED at line %d: ", __LINE__);                          \
            fprintf(stderr, __VA_ARGS__);                                                          \
            fprintf(stderr, "\n");                                                                 \
            exit(1);                                                                               \
        }                                                                                          \
    } while (0)

static const char CONFIG[] = "persister {\n"
                             "  redelivery_timeout: \"1s\"\n"
                             "  redelivery_backoff_max: \"2s\"\n"
                             "  max_attempts: 100\n"
                             "}\n";
static const char DISK_CONFIG[] = "persister {\n"
                                  "  segment_size: 1048576\n"
                                  "  redelivery_timeout: \"1s\"\n"
                                  "}\n";

/* ---- the test service: effects counted by Kc-Id ---- */

static pthread_mutex_t effects_lock = PTHREAD_MUTEX_INITIALIZER;
static kci_index effects;

static void handle(const kc_request *request, kc_response *response, void *closure)
{
    (void)closure;
    kci_uuid id;
    const char *text = kc_request_id(request);
    if (text == NULL || !kci_uuid_parse(text, strlen(text), &id)) return;
    pthread_mutex_lock(&effects_lock);
    bool created = false;
    kci_index_entry *entry = kci_index_insert(&effects, &id, &created);
    if (entry != NULL) {
        entry->state = KCI_ENTRY_PENDING;
        entry->attempts++;
    }
    pthread_mutex_unlock(&effects_lock);
    kc_response_set_payload(response, "done", 4);
}

static uint16_t effects_of(const kci_uuid *id)
{
    pthread_mutex_lock(&effects_lock);
    kci_index_entry *entry = kci_index_find(&effects, id);
    uint16_t count = entry != NULL ? entry->attempts : 0;
    pthread_mutex_unlock(&effects_lock);
    return count;
}

/* ---- submits ---- */

typedef struct submitted {
    kci_uuid id;
    bool acknowledged;
    int error_code;
} submitted;

static submitted submits[TOTAL_MAX];
static atomic_int next_submit;
static int submit_end;
static harness_server server;

static natsConnection *connect_raw(void)
{
    natsOptions *options = NULL;
    natsConnection *connection = NULL;
    CHECK(natsOptions_Create(&options) == NATS_OK, "options");
    natsOptions_SetURL(options, server.url);
    natsOptions_SetMaxReconnect(options, -1);
    natsOptions_SetReconnectWait(options, 50);
    natsOptions_SetTimeout(options, 2000);
    natsOptions_SetAllowReconnect(options, true);
    natsStatus status = natsConnection_Connect(&connection, options);
    natsOptions_Destroy(options);
    CHECK(status == NATS_OK, "connect to %s: %s", server.url, natsStatus_GetText(status));
    return connection;
}

static int error_code_of(natsMsg *reply)
{
    const char *error = NULL;
    if (natsMsgHeader_Get(reply, KCI_HEADER_ERROR, &error) != NATS_OK || error == NULL) return 0;
    return atoi(error);
}

static void submit_one(natsConnection *connection, submitted *entry, const void *payload,
                       int payload_length)
{
    char id[KC_UUID_TEXT_BYTES + 1];
    kci_uuid_v7(&entry->id);
    kci_uuid_format(&entry->id, id);
    natsMsg *message = NULL, *reply = NULL;
    if (natsMsg_Create(&message, "kc.submit.crash", NULL, payload, payload_length) != NATS_OK)
        return;
    natsMsgHeader_Set(message, KCI_HEADER_ID, id);
    natsMsgHeader_Set(message, KCI_HEADER_NODE, "crash-test");
    natsStatus status = natsConnection_RequestMsg(&reply, connection, message, SUBMIT_TIMEOUT_MS);
    if (status == NATS_OK) {
        entry->error_code = error_code_of(reply);
        const char *acked_id = NULL;
        entry->acknowledged = entry->error_code == 0 &&
                              natsMsgHeader_Get(reply, KCI_HEADER_ID, &acked_id) == NATS_OK &&
                              acked_id != NULL && strcmp(acked_id, id) == 0;
    }
    natsMsg_Destroy(reply);
    natsMsg_Destroy(message);
}

static void *submitter_main(void *argument)
{
    (void)argument;
    natsConnection *connection = connect_raw();
    char payload[256];
    memset(payload, 'x', sizeof payload);
    for (;;) {
        int index = atomic_fetch_add(&next_submit, 1);
        if (index >= submit_end) break;
        submit_one(connection, &submits[index], payload, (int)sizeof payload);
    }
    natsConnection_Destroy(connection);
    return NULL;
}

typedef struct killer {
    unsigned seed;
    int kill_after_ms;
} killer;

/* The harness starts servers with PR_SET_PDEATHSIG, which fires when the
 * *thread* that forked exits: so the killer that restarted kcobrad lives on
 * until the next killer has killed that kcobrad, or the scenario ends. */
static pthread_mutex_t generation_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t generation_changed = PTHREAD_COND_INITIALIZER;
static int generation;
static bool scenario_over;

static void *killer_main(void *argument)
{
    killer *plan = argument;
    harness_sleep_ms(plan->kill_after_ms);
    CHECK(harness_server_signal(&server, SIGKILL) == HARNESS_OK, "SIGKILL");
    int exit_status = 0;
    CHECK(harness_server_wait_exit(&server, 5000, &exit_status) == HARNESS_OK, "reap");
    fprintf(stderr, "crash_test: killed kcobrad after %d ms (exit %d) at submit %d\n",
            plan->kill_after_ms, exit_status, atomic_load(&next_submit));
    CHECK(harness_server_start(&server, CONFIG) == HARNESS_OK, "restart kcobrad");
    pthread_mutex_lock(&generation_lock);
    int mine = ++generation;
    pthread_cond_broadcast(&generation_changed);
    while (generation == mine && !scenario_over)
        pthread_cond_wait(&generation_changed, &generation_lock);
    pthread_mutex_unlock(&generation_lock);
    return NULL;
}

static void killers_release(void)
{
    pthread_mutex_lock(&generation_lock);
    scenario_over = true;
    pthread_cond_broadcast(&generation_changed);
    pthread_mutex_unlock(&generation_lock);
}

static void run_submitters(int count)
{
    submit_end = atomic_load(&next_submit) + count;
    pthread_t threads[SUBMITTERS];
    for (int index = 0; index < SUBMITTERS; index++)
        pthread_create(&threads[index], NULL, submitter_main, NULL);
    for (int index = 0; index < SUBMITTERS; index++)
        pthread_join(threads[index], NULL);
    atomic_store(&next_submit, submit_end);
}

/* ---- checks ---- */

/* 1: replied; 0: not yet; -1: unknown to the persister. */
static int reply_state(natsConnection *connection, const kci_uuid *id)
{
    char text[KC_UUID_TEXT_BYTES + 1];
    kci_uuid_format(id, text);
    natsMsg *reply = NULL;
    if (natsConnection_Request(&reply, connection, KCI_REPLY_GET_SUBJECT, text, KC_UUID_TEXT_BYTES,
                               2000) != NATS_OK)
        return 0;
    const char *state = NULL;
    natsMsgHeader_Get(reply, KCI_HEADER_QUEUE_STATE, &state);
    int result = state != NULL && strcmp(state, "replied") == 0   ? 1
                 : state != NULL && strcmp(state, "unknown") == 0 ? -1
                                                                  : 0;
    natsMsg_Destroy(reply);
    return result;
}

static void wait_all_replied(int first, int end)
{
    natsConnection *connection = connect_raw();
    int64_t deadline = harness_now_ms() + REPLY_DEADLINE_MS;
    int missing = 0;
    for (int index = first; index < end; index++) {
        if (!submits[index].acknowledged) continue;
        while (reply_state(connection, &submits[index].id) != 1) {
            CHECK(harness_now_ms() < deadline, "acknowledged request %d has no reply after %d ms",
                  index, REPLY_DEADLINE_MS);
            missing++;
            harness_sleep_ms(100);
        }
    }
    fprintf(stderr, "crash_test: all acknowledged of [%d, %d) replied (%d waits)\n", first, end,
            missing);
    natsConnection_Destroy(connection);
}

static kc_err count_reply(void *context, const kci_record *record, kci_position position)
{
    (void)position;
    kci_index *replies = context;
    if (record->kind != KCI_RECORD_REPLY) return KC_OK;
    bool created = false;
    kci_index_entry *entry = kci_index_insert(replies, &record->id, &created);
    if (entry == NULL) return KC_ERR_NOMEM;
    entry->state = KCI_ENTRY_REPLIED;
    entry->attempts++;
    return KC_OK;
}

static void check_log_and_effects(int first, int end)
{
    char directory[HARNESS_PATH_SIZE_MAX + 16];
    snprintf(directory, sizeof directory, "%s/data/queue", server.directory_path);
    kci_index replies;
    CHECK(kci_index_init(&replies), "memory");
    kci_scan_options options = {0};
    kci_scan_report report;
    char error[256] = "";
    kc_err err = kci_scan(directory, &options, count_reply, &replies, &report, error, sizeof error);
    CHECK(err == KC_OK, "scan %s: %s", directory, error);
    CHECK(report.corruption_count == 0, "corruption in the log");
    int acknowledged = 0;
    for (int index = first; index < end; index++) {
        kci_index_entry *entry = kci_index_find(&replies, &submits[index].id);
        int reply_count = entry != NULL ? entry->attempts : 0;
        int effect_count = effects_of(&submits[index].id);
        CHECK(reply_count <= 1, "request %d has %d reply records", index, reply_count);
        CHECK(effect_count <= 1, "request %d had %d handler effects", index, effect_count);
        if (!submits[index].acknowledged) continue;
        acknowledged++;
        CHECK(reply_count == 1, "acknowledged request %d has %d reply records", index, reply_count);
        CHECK(effect_count == 1, "acknowledged request %d had %d handler effects", index,
              effect_count);
    }
    kci_index_destroy(&replies);
    fprintf(stderr,
            "crash_test: %d of %d submits acknowledged; each has one reply and one effect; "
            "%" PRIu64 " records in %u segments\n",
            acknowledged, end - first, report.record_count, report.segment_count);
}

static void check_verify(const char *kcobra)
{
    char command[1024];
    snprintf(command, sizeof command, "'%s' queue verify --dir '%s/data/queue' >&2", kcobra,
             server.directory_path);
    int status = system(command);
    CHECK(status != -1 && WIFEXITED(status) && WEXITSTATUS(status) == 0,
          "kcobra queue verify failed (%d)", status);
}

static kc_client *start_service(kc_service **service)
{
    kc_client_options options;
    kc_client_options_init(&options);
    options.servers = server.url;
    options.node = "crash-service";
    options.reconnect_wait_ms = 50;
    kc_client *client = NULL;
    CHECK(kc_client_open(&client, &options) == KC_OK, "service client: %s", kc_last_error());
    kc_service_options service_options;
    kc_service_options_init(&service_options);
    service_options.idempotence_entries_max = 200000;
    CHECK(kc_service_start(service, client, "crash", handle, NULL, &service_options) == KC_OK,
          "service: %s", kc_last_error());
    return client;
}

/* ---- scenarios ---- */

static void scenario_crash(const char *kcobrad, const char *kcobra, unsigned seed)
{
    CHECK(harness_server_init(&server, kcobrad) == HARNESS_OK, "init");
    CHECK(harness_server_start(&server, CONFIG) == HARNESS_OK, "start kcobrad");
    kc_service *service = NULL;
    kc_client *client = start_service(&service);
    srand(seed);
    killer plans[RUNS];
    pthread_t killer_threads[RUNS];
    for (int run = 0; run < RUNS; run++) {
        plans[run] = (killer){.seed = seed,
                              .kill_after_ms = KILL_AFTER_MS_MIN + rand() % KILL_AFTER_MS_SPAN};
        int first = atomic_load(&next_submit);
        pthread_mutex_lock(&generation_lock);
        int before = generation;
        pthread_mutex_unlock(&generation_lock);
        pthread_create(&killer_threads[run], NULL, killer_main, &plans[run]);
        int64_t started_ms = harness_now_ms();
        run_submitters(REQUESTS_PER_RUN);
        /* The kill may come after the submits: wait for it and the restart. */
        pthread_mutex_lock(&generation_lock);
        while (generation == before)
            pthread_cond_wait(&generation_changed, &generation_lock);
        pthread_mutex_unlock(&generation_lock);
        fprintf(stderr, "crash_test: run %d: %d submits in %" PRId64 " ms\n", run, REQUESTS_PER_RUN,
                harness_now_ms() - started_ms);
        wait_all_replied(first, atomic_load(&next_submit));
    }
    kc_service_stop(service);
    kc_client_close(client, 2000);
    CHECK(harness_server_stop(&server) == HARNESS_OK, "stop kcobrad");
    killers_release();
    for (int run = 0; run < RUNS; run++)
        pthread_join(killer_threads[run], NULL);
    check_log_and_effects(0, atomic_load(&next_submit));
    check_verify(kcobra);
    harness_server_cleanup(&server);
}

static void submit_serially(natsConnection *connection, int count, int *acknowledged, int *no_space)
{
    static char payload[DISK_PAYLOAD_BYTES];
    memset(payload, 'd', sizeof payload);
    for (int step = 0; step < count; step++) {
        int index = atomic_fetch_add(&next_submit, 1);
        submit_one(connection, &submits[index], payload, (int)sizeof payload);
        if (submits[index].acknowledged) (*acknowledged)++;
        if (submits[index].error_code == KCI_PERSISTER_CODE_NO_SPACE) (*no_space)++;
    }
}

static void scenario_disk_full(const char *kcobrad, const char *kcobra)
{
    CHECK(harness_server_init(&server, kcobrad) == HARNESS_OK, "init");
    CHECK(harness_server_start(&server, DISK_CONFIG) == HARNESS_OK, "start kcobrad");
    kc_service *service = NULL;
    kc_client *client = start_service(&service);
    natsConnection *connection = connect_raw();
    struct rlimit limited = {.rlim_cur = DISK_LIMIT_BYTES, .rlim_max = RLIM_INFINITY};
    CHECK(prlimit(server.pid, RLIMIT_FSIZE, &limited, NULL) == 0, "prlimit: %s", strerror(errno));
    int first = atomic_load(&next_submit);
    int acknowledged = 0, no_space = 0;
    submit_serially(connection, DISK_SUBMITS, &acknowledged, &no_space);
    fprintf(stderr, "crash_test: disk full: %d acknowledged, %d refused with 507\n", acknowledged,
            no_space);
    CHECK(acknowledged > 10 && acknowledged < DISK_SUBMITS, "the limit did not bite (%d)",
          acknowledged);
    CHECK(no_space == DISK_SUBMITS - acknowledged, "refusals other than 507");
    struct rlimit unlimited = {.rlim_cur = RLIM_INFINITY, .rlim_max = RLIM_INFINITY};
    CHECK(prlimit(server.pid, RLIMIT_FSIZE, &unlimited, NULL) == 0, "prlimit");
    int after = 0, after_no_space = 0;
    submit_serially(connection, DISK_AFTER_SUBMITS, &after, &after_no_space);
    CHECK(after == DISK_AFTER_SUBMITS, "after space returned only %d of %d acknowledged", after,
          DISK_AFTER_SUBMITS);
    int end = atomic_load(&next_submit);
    wait_all_replied(first, end);
    for (int index = first; index < end; index++)
        if (!submits[index].acknowledged)
            CHECK(reply_state(connection, &submits[index].id) == -1,
                  "refused request %d is known to the persister", index);
    natsConnection_Destroy(connection);
    kc_service_stop(service);
    kc_client_close(client, 2000);
    CHECK(harness_server_stop(&server) == HARNESS_OK, "stop kcobrad");
    check_log_and_effects(first, end);
    check_verify(kcobra);
    harness_server_cleanup(&server);
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: crash_test KCOBRAD KCOBRA\n");
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    const char *seed_text = getenv("KC_CRASH_SEED");
    unsigned seed = seed_text != NULL ? (unsigned)strtoul(seed_text, NULL, 10)
                                      : (unsigned)time(NULL) ^ (unsigned)getpid();
    fprintf(stderr, "crash_test: seed %u (KC_CRASH_SEED=%u repeats it)\n", seed, seed);
    CHECK(kci_index_init(&effects), "memory");
    scenario_crash(argv[1], argv[2], seed);
    scenario_disk_full(argv[1], argv[2]);
    kci_index_destroy(&effects);
    nats_Close();
    fprintf(stderr, "crash_test: passed\n");
    return 0;
}
