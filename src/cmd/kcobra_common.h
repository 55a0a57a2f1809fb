/* kcobra_common.h - what every kcobra command shares: the exit codes, the
 * command table entry, the flag parser (the common flags every command takes
 * plus the command's own), durations, reading a payload from an argument or
 * stdin, output helpers (one-line JSON, base64, raw payloads) and connecting,
 * through libkingcobra or through raw nats.c.
 *
 * Errors go to stderr as one line "kcobra: <what went wrong>"; a usage error
 * adds "Try 'kcobra <command> --help'." and exits KCOBRA_EXIT_USAGE. Helpers
 * that can fail return an exit code (KCOBRA_EXIT_OK when they did not) after
 * printing the error, so a command just returns what they return. */
#ifndef KCOBRA_COMMON_H
#define KCOBRA_COMMON_H

#include <jansson.h>
#include <nats/nats.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kingcobra/kingcobra.h"
#include "service/call.h"

/* The process exit status; documented in docs/kcobra.md and kcobra --help. */
typedef enum kcobra_exit {
    KCOBRA_EXIT_OK = 0,
    KCOBRA_EXIT_FAILURE = 1,
    KCOBRA_EXIT_USAGE = 2,
    KCOBRA_EXIT_TIMEOUT = 3,
    KCOBRA_EXIT_NO_RESPONDERS = 4,
    KCOBRA_EXIT_SERVICE_ERROR = 5,
    KCOBRA_EXIT_CONNECT = 6,
} kcobra_exit;

enum {
    KCOBRA_TIMEOUT_MS_DEFAULT = 2000,
    KCOBRA_RECONNECT_WAIT_MS = 250,               /* long-running components between attempts */
    KCOBRA_DURATION_MS_MAX = 24 * 60 * 60 * 1000, /* one day */
    KCOBRA_DURATION_SEGMENTS_MAX = 8,             /* "1h2m3s4ms" has four */
    KCOBRA_DURATION_TEXT_BYTES = 32,
    KCOBRA_COUNT_MAX = 1000 * 1000 * 1000,
    KCOBRA_POSITIONAL_MAX = 8,     /* no command takes more than three */
    KCOBRA_LIST_VALUES_MAX = 32,   /* a repeatable flag, e.g. pub --header */
    KCOBRA_COMMAND_FLAGS_MAX = 32, /* a command's own flags */
    /* A payload read from stdin; the server's max_payload (1 MiB by default)
     * is the real limit, this one only keeps a runaway pipe from eating the
     * machine's memory. */
    KCOBRA_STDIN_BYTES_MAX = 64 * 1024 * 1024,
    KCOBRA_READ_CHUNK_BYTES = 64 * 1024,
};

#define KCOBRA_ARRAY_COUNT(array) ((int)(sizeof(array) / sizeof((array)[0])))

#define KCOBRA_SERVER_DEFAULT "nats://127.0.0.1:4222"
#define KCOBRA_SERVER_ENVIRONMENT "KCOBRA_SERVER"
#define KCOBRA_TOKEN_ENVIRONMENT "KCOBRA_TOKEN"
#define KCOBRA_USER_ENVIRONMENT "KCOBRA_USER"
#define KCOBRA_PASSWORD_ENVIRONMENT "KCOBRA_PASSWORD"
#define KCOBRA_CONNECTION_NAME "kcobra"

/* The flags every command takes. */
typedef struct kcobra_common {
    const char *server;
    int64_t timeout_ms;
    const char *node;
    bool json;
    const char *token;
    const char *user;
    const char *password;
    const char *tls_ca;
    const char *tls_cert;
    const char *tls_key;
    const uint8_t *qos_secret_key; /* kc_client_options.qos_secret_key (a command's --qos-key) */
} kcobra_common;

typedef enum kcobra_flag_kind {
    KCOBRA_FLAG_BOOL,     /* target: bool *; takes no value */
    KCOBRA_FLAG_STRING,   /* target: const char ** */
    KCOBRA_FLAG_DURATION, /* target: int64_t * in ms; "500ms", "2s", "1m30s" */
    KCOBRA_FLAG_COUNT,    /* target: int64_t *; 1 .. KCOBRA_COUNT_MAX */
    KCOBRA_FLAG_LIST,     /* target: kcobra_list *; may be repeated */
} kcobra_flag_kind;

typedef struct kcobra_list {
    int count;
    const char *values[KCOBRA_LIST_VALUES_MAX];
} kcobra_list;

typedef struct kcobra_flag {
    const char *name;       /* without dashes: "count" */
    const char *value_name; /* shown in help: "N"; NULL for a bool flag */
    kcobra_flag_kind kind;
    void *target;
    const char *help;
} kcobra_flag;

typedef struct kcobra_command kcobra_command;
/* argv[0] is the command's name; the rest are its arguments. */
typedef int (*kcobra_command_run)(const kcobra_command *command, int argc, char **argv);

struct kcobra_command {
    const char *name;
    const char *synopsis;    /* after "kcobra ": "request <type> [payload|-]" */
    const char *summary;     /* one line for kcobra --help */
    const char *description; /* paragraphs and examples for --help */
    kcobra_command_run run;
    int positional_min;
    int positional_max;
};

/* What kcobra_parse hands a command. */
typedef struct kcobra_invocation {
    kcobra_common common;
    int positional_count;
    const char *positional[KCOBRA_POSITIONAL_MAX];
    bool help; /* --help was given and shown: exit KCOBRA_EXIT_OK */
} kcobra_invocation;

/* Every command (defined in its kcobra_<group>.c), in help order. */
extern const kcobra_command kcobra_command_request;
extern const kcobra_command kcobra_command_serve;
extern const kcobra_command kcobra_command_pub;
extern const kcobra_command kcobra_command_sub;
extern const kcobra_command kcobra_command_problem;
extern const kcobra_command kcobra_command_suggest;
extern const kcobra_command kcobra_command_suggestions;
extern const kcobra_command kcobra_command_stats;
extern const kcobra_command kcobra_command_keeper; /* kcobra_components.c */
extern const kcobra_command kcobra_command_ingress;
/* The parts' commands. */
extern const kcobra_command kcobra_command_submit; /* kcobra_queue.c */
extern const kcobra_command kcobra_command_reply;
extern const kcobra_command kcobra_command_queue;
extern const kcobra_command kcobra_command_wallet; /* kcobra_ledger.c */
extern const kcobra_command kcobra_command_mint;
extern const kcobra_command kcobra_command_exchange;
extern const kcobra_command kcobra_command_pay;
extern const kcobra_command kcobra_command_coin;
extern const kcobra_command kcobra_command_ledger;
extern const kcobra_command kcobra_command_econ;    /* kcobra_econ.c */
extern const kcobra_command kcobra_command_arbiter; /* kcobra_arbiter.c */
extern const kcobra_command kcobra_command_sim;
extern const kcobra_command kcobra_command_services; /* kcobra_services.c */
extern const kcobra_command kcobra_command_eventnet; /* kcobra_eventnet.c */

/* ---- long-running commands ---------------------------------------------- */

/* Blocks SIGINT and SIGTERM in the calling thread (call it before any
 * thread starts, so every library thread inherits the mask and only
 * kcobra_stop_signal_wait takes them) and ignores SIGPIPE. */
void kcobra_stop_signals_block(sigset_t *stop_signals);
/* Waits for one of them; returns its number. */
int kcobra_stop_signal_wait(const sigset_t *stop_signals);

/* ---- parsing ------------------------------------------------------------ */

/* Parses argv (argv[0] is the command) into out: the common flags, the
 * command's own flags (written through their targets) and the positional
 * arguments. "--" ends the flags; "-" is a positional argument. Returns
 * KCOBRA_EXIT_OK (with out->help set when --help was shown) or
 * KCOBRA_EXIT_USAGE after printing what is wrong. */
int kcobra_parse(const kcobra_command *command, const kcobra_flag *flags, int flag_count, int argc,
                 char **argv, kcobra_invocation *out);
/* Prints a usage error for command and returns KCOBRA_EXIT_USAGE. */
int kcobra_usage_error(const kcobra_command *command, const char *format, ...)
    __attribute__((format(printf, 2, 3)));
/* How many of argv[first..] are common flags (with their values) before the
 * command name: kcobra --server URL request ... Returns -1 (error printed) if
 * one of them is not a common flag. */
int kcobra_global_flags_span(int first, int argc, char **argv);
/* Print the common options and the exit codes (for kcobra --help). */
void kcobra_print_common_options(void);
void kcobra_print_exit_status(void);

/* A request type or node name: one subject token, non-empty, at most
 * bytes_max bytes, no '.', '*', '>', spaces or control characters. */
bool kcobra_token_valid(const char *token, size_t bytes_max);

/* "500ms", "2s", "1.5s", "1m30s", "1h"; > 0 and at most a day. */
bool kcobra_parse_duration_ms(const char *text, int64_t *out);
/* The inverse, for messages: 2000 -> "2s", 500 -> "500ms", 1500 -> "1.5s". */
void kcobra_format_duration_ms(int64_t duration_ms, char text[KCOBRA_DURATION_TEXT_BYTES]);

/* ---- input and output --------------------------------------------------- */

typedef struct kcobra_buffer {
    char *bytes; /* owned when heap is true */
    size_t length;
    bool heap;
} kcobra_buffer;

/* The payload of pub and request: argument itself, or stdin when argument is
 * "-", or when argument is NULL and stdin is not a terminal (else empty). */
int kcobra_read_payload(const char *argument, kcobra_buffer *out);
void kcobra_buffer_free(kcobra_buffer *buffer);
/* Reads fd to its end, at most bytes_max; false (errno set, EFBIG if too
 * large) on failure. */
bool kcobra_read_all(int fd, size_t bytes_max, kcobra_buffer *out);

/* "kcobra: <message>" on stderr. */
void kcobra_error(const char *format, ...) __attribute__((format(printf, 1, 2)));
/* Writes a payload to stdout as it is; on a terminal, adds a newline if the
 * payload does not end with one. */
int kcobra_write_payload(const void *payload, size_t payload_length);
/* Sets "payload" (a string) on object, or "payload_base64" when the bytes are
 * not valid UTF-8. */
int kcobra_json_set_payload(json_t *object, const void *payload, size_t payload_length);
/* Prints a jansson object as one compact line on stdout and flushes; takes
 * the reference. */
int kcobra_json_print(json_t *object);
/* Standard base64 with padding; the result is malloc'ed and NUL-terminated. */
char *kcobra_base64_encode(const void *bytes, size_t length);
/* The exit code for a libkingcobra status. */
int kcobra_exit_for_error(kc_err err);

/* ---- connecting --------------------------------------------------------- */

/* Opens a libkingcobra client with the common flags. */
int kcobra_client_open(kc_client **out, const kcobra_common *common);
/* The same, with kc_client_options.submits_in_flight_max (0: the default). */
int kcobra_client_open_window(kc_client **out, const kcobra_common *common,
                              uint32_t submits_in_flight_max);
void kcobra_client_close(kc_client *client);
/* A raw nats.c connection with the common flags. */
int kcobra_nats_connect(natsConnection **out, const kcobra_common *common);
/* The same for a long-running component (kcobra keeper/ingress serve): it
 * reconnects for ever, every KCOBRA_RECONNECT_WAIT_MS. */
int kcobra_nats_connect_long_running(natsConnection **out, const kcobra_common *common);
/* The same for a part that holds a lease (kcobra queue serve --storage
 * jetstream): pings every 500 ms, so a stopped server is noticed. */
int kcobra_nats_connect_lease(natsConnection **out, const kcobra_common *common);
/* The same, with one delivery thread for all its subscriptions: messages
 * are handled in the order the server sent them (the persister with
 * record_requests). */
int kcobra_nats_connect_ordered(natsConnection **out, const kcobra_common *common);
/* Destroys the connection and releases nats.c's library resources. */
void kcobra_nats_finish(natsConnection *connection);
/* nats.c's last error text for the calling thread, or status's text. */
const char *kcobra_nats_error(natsStatus status);
/* Asks a component on subject (the kit's kci_call, with --timeout) and
 * words what went wrong for the user: who names the component ("persister"),
 * runs_in where it runs ("it runs in kcobrad"). KCOBRA_EXIT_OK with *reply
 * (to destroy) for an answer and for a refusal (its Kc-Error is in
 * refusal when that is not NULL: the caller says what it means);
 * KCOBRA_EXIT_NO_RESPONDERS, KCOBRA_EXIT_TIMEOUT or KCOBRA_EXIT_FAILURE
 * after printing why. */
/* kcobra_call of a subject several components answer: the first answer
 * (kci_call_first). */
int kcobra_call_first(natsMsg **reply, natsConnection *connection, const kcobra_common *common,
                      const char *subject, const char *body, const char *who, const char *runs_in);
int kcobra_call(natsMsg **reply, natsConnection *connection, const kcobra_common *common,
                const char *subject, const char *body, const char *who, const char *runs_in,
                kci_refusal *refusal);
/* The same for a request with headers (request is the caller's). */
int kcobra_call_message(natsMsg **reply, natsConnection *connection, const kcobra_common *common,
                        natsMsg *request, const char *who, const char *runs_in,
                        kci_refusal *refusal);

#endif
