/* verdict_js_world.c - the shared part of the JetStream verdict tests
 * (verdict_js_world.h). */
#include "verdict_js_world.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "common/clock.h"

enum {
    VOTERS = 3,
    VOTE_AGAIN_MS = 1000,
    POLL_MS = 20,
};

static const char *const node_names[VJ_NODES] = {"n0", "n1", "n2", "n3"};
static const char *const arbiter_ids[] = {"a", "b", "c", "d"};

static void pause_ms(int64_t duration_ms)
{
    struct timespec pause = {duration_ms / 1000, (duration_ms % 1000) * 1000000L};
    nanosleep(&pause, NULL);
}

kc_err vj_start(vj_arbiter *a, const char *id, const char *servers, const char *verdict_servers,
                const char *stream, uint32_t replicas, char *error, size_t error_size)
{
    memset(a, 0, sizeof *a);
    snprintf(a->id, sizeof a->id, "%s", id);
    kc_client_options options;
    kc_client_options_init(&options);
    options.servers = servers;
    options.node = a->id;
    kc_err err = kc_client_open(&a->client, &options);
    if (err != KC_OK) {
        snprintf(error, error_size, "client: %s", kc_last_error());
        return err;
    }
    kci_arbiter_config config;
    kci_arbiter_config_default(&config);
    config.id = a->id;
    config.arbiter_count = 4;
    config.peer_count = 4;
    for (int i = 0; i < 4; i++)
        config.peers[i] = arbiter_ids[i];
    config.tick_ms = 3600 * 1000; /* only the test votes */
    config.enforce = true;        /* kc.sys.quarantine.set: an ordinary message on nats-server */
    config.verdicts_jetstream = true;
    config.verdict_stream = stream;
    config.verdict_replicas = replicas;
    config.verdict_servers = verdict_servers;
    config.verdict_open_timeout_ms = 30000;
    error[0] = '\0';
    err = kci_arbiter_start(&a->arbiter, a->client, &config, error, error_size);
    for (int i = 0; err == KC_OK && i < VJ_NODES; i++) { /* known from the fabric in real life */
        pthread_mutex_lock(&a->arbiter->lock);
        assert_non_null(kci_arbiter_node(a->arbiter, node_names[i], true));
        pthread_mutex_unlock(&a->arbiter->lock);
    }
    if (err != KC_OK) {
        kc_client_close(a->client, VJ_STOP_DRAIN_MS);
        a->client = NULL;
    }
    return err;
}

void vj_stop(vj_arbiter *a)
{
    kci_arbiter_stop(a->arbiter, VJ_STOP_DRAIN_MS);
    kc_client_close(a->client, VJ_STOP_DRAIN_MS);
    memset(a, 0, sizeof *a);
}

uint32_t vj_epoch(vj_arbiter *a, int node)
{
    pthread_mutex_lock(&a->arbiter->lock);
    uint32_t epoch = kci_arbiter_node(a->arbiter, node_names[node], false)->epoch;
    pthread_mutex_unlock(&a->arbiter->lock);
    return epoch;
}

void vj_votes(vj_arbiter *a, int node, const char *kind)
{
    uint32_t epoch = vj_epoch(a, node);
    for (int voter = 0; voter < VOTERS; voter++) {
        char body[256];
        int length = snprintf(body, sizeof body,
                              "{\"arbiter\":\"%s\",\"node\":\"%s\",\"vote\":\"%s\",\"epoch\":%u}",
                              arbiter_ids[voter], node_names[node], kind, epoch);
        natsMsg *message = NULL;
        assert_int_equal(natsMsg_Create(&message, "kc.arbiter.vote", NULL, body, length), NATS_OK);
        if (strcmp(arbiter_ids[voter], a->arbiter->id) == 0) { /* its own: signed (vote_sign.h) */
            char key[KCI_VOTE_KEY_TEXT_BYTES], signature[KCI_VOTE_SIGNATURE_TEXT_BYTES];
            kci_wallet_address(key, &a->arbiter->vote_key);
            kci_vote_sign(signature, body, (size_t)length, a->arbiter->vote_key.secret_key);
            assert_int_equal(natsMsgHeader_Set(message, KCI_VOTE_KEY_HEADER, key), NATS_OK);
            assert_int_equal(natsMsgHeader_Set(message, KCI_VOTE_SIGNATURE_HEADER, signature),
                             NATS_OK);
        }
        kci_arbiter_on_vote(NULL, NULL, message, a->arbiter); /* destroys message */
    }
}

unsigned vj_set(vj_arbiter *a)
{
    unsigned set = 0;
    pthread_mutex_lock(&a->arbiter->lock);
    for (int i = 0; i < VJ_NODES; i++)
        if (kci_arbiter_node(a->arbiter, node_names[i], false)->status == NODE_QUARANTINED)
            set |= 1u << i;
    pthread_mutex_unlock(&a->arbiter->lock);
    return set;
}

bool vj_wait_set(vj_arbiter *a, unsigned want, int timeout_ms)
{
    int64_t deadline_ms = kci_monotonic_ms() + timeout_ms;
    while (vj_set(a) != want && kci_monotonic_ms() < deadline_ms)
        pause_ms(POLL_MS);
    return vj_set(a) == want;
}

bool vj_vote_until(vj_arbiter *a, int node, const char *kind, unsigned want, int timeout_ms)
{
    int64_t deadline_ms = kci_monotonic_ms() + timeout_ms;
    while (kci_monotonic_ms() < deadline_ms) {
        vj_votes(a, node, kind);
        if (vj_wait_set(a, want, VOTE_AGAIN_MS)) return true;
    }
    return false;
}

bool vj_read_stream(const char *url, const char *stream, kci_verdict_chain *chain, json_t **ids)
{
    natsConnection *connection = NULL;
    if (natsConnection_ConnectTo(&connection, url) != NATS_OK) return false;
    json_t *list = json_array();
    memset(chain, 0, sizeof *chain);
    char error[512];
    kc_err err = kci_verdict_js_read_all(connection, stream, chain, list, error, sizeof error);
    natsConnection_Destroy(connection);
    if (err != KC_OK) print_error("reading %s: %s\n", stream, error);
    *ids = json_array();
    size_t index;
    json_t *verdict;
    json_array_foreach(list, index, verdict)
    {
        json_array_append(*ids, json_object_get(verdict, "id"));
    }
    json_decref(list);
    return err == KC_OK;
}
