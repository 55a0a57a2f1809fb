/* auth.h - who may connect, and what they may publish and subscribe.
 *
 * Authentication is by token, or by user and password (from the user list
 * or the single --user/--pass pair). Passwords are compared in constant
 * time. Permissions follow nats-server: a subject is allowed when the allow
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

bool kci_auth_required(const kci_options *options);
/* Compares secrets in time that does not depend on where they differ. */
bool kci_secret_equal(const char *given, const char *expected);
/* On success, *user is the matching user (NULL for token or no auth). */
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
