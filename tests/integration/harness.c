/*
 * Integration harness (see harness.h for the contract): server processes in
 * temporary directories on ephemeral ports, certificates made with the
 * openssl CLI, and a raw TCP client for protocol-level cases.
 *
 * Limits: Linux only (/proc is read to tell our listener from a stranger's,
 * prctl(PR_SET_PDEATHSIG) kills a server whose test program died), IPv4
 * loopback only.
 */
#include "harness.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

enum {
    START_ATTEMPTS_MAX = 5,
    READY_POLL_INTERVAL_MS = 10,
    STOP_POLL_INTERVAL_MS = 10,
    COMMAND_TIMEOUT_MS = 20000,
    FILE_DESCRIPTORS_CLOSE_MAX = 65536, /* fallback when close_range fails */
    PROC_NET_TCP_LINES_MAX = 1 << 20,
    PROC_FD_ENTRIES_MAX = 1 << 16,
    LOG_TAIL_BYTES = 2048,
    TEXT_LINE_SIZE_MAX = 512,
    LINE_SIZE_MAX = 8192, /* a control line is at most 4096 bytes of arguments */
    NFTW_DESCRIPTORS_MAX = 16,
    SERVER_ARGUMENTS_MAX = 12,
};

static const char LOOPBACK_TEXT[] = "127.0.0.1";

/* ===================================================================== clock */

int64_t harness_now_ms(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000;
}

void harness_sleep_ms(int duration_ms)
{
    struct timespec duration = {.tv_sec = duration_ms / 1000,
                                .tv_nsec = (long)(duration_ms % 1000) * 1000000L};
    while (nanosleep(&duration, &duration) != 0 && errno == EINTR) {
    }
}

static int remaining_ms(int64_t deadline_ms)
{
    int64_t left = deadline_ms - harness_now_ms();
    return left > 0 ? (int)left : 0;
}

/* ===================================================================== ports */

static struct sockaddr_in loopback_address(int port)
{
    struct sockaddr_in address;
    memset(&address, 0, sizeof(address));
    address.sin_family = AF_INET;
    address.sin_port = htons((uint16_t)port);
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return address;
}

/* Binds port 0 and reads what the kernel chose. The port is free again once
 * we close it; the server may still lose a race for it, which start retries. */
static harness_status port_pick(int *port_out)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return HARNESS_ERROR;
    struct sockaddr_in address = loopback_address(0);
    socklen_t length = sizeof(address);
    harness_status status = HARNESS_ERROR;
    if (bind(fd, (struct sockaddr *)&address, sizeof(address)) == 0 &&
        getsockname(fd, (struct sockaddr *)&address, &length) == 0) {
        *port_out = ntohs(address.sin_port);
        status = HARNESS_OK;
    }
    close(fd);
    return status;
}

harness_status harness_port_pick(int *port_out)
{
    return port_pick(port_out);
}

static bool port_accepts(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return false;
    struct sockaddr_in address = loopback_address(port);
    bool accepted = connect(fd, (struct sockaddr *)&address, sizeof(address)) == 0;
    close(fd);
    return accepted;
}

/* The inode of the socket listening on 127.0.0.1:port (or 0.0.0.0:port). */
static bool port_listener_inode(int port, unsigned long *inode_out)
{
    FILE *table = fopen("/proc/net/tcp", "r");
    if (table == NULL) return false;
    char line[TEXT_LINE_SIZE_MAX];
    bool found = false;
    for (int line_index = 0; !found && line_index < PROC_NET_TCP_LINES_MAX; line_index++) {
        if (fgets(line, sizeof(line), table) == NULL) break;
        unsigned int address = 0, local_port = 0, state = 0;
        unsigned long inode = 0;
        int fields = sscanf(line, " %*u: %8X:%4X %*8X:%*4X %2X %*X:%*X %*X:%*X %*X %*u %*u %lu",
                            &address, &local_port, &state, &inode);
        const unsigned int listen_state = 0x0A;
        bool ours = address == htonl(INADDR_LOOPBACK) || address == htonl(INADDR_ANY);
        if (fields == 4 && state == listen_state && (int)local_port == port && ours) {
            *inode_out = inode;
            found = true;
        }
    }
    fclose(table);
    return found;
}

static bool process_holds_socket(pid_t pid, unsigned long inode)
{
    char directory_path[HARNESS_PATH_SIZE_MAX];
    snprintf(directory_path, sizeof(directory_path), "/proc/%d/fd", (int)pid);
    DIR *directory = opendir(directory_path);
    if (directory == NULL) return false;
    char wanted[64];
    snprintf(wanted, sizeof(wanted), "socket:[%lu]", inode);
    bool held = false;
    struct dirent *entry = NULL;
    for (int entry_index = 0; !held && entry_index < PROC_FD_ENTRIES_MAX; entry_index++) {
        entry = readdir(directory);
        if (entry == NULL) break;
        char target[64] = {0};
        ssize_t length = readlinkat(dirfd(directory), entry->d_name, target, sizeof(target) - 1);
        held = length > 0 && strcmp(target, wanted) == 0;
    }
    closedir(directory);
    return held;
}

/* True when the listener on `port` is our child's, not a stranger's. Where
 * /proc cannot tell (no table), trust the connect. */
static bool port_owned_by(int port, pid_t pid)
{
    if (access("/proc/net/tcp", R_OK) != 0) return true;
    unsigned long inode = 0;
    if (!port_listener_inode(port, &inode)) return false;
    return process_holds_socket(pid, inode);
}

/* ================================================================== processes */

/* Only async-signal-safe calls between fork and exec: the parent has threads.
 * descriptor_limit > 0 sets the child's RLIMIT_NOFILE (soft and hard). */
static void child_exec(const char *const argv[], const char *log_path, const char *directory,
                       pid_t parent, int descriptor_limit)
{
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(126);
    if (descriptor_limit > 0) {
        struct rlimit limit = {.rlim_cur = (rlim_t)descriptor_limit,
                               .rlim_max = (rlim_t)descriptor_limit};
        if (setrlimit(RLIMIT_NOFILE, &limit) != 0) _exit(126);
    }
    if (directory != NULL && chdir(directory) != 0) _exit(126);
    int null_fd = open("/dev/null", O_RDONLY);
    int log_fd = open(log_path, O_WRONLY | O_CREAT | O_APPEND, 0600);
    if (null_fd < 0 || log_fd < 0) _exit(126);
    dup2(null_fd, STDIN_FILENO);
    dup2(log_fd, STDOUT_FILENO);
    dup2(log_fd, STDERR_FILENO);
    if (close_range(3, ~0U, 0) != 0) {
        for (int fd = 3; fd < FILE_DESCRIPTORS_CLOSE_MAX; fd++)
            close(fd);
    }
    execvp(argv[0], (char *const *)argv);
    _exit(127);
}

/* directory: the child's working directory (NULL: this one). A server gets
 * its own, so what it writes relative to it (kcobrad's data/) stays in the
 * case's temporary directory. */
static pid_t process_spawn(const char *const argv[], const char *log_path, const char *directory,
                           int descriptor_limit)
{
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid == 0) child_exec(argv, log_path, directory, parent, descriptor_limit);
    return pid;
}

/* Waits for the child until deadline; true if it has been reaped. */
static bool process_reap_by(pid_t pid, int64_t deadline_ms, int *wait_status)
{
    for (;;) {
        pid_t reaped = waitpid(pid, wait_status, WNOHANG);
        if (reaped == pid || (reaped < 0 && errno == ECHILD)) return true;
        if (harness_now_ms() >= deadline_ms) return false;
        harness_sleep_ms(STOP_POLL_INTERVAL_MS);
    }
}

/* SIGTERM, then SIGKILL after the bound. HARNESS_TIMEOUT if it needed SIGKILL. */
static harness_status process_stop(pid_t pid, int timeout_ms)
{
    int wait_status = 0;
    kill(pid, SIGTERM);
    if (process_reap_by(pid, harness_now_ms() + timeout_ms, &wait_status)) return HARNESS_OK;
    kill(pid, SIGKILL);
    waitpid(pid, &wait_status, 0);
    return HARNESS_TIMEOUT;
}

static harness_status command_run(const char *const argv[], const char *log_path)
{
    pid_t pid = process_spawn(argv, log_path, NULL, 0);
    if (pid < 0) return HARNESS_ERROR;
    int wait_status = 0;
    if (!process_reap_by(pid, harness_now_ms() + COMMAND_TIMEOUT_MS, &wait_status)) {
        kill(pid, SIGKILL);
        waitpid(pid, &wait_status, 0);
        return HARNESS_TIMEOUT;
    }
    bool succeeded = WIFEXITED(wait_status) && WEXITSTATUS(wait_status) == 0;
    if (!succeeded) fprintf(stderr, "harness: %s failed, see %s\n", argv[0], log_path);
    return succeeded ? HARNESS_OK : HARNESS_ERROR;
}

/* ==================================================================== servers */

harness_status harness_server_path(const harness_server *server, const char *name, char *path_out,
                                   size_t path_size)
{
    /* Not snprintf: GCC's truncation warning cannot see that paths are short. */
    size_t directory_length = strlen(server->directory_path), name_length = strlen(name);
    if (directory_length + 1 + name_length + 1 > path_size) {
        if (path_size > 0) path_out[0] = '\0';
        return HARNESS_MISMATCH;
    }
    memcpy(path_out, server->directory_path, directory_length);
    path_out[directory_length] = '/';
    memcpy(path_out + directory_length + 1, name, name_length + 1);
    return HARNESS_OK;
}

harness_status harness_server_init(harness_server *server, const char *binary_path)
{
    memset(server, 0, sizeof(*server));
    server->binary_path = binary_path;
    const char *temporary = getenv("TMPDIR");
    if (temporary == NULL || temporary[0] == '\0') temporary = "/tmp";
    snprintf(server->directory_path, sizeof(server->directory_path), "%s/kc-integration-XXXXXX",
             temporary);
    if (mkdtemp(server->directory_path) == NULL) {
        server->directory_path[0] = '\0';
        return HARNESS_ERROR;
    }
    harness_server_path(server, "server.log", server->log_path, sizeof(server->log_path));
    return HARNESS_OK;
}

harness_status harness_server_write_file(const harness_server *server, const char *name,
                                         const char *text, char *path_out, size_t path_size)
{
    char path[HARNESS_PATH_SIZE_MAX];
    harness_server_path(server, name, path, sizeof(path));
    FILE *file = fopen(path, "w");
    if (file == NULL) return HARNESS_ERROR;
    size_t length = strlen(text);
    bool written = fwrite(text, 1, length, file) == length;
    if (fclose(file) != 0) written = false;
    if (path_out != NULL) snprintf(path_out, path_size, "%s", path);
    return written ? HARNESS_OK : HARNESS_ERROR;
}

static void server_print_log_tail(const harness_server *server)
{
    FILE *log = fopen(server->log_path, "r");
    if (log == NULL) return;
    char tail[LOG_TAIL_BYTES + 1];
    if (fseek(log, -(long)LOG_TAIL_BYTES, SEEK_END) != 0) rewind(log);
    size_t length = fread(tail, 1, LOG_TAIL_BYTES, log);
    tail[length] = '\0';
    fclose(log);
    fprintf(stderr, "harness: --- tail of %s ---\n%s\nharness: ---\n", server->log_path, tail);
}

static harness_status server_spawn(harness_server *server)
{
    char port_text[16], monitor_text[16];
    snprintf(port_text, sizeof(port_text), "%d", server->port);
    snprintf(monitor_text, sizeof(monitor_text), "%d", server->monitor_port);
    const char *argv[SERVER_ARGUMENTS_MAX];
    int argc = 0;
    argv[argc++] = server->binary_path;
    argv[argc++] = "-a";
    argv[argc++] = LOOPBACK_TEXT;
    argv[argc++] = "-p";
    argv[argc++] = port_text;
    if (server->config_path[0] != '\0') {
        argv[argc++] = "-c";
        argv[argc++] = server->config_path;
    }
    if (server->monitor_enabled) {
        argv[argc++] = "-m";
        argv[argc++] = monitor_text;
    }
    argv[argc] = NULL;
    server->pid =
        process_spawn(argv, server->log_path, server->directory_path, server->descriptor_limit);
    return server->pid > 0 ? HARNESS_OK : HARNESS_ERROR;
}

static bool server_ready(const harness_server *server)
{
    if (!port_accepts(server->port) || !port_owned_by(server->port, server->pid)) return false;
    return !server->monitor_enabled || port_accepts(server->monitor_port);
}

/* Up when our child owns the listener; HARNESS_CLOSED when the child exited
 * (typically: it lost the port to someone else). */
static harness_status server_wait_ready(harness_server *server)
{
    int64_t deadline_ms = harness_now_ms() + HARNESS_START_TIMEOUT_MS;
    while (harness_now_ms() < deadline_ms) {
        int wait_status = 0;
        if (waitpid(server->pid, &wait_status, WNOHANG) == server->pid) {
            server->pid = 0;
            return HARNESS_CLOSED;
        }
        if (server_ready(server)) return HARNESS_OK;
        harness_sleep_ms(READY_POLL_INTERVAL_MS);
    }
    return HARNESS_TIMEOUT;
}

static harness_status server_pick_ports(harness_server *server)
{
    if (port_pick(&server->port) != HARNESS_OK) return HARNESS_ERROR;
    if (!server->monitor_enabled) return HARNESS_OK;
    return port_pick(&server->monitor_port);
}

static harness_status server_start_configured(harness_server *server);

bool harness_child_wait(pid_t pid, int timeout_ms, int *exit_status_out)
{
    int wait_status = 0;
    if (!process_reap_by(pid, harness_now_ms() + timeout_ms, &wait_status)) return false;
    const int signalled_base = 128;
    *exit_status_out = WIFSIGNALED(wait_status) ? signalled_base + WTERMSIG(wait_status)
                                                : WEXITSTATUS(wait_status);
    return true;
}

void harness_read_text(const char *path, char *text, size_t size)
{
    text[0] = '\0';
    FILE *file = fopen(path, "r");
    if (file == NULL) return;
    size_t length = fread(text, 1, size - 1, file);
    text[length] = '\0';
    fclose(file);
}

harness_status harness_server_start(harness_server *server, const char *config_text)
{
    if (server->pid != 0) return HARNESS_ERROR;
    server->config_path[0] = '\0';
    if (config_text != NULL &&
        harness_server_write_file(server, "server.conf", config_text, server->config_path,
                                  sizeof(server->config_path)) != 0)
        return HARNESS_ERROR;
    return server_start_configured(server);
}

harness_status harness_server_start_file(harness_server *server, const char *config_path)
{
    if (server->pid != 0) return HARNESS_ERROR;
    int written = snprintf(server->config_path, sizeof server->config_path, "%s", config_path);
    if (written < 0 || (size_t)written >= sizeof server->config_path) return HARNESS_ERROR;
    return server_start_configured(server);
}

static harness_status server_start_configured(harness_server *server)
{
    bool port_kept = server->port != 0; /* a restart must come back where it was */
    harness_status status = HARNESS_ERROR;
    for (int attempt = 0; attempt < START_ATTEMPTS_MAX; attempt++) {
        if (!port_kept && server_pick_ports(server) != HARNESS_OK) return HARNESS_ERROR;
        if (server_spawn(server) != HARNESS_OK) return HARNESS_ERROR;
        status = server_wait_ready(server);
        if (status == HARNESS_OK) {
            snprintf(server->url, sizeof(server->url), "nats://%s:%d", LOOPBACK_TEXT, server->port);
            return HARNESS_OK;
        }
        if (server->pid != 0) process_stop(server->pid, HARNESS_STOP_TIMEOUT_MS);
        server->pid = 0;
    }
    fprintf(stderr, "harness: %s did not come up on port %d\n", server->binary_path, server->port);
    server_print_log_tail(server);
    return status;
}

harness_status harness_server_stop(harness_server *server)
{
    if (server->pid == 0) return HARNESS_OK;
    harness_status status = process_stop(server->pid, HARNESS_STOP_TIMEOUT_MS);
    if (status != HARNESS_OK)
        fprintf(stderr, "harness: %s ignored SIGTERM for %d ms\n", server->binary_path,
                HARNESS_STOP_TIMEOUT_MS);
    server->pid = 0;
    return status;
}

harness_status harness_server_signal(const harness_server *server, int signal_number)
{
    if (server->pid == 0) return HARNESS_ERROR;
    return kill(server->pid, signal_number) == 0 ? HARNESS_OK : HARNESS_ERROR;
}

harness_status harness_server_wait_exit(harness_server *server, int timeout_ms,
                                        int *exit_status_out)
{
    if (server->pid == 0) return HARNESS_ERROR;
    int wait_status = 0;
    if (!process_reap_by(server->pid, harness_now_ms() + timeout_ms, &wait_status))
        return HARNESS_TIMEOUT;
    server->pid = 0;
    const int signalled_base = 128;
    if (WIFEXITED(wait_status))
        *exit_status_out = WEXITSTATUS(wait_status);
    else if (WIFSIGNALED(wait_status))
        *exit_status_out = signalled_base + WTERMSIG(wait_status);
    else
        *exit_status_out = -1;
    return HARNESS_OK;
}

static int remove_entry(const char *path, const struct stat *info, int type, struct FTW *walk)
{
    (void)info;
    (void)type;
    (void)walk;
    return remove(path);
}

void harness_server_cleanup(harness_server *server)
{
    harness_server_stop(server);
    if (server->directory_path[0] == '\0') return;
    if (getenv(HARNESS_KEEP_ENVIRONMENT) != NULL) {
        fprintf(stderr, "harness: kept %s\n", server->directory_path);
        return;
    }
    nftw(server->directory_path, remove_entry, NFTW_DESCRIPTORS_MAX, FTW_DEPTH | FTW_PHYS);
    server->directory_path[0] = '\0';
}

/* ======================================================================== TLS */

typedef struct tls_paths {
    char ca_key[HARNESS_PATH_SIZE_MAX], ca[HARNESS_PATH_SIZE_MAX];
    char key[HARNESS_PATH_SIZE_MAX], request[HARNESS_PATH_SIZE_MAX];
    char certificate[HARNESS_PATH_SIZE_MAX], extensions[HARNESS_PATH_SIZE_MAX];
    char log[HARNESS_PATH_SIZE_MAX];
} tls_paths;

static harness_status tls_make_ca(const tls_paths *paths)
{
    /* One option and its value per line. */
    // clang-format off
    const char *const argv[] = {
        "openssl", "req", "-x509", "-nodes",
        "-newkey", "ec",
        "-pkeyopt", "ec_paramgen_curve:prime256v1",
        "-keyout", paths->ca_key,
        "-out", paths->ca,
        "-days", "1",
        "-subj", "/CN=kingcobra-test-ca",
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign",
        NULL};
    // clang-format on
    return command_run(argv, paths->log);
}

/* A key, a request, and a certificate signed by the CA with `extensions`. */
static harness_status tls_make_leaf(const harness_server *server, const tls_paths *paths,
                                    const char *subject, const char *serial, const char *extensions)
{
    if (harness_server_write_file(server, "leaf.ext", extensions, NULL, 0) != HARNESS_OK)
        return HARNESS_ERROR;
    /* One option and its value per line. */
    // clang-format off
    const char *const request_argv[] = {
        "openssl", "req", "-new", "-nodes",
        "-newkey", "ec",
        "-pkeyopt", "ec_paramgen_curve:prime256v1",
        "-keyout", paths->key,
        "-out", paths->request,
        "-subj", subject,
        NULL};
    const char *const sign_argv[] = {
        "openssl", "x509", "-req",
        "-in", paths->request,
        "-CA", paths->ca,
        "-CAkey", paths->ca_key,
        "-set_serial", serial,
        "-days", "1",
        "-out", paths->certificate,
        "-extfile", paths->extensions,
        NULL};
    // clang-format on
    harness_status status = command_run(request_argv, paths->log);
    if (status == HARNESS_OK) status = command_run(sign_argv, paths->log);
    return status;
}

static void tls_leaf_paths(const harness_server *server, tls_paths *paths, const char *role)
{
    char name[64];
    snprintf(name, sizeof(name), "%s-key.pem", role);
    harness_server_path(server, name, paths->key, sizeof(paths->key));
    snprintf(name, sizeof(name), "%s-cert.pem", role);
    harness_server_path(server, name, paths->certificate, sizeof(paths->certificate));
    harness_server_path(server, "leaf.csr", paths->request, sizeof(paths->request));
    harness_server_path(server, "leaf.ext", paths->extensions, sizeof(paths->extensions));
}

harness_status harness_tls_generate(const harness_server *server)
{
    tls_paths paths;
    harness_server_path(server, "ca-key.pem", paths.ca_key, sizeof(paths.ca_key));
    harness_server_path(server, "ca.pem", paths.ca, sizeof(paths.ca));
    harness_server_path(server, "openssl.log", paths.log, sizeof(paths.log));
    harness_status status = tls_make_ca(&paths);
    tls_leaf_paths(server, &paths, "server");
    if (status == HARNESS_OK)
        status = tls_make_leaf(server, &paths, "/CN=127.0.0.1", "2",
                               "subjectAltName=IP:127.0.0.1,DNS:localhost\n"
                               "extendedKeyUsage=serverAuth\n");
    tls_leaf_paths(server, &paths, "client");
    if (status == HARNESS_OK)
        status = tls_make_leaf(server, &paths, "/CN=kingcobra-test-client", "3",
                               "extendedKeyUsage=clientAuth\n");
    return status;
}

/* ======================================================================== raw */

void harness_raw_init(harness_raw *raw)
{
    raw->fd = -1;
    raw->length = 0;
}

int harness_tcp_connect(int port, int receive_buffer_bytes)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    if (receive_buffer_bytes > 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &receive_buffer_bytes, sizeof(int));
    struct sockaddr_in address = loopback_address(port);
    if (connect(fd, (struct sockaddr *)&address, sizeof(address)) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

harness_status harness_raw_connect(harness_raw *raw, int port, int receive_buffer_bytes)
{
    harness_raw_init(raw);
    raw->fd = harness_tcp_connect(port, receive_buffer_bytes);
    return raw->fd >= 0 ? HARNESS_OK : HARNESS_ERROR;
}

harness_status harness_raw_send(harness_raw *raw, const void *bytes, size_t size)
{
    const char *cursor = bytes;
    int64_t deadline_ms = harness_now_ms() + HARNESS_IO_TIMEOUT_MS;
    while (size > 0) {
        struct pollfd entry = {.fd = raw->fd, .events = POLLOUT};
        if (poll(&entry, 1, remaining_ms(deadline_ms)) <= 0) return HARNESS_TIMEOUT;
        ssize_t sent = send(raw->fd, cursor, size, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (sent < 0 && (errno == EINTR || errno == EAGAIN)) continue;
        if (sent < 0)
            return (errno == EPIPE || errno == ECONNRESET) ? HARNESS_CLOSED : HARNESS_ERROR;
        cursor += sent;
        size -= (size_t)sent;
    }
    return HARNESS_OK;
}

harness_status harness_raw_send_text(harness_raw *raw, const char *text)
{
    return harness_raw_send(raw, text, strlen(text));
}

/* Appends whatever the socket has within timeout_ms to the buffer. */
static harness_status raw_fill(harness_raw *raw, int timeout_ms)
{
    if (raw->length == sizeof(raw->buffer)) return HARNESS_MISMATCH;
    struct pollfd entry = {.fd = raw->fd, .events = POLLIN};
    int ready = poll(&entry, 1, timeout_ms);
    if (ready == 0) return HARNESS_TIMEOUT;
    if (ready < 0) return errno == EINTR ? HARNESS_OK : HARNESS_ERROR;
    ssize_t received =
        recv(raw->fd, raw->buffer + raw->length, sizeof(raw->buffer) - raw->length, MSG_DONTWAIT);
    if (received == 0) return HARNESS_CLOSED;
    if (received < 0 && (errno == EINTR || errno == EAGAIN)) return HARNESS_OK;
    if (received < 0) return errno == ECONNRESET ? HARNESS_CLOSED : HARNESS_ERROR;
    raw->length += (size_t)received;
    return HARNESS_OK;
}

static void raw_consume(harness_raw *raw, size_t count)
{
    memmove(raw->buffer, raw->buffer + count, raw->length - count);
    raw->length -= count;
}

harness_status harness_raw_read_line(harness_raw *raw, char *line, size_t line_size, int timeout_ms)
{
    int64_t deadline_ms = harness_now_ms() + timeout_ms;
    for (;;) {
        char *end = memchr(raw->buffer, '\n', raw->length);
        if (end != NULL) {
            size_t length = (size_t)(end - raw->buffer);
            size_t consumed = length + 1;
            if (length > 0 && raw->buffer[length - 1] == '\r') length--;
            if (length >= line_size) return HARNESS_MISMATCH;
            memcpy(line, raw->buffer, length);
            line[length] = '\0';
            raw_consume(raw, consumed);
            return HARNESS_OK;
        }
        harness_status status = raw_fill(raw, remaining_ms(deadline_ms));
        if (status != HARNESS_OK) return status;
    }
}

harness_status harness_raw_read_exact(harness_raw *raw, void *bytes, size_t size, int timeout_ms)
{
    int64_t deadline_ms = harness_now_ms() + timeout_ms;
    char *cursor = bytes;
    while (size > 0) {
        if (raw->length == 0) {
            harness_status status = raw_fill(raw, remaining_ms(deadline_ms));
            if (status != HARNESS_OK) return status;
            continue;
        }
        size_t count = raw->length < size ? raw->length : size;
        memcpy(cursor, raw->buffer, count);
        raw_consume(raw, count);
        cursor += count;
        size -= count;
    }
    return HARNESS_OK;
}

static const char *status_text(harness_status status)
{
    switch (status) {
    case HARNESS_OK: return "ok";
    case HARNESS_TIMEOUT: return "a timeout";
    case HARNESS_CLOSED: return "the connection closed";
    case HARNESS_MISMATCH: return "a line longer than the buffer";
    case HARNESS_ERROR: return "an error";
    }
    return "?";
}

/* A server PING is keep-alive noise to most cases: answer and skip it. */
static bool raw_skip_ping(harness_raw *raw, const char *line, const char *expected)
{
    if (strcmp(line, "PING") != 0 || strcmp(expected, "PING") == 0) return false;
    harness_raw_send_text(raw, "PONG\r\n");
    return true;
}

harness_status harness_raw_expect_line(harness_raw *raw, const char *expected, int timeout_ms)
{
    int64_t deadline_ms = harness_now_ms() + timeout_ms;
    char line[LINE_SIZE_MAX];
    for (;;) {
        harness_status status =
            harness_raw_read_line(raw, line, sizeof(line), remaining_ms(deadline_ms));
        if (status != HARNESS_OK) {
            fprintf(stderr, "harness: expected '%s', got %s\n", expected, status_text(status));
            return status;
        }
        if (raw_skip_ping(raw, line, expected)) continue;
        if (strcmp(line, expected) == 0) return HARNESS_OK;
        fprintf(stderr, "harness: expected '%s', got '%.200s'\n", expected, line);
        return HARNESS_MISMATCH;
    }
}

harness_status harness_raw_expect_silence(harness_raw *raw, int quiet_ms)
{
    int64_t deadline_ms = harness_now_ms() + quiet_ms;
    char line[LINE_SIZE_MAX];
    for (;;) {
        harness_status status =
            harness_raw_read_line(raw, line, sizeof(line), remaining_ms(deadline_ms));
        if (status == HARNESS_TIMEOUT && raw->length == 0) return HARNESS_OK;
        if (status == HARNESS_TIMEOUT) {
            fprintf(stderr, "harness: expected silence, got '%.*s'\n", (int)raw->length,
                    raw->buffer);
            return HARNESS_MISMATCH;
        }
        if (status != HARNESS_OK) {
            fprintf(stderr, "harness: expected silence, got %s\n", status_text(status));
            return status;
        }
        if (raw_skip_ping(raw, line, "")) continue;
        fprintf(stderr, "harness: expected silence, got '%.200s'\n", line);
        return HARNESS_MISMATCH;
    }
}

static void copy_received(char *received, size_t received_size, size_t *copied, const char *bytes,
                          size_t count)
{
    if (received == NULL || received_size == 0) return;
    size_t room = received_size - 1 - *copied;
    size_t take = count < room ? count : room;
    memcpy(received + *copied, bytes, take);
    *copied += take;
    received[*copied] = '\0';
}

harness_status harness_raw_read_until_closed(harness_raw *raw, char *received, size_t received_size,
                                             size_t *received_total, int timeout_ms)
{
    int64_t deadline_ms = harness_now_ms() + timeout_ms;
    size_t copied = 0, total = 0;
    if (received != NULL && received_size > 0) received[0] = '\0';
    harness_status status = HARNESS_OK;
    while (status == HARNESS_OK) {
        copy_received(received, received_size, &copied, raw->buffer, raw->length);
        total += raw->length;
        raw->length = 0;
        status = raw_fill(raw, remaining_ms(deadline_ms));
        if (status == HARNESS_TIMEOUT && remaining_ms(deadline_ms) > 0) status = HARNESS_OK;
    }
    if (received_total != NULL) *received_total = total;
    if (status == HARNESS_CLOSED) return HARNESS_OK;
    fprintf(stderr, "harness: expected the server to close, got %s\n", status_text(status));
    return status == HARNESS_OK ? HARNESS_TIMEOUT : status;
}

harness_status harness_raw_expect_closed(harness_raw *raw, int timeout_ms)
{
    return harness_raw_read_until_closed(raw, NULL, 0, NULL, timeout_ms);
}

static harness_status raw_read_info(harness_raw *raw, char *info_out, size_t info_size)
{
    char line[LINE_SIZE_MAX];
    harness_status status = harness_raw_read_line(raw, line, sizeof(line), HARNESS_IO_TIMEOUT_MS);
    if (status != HARNESS_OK) return status;
    if (strncmp(line, "INFO ", 5) != 0) {
        fprintf(stderr, "harness: expected INFO, got '%.200s'\n", line);
        return HARNESS_MISMATCH;
    }
    if (info_out != NULL) snprintf(info_out, info_size, "%s", line);
    return HARNESS_OK;
}

harness_status harness_raw_handshake(harness_raw *raw, int port, const char *connect_json,
                                     char *info_out, size_t info_size)
{
    harness_status status = harness_raw_connect(raw, port, 0);
    if (status == HARNESS_OK) status = raw_read_info(raw, info_out, info_size);
    char command[TEXT_LINE_SIZE_MAX];
    snprintf(command, sizeof(command), "CONNECT %s\r\nPING\r\n", connect_json);
    if (status == HARNESS_OK) status = harness_raw_send_text(raw, command);
    char line[TEXT_LINE_SIZE_MAX];
    int64_t deadline_ms = harness_now_ms() + HARNESS_IO_TIMEOUT_MS;
    while (status == HARNESS_OK) {
        status = harness_raw_read_line(raw, line, sizeof(line), remaining_ms(deadline_ms));
        if (status != HARNESS_OK) break;
        if (strcmp(line, "PONG") == 0) return HARNESS_OK;
        if (strcmp(line, "+OK") == 0 || raw_skip_ping(raw, line, "PONG")) continue;
        fprintf(stderr, "harness: handshake expected PONG, got '%.200s'\n", line);
        status = HARNESS_MISMATCH;
    }
    return status;
}

void harness_raw_close(harness_raw *raw)
{
    if (raw->fd >= 0) close(raw->fd);
    harness_raw_init(raw);
}

void harness_raw_abort(harness_raw *raw)
{
    if (raw->fd >= 0) {
        struct linger reset = {.l_onoff = 1, .l_linger = 0};
        setsockopt(raw->fd, SOL_SOCKET, SO_LINGER, &reset, sizeof(reset));
    }
    harness_raw_close(raw);
}

/* ======================================================================= HTTP */

harness_status harness_http_get(int port, const char *path, char *response, size_t response_size,
                                int timeout_ms)
{
    harness_raw *raw = malloc(sizeof(*raw)); /* 64 KiB of buffer: not on the stack */
    if (raw == NULL) return HARNESS_ERROR;
    char request[TEXT_LINE_SIZE_MAX];
    snprintf(request, sizeof(request), "GET %s HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n", path);
    harness_status status = harness_raw_connect(raw, port, 0);
    if (status == HARNESS_OK) status = harness_raw_send_text(raw, request);
    if (status == HARNESS_OK)
        status = harness_raw_read_until_closed(raw, response, response_size, NULL, timeout_ms);
    harness_raw_close(raw);
    free(raw);
    return status;
}

/* ======================================================================= JSON */

static const char *skip_spaces(const char *cursor)
{
    while (*cursor == ' ' || *cursor == '\t')
        cursor++;
    return cursor;
}

harness_status harness_json_field(const char *json, const char *key, char *value, size_t value_size)
{
    char quoted[TEXT_LINE_SIZE_MAX];
    snprintf(quoted, sizeof(quoted), "\"%s\"", key);
    const char *cursor = strstr(json, quoted);
    if (cursor == NULL) return HARNESS_MISMATCH;
    cursor = skip_spaces(cursor + strlen(quoted));
    if (*cursor != ':') return HARNESS_MISMATCH;
    cursor = skip_spaces(cursor + 1);
    bool is_string = *cursor == '"';
    if (is_string) cursor++;
    const char *end = is_string ? strchr(cursor, '"') : cursor + strcspn(cursor, ",} ");
    if (end == NULL || (size_t)(end - cursor) >= value_size) return HARNESS_MISMATCH;
    memcpy(value, cursor, (size_t)(end - cursor));
    value[end - cursor] = '\0';
    return HARNESS_OK;
}

int harness_run(const char *program, const char *url, const char *const *arguments, char *output,
                size_t output_size)
{
    const char *argv[HARNESS_RUN_ARGUMENTS_MAX + 4] = {program};
    int argc = 1;
    if (url != NULL) argv[argc++] = "--server", argv[argc++] = url;
    for (int i = 0; arguments[i] != NULL && i < HARNESS_RUN_ARGUMENTS_MAX; i++)
        argv[argc++] = arguments[i];
    int pipe_fds[2];
    if (program == NULL || output_size == 0 || pipe(pipe_fds) != 0) return -1;
    pid_t pid = fork();
    if (pid == 0) {
        dup2(pipe_fds[1], 1);
        close(pipe_fds[0]);
        execv(program, (char *const *)argv);
        _exit(127);
    }
    close(pipe_fds[1]);
    size_t used = 0;
    ssize_t got;
    while (pid > 0 && used + 1 < output_size &&
           (got = read(pipe_fds[0], output + used, output_size - used - 1)) > 0)
        used += (size_t)got;
    output[used] = '\0';
    close(pipe_fds[0]);
    int status = 0;
    if (pid < 0 || waitpid(pid, &status, 0) != pid) return -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}
