/* kingcobra.h - libkingcobra: typed requests, services, problem reports and
 * suggestions over a NATS-protocol fabric (kcobrad or a nats-server cluster).
 *
 * Built on nats.c. Every message the library sends carries the KingCobra
 * headers (docs/service.md):
 *   Kc-Id        a UUIDv7 (RFC 9562), unique cloud-wide
 *   Kc-Ts        a hybrid logical clock timestamp "<wall ms>.<counter>"
 *   Kc-Node      the sending node's name
 *   Kc-Type      the request type
 *   Kc-Deadline  (requests) wall-clock ms after which the answer is useless
 *   Kc-Reply-To  (replies) the Kc-Id of the request answered
 *   Kc-Error     (error replies) "<code> <message>"
 *   Kc-Pay       (paid requests) the ledger transfer that paid (docs/ledger.md)
 * Subjects: kc.req.<type> (services subscribe with queue group <type>),
 * kc.problem.<node>, kc.suggest.
 *
 * Conventions (nats.c's): opaque types, every fallible call returns kc_err,
 * results through out-parameters placed first. All functions are
 * thread-safe unless noted. */
#ifndef KINGCOBRA_KINGCOBRA_H
#define KINGCOBRA_KINGCOBRA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kingcobra/err.h"
#include "kingcobra/export.h"

#ifdef __cplusplus
extern "C" {
#endif

enum {
    KC_UUID_TEXT_BYTES = 36, /* "0190b6e2-...": without the NUL */
    KC_TYPE_BYTES_MAX = 128, /* a request type is one subject token */
    KC_NODE_BYTES_MAX = 128, /* a node name is one subject token */
    KC_ERROR_MESSAGE_BYTES_MAX = 512,
};

/* ---- client ------------------------------------------------------------ */

typedef struct kc_client kc_client;

typedef struct kc_client_options {
    const char *servers; /* "nats://h1:4222,nats://h2:4222"; default nats://127.0.0.1:4222 */
    const char *node;    /* Kc-Node; default: the host name */
    const char *name;    /* connection name shown in /connz; default: the node */
    const char *token;   /* auth token, or */
    const char *user;    /* user and password */
    const char *password;
    bool tls;                  /* require TLS */
    const char *tls_ca_file;   /* CA to verify the server */
    const char *tls_cert_file; /* client certificate, when the server verifies clients */
    const char *tls_key_file;
    int64_t connect_timeout_ms; /* default 2000 */
    int reconnect_attempts_max; /* default -1: forever */
    int64_t reconnect_wait_ms;  /* default 250 */
    /* Asynchronous submits (kc_client_submit_async) one client has in
     * flight at most; default 1024 (0), at most 65,536. */
    uint32_t submits_in_flight_max;
    /* false (default): each message is written to the socket at once, the
     * lowest latency for one request at a time. true: nats.c's flusher
     * thread writes them in batches, which halves the client's CPU per
     * submit when many are in flight (docs/queue.md, "Speed"). */
    bool publish_buffered;
    /* QoS samples (docs/service.md, "QoS samples"): with an Ed25519 secret
     * key (64 bytes, libsodium's layout, e.g. read from a `kcobra wallet
     * new` key file; copied), each reply to a synchronous request is
     * reported, signed, on kc.qos.<the node that answered> for arbiters
     * that cannot watch requests. NULL (default): nothing is reported. */
    const uint8_t *qos_secret_key;
} kc_client_options;

KC_EXPORT void kc_client_options_init(kc_client_options *options);
/* Connects (to any server of the list). */
KC_EXPORT kc_err kc_client_open(kc_client **out, const kc_client_options *options);
/* Stops services, waits up to timeout_ms for in-flight work, closes, frees. */
KC_EXPORT kc_err kc_client_close(kc_client *client, int64_t timeout_ms);
KC_EXPORT const char *kc_client_node(const kc_client *client);
/* The last error's detail text for this thread (never NULL). */
KC_EXPORT const char *kc_last_error(void);

/* ---- requests ---------------------------------------------------------- */

typedef struct kc_reply kc_reply;

/* Sends a request of type and waits up to timeout_ms. On KC_OK, *out is the
 * reply (free it with kc_reply_destroy). Failures are told apart:
 * KC_ERR_TIMEOUT (nobody answered in time), KC_ERR_NO_RESPONDERS (nobody
 * serves type), KC_ERR_SERVICE (the service answered with an error: *out is
 * set and kc_reply_error_code/message say which). */
KC_EXPORT kc_err kc_client_request(kc_reply **out, kc_client *client, const char *type,
                                   const void *payload, size_t payload_len, int64_t timeout_ms);

/* Called once per asynchronous request, on a library thread, with status as
 * kc_client_request would return it; reply is NULL on timeout or no
 * responders. The callback owns reply. */
typedef void (*kc_reply_callback)(kc_client *client, kc_err status, kc_reply *reply, void *closure);
KC_EXPORT kc_err kc_client_request_async(kc_client *client, const char *type, const void *payload,
                                         size_t payload_len, int64_t timeout_ms,
                                         kc_reply_callback callback, void *closure);

/* kc_client_request for a paid service (docs/ledger.md, "Paying for
 * service"): pay is the id of the ledger transfer that paid it, sent as
 * Kc-Pay. A service that refuses the payment answers error 402 and this
 * returns KC_ERR_PAYMENT (with *out set, as for KC_ERR_SERVICE). */
KC_EXPORT kc_err kc_client_request_paid(kc_reply **out, kc_client *client, const char *type,
                                        const void *payload, size_t payload_len, int64_t timeout_ms,
                                        const char *pay);
/* The same, paid with an escrowed hold (docs/ledger.md, "Escrow: holds"):
 * hold is the id of a ledger hold of the payer's coins for the service's
 * wallet, sent as Kc-Pay-Hold. The service claims it for this request,
 * posts it (the coins become the service's) when its handler answers, and
 * voids it (the coins come back) when the handler answers an error; a hold
 * nobody settles returns by itself at its expiry. The way to pay. */
KC_EXPORT kc_err kc_client_request_held(kc_reply **out, kc_client *client, const char *type,
                                        const void *payload, size_t payload_len, int64_t timeout_ms,
                                        const char *hold);

KC_EXPORT const void *kc_reply_payload(const kc_reply *reply, size_t *payload_len);
KC_EXPORT const char *kc_reply_id(const kc_reply *reply);         /* the reply's Kc-Id */
KC_EXPORT const char *kc_reply_request_id(const kc_reply *reply); /* Kc-Reply-To */
KC_EXPORT const char *kc_reply_node(const kc_reply *reply);       /* who answered */
KC_EXPORT const char *kc_reply_timestamp(const kc_reply *reply);  /* Kc-Ts */
KC_EXPORT int kc_reply_error_code(const kc_reply *reply);         /* 0 unless an error reply */
KC_EXPORT const char *kc_reply_error_message(const kc_reply *reply);
KC_EXPORT void kc_reply_destroy(kc_reply *reply);

/* ---- durable submits (docs/queue.md) ----------------------------------- */

/* Called once per asynchronous submit, on a library thread, with id the
 * submit's Kc-Id. status: KC_OK once the persister acknowledged it (the
 * request is on disk); KC_ERR_SERVICE when the persister refused it
 * (error_code and error_message are its Kc-Error: 400, 409, 413, 500, 503,
 * 507...; the request was not stored); KC_ERR_TIMEOUT (no acknowledgement in
 * time: it may or may not be stored, and submitting the same id again is
 * safe), KC_ERR_NO_RESPONDERS (no persister), KC_ERR_CLOSED (the client
 * closed first). error_code is 0 and error_message is kc_last_error()'s
 * text unless status is KC_ERR_SERVICE. */
typedef void (*kc_submit_callback)(kc_client *client, kc_err status, const char *id, int error_code,
                                   const char *error_message, void *closure);

/* Sends a durable request of type to the persister (kc.submit.<type>, with
 * Kc-Id a new UUIDv7, Kc-Ts, Kc-Type, Kc-Node) and returns at once; *id_out
 * (may be NULL) is the request's Kc-Id, set before callback can run, and
 * callback runs once, within about timeout_ms. When the client already has
 * kc_client_options.submits_in_flight_max submits in flight, the call blocks
 * until one completes, at most timeout_ms, then returns KC_ERR_LIMIT. Any
 * error returned means callback will not run. Do not call it concurrently
 * with kc_client_close. */
KC_EXPORT kc_err kc_client_submit_async(kc_client *client, const char *type, const void *payload,
                                        size_t payload_len, int64_t timeout_ms,
                                        kc_submit_callback callback, void *closure,
                                        char id_out[KC_UUID_TEXT_BYTES + 1]);

/* kc_client_submit_async, waiting for the outcome: KC_OK once durable, or the
 * callback's status; *error_code (may be NULL) is the persister's code on
 * KC_ERR_SERVICE, else 0. */
KC_EXPORT kc_err kc_client_submit(kc_client *client, const char *type, const void *payload,
                                  size_t payload_len, int64_t timeout_ms,
                                  char id_out[KC_UUID_TEXT_BYTES + 1], int *error_code);

/* ---- services ---------------------------------------------------------- */

typedef struct kc_service kc_service;
typedef struct kc_request kc_request;
typedef struct kc_response kc_response;

KC_EXPORT const char *kc_request_type(const kc_request *request);
KC_EXPORT const char *kc_request_id(const kc_request *request);
KC_EXPORT const char *kc_request_node(const kc_request *request); /* the requester */
KC_EXPORT const char *kc_request_timestamp(const kc_request *request);
KC_EXPORT int64_t kc_request_deadline_ms(const kc_request *request); /* 0: none */
KC_EXPORT const void *kc_request_payload(const kc_request *request, size_t *payload_len);
/* The request's Kc-Pay (a transfer id), "" when it carries none. */
KC_EXPORT const char *kc_request_payment(const kc_request *request);

/* A handler answers through response: a payload (copied), or an error code
 * (> 0) and message. Returning without setting either replies with an empty
 * payload. */
KC_EXPORT kc_err kc_response_set_payload(kc_response *response, const void *payload,
                                         size_t payload_len);
KC_EXPORT kc_err kc_response_set_error(kc_response *response, int code, const char *message);

typedef void (*kc_handler)(const kc_request *request, kc_response *response, void *closure);

typedef struct kc_service_options {
    int worker_count;                 /* concurrent handlers; default 4 */
    uint32_t idempotence_entries_max; /* replies remembered by Kc-Id; default 10,000 */
    int64_t idempotence_ttl_ms;       /* how long; default 10 minutes */
    /* A paid service: when price > 0, each request must carry Kc-Pay, the id
     * of a ledger transfer that paid wallet (its address, 64 hex digits) at
     * least price and paid no other request; the service asks the ledger
     * (kc.ledger.payment) before the handler runs and answers 402 otherwise. */
    int64_t price;      /* smallest currency units; default 0: free */
    const char *wallet; /* the service's wallet address; copied */
    /* What the NATS services protocol ($SRV.INFO, docs/protocol.md) says of
     * the service; copied. NULL: "KingCobra service <type>" and the
     * library's version. version must be semver (1.2.3). */
    const char *description;
    const char *version;
    /* The wallet's Ed25519 secret key (64 bytes, libsodium's layout, whose
     * second half is the wallet's address); copied. With it, a paid service
     * also takes Kc-Pay-Hold: it claims the hold before the handler runs,
     * posts it after a reply and voids it after an error reply, signing
     * each with this key. NULL (the default): transfers (Kc-Pay) only. */
    const uint8_t *wallet_secret_key;
} kc_service_options;

KC_EXPORT void kc_service_options_init(kc_service_options *options);
/* Serves requests of type (subject kc.req.<type>, queue group <type>). A
 * request whose Kc-Id was answered within the TTL gets the same reply again
 * without running the handler (redeliveries are harmless). */
KC_EXPORT kc_err kc_service_start(kc_service **out, kc_client *client, const char *type,
                                  kc_handler handler, void *closure,
                                  const kc_service_options *options);
/* Stops taking requests, lets running handlers finish, frees. */
KC_EXPORT void kc_service_stop(kc_service *service);

/* ---- problem reports and suggestions ------------------------------------ */

typedef enum kc_problem_reason {
    KC_PROBLEM_WRONG_ANSWER = 1,
    KC_PROBLEM_SLOW = 2,
    KC_PROBLEM_NO_ANSWER = 3,
    KC_PROBLEM_ERROR_REPLY = 4,
    KC_PROBLEM_OVERCHARGED = 5,
    KC_PROBLEM_OTHER = 6,
} kc_problem_reason;

KC_EXPORT const char *kc_problem_reason_name(kc_problem_reason reason); /* "wrong_answer" ... */
/* Returns 0 if name is not a reason. */
KC_EXPORT kc_problem_reason kc_problem_reason_from_name(const char *name);
/* Publishes a problem report about node on kc.problem.<node>. request_id
 * (may be NULL) is the Kc-Id of the offending request. */
KC_EXPORT kc_err kc_client_report_problem(kc_client *client, const char *node,
                                          kc_problem_reason reason, const char *request_id,
                                          const char *text);
/* The same from a payer charged without service: payment is the id of the
 * ledger hold or transfer that paid request_id (both required); the
 * arbiters check with the ledger that it was charged for that request
 * (docs/arbiter.md, "Payment reports"). */
KC_EXPORT kc_err kc_client_report_paid_problem(kc_client *client, const char *node,
                                               kc_problem_reason reason, const char *request_id,
                                               const char *payment, const char *text);
/* Sends a suggestion on kc.suggest and waits up to timeout_ms for the keeper
 * (a kcobrad component) to acknowledge that it is stored; id_out (may be
 * NULL) receives the id the keeper gave it. */
KC_EXPORT kc_err kc_client_suggest(kc_client *client, const char *text, int64_t timeout_ms,
                                   char id_out[KC_UUID_TEXT_BYTES + 1]);

#ifdef __cplusplus
}
#endif

#endif
