/* kcobra_queue.c - the REQUEST_REPLY.queue from the command line
 * (docs/queue.md): `kcobra submit` (a durable request through the
 * persister), `kcobra reply` (its recorded reply, by id) and `kcobra queue
 * dump|stats|verify|compact|requeue|serve`.
 *
 * submit and reply talk to a persister over the fabric with raw nats.c
 * (kc.submit.<type> and kc.reply.get are not kc.req service subjects).
 * dump, stats and verify read a queue directory directly and only read: they
 * are safe while kcobrad appends to it (a record being written at that
 * moment shows as a torn tail, which is reported, not an error). compact
 * removes files, so it either asks the running persister (--live, over
 * kc.sys.queue.compact) or takes the directory's lock itself, and refuses
 * when a persister holds it. serve runs the persister against any
 * NATS-protocol server until SIGINT or SIGTERM. */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/data_dir.h"
#include "kcobra_common.h"
#include "kcobra_settings.h"
#include "kcobra_submit_batch.h"
#include "queue/config.h"
#include "queue/dump.h"
#include "queue/index.h"
#include "queue/persister.h"
#include "queue/recovery.h"
#include "queue/replicated.h"
#include "queue/store_js.h"
#include "queue/verify.h"
#include "service/headers.h"
#include "service/hlc.h"
#include "service/uuid.h"

#define DEFAULT_DIRECTORY "data/queue"
#define REQUEST_PREFIX "kc.req."

enum {
    ERROR_BYTES = 512,
    LIVE_FIELD_NAME_BYTES = 128, /* "a.b.c" of a live reply's field */
    WAIT_MS_DEFAULT = 30 * 1000,
    FOLLOW_POLL_MS = 200,
    STOP_DRAIN_MS = 2000,
};

#define PERSISTER_RUNS_IN "it runs in kcobrad or as `kcobra queue serve`"

static const char *header_or_null(natsMsg *message, const char *name)
{
    const char *value = NULL;
    return natsMsgHeader_Get(message, name, &value) == NATS_OK ? value : NULL;
}

/* Prints a reply (forwarded or fetched): payload, or JSON. */
static int print_reply(natsMsg *reply, const char *id, bool json)
{
    const char *error = header_or_null(reply, KCI_HEADER_ERROR);
    const char *state = header_or_null(reply, KCI_HEADER_QUEUE_STATE);
    const char *node = header_or_null(reply, "Kc-Replied-By");
    if (json) {
        json_t *object = json_pack("{s:s, s:s?, s:s?, s:s?}", "id", id, "state",
                                   state != NULL ? state : "replied", "node", node, "error", error);
        if (state == NULL || strcmp(state, "replied") == 0)
            kcobra_json_set_payload(object, natsMsg_GetData(reply),
                                    (size_t)natsMsg_GetDataLength(reply));
        int status = kcobra_json_print(object);
        return status != KCOBRA_EXIT_OK ? status
               : error != NULL          ? KCOBRA_EXIT_SERVICE_ERROR
                                        : KCOBRA_EXIT_OK;
    }
    if (error != NULL) {
        bool recorded = state != NULL && strcmp(state, "replied") == 0;
        kcobra_error("%s %s", recorded ? "the service answered with error" : "persister:", error);
        return KCOBRA_EXIT_SERVICE_ERROR;
    }
    return kcobra_write_payload(natsMsg_GetData(reply), (size_t)natsMsg_GetDataLength(reply));
}

/* ================================================================== submit */

static const char SUBMIT_DESCRIPTION[] =
    "Sends a durable request of <type> to the persister (kc.submit.<type>) and\n"
    "waits up to --timeout for its acknowledgement: once acknowledged, the request\n"
    "is on disk and will be dispatched on kc.req.<type> until a service replies.\n"
    "Prints the request's id (the Kc-Id). With --wait, also waits up to --wait-for\n"
    "for the reply and prints it; without --wait-for, --timeout bounds the whole\n"
    "of `submit --wait --timeout 3s` (acknowledgement and reply), else 30 s.\n"
    "The payload is the argument, or stdin with '-'.\n"
    "Submitting again with the same --id is acknowledged again and stored once.\n"
    "\n"
    "--batch FILE|- submits one request per line (the line, without its newline,\n"
    "is the payload) with up to --window in flight, shows progress on a terminal,\n"
    "and prints how many were acknowledged and how many failed (--json: and which);\n"
    "the exit status is 1 when any failed. --timeout bounds each acknowledgement.\n"
    "\n"
    "Examples:\n"
    "  kcobra submit thumbnail '{\"image\":42}'\n"
    "  kcobra submit thumbnail - --wait < job.json\n"
    "  kcobra submit thumbnail --batch jobs.txt\n";

static natsMsg *submit_message(const char *type, const kcobra_buffer *payload, const char *id,
                               const char *node, const char *notify)
{
    char subject[KCI_RECORD_FIELD_BYTES_MAX];
    snprintf(subject, sizeof subject, "%s%s", KCI_SUBMIT_PREFIX, type);
    natsMsg *message = NULL;
    if (natsMsg_Create(&message, subject, NULL, payload->bytes, (int)payload->length) != NATS_OK)
        return NULL;
    char ts[KCI_HLC_TEXT_BYTES_MAX];
    kci_hlc_timestamp now;
    kci_hlc_now(kci_process_hlc(), &now);
    kci_hlc_format(&now, ts);
    natsMsgHeader_Set(message, KCI_HEADER_ID, id);
    natsMsgHeader_Set(message, KCI_HEADER_TS, ts);
    natsMsgHeader_Set(message, KCI_HEADER_TYPE, type);
    /* Without --node, the host's name, as libkingcobra's clients send it. */
    char host[KC_NODE_BYTES_MAX + 1];
    if (node == NULL && kci_node_from_host(host) == KC_OK) node = host;
    if (node != NULL) natsMsgHeader_Set(message, KCI_HEADER_NODE, node);
    if (notify != NULL) natsMsgHeader_Set(message, KCI_HEADER_NOTIFY, notify);
    return message;
}

static int submit_wait_reply(natsSubscription *subscription, const char *id, int64_t wait_ms,
                             bool json)
{
    natsMsg *reply = NULL;
    natsStatus status = natsSubscription_NextMsg(&reply, subscription, wait_ms);
    if (status == NATS_TIMEOUT) {
        char text[KCOBRA_DURATION_TEXT_BYTES];
        kcobra_format_duration_ms(wait_ms, text);
        kcobra_error("request %s is stored, but no reply came within %s; "
                     "`kcobra reply %s` fetches it later",
                     id, text, id);
        return KCOBRA_EXIT_TIMEOUT;
    }
    if (status != NATS_OK) {
        kcobra_error("waiting for the reply of %s: %s", id, kcobra_nats_error(status));
        return KCOBRA_EXIT_FAILURE;
    }
    int printed = print_reply(reply, id, json);
    natsMsg_Destroy(reply);
    return printed;
}

/* wait_ms < 0: -(a monotonic deadline) for the whole (submit --timeout). */
static int submit_send(natsConnection *connection, const kcobra_invocation *invocation,
                       const kcobra_buffer *payload, const char *id, bool wait, int64_t wait_ms)
{
    const kcobra_common *common = &invocation->common;
    natsInbox *inbox = NULL;
    natsSubscription *subscription = NULL;
    if (wait && (natsInbox_Create(&inbox) != NATS_OK ||
                 natsConnection_SubscribeSync(&subscription, connection, inbox) != NATS_OK)) {
        kcobra_error("cannot subscribe for the reply: %s", kcobra_nats_error(NATS_ERR));
        natsInbox_Destroy(inbox);
        return KCOBRA_EXIT_FAILURE;
    }
    natsMsg *message =
        submit_message(invocation->positional[0], payload, id, common->node, wait ? inbox : NULL);
    natsMsg *ack = NULL;
    kci_refusal refusal = {0};
    int result = message != NULL ? kcobra_call_message(&ack, connection, common, message,
                                                       "persister", PERSISTER_RUNS_IN, &refusal)
                                 : (kcobra_error("out of memory"), KCOBRA_EXIT_FAILURE);
    if (result == KCOBRA_EXIT_OK && refusal.code != 0) {
        kcobra_error("the persister refused the request: %d %s", refusal.code, refusal.message);
        result = KCOBRA_EXIT_SERVICE_ERROR;
    } else if (result == KCOBRA_EXIT_OK && !wait) {
        result = common->json ? kcobra_json_print(json_pack("{s:s, s:b}", "id", id, "stored", 1))
                              : (printf("%s\n", id),
                                 fflush(stdout) == 0 ? KCOBRA_EXIT_OK : KCOBRA_EXIT_FAILURE);
    } else if (result == KCOBRA_EXIT_OK) {
        if (wait_ms < 0) { /* -deadline: what --timeout left */
            wait_ms = -wait_ms - kci_monotonic_ms();
            if (wait_ms < 1) wait_ms = 1;
        }
        if (!common->json) fprintf(stderr, "stored %s; waiting for the reply\n", id);
        result = submit_wait_reply(subscription, id, wait_ms, common->json);
    }
    natsMsg_Destroy(ack);
    natsMsg_Destroy(message);
    natsSubscription_Destroy(subscription);
    natsInbox_Destroy(inbox);
    return result;
}

static int run_submit_batch(const kcobra_command *command, const kcobra_invocation *invocation,
                            const char *path, bool single_flags, int64_t window)
{
    if (invocation->positional_count > 1 || single_flags)
        return kcobra_usage_error(command, "--batch takes no payload, --id or --wait");
    if (window > KCOBRA_SUBMIT_WINDOW_MAX)
        return kcobra_usage_error(command, "--window %" PRId64 " is over %d", window,
                                  KCOBRA_SUBMIT_WINDOW_MAX);
    return kcobra_submit_batch(&invocation->common, invocation->positional[0], path, window);
}

/* Whether --name (or --name=...) is among the arguments before "--". */
static bool flag_given(int argc, char **argv, const char *name)
{
    size_t length = strlen(name);
    for (int index = 1; index < argc && strcmp(argv[index], "--") != 0; index++)
        if (strncmp(argv[index], "--", 2) == 0 && strncmp(argv[index] + 2, name, length) == 0 &&
            (argv[index][2 + length] == '\0' || argv[index][2 + length] == '='))
            return true;
    return false;
}

static int run_submit(const kcobra_command *command, int argc, char **argv)
{
    bool wait = false;
    int64_t wait_ms = WAIT_MS_DEFAULT;
    const char *id_flag = NULL;
    const char *batch_path = NULL;
    int64_t window = KCOBRA_SUBMIT_WINDOW_DEFAULT;
    const kcobra_flag flags[] = {
        {"batch", "FILE", KCOBRA_FLAG_STRING, &batch_path,
         "submit each line of FILE ('-': stdin) as a request of its own"},
        {"window", "N", KCOBRA_FLAG_COUNT, &window,
         "with --batch: requests in flight at most (default 1024, at most 65536)"},
        {"wait", NULL, KCOBRA_FLAG_BOOL, &wait, "also wait for the reply and print it"},
        {"wait-for", "DURATION", KCOBRA_FLAG_DURATION, &wait_ms,
         "how long --wait waits for the reply (default: --timeout when given, else 30s)"},
        {"id", "ID", KCOBRA_FLAG_STRING, &id_flag,
         "the request's id (a UUID; default: a new UUIDv7); resubmitting an id stores it once"},
    };
    kcobra_invocation invocation;
    int status = kcobra_parse(command, flags, KCOBRA_ARRAY_COUNT(flags), argc, argv, &invocation);
    if (status != KCOBRA_EXIT_OK || invocation.help) return status;
    if (!kcobra_token_valid(invocation.positional[0], KC_TYPE_BYTES_MAX))
        return kcobra_usage_error(command, "invalid type '%s': one subject token",
                                  invocation.positional[0]);
    if (batch_path != NULL)
        return run_submit_batch(command, &invocation, batch_path, id_flag != NULL || wait, window);
    /* `--wait --timeout 3s` means three seconds in all (it waited 30 s for
     * the reply): the reply wait is what the acknowledgement left. */
    int64_t deadline_ms = 0;
    if (flag_given(argc, argv, "timeout") && !flag_given(argc, argv, "wait-for"))
        deadline_ms = kci_monotonic_ms() + invocation.common.timeout_ms;
    char id[KC_UUID_TEXT_BYTES + 1];
    kci_uuid parsed;
    if (id_flag != NULL && !kci_uuid_parse(id_flag, strlen(id_flag), &parsed))
        return kcobra_usage_error(command, "--id '%s' is not a UUID", id_flag);
    if (id_flag != NULL)
        kci_uuid_format(&parsed, id);
    else
        kci_uuid_v7_text(id);
    kcobra_buffer payload = {0};
    status = kcobra_read_payload(invocation.positional_count > 1 ? invocation.positional[1] : NULL,
                                 &payload);
    if (status != KCOBRA_EXIT_OK) return status;
    natsConnection *connection = NULL;
    status = kcobra_nats_connect(&connection, &invocation.common);
    if (status == KCOBRA_EXIT_OK)
        status = submit_send(connection, &invocation, &payload, id, wait,
                             deadline_ms > 0 ? -deadline_ms : wait_ms);
    if (connection != NULL) kcobra_nats_finish(connection);
    kcobra_buffer_free(&payload);
    return status;
}

const kcobra_command kcobra_command_submit = {
    .name = "submit",
    .synopsis = "submit <type> [payload|-] [--wait] [--id ID] | --batch FILE|-",
    .summary = "send a durable request through the persister",
    .description = SUBMIT_DESCRIPTION,
    .run = run_submit,
    .positional_min = 1,
    .positional_max = 2,
};

/* =================================================================== reply */

static const char REPLY_DESCRIPTION[] =
    "Fetches the recorded reply of durable request <id> from the persister\n"
    "(kc.reply.get) and prints its payload. A request without a reply yet, a\n"
    "dead one (no reply after the maximum attempts) or an unknown id is an error\n"
    "(exit 5) that says which. --json prints {id, state, node, error, payload}.\n"
    "\n"
    "Example:\n"
    "  kcobra reply 0190b6e2-5c1a-7d3e-9f00-1234567890ab\n";

static int run_reply(const kcobra_command *command, int argc, char **argv)
{
    kcobra_invocation invocation;
    int status = kcobra_parse(command, NULL, 0, argc, argv, &invocation);
    if (status != KCOBRA_EXIT_OK || invocation.help) return status;
    const char *id = invocation.positional[0];
    kci_uuid parsed;
    if (!kci_uuid_parse(id, strlen(id), &parsed))
        return kcobra_usage_error(command, "'%s' is not a request id (a UUID)", id);
    char canonical[KC_UUID_TEXT_BYTES + 1];
    kci_uuid_format(&parsed, canonical);
    natsConnection *connection = NULL;
    status = kcobra_nats_connect(&connection, &invocation.common);
    if (status != KCOBRA_EXIT_OK) return status;
    natsMsg *reply = NULL;
    status = kcobra_call(&reply, connection, &invocation.common, KCI_REPLY_GET_SUBJECT, canonical,
                         "persister", PERSISTER_RUNS_IN, NULL);
    if (status == KCOBRA_EXIT_OK) status = print_reply(reply, canonical, invocation.common.json);
    natsMsg_Destroy(reply);
    kcobra_nats_finish(connection);
    return status;
}

const kcobra_command kcobra_command_reply = {
    .name = "reply",
    .synopsis = "reply <id>",
    .summary = "fetch the recorded reply of a durable request",
    .description = REPLY_DESCRIPTION,
    .run = run_reply,
    .positional_min = 1,
    .positional_max = 1,
};

/* =================================================================== queue */

static const char QUEUE_DESCRIPTION[] =
    "Works on the REQUEST_REPLY.queue. <action> is one of:\n"
    "  dump     print every record, one line each (--json: one object each);\n"
    "           --id ID only that request's records; --follow keeps printing\n"
    "  stats    count segments, records, requests, replies, pending and dead;\n"
    "           --live: the running persister's counters (JSON)\n"
    "  verify   check every record's checksum, and that the records agree: every\n"
    "           reply, redelivery and tombstone has its request, no request or\n"
    "           reply is stored twice, no segment is missing; exit 0 when the log\n"
    "           is sound, 1 when a record is corrupt or missing (each is named)\n"
    "  compact  remove the oldest segments whose requests are all replied and\n"
    "           older than --retention (default 24h; 0: as soon as replied);\n"
    "           --live asks the running persister, else the directory is locked\n"
    "  requeue  bring dead requests back to pending (their attempts from 0):\n"
    "           those of --type T, or the one --id ID, or all; --live asks the\n"
    "           running persister, else the directory is locked; prints how\n"
    "           many (--json: {\"requeued\":n,\"dead\":m}, m dead ones left)\n"
    "  serve    run the persister against --server until SIGINT/SIGTERM\n"
    "With --storage jetstream the queue is a stream on the --server cluster:\n"
    "serve then runs one of several persisters (the one holding the lease is\n"
    "active), and dump, stats and verify read the stream (--stream).\n"
    "dump, stats and verify only read --dir (default: the queue/ of --data-dir, of\n"
    "--config's data_dir, of the installed kcobrad.conf's, else data/queue): safe\n"
    "while kcobrad runs. A torn tail (a write interrupted by a crash, or being\n"
    "written right now) is reported but is not corruption: it was never\n"
    "acknowledged.\n"
    "\n"
    "Examples:\n"
    "  kcobra queue dump --dir data/queue --id 0190b6e2-5c1a-7d3e-9f00-1234567890ab\n"
    "  kcobra queue verify --dir /var/lib/kingcobra/queue\n"
    "  kcobra queue requeue --live --type thumbnail\n"
    "  kcobra queue serve --server nats://10.0.0.5:4222 --dir /srv/queue\n";

/* The persister's settings (src/queue/config.c: dir, retention,
 * durability, ...) and the flags of the other actions. */
typedef struct queue_flags {
    kci_persister_settings settings;
    const char *directory; /* settings.dir */
    bool jetstream;        /* --storage jetstream: read the stream on --server */
    char label[KCI_QUEUE_JS_STREAM_BYTES_MAX + 16]; /* "stream NAME": what is read, named */
    kcobra_common common; /* the invocation's: --server for --storage jetstream */
    bool follow;
    const char *id;
    const char *type;
    bool live;
    const char *data_dir;    /* --data-dir: the queue is its queue/ */
    const char *config_path; /* --config: kcobrad's file, its data_dir */
} queue_flags;

/* Without --dir, the queue is <data_dir>/queue of --data-dir, of --config's
 * data_dir, or of the installed default configuration and data directory
 * (data_dir.h), so `kcobra queue` finds kcobrad's queue from any directory. */
static kc_err queue_directory_choose(queue_flags *flags, char *error, size_t error_size)
{
    if (strcmp(flags->settings.dir, DEFAULT_DIRECTORY) != 0) return KC_OK; /* --dir wins */
    const char *config_path = flags->config_path;
    if (flags->data_dir == NULL && config_path == NULL) config_path = kci_default_config_path();
    char *data_dir = NULL;
    if (flags->data_dir != NULL || config_path == NULL)
        data_dir = strdup(flags->data_dir != NULL ? flags->data_dir : kci_data_dir_default());
    else if (kci_data_dir_from_config(config_path, &data_dir, error, error_size) != KC_OK)
        return KC_ERR_CONFIG;
    size_t size = data_dir != NULL ? strlen(data_dir) + sizeof "/queue" : 0;
    char *directory = size > 0 ? malloc(size) : NULL;
    if (directory != NULL) snprintf(directory, size, "%s/queue", data_dir);
    free(data_dir);
    if (directory == NULL) return snprintf(error, error_size, "out of memory"), KC_ERR_NOMEM;
    free(flags->settings.dir);
    flags->settings.dir = directory;
    return KC_OK;
}

/* ---- dump ---- */

typedef struct dump_state {
    bool json;
    bool filter;
    kci_uuid id;
    kci_position after; /* follow: print only records past it */
    bool printed_any;
    int status;
} dump_state;

static int dump_json(const kci_record *record, kci_position position)
{
    char id[KC_UUID_TEXT_BYTES + 1], where[32], ts[KCI_HLC_TEXT_BYTES_MAX];
    kci_uuid_format(&record->id, id);
    snprintf(where, sizeof where, "%u:%u", kci_position_segment(position),
             kci_position_offset(position));
    kci_hlc_timestamp timestamp = {.wall_ms = record->ts_wall_ms, .counter = record->ts_counter};
    kci_hlc_format(&timestamp, ts);
    json_t *object =
        json_pack("{s:s, s:s, s:s, s:s, s:s%, s:s%, s:s%, s:i}", "position", where, "kind",
                  kci_record_is_requeue(record) ? "requeue" : kci_record_kind_name(record->kind),
                  "id", id, "ts", ts, "subject", record->subject, (size_t)record->subject_length,
                  "reply", record->reply, (size_t)record->reply_length, "client", record->client,
                  (size_t)record->client_length, "attempt", (int)record->attempt);
    if (object == NULL) object = json_pack("{s:s, s:s}", "position", where, "id", id);
    kcobra_json_set_payload(object, record->payload, record->payload_length);
    return kcobra_json_print(object);
}

static kc_err dump_visit(void *context, const kci_record *record, kci_position position)
{
    dump_state *state = context;
    if (state->printed_any && position <= state->after) return KC_OK;
    state->after = position;
    state->printed_any = true;
    if (state->filter && memcmp(record->id.bytes, state->id.bytes, sizeof state->id.bytes) != 0)
        return KC_OK;
    int status = state->json ? dump_json(record, position) : kci_dump_line(stdout, record);
    if (status != 0) {
        state->status = KCOBRA_EXIT_FAILURE;
        return KC_ERR_IO; /* stdout is gone (a closed pipe): stop */
    }
    return KC_OK;
}

static void report_problems(const kci_scan_report *report)
{
    for (uint32_t index = 0; index < report->corruption_count && index < KCI_SCAN_CORRUPTIONS_MAX;
         index++)
        kcobra_error("CORRUPT: segment %u offset %" PRIu64 ": %" PRIu64
                     " bytes fail their checks (not shown)",
                     report->corruptions[index].segment, report->corruptions[index].offset,
                     report->corruptions[index].length_bytes);
    if (report->corruption_count > KCI_SCAN_CORRUPTIONS_MAX)
        kcobra_error("... and %u more corrupt spots",
                     report->corruption_count - KCI_SCAN_CORRUPTIONS_MAX);
    if (report->tail_damaged)
        kcobra_error("DAMAGED: a record that may have been acknowledged is damaged: %" PRIu64
                     " bytes at segment %u offset %" PRIu64
                     " (a whole record that fails its checks, at the end of the log)",
                     report->torn_bytes, report->segment_last, report->torn_offset);
    if (report->torn_tail)
        fprintf(stderr,
                "kcobra: note: segment %u ends in a torn or unfinished write at offset %" PRIu64
                " (%" PRIu64 " bytes, never acknowledged)\n",
                report->segment_last, report->torn_offset, report->torn_bytes);
}

/* Reads the whole queue, from --dir or (--storage jetstream) from the
 * stream on --server. */
static kc_err queue_scan(const queue_flags *flags, const kci_scan_options *options,
                         kci_scan_visit visit, void *context, kci_scan_report *report,
                         kci_queue_js_terms *terms, char *error, size_t error_size)
{
    memset(terms, 0, sizeof *terms);
    if (!flags->jetstream)
        return kci_scan(flags->directory, options, visit, context, report, error, error_size);
    natsConnection *connection = NULL;
    if (kcobra_nats_connect(&connection, &flags->common) != KCOBRA_EXIT_OK) {
        snprintf(error, error_size, "cannot connect to %s", flags->common.server);
        return KC_ERR_NOT_CONNECTED;
    }
    kc_err err = kci_queue_js_scan(connection, flags->settings.stream, visit, context, report,
                                   terms, error, error_size);
    kcobra_nats_finish(connection);
    return err;
}

static int queue_dump(const queue_flags *flags, bool json)
{
    dump_state state = {.json = json, .status = KCOBRA_EXIT_OK};
    if (flags->id != NULL) {
        if (!kci_uuid_parse(flags->id, strlen(flags->id), &state.id)) {
            kcobra_error("--id '%s' is not a UUID", flags->id);
            return KCOBRA_EXIT_USAGE;
        }
        state.filter = true;
    }
    kci_scan_options options = {.skip_corrupt = true, .settle_tail = true};
    char error[ERROR_BYTES] = "";
    kci_scan_report report;
    kci_queue_js_terms terms;
    for (;;) {
        kc_err err =
            queue_scan(flags, &options, dump_visit, &state, &report, &terms, error, sizeof error);
        fflush(stdout);
        if (state.status != KCOBRA_EXIT_OK) return state.status;
        if (err != KC_OK) {
            kcobra_error("%s", error[0] ? error : kc_strerror(err));
            return KCOBRA_EXIT_FAILURE;
        }
        if (!flags->follow || flags->jetstream) break;
        options.from_segment = state.printed_any ? kci_position_segment(state.after) : 0;
        struct timespec pause = {.tv_nsec = FOLLOW_POLL_MS * 1000000L};
        nanosleep(&pause, NULL);
    }
    report_problems(&report);
    return report.corruption_count > 0 || report.tail_damaged ? KCOBRA_EXIT_FAILURE
                                                              : KCOBRA_EXIT_OK;
}

/* ---- stats and verify ---- */

/* What verify.c found beyond the checksums: each problem named. */
static void report_inconsistencies(const kci_verify_result *result)
{
    char text[KCI_VERIFY_PROBLEM_TEXT_BYTES];
    for (uint64_t index = 0; index < result->problem_count && index < KCI_VERIFY_PROBLEMS_MAX;
         index++) {
        kci_verify_problem_text(&result->problems[index], text, sizeof text);
        kcobra_error("INCONSISTENT: %s", text);
    }
    if (result->problem_count > KCI_VERIFY_PROBLEMS_MAX)
        kcobra_error("... and %" PRIu64 " more inconsistencies",
                     result->problem_count - KCI_VERIFY_PROBLEMS_MAX);
    if (result->references_after_retention > 0)
        fprintf(stderr,
                "kcobra: note: %" PRIu64 " replies or tombstones refer to requests in segments "
                "retention removed\n",
                result->references_after_retention);
}

static void print_stats_text(const queue_flags *flags, const kci_scan_report *report,
                             const kci_verify_result *result, bool verify_only, bool sound)
{
    if (verify_only) {
        const char *verdict = report->corruption_count > 0 || report->tail_damaged ? "CORRUPT"
                              : !sound                                             ? "INCONSISTENT"
                                                                                   : "sound";
        printf("%s: %s: %u segments, %" PRIu64 " records, %" PRIu64 " bytes checked in %.3f s\n",
               flags->directory, verdict, report->segment_count, report->record_count,
               report->record_bytes, (double)report->duration_us / 1e6);
        return;
    }
    printf("directory     %s\nsegments      %u\nrecords       %" PRIu64 "\nbytes         %" PRIu64
           "\nrequests      %" PRIu64 "\nreplied       %" PRIu64 "\npending       %" PRIu64
           "\ndead          %" PRIu64 "\nredeliveries  %" PRIu64 "\nrequeues      %" PRIu64
           "\ncorrupt       %u\ntorn tail     %s\nmissing       %" PRIu64 "\ninconsistent  %" PRIu64
           "\n",
           flags->directory, report->segment_count, report->record_count, report->record_bytes,
           result->requests, result->replied, result->pending, result->dead,
           report->kind_count[KCI_RECORD_REDELIVERY] - result->requeues, result->requeues,
           report->corruption_count, report->torn_tail ? "yes" : "no", result->missing_requests,
           result->problem_count);
}

static int print_stats_json(const queue_flags *flags, const kci_scan_report *report,
                            const kci_verify_result *result, const kci_queue_js_terms *terms,
                            bool sound)
{
    json_t *object = json_pack(
        "{s:s, s:b, s:i, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:b, s:b, s:i, s:I, "
        "s:I, s:I}",
        "directory", flags->directory, "sound", sound, "segments", (int)report->segment_count,
        "records", (json_int_t)report->record_count, "bytes", (json_int_t)report->record_bytes,
        "requests", (json_int_t)result->requests, "replied", (json_int_t)result->replied, "pending",
        (json_int_t)result->pending, "dead", (json_int_t)result->dead, "redeliveries",
        (json_int_t)(report->kind_count[KCI_RECORD_REDELIVERY] - result->requeues), "requeues",
        (json_int_t)result->requeues, "replies", (json_int_t)report->kind_count[KCI_RECORD_REPLY],
        "tombstones", (json_int_t)report->kind_count[KCI_RECORD_TOMBSTONE], "torn_tail",
        report->torn_tail, "tail_damaged", report->tail_damaged, "corrupt",
        (int)report->corruption_count, "missing_requests", (json_int_t)result->missing_requests,
        "inconsistencies", (json_int_t)result->problem_count, "scan_us",
        (json_int_t)report->duration_us);
    if (object != NULL && flags->jetstream) { /* what the writers' Kc-Term say */
        json_object_set_new(object, "writer_terms", json_integer((json_int_t)terms->writers));
        json_object_set_new(object, "term_markers", json_integer((json_int_t)terms->markers));
        json_object_set_new(object, "term_regressions",
                            json_integer((json_int_t)terms->regressions));
    }
    return kcobra_json_print(object);
}

static int queue_stats(const queue_flags *flags, bool json, bool verify_only)
{
    kci_verify verify;
    if (!kci_verify_init(&verify)) {
        kcobra_error("out of memory");
        return KCOBRA_EXIT_FAILURE;
    }
    kci_scan_options options = {.skip_corrupt = true, .settle_tail = true};
    char error[ERROR_BYTES] = "";
    kci_scan_report report;
    kci_queue_js_terms terms;
    kc_err err = queue_scan(flags, &options, kci_verify_visit, &verify, &report, &terms, error,
                            sizeof error);
    if (err == KC_OK) kci_verify_finish(&verify, &report);
    kci_verify_destroy(&verify);
    if (err != KC_OK) {
        kcobra_error("%s: %s", flags->directory, error[0] ? error : kc_strerror(err));
        return KCOBRA_EXIT_FAILURE;
    }
    const kci_verify_result *result = &verify.result;
    /* On a stream: a message of an older term after a newer one is a write
     * the fence should have refused (store_js.h). */
    if (terms.regressions > 0) {
        verify.result.problem_count++;
        kcobra_error("INCONSISTENT: the message at sequence %" PRIu64
                     " was written in term %" PRIu64 " after term %" PRIu64
                     " had written: a deposed persister wrote (%" PRIu64 " such messages)",
                     terms.regression_seq, terms.regression_term, terms.regression_after,
                     terms.regressions);
    }
    bool sound = report.corruption_count == 0 && !report.tail_damaged && result->problem_count == 0;
    int status = KCOBRA_EXIT_OK;
    if (json) {
        status = print_stats_json(flags, &report, result, &terms, sound);
    } else {
        print_stats_text(flags, &report, result, verify_only, sound);
        fflush(stdout);
    }
    report_problems(&report);
    report_inconsistencies(result);
    if (status != KCOBRA_EXIT_OK) return status;
    return sound ? KCOBRA_EXIT_OK : KCOBRA_EXIT_FAILURE;
}

/* ---- compact ---- */

/* Asks the running persister on subject and prints its JSON answer. */
/* A reply's fields as "name value" lines, nested objects as a.b (issue 18:
 * `queue stats --live` printed JSON without --json). */
static void print_fields(const json_t *object, const char *prefix)
{
    const char *key;
    json_t *value;
    json_object_foreach((json_t *)object, key, value)
    {
        char name[LIVE_FIELD_NAME_BYTES];
        snprintf(name, sizeof name, "%s%s%s", prefix, prefix[0] != '\0' ? "." : "", key);
        if (json_is_object(value)) {
            print_fields(value, name);
            continue;
        }
        char *text = json_is_string(value) ? NULL : json_dumps(value, JSON_ENCODE_ANY);
        printf("%-28s %s\n", name, text != NULL ? text : json_string_value(value));
        free(text);
    }
}

static int print_live_reply(const natsMsg *reply, bool json)
{
    const char *data = natsMsg_GetData(reply);
    size_t length = (size_t)natsMsg_GetDataLength(reply);
    json_t *object = json ? NULL : json_loadb(data, length, 0, NULL);
    if (!json_is_object(object)) { /* --json, or not an object: as received */
        json_decref(object);
        int status = kcobra_write_payload(data, length);
        if (!isatty(STDOUT_FILENO)) printf("\n");
        return status;
    }
    print_fields(object, "");
    json_decref(object);
    return fflush(stdout) == 0 ? KCOBRA_EXIT_OK : KCOBRA_EXIT_FAILURE;
}

static int ask_live(const kcobra_common *common, const char *subject, const char *body)
{
    natsConnection *connection = NULL;
    int status = kcobra_nats_connect(&connection, common);
    if (status != KCOBRA_EXIT_OK) return status;
    natsMsg *reply = NULL;
    status = kcobra_call(&reply, connection, common, subject, body, "persister", PERSISTER_RUNS_IN,
                         NULL);
    if (status == KCOBRA_EXIT_OK) status = print_live_reply(reply, common->json);
    natsMsg_Destroy(reply);
    kcobra_nats_finish(connection);
    return status;
}

/* The running persister's own counters (kc.sys.queue.stats), as JSON. */
static int stats_live(const kcobra_common *common)
{
    return ask_live(common, KCI_QUEUE_STATS_SUBJECT, "");
}

static int compact_live(const kcobra_common *common, int64_t retention_ms)
{
    char body[64];
    snprintf(body, sizeof body, "{\"retention_ms\":%" PRId64 "}", retention_ms);
    return ask_live(common, KCI_QUEUE_COMPACT_SUBJECT, body);
}

/* The persister on --dir without a connection (it takes the directory's
 * lock, so it refuses while another persister runs); NULL after saying why. */
static kci_persister *persister_offline(const queue_flags *flags, const char *verb)
{
    kci_persister_config config = kci_persister_config_defaults(flags->directory);
    config.skip_corrupt = flags->settings.skip_corrupt;
    config.retention_ms = KCI_PERSISTER_RETENTION_KEEP; /* only what was asked for, once */
    kci_persister *persister = NULL;
    char error[ERROR_BYTES] = "";
    kc_err err = kci_persister_start(&persister, NULL, &config, error, sizeof error);
    if (err == KC_OK) return persister;
    kcobra_error("cannot %s %s: %s%s", verb, flags->directory, error,
                 err == KC_ERR_EXISTS ? " (use --live to ask the running persister)" : "");
    return NULL;
}

static int compact_offline(const queue_flags *flags, int64_t retention_ms, bool json)
{
    kci_persister *persister = persister_offline(flags, "compact");
    if (persister == NULL) return KCOBRA_EXIT_FAILURE;
    uint32_t removed = kci_persister_compact(persister, retention_ms);
    kci_persister_stop(persister, 0);
    if (json) return kcobra_json_print(json_pack("{s:i}", "segments_removed", (int)removed));
    printf("removed %u segment%s from %s\n", removed, removed == 1 ? "" : "s", flags->directory);
    return fflush(stdout) == 0 ? KCOBRA_EXIT_OK : KCOBRA_EXIT_FAILURE;
}

/* ---- requeue ---- */

static int print_requeued(const queue_flags *flags, uint64_t requeued, uint64_t dead, bool json)
{
    if (json)
        return kcobra_json_print(
            json_pack("{s:I, s:I}", "requeued", (json_int_t)requeued, "dead", (json_int_t)dead));
    printf("requeued %" PRIu64 " dead request%s%s%s%s%s; %" PRIu64 " dead left\n", requeued,
           requeued == 1 ? "" : "s", flags->type != NULL ? " of type " : "",
           flags->type != NULL ? flags->type : "", flags->id != NULL ? " with id " : "",
           flags->id != NULL ? flags->id : "", dead);
    return fflush(stdout) == 0 ? KCOBRA_EXIT_OK : KCOBRA_EXIT_FAILURE;
}

/* The persister's answer to kc.sys.queue.requeue, printed. */
static int requeue_answer(const queue_flags *flags, natsMsg *reply, bool json)
{
    const char *error = header_or_null(reply, KCI_HEADER_ERROR);
    if (error != NULL) {
        kcobra_error("persister: %s", error);
        return KCOBRA_EXIT_FAILURE;
    }
    json_error_t json_error;
    json_t *answer =
        json_loadb(natsMsg_GetData(reply), (size_t)natsMsg_GetDataLength(reply), 0, &json_error);
    json_t *requeued = json_object_get(answer, "requeued"), *dead = json_object_get(answer, "dead");
    int status = KCOBRA_EXIT_FAILURE;
    if (json_is_integer(requeued) && json_is_integer(dead))
        status = print_requeued(flags, (uint64_t)json_integer_value(requeued),
                                (uint64_t)json_integer_value(dead), json);
    else
        kcobra_error("persister: an answer without the counts");
    json_decref(answer);
    return status;
}

static int requeue_live(const queue_flags *flags, const kcobra_common *common)
{
    json_t *filter = json_pack("{s:s?, s:s?}", "type", flags->type, "id", flags->id);
    char *body = filter != NULL ? json_dumps(filter, JSON_COMPACT) : NULL;
    json_decref(filter);
    if (body == NULL) {
        kcobra_error("out of memory");
        return KCOBRA_EXIT_FAILURE;
    }
    natsConnection *connection = NULL;
    int status = kcobra_nats_connect(&connection, common);
    if (status != KCOBRA_EXIT_OK) {
        free(body);
        return status;
    }
    natsMsg *reply = NULL;
    status = kcobra_call(&reply, connection, common, KCI_QUEUE_REQUEUE_SUBJECT, body, "persister",
                         PERSISTER_RUNS_IN, NULL);
    free(body);
    if (status == KCOBRA_EXIT_OK) status = requeue_answer(flags, reply, common->json);
    natsMsg_Destroy(reply);
    kcobra_nats_finish(connection);
    return status;
}

static int requeue_offline(const queue_flags *flags, bool json)
{
    kci_uuid id;
    if (flags->id != NULL && !kci_uuid_parse(flags->id, strlen(flags->id), &id)) {
        kcobra_error("--id '%s' is not a UUID", flags->id);
        return KCOBRA_EXIT_USAGE;
    }
    kci_persister *persister = persister_offline(flags, "requeue in");
    if (persister == NULL) return KCOBRA_EXIT_FAILURE;
    uint64_t requeued = 0;
    kc_err err =
        kci_persister_requeue(persister, flags->type, flags->id != NULL ? &id : NULL, &requeued);
    kci_persister_stats stats;
    kci_persister_stats_get(persister, &stats);
    kci_persister_stop(persister, 0);
    if (err != KC_OK) {
        kcobra_error("requeued %" PRIu64 "; the others were not: %s", requeued, kc_strerror(err));
        return KCOBRA_EXIT_FAILURE;
    }
    return print_requeued(flags, requeued, stats.dead, json);
}

/* ---- serve ---- */

/* --storage jetstream: one of several persisters; the active one holds the
 * lease (replicated.h). */
static int queue_serve_replicated(const kcobra_invocation *invocation, const queue_flags *flags)
{
    sigset_t stop_signals;
    kcobra_stop_signals_block(&stop_signals);
    natsConnection *connection = NULL;
    int status = kcobra_nats_connect_lease(&connection, &invocation->common);
    if (status != KCOBRA_EXIT_OK) return status;
    kci_persister_config config =
        kci_persister_settings_runtime(&flags->settings, invocation->common.node);
    kci_lease_config lease;
    kci_persister_settings_lease(&flags->settings, &lease);
    kci_persister_replicated *replicated = NULL;
    char error[ERROR_BYTES] = "";
    if (kci_persister_replicated_start(&replicated, connection, &config, &lease, error,
                                       sizeof error) != KC_OK) {
        kcobra_error("cannot start the persister: %s", error);
        kcobra_nats_finish(connection);
        return KCOBRA_EXIT_FAILURE;
    }
    fprintf(stderr, "kcobra: persister on %s, stream %s: active while it holds the lease %s\n",
            invocation->common.server, flags->settings.stream, flags->settings.lease.bucket);
    int signal_number = kcobra_stop_signal_wait(&stop_signals);
    fprintf(stderr, "kcobra: %s: stopping the persister\n", strsignal(signal_number));
    kci_persister_replicated_stop(replicated, STOP_DRAIN_MS);
    kcobra_nats_finish(connection);
    return KCOBRA_EXIT_OK;
}

static int queue_serve(const kcobra_invocation *invocation, const queue_flags *flags)
{
    if (flags->jetstream) return queue_serve_replicated(invocation, flags);
    sigset_t stop_signals;
    kcobra_stop_signals_block(&stop_signals);
    natsConnection *connection = NULL;
    int status = flags->settings.record_requests
                     ? kcobra_nats_connect_ordered(&connection, &invocation->common)
                     : kcobra_nats_connect_long_running(&connection, &invocation->common);
    if (status != KCOBRA_EXIT_OK) return status;
    kci_persister_config config =
        kci_persister_settings_runtime(&flags->settings, invocation->common.node);
    kci_persister *persister = NULL;
    char error[ERROR_BYTES] = "";
    if (kci_persister_start(&persister, connection, &config, error, sizeof error) != KC_OK) {
        kcobra_error("cannot start the persister: %s", error);
        kcobra_nats_finish(connection);
        return KCOBRA_EXIT_FAILURE;
    }
    fprintf(stderr, "kcobra: persister serving %s on %s; log in %s\n", KCI_SUBMIT_SUBJECT,
            invocation->common.server, flags->directory);
    int signal_number = kcobra_stop_signal_wait(&stop_signals);
    fprintf(stderr, "kcobra: %s: stopping the persister\n", strsignal(signal_number));
    kci_persister_stop(persister, STOP_DRAIN_MS);
    kcobra_nats_finish(connection);
    return KCOBRA_EXIT_OK;
}

/* The action with its flags parsed and the settings applied. */
static int queue_action(const kcobra_command *command, const kcobra_invocation *invocation,
                        queue_flags *flags)
{
    const char *action = invocation->positional[0];
    bool json = invocation->common.json;
    struct stat directory_status;
    bool offline =
        !flags->live && (strcmp(action, "stats") == 0 || strcmp(action, "compact") == 0 ||
                         strcmp(action, "requeue") == 0);
    bool reads = strcmp(action, "dump") == 0 || strcmp(action, "verify") == 0 || offline;
    if (flags->jetstream && offline && strcmp(action, "stats") != 0)
        return kcobra_usage_error(command, "%s of a queue on JetStream: use --live", action);
    if (reads && !flags->jetstream &&
        (stat(flags->directory, &directory_status) != 0 || !S_ISDIR(directory_status.st_mode))) {
        kcobra_error("no queue directory %s (see --dir)", flags->directory);
        return KCOBRA_EXIT_FAILURE;
    }
    int64_t retention_ms = flags->settings.retention_ms; /* 0: remove once replied */
    if (strcmp(action, "dump") == 0) return queue_dump(flags, json);
    if (strcmp(action, "stats") == 0)
        return flags->live ? stats_live(&invocation->common) : queue_stats(flags, json, false);
    if (strcmp(action, "verify") == 0) return queue_stats(flags, json, true);
    if (strcmp(action, "compact") == 0)
        return flags->live ? compact_live(&invocation->common, retention_ms)
                           : compact_offline(flags, retention_ms, json);
    if (strcmp(action, "requeue") == 0)
        return flags->live ? requeue_live(flags, &invocation->common)
                           : requeue_offline(flags, json);
    if (strcmp(action, "serve") == 0) return queue_serve(invocation, flags);
    return kcobra_usage_error(
        command, "unknown action '%s'; actions: dump, stats, verify, compact, requeue, serve",
        action);
}

static int parse_and_run(const kcobra_command *command, int argc, char **argv, queue_flags *flags)
{
    const kcobra_flag extra[] = {
        {"id", "ID", KCOBRA_FLAG_STRING, &flags->id,
         "dump: only the records of this request; requeue: only this request"},
        {"type", "T", KCOBRA_FLAG_STRING, &flags->type, "requeue: only requests of this type"},
        {"follow", NULL, KCOBRA_FLAG_BOOL, &flags->follow, "dump: keep printing new records"},
        {"live", NULL, KCOBRA_FLAG_BOOL, &flags->live,
         "stats, compact, requeue: ask the running persister over --server"},
        {"data-dir", "DIR", KCOBRA_FLAG_STRING, &flags->data_dir,
         "kcobrad's data_dir: the queue is DIR/queue (unless --dir)"},
        {"config", "FILE", KCOBRA_FLAG_STRING, &flags->config_path,
         "kcobrad's configuration: the queue is in its data_dir (unless --dir)"},
    };
    size_t key_count = 0;
    const kci_config_key *keys = kci_persister_settings_keys(&key_count);
    kcobra_invocation invocation;
    int status = kcobra_settings_parse(command, argc, argv, keys, key_count, &flags->settings,
                                       extra, KCOBRA_ARRAY_COUNT(extra), &invocation);
    if (status != KCOBRA_EXIT_OK || invocation.help) return status;
    char error[ERROR_BYTES] = "";
    if (queue_directory_choose(flags, error, sizeof error) != KC_OK)
        return kcobra_usage_error(command, "%s", error);
    if (kci_persister_settings_check(&flags->settings, error, sizeof error) != KC_OK)
        return kcobra_usage_error(command, "%s", error);
    flags->directory = flags->settings.dir;
    flags->jetstream = strcmp(flags->settings.storage, "jetstream") == 0;
    if (flags->jetstream) {
        snprintf(flags->label, sizeof flags->label, "stream %s", flags->settings.stream);
        flags->directory = flags->label;
    }
    flags->common = invocation.common;
    return queue_action(command, &invocation, flags);
}

static int run_queue(const kcobra_command *command, int argc, char **argv)
{
    queue_flags flags = {0};
    if (kci_persister_settings_init(&flags.settings, DEFAULT_DIRECTORY) != KC_OK) {
        kcobra_error("out of memory");
        return KCOBRA_EXIT_FAILURE;
    }
    int status = parse_and_run(command, argc, argv, &flags);
    kci_persister_settings_free(&flags.settings);
    return status;
}

const kcobra_command kcobra_command_queue = {
    .name = "queue",
    .synopsis = "queue dump|stats|verify|compact|requeue|serve [--dir DIR]",
    .summary = "read, check, compact, requeue or serve the REQUEST_REPLY.queue",
    .description = QUEUE_DESCRIPTION,
    .run = run_queue,
    .positional_min = 1,
    .positional_max = 1,
};
