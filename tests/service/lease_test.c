/* lease_test.c - the lease's pure parts (src/service/lease_record.h and the
 * configuration checks of lease.h and lease_settings.h): the record's text
 * both ways, a table of values that must not parse, every cut of a record,
 * the standby's "may I take over" rule over sequences of observations, the
 * holder's verdict after a failed renewal, and the settings as config keys.
 * The lease between processes on a cluster: tests/integration/lease.c. */
/* clang-format off */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
/* clang-format on */

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "common/config_keys.h"
#include "service/lease.h"
#include "service/lease_record.h"
#include "service/lease_settings.h"

enum {
    TTL_MS = 1200,
    MARGIN_MS = 200,
    TEXT_BYTES = KCI_LEASE_RECORD_BYTES_MAX + 1,
};

static const char SELF[] = "node-a/01a25288-b4d7-7748-8946-69dfdd3697e2";
static const char OTHER[] = "node-b/01a25288-b4d7-7748-8946-69dfdd3697e3";

static kci_lease_record record_of(kci_lease_state state, uint64_t term, const char *holder)
{
    kci_lease_record record = {.state = state, .term = term, .ttl_ms = TTL_MS};
    snprintf(record.holder, sizeof(record.holder), "%s", holder);
    return record;
}

static kci_lease_view view_of(uint64_t revision, kci_lease_state state, uint64_t term,
                              const char *holder)
{
    return (kci_lease_view){.present = true,
                            .revision = revision,
                            .parsed = true,
                            .record = record_of(state, term, holder)};
}

/* ======================================================================= record */

static void test_record_round_trip(void **state)
{
    (void)state;
    const kci_lease_record records[] = {
        record_of(KCI_LEASE_HELD, 0, SELF),
        record_of(KCI_LEASE_RELEASED, 4711, "x"),
        record_of(KCI_LEASE_HELD, UINT64_MAX, OTHER),
    };
    for (size_t index = 0; index < sizeof(records) / sizeof(records[0]); index++) {
        char text[TEXT_BYTES];
        size_t length = 0;
        assert_int_equal(kci_lease_record_format(&records[index], text, sizeof(text), &length),
                         KC_OK);
        assert_int_equal(strlen(text), length);
        kci_lease_record parsed;
        assert_int_equal(kci_lease_record_parse(text, length, &parsed), KC_OK);
        assert_int_equal(parsed.state, records[index].state);
        assert_true(parsed.term == records[index].term);
        assert_int_equal(parsed.ttl_ms, records[index].ttl_ms);
        assert_string_equal(parsed.holder, records[index].holder);
    }
    char text[TEXT_BYTES];
    size_t length = 0;
    kci_lease_record record = record_of(KCI_LEASE_HELD, 12, "n/1");
    assert_int_equal(kci_lease_record_format(&record, text, sizeof(text), &length), KC_OK);
    assert_string_equal(text, "kc-lease/1 held term=12 ttl_ms=1200 holder=n/1");
}

static void test_record_format_refuses(void **state)
{
    (void)state;
    char text[TEXT_BYTES];
    size_t length = 0;
    kci_lease_record record = record_of(KCI_LEASE_HELD, 1, "has space");
    assert_int_equal(kci_lease_record_format(&record, text, sizeof(text), &length),
                     KC_ERR_INVALID_ARGUMENT);
    record = record_of(KCI_LEASE_HELD, 1, "");
    assert_int_equal(kci_lease_record_format(&record, text, sizeof(text), &length),
                     KC_ERR_INVALID_ARGUMENT);
    record = record_of(KCI_LEASE_HELD, 1, SELF);
    record.ttl_ms = 0;
    assert_int_equal(kci_lease_record_format(&record, text, sizeof(text), &length),
                     KC_ERR_INVALID_ARGUMENT);
    record.ttl_ms = TTL_MS;
    assert_int_equal(kci_lease_record_format(&record, text, 16, &length), KC_ERR_TOO_LARGE);
}

static void test_record_parse_refuses(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "",
        "kc-lease/2 held term=1 ttl_ms=1200 holder=a",
        "kc-lease/1  held term=1 ttl_ms=1200 holder=a",
        "kc-lease/1 taken term=1 ttl_ms=1200 holder=a",
        "kc-lease/1 held term= ttl_ms=1200 holder=a",
        "kc-lease/1 held term=01 ttl_ms=1200 holder=a",
        "kc-lease/1 held term=-1 ttl_ms=1200 holder=a",
        "kc-lease/1 held term=18446744073709551616 ttl_ms=1200 holder=a",
        "kc-lease/1 held term=1 ttl_ms=0 holder=a",
        "kc-lease/1 held term=1 ttl_ms=86400001 holder=a",
        "kc-lease/1 held term=1 ttl_ms=1200 holder=",
        "kc-lease/1 held term=1 ttl_ms=1200 holder=a b",
        "kc-lease/1 held term=1 ttl_ms=1200 holder=a\n",
        "kc-lease/1 held term=1 ttl_ms=1200 holder=a\x7f",
        "kc-lease/1 held term=1 ttl_ms=1200 holder=\xc3\xa9",
        "kc-lease/1 held ttl_ms=1200 term=1 holder=a",
        "KC-LEASE/1 held term=1 ttl_ms=1200 holder=a",
    };
    for (size_t index = 0; index < sizeof(bad) / sizeof(bad[0]); index++) {
        kci_lease_record record;
        if (kci_lease_record_parse(bad[index], strlen(bad[index]), &record) != KC_ERR_PARSE)
            fail_msg("parsed: \"%s\"", bad[index]);
    }
    char holder[KCI_LEASE_HOLDER_BYTES_MAX + 2];
    memset(holder, 'h', sizeof(holder) - 1);
    holder[sizeof(holder) - 1] = '\0'; /* one byte too many */
    char text[2 * TEXT_BYTES];
    int length = snprintf(text, sizeof(text), "kc-lease/1 held term=1 ttl_ms=1 holder=%s", holder);
    kci_lease_record record;
    assert_int_equal(kci_lease_record_parse(text, (size_t)length, &record), KC_ERR_PARSE);
    assert_int_equal(kci_lease_record_parse(text, (size_t)length - 1, &record), KC_OK);
    char large[KCI_LEASE_RECORD_BYTES_MAX + 1];
    memset(large, 'x', sizeof(large));
    assert_int_equal(kci_lease_record_parse(large, sizeof(large), &record), KC_ERR_TOO_LARGE);
}

/* Every cut of a record before its holder fails; a cut inside the holder is
 * a record with a shorter holder (the holder runs to the end). */
static void test_record_every_cut(void **state)
{
    (void)state;
    char text[TEXT_BYTES];
    size_t length = 0;
    kci_lease_record original = record_of(KCI_LEASE_RELEASED, 987654321, SELF);
    assert_int_equal(kci_lease_record_format(&original, text, sizeof(text), &length), KC_OK);
    size_t holder_at = length - strlen(SELF);
    for (size_t cut = 0; cut < length; cut++) {
        kci_lease_record record;
        kc_err err = kci_lease_record_parse(text, cut, &record);
        if (cut <= holder_at) {
            assert_int_equal(err, KC_ERR_PARSE);
            continue;
        }
        assert_int_equal(err, KC_OK);
        assert_int_equal(strlen(record.holder), cut - holder_at);
        assert_true(record.term == original.term);
    }
}

/* ======================================================================= rules */

static void test_decide_free_records(void **state)
{
    (void)state;
    kci_lease_observation observation = {0};
    kci_lease_view absent = {0};
    assert_int_equal(kci_lease_decide(&observation, &absent, SELF, TTL_MS, MARGIN_MS, 0),
                     KCI_LEASE_CREATE);
    kci_lease_view deleted = {.present = true, .revision = 9, .deleted = true};
    assert_int_equal(kci_lease_decide(&observation, &deleted, SELF, TTL_MS, MARGIN_MS, 0),
                     KCI_LEASE_TAKE_OVER);
    kci_lease_view released = view_of(10, KCI_LEASE_RELEASED, 3, OTHER);
    assert_int_equal(kci_lease_decide(&observation, &released, SELF, TTL_MS, MARGIN_MS, 0),
                     KCI_LEASE_TAKE_OVER);
    kci_lease_view own = view_of(11, KCI_LEASE_HELD, 3, SELF);
    assert_int_equal(kci_lease_decide(&observation, &own, SELF, TTL_MS, MARGIN_MS, 0),
                     KCI_LEASE_TAKE_OVER);
}

/* Takes over only once the same revision was seen for ttl + margin of the
 * observer's clock, counted from its first sight of that revision. */
static void test_decide_expiry(void **state)
{
    (void)state;
    kci_lease_observation observation = {0};
    kci_lease_view held = view_of(20, KCI_LEASE_HELD, 0, OTHER);
    int64_t start_ms = 1000;
    assert_int_equal(kci_lease_decide(&observation, &held, SELF, TTL_MS, MARGIN_MS, start_ms),
                     KCI_LEASE_WAIT);
    assert_int_equal(kci_lease_decide(&observation, &held, SELF, TTL_MS, MARGIN_MS,
                                      start_ms + TTL_MS + MARGIN_MS - 1),
                     KCI_LEASE_WAIT);
    /* A renewal just in time: the count starts again from this read. */
    kci_lease_view renewed = view_of(21, KCI_LEASE_HELD, 20, OTHER);
    int64_t renewed_ms = start_ms + TTL_MS + MARGIN_MS - 1;
    assert_int_equal(kci_lease_decide(&observation, &renewed, SELF, TTL_MS, MARGIN_MS, renewed_ms),
                     KCI_LEASE_WAIT);
    assert_int_equal(
        kci_lease_decide(&observation, &renewed, SELF, TTL_MS, MARGIN_MS, renewed_ms + TTL_MS),
        KCI_LEASE_WAIT);
    assert_int_equal(kci_lease_decide(&observation, &renewed, SELF, TTL_MS, MARGIN_MS,
                                      renewed_ms + TTL_MS + MARGIN_MS),
                     KCI_LEASE_TAKE_OVER);
}

/* The holder's ttl counts, not the observer's; a foreign value uses ours. */
static void test_decide_whose_ttl(void **state)
{
    (void)state;
    kci_lease_observation observation = {0};
    kci_lease_view held = view_of(30, KCI_LEASE_HELD, 0, OTHER);
    held.record.ttl_ms = 5000;
    kci_lease_decide(&observation, &held, SELF, TTL_MS, MARGIN_MS, 0);
    assert_int_equal(kci_lease_decide(&observation, &held, SELF, TTL_MS, MARGIN_MS, 5000),
                     KCI_LEASE_WAIT);
    assert_int_equal(kci_lease_decide(&observation, &held, SELF, TTL_MS, MARGIN_MS, 5200),
                     KCI_LEASE_TAKE_OVER);
    kci_lease_observation fresh = {0};
    kci_lease_view foreign = {.present = true, .revision = 31, .parsed = false};
    kci_lease_decide(&fresh, &foreign, SELF, TTL_MS, MARGIN_MS, 0);
    assert_int_equal(kci_lease_decide(&fresh, &foreign, SELF, TTL_MS, MARGIN_MS, 1399),
                     KCI_LEASE_WAIT);
    assert_int_equal(kci_lease_decide(&fresh, &foreign, SELF, TTL_MS, MARGIN_MS, 1400),
                     KCI_LEASE_TAKE_OVER);
}

/* The holder stops 2 x margin before any standby may start. */
static void test_holder_stops_first(void **state)
{
    (void)state;
    int64_t sent_ms = 5000;
    int64_t holder_until_ms = kci_lease_valid_until_ms(sent_ms, TTL_MS, MARGIN_MS);
    assert_int_equal(holder_until_ms, sent_ms + TTL_MS - MARGIN_MS);
    kci_lease_observation observation = {0};
    kci_lease_view held = view_of(40, KCI_LEASE_HELD, 0, OTHER);
    /* The earliest sight of the renewal is its send time. */
    kci_lease_decide(&observation, &held, SELF, TTL_MS, MARGIN_MS, sent_ms);
    int64_t now_ms = sent_ms;
    while (kci_lease_decide(&observation, &held, SELF, TTL_MS, MARGIN_MS, now_ms) == KCI_LEASE_WAIT)
        now_ms++;
    assert_int_equal(now_ms - holder_until_ms, 2 * MARGIN_MS);
}

static void test_judge(void **state)
{
    (void)state;
    kci_lease_view ours = view_of(50, KCI_LEASE_HELD, 44, SELF);
    assert_int_equal(kci_lease_judge(&ours, SELF, 44), KCI_LEASE_OURS);
    assert_int_equal(kci_lease_judge(&ours, SELF, 45), KCI_LEASE_DEPOSED);
    kci_lease_view first = view_of(44, KCI_LEASE_HELD, 0, SELF); /* the acquiring record */
    assert_int_equal(kci_lease_judge(&first, SELF, 44), KCI_LEASE_OURS);
    kci_lease_view other = view_of(51, KCI_LEASE_HELD, 0, OTHER);
    assert_int_equal(kci_lease_judge(&other, SELF, 44), KCI_LEASE_DEPOSED);
    kci_lease_view released = view_of(52, KCI_LEASE_RELEASED, 44, SELF);
    assert_int_equal(kci_lease_judge(&released, SELF, 44), KCI_LEASE_DEPOSED);
    kci_lease_view absent = {0};
    assert_int_equal(kci_lease_judge(&absent, SELF, 44), KCI_LEASE_DEPOSED);
    kci_lease_view deleted = {.present = true, .revision = 53, .deleted = true};
    assert_int_equal(kci_lease_judge(&deleted, SELF, 44), KCI_LEASE_DEPOSED);
}

/* ======================================================================= config */

static kci_lease_config config_valid(void)
{
    kci_lease_config config;
    kci_lease_config_init(&config);
    config.bucket = "kc_lease_persister";
    config.key = "persister";
    config.holder = SELF;
    return config;
}

static void test_config_check(void **state)
{
    (void)state;
    kci_lease_config config = config_valid();
    assert_int_equal(kci_lease_config_check(&config), KC_OK);
    config.bucket = "has.dot";
    assert_int_equal(kci_lease_config_check(&config), KC_ERR_CONFIG);
    config = config_valid();
    config.key = "";
    assert_int_equal(kci_lease_config_check(&config), KC_ERR_CONFIG);
    config = config_valid();
    config.holder = "a b";
    assert_int_equal(kci_lease_config_check(&config), KC_ERR_CONFIG);
    config = config_valid();
    config.ttl_ms = 2 * config.renew_ms + config.margin_ms - 1;
    assert_int_equal(kci_lease_config_check(&config), KC_ERR_CONFIG);
    config.ttl_ms++;
    assert_int_equal(kci_lease_config_check(&config), KC_OK);
    config.replicas = 0;
    assert_int_equal(kci_lease_config_check(&config), KC_ERR_CONFIG);
    config.replicas = KCI_LEASE_REPLICAS_MAX + 1;
    assert_int_equal(kci_lease_config_check(&config), KC_ERR_CONFIG);
}

static void test_holder_make(void **state)
{
    (void)state;
    char holder[KCI_LEASE_HOLDER_BYTES_MAX + 1];
    kci_lease_holder_make(holder, sizeof(holder), "ledger-b");
    assert_true(kci_lease_holder_valid(holder));
    assert_memory_equal(holder, "ledger-b/", 9);
    char node[300];
    memset(node, 'n', sizeof(node) - 1);
    node[sizeof(node) - 1] = '\0';
    kci_lease_holder_make(holder, sizeof(holder), node);
    assert_true(kci_lease_holder_valid(holder));
    assert_int_equal(strlen(holder), KCI_LEASE_HOLDER_BYTES_MAX);
    kci_lease_holder_make(holder, sizeof(holder), "  ");
    assert_true(kci_lease_holder_valid(holder));
    assert_int_equal(holder[0], '-');
    char other[KCI_LEASE_HOLDER_BYTES_MAX + 1];
    kci_lease_holder_make(other, sizeof(other), "  ");
    assert_string_not_equal(holder, other); /* unique per call */
}

/* A part embedding the lease settings in its own. */
typedef struct part_settings {
    bool enabled;
    kci_lease_settings lease;
} part_settings;

static const kci_config_key part_keys[] = {
    {.name = "enabled", .kind = KCI_KEY_BOOL, .offset = offsetof(part_settings, enabled)},
    KCI_LEASE_SETTINGS_KEYS(part_settings, lease),
};

static const kci_config_key *part_key(const char *name)
{
    for (size_t index = 0; index < KCI_CONFIG_KEY_COUNT(part_keys); index++)
        if (strcmp(part_keys[index].name, name) == 0) return &part_keys[index];
    fail_msg("no key %s", name);
    return NULL;
}

static void test_settings_keys(void **state)
{
    (void)state;
    part_settings settings = {0};
    assert_int_equal(kci_lease_settings_init(&settings.lease, "persister"), KC_OK);
    assert_string_equal(settings.lease.bucket, "kc_lease_persister");
    char error[KCI_CONFIG_MESSAGE_BYTES_MAX] = "";
    assert_int_equal(kci_lease_settings_check(&settings.lease, error, sizeof(error)), KC_OK);
    kci_config_context context = {.source = "flags", .error = error, .error_size = sizeof(error)};
    assert_int_equal(kci_config_apply_text(&context, part_key("lease_ttl"), "3s", &settings),
                     KC_OK);
    assert_int_equal(kci_config_apply_text(&context, part_key("lease_renew"), "500ms", &settings),
                     KC_OK);
    assert_int_equal(kci_config_apply_text(&context, part_key("lease_margin"), "0", &settings),
                     KC_OK);
    assert_int_equal(kci_config_apply_text(&context, part_key("lease_replicas"), "1", &settings),
                     KC_OK);
    assert_int_equal(
        kci_config_apply_text(&context, part_key("lease_bucket"), "leases_a", &settings), KC_OK);
    assert_int_not_equal(
        kci_config_apply_text(&context, part_key("lease_replicas"), "6", &settings), KC_OK);
    kci_lease_config config;
    kci_lease_config_init(&config);
    kci_lease_settings_apply(&settings.lease, &config);
    assert_string_equal(config.bucket, "leases_a");
    assert_int_equal(config.ttl_ms, 3000);
    assert_int_equal(config.renew_ms, 500);
    assert_int_equal(config.margin_ms, 0);
    assert_int_equal(config.replicas, 1);
    assert_int_equal(kci_lease_settings_check(&settings.lease, error, sizeof(error)), KC_OK);
    assert_int_equal(kci_config_apply_text(&context, part_key("lease_ttl"), "900ms", &settings),
                     KC_OK);
    assert_int_equal(kci_lease_settings_check(&settings.lease, error, sizeof(error)),
                     KC_ERR_CONFIG);
    assert_non_null(strstr(error, "ttl"));
    kci_lease_settings_free(&settings.lease);
    assert_null(settings.lease.bucket);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_record_round_trip),
        cmocka_unit_test(test_record_format_refuses),
        cmocka_unit_test(test_record_parse_refuses),
        cmocka_unit_test(test_record_every_cut),
        cmocka_unit_test(test_decide_free_records),
        cmocka_unit_test(test_decide_expiry),
        cmocka_unit_test(test_decide_whose_ttl),
        cmocka_unit_test(test_holder_stops_first),
        cmocka_unit_test(test_judge),
        cmocka_unit_test(test_config_check),
        cmocka_unit_test(test_holder_make),
        cmocka_unit_test(test_settings_keys),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
