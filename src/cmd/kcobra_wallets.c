/* kcobra_wallets.c - the wallet directory as a whole (kcobra_wallets.h).
 * Wallet files are <dir>/<name>.key; a name is known only from its file, so
 * listing and naming read the directory. The names of the default directory
 * are read once per process and kept, for history tables of many rows. */
#include "kcobra_wallets.h"

#include <dirent.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ledger/codec.h"
#include "ledger/wallet.h"

#define WALLET_DIR_ENVIRONMENT "KCOBRA_WALLET_DIR"
#define WALLET_DIR_DEFAULT ".kingcobra/wallets" /* under $HOME, as kcobra_ledger.c */
#define WALLET_SUFFIX ".key"

enum { WALLETS_MAX = 4096, WALLET_NAME_BYTES = 128 };

typedef struct wallet_entry {
    char name[WALLET_NAME_BYTES];
    char address[KCI_LEDGER_ADDRESS_TEXT_BYTES + 1];
} wallet_entry;

typedef struct wallet_table {
    wallet_entry *entries;
    size_t count;
} wallet_table;

bool kcobra_wallet_directory(char *out, size_t out_size, const char *directory)
{
    const char *home = getenv("HOME");
    if (directory == NULL) directory = getenv(WALLET_DIR_ENVIRONMENT);
    int wrote = directory != NULL ? snprintf(out, out_size, "%s", directory)
                                  : snprintf(out, out_size, "%s/%s", home != NULL ? home : ".",
                                             WALLET_DIR_DEFAULT);
    return wrote > 0 && (size_t)wrote < out_size;
}

static int entry_compare(const void *left, const void *right)
{
    return strcmp(((const wallet_entry *)left)->name, ((const wallet_entry *)right)->name);
}

/* One <name>.key: its address into entry; false if it is not a wallet. */
static bool entry_load(wallet_entry *entry, const char *directory, const char *file_name)
{
    size_t length = strlen(file_name), suffix = strlen(WALLET_SUFFIX);
    if (length <= suffix || length - suffix >= sizeof entry->name ||
        strcmp(file_name + length - suffix, WALLET_SUFFIX) != 0)
        return false;
    snprintf(entry->name, sizeof entry->name, "%.*s", (int)(length - suffix), file_name);
    if (!kci_wallet_name_valid(entry->name)) return false;
    char path[PATH_MAX], error[256];
    if (snprintf(path, sizeof path, "%s/%s", directory, file_name) >= (int)sizeof path)
        return false;
    kci_wallet wallet;
    if (kci_wallet_load(&wallet, path, error, sizeof error) != KC_OK) return false;
    kci_wallet_address(entry->address, &wallet);
    kci_wallet_wipe(&wallet);
    return true;
}

/* The wallets of directory, sorted by name; an unreadable directory is empty. */
static void table_load(wallet_table *table, const char *directory)
{
    table->entries = NULL;
    table->count = 0;
    DIR *listing = opendir(directory);
    if (listing == NULL) return;
    table->entries = calloc(WALLETS_MAX, sizeof *table->entries);
    const struct dirent *item;
    while (table->entries != NULL && table->count < WALLETS_MAX &&
           (item = readdir(listing)) != NULL)
        if (entry_load(&table->entries[table->count], directory, item->d_name)) table->count++;
    closedir(listing);
    if (table->count > 1)
        qsort(table->entries, table->count, sizeof *table->entries, entry_compare);
}

int kcobra_wallet_list(const kcobra_invocation *invocation, const char *directory)
{
    char path[PATH_MAX];
    if (!kcobra_wallet_directory(path, sizeof path, directory)) {
        kcobra_error("wallet directory path too long");
        return KCOBRA_EXIT_USAGE;
    }
    wallet_table table;
    table_load(&table, path);
    int status = KCOBRA_EXIT_OK;
    if (invocation->common.json) {
        json_t *wallets = json_array();
        for (size_t index = 0; index < table.count; index++)
            json_array_append_new(wallets,
                                  json_pack("{s:s, s:s}", "name", table.entries[index].name,
                                            "address", table.entries[index].address));
        status = kcobra_json_print(json_pack("{s:s, s:o}", "directory", path, "wallets", wallets));
    } else {
        for (size_t index = 0; index < table.count; index++)
            printf("%-20s %s\n", table.entries[index].name, table.entries[index].address);
        if (table.count == 0) fprintf(stderr, "kcobra: no wallets in %s\n", path);
    }
    free(table.entries);
    return status;
}

const char *kcobra_wallet_name_of(const char *address_hex)
{
    static wallet_table table;
    static bool loaded = false;
    if (!loaded) {
        char path[PATH_MAX];
        if (kcobra_wallet_directory(path, sizeof path, NULL)) table_load(&table, path);
        loaded = true;
    }
    for (size_t index = 0; address_hex != NULL && index < table.count; index++)
        if (strcmp(table.entries[index].address, address_hex) == 0)
            return table.entries[index].name;
    return NULL;
}

void kcobra_time_rfc3339(char out[KCOBRA_TIME_TEXT_BYTES], int64_t unix_ms)
{
    time_t seconds = (time_t)(unix_ms / 1000);
    struct tm utc;
    if (unix_ms < 0 || gmtime_r(&seconds, &utc) == NULL) {
        snprintf(out, KCOBRA_TIME_TEXT_BYTES, "%lld", (long long)unix_ms);
        return;
    }
    char date[KCOBRA_TIME_TEXT_BYTES];
    strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%S", &utc);
    snprintf(out, KCOBRA_TIME_TEXT_BYTES, "%.20s.%03dZ", date, (int)(unix_ms % 1000));
}
