/* server.h - the broker's shared state and its event loop.
 *
 * One thread runs everything: an epoll loop over the client listener, the
 * HTTP monitoring listener, a control eventfd and every connection. Single-threaded
 * on purpose: no locks on the hot path, and on a small machine the clients
 * need the other cores. Work is batched per wake-up: every readable
 * connection is read once, the messages it published are appended to the
 * subscribers' output buffers, and at the end of the batch every connection
 * with pending output is written once ("flush list"). The one exception is
 * bcrypt password verification, which is slow on purpose and runs on worker
 * threads that hand results back through an eventfd (verifier.h).
 *
 * Lifetimes: a closed client or removed subscription is unlinked at once but
 * freed only at the end of the batch, after kci_sublist_collect(), so match
 * results and pointers taken during the batch stay valid. */
#ifndef KCI_SERVER_H
#define KCI_SERVER_H

#include <openssl/ssl.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "common/clock.h"
#include "options.h"
#include "sublist.h"

/* kcobrad's own components log in on the internal listener as their
 * roles' users (roles.h), with internal_password: made at start, it never
 * leaves the process and survives reloads. */

/* The nats-server feature level kcobrad implements, reported as INFO's
 * "version": clients gate features (headers, no-responders) on it. kcobrad's
 * own version is INFO's "kcobrad_version". */
#define KCI_NATS_COMPATIBLE_VERSION "2.9.0"

struct kci_client;
struct kci_subscription;
struct kci_monitor;
struct kci_verifier;

enum {
    KCI_READ_BUFFER_BYTES = 64 * 1024,
    KCI_EPOLL_EVENTS_MAX = 256,
    KCI_SERVER_ID_BYTES = 22,
    KCI_INFO_BYTES_MAX = 1024,
    KCI_HOUSEKEEPING_INTERVAL_MS = 250,
    KCI_LISTEN_BACKLOG = 4096,
    KCI_INTERNAL_PASSWORD_BYTES = 32,
    KCI_STALL_MS_MAX = 1000, /* the longest a publisher waits for a lagging subscriber */
    KCI_STALL_POLL_MS = 1,   /* how often stalled publishers are looked at */
    KCI_ACCEPT_PAUSE_MS_MIN = 100,
    KCI_ACCEPT_PAUSE_MS_MAX = 1000,
    KCI_ACCEPT_LOG_INTERVAL_MS = 1000,
    /* Descriptors kcobrad needs besides its clients: stdio, the log, the
     * listeners, epoll, eventfds, the monitor, the queue's and the ledger's
     * files, the components' own connections. */
    KCI_DESCRIPTORS_RESERVED = 64,
};

/* What an epoll event points at: the first member of each such struct. */
typedef enum kci_source_kind {
    KCI_SOURCE_LISTENER = 1,
    KCI_SOURCE_CLIENT = 2,
    KCI_SOURCE_CONTROL = 3,
    KCI_SOURCE_HTTP_LISTENER = 4,
    KCI_SOURCE_HTTP_CONNECTION = 5,
    KCI_SOURCE_INTERNAL_LISTENER = 6,
    KCI_SOURCE_VERIFIER = 7, /* bcrypt results are back (verifier.h) */
} kci_source_kind;

typedef struct kci_source {
    kci_source_kind kind;
} kci_source;

typedef struct kci_server_stats {
    uint64_t in_msgs;
    uint64_t out_msgs;
    uint64_t in_bytes;
    uint64_t out_bytes;
    uint64_t slow_consumers;
    uint64_t total_connections;
    uint64_t rejected_connections;
} kci_server_stats;

/* A listener whose accept(2) failed for want of descriptors or memory
 * (EMFILE, ENFILE, ENOBUFS, ENOMEM): it stays readable, so it is taken out
 * of epoll for pause_ms (doubling while the failures go on, up to
 * KCI_ACCEPT_PAUSE_MS_MAX) instead of being retried in a busy loop, as
 * nats-server sleeps in its accept loop. One log line per interval counts
 * the failures. */
typedef struct kci_accept_pause {
    bool paused;
    int64_t resume_ms;     /* monotonic: when the listener is watched again */
    int64_t pause_ms;      /* the next pause; 0: KCI_ACCEPT_PAUSE_MS_MIN */
    uint64_t failed_count; /* accepts that failed since the last log line */
    int64_t last_log_ms;   /* monotonic; 0: never */
} kci_accept_pause;

typedef struct kci_server {
    kci_options options;
    char server_id[KCI_SERVER_ID_BYTES + 1];
    char internal_password[KCI_INTERNAL_PASSWORD_BYTES + 1];
    kci_sublist *sublist;
    SSL_CTX *tls_context;
    int epoll_fd;
    kci_source listener;
    int listen_fd;
    int port;         /* the bound port (useful when 0 was asked) */
    bool public_held; /* the client listener is not watched yet */
    /* kcobrad's components connect here: 127.0.0.1, an ephemeral port, no
     * TLS, only the components' roles (roles.h), not counted as
     * connections. */
    kci_source internal_listener;
    int internal_listen_fd;
    int internal_port;
    kci_accept_pause listener_pause;
    kci_accept_pause internal_listener_pause;
    kci_source control_source;
    int control_fd;
    atomic_uint control_requests; /* KCI_CONTROL_* bits */
    atomic_uint reloads_done;     /* each reload, done or failed (kci_server_reload_wait) */
    atomic_bool reload_failed;    /* the last one kept the running configuration */
    struct kci_monitor *monitor;
    struct kci_verifier *verifier; /* bcrypt off the loop, and its cache */
    /* connections */
    struct kci_client *clients; /* doubly linked, newest first */
    uint64_t client_count;
    uint64_t next_client_id;
    struct kci_client *closed; /* freed at the end of the batch */
    struct kci_subscription *retired_subscriptions;
    struct kci_client *current_reader; /* whose input is being processed */
    struct kci_client **stalled;
    uint32_t stalled_count;
    uint32_t stalled_capacity;
    struct kci_client **flush_list;
    uint32_t flush_count;
    uint32_t flush_capacity;
    /* INFO prefix, re-rendered on reload; each client appends its own id */
    char info_prefix[KCI_INFO_BYTES_MAX];
    size_t info_prefix_len;
    char internal_info_prefix[KCI_INFO_BYTES_MAX]; /* the internal listener's: no TLS */
    size_t internal_info_prefix_len;
    uint8_t *read_buffer;
    uint64_t random_state;
    int64_t now_ms;   /* monotonic, refreshed per batch */
    int64_t start_ms; /* monotonic */
    int64_t start_wall_ms;
    int64_t next_housekeeping_ms;
    kci_server_stats stats;
    struct kci_quarantine *quarantine; /* quarantine.h; NULL: nobody */
    bool running;
} kci_server;

enum { KCI_CONTROL_RELOAD = 1u, KCI_CONTROL_STOP = 2u, KCI_CONTROL_OPEN_PUBLIC = 4u };

/* Takes ownership of *options (zeroes it). Binds the listeners. */
kc_err kci_server_create(kci_server **out, kci_options *options, char *error, size_t error_size);
/* Runs until kci_server_stop; then stops accepting, flushes pending output
 * (bounded) and returns. Signals are the caller's business (kcobrad). */
kc_err kci_server_run(kci_server *server);
/* Thread-safe: ask the loop to stop, or to re-read the config file. */
void kci_server_stop(kci_server *server);
void kci_server_request_reload(kci_server *server);
/* Thread-safe: asks for a reload and waits (up to timeout_ms) until the
 * loop has done it; true if the new configuration is in force. The caller
 * may then read server->options until its next request: only a reload
 * writes them. */
bool kci_server_reload_wait(kci_server *server, int64_t timeout_ms);
/* Before the loop runs: stop watching the client and monitoring listeners
 * (connections wait in their backlogs), so kcobrad's components are up
 * before anyone else is served or counts anything. kci_server_open_public (thread-safe) starts
 * serving them. */
void kci_server_hold_public(kci_server *server);
void kci_server_open_public(kci_server *server);
void kci_server_destroy(kci_server *server);

/* Used by client.c and monitor.c. */
void kci_server_mark_dirty(kci_server *server, struct kci_client *client);
/* Stops reading from client until client->stall_on drains (client.h). */
void kci_server_stall(kci_server *server, struct kci_client *client);
/* The epoll events a client should be watched for now. */
uint32_t kci_client_epoll_events(const struct kci_client *client);
uint64_t kci_server_random(kci_server *server);
/* Applies debug/trace/logtime to the process logger. */
void kci_configure_logging(const kci_options *options);
/* Re-reads the config file: permissions, users and limits (SIGHUP). */
void kci_server_reload(kci_server *server);

#endif
