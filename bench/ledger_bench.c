/* ledger_bench.c - acknowledged, durable transfers per second through the
 * ledger service (bench/run_ledger.sh drives it beside PostgreSQL).
 *
 * Setup, untimed: --wallets key pairs in memory; --clients x --coins coins
 * of 1 minted to random wallets (mint grants, 1,000 per request); each
 * client owns its coins' futures: it pre-signs --transfers transfers, each
 * one coin from the coin's current owner (a random wallet) to a random
 * payee, in an order that is valid when applied in order.
 * Timed: every client sends its transfers in kc.ledger.transfer.batch
 * requests of --batch, one at a time on its own connection, and waits for
 * the acknowledgement (the ledger replies after the LMDB commit). A
 * transfer's latency is its batch's round trip.
 *
 * Prints one JSON object: transfers acknowledged, refused, seconds,
 * transfers_per_s, p50_ms, p99_ms, and audit_ok (with --audit: the
 * ledger's audit after the run, untimed: every signature re-checked, supply
 * equal to the balances, one owner per coin).
 *
 * --rate R --seconds S: offered load instead of as fast as it goes: the
 * clients send their batches on a fixed schedule, R transfers/s in all for
 * S seconds, and a batch's latency counts from when it was due.
 *
 * --verify-limit THREADS [--seconds S]: no ledger; the verification limit
 * instead (verify_limit.c), which run_ledger.sh divides the ledger by. */
#include <getopt.h>
#include <inttypes.h>
#include <nats/nats.h>
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ledger/client.h"
#include "verify_limit.h"

enum {
    CLIENTS_MAX = 256,
    MINT_GRANTS_PER_REQUEST = 1000,
    CALL_TIMEOUT_MS = 60000,
    AUDIT_TIMEOUT_MS = 10 * 60 * 1000,
};

typedef struct options {
    const char *server;
    int wallet_count;
    int client_count;
    int coins_per_client;
    int transfers_per_client;
    int batch;
    bool audit;               /* after the run, ask the ledger to audit itself (untimed) */
    int verify_limit_threads; /* > 0: only measure the verification limit */
    double seconds;           /* the limit's loop; with rate, the run's length */
    double rate;              /* > 0: transfers/s offered in all, on a fixed schedule */
} options;

typedef struct client {
    const options *config;
    const kci_wallet *wallets;
    kci_ledger_coin *coins; /* this client's coins */
    int *owners;            /* wallet index of each coin */
    char **batches;         /* the pre-signed batch bodies */
    int batch_count;
    int64_t *latency_ns; /* per batch */
    int64_t acknowledged;
    int64_t refused;
    int64_t failed_batches;
    pthread_barrier_t *start;
    int index; /* spreads the clients' schedules over an interval (--rate) */
} client;

static int64_t now_ns(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (int64_t)now.tv_sec * 1000000000 + now.tv_nsec;
}

static natsConnection *connect_to(const char *server)
{
    natsConnection *connection = NULL;
    natsStatus status = natsConnection_ConnectTo(&connection, server);
    if (status != NATS_OK) {
        fprintf(stderr, "ledger_bench: cannot connect to %s: %s\n", server,
                natsStatus_GetText(status));
        exit(1);
    }
    return connection;
}

static void mint_all(natsConnection *connection, const options *config, const kci_wallet *wallets,
                     client *clients)
{
    int total = config->client_count * config->coins_per_client;
    for (int first = 0; first < total; first += MINT_GRANTS_PER_REQUEST) {
        json_t *grants = json_array();
        int count =
            total - first < MINT_GRANTS_PER_REQUEST ? total - first : MINT_GRANTS_PER_REQUEST;
        for (int index = 0; index < count; index++) {
            int coin = first + index;
            client *owner = &clients[coin % config->client_count];
            int slot = coin / config->client_count;
            owner->owners[slot] = (int)randombytes_uniform((uint32_t)config->wallet_count);
            char address[65];
            kci_ledger_hex(address, wallets[owner->owners[slot]].public_key, 32);
            json_array_append_new(grants,
                                  json_pack("{s:s, s:[i]}", "to", address, "denominations", 1));
        }
        json_t *reply = NULL;
        kci_ledger_refusal refusal;
        if (kci_ledger_call(&reply, connection, "mint", json_pack("{s:o}", "grants", grants),
                            CALL_TIMEOUT_MS, &refusal) != KC_OK) {
            fprintf(stderr, "ledger_bench: mint failed: %s\n", refusal.message);
            exit(1);
        }
        json_t *issued = json_object_get(reply, "issued");
        for (int index = 0; index < count; index++) {
            int coin = first + index;
            client *owner = &clients[coin % config->client_count];
            json_t *entry =
                json_array_get(json_object_get(json_array_get(issued, index), "coins"), 0);
            kci_ledger_id_parse(owner->coins[coin / config->client_count].id,
                                json_string_value(json_object_get(entry, "id")));
            owner->coins[coin / config->client_count].denomination = 1;
        }
        json_decref(reply);
    }
}

/* Pre-signs the client's transfers into batch bodies. */
static void presign(client *self)
{
    const options *config = self->config;
    self->batch_count = (config->transfers_per_client + config->batch - 1) / config->batch;
    self->batches = calloc((size_t)self->batch_count, sizeof *self->batches);
    self->latency_ns = calloc((size_t)self->batch_count, sizeof *self->latency_ns);
    for (int batch = 0; batch < self->batch_count; batch++) {
        json_t *list = json_array();
        for (int index = 0; index < config->batch; index++) {
            if (batch * config->batch + index >= config->transfers_per_client) break;
            int coin = (int)randombytes_uniform((uint32_t)config->coins_per_client);
            int payer = self->owners[coin], payee;
            do {
                payee = (int)randombytes_uniform((uint32_t)config->wallet_count);
            } while (payee == payer);
            kci_ledger_transfer transfer;
            kci_ledger_transfer_make(&transfer, &self->wallets[payer],
                                     self->wallets[payee].public_key, &self->coins[coin], 1);
            json_array_append_new(list, kci_ledger_transfer_json(&transfer));
            kci_ledger_transfer_free(&transfer);
            self->owners[coin] = payee;
        }
        json_t *body = json_pack("{s:o}", "transfers", list);
        self->batches[batch] = json_dumps(body, JSON_COMPACT);
        json_decref(body);
    }
}

/* With --rate, when batch is due (open loop: a late reply does not push
 * the schedule back, and the latency counts from when it was due, so a
 * queue that builds up shows); else now. */
static int64_t due_ns(const client *self, int64_t started_ns, int batch)
{
    const options *config = self->config;
    if (config->rate <= 0) return now_ns();
    double interval_ns = (double)config->batch * config->client_count * 1e9 / config->rate;
    int64_t due =
        started_ns + (int64_t)(interval_ns * (batch + (double)self->index / config->client_count));
    struct timespec until = {.tv_sec = due / 1000000000, .tv_nsec = due % 1000000000};
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &until, NULL) != 0) {
    }
    return due;
}

static void *client_main(void *argument)
{
    client *self = argument;
    natsConnection *connection = connect_to(self->config->server);
    pthread_barrier_wait(self->start);
    int64_t started_ns = now_ns();
    for (int batch = 0; batch < self->batch_count; batch++) {
        int64_t sent_ns = due_ns(self, started_ns, batch);
        natsMsg *reply = NULL;
        natsStatus status = natsConnection_RequestString(
            &reply, connection, "kc.ledger.transfer.batch", self->batches[batch], CALL_TIMEOUT_MS);
        self->latency_ns[batch] = now_ns() - sent_ns;
        json_t *body = status == NATS_OK ? json_loadb(natsMsg_GetData(reply),
                                                      (size_t)natsMsg_GetDataLength(reply), 0, NULL)
                                         : NULL;
        json_t *applied = json_object_get(body, "applied");
        if (json_is_integer(applied)) {
            self->acknowledged += json_integer_value(applied);
            self->refused += json_integer_value(json_object_get(body, "refused"));
        } else {
            self->failed_batches++;
        }
        json_decref(body);
        natsMsg_Destroy(reply);
    }
    natsConnection_Destroy(connection);
    return NULL;
}

static int compare_int64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

/* The latency below which fraction of transfers were acknowledged: each
 * batch's round trip counts once per transfer in it (all batches but the
 * last of a client are full, so batches weigh alike). */
static double percentile_ms(int64_t *samples, size_t count, double fraction)
{
    if (count == 0) return 0;
    qsort(samples, count, sizeof *samples, compare_int64);
    size_t index = (size_t)(fraction * (double)(count - 1));
    return (double)samples[index] / 1e6;
}

static void parse_options(int argc, char **argv, options *config)
{
    *config = (options){.server = "nats://127.0.0.1:4222",
                        .wallet_count = 10000,
                        .client_count = 16,
                        .coins_per_client = 500,
                        .transfers_per_client = 2000,
                        .batch = 64,
                        .seconds = 3};
    static const struct option long_options[] = {
        {"server", required_argument, NULL, 's'},
        {"wallets", required_argument, NULL, 'w'},
        {"clients", required_argument, NULL, 'c'},
        {"coins", required_argument, NULL, 'k'},
        {"transfers", required_argument, NULL, 't'},
        {"batch", required_argument, NULL, 'b'},
        {"audit", no_argument, NULL, 'a'},
        {"verify-limit", required_argument, NULL, 'v'},
        {"seconds", required_argument, NULL, 'S'},
        {"rate", required_argument, NULL, 'r'},
        {NULL, 0, NULL, 0},
    };
    int option;
    while ((option = getopt_long(argc, argv, "", long_options, NULL)) != -1) {
        switch (option) {
        case 's': config->server = optarg; break;
        case 'w': config->wallet_count = atoi(optarg); break;
        case 'c': config->client_count = atoi(optarg); break;
        case 'k': config->coins_per_client = atoi(optarg); break;
        case 't': config->transfers_per_client = atoi(optarg); break;
        case 'b': config->batch = atoi(optarg); break;
        case 'a': config->audit = true; break;
        case 'v': config->verify_limit_threads = atoi(optarg); break;
        case 'S': config->seconds = atof(optarg); break;
        case 'r': config->rate = atof(optarg); break;
        default:
            fprintf(stderr, "usage: ledger_bench --server URL [--wallets N] [--clients N] "
                            "[--coins N] [--transfers N] [--batch N] [--audit]\n"
                            "       [--rate TRANSFERS_PER_S --seconds S]\n"
                            "       ledger_bench --verify-limit THREADS [--seconds S]\n");
            exit(2);
        }
    }
    if (config->wallet_count < 2 || config->client_count < 1 ||
        config->client_count > CLIENTS_MAX || config->coins_per_client < 1 ||
        config->transfers_per_client < 1 || config->batch < 1 ||
        config->batch > KCI_LEDGER_BATCH_MAX) {
        fprintf(stderr, "ledger_bench: an option is out of range\n");
        exit(2);
    }
}

int main(int argc, char **argv)
{
    options config;
    parse_options(argc, argv, &config);
    if (config.rate > 0) /* as many as the schedule sends in --seconds */
        config.transfers_per_client = (int)(config.rate * config.seconds / config.client_count) + 1;
    if (sodium_init() < 0) return 1;
    if (config.verify_limit_threads > 0)
        return kc_bench_verify_limit(config.verify_limit_threads, config.seconds);
    kci_wallet *wallets = calloc((size_t)config.wallet_count, sizeof *wallets);
    for (int index = 0; index < config.wallet_count; index++)
        crypto_sign_keypair(wallets[index].public_key, wallets[index].secret_key);
    client *clients = calloc((size_t)config.client_count, sizeof *clients);
    pthread_barrier_t start;
    pthread_barrier_init(&start, NULL, (unsigned)config.client_count + 1);
    for (int index = 0; index < config.client_count; index++) {
        clients[index] =
            (client){.config = &config, .wallets = wallets, .start = &start, .index = index};
        clients[index].coins = calloc((size_t)config.coins_per_client, sizeof(kci_ledger_coin));
        clients[index].owners = calloc((size_t)config.coins_per_client, sizeof(int));
    }
    natsConnection *connection = connect_to(config.server);
    mint_all(connection, &config, wallets, clients);
    natsConnection_Destroy(connection);
    for (int index = 0; index < config.client_count; index++)
        presign(&clients[index]);
    pthread_t threads[CLIENTS_MAX];
    for (int index = 0; index < config.client_count; index++)
        pthread_create(&threads[index], NULL, client_main, &clients[index]);
    pthread_barrier_wait(&start);
    int64_t started_ns = now_ns();
    for (int index = 0; index < config.client_count; index++)
        pthread_join(threads[index], NULL);
    double seconds = (double)(now_ns() - started_ns) / 1e9;
    int64_t acknowledged = 0, refused = 0, failed = 0;
    size_t sample_count = 0;
    int64_t *samples =
        calloc((size_t)config.client_count * (size_t)clients[0].batch_count, sizeof *samples);
    for (int index = 0; index < config.client_count; index++) {
        acknowledged += clients[index].acknowledged;
        refused += clients[index].refused;
        failed += clients[index].failed_batches;
        for (int batch = 0; batch < clients[index].batch_count; batch++)
            samples[sample_count++] = clients[index].latency_ns[batch];
    }
    const char *audit = "null"; /* not asked */
    if (config.audit) {
        natsConnection *auditor = connect_to(config.server);
        json_t *reply = NULL;
        kci_ledger_refusal refusal;
        kc_err err = kci_ledger_call(&reply, auditor, "audit", NULL, AUDIT_TIMEOUT_MS, &refusal);
        audit = err == KC_OK && json_is_true(json_object_get(reply, "ok")) ? "true" : "false";
        json_decref(reply);
        natsConnection_Destroy(auditor);
    }
    double p50 = percentile_ms(samples, sample_count, 0.50);
    double p99 = percentile_ms(samples, sample_count, 0.99);
    printf("{\"transfers\":%" PRId64 ",\"refused\":%" PRId64 ",\"failed_batches\":%" PRId64
           ",\"seconds\":%.3f,\"transfers_per_s\":%.0f,\"p50_ms\":%.2f,\"p99_ms\":%.2f,"
           "\"clients\":%d,\"batch\":%d,\"wallets\":%d,\"audit_ok\":%s}\n",
           acknowledged, refused, failed, seconds, (double)acknowledged / seconds, p50, p99,
           config.client_count, config.batch, config.wallet_count, audit);
    nats_Close();
    return failed == 0 && refused == 0 && strcmp(audit, "false") != 0 ? 0 : 1;
}
