/* verify_limit.h - the ledger's verification limit (verify_limit.c): a loop
 * of crypto_sign_verify_detached on as many threads as the ledger has
 * workers, printed as one JSON object. */
#ifndef KC_BENCH_VERIFY_LIMIT_H
#define KC_BENCH_VERIFY_LIMIT_H

/* Verifies one signed transfer's bytes on thread_count threads for seconds;
 * prints {"threads","seconds","verifies","verifies_per_s"}. Returns the
 * process's exit status. */
int kc_bench_verify_limit(int thread_count, double seconds);

#endif
