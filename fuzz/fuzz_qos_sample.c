/* fuzz_qos_sample.c - libFuzzer target for the arbiter's check of a QoS
 * sample signed by its reporter (src/arbiter/qos_sample.c), a message any
 * keyed client can send it.
 *
 * The input is the sample's body. It is checked twice: unsigned (must be
 * refused as a bad signature, whatever it says) and signed with the
 * reporter's fixed key, so that the JSON parser behind the signature is
 * reached. Checks: no crash or sanitizer report; a counted sample has a
 * non-negative latency, bounded strings and moves the reporter's last
 * timestamp to its own. */
#include <sodium.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "arbiter/qos_sample.h"

#define FUZZ_CHECK(condition)                                                                      \
    do {                                                                                           \
        if (!(condition)) abort();                                                                 \
    } while (0)

enum {
    SIGNATURE_TEXT_BYTES = 2 * KCI_LEDGER_SIGNATURE_BYTES + 1,
};

static const int64_t FUZZ_NOW_MS = 1700000000000; /* the corpus's ts_ms */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static kci_vote_key keys[1];
    static uint8_t secret[KCI_LEDGER_SECRET_BYTES];
    static bool ready = false;
    if (!ready) {
        FUZZ_CHECK(sodium_init() >= 0);
        uint8_t seed[crypto_sign_SEEDBYTES] = {7};
        crypto_sign_seed_keypair(keys[0].key, secret, seed);
        strcpy(keys[0].arbiter, "alice");
        ready = true;
    }
    kci_qos_signed sample;
    kci_qos_last last = {0};
    FUZZ_CHECK(kci_qos_sample_check(&sample, &last, keys, 1, "alice", "n1", "00", data, size,
                                    FUZZ_NOW_MS) == KCI_QOS_SAMPLE_BAD_SIGNATURE);
    char signature[SIGNATURE_TEXT_BYTES];
    kci_vote_sign(signature, data, size, secret);
    kci_qos_sample_status status = kci_qos_sample_check(&sample, &last, keys, 1, "alice", "n1",
                                                        signature, data, size, FUZZ_NOW_MS);
    FUZZ_CHECK(status == KCI_QOS_SAMPLE_OK || status == KCI_QOS_SAMPLE_MALFORMED ||
               status == KCI_QOS_SAMPLE_REPLAY);
    if (status == KCI_QOS_SAMPLE_OK) {
        FUZZ_CHECK(sample.latency_ms >= 0);
        FUZZ_CHECK(strlen(sample.type) <= KCI_QOS_SAMPLE_TYPE_BYTES_MAX);
        FUZZ_CHECK(strlen(sample.request_id) <= KC_UUID_TEXT_BYTES);
        FUZZ_CHECK(last.ts_ms == sample.ts_ms);
    } else {
        FUZZ_CHECK(last.ts_ms == 0);
    }
    return 0;
}
