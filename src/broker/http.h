/* http.h - the HTTP/1.x side of monitoring: a resumable request parser and a
 * small server for the broker's epoll loop that answers one request per
 * connection through a handler (monitor.c supplies the endpoints).
 *
 * The parser reads one byte at a time; each state names what has been
 * matched so far (METHOD, TARGET, VERSION, then header lines up to the blank
 * line; header contents are counted, not interpreted). It keeps offsets,
 * not copies: the caller keeps the whole request in one buffer and feeds it
 * again, longer, as bytes arrive. Every part has a named bound, and a bad
 * request ends in FAILED with the status to answer:
 *   400  malformed: bytes outside the grammar, a method too long, a
 *        missing or bad version
 *   405  a well-formed request whose method is not GET or HEAD
 *   414  a target too long, or the request limit hit before the target
 *        ended (a flood of leading blank lines)
 *   431  too many header lines, or the request limit hit in the headers
 *   505  HTTP/ with a major version other than 1
 * A parse error wins over 405: the method is judged once the request is
 * whole, so a request is answered 405 only if it is otherwise fine. */
#ifndef KCI_HTTP_H
#define KCI_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/ssl.h>

#include "kingcobra/err.h"
#include "server.h"

enum {
    KCI_HTTP_REQUEST_BYTES_MAX = 8 * 1024, /* request line and headers together */
    KCI_HTTP_METHOD_BYTES_MAX = 16,
    KCI_HTTP_TARGET_BYTES_MAX = 2 * 1024,
    KCI_HTTP_VERSION_BYTES = 8, /* "HTTP/1.1": exactly this long */
    KCI_HTTP_HEADER_LINES_MAX = 100,
};

/* Each state names what has been matched so far. */
typedef enum kci_http_parse_state {
    KCI_HTTP_PARSE_METHOD = 0,
    KCI_HTTP_PARSE_TARGET = 1,
    KCI_HTTP_PARSE_VERSION = 2,
    KCI_HTTP_PARSE_REQUEST_LINE_CR = 3, /* the '\r' ending the request line */
    KCI_HTTP_PARSE_LINE_START = 4,      /* the start of a header line or the blank line */
    KCI_HTTP_PARSE_HEADER = 5,
    KCI_HTTP_PARSE_HEADER_CR = 6,
    KCI_HTTP_PARSE_BLANK_LINE_CR = 7,
    KCI_HTTP_PARSE_DONE = 8,
    KCI_HTTP_PARSE_FAILED = 9,
} kci_http_parse_state;

typedef enum kci_http_result {
    KCI_HTTP_INCOMPLETE = 0, /* feed again once more bytes arrived */
    KCI_HTTP_COMPLETE = 1,   /* state DONE: the parts below are set */
    KCI_HTTP_FAILED = 2,     /* state FAILED: answer error_status */
} kci_http_result;

/* Offsets into the caller's buffer, which holds the whole request. Once the
 * target has ended, it is path_len bytes of path, then (if it has a '?') the
 * '?' and query_len bytes of query from query_start, not decoded; without a
 * '?', query_start is the end of the target and query_len 0. */
typedef struct kci_http_request {
    kci_http_parse_state state;
    uint32_t position; /* bytes consumed */
    uint32_t method_start;
    uint32_t method_len;
    uint32_t target_start;
    uint32_t target_len;
    uint32_t path_len;
    uint32_t query_start; /* 0 while in the target and no '?' was seen */
    uint32_t query_len;
    uint32_t version_start;
    uint32_t version_len;
    uint32_t header_line_count;
    int error_status; /* the status to answer with once FAILED; 0 before */
} kci_http_request;

void kci_http_parse_init(kci_http_request *request);
/* Consumes bytes[request->position..len): bytes is the whole request as
 * received so far, the same buffer on every call, len never shrinking.
 * Never reads past KCI_HTTP_REQUEST_BYTES_MAX; once COMPLETE or FAILED,
 * further calls change nothing. */
kci_http_result kci_http_parse_feed(kci_http_request *request, const char *bytes, size_t len);
/* The method (for a FAILED request: its bytes so far) is exactly method. */
bool kci_http_method_is(const kci_http_request *request, const char *bytes, const char *method);
/* The reason phrase for a status ("Not Found"). */
const char *kci_http_status_text(int status);

/* ---- the server ----------------------------------------------------------- */

/* What a handler answers. body is malloc'd and taken by the server; NULL
 * means rendering failed and is answered 500. */
typedef struct kci_http_response {
    int status;
    const char *content_type;
    char *body;
    size_t body_len;
} kci_http_response;

/* Called once per connection, on the loop, with a COMPLETE request or a
 * FAILED one (then request->error_status is the status to answer). bytes
 * holds the request; the server adds the head and leaves out the body for
 * HEAD. */
typedef void (*kci_http_handler)(void *context, const kci_http_request *request, const char *bytes,
                                 kci_http_response *response);

typedef struct kci_http_server kci_http_server;

/* Binds host:port (0: an ephemeral port) and registers with server's epoll,
 * whose events for KCI_SOURCE_HTTP_* sources go to kci_http_server_on_event.
 * Failures leave a message in error. */
kc_err kci_http_server_create(kci_http_server **out, kci_server *server, const char *host, int port,
                              kci_http_handler handler, void *context, char *error,
                              size_t error_size);
void kci_http_server_on_event(kci_http_server *http, kci_source *source, uint32_t events);
/* Closes connections past their read or write deadline. */
void kci_http_server_housekeeping(kci_http_server *http, int64_t now_ms);
/* Serves HTTPS with context (the broker's, tls.h; borrowed) from now on:
 * each connection's TLS handshake runs in its first reads. */
void kci_http_server_set_tls(kci_http_server *http, SSL_CTX *context);
/* The bound port. */
int kci_http_server_port(const kci_http_server *http);
/* Stops or resumes watching the listening socket (connections wait in the
 * backlog meanwhile). */
void kci_http_server_watch(kci_http_server *http, bool watched);
void kci_http_server_destroy(kci_http_server *http);

#endif
