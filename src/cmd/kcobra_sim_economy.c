/* kcobra_sim_economy.c - `kcobra sim --economy`: the simulated cloud as a
 * virtual economy with message-as-currency (the original "simulating a
 * virtual economy with MAC").
 *
 * Every node and client has a wallet (a key pair made for the run, never
 * written). Before the requests, each client's budget (its requests x
 * SIM_BUDGET_PER_REQUEST coins, in coins of 10, 5 and 1) is minted through
 * the ledger kcobrad hosts (kc.ledger.mint). A client then, for each
 * request, picks a node at random among those the arbiters have not
 * quarantined (it listens to the verdicts, as a client should), pays it
 * its price and sends the request to the node's own paid type
 * (kcobra_sim_pay.c); the arbiters still probe the free type "sense" that
 * every node serves. Provoking clients send their requests unpaid (402).
 * A sampler asks the ledger every SIM_GINI_PERIOD_MS for every wallet's
 * balance and records the Gini coefficient of wealth.
 *
 * At the end: the ledger's audit; conservation (the audit's supply, and
 * the sum of the balances of the run's wallets asked one by one, both
 * equal to what was minted: the ledger was fresh); the history
 * (kc.ledger.history, paged) written with the run's names for addresses
 * (--history PATH, for `kcobra econ ... --edges PATH`); and the Fisher
 * market equilibrium (src/econ/equilibrium.h) over the observed demand:
 * one good per node that served, its supply the paid requests it served,
 * its utility to every buyer the share of those it served well; the
 * buyers are the clients, with what they spent as budgets. Its prices are
 * what the run's money would have paid for each node's quality. */
#include <math.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "econ/equilibrium.h"
#include "econ/market.h"
#include "kcobra_sim.h"
#include "ledger/client.h"
#include "service/component.h"

enum {
    MINT_COINS_PER_GRANT = 1000, /* the ledger takes at most 1,024 */
    HISTORY_PAGE_LIMIT = 10000,
    HISTORY_PAGES_MAX = 1000,
    PICK_ATTEMPTS_PER_NODE = 4,
};

/* ---- wallets and budgets ----------------------------------------------------- */

static void wallet_make(kci_wallet *wallet, char address[SIM_ADDRESS_BYTES])
{
    crypto_sign_keypair(wallet->public_key, wallet->secret_key);
    kci_wallet_address(address, wallet);
}

void kcobra_sim_economy_wallets(sim *s)
{
    for (uint32_t i = 0; i < s->node_count; i++)
        wallet_make(&s->nodes[i].wallet, s->nodes[i].address);
    for (uint32_t i = 0; i < s->client_count; i++) {
        sim_client *client = &s->clients[i];
        wallet_make(&client->wallet, client->address);
        client->budget = client->request_count * SIM_BUDGET_PER_REQUEST;
    }
}

static natsConnection *ledger_connection(const sim *s)
{
    return kci_client_connection(s->observer);
}

/* Mints budget to address in coins of 10, 5 and 1 (so that most prices
 * are paid without making change), at most MINT_COINS_PER_GRANT a call. */
static kc_err mint(sim *s, const char *address, int64_t budget, kci_ledger_refusal *refusal)
{
    static const json_int_t pattern[] = {10, 5, 1, 1, 1, 1}; /* 19 */
    kc_err err = KC_OK;
    int64_t left = budget;
    while (left > 0 && err == KC_OK) {
        json_t *denominations = json_array();
        for (size_t k = 0; left > 0 && json_array_size(denominations) < MINT_COINS_PER_GRANT; k++) {
            json_int_t coin = pattern[k % (sizeof pattern / sizeof pattern[0])];
            if (coin > left) coin = 1;
            json_array_append_new(denominations, json_integer(coin));
            left -= coin;
        }
        json_t *reply = NULL;
        err =
            kci_ledger_call(&reply, ledger_connection(s), "mint",
                            json_pack("{s:s, s:o}", "to", address, "denominations", denominations),
                            SIM_LEDGER_TIMEOUT_MS, refusal);
        json_decref(reply);
    }
    return err;
}

/* ---- wealth ------------------------------------------------------------------- */

static int compare_int64(const void *left, const void *right)
{
    int64_t a = *(const int64_t *)left, b = *(const int64_t *)right;
    return a < b ? -1 : a > b;
}

/* The Gini coefficient of values (sorted here): 0 equal, near 1 one holds all. */
static double gini(int64_t *values, uint32_t count)
{
    qsort(values, count, sizeof values[0], compare_int64);
    double weighted = 0, total = 0;
    for (uint32_t i = 0; i < count; i++) {
        weighted += (2.0 * (i + 1) - count - 1) * (double)values[i];
        total += (double)values[i];
    }
    return total > 0 ? weighted / (count * total) : 0;
}

static bool balance(const sim *s, const char *address, int64_t *out)
{
    json_t *reply = NULL;
    kci_ledger_refusal refusal;
    kc_err err =
        kci_ledger_call(&reply, ledger_connection(s), "balance",
                        json_pack("{s:s}", "wallet", address), SIM_LEDGER_TIMEOUT_MS, &refusal);
    json_t *value = json_object_get(reply, "balance");
    bool ok = err == KC_OK && json_is_integer(value);
    *out = ok ? json_integer_value(value) : 0;
    json_decref(reply);
    return ok;
}

/* Every wallet's balance now: their sum in *sum, the Gini in *out. */
static bool wealth(const sim *s, double *out, int64_t *sum)
{
    int64_t values[SIM_NODES_MAX + SIM_CLIENTS_MAX];
    uint32_t count = 0;
    bool ok = true;
    for (uint32_t i = 0; i < s->node_count && ok; i++)
        ok = balance(s, s->nodes[i].address, &values[count++]);
    for (uint32_t i = 0; i < s->client_count && ok; i++)
        ok = balance(s, s->clients[i].address, &values[count++]);
    *sum = 0;
    for (uint32_t i = 0; i < count; i++)
        *sum += values[i];
    *out = ok ? gini(values, count) : 0;
    return ok;
}

static void sample(sim *s)
{
    sim_economy *economy = &s->economy;
    double value = 0;
    int64_t sum = 0;
    if (!wealth(s, &value, &sum)) return;
    if (economy->sample_count == SIM_GINI_SAMPLES_MAX) { /* keep every other: coarser, bounded */
        for (uint32_t i = 0; i < SIM_GINI_SAMPLES_MAX / 2; i++)
            economy->samples[i] = economy->samples[2 * i];
        economy->sample_count = SIM_GINI_SAMPLES_MAX / 2;
    }
    economy->samples[economy->sample_count++] =
        (sim_gini_sample){kci_monotonic_ms() - s->start_ms, atomic_load(&s->requests_done), value};
}

static void *sampler_main(void *context)
{
    sim *s = context;
    while (!atomic_load(&s->economy.sampler_stop)) {
        sample(s);
        kcobra_sim_sleep_ms(SIM_GINI_PERIOD_MS);
    }
    return NULL;
}

int kcobra_sim_economy_start(sim *s)
{
    for (uint32_t i = 0; i < s->client_count; i++) {
        kci_ledger_refusal refusal;
        sim_client *client = &s->clients[i];
        if (mint(s, client->address, client->budget, &refusal) != KC_OK) {
            kcobra_error("sim: cannot mint %s's budget: %s (does the server host a ledger that "
                         "mints?)",
                         client->name, refusal.message);
            return KCOBRA_EXIT_FAILURE;
        }
        s->economy.minted += client->budget;
    }
    s->economy.sampler_started = pthread_create(&s->economy.sampler, NULL, sampler_main, s) == 0;
    return KCOBRA_EXIT_OK;
}

/* ---- requests ----------------------------------------------------------------- */

/* A node serving and not quarantined (as the verdicts say), at random. */
static sim_node *pick_node(sim *s, uint64_t *random)
{
    sim_node *picked = NULL;
    pthread_mutex_lock(&s->lock);
    for (uint32_t attempt = 0; attempt < PICK_ATTEMPTS_PER_NODE * s->node_count && !picked;
         attempt++) {
        sim_node *node = &s->nodes[kcobra_sim_random(random) % s->node_count];
        if (node->serving && !node->quarantined) picked = node;
    }
    pthread_mutex_unlock(&s->lock);
    return picked;
}

void kcobra_sim_economy_request(sim_client *client, int64_t k)
{
    sim *s = client->sim;
    (void)k;
    sim_node *node = pick_node(s, &client->random);
    double x =
        round((double)(kcobra_sim_random(&client->random) >> 11) / 9007199254740992.0 * 100000) /
        1000;
    if (node == NULL) {
        atomic_fetch_add(&s->requests_done, 1);
        return;
    }
    char payload[32];
    int length = snprintf(payload, sizeof payload, "%.3f", x);
    int64_t amount = (int64_t)node->price, latency_ms = 0;
    kc_reply *reply = NULL;
    bool paid = false;
    kc_err err = kcobra_sim_pay_request(&reply, client, node, amount, payload, (size_t)length,
                                        &paid, &latency_ms);
    atomic_fetch_add(&s->requests_done, 1);
    bool good = false, served = err == KC_OK || (err == KC_ERR_SERVICE && reply != NULL);
    if (err == KC_OK)
        good = !kcobra_sim_check_reply(client, reply, x, latency_ms, (double)amount);
    else if (served && paid) { /* paid, and refused service: take-payment */
        kcobra_sim_money_lost(s, node->name, (double)amount);
        if (kcobra_sim_random(&client->random) % 2 == 0)
            kc_client_report_problem(client->client, node->name, KC_PROBLEM_ERROR_REPLY,
                                     kc_reply_request_id(reply), "sim: paid, not served");
    }
    pthread_mutex_lock(&s->lock);
    client->spent += paid ? amount : 0;
    client->unpaid += !paid;
    s->economy.spent += paid ? amount : 0;
    if (paid && !served) s->economy.lost_after += (double)amount; /* quarantined meanwhile */
    node->paid_served += served;
    node->paid_good += good;
    pthread_mutex_unlock(&s->lock);
    kc_reply_destroy(reply);
}

/* Unpaid requests to a node's paid type (answered 402), and complaints
 * about the refusals. */
void kcobra_sim_economy_provoke(sim_client *client, int64_t k)
{
    sim *s = client->sim;
    sim_node *node = pick_node(s, &client->random);
    char payload[32];
    int length = snprintf(payload, sizeof payload, "%lld", (long long)k);
    kc_reply *reply = NULL;
    kc_err err = node != NULL ? kc_client_request(&reply, client->client, node->paid_type, payload,
                                                  (size_t)length, SIM_REQUEST_TIMEOUT_MS)
                              : KC_ERR_NO_RESPONDERS;
    atomic_fetch_add(&s->requests_done, 1);
    if ((err == KC_ERR_PAYMENT || err == KC_ERR_SERVICE) && reply != NULL &&
        kcobra_sim_random(&client->random) % 2 == 0)
        kc_client_report_problem(client->client, node->name, KC_PROBLEM_ERROR_REPLY,
                                 kc_reply_request_id(reply), "sim: refused");
    kc_reply_destroy(reply);
}

/* ---- the end: audit, history, equilibrium --------------------------------------- */

static void audit(sim *s)
{
    sim_economy *economy = &s->economy;
    json_t *reply = NULL;
    kci_ledger_refusal refusal;
    if (kci_ledger_call(&reply, ledger_connection(s), "audit", NULL, 4 * SIM_LEDGER_TIMEOUT_MS,
                        &refusal) == KC_OK) {
        economy->audited = true;
        economy->audit_ok = json_is_true(json_object_get(reply, "ok"));
        economy->audit_supply = json_integer_value(json_object_get(reply, "supply"));
    } else {
        snprintf(economy->problem, sizeof economy->problem, "the audit failed: %.200s",
                 refusal.message);
    }
    json_decref(reply);
    double ignored;
    bool counted = wealth(s, &ignored, &economy->balances_sum);
    economy->conserved = economy->audited && economy->audit_ok && counted &&
                         economy->audit_supply == economy->minted &&
                         economy->balances_sum == economy->minted;
}

static const char *name_of(const sim *s, const char *address)
{
    for (uint32_t i = 0; address != NULL && i < s->node_count; i++)
        if (strcmp(s->nodes[i].address, address) == 0) return s->nodes[i].name;
    for (uint32_t i = 0; address != NULL && i < s->client_count; i++)
        if (strcmp(s->clients[i].address, address) == 0) return s->clients[i].name;
    return address; /* "mint" */
}

/* Pages through kc.ledger.history; every edge with the run's names. */
static json_t *history(sim *s)
{
    json_t *edges = json_array(), *after = json_null();
    for (int page = 0; page < HISTORY_PAGES_MAX; page++) {
        json_t *request = json_pack("{s:i}", "limit", (json_int_t)HISTORY_PAGE_LIMIT);
        if (json_is_string(after)) json_object_set(request, "after", after);
        json_t *reply = NULL;
        kci_ledger_refusal refusal;
        if (kci_ledger_call(&reply, ledger_connection(s), "history", request, SIM_LEDGER_TIMEOUT_MS,
                            &refusal) != KC_OK) {
            json_decref(edges), json_decref(after);
            return NULL;
        }
        size_t index;
        json_t *edge;
        json_array_foreach(json_object_get(reply, "edges"), index, edge)
        {
            json_t *named = json_deep_copy(edge);
            json_object_set_new(
                named, "from",
                json_string(name_of(s, json_string_value(json_object_get(edge, "from")))));
            json_object_set_new(
                named, "to",
                json_string(name_of(s, json_string_value(json_object_get(edge, "to")))));
            json_array_append_new(edges, named);
        }
        json_decref(after);
        after = json_incref(json_object_get(reply, "next"));
        json_decref(reply);
        if (!json_is_string(after)) break;
    }
    json_decref(after);
    return edges;
}

static void write_history(sim *s)
{
    json_t *edges = history(s);
    if (edges == NULL) {
        snprintf(s->economy.problem, sizeof s->economy.problem, "the history could not be read");
        return;
    }
    s->economy.history_edges = (int64_t)json_array_size(edges);
    json_t *document = json_pack("{s:o, s:n}", "edges", edges, "next");
    if (s->options.history_path != NULL &&
        json_dump_file(document, s->options.history_path, JSON_COMPACT) != 0)
        kcobra_error("sim: cannot write %s", s->options.history_path);
    json_decref(document);
}

/* The market over what was observed (see the opening comment). */
static json_t *market_json(const sim *s, int32_t *goods_node, uint32_t *good_count)
{
    json_t *goods = json_array(), *utilities = json_array(), *buyers = json_array();
    *good_count = 0;
    for (uint32_t i = 0; i < s->node_count; i++) {
        const sim_node *node = &s->nodes[i];
        if (node->paid_served == 0) continue;
        double quality = (double)node->paid_good / (double)node->paid_served;
        json_array_append_new(goods, json_pack("{s:s, s:f}", "name", node->name, "supply",
                                               (double)node->paid_served));
        json_array_append_new(utilities, json_real(quality > 0.01 ? quality : 0.01));
        goods_node[(*good_count)++] = (int32_t)i;
    }
    for (uint32_t i = 0; i < s->client_count; i++)
        if (s->clients[i].spent > 0)
            json_array_append_new(buyers,
                                  json_pack("{s:s, s:f, s:O}", "name", s->clients[i].name, "budget",
                                            (double)s->clients[i].spent, "utilities", utilities));
    json_decref(utilities);
    return json_pack("{s:o, s:o}", "goods", goods, "buyers", buyers);
}

static void equilibrium(sim *s)
{
    sim_economy *economy = &s->economy;
    int32_t goods_node[SIM_NODES_MAX];
    uint32_t good_count = 0;
    json_t *document = market_json(s, goods_node, &good_count);
    kci_econ_market market;
    kci_econ_equilibrium result;
    kci_econ_error error = {{0}};
    memset(&market, 0, sizeof market);
    memset(&result, 0, sizeof result);
    if (good_count > 0 && kci_econ_market_from_json(document, &market, &error) == KC_OK &&
        kci_econ_equilibrium_solve(&market, 0, NULL, NULL, &result, &error) == KC_OK) {
        double sums[2] = {0, 0}, posted[2] = {0, 0};
        uint32_t counts[2] = {0, 0};
        for (uint32_t g = 0; g < good_count; g++) {
            const sim_node *node = &s->nodes[goods_node[g]];
            int corrupt = node->behaviour != 0;
            sums[corrupt] += result.prices[g];
            posted[corrupt] += node->price;
            counts[corrupt]++;
        }
        economy->equilibrium_solved = true;
        economy->equilibrium_honest = counts[0] ? sums[0] / counts[0] : 0;
        economy->equilibrium_corrupt = counts[1] ? sums[1] / counts[1] : 0;
        economy->posted_honest = counts[0] ? posted[0] / counts[0] : 0;
        economy->posted_corrupt = counts[1] ? posted[1] / counts[1] : 0;
        kci_econ_equilibrium_free(&result);
    } else if (good_count > 0) {
        snprintf(economy->problem, sizeof economy->problem, "no equilibrium: %.200s", error.text);
    }
    if (good_count > 0) kci_econ_market_free(&market);
    json_decref(document);
}

void kcobra_sim_economy_finish(sim *s)
{
    atomic_store(&s->economy.sampler_stop, true);
    if (s->economy.sampler_started) pthread_join(s->economy.sampler, NULL);
    s->economy.sampler_started = false;
    sample(s); /* the end */
    for (uint32_t i = 0; i < s->node_count; i++)
        if (s->nodes[i].behaviour != 0) s->economy.lost += s->nodes[i].money_lost;
    audit(s);
    write_history(s);
    equilibrium(s);
}

/* ---- the report ---------------------------------------------------------------- */

void kcobra_sim_economy_print(FILE *out, const sim *s)
{
    const sim_economy *e = &s->economy;
    double spent = e->spent > 0 ? (double)e->spent : 1;
    int64_t unpaid = 0;
    for (uint32_t i = 0; i < s->client_count; i++)
        unpaid += s->clients[i].provoker ? 0 : s->clients[i].unpaid;
    double lost_max = 0, lost_max_price = 1; /* the most one corrupt node took */
    for (uint32_t i = 0; i < s->node_count; i++)
        if (s->nodes[i].behaviour != 0 && s->nodes[i].money_lost > lost_max)
            lost_max = s->nodes[i].money_lost, lost_max_price = s->nodes[i].price;
    fprintf(out,
            "economy: minted %lld coins to %u clients; spent %lld; lost to corrupt nodes before "
            "their quarantine %.0f (%.3f of the spending; at most %.0f to one node, %.1f times its "
            "price), paid to nodes quarantined meanwhile and not served %.0f; %lld request(s) not "
            "paid for\n",
            (long long)e->minted, s->client_count, (long long)e->spent, e->lost, e->lost / spent,
            lost_max, lost_max / lost_max_price, e->lost_after, (long long)unpaid);
    if (e->equilibrium_solved)
        fprintf(out,
                "prices (coins a request): honest nodes ask %.2f, equilibrium %.2f; corrupt nodes "
                "ask %.2f, equilibrium %.2f\n",
                e->posted_honest, e->equilibrium_honest, e->posted_corrupt, e->equilibrium_corrupt);
    fprintf(out, "wealth (Gini over %u wallets):", s->node_count + s->client_count);
    uint32_t shown = e->sample_count < 6 ? e->sample_count : 6;
    for (uint32_t k = 0; k < shown; k++) {
        const sim_gini_sample *sample =
            &e->samples[shown > 1 ? k * (e->sample_count - 1) / (shown - 1) : 0];
        fprintf(out, " %.1fs %.3f%s", sample->at_ms / 1000.0, sample->gini,
                k + 1 < shown ? "," : "");
    }
    fprintf(out,
            "\nledger: audit %s, supply %lld, the run's balances %lld, minted %lld: money %s; "
            "history %lld edge(s)%s%s\n",
            !e->audited   ? "NOT RUN"
            : e->audit_ok ? "ok"
                          : "FAILED",
            (long long)e->audit_supply, (long long)e->balances_sum, (long long)e->minted,
            e->conserved ? "conserved" : "NOT CONSERVED", (long long)e->history_edges,
            s->options.history_path ? " in " : "",
            s->options.history_path ? s->options.history_path : "");
    if (e->problem[0] != '\0') fprintf(out, "economy: %s\n", e->problem);
}

bool kcobra_sim_economy_check(const sim *s)
{
    const sim_economy *e = &s->economy;
    bool ok = true;
    if (!e->conserved)
        kcobra_error("sim: money was not conserved (audit %s, supply %lld, balances %lld, minted "
                     "%lld)",
                     e->audit_ok ? "ok" : "failed", (long long)e->audit_supply,
                     (long long)e->balances_sum, (long long)e->minted),
            ok = false;
    double max_lost = 1;
    kcobra_sim_fraction(s->options.max_money_lost_text, &max_lost, 1);
    double share = e->spent > 0 ? e->lost / (double)e->spent : 0;
    if (share > max_lost)
        kcobra_error("sim: %.3f of the money spent was lost to corrupt nodes (--max-money-lost "
                     "%.3f)",
                     share, max_lost),
            ok = false;
    return ok;
}
