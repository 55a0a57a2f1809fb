/* micro.c - the NATS services protocol: endpoint stats, the
 * io.nats.micro.v1 JSON (jansson) and the $SRV responder (micro.h).
 *
 * The responder builds each answer when asked, from the copied description
 * and the live counters: a $SRV request is rare (a tool's discovery), so
 * nothing is cached, and a stats answer is as fresh as the counters. */
#include "micro.h"

#include <assert.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/clock.h"
#include "common/log.h"
#include "service/last_error.h"
#include "service/reply_subject.h"
#include "service/subscriptions.h"
#include "service/uuid.h"

enum {
    VERBS_COUNT = 3,
    FORMS_COUNT = 3, /* plain, .<name>, .<name>.<id> */
    SUBJECT_BYTES_MAX = 8 + KCI_MICRO_NAME_BYTES_MAX + KCI_MICRO_ID_BYTES + 8,
    SUBSCRIBE_FLUSH_TIMEOUT_MS = 5000,
    DRAIN_MARGIN_MS = 1000,
    TIME_TEXT_BYTES = 32,
    PRICE_TEXT_BYTES = 24,
};

_Static_assert(VERBS_COUNT *FORMS_COUNT <= KCI_SUBSCRIPTIONS_MAX, "one set holds them all");

/* ---- stats -------------------------------------------------------------------- */

static _Thread_local kci_micro_stats *current_stats;

void kci_micro_stats_init(kci_micro_stats *stats)
{
    atomic_init(&stats->request_count, 0);
    atomic_init(&stats->error_count, 0);
    atomic_init(&stats->processing_ns, 0);
    pthread_mutex_init(&stats->lock, NULL);
    stats->last_error[0] = '\0';
}

void kci_micro_stats_destroy(kci_micro_stats *stats)
{
    pthread_mutex_destroy(&stats->lock);
}

void kci_micro_stats_request(kci_micro_stats *stats, int64_t processing_ns)
{
    atomic_fetch_add_explicit(&stats->request_count, 1, memory_order_relaxed);
    if (processing_ns > 0)
        atomic_fetch_add_explicit(&stats->processing_ns, (uint64_t)processing_ns,
                                  memory_order_relaxed);
}

void kci_micro_stats_error(kci_micro_stats *stats, int code, const char *message)
{
    atomic_fetch_add_explicit(&stats->error_count, 1, memory_order_relaxed);
    pthread_mutex_lock(&stats->lock);
    snprintf(stats->last_error, sizeof stats->last_error, "%d:%s", code,
             message != NULL ? message : "");
    pthread_mutex_unlock(&stats->lock);
}

void kci_micro_stats_read(kci_micro_stats *stats, kci_micro_stats_snapshot *out)
{
    out->request_count = atomic_load_explicit(&stats->request_count, memory_order_relaxed);
    out->error_count = atomic_load_explicit(&stats->error_count, memory_order_relaxed);
    out->processing_ns = atomic_load_explicit(&stats->processing_ns, memory_order_relaxed);
    pthread_mutex_lock(&stats->lock);
    memcpy(out->last_error, stats->last_error, sizeof out->last_error);
    pthread_mutex_unlock(&stats->lock);
}

kci_micro_stats *kci_micro_current(void)
{
    return current_stats;
}

void kci_micro_current_set(kci_micro_stats *stats)
{
    current_stats = stats;
}

int64_t kci_micro_now_ns(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (int64_t)now.tv_sec * 1000000000 + now.tv_nsec;
}

/* ---- names -------------------------------------------------------------------- */

static bool name_byte(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '-';
}

bool kci_micro_name_valid(const char *name)
{
    if (name == NULL || name[0] == '\0') return false;
    size_t length = strnlen(name, KCI_MICRO_NAME_BYTES_MAX + 1);
    if (length > KCI_MICRO_NAME_BYTES_MAX) return false;
    for (size_t index = 0; index < length; index++)
        if (!name_byte(name[index])) return false;
    return true;
}

void kci_micro_name_from(char *out, size_t out_size, const char *name)
{
    assert(out != NULL && out_size > 1);
    if (name == NULL || name[0] == '\0') name = "service";
    size_t index = 0;
    for (; name[index] != '\0' && index + 1 < out_size; index++)
        out[index] = name_byte(name[index]) ? name[index] : '_';
    out[index] = '\0';
}

/* A number without leading zeros (semver's numeric identifier); *text moves
 * past it. */
static bool semver_number(const char **text)
{
    const char *start = *text;
    while (**text >= '0' && **text <= '9')
        (*text)++;
    size_t digits = (size_t)(*text - start);
    return digits > 0 && !(digits > 1 && start[0] == '0');
}

/* Dot-separated identifiers of [0-9A-Za-z-] (pre-release or build). */
static bool semver_identifiers(const char *text)
{
    bool empty = true;
    for (; *text != '\0'; text++) {
        if (*text == '.') {
            if (empty) return false;
            empty = true;
        } else if (name_byte(*text) && *text != '_') {
            empty = false;
        } else {
            return false;
        }
    }
    return !empty;
}

bool kci_micro_version_valid(const char *version)
{
    if (version == NULL || strnlen(version, KCI_MICRO_TEXT_BYTES_MAX) >= KCI_MICRO_TEXT_BYTES_MAX)
        return false;
    const char *at = version;
    for (int part = 0; part < 3; part++) {
        if (!semver_number(&at)) return false;
        if (part < 2 && *at++ != '.') return false;
    }
    if (*at == '\0') return true;
    char rest[KCI_MICRO_TEXT_BYTES_MAX];
    snprintf(rest, sizeof rest, "%s", at + 1);
    char *build = strchr(rest, '+');
    if (build != NULL) *build++ = '\0';
    if (*at == '-') return semver_identifiers(rest) && (build == NULL || semver_identifiers(build));
    return *at == '+' && semver_identifiers(at + 1);
}

/* ---- the JSON ------------------------------------------------------------------ */

/* "2026-12-08T01:02:03.456Z" (RFC 3339 in UTC, as nats.js's started). */
static void time_text(char text[TIME_TEXT_BYTES], int64_t wall_ms)
{
    time_t seconds = (time_t)(wall_ms / 1000);
    struct tm utc;
    gmtime_r(&seconds, &utc);
    char head[TIME_TEXT_BYTES];
    strftime(head, sizeof head, "%Y-%m-%dT%H:%M:%S", &utc);
    snprintf(text, TIME_TEXT_BYTES, "%.20s.%03dZ", head, (int)(wall_ms % 1000));
}

/* Sets key to a string; false when out of memory. */
static bool set_text(json_t *object, const char *key, const char *value)
{
    return json_object_set_new(object, key, json_string(value != NULL ? value : "")) == 0;
}

/* type, name, id, version and metadata: what every answer starts with. */
static json_t *identity(const kci_micro_description *description, const char *type, const char *id)
{
    json_t *object = json_object();
    json_t *metadata = json_object();
    char price[PRICE_TEXT_BYTES];
    snprintf(price, sizeof price, "%" PRId64, description->price);
    bool ok =
        object != NULL && metadata != NULL && set_text(metadata, "kc_node", description->node) &&
        set_text(metadata, "kc_type", description->type) && set_text(metadata, "kc_price", price) &&
        set_text(object, "type", type) && set_text(object, "name", description->name) &&
        set_text(object, "id", id) && set_text(object, "version", description->version);
    if (ok && json_object_set_new(object, "metadata", metadata) == 0) return object;
    if (!ok) json_decref(metadata);
    json_decref(object);
    return NULL;
}

/* name, subject and queue_group (when it has one) of an endpoint. */
static json_t *endpoint_base(const kci_micro_endpoint *endpoint)
{
    json_t *object = json_object();
    bool ok =
        object != NULL && set_text(object, "name", endpoint->name) &&
        set_text(object, "subject", endpoint->subject) &&
        (endpoint->queue_group == NULL || set_text(object, "queue_group", endpoint->queue_group));
    if (ok) return object;
    json_decref(object);
    return NULL;
}

static bool set_integer(json_t *object, const char *key, uint64_t value)
{
    return json_object_set_new(object, key, json_integer((json_int_t)value)) == 0;
}

static json_t *endpoint_stats(const kci_micro_endpoint *endpoint)
{
    json_t *object = endpoint_base(endpoint);
    kci_micro_stats_snapshot snapshot = {0};
    if (endpoint->stats != NULL) kci_micro_stats_read(endpoint->stats, &snapshot);
    uint64_t average_ns =
        snapshot.request_count > 0 ? snapshot.processing_ns / snapshot.request_count : 0;
    bool ok = object != NULL && set_integer(object, "num_requests", snapshot.request_count) &&
              set_integer(object, "num_errors", snapshot.error_count) &&
              set_text(object, "last_error", snapshot.last_error) &&
              set_integer(object, "processing_time", snapshot.processing_ns) &&
              set_integer(object, "average_processing_time", average_ns);
    if (ok) return object;
    json_decref(object);
    return NULL;
}

/* The endpoints array: with the stats, or with empty metadata (info). */
static bool add_endpoints(json_t *object, const kci_micro_description *description, bool stats)
{
    json_t *array = json_array();
    if (array == NULL || json_object_set_new(object, "endpoints", array) != 0) return false;
    for (size_t index = 0; index < description->endpoint_count; index++) {
        const kci_micro_endpoint *endpoint = &description->endpoints[index];
        json_t *item = stats ? endpoint_stats(endpoint) : endpoint_base(endpoint);
        if (item != NULL && !stats && json_object_set_new(item, "metadata", json_object()) != 0) {
            json_decref(item);
            item = NULL;
        }
        if (item == NULL || json_array_append_new(array, item) != 0) return false;
    }
    return true;
}

/* Dumps and frees object; NULL in, NULL out. */
static char *dump(json_t *object, bool ok)
{
    char *text = object != NULL && ok ? json_dumps(object, JSON_COMPACT) : NULL;
    json_decref(object);
    return text;
}

char *kci_micro_ping_json(const kci_micro_description *description, const char *id)
{
    json_t *object = identity(description, KCI_MICRO_PING_TYPE, id);
    return dump(object, true);
}

char *kci_micro_info_json(const kci_micro_description *description, const char *id)
{
    json_t *object = identity(description, KCI_MICRO_INFO_TYPE, id);
    bool ok = object != NULL && set_text(object, "description", description->description) &&
              add_endpoints(object, description, false);
    return dump(object, ok);
}

char *kci_micro_stats_json(const kci_micro_description *description, const char *id,
                           int64_t started_wall_ms)
{
    char started[TIME_TEXT_BYTES];
    time_text(started, started_wall_ms);
    json_t *object = identity(description, KCI_MICRO_STATS_TYPE, id);
    bool ok = object != NULL && set_text(object, "started", started) &&
              add_endpoints(object, description, true);
    return dump(object, ok);
}

/* ---- the responder -------------------------------------------------------------- */

typedef struct endpoint_copy {
    char name[KCI_MICRO_NAME_BYTES_MAX + 1];
    char subject[KCI_MICRO_TEXT_BYTES_MAX];
    char queue_group[KCI_MICRO_NAME_BYTES_MAX + 1];
} endpoint_copy;

struct kci_micro {
    natsConnection *connection;
    kci_subscriptions subscriptions;
    char id[KCI_MICRO_ID_BYTES];
    int64_t started_wall_ms;
    char name[KCI_MICRO_NAME_BYTES_MAX + 1];
    char version[KCI_MICRO_TEXT_BYTES_MAX];
    char description_text[KCI_MICRO_TEXT_BYTES_MAX];
    char node[KCI_MICRO_TEXT_BYTES_MAX];
    char type[KCI_MICRO_TEXT_BYTES_MAX];
    endpoint_copy copies[KCI_MICRO_ENDPOINTS_MAX];
    kci_micro_endpoint endpoints[KCI_MICRO_ENDPOINTS_MAX]; /* pointing into copies */
    kci_micro_description description;                     /* pointing into the above */
};

typedef enum verb { VERB_PING, VERB_INFO, VERB_STATS } verb;

static void answer(kci_micro *micro, natsMsg *request, verb what)
{
    const char *reply = natsMsg_GetReply(request);
    if (reply == NULL || !kci_reply_subject_allowed(reply, KCI_REPLY_ANSWER)) return;
    char *text = what == VERB_PING ? kci_micro_ping_json(&micro->description, micro->id)
                 : what == VERB_INFO
                     ? kci_micro_info_json(&micro->description, micro->id)
                     : kci_micro_stats_json(&micro->description, micro->id, micro->started_wall_ms);
    if (text == NULL) {
        kci_warn("%s: no $SRV answer: out of memory", micro->name);
        return;
    }
    natsStatus status = natsConnection_PublishString(micro->connection, reply, text);
    if (status != NATS_OK)
        kci_debug("%s: $SRV answer not sent: %s", micro->name, natsStatus_GetText(status));
    free(text);
}

static void on_ping(natsConnection *connection, natsSubscription *subscription, natsMsg *message,
                    void *closure)
{
    answer(closure, message, VERB_PING);
    natsMsg_Destroy(message);
}

static void on_info(natsConnection *connection, natsSubscription *subscription, natsMsg *message,
                    void *closure)
{
    answer(closure, message, VERB_INFO);
    natsMsg_Destroy(message);
}

static void on_stats(natsConnection *connection, natsSubscription *subscription, natsMsg *message,
                     void *closure)
{
    answer(closure, message, VERB_STATS);
    natsMsg_Destroy(message);
}

static kc_err check_description(const kci_micro_description *description)
{
    if (!kci_micro_name_valid(description->name))
        return kci_fail(KC_ERR_INVALID_ARGUMENT, "service name \"%s\" is not [A-Za-z0-9_-]+",
                        description->name != NULL ? description->name : "");
    if (!kci_micro_version_valid(description->version))
        return kci_fail(KC_ERR_INVALID_ARGUMENT, "service version \"%s\" is not semver",
                        description->version != NULL ? description->version : "");
    if (description->endpoint_count > KCI_MICRO_ENDPOINTS_MAX)
        return kci_fail(KC_ERR_INVALID_ARGUMENT, "a service has at most %d endpoints",
                        KCI_MICRO_ENDPOINTS_MAX);
    return KC_OK;
}

static void copy_text(char *out, size_t out_size, const char *text)
{
    snprintf(out, out_size, "%s", text != NULL ? text : "");
}

static void description_copy(kci_micro *micro, const kci_micro_description *from)
{
    copy_text(micro->name, sizeof micro->name, from->name);
    copy_text(micro->version, sizeof micro->version, from->version);
    copy_text(micro->description_text, sizeof micro->description_text, from->description);
    copy_text(micro->node, sizeof micro->node, from->node);
    copy_text(micro->type, sizeof micro->type, from->type);
    for (size_t index = 0; index < from->endpoint_count; index++) {
        const kci_micro_endpoint *endpoint = &from->endpoints[index];
        endpoint_copy *copy = &micro->copies[index];
        copy_text(copy->name, sizeof copy->name, endpoint->name);
        copy_text(copy->subject, sizeof copy->subject, endpoint->subject);
        copy_text(copy->queue_group, sizeof copy->queue_group, endpoint->queue_group);
        micro->endpoints[index] = (kci_micro_endpoint){
            copy->name, copy->subject, endpoint->queue_group != NULL ? copy->queue_group : NULL,
            endpoint->stats};
    }
    micro->description = (kci_micro_description){
        micro->name, micro->version, micro->description_text, micro->node,
        micro->type, from->price,    micro->endpoints,        from->endpoint_count};
}

/* A user who may not subscribe to $SRV gets a -ERR from the server, not a
 * failed SUB; it comes before the flush's PONG, so once the flush returned
 * the connection's last error tells. */
static kc_err permitted(kci_micro *micro, const char *subject)
{
    kc_err err = kci_subscriptions_flush(micro->connection, SUBSCRIBE_FLUSH_TIMEOUT_MS);
    const char *text = NULL;
    if (err == KC_OK &&
        natsConnection_GetLastError(micro->connection, &text) == NATS_NOT_PERMITTED &&
        text != NULL && strstr(text, subject) != NULL)
        err = kci_fail(KC_ERR_PERMISSION, "the user may not subscribe to %s", subject);
    return err;
}

/* The first subscription is tried alone (permitted), so that a user without
 * $SRV gets one warning from nats.c, not nine. */
static kc_err subscribe_all(kci_micro *micro)
{
    static const char *const verbs[VERBS_COUNT] = {"PING", "INFO", "STATS"};
    static const natsMsgHandler handlers[VERBS_COUNT] = {on_ping, on_info, on_stats};
    kc_err err = KC_OK;
    for (int index = 0; index < VERBS_COUNT * FORMS_COUNT && err == KC_OK; index++) {
        const char *name = verbs[index / FORMS_COUNT];
        char subject[SUBJECT_BYTES_MAX];
        int form = index % FORMS_COUNT;
        snprintf(subject, sizeof subject, KCI_MICRO_SUBJECT_PREFIX ".%s%s%s%s%s", name,
                 form > 0 ? "." : "", form > 0 ? micro->name : "", form > 1 ? "." : "",
                 form > 1 ? micro->id : "");
        const kci_subscription_spec spec = {.subject = subject,
                                            .handler = handlers[index / FORMS_COUNT],
                                            .pending_messages_max = KCI_PENDING_MESSAGES_DEFAULT,
                                            .pending_bytes_max = KCI_PENDING_BYTES_DEFAULT};
        err = kci_subscriptions_add(&micro->subscriptions, micro->connection, &spec, micro);
        if (err == KC_OK && index == 0) err = permitted(micro, subject);
    }
    if (err == KC_OK) err = kci_subscriptions_flush(micro->connection, SUBSCRIBE_FLUSH_TIMEOUT_MS);
    return err;
}

kc_err kci_micro_start(kci_micro **out, natsConnection *connection,
                       const kci_micro_description *description)
{
    assert(out != NULL && connection != NULL && description != NULL);
    *out = NULL;
    kc_err err = check_description(description);
    if (err != KC_OK) return err;
    kci_micro *micro = calloc(1, sizeof *micro);
    if (micro == NULL) return kci_fail(KC_ERR_NOMEM, "service %s", description->name);
    micro->connection = connection;
    kci_uuid_v7_text(micro->id);
    micro->started_wall_ms = kci_wall_ms();
    description_copy(micro, description);
    kci_subscriptions_init(&micro->subscriptions);
    err = subscribe_all(micro);
    if (err != KC_OK) {
        kci_micro_stop(micro, 0);
        return err;
    }
    *out = micro;
    return KC_OK;
}

kci_micro *kci_micro_start_logged(natsConnection *connection,
                                  const kci_micro_description *description, const char *what)
{
    kci_micro *micro = NULL;
    if (kci_micro_start(&micro, connection, description) != KC_OK)
        kci_warn("%s: not discoverable ($SRV): %s", what, kc_last_error());
    return micro;
}

const char *kci_micro_id(const kci_micro *micro)
{
    return micro->id;
}

void kci_micro_stop(kci_micro *micro, int64_t drain_ms)
{
    if (micro == NULL) return;
    if (!kci_subscriptions_drain(&micro->subscriptions, drain_ms, DRAIN_MARGIN_MS)) {
        /* An answer still being built uses micro: leak it rather than free it. */
        kci_warn("%s: a $SRV answer is still running; not freed", micro->name);
        return;
    }
    kci_subscriptions_destroy(&micro->subscriptions);
    free(micro);
}
