/* monitor.h - HTTP monitoring on the broker's event loop: /varz, /connz,
 * /subsz, /healthz as JSON (nats-server's field names where they exist) and
 * /metrics in Prometheus text format. Plain HTTP/1.0-style: one request per
 * connection, answered and closed; requests are bounded in size and time. */
#ifndef KCI_MONITOR_H
#define KCI_MONITOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kingcobra/err.h"
#include "server.h"

typedef struct kci_monitor kci_monitor;

/* Binds options.http_host:http_port and registers with the server's epoll.
 * Sets *out to NULL (and returns KC_OK) when monitoring is off. */
kc_err kci_monitor_create(kci_server *server, kci_monitor **out, char *error, size_t error_size);
/* An epoll event for a KCI_SOURCE_HTTP_* source. */
void kci_monitor_on_event(kci_monitor *monitor, kci_source *source, uint32_t events);
/* Closes HTTP connections older than their deadline. */
void kci_monitor_housekeeping(kci_monitor *monitor, int64_t now_ms);
int kci_monitor_port(const kci_monitor *monitor);
/* Stops or resumes serving the HTTP port (kci_server_hold_public). */
void kci_monitor_watch(kci_monitor *monitor, bool watched);
void kci_monitor_destroy(kci_monitor *monitor);

#endif
