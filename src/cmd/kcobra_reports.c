/* kcobra_reports.c - `kcobra arbiter reports`: the analytics of the problem
 * reports an arbiter recorded (src/arbiter/report_stats.h; docs/arbiter.md,
 * "Report analytics"): counts by node, reason and reporter per window,
 * bursts, and the who-reports-whom graph's rings and densest core.
 *
 * It reads the arbiter's report file (<data_dir>/arbiter-<id>.reports.jsonl,
 * or --file) rather than asking a running arbiter: the file is the durable
 * record, it can be far larger than a NATS message, and it can be read
 * after the arbiter stopped. */
#include "kcobra_reports.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "arbiter/report_log.h"
#include "arbiter/report_stats.h"
#include "common/clock.h"

enum {
    PATH_BYTES_MAX = 4096,
    ROWS_PRINTED_MAX = 20, /* per table in the text output */
};

static bool params_from_flags(const kcobra_reports_flags *flags, kci_report_stats_params *params,
                              const char **problem)
{
    kci_report_stats_params_default(params);
    if (flags->window_ms > 0) params->window_ms = flags->window_ms;
    if (flags->since_ms > 0) params->since_ms = kci_wall_ms() - flags->since_ms;
    if (params->since_ms < 0) params->since_ms = 0;
    if (flags->burst_min > 0) params->burst_count_min = flags->burst_min;
    if (flags->burst_factor != NULL) {
        char *end = NULL;
        errno = 0;
        params->burst_factor = strtod(flags->burst_factor, &end);
        if (errno != 0 || end == flags->burst_factor || *end != '\0' ||
            !(params->burst_factor > 0 && params->burst_factor < 1e9)) {
            *problem = "--burst-factor takes a number above 0";
            return false;
        }
    }
    return true;
}

static void print_counts(json_t *counts, const char *title)
{
    printf("%s:", title);
    const char *key;
    json_t *value;
    int shown = 0;
    json_object_foreach(counts, key, value)
    {
        if (shown++ == ROWS_PRINTED_MAX) {
            printf(" ...");
            break;
        }
        printf(" %s=%lld", key, (long long)json_integer_value(value));
    }
    printf("%s\n", shown == 0 ? " -" : "");
}

static void print_names(json_t *names)
{
    size_t index;
    json_t *name;
    json_array_foreach(names, index, name)
    {
        printf("%s%s", index ? ", " : "", json_string_value(name));
    }
}

static int print_text(json_t *stats)
{
    json_t *totals = json_object_get(stats, "totals");
    printf("%lld report(s) (%lld line(s) skipped), windows of %lld s\n",
           (long long)json_integer_value(json_object_get(stats, "reports")),
           (long long)json_integer_value(json_object_get(stats, "skipped")),
           (long long)json_integer_value(json_object_get(stats, "window_ms")) / 1000);
    print_counts(json_object_get(totals, "by_node"), "by node");
    print_counts(json_object_get(totals, "by_reason"), "by reason");
    print_counts(json_object_get(totals, "by_reporter"), "by reporter");
    size_t index;
    json_t *item;
    json_array_foreach(json_object_get(stats, "bursts"), index, item)
    {
        printf("burst: %s, %lld report(s) in the window from %lld ms (baseline %.2f per window)\n",
               json_string_value(json_object_get(item, "node")),
               (long long)json_integer_value(json_object_get(item, "count")),
               (long long)json_integer_value(json_object_get(item, "start_ms")),
               json_number_value(json_object_get(item, "baseline")));
    }
    json_t *graph = json_object_get(stats, "graph");
    json_array_foreach(json_object_get(graph, "rings"), index, item)
    {
        printf("ring of %zu (%lld report(s) inside): ",
               json_array_size(json_object_get(item, "members")),
               (long long)json_integer_value(json_object_get(item, "reports")));
        print_names(json_object_get(item, "members"));
        printf("\n");
    }
    if (json_array_size(json_object_get(graph, "core")) > 0) {
        printf("densest core (k = %lld): ",
               (long long)json_integer_value(json_object_get(graph, "k_max")));
        print_names(json_object_get(graph, "core"));
        printf("\n");
    }
    return fflush(stdout) == 0 ? KCOBRA_EXIT_OK : KCOBRA_EXIT_FAILURE;
}

static int write_svg(const char *path, json_t *stats)
{
    bool to_stdout = strcmp(path, "-") == 0;
    FILE *out = to_stdout ? stdout : fopen(path, "w");
    if (out == NULL) {
        kcobra_error("cannot write %s: %s", path, strerror(errno));
        return KCOBRA_EXIT_FAILURE;
    }
    bool ok = kcobra_reports_svg_write(out, stats);
    ok &= to_stdout ? fflush(out) == 0 : fclose(out) == 0;
    if (!ok) kcobra_error("cannot write %s", path);
    return ok ? KCOBRA_EXIT_OK : KCOBRA_EXIT_FAILURE;
}

static bool file_path(char *path, const kci_arbiter_settings *settings,
                      const kcobra_reports_flags *flags)
{
    if (flags->file != NULL) {
        snprintf(path, PATH_BYTES_MAX, "%s", flags->file);
        return strlen(flags->file) < PATH_BYTES_MAX;
    }
    if (settings->data_dir == NULL || settings->id == NULL) return false;
    return kci_report_log_path(path, PATH_BYTES_MAX, settings->data_dir, settings->id);
}

int kcobra_reports_run(const kcobra_command *command, const kcobra_invocation *invocation,
                       const kci_arbiter_settings *settings, const kcobra_reports_flags *flags)
{
    if (invocation->positional_count != 1)
        return kcobra_usage_error(command, "reports takes no argument");
    char path[PATH_BYTES_MAX];
    if (!file_path(path, settings, flags))
        return kcobra_usage_error(command, "reports needs --file, or --data-dir and --id");
    kci_report_stats_params params;
    const char *problem = NULL;
    if (!params_from_flags(flags, &params, &problem))
        return kcobra_usage_error(command, "%s", problem);
    kci_report_set set;
    kci_report_set_init(&set);
    kci_econ_error error = {{0}};
    json_t *stats = NULL;
    kc_err err = kci_report_set_load(&set, path, &error);
    if (err == KC_OK) err = kci_report_stats_run(&set, &params, &stats, &error);
    kci_report_set_free(&set);
    if (err != KC_OK) {
        kcobra_error("%s", error.text);
        return KCOBRA_EXIT_FAILURE;
    }
    int status = flags->svg != NULL ? write_svg(flags->svg, stats) : KCOBRA_EXIT_OK;
    bool svg_on_stdout = flags->svg != NULL && strcmp(flags->svg, "-") == 0;
    if (status == KCOBRA_EXIT_OK && invocation->common.json && !svg_on_stdout)
        return kcobra_json_print(stats); /* it takes the reference */
    if (status == KCOBRA_EXIT_OK && !svg_on_stdout) status = print_text(stats);
    json_decref(stats);
    return status;
}
