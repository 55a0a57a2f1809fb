/* ingress_auth_test.c - the seed-format ingress's token and user (issue
 * 15, finding 6). argv[1] is kcobrad (it hosts the ingress; any other
 * server: skipped, exit 77).
 *
 *  - with ingress { token }, a connection whose first line is not
 *    AUTH#<token> gets ERROR#not authorized... and is closed, without its
 *    request being made; with the right token its lines are served;
 *  - with ingress { user: seed }, the ingress's requests have seed's
 *    permissions: seed may publish kc.req.allowed only, so an ingress of
 *    type "forbidden" is refused by the broker (the request never reaches
 *    the service, which would answer: the line gets ERROR#timeout), and an
 *    ingress of type "allowed" is served. Before, the ingress's requests
 *    had kcobrad's internal ingress role's permissions (kc.req.>);
 *  - a reload that takes kc.req.allowed from seed refuses the same ingress's
 *    next line (its connection has the user's new permissions: the old
 *    ones were freed with the old configuration);
 *  - with ingress { cert_file, key_file }, a TLS client (verifying the
 *    server with the test's CA) with the token is served, several lines on
 *    one connection; a plain-TCP client's line gets no answer (the
 *    connection closes: not a TLS handshake). */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <unistd.h>

#include "fixture.h"
#include "kingcobra/kingcobra.h"

enum {
    EXIT_SKIP = 77,
    CONFIG_BYTES_MAX = 2048,
    LINE_BYTES_MAX = 1024,
    ANSWER_WAIT_MS = 10000,
};

static const char USERS[] =
    "authorization {\n  users: [\n"
    "    {user: svc, password: s3cr3t}\n"
    "    {user: seed, password: s3cr3t, permissions: {publish: {allow: [\"kc.req.allowed\"]}, "
    "subscribe: {allow: [\"_INBOX.>\"]}}}\n"
    "  ]\n}\n";

static void handler(const kc_request *request, kc_response *response, void *closure)
{
    (void)request, (void)closure;
    kc_response_set_payload(response, "served", 6);
}

typedef struct service {
    kc_client *client;
    kc_service *service;
} service;

static void serve(fixture *f, service *out, const char *type, bool with_user)
{
    kc_client_options options;
    kc_client_options_init(&options);
    options.servers = f->server.url;
    options.node = "svc";
    if (with_user) options.user = "svc", options.password = "s3cr3t";
    assert_int_equal(kc_client_open(&out->client, &options), KC_OK);
    assert_int_equal(kc_service_start(&out->service, out->client, type, handler, NULL, NULL),
                     KC_OK);
}

static void unserve(service *s)
{
    kc_service_stop(s->service);
    kc_client_close(s->client, 2000);
}

static int start(fixture *f, const char *users, const char *ingress_keys)
{
    int port = 0;
    assert_int_equal(harness_port_pick(&port), HARNESS_OK);
    char config[CONFIG_BYTES_MAX];
    snprintf(config, sizeof config,
             "%sdata_dir: \"%s/data\"\ningress {\n  enabled: true\n  listen: \"127.0.0.1:%d\"\n  "
             "timeout: \"1s\"\n"
             "%s}\n",
             users, f->server.directory_path, port, ingress_keys);
    fixture_start(f, config);
    return port;
}

/* Sends text on a new connection; the first line answered into line. One
 * connection at a time (static: nothing leaks when an assertion jumps out). */
static harness_raw *exchange(int port, const char *text, char *line)
{
    static harness_raw storage;
    harness_raw *raw = &storage;
    harness_raw_init(raw);
    assert_int_equal(harness_raw_connect(raw, port, 0), HARNESS_OK);
    assert_int_equal(harness_raw_send_text(raw, text), HARNESS_OK);
    assert_int_equal(harness_raw_read_line(raw, line, LINE_BYTES_MAX, ANSWER_WAIT_MS), HARNESS_OK);
    return raw;
}

static void expect_refused(int port, const char *text)
{
    char line[LINE_BYTES_MAX];
    harness_raw *raw = exchange(port, text, line);
    assert_non_null(strstr(line, "ERROR#not authorized"));
    assert_int_equal(harness_raw_expect_closed(raw, ANSWER_WAIT_MS), HARNESS_OK);
    harness_raw_close(raw);
}

static void test_token(void **state)
{
    fixture *f = fixture_of(state);
    int port = start(f, "", "  type: \"t\"\n  token: \"open-sesame\"\n");
    service s;
    serve(f, &s, "t", false);
    expect_refused(port, "REQUEST#c#1#hello\n");
    expect_refused(port, "AUTH#open-sesam\nREQUEST#c#1#hello\n");
    expect_refused(port, "AUTH#open-sesame-\r\nREQUEST#c#1#hello\n");
    char line[LINE_BYTES_MAX];
    harness_raw *raw = exchange(port, "AUTH#open-sesame\r\nREQUEST#c#1#hello\n", line);
    assert_string_equal(line, "REPLY#c#1#served");
    harness_raw_close(raw);
    unserve(&s);
}

/* An ingress of type as seed: its first line's answer starts with prefix. */
static void ingress_as_seed(fixture *f, const char *type, const char *prefix)
{
    char keys[128];
    snprintf(keys, sizeof keys, "  type: \"%s\"\n  user: \"seed\"\n", type);
    int port = start(f, USERS, keys);
    service s;
    serve(f, &s, type, true);
    char line[LINE_BYTES_MAX];
    harness_raw *raw = exchange(port, "REQUEST#c#1#hello\n", line);
    if (strncmp(line, prefix, strlen(prefix)) != 0)
        fail_msg("type %s as seed: %s, not %s...", type, line, prefix);
    harness_raw_close(raw);
    unserve(&s);
}

static void test_user_permissions(void **state)
{
    ingress_as_seed(fixture_of(state), "forbidden", "ERROR#");
}

static void test_user_permissions_allow(void **state)
{
    ingress_as_seed(fixture_of(state), "allowed", "REPLY#c#1#served");
}

static const char USERS_TIGHTER[] =
    "authorization {\n  users: [\n"
    "    {user: svc, password: s3cr3t}\n"
    "    {user: seed, password: s3cr3t, permissions: {publish: {allow: [\"kc.req.other\"]}, "
    "subscribe: {allow: [\"_INBOX.>\"]}}}\n"
    "  ]\n}\n";

static void test_user_permissions_reload(void **state)
{
    fixture *f = fixture_of(state);
    int port = start(f, USERS, "  type: \"allowed\"\n  user: \"seed\"\n");
    service s;
    serve(f, &s, "allowed", true);
    char line[LINE_BYTES_MAX];
    harness_raw *raw = exchange(port, "REQUEST#c#1#hello\n", line);
    assert_string_equal(line, "REPLY#c#1#served");
    harness_raw_close(raw);
    char config[CONFIG_BYTES_MAX];
    snprintf(config, sizeof config,
             "%sdata_dir: \"%s/data\"\ningress {\n  enabled: true\n  listen: \"127.0.0.1:%d\"\n"
             "  timeout: \"1s\"\n  type: \"allowed\"\n  user: \"seed\"\n}\n",
             USERS_TIGHTER, f->server.directory_path, port);
    FILE *file = fopen(f->server.config_path, "w");
    assert_non_null(file);
    assert_int_equal(fputs(config, file) >= 0, 1);
    assert_int_equal(fclose(file), 0);
    assert_int_equal(harness_server_signal(&f->server, SIGHUP), HARNESS_OK);
    bool refused = false;
    for (int i = 0; i < 20 && !refused; i++) { /* the reload is applied by the server's loop */
        raw = exchange(port, "REQUEST#c#2#hello\n", line);
        refused = strncmp(line, "ERROR#", 6) == 0;
        harness_raw_close(raw);
        if (!refused) harness_sleep_ms(100);
    }
    assert_true(refused);
    unserve(&s);
}

/* A TLS client: connects, verifies the server against ca.pem, sends text,
 * reads until lines LFs arrived (into answer). */
static void tls_exchange(fixture *f, int port, const char *text, int lines, char *answer,
                         size_t size)
{
    char ca[HARNESS_PATH_SIZE_MAX + 16];
    assert_int_equal(harness_server_path(&f->server, "ca.pem", ca, sizeof ca), HARNESS_OK);
    SSL_CTX *context = SSL_CTX_new(TLS_client_method());
    assert_non_null(context);
    assert_int_equal(SSL_CTX_load_verify_locations(context, ca, NULL), 1);
    SSL_CTX_set_verify(context, SSL_VERIFY_PEER, NULL);
    int fd = harness_tcp_connect(port, 0);
    assert_true(fd >= 0);
    SSL *ssl = SSL_new(context);
    SSL_set_fd(ssl, fd);
    SSL_set_tlsext_host_name(ssl, "localhost");
    int connected = SSL_connect(ssl);
    if (connected != 1) {
        char reason[256];
        ERR_error_string_n(ERR_get_error(), reason, sizeof reason);
        fail_msg("TLS handshake with the ingress: %s", reason);
    }
    assert_int_equal(SSL_write(ssl, text, (int)strlen(text)), (int)strlen(text));
    size_t used = 0;
    int seen = 0;
    while (seen < lines && used + 1 < size) {
        int got = SSL_read(ssl, answer + used, (int)(size - used - 1));
        if (got <= 0) break;
        for (int i = 0; i < got; i++)
            seen += answer[used + (size_t)i] == '\n';
        used += (size_t)got;
    }
    answer[used] = '\0';
    SSL_shutdown(ssl);
    SSL_free(ssl);
    close(fd);
    SSL_CTX_free(context);
}

static void test_tls(void **state)
{
    fixture *f = fixture_of(state);
    assert_int_equal(harness_tls_generate(&f->server), HARNESS_OK);
    char keys[1024];
    snprintf(keys, sizeof keys,
             "  type: \"t\"\n  token: \"open-sesame\"\n  cert_file: \"%s/server-cert.pem\"\n"
             "  key_file: \"%s/server-key.pem\"\n",
             f->server.directory_path, f->server.directory_path);
    int port = start(f, "", keys);
    service s;
    serve(f, &s, "t", false);
    char answer[LINE_BYTES_MAX];
    tls_exchange(f, port, "AUTH#open-sesame\nREQUEST#c#1#one\nREQUEST#c#2#two\n", 2, answer,
                 sizeof answer);
    assert_string_equal(answer, "REPLY#c#1#served\nREPLY#c#2#served\n");
    tls_exchange(f, port, "AUTH#wrong\nREQUEST#c#1#one\n", 1, answer, sizeof answer);
    assert_non_null(strstr(answer, "ERROR#not authorized"));
    /* plain TCP: no answer, the connection is closed */
    static harness_raw raw;
    harness_raw_init(&raw);
    assert_int_equal(harness_raw_connect(&raw, port, 0), HARNESS_OK);
    assert_int_equal(harness_raw_send_text(&raw, "AUTH#open-sesame\nREQUEST#c#1#one\n"),
                     HARNESS_OK);
    char received[256] = "";
    size_t total = 0;
    assert_int_equal(
        harness_raw_read_until_closed(&raw, received, sizeof received, &total, ANSWER_WAIT_MS),
        HARNESS_OK);
    assert_null(strstr(received, "REPLY#"));
    harness_raw_close(&raw);
    unserve(&s);
}

int main(int argc, char **argv)
{
    if (!fixture_parse_arguments(argc, argv)) return 2;
    if (strstr(fixture_server_binary, "kcobrad") == NULL) {
        fprintf(stderr, "ingress_auth_test: kcobrad hosts the ingress; skipping\n");
        return EXIT_SKIP;
    }
    const struct CMUnitTest tests[] = {
        FIXTURE_CASE(test_token),
        FIXTURE_CASE(test_user_permissions),
        FIXTURE_CASE(test_user_permissions_allow),
        FIXTURE_CASE(test_user_permissions_reload),
        FIXTURE_CASE(test_tls),
    };
    return cmocka_run_group_tests(tests, fixture_group_setup, fixture_group_teardown);
}
