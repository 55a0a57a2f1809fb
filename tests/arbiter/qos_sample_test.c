/* qos_sample_test.c - QoS samples signed by their reporter
 * (src/service/qos_report.h signs, src/arbiter/qos_sample.h checks): a
 * sample signed by the key configured for its reporter counts; a tampered
 * body, another key, an unknown reporter, a sample re-addressed to another
 * node, a stale sample and a replay of one already counted do not. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <sodium.h>

#include "arbiter/qos_sample.h"
#include "common/clock.h"
#include "service/qos_report.h"

enum {
    SIGNATURE_TEXT_BYTES = 2 * KCI_QOS_SIGNATURE_BYTES + 1,
};

typedef struct fixture {
    uint8_t alice_secret[KCI_QOS_SECRET_BYTES], mallory_secret[KCI_QOS_SECRET_BYTES];
    kci_vote_key keys[1]; /* alice's only */
    kci_qos_report report;
    int64_t now_ms;
} fixture;

static int setup(void **state)
{
    assert_true(sodium_init() >= 0);
    fixture *f = calloc(1, sizeof *f);
    assert_non_null(f);
    uint8_t public_key[KCI_QOS_PUBLIC_BYTES], other[KCI_QOS_PUBLIC_BYTES];
    crypto_sign_keypair(public_key, f->alice_secret);
    crypto_sign_keypair(other, f->mallory_secret);
    snprintf(f->keys[0].arbiter, sizeof f->keys[0].arbiter, "alice");
    memcpy(f->keys[0].key, public_key, sizeof public_key);
    f->now_ms = kci_wall_ms();
    snprintf(f->report.node, sizeof f->report.node, "badnode");
    snprintf(f->report.type, sizeof f->report.type, "flaky");
    snprintf(f->report.request_id, sizeof f->report.request_id,
             "0190b6e2-0000-7000-8000-000000000001");
    f->report.latency_ms = 12;
    f->report.error_code = 500;
    f->report.ts_ms = f->now_ms;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    free(*state);
    return 0;
}

/* Signs report as reporter with secret and checks it as a sample on
 * kc.qos.<node>. */
static kci_qos_sample_status check(fixture *f, kci_qos_last *last, const char *reporter,
                                   const char *node, const uint8_t *secret, bool tamper,
                                   kci_qos_signed *out)
{
    char *body = kci_qos_report_body(&f->report, reporter);
    assert_non_null(body);
    char signature[SIGNATURE_TEXT_BYTES];
    kci_qos_sign(signature, body, secret);
    if (tamper) body[strstr(body, "500") - body] = '2'; /* error 500 becomes 200 */
    kci_qos_sample_status status = kci_qos_sample_check(out, last, f->keys, 1, reporter, node,
                                                        signature, body, strlen(body), f->now_ms);
    free(body);
    return status;
}

static void test_good_sample_counts_once(void **state)
{
    fixture *f = *state;
    kci_qos_last last = {0};
    kci_qos_signed sample;
    assert_int_equal(check(f, &last, "alice", "badnode", f->alice_secret, false, &sample),
                     KCI_QOS_SAMPLE_OK);
    assert_false(sample.ok);
    assert_int_equal(sample.error_code, 500);
    assert_true(sample.latency_ms == 12);
    assert_string_equal(sample.type, "flaky");
    assert_int_equal(last.ts_ms, f->now_ms);
    /* The same sample again: a replay. */
    assert_int_equal(check(f, &last, "alice", "badnode", f->alice_secret, false, &sample),
                     KCI_QOS_SAMPLE_REPLAY);
    /* The next request's sample, later: counts. */
    f->report.ts_ms++;
    f->report.request_id[KC_UUID_TEXT_BYTES - 1] = '2';
    assert_int_equal(check(f, &last, "alice", "badnode", f->alice_secret, false, &sample),
                     KCI_QOS_SAMPLE_OK);
}

static void test_forgeries_are_refused(void **state)
{
    fixture *f = *state;
    kci_qos_last last = {0};
    kci_qos_signed sample;
    assert_int_equal(check(f, &last, "alice", "badnode", f->alice_secret, true, &sample),
                     KCI_QOS_SAMPLE_BAD_SIGNATURE);
    assert_int_equal(check(f, &last, "alice", "badnode", f->mallory_secret, false, &sample),
                     KCI_QOS_SAMPLE_BAD_SIGNATURE);
    assert_int_equal(check(f, &last, "mallory", "badnode", f->mallory_secret, false, &sample),
                     KCI_QOS_SAMPLE_UNKNOWN_KEY);
    /* alice's genuine sample about badnode, published on kc.qos.goodnode. */
    assert_int_equal(check(f, &last, "alice", "goodnode", f->alice_secret, false, &sample),
                     KCI_QOS_SAMPLE_MALFORMED);
    assert_int_equal(kci_qos_sample_check(&sample, &last, f->keys, 1, "alice", "badnode", NULL,
                                          "{}", 2, f->now_ms),
                     KCI_QOS_SAMPLE_BAD_SIGNATURE);
    assert_int_equal(last.ts_ms, 0); /* nothing counted */
}

static void test_stale_and_older_samples_are_replays(void **state)
{
    fixture *f = *state;
    kci_qos_last last = {0};
    kci_qos_signed sample;
    f->report.ts_ms = f->now_ms - KCI_VOTE_AGE_MS_MAX - 1;
    assert_int_equal(check(f, &last, "alice", "badnode", f->alice_secret, false, &sample),
                     KCI_QOS_SAMPLE_REPLAY);
    f->report.ts_ms = f->now_ms;
    assert_int_equal(check(f, &last, "alice", "badnode", f->alice_secret, false, &sample),
                     KCI_QOS_SAMPLE_OK);
    f->report.ts_ms = f->now_ms - 1; /* an earlier sample, held back and sent after */
    f->report.request_id[KC_UUID_TEXT_BYTES - 1] = '3';
    assert_int_equal(check(f, &last, "alice", "badnode", f->alice_secret, false, &sample),
                     KCI_QOS_SAMPLE_REPLAY);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_good_sample_counts_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_forgeries_are_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stale_and_older_samples_are_replays, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
