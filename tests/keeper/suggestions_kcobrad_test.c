/* suggestions_kcobrad_test.c - suggestions that get handled, through a real
 * kcobrad with users alice (the operator: suggestions { operators:
 * ["alice"] }) and carol (docs/ingress.md, "Suggestion keeper"):
 *
 *  - carol suggests; carol's own accept is refused by the keeper (403:
 *    not an operator, kcobra exits 5), and her publish on alice's subject
 *    kc.suggest.change.alice is refused by the broker (Permissions
 *    Violation): the keeper never sees it;
 *  - alice accepts, assigns and rejects; show and list --status say so;
 *    a change not allowed from the status (done after rejected) is 409;
 *  - kill -9 of kcobrad, a torn change line left at the file's end (a
 *    write the crash interrupted), restart: every acknowledged change is
 *    there, the torn one is not, and changes go on.
 *
 * KCOBRA names the kcobra binary (meson passes it); skipped without. */
#include <jansson.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "fixture.h"
#include "kcobra_run.h"

enum {
    EXIT_SKIP = 77,
    EXIT_SERVICE = 5,
    OUTPUT_BYTES_MAX = 256 * 1024,
    ID_TEXT_BYTES = 36,
    KILL_WAIT_MS = 5000,
};

static const char CONFIG[] = "authorization {\n  users: [\n    {user: alice, password: a}\n"
                             "    {user: carol, password: c}\n  ]\n}\n"
                             "suggestions { operators: [\"alice\"] }\n";

static char output[OUTPUT_BYTES_MAX];

/* kcobra --user user --password password arguments...; its exit status. */
static int as(fixture *f, const char *user, const char *const *arguments)
{
    const char *argv[KCOBRA_RUN_ARGUMENTS_MAX] = {"--user", user, "--password",
                                                  strcmp(user, "alice") == 0 ? "a" : "c"};
    int argc = 4;
    for (int i = 0; arguments[i] != NULL && argc < KCOBRA_RUN_ARGUMENTS_MAX - 1; i++)
        argv[argc++] = arguments[i];
    argv[argc] = NULL;
    return kcobra_run(f->server.url, argv, output, sizeof output);
}

static void suggest(fixture *f, const char *text, char id[ID_TEXT_BYTES + 1])
{
    const char *arguments[] = {"suggest", text, NULL};
    assert_int_equal(as(f, "carol", arguments), 0);
    const char *at = strstr(output, "suggestion stored: ");
    assert_non_null(at);
    snprintf(id, ID_TEXT_BYTES + 1, "%s", at + strlen("suggestion stored: "));
}

static int change(fixture *f, const char *user, const char *action, const char *id,
                  const char *extra)
{
    const char *arguments[] = {"suggestions", action, id, extra, NULL};
    return as(f, user, arguments);
}

/* show --json: status, assignee, history length. */
static void expect_state(fixture *f, const char *id, const char *status, const char *assignee,
                         size_t history)
{
    const char *arguments[] = {"suggestions", "show", id, "--json", NULL};
    assert_int_equal(as(f, "carol", arguments), 0);
    json_t *state = json_loads(output, 0, NULL);
    assert_non_null(state);
    assert_string_equal(json_string_value(json_object_get(state, "status")), status);
    if (assignee == NULL)
        assert_true(json_is_null(json_object_get(state, "assignee")));
    else
        assert_string_equal(json_string_value(json_object_get(state, "assignee")), assignee);
    assert_int_equal(json_array_size(json_object_get(state, "history")), history);
    json_decref(state);
}

static void carol_cannot(fixture *f, const char *id)
{
    assert_int_equal(change(f, "carol", "accept", id, NULL), EXIT_SERVICE); /* 403 */
    harness_raw *raw = fixture_raw_handshake(
        f, "{\"verbose\":false,\"pedantic\":false,\"user\":\"carol\",\"pass\":\"c\"}");
    char publish[256];
    char body[128];
    snprintf(body, sizeof body, "{\"id\":\"%s\",\"action\":\"accept\"}", id);
    snprintf(publish, sizeof publish, "PUB kc.suggest.change.alice %zu\r\n%s\r\n", strlen(body),
             body);
    fixture_raw_send(raw, publish);
    fixture_raw_expect_line(
        raw, "-ERR 'Permissions Violation for Publish to \"kc.suggest.change.alice\"'");
    expect_state(f, id, "open", NULL, 0);
}

static void kill_and_tear(fixture *f, const char *id)
{
    assert_int_equal(harness_server_signal(&f->server, SIGKILL), HARNESS_OK);
    int exit_status = 0;
    assert_int_equal(harness_server_wait_exit(&f->server, KILL_WAIT_MS, &exit_status), HARNESS_OK);
    char path[HARNESS_PATH_SIZE_MAX + 64];
    snprintf(path, sizeof path, "%s/data/suggestions.jsonl", f->server.directory_path);
    FILE *file = fopen(path, "a");
    assert_non_null(file);
    fprintf(file, "{\"change\":\"%s\",\"action\":\"done\",\"by\":\"alice\",\"ts\":\"1", id);
    assert_int_equal(fclose(file), 0);
    assert_int_equal(harness_server_start(&f->server, CONFIG), HARNESS_OK);
}

static void test_suggestions_handled(void **state)
{
    fixture *f = fixture_of(state);
    if (getenv("KCOBRA") == NULL) skip();
    fixture_start(f, CONFIG);
    char first[ID_TEXT_BYTES + 1], second[ID_TEXT_BYTES + 1];
    suggest(f, "cache thumbnails for an hour", first);
    suggest(f, "paint it pink", second);
    expect_state(f, first, "open", NULL, 0);
    carol_cannot(f, first);
    assert_int_equal(change(f, "alice", "accept", first, "--note=next release"), 0);
    assert_int_equal(change(f, "alice", "assign", first, "bob"), 0);
    assert_int_equal(change(f, "alice", "reject", second, NULL), 0);
    assert_int_equal(change(f, "alice", "done", second, NULL), EXIT_SERVICE);  /* 409: final */
    assert_int_equal(change(f, "alice", "accept", first, NULL), EXIT_SERVICE); /* already */
    expect_state(f, first, "accepted", "bob", 2);
    expect_state(f, second, "rejected", NULL, 1);
    const char *list[] = {"suggestions", "list", "--status", "accepted", "--json", NULL};
    assert_int_equal(as(f, "carol", list), 0);
    json_t *answer = json_loads(output, 0, NULL);
    json_t *items = json_object_get(answer, "suggestions");
    assert_int_equal(json_array_size(items), 1);
    assert_string_equal(json_string_value(json_object_get(json_array_get(items, 0), "id")), first);
    json_decref(answer);

    kill_and_tear(f, first);
    expect_state(f, first, "accepted", "bob", 2); /* the torn done is not there */
    expect_state(f, second, "rejected", NULL, 1);
    assert_int_equal(change(f, "alice", "done", first, NULL), 0);
    expect_state(f, first, "done", "bob", 3);
}

int main(int argc, char **argv)
{
    if (!fixture_parse_arguments(argc, argv)) return 2;
    if (strstr(fixture_server_binary, "kcobrad") == NULL) {
        fprintf(stderr, "suggestions_kcobrad_test: only kcobrad hosts the keeper; skipping\n");
        return EXIT_SKIP;
    }
    const struct CMUnitTest tests[] = {
        FIXTURE_CASE(test_suggestions_handled),
    };
    return cmocka_run_group_tests(tests, fixture_group_setup, fixture_group_teardown);
}
