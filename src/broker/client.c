/* client.c - one client connection (see client.h): reading and parsing,
 * the protocol operations, the output buffer, timers and closing.
 *
 * Reads go into the server's shared read buffer (the parser copies whatever
 * must outlive a read), so an idle connection costs only this struct. */
#include "client.h"

#include <arpa/inet.h>
#include <assert.h>
#include <errno.h>
#include <jansson.h>
#include <openssl/err.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "auth.h"
#include "common/log.h"
#include "quarantine.h"
#include "roles.h"
#include "router.h"
#include "subject.h"
#include "verifier.h"

enum {
    OUT_BUFFER_BYTES_MIN = 4096,
    CONNECT_STRING_BYTES_MAX = 256,
    CLOSE_DRAIN_READS_MAX = 4,
    ERROR_LINE_BYTES_MAX = 512,
    SUBSCRIPTIONS_INITIAL = 4,
    /* A subscriber behind by more than max_pending / 2 is back on track at
     * max_pending / BEHIND_END_DIVISOR. */
    BEHIND_END_DIVISOR = 4,
};

#define CLIENT_LOG(level, client, format, ...)                                                     \
    kci_log(level, "%s:%u - cid:%llu - " format, (client)->ip, (unsigned)(client)->port,           \
            (unsigned long long)(client)->id, __VA_ARGS__)
/* For what a peer can repeat at will (refused logins, protocol errors, slow
 * consumers): at most one line a second per call site, with a count of the
 * rest (log.h), so a flood cannot fill the disk or busy the loop. */
#define CLIENT_LOG_THROUGH(limiter, level, client, format, ...)                                    \
    kci_log_limited(limiter, level, "%s:%u - cid:%llu - " format, (client)->ip,                    \
                    (unsigned)(client)->port, (unsigned long long)(client)->id, __VA_ARGS__)
#define CLIENT_LOG_LIMITED(level, client, format, ...)                                             \
    do {                                                                                           \
        static kci_log_limiter call_site_limiter;                                                  \
        CLIENT_LOG_THROUGH(&call_site_limiter, level, client, format, __VA_ARGS__);                \
    } while (0)

/* ---- output ---------------------------------------------------------- */

static void release_output_buffer(kci_client *client)
{
    assert(client->out_head == client->out_tail);
    free(client->out);
    client->out = NULL;
    client->out_capacity = client->out_head = client->out_tail = 0;
}

uint32_t kci_client_pending_bytes(const kci_client *client)
{
    return client->out_tail - client->out_head;
}

bool kci_client_over_stall_threshold(const kci_client *client)
{
    return (int64_t)kci_client_pending_bytes(client) >
           client->server->options.max_pending_bytes / 2;
}

static void slow_consumer(kci_client *client)
{
    kci_server *server = client->server;
    server->stats.slow_consumers++;
    CLIENT_LOG_LIMITED(KCI_LOG_WARN, client, "Slow Consumer Detected: MaxPending of %lld Exceeded",
                       (long long)server->options.max_pending_bytes);
    kci_client_close(client, KCI_CLOSE_SLOW_CONSUMER);
}

/* Makes room for len more bytes after out_tail: compacts, then grows. */
static bool make_room(kci_client *client, size_t len)
{
    size_t pending = kci_client_pending_bytes(client);
    if (client->out_tail + len <= client->out_capacity) return true;
    if (client->out_head > 0 && pending + len <= client->out_capacity) {
        memmove(client->out, client->out + client->out_head, pending);
        client->out_head = 0;
        client->out_tail = (uint32_t)pending;
        return true;
    }
    size_t capacity = client->out_capacity ? client->out_capacity : OUT_BUFFER_BYTES_MIN;
    while (capacity < pending + len)
        capacity *= 2;
    if (client->out_head > 0) {
        memmove(client->out, client->out + client->out_head, pending);
        client->out_head = 0;
        client->out_tail = (uint32_t)pending;
    }
    uint8_t *bigger = realloc(client->out, capacity);
    if (bigger == NULL) return false;
    client->out = bigger;
    client->out_capacity = (uint32_t)capacity;
    return true;
}

bool kci_client_reserve(kci_client *client, size_t len, uint8_t **at)
{
    if (client->closing) return false;
    int64_t max_pending = client->server->options.max_pending_bytes;
    if ((int64_t)(kci_client_pending_bytes(client) + len) > max_pending) {
        /* Output is written at the end of the batch; before calling this a
         * slow consumer, give the socket a chance to take what it can now. */
        kci_client_flush(client);
        if (client->closing) return false;
        if ((int64_t)(kci_client_pending_bytes(client) + len) > max_pending) {
            slow_consumer(client);
            return false;
        }
    }
    if (!make_room(client, len)) {
        CLIENT_LOG_LIMITED(KCI_LOG_ERROR, client, "%s", "out of memory for output, closing");
        kci_client_close(client, KCI_CLOSE_WRITE_ERROR);
        return false;
    }
    *at = client->out + client->out_tail;
    return true;
}

/* A subscriber past the stall threshold starts an episode; its publishers
 * may be paused only during the first KCI_STALL_MS_MAX of it. After that
 * they run, and the subscriber either drains (the episode ends), reaches
 * max_pending, or stays behind for write_deadline: a slow consumer. */
static bool pauses_publishers(kci_client *client)
{
    if (!kci_client_over_stall_threshold(client)) return false;
    int64_t now_ms = client->server->now_ms;
    if (client->behind_since_ms == 0) client->behind_since_ms = now_ms;
    return now_ms - client->behind_since_ms < KCI_STALL_MS_MAX;
}

/* The episode ends only well below the threshold, so a reader that takes
 * a few bytes now and then cannot end it and start a fresh one. */
static void note_drained(kci_client *client)
{
    if (client->behind_since_ms != 0 &&
        (int64_t)kci_client_pending_bytes(client) <=
            client->server->options.max_pending_bytes / BEHIND_END_DIVISOR)
        client->behind_since_ms = 0;
}

void kci_client_commit(kci_client *client, size_t used)
{
    assert(client->out_tail + used <= client->out_capacity);
    client->out_tail += (uint32_t)used;
    kci_server *server = client->server;
    kci_server_mark_dirty(server, client);
    kci_client *reader = server->current_reader;
    if (pauses_publishers(client) && reader != NULL && reader != client && reader->stall_on == NULL)
        reader->stall_on = client;
}

bool kci_client_append(kci_client *client, const void *bytes, size_t len)
{
    uint8_t *at = NULL;
    if (!kci_client_reserve(client, len, &at)) return false;
    memcpy(at, bytes, len);
    kci_client_commit(client, len);
    return true;
}

void kci_client_send_error(kci_client *client, const char *text)
{
    char line[ERROR_LINE_BYTES_MAX];
    int n = snprintf(line, sizeof line, "-ERR '%s'\r\n", text);
    if (n < 0 || (size_t)n >= sizeof line) n = (int)sizeof line - 1;
    /* An error goes out even past max_pending: it is what explains a close. */
    if (make_room(client, (size_t)n)) {
        memcpy(client->out + client->out_tail, line, (size_t)n);
        client->out_tail += (uint32_t)n;
        kci_server_mark_dirty(client->server, client);
    }
}

uint32_t kci_client_epoll_events(const kci_client *client)
{
    return (client->stalled || client->auth_pending ? 0 : EPOLLIN) |
           (client->want_write ? EPOLLOUT : 0);
}

static void set_want_write(kci_client *client, bool want)
{
    if (client->want_write == want || client->closing) return;
    client->want_write = want;
    struct epoll_event event = {.events = kci_client_epoll_events(client), .data.ptr = client};
    if (epoll_ctl(client->server->epoll_fd, EPOLL_CTL_MOD, client->fd, &event) != 0)
        client->want_write = !want;
}

/* One write attempt; > 0 bytes written, 0 would block, < 0 error. */
static ssize_t write_some(kci_client *client, const uint8_t *bytes, size_t len)
{
    if (client->ssl != NULL) {
        ERR_clear_error();
        int n = SSL_write(client->ssl, bytes, len > INT32_MAX ? INT32_MAX : (int)len);
        if (n > 0) return n;
        int reason = SSL_get_error(client->ssl, n);
        return reason == SSL_ERROR_WANT_WRITE || reason == SSL_ERROR_WANT_READ ? 0 : -1;
    }
    ssize_t n = send(client->fd, bytes, len, MSG_NOSIGNAL);
    if (n >= 0) return n;
    return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR ? 0 : -1;
}

void kci_client_flush(kci_client *client)
{
    if (client->closing || client->tls_state == KCI_TLS_HANDSHAKE) return;
    while (client->out_head < client->out_tail) {
        ssize_t n =
            write_some(client, client->out + client->out_head, client->out_tail - client->out_head);
        if (n < 0) {
            CLIENT_LOG(KCI_LOG_DEBUG, client, "write error: %s", strerror(errno));
            kci_client_close(client, KCI_CLOSE_WRITE_ERROR);
            return;
        }
        if (n == 0) {
            if (client->write_stalled_since_ms == 0)
                client->write_stalled_since_ms = client->server->now_ms;
            set_want_write(client, true);
            return;
        }
        client->out_head += (uint32_t)n;
        client->write_stalled_since_ms = 0;
        note_drained(client);
    }
    client->out_head = client->out_tail = 0;
    client->write_stalled_since_ms = 0;
    client->behind_since_ms = 0;
    set_want_write(client, false);
}

/* ---- protocol operations --------------------------------------------- */

static bool auth_required(const kci_client *client)
{
    return kci_auth_required(&client->server->options);
}

static void send_ok(kci_client *client)
{
    if (client->verbose) kci_client_append(client, "+OK\r\n", 5);
}

static char *json_string_copy(json_t *root, const char *key)
{
    const char *value = json_string_value(json_object_get(root, key));
    if (value == NULL) return NULL;
    return strndup(value, CONNECT_STRING_BYTES_MAX);
}

static bool json_flag(json_t *root, const char *key, bool fallback)
{
    json_t *value = json_object_get(root, key);
    return json_is_boolean(value) ? json_is_true(value) : fallback;
}

/* kcobrad's own components (roles.h): only on the internal listener, only
 * as a role's user, and only with the password made at start. The role,
 * or KCI_ROLE_NONE. */
static kci_role internal_role(const kci_client *client, const kci_credentials *credentials)
{
    if (!client->internal_listener || credentials->password == NULL) return KCI_ROLE_NONE;
    kci_role role = kci_role_from_user(credentials->user);
    if (role == KCI_ROLE_NONE) return KCI_ROLE_NONE;
    return kci_secret_equal(credentials->password, client->server->internal_password)
               ? role
               : KCI_ROLE_NONE;
}

static void refuse(kci_client *client)
{
    CLIENT_LOG_LIMITED(KCI_LOG_ERROR, client, "%s", "Authorization Error");
    kci_client_send_error(client, "Authorization Violation");
    kci_client_close(client, KCI_CLOSE_AUTH);
}

/* The epoll events follow auth_pending (kci_client_epoll_events). */
static void rewatch(kci_client *client)
{
    struct epoll_event event = {.events = kci_client_epoll_events(client), .data.ptr = client};
    epoll_ctl(client->server->epoll_fd, EPOLL_CTL_MOD, client->fd, &event);
}

/* Hands a bcrypt check to the verifier and pauses the client; 1, or -1
 * when refused (too many verifications pending: nats-server's bad-password
 * error, since the client cannot be told anything more useful). */
static int verify_later(kci_client *client, const kci_credentials *credentials,
                        const kci_auth_decision *decision)
{
    assert(!client->auth_pending && client->verify_job == NULL);
    kc_err err = kci_verifier_submit(client->server->verifier, client, credentials, decision,
                                     &client->verify_job);
    if (err == KC_ERR_LIMIT)
        CLIENT_LOG_LIMITED(KCI_LOG_WARN, client,
                           "%d password verifications pending already, refusing",
                           KCI_VERIFIER_PENDING_MAX);
    else if (err != KC_OK)
        CLIENT_LOG_LIMITED(KCI_LOG_ERROR, client, "cannot verify the password: %s",
                           kc_strerror(err));
    if (err != KC_OK) {
        refuse(client);
        return -1;
    }
    client->auth_pending = true;
    rewatch(client);
    return 1;
}

/* 0 accepted, 1 paused for a bcrypt verification, -1 refused (closed).
 * finished: a verification that came back for these credentials; its
 * result counts only if the configuration still holds the same hash
 * (it may have been reloaded meanwhile, see verifier.h). */
static int decide(kci_client *client, const kci_credentials *credentials,
                  const kci_verify_job *finished)
{
    kci_server *server = client->server;
    kci_auth_decision decision = kci_auth_decide(&server->options, credentials);
    if (decision.verdict == KCI_AUTH_HASH_NEEDED) {
        const char *user = decision.user != NULL ? decision.user->user : NULL;
        if (finished != NULL && strcmp(finished->hash, decision.hash) == 0 &&
            strcmp(finished->secret, decision.secret) == 0)
            decision.verdict = finished->accepted ? KCI_AUTH_ACCEPTED : KCI_AUTH_REFUSED;
        else if (kci_auth_cache_lookup(kci_verifier_cache(server->verifier), user, decision.secret,
                                       decision.hash))
            decision.verdict = KCI_AUTH_ACCEPTED;
        else
            return verify_later(client, credentials, &decision);
    }
    if (decision.verdict != KCI_AUTH_ACCEPTED) {
        refuse(client);
        return -1;
    }
    free(client->user_name);
    client->user_name = decision.user ? strdup(decision.user->user) : NULL;
    client->by_token = decision.user == NULL && server->options.auth_token != NULL;
    client->permissions = kci_permissions_for(&server->options, decision.user);
    return 0;
}

static int authenticate(kci_client *client, json_t *root)
{
    kci_credentials credentials = {
        .auth_token = json_string_value(json_object_get(root, "auth_token")),
        .user = json_string_value(json_object_get(root, "user")),
        .password = json_string_value(json_object_get(root, "pass")),
    };
    kci_role role = internal_role(client, &credentials);
    if (role != KCI_ROLE_NONE) {
        client->role = (uint8_t)role;
        client->permissions = kci_options_role_permissions(&client->server->options, role);
        free(client->user_name);
        client->user_name = strdup(kci_role_user(role));
        return 0;
    }
    if (client->internal_listener) {
        refuse(client);
        return -1;
    }
    return decide(client, &credentials, NULL);
}

/* After the credentials passed. */
static int finish_connect(kci_client *client)
{
    if (client->no_responders && !client->headers) {
        kci_client_send_error(client, "no responders requires headers support");
        kci_client_close(client, KCI_CLOSE_PROTOCOL);
        return -1;
    }
    client->connect_received = true;
    kci_quarantine_on_connect(client);
    CLIENT_LOG(KCI_LOG_DEBUG, client, "CONNECT name=%s lang=%s version=%s",
               client->name ? client->name : "", client->lang ? client->lang : "",
               client->version ? client->version : "");
    send_ok(client);
    return 0;
}

static int on_connect(void *context, const char *json, size_t json_len)
{
    kci_client *client = context;
    json_error_t json_error;
    json_t *root = json_loadb(json, json_len, JSON_REJECT_DUPLICATES, &json_error);
    if (root == NULL || !json_is_object(root)) {
        CLIENT_LOG_LIMITED(KCI_LOG_ERROR, client, "invalid CONNECT: %s", json_error.text);
        json_decref(root);
        kci_client_close(client, KCI_CLOSE_PROTOCOL); /* silently, as nats-server */
        return -1;
    }
    /* Absent fields take nats-server's defaults: verbose and pedantic on. */
    client->verbose = json_flag(root, "verbose", true);
    client->pedantic = json_flag(root, "pedantic", true);
    client->echo = json_flag(root, "echo", true);
    client->headers = json_flag(root, "headers", false);
    client->no_responders = json_flag(root, "no_responders", false);
    free(client->name);
    free(client->lang);
    free(client->version);
    client->name = json_string_copy(root, "name");
    client->lang = json_string_copy(root, "lang");
    client->version = json_string_copy(root, "version");
    int verdict = authenticate(client, root);
    json_decref(root);
    if (verdict != 0) return -1; /* refused, or paused: the parser stops here */
    return finish_connect(client);
}

static int on_before_connect_op(void *context)
{
    kci_client *client = context;
    if (client->connect_received) return 0;
    if (!auth_required(client) && !client->internal_listener) return 0;
    kci_client_send_error(client, "Authorization Violation");
    kci_client_close(client, KCI_CLOSE_AUTH);
    return -1;
}

static void send_permission_error(kci_client *client, const char *what, const char *subject,
                                  size_t subject_len)
{
    char text[ERROR_LINE_BYTES_MAX];
    int shown = subject_len > 256 ? 256 : (int)subject_len;
    snprintf(text, sizeof text, "Permissions Violation for %s to \"%.*s\"", what, shown, subject);
    CLIENT_LOG_LIMITED(KCI_LOG_WARN, client, "%s", text);
    kci_client_send_error(client, text);
}

/* Subjects: a literal is routed; a wildcard subject gets -ERR from a
 * pedantic client and is still routed as literal tokens (nats-server does
 * both); anything else malformed is refused when pedantic, dropped if not. */
static bool check_publish_subject(kci_client *client, const kci_pub_args *pub)
{
    if (kci_subject_valid_literal(pub->subject, pub->subject_len)) return true;
    if (client->pedantic) kci_client_send_error(client, "Invalid Publish Subject");
    return kci_subject_valid_filter(pub->subject, pub->subject_len);
}

static int on_pub(void *context, const kci_pub_args *pub)
{
    kci_client *client = context;
    kci_server *server = client->server;
    if (pub->header_bytes >= 0 && !client->headers) {
        CLIENT_LOG_LIMITED(KCI_LOG_ERROR, client, "%s",
                           "HPUB from a client without headers support");
        kci_client_close(client, KCI_CLOSE_PROTOCOL);
        return -1;
    }
    client->in_msgs++;
    client->in_bytes += pub->payload_len;
    server->stats.in_msgs++;
    server->stats.in_bytes += pub->payload_len;
    if (!kci_permissions_allow_publish(client->permissions, pub->subject, pub->subject_len)) {
        send_permission_error(client, "Publish", pub->subject, pub->subject_len);
        return 0;
    }
    bool routable = check_publish_subject(client, pub);
    send_ok(client);
    if (routable && client->role == KCI_ROLE_ARBITER) kci_quarantine_on_publish(client, pub);
    if (routable) kci_route_publish(client, pub);
    return client->closing ? -1 : 0;
}

static kci_subscription *find_subscription(kci_client *client, const char *sid, size_t sid_len)
{
    return kci_sid_index_find(&client->sid_index, sid, sid_len);
}

/* As nats-server 2.9: -ERR 'maximum subscriptions exceeded', the SUB is
 * dropped and the connection stays open. Logged once per connection, so a
 * client that keeps trying cannot flood the log. */
static bool at_subscription_limit(kci_client *client)
{
    int64_t limit = client->server->options.max_subscriptions;
    if (limit <= 0 || (int64_t)client->subscription_count < limit) return false;
    if (!client->max_subscriptions_logged) {
        client->max_subscriptions_logged = true;
        CLIENT_LOG(KCI_LOG_ERROR, client, "maximum subscriptions exceeded (max_subs %lld)",
                   (long long)limit);
    }
    kci_client_send_error(client, "maximum subscriptions exceeded");
    return true;
}

static kci_subscription *subscription_new(kci_client *client, const char *subject,
                                          size_t subject_len, const char *queue, size_t queue_len,
                                          const char *sid, size_t sid_len)
{
    size_t strings = subject_len + 1 + queue_len + 1 + sid_len + 1;
    kci_subscription *subscription = calloc(1, sizeof *subscription + strings);
    if (subscription == NULL) return NULL;
    char *at = (char *)(subscription + 1);
    subscription->client = client;
    subscription->subject = memcpy(at, subject, subject_len);
    subscription->subject_len = (uint32_t)subject_len;
    at += subject_len + 1;
    if (queue != NULL) {
        subscription->queue = memcpy(at, queue, queue_len);
        subscription->queue_len = (uint32_t)queue_len;
    }
    at += queue_len + 1;
    subscription->sid = memcpy(at, sid, sid_len);
    subscription->sid_len = (uint32_t)sid_len;
    subscription->tap = queue == NULL && kci_role_observes((kci_role)client->role) &&
                        !kci_subject_valid_literal(subject, subject_len);
    return subscription;
}

/* Room for one more in the dense array and in the sid index. */
static bool subscriptions_reserve(kci_client *client)
{
    if (client->subscription_count == client->subscription_capacity) {
        uint32_t capacity = client->subscription_capacity ? client->subscription_capacity * 2
                                                          : SUBSCRIPTIONS_INITIAL;
        kci_subscription **bigger = realloc(client->subscriptions, capacity * sizeof *bigger);
        if (bigger == NULL) return false;
        client->subscriptions = bigger;
        client->subscription_capacity = capacity;
    }
    return true;
}

/* The subscription joins the client; it is already in the sublist. */
static bool subscription_attach(kci_client *client, kci_subscription *subscription)
{
    if (kci_sid_index_add(&client->sid_index, subscription) != KC_OK) return false;
    subscription->client_index = client->subscription_count;
    client->subscriptions[client->subscription_count++] = subscription;
    return true;
}

static int on_sub(void *context, const char *subject, size_t subject_len, const char *queue,
                  size_t queue_len, const char *sid, size_t sid_len)
{
    kci_client *client = context;
    if (!kci_subject_valid_filter(subject, subject_len) ||
        (queue != NULL && !kci_subject_valid_literal(queue, queue_len))) {
        kci_client_send_error(client, "Invalid Subject");
        return 0;
    }
    if (!kci_permissions_allow_subscribe(client->permissions, subject, subject_len)) {
        send_permission_error(client, "Subscription", subject, subject_len);
        return 0;
    }
    if (at_subscription_limit(client)) return client->closing ? -1 : 0;
    if (find_subscription(client, sid, sid_len) != NULL) { /* as nats-server: ignored */
        send_ok(client);
        return 0;
    }
    kci_subscription *subscription =
        subscription_new(client, subject, subject_len, queue, queue_len, sid, sid_len);
    kci_sublist *sublist = client->server->sublist;
    bool inserted = subscription != NULL && subscriptions_reserve(client) &&
                    kci_sublist_insert(sublist, subscription->subject, subject_len,
                                       subscription->queue, queue_len, subscription) == KC_OK;
    if (!inserted || !subscription_attach(client, subscription)) {
        if (inserted)
            (void)kci_sublist_remove(sublist, subscription->subject, subject_len,
                                     subscription->queue, queue_len, subscription);
        free(subscription);
        CLIENT_LOG_LIMITED(KCI_LOG_ERROR, client, "%s", "cannot add subscription: out of memory");
        kci_client_send_error(client, "Out of Memory");
        kci_client_close(client, KCI_CLOSE_PROTOCOL);
        return -1;
    }
    send_ok(client);
    return 0;
}

static int on_unsub(void *context, const char *sid, size_t sid_len, int64_t max_messages)
{
    kci_client *client = context;
    kci_subscription *subscription = find_subscription(client, sid, sid_len);
    /* max_messages < 0: not a number (e.g. "-1"); nats-server then
     * unsubscribes at once, as for 0 or a count already delivered. */
    if (subscription != NULL) {
        if (max_messages > 0 && (uint64_t)max_messages > subscription->delivered_count)
            subscription->max_messages = (uint64_t)max_messages;
        else
            kci_subscription_remove(subscription);
    }
    send_ok(client);
    return 0;
}

static int on_ping(void *context)
{
    kci_client *client = context;
    kci_client_append(client, "PONG\r\n", 6);
    return client->closing ? -1 : 0;
}

static int on_pong(void *context)
{
    kci_client *client = context;
    client->pings_outstanding = 0;
    return 0;
}

/* nats-server closes a client that sends -ERR: a client has no business
 * reporting errors to the server, so the session is not trusted further. */
static int on_error_from_peer(void *context, const char *text, size_t text_len)
{
    kci_client *client = context;
    CLIENT_LOG_LIMITED(KCI_LOG_ERROR, client, "client sent -ERR %.*s",
                       (int)(text_len > 200 ? 200 : text_len), text);
    kci_client_close(client, KCI_CLOSE_PROTOCOL);
    return -1;
}

static const kci_parser_handlers protocol_handlers = {
    .on_error_from_peer = on_error_from_peer,
    .on_connect = on_connect,
    .on_pub = on_pub,
    .on_sub = on_sub,
    .on_unsub = on_unsub,
    .on_ping = on_ping,
    .on_pong = on_pong,
    .on_before_connect_op = on_before_connect_op,
};

/* ---- reading ---------------------------------------------------------- */

static void report_parse_error(kci_client *client, kci_parse_error error, size_t offset)
{
    if (error == KCI_PARSE_STOPPED) return;
    const char *text = kci_parse_error_text(error);
    CLIENT_LOG_LIMITED(KCI_LOG_ERROR, client, "Client parser ERROR (%s) at byte %zu", text, offset);
    kci_close_reason reason =
        error == KCI_PARSE_MAX_PAYLOAD ? KCI_CLOSE_MAX_PAYLOAD : KCI_CLOSE_PROTOCOL;
    /* Malformed arguments of a known operation close without -ERR, as in
     * nats-server; the log line above says what was wrong. */
    if (error != KCI_PARSE_BAD_ARGUMENTS) kci_client_send_error(client, text);
    kci_client_close(client, reason);
}

/* A CONNECT being verified stopped the parser: what followed it in this
 * read (at most one read buffer, since reading stops) waits here. */
static void hold_input(kci_client *client, const uint8_t *bytes, size_t len)
{
    assert(client->held_input == NULL && len <= KCI_READ_BUFFER_BYTES);
    if (len == 0) return;
    client->held_input = malloc(len);
    if (client->held_input == NULL) {
        CLIENT_LOG_LIMITED(KCI_LOG_ERROR, client, "%s", "out of memory for input, closing");
        kci_client_close(client, KCI_CLOSE_READ_ERROR);
        return;
    }
    memcpy(client->held_input, bytes, len);
    client->held_input_len = (uint32_t)len;
}

static void process_input(kci_client *client, const uint8_t *bytes, size_t len)
{
    client->last_activity_ms = client->server->now_ms;
    size_t offset = 0;
    kci_parse_error error =
        kci_parser_feed(&client->parser, &protocol_handlers, client, bytes, len, &offset);
    if (error == KCI_PARSE_STOPPED && client->auth_pending && !client->closing)
        hold_input(client, bytes + offset, len - offset);
    else if (error != KCI_PARSE_OK)
        report_parse_error(client, error, offset);
}

/* One read; > 0 bytes, 0 nothing now, -1 closed or failed (reason set). */
static ssize_t read_some(kci_client *client, uint8_t *buffer, size_t size, kci_close_reason *reason)
{
    if (client->ssl != NULL) {
        ERR_clear_error();
        int n = SSL_read(client->ssl, buffer, (int)size);
        if (n > 0) return n;
        int ssl_error = SSL_get_error(client->ssl, n);
        if (ssl_error == SSL_ERROR_WANT_READ || ssl_error == SSL_ERROR_WANT_WRITE) return 0;
        *reason = ssl_error == SSL_ERROR_ZERO_RETURN ? KCI_CLOSE_CLIENT : KCI_CLOSE_TLS;
        return -1;
    }
    ssize_t n = recv(client->fd, buffer, size, 0);
    if (n > 0) return n;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) return 0;
    *reason = n == 0 ? KCI_CLOSE_CLIENT : KCI_CLOSE_READ_ERROR;
    return -1;
}

static void continue_handshake(kci_client *client)
{
    ERR_clear_error();
    int result = SSL_accept(client->ssl);
    if (result == 1) {
        client->tls_state = KCI_TLS_ESTABLISHED;
        CLIENT_LOG(KCI_LOG_DEBUG, client, "TLS handshake complete (%s, %s)",
                   SSL_get_version(client->ssl), SSL_get_cipher_name(client->ssl));
        kci_server_mark_dirty(client->server, client);
        return;
    }
    int reason = SSL_get_error(client->ssl, result);
    if (reason == SSL_ERROR_WANT_READ || reason == SSL_ERROR_WANT_WRITE) {
        set_want_write(client, reason == SSL_ERROR_WANT_WRITE);
        return;
    }
    char detail[256];
    ERR_error_string_n(ERR_get_error(), detail, sizeof detail);
    CLIENT_LOG_LIMITED(KCI_LOG_ERROR, client, "TLS handshake error: %s", detail);
    kci_client_close(client, KCI_CLOSE_TLS);
}

static void read_and_process(kci_client *client, uint8_t *buffer, kci_close_reason *reason);

/* Pauses a publisher whose messages put a subscriber behind, until the
 * end of that subscriber's pause budget at the latest (pauses_publishers). */
static void stall_reader(kci_client *client)
{
    kci_client *lagging = client->stall_on;
    if (lagging == NULL || client->closing) return;
    kci_server_stall(client->server, client);
    int64_t budget_end_ms = lagging->behind_since_ms + KCI_STALL_MS_MAX;
    if (client->stalled && lagging->behind_since_ms != 0 && client->stall_until_ms > budget_end_ms)
        client->stall_until_ms = budget_end_ms;
}

/* While a CONNECT is verified EPOLLIN is off: only a hang-up or a socket
 * error (a reset) wakes the client. Close it now: its job is cancelled. A
 * reset may leave unread bytes before the error, hence SO_ERROR (epoll
 * would report the error again and again until the verification ends). */
static void notice_hang_up(kci_client *client)
{
    uint8_t byte = 0;
    ssize_t n = recv(client->fd, &byte, 1, MSG_PEEK | MSG_DONTWAIT);
    int socket_error = 0;
    socklen_t socket_error_len = sizeof socket_error;
    if (n > 0 &&
        getsockopt(client->fd, SOL_SOCKET, SO_ERROR, &socket_error, &socket_error_len) == 0 &&
        socket_error == 0)
        return;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) return;
    CLIENT_LOG(KCI_LOG_DEBUG, client, "%s", "connection closed while its password was verified");
    kci_client_close(client, n == 0 ? KCI_CLOSE_CLIENT : KCI_CLOSE_READ_ERROR);
}

void kci_client_on_readable(kci_client *client)
{
    if (client->closing) return;
    if (client->auth_pending) {
        notice_hang_up(client);
        return;
    }
    if (client->tls_state == KCI_TLS_HANDSHAKE) {
        continue_handshake(client);
        if (client->tls_state != KCI_TLS_ESTABLISHED) return;
    }
    kci_close_reason reason = KCI_CLOSE_CLIENT;
    kci_server *server = client->server;
    uint8_t *buffer = server->read_buffer;
    server->current_reader = client;
    read_and_process(client, buffer, &reason);
    server->current_reader = NULL;
    stall_reader(client);
}

static void read_and_process(kci_client *client, uint8_t *buffer, kci_close_reason *reason)
{
    /* TLS may hold decrypted bytes the socket no longer signals: drain them. */
    do {
        ssize_t n = read_some(client, buffer, KCI_READ_BUFFER_BYTES, reason);
        if (n < 0) {
            CLIENT_LOG(KCI_LOG_DEBUG, client, "connection closed: %s",
                       kci_close_reason_text(*reason));
            kci_client_close(client, *reason);
            return;
        }
        if (n == 0) return;
        process_input(client, buffer, (size_t)n);
    } while (client->ssl != NULL && !client->closing && !client->auth_pending &&
             SSL_pending(client->ssl) > 0);
}

/* Reading again after a verification: the held input first, then what TLS
 * decrypted meanwhile (epoll does not signal it), then the socket via epoll. */
static void resume_reading(kci_client *client)
{
    kci_server *server = client->server;
    rewatch(client);
    uint8_t *held = client->held_input;
    uint32_t held_len = client->held_input_len;
    client->held_input = NULL;
    client->held_input_len = 0;
    server->current_reader = client;
    if (held != NULL) process_input(client, held, held_len);
    free(held);
    if (client->ssl != NULL && !client->closing && !client->auth_pending &&
        SSL_pending(client->ssl) > 0) {
        kci_close_reason reason = KCI_CLOSE_CLIENT;
        read_and_process(client, server->read_buffer, &reason);
    }
    server->current_reader = NULL;
    stall_reader(client);
}

void kci_client_on_verified(kci_client *client, const kci_verify_job *job)
{
    assert(client->auth_pending && client->verify_job == job && !client->closing);
    client->auth_pending = false;
    client->verify_job = NULL;
    kci_credentials credentials = {
        .auth_token = job->auth_token,
        .user = job->user,
        .password = job->password,
    };
    int verdict = decide(client, &credentials, job);
    if (verdict < 0) return;                 /* refused and closed */
    if (verdict > 0) return;                 /* a reload changed the hash: verified again */
    if (finish_connect(client) != 0) return; /* closed */
    resume_reading(client);
}

void kci_client_on_writable(kci_client *client)
{
    if (client->tls_state == KCI_TLS_HANDSHAKE) {
        continue_handshake(client);
        return;
    }
    kci_client_flush(client);
}

/* ---- life cycle -------------------------------------------------------- */

static void peer_address(kci_client *client, const struct sockaddr_storage *address)
{
    if (address->ss_family == AF_INET6) {
        const struct sockaddr_in6 *v6 = (const struct sockaddr_in6 *)address;
        inet_ntop(AF_INET6, &v6->sin6_addr, client->ip, sizeof client->ip);
        client->port = ntohs(v6->sin6_port);
    } else {
        const struct sockaddr_in *v4 = (const struct sockaddr_in *)address;
        inet_ntop(AF_INET, &v4->sin_addr, client->ip, sizeof client->ip);
        client->port = ntohs(v4->sin_port);
    }
}

static bool send_info(kci_client *client)
{
    kci_server *server = client->server;
    char tail[256];
    int n = snprintf(tail, sizeof tail, ",\"client_id\":%llu,\"client_ip\":\"%s\"}\r\n",
                     (unsigned long long)client->id, client->ip);
    assert(n > 0 && (size_t)n < sizeof tail);
    const char *prefix =
        client->internal_listener ? server->internal_info_prefix : server->info_prefix;
    size_t prefix_len =
        client->internal_listener ? server->internal_info_prefix_len : server->info_prefix_len;
    return kci_client_append(client, prefix, prefix_len) &&
           kci_client_append(client, tail, (size_t)n);
}

kc_err kci_client_create(kci_server *server, int fd, const struct sockaddr_storage *address,
                         bool internal_listener, kci_client **out)
{
    kci_client *client = calloc(1, sizeof *client);
    if (client == NULL) return KC_ERR_NOMEM;
    client->source.kind = KCI_SOURCE_CLIENT;
    client->server = server;
    client->fd = fd;
    client->internal_listener = internal_listener;
    client->id = ++server->next_client_id;
    /* nats-server's defaults apply even before CONNECT (and when CONNECT
     * omits them): verbose, pedantic and echo on. */
    client->verbose = true;
    client->pedantic = true;
    client->echo = true;
    client->start_ms = client->last_activity_ms = client->last_ping_ms = server->now_ms;
    kci_sid_index_init(&client->sid_index, kci_server_random(server));
    peer_address(client, address);
    kci_parser_init(&client->parser, (uint32_t)server->options.max_control_line_bytes,
                    (uint32_t)server->options.max_payload_bytes);
    if (server->tls_context != NULL && !internal_listener) { /* loopback: no TLS */
        client->ssl = SSL_new(server->tls_context);
        if (client->ssl == NULL || SSL_set_fd(client->ssl, fd) != 1) {
            SSL_free(client->ssl);
            free(client);
            return KC_ERR_TLS;
        }
        client->tls_state = KCI_TLS_HANDSHAKE;
    }
    *out = client;
    return KC_OK;
}

/* INFO goes out in plain text before any TLS handshake, as nats-server does,
 * so it is written here directly rather than through the TLS session. */
kc_err kci_client_start(kci_client *client)
{
    if (!send_info(client)) return KC_ERR_NOMEM;
    ssize_t n = send(client->fd, client->out, client->out_tail, MSG_NOSIGNAL);
    if (n != (ssize_t)client->out_tail) return KC_ERR_IO; /* a fresh socket takes 1 KiB */
    client->out_head = client->out_tail;
    release_output_buffer(client); /* most connections idle after INFO */
    CLIENT_LOG(KCI_LOG_DEBUG, client, "%s", "Client connection created");
    return KC_OK;
}

const char *kci_close_reason_text(kci_close_reason reason)
{
    switch (reason) {
    case KCI_CLOSE_CLIENT: return "Client Closed";
    case KCI_CLOSE_PROTOCOL: return "Protocol Violation";
    case KCI_CLOSE_AUTH: return "Authentication Failure";
    case KCI_CLOSE_SLOW_CONSUMER: return "Slow Consumer";
    case KCI_CLOSE_STALE: return "Stale Connection";
    case KCI_CLOSE_MAX_PAYLOAD: return "Maximum Payload Exceeded";
    case KCI_CLOSE_TLS: return "TLS Handshake Error";
    case KCI_CLOSE_SERVER_SHUTDOWN: return "Server Shutdown";
    case KCI_CLOSE_WRITE_ERROR: return "Write Error";
    case KCI_CLOSE_READ_ERROR: return "Read Error";
    case KCI_CLOSE_MAX_CONNECTIONS: return "Maximum Connections Exceeded";
    }
    return "Unknown";
}

/* Last words: one non-blocking write of what is pending (an -ERR line, or
 * the tail of a shutdown flush), then drain unread input so close() sends
 * FIN rather than RST and the peer can read the error. */
static void say_goodbye(kci_client *client)
{
    if (client->out_head < client->out_tail && client->tls_state != KCI_TLS_HANDSHAKE)
        (void)write_some(client, client->out + client->out_head,
                         client->out_tail - client->out_head);
    if (client->ssl == NULL) {
        shutdown(client->fd, SHUT_WR);
        for (int i = 0; i < CLOSE_DRAIN_READS_MAX; i++)
            if (recv(client->fd, client->server->read_buffer, KCI_READ_BUFFER_BYTES,
                     MSG_DONTWAIT) <= 0)
                break;
    }
}

void kci_client_close(kci_client *client, kci_close_reason reason)
{
    if (client->closing) return;
    kci_server *server = client->server;
    if (client->verify_job != NULL) { /* the verification's result finds nobody */
        kci_verifier_cancel(client->verify_job);
        client->verify_job = NULL;
    }
    while (client->subscription_count > 0)
        kci_subscription_remove(client->subscriptions[client->subscription_count - 1]);
    if (reason != KCI_CLOSE_SLOW_CONSUMER) say_goodbye(client);
    client->closing = true;
    client->close_reason = reason;
    epoll_ctl(server->epoll_fd, EPOLL_CTL_DEL, client->fd, NULL);
    close(client->fd);
    client->fd = -1;
    if (client->prev)
        client->prev->next = client->next;
    else
        server->clients = client->next;
    if (client->next) client->next->prev = client->prev;
    if (!client->internal_listener) server->client_count--;
    client->next = server->closed;
    client->prev = NULL;
    server->closed = client;
    static kci_log_limiter close_limiters[KCI_CLOSE_MAX_CONNECTIONS + 1]; /* one per reason */
    if (reason == KCI_CLOSE_CLIENT)
        CLIENT_LOG(KCI_LOG_DEBUG, client, "Client connection closed: %s",
                   kci_close_reason_text(reason));
    else
        CLIENT_LOG_THROUGH(&close_limiters[(size_t)reason % (KCI_CLOSE_MAX_CONNECTIONS + 1)],
                           KCI_LOG_INFO, client, "Client connection closed: %s",
                           kci_close_reason_text(reason));
}

void kci_client_free(kci_client *client)
{
    assert(client->closing && client->subscription_count == 0);
    kci_parser_release_buffers(&client->parser);
    SSL_free(client->ssl);
    free(client->subscriptions);
    kci_sid_index_release(&client->sid_index);
    free(client->out);
    free(client->name);
    free(client->lang);
    free(client->version);
    free(client->user_name);
    free(client->held_input);
    free(client);
}

/* Every housekeeping tick: an empty output buffer goes back to malloc, so
 * an idle connection holds only its struct. A busy one re-allocates at most
 * once per tick, which costs nothing next to its traffic. */
static void release_idle_buffers(kci_client *client)
{
    if (client->out_head == client->out_tail) release_output_buffer(client);
    if (kci_parser_idle(&client->parser)) kci_parser_release_buffers(&client->parser);
}

void kci_client_housekeeping(kci_client *client, int64_t now_ms)
{
    const kci_options *options = &client->server->options;
    if (client->tls_state == KCI_TLS_HANDSHAKE &&
        now_ms - client->start_ms > options->tls_timeout_ms) {
        CLIENT_LOG_LIMITED(KCI_LOG_ERROR, client, "%s", "TLS handshake timeout");
        kci_client_close(client, KCI_CLOSE_TLS);
        return;
    }
    if (!client->connect_received && !client->auth_pending &&
        (auth_required(client) || client->internal_listener) &&
        now_ms - client->start_ms > options->auth_timeout_ms) {
        kci_client_send_error(client, "Authentication Timeout");
        kci_client_close(client, KCI_CLOSE_AUTH);
        return;
    }
    if (client->write_stalled_since_ms != 0 &&
        now_ms - client->write_stalled_since_ms > options->write_deadline_ms) {
        client->server->stats.slow_consumers++;
        CLIENT_LOG_LIMITED(KCI_LOG_WARN, client,
                           "Slow Consumer Detected: WriteDeadline of %lldms Exceeded",
                           (long long)options->write_deadline_ms);
        kci_client_close(client, KCI_CLOSE_SLOW_CONSUMER);
        return;
    }
    if (client->behind_since_ms != 0 &&
        now_ms - client->behind_since_ms > options->write_deadline_ms) {
        client->server->stats.slow_consumers++;
        CLIENT_LOG_LIMITED(KCI_LOG_WARN, client,
                           "Slow Consumer Detected: over half of MaxPending of %lld behind for "
                           "more than WriteDeadline of %lldms",
                           (long long)options->max_pending_bytes,
                           (long long)options->write_deadline_ms);
        kci_client_close(client, KCI_CLOSE_SLOW_CONSUMER);
        return;
    }
    if (now_ms - client->last_ping_ms >= options->ping_interval_ms) {
        client->last_ping_ms = now_ms;
        if (now_ms - client->last_activity_ms < options->ping_interval_ms) return;
        if (client->pings_outstanding + 1 > options->ping_max) {
            kci_client_send_error(client, "Stale Connection");
            kci_client_close(client, KCI_CLOSE_STALE);
            return;
        }
        client->pings_outstanding++;
        kci_client_append(client, "PING\r\n", 6);
    }
    release_idle_buffers(client);
}
