/* console.c - the web console's files, JSON endpoints and basic auth on the
 * monitoring port (see console.h; docs/console.md lists the fields).
 *
 * The files are compiled in (console_assets.h), so the console needs no
 * file beside kcobrad and no network: a browser on an isolated operator's
 * network gets it whole. It polls the JSON endpoints; each answer is small
 * and rendered on the broker's loop (the broker's) or copied from the feed
 * (the components'), so polling costs the broker almost nothing. */
#include "console.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "auth.h"
#include "common/feed.h"
#include "console_assets.h"
#include "http_header.h"
#include "sublist.h"

#define API_PREFIX "/console/api/"
#define JSON_TYPE "application/json"

static const char *const FEED_NAMES[] = {"nodes", "queue", "ledger"};

static int64_t wall_now_ms(void)
{
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    return (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000;
}

const kci_console_asset *kci_console_asset_find(const char *path, size_t path_len)
{
    if (path_len == 1 && path[0] == '/') return kci_console_asset_find("/console/index.html", 19);
    for (size_t i = 0; i < kci_console_asset_count; i++) {
        const kci_console_asset *asset = &kci_console_assets[i];
        if (strlen(asset->path) == path_len && memcmp(asset->path, path, path_len) == 0)
            return asset;
    }
    return NULL;
}

/* ---- /console/api/broker ---------------------------------------------------- */

static double per_second(uint64_t now, uint64_t before, int64_t elapsed_ms)
{
    if (elapsed_ms <= 0 || now < before) return 0.0;
    return (double)(now - before) * 1000.0 / (double)elapsed_ms;
}

json_t *kci_console_broker_json(const kci_console_traffic *now, const kci_console_traffic *before)
{
    int64_t elapsed_ms = before->wall_ms > 0 ? now->wall_ms - before->wall_ms : 0;
    return json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:f, s:f, s:f, s:f}",
                     "now_ms", (json_int_t)now->wall_ms, "rate_window_ms", (json_int_t)elapsed_ms,
                     "connections", (json_int_t)now->connections, "total_connections",
                     (json_int_t)now->total_connections, "subscriptions",
                     (json_int_t)now->subscriptions, "slow_consumers",
                     (json_int_t)now->slow_consumers, "in_msgs", (json_int_t)now->in_msgs,
                     "out_msgs", (json_int_t)now->out_msgs, "in_bytes", (json_int_t)now->in_bytes,
                     "out_bytes", (json_int_t)now->out_bytes, "in_msgs_per_s",
                     per_second(now->in_msgs, before->in_msgs, elapsed_ms), "out_msgs_per_s",
                     per_second(now->out_msgs, before->out_msgs, elapsed_ms), "in_bytes_per_s",
                     per_second(now->in_bytes, before->in_bytes, elapsed_ms), "out_bytes_per_s",
                     per_second(now->out_bytes, before->out_bytes, elapsed_ms));
}

static kci_console_traffic sample_traffic(const kci_server *server)
{
    kci_sublist_stats sublist;
    kci_sublist_get_stats(server->sublist, &sublist);
    const kci_server_stats *stats = &server->stats;
    return (kci_console_traffic){
        .wall_ms = wall_now_ms(),
        .connections = server->client_count,
        .subscriptions = sublist.subscription_count,
        .in_msgs = stats->in_msgs,
        .out_msgs = stats->out_msgs,
        .in_bytes = stats->in_bytes,
        .out_bytes = stats->out_bytes,
        .slow_consumers = stats->slow_consumers,
        .total_connections = stats->total_connections,
    };
}

/* Rates over the last window of at least KCI_CONSOLE_RATE_WINDOW_MS: the
 * newer sample becomes the baseline once it is that old. */
static json_t *broker_document(kci_console *console, const kci_server *server)
{
    kci_console_traffic now = sample_traffic(server);
    if (console->newer.wall_ms == 0) {
        console->older = now;
        console->newer = now;
    } else if (now.wall_ms - console->newer.wall_ms >= KCI_CONSOLE_RATE_WINDOW_MS) {
        console->older = console->newer;
        console->newer = now;
    }
    return kci_console_broker_json(&now, &console->older);
}

/* ---- answering -------------------------------------------------------------- */

static void respond_copy(kci_http_response *response, int status, const char *type,
                         const void *bytes, size_t len)
{
    response->status = status;
    response->content_type = type;
    response->body = malloc(len + 1);
    if (response->body == NULL) return; /* 500 */
    memcpy(response->body, bytes, len);
    response->body[len] = '\0';
    response->body_len = len;
}

static void respond_document(kci_http_response *response, int status, json_t *root)
{
    response->status = status;
    response->content_type = JSON_TYPE;
    response->body = root != NULL ? json_dumps(root, JSON_COMPACT) : NULL;
    response->body_len = response->body != NULL ? strlen(response->body) : 0;
    json_decref(root);
}

/* nodes, queue, ledger: the gatherer's last document, as it put it. */
static void answer_feed(const char *name, kci_http_response *response)
{
    size_t len = 0;
    int64_t wall_ms = 0;
    kci_feed_want(wall_now_ms());
    char *text = kci_feed_get(name, &len, &wall_ms);
    if (text == NULL) {
        respond_document(response, 503,
                         json_pack("{s:s}", "error",
                                   "gathering: the components' figures are gathered while the "
                                   "console is watched; ask again in a moment"));
        return;
    }
    response->status = 200;
    response->content_type = JSON_TYPE;
    response->body = text;
    response->body_len = len;
}

static bool answer_api(kci_console *console, const kci_server *server, const char *name,
                       size_t name_len, kci_http_response *response)
{
    if (name_len == 6 && memcmp(name, "broker", 6) == 0) {
        respond_document(response, 200, broker_document(console, server));
        return true;
    }
    for (size_t i = 0; i < sizeof FEED_NAMES / sizeof FEED_NAMES[0]; i++) {
        if (strlen(FEED_NAMES[i]) == name_len && memcmp(FEED_NAMES[i], name, name_len) == 0) {
            answer_feed(FEED_NAMES[i], response);
            return true;
        }
    }
    return false;
}

bool kci_console_answer(kci_console *console, const kci_server *server, const char *path,
                        size_t path_len, kci_http_response *response)
{
    const size_t prefix_len = sizeof API_PREFIX - 1;
    if (path_len > prefix_len && memcmp(path, API_PREFIX, prefix_len) == 0)
        return answer_api(console, server, path + prefix_len, path_len - prefix_len, response);
    const kci_console_asset *asset = kci_console_asset_find(path, path_len);
    if (asset == NULL) return false;
    respond_copy(response, 200, asset->content_type, asset->bytes, asset->len);
    return true;
}

/* ---- basic auth --------------------------------------------------------------- */

static bool password_matches(kci_console *console, const char *given, const char *configured)
{
    if (!kci_secret_is_bcrypt(configured)) return kci_secret_equal(given, configured);
    if (console->verified_password != NULL && strcmp(console->verified_against, configured) == 0 &&
        kci_secret_equal(given, console->verified_password))
        return true;
    if (!kci_bcrypt_verify(given, configured)) return false; /* slow: on the loop */
    char *password = strdup(given), *against = strdup(configured);
    if (password == NULL || against == NULL) {
        free(password);
        free(against);
        return true; /* no cache this time */
    }
    free(console->verified_password);
    free(console->verified_against);
    console->verified_password = password;
    console->verified_against = against;
    return true;
}

bool kci_console_authorized(kci_console *console, const kci_options *options,
                            const kci_http_request *request, const char *bytes)
{
    if (options->http_user == NULL) return true;
    uint32_t start = 0, len = 0;
    if (!kci_http_header_value(request, bytes, "Authorization", &start, &len)) return false;
    char user[KCI_HTTP_CREDENTIAL_BYTES_MAX], password[KCI_HTTP_CREDENTIAL_BYTES_MAX];
    if (!kci_http_basic_credentials(bytes + start, len, user, password)) return false;
    bool user_ok = kci_secret_equal(user, options->http_user);
    bool ok =
        user_ok && password_matches(console, password,
                                    options->http_password != NULL ? options->http_password : "");
    memset(password, 0, sizeof password);
    return ok;
}

void kci_console_free(kci_console *console)
{
    free(console->verified_password);
    free(console->verified_against);
    console->verified_password = NULL;
    console->verified_against = NULL;
}
