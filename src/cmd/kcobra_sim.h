/* kcobra_sim.h - what the simulator's files share (kcobra_sim.c: the
 * command, the cloud and its clients; kcobra_sim_server.c: the kcobrad or
 * nats-server it starts; kcobra_sim_result.c: precision, recall, time to
 * detection, the table and the JSON). */
#ifndef KCOBRA_SIM_H
#define KCOBRA_SIM_H

#include <nats/nats.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include "arbiter/arbiter.h"
#include "kcobra_common.h"
#include "ledger/wallet.h"
#include "service/subscriptions.h"

enum {
    SIM_NODES_MAX = 256,
    SIM_CLIENTS_MAX = 256,
    SIM_ARBITERS_MAX = 16,
    SIM_NAME_BYTES = 32,
    SIM_PATH_BYTES = 512,
    SIM_REQUEST_TIMEOUT_MS = 2000,
    SIM_SLOW_DELAY_MS = 250,
    SIM_SLOW_BAR_MS = 150, /* the arbiters' slow and target: room for a loaded CI machine */
    SIM_WORKERS = 8,
    SIM_SLOW_WORKERS = 16,
    SIM_REPORTER_PERIOD_MS = 100,
    SIM_START_ATTEMPTS = 3,
    SIM_START_TIMEOUT_MS = 5000,
    SIM_STOP_TIMEOUT_MS = 5000,
    SIM_CLOSE_TIMEOUT_MS = 3000,
    SIM_SYBIL_JOIN_DIVISOR = 4, /* the sybils join when 1/4 of the requests are done */
    SIM_CORRUPT_VOTE_PERIOD_MS = 250,
    SIM_STATUS_TIMEOUT_MS = 5000,
    SIM_VISIBLE_REFUSALS_MIN = 20, /* refusals that make a client visible as a provoker */
    /* --economy */
    SIM_PRICE_UNITS = 10,        /* an honest price is 9..11 coins a request */
    SIM_BUDGET_PER_REQUEST = 15, /* each client's budget: its requests x this */
    SIM_LEDGER_TIMEOUT_MS = 10000,
    SIM_GINI_SAMPLES_MAX = 256,
    SIM_GINI_PERIOD_MS = 500,
    SIM_ADDRESS_BYTES = 65, /* 64 hex digits */
    SIM_TYPE_BYTES = 48,
};

#define SIM_TYPE "sense"
#define SIM_PROBE "sense=21.5"
#define SIM_ACCURACY 0.5
#define SIM_NOISE 0.2

typedef enum behaviour {
    B_WRONG = 1u,
    B_SLOW = 2u,
    B_OVERCHARGE = 4u,
    B_FALSE_REPORT = 8u,
    B_COLLUDE = 16u,
    B_SYBIL = 32u,
    B_TAKE_PAYMENT = 64u,
} behaviour;

typedef struct sim_behaviour {
    const char *name;
    behaviour bit;
} sim_behaviour;

enum { BEHAVIOUR_COUNT = 7 };
extern const sim_behaviour BEHAVIOURS[BEHAVIOUR_COUNT];

typedef struct sim sim;

typedef struct sim_node {
    sim *sim;
    char name[SIM_NAME_BYTES];
    unsigned behaviour; /* 0: honest */
    double base_price;
    uint32_t epoch;    /* of its last verdict */
    int64_t joined_ms; /* sybils join late: detection counts from here */
    int64_t joined_requests;
    double money_lost; /* the price of its bad answers before its quarantine */
    double price;      /* what it asks a request (SIM_PRICE_UNITS coins with --economy) */
    /* --economy: its wallet, and its service of its own type, paid */
    kci_wallet wallet;
    char address[SIM_ADDRESS_BYTES];
    char paid_type[SIM_TYPE_BYTES]; /* sense-<name> */
    kc_service *paid_service;
    bool serving;        /* sybils: once joined */
    int64_t paid_served; /* paid requests answered */
    int64_t paid_good;   /* of which right, in time, at a fair price */
    kc_client *client;
    kc_service *service;
    pthread_t reporter;
    bool reporter_started;
    uint64_t random;
    /* the arbiters' verdict */
    bool quarantined;
    int64_t detected_ms;
    int64_t detected_requests;
} sim_node;

typedef struct sim_client {
    sim *sim;
    char name[SIM_NAME_BYTES];
    bool false_reporter;
    bool provoker;         /* sends requests meant to be refused, and complains of the refusals */
    int64_t refusals_seen; /* by the arbiters (kc.arbiter.status at the end) */
    /* --economy */
    kci_wallet wallet;
    char address[SIM_ADDRESS_BYTES];
    int64_t budget; /* minted to it */
    int64_t spent;
    int64_t unpaid; /* requests it could not pay for */
    kc_client *client;
    pthread_t thread;
    bool started;
    uint64_t random;
    int64_t request_count;
    bool quarantined; /* as a perjurer */
} sim_client;

typedef struct sim_options {
    int64_t nodes;
    const char *corrupt_text;
    double corrupt;
    unsigned behaviours[BEHAVIOUR_COUNT];
    int behaviour_count;
    int64_t clients;
    int64_t requests;
    int64_t seed;
    int64_t arbiters;
    int64_t rate;
    int64_t settle_ms;
    const char *false_reporters_text;
    double false_reporters;
    const char *provokers_text;
    double provokers;
    int64_t corrupt_arbiters;
    const char *table_path;
    const char *label;
    const char *kcobrad;
    bool verbose;
    bool keep;
    const char *min_precision_text;
    const char *min_recall_text;
    const char *max_false_rate_text;
    const char *min_client_recall_text;
    bool expect_broken;
    bool economy;
    const char *history_path;
    const char *max_money_lost_text;
} sim_options;

/* --economy: the money's side of the run (kcobra_sim_economy.c). */
typedef struct sim_gini_sample {
    int64_t at_ms;
    int64_t requests;
    double gini;
} sim_gini_sample;

typedef struct sim_economy {
    int64_t minted;
    pthread_t sampler;
    bool sampler_started;
    atomic_bool sampler_stop;
    sim_gini_sample samples[SIM_GINI_SAMPLES_MAX];
    uint32_t sample_count;
    /* at the end */
    bool audited;
    bool audit_ok;
    int64_t audit_supply;
    int64_t balances_sum; /* the sim's wallets, asked one by one */
    bool conserved;
    int64_t history_edges;
    int64_t spent;     /* by all clients */
    double lost;       /* to corrupt nodes before their quarantine */
    double lost_after; /* paid to a node quarantined meanwhile, unserved */
    bool equilibrium_solved;
    double equilibrium_honest; /* mean equilibrium price, honest nodes */
    double equilibrium_corrupt;
    double posted_honest; /* mean price asked */
    double posted_corrupt;
    char problem[256];
} sim_economy;

struct sim {
    sim_options options;
    kcobra_common common;
    bool server_given;  /* --server: use it, start no kcobrad */
    bool hosts_arbiter; /* the server started is a kcobrad (not nats-server): arbiter-0 */
    char url[64];
    char directory[SIM_PATH_BYTES];
    pid_t kcobrad_pid;
    uint32_t node_count;
    uint32_t corrupt_count;
    sim_node nodes[SIM_NODES_MAX];
    uint32_t client_count;
    sim_client clients[SIM_CLIENTS_MAX];
    /* The arbiters' vote keys, made before kcobrad starts so that every
     * arbiter is told every peer's key (vote_sign.h). */
    char data_dir[SIM_PATH_BYTES];
    char peer_keys[SIM_ARBITERS_MAX][SIM_NAME_BYTES + 80];
    bool keys_made;
    uint32_t corrupt_arbiter_count; /* the last ids: sign wrong votes */
    kc_client *corrupt_arbiter_clients[SIM_ARBITERS_MAX];
    pthread_t corrupt_arbiter_threads[SIM_ARBITERS_MAX];
    bool corrupt_arbiter_started[SIM_ARBITERS_MAX];
    atomic_llong corrupt_votes_sent;
    uint32_t arbiter_count; /* in this process */
    kc_client *arbiter_clients[SIM_ARBITERS_MAX];
    kci_arbiter *arbiters[SIM_ARBITERS_MAX];
    kc_client *observer;
    kci_subscriptions observed; /* the verdicts and the alarms */
    atomic_llong requests_done;
    atomic_bool stop;
    int64_t start_ms;
    pthread_mutex_t lock; /* verdict results */
    sim_economy economy;
    bool guarantee_broken;
    char guarantee_text[256];
};

/* kcobra_sim.c */
void kcobra_sim_sleep_ms(int64_t duration_ms);
/* kcobra_sim_server.c: starts kcobrad (or nats-server) in a temporary
 * directory on a free port and sets s->url; stops it and removes the
 * directory (kept with --verbose). */
int kcobra_sim_server_start(sim *s);
void kcobra_sim_server_stop(sim *s);
/* kcobra_sim_result.c: prints the table (or the JSON with --json); returns
 * the exit status, KCOBRA_EXIT_FAILURE when a --min/--max/--expect check
 * fails. */
int kcobra_sim_report(const sim *s);
/* kcobra_sim_arbiters.c: the arbiters' ids and vote keys (made in the
 * sim's directory before kcobrad starts), and the corrupt arbiters that
 * sign wrong votes. */
void kcobra_sim_arbiter_id(const sim *s, uint32_t index, char id[SIM_NAME_BYTES]);
bool kcobra_sim_arbiter_corrupt(const sim *s, uint32_t index);
int kcobra_sim_keys_make(sim *s);
int kcobra_sim_corrupt_arbiter_start(sim *s, uint32_t index, kc_client *client);
void kcobra_sim_corrupt_arbiters_stop(sim *s);
/* kcobra_sim_economy.c (--economy): wallets (made before the nodes
 * start), budgets minted through the ledger kcobrad hosts, each client
 * request paid, the wealth sampled; at the end the audit, conservation,
 * the history (--history) and the equilibrium; its part of the report. */
void kcobra_sim_economy_wallets(sim *s);
int kcobra_sim_economy_start(sim *s);
void kcobra_sim_economy_request(sim_client *client, int64_t k);
void kcobra_sim_economy_provoke(sim_client *client, int64_t k);
void kcobra_sim_economy_finish(sim *s);
void kcobra_sim_economy_print(FILE *out, const sim *s);
bool kcobra_sim_economy_check(const sim *s);
/* kcobra_sim_pay.c: a client pays node amount for one request and sends
 * it (the one place that changes when payments become escrow holds);
 * *paid whether the payment went through, *latency_ms the request's alone. */
kc_err kcobra_sim_pay_request(kc_reply **out, sim_client *client, const sim_node *node,
                              int64_t amount, const char *payload, size_t length, bool *paid,
                              int64_t *latency_ms);
/* kcobra_sim.c, shared with the economy */
bool kcobra_sim_check_reply(sim_client *client, kc_reply *reply, double x, int64_t latency_ms,
                            double paid);
uint64_t kcobra_sim_random(uint64_t *state);
void kcobra_sim_money_lost(sim *s, const char *server, double amount);
/* A fraction 0..1 from text; fallback when text is NULL. */
bool kcobra_sim_fraction(const char *text, double *out, double fallback);

#endif
