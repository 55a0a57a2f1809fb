/* metrics_http.c - /metrics on a port of its own (see metrics_http.h).
 *
 * Why not the broker's HTTP server: it runs on the broker's epoll loop,
 * which a part run alone does not have. This one is a plain thread doing
 * blocking accepts; its only state is the listening socket, and it lives
 * as long as the process (a `kcobra <part> serve` exits to stop), so it is
 * never joined. The request classifier is the only code that reads what a
 * client sent; fuzz/fuzz_metrics_request.c feeds it arbitrary bytes. */
#include "metrics_http.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "clock.h"
#include "log.h"
#include "metrics.h"
#include "net.h"

enum {
    METHOD_BYTES_MAX = 16,
    HOST_BYTES_MAX = 256,
    PORT_DIGITS_MAX = 5,
    HEAD_BYTES_MAX = 256, /* the status line and headers of an answer */
};

/* ---- the request ---------------------------------------------------------------- */

/* Where the head ends (after its blank line), or 0 if it has not. */
static size_t head_end(const char *bytes, size_t len)
{
    for (size_t i = 0; i + 1 < len; i++) {
        if (bytes[i] != '\n') continue;
        if (bytes[i + 1] == '\n') return i + 2;
        if (i + 2 < len && bytes[i + 1] == '\r' && bytes[i + 2] == '\n') return i + 3;
    }
    return 0;
}

static bool is_version(const char *at, size_t len)
{
    return len == 8 && memcmp(at, "HTTP/1.", 7) == 0 && at[7] >= '0' && at[7] <= '9';
}

/* "METHOD SP /target SP HTTP/1.x" then CR LF or LF. */
kci_metrics_request kci_metrics_request_classify(const char *bytes, size_t len)
{
    if (len > KCI_METRICS_HTTP_REQUEST_BYTES_MAX) len = KCI_METRICS_HTTP_REQUEST_BYTES_MAX;
    size_t end = head_end(bytes, len);
    if (end == 0)
        return len == KCI_METRICS_HTTP_REQUEST_BYTES_MAX ? KCI_METRICS_REQUEST_BAD
                                                         : KCI_METRICS_REQUEST_INCOMPLETE;
    const char *line_end = memchr(bytes, '\n', end);
    size_t line_len = (size_t)(line_end - bytes);
    if (line_len > 0 && bytes[line_len - 1] == '\r') line_len--;
    size_t method_len = 0;
    while (method_len < line_len && bytes[method_len] >= 'A' && bytes[method_len] <= 'Z')
        method_len++;
    if (method_len == 0 || method_len > METHOD_BYTES_MAX || method_len == line_len ||
        bytes[method_len] != ' ')
        return KCI_METRICS_REQUEST_BAD;
    const char *target = bytes + method_len + 1;
    size_t target_len = 0, rest = line_len - method_len - 1;
    while (target_len < rest && target[target_len] > ' ' && target[target_len] < 0x7f)
        target_len++;
    if (target_len == 0 || target[0] != '/' || target_len == rest || target[target_len] != ' ' ||
        !is_version(target + target_len + 1, rest - target_len - 1))
        return KCI_METRICS_REQUEST_BAD;
    bool get = method_len == 3 && memcmp(bytes, "GET", 3) == 0;
    bool head = method_len == 4 && memcmp(bytes, "HEAD", 4) == 0;
    if (!get && !head) return KCI_METRICS_REQUEST_METHOD;
    const char *query = memchr(target, '?', target_len);
    size_t path_len = query != NULL ? (size_t)(query - target) : target_len;
    if (path_len != strlen("/metrics") || memcmp(target, "/metrics", path_len) != 0)
        return KCI_METRICS_REQUEST_NOT_FOUND;
    return get ? KCI_METRICS_REQUEST_GET : KCI_METRICS_REQUEST_HEAD;
}

/* ---- one connection --------------------------------------------------------------- */

static void send_all(int fd, const char *bytes, size_t len)
{
    while (len > 0) {
        ssize_t sent = send(fd, bytes, len, MSG_NOSIGNAL);
        if (sent <= 0 && errno == EINTR) continue;
        if (sent <= 0) return; /* gone or too slow (SO_SNDTIMEO): nothing more to do */
        bytes += sent;
        len -= (size_t)sent;
    }
}

static void answer(int fd, int status, const char *reason, const char *type, const char *body,
                   size_t body_len, bool with_body)
{
    char head[HEAD_BYTES_MAX];
    int head_len = snprintf(head, sizeof head,
                            "HTTP/1.0 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
                            "Connection: close\r\n\r\n",
                            status, reason, type, body_len);
    send_all(fd, head, (size_t)head_len);
    if (with_body) send_all(fd, body, body_len);
}

static void answer_metrics(int fd, bool with_body)
{
    kci_metrics_text text = {0};
    kci_metrics_write_registered(&text);
    size_t len = 0;
    char *body = kci_metrics_text_take(&text, &len);
    if (body == NULL)
        answer(fd, 500, "Internal Server Error", "text/plain", "out of memory\n", 14, with_body);
    else
        answer(fd, 200, "OK", KCI_METRICS_CONTENT_TYPE, body, len, with_body);
    free(body);
}

/* Reads the head within KCI_METRICS_HTTP_CLIENT_MS in all, then answers. */
static void serve_connection(int fd)
{
    struct timeval timeout = {.tv_sec = KCI_METRICS_HTTP_CLIENT_MS / 1000,
                              .tv_usec = (KCI_METRICS_HTTP_CLIENT_MS % 1000) * 1000};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof timeout);
    static char request[KCI_METRICS_HTTP_REQUEST_BYTES_MAX]; /* one connection at a time */
    size_t len = 0;
    int64_t deadline_ms = kci_monotonic_ms() + KCI_METRICS_HTTP_CLIENT_MS;
    kci_metrics_request kind = KCI_METRICS_REQUEST_INCOMPLETE;
    while (kind == KCI_METRICS_REQUEST_INCOMPLETE && kci_monotonic_ms() < deadline_ms) {
        ssize_t got = recv(fd, request + len, sizeof request - len, 0);
        if (got < 0 && errno == EINTR) continue;
        if (got <= 0) return; /* closed, failed or silent past the timeout */
        len += (size_t)got;
        kind = kci_metrics_request_classify(request, len);
    }
    switch (kind) {
    case KCI_METRICS_REQUEST_GET: answer_metrics(fd, true); break;
    case KCI_METRICS_REQUEST_HEAD: answer_metrics(fd, false); break;
    case KCI_METRICS_REQUEST_NOT_FOUND:
        answer(fd, 404, "Not Found", "text/plain", "not found: try /metrics\n", 24, true);
        break;
    case KCI_METRICS_REQUEST_METHOD:
        answer(fd, 405, "Method Not Allowed", "text/plain", "method not allowed\n", 19, true);
        break;
    case KCI_METRICS_REQUEST_BAD:
        answer(fd, 400, "Bad Request", "text/plain", "bad request\n", 12, true);
        break;
    case KCI_METRICS_REQUEST_INCOMPLETE: break; /* too slow: closed without an answer */
    }
}

static void *serve_main(void *argument)
{
    int listen_fd = (int)(intptr_t)argument;
    for (;;) {
        struct pollfd readable = {.fd = listen_fd, .events = POLLIN};
        if (poll(&readable, 1, -1) <= 0) continue;
        int fd = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EMFILE || errno == ENFILE) usleep(100 * 1000); /* let others close */
            continue;
        }
        serve_connection(fd);
        close(fd);
    }
    return NULL;
}

/* ---- starting --------------------------------------------------------------------- */

/* "HOST:PORT", "[V6]:PORT", ":PORT" or "PORT"; no host: 127.0.0.1. */
static bool split_listen(const char *listen, char host[HOST_BYTES_MAX], int *port)
{
    const char *colon = strrchr(listen, ':');
    const char *port_text = colon != NULL ? colon + 1 : listen;
    size_t host_len = colon != NULL ? (size_t)(colon - listen) : 0;
    const char *host_text = listen;
    if (host_len >= 2 && listen[0] == '[' && listen[host_len - 1] == ']')
        host_text++, host_len -= 2;
    if (host_len >= HOST_BYTES_MAX) return false;
    if (host_len == 0)
        snprintf(host, HOST_BYTES_MAX, "127.0.0.1");
    else
        snprintf(host, HOST_BYTES_MAX, "%.*s", (int)host_len, host_text);
    size_t digits = strlen(port_text);
    if (digits == 0 || digits > PORT_DIGITS_MAX || strspn(port_text, "0123456789") != digits)
        return false;
    *port = atoi(port_text);
    return *port <= 65535;
}

kc_err kci_metrics_http_start(const char *listen, int *port_out, char *error, size_t error_size)
{
    char host[HOST_BYTES_MAX];
    int port = 0;
    if (listen == NULL || !split_listen(listen, host, &port)) {
        snprintf(error, error_size, "--metrics-listen '%s' is not HOST:PORT or :PORT",
                 listen != NULL ? listen : "");
        return KC_ERR_INVALID_ARGUMENT;
    }
    int fd = -1, bound = 0;
    kc_err err = kci_listen_tcp(host, port, KCI_METRICS_HTTP_BACKLOG, "metrics", &fd, &bound, error,
                                error_size);
    if (err != KC_OK) return err;
    pthread_t thread;
    if (pthread_create(&thread, NULL, serve_main, (void *)(intptr_t)fd) != 0) {
        close(fd);
        snprintf(error, error_size, "cannot start the metrics thread");
        return KC_ERR_NOMEM;
    }
    pthread_detach(thread);
    kci_info("metrics: serving /metrics on %s:%d", host, bound);
    bool loopback =
        strncmp(host, "127.", 4) == 0 || strcmp(host, "::1") == 0 || strcmp(host, "localhost") == 0;
    if (!loopback)
        kci_warn("metrics: /metrics on %s is reachable beyond this host, without authentication",
                 host);
    if (port_out != NULL) *port_out = bound;
    return KC_OK;
}
