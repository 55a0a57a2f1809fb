/* views.c - the console's nodes, queue and ledger documents (see views.h).
 *
 * The money-flow graph follows docs/econ.md's vocabulary, cheaply enough
 * to run every few seconds: transfers of the window are summed per
 * (payer, payee) pair; a wallet's net storage is its inflow minus its
 * outflow; a wallet is in the rich stratum when its net storage is at
 * least W, the window's mean transfer amount (econ's strata with that W),
 * poor otherwise; a hub is a wallet with at least HUB_DEGREE_MIN distinct
 * counterparties and twice the mean. `kcobra econ` computes the exact
 * measures (k-cores, SCCs) over the whole history. */
#include "views.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum {
    LABEL_CHARS = 10,
    PAIR_KEY_BYTES_MAX = 512,
};

json_t *kci_console_unavailable(const char *error, int64_t now_ms)
{
    return json_pack("{s:b, s:s, s:I}", "available", false, "error", error ? error : "unknown",
                     "updated_ms", (json_int_t)now_ms);
}

/* ---- nodes ---------------------------------------------------------------------- */

static json_t *node_row(const json_t *node)
{
    json_t *reasons = json_object_get(node, "reasons");
    return json_pack("{s:O?, s:O?, s:O?, s:O?, s:O?, s:O?, s:O?, s:O?}", "name",
                     json_object_get(node, "name"), "status", json_object_get(node, "status"),
                     "qos", json_object_get(node, "qos"), "merit", json_object_get(node, "merit"),
                     "credibility", json_object_get(node, "credibility"), "role",
                     json_object_get(node, "role"), "reasons", reasons, "samples",
                     json_object_get(node, "samples"));
}

/* The last KCI_CONSOLE_VERDICTS_SHOWN_MAX verdicts, oldest first. */
static json_t *recent_verdicts(const json_t *verdicts)
{
    json_t *all = json_object_get(verdicts, "verdicts");
    json_t *list = json_array();
    size_t count = json_array_size(all);
    size_t first =
        count > KCI_CONSOLE_VERDICTS_SHOWN_MAX ? count - KCI_CONSOLE_VERDICTS_SHOWN_MAX : 0;
    for (size_t i = first; list != NULL && i < count; i++)
        json_array_append(list, json_array_get(all, i));
    return list;
}

json_t *kci_console_nodes_view(const json_t *status, const json_t *verdicts, const json_t *tree,
                               int64_t now_ms)
{
    json_t *rows = json_array();
    json_int_t counts[3] = {0, 0, 0}; /* active, probation, quarantined */
    const json_t *node;
    size_t i;
    json_array_foreach(json_object_get(status, "nodes"), i, node)
    {
        json_array_append_new(rows, node_row(node));
        const char *state = json_string_value(json_object_get(node, "status"));
        if (state == NULL) continue;
        if (strcmp(state, "active") == 0) counts[0]++;
        if (strcmp(state, "probation") == 0) counts[1]++;
        if (strcmp(state, "quarantined") == 0) counts[2]++;
    }
    json_t *tree_nodes = json_object_get(tree, "nodes");
    tree_nodes = tree_nodes != NULL ? json_incref(tree_nodes) : json_array(); /* taken below */
    return json_pack("{s:b, s:I, s:O?, s:o, s:{s:I, s:I, s:I}, s:{s:O?, s:o}, s:o}", "available",
                     true, "updated_ms", (json_int_t)now_ms, "arbiter",
                     json_object_get(status, "arbiter"), "nodes", rows, "counts", "active",
                     counts[0], "probation", counts[1], "quarantined", counts[2], "tree", "root",
                     json_object_get(tree, "root"), "nodes", tree_nodes, "verdicts",
                     recent_verdicts(verdicts));
}

/* ---- queue ---------------------------------------------------------------------- */

static json_int_t field(const json_t *object, const char *key)
{
    return json_integer_value(json_object_get(object, key));
}

json_t *kci_console_queue_view(const json_t *stats, const json_t *previous, int64_t elapsed_ms,
                               int64_t now_ms)
{
    json_int_t submitted = field(stats, "submitted");
    json_int_t redelivered = field(stats, "redelivered");
    double per_s = 0.0;
    if (previous != NULL && elapsed_ms > 0 && redelivered >= field(previous, "redelivered"))
        per_s =
            (double)(redelivered - field(previous, "redelivered")) * 1000.0 / (double)elapsed_ms;
    json_t *oldest = json_object_get(stats, "oldest_pending_age_ms");
    return json_pack(
        "{s:b, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:f, s:f, s:O?}", "available", true, "updated_ms",
        (json_int_t)now_ms, "submitted", submitted, "pending", field(stats, "pending"), "replied",
        field(stats, "replied"), "dead", field(stats, "dead"), "redelivered", redelivered,
        "waiting", field(stats, "waiting"), "redelivery_ratio",
        submitted > 0 ? (double)redelivered / (double)submitted : 0.0, "redeliveries_per_s", per_s,
        "oldest_pending_age_ms", oldest != NULL ? oldest : json_null());
}

/* ---- ledger --------------------------------------------------------------------- */

typedef struct flow_totals {
    json_t *pairs;   /* "from\nto" -> {from, to, amount, count} */
    json_t *wallets; /* address -> {in, out, peers: {address: true}} */
    double amount_total;
    size_t transfer_count;
} flow_totals;

static json_t *wallet_entry(json_t *wallets, const char *address)
{
    json_t *wallet = json_object_get(wallets, address);
    if (wallet == NULL) {
        wallet = json_pack("{s:s, s:I, s:I, s:{}}", "id", address, "in", (json_int_t)0, "out",
                           (json_int_t)0, "peers");
        json_object_set_new(wallets, address, wallet);
    }
    return wallet;
}

static void add_amount(json_t *object, const char *key, json_int_t amount)
{
    json_object_set_new(object, key, json_integer(field(object, key) + amount));
}

static void add_edge(flow_totals *totals, const char *from, const char *to, json_int_t amount)
{
    char key[PAIR_KEY_BYTES_MAX];
    snprintf(key, sizeof key, "%s\n%s", from, to);
    json_t *pair = json_object_get(totals->pairs, key);
    if (pair == NULL) {
        pair = json_pack("{s:s, s:s, s:I, s:I}", "from", from, "to", to, "amount", (json_int_t)0,
                         "count", (json_int_t)0);
        json_object_set_new(totals->pairs, key, pair);
    }
    add_amount(pair, "amount", amount);
    add_amount(pair, "count", 1);
    json_t *payer = wallet_entry(totals->wallets, from), *payee = wallet_entry(totals->wallets, to);
    add_amount(payer, "out", amount);
    add_amount(payee, "in", amount);
    json_object_set_new(json_object_get(payer, "peers"), to, json_true());
    json_object_set_new(json_object_get(payee, "peers"), from, json_true());
    totals->amount_total += (double)amount;
    totals->transfer_count++;
}

static flow_totals sum_flows(const json_t *edges)
{
    flow_totals totals = {.pairs = json_object(), .wallets = json_object()};
    const json_t *edge;
    size_t i;
    json_array_foreach(edges, i, edge)
    {
        const char *from = json_string_value(json_object_get(edge, "from"));
        const char *to = json_string_value(json_object_get(edge, "to"));
        json_int_t amount = field(edge, "amount");
        if (from != NULL && to != NULL && amount > 0) add_edge(&totals, from, to, amount);
    }
    return totals;
}

static int by_amount_descending(const void *a, const void *b)
{
    json_int_t x = field(*(json_t *const *)a, "amount"), y = field(*(json_t *const *)b, "amount");
    return x < y ? 1 : x > y ? -1 : 0;
}

static int by_throughput_descending(const void *a, const void *b)
{
    const json_t *x = *(json_t *const *)a, *y = *(json_t *const *)b;
    json_int_t tx = field(x, "in") + field(x, "out"), ty = field(y, "in") + field(y, "out");
    return tx < ty ? 1 : tx > ty ? -1 : 0;
}

/* The object's values in an array sorted by compare (a malloc'd array of
 * borrowed references, *count long). */
static json_t **sorted_values(json_t *object, int (*compare)(const void *, const void *),
                              size_t *count)
{
    *count = json_object_size(object);
    json_t **values = calloc(*count > 0 ? *count : 1, sizeof *values);
    if (values == NULL) {
        *count = 0;
        return NULL;
    }
    const char *key;
    json_t *value;
    size_t n = 0;
    json_object_foreach(object, key, value) values[n++] = value;
    qsort(values, n, sizeof *values, compare);
    return values;
}

static json_t *label_of(const char *address)
{
    if (strlen(address) <= LABEL_CHARS) return json_string(address);
    char label[LABEL_CHARS + 4];
    snprintf(label, sizeof label, "%.*s…", LABEL_CHARS - 2, address);
    return json_string(label);
}

/* The drawn wallets: the busiest, each with its stratum and hub mark. */
static json_t *graph_vertices(json_t *wallets, double threshold, json_t *drawn)
{
    size_t count = 0;
    json_t **sorted = sorted_values(wallets, by_throughput_descending, &count);
    double degree_total = 0;
    for (size_t i = 0; i < count; i++)
        degree_total += (double)json_object_size(json_object_get(sorted[i], "peers"));
    double hub_degree = count > 0 ? 2.0 * degree_total / (double)count : 0;
    if (hub_degree < KCI_CONSOLE_HUB_DEGREE_MIN) hub_degree = KCI_CONSOLE_HUB_DEGREE_MIN;
    json_t *vertices = json_array();
    for (size_t i = 0; i < count && i < KCI_CONSOLE_GRAPH_VERTICES_MAX; i++) {
        const char *id = json_string_value(json_object_get(sorted[i], "id"));
        json_int_t in = field(sorted[i], "in"), out = field(sorted[i], "out");
        size_t degree = json_object_size(json_object_get(sorted[i], "peers"));
        const char *stratum = strcmp(id, "mint") == 0           ? "mint"
                              : (double)(in - out) >= threshold ? "rich"
                                                                : "poor";
        json_array_append_new(vertices,
                              json_pack("{s:s, s:o, s:I, s:I, s:I, s:I, s:s, s:b}", "id", id,
                                        "label", label_of(id), "in", in, "out", out, "net",
                                        in - out, "degree", (json_int_t)degree, "stratum", stratum,
                                        "hub", (double)degree >= hub_degree));
        json_object_set_new(drawn, id, json_true());
    }
    free(sorted);
    return vertices;
}

static json_t *flow_row(const json_t *pair)
{
    const char *from = json_string_value(json_object_get(pair, "from"));
    const char *to = json_string_value(json_object_get(pair, "to"));
    return json_pack("{s:s, s:s, s:o, s:o, s:I, s:I}", "from", from, "to", to, "from_label",
                     label_of(from), "to_label", label_of(to), "amount", field(pair, "amount"),
                     "count", field(pair, "count"));
}

/* The largest flows, and the graph's edges between drawn wallets. */
static void graph_edges(json_t *pairs, const json_t *drawn, json_t *edges, json_t *largest)
{
    size_t count = 0;
    json_t **sorted = sorted_values(pairs, by_amount_descending, &count);
    for (size_t i = 0; i < count; i++) {
        if (i < KCI_CONSOLE_LARGEST_FLOWS) json_array_append_new(largest, flow_row(sorted[i]));
        const char *from = json_string_value(json_object_get(sorted[i], "from"));
        const char *to = json_string_value(json_object_get(sorted[i], "to"));
        if (json_array_size(edges) < KCI_CONSOLE_GRAPH_EDGES_MAX &&
            json_object_get(drawn, from) != NULL && json_object_get(drawn, to) != NULL)
            json_array_append_new(edges, flow_row(sorted[i]));
    }
    free(sorted);
}

/* Supply per asset: the ledger has one asset, its coin, whose supply the
 * audit reports, with the live coins of each denomination beside it. */
static json_t *assets_of(const json_t *audit)
{
    if (audit == NULL) return json_array();
    return json_pack("[{s:s, s:O?, s:O?}]", "asset", "coin", "supply",
                     json_object_get(audit, "supply"), "coins_by_denomination",
                     json_object_get(audit, "supply_by_denomination"));
}

json_t *kci_console_ledger_view(const json_t *edges, const json_t *audit, int64_t window_ms,
                                int64_t now_ms)
{
    flow_totals totals = sum_flows(edges);
    double threshold =
        totals.transfer_count > 0 ? totals.amount_total / (double)totals.transfer_count : 0.0;
    json_t *drawn = json_object(), *graph_edge_list = json_array(), *largest = json_array();
    json_t *vertices = graph_vertices(totals.wallets, threshold, drawn);
    graph_edges(totals.pairs, drawn, graph_edge_list, largest);
    json_decref(drawn);
    size_t wallet_count = json_object_size(totals.wallets);
    json_decref(totals.pairs);
    json_decref(totals.wallets);
    json_t *supply = audit != NULL ? json_object_get(audit, "supply") : NULL;
    return json_pack(
        "{s:b, s:I, s:O?, s:o, s:I, s:I, s:f, s:I, s:{s:f, s:I, s:o, s:o}, s:o, s:O?}", "available",
        true, "updated_ms", (json_int_t)now_ms, "supply", supply, "assets", assets_of(audit),
        "window_ms", (json_int_t)window_ms, "window_transfers", (json_int_t)totals.transfer_count,
        "transfers_per_s",
        window_ms > 0 ? (double)totals.transfer_count * 1000.0 / (double)window_ms : 0.0,
        "wallets_in_window", (json_int_t)wallet_count, "graph", "strata_threshold", threshold,
        "wallets", (json_int_t)wallet_count, "vertices", vertices, "edges", graph_edge_list,
        "largest_flows", largest, "audit_ok", audit != NULL ? json_object_get(audit, "ok") : NULL);
}
