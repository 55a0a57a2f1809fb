/* persister_test.c - the persister's features through a real kcobrad:
 * redelivery (a service that ignores the first dispatch gets the request
 * again, with the same Kc-Id, and its reply is forwarded to Kc-Notify),
 * dead requests (no reply after max_attempts dispatches to a service that
 * never answers: kc.reply.get says 410 dead;
 * a reply that comes after that is still recorded and served),
 * idempotent submit (the same Kc-Id twice: acknowledged twice, stored once),
 * refused submits (a bad Kc-Id: 400, nothing stored), redelivery after a
 * restart, compaction (replied segments removed on kc.sys.queue.compact,
 * their requests unknown afterwards, later ones still served), and a
 * flipped byte in the middle of the log: kcobrad refuses to start, naming
 * the position, until skip_corrupt is set; a second kcobrad on the same
 * queue directory, even with LOCK deleted, refuses to start.
 *
 * Usage: persister_test KCOBRAD [KCOBRA] (with KCOBRA, `kcobra queue verify`
 * must also name the corrupt record). */
#include <inttypes.h>
#include <jansson.h>
#include <nats/nats.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../integration/harness.h"
#include "queue/persister.h"
#include "queue/recovery.h"
#include "service/headers.h"
#include "service/uuid.h"

enum {
    WAIT_MS = 10000,
    REQUEST_MS = 2000,
    COMPACT_SUBMITS = 400,
    COMPACT_PAYLOAD_BYTES = 1024,
};

#define CHECK(condition, ...)                                                                      \
    do {                                                                                           \
        if (!(condition)) {                                                                        \
            fprintf(stderr, "persister_test: FAILED at line %d: ", __LINE__);                      \
            fprintf(stderr, __VA_ARGS__);                                                          \
            fprintf(stderr, "\n");                                                                 \
            exit(1);                                                                               \
        }                                                                                          \
    } while (0)

static const char CONFIG[] = "persister {\n"
                             "  redelivery_timeout: \"200ms\"\n"
                             "  redelivery_backoff_max: \"400ms\"\n"
                             "  max_attempts: 5\n"
                             "  segment_size: 65536\n"
                             "}\n";

static const char SKIP_CONFIG[] = "persister {\n"
                                  "  skip_corrupt: true\n"
                                  "  segment_size: 65536\n"
                                  "}\n";

static const char RECORD_CONFIG[] = "persister {\n"
                                    "  skip_corrupt: true\n"
                                    "  record_requests: true\n"
                                    "}\n";

static harness_server server;
static const char *kcobra_path; /* optional second argument */

static natsConnection *connect_raw(void)
{
    natsOptions *options = NULL;
    natsConnection *connection = NULL;
    natsOptions_Create(&options);
    natsOptions_SetURL(options, server.url);
    natsOptions_SetMaxReconnect(options, -1);
    natsOptions_SetReconnectWait(options, 50);
    natsStatus status = natsConnection_Connect(&connection, options);
    natsOptions_Destroy(options);
    CHECK(status == NATS_OK, "connect: %s", natsStatus_GetText(status));
    return connection;
}

static const char *header(natsMsg *message, const char *name)
{
    const char *value = NULL;
    return natsMsgHeader_Get(message, name, &value) == NATS_OK ? value : NULL;
}

/* Submits; returns the ack (caller destroys) or NULL on a transport error. */
static natsMsg *submit(natsConnection *connection, const char *type, const char *id,
                       const char *notify, const void *payload, int payload_length)
{
    char subject[256];
    snprintf(subject, sizeof subject, "kc.submit.%s", type);
    natsMsg *message = NULL, *reply = NULL;
    natsMsg_Create(&message, subject, NULL, payload, payload_length);
    if (id != NULL) natsMsgHeader_Set(message, KCI_HEADER_ID, id);
    if (notify != NULL) natsMsgHeader_Set(message, KCI_HEADER_NOTIFY, notify);
    natsStatus status = natsConnection_RequestMsg(&reply, connection, message, REQUEST_MS);
    natsMsg_Destroy(message);
    return status == NATS_OK ? reply : NULL;
}

/* The acknowledged id (copied into id_out); fails the test otherwise. */
static void submit_acked(natsConnection *connection, const char *type, const char *notify,
                         const void *payload, int payload_length, char id_out[37])
{
    natsMsg *ack = submit(connection, type, NULL, notify, payload, payload_length);
    CHECK(ack != NULL, "no acknowledgement");
    CHECK(header(ack, KCI_HEADER_ERROR) == NULL, "refused: %s", header(ack, KCI_HEADER_ERROR));
    const char *id = header(ack, KCI_HEADER_ID);
    CHECK(id != NULL && strlen(id) == 36, "no Kc-Id on the acknowledgement");
    memcpy(id_out, id, 37);
    natsMsg_Destroy(ack);
}

/* kc.reply.get: the answer's Kc-Queue-State ("replied", "pending", ...). */
static natsMsg *reply_get(natsConnection *connection, const char *id)
{
    natsMsg *reply = NULL;
    natsStatus status = natsConnection_Request(&reply, connection, KCI_REPLY_GET_SUBJECT, id,
                                               (int)strlen(id), REQUEST_MS);
    CHECK(status == NATS_OK, "kc.reply.get: %s", natsStatus_GetText(status));
    return reply;
}

static bool state_is(natsConnection *connection, const char *id, const char *state)
{
    natsMsg *reply = reply_get(connection, id);
    const char *value = header(reply, KCI_HEADER_QUEUE_STATE);
    bool same = value != NULL && strcmp(value, state) == 0;
    natsMsg_Destroy(reply);
    return same;
}

static void wait_state(natsConnection *connection, const char *id, const char *state)
{
    int64_t deadline = harness_now_ms() + WAIT_MS;
    while (!state_is(connection, id, state)) {
        CHECK(harness_now_ms() < deadline, "request %s never became %s", id, state);
        harness_sleep_ms(50);
    }
}

/* ---- a flaky service: ignores the first dispatch of each id ---- */

static pthread_mutex_t flaky_lock = PTHREAD_MUTEX_INITIALIZER;
static int flaky_deliveries;
static char flaky_ids[8][37];

static void on_flaky(natsConnection *connection, natsSubscription *subscription, natsMsg *message,
                     void *closure)
{
    const char *id = header(message, KCI_HEADER_ID);
    pthread_mutex_lock(&flaky_lock);
    int delivery = flaky_deliveries++;
    if (delivery < 8 && id != NULL) snprintf(flaky_ids[delivery], 37, "%s", id);
    pthread_mutex_unlock(&flaky_lock);
    if (delivery > 0 && natsMsg_GetReply(message) != NULL)
        natsConnection_PublishString(connection, natsMsg_GetReply(message), "second");
    natsMsg_Destroy(message);
}

static void on_echo(natsConnection *connection, natsSubscription *subscription, natsMsg *message,
                    void *closure)
{
    if (natsMsg_GetReply(message) != NULL)
        natsConnection_Publish(connection, natsMsg_GetReply(message), "ok", 2);
    natsMsg_Destroy(message);
}

static void test_redelivery_and_notify(natsConnection *connection)
{
    natsSubscription *service = NULL, *notify = NULL;
    CHECK(natsConnection_Subscribe(&service, connection, "kc.req.flaky", on_flaky, NULL) == NATS_OK,
          "subscribe");
    CHECK(natsConnection_SubscribeSync(&notify, connection, "_INBOX.test.notify") == NATS_OK,
          "sub");
    natsConnection_Flush(connection);
    char id[37];
    submit_acked(connection, "flaky", "_INBOX.test.notify", "job", 3, id);
    natsMsg *forwarded = NULL;
    CHECK(natsSubscription_NextMsg(&forwarded, notify, WAIT_MS) == NATS_OK,
          "the reply was not forwarded to Kc-Notify");
    CHECK(natsMsg_GetDataLength(forwarded) == 6 &&
              memcmp(natsMsg_GetData(forwarded), "second", 6) == 0,
          "forwarded payload");
    CHECK(strcmp(header(forwarded, KCI_HEADER_REPLY_TO), id) == 0, "Kc-Reply-To");
    natsMsg_Destroy(forwarded);
    pthread_mutex_lock(&flaky_lock);
    CHECK(flaky_deliveries >= 2, "dispatched %d times", flaky_deliveries);
    CHECK(strcmp(flaky_ids[0], id) == 0 && strcmp(flaky_ids[1], id) == 0,
          "each dispatch carries the request's Kc-Id");
    pthread_mutex_unlock(&flaky_lock);
    natsMsg *recorded = reply_get(connection, id);
    CHECK(strcmp(header(recorded, KCI_HEADER_QUEUE_STATE), "replied") == 0, "state");
    CHECK(natsMsg_GetDataLength(recorded) == 6, "recorded payload");
    natsMsg_Destroy(recorded);
    natsSubscription_Destroy(service);
    natsSubscription_Destroy(notify);
    fprintf(stderr, "persister_test: redelivery and Kc-Notify ok\n");
}

static void test_dead(natsConnection *connection)
{
    char id[37];
    submit_acked(connection, "nobody", NULL, "x", 1, id);
    CHECK(state_is(connection, id, "pending") || state_is(connection, id, "dead"), "pending");
    wait_state(connection, id, "dead");
    natsMsg *answer = reply_get(connection, id);
    const char *error = header(answer, KCI_HEADER_ERROR);
    CHECK(error != NULL && strncmp(error, "410 ", 4) == 0, "dead is 410: %s",
          error != NULL ? error : "(none)");
    natsMsg_Destroy(answer);
    fprintf(stderr, "persister_test: dead after max_attempts ok\n");
}

/* A counter of kc.sys.queue.stats. */
static json_int_t queue_stat(natsConnection *connection, const char *name)
{
    natsMsg *answer = NULL;
    CHECK(natsConnection_RequestString(&answer, connection, KCI_QUEUE_STATS_SUBJECT, "",
                                       REQUEST_MS) == NATS_OK,
          "kc.sys.queue.stats");
    json_error_t json_error;
    json_t *root =
        json_loadb(natsMsg_GetData(answer), (size_t)natsMsg_GetDataLength(answer), 0, &json_error);
    json_t *value = json_object_get(root, name);
    CHECK(json_is_integer(value), "no %s in the stats", name);
    json_int_t number = json_integer_value(value);
    json_decref(root);
    natsMsg_Destroy(answer);
    return number;
}

/* The service's answer comes after the request died (DEAD -> REPLYING ->
 * REPLIED): it is recorded, served by kc.reply.get, and the request no
 * longer counts as dead. Runs while no other request is about to die. */
static void test_late_reply_to_dead(natsConnection *connection)
{
    natsSubscription *service = NULL;
    CHECK(natsConnection_SubscribeSync(&service, connection, "kc.req.late") == NATS_OK, "sub");
    natsConnection_Flush(connection);
    char id[37];
    submit_acked(connection, "late", NULL, "x", 1, id);
    natsMsg *dispatch = NULL;
    CHECK(natsSubscription_NextMsg(&dispatch, service, WAIT_MS) == NATS_OK, "no dispatch");
    char reply_subject[256];
    CHECK(natsMsg_GetReply(dispatch) != NULL, "a dispatch without a reply subject");
    snprintf(reply_subject, sizeof reply_subject, "%s", natsMsg_GetReply(dispatch));
    natsMsg_Destroy(dispatch);
    wait_state(connection, id, "dead");
    json_int_t dead = queue_stat(connection, "dead");
    json_int_t replies = queue_stat(connection, "replies_recorded");
    CHECK(natsConnection_PublishString(connection, reply_subject, "late answer") == NATS_OK,
          "publish");
    wait_state(connection, id, "replied");
    natsMsg *recorded = reply_get(connection, id);
    CHECK(natsMsg_GetDataLength(recorded) == 11 &&
              memcmp(natsMsg_GetData(recorded), "late answer", 11) == 0,
          "the late reply is served");
    natsMsg_Destroy(recorded);
    CHECK(queue_stat(connection, "dead") == dead - 1, "still counted dead");
    CHECK(queue_stat(connection, "replies_recorded") == replies + 1, "reply not counted");
    natsSubscription_Destroy(service);
    fprintf(stderr, "persister_test: a reply after the request died is recorded ok\n");
}

static void test_idempotent_and_refused_submit(natsConnection *connection, char same_id[37])
{
    kci_uuid_v7_text(same_id);
    for (int round = 0; round < 2; round++) {
        natsMsg *ack = submit(connection, "nobody", same_id, NULL, "dup", 3);
        CHECK(ack != NULL && header(ack, KCI_HEADER_ERROR) == NULL, "submit %d", round);
        CHECK(strcmp(header(ack, KCI_HEADER_ID), same_id) == 0, "the id is the client's");
        natsMsg_Destroy(ack);
    }
    natsMsg *refused = submit(connection, "nobody", "not-a-uuid", NULL, "x", 1);
    CHECK(refused != NULL, "no answer to a bad Kc-Id");
    const char *error = header(refused, KCI_HEADER_ERROR);
    CHECK(error != NULL && strncmp(error, "400 ", 4) == 0, "bad Kc-Id is 400: %s",
          error != NULL ? error : "(none)");
    natsMsg_Destroy(refused);
    refused = submit(connection, "bad*type", NULL, NULL, "x", 1);
    CHECK(refused != NULL && header(refused, KCI_HEADER_ERROR) != NULL, "bad type refused");
    natsMsg_Destroy(refused);
    fprintf(stderr, "persister_test: idempotent and refused submits ok\n");
}

static void test_restart_redelivers(natsConnection *connection)
{
    char id[37];
    submit_acked(connection, "later", NULL, "after restart", 13, id);
    CHECK(harness_server_signal(&server, SIGKILL) == HARNESS_OK, "kill");
    int status = 0;
    CHECK(harness_server_wait_exit(&server, 5000, &status) == HARNESS_OK, "reap");
    CHECK(harness_server_start(&server, CONFIG) == HARNESS_OK, "restart");
    natsSubscription *service = NULL;
    CHECK(natsConnection_Subscribe(&service, connection, "kc.req.later", on_echo, NULL) == NATS_OK,
          "subscribe");
    wait_state(connection, id, "replied");
    natsSubscription_Destroy(service);
    fprintf(stderr, "persister_test: redelivery after a restart ok\n");
}

static void test_compaction(natsConnection *connection, const char *older_id)
{
    /* Compaction removes only a prefix of resolved segments: the older
     * request (its service never answers) must be dead first. */
    wait_state(connection, older_id, "dead");
    natsSubscription *service = NULL;
    CHECK(natsConnection_Subscribe(&service, connection, "kc.req.echo", on_echo, NULL) == NATS_OK,
          "subscribe");
    natsConnection_Flush(connection);
    static char payload[COMPACT_PAYLOAD_BYTES];
    memset(payload, 'c', sizeof payload);
    char first[37] = "", last[37] = "";
    for (int index = 0; index < COMPACT_SUBMITS; index++)
        submit_acked(connection, "echo", NULL, payload, (int)sizeof payload,
                     index == 0 ? first : last);
    wait_state(connection, first, "replied");
    wait_state(connection, last, "replied");
    natsMsg *answer = NULL;
    CHECK(natsConnection_RequestString(&answer, connection, KCI_QUEUE_COMPACT_SUBJECT,
                                       "{\"retention_ms\":0}", REQUEST_MS) == NATS_OK,
          "compact");
    int removed = 0;
    sscanf(natsMsg_GetData(answer), "{\"segments_removed\":%d", &removed);
    natsMsg_Destroy(answer);
    CHECK(removed >= 3, "only %d segments removed", removed);
    CHECK(state_is(connection, first, "unknown"), "a compacted request is unknown");
    CHECK(state_is(connection, last, "replied"), "the last request is still served");
    natsSubscription_Destroy(service);
    fprintf(stderr, "persister_test: compaction removed %d segments ok\n", removed);
}

static kc_err count_requests(void *context, const kci_record *record, kci_position position)
{
    const kci_uuid *wanted = ((const kci_uuid **)context)[0];
    int *count = ((int **)context)[1];
    if (record->kind == KCI_RECORD_REQUEST &&
        memcmp(record->id.bytes, wanted->bytes, sizeof wanted->bytes) == 0)
        (*count)++;
    return KC_OK;
}

static void check_stored_once(const char *id_text)
{
    kci_uuid id;
    CHECK(kci_uuid_parse(id_text, 36, &id), "id");
    int count = 0;
    void *context[2] = {&id, &count};
    char directory[HARNESS_PATH_SIZE_MAX + 16];
    snprintf(directory, sizeof directory, "%s/data/queue", server.directory_path);
    kci_scan_options options = {0};
    kci_scan_report report;
    char error[256];
    CHECK(kci_scan(directory, &options, count_requests, context, &report, error, sizeof error) ==
              KC_OK,
          "scan: %s", error);
    CHECK(count == 1, "the resubmitted id is stored %d times", count);
}

typedef struct positions {
    kci_position last[2]; /* the two newest records */
    int count;
} positions;

static kc_err note_position(void *context, const kci_record *record, kci_position position)
{
    positions *seen = context;
    seen->last[0] = seen->last[1];
    seen->last[1] = position;
    seen->count++;
    return KC_OK;
}

/* `kcobra queue verify` on the corrupt log: exit 1, naming the spot. */
static void check_verify_names(const char *directory, const char *expected)
{
    char command[1024];
    snprintf(command, sizeof command, "'%s' queue verify --dir '%s' 2>&1", kcobra_path, directory);
    FILE *pipe = popen(command, "r");
    CHECK(pipe != NULL, "popen");
    char output[4096] = "";
    size_t got = fread(output, 1, sizeof output - 1, pipe);
    output[got] = '\0';
    int status = pclose(pipe);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 1, "verify exit %d: %s", status, output);
    char named[128];
    /* verify prints "segment N offset M"; kcobrad "segment N at offset M" */
    unsigned segment = 0, offset = 0;
    sscanf(expected, "segment %u at offset %u", &segment, &offset);
    snprintf(named, sizeof named, "CORRUPT: segment %u offset %u", segment, offset);
    CHECK(strstr(output, named) != NULL, "verify does not name %s: %s", named, output);
}

static void test_corruption_refused(void)
{
    char directory[HARNESS_PATH_SIZE_MAX + 16];
    snprintf(directory, sizeof directory, "%s/data/queue", server.directory_path);
    positions seen = {0};
    kci_scan_options options = {0};
    kci_scan_report report;
    char error[256];
    CHECK(kci_scan(directory, &options, note_position, &seen, &report, error, sizeof error) ==
              KC_OK,
          "scan");
    CHECK(seen.count >= 2, "records");
    kci_position victim = seen.last[0]; /* a valid record follows it */
    char path[PATH_MAX];
    kci_segment_path(path, directory, kci_position_segment(victim));
    FILE *file = fopen(path, "r+b");
    CHECK(file != NULL, "open %s", path);
    fseek(file, (long)kci_position_offset(victim) + 20, SEEK_SET);
    int byte = fgetc(file);
    fseek(file, (long)kci_position_offset(victim) + 20, SEEK_SET);
    fputc(byte ^ 0x10, file);
    fclose(file);
    /* The harness may see the listening socket before the components are up;
     * what counts is that kcobrad exits, with an error, by itself. */
    if (harness_server_start(&server, CONFIG) == HARNESS_OK) {
        int exit_status = 0;
        CHECK(harness_server_wait_exit(&server, 10000, &exit_status) == HARNESS_OK,
              "kcobrad runs on a corrupt log");
        CHECK(exit_status != 0, "kcobrad exited 0 on a corrupt log");
    }
    char log_text[8192] = "";
    FILE *log = fopen(server.log_path, "r");
    if (log != NULL) {
        size_t got = fread(log_text, 1, sizeof log_text - 1, log);
        log_text[got] = '\0';
        fclose(log);
    }
    char expected[96];
    snprintf(expected, sizeof expected, "segment %u at offset %u", kci_position_segment(victim),
             kci_position_offset(victim));
    CHECK(strstr(log_text, expected) != NULL, "the refusal names %s", expected);
    if (kcobra_path != NULL) check_verify_names(directory, expected);
    CHECK(harness_server_start(&server, SKIP_CONFIG) == HARNESS_OK, "skip_corrupt start");
    fprintf(stderr, "persister_test: corruption refused (%s), skipped on request ok\n", expected);
}

/* The file's contents, NUL-terminated (truncated to size). */
static void read_text(const char *path, char *text, size_t size)
{
    text[0] = '\0';
    FILE *file = fopen(path, "r");
    if (file == NULL) return;
    size_t got = fread(text, 1, size - 1, file);
    text[got] = '\0';
    fclose(file);
}

/* A second kcobrad on the same queue directory, with LOCK deleted first
 * (which used to let it in: two writers then overwrote each other's
 * acknowledged records): its persister must be refused, naming the first
 * kcobrad's pid. (kcobrad then serves without a persister, as it does for
 * any locked directory: components.c.) */
static void test_second_kcobrad_refused(const char *kcobrad)
{
    char directory[HARNESS_PATH_SIZE_MAX + 16], lock[HARNESS_PATH_SIZE_MAX + 32];
    snprintf(directory, sizeof directory, "%s/data/queue", server.directory_path);
    snprintf(lock, sizeof lock, "%s/LOCK", directory);
    CHECK(unlink(lock) == 0, "unlink %s", lock);
    char config[HARNESS_PATH_SIZE_MAX + 64];
    snprintf(config, sizeof config, "persister {\n  dir: \"%s\"\n}\n", directory);
    harness_server second;
    CHECK(harness_server_init(&second, kcobrad) == HARNESS_OK, "init");
    bool started = harness_server_start(&second, config) == HARNESS_OK;
    char expected[64], log_text[16384];
    snprintf(expected, sizeof expected, "in use by process %d", (int)server.pid);
    int64_t deadline = harness_now_ms() + WAIT_MS;
    for (;;) {
        read_text(second.log_path, log_text, sizeof log_text);
        if (strstr(log_text, expected) != NULL || harness_now_ms() > deadline) break;
        harness_sleep_ms(50);
    }
    CHECK(strstr(log_text, expected) != NULL, "the second kcobrad does not say '%s':\n%s", expected,
          log_text);
    CHECK(strstr(log_text, "persister on kc.submit") == NULL,
          "the second kcobrad's persister runs");
    if (started) CHECK(harness_server_stop(&second) == HARNESS_OK, "stop the second kcobrad");
    harness_server_cleanup(&second);
    fprintf(stderr, "persister_test: a second kcobrad on the directory is refused ok\n");
}

typedef struct observed_count {
    kci_uuid id;
    int requests;
    int replies;
} observed_count;

static kc_err count_observed(void *context, const kci_record *record, kci_position position)
{
    observed_count *seen = context;
    if (memcmp(record->id.bytes, seen->id.bytes, sizeof seen->id.bytes) != 0) return KC_OK;
    if (record->kind == KCI_RECORD_OBSERVED_REQUEST && record->payload_length == 5 &&
        memcmp(record->payload, "plain", 5) == 0)
        seen->requests++;
    if (record->kind == KCI_RECORD_OBSERVED_REPLY && record->payload_length == 2) seen->replies++;
    return KC_OK;
}

/* record_requests: a plain request and its reply are kept in the log. */
static void test_record_requests(void)
{
    CHECK(harness_server_stop(&server) == HARNESS_OK, "stop");
    CHECK(harness_server_start(&server, RECORD_CONFIG) == HARNESS_OK, "start recording");
    natsConnection *connection = connect_raw();
    natsSubscription *service = NULL;
    CHECK(natsConnection_QueueSubscribe(&service, connection, "kc.req.plain", "plain", on_echo,
                                        NULL) == NATS_OK,
          "subscribe");
    natsConnection_Flush(connection);
    observed_count seen = {0};
    char id[37];
    kci_uuid_v7(&seen.id);
    kci_uuid_format(&seen.id, id);
    natsMsg *message = NULL, *reply = NULL;
    natsMsg_Create(&message, "kc.req.plain", NULL, "plain", 5);
    natsMsgHeader_Set(message, KCI_HEADER_ID, id);
    CHECK(natsConnection_RequestMsg(&reply, connection, message, REQUEST_MS) == NATS_OK,
          "plain request");
    natsMsg_Destroy(reply);
    natsMsg_Destroy(message);
    char directory[HARNESS_PATH_SIZE_MAX + 16];
    snprintf(directory, sizeof directory, "%s/data/queue", server.directory_path);
    int64_t deadline = harness_now_ms() + WAIT_MS;
    while (seen.requests == 0 || seen.replies == 0) {
        CHECK(harness_now_ms() < deadline, "the plain request (%d) or its reply (%d) not kept",
              seen.requests, seen.replies);
        harness_sleep_ms(50);
        seen.requests = seen.replies = 0;
        kci_scan_options options = {.skip_corrupt = true};
        kci_scan_report report;
        char error[256];
        kci_scan(directory, &options, count_observed, &seen, &report, error, sizeof error);
    }
    CHECK(seen.requests == 1 && seen.replies == 1, "kept %d requests, %d replies", seen.requests,
          seen.replies);
    natsSubscription_Destroy(service);
    natsConnection_Destroy(connection);
    fprintf(stderr, "persister_test: record_requests keeps a plain request and its reply ok\n");
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: persister_test KCOBRAD\n");
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    if (argc > 2) kcobra_path = argv[2];
    CHECK(harness_server_init(&server, argv[1]) == HARNESS_OK, "init");
    CHECK(harness_server_start(&server, CONFIG) == HARNESS_OK, "start");
    natsConnection *connection = connect_raw();
    /* A service of "nobody" that takes every request and never answers: a
     * request dies only after max_attempts dispatches that a service
     * received (with nobody subscribed at all it waits for a service, which
     * tests/queue/waiting_test.c checks). */
    natsSubscription *silent = NULL;
    CHECK(natsConnection_SubscribeSync(&silent, connection, "kc.req.nobody") == NATS_OK, "sub");
    CHECK(natsSubscription_SetPendingLimits(silent, -1, -1) == NATS_OK, "limits");
    natsConnection_Flush(connection);
    char same_id[37];
    test_redelivery_and_notify(connection);
    test_dead(connection);
    test_late_reply_to_dead(connection);
    test_idempotent_and_refused_submit(connection, same_id);
    check_stored_once(same_id); /* read-only scan while kcobrad runs */
    test_restart_redelivers(connection);
    test_compaction(connection, same_id);
    test_second_kcobrad_refused(argv[1]);
    natsSubscription_Destroy(silent);
    natsConnection_Destroy(connection);
    CHECK(harness_server_stop(&server) == HARNESS_OK, "stop");
    test_corruption_refused();
    test_record_requests();
    CHECK(harness_server_stop(&server) == HARNESS_OK, "stop");
    harness_server_cleanup(&server);
    nats_Close();
    fprintf(stderr, "persister_test: passed\n");
    return 0;
}
