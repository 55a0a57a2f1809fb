/* fault_test.c - the suggestion keeper's file under I/O faults, in SQLite's
 * style (tests/common/fault.h), on a NATS server the test starts (argv[1]).
 * The arbiter's verdict file, the other append-and-fsync file, has its own
 * sweep (tests/arbiter/verdict_fault_test.c).
 *
 * Scenario: start a keeper on a new file, store SUGGESTIONS suggestions
 * (kc.suggest requests, one after the other), stop. It runs once to count
 * the calls through the I/O seam (open, the directory's sync, pwrite and
 * fsync per suggestion, close), then again failing call N, for every N,
 * with each error the call can return (EIO, ENOSPC, EINTR, a short write).
 *
 * After each run: a start that failed said why; no descriptor leaked
 * (memory: ASan); EINTR and short writes changed nothing (every suggestion
 * stored). Then the writes never synced are dropped (fault.c's crash
 * simulation), and every suggestion whose reply said stored is in the file
 * on a complete line; the next start (real calls) loads the file cleanly
 * and stores a new suggestion. */
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
#include "common/log.h"
#include "keeper/suggestions.h"

enum {
    SUGGESTIONS = 5,
    REQUEST_TIMEOUT_MS = 5000,
    STOP_DRAIN_MS = 2000,
    ID_TEXT_BYTES = 64,
    FILE_BYTES_MAX = 64 * 1024,
};

typedef struct world {
    harness_server server;
    natsConnection *connection;
    char file_path[HARNESS_PATH_SIZE_MAX + 32];
    char stored_ids[SUGGESTIONS + 1][ID_TEXT_BYTES];
    int stored_count;
} world;

static const char *server_binary;

/* One kc.suggest; its id into id when the reply says stored. */
static bool suggest(world *w, int number, char id[ID_TEXT_BYTES])
{
    char body[64];
    snprintf(body, sizeof body, "{\"text\":\"suggestion %d\"}", number);
    natsMsg *reply = NULL;
    natsStatus status = natsConnection_RequestString(&reply, w->connection, KCI_SUGGEST_SUBJECT,
                                                     body, REQUEST_TIMEOUT_MS);
    assert_int_equal(status, NATS_OK); /* the keeper answers, error or not */
    json_t *root =
        json_loadb(natsMsg_GetData(reply), (size_t)natsMsg_GetDataLength(reply), 0, NULL);
    natsMsg_Destroy(reply);
    assert_non_null(root);
    bool stored = json_is_true(json_object_get(root, "stored"));
    const char *text = json_string_value(json_object_get(root, "id"));
    if (stored) {
        assert_non_null(text);
        snprintf(id, ID_TEXT_BYTES, "%s", text);
    } else {
        assert_non_null(json_string_value(json_object_get(root, "error"))); /* says why */
    }
    json_decref(root);
    return stored;
}

static kc_err start_keeper(world *w, kci_suggestions **keeper, char *error, size_t error_size)
{
    kci_suggestions_config config = {.file_path = w->file_path, .node = "fault"};
    error[0] = '\0';
    return kci_suggestions_start(keeper, w->connection, &config, error, error_size);
}

/* Every stored id is on a complete line of the file. */
static void check_file(const world *w)
{
    static char text[FILE_BYTES_MAX + 1];
    FILE *file = fopen(w->file_path, "r");
    size_t length = 0;
    if (file != NULL) {
        length = fread(text, 1, FILE_BYTES_MAX, file);
        fclose(file);
    }
    text[length] = '\0';
    for (int index = 0; index < w->stored_count; index++) {
        const char *at = strstr(text, w->stored_ids[index]);
        if (at == NULL) print_error("stored suggestion %s is missing\n", w->stored_ids[index]);
        assert_non_null(at);
        assert_non_null(strchr(at, '\n'));
    }
}

static void check_next_start(world *w)
{
    char error[512];
    kci_suggestions *keeper = NULL;
    kc_err err = start_keeper(w, &keeper, error, sizeof error);
    if (err != KC_OK) print_error("next start: %s\n", error);
    assert_int_equal(err, KC_OK);
    char id[ID_TEXT_BYTES];
    assert_true(suggest(w, SUGGESTIONS, id));
    kci_suggestions_stop(keeper, STOP_DRAIN_MS);
}

static void run_keeper(void *context, uint64_t call_number, int error)
{
    world *w = context;
    unlink(w->file_path);
    w->stored_count = 0;
    int descriptors = fault_open_descriptors();
    fault_install();
    if (call_number > 0) fault_arm(call_number, error);
    char message[512];
    kci_suggestions *keeper = NULL;
    kc_err started = start_keeper(w, &keeper, message, sizeof message);
    if (started != KC_OK) assert_true(message[0] != '\0');
    for (int number = 0; started == KC_OK && number < SUGGESTIONS; number++)
        if (suggest(w, number, w->stored_ids[w->stored_count])) w->stored_count++;
    kci_suggestions_stop(keeper, STOP_DRAIN_MS);
    fault_remove();
    assert_int_equal(fault_open_descriptors(), descriptors);
    int fired_error = 0;
    if (fault_fired(NULL, &fired_error) &&
        (fired_error == EINTR || fired_error == FAULT_SHORT_WRITE))
        assert_int_equal(w->stored_count, SUGGESTIONS);
    fault_crash();
    check_file(w);
    check_next_start(w);
}

static void test_suggestions_file(void **state)
{
    world *w = *state;
    assert_int_equal(kci_log_open_file("/dev/null"), 0); /* the expected errors */
    fault_sweep_stats stats;
    fault_sweep(run_keeper, w, 1, &stats);
    assert_int_equal(kci_log_open_file("/dev/stderr"), 0);
    fault_sweep_print("keeper", &stats);
    assert_true(stats.calls_counted >= 2 * SUGGESTIONS);
    assert_true(stats.fired > 0);
}

static int setup(void **state)
{
    world *w = calloc(1, sizeof *w);
    if (w == NULL || harness_server_init(&w->server, server_binary) != HARNESS_OK) return -1;
    if (harness_server_start(&w->server, NULL) != HARNESS_OK) return -1;
    if (natsConnection_ConnectTo(&w->connection, w->server.url) != NATS_OK) return -1;
    snprintf(w->file_path, sizeof w->file_path, "%s/suggestions.jsonl", w->server.directory_path);
    *state = w;
    return 0;
}

static int teardown(void **state)
{
    world *w = *state;
    natsConnection_Destroy(w->connection);
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
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_suggestions_file)};
    return cmocka_run_group_tests(tests, setup, teardown);
}
