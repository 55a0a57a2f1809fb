/* gather.c - the console's gatherer thread (see gather.h).
 *
 * While the console is watched (its nodes, queue or ledger endpoint was
 * asked within KCI_CONSOLE_WATCHED_MS), every KCI_CONSOLE_GATHER_INTERVAL_MS
 * it asks each component in turn and replaces that panel's document; a component that does not
 * answer (not configured, or busy) makes its panel say so ("available": false with the reason)
 * rather than keep stale figures. Calls are sequential on one connection: the console is for
 * people, and a few requests a second are nothing next to the traffic it shows. Unwatched, it asks
 * nothing: the console then costs the components nothing and adds nothing to the broker's counters
 * (/varz's in_msgs, /subsz). */
#include "gather.h"

#include <jansson.h>
#include <nats/nats.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/clock.h"
#include "common/feed.h"
#include "common/log.h"
#include "service/call.h"
#include "service/connect.h"
#include "views.h"

enum {
    HISTORY_REQUEST_BYTES_MAX = 256,
    HISTORY_PAGE_EDGES = 10000,
    CONNECT_TIMEOUT_MS = 2000,
};

struct kci_console_gatherer {
    natsConnection *connection;
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    bool stopping;
    json_t *queue_previous; /* the last kc.sys.queue.stats, for rates */
    int64_t queue_previous_ms;
    json_t *audit;             /* the last kc.ledger.audit answer */
    int64_t audit_ms;          /* wall clock, as the history's time_ms */
    int64_t audit_duration_ms; /* the last audit's */
};

/* Asks subject; the answer as JSON, or NULL with the reason in reason. */
static json_t *ask(kci_console_gatherer *gatherer, const char *subject, const char *body,
                   int64_t timeout_ms, char *reason, size_t reason_size)
{
    natsMsg *reply = NULL;
    kci_refusal refusal;
    kc_err err = kci_call(&reply, gatherer->connection, subject, body, body ? strlen(body) : 0,
                          timeout_ms, &refusal);
    json_t *root = NULL;
    if (err == KC_OK) {
        root = json_loadb(natsMsg_GetData(reply), (size_t)natsMsg_GetDataLength(reply), 0, NULL);
        if (root == NULL) snprintf(reason, reason_size, "%s: the answer is not JSON", subject);
    } else if (err == KC_ERR_NO_RESPONDERS) {
        snprintf(reason, reason_size, "nobody answers %s (is the component configured?)", subject);
    } else {
        snprintf(reason, reason_size, "%s: %s", subject, kc_last_error());
    }
    natsMsg_Destroy(reply);
    return root;
}

static void put(const char *name, json_t *document)
{
    char *text = document != NULL ? json_dumps(document, JSON_COMPACT) : NULL;
    if (text != NULL) kci_feed_put(name, text, strlen(text), kci_wall_ms());
    free(text);
    json_decref(document);
}

static void gather_nodes(kci_console_gatherer *gatherer)
{
    char reason[256];
    json_t *status = ask(gatherer, "kc.arbiter.status", NULL, KCI_CONSOLE_CALL_TIMEOUT_MS, reason,
                         sizeof reason);
    if (status == NULL) {
        put("nodes", kci_console_unavailable(reason, kci_wall_ms()));
        return;
    }
    json_t *verdicts = ask(gatherer, "kc.arbiter.verdicts", NULL, KCI_CONSOLE_CALL_TIMEOUT_MS,
                           reason, sizeof reason);
    json_t *tree =
        ask(gatherer, "kc.arbiter.tree", NULL, KCI_CONSOLE_CALL_TIMEOUT_MS, reason, sizeof reason);
    put("nodes", kci_console_nodes_view(status, verdicts, tree, kci_wall_ms()));
    json_decref(status);
    json_decref(verdicts);
    json_decref(tree);
}

static void gather_queue(kci_console_gatherer *gatherer)
{
    char reason[256];
    json_t *stats = ask(gatherer, "kc.sys.queue.stats", NULL, KCI_CONSOLE_CALL_TIMEOUT_MS, reason,
                        sizeof reason);
    int64_t now_ms = kci_wall_ms();
    if (stats == NULL) {
        put("queue", kci_console_unavailable(reason, now_ms));
        return;
    }
    put("queue", kci_console_queue_view(stats, gatherer->queue_previous,
                                        now_ms - gatherer->queue_previous_ms, now_ms));
    json_decref(gatherer->queue_previous);
    gatherer->queue_previous = stats;
    gatherer->queue_previous_ms = now_ms;
}

/* The window's edges, page by page (bounded); NULL with reason. */
static json_t *window_edges(kci_console_gatherer *gatherer, int64_t since_ms, char *reason,
                            size_t reason_size)
{
    json_t *edges = json_array();
    char *cursor = NULL;
    bool failed = false;
    while (edges != NULL && json_array_size(edges) < KCI_CONSOLE_HISTORY_EDGES_MAX) {
        json_t *request = json_pack("{s:I, s:i, s:s?}", "since_ms", (json_int_t)since_ms, "limit",
                                    HISTORY_PAGE_EDGES, "after", cursor);
        char *body = request != NULL ? json_dumps(request, JSON_COMPACT) : NULL;
        json_decref(request);
        json_t *page = body != NULL ? ask(gatherer, "kc.ledger.history", body,
                                          KCI_CONSOLE_CALL_TIMEOUT_MS, reason, reason_size)
                                    : NULL;
        free(body);
        free(cursor);
        cursor = NULL;
        if (page == NULL) {
            failed = true;
            break;
        }
        json_array_extend(edges, json_object_get(page, "edges"));
        const char *next = json_string_value(json_object_get(page, "next"));
        if (next != NULL) cursor = strdup(next);
        json_decref(page);
        if (cursor == NULL) break;
    }
    free(cursor);
    if (!failed) return edges;
    json_decref(edges);
    return NULL;
}

/* The audit (the supply, and a check of every signature) is run again once
 * the window shows a transfer it has not seen, or every
 * KCI_CONSOLE_AUDIT_INTERVAL_MS; never sooner than KCI_CONSOLE_AUDIT_GAP_MIN_MS
 * or ten times its last duration after the last, so it takes at most a
 * tenth of the ledger's time however large the ledger grows. */
static bool audit_due(const kci_console_gatherer *gatherer, const json_t *edges, int64_t now_ms)
{
    if (gatherer->audit_ms == 0) return true;
    int64_t gap_ms = 10 * gatherer->audit_duration_ms;
    if (gap_ms < KCI_CONSOLE_AUDIT_GAP_MIN_MS) gap_ms = KCI_CONSOLE_AUDIT_GAP_MIN_MS;
    if (now_ms - gatherer->audit_ms < gap_ms) return false;
    if (now_ms - gatherer->audit_ms >= KCI_CONSOLE_AUDIT_INTERVAL_MS) return true;
    const json_t *last = json_array_get(edges, json_array_size(edges) - 1);
    return last != NULL &&
           json_integer_value(json_object_get(last, "time_ms")) > gatherer->audit_ms;
}

static void refresh_audit(kci_console_gatherer *gatherer, int64_t now_ms)
{
    char reason[256];
    int64_t started_ms = kci_monotonic_ms();
    json_t *audit =
        ask(gatherer, "kc.ledger.audit", "{}", KCI_CONSOLE_AUDIT_TIMEOUT_MS, reason, sizeof reason);
    gatherer->audit_duration_ms = kci_monotonic_ms() - started_ms;
    gatherer->audit_ms = now_ms; /* a refused audit (busy) is retried after the gap */
    if (audit == NULL) return;
    json_decref(gatherer->audit);
    gatherer->audit = audit;
}

static void gather_ledger(kci_console_gatherer *gatherer)
{
    char reason[256];
    int64_t now_ms = kci_wall_ms();
    json_t *edges = window_edges(gatherer, now_ms - KCI_CONSOLE_WINDOW_MS, reason, sizeof reason);
    if (edges == NULL) {
        put("ledger", kci_console_unavailable(reason, now_ms));
        return;
    }
    if (audit_due(gatherer, edges, now_ms)) refresh_audit(gatherer, now_ms);
    put("ledger",
        kci_console_ledger_view(edges, gatherer->audit, KCI_CONSOLE_WINDOW_MS, kci_wall_ms()));
    json_decref(edges);
}

/* Sleeps interval_ms unless stopped; false once stopping. */
static bool wait_interval(kci_console_gatherer *gatherer, int64_t interval_ms)
{
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += interval_ms / 1000;
    until.tv_nsec += (interval_ms % 1000) * 1000000;
    if (until.tv_nsec >= 1000000000) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000;
    }
    pthread_mutex_lock(&gatherer->lock);
    while (!gatherer->stopping &&
           pthread_cond_timedwait(&gatherer->wake, &gatherer->lock, &until) == 0) {
    }
    bool go_on = !gatherer->stopping;
    pthread_mutex_unlock(&gatherer->lock);
    return go_on;
}

static void *gather_loop(void *context)
{
    kci_console_gatherer *gatherer = context;
    int64_t interval_ms = 0;
    do {
        bool watched = kci_wall_ms() - kci_feed_wanted_ms() < KCI_CONSOLE_WATCHED_MS;
        interval_ms = watched ? KCI_CONSOLE_GATHER_INTERVAL_MS : KCI_CONSOLE_IDLE_CHECK_MS;
        if (!watched) continue;
        gather_nodes(gatherer);
        gather_queue(gatherer);
        gather_ledger(gatherer);
    } while (wait_interval(gatherer, interval_ms));
    return NULL;
}

kc_err kci_console_gather_start(kci_console_gatherer **out, const char *url, const char *user,
                                const char *password, char *error, size_t error_size)
{
    *out = NULL;
    kci_console_gatherer *gatherer = calloc(1, sizeof *gatherer);
    if (gatherer == NULL) return KC_ERR_NOMEM;
    kc_client_options options;
    kc_client_options_init(&options);
    options.servers = url;
    options.user = user;
    options.password = password;
    options.connect_timeout_ms = CONNECT_TIMEOUT_MS;
    options.reconnect_attempts_max = -1;
    const kci_connect_spec spec = {.options = &options, .name = "kcobrad-console"};
    kc_err err = kci_connect(&gatherer->connection, &spec);
    if (err != KC_OK) {
        snprintf(error, error_size, "console: %s", kc_last_error());
        free(gatherer);
        return err;
    }
    pthread_mutex_init(&gatherer->lock, NULL);
    pthread_cond_init(&gatherer->wake, NULL);
    if (pthread_create(&gatherer->thread, NULL, gather_loop, gatherer) != 0) {
        snprintf(error, error_size, "console: cannot start its thread");
        kci_disconnect(&gatherer->connection);
        free(gatherer);
        return KC_ERR_NOMEM;
    }
    *out = gatherer;
    return KC_OK;
}

void kci_console_gather_stop(kci_console_gatherer *gatherer)
{
    if (gatherer == NULL) return;
    pthread_mutex_lock(&gatherer->lock);
    gatherer->stopping = true;
    pthread_cond_signal(&gatherer->wake);
    pthread_mutex_unlock(&gatherer->lock);
    pthread_join(gatherer->thread, NULL);
    kci_disconnect(&gatherer->connection);
    json_decref(gatherer->queue_previous);
    json_decref(gatherer->audit);
    pthread_mutex_destroy(&gatherer->lock);
    pthread_cond_destroy(&gatherer->wake);
    kci_feed_clear();
    free(gatherer);
}
