/* kcobra_suggestions.c - handling a kept suggestion (docs/kcobra.md,
 * "suggestions"; the keeper's side is src/keeper/suggestion_state.h):
 *
 *   kcobra suggestions show <id>              its status, assignee, history (kc.suggest.show)
 *   kcobra suggestions accept|reject|done <id> [--note T]
 *   kcobra suggestions assign <id> <user> [--note T]
 *
 * A change is a request on kc.suggest.change.<user>, <user> being this
 * client's login (--user or KCOBRA_USER): kcobrad lets only that user
 * publish there, and the keeper accepts changes only from its operators,
 * so the history says who did what. A refusal (not an operator: 403, not
 * allowed from its status: 409, unknown: 404) exits 5; a publish the
 * broker refuses (someone else's subject) is a permissions violation. */
#include "kcobra_suggestions.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SHOW_SUBJECT "kc.suggest.show"
#define CHANGE_PREFIX "kc.suggest.change."
#define KC_ERROR_HEADER "Kc-Error"

enum { SUBJECT_BYTES_MAX = 256 };

static void print_state(json_t *answer)
{
    const char *assignee = json_string_value(json_object_get(answer, "assignee"));
    const char *text = json_string_value(json_object_get(answer, "text"));
    printf("%s  %s%s%s\n", json_string_value(json_object_get(answer, "id")),
           json_string_value(json_object_get(answer, "status")),
           assignee != NULL ? ", assigned to " : "", assignee != NULL ? assignee : "");
    if (text != NULL) printf("  %s\n", text);
    size_t index;
    json_t *entry;
    json_array_foreach(json_object_get(answer, "history"), index, entry)
    {
        const char *to = json_string_value(json_object_get(entry, "assignee"));
        const char *note = json_string_value(json_object_get(entry, "note"));
        char when[KCOBRA_SUGGESTION_TIME_BYTES];
        kcobra_suggestion_time(json_object_get(entry, "ts"), when);
        printf("  %s  %-6s by %s%s%s%s%s\n", when,
               json_string_value(json_object_get(entry, "action")),
               json_string_value(json_object_get(entry, "by")), to != NULL ? " to " : "",
               to != NULL ? to : "", note != NULL ? ": " : "", note != NULL ? note : "");
    }
}

static int answer_print(natsMsg *reply, bool json)
{
    const char *error_text = NULL;
    if (natsMsgHeader_Get(reply, KC_ERROR_HEADER, &error_text) == NATS_OK && error_text != NULL) {
        kcobra_error("keeper refused: %s", error_text);
        return KCOBRA_EXIT_SERVICE_ERROR;
    }
    json_t *answer =
        json_loadb(natsMsg_GetData(reply), (size_t)natsMsg_GetDataLength(reply), 0, NULL);
    if (!json_is_object(answer)) {
        json_decref(answer);
        kcobra_error("the keeper's answer is not a JSON object");
        return KCOBRA_EXIT_FAILURE;
    }
    if (json) return kcobra_json_print(answer);
    print_state(answer);
    json_decref(answer);
    return fflush(stdout) == 0 ? KCOBRA_EXIT_OK : KCOBRA_EXIT_FAILURE;
}

static int ask(const kcobra_invocation *invocation, const char *subject, json_t *request)
{
    char *body = request != NULL ? json_dumps(request, JSON_COMPACT) : NULL;
    json_decref(request);
    if (body == NULL) {
        kcobra_error("out of memory");
        return KCOBRA_EXIT_FAILURE;
    }
    natsConnection *connection = NULL;
    int status = kcobra_nats_connect(&connection, &invocation->common);
    natsMsg *reply = NULL;
    if (status == KCOBRA_EXIT_OK)
        status = kcobra_call(&reply, connection, &invocation->common, subject, body,
                             "suggestion keeper", "it runs in kcobrad", NULL);
    if (status == KCOBRA_EXIT_OK) status = answer_print(reply, invocation->common.json);
    natsMsg_Destroy(reply);
    if (connection != NULL) kcobra_nats_finish(connection);
    free(body);
    return status;
}

int kcobra_suggestions_handle(const kcobra_command *command, const kcobra_invocation *invocation,
                              const char *note)
{
    const char *what = invocation->positional[0];
    bool assign = strcmp(what, "assign") == 0;
    int wanted = assign ? 3 : 2;
    if (invocation->positional_count != wanted)
        return kcobra_usage_error(command, "%s takes %s", what,
                                  assign ? "a suggestion id and a user" : "a suggestion id");
    const char *id = invocation->positional[1];
    if (strcmp(what, "show") == 0) {
        if (note != NULL) return kcobra_usage_error(command, "--note goes with a change");
        return ask(invocation, SHOW_SUBJECT, json_pack("{s:s}", "id", id));
    }
    const char *user = invocation->common.user;
    if (user == NULL || !kcobra_token_valid(user, KC_NODE_BYTES_MAX))
        return kcobra_usage_error(command, "%s needs --user (an operator's login, one token)",
                                  what);
    if (assign && !kcobra_token_valid(invocation->positional[2], KC_NODE_BYTES_MAX))
        return kcobra_usage_error(command, "the assignee is one subject token");
    json_t *request = json_pack("{s:s,s:s}", "id", id, "action", what);
    if (request != NULL && assign)
        json_object_set_new(request, "assignee", json_string(invocation->positional[2]));
    if (request != NULL && note != NULL) json_object_set_new(request, "note", json_string(note));
    char subject[SUBJECT_BYTES_MAX];
    snprintf(subject, sizeof subject, "%s%s", CHANGE_PREFIX, user);
    return ask(invocation, subject, request);
}
