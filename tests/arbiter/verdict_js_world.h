/* verdict_js_world.h - what the tests of the verdicts on JetStream share
 * (verdict_js_test.c on one server, verdict_cluster_test.c on three): an
 * arbiter started in this process with verdict_storage jetstream, handed
 * votes as its subscription to kc.arbiter.vote would hand them
 * (kci_arbiter_on_vote, as verdict_fault_test.c does), and read: its
 * quarantined set, a node's epoch, the stream itself.
 *
 * The arbiters are "a", "b", "c" and "d", peers of each other, 4 = 3f + 1
 * (a verdict needs 3 votes); their tick is an hour, so only the test votes.
 * Nodes are "n0".."n3", a set is a bitmask over them. */
#ifndef KC_TESTS_ARBITER_VERDICT_JS_WORLD_H
#define KC_TESTS_ARBITER_VERDICT_JS_WORLD_H

#include <nats/nats.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "arbiter/arbiter_internal.h"

enum {
    VJ_NODES = 4,
    VJ_STOP_DRAIN_MS = 2000,
};

typedef struct vj_arbiter {
    kc_client *client;
    kci_arbiter *arbiter;
    char id[8];
} vj_arbiter;

/* Starts arbiter id on the client URLs servers; verdict_servers NULL: the
 * verdicts through the client's connection. KC_OK, or the start's error
 * (message in error). */
kc_err vj_start(vj_arbiter *a, const char *id, const char *servers, const char *verdict_servers,
                const char *stream, uint32_t replicas, char *error, size_t error_size);
void vj_stop(vj_arbiter *a);
/* Three arbiters' votes about node ("quarantine" or "clear") at its epoch
 * as a sees it; a then finds the quorum. */
void vj_votes(vj_arbiter *a, int node, const char *kind);
uint32_t vj_epoch(vj_arbiter *a, int node);
unsigned vj_set(vj_arbiter *a);
/* Until a's set is want (true) or timeout_ms passed (false). */
bool vj_wait_set(vj_arbiter *a, unsigned want, int timeout_ms);
/* Votes until a's set is want: the vote again every second, as the next
 * tick's would be (a verdict queued while the stream elects a leader may be
 * dropped after 30 s). */
bool vj_vote_until(vj_arbiter *a, int node, const char *kind, unsigned want, int timeout_ms);
/* The stream read from its start (kci_verdict_js_read_all): its verdicts'
 * ids in *ids (a new reference) and the chain. */
bool vj_read_stream(const char *url, const char *stream, kci_verdict_chain *chain, json_t **ids);

#endif
