/* suggestions.h - the suggestion keeper: answers kc.suggest by appending the
 * suggestion to a JSON-lines file (fsync before the acknowledgement) and
 * kc.suggest.list with the newest kept suggestions (docs/ingress.md,
 * "Suggestion keeper").
 *
 * It is an ordinary client of the fabric on a nats.c connection it is
 * given (kcobrad's host logs that connection in as the internal user), so
 * the same code can run against any NATS-protocol server. One keeper per
 * file: the file is locked (flock) while the keeper runs. */
#ifndef KCI_SUGGESTIONS_H
#define KCI_SUGGESTIONS_H

#include <nats/nats.h>
#include <stddef.h>
#include <stdint.h>

#include "kingcobra/err.h"

#define KCI_SUGGEST_SUBJECT "kc.suggest"
#define KCI_SUGGEST_LIST_SUBJECT "kc.suggest.list"
/* Status changes: kc.suggest.change.<operator>, the operator's own subject
 * (the broker lets only that user publish it: docs/ingress.md), and one
 * suggestion's state on kc.suggest.show. */
#define KCI_SUGGEST_CHANGE_PREFIX "kc.suggest.change."
#define KCI_SUGGEST_SHOW_SUBJECT "kc.suggest.show"
/* Queue groups: with several keepers on one fabric, one answers each request. */
#define KCI_SUGGEST_QUEUE "kc-suggest"
#define KCI_SUGGEST_LIST_QUEUE "kc-suggest-list"
#define KCI_SUGGEST_CHANGE_QUEUE "kc-suggest-change"
#define KCI_SUGGEST_SHOW_QUEUE "kc-suggest-show"

enum {
    KCI_SUGGESTION_TEXT_BYTES_MAX = 64 * 1024,          /* of "text", UTF-8 bytes */
    KCI_SUGGESTION_LIST_MAX = 1000,                     /* suggestions in one list reply */
    KCI_SUGGESTION_MEMORY_BYTES_MAX = 16 * 1024 * 1024, /* the newest lines kept in memory */
    KCI_SUGGESTION_LINE_BYTES_MAX = 1024 * 1024,        /* a stored line; longer is corrupt */
    KCI_SUGGESTION_LOAD_CHUNK_BYTES = 64 * 1024,        /* reads while loading the file */
    KCI_SUGGESTION_SUBSCRIBE_TIMEOUT_MS = 5000,         /* the SUBs reach the server */
};

/* Error codes in Kc-Error (HTTP-like, as libkingcobra's own). */
enum {
    KCI_SUGGESTION_CODE_BAD_REQUEST = 400,
    KCI_SUGGESTION_CODE_NOT_OPERATOR = 403, /* a status change by someone else */
    KCI_SUGGESTION_CODE_NOT_FOUND = 404,
    KCI_SUGGESTION_CODE_REFUSED = 409, /* not allowed from its status (suggestion_state.h) */
    KCI_SUGGESTION_CODE_TOO_LARGE = 413,
    KCI_SUGGESTION_CODE_STORAGE = 500,     /* this write failed; the file is as before */
    KCI_SUGGESTION_CODE_UNAVAILABLE = 503, /* the file is unusable until a restart */
};

typedef struct kci_suggestions kci_suggestions;

typedef struct kci_suggestions_config {
    const char *file_path; /* created, with its directories, if missing */
    const char *node;      /* Kc-Node of the replies: one subject token */
    /* the users who may change a suggestion's status (suggestion_state.h);
     * none: nobody */
    char *const *operators;
    size_t operator_count;
} kci_suggestions_config;

/* Opens and locks the file, loads what it holds (a torn last line is
 * logged and cut off), and subscribes. connection is borrowed: it must stay
 * open until kci_suggestions_stop returns. */
kc_err kci_suggestions_start(kci_suggestions **out, natsConnection *connection,
                             const kci_suggestions_config *config, char *error, size_t error_size);
/* Drains both subscriptions (requests already delivered are answered) within
 * drain_ms, closes the file and frees. NULL is fine. */
void kci_suggestions_stop(kci_suggestions *keeper, int64_t drain_ms);

#endif
