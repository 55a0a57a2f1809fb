/* wire.c - parsing the reports and votes the arbiter reads (wire.h). JSON
 * through jansson (which refuses invalid UTF-8 and duplicate keys when
 * asked); every field checked before anything is copied. */
#include "wire.h"

#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "service/headers.h"
#include "service/uuid.h"

static bool name_valid(const char *name, size_t bytes_max)
{
    return name != NULL && name[0] != '\0' && strlen(name) <= bytes_max && kci_token_valid(name);
}

static json_t *load(const char *data, size_t length, size_t bytes_max)
{
    if (data == NULL || length == 0 || length > bytes_max) return NULL;
    json_t *root = json_loadb(data, length, JSON_REJECT_DUPLICATES, NULL);
    if (json_is_object(root)) return root;
    json_decref(root);
    return NULL;
}

static const char *check_request_id(json_t *request)
{
    if (request == NULL || json_is_null(request)) return NULL;
    kci_uuid uuid;
    if (!json_is_string(request) ||
        !kci_uuid_parse(json_string_value(request), json_string_length(request), &uuid))
        return "\"request_id\" is not a UUID";
    return NULL;
}

const char *kci_report_parse(kci_report *out, const char *subject_node, const char *header_node,
                             const char *data, size_t length)
{
    memset(out, 0, sizeof *out);
    if (length == 0 || length > KCI_REPORT_BYTES_MAX) return "empty or longer than 20 KiB";
    json_t *root = load(data, length, KCI_REPORT_BYTES_MAX);
    if (root == NULL) return "not a JSON object";
    const char *node = json_string_value(json_object_get(root, "node"));
    const char *reporter = header_node != NULL && header_node[0] != '\0'
                               ? header_node
                               : json_string_value(json_object_get(root, "reporter"));
    json_t *request = json_object_get(root, "request_id");
    const char *why = NULL;
    if (!name_valid(node, KC_NODE_BYTES_MAX))
        why = "no valid \"node\"";
    else if (subject_node == NULL || strcmp(node, subject_node) != 0)
        why = "\"node\" differs from the subject";
    else if ((out->reason = kc_problem_reason_from_name(
                  json_string_value(json_object_get(root, "reason")))) == 0)
        why = "unknown \"reason\"";
    else if (!name_valid(reporter, KC_NODE_BYTES_MAX))
        why = "no valid reporter";
    else
        why = check_request_id(request);
    if (why == NULL) {
        snprintf(out->node, sizeof out->node, "%s", node);
        snprintf(out->reporter, sizeof out->reporter, "%s", reporter);
        if (json_is_string(request))
            snprintf(out->request_id, sizeof out->request_id, "%s", json_string_value(request));
    }
    json_decref(root);
    return why;
}

const char *kci_vote_parse(kci_vote *out, const char *data, size_t length)
{
    memset(out, 0, sizeof *out);
    json_t *root = load(data, length, KCI_VOTE_BYTES_MAX);
    if (root == NULL) return "not a JSON object";
    const char *arbiter = json_string_value(json_object_get(root, "arbiter"));
    const char *node = json_string_value(json_object_get(root, "node"));
    const char *vote = json_string_value(json_object_get(root, "vote"));
    json_t *epoch = json_object_get(root, "epoch");
    out->kind = vote == NULL                      ? KCI_VOTE_NONE
                : strcmp(vote, "quarantine") == 0 ? KCI_VOTE_QUARANTINE
                : strcmp(vote, "clear") == 0      ? KCI_VOTE_CLEAR
                                                  : KCI_VOTE_NONE;
    const char *why = NULL;
    if (!name_valid(arbiter, KCI_ARBITER_ID_BYTES_MAX))
        why = "no valid \"arbiter\"";
    else if (!name_valid(node, KC_NODE_BYTES_MAX))
        why = "no valid \"node\"";
    else if (out->kind == KCI_VOTE_NONE)
        why = "\"vote\" is neither quarantine nor clear";
    else if (!json_is_integer(epoch) || json_integer_value(epoch) < 0 ||
             json_integer_value(epoch) > UINT32_MAX)
        why = "no valid \"epoch\"";
    if (why == NULL) {
        snprintf(out->arbiter, sizeof out->arbiter, "%s", arbiter);
        snprintf(out->node, sizeof out->node, "%s", node);
        out->epoch = (uint32_t)json_integer_value(epoch);
        json_t *ts = json_object_get(root, "ts_ms");
        out->ts_ms = json_is_integer(ts) && json_integer_value(ts) > 0 ? json_integer_value(ts) : 0;
    }
    json_decref(root);
    return why;
}
