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

typedef struct kci_answer {
    const char *node;     /* Kc-Node: the component's node */
    const char *type;     /* Kc-Type: "ledger", "suggest", ... */
    const char *reply_to; /* the request's Kc-Id, or NULL / "" */
    int code;             /* 0: an answer; else Kc-Error "<code> <message>" */
    const char *message;
    const void *payload;
    size_t payload_length;
} kci_answer;

/* Publishes the answer to request on connection. KC_OK also when the
 * request wants no answer (no reply subject); KC_ERR_INVALID_SUBJECT when
 * its reply subject is not an inbox (nothing is sent; the caller may count
 * it); other errors with kc_last_error(). what names the component in the
 * log line of a failure. */
kc_err kci_answer_send(natsConnection *connection, natsMsg *request, const kci_answer *answer,
                       const char *what);

#endif
