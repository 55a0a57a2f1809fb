/* services.c - the NATS services protocol (docs/protocol.md, "Services
 * discovery"): kcobrad's components, or the same components run as
 * `kcobra <part> serve` against nats-server, and a `kcobra serve`, answer
 * $SRV.PING, $SRV.INFO and $SRV.STATS; `kcobra services --json` lists them;
 * the stats count what was sent; error replies carry Kc-Error and the NATS
 * service error headers.
 *
 * Users are configured (the components log in as their roles on kcobrad,
 * as the "admin" user on nats-server): a service whose user may not
 * subscribe to $SRV.> still serves, and is only left out of the list.
 *
 * Usage: services SERVER_BINARY KCOBRA_BINARY */
#include <jansson.h>
#include <nats/nats.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* clang-format off */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
/* clang-format on */

#include "harness.h"

enum {
    SKIP_EXIT_CODE = 77,
    CONFIG_BYTES_MAX = 4096,
    OUTPUT_BYTES_MAX = 64 * 1024,
    READY_TIMEOUT_MS = 30000,
    REQUEST_TIMEOUT_MS = 10000, /* a shell command per request, on a loaded machine */
    GOOD_REQUESTS = 5,
    BAD_REQUESTS = 3,
    CHILDREN_MAX = 8,
};

#define PASSWORD "services-pw"
/* The service under test: "fail" is refused with code 3, anything else echoed. */
#define CALC_COMMAND                                                                               \
    "read x; if [ \"$x\" = fail ]; then echo bad input >&2; exit 3; fi; echo \"ok $x\""

static const char *server_binary;
static const char *kcobra_binary;
static bool components_in_server;

typedef struct world {
    harness_server server;
    pid_t children[CHILDREN_MAX];
    int child_count;
    natsConnection *admin;
} world;

static world the_world;

/* admin may do anything; restricted may serve kc.req.plain and nothing of $SRV. */
static const char users_block[] =
    "authorization {\n"
    "  users: [\n"
    "    {user: admin, password: " PASSWORD "}\n"
    "    {user: restricted, password: " PASSWORD
    ", permissions: {publish: [\"_INBOX.>\"], subscribe: [\"kc.req.plain\", \"_INBOX.>\"]}}\n"
    "  ]\n"
    "}\n";

/* ---- processes ------------------------------------------------------------------- */

/* kcobra ARGS... --server URL --user USER --password PW, stderr to <dir>/<log>.log. */
static void spawn_kcobra(world *w, const char *log, const char *user, const char *const *args)
{
    assert_true(w->child_count < CHILDREN_MAX);
    char log_path[HARNESS_PATH_SIZE_MAX + 32];
    snprintf(log_path, sizeof log_path, "%.200s/%s.log", w->server.directory_path, log);
    char *argv[24];
    int argc = 0;
    argv[argc++] = (char *)kcobra_binary;
    for (; args[argc - 1] != NULL && argc < 16; argc++)
        argv[argc] = (char *)args[argc - 1];
    const char *tail[] = {"--server", w->server.url, "--user", user, "--password", PASSWORD};
    for (size_t index = 0; index < sizeof tail / sizeof tail[0]; index++)
        argv[argc++] = (char *)tail[index];
    argv[argc] = NULL;
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        if (freopen(log_path, "a", stderr) == NULL || freopen("/dev/null", "w", stdout) == NULL)
            _exit(127);
        execv(kcobra_binary, argv);
        _exit(127);
    }
    w->children[w->child_count++] = pid;
}

/* Runs `kcobra services --json [--name NAME]` as admin; its stdout in out. */
static void services_json(world *w, const char *name, char *out, size_t out_size)
{
    char out_path[HARNESS_PATH_SIZE_MAX + 32];
    snprintf(out_path, sizeof out_path, "%.200s/services.out", w->server.directory_path);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        if (freopen(out_path, "w", stdout) == NULL) _exit(127);
        execl(kcobra_binary, kcobra_binary, "services", "--json", "--timeout", "5s", "--server",
              w->server.url, "--user", "admin", "--password", PASSWORD,
              name != NULL ? "--name" : (char *)NULL, name, (char *)NULL);
        _exit(127);
    }
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    FILE *file = fopen(out_path, "r");
    assert_non_null(file);
    size_t length = fread(out, 1, out_size - 1, file);
    out[length] = '\0';
    fclose(file);
}

/* The line of services whose "name" is name, parsed; NULL if none. */
static json_t *service_named(const char *lines, const char *name)
{
    const char *line = lines;
    while (line != NULL && *line != '\0') {
        const char *end = strchr(line, '\n');
        size_t length = end != NULL ? (size_t)(end - line) : strlen(line);
        json_t *object = json_loadb(line, length, 0, NULL);
        const char *got = json_string_value(json_object_get(object, "name"));
        if (got != NULL && strcmp(got, name) == 0) return object;
        json_decref(object);
        line = end != NULL ? end + 1 : NULL;
    }
    return NULL;
}

/* Until every name in names is listed (components start after the port). */
static void wait_listed(world *w, const char *const *names, size_t count)
{
    static char out[OUTPUT_BYTES_MAX];
    int64_t deadline_ms = harness_now_ms() + READY_TIMEOUT_MS;
    size_t found = 0;
    while (found < count && harness_now_ms() < deadline_ms) {
        services_json(w, NULL, out, sizeof out);
        found = 0;
        for (size_t index = 0; index < count; index++) {
            json_t *object = service_named(out, names[index]);
            if (object != NULL) found++;
            json_decref(object);
        }
        if (found < count) harness_sleep_ms(200);
    }
    if (found < count) fprintf(stderr, "listed:\n%s\n", out);
    assert_int_equal(found, count);
}

static natsConnection *connect_as(const world *w, const char *user)
{
    natsOptions *options = NULL;
    natsConnection *connection = NULL;
    assert_int_equal(natsOptions_Create(&options), NATS_OK);
    natsOptions_SetURL(options, w->server.url);
    natsOptions_SetUserInfo(options, user, PASSWORD);
    assert_int_equal(natsConnection_Connect(&connection, options), NATS_OK);
    natsOptions_Destroy(options);
    return connection;
}

static const char *const component_names[] = {"kc-persister", "kc-keeper", "kc-ledger",
                                              "kc-arbiter"};

static void start_components(world *w)
{
    char queue_dir[HARNESS_PATH_SIZE_MAX + 16], ledger_dir[HARNESS_PATH_SIZE_MAX + 16],
        keeper_file[HARNESS_PATH_SIZE_MAX + 32];
    snprintf(queue_dir, sizeof queue_dir, "%.200s/queue", w->server.directory_path);
    snprintf(ledger_dir, sizeof ledger_dir, "%.200s/ledger", w->server.directory_path);
    snprintf(keeper_file, sizeof keeper_file, "%.200s/suggestions.jsonl", w->server.directory_path);
    const char *queue[] = {"queue", "serve", "--dir", queue_dir, NULL};
    const char *ledger[] = {"ledger", "serve", "--dir", ledger_dir, NULL};
    const char *keeper[] = {"keeper", "serve", "--file", keeper_file, NULL};
    const char *arbiter[] = {"arbiter", "serve", "--data-dir", w->server.directory_path, NULL};
    spawn_kcobra(w, "queue", "admin", queue);
    spawn_kcobra(w, "ledger", "admin", ledger);
    spawn_kcobra(w, "keeper", "admin", keeper);
    spawn_kcobra(w, "arbiter", "admin", arbiter);
}

static int setup(void **state)
{
    world *w = &the_world;
    memset(w, 0, sizeof *w);
    if (harness_server_init(&w->server, server_binary) != HARNESS_OK) return -1;
    char config[CONFIG_BYTES_MAX];
    if (components_in_server)
        snprintf(config, sizeof config,
                 "%sdata_dir: \"%.200s/data\"\nledger { enabled: true }\n"
                 "arbiter { enabled: true }\n",
                 users_block, w->server.directory_path);
    else
        snprintf(config, sizeof config, "%s", users_block);
    if (harness_server_start(&w->server, config) != HARNESS_OK) return -1;
    if (!components_in_server) start_components(w);
    const char *calc[] = {"serve", "calc", "--exec", CALC_COMMAND, NULL};
    spawn_kcobra(w, "calc", "admin", calc);
    const char *plain[] = {"serve", "plain", "--exec", "cat", NULL};
    spawn_kcobra(w, "plain", "restricted", plain);
    w->admin = connect_as(w, "admin");
    const char *const expected[] = {"kc-persister", "kc-keeper", "kc-ledger", "kc-arbiter", "calc"};
    wait_listed(w, expected, sizeof expected / sizeof expected[0]);
    *state = w;
    return 0;
}

static int teardown(void **state)
{
    world *w = *state;
    natsConnection_Destroy(w->admin);
    for (int index = 0; index < w->child_count; index++) {
        kill(w->children[index], SIGTERM);
        waitpid(w->children[index], NULL, 0);
    }
    harness_server_cleanup(&w->server);
    return 0;
}

/* ---- helpers ---------------------------------------------------------------------- */

static const char *header(natsMsg *message, const char *name)
{
    const char *value = NULL;
    return natsMsgHeader_Get(message, name, &value) == NATS_OK && value != NULL ? value : "";
}

static json_int_t endpoint_integer(json_t *service, const char *endpoint, const char *key)
{
    json_t *endpoints = json_object_get(service, "endpoints");
    size_t index;
    json_t *item;
    json_array_foreach(endpoints, index, item)
    {
        if (strcmp(json_string_value(json_object_get(item, "name")), endpoint) == 0)
            return json_integer_value(json_object_get(item, key));
    }
    fail_msg("no endpoint %s", endpoint);
    return -1;
}

static json_t *service_now(world *w, const char *name)
{
    static char out[OUTPUT_BYTES_MAX];
    services_json(w, name, out, sizeof out);
    json_t *service = service_named(out, name);
    if (service == NULL) fprintf(stderr, "listed:\n%s\n", out);
    assert_non_null(service);
    return service;
}

/* ---- cases ------------------------------------------------------------------------ */

/* Every service answers with the info schema's fields; the components name
 * their node and type; the restricted user's service is not listed. */
static void test_listed_with_info(void **state)
{
    world *w = *state;
    for (size_t index = 0; index < sizeof component_names / sizeof component_names[0]; index++) {
        json_t *service = service_now(w, component_names[index]);
        assert_string_equal(json_string_value(json_object_get(service, "type")),
                            "io.nats.micro.v1.info_response");
        assert_non_null(json_string_value(json_object_get(service, "id")));
        assert_non_null(json_string_value(json_object_get(service, "version")));
        assert_non_null(json_string_value(json_object_get(service, "description")));
        json_t *metadata = json_object_get(service, "metadata");
        assert_non_null(json_string_value(json_object_get(metadata, "kc_node")));
        assert_non_null(json_string_value(json_object_get(metadata, "kc_type")));
        assert_true(json_array_size(json_object_get(service, "endpoints")) > 0);
        assert_non_null(json_string_value(json_object_get(service, "started")));
        json_decref(service);
    }
    json_t *calc = service_now(w, "calc");
    json_t *endpoint = json_array_get(json_object_get(calc, "endpoints"), 0);
    assert_string_equal(json_string_value(json_object_get(endpoint, "subject")), "kc.req.calc");
    assert_string_equal(json_string_value(json_object_get(endpoint, "queue_group")), "calc");
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(calc, "metadata"), "kc_type")), "calc");
    json_decref(calc);
    static char out[OUTPUT_BYTES_MAX];
    services_json(w, NULL, out, sizeof out);
    assert_null(service_named(out, "plain"));
}

/* N good and M failing requests: the stats count them; each refusal carries
 * Kc-Error and the NATS service error headers. */
static void test_stats_count_requests(void **state)
{
    world *w = *state;
    for (int index = 0; index < GOOD_REQUESTS + BAD_REQUESTS; index++) {
        bool bad = index >= GOOD_REQUESTS;
        natsMsg *reply = NULL;
        assert_int_equal(natsConnection_RequestString(&reply, w->admin, "kc.req.calc",
                                                      bad ? "fail" : "fine", REQUEST_TIMEOUT_MS),
                         NATS_OK);
        if (bad) {
            assert_string_equal(header(reply, "Kc-Error"), "3 bad input");
            assert_string_equal(header(reply, "Nats-Service-Error-Code"), "3");
            assert_string_equal(header(reply, "Nats-Service-Error"), "bad input");
        } else {
            assert_string_equal(header(reply, "Nats-Service-Error-Code"), "");
            assert_string_equal(header(reply, "Nats-Service-Error"), "");
        }
        natsMsg_Destroy(reply);
    }
    json_t *calc = service_now(w, "calc");
    assert_int_equal(endpoint_integer(calc, "calc", "num_requests"), GOOD_REQUESTS + BAD_REQUESTS);
    assert_int_equal(endpoint_integer(calc, "calc", "num_errors"), BAD_REQUESTS);
    assert_true(endpoint_integer(calc, "calc", "processing_time") > 0);
    assert_true(endpoint_integer(calc, "calc", "average_processing_time") > 0);
    json_t *endpoint = json_array_get(json_object_get(calc, "endpoints"), 0);
    assert_string_equal(json_string_value(json_object_get(endpoint, "last_error")), "3:bad input");
    json_decref(calc);
}

/* The components count their requests and refusals too. */
static void test_component_stats(void **state)
{
    world *w = *state;
    natsMsg *reply = NULL;
    assert_int_equal(natsConnection_RequestString(&reply, w->admin, "kc.ledger.balance",
                                                  "{\"wallet\":\"nonsense\"}", REQUEST_TIMEOUT_MS),
                     NATS_OK);
    assert_string_not_equal(header(reply, "Kc-Error"), "");
    assert_string_not_equal(header(reply, "Nats-Service-Error-Code"), "");
    natsMsg_Destroy(reply);
    assert_int_equal(
        natsConnection_RequestString(&reply, w->admin, "kc.suggest.list", "", REQUEST_TIMEOUT_MS),
        NATS_OK);
    assert_string_equal(header(reply, "Kc-Error"), "");
    natsMsg_Destroy(reply);
    json_t *ledger = service_now(w, "kc-ledger");
    assert_int_equal(endpoint_integer(ledger, "ledger", "num_requests"), 1);
    assert_int_equal(endpoint_integer(ledger, "ledger", "num_errors"), 1);
    json_decref(ledger);
    json_t *keeper = service_now(w, "kc-keeper");
    assert_int_equal(endpoint_integer(keeper, "list", "num_requests"), 1);
    assert_int_equal(endpoint_integer(keeper, "list", "num_errors"), 0);
    json_decref(keeper);
}

/* $SRV.PING.<name>.<id> reaches that instance alone; the plain ping everyone. */
static void test_ping_forms(void **state)
{
    world *w = *state;
    json_t *calc = service_now(w, "calc");
    char subject[256];
    snprintf(subject, sizeof subject, "$SRV.PING.calc.%s",
             json_string_value(json_object_get(calc, "id")));
    natsMsg *reply = NULL;
    assert_int_equal(
        natsConnection_RequestString(&reply, w->admin, subject, "", REQUEST_TIMEOUT_MS), NATS_OK);
    json_t *ping =
        json_loadb(natsMsg_GetData(reply), (size_t)natsMsg_GetDataLength(reply), 0, NULL);
    assert_string_equal(json_string_value(json_object_get(ping, "type")),
                        "io.nats.micro.v1.ping_response");
    assert_string_equal(json_string_value(json_object_get(ping, "id")),
                        json_string_value(json_object_get(calc, "id")));
    assert_string_equal(json_string_value(json_object_get(ping, "name")), "calc");
    json_decref(ping);
    json_decref(calc);
    natsMsg_Destroy(reply);
}

/* The restricted user's service serves although $SRV is denied to it. */
static void test_restricted_service_serves(void **state)
{
    world *w = *state;
    natsMsg *reply = NULL;
    assert_int_equal(natsConnection_RequestString(&reply, w->admin, "kc.req.plain", "hello\n",
                                                  REQUEST_TIMEOUT_MS),
                     NATS_OK);
    assert_int_equal(natsMsg_GetDataLength(reply), 6);
    assert_memory_equal(natsMsg_GetData(reply), "hello\n", 6);
    natsMsg_Destroy(reply);
    /* and says once why it is not listed */
    char log_path[HARNESS_PATH_SIZE_MAX + 32];
    snprintf(log_path, sizeof log_path, "%.200s/plain.log", w->server.directory_path);
    static char log[OUTPUT_BYTES_MAX];
    FILE *file = fopen(log_path, "r");
    assert_non_null(file);
    log[fread(log, 1, sizeof log - 1, file)] = '\0';
    fclose(file);
    assert_non_null(strstr(log, "plain: not discoverable ($SRV): the user may not subscribe"));
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: %s SERVER_BINARY KCOBRA_BINARY\n", argv[0]);
        return 2;
    }
    server_binary = argv[1];
    kcobra_binary = argv[2];
    components_in_server = strstr(server_binary, "kcobrad") != NULL;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_listed_with_info),
        cmocka_unit_test(test_stats_count_requests),
        cmocka_unit_test(test_component_stats),
        cmocka_unit_test(test_ping_forms),
        cmocka_unit_test(test_restricted_service_serves),
    };
    int failed = cmocka_run_group_tests(tests, setup, teardown);
    nats_Close();
    return failed;
}
