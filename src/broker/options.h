/* options.h - everything that configures kcobrad's broker, with the
 * defaults of nats-server where the two overlap.
 *
 * Sources, later ones winning: built-in defaults, the config file (-c), then
 * command-line flags (flags compatible with nats-server where they overlap).
 * kci_options_load() does all three; SIGHUP calls kci_options_reload() to
 * re-read the file for permissions and limits. */
#ifndef KCI_OPTIONS_H
#define KCI_OPTIONS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/conf.h"
#include "kingcobra/err.h"

enum {
    KCI_DEFAULT_PORT = 4222,
    KCI_DEFAULT_MAX_PAYLOAD_BYTES = 1024 * 1024,
    KCI_DEFAULT_MAX_PENDING_BYTES = 64 * 1024 * 1024,
    KCI_DEFAULT_MAX_CONTROL_LINE_BYTES = 4096,
    KCI_DEFAULT_MAX_CONNECTIONS = 64 * 1024,
    KCI_DEFAULT_PING_INTERVAL_MS = 2 * 60 * 1000,
    KCI_DEFAULT_PING_MAX = 2,
    KCI_DEFAULT_WRITE_DEADLINE_MS = 10 * 1000,
    KCI_DEFAULT_AUTH_TIMEOUT_MS = 2 * 1000,
    KCI_DEFAULT_TLS_TIMEOUT_MS = 2 * 1000,
    KCI_OPTIONS_USERS_MAX = 4096,
    KCI_OPTIONS_PERMISSION_SUBJECTS_MAX = 1024,
    KCI_DEFAULT_INGRESS_PORT = 4223,
    KCI_DEFAULT_INGRESS_TIMEOUT_MS = 5 * 1000,
};

/* One direction (publish or subscribe) of a user's permissions. An empty
 * allow list with present == true means "allow nothing but what allow
 * names" only when allow_count > 0; see docs/config.md: as in nats-server,
 * a subject is allowed if (allow is empty or it matches allow) and it does
 * not match deny. */
typedef struct kci_permission_list {
    bool present;
    char **allow;
    size_t allow_count;
    char **deny;
    size_t deny_count;
} kci_permission_list;

typedef struct kci_permissions {
    kci_permission_list publish;
    kci_permission_list subscribe;
} kci_permissions;

#define KCI_MONITOR_HOST_DEFAULT "127.0.0.1" /* monitoring: loopback unless `http` says */

typedef struct kci_user {
    char *user;
    char *password; /* plain text, or a bcrypt hash starting with "$2" */
    kci_permissions permissions;
} kci_user;

typedef struct kci_options {
    /* listening */
    char *host;        /* default "0.0.0.0" */
    int port;          /* default 4222; 0 picks an ephemeral port; -1 likewise */
    char *server_name; /* default: the generated server id */
    char *http_host;   /* default: same as host */
    int http_port;     /* 0 = monitoring off (default) */
    /* the monitoring port's basic auth (docs/console.md); NULL: none */
    char *http_user;
    char *http_password; /* plain or bcrypt ($2a$...), as a user's password */
    bool http_tls;       /* HTTPS on the monitoring port, with the tls block's certificate */
    /* limits */
    int64_t max_payload_bytes;
    int64_t max_pending_bytes;
    int64_t max_control_line_bytes;
    int64_t max_connections;
    int64_t ping_interval_ms;
    int64_t ping_max;
    int64_t write_deadline_ms;
    int64_t max_subscriptions; /* per connection (max_subs); 0: no limit */
    int64_t auth_timeout_ms;
    /* authentication: a token, or a single user/password, or a user list */
    char *auth_token;
    kci_user *users;
    size_t user_count;
    kci_permissions default_permissions; /* for users without their own */
    /* TLS */
    bool tls_enabled; /* true when cert and key are set */
    char *tls_cert_file;
    char *tls_key_file;
    char *tls_ca_file;
    bool tls_verify; /* require and verify client certificates */
    int64_t tls_timeout_ms;
    /* TLS 1.2 suites and key-exchange groups in OpenSSL's names, ':'-joined,
     * from the tls block's cipher_suites and curve_preferences; NULL: the
     * defaults (tls.h). */
    char *tls_ciphers;
    char *tls_groups;
    /* logging */
    bool debug;
    bool trace;
    bool logtime; /* default true */
    char *log_file;
    char *pid_file;
    /* built-in components (src/cmd/components.h, docs/ingress.md): each
     * part reads its own block of conf with its own key table */
    kci_conf_value *conf;  /* the parsed config file; NULL without one */
    char *data_dir;        /* default "data" */
    int ingress_port_flag; /* --ingress_port: run the ingress there; -2: not given */
    /* ingress { user }: kcobrad's ingress connection has this user's
     * permissions instead of its role's (set by the parts' adjust) */
    char *ingress_user;
    /* where the options came from */
    char *config_file;
    char **arguments;   /* a copy of argv made by kci_options_load, so that */
    int argument_count; /* kci_options_reload can apply the flags again */
} kci_options;

void kci_options_init_defaults(kci_options *options);
void kci_options_free(kci_options *options);
/* The parts' blocks of the config file (suggestions { }, ingress { }, ...)
 * are read by the parts themselves; kcobrad registers their check here,
 * once before the first load, so a bad block fails the load, the reload
 * (which keeps the running configuration) and -t like a bad broker key. */
typedef kc_err (*kci_options_part_check)(const kci_options *options, char *error,
                                         size_t error_size);
void kci_options_set_part_check(kci_options_part_check check);
/* After the check, kcobrad may change the options from the parts' blocks
 * (the ledger's operators reserve kc.ledger.mint: reserve.h), at every
 * load and reload. */
typedef kc_err (*kci_options_part_adjust)(kci_options *options, char *error, size_t error_size);
void kci_options_set_part_adjust(kci_options_part_adjust adjust);
/* The permissions of a connection of an internal role (roles.h): the
 * role's, except kcobrad's ingress with ingress_user, which has that user's
 * (every subject when the user has no permissions of its own or default). */
const kci_permissions *kci_options_role_permissions(const kci_options *options, int role);

/* Applies a parsed config tree on top of options. Unknown keys are an
 * error naming the key and its line, except keys listed in docs/config.md as
 * accepted-and-ignored for nats-server compatibility. Checks each key's type
 * and range, permission subjects and the authorization block; the checks
 * that join several keys are kci_options_validate's. On error options may be
 * partly changed: free them. */
kc_err kci_options_apply_conf(kci_options *options, const kci_conf_value *root, char *error,
                              size_t error_size);

/* Checks the options as a whole: ports in range, limits positive,
 * max_payload <= max_pending, a token and users not both, TLS with both
 * cert and key. kci_options_load and kci_options_reload call it last. */
kc_err kci_options_validate(const kci_options *options, char *error, size_t error_size);

/* Defaults, then the file named by -c/--config, then the flags. Returns
 * KC_ERR_HELP after printing --help, --version or the -t verdict to stdout
 * (exit 0), or KC_ERR_CONFIG with a message in error (exit 1), or
 * KC_ERR_NOMEM. On any error (and KC_ERR_HELP) options are already freed
 * (all zero; freeing again is harmless); after KC_OK the caller frees them.
 * After KC_OK, http_host is set (a copy of host unless configured) and
 * tls_enabled says whether cert and key are set. */
kc_err kci_options_load(kci_options *options, int argc, char **argv, char *error,
                        size_t error_size);

/* Re-reads options->config_file into fresh, returning KC_OK only if it
 * parsed and validated; the caller then swaps in limits and permissions.
 * The saved flags are applied again on top, so they still win. On error
 * fresh is already freed (all zero). */
kc_err kci_options_reload(const kci_options *current, kci_options *fresh, char *error,
                          size_t error_size);

/* Prints the usage text of kcobrad to stdout. */
void kci_options_print_usage(const char *program);

#endif
