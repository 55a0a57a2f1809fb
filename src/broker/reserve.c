/* reserve.c - a publish subject reserved to some users (reserve.h).
 *
 * Permissions are looked up per login (auth.c, kci_permissions_for): a
 * user's own when it has any, else the defaults. So the reservation adds a
 * deny entry to every non-reserved user's own permissions and to the
 * defaults; a reserved user who used the defaults first gets a copy of
 * them as its own (before the deny is added), or, with no defaults, an
 * allow-all of its own, so the deny in the defaults does not reach it. */
#include "reserve.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

static bool list_present(const kci_permission_list *list)
{
    return list->present && (list->allow_count > 0 || list->deny_count > 0);
}

static kc_err strings_append(char ***strings, size_t *count, const char *text)
{
    char *copy = strdup(text);
    char **grown = copy != NULL ? realloc(*strings, (*count + 1) * sizeof *grown) : NULL;
    if (grown == NULL) {
        free(copy);
        return KC_ERR_NOMEM;
    }
    grown[(*count)++] = copy;
    *strings = grown;
    return KC_OK;
}

static kc_err list_copy(kci_permission_list *to, const kci_permission_list *from)
{
    to->present = from->present;
    kc_err err = KC_OK;
    for (size_t i = 0; err == KC_OK && i < from->allow_count; i++)
        err = strings_append(&to->allow, &to->allow_count, from->allow[i]);
    for (size_t i = 0; err == KC_OK && i < from->deny_count; i++)
        err = strings_append(&to->deny, &to->deny_count, from->deny[i]);
    return err;
}

static kc_err deny_publish(kci_permissions *permissions, const char *subject)
{
    permissions->publish.present = true;
    return strings_append(&permissions->publish.deny, &permissions->publish.deny_count, subject);
}

static bool named(const char *user, char *const *users, size_t user_count)
{
    for (size_t i = 0; i < user_count; i++)
        if (strcmp(users[i], user) == 0) return true;
    return false;
}

/* A reserved user keeps what it had: its own, else the defaults as its own. */
static kc_err keep_reserved(kci_user *user, const kci_permissions *defaults)
{
    if (list_present(&user->permissions.publish) || list_present(&user->permissions.subscribe))
        return KC_OK;
    if (list_present(&defaults->publish) || list_present(&defaults->subscribe)) {
        kc_err err = list_copy(&user->permissions.publish, &defaults->publish);
        return err == KC_OK ? list_copy(&user->permissions.subscribe, &defaults->subscribe) : err;
    }
    user->permissions.publish.present = true;
    return strings_append(&user->permissions.publish.allow, &user->permissions.publish.allow_count,
                          ">");
}

kc_err kci_options_reserve_publish(kci_options *options, const char *subject, char *const *users,
                                   size_t user_count)
{
    kc_err err = KC_OK;
    for (size_t i = 0; err == KC_OK && i < options->user_count; i++) {
        kci_user *user = &options->users[i];
        if (named(user->user, users, user_count))
            err = keep_reserved(user, &options->default_permissions);
        else if (list_present(&user->permissions.publish) ||
                 list_present(&user->permissions.subscribe))
            err = deny_publish(&user->permissions, subject);
    }
    if (err == KC_OK) err = deny_publish(&options->default_permissions, subject);
    return err;
}
