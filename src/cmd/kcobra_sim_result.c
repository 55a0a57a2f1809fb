/* kcobra_sim_result.c - what the simulator measured: per behaviour, the
 * corrupt nodes quarantined (recall), the quarantined nodes that were
 * corrupt (precision), the time and requests until each final verdict,
 * false quarantines of honest nodes, the false-reporting clients found,
 * the provoking clients found (quarantined for their complaints about
 * correct refusals) and seen (refusals the arbiters counted), the money
 * lost to each corrupt node before its quarantine, and whether the
 * arbiters said n > 3f no longer holds; as a table or one JSON object (and
 * the table in markdown to --table PATH), then the --min/--max/--expect
 * checks. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kcobra_sim.h"

/* ---- results ---------------------------------------------------------------------------- */

typedef struct sim_row {
    const char *behaviour;
    uint32_t corrupt;
    uint32_t detected;
    int64_t ttd_ms_sum;
    int64_t ttd_ms_max;
    int64_t ttd_requests_sum;
    int64_t ttd_requests_max;
    double money_lost;
} sim_row;

typedef struct sim_result {
    sim_row total;
    sim_row rows[BEHAVIOUR_COUNT];
    uint32_t honest;
    uint32_t false_quarantines;
    uint32_t reporters_quarantined; /* false-reporting clients found */
    uint32_t false_reporters;
    uint32_t honest_clients_quarantined;
    uint32_t provokers;
    uint32_t provokers_quarantined;
    uint32_t provokers_visible; /* SIM_VISIBLE_REFUSALS_MIN refusals or more */
    uint32_t others_visible;
    double precision;
    double recall;
    double false_rate;
} sim_result;

static void row_add(sim_row *row, const sim_node *node)
{
    row->corrupt++;
    row->money_lost += node->money_lost;
    if (!node->quarantined) return;
    row->detected++;
    row->ttd_ms_sum += node->detected_ms;
    row->ttd_requests_sum += node->detected_requests;
    if (node->detected_ms > row->ttd_ms_max) row->ttd_ms_max = node->detected_ms;
    if (node->detected_requests > row->ttd_requests_max)
        row->ttd_requests_max = node->detected_requests;
}

static void compute(const sim *s, sim_result *r)
{
    memset(r, 0, sizeof *r);
    r->total.behaviour = "all";
    for (int b = 0; b < BEHAVIOUR_COUNT; b++)
        r->rows[b].behaviour = BEHAVIOURS[b].name;
    for (uint32_t i = 0; i < s->node_count; i++) {
        const sim_node *node = &s->nodes[i];
        if (node->behaviour == 0) {
            r->honest++;
            r->false_quarantines += node->quarantined;
            continue;
        }
        row_add(&r->total, node);
        for (int b = 0; b < BEHAVIOUR_COUNT; b++)
            if (node->behaviour & BEHAVIOURS[b].bit) row_add(&r->rows[b], node);
    }
    for (uint32_t i = 0; i < s->client_count; i++) {
        const sim_client *client = &s->clients[i];
        bool visible = client->refusals_seen >= SIM_VISIBLE_REFUSALS_MIN;
        r->false_reporters += client->false_reporter;
        r->provokers += client->provoker;
        if (client->false_reporter)
            r->reporters_quarantined += client->quarantined;
        else if (client->provoker)
            r->provokers_quarantined += client->quarantined;
        else
            r->honest_clients_quarantined += client->quarantined;
        if (client->provoker)
            r->provokers_visible += visible;
        else
            r->others_visible += visible;
    }
    uint32_t quarantined = r->total.detected + r->false_quarantines;
    r->precision = quarantined > 0 ? (double)r->total.detected / quarantined : 1.0;
    r->recall = r->total.corrupt > 0 ? (double)r->total.detected / r->total.corrupt : 1.0;
    r->false_rate = r->honest > 0 ? (double)r->false_quarantines / r->honest : 0.0;
}

static json_t *row_json(const sim_row *row)
{
    return json_pack(
        "{s:s, s:i, s:i, s:f, s:I, s:I, s:I, s:I, s:f}", "behaviour", row->behaviour, "corrupt",
        (json_int_t)row->corrupt, "detected", (json_int_t)row->detected, "recall",
        row->corrupt ? (double)row->detected / row->corrupt : 1.0, "ttd_ms_mean",
        (json_int_t)(row->detected ? row->ttd_ms_sum / row->detected : 0), "ttd_ms_max",
        (json_int_t)row->ttd_ms_max, "ttd_requests_mean",
        (json_int_t)(row->detected ? row->ttd_requests_sum / row->detected : 0), "ttd_requests_max",
        (json_int_t)row->ttd_requests_max, "money_lost", row->money_lost);
}

static int print_json(const sim *s, const sim_result *r)
{
    json_t *rows = json_array(), *quarantined = json_array(), *missed = json_array();
    for (int b = 0; b < BEHAVIOUR_COUNT; b++)
        if (r->rows[b].corrupt > 0) json_array_append_new(rows, row_json(&r->rows[b]));
    for (uint32_t i = 0; i < s->node_count; i++) {
        if (s->nodes[i].quarantined)
            json_array_append_new(quarantined, json_string(s->nodes[i].name));
        if (s->nodes[i].behaviour && !s->nodes[i].quarantined)
            json_array_append_new(missed, json_string(s->nodes[i].name));
    }
    json_t *object = json_pack(
        "{s:i, s:i, s:i, s:I, s:I, s:I, s:i, s:f, s:f, s:f, s:i, s:o, s:b, s:s, s:i, s:i, s:i, "
        "s:o, s:o, s:o}",
        "nodes", (json_int_t)s->node_count, "corrupt", (json_int_t)s->corrupt_count, "clients",
        (json_int_t)s->client_count, "requests", (json_int_t)s->options.requests, "requests_done",
        (json_int_t)atomic_load(&s->requests_done), "seed", (json_int_t)s->options.seed, "arbiters",
        (json_int_t)s->options.arbiters, "precision", r->precision, "recall", r->recall,
        "false_quarantine_rate", r->false_rate, "false_quarantines",
        (json_int_t)r->false_quarantines, "total", row_json(&r->total), "guarantee_holds",
        !s->guarantee_broken, "guarantee", s->guarantee_text, "reporters_quarantined",
        (json_int_t)r->reporters_quarantined, "false_reporters", (json_int_t)r->false_reporters,
        "honest_clients_quarantined", (json_int_t)r->honest_clients_quarantined, "by_behaviour",
        rows, "quarantined", quarantined, "missed", missed);
    json_object_set_new(object, "provokers",
                        json_pack("{s:i, s:i, s:i, s:i}", "count", (json_int_t)r->provokers,
                                  "quarantined", (json_int_t)r->provokers_quarantined, "visible",
                                  (json_int_t)r->provokers_visible, "others_visible",
                                  (json_int_t)r->others_visible));
    json_object_set_new(object, "corrupt_arbiters",
                        json_pack("{s:i, s:I}", "count", (json_int_t)s->corrupt_arbiter_count,
                                  "votes_sent", (json_int_t)atomic_load(&s->corrupt_votes_sent)));
    return kcobra_json_print(object);
}

static void print_row(FILE *out, bool markdown, const char *label, const sim_row *row,
                      double precision, uint32_t false_quarantines)
{
    const char *format =
        markdown ? "| %s | %s | %u | %u | %.3f | %.3f | %lld | %lld | %lld | %u | %.2f |\n"
                 : "%.0s%-13s %7u %8u %9.3f %7.3f %9lld %9lld %9lld %8u %10.2f\n";
    fprintf(out, format, label, row->behaviour, row->corrupt, row->detected, precision,
            row->corrupt ? (double)row->detected / row->corrupt : 1.0,
            (long long)(row->detected ? row->ttd_ms_sum / row->detected : 0),
            (long long)row->ttd_ms_max,
            (long long)(row->detected ? row->ttd_requests_sum / row->detected : 0),
            false_quarantines, row->money_lost);
}

static void print_header(FILE *out, bool markdown)
{
    if (markdown) {
        fprintf(out, "| run | behaviour | corrupt | detected | precision | recall | ttd_ms | "
                     "ttd_max | ttd_reqs | false_q | money_lost |\n"
                     "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |\n");
        return;
    }
    fprintf(out, "%-13s %7s %8s %9s %7s %9s %9s %9s %8s %10s\n", "behaviour", "corrupt", "detected",
            "precision", "recall", "ttd_ms", "ttd_max", "ttd_reqs", "false_q", "money_lost");
}

/* The table: one row per behaviour present and the total; then the
 * clients (false reporters, provokers) and the arbiters. */
static void print_table(FILE *out, bool markdown, const sim *s, const sim_result *r)
{
    const char *label = s->options.label != NULL ? s->options.label : "sim";
    fprintf(out,
            "%skcobra sim: %u nodes (%u corrupt), %u clients, %lld requests, seed %lld, %lld "
            "arbiters (%u corrupt)\n%s",
            markdown ? "\n" : "", s->node_count, s->corrupt_count, s->client_count,
            (long long)atomic_load(&s->requests_done), (long long)s->options.seed,
            (long long)s->options.arbiters, s->corrupt_arbiter_count, markdown ? "\n" : "");
    print_header(out, markdown);
    for (int b = 0; b < BEHAVIOUR_COUNT; b++)
        if (r->rows[b].corrupt > 0)
            print_row(out, markdown, label, &r->rows[b], r->precision, r->false_quarantines);
    print_row(out, markdown, label, &r->total, r->precision, r->false_quarantines);
    fprintf(out,
            "%sfalse-quarantine rate %.3f (%u of %u honest nodes); clients: %u of %u false "
            "reporters quarantined, %u of %u provokers quarantined (%u seen provoking %d+ "
            "refusals, %u other client(s) seen so), %u honest client(s) quarantined\n",
            markdown ? "\n" : "", r->false_rate, r->false_quarantines, r->honest,
            r->reporters_quarantined, r->false_reporters, r->provokers_quarantined, r->provokers,
            r->provokers_visible, SIM_VISIBLE_REFUSALS_MIN, r->others_visible,
            r->honest_clients_quarantined);
    if (s->corrupt_arbiter_count > 0)
        fprintf(out, "corrupt arbiters: %u, %lld wrong votes signed (own id and forged)\n",
                s->corrupt_arbiter_count, (long long)atomic_load(&s->corrupt_votes_sent));
    if (s->guarantee_broken)
        fprintf(out, "the arbiters report: n > 3f DOES NOT HOLD: %s\n", s->guarantee_text);
    else
        fprintf(out, "the arbiters report: n > 3f holds\n");
    if (s->options.economy) kcobra_sim_economy_print(out, s);
}

/* --table PATH: the same table in markdown, for the docs and the notes. */
static void write_table(const sim *s, const sim_result *r)
{
    if (s->options.table_path == NULL) return;
    FILE *file = fopen(s->options.table_path, "w");
    if (file == NULL) {
        kcobra_error("sim: cannot write %s: %s", s->options.table_path, strerror(errno));
        return;
    }
    print_table(file, true, s, r);
    if (fclose(file) != 0)
        kcobra_error("sim: cannot write %s: %s", s->options.table_path, strerror(errno));
}

bool kcobra_sim_fraction(const char *text, double *out, double fallback)
{
    if (text == NULL) {
        *out = fallback;
        return true;
    }
    char *end = NULL;
    *out = strtod(text, &end);
    return end != text && *end == '\0' && *out >= 0 && *out <= 1;
}

/* The --min/--max checks CI uses; false (and why, on stderr) if one fails. */
static bool check(const sim *s, const sim_result *r)
{
    double min_precision, min_recall, max_false_rate;
    kcobra_sim_fraction(s->options.min_precision_text, &min_precision, 0);
    kcobra_sim_fraction(s->options.min_recall_text, &min_recall, 0);
    kcobra_sim_fraction(s->options.max_false_rate_text, &max_false_rate, 1);
    bool ok = true;
    if (r->precision < min_precision)
        kcobra_error("sim: precision %.3f is below --min-precision %.3f", r->precision,
                     min_precision),
            ok = false;
    if (r->recall < min_recall)
        kcobra_error("sim: recall %.3f is below --min-recall %.3f", r->recall, min_recall),
            ok = false;
    if (r->false_rate > max_false_rate)
        kcobra_error("sim: false-quarantine rate %.3f is above --max-false-rate %.3f",
                     r->false_rate, max_false_rate),
            ok = false;
    double min_client_recall;
    kcobra_sim_fraction(s->options.min_client_recall_text, &min_client_recall, 0);
    uint32_t bad_clients = r->false_reporters + r->provokers;
    double client_recall =
        bad_clients > 0
            ? (double)(r->reporters_quarantined + r->provokers_quarantined) / bad_clients
            : 1.0;
    if (s->options.min_client_recall_text != NULL &&
        (client_recall < min_client_recall || r->honest_clients_quarantined > 0))
        kcobra_error("sim: %.3f of the false-reporting and provoking clients quarantined (at least "
                     "%.3f wanted), %u honest client(s)",
                     client_recall, min_client_recall, r->honest_clients_quarantined),
            ok = false;
    if (s->options.expect_broken && !s->guarantee_broken)
        kcobra_error("sim: the arbiters did not report that n > 3f no longer holds"), ok = false;
    return ok;
}

int kcobra_sim_report(const sim *s)
{
    sim_result result;
    compute(s, &result);
    int status = KCOBRA_EXIT_OK;
    if (s->common.json)
        status = print_json(s, &result);
    else
        print_table(stdout, false, s, &result), fflush(stdout);
    write_table(s, &result);
    bool ok = check(s, &result);
    if (s->options.economy) ok &= kcobra_sim_economy_check(s);
    return ok ? status : KCOBRA_EXIT_FAILURE;
}
