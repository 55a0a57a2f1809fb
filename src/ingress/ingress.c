/* ingress.c - the seed-format ingress (see ingress.h, docs/ingress.md).
 *
 * Each line a connection sends becomes an entry in that connection's FIFO
 * of answers: a malformed line's entry is done at once (ERROR#...), a good
 * line's entry is done when libkingcobra calls back with the reply, the
 * timeout, or the failure. The loop writes done entries from the head of
 * the FIFO only, so answers leave in the order the lines arrived however the
 * requests overtake each other.
 *
 * Sharing: the loop owns the connections; a callback touches only its own
 * entry (done, line), the connection's place on the ready list, the
 * outstanding count and the wake-up eventfd, all under `lock`. When a
 * connection closes with requests still in flight, their entries are
 * orphaned (entry->connection = NULL) and each callback frees its own. The
 * ingress itself is freed by whoever comes last: kci_ingress_stop, or the
 * last outstanding callback after it.
 *
 * Back-pressure: a connection is not read while it has
 * KCI_INGRESS_PIPELINE_MAX unanswered lines or KCI_INGRESS_OUTPUT_BYTES_HIGH
 * unsent bytes. The bound is checked per read, so one read of many short
 * lines may overshoot it by what KCI_INGRESS_READ_BYTES holds; past
 * libkingcobra's own bound on requests in flight, lines are answered
 * ERROR#... (KC_ERR_LIMIT) rather than queued. */
#include "ingress.h"

#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/log.h"
#include "common/net.h"
#include "gate.h"
#include "ingress/metrics.h"
#include "seed_line.h"
#include "service/headers.h"
#include "transport.h"

typedef struct connection connection;

typedef struct pending {
    struct pending *next;
    kci_ingress *ingress;
    connection *connection; /* NULL once its connection closed (an orphan) */
    bool done;
    char *line; /* the answer with its LF, once done (NULL: out of memory) */
    size_t line_length;
    size_t client_length;
    size_t timestamp_length;
    char fields[]; /* client, then timestamp; no NULs */
} pending;

struct connection {
    int fd;
    SSL *ssl;              /* NULL: plain TCP */
    bool read_wants_write; /* TLS: a read must wait until the socket is writable */
    bool write_wants_read; /* TLS: a write must wait until the socket is readable */
    uint32_t slot;         /* in ingress->connections */
    kci_seed_line_parser parser;
    kci_gate gate; /* the token line first, when the ingress has a token */
    pending *head;
    pending *tail;
    uint32_t pending_count;
    char *output;
    size_t output_length;
    size_t output_sent;
    size_t output_capacity;
    uint32_t events; /* registered with epoll */
    bool read_closed;
    bool ready; /* on ingress->ready_head */
    connection *ready_next;
};

struct kci_ingress {
    kc_client *client;
    char type[KC_TYPE_BYTES_MAX + 1];
    char token[KCI_INGRESS_TOKEN_BYTES_MAX + 1]; /* "": no token line */
    char host[KCI_INGRESS_HOST_BYTES_MAX];
    int port;
    int64_t timeout_ms;
    size_t line_bytes_max;
    uint32_t connections_max;
    SSL_CTX *tls; /* NULL: plain TCP */
    int listen_fd;
    int epoll_fd;
    int wake_fd;
    connection **connections;
    uint32_t connection_count;
    uint8_t *read_buffer;
    pthread_t thread;
    bool thread_started;
    atomic_bool stopping;
    int64_t drain_ms;
    bool drain_begun;
    int64_t drain_deadline_ms;

    pthread_mutex_t lock; /* below, and every entry's done, line and connection */
    connection *ready_head;
    uint64_t outstanding; /* requests whose callback has not run */
    bool stopped;         /* kci_ingress_stop is done with it */
};

static const char OUT_OF_MEMORY_LINE[] = "ERROR#out of memory\n";
static const char TOO_MANY_CONNECTIONS_LINE[] = "ERROR#too many connections\n";

/* ---- answer lines ---------------------------------------------------------- */

/* A growing text; a failed allocation sticks and the result is NULL. */
typedef struct text {
    char *data;
    size_t length;
    size_t capacity;
    bool failed;
} text;

static void text_append(text *builder, const void *bytes, size_t size)
{
    if (builder->failed || size == 0) return;
    if (builder->length + size + 1 > builder->capacity) {
        size_t capacity = builder->capacity > 0 ? builder->capacity : 128;
        while (capacity < builder->length + size + 1)
            capacity *= 2;
        char *data = realloc(builder->data, capacity);
        if (data == NULL) {
            builder->failed = true;
            return;
        }
        builder->data = data;
        builder->capacity = capacity;
    }
    memcpy(builder->data + builder->length, bytes, size);
    builder->length += size;
    builder->data[builder->length] = '\0';
}

static void text_append_string(text *builder, const char *string)
{
    text_append(builder, string, strlen(string));
}

/* A reply or message may hold anything; on the line, LF, CR and the escape
 * itself become \n, \r and \\ (docs/ingress.md). */
static void text_append_escaped(text *builder, const uint8_t *bytes, size_t size)
{
    if (size == 0) return;
    size_t run_start = 0;
    for (size_t index = 0; index < size; index++) {
        const char *escape = bytes[index] == '\n'   ? "\\n"
                             : bytes[index] == '\r' ? "\\r"
                             : bytes[index] == '\\' ? "\\\\"
                                                    : NULL;
        if (escape == NULL) continue;
        text_append(builder, bytes + run_start, index - run_start);
        text_append(builder, escape, 2);
        run_start = index + 1;
    }
    text_append(builder, bytes + run_start, size - run_start);
}

/* Returns the finished line (malloc'd) or NULL. */
static char *text_finish(text *builder, size_t *length)
{
    text_append(builder, "\n", 1);
    if (builder->failed) {
        free(builder->data);
        return NULL;
    }
    *length = builder->length;
    return builder->data;
}

static char *error_line(const char *reason, size_t *length)
{
    text builder = {0};
    text_append_string(&builder, "ERROR#");
    text_append_escaped(&builder, (const uint8_t *)reason, strlen(reason));
    return text_finish(&builder, length);
}

/* What a request's outcome looks like on the line. */
static char *answer_line(const kci_ingress *ingress, const pending *entry, kc_err status,
                         const kc_reply *reply, size_t *length)
{
    text builder = {0};
    char reason[KC_ERROR_MESSAGE_BYTES_MAX + KC_TYPE_BYTES_MAX + 64];
    if (status == KC_OK) {
        size_t payload_length = 0;
        const uint8_t *payload = kc_reply_payload(reply, &payload_length);
        text_append_string(&builder, "REPLY#");
        text_append(&builder, entry->fields, entry->client_length);
        text_append(&builder, "#", 1);
        text_append(&builder, entry->fields + entry->client_length, entry->timestamp_length);
        text_append(&builder, "#", 1);
        text_append_escaped(&builder, payload, payload != NULL ? payload_length : 0);
        return text_finish(&builder, length);
    }
    if (status == KC_ERR_SERVICE && reply != NULL)
        snprintf(reason, sizeof reason, "%d %s", kc_reply_error_code(reply),
                 kc_reply_error_message(reply));
    else if (status == KC_ERR_TIMEOUT)
        snprintf(reason, sizeof reason, "timeout");
    else if (status == KC_ERR_NO_RESPONDERS)
        snprintf(reason, sizeof reason, "no service for type %s", ingress->type);
    else
        snprintf(reason, sizeof reason, "%s", kc_strerror(status));
    return error_line(reason, length);
}

/* ---- entries ----------------------------------------------------------------- */

static pending *pending_new(kci_ingress *ingress, connection *owner, const char *client,
                            size_t client_length, const char *timestamp, size_t timestamp_length)
{
    pending *entry = calloc(1, sizeof *entry + client_length + timestamp_length);
    if (entry == NULL) return NULL;
    entry->ingress = ingress;
    entry->connection = owner;
    entry->client_length = client_length;
    entry->timestamp_length = timestamp_length;
    memcpy(entry->fields, client, client_length);
    memcpy(entry->fields + client_length, timestamp, timestamp_length);
    return entry;
}

static void pending_free(pending *entry)
{
    free(entry->line);
    free(entry);
}

/* Under the lock: at the tail of its connection's FIFO. */
static void pending_append(connection *owner, pending *entry)
{
    if (owner->tail != NULL)
        owner->tail->next = entry;
    else
        owner->head = entry;
    owner->tail = entry;
    owner->pending_count++;
}

static void wake_loop(kci_ingress *ingress)
{
    uint64_t one = 1;
    ssize_t written = write(ingress->wake_fd, &one, sizeof one);
    (void)written; /* a full counter still wakes the loop */
}

/* Under the lock: the loop should look at owner's FIFO. */
static void mark_ready(kci_ingress *ingress, connection *owner)
{
    if (owner->ready) return;
    owner->ready = true;
    owner->ready_next = ingress->ready_head;
    ingress->ready_head = owner;
    wake_loop(ingress);
}

static void ingress_free(kci_ingress *ingress);

/* libkingcobra's callback, on one of its threads. */
static void on_reply(kc_client *client, kc_err status, kc_reply *reply, void *closure)
{
    pending *entry = closure;
    kci_ingress *ingress = entry->ingress;
    size_t length = 0;
    char *line = answer_line(ingress, entry, status, reply, &length);
    kci_counter_inc(&kci_ingress_metric_values.replies[status == KC_OK ? 0 : 1]);
    kc_reply_destroy(reply);
    pthread_mutex_lock(&ingress->lock);
    assert(ingress->outstanding > 0 && !entry->done);
    ingress->outstanding--;
    if (entry->connection == NULL) {
        free(line);
        pending_free(entry);
    } else {
        entry->line = line;
        entry->line_length = length;
        entry->done = true;
        mark_ready(ingress, entry->connection); /* wakes under the lock: see ingress_free */
    }
    bool last = ingress->stopped && ingress->outstanding == 0;
    pthread_mutex_unlock(&ingress->lock);
    if (last) ingress_free(ingress);
}

/* An answer known at once (a malformed line, a request that could not be
 * sent). False if even that could not be allocated. */
static bool push_error(kci_ingress *ingress, connection *owner, const char *reason)
{
    pending *entry = pending_new(ingress, owner, "", 0, "", 0);
    if (entry == NULL) return false;
    entry->line = error_line(reason, &entry->line_length);
    entry->done = true;
    pthread_mutex_lock(&ingress->lock);
    pending_append(owner, entry);
    pthread_mutex_unlock(&ingress->lock);
    return true;
}

static bool push_parse_error(kci_ingress *ingress, connection *owner, kci_seed_error error)
{
    kci_counter_inc(&kci_ingress_metric_values.malformed_lines);
    char reason[128];
    if (error == KCI_SEED_ERR_TOO_LONG)
        snprintf(reason, sizeof reason, "line too long (more than %zu bytes)",
                 ingress->line_bytes_max);
    else
        snprintf(reason, sizeof reason, "%s", kci_seed_error_text(error));
    return push_error(ingress, owner, reason);
}

/* A good line: an asynchronous request of the configured type. */
static bool dispatch_line(kci_ingress *ingress, connection *owner, const kci_seed_line *line)
{
    pending *entry = pending_new(ingress, owner, line->client, line->client_length, line->timestamp,
                                 line->timestamp_length);
    if (entry == NULL) return false;
    pthread_mutex_lock(&ingress->lock);
    pending_append(owner, entry);
    ingress->outstanding++;
    pthread_mutex_unlock(&ingress->lock);
    kc_err err =
        kc_client_request_async(ingress->client, ingress->type, line->payload, line->payload_length,
                                ingress->timeout_ms, on_reply, entry);
    if (err == KC_OK) {
        kci_counter_inc(&kci_ingress_metric_values.requests);
        return true;
    }
    /* No callback will come: the entry is answered here. */
    kci_counter_inc(&kci_ingress_metric_values.replies[1]);
    char reason[KC_ERROR_MESSAGE_BYTES_MAX + 64];
    snprintf(reason, sizeof reason, "%s: %s", kc_strerror(err), kc_last_error());
    size_t length = 0;
    char *answer = error_line(reason, &length);
    pthread_mutex_lock(&ingress->lock);
    ingress->outstanding--;
    entry->line = answer;
    entry->line_length = length;
    entry->done = true;
    pthread_mutex_unlock(&ingress->lock);
    return true;
}

/* ---- connections ---------------------------------------------------------- */

static void connection_close(kci_ingress *ingress, connection *owner)
{
    epoll_ctl(ingress->epoll_fd, EPOLL_CTL_DEL, owner->fd, NULL);
    kci_transport_close(owner->ssl);
    close(owner->fd);
    pthread_mutex_lock(&ingress->lock);
    for (connection **link = &ingress->ready_head; *link != NULL; link = &(*link)->ready_next) {
        if (*link != owner) continue;
        *link = owner->ready_next;
        break;
    }
    pending *entry = owner->head;
    while (entry != NULL) {
        pending *next = entry->next;
        if (entry->done)
            pending_free(entry);
        else
            entry->connection = NULL; /* its callback frees it */
        entry = next;
    }
    pthread_mutex_unlock(&ingress->lock);
    uint32_t last = ingress->connection_count - 1;
    ingress->connections[owner->slot] = ingress->connections[last];
    ingress->connections[owner->slot]->slot = owner->slot;
    ingress->connections[last] = NULL;
    ingress->connection_count--;
    kci_gauge_set(&kci_ingress_metric_values.connections, ingress->connection_count);
    kci_seed_line_free(&owner->parser);
    free(owner->output);
    free(owner);
}

static bool output_append(connection *owner, const char *bytes, size_t size)
{
    if (owner->output_length + size > owner->output_capacity) {
        size_t capacity = owner->output_capacity > 0 ? owner->output_capacity : 1024;
        while (capacity < owner->output_length + size)
            capacity *= 2;
        char *output = realloc(owner->output, capacity);
        if (output == NULL) return false;
        owner->output = output;
        owner->output_capacity = capacity;
    }
    memcpy(owner->output + owner->output_length, bytes, size);
    owner->output_length += size;
    return true;
}

/* Moves the done entries at the head of the FIFO to the output. */
static bool collect_answers(kci_ingress *ingress, connection *owner)
{
    bool ok = true;
    pthread_mutex_lock(&ingress->lock);
    while (ok && owner->head != NULL && owner->head->done) {
        pending *entry = owner->head;
        ok = entry->line != NULL
                 ? output_append(owner, entry->line, entry->line_length)
                 : output_append(owner, OUT_OF_MEMORY_LINE, sizeof OUT_OF_MEMORY_LINE - 1);
        owner->head = entry->next;
        if (owner->head == NULL) owner->tail = NULL;
        owner->pending_count--;
        pending_free(entry);
    }
    pthread_mutex_unlock(&ingress->lock);
    return ok;
}

/* Writes what it can; false if the connection failed. */
static bool write_output(connection *owner)
{
    owner->write_wants_read = false;
    while (owner->output_sent < owner->output_length) {
        ssize_t sent =
            kci_transport_write(owner->ssl, owner->fd, owner->output + owner->output_sent,
                                owner->output_length - owner->output_sent);
        if (sent == KCI_TRANSPORT_WANT_WRITE) return true;
        if (sent == KCI_TRANSPORT_WANT_READ) return owner->write_wants_read = true;
        if (sent <= 0) return false;
        owner->output_sent += (size_t)sent;
    }
    owner->output_sent = 0;
    owner->output_length = 0;
    return true;
}

/* Not paused by back-pressure, and the peer may still send. */
static bool can_read(const connection *owner)
{
    return !owner->read_closed && owner->pending_count < KCI_INGRESS_PIPELINE_MAX &&
           owner->output_length - owner->output_sent < KCI_INGRESS_OUTPUT_BYTES_HIGH;
}

static bool connection_read(kci_ingress *ingress, connection *owner);

static void update_interest(kci_ingress *ingress, connection *owner)
{
    size_t unsent = owner->output_length - owner->output_sent;
    uint32_t events = 0;
    if (can_read(owner) || owner->write_wants_read) events |= EPOLLIN;
    if (unsent > 0 || owner->read_wants_write) events |= EPOLLOUT;
    if (events == owner->events) return;
    struct epoll_event event = {.events = events, .data.ptr = owner};
    if (epoll_ctl(ingress->epoll_fd, EPOLL_CTL_MOD, owner->fd, &event) == 0) owner->events = events;
}

/* After anything happened to owner: answers out, then close it if it is
 * finished (the peer is done sending and everything was answered). */
static void connection_settle(kci_ingress *ingress, connection *owner)
{
    bool ok = true;
    /* TLS may hold decrypted bytes that epoll cannot see: read them while
     * back-pressure allows, a bounded number of times, then come back. */
    for (int round = 0; ok && round < KCI_INGRESS_PIPELINE_MAX; round++) {
        ok = collect_answers(ingress, owner) && write_output(owner);
        if (!ok || !kci_transport_pending(owner->ssl) || !can_read(owner)) break;
        ok = connection_read(ingress, owner);
    }
    if (ok && kci_transport_pending(owner->ssl) && can_read(owner)) {
        pthread_mutex_lock(&ingress->lock);
        mark_ready(ingress, owner);
        pthread_mutex_unlock(&ingress->lock);
    }
    bool finished =
        owner->read_closed && owner->head == NULL && owner->output_sent == owner->output_length;
    if (!ok || finished) {
        connection_close(ingress, owner);
        return;
    }
    update_interest(ingress, owner);
}

/* Feeds what was read to the parser; false if the connection must close. */
static bool consume_input(kci_ingress *ingress, connection *owner, const uint8_t *bytes,
                          size_t size)
{
    size_t offset = 0;
    if (ingress->token[0] != '\0' && owner->gate.state != KCI_GATE_OPEN) {
        kci_gate_state state = kci_gate_feed(&owner->gate, ingress->token, bytes, size, &offset);
        if (state == KCI_GATE_REFUSED) { /* answered, then closed: nothing more is read */
            owner->read_closed = true;
            return push_error(ingress, owner,
                              "not authorized (the first line must be AUTH#<token>)");
        }
    }
    while (offset < size) {
        size_t consumed = 0;
        kci_seed_line line;
        kci_seed_result result =
            kci_seed_line_feed(&owner->parser, bytes + offset, size - offset, &consumed, &line);
        offset += consumed;
        bool ok = true;
        if (result == KCI_SEED_LINE)
            ok = dispatch_line(ingress, owner, &line);
        else if (result == KCI_SEED_ERROR)
            ok = push_parse_error(ingress, owner, owner->parser.error);
        if (!ok) return false;
    }
    return true;
}

/* One read; false if the connection must close. */
static bool connection_read(kci_ingress *ingress, connection *owner)
{
    owner->read_wants_write = false;
    ssize_t got =
        kci_transport_read(owner->ssl, owner->fd, ingress->read_buffer, KCI_INGRESS_READ_BYTES);
    if (got == KCI_TRANSPORT_WANT_READ) return true;
    if (got == KCI_TRANSPORT_WANT_WRITE) return owner->read_wants_write = true;
    if (got == KCI_TRANSPORT_FAILED) return false;
    if (got > 0) return consume_input(ingress, owner, ingress->read_buffer, (size_t)got);
    /* The peer is done sending (it may still read): answer what it sent. */
    owner->read_closed = true;
    if (ingress->token[0] != '\0' && owner->gate.state != KCI_GATE_OPEN) return true;
    if (kci_seed_line_finish(&owner->parser))
        return push_parse_error(ingress, owner, owner->parser.error);
    return true;
}

static void connection_event(kci_ingress *ingress, connection *owner, uint32_t events)
{
    bool ok = (events & (EPOLLERR | EPOLLHUP)) == 0;
    bool readable =
        (events & EPOLLIN) != 0 || ((events & EPOLLOUT) != 0 && owner->read_wants_write);
    if (ok && readable && !owner->read_closed) ok = connection_read(ingress, owner);
    if (!ok) {
        connection_close(ingress, owner);
        return;
    }
    connection_settle(ingress, owner);
}

static void refuse_connection(int fd)
{
    ssize_t sent = send(fd, TOO_MANY_CONNECTIONS_LINE, sizeof TOO_MANY_CONNECTIONS_LINE - 1,
                        MSG_NOSIGNAL | MSG_DONTWAIT);
    (void)sent; /* best effort: the peer learns why, or only that it was closed */
    close(fd);
}

static void accept_one(kci_ingress *ingress, int fd)
{
    if (ingress->connection_count == ingress->connections_max) {
        kci_warn("ingress: refused a connection: %" PRIu32 " connections already",
                 ingress->connections_max);
        refuse_connection(fd);
        kci_counter_inc(&kci_ingress_metric_values.connections_refused);
        return;
    }
    connection *owner = calloc(1, sizeof *owner);
    struct epoll_event event = {.events = EPOLLIN, .data.ptr = owner};
    if (owner == NULL || epoll_ctl(ingress->epoll_fd, EPOLL_CTL_ADD, fd, &event) != 0) {
        kci_warn("ingress: cannot take a connection: %s", strerror(errno));
        free(owner);
        close(fd);
        return;
    }
    owner->fd = fd;
    owner->ssl = ingress->tls != NULL ? kci_transport_tls_accept(ingress->tls, fd) : NULL;
    if (ingress->tls != NULL && owner->ssl == NULL) {
        kci_warn("ingress: cannot start TLS on a connection");
        epoll_ctl(ingress->epoll_fd, EPOLL_CTL_DEL, fd, NULL);
        free(owner);
        close(fd);
        return;
    }
    owner->events = EPOLLIN;
    owner->slot = ingress->connection_count;
    kci_seed_line_init(&owner->parser, ingress->line_bytes_max);
    ingress->connections[ingress->connection_count++] = owner;
    kci_counter_inc(&kci_ingress_metric_values.connections_accepted);
    kci_gauge_set(&kci_ingress_metric_values.connections, ingress->connection_count);
}

static void accept_connections(kci_ingress *ingress)
{
    for (int count = 0; count < KCI_INGRESS_ACCEPT_BATCH_MAX; count++) {
        int fd = accept4(ingress->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd >= 0) {
            accept_one(ingress, fd);
            continue;
        }
        if (errno == EINTR || errno == ECONNABORTED) continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK)
            kci_warn("ingress: accept failed: %s", strerror(errno));
        return;
    }
}

/* ---- the loop ---------------------------------------------------------------- */

static void settle_ready(kci_ingress *ingress)
{
    uint64_t count = 0;
    ssize_t got = read(ingress->wake_fd, &count, sizeof count); /* resets the eventfd */
    (void)got;
    pthread_mutex_lock(&ingress->lock);
    connection *ready = ingress->ready_head;
    ingress->ready_head = NULL;
    for (connection *owner = ready; owner != NULL; owner = owner->ready_next)
        owner->ready = false;
    pthread_mutex_unlock(&ingress->lock);
    /* Only this thread closes connections, so the list stays valid; closing
     * one does not touch the others' ready_next. */
    while (ready != NULL) {
        connection *next = ready->ready_next;
        connection_settle(ingress, ready);
        ready = next;
    }
}

/* The first pass of a stop: no more accepts or reads; partial lines are
 * dropped. True once every connection is gone or the drain time is up. */
static bool drain_step(kci_ingress *ingress)
{
    if (!ingress->drain_begun) {
        ingress->drain_begun = true;
        ingress->drain_deadline_ms = kci_monotonic_ms() + ingress->drain_ms;
        epoll_ctl(ingress->epoll_fd, EPOLL_CTL_DEL, ingress->listen_fd, NULL);
        close(ingress->listen_fd);
        ingress->listen_fd = -1;
        for (uint32_t index = ingress->connection_count; index-- > 0;) {
            connection *owner = ingress->connections[index];
            owner->read_closed = true;
            connection_settle(ingress, owner); /* may close it: index moves down anyway */
        }
    }
    return ingress->connection_count == 0 || kci_monotonic_ms() >= ingress->drain_deadline_ms;
}

static void *ingress_main(void *argument)
{
    kci_ingress *ingress = argument;
    struct epoll_event events[KCI_INGRESS_EPOLL_EVENTS_MAX];
    for (;;) {
        bool stopping = atomic_load(&ingress->stopping);
        if (stopping && drain_step(ingress)) break;
        int count = epoll_wait(ingress->epoll_fd, events, KCI_INGRESS_EPOLL_EVENTS_MAX,
                               stopping ? KCI_INGRESS_STOP_POLL_MS : -1);
        if (count < 0 && errno != EINTR) {
            kci_error("ingress: epoll_wait failed: %s", strerror(errno));
            break;
        }
        bool woken = false;
        for (int index = 0; index < count; index++) {
            void *source = events[index].data.ptr;
            if (source == &ingress->listen_fd)
                accept_connections(ingress);
            else if (source == &ingress->wake_fd)
                woken = true;
            else
                connection_event(ingress, source, events[index].events);
        }
        if (woken) settle_ready(ingress);
    }
    while (ingress->connection_count > 0)
        connection_close(ingress, ingress->connections[ingress->connection_count - 1]);
    return NULL;
}

/* ---- start and stop ---------------------------------------------------------- */

static void ingress_free(kci_ingress *ingress)
{
    assert(ingress->connection_count == 0 && ingress->outstanding == 0);
    if (ingress->listen_fd >= 0) close(ingress->listen_fd);
    if (ingress->epoll_fd >= 0) close(ingress->epoll_fd);
    if (ingress->wake_fd >= 0) close(ingress->wake_fd);
    kci_transport_tls_destroy(ingress->tls);
    pthread_mutex_destroy(&ingress->lock);
    free(ingress->connections);
    free(ingress->read_buffer);
    free(ingress);
}

static kc_err check_config(const kci_ingress_config *config, char *error, size_t error_size)
{
    if (config == NULL || config->type == NULL || strlen(config->type) > KC_TYPE_BYTES_MAX ||
        !kci_token_valid(config->type)) {
        snprintf(error, error_size, "ingress: type \"%s\" is not one subject token",
                 config != NULL && config->type != NULL ? config->type : "(null)");
        return KC_ERR_CONFIG;
    }
    if (config->timeout_ms <= 0) {
        snprintf(error, error_size, "ingress: timeout must be positive");
        return KC_ERR_CONFIG;
    }
    if (config->host == NULL || strlen(config->host) >= KCI_INGRESS_HOST_BYTES_MAX) {
        snprintf(error, error_size, "ingress: no listen host, or one too long");
        return KC_ERR_CONFIG;
    }
    if (config->token != NULL &&
        (config->token[0] == '\0' || strlen(config->token) > KCI_INGRESS_TOKEN_BYTES_MAX ||
         strpbrk(config->token, "\r\n") != NULL)) {
        snprintf(error, error_size, "ingress: the token must be 1 to %d bytes on one line",
                 KCI_INGRESS_TOKEN_BYTES_MAX);
        return KC_ERR_CONFIG;
    }
    return KC_OK;
}

static kci_ingress *ingress_new(kc_client *client, const kci_ingress_config *config)
{
    kci_ingress *ingress = calloc(1, sizeof *ingress);
    if (ingress == NULL) return NULL;
    ingress->client = client;
    snprintf(ingress->type, sizeof ingress->type, "%s", config->type);
    snprintf(ingress->host, sizeof ingress->host, "%s", config->host);
    if (config->token != NULL) snprintf(ingress->token, sizeof ingress->token, "%s", config->token);
    ingress->timeout_ms = config->timeout_ms;
    ingress->line_bytes_max =
        config->line_bytes_max > 0 ? config->line_bytes_max : KCI_SEED_LINE_BYTES_MAX_DEFAULT;
    ingress->connections_max =
        config->connections_max > 0 ? config->connections_max : KCI_INGRESS_CONNECTIONS_MAX_DEFAULT;
    ingress->listen_fd = ingress->epoll_fd = ingress->wake_fd = -1;
    pthread_mutex_init(&ingress->lock, NULL);
    ingress->connections = calloc(ingress->connections_max, sizeof *ingress->connections);
    ingress->read_buffer = malloc(KCI_INGRESS_READ_BYTES);
    if (ingress->connections == NULL || ingress->read_buffer == NULL) {
        ingress_free(ingress);
        return NULL;
    }
    return ingress;
}

static kc_err open_fds(kci_ingress *ingress, int port, char *error, size_t error_size)
{
    kc_err err =
        kci_listen_tcp(ingress->host, port, KCI_INGRESS_LISTEN_BACKLOG, "seed-format ingress",
                       &ingress->listen_fd, &ingress->port, error, error_size);
    if (err != KC_OK) return err;
    ingress->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
    ingress->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    struct epoll_event listen_event = {.events = EPOLLIN, .data.ptr = &ingress->listen_fd};
    struct epoll_event wake_event = {.events = EPOLLIN, .data.ptr = &ingress->wake_fd};
    if (ingress->epoll_fd < 0 || ingress->wake_fd < 0 ||
        epoll_ctl(ingress->epoll_fd, EPOLL_CTL_ADD, ingress->listen_fd, &listen_event) != 0 ||
        epoll_ctl(ingress->epoll_fd, EPOLL_CTL_ADD, ingress->wake_fd, &wake_event) != 0) {
        snprintf(error, error_size, "ingress: cannot set up its event loop: %s", strerror(errno));
        return KC_ERR_IO;
    }
    return KC_OK;
}

kc_err kci_ingress_start(kci_ingress **out, kc_client *client, const kci_ingress_config *config,
                         char *error, size_t error_size)
{
    assert(out != NULL && client != NULL);
    *out = NULL;
    kc_err err = check_config(config, error, error_size);
    if (err != KC_OK) return err;
    kci_ingress_metrics_register();
    kci_ingress *ingress = ingress_new(client, config);
    if (ingress == NULL) {
        snprintf(error, error_size, "ingress: out of memory");
        return KC_ERR_NOMEM;
    }
    err = kci_transport_tls_create(&ingress->tls, config->cert_file, config->key_file, error,
                                   error_size);
    if (err == KC_OK) err = open_fds(ingress, config->port, error, error_size);
    if (err == KC_OK && pthread_create(&ingress->thread, NULL, ingress_main, ingress) != 0) {
        snprintf(error, error_size, "ingress: cannot start its thread");
        err = KC_ERR_IO;
    }
    if (err != KC_OK) {
        ingress_free(ingress);
        return err;
    }
    ingress->thread_started = true;
    kci_info("ingress: listening for seed-format lines on %s:%d (type %s%s%s)", ingress->host,
             ingress->port, ingress->type, ingress->tls != NULL ? ", TLS" : "",
             ingress->token[0] != '\0' ? ", token" : "");
    if (!kci_host_is_loopback(ingress->host) && ingress->token[0] == '\0')
        kci_warn("ingress: %s is reachable beyond this host and has no token: anyone who reaches "
                 "it makes requests with the ingress's identity (set ingress { token }; "
                 "docs/ingress.md)",
                 ingress->host);
    *out = ingress;
    return KC_OK;
}

int kci_ingress_port(const kci_ingress *ingress)
{
    return ingress != NULL ? ingress->port : -1;
}

void kci_ingress_stop(kci_ingress *ingress, int64_t drain_ms)
{
    if (ingress == NULL) return;
    ingress->drain_ms = drain_ms > 0 ? drain_ms : 0;
    atomic_store(&ingress->stopping, true);
    wake_loop(ingress);
    pthread_join(ingress->thread, NULL);
    pthread_mutex_lock(&ingress->lock);
    ingress->stopped = true;
    bool last = ingress->outstanding == 0;
    uint64_t outstanding = ingress->outstanding;
    pthread_mutex_unlock(&ingress->lock);
    if (last) {
        ingress_free(ingress);
        return;
    }
    kci_debug("ingress: %" PRIu64 " requests still in flight; the last answer frees the rest",
              outstanding);
}
