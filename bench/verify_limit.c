/* verify_limit.c - the ledger's verification limit, measured in the same run
 * as the ledger (bench/run_ledger.sh: `ledger_bench --verify-limit THREADS`).
 *
 * Every transfer the ledger applies costs one crypto_sign_verify_detached
 * over its canonical signing bytes, and verification is what bounds the
 * ledger's throughput. This loop does nothing else: THREADS threads (as
 * many as the ledger has workers) verify the same signed transfer's bytes
 * for a fixed time. Acknowledged transfers/s divided by this figure is how
 * close the ledger comes to its bound on the same machine at the same
 * moment (the machine is shared, so a figure from another run says little). */
#include "verify_limit.h"

#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "ledger/client.h"

enum { VERIFY_THREADS_MAX = 64, CHECK_EVERY = 256 };

typedef struct verifier {
    const uint8_t *bytes;
    size_t length;
    const uint8_t *signature;
    const uint8_t *signer;
    int64_t deadline_ns;
    int64_t verified;
    int64_t failed;
    int64_t cpu_ns; /* this thread's CPU time */
} verifier;

static int64_t monotonic_ns(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (int64_t)now.tv_sec * 1000000000 + now.tv_nsec;
}

static void *verifier_main(void *argument)
{
    verifier *self = argument;
    int64_t verified = 0, failed = 0; /* locals: no false sharing between threads */
    while (monotonic_ns() < self->deadline_ns) {
        for (int index = 0; index < CHECK_EVERY; index++) {
            if (crypto_sign_verify_detached(self->signature, self->bytes, self->length,
                                            self->signer) == 0)
                verified++;
            else
                failed++;
        }
    }
    struct timespec cpu;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &cpu);
    self->cpu_ns = (int64_t)cpu.tv_sec * 1000000000 + cpu.tv_nsec;
    self->verified = verified;
    self->failed = failed;
    return NULL;
}

int kc_bench_verify_limit(int thread_count, double seconds)
{
    if (thread_count < 1 || thread_count > VERIFY_THREADS_MAX || seconds <= 0) {
        fprintf(stderr, "ledger_bench: --verify-limit takes 1..%d threads\n", VERIFY_THREADS_MAX);
        return 2;
    }
    /* One real transfer of one coin, signed like the benchmark's. */
    kci_wallet payer, payee;
    crypto_sign_keypair(payer.public_key, payer.secret_key);
    crypto_sign_keypair(payee.public_key, payee.secret_key);
    kci_ledger_coin coin = {.denomination = 1};
    randombytes_buf(coin.id, sizeof coin.id);
    kci_ledger_transfer transfer;
    if (kci_ledger_transfer_make(&transfer, &payer, payee.public_key, &coin, 1) != KC_OK) return 1;
    size_t length = 0;
    uint8_t *bytes = kci_ledger_signing_bytes(&transfer, &length);
    if (bytes == NULL) return 1;
    verifier verifiers[VERIFY_THREADS_MAX];
    pthread_t threads[VERIFY_THREADS_MAX];
    int64_t started_ns = monotonic_ns();
    for (int index = 0; index < thread_count; index++) {
        verifiers[index] = (verifier){.bytes = bytes,
                                      .length = length,
                                      .signature = transfer.signature,
                                      .signer = payer.public_key,
                                      .deadline_ns = started_ns + (int64_t)(seconds * 1e9)};
        pthread_create(&threads[index], NULL, verifier_main, &verifiers[index]);
    }
    int64_t verified = 0, failed = 0, cpu_total_ns = 0;
    for (int index = 0; index < thread_count; index++) {
        pthread_join(threads[index], NULL);
        verified += verifiers[index].verified;
        failed += verifiers[index].failed;
        cpu_total_ns += verifiers[index].cpu_ns;
    }
    double elapsed = (double)(monotonic_ns() - started_ns) / 1e9;
    /* verifies_per_cpu_s: one core's rate whatever the neighbours take. */
    printf("{\"threads\":%d,\"seconds\":%.3f,\"verifies\":%lld,\"verifies_per_s\":%.0f,"
           "\"verifies_per_cpu_s\":%.0f}\n",
           thread_count, elapsed, (long long)verified, (double)verified / elapsed,
           cpu_total_ns > 0 ? (double)verified * 1e9 / (double)cpu_total_ns : 0.0);
    free(bytes);
    kci_ledger_transfer_free(&transfer);
    return failed == 0 ? 0 : 1;
}
