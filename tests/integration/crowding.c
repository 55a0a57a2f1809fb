/*
 * One client against the others: a client that piles up subscriptions, or
 * that reads its messages at a trickle, must not hold up the rest. Run
 * against nats-server (the reference) and kcobrad, both must pass:
 *
 *   many subscriptions   150,000 SUBs pipelined on one raw connection (150,000
 *                        subjects, or one subject with 150,000 queue names) while
 *                        fresh clients connect and PING; then that
 *                        connection closes and a fresh client PINGs again.
 *                        Every probe must be answered within a generous
 *                        bound (the event loop is single-threaded in kcobrad).
 *   max_subs             max_subs: 10, the 11th SUB gets nats-server 2.9's
 *                        -ERR 'maximum subscriptions exceeded', is dropped,
 *                        and the connection stays (as observed from 2.9.10).
 *   trickling reader     a raw subscriber that reads about 16 KB/s beside a
 *                        publisher and a fast subscriber on the same subject:
 *                        it must be closed as a slow consumer within a bound,
 *                        and the fast subscriber must then receive 8 MiB
 *                        within a bound (a publisher held back by the trickle
 *                        would take minutes).
 *
 * Limits: the bounds are many times what either server needs on a loaded
 * machine, so they catch a stall of seconds, not a slowdown.
 */
#include "fixture.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

enum {
    TEXT_SIZE_MAX = 256,
    LINE_SIZE_MAX = 8192,
    /* many subscriptions */
    CROWD_SUBSCRIPTION_COUNT = 150000,
    CROWD_LINE_BYTES_MAX = 40, /* "SUB crowd q149999 149999\r\n" */
    CROWD_SEND_BOUND_MS = 60000,
    CROWD_POLL_MS = 50,
    CROWD_PROBE_INTERVAL_MS = 250,
    CROWD_DONE_TIMEOUT_MS = 30000, /* the crowding client's own PONG */
    BYSTANDER_BOUND_MS = 5000,     /* connect + PING/PONG of another client */
    /* max_subs */
    MAX_SUBS = 10,
    /* trickling reader */
    TRICKLE_RECEIVE_BUFFER_BYTES = 4096,
    TRICKLE_READ_BYTES = 1600, /* every TRICKLE_READ_INTERVAL_MS: 16 KB/s */
    TRICKLE_READ_INTERVAL_MS = 100,
    TRICKLE_MS_MAX = 20000, /* the reader thread stops by itself */
    TRICKLE_PAYLOAD_BYTES = 1024,
    TRICKLE_BATCH_MESSAGES = 64,
    TRICKLE_DETECT_BOUND_MS = 15000, /* write_deadline 2 s, max_pending 4 MiB */
    TRICKLE_VARZ_INTERVAL_MS = 250,
    TRICKLE_BATCH_TIMEOUT_MS = 5000,
    RECOVERY_MESSAGE_COUNT = 8192, /* 8 MiB */
    RECOVERY_BOUND_MS = 10000,
    HTTP_RESPONSE_SIZE_MAX = 65536,
};

/* ======================================================= many subscriptions */

/* A fresh client connects and completes a PING/PONG; its ms, or -1 if it
 * failed. Closed again before returning, so a failing case leaks nothing. */
static int64_t bystander_probe_ms(const fixture *f)
{
    harness_raw raw;
    harness_raw_init(&raw);
    int64_t started_ms = harness_now_ms();
    harness_status status =
        harness_raw_handshake(&raw, f->server.port, FIXTURE_FAST_CONNECT, NULL, 0);
    int64_t elapsed_ms = harness_now_ms() - started_ms;
    harness_raw_close(&raw);
    if (status != HARNESS_OK) {
        fprintf(stderr, "bystander: handshake failed (%d) after %lld ms\n", (int)status,
                (long long)elapsed_ms);
        return -1;
    }
    return elapsed_ms;
}

static void expect_bystander_served(const fixture *f, const char *when)
{
    int64_t elapsed_ms = bystander_probe_ms(f);
    if (elapsed_ms < 0 || elapsed_ms > BYSTANDER_BOUND_MS)
        fprintf(stderr, "bystander %s: %lld ms\n", when, (long long)elapsed_ms);
    assert_true(elapsed_ms >= 0 && elapsed_ms <= BYSTANDER_BOUND_MS);
}

/* How the crowding client's SUBs look: one subject each, or one subject
 * with a queue name each (a node holding 150,000 queue groups). */
typedef enum crowd_shape { CROWD_SUBJECTS, CROWD_QUEUE_NAMES } crowd_shape;

/* All the SUB lines and a PING, one buffer. */
static char *crowd_lines(crowd_shape shape, size_t *length)
{
    char *lines = malloc(((size_t)CROWD_SUBSCRIPTION_COUNT + 1) * CROWD_LINE_BYTES_MAX);
    assert_non_null(lines);
    size_t used = 0;
    for (int sid = 1; sid <= CROWD_SUBSCRIPTION_COUNT; sid++)
        used += (size_t)snprintf(
            lines + used, CROWD_LINE_BYTES_MAX,
            shape == CROWD_SUBJECTS ? "SUB crowd.%d %d\r\n" : "SUB crowd q%d %d\r\n", sid, sid);
    used += (size_t)snprintf(lines + used, CROWD_LINE_BYTES_MAX, "PING\r\n");
    *length = used;
    return lines;
}

/* Sends the lines without blocking, probing a bystander every
 * CROWD_PROBE_INTERVAL_MS while the server chews on them. */
static void send_while_probing(const fixture *f, harness_raw *crowd, const char *lines,
                               size_t length)
{
    int64_t started_ms = harness_now_ms();
    int64_t next_probe_ms = started_ms;
    size_t sent_total = 0;
    while (sent_total < length) {
        assert_true(harness_now_ms() - started_ms < CROWD_SEND_BOUND_MS);
        struct pollfd entry = {.fd = crowd->fd, .events = POLLOUT};
        if (poll(&entry, 1, CROWD_POLL_MS) > 0) {
            ssize_t sent = send(crowd->fd, lines + sent_total, length - sent_total,
                                MSG_NOSIGNAL | MSG_DONTWAIT);
            assert_true(sent >= 0 || errno == EAGAIN || errno == EINTR);
            if (sent > 0) sent_total += (size_t)sent;
        }
        if (harness_now_ms() >= next_probe_ms) {
            expect_bystander_served(f, "while SUBs arrive");
            next_probe_ms = harness_now_ms() + CROWD_PROBE_INTERVAL_MS;
        }
    }
}

static void crowd_and_probe(void **state, crowd_shape shape)
{
    fixture *f = fixture_of(state);
    fixture_start(f, NULL);
    harness_raw *crowd = fixture_raw_handshake(f, FIXTURE_FAST_CONNECT);
    size_t length = 0;
    char *lines = crowd_lines(shape, &length);
    send_while_probing(f, crowd, lines, length);
    free(lines);
    /* Until the crowding client's PONG, the server may still be on its SUBs. */
    int64_t started_ms = harness_now_ms();
    for (;;) {
        expect_bystander_served(f, "after the SUBs");
        char line[LINE_SIZE_MAX];
        harness_status status =
            harness_raw_read_line(crowd, line, sizeof line, CROWD_PROBE_INTERVAL_MS);
        /* nats-server sends its first PING 2 s after a connect: on a loaded
         * machine that comes before the PONG. Answered and skipped. */
        if (status == HARNESS_OK && strcmp(line, "PING") == 0) {
            assert_int_equal(harness_raw_send_text(crowd, "PONG\r\n"), HARNESS_OK);
            continue;
        }
        if (status == HARNESS_OK) {
            assert_string_equal(line, "PONG");
            break;
        }
        assert_int_equal(status, HARNESS_TIMEOUT);
        assert_true(harness_now_ms() - started_ms < CROWD_DONE_TIMEOUT_MS);
    }
    /* Its close removes 150,000 subscriptions in one go. */
    harness_raw_close(crowd);
    expect_bystander_served(f, "after the close");
    expect_bystander_served(f, "after the close, again");
    fixture_expect_server_serves(f);
}

static void test_many_subscriptions_bystander(void **state)
{
    crowd_and_probe(state, CROWD_SUBJECTS);
}

static void test_many_queue_names_bystander(void **state)
{
    crowd_and_probe(state, CROWD_QUEUE_NAMES);
}

/* ================================================================== max_subs */

static void test_max_subs(void **state)
{
    fixture *f = fixture_of(state);
    fixture_start(f, "max_subs: 10\n");
    harness_raw *subscriber = fixture_raw_handshake(f, FIXTURE_FAST_CONNECT);
    harness_raw *publisher = fixture_raw_handshake(f, FIXTURE_FAST_CONNECT);
    char command[TEXT_SIZE_MAX];
    for (int sid = 1; sid <= MAX_SUBS; sid++) {
        snprintf(command, sizeof command, "SUB limit.%d %d\r\n", sid, sid);
        fixture_raw_send(subscriber, command);
    }
    fixture_raw_round_trip(subscriber); /* ten taken, no error */
    fixture_raw_send(subscriber, "SUB limit.11 11\r\n");
    fixture_raw_expect_line(subscriber, "-ERR 'maximum subscriptions exceeded'");
    fixture_raw_round_trip(subscriber); /* still open */

    fixture_raw_send_round_trip(publisher, "PUB limit.11 2\r\nno\r\nPUB limit.10 3\r\nyes\r\n");
    fixture_raw_expect_message(subscriber, "MSG limit.10 10 3", "yes");
    fixture_raw_round_trip(subscriber); /* nothing for limit.11 */

    /* The limit counts live subscriptions: one goes, another may come. */
    fixture_raw_send_round_trip(subscriber, "UNSUB 1\r\nSUB limit.11 11\r\n");
    fixture_raw_send_round_trip(publisher, "PUB limit.11 3\r\nyes\r\n");
    fixture_raw_expect_message(subscriber, "MSG limit.11 11 3", "yes");
    fixture_raw_round_trip(subscriber);
}

/* ========================================================== trickling reader */

/* The trickling reader's thread: reads a little every interval until told to
 * stop, the peer closes, or TRICKLE_MS_MAX passes. */
typedef struct trickle {
    int fd;
    int stop; /* atomic */
    size_t received_bytes;
    pthread_t thread;
} trickle;

static void *trickle_run(void *argument)
{
    trickle *reader = argument;
    static char buffer[TRICKLE_READ_BYTES];
    int64_t started_ms = harness_now_ms();
    while (!__atomic_load_n(&reader->stop, __ATOMIC_ACQUIRE) &&
           harness_now_ms() - started_ms < TRICKLE_MS_MAX) {
        harness_sleep_ms(TRICKLE_READ_INTERVAL_MS);
        ssize_t got = recv(reader->fd, buffer, sizeof buffer, MSG_DONTWAIT);
        if (got == 0 || (got < 0 && errno != EAGAIN && errno != EINTR)) break;
        if (got > 0) reader->received_bytes += (size_t)got;
    }
    return NULL;
}

static int fast_received_count; /* atomic; nats.c may call back after the case */

static void on_fast_message(natsConnection *connection, natsSubscription *subscription,
                            natsMsg *message, void *closure)
{
    (void)connection;
    (void)subscription;
    (void)closure;
    natsMsg_Destroy(message);
    __atomic_add_fetch(&fast_received_count, 1, __ATOMIC_RELEASE);
}

static long long slow_consumers(const fixture *f)
{
    static char response[HTTP_RESPONSE_SIZE_MAX];
    assert_int_equal(harness_http_get(f->server.monitor_port, "/varz", response, sizeof response,
                                      HARNESS_IO_TIMEOUT_MS),
                     HARNESS_OK);
    const char *body = strstr(response, "\r\n\r\n");
    assert_non_null(body);
    char value[TEXT_SIZE_MAX];
    assert_int_equal(harness_json_field(body + 4, "slow_consumers", value, sizeof value),
                     HARNESS_OK);
    return strtoll(value, NULL, 10);
}

/* One batch, then wait until the fast subscriber has everything published
 * so far: it is never far behind, so only the trickling reader can be. */
static bool publish_batch(natsConnection *publisher, int *published_count)
{
    static char payload[TRICKLE_PAYLOAD_BYTES];
    memset(payload, 't', sizeof payload);
    for (int index = 0; index < TRICKLE_BATCH_MESSAGES; index++)
        assert_int_equal(natsConnection_Publish(publisher, "trickle", payload, sizeof payload),
                         NATS_OK);
    *published_count += TRICKLE_BATCH_MESSAGES;
    (void)natsConnection_Flush(publisher);
    int64_t started_ms = harness_now_ms();
    while (__atomic_load_n(&fast_received_count, __ATOMIC_ACQUIRE) < *published_count) {
        if (harness_now_ms() - started_ms > TRICKLE_BATCH_TIMEOUT_MS) return false;
        harness_sleep_ms(1);
    }
    return true;
}

static harness_raw *trickling_subscriber(fixture *f)
{
    char line[LINE_SIZE_MAX];
    harness_raw *raw = fixture_raw_read_info(f, TRICKLE_RECEIVE_BUFFER_BYTES, line, sizeof line);
    fixture_raw_send(raw, "CONNECT " FIXTURE_FAST_CONNECT "\r\nSUB trickle 1\r\nPING\r\n");
    fixture_raw_expect_line(raw, "PONG");
    return raw;
}

/* Publishes until the server counts a slow consumer; ms it took, or -1. */
static int64_t publish_until_cut(fixture *f, natsConnection *publisher, int *published_count)
{
    int64_t started_ms = harness_now_ms();
    int64_t next_check_ms = started_ms;
    while (harness_now_ms() - started_ms < TRICKLE_DETECT_BOUND_MS) {
        if (harness_now_ms() >= next_check_ms) {
            if (slow_consumers(f) > 0) return harness_now_ms() - started_ms;
            next_check_ms = harness_now_ms() + TRICKLE_VARZ_INTERVAL_MS;
        }
        (void)publish_batch(publisher, published_count);
    }
    return -1;
}

static void test_trickling_reader(void **state)
{
    fixture *f = fixture_of(state);
    f->server.monitor_enabled = true;
    fixture_start(f, "max_pending: 4MB\nwrite_deadline: \"2s\"\n");
    __atomic_store_n(&fast_received_count, 0, __ATOMIC_RELEASE);
    harness_raw *raw = trickling_subscriber(f);
    natsConnection *fast = fixture_connect(f);
    natsSubscription *subscription = NULL;
    assert_int_equal(
        natsConnection_Subscribe(&subscription, fast, "trickle", on_fast_message, NULL), NATS_OK);
    fixture_track_subscription(f, subscription);
    assert_int_equal(natsSubscription_SetPendingLimits(subscription, -1, -1), NATS_OK);
    fixture_flush(fast);
    natsConnection *publisher = fixture_connect(f);

    static trickle reader;
    reader = (trickle){.fd = raw->fd};
    assert_int_equal(pthread_create(&reader.thread, NULL, trickle_run, &reader), 0);
    int published_count = 0;
    int64_t cut_ms = publish_until_cut(f, publisher, &published_count);
    __atomic_store_n(&reader.stop, 1, __ATOMIC_RELEASE);
    pthread_join(reader.thread, NULL);
    fprintf(stderr, "trickling reader: cut after %lld ms, %d messages published, %zu bytes read\n",
            (long long)cut_ms, published_count, reader.received_bytes);
    assert_true(cut_ms >= 0);

    int64_t started_ms = harness_now_ms();
    int target_count = published_count + RECOVERY_MESSAGE_COUNT;
    while (published_count < target_count) {
        assert_true(publish_batch(publisher, &published_count));
        assert_true(harness_now_ms() - started_ms < RECOVERY_BOUND_MS);
    }
    int64_t recovery_ms = harness_now_ms() - started_ms;
    fprintf(stderr, "trickling reader: then %d KiB to the fast subscriber in %lld ms\n",
            RECOVERY_MESSAGE_COUNT * TRICKLE_PAYLOAD_BYTES / 1024, (long long)recovery_ms);
    assert_int_equal(slow_consumers(f), 1); /* the fast subscriber was never cut */
    assert_false(fixture_wait_disconnects(f, 1, 0));
}

/* ======================================================================= main */

int main(int argc, char **argv)
{
    if (!fixture_parse_arguments(argc, argv)) return 2;
    const struct CMUnitTest tests[] = {
        FIXTURE_CASE(test_many_subscriptions_bystander),
        FIXTURE_CASE(test_many_queue_names_bystander),
        FIXTURE_CASE(test_max_subs),
        FIXTURE_CASE(test_trickling_reader),
    };
    return cmocka_run_group_tests_name("crowding", tests, fixture_group_setup,
                                       fixture_group_teardown);
}
