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
#include <sys/types.h>

#include "arbiter/arbiter.h"
#include "kcobra_common.h"
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
} behaviour;

typedef struct sim_behaviour {
    const char *name;
    behaviour bit;
} sim_behaviour;

enum { BEHAVIOUR_COUNT = 6 };
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
} sim_options;

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
/* A fraction 0..1 from text; fallback when text is NULL. */
bool kcobra_sim_fraction(const char *text, double *out, double fallback);

#endif
