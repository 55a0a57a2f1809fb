/* client_internal.h - what client.c, request.c, reply.c, service.c and
 * problem.c share about a kc_client: the nats.c connection, the node name,
 * the services it runs (stopped by kc_client_close), and the asynchronous
 * request machinery (request.c), made on first use.
 *
 * Clock: every message is stamped from the process's hybrid logical clock
 * (kci_process_hlc(), hlc.h): one process is one node's clock, whatever the
 * number of clients in it, and every received Kc-Ts is observed on it. */
#ifndef KCI_CLIENT_INTERNAL_H
#define KCI_CLIENT_INTERNAL_H

#include <nats/nats.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "common/clock.h"
#include "kingcobra/kingcobra.h"
#include "service/headers.h"

enum {
    KCI_SUBJECT_BYTES_MAX = 256, /* "kc.req." + a type, "_INBOX.<nuid>.<token>" */
    KCI_CLIENT_SERVERS_MAX = 32, /* URLs in kc_client_options.servers */
    KCI_CLIENT_SERVERS_BYTES_MAX = 4096,
    KCI_CLIENT_SERVICES_MAX = 1024, /* services one client runs at once */
    KCI_ASYNC_SLOT_BITS = 16,
    KCI_ASYNC_PENDING_MAX = 1 << KCI_ASYNC_SLOT_BITS, /* async requests in flight */
    KCI_TIMEOUT_MS_MAX = 24 * 60 * 60 * 1000,         /* a request waits at most a day */
    KCI_CLOSE_MARGIN_MS = 2000, /* after the drain deadline, for nats.c to report closed */
    KCI_CLIENT_CONNECT_TIMEOUT_MS_DEFAULT = 2000,
    KCI_CLIENT_RECONNECT_WAIT_MS_DEFAULT = 250,
    KCI_INBOX_BYTES_MAX = 96, /* "_INBOX.<nuid>" (nats.c makes 29 bytes) */
    KCI_CHANNELS_MAX = 256,   /* synchronous requests one client runs at once on channels */
    KCI_SUBMITS_IN_FLIGHT_DEFAULT = 1024, /* kc_client_options.submits_in_flight_max */
};

/* HTTP-like codes the library itself puts in Kc-Error (docs/service.md). */
enum {
    KCI_CODE_BAD_REQUEST = 400,     /* a malformed KingCobra header; the handler did not run */
    KCI_CODE_PAYMENT = 402,         /* a paid service: Kc-Pay missing or refused by the ledger */
    KCI_CODE_CONFLICT = 409,        /* the same Kc-Id is still being handled elsewhere */
    KCI_CODE_INTERNAL = 500,        /* the library failed (memory) while serving */
    KCI_CODE_DEADLINE_PASSED = 504, /* Kc-Deadline passed before a worker took it */
};

typedef struct kci_async kci_async;
typedef struct kci_channel kci_channel;
typedef struct kci_qos_reporter kci_qos_reporter;

struct kc_client {
    natsConnection *connection;
    char node[KC_NODE_BYTES_MAX + 1];
    pthread_mutex_t lock; /* everything below */
    pthread_cond_t changed;
    bool closing;           /* kc_client_close has begun: no new services or async requests */
    bool connection_closed; /* nats.c's closed callback has run */
    kc_service *services;   /* linked through kc_service.next (service.c) */
    uint32_t service_count;
    kci_async *async;           /* NULL until the first kc_client_request_async */
    kci_channel *channels_free; /* reply channels not in use (channel.c) */
    kci_channel *channels_all;  /* every channel made, through all_next */
    uint32_t channel_count;
    uint32_t submits_in_flight_max; /* set at open, 1..KCI_ASYNC_PENDING_MAX */
    kci_qos_reporter *qos;          /* NULL unless opened with a QoS key (qos_report.h) */
};

struct kc_reply {
    natsMsg *message; /* owns the payload */
    kci_kc_headers headers;
};

/* ---- client.c ----------------------------------------------------------- */

/* Maps a nats.c failure to a kc_err, recording what and nats.c's text. */
kc_err kci_nats_fail(natsStatus status, const char *what);
/* Stamps message for sending: a new Kc-Id and Kc-Ts (written back into
 * headers), Kc-Node from client, and what else headers sets. */
kc_err kci_client_stamp(kc_client *client, natsMsg *message, kci_kc_headers *headers);
/* A request stamped by client (Kc-Type type) whose Kc-Cause names request's
 * Kc-Id and its Kc-Pay (a payment claim is caused by the paid request and
 * the transfer or hold that pays it: docs/eventnet.md); request_caused.c. */
natsStatus kci_request_caused(natsMsg **reply, kc_client *client, const char *subject,
                              const char *body, const char *type, const kci_kc_headers *request,
                              int64_t timeout_ms);
/* Observes a received Kc-Ts (when present) on the process clock. */
kc_err kci_client_observe(const kci_kc_headers *headers);
/* "kc.req.<type>" into subject; KC_ERR_INVALID_ARGUMENT unless type is a token. */
kc_err kci_request_subject(char subject[KCI_SUBJECT_BYTES_MAX], const char *type);

/* ---- service.c ---------------------------------------------------------- */

typedef struct kci_service_stats {
    uint64_t served_count;   /* handler ran */
    uint64_t replayed_count; /* answered from the idempotence cache */
    uint64_t expired_count;  /* Kc-Deadline had passed */
    uint64_t rejected_count; /* malformed headers */
    uint64_t busy_count;     /* in progress elsewhere past the wait */
} kci_service_stats;

void kci_service_stats_get(kc_service *service, kci_service_stats *out);

/* ---- payment.c ---------------------------------------------------------- */

enum {
    KCI_PAYMENT_TIMEOUT_MS = 5000, /* the ledger's answer to a claim, at most */
    KCI_WALLET_TEXT_BYTES = 64,    /* a wallet address: an Ed25519 key in hex */
};

/* Claims the request's Kc-Pay with the ledger for wallet and price:
 * KC_OK when paid; otherwise KC_ERR_PAYMENT with why in message. */
kc_err kci_payment_claim(kc_client *client, const char *wallet, int64_t price,
                         const kci_kc_headers *headers, char *message, size_t message_size);
/* A wallet address: 64 hex digits. */
bool kci_wallet_address_valid(const char *wallet);
/* How long a claim may take: the bound, or what is left of the deadline. */
int64_t kci_payment_timeout_ms(const kci_kc_headers *headers);
/* Asks the ledger on subject, the question caused by request (Kc-Cause:
 * its id and payment): KC_OK when it answers without Kc-Error; otherwise
 * KC_ERR_PAYMENT with "<what> refused by the ledger: ..." (or why it could
 * not ask) in message. */
kc_err kci_ledger_ask(kc_client *client, const char *subject, const char *body,
                      const kci_kc_headers *request, int64_t timeout_ms, const char *what,
                      char *message, size_t message_size);

/* ---- hold.c: escrowed payment ------------------------------------------- */

enum {
    KCI_WALLET_SECRET_BYTES = 64,
};

/* Claims the request's Kc-Pay-Hold for its Kc-Id, signed with the
 * service's key: KC_OK when the hold pays the wallet at least price and
 * is pending (or was claimed for this request); otherwise KC_ERR_PAYMENT
 * with why in message. */
kc_err kci_hold_claim(kc_client *client, const uint8_t secret_key[KCI_WALLET_SECRET_BYTES],
                      int64_t price, const kci_kc_headers *headers, char *message,
                      size_t message_size);
/* Posts (post true: the handler answered) or voids (it answered an error)
 * the request's hold; logs a failure (the hold then expires back to the
 * payer). */
/* True when secret_key's public half is wallet (hex), and libsodium is
 * ready to sign with it. */
bool kci_wallet_key_matches(const char *wallet, const uint8_t secret_key[KCI_WALLET_SECRET_BYTES]);
void kci_hold_settle(kc_client *client, const uint8_t secret_key[KCI_WALLET_SECRET_BYTES],
                     const kci_kc_headers *headers, bool post);

/* ---- reply.c ------------------------------------------------------------ */

/* Turns a reply message into a kc_reply, taking ownership of message in
 * every case. request_id (may be empty) is checked against Kc-Reply-To.
 * Returns KC_OK, KC_ERR_SERVICE (*out set), KC_ERR_NO_RESPONDERS,
 * KC_ERR_BAD_HEADER or KC_ERR_NOMEM (*out NULL). */
kc_err kci_reply_adopt(kc_reply **out, natsMsg *message, const char *request_id);

/* ---- channel.c ---------------------------------------------------------- */

/* A free reply channel for one synchronous request, made if none is free;
 * *out NULL (and KC_OK) when KCI_CHANNELS_MAX are all busy. */
kc_err kci_channel_take(kc_client *client, kci_channel **out);
/* Returns channel (may be NULL) to the client's free list. */
void kci_channel_give_back(kc_client *client, kci_channel *channel);
/* The reply subject for the channel's next request. */
void kci_channel_reply_subject(kci_channel *channel, char subject[KCI_SUBJECT_BYTES_MAX]);
/* Waits up to timeout_ms for the message on reply_subject, dropping late
 * replies to earlier requests; NATS_TIMEOUT, or nats.c's status. */
natsStatus kci_channel_wait(kci_channel *channel, const char *reply_subject, int64_t timeout_ms,
                            natsMsg **reply);
/* Unsubscribes every channel, so that draining the connection does not wait
 * for late replies nobody will read. No request may be in flight. */
void kci_channels_unsubscribe(kc_client *client);
/* Frees every channel (after the connection closed). */
void kci_channels_destroy(kc_client *client);

/* ---- request.c ---------------------------------------------------------- */

/* Waits until no asynchronous request is pending or deadline_ms (monotonic)
 * passes. */
void kci_async_wait_idle(kc_client *client, int64_t deadline_ms);
/* After the connection closed: waits for the inbox subscription's last
 * callback, stops the timeout thread, answers what is still pending with
 * KC_ERR_CLOSED, frees. */
void kci_async_destroy(kc_client *client);

/* Who an asynchronous message calls back: a request's reply_callback, or a
 * submit's submit_callback (submits count against the client's window). */
typedef struct kci_async_target {
    kc_reply_callback reply_callback;
    kc_submit_callback submit_callback;
    void *closure;
} kci_async_target;

/* Publishes a stamped message on subject with a reply subject on the
 * client's async inbox; a request carries Kc-Deadline, a submit does not
 * (its deadline is for the acknowledgement only). *id_out (may be NULL) is
 * the Kc-Id, set before the publish. On an error, target never runs. */
kc_err kci_async_send(kc_client *client, const char *subject, const char *type, const void *payload,
                      size_t payload_len, int64_t timeout_ms, const kci_async_target *target,
                      char *id_out);

/* ---- submit.c ----------------------------------------------------------- */

/* Runs a submit's callback: status (KC_OK when the persister's answer came,
 * then message is that answer, taken here) or a failure without an answer
 * (message NULL); id is the submit's Kc-Id. */
void kci_submit_complete(kc_client *client, const kci_async_target *target, const char *id,
                         kc_err status, natsMsg *message);

#endif
