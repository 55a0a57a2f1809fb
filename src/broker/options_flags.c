/* options_flags.c - kcobrad's command line, and the two entry points that
 * put the options together: kci_options_load (defaults, then the file named
 * by -c, then the flags) and kci_options_reload (the same again on SIGHUP).
 * The config keys and the checks are options.c's.
 *
 * Flags are parsed with getopt_long_only, so "-port 4222" works as it does
 * with nats-server's Go flags, and short clusters like "-DV" still work. The
 * arguments are walked twice: a scan for -c, -h, -v and -t before the file is
 * read, then the rest on top of the file so that flags win. Flags that
 * interact (--user, --pass, --auth, --tls) are settled after the walk.
 * kci_options_load keeps a copy of argv; kci_options_reload applies it again.
 *
 * Limits: at most OPTIONS_ARGUMENTS_MAX arguments. The getopt state is
 * process-wide, so load and reload must not run on two threads at once. */
#include "options.h"

#include <assert.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/data_dir.h"
#include "options_internal.h"

#ifndef KC_VERSION
#define KC_VERSION "0.0.0-unknown" /* meson defines the real one */
#endif

enum {
    OPTIONS_ARGUMENTS_MAX = 256,
};

/* -------------------------------------------------------------- flags */

enum flag_id { /* flags without a short form; the others use their letter */
               FLAG_USER = 256,
               FLAG_PASS,
               FLAG_AUTH,
               FLAG_TLS,
               FLAG_TLS_CERT,
               FLAG_TLS_KEY,
               FLAG_TLS_CA_CERT,
               FLAG_TLS_VERIFY,
               FLAG_MAX_PAYLOAD,
               FLAG_DATA_DIR,
               FLAG_INGRESS_PORT,
};

/* nats-server's names; getopt_long_only also takes them with one dash. */
static const struct option long_flags[] = {
    {"addr", required_argument, NULL, 'a'},
    {"net", required_argument, NULL, 'a'},
    {"port", required_argument, NULL, 'p'},
    {"name", required_argument, NULL, 'n'},
    {"server_name", required_argument, NULL, 'n'},
    {"http_port", required_argument, NULL, 'm'},
    {"config", required_argument, NULL, 'c'},
    {"pid", required_argument, NULL, 'P'},
    {"log", required_argument, NULL, 'l'},
    {"logtime", optional_argument, NULL, 'T'},
    {"T", optional_argument, NULL, 'T'}, /* so that -T=false works, as in Go */
    {"debug", no_argument, NULL, 'D'},
    {"trace", no_argument, NULL, 'V'},
    {"user", required_argument, NULL, FLAG_USER},
    {"pass", required_argument, NULL, FLAG_PASS},
    {"auth", required_argument, NULL, FLAG_AUTH},
    {"tls", no_argument, NULL, FLAG_TLS},
    {"tlscert", required_argument, NULL, FLAG_TLS_CERT},
    {"tlskey", required_argument, NULL, FLAG_TLS_KEY},
    {"tlscacert", required_argument, NULL, FLAG_TLS_CA_CERT},
    {"tlsverify", no_argument, NULL, FLAG_TLS_VERIFY},
    {"max_payload", required_argument, NULL, FLAG_MAX_PAYLOAD},
    {"data_dir", required_argument, NULL, FLAG_DATA_DIR},
    {"ingress_port", required_argument, NULL, FLAG_INGRESS_PORT},
    {"help", no_argument, NULL, 'h'},
    {"version", no_argument, NULL, 'v'},
    {NULL, 0, NULL, 0},
};

/* '+': stop at the first non-flag, as Go's flag package does (and never
 * reorder argv); ':': report a missing value as ':'. */
static const char short_flags[] = "+:a:p:n:m:c:P:l:TDVhvt";

typedef struct flag_scan { /* what must be known before the file is read */
    const char *config_path;
    bool help;
    bool version;
    bool test;
} flag_scan;

typedef struct flag_auth { /* settled after all flags, as they interact */
    const char *user;
    const char *password;
    const char *token;
    bool tls_required;
} flag_auth;

typedef enum flag_pass {
    FLAG_PASS_SCAN,
    FLAG_PASS_APPLY,
} flag_pass;

static bool parse_port_text(const char *text, int *port)
{
    int64_t number;
    if (text[0] == '\0' || strspn(text, "-0123456789") != strlen(text) ||
        kci_conf_parse_size(text, strlen(text), &number) != KC_OK ||
        !kci_config_port_in_range(number))
        return false;
    *port = (int)number;
    return true;
}

/* Go's strconv.ParseBool, which nats-server's -T=false goes through. */
static bool parse_bool_text(const char *text, bool *out)
{
    static const char *const truths[] = {"1", "t", "T", "TRUE", "true", "True"};
    static const char *const falsehoods[] = {"0", "f", "F", "FALSE", "false", "False"};
    for (size_t i = 0; i < sizeof truths / sizeof truths[0]; i++) {
        if (strcmp(text, truths[i]) == 0) return *out = true, true;
        if (strcmp(text, falsehoods[i]) == 0) return *out = false, true;
    }
    return false;
}

static kc_err flag_port(int *port, const char *value, const char *flag, char *error,
                        size_t error_size)
{
    if (parse_port_text(value, port)) return KC_OK;
    return kci_options_plain_error(error, error_size,
                                   "%s: '%s' is not a port (0 to 65535; 0 or -1: any free port)",
                                   flag, value);
}

static kc_err flag_text(char **slot, const char *value, const char *flag, char *error,
                        size_t error_size)
{
    if (value[0] == '\0')
        return kci_options_plain_error(error, error_size, "%s needs a value", flag);
    return kci_config_string_set(slot, value);
}

static kc_err apply_flag(kci_options *options, flag_auth *auth, int id, const char *value,
                         char *error, size_t error_size)
{
    switch (id) {
    case 'a': return flag_text(&options->host, value, "--addr", error, error_size);
    case 'p': return flag_port(&options->port, value, "--port", error, error_size);
    case 'n': return flag_text(&options->server_name, value, "--name", error, error_size);
    case 'm': return flag_port(&options->http_port, value, "--http_port", error, error_size);
    case 'P': return flag_text(&options->pid_file, value, "--pid", error, error_size);
    case 'l': return flag_text(&options->log_file, value, "--log", error, error_size);
    case 'D': options->debug = true; return KC_OK;
    case 'V': options->trace = true; return KC_OK;
    case 'T':
        options->logtime = true;
        if (value != NULL && !parse_bool_text(value, &options->logtime))
            return kci_options_plain_error(error, error_size,
                                           "--logtime: '%s' is not true or false", value);
        return KC_OK;
    case FLAG_USER: auth->user = value; return KC_OK;
    case FLAG_PASS: auth->password = value; return KC_OK;
    case FLAG_AUTH: auth->token = value; return KC_OK;
    case FLAG_TLS: auth->tls_required = true; return KC_OK;
    case FLAG_TLS_CERT:
        return flag_text(&options->tls_cert_file, value, "--tlscert", error, error_size);
    case FLAG_TLS_KEY:
        return flag_text(&options->tls_key_file, value, "--tlskey", error, error_size);
    case FLAG_TLS_CA_CERT:
        return flag_text(&options->tls_ca_file, value, "--tlscacert", error, error_size);
    case FLAG_TLS_VERIFY:
        auth->tls_required = true;
        options->tls_verify = true;
        return KC_OK;
    case FLAG_MAX_PAYLOAD:
        if (kci_conf_parse_size(value, strlen(value), &options->max_payload_bytes) != KC_OK)
            return kci_options_plain_error(error, error_size, "--max_payload: '%s' is not a size",
                                           value);
        return KC_OK;
    case FLAG_DATA_DIR:
        return flag_text(&options->data_dir, value, "--data_dir", error, error_size);
    case FLAG_INGRESS_PORT: /* a port for the ingress means: run it (components.c) */
        return flag_port(&options->ingress_port_flag, value, "--ingress_port", error, error_size);
    }
    return KC_OK; /* -c, -h, -v, -t: the scan pass took them */
}

static void scan_flag(flag_scan *scan, int id, const char *value)
{
    switch (id) {
    case 'c': scan->config_path = value; break;
    case 'h': scan->help = true; break;
    case 'v': scan->version = true; break;
    case 't': scan->test = true; break;
    }
}

static kc_err flag_syntax_error(int result, char **argv, char *error, size_t error_size)
{
    const char *flag = optind > 0 ? argv[optind - 1] : "?";
    if (result == ':')
        return kci_options_plain_error(error, error_size, "flag '%s' needs a value", flag);
    if (optopt > 0 && optopt < 256)
        return kci_options_plain_error(error, error_size, "unknown flag '-%c' (see --help)",
                                       optopt);
    return kci_options_plain_error(error, error_size, "unknown or ambiguous flag '%s' (see --help)",
                                   flag);
}

/* One getopt walk over the saved arguments: the scan pass notes -c, -h, -v
 * and -t; the apply pass sets everything else. */
static kc_err walk_flags(kci_options *options, flag_pass pass, flag_scan *scan, flag_auth *auth,
                         char *error, size_t error_size)
{
    int argc = options->argument_count;
    char **argv = options->arguments;
    if (argc < 2) return KC_OK;
    assert(argc <= OPTIONS_ARGUMENTS_MAX && argv[argc] == NULL);
    optind = 0; /* glibc: start over, forgetting any earlier walk */
    opterr = 0;
    for (int walked = 0; walked < OPTIONS_ARGUMENTS_MAX; walked++) {
        int id = getopt_long_only(argc, argv, short_flags, long_flags, NULL);
        if (id == -1) break;
        if (id == '?' || id == ':') return flag_syntax_error(id, argv, error, error_size);
        if (pass == FLAG_PASS_SCAN) {
            scan_flag(scan, id, optarg);
            continue;
        }
        kc_err err = apply_flag(options, auth, id, optarg, error, error_size);
        if (err != KC_OK) return err;
    }
    if (optind < argc)
        return kci_options_plain_error(error, error_size, "unexpected argument '%s' (see --help)",
                                       argv[optind]);
    return KC_OK;
}

/* --user/--pass replace the users with one; --auth replaces them with a
 * token; --tls and --tlsverify need a certificate and key from somewhere. */
static kc_err apply_flag_auth(kci_options *options, const flag_auth *auth, char *error,
                              size_t error_size)
{
    if (auth->token != NULL && auth->user != NULL)
        return kci_options_plain_error(error, error_size,
                                       "--auth and --user cannot be used together");
    if (auth->password != NULL && auth->user == NULL && options->user_count != 1)
        return kci_options_plain_error(error, error_size, "--pass needs --user");
    if (auth->user != NULL) {
        kci_user *user = calloc(1, sizeof *user);
        if (user == NULL) return KC_ERR_NOMEM;
        user->user = strdup(auth->user);
        user->password = strdup(auth->password != NULL ? auth->password : "");
        if (user->user == NULL || user->password == NULL) {
            kci_options_users_free(user, 1);
            return KC_ERR_NOMEM;
        }
        kci_options_users_free(options->users, options->user_count);
        options->users = user;
        options->user_count = 1;
        free(options->auth_token);
        options->auth_token = NULL;
    } else if (auth->password != NULL) {
        if (kci_config_string_set(&options->users[0].password, auth->password) != KC_OK)
            return KC_ERR_NOMEM;
    }
    if (auth->token != NULL) {
        if (kci_config_string_set(&options->auth_token, auth->token) != KC_OK) return KC_ERR_NOMEM;
        kci_options_users_free(options->users, options->user_count);
        options->users = NULL;
        options->user_count = 0;
    }
    if (auth->tls_required && (options->tls_cert_file == NULL || options->tls_key_file == NULL))
        return kci_options_plain_error(
            error, error_size,
            "--tls and --tlsverify need a certificate and key (--tlscert and "
            "--tlskey, or the tls block)");
    return KC_OK;
}

/* ---------------------------------------------------- load and reload */

static kc_err copy_arguments(kci_options *options, int argc, char *const *argv)
{
    assert(options->arguments == NULL);
    if (argc < 0 || argc > OPTIONS_ARGUMENTS_MAX) return KC_ERR_TOO_LARGE;
    options->arguments = calloc((size_t)argc + 1, sizeof *options->arguments);
    if (options->arguments == NULL) return KC_ERR_NOMEM;
    for (int i = 0; i < argc; i++) {
        if ((options->arguments[i] = strdup(argv[i] != NULL ? argv[i] : "")) == NULL)
            return KC_ERR_NOMEM; /* kci_options_free frees the ones copied */
        options->argument_count = i + 1;
    }
    return KC_OK;
}

/* kcobrad's check of the parts' blocks (kci_options_set_part_check), and
 * what they change (kci_options_set_part_adjust). */
static kci_options_part_check part_check;
static kci_options_part_adjust part_adjust;

/* The file, then the flags on top, then the derived fields, then checks. */
/* A relative data_dir of the file is relative to the file (data_dir.h), so
 * kcobrad finds the same data from any working directory. */
static kc_err resolve_data_dir(kci_options *options, char *error, size_t error_size)
{
    if (options->data_dir == NULL || options->data_dir[0] == '\0') return KC_OK;
    char *resolved = kci_data_dir_resolve(options->config_file, options->data_dir);
    if (resolved == NULL)
        return kci_options_plain_error(error, error_size, "out of memory"), KC_ERR_NOMEM;
    free(options->data_dir);
    options->data_dir = resolved;
    return KC_OK;
}

static kc_err build(kci_options *options, char *error, size_t error_size)
{
    if (options->host == NULL)
        return kci_options_plain_error(error, error_size, "out of memory"), KC_ERR_NOMEM;
    kc_err err = KC_OK;
    if (options->config_file != NULL) {
        kci_conf_value *root = NULL;
        err = kci_conf_parse_file(options->config_file, &root, error, error_size);
        if (err != KC_OK) return err == KC_ERR_NOMEM ? KC_ERR_NOMEM : KC_ERR_CONFIG;
        err = kci_options_apply_conf(options, root, error, error_size);
        kci_conf_free(options->conf);
        options->conf = root; /* the parts read their blocks from it */
        if (err != KC_OK) return err;
        err = resolve_data_dir(options, error, error_size); /* before --data_dir */
        if (err != KC_OK) return err;
    }
    flag_auth auth = {0};
    err = walk_flags(options, FLAG_PASS_APPLY, NULL, &auth, error, error_size);
    if (err == KC_OK) err = apply_flag_auth(options, &auth, error, error_size);
    /* Monitoring has no authentication and shows connections, user names
     * and subjects: loopback unless `http` names a host (issue 15, finding
     * 10; nats-server uses `host`). */
    if (err == KC_OK && options->http_host == NULL)
        err = kci_config_string_set(&options->http_host, KCI_MONITOR_HOST_DEFAULT);
    if (err == KC_ERR_NOMEM)
        return kci_options_plain_error(error, error_size, "out of memory"), KC_ERR_NOMEM;
    if (err != KC_OK) return err;
    options->tls_enabled = options->tls_cert_file != NULL && options->tls_key_file != NULL;
    err = kci_options_validate(options, error, error_size);
    if (err == KC_OK && part_check != NULL) err = part_check(options, error, error_size);
    if (err == KC_OK && part_adjust != NULL) err = part_adjust(options, error, error_size);
    return err;
}

void kci_options_set_part_adjust(kci_options_part_adjust adjust)
{
    part_adjust = adjust;
}

void kci_options_set_part_check(kci_options_part_check check)
{
    part_check = check;
}

static kc_err load(kci_options *options, int argc, char **argv, char *error, size_t error_size)
{
    kci_options_init_defaults(options);
    kc_err err = copy_arguments(options, argc, argv);
    if (err == KC_ERR_TOO_LARGE)
        return kci_options_plain_error(error, error_size, "more than %d arguments",
                                       OPTIONS_ARGUMENTS_MAX);
    if (err != KC_OK)
        return kci_options_plain_error(error, error_size, "out of memory"), KC_ERR_NOMEM;
    flag_scan scan = {0};
    err = walk_flags(options, FLAG_PASS_SCAN, &scan, NULL, error, error_size);
    if (err != KC_OK) return err;
    if (scan.help) {
        const char *slash = argc > 0 ? strrchr(argv[0], '/') : NULL;
        kci_options_print_usage(slash != NULL ? slash + 1 : argc > 0 ? argv[0] : "kcobrad");
        return KC_ERR_HELP;
    }
    if (scan.version) {
        printf("kcobrad version %s\n", KC_VERSION);
        fflush(stdout);
        return KC_ERR_HELP;
    }
    if (scan.config_path == NULL) scan.config_path = kci_default_config_path();
    if (kci_config_string_set(&options->config_file, scan.config_path) != KC_OK)
        return kci_options_plain_error(error, error_size, "out of memory"), KC_ERR_NOMEM;
    err = build(options, error, error_size);
    if (err == KC_OK && scan.test) {
        printf("kcobrad: configuration file %s is valid\n",
               options->config_file != NULL ? options->config_file : "(none)");
        fflush(stdout);
        return KC_ERR_HELP;
    }
    return err;
}

kc_err kci_options_load(kci_options *options, int argc, char **argv, char *error, size_t error_size)
{
    assert(options != NULL && (argv != NULL || argc == 0));
    kc_err err = load(options, argc, argv, error, error_size);
    if (err != KC_OK) kci_options_free(options); /* the caller only exits */
    return err;
}

kc_err kci_options_reload(const kci_options *current, kci_options *fresh, char *error,
                          size_t error_size)
{
    assert(current != NULL && fresh != NULL && current != fresh);
    kci_options_init_defaults(fresh);
    kc_err err = copy_arguments(fresh, current->argument_count, current->arguments);
    if (err == KC_OK) err = kci_config_string_set(&fresh->config_file, current->config_file);
    if (err != KC_OK) {
        kci_options_plain_error(error, error_size, "out of memory");
        err = KC_ERR_NOMEM;
    }
    if (err == KC_OK) err = build(fresh, error, error_size);
    if (err != KC_OK) kci_options_free(fresh);
    return err;
}

/* -------------------------------------------------------------- usage */

void kci_options_print_usage(const char *program)
{
    printf("Usage: %s [options]\n"
           "\n"
           "Server options:\n"
           "    -a, --addr, --net <host>         Bind to host address (default: %s)\n"
           "    -p, --port <port>                Use port for clients (default: %d)\n"
           "    -n, --name, --server_name <name> Server name (default: the server id)\n"
           "    -m, --http_port <port>           Use port for HTTP monitoring (default: 0, off)\n"
           "    -c, --config <file>              Configuration file (default: none; the\n"
           "                                     installed kcobrad reads %s)\n"
           "    -t                               Test the configuration and exit\n"
           "    -P, --pid <file>                 File to store the PID (default: none)\n"
           "        --max_payload <size>         Largest message payload (default: %d, 1MB)\n"
           "\n"
           "Component options (docs/ingress.md):\n"
           "        --data_dir <dir>             Directory for kept data (default: data; in a\n"
           "                                     file, relative to the file's directory)\n"
           "        --ingress_port <port>        Run the seed-format ingress (default: off)\n"
           "\n"
           "Logging options:\n"
           "    -l, --log <file>                 File to redirect log output (default: stderr)\n"
           "    -T, --logtime[=<bool>]           Timestamp log entries (default: true)\n"
           "    -D, --debug                      Enable debugging output (default: false)\n"
           "    -V, --trace                      Trace the raw protocol (default: false)\n"
           "    -DV                              Debug and trace\n"
           "\n"
           "Authorization options:\n"
           "        --user <user>                User required for connections (default: none)\n"
           "        --pass <password>            Password required for connections (default: "
           "none)\n"
           "        --auth <token>               Authorization token required for connections "
           "(default: none)\n"
           "\n"
           "TLS options:\n"
           "        --tls                        Enable TLS, do not verify clients (default: "
           "false)\n"
           "        --tlscert <file>             Server certificate file (default: none)\n"
           "        --tlskey <file>              Private key for server certificate (default: "
           "none)\n"
           "        --tlsverify                  Enable TLS, verify client certificates "
           "(default: false)\n"
           "        --tlscacert <file>           Client certificate CA for verification "
           "(default: none)\n"
           "\n"
           "Common options:\n"
           "    -h, --help                       Show this message\n"
           "    -v, --version                    Show version\n"
           "\n"
           "Long flags also work with one dash (-port 4222), as with nats-server. Flags win\n"
           "over the config file. SIGHUP re-reads the config file (see docs/config.md).\n",
           program, KCI_OPTIONS_DEFAULT_HOST, KCI_DEFAULT_PORT, KCI_DEFAULT_CONFIG,
           KCI_DEFAULT_MAX_PAYLOAD_BYTES);
    fflush(stdout);
}
