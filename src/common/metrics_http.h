/* metrics_http.h - /metrics on a port of its own, for a part run alone
 * (`kcobra <part> serve --metrics-listen HOST:PORT`): the same registry and
 * writer as kcobrad's monitoring port (common/metrics.h), served by one
 * thread, one connection at a time, HTTP/1.0 style (answer, then close).
 *
 * The request is classified, not parsed into parts: its head (request line
 * and headers, at most KCI_METRICS_HTTP_REQUEST_BYTES_MAX) must end in a
 * blank line; GET or HEAD of /metrics (a query is ignored) is answered 200,
 * another path 404, another method 405, anything else 400. A client gets
 * KCI_METRICS_HTTP_CLIENT_MS to send its head and take the answer; a scrape
 * is small, so one connection at a time is enough and bounds the cost. */
#ifndef KCI_METRICS_HTTP_H
#define KCI_METRICS_HTTP_H

#include <stddef.h>

#include "kingcobra/err.h"

enum {
    KCI_METRICS_HTTP_REQUEST_BYTES_MAX = 8 * 1024,
    KCI_METRICS_HTTP_CLIENT_MS = 2000,
    KCI_METRICS_HTTP_BACKLOG = 16,
};

typedef enum kci_metrics_request {
    KCI_METRICS_REQUEST_INCOMPLETE = 0, /* no blank line yet */
    KCI_METRICS_REQUEST_GET = 1,        /* GET /metrics */
    KCI_METRICS_REQUEST_HEAD = 2,       /* HEAD /metrics */
    KCI_METRICS_REQUEST_NOT_FOUND = 3,  /* GET or HEAD of another path: 404 */
    KCI_METRICS_REQUEST_METHOD = 4,     /* another method: 405 */
    KCI_METRICS_REQUEST_BAD = 5,        /* malformed, or no blank line within the bound: 400 */
} kci_metrics_request;

/* What the first len bytes a client sent ask for. */
kci_metrics_request kci_metrics_request_classify(const char *bytes, size_t len);

/* Binds listen ("HOST:PORT", ":PORT" or "PORT": 127.0.0.1) and serves
 * /metrics on a detached thread until the process exits. *port_out (may
 * be NULL): the bound port (PORT 0: an ephemeral one). */
kc_err kci_metrics_http_start(const char *listen, int *port_out, char *error, size_t error_size);

#endif
