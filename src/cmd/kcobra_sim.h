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
} behaviour;

typedef struct sim_behaviour {
    const char *name;
    behaviour bit;
} sim_behaviour;

enum { BEHAVIOUR_COUNT = 5 };
extern const sim_behaviour BEHAVIOURS[BEHAVIOUR_COUNT];

typedef struct sim sim;

typedef struct sim_node {
    sim *sim;
    char name[SIM_NAME_BYTES];
    unsigned behaviour; /* 0: honest */
    double base_price;
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
    const char *kcobrad;
    bool verbose;
    bool keep;
    const char *min_precision_text;
    const char *min_recall_text;
    const char *max_false_rate_text;
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
/* A fraction 0..1 from text; fallback when text is NULL. */
bool kcobra_sim_fraction(const char *text, double *out, double fallback);

#endif
