/*
 * lease_local.c - the lease (src/service/lease.h) on one nats-server with
 * JetStream, bucket R1, driven step by step: two leases in this process with
 * manual_ticks, each on its own connection, so the test decides when each one
 * looks and renews and every outcome is determined by the rules, not by
 * scheduling.
 *
 * Cases (ttl 600 ms, renew 100 ms, margin 100 ms):
 *  handover   A acquires, B stands by while A renews; A stops ticking (a
 *             frozen process): B takes over, never earlier than ttl + margin
 *             after A's last renewal was sent, and at that instant A's
 *             kci_lease_holds already says no; A ticks again: its renewal
 *             fails the compare-and-set, it reports "deposed". B closes
 *             (release): A acquires at its next tick, with a greater term.
 *  deleted    the key is deleted under the holder (kvStore_Delete): the
 *             holder reports "deposed", and a contender acquires the deleted
 *             record at its next tick.
 *  replicas   a bucket of 3 replicas cannot be made on one server: open
 *             fails within its open_timeout with a message.
 * nats-server only (kcobrad has no JetStream). A few seconds.
 */
/* clang-format off */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
/* clang-format on */

#include <nats/nats.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "harness.h"
#include "kingcobra/kingcobra.h"
#include "service/lease.h"

enum {
    TTL_MS = 600,
    RENEW_MS = 100,
    MARGIN_MS = 100,
    CONFIG_BYTES_MAX = 512,
    CONNECT_TIMEOUT_MS = 5000,
    OPEN_TIMEOUT_MS = 10000,
    REPLICAS_OPEN_TIMEOUT_MS = 1000,
    STANDBY_ROUNDS = 10, /* A renews, B looks: B must not acquire */
    TAKEOVER_TICKS_MAX = 100,
    SKIP_EXIT_CODE = 77,
};

typedef struct events {
    int acquired_count;
    int lost_count;
    uint64_t last_term;
    kci_lease_loss last_loss;
} events;

typedef struct contender {
    natsConnection *connection;
    kci_lease *lease;
    events seen;
} contender;

static harness_server server;
static contender a, b;

static void on_acquired(void *closure, uint64_t term)
{
    events *seen = closure;
    seen->acquired_count++;
    seen->last_term = term;
}

static void on_lost(void *closure, uint64_t term, kci_lease_loss loss)
{
    events *seen = closure;
    seen->lost_count++;
    seen->last_term = term;
    seen->last_loss = loss;
}

static natsConnection *connect_to_server(void)
{
    natsOptions *options = NULL;
    natsConnection *connection = NULL;
    assert_int_equal(natsOptions_Create(&options), NATS_OK);
    natsOptions_SetURL(options, server.url);
    natsOptions_SetTimeout(options, CONNECT_TIMEOUT_MS);
    assert_int_equal(natsConnection_Connect(&connection, options), NATS_OK);
    natsOptions_Destroy(options);
    return connection;
}

static kci_lease_config config_for(const char *bucket, const char *node, events *seen)
{
    static char holders[2][KCI_LEASE_HOLDER_BYTES_MAX + 1];
    static int next;
    char *holder = holders[next++ % 2];
    kci_lease_holder_make(holder, sizeof(holders[0]), node);
    kci_lease_config config;
    kci_lease_config_init(&config);
    config.bucket = bucket;
    config.key = "role";
    config.holder = holder;
    config.ttl_ms = TTL_MS;
    config.renew_ms = RENEW_MS;
    config.margin_ms = MARGIN_MS;
    config.replicas = 1;
    config.open_timeout_ms = OPEN_TIMEOUT_MS;
    config.manual_ticks = true;
    config.on_acquired = on_acquired;
    config.on_lost = on_lost;
    config.closure = seen;
    return config;
}

static void contender_open(contender *self, const char *bucket, const char *node)
{
    memset(self, 0, sizeof(*self));
    self->connection = connect_to_server();
    kci_lease_config config = config_for(bucket, node, &self->seen);
    kc_err err = kci_lease_open(&self->lease, self->connection, &config);
    if (err != KC_OK) fprintf(stderr, "lease_local: open: %s\n", kc_last_error());
    assert_int_equal(err, KC_OK);
}

static void contender_close(contender *self)
{
    kci_lease_close(self->lease);
    self->lease = NULL;
    natsConnection_Destroy(self->connection);
    self->connection = NULL;
}

/* ======================================================================= fixtures */

static int group_setup(void **state)
{
    (void)state;
    if (harness_server_init(&server, getenv("KC_NATS_SERVER")) != HARNESS_OK) return -1;
    char store[HARNESS_PATH_SIZE_MAX], config[CONFIG_BYTES_MAX];
    harness_server_path(&server, "store", store, sizeof(store));
    snprintf(config, sizeof(config), "jetstream {\n  store_dir: \"%s\"\n}\n", store);
    return harness_server_start(&server, config) == HARNESS_OK ? 0 : -1;
}

static int group_teardown(void **state)
{
    (void)state;
    harness_server_cleanup(&server);
    return 0;
}

static int case_teardown(void **state)
{
    (void)state;
    if (a.lease != NULL || a.connection != NULL) contender_close(&a);
    if (b.lease != NULL || b.connection != NULL) contender_close(&b);
    return 0;
}

/* ======================================================================= cases */

static void test_handover(void **state)
{
    (void)state;
    contender_open(&a, "kc_local_handover", "a");
    contender_open(&b, "kc_local_handover", "b");
    kci_lease_tick(a.lease);
    assert_int_equal(a.seen.acquired_count, 1);
    uint64_t term_a = kci_lease_term(a.lease);
    assert_true(term_a > 0 && kci_lease_holds(a.lease, NULL));
    int64_t last_renewal_ms = 0;
    for (int round = 0; round < STANDBY_ROUNDS; round++) {
        harness_sleep_ms(RENEW_MS);
        last_renewal_ms = kci_monotonic_ms();
        kci_lease_tick(a.lease);
        kci_lease_tick(b.lease);
        assert_false(kci_lease_holds(b.lease, NULL));
    }
    assert_int_equal(kci_lease_term(a.lease), term_a); /* renewals keep the term */
    assert_true(kci_lease_revision(a.lease) > term_a);
    /* A is frozen from here: only B ticks. */
    int ticks = 0;
    while (b.seen.acquired_count == 0 && ticks++ < TAKEOVER_TICKS_MAX) {
        harness_sleep_ms(RENEW_MS);
        kci_lease_tick(b.lease);
    }
    int64_t acquired_ms = kci_monotonic_ms();
    assert_int_equal(b.seen.acquired_count, 1);
    assert_true(acquired_ms >= last_renewal_ms + TTL_MS + MARGIN_MS);
    assert_false(kci_lease_holds(a.lease, NULL)); /* stopped 2 x margin before */
    uint64_t term_b = kci_lease_term(b.lease);
    assert_true(term_b > term_a);
    kci_lease_tick(a.lease); /* thawed: the renewal fails the compare-and-set */
    assert_int_equal(a.seen.lost_count, 1);
    assert_int_equal(a.seen.last_loss, KCI_LEASE_LOST_DEPOSED);
    assert_int_equal(kci_lease_term(a.lease), 0);
    contender_close(&b); /* release */
    assert_int_equal(b.seen.last_loss, KCI_LEASE_LOST_RELEASED);
    kci_lease_tick(a.lease);
    assert_int_equal(a.seen.acquired_count, 2);
    assert_true(kci_lease_term(a.lease) > term_b);
}

static void test_deleted(void **state)
{
    (void)state;
    contender_open(&a, "kc_local_deleted", "a");
    contender_open(&b, "kc_local_deleted", "b");
    kci_lease_tick(a.lease);
    assert_int_equal(a.seen.acquired_count, 1);
    jsCtx *js = NULL;
    kvStore *kv = NULL;
    assert_int_equal(natsConnection_JetStream(&js, b.connection, NULL), NATS_OK);
    assert_int_equal(js_KeyValue(&kv, js, "kc_local_deleted"), NATS_OK);
    assert_int_equal(kvStore_Delete(kv, "role"), NATS_OK);
    kvStore_Destroy(kv);
    jsCtx_Destroy(js);
    kci_lease_tick(a.lease);
    assert_int_equal(a.seen.lost_count, 1);
    assert_int_equal(a.seen.last_loss, KCI_LEASE_LOST_DEPOSED);
    kci_lease_tick(b.lease);
    assert_int_equal(b.seen.acquired_count, 1);
}

static void test_replicas(void **state)
{
    (void)state;
    natsConnection *connection = connect_to_server();
    events seen = {0};
    kci_lease_config config = config_for("kc_local_replicas", "r", &seen);
    config.replicas = 3;
    config.open_timeout_ms = REPLICAS_OPEN_TIMEOUT_MS;
    kci_lease *lease = NULL;
    assert_int_not_equal(kci_lease_open(&lease, connection, &config), KC_OK);
    fprintf(stderr, "lease_local: R3 on one server: %s\n", kc_last_error());
    assert_null(lease);
    natsConnection_Destroy(connection);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s NATS_SERVER\n", argv[0]);
        return SKIP_EXIT_CODE;
    }
    setenv("KC_NATS_SERVER", argv[1], 1);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_handover, case_teardown),
        cmocka_unit_test_teardown(test_deleted, case_teardown),
        cmocka_unit_test_teardown(test_replicas, case_teardown),
    };
    int failures = cmocka_run_group_tests(tests, group_setup, group_teardown);
    nats_Close();
    return failures;
}
