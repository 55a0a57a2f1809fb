/*
 * What an operator tripped over, tried as a new user would (issue 18): each
 * case runs the real kcobrad (argv[1]) and the real kcobra (KCOBRA) the way
 * a person at a shell does, from a working directory that is not the
 * server's, and checks what was printed.
 *
 * - data_dir in a configuration file is relative to the file, and kcobra
 *   finds the queue from anywhere with --config or --data-dir;
 * - kcobrad --help names the default configuration;
 * - kcobra serve logs losing and regaining the server and stops at once
 *   on SIGTERM without one;
 * - submit --wait --timeout, queue stats --live, wallet list, pay, ledger
 *   history print what a person expects.
 *
 * Every wait is bounded; nothing asserts a speed.
 */
#include "fixture.h"

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

enum {
    EXIT_SKIP = 77,
    RUN_TIMEOUT_MS = 20000, /* one foreground kcobra, sanitizers included */
    POLL_INTERVAL_MS = 20,
    READY_TIMEOUT_MS = 10000,
    STOP_BOUND_MS = 10000,
    STATUS_TIMEOUT = 3,
    KC_UUID_TEXT_LENGTH = 36, /* well above the 1.5 s it takes, far below nats.c's 30 s */
    OUTPUT_BYTES_MAX = 64 * 1024,
    PATH_BYTES = 1024,
};

static const char *kcobra_path = NULL;

typedef struct run_result {
    int status; /* exit status, or 128 + signal */
    char out[OUTPUT_BYTES_MAX];
    char err[OUTPUT_BYTES_MAX];
} run_result;

typedef struct operator_state {
    harness_server server;
    run_result result;
    int run_counter;
    pid_t background_pid; /* a kcobra serve; teardown kills it if still running */
} operator_state;

/* Runs program with arguments in directory, stdout and stderr to files of the
 * server's directory; bounded. */
static void run_in(operator_state *state, const char *directory, const char *program,
                   char *const arguments[])
{
    char out_path[PATH_BYTES], err_path[PATH_BYTES], name[64];
    snprintf(name, sizeof name, "run-%d.out", ++state->run_counter);
    assert_int_equal(harness_server_path(&state->server, name, out_path, sizeof out_path),
                     HARNESS_OK);
    snprintf(name, sizeof name, "run-%d.err", state->run_counter);
    assert_int_equal(harness_server_path(&state->server, name, err_path, sizeof err_path),
                     HARNESS_OK);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int out_fd = open(out_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        int err_fd = open(err_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        int null_fd = open("/dev/null", O_RDONLY);
        dup2(null_fd, STDIN_FILENO);
        dup2(out_fd, STDOUT_FILENO);
        dup2(err_fd, STDERR_FILENO);
        if (chdir(directory) != 0) _exit(126);
        execv(program, arguments);
        _exit(127);
    }
    if (!harness_child_wait(pid, RUN_TIMEOUT_MS, &state->result.status)) {
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        fail_msg("%s %s did not finish within %d ms", program, arguments[1], RUN_TIMEOUT_MS);
    }
    harness_read_text(out_path, state->result.out, sizeof state->result.out);
    harness_read_text(err_path, state->result.err, sizeof state->result.err);
}

/* kcobra in the background, stderr to log_path; its pid. */
static pid_t start_background(operator_state *state, char *const arguments[], char *log_path)
{
    char name[64];
    snprintf(name, sizeof name, "background-%d.log", ++state->run_counter);
    assert_int_equal(harness_server_path(&state->server, name, log_path, PATH_BYTES), HARNESS_OK);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int log_fd = open(log_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        int null_fd = open("/dev/null", O_RDWR);
        dup2(null_fd, STDIN_FILENO);
        dup2(null_fd, STDOUT_FILENO);
        dup2(log_fd, STDERR_FILENO);
        execv(kcobra_path, arguments);
        _exit(127);
    }
    state->background_pid = pid;
    return pid;
}

static void wait_log(operator_state *state, const char *log_path, const char *marker)
{
    int64_t deadline_ms = harness_now_ms() + READY_TIMEOUT_MS;
    while (harness_now_ms() < deadline_ms) {
        harness_read_text(log_path, state->result.err, sizeof state->result.err);
        if (strstr(state->result.err, marker) != NULL) return;
        harness_sleep_ms(POLL_INTERVAL_MS);
    }
    fail_msg("no '%s' within %d ms in:\n%s", marker, READY_TIMEOUT_MS, state->result.err);
}

/* Waits up to timeout_ms for the background kcobra to exit; false if not. */
static bool background_exited(operator_state *state, int timeout_ms)
{
    int exit_status = 0;
    if (!harness_child_wait(state->background_pid, timeout_ms, &exit_status)) return false;
    state->background_pid = 0;
    return true;
}

#define KCOBRA_IN(state, directory, ...)                                                           \
    run_in((state), (directory), kcobra_path, (char *[]){"kcobra", __VA_ARGS__, NULL})

static void expect_status(const operator_state *state, int status)
{
    if (state->result.status != status)
        fail_msg("exited %d, expected %d\nstdout: %s\nstderr: %s", state->result.status, status,
                 state->result.out, state->result.err);
}

static void expect_contains(const char *haystack, const char *needle)
{
    if (strstr(haystack, needle) == NULL) fail_msg("expected \"%s\" in:\n%s", needle, haystack);
}

static int case_setup(void **state_out)
{
    operator_state *state = calloc(1, sizeof *state);
    if (state == NULL) return -1;
    if (harness_server_init(&state->server, fixture_server_binary) != HARNESS_OK) return -1;
    *state_out = state;
    return 0;
}

static int case_teardown(void **state_in)
{
    operator_state *state = *state_in;
    if (state->background_pid > 0) {
        kill(state->background_pid, SIGKILL);
        waitpid(state->background_pid, NULL, 0);
    }
    harness_server_cleanup(&state->server);
    free(state);
    return 0;
}

/* ==================================================================== cases */

/* The configuration lives in etc/ beside the server's working directory;
 * its data_dir "kept" is etc/kept (it was kept/ of wherever kcobrad
 * started), and kcobra, run from /, reads that queue with --config or
 * --data-dir (it used to say "no queue directory data/queue"). */
static void test_data_dir_relative_to_the_config(void **state_in)
{
    operator_state *state = *state_in;
    char etc[PATH_BYTES], config[PATH_BYTES + 32], kept[PATH_BYTES + 32], text[PATH_BYTES * 2];
    assert_int_equal(harness_server_path(&state->server, "etc", etc, sizeof etc), HARNESS_OK);
    assert_int_equal(mkdir(etc, 0700), 0);
    snprintf(config, sizeof config, "%s/kcobrad.conf", etc);
    snprintf(kept, sizeof kept, "%s/kept", etc);
    FILE *file = fopen(config, "w");
    assert_non_null(file);
    fputs("data_dir: \"kept\"\n", file);
    fclose(file);
    assert_int_equal(harness_server_start_file(&state->server, config), HARNESS_OK);
    struct stat status;
    snprintf(text, sizeof text, "%s/queue", kept);
    int64_t deadline_ms = harness_now_ms() + READY_TIMEOUT_MS; /* the persister may be late */
    while (stat(text, &status) != 0 && harness_now_ms() < deadline_ms)
        harness_sleep_ms(POLL_INTERVAL_MS);
    if (stat(text, &status) != 0) fail_msg("no queue directory %s", text);
    KCOBRA_IN(state, "/", "submit", "operator", "hello", "--server", state->server.url, "--timeout",
              "10s");
    expect_status(state, 0);
    KCOBRA_IN(state, "/", "queue", "stats", "--config", config, "--json");
    expect_status(state, 0);
    snprintf(text, sizeof text, "\"directory\":\"%s/queue\"", kept);
    expect_contains(state->result.out, text);
    expect_contains(state->result.out, "\"records\":1,");
    KCOBRA_IN(state, "/", "queue", "dump", "--data-dir", kept);
    expect_status(state, 0);
    expect_contains(state->result.out, "operator");
}

/* kcobrad --help says which file it reads by default and the rule for
 * data_dir (it said "default: none" while the README named etc/kcobrad.conf). */
static void test_help_names_the_default_config(void **state_in)
{
    operator_state *state = *state_in;
    run_in(state, "/", fixture_server_binary, (char *[]){"kcobrad", "--help", NULL});
    expect_status(state, 0);
    expect_contains(state->result.out, "/kingcobra/kcobrad.conf");
    expect_contains(state->result.out, "relative to the file's directory");
}

/* kcobra serve says when it loses the server and when it has it back (it
 * said nothing), and SIGTERM without a server and with nothing running stops
 * it at once (it took nats.c's 30 s drain). */
static void test_serve_logs_the_server_and_stops_promptly(void **state_in)
{
    operator_state *state = *state_in;
    assert_int_equal(harness_server_start(&state->server, NULL), HARNESS_OK);
    char log_path[PATH_BYTES];
    start_background(state,
                     (char *[]){"kcobra", "serve", "operator", "--exec", "cat", "--server",
                                state->server.url, NULL},
                     log_path);
    wait_log(state, log_path, "serving type");
    assert_int_equal(harness_server_stop(&state->server), HARNESS_OK);
    wait_log(state, log_path, "lost the server");
    assert_int_equal(harness_server_start(&state->server, NULL), HARNESS_OK);
    wait_log(state, log_path, "reconnected to");
    assert_int_equal(harness_server_stop(&state->server), HARNESS_OK);
    harness_sleep_ms(POLL_INTERVAL_MS * 10); /* let it see the loss again */
    kill(state->background_pid, SIGTERM);
    if (!background_exited(state, STOP_BOUND_MS)) {
        harness_read_text(log_path, state->result.err, sizeof state->result.err);
        fail_msg("kcobra serve without a server ignored SIGTERM for %d ms:\n%s", STOP_BOUND_MS,
                 state->result.err);
    }
}

/* submit --wait --timeout bounds the reply wait too (it waited 30 s); queue
 * stats --live prints JSON only with --json. */
static void test_submit_wait_and_live_stats(void **state_in)
{
    operator_state *state = *state_in;
    assert_int_equal(harness_server_start(&state->server, NULL), HARNESS_OK);
    char *url = state->server.url;
    int64_t start_ms = harness_now_ms();
    KCOBRA_IN(state, "/", "submit", "nobody_serves_this", "x", "--wait", "--timeout", "2s",
              "--server", url);
    expect_status(state, STATUS_TIMEOUT);
    fprintf(stderr, "operator: submit --wait --timeout 2s took %lld ms\n",
            (long long)(harness_now_ms() - start_ms));
    KCOBRA_IN(state, "/", "queue", "stats", "--live", "--server", url);
    expect_status(state, 0);
    if (state->result.out[0] == '{' || strchr(state->result.out, '\n') == state->result.out)
        fail_msg("queue stats --live without --json printed:\n%s", state->result.out);
    expect_contains(state->result.out, "pending");
    KCOBRA_IN(state, "/", "--json", "queue", "stats", "--live", "--server", url);
    expect_status(state, 0);
    assert_int_equal(state->result.out[0], '{');
}

/* wallet list; pay says what the id it prints is; ledger history shows
 * RFC 3339 times and the names of the wallets it knows. */
static void test_wallets_pay_and_history(void **state_in)
{
    operator_state *state = *state_in;
    char wallets[PATH_BYTES];
    assert_int_equal(harness_server_path(&state->server, "wallets", wallets, sizeof wallets),
                     HARNESS_OK);
    setenv("KCOBRA_WALLET_DIR", wallets, 1);
    assert_int_equal(
        harness_server_start(&state->server, "ledger { enabled: true, mint_open: true }\n"),
        HARNESS_OK);
    char *url = state->server.url;
    KCOBRA_IN(state, "/", "wallet", "new", "alice");
    expect_status(state, 0);
    KCOBRA_IN(state, "/", "wallet", "new", "shop");
    expect_status(state, 0);
    KCOBRA_IN(state, "/", "wallet", "list");
    expect_status(state, 0);
    expect_contains(state->result.out, "alice ");
    expect_contains(state->result.out, "shop ");
    KCOBRA_IN(state, "/", "mint", "--to", "alice", "--denominations", "100", "--server", url);
    expect_status(state, 0);
    KCOBRA_IN(state, "/", "pay", "--from", "alice", "--to", "shop", "--amount", "100", "--server",
              url);
    expect_status(state, 0);
    expect_contains(state->result.err, "transfer id");
    assert_int_equal(strlen(state->result.out), KC_UUID_TEXT_LENGTH + 1); /* the bare id */
    KCOBRA_IN(state, "/", "ledger", "history", "--server", url);
    expect_status(state, 0);
    expect_contains(state->result.out, "TIME ");
    expect_contains(state->result.out, "  alice ");
    expect_contains(state->result.out, "  shop ");
    const char *row = strchr(state->result.out, '\n');
    assert_non_null(row);
    /* 2026-12-08T01:02:03.456Z */
    if (!(row[5] == '-' && row[8] == '-' && row[11] == 'T' && row[24] == 'Z'))
        fail_msg("not an RFC 3339 time:\n%s", state->result.out);
    unsetenv("KCOBRA_WALLET_DIR");
}

int main(int argc, char **argv)
{
    if (!fixture_parse_arguments(argc, argv)) return 2;
    kcobra_path = getenv("KCOBRA");
    if (kcobra_path == NULL || kcobra_path[0] == '\0') {
        fprintf(stderr, "operator: KCOBRA (the kcobra binary) is not set; skipping\n");
        return EXIT_SKIP;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_data_dir_relative_to_the_config, case_setup,
                                        case_teardown),
        cmocka_unit_test_setup_teardown(test_help_names_the_default_config, case_setup,
                                        case_teardown),
        cmocka_unit_test_setup_teardown(test_serve_logs_the_server_and_stops_promptly, case_setup,
                                        case_teardown),
        cmocka_unit_test_setup_teardown(test_submit_wait_and_live_stats, case_setup, case_teardown),
        cmocka_unit_test_setup_teardown(test_wallets_pay_and_history, case_setup, case_teardown),
    };
    return cmocka_run_group_tests_name("operator", tests, NULL, NULL);
}
