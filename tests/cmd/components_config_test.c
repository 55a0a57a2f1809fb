/* components_config_test.c - the parts' blocks of kcobrad's config file,
 * read by each part with its own key table (src/<part>/config.c) through
 * kci_components_config_load, and checked at load by the hook kcobrad
 * registers (kci_options_set_part_check): the defaults, every key, the
 * --ingress_port flag, and a table of blocks that must be refused with
 * their messages. (These cases were in tests/broker/options_test.c while
 * the broker read the parts' keys itself.) */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "broker/options.h"
#include "cmd/components.h"

enum { ERROR_BYTES = 512 };

/* Defaults, the text as the config file, the broker's checks, then the
 * parts' (as kcobrad's load does). */
static kc_err load_text(kci_options *options, kci_components_config *config, const char *text,
                        char *error)
{
    kci_options_init_defaults(options);
    kci_conf_value *root = NULL;
    kc_err err = kci_conf_parse(text, strlen(text), &root, error, ERROR_BYTES);
    if (err != KC_OK) fail_msg("config does not parse: %s", error);
    err = kci_options_apply_conf(options, root, error, ERROR_BYTES);
    options->conf = root;
    if (err == KC_OK) err = kci_options_validate(options, error, ERROR_BYTES);
    if (err == KC_OK) err = kci_components_config_load(config, options, error, ERROR_BYTES);
    return err;
}

static void load_ok(kci_options *options, kci_components_config *config, const char *text)
{
    char error[ERROR_BYTES] = "";
    if (load_text(options, config, text, error) != KC_OK) fail_msg("\"%s\": %s", text, error);
}

static void test_defaults(void **state)
{
    (void)state;
    kci_options options;
    kci_components_config config;
    load_ok(&options, &config, "");
    assert_true(config.keeper.enabled);
    assert_string_equal(config.keeper.file, "data/suggestions.jsonl");
    assert_false(config.ingress.enabled);
    assert_string_equal(config.ingress.host, "127.0.0.1"); /* loopback: no authentication */
    assert_int_equal(config.ingress.port, 4223);
    assert_string_equal(config.ingress.type, "default");
    assert_int_equal(config.ingress.timeout_ms, 5000);
    kci_components_config_free(&config);
    kci_options_free(&options);
}

/* kcobrad's own blocks: data_dir, suggestions { }, ingress { }. */
static void test_component_keys(void **state)
{
    (void)state;
    kci_options options;
    kci_components_config config;
    load_ok(&options, &config,
            "data_dir: \"/var/lib/kc\"\n"
            "suggestions { enabled: false, file: \"/x/s.jsonl\" }\n"
            "ingress { enabled: true, listen: \"127.0.0.1:5000\", type: seed,"
            " timeout: \"2s\" }\n");
    assert_string_equal(options.data_dir, "/var/lib/kc");
    assert_false(config.keeper.enabled);
    assert_string_equal(config.keeper.file, "/x/s.jsonl");
    assert_true(config.ingress.enabled);
    assert_string_equal(config.ingress.host, "127.0.0.1");
    assert_int_equal(config.ingress.port, 5000);
    assert_string_equal(config.ingress.type, "seed");
    assert_int_equal(config.ingress.timeout_ms, 2000);
    kci_components_config_free(&config);
    kci_options_free(&options);
    /* a port alone; a later block replaces an earlier one whole */
    load_ok(&options, &config,
            "data_dir: /d\n"
            "ingress { listen: \"10.0.0.1:1\", type: a, timeout: 1 }\n"
            "ingress { enabled: true, listen: 5001 }\n"
            "suggestions { file: f }\nsuggestions { }");
    assert_true(config.ingress.enabled);
    assert_string_equal(config.ingress.host, "127.0.0.1");
    assert_int_equal(config.ingress.port, 5001);
    assert_string_equal(config.ingress.type, "default");
    assert_int_equal(config.ingress.timeout_ms, 5000);
    assert_true(config.keeper.enabled);
    assert_string_equal(config.keeper.file, "/d/suggestions.jsonl");
    kci_components_config_free(&config);
    kci_options_free(&options);
    /* no host: every interface, by name (the default is loopback) */
    load_ok(&options, &config, "ingress { listen: \":5002\" }\n");
    assert_string_equal(config.ingress.host, "0.0.0.0");
    assert_int_equal(config.ingress.port, 5002);
    kci_components_config_free(&config);
    kci_options_free(&options);
}

/* arbiter { }: the component's defaults, every key, lists. */
static void test_arbiter_block(void **state)
{
    (void)state;
    kci_options options;
    kci_components_config config;
    load_ok(&options, &config, "data_dir: /d\n");
    assert_false(config.arbiter.enabled);
    assert_string_equal(config.arbiter.data_dir, "/d");
    assert_int_equal(config.arbiter.arbiters, 1);
    assert_int_equal(config.arbiter.tick_ms, 1000);
    assert_int_equal(config.arbiter.quarantine_ms, 300 * 1000);
    assert_int_equal(config.arbiter.slow_ms, 250);
    kci_components_config_free(&config);
    kci_options_free(&options);
    load_ok(&options, &config,
            "arbiter { enabled: true, id: a2, arbiters: 4, tick: \"500ms\", quarantine: \"1m\","
            " probation: \"30s\", slow: \"100ms\", target: \"20ms\", qos_samples: 7,"
            " probes: [\"sense=21.5\", \"echo=hi\"], pretrusted: [n1], peers: [a1, a3] }\n");
    assert_true(config.arbiter.enabled);
    assert_string_equal(config.arbiter.id, "a2");
    assert_int_equal(config.arbiter.arbiters, 4);
    assert_int_equal(config.arbiter.tick_ms, 500);
    assert_int_equal(config.arbiter.quarantine_ms, 60 * 1000);
    assert_int_equal(config.arbiter.probation_ms, 30 * 1000);
    assert_int_equal(config.arbiter.slow_ms, 100);
    assert_int_equal(config.arbiter.target_ms, 20);
    assert_int_equal(config.arbiter.qos_samples, 7);
    assert_int_equal(config.arbiter.probes.count, 2);
    assert_string_equal(config.arbiter.probes.items[1], "echo=hi");
    assert_int_equal(config.arbiter.pretrusted.count, 1);
    assert_int_equal(config.arbiter.peers.count, 2);
    kci_components_config_free(&config);
    kci_options_free(&options);
}

/* ledger { } and persister { }: a ledger block runs the ledger; every key. */
static void test_ledger_and_persister_blocks(void **state)
{
    (void)state;
    kci_options options;
    kci_components_config config;
    load_ok(&options, &config, "data_dir: /d\n");
    assert_false(config.ledger.enabled);
    assert_string_equal(config.ledger.dir, "/d/ledger");
    assert_true(config.ledger.mint);
    assert_int_equal(config.ledger.map_bytes, 1 << 30);
    assert_true(config.persister.enabled);
    assert_string_equal(config.persister.dir, "/d/queue");
    assert_string_equal(config.persister.durability, "batch");
    assert_int_equal(config.persister.segment_bytes, 64 * 1024 * 1024);
    assert_int_equal(config.persister.retention_ms, 24 * 60 * 60 * 1000);
    kci_components_config_free(&config);
    kci_options_free(&options);
    load_ok(&options, &config,
            "ledger { dir: /l, workers: 3, mint: false, map_size: 2GB, reap_interval: \"5s\","
            " reap_age: \"2h\" }\n"
            "persister { dir: /q, durability: always, segment_size: 1MB, redelivery_timeout: 2,"
            " redelivery_backoff_max: \"1m\", max_attempts: 3, retention: 0,"
            " skip_corrupt: true, record_requests: true }\n");
    assert_true(config.ledger.enabled);
    assert_string_equal(config.ledger.dir, "/l");
    assert_int_equal(config.ledger.workers, 3);
    assert_false(config.ledger.mint);
    assert_int_equal(config.ledger.map_bytes, 2LL << 30);
    assert_int_equal(config.ledger.reap_interval_ms, 5000);
    assert_int_equal(config.ledger.reap_age_ms, 2 * 3600 * 1000);
    assert_string_equal(config.persister.dir, "/q");
    assert_string_equal(config.persister.durability, "always");
    assert_int_equal(config.persister.segment_bytes, 1 << 20);
    assert_int_equal(config.persister.redelivery_timeout_ms, 2000);
    assert_int_equal(config.persister.attempts_max, 3);
    assert_int_equal(config.persister.retention_ms, 0);
    assert_true(config.persister.skip_corrupt && config.persister.record_requests);
    kci_components_config_free(&config);
    kci_options_free(&options);
    load_ok(&options, &config, "ledger { enabled: false }\npersister { enabled: false }\n");
    assert_false(config.ledger.enabled);
    assert_false(config.persister.enabled);
    kci_components_config_free(&config);
    kci_options_free(&options);
}

/* The components' examples of docs/config.md, docs/ingress.md and
 * docs/ledger.md, word for word: each is read by its part. */
static const char *const docs_examples[] = {
    "data_dir: \"/var/lib/kingcobra\"\n"
    "suggestions { enabled: true }\n"
    "ingress {\n  enabled: true\n  listen: \"0.0.0.0:4223\"\n  type: \"default\"\n"
    "  timeout: \"5s\"\n}\n",
    "ledger {\n  dir: \"/var/lib/kingcobra/ledger\"\n  workers: 2\n}\n",
    "arbiter {\n  enabled: true\n  id: \"arbiter-0\"\n  arbiters: 4\n  probes: "
    "[\"sense=21.5\"]\n}\n",
    "persister {\n  dir: \"/var/lib/kingcobra/queue\"\n  durability: batch\n"
    "  redelivery_timeout: \"10s\"\n  max_attempts: 20\n}\n",
    "ingress {\n  enabled: true          # default false\n"
    "  listen: \"0.0.0.0:4223\" # or a port alone; \"127.0.0.1:0\" picks a free port\n"
    "  type: \"default\"        # the request type of every line: one subject token\n"
    "  timeout: \"5s\"          # per request\n}\n",
    "data_dir: \"data\"        # default \"data\"\nsuggestions {\n"
    "  enabled: true         # default true\n"
    "  file: \"/var/lib/kingcobra/suggestions.jsonl\"  # default <data_dir>/suggestions.jsonl\n}\n",
    "ledger {\n  dir: \"/var/lib/kingcobra/ledger\"   # default <data_dir>/ledger\n"
    "  workers: 2                         # signature-checking threads (default: one per core)\n"
    "  mint: true                         # false: refuse kc.ledger.mint\n"
    "  map_size: 1GB                      # LMDB map (address space, not disk)\n"
    "  reap_interval: \"1m\"\n  reap_age: \"1h\"\n}\n",
};

static void test_docs_examples(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof docs_examples / sizeof docs_examples[0]; i++) {
        kci_options options;
        kci_components_config config;
        load_ok(&options, &config, docs_examples[i]);
        kci_components_config_free(&config);
        kci_options_free(&options);
    }
}

/* --ingress_port turns the ingress on at that port, over the block. */
static void test_ingress_port_flag(void **state)
{
    (void)state;
    kci_options options;
    kci_components_config config;
    char error[ERROR_BYTES] = "";
    kci_options_init_defaults(&options);
    options.ingress_port_flag = 5555;
    assert_int_equal(kci_components_config_load(&config, &options, error, sizeof error), KC_OK);
    assert_true(config.ingress.enabled);
    assert_int_equal(config.ingress.port, 5555);
    kci_components_config_free(&config);
    kci_options_free(&options);
}

static const struct {
    const char *text;
    const char *message;
} bad_blocks[] = {
    {"ingress: true", "'ingress' must be a map, not a boolean"},
    {"ingress { port: 1 }", "unknown key 'port' in ingress"},
    {"ingress { listen: \"nohost\" }", "'listen': \"nohost\" is not host:port"},
    {"ingress { timeout: \"0s\" }", "'timeout' must be longer than zero"},
    {"ingress { enabled: 1 }", "'enabled' must be true or false"},
    {"suggestions: \"on\"", "'suggestions' must be a map, not a string"},
    {"suggestions { path: x }", "unknown key 'path' in suggestions"},
    {"suggestions { file: \"\" }", "suggestions file is empty"},
    {"ingress { type: \"a.b\" }", "ingress type \"a.b\" must be one subject token"},
    {"ingress { type: \"a*\" }", "must be one subject token"},
    {"ingress { type: \"\" }", "must be one subject token"},
    {"arbiter: 1", "'arbiter' must be a map, not an integer"},
    {"arbiter { probes: [\"noequals\"] }",
     "arbiter probe \"noequals\" is not \"<type>=<payload>\""},
    {"arbiter { probes: \"a=b\" }", "'probes' must be an array of at most 64 strings"},
    {"arbiter { arbiters: 0 }", "'arbiters' is 0; it must be from 1 to 64"},
    {"arbiter { tick: \"0s\" }", "'tick' must be longer than zero"},
    {"arbiter { votes: 3 }", "unknown key 'votes' in arbiter"},
    {"ledger { workers: 0 }", "'workers' is 0; it must be from 1 to 64"},
    {"ledger { mint: \"no\" }", "'mint' must be true or false"},
    {"ledger { dir: \"\" }", "ledger dir is empty"},
    {"persister { durability: fast }",
     "persister durability \"fast\" must be batch, always or none"},
    {"persister { segment_size: 1kb }", "'segment_size' is 1024; it must be from 65536"},
    {"persister { max_attempts: 5000 }", "'max_attempts' is 5000; it must be from 1 to 1000"},
    {"persister { dir: \"\" }", "persister dir is empty"},
    {"persister { retention: \"-1s\" }", "'retention' must be longer than zero"},
};

static void test_bad_blocks(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof bad_blocks / sizeof bad_blocks[0]; i++) {
        kci_options options;
        kci_components_config config;
        char error[ERROR_BYTES] = "";
        kc_err err = load_text(&options, &config, bad_blocks[i].text, error);
        if (err != KC_ERR_CONFIG)
            fail_msg("case %zu \"%s\": code %d (%s)", i, bad_blocks[i].text, err, error);
        if (strstr(error, bad_blocks[i].message) == NULL)
            fail_msg("case %zu \"%s\": message \"%s\" lacks \"%s\"", i, bad_blocks[i].text, error,
                     bad_blocks[i].message);
        kci_options_free(&options);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),      cmocka_unit_test(test_component_keys),
        cmocka_unit_test(test_arbiter_block), cmocka_unit_test(test_ledger_and_persister_blocks),
        cmocka_unit_test(test_docs_examples), cmocka_unit_test(test_ingress_port_flag),
        cmocka_unit_test(test_bad_blocks),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
