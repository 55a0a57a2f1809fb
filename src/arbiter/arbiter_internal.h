/* arbiter_internal.h - the arbiter's state, shared by its files:
 * arbiter.c (start, stop, the tick, the subscriptions that observe),
 * judge.c (problem reports, endorsements, and each node's reasons),
 * probe.c (probe rounds and their fusion), verdict.c (votes, quorum,
 * verdicts, quarantine, and the answers to status/verdicts/tree),
 * verdict_js.c (the verdicts on a JetStream stream, verdict_js.h),
 * verdict_history.c (the verdicts kc.arbiter.verdicts answers with).
 *
 * One mutex guards everything below it; nats.c delivers each subscription
 * on its own thread and the tick runs on one more. */
#ifndef KCI_ARBITER_INTERNAL_H
#define KCI_ARBITER_INTERNAL_H

#include <jansson.h>
#include <nats/nats.h>
#include <pthread.h>
#include <stdio.h>

#include "arbiter/arbiter.h"
#include "arbiter/credibility.h"
#include "arbiter/fusion.h"
#include "arbiter/observe.h"
#include "arbiter/qos.h"
#include "arbiter/quorum.h"
#include "arbiter/verdict_js.h"
#include "arbiter/verdict_log.h"
#include "ledger/wallet.h"
#include "service/micro.h"
#include "service/subscriptions.h"

enum {
    ARBITER_ENDPOINTS = 4, /* the queries it answers, for the services protocol */
    ARBITER_NODES_MAX = 4096,
    ARBITER_NODE_INDEX_SLOTS = 8192, /* > 2 x nodes: short probes */
    ARBITER_EDGES_PER_NODE_MAX = 256,
    ARBITER_PRICE_TYPES_MAX = 4,
    ARBITER_SERVED_TYPES_MAX = 8, /* types remembered per node; more: counted for every type */
    ARBITER_EVIDENCE_IDS_MAX = 4,
    ARBITER_REPORTS_PENDING_MAX = 4096,
    ARBITER_PROBE_ATTEMPTS_MAX = 512,
    ARBITER_RANKED_NODES_MAX = 1024, /* dense matrices: 8 MiB each at most */
    ARBITER_FUSION_HISTORY = 8,      /* rounds remembered per node */
    ARBITER_GUARANTEE_WINDOW = 3,    /* recent rounds that must all meet n > 3f */
    ARBITER_VOTE_TTL_TICKS = 5,
    ARBITER_LOG_EVERY_MS = 10000, /* repeated warnings at most this often */
    ARBITER_HISTORY_MAX = 1000,   /* verdicts kept for kc.arbiter.verdicts */
};

typedef enum node_status {
    NODE_ACTIVE = 0,
    NODE_QUARANTINED = 1,
    NODE_PROBATION = 2,
} node_status;

enum {
    REASON_WRONG = 1u,      /* its answers miss the fused interval */
    REASON_SLOW = 2u,       /* QoS below the bar */
    REASON_OVERCHARGE = 4u, /* price well above the reference */
    REASON_PERJURY = 8u,    /* its problem reports are refuted */
    REASON_FAILING = 16u,   /* QoS below the bar, mostly from failures (errors, no answer) */
};

typedef struct node_price {
    char type[KCI_OBSERVE_TYPE_BYTES_MAX + 1];
    double sum;
    uint32_t count;
} node_price;

typedef struct node_edge {
    uint32_t to;
    double positive;
    double negative;
} node_edge;

typedef struct arbiter_node {
    char name[KC_NODE_BYTES_MAX + 1];
    uint32_t number; /* its index in the table: nodes[number] == this */
    bool served;     /* seen replying to a request */
    char served_types[ARBITER_SERVED_TYPES_MAX][KCI_OBSERVE_TYPE_BYTES_MAX + 1];
    uint32_t served_type_count; /* ARBITER_SERVED_TYPES_MAX + 1: more than fit */
    bool is_arbiter;            /* votes seen from it, or this arbiter */
    bool pretrusted;
    kci_qos qos;
    uint64_t qos_samples; /* since the last reset */
    kci_credibility credibility;
    uint32_t fusion_rounds; /* since the last reset */
    uint32_t fusion_suspect;
    uint8_t fusion_history; /* bit i: suspect i rounds ago */
    uint8_t fusion_history_count;
    kci_interval fusion_last; /* its last answer */
    kci_interval fusion_last_fused;
    node_price prices[ARBITER_PRICE_TYPES_MAX];
    uint32_t price_type_count;
    uint32_t reports_confirmed; /* about this node */
    uint32_t reports_refuted;
    uint64_t refusals_provoked; /* as a requester: error replies it caused (4xx) */
    kci_qos_last qos_last;      /* as a reporter: its last signed sample counted */
    uint64_t qos_reported;      /* as a reporter: signed samples counted */
    double complaint_weight;    /* sum of the credibility of confirmed complaints */
    char evidence_ids[ARBITER_EVIDENCE_IDS_MAX][KC_UUID_TEXT_BYTES + 1];
    uint32_t evidence_next;
    node_edge *edges;
    uint32_t edge_count;
    uint32_t edge_capacity;
    node_status status;
    int64_t status_since_ms;
    uint32_t offences;
    uint32_t epoch; /* status changes so far; votes carry it */
    bool reinstate_requested;
    uint32_t reasons; /* at the last tick */
    kci_quorum quorum;
    double trust;
    double merit;
} arbiter_node;

typedef struct pending_report {
    uint32_t reporter;
    uint32_t accused;
    kc_problem_reason reason;
    char request_id[KC_UUID_TEXT_BYTES + 1];
    int64_t received_ms;
    int64_t log_asked_ms; /* kc.reply.get asked (replylog.c); 0: not yet */
} pending_report;

typedef struct probe_answer {
    uint32_t node;
    bool numeric;
    kci_interval interval;
    uint64_t hash;
} probe_answer;

typedef struct probe_state {
    struct kci_arbiter *arbiter;
    uint32_t index;
    bool open;
    int64_t started_ms;
    uint32_t answer_count;
    uint32_t expected; /* replicas known when the round opened */
    probe_answer answers[KCI_FUSION_REPLICAS_MAX];
    uint8_t broken_history; /* bit i: round i ago did not meet n > 3f */
    uint32_t round_count;
    uint32_t last_n;
    uint32_t last_f;
    uint32_t last_suspects;
    bool last_found;
    kci_interval last_fused;
    double last_value;
} probe_state;

struct kci_arbiter {
    kc_client *client;
    natsConnection *connection;
    kci_arbiter_config config;
    char id[KCI_ARBITER_ID_BYTES_MAX + 1];
    char *verdicts_path;
    kci_wallet vote_key; /* signs its votes (vote_sign.h) */
    FILE *verdicts_file;
    kci_verdict_js *verdict_js;   /* verdicts on a stream instead of the file */
    kci_verdict_chain file_chain; /* the file's lines so far and the last one's hash */
    /* received reports, for the analytics (report_log.h); NULL: none */
    struct kci_report_log *report_log;
    pthread_mutex_t lock;
    pthread_cond_t changed;
    bool stopping;
    bool tick_started;
    pthread_t tick_thread;
    int64_t start_ms;
    int64_t start_wall_ms;
    kci_subscriptions subscriptions;
    /* status, verdicts, tree, reinstate: for $SRV.STATS (micro.h) */
    kci_micro_stats endpoint_stats[ARBITER_ENDPOINTS];
    kci_micro *micro; /* NULL when it could not start */
    /* everything below under lock */
    kci_observe *observe;
    arbiter_node *nodes[ARBITER_NODES_MAX];
    uint32_t node_count;
    uint32_t speaker_count; /* nodes first seen filing a report or endorsement */
    uint32_t node_index[ARBITER_NODE_INDEX_SLOTS]; /* node + 1; 0: empty */
    pending_report reports[ARBITER_REPORTS_PENDING_MAX];
    uint32_t report_head;
    uint32_t report_count;
    probe_state probes[KCI_ARBITER_PROBES_MAX];
    uint32_t probes_in_flight;
    bool guarantee_holds;
    char guarantee_text[256];
    uint64_t reports_received;
    uint64_t reports_malformed;
    uint64_t reports_dropped;
    uint64_t verdict_count;
    int64_t last_warning_ms;
    bool enforce_dirty;
    int64_t log_retry_ms;              /* no persister answered: do not ask kc.reply.get before */
    json_t *tree;                      /* the last reporting tree */
    json_t *history;                   /* the recent verdicts, by id (verdict_history.c) */
    struct kci_arbiter_market *market; /* paid prices and the equilibrium (price.c) */
};

typedef struct kci_arbiter kci_arbiter;
typedef struct kci_arbiter_market kci_arbiter_market;

/* price.c */
kc_err kci_arbiter_market_open(kci_arbiter *arbiter);
void kci_arbiter_market_close(kci_arbiter *arbiter);
/* The inbox the ledger's answers come to, as <inbox>.<request id>. */
const char *kci_arbiter_market_inbox(const kci_arbiter *arbiter);
/* A paid request (Kc-Pay) was served: asks the ledger what it paid;
 * whether it asked (the reply's declared price then does not count). */
bool kci_arbiter_price_ask(kci_arbiter *arbiter, kci_observation *observation, int64_t now_ms);
void kci_arbiter_on_price_answer(natsConnection *connection, natsSubscription *subscription,
                                 natsMsg *message, void *closure);
/* Once a tick: solves the market again after new payments. */
void kci_arbiter_market_tick(kci_arbiter *arbiter);
/* The equilibrium price of type; 0 when there is none. */
double kci_arbiter_price_equilibrium(const kci_arbiter *arbiter, const char *type);
uint64_t kci_arbiter_market_paid_requests(const kci_arbiter *arbiter);

/* arbiter.c */
/* The node named name, created if there is room; NULL when the table is
 * full or the name is not a subject token. */
arbiter_node *kci_arbiter_node(kci_arbiter *arbiter, const char *name, bool create);
uint32_t kci_arbiter_node_number(kci_arbiter *arbiter, const arbiter_node *node);
void kci_arbiter_edge_add(arbiter_node *from, uint32_t to, double positive, double negative);
/* The request types a node was seen serving (observe.h cuts long types). */
void kci_arbiter_served_type_add(arbiter_node *node, const char *type);
bool kci_arbiter_serves(const arbiter_node *node, const char *type);
void kci_arbiter_evidence_add(arbiter_node *node, const char *request_id);
bool kci_arbiter_warn_due(kci_arbiter *arbiter, int64_t now_ms);
void kci_arbiter_publish_json(kci_arbiter *arbiter, const char *subject, json_t *object);
/* kc.arbiter.verdict, stamped, Kc-Cause its evidence (verdict_cause.c); takes verdict. */
void kci_arbiter_publish_verdict(kci_arbiter *arbiter, json_t *verdict);

/* judge.c */
void kci_arbiter_on_problem(natsConnection *connection, natsSubscription *subscription,
                            natsMsg *message, void *closure);
void kci_arbiter_on_endorse(natsConnection *connection, natsSubscription *subscription,
                            natsMsg *message, void *closure);
void kci_arbiter_judge_pending(kci_arbiter *arbiter, int64_t now_ms);
uint32_t kci_arbiter_reasons(kci_arbiter *arbiter, arbiter_node *node, int64_t now_ms);
double kci_arbiter_price_mean(const arbiter_node *node, const char *type, uint32_t *count);
double kci_arbiter_price_reference(kci_arbiter *arbiter, const char *type);
/* Where the reference price of type comes from: "equilibrium", "median" or "none". */
const char *kci_arbiter_price_reference_source(kci_arbiter *arbiter, const char *type);
void kci_arbiter_price_add(arbiter_node *node, const char *type, double price);
void kci_arbiter_reasons_json(json_t *list, uint32_t reasons);

/* probe.c */
void kci_arbiter_probe_tick(kci_arbiter *arbiter, int64_t now_ms);
/* Whether node failed the recent probes (1), passed them (0), or is unknown (-1). */
int kci_arbiter_probe_verdict(const kci_arbiter *arbiter, const arbiter_node *node);

/* replylog.c */
/* Asks kc.reply.get about report's request (once); true while the answer
 * is awaited. */
bool kci_arbiter_log_ask(kci_arbiter *arbiter, pending_report *report, int64_t now_ms);
void kci_arbiter_log_subject(const kci_arbiter *arbiter, char *subject, size_t size,
                             const char *request_id);
void kci_arbiter_on_log_reply(natsConnection *connection, natsSubscription *subscription,
                              natsMsg *message, void *closure);

/* verdict.c */
/* Loads the arbiter's vote key (<data_dir>/arbiter-<id>.key, made at the
 * first start), or makes one for this run without a data_dir. */
kc_err kci_arbiter_vote_key_open(kci_arbiter *arbiter, char *error, size_t error_size);
void kci_arbiter_on_vote(natsConnection *connection, natsSubscription *subscription,
                         natsMsg *message, void *closure);
void kci_arbiter_on_request(natsConnection *connection, natsSubscription *subscription,
                            natsMsg *message, void *closure);
void kci_arbiter_vote_tick(kci_arbiter *arbiter, int64_t now_ms);
void kci_arbiter_rank_tick(kci_arbiter *arbiter, int64_t now_ms);
void kci_arbiter_enforce(kci_arbiter *arbiter);
kc_err kci_arbiter_restore(kci_arbiter *arbiter, char *error, size_t error_size);
/* A verdict read from the stream (verdict_js.c), in the stream's order:
 * taken when it is news for its node (its epoch is above the node's);
 * announced and marked for enforcement when announce. Whether it was taken. */
bool kci_arbiter_verdict_apply(kci_arbiter *arbiter, json_t *verdict, int64_t now_ms,
                               bool announce);
json_t *kci_arbiter_node_json(kci_arbiter *arbiter, arbiter_node *node, int64_t now_ms);
/* Publishes body on subject signed with the vote key (Kc-Vote-Key,
 * Kc-Vote-Signature: vote_sign.h); takes body. */
void kci_arbiter_publish_signed(kci_arbiter *arbiter, const char *subject, json_t *body);
/* Whether votes (and verdicts) claiming arbiter id count here. */
bool kci_arbiter_peer_allowed(const kci_arbiter *arbiter, const char *id);
/* Why a message signed as claimed (an arbiter id) is not to be believed;
 * NULL when it is (the rules of docs/arbiter.md, "Signed votes"). */
const char *kci_arbiter_signature_problem(const kci_arbiter *arbiter, const char *claimed,
                                          natsMsg *message, size_t length);

/* verdict_history.c */
/* Adds verdict (a new reference) unless its id is there; whether it was added. */
bool kci_arbiter_history_add(kci_arbiter *arbiter, json_t *verdict);
/* A copy of the history, oldest first. */
json_t *kci_arbiter_history_json(kci_arbiter *arbiter);
/* kc.arbiter.verdict: a verdict another arbiter reached joins the history. */
void kci_arbiter_on_verdict(natsConnection *connection, natsSubscription *subscription,
                            natsMsg *message, void *closure);

#endif
