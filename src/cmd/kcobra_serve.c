/* kcobra_serve.c - `kcobra serve <type> --exec CMD`: a libkingcobra service
 * whose handler is a shell command, like inetd for KingCobra request types.
 *
 * For each request the command runs as `/bin/sh -c CMD` (posix_spawn, in a
 * process group of its own) with the request payload on stdin and its
 * metadata in the environment (KC_ID, KC_TYPE, KC_NODE, KC_TS and, when the
 * request has one, KC_DEADLINE_MS). The payload is never part of a command
 * line: CMD is exactly what the operator gave. What the command writes to
 * stdout (at most EXEC_OUTPUT_BYTES_MAX) is the reply; otherwise the reply is
 * an error:
 *   exit status N != 0   code N, the first line of stderr (or "command exited
 *                        with status N")
 *   killed by signal S   code 128+S, "command killed by signal S"
 *   out of time          code 124 (timeout(1)'s), "command timed out after D";
 *                        the whole process group is killed (SIGKILL)
 *   too much output      code 125, "command output exceeds N bytes" (killed),
 *                        or more than the server's max_payload
 *   cannot start         code 126 (the shell's "cannot execute")
 * The time limit is the serve's own, --exec-timeout (default
 * EXEC_TIMEOUT_MS_DEFAULT), or what is left of the request's deadline (plus
 * a grace of EXEC_DEADLINE_GRACE_MS, so that the requester sees its own
 * timeout rather than a racing error reply) when that is sooner: a
 * requester can shorten the limit, never lift it.
 *
 * Each worker thread of the service runs one command at a time and pumps its
 * pipes with poll(2) until stdout and stderr are closed, then reaps it; every
 * child is waited for, so none is left a zombie. SIGINT and SIGTERM are
 * blocked in every thread and taken by the main thread with sigwait: it stops
 * the service (no new requests; running commands finish) and exits 0.
 *
 * Known limits: a command that leaves a background process holding its
 * stdout open is waited for until the time limit, then killed with its
 * group; a reply under EXEC_OUTPUT_BYTES_MAX can still exceed a server whose
 * max_payload is smaller (the library then reports the failed reply). */
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/log.h"
#include "kcobra_common.h"
#include "ledger/wallet.h"

extern char **environ;

enum {
    SERVE_WORKERS_MAX = 256,
    EXEC_OUTPUT_BYTES_MAX = 1024 * 1024, /* the reply payload */
    EXEC_STDERR_BYTES_MAX = 4096,        /* kept for the error message; the rest is drained */
    EXEC_TIMEOUT_MS_DEFAULT = 60 * 1000, /* without --exec-timeout; a deadline only shortens it */
    /* Past the request's deadline the requester has given up; killing the
     * command a little later makes sure it sees its own timeout, not an
     * error reply racing it. */
    EXEC_DEADLINE_GRACE_MS = 250,
    EXEC_READ_CHUNK_BYTES = 64 * 1024,
    EXEC_REAP_POLL_MS = 2,
    EXEC_ENVIRONMENT_ENTRIES_MAX = 4096, /* inherited variables passed on */
    EXEC_METADATA_ENTRIES = 5,           /* KC_ID, KC_TYPE, KC_NODE, KC_TS, KC_DEADLINE_MS */
    EXEC_CODE_TIMED_OUT = 124,
    EXEC_CODE_OUTPUT_TOO_LARGE = 125,
    EXEC_CODE_CANNOT_RUN = 126,
    EXEC_CODE_SIGNAL_BASE = 128,
    SERVE_CLOSE_TIMEOUT_MS = 5000,
};

#define EXEC_SHELL "/bin/sh"

typedef struct serve_config {
    const char *type;
    const char *exec_command;
    int64_t exec_timeout_ms; /* 0: EXEC_TIMEOUT_MS_DEFAULT; a request's deadline shortens it */
    bool json;               /* log lines as JSON objects */
    int64_t price;           /* > 0: a paid service (docs/ledger.md) */
    const char *wallet;      /* the address paid requests must pay */
    const char *wallet_key;  /* its key file: settles holds (Kc-Pay-Hold) */
} serve_config;

/* How a request was answered, for the log. */
typedef struct reply_summary {
    int code; /* 0: a payload reply */
    size_t bytes;
    char message[KC_ERROR_MESSAGE_BYTES_MAX];
} reply_summary;

typedef enum exec_outcome {
    EXEC_EXITED,
    EXEC_SIGNALED,
    EXEC_TIMED_OUT,
    EXEC_TOO_LARGE,
    EXEC_CANNOT_RUN,
} exec_outcome;

/* One run of the command: its pipes (parent ends, -1 once closed), what it
 * wrote, and how it ended. */
typedef struct exec_job {
    pid_t pid;
    int stdin_fd;
    int stdout_fd;
    int stderr_fd;
    const char *input;
    size_t input_length;
    size_t input_offset;
    int64_t deadline_ms; /* monotonic */
    kcobra_buffer output;
    size_t output_capacity;
    char stderr_head[EXEC_STDERR_BYTES_MAX + 1];
    size_t stderr_length;
    exec_outcome outcome;
    int code; /* exit status, signal number or errno, by outcome */
} exec_job;

static void close_fd(int *fd)
{
    if (*fd >= 0) close(*fd);
    *fd = -1;
}

/* ============================================================ environment */

static bool is_metadata_entry(const char *entry)
{
    static const char *const NAMES[] = {
        "KC_ID=", "KC_TYPE=", "KC_NODE=", "KC_TS=", "KC_DEADLINE_MS="};
    for (size_t index = 0; index < sizeof NAMES / sizeof NAMES[0]; index++)
        if (strncmp(entry, NAMES[index], strlen(NAMES[index])) == 0) return true;
    return false;
}

static void environment_free(char **environment, int owned_from)
{
    if (environment == NULL) return;
    for (int index = owned_from; environment[index] != NULL; index++)
        free(environment[index]);
    free(environment);
}

static bool environment_add(char **environment, int *count, const char *name, const char *value)
{
    char *entry = NULL;
    if (asprintf(&entry, "%s=%s", name, value != NULL ? value : "") < 0) return false;
    environment[(*count)++] = entry;
    return true;
}

/* The inherited environment without stale KC_* entries, then the request's
 * metadata (owned, from *owned_from on). */
static char **environment_build(const kc_request *request, int *owned_from)
{
    int inherited_count = 0;
    while (inherited_count < EXEC_ENVIRONMENT_ENTRIES_MAX && environ[inherited_count] != NULL)
        inherited_count++;
    char **environment =
        calloc((size_t)inherited_count + EXEC_METADATA_ENTRIES + 1, sizeof(char *));
    if (environment == NULL) return NULL;
    int count = 0;
    for (int index = 0; index < inherited_count; index++)
        if (!is_metadata_entry(environ[index])) environment[count++] = environ[index];
    *owned_from = count;
    bool ok = environment_add(environment, &count, "KC_ID", kc_request_id(request)) &&
              environment_add(environment, &count, "KC_TYPE", kc_request_type(request)) &&
              environment_add(environment, &count, "KC_NODE", kc_request_node(request)) &&
              environment_add(environment, &count, "KC_TS", kc_request_timestamp(request));
    int64_t deadline_ms = kc_request_deadline_ms(request);
    if (ok && deadline_ms > 0) {
        char deadline_text[32];
        snprintf(deadline_text, sizeof deadline_text, "%lld", (long long)deadline_ms);
        ok = environment_add(environment, &count, "KC_DEADLINE_MS", deadline_text);
    }
    if (ok) return environment;
    environment_free(environment, *owned_from);
    return NULL;
}

/* ================================================================== spawn */

static int make_pipe(int fds[2], int parent_end)
{
    if (pipe2(fds, O_CLOEXEC) != 0) return -1;
    int flags = fcntl(fds[parent_end], F_GETFL);
    if (flags < 0 || fcntl(fds[parent_end], F_SETFL, flags | O_NONBLOCK) != 0) {
        close(fds[0]);
        close(fds[1]);
        return -1;
    }
    return 0;
}

static int spawn_with_pipes(exec_job *job, const char *command, char **environment, const int in[2],
                            const int out[2], const int err[2])
{
    posix_spawn_file_actions_t actions;
    posix_spawnattr_t attributes;
    int status = posix_spawn_file_actions_init(&actions);
    if (status != 0) return status;
    status = posix_spawnattr_init(&attributes);
    if (status != 0) {
        posix_spawn_file_actions_destroy(&actions);
        return status;
    }
    /* The pipes are close-on-exec; dup2 onto 0, 1, 2 clears the flag there
     * only, so no child inherits another child's pipe ends. */
    posix_spawn_file_actions_adddup2(&actions, in[0], STDIN_FILENO);
    posix_spawn_file_actions_adddup2(&actions, out[1], STDOUT_FILENO);
    posix_spawn_file_actions_adddup2(&actions, err[1], STDERR_FILENO);
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 34))
    /* And not the NATS socket either. */
    posix_spawn_file_actions_addclosefrom_np(&actions, STDERR_FILENO + 1);
#endif
    sigset_t empty, all;
    sigemptyset(&empty);
    sigfillset(&all);
    posix_spawnattr_setflags(&attributes, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK |
                                              POSIX_SPAWN_SETSIGDEF);
    posix_spawnattr_setpgroup(&attributes, 0); /* its own group: killed as one */
    posix_spawnattr_setsigmask(&attributes, &empty);
    posix_spawnattr_setsigdefault(&attributes, &all);
    char *argv[] = {EXEC_SHELL, "-c", (char *)command, NULL};
    status = posix_spawn(&job->pid, EXEC_SHELL, &actions, &attributes, argv, environment);
    posix_spawnattr_destroy(&attributes);
    posix_spawn_file_actions_destroy(&actions);
    return status;
}

/* Starts the command; on failure job->outcome is EXEC_CANNOT_RUN with errno
 * in job->code. */
static bool exec_spawn(exec_job *job, const char *command, const kc_request *request)
{
    int in[2] = {-1, -1}, out[2] = {-1, -1}, err[2] = {-1, -1};
    int owned_from = 0;
    char **environment = NULL;
    int status = 0;
    if (make_pipe(in, 1) != 0 || make_pipe(out, 0) != 0 || make_pipe(err, 0) != 0) status = errno;
    if (status == 0 && (environment = environment_build(request, &owned_from)) == NULL)
        status = ENOMEM;
    if (status == 0) status = spawn_with_pipes(job, command, environment, in, out, err);
    environment_free(environment, owned_from);
    close_fd(&in[0]);
    close_fd(&out[1]);
    close_fd(&err[1]);
    job->stdin_fd = in[1];
    job->stdout_fd = out[0];
    job->stderr_fd = err[0];
    if (status == 0) {
        assert(job->pid > 0 && job->stdout_fd >= 0 && job->stderr_fd >= 0);
        if (job->input_length == 0) close_fd(&job->stdin_fd);
        return true;
    }
    close_fd(&job->stdin_fd);
    close_fd(&job->stdout_fd);
    close_fd(&job->stderr_fd);
    job->pid = 0;
    job->outcome = EXEC_CANNOT_RUN;
    job->code = status;
    return false;
}

/* =================================================================== pump */

static void pump_stdin(exec_job *job)
{
    size_t left = job->input_length - job->input_offset;
    ssize_t wrote = write(job->stdin_fd, job->input + job->input_offset, left);
    if (wrote < 0 && (errno == EAGAIN || errno == EINTR)) return;
    /* EPIPE: the command does not want (the rest of) its input; fine. */
    if (wrote < 0) {
        close_fd(&job->stdin_fd);
        return;
    }
    job->input_offset += (size_t)wrote;
    if (job->input_offset == job->input_length) close_fd(&job->stdin_fd);
}

/* Returns false when the output passed its bound. */
static bool pump_stdout(exec_job *job)
{
    if (job->output.length == job->output_capacity) {
        size_t grown = job->output_capacity == 0 ? EXEC_READ_CHUNK_BYTES : job->output_capacity * 2;
        if (grown > EXEC_OUTPUT_BYTES_MAX + 1) grown = EXEC_OUTPUT_BYTES_MAX + 1;
        char *bytes = realloc(job->output.bytes, grown);
        if (bytes == NULL) return false;
        job->output.bytes = bytes;
        job->output.heap = true;
        job->output_capacity = grown;
    }
    assert(job->output.length < job->output_capacity);
    ssize_t got = read(job->stdout_fd, job->output.bytes + job->output.length,
                       job->output_capacity - job->output.length);
    if (got < 0 && (errno == EAGAIN || errno == EINTR)) return true;
    if (got <= 0) {
        close_fd(&job->stdout_fd);
        return true;
    }
    job->output.length += (size_t)got;
    return job->output.length <= EXEC_OUTPUT_BYTES_MAX;
}

static void pump_stderr(exec_job *job)
{
    char chunk[EXEC_STDERR_BYTES_MAX];
    ssize_t got = read(job->stderr_fd, chunk, sizeof chunk);
    if (got < 0 && (errno == EAGAIN || errno == EINTR)) return;
    if (got <= 0) {
        close_fd(&job->stderr_fd);
        return;
    }
    assert(job->stderr_length <= EXEC_STDERR_BYTES_MAX);
    size_t room = EXEC_STDERR_BYTES_MAX - job->stderr_length;
    size_t kept = (size_t)got < room ? (size_t)got : room;
    memcpy(job->stderr_head + job->stderr_length, chunk, kept);
    job->stderr_length += kept;
    job->stderr_head[job->stderr_length] = '\0';
}

/* Feeds stdin and drains stdout and stderr until both are closed (true), or
 * the time is up or the output too large (false, job->outcome says which). */
static bool exec_pump(exec_job *job)
{
    assert(job->pid > 0);
    while (job->stdout_fd >= 0 || job->stderr_fd >= 0) {
        int64_t remaining_ms = job->deadline_ms - kci_monotonic_ms();
        if (remaining_ms <= 0) {
            job->outcome = EXEC_TIMED_OUT;
            return false;
        }
        struct pollfd fds[3];
        int fd_count = 0;
        const int fd_list[3] = {job->stdin_fd, job->stdout_fd, job->stderr_fd};
        for (int index = 0; index < 3; index++) {
            if (fd_list[index] < 0) continue;
            fds[fd_count].fd = fd_list[index];
            fds[fd_count].events = index == 0 ? POLLOUT : POLLIN;
            fds[fd_count++].revents = 0;
        }
        /* A long --exec-timeout must not wrap to a negative (infinite) wait. */
        int wait_ms = remaining_ms > INT_MAX ? INT_MAX : (int)remaining_ms;
        int ready = poll(fds, (nfds_t)fd_count, wait_ms);
        if (ready < 0 && errno != EINTR) {
            job->outcome = EXEC_TIMED_OUT; /* cannot wait any more: treat as out of time */
            return false;
        }
        for (int index = 0; ready > 0 && index < fd_count; index++) {
            if (fds[index].revents == 0) continue;
            if (fds[index].fd == job->stdin_fd)
                pump_stdin(job);
            else if (fds[index].fd == job->stderr_fd)
                pump_stderr(job);
            else if (fds[index].fd == job->stdout_fd && !pump_stdout(job)) {
                job->outcome = EXEC_TOO_LARGE;
                return false;
            }
        }
    }
    return true;
}

/* Waits for the child until the deadline; false if it still runs. */
static bool exec_wait(exec_job *job, int64_t deadline_ms, int *wait_status)
{
    for (;;) {
        pid_t got = waitpid(job->pid, wait_status, WNOHANG);
        if (got == job->pid) return true;
        if (got < 0 && errno != EINTR) {
            *wait_status = 0; /* not our child any more: nothing to reap */
            return true;
        }
        if (kci_monotonic_ms() >= deadline_ms) return false;
        struct timespec pause = {0, EXEC_REAP_POLL_MS * 1000000L};
        nanosleep(&pause, NULL);
    }
}

static void exec_kill_and_reap(exec_job *job)
{
    assert(job->pid > 0); /* never kill(-0): that is our own process group */
    kill(-job->pid, SIGKILL);
    int wait_status;
    while (waitpid(job->pid, &wait_status, 0) < 0 && errno == EINTR) {
    }
}

/* Runs the command to its end (or kills it); never leaves a zombie. */
static void exec_run(exec_job *job, const char *command, const kc_request *request)
{
    if (!exec_spawn(job, command, request)) return;
    int wait_status = 0;
    if (exec_pump(job) && exec_wait(job, job->deadline_ms, &wait_status)) {
        if (WIFSIGNALED(wait_status)) {
            job->outcome = EXEC_SIGNALED;
            job->code = WTERMSIG(wait_status);
        } else {
            job->outcome = EXEC_EXITED;
            job->code = WIFEXITED(wait_status) ? WEXITSTATUS(wait_status) : 0;
        }
    } else {
        if (job->outcome != EXEC_TOO_LARGE) job->outcome = EXEC_TIMED_OUT;
        exec_kill_and_reap(job);
    }
    close_fd(&job->stdin_fd);
    close_fd(&job->stdout_fd);
    close_fd(&job->stderr_fd);
}

/* ================================================================ handler */

/* The first line of stderr, as a header-safe message; empty if none. */
static void first_stderr_line(const exec_job *job, char *message, size_t message_size)
{
    size_t length = 0;
    for (size_t index = 0; index < job->stderr_length && length + 1 < message_size; index++) {
        unsigned char byte = (unsigned char)job->stderr_head[index];
        if (byte == '\n') break;
        message[length++] = (char)byte;
        if (byte < ' ' || byte == 0x7f) message[length - 1] = ' ';
    }
    while (length > 0 && message[length - 1] == ' ')
        length--;
    message[length] = '\0';
}

/* Sets the reply from how the command ended and summarises it for the log. */
static void respond(const exec_job *job, int64_t limit_ms, kc_response *response,
                    reply_summary *summary)
{
    char *message = summary->message;
    size_t message_size = sizeof summary->message;
    char limit_text[KCOBRA_DURATION_TEXT_BYTES];
    switch (job->outcome) {
    case EXEC_EXITED:
        if (job->code == 0 &&
            kc_response_set_payload(response, job->output.bytes, job->output.length) == KC_OK) {
            summary->code = 0;
            summary->bytes = job->output.length;
            return;
        }
        if (job->code == 0) { /* more than the server's max_payload */
            summary->code = EXEC_CODE_OUTPUT_TOO_LARGE;
            snprintf(message, message_size, "command output too large: %s", kc_last_error());
            break;
        }
        summary->code = job->code;
        first_stderr_line(job, message, message_size);
        if (message[0] == '\0')
            snprintf(message, message_size, "command exited with status %d", job->code);
        break;
    case EXEC_SIGNALED:
        summary->code = EXEC_CODE_SIGNAL_BASE + job->code;
        snprintf(message, message_size, "command killed by signal %d", job->code);
        break;
    case EXEC_TIMED_OUT:
        summary->code = EXEC_CODE_TIMED_OUT;
        kcobra_format_duration_ms(limit_ms, limit_text);
        snprintf(message, message_size, "command timed out after %s", limit_text);
        break;
    case EXEC_TOO_LARGE:
        summary->code = EXEC_CODE_OUTPUT_TOO_LARGE;
        snprintf(message, message_size, "command output exceeds %d bytes", EXEC_OUTPUT_BYTES_MAX);
        break;
    case EXEC_CANNOT_RUN:
        summary->code = EXEC_CODE_CANNOT_RUN;
        snprintf(message, message_size, "cannot run %s: %s", EXEC_SHELL, strerror(job->code));
        break;
    }
    kc_response_set_error(response, summary->code, message);
}

/* The time limit for one request: the serve's own (--exec-timeout, else
 * EXEC_TIMEOUT_MS_DEFAULT), shortened to what is left of the request's
 * deadline (plus EXEC_DEADLINE_GRACE_MS) when that is sooner. A caller's
 * deadline only ever shortens it: a Kc-Deadline far in the future must not
 * let one request hold a worker, and run its command, longer than the
 * operator allows. 0: the deadline has passed. */
static int64_t exec_limit_ms(const serve_config *config, const kc_request *request)
{
    int64_t limit_ms =
        config->exec_timeout_ms > 0 ? config->exec_timeout_ms : EXEC_TIMEOUT_MS_DEFAULT;
    int64_t deadline_ms = kc_request_deadline_ms(request); /* at most 15 digits: no overflow */
    if (deadline_ms <= 0) return limit_ms;
    int64_t left_ms = deadline_ms - kci_wall_ms();
    if (left_ms <= 0) return 0;
    left_ms += EXEC_DEADLINE_GRACE_MS;
    return left_ms < limit_ms ? left_ms : limit_ms;
}

/* Writes one JSON object and a newline to stderr with a single write(2), so
 * lines from concurrent workers never interleave; takes the reference. */
static void log_json(json_t *line)
{
    char *text = line != NULL ? json_dumps(line, JSON_COMPACT) : NULL;
    json_decref(line);
    if (text == NULL) return;
    size_t length = strlen(text);
    text[length] = '\n'; /* replaces the NUL: written by length, not as a string */
    if (write(STDERR_FILENO, text, length + 1) < 0) {
        /* Nowhere left to report it. */
    }
    free(text);
}

/* A service event (serving, stopping, stopped): a log line, or with --json
 * {"time_ms","event","message"}. */
static void log_event(const serve_config *config, const char *event, const char *format, ...)
    __attribute__((format(printf, 3, 4)));
static void log_event(const serve_config *config, const char *event, const char *format, ...)
{
    char message[KC_ERROR_MESSAGE_BYTES_MAX];
    va_list arguments;
    va_start(arguments, format);
    vsnprintf(message, sizeof message, format, arguments);
    va_end(arguments);
    if (!config->json) {
        kci_info("%s", message);
        return;
    }
    log_json(json_pack("{s:I,s:s,s:s}", "time_ms", (json_int_t)kci_wall_ms(), "event", event,
                       "message", message));
}

/* One line per request on stderr: the logger's text line, or with --json
 * one JSON object written with a single write(2). */
static void log_request(const serve_config *config, const kc_request *request,
                        const reply_summary *summary, double duration_ms)
{
    const char *node = kc_request_node(request);
    if (node == NULL || node[0] == '\0') node = "-";
    if (!config->json) {
        if (summary->code == 0)
            kci_info("request id=%s type=%s from=%s ok bytes=%zu duration=%.3fms",
                     kc_request_id(request), kc_request_type(request), node, summary->bytes,
                     duration_ms);
        else
            kci_info("request id=%s type=%s from=%s error=%d message=\"%s\" duration=%.3fms",
                     kc_request_id(request), kc_request_type(request), node, summary->code,
                     summary->message, duration_ms);
        return;
    }
    log_json(json_pack(
        "{s:I,s:s,s:s?,s:s?,s:s,s:s,s:i,s:s,s:I,s:f}", "time_ms", (json_int_t)kci_wall_ms(),
        "event", "request", "id", kc_request_id(request), "type", kc_request_type(request), "from",
        node, "status", summary->code == 0 ? "ok" : "error", "code", summary->code, "message",
        summary->message, "bytes", (json_int_t)summary->bytes, "duration_ms", duration_ms));
}

static void serve_handler(const kc_request *request, kc_response *response, void *closure)
{
    const serve_config *config = closure;
    int64_t started_us = kci_monotonic_us();
    int64_t limit_ms = exec_limit_ms(config, request);
    exec_job job;
    memset(&job, 0, sizeof job);
    job.stdin_fd = job.stdout_fd = job.stderr_fd = -1;
    job.input = kc_request_payload(request, &job.input_length);
    job.deadline_ms = started_us / 1000 + limit_ms;
    reply_summary summary;
    memset(&summary, 0, sizeof summary);
    if (limit_ms == 0) {
        summary.code = EXEC_CODE_TIMED_OUT;
        snprintf(summary.message, sizeof summary.message,
                 "the request's deadline passed before the command ran");
        kc_response_set_error(response, summary.code, summary.message);
    } else {
        exec_run(&job, config->exec_command, request);
        respond(&job, limit_ms, response, &summary);
    }
    log_request(config, request, &summary, (double)(kci_monotonic_us() - started_us) / 1000.0);
    kcobra_buffer_free(&job.output);
}

/* ================================================================ command */

static const char SERVE_DESCRIPTION[] =
    "Serves requests of <type> (subject kc.req.<type>, queue group <type>: run several\n"
    "to share the load). Each request runs `/bin/sh -c CMD` with the payload on stdin and\n"
    "KC_ID, KC_TYPE, KC_NODE (the requester), KC_TS and KC_DEADLINE_MS in the environment;\n"
    "its stdout (at most 1 MiB) is the reply. Errors are replied as codes:\n"
    "  exit status N            code N, message: the first line of stderr\n"
    "  killed by signal S       code 128+S, \"command killed by signal S\"\n"
    "  out of time              code 124, \"command timed out after D\" (group killed)\n"
    "  more than 1 MiB output   code 125\n"
    "  cannot start /bin/sh     code 126\n"
    "One line per request is logged to stderr (a JSON object with --json). SIGINT or\n"
    "SIGTERM: stop taking requests, let running commands finish, exit 0.\n"
    "\n"
    "Examples:\n"
    "  kcobra serve echo --exec cat\n"
    "  kcobra serve upper --exec 'tr a-z A-Z' --workers 16\n"
    "  kcobra serve wc --exec 'wc -c' --exec-timeout 5s\n";

static void keep_standard_fds_open(void)
{
    /* A closed 0, 1 or 2 would be reused by a pipe, and dup2 onto the same
     * number would not clear close-on-exec. */
    for (int fd = STDIN_FILENO; fd <= STDERR_FILENO; fd++)
        if (fcntl(fd, F_GETFD) < 0) open("/dev/null", O_RDWR);
}

static int serve_until_signal(kc_client *client, const serve_config *config, int worker_count,
                              const sigset_t *stop_signals)
{
    kc_service_options options;
    kc_service_options_init(&options);
    options.worker_count = worker_count;
    options.price = config->price;
    options.wallet = config->wallet;
    kci_wallet key;
    char address[KCI_LEDGER_ADDRESS_TEXT_BYTES + 1], error[KCI_LEDGER_ERROR_BYTES_MAX + 256];
    if (config->wallet_key != NULL) {
        if (kci_wallet_load(&key, config->wallet_key, error, sizeof error) != KC_OK) {
            kcobra_error("--wallet-key: %s", error);
            return KCOBRA_EXIT_FAILURE;
        }
        kci_wallet_address(address, &key);
        if (options.wallet == NULL) options.wallet = address;
        options.wallet_secret_key = key.secret_key;
    }
    kc_service *service = NULL;
    kc_err err =
        kc_service_start(&service, client, config->type, serve_handler, (void *)config, &options);
    if (config->wallet_key != NULL) kci_wallet_wipe(&key); /* the service keeps its copy */
    if (err != KC_OK) {
        kcobra_error("cannot serve type '%s': %s (%s)", config->type, kc_last_error(),
                     kc_strerror(err));
        return kcobra_exit_for_error(err) == KCOBRA_EXIT_CONNECT ? KCOBRA_EXIT_CONNECT
                                                                 : KCOBRA_EXIT_FAILURE;
    }
    log_event(config, "serving",
              "serving type '%s' on kc.req.%s as node %s with %d workers: %s -c '%s'", config->type,
              config->type, kc_client_node(client), worker_count, EXEC_SHELL, config->exec_command);
    int signal_number = kcobra_stop_signal_wait(stop_signals);
    log_event(config, "stopping", "received %s: finishing running requests",
              strsignal(signal_number));
    kc_service_stop(service);
    log_event(config, "stopped", "stopped");
    return KCOBRA_EXIT_OK;
}

static int run_serve(const kcobra_command *command, int argc, char **argv)
{
    serve_config config = {0};
    int64_t worker_count = 4;
    const kcobra_flag flags[] = {
        {"exec", "CMD", KCOBRA_FLAG_STRING, &config.exec_command,
         "the command to run for each request (required)"},
        {"workers", "N", KCOBRA_FLAG_COUNT, &worker_count,
         "commands run at once (default 4, at most 256)"},
        {"exec-timeout", "DURATION", KCOBRA_FLAG_DURATION, &config.exec_timeout_ms,
         "time limit per command (default 60s); a request's deadline can shorten it, not lift it"},
        {"price", "AMOUNT", KCOBRA_FLAG_COUNT, &config.price,
         "a paid service: each request must carry a hold (Kc-Pay-Hold, with --wallet-key) or a "
         "transfer (Kc-Pay) of at least AMOUNT"},
        {"wallet", "ADDRESS", KCOBRA_FLAG_STRING, &config.wallet,
         "the address paid requests must have paid (with --price)"},
        {"wallet-key", "FILE", KCOBRA_FLAG_STRING, &config.wallet_key,
         "the wallet's key file (kcobra wallet new): takes holds, posted when the command "
         "succeeds and voided when it fails; gives --wallet"},
    };
    kcobra_invocation invocation;
    int status = kcobra_parse(command, flags, KCOBRA_ARRAY_COUNT(flags), argc, argv, &invocation);
    if (status != KCOBRA_EXIT_OK || invocation.help) return status;
    config.type = invocation.positional[0];
    config.json = invocation.common.json;
    if (!kcobra_token_valid(config.type, KC_TYPE_BYTES_MAX))
        return kcobra_usage_error(command, "invalid request type '%s': one subject token",
                                  config.type);
    if (config.exec_command == NULL || config.exec_command[0] == '\0')
        return kcobra_usage_error(command, "--exec CMD is required");
    if (worker_count > SERVE_WORKERS_MAX)
        return kcobra_usage_error(command, "--workers is at most %d", SERVE_WORKERS_MAX);
    if ((config.price > 0) != (config.wallet != NULL || config.wallet_key != NULL))
        return kcobra_usage_error(command, "--price and --wallet (or --wallet-key) go together");
    keep_standard_fds_open();
    kci_log_configure(KCI_LOG_INFO, true);
    /* Blocked before any thread starts, so every library thread inherits it
     * and only kcobra_stop_signal_wait takes these signals. */
    sigset_t stop_signals;
    kcobra_stop_signals_block(&stop_signals);
    kc_client *client = NULL;
    status = kcobra_client_open(&client, &invocation.common);
    if (status != KCOBRA_EXIT_OK) return status;
    status = serve_until_signal(client, &config, (int)worker_count, &stop_signals);
    kc_client_close(client, SERVE_CLOSE_TIMEOUT_MS);
    return status;
}

const kcobra_command kcobra_command_serve = {
    .name = "serve",
    .synopsis =
        "serve <type> --exec CMD [--workers N] [--exec-timeout D] [--price A --wallet-key FILE]",
    .summary = "serve a request type by running a shell command per request",
    .description = SERVE_DESCRIPTION,
    .run = run_serve,
    .positional_min = 1,
    .positional_max = 1,
};
