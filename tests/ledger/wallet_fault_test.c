/* wallet_fault_test.c - writing a wallet key file under I/O faults, in
 * SQLite's style (tests/common/fault.h): kci_wallet_create runs once to
 * count its calls through the I/O seam (open, write, fsync, close, and the
 * directory's open, fsync and close), then again failing call N, for every
 * N, with each error that call can return (EIO, ENOSPC, EINTR, a short
 * write).
 *
 * After each run: no descriptor leaked (memory: ASan); EINTR and short
 * writes changed nothing; a failure came with a message. Then the writes
 * never synced are dropped (fault.c's crash simulation) and: a create that
 * said KC_OK left a file that loads to the same key (it was durable before
 * the answer); whatever the outcome, the next start
 * (kci_wallet_load_or_create, what the mint does) gets a working key. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <errno.h>
#include <unistd.h>

#include "../common/fault.h"
#include "ledger/wallet.h"

static char directory[128];

static void remove_directory(void)
{
    char command[256];
    snprintf(command, sizeof command, "rm -rf '%s'/sub", directory);
    assert_int_equal(system(command), 0);
}

static void check_next_start(const char *path, kc_err created, const kci_wallet *wallet)
{
    char error[512] = "";
    kci_wallet loaded;
    if (created == KC_OK) {
        assert_int_equal(kci_wallet_load(&loaded, path, error, sizeof error), KC_OK);
        assert_memory_equal(loaded.public_key, wallet->public_key, KCI_LEDGER_KEY_BYTES);
    }
    kc_err err = kci_wallet_load_or_create(&loaded, path, error, sizeof error);
    if (err != KC_OK) print_error("next start: %s\n", error);
    assert_int_equal(err, KC_OK);
    kci_wallet again;
    assert_int_equal(kci_wallet_load(&again, path, error, sizeof error), KC_OK);
    assert_memory_equal(again.public_key, loaded.public_key, KCI_LEDGER_KEY_BYTES);
}

static void run_create(void *context, uint64_t call_number, int error)
{
    (void)context;
    remove_directory();
    char path[256], message[512] = "";
    snprintf(path, sizeof path, "%s/sub/alice.key", directory);
    int descriptors = fault_open_descriptors();
    fault_install();
    if (call_number > 0) fault_arm(call_number, error);
    kci_wallet wallet = {0};
    kc_err created = kci_wallet_create(&wallet, path, message, sizeof message);
    fault_remove();
    assert_int_equal(fault_open_descriptors(), descriptors);
    int fired_error = 0;
    bool fired = fault_fired(NULL, &fired_error);
    if (created != KC_OK) assert_true(message[0] != '\0');
    if (fired && (fired_error == EINTR || fired_error == FAULT_SHORT_WRITE)) {
        if (created != KC_OK)
            print_error("call %llu failed with %s: %s\n", (unsigned long long)call_number,
                        fault_error_name(fired_error), message);
        assert_int_equal(created, KC_OK);
    }
    fault_crash();
    check_next_start(path, created, &wallet);
}

static void test_create(void **state)
{
    (void)state;
    fault_sweep_stats stats;
    fault_sweep(run_create, NULL, 1, &stats);
    fault_sweep_print("wallet create", &stats);
    assert_true(stats.calls_counted >= 5);
    assert_true(stats.fired > 0);
}

static int setup(void **state)
{
    (void)state;
    snprintf(directory, sizeof directory, "/tmp/kc-wallet-fault-XXXXXX");
    return mkdtemp(directory) != NULL ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    remove_directory();
    return rmdir(directory);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_create)};
    return cmocka_run_group_tests(tests, setup, teardown);
}
