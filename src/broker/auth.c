/* auth.c - authentication and permission checks (see auth.h).
 *
 * Permission lists are short in practice (a handful of entries per user),
 * so they are scanned linearly; the publish check runs once per PUB only for
 * users that have permissions at all. */
#include "auth.h"

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

bool kci_auth_check(const kci_options *options, const kci_credentials *credentials,
                    const kci_user **user)
{
    *user = NULL;
    if (options->auth_token != NULL)
        return kci_secret_equal(credentials->auth_token, options->auth_token);
    if (options->user_count == 0) return true;
    if (credentials->user == NULL) return false;
    for (size_t i = 0; i < options->user_count; i++) {
        const kci_user *candidate = &options->users[i];
        if (strcmp(candidate->user, credentials->user) != 0) continue;
        if (!kci_secret_equal(credentials->password, candidate->password)) return false;
        *user = candidate;
        return true;
    }
    return false;
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
