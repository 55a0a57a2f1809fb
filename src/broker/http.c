/* http.c - the HTTP/1.x request parser and the one-request-per-connection
 * server that monitoring runs on (see http.h).
 *
 * Parser: one switch per byte over a state that names what has been matched;
 * it records offsets into the caller's buffer, so it allocates nothing and
 * a request split across reads needs no scratch copy. The buffer bound
 * (KCI_HTTP_REQUEST_BYTES_MAX) is the parser's own, so a connection's
 * buffer of that size can never fill with an unfinished request.
 *
 * Server: runs on the broker's epoll loop, not a thread, because what it
 * serves reads single-threaded broker state. A connection lives in a slot of
 * a fixed pool; its request is read into the slot's buffer and fed to the
 * parser as it grows. Once the request is complete (or refused) the handler
 * fills a response, which is rendered whole into one buffer, head and body,
 * and written as fast as the socket takes it (EPOLLOUT when it would
 * block). Then the connection is closed (Connection: close, Content-Length).
 *
 * Bounds: HTTP_CONNECTIONS_MAX connections at once, requests of at most
 * KCI_HTTP_REQUEST_BYTES_MAX, HTTP_HEAD_TIMEOUT_MS to send the whole request
 * and HTTP_WRITE_TIMEOUT_MS at most between two writes of the answer; the
 * housekeeping tick closes connections past their deadline.
 *
 * Slow clients cannot hold the slots: when all are taken, a new connection
 * takes the slot of the oldest one still sending its request (that client
 * had the longest time to finish and has not), so a client that sends its
 * request at once, such as an orchestrator's /healthz probe, is always
 * served. Only when every slot is writing an answer does a new connection
 * get 503. A limit per address would not do: probes and attackers may share
 * one (a NAT, a sidecar, loopback), and an attacker may have many.
 * If accept(2) fails for want of descriptors or memory, the listener is
 * left out of epoll until the next housekeeping tick instead of spinning.
 *
 * HTTPS (kci_http_server_set_tls) runs the same steps through OpenSSL on
 * the same non-blocking socket: the handshake happens inside the first
 * reads.
 *
 * Known limits: no keep-alive, no request bodies (GET and HEAD only);
 * headers are counted by the parser and read by name only on demand
 * (http_header.h). The server's own error bodies
 * (503, 500) are JSON, as the monitor's are. */
#include "http.h"

#include <arpa/inet.h>
#include <assert.h>
#include <errno.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "common/net.h"

enum {
    HTTP_CONNECTIONS_MAX = 64,
    HTTP_ACCEPTS_PER_WAKEUP_MAX = 64,
    HTTP_LISTEN_BACKLOG = 128,
    HTTP_HEAD_BYTES_MAX = 512,
    HTTP_HEAD_TIMEOUT_MS = 2 * 1000, /* to send the request line and headers */
    HTTP_WRITE_TIMEOUT_MS = 10 * 1000,
    HTTP_DRAIN_READS_MAX = 4,
    DATE_TEXT_BYTES = 48,
};

static const char INTERNAL_ERROR_BODY[] = "{\"error\": \"internal error\"}";
#define BUSY_BODY "{\"error\": \"too many monitor connections\"}"
static const char BUSY_RESPONSE[] = "HTTP/1.1 503 Service Unavailable\r\n"
                                    "Content-Type: application/json\r\n"
                                    "Content-Length: 41\r\n"
                                    "Connection: close\r\n\r\n" BUSY_BODY;
_Static_assert(sizeof BUSY_BODY - 1 == 41, "BUSY_RESPONSE's Content-Length is its body's");

/* ---- the request parser --------------------------------------------------- */

static void parse_fail(kci_http_request *request, int status)
{
    request->state = KCI_HTTP_PARSE_FAILED;
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

static void parse_method_byte(kci_http_request *request, uint8_t byte)
{
    if (request->method_len == 0 && (byte == '\r' || byte == '\n')) {
        request->method_start = request->position + 1; /* tolerated leading blank lines */
    } else if (is_token_byte(byte)) {
        if (++request->method_len > KCI_HTTP_METHOD_BYTES_MAX) parse_fail(request, 400);
    } else if (byte == ' ' && request->method_len > 0) {
        request->state = KCI_HTTP_PARSE_TARGET;
        request->target_start = request->position + 1;
    } else {
        parse_fail(request, 400);
    }
}

/* Splits the target at its first '?' (later ones belong to the query). */
static void parse_end_target(kci_http_request *request)
{
    uint32_t target_end = request->target_start + request->target_len;
    if (request->query_start == 0) {
        request->path_len = request->target_len;
        request->query_start = target_end;
    } else {
        request->path_len = request->query_start - 1 - request->target_start;
        request->query_len = target_end - request->query_start;
    }
    assert(request->path_len + request->query_len <= request->target_len);
    request->state = KCI_HTTP_PARSE_VERSION;
    request->version_start = request->position + 1;
}

static void parse_target_byte(kci_http_request *request, uint8_t byte)
{
    if (byte == ' ' && request->target_len > 0)
        parse_end_target(request);
    else if (!is_visible_byte(byte))
        parse_fail(request, 400);
    else if (++request->target_len > KCI_HTTP_TARGET_BYTES_MAX)
        parse_fail(request, 414);
    else if (byte == '?' && request->query_start == 0)
        request->query_start = request->position + 1;
}

/* Only HTTP/1.x: 0.9 has no version (caught as a missing one), 2 and 3
 * never arrive in plain text on a fresh connection. */
static void parse_end_request_line(kci_http_request *request, const char *bytes)
{
    const char *version = bytes + request->version_start;
    if (request->version_len != KCI_HTTP_VERSION_BYTES || memcmp(version, "HTTP/", 5) != 0) {
        parse_fail(request, 400);
        return;
    }
    if (memcmp(version + 5, "1.", 2) != 0 || version[7] < '0' || version[7] > '9') {
        parse_fail(request, 505);
        return;
    }
    request->state = KCI_HTTP_PARSE_LINE_START;
}

static void parse_version_byte(kci_http_request *request, const char *bytes, uint8_t byte)
{
    if (byte == '\r')
        request->state = KCI_HTTP_PARSE_REQUEST_LINE_CR;
    else if (byte == '\n')
        parse_end_request_line(request, bytes);
    else if (!is_visible_byte(byte) || ++request->version_len > KCI_HTTP_VERSION_BYTES)
        parse_fail(request, 400);
}

static void parse_request_line_byte(kci_http_request *request, const char *bytes, uint8_t byte)
{
    switch (request->state) {
    case KCI_HTTP_PARSE_METHOD: parse_method_byte(request, byte); break;
    case KCI_HTTP_PARSE_TARGET: parse_target_byte(request, byte); break;
    case KCI_HTTP_PARSE_VERSION: parse_version_byte(request, bytes, byte); break;
    case KCI_HTTP_PARSE_REQUEST_LINE_CR:
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
static void parse_header_byte(kci_http_request *request, uint8_t byte)
{
    switch (request->state) {
    case KCI_HTTP_PARSE_LINE_START:
        if (byte == '\r') {
            request->state = KCI_HTTP_PARSE_BLANK_LINE_CR;
        } else if (byte == '\n') {
            request->state = KCI_HTTP_PARSE_DONE;
        } else if (byte == '\0' || ++request->header_line_count > KCI_HTTP_HEADER_LINES_MAX) {
            parse_fail(request, byte == '\0' ? 400 : 431);
        } else {
            request->state = KCI_HTTP_PARSE_HEADER;
        }
        break;
    case KCI_HTTP_PARSE_HEADER:
        if (byte == '\r')
            request->state = KCI_HTTP_PARSE_HEADER_CR;
        else if (byte == '\n')
            request->state = KCI_HTTP_PARSE_LINE_START;
        else if (byte == '\0')
            parse_fail(request, 400);
        break;
    case KCI_HTTP_PARSE_HEADER_CR:
        if (byte == '\n')
            request->state = KCI_HTTP_PARSE_LINE_START;
        else
            parse_fail(request, 400);
        break;
    case KCI_HTTP_PARSE_BLANK_LINE_CR:
        if (byte == '\n')
            request->state = KCI_HTTP_PARSE_DONE;
        else
            parse_fail(request, 400);
        break;
    default: assert(false && "not a header state");
    }
}

/* Judged only once the request is whole, so that any parse error is
 * answered as such rather than as 405. */
static void parse_end_request(kci_http_request *request, const char *bytes)
{
    if (!kci_http_method_is(request, bytes, "GET") && !kci_http_method_is(request, bytes, "HEAD"))
        parse_fail(request, 405);
}

/* The request limit hit before the blank line: a target that never ended
 * is the target's fault (414), anything later the headers' (431). */
static void parse_fail_over_limit(kci_http_request *request)
{
    parse_fail(request, request->state <= KCI_HTTP_PARSE_TARGET ? 414 : 431);
}

static kci_http_result parse_result(const kci_http_request *request)
{
    if (request->state == KCI_HTTP_PARSE_DONE) return KCI_HTTP_COMPLETE;
    if (request->state != KCI_HTTP_PARSE_FAILED) return KCI_HTTP_INCOMPLETE;
    assert(request->error_status >= 400 && request->error_status <= 505);
    return KCI_HTTP_FAILED;
}

void kci_http_parse_init(kci_http_request *request)
{
    assert(request != NULL);
    *request = (kci_http_request){.state = KCI_HTTP_PARSE_METHOD};
}

kci_http_result kci_http_parse_feed(kci_http_request *request, const char *bytes, size_t len)
{
    assert(request != NULL && bytes != NULL);
    assert(len >= request->position && "the buffer holds the whole request and only grows");
    size_t end = len; /* a longer buffer is refused at the limit: read no further */
    if (end > KCI_HTTP_REQUEST_BYTES_MAX) end = KCI_HTTP_REQUEST_BYTES_MAX;
    while (request->position < end && request->state < KCI_HTTP_PARSE_DONE) {
        uint8_t byte = (uint8_t)bytes[request->position];
        if (request->state < KCI_HTTP_PARSE_LINE_START)
            parse_request_line_byte(request, bytes, byte);
        else
            parse_header_byte(request, byte);
        request->position++;
        if (request->state == KCI_HTTP_PARSE_DONE)
            parse_end_request(request, bytes);
        else if (request->state < KCI_HTTP_PARSE_DONE &&
                 request->position == KCI_HTTP_REQUEST_BYTES_MAX)
            parse_fail_over_limit(request);
    }
    assert(request->position <= KCI_HTTP_REQUEST_BYTES_MAX);
    return parse_result(request);
}

bool kci_http_method_is(const kci_http_request *request, const char *bytes, const char *method)
{
    assert(request != NULL && method != NULL);
    return request->method_len == strlen(method) &&
           memcmp(bytes + request->method_start, method, request->method_len) == 0;
}

const char *kci_http_status_text(int status)
{
    switch (status) {
    case 200: return "OK";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 414: return "URI Too Long";
    case 431: return "Request Header Fields Too Large";
    case 503: return "Service Unavailable";
    case 505: return "HTTP Version Not Supported";
    default: return "Internal Server Error";
    }
}

/* ---- server types --------------------------------------------------------- */

typedef struct http_connection {
    kci_source source; /* first: epoll data points here */
    kci_http_server *http;
    bool in_use;              /* false: a free pool slot (calloc'd pool starts all free) */
    uint64_t accept_sequence; /* lower: accepted earlier (eviction order) */
    bool want_write;
    int fd;
    int64_t deadline_ms;
    char ip[INET6_ADDRSTRLEN];
    uint16_t port;
    kci_http_request request;
    uint32_t received_len;
    char received[KCI_HTTP_REQUEST_BYTES_MAX];
    char *out; /* the whole answer once rendered; NULL while reading */
    size_t out_len;
    size_t out_sent;
    SSL *ssl; /* HTTPS (kci_http_server_set_tls); NULL: plain */
} http_connection;

struct kci_http_server {
    kci_source listener; /* first: epoll data of the listening socket */
    kci_server *server;  /* for its epoll and its clock */
    kci_http_handler handler;
    void *context;
    int listen_fd;
    int port;
    http_connection *connections; /* HTTP_CONNECTIONS_MAX slots */
    uint32_t connection_count;
    uint64_t next_accept_sequence;
    bool listener_held;   /* kci_http_server_watch(false): not watched */
    bool listener_paused; /* accept(2) ran out of descriptors: not watched */
    uint64_t evicted_count;
    SSL_CTX *tls_context; /* the broker's; NULL: plain HTTP */
};

/* ---- connections ---------------------------------------------------------- */

static void close_connection(http_connection *connection)
{
    kci_http_server *http = connection->http;
    assert(connection->in_use && http->connection_count > 0);
    epoll_ctl(http->server->epoll_fd, EPOLL_CTL_DEL, connection->fd, NULL);
    /* FIN rather than RST: unread input at close() makes the kernel reset
     * the connection, and the peer could lose the answer. */
    if (connection->ssl != NULL) {
        SSL_shutdown(connection->ssl); /* best effort: a close_notify, never waited for */
        SSL_free(connection->ssl);
        ERR_clear_error();
        connection->ssl = NULL;
    }
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
    http->connection_count--;
}

static void arm_writable(http_connection *connection)
{
    if (connection->want_write) return;
    struct epoll_event event = {.events = EPOLLOUT, .data.ptr = &connection->source};
    if (epoll_ctl(connection->http->server->epoll_fd, EPOLL_CTL_MOD, connection->fd, &event) != 0) {
        close_connection(connection);
        return;
    }
    connection->want_write = true;
}

/* Moves bytes through TLS when the connection has it: > 0 bytes moved, -1
 * would block in the same direction (wait for the socket), 0 closed or
 * failed. TLS wanting the other direction (a renegotiation, a handshake
 * whose answer does not fit the socket buffer) counts as failed: the
 * connection is closed rather than its epoll interest juggled for a case
 * that a one-request connection does not meet. */
static ssize_t tls_result(SSL *ssl, int n, int would_block)
{
    if (n > 0) return n;
    int error = SSL_get_error(ssl, n);
    ERR_clear_error();
    return error == would_block ? -1 : 0;
}

static ssize_t connection_read(http_connection *connection, char *bytes, size_t len)
{
    if (connection->ssl != NULL)
        return tls_result(connection->ssl,
                          SSL_read(connection->ssl, bytes, len > INT32_MAX ? INT32_MAX : (int)len),
                          SSL_ERROR_WANT_READ);
    for (;;) {
        ssize_t n = recv(connection->fd, bytes, len, 0);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return -1;
        return n < 0 ? 0 : n;
    }
}

static ssize_t connection_write(http_connection *connection, const char *bytes, size_t len)
{
    if (connection->ssl != NULL)
        return tls_result(connection->ssl,
                          SSL_write(connection->ssl, bytes, len > INT32_MAX ? INT32_MAX : (int)len),
                          SSL_ERROR_WANT_WRITE);
    for (;;) {
        ssize_t n = send(connection->fd, bytes, len, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return -1;
        return n < 0 ? 0 : n;
    }
}

/* Writes what the socket takes; closes once all is sent or on error. */
static void continue_writing(http_connection *connection)
{
    assert(connection->out != NULL && connection->out_sent <= connection->out_len);
    while (connection->out_sent < connection->out_len) {
        ssize_t n = connection_write(connection, connection->out + connection->out_sent,
                                     connection->out_len - connection->out_sent);
        if (n > 0) {
            connection->out_sent += (size_t)n;
            /* A deadline between writes, not for the whole answer: a slow
             * reader that keeps taking bytes is served; a stuck one is not. */
            connection->deadline_ms = connection->http->server->now_ms + HTTP_WRITE_TIMEOUT_MS;
        } else if (n < 0) {
            arm_writable(connection);
            return;
        } else {
            break;
        }
    }
    close_connection(connection);
}

/* The status line and headers. Date in the C locale's day and month
 * names, which are HTTP's (the daemon never calls setlocale). */
static size_t render_head(char *head, size_t size, const kci_http_response *response,
                          size_t body_len)
{
    char date[DATE_TEXT_BYTES];
    time_t now = time(NULL);
    struct tm utc;
    gmtime_r(&now, &utc);
    strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S GMT", &utc);
    int len = snprintf(head, size,
                       "HTTP/1.1 %d %s\r\nDate: %s\r\nContent-Type: %s\r\n"
                       "Content-Length: %zu\r\n%s%sCache-Control: no-cache\r\n"
                       "Connection: close\r\n\r\n",
                       response->status, kci_http_status_text(response->status), date,
                       response->content_type, body_len,
                       response->status == 405 ? "Allow: GET, HEAD\r\n" : "",
                       response->status == 401 ? "WWW-Authenticate: Basic realm=\"kcobrad\", "
                                                 "charset=\"UTF-8\"\r\n"
                                               : "");
    assert(len > 0 && (size_t)len < size && "HTTP_HEAD_BYTES_MAX fits every head");
    return (size_t)len;
}

/* Renders head and body into one buffer (HEAD: the head alone) and starts
 * writing. Takes response->body. */
static void send_response(http_connection *connection, kci_http_response *response, bool head_only)
{
    const char *body = response->body;
    size_t body_len = response->body_len;
    if (body == NULL) { /* the handler ran out of memory */
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
    connection->deadline_ms = connection->http->server->now_ms + HTTP_WRITE_TIMEOUT_MS;
    continue_writing(connection);
}

/* A HEAD request is answered without a body even when it failed, as long
 * as its method read "HEAD". */
static void answer(http_connection *connection)
{
    const kci_http_request *request = &connection->request;
    const char *bytes = connection->received;
    kci_http_response response = {0};
    connection->http->handler(connection->http->context, request, bytes, &response);
    kci_debug("%s:%u - HTTP \"%.*s %.*s\" %d", connection->ip, (unsigned)connection->port,
              (int)request->method_len, bytes + request->method_start, (int)request->target_len,
              bytes + request->target_start, response.body ? response.status : 500);
    send_response(connection, &response, kci_http_method_is(request, bytes, "HEAD"));
}

/* Reads until the request is complete, refused, or the socket is drained.
 * The loop is bounded by the buffer: every turn adds at least one byte. */
static void read_request(http_connection *connection)
{
    for (;;) {
        /* The parser refuses a request at KCI_HTTP_REQUEST_BYTES_MAX. */
        assert(connection->received_len < sizeof connection->received);
        ssize_t n = connection_read(connection, connection->received + connection->received_len,
                                    sizeof connection->received - connection->received_len);
        if (n < 0) return; /* more later */
        if (n == 0) {      /* the peer left before finishing its request (or TLS failed) */
            close_connection(connection);
            return;
        }
        connection->received_len += (uint32_t)n;
        if (kci_http_parse_feed(&connection->request, connection->received,
                                connection->received_len) != KCI_HTTP_INCOMPLETE) {
            answer(connection);
            return;
        }
    }
}

/* The handshake runs inside the first reads (SSL_read accepts). */
static bool start_tls(http_connection *connection)
{
    connection->ssl = SSL_new(connection->http->tls_context);
    if (connection->ssl == NULL || SSL_set_fd(connection->ssl, connection->fd) != 1) {
        ERR_clear_error();
        return false;
    }
    SSL_set_accept_state(connection->ssl);
    return true;
}

static void open_connection(kci_http_server *http, http_connection *connection, int fd,
                            const struct sockaddr_storage *address)
{
    assert(!connection->in_use);
    *connection = (http_connection){.source.kind = KCI_SOURCE_HTTP_CONNECTION,
                                    .http = http,
                                    .in_use = true,
                                    .fd = fd,
                                    .accept_sequence = http->next_accept_sequence++,
                                    .deadline_ms = http->server->now_ms + HTTP_HEAD_TIMEOUT_MS};
    kci_http_parse_init(&connection->request);
    const void *ip = address->ss_family == AF_INET6
                         ? (const void *)&((const struct sockaddr_in6 *)address)->sin6_addr
                         : (const void *)&((const struct sockaddr_in *)address)->sin_addr;
    inet_ntop(address->ss_family, ip, connection->ip, sizeof connection->ip);
    connection->port =
        ntohs(address->ss_family == AF_INET6 ? ((const struct sockaddr_in6 *)address)->sin6_port
                                             : ((const struct sockaddr_in *)address)->sin_port);
    http->connection_count++;
    struct epoll_event event = {.events = EPOLLIN, .data.ptr = &connection->source};
    if (epoll_ctl(http->server->epoll_fd, EPOLL_CTL_ADD, fd, &event) != 0 ||
        (http->tls_context != NULL && !start_tls(connection))) {
        close_connection(connection);
        return;
    }
    read_request(connection); /* the request often came with the handshake */
}

/* The connection accepted first among those still sending their request,
 * or NULL when every slot is writing an answer. */
static http_connection *oldest_reading(kci_http_server *http)
{
    http_connection *oldest = NULL;
    for (uint32_t i = 0; i < HTTP_CONNECTIONS_MAX; i++) {
        http_connection *connection = &http->connections[i];
        if (!connection->in_use || connection->out != NULL) continue;
        if (oldest == NULL || connection->accept_sequence < oldest->accept_sequence)
            oldest = connection;
    }
    return oldest;
}

/* A free slot, or the slot of the oldest unfinished request, closed for the
 * newcomer (see the opening comment); NULL: all slots are answering. */
static http_connection *free_slot(kci_http_server *http)
{
    if (http->connection_count >= HTTP_CONNECTIONS_MAX) {
        http_connection *victim = oldest_reading(http);
        if (victim == NULL) return NULL;
        http->evicted_count++;
        kci_debug_limited("%s:%u - HTTP connection closed for a newer one: all %d slots taken "
                          "(%llu so far)",
                          victim->ip, (unsigned)victim->port, HTTP_CONNECTIONS_MAX,
                          (unsigned long long)http->evicted_count);
        close_connection(victim);
    }
    for (uint32_t i = 0; i < HTTP_CONNECTIONS_MAX; i++)
        if (!http->connections[i].in_use) return &http->connections[i];
    assert(false && "connection_count disagrees with the pool");
    return NULL;
}

/* Out of descriptors or memory: stop watching until the next housekeeping
 * tick, since the listener stays readable and retrying at once spins. */
static void pause_listener(kci_http_server *http, int error)
{
    kci_error_limited("http monitor: accept failed: %s; not accepting until the next tick",
                      strerror(error));
    if (http->listener_paused || http->listener_held) return;
    epoll_ctl(http->server->epoll_fd, EPOLL_CTL_DEL, http->listen_fd, NULL);
    http->listener_paused = true;
}

static void accept_connections(kci_http_server *http)
{
    for (int i = 0; i < HTTP_ACCEPTS_PER_WAKEUP_MAX; i++) {
        struct sockaddr_storage address = {0};
        socklen_t address_len = sizeof address;
        int fd = accept4(http->listen_fd, (struct sockaddr *)&address, &address_len,
                         SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED) continue;
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM)
                pause_listener(http, errno);
            else if (errno != EAGAIN && errno != EWOULDBLOCK)
                kci_error_limited("http monitor: accept failed: %s", strerror(errno));
            return;
        }
        http_connection *connection = free_slot(http);
        if (connection != NULL) {
            open_connection(http, connection, fd, &address);
            continue;
        }
        /* Best effort: a fresh socket's buffer takes these few bytes. */
        kci_warn_limited("http monitor: all %d connections are answering, refusing one",
                         HTTP_CONNECTIONS_MAX);
        ssize_t ignored =
            send(fd, BUSY_RESPONSE, sizeof BUSY_RESPONSE - 1, MSG_NOSIGNAL | MSG_DONTWAIT);
        (void)ignored;
        close(fd);
    }
}

/* ---- the listener --------------------------------------------------------- */

static kc_err open_listener(kci_http_server *http, const char *host, int port, char *error,
                            size_t error_size)
{
    kc_err err = kci_listen_tcp(host, port, HTTP_LISTEN_BACKLOG, "http monitoring",
                                &http->listen_fd, &http->port, error, error_size);
    if (err != KC_OK) return err;
    struct epoll_event event = {.events = EPOLLIN, .data.ptr = &http->listener};
    if (epoll_ctl(http->server->epoll_fd, EPOLL_CTL_ADD, http->listen_fd, &event) != 0) {
        snprintf(error, error_size, "cannot watch the http monitor socket: %s", strerror(errno));
        return KC_ERR_IO;
    }
    return KC_OK;
}

/* ---- API ------------------------------------------------------------------ */

void kci_http_server_watch(kci_http_server *http, bool watched)
{
    if (http->listen_fd < 0) return;
    http->listener_held = !watched;
    if (http->listener_paused) return; /* housekeeping watches it again */
    struct epoll_event event = {.events = EPOLLIN, .data.ptr = &http->listener};
    epoll_ctl(http->server->epoll_fd, watched ? EPOLL_CTL_ADD : EPOLL_CTL_DEL, http->listen_fd,
              &event);
}

kc_err kci_http_server_create(kci_http_server **out, kci_server *server, const char *host, int port,
                              kci_http_handler handler, void *context, char *error,
                              size_t error_size)
{
    assert(out != NULL && server != NULL && host != NULL && handler != NULL);
    assert(port >= 0);
    *out = NULL;
    kci_http_server *http = calloc(1, sizeof *http);
    if (http == NULL) return KC_ERR_NOMEM;
    http->listener.kind = KCI_SOURCE_HTTP_LISTENER;
    http->server = server;
    http->handler = handler;
    http->context = context;
    http->listen_fd = -1;
    http->connections = calloc(HTTP_CONNECTIONS_MAX, sizeof *http->connections);
    kc_err err = http->connections != NULL ? open_listener(http, host, port, error, error_size)
                                           : KC_ERR_NOMEM;
    if (err != KC_OK) {
        kci_http_server_destroy(http);
        return err;
    }
    *out = http;
    return KC_OK;
}

void kci_http_server_on_event(kci_http_server *http, kci_source *source, uint32_t events)
{
    assert(http != NULL && source != NULL);
    if (source->kind == KCI_SOURCE_HTTP_LISTENER) {
        assert(source == &http->listener);
        accept_connections(http);
        return;
    }
    assert(source->kind == KCI_SOURCE_HTTP_CONNECTION);
    http_connection *connection = (http_connection *)source;
    assert(connection->http == http);
    if (!connection->in_use) return; /* closed earlier in this batch */
    if (connection->out != NULL)
        continue_writing(connection);
    else
        read_request(connection);
}

void kci_http_server_housekeeping(kci_http_server *http, int64_t now_ms)
{
    assert(http != NULL);
    if (http->listener_paused) {
        http->listener_paused = false;
        if (!http->listener_held) {
            struct epoll_event event = {.events = EPOLLIN, .data.ptr = &http->listener};
            epoll_ctl(http->server->epoll_fd, EPOLL_CTL_ADD, http->listen_fd, &event);
        }
    }
    for (uint32_t i = 0; i < HTTP_CONNECTIONS_MAX && http->connection_count > 0; i++) {
        http_connection *connection = &http->connections[i];
        if (!connection->in_use || now_ms < connection->deadline_ms) continue;
        kci_debug("%s:%u - HTTP connection closed: %s deadline passed", connection->ip,
                  (unsigned)connection->port, connection->out != NULL ? "write" : "read");
        close_connection(connection);
    }
}

void kci_http_server_set_tls(kci_http_server *http, SSL_CTX *context)
{
    http->tls_context = context;
}

int kci_http_server_port(const kci_http_server *http)
{
    assert(http != NULL);
    return http->port;
}

void kci_http_server_destroy(kci_http_server *http)
{
    if (http == NULL) return;
    for (uint32_t i = 0; http->connections != NULL && i < HTTP_CONNECTIONS_MAX; i++)
        if (http->connections[i].in_use) close_connection(&http->connections[i]);
    assert(http->connection_count == 0);
    if (http->listen_fd >= 0) {
        epoll_ctl(http->server->epoll_fd, EPOLL_CTL_DEL, http->listen_fd, NULL);
        close(http->listen_fd);
    }
    free(http->connections);
    free(http);
}
