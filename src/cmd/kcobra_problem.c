/* kcobra_problem.c - the client's voice: `kcobra problem` (a report about a
 * node, kc.problem.<node>, read by the arbiter), `kcobra suggest` (a
 * suggestion kept for manual review by the keeper in kcobrad) and `kcobra
 * suggestions` (the kept ones, from the keeper over kc.suggest.list).
 *
 * problem and suggest go through libkingcobra. suggestions is a raw nats.c
 * request because the library has no call for it: the request is empty or
 * {"limit":N}; the keeper answers kc.suggest.list with
 * {"suggestions":[{"id","ts","node","text"}...],"returned","total",
 * "truncated"} (a bare array is accepted too), or with a Kc-Error header
 * "<code> <message>" (exit 5). With no keeper running the server answers
 * "no responders" (exit 4). The answer is bounded by the server's
 * max_payload; kcobra prints at most SUGGESTIONS_PRINTED_MAX rows. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kcobra_common.h"
#include "kcobra_suggestions.h"

#define SUGGEST_LIST_SUBJECT "kc.suggest.list"
#define KC_ERROR_HEADER "Kc-Error"

enum {
    SUGGESTIONS_PRINTED_MAX = 100000,
    TIME_TEXT_BYTES = KCOBRA_SUGGESTION_TIME_BYTES,
    TEXT_COLUMN_BYTES_MAX = 4096, /* a text longer than this is cut in the table */
    PROBLEM_REASON_FIRST = KC_PROBLEM_WRONG_ANSWER,
    PROBLEM_REASON_LAST = KC_PROBLEM_OTHER,
    REASON_LIST_BYTES = 256,
    SUGGESTIONS_REQUEST_BYTES_MAX = 512,
};

/* ================================================================== problem */

static const char PROBLEM_DESCRIPTION[] =
    "Reports a problem with <node> on kc.problem.<node>, for the arbiter to weigh.\n"
    "<reason> is one of: wrong_answer, slow, no_answer, error_reply, overcharged, other.\n"
    "\n"
    "Examples:\n"
    "  kcobra problem node-7 slow --text '3 s for a cache hit'\n"
    "  kcobra problem node-7 wrong_answer --request 0190b6e2-5c1a-7d3e-9f00-1234567890ab\n"
    "  kcobra problem node-7 no_answer --request 0190b6e2-... --transfer 0190b6e3-...\n"
    "\n"
    "--transfer ID (with --request) says the payer was charged without service: ID is\n"
    "the ledger hold or transfer that paid the request; the arbiters check with the\n"
    "ledger that it was charged for that request (docs/arbiter.md).\n";

static void reason_list(char *text, size_t text_size)
{
    size_t used = 0;
    text[0] = '\0';
    for (int reason = PROBLEM_REASON_FIRST; reason <= PROBLEM_REASON_LAST; reason++) {
        const char *name = kc_problem_reason_name((kc_problem_reason)reason);
        int wrote = snprintf(text + used, text_size - used, "%s%s",
                             reason == PROBLEM_REASON_FIRST ? "" : ", ", name != NULL ? name : "?");
        if (wrote < 0 || (size_t)wrote >= text_size - used) return;
        used += (size_t)wrote;
    }
}

static int problem_send(const kcobra_invocation *invocation, const char *node,
                        kc_problem_reason reason, const char *request_id, const char *transfer,
                        const char *text)
{
    kc_client *client = NULL;
    int status = kcobra_client_open(&client, &invocation->common);
    if (status != KCOBRA_EXIT_OK) return status;
    kc_err err =
        transfer != NULL
            ? kc_client_report_paid_problem(client, node, reason, request_id, transfer, text)
            : kc_client_report_problem(client, node, reason, request_id, text);
    if (err != KC_OK) {
        kcobra_error("cannot report the problem: %s (%s)", kc_last_error(), kc_strerror(err));
        status = kcobra_exit_for_error(err);
    } else if (invocation->common.json) {
        status = kcobra_json_print(json_pack("{s:s,s:s,s:s?,s:s?,s:s?}", "node", node, "reason",
                                             kc_problem_reason_name(reason), "request", request_id,
                                             "transfer", transfer, "text", text));
    } else {
        printf("problem reported about node %s (%s)\n", node, kc_problem_reason_name(reason));
        status = fflush(stdout) == 0 ? KCOBRA_EXIT_OK : KCOBRA_EXIT_FAILURE;
    }
    kcobra_client_close(client);
    return status;
}

static int run_problem(const kcobra_command *command, int argc, char **argv)
{
    const char *request_id = NULL, *transfer = NULL;
    const char *text = NULL;
    const kcobra_flag flags[] = {
        {"request", "ID", KCOBRA_FLAG_STRING, &request_id,
         "the Kc-Id of the offending request (see request --json)"},
        {"transfer", "ID", KCOBRA_FLAG_STRING, &transfer,
         "the ledger hold or transfer that paid it: charged without service (with --request)"},
        {"text", "T", KCOBRA_FLAG_STRING, &text, "what went wrong, in words"},
    };
    kcobra_invocation invocation;
    int status = kcobra_parse(command, flags, KCOBRA_ARRAY_COUNT(flags), argc, argv, &invocation);
    if (status != KCOBRA_EXIT_OK || invocation.help) return status;
    const char *node = invocation.positional[0];
    if (!kcobra_token_valid(node, KC_NODE_BYTES_MAX))
        return kcobra_usage_error(command, "invalid node name '%s': one subject token", node);
    kc_problem_reason reason = kc_problem_reason_from_name(invocation.positional[1]);
    if (reason == 0) {
        char reasons[REASON_LIST_BYTES];
        reason_list(reasons, sizeof reasons);
        return kcobra_usage_error(command, "unknown reason '%s'; reasons: %s",
                                  invocation.positional[1], reasons);
    }
    if (request_id != NULL && strlen(request_id) != KC_UUID_TEXT_BYTES)
        return kcobra_usage_error(command, "--request '%s' is not a request id (a UUID)",
                                  request_id);
    if (transfer != NULL && (request_id == NULL || strlen(transfer) != KC_UUID_TEXT_BYTES))
        return kcobra_usage_error(command, "--transfer needs --request, and a hold or transfer id");
    return problem_send(&invocation, node, reason, request_id, transfer, text);
}

const kcobra_command kcobra_command_problem = {
    .name = "problem",
    .synopsis = "problem <node> <reason> [--request ID [--transfer ID]] [--text T]",
    .summary = "report a problem with a node to the arbiters",
    .description = PROBLEM_DESCRIPTION,
    .run = run_problem,
    .positional_min = 2,
    .positional_max = 2,
};

/* ================================================================== suggest */

static const char SUGGEST_DESCRIPTION[] =
    "Sends a suggestion on kc.suggest and waits up to --timeout for the keeper (a\n"
    "kcobrad component) to say it is stored. Exit 4 when no keeper runs.\n"
    "\n"
    "Example:\n"
    "  kcobra suggest 'cache thumbnails for an hour'\n";

static int run_suggest(const kcobra_command *command, int argc, char **argv)
{
    kcobra_invocation invocation;
    int status = kcobra_parse(command, NULL, 0, argc, argv, &invocation);
    if (status != KCOBRA_EXIT_OK || invocation.help) return status;
    const char *text = invocation.positional[0];
    if (text[0] == '\0') return kcobra_usage_error(command, "the suggestion is empty");
    kc_client *client = NULL;
    status = kcobra_client_open(&client, &invocation.common);
    if (status != KCOBRA_EXIT_OK) return status;
    char id[KC_UUID_TEXT_BYTES + 1];
    kc_err err = kc_client_suggest(client, text, invocation.common.timeout_ms, id);
    if (err == KC_ERR_NO_RESPONDERS) {
        kcobra_error("no suggestion keeper answers on kc.suggest (no responders); "
                     "it runs in kcobrad");
    } else if (err == KC_ERR_TIMEOUT) {
        char timeout_text[KCOBRA_DURATION_TEXT_BYTES];
        kcobra_format_duration_ms(invocation.common.timeout_ms, timeout_text);
        kcobra_error("timed out after %s waiting for the keeper to store the suggestion",
                     timeout_text);
    } else if (err != KC_OK) {
        kcobra_error("cannot store the suggestion: %s (%s)", kc_last_error(), kc_strerror(err));
    } else if (invocation.common.json) {
        status = kcobra_json_print(json_pack("{s:b, s:s}", "stored", 1, "id", id));
    } else {
        printf("suggestion stored: %s\n", id);
        status = fflush(stdout) == 0 ? KCOBRA_EXIT_OK : KCOBRA_EXIT_FAILURE;
    }
    kcobra_client_close(client);
    return err != KC_OK ? kcobra_exit_for_error(err) : status;
}

const kcobra_command kcobra_command_suggest = {
    .name = "suggest",
    .synopsis = "suggest <text>",
    .summary = "send a suggestion to be kept for review",
    .description = SUGGEST_DESCRIPTION,
    .run = run_suggest,
    .positional_min = 1,
    .positional_max = 1,
};

/* ============================================================== suggestions */

static const char SUGGESTIONS_DESCRIPTION[] =
    "Lists the newest suggestions the keeper holds (a request on kc.suggest.list) as a\n"
    "table of id, time (UTC), node, status, assignee and text, oldest first; with --json\n"
    "prints the keeper's answer as one line. Exit 4 when no keeper runs.\n"
    "\n"
    "  list [--status S] [--assignee U] [--limit N]   (the default)\n"
    "  show <id>                  status, assignee and history\n"
    "  accept|reject|done <id>    change the status (operators only: --user)\n"
    "  assign <id> <user>         who works on it (operators only)\n"
    "\n"
    "Examples:\n"
    "  kcobra suggestions --status open\n"
    "  kcobra --user admin --password ... suggestions accept <id> --note 'next release'\n";

/* ts as the keeper sends it: a number of ms, an HLC "<ms>.<counter>", or
 * text (printed as it is). */
void kcobra_suggestion_time(const json_t *ts, char text[KCOBRA_SUGGESTION_TIME_BYTES])
{
    long long wall_ms = -1;
    if (json_is_integer(ts)) wall_ms = (long long)json_integer_value(ts);
    if (json_is_real(ts)) wall_ms = (long long)json_real_value(ts);
    if (json_is_string(ts)) {
        char *end = NULL;
        wall_ms = strtoll(json_string_value(ts), &end, 10);
        if (end == json_string_value(ts) || (*end != '\0' && *end != '.')) {
            snprintf(text, TIME_TEXT_BYTES, "%s", json_string_value(ts));
            return;
        }
    }
    time_t seconds = (time_t)(wall_ms / 1000);
    struct tm utc;
    if (wall_ms < 0 || gmtime_r(&seconds, &utc) == NULL ||
        strftime(text, TIME_TEXT_BYTES, "%Y-%m-%d %H:%M:%S", &utc) == 0)
        snprintf(text, TIME_TEXT_BYTES, "-");
}

static const char *string_field(const json_t *object, const char *key)
{
    const char *value = json_string_value(json_object_get(object, key));
    return value != NULL ? value : "-";
}

static void print_suggestion_row(const json_t *entry)
{
    char time_text[TIME_TEXT_BYTES];
    kcobra_suggestion_time(json_object_get(entry, "ts"), time_text);
    char text[TEXT_COLUMN_BYTES_MAX];
    snprintf(text, sizeof text, "%s", string_field(entry, "text"));
    for (char *cursor = text; *cursor != '\0'; cursor++)
        if ((unsigned char)*cursor < ' ') *cursor = ' ';
    printf("%-36s  %-19s  %-16s  %-8s  %-12s  %s\n", string_field(entry, "id"), time_text,
           string_field(entry, "node"), string_field(entry, "status"),
           string_field(entry, "assignee"), text);
}

/* answer: the keeper's object {"suggestions":[...],"returned","total",
 * "truncated"}, or a bare array. */
static int print_suggestion_table(const json_t *answer)
{
    const json_t *array = json_is_array(answer) ? answer : json_object_get(answer, "suggestions");
    size_t count = json_array_size(array);
    printf("%-36s  %-19s  %-16s  %-8s  %-12s  %s\n", "ID", "TIME (UTC)", "NODE", "STATUS",
           "ASSIGNEE", "TEXT");
    for (size_t index = 0; index < count && index < SUGGESTIONS_PRINTED_MAX; index++)
        print_suggestion_row(json_array_get(array, index));
    const json_t *total = json_object_get(answer, "total");
    if (json_is_integer(total) && (size_t)json_integer_value(total) > count)
        printf("%zu of %lld suggestions (the newest; see --limit)\n", count,
               (long long)json_integer_value(total));
    else
        printf("%zu suggestion%s\n", count, count == 1 ? "" : "s");
    return fflush(stdout) == 0 ? KCOBRA_EXIT_OK : KCOBRA_EXIT_FAILURE;
}

static int suggestions_print(natsMsg *reply, bool json)
{
    const char *error_text = NULL;
    if (natsMsgHeader_Get(reply, KC_ERROR_HEADER, &error_text) == NATS_OK && error_text != NULL) {
        kcobra_error("keeper error %s", error_text);
        return KCOBRA_EXIT_SERVICE_ERROR;
    }
    json_error_t parse_error;
    json_t *answer = json_loadb(natsMsg_GetData(reply), (size_t)natsMsg_GetDataLength(reply),
                                JSON_DECODE_ANY, &parse_error);
    if (!json_is_array(answer) && !json_is_array(json_object_get(answer, "suggestions"))) {
        kcobra_error("the keeper's answer is not a list of suggestions: %s",
                     answer == NULL ? parse_error.text : "unexpected JSON");
        json_decref(answer);
        return KCOBRA_EXIT_FAILURE;
    }
    if (json) return kcobra_json_print(answer);
    int status = print_suggestion_table(answer);
    json_decref(answer);
    return status;
}

typedef struct suggestions_flags {
    int64_t limit;
    const char *status;
    const char *assignee;
    const char *note;
} suggestions_flags;

static int suggestions_fetch(natsConnection *connection, const kcobra_common *common,
                             const suggestions_flags *flags)
{
    char request[SUGGESTIONS_REQUEST_BYTES_MAX] = "";
    json_t *filter = json_object();
    if (flags->limit > 0) json_object_set_new(filter, "limit", json_integer(flags->limit));
    if (flags->status != NULL) json_object_set_new(filter, "status", json_string(flags->status));
    if (flags->assignee != NULL)
        json_object_set_new(filter, "assignee", json_string(flags->assignee));
    if (json_object_size(filter) > 0 &&
        json_dumpb(filter, request, sizeof request - 1, JSON_COMPACT) >= sizeof request - 1)
        request[0] = '\0';
    json_decref(filter);
    natsMsg *reply = NULL;
    int status = kcobra_call(&reply, connection, common, SUGGEST_LIST_SUBJECT, request,
                             "suggestion keeper", "it runs in kcobrad", NULL);
    if (status == KCOBRA_EXIT_OK) status = suggestions_print(reply, common->json);
    natsMsg_Destroy(reply);
    return status;
}

static int run_suggestions(const kcobra_command *command, int argc, char **argv)
{
    suggestions_flags values = {0};
    const kcobra_flag flags[] = {
        {"limit", "N", KCOBRA_FLAG_COUNT, &values.limit,
         "at most the N newest (default: the keeper's maximum, 1000)"},
        {"status", "S", KCOBRA_FLAG_STRING, &values.status,
         "list: only open, accepted, rejected or done ones"},
        {"assignee", "USER", KCOBRA_FLAG_STRING, &values.assignee, "list: only USER's"},
        {"note", "T", KCOBRA_FLAG_STRING, &values.note, "accept|reject|done|assign: why"},
    };
    kcobra_invocation invocation;
    int status = kcobra_parse(command, flags, KCOBRA_ARRAY_COUNT(flags), argc, argv, &invocation);
    if (status != KCOBRA_EXIT_OK || invocation.help) return status;
    const char *what = invocation.positional_count > 0 ? invocation.positional[0] : "list";
    if (strcmp(what, "list") != 0) {
        if (strcmp(what, "show") != 0 && strcmp(what, "accept") != 0 &&
            strcmp(what, "reject") != 0 && strcmp(what, "done") != 0 && strcmp(what, "assign") != 0)
            return kcobra_usage_error(
                command, "unknown subcommand '%s': list, show, accept, reject, done or assign",
                what);
        return kcobra_suggestions_handle(command, &invocation, values.note);
    }
    if (invocation.positional_count > 1)
        return kcobra_usage_error(command, "list takes no argument");
    natsConnection *connection = NULL;
    status = kcobra_nats_connect(&connection, &invocation.common);
    if (status != KCOBRA_EXIT_OK) return status;
    status = suggestions_fetch(connection, &invocation.common, &values);
    kcobra_nats_finish(connection);
    return status;
}

const kcobra_command kcobra_command_suggestions = {
    .name = "suggestions",
    .synopsis = "suggestions [list|show <id>|accept|reject|done <id>|assign <id> <user>]",
    .summary = "list the suggestions kept for review",
    .description = SUGGESTIONS_DESCRIPTION,
    .run = run_suggestions,
    .positional_min = 0,
    .positional_max = 3,
};
