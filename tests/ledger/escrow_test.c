/* escrow_test.c - escrowed payments end to end (issue 15, finding 3):
 * the real kcobrad hosting the ledger, real paid services (`kcobra serve
 * --price 5 --wallet-key`), and payers using the CLI alone
 * (`kcobra ledger hold`, `kcobra request --pay-hold`).
 *
 *   failing   a service whose command fails (exit 7) answers an error:
 *             its hold is voided and the payer's balance is what it was
 *             (with a transfer, Kc-Pay, the service kept the 5: finding 3);
 *             the payee cannot post it afterwards
 *   working   a service that answers is paid exactly once: the payer -5,
 *             the payee +5; the same hold for a second request is refused
 *             (402) and nothing moves
 *   expiry    a hold nobody settles returns to the payer by itself
 *   audit     `kcobra ledger audit` passes (no held coin left behind)
 *   reports   `kcobra problem --transfer --request` from the payer: kcobrad's
 *             arbiter asks the ledger and finds the voided hold charged
 *             nothing (counted against the reporter) and the posted one a
 *             charge (the request kept as evidence against the node)
 * Every wait is bounded; nothing asserts a speed. */
#include <fcntl.h>
#include <limits.h>
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

#include <jansson.h>

#include "../integration/harness.h"

enum {
    SKIP_EXIT_CODE = 77,
    WAIT_MS = 30000, /* generous: a loaded 2-core machine, a sanitized build */
    SERVICE_COUNT = 2,
};

static const char *server_binary;
static const char *kcobra_binary;

typedef struct world {
    harness_server server;
    pid_t services[SERVICE_COUNT];
    char failed_hold[64], failed_request[64]; /* test_failing_service_voids' */
    char paid_hold[64], paid_request[64];     /* test_working_service_paid_once's */
} world;

static world the_world;

static json_t *kcobra_json(const world *w, const char *arguments, int *exit_status)
{
    char command[2048];
    snprintf(
        command, sizeof command,
        "KCOBRA_WALLET_DIR='%.200s/wallets' '%s' %s --server %s --timeout 30s --json 2>/dev/null",
        w->server.directory_path, kcobra_binary, arguments, w->server.url);
    FILE *pipe = popen(command, "r");
    assert_non_null(pipe);
    char output[65536];
    size_t length = fread(output, 1, sizeof output - 1, pipe);
    output[length] = '\0';
    int status = pclose(pipe);
    *exit_status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    return json_loads(output, 0, NULL);
}

static json_t *kcobra_ok(const world *w, const char *arguments)
{
    int status = 0;
    json_t *reply = kcobra_json(w, arguments, &status);
    if (status != 0) fail_msg("kcobra %s: exit %d", arguments, status);
    return reply;
}

static json_int_t balance(const world *w, const char *wallet)
{
    char arguments[128];
    snprintf(arguments, sizeof arguments, "wallet balance %s", wallet);
    json_t *reply = kcobra_ok(w, arguments);
    json_int_t value = json_integer_value(json_object_get(reply, "balance"));
    json_decref(reply);
    return value;
}

/* `kcobra ledger hold`: the hold's id into id. */
static void hold(const world *w, const char *expires, char id[64])
{
    char arguments[256];
    snprintf(arguments, sizeof arguments,
             "ledger hold --from payer --to shop --amount 5 --expires %s", expires);
    json_t *reply = kcobra_ok(w, arguments);
    const char *text = json_string_value(json_object_get(reply, "transfer"));
    assert_non_null(text);
    snprintf(id, 64, "%s", text);
    json_decref(reply);
}

static char last_request_id[64]; /* the Kc-Id of the last paid request */

/* A paid request with a hold: the exit status, and the error code (0: none). */
static int request_held(const world *w, const char *type, const char *hold_id, int *error_code,
                        char *payload, size_t payload_size)
{
    char arguments[256];
    int status = 0;
    snprintf(arguments, sizeof arguments, "request %s hello --pay-hold %s", type, hold_id);
    json_t *reply = kcobra_json(w, arguments, &status);
    json_t *error = json_object_get(reply, "error");
    *error_code =
        json_is_object(error) ? (int)json_integer_value(json_object_get(error, "code")) : 0;
    const char *request_id = json_string_value(json_object_get(reply, "request_id"));
    snprintf(last_request_id, sizeof last_request_id, "%s", request_id != NULL ? request_id : "");
    snprintf(payload, payload_size, "%s",
             json_string_value(json_object_get(reply, "payload")) != NULL
                 ? json_string_value(json_object_get(reply, "payload"))
                 : "");
    json_decref(reply);
    return status;
}

static pid_t service_start(const world *w, const char *type, const char *command)
{
    char key_path[PATH_MAX], log_path[PATH_MAX];
    snprintf(key_path, sizeof key_path, "%s/wallets/shop.key", w->server.directory_path);
    snprintf(log_path, sizeof log_path, "%s/%s.log", w->server.directory_path, type);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int log_fd = open(log_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        dup2(log_fd, STDERR_FILENO);
        dup2(log_fd, STDOUT_FILENO);
        execl(kcobra_binary, kcobra_binary, "serve", type, "--exec", command, "--price", "5",
              "--wallet-key", key_path, "--node", "shop-node", "--server", w->server.url,
              (char *)NULL);
        _exit(127);
    }
    return pid;
}

/* Ready when the service answers an unpaid request with 402 (exit 5). */
static void service_wait(const world *w, const char *type)
{
    char arguments[128];
    snprintf(arguments, sizeof arguments, "request %s hi", type);
    int64_t deadline_ms = harness_now_ms() + WAIT_MS;
    int status = 0;
    do {
        json_t *reply = kcobra_json(w, arguments, &status);
        int code =
            (int)json_integer_value(json_object_get(json_object_get(reply, "error"), "code"));
        json_decref(reply);
        if (status == 5 && code == 402) return;
        harness_sleep_ms(100);
    } while (harness_now_ms() < deadline_ms);
    fail_msg("paid service %s did not come up (last exit %d)", type, status);
}

static int group_setup(void **state)
{
    world *w = &the_world;
    if (harness_server_init(&w->server, server_binary) != HARNESS_OK) return -1;
    char config[2 * HARNESS_PATH_SIZE_MAX + 256];
    snprintf(config, sizeof config,
             "ledger { dir: \"%.200s/ledger\", mint_open: true }\n"
             "arbiter { enabled: true, id: arbiter-0, data_dir: \"%.200s/arbiter\" }\n",
             w->server.directory_path, w->server.directory_path);
    if (harness_server_start(&w->server, config) != HARNESS_OK) return -1;
    json_decref(kcobra_ok(w, "wallet new payer"));
    json_decref(kcobra_ok(w, "wallet new shop"));
    /* The ledger is up once a mint is answered. */
    int64_t deadline_ms = harness_now_ms() + WAIT_MS;
    int status = 1;
    while (status != 0 && harness_now_ms() < deadline_ms) {
        json_decref(kcobra_json(w, "mint --to payer --denominations 5,5", &status));
        if (status != 0) harness_sleep_ms(100);
    }
    if (status != 0) return -1;
    w->services[0] = service_start(w, "fails", "exit 7");
    w->services[1] = service_start(w, "works", "tr a-z A-Z");
    service_wait(w, "fails");
    service_wait(w, "works");
    *state = w;
    return 0;
}

static int group_teardown(void **state)
{
    (void)state; /* NULL when the setup failed */
    world *w = &the_world;
    for (int index = 0; index < SERVICE_COUNT; index++) {
        if (w->services[index] <= 0) continue;
        kill(w->services[index], SIGTERM);
        waitpid(w->services[index], NULL, 0);
    }
    harness_server_cleanup(&w->server);
    return 0;
}

/* Finding 3: an error answer costs the payer nothing. */
static void test_failing_service_voids(void **state)
{
    world *w = *state;
    json_int_t payer_before = balance(w, "payer"), shop_before = balance(w, "shop");
    char id[64], payload[256], arguments[256];
    hold(w, "60s", id);
    assert_int_equal(balance(w, "payer"), payer_before - 5); /* held meanwhile */
    int code = 0;
    assert_int_equal(request_held(w, "fails", id, &code, payload, sizeof payload), 5);
    snprintf(w->failed_hold, sizeof w->failed_hold, "%s", id);
    snprintf(w->failed_request, sizeof w->failed_request, "%s", last_request_id);
    assert_int_not_equal(code, 402); /* served, and it failed */
    assert_int_not_equal(code, 0);
    assert_int_equal(balance(w, "payer"), payer_before);
    assert_int_equal(balance(w, "shop"), shop_before);
    /* The payee cannot take it afterwards: it was voided. */
    int status = 0;
    snprintf(arguments, sizeof arguments, "ledger post --hold %s --wallet shop", id);
    json_decref(kcobra_json(w, arguments, &status));
    assert_int_equal(status, 5);
    assert_int_equal(balance(w, "shop"), shop_before);
}

static void test_working_service_paid_once(void **state)
{
    world *w = *state;
    json_int_t payer_before = balance(w, "payer"), shop_before = balance(w, "shop");
    char id[64], payload[256];
    hold(w, "60s", id);
    int code = 0;
    assert_int_equal(request_held(w, "works", id, &code, payload, sizeof payload), 0);
    assert_string_equal(payload, "HELLO");
    snprintf(w->paid_hold, sizeof w->paid_hold, "%s", id);
    snprintf(w->paid_request, sizeof w->paid_request, "%s", last_request_id);
    /* The trail of the coin the shop got shows the hold, posted, and verifies. */
    json_t *coins = kcobra_ok(w, "wallet coins shop");
    char arguments[128];
    snprintf(arguments, sizeof arguments, "coin trail %s",
             json_string_value(
                 json_object_get(json_array_get(json_object_get(coins, "coins"), 0), "id")));
    json_t *trail = kcobra_ok(w, arguments);
    json_t *hops = json_object_get(trail, "hops");
    json_t *last = json_array_get(hops, json_array_size(hops) - 1);
    assert_string_equal(json_string_value(json_object_get(last, "kind")), "hold");
    assert_string_equal(json_string_value(json_object_get(last, "transfer")), id);
    assert_string_equal(json_string_value(json_object_get(json_object_get(last, "hold"), "state")),
                        "posted");
    assert_true(json_is_true(json_object_get(trail, "verified")));
    json_decref(trail);
    json_decref(coins);
    assert_int_equal(balance(w, "payer"), payer_before - 5);
    assert_int_equal(balance(w, "shop"), shop_before + 5);
    /* The same hold for another request: refused, nothing moves. */
    assert_int_equal(request_held(w, "works", id, &code, payload, sizeof payload), 5);
    assert_int_equal(code, 402);
    assert_int_equal(balance(w, "payer"), payer_before - 5);
    assert_int_equal(balance(w, "shop"), shop_before + 5);
}

static void test_expired_hold_returns(void **state)
{
    world *w = *state;
    json_int_t payer_before = balance(w, "payer");
    char id[64];
    hold(w, "1s", id);
    assert_int_equal(balance(w, "payer"), payer_before - 5);
    int64_t deadline_ms = harness_now_ms() + WAIT_MS;
    while (balance(w, "payer") != payer_before && harness_now_ms() < deadline_ms)
        harness_sleep_ms(200);
    assert_int_equal(balance(w, "payer"), payer_before);
    /* Its trail tells: the hold expired. */
    char arguments[128];
    snprintf(arguments, sizeof arguments, "ledger void --hold %s --wallet shop", id);
    json_t *reply = kcobra_ok(w, arguments);
    assert_string_equal(json_string_value(json_object_get(reply, "state")), "expired");
    json_decref(reply);
}

static void test_audit_passes(void **state)
{
    world *w = *state;
    json_t *reply = kcobra_ok(w, "ledger audit");
    assert_true(json_is_true(json_object_get(reply, "ok")));
    assert_int_equal(
        json_integer_value(json_object_get(json_object_get(reply, "holds"), "pending")), 0);
    json_decref(reply);
}

/* kcobrad's log has a line with both texts, within WAIT_MS. */
static void log_wait(const world *w, const char *first, const char *second)
{
    int64_t deadline_ms = harness_now_ms() + WAIT_MS;
    do {
        FILE *log = fopen(w->server.log_path, "r");
        char line[4096];
        while (log != NULL && fgets(line, sizeof line, log) != NULL)
            if (strstr(line, first) != NULL && strstr(line, second) != NULL) {
                fclose(log);
                return;
            }
        if (log != NULL) fclose(log);
        harness_sleep_ms(100);
    } while (harness_now_ms() < deadline_ms);
    char command[HARNESS_PATH_SIZE_MAX + 64];
    snprintf(command, sizeof command, "tail -20 '%s' >&2", w->server.log_path);
    if (system(command) != 0) fprintf(stderr, "(no log)\n");
    fail_msg("kcobrad's log has no line with \"%s\" and \"%s\"", first, second);
}

static void test_payment_reports(void **state)
{
    world *w = *state;
    assert_true(w->failed_request[0] != '\0' && w->paid_request[0] != '\0');
    char arguments[512];
    snprintf(arguments, sizeof arguments,
             "problem shop-node error_reply --request %s --transfer %s --node payer-node",
             w->failed_request, w->failed_hold);
    json_decref(kcobra_ok(w, arguments));
    log_wait(w, w->failed_hold, "shows no charge");
    snprintf(arguments, sizeof arguments,
             "problem shop-node no_answer --request %s --transfer %s --node payer-node",
             w->paid_request, w->paid_hold);
    json_decref(kcobra_ok(w, arguments));
    log_wait(w, w->paid_hold, "confirms the charge");
}

int main(int argc, char **argv)
{
    server_binary = argc > 1 ? argv[1] : NULL;
    kcobra_binary = argc > 2 ? argv[2] : getenv("KCOBRA");
    if (server_binary == NULL || kcobra_binary == NULL) {
        fprintf(stderr, "escrow_test: needs kcobrad and kcobra: skipped\n");
        return SKIP_EXIT_CODE;
    }
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_failing_service_voids),
        cmocka_unit_test(test_working_service_paid_once),
        cmocka_unit_test(test_expired_hold_returns),
        cmocka_unit_test(test_audit_passes),
        cmocka_unit_test(test_payment_reports),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
