/* kcobra_sim.c - `kcobra sim`: a cloud with corrupt nodes, real services and
 * clients over the fabric, and the arbiters at work; prints how well they
 * found the corrupt nodes.
 *
 * The cloud: N nodes serve the request type "sense" (a payload x; the true
 * answer is 2x + 1, given as {"value", "accuracy": 0.5, "price"}); C
 * clients send R requests in total at --rate per second and report what
 * they see go wrong (wrong answers, slow replies, overcharges) with
 * probability 1/2 each, on kc.problem.<node>; a --false-reporters fraction
 * of the clients also files false reports against nodes that served them
 * well. round(N x corrupt) nodes, picked by the seed, are corrupt, each
 * with one of the --behaviour list in turn:
 *   wrong         answers far off the truth (a different lie each time)
 *   slow          answers right, 250 ms late
 *   overcharge    answers right, at three times its price
 *   false-report  serves well, files false reports about honest nodes
 *   collude       answers the same lie as the other colluders, endorses
 *                 them (kc.endorse.<node>) and accuses honest nodes
 * Every node, client and arbiter has its own connection and node name (the
 * connection name too, which is how kcobrad knows whom to quarantine).
 *
 * The arbiters: 4 (3f + 1, f = 1) unless --arbiters says otherwise. Without
 * --server, kcobra starts a kcobrad (--kcobrad, else the one beside kcobra,
 * else PATH) in a temporary directory hosting arbiter-0, which enforces the
 * quarantine, and runs the others in this process; with --server all run
 * here and nothing is enforced. They probe "sense" with 21.5 every second.
 *
 * Deterministic for a seed: who is corrupt, every payload and every
 * client's choices. Timing is not, so the figures vary a little between
 * runs; the thresholds in CI leave room for that. Detection time counts
 * from the start of the requests to the final verdict (quorum). */
#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <math.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "arbiter/arbiter.h"
#include "common/clock.h"
#include "common/hash.h"
#include "common/log.h"
#include "kcobra_common.h"
#include "service/client_internal.h"
#include "service/uuid.h"

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

static const struct {
    const char *name;
    behaviour bit;
} BEHAVIOURS[] = {
    {"wrong", B_WRONG},           {"slow", B_SLOW},
    {"overcharge", B_OVERCHARGE}, {"false-report", B_FALSE_REPORT},
    {"collude", B_COLLUDE},
};
enum { BEHAVIOUR_COUNT = sizeof BEHAVIOURS / sizeof BEHAVIOURS[0] };

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
    natsSubscription *verdicts;
    natsSubscription *alarms;
    atomic_llong requests_done;
    atomic_bool stop;
    int64_t start_ms;
    pthread_mutex_t lock; /* verdict results */
    bool guarantee_broken;
    char guarantee_text[256];
};

/* ---- seeded randomness ---------------------------------------------------------- */

static uint64_t next_random(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static double unit_random(uint64_t *state)
{
    return (double)(next_random(state) >> 11) / 9007199254740992.0;
}

static void sleep_ms(int64_t duration_ms)
{
    if (duration_ms <= 0) return;
    struct timespec pause = {duration_ms / 1000, (duration_ms % 1000) * 1000000};
    while (nanosleep(&pause, &pause) != 0 && errno == EINTR) {
    }
}

/* ---- the service ------------------------------------------------------------------ */

static void handle_sense(const kc_request *request, kc_response *response, void *closure)
{
    sim_node *node = closure;
    size_t length = 0;
    const char *payload = kc_request_payload(request, &length);
    char text[64] = "";
    if (length < sizeof text) memcpy(text, payload, length), text[length] = '\0';
    char *end = NULL;
    double x = strtod(text, &end);
    if (end == text || !isfinite(x)) {
        kc_response_set_error(response, 400, "the payload must be a number");
        return;
    }
    const char *id = kc_request_id(request);
    uint64_t hash = kci_hash_bytes(id, strlen(id)) ^ kci_hash_bytes(node->name, strlen(node->name));
    double noise = ((double)(hash >> 11) / 9007199254740992.0 * 2 - 1) * SIM_NOISE;
    double value = 2 * x + 1 + noise;
    if (node->behaviour & B_COLLUDE)
        value = 3 * x + 7; /* the colluders' common lie */
    else if (node->behaviour & B_WRONG)
        value = 2 * x + 6 + 10 * (double)(hash & 0xffff) / 65535.0;
    if (node->behaviour & B_SLOW) sleep_ms(SIM_SLOW_DELAY_MS);
    double price = node->base_price * (node->behaviour & B_OVERCHARGE ? 3 : 1);
    char answer[128];
    int answer_length =
        snprintf(answer, sizeof answer, "{\"value\":%.6f,\"accuracy\":%.2f,\"price\":%.4f}", value,
                 SIM_ACCURACY, price);
    kc_response_set_payload(response, answer, (size_t)answer_length);
}

/* ---- connections ------------------------------------------------------------------ */

static int open_client(kc_client **out, const sim *s, const char *node)
{
    kc_client_options options;
    kc_client_options_init(&options);
    options.servers = s->url[0] != '\0' ? s->url : s->common.server;
    options.node = node;
    options.name = node; /* kcobrad's quarantine knows a node by its connection name */
    options.token = s->common.token;
    options.user = s->common.user;
    options.password = s->common.password;
    options.connect_timeout_ms = SIM_START_TIMEOUT_MS;
    kc_err err = kc_client_open(out, &options);
    if (err == KC_OK) return KCOBRA_EXIT_OK;
    kcobra_error("sim: %s cannot connect to %s: %s", node, options.servers, kc_last_error());
    return KCOBRA_EXIT_CONNECT;
}

/* ---- false reports and endorsements ------------------------------------------------- */

static void endorse(sim_node *node, const sim_node *peer)
{
    char subject[64];
    snprintf(subject, sizeof subject, "kc.endorse.%s", peer->name);
    natsMsg *message = NULL;
    if (natsMsg_Create(&message, subject, NULL, "{}", 2) != NATS_OK) return;
    natsMsgHeader_Set(message, "Kc-Node", node->name);
    natsConnection_PublishMsg(node->client->connection, message);
    natsMsg_Destroy(message);
}

static void *reporter_main(void *context)
{
    sim_node *node = context;
    sim *s = node->sim;
    static const kc_problem_reason reasons[] = {KC_PROBLEM_WRONG_ANSWER, KC_PROBLEM_SLOW,
                                                KC_PROBLEM_OVERCHARGED, KC_PROBLEM_ERROR_REPLY};
    while (!atomic_load(&s->stop)) {
        sleep_ms(SIM_REPORTER_PERIOD_MS);
        const sim_node *target = &s->nodes[next_random(&node->random) % s->node_count];
        if (target->behaviour != 0) {
            if (node->behaviour & B_COLLUDE && target->behaviour & B_COLLUDE && target != node)
                endorse(node, target);
            continue; /* accuse only honest nodes */
        }
        char id[KC_UUID_TEXT_BYTES + 1];
        kci_uuid_v7_text(id); /* a request that never happened */
        bool with_id = next_random(&node->random) % 2 == 0;
        kc_client_report_problem(node->client, target->name,
                                 reasons[next_random(&node->random) % 4], with_id ? id : NULL,
                                 "sim: a false report");
    }
    return NULL;
}

/* ---- clients ---------------------------------------------------------------------- */

static void check_reply(sim_client *client, kc_reply *reply, double x, int64_t latency_ms)
{
    size_t length = 0;
    const char *payload = kc_reply_payload(reply, &length);
    json_t *root = json_loadb(payload, length, 0, NULL);
    double value = json_number_value(json_object_get(root, "value"));
    double price = json_number_value(json_object_get(root, "price"));
    json_decref(root);
    const char *server = kc_reply_node(reply), *id = kc_reply_request_id(reply);
    bool problem = false;
    uint64_t *random = &client->random;
    if (fabs(value - (2 * x + 1)) > 1) {
        problem = true;
        if (next_random(random) % 2 == 0)
            kc_client_report_problem(client->client, server, KC_PROBLEM_WRONG_ANSWER, id,
                                     "sim: wrong");
    }
    if (latency_ms > SIM_SLOW_BAR_MS) {
        problem = true;
        if (next_random(random) % 2 == 0)
            kc_client_report_problem(client->client, server, KC_PROBLEM_SLOW, id, "sim: slow");
    }
    if (price > 2) {
        problem = true;
        if (next_random(random) % 2 == 0)
            kc_client_report_problem(client->client, server, KC_PROBLEM_OVERCHARGED, id,
                                     "sim: price");
    }
    if (!problem && client->false_reporter && unit_random(random) < 0.3) {
        kc_problem_reason reason =
            next_random(random) % 2 ? KC_PROBLEM_SLOW : KC_PROBLEM_WRONG_ANSWER;
        kc_client_report_problem(client->client, server, reason, id, "sim: a false report");
    }
}

static void *client_main(void *context)
{
    sim_client *client = context;
    sim *s = client->sim;
    /* Each client sends its share at rate / clients per second. */
    double interval_ms = 1000.0 * s->client_count / (double)s->options.rate;
    int64_t start_ms = kci_monotonic_ms();
    for (int64_t k = 0; k < client->request_count && !atomic_load(&s->stop); k++) {
        sleep_ms(start_ms + (int64_t)(k * interval_ms) - kci_monotonic_ms());
        double x = round(unit_random(&client->random) * 100000) / 1000;
        char payload[32];
        int length = snprintf(payload, sizeof payload, "%.3f", x);
        kc_reply *reply = NULL;
        int64_t sent_ms = kci_monotonic_ms();
        kc_err err = kc_client_request(&reply, client->client, SIM_TYPE, payload, (size_t)length,
                                       SIM_REQUEST_TIMEOUT_MS);
        int64_t latency_ms = kci_monotonic_ms() - sent_ms;
        atomic_fetch_add(&s->requests_done, 1);
        if (err == KC_OK) check_reply(client, reply, x, latency_ms);
        kc_reply_destroy(reply);
    }
    return NULL;
}

/* ---- verdicts ---------------------------------------------------------------------- */

static void on_verdict(natsConnection *connection, natsSubscription *subscription, natsMsg *message,
                       void *closure)
{
    (void)connection, (void)subscription;
    sim *s = closure;
    json_t *root =
        json_loadb(natsMsg_GetData(message), (size_t)natsMsg_GetDataLength(message), 0, NULL);
    const char *action = json_string_value(json_object_get(root, "action"));
    const char *name = json_string_value(json_object_get(root, "node"));
    int64_t now_ms = kci_monotonic_ms();
    pthread_mutex_lock(&s->lock);
    if (action != NULL && name != NULL && strcmp(action, "quarantine") == 0) {
        for (uint32_t i = 0; i < s->node_count; i++) {
            sim_node *node = &s->nodes[i];
            if (strcmp(node->name, name) != 0 || node->quarantined) continue;
            node->quarantined = true;
            node->detected_ms = now_ms - s->start_ms;
            node->detected_requests = atomic_load(&s->requests_done);
            if (s->options.verbose)
                fprintf(stderr, "sim: %s quarantined after %lld ms, %lld requests (%s)\n", name,
                        (long long)node->detected_ms, (long long)node->detected_requests,
                        node->behaviour ? "corrupt" : "HONEST");
        }
        for (uint32_t i = 0; i < s->client_count; i++)
            if (strcmp(s->clients[i].name, name) == 0) s->clients[i].quarantined = true;
    }
    pthread_mutex_unlock(&s->lock);
    json_decref(root);
    natsMsg_Destroy(message);
}

static void on_alarm(natsConnection *connection, natsSubscription *subscription, natsMsg *message,
                     void *closure)
{
    (void)connection, (void)subscription;
    sim *s = closure;
    json_t *root =
        json_loadb(natsMsg_GetData(message), (size_t)natsMsg_GetDataLength(message), 0, NULL);
    pthread_mutex_lock(&s->lock);
    if (json_is_false(json_object_get(root, "guarantee_holds")) && !s->guarantee_broken) {
        s->guarantee_broken = true;
        snprintf(s->guarantee_text, sizeof s->guarantee_text, "%s",
                 json_string_value(json_object_get(root, "text"))
                     ? json_string_value(json_object_get(root, "text"))
                     : "");
    }
    pthread_mutex_unlock(&s->lock);
    json_decref(root);
    natsMsg_Destroy(message);
}

/* ---- kcobrad ------------------------------------------------------------------------ */

static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in address = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t length = sizeof address;
    int port = -1;
    if (fd >= 0 && bind(fd, (struct sockaddr *)&address, sizeof address) == 0 &&
        getsockname(fd, (struct sockaddr *)&address, &length) == 0)
        port = ntohs(address.sin_port);
    if (fd >= 0) close(fd);
    return port;
}

/* --kcobrad, else kcobrad beside this kcobra, else kcobrad from PATH. */
static void kcobrad_path(const sim *s, char path[SIM_PATH_BYTES])
{
    if (s->options.kcobrad != NULL) {
        snprintf(path, SIM_PATH_BYTES, "%s", s->options.kcobrad);
        return;
    }
    char self[SIM_PATH_BYTES] = "";
    ssize_t length = readlink("/proc/self/exe", self, sizeof self - 1);
    if (length > 0) {
        self[length] = '\0';
        char *slash = strrchr(self, '/');
        if (slash != NULL) {
            *slash = '\0';
            snprintf(path, SIM_PATH_BYTES, "%.400s/kcobrad", self);
            if (access(path, X_OK) == 0) return;
        }
    }
    snprintf(path, SIM_PATH_BYTES, "kcobrad");
}

static bool write_config(const sim *s, int port, char config_path[SIM_PATH_BYTES])
{
    char peers[SIM_ARBITERS_MAX * SIM_NAME_BYTES] = "";
    size_t used = 0;
    for (int64_t a = 0; a < s->options.arbiters; a++)
        used += (size_t)snprintf(peers + used, sizeof peers - used, "%s\"arbiter-%lld\"",
                                 a > 0 ? ", " : "", (long long)a);
    snprintf(config_path, SIM_PATH_BYTES, "%.400s/kcobrad.conf", s->directory);
    FILE *file = fopen(config_path, "w");
    if (file == NULL) return false;
    if (!s->hosts_arbiter) { /* nats-server: the same fabric, no components */
        fprintf(file,
                "listen: \"127.0.0.1:%d\"\nlog_file: \"%s/kcobrad.log\"\nmax_pending: 256MB\n",
                port, s->directory);
        return fclose(file) == 0;
    }
    fprintf(file,
            "listen: \"127.0.0.1:%d\"\n"
            "data_dir: \"%s/data\"\n"
            "log_file: \"%s/kcobrad.log\"\n"
            "max_pending: 256MB\n"
            "arbiter {\n  enabled: true\n  id: \"arbiter-0\"\n  arbiters: %lld\n  tick: \"250ms\"\n"
            "  probe_interval: \"1s\"\n  probe_timeout: \"500ms\"\n  slow: \"150ms\"\n  target: "
            "\"150ms\"\n  qos_samples: 20\n"
            "  quarantine: \"10m\"\n  probes: [\"%s\"]\n  peers: [%s]\n}\n",
            port, s->directory, s->directory, (long long)s->options.arbiters, SIM_PROBE, peers);
    return fclose(file) == 0;
}

static bool kcobrad_ready(sim *s)
{
    int64_t deadline_ms = kci_monotonic_ms() + SIM_START_TIMEOUT_MS;
    while (kci_monotonic_ms() < deadline_ms) {
        int child_status = 0;
        if (waitpid(s->kcobrad_pid, &child_status, WNOHANG) == s->kcobrad_pid) {
            s->kcobrad_pid = 0;
            return false; /* it exited: the port was taken, or a bad config */
        }
        natsConnection *connection = NULL;
        if (natsConnection_ConnectTo(&connection, s->url) == NATS_OK) {
            natsConnection_Destroy(connection);
            return true;
        }
        sleep_ms(50);
    }
    return false;
}

static int start_kcobrad(sim *s)
{
    char path[SIM_PATH_BYTES], config_path[SIM_PATH_BYTES];
    kcobrad_path(s, path);
    const char *base = strrchr(path, '/') != NULL ? strrchr(path, '/') + 1 : path;
    s->hosts_arbiter = strncmp(base, "nats-server", strlen("nats-server")) != 0;
    snprintf(s->directory, sizeof s->directory, "/tmp/kcobra-sim-XXXXXX");
    if (mkdtemp(s->directory) == NULL) {
        kcobra_error("sim: cannot make a temporary directory: %s", strerror(errno));
        return KCOBRA_EXIT_FAILURE;
    }
    for (int attempt = 0; attempt < SIM_START_ATTEMPTS; attempt++) {
        int port = free_port();
        if (port <= 0 || !write_config(s, port, config_path)) break;
        snprintf(s->url, sizeof s->url, "nats://127.0.0.1:%d", port);
        pid_t pid = fork();
        if (pid == 0) {
            execlp(path, path, "-c", config_path, (char *)NULL);
            _exit(127);
        }
        if (pid < 0) break;
        s->kcobrad_pid = pid;
        if (kcobrad_ready(s)) return KCOBRA_EXIT_OK;
        if (s->kcobrad_pid > 0) kill(s->kcobrad_pid, SIGKILL), waitpid(s->kcobrad_pid, NULL, 0);
        s->kcobrad_pid = 0;
    }
    kcobra_error("sim: cannot start %s (see %s/kcobrad.log; --kcobrad PATH, or --server URL)", path,
                 s->directory);
    return KCOBRA_EXIT_CONNECT;
}

static int remove_entry(const char *path, const struct stat *info, int flag, struct FTW *walk)
{
    (void)info, (void)flag, (void)walk;
    remove(path);
    return 0;
}

static void stop_kcobrad(sim *s)
{
    if (s->kcobrad_pid > 0) {
        kill(s->kcobrad_pid, SIGTERM);
        int64_t deadline_ms = kci_monotonic_ms() + SIM_STOP_TIMEOUT_MS;
        while (waitpid(s->kcobrad_pid, NULL, WNOHANG) == 0) {
            if (kci_monotonic_ms() > deadline_ms) {
                kill(s->kcobrad_pid, SIGKILL);
                waitpid(s->kcobrad_pid, NULL, 0);
                break;
            }
            sleep_ms(20);
        }
        s->kcobrad_pid = 0;
    }
    if (s->directory[0] != '\0' && !s->options.keep)
        nftw(s->directory, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
    else if (s->directory[0] != '\0')
        fprintf(stderr, "sim: kcobrad's files are kept in %s\n", s->directory);
}

/* ---- the cloud ------------------------------------------------------------------------ */

static void pick_corrupt(sim *s)
{
    uint64_t random = (uint64_t)s->options.seed;
    uint32_t order[SIM_NODES_MAX];
    for (uint32_t i = 0; i < s->node_count; i++)
        order[i] = i;
    for (uint32_t i = s->node_count - 1; i > 0; i--) {
        uint32_t j = (uint32_t)(next_random(&random) % (i + 1));
        uint32_t swap = order[i];
        order[i] = order[j], order[j] = swap;
    }
    s->corrupt_count = (uint32_t)lround(s->options.corrupt * s->node_count);
    for (uint32_t i = 0; i < s->node_count; i++) {
        sim_node *node = &s->nodes[i];
        node->sim = s;
        snprintf(node->name, sizeof node->name, "node-%02u", i);
        node->base_price = 0.9 + 0.2 * unit_random(&random);
        node->random = next_random(&random);
    }
    for (uint32_t k = 0; k < s->corrupt_count; k++)
        s->nodes[order[k]].behaviour =
            s->options.behaviours[k % (uint32_t)s->options.behaviour_count];
    uint32_t false_count = (uint32_t)lround(s->options.false_reporters * s->client_count);
    for (uint32_t i = 0; i < s->client_count; i++) {
        sim_client *client = &s->clients[i];
        client->sim = s;
        snprintf(client->name, sizeof client->name, "client-%02u", i);
        client->random = next_random(&random);
        client->false_reporter = i < false_count;
        client->request_count = s->options.requests / s->client_count +
                                ((int64_t)i < s->options.requests % (int64_t)s->client_count);
    }
}

static int start_nodes(sim *s)
{
    for (uint32_t i = 0; i < s->node_count; i++) {
        sim_node *node = &s->nodes[i];
        int status = open_client(&node->client, s, node->name);
        if (status != KCOBRA_EXIT_OK) return status;
        kc_service_options options;
        kc_service_options_init(&options);
        options.worker_count = node->behaviour & B_SLOW ? SIM_SLOW_WORKERS : SIM_WORKERS;
        if (kc_service_start(&node->service, node->client, SIM_TYPE, handle_sense, node,
                             &options) != KC_OK) {
            kcobra_error("sim: %s cannot serve: %s", node->name, kc_last_error());
            return KCOBRA_EXIT_FAILURE;
        }
    }
    return KCOBRA_EXIT_OK;
}

static int start_arbiters(sim *s)
{
    /* With our own kcobrad, arbiter-0 is kcobrad's. */
    uint32_t first = s->kcobrad_pid > 0 && s->hosts_arbiter ? 1 : 0;
    for (uint32_t a = first; a < (uint32_t)s->options.arbiters; a++) {
        char id[SIM_NAME_BYTES];
        /* With --server, the server may host arbiters of its own: other ids. */
        snprintf(id, sizeof id, "%sarbiter-%u", s->server_given ? "sim-" : "", a);
        kc_client **client = &s->arbiter_clients[s->arbiter_count];
        int status = open_client(client, s, id);
        if (status != KCOBRA_EXIT_OK) return status;
        kci_arbiter_config config;
        kci_arbiter_config_default(&config);
        config.id = id;
        config.arbiter_count = (uint32_t)s->options.arbiters;
        config.tick_ms = 250;
        config.probe_timeout_ms = 500;
        config.probe_interval_ms = 1000;
        config.qos.slow_ms = SIM_SLOW_BAR_MS;
        config.qos.target_ms = SIM_SLOW_BAR_MS;
        config.qos_samples_min = 20;
        config.quarantine_ms = 10 * 60 * 1000;
        char peers[SIM_ARBITERS_MAX][SIM_NAME_BYTES];
        for (uint32_t other = 0; other < (uint32_t)s->options.arbiters; other++) {
            snprintf(peers[other], sizeof peers[other], "%sarbiter-%u",
                     s->server_given ? "sim-" : "", other);
            config.peers[config.peer_count++] = peers[other];
        }
        char probe[] = SIM_PROBE;
        kci_arbiter_probe_parse(&config.probes[0], probe);
        config.probe_count = 1;
        char error[512] = "";
        if (kci_arbiter_start(&s->arbiters[s->arbiter_count], *client, &config, error,
                              sizeof error) != KC_OK) {
            kcobra_error("sim: %s", error);
            return KCOBRA_EXIT_FAILURE;
        }
        s->arbiter_count++;
    }
    return KCOBRA_EXIT_OK;
}

static int start_observer(sim *s)
{
    int status = open_client(&s->observer, s, "sim-observer");
    if (status != KCOBRA_EXIT_OK) return status;
    natsConnection *connection = s->observer->connection;
    if (natsConnection_Subscribe(&s->verdicts, connection, "kc.arbiter.verdict", on_verdict, s) !=
            NATS_OK ||
        natsConnection_Subscribe(&s->alarms, connection, "kc.arbiter.alarm", on_alarm, s) !=
            NATS_OK ||
        natsConnection_Flush(connection) != NATS_OK) {
        kcobra_error("sim: cannot subscribe to the verdicts");
        return KCOBRA_EXIT_FAILURE;
    }
    return KCOBRA_EXIT_OK;
}

static int run_cloud(sim *s)
{
    int status = start_observer(s);
    if (status == KCOBRA_EXIT_OK) status = start_nodes(s);
    if (status == KCOBRA_EXIT_OK) status = start_arbiters(s);
    for (uint32_t i = 0; status == KCOBRA_EXIT_OK && i < s->client_count; i++)
        status = open_client(&s->clients[i].client, s, s->clients[i].name);
    if (status != KCOBRA_EXIT_OK) return status;
    s->start_ms = kci_monotonic_ms();
    for (uint32_t i = 0; i < s->node_count; i++) {
        sim_node *node = &s->nodes[i];
        if (node->behaviour & (B_FALSE_REPORT | B_COLLUDE))
            node->reporter_started =
                pthread_create(&node->reporter, NULL, reporter_main, node) == 0;
    }
    for (uint32_t i = 0; i < s->client_count; i++)
        s->clients[i].started =
            pthread_create(&s->clients[i].thread, NULL, client_main, &s->clients[i]) == 0;
    for (uint32_t i = 0; i < s->client_count; i++)
        if (s->clients[i].started) pthread_join(s->clients[i].thread, NULL);
    sleep_ms(s->options.settle_ms); /* the last verdicts */
    return KCOBRA_EXIT_OK;
}

static void stop_cloud(sim *s)
{
    atomic_store(&s->stop, true);
    for (uint32_t i = 0; i < s->node_count; i++)
        if (s->nodes[i].reporter_started) pthread_join(s->nodes[i].reporter, NULL);
    for (uint32_t i = 0; i < s->client_count; i++)
        if (s->clients[i].client != NULL)
            kc_client_close(s->clients[i].client, SIM_CLOSE_TIMEOUT_MS);
    for (uint32_t a = 0; a < s->arbiter_count; a++)
        kci_arbiter_stop(s->arbiters[a], SIM_CLOSE_TIMEOUT_MS);
    for (uint32_t a = 0; a < s->arbiter_count; a++)
        kc_client_close(s->arbiter_clients[a], SIM_CLOSE_TIMEOUT_MS);
    for (uint32_t i = 0; i < s->node_count; i++) {
        if (s->nodes[i].service != NULL) kc_service_stop(s->nodes[i].service);
        if (s->nodes[i].client != NULL) kc_client_close(s->nodes[i].client, SIM_CLOSE_TIMEOUT_MS);
    }
    if (s->verdicts != NULL) natsSubscription_Destroy(s->verdicts);
    if (s->alarms != NULL) natsSubscription_Destroy(s->alarms);
    if (s->observer != NULL) kc_client_close(s->observer, SIM_CLOSE_TIMEOUT_MS);
}

/* ---- results ---------------------------------------------------------------------------- */

typedef struct sim_row {
    const char *behaviour;
    uint32_t corrupt;
    uint32_t detected;
    int64_t ttd_ms_sum;
    int64_t ttd_ms_max;
    int64_t ttd_requests_sum;
    int64_t ttd_requests_max;
} sim_row;

typedef struct sim_result {
    sim_row total;
    sim_row rows[BEHAVIOUR_COUNT];
    uint32_t honest;
    uint32_t false_quarantines;
    uint32_t reporters_quarantined; /* false-reporting clients found */
    uint32_t false_reporters;
    uint32_t honest_clients_quarantined;
    double precision;
    double recall;
    double false_rate;
} sim_result;

static void row_add(sim_row *row, const sim_node *node)
{
    row->corrupt++;
    if (!node->quarantined) return;
    row->detected++;
    row->ttd_ms_sum += node->detected_ms;
    row->ttd_requests_sum += node->detected_requests;
    if (node->detected_ms > row->ttd_ms_max) row->ttd_ms_max = node->detected_ms;
    if (node->detected_requests > row->ttd_requests_max)
        row->ttd_requests_max = node->detected_requests;
}

static void compute(const sim *s, sim_result *r)
{
    memset(r, 0, sizeof *r);
    r->total.behaviour = "all";
    for (int b = 0; b < BEHAVIOUR_COUNT; b++)
        r->rows[b].behaviour = BEHAVIOURS[b].name;
    for (uint32_t i = 0; i < s->node_count; i++) {
        const sim_node *node = &s->nodes[i];
        if (node->behaviour == 0) {
            r->honest++;
            r->false_quarantines += node->quarantined;
            continue;
        }
        row_add(&r->total, node);
        for (int b = 0; b < BEHAVIOUR_COUNT; b++)
            if (node->behaviour & BEHAVIOURS[b].bit) row_add(&r->rows[b], node);
    }
    for (uint32_t i = 0; i < s->client_count; i++) {
        const sim_client *client = &s->clients[i];
        r->false_reporters += client->false_reporter;
        if (client->false_reporter)
            r->reporters_quarantined += client->quarantined;
        else
            r->honest_clients_quarantined += client->quarantined;
    }
    uint32_t quarantined = r->total.detected + r->false_quarantines;
    r->precision = quarantined > 0 ? (double)r->total.detected / quarantined : 1.0;
    r->recall = r->total.corrupt > 0 ? (double)r->total.detected / r->total.corrupt : 1.0;
    r->false_rate = r->honest > 0 ? (double)r->false_quarantines / r->honest : 0.0;
}

static json_t *row_json(const sim_row *row)
{
    return json_pack("{s:s, s:i, s:i, s:f, s:I, s:I, s:I, s:I}", "behaviour", row->behaviour,
                     "corrupt", (json_int_t)row->corrupt, "detected", (json_int_t)row->detected,
                     "recall", row->corrupt ? (double)row->detected / row->corrupt : 1.0,
                     "ttd_ms_mean",
                     (json_int_t)(row->detected ? row->ttd_ms_sum / row->detected : 0),
                     "ttd_ms_max", (json_int_t)row->ttd_ms_max, "ttd_requests_mean",
                     (json_int_t)(row->detected ? row->ttd_requests_sum / row->detected : 0),
                     "ttd_requests_max", (json_int_t)row->ttd_requests_max);
}

static int print_json(const sim *s, const sim_result *r)
{
    json_t *rows = json_array(), *quarantined = json_array(), *missed = json_array();
    for (int b = 0; b < BEHAVIOUR_COUNT; b++)
        if (r->rows[b].corrupt > 0) json_array_append_new(rows, row_json(&r->rows[b]));
    for (uint32_t i = 0; i < s->node_count; i++) {
        if (s->nodes[i].quarantined)
            json_array_append_new(quarantined, json_string(s->nodes[i].name));
        if (s->nodes[i].behaviour && !s->nodes[i].quarantined)
            json_array_append_new(missed, json_string(s->nodes[i].name));
    }
    return kcobra_json_print(json_pack(
        "{s:i, s:i, s:i, s:I, s:I, s:I, s:i, s:f, s:f, s:f, s:i, s:o, s:b, s:s, s:i, s:i, s:i, "
        "s:o, s:o, s:o}",
        "nodes", (json_int_t)s->node_count, "corrupt", (json_int_t)s->corrupt_count, "clients",
        (json_int_t)s->client_count, "requests", (json_int_t)s->options.requests, "requests_done",
        (json_int_t)atomic_load(&s->requests_done), "seed", (json_int_t)s->options.seed, "arbiters",
        (json_int_t)s->options.arbiters, "precision", r->precision, "recall", r->recall,
        "false_quarantine_rate", r->false_rate, "false_quarantines",
        (json_int_t)r->false_quarantines, "total", row_json(&r->total), "guarantee_holds",
        !s->guarantee_broken, "guarantee", s->guarantee_text, "reporters_quarantined",
        (json_int_t)r->reporters_quarantined, "false_reporters", (json_int_t)r->false_reporters,
        "honest_clients_quarantined", (json_int_t)r->honest_clients_quarantined, "by_behaviour",
        rows, "quarantined", quarantined, "missed", missed));
}

static void print_row(const sim_row *row, double precision, uint32_t false_quarantines)
{
    printf("%-13s %7u %8u %9.3f %7.3f %9lld %9lld %9lld %8u\n", row->behaviour, row->corrupt,
           row->detected, precision, row->corrupt ? (double)row->detected / row->corrupt : 1.0,
           (long long)(row->detected ? row->ttd_ms_sum / row->detected : 0),
           (long long)row->ttd_ms_max,
           (long long)(row->detected ? row->ttd_requests_sum / row->detected : 0),
           false_quarantines);
}

static void print_table(const sim *s, const sim_result *r)
{
    printf(
        "kcobra sim: %u nodes (%u corrupt), %u clients, %lld requests, seed %lld, %lld arbiters\n",
        s->node_count, s->corrupt_count, s->client_count, (long long)atomic_load(&s->requests_done),
        (long long)s->options.seed, (long long)s->options.arbiters);
    printf("%-13s %7s %8s %9s %7s %9s %9s %9s %8s\n", "behaviour", "corrupt", "detected",
           "precision", "recall", "ttd_ms", "ttd_max", "ttd_reqs", "false_q");
    for (int b = 0; b < BEHAVIOUR_COUNT; b++)
        if (r->rows[b].corrupt > 0) print_row(&r->rows[b], r->precision, r->false_quarantines);
    print_row(&r->total, r->precision, r->false_quarantines);
    printf("false-quarantine rate %.3f (%u of %u honest nodes); clients: %u of %u false reporters "
           "quarantined, %u honest client(s)\n",
           r->false_rate, r->false_quarantines, r->honest, r->reporters_quarantined,
           r->false_reporters, r->honest_clients_quarantined);
    if (s->guarantee_broken)
        printf("the arbiters report: n > 3f DOES NOT HOLD: %s\n", s->guarantee_text);
    else
        printf("the arbiters report: n > 3f holds\n");
}

static bool parse_fraction(const char *text, double *out, double fallback)
{
    if (text == NULL) {
        *out = fallback;
        return true;
    }
    char *end = NULL;
    *out = strtod(text, &end);
    return end != text && *end == '\0' && *out >= 0 && *out <= 1;
}

/* The --min/--max checks CI uses; false (and why, on stderr) if one fails. */
static bool check(const sim *s, const sim_result *r)
{
    double min_precision, min_recall, max_false_rate;
    parse_fraction(s->options.min_precision_text, &min_precision, 0);
    parse_fraction(s->options.min_recall_text, &min_recall, 0);
    parse_fraction(s->options.max_false_rate_text, &max_false_rate, 1);
    bool ok = true;
    if (r->precision < min_precision)
        kcobra_error("sim: precision %.3f is below --min-precision %.3f", r->precision,
                     min_precision),
            ok = false;
    if (r->recall < min_recall)
        kcobra_error("sim: recall %.3f is below --min-recall %.3f", r->recall, min_recall),
            ok = false;
    if (r->false_rate > max_false_rate)
        kcobra_error("sim: false-quarantine rate %.3f is above --max-false-rate %.3f",
                     r->false_rate, max_false_rate),
            ok = false;
    if (s->options.expect_broken && !s->guarantee_broken)
        kcobra_error("sim: the arbiters did not report that n > 3f no longer holds"), ok = false;
    return ok;
}

/* ---- the command ------------------------------------------------------------------------- */

static const char SIM_DESCRIPTION[] =
    "Runs a cloud of N nodes serving the type 'sense' (round(N x F) of them corrupt,\n"
    "each with one of the --behaviour list in turn), C clients sending R requests in\n"
    "total, and 3f+1 arbiters; then prints, per behaviour, how many corrupt nodes\n"
    "were quarantined (recall), how many quarantined nodes were corrupt (precision),\n"
    "the time and the number of requests until each was detected, and the false\n"
    "quarantines of honest nodes. Deterministic for a seed (timing aside).\n"
    "Behaviours: wrong, slow, overcharge, false-report, collude.\n"
    "Without --server, kcobra starts a kcobrad that hosts arbiter-0 and enforces the\n"
    "quarantine (--kcobrad /usr/sbin/nats-server runs the same cloud on nats-server,\n"
    "all arbiters in this process, nothing enforced); exit 1 if a --min/--max/--expect\n"
    "check fails.\n"
    "\n"
    "Examples:\n"
    "  kcobra sim --nodes 30 --corrupt 0.2 --behaviour wrong,slow --seed 7\n"
    "  kcobra sim --corrupt 0.2 --behaviour wrong --min-precision 0.95 --min-recall 0.95 --json\n"
    "  kcobra sim --corrupt 0.4 --behaviour wrong --expect-guarantee-broken\n";

static bool parse_behaviours(const char *text, sim_options *options)
{
    char copy[256];
    snprintf(copy, sizeof copy, "%s", text);
    options->behaviour_count = 0;
    char *save = NULL;
    for (char *word = strtok_r(copy, ",", &save); word != NULL; word = strtok_r(NULL, ",", &save)) {
        int found = -1;
        for (int b = 0; b < BEHAVIOUR_COUNT; b++)
            if (strcmp(word, BEHAVIOURS[b].name) == 0) found = b;
        if (found < 0 || options->behaviour_count == BEHAVIOUR_COUNT) return false;
        options->behaviours[options->behaviour_count++] = BEHAVIOURS[found].bit;
    }
    return options->behaviour_count > 0;
}

static int check_options(const kcobra_command *command, sim_options *o, const char *behaviours)
{
    if (o->nodes < 4 || o->nodes > SIM_NODES_MAX)
        return kcobra_usage_error(command, "--nodes is 4 to %d", SIM_NODES_MAX);
    if (o->clients > SIM_CLIENTS_MAX)
        return kcobra_usage_error(command, "--clients is at most %d", SIM_CLIENTS_MAX);
    if (o->arbiters > SIM_ARBITERS_MAX)
        return kcobra_usage_error(command, "--arbiters is at most %d", SIM_ARBITERS_MAX);
    if (!parse_fraction(o->corrupt_text, &o->corrupt, 0.2))
        return kcobra_usage_error(command, "--corrupt is a fraction from 0 to 1");
    if (!parse_fraction(o->false_reporters_text, &o->false_reporters, 0))
        return kcobra_usage_error(command, "--false-reporters is a fraction from 0 to 1");
    double unused;
    if (!parse_fraction(o->min_precision_text, &unused, 0) ||
        !parse_fraction(o->min_recall_text, &unused, 0) ||
        !parse_fraction(o->max_false_rate_text, &unused, 1))
        return kcobra_usage_error(
            command, "--min-precision, --min-recall and --max-false-rate are fractions");
    if (!parse_behaviours(behaviours, o))
        return kcobra_usage_error(command,
                                  "--behaviour is a comma list of wrong, slow, overcharge, "
                                  "false-report, collude; not '%s'",
                                  behaviours);
    return KCOBRA_EXIT_OK;
}

static int simulate(sim *s)
{
    s->options.keep = s->options.verbose;
    kci_log_configure(s->options.verbose ? KCI_LOG_INFO : KCI_LOG_ERROR, true);
    signal(SIGPIPE, SIG_IGN);
    int status = KCOBRA_EXIT_OK;
    if (!s->server_given) status = start_kcobrad(s);
    if (status == KCOBRA_EXIT_OK) status = run_cloud(s);
    stop_cloud(s);
    stop_kcobrad(s);
    if (status != KCOBRA_EXIT_OK) return status;
    sim_result result;
    compute(s, &result);
    if (s->common.json)
        status = print_json(s, &result);
    else
        print_table(s, &result), fflush(stdout);
    return check(s, &result) ? status : KCOBRA_EXIT_FAILURE;
}

static int run_sim(const kcobra_command *command, int argc, char **argv)
{
    sim *s = calloc(1, sizeof *s);
    if (s == NULL) return KCOBRA_EXIT_FAILURE;
    sim_options *o = &s->options;
    o->nodes = 30, o->clients = 20, o->requests = 10000, o->seed = 1, o->arbiters = 4;
    o->rate = 1000, o->settle_ms = 3000;
    const char *behaviours = "wrong,slow,overcharge,false-report,collude";
    const kcobra_flag flags[] = {
        {"nodes", "N", KCOBRA_FLAG_COUNT, &o->nodes, "nodes serving (default 30)"},
        {"corrupt", "F", KCOBRA_FLAG_STRING, &o->corrupt_text,
         "fraction of corrupt nodes (default 0.2)"},
        {"behaviour", "LIST", KCOBRA_FLAG_STRING, &behaviours,
         "the corrupt nodes' behaviours, in turn (default all five)"},
        {"clients", "C", KCOBRA_FLAG_COUNT, &o->clients, "clients (default 20)"},
        {"requests", "R", KCOBRA_FLAG_COUNT, &o->requests, "requests in total (default 10000)"},
        {"seed", "S", KCOBRA_FLAG_COUNT, &o->seed, "the seed (default 1)"},
        {"arbiters", "A", KCOBRA_FLAG_COUNT, &o->arbiters, "arbiters, 3f+1 (default 4)"},
        {"rate", "N", KCOBRA_FLAG_COUNT, &o->rate,
         "requests per second, all clients together (default 1000)"},
        {"settle", "DURATION", KCOBRA_FLAG_DURATION, &o->settle_ms,
         "wait after the last request (default 3s)"},
        {"false-reporters", "F", KCOBRA_FLAG_STRING, &o->false_reporters_text,
         "fraction of clients filing false reports (default 0)"},
        {"kcobrad", "PATH", KCOBRA_FLAG_STRING, &o->kcobrad,
         "the kcobrad (or nats-server) to start (default: beside kcobra, else PATH)"},
        {"min-precision", "P", KCOBRA_FLAG_STRING, &o->min_precision_text,
         "exit 1 below this precision"},
        {"min-recall", "R", KCOBRA_FLAG_STRING, &o->min_recall_text, "exit 1 below this recall"},
        {"max-false-rate", "X", KCOBRA_FLAG_STRING, &o->max_false_rate_text,
         "exit 1 above this false-quarantine rate"},
        {"expect-guarantee-broken", NULL, KCOBRA_FLAG_BOOL, &o->expect_broken,
         "exit 1 unless the arbiters report n > 3f broken"},
        {"verbose", NULL, KCOBRA_FLAG_BOOL, &o->verbose,
         "log the arbiters and each verdict; keep kcobrad's directory (config, log, verdicts)"},
    };
    for (int i = 1; i < argc; i++)
        s->server_given |= strncmp(argv[i], "--server", strlen("--server")) == 0;
    kcobra_invocation invocation;
    int status = kcobra_parse(command, flags, KCOBRA_ARRAY_COUNT(flags), argc, argv, &invocation);
    if (status == KCOBRA_EXIT_OK && !invocation.help)
        status = check_options(command, o, behaviours);
    if (status == KCOBRA_EXIT_OK && !invocation.help) {
        s->common = invocation.common;
        s->node_count = (uint32_t)o->nodes;
        s->client_count = (uint32_t)o->clients;
        pthread_mutex_init(&s->lock, NULL);
        pick_corrupt(s);
        status = simulate(s);
        pthread_mutex_destroy(&s->lock);
    }
    free(s);
    return status;
}

const kcobra_command kcobra_command_sim = {
    .name = "sim",
    .synopsis =
        "sim [--nodes N] [--corrupt F] [--behaviour LIST] [--clients C] [--requests R] [--seed S]",
    .summary = "simulate a cloud with corrupt nodes and measure the arbiters",
    .description = SIM_DESCRIPTION,
    .run = run_sim,
    .positional_min = 0,
    .positional_max = 0,
};
