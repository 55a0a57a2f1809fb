/*
 * Per-case fixture for the integration programs: one server (not started until
 * the case says with which config), and every nats.c object and raw client the
 * case makes, so that teardown frees them even when an assertion jumped out of
 * the case half-way (cmocka runs teardown after a failure; sanitizer leak
 * reports then point at real leaks, not at failed cases).
 *
 * Helpers assert with cmocka, so a case reads as a list of expectations.
 * Callbacks from nats.c threads (errors, disconnects, reconnects) are counted
 * under a mutex and waited for with a bound; teardown waits for every
 * connection's closed callback so no callback of one case lands in the next.
 */
#ifndef KC_TESTS_INTEGRATION_FIXTURE_H
#define KC_TESTS_INTEGRATION_FIXTURE_H

#include "harness.h"

#include <nats/nats.h>
#include <pthread.h>

/* clang-format off */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
/* clang-format on */

enum {
    FIXTURE_OPTIONS_MAX = 16,
    FIXTURE_CONNECTIONS_MAX = 32,
    FIXTURE_SUBSCRIPTIONS_MAX = 64,
    FIXTURE_RAWS_MAX = 16,
    FIXTURE_ERRORS_MAX = 16,
    FIXTURE_ERROR_TEXT_SIZE_MAX = 256,
    FIXTURE_CONNECT_TIMEOUT_MS = 2000,
    FIXTURE_RECONNECT_WAIT_MS = 50,
    FIXTURE_RECONNECTS_MAX = 200,
    FIXTURE_MESSAGE_TIMEOUT_MS = 2000, /* a message that must arrive */
    FIXTURE_QUIET_MS = 200,            /* a message that must not */
    FIXTURE_EVENT_TIMEOUT_MS = 5000,
    FIXTURE_FLUSH_TIMEOUT_MS = 5000,
};

typedef struct fixture_events {
    pthread_mutex_t mutex;
    pthread_cond_t changed;
    int error_count;
    natsStatus error_statuses[FIXTURE_ERRORS_MAX];
    char error_texts[FIXTURE_ERRORS_MAX][FIXTURE_ERROR_TEXT_SIZE_MAX];
    int disconnected_count;
    int reconnected_count;
    int closed_count;
} fixture_events;

typedef struct fixture {
    harness_server server;
    /* Process-lifetime, reset per case: nats.c delivers callbacks on its own
     * thread, possibly after a connection was destroyed. */
    fixture_events *events;
    int connected_count; /* each owes one closed callback */
    int health_check_count;
    natsOptions *health_options; /* one for every health check, tracked below */
    int options_count;
    natsOptions *options[FIXTURE_OPTIONS_MAX];
    int connection_count;
    natsConnection *connections[FIXTURE_CONNECTIONS_MAX];
    int subscription_count;
    natsSubscription *subscriptions[FIXTURE_SUBSCRIPTIONS_MAX];
    int raw_count;
    harness_raw *raws[FIXTURE_RAWS_MAX];
} fixture;

/* CONNECT bodies for raw clients: no +OK after every command, no pedantic
 * subject checks; the second also announces header support (HPUB, HMSG). */
#define FIXTURE_FAST_CONNECT "{\"verbose\":false,\"pedantic\":false}"
#define FIXTURE_HEADERS_CONNECT "{\"verbose\":false,\"pedantic\":false,\"headers\":true}"

/* The server binary under test (argv[1]); main sets it. */
extern const char *fixture_server_binary;

/* A cmocka test-name pattern (e.g. "test_tls*") to run only some cases. */
#define FIXTURE_FILTER_ENVIRONMENT "KC_INTEGRATION_FILTER"

/* Reads argv[1] into fixture_server_binary and applies KC_INTEGRATION_FILTER;
 * false (usage printed) if argv[1] is absent. */
bool fixture_parse_arguments(int argc, char **argv);
int fixture_group_setup(void **state);
int fixture_group_teardown(void **state);
int fixture_setup(void **state);
int fixture_teardown(void **state);
/* A case run between fixture_setup and fixture_teardown. */
#define FIXTURE_CASE(function)                                                                     \
    cmocka_unit_test_setup_teardown(function, fixture_setup, fixture_teardown)
/* The case's fixture, from cmocka's state. */
fixture *fixture_of(void **state);

void fixture_start(fixture *f, const char *config_text);
/* URL of the server, short timeouts, fast reconnects, event callbacks. */
natsOptions *fixture_options(fixture *f);
natsConnection *fixture_connect_with(fixture *f, natsOptions *options);
natsConnection *fixture_connect(fixture *f);
/* Connects and expects failure; returns the status. */
natsStatus fixture_connect_fails(fixture *f, natsOptions *options);
void fixture_track_subscription(fixture *f, natsSubscription *subscription);
natsSubscription *fixture_subscribe_sync(fixture *f, natsConnection *connection,
                                         const char *subject);
natsSubscription *fixture_queue_subscribe_sync(fixture *f, natsConnection *connection,
                                               const char *subject, const char *group);
/* fixture_subscribe_sync, then fixture_flush: the server has the SUB before
 * anyone publishes. */
natsSubscription *fixture_subscribe_flushed(fixture *f, natsConnection *connection,
                                            const char *subject);
void fixture_flush(natsConnection *connection);

/* A tracked raw client, connected and past CONNECT/PING/PONG. */
harness_raw *fixture_raw_handshake(fixture *f, const char *connect_json);
/* A tracked raw client, connected with receive_buffer_bytes (0: default); INFO
 * is left unread. */
harness_raw *fixture_raw_connect(fixture *f, int receive_buffer_bytes);
/* As fixture_raw_connect, then reads the first line into info, which must be
 * "INFO {...}"; CONNECT is not sent. */
harness_raw *fixture_raw_read_info(fixture *f, int receive_buffer_bytes, char *info,
                                   size_t info_size);

/* Raw-client steps that assert, each bounded by HARNESS_IO_TIMEOUT_MS. The
 * line expectations answer and skip server PINGs (harness_raw_expect_line). */
void fixture_raw_send(harness_raw *raw, const char *text);
void fixture_raw_expect_line(harness_raw *raw, const char *expected);
/* The payload bytes and the CR LF after them. */
void fixture_raw_expect_payload(harness_raw *raw, const char *payload);
/* A MSG or HMSG control line, then its payload. */
void fixture_raw_expect_message(harness_raw *raw, const char *line, const char *payload);
/* PING, then PONG: everything the server sent before is now read, and it was
 * nothing but server PINGs. */
void fixture_raw_round_trip(harness_raw *raw);
/* fixture_raw_send, then fixture_raw_round_trip: the server took text
 * without answering anything. */
void fixture_raw_send_round_trip(harness_raw *raw, const char *text);
/* The server closes the connection; what it sent first is not checked. */
void fixture_raw_expect_closed(harness_raw *raw);
/* Nothing but server PINGs for FIXTURE_QUIET_MS, and the connection stays. */
void fixture_raw_expect_silence(harness_raw *raw);

/* The next message has this subject and data. */
void fixture_expect_message(natsSubscription *subscription, const char *subject, const char *data);
/* message_count messages arrive, each within FIXTURE_MESSAGE_TIMEOUT_MS;
 * their subjects and data are not checked. */
void fixture_expect_messages(natsSubscription *subscription, int message_count);
void fixture_expect_no_message(natsSubscription *subscription);
/* A fresh nats.c client can still subscribe, publish and receive. */
void fixture_expect_server_serves(fixture *f);

/* Bounded waits for callbacks; true when the count was reached. */
bool fixture_wait_errors(fixture *f, int error_count, int timeout_ms);
bool fixture_wait_reconnects(fixture *f, int reconnected_count, int timeout_ms);
bool fixture_wait_disconnects(fixture *f, int disconnected_count, int timeout_ms);
/* Copies the error_index-th async error (text and status). */
void fixture_error_at(fixture *f, int error_index, natsStatus *status, char *text,
                      size_t text_size);

#endif
