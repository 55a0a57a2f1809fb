/*
 * Integration cases for the kcobra command-line tool, run as real processes
 * against a real server (argv[1]: nats-server or kcobrad; the kcobra binary
 * comes from the KCOBRA environment variable, set by meson).
 *
 * One server (with monitoring on and max_payload lowered to 64 KiB so the
 * "too large" cases are cheap) serves every case. A case starts the
 * `kcobra serve` and `kcobra sub` processes it needs in the background,
 * waits for the line that says they are ready ("serving type", "Listening
 * on") in their stderr file, runs `kcobra request`/`pub`/... in the
 * foreground with captured stdout and stderr, and checks outputs and exit
 * codes. Teardown kills and reaps whatever a failed case left running.
 *
 * Without KCOBRA set (kcobra not built) the program exits 77: meson's skip.
 * Limits: time bounds are generous (a sanitizer build starts slowly), so a
 * kcobra that is slower than promised by less than the slack passes.
 */
#include "fixture.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

enum {
    EXIT_SKIP = 77,
    ARGUMENTS_MAX = 32,
    OUTPUT_BYTES_MAX = 256 * 1024,
    RUN_TIMEOUT_MS = 20000,   /* one foreground kcobra, sanitizers included */
    READY_TIMEOUT_MS = 10000, /* a background kcobra says it is ready */
    STOP_TIMEOUT_MS = 10000,  /* a background kcobra exits after SIGTERM */
    POLL_INTERVAL_MS = 20,
    BACKGROUND_MAX = 8,
    PATH_BYTES_MAX = 512,
    MAX_PAYLOAD_BYTES = 64 * 1024,
    TOO_LARGE_PAYLOAD_BYTES = 100 * 1024,
    SLOW_TIMEOUT_BOUND_MS = 4000, /* --timeout 500ms must end well before sleep 5 */
    GROUP_GONE_TIMEOUT_MS = 3000, /* a killed group is gone long before its sleep 30 */
    EXEC_LIMIT_BOUND_MS = 15000,  /* a 1 s exec limit must end well before sleep 30 */
    SIGNED_SAMPLE_REQUESTS = 25,  /* over the arbiter's qos_samples (20) */
    FORGED_SAMPLE_WAIT_MS = 2000, /* for forged samples to (not) show */
    VERDICT_WAIT_MS = 30000,      /* for the arbiter's tick, vote and verdict */
    STATUS_OK = 0,
    STATUS_FAILURE = 1,
    STATUS_USAGE = 2,
    STATUS_TIMEOUT = 3,
    STATUS_NO_RESPONDERS = 4,
    STATUS_SERVICE_ERROR = 5,
    STATUS_CONNECT = 6,
};

#define KCOBRA_ENVIRONMENT "KCOBRA"
#define SERVER_CONFIG "max_payload: 65536\n"

static const char *kcobra_path = NULL;

/* The result of one foreground run. */
typedef struct run_result {
    int status; /* exit status, or 128 + signal */
    char out[OUTPUT_BYTES_MAX];
    size_t out_length;
    char err[OUTPUT_BYTES_MAX];
    size_t err_length;
} run_result;

typedef struct background {
    pid_t pid;
    char log_path[PATH_BYTES_MAX]; /* stderr */
    char out_path[PATH_BYTES_MAX]; /* stdout */
} background;

typedef struct cli_state {
    harness_server server;
    char monitor_url[HARNESS_URL_SIZE_MAX];
    int background_count;
    background backgrounds[BACKGROUND_MAX];
    int file_counter;
    harness_server secure_server; /* test_tls_and_password's; cleaned up by teardown */
    run_result result;            /* large: lives here, not on the stack */
} cli_state;

/* ================================================================ processes */

static int decode_status(int wait_status)
{
    if (WIFEXITED(wait_status)) return WEXITSTATUS(wait_status);
    if (WIFSIGNALED(wait_status)) return 128 + WTERMSIG(wait_status);
    return -1;
}

static void exec_kcobra(char *const arguments[])
{
    char *argv[ARGUMENTS_MAX + 2];
    int count = 0;
    argv[count++] = (char *)kcobra_path;
    for (int index = 0; arguments[index] != NULL && count <= ARGUMENTS_MAX; index++)
        argv[count++] = arguments[index];
    argv[count] = NULL;
    execv(kcobra_path, argv);
    _exit(127);
}

/* Reads what is ready on *fd into buffer (truncating past its size); closes
 * *fd at end of file. */
static void drain_fd(int *fd, char *buffer, size_t *length)
{
    char chunk[4096];
    ssize_t got = read(*fd, chunk, sizeof chunk);
    if (got < 0 && (errno == EINTR || errno == EAGAIN)) return;
    if (got <= 0) {
        close(*fd);
        *fd = -1;
        return;
    }
    size_t room = OUTPUT_BYTES_MAX - 1 - *length;
    size_t kept = (size_t)got < room ? (size_t)got : room;
    memcpy(buffer + *length, chunk, kept);
    *length += kept;
    buffer[*length] = '\0';
}

static void feed_and_collect(int input_fd, const char *input, size_t input_length, int out_fd,
                             int err_fd, run_result *result)
{
    size_t written = 0;
    int64_t deadline_ms = harness_now_ms() + RUN_TIMEOUT_MS;
    while ((out_fd >= 0 || err_fd >= 0) && harness_now_ms() < deadline_ms) {
        struct pollfd fds[3] = {{.fd = out_fd, .events = POLLIN},
                                {.fd = err_fd, .events = POLLIN},
                                {.fd = input_fd, .events = POLLOUT}};
        if (poll(fds, input_fd >= 0 ? 3 : 2, POLL_INTERVAL_MS) < 0 && errno != EINTR) break;
        if (fds[0].revents != 0) drain_fd(&out_fd, result->out, &result->out_length);
        if (fds[1].revents != 0) drain_fd(&err_fd, result->err, &result->err_length);
        if (input_fd >= 0 && fds[2].revents != 0) {
            ssize_t wrote = write(input_fd, input + written, input_length - written);
            if (wrote > 0) written += (size_t)wrote;
            if (wrote < 0 || written == input_length) {
                close(input_fd);
                input_fd = -1;
            }
        }
    }
    if (input_fd >= 0) close(input_fd);
    if (out_fd >= 0) close(out_fd);
    if (err_fd >= 0) close(err_fd);
}

/* Runs kcobra with arguments (NULL-terminated) and input on stdin (NULL:
 * /dev/null), waits at most RUN_TIMEOUT_MS, and fills result. */
static void run_with_input(run_result *result, const char *input, size_t input_length,
                           char *const arguments[])
{
    memset(result, 0, sizeof *result);
    int in[2], out[2], err[2];
    assert_int_equal(pipe(in), 0);
    assert_int_equal(pipe(out), 0);
    assert_int_equal(pipe(err), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        if (input == NULL) {
            int null_fd = open("/dev/null", O_RDONLY);
            dup2(null_fd, STDIN_FILENO);
        } else {
            dup2(in[0], STDIN_FILENO);
        }
        dup2(out[1], STDOUT_FILENO);
        dup2(err[1], STDERR_FILENO);
        for (int fd = STDERR_FILENO + 1; fd < 1024; fd++)
            close(fd);
        exec_kcobra(arguments);
    }
    close(in[0]);
    close(out[1]);
    close(err[1]);
    fcntl(in[1], F_SETFL, O_NONBLOCK);
    if (input == NULL) {
        close(in[1]);
        in[1] = -1;
    }
    feed_and_collect(in[1], input, input_length, out[0], err[0], result);
    int wait_status = 0;
    int64_t deadline_ms = harness_now_ms() + RUN_TIMEOUT_MS;
    while (waitpid(pid, &wait_status, WNOHANG) == 0) {
        if (harness_now_ms() > deadline_ms) {
            kill(pid, SIGKILL);
            waitpid(pid, &wait_status, 0);
            fail_msg("kcobra %s did not finish within %d ms", arguments[0], RUN_TIMEOUT_MS);
        }
        harness_sleep_ms(POLL_INTERVAL_MS);
    }
    result->status = decode_status(wait_status);
}

#define RUN(state, ...) run_with_input(&(state)->result, NULL, 0, (char *[]){__VA_ARGS__, NULL})
#define RUN_INPUT(state, input, length, ...)                                                       \
    run_with_input(&(state)->result, (input), (length), (char *[]){__VA_ARGS__, NULL})

/* Prints what kcobra said when an expectation fails. */
static void expect_status(const run_result *result, int status)
{
    if (result->status != status)
        fail_msg("kcobra exited %d, expected %d\nstdout: %s\nstderr: %s", result->status, status,
                 result->out, result->err);
}

static void expect_contains(const char *haystack, const char *needle)
{
    if (strstr(haystack, needle) == NULL)
        fail_msg("expected to find \"%s\" in:\n%s", needle, haystack);
}

/* The last run exited with status and its stdout holds text. */
static void expect_stdout(const cli_state *state, int status, const char *text)
{
    expect_status(&state->result, status);
    expect_contains(state->result.out, text);
}

/* The last run exited with status and its stderr holds text. */
static void expect_stderr(const cli_state *state, int status, const char *text)
{
    expect_status(&state->result, status);
    expect_contains(state->result.err, text);
}

/* =============================================================== background */

static void state_path(cli_state *state, const char *prefix, char *path)
{
    char name[64];
    snprintf(name, sizeof name, "%s-%d.txt", prefix, ++state->file_counter);
    assert_int_equal(harness_server_path(&state->server, name, path, PATH_BYTES_MAX), HARNESS_OK);
}

static background *start_background(cli_state *state, char *const arguments[])
{
    assert_true(state->background_count < BACKGROUND_MAX);
    background *job = &state->backgrounds[state->background_count];
    state_path(state, "log", job->log_path);
    state_path(state, "out", job->out_path);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int null_fd = open("/dev/null", O_RDONLY);
        int out_fd = open(job->out_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        int log_fd = open(job->log_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        dup2(null_fd, STDIN_FILENO);
        dup2(out_fd, STDOUT_FILENO);
        dup2(log_fd, STDERR_FILENO);
        for (int fd = STDERR_FILENO + 1; fd < 1024; fd++)
            close(fd);
        exec_kcobra(arguments);
    }
    job->pid = pid;
    state->background_count++;
    return job;
}

#define BACKGROUND(state, ...) start_background((state), (char *[]){__VA_ARGS__, NULL})

/* The file's contents (NUL-terminated, truncated to size). */
static void read_file(const char *path, char *text, size_t size)
{
    harness_read_text(path, text, size);
}

static void wait_ready(cli_state *state, background *job, const char *marker)
{
    int64_t deadline_ms = harness_now_ms() + READY_TIMEOUT_MS;
    while (harness_now_ms() < deadline_ms) {
        read_file(job->log_path, state->result.err, sizeof state->result.err);
        if (strstr(state->result.err, marker) != NULL) return;
        int wait_status;
        if (waitpid(job->pid, &wait_status, WNOHANG) == job->pid) {
            job->pid = 0; /* reaped: teardown must not signal the number again */
            fail_msg("background kcobra exited %d before '%s':\n%s", decode_status(wait_status),
                     marker, state->result.err);
        }
        harness_sleep_ms(POLL_INTERVAL_MS);
    }
    fail_msg("background kcobra did not say '%s' within %d ms:\n%s", marker, READY_TIMEOUT_MS,
             state->result.err);
}

static background *start_service(cli_state *state, char *const arguments[])
{
    background *job = start_background(state, arguments);
    wait_ready(state, job, "serving type");
    return job;
}

#define SERVE(state, ...) start_service((state), (char *[]){"serve", __VA_ARGS__, NULL})

/* Waits up to timeout_ms for the job to exit by itself; its status, or -1. */
static int wait_exit(background *job, int timeout_ms)
{
    int64_t deadline_ms = harness_now_ms() + timeout_ms;
    int wait_status = 0;
    while (harness_now_ms() < deadline_ms) {
        pid_t reaped = waitpid(job->pid, &wait_status, WNOHANG);
        if (reaped == job->pid) {
            job->pid = 0;
            return decode_status(wait_status);
        }
        if (reaped < 0 && errno != EINTR) return -1; /* not our child */
        harness_sleep_ms(POLL_INTERVAL_MS);
    }
    return -1;
}

static int stop_background(background *job, int signal_number)
{
    if (job->pid <= 0) return -1;
    kill(job->pid, signal_number);
    return wait_exit(job, STOP_TIMEOUT_MS);
}

/* ==================================================================== setup */

static int group_setup(void **state_out)
{
    cli_state *state = calloc(1, sizeof *state);
    if (state == NULL) return -1;
    if (harness_server_init(&state->server, fixture_server_binary) != HARNESS_OK) return -1;
    state->server.monitor_enabled = true;
    if (harness_server_start(&state->server, SERVER_CONFIG) != HARNESS_OK) return -1;
    setenv("KCOBRA_SERVER", state->server.url, 1);
    snprintf(state->monitor_url, sizeof state->monitor_url, "http://127.0.0.1:%d",
             state->server.monitor_port);
    *state_out = state;
    return 0;
}

static int group_teardown(void **state_in)
{
    cli_state *state = *state_in;
    harness_server_cleanup(&state->server);
    free(state);
    return 0;
}

static int case_setup(void **state_in)
{
    cli_state *state = *state_in;
    state->background_count = 0;
    memset(&state->secure_server, 0, sizeof state->secure_server);
    return 0;
}

/* Kills and reaps what a case (perhaps a failed one) left running. */
static int case_teardown(void **state_in)
{
    cli_state *state = *state_in;
    for (int index = 0; index < state->background_count; index++) {
        background *job = &state->backgrounds[index];
        if (job->pid > 0 && stop_background(job, SIGTERM) < 0) {
            kill(job->pid, SIGKILL);
            waitpid(job->pid, NULL, 0);
        }
        job->pid = 0;
    }
    state->background_count = 0;
    if (state->secure_server.directory_path[0] != '\0')
        harness_server_cleanup(&state->secure_server);
    setenv("KCOBRA_SERVER", state->server.url, 1);
    unsetenv("KCOBRA_PASSWORD");
    return 0;
}

/* ==================================================================== cases */

static void test_help_every_command(void **state_in)
{
    cli_state *state = *state_in;
    static const char *const COMMANDS[] = {"request", "serve", "pub",    "sub",     "problem",
                                           "suggest", "stats", "keeper", "ingress", "suggestions"};
    for (size_t index = 0; index < sizeof COMMANDS / sizeof COMMANDS[0]; index++) {
        RUN(state, (char *)COMMANDS[index], "--help");
        expect_status(&state->result, STATUS_OK);
        char usage[64];
        snprintf(usage, sizeof usage, "Usage: kcobra %s", COMMANDS[index]);
        expect_contains(state->result.out, usage);
        expect_contains(state->result.out, "--timeout");
        RUN(state, "help", (char *)COMMANDS[index]);
        expect_stdout(state, STATUS_OK, usage);
    }
    RUN(state, "--help");
    expect_stdout(state, STATUS_OK, "Exit status");
    expect_contains(state->result.out, "6  cannot connect");
    RUN(state, "--version");
    expect_stdout(state, STATUS_OK, "kcobra ");
}

static void test_usage_errors(void **state_in)
{
    cli_state *state = *state_in;
    RUN(state, "frobnicate");
    expect_stderr(state, STATUS_USAGE, "unknown command 'frobnicate'");
    RUN(state, "request");
    expect_status(&state->result, STATUS_USAGE);
    RUN(state, "request", "echo", "--timeout", "5");
    expect_stderr(state, STATUS_USAGE, "invalid duration '5'");
    RUN(state, "request", "echo", "--bogus");
    expect_stderr(state, STATUS_USAGE, "unknown option '--bogus'");
    RUN(state, "request", "a.b", "x");
    expect_status(&state->result, STATUS_USAGE);
    RUN(state, "serve", "echo");
    expect_stderr(state, STATUS_USAGE, "--exec CMD is required");
}

static void test_problem_bad_reason(void **state_in)
{
    cli_state *state = *state_in;
    RUN(state, "problem", "node-1", "too_cheap");
    expect_stderr(state, STATUS_USAGE, "unknown reason 'too_cheap'");
    expect_contains(state->result.err, "wrong_answer, slow, no_answer, error_reply, overcharged");
    RUN(state, "problem", "node-1", "slow", "--text", "3 s for a cache hit");
    expect_stdout(state, STATUS_OK, "problem reported about node node-1 (slow)");
}

static void test_request_reply(void **state_in)
{
    cli_state *state = *state_in;
    SERVE(state, "echo", "--exec", "cat");
    RUN(state, "request", "echo", "hello");
    expect_status(&state->result, STATUS_OK);
    assert_string_equal(state->result.out, "hello"); /* raw: no newline added on a pipe */
    RUN_INPUT(state, "from stdin\n", 11, "request", "echo", "-");
    expect_status(&state->result, STATUS_OK);
    assert_string_equal(state->result.out, "from stdin\n");
    RUN_INPUT(state, "implicit", 8, "request", "echo"); /* stdin is a pipe, not a terminal */
    expect_status(&state->result, STATUS_OK);
    assert_string_equal(state->result.out, "implicit");
    /* Global options before the command name work too. */
    RUN(state, "--timeout", "3s", "request", "echo", "--", "-dash");
    expect_status(&state->result, STATUS_OK);
    assert_string_equal(state->result.out, "-dash");
}

static void test_request_json(void **state_in)
{
    cli_state *state = *state_in;
    background *service = SERVE(state, "echo", "--exec", "cat", "--json");
    RUN(state, "request", "echo", "hello", "--json", "--node", "tester");
    expect_stdout(state, STATUS_OK, "\"payload\":\"hello\"");
    expect_contains(state->result.out, "\"error\":null");
    expect_contains(state->result.out, "\"request_id\":\"");
    expect_contains(state->result.out, "\"timestamp\":\"");
    assert_int_equal(state->result.out[state->result.out_length - 1], '\n');
    RUN_INPUT(state,
              "a\xff"
              "b",
              3, "request", "echo", "-", "--json");
    expect_stdout(state, STATUS_OK, "\"payload_base64\":\"Yf9i\"");
    assert_int_equal(stop_background(service, SIGTERM), 0);
    char log[OUTPUT_BYTES_MAX];
    read_file(service->log_path, log, sizeof log);
    expect_contains(log, "{\"time_ms\":");
    expect_contains(log, "\"event\":\"request\"");
    expect_contains(log, "\"from\":\"tester\",\"status\":\"ok\",\"code\":0");
    expect_contains(log, "\"event\":\"stopped\"");
}

static void test_environment_and_no_injection(void **state_in)
{
    cli_state *state = *state_in;
    SERVE(state, "env", "--exec", "printf '%s|%s|' \"$KC_TYPE\" \"$KC_NODE\"; cat");
    const char *payload = "$(echo INJECTED); `echo INJECTED` \"; echo INJECTED";
    RUN(state, "request", "env", (char *)payload, "--node", "tester");
    expect_status(&state->result, STATUS_OK);
    char expected[256];
    snprintf(expected, sizeof expected, "env|tester|%s", payload);
    assert_string_equal(state->result.out, expected);
}

static void test_no_responders(void **state_in)
{
    cli_state *state = *state_in;
    RUN(state, "request", "nobody_serves_this", "hi");
    expect_stderr(state, STATUS_NO_RESPONDERS,
                  "kcobra: no service serves type 'nobody_serves_this' (no responders)");
}

static void test_request_timeout(void **state_in)
{
    cli_state *state = *state_in;
    SERVE(state, "sleepy", "--exec", "sleep 5");
    int64_t started_ms = harness_now_ms();
    RUN(state, "request", "sleepy", "x", "--timeout", "500ms");
    int64_t elapsed_ms = harness_now_ms() - started_ms;
    expect_stderr(state, STATUS_TIMEOUT, "kcobra: timed out after 500ms");
    assert_true(elapsed_ms < SLOW_TIMEOUT_BOUND_MS);
}

static void test_exec_fails(void **state_in)
{
    cli_state *state = *state_in;
    SERVE(state, "failing", "--exec", "cat >/dev/null; echo 'bad input: no digits' >&2; exit 7");
    RUN(state, "request", "failing", "abc");
    expect_stderr(state, STATUS_SERVICE_ERROR, "kcobra: service error 7: bad input: no digits");
    RUN(state, "request", "failing", "abc", "--json");
    expect_stdout(state, STATUS_SERVICE_ERROR,
                  "\"error\":{\"code\":7,\"message\":\"bad input: no digits\"}");
    SERVE(state, "silent", "--exec", "exit 3");
    RUN(state, "request", "silent", "abc");
    expect_stderr(state, STATUS_SERVICE_ERROR, "service error 3: command exited with status 3");
}

static void test_exec_crashes(void **state_in)
{
    cli_state *state = *state_in;
    SERVE(state, "crashing", "--exec", "kill -SEGV $$");
    RUN(state, "request", "crashing", "x");
    expect_stderr(state, STATUS_SERVICE_ERROR, "service error 139: command killed by signal 11");
}

/* Child processes of pid (all its threads'), from /proc; -1 if unreadable. */
static int count_children(pid_t pid)
{
    char pattern[PATH_BYTES_MAX];
    snprintf(pattern, sizeof pattern, "/proc/%d/task", (int)pid);
    DIR *tasks = opendir(pattern);
    if (tasks == NULL) return -1;
    int count = 0;
    struct dirent *entry;
    while ((entry = readdir(tasks)) != NULL) {
        if (entry->d_name[0] == '.') continue;
        char path[2 * PATH_BYTES_MAX];
        snprintf(path, sizeof path, "%s/%s/children", pattern, entry->d_name);
        char text[1024];
        read_file(path, text, sizeof text);
        for (char *token = strtok(text, " \n"); token != NULL; token = strtok(NULL, " \n"))
            count++;
    }
    closedir(tasks);
    return count;
}

static void test_exec_timeout(void **state_in)
{
    cli_state *state = *state_in;
    char pid_path[PATH_BYTES_MAX], command[2 * PATH_BYTES_MAX];
    state_path(state, "pid", pid_path);
    /* sleep runs as the shell's child, in the shell's process group. */
    snprintf(command, sizeof command, "echo $$ > '%s'; sleep 30; echo never", pid_path);
    background *service = SERVE(state, "stuck", "--exec", command, "--exec-timeout", "300ms");
    RUN(state, "request", "stuck", "x", "--timeout", "5s");
    expect_stderr(state, STATUS_SERVICE_ERROR, "service error 124: command timed out");
    /* The whole group was killed and the shell reaped: no zombie, no sleep. */
    char pid_text[32];
    read_file(pid_path, pid_text, sizeof pid_text);
    pid_t group = (pid_t)atoi(pid_text);
    assert_true(group > 0);
    /* The orphaned sleep is reaped by init: give it a moment to go. */
    int64_t deadline_ms = harness_now_ms() + GROUP_GONE_TIMEOUT_MS;
    while (kill(-group, 0) == 0 && harness_now_ms() < deadline_ms)
        harness_sleep_ms(POLL_INTERVAL_MS);
    assert_int_equal(kill(-group, 0), -1);
    assert_int_equal(errno, ESRCH);
    assert_int_equal(count_children(service->pid), 0);
    assert_int_equal(stop_background(service, SIGTERM), 0);
    char log[OUTPUT_BYTES_MAX];
    read_file(service->log_path, log, sizeof log);
    expect_contains(log, "type=stuck");
    expect_contains(log, "error=124");
}

/* The serve's own limit holds against a requester's far deadline: with
 * --exec-timeout 1s, a request whose Kc-Deadline is an hour away is
 * answered "timed out" after about a second, not after the command's 30 s. */
static void test_exec_limit_holds_against_a_far_deadline(void **state_in)
{
    cli_state *state = *state_in;
    SERVE(state, "patient", "--exec", "sleep 30; echo never", "--exec-timeout", "1s");
    int64_t started_ms = harness_now_ms();
    RUN(state, "request", "patient", "x", "--timeout", "1h");
    int64_t elapsed_ms = harness_now_ms() - started_ms;
    expect_stderr(state, STATUS_SERVICE_ERROR, "service error 124: command timed out after 1s");
    assert_true(elapsed_ms < EXEC_LIMIT_BOUND_MS);
}

/* A requester's deadline sooner than the serve's limit shortens it: the
 * command of a request that gave up after 1 s is killed then (the serve
 * logs its timeout), not left running for the serve's 30 s. */
static void test_exec_deadline_shortens_the_limit(void **state_in)
{
    cli_state *state = *state_in;
    background *service = SERVE(state, "hasty", "--exec", "sleep 30; echo never", "--exec-timeout",
                                "30s", "--workers", "1");
    RUN(state, "request", "hasty", "x", "--timeout", "1s");
    expect_status(&state->result, STATUS_TIMEOUT);
    char log[OUTPUT_BYTES_MAX];
    int64_t deadline_ms = harness_now_ms() + EXEC_LIMIT_BOUND_MS;
    do {
        harness_sleep_ms(POLL_INTERVAL_MS);
        read_file(service->log_path, log, sizeof log);
    } while (strstr(log, "error=124") == NULL && harness_now_ms() < deadline_ms);
    expect_contains(log, "type=hasty");
    expect_contains(log, "error=124");
    assert_int_equal(stop_background(service, SIGTERM), 0);
}

static void test_payload_too_large(void **state_in)
{
    cli_state *state = *state_in;
    SERVE(state, "echo", "--exec", "cat");
    char *payload = malloc(TOO_LARGE_PAYLOAD_BYTES);
    assert_non_null(payload);
    memset(payload, 'x', TOO_LARGE_PAYLOAD_BYTES);
    RUN_INPUT(state, payload, TOO_LARGE_PAYLOAD_BYTES, "request", "echo", "-");
    expect_stderr(state, STATUS_FAILURE, "exceeds the server's max_payload of 65536 bytes");
    RUN_INPUT(state, payload, TOO_LARGE_PAYLOAD_BYTES, "pub", "cli.big", "-");
    expect_stderr(state, STATUS_FAILURE, "exceeds the server's max_payload of 65536 bytes");
    free(payload);
    /* A reply larger than the server takes is an error reply, not a hang. */
    SERVE(state, "big", "--exec", "head -c 100000 /dev/zero");
    RUN(state, "request", "big", "x");
    expect_stderr(state, STATUS_SERVICE_ERROR, "service error 125");
}

static void test_serve_stops_after_running_requests(void **state_in)
{
    cli_state *state = *state_in;
    /* The command leaves a mark when it starts, so SIGTERM comes while the
     * request is surely running, however slowly the requester started. */
    char marker[PATH_BYTES_MAX + 16], command[2 * PATH_BYTES_MAX];
    snprintf(marker, sizeof marker, "%s/lazy-started", state->server.directory_path);
    snprintf(command, sizeof command, "touch '%s'; sleep 1; echo done", marker);
    background *service = SERVE(state, "lazy", "--exec", command);
    background *requester = BACKGROUND(state, "request", "lazy", "x", "--timeout", "5s");
    int64_t deadline_ms = harness_now_ms() + READY_TIMEOUT_MS;
    while (access(marker, F_OK) != 0 && harness_now_ms() < deadline_ms)
        harness_sleep_ms(POLL_INTERVAL_MS);
    assert_int_equal(access(marker, F_OK), 0);
    assert_int_equal(stop_background(service, SIGTERM), 0);
    assert_int_equal(wait_exit(requester, STOP_TIMEOUT_MS), 0);
    char out[64];
    read_file(requester->out_path, out, sizeof out);
    assert_string_equal(out, "done\n");
}

static void test_pub_sub(void **state_in)
{
    cli_state *state = *state_in;
    background *subscriber = BACKGROUND(state, "sub", "cli.>", "--count", "2");
    wait_ready(state, subscriber, "Listening on \"cli.>\"");
    RUN(state, "pub", "cli.a", "hello", "--header", "Color:blue", "--reply", "cli.inbox");
    expect_stdout(state, STATUS_OK, "Published 5 bytes to \"cli.a\"");
    RUN(state, "pub", "cli.b", "world");
    expect_status(&state->result, STATUS_OK);
    assert_int_equal(wait_exit(subscriber, STOP_TIMEOUT_MS), 0);
    char out[4096];
    read_file(subscriber->out_path, out, sizeof out);
    expect_contains(out, "[#1] Received on \"cli.a\" with reply \"cli.inbox\"\nColor: blue\n\n"
                         "hello\n");
    expect_contains(out, "[#2] Received on \"cli.b\"\nworld\n");

    background *json_subscriber = BACKGROUND(state, "sub", "cli.j", "--json", "--count", "1");
    wait_ready(state, json_subscriber, "Listening on");
    RUN(state, "pub", "cli.j", "payload", "--count", "1");
    expect_status(&state->result, STATUS_OK);
    assert_int_equal(wait_exit(json_subscriber, STOP_TIMEOUT_MS), 0);
    read_file(json_subscriber->out_path, out, sizeof out);
    assert_string_equal(out, "{\"subject\":\"cli.j\",\"payload\":\"payload\"}\n");

    background *forever = BACKGROUND(state, "sub", "cli.none");
    wait_ready(state, forever, "Listening on");
    assert_int_equal(stop_background(forever, SIGINT), 0);
}

/* kcobra submit without --node sends the host's name as Kc-Node, as
 * libkingcobra's clients do (docs/kcobra.md); it used to send none, and the
 * queue's records had an empty client field. */
static void test_submit_names_its_node(void **state_in)
{
    cli_state *state = *state_in;
    char host[256] = "";
    assert_int_equal(gethostname(host, sizeof host - 1), 0);
    host[strcspn(host, ".")] = '\0';
    background *subscriber = BACKGROUND(state, "sub", "kc.submit.cli", "--count", "1");
    wait_ready(state, subscriber, "Listening on");
    /* Acknowledged on kcobrad (its persister), a timeout on nats-server:
     * either way the submit went out. */
    RUN(state, "submit", "cli", "x", "--timeout", "1s");
    assert_int_equal(wait_exit(subscriber, STOP_TIMEOUT_MS), 0);
    char out[4096], expected[300];
    read_file(subscriber->out_path, out, sizeof out);
    snprintf(expected, sizeof expected, "Kc-Node: %s\n", host);
    expect_contains(out, expected);
}

/* An arbiter run with --no-observe-requests does not subscribe to kc.req.>,
 * so on any server a request nobody serves still gets "no responders"
 * (docs/arbiter.md: on nats-server a kc.req.> subscriber counts as a
 * responder; kcobrad's own arbiter observes through a tap). */
static void test_arbiter_without_observation(void **state_in)
{
    cli_state *state = *state_in;
    background *arbiter =
        BACKGROUND(state, "arbiter", "serve", "--no-observe-requests", "--id", "cli-arbiter");
    wait_ready(state, arbiter, "watching the fabric");
    RUN(state, "request", "nobody", "hi");
    expect_status(&state->result, STATUS_NO_RESPONDERS);
    assert_int_equal(stop_background(arbiter, SIGTERM), 0);
}

/* A new wallet's key file under the server's directory; its address in
 * address. */
static void wallet_new(cli_state *state, char *name, char *directory, char *address)
{
    state_path(state, "wallets", directory);
    RUN(state, "wallet", "new", name, "--wallet-dir", directory);
    expect_stdout(state, STATUS_OK, "address ");
    snprintf(address, 65, "%s", strstr(state->result.out, "address ") + strlen("address "));
}

/* Polls `kcobra arbiter status` until its output has text; false after
 * timeout_ms. */
static bool arbiter_status_says(cli_state *state, const char *text, int timeout_ms)
{
    int64_t deadline_ms = harness_now_ms() + timeout_ms;
    do {
        RUN(state, "arbiter", "status");
        if (state->result.status == STATUS_OK && strstr(state->result.out, text) != NULL)
            return true;
        harness_sleep_ms(POLL_INTERVAL_MS * 5);
    } while (harness_now_ms() < deadline_ms);
    return false;
}

/* On nats-server the arbiter cannot watch requests (it runs with
 * --no-observe-requests, so "no responders" stays true): it quarantines a
 * failing node from the QoS samples its clients sign (kcobra request
 * --qos-key, arbiter --node-key), and samples signed with another key than
 * the one configured for the reporter change nothing. */
static void test_arbiter_from_signed_samples(void **state_in)
{
    cli_state *state = *state_in;
    if (strstr(fixture_server_binary, "nats-server") == NULL) return; /* kcobrad's arbiter taps */
    char alice_dir[PATH_BYTES_MAX], mallory_dir[PATH_BYTES_MAX], data_dir[PATH_BYTES_MAX];
    char alice[80], mallory[80], node_key[128], alice_key[PATH_BYTES_MAX + 16],
        mallory_key[PATH_BYTES_MAX + 16];
    wallet_new(state, "alice", alice_dir, alice);
    wallet_new(state, "mallory", mallory_dir, mallory);
    snprintf(alice_key, sizeof alice_key, "%s/alice.key", alice_dir);
    snprintf(mallory_key, sizeof mallory_key, "%s/mallory.key", mallory_dir);
    snprintf(node_key, sizeof node_key, "alice=%s", alice);
    state_path(state, "arbiter", data_dir);
    background *arbiter = BACKGROUND(state, "arbiter", "serve", "--no-observe-requests", "--id",
                                     "qos-arbiter", "--node-key", node_key, "--data-dir", data_dir);
    wait_ready(state, arbiter, "watching the fabric");
    SERVE(state, "flaky", "--exec", "false", "--node", "badnode");
    for (int i = 0; i < SIGNED_SAMPLE_REQUESTS; i++) { /* alice's name, mallory's key */
        RUN(state, "request", "flaky", "x", "--node", "alice", "--qos-key", mallory_key);
        expect_status(&state->result, STATUS_SERVICE_ERROR);
    }
    assert_false(arbiter_status_says(state, "badnode", FORGED_SAMPLE_WAIT_MS));
    for (int i = 0; i < SIGNED_SAMPLE_REQUESTS; i++) {
        RUN(state, "request", "flaky", "x", "--node", "alice", "--qos-key", alice_key);
        expect_status(&state->result, STATUS_SERVICE_ERROR);
    }
    assert_true(arbiter_status_says(state, "quarantined", VERDICT_WAIT_MS));
    expect_contains(state->result.out, "badnode");
    RUN(state, "request", "nobody", "hi");
    expect_status(&state->result, STATUS_NO_RESPONDERS);
    assert_int_equal(stop_background(arbiter, SIGTERM), 0);
}

static void test_suggestions(void **state_in)
{
    cli_state *state = *state_in;
    /* nats-server has no keeper; kcobrad gets one (then this answers 0). */
    bool reference = strstr(fixture_server_binary, "nats-server") != NULL;
    RUN(state, "suggestions");
    if (reference || state->result.status == STATUS_NO_RESPONDERS) {
        expect_stderr(state, STATUS_NO_RESPONDERS,
                      "no suggestion keeper answers on kc.suggest.list");
    } else {
        expect_stdout(state, STATUS_OK, "ID");
    }
    RUN(state, "suggest", "more cache");
    if (reference || state->result.status == STATUS_NO_RESPONDERS) {
        expect_stderr(state, STATUS_NO_RESPONDERS, "no suggestion keeper");
    } else {
        expect_stdout(state, STATUS_OK, "suggestion stored");
    }
}

/* kcobra keeper serve: the keeper as a process of its own. On nats-server it
 * is the only keeper; kcobrad has its own in the same queue group, so there
 * only the start, the stored file and the clean stop are checked. */
static void test_keeper_standalone(void **state_in)
{
    cli_state *state = *state_in;
    char file[PATH_BYTES_MAX];
    state_path(state, "suggestions", file);
    background *keeper = BACKGROUND(state, "keeper", "serve", "--file", file);
    wait_ready(state, keeper, "keeping");
    if (strstr(fixture_server_binary, "nats-server") != NULL) {
        RUN(state, "suggest", "standalone keeper");
        expect_stdout(state, STATUS_OK, "suggestion stored");
        RUN(state, "suggestions", "--json");
        expect_stdout(state, STATUS_OK, "standalone keeper");
        char stored[4096];
        read_file(file, stored, sizeof stored);
        expect_contains(stored, "standalone keeper");
    }
    RUN(state, "keeper", "start");
    expect_stderr(state, STATUS_USAGE, "unknown action 'start'");
    assert_int_equal(stop_background(keeper, SIGTERM), 0);
}

/* kcobra ingress serve: seed-format lines through the fabric to a service. */
static void test_ingress_standalone(void **state_in)
{
    cli_state *state = *state_in;
    SERVE(state, "seedup", "--exec", "tr a-z A-Z");
    background *ingress =
        BACKGROUND(state, "ingress", "serve", "--listen", "127.0.0.1:0", "--type", "seedup");
    wait_ready(state, ingress, "listening for seed-format lines on 127.0.0.1:");
    const char *where = strstr(state->result.err, "on 127.0.0.1:");
    assert_non_null(where);
    int port = atoi(where + strlen("on 127.0.0.1:"));
    assert_true(port > 0);
    harness_raw raw;
    harness_raw_init(&raw);
    assert_int_equal(harness_raw_connect(&raw, port, 0), HARNESS_OK);
    assert_int_equal(harness_raw_send_text(&raw, "REQUEST#alice#17#hello\r\nnot a request\n"),
                     HARNESS_OK);
    assert_int_equal(harness_raw_expect_line(&raw, "REPLY#alice#17#HELLO", RUN_TIMEOUT_MS),
                     HARNESS_OK);
    char line[256];
    assert_int_equal(harness_raw_read_line(&raw, line, sizeof line, RUN_TIMEOUT_MS), HARNESS_OK);
    expect_contains(line, "ERROR#");
    harness_raw_close(&raw);
    RUN(state, "ingress", "serve", "--listen", "127.0.0.1:99999");
    expect_stderr(state, STATUS_USAGE, "is not HOST:PORT");
    assert_int_equal(stop_background(ingress, SIGTERM), 0);
}

static void test_stats(void **state_in)
{
    cli_state *state = *state_in;
    RUN(state, "stats", "--monitor", state->monitor_url);
    expect_stdout(state, STATUS_OK, "Version:");
    expect_contains(state->result.out, "Total connections:");
    expect_contains(state->result.out, "Slow consumers:");
    RUN(state, "stats", "--monitor", state->monitor_url, "--json");
    expect_stdout(state, STATUS_OK, "\"server_id\"");
    expect_contains(state->result.out, "\"max_payload\":65536");
    /* One object a line (issue 18): it was 51 pretty-printed lines. */
    assert_int_equal(strchr(state->result.out, '\n') - state->result.out + 1,
                     (long)state->result.out_length);
    /* --server (here KCOBRA_SERVER) is honoured: without --monitor, port
     * 8222 of its host, which is not this server's, is never reported as
     * if it were; with --monitor of another server than --server, refused. */
    RUN(state, "stats");
    assert_int_not_equal(state->result.status, STATUS_OK);
    expect_contains(state->result.err, "--monitor");
    RUN(state, "stats", "--monitor", state->monitor_url, "--server", "nats://127.0.0.1:1");
    expect_stderr(state, STATUS_FAILURE, "belongs to the server on port");
    RUN(state, "stats", "--monitor", "http://127.0.0.1:1");
    expect_status(&state->result, STATUS_CONNECT);
    RUN(state, "stats", "--monitor", "ftp://127.0.0.1");
    expect_status(&state->result, STATUS_USAGE);
}

static void test_cannot_connect(void **state_in)
{
    cli_state *state = *state_in;
    RUN(state, "request", "echo", "hi", "--server", "nats://127.0.0.1:1");
    expect_stderr(state, STATUS_CONNECT, "cannot connect to nats://127.0.0.1:1");
    RUN(state, "pub", "x", "hi", "--server", "nats://127.0.0.1:1");
    expect_status(&state->result, STATUS_CONNECT);
}

/* --server takes a list (docs/cluster.md) on every path: libkingcobra's
 * (request) and the raw nats.c connections (pub, sub, submit, ledger ...),
 * which used to hand the whole list to nats.c as one URL. A dead server
 * first in the list is skipped. */
static void test_server_list(void **state_in)
{
    cli_state *state = *state_in;
    char list[2 * HARNESS_URL_SIZE_MAX + 32];
    snprintf(list, sizeof list, "nats://127.0.0.1:1,%s", state->server.url);
    RUN(state, "pub", "cli.list", "hi", "--server", list);
    expect_stdout(state, STATUS_OK, "Published 2 bytes to \"cli.list\"");
    snprintf(list, sizeof list, "%s, %s", state->server.url, state->server.url);
    RUN(state, "pub", "cli.list", "hi", "--server", list);
    expect_status(&state->result, STATUS_OK);
    RUN(state, "request", "nobody", "hi", "--server", list);
    expect_status(&state->result, STATUS_NO_RESPONDERS);
    RUN(state, "pub", "cli.list", "hi", "--server", ",");
    expect_status(&state->result, STATUS_USAGE);
}

/* A second server with TLS (client certificates verified) and a password:
 * every connecting path of kcobra (libkingcobra and raw nats.c) takes the
 * common TLS and credential options. */
static void test_tls_and_password(void **state_in)
{
    cli_state *state = *state_in;
    harness_server *secure = &state->secure_server;
    assert_int_equal(harness_server_init(secure, fixture_server_binary), HARNESS_OK);
    assert_int_equal(harness_tls_generate(secure), HARNESS_OK);
    char config[4 * HARNESS_PATH_SIZE_MAX + 256];
    const char *directory = secure->directory_path;
    snprintf(config, sizeof config,
             "tls {\n  cert_file: \"%s/server-cert.pem\"\n  key_file: \"%s/server-key.pem\"\n"
             "  ca_file: \"%s/ca.pem\"\n  verify: true\n  timeout: 2\n}\n"
             "authorization { user: alice, password: \"s3cr3t\" }\n",
             directory, directory, directory);
    assert_int_equal(harness_server_start(secure, config), HARNESS_OK);
    char ca[PATH_BYTES_MAX], cert[PATH_BYTES_MAX], key[PATH_BYTES_MAX];
    snprintf(ca, sizeof ca, "%s/ca.pem", directory);
    snprintf(cert, sizeof cert, "%s/client-cert.pem", directory);
    snprintf(key, sizeof key, "%s/client-key.pem", directory);
    setenv("KCOBRA_SERVER", secure->url, 1);
    setenv("KCOBRA_PASSWORD", "s3cr3t", 1); /* the environment, not the command line */
    SERVE(state, "secure_echo", "--exec", "cat", "--tls-ca", ca, "--tls-cert", cert, "--tls-key",
          key, "--user", "alice");
    RUN(state, "request", "secure_echo", "hello", "--tls-ca", ca, "--tls-cert", cert, "--tls-key",
        key, "--user", "alice");
    expect_status(&state->result, STATUS_OK);
    assert_string_equal(state->result.out, "hello");
    RUN(state, "pub", "secure.x", "hi", "--tls-ca", ca, "--tls-cert", cert, "--tls-key", key,
        "--user", "alice");
    expect_status(&state->result, STATUS_OK);
    RUN(state, "request", "secure_echo", "hello", "--tls-ca", ca, "--tls-cert", cert, "--tls-key",
        key, "--user", "alice", "--password", "wrong");
    expect_status(&state->result, STATUS_CONNECT);
    RUN(state, "pub", "secure.x", "hi", "--tls-ca", ca, "--tls-cert", cert, "--tls-key", key);
    expect_status(&state->result, STATUS_CONNECT); /* no user */
    RUN(state, "request", "secure_echo", "hello", "--tls-ca", "/nonexistent/ca.pem", "--user",
        "alice");
    expect_status(&state->result, STATUS_CONNECT);
}

#define CASE(name) cmocka_unit_test_setup_teardown(name, case_setup, case_teardown)

int main(int argc, char **argv)
{
    if (!fixture_parse_arguments(argc, argv)) return 2;
    kcobra_path = getenv(KCOBRA_ENVIRONMENT);
    if (kcobra_path == NULL || kcobra_path[0] == '\0') {
        fprintf(stderr, "cli: KCOBRA (the kcobra binary) is not set; skipping\n");
        return EXIT_SKIP;
    }
    const struct CMUnitTest tests[] = {
        CASE(test_help_every_command),
        CASE(test_usage_errors),
        CASE(test_problem_bad_reason),
        CASE(test_request_reply),
        CASE(test_request_json),
        CASE(test_environment_and_no_injection),
        CASE(test_no_responders),
        CASE(test_request_timeout),
        CASE(test_exec_fails),
        CASE(test_exec_crashes),
        CASE(test_exec_timeout),
        CASE(test_exec_limit_holds_against_a_far_deadline),
        CASE(test_exec_deadline_shortens_the_limit),
        CASE(test_payload_too_large),
        CASE(test_serve_stops_after_running_requests),
        CASE(test_pub_sub),
        CASE(test_submit_names_its_node),
        CASE(test_arbiter_without_observation),
        CASE(test_arbiter_from_signed_samples),
        CASE(test_suggestions),
        CASE(test_keeper_standalone),
        CASE(test_ingress_standalone),
        CASE(test_stats),
        CASE(test_cannot_connect),
        CASE(test_server_list),
        CASE(test_tls_and_password),
    };
    return cmocka_run_group_tests_name("cli", tests, group_setup, group_teardown);
}
