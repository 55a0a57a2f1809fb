/* arbiter.h - the arbiter component: watches the fabric, finds faulty and
 * corrupt nodes, votes with the other arbiters, and quarantines on a quorum.
 *
 * It listens to kc.req.> and to the replies (_INBOX.>) to measure each
 * node's QoS and to keep what it saw for checking reports, to
 * kc.problem.> (problem reports), kc.endorse.> (endorsements), kc.qos.>
 * (QoS samples, accepted from pre-trusted nodes only), kc.arbiter.vote
 * (the arbiters' votes) and kc.arbiter.reinstate; it probes the configured
 * request types and fuses the replicas' answers (Brooks–Iyengar); once per
 * tick it ranks the nodes, rebuilds the reporting tree, decides its vote
 * about each node and publishes it. A verdict is final when 2f + 1 of the
 * 3f + 1 configured arbiters vote the same; it is appended (fsync) to
 * <data_dir>/arbiter-<id>.verdicts.jsonl, or to a JetStream stream that
 * every arbiter follows (verdicts_jetstream), and published on
 * kc.arbiter.verdict. With enforce, the quarantined set is handed to
 * kcobrad's broker (kc.sys.quarantine.set, internal user only).
 *
 * Requests it answers: kc.arbiter.status, kc.arbiter.verdicts,
 * kc.arbiter.tree, kc.arbiter.reinstate. docs/arbiter.md has it all. */
#ifndef KCI_ARBITER_ARBITER_H
#define KCI_ARBITER_ARBITER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "arbiter/credibility.h"
#include "arbiter/qos.h"
#include "arbiter/qos_sample.h"
#include "arbiter/ranking.h"
#include "arbiter/vote_sign.h"
#include "kingcobra/kingcobra.h"

enum {
    KCI_ARBITER_PROBES_MAX = 16, /* probe types */
    KCI_ARBITER_PRETRUSTED_MAX = 64,
    KCI_ARBITER_PEERS_MAX = 64,
    KCI_ARBITER_VERDICT_REPLICAS_MAX = 5, /* JetStream's limit */
};

#define KCI_ARBITER_VERDICT_STREAM_DEFAULT "KC_VERDICTS"

typedef struct kci_arbiter_probe {
    const char *type;
    const char *payload;
} kci_arbiter_probe;

typedef struct kci_arbiter_config {
    const char *id;         /* this arbiter's id; default: the client's node */
    uint32_t arbiter_count; /* the 3f + 1 configured arbiters; default 1 */
    const char *data_dir;   /* verdicts file here; NULL: not persisted */
    /* Where verdicts are kept: false, the file in data_dir (the default);
     * true, a JetStream stream that every arbiter follows (verdict_js.h). */
    bool verdicts_jetstream;
    const char *verdict_stream;      /* default KCI_ARBITER_VERDICT_STREAM_DEFAULT */
    uint32_t verdict_replicas;       /* of the stream when this arbiter creates it; default 3 */
    const char *verdict_servers;     /* the JetStream servers' URLs, comma-separated; NULL: the
                                        client's connection */
    int64_t verdict_open_timeout_ms; /* find or create the stream and catch up; default 20 s */
    bool enforce;                    /* publish kc.sys.quarantine.set (kcobrad) */
    /* Watch kc.req.> and the replies (default true). Off, it judges from
     * kc.qos.* samples, probes and reports only: on a nats-server cluster a
     * kc.req.> subscriber counts as a responder (docs/arbiter.md). */
    bool observe_requests;
    int64_t tick_ms;            /* default 1000 */
    int64_t probe_timeout_ms;   /* a round's answers are in by then; default 1000 */
    int64_t probe_interval_ms;  /* a round starts this often; default 5000 */
    int64_t request_timeout_ms; /* a request without reply by then is unanswered; default 5000 */
    int64_t quarantine_ms;      /* first quarantine; doubles per repeat; default 300 s */
    int64_t probation_ms;       /* after reinstatement; default 60 s */
    uint32_t qos_samples_min;   /* before QoS can condemn; default 20 */
    double qos_below;           /* QoS score that condemns; default 0.5 */
    uint32_t price_samples_min; /* default 5 */
    double overcharge_factor;   /* over the reference price; default 1.5 */
    uint32_t fusion_rounds_min; /* rounds a node answered before fusion can condemn; default 2 */
    uint32_t tree_fanout;       /* default 4 */
    uint32_t probe_count;
    kci_arbiter_probe probes[KCI_ARBITER_PROBES_MAX];
    uint32_t peer_count; /* the other arbiters' ids; 0: votes from any id count */
    const char *peers[KCI_ARBITER_PEERS_MAX];
    /* The peers' vote keys (vote_sign.h): with any, a vote counts only when
     * signed by the key configured for the id it claims. */
    uint32_t peer_key_count;
    kci_vote_key peer_keys[KCI_ARBITER_PEERS_MAX];
    /* Reporters whose signed kc.qos.<node> samples count (qos_sample.h). */
    uint32_t node_key_count;
    kci_vote_key node_keys[KCI_ARBITER_NODE_KEYS_MAX];
    uint32_t pretrusted_count; /* besides the arbiters */
    const char *pretrusted[KCI_ARBITER_PRETRUSTED_MAX];
    kci_qos_params qos;
    kci_credibility_params credibility;
    kci_ranking_params ranking;
} kci_arbiter_config;

typedef struct kci_arbiter kci_arbiter;

void kci_arbiter_config_default(kci_arbiter_config *config);
/* Parses "type=payload" into a probe (pointers into text). */
bool kci_arbiter_probe_parse(kci_arbiter_probe *probe, char *text);
/* Starts on client (which it uses and does not own). */
kc_err kci_arbiter_start(kci_arbiter **out, kc_client *client, const kci_arbiter_config *config,
                         char *error, size_t error_size);
/* Stops the tick and the subscriptions (bounded by drain_ms), frees. */
void kci_arbiter_stop(kci_arbiter *arbiter, int64_t drain_ms);

#endif
