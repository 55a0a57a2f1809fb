/* kcobra_sim_server.c - the server the simulator starts when no --server
 * is given: kcobrad hosting arbiter-0 (which enforces the quarantine), or,
 * when --kcobrad names a nats-server, that with a plain config. In a
 * temporary directory, on a port the kernel picked a moment before (tried
 * again on a fresh port if the server exits: someone took it). */
#include <errno.h>
#include <ftw.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/clock.h"
#include "kcobra_sim.h"

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
    char keys[SIM_ARBITERS_MAX * (SIM_NAME_BYTES + 84)] = "";
    size_t used = 0, keys_used = 0;
    for (int64_t a = 0; a < s->options.arbiters; a++) {
        used += (size_t)snprintf(peers + used, sizeof peers - used, "%s\"arbiter-%lld\"",
                                 a > 0 ? ", " : "", (long long)a);
        if (s->keys_made) /* every peer's vote key (kcobra_sim_arbiters.c) */
            keys_used += (size_t)snprintf(keys + keys_used, sizeof keys - keys_used, "%s\"%s\"",
                                          a > 0 ? ", " : "", s->peer_keys[a]);
    }
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
            "server_name: \"arbiter-0\"\n" /* its arbiter's probes carry the id: peers know them */
            "data_dir: \"%s/data\"\n"
            "log_file: \"%s/kcobrad.log\"\n"
            "max_pending: 256MB\n"
            "arbiter {\n  enabled: true\n  id: \"arbiter-0\"\n  arbiters: %lld\n  tick: \"250ms\"\n"
            "  probe_interval: \"1s\"\n  probe_timeout: \"500ms\"\n  slow: \"150ms\"\n  target: "
            "\"150ms\"\n  qos_samples: 20\n"
            "  quarantine: \"10m\"\n  probes: [\"%s\"]\n  peers: [%s]\n  peer_keys: [%s]\n}\n",
            port, s->directory, s->directory, (long long)s->options.arbiters, SIM_PROBE, peers,
            keys);
    /* The ledger the clients pay through. Minting is open because the
     * simulator mints the clients' budgets as an anonymous client of its own
     * loopback kcobrad (kcobrad warns that it is open). */
    if (s->options.economy)
        fprintf(file, "ledger {\n  enabled: true\n  mint: true\n  mint_open: true\n}\n");
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
        kcobra_sim_sleep_ms(50);
    }
    return false;
}

int kcobra_sim_server_start(sim *s)
{
    char path[SIM_PATH_BYTES], config_path[SIM_PATH_BYTES];
    kcobrad_path(s, path);
    const char *base = strrchr(path, '/') != NULL ? strrchr(path, '/') + 1 : path;
    s->hosts_arbiter = strncmp(base, "nats-server", strlen("nats-server")) != 0;
    if (s->directory[0] == '\0') { /* kcobra_sim_keys_make made it already */
        snprintf(s->directory, sizeof s->directory, "/tmp/kcobra-sim-XXXXXX");
        if (mkdtemp(s->directory) == NULL) {
            kcobra_error("sim: cannot make a temporary directory: %s", strerror(errno));
            s->directory[0] = '\0';
            return KCOBRA_EXIT_FAILURE;
        }
    }
    for (int attempt = 0; attempt < SIM_START_ATTEMPTS; attempt++) {
        int port = free_port();
        if (port <= 0 || !write_config(s, port, config_path)) break;
        snprintf(s->url, sizeof s->url, "nats://127.0.0.1:%d", port);
        pid_t parent = getpid();
        pid_t pid = fork();
        if (pid == 0) {
            /* If kcobra dies (killed by a test's timeout), so does its
             * server: no orphan left holding a port. */
            prctl(PR_SET_PDEATHSIG, SIGTERM);
            if (getppid() != parent) _exit(1);
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

void kcobra_sim_server_stop(sim *s)
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
            kcobra_sim_sleep_ms(20);
        }
        s->kcobrad_pid = 0;
    }
    if (s->directory[0] != '\0' && !s->options.keep)
        nftw(s->directory, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
    else if (s->directory[0] != '\0')
        fprintf(stderr, "sim: kcobrad's files are kept in %s\n", s->directory);
}
