/* options_test.c - options from defaults, config text and flags: the
 * defaults; every key and its aliases; durations and sizes; a table of bad
 * configs with the words each message must hold (key and line); the forms
 * permissions take; flags winning over the file; flag errors; --help,
 * --version and -t; reload keeping the flags; and whole configs: one in
 * nats-server's documented style, the examples of docs/config.md and
 * etc/kcobrad.conf, which Debian's nats-server -t must accept too (when it is
 * installed). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "broker/options.h"
#include "common/log.h"

#ifndef KC_VERSION
#define KC_VERSION "0.0.0-unknown" /* as options.c */
#endif

enum {
    ERROR_BYTES = 512,
    OUTPUT_BYTES_MAX = 16384,
    ARGUMENTS_MAX = 32,
};

/* ---------------------------------------------------------- helpers */

/* Defaults, then text applied as a config; returns the code. */
static kc_err apply_text(kci_options *options, const char *text, char *error)
{
    kci_options_init_defaults(options);
    kci_conf_value *root = NULL;
    kc_err err = kci_conf_parse(text, strlen(text), &root, error, ERROR_BYTES);
    if (err != KC_OK) fail_msg("config does not parse: %s", error);
    err = kci_options_apply_conf(options, root, error, ERROR_BYTES);
    if (err == KC_OK) err = kci_options_validate(options, error, ERROR_BYTES);
    kci_conf_free(root);
    return err;
}

static void apply_ok(kci_options *options, const char *text)
{
    char error[ERROR_BYTES] = "";
    kc_err err = apply_text(options, text, error);
    if (err != KC_OK) fail_msg("\"%s\": %s", text, error);
}

typedef struct temp_dir {
    char path[256];
} temp_dir;

static void temp_dir_make(temp_dir *dir)
{
    snprintf(dir->path, sizeof dir->path, "/tmp/kcobrad_options_test_XXXXXX");
    assert_non_null(mkdtemp(dir->path));
}

static const char *temp_file(const temp_dir *dir, const char *name, const char *text, char *path,
                             size_t path_size)
{
    snprintf(path, path_size, "%s/%s", dir->path, name);
    FILE *file = fopen(path, "w");
    assert_non_null(file);
    fputs(text, file);
    fclose(file);
    return path;
}

static void temp_dir_remove(const temp_dir *dir)
{
    static const char *const names[] = {"a.conf", "b.conf", "bad.conf"};
    char path[512];
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        snprintf(path, sizeof path, "%s/%s", dir->path, names[i]);
        unlink(path);
    }
    rmdir(dir->path);
}

/* kci_options_load with argv from a NULL-terminated list; stdout (for
 * --help and friends) is captured into output when it is not NULL. */
static kc_err load_args(kci_options *options, const char *const *list, char *error, char *output)
{
    char *argv[ARGUMENTS_MAX + 1];
    int argc = 0;
    for (; list[argc] != NULL; argc++) {
        assert_true(argc < ARGUMENTS_MAX);
        argv[argc] = (char *)list[argc];
    }
    argv[argc] = NULL;
    fflush(stdout);
    int saved = dup(STDOUT_FILENO);
    FILE *capture = tmpfile();
    assert_non_null(capture);
    dup2(fileno(capture), STDOUT_FILENO);
    error[0] = '\0';
    kc_err err = kci_options_load(options, argc, argv, error, ERROR_BYTES);
    fflush(stdout);
    dup2(saved, STDOUT_FILENO);
    close(saved);
    if (output != NULL) {
        rewind(capture);
        size_t got = fread(output, 1, OUTPUT_BYTES_MAX - 1, capture);
        output[got] = '\0';
    }
    fclose(capture);
    return err;
}

/* ---------------------------------------------------------- defaults */

static void test_defaults(void **state)
{
    (void)state;
    kci_options options;
    kci_options_init_defaults(&options);
    assert_string_equal(options.host, "0.0.0.0");
    assert_int_equal(options.port, 4222);
    assert_null(options.server_name);
    assert_int_equal(options.http_port, 0);
    assert_int_equal(options.max_payload_bytes, 1024 * 1024);
    assert_int_equal(options.max_pending_bytes, 64 * 1024 * 1024);
    assert_int_equal(options.max_control_line_bytes, 4096);
    assert_int_equal(options.max_connections, 64 * 1024);
    assert_int_equal(options.ping_interval_ms, 120000);
    assert_int_equal(options.ping_max, 2);
    assert_int_equal(options.write_deadline_ms, 10000);
    assert_int_equal(options.auth_timeout_ms, 2000);
    assert_int_equal(options.tls_timeout_ms, 2000);
    assert_null(options.auth_token);
    assert_int_equal(options.user_count, 0);
    assert_false(options.tls_enabled);
    assert_false(options.debug);
    assert_false(options.trace);
    assert_true(options.logtime);
    assert_null(options.data_dir); /* the components' defaults: docs/ingress.md */
    assert_null(options.conf);
    assert_int_equal(options.ingress_port_flag, -2); /* the parts: components_config_test.c */
    char error[ERROR_BYTES];
    assert_int_equal(kci_options_validate(&options, error, sizeof error), KC_OK);
    kci_options_free(&options);
    kci_options_free(&options); /* zeroed, so a second free is harmless */

    /* load with no arguments at all: the defaults, http_host set: monitoring
     * on loopback although the listener is on every interface (it has no
     * authentication) */
    const char *const no_flags[] = {"kcobrad", NULL};
    assert_int_equal(load_args(&options, no_flags, error, NULL), KC_OK);
    assert_string_equal(options.host, "0.0.0.0");
    assert_string_equal(options.http_host, "127.0.0.1");
    assert_null(options.config_file);
    kci_options_free(&options);
}

/* ------------------------------------------------------------- keys */

static void test_every_key(void **state)
{
    (void)state;
    kci_options options;
    apply_ok(&options, "host: 127.0.0.1\n"
                       "port: 4333\n"
                       "server_name: \"alpha\"\n"
                       "http: \"127.0.0.2:8333\"\n"
                       "max_payload: 2MB\n"
                       "max_pending: 128MB\n"
                       "max_control_line: 8KB\n"
                       "max_connections: 1000\n"
                       "ping_interval: \"30s\"\n"
                       "ping_max: 5\n"
                       "write_deadline: \"2.5s\"\n"
                       "debug: true\n"
                       "trace: yes\n"
                       "logtime: off\n"
                       "log_file: \"/tmp/k.log\"\n"
                       "pid_file: /tmp/k.pid\n"
                       "authorization { token: \"tok\", timeout: 0.5 }\n"
                       "tls { cert_file: c.pem, key_file: k.pem, ca_file: ca.pem, verify: true,"
                       " timeout: \"3s\" }\n");
    assert_string_equal(options.host, "127.0.0.1");
    assert_int_equal(options.port, 4333);
    assert_string_equal(options.server_name, "alpha");
    assert_string_equal(options.http_host, "127.0.0.2");
    assert_int_equal(options.http_port, 8333);
    assert_int_equal(options.max_payload_bytes, 2 * 1024 * 1024);
    assert_int_equal(options.max_pending_bytes, 128 * 1024 * 1024);
    assert_int_equal(options.max_control_line_bytes, 8192);
    assert_int_equal(options.max_connections, 1000);
    assert_int_equal(options.ping_interval_ms, 30000);
    assert_int_equal(options.ping_max, 5);
    assert_int_equal(options.write_deadline_ms, 2500);
    assert_true(options.debug);
    assert_true(options.trace);
    assert_false(options.logtime);
    assert_string_equal(options.log_file, "/tmp/k.log");
    assert_string_equal(options.pid_file, "/tmp/k.pid");
    assert_string_equal(options.auth_token, "tok");
    assert_int_equal(options.auth_timeout_ms, 500);
    assert_true(options.tls_enabled);
    assert_string_equal(options.tls_cert_file, "c.pem");
    assert_string_equal(options.tls_key_file, "k.pem");
    assert_string_equal(options.tls_ca_file, "ca.pem");
    assert_true(options.tls_verify);
    assert_int_equal(options.tls_timeout_ms, 3000);
    assert_null(options.tls_ciphers); /* the defaults: tls.h */
    assert_null(options.tls_groups);
    kci_options_free(&options);
}

/* nats-server's (Go's) names, mapped to OpenSSL's in the order given. */
static void test_tls_cipher_suites_and_curves(void **state)
{
    (void)state;
    kci_options options;
    apply_ok(&options, "tls { cert_file: c.pem, key_file: k.pem,\n"
                       "  cipher_suites: [TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,\n"
                       "                  tls_ecdhe_ecdsa_with_chacha20_poly1305]\n"
                       "  curve_preferences: [CurveP384, X25519]\n}\n");
    assert_string_equal(options.tls_ciphers,
                        "ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305");
    assert_string_equal(options.tls_groups, "P-384:X25519");
    kci_options_free(&options);
}

static void test_key_aliases(void **state)
{
    (void)state;
    kci_options options;
    apply_ok(&options, "net: 10.0.0.1\nmonitor_port: 8999\nmax_conn: 7\nlogfile: a\npidfile: b\n"
                       "trace_verbose: true\nPORT: 5000");
    assert_string_equal(options.host, "10.0.0.1");
    assert_int_equal(options.http_port, 8999);
    assert_int_equal(options.max_connections, 7);
    assert_string_equal(options.log_file, "a");
    assert_string_equal(options.pid_file, "b");
    assert_true(options.trace);
    assert_int_equal(options.port, 5000);
    kci_options_free(&options);

    apply_ok(&options, "listen: 4444");
    assert_string_equal(options.host, "0.0.0.0");
    assert_int_equal(options.port, 4444);
    kci_options_free(&options);
    apply_ok(&options, "host: 1.2.3.4\nlisten: \":4555\"");
    assert_string_equal(options.host, "0.0.0.0");
    assert_int_equal(options.port, 4555);
    kci_options_free(&options);
    apply_ok(&options, "listen: \"[::1]:4666\"\nhttp: 8666");
    assert_string_equal(options.host, "::1");
    assert_int_equal(options.port, 4666);
    assert_null(options.http_host);
    assert_int_equal(options.http_port, 8666);
    kci_options_free(&options);
    apply_ok(&options, "listen: localhost:-1\nhttp_port: -1");
    assert_string_equal(options.host, "localhost");
    assert_int_equal(options.port, -1);
    kci_options_free(&options);
    /* the last of a repeated key wins, and a later block replaces an earlier one */
    apply_ok(&options, "port: 1\nport: 2\nauthorization { token: a }\n"
                       "authorization { users: [{user: u, password: p}] }");
    assert_int_equal(options.port, 2);
    assert_null(options.auth_token);
    assert_int_equal(options.user_count, 1);
    kci_options_free(&options);
}

/* kcobrad's own key; the parts' blocks: tests/cmd/components_config_test.c. */
static void test_component_keys(void **state)
{
    (void)state;
    kci_options options;
    apply_ok(&options, "data_dir: \"/var/lib/kc\"\n");
    assert_string_equal(options.data_dir, "/var/lib/kc");
    kci_options_free(&options);
}

static void test_durations(void **state)
{
    (void)state;
    static const struct {
        const char *value;
        int64_t ms; /* 0: must fail */
    } cases[] = {
        {"\"2m\"", 120000},
        {"\"10s\"", 10000},
        {"\"1.5s\"", 1500},
        {"\"1h30m\"", 5400000},
        {"\"500ms\"", 500},
        {"\"250us\"", 1},
        {"\"250\xc2\xb5s\"", 1},
        {"\"1m0.5s\"", 60500},
        {"\"+3s\"", 3000},
        {"30", 30000},
        {"0.25", 250},
        {"\"24h\"", 86400000},
        {"\"0\"", 0},
        {"\"-1s\"", 0},
        {"\"2x\"", 0},
        {"\"\"", 0},
        {"\"s\"", 0},
        {"\"1.s\"", 1000},
        {"\".5s\"", 500},
        {"\"5\"", 0},
        {"\"25h\"", 0},
        {"2m", 0},
        {"0", 0},
        {"-5", 0},
        {"true", 0},
        {"[1]", 0},
        {"\"1h 2m\"", 0},
        {"\"1.2.3s\"", 0},
        {"\"1..2s\"", 0},
        {"\"2h45m\"", 9900000},
        {"\"1000ns\"", 1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char text[128];
        snprintf(text, sizeof text, "ping_interval: %s", cases[i].value);
        kci_options options;
        char error[ERROR_BYTES] = "";
        kc_err err = apply_text(&options, text, error);
        if (cases[i].ms == 0 && err == KC_OK)
            fail_msg("%s: accepted as %lld ms", cases[i].value,
                     (long long)options.ping_interval_ms);
        if (cases[i].ms != 0 && err != KC_OK) fail_msg("%s: %s", cases[i].value, error);
        if (cases[i].ms != 0 && options.ping_interval_ms != cases[i].ms)
            fail_msg("%s: %lld ms", cases[i].value, (long long)options.ping_interval_ms);
        if (cases[i].ms == 0 && strstr(error, "ping_interval") == NULL)
            fail_msg("%s: message \"%s\" does not name the key", cases[i].value, error);
        kci_options_free(&options);
    }
    kci_options options;
    char error[ERROR_BYTES];
    assert_int_equal(apply_text(&options, "debug: false\nping_interval: 2m", error), KC_ERR_CONFIG);
    assert_non_null(strstr(error, "line 2: 'ping_interval' is longer than one day"));
    assert_non_null(strstr(error, "quote durations"));
    kci_options_free(&options);
}

/* ------------------------------------------------------ bad configs */

typedef struct bad_config {
    const char *text;
    const char *message; /* a part the message must hold */
} bad_config;

static const bad_config bad_configs[] = {
    {"prot: 4222", "config: line 1: unknown key 'prot' (see docs/config.md)"},
    {"port: 4222\n\n  bogus_key = 1", "line 3: unknown key 'bogus_key'"},
    {"tls { cert_file: a, key_file: b, colour: red }", "unknown key 'colour' in tls"},
    {"authorization {\n  tokn: x\n}", "line 2: unknown key 'tokn' in authorization"},
    {"authorization { users: [{user: a, pasword: b}] }", "unknown key 'pasword' in a user"},
    {"authorization { users: [{user: a, permissions: {publsh: x}}] }",
     "unknown key 'publsh' in permissions"},
    {"authorization { permissions: { publish: { allow: a, block: b } } }",
     "unknown key 'block' in publish"},
    {"port: 70000", "'port' is 70000; a port is 0 to 65535"},
    {"port: -2", "'port' is -2"},
    {"port: \"4222\"", "'port' must be a port number, not a string"},
    {"http_port: 1.5", "'http_port' must be a port number, not a float"},
    {"listen: \"nohost\"", "'listen': \"nohost\" is not host:port"},
    {"listen: \"a:b\"", "is not host:port"},
    {"listen: \"::1:4222\"", "is not host:port"},
    {"listen: \"1.2.3.4:99999\"", "is not host:port"},
    {"listen: [1]", "'listen' must be \"host:port\", not an array"},
    {"http: \"x:y:z\"", "'http': \"x:y:z\" is not host:port"},
    {"max_payload: 0", "'max_payload' is 0; it must be from 1 to 2147483647"},
    {"max_payload: 3GB", "'max_payload' is 3221225472"},
    {"max_payload: \"lots\"", "'max_payload' must be an integer"},
    {"max_payload: 1kbb", "'max_payload' must be an integer"},
    {"max_pending: -1", "'max_pending' is -1"},
    {"max_control_line: 0", "'max_control_line' is 0"},
    {"max_connections: 0", "'max_connections' is 0"},
    {"max_conn: -5", "'max_conn' is -5"},
    {"ping_max: 0", "'ping_max' is 0"},
    {"write_deadline: \"soon\"", "'write_deadline': \"soon\" is not a duration"},
    {"debug: \"yes\"", "'debug' must be true or false, not a string"},
    {"debug: 1", "'debug' must be true or false, not an integer"},
    {"server_name: 5", "'server_name' must be a string, not an integer"},
    {"authorization: \"x\"", "'authorization' must be a map, not a string"},
    {"authorization { token: \"\" }", "authorization token is empty"},
    {"authorization { token: a, users: [] }", "both a token and a users array"},
    {"authorization { token: a, user: b, password: c }", "both a token and a user/password"},
    {"authorization { user: b, users: [{user: c}] }", "both a single user and a users array"},
    {"authorization { password: c }", "has a password but no user"},
    {"authorization { users: {user: a} }", "'users' must be an array, not a map"},
    {"authorization { users: [\"a\"] }", "'users' must be a map per user, not a string"},
    {"authorization { users: [{password: a}] }", "a user needs a 'user' name"},
    {"authorization { users: [{user: a}, {user: b}, {user: a}] }", "user \"a\" is defined twice"},
    {"authorization { users: [{nkey: UABC}] }",
     "nats-server option 'nkey' is not supported by kcobrad"},
    {"authorization { timeout: \"never\" }", "'timeout': \"never\" is not a duration"},
    {"authorization { permissions: \"x\" }", "'permissions' must be a map {publish"},
    {"authorization { permissions: { publish: \"foo..bar\" } }",
     "permission \"foo..bar\" is not a valid subject"},
    {"authorization { permissions: { subscribe: [\"ok\", \">.x\"] } }",
     "permission \">.x\" is not a valid subject"},
    {"authorization { permissions: { subscribe: \"foo q1\" } }",
     "queue group permissions (\"subject queue\") are not supported"},
    {"authorization { permissions: { publish: [] } }", "'publish' is an empty list"},
    {"authorization { permissions: { publish: { deny: [] } } }", "'deny' is an empty list"},
    {"authorization { permissions: { publish: [1] } }", "'publish' must be a subject, not an "
                                                        "integer"},
    {"authorization { permissions: { publish: true } }",
     "'publish' must be a subject or an array of subjects, not a boolean"},
    {"authorization { permissions: { allow_responses: true } }",
     "'allow_responses' is not supported"},
    {"tls: true", "'tls' must be a map, not a boolean"},
    {"tls { cert_file: 1 }", "'cert_file' must be a string"},
    {"tls { verify: \"yes\" }", "'verify' must be true or false"},
    {"tls { cipher_suites: [x] }", "'cipher_suites': unknown name \"x\"; use TLS_ECDHE_"},
    {"tls { cipher_suites: [TLS_RSA_WITH_AES_128_GCM_SHA256] }",
     "'cipher_suites': no forward secrecy or no AEAD in \"TLS_RSA_WITH_AES_128_GCM_SHA256\""},
    {"tls { cipher_suites: [TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA] }",
     "no forward secrecy or no AEAD"},
    {"tls { cipher_suites: [] }", "'cipher_suites' must be a non-empty array"},
    {"tls { cipher_suites: TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256 }", "must be a non-empty array"},
    {"tls { curve_preferences: [CurveP256, P-256] }",
     "'curve_preferences': unknown name \"P-256\""},
    {"tls { timeout: \"0s\" }", "'timeout' must be longer than zero"},
    {"cluster { port: 6222 }", "nats-server option 'cluster' is not supported by kcobrad"},
    {"jetstream { store_dir: /x }", "option 'jetstream' is not supported by kcobrad (only"},
    {"accounts { A: {} }", "'accounts' is not supported"},
    {"websocket { port: 8080 }", "'websocket' is not supported"},
    {"ingress: true", "'ingress' must be a map, not a boolean"},
    {"suggestions: \"on\"", "'suggestions' must be a map, not a string"},
    {"data_dir: 5", "'data_dir' must be a string, not an integer"},
    /* joined checks, made by kci_options_validate */
    {"max_payload: 2MB\nmax_pending: 1MB", "max_payload (2097152) must not be larger than "
                                           "max_pending (1048576)"},
    {"tls { cert_file: a.pem }", "TLS needs both a certificate"},
    {"tls { key_file: a.pem }", "TLS needs both a certificate"},
    {"tls { verify: true }", "TLS verify and ca_file need cert_file and key_file"},
    {"port: 4222\nhttp_port: 4222", "port and http_port are both 4222"},
    {"server_name: \"has space\"", "server_name \"has space\" must not contain spaces"},
    {"host: \"\"", "the listen host is empty"},
    {"data_dir: \"\"", "data_dir is empty"},
};

static void test_bad_configs(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof bad_configs / sizeof bad_configs[0]; i++) {
        kci_options options;
        char error[ERROR_BYTES] = "";
        kc_err err = apply_text(&options, bad_configs[i].text, error);
        if (err != KC_ERR_CONFIG)
            fail_msg("case %zu \"%s\": code %d (%s)", i, bad_configs[i].text, err, error);
        if (strstr(error, bad_configs[i].message) == NULL)
            fail_msg("case %zu \"%s\": message \"%s\" lacks \"%s\"", i, bad_configs[i].text, error,
                     bad_configs[i].message);
        kci_options_free(&options);
    }
}

/* ------------------------------------------------------ permissions */

static void assert_list(const kci_permission_list *list, const char *allow, const char *deny)
{
    char joined[256] = "";
    for (size_t i = 0; i < list->allow_count; i++) {
        if (i > 0) strcat(joined, ",");
        strcat(joined, list->allow[i]);
    }
    assert_string_equal(joined, allow);
    joined[0] = '\0';
    for (size_t i = 0; i < list->deny_count; i++) {
        if (i > 0) strcat(joined, ",");
        strcat(joined, list->deny[i]);
    }
    assert_string_equal(joined, deny);
}

static void test_permission_forms(void **state)
{
    (void)state;
    kci_options options;
    apply_ok(&options, "authorization {\n"
                       "  default_permissions { publish: \"pub.>\", subscribe: [\"a\", \"b.*\"] }\n"
                       "  users: [\n"
                       "    {user: s, password: p, permissions: {pub: x, sub: {deny: \"y.>\"}}}\n"
                       "    {user: m, password: p, permissions: {\n"
                       "       publish: {allow: [\"o.>\", \"p\"], deny: \"o.admin\"}\n"
                       "       import: \"imp\" }}\n"
                       "    {username: e, pass: p, permission: {export: [\">\"]}}\n"
                       "    {user: n, password: p, permissions: {publish: {}}}\n"
                       "    {user: nopass}\n"
                       "  ]\n"
                       "}\n");
    assert_int_equal(options.user_count, 5);
    const kci_permissions *defaults = &options.default_permissions;
    assert_true(defaults->publish.present && defaults->subscribe.present);
    assert_list(&defaults->publish, "pub.>", "");
    assert_list(&defaults->subscribe, "a,b.*", "");
    const kci_user *users = options.users;
    assert_string_equal(users[0].user, "s");
    assert_string_equal(users[0].password, "p");
    assert_list(&users[0].permissions.publish, "x", "");
    assert_true(users[0].permissions.subscribe.present);
    assert_list(&users[0].permissions.subscribe, "", "y.>");
    /* import comes after publish in the map, so it replaces it */
    assert_list(&users[1].permissions.publish, "imp", "");
    assert_false(users[1].permissions.subscribe.present);
    assert_string_equal(users[2].user, "e");
    assert_list(&users[2].permissions.subscribe, ">", "");
    assert_false(users[2].permissions.publish.present);
    assert_false(users[3].permissions.publish.present); /* {} is no permission */
    assert_string_equal(users[4].password, "");
    kci_options_free(&options);

    apply_ok(&options, "authorization { users: [{user: m, password: p, permissions: {\n"
                       "  publish: {allow: [\"o.>\", \"p\"], deny: \"o.admin\"} }}] }");
    assert_list(&options.users[0].permissions.publish, "o.>,p", "o.admin");
    kci_options_free(&options);

    /* the single-user form and "permissions" as the defaults */
    apply_ok(&options, "authorization { user: solo, password: pw, permissions: {sub: \"s\"},"
                       " timeout: 3 }");
    assert_int_equal(options.user_count, 1);
    assert_string_equal(options.users[0].user, "solo");
    assert_string_equal(options.users[0].password, "pw");
    assert_false(options.users[0].permissions.subscribe.present);
    assert_list(&options.default_permissions.subscribe, "s", "");
    assert_int_equal(options.auth_timeout_ms, 3000);
    kci_options_free(&options);
}

/* A key used as a $variable is not unknown, as in nats-server. */
static void test_variables_are_not_unknown_keys(void **state)
{
    (void)state;
    kci_options options;
    apply_ok(&options, "TOKEN: \"from-variable\"\nPORT_NUMBER = 4999\n"
                       "authorization { token: $TOKEN }\nport: $PORT_NUMBER");
    assert_string_equal(options.auth_token, "from-variable");
    assert_int_equal(options.port, 4999);
    kci_options_free(&options);
    char error[ERROR_BYTES];
    assert_int_equal(apply_text(&options, "UNUSED: 1\nport: 4000", error), KC_ERR_CONFIG);
    assert_non_null(strstr(error, "unknown key 'UNUSED'"));
    kci_options_free(&options);
}

static void test_ignored_keys(void **state)
{
    (void)state;
    kci_log_configure(KCI_LOG_ERROR, false); /* the warnings are expected */
    kci_options options;
    apply_ok(&options, "syslog: true\nremote_syslog: \"udp://x:514\"\nlog_size_limit: 1GB\n"
                       "max_traced_msg_len: 10\ndisable_sublist_cache: true\nprof_port: 6060\n"
                       "lame_duck_duration: \"30s\"\n"
                       "server_tags: [a]\nclient_advertise: x\nports_file_dir: /tmp\n"
                       "http_base_path: /m\nno_header_support: false\njetstream: false\n"
                       "max_sub_tokens: 10\nconnect_error_reports: 1\nreconnect_error_reports: 1\n"
                       "no_sublist_cache: true\nlame_duck_grace_period: \"10s\"\n"
                       "logfile_size_limit: 1\nmax_subscription_tokens: 10");
    kci_options_free(&options);
    apply_ok(&options, "jetstream: disabled");
    kci_options_free(&options);
    kci_log_configure(KCI_LOG_INFO, true);
}

/* max_subs (or max_subscriptions): a limit per connection; 0 is none. */
static void test_max_subscriptions(void **state)
{
    (void)state;
    kci_options options;
    apply_ok(&options, "port: 4222");
    assert_int_equal(options.max_subscriptions, 0);
    kci_options_free(&options);
    apply_ok(&options, "max_subs: 10");
    assert_int_equal(options.max_subscriptions, 10);
    kci_options_free(&options);
    apply_ok(&options, "max_subscriptions: 5");
    assert_int_equal(options.max_subscriptions, 5);
    kci_options_free(&options);
    apply_ok(&options, "max_subs: 0");
    assert_int_equal(options.max_subscriptions, 0);
    kci_options_free(&options);
    char error[ERROR_BYTES] = "";
    assert_int_not_equal(apply_text(&options, "max_subs: -1", error), KC_OK);
    kci_options_free(&options);
}

/* ------------------------------------------------------------ flags */

static void test_flags_override_file(void **state)
{
    (void)state;
    temp_dir dir;
    temp_dir_make(&dir);
    char path[512];
    temp_file(&dir, "a.conf",
              "port: 4333\nhost: 10.1.1.1\ndebug: false\nmax_payload: 1MB\n"
              "authorization { users: [{user: file_user, password: file_pass}] }\n"
              "tls { cert_file: \"file.pem\" }\n",
              path, sizeof path);
    kci_options options;
    char error[ERROR_BYTES];
    const char *const args[] = {"kcobrad",     "-c",
                                path,          "-p",
                                "5000",        "-DV",
                                "--user",      "u",
                                "--pass",      "pw",
                                "-addr",       "127.0.0.1",
                                "--name=n1",   "-m",
                                "8555",        "-l",
                                "/tmp/l.log",  "-P",
                                "/tmp/p.pid",  "--logtime=false",
                                "--tlskey",    "key.pem",
                                "--tlscacert", "ca.pem",
                                "--tlsverify", "--max_payload",
                                "2MB",         NULL};
    kc_err err = load_args(&options, args, error, NULL);
    if (err != KC_OK) fail_msg("%s", error);
    assert_string_equal(options.config_file, path);
    assert_int_equal(options.port, 5000);
    assert_string_equal(options.host, "127.0.0.1");
    assert_string_equal(options.http_host, "127.0.0.1");
    assert_string_equal(options.server_name, "n1");
    assert_int_equal(options.http_port, 8555);
    assert_true(options.debug);
    assert_true(options.trace);
    assert_false(options.logtime);
    assert_string_equal(options.log_file, "/tmp/l.log");
    assert_string_equal(options.pid_file, "/tmp/p.pid");
    assert_int_equal(options.user_count, 1);
    assert_string_equal(options.users[0].user, "u");
    assert_string_equal(options.users[0].password, "pw");
    assert_true(options.tls_enabled); /* cert from the file, key from a flag */
    assert_string_equal(options.tls_cert_file, "file.pem");
    assert_string_equal(options.tls_key_file, "key.pem");
    assert_string_equal(options.tls_ca_file, "ca.pem");
    assert_true(options.tls_verify);
    assert_int_equal(options.max_payload_bytes, 2 * 1024 * 1024);
    kci_options_free(&options);
    temp_dir_remove(&dir);
}

/* nats-server's spellings: -port with one dash, --net, -D -V apart, --auth */
static void test_flag_spellings(void **state)
{
    (void)state;
    temp_dir dir;
    temp_dir_make(&dir);
    char path[512];
    temp_file(&dir, "a.conf",
              "port: 4333\nauthorization { users: [{user: file_user, password: file_pass}] }\n"
              "tls { cert_file: \"file.pem\" }\n",
              path, sizeof path);
    kci_options options;
    char error[ERROR_BYTES];
    const char *const other[] = {"kcobrad", "-config", path, "-port",  "5001", "--net",
                                 "::",      "-D",      "-V", "--auth", "tok",  "--tlskey=k.pem",
                                 "-T",      NULL};
    kc_err err = load_args(&options, other, error, NULL);
    if (err != KC_OK) fail_msg("%s", error);
    assert_int_equal(options.port, 5001);
    assert_string_equal(options.host, "::");
    assert_true(options.debug && options.trace && options.logtime);
    assert_string_equal(options.auth_token, "tok");
    assert_int_equal(options.user_count, 0); /* --auth replaces the file's users */
    kci_options_free(&options);
    const char *const go_bool[] = {"kcobrad", "-T=false", "-VD", NULL};
    err = load_args(&options, go_bool, error, NULL);
    if (err != KC_OK) fail_msg("%s", error);
    assert_false(options.logtime);
    assert_true(options.debug && options.trace);
    kci_options_free(&options);

    /* the components' flags: a port for the ingress turns it on (the
     * ingress reads it: tests/cmd/components_config_test.c) */
    const char *const components[] = {"kcobrad", "--data_dir", "/d", "-ingress_port", "5555", NULL};
    err = load_args(&options, components, error, NULL);
    if (err != KC_OK) fail_msg("%s", error);
    assert_string_equal(options.data_dir, "/d");
    assert_int_equal(options.ingress_port_flag, 5555);
    kci_options_free(&options);

    /* --pass alone changes the file's single user */
    const char *const pass_only[] = {"kcobrad", "-c", path, "--pass", "new", "--tlskey", "k", NULL};
    err = load_args(&options, pass_only, error, NULL);
    if (err != KC_OK) fail_msg("%s", error);
    assert_string_equal(options.users[0].user, "file_user");
    assert_string_equal(options.users[0].password, "new");
    kci_options_free(&options);
    temp_dir_remove(&dir);
}

typedef struct bad_flags {
    const char *args[8];
    const char *message;
} bad_flags;

static void test_bad_flags(void **state)
{
    (void)state;
    static const bad_flags cases[] = {
        {{"kcobrad", "--bogus", NULL}, "unknown or ambiguous flag '--bogus' (see --help)"},
        {{"kcobrad", "-x", NULL}, "flag '-x' (see --help)"},
        {{"kcobrad", "-Dx", NULL}, "unknown flag '-x'"},
        {{"kcobrad", "-p", NULL}, "flag '-p' needs a value"},
        {{"kcobrad", "--port", NULL}, "flag '--port' needs a value"},
        {{"kcobrad", "-p", "abc", NULL}, "--port: 'abc' is not a port"},
        {{"kcobrad", "-p", "65536", NULL}, "--port: '65536' is not a port"},
        {{"kcobrad", "-m", "1k", NULL}, "--http_port: '1k' is not a port"},
        {{"kcobrad", "-a", "", NULL}, "--addr needs a value"},
        {{"kcobrad", "stray", NULL}, "unexpected argument 'stray'"},
        {{"kcobrad", "-D", "stray", "-V", NULL}, "unexpected argument 'stray'"},
        {{"kcobrad", "--auth", "t", "--user", "u", NULL}, "--auth and --user cannot be used"},
        {{"kcobrad", "--pass", "p", NULL}, "--pass needs --user"},
        {{"kcobrad", "--tls", NULL}, "--tls and --tlsverify need a certificate and key"},
        {{"kcobrad", "--tlsverify", "--tlscert", "c", NULL}, "need a certificate and key"},
        {{"kcobrad", "--tlscert", "c", NULL}, "TLS needs both a certificate"},
        {{"kcobrad", "--logtime=maybe", NULL}, "--logtime: 'maybe' is not true or false"},
        {{"kcobrad", "--max_payload", "big", NULL}, "--max_payload: 'big' is not a size"},
        {{"kcobrad", "--max_payload", "100MB", NULL}, "must not be larger than max_pending"},
        {{"kcobrad", "-c", "/nonexistent/kcobrad.conf", NULL},
         "/nonexistent/kcobrad.conf: No such file or directory"},
        {{"kcobrad", "-p", "4222", "-m", "4222", NULL}, "port and http_port are both 4222"},
        {{"kcobrad", "--ingress_port", "x", NULL}, "--ingress_port: 'x' is not a port"},
        {{"kcobrad", "--data_dir", "", NULL}, "--data_dir needs a value"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        kci_options options;
        char error[ERROR_BYTES];
        kc_err err = load_args(&options, cases[i].args, error, NULL);
        if (err != KC_ERR_CONFIG) fail_msg("case %zu: code %d (%s)", i, err, error);
        if (strstr(error, cases[i].message) == NULL)
            fail_msg("case %zu: message \"%s\" lacks \"%s\"", i, error, cases[i].message);
        kci_options zero;
        memset(&zero, 0, sizeof zero);
        assert_memory_equal(&options, &zero, sizeof zero); /* load freed them */
        kci_options_free(&options);
    }
}

static void test_config_file_errors(void **state)
{
    (void)state;
    temp_dir dir;
    temp_dir_make(&dir);
    char path[512];
    char error[ERROR_BYTES];
    char expected[600];
    kci_options options;
    temp_file(&dir, "bad.conf", "port: 4222\nmax_payload: [1,\n", path, sizeof path);
    const char *const syntax[] = {"kcobrad", "-c", path, NULL};
    assert_int_equal(load_args(&options, syntax, error, NULL), KC_ERR_CONFIG);
    snprintf(expected, sizeof expected, "%s: line 3, column 1: end of input inside the array",
             path);
    assert_non_null(strstr(error, expected));
    kci_options_free(&options);

    temp_file(&dir, "bad.conf", "port: 4222\n\nprot: 4223\n", path, sizeof path);
    assert_int_equal(load_args(&options, syntax, error, NULL), KC_ERR_CONFIG);
    snprintf(expected, sizeof expected, "%s: line 3: unknown key 'prot'", path);
    assert_non_null(strstr(error, expected));
    kci_options_free(&options);
    temp_dir_remove(&dir);
}

static void test_help(void **state)
{
    (void)state;
    kci_options options;
    char error[ERROR_BYTES];
    char *output = malloc(OUTPUT_BYTES_MAX);
    assert_non_null(output);
    const char *const help[] = {"kcobrad", "--help", NULL};
    assert_int_equal(load_args(&options, help, error, output), KC_ERR_HELP);
    assert_non_null(strstr(output, "Usage: kcobrad [options]"));
    /* every flag is listed, each with its default */
    static const char *const listed[] = {
        "-a, --addr, --net <host>",
        "-p, --port <port>",
        "--server_name",
        "-m, --http_port",
        "-c, --config <file>",
        "-t ",
        "-P, --pid <file>",
        "--max_payload <size>",
        "-l, --log <file>",
        "-T, --logtime",
        "-D, --debug",
        "-V, --trace",
        "-DV",
        "--user <user>",
        "--pass <password>",
        "--auth <token>",
        "--tls ",
        "--tlscert <file>",
        "--tlskey <file>",
        "--tlsverify",
        "--tlscacert <file>",
        "--data_dir <dir>",
        "--ingress_port <port>",
        "-h, --help",
        "-v, --version",
        "(default: 0.0.0.0)",
        "(default: 4222)",
        "(default: 1048576, 1MB)",
    };
    for (size_t i = 0; i < sizeof listed / sizeof listed[0]; i++)
        if (strstr(output, listed[i]) == NULL) fail_msg("--help lacks \"%s\"", listed[i]);
    for (const char *line = strstr(output, "    -"); line != NULL;
         line = strstr(line + 1, "\n    ")) {
        const char *end = strchr(line + 1, '\n');
        size_t length = end != NULL ? (size_t)(end - line) : strlen(line);
        size_t indent = strspn(line, "\n ");
        if (line[indent] != '-') continue; /* a wrapped description's next line */
        bool has_default = memmem(line, length, "default", 7) != NULL;
        bool exempt = memmem(line, length, "-h, --help", 10) != NULL ||
                      memmem(line, length, "--version", 9) != NULL ||
                      memmem(line, length, "-DV", 3) != NULL ||
                      memmem(line, length, "-t ", 3) != NULL;
        if (!has_default && !exempt) fail_msg("no default in \"%.*s\"", (int)length, line);
    }
    kci_options_free(&options);
    free(output);
}

static void test_version_and_test_flag(void **state)
{
    (void)state;
    kci_options options;
    char error[ERROR_BYTES];
    char *output = malloc(OUTPUT_BYTES_MAX);
    assert_non_null(output);
    const char *const short_help[] = {"kcobrad", "-h", NULL};
    assert_int_equal(load_args(&options, short_help, error, output), KC_ERR_HELP);
    kci_options_free(&options);

    const char *const version[] = {"kcobrad", "-v", NULL};
    assert_int_equal(load_args(&options, version, error, output), KC_ERR_HELP);
    char expected[64];
    snprintf(expected, sizeof expected, "kcobrad version %s\n", KC_VERSION);
    assert_string_equal(output, expected);
    kci_options_free(&options);

    temp_dir dir;
    temp_dir_make(&dir);
    char path[512];
    temp_file(&dir, "a.conf", "port: 4222\n", path, sizeof path);
    const char *const test_ok[] = {"kcobrad", "-c", path, "-t", NULL};
    assert_int_equal(load_args(&options, test_ok, error, output), KC_ERR_HELP);
    assert_non_null(strstr(output, "is valid"));
    kci_options_free(&options);
    temp_file(&dir, "b.conf", "port: x:y\n", path, sizeof path);
    const char *const test_bad[] = {"kcobrad", "-t", "-c", path, NULL};
    assert_int_equal(load_args(&options, test_bad, error, output), KC_ERR_CONFIG);
    assert_non_null(strstr(error, "'port' must be a port number"));
    kci_options_free(&options);
    temp_dir_remove(&dir);
    free(output);
}

/* ----------------------------------------------------------- reload */

static void test_reload(void **state)
{
    (void)state;
    temp_dir dir;
    temp_dir_make(&dir);
    char path[512];
    temp_file(&dir, "a.conf",
              "port: 4333\nmax_payload: 1MB\n"
              "authorization { users: [{user: alice, password: a,"
              " permissions: {publish: \"a.>\"}}] }\n",
              path, sizeof path);
    kci_options current;
    char error[ERROR_BYTES];
    const char *const args[] = {"kcobrad", "-c", path, "-D", "-p", "5000", NULL};
    assert_int_equal(load_args(&current, args, error, NULL), KC_OK);
    assert_int_equal(current.port, 5000);
    assert_int_equal(current.user_count, 1);

    temp_file(&dir, "a.conf",
              "port: 4444\nmax_payload: 2MB\ndebug: false\n"
              "authorization { users: [{user: bob, password: b, permissions: {publish: \"b.>\"}},"
              " {user: carol, password: c}] }\n",
              path, sizeof path);
    kci_options fresh;
    assert_int_equal(kci_options_reload(&current, &fresh, error, sizeof error), KC_OK);
    assert_int_equal(fresh.port, 5000); /* the flag still wins */
    assert_true(fresh.debug);           /* so does -D */
    assert_int_equal(fresh.max_payload_bytes, 2 * 1024 * 1024);
    assert_int_equal(fresh.user_count, 2);
    assert_string_equal(fresh.users[0].user, "bob");
    assert_string_equal(fresh.users[0].permissions.publish.allow[0], "b.>");
    assert_string_equal(fresh.config_file, path);
    /* a reload of the reload works too: the arguments went along */
    kci_options again;
    assert_int_equal(kci_options_reload(&fresh, &again, error, sizeof error), KC_OK);
    assert_int_equal(again.port, 5000);
    kci_options_free(&again);
    kci_options_free(&fresh);

    temp_file(&dir, "a.conf", "port: 4444\nmax_payload: huge\n", path, sizeof path);
    memset(&fresh, 0x5a, sizeof fresh);
    assert_int_equal(kci_options_reload(&current, &fresh, error, sizeof error), KC_ERR_CONFIG);
    assert_non_null(strstr(error, "line 2: 'max_payload' must be an integer"));
    kci_options zero;
    memset(&zero, 0, sizeof zero);
    assert_memory_equal(&fresh, &zero, sizeof zero);
    assert_int_equal(current.user_count, 1); /* untouched */
    assert_string_equal(current.users[0].user, "alice");
    kci_options_free(&current);
    temp_dir_remove(&dir);
}

/* -------------------------------------------------- whole configs */

/* A config in the style of nats-server's documentation. */
static const char nats_server_config[] =
    "# Client port of 4222 on all interfaces\n"
    "port: 4222\n"
    "monitor_port: 8222\n"
    "server_name: \"n1\"\n"
    "max_payload: 1MB\n"
    "max_pending: 64MB\n"
    "ping_interval: \"2m\"\n"
    "write_deadline: \"10s\"\n"
    "logtime: true\n"
    "\n"
    "authorization {\n"
    "  ADMIN = {\n"
    "    publish = \">\"\n"
    "    subscribe = \">\"\n"
    "  }\n"
    "  REQUESTOR = {\n"
    "    publish = [\"req.foo\", \"req.bar\"]\n"
    "    subscribe = \"_INBOX.>\"\n"
    "  }\n"
    "  DEFAULT_PERMISSIONS = {\n"
    "    publish = \"SANDBOX.*\"\n"
    "    subscribe = [\"PUBLIC.>\", \"_INBOX.>\"]\n"
    "  }\n"
    "  users = [\n"
    "    {user: admin,   password: $2a$11$W2zko751KUvVy59mUTWmpOdWjpEm5qhcCZRd05GjI/sSOT.xtiHyG,"
    " permissions: $ADMIN}\n"
    "    {user: client,  password: \"s3cr3t\", permissions: $REQUESTOR}\n"
    "    {user: other,   password: \"0th3r\"}\n"
    "  ]\n"
    "  timeout: 1\n"
    "}\n"
    "\n"
    "tls {\n"
    "  cert_file: \"./configs/certs/server-cert.pem\"\n"
    "  key_file:  \"./configs/certs/server-key.pem\"\n"
    "  timeout:   2\n"
    "}\n";

static void test_nats_server_config(void **state)
{
    (void)state;
    kci_options options;
    apply_ok(&options, nats_server_config);
    assert_int_equal(options.user_count, 3);
    assert_string_equal(options.users[0].password,
                        "$2a$11$W2zko751KUvVy59mUTWmpOdWjpEm5qhcCZRd05GjI/sSOT.xtiHyG");
    assert_list(&options.users[0].permissions.publish, ">", "");
    assert_list(&options.users[1].permissions.publish, "req.foo,req.bar", "");
    assert_list(&options.users[1].permissions.subscribe, "_INBOX.>", "");
    assert_false(options.users[2].permissions.publish.present);
    /* keys match without case, so DEFAULT_PERMISSIONS is default_permissions
     * (for nats-server too, which lower-cases them) */
    assert_list(&options.default_permissions.publish, "SANDBOX.*", "");
    assert_true(options.tls_enabled);
    assert_int_equal(options.auth_timeout_ms, 1000);
    kci_options_free(&options);
}

/* The examples of docs/config.md, word for word. */
static const char docs_token_example[] = "port: 4222\n"
                                         "authorization {\n"
                                         "  token: \"s3cr3t\"\n"
                                         "  timeout: 2\n"
                                         "}\n";

static const char docs_users_example[] =
    "authorization {\n"
    "  default_permissions: {\n"
    "    publish: \"public.>\"\n"
    "    subscribe: [\"public.>\", \"_INBOX.>\"]\n"
    "  }\n"
    "  users: [\n"
    "    { user: \"admin\", password: \"admin-secret\",\n"
    "      permissions: { publish: \">\", subscribe: \">\" } }\n"
    "    { user: \"orders\", password: \"orders-secret\",\n"
    "      permissions: {\n"
    "        publish: { allow: [\"orders.>\"], deny: [\"orders.admin.>\"] }\n"
    "        subscribe: { allow: [\"orders.>\", \"_INBOX.>\"] }\n"
    "      } }\n"
    "    { user: \"guest\", password: \"guest-secret\" }\n"
    "  ]\n"
    "}\n";

static const char docs_tls_example[] = "listen: 0.0.0.0:4222\n"
                                       "tls {\n"
                                       "  cert_file: \"/etc/kcobrad/server-cert.pem\"\n"
                                       "  key_file: \"/etc/kcobrad/server-key.pem\"\n"
                                       "  ca_file: \"/etc/kcobrad/ca.pem\"\n"
                                       "  verify: true\n"
                                       "  timeout: \"2s\"\n"
                                       "}\n";

static void test_docs_examples(void **state)
{
    (void)state;
    kci_options options;
    apply_ok(&options, docs_token_example);
    assert_string_equal(options.auth_token, "s3cr3t");
    kci_options_free(&options);
    apply_ok(&options, docs_users_example);
    assert_int_equal(options.user_count, 3);
    assert_list(&options.users[1].permissions.publish, "orders.>", "orders.admin.>");
    assert_list(&options.default_permissions.subscribe, "public.>,_INBOX.>", "");
    kci_options_free(&options);
    apply_ok(&options, docs_tls_example);
    assert_true(options.tls_enabled && options.tls_verify);
    assert_int_equal(options.tls_timeout_ms, 2000);
    kci_options_free(&options);
}

/* etc/kcobrad.conf, found from the working directory or this file's path. */
static bool find_example_config(char *path, size_t path_size)
{
    static const char *const prefixes[] = {"", "../", "../../", "../../../"};
    for (size_t i = 0; i < sizeof prefixes / sizeof prefixes[0]; i++) {
        snprintf(path, path_size, "%setc/kcobrad.conf", prefixes[i]);
        if (access(path, R_OK) == 0) return true;
    }
    const char *marker = strstr(__FILE__, "tests/broker/options_test.c");
    if (marker == NULL) return false;
    snprintf(path, path_size, "%.*setc/kcobrad.conf", (int)(marker - __FILE__), __FILE__);
    return access(path, R_OK) == 0;
}

static void test_example_config_file(void **state)
{
    (void)state;
    char path[1024];
    if (!find_example_config(path, sizeof path)) fail_msg("etc/kcobrad.conf not found");
    kci_options options;
    char error[ERROR_BYTES];
    const char *const args[] = {"kcobrad", "-c", path, NULL};
    kc_err err = load_args(&options, args, error, NULL);
    if (err != KC_OK) fail_msg("%s", error);
    assert_string_equal(options.host, "0.0.0.0");
    assert_int_equal(options.port, 4222);
    assert_int_equal(options.http_port, 8222);
    assert_int_equal(options.max_payload_bytes, 1024 * 1024);
    assert_int_equal(options.max_control_line_bytes, 4096);
    assert_int_equal(options.ping_interval_ms, 120000);
    assert_null(options.auth_token);
    assert_false(options.tls_enabled);
    kci_options_free(&options);
}

/* Debian's nats-server, when installed, must accept the same files: the
 * example config and the docs' examples that need no certificate files. */
static bool nats_server_accepts(const char *path)
{
    char command[1200];
    snprintf(command, sizeof command, "nats-server -c '%s' -t >/dev/null 2>&1", path);
    return system(command) == 0;
}

static void test_nats_server_accepts_examples(void **state)
{
    (void)state;
    if (system("command -v nats-server >/dev/null 2>&1") != 0) skip();
    char path[1024];
    if (!find_example_config(path, sizeof path)) fail_msg("etc/kcobrad.conf not found");
    if (!nats_server_accepts(path)) fail_msg("nats-server -t refuses %s", path);
    temp_dir dir;
    temp_dir_make(&dir);
    const char *const examples[] = {docs_token_example, docs_users_example, nats_server_config};
    for (size_t i = 0; i < sizeof examples / sizeof examples[0]; i++) {
        char text[4096];
        snprintf(text, sizeof text, "%s", examples[i]);
        char *tls = strstr(text, "\ntls {"); /* its certificate files do not exist here */
        if (tls != NULL) tls[1] = '\0';
        temp_file(&dir, "a.conf", text, path, sizeof path);
        if (!nats_server_accepts(path)) fail_msg("nats-server -t refuses example %zu", i);
    }
    temp_dir_remove(&dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_every_key),
        cmocka_unit_test(test_tls_cipher_suites_and_curves),
        cmocka_unit_test(test_key_aliases),
        cmocka_unit_test(test_component_keys),
        cmocka_unit_test(test_durations),
        cmocka_unit_test(test_bad_configs),
        cmocka_unit_test(test_permission_forms),
        cmocka_unit_test(test_variables_are_not_unknown_keys),
        cmocka_unit_test(test_ignored_keys),
        cmocka_unit_test(test_max_subscriptions),
        cmocka_unit_test(test_flags_override_file),
        cmocka_unit_test(test_flag_spellings),
        cmocka_unit_test(test_bad_flags),
        cmocka_unit_test(test_config_file_errors),
        cmocka_unit_test(test_help),
        cmocka_unit_test(test_version_and_test_flag),
        cmocka_unit_test(test_reload),
        cmocka_unit_test(test_nats_server_config),
        cmocka_unit_test(test_docs_examples),
        cmocka_unit_test(test_example_config_file),
        cmocka_unit_test(test_nats_server_accepts_examples),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
