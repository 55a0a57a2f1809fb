/* auth.h - who may connect, and what they may publish and subscribe.
 *
 * Authentication is by token, or by user and password (from the user list
 * or the single --user/--pass pair). A configured secret is either plain
 * text, compared in constant time, or a bcrypt hash ("$2a$", "$2b$", "$2x$",
 * "$2y$" and a two-digit cost, as nats-server recognises them), verified
 * with libxcrypt. bcrypt is slow on purpose, so kci_auth_decide only says a
 * hash must be verified; the broker runs kci_bcrypt_verify off its event
 * loop (verifier.h). Permissions follow nats-server: a subject is allowed when the allow
 * list is absent or empty or matches it, and no deny entry matches it. For a
 * wildcard subscription, an allow entry must cover the whole filter; a deny
 * entry that covers it refuses the subscription, and one that only overlaps
 * it is applied per message at delivery (kci_permissions_deliver_allowed). */
#ifndef KCI_AUTH_H
#define KCI_AUTH_H

#include <stdbool.h>
#include <stddef.h>

#include "options.h"

typedef struct kci_credentials {
    const char *auth_token;
    const char *user;
    const char *password;
} kci_credentials;

typedef enum kci_auth_verdict {
    KCI_AUTH_REFUSED = 0,
    KCI_AUTH_ACCEPTED = 1,
    KCI_AUTH_HASH_NEEDED = 2, /* accepted if kci_bcrypt_verify(secret, hash) */
} kci_auth_verdict;

typedef struct kci_auth_decision {
    kci_auth_verdict verdict;
    const kci_user *user; /* the matching user; NULL for a token or no auth */
    const char *hash;     /* HASH_NEEDED: the configured bcrypt hash */
    const char *secret;   /* HASH_NEEDED: what the client gave ("" if nothing) */
} kci_auth_decision;

bool kci_auth_required(const kci_options *options);
/* Compares secrets in time that does not depend on where they differ. */
bool kci_secret_equal(const char *given, const char *expected);
/* True if secret is a bcrypt hash by nats-server's rule: "$2", one of
 * a b x y, "$", two digits, "$". */
bool kci_secret_is_bcrypt(const char *secret);
/* True if password hashes to hash (compared in constant time). Takes the
 * hash's cost in time (2^cost rounds: 50-300 ms at cost 10-12): never call
 * it on the event loop. A malformed hash verifies nothing. */
bool kci_bcrypt_verify(const char *password, const char *hash);
/* Fast: everything but the bcrypt computation. Pointers in the decision
 * point into options and credentials. */
kci_auth_decision kci_auth_decide(const kci_options *options, const kci_credentials *credentials);
/* kci_auth_decide, then kci_bcrypt_verify inline when needed (slow: for
 * tests and tools, not the event loop). On success, *user is the matching
 * user (NULL for token or no auth). */
bool kci_auth_check(const kci_options *options, const kci_credentials *credentials,
                    const kci_user **user);
/* The permissions that apply to a user (its own, else the defaults), or NULL
 * when everything is allowed. */
const kci_permissions *kci_permissions_for(const kci_options *options, const kci_user *user);
bool kci_permissions_allow_publish(const kci_permissions *permissions, const char *subject,
                                   size_t subject_len);
bool kci_permissions_allow_subscribe(const kci_permissions *permissions, const char *filter,
                                     size_t filter_len);
bool kci_permissions_deliver_allowed(const kci_permissions *permissions, const char *subject,
                                     size_t subject_len);
/* True if every subject the filter matches is also matched by cover. */
bool kci_filter_covers(const char *cover, size_t cover_len, const char *filter, size_t filter_len);

#endif
