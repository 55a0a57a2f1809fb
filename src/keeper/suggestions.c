/* suggestions.c - the suggestion keeper (see suggestions.h and
 * docs/ingress.md, "Suggestion keeper").
 *
 * File: one JSON object per line, {"id","ts","node","text"}, appended with
 * pwrite at the known end of the file and fsync'd before the acknowledgement.
 * A write or sync that fails is undone (ftruncate back to the previous end)
 * and answered 500; if even that fails, or a sync failed (the kernel may
 * have dropped the dirty pages: the file's state is unknown), the keeper
 * refuses further suggestions with 503 until a restart reloads the file.
 *
 * Load: the file is read in chunks; each complete line that is a valid
 * suggestion is kept, a complete line that is not is logged and skipped
 * (never served), and a last line without its LF is the tail of a write a
 * crash interrupted: it was never acknowledged, so it is logged and cut off,
 * and later appends start on a clean line.
 *
 * Memory: the newest lines (at most KCI_SUGGESTION_LIST_MAX, and
 * KCI_SUGGESTION_MEMORY_BYTES_MAX bytes) stay in a ring of compact JSON
 * texts, so a list reply is a concatenation; older suggestions stay only in
 * the file.
 *
 * Threads: nats.c delivers each subscription on its own thread; one mutex
 * guards the file and the ring. Stop drains both subscriptions and waits for
 * nats.c's completion callbacks before freeing anything.
 *
 * I/O: the file's open, writes, syncs, truncations and close go through the
 * I/O seam (common/io.h), so a test can fail each of them; reads do not.
 *
 * Limits: one keeper per file (flock); delivery is at least once (a crash
 * between the fsync and the acknowledgement leaves a suggestion stored that
 * its sender may send again). */
#include "suggestions.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <jansson.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/dir.h"
#include "common/io.h"
#include "common/log.h"
#include "service/answer.h"
#include "service/headers.h"
#include "service/hlc.h"
#include "service/micro.h"
#include "service/subscriptions.h"
#include "service/uuid.h"
#include "suggestion_state.h"

enum {
    MESSAGE_BYTES_MAX = 256,       /* an error reply's text */
    LIST_ENVELOPE_BYTES = 128,     /* {"suggestions":[...],"total":N,...} around the lines */
    LIST_HEADERS_BYTES_MAX = 1024, /* the reply's headers count against max_payload too */
    LIST_REPLY_BYTES_DEFAULT = 1024 * 1024, /* if the server did not say its max_payload */
    LIST_STATE_BYTES_MAX = 256,             /* a listed suggestion's "status" and "assignee" */
    STOP_MARGIN_MS = 2000,                  /* after drain_ms, for nats.c's completion callbacks */
    KEEPER_ENDPOINTS = 4,                   /* kc.suggest, .list, .show and .change.*, for $SRV */
};

typedef struct kept_line {
    char *json; /* compact JSON object, no newline */
    size_t length;
} kept_line;

struct kci_suggestions {
    natsConnection *connection;
    kci_subscriptions subscriptions;
    char node[KC_NODE_BYTES_MAX + 1];
    char *file_path;
    kci_micro_stats endpoint_stats[KEEPER_ENDPOINTS]; /* suggest, list, show, change */
    kci_micro *micro;                                 /* NULL when it could not start */

    pthread_mutex_t lock; /* everything below */
    int fd;
    int64_t file_size_bytes; /* the end of the last complete line */
    bool broken;
    kept_line ring[KCI_SUGGESTION_LIST_MAX];
    uint32_t ring_first; /* the oldest kept line */
    uint32_t ring_count;
    size_t ring_bytes;
    uint64_t total_count; /* suggestions in the file */
    json_t *book;         /* id -> status, assignee, history (suggestion_state.h) */
    char **operators;     /* who may change a status */
    size_t operator_count;
};

/* A request's outcome: code 0 and id, or an error code and message. */
typedef struct outcome {
    int code;
    char id[KC_UUID_TEXT_BYTES + 1];
    char message[MESSAGE_BYTES_MAX];
} outcome;

static kc_err fail_text(char *error, size_t error_size, kc_err err, const char *format, ...)
    __attribute__((format(printf, 4, 5)));

static kc_err fail_text(char *error, size_t error_size, kc_err err, const char *format, ...)
{
    va_list arguments;
    va_start(arguments, format);
    if (error != NULL && error_size > 0) vsnprintf(error, error_size, format, arguments);
    va_end(arguments);
    return err;
}

static void outcome_fail(outcome *result, int code, const char *format, ...)
    __attribute__((format(printf, 3, 4)));

static void outcome_fail(outcome *result, int code, const char *format, ...)
{
    assert(code > 0);
    result->code = code;
    va_list arguments;
    va_start(arguments, format);
    vsnprintf(result->message, sizeof result->message, format, arguments);
    va_end(arguments);
}

/* ---- the ring of newest lines -------------------------------------------- */

static void ring_drop_oldest(kci_suggestions *keeper)
{
    assert(keeper->ring_count > 0);
    kept_line *oldest = &keeper->ring[keeper->ring_first];
    keeper->ring_bytes -= oldest->length;
    free(oldest->json);
    *oldest = (kept_line){0};
    keeper->ring_first = (keeper->ring_first + 1) % KCI_SUGGESTION_LIST_MAX;
    keeper->ring_count--;
}

/* Takes json (malloc'd). */
static void ring_push(kci_suggestions *keeper, char *json, size_t length)
{
    while (
        keeper->ring_count == KCI_SUGGESTION_LIST_MAX ||
        (keeper->ring_count > 0 && keeper->ring_bytes + length > KCI_SUGGESTION_MEMORY_BYTES_MAX))
        ring_drop_oldest(keeper);
    uint32_t index = (keeper->ring_first + keeper->ring_count) % KCI_SUGGESTION_LIST_MAX;
    keeper->ring[index] = (kept_line){.json = json, .length = length};
    keeper->ring_count++;
    keeper->ring_bytes += length;
}

static const kept_line *ring_at(const kci_suggestions *keeper, uint32_t age_index)
{
    assert(age_index < keeper->ring_count); /* 0: the oldest */
    return &keeper->ring[(keeper->ring_first + age_index) % KCI_SUGGESTION_LIST_MAX];
}

/* ---- the file --------------------------------------------------------- */

/* mkdir -p of the directory part of path. */
static kc_err make_directories(const char *path, char *error, size_t error_size)
{
    char directory[PATH_MAX];
    if (snprintf(directory, sizeof directory, "%s", path) >= (int)sizeof directory)
        return fail_text(error, error_size, KC_ERR_CONFIG, "suggestions file path too long");
    char *slash = strrchr(directory, '/');
    if (slash == NULL || slash == directory) return KC_OK;
    *slash = '\0';
    for (char *cursor = directory + 1; cursor != NULL; cursor = strchr(cursor + 1, '/')) {
        char saved = *cursor;
        if (saved == '/') *cursor = '\0';
        if (mkdir(directory, 0755) != 0 && errno != EEXIST)
            return fail_text(error, error_size, KC_ERR_IO, "cannot create directory %s: %s",
                             directory, strerror(errno));
        if (saved == '/')
            *cursor = '/';
        else
            break;
    }
    return KC_OK;
}

/* The file's directory entry must be durable before the first suggestion
 * is acknowledged, or a crash can take the whole file with it. It is synced
 * at every start, not only when the file is created here: a start that
 * created the file and failed leaves a file whose name may not be durable. */
static kc_err sync_parent_directory(const char *path, char *error, size_t error_size)
{
    char directory[PATH_MAX];
    int sync_error = kci_parent_directory_sync(path, directory, sizeof directory);
    if (sync_error != 0)
        return fail_text(error, error_size, KC_ERR_IO, "cannot sync directory %s: %s", directory,
                         strerror(sync_error));
    return KC_OK;
}

static kc_err open_file(kci_suggestions *keeper, char *error, size_t error_size)
{
    kc_err err = make_directories(keeper->file_path, error, error_size);
    if (err != KC_OK) return err;
    keeper->fd = kci_io_retry_open(keeper->file_path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (keeper->fd < 0)
        return fail_text(error, error_size, KC_ERR_IO, "cannot open %s: %s", keeper->file_path,
                         strerror(errno));
    if (flock(keeper->fd, LOCK_EX | LOCK_NB) != 0)
        return fail_text(error, error_size, KC_ERR_EXISTS,
                         "%s is in use by another suggestion keeper: %s", keeper->file_path,
                         strerror(errno));
    return sync_parent_directory(keeper->file_path, error, error_size);
}

/* A stored line is a suggestion if it is an object with the four strings and
 * a usable id. Returns its compact form (malloc'd) or NULL. */
static char *suggestion_from_line(const char *line, size_t length,
                                  char id_out[KC_UUID_TEXT_BYTES + 1])
{
    json_error_t json_error;
    json_t *object = json_loadb(line, length, 0, &json_error);
    const char *id = json_string_value(json_object_get(object, "id"));
    kci_uuid uuid;
    bool valid = json_is_object(object) && id != NULL && kci_uuid_parse(id, strlen(id), &uuid) &&
                 json_is_string(json_object_get(object, "ts")) &&
                 json_is_string(json_object_get(object, "node")) &&
                 json_is_string(json_object_get(object, "text"));
    char *compact = valid ? json_dumps(object, JSON_COMPACT) : NULL;
    if (compact != NULL) snprintf(id_out, KC_UUID_TEXT_BYTES + 1, "%s", id);
    json_decref(object);
    return compact;
}

typedef struct load_state {
    char *line; /* KCI_SUGGESTION_LINE_BYTES_MAX bytes */
    size_t length;
    bool oversized; /* the line passed the bound: corrupt, skipped to its LF */
    uint64_t line_number;
    int64_t complete_end; /* offset after the last complete line's LF */
    uint64_t skipped_count;
} load_state;

/* A change line ({"change":id,...}) applied to the book; false: it is not
 * one, or it does not apply (a corrupt line, skipped like any other). */
static bool load_change(kci_suggestions *keeper, const char *line, size_t length)
{
    json_t *root = NULL;
    kci_suggestion_change change;
    bool ok = kci_suggestion_change_parse(line, length, &root, &change) &&
              kci_suggestion_book_apply(keeper->book, &change) == KC_OK;
    json_decref(root);
    return ok;
}

static void load_accept_line(kci_suggestions *keeper, load_state *state)
{
    state->line_number++;
    char id[KC_UUID_TEXT_BYTES + 1] = "";
    bool change = !state->oversized && state->length > 0 &&
                  memmem(state->line, state->length, "\"change\"", 8) != NULL &&
                  load_change(keeper, state->line, state->length);
    char *compact =
        state->oversized || change ? NULL : suggestion_from_line(state->line, state->length, id);
    if (compact != NULL && kci_suggestion_book_add(keeper->book, id) != KC_OK) {
        free(compact);
        compact = NULL;
    }
    if (change) {
        /* applied */
    } else if (compact == NULL) {
        kci_warn("suggestions: %s line %" PRIu64 " is not a suggestion; skipped", keeper->file_path,
                 state->line_number);
        state->skipped_count++;
    } else {
        ring_push(keeper, compact, strlen(compact));
        keeper->total_count++;
    }
    state->length = 0;
    state->oversized = false;
}

/* One chunk read at offset: lines end at LF. */
static void load_chunk(kci_suggestions *keeper, load_state *state, const char *chunk, size_t size,
                       int64_t offset)
{
    assert(state->line != NULL);
    size_t index = 0;
    while (index < size) {
        const char *newline = memchr(chunk + index, '\n', size - index);
        size_t run = newline != NULL ? (size_t)(newline - (chunk + index)) : size - index;
        if (!state->oversized && state->length + run <= KCI_SUGGESTION_LINE_BYTES_MAX) {
            memcpy(state->line + state->length, chunk + index, run);
            state->length += run;
        } else {
            state->oversized = true;
        }
        index += run;
        if (newline == NULL) break;
        index++; /* the LF */
        state->complete_end = offset + (int64_t)index;
        load_accept_line(keeper, state);
    }
}

/* The bytes after the last LF were never acknowledged: cut them off. */
static kc_err cut_torn_tail(kci_suggestions *keeper, int64_t file_end, int64_t complete_end,
                            char *error, size_t error_size)
{
    kci_warn("suggestions: %s ends in a torn line (%" PRId64 " bytes at offset %" PRId64
             "), from an interrupted write; it was never acknowledged and is removed",
             keeper->file_path, file_end - complete_end, complete_end);
    if (kci_io_retry_ftruncate(keeper->fd, complete_end) != 0 ||
        kci_io_retry_fsync(keeper->fd) != 0)
        return fail_text(error, error_size, KC_ERR_IO, "cannot cut the torn tail of %s: %s",
                         keeper->file_path, strerror(errno));
    return KC_OK;
}

static kc_err load_file(kci_suggestions *keeper, char *error, size_t error_size)
{
    load_state state = {.line = malloc(KCI_SUGGESTION_LINE_BYTES_MAX)};
    char *chunk = malloc(KCI_SUGGESTION_LOAD_CHUNK_BYTES);
    kc_err err = state.line != NULL && chunk != NULL
                     ? KC_OK
                     : fail_text(error, error_size, KC_ERR_NOMEM, "out of memory");
    int64_t offset = 0;
    while (err == KC_OK) {
        ssize_t got = pread(keeper->fd, chunk, KCI_SUGGESTION_LOAD_CHUNK_BYTES, offset);
        if (got < 0 && errno == EINTR) continue;
        if (got < 0)
            err = fail_text(error, error_size, KC_ERR_IO, "cannot read %s: %s", keeper->file_path,
                            strerror(errno));
        if (got <= 0) break;
        load_chunk(keeper, &state, chunk, (size_t)got, offset);
        offset += got;
    }
    if (err == KC_OK && offset > state.complete_end)
        err = cut_torn_tail(keeper, offset, state.complete_end, error, error_size);
    keeper->file_size_bytes = state.complete_end;
    if (err == KC_OK)
        kci_info("suggestions: %" PRIu64 " kept in %s (%" PRIu64 " lines skipped)",
                 keeper->total_count, keeper->file_path, state.skipped_count);
    free(chunk);
    free(state.line);
    return err;
}

/* Writes all of line at the end of the file and syncs. On failure the file
 * is cut back; if that fails too, or the sync failed, the keeper breaks. */
static int append_durably(kci_suggestions *keeper, const char *line, size_t length, outcome *result)
{
    bool written = kci_io_pwrite_all(keeper->fd, line, length, keeper->file_size_bytes) == 0;
    int saved_errno = errno;
    bool synced = written && kci_io_retry_fsync(keeper->fd) == 0;
    if (written && !synced) saved_errno = errno;
    if (synced) {
        keeper->file_size_bytes += (int64_t)length;
        return 0;
    }
    outcome_fail(result, KCI_SUGGESTION_CODE_STORAGE, "cannot store the suggestion: %s",
                 strerror(saved_errno));
    bool cut = kci_io_retry_ftruncate(keeper->fd, keeper->file_size_bytes) == 0;
    if (!cut || written) {
        keeper->broken = true;
        kci_error("suggestions: %s is unusable until a restart (%s)", keeper->file_path,
                  strerror(saved_errno));
    }
    return -1;
}

/* ---- kc.suggest ---------------------------------------------------------- */

/* The request's text and node (the JSON's, else the sender's Kc-Node). */
static void parse_suggestion(natsMsg *message, const kci_kc_headers *headers, json_t **root,
                             const char **text, const char **node, outcome *result)
{
    json_error_t json_error;
    *root = json_loadb(natsMsg_GetData(message), (size_t)natsMsg_GetDataLength(message), 0,
                       &json_error);
    if (*root == NULL) {
        outcome_fail(result, KCI_SUGGESTION_CODE_BAD_REQUEST, "bad JSON: %s", json_error.text);
        return;
    }
    json_t *text_value = json_object_get(*root, "text");
    json_t *node_value = json_object_get(*root, "node");
    *text = json_string_value(text_value);
    *node = node_value != NULL ? json_string_value(node_value) : headers->node;
    if (!json_is_object(*root) || *text == NULL)
        outcome_fail(result, KCI_SUGGESTION_CODE_BAD_REQUEST,
                     "expected a JSON object with a \"text\" string");
    else if (*node == NULL)
        outcome_fail(result, KCI_SUGGESTION_CODE_BAD_REQUEST, "\"node\" must be a string");
    else if (json_string_length(text_value) == 0)
        outcome_fail(result, KCI_SUGGESTION_CODE_BAD_REQUEST, "the text is empty");
    else if (json_string_length(text_value) > KCI_SUGGESTION_TEXT_BYTES_MAX)
        outcome_fail(result, KCI_SUGGESTION_CODE_TOO_LARGE, "the text is longer than %d bytes",
                     KCI_SUGGESTION_TEXT_BYTES_MAX);
    else if (strlen(*node) > KC_NODE_BYTES_MAX)
        outcome_fail(result, KCI_SUGGESTION_CODE_BAD_REQUEST, "the node is longer than %d bytes",
                     KC_NODE_BYTES_MAX);
}

/* The line to append, with its LF (malloc'd), or NULL. */
static char *format_record(const char *id, const kci_hlc_timestamp *received, const char *node,
                           const char *text, size_t *length)
{
    char ts[KCI_HLC_TEXT_BYTES_MAX];
    kci_hlc_format(received, ts);
    json_t *record =
        json_pack("{s:s, s:s, s:s, s:s}", "id", id, "ts", ts, "node", node, "text", text);
    char *compact = record != NULL ? json_dumps(record, JSON_COMPACT) : NULL;
    json_decref(record);
    if (compact == NULL) return NULL;
    size_t compact_length = strlen(compact);
    assert(memchr(compact, '\n', compact_length) == NULL); /* JSON escapes newlines */
    char *line = realloc(compact, compact_length + 2);
    if (line == NULL) {
        free(compact);
        return NULL;
    }
    line[compact_length] = '\n';
    line[compact_length + 1] = '\0';
    *length = compact_length + 1;
    return line;
}

static void store_suggestion(kci_suggestions *keeper, const kci_hlc_timestamp *received,
                             const char *node, const char *text, outcome *result)
{
    kci_uuid_v7_text(result->id);
    size_t length = 0;
    char *line = format_record(result->id, received, node, text, &length);
    if (line == NULL) {
        outcome_fail(result, KCI_SUGGESTION_CODE_STORAGE, "out of memory");
        return;
    }
    pthread_mutex_lock(&keeper->lock);
    if (keeper->broken) {
        outcome_fail(result, KCI_SUGGESTION_CODE_UNAVAILABLE,
                     "the suggestions file is unusable; see kcobrad's log");
    } else if (append_durably(keeper, line, length, result) == 0) {
        if (kci_suggestion_book_add(keeper->book, result->id) != KC_OK)
            kci_error("suggestions: out of memory: %s is stored but has no status until a restart",
                      result->id);
        line[length - 1] = '\0'; /* the ring keeps the object without its LF */
        ring_push(keeper, line, length - 1);
        line = NULL;
        keeper->total_count++;
    }
    pthread_mutex_unlock(&keeper->lock);
    free(line);
}

/* Reads and observes the KingCobra headers a request carries (a plain NATS
 * request may carry none); *received is the receive event's time. */
static void read_headers(natsMsg *message, kci_kc_headers *headers, kci_hlc_timestamp *received,
                         outcome *result)
{
    if (kci_headers_read(message, false, headers) != KC_OK ||
        kci_headers_observe(kci_process_hlc(), headers, received) != KC_OK)
        outcome_fail(result, KCI_SUGGESTION_CODE_BAD_REQUEST, "%s", kc_last_error());
}

/* Replies payload, stamped; error replies carry Kc-Error too. */
static void respond(kci_suggestions *keeper, natsMsg *request, const kci_kc_headers *headers,
                    const outcome *result, const char *payload, size_t payload_length)
{
    kci_answer answer = {.node = keeper->node,
                         .type = "suggest",
                         .reply_to = headers->id,
                         .code = result->code,
                         .message = result->message,
                         .payload = payload,
                         .payload_length = payload_length};
    kci_answer_send(keeper->connection, request, &answer, "suggestions");
}

static void respond_outcome(kci_suggestions *keeper, natsMsg *request,
                            const kci_kc_headers *headers, const outcome *result)
{
    json_t *body = result->code == 0
                       ? json_pack("{s:s, s:b}", "id", result->id, "stored", 1)
                       : json_pack("{s:b, s:s}", "stored", 0, "error", result->message);
    char *text = body != NULL ? json_dumps(body, JSON_COMPACT) : NULL;
    json_decref(body);
    respond(keeper, request, headers, result, text != NULL ? text : "",
            text != NULL ? strlen(text) : 0);
    free(text);
}

static void on_suggest(natsConnection *connection, natsSubscription *subscription, natsMsg *message,
                       void *closure)
{
    kci_suggestions *keeper = closure;
    kci_kc_headers headers = {0};
    kci_hlc_timestamp received = {0};
    outcome result = {0};
    json_t *root = NULL;
    const char *text = NULL, *node = NULL;
    read_headers(message, &headers, &received, &result);
    if (result.code == 0) parse_suggestion(message, &headers, &root, &text, &node, &result);
    if (result.code == 0) store_suggestion(keeper, &received, node, text, &result);
    if (result.code == 0)
        kci_debug("suggestions: stored %s from %s", result.id, node[0] ? node : "(no node)");
    else
        kci_debug("suggestions: refused a suggestion: %d %s", result.code, result.message);
    json_decref(root);
    respond_outcome(keeper, message, &headers, &result);
    natsMsg_Destroy(message);
}

/* ---- kc.suggest.list ------------------------------------------------------ */

/* What kc.suggest.list asks: an empty payload, {}, or {"limit": n >= 1,
 * "status": "open"|..., "assignee": "user"}; n above KCI_SUGGESTION_LIST_MAX
 * is clamped to it (the reply says "truncated"). */
typedef struct list_request {
    uint32_t limit;
    bool by_status;
    kci_suggestion_status status;
    char assignee[KCI_SUGGESTION_USER_BYTES_MAX + 1]; /* "": any */
} list_request;

static void parse_list_request(natsMsg *message, list_request *request, outcome *result)
{
    *request = (list_request){.limit = KCI_SUGGESTION_LIST_MAX};
    if (natsMsg_GetDataLength(message) == 0) return;
    json_error_t json_error;
    json_t *root = json_loadb(natsMsg_GetData(message), (size_t)natsMsg_GetDataLength(message), 0,
                              &json_error);
    json_t *limit = json_object_get(root, "limit");
    json_t *status = json_object_get(root, "status");
    json_t *assignee = json_object_get(root, "assignee");
    json_int_t value = limit != NULL ? json_integer_value(limit) : KCI_SUGGESTION_LIST_MAX;
    request->by_status = status != NULL;
    if (root == NULL)
        outcome_fail(result, KCI_SUGGESTION_CODE_BAD_REQUEST, "bad JSON: %s", json_error.text);
    else if (!json_is_object(root) || (limit != NULL && !json_is_integer(limit)) || value < 1)
        outcome_fail(result, KCI_SUGGESTION_CODE_BAD_REQUEST,
                     "expected {} or {\"limit\": n} with n >= 1");
    else if (status != NULL &&
             !kci_suggestion_status_parse(json_string_value(status), &request->status))
        outcome_fail(result, KCI_SUGGESTION_CODE_BAD_REQUEST,
                     "\"status\" is open, accepted, rejected or done");
    else if (assignee != NULL && (!json_is_string(assignee) ||
                                  json_string_length(assignee) > KCI_SUGGESTION_USER_BYTES_MAX))
        outcome_fail(result, KCI_SUGGESTION_CODE_BAD_REQUEST, "\"assignee\" is a user name");
    else if (assignee != NULL)
        snprintf(request->assignee, sizeof request->assignee, "%s", json_string_value(assignee));
    json_decref(root);
    if (value > KCI_SUGGESTION_LIST_MAX) value = KCI_SUGGESTION_LIST_MAX;
    request->limit = result->code == 0 ? (uint32_t)value : 0;
}

/* A kept line with its status and assignee from the book, or NULL. */
static json_t *decorated(const kci_suggestions *keeper, const kept_line *line)
{
    json_t *item = json_loadb(line->json, line->length, 0, NULL);
    json_t *state = json_object_get(keeper->book, json_string_value(json_object_get(item, "id")));
    if (item == NULL || state == NULL) return item;
    json_object_set(item, "status", json_object_get(state, "status"));
    json_object_set(item, "assignee", json_object_get(state, "assignee"));
    return item;
}

static bool list_matches(json_t *item, const list_request *request)
{
    const char *status = json_string_value(json_object_get(item, "status"));
    const char *assignee = json_string_value(json_object_get(item, "assignee"));
    if (request->by_status &&
        (status == NULL || strcmp(status, kci_suggestion_status_name(request->status)) != 0))
        return false;
    return request->assignee[0] == '\0' ||
           (assignee != NULL && strcmp(assignee, request->assignee) == 0);
}

/* Under the lock: the newest matching lines (at most limit) that fit in
 * bytes_max, oldest first, as the reply's JSON (malloc'd). */
static char *build_list(const kci_suggestions *keeper, const list_request *request,
                        size_t bytes_max, size_t *length)
{
    json_t *items = json_array();
    size_t bytes = LIST_HEADERS_BYTES_MAX + LIST_ENVELOPE_BYTES;
    uint32_t count = 0;
    bool stopped = false;
    for (uint32_t age = keeper->ring_count; items != NULL && age-- > 0;) {
        const kept_line *line = ring_at(keeper, age);
        json_t *item = decorated(keeper, line);
        if (item == NULL || !list_matches(item, request)) {
            json_decref(item);
            continue;
        }
        stopped =
            count == request->limit || bytes + line->length + LIST_STATE_BYTES_MAX > bytes_max;
        if (stopped || json_array_insert_new(items, 0, item) != 0) {
            if (!stopped)
                items = (json_decref(items), NULL);
            else
                json_decref(item);
            break;
        }
        bytes += line->length + LIST_STATE_BYTES_MAX;
        count++;
    }
    json_t *answer =
        items == NULL ? NULL
                      : json_pack("{s:o,s:I,s:I,s:b}", "suggestions", items, "returned",
                                  (json_int_t)count, "total", (json_int_t)keeper->total_count,
                                  "truncated", stopped || keeper->ring_count < keeper->total_count);
    char *text = answer != NULL ? json_dumps(answer, JSON_COMPACT) : NULL;
    json_decref(answer);
    *length = text != NULL ? strlen(text) : 0;
    return text;
}

static void on_list(natsConnection *connection, natsSubscription *subscription, natsMsg *message,
                    void *closure)
{
    kci_suggestions *keeper = closure;
    kci_kc_headers headers = {0};
    kci_hlc_timestamp received = {0};
    outcome result = {0};
    list_request request = {0};
    read_headers(message, &headers, &received, &result);
    if (result.code == 0) parse_list_request(message, &request, &result);
    if (result.code != 0) {
        respond_outcome(keeper, message, &headers, &result);
        natsMsg_Destroy(message);
        return;
    }
    int64_t payload_max = natsConnection_GetMaxPayload(keeper->connection);
    size_t bytes_max = payload_max > 0 ? (size_t)payload_max : LIST_REPLY_BYTES_DEFAULT;
    size_t length = 0;
    pthread_mutex_lock(&keeper->lock);
    char *text = build_list(keeper, &request, bytes_max, &length);
    pthread_mutex_unlock(&keeper->lock);
    if (text == NULL) {
        outcome_fail(&result, KCI_SUGGESTION_CODE_STORAGE, "out of memory");
        respond_outcome(keeper, message, &headers, &result);
    } else {
        respond(keeper, message, &headers, &result, text, length);
    }
    free(text);
    natsMsg_Destroy(message);
}

/* ---- kc.suggest.show and kc.suggest.change.<operator> ------------------------- */

/* The request's "id" (a UUID), or an outcome. */
static json_t *parse_id_request(natsMsg *message, const char **id, outcome *result)
{
    json_t *root = json_loadb(natsMsg_GetData(message), (size_t)natsMsg_GetDataLength(message),
                              JSON_REJECT_DUPLICATES, NULL);
    *id = json_string_value(json_object_get(root, "id"));
    kci_uuid uuid;
    if (!json_is_object(root) || *id == NULL || !kci_uuid_parse(*id, strlen(*id), &uuid))
        outcome_fail(result, KCI_SUGGESTION_CODE_BAD_REQUEST,
                     "expected {\"id\": \"<suggestion id>\", ...}");
    return root;
}

/* Under the lock: the suggestion's state and, while it is among the newest
 * kept in memory, its fields; NULL if unknown. */
static json_t *show(const kci_suggestions *keeper, const char *id)
{
    json_t *state = json_object_get(keeper->book, id);
    if (state == NULL) return NULL;
    json_t *answer = json_deep_copy(state);
    for (uint32_t age = keeper->ring_count; answer != NULL && age-- > 0;) {
        json_t *item =
            json_loadb(ring_at(keeper, age)->json, ring_at(keeper, age)->length, 0, NULL);
        bool found = strcmp(json_string_value(json_object_get(item, "id")), id) == 0;
        if (found) json_object_update_missing(answer, item);
        json_decref(item);
        if (found) break;
    }
    if (answer != NULL) json_object_set_new(answer, "id", json_string(id));
    return answer;
}

static void respond_json(kci_suggestions *keeper, natsMsg *message, const kci_kc_headers *headers,
                         outcome *result, json_t *answer)
{
    char *text = answer != NULL && result->code == 0 ? json_dumps(answer, JSON_COMPACT) : NULL;
    if (result->code == 0 && text == NULL)
        outcome_fail(result, KCI_SUGGESTION_CODE_STORAGE, "out of memory");
    if (result->code != 0)
        respond_outcome(keeper, message, headers, result);
    else
        respond(keeper, message, headers, result, text, strlen(text));
    free(text);
}

static void on_show(natsConnection *connection, natsSubscription *subscription, natsMsg *message,
                    void *closure)
{
    kci_suggestions *keeper = closure;
    kci_kc_headers headers = {0};
    kci_hlc_timestamp received = {0};
    outcome result = {0};
    const char *id = NULL;
    json_t *answer = NULL;
    read_headers(message, &headers, &received, &result);
    json_t *root = result.code == 0 ? parse_id_request(message, &id, &result) : NULL;
    if (result.code == 0) {
        pthread_mutex_lock(&keeper->lock);
        answer = show(keeper, id);
        pthread_mutex_unlock(&keeper->lock);
        if (answer == NULL)
            outcome_fail(&result, KCI_SUGGESTION_CODE_NOT_FOUND, "no suggestion %s", id);
    }
    respond_json(keeper, message, &headers, &result, answer);
    json_decref(answer);
    json_decref(root);
    natsMsg_Destroy(message);
}

static bool is_operator(const kci_suggestions *keeper, const char *user)
{
    for (size_t i = 0; i < keeper->operator_count; i++)
        if (strcmp(keeper->operators[i], user) == 0) return true;
    return false;
}

/* The change asked for by operator user (the subject's last token). */
static void parse_change(natsMsg *message, const char *user, json_t **root,
                         kci_suggestion_change *change, outcome *result)
{
    memset(change, 0, sizeof *change);
    change->by = user;
    *root = parse_id_request(message, &change->id, result);
    if (result->code != 0) return;
    const char *action = json_string_value(json_object_get(*root, "action"));
    change->assignee = json_string_value(json_object_get(*root, "assignee"));
    change->note = json_string_value(json_object_get(*root, "note"));
    if (!kci_suggestion_action_parse(action, &change->action))
        outcome_fail(result, KCI_SUGGESTION_CODE_BAD_REQUEST,
                     "\"action\" is accept, reject, done or assign");
    else if ((change->action == KCI_SUGGESTION_ASSIGN) != (change->assignee != NULL) ||
             (change->assignee != NULL &&
              (strlen(change->assignee) > KCI_SUGGESTION_USER_BYTES_MAX ||
               !kci_token_valid(change->assignee))))
        outcome_fail(result, KCI_SUGGESTION_CODE_BAD_REQUEST,
                     "assign, and only assign, names an \"assignee\" (one subject token)");
    else if (change->note != NULL && strlen(change->note) > KCI_SUGGESTION_NOTE_BYTES_MAX)
        outcome_fail(result, KCI_SUGGESTION_CODE_TOO_LARGE, "the note is longer than %d bytes",
                     KCI_SUGGESTION_NOTE_BYTES_MAX);
}

/* Under the lock: checks, appends durably, then applies. */
static void store_change(kci_suggestions *keeper, const kci_suggestion_change *change,
                         outcome *result)
{
    const char *why = NULL;
    kc_err err = keeper->broken ? KC_ERR_IO : kci_suggestion_book_check(keeper->book, change, &why);
    if (keeper->broken)
        outcome_fail(result, KCI_SUGGESTION_CODE_UNAVAILABLE,
                     "the suggestions file is unusable; see kcobrad's log");
    else if (err != KC_OK)
        outcome_fail(
            result,
            err == KC_ERR_NOT_FOUND ? KCI_SUGGESTION_CODE_NOT_FOUND : KCI_SUGGESTION_CODE_REFUSED,
            "cannot %s %s: %s", kci_suggestion_action_name(change->action), change->id, why);
    if (result->code != 0) return;
    char *line = kci_suggestion_change_format(change);
    size_t length = line != NULL ? strlen(line) : 0;
    char *with_newline = line != NULL ? realloc(line, length + 2) : NULL;
    if (with_newline == NULL) {
        free(line);
        outcome_fail(result, KCI_SUGGESTION_CODE_STORAGE, "out of memory");
        return;
    }
    with_newline[length] = '\n';
    if (append_durably(keeper, with_newline, length + 1, result) == 0 &&
        kci_suggestion_book_apply(keeper->book, change) != KC_OK)
        kci_error("suggestions: out of memory: the change to %s is stored, seen after a restart",
                  change->id);
    free(with_newline);
}

static void on_change(natsConnection *connection, natsSubscription *subscription, natsMsg *message,
                      void *closure)
{
    kci_suggestions *keeper = closure;
    kci_kc_headers headers = {0};
    kci_hlc_timestamp received = {0};
    outcome result = {0};
    json_t *root = NULL, *answer = NULL;
    kci_suggestion_change change;
    const char *user = natsMsg_GetSubject(message) + strlen(KCI_SUGGEST_CHANGE_PREFIX);
    read_headers(message, &headers, &received, &result);
    if (result.code == 0 && !is_operator(keeper, user))
        outcome_fail(&result, KCI_SUGGESTION_CODE_NOT_OPERATOR,
                     "%s is not an operator of the suggestions (suggestions { operators })", user);
    if (result.code == 0) parse_change(message, user, &root, &change, &result);
    char ts[KCI_HLC_TEXT_BYTES_MAX];
    kci_hlc_format(&received, ts);
    change.ts = ts;
    if (result.code == 0) {
        pthread_mutex_lock(&keeper->lock);
        store_change(keeper, &change, &result);
        if (result.code == 0) answer = show(keeper, change.id);
        pthread_mutex_unlock(&keeper->lock);
        kci_info("suggestions: %s %s %s%s", user, kci_suggestion_action_name(change.action),
                 change.id, result.code == 0 ? "" : " refused");
    }
    respond_json(keeper, message, &headers, &result, answer);
    json_decref(answer);
    json_decref(root);
    natsMsg_Destroy(message);
}

/* ---- start and stop ------------------------------------------------------- */

static kc_err subscribe(kci_suggestions *keeper, const char *subject, const char *queue,
                        natsMsgHandler handler, kci_micro_stats *stats, char *error,
                        size_t error_size)
{
    const kci_subscription_spec spec = {.subject = subject,
                                        .queue = queue,
                                        .handler = handler,
                                        .pending_messages_max = KCI_PENDING_MESSAGES_DEFAULT,
                                        .pending_bytes_max = KCI_PENDING_BYTES_DEFAULT,
                                        .stats = stats};
    kc_err err = kci_subscriptions_add(&keeper->subscriptions, keeper->connection, &spec, keeper);
    if (err != KC_OK) return fail_text(error, error_size, err, "suggestions: %s", kc_last_error());
    return KC_OK;
}

static void keeper_free(kci_suggestions *keeper);

/* Answers $SRV (micro.h) for the keeper's four endpoints. */
static void micro_start(kci_suggestions *keeper)
{
    const kci_micro_endpoint endpoints[KEEPER_ENDPOINTS] = {
        {"suggest", KCI_SUGGEST_SUBJECT, KCI_SUGGEST_QUEUE, &keeper->endpoint_stats[0]},
        {"list", KCI_SUGGEST_LIST_SUBJECT, KCI_SUGGEST_LIST_QUEUE, &keeper->endpoint_stats[1]},
        {"show", KCI_SUGGEST_SHOW_SUBJECT, KCI_SUGGEST_SHOW_QUEUE, &keeper->endpoint_stats[2]},
        {"change", KCI_SUGGEST_CHANGE_PREFIX "*", KCI_SUGGEST_CHANGE_QUEUE,
         &keeper->endpoint_stats[3]},
    };
    const kci_micro_description about = {
        .name = "kc-keeper",
        .version = KC_VERSION,
        .description = "KingCobra suggestion keeper: kc.suggest kept in a file",
        .node = keeper->node,
        .type = "keeper",
        .endpoints = endpoints,
        .endpoint_count = KEEPER_ENDPOINTS};
    keeper->micro = kci_micro_start_logged(keeper->connection, &about, "suggestions");
}

static kci_suggestions *keeper_new(const kci_suggestions_config *config)
{
    kci_suggestions *keeper = calloc(1, sizeof *keeper);
    if (keeper == NULL) return NULL;
    keeper->fd = -1;
    keeper->file_path = strdup(config->file_path);
    if (keeper->file_path == NULL) {
        free(keeper);
        return NULL;
    }
    snprintf(keeper->node, sizeof keeper->node, "%s", config->node);
    keeper->book = kci_suggestion_book_new();
    keeper->operators = calloc(config->operator_count + 1, sizeof *keeper->operators);
    bool copied = keeper->book != NULL && keeper->operators != NULL;
    for (size_t i = 0; copied && i < config->operator_count; i++)
        copied =
            (keeper->operators[keeper->operator_count++] = strdup(config->operators[i])) != NULL;
    kci_subscriptions_init(&keeper->subscriptions);
    for (int index = 0; index < KEEPER_ENDPOINTS; index++)
        kci_micro_stats_init(&keeper->endpoint_stats[index]);
    pthread_mutex_init(&keeper->lock, NULL);
    if (!copied) {
        keeper_free(keeper);
        return NULL;
    }
    return keeper;
}

static void keeper_free(kci_suggestions *keeper)
{
    kci_subscriptions_destroy(&keeper->subscriptions);
    while (keeper->ring_count > 0)
        ring_drop_oldest(keeper);
    if (keeper->fd >= 0) kci_io->close(keeper->fd); /* releases the flock */
    pthread_mutex_destroy(&keeper->lock);
    for (int index = 0; index < KEEPER_ENDPOINTS; index++)
        kci_micro_stats_destroy(&keeper->endpoint_stats[index]);
    for (size_t i = 0; i < keeper->operator_count; i++)
        free(keeper->operators[i]);
    free(keeper->operators);
    json_decref(keeper->book);
    free(keeper->file_path);
    free(keeper);
}

static kc_err check_config(const kci_suggestions_config *config, char *error, size_t error_size)
{
    if (config == NULL || config->file_path == NULL || config->file_path[0] == '\0')
        return fail_text(error, error_size, KC_ERR_CONFIG, "suggestions: no file configured");
    if (config->node == NULL || strlen(config->node) > KC_NODE_BYTES_MAX ||
        !kci_token_valid(config->node))
        return fail_text(error, error_size, KC_ERR_CONFIG,
                         "suggestions: node \"%s\" is not one subject token",
                         config->node != NULL ? config->node : "(null)");
    return KC_OK;
}

kc_err kci_suggestions_start(kci_suggestions **out, natsConnection *connection,
                             const kci_suggestions_config *config, char *error, size_t error_size)
{
    assert(out != NULL && connection != NULL);
    *out = NULL;
    kc_err err = check_config(config, error, error_size);
    if (err != KC_OK) return err;
    kci_suggestions *keeper = keeper_new(config);
    if (keeper == NULL) return fail_text(error, error_size, KC_ERR_NOMEM, "out of memory");
    keeper->connection = connection;
    err = open_file(keeper, error, error_size);
    if (err == KC_OK) err = load_file(keeper, error, error_size);
    if (err == KC_OK)
        err = subscribe(keeper, KCI_SUGGEST_SUBJECT, KCI_SUGGEST_QUEUE, on_suggest,
                        &keeper->endpoint_stats[0], error, error_size);
    if (err == KC_OK)
        err = subscribe(keeper, KCI_SUGGEST_LIST_SUBJECT, KCI_SUGGEST_LIST_QUEUE, on_list,
                        &keeper->endpoint_stats[1], error, error_size);
    if (err == KC_OK)
        err = subscribe(keeper, KCI_SUGGEST_SHOW_SUBJECT, KCI_SUGGEST_SHOW_QUEUE, on_show,
                        &keeper->endpoint_stats[2], error, error_size);
    if (err == KC_OK)
        err = subscribe(keeper, KCI_SUGGEST_CHANGE_PREFIX "*", KCI_SUGGEST_CHANGE_QUEUE, on_change,
                        &keeper->endpoint_stats[3], error, error_size);
    if (err == KC_OK &&
        (err = kci_subscriptions_flush(connection, KCI_SUGGESTION_SUBSCRIBE_TIMEOUT_MS)) != KC_OK)
        err = fail_text(error, error_size, err, "suggestions: %s", kc_last_error());
    if (err != KC_OK) {
        kci_suggestions_stop(keeper, 0);
        return err;
    }
    micro_start(keeper);
    kci_info("suggestions: keeping %s on %s and %s", keeper->file_path, KCI_SUGGEST_SUBJECT,
             KCI_SUGGEST_LIST_SUBJECT);
    *out = keeper;
    return KC_OK;
}

void kci_suggestions_stop(kci_suggestions *keeper, int64_t drain_ms)
{
    if (keeper == NULL) return;
    kci_micro_stop(keeper->micro, drain_ms);
    keeper->micro = NULL;
    if (!kci_subscriptions_drain(&keeper->subscriptions, drain_ms, STOP_MARGIN_MS)) {
        /* A handler still runs (a hung disk?): leaking beats freeing under it. */
        kci_error("suggestions: a handler did not finish; leaking the keeper");
        return;
    }
    keeper_free(keeper);
}
