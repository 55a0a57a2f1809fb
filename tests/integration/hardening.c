/*
 * Differential integration cases for a server under abuse that costs the
 * abuser little: more connections than the server has descriptors, stalled
 * half-requests on the monitoring port, a TLS 1.2 client that offers only
 * RSA key exchange (no forward secrecy), and a flood of bad logins.
 *
 * The server binary is argv[1]. Each case states what nats-server 2.9.10 was
 * seen to do and expects kcobrad to do as well: stay quiet in its log and
 * idle on the CPU while out of descriptors, serve again once descriptors
 * come back, answer /healthz while slots are held by stalled clients, and
 * refuse the RSA-only client. The bad-login flood checks kcobrad's log only
 * (nats-server's log lines differ; it is skipped there).
 *
 * Limits: the bounds are generous (a spinning loop writes hundreds of
 * thousands of lines and burns a whole core; a quiet one a few lines and
 * milliseconds), so a loaded machine does not fail them, and a server that
 * is only somewhat noisy is not caught.
 */
#include "fixture.h"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

enum {
    LOG_TEXT_BYTES_MAX = 64 * 1024 * 1024, /* what a log is read up to */
    /* Out of descriptors: the server may hold 64; many more connect. */
    DESCRIPTOR_LIMIT = 64,
    EXTRA_CONNECTIONS = 200,
    SETTLE_MS = 300,
    OBSERVE_MS = 2000,
    OBSERVE_LOG_LINES_MAX = 40, /* a paused accept logs once a second */
    OBSERVE_CPU_MS_MAX = 1000,  /* half a core; a busy loop burns all of it */
    RECOVERY_ATTEMPTS_MAX = 5,  /* each bounded by HARNESS_IO_TIMEOUT_MS */
    RECOVERY_PAUSE_MS = 200,
    /* Monitoring: more stalled half-requests than kcobrad had slots (64). */
    STALLED_MONITOR_CONNECTIONS = 100,
    HEALTHZ_TIMEOUT_MS = 2000,
    RESPONSE_BYTES_MAX = 4096,
    /* TLS */
    TLS_IO_TIMEOUT_MS = 2000,
    COMMAND_BYTES_MAX = 2048,
    /* Bad logins */
    BAD_LOGINS = 2000,
    BAD_LOGIN_LOG_LINES_MAX = 200, /* one line per refusal would be 2,000 or more */
    LINE_BYTES_MAX = 4096,
};

static bool server_is_kcobrad(void)
{
    return strstr(fixture_server_binary, "kcobrad") != NULL;
}

/* Lines in the server's log so far. */
static long log_line_count(const fixture *f)
{
    FILE *file = fopen(f->server.log_path, "r");
    if (file == NULL) return 0;
    long lines = 0;
    long bytes = 0;
    int c;
    while ((c = getc(file)) != EOF && bytes++ < LOG_TEXT_BYTES_MAX)
        lines += c == '\n';
    fclose(file);
    return lines;
}

/* User plus system CPU time of the server process so far. */
static long long process_cpu_ms(pid_t pid)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *file = fopen(path, "r");
    assert_non_null(file);
    char text[1024];
    size_t len = fread(text, 1, sizeof text - 1, file);
    fclose(file);
    text[len] = '\0';
    /* The command name may hold spaces and parentheses: fields count from
     * the last ')'. utime and stime are fields 14 and 15, i.e. the 12th and
     * 13th after the state (field 3). */
    const char *cursor = strrchr(text, ')');
    assert_non_null(cursor);
    unsigned long long utime = 0, stime = 0;
    int matched = sscanf(cursor + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu",
                         &utime, &stime);
    assert_int_equal(matched, 2);
    long ticks_per_second = sysconf(_SC_CLK_TCK);
    return (long long)((utime + stime) * 1000ULL / (unsigned long long)ticks_per_second);
}

/* ==================================================== out of descriptors */

static void close_all(int *fds, int count)
{
    for (int i = 0; i < count; i++)
        if (fds[i] >= 0) close(fds[i]);
}

/* nats-server sleeps between failed accepts and logs about once a second;
 * kcobrad used to retry at once, spinning a core and writing about 400,000
 * lines a second. Once the extra connections are gone, a client is served. */
static void test_out_of_descriptors(void **state)
{
    fixture *f = fixture_of(state);
    f->server.descriptor_limit = DESCRIPTOR_LIMIT;
    fixture_start(f, NULL);
    int fds[EXTRA_CONNECTIONS];
    int connected = 0;
    for (int i = 0; i < EXTRA_CONNECTIONS; i++) {
        fds[i] = harness_tcp_connect(f->server.port, 0);
        connected += fds[i] >= 0;
    }
    harness_sleep_ms(SETTLE_MS);
    long lines_before = log_line_count(f);
    long long cpu_before_ms = process_cpu_ms(f->server.pid);
    harness_sleep_ms(OBSERVE_MS);
    long lines = log_line_count(f) - lines_before;
    long long cpu_ms = process_cpu_ms(f->server.pid) - cpu_before_ms;
    close_all(fds, EXTRA_CONNECTIONS);
    fprintf(stderr, "out of descriptors: %d connected, %ld log lines and %lld ms CPU in %d ms\n",
            connected, lines, cpu_ms, OBSERVE_MS);
    assert_true(connected > DESCRIPTOR_LIMIT); /* the backlog held the rest */
    assert_true(lines < OBSERVE_LOG_LINES_MAX);
    assert_true(cpu_ms < OBSERVE_CPU_MS_MAX);
    harness_status status = HARNESS_ERROR;
    for (int attempt = 0; attempt < RECOVERY_ATTEMPTS_MAX && status != HARNESS_OK; attempt++) {
        harness_raw raw;
        status = harness_raw_handshake(&raw, f->server.port, FIXTURE_FAST_CONNECT, NULL, 0);
        harness_raw_close(&raw);
        if (status != HARNESS_OK) harness_sleep_ms(RECOVERY_PAUSE_MS);
    }
    assert_int_equal(status, HARNESS_OK);
}

/* ==================================================== monitoring slots */

/* Clients that send half a request line and stall must not keep /healthz
 * from answering 200 (nats-server's Go HTTP server has no slot limit;
 * kcobrad's 64 slots answered 503 until their read deadline). */
static void test_monitor_stalled_requests(void **state)
{
    fixture *f = fixture_of(state);
    f->server.monitor_enabled = true;
    fixture_start(f, NULL);
    int fds[STALLED_MONITOR_CONNECTIONS];
    static const char HALF_REQUEST[] = "GET /varz HT";
    for (int i = 0; i < STALLED_MONITOR_CONNECTIONS; i++) {
        fds[i] = harness_tcp_connect(f->server.monitor_port, 0);
        if (fds[i] >= 0) {
            ssize_t sent = send(fds[i], HALF_REQUEST, sizeof HALF_REQUEST - 1, MSG_NOSIGNAL);
            (void)sent;
        }
    }
    harness_sleep_ms(SETTLE_MS); /* every stalled connection is in */
    char response[RESPONSE_BYTES_MAX] = "";
    int64_t started_ms = harness_now_ms();
    harness_status status = harness_http_get(f->server.monitor_port, "/healthz", response,
                                             sizeof response, HEALTHZ_TIMEOUT_MS);
    int64_t elapsed_ms = harness_now_ms() - started_ms;
    close_all(fds, STALLED_MONITOR_CONNECTIONS);
    fprintf(stderr, "/healthz with %d stalled: %.40s... in %lld ms\n", STALLED_MONITOR_CONNECTIONS,
            response, (long long)elapsed_ms);
    assert_int_equal(status, HARNESS_OK);
    assert_true(strncmp(response, "HTTP/1.1 200", 12) == 0 ||
                strncmp(response, "HTTP/1.0 200", 12) == 0);
}

/* ==================================================== TLS forward secrecy */

static void run_command(const char *command)
{
    int status = system(command);
    if (status != 0) fail_msg("'%s' failed with %d", command, status);
}

/* An RSA certificate: RSA key exchange needs one, so a server with an
 * ECDSA certificate would refuse the RSA-only client whatever its list. */
static void start_rsa_tls_server(fixture *f)
{
    const char *directory = f->server.directory_path;
    char command[COMMAND_BYTES_MAX];
    snprintf(command, sizeof command,
             "openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=127.0.0.1 "
             "-keyout '%s/rsa-key.pem' -out '%s/rsa-cert.pem' >/dev/null 2>&1",
             directory, directory);
    run_command(command);
    char config[COMMAND_BYTES_MAX];
    snprintf(config, sizeof config,
             "tls {\n  cert_file: \"%s/rsa-cert.pem\"\n  key_file: \"%s/rsa-key.pem\"\n"
             "  timeout: 2\n}\n",
             directory, directory);
    fixture_start(f, config);
}

/* Reads INFO in plain text, as every NATS client does before TLS, then
 * tries a TLS 1.2 handshake offering only ciphers; true if it completed. */
static bool tls12_handshake_with(fixture *f, const char *ciphers)
{
    harness_raw *raw = fixture_raw_connect(f, 0);
    char info[LINE_BYTES_MAX];
    assert_int_equal(harness_raw_read_line(raw, info, sizeof info, HARNESS_IO_TIMEOUT_MS),
                     HARNESS_OK);
    assert_true(strncmp(info, "INFO ", 5) == 0);
    struct timeval timeout = {.tv_sec = TLS_IO_TIMEOUT_MS / 1000};
    setsockopt(raw->fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
    setsockopt(raw->fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof timeout);
    SSL_CTX *context = SSL_CTX_new(TLS_client_method());
    assert_non_null(context);
    SSL_CTX_set_min_proto_version(context, TLS1_2_VERSION);
    SSL_CTX_set_max_proto_version(context, TLS1_2_VERSION);
    assert_int_equal(SSL_CTX_set_cipher_list(context, ciphers), 1);
    SSL *ssl = SSL_new(context);
    assert_non_null(ssl);
    SSL_set_fd(ssl, raw->fd);
    bool completed = SSL_connect(ssl) == 1;
    fprintf(stderr, "TLS 1.2 offering %s: %s\n", ciphers,
            completed ? SSL_get_cipher_name(ssl) : "refused");
    ERR_clear_error();
    SSL_free(ssl);
    SSL_CTX_free(context);
    return completed;
}

/* nats.c's SSLCiphers test expects "-ALL:RSA" (RSA key exchange only, no
 * forward secrecy) to be refused, as nats-server's ECDHE-only list does;
 * an ECDHE suite and a nats.c client with its defaults connect. */
static void test_tls_refuses_rsa_key_exchange(void **state)
{
    fixture *f = fixture_of(state);
    start_rsa_tls_server(f);
    assert_false(tls12_handshake_with(f, "-ALL:RSA"));
    assert_true(tls12_handshake_with(f, "ECDHE-RSA-AES128-GCM-SHA256"));
    natsOptions *options = fixture_options(f);
    assert_int_equal(natsOptions_SetSecure(options, true), NATS_OK);
    assert_int_equal(natsOptions_SkipServerVerification(options, true), NATS_OK);
    natsConnection *connection = fixture_connect_with(f, options);
    fixture_flush(connection);
}

/* ==================================================== bad logins */

/* Each refused CONNECT wrote two lines ("Authorization Error" and the
 * close): 2,000 bad logins must write far fewer than 2,000. */
static void test_bad_login_flood_log(void **state)
{
    if (!server_is_kcobrad()) skip(); /* nats-server's log lines differ */
    fixture *f = fixture_of(state);
    fixture_start(f, "authorization {\n  users: [ {user: alice, password: wonder} ]\n}\n");
    long lines_before = log_line_count(f);
    static const char BAD_CONNECT[] =
        "CONNECT {\"verbose\":false,\"user\":\"alice\",\"pass\":\"wander\"}\r\nPING\r\n";
    static harness_raw raw;
    int refused = 0;
    for (int i = 0; i < BAD_LOGINS; i++) {
        if (harness_raw_connect(&raw, f->server.port, 0) != HARNESS_OK) continue;
        char received[LINE_BYTES_MAX];
        if (harness_raw_send(&raw, BAD_CONNECT, sizeof BAD_CONNECT - 1) == HARNESS_OK &&
            harness_raw_read_until_closed(&raw, received, sizeof received, NULL,
                                          HARNESS_IO_TIMEOUT_MS) == HARNESS_OK &&
            strstr(received, "Authorization Violation") != NULL)
            refused++;
        harness_raw_close(&raw);
    }
    long lines = log_line_count(f) - lines_before;
    fprintf(stderr, "%d bad logins refused, %ld log lines\n", refused, lines);
    assert_int_equal(refused, BAD_LOGINS);
    assert_true(lines < BAD_LOGIN_LOG_LINES_MAX);
}

/* ======================================================================= main */

int main(int argc, char **argv)
{
    if (!fixture_parse_arguments(argc, argv)) return 2;
    const struct CMUnitTest tests[] = {
        FIXTURE_CASE(test_out_of_descriptors),
        FIXTURE_CASE(test_monitor_stalled_requests),
        FIXTURE_CASE(test_tls_refuses_rsa_key_exchange),
        FIXTURE_CASE(test_bad_login_flood_log),
    };
    return cmocka_run_group_tests_name("hardening", tests, fixture_group_setup,
                                       fixture_group_teardown);
}
