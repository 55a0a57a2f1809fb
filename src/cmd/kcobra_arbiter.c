/* kcobra_arbiter.c - `kcobra arbiter serve|status|verdicts|reinstate|tree`.
 *
 * serve runs the arbiter component (src/arbiter) in this process against
 * any NATS-protocol server, the same code kcobrad hosts; without kcobrad's
 * internal user it cannot make the broker enforce a quarantine, so its
 * verdicts are published and kept, and enforced by the kcobrad-hosted
 * arbiter when one takes part in the quorum (docs/arbiter.md).
 * The other subcommands ask the running arbiters over kc.arbiter.status,
 * .verdicts, .tree and .reinstate (the first arbiter to answer speaks).
 * Exit status: 4 when no arbiter runs (no responders). */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arbiter/arbiter.h"
#include "arbiter/config.h"
#include "arbiter/tree.h"
#include "arbiter/verdict_js.h"
#include "arbiter/verdict_log.h"
#include "arbiter/vote_sign.h"
#include "common/log.h"
#include "kcobra_common.h"
#include "kcobra_reports.h"
#include "kcobra_settings.h"

enum {
    ARBITER_CLOSE_TIMEOUT_MS = 3000,
    REASONS_TEXT_BYTES = 128,
};

static const char ARBITER_DESCRIPTION[] =
    "The arbiters find faulty and corrupt nodes (docs/arbiter.md).\n"
    "\n"
    "  serve                 run an arbiter in this process until SIGINT/SIGTERM\n"
    "  status                each node's status, QoS, credibility, merit, probes, reasons\n"
    "  verdicts              the final verdicts, with their votes and evidence\n"
    "  verdicts --verify     with --data-dir D --id ID [--peer-key ID=KEY]: check that\n"
    "                        arbiter's verdicts file (hash chain, signed head); else read\n"
    "                        the verdict stream (verdict_storage jetstream) from its first\n"
    "                        message and check its hash chain (exit 1 if broken)\n"
    "  reinstate <node>      ask the arbiters to reinstate a quarantined node (quorum)\n"
    "  tree [--format F]     the reporting structure: text, json or dot\n"
    "  permissions           nats-server permissions that enforce the quarantine there\n"
    "  reports               analytics of the recorded problem reports: counts by node,\n"
    "                        reason and reporter per --window, bursts, rings (--json, --svg)\n"
    "\n"
    "Examples:\n"
    "  kcobra arbiter serve --id arbiter-2 --arbiters 4 --probe 'sense=21.5' \\\n"
    "      --peer arbiter-0 --peer arbiter-1 --peer arbiter-3\n"
    "  kcobra arbiter status\n"
    "  kcobra arbiter tree --format dot | dot -Tsvg > tree.svg\n"
    "  kcobra arbiter reinstate node-7\n"
    "  kcobra arbiter reports --data-dir /var/lib/kingcobra --id arbiter-0 --window 10m --svg "
    "r.svg\n";

typedef struct arbiter_flags {
    const char *format;
    bool verify;
    kcobra_reports_flags reports;
} arbiter_flags;

/* ---- serve ---------------------------------------------------------------------- */

/* The settings come from the arbiter's key table (src/arbiter/config.c),
 * set by serve's flags. */
static int serve(const kcobra_invocation *invocation, const kcobra_command *command,
                 kci_arbiter_settings *settings)
{
    int status = KCOBRA_EXIT_OK;
    char error[512] = "";
    kci_arbiter_config config;
    char *probe_texts[KCI_ARBITER_PROBES_MAX];
    if (kci_arbiter_settings_check(settings, error, sizeof error) != KC_OK ||
        kci_arbiter_settings_runtime(settings, &config, probe_texts, error, sizeof error) != KC_OK)
        return kcobra_usage_error(command, "%s", error);
    sigset_t stop_signals;
    kcobra_stop_signals_block(&stop_signals);
    kci_log_configure(KCI_LOG_INFO, true);
    kc_client *client = NULL;
    status = kcobra_client_open(&client, &invocation->common);
    kci_arbiter *arbiter = NULL;
    if (status == KCOBRA_EXIT_OK &&
        kci_arbiter_start(&arbiter, client, &config, error, sizeof error) != KC_OK) {
        kcobra_error("%s", error);
        status = KCOBRA_EXIT_FAILURE;
    }
    kci_arbiter_probe_texts_free(probe_texts); /* the arbiter keeps copies */
    if (status == KCOBRA_EXIT_OK) {
        int signal_number = kcobra_stop_signal_wait(&stop_signals);
        kci_info("received %s: stopping the arbiter", strsignal(signal_number));
        kci_arbiter_stop(arbiter, ARBITER_CLOSE_TIMEOUT_MS);
    }
    if (client != NULL) kc_client_close(client, ARBITER_CLOSE_TIMEOUT_MS);
    return status;
}

/* ---- asking the arbiters ---------------------------------------------------------- */

static int ask(json_t **out, const kcobra_invocation *invocation, const char *subject,
               const char *payload)
{
    *out = NULL;
    natsConnection *connection = NULL;
    int status = kcobra_nats_connect(&connection, &invocation->common);
    if (status != KCOBRA_EXIT_OK) return status;
    natsMsg *reply = NULL;
    /* every arbiter answers: the first one speaks */
    status = kcobra_call_first(&reply, connection, &invocation->common, subject, payload, "arbiter",
                               "enable the arbiter block in kcobrad, or run kcobra arbiter serve");
    if (status == KCOBRA_EXIT_OK) {
        *out = json_loadb(natsMsg_GetData(reply), (size_t)natsMsg_GetDataLength(reply), 0, NULL);
        if (*out == NULL) {
            kcobra_error("the arbiter's answer on %s is not JSON", subject);
            status = KCOBRA_EXIT_FAILURE;
        }
    }
    natsMsg_Destroy(reply);
    kcobra_nats_finish(connection);
    return status;
}

static void reasons_text(json_t *reasons, char text[REASONS_TEXT_BYTES])
{
    size_t used = 0, index;
    json_t *reason;
    text[0] = '\0';
    json_array_foreach(reasons, index, reason)
    {
        int wrote = snprintf(text + used, REASONS_TEXT_BYTES - used, "%s%s", used ? "," : "",
                             json_string_value(reason) ? json_string_value(reason) : "?");
        if (wrote < 0 || (size_t)wrote >= REASONS_TEXT_BYTES - used) break;
        used += (size_t)wrote;
    }
    if (used == 0) snprintf(text, REASONS_TEXT_BYTES, "-");
}

static double number(json_t *object, const char *key)
{
    return json_number_value(json_object_get(object, key));
}

static int print_status(json_t *answer)
{
    printf("arbiter %s: %lld arbiter(s), a verdict needs %lld vote(s); n > 3f %s%s%s\n",
           json_string_value(json_object_get(answer, "arbiter")),
           (long long)json_integer_value(json_object_get(answer, "arbiters")),
           (long long)json_integer_value(json_object_get(answer, "needed")),
           json_is_true(json_object_get(answer, "guarantee_holds")) ? "holds" : "DOES NOT HOLD",
           json_is_true(json_object_get(answer, "guarantee_holds")) ? "" : ": ",
           json_string_value(json_object_get(answer, "guarantee")));
    printf("reports: %lld received, %lld malformed, %lld dropped (over a reporter's rate); "
           "%lld verdict(s)\n",
           (long long)json_integer_value(json_object_get(answer, "reports_received")),
           (long long)json_integer_value(json_object_get(answer, "reports_malformed")),
           (long long)json_integer_value(json_object_get(answer, "reports_dropped")),
           (long long)json_integer_value(json_object_get(answer, "verdicts")));
    printf("%-20s %-8s %-12s %6s %9s %6s %6s %7s %8s %5s  %s\n", "NODE", "ROLE", "STATUS", "QOS",
           "LATENCY", "CRED", "MERIT", "PROBES", "PRICE", "xREF", "REASONS");
    size_t index;
    json_t *node;
    json_array_foreach(json_object_get(answer, "nodes"), index, node)
    {
        char reasons[REASONS_TEXT_BYTES], probes[32];
        reasons_text(json_object_get(node, "reasons"), reasons);
        snprintf(probes, sizeof probes, "%lld/%lld",
                 (long long)json_integer_value(json_object_get(node, "fusion_suspect")),
                 (long long)json_integer_value(json_object_get(node, "fusion_rounds")));
        const char *role = json_string_value(json_object_get(node, "role"));
        printf("%-20s %-8s %-12s %6.3f %7.1fms %6.3f %6.3f %7s %8.2f %5.2f  %s\n",
               json_string_value(json_object_get(node, "name")), role != NULL ? role : "-",
               json_string_value(json_object_get(node, "status")), number(node, "qos"),
               number(node, "latency_ms"), number(node, "credibility"), number(node, "merit"),
               probes, number(node, "price"), number(node, "price_ratio"), reasons);
    }
    return fflush(stdout) == 0 ? KCOBRA_EXIT_OK : KCOBRA_EXIT_FAILURE;
}

static int print_verdicts(json_t *answer)
{
    size_t index;
    json_t *verdict;
    json_t *list = json_object_get(answer, "verdicts");
    if (json_array_size(list) == 0) printf("no verdicts yet\n");
    json_array_foreach(list, index, verdict)
    {
        char reasons[REASONS_TEXT_BYTES], votes[256] = "";
        reasons_text(json_object_get(json_object_get(verdict, "evidence"), "reasons"), reasons);
        size_t used = 0, k;
        json_t *vote;
        json_array_foreach(json_object_get(verdict, "votes"), k, vote)
        {
            int wrote = snprintf(votes + used, sizeof votes - used, "%s%s", used ? "," : "",
                                 json_string_value(vote));
            if (wrote < 0 || (size_t)wrote >= sizeof votes - used) break;
            used += (size_t)wrote;
        }
        printf("%-24s %-10s %-20s reasons %-20s votes %s\n",
               json_string_value(json_object_get(verdict, "id")),
               json_string_value(json_object_get(verdict, "action")),
               json_string_value(json_object_get(verdict, "node")), reasons, votes);
    }
    return fflush(stdout) == 0 ? KCOBRA_EXIT_OK : KCOBRA_EXIT_FAILURE;
}

/* For nats-server, which has no quarantine hook: each quarantined node's
 * user loses subscribe on kc.req.>; the operator merges this into the
 * authorization block and reloads (docs/arbiter.md). */
static int print_permissions(json_t *answer)
{
    printf("# kcobra arbiter permissions: the quarantined nodes of arbiter %s.\n"
           "# Merge into nats-server's authorization { users: [...] } (each node logs in as\n"
           "# the user named after it), then reload nats-server (nats-server --signal reload).\n",
           json_string_value(json_object_get(answer, "arbiter")));
    size_t index, count = 0;
    json_t *node;
    json_array_foreach(json_object_get(answer, "nodes"), index, node)
    {
        const char *status = json_string_value(json_object_get(node, "status"));
        if (status == NULL || strcmp(status, "quarantined") != 0) continue;
        printf("{ user: \"%s\", permissions: { subscribe: { deny: [\"kc.req.>\"] } } }\n",
               json_string_value(json_object_get(node, "name")));
        count++;
    }
    if (count == 0) printf("# (no node is quarantined)\n");
    return fflush(stdout) == 0 ? KCOBRA_EXIT_OK : KCOBRA_EXIT_FAILURE;
}

static int query(const kcobra_command *command, const kcobra_invocation *invocation,
                 const arbiter_flags *flags)
{
    const char *what = invocation->positional[0];
    bool tree = strcmp(what, "tree") == 0;
    const char *format = flags->format != NULL     ? flags->format
                         : invocation->common.json ? "json"
                                                   : "text";
    if (tree && strcmp(format, "text") != 0 && strcmp(format, "json") != 0 &&
        strcmp(format, "dot") != 0)
        return kcobra_usage_error(command, "--format is text, json or dot, not '%s'", format);
    bool permissions = strcmp(what, "permissions") == 0;
    char subject[64], payload[KC_NODE_BYTES_MAX + 32] = "";
    snprintf(subject, sizeof subject, "kc.arbiter.%s", permissions ? "status" : what);
    if (strcmp(what, "reinstate") == 0) {
        if (invocation->positional_count != 2 ||
            !kcobra_token_valid(invocation->positional[1], KC_NODE_BYTES_MAX))
            return kcobra_usage_error(command, "reinstate needs one node name");
        json_t *request = json_pack("{s:s}", "node", invocation->positional[1]);
        char *text = json_dumps(request, JSON_COMPACT);
        snprintf(payload, sizeof payload, "%s", text != NULL ? text : "");
        free(text);
        json_decref(request);
    } else if (invocation->positional_count != 1) {
        return kcobra_usage_error(command, "%s takes no argument", what);
    }
    json_t *answer = NULL;
    int status = ask(&answer, invocation, subject, payload);
    if (status != KCOBRA_EXIT_OK) return status;
    if (json_object_get(answer, "error") != NULL) {
        kcobra_error("the arbiter refused: %s",
                     json_string_value(json_object_get(answer, "error")));
        json_decref(answer);
        return KCOBRA_EXIT_SERVICE_ERROR;
    }
    if (tree && strcmp(format, "dot") == 0)
        status = kci_tree_print_dot(stdout, answer) == KC_OK ? 0 : 1;
    else if (tree && strcmp(format, "text") == 0)
        status = kci_tree_print_text(stdout, answer) == KC_OK ? 0 : 1;
    else if (permissions && !invocation->common.json)
        status = print_permissions(answer);
    else if (invocation->common.json || tree)
        return kcobra_json_print(answer);
    else if (strcmp(what, "status") == 0)
        status = print_status(answer);
    else if (strcmp(what, "verdicts") == 0)
        status = print_verdicts(answer);
    else
        printf("arbiter %s: %s is %s%s\n", json_string_value(json_object_get(answer, "arbiter")),
               json_string_value(json_object_get(answer, "node")),
               json_string_value(json_object_get(answer, "status")),
               json_is_true(json_object_get(answer, "reinstating"))
                   ? "; reinstatement asked (needs a quorum)"
                   : "");
    json_decref(answer);
    return status;
}

/* The key the head must be signed with: --peer-key ID=KEY for the id when
 * given, else the one the head names (said in the output). */
static const uint8_t *expected_head_key(const kci_arbiter_settings *settings, kci_vote_key *key)
{
    for (size_t i = 0; i < settings->peer_keys.count; i++)
        if (kci_vote_key_parse(key, settings->peer_keys.items[i]) &&
            strcmp(key->arbiter, settings->id) == 0)
            return key->key;
    return NULL;
}

/* `verdicts --verify` of a local file: <data_dir>/arbiter-<id>.verdicts.jsonl
 * and its signed head, read here (verdict_log.h). */
static int verify_file(const kcobra_command *command, const kcobra_invocation *invocation,
                       const kci_arbiter_settings *settings)
{
    if (settings->id == NULL)
        return kcobra_usage_error(command,
                                  "--verify of a verdicts file needs --id with --data-dir");
    char path[4096];
    snprintf(path, sizeof path, "%s/arbiter-%s.verdicts.jsonl", settings->data_dir, settings->id);
    kci_vote_key key;
    const uint8_t *expected = expected_head_key(settings, &key);
    kci_verdict_log_report report;
    json_t *list = json_array();
    kc_err err = kci_verdict_log_verify(path, expected, &report, list);
    if (err != KC_OK) {
        json_decref(list);
        kcobra_error("%s: %s", path, err == KC_ERR_NOT_FOUND ? "no such file" : kc_strerror(err));
        return err == KC_ERR_NOT_FOUND ? KCOBRA_EXIT_SERVICE_ERROR : KCOBRA_EXIT_FAILURE;
    }
    bool intact = report.problem[0] == '\0';
    json_t *answer =
        json_pack("{s:s, s:o, s:I, s:b, s:s, s:s}", "file", path, "verdicts", list, "checked",
                  (json_int_t)report.chain.checked, "intact", intact, "problem", report.problem,
                  "key", expected != NULL ? "peer-key" : "the head's own");
    int status;
    if (invocation->common.json) {
        status = kcobra_json_print(answer);
    } else {
        status = print_verdicts(answer);
        if (intact)
            printf("file %s: %llu verdict(s), hash chain intact, signed head covers them (key: "
                   "%s)\n",
                   path, (unsigned long long)report.chain.checked,
                   expected != NULL ? "--peer-key" : "the head's own; give --peer-key to pin it");
        else
            printf("file %s: %llu verdict(s), NOT INTACT: %s\n", path,
                   (unsigned long long)report.chain.checked, report.problem);
        json_decref(answer);
    }
    return status == KCOBRA_EXIT_OK && !intact ? KCOBRA_EXIT_FAILURE : status;
}

/* `verdicts --verify`: from the stream itself, not from an arbiter's word. */
static int verify_verdicts(const kcobra_invocation *invocation,
                           const kci_arbiter_settings *settings)
{
    natsConnection *connection = NULL;
    int status = kcobra_nats_connect(&connection, &invocation->common);
    if (status != KCOBRA_EXIT_OK) return status;
    const char *stream = settings->verdict_stream != NULL ? settings->verdict_stream
                                                          : KCI_ARBITER_VERDICT_STREAM_DEFAULT;
    kci_verdict_chain chain = {0};
    json_t *list = json_array();
    char error[512];
    kc_err err = kci_verdict_js_read_all(connection, stream, &chain, list, error, sizeof error);
    kcobra_nats_finish(connection);
    if (err != KC_OK) {
        json_decref(list);
        kcobra_error("%s", error);
        return err == KC_ERR_NOT_FOUND ? KCOBRA_EXIT_SERVICE_ERROR : KCOBRA_EXIT_FAILURE;
    }
    json_t *answer =
        json_pack("{s:s, s:o, s:I, s:I, s:I, s:b}", "stream", stream, "verdicts", list, "checked",
                  (json_int_t)chain.checked, "broken", (json_int_t)chain.broken, "first_broken_seq",
                  (json_int_t)chain.first_broken_seq, "intact", chain.broken == 0);
    if (invocation->common.json) {
        status = kcobra_json_print(answer);
    } else {
        status = print_verdicts(answer);
        if (chain.broken == 0)
            printf("stream %s: %llu verdict(s), hash chain intact\n", stream,
                   (unsigned long long)chain.checked);
        else
            printf("stream %s: %llu verdict(s), hash chain BROKEN at sequence %llu (%llu "
                   "break(s))\n",
                   stream, (unsigned long long)chain.checked,
                   (unsigned long long)chain.first_broken_seq, (unsigned long long)chain.broken);
        json_decref(answer);
    }
    if (status == KCOBRA_EXIT_OK && chain.broken > 0) status = KCOBRA_EXIT_FAILURE;
    return status;
}

static int dispatch(const kcobra_command *command, int argc, char **argv,
                    kci_arbiter_settings *settings)
{
    arbiter_flags values = {0};
    const kcobra_flag extra[] = {
        {"format", "F", KCOBRA_FLAG_STRING, &values.format, "tree: text (default), json or dot"},
        {"verify", NULL, KCOBRA_FLAG_BOOL, &values.verify,
         "verdicts: check a verdicts file (--data-dir, --id) or the verdict stream "
         "(--verdict-stream)"},
        {"file", "PATH", KCOBRA_FLAG_STRING, &values.reports.file,
         "reports: the report file (default <data-dir>/arbiter-<id>.reports.jsonl)"},
        {"window", "D", KCOBRA_FLAG_DURATION, &values.reports.window_ms,
         "reports: the width of a time window (default 1h)"},
        {"since", "D", KCOBRA_FLAG_DURATION, &values.reports.since_ms,
         "reports: only the reports of the last D"},
        {"svg", "FILE", KCOBRA_FLAG_STRING, &values.reports.svg,
         "reports: also draw them as SVG into FILE (- for stdout)"},
        {"burst-factor", "X", KCOBRA_FLAG_STRING, &values.reports.burst_factor,
         "reports: a burst is X times a node's baseline + 1 (default 3)"},
        {"burst-min", "N", KCOBRA_FLAG_COUNT, &values.reports.burst_min,
         "reports: and at least N reports in the window (default 5)"},
    };
    size_t key_count = 0;
    const kci_config_key *keys = kci_arbiter_settings_keys(&key_count);
    kcobra_invocation invocation;
    int status = kcobra_settings_parse(command, argc, argv, keys, key_count, settings, extra,
                                       KCOBRA_ARRAY_COUNT(extra), &invocation);
    if (status != KCOBRA_EXIT_OK || invocation.help) return status;
    const char *what = invocation.positional[0];
    if (strcmp(what, "serve") == 0) {
        if (invocation.positional_count != 1)
            return kcobra_usage_error(command, "serve takes no argument");
        return serve(&invocation, command, settings);
    }
    if (values.verify && (strcmp(what, "verdicts") != 0 || invocation.positional_count != 1))
        return kcobra_usage_error(command, "--verify goes with verdicts alone");
    /* --data-dir names a verdicts file; without it, the stream (as before) */
    bool stream =
        settings->data_dir == NULL ||
        (settings->verdict_storage != NULL && strcmp(settings->verdict_storage, "jetstream") == 0);
    if (values.verify && !stream) return verify_file(command, &invocation, settings);
    if (values.verify) return verify_verdicts(&invocation, settings);
    if (strcmp(what, "reports") == 0)
        return kcobra_reports_run(command, &invocation, settings, &values.reports);
    if (strcmp(what, "status") == 0 || strcmp(what, "verdicts") == 0 || strcmp(what, "tree") == 0 ||
        strcmp(what, "reinstate") == 0 || strcmp(what, "permissions") == 0)
        return query(command, &invocation, &values);
    return kcobra_usage_error(
        command,
        "unknown subcommand '%s': serve, status, verdicts, reinstate, tree, permissions or reports",
        what);
}

static int run_arbiter(const kcobra_command *command, int argc, char **argv)
{
    kci_arbiter_settings settings;
    kci_arbiter_settings_init(&settings);
    int status = dispatch(command, argc, argv, &settings);
    kci_arbiter_settings_free(&settings);
    return status;
}

const kcobra_command kcobra_command_arbiter = {
    .name = "arbiter",
    .synopsis =
        "arbiter serve|status|verdicts|reinstate <node>|tree [--format F]|permissions|reports",
    .summary = "the arbiters: QoS, reports, ranking, fusion, quarantine",
    .description = ARBITER_DESCRIPTION,
    .run = run_arbiter,
    .positional_min = 1,
    .positional_max = 2,
};
