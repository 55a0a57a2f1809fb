/* kcobra_stats.c - `kcobra stats`: GET /varz from a server's monitoring port
 * (kcobrad's or nats-server's: the same JSON) and print a summary, or the
 * object as received with --json.
 *
 * The HTTP client is the least that works: one HTTP/1.0 GET over a TCP
 * socket (IPv4 or IPv6, via getaddrinfo), the answer read to the server's
 * close (or to Content-Length bytes of body), bounded by
 * STATS_RESPONSE_BYTES_MAX and by --timeout for the whole exchange. The
 * status line must say 200. No TLS, no redirects, no chunked encoding (an
 * HTTP/1.0 request does not get one). */
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "common/clock.h"
#include "kcobra_common.h"

#define STATS_PATH "/varz"

static const char STATS_TIMED_OUT[] = "timed out";

enum {
    STATS_RESPONSE_BYTES_MAX = 1024 * 1024, /* /varz is about 1.5 KiB */
    STATS_HOST_BYTES_MAX = 256,
    STATS_PORT_BYTES_MAX = 8,
    STATS_PATH_BYTES_MAX = 256,
    STATS_REQUEST_BYTES_MAX = 1024,
    STATS_STATUS_OK = 200,
    STATS_SIZE_TEXT_BYTES = 32,
    STATS_MONITOR_PORT_DEFAULT = 8222, /* nats-server's and etc/kcobrad.conf's http_port */
    STATS_NATS_PORT_DEFAULT = 4222,
};

typedef struct stats_url {
    char host[STATS_HOST_BYTES_MAX];
    char port[STATS_PORT_BYTES_MAX];
    char base_path[STATS_PATH_BYTES_MAX]; /* "" or "/prefix" without the trailing slash */
} stats_url;

/* ===================================================================== URL */

/* http://host[:port][/base]; [v6] hosts in brackets; the port defaults to 80. */
static bool url_parse(const char *text, stats_url *out)
{
    memset(out, 0, sizeof *out);
    const char *scheme = "http://";
    if (strncmp(text, scheme, strlen(scheme)) == 0)
        text += strlen(scheme);
    else if (strstr(text, "://") != NULL)
        return false;
    const char *host_end;
    const char *host = text;
    if (*text == '[') {
        host = text + 1;
        host_end = strchr(host, ']');
        if (host_end == NULL) return false;
        text = host_end + 1;
    } else {
        host_end = host + strcspn(host, ":/");
        text = host_end;
    }
    size_t host_length = (size_t)(host_end - host);
    if (host_length == 0 || host_length >= sizeof out->host) return false;
    memcpy(out->host, host, host_length);
    snprintf(out->port, sizeof out->port, "80");
    if (*text == ':') {
        size_t port_length = strspn(text + 1, "0123456789");
        if (port_length == 0 || port_length >= sizeof out->port) return false;
        memcpy(out->port, text + 1, port_length);
        out->port[port_length] = '\0';
        text += 1 + port_length;
    }
    if (*text != '\0' && *text != '/') return false;
    size_t path_length = strlen(text);
    while (path_length > 0 && text[path_length - 1] == '/')
        path_length--;
    if (path_length >= sizeof out->base_path) return false;
    memcpy(out->base_path, text, path_length);
    return true;
}

/* ================================================================= socket */

static int wait_fd(int fd, short events, int64_t deadline_ms)
{
    for (;;) {
        int64_t remaining_ms = deadline_ms - kci_monotonic_ms();
        if (remaining_ms <= 0) return 0;
        struct pollfd entry = {.fd = fd, .events = events, .revents = 0};
        int ready = poll(&entry, 1, (int)remaining_ms);
        if (ready < 0 && errno == EINTR) continue;
        return ready;
    }
}

/* Connects to one address: 0 and *fd_out, or an errno value. */
static int connect_one(const struct addrinfo *address, int64_t deadline_ms, int *fd_out)
{
    int fd = socket(address->ai_family, address->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
                    address->ai_protocol);
    if (fd < 0) return errno;
    int error = 0;
    socklen_t error_size = sizeof error;
    if (connect(fd, address->ai_addr, address->ai_addrlen) != 0 && errno != EINPROGRESS) {
        error = errno;
    } else if (wait_fd(fd, POLLOUT, deadline_ms) <= 0) {
        error = ETIMEDOUT;
    } else if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &error_size) != 0) {
        error = EIO;
    }
    if (error != 0) {
        close(fd);
        return error;
    }
    *fd_out = fd;
    return 0;
}

/* A connected non-blocking socket, or -1 with *timed_out telling why. */
static int tcp_connect(const stats_url *url, int64_t deadline_ms, bool *timed_out)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    struct addrinfo *addresses = NULL;
    *timed_out = false;
    int gai = getaddrinfo(url->host, url->port, &hints, &addresses);
    if (gai != 0) {
        kcobra_error("cannot resolve %s: %s", url->host, gai_strerror(gai));
        return -1;
    }
    int fd = -1;
    int error = EADDRNOTAVAIL; /* no address at all */
    for (const struct addrinfo *address = addresses; address != NULL && fd < 0;
         address = address->ai_next)
        error = connect_one(address, deadline_ms, &fd);
    freeaddrinfo(addresses);
    if (fd < 0) {
        *timed_out = error == ETIMEDOUT;
        kcobra_error("cannot connect to the monitoring port %s:%s: %s", url->host, url->port,
                     strerror(error));
    }
    return fd;
}

static bool send_all(int fd, const char *bytes, size_t length, int64_t deadline_ms)
{
    size_t sent = 0;
    while (sent < length) {
        if (wait_fd(fd, POLLOUT, deadline_ms) <= 0) return false;
        ssize_t wrote = send(fd, bytes + sent, length - sent, MSG_NOSIGNAL);
        if (wrote < 0 && (errno == EAGAIN || errno == EINTR)) continue;
        if (wrote < 0) return false;
        sent += (size_t)wrote;
    }
    return true;
}

/* Reads until the peer closes; NULL, or why not (timeout, error, too much). */
static const char *receive_all(int fd, kcobra_buffer *out, int64_t deadline_ms)
{
    memset(out, 0, sizeof *out);
    out->bytes = malloc(STATS_RESPONSE_BYTES_MAX + 1);
    if (out->bytes == NULL) return "out of memory";
    out->heap = true;
    for (;;) {
        int ready = wait_fd(fd, POLLIN, deadline_ms);
        if (ready == 0) return STATS_TIMED_OUT;
        if (ready < 0) return strerror(errno);
        ssize_t got = recv(fd, out->bytes + out->length, STATS_RESPONSE_BYTES_MAX - out->length, 0);
        if (got < 0 && (errno == EAGAIN || errno == EINTR)) continue;
        if (got < 0) return strerror(errno);
        if (got == 0) break;
        out->length += (size_t)got;
        assert(out->length <= STATS_RESPONSE_BYTES_MAX);
        if (out->length == STATS_RESPONSE_BYTES_MAX) return "the answer is too large";
    }
    out->bytes[out->length] = '\0';
    return NULL;
}

/* ============================================================ HTTP answer */

/* Checks "HTTP/1.x 200 ..." and finds the body (Content-Length honoured
 * when present). */
static int http_body(const kcobra_buffer *response, const char *base_path, const char **body,
                     size_t *body_length)
{
    int status_code = 0;
    if (sscanf(response->bytes, "HTTP/1.%*1[01] %3d", &status_code) != 1) {
        kcobra_error("the monitoring port did not answer HTTP");
        return KCOBRA_EXIT_FAILURE;
    }
    const char *end = strstr(response->bytes, "\r\n\r\n");
    if (end == NULL) {
        kcobra_error("the HTTP answer has no end of headers");
        return KCOBRA_EXIT_FAILURE;
    }
    *body = end + 4;
    *body_length = response->length - (size_t)(*body - response->bytes);
    if (status_code != STATS_STATUS_OK) {
        int line_length = (int)strcspn(response->bytes, "\r\n");
        kcobra_error("GET %s" STATS_PATH " answered '%.*s'", base_path, line_length,
                     response->bytes);
        return KCOBRA_EXIT_FAILURE;
    }
    const char *length_header = strcasestr(response->bytes, "\r\nContent-Length:");
    if (length_header != NULL && length_header < end) {
        unsigned long long declared = strtoull(length_header + 17, NULL, 10);
        if (declared < *body_length) *body_length = (size_t)declared;
    }
    return KCOBRA_EXIT_OK;
}

static int http_get_varz(const stats_url *url, int64_t timeout_ms, kcobra_buffer *response)
{
    int64_t deadline_ms = kci_monotonic_ms() + timeout_ms;
    bool timed_out = false;
    int fd = tcp_connect(url, deadline_ms, &timed_out);
    if (fd < 0) return timed_out ? KCOBRA_EXIT_TIMEOUT : KCOBRA_EXIT_CONNECT;
    char request[STATS_REQUEST_BYTES_MAX];
    int request_length = snprintf(request, sizeof request,
                                  "GET %s" STATS_PATH " HTTP/1.0\r\nHost: %s:%s\r\n"
                                  "User-Agent: kcobra/" KC_VERSION "\r\nAccept: application/json"
                                  "\r\nConnection: close\r\n\r\n",
                                  url->base_path, url->host, url->port);
    const char *why = "cannot send the request";
    memset(response, 0, sizeof *response);
    if (request_length > 0 && (size_t)request_length < sizeof request &&
        send_all(fd, request, (size_t)request_length, deadline_ms))
        why = receive_all(fd, response, deadline_ms);
    close(fd);
    if (why == NULL) return KCOBRA_EXIT_OK;
    kcobra_error("GET %s" STATS_PATH " from %s:%s failed: %s", url->base_path, url->host, url->port,
                 why);
    kcobra_buffer_free(response);
    return why == STATS_TIMED_OUT ? KCOBRA_EXIT_TIMEOUT : KCOBRA_EXIT_FAILURE;
}

/* ================================================================== output */

static void format_bytes(json_int_t bytes, char text[STATS_SIZE_TEXT_BYTES])
{
    static const char *const UNITS[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    double value = (double)bytes;
    size_t unit = 0;
    while (value >= 1024 && unit + 1 < sizeof UNITS / sizeof UNITS[0]) {
        value /= 1024;
        unit++;
    }
    if (unit == 0)
        snprintf(text, STATS_SIZE_TEXT_BYTES, "%lld B", (long long)bytes);
    else
        snprintf(text, STATS_SIZE_TEXT_BYTES, "%.1f %s", value, UNITS[unit]);
}

static json_int_t integer_field(const json_t *varz, const char *key)
{
    const json_t *value = json_object_get(varz, key);
    if (json_is_integer(value)) return json_integer_value(value);
    if (json_is_real(value)) return (json_int_t)json_real_value(value);
    return 0;
}

static const char *string_field(const json_t *varz, const char *key)
{
    const char *value = json_string_value(json_object_get(varz, key));
    return value != NULL ? value : "-";
}

static int print_summary(const json_t *varz)
{
    char in_bytes[STATS_SIZE_TEXT_BYTES], out_bytes[STATS_SIZE_TEXT_BYTES];
    char memory[STATS_SIZE_TEXT_BYTES];
    format_bytes(integer_field(varz, "in_bytes"), in_bytes);
    format_bytes(integer_field(varz, "out_bytes"), out_bytes);
    format_bytes(integer_field(varz, "mem"), memory);
    const char *name = string_field(varz, "server_name");
    const char *id = string_field(varz, "server_id");
    if (strcmp(name, id) == 0)
        printf("%-20s %s\n", "Server:", id);
    else
        printf("%-20s %s (%s)\n", "Server:", name, id);
    printf("%-20s %s\n", "Version:", string_field(varz, "version"));
    printf("%-20s %s\n", "Uptime:", string_field(varz, "uptime"));
    printf("%-20s %lld\n", "Connections:", (long long)integer_field(varz, "connections"));
    printf("%-20s %lld\n",
           "Total connections:", (long long)integer_field(varz, "total_connections"));
    printf("%-20s %lld\n", "Subscriptions:", (long long)integer_field(varz, "subscriptions"));
    printf("%-20s %lld in, %lld out\n", "Messages:", (long long)integer_field(varz, "in_msgs"),
           (long long)integer_field(varz, "out_msgs"));
    printf("%-20s %s in, %s out\n", "Bytes:", in_bytes, out_bytes);
    printf("%-20s %lld\n", "Slow consumers:", (long long)integer_field(varz, "slow_consumers"));
    printf("%-20s %s\n", "Memory:", memory);
    return fflush(stdout) == 0 ? KCOBRA_EXIT_OK : KCOBRA_EXIT_FAILURE;
}

static int stats_print(const char *body, size_t body_length, bool json)
{
    json_error_t parse_error;
    json_t *varz = json_loadb(body, body_length, 0, &parse_error);
    if (!json_is_object(varz)) {
        kcobra_error("/varz is not a JSON object: %s",
                     varz == NULL ? parse_error.text : "another JSON value");
        json_decref(varz);
        return KCOBRA_EXIT_FAILURE;
    }
    int status;
    if (json) { /* one object a line, as every --json of kcobra: lines for jq and logs */
        status =
            json_dumpf(varz, stdout, JSON_COMPACT) == 0 && printf("\n") > 0 && fflush(stdout) == 0
                ? KCOBRA_EXIT_OK
                : KCOBRA_EXIT_FAILURE;
    } else {
        status = print_summary(varz);
    }
    json_decref(varz);
    return status;
}

/* ================================================================= command */

static const char STATS_DESCRIPTION[] =
    "Reads /varz from a server's HTTP monitoring port (kcobrad -m PORT, or nats-server's)\n"
    "and prints server, version, uptime, connections, subscriptions, messages and bytes\n"
    "in and out, slow consumers and memory. --json prints the /varz object on one line.\n"
    "--timeout bounds the whole exchange. Without --monitor it asks port 8222 on\n"
    "--server's host (KCOBRA_SERVER); when --server or KCOBRA_SERVER is given, a /varz\n"
    "whose port is not --server's is refused, never printed as if it were its.\n"
    "\n"
    "Examples:\n"
    "  kcobra stats --server nats://10.0.0.5:4222\n"
    "  kcobra stats --monitor http://10.0.0.5:8222 --json\n";

/* The first URL of --server (or KCOBRA_SERVER): its host and its port. */
static bool server_address(const char *servers, stats_url *out)
{
    memset(out, 0, sizeof *out);
    size_t length = strcspn(servers, ",");
    const char *scheme_end = strstr(servers, "://");
    const char *start = scheme_end != NULL && (size_t)(scheme_end - servers) < length
                            ? scheme_end + strlen("://")
                            : servers;
    const char *end = servers + length;
    const char *at = memchr(start, '@', (size_t)(end - start));
    if (at != NULL) start = at + 1; /* user:password@ */
    while (end > start && end[-1] == ' ')
        end--;
    while (start < end && *start == ' ')
        start++;
    const char *colon = end;
    while (colon > start && colon[-1] != ':' && colon[-1] != ']')
        colon--;
    bool has_port = colon > start && colon[-1] == ':';
    const char *host_end = has_port ? colon - 1 : end;
    size_t host_length = (size_t)(host_end - start);
    size_t port_length = has_port ? (size_t)(end - colon) : 0;
    if (host_length == 0 || host_length >= sizeof out->host || port_length >= sizeof out->port)
        return false;
    memcpy(out->host, start, host_length);
    if (has_port)
        memcpy(out->port, colon, port_length);
    else
        snprintf(out->port, sizeof out->port, "%d", STATS_NATS_PORT_DEFAULT);
    return true;
}

/* /varz of another server than --server is refused, never printed: the
 * monitoring port of a server names its client port. */
static int stats_check_server(const char *body, size_t body_length, const char *monitor,
                              const stats_url *server)
{
    json_t *varz = json_loadb(body, body_length, 0, NULL);
    json_t *port = json_object_get(varz, "port");
    int status = KCOBRA_EXIT_OK;
    if (json_is_integer(port) && json_integer_value(port) != atoll(server->port)) {
        kcobra_error("the monitoring port %s belongs to the server on port %lld, not to "
                     "--server's %s:%s: give the server's own --monitor URL",
                     monitor, (long long)json_integer_value(port), server->host, server->port);
        status = KCOBRA_EXIT_FAILURE;
    }
    json_decref(varz);
    return status;
}

static int run_stats(const kcobra_command *command, int argc, char **argv)
{
    const char *monitor = NULL;
    const kcobra_flag flags[] = {
        {"monitor", "URL", KCOBRA_FLAG_STRING, &monitor,
         "the monitoring port (default: --server's host, port 8222)"},
    };
    kcobra_invocation invocation;
    int status = kcobra_parse(command, flags, KCOBRA_ARRAY_COUNT(flags), argc, argv, &invocation);
    if (status != KCOBRA_EXIT_OK || invocation.help) return status;
    stats_url server, url;
    bool server_given = strcmp(invocation.common.server, KCOBRA_SERVER_DEFAULT) != 0;
    if (!server_address(invocation.common.server, &server))
        return kcobra_usage_error(command, "invalid --server '%s'", invocation.common.server);
    char derived[STATS_HOST_BYTES_MAX + 32];
    if (monitor == NULL) { /* --server's host: never another machine's server */
        bool v6 = strchr(server.host, ':') != NULL && server.host[0] != '[';
        snprintf(derived, sizeof derived, "http://%s%s%s:%d", v6 ? "[" : "", server.host,
                 v6 ? "]" : "", STATS_MONITOR_PORT_DEFAULT);
        monitor = derived;
    }
    if (!url_parse(monitor, &url))
        return kcobra_usage_error(command, "invalid --monitor URL '%s': expected http://host:port",
                                  monitor);
    kcobra_buffer response;
    status = http_get_varz(&url, invocation.common.timeout_ms, &response);
    if (status != KCOBRA_EXIT_OK && monitor == derived)
        fprintf(stderr, "kcobra: (the monitoring port was guessed from --server; give "
                        "--monitor URL)\n");
    if (status != KCOBRA_EXIT_OK) return status;
    const char *body = NULL;
    size_t body_length = 0;
    status = http_body(&response, url.base_path, &body, &body_length);
    if (status == KCOBRA_EXIT_OK && (server_given || monitor == derived))
        status = stats_check_server(body, body_length, monitor, &server);
    if (status == KCOBRA_EXIT_OK) status = stats_print(body, body_length, invocation.common.json);
    kcobra_buffer_free(&response);
    return status;
}

const kcobra_command kcobra_command_stats = {
    .name = "stats",
    .synopsis = "stats [--monitor URL] [--server URL]",
    .summary = "print a server's statistics from its monitoring port (/varz)",
    .description = STATS_DESCRIPTION,
    .run = run_stats,
    .positional_min = 0,
    .positional_max = 0,
};
