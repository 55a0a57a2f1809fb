/* suggestion_state.h - what became of a kept suggestion (docs/ingress.md,
 * "Suggestion keeper"): its status, its assignee and the history of the
 * changes, and which changes are allowed.
 *
 *            accept             done
 *   open ------------> accepted ------> done
 *     |                   |
 *     | reject            | reject
 *     +------> rejected <-+
 *
 * assign (a user to work on it) is allowed while open or accepted and
 * keeps the status; rejected and done are final. A change to the status it
 * already has is refused (a retried request after a lost reply says
 * "already accepted" rather than adding a second entry to the history).
 *
 * The book maps each suggestion's id to its state, as JSON
 * {"status","assignee"(or null),"history":[{"ts","action","by","assignee"?,"note"?}]},
 * so the keeper's answers are built from it directly. Pure: no I/O, no
 * locks (the keeper holds its own). */
#ifndef KCI_SUGGESTION_STATE_H
#define KCI_SUGGESTION_STATE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "kingcobra/err.h"

enum {
    KCI_SUGGESTION_HISTORY_MAX = 64, /* changes kept per suggestion */
    KCI_SUGGESTION_NOTE_BYTES_MAX = 1024,
    KCI_SUGGESTION_USER_BYTES_MAX = 128, /* an operator or assignee: one subject token */
};

typedef enum kci_suggestion_status {
    KCI_SUGGESTION_OPEN,
    KCI_SUGGESTION_ACCEPTED,
    KCI_SUGGESTION_REJECTED,
    KCI_SUGGESTION_DONE,
} kci_suggestion_status;

typedef enum kci_suggestion_action {
    KCI_SUGGESTION_ACCEPT,
    KCI_SUGGESTION_REJECT,
    KCI_SUGGESTION_FINISH, /* "done" */
    KCI_SUGGESTION_ASSIGN,
} kci_suggestion_action;

const char *kci_suggestion_status_name(kci_suggestion_status status);
bool kci_suggestion_status_parse(const char *name, kci_suggestion_status *out);
const char *kci_suggestion_action_name(kci_suggestion_action action);
bool kci_suggestion_action_parse(const char *name, kci_suggestion_action *out);

/* The status after action, or false with why (a constant text) when the
 * action is not allowed from status. */
bool kci_suggestion_transition(kci_suggestion_status status, kci_suggestion_action action,
                               kci_suggestion_status *next, const char **why);

/* A change as stored and as requested. */
typedef struct kci_suggestion_change {
    const char *id;
    kci_suggestion_action action;
    const char *by;       /* the operator */
    const char *ts;       /* when the keeper received it (HLC text) */
    const char *assignee; /* assign: the user; else NULL */
    const char *note;     /* NULL: none */
} kci_suggestion_change;

/* Parses a change line of the file ({"change":id,"action","by","ts",...});
 * false if it is not one. The strings point into *root (the caller's to
 * free with json_decref). */
bool kci_suggestion_change_parse(const char *line, size_t length, json_t **root,
                                 kci_suggestion_change *change);
/* The change's line (compact JSON without LF, malloc'd), or NULL. */
char *kci_suggestion_change_format(const kci_suggestion_change *change);

/* The book: id -> state. */
json_t *kci_suggestion_book_new(void);
/* A new suggestion, open and unassigned. */
kc_err kci_suggestion_book_add(json_t *book, const char *id);
/* Checks change against the book: KC_ERR_NOT_FOUND (unknown id),
 * KC_ERR_EXISTS (not allowed from its status; *why says why) or
 * KC_ERR_LIMIT (its history is full). */
kc_err kci_suggestion_book_check(json_t *book, const kci_suggestion_change *change,
                                 const char **why);
/* Applies a checked change. */
kc_err kci_suggestion_book_apply(json_t *book, const kci_suggestion_change *change);

#endif
