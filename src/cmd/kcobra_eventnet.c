/* kcobra_eventnet.c - `kcobra eventnet serve|causes|effects|check|export`
 * (docs/eventnet.md): the EventNet recorder as a process of its own, and
 * the questions asked of the graph it keeps.
 *
 * causes and effects ask the recorder on kc.eventnet.walk, or, with
 * --data-dir, read its LMDB directory themselves (read-only; a running
 * recorder may go on writing). check and export read the directory. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "econ/dot.h"
#include "eventnet/config.h"
#include "eventnet/graph.h"
#include "eventnet/recorder.h"
#include "eventnet/store.h"
#include "kcobra_common.h"
#include "kcobra_settings.h"
#include "service/last_error.h"

enum {
    EVENTNET_ERROR_BYTES = 512,
    DRAIN_MS = 1000,
    DEPTH_DEFAULT = 10,
    EXPORT_LIMIT_DEFAULT = 1000,
    EXPORT_LIMIT_MAX = 100000, /* events one picture draws at most */
    DOT_PATH_BYTES = 4096,
};

#define DIRECTORY_DEFAULT "data/eventnet" /* kcobrad's data_dir/eventnet */

static const char EVENTNET_DESCRIPTION[] =
    "The causal graph of the traffic (docs/eventnet.md). Every Kc message has a\n"
    "Kc-Id and a Kc-Ts; Kc-Cause names the events that caused it (a reply its\n"
    "request, a payment claim its request and transfer, a problem report its\n"
    "request). The recorder observes kc.> and _INBOX.> and keeps the graph in\n"
    "LMDB; kcobrad runs it with an eventnet { enabled: true } block.\n\n"
    "Actions:\n"
    "  serve                 run the recorder (flags: --directory, --events-max)\n"
    "  causes <id>           what led to the event, breadth first to --depth\n"
    "  effects <id>          what the event led to\n"
    "  check                 every cause's Kc-Ts before its effect's (HLC order);\n"
    "                        causes never recorded are listed as missing; exit 1\n"
    "                        on any problem\n"
    "  export --dot F|--svg F  draw a window: --since <wall ms>[.<counter>], --limit N\n\n"
    "causes and effects ask the recorder over NATS unless --data-dir names its\n"
    "directory; check and export read the directory (default " DIRECTORY_DEFAULT ").\n\n"
    "Examples:\n"
    "  kcobra eventnet causes 0190b6e2-7c1a-7d3e-9f00-1234567890ab --depth 3\n"
    "  kcobra eventnet check --data-dir /var/lib/kcobra/eventnet --json\n"
    "  kcobra eventnet export --svg window.svg --limit 200\n";

typedef struct eventnet_flags {
    int64_t depth;
    const char *data_dir;
    const char *dot_path;
    const char *svg_path;
    const char *since;
    int64_t limit;
} eventnet_flags;

/* ---- serve ----------------------------------------------------------------- */

static int serve(const kcobra_invocation *invocation, const kci_eventnet_config *settings)
{
    sigset_t stop_signals;
    kci_log_configure(KCI_LOG_INFO, true);
    kcobra_stop_signals_block(&stop_signals);
    natsConnection *connection = NULL;
    int status = kcobra_nats_connect_long_running(&connection, &invocation->common);
    if (status != KCOBRA_EXIT_OK) return status;
    kci_eventnet_recorder_config config = {
        .directory = settings->directory,
        .events_max = settings->events_max,
        .node = invocation->common.node != NULL ? invocation->common.node : "kcobra-eventnet"};
    kci_eventnet_recorder *recorder = NULL;
    char error[EVENTNET_ERROR_BYTES] = "";
    if (kci_eventnet_recorder_start(&recorder, connection, &config, error, sizeof error) != KC_OK) {
        kcobra_error("%s", error);
        kcobra_nats_finish(connection);
        return KCOBRA_EXIT_FAILURE;
    }
    int signal_number = kcobra_stop_signal_wait(&stop_signals);
    kci_info("eventnet: %s: stopping", strsignal(signal_number));
    kci_eventnet_recorder_stop(recorder, DRAIN_MS);
    kcobra_nats_finish(connection);
    return KCOBRA_EXIT_OK;
}

/* ---- walks ----------------------------------------------------------------- */

static int store_open(kci_eventnet_store **store, const char *directory)
{
    if (kci_eventnet_store_open(store, directory, true, 1) == KC_OK) return KCOBRA_EXIT_OK;
    kcobra_error("%s", kc_last_error());
    return KCOBRA_EXIT_FAILURE;
}

static int walk_remote(const kcobra_invocation *invocation, const char *id, bool effects,
                       int64_t depth, json_t **out)
{
    char body[256];
    snprintf(body, sizeof body, "{\"id\":\"%s\",\"direction\":\"%s\",\"depth\":%" PRId64 "}", id,
             effects ? "effects" : "causes", depth);
    natsConnection *connection = NULL;
    int status = kcobra_nats_connect(&connection, &invocation->common);
    if (status != KCOBRA_EXIT_OK) return status;
    natsMsg *reply = NULL;
    status = kcobra_call(&reply, connection, &invocation->common, KCI_EVENTNET_WALK_SUBJECT, body,
                         "EventNet recorder",
                         "enable eventnet in kcobrad, run kcobra eventnet serve, or use --data-dir",
                         NULL);
    if (status == KCOBRA_EXIT_OK) {
        *out = json_loadb(natsMsg_GetData(reply), (size_t)natsMsg_GetDataLength(reply), 0, NULL);
        if (*out == NULL) {
            kcobra_error("the recorder's answer is not JSON");
            status = KCOBRA_EXIT_FAILURE;
        }
    }
    natsMsg_Destroy(reply);
    kcobra_nats_finish(connection);
    return status;
}

static int walk_local(const char *directory, const char *id_text, bool effects, int64_t depth,
                      json_t **out)
{
    kci_uuid id;
    kci_eventnet_store *store = NULL;
    int status = store_open(&store, directory);
    if (status != KCOBRA_EXIT_OK) return status;
    bool parsed = kci_uuid_parse(id_text, strlen(id_text), &id);
    if (!parsed || kci_eventnet_walk(store, &id, effects, (int)depth, out) != KC_OK) {
        kcobra_error("%s", parsed ? kc_last_error() : "not an event id");
        status = KCOBRA_EXIT_FAILURE;
    }
    kci_eventnet_store_close(store);
    return status;
}

static void walk_print(json_t *walk)
{
    size_t index;
    json_t *event;
    json_array_foreach(json_object_get(walk, "events"), index, event)
    {
        int depth = (int)json_integer_value(json_object_get(event, "depth"));
        const char *id = json_string_value(json_object_get(event, "id"));
        if (json_is_true(json_object_get(event, "missing"))) {
            printf("%*s%s  (missing: never recorded)\n", 2 * depth, "", id);
            continue;
        }
        printf("%*s%s  %s  %-8s %s  %s\n", 2 * depth, "", id,
               json_string_value(json_object_get(event, "ts")),
               json_string_value(json_object_get(event, "kind")),
               json_string_value(json_object_get(event, "node")),
               json_string_value(json_object_get(event, "subject")));
    }
    if (json_is_true(json_object_get(walk, "truncated")))
        printf("(truncated at %d events)\n", KCI_EVENTNET_WALK_NODES_MAX);
}

static int run_walk(const kcobra_invocation *invocation, const eventnet_flags *flags, bool effects)
{
    if (invocation->positional_count != 2) {
        kcobra_error("eventnet %s takes one event id", effects ? "effects" : "causes");
        return KCOBRA_EXIT_USAGE;
    }
    const char *id = invocation->positional[1];
    kci_uuid uuid;
    if (!kci_uuid_parse(id, strlen(id), &uuid)) {
        kcobra_error("'%s' is not an event id (a UUID)", id);
        return KCOBRA_EXIT_USAGE;
    }
    int64_t depth = flags->depth > KCI_EVENTNET_DEPTH_MAX ? KCI_EVENTNET_DEPTH_MAX : flags->depth;
    json_t *walk = NULL;
    int status = flags->data_dir != NULL ? walk_local(flags->data_dir, id, effects, depth, &walk)
                                         : walk_remote(invocation, id, effects, depth, &walk);
    if (status != KCOBRA_EXIT_OK) return status;
    if (invocation->common.json) return kcobra_json_print(walk); /* takes walk */
    walk_print(walk);
    json_decref(walk);
    return KCOBRA_EXIT_OK;
}

/* ---- check ----------------------------------------------------------------- */

static void check_print(const kci_eventnet_check_result *result)
{
    printf("%" PRIu64 " events, %" PRIu64 " cause edges: %" PRIu64 " out of HLC order, %" PRIu64
           " missing causes, %" PRIu64 " causes dropped by retention\n",
           result->event_count, result->edge_count, result->order_violation_count,
           result->missing_cause_count, result->dropped_cause_count);
    size_t index;
    json_t *problem;
    json_array_foreach(result->problems, index, problem)
    {
        const char *kind = json_string_value(json_object_get(problem, "problem"));
        const char *effect = json_string_value(json_object_get(problem, "effect"));
        const char *cause = json_string_value(json_object_get(problem, "cause"));
        if (strcmp(kind, "missing") == 0)
            printf("missing: %s names cause %s, never recorded\n", effect, cause);
        else
            printf("order: %s at %s has cause %s at %s (not earlier)\n", effect,
                   json_string_value(json_object_get(problem, "effect_ts")), cause,
                   json_string_value(json_object_get(problem, "cause_ts")));
    }
}

static int run_check(const kcobra_invocation *invocation, const char *directory)
{
    kci_eventnet_store *store = NULL;
    int status = store_open(&store, directory);
    if (status != KCOBRA_EXIT_OK) return status;
    kci_eventnet_check_result result;
    kc_err err = kci_eventnet_check(store, &result);
    kci_eventnet_store_close(store);
    if (err != KC_OK) {
        kcobra_error("check: %s", kc_last_error());
        json_decref(result.problems);
        return KCOBRA_EXIT_FAILURE;
    }
    bool clean = result.order_violation_count == 0 && result.missing_cause_count == 0;
    if (invocation->common.json) {
        json_t *object = json_pack(
            "{s:I, s:I, s:I, s:I, s:I, s:b, s:O}", "events", (json_int_t)result.event_count,
            "edges", (json_int_t)result.edge_count, "order_violations",
            (json_int_t)result.order_violation_count, "missing_causes",
            (json_int_t)result.missing_cause_count, "dropped_causes",
            (json_int_t)result.dropped_cause_count, "ok", clean, "problems", result.problems);
        status = kcobra_json_print(object);
    } else {
        check_print(&result);
    }
    json_decref(result.problems);
    if (status != KCOBRA_EXIT_OK) return status;
    return clean ? KCOBRA_EXIT_OK : KCOBRA_EXIT_FAILURE;
}

/* ---- export ---------------------------------------------------------------- */

typedef struct export_window {
    kci_event *events;
    size_t count, capacity;
} export_window;

static bool window_add(const kci_event *event, void *context)
{
    export_window *window = context;
    if (window->count == window->capacity) return false;
    window->events[window->count++] = *event;
    return true;
}

static bool window_has(const export_window *window, const kci_uuid *id)
{
    for (size_t index = 0; index < window->count; index++)
        if (kci_uuid_compare(&window->events[index].id, id) == 0) return true;
    return false;
}

/* Events in the window are boxes (kind, node, id, Kc-Ts); a cause outside
 * it is a dashed ellipse (earlier than the window, or never recorded). */
static void dot_write(FILE *out, const export_window *window)
{
    fputs("digraph eventnet {\n  rankdir=LR;\n  node [shape=box, fontsize=10];\n", out);
    for (size_t index = 0; index < window->count; index++) {
        const kci_event *event = &window->events[index];
        char id[KC_UUID_TEXT_BYTES + 1], ts[KCI_HLC_TEXT_BYTES_MAX];
        kci_uuid_format(&event->id, id);
        kci_hlc_format(&event->ts, ts);
        fprintf(out, "  \"%s\" [label=\"%s %s\\n%.8s\\n%s\"];\n", id, event->kind, event->node, id,
                ts);
    }
    for (size_t index = 0; index < window->count; index++) {
        const kci_event *event = &window->events[index];
        char effect[KC_UUID_TEXT_BYTES + 1];
        kci_uuid_format(&event->id, effect);
        for (size_t position = 0; position < event->cause_count; position++) {
            char cause[KC_UUID_TEXT_BYTES + 1];
            kci_uuid_format(&event->causes[position], cause);
            if (!window_has(window, &event->causes[position]))
                fprintf(out,
                        "  \"%s\" [shape=ellipse, style=dashed, label=\"%.8s\\n(outside)\"];\n",
                        cause, cause);
            fprintf(out, "  \"%s\" -> \"%s\";\n", cause, effect);
        }
    }
    fputs("}\n", out);
}

static bool since_parse(const char *text, kci_hlc_timestamp *since)
{
    if (kci_hlc_parse(text, strlen(text), since)) return true;
    char *end = NULL;
    long long wall_ms = strtoll(text, &end, 10);
    if (end == text || *end != '\0' || wall_ms < 0 || wall_ms > KCI_HLC_WALL_MS_MAX) return false;
    since->wall_ms = wall_ms;
    since->counter = 0;
    return true;
}

static int export_write(const export_window *window, const eventnet_flags *flags)
{
    char dot_path[DOT_PATH_BYTES];
    if (flags->dot_path != NULL)
        snprintf(dot_path, sizeof dot_path, "%s", flags->dot_path);
    else
        snprintf(dot_path, sizeof dot_path, "%s.dot", flags->svg_path);
    FILE *out = fopen(dot_path, "w");
    if (out == NULL) {
        kcobra_error("cannot write %s", dot_path);
        return KCOBRA_EXIT_FAILURE;
    }
    dot_write(out, window);
    if (fclose(out) != 0) {
        kcobra_error("cannot write %s", dot_path);
        return KCOBRA_EXIT_FAILURE;
    }
    if (flags->svg_path == NULL) return KCOBRA_EXIT_OK;
    kci_econ_error error = {{0}};
    if (kci_econ_dot_render_svg(dot_path, flags->svg_path, &error) != KC_OK) {
        kcobra_error("%s", error.text);
        return KCOBRA_EXIT_FAILURE;
    }
    return KCOBRA_EXIT_OK;
}

static int run_export(const eventnet_flags *flags, const char *directory)
{
    if (flags->dot_path == NULL && flags->svg_path == NULL) {
        kcobra_error("eventnet export needs --dot FILE or --svg FILE");
        return KCOBRA_EXIT_USAGE;
    }
    kci_hlc_timestamp since = {0, 0};
    if (flags->since != NULL && !since_parse(flags->since, &since)) {
        kcobra_error("--since '%s' is not <wall ms>[.<counter>]", flags->since);
        return KCOBRA_EXIT_USAGE;
    }
    export_window window = {
        .capacity = (size_t)(flags->limit > EXPORT_LIMIT_MAX ? EXPORT_LIMIT_MAX : flags->limit)};
    window.events = calloc(window.capacity, sizeof window.events[0]);
    kci_eventnet_store *store = NULL;
    int status = window.events == NULL ? KCOBRA_EXIT_FAILURE : store_open(&store, directory);
    if (status == KCOBRA_EXIT_OK &&
        kci_eventnet_store_scan(store, &since, window.capacity, window_add, &window) != KC_OK) {
        kcobra_error("export: %s", kc_last_error());
        status = KCOBRA_EXIT_FAILURE;
    }
    kci_eventnet_store_close(store);
    if (status == KCOBRA_EXIT_OK) status = export_write(&window, flags);
    free(window.events);
    return status;
}

/* ---- the command ----------------------------------------------------------- */

/* One parse for every action (serve's settings from the recorder's key
 * table, the others' flags beside them), as `kcobra ledger` does. */
static int eventnet_action(const kcobra_command *command, int argc, char **argv,
                           kci_eventnet_config *settings)
{
    eventnet_flags flags = {.depth = DEPTH_DEFAULT, .limit = EXPORT_LIMIT_DEFAULT};
    const kcobra_flag extra[] = {
        {"depth", "N", KCOBRA_FLAG_COUNT, &flags.depth, "causes/effects: steps to follow"},
        {"data-dir", "DIR", KCOBRA_FLAG_STRING, &flags.data_dir,
         "the recorder's LMDB directory (read it, not the recorder)"},
        {"dot", "FILE", KCOBRA_FLAG_STRING, &flags.dot_path, "export: write Graphviz DOT"},
        {"svg", "FILE", KCOBRA_FLAG_STRING, &flags.svg_path, "export: draw SVG (with dot)"},
        {"since", "TS", KCOBRA_FLAG_STRING, &flags.since, "export: from this Kc-Ts or wall ms"},
        {"limit", "N", KCOBRA_FLAG_COUNT, &flags.limit, "export: events drawn at most"},
    };
    size_t key_count = 0;
    const kci_config_key *keys = kci_eventnet_config_keys(&key_count);
    kcobra_invocation invocation;
    int status = kcobra_settings_parse(command, argc, argv, keys, key_count, settings, extra,
                                       KCOBRA_ARRAY_COUNT(extra), &invocation);
    if (status != KCOBRA_EXIT_OK || invocation.help) return status;
    char error[EVENTNET_ERROR_BYTES] = "";
    if (kci_eventnet_config_check(settings, error, sizeof error) != KC_OK)
        return kcobra_usage_error(command, "%s", error);
    const char *action = invocation.positional[0];
    const char *directory = flags.data_dir != NULL ? flags.data_dir : DIRECTORY_DEFAULT;
    if (strcmp(action, "causes") == 0) return run_walk(&invocation, &flags, false);
    if (strcmp(action, "effects") == 0) return run_walk(&invocation, &flags, true);
    if (invocation.positional_count != 1)
        return kcobra_usage_error(command, "eventnet %s takes no argument", action);
    if (strcmp(action, "serve") == 0) return serve(&invocation, settings);
    if (strcmp(action, "check") == 0) return run_check(&invocation, directory);
    if (strcmp(action, "export") == 0) return run_export(&flags, directory);
    return kcobra_usage_error(
        command, "unknown action '%s' (serve, causes, effects, check, export)", action);
}

static int run_eventnet(const kcobra_command *command, int argc, char **argv)
{
    kci_eventnet_config settings;
    if (kci_eventnet_config_init(&settings, "data") != KC_OK) {
        kcobra_error("out of memory");
        return KCOBRA_EXIT_FAILURE;
    }
    int status = eventnet_action(command, argc, argv, &settings);
    kci_eventnet_config_free(&settings);
    return status;
}

const kcobra_command kcobra_command_eventnet = {
    .name = "eventnet",
    .synopsis = "eventnet serve|causes <id>|effects <id>|check|export [--depth N] [--data-dir "
                "DIR] [--dot F|--svg F] [--since TS] [--limit N]",
    .summary = "the causal graph of the traffic: record, walk, check, draw",
    .description = EVENTNET_DESCRIPTION,
    .run = run_eventnet,
    .positional_min = 1,
    .positional_max = 2,
};
