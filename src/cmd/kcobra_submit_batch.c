/* kcobra_submit_batch.c - `kcobra submit <type> --batch FILE|-`: one durable
 * request per line of FILE (or stdin), the line without its newline being
 * the payload (docs/kcobra.md).
 *
 * The lines go through libkingcobra's asynchronous submits
 * (kc_client_submit_async) with up to --window of them in flight, so the
 * persister can put many of them behind one fdatasync: one synchronous
 * submit at a time would wait a disk sync per line. The reading thread
 * blocks when the window is full (the library's bound); callbacks count the
 * outcomes and keep the first failures for the summary. On a terminal,
 * stderr shows progress five times a second. The summary (acknowledged,
 * failed; --json: also each listed failure's line, id and error) goes to
 * stdout once every line has been answered or has timed out; the exit
 * status is nonzero when any line failed. */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/clock.h"
#include "kcobra_common.h"
#include "kcobra_submit_batch.h"

enum {
    FAILURES_LISTED_MAX = 100, /* failures the summary names; all are counted */
    PROGRESS_INTERVAL_MS = 200,
};

typedef struct failure {
    int64_t line;
    kc_err status;
    int code;
    char id[KC_UUID_TEXT_BYTES + 1];
    char message[KC_ERROR_MESSAGE_BYTES_MAX];
} failure;

typedef struct batch {
    pthread_mutex_t lock;
    pthread_cond_t answered; /* completed_count grew */
    int64_t sent_count;      /* submits whose callback will come */
    int64_t completed_count; /* callbacks run */
    int64_t acknowledged_count;
    int64_t failed_count; /* callbacks with an error, and submits refused at once */
    failure failures[FAILURES_LISTED_MAX];
    int failure_count;
    bool progress_shown;
    int64_t progress_at_ms;
} batch;

/* A line's closure: where it came from. */
typedef struct line_ticket {
    batch *owner;
    int64_t line;
} line_ticket;

/* Under b->lock. */
static void failure_note(batch *b, int64_t line, const char *id, kc_err status, int code,
                         const char *message)
{
    b->failed_count++;
    if (b->failure_count >= FAILURES_LISTED_MAX) return;
    failure *f = &b->failures[b->failure_count++];
    f->line = line;
    f->status = status;
    f->code = code;
    snprintf(f->id, sizeof f->id, "%s", id != NULL ? id : "");
    snprintf(f->message, sizeof f->message, "%s", message != NULL ? message : "");
}

static void on_line_done(kc_client *client, kc_err status, const char *id, int error_code,
                         const char *error_message, void *closure)
{
    (void)client;
    line_ticket *ticket = closure;
    batch *b = ticket->owner;
    pthread_mutex_lock(&b->lock);
    if (status == KC_OK)
        b->acknowledged_count++;
    else
        failure_note(b, ticket->line, id, status, error_code, error_message);
    b->completed_count++;
    pthread_cond_signal(&b->answered);
    pthread_mutex_unlock(&b->lock);
    free(ticket);
}

/* Under b->lock: "\rsubmitted ..., acknowledged ..., failed ..." on a terminal. */
static void progress_show(batch *b, bool force)
{
    if (!isatty(STDERR_FILENO)) return;
    int64_t now_ms = kci_monotonic_ms();
    if (!force && now_ms - b->progress_at_ms < PROGRESS_INTERVAL_MS) return;
    b->progress_at_ms = now_ms;
    fprintf(stderr, "\rsubmitted %" PRId64 ", acknowledged %" PRId64 ", failed %" PRId64 "   ",
            b->sent_count, b->acknowledged_count, b->failed_count);
    b->progress_shown = true;
}

/* Submits one line; a submit refused at once counts as failed. */
static void line_submit(batch *b, kc_client *client, const char *type, const char *line,
                        size_t length, int64_t line_number, int64_t timeout_ms)
{
    line_ticket *ticket = malloc(sizeof *ticket);
    kc_err err = KC_ERR_NOMEM;
    char id[KC_UUID_TEXT_BYTES + 1] = "";
    if (ticket != NULL) {
        *ticket = (line_ticket){.owner = b, .line = line_number};
        err = kc_client_submit_async(client, type, line, length, timeout_ms, on_line_done, ticket,
                                     id);
    }
    pthread_mutex_lock(&b->lock);
    if (err == KC_OK) {
        b->sent_count++;
    } else {
        free(ticket);
        failure_note(b, line_number, id, err, 0, kc_last_error());
    }
    progress_show(b, false);
    pthread_mutex_unlock(&b->lock);
}

/* Reads input to its end, submitting each line. */
static int lines_submit(batch *b, kc_client *client, const char *type, FILE *input,
                        int64_t timeout_ms)
{
    char *line = NULL;
    size_t capacity = 0;
    int64_t line_number = 0;
    ssize_t length;
    while ((length = getline(&line, &capacity, input)) >= 0) {
        line_number++;
        if (length > 0 && line[length - 1] == '\n') line[--length] = '\0';
        line_submit(b, client, type, line, (size_t)length, line_number, timeout_ms);
    }
    free(line);
    if (ferror(input)) {
        kcobra_error("reading the batch: line %" PRId64 ": read error", line_number + 1);
        return KCOBRA_EXIT_FAILURE;
    }
    return KCOBRA_EXIT_OK;
}

/* Until every sent submit has called back (each does within its timeout). */
static void answers_wait(batch *b)
{
    pthread_mutex_lock(&b->lock);
    while (b->completed_count < b->sent_count) {
        int64_t until_ms = kci_wall_ms() + PROGRESS_INTERVAL_MS;
        struct timespec until = {until_ms / 1000, (long)(until_ms % 1000) * 1000000};
        pthread_cond_timedwait(&b->answered, &b->lock, &until);
        progress_show(b, false);
    }
    progress_show(b, true);
    if (b->progress_shown) fputs("\n", stderr);
    pthread_mutex_unlock(&b->lock);
}

static int summary_print(const batch *b, bool json)
{
    int64_t lines = b->acknowledged_count + b->failed_count;
    if (!json) {
        for (int index = 0; index < b->failure_count; index++)
            kcobra_error("line %" PRId64 " (%s): %s", b->failures[index].line,
                         b->failures[index].id[0] != '\0' ? b->failures[index].id : "not sent",
                         b->failures[index].message);
        printf("%" PRId64 " lines: acknowledged %" PRId64 ", failed %" PRId64 "\n", lines,
               b->acknowledged_count, b->failed_count);
        return fflush(stdout) == 0 ? KCOBRA_EXIT_OK : KCOBRA_EXIT_FAILURE;
    }
    json_t *failures = json_array();
    for (int index = 0; index < b->failure_count; index++) {
        const failure *f = &b->failures[index];
        json_array_append_new(
            failures, json_pack("{s:I, s:s?, s:s, s:i, s:s}", "line", (json_int_t)f->line, "id",
                                f->id[0] != '\0' ? f->id : NULL, "status", kc_strerror(f->status),
                                "code", f->code, "error", f->message));
    }
    return kcobra_json_print(json_pack("{s:I, s:I, s:I, s:o}", "lines", (json_int_t)lines,
                                       "acknowledged", (json_int_t)b->acknowledged_count, "failed",
                                       (json_int_t)b->failed_count, "failures", failures));
}

int kcobra_submit_batch(const kcobra_common *common, const char *type, const char *path,
                        int64_t window)
{
    FILE *input = strcmp(path, "-") == 0 ? stdin : fopen(path, "r");
    if (input == NULL) {
        kcobra_error("cannot open %s: %s", path, strerror(errno));
        return KCOBRA_EXIT_FAILURE;
    }
    kc_client *client = NULL;
    int status = kcobra_client_open_window(&client, common, (uint32_t)window);
    batch b = {.sent_count = 0};
    pthread_mutex_init(&b.lock, NULL);
    pthread_cond_init(&b.answered, NULL);
    if (status == KCOBRA_EXIT_OK) {
        status = lines_submit(&b, client, type, input, common->timeout_ms);
        answers_wait(&b);
        int printed = summary_print(&b, common->json);
        if (status == KCOBRA_EXIT_OK) status = printed;
        if (status == KCOBRA_EXIT_OK && b.failed_count > 0) status = KCOBRA_EXIT_FAILURE;
    }
    kcobra_client_close(client);
    pthread_cond_destroy(&b.answered);
    pthread_mutex_destroy(&b.lock);
    if (input != stdin) fclose(input);
    return status;
}
