/* kcobra_ledger.c - the MAC currency from the command line (docs/ledger.md):
 * `kcobra wallet new|show|balance|coins`, `kcobra mint`, `kcobra exchange`,
 * `kcobra pay`, `kcobra coin trail`, `kcobra ledger serve|history|audit`,
 * and `kcobra ledger hold|post|void` (escrow: kcobra_ledger_hold.c).
 *
 * Wallet key files live in --wallet-dir (default $KCOBRA_WALLET_DIR, else
 * ~/.kingcobra/wallets); a wallet is named by its file name or given as an
 * address (64 hex digits) where only the address is needed. Signing happens
 * here: only signatures travel. `coin trail` verifies every hop's signature
 * locally, so it trusts the ledger for nothing but the data.
 *
 * Exit status: as every kcobra command; a ledger refusal (double spend, bad
 * signature, insufficient funds...) is 5 with the ledger's message, and a
 * failed audit is 1. */
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "kcobra_common.h"
#include "kcobra_ledger_hold.h"
#include "kcobra_ledger_replicas.h"
#include "kcobra_settings.h"
#include "kcobra_wallets.h"
#include "ledger/client.h"
#include "ledger/config.h"
#include "ledger/serve.h"
#include "ledger/wallet.h"

#define WALLET_DIR_ENVIRONMENT "KCOBRA_WALLET_DIR"
#define WALLET_DIR_DEFAULT ".kingcobra/wallets" /* under $HOME */

enum {
    DENOMINATION_LIST_MAX = KCI_LEDGER_DENOMINATIONS_MAX,
    LEDGER_DRAIN_MS = 2000,
    AUDIT_TIMEOUT_MS_DEFAULT = 10 * 60 * 1000, /* unless --timeout says otherwise */
};

/* ---- shared -------------------------------------------------------------------- */

static int wallet_path(char path[PATH_MAX], const char *directory, const char *name)
{
    const char *home = getenv("HOME");
    const char *environment = getenv(WALLET_DIR_ENVIRONMENT);
    if (directory == NULL) directory = environment;
    int wrote = directory != NULL ? snprintf(path, PATH_MAX, "%s/%s.key", directory, name)
                                  : snprintf(path, PATH_MAX, "%s/%s/%s.key",
                                             home != NULL ? home : ".", WALLET_DIR_DEFAULT, name);
    return wrote > 0 && wrote < PATH_MAX ? KCOBRA_EXIT_OK : KCOBRA_EXIT_USAGE;
}

static int wallet_open(kci_wallet *wallet, const char *directory, const char *name)
{
    char path[PATH_MAX], error[KCI_LEDGER_ERROR_BYTES_MAX + PATH_MAX];
    if (!kci_wallet_name_valid(name)) {
        kcobra_error("'%s' is not a wallet name ([A-Za-z0-9_-], at most %d)", name,
                     KCI_WALLET_NAME_BYTES_MAX);
        return KCOBRA_EXIT_USAGE;
    }
    if (wallet_path(path, directory, name) != KCOBRA_EXIT_OK) {
        kcobra_error("wallet path too long");
        return KCOBRA_EXIT_USAGE;
    }
    if (kci_wallet_load(wallet, path, error, sizeof error) != KC_OK) {
        kcobra_error("%s", error);
        return KCOBRA_EXIT_FAILURE;
    }
    return KCOBRA_EXIT_OK;
}

/* An address, or the address of a wallet named so. */
static int address_resolve(uint8_t address[KCI_LEDGER_KEY_BYTES], const char *directory,
                           const char *text)
{
    if (kci_ledger_address_parse(address, text)) return KCOBRA_EXIT_OK;
    kci_wallet wallet;
    int status = wallet_open(&wallet, directory, text);
    if (status == KCOBRA_EXIT_OK) memcpy(address, wallet.public_key, KCI_LEDGER_KEY_BYTES);
    kci_wallet_wipe(&wallet);
    return status;
}

static int exit_for(kc_err err, const kci_ledger_refusal *refusal)
{
    if (err == KC_ERR_SERVICE && refusal->code != 0)
        kcobra_error("the ledger refused: %d %s", refusal->code, refusal->message);
    else
        kcobra_error("%s", refusal->message[0] ? refusal->message : kc_strerror(err));
    return kcobra_exit_for_error(err);
}

/* Calls the ledger and prints the reply (JSON, or through print). */
static int call_and_print(const kcobra_common *common, const char *operation, json_t *body,
                          void (*print)(const json_t *reply))
{
    natsConnection *connection = NULL;
    int status = kcobra_nats_connect(&connection, common);
    if (status != KCOBRA_EXIT_OK) {
        json_decref(body);
        return status;
    }
    json_t *reply = NULL;
    kci_ledger_refusal refusal;
    kc_err err = kci_ledger_call(&reply, connection, operation, body, common->timeout_ms, &refusal);
    if (err != KC_OK)
        status = exit_for(err, &refusal);
    else if (common->json || print == NULL)
        status = kcobra_json_print(json_incref(reply));
    else
        print(reply);
    json_decref(reply);
    kcobra_nats_finish(connection);
    return status;
}

/* "100,100,5" into denominations. */
static int parse_denominations(const kcobra_command *command, const char *text, uint64_t *out,
                               uint32_t *count)
{
    *count = 0;
    const char *cursor = text;
    while (cursor != NULL && *cursor != '\0') {
        char *end = NULL;
        unsigned long long value = strtoull(cursor, &end, 10);
        if (end == cursor || value == 0 || value > KCI_LEDGER_AMOUNT_MAX || cursor[0] == '-' ||
            (*end != ',' && *end != '\0') || *count == DENOMINATION_LIST_MAX)
            return kcobra_usage_error(command, "'%s' is not a list of positive amounts (1,5,10)",
                                      text);
        out[(*count)++] = value;
        cursor = *end == ',' ? end + 1 : end;
    }
    if (*count == 0) return kcobra_usage_error(command, "the list of amounts is empty");
    return KCOBRA_EXIT_OK;
}

static int parse_amount(const kcobra_command *command, const char *text, uint64_t *out)
{
    char *end = NULL;
    unsigned long long value = text != NULL ? strtoull(text, &end, 10) : 0;
    if (text == NULL || text[0] == '-' || end == text || *end != '\0' || value == 0 ||
        value > KCI_LEDGER_AMOUNT_MAX)
        return kcobra_usage_error(command,
                                  "--amount must be a positive integer (smallest units), at most "
                                  "%" PRIu64,
                                  KCI_LEDGER_AMOUNT_MAX);
    *out = value;
    return KCOBRA_EXIT_OK;
}

/* ================================================================== wallet */

static void print_balance(const json_t *reply)
{
    printf("%s  balance %" JSON_INTEGER_FORMAT " in %" JSON_INTEGER_FORMAT " coins\n",
           json_string_value(json_object_get(reply, "wallet")),
           json_integer_value(json_object_get(reply, "balance")),
           json_integer_value(json_object_get(reply, "coins")));
}

static void print_coins(const json_t *reply)
{
    const json_t *coins = json_object_get(reply, "coins");
    printf("%-36s  %s\n", "COIN", "DENOMINATION");
    for (size_t index = 0; index < json_array_size(coins); index++) {
        const json_t *coin = json_array_get(coins, index);
        printf("%-36s  %" JSON_INTEGER_FORMAT "\n", json_string_value(json_object_get(coin, "id")),
               json_integer_value(json_object_get(coin, "denomination")));
    }
    printf("%zu coins, balance %" JSON_INTEGER_FORMAT "%s\n", json_array_size(coins),
           json_integer_value(json_object_get(reply, "balance")),
           json_is_string(json_object_get(reply, "next")) ? " (more: see --json \"next\")" : "");
}

static int wallet_new(const kcobra_invocation *invocation, const char *directory, const char *name)
{
    char path[PATH_MAX], error[KCI_LEDGER_ERROR_BYTES_MAX + PATH_MAX];
    if (!kci_wallet_name_valid(name) || wallet_path(path, directory, name) != KCOBRA_EXIT_OK) {
        kcobra_error("'%s' is not a wallet name ([A-Za-z0-9_-], at most %d)", name,
                     KCI_WALLET_NAME_BYTES_MAX);
        return KCOBRA_EXIT_USAGE;
    }
    kci_wallet wallet;
    if (kci_wallet_create(&wallet, path, error, sizeof error) != KC_OK) {
        kcobra_error("%s", error);
        return KCOBRA_EXIT_FAILURE;
    }
    char address[KCI_LEDGER_ADDRESS_TEXT_BYTES + 1];
    kci_wallet_address(address, &wallet);
    kci_wallet_wipe(&wallet);
    if (invocation->common.json)
        return kcobra_json_print(
            json_pack("{s:s, s:s, s:s}", "name", name, "address", address, "file", path));
    printf("wallet %s: address %s (key in %s, mode 0600)\n", name, address, path);
    return KCOBRA_EXIT_OK;
}

static int wallet_show(const kcobra_invocation *invocation, const char *directory, const char *name)
{
    kci_wallet wallet;
    int status = wallet_open(&wallet, directory, name);
    if (status != KCOBRA_EXIT_OK) return status;
    char address[KCI_LEDGER_ADDRESS_TEXT_BYTES + 1], path[PATH_MAX];
    kci_wallet_address(address, &wallet);
    kci_wallet_wipe(&wallet);
    wallet_path(path, directory, name);
    if (invocation->common.json)
        return kcobra_json_print(
            json_pack("{s:s, s:s, s:s}", "name", name, "address", address, "file", path));
    printf("%s\n", address);
    return KCOBRA_EXIT_OK;
}

static const char WALLET_DESCRIPTION[] =
    "new NAME       makes a key pair in <wallet-dir>/NAME.key (mode 0600) and prints\n"
    "               its address (the public key, 64 hex digits)\n"
    "show NAME      prints the address\n"
    "list           the wallets of the directory: NAME ADDRESS\n"
    "balance W      the balance of W (a wallet name or an address)\n"
    "coins W        the coins W holds\n"
    "The wallet directory: --wallet-dir, else $KCOBRA_WALLET_DIR, else\n"
    "~/.kingcobra/wallets. Secret keys never leave the file: kcobra signs locally.\n"
    "\n"
    "Examples:\n"
    "  kcobra wallet new alice\n"
    "  kcobra wallet balance alice --json\n";

static int run_wallet(const kcobra_command *command, int argc, char **argv)
{
    const char *directory = NULL;
    const kcobra_flag flags[] = {
        {"wallet-dir", "DIR", KCOBRA_FLAG_STRING, &directory, "where wallet key files are"},
    };
    kcobra_invocation invocation;
    int status = kcobra_parse(command, flags, KCOBRA_ARRAY_COUNT(flags), argc, argv, &invocation);
    if (status != KCOBRA_EXIT_OK || invocation.help) return status;
    const char *action = invocation.positional[0];
    const char *name = invocation.positional[1];
    if (strcmp(action, "new") == 0) return wallet_new(&invocation, directory, name);
    if (strcmp(action, "show") == 0) return wallet_show(&invocation, directory, name);
    if (strcmp(action, "list") == 0) return kcobra_wallet_list(&invocation, directory);
    if (name == NULL) return kcobra_usage_error(command, "%s needs a wallet", action);
    bool balance = strcmp(action, "balance") == 0;
    if (!balance && strcmp(action, "coins") != 0)
        return kcobra_usage_error(command, "unknown action '%s': new, show, list, balance or coins",
                                  action);
    uint8_t address[KCI_LEDGER_KEY_BYTES];
    status = address_resolve(address, directory, name);
    if (status != KCOBRA_EXIT_OK) return status;
    char text[KCI_LEDGER_ADDRESS_TEXT_BYTES + 1];
    kci_ledger_hex(text, address, KCI_LEDGER_KEY_BYTES);
    return call_and_print(&invocation.common, balance ? "balance" : "coins",
                          json_pack("{s:s}", "wallet", text),
                          balance ? print_balance : print_coins);
}

const kcobra_command kcobra_command_wallet = {
    .name = "wallet",
    .synopsis = "wallet new|show|balance|coins <name|address> | list [--wallet-dir DIR]",
    .summary = "make and inspect MAC wallets",
    .description = WALLET_DESCRIPTION,
    .run = run_wallet,
    .positional_min = 1,
    .positional_max = 2,
};

/* ================================================================== mint */

static void print_issued(const json_t *reply)
{
    const json_t *issued = json_object_get(reply, "issued");
    for (size_t index = 0; index < json_array_size(issued); index++) {
        const json_t *grant = json_array_get(issued, index);
        const json_t *coins = json_object_get(grant, "coins");
        printf("issued %zu coins to %s (transfer %s)\n", json_array_size(coins),
               json_string_value(json_object_get(grant, "to")),
               json_string_value(json_object_get(grant, "transfer")));
        for (size_t coin = 0; coin < json_array_size(coins); coin++)
            printf(
                "  %s  %" JSON_INTEGER_FORMAT "\n",
                json_string_value(json_object_get(json_array_get(coins, coin), "id")),
                json_integer_value(json_object_get(json_array_get(coins, coin), "denomination")));
    }
}

static const char MINT_DESCRIPTION[] =
    "Issues new coins to a wallet: --denominations lists the coins (\"100,100,5\");\n"
    "or --amount A makes one coin of A, or A/D coins of D with --denomination D.\n"
    "The mint signs each coin's first hop. Restrict kc.ledger.mint with the\n"
    "broker's permissions so only operators can mint.\n"
    "\n"
    "Examples:\n"
    "  kcobra mint --to alice --denominations 100,50,10\n"
    "  kcobra mint --to alice --amount 1000 --denomination 100\n"
    "  kcobra mint --to alice --denominations 100 --id $(uuidgen)   # safe to send again\n";

static int run_mint(const kcobra_command *command, int argc, char **argv)
{
    const char *directory = NULL, *to = NULL, *list = NULL, *amount_text = NULL,
               *denomination_text = NULL, *id = NULL;
    const kcobra_flag flags[] = {
        {"id", "UUID", KCOBRA_FLAG_STRING, &id,
         "the mint's id: the same mint sent again with it mints nothing more"},
        {"to", "W", KCOBRA_FLAG_STRING, &to, "the wallet (name or address) that gets the coins"},
        {"denominations", "LIST", KCOBRA_FLAG_STRING, &list, "the coins, e.g. 100,50,10"},
        {"amount", "A", KCOBRA_FLAG_STRING, &amount_text, "the total, in smallest units"},
        {"denomination", "D", KCOBRA_FLAG_STRING, &denomination_text, "with --amount: coins of D"},
        {"wallet-dir", "DIR", KCOBRA_FLAG_STRING, &directory, "where wallet key files are"},
    };
    kcobra_invocation invocation;
    int status = kcobra_parse(command, flags, KCOBRA_ARRAY_COUNT(flags), argc, argv, &invocation);
    if (status != KCOBRA_EXIT_OK || invocation.help) return status;
    if (to == NULL) return kcobra_usage_error(command, "--to W is required");
    if ((list == NULL) == (amount_text == NULL))
        return kcobra_usage_error(command, "give --denominations or --amount (one of them)");
    uint64_t denominations[DENOMINATION_LIST_MAX];
    uint32_t count = 0;
    if (list != NULL) {
        status = parse_denominations(command, list, denominations, &count);
    } else {
        uint64_t amount = 0, each = 0;
        status = parse_amount(command, amount_text, &amount);
        if (status == KCOBRA_EXIT_OK && denomination_text != NULL)
            status = parse_amount(command, denomination_text, &each);
        if (status == KCOBRA_EXIT_OK && each == 0) each = amount;
        if (status == KCOBRA_EXIT_OK &&
            (each == 0 || amount % each != 0 || amount / each > DENOMINATION_LIST_MAX))
            return kcobra_usage_error(command,
                                      "--amount must be a multiple of --denomination, "
                                      "at most %d coins",
                                      DENOMINATION_LIST_MAX);
        for (uint64_t index = 0; status == KCOBRA_EXIT_OK && index < amount / each; index++)
            denominations[count++] = each;
    }
    uint8_t address[KCI_LEDGER_KEY_BYTES];
    if (status == KCOBRA_EXIT_OK) status = address_resolve(address, directory, to);
    if (status != KCOBRA_EXIT_OK) return status;
    char text[KCI_LEDGER_ADDRESS_TEXT_BYTES + 1];
    kci_ledger_hex(text, address, KCI_LEDGER_KEY_BYTES);
    json_t *asked = json_array();
    for (uint32_t index = 0; index < count; index++)
        json_array_append_new(asked, json_integer((json_int_t)denominations[index]));
    json_t *body = json_pack("{s:s, s:o}", "to", text, "denominations", asked);
    if (id != NULL) json_object_set_new(body, "id", json_string(id)); /* the ledger checks it */
    return call_and_print(&invocation.common, "mint", body, print_issued);
}

const kcobra_command kcobra_command_mint = {
    .name = "mint",
    .synopsis = "mint --to W (--denominations LIST | --amount A [--denomination D]) [--id UUID]",
    .summary = "issue new coins to a wallet",
    .description = MINT_DESCRIPTION,
    .run = run_mint,
    .positional_min = 0,
    .positional_max = 0,
};

/* ================================================================== exchange */

static void print_exchange(const json_t *reply)
{
    const json_t *issued = json_object_get(reply, "issued");
    printf("exchanged (transfer %s) for:\n", json_string_value(json_object_get(reply, "transfer")));
    const json_t *coins = json_object_get(issued, "coins");
    for (size_t index = 0; index < json_array_size(coins); index++)
        printf("  %s  %" JSON_INTEGER_FORMAT "\n",
               json_string_value(json_object_get(json_array_get(coins, index), "id")),
               json_integer_value(json_object_get(json_array_get(coins, index), "denomination")));
}

/* The wallet's coins named in list ("id,id"), with their denominations. */
static int pick_coins(const kcobra_command *command, const kci_ledger_coin *held,
                      uint32_t held_count, const char *list, kci_ledger_coin *chosen,
                      uint32_t *count)
{
    *count = 0;
    char copy[KCI_LEDGER_COINS_PER_TRANSFER_MAX * 37 + 1];
    if (snprintf(copy, sizeof copy, "%s", list) >= (int)sizeof copy)
        return kcobra_usage_error(command, "too many coins in --coins");
    char *save = NULL;
    for (char *token = strtok_r(copy, ",", &save); token != NULL;
         token = strtok_r(NULL, ",", &save)) {
        uint8_t id[KCI_LEDGER_ID_BYTES];
        if (!kci_ledger_id_parse(id, token))
            return kcobra_usage_error(command, "'%s' is not a coin id", token);
        bool found = false;
        for (uint32_t index = 0; index < held_count && !found; index++)
            if (memcmp(held[index].id, id, KCI_LEDGER_ID_BYTES) == 0) {
                chosen[(*count)++] = held[index];
                found = true;
            }
        if (!found) {
            kcobra_error("coin %s is not in this wallet", token);
            return KCOBRA_EXIT_FAILURE;
        }
        if (*count == KCI_LEDGER_COINS_PER_TRANSFER_MAX) break;
    }
    return *count > 0 ? KCOBRA_EXIT_OK : kcobra_usage_error(command, "--coins is empty");
}

static const char EXCHANGE_DESCRIPTION[] =
    "Change-making: gives the mint the --coins of wallet --from and takes back new\n"
    "coins of the --into denominations, of the same total, atomically.\n"
    "\n"
    "Example:\n"
    "  kcobra exchange --from alice --coins 0190...,0190... --into 50,25,25\n";

static int run_exchange(const kcobra_command *command, int argc, char **argv)
{
    const char *directory = NULL, *from = NULL, *coin_list = NULL, *into = NULL;
    const kcobra_flag flags[] = {
        {"from", "W", KCOBRA_FLAG_STRING, &from, "the wallet (name) that gives the coins"},
        {"coins", "IDS", KCOBRA_FLAG_STRING, &coin_list, "the coins to give, comma-separated"},
        {"into", "LIST", KCOBRA_FLAG_STRING, &into, "the denominations to take back"},
        {"wallet-dir", "DIR", KCOBRA_FLAG_STRING, &directory, "where wallet key files are"},
    };
    kcobra_invocation invocation;
    int status = kcobra_parse(command, flags, KCOBRA_ARRAY_COUNT(flags), argc, argv, &invocation);
    if (status != KCOBRA_EXIT_OK || invocation.help) return status;
    if (from == NULL || coin_list == NULL || into == NULL)
        return kcobra_usage_error(command, "--from, --coins and --into are required");
    uint64_t denominations[DENOMINATION_LIST_MAX];
    uint32_t denomination_count = 0;
    status = parse_denominations(command, into, denominations, &denomination_count);
    kci_wallet wallet;
    if (status == KCOBRA_EXIT_OK) status = wallet_open(&wallet, directory, from);
    if (status != KCOBRA_EXIT_OK) return status;
    natsConnection *connection = NULL;
    status = kcobra_nats_connect(&connection, &invocation.common);
    kci_ledger_coin *held = NULL, chosen[KCI_LEDGER_COINS_PER_TRANSFER_MAX];
    uint32_t held_count = 0, chosen_count = 0;
    uint8_t mint[KCI_LEDGER_KEY_BYTES];
    kci_ledger_refusal refusal;
    kc_err err = KC_OK;
    if (status == KCOBRA_EXIT_OK &&
        (err = kci_ledger_wallet_coins(&held, &held_count, mint, connection, wallet.public_key,
                                       invocation.common.timeout_ms, &refusal)) != KC_OK)
        status = exit_for(err, &refusal);
    if (status == KCOBRA_EXIT_OK)
        status = pick_coins(command, held, held_count, coin_list, chosen, &chosen_count);
    kci_ledger_transfer exchange;
    if (status == KCOBRA_EXIT_OK &&
        kci_ledger_exchange_make(&exchange, &wallet, mint, chosen, chosen_count, denominations,
                                 denomination_count) != KC_OK) {
        kcobra_error("cannot sign the exchange");
        status = KCOBRA_EXIT_FAILURE;
    }
    kci_wallet_wipe(&wallet);
    free(held);
    if (connection != NULL) kcobra_nats_finish(connection);
    if (status != KCOBRA_EXIT_OK) return status;
    json_t *body = kci_ledger_transfer_json(&exchange);
    kci_ledger_transfer_free(&exchange);
    return call_and_print(&invocation.common, "exchange", body, print_exchange);
}

const kcobra_command kcobra_command_exchange = {
    .name = "exchange",
    .synopsis = "exchange --from W --coins ID[,ID...] --into D[,D...]",
    .summary = "swap coins for coins of other denominations (same total)",
    .description = EXCHANGE_DESCRIPTION,
    .run = run_exchange,
    .positional_min = 0,
    .positional_max = 0,
};

/* ================================================================== pay */

static const char PAY_DESCRIPTION[] =
    "Pays --amount from wallet --from to --to (a wallet name or an address):\n"
    "picks coins, makes change through an exchange when no set of coins adds up\n"
    "to the amount, signs locally and transfers atomically. Prints the transfer\n"
    "id: a paid request carries it as Kc-Pay.\n"
    "\n"
    "Example:\n"
    "  kcobra pay --from alice --to 3b6a27bc...e1 --amount 25\n";

int kcobra_ledger_pay_run(const kcobra_command *command, const kcobra_invocation *invocation,
                          const char *directory, const char *from, const char *to,
                          const char *amount_text, int64_t hold_ms)
{
    uint64_t amount = 0;
    uint8_t payee[KCI_LEDGER_KEY_BYTES];
    kci_wallet wallet;
    int status = parse_amount(command, amount_text, &amount);
    if (status == KCOBRA_EXIT_OK) status = address_resolve(payee, directory, to);
    if (status == KCOBRA_EXIT_OK) status = wallet_open(&wallet, directory, from);
    if (status != KCOBRA_EXIT_OK) return status;
    natsConnection *connection = NULL;
    status = kcobra_nats_connect(&connection, &invocation->common);
    json_t *reply = NULL;
    bool exchanged = false;
    kci_ledger_refusal refusal;
    int64_t timeout_ms = invocation->common.timeout_ms;
    if (status == KCOBRA_EXIT_OK) {
        kc_err err = hold_ms > 0 ? kci_ledger_hold_pay(&reply, &exchanged, connection, &wallet,
                                                       payee, amount, hold_ms, timeout_ms, &refusal)
                                 : kci_ledger_pay(&reply, &exchanged, connection, &wallet, payee,
                                                  amount, timeout_ms, &refusal);
        if (err != KC_OK) status = exit_for(err, &refusal);
    }
    kci_wallet_wipe(&wallet);
    if (status == KCOBRA_EXIT_OK && invocation->common.json) {
        json_object_set_new(reply, "exchanged", json_boolean(exchanged));
        json_object_set_new(reply, "amount", json_integer((json_int_t)amount));
        if (hold_ms > 0) json_object_set_new(reply, "expires_in_ms", json_integer(hold_ms));
        status = kcobra_json_print(json_incref(reply));
    } else if (status == KCOBRA_EXIT_OK) { /* stdout: the bare id, for $(kcobra pay ...) */
        if (hold_ms > 0)
            fprintf(stderr, "held %" PRIu64 ": hold id (for kcobra request --pay-hold):\n", amount);
        else
            fprintf(stderr, "paid %" PRIu64 ": transfer id (for kcobra request --pay):\n", amount);
        printf("%s\n", json_string_value(json_object_get(reply, "transfer")));
    }
    json_decref(reply);
    if (connection != NULL) kcobra_nats_finish(connection);
    return status;
}

static int run_pay(const kcobra_command *command, int argc, char **argv)
{
    const char *directory = NULL, *from = NULL, *to = NULL, *amount_text = NULL;
    const kcobra_flag flags[] = {
        {"from", "W", KCOBRA_FLAG_STRING, &from, "the paying wallet (name)"},
        {"to", "ADDR", KCOBRA_FLAG_STRING, &to, "the payee (address or wallet name)"},
        {"amount", "A", KCOBRA_FLAG_STRING, &amount_text, "how much, in smallest units"},
        {"wallet-dir", "DIR", KCOBRA_FLAG_STRING, &directory, "where wallet key files are"},
    };
    kcobra_invocation invocation;
    int status = kcobra_parse(command, flags, KCOBRA_ARRAY_COUNT(flags), argc, argv, &invocation);
    if (status != KCOBRA_EXIT_OK || invocation.help) return status;
    if (from == NULL || to == NULL || amount_text == NULL)
        return kcobra_usage_error(command, "--from, --to and --amount are required");
    return kcobra_ledger_pay_run(command, &invocation, directory, from, to, amount_text, 0);
}

const kcobra_command kcobra_command_pay = {
    .name = "pay",
    .synopsis = "pay --from W --to ADDR --amount A",
    .summary = "pay an amount from a wallet (prints the transfer id for Kc-Pay)",
    .description = PAY_DESCRIPTION,
    .run = run_pay,
    .positional_min = 0,
    .positional_max = 0,
};

/* ================================================================== coin trail */

/* Checks every hop's signature here: the trail is proof, not testimony. */
static bool verify_hop(const json_t *hop, const uint8_t mint[KCI_LEDGER_KEY_BYTES], bool first)
{
    kci_ledger_request parsed;
    char error[KCI_LEDGER_ERROR_BYTES_MAX];
    const char *kind = json_string_value(json_object_get(hop, "kind"));
    bool exchange = kind != NULL && strcmp(kind, "exchange") == 0;
    bool issue = kind != NULL && strcmp(kind, "issue") == 0;
    bool hold = kind != NULL && strcmp(kind, "hold") == 0; /* a posted hold: it signs its expiry */
    json_t *copy =
        json_pack("{s:O, s:O, s:O, s:O, s:O, s:o}", "id", json_object_get(hop, "transfer"), "from",
                  json_object_get(hop, "from"), "amount", json_object_get(hop, "amount"), "time_ms",
                  json_object_get(hop, "time_ms"), "signature", json_object_get(hop, "signature"),
                  "coins", json_array());
    if (copy == NULL) return false;
    const json_t *coins = json_object_get(hop, "coins");
    for (size_t index = 0; index < json_array_size(coins); index++)
        json_array_append(json_object_get(copy, "coins"),
                          json_object_get(json_array_get(coins, index), "id"));
    if (exchange)
        json_object_set(copy, "denominations", json_object_get(hop, "denominations"));
    else
        json_object_set(copy, "to", json_object_get(hop, "to"));
    if (hold) json_object_set(copy, "expires_ms", json_object_get(hop, "expires_ms"));
    char *text = json_dumps(copy, JSON_COMPACT);
    json_decref(copy);
    bool valid =
        text != NULL && kci_ledger_request_parse(&parsed,
                                                 exchange ? KCI_LEDGER_OP_EXCHANGE
                                                 : hold   ? KCI_LEDGER_OP_HOLD
                                                          : KCI_LEDGER_OP_TRANSFER,
                                                 text, strlen(text), error, sizeof error) == KC_OK;
    free(text);
    if (!valid) return false;
    kci_ledger_transfer *transfer = &parsed.transfers[0];
    transfer->kind = (uint8_t)(issue      ? KCI_LEDGER_KIND_ISSUE
                               : exchange ? KCI_LEDGER_KIND_EXCHANGE
                               : hold     ? KCI_LEDGER_KIND_HOLD
                                          : KCI_LEDGER_KIND_TRANSFER);
    if (exchange) memcpy(transfer->to, mint, KCI_LEDGER_KEY_BYTES);
    for (uint32_t index = 0; index < transfer->coin_count; index++)
        for (size_t entry = 0; entry < json_array_size(coins); entry++) {
            uint8_t id[KCI_LEDGER_ID_BYTES];
            const json_t *coin = json_array_get(coins, entry);
            if (kci_ledger_id_parse(id, json_string_value(json_object_get(coin, "id"))) &&
                memcmp(id, transfer->coins[index].id, KCI_LEDGER_ID_BYTES) == 0)
                transfer->coins[index].denomination =
                    (uint64_t)json_integer_value(json_object_get(coin, "denomination"));
        }
    valid = kci_ledger_verify(transfer, transfer->from) &&
            (!first || (issue && memcmp(transfer->from, mint, KCI_LEDGER_KEY_BYTES) == 0));
    kci_ledger_request_free(&parsed);
    return valid;
}

/* Every hop's signature, and the chain: each hop paid by the previous
 * hop's payee, the last one ending at the owner (the mint once retired).
 * Returns how many hops fail; -1 if the reply is malformed. */
static int verify_trail(json_t *reply)
{
    uint8_t mint[KCI_LEDGER_KEY_BYTES];
    if (!kci_ledger_address_parse(mint, json_string_value(json_object_get(reply, "mint"))))
        return -1;
    json_t *hops = json_object_get(reply, "hops");
    int bad = 0;
    const char *previous_to = NULL;
    for (size_t index = 0; index < json_array_size(hops); index++) {
        json_t *hop = json_array_get(hops, index);
        const char *from = json_string_value(json_object_get(hop, "from"));
        bool chained =
            index == 0 || (previous_to != NULL && from != NULL && strcmp(from, previous_to) == 0);
        bool valid = chained && verify_hop(hop, mint, index == 0);
        json_object_set_new(hop, "verified", json_boolean(valid));
        bad += !valid;
        previous_to = json_string_value(json_object_get(hop, "to"));
    }
    const char *state = json_string_value(json_object_get(reply, "state"));
    const char *owner = json_string_value(json_object_get(reply, "owner"));
    char mint_text[KCI_LEDGER_ADDRESS_TEXT_BYTES + 1];
    kci_ledger_hex(mint_text, mint, KCI_LEDGER_KEY_BYTES);
    /* A held coin is still its payer's (held_for) until the hold ends. */
    const char *holder = state != NULL && strcmp(state, "live") == 0 ? owner
                         : state != NULL && strcmp(state, "held") == 0
                             ? json_string_value(json_object_get(reply, "held_for"))
                             : mint_text;
    if (json_array_size(hops) > 0 &&
        (previous_to == NULL || holder == NULL || strcmp(previous_to, holder) != 0))
        bad++; /* the trail does not end where the coin is */
    return bad;
}

static const char COIN_DESCRIPTION[] =
    "trail ID   the coin's chain of ownership back to the mint, every hop's\n"
    "           signature verified here (exit 1 if one does not verify).\n"
    "\n"
    "Example:\n"
    "  kcobra coin trail 0190b6e2-5c1a-7d3e-9f00-1234567890ab\n";

static int run_coin(const kcobra_command *command, int argc, char **argv)
{
    kcobra_invocation invocation;
    int status = kcobra_parse(command, NULL, 0, argc, argv, &invocation);
    if (status != KCOBRA_EXIT_OK || invocation.help) return status;
    if (strcmp(invocation.positional[0], "trail") != 0)
        return kcobra_usage_error(command, "unknown action '%s': trail", invocation.positional[0]);
    uint8_t id[KCI_LEDGER_ID_BYTES];
    if (!kci_ledger_id_parse(id, invocation.positional[1]))
        return kcobra_usage_error(command, "'%s' is not a coin id", invocation.positional[1]);
    natsConnection *connection = NULL;
    status = kcobra_nats_connect(&connection, &invocation.common);
    if (status != KCOBRA_EXIT_OK) return status;
    json_t *reply = NULL;
    kci_ledger_refusal refusal;
    kc_err err = kci_ledger_call(&reply, connection, "trail",
                                 json_pack("{s:s}", "coin", invocation.positional[1]),
                                 invocation.common.timeout_ms, &refusal);
    kcobra_nats_finish(connection);
    if (err != KC_OK) return exit_for(err, &refusal);
    int bad = verify_trail(reply);
    /* A reaped coin's trail was freed: there is nothing left to check. */
    bool reaped = json_array_size(json_object_get(reply, "hops")) == 0;
    json_object_set_new(reply, "verified", json_boolean(bad == 0 && !reaped));
    if (invocation.common.json) {
        status = kcobra_json_print(json_incref(reply));
    } else {
        printf("coin %s  denomination %" JSON_INTEGER_FORMAT "  %s  owner %s\n",
               json_string_value(json_object_get(reply, "coin")),
               json_integer_value(json_object_get(reply, "denomination")),
               json_string_value(json_object_get(reply, "state")),
               json_is_string(json_object_get(reply, "owner"))
                   ? json_string_value(json_object_get(reply, "owner"))
                   : "-");
        json_t *hops = json_object_get(reply, "hops");
        for (size_t index = 0; index < json_array_size(hops); index++) {
            json_t *hop = json_array_get(hops, index);
            const char *from = json_string_value(json_object_get(hop, "from"));
            const char *kind = json_string_value(json_object_get(hop, "kind"));
            printf("  %zu  %-8s %s  %.16s... -> %.16s...  %s\n", index, kind,
                   json_string_value(json_object_get(hop, "transfer")),
                   strcmp(kind, "issue") == 0 ? "mint" : from,
                   json_string_value(json_object_get(hop, "to")),
                   json_is_true(json_object_get(hop, "verified")) ? "signature ok"
                                                                  : "SIGNATURE BAD");
        }
        if (json_is_string(json_object_get(reply, "held_by")))
            printf("  held by hold %s until it is posted, voided or expires\n",
                   json_string_value(json_object_get(reply, "held_by")));
        printf("%s\n", reaped     ? "no hops: the reaper freed this retired coin's trail"
                       : bad == 0 ? "every hop verified back to the mint"
                                  : "the trail does NOT verify");
    }
    json_decref(reply);
    return status == KCOBRA_EXIT_OK && bad != 0 ? KCOBRA_EXIT_FAILURE : status;
}

const kcobra_command kcobra_command_coin = {
    .name = "coin",
    .synopsis = "coin trail <id>",
    .summary = "a coin's money trail, verified back to the mint",
    .description = COIN_DESCRIPTION,
    .run = run_coin,
    .positional_min = 2,
    .positional_max = 2,
};

/* ================================================================== ledger */

static void print_history(const json_t *reply)
{
    const json_t *edges = json_object_get(reply, "edges");
    printf("%-24s  %-36s  %-16s  %-16s  %s\n", "TIME", "TRANSFER", "FROM", "TO", "AMOUNT");
    for (size_t index = 0; index < json_array_size(edges); index++) {
        const json_t *edge = json_array_get(edges, index);
        char time[KCOBRA_TIME_TEXT_BYTES]; /* names where the wallet directory knows them */
        kcobra_time_rfc3339(time, json_integer_value(json_object_get(edge, "time_ms")));
        const char *from = json_string_value(json_object_get(edge, "from"));
        const char *to = json_string_value(json_object_get(edge, "to"));
        const char *from_name = kcobra_wallet_name_of(from), *to_name = kcobra_wallet_name_of(to);
        printf("%-24s  %-36s  %-16.16s  %-16.16s  %" JSON_INTEGER_FORMAT "\n", time,
               json_string_value(json_object_get(edge, "transfer")),
               from_name != NULL ? from_name : from, to_name != NULL ? to_name : to,
               json_integer_value(json_object_get(edge, "amount")));
    }
    if (json_is_string(json_object_get(reply, "next")))
        printf("more: --after %s\n", json_string_value(json_object_get(reply, "next")));
}

static void print_audit(const json_t *reply)
{
    printf("audit %s: supply %" JSON_INTEGER_FORMAT ", balances %" JSON_INTEGER_FORMAT
           ", %" JSON_INTEGER_FORMAT " wallets, %" JSON_INTEGER_FORMAT
           " live coins, %" JSON_INTEGER_FORMAT " transfers verified, %" JSON_INTEGER_FORMAT
           " hops checked\n",
           json_is_true(json_object_get(reply, "ok")) ? "passed" : "FAILED",
           json_integer_value(json_object_get(reply, "supply")),
           json_integer_value(json_object_get(reply, "balances_total")),
           json_integer_value(json_object_get(reply, "wallets")),
           json_integer_value(json_object_get(reply, "coins_live")),
           json_integer_value(json_object_get(reply, "transfers_verified")),
           json_integer_value(json_object_get(reply, "hops_checked")));
    const json_t *problems = json_object_get(reply, "problems");
    for (size_t index = 0; index < json_array_size(problems); index++)
        printf("  problem: %s\n", json_string_value(json_array_get(problems, index)));
}

static int ledger_serve(const kcobra_invocation *invocation, const kci_ledger_settings *settings)
{
    kci_log_configure(KCI_LOG_INFO, true);
    sigset_t stop_signals;
    kcobra_stop_signals_block(&stop_signals);
    natsConnection *connection = NULL;
    int status = kcobra_nats_connect_long_running(&connection, &invocation->common);
    if (status != KCOBRA_EXIT_OK) return status;
    kci_ledger_config config = kci_ledger_settings_runtime(settings, invocation->common.node);
    kci_ledger *ledger = NULL;
    char error[KCI_LEDGER_ERROR_BYTES_MAX + PATH_MAX];
    kc_err err = kci_ledger_start(&ledger, connection, &config, error, sizeof error);
    if (err != KC_OK) {
        kcobra_error("%s", error);
        kcobra_nats_finish(connection);
        return KCOBRA_EXIT_FAILURE;
    }
    int signal_number = kcobra_stop_signal_wait(&stop_signals);
    kci_info("ledger: received %s: stopping", strsignal(signal_number));
    kci_ledger_stop(ledger, LEDGER_DRAIN_MS);
    kcobra_nats_finish(connection);
    return KCOBRA_EXIT_OK;
}

static const char LEDGER_DESCRIPTION[] =
    "serve --dir DIR    run the ledger service on kc.ledger.> against --server, state\n"
    "                   in DIR (LMDB, the mint key mint.key 0600); stops on SIGTERM\n"
    "history            the money-flow edges (payer, payee, amount, time), paged\n"
    "audit              check supply = balances, every trail's signatures back to\n"
    "                   the mint, no coin with two owners (exit 1 if it fails);\n"
    "                   waits up to 10m unless --timeout is given\n"
    "audit --replicas   storage jetstream: every replica's state digest compared at\n"
    "                   the same log entry (exit 1 if one differs)\n"
    "hold               escrow: --from W --to ADDR --amount A [--expires D] holds W's\n"
    "                   coins for ADDR until the payee posts or voids it, or it\n"
    "                   expires (default 10m); prints the hold id (Kc-Pay-Hold)\n"
    "post, void         --hold ID --wallet W [--request KC-ID]: the payee W takes the\n"
    "                   held coins (post) or gives them back (void)\n"
    "\n"
    "Examples:\n"
    "  kcobra ledger serve --dir /var/lib/kingcobra/ledger --server nats://10.0.0.5:4222\n"
    "  kcobra ledger history --since-ms 1763700000000 --json\n"
    "  kcobra ledger audit\n"
    "  kcobra ledger serve --dir DIR --storage jetstream --server nats://a:4222,nats://b:4222\n"
    "  kcobra ledger audit --replicas\n"
    "  kcobra ledger hold --from alice --to shop --amount 5 --expires 2m\n"
    "  kcobra ledger void --hold 0190... --wallet shop\n";

static int ledger_action(const kcobra_command *command, int argc, char **argv,
                         kci_ledger_settings *settings)
{
    const char *after = NULL;
    int64_t since_ms = 0, limit = 0;
    bool replicas = false;
    kcobra_hold_arguments hold = {0};
    const kcobra_flag extra[] = {
        {"from", "W", KCOBRA_FLAG_STRING, &hold.from, "hold: the paying wallet (name)"},
        {"to", "ADDR", KCOBRA_FLAG_STRING, &hold.to, "hold: the payee (address or wallet name)"},
        {"amount", "A", KCOBRA_FLAG_STRING, &hold.amount_text, "hold: how much"},
        {"expires", "DURATION", KCOBRA_FLAG_DURATION, &hold.expires_ms,
         "hold: when it returns to the payer unless settled (default 10m, at most 7 days)"},
        {"hold", "ID", KCOBRA_FLAG_STRING, &hold.hold, "post, void: the hold"},
        {"wallet", "W", KCOBRA_FLAG_STRING, &hold.wallet, "post, void: the payee's wallet"},
        {"request", "KC-ID", KCOBRA_FLAG_STRING, &hold.request,
         "post, void: the request the hold was claimed for"},
        {"wallet-dir", "DIR", KCOBRA_FLAG_STRING, &hold.directory, "where wallet key files are"},
        {"replicas", NULL, KCOBRA_FLAG_BOOL, &replicas,
         "audit: compare the replicas' state digests at the same log entry (storage jetstream)"},
        {"since-ms", "MS", KCOBRA_FLAG_COUNT, &since_ms, "history: edges from this Unix ms"},
        {"after", "CURSOR", KCOBRA_FLAG_STRING, &after, "history: the \"next\" of a page"},
        {"limit", "N", KCOBRA_FLAG_COUNT, &limit, "history: edges per page (default 10000)"},
    };
    size_t key_count = 0;
    const kci_config_key *keys = kci_ledger_settings_keys(&key_count);
    kcobra_invocation invocation;
    int status = kcobra_settings_parse(command, argc, argv, keys, key_count, settings, extra,
                                       KCOBRA_ARRAY_COUNT(extra), &invocation);
    if (status != KCOBRA_EXIT_OK || invocation.help) return status;
    char error[KCI_CONFIG_MESSAGE_BYTES_MAX] = "";
    if (kci_ledger_settings_check(settings, error, sizeof error) != KC_OK)
        return kcobra_usage_error(command, "%s", error);
    const char *action = invocation.positional[0];
    if (strcmp(action, "serve") == 0) {
        if (settings->dir == NULL) return kcobra_usage_error(command, "serve needs --dir DIR");
        return ledger_serve(&invocation, settings);
    }
    if (strcmp(action, "history") == 0) {
        json_t *body = json_object();
        if (since_ms > 0) json_object_set_new(body, "since_ms", json_integer(since_ms));
        if (after != NULL) json_object_set_new(body, "after", json_string(after));
        if (limit > 0) json_object_set_new(body, "limit", json_integer(limit));
        return call_and_print(&invocation.common, "history", body, print_history);
    }
    if (strcmp(action, "audit") == 0 && replicas)
        return kcobra_ledger_audit_replicas(&invocation.common);
    if (strcmp(action, "audit") == 0) {
        natsConnection *connection = NULL;
        status = kcobra_nats_connect(&connection, &invocation.common);
        if (status != KCOBRA_EXIT_OK) return status;
        json_t *reply = NULL;
        kci_ledger_refusal refusal;
        /* The audit checks every signature: minutes on a large ledger. */
        int64_t timeout_ms = invocation.common.timeout_ms == KCOBRA_TIMEOUT_MS_DEFAULT
                                 ? AUDIT_TIMEOUT_MS_DEFAULT
                                 : invocation.common.timeout_ms;
        kc_err err = kci_ledger_call(&reply, connection, "audit", NULL, timeout_ms, &refusal);
        kcobra_nats_finish(connection);
        if (err != KC_OK) return exit_for(err, &refusal);
        bool ok = json_is_true(json_object_get(reply, "ok"));
        if (invocation.common.json)
            kcobra_json_print(json_incref(reply));
        else
            print_audit(reply);
        json_decref(reply);
        return ok ? KCOBRA_EXIT_OK : KCOBRA_EXIT_FAILURE;
    }
    if (strcmp(action, "hold") == 0 || strcmp(action, "post") == 0 || strcmp(action, "void") == 0)
        return kcobra_ledger_hold_run(command, &invocation, action, &hold);
    return kcobra_usage_error(
        command, "unknown action '%s': serve, history, audit, hold, post or void", action);
}

static int run_ledger(const kcobra_command *command, int argc, char **argv)
{
    kci_ledger_settings settings;
    if (kci_ledger_settings_init(&settings, NULL) != KC_OK) {
        kcobra_error("out of memory");
        return KCOBRA_EXIT_FAILURE;
    }
    int status = ledger_action(command, argc, argv, &settings);
    kci_ledger_settings_free(&settings);
    return status;
}

const kcobra_command kcobra_command_ledger = {
    .name = "ledger",
    .synopsis = "ledger serve --dir DIR | history [--since-ms MS] | audit | hold | post | void",
    .summary = "run the ledger, read the money flow, audit it",
    .description = LEDGER_DESCRIPTION,
    .run = run_ledger,
    .positional_min = 1,
    .positional_max = 1,
};

/* ---- for kcobra_ledger_hold.c --------------------------------------------------- */

int kcobra_ledger_wallet_open(kci_wallet *wallet, const char *directory, const char *name)
{
    return wallet_open(wallet, directory, name);
}

int kcobra_ledger_exit_for(kc_err err, const kci_ledger_refusal *refusal)
{
    return exit_for(err, refusal);
}
