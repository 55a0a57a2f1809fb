/* kcobra_econ_market.c - the market subcommands of `kcobra econ`:
 * value (bill of materials), equilibrium (Fisher market, Eisenberg-Gale)
 * and dynamics (tatonnement), with their table and JSON output and the SVG
 * plot of the dynamics. The algorithms are in src/econ/. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "econ/dynamics.h"
#include "econ/equilibrium.h"
#include "econ/value.h"
#include "kcobra_econ.h"

enum {
    DYNAMICS_TABLE_ROWS = 40,
    PLOT_WIDTH = 720,
    PLOT_HEIGHT = 420,
    PLOT_MARGIN = 60,
};

/* =================================================================== value */

const char kcobra_econ_value_description[] =
    "value(i) = cost(i) + sum of quantity x value(ingredient) over the bill of\n"
    "materials (a DAG, JSON: docs/econ.md), memoised: linear in the DAG. A cycle\n"
    "is an error naming it; a DAG deeper than --depth (default 10000) is refused.\n"
    "\nExample:\n  kcobra econ value --bom car.json --item car\n";

static int value_print(const kcobra_invocation *invocation, const kci_econ_bom *bom, int64_t item,
                       const kci_econ_value *value)
{
    int64_t first = bom->ingredient_offsets[item], last = bom->ingredient_offsets[item + 1];
    if (invocation->common.json) {
        json_t *ingredients = json_array();
        for (int64_t link = first; link < last; link++) {
            const kci_econ_ingredient *ingredient = &bom->ingredients[link];
            double unit = value->values[ingredient->item];
            json_array_append_new(ingredients, json_pack("{s:s,s:f,s:f,s:f}", "name",
                                                         bom->names[ingredient->item], "quantity",
                                                         ingredient->quantity, "value", unit,
                                                         "subtotal", ingredient->quantity * unit));
        }
        return kcobra_json_print(json_pack(
            "{s:s,s:f,s:f,s:o,s:I,s:I}", "item", bom->names[item], "value", value->value, "cost",
            bom->costs[item], "ingredients", ingredients, "depth", (json_int_t)value->height,
            "items_evaluated", (json_int_t)value->items_evaluated));
    }
    printf("value(%s) = %.15g  (%lld items below it, %lld levels deep)\n", bom->names[item],
           value->value, (long long)value->items_evaluated, (long long)value->height);
    printf("  %-24s %12s %16s %16s\n", "INGREDIENT", "QUANTITY", "VALUE", "SUBTOTAL");
    for (int64_t link = first; link < last; link++) {
        const kci_econ_ingredient *ingredient = &bom->ingredients[link];
        double unit = value->values[ingredient->item];
        printf("  %-24s %12.15g %16.15g %16.15g\n", bom->names[ingredient->item],
               ingredient->quantity, unit, ingredient->quantity * unit);
    }
    printf("  %-24s %12s %16s %16.15g\n", "(integration cost)", "", "", bom->costs[item]);
    return kcobra_econ_print_flush();
}

int kcobra_econ_run_value(const kcobra_command *command, int argc, char **argv)
{
    const char *bom_path = NULL, *item_name = NULL;
    int64_t depth = KCI_ECON_BOM_DEPTH_DEFAULT;
    const kcobra_flag flags[] = {
        {"bom", "FILE", KCOBRA_FLAG_STRING, &bom_path, "the bill of materials (JSON)"},
        {"item", "X", KCOBRA_FLAG_STRING, &item_name, "the item to value"},
        {"depth", "T", KCOBRA_FLAG_COUNT, &depth, "refuse a DAG deeper than T levels (10000)"},
    };
    kcobra_invocation invocation;
    int status = kcobra_parse(command, flags, KCOBRA_ARRAY_COUNT(flags), argc, argv, &invocation);
    if (status != KCOBRA_EXIT_OK || invocation.help) return status;
    if (bom_path == NULL || item_name == NULL)
        return kcobra_usage_error(command, "--bom and --item are required");
    kci_econ_error error = {{0}};
    kci_econ_bom bom;
    kc_err err = kci_econ_bom_load_file(bom_path, &bom, &error);
    if (err != KC_OK) return kcobra_econ_fail(err, &error);
    int64_t item = kci_econ_bom_find(&bom, item_name);
    if (item < 0) {
        kci_econ_error_set(&error, "%s has no item '%s'", bom_path, item_name);
        kci_econ_bom_free(&bom);
        return kcobra_econ_fail(KC_ERR_NOT_FOUND, &error);
    }
    kci_econ_value value;
    err = kci_econ_value_compute(&bom, item, depth, &value, &error);
    if (err != KC_OK) {
        status = kcobra_econ_fail(err, &error);
    } else {
        status = value_print(&invocation, &bom, item, &value);
        kci_econ_value_free(&value);
    }
    kci_econ_bom_free(&bom);
    return status;
}

/* ============================================================= equilibrium */

const char kcobra_econ_equilibrium_description[] =
    "The competitive equilibrium of a Fisher market with linear utilities (file\n"
    "format: docs/econ.md): the Eisenberg-Gale optimum, prices and allocation,\n"
    "and the KKT residuals (relative): supply (goods with a positive price sold\n"
    "out), budget (every budget spent), bang (money spent on goods that are not\n"
    "of maximum utility per unit of money) and nonnegative. Exit 1 when the\n"
    "largest residual is above --tolerance.\n"
    "\nExample:\n  kcobra econ equilibrium --market market.json\n";

static void iteration_report(void *context, int iteration, double gap, double residual)
{
    (void)context;
    if (!isatty(STDERR_FILENO)) return;
    fprintf(stderr, "\rinterior point: iteration %d, gap %.2e, residual %.2e   ", iteration, gap,
            residual);
}

static json_t *kkt_json(const kci_econ_kkt *kkt)
{
    return json_pack("{s:f,s:f,s:f,s:f,s:f}", "supply", kkt->supply, "budget", kkt->budget, "bang",
                     kkt->bang, "nonnegative", kkt->nonnegative, "max", kkt->max);
}

static int equilibrium_json(const kci_econ_market *market, const kci_econ_equilibrium *result)
{
    int64_t n = market->buyer_count, m = market->good_count;
    json_t *goods = json_array(), *prices = json_array(), *allocation = json_array();
    for (int64_t j = 0; j < m; j++) {
        json_array_append_new(goods, json_string(market->good_names[j]));
        json_array_append_new(prices, json_real(result->prices[j]));
    }
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j < m; j++)
            if (result->allocation[i * m + j] > 0)
                json_array_append_new(
                    allocation,
                    json_pack("{s:s,s:s,s:f,s:f}", "buyer", market->buyer_names[i], "good",
                              market->good_names[j], "amount", result->allocation[i * m + j],
                              "spent", result->allocation[i * m + j] * result->prices[j]));
    json_t *buyers = json_array();
    for (int64_t i = 0; i < n; i++)
        json_array_append_new(buyers,
                              json_pack("{s:s,s:f,s:f,s:f}", "name", market->buyer_names[i],
                                        "budget", market->budgets[i], "utility", result->utility[i],
                                        "bang_per_buck", result->bang[i]));
    return kcobra_json_print(
        json_pack("{s:o,s:o,s:o,s:o,s:f,s:o,s:i,s:b,s:I}", "goods", goods, "prices", prices,
                  "buyers", buyers, "allocation", allocation, "objective", result->objective, "kkt",
                  kkt_json(&result->kkt), "iterations", result->iterations, "polished",
                  result->polished, "support_edges", (json_int_t)result->support_edges));
}

static int equilibrium_table(const kci_econ_market *market, const kci_econ_equilibrium *result)
{
    int64_t n = market->buyer_count, m = market->good_count;
    printf("Fisher market: %lld buyers x %lld goods; Eisenberg-Gale objective %.15g\n",
           (long long)n, (long long)m, result->objective);
    printf("  %-24s %14s %20s\n", "GOOD", "SUPPLY", "PRICE");
    for (int64_t j = 0; j < m && j < KCOBRA_ECON_TABLE_ROWS_MAX; j++)
        printf("  %-24s %14.10g %20.15g\n", market->good_names[j], market->supplies[j],
               result->prices[j]);
    if (m > KCOBRA_ECON_TABLE_ROWS_MAX) printf("  ... %lld goods in all (--json)\n", (long long)m);
    printf("  %-24s %-24s %16s %16s\n", "BUYER", "GOOD", "AMOUNT", "SPENT");
    int64_t shown = 0;
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j < m; j++) {
            double amount = result->allocation[i * m + j];
            if (amount <= 0 || shown++ >= KCOBRA_ECON_TABLE_ROWS_MAX) continue;
            printf("  %-24s %-24s %16.10g %16.10g\n", market->buyer_names[i], market->good_names[j],
                   amount, amount * result->prices[j]);
        }
    if (shown > KCOBRA_ECON_TABLE_ROWS_MAX)
        printf("  ... %lld allocations in all (--json)\n", (long long)shown);
    const kci_econ_kkt *kkt = &result->kkt;
    printf("KKT residuals (relative): supply %.2e, budget %.2e, bang-per-buck %.2e, "
           "nonnegativity %.2e; max %.2e\n",
           kkt->supply, kkt->budget, kkt->bang, kkt->nonnegative, kkt->max);
    printf("%d interior-point iterations; %s (%lld edges in the support)\n", result->iterations,
           result->polished ? "polished: exact solve on the support" : "not polished",
           (long long)result->support_edges);
    return kcobra_econ_print_flush();
}

int kcobra_econ_run_equilibrium(const kcobra_command *command, int argc, char **argv)
{
    const char *market_path = NULL, *tolerance_text = NULL;
    bool stats = false;
    const kcobra_flag flags[] = {
        {"market", "FILE", KCOBRA_FLAG_STRING, &market_path, "the market (JSON, docs/econ.md)"},
        {"tolerance", "R", KCOBRA_FLAG_STRING, &tolerance_text,
         "the KKT residual to reach (default 1e-9)"},
        {"stats", NULL, KCOBRA_FLAG_BOOL, &stats, "print load and compute time and peak memory"},
    };
    kcobra_invocation invocation;
    int status = kcobra_parse(command, flags, KCOBRA_ARRAY_COUNT(flags), argc, argv, &invocation);
    if (status != KCOBRA_EXIT_OK || invocation.help) return status;
    if (market_path == NULL) return kcobra_usage_error(command, "--market is required");
    double tolerance = 1e-9;
    if (tolerance_text != NULL) {
        status = kcobra_econ_number(command, "tolerance", tolerance_text, &tolerance);
        if (status != KCOBRA_EXIT_OK) return status;
        if (tolerance <= 0) return kcobra_usage_error(command, "--tolerance must be > 0");
    }
    kcobra_econ_input timing = {.stats = stats};
    kcobra_econ_stats_load_start(&timing);
    kci_econ_error error = {{0}};
    kci_econ_market market;
    kc_err err = kci_econ_market_load_file(market_path, &market, &error);
    if (err != KC_OK) return kcobra_econ_fail(err, &error);
    kcobra_econ_stats_compute_start(&timing);
    kci_econ_equilibrium result;
    err = kci_econ_equilibrium_solve(&market, tolerance, iteration_report, NULL, &result, &error);
    if (isatty(STDERR_FILENO)) fputs("\r\033[K", stderr);
    if (err != KC_OK) {
        kci_econ_market_free(&market);
        return kcobra_econ_fail(err, &error);
    }
    kcobra_econ_stats_print(&timing);
    status = invocation.common.json ? equilibrium_json(&market, &result)
                                    : equilibrium_table(&market, &result);
    if (status == KCOBRA_EXIT_OK && result.kkt.max > tolerance) {
        kcobra_error("the KKT residual %.2e is above the tolerance %.2e: the prices are "
                     "approximate",
                     result.kkt.max, tolerance);
        status = KCOBRA_EXIT_FAILURE;
    }
    kci_econ_equilibrium_free(&result);
    kci_econ_market_free(&market);
    return status;
}

/* ================================================================ dynamics */

const char kcobra_econ_dynamics_description[] =
    "Tatonnement: from the goods' \"price\" fields in the market file (else every\n"
    "price = total budget / total supply), prices move with excess demand,\n"
    "  p_j <- p_j exp(clamp(step / sqrt(t) x (demand_j - s_j) / s_j, -1, 1)),\n"
    "for --steps N steps. Prints the series: the largest relative excess demand\n"
    "and the distance max_j |p_j - p*_j| / p*_j to the equilibrium prices p*\n"
    "(solved first). --plot draws both on a log scale as SVG.\n"
    "\nExample:\n  kcobra econ dynamics --market market.json --steps 200 --plot path.svg\n";

static double plot_y(double value, double log_low, double log_high)
{
    double logarithm = log10(fmax(value, pow(10, log_low)));
    double fraction = (logarithm - log_low) / (log_high - log_low);
    return PLOT_HEIGHT - PLOT_MARGIN - fraction * (PLOT_HEIGHT - 2 * PLOT_MARGIN);
}

static void plot_series(FILE *out, const kci_econ_dynamics_step *steps, int64_t step_count,
                        bool distance, double log_low, double log_high, const char *color)
{
    fprintf(out, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"1.5\" points=\"", color);
    for (int64_t step = 0; step <= step_count; step++) {
        double x = PLOT_MARGIN + (double)step / (double)(step_count > 0 ? step_count : 1) *
                                     (PLOT_WIDTH - 2 * PLOT_MARGIN);
        double value = distance ? steps[step].distance : steps[step].excess;
        fprintf(out, "%.1f,%.1f ", x, plot_y(value, log_low, log_high));
    }
    fputs("\"/>\n", out);
}

static int dynamics_plot(const char *path, const kci_econ_dynamics_step *steps, int64_t step_count)
{
    FILE *out = fopen(path, "w");
    if (out == NULL) {
        kcobra_error("cannot write %s: %s", path, strerror(errno));
        return KCOBRA_EXIT_FAILURE;
    }
    double log_low = 0, log_high = -300;
    for (int64_t step = 0; step <= step_count; step++) {
        double values[2] = {steps[step].distance, steps[step].excess};
        for (int k = 0; k < 2; k++) {
            if (!(values[k] > 0)) continue;
            log_low = fmin(log_low, floor(log10(values[k])));
            log_high = fmax(log_high, ceil(log10(values[k])));
        }
    }
    log_low = fmax(log_low, -16);
    if (log_high <= log_low) log_high = log_low + 1;
    fprintf(out,
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" "
            "font-family=\"Helvetica\" font-size=\"12\">\n<rect width=\"100%%\" height=\"100%%\" "
            "fill=\"white\"/>\n<text x=\"%d\" y=\"24\" font-size=\"15\">tatonnement: distance "
            "to equilibrium (blue), excess demand (red), log scale</text>\n",
            PLOT_WIDTH, PLOT_HEIGHT, PLOT_MARGIN);
    fprintf(out, "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"black\"/>\n", PLOT_MARGIN,
            PLOT_HEIGHT - PLOT_MARGIN, PLOT_WIDTH - PLOT_MARGIN, PLOT_HEIGHT - PLOT_MARGIN);
    fprintf(out, "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"black\"/>\n", PLOT_MARGIN,
            PLOT_MARGIN, PLOT_MARGIN, PLOT_HEIGHT - PLOT_MARGIN);
    for (double decade = log_low; decade <= log_high; decade += 1) {
        double y = plot_y(pow(10, decade), log_low, log_high);
        fprintf(out, "<text x=\"8\" y=\"%.1f\">1e%d</text>\n", y + 4, (int)decade);
        fprintf(out, "<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" stroke=\"#ddd\"/>\n",
                PLOT_MARGIN, y, PLOT_WIDTH - PLOT_MARGIN, y);
    }
    fprintf(out, "<text x=\"%d\" y=\"%d\">step 0</text><text x=\"%d\" y=\"%d\">step %lld</text>\n",
            PLOT_MARGIN, PLOT_HEIGHT - PLOT_MARGIN + 20, PLOT_WIDTH - PLOT_MARGIN - 60,
            PLOT_HEIGHT - PLOT_MARGIN + 20, (long long)step_count);
    plot_series(out, steps, step_count, true, log_low, log_high, "blue");
    plot_series(out, steps, step_count, false, log_low, log_high, "red");
    fputs("</svg>\n", out);
    if (fclose(out) != 0) {
        kcobra_error("cannot write %s: %s", path, strerror(errno));
        return KCOBRA_EXIT_FAILURE;
    }
    return KCOBRA_EXIT_OK;
}

static int dynamics_print(const kcobra_invocation *invocation, const kci_econ_market *market,
                          const double *prices, const double *equilibrium_prices,
                          const kci_econ_dynamics_step *steps, int64_t step_count)
{
    int64_t m = market->good_count;
    if (invocation->common.json) {
        json_t *series = json_array(), *final_prices = json_array(), *targets = json_array();
        for (int64_t step = 0; step <= step_count; step++)
            json_array_append_new(series,
                                  json_pack("{s:I,s:f,s:f}", "step", (json_int_t)step, "excess",
                                            steps[step].excess, "distance", steps[step].distance));
        for (int64_t j = 0; j < m; j++) {
            json_array_append_new(final_prices, json_real(prices[j]));
            json_array_append_new(targets, json_real(equilibrium_prices[j]));
        }
        return kcobra_json_print(json_pack("{s:o,s:o,s:o}", "series", series, "prices",
                                           final_prices, "equilibrium_prices", targets));
    }
    printf("  %8s %20s %20s\n", "STEP", "EXCESS DEMAND", "DISTANCE TO EQ.");
    int64_t every = step_count / DYNAMICS_TABLE_ROWS + 1;
    for (int64_t step = 0; step <= step_count; step++)
        if (step % every == 0 || step == step_count)
            printf("  %8lld %20.6e %20.6e\n", (long long)step, steps[step].excess,
                   steps[step].distance);
    printf("  %-24s %20s %20s\n", "GOOD", "PRICE", "EQUILIBRIUM");
    for (int64_t j = 0; j < m && j < KCOBRA_ECON_TABLE_ROWS_MAX; j++)
        printf("  %-24s %20.12g %20.12g\n", market->good_names[j], prices[j],
               equilibrium_prices[j]);
    return kcobra_econ_print_flush();
}

int kcobra_econ_run_dynamics(const kcobra_command *command, int argc, char **argv)
{
    const char *market_path = NULL, *plot_path = NULL, *step_text = NULL;
    int64_t step_count = 0;
    const kcobra_flag flags[] = {
        {"market", "FILE", KCOBRA_FLAG_STRING, &market_path, "the market (JSON, docs/econ.md)"},
        {"steps", "N", KCOBRA_FLAG_COUNT, &step_count, "how many price adjustments"},
        {"step-size", "X", KCOBRA_FLAG_STRING, &step_text, "the adjustment speed (default 0.5)"},
        {"plot", "FILE.svg", KCOBRA_FLAG_STRING, &plot_path, "draw the series as SVG"},
    };
    kcobra_invocation invocation;
    int status = kcobra_parse(command, flags, KCOBRA_ARRAY_COUNT(flags), argc, argv, &invocation);
    if (status != KCOBRA_EXIT_OK || invocation.help) return status;
    if (market_path == NULL || step_count == 0)
        return kcobra_usage_error(command, "--market and --steps are required");
    if (step_count > 10 * 1000 * 1000)
        return kcobra_usage_error(command, "--steps at most 10000000");
    double step_size = 0.5;
    if (step_text != NULL) {
        status = kcobra_econ_number(command, "step-size", step_text, &step_size);
        if (status != KCOBRA_EXIT_OK) return status;
        if (step_size <= 0) return kcobra_usage_error(command, "--step-size must be > 0");
    }
    kci_econ_error error = {{0}};
    kci_econ_market market;
    kc_err err = kci_econ_market_load_file(market_path, &market, &error);
    if (err != KC_OK) return kcobra_econ_fail(err, &error);
    kci_econ_equilibrium equilibrium;
    err = kci_econ_equilibrium_solve(&market, 1e-9, NULL, NULL, &equilibrium, &error);
    if (err != KC_OK) {
        kci_econ_market_free(&market);
        return kcobra_econ_fail(err, &error);
    }
    int64_t m = market.good_count;
    double *prices = calloc((size_t)m, sizeof(double));
    kci_econ_dynamics_step *steps = calloc((size_t)step_count + 1, sizeof *steps);
    if (prices == NULL || steps == NULL) {
        kcobra_error("out of memory for %lld steps", (long long)step_count);
        status = KCOBRA_EXIT_FAILURE;
    } else {
        double budgets = 0, supplies = 0;
        for (int64_t i = 0; i < market.buyer_count; i++)
            budgets += market.budgets[i];
        for (int64_t j = 0; j < m; j++)
            supplies += market.supplies[j];
        for (int64_t j = 0; j < m; j++)
            prices[j] =
                market.prices_initial != NULL ? market.prices_initial[j] : budgets / supplies;
        if (kci_econ_dynamics_run(&market, step_size, step_count, prices, equilibrium.prices,
                                  steps) != KC_OK) {
            kcobra_error("out of memory");
            status = KCOBRA_EXIT_FAILURE;
        }
        if (status == KCOBRA_EXIT_OK && plot_path != NULL)
            status = dynamics_plot(plot_path, steps, step_count);
        if (status == KCOBRA_EXIT_OK)
            status =
                dynamics_print(&invocation, &market, prices, equilibrium.prices, steps, step_count);
    }
    free(prices);
    free(steps);
    kci_econ_equilibrium_free(&equilibrium);
    kci_econ_market_free(&market);
    return status;
}
