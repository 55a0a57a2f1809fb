/* ledger_replay.c - the ledger's state machine alone: replaying a log of
 * already-verified transfers into a fresh store (what a standby following
 * the replicated log and a restart catching up do), then a restart of the
 * store that holds them (bench/run_ledger_replay.sh).
 *
 * Setup, untimed: a store in a scratch directory gives the mint key; the
 * log is built in memory as the active ledger writes it (batch_codec.h): a
 * genesis, mint entries of one coin to each of --coins grants among
 * --wallets wallets, then --transfers transfers of one coin from its
 * current owner to a random payee, --entry transfers per entry, with
 * UUIDv7 ids as clients make them. The
 * transfers' signatures are random bytes: a replica never checks them (the
 * active ledger did before the entry was written), so the replay does the
 * same work a standby does. The genesis and the mints are applied untimed.
 *
 * Timed, on one thread: every transfer entry decoded
 * (kci_ledger_log_decode) and applied (kci_ledger_log_apply: one LMDB
 * write transaction per entry, committed and synced, as a standby that
 * keeps up does), or with --group N, N entries at a time in one
 * transaction (kci_ledger_log_apply_group, as catching up on a backlog). Then the store is
 * closed and the restart is timed: kci_ledger_store_open, the applied
 * position and the counters read back.
 *
 * Prints one JSON object: transfers, refused, entries, group, replay_s,
 * transfers_per_s, cpu_s and transfers_per_cpu_s (the replay thread's CPU
 * time: what one core does, whatever the neighbours take), restart_ms,
 * store_bytes. */
#include <dirent.h>
#include <getopt.h>
#include <inttypes.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "kingcobra/kingcobra.h"
#include "ledger/batch_apply.h"
#include "ledger/batch_codec.h"
#include "ledger/store.h"
#include "service/uuid.h"

enum { GRANTS_PER_ENTRY = 1000, ERROR_BYTES = 512, GROUP_MAX = 4096 };
#define MAP_BYTES ((uint64_t)16 << 30) /* address space; the file grows as needed */
#define NOW_MS ((int64_t)1800000000000)

typedef struct options {
    int64_t transfers;
    int wallets;
    int coins;
    int entry_transfers;
    int group; /* entries per LMDB transaction (kci_ledger_log_apply_group); 1: one each */
    const char *directory; /* NULL: a new one under /tmp, removed after */
} options;

typedef struct log_entry {
    uint8_t *bytes;
    size_t length;
} log_entry;

typedef struct world {
    const options *config;
    kci_ledger_store *store;
    kci_ledger_applied applied;
    uint8_t (*wallets)[KCI_LEDGER_KEY_BYTES];
    kci_ledger_coin *coins;
    int *owners;
    int64_t now_ms;
} world;

static int64_t now_ns(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (int64_t)now.tv_sec * 1000000000 + now.tv_nsec;
}

/* This thread's CPU time: on a shared machine the wall clock measures the
 * neighbours too, the CPU time what one core spends on the replay. */
static int64_t cpu_ns(void)
{
    struct timespec now;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &now);
    return (int64_t)now.tv_sec * 1000000000 + now.tv_nsec;
}

static void die(const char *what, const char *detail)
{
    fprintf(stderr, "ledger_replay: %s: %s\n", what, detail);
    exit(1);
}

static void entry_begin(world *w, kci_ledger_log_writer *writer)
{
    uint8_t id[KCI_LEDGER_ID_BYTES];
    randombytes_buf(id, sizeof id);
    kci_ledger_log_begin(writer, id, 1, ++w->now_ms, kci_ledger_store_mint_key(w->store));
}

static log_entry entry_finish(kci_ledger_log_writer *writer)
{
    if (kci_ledger_log_finish(writer) != KC_OK) die("encode", "out of memory");
    log_entry entry = {.bytes = writer->bytes, .length = writer->length};
    writer->bytes = NULL; /* the entry owns them now */
    kci_ledger_log_writer_free(writer);
    return entry;
}

/* Decodes and applies one entry; returns the ops refused. */
static int64_t apply(world *w, const log_entry *entry, kci_ledger_outcome *outcomes)
{
    kci_ledger_log_entry decoded;
    char error[ERROR_BYTES];
    if (kci_ledger_log_decode(&decoded, entry->bytes, entry->length, error, sizeof error) != KC_OK)
        die("decode", error);
    memset(outcomes, 0, decoded.op_count * sizeof *outcomes);
    if (kci_ledger_log_apply(w->store, &w->applied, w->applied.sequence + 1, &decoded, entry->bytes,
                             entry->length, outcomes) != KC_OK)
        die("apply", kc_last_error());
    int64_t refused = 0;
    for (uint32_t index = 0; index < decoded.op_count; index++)
        refused += outcomes[index].result != KCI_LEDGER_OK;
    kci_ledger_log_entry_free(&decoded);
    return refused;
}

/* Decodes entries[0..count) and applies them in one transaction. */
static void apply_group(world *w, const log_entry *entries, int64_t count)
{
    kci_ledger_log_entry decoded[GROUP_MAX];
    kci_ledger_log_item items[GROUP_MAX] = {{0}}; /* all set below; the compiler cannot tell */
    char error[ERROR_BYTES];
    for (int64_t index = 0; index < count; index++) {
        if (kci_ledger_log_decode(&decoded[index], entries[index].bytes, entries[index].length,
                                  error, sizeof error) != KC_OK)
            die("decode", error);
        items[index] = (kci_ledger_log_item){.entry = &decoded[index],
                                             .bytes = entries[index].bytes,
                                             .length = entries[index].length};
    }
    if (kci_ledger_log_apply_group(w->store, &w->applied, items, (uint32_t)count) != KC_OK)
        die("apply", kc_last_error());
    for (int64_t index = 0; index < count; index++)
        kci_ledger_log_entry_free(&decoded[index]);
}

/* The genesis and the mints, applied now (untimed). */
static void mint_all(world *w, kci_ledger_outcome *outcomes)
{
    kci_ledger_log_writer writer;
    entry_begin(w, &writer);
    log_entry genesis = entry_finish(&writer);
    apply(w, &genesis, outcomes);
    free(genesis.bytes);
    uint64_t one = 1;
    for (int first = 0; first < w->config->coins; first += GRANTS_PER_ENTRY) {
        int count = w->config->coins - first < GRANTS_PER_ENTRY ? w->config->coins - first
                                                                : GRANTS_PER_ENTRY;
        kci_ledger_grant grants[GRANTS_PER_ENTRY];
        uint8_t issue_ids[GRANTS_PER_ENTRY][KCI_LEDGER_ID_BYTES];
        kci_ledger_coin *issued[GRANTS_PER_ENTRY];
        for (int index = 0; index < count; index++) {
            int coin = first + index;
            w->owners[coin] = (int)randombytes_uniform((uint32_t)w->config->wallets);
            memcpy(grants[index].to, w->wallets[w->owners[coin]], KCI_LEDGER_KEY_BYTES);
            grants[index].denomination_count = 1;
            grants[index].denominations = &one;
            kci_ledger_issue_ids_make(issue_ids[index], &w->coins[coin], &one, 1);
            issued[index] = &w->coins[coin];
        }
        entry_begin(w, &writer);
        kci_ledger_log_put_mint(&writer, grants, (uint32_t)count,
                                (const uint8_t(*)[KCI_LEDGER_ID_BYTES])issue_ids, issued);
        log_entry entry = entry_finish(&writer);
        if (apply(w, &entry, outcomes) != 0) die("mint", "a grant was refused");
        free(entry.bytes);
    }
}

/* The transfer entries, in memory (untimed). */
static log_entry *build_log(world *w, int64_t *entry_count)
{
    const options *config = w->config;
    *entry_count = (config->transfers + config->entry_transfers - 1) / config->entry_transfers;
    log_entry *entries = calloc((size_t)*entry_count, sizeof *entries);
    if (entries == NULL) die("build", "out of memory");
    int64_t made = 0;
    for (int64_t index = 0; index < *entry_count; index++) {
        kci_ledger_log_writer writer;
        entry_begin(w, &writer);
        for (int op = 0; op < config->entry_transfers && made < config->transfers; op++, made++) {
            int coin = (int)randombytes_uniform((uint32_t)config->coins), payee;
            do {
                payee = (int)randombytes_uniform((uint32_t)config->wallets);
            } while (payee == w->owners[coin]);
            kci_ledger_transfer transfer = {.kind = KCI_LEDGER_KIND_TRANSFER,
                                            .amount = 1,
                                            .time_ms = w->now_ms,
                                            .coin_count = 1,
                                            .coins = &w->coins[coin]};
            kci_uuid id; /* as clients make them (client.c): time-ordered */
            kci_uuid_v7(&id);
            memcpy(transfer.id, id.bytes, KCI_LEDGER_ID_BYTES);
            randombytes_buf(transfer.signature, sizeof transfer.signature); /* never checked */
            memcpy(transfer.from, w->wallets[w->owners[coin]], KCI_LEDGER_KEY_BYTES);
            memcpy(transfer.to, w->wallets[payee], KCI_LEDGER_KEY_BYTES);
            kci_ledger_log_put_transfer(&writer, &transfer);
            w->owners[coin] = payee;
        }
        entries[index] = entry_finish(&writer);
    }
    return entries;
}

static uint64_t directory_bytes(const char *directory)
{
    uint64_t total = 0;
    DIR *listing = opendir(directory);
    for (struct dirent *item; listing != NULL && (item = readdir(listing)) != NULL;) {
        char path[4096];
        struct stat info;
        snprintf(path, sizeof path, "%s/%s", directory, item->d_name);
        if (item->d_name[0] != '.' && stat(path, &info) == 0)
            total += (uint64_t)info.st_blocks * 512;
    }
    if (listing != NULL) closedir(listing);
    return total;
}

static void store_open(world *w, const char *directory)
{
    char error[ERROR_BYTES];
    if (kci_ledger_store_open(&w->store, directory, MAP_BYTES, error, sizeof error) != KC_OK)
        die("open", error);
}

/* Closes and reopens the store as a restarting ledger does; returns ms. */
static double restart(world *w, const char *directory)
{
    kci_ledger_store_close(w->store);
    int64_t started_ns = now_ns();
    store_open(w, directory);
    kci_ledger_read *read = NULL;
    kci_ledger_applied applied;
    kci_ledger_counters counters;
    if (kci_ledger_read_begin(&read, w->store) != KC_OK ||
        kci_ledger_applied_get(read, &applied) != KC_OK ||
        kci_ledger_counters_get(read, &counters) != KC_OK)
        die("restart", kc_last_error());
    kci_ledger_read_end(read);
    double elapsed_ms = (double)(now_ns() - started_ns) / 1e6;
    if (applied.sequence != w->applied.sequence) die("restart", "the applied position differs");
    return elapsed_ms;
}

static void parse_options(int argc, char **argv, options *config)
{
    *config = (options){.transfers = 1000000,
                        .wallets = 10000,
                        .coins = 100000,
                        .entry_transfers = 1024,
                        .group = 1};
    static const struct option long_options[] = {
        {"transfers", required_argument, NULL, 't'},
        {"wallets", required_argument, NULL, 'w'},
        {"coins", required_argument, NULL, 'k'},
        {"entry", required_argument, NULL, 'e'},
        {"dir", required_argument, NULL, 'd'},
        {"group", required_argument, NULL, 'g'},
        {NULL, 0, NULL, 0},
    };
    int option;
    while ((option = getopt_long(argc, argv, "", long_options, NULL)) != -1) {
        switch (option) {
        case 't': config->transfers = atoll(optarg); break;
        case 'w': config->wallets = atoi(optarg); break;
        case 'k': config->coins = atoi(optarg); break;
        case 'e': config->entry_transfers = atoi(optarg); break;
        case 'd': config->directory = optarg; break;
        case 'g': config->group = atoi(optarg); break;
        default:
            fprintf(stderr, "usage: ledger_replay [--transfers N] [--wallets N] [--coins N] "
                            "[--entry N] [--group N] [--dir DIR]\n");
            exit(2);
        }
    }
    if (config->transfers < 1 || config->wallets < 2 || config->coins < 1 ||
        config->entry_transfers < 1 || config->entry_transfers > KCI_LEDGER_LOG_OPS_MAX ||
        config->group < 1 || config->group > GROUP_MAX) {
        fprintf(stderr, "ledger_replay: an option is out of range\n");
        exit(2);
    }
}

int main(int argc, char **argv)
{
    options config;
    parse_options(argc, argv, &config);
    if (sodium_init() < 0) return 1;
    char scratch[] = "/tmp/kc-ledger-replay-XXXXXX";
    const char *directory = config.directory;
    if (directory == NULL && (directory = mkdtemp(scratch)) == NULL) die("mkdtemp", "failed");
    world w = {.config = &config, .now_ms = NOW_MS};
    w.wallets = calloc((size_t)config.wallets, sizeof *w.wallets);
    w.coins = calloc((size_t)config.coins, sizeof *w.coins);
    w.owners = calloc((size_t)config.coins, sizeof *w.owners);
    size_t outcome_count =
        (size_t)(config.entry_transfers > GRANTS_PER_ENTRY ? config.entry_transfers
                                                           : GRANTS_PER_ENTRY);
    kci_ledger_outcome *outcomes = calloc(outcome_count, sizeof *outcomes);
    if (w.wallets == NULL || w.coins == NULL || w.owners == NULL || outcomes == NULL)
        die("setup", "out of memory");
    randombytes_buf(w.wallets, (size_t)config.wallets * sizeof *w.wallets);
    store_open(&w, directory);
    mint_all(&w, outcomes);
    int64_t entry_count = 0;
    log_entry *entries = build_log(&w, &entry_count);
    int64_t refused = 0, started_ns = now_ns(), started_cpu_ns = cpu_ns();
    for (int64_t index = 0; index < entry_count; index += config.group) {
        int64_t count = entry_count - index < config.group ? entry_count - index : config.group;
        if (config.group == 1)
            refused += apply(&w, &entries[index], outcomes);
        else
            apply_group(&w, &entries[index], count); /* a refusal is not reported here */
    }
    double seconds = (double)(now_ns() - started_ns) / 1e9;
    double cpu_seconds = (double)(cpu_ns() - started_cpu_ns) / 1e9;
    double restart_ms = restart(&w, directory);
    printf("{\"transfers\":%" PRId64 ",\"refused\":%" PRId64 ",\"entries\":%" PRId64
           ",\"group\":%d,\"replay_s\":%.3f,\"transfers_per_s\":%.0f,\"cpu_s\":%.3f,\"transfers_"
           "per_cpu_s\":%.0f,\"restart_ms\":%.1f,\"store_"
           "bytes\":%" PRIu64 "}\n",
           config.transfers, refused, entry_count, config.group, seconds,
           (double)config.transfers / seconds, cpu_seconds, (double)config.transfers / cpu_seconds,
           restart_ms, directory_bytes(directory));
    kci_ledger_store_close(w.store);
    for (int64_t index = 0; index < entry_count; index++)
        free(entries[index].bytes);
    free(entries);
    free(outcomes);
    free(w.owners);
    free(w.coins);
    free(w.wallets);
    if (config.directory == NULL) {
        char command[128];
        snprintf(command, sizeof command, "rm -rf %s", directory);
        if (system(command) != 0) fprintf(stderr, "ledger_replay: cannot remove %s\n", directory);
    }
    return refused == 0 ? 0 : 1;
}
