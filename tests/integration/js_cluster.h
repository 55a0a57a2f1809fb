/*
 * js_cluster.h - a three-server nats-server cluster with JetStream on
 * 127.0.0.1, for tests that need replicated streams and KV buckets (leases,
 * the persister and the ledger on JetStream), with the faults they must
 * survive: kill -9 of a server, SIGSTOP/SIGCONT (a partition as the others
 * see it), and a restart on the same ports and the same store.
 *
 * Each server is a harness_server (harness.h) with its client and monitoring
 * ports on the command line and a config file naming it (server_name "kc-1",
 * "kc-2", "kc-3"), its JetStream store inside its own temporary directory, the
 * cluster's name, its route port and the other two route ports. Route ports
 * are picked before any server starts (every config names all three); a port
 * taken meanwhile makes a start fail and the whole cluster is started again on
 * fresh ports. The cluster is ready when every running server reports the
 * same JetStream meta leader on its /jsz monitoring endpoint.
 *
 * scripts/js-cluster.sh starts the same shape from a shell (benchmarks, the
 * how-to in docs/cluster.md). Every wait here is bounded; failures are
 * explained on stderr and returned as harness_status.
 */
#ifndef KC_TESTS_INTEGRATION_JS_CLUSTER_H
#define KC_TESTS_INTEGRATION_JS_CLUSTER_H

#include <stdbool.h>
#include <stddef.h>

#include "harness.h"

enum {
    JS_CLUSTER_SIZE = 3,
    JS_CLUSTER_CONFIG_BYTES_MAX = 2048,
    JS_CLUSTER_NAME_BYTES_MAX = 32,
    JS_CLUSTER_URLS_BYTES_MAX = JS_CLUSTER_SIZE * HARNESS_URL_SIZE_MAX,
    JS_CLUSTER_READY_TIMEOUT_MS = 30000, /* routes and a meta leader, on a loaded machine */
};

typedef struct js_cluster_node {
    harness_server server;
    char name[JS_CLUSTER_NAME_BYTES_MAX]; /* server_name: "kc-1".. */
    int route_port;
    char config[JS_CLUSTER_CONFIG_BYTES_MAX];
    bool paused; /* SIGSTOP sent and no SIGCONT yet */
} js_cluster_node;

typedef struct js_cluster {
    const char *binary_path;
    js_cluster_node nodes[JS_CLUSTER_SIZE];
    char urls[JS_CLUSTER_URLS_BYTES_MAX]; /* "nats://127.0.0.1:A,nats://...:B,..." */
} js_cluster;

/* Starts three servers and waits for a meta leader (retrying on fresh ports
 * when one is taken). */
harness_status js_cluster_start(js_cluster *cluster, const char *binary_path);
/* Every running server sees the same meta leader (not paused ones: they
 * cannot answer). */
harness_status js_cluster_wait_ready(js_cluster *cluster, int timeout_ms);
/* kill -9 and reap; the node keeps its ports, config and store. */
harness_status js_cluster_kill(js_cluster *cluster, int index);
harness_status js_cluster_pause(js_cluster *cluster, int index);  /* SIGSTOP */
harness_status js_cluster_resume(js_cluster *cluster, int index); /* SIGCONT */
/* Starts a killed node again on the same ports with the same store, then
 * waits until the cluster is ready. */
harness_status js_cluster_restart(js_cluster *cluster, int index);
bool js_cluster_running(const js_cluster *cluster, int index);
/* The client URLs starting with node first_index ("B,C,A" for 1), for a
 * client that must connect to that node first (with nats.c's NoRandomize). */
void js_cluster_urls_from(const js_cluster *cluster, int first_index, char *out, size_t out_size);
/* The node named name ("kc-2"), or -1. */
int js_cluster_index_of(const js_cluster *cluster, const char *name);
/* The node leading stream (e.g. "KV_kc_leases"), confirmed by that server's
 * own /jsz, or -1 when no running server knows one within timeout_ms. */
int js_cluster_stream_leader(js_cluster *cluster, const char *stream, int timeout_ms);
/* Resumes paused nodes, stops every server and removes the directories
 * (unless KC_INTEGRATION_KEEP is set). Idempotent. */
void js_cluster_cleanup(js_cluster *cluster);

#endif
