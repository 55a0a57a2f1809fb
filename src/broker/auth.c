/* auth.c - authentication and permission checks (see auth.h).
 *
 * bcrypt comes from libxcrypt's crypt_rn (the system's password hashing
 * library, which verifies every bcrypt variant nats-server accepts) rather
 * than a copy of Blowfish here. crypt_rn writes into a caller-owned
 * crypt_data, so verifications on several threads share nothing.
 *
 * Permission lists are short in practice (a handful of entries per user),
 * so they are scanned linearly; the publish check runs once per PUB only for
 * users that have permissions at all. */
#include "auth.h"

#include <crypt.h>
#include <stdlib.h>
#include <string.h>

#include "subject.h"

bool kci_auth_required(const kci_options *options)
{
    return options->auth_token != NULL || options->user_count > 0;
}

/* Compares without an early exit, so timing does not tell how much of a
 * secret was right. Lengths are not secret. */
bool kci_secret_equal(const char *given, const char *expected)
{
    if (given == NULL || expected == NULL) return false;
    size_t given_len = strlen(given);
    size_t expected_len = strlen(expected);
    if (given_len != expected_len) return false;
    unsigned char difference = 0;
    for (size_t i = 0; i < given_len; i++)
        difference |= (unsigned char)(given[i] ^ expected[i]);
    return difference == 0;
}

bool kci_secret_is_bcrypt(const char *secret)
{
    if (secret == NULL || strncmp(secret, "$2", 2) != 0) return false;
    char variant = secret[2];
    if (variant != 'a' && variant != 'b' && variant != 'x' && variant != 'y') return false;
    return secret[3] == '$' && secret[4] >= '0' && secret[4] <= '9' && secret[5] >= '0' &&
           secret[5] <= '9' && secret[6] == '$';
}

bool kci_bcrypt_verify(const char *password, const char *hash)
{
    if (password == NULL || !kci_secret_is_bcrypt(hash)) return false;
    /* 32 KiB of state: on the heap, since worker threads may have small stacks. */
    struct crypt_data *data = calloc(1, sizeof *data);
    if (data == NULL) return false;
    const char *computed = crypt_rn(password, hash, data, (int)sizeof *data);
    /* crypt_rn returns NULL (or a string starting with '*') for a hash it
     * cannot use: a bad cost or salt. That verifies nothing. */
    bool equal = computed != NULL && computed[0] != '*' && kci_secret_equal(computed, hash);
    explicit_bzero(data, sizeof *data); /* it held key material */
    free(data);
    return equal;
}

/* A configured secret against the one given: plain text now, a hash later. */
static kci_auth_decision decide_secret(const kci_user *user, const char *given,
                                       const char *configured)
{
    kci_auth_decision decision = {.user = user};
    if (kci_secret_is_bcrypt(configured)) {
        decision.verdict = KCI_AUTH_HASH_NEEDED;
        decision.hash = configured;
        decision.secret = given != NULL ? given : ""; /* as nats-server: none is empty */
        return decision;
    }
    decision.verdict = kci_secret_equal(given, configured) ? KCI_AUTH_ACCEPTED : KCI_AUTH_REFUSED;
    if (decision.verdict == KCI_AUTH_REFUSED) decision.user = NULL;
    return decision;
}

kci_auth_decision kci_auth_decide(const kci_options *options, const kci_credentials *credentials)
{
    kci_auth_decision refused = {.verdict = KCI_AUTH_REFUSED};
    if (options->auth_token != NULL)
        return decide_secret(NULL, credentials->auth_token, options->auth_token);
    if (options->user_count == 0) return (kci_auth_decision){.verdict = KCI_AUTH_ACCEPTED};
    if (credentials->user == NULL) return refused;
    for (size_t i = 0; i < options->user_count; i++) {
        const kci_user *candidate = &options->users[i];
        if (strcmp(candidate->user, credentials->user) == 0)
            return decide_secret(candidate, credentials->password, candidate->password);
    }
    return refused;
}

bool kci_auth_check(const kci_options *options, const kci_credentials *credentials,
                    const kci_user **user)
{
    kci_auth_decision decision = kci_auth_decide(options, credentials);
    bool accepted = decision.verdict == KCI_AUTH_ACCEPTED ||
                    (decision.verdict == KCI_AUTH_HASH_NEEDED &&
                     kci_bcrypt_verify(decision.secret, decision.hash));
    *user = accepted ? decision.user : NULL;
    return accepted;
}

static bool list_present(const kci_permission_list *list)
{
    return list->present && (list->allow_count > 0 || list->deny_count > 0);
}

const kci_permissions *kci_permissions_for(const kci_options *options, const kci_user *user)
{
    if (user != NULL &&
        (list_present(&user->permissions.publish) || list_present(&user->permissions.subscribe)))
        return &user->permissions;
    const kci_permissions *defaults = &options->default_permissions;
    if (list_present(&defaults->publish) || list_present(&defaults->subscribe)) return defaults;
    return NULL;
}

static bool any_matches(char *const *filters, size_t count, const char *subject, size_t len)
{
    for (size_t i = 0; i < count; i++)
        if (kci_subject_matches(filters[i], strlen(filters[i]), subject, len)) return true;
    return false;
}

static bool any_covers(char *const *filters, size_t count, const char *filter, size_t len)
{
    for (size_t i = 0; i < count; i++)
        if (kci_filter_covers(filters[i], strlen(filters[i]), filter, len)) return true;
    return false;
}

bool kci_permissions_allow_publish(const kci_permissions *permissions, const char *subject,
                                   size_t subject_len)
{
    if (permissions == NULL || !list_present(&permissions->publish)) return true;
    const kci_permission_list *list = &permissions->publish;
    if (list->allow_count > 0 && !any_matches(list->allow, list->allow_count, subject, subject_len))
        return false;
    return !any_matches(list->deny, list->deny_count, subject, subject_len);
}

bool kci_permissions_allow_subscribe(const kci_permissions *permissions, const char *filter,
                                     size_t filter_len)
{
    if (permissions == NULL || !list_present(&permissions->subscribe)) return true;
    const kci_permission_list *list = &permissions->subscribe;
    if (list->allow_count > 0 && !any_covers(list->allow, list->allow_count, filter, filter_len))
        return false;
    return !any_covers(list->deny, list->deny_count, filter, filter_len);
}

bool kci_permissions_deliver_allowed(const kci_permissions *permissions, const char *subject,
                                     size_t subject_len)
{
    if (permissions == NULL || permissions->subscribe.deny_count == 0) return true;
    const kci_permission_list *list = &permissions->subscribe;
    return !any_matches(list->deny, list->deny_count, subject, subject_len);
}

/* Token-wise: '>' in cover takes the rest; '*' in cover takes any one token
 * of the filter except '>'; a literal in cover must equal the token. */
bool kci_filter_covers(const char *cover, size_t cover_len, const char *filter, size_t filter_len)
{
    size_t ci = 0;
    size_t fi = 0;
    while (ci < cover_len && fi < filter_len) {
        size_t ce = ci;
        while (ce < cover_len && cover[ce] != '.')
            ce++;
        size_t fe = fi;
        while (fe < filter_len && filter[fe] != '.')
            fe++;
        bool cover_full = ce - ci == 1 && cover[ci] == '>';
        bool cover_one = ce - ci == 1 && cover[ci] == '*';
        bool filter_full = fe - fi == 1 && filter[fi] == '>';
        if (cover_full) return true;
        if (filter_full) return false;
        if (!cover_one && (ce - ci != fe - fi || memcmp(cover + ci, filter + fi, ce - ci) != 0))
            return false;
        ci = ce + 1;
        fi = fe + 1;
    }
    return ci >= cover_len && fi >= filter_len;
}
