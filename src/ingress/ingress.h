/* ingress.h - the seed-format ingress: a TCP line listener that turns each
 * `REQUEST#<client>#<timestamp>#<payload>` line into a libkingcobra request
 * of one configured type and writes back `REPLY#<client>#<timestamp>#<reply>`
 * (docs/ingress.md has the format, the mapping and the errors).
 *
 * One thread of its own runs an epoll loop over the listener, a wake-up
 * eventfd and the connections (non-blocking). Requests are asynchronous
 * (kc_client_request_async): their answers arrive on libkingcobra's threads,
 * are formatted there, and are handed to the loop, which writes each
 * connection's answers in the order its lines arrived.
 *
 * The kc_client is borrowed; close it only after kci_ingress_stop (closing
 * it answers what is still in flight, and the last answer frees what the
 * ingress still holds). */
#ifndef KCI_INGRESS_H
#define KCI_INGRESS_H

#include <stddef.h>
#include <stdint.h>

#include "kingcobra/kingcobra.h"

enum {
    KCI_INGRESS_CONNECTIONS_MAX_DEFAULT = 1024,
    KCI_INGRESS_PIPELINE_MAX = 64, /* unanswered lines per connection before reading pauses */
    KCI_INGRESS_OUTPUT_BYTES_HIGH = 256 * 1024, /* unsent answer bytes before reading pauses */
    KCI_INGRESS_READ_BYTES = 16 * 1024,         /* one read per readable connection per wake-up */
    KCI_INGRESS_ACCEPT_BATCH_MAX = 64,          /* accepts per wake-up */
    KCI_INGRESS_EPOLL_EVENTS_MAX = 128,
    KCI_INGRESS_LISTEN_BACKLOG = 512,
    KCI_INGRESS_STOP_POLL_MS = 10, /* how often a draining loop looks at its deadline */
    KCI_INGRESS_HOST_BYTES_MAX = 256,
};

typedef struct kci_ingress kci_ingress;

typedef struct kci_ingress_config {
    const char *host;         /* listen address */
    int port;                 /* 0: an ephemeral port (see kci_ingress_port) */
    const char *type;         /* the request type of every line: one subject token */
    int64_t timeout_ms;       /* per request; > 0 */
    uint32_t connections_max; /* 0: the default */
    size_t line_bytes_max;    /* 0: KCI_SEED_LINE_BYTES_MAX_DEFAULT */
    /* non-NULL: every connection's first line must be AUTH#<token> (gate.h) */
    const char *token;
    /* both non-NULL: connections speak TLS (transport.h) */
    const char *cert_file;
    const char *key_file;
} kci_ingress_config;

/* Binds the listener and starts the thread. */
kc_err kci_ingress_start(kci_ingress **out, kc_client *client, const kci_ingress_config *config,
                         char *error, size_t error_size);
/* The port actually bound. */
int kci_ingress_port(const kci_ingress *ingress);
/* Stops accepting and reading, lets answers in flight be written for up to
 * drain_ms, closes every connection and joins the thread. NULL is fine. */
void kci_ingress_stop(kci_ingress *ingress, int64_t drain_ms);

#endif
