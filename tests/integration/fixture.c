/*
 * Per-case fixture for the integration programs (see fixture.h): tracks what a
 * case creates so teardown can free it in the right order (subscriptions,
 * connections, options, raw clients, then the server and its directory).
 */
#include "fixture.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum {
    LIBRARY_CLOSE_TIMEOUT_MS = 5000,
    SUBJECT_SIZE_MAX = 128,
};

const char *fixture_server_binary = NULL;

static fixture_events shared_events;

static bool events_wait(fixture_events *events, const int *counter, int target, int timeout_ms);

/* ===================================================================== groups */

bool fixture_parse_arguments(int argc, char **argv)
{
    if (argc < 2 || argv[1][0] == '\0') {
        fprintf(stderr, "usage: %s SERVER_BINARY (nats-server or kcobrad)\n", argv[0]);
        return false;
    }
    fixture_server_binary = argv[1];
    const char *filter = getenv(FIXTURE_FILTER_ENVIRONMENT);
    if (filter != NULL && filter[0] != '\0') cmocka_set_test_filter(filter);
    /* A peer that closes mid-write must fail a send, not kill the program. */
    signal(SIGPIPE, SIG_IGN);
    return true;
}

static void events_init(fixture_events *events)
{
    pthread_condattr_t attributes;
    pthread_condattr_init(&attributes);
    pthread_condattr_setclock(&attributes, CLOCK_MONOTONIC);
    pthread_cond_init(&events->changed, &attributes);
    pthread_condattr_destroy(&attributes);
    pthread_mutex_init(&events->mutex, NULL);
}

int fixture_group_setup(void **state)
{
    (void)state;
    events_init(&shared_events);
    return nats_Open(-1) == NATS_OK ? 0 : -1;
}

int fixture_group_teardown(void **state)
{
    (void)state;
    return nats_CloseAndWait(LIBRARY_CLOSE_TIMEOUT_MS) == NATS_OK ? 0 : -1;
}

/* ====================================================================== cases */

static void events_reset(fixture_events *events)
{
    pthread_mutex_lock(&events->mutex);
    events->error_count = 0;
    events->disconnected_count = 0;
    events->reconnected_count = 0;
    events->closed_count = 0;
    pthread_mutex_unlock(&events->mutex);
}

int fixture_setup(void **state)
{
    fixture *f = calloc(1, sizeof(*f));
    if (f == NULL) return -1;
    f->events = &shared_events;
    events_reset(f->events);
    if (harness_server_init(&f->server, fixture_server_binary) != HARNESS_OK) {
        free(f);
        return -1;
    }
    *state = f;
    return 0;
}

int fixture_teardown(void **state)
{
    fixture *f = *state;
    for (int index = 0; index < f->subscription_count; index++)
        natsSubscription_Destroy(f->subscriptions[index]);
    for (int index = 0; index < f->connection_count; index++)
        natsConnection_Destroy(f->connections[index]);
    if (!events_wait(f->events, &f->events->closed_count, f->connected_count,
                     FIXTURE_EVENT_TIMEOUT_MS))
        fprintf(stderr, "teardown: not every connection reported closed\n");
    for (int index = 0; index < f->options_count; index++)
        natsOptions_Destroy(f->options[index]);
    for (int index = 0; index < f->raw_count; index++) {
        harness_raw_close(f->raws[index]);
        free(f->raws[index]);
    }
    harness_server_cleanup(&f->server);
    free(f);
    return 0;
}

fixture *fixture_of(void **state)
{
    fixture *f = *state;
    assert_non_null(f);
    return f;
}

void fixture_start(fixture *f, const char *config_text)
{
    assert_int_equal(harness_server_start(&f->server, config_text), HARNESS_OK);
}

/* ================================================================== callbacks */

static void on_error(natsConnection *connection, natsSubscription *subscription, natsStatus status,
                     void *closure)
{
    (void)subscription;
    fixture_events *events = closure;
    const char *text = nats_GetLastError(NULL);
    if (text == NULL || text[0] == '\0') natsConnection_GetLastError(connection, &text);
    pthread_mutex_lock(&events->mutex);
    if (events->error_count < FIXTURE_ERRORS_MAX) {
        int index = events->error_count++;
        events->error_statuses[index] = status;
        snprintf(events->error_texts[index], FIXTURE_ERROR_TEXT_SIZE_MAX, "%s",
                 text != NULL ? text : "");
    }
    pthread_cond_broadcast(&events->changed);
    pthread_mutex_unlock(&events->mutex);
}

/* Adds one to *counter, which lives inside events, and wakes the waiters. */
static void events_count(fixture_events *events, int *counter)
{
    pthread_mutex_lock(&events->mutex);
    (*counter)++;
    pthread_cond_broadcast(&events->changed);
    pthread_mutex_unlock(&events->mutex);
}

static void on_disconnected(natsConnection *connection, void *closure)
{
    (void)connection;
    fixture_events *events = closure;
    events_count(events, &events->disconnected_count);
}

static void on_reconnected(natsConnection *connection, void *closure)
{
    (void)connection;
    fixture_events *events = closure;
    events_count(events, &events->reconnected_count);
}

static void on_closed(natsConnection *connection, void *closure)
{
    (void)connection;
    fixture_events *events = closure;
    events_count(events, &events->closed_count);
}

static struct timespec deadline_after(int timeout_ms)
{
    struct timespec deadline;
    clock_gettime(CLOCK_MONOTONIC, &deadline);
    deadline.tv_sec += timeout_ms / 1000;
    deadline.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    if (deadline.tv_nsec >= 1000000000L) {
        deadline.tv_sec++;
        deadline.tv_nsec -= 1000000000L;
    }
    return deadline;
}

/* Waits until *counter reaches target; the counter lives inside events. */
static bool events_wait(fixture_events *events, const int *counter, int target, int timeout_ms)
{
    struct timespec deadline = deadline_after(timeout_ms);
    pthread_mutex_lock(&events->mutex);
    int wait_result = 0;
    while (*counter < target && wait_result == 0)
        wait_result = pthread_cond_timedwait(&events->changed, &events->mutex, &deadline);
    bool reached = *counter >= target;
    pthread_mutex_unlock(&events->mutex);
    return reached;
}

bool fixture_wait_errors(fixture *f, int error_count, int timeout_ms)
{
    return events_wait(f->events, &f->events->error_count, error_count, timeout_ms);
}

bool fixture_wait_reconnects(fixture *f, int reconnected_count, int timeout_ms)
{
    return events_wait(f->events, &f->events->reconnected_count, reconnected_count, timeout_ms);
}

bool fixture_wait_disconnects(fixture *f, int disconnected_count, int timeout_ms)
{
    return events_wait(f->events, &f->events->disconnected_count, disconnected_count, timeout_ms);
}

void fixture_error_at(fixture *f, int error_index, natsStatus *status, char *text, size_t text_size)
{
    assert_in_range(error_index, 0, FIXTURE_ERRORS_MAX - 1);
    pthread_mutex_lock(&f->events->mutex);
    *status = f->events->error_statuses[error_index];
    snprintf(text, text_size, "%s", f->events->error_texts[error_index]);
    pthread_mutex_unlock(&f->events->mutex);
}

/* ==================================================================== clients */

natsOptions *fixture_options(fixture *f)
{
    assert_true(f->options_count < FIXTURE_OPTIONS_MAX);
    natsOptions *options = NULL;
    assert_int_equal(natsOptions_Create(&options), NATS_OK);
    f->options[f->options_count++] = options;
    assert_int_equal(natsOptions_SetURL(options, f->server.url), NATS_OK);
    assert_int_equal(natsOptions_SetTimeout(options, FIXTURE_CONNECT_TIMEOUT_MS), NATS_OK);
    assert_int_equal(natsOptions_SetReconnectWait(options, FIXTURE_RECONNECT_WAIT_MS), NATS_OK);
    assert_int_equal(natsOptions_SetMaxReconnect(options, FIXTURE_RECONNECTS_MAX), NATS_OK);
    assert_int_equal(natsOptions_SetReconnectJitter(options, 0, 0), NATS_OK);
    assert_int_equal(natsOptions_SetErrorHandler(options, on_error, f->events), NATS_OK);
    assert_int_equal(natsOptions_SetDisconnectedCB(options, on_disconnected, f->events), NATS_OK);
    assert_int_equal(natsOptions_SetReconnectedCB(options, on_reconnected, f->events), NATS_OK);
    assert_int_equal(natsOptions_SetClosedCB(options, on_closed, f->events), NATS_OK);
    return options;
}

natsConnection *fixture_connect_with(fixture *f, natsOptions *options)
{
    assert_true(f->connection_count < FIXTURE_CONNECTIONS_MAX);
    natsConnection *connection = NULL;
    natsStatus status = natsConnection_Connect(&connection, options);
    if (status != NATS_OK)
        fprintf(stderr, "connect to %s: %s: %s\n", f->server.url, natsStatus_GetText(status),
                nats_GetLastError(NULL));
    assert_int_equal(status, NATS_OK);
    f->connections[f->connection_count++] = connection;
    f->connected_count++;
    return connection;
}

natsConnection *fixture_connect(fixture *f)
{
    return fixture_connect_with(f, fixture_options(f));
}

natsStatus fixture_connect_fails(fixture *f, natsOptions *options)
{
    natsConnection *connection = NULL;
    natsStatus status = natsConnection_Connect(&connection, options);
    if (connection != NULL) {
        assert_true(f->connection_count < FIXTURE_CONNECTIONS_MAX);
        f->connections[f->connection_count++] = connection;
        f->connected_count++;
    }
    assert_int_not_equal(status, NATS_OK);
    return status;
}

void fixture_track_subscription(fixture *f, natsSubscription *subscription)
{
    assert_true(f->subscription_count < FIXTURE_SUBSCRIPTIONS_MAX);
    assert_non_null(subscription);
    f->subscriptions[f->subscription_count++] = subscription;
}

natsSubscription *fixture_subscribe_sync(fixture *f, natsConnection *connection,
                                         const char *subject)
{
    natsSubscription *subscription = NULL;
    assert_int_equal(natsConnection_SubscribeSync(&subscription, connection, subject), NATS_OK);
    fixture_track_subscription(f, subscription);
    return subscription;
}

natsSubscription *fixture_queue_subscribe_sync(fixture *f, natsConnection *connection,
                                               const char *subject, const char *group)
{
    natsSubscription *subscription = NULL;
    assert_int_equal(natsConnection_QueueSubscribeSync(&subscription, connection, subject, group),
                     NATS_OK);
    fixture_track_subscription(f, subscription);
    return subscription;
}

void fixture_flush(natsConnection *connection)
{
    assert_int_equal(natsConnection_FlushTimeout(connection, FIXTURE_FLUSH_TIMEOUT_MS), NATS_OK);
}

natsSubscription *fixture_subscribe_flushed(fixture *f, natsConnection *connection,
                                            const char *subject)
{
    natsSubscription *subscription = fixture_subscribe_sync(f, connection, subject);
    fixture_flush(connection);
    return subscription;
}

/* ================================================================== raw clients */

static harness_raw *raw_track(fixture *f)
{
    assert_true(f->raw_count < FIXTURE_RAWS_MAX);
    harness_raw *raw = malloc(sizeof(*raw));
    assert_non_null(raw);
    harness_raw_init(raw);
    f->raws[f->raw_count++] = raw;
    return raw;
}

harness_raw *fixture_raw_handshake(fixture *f, const char *connect_json)
{
    harness_raw *raw = raw_track(f);
    assert_int_equal(harness_raw_handshake(raw, f->server.port, connect_json, NULL, 0), HARNESS_OK);
    return raw;
}

harness_raw *fixture_raw_connect(fixture *f, int receive_buffer_bytes)
{
    harness_raw *raw = raw_track(f);
    assert_int_equal(harness_raw_connect(raw, f->server.port, receive_buffer_bytes), HARNESS_OK);
    return raw;
}

harness_raw *fixture_raw_read_info(fixture *f, int receive_buffer_bytes, char *info,
                                   size_t info_size)
{
    harness_raw *raw = fixture_raw_connect(f, receive_buffer_bytes);
    assert_int_equal(harness_raw_read_line(raw, info, info_size, HARNESS_IO_TIMEOUT_MS),
                     HARNESS_OK);
    if (strncmp(info, "INFO {", 6) != 0) fprintf(stderr, "expected INFO, got '%s'\n", info);
    assert_memory_equal(info, "INFO {", 6);
    return raw;
}

void fixture_raw_send(harness_raw *raw, const char *text)
{
    assert_int_equal(harness_raw_send_text(raw, text), HARNESS_OK);
}

void fixture_raw_expect_line(harness_raw *raw, const char *expected)
{
    assert_int_equal(harness_raw_expect_line(raw, expected, HARNESS_IO_TIMEOUT_MS), HARNESS_OK);
}

void fixture_raw_expect_payload(harness_raw *raw, const char *payload)
{
    size_t length = strlen(payload);
    char *got = calloc(1, length + 3); /* the payload, CR LF, NUL */
    assert_non_null(got);
    harness_status status = harness_raw_read_exact(raw, got, length + 2, HARNESS_IO_TIMEOUT_MS);
    bool same = status == HARNESS_OK && memcmp(got, payload, length) == 0 &&
                memcmp(got + length, "\r\n", 2) == 0;
    if (!same) fprintf(stderr, "expected payload '%s', got '%s'\n", payload, got);
    /* Freed before asserting so a failure does not leak it. */
    free(got);
    assert_int_equal(status, HARNESS_OK);
    assert_true(same);
}

void fixture_raw_expect_message(harness_raw *raw, const char *line, const char *payload)
{
    fixture_raw_expect_line(raw, line);
    fixture_raw_expect_payload(raw, payload);
}

void fixture_raw_round_trip(harness_raw *raw)
{
    fixture_raw_send(raw, "PING\r\n");
    fixture_raw_expect_line(raw, "PONG");
}

void fixture_raw_send_round_trip(harness_raw *raw, const char *text)
{
    fixture_raw_send(raw, text);
    fixture_raw_round_trip(raw);
}

void fixture_raw_expect_closed(harness_raw *raw)
{
    assert_int_equal(harness_raw_expect_closed(raw, HARNESS_IO_TIMEOUT_MS), HARNESS_OK);
}

void fixture_raw_expect_silence(harness_raw *raw)
{
    assert_int_equal(harness_raw_expect_silence(raw, FIXTURE_QUIET_MS), HARNESS_OK);
}

/* ================================================================ expectations */

void fixture_expect_message(natsSubscription *subscription, const char *subject, const char *data)
{
    natsMsg *message = NULL;
    natsStatus status =
        natsSubscription_NextMsg(&message, subscription, FIXTURE_MESSAGE_TIMEOUT_MS);
    if (status != NATS_OK)
        fprintf(stderr, "expected a message on '%s': %s\n", subject, natsStatus_GetText(status));
    assert_int_equal(status, NATS_OK);
    /* Copy out before asserting so a failure does not leak the message. */
    char got_subject[SUBJECT_SIZE_MAX], got_data[SUBJECT_SIZE_MAX];
    snprintf(got_subject, sizeof(got_subject), "%s", natsMsg_GetSubject(message));
    snprintf(got_data, sizeof(got_data), "%.*s", natsMsg_GetDataLength(message),
             natsMsg_GetData(message));
    natsMsg_Destroy(message);
    assert_string_equal(got_subject, subject);
    if (data != NULL) assert_string_equal(got_data, data);
}

void fixture_expect_messages(natsSubscription *subscription, int message_count)
{
    for (int index = 0; index < message_count; index++) {
        natsMsg *message = NULL;
        assert_int_equal(
            natsSubscription_NextMsg(&message, subscription, FIXTURE_MESSAGE_TIMEOUT_MS), NATS_OK);
        natsMsg_Destroy(message);
    }
}

void fixture_expect_no_message(natsSubscription *subscription)
{
    natsMsg *message = NULL;
    natsStatus status = natsSubscription_NextMsg(&message, subscription, FIXTURE_QUIET_MS);
    if (status == NATS_OK) {
        fprintf(stderr, "unexpected message on '%s'\n", natsMsg_GetSubject(message));
        natsMsg_Destroy(message);
    }
    assert_int_equal(status, NATS_TIMEOUT);
}

static void connection_release(fixture *f, natsConnection *connection)
{
    natsConnection_Destroy(connection);
    assert_true(f->connection_count > 0);
    assert_ptr_equal(f->connections[f->connection_count - 1], connection);
    f->connection_count--;
}

static void subscription_release(fixture *f, natsSubscription *subscription)
{
    natsSubscription_Destroy(subscription);
    assert_true(f->subscription_count > 0);
    assert_ptr_equal(f->subscriptions[f->subscription_count - 1], subscription);
    f->subscription_count--;
}

void fixture_expect_server_serves(fixture *f)
{
    char subject[SUBJECT_SIZE_MAX];
    snprintf(subject, sizeof(subject), "health.%d", f->health_check_count++);
    if (f->health_options == NULL) f->health_options = fixture_options(f);
    natsConnection *connection = fixture_connect_with(f, f->health_options);
    natsSubscription *subscription = fixture_subscribe_sync(f, connection, subject);
    assert_int_equal(natsConnection_PublishString(connection, subject, "alive"), NATS_OK);
    fixture_flush(connection);
    fixture_expect_message(subscription, subject, "alive");
    subscription_release(f, subscription);
    connection_release(f, connection);
}
