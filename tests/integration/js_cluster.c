/*
 * js_cluster.c - a three-server nats-server cluster with JetStream for tests
 * (js_cluster.h). Monitoring answers (/jsz) are read with jansson.
 */
#include "js_cluster.h"

#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

enum {
    START_ATTEMPTS_MAX = 3,
    READY_POLL_INTERVAL_MS = 100,
    HTTP_TIMEOUT_MS = 2000,
    JSZ_RESPONSE_BYTES_MAX = 256 * 1024,
    EXIT_WAIT_TIMEOUT_MS = 5000,
};

static const char CLUSTER_NAME[] = "kc-js";

/* ======================================================================= configs */

static harness_status node_write_config(js_cluster *cluster, int index)
{
    js_cluster_node *node = &cluster->nodes[index];
    char store[HARNESS_PATH_SIZE_MAX];
    if (harness_server_path(&node->server, "store", store, sizeof(store)) != HARNESS_OK)
        return HARNESS_MISMATCH;
    int length = snprintf(node->config, sizeof(node->config),
                          "server_name: %s\n"
                          "jetstream {\n  store_dir: \"%s\"\n}\n"
                          "cluster {\n  name: %s\n  listen: \"127.0.0.1:%d\"\n  routes: [\n",
                          node->name, store, CLUSTER_NAME, node->route_port);
    for (int other = 0; other < JS_CLUSTER_SIZE && length > 0; other++) {
        if (other == index) continue;
        length += snprintf(node->config + length, sizeof(node->config) - (size_t)length,
                           "    \"nats://127.0.0.1:%d\"\n", cluster->nodes[other].route_port);
        if ((size_t)length >= sizeof(node->config)) return HARNESS_MISMATCH;
    }
    length += snprintf(node->config + length, sizeof(node->config) - (size_t)length, "  ]\n}\n");
    return length > 0 && (size_t)length < sizeof(node->config) ? HARNESS_OK : HARNESS_MISMATCH;
}

/* ======================================================================= /jsz */

/* The server's /jsz (with query) parsed, or NULL. */
static json_t *node_jsz(const js_cluster_node *node, const char *query)
{
    static char response[JSZ_RESPONSE_BYTES_MAX];
    char path[64];
    snprintf(path, sizeof(path), "/jsz%s", query);
    if (harness_http_get(node->server.monitor_port, path, response, sizeof(response),
                         HTTP_TIMEOUT_MS) != HARNESS_OK)
        return NULL;
    const char *body = strstr(response, "\r\n\r\n");
    if (body == NULL) return NULL;
    /* As reals: /jsz reports unlimited reservations as 2^64 - 1, which
     * jansson refuses as an integer. */
    return json_loads(body + 4, JSON_DECODE_INT_AS_REAL, NULL);
}

/* The meta leader's name as node sees it into name (empty: none). */
static void node_meta_leader(const js_cluster_node *node, char name[JS_CLUSTER_NAME_BYTES_MAX])
{
    name[0] = '\0';
    json_t *jsz = node_jsz(node, "");
    const char *leader =
        json_string_value(json_object_get(json_object_get(jsz, "meta_cluster"), "leader"));
    if (leader != NULL) snprintf(name, JS_CLUSTER_NAME_BYTES_MAX, "%s", leader);
    json_decref(jsz);
}

/* The leader of stream as node sees it into name (empty: none or not known). */
static void node_stream_leader(const js_cluster_node *node, const char *stream,
                               char name[JS_CLUSTER_NAME_BYTES_MAX])
{
    name[0] = '\0';
    json_t *jsz = node_jsz(node, "?streams=true");
    json_t *accounts = json_object_get(jsz, "account_details");
    size_t account_index = 0, stream_index = 0;
    json_t *account = NULL, *detail = NULL;
    json_array_foreach(accounts, account_index, account)
    {
        json_array_foreach(json_object_get(account, "stream_detail"), stream_index, detail)
        {
            if (!json_is_string(json_object_get(detail, "name")) ||
                strcmp(json_string_value(json_object_get(detail, "name")), stream) != 0)
                continue;
            const char *leader =
                json_string_value(json_object_get(json_object_get(detail, "cluster"), "leader"));
            if (leader != NULL) snprintf(name, JS_CLUSTER_NAME_BYTES_MAX, "%s", leader);
        }
    }
    json_decref(jsz);
}

/* ======================================================================= cluster */

bool js_cluster_running(const js_cluster *cluster, int index)
{
    return index >= 0 && index < JS_CLUSTER_SIZE && cluster->nodes[index].server.pid != 0;
}

void js_cluster_urls_from(const js_cluster *cluster, int first_index, char *out, size_t out_size)
{
    size_t length = 0;
    out[0] = '\0';
    for (int step = 0; step < JS_CLUSTER_SIZE && length < out_size; step++) {
        int index = (first_index + step) % JS_CLUSTER_SIZE;
        int written = snprintf(out + length, out_size - length, "%s%s", step > 0 ? "," : "",
                               cluster->nodes[index].server.url);
        if (written < 0) return;
        length += (size_t)written;
    }
}

int js_cluster_index_of(const js_cluster *cluster, const char *name)
{
    for (int index = 0; index < JS_CLUSTER_SIZE; index++)
        if (strcmp(cluster->nodes[index].name, name) == 0) return index;
    return -1;
}

/* One look: every running, unpaused node names the same, existing leader. */
static bool cluster_agrees_on_meta_leader(const js_cluster *cluster)
{
    char first[JS_CLUSTER_NAME_BYTES_MAX] = "";
    for (int index = 0; index < JS_CLUSTER_SIZE; index++) {
        const js_cluster_node *node = &cluster->nodes[index];
        if (!js_cluster_running(cluster, index) || node->paused) continue;
        char leader[JS_CLUSTER_NAME_BYTES_MAX];
        node_meta_leader(node, leader);
        if (leader[0] == '\0') return false;
        if (first[0] == '\0') snprintf(first, sizeof(first), "%s", leader);
        if (strcmp(first, leader) != 0) return false;
    }
    return first[0] != '\0';
}

harness_status js_cluster_wait_ready(js_cluster *cluster, int timeout_ms)
{
    int64_t deadline_ms = harness_now_ms() + timeout_ms;
    while (harness_now_ms() < deadline_ms) {
        if (cluster_agrees_on_meta_leader(cluster)) return HARNESS_OK;
        harness_sleep_ms(READY_POLL_INTERVAL_MS);
    }
    fprintf(stderr, "js_cluster: no agreed JetStream meta leader within %d ms\n", timeout_ms);
    return HARNESS_TIMEOUT;
}

static harness_status cluster_start_once(js_cluster *cluster)
{
    for (int index = 0; index < JS_CLUSTER_SIZE; index++) {
        js_cluster_node *node = &cluster->nodes[index];
        if (harness_server_init(&node->server, cluster->binary_path) != HARNESS_OK)
            return HARNESS_ERROR;
        node->server.monitor_enabled = true;
        snprintf(node->name, sizeof(node->name), "kc-%d", index + 1);
        if (harness_port_pick(&node->route_port) != HARNESS_OK) return HARNESS_ERROR;
    }
    for (int index = 0; index < JS_CLUSTER_SIZE; index++)
        if (node_write_config(cluster, index) != HARNESS_OK) return HARNESS_MISMATCH;
    for (int index = 0; index < JS_CLUSTER_SIZE; index++)
        if (harness_server_start(&cluster->nodes[index].server, cluster->nodes[index].config) !=
            HARNESS_OK)
            return HARNESS_ERROR;
    int length = 0;
    for (int index = 0; index < JS_CLUSTER_SIZE; index++)
        length += snprintf(cluster->urls + length, sizeof(cluster->urls) - (size_t)length, "%s%s",
                           index > 0 ? "," : "", cluster->nodes[index].server.url);
    return js_cluster_wait_ready(cluster, JS_CLUSTER_READY_TIMEOUT_MS);
}

harness_status js_cluster_start(js_cluster *cluster, const char *binary_path)
{
    memset(cluster, 0, sizeof(*cluster));
    cluster->binary_path = binary_path;
    harness_status status = HARNESS_ERROR;
    for (int attempt = 0; attempt < START_ATTEMPTS_MAX; attempt++) {
        status = cluster_start_once(cluster);
        if (status == HARNESS_OK) return HARNESS_OK;
        js_cluster_cleanup(cluster);
        cluster->binary_path = binary_path;
    }
    return status;
}

harness_status js_cluster_kill(js_cluster *cluster, int index)
{
    if (!js_cluster_running(cluster, index)) return HARNESS_ERROR;
    js_cluster_node *node = &cluster->nodes[index];
    if (harness_server_signal(&node->server, SIGKILL) != HARNESS_OK) return HARNESS_ERROR;
    node->paused = false; /* SIGKILL ends a stopped process too */
    int exit_status = 0;
    return harness_server_wait_exit(&node->server, EXIT_WAIT_TIMEOUT_MS, &exit_status);
}

harness_status js_cluster_pause(js_cluster *cluster, int index)
{
    if (!js_cluster_running(cluster, index)) return HARNESS_ERROR;
    harness_status status = harness_server_signal(&cluster->nodes[index].server, SIGSTOP);
    if (status == HARNESS_OK) cluster->nodes[index].paused = true;
    return status;
}

harness_status js_cluster_resume(js_cluster *cluster, int index)
{
    if (!js_cluster_running(cluster, index)) return HARNESS_ERROR;
    harness_status status = harness_server_signal(&cluster->nodes[index].server, SIGCONT);
    if (status == HARNESS_OK) cluster->nodes[index].paused = false;
    return status;
}

harness_status js_cluster_restart(js_cluster *cluster, int index)
{
    if (index < 0 || index >= JS_CLUSTER_SIZE || js_cluster_running(cluster, index))
        return HARNESS_ERROR;
    js_cluster_node *node = &cluster->nodes[index];
    harness_status status = harness_server_start(&node->server, node->config);
    if (status != HARNESS_OK) return status;
    return js_cluster_wait_ready(cluster, JS_CLUSTER_READY_TIMEOUT_MS);
}

int js_cluster_stream_leader(js_cluster *cluster, const char *stream, int timeout_ms)
{
    int64_t deadline_ms = harness_now_ms() + timeout_ms;
    while (harness_now_ms() < deadline_ms) {
        for (int index = 0; index < JS_CLUSTER_SIZE; index++) {
            if (!js_cluster_running(cluster, index) || cluster->nodes[index].paused) continue;
            char claimed[JS_CLUSTER_NAME_BYTES_MAX], confirmed[JS_CLUSTER_NAME_BYTES_MAX];
            node_stream_leader(&cluster->nodes[index], stream, claimed);
            int leader = js_cluster_index_of(cluster, claimed);
            if (!js_cluster_running(cluster, leader) || cluster->nodes[leader].paused) continue;
            node_stream_leader(&cluster->nodes[leader], stream, confirmed);
            if (strcmp(claimed, confirmed) == 0) return leader;
        }
        harness_sleep_ms(READY_POLL_INTERVAL_MS);
    }
    fprintf(stderr, "js_cluster: no leader of stream %s within %d ms\n", stream, timeout_ms);
    return -1;
}

void js_cluster_cleanup(js_cluster *cluster)
{
    for (int index = 0; index < JS_CLUSTER_SIZE; index++) {
        js_cluster_node *node = &cluster->nodes[index];
        if (node->paused && node->server.pid != 0) harness_server_signal(&node->server, SIGCONT);
        node->paused = false;
        harness_server_cleanup(&node->server);
    }
}
