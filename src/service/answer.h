/* answer.h - a component answers a request (the component kit).
 *
 * The ledger, the suggestion keeper and the other built-in components answer
 * their requests the same way: on the request's reply subject, only if that
 * subject is the client's inbox (reply_subject.h: a component never
 * publishes on a subject of the client's choosing with its own identity),
 * stamped with the Kc headers (a new Kc-Id, Kc-Ts, the component's Kc-Node
 * and Kc-Type, Kc-Reply-To naming the request's Kc-Id) and, for a refusal,
 * Kc-Error "<code> <message>". libkingcobra's services answer through
 * service.c instead: they act with their own user's authority and also
 * answer the persister's _KCQ. dispatches (docs/security.md). */
#ifndef KCI_ANSWER_H
#define KCI_ANSWER_H

#include <nats/nats.h>
#include <stddef.h>

#include "kingcobra/err.h"
#include "service/micro.h"

/* A header the answer carries besides the Kc headers. */
typedef struct kci_answer_header {
    const char *name;
    const char *value; /* NULL or "": not set */
} kci_answer_header;

enum { KCI_ANSWER_HEADERS_MAX = 4 };

typedef struct kci_answer {
    const char *node;     /* Kc-Node: the component's node */
    const char *type;     /* Kc-Type: "ledger", "suggest", ...; NULL: none */
    const char *reply_to; /* the request's Kc-Id, or NULL / "" */
    int code;             /* 0: an answer; else Kc-Error "<code> <message>" */
    const char *message;
    const void *payload;
    size_t payload_length;
    /* Kc-Id: NULL, a new one (the answer's own). The persister answers
     * about a stored request with that request's id (docs/queue.md). */
    const char *id;
    kci_answer_header headers[KCI_ANSWER_HEADERS_MAX]; /* e.g. Kc-Queue-State */
    /* The endpoint a refusal counts against (micro.h); NULL: the one this
     * thread serves, if any (a handler of a counted subscription). */
    kci_micro_stats *stats;
} kci_answer;

/* Publishes the answer to request on connection. KC_OK also when the
 * request wants no answer (no reply subject); KC_ERR_INVALID_SUBJECT when
 * its reply subject is not an inbox (nothing is sent; the caller may count
 * it); other errors with kc_last_error(). what names the component in the
 * log line of a failure. */
kc_err kci_answer_send(natsConnection *connection, natsMsg *request, const kci_answer *answer,
                       const char *what);
/* The same, to the reply subject to (the request's, kept by the caller:
 * the persister answers after the write is durable). */
kc_err kci_answer_send_to(natsConnection *connection, const char *to, const kci_answer *answer,
                          const char *what);

#endif
