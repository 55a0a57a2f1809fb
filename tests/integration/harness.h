/*
 * Integration harness: runs a NATS-protocol server binary (nats-server or
 * kcobrad, whichever path the test was given) and talks raw bytes to it.
 *
 * Both binaries accept the same flags, `SERVER -a 127.0.0.1 -p PORT [-c CONF]
 * [-m HTTP_PORT]`, and the same config format (nats-server's), so a case
 * written once runs against both and the suite is a differential test.
 *
 * A server lives in its own temporary directory (config, certificates, log),
 * listens on an ephemeral port picked by binding port 0, and is known to be up
 * only when that port accepts connections AND the listening socket belongs to
 * our child (another engineer's server may already hold a port we picked; the
 * start then retries on a fresh port). Every wait has a named bound; nothing
 * here blocks forever. This file knows nothing of nats.c or cmocka: failures
 * are returned as harness_status values and explained on stderr.
 */
#ifndef KC_TESTS_INTEGRATION_HARNESS_H
#define KC_TESTS_INTEGRATION_HARNESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

enum {
    HARNESS_PATH_SIZE_MAX = 256,
    HARNESS_URL_SIZE_MAX = 64,
    /* Big enough for a maximum control line (4096 argument bytes) plus slack. */
    HARNESS_RAW_BUFFER_SIZE = 64 * 1024,
    HARNESS_START_TIMEOUT_MS = 5000,
    HARNESS_STOP_TIMEOUT_MS = 5000,
    HARNESS_IO_TIMEOUT_MS = 2000,
};

typedef enum harness_status {
    HARNESS_OK = 0,
    HARNESS_TIMEOUT = -1,
    HARNESS_CLOSED = -2,   /* the peer closed or reset the connection */
    HARNESS_MISMATCH = -3, /* something arrived, but not what was expected */
    HARNESS_ERROR = -4,    /* a system call failed */
} harness_status;

typedef struct harness_server {
    const char *binary_path;
    char directory_path[HARNESS_PATH_SIZE_MAX];
    char config_path[HARNESS_PATH_SIZE_MAX]; /* empty: started without -c */
    char log_path[HARNESS_PATH_SIZE_MAX];
    char url[HARNESS_URL_SIZE_MAX];
    int port;             /* 0 until the first start; kept across restarts */
    int monitor_port;     /* 0 unless monitor_enabled */
    bool monitor_enabled; /* set before the first start to pass -m */
    int descriptor_limit; /* > 0: the server's RLIMIT_NOFILE (soft and hard); 0: inherited */
    pid_t pid;            /* 0 when not running */
} harness_server;

/* Monotonic clock in milliseconds, for deadlines. */
int64_t harness_now_ms(void);
void harness_sleep_ms(int duration_ms);
/* A port that was free on 127.0.0.1 a moment ago (the kernel's pick for port
 * 0), for a listener the harness does not pass on the command line, such as
 * a cluster's route port in a config file. Someone else may take it first:
 * the server then fails to start, and the caller picks again. */
harness_status harness_port_pick(int *port_out);

/* Creates the temporary directory; does not start anything. */
harness_status harness_server_init(harness_server *server, const char *binary_path);
/* Writes `text` to `name` inside the server's directory; the full path goes to
 * path_out when it is not NULL. */
harness_status harness_server_write_file(const harness_server *server, const char *name,
                                         const char *text, char *path_out, size_t path_size);
/* Full path of `name` inside the server's directory; HARNESS_MISMATCH if it
 * did not fit. */
harness_status harness_server_path(const harness_server *server, const char *name, char *path_out,
                                   size_t path_size);
/* Writes config_text (NULL: no config file) and starts the server. The first
 * start picks a port; later starts reuse it (restart on the same port). */
harness_status harness_server_start(harness_server *server, const char *config_text);
/* Waits up to timeout_ms for child pid and reaps it: true, with its exit
 * status (128 + the signal when a signal killed it); false if it still runs. */
bool harness_child_wait(pid_t pid, int timeout_ms, int *exit_status_out);
/* The file's contents, NUL-terminated, truncated to size; "" if unreadable. */
void harness_read_text(const char *path, char *text, size_t size);
/* The same with a configuration file that already exists at config_path
 * (anywhere: the server still runs in its own directory). */
harness_status harness_server_start_file(harness_server *server, const char *config_path);
/* SIGTERM, a bounded wait, then SIGKILL. Keeps the port and the directory. */
harness_status harness_server_stop(harness_server *server);
/* Sends signal_number (SIGHUP, SIGTERM...) to the running server. */
harness_status harness_server_signal(const harness_server *server, int signal_number);
/* Waits up to timeout_ms for the server to exit by itself (after a signal) and
 * reaps it: exit_status_out gets its exit status, or 128 + the signal number
 * when a signal killed it (the shell's convention). HARNESS_TIMEOUT if it still
 * runs; it is then left for harness_server_stop or cleanup. */
harness_status harness_server_wait_exit(harness_server *server, int timeout_ms,
                                        int *exit_status_out);
/* Set (to anything) to keep server directories and logs for a post-mortem. */
#define HARNESS_KEEP_ENVIRONMENT "KC_INTEGRATION_KEEP"

/* Stops the server if it runs and removes its directory (unless
 * KC_INTEGRATION_KEEP is set). Idempotent. */
void harness_server_cleanup(harness_server *server);

/* Writes ca.pem, server-cert.pem, server-key.pem (for 127.0.0.1 and
 * localhost), client-cert.pem and client-key.pem into the server's directory
 * with the openssl CLI. Valid for one day from now, so nothing expires in git. */
harness_status harness_tls_generate(const harness_server *server);

/* A raw TCP client. Lines end at LF; a preceding CR is dropped. */
typedef struct harness_raw {
    int fd; /* -1 when closed */
    size_t length;
    char buffer[HARNESS_RAW_BUFFER_SIZE];
} harness_raw;

/* A connected blocking socket to 127.0.0.1:port, or -1. receive_buffer_bytes
 * > 0 shrinks SO_RCVBUF before connecting (slow readers). */
int harness_tcp_connect(int port, int receive_buffer_bytes);

void harness_raw_init(harness_raw *raw);
/* As harness_tcp_connect, into raw. */
harness_status harness_raw_connect(harness_raw *raw, int port, int receive_buffer_bytes);
harness_status harness_raw_send(harness_raw *raw, const void *bytes, size_t size);
harness_status harness_raw_send_text(harness_raw *raw, const char *text);
/* One line without its CR LF. Returns HARNESS_MISMATCH if it does not fit. */
harness_status harness_raw_read_line(harness_raw *raw, char *line, size_t line_size,
                                     int timeout_ms);
/* Exactly `size` bytes (a payload). */
harness_status harness_raw_read_exact(harness_raw *raw, void *bytes, size_t size, int timeout_ms);
/* Reads lines until one arrives; it must equal `expected`. Server PINGs are
 * answered with PONG and skipped, unless `expected` is "PING" itself. */
harness_status harness_raw_expect_line(harness_raw *raw, const char *expected, int timeout_ms);
/* Nothing but server PINGs may arrive for quiet_ms, and the peer stays open. */
harness_status harness_raw_expect_silence(harness_raw *raw, int quiet_ms);
/* Reads until the peer closes; what arrived meanwhile is copied (NUL-terminated,
 * truncated) into received when it is not NULL. */
harness_status harness_raw_read_until_closed(harness_raw *raw, char *received, size_t received_size,
                                             size_t *received_total, int timeout_ms);
harness_status harness_raw_expect_closed(harness_raw *raw, int timeout_ms);
/* Connects, reads INFO (copied to info_out when not NULL), sends
 * "CONNECT <connect_json>" and PING, and waits for PONG (+OK may precede it). */
harness_status harness_raw_handshake(harness_raw *raw, int port, const char *connect_json,
                                     char *info_out, size_t info_size);
/* Closes with an orderly FIN. */
void harness_raw_close(harness_raw *raw);
/* Closes with a TCP reset (SO_LINGER 0): a client that vanishes. */
void harness_raw_abort(harness_raw *raw);

/* An HTTP/1.0 GET of path from 127.0.0.1:port (a monitoring port): the whole
 * response, status line and headers included, is copied (NUL-terminated,
 * truncated) into response once the server closes. */
harness_status harness_http_get(int port, const char *path, char *response, size_t response_size,
                                int timeout_ms);

enum { HARNESS_RUN_ARGUMENTS_MAX = 32 };

/* Runs program with the arguments (NULL-terminated, at most
 * HARNESS_RUN_ARGUMENTS_MAX) after "--server url" when url is not NULL,
 * and waits for it: its stdout is copied (NUL-terminated, truncated) into
 * output. Returns its exit status, or -1 if it could not run or was
 * killed by a signal. */
int harness_run(const char *program, const char *url, const char *const *arguments, char *output,
                size_t output_size);

/* The value of "key" in a flat JSON object such as an INFO line: strings
 * without their quotes, other values as written. */
harness_status harness_json_field(const char *json, const char *key, char *value,
                                  size_t value_size);

#endif
