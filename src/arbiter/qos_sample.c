/* qos_sample.c - checking a QoS sample signed by its reporter
 * (qos_sample.h). Pure: the arbiter (arbiter.c, on_qos) holds the keys and
 * each reporter's last sample and feeds what passes to its QoS model. */
#include "qos_sample.h"

#include <jansson.h>
#include <string.h>

static const uint8_t *key_of(const kci_vote_key *keys, uint32_t key_count, const char *reporter)
{
    for (uint32_t i = 0; i < key_count; i++)
        if (strcmp(keys[i].arbiter, reporter) == 0) return keys[i].key;
    return NULL;
}

static bool text_is(json_t *root, const char *field, const char *expected)
{
    const char *text = json_string_value(json_object_get(root, field));
    return text != NULL && strcmp(text, expected) == 0;
}

/* The body's fields into out: false unless it is a well-formed sample about
 * node by reporter. */
static bool parse(kci_qos_signed *out, json_t *root, const char *reporter, const char *node)
{
    json_t *latency = json_object_get(root, "latency_ms");
    json_t *ts = json_object_get(root, "ts_ms");
    json_t *code = json_object_get(root, "error_code");
    const char *id = json_string_value(json_object_get(root, "request_id"));
    const char *type = json_string_value(json_object_get(root, "type"));
    if (!text_is(root, "node", node) || !text_is(root, "reporter", reporter) ||
        !json_is_number(latency) || json_number_value(latency) < 0 || !json_is_integer(ts) ||
        !json_is_boolean(json_object_get(root, "ok")) || (code != NULL && !json_is_integer(code)) ||
        id == NULL || strlen(id) > KC_UUID_TEXT_BYTES || type == NULL ||
        strlen(type) > KCI_QOS_SAMPLE_TYPE_BYTES_MAX)
        return false;
    memset(out, 0, sizeof *out);
    out->latency_ms = json_number_value(latency);
    out->ok = json_is_true(json_object_get(root, "ok"));
    json_int_t error_code = code != NULL ? json_integer_value(code) : 0;
    out->error_code = error_code >= 0 && error_code < 100000 ? (int)error_code : 0;
    out->deadline_missed = json_is_true(json_object_get(root, "deadline_missed"));
    out->ts_ms = (int64_t)json_integer_value(ts);
    strcpy(out->request_id, id);
    strcpy(out->type, type);
    return true;
}

kci_qos_sample_status kci_qos_sample_check(kci_qos_signed *out, kci_qos_last *last,
                                           const kci_vote_key *keys, uint32_t key_count,
                                           const char *reporter, const char *node,
                                           const char *signature, const void *body, size_t length,
                                           int64_t now_wall_ms)
{
    const uint8_t *key = key_of(keys, key_count, reporter);
    if (key == NULL) return KCI_QOS_SAMPLE_UNKNOWN_KEY;
    if (!kci_vote_verify(key, signature, body, length)) return KCI_QOS_SAMPLE_BAD_SIGNATURE;
    json_t *root = json_loadb(body, length, 0, NULL);
    kci_qos_signed sample;
    bool parsed = root != NULL && parse(&sample, root, reporter, node);
    json_decref(root);
    if (!parsed) return KCI_QOS_SAMPLE_MALFORMED;
    bool newer = sample.ts_ms > last->ts_ms ||
                 (sample.ts_ms == last->ts_ms && strcmp(sample.request_id, last->request_id) != 0);
    if (!kci_vote_fresh(sample.ts_ms, now_wall_ms) || !newer) return KCI_QOS_SAMPLE_REPLAY;
    last->ts_ms = sample.ts_ms;
    strcpy(last->request_id, sample.request_id);
    *out = sample;
    return KCI_QOS_SAMPLE_OK;
}

const char *kci_qos_sample_status_name(kci_qos_sample_status status)
{
    static const char *const NAMES[KCI_QOS_SAMPLE_STATUSES] = {"ok", "unknown_key", "bad_signature",
                                                               "malformed", "replay"};
    return status < KCI_QOS_SAMPLE_STATUSES ? NAMES[status] : "?";
}
