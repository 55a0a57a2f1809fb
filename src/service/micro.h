/* micro.h - the NATS services protocol (ADR-32, "micro"), so that NATS tools
 * (the nats CLI's `micro ls`, nats.js's and nats.go's service clients,
 * `kcobra services`) discover KingCobra's services and read their stats.
 *
 * A responder answers $SRV.PING, $SRV.INFO and $SRV.STATS, each plain, with
 * the service's name, and with its name and id (nine subscriptions of its
 * own, no queue group: every instance answers), with the
 * io.nats.micro.v1.{ping,info,stats}_response JSON. Every libkingcobra
 * service (kc_service_start) and each built-in component (persister,
 * ledger, arbiter, keeper) runs one. Answers go to an inbox only, like every
 * answer of ours (reply_subject.h).
 *
 * The stats of an endpoint are a small counter struct that the request
 * paths update: atomics for the counts and the time, a mutex for the last
 * error's text. A component's subscription (subscriptions.h, spec->stats)
 * counts each request and the time its handler took, and marks the thread
 * as serving that endpoint while the handler runs, so an error answer sent
 * from the handler (answer.h) is counted against it without the component
 * saying so; a component that answers later from another thread (the
 * ledger's workers) names the stats in its answer. Error replies carry
 * Nats-Service-Error and Nats-Service-Error-Code besides Kc-Error
 * (headers.c).
 *
 * Names follow ADR-32: a service name is [A-Za-z0-9_-]+ (a libkingcobra
 * service is named after its type, other bytes made '_'); the id is a
 * UUIDv7, unique per instance; the version is semver (KC_VERSION unless the
 * service says otherwise). */
#ifndef KCI_MICRO_H
#define KCI_MICRO_H

#include <nats/nats.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kingcobra/err.h"

enum {
    KCI_MICRO_ENDPOINTS_MAX = 8,
    KCI_MICRO_NAME_BYTES_MAX = 128,
    KCI_MICRO_TEXT_BYTES_MAX = 256, /* version, description, subject, metadata values */
    KCI_MICRO_LAST_ERROR_BYTES = 256,
    KCI_MICRO_ID_BYTES = 37, /* a UUID's text and its NUL */
};

#define KCI_MICRO_PING_TYPE "io.nats.micro.v1.ping_response"
#define KCI_MICRO_INFO_TYPE "io.nats.micro.v1.info_response"
#define KCI_MICRO_STATS_TYPE "io.nats.micro.v1.stats_response"
#define KCI_MICRO_SUBJECT_PREFIX "$SRV"
#define KCI_HEADER_SERVICE_ERROR "Nats-Service-Error"
#define KCI_HEADER_SERVICE_ERROR_CODE "Nats-Service-Error-Code"

/* ---- an endpoint's stats ------------------------------------------------- */

typedef struct kci_micro_stats {
    _Atomic uint64_t request_count;
    _Atomic uint64_t error_count;
    _Atomic uint64_t processing_ns; /* summed over the requests */
    pthread_mutex_t lock;           /* last_error */
    char last_error[KCI_MICRO_LAST_ERROR_BYTES];
} kci_micro_stats;

typedef struct kci_micro_stats_snapshot {
    uint64_t request_count;
    uint64_t error_count;
    uint64_t processing_ns;
    char last_error[KCI_MICRO_LAST_ERROR_BYTES];
} kci_micro_stats_snapshot;

void kci_micro_stats_init(kci_micro_stats *stats);
void kci_micro_stats_destroy(kci_micro_stats *stats);
/* One request served in processing_ns (negative counts as 0). */
void kci_micro_stats_request(kci_micro_stats *stats, int64_t processing_ns);
/* One error answered: last_error becomes "<code>:<message>" (nats.go's form). */
void kci_micro_stats_error(kci_micro_stats *stats, int code, const char *message);
void kci_micro_stats_read(kci_micro_stats *stats, kci_micro_stats_snapshot *out);

/* The endpoint whose request this thread is handling (set by the
 * subscription kit around a handler), or NULL. */
kci_micro_stats *kci_micro_current(void);
void kci_micro_current_set(kci_micro_stats *stats);

/* A monotonic clock in nanoseconds, for processing times. */
int64_t kci_micro_now_ns(void);

/* ---- what a service says about itself ------------------------------------ */

typedef struct kci_micro_endpoint {
    const char *name;        /* e.g. "submit" */
    const char *subject;     /* e.g. "kc.submit.>" */
    const char *queue_group; /* NULL: none (every instance gets each request) */
    kci_micro_stats *stats;  /* lives as long as the responder */
} kci_micro_endpoint;

typedef struct kci_micro_description {
    const char *name; /* [A-Za-z0-9_-]+ */
    const char *version;
    const char *description;
    /* metadata: kc_node, kc_type, kc_price */
    const char *node;
    const char *type;
    int64_t price;
    const kci_micro_endpoint *endpoints;
    size_t endpoint_count;
} kci_micro_description;

/* True when name is a service name ADR-32 accepts. */
bool kci_micro_name_valid(const char *name);
/* True when version is semver (MAJOR.MINOR.PATCH, optional -pre and +build). */
bool kci_micro_version_valid(const char *version);
/* out gets name with every byte outside [A-Za-z0-9_-] made '_' (cut to
 * out_size - 1 bytes); "service" when name is empty. */
void kci_micro_name_from(char *out, size_t out_size, const char *name);

/* The JSON answers (compact, malloc'd; NULL when out of memory). id is the
 * instance's, started_wall_ms when it started (Unix ms). */
char *kci_micro_ping_json(const kci_micro_description *description, const char *id);
char *kci_micro_info_json(const kci_micro_description *description, const char *id);
char *kci_micro_stats_json(const kci_micro_description *description, const char *id,
                           int64_t started_wall_ms);

/* ---- the responder -------------------------------------------------------- */

typedef struct kci_micro kci_micro;

/* Checks and copies description (the endpoints' stats are referenced, not
 * copied), subscribes the nine $SRV subjects on connection and waits until
 * the server has them. KC_ERR_INVALID_ARGUMENT for a bad name, version or
 * too many endpoints; a subscription's failure with kc_last_error(). */
kc_err kci_micro_start(kci_micro **out, natsConnection *connection,
                       const kci_micro_description *description);
/* kci_micro_start for a component or a service that serves on without it
 * (e.g. its user may not subscribe to $SRV.>): NULL, and a warning naming
 * what, when it cannot start. */
kci_micro *kci_micro_start_logged(natsConnection *connection,
                                  const kci_micro_description *description, const char *what);
/* The instance's id (a UUIDv7's text). */
const char *kci_micro_id(const kci_micro *micro);
/* Stops answering; waits (at most about drain_ms) until no answer is being
 * built, then frees. NULL is fine. */
void kci_micro_stop(kci_micro *micro, int64_t drain_ms);

#endif
