/* monitor.c - HTTP monitoring (see monitor.h): /varz, /connz, /subsz,
 * /healthz, /metrics and a plain index, served from the broker's own epoll
 * loop. This file renders the endpoints; http.c parses requests, holds the
 * connections and writes the answers.
 *
 * Why on the loop rather than on a thread of its own: every number reported
 * lives in single-threaded broker state, so reading it from the loop needs
 * no lock and never tears. The price is that rendering an answer holds the
 * broker for as long as it takes, which is why /connz caps its limit.
 *
 * Each endpoint renders its whole answer into one malloc'd body: JSON
 * through jansson (nats-server's field names where they exist), /metrics as
 * Prometheus text. A rendering that runs out of memory leaves the body NULL,
 * which http.c answers with 500. Requests http.c refuses are answered here
 * too, as a JSON error like every other.
 *
 * Known limits: no percent-decoding of query values (no accepted value needs
 * it), no history of closed connections in /connz, and http_port < 0
 * (ephemeral, as nats-server's -1) only for tests; the transport's own
 * limits (no keep-alive, no HTTPS) are listed in http.c. */
#include "monitor.h"

#include <assert.h>
#include <fcntl.h>
#include <jansson.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "auth.h"
#include "client.h"
#include "common/log.h"
#include "common/metrics.h"
#include "common/net.h"
#include "console.h"
#include "http.h"
#include "verifier.h"

enum {
    HTTP_ROUTES_MAX = 16,
    CONNZ_LIMIT_DEFAULT = 1024,
    CONNZ_LIMIT_MAX = 4096, /* rendering runs on the broker's loop */
    CONNZ_SUBSCRIPTIONS_LISTED_MAX = 64 * 1024,
    QUERY_NUMBER_DIGITS_MAX = 18,
    ERROR_TEXT_BYTES_MAX = 160,
    PROC_FILE_BYTES_MAX = 4 * 1024,
    CPU_SAMPLE_INTERVAL_MS_MIN = 1000, /* clock ticks are 10 ms: shorter is noise */
    TIME_TEXT_BYTES = 48,
    DURATION_TEXT_BYTES = 48,
};

#define NS_PER_MS INT64_C(1000000)
#define NS_PER_S INT64_C(1000000000)
#define JSON_FLAGS (JSON_INDENT(2) | JSON_REAL_PRECISION(6))

/* ---- types ---------------------------------------------------------------- */

typedef struct http_query {
    const char *text; /* after '?', not NUL-terminated */
    size_t len;
} http_query;

struct kci_monitor {
    kci_server *server;
    kci_http_server *http;
    char *host;
    uint64_t route_requests[HTTP_ROUTES_MAX];
    uint64_t cpu_ticks_sampled;
    int64_t cpu_sampled_ms;
    double cpu_percent;
    kci_console console; /* the web console and the port's basic auth */
};

/* ---- formatting helpers --------------------------------------------------- */

static int64_t wall_now_ns(void)
{
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    return (int64_t)now.tv_sec * NS_PER_S + now.tv_nsec;
}

/* A monotonic broker time as wall-clock nanoseconds. */
static int64_t wall_ns_at(const kci_server *server, int64_t monotonic_ms)
{
    return (server->start_wall_ms + (monotonic_ms - server->start_ms)) * NS_PER_MS;
}

/* RFC 3339 in UTC, nanoseconds with trailing zeros trimmed (Go's
 * RFC3339Nano, what nats-server prints). */
static void format_time(int64_t wall_ns, char *text, size_t size)
{
    time_t seconds = (time_t)(wall_ns / NS_PER_S);
    long nanoseconds = (long)(wall_ns % NS_PER_S);
    struct tm utc;
    gmtime_r(&seconds, &utc);
    size_t used = strftime(text, size, "%Y-%m-%dT%H:%M:%S", &utc);
    char fraction[16];
    snprintf(fraction, sizeof fraction, ".%09ld", nanoseconds);
    int digits = 10; /* the dot and nine digits */
    while (digits > 1 && fraction[digits - 1] == '0')
        digits--;
    if (digits == 1) digits = 0; /* no dot without digits */
    snprintf(text + used, size - used, "%.*sZ", digits, fraction);
}

/* "1y2d3h4m5s", dropping leading zero units, as nats-server's uptime. */
static void format_duration(int64_t ms, char *text, size_t size)
{
    long long seconds = ms < 0 ? 0 : ms / 1000;
    long long minutes = seconds / 60, hours = minutes / 60, days = hours / 24;
    long long years = days / 365;
    if (years > 0)
        snprintf(text, size, "%lldy%lldd%lldh%lldm%llds", years, days % 365, hours % 24,
                 minutes % 60, seconds % 60);
    else if (days > 0)
        snprintf(text, size, "%lldd%lldh%lldm%llds", days, hours % 24, minutes % 60, seconds % 60);
    else if (hours > 0)
        snprintf(text, size, "%lldh%lldm%llds", hours, minutes % 60, seconds % 60);
    else if (minutes > 0)
        snprintf(text, size, "%lldm%llds", minutes, seconds % 60);
    else
        snprintf(text, size, "%llds", seconds);
}

static const char *text_or(const char *text, const char *fallback)
{
    return text != NULL ? text : fallback;
}

/* Builds a JSON object field by field. A failed allocation fails the whole
 * object, so an answer is never silently missing a field. */
typedef struct json_builder {
    json_t *object;
    bool failed;
} json_builder;

static json_builder json_builder_start(void)
{
    json_t *object = json_object();
    return (json_builder){.object = object, .failed = object == NULL};
}

/* Takes the reference to value (jansson frees it when the set fails). */
static void add_value(json_builder *builder, const char *key, json_t *value)
{
    if (json_object_set_new(builder->object, key, value) != 0) builder->failed = true;
}

static void add_integer(json_builder *builder, const char *key, int64_t value)
{
    add_value(builder, key, json_integer((json_int_t)value));
}

static void add_real(json_builder *builder, const char *key, double value)
{
    add_value(builder, key, json_real(value));
}

static void add_bool(json_builder *builder, const char *key, bool value)
{
    add_value(builder, key, json_boolean(value));
}

static void add_text(json_builder *builder, const char *key, const char *text)
{
    add_value(builder, key, json_string(text));
}

/* Text a client chose (name, subjects) may be invalid UTF-8, which JSON
 * cannot carry: such a field is left out rather than failing the answer.
 * Empty text is left out too, as nats-server's omitempty. */
static void add_client_text(json_builder *builder, const char *key, const char *text, size_t len)
{
    json_t *value = text != NULL && len > 0 ? json_stringn(text, len) : NULL;
    if (value != NULL) add_value(builder, key, value);
}

static json_t *json_builder_finish(json_builder *builder)
{
    if (!builder->failed) return builder->object;
    json_decref(builder->object);
    return NULL;
}

/* ---- process figures from /proc ------------------------------------------- */

static bool read_proc_file(const char *path, char *text, size_t size)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return false;
    ssize_t n = read(fd, text, size - 1);
    close(fd);
    if (n <= 0) return false;
    text[n] = '\0';
    return true;
}

static uint64_t resident_memory_bytes(void)
{
    char text[PROC_FILE_BYTES_MAX];
    if (!read_proc_file("/proc/self/status", text, sizeof text)) return 0;
    const char *line = strstr(text, "\nVmRSS:");
    unsigned long long kib = 0;
    if (line == NULL || sscanf(line + strlen("\nVmRSS:"), "%llu", &kib) != 1) return 0;
    return (uint64_t)kib * 1024;
}

/* User plus system time in clock ticks (fields 14 and 15 of stat). */
static bool cpu_ticks(uint64_t *out)
{
    char text[PROC_FILE_BYTES_MAX];
    if (!read_proc_file("/proc/self/stat", text, sizeof text)) return false;
    const char *after_name = strrchr(text, ')'); /* the command name may hold spaces */
    unsigned long long user = 0, system = 0;
    if (after_name == NULL ||
        sscanf(after_name + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &user,
               &system) != 2)
        return false;
    *out = user + system;
    return true;
}

/* CPU use in percent of one core since the previous sample; samples closer
 * than CPU_SAMPLE_INTERVAL_MS_MIN return the previous figure. */
static double cpu_percent(kci_monitor *monitor)
{
    int64_t now_ms = kci_monotonic_ms();
    uint64_t ticks = 0;
    if (now_ms - monitor->cpu_sampled_ms < CPU_SAMPLE_INTERVAL_MS_MIN || !cpu_ticks(&ticks))
        return monitor->cpu_percent;
    long ticks_per_second = sysconf(_SC_CLK_TCK);
    if (ticks >= monitor->cpu_ticks_sampled && ticks_per_second > 0) {
        double busy_s = (double)(ticks - monitor->cpu_ticks_sampled) / (double)ticks_per_second;
        double elapsed_s = (double)(now_ms - monitor->cpu_sampled_ms) / 1000.0;
        double percent = 100.0 * busy_s / elapsed_s;
        monitor->cpu_percent = (double)(int64_t)(percent * 100.0 + 0.5) / 100.0;
    }
    monitor->cpu_ticks_sampled = ticks;
    monitor->cpu_sampled_ms = now_ms;
    return monitor->cpu_percent;
}

static int core_count(void)
{
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0) return CPU_COUNT(&set);
    long online = sysconf(_SC_NPROCESSORS_ONLN);
    return online > 0 ? (int)online : 1;
}

/* ---- responses ------------------------------------------------------------ */

static void respond_bytes(kci_http_response *response, int status, const char *content_type,
                          const char *bytes, size_t len)
{
    response->status = status;
    response->content_type = content_type;
    response->body = malloc(len + 1);
    if (response->body == NULL) return;
    memcpy(response->body, bytes, len);
    response->body[len] = '\0';
    response->body_len = len;
}

/* Takes the reference to root. */
static void respond_json(kci_http_response *response, int status, json_t *root, size_t flags)
{
    response->status = status;
    response->content_type = "application/json";
    response->body = root != NULL ? json_dumps(root, flags) : NULL;
    response->body_len = response->body != NULL ? strlen(response->body) : 0;
    json_decref(root);
}

/* The message may quote the request, whose bytes need not be UTF-8: JSON
 * gets them as '?' rather than the answer failing. */
static void respond_error(kci_http_response *response, int status, const char *message)
{
    char text[ERROR_TEXT_BYTES_MAX];
    size_t len = 0;
    for (; len < sizeof text - 1 && message[len] != '\0'; len++)
        text[len] = (uint8_t)message[len] < 0x80 ? message[len] : '?';
    text[len] = '\0';
    respond_json(response, status, json_pack("{s:s}", "error", text), JSON_FLAGS);
}

/* ---- /varz ---------------------------------------------------------------- */

static void add_varz_settings(json_builder *varz, const kci_monitor *monitor)
{
    const kci_server *server = monitor->server;
    const kci_options *options = &server->options;
    add_text(varz, "server_id", server->server_id);
    add_text(varz, "server_name", text_or(options->server_name, server->server_id));
    add_text(varz, "version", KC_VERSION);
    add_integer(varz, "proto", 1);
    add_text(varz, "go", "kcobrad");
    add_text(varz, "host", text_or(options->host, "0.0.0.0"));
    add_integer(varz, "port", server->port);
    add_bool(varz, "auth_required", kci_auth_required(options));
    add_bool(varz, "tls_required", options->tls_enabled);
    add_bool(varz, "tls_verify", options->tls_enabled && options->tls_verify);
    add_integer(varz, "max_connections", options->max_connections);
    add_integer(varz, "ping_interval", options->ping_interval_ms * NS_PER_MS);
    add_integer(varz, "ping_max", options->ping_max);
    add_text(varz, "http_host", monitor->host);
    add_integer(varz, "http_port", kci_http_server_port(monitor->http));
    add_text(varz, "http_base_path", "");
    add_integer(varz, "https_port", 0);
    add_real(varz, "auth_timeout", (double)options->auth_timeout_ms / 1000.0);
    add_integer(varz, "max_control_line", options->max_control_line_bytes);
    add_integer(varz, "max_payload", options->max_payload_bytes);
    add_integer(varz, "max_pending", options->max_pending_bytes);
    add_real(varz, "tls_timeout", (double)options->tls_timeout_ms / 1000.0);
    add_integer(varz, "write_deadline", options->write_deadline_ms * NS_PER_MS);
}

/* What kcobrad does not have, shown empty as a lone nats-server shows it,
 * for tools that read these without checking. */
static void add_varz_absent_features(json_builder *varz)
{
    static const char *const FEATURES[] = {"cluster", "gateway",   "leaf",
                                           "mqtt",    "websocket", "jetstream"};
    for (size_t i = 0; i < sizeof FEATURES / sizeof FEATURES[0]; i++)
        add_value(varz, FEATURES[i], json_object());
}

static json_t *varz_request_counts(const kci_monitor *monitor);

static void add_varz_state(json_builder *varz, kci_monitor *monitor)
{
    const kci_server *server = monitor->server;
    const kci_server_stats *stats = &server->stats;
    char start[TIME_TEXT_BYTES], now[TIME_TEXT_BYTES], uptime[DURATION_TEXT_BYTES];
    format_time(server->start_wall_ms * NS_PER_MS, start, sizeof start);
    format_time(wall_now_ns(), now, sizeof now);
    format_duration(kci_monotonic_ms() - server->start_ms, uptime, sizeof uptime);
    kci_sublist_stats sublist;
    kci_sublist_get_stats(server->sublist, &sublist);
    add_text(varz, "start", start);
    add_text(varz, "now", now);
    add_text(varz, "uptime", uptime);
    add_integer(varz, "mem", (int64_t)resident_memory_bytes());
    add_integer(varz, "cores", core_count());
    add_real(varz, "cpu", cpu_percent(monitor));
    add_integer(varz, "connections", (int64_t)server->client_count);
    add_integer(varz, "total_connections", (int64_t)stats->total_connections);
    add_integer(varz, "routes", 0);
    add_integer(varz, "remotes", 0);
    add_integer(varz, "leafnodes", 0);
    add_integer(varz, "in_msgs", (int64_t)stats->in_msgs);
    add_integer(varz, "out_msgs", (int64_t)stats->out_msgs);
    add_integer(varz, "in_bytes", (int64_t)stats->in_bytes);
    add_integer(varz, "out_bytes", (int64_t)stats->out_bytes);
    add_integer(varz, "slow_consumers", (int64_t)stats->slow_consumers);
    add_integer(varz, "subscriptions", (int64_t)sublist.subscription_count);
    add_value(varz, "http_req_stats", varz_request_counts(monitor));
}

static void handle_varz(kci_monitor *monitor, const http_query *query, kci_http_response *response)
{
    json_builder varz = json_builder_start();
    add_varz_settings(&varz, monitor);
    add_varz_absent_features(&varz);
    add_varz_state(&varz, monitor);
    respond_json(response, 200, json_builder_finish(&varz), JSON_FLAGS);
}

/* ---- /connz --------------------------------------------------------------- */

typedef enum subscriptions_listing {
    LIST_NONE = 0,
    LIST_SUBJECTS = 1, /* subs=1: subscriptions_list */
    LIST_DETAIL = 2,   /* subs=detail: subscriptions_list_detail */
} subscriptions_listing;

typedef enum connz_sort_key {
    SORT_CID = 0,
    SORT_SUBSCRIPTIONS = 1,
    SORT_PENDING = 2,
    SORT_OUT_MSGS = 3,
    SORT_IN_MSGS = 4,
    SORT_OUT_BYTES = 5,
    SORT_IN_BYTES = 6,
    SORT_LAST_ACTIVITY = 7,
    SORT_START = 8,
} connz_sort_key;

/* Sort options as nats-server names them: all but cid, start and idle put
 * the largest first. Ties fall back to cid so pages are stable. */
typedef struct connz_sort {
    const char *name;
    connz_sort_key key;
    bool descending;
} connz_sort;

static const connz_sort CONNZ_SORTS[] = {
    {"cid", SORT_CID, false},
    {"start", SORT_CID, false},
    {"subs", SORT_SUBSCRIPTIONS, true},
    {"pending", SORT_PENDING, true},
    {"msgs_to", SORT_OUT_MSGS, true},
    {"msgs_from", SORT_IN_MSGS, true},
    {"bytes_to", SORT_OUT_BYTES, true},
    {"bytes_from", SORT_IN_BYTES, true},
    {"last", SORT_LAST_ACTIVITY, true},
    {"idle", SORT_LAST_ACTIVITY, false}, /* longest idle first */
    {"uptime", SORT_START, true},        /* shortest uptime first */
};

typedef struct connz_request {
    uint64_t offset;
    uint64_t limit;
    uint64_t cid; /* 0: every connection */
    const connz_sort *sort;
    subscriptions_listing listing;
} connz_request;

static uint64_t sort_key(const kci_client *client, connz_sort_key key)
{
    switch (key) {
    case SORT_CID: return client->id;
    case SORT_SUBSCRIPTIONS: return client->subscription_count;
    case SORT_PENDING: return kci_client_pending_bytes(client);
    case SORT_OUT_MSGS: return client->out_msgs;
    case SORT_IN_MSGS: return client->in_msgs;
    case SORT_OUT_BYTES: return client->out_bytes;
    case SORT_IN_BYTES: return client->in_bytes;
    case SORT_LAST_ACTIVITY: return (uint64_t)client->last_activity_ms;
    case SORT_START: return (uint64_t)client->start_ms;
    }
    return 0;
}

static int compare_clients(const void *left, const void *right, void *context)
{
    const connz_sort *sort = context;
    const kci_client *a = *(kci_client *const *)left;
    const kci_client *b = *(kci_client *const *)right;
    uint64_t key_a = sort_key(a, sort->key), key_b = sort_key(b, sort->key);
    if (key_a != key_b) return (key_a < key_b) == sort->descending ? 1 : -1;
    return a->id < b->id ? -1 : a->id > b->id;
}

/* Finds key in "a=1&b=2"; *value points into the query, not NUL-terminated. */
static bool query_find(const http_query *query, const char *key, const char **value,
                       size_t *value_len)
{
    size_t key_len = strlen(key);
    const char *at = query->text, *end = query->text + query->len;
    while (at < end) {
        const char *ampersand = memchr(at, '&', (size_t)(end - at));
        if (ampersand == NULL) ampersand = end;
        const char *equals = memchr(at, '=', (size_t)(ampersand - at));
        const char *name_end = equals != NULL ? equals : ampersand;
        if ((size_t)(name_end - at) == key_len && memcmp(at, key, key_len) == 0) {
            *value = equals != NULL ? equals + 1 : ampersand;
            *value_len = (size_t)(ampersand - *value);
            return true;
        }
        if (ampersand == end) break;
        at = ampersand + 1;
    }
    return false;
}

static bool query_number(const http_query *query, const char *key, uint64_t *out, char *error,
                         size_t error_size)
{
    const char *value = NULL;
    size_t len = 0;
    if (!query_find(query, key, &value, &len) || len == 0) return true; /* keep the default */
    uint64_t number = 0;
    for (size_t i = 0; i < len; i++) {
        if (value[i] < '0' || value[i] > '9' || len > QUERY_NUMBER_DIGITS_MAX) {
            snprintf(error, error_size, "invalid value for '%s': %.*s", key, (int)len, value);
            return false;
        }
        number = number * 10 + (uint64_t)(value[i] - '0');
    }
    *out = number;
    return true;
}

static bool query_is(const char *value, size_t len, const char *text)
{
    return len == strlen(text) && memcmp(value, text, len) == 0;
}

static bool parse_connz_sort(const http_query *query, connz_request *request, char *error,
                             size_t error_size)
{
    const char *value = NULL;
    size_t len = 0;
    request->sort = &CONNZ_SORTS[0];
    if (!query_find(query, "sort", &value, &len) || len == 0) return true;
    for (size_t i = 0; i < sizeof CONNZ_SORTS / sizeof CONNZ_SORTS[0]; i++)
        if (query_is(value, len, CONNZ_SORTS[i].name)) {
            request->sort = &CONNZ_SORTS[i];
            return true;
        }
    snprintf(error, error_size, "invalid sorting option: %.*s", (int)len, value);
    return false;
}

static bool parse_connz_query(const http_query *query, connz_request *request, char *error,
                              size_t error_size)
{
    *request = (connz_request){.limit = CONNZ_LIMIT_DEFAULT};
    if (!query_number(query, "offset", &request->offset, error, error_size) ||
        !query_number(query, "limit", &request->limit, error, error_size) ||
        !query_number(query, "cid", &request->cid, error, error_size) ||
        !parse_connz_sort(query, request, error, error_size))
        return false;
    if (request->limit == 0) request->limit = CONNZ_LIMIT_DEFAULT;
    if (request->limit > CONNZ_LIMIT_MAX) request->limit = CONNZ_LIMIT_MAX;
    const char *value = NULL;
    size_t len = 0;
    if (query_find(query, "subs", &value, &len)) {
        if (query_is(value, len, "detail"))
            request->listing = LIST_DETAIL;
        else if (query_is(value, len, "1") || query_is(value, len, "true"))
            request->listing = LIST_SUBJECTS;
    }
    if (query_find(query, "state", &value, &len) && !query_is(value, len, "open")) {
        snprintf(error, error_size, "only open connections are tracked (state=open)");
        return false;
    }
    return true;
}

static json_t *subscription_detail(const kci_subscription *subscription)
{
    json_builder detail = json_builder_start();
    add_client_text(&detail, "subject", subscription->subject, subscription->subject_len);
    add_client_text(&detail, "qgroup", subscription->queue, subscription->queue_len);
    add_client_text(&detail, "sid", subscription->sid, subscription->sid_len);
    add_integer(&detail, "msgs", (int64_t)subscription->delivered_count);
    if (subscription->max_messages > 0)
        add_integer(&detail, "max", (int64_t)subscription->max_messages);
    add_integer(&detail, "cid", (int64_t)subscription->client->id);
    return json_builder_finish(&detail);
}

/* *listed counts entries across the whole answer, bounded by
 * CONNZ_SUBSCRIPTIONS_LISTED_MAX so that one client with a million
 * subscriptions cannot make an answer of gigabytes. */
static void add_subscriptions(json_builder *info, const kci_client *client,
                              subscriptions_listing listing, uint64_t *listed)
{
    json_t *list = json_array();
    for (uint32_t i = 0; list != NULL && i < client->subscription_count; i++) {
        if (*listed >= CONNZ_SUBSCRIPTIONS_LISTED_MAX) break;
        const kci_subscription *subscription = client->subscriptions[i];
        if (subscription->removed) continue;
        json_t *entry = listing == LIST_DETAIL
                            ? subscription_detail(subscription)
                            : json_stringn(subscription->subject, subscription->subject_len);
        if (entry != NULL && json_array_append_new(list, entry) == 0) (*listed)++;
    }
    if (list != NULL && json_array_size(list) == 0) { /* omitempty */
        json_decref(list);
        return;
    }
    add_value(info, listing == LIST_DETAIL ? "subscriptions_list_detail" : "subscriptions_list",
              list);
}

/* nats-server prints "1.3" where OpenSSL says "TLSv1.3", and IANA cipher
 * names, which SSL_CIPHER_standard_name gives. */
static void add_tls(json_builder *info, const kci_client *client)
{
    if (client->ssl == NULL || client->tls_state != KCI_TLS_ESTABLISHED) return;
    const char *version = SSL_get_version(client->ssl);
    if (strncmp(version, "TLSv", 4) == 0) version += 4;
    add_text(info, "tls_version", version);
    const SSL_CIPHER *cipher = SSL_get_current_cipher(client->ssl);
    const char *cipher_name = cipher != NULL ? SSL_CIPHER_standard_name(cipher) : NULL;
    if (cipher_name != NULL) add_text(info, "tls_cipher_suite", cipher_name);
}

static void add_client_texts(json_builder *info, const kci_client *client)
{
    add_client_text(info, "name", client->name, client->name ? strlen(client->name) : 0);
    add_client_text(info, "lang", client->lang, client->lang ? strlen(client->lang) : 0);
    add_client_text(info, "version", client->version,
                    client->version ? strlen(client->version) : 0);
    add_tls(info, client);
    add_client_text(info, "authorized_user", client->user_name,
                    client->user_name ? strlen(client->user_name) : 0);
}

static json_t *connection_info(const kci_server *server, const kci_client *client,
                               subscriptions_listing listing, uint64_t *listed)
{
    char start[TIME_TEXT_BYTES], last[TIME_TEXT_BYTES];
    char uptime[DURATION_TEXT_BYTES], idle[DURATION_TEXT_BYTES];
    format_time(wall_ns_at(server, client->start_ms), start, sizeof start);
    format_time(wall_ns_at(server, client->last_activity_ms), last, sizeof last);
    format_duration(server->now_ms - client->start_ms, uptime, sizeof uptime);
    format_duration(server->now_ms - client->last_activity_ms, idle, sizeof idle);
    json_builder info = json_builder_start();
    add_integer(&info, "cid", (int64_t)client->id);
    add_text(&info, "kind", "Client");
    add_text(&info, "type", "nats");
    add_text(&info, "ip", client->ip);
    add_integer(&info, "port", client->port);
    add_text(&info, "start", start);
    add_text(&info, "last_activity", last);
    add_text(&info, "uptime", uptime);
    add_text(&info, "idle", idle);
    add_integer(&info, "pending_bytes", kci_client_pending_bytes(client));
    add_integer(&info, "in_msgs", (int64_t)client->in_msgs);
    add_integer(&info, "out_msgs", (int64_t)client->out_msgs);
    add_integer(&info, "in_bytes", (int64_t)client->in_bytes);
    add_integer(&info, "out_bytes", (int64_t)client->out_bytes);
    add_integer(&info, "subscriptions", client->subscription_count);
    add_client_texts(&info, client);
    if (listing != LIST_NONE) add_subscriptions(&info, client, listing, listed);
    return json_builder_finish(&info);
}

/* The open connections that match, unsorted, in *out (free it). */
static kc_err collect_clients(const kci_server *server, uint64_t cid, kci_client ***out,
                              uint64_t *count)
{
    *out = NULL;
    *count = 0;
    if (server->client_count == 0) return KC_OK;
    kci_client **clients = malloc(server->client_count * sizeof *clients);
    if (clients == NULL) return KC_ERR_NOMEM;
    uint64_t found = 0;
    for (kci_client *client = server->clients; client != NULL && found < server->client_count;
         client = client->next)
        if (!client->internal_listener && (cid == 0 || client->id == cid))
            clients[found++] = client;
    *out = clients;
    *count = found;
    return KC_OK;
}

static json_t *connection_list(const kci_server *server, kci_client **clients, uint64_t total,
                               const connz_request *request)
{
    json_t *list = json_array();
    uint64_t listed = 0;
    for (uint64_t i = request->offset; list != NULL && i < total; i++) {
        if (i - request->offset >= request->limit) break;
        json_t *info = connection_info(server, clients[i], request->listing, &listed);
        if (info == NULL || json_array_append_new(list, info) != 0) {
            json_decref(list);
            return NULL;
        }
    }
    return list;
}

static void handle_connz(kci_monitor *monitor, const http_query *query, kci_http_response *response)
{
    const kci_server *server = monitor->server;
    connz_request request;
    char error[ERROR_TEXT_BYTES_MAX];
    if (!parse_connz_query(query, &request, error, sizeof error)) {
        respond_error(response, 400, error);
        return;
    }
    uint64_t total = 0;
    kci_client **clients = NULL;
    if (collect_clients(server, request.cid, &clients, &total) != KC_OK) return; /* 500 */
    if (total > 1) qsort_r(clients, total, sizeof *clients, compare_clients, (void *)request.sort);
    json_t *list = connection_list(server, clients, total, &request);
    free(clients);
    char now[TIME_TEXT_BYTES];
    format_time(wall_now_ns(), now, sizeof now);
    json_builder connz = json_builder_start();
    add_text(&connz, "server_id", server->server_id);
    add_text(&connz, "now", now);
    add_integer(&connz, "num_connections", list != NULL ? (int64_t)json_array_size(list) : 0);
    add_integer(&connz, "total", (int64_t)total);
    add_integer(&connz, "offset", (int64_t)request.offset);
    add_integer(&connz, "limit", (int64_t)request.limit);
    add_value(&connz, "connections", list);
    respond_json(response, 200, json_builder_finish(&connz), JSON_FLAGS);
}

/* ---- /subsz, /healthz ----------------------------------------------------- */

static void handle_subsz(kci_monitor *monitor, const http_query *query, kci_http_response *response)
{
    kci_sublist_stats stats;
    kci_sublist_get_stats(monitor->server->sublist, &stats);
    char now[TIME_TEXT_BYTES];
    format_time(wall_now_ns(), now, sizeof now);
    json_builder subsz = json_builder_start();
    add_text(&subsz, "server_id", monitor->server->server_id);
    add_text(&subsz, "now", now);
    add_integer(&subsz, "num_subscriptions", (int64_t)stats.subscription_count);
    add_integer(&subsz, "num_cache", (int64_t)stats.cache_entry_count);
    add_integer(&subsz, "num_inserts", (int64_t)stats.insert_count);
    add_integer(&subsz, "num_removes", (int64_t)stats.remove_count);
    add_integer(&subsz, "num_matches", (int64_t)stats.match_count);
    add_real(&subsz, "cache_hit_rate",
             stats.match_count > 0 ? (double)stats.cache_hit_count / (double)stats.match_count
                                   : 0.0);
    add_integer(&subsz, "max_fanout", stats.fanout_max);
    add_real(&subsz, "avg_fanout", stats.fanout_average);
    respond_json(response, 200, json_builder_finish(&subsz), JSON_FLAGS);
}

/* Compact, byte for byte what nats-server answers. */
static void handle_healthz(kci_monitor *monitor, const http_query *query,
                           kci_http_response *response)
{
    respond_json(response, 200, json_pack("{s:s}", "status", "ok"), JSON_COMPACT);
}

/* ---- /metrics (Prometheus text format 0.0.4) ------------------------------ */

/* The broker's figures live in its single-threaded state and are written
 * here, on its loop; the components' (persister, ledger, arbiter, ingress)
 * are atomics they registered with common/metrics.h, written after them. */
static void broker_metric(kci_metrics_text *text, const char *name, const char *type,
                          const char *help, uint64_t value)
{
    kci_metrics_write_value(text, name, type, help, (double)value);
}

static void render_broker_traffic(const kci_server *server, kci_metrics_text *text)
{
    const kci_server_stats *stats = &server->stats;
    kci_sublist_stats sublist;
    kci_sublist_get_stats(server->sublist, &sublist);
    broker_metric(text, "kcobra_broker_connections", "gauge", "Client connections open now.",
                  server->client_count);
    broker_metric(text, "kcobra_broker_connections_accepted_total", "counter",
                  "Client connections accepted.", stats->total_connections);
    broker_metric(text, "kcobra_broker_connections_rejected_total", "counter",
                  "Client connections refused at max_connections.", stats->rejected_connections);
    broker_metric(text, "kcobra_broker_subscriptions", "gauge", "Subscriptions held now.",
                  sublist.subscription_count);
    broker_metric(text, "kcobra_broker_in_messages_total", "counter",
                  "Messages received from clients.", stats->in_msgs);
    broker_metric(text, "kcobra_broker_out_messages_total", "counter", "Messages sent to clients.",
                  stats->out_msgs);
    broker_metric(text, "kcobra_broker_in_bytes_total", "counter",
                  "Payload bytes received from clients.", stats->in_bytes);
    broker_metric(text, "kcobra_broker_out_bytes_total", "counter",
                  "Payload bytes sent to clients.", stats->out_bytes);
    broker_metric(text, "kcobra_broker_slow_consumers_total", "counter",
                  "Clients closed as slow consumers.", stats->slow_consumers);
}

static void render_broker_process(const kci_server *server, kci_metrics_text *text)
{
    kci_verifier_stats auth;
    kci_verifier_get_stats(server->verifier, &auth);
    broker_metric(text, "kcobra_broker_auth_verifications_total", "counter",
                  "bcrypt password verifications run off the event loop.", auth.verification_count);
    broker_metric(text, "kcobra_broker_auth_cache_hits_total", "counter",
                  "CONNECTs with a bcrypt'd password accepted from the cache, without bcrypt.",
                  auth.cache_hit_count);
    broker_metric(text, "kcobra_broker_auth_busy_refusals_total", "counter",
                  "CONNECTs refused because the most verifications were pending.",
                  auth.busy_refusal_count);
    broker_metric(text, "kcobra_broker_auth_verifications_pending", "gauge",
                  "bcrypt verifications queued or running now.", auth.pending_count);
    broker_metric(text, "kcobra_resident_memory_bytes", "gauge",
                  "Resident memory (VmRSS) in bytes.", resident_memory_bytes());
    kci_metrics_write_value(text, "kcobra_uptime_seconds", "gauge",
                            "Seconds since the server started.",
                            (double)(kci_monotonic_ms() - server->start_ms) / 1000.0);
}

static void handle_metrics(kci_monitor *monitor, const http_query *query,
                           kci_http_response *response)
{
    const kci_server *server = monitor->server;
    kci_metrics_text text = {0};
    const char *const labels[] = {"version", KC_VERSION, "server_id", server->server_id};
    kci_metrics_write_info(&text, "kcobra_info", "Version and id of this server.", labels, 2);
    render_broker_traffic(server, &text);
    render_broker_process(server, &text);
    kci_metrics_write_registered(&text);
    response->body = kci_metrics_text_take(&text, &response->body_len); /* NULL: 500 */
    response->status = 200;
    response->content_type = KCI_METRICS_CONTENT_TYPE;
}

/* ---- routing -------------------------------------------------------------- */

static void handle_index(kci_monitor *monitor, const http_query *query, kci_http_response *response)
{
    static const char INDEX[] = "kcobrad " KC_VERSION " monitoring\n"
                                "\n"
                                "/varz      general server information\n"
                                "/connz     connections (offset, limit, sort, subs, cid)\n"
                                "/subsz     subscription index statistics\n"
                                "/healthz   health probe\n"
                                "/metrics   Prometheus metrics\n"
                                "/          the web console (docs/console.md)\n"
                                "/console/api/broker, nodes, queue, ledger   its JSON\n";
    respond_bytes(response, 200, "text/plain; charset=utf-8", INDEX, sizeof INDEX - 1);
}

typedef void (*http_handler)(kci_monitor *monitor, const http_query *query,
                             kci_http_response *response);

typedef struct http_route {
    const char *path;
    http_handler handler;
} http_route;

static const http_route ROUTES[] = {
    {"/index.txt", handle_index},      {"/varz", handle_varz},
    {"/connz", handle_connz},          {"/subsz", handle_subsz},
    {"/subscriptionsz", handle_subsz}, /* nats-server's alias */
    {"/healthz", handle_healthz},      {"/metrics", handle_metrics},
};
#define ROUTE_COUNT (sizeof ROUTES / sizeof ROUTES[0])
_Static_assert(ROUTE_COUNT <= (size_t)HTTP_ROUTES_MAX, "route_requests has a slot per route");

static json_t *varz_request_counts(const kci_monitor *monitor)
{
    json_t *counts = json_object();
    for (size_t i = 0; i < ROUTE_COUNT; i++)
        if (monitor->route_requests[i] > 0)
            json_object_set_new(counts, ROUTES[i].path,
                                json_integer((json_int_t)monitor->route_requests[i]));
    return counts;
}

/* The path is matched whole: "/varz/" is not "/varz". */
static void route(kci_monitor *monitor, const char *path, size_t path_len, const http_query *query,
                  kci_http_response *response)
{
    for (size_t i = 0; i < ROUTE_COUNT; i++) {
        if (strlen(ROUTES[i].path) != path_len || memcmp(ROUTES[i].path, path, path_len) != 0)
            continue;
        monitor->route_requests[i]++;
        ROUTES[i].handler(monitor, query, response);
        return;
    }
    respond_error(response, 404, "not found");
}

/* ---- answering a request -------------------------------------------------- */

/* The handler http.c calls once per connection. A refused request gets
 * its reason phrase as the error text, but 405 keeps its own lower-case
 * wording, which scripts may match on. */
static void answer_request(void *context, const kci_http_request *request, const char *bytes,
                           kci_http_response *response)
{
    kci_monitor *monitor = context;
    if (request->state == KCI_HTTP_PARSE_FAILED) {
        int status = request->error_status;
        respond_error(response, status,
                      status == 405 ? "method not allowed" : kci_http_status_text(status));
        return;
    }
    assert(request->state == KCI_HTTP_PARSE_DONE);
    const char *path = bytes + request->target_start;
    /* /healthz stays open: probes carry no password and it says nothing. */
    bool probe = request->path_len == 8 && memcmp(path, "/healthz", 8) == 0;
    if (!probe &&
        !kci_console_authorized(&monitor->console, &monitor->server->options, request, bytes)) {
        respond_error(response, 401, "authentication required (http_user, docs/console.md)");
        return;
    }
    if (kci_console_answer(&monitor->console, monitor->server, path, request->path_len, response))
        return;
    http_query query = {.text = bytes + request->query_start, .len = request->query_len};
    route(monitor, path, request->path_len, &query, response);
}

/* ---- API ------------------------------------------------------------------ */

static kc_err open_monitor(kci_monitor *monitor, char *error, size_t error_size)
{
    const kci_options *options = &monitor->server->options;
    monitor->host = strdup(text_or(options->http_host, text_or(options->host, "0.0.0.0")));
    if (monitor->host == NULL) return KC_ERR_NOMEM;
    int port = options->http_port < 0 ? 0 : options->http_port;
    if (options->http_tls && monitor->server->tls_context == NULL) {
        snprintf(error, error_size, "http_tls needs the tls block's cert_file and key_file");
        return KC_ERR_CONFIG;
    }
    kc_err err = kci_http_server_create(&monitor->http, monitor->server, monitor->host, port,
                                        answer_request, monitor, error, error_size);
    if (err == KC_OK && options->http_tls)
        kci_http_server_set_tls(monitor->http, monitor->server->tls_context);
    return err;
}

kc_err kci_monitor_create(kci_server *server, kci_monitor **out, char *error, size_t error_size)
{
    assert(server != NULL && out != NULL);
    *out = NULL;
    if (server->options.http_port == 0) return KC_OK;
    kci_monitor *monitor = calloc(1, sizeof *monitor);
    if (monitor == NULL) return KC_ERR_NOMEM;
    monitor->server = server;
    kc_err err = open_monitor(monitor, error, error_size);
    if (err != KC_OK) {
        if (err == KC_ERR_NOMEM) snprintf(error, error_size, "out of memory for http monitor");
        kci_monitor_destroy(monitor);
        return err;
    }
    /* The first CPU figure then covers start-up to the first /varz. */
    monitor->cpu_sampled_ms = server->start_ms;
    bool bracket = strchr(monitor->host, ':') != NULL; /* IPv6, as host:port needs */
    kci_info("Starting %s monitor on %s%s%s:%d", server->options.http_tls ? "https" : "http",
             bracket ? "[" : "", monitor->host, bracket ? "]" : "",
             kci_http_server_port(monitor->http));
    if (!kci_host_is_loopback(monitor->host) && server->options.http_user == NULL)
        kci_warn("WARNING: the http monitor and web console on %s have no authentication and "
                 "are reachable beyond this host: they show connections, user names, subjects, "
                 "nodes and payments to anyone who can reach the port. Set http_user and "
                 "http_password (docs/console.md), or bind it with http: \"127.0.0.1:%d\". "
                 "Not refused, so that existing scrapers keep working.",
                 monitor->host, kci_http_server_port(monitor->http));
    *out = monitor;
    return KC_OK;
}

void kci_monitor_on_event(kci_monitor *monitor, kci_source *source, uint32_t events)
{
    assert(monitor != NULL && source != NULL);
    kci_http_server_on_event(monitor->http, source, events);
}

void kci_monitor_housekeeping(kci_monitor *monitor, int64_t now_ms)
{
    assert(monitor != NULL);
    kci_http_server_housekeeping(monitor->http, now_ms);
}

void kci_monitor_watch(kci_monitor *monitor, bool watched)
{
    if (monitor != NULL) kci_http_server_watch(monitor->http, watched);
}

int kci_monitor_port(const kci_monitor *monitor)
{
    return monitor != NULL ? kci_http_server_port(monitor->http) : 0;
}

void kci_monitor_destroy(kci_monitor *monitor)
{
    if (monitor == NULL) return;
    kci_http_server_destroy(monitor->http);
    kci_console_free(&monitor->console);
    free(monitor->host);
    free(monitor);
}
