/* suggestion_state.c - the state machine and the book of suggestion states
 * (suggestion_state.h). */
#include "suggestion_state.h"

#include <string.h>

#include "service/headers.h"
#include "service/uuid.h"

static const char *const STATUS_NAMES[] = {
    [KCI_SUGGESTION_OPEN] = "open",
    [KCI_SUGGESTION_ACCEPTED] = "accepted",
    [KCI_SUGGESTION_REJECTED] = "rejected",
    [KCI_SUGGESTION_DONE] = "done",
};

static const char *const ACTION_NAMES[] = {
    [KCI_SUGGESTION_ACCEPT] = "accept",
    [KCI_SUGGESTION_REJECT] = "reject",
    [KCI_SUGGESTION_FINISH] = "done",
    [KCI_SUGGESTION_ASSIGN] = "assign",
};

enum {
    STATUS_COUNT = sizeof STATUS_NAMES / sizeof STATUS_NAMES[0],
    ACTION_COUNT = sizeof ACTION_NAMES / sizeof ACTION_NAMES[0],
};

const char *kci_suggestion_status_name(kci_suggestion_status status)
{
    return (unsigned)status < STATUS_COUNT ? STATUS_NAMES[status] : "?";
}

bool kci_suggestion_status_parse(const char *name, kci_suggestion_status *out)
{
    for (unsigned i = 0; name != NULL && i < STATUS_COUNT; i++)
        if (strcmp(name, STATUS_NAMES[i]) == 0) {
            *out = (kci_suggestion_status)i;
            return true;
        }
    return false;
}

const char *kci_suggestion_action_name(kci_suggestion_action action)
{
    return (unsigned)action < ACTION_COUNT ? ACTION_NAMES[action] : "?";
}

bool kci_suggestion_action_parse(const char *name, kci_suggestion_action *out)
{
    for (unsigned i = 0; name != NULL && i < ACTION_COUNT; i++)
        if (strcmp(name, ACTION_NAMES[i]) == 0) {
            *out = (kci_suggestion_action)i;
            return true;
        }
    return false;
}

bool kci_suggestion_transition(kci_suggestion_status status, kci_suggestion_action action,
                               kci_suggestion_status *next, const char **why)
{
    *why = NULL;
    if (status == KCI_SUGGESTION_REJECTED || status == KCI_SUGGESTION_DONE)
        *why = status == KCI_SUGGESTION_DONE ? "it is done: nothing changes it any more"
                                             : "it was rejected: nothing changes it any more";
    else if (action == KCI_SUGGESTION_ACCEPT && status != KCI_SUGGESTION_OPEN)
        *why = "it is accepted already";
    else if (action == KCI_SUGGESTION_FINISH && status != KCI_SUGGESTION_ACCEPTED)
        *why = "only an accepted suggestion can be done: accept it first";
    if (*why != NULL) return false;
    switch (action) {
    case KCI_SUGGESTION_ACCEPT: *next = KCI_SUGGESTION_ACCEPTED; break;
    case KCI_SUGGESTION_REJECT: *next = KCI_SUGGESTION_REJECTED; break;
    case KCI_SUGGESTION_FINISH: *next = KCI_SUGGESTION_DONE; break;
    case KCI_SUGGESTION_ASSIGN: *next = status; break;
    default: *why = "unknown action"; return false;
    }
    return true;
}

/* ---- change lines -------------------------------------------------------------- */

static bool user_valid(const char *name)
{
    return name != NULL && name[0] != '\0' && strlen(name) <= KCI_SUGGESTION_USER_BYTES_MAX &&
           kci_token_valid(name);
}

bool kci_suggestion_change_parse(const char *line, size_t length, json_t **root,
                                 kci_suggestion_change *change)
{
    *root = json_loadb(line, length, JSON_REJECT_DUPLICATES, NULL);
    memset(change, 0, sizeof *change);
    change->id = json_string_value(json_object_get(*root, "change"));
    change->by = json_string_value(json_object_get(*root, "by"));
    change->ts = json_string_value(json_object_get(*root, "ts"));
    change->assignee = json_string_value(json_object_get(*root, "assignee"));
    change->note = json_string_value(json_object_get(*root, "note"));
    kci_uuid uuid;
    bool ok =
        change->id != NULL && kci_uuid_parse(change->id, strlen(change->id), &uuid) &&
        user_valid(change->by) && change->ts != NULL &&
        kci_suggestion_action_parse(json_string_value(json_object_get(*root, "action")),
                                    &change->action) &&
        (change->action == KCI_SUGGESTION_ASSIGN ? user_valid(change->assignee)
                                                 : json_object_get(*root, "assignee") == NULL) &&
        (change->note == NULL ? json_object_get(*root, "note") == NULL
                              : strlen(change->note) <= KCI_SUGGESTION_NOTE_BYTES_MAX);
    return ok;
}

static json_t *change_object(const kci_suggestion_change *change, bool with_id)
{
    /* the id first: a line of the file reads {"change":id,...} */
    json_t *object = with_id ? json_pack("{s:s}", "change", change->id) : json_object();
    if (object == NULL) return NULL;
    bool ok =
        json_object_set_new(object, "action",
                            json_string(kci_suggestion_action_name(change->action))) == 0 &&
        json_object_set_new(object, "by", json_string(change->by)) == 0 &&
        json_object_set_new(object, "ts", json_string(change->ts != NULL ? change->ts : "")) == 0;
    if (change->assignee != NULL)
        ok &= json_object_set_new(object, "assignee", json_string(change->assignee)) == 0;
    if (change->note != NULL)
        ok &= json_object_set_new(object, "note", json_string(change->note)) == 0;
    if (!ok) {
        json_decref(object);
        return NULL;
    }
    return object;
}

char *kci_suggestion_change_format(const kci_suggestion_change *change)
{
    json_t *object = change_object(change, true);
    char *text = object != NULL ? json_dumps(object, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    json_decref(object);
    return text;
}

/* ---- the book -------------------------------------------------------------------- */

json_t *kci_suggestion_book_new(void)
{
    return json_object();
}

kc_err kci_suggestion_book_add(json_t *book, const char *id)
{
    json_t *state = json_pack("{s:s,s:n,s:[]}", "status", "open", "assignee", "history");
    if (state == NULL || json_object_set_new(book, id, state) != 0) return KC_ERR_NOMEM;
    return KC_OK;
}

kc_err kci_suggestion_book_check(json_t *book, const kci_suggestion_change *change,
                                 const char **why)
{
    *why = NULL;
    json_t *state = json_object_get(book, change->id);
    if (state == NULL) {
        *why = "no such suggestion";
        return KC_ERR_NOT_FOUND;
    }
    kci_suggestion_status status = KCI_SUGGESTION_OPEN, next;
    kci_suggestion_status_parse(json_string_value(json_object_get(state, "status")), &status);
    if (!kci_suggestion_transition(status, change->action, &next, why)) return KC_ERR_EXISTS;
    if (json_array_size(json_object_get(state, "history")) >= KCI_SUGGESTION_HISTORY_MAX) {
        *why = "its history is full";
        return KC_ERR_LIMIT;
    }
    return KC_OK;
}

kc_err kci_suggestion_book_apply(json_t *book, const kci_suggestion_change *change)
{
    const char *why = NULL;
    kc_err err = kci_suggestion_book_check(book, change, &why);
    if (err != KC_OK) return err;
    json_t *state = json_object_get(book, change->id);
    kci_suggestion_status status = KCI_SUGGESTION_OPEN, next = KCI_SUGGESTION_OPEN;
    kci_suggestion_status_parse(json_string_value(json_object_get(state, "status")), &status);
    kci_suggestion_transition(status, change->action, &next, &why);
    json_t *entry = change_object(change, false);
    if (entry == NULL || json_array_append_new(json_object_get(state, "history"), entry) != 0)
        return KC_ERR_NOMEM;
    json_object_set_new(state, "status", json_string(kci_suggestion_status_name(next)));
    if (change->action == KCI_SUGGESTION_ASSIGN)
        json_object_set_new(state, "assignee", json_string(change->assignee));
    return KC_OK;
}
