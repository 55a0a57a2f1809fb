/*
 * lease_contender.c - one contender for a lease (src/service/lease.h), run as
 * its own process by tests/integration/lease.c so that a test can kill -9 it
 * or stop it with SIGSTOP like a real persister or ledger.
 *
 *   lease_contender SERVERS BUCKET KEY NODE TTL_MS RENEW_MS MARGIN_MS REPLICAS
 *
 * SERVERS is a comma-separated URL list, tried in that order (no
 * randomising: the test places each contender on a server). Prints one line
 * per event on stdout, flushed, with CLOCK_MONOTONIC milliseconds (one clock
 * for every process on the machine, so the test can compare them):
 *   ready HOLDER                  the lease is open (standing by)
 *   acquired TERM MS              on_acquired
 *   lost TERM deposed|expired|released MS     on_lost
 *   active TERM MS                every SAMPLE_INTERVAL_MS while it holds:
 *                                 MS is a clock reading taken after the lease
 *                                 said it holds until later than MS
 *   closed                        after SIGTERM: the lease was released
 * Exits 1 (with a line on stderr) if it cannot connect or open the lease.
 * Dies with its parent (PR_SET_PDEATHSIG).
 */
#include <nats/nats.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "common/clock.h"
#include "kingcobra/kingcobra.h"
#include "service/lease.h"

enum {
    ARGUMENT_COUNT = 9,
    SERVERS_MAX = 8,
    SERVERS_TEXT_BYTES_MAX = 1024,
    SAMPLE_INTERVAL_MS = 10,
    RECONNECT_WAIT_MS = 100,
    CONNECT_TIMEOUT_MS = 2000,
    /* A server stopped with SIGSTOP keeps its sockets open: pings notice it. */
    PING_INTERVAL_MS = 500,
    PINGS_OUTSTANDING_MAX = 2,
    CLOSE_TIMEOUT_MS = 2000,
};

static atomic_bool stopping;

static void on_term(int signal_number)
{
    (void)signal_number;
    atomic_store(&stopping, true);
}

static void on_acquired(void *closure, uint64_t term)
{
    (void)closure;
    printf("acquired %llu %lld\n", (unsigned long long)term, (long long)kci_monotonic_ms());
    fflush(stdout);
}

static void on_lost(void *closure, uint64_t term, kci_lease_loss loss)
{
    (void)closure;
    static const char *const reasons[] = {"?", "deposed", "expired", "released"};
    printf("lost %llu %s %lld\n", (unsigned long long)term, reasons[loss],
           (long long)kci_monotonic_ms());
    fflush(stdout);
}

static natsConnection *connect_to(char *servers_text)
{
    const char *servers[SERVERS_MAX];
    int server_count = 0;
    for (char *token = strtok(servers_text, ","); token != NULL && server_count < SERVERS_MAX;
         token = strtok(NULL, ","))
        servers[server_count++] = token;
    natsOptions *options = NULL;
    natsConnection *connection = NULL;
    natsStatus status = natsOptions_Create(&options);
    if (status == NATS_OK) status = natsOptions_SetServers(options, servers, server_count);
    if (status == NATS_OK) status = natsOptions_SetNoRandomize(options, true);
    if (status == NATS_OK) status = natsOptions_SetMaxReconnect(options, -1);
    if (status == NATS_OK) status = natsOptions_SetReconnectWait(options, RECONNECT_WAIT_MS);
    if (status == NATS_OK) status = natsOptions_SetTimeout(options, CONNECT_TIMEOUT_MS);
    if (status == NATS_OK) status = natsOptions_SetPingInterval(options, PING_INTERVAL_MS);
    if (status == NATS_OK) status = natsOptions_SetMaxPingsOut(options, PINGS_OUTSTANDING_MAX);
    if (status == NATS_OK) status = natsConnection_Connect(&connection, options);
    natsOptions_Destroy(options);
    if (status != NATS_OK) fprintf(stderr, "contender: connect: %s\n", natsStatus_GetText(status));
    return connection;
}

/* Prints an "active" line every SAMPLE_INTERVAL_MS while held, until SIGTERM. */
static void sample_until_stopped(kci_lease *lease)
{
    while (!atomic_load(&stopping)) {
        uint64_t term = 0;
        int64_t valid_until_ms = kci_lease_valid_until(lease, &term);
        int64_t now_ms = kci_monotonic_ms(); /* after: a stale answer only shortens the claim */
        if (now_ms < valid_until_ms) {
            printf("active %llu %lld\n", (unsigned long long)term, (long long)now_ms);
            fflush(stdout);
        }
        usleep(SAMPLE_INTERVAL_MS * 1000);
    }
}

int main(int argc, char **argv)
{
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (argc != ARGUMENT_COUNT) {
        fprintf(stderr, "usage: %s SERVERS BUCKET KEY NODE TTL_MS RENEW_MS MARGIN_MS REPLICAS\n",
                argv[0]);
        return 2;
    }
    signal(SIGTERM, on_term);
    char servers[SERVERS_TEXT_BYTES_MAX];
    snprintf(servers, sizeof(servers), "%s", argv[1]);
    natsConnection *connection = connect_to(servers);
    if (connection == NULL) return 1;
    char holder[KCI_LEASE_HOLDER_BYTES_MAX + 1];
    kci_lease_holder_make(holder, sizeof(holder), argv[4]);
    kci_lease_config config;
    kci_lease_config_init(&config);
    config.bucket = argv[2];
    config.key = argv[3];
    config.holder = holder;
    config.ttl_ms = atoll(argv[5]);
    config.renew_ms = atoll(argv[6]);
    config.margin_ms = atoll(argv[7]);
    config.replicas = atoi(argv[8]);
    config.on_acquired = on_acquired;
    config.on_lost = on_lost;
    kci_lease *lease = NULL;
    kc_err err = kci_lease_open(&lease, connection, &config);
    if (err != KC_OK) {
        fprintf(stderr, "contender: %s\n", kc_last_error());
        natsConnection_Destroy(connection);
        return 1;
    }
    printf("ready %s\n", holder);
    fflush(stdout);
    sample_until_stopped(lease);
    kci_lease_close(lease);
    printf("closed\n");
    fflush(stdout);
    natsConnection_FlushTimeout(connection, CLOSE_TIMEOUT_MS);
    natsConnection_Destroy(connection);
    nats_Close();
    return 0;
}
