/* monitor.c - HTTP monitoring (see monitor.h): /varz, /connz, /subsz,
 * /healthz, /metrics and a plain index, served from the broker's own epoll
 * loop.
 *
 * Why on the loop rather than on a thread of its own: every number reported
 * lives in single-threaded broker state, so reading it from the loop needs
 * no lock and never tears. The price is that rendering an answer holds the
 * broker for as long as it takes, which is why /connz caps its limit.
 *
 * Transport: one request per connection, answered and closed (Connection:
 * close, Content-Length). A connection lives in a slot of a fixed pool; its
 * request is read into the slot's buffer and parsed by a resumable,
 * byte-at-a-time state machine (method, target, version, then header lines
 * up to the blank line; header contents are not interpreted). The answer is
 * rendered whole into one buffer and written as fast as the socket takes it
 * (EPOLLOUT when it would block).
 *
 * Bounds: HTTP_CONNECTIONS_MAX connections at once (more get 503), requests
 * of at most HTTP_REQUEST_BYTES_MAX (more get 414 or 431), HTTP_READ_TIMEOUT_MS
 * to send the whole request and HTTP_WRITE_TIMEOUT_MS at most between two
 * writes of the answer; the housekeeping tick closes connections past their
 * deadline.
 *
 * Known limits: no keep-alive, no HTTPS, no percent-decoding of query values
 * (no accepted value needs it), no history of closed connections in /connz,
 * and http_port < 0 (ephemeral, as nats-server's -1) only for tests. */
#include "monitor.h"

#include <arpa/inet.h>
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <netdb.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "auth.h"
#include "client.h"
#include "common/log.h"

enum {
    HTTP_CONNECTIONS_MAX = 64,
    HTTP_ACCEPTS_PER_WAKEUP_MAX = 64,
    HTTP_LISTEN_BACKLOG = 128,
    HTTP_REQUEST_BYTES_MAX = 8 * 1024,
    HTTP_METHOD_BYTES_MAX = 16,
    HTTP_TARGET_BYTES_MAX = 2 * 1024,
    HTTP_VERSION_BYTES_MAX = 8, /* "HTTP/1.1" */
    HTTP_HEADER_LINES_MAX = 100,
    HTTP_HEAD_BYTES_MAX = 512,
    HTTP_READ_TIMEOUT_MS = 5 * 1000,
    HTTP_WRITE_TIMEOUT_MS = 10 * 1000,
    HTTP_DRAIN_READS_MAX = 4,
    HTTP_ROUTES_MAX = 16,
    CONNZ_LIMIT_DEFAULT = 1024,
    CONNZ_LIMIT_MAX = 4096, /* rendering runs on the broker's loop */
    CONNZ_SUBSCRIPTIONS_LISTED_MAX = 64 * 1024,
    QUERY_NUMBER_DIGITS_MAX = 18,
    ERROR_TEXT_BYTES_MAX = 160,
    METRICS_BYTES_MAX = 8 * 1024,
    PROC_FILE_BYTES_MAX = 4 * 1024,
    CPU_SAMPLE_INTERVAL_MS_MIN = 1000, /* clock ticks are 10 ms: shorter is noise */
    TIME_TEXT_BYTES = 48,
    DURATION_TEXT_BYTES = 48,
};

#define NS_PER_MS INT64_C(1000000)
#define NS_PER_S INT64_C(1000000000)
#define JSON_FLAGS (JSON_INDENT(2) | JSON_REAL_PRECISION(6))

static const char INTERNAL_ERROR_BODY[] = "{\"error\": \"internal error\"}";
#define BUSY_BODY "{\"error\": \"too many monitor connections\"}"
static const char BUSY_RESPONSE[] = "HTTP/1.1 503 Service Unavailable\r\n"
                                    "Content-Type: application/json\r\n"
                                    "Content-Length: 41\r\n"
                                    "Connection: close\r\n\r\n" BUSY_BODY;
_Static_assert(sizeof BUSY_BODY - 1 == 41, "BUSY_RESPONSE's Content-Length is its body's");

/* ---- types ---------------------------------------------------------------- */

/* Each state names what has been matched so far. */
typedef enum http_parse_state {
    HTTP_PARSE_METHOD = 0,
    HTTP_PARSE_TARGET = 1,
    HTTP_PARSE_VERSION = 2,
    HTTP_PARSE_REQUEST_LINE_CR = 3, /* the '\r' ending the request line */
    HTTP_PARSE_LINE_START = 4,      /* the start of a header line or the blank line */
    HTTP_PARSE_HEADER = 5,
    HTTP_PARSE_HEADER_CR = 6,
    HTTP_PARSE_BLANK_LINE_CR = 7,
    HTTP_PARSE_DONE = 8,
    HTTP_PARSE_FAILED = 9,
} http_parse_state;

/* Offsets into the connection's buffer, which holds the whole request. */
typedef struct http_request {
    http_parse_state state;
    uint32_t position; /* bytes consumed */
    uint32_t method_start;
    uint32_t method_len;
    uint32_t target_start;
    uint32_t target_len;
    uint32_t version_start;
    uint32_t version_len;
    uint32_t header_line_count;
    int error_status; /* the status to answer with once FAILED */
} http_request;

typedef struct http_connection {
    kci_source source; /* first: epoll data points here */
    kci_monitor *monitor;
    bool in_use; /* false: a free pool slot (calloc'd pool starts all free) */
    bool want_write;
    int fd;
    int64_t deadline_ms;
    char ip[INET6_ADDRSTRLEN];
    uint16_t port;
    http_request request;
    uint32_t received_len;
    char received[HTTP_REQUEST_BYTES_MAX];
    char *out; /* the whole answer once rendered; NULL while reading */
    size_t out_len;
    size_t out_sent;
} http_connection;

typedef struct http_query {
    const char *text; /* after '?', not NUL-terminated */
    size_t len;
} http_query;

typedef struct http_response {
    int status;
    const char *content_type;
    char *body; /* malloc'd; NULL means rendering failed (answered 500) */
    size_t body_len;
} http_response;

struct kci_monitor {
    kci_source listener; /* first: epoll data of the listening socket */
    kci_server *server;
    int listen_fd;
    int port;
    char *host;
    http_connection *connections; /* HTTP_CONNECTIONS_MAX slots */
    uint32_t connection_count;
    uint64_t route_requests[HTTP_ROUTES_MAX];
    uint64_t cpu_ticks_sampled;
    int64_t cpu_sampled_ms;
    double cpu_percent;
};

/* ---- the request parser --------------------------------------------------- */

static void parse_fail(http_request *request, int status)
{
    request->state = HTTP_PARSE_FAILED;
    request->error_status = status;
}

static bool is_token_byte(uint8_t byte)
{
    return (byte >= 'A' && byte <= 'Z') || (byte >= 'a' && byte <= 'z') || byte == '-';
}

static bool is_visible_byte(uint8_t byte)
{
    return byte > ' ' && byte != 0x7f;
}

/* Only HTTP/1.x: 0.9 has no version (caught as a missing one), 2 and 3
 * never arrive in plain text on a fresh connection. */
static void parse_end_request_line(http_request *request, const char *bytes)
{
    const char *version = bytes + request->version_start;
    if (request->version_len != HTTP_VERSION_BYTES_MAX || memcmp(version, "HTTP/", 5) != 0) {
        parse_fail(request, 400);
        return;
    }
    if (memcmp(version + 5, "1.", 2) != 0 || version[7] < '0' || version[7] > '9') {
        parse_fail(request, 505);
        return;
    }
    request->state = HTTP_PARSE_LINE_START;
}

static void parse_request_line_byte(http_request *request, const char *bytes, uint8_t byte)
{
    switch (request->state) {
    case HTTP_PARSE_METHOD:
        if (request->method_len == 0 && (byte == '\r' || byte == '\n')) {
            request->method_start = request->position + 1; /* tolerated leading blank lines */
        } else if (is_token_byte(byte)) {
            if (++request->method_len > HTTP_METHOD_BYTES_MAX) parse_fail(request, 400);
        } else if (byte == ' ' && request->method_len > 0) {
            request->state = HTTP_PARSE_TARGET;
            request->target_start = request->position + 1;
        } else {
            parse_fail(request, 400);
        }
        break;
    case HTTP_PARSE_TARGET:
        if (byte == ' ' && request->target_len > 0) {
            request->state = HTTP_PARSE_VERSION;
            request->version_start = request->position + 1;
        } else if (!is_visible_byte(byte)) {
            parse_fail(request, 400);
        } else if (++request->target_len > HTTP_TARGET_BYTES_MAX) {
            parse_fail(request, 414);
        }
        break;
    case HTTP_PARSE_VERSION:
        if (byte == '\r')
            request->state = HTTP_PARSE_REQUEST_LINE_CR;
        else if (byte == '\n')
            parse_end_request_line(request, bytes);
        else if (!is_visible_byte(byte) || ++request->version_len > HTTP_VERSION_BYTES_MAX)
            parse_fail(request, 400);
        break;
    case HTTP_PARSE_REQUEST_LINE_CR:
        if (byte == '\n')
            parse_end_request_line(request, bytes);
        else
            parse_fail(request, 400);
        break;
    default: assert(false && "not a request line state");
    }
}

/* Header lines are counted and skipped: no endpoint depends on one. A bare
 * '\n' ends a line too, as most servers accept. */
static void parse_header_byte(http_request *request, uint8_t byte)
{
    switch (request->state) {
    case HTTP_PARSE_LINE_START:
        if (byte == '\r') {
            request->state = HTTP_PARSE_BLANK_LINE_CR;
        } else if (byte == '\n') {
            request->state = HTTP_PARSE_DONE;
        } else if (byte == '\0' || ++request->header_line_count > HTTP_HEADER_LINES_MAX) {
            parse_fail(request, byte == '\0' ? 400 : 431);
        } else {
            request->state = HTTP_PARSE_HEADER;
        }
        break;
    case HTTP_PARSE_HEADER:
        if (byte == '\r')
            request->state = HTTP_PARSE_HEADER_CR;
        else if (byte == '\n')
            request->state = HTTP_PARSE_LINE_START;
        else if (byte == '\0')
            parse_fail(request, 400);
        break;
    case HTTP_PARSE_HEADER_CR:
        if (byte == '\n')
            request->state = HTTP_PARSE_LINE_START;
        else
            parse_fail(request, 400);
        break;
    case HTTP_PARSE_BLANK_LINE_CR:
        if (byte == '\n')
            request->state = HTTP_PARSE_DONE;
        else
            parse_fail(request, 400);
        break;
    default: assert(false && "not a header state");
    }
}

/* Consumes bytes[position..len) until the request is complete or wrong.
 * Resumable: call again with the same buffer once more bytes arrived. */
static http_parse_state http_parse(http_request *request, const char *bytes, uint32_t len)
{
    while (request->position < len && request->state < HTTP_PARSE_DONE) {
        uint8_t byte = (uint8_t)bytes[request->position];
        if (request->state < HTTP_PARSE_LINE_START)
            parse_request_line_byte(request, bytes, byte);
        else
            parse_header_byte(request, byte);
        request->position++;
    }
    assert(request->position <= len);
    return request->state;
}

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
    int64_t now_ms = kci_now_ms();
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

static void respond_bytes(http_response *response, int status, const char *content_type,
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
static void respond_json(http_response *response, int status, json_t *root, size_t flags)
{
    response->status = status;
    response->content_type = "application/json";
    response->body = root != NULL ? json_dumps(root, flags) : NULL;
    response->body_len = response->body != NULL ? strlen(response->body) : 0;
    json_decref(root);
}

/* The message may quote the request, whose bytes need not be UTF-8: JSON
 * gets them as '?' rather than the answer failing. */
static void respond_error(http_response *response, int status, const char *message)
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
    add_integer(varz, "http_port", monitor->port);
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
    format_duration(kci_now_ms() - server->start_ms, uptime, sizeof uptime);
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

static void handle_varz(kci_monitor *monitor, const http_query *query, http_response *response)
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
        if (cid == 0 || client->id == cid) clients[found++] = client;
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

static void handle_connz(kci_monitor *monitor, const http_query *query, http_response *response)
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

static void handle_subsz(kci_monitor *monitor, const http_query *query, http_response *response)
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
static void handle_healthz(kci_monitor *monitor, const http_query *query, http_response *response)
{
    respond_json(response, 200, json_pack("{s:s}", "status", "ok"), JSON_COMPACT);
}

/* ---- /metrics (Prometheus text format 0.0.4) ------------------------------ */

typedef struct metrics_text {
    char *bytes;
    size_t len;
    bool overflowed;
} metrics_text;

static void metrics_append(metrics_text *text, const char *format, ...)
    __attribute__((format(printf, 2, 3)));

static void metrics_append(metrics_text *text, const char *format, ...)
{
    if (text->overflowed) return;
    va_list args;
    va_start(args, format);
    int n = vsnprintf(text->bytes + text->len, METRICS_BYTES_MAX - text->len, format, args);
    va_end(args);
    if (n < 0 || (size_t)n >= METRICS_BYTES_MAX - text->len)
        text->overflowed = true;
    else
        text->len += (size_t)n;
}

static void metric(metrics_text *text, const char *name, const char *type, const char *help,
                   uint64_t value)
{
    metrics_append(text, "# HELP %s %s\n# TYPE %s %s\n%s %llu\n", name, help, name, type, name,
                   (unsigned long long)value);
}

static void render_metrics(const kci_server *server, metrics_text *text)
{
    const kci_server_stats *stats = &server->stats;
    kci_sublist_stats sublist;
    kci_sublist_get_stats(server->sublist, &sublist);
    /* The server id is generated from a base-32 alphabet: no label escaping. */
    metrics_append(text,
                   "# HELP kcobrad_info Version and id of this server.\n"
                   "# TYPE kcobrad_info gauge\n"
                   "kcobrad_info{version=\"%s\",server_id=\"%s\"} 1\n",
                   KC_VERSION, server->server_id);
    metric(text, "kcobrad_connections", "gauge", "Client connections open now.",
           server->client_count);
    metric(text, "kcobrad_total_connections", "counter", "Client connections accepted.",
           stats->total_connections);
    metric(text, "kcobrad_rejected_connections_total", "counter",
           "Client connections refused at max_connections.", stats->rejected_connections);
    metric(text, "kcobrad_in_msgs_total", "counter", "Messages received from clients.",
           stats->in_msgs);
    metric(text, "kcobrad_out_msgs_total", "counter", "Messages sent to clients.", stats->out_msgs);
    metric(text, "kcobrad_in_bytes_total", "counter", "Payload bytes received from clients.",
           stats->in_bytes);
    metric(text, "kcobrad_out_bytes_total", "counter", "Payload bytes sent to clients.",
           stats->out_bytes);
    metric(text, "kcobrad_slow_consumers_total", "counter", "Clients closed as slow consumers.",
           stats->slow_consumers);
    metric(text, "kcobrad_subscriptions", "gauge", "Subscriptions held now.",
           sublist.subscription_count);
    metric(text, "kcobrad_mem_bytes", "gauge", "Resident memory (VmRSS) in bytes.",
           resident_memory_bytes());
    metrics_append(text,
                   "# HELP kcobrad_uptime_seconds Seconds since the server started.\n"
                   "# TYPE kcobrad_uptime_seconds gauge\n"
                   "kcobrad_uptime_seconds %.3f\n",
                   (double)(kci_now_ms() - server->start_ms) / 1000.0);
}

static void handle_metrics(kci_monitor *monitor, const http_query *query, http_response *response)
{
    metrics_text text = {.bytes = malloc(METRICS_BYTES_MAX)};
    if (text.bytes == NULL) return;
    render_metrics(monitor->server, &text);
    assert(!text.overflowed && "METRICS_BYTES_MAX is too small for the fixed metric set");
    response->status = 200;
    response->content_type = "text/plain; version=0.0.4; charset=utf-8";
    response->body = text.bytes;
    response->body_len = text.len;
}

/* ---- routing -------------------------------------------------------------- */

static void handle_index(kci_monitor *monitor, const http_query *query, http_response *response)
{
    static const char INDEX[] = "kcobrad " KC_VERSION " monitoring\n"
                                "\n"
                                "/varz      general server information\n"
                                "/connz     connections (offset, limit, sort, subs, cid)\n"
                                "/subsz     subscription index statistics\n"
                                "/healthz   health probe\n"
                                "/metrics   Prometheus metrics\n";
    respond_bytes(response, 200, "text/plain; charset=utf-8", INDEX, sizeof INDEX - 1);
}

typedef void (*http_handler)(kci_monitor *monitor, const http_query *query,
                             http_response *response);

typedef struct http_route {
    const char *path;
    http_handler handler;
} http_route;

static const http_route ROUTES[] = {
    {"/", handle_index},
    {"/varz", handle_varz},
    {"/connz", handle_connz},
    {"/subsz", handle_subsz},
    {"/subscriptionsz", handle_subsz}, /* nats-server's alias */
    {"/healthz", handle_healthz},
    {"/metrics", handle_metrics},
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

static void route(kci_monitor *monitor, const char *target, size_t target_len,
                  http_response *response)
{
    const char *question = memchr(target, '?', target_len);
    size_t path_len = question != NULL ? (size_t)(question - target) : target_len;
    http_query query = {.text = question != NULL ? question + 1 : target + target_len,
                        .len = question != NULL ? target_len - path_len - 1 : 0};
    for (size_t i = 0; i < ROUTE_COUNT; i++) {
        if (strlen(ROUTES[i].path) != path_len || memcmp(ROUTES[i].path, target, path_len) != 0)
            continue;
        monitor->route_requests[i]++;
        ROUTES[i].handler(monitor, &query, response);
        return;
    }
    respond_error(response, 404, "not found");
}

/* ---- connections ---------------------------------------------------------- */

static void close_connection(http_connection *connection)
{
    kci_monitor *monitor = connection->monitor;
    assert(connection->in_use && monitor->connection_count > 0);
    epoll_ctl(monitor->server->epoll_fd, EPOLL_CTL_DEL, connection->fd, NULL);
    /* FIN rather than RST: unread input at close() makes the kernel reset
     * the connection, and the peer could lose the answer. */
    shutdown(connection->fd, SHUT_WR);
    for (int i = 0; i < HTTP_DRAIN_READS_MAX; i++)
        if (recv(connection->fd, connection->received, sizeof connection->received, MSG_DONTWAIT) <=
            0)
            break;
    close(connection->fd);
    free(connection->out);
    connection->out = NULL;
    connection->fd = -1;
    connection->in_use = false;
    monitor->connection_count--;
}

static void arm_writable(http_connection *connection)
{
    if (connection->want_write) return;
    struct epoll_event event = {.events = EPOLLOUT, .data.ptr = &connection->source};
    if (epoll_ctl(connection->monitor->server->epoll_fd, EPOLL_CTL_MOD, connection->fd, &event) !=
        0) {
        close_connection(connection);
        return;
    }
    connection->want_write = true;
}

/* Writes what the socket takes; closes once all is sent or on error. */
static void continue_writing(http_connection *connection)
{
    assert(connection->out != NULL && connection->out_sent <= connection->out_len);
    while (connection->out_sent < connection->out_len) {
        ssize_t n = send(connection->fd, connection->out + connection->out_sent,
                         connection->out_len - connection->out_sent, MSG_NOSIGNAL);
        if (n > 0) {
            connection->out_sent += (size_t)n;
            /* A deadline between writes, not for the whole answer: a slow
             * reader that keeps taking bytes is served; a stuck one is not. */
            connection->deadline_ms = connection->monitor->server->now_ms + HTTP_WRITE_TIMEOUT_MS;
        } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            arm_writable(connection);
            return;
        } else if (n == 0 || errno != EINTR) {
            break;
        }
    }
    close_connection(connection);
}

static const char *status_text(int status)
{
    switch (status) {
    case 200: return "OK";
    case 400: return "Bad Request";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 414: return "URI Too Long";
    case 431: return "Request Header Fields Too Large";
    case 503: return "Service Unavailable";
    case 505: return "HTTP Version Not Supported";
    default: return "Internal Server Error";
    }
}

/* The status line and headers. Date in the C locale's day and month
 * names, which are HTTP's (the daemon never calls setlocale). */
static size_t render_head(char *head, size_t size, const http_response *response, size_t body_len)
{
    char date[TIME_TEXT_BYTES];
    time_t now = time(NULL);
    struct tm utc;
    gmtime_r(&now, &utc);
    strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S GMT", &utc);
    int len =
        snprintf(head, size,
                 "HTTP/1.1 %d %s\r\nDate: %s\r\nContent-Type: %s\r\n"
                 "Content-Length: %zu\r\n%sCache-Control: no-cache\r\n"
                 "Connection: close\r\n\r\n",
                 response->status, status_text(response->status), date, response->content_type,
                 body_len, response->status == 405 ? "Allow: GET, HEAD\r\n" : "");
    assert(len > 0 && (size_t)len < size && "HTTP_HEAD_BYTES_MAX fits every head");
    return (size_t)len;
}

/* Renders head and body into one buffer (HEAD: the head alone) and starts
 * writing. Takes response->body. */
static void send_response(http_connection *connection, http_response *response, bool head_only)
{
    const char *body = response->body;
    size_t body_len = response->body_len;
    if (body == NULL) { /* a handler ran out of memory */
        response->status = 500;
        response->content_type = "application/json";
        body = INTERNAL_ERROR_BODY;
        body_len = sizeof INTERNAL_ERROR_BODY - 1;
    }
    char head[HTTP_HEAD_BYTES_MAX];
    size_t head_len = render_head(head, sizeof head, response, body_len);
    size_t out_len = head_len + (head_only ? 0 : body_len);
    connection->out = malloc(out_len);
    if (connection->out != NULL) {
        memcpy(connection->out, head, head_len);
        if (!head_only) memcpy(connection->out + head_len, body, body_len);
    }
    free(response->body);
    response->body = NULL;
    if (connection->out == NULL) {
        close_connection(connection);
        return;
    }
    connection->out_len = out_len;
    connection->out_sent = 0;
    connection->deadline_ms = connection->monitor->server->now_ms + HTTP_WRITE_TIMEOUT_MS;
    continue_writing(connection);
}

static bool method_is(const http_connection *connection, const char *method)
{
    const http_request *request = &connection->request;
    return request->method_len == strlen(method) &&
           memcmp(connection->received + request->method_start, method, request->method_len) == 0;
}

static void answer(http_connection *connection)
{
    const http_request *request = &connection->request;
    http_response response = {0};
    bool head_only = method_is(connection, "HEAD");
    const char *target = connection->received + request->target_start;
    if (request->state == HTTP_PARSE_FAILED)
        respond_error(&response, request->error_status, status_text(request->error_status));
    else if (!head_only && !method_is(connection, "GET"))
        respond_error(&response, 405, "method not allowed");
    else
        route(connection->monitor, target, request->target_len, &response);
    kci_debug("%s:%u - HTTP \"%.*s %.*s\" %d", connection->ip, (unsigned)connection->port,
              (int)request->method_len, connection->received + request->method_start,
              (int)request->target_len, target, response.body ? response.status : 500);
    send_response(connection, &response, head_only);
}

/* Reads until the request is complete, wrong, or the socket is drained. The
 * loop is bounded by the buffer: every turn adds at least one byte. */
static void read_request(http_connection *connection)
{
    http_request *request = &connection->request;
    for (;;) {
        if (connection->received_len == sizeof connection->received) {
            parse_fail(request, request->state <= HTTP_PARSE_TARGET ? 414 : 431);
            answer(connection);
            return;
        }
        ssize_t n = recv(connection->fd, connection->received + connection->received_len,
                         sizeof connection->received - connection->received_len, 0);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
        if (n <= 0) { /* the peer left before finishing its request */
            close_connection(connection);
            return;
        }
        connection->received_len += (uint32_t)n;
        if (http_parse(request, connection->received, connection->received_len) >=
            HTTP_PARSE_DONE) {
            answer(connection);
            return;
        }
    }
}

static void open_connection(kci_monitor *monitor, http_connection *connection, int fd,
                            const struct sockaddr_storage *address)
{
    assert(!connection->in_use);
    *connection = (http_connection){.source.kind = KCI_SOURCE_HTTP_CONNECTION,
                                    .monitor = monitor,
                                    .in_use = true,
                                    .fd = fd,
                                    .deadline_ms = monitor->server->now_ms + HTTP_READ_TIMEOUT_MS};
    const void *ip = address->ss_family == AF_INET6
                         ? (const void *)&((const struct sockaddr_in6 *)address)->sin6_addr
                         : (const void *)&((const struct sockaddr_in *)address)->sin_addr;
    inet_ntop(address->ss_family, ip, connection->ip, sizeof connection->ip);
    connection->port =
        ntohs(address->ss_family == AF_INET6 ? ((const struct sockaddr_in6 *)address)->sin6_port
                                             : ((const struct sockaddr_in *)address)->sin_port);
    monitor->connection_count++;
    struct epoll_event event = {.events = EPOLLIN, .data.ptr = &connection->source};
    if (epoll_ctl(monitor->server->epoll_fd, EPOLL_CTL_ADD, fd, &event) != 0) {
        close_connection(connection);
        return;
    }
    read_request(connection); /* the request often came with the handshake */
}

static http_connection *free_slot(kci_monitor *monitor)
{
    if (monitor->connection_count >= HTTP_CONNECTIONS_MAX) return NULL;
    for (uint32_t i = 0; i < HTTP_CONNECTIONS_MAX; i++)
        if (!monitor->connections[i].in_use) return &monitor->connections[i];
    assert(false && "connection_count disagrees with the pool");
    return NULL;
}

static void accept_connections(kci_monitor *monitor)
{
    for (int i = 0; i < HTTP_ACCEPTS_PER_WAKEUP_MAX; i++) {
        struct sockaddr_storage address = {0};
        socklen_t address_len = sizeof address;
        int fd = accept4(monitor->listen_fd, (struct sockaddr *)&address, &address_len,
                         SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
                kci_error("http monitor: accept failed: %s", strerror(errno));
            return;
        }
        http_connection *connection = free_slot(monitor);
        if (connection != NULL) {
            open_connection(monitor, connection, fd, &address);
            continue;
        }
        /* Best effort: a fresh socket's buffer takes these few bytes. */
        kci_debug("http monitor: %d connections open, refusing one", HTTP_CONNECTIONS_MAX);
        ssize_t ignored =
            send(fd, BUSY_RESPONSE, sizeof BUSY_RESPONSE - 1, MSG_NOSIGNAL | MSG_DONTWAIT);
        (void)ignored;
        close(fd);
    }
}

/* ---- API ------------------------------------------------------------------ */

static kc_err bind_listener(kci_monitor *monitor, int port, char *error, size_t error_size)
{
    char port_text[16];
    snprintf(port_text, sizeof port_text, "%d", port);
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    struct addrinfo *found = NULL;
    int gai = getaddrinfo(monitor->host, port_text, &hints, &found);
    if (gai != 0) {
        snprintf(error, error_size, "cannot resolve http monitor address %s: %s", monitor->host,
                 gai_strerror(gai));
        return KC_ERR_CONFIG;
    }
    int fd = socket(found->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    if (fd >= 0) setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (fd < 0 || bind(fd, found->ai_addr, found->ai_addrlen) != 0 ||
        listen(fd, HTTP_LISTEN_BACKLOG) != 0) {
        snprintf(error, error_size, "cannot listen for http monitoring on %s:%s: %s", monitor->host,
                 port_text, strerror(errno));
        if (fd >= 0) close(fd);
        freeaddrinfo(found);
        return KC_ERR_IO;
    }
    freeaddrinfo(found);
    struct sockaddr_storage bound = {0};
    socklen_t bound_len = sizeof bound;
    if (getsockname(fd, (struct sockaddr *)&bound, &bound_len) != 0) {
        snprintf(error, error_size, "cannot read the http monitor address: %s", strerror(errno));
        close(fd);
        return KC_ERR_IO;
    }
    monitor->port = ntohs(bound.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&bound)->sin6_port
                                                      : ((struct sockaddr_in *)&bound)->sin_port);
    monitor->listen_fd = fd;
    return KC_OK;
}

static kc_err open_monitor(kci_monitor *monitor, char *error, size_t error_size)
{
    const kci_options *options = &monitor->server->options;
    monitor->host = strdup(text_or(options->http_host, text_or(options->host, "0.0.0.0")));
    monitor->connections = calloc(HTTP_CONNECTIONS_MAX, sizeof *monitor->connections);
    if (monitor->host == NULL || monitor->connections == NULL) return KC_ERR_NOMEM;
    kc_err err =
        bind_listener(monitor, options->http_port < 0 ? 0 : options->http_port, error, error_size);
    if (err != KC_OK) return err;
    struct epoll_event event = {.events = EPOLLIN, .data.ptr = &monitor->listener};
    if (epoll_ctl(monitor->server->epoll_fd, EPOLL_CTL_ADD, monitor->listen_fd, &event) != 0) {
        snprintf(error, error_size, "cannot watch the http monitor socket: %s", strerror(errno));
        return KC_ERR_IO;
    }
    return KC_OK;
}

kc_err kci_monitor_create(kci_server *server, kci_monitor **out, char *error, size_t error_size)
{
    assert(server != NULL && out != NULL);
    *out = NULL;
    if (server->options.http_port == 0) return KC_OK;
    kci_monitor *monitor = calloc(1, sizeof *monitor);
    if (monitor == NULL) return KC_ERR_NOMEM;
    monitor->listener.kind = KCI_SOURCE_HTTP_LISTENER;
    monitor->server = server;
    monitor->listen_fd = -1;
    kc_err err = open_monitor(monitor, error, error_size);
    if (err != KC_OK) {
        if (err == KC_ERR_NOMEM) snprintf(error, error_size, "out of memory for http monitor");
        kci_monitor_destroy(monitor);
        return err;
    }
    /* The first CPU figure then covers start-up to the first /varz. */
    monitor->cpu_sampled_ms = server->start_ms;
    bool bracket = strchr(monitor->host, ':') != NULL; /* IPv6, as host:port needs */
    kci_info("Starting http monitor on %s%s%s:%d", bracket ? "[" : "", monitor->host,
             bracket ? "]" : "", monitor->port);
    *out = monitor;
    return KC_OK;
}

void kci_monitor_on_event(kci_monitor *monitor, kci_source *source, uint32_t events)
{
    assert(monitor != NULL && source != NULL);
    if (source->kind == KCI_SOURCE_HTTP_LISTENER) {
        assert(source == &monitor->listener);
        accept_connections(monitor);
        return;
    }
    assert(source->kind == KCI_SOURCE_HTTP_CONNECTION);
    http_connection *connection = (http_connection *)source;
    if (!connection->in_use) return;
    if (connection->out != NULL)
        continue_writing(connection);
    else
        read_request(connection);
}

void kci_monitor_housekeeping(kci_monitor *monitor, int64_t now_ms)
{
    assert(monitor != NULL);
    for (uint32_t i = 0; i < HTTP_CONNECTIONS_MAX && monitor->connection_count > 0; i++) {
        http_connection *connection = &monitor->connections[i];
        if (!connection->in_use || now_ms < connection->deadline_ms) continue;
        kci_debug("%s:%u - HTTP connection closed: %s deadline passed", connection->ip,
                  (unsigned)connection->port, connection->out != NULL ? "write" : "read");
        close_connection(connection);
    }
}

int kci_monitor_port(const kci_monitor *monitor)
{
    return monitor != NULL ? monitor->port : 0;
}

void kci_monitor_destroy(kci_monitor *monitor)
{
    if (monitor == NULL) return;
    for (uint32_t i = 0; monitor->connections != NULL && i < HTTP_CONNECTIONS_MAX; i++)
        if (monitor->connections[i].in_use) close_connection(&monitor->connections[i]);
    assert(monitor->connection_count == 0);
    if (monitor->listen_fd >= 0) {
        epoll_ctl(monitor->server->epoll_fd, EPOLL_CTL_DEL, monitor->listen_fd, NULL);
        close(monitor->listen_fd);
    }
    free(monitor->connections);
    free(monitor->host);
    free(monitor);
}
