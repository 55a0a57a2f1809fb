/* client.h - one client connection: its protocol state, its subscriptions
 * and its output buffer.
 *
 * Output: everything for a client is appended to one contiguous buffer
 * (out_head..out_tail) and written at the end of the batch. The buffer
 * grows on demand up to max_pending; a client whose pending bytes would pass
 * that, or that stays more than half of it behind for write_deadline, is a
 * slow consumer and is closed, so one stuck or trickling reader cannot hold
 * the broker's memory or slow the others. Idle connections own no buffer. */
#ifndef KCI_CLIENT_H
#define KCI_CLIENT_H

#include <netinet/in.h>
#include <openssl/ssl.h>
#include <stdbool.h>
#include <stdint.h>

#include "options.h"
#include "parser.h"
#include "roles.h"
#include "server.h"
#include "sid_index.h"

typedef struct kci_subscription {
    struct kci_client *client;
    char *subject; /* subject, queue and sid share one allocation */
    char *queue;   /* NULL when not in a queue group */
    char *sid;
    uint32_t subject_len;
    uint32_t queue_len;
    uint32_t sid_len;
    bool removed;
    bool tap;              /* sees messages, is not a responder (roles.h: kci_role_observes) */
    uint32_t client_index; /* its slot in client->subscriptions */
    uint64_t delivered_count;
    uint64_t max_messages; /* 0: no automatic unsubscribe */
    struct kci_subscription *next_retired;
} kci_subscription;

typedef enum kci_tls_state {
    KCI_TLS_NONE = 0,
    KCI_TLS_HANDSHAKE = 1,
    KCI_TLS_ESTABLISHED = 2,
} kci_tls_state;

typedef enum kci_close_reason {
    KCI_CLOSE_CLIENT = 1,        /* the peer closed */
    KCI_CLOSE_PROTOCOL = 2,      /* a protocol violation */
    KCI_CLOSE_AUTH = 3,          /* authorization violation or timeout */
    KCI_CLOSE_SLOW_CONSUMER = 4, /* pending bytes or write deadline */
    KCI_CLOSE_STALE = 5,         /* pings unanswered */
    KCI_CLOSE_MAX_PAYLOAD = 6,
    KCI_CLOSE_TLS = 7,
    KCI_CLOSE_SERVER_SHUTDOWN = 8,
    KCI_CLOSE_WRITE_ERROR = 9,
    KCI_CLOSE_READ_ERROR = 10,
    KCI_CLOSE_MAX_CONNECTIONS = 11,
} kci_close_reason;

typedef struct kci_client {
    kci_source source; /* first: epoll data points here */
    kci_server *server;
    struct kci_client *prev;
    struct kci_client *next;
    uint64_t id;
    int fd;
    /* Accepted on the internal loopback listener: kcobrad's own components.
     * Must log in as one of their roles' users; not counted in connections. */
    bool internal_listener;
    uint8_t role; /* kci_role (roles.h): which component; 0 for clients */
    kci_parser parser;
    /* CONNECT options */
    bool connect_received;
    bool verbose;
    bool pedantic;
    bool echo;
    bool headers;
    bool no_responders;
    /* An arbiters' verdict: no kc.req.> deliveries (quarantine.h). Here, in
     * the padding after the flags, so the struct keeps its size and layout. */
    bool quarantined;
    /* It logged in with the token (no user): a reload that changes or drops
     * the token closes it, as nats-server re-checks every client. */
    bool by_token;
    char *name;
    char *lang;
    char *version;
    char *user_name;
    const kci_permissions *permissions; /* NULL: everything allowed */
    /* A bcrypt verification of its CONNECT runs (verifier.h): not read,
     * not parsed; what was read after the CONNECT line waits in held_input. */
    bool auth_pending;
    struct kci_verify_job *verify_job;
    uint8_t *held_input;
    uint32_t held_input_len;
    /* output */
    uint8_t *out;
    uint32_t out_head;
    uint32_t out_tail;
    uint32_t out_capacity;
    bool in_flush_list;
    bool want_write; /* EPOLLOUT is armed */
    bool closing;
    kci_close_reason close_reason;
    /* Back-pressure: a publisher whose messages filled a subscriber's
     * output past half of max_pending is not read until that subscriber
     * drains its output, closes, or KCI_STALL_MS_MAX passes since the
     * subscriber fell behind: one pause per episode, not one per read, so
     * a subscriber that trickles cannot hold its publishers for long. */
    struct kci_client *stall_on;
    bool stalled;
    int64_t stall_until_ms;
    /* As a subscriber: since when its output is past half of max_pending
     * (0: it is not, or it drained back to a quarter). Past write_deadline
     * it is closed as a slow consumer. */
    int64_t behind_since_ms;
    /* subscriptions: dense, for closing and monitoring, and by sid */
    kci_subscription **subscriptions;
    uint32_t subscription_count;
    uint32_t subscription_capacity;
    kci_sid_index sid_index;
    bool max_subscriptions_logged; /* one log line per connection */
    /* TLS */
    SSL *ssl;
    kci_tls_state tls_state;
    /* timing */
    int64_t start_ms;
    int64_t last_activity_ms;
    int64_t last_ping_ms;
    int64_t write_stalled_since_ms; /* 0: not stalled */
    uint32_t pings_outstanding;
    /* stats */
    uint64_t in_msgs;
    uint64_t out_msgs;
    uint64_t in_bytes;
    uint64_t out_bytes;
    /* peer */
    char ip[INET6_ADDRSTRLEN];
    uint16_t port;
} kci_client;

/* Creates a client for an accepted socket (TLS unless internal). */
kc_err kci_client_create(kci_server *server, int fd, const struct sockaddr_storage *address,
                         bool internal_listener, kci_client **out);
/* Sends INFO (plain text, before any TLS handshake). */
kc_err kci_client_start(kci_client *client);
/* Reads once and processes what arrived. */
void kci_client_on_readable(kci_client *client);
/* Its CONNECT's verification came back (verifier.h): finishes the CONNECT,
 * then parses the held input and reads again. */
void kci_client_on_verified(kci_client *client, const struct kci_verify_job *job);
/* EPOLLOUT: continues a TLS handshake or flushes. */
void kci_client_on_writable(kci_client *client);
/* Writes pending output; arms or disarms EPOLLOUT as needed. */
void kci_client_flush(kci_client *client);
/* Queues "-ERR 'text'" (best effort when closing). */
void kci_client_send_error(kci_client *client, const char *text);
/* Unlinks the client, best-effort flushes, closes the socket, and parks it
 * on the server's closed list. Safe to call twice. */
void kci_client_close(kci_client *client, kci_close_reason reason);
/* Frees a closed client's memory (end of batch). */
void kci_client_free(kci_client *client);
/* Ping interval, auth timeout, write deadline: called on housekeeping. */
void kci_client_housekeeping(kci_client *client, int64_t now_ms);
/* Appends raw bytes; false (and the client is closed) on slow consumer. */
bool kci_client_append(kci_client *client, const void *bytes, size_t len);
/* Makes room for up to len bytes at *at; then kci_client_commit(used).
 * False (and the client is closed) on slow consumer or no memory. */
bool kci_client_reserve(kci_client *client, size_t len, uint8_t **at);
void kci_client_commit(kci_client *client, size_t used);
const char *kci_close_reason_text(kci_close_reason reason);
uint32_t kci_client_pending_bytes(const kci_client *client);
bool kci_client_over_stall_threshold(const kci_client *client);

#endif
