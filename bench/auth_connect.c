/* auth_connect - CONNECT with bcrypt'd passwords against one server (run by
 * bench/run_auth.sh, which runs it against nats-server and kcobrad in turn).
 *
 *   auth_connect hash PASSWORD COST          prints a $2b$ hash of PASSWORD
 *   auth_connect free-port                   prints a port free a moment ago
 *   auth_connect storm PORT SECONDS THREADS
 *       THREADS clients each connect, log in as "user"/"secret" (a bcrypt
 *       hash in the server's config), PING, wait for PONG and close, again
 *       and again for SECONDS: a reconnect storm of legitimate clients.
 *       Prints connects/s and the p50/p99 time of one login in ms.
 *   auth_connect bystander PORT SECONDS THREADS
 *       One client logged in as "plain"/"plain" makes PING/PONG round trips
 *       (1 ms apart) for SECONDS while THREADS clients log in as "user" with
 *       wrong passwords, each a bcrypt the server cannot skip. Prints the
 *       bystander's p50/p99 round trip in us and the refusals per second.
 *
 * Raw sockets, one JSON object on stdout; every wait is bounded by
 * IO_TIMEOUT_MS. The clients run in this process, on the same two cores as
 * the server: figures compare servers, not absolute capacities. */
#include <arpa/inet.h>
#include <crypt.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

enum {
    IO_TIMEOUT_MS = 10000,
    THREADS_MAX = 64,
    SAMPLES_MAX = 200000, /* per thread */
    REPLY_BYTES_MAX = 8192,
    BYSTANDER_PAUSE_US = 1000,
};

static const char STORM_CONNECT[] =
    "CONNECT {\"verbose\":false,\"pedantic\":false,\"user\":\"user\",\"pass\":\"secret\"}\r\n"
    "PING\r\n";
static const char WRONG_CONNECT[] =
    "CONNECT {\"verbose\":false,\"pedantic\":false,\"user\":\"user\",\"pass\":\"guess\"}\r\n"
    "PING\r\n";
static const char PLAIN_CONNECT[] =
    "CONNECT {\"verbose\":false,\"pedantic\":false,\"user\":\"plain\",\"pass\":\"plain\"}\r\n"
    "PING\r\n";

static int64_t now_us(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (int64_t)now.tv_sec * 1000000 + now.tv_nsec / 1000;
}

static int tcp_connect(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    struct timeval timeout = {.tv_sec = IO_TIMEOUT_MS / 1000};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof timeout);
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    struct sockaddr_in address = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&address, sizeof address) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static bool send_all(int fd, const char *text)
{
    size_t len = strlen(text);
    while (len > 0) {
        ssize_t n = send(fd, text, len, MSG_NOSIGNAL);
        if (n <= 0) return false;
        text += n;
        len -= (size_t)n;
    }
    return true;
}

typedef enum reply { REPLY_PONG, REPLY_ERR, REPLY_FAILED } reply;

/* Reads until PONG or -ERR (INFO and +OK may come first). */
static reply await_reply(int fd)
{
    char buffer[REPLY_BYTES_MAX + 1];
    size_t length = 0;
    for (;;) {
        if (length == REPLY_BYTES_MAX) length = 0; /* only the tail matters */
        ssize_t n = recv(fd, buffer + length, REPLY_BYTES_MAX - length, 0);
        if (n <= 0) return REPLY_FAILED;
        length += (size_t)n;
        buffer[length] = '\0';
        if (strstr(buffer, "-ERR") != NULL) return REPLY_ERR;
        if (strstr(buffer, "PONG\r\n") != NULL) return REPLY_PONG;
    }
}

/* One login: connect, CONNECT + PING, the reply, close. */
static reply login_once(int port, const char *connect_text)
{
    int fd = tcp_connect(port);
    if (fd < 0) return REPLY_FAILED;
    reply result = send_all(fd, connect_text) ? await_reply(fd) : REPLY_FAILED;
    close(fd);
    return result;
}

typedef struct worker {
    pthread_t thread;
    int port;
    const char *connect_text;
    int64_t deadline_us;
    uint64_t pong_count;
    uint64_t refused_count;
    uint64_t error_count;
    uint32_t sample_count;
    int64_t *samples_us;
} worker;

static void *login_loop(void *argument)
{
    worker *w = argument;
    while (now_us() < w->deadline_us) {
        int64_t started_us = now_us();
        reply result = login_once(w->port, w->connect_text);
        if (result == REPLY_PONG) w->pong_count++;
        if (result == REPLY_ERR) w->refused_count++;
        if (result == REPLY_FAILED) w->error_count++;
        if (result != REPLY_FAILED && w->sample_count < SAMPLES_MAX)
            w->samples_us[w->sample_count++] = now_us() - started_us;
    }
    return NULL;
}

static int compare_int64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static int64_t percentile(int64_t *values, size_t count, int percent)
{
    if (values == NULL || count == 0) return -1;
    qsort(values, count, sizeof *values, compare_int64);
    size_t index = (count * (size_t)percent) / 100;
    return values[index < count ? index : count - 1];
}

/* Starts count workers on connect_text until deadline_us. */
static worker *start_workers(int port, const char *connect_text, int count, int64_t deadline_us)
{
    worker *workers = calloc((size_t)count, sizeof *workers);
    if (workers == NULL) return NULL;
    for (int i = 0; i < count; i++) {
        workers[i] =
            (worker){.port = port, .connect_text = connect_text, .deadline_us = deadline_us};
        workers[i].samples_us = malloc(SAMPLES_MAX * sizeof(int64_t));
        if (workers[i].samples_us == NULL ||
            pthread_create(&workers[i].thread, NULL, login_loop, &workers[i]) != 0) {
            fprintf(stderr, "auth_connect: cannot start worker %d\n", i);
            exit(1);
        }
    }
    return workers;
}

/* Joins the workers; gathers their samples into one array (*all, *all_count). */
static void join_workers(worker *workers, int count, int64_t **all, size_t *all_count,
                         uint64_t totals[3])
{
    size_t total = 0;
    for (int i = 0; i < count; i++) {
        pthread_join(workers[i].thread, NULL);
        total += workers[i].sample_count;
    }
    *all = malloc((total ? total : 1) * sizeof(int64_t));
    *all_count = 0;
    for (int i = 0; i < count; i++) {
        memcpy(*all + *all_count, workers[i].samples_us, workers[i].sample_count * sizeof(int64_t));
        *all_count += workers[i].sample_count;
        totals[0] += workers[i].pong_count;
        totals[1] += workers[i].refused_count;
        totals[2] += workers[i].error_count;
        free(workers[i].samples_us);
    }
    free(workers);
}

static int run_storm(int port, double seconds, int threads)
{
    int64_t started_us = now_us();
    worker *workers =
        start_workers(port, STORM_CONNECT, threads, started_us + (int64_t)(seconds * 1e6));
    if (workers == NULL) return 1;
    int64_t *samples = NULL;
    size_t sample_count = 0;
    uint64_t totals[3] = {0, 0, 0};
    join_workers(workers, threads, &samples, &sample_count, totals);
    double elapsed_s = (double)(now_us() - started_us) / 1e6;
    printf("{\"workload\":\"storm\",\"connects_per_s\":%.1f,\"login_p50_ms\":%.2f,"
           "\"login_p99_ms\":%.2f,\"refused\":%llu,\"errors\":%llu}\n",
           (double)totals[0] / elapsed_s, (double)percentile(samples, sample_count, 50) / 1000.0,
           (double)percentile(samples, sample_count, 99) / 1000.0, (unsigned long long)totals[1],
           (unsigned long long)totals[2]);
    free(samples);
    return totals[1] + totals[2] > 0 ? 1 : 0;
}

static int run_bystander(int port, double seconds, int threads)
{
    int fd = tcp_connect(port);
    if (fd < 0 || !send_all(fd, PLAIN_CONNECT) || await_reply(fd) != REPLY_PONG) {
        fprintf(stderr, "auth_connect: the bystander cannot log in as plain/plain\n");
        return 1;
    }
    int64_t started_us = now_us();
    int64_t deadline_us = started_us + (int64_t)(seconds * 1e6);
    worker *workers = start_workers(port, WRONG_CONNECT, threads, deadline_us);
    if (workers == NULL) return 1;
    int64_t *round_trips = malloc(SAMPLES_MAX * sizeof(int64_t));
    size_t round_trip_count = 0;
    uint64_t bystander_errors = 0;
    while (round_trips != NULL && now_us() < deadline_us && round_trip_count < SAMPLES_MAX) {
        int64_t sent_us = now_us();
        if (!send_all(fd, "PING\r\n") || await_reply(fd) != REPLY_PONG) {
            bystander_errors++;
            break;
        }
        round_trips[round_trip_count++] = now_us() - sent_us;
        usleep(BYSTANDER_PAUSE_US);
    }
    close(fd);
    int64_t *samples = NULL;
    size_t sample_count = 0;
    uint64_t totals[3] = {0, 0, 0};
    join_workers(workers, threads, &samples, &sample_count, totals);
    double elapsed_s = (double)(now_us() - started_us) / 1e6;
    printf("{\"workload\":\"bystander\",\"rtt_p50_us\":%lld,\"rtt_p99_us\":%lld,"
           "\"refused_per_s\":%.1f,\"accepted\":%llu,\"errors\":%llu}\n",
           (long long)percentile(round_trips, round_trip_count, 50),
           (long long)percentile(round_trips, round_trip_count, 99), (double)totals[1] / elapsed_s,
           (unsigned long long)totals[0], (unsigned long long)(totals[2] + bystander_errors));
    free(samples);
    free(round_trips);
    return totals[0] + totals[2] + bystander_errors > 0 ? 1 : 0;
}

static int print_hash(const char *password, int cost)
{
    char setting[CRYPT_GENSALT_OUTPUT_SIZE];
    struct crypt_data data;
    memset(&data, 0, sizeof data);
    if (crypt_gensalt_rn("$2b$", (unsigned long)cost, NULL, 0, setting, sizeof setting) == NULL)
        return 1;
    const char *hash = crypt_rn(password, setting, &data, (int)sizeof data);
    if (hash == NULL || hash[0] == '*') return 1;
    puts(hash);
    return 0;
}

static int print_free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in address = {.sin_family = AF_INET};
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof address;
    if (fd < 0 || bind(fd, (struct sockaddr *)&address, sizeof address) != 0 ||
        getsockname(fd, (struct sockaddr *)&address, &len) != 0)
        return 1;
    printf("%d\n", ntohs(address.sin_port));
    close(fd);
    return 0;
}

static int usage(void)
{
    fprintf(stderr, "usage: auth_connect hash PASSWORD COST\n"
                    "       auth_connect free-port\n"
                    "       auth_connect storm|bystander PORT SECONDS THREADS\n");
    return 2;
}

int main(int argc, char **argv)
{
    if (argc == 4 && strcmp(argv[1], "hash") == 0) return print_hash(argv[2], atoi(argv[3]));
    if (argc == 2 && strcmp(argv[1], "free-port") == 0) return print_free_port();
    if (argc != 5) return usage();
    int port = atoi(argv[2]);
    double seconds = atof(argv[3]);
    int threads = atoi(argv[4]);
    if (port <= 0 || seconds <= 0 || threads <= 0 || threads > THREADS_MAX) return usage();
    if (strcmp(argv[1], "storm") == 0) return run_storm(port, seconds, threads);
    if (strcmp(argv[1], "bystander") == 0) return run_bystander(port, seconds, threads);
    return usage();
}
