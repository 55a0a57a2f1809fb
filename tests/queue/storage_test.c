/* storage_test.c - the persister's storage settings (src/queue/config.c):
 * `local` stays the default and maps to the log in dir; `jetstream` maps to
 * the stream's runtime config; bad values are refused with a message; the
 * key table holds the new keys and the lease's. The stream itself is tested
 * end to end in tests/integration/jsqueue.c. */
/* clang-format off */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
/* clang-format on */

#include <stdlib.h>
#include <string.h>

#include "queue/config.h"
#include "queue/replicated.h"

static void settings_start(kci_persister_settings *settings)
{
    memset(settings, 0, sizeof *settings);
    assert_int_equal(kci_persister_settings_init(settings, "data/queue"), KC_OK);
}

static void replace(char **field, const char *value)
{
    free(*field);
    *field = strdup(value);
    assert_non_null(*field);
}

static void test_local_is_the_default(void **state)
{
    (void)state;
    kci_persister_settings settings;
    settings_start(&settings);
    assert_string_equal(settings.storage, "local");
    assert_string_equal(settings.stream, KCI_QUEUE_JS_STREAM_DEFAULT);
    assert_int_equal(settings.replicas, KCI_QUEUE_JS_REPLICAS_DEFAULT);
    assert_int_equal(settings.stream_max_age_ms, 0);
    assert_string_equal(settings.lease.bucket, "kc_lease_" KCI_PERSISTER_LEASE_ROLE);
    char error[256] = "";
    assert_int_equal(kci_persister_settings_check(&settings, error, sizeof error), KC_OK);
    kci_persister_config config = kci_persister_settings_runtime(&settings, NULL);
    assert_int_equal(config.storage, KCI_QUEUE_STORAGE_LOCAL);
    assert_null(config.jetstream.stream);
    assert_string_equal(config.directory, "data/queue");
    kci_persister_settings_free(&settings);
}

static void test_jetstream_maps_to_the_stream(void **state)
{
    (void)state;
    kci_persister_settings settings;
    settings_start(&settings);
    replace(&settings.storage, "jetstream");
    replace(&settings.stream, "ORDERS_Q");
    settings.replicas = 1;
    settings.stream_max_age_ms = 7 * 24 * 3600 * 1000LL;
    char error[256] = "";
    assert_int_equal(kci_persister_settings_check(&settings, error, sizeof error), KC_OK);
    kci_persister_config config = kci_persister_settings_runtime(&settings, "node-a");
    assert_int_equal(config.storage, KCI_QUEUE_STORAGE_JETSTREAM);
    assert_string_equal(config.jetstream.stream, "ORDERS_Q");
    assert_int_equal(config.jetstream.replicas, 1);
    assert_int_equal(config.jetstream.max_age_ms, 7 * 24 * 3600 * 1000LL);
    assert_int_equal(config.jetstream.term, 0); /* replicated.c sets it per term */
    kci_lease_config lease;
    kci_persister_settings_lease(&settings, &lease);
    assert_string_equal(lease.bucket, "kc_lease_persister");
    assert_int_equal(lease.ttl_ms, KCI_LEASE_TTL_MS_DEFAULT);
    assert_int_equal(lease.replicas, KCI_LEASE_REPLICAS_DEFAULT);
    kci_persister_settings_free(&settings);
}

/* The string field at offset set to value is refused, the message naming word. */
static void expect_refused(size_t offset, const char *value, const char *word)
{
    kci_persister_settings settings;
    settings_start(&settings);
    replace((char **)((char *)&settings + offset), value);
    char error[256] = "";
    assert_int_equal(kci_persister_settings_check(&settings, error, sizeof error), KC_ERR_CONFIG);
    assert_non_null(strstr(error, word));
    kci_persister_settings_free(&settings);
}

static void test_bad_values_are_refused(void **state)
{
    (void)state;
    const char *const storages[] = {"", "nfs", "JetStream", "local "};
    const char *const streams[] = {"",
                                   "a.b",
                                   "a b",
                                   "*",
                                   ">",
                                   "KC_QUEUE_THAT_IS_FAR_TOO_LONG_FOR_A_STREAM_NAME_OF_SIXTY_"
                                   "FOUR_BYTES"};
    for (size_t index = 0; index < sizeof storages / sizeof storages[0]; index++)
        expect_refused(offsetof(kci_persister_settings, storage), storages[index], "storage");
    for (size_t index = 0; index < sizeof streams / sizeof streams[0]; index++)
        expect_refused(offsetof(kci_persister_settings, stream), streams[index], "stream");
    kci_persister_settings settings;
    settings_start(&settings);
    settings.lease.ttl_ms = 100; /* below 2 x renew + margin */
    char error[256] = "";
    assert_int_equal(kci_persister_settings_check(&settings, error, sizeof error), KC_ERR_CONFIG);
    kci_persister_settings_free(&settings);
}

static void test_keys_are_in_the_table(void **state)
{
    (void)state;
    size_t count = 0;
    const kci_config_key *keys = kci_persister_settings_keys(&count);
    const char *const wanted[] = {"storage",        "stream",       "replicas",
                                  "stream_max_age", "lease_bucket", "lease_ttl",
                                  "lease_renew",    "lease_margin", "lease_replicas"};
    for (size_t want = 0; want < sizeof wanted / sizeof wanted[0]; want++) {
        bool found = false;
        for (size_t index = 0; index < count && !found; index++)
            found = strcmp(keys[index].name, wanted[want]) == 0;
        assert_true(found);
    }
}

static void test_replicated_needs_jetstream(void **state)
{
    (void)state;
    kci_persister_config config = kci_persister_config_defaults("data/queue");
    kci_lease_config lease;
    kci_lease_config_init(&lease);
    kci_persister_replicated *replicated = NULL;
    char error[256] = "";
    assert_int_equal(
        kci_persister_replicated_start(&replicated, NULL, &config, &lease, error, sizeof error),
        KC_ERR_INVALID_ARGUMENT);
    assert_null(replicated);
    assert_non_null(strstr(error, "jetstream"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_local_is_the_default),
        cmocka_unit_test(test_jetstream_maps_to_the_stream),
        cmocka_unit_test(test_bad_values_are_refused),
        cmocka_unit_test(test_keys_are_in_the_table),
        cmocka_unit_test(test_replicated_needs_jetstream),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
