/* server.c - the listener, the epoll loop, batching, timers, control requests and
 * shutdown (see server.h for the design). */
#include "server.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "auth.h"
#include "client.h"
#include "common/clock.h"
#include "common/log.h"
#include "common/net.h"
#include "monitor.h"
#include "quarantine.h"
#include "tls.h"
#include "verifier.h"

enum {
    ACCEPTS_PER_WAKEUP_MAX = 256,
    SHUTDOWN_FLUSH_MS = 2000,
    FLUSH_LIST_INITIAL = 64,
};

static const char MAX_CONNECTIONS_ERROR[] = "-ERR 'maximum connections exceeded'\r\n";

uint64_t kci_server_random(kci_server *server)
{
    uint64_t x = server->random_state; /* xorshift64*: fast, good enough to spread load */
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    server->random_state = x;
    return x * 0x2545F4914F6CDD1DULL;
}

void kci_server_mark_dirty(kci_server *server, kci_client *client)
{
    if (client->in_flush_list) return;
    if (server->flush_count == server->flush_capacity) {
        uint32_t capacity =
            server->flush_capacity ? server->flush_capacity * 2 : FLUSH_LIST_INITIAL;
        kci_client **bigger = realloc(server->flush_list, capacity * sizeof *bigger);
        if (bigger == NULL) { /* flush now rather than lose track of it */
            kci_client_flush(client);
            return;
        }
        server->flush_list = bigger;
        server->flush_capacity = capacity;
    }
    client->in_flush_list = true;
    server->flush_list[server->flush_count++] = client;
}

void kci_server_stall(kci_server *server, kci_client *client)
{
    if (client->stalled) return;
    if (server->stalled_count == server->stalled_capacity) {
        uint32_t capacity = server->stalled_capacity ? server->stalled_capacity * 2 : 16;
        kci_client **bigger = realloc(server->stalled, capacity * sizeof *bigger);
        if (bigger == NULL) { /* no back-pressure this time; max_pending still holds */
            client->stall_on = NULL;
            return;
        }
        server->stalled = bigger;
        server->stalled_capacity = capacity;
    }
    client->stalled = true;
    client->stall_until_ms = server->now_ms + KCI_STALL_MS_MAX;
    struct epoll_event event = {.events = kci_client_epoll_events(client), .data.ptr = client};
    epoll_ctl(server->epoll_fd, EPOLL_CTL_MOD, client->fd, &event);
    server->stalled[server->stalled_count++] = client;
}

static bool stall_over(const kci_server *server, const kci_client *client)
{
    const kci_client *lagging = client->stall_on;
    /* Wait for a full drain, not just below the threshold: the next
     * publication may be as large as max_payload. */
    return client->closing || lagging == NULL || lagging->closing ||
           kci_client_pending_bytes(lagging) == 0 || server->now_ms >= client->stall_until_ms;
}

/* Reads stalled publishers again once their subscriber caught up. Runs in
 * every end_batch before closed clients are freed, so stall_on is never a
 * dangling pointer: a subscriber closed in this batch is still here. */
static void resume_stalled(kci_server *server)
{
    uint32_t kept = 0;
    for (uint32_t i = 0; i < server->stalled_count; i++) {
        kci_client *client = server->stalled[i];
        if (!stall_over(server, client)) {
            server->stalled[kept++] = client;
            continue;
        }
        client->stalled = false;
        client->stall_on = NULL;
        if (client->closing) continue;
        struct epoll_event event = {.events = kci_client_epoll_events(client), .data.ptr = client};
        epoll_ctl(server->epoll_fd, EPOLL_CTL_MOD, client->fd, &event);
    }
    server->stalled_count = kept;
}

/* ---- set-up ----------------------------------------------------------- */

static void make_server_id(kci_server *server)
{
    static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    uint8_t random_bytes[KCI_SERVER_ID_BYTES];
    if (getrandom(random_bytes, sizeof random_bytes, 0) != (ssize_t)sizeof random_bytes)
        for (size_t i = 0; i < sizeof random_bytes; i++)
            random_bytes[i] = (uint8_t)rand();
    server->server_id[0] = 'N';
    for (size_t i = 1; i < KCI_SERVER_ID_BYTES; i++)
        server->server_id[i] = alphabet[random_bytes[i] % 32];
    server->server_id[KCI_SERVER_ID_BYTES] = '\0';
    uint8_t secret[KCI_INTERNAL_PASSWORD_BYTES];
    if (getrandom(secret, sizeof secret, 0) != (ssize_t)sizeof secret)
        for (size_t i = 0; i < sizeof secret; i++)
            secret[i] = (uint8_t)rand();
    for (size_t i = 0; i < KCI_INTERNAL_PASSWORD_BYTES; i++)
        server->internal_password[i] = alphabet[secret[i] % 32];
    server->internal_password[KCI_INTERNAL_PASSWORD_BYTES] = '\0';
    memcpy(&server->random_state, random_bytes, sizeof server->random_state);
    server->random_state |= 1;
}

/* Two INFO prefixes: the public one says what the options require; the
 * internal listener's (loopback, components only) always requires the
 * internal user's password and never TLS, since its connections are not
 * encrypted even when the public listener is. */
static void render_info(kci_server *server)
{
    const kci_options *options = &server->options;
    char common[KCI_INFO_BYTES_MAX];
    int n =
        snprintf(common, sizeof common,
                 "INFO {\"server_id\":\"%s\",\"server_name\":\"%s\",\"version\":\"%s\","
                 "\"kcobrad_version\":\"%s\",\"proto\":1,\"go\":\"kcobrad\","
                 "\"host\":\"%s\",\"port\":%d,\"headers\":true,\"max_payload\":%lld",
                 server->server_id, options->server_name ? options->server_name : server->server_id,
                 KCI_NATS_COMPATIBLE_VERSION, KC_VERSION, options->host, server->port,
                 (long long)options->max_payload_bytes);
    assert(n > 0 && (size_t)n < sizeof common);
    n = snprintf(server->info_prefix, sizeof server->info_prefix, "%s%s%s%s", common,
                 kci_auth_required(options) ? ",\"auth_required\":true" : "",
                 options->tls_enabled ? ",\"tls_required\":true" : "",
                 options->tls_enabled && options->tls_verify ? ",\"tls_verify\":true" : "");
    assert(n > 0 && (size_t)n < sizeof server->info_prefix);
    server->info_prefix_len = (size_t)n;
    n = snprintf(server->internal_info_prefix, sizeof server->internal_info_prefix,
                 "%s,\"auth_required\":true", common);
    assert(n > 0 && (size_t)n < sizeof server->internal_info_prefix);
    server->internal_info_prefix_len = (size_t)n;
}

static kc_err watch(kci_server *server, int fd, kci_source *source)
{
    struct epoll_event event = {.events = EPOLLIN, .data.ptr = source};
    return epoll_ctl(server->epoll_fd, EPOLL_CTL_ADD, fd, &event) == 0 ? KC_OK : KC_ERR_IO;
}

/* The loop's doorbell: other threads (kcobrad's signal thread) ask for a
 * reload or a stop by setting a bit and ringing the eventfd. */
static kc_err open_control(kci_server *server)
{
    server->control_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (server->control_fd < 0) return KC_ERR_IO;
    server->control_source.kind = KCI_SOURCE_CONTROL;
    return watch(server, server->control_fd, &server->control_source);
}

static void request(kci_server *server, unsigned bits)
{
    atomic_fetch_or(&server->control_requests, bits);
    uint64_t one = 1;
    ssize_t ignored = write(server->control_fd, &one, sizeof one);
    (void)ignored;
}

void kci_server_request_reload(kci_server *server)
{
    request(server, KCI_CONTROL_RELOAD);
}

void kci_server_hold_public(kci_server *server)
{
    if (server->public_held) return;
    epoll_ctl(server->epoll_fd, EPOLL_CTL_DEL, server->listen_fd, NULL);
    kci_monitor_watch(server->monitor, false);
    server->public_held = true;
}

void kci_server_open_public(kci_server *server)
{
    request(server, KCI_CONTROL_OPEN_PUBLIC);
}

static void open_public(kci_server *server)
{
    if (!server->public_held) return;
    if (watch(server, server->listen_fd, &server->listener) != KC_OK) {
        kci_error("cannot watch the client listener: %s", strerror(errno));
        server->running = false;
        return;
    }
    kci_monitor_watch(server->monitor, true);
    server->public_held = false;
    kci_info("Listening for client connections on %s:%d", server->options.host, server->port);
    kci_info("Server is ready");
}

void kci_server_stop(kci_server *server)
{
    request(server, KCI_CONTROL_STOP);
}

static void on_verified(void *context, kci_verify_job *job)
{
    (void)context;
    kci_client_on_verified(job->client, job);
}

static kc_err open_verifier(kci_server *server)
{
    kc_err err = kci_verifier_create(&server->verifier, on_verified, server);
    if (err != KC_OK) return err;
    return watch(server, kci_verifier_fd(server->verifier), kci_verifier_source(server->verifier));
}

static kc_err open_everything(kci_server *server, char *error, size_t error_size)
{
    kc_err err = kci_sublist_create(&server->sublist, KCI_SUBLIST_CACHE_ENTRIES_DEFAULT);
    if (err != KC_OK) return err;
    server->read_buffer = malloc(KCI_READ_BUFFER_BYTES);
    if (server->read_buffer == NULL) return KC_ERR_NOMEM;
    if (server->options.tls_enabled) {
        err = kci_tls_context_create(&server->options, &server->tls_context, error, error_size);
        if (err != KC_OK) return err;
    }
    server->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
    if (server->epoll_fd < 0) return KC_ERR_IO;
    err = kci_listen_tcp(server->options.host, server->options.port, KCI_LISTEN_BACKLOG, "client",
                         &server->listen_fd, &server->port, error, error_size);
    if (err != KC_OK) return err;
    server->listener.kind = KCI_SOURCE_LISTENER;
    err = watch(server, server->listen_fd, &server->listener);
    if (err == KC_OK)
        err =
            kci_listen_tcp("127.0.0.1", 0, KCI_LISTEN_BACKLOG, "internal",
                           &server->internal_listen_fd, &server->internal_port, error, error_size);
    server->internal_listener.kind = KCI_SOURCE_INTERNAL_LISTENER;
    if (err == KC_OK) err = watch(server, server->internal_listen_fd, &server->internal_listener);
    if (err == KC_OK) err = open_control(server);
    if (err == KC_OK) err = open_verifier(server);
    if (err != KC_OK) {
        snprintf(error, error_size, "cannot set up the event loop: %s", strerror(errno));
        return err;
    }
    return kci_monitor_create(server, &server->monitor, error, error_size);
}

kc_err kci_server_create(kci_server **out, kci_options *options, char *error, size_t error_size)
{
    kci_server *server = calloc(1, sizeof *server);
    if (server == NULL) return KC_ERR_NOMEM;
    server->options = *options;
    memset(options, 0, sizeof *options);
    server->epoll_fd = server->listen_fd = server->control_fd = server->internal_listen_fd = -1;
    server->now_ms = server->start_ms = kci_monotonic_ms();
    server->start_wall_ms = kci_wall_ms();
    make_server_id(server);
    kc_err err = open_everything(server, error, error_size);
    if (err != KC_OK) {
        kci_server_destroy(server);
        return err;
    }
    render_info(server);
    *out = server;
    return KC_OK;
}

/* ---- connections -------------------------------------------------------- */

/* As nats-server: the refused client still gets INFO (so a client library
 * reads a protocol error, not a bare close), then the error. */
static void reject_connection(kci_server *server, int fd)
{
    server->stats.rejected_connections++;
    kci_warn_limited("maximum connections (%lld) exceeded, rejecting a connection",
                     (long long)server->options.max_connections);
    char refusal[KCI_INFO_BYTES_MAX + sizeof MAX_CONNECTIONS_ERROR + 64];
    int n = snprintf(refusal, sizeof refusal, "%.*s,\"client_id\":%llu}\r\n%s",
                     (int)server->info_prefix_len, server->info_prefix,
                     (unsigned long long)++server->next_client_id, MAX_CONNECTIONS_ERROR);
    if (n > 0 && (size_t)n < sizeof refusal) {
        ssize_t ignored = send(fd, refusal, (size_t)n, MSG_NOSIGNAL);
        (void)ignored;
    }
    close(fd);
}

static void admit(kci_server *server, int fd, const struct sockaddr_storage *address,
                  bool internal_listener)
{
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    kci_client *client = NULL;
    if (kci_client_create(server, fd, address, internal_listener, &client) != KC_OK) {
        kci_error_limited("cannot create a client: out of memory or TLS failure");
        close(fd);
        return;
    }
    client->next = server->clients;
    if (server->clients) server->clients->prev = client;
    server->clients = client;
    if (!internal_listener) {
        server->client_count++;
        server->stats.total_connections++;
    }
    if (watch(server, fd, &client->source) != KC_OK || kci_client_start(client) != KC_OK) {
        kci_client_close(client, KCI_CLOSE_WRITE_ERROR);
        return;
    }
    if (client->tls_state == KCI_TLS_HANDSHAKE) kci_client_on_readable(client);
}

/* Out of descriptors or memory: accept(2) fails while the connection stays
 * in the backlog and the listener readable. Retrying at once spun a core
 * and wrote 2 million log lines in 5 s; waiting is the only thing that
 * helps, since descriptors come back only when connections close. */
static bool accept_error_is_resource(int error)
{
    return error == EMFILE || error == ENFILE || error == ENOBUFS || error == ENOMEM;
}

static void pause_listener(kci_server *server, bool internal_listener, int error)
{
    kci_accept_pause *pause =
        internal_listener ? &server->internal_listener_pause : &server->listener_pause;
    int listen_fd = internal_listener ? server->internal_listen_fd : server->listen_fd;
    assert(!pause->paused);
    pause->failed_count++;
    if (pause->pause_ms == 0) pause->pause_ms = KCI_ACCEPT_PAUSE_MS_MIN;
    if (pause->last_log_ms == 0 ||
        server->now_ms - pause->last_log_ms >= KCI_ACCEPT_LOG_INTERVAL_MS) {
        kci_error("%s accept failed: %s; not accepting for %lld ms (%llu failed accepts since the "
                  "last such line); raise the open-file limit (ulimit -n) or lower "
                  "max_connections",
                  internal_listener ? "internal" : "client", strerror(error),
                  (long long)pause->pause_ms, (unsigned long long)pause->failed_count);
        pause->failed_count = 0;
        pause->last_log_ms = server->now_ms;
    }
    epoll_ctl(server->epoll_fd, EPOLL_CTL_DEL, listen_fd, NULL);
    pause->paused = true;
    pause->resume_ms = server->now_ms + pause->pause_ms;
    pause->pause_ms *= 2;
    if (pause->pause_ms > KCI_ACCEPT_PAUSE_MS_MAX) pause->pause_ms = KCI_ACCEPT_PAUSE_MS_MAX;
}

static void resume_listener(kci_server *server, bool internal_listener)
{
    kci_accept_pause *pause =
        internal_listener ? &server->internal_listener_pause : &server->listener_pause;
    if (!pause->paused || server->now_ms < pause->resume_ms) return;
    pause->paused = false;
    if (!internal_listener && server->public_held) return; /* open_public watches it */
    int listen_fd = internal_listener ? server->internal_listen_fd : server->listen_fd;
    kci_source *source = internal_listener ? &server->internal_listener : &server->listener;
    if (watch(server, listen_fd, source) != KC_OK) {
        kci_error("cannot watch the %s listener again: %s",
                  internal_listener ? "internal" : "client", strerror(errno));
        server->running = false;
    }
}

static void resume_listeners(kci_server *server)
{
    resume_listener(server, false);
    resume_listener(server, true);
}

/* The loop must wake up in time to watch a paused listener again. */
static int64_t until_resume_ms(const kci_server *server, int64_t wait_ms)
{
    const kci_accept_pause *pauses[] = {&server->listener_pause, &server->internal_listener_pause};
    for (size_t i = 0; i < sizeof pauses / sizeof pauses[0]; i++)
        if (pauses[i]->paused && pauses[i]->resume_ms - server->now_ms < wait_ms)
            wait_ms = pauses[i]->resume_ms - server->now_ms;
    return wait_ms;
}

static void accept_clients(kci_server *server, bool internal_listener)
{
    int listen_fd = internal_listener ? server->internal_listen_fd : server->listen_fd;
    kci_accept_pause *pause =
        internal_listener ? &server->internal_listener_pause : &server->listener_pause;
    for (int i = 0; i < ACCEPTS_PER_WAKEUP_MAX; i++) {
        struct sockaddr_storage address;
        socklen_t address_len = sizeof address;
        int fd = accept4(listen_fd, (struct sockaddr *)&address, &address_len,
                         SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK) return;
            if (errno == EINTR || errno == ECONNABORTED) continue; /* that one is gone */
            if (accept_error_is_resource(errno)) {
                pause_listener(server, internal_listener, errno);
            } else { /* unexpected: log (rate-limited) and wait for the next wake-up */
                kci_error_limited("accept failed: %s", strerror(errno));
            }
            return;
        }
        pause->pause_ms = 0; /* descriptors are back: the next pause starts short */
        if (!internal_listener && (int64_t)server->client_count >= server->options.max_connections)
            reject_connection(server, fd);
        else
            admit(server, fd, &address, internal_listener);
    }
}

/* End of a batch: write what was queued, then free what was closed. */
static void end_batch(kci_server *server)
{
    for (uint32_t i = 0; i < server->flush_count; i++) {
        kci_client *client = server->flush_list[i];
        client->in_flush_list = false;
        kci_client_flush(client);
    }
    server->flush_count = 0;
    if (server->stalled_count > 0) {
        server->now_ms = kci_monotonic_ms();
        resume_stalled(server);
    }
    kci_sublist_collect(server->sublist);
    while (server->retired_subscriptions != NULL) {
        kci_subscription *subscription = server->retired_subscriptions;
        server->retired_subscriptions = subscription->next_retired;
        free(subscription);
    }
    while (server->closed != NULL) {
        kci_client *client = server->closed;
        server->closed = client->next;
        kci_client_free(client);
    }
}

static void housekeeping(kci_server *server)
{
    kci_client *client = server->clients;
    while (client != NULL) {
        kci_client *next = client->next; /* housekeeping may close (unlink) it */
        kci_client_housekeeping(client, server->now_ms);
        client = next;
    }
    if (server->monitor) kci_monitor_housekeeping(server->monitor, server->now_ms);
    server->next_housekeeping_ms = server->now_ms + KCI_HOUSEKEEPING_INTERVAL_MS;
}

/* ---- reload (SIGHUP) ------------------------------------------------------ */

#define SWAP(a, b)                                                                                 \
    do {                                                                                           \
        __typeof__(a) swap_tmp = (a);                                                              \
        (a) = (b);                                                                                 \
        (b) = swap_tmp;                                                                            \
    } while (0)

/* Listening addresses and TLS files need a restart: keep the running ones. */
static void keep_restart_only_fields(kci_options *fresh, kci_options *current)
{
    SWAP(fresh->host, current->host);
    SWAP(fresh->port, current->port);
    SWAP(fresh->http_host, current->http_host);
    SWAP(fresh->http_port, current->http_port);
    SWAP(fresh->tls_enabled, current->tls_enabled);
    SWAP(fresh->tls_cert_file, current->tls_cert_file);
    SWAP(fresh->tls_key_file, current->tls_key_file);
    SWAP(fresh->tls_ca_file, current->tls_ca_file);
    SWAP(fresh->tls_verify, current->tls_verify);
    SWAP(fresh->tls_ciphers, current->tls_ciphers);
    SWAP(fresh->tls_groups, current->tls_groups);
}

static const kci_user *user_named(const kci_options *options, const char *name)
{
    for (size_t i = 0; name != NULL && i < options->user_count; i++)
        if (strcmp(options->users[i].user, name) == 0) return &options->users[i];
    return NULL;
}

static bool same_text(const char *a, const char *b)
{
    return (a == NULL && b == NULL) || (a != NULL && b != NULL && strcmp(a, b) == 0);
}

/* Whether a client's login still holds after a reload, as nats-server
 * re-checks every connected client: its user is still there with the same
 * password, or the token it gave is still the token, or no authentication
 * is required now. A secret that changed ends the session (the client
 * logs in again and is verified against the new one). */
static bool login_still_holds(const kci_options *previous, const kci_options *options,
                              const kci_client *client)
{
    if (client->user_name != NULL) {
        const kci_user *before = user_named(previous, client->user_name);
        const kci_user *now = user_named(options, client->user_name);
        return now != NULL && (before == NULL || same_text(before->password, now->password));
    }
    if (!kci_auth_required(options)) return true;
    return client->by_token && same_text(previous->auth_token, options->auth_token);
}

static void reapply_client_settings(kci_server *server, const kci_options *previous,
                                    kci_client *client)
{
    const kci_options *options = &server->options;
    client->parser.max_payload_bytes = (uint32_t)options->max_payload_bytes;
    client->parser.max_control_line_bytes = (uint32_t)options->max_control_line_bytes;
    if (!client->connect_received) return;
    if (client->role != KCI_ROLE_NONE) { /* a component's role is fixed (roles.h) */
        client->permissions = kci_options_role_permissions(options, client->role);
        return;
    }
    if (!login_still_holds(previous, options, client)) {
        kci_info("the reload ended the login of %s; closing cid:%llu",
                 client->user_name != NULL ? client->user_name
                 : client->by_token        ? "a token client"
                                           : "an anonymous client",
                 (unsigned long long)client->id);
        if (client->user_name == NULL) kci_client_send_error(client, "Authorization Violation");
        kci_client_close(client,
                         KCI_CLOSE_AUTH); /* a removed user: without a word, as nats-server */
        return;
    }
    client->permissions = kci_permissions_for(options, user_named(options, client->user_name));
}

static void reload(kci_server *server)
{
    char error[512] = "";
    kci_options fresh;
    if (kci_options_reload(&server->options, &fresh, error, sizeof error) != KC_OK) {
        kci_error("reload failed, keeping the running configuration: %s", error);
        atomic_store(&server->reload_failed, true);
        return;
    }
    atomic_store(&server->reload_failed, false);
    keep_restart_only_fields(&fresh, &server->options);
    kci_auth_cache_clear(kci_verifier_cache(server->verifier)); /* verifier.h: reload */
    kci_options previous = server->options; /* until every client is checked against it */
    server->options = fresh;
    kci_configure_logging(&server->options);
    render_info(server);
    for (kci_client *client = server->clients, *next; client != NULL; client = next) {
        next = client->next;
        reapply_client_settings(server, &previous, client);
    }
    kci_options_free(&previous);
    kci_info("reloaded configuration from %s",
             server->options.config_file ? server->options.config_file : "(flags)");
}

void kci_server_reload(kci_server *server)
{
    reload(server);
    atomic_fetch_add(&server->reloads_done, 1u); /* after the options: the waiter reads them */
}

bool kci_server_reload_wait(kci_server *server, int64_t timeout_ms)
{
    enum { POLL_MS = 10 };
    unsigned before = atomic_load(&server->reloads_done);
    kci_server_request_reload(server);
    for (int64_t waited_ms = 0; waited_ms < timeout_ms; waited_ms += POLL_MS) {
        if (atomic_load(&server->reloads_done) != before)
            return !atomic_load(&server->reload_failed);
        struct timespec pause = {.tv_nsec = POLL_MS * 1000000L};
        nanosleep(&pause, NULL);
    }
    kci_warn("reload: not done within %lld ms", (long long)timeout_ms);
    return false;
}

static void on_control(kci_server *server)
{
    uint64_t rings = 0;
    ssize_t ignored = read(server->control_fd, &rings, sizeof rings);
    (void)ignored;
    unsigned bits = atomic_exchange(&server->control_requests, 0u);
    if (bits & KCI_CONTROL_RELOAD) kci_server_reload(server);
    if (bits & KCI_CONTROL_OPEN_PUBLIC) open_public(server);
    if (bits & KCI_CONTROL_STOP) server->running = false;
}

void kci_configure_logging(const kci_options *options)
{
    kci_log_level level = options->trace   ? KCI_LOG_TRACE
                          : options->debug ? KCI_LOG_DEBUG
                                           : KCI_LOG_INFO;
    kci_log_configure(level, options->logtime);
}

/* ---- the loop ------------------------------------------------------------- */

static void dispatch(kci_server *server, const struct epoll_event *event)
{
    kci_source *source = event->data.ptr;
    switch (source->kind) {
    case KCI_SOURCE_LISTENER: accept_clients(server, false); break;
    case KCI_SOURCE_INTERNAL_LISTENER: accept_clients(server, true); break;
    case KCI_SOURCE_CONTROL: on_control(server); break;
    case KCI_SOURCE_VERIFIER: kci_verifier_on_ready(server->verifier); break;
    case KCI_SOURCE_CLIENT: {
        kci_client *client = (kci_client *)source;
        if (event->events & (EPOLLIN | EPOLLHUP | EPOLLERR)) kci_client_on_readable(client);
        if ((event->events & EPOLLOUT) && !client->closing) kci_client_on_writable(client);
        break;
    }
    case KCI_SOURCE_HTTP_LISTENER:
    case KCI_SOURCE_HTTP_CONNECTION:
        kci_monitor_on_event(server->monitor, source, event->events);
        break;
    }
}

/* SIGTERM: stop accepting, give pending output a bounded time to drain,
 * then close every connection. */
static void shut_down(kci_server *server)
{
    epoll_ctl(server->epoll_fd, EPOLL_CTL_DEL, server->listen_fd, NULL);
    close(server->listen_fd);
    server->listen_fd = -1;
    epoll_ctl(server->epoll_fd, EPOLL_CTL_DEL, server->internal_listen_fd, NULL);
    close(server->internal_listen_fd);
    server->internal_listen_fd = -1;
    int64_t deadline_ms = kci_monotonic_ms() + SHUTDOWN_FLUSH_MS;
    struct epoll_event events[KCI_EPOLL_EVENTS_MAX];
    for (;;) {
        bool pending = false;
        for (kci_client *client = server->clients; client != NULL; client = client->next) {
            kci_client_flush(client);
            pending |= !client->closing && kci_client_pending_bytes(client) > 0;
        }
        end_batch(server);
        if (!pending || kci_monotonic_ms() >= deadline_ms) break;
        epoll_wait(server->epoll_fd, events, KCI_EPOLL_EVENTS_MAX, 50);
    }
    while (server->clients != NULL)
        kci_client_close(server->clients, KCI_CLOSE_SERVER_SHUTDOWN);
    end_batch(server);
}

/* Once at start: a max_connections the open-file limit cannot reach means
 * accepts will fail (and pause) before -ERR 'maximum connections exceeded'
 * is ever sent. */
static void check_descriptor_limit(const kci_server *server)
{
    struct rlimit limit;
    if (getrlimit(RLIMIT_NOFILE, &limit) != 0 || limit.rlim_cur == RLIM_INFINITY) return;
    long long usable = (long long)limit.rlim_cur - KCI_DESCRIPTORS_RESERVED;
    if (server->options.max_connections <= usable) return;
    kci_warn("max_connections (%lld) is above what the open-file limit allows (%llu descriptors, "
             "about %lld for clients): past that, accepts fail and pause; raise it (ulimit -n) or "
             "lower max_connections",
             (long long)server->options.max_connections, (unsigned long long)limit.rlim_cur,
             usable < 0 ? 0 : usable);
}

kc_err kci_server_run(kci_server *server)
{
    check_descriptor_limit(server);
    struct epoll_event events[KCI_EPOLL_EVENTS_MAX];
    server->running = true;
    server->next_housekeeping_ms = kci_monotonic_ms() + KCI_HOUSEKEEPING_INTERVAL_MS;
    if (!server->public_held) {
        kci_info("Listening for client connections on %s:%d", server->options.host, server->port);
        kci_info("Server is ready");
    }
    while (server->running) {
        server->now_ms = kci_monotonic_ms();
        int64_t wait_ms = until_resume_ms(server, server->next_housekeeping_ms - server->now_ms);
        if (server->stalled_count > 0 && wait_ms > KCI_STALL_POLL_MS) wait_ms = KCI_STALL_POLL_MS;
        int count = epoll_wait(server->epoll_fd, events, KCI_EPOLL_EVENTS_MAX,
                               wait_ms < 0 ? 0 : (int)wait_ms);
        if (count < 0 && errno != EINTR) {
            kci_error("epoll_wait failed: %s", strerror(errno));
            return KC_ERR_IO;
        }
        server->now_ms = kci_monotonic_ms();
        for (int i = 0; i < count; i++)
            dispatch(server, &events[i]);
        end_batch(server);
        resume_listeners(server);
        if (server->now_ms >= server->next_housekeeping_ms) {
            housekeeping(server);
            end_batch(server);
        }
    }
    shut_down(server);
    kci_info("Server Exiting..");
    return KC_OK;
}

void kci_server_destroy(kci_server *server)
{
    if (server == NULL) return;
    while (server->clients != NULL)
        kci_client_close(server->clients, KCI_CLOSE_SERVER_SHUTDOWN);
    if (server->sublist) end_batch(server);
    if (server->monitor) kci_monitor_destroy(server->monitor);
    kci_verifier_destroy(server->verifier); /* after the clients: their jobs are cancelled */
    if (server->listen_fd >= 0) close(server->listen_fd);
    if (server->internal_listen_fd >= 0) close(server->internal_listen_fd);
    if (server->control_fd >= 0) close(server->control_fd);
    if (server->epoll_fd >= 0) close(server->epoll_fd);
    kci_sublist_destroy(server->sublist);
    kci_quarantine_free(server);
    SSL_CTX_free(server->tls_context);
    free(server->flush_list);
    free(server->stalled);
    free(server->read_buffer);
    kci_options_free(&server->options);
    free(server);
}
