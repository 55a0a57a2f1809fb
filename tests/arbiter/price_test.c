/* price_test.c - the arbiter sees the money (issue 15, finding 4): what a
 * paid request paid comes from the ledger, and overcharging is judged
 * against the market's equilibrium price (src/arbiter/price.c). argv[1] is
 * kcobrad (it hosts the ledger and the arbiter; any other server: skipped,
 * exit 77); KCOBRA names the kcobra binary.
 *
 *  - a service charging 5 coins a request (libkingcobra's paid service,
 *    paid through the real ledger) shows price 5.00 in `kcobra arbiter
 *    status`; it showed 0.00 (nothing says a price but the ledger);
 *  - three nodes serve the same type in turn, two at 5 coins and one at 50:
 *    the one at 50 is quarantined for overcharging, with the prices and the
 *    equilibrium reference in the verdict's evidence; the two at 5 are not.
 *
 * The client pays each request with its own wallet before sending it
 * (kci_ledger_pay, change made by the ledger as needed). */
#include <jansson.h>
#include <nats/nats.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "fixture.h"
#include "kingcobra/kingcobra.h"
#include "ledger/client.h"
#include "ledger/wallet.h"

enum {
    EXIT_SKIP = 77,
    REQUEST_TIMEOUT_MS = 5000,
    PAID_REQUESTS = 8, /* per node: above the arbiter's 5 priced replies */
    VERDICT_WAIT_MS = 10000,
    OUTPUT_BYTES_MAX = 64 * 1024,
    CONFIG_BYTES_MAX = 1024,
};

static void sleep_ms(int duration_ms)
{
    struct timespec pause = {duration_ms / 1000, (duration_ms % 1000) * 1000000L};
    nanosleep(&pause, NULL);
}

static void config_text(fixture *f, char text[CONFIG_BYTES_MAX])
{
    snprintf(text, CONFIG_BYTES_MAX,
             "ledger {\n  enabled: true\n  dir: \"%s/ledger\"\n  mint_open: true\n}\n"
             "arbiter {\n  enabled: true\n  id: \"arb\"\n  tick: \"100ms\"\n"
             "  quarantine: \"1h\"\n}\n",
             f->server.directory_path);
}

static void handler(const kc_request *request, kc_response *response, void *closure)
{
    (void)request, (void)closure;
    kc_response_set_payload(response, "ok", 2);
}

static void wallet_make(fixture *f, kci_wallet *wallet, const char *name, char *address)
{
    char path[512], error[256];
    snprintf(path, sizeof path, "%s/%s.key", f->server.directory_path, name);
    assert_int_equal(kci_wallet_load_or_create(wallet, path, error, sizeof error), KC_OK);
    kci_wallet_address(address, wallet);
}

static kc_client *open_client(fixture *f, const char *name)
{
    kc_client_options options;
    kc_client_options_init(&options);
    options.servers = f->server.url;
    options.node = name;
    options.name = name;
    kc_client *client = NULL;
    assert_int_equal(kc_client_open(&client, &options), KC_OK);
    return client;
}

/* A paid service of type t at price, paid to wallet address. */
typedef struct paid_node {
    kc_client *client;
    kc_service *service;
} paid_node;

static void serve_paid(fixture *f, paid_node *out, const char *name, int64_t price,
                       const char *address)
{
    out->client = open_client(f, name);
    kc_service_options options;
    kc_service_options_init(&options);
    options.price = price;
    options.wallet = address;
    assert_int_equal(kc_service_start(&out->service, out->client, "t", handler, NULL, &options),
                     KC_OK);
}

static void unserve(paid_node *node)
{
    kc_service_stop(node->service);
    kc_client_close(node->client, 2000);
}

static void mint(natsConnection *connection, const char *to, int64_t amount)
{
    json_t *body = json_pack("{s:s, s:[I]}", "to", to, "denominations", (json_int_t)amount);
    json_t *reply = NULL;
    kci_ledger_refusal refusal;
    kc_err err = kci_ledger_call(&reply, connection, "mint", body, REQUEST_TIMEOUT_MS, &refusal);
    if (err != KC_OK) fail_msg("mint: %d %s", refusal.code, refusal.message);
    json_decref(reply);
}

/* Pays amount to payee and sends one request with the transfer as Kc-Pay;
 * the reply must be a success, or, when the node may have been quarantined
 * meanwhile, "no responders" (false then). */
static bool paid_request(natsConnection *connection, kc_client *client, const kci_wallet *payer,
                         const char *payee_address, uint64_t amount, bool may_be_quarantined)
{
    uint8_t payee[KCI_LEDGER_KEY_BYTES];
    assert_true(kci_ledger_address_parse(payee, payee_address));
    json_t *paid = NULL;
    bool exchanged = false;
    kci_ledger_refusal refusal;
    kc_err err = kci_ledger_pay(&paid, &exchanged, connection, payer, payee, amount,
                                REQUEST_TIMEOUT_MS, &refusal);
    if (err != KC_OK) fail_msg("pay: %d %s", refusal.code, refusal.message);
    const char *transfer = json_string_value(json_object_get(paid, "transfer"));
    assert_non_null(transfer);
    kc_reply *reply = NULL;
    kc_err sent = kc_client_request_paid(&reply, client, "t", "x", 1, REQUEST_TIMEOUT_MS, transfer);
    if (sent == KC_ERR_NO_RESPONDERS && may_be_quarantined) {
        kc_reply_destroy(reply);
        json_decref(paid);
        return false;
    }
    if (sent != KC_OK)
        fail_msg("paid request: %s (%s)", kc_strerror(sent),
                 reply != NULL ? kc_reply_error_message(reply) : "no reply");
    kc_reply_destroy(reply);
    json_decref(paid);
    return true;
}

/* name serves type t at price to address while the payer pays
 * PAID_REQUESTS requests, then stops (the arbiter keeps its record). An
 * overcharger may be quarantined before the last ones: its requests then
 * find no responders, and the paying stops. */
static void serve_and_pay(fixture *f, natsConnection *connection, kc_client *client,
                          const kci_wallet *payer, const char *name, int64_t price,
                          const char *address, bool may_be_quarantined)
{
    paid_node node;
    serve_paid(f, &node, name, price, address);
    for (int i = 0; i < PAID_REQUESTS; i++)
        if (!paid_request(connection, client, payer, address, (uint64_t)price, may_be_quarantined))
            break;
    sleep_ms(300); /* the ledger's answers to the arbiter */
    unserve(&node);
}

static int run_kcobra(const char *url, const char *const *arguments, char *output, size_t size)
{
    return harness_run(getenv("KCOBRA"), url, arguments, output, size);
}

/* The line of `kcobra arbiter status` about node (copied into line). */
static bool status_line(fixture *f, const char *node, char *line, size_t size)
{
    static char output[OUTPUT_BYTES_MAX];
    const char *const status[] = {"arbiter", "status", NULL};
    if (run_kcobra(f->server.url, status, output, sizeof output) != 0) return false;
    for (char *start = output; start != NULL && *start != '\0';) {
        char *end = strchr(start, '\n');
        size_t length = end != NULL ? (size_t)(end - start) : strlen(start);
        if (strncmp(start, node, strlen(node)) == 0 && start[strlen(node)] == ' ') {
            snprintf(line, size, "%.*s", (int)length, start);
            return true;
        }
        start = end != NULL ? end + 1 : NULL;
    }
    return false;
}

static void test_price_from_the_ledger(void **state)
{
    if (getenv("KCOBRA") == NULL) skip();
    fixture *f = fixture_of(state);
    char config[CONFIG_BYTES_MAX];
    config_text(f, config);
    fixture_start(f, config);
    natsConnection *connection = fixture_connect(f);
    kci_wallet alice, shop;
    char alice_address[KCI_LEDGER_ADDRESS_TEXT_BYTES + 1], shop_address[sizeof alice_address];
    wallet_make(f, &alice, "alice", alice_address);
    wallet_make(f, &shop, "shop", shop_address);
    mint(connection, alice_address, 1000);
    kc_client *client = open_client(f, "alice-node");
    serve_and_pay(f, connection, client, &alice, "shop-node", 5, shop_address, false);
    char line[512] = "";
    bool priced = false;
    for (int i = 0; i < 50 && !priced; i++, sleep_ms(100))
        priced = status_line(f, "shop-node", line, sizeof line) && strstr(line, " 5.00 ") != NULL;
    if (!priced) print_error("status line: %s\n", line);
    assert_true(priced);
    kc_client_close(client, 2000);
    kci_wallet_wipe(&alice);
    kci_wallet_wipe(&shop);
}

/* The verdict about name on verdicts within wait_ms, or NULL. */
static json_t *verdict_about(natsSubscription *verdicts, const char *name, int wait_ms)
{
    natsMsg *message = NULL;
    int64_t deadline_ms = harness_now_ms() + wait_ms;
    while (harness_now_ms() < deadline_ms &&
           natsSubscription_NextMsg(&message, verdicts, 200) != NATS_ERR) {
        if (message == NULL) continue;
        json_t *root =
            json_loadb(natsMsg_GetData(message), (size_t)natsMsg_GetDataLength(message), 0, NULL);
        natsMsg_Destroy(message);
        message = NULL;
        const char *node = json_string_value(json_object_get(root, "node"));
        if (node != NULL && strcmp(node, name) == 0) return root;
        json_decref(root);
    }
    return NULL;
}

static void test_overcharging_against_the_equilibrium(void **state)
{
    if (getenv("KCOBRA") == NULL) skip();
    fixture *f = fixture_of(state);
    char config[CONFIG_BYTES_MAX];
    config_text(f, config);
    fixture_start(f, config);
    natsConnection *connection = fixture_connect(f);
    natsSubscription *verdicts = fixture_subscribe_flushed(f, connection, "kc.arbiter.verdict");
    kci_wallet alice, wallets[3];
    char alice_address[KCI_LEDGER_ADDRESS_TEXT_BYTES + 1], addresses[3][sizeof alice_address];
    const char *const names[3] = {"fair-1", "fair-2", "greedy"};
    const int64_t prices[3] = {5, 5, 50};
    wallet_make(f, &alice, "alice", alice_address);
    mint(connection, alice_address, 10000);
    kc_client *client = open_client(f, "alice-node");
    for (int n = 0; n < 3; n++) { /* in turn: the client pays who will serve */
        wallet_make(f, &wallets[n], names[n], addresses[n]);
        serve_and_pay(f, connection, client, &alice, names[n], prices[n], addresses[n],
                      prices[n] > 5);
    }
    json_t *verdict = verdict_about(verdicts, "greedy", VERDICT_WAIT_MS);
    assert_non_null(verdict);
    char *text = json_dumps(verdict, JSON_COMPACT);
    assert_non_null(strstr(text, "\"action\":\"quarantine\""));
    assert_non_null(strstr(text, "\"overcharge\""));
    json_t *price =
        json_array_get(json_object_get(json_object_get(verdict, "evidence"), "prices"), 0);
    assert_float_equal(json_number_value(json_object_get(price, "mean")), 50, 1e-9);
    assert_string_equal(json_string_value(json_object_get(price, "reference_from")), "equilibrium");
    /* What the market paid per request when the verdict came: 16 requests
     * at 5, then 5 to 8 at 50: from (80 + 250) / 21 = 15.7 to 20. */
    double reference = json_number_value(json_object_get(price, "reference"));
    if (reference < 15 || reference > 20.01) fail_msg("reference price %.3f", reference);
    free(text);
    json_decref(verdict);
    /* The fair ones: no verdict, status active with no reason. */
    assert_null(verdict_about(verdicts, "fair-1", 1000));
    char line[512] = "";
    for (int n = 0; n < 2; n++) {
        assert_true(status_line(f, names[n], line, sizeof line));
        assert_non_null(strstr(line, " active "));
        assert_non_null(strstr(line, " 5.00 "));
        assert_null(strstr(line, "overcharge"));
    }
    assert_true(status_line(f, "greedy", line, sizeof line));
    assert_non_null(strstr(line, "quarantined"));
    kc_client_close(client, 2000);
    kci_wallet_wipe(&alice);
    for (int n = 0; n < 3; n++)
        kci_wallet_wipe(&wallets[n]);
}

int main(int argc, char **argv)
{
    if (!fixture_parse_arguments(argc, argv)) return 2;
    if (strstr(fixture_server_binary, "kcobrad") == NULL) {
        fprintf(stderr, "price_test: kcobrad hosts the ledger and the arbiter; skipping\n");
        return EXIT_SKIP;
    }
    const struct CMUnitTest tests[] = {
        FIXTURE_CASE(test_price_from_the_ledger),
        FIXTURE_CASE(test_overcharging_against_the_equilibrium),
    };
    return cmocka_run_group_tests(tests, fixture_group_setup, fixture_group_teardown);
}
