/*
 * The persister and the ledger as confused deputies (docs/security.md), run
 * against kcobrad (argv[1], the persister and the ledger are its
 * components, logged in as their roles) and against nats-server (they run
 * as `kcobra queue serve` and `kcobra ledger serve`, argv[2]; the persister
 * as a broad user, "admin", so only its own subject checks stand between a
 * client and the control subjects).
 *
 * The attacker, "guest", may submit durable requests but is denied
 * kc.ledger.mint, kc.sys.> and kc.arbiter.>. An echo service, "victim",
 * answers kc.req.echo with the request's payload. Before the fix the guest
 * could make the persister publish its payload on kc.ledger.mint (Kc-Notify,
 * or the reply subject of kc.reply.get) and mint 1,000 to a wallet, or on
 * kc.sys.quarantine.set and quarantine the victim on kcobrad; a Kc-Notify
 * with a space knocked the persister off the server and lost other
 * clients' acknowledgements.
 *
 *   notify     Kc-Notify naming a control subject, a wildcard, a space:
 *              refused with 400; nothing minted; the victim still served
 *   reply.get  kc.reply.get asked to answer on kc.ledger.mint and on
 *              kc.sys.quarantine.set: no answer there; nothing minted;
 *              the victim still served; counted in the persister's stats
 *   submit     a submit whose reply subject is kc.ledger.mint: not stored
 *              and not answered
 *   space      submits with a Kc-Notify containing spaces, interleaved
 *              with good submits: every good submit is acknowledged
 *   inbox      Kc-Notify under _INBOX. still gets the forwarded reply
 */
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
    TIMEOUT_MS = 5000,
    READY_TIMEOUT_MS = 30000,
    SETTLE_MS = 500, /* for a forward that must not happen to show up */
    SPACE_ROUNDS = 40,
    CONFIG_BYTES_MAX = 4096,
};

#define PASSWORD "deputy-pw"
#define MINT_BODY_FORMAT "{\"to\":\"%s\",\"denominations\":[1000]}"
#define QUARANTINE_BODY "{\"nodes\":[\"victim\"]}"

static const char *server_binary;
static const char *kcobra_binary;
static bool components_in_server; /* kcobrad hosts the persister and the ledger */

typedef struct world {
    harness_server server;
    pid_t persister_pid, ledger_pid; /* with nats-server */
    natsConnection *admin, *guest, *victim;
    natsSubscription *echo;
    char wallet[65]; /* an address nobody minted to */
} world;

static world the_world;

/* ---- the servers and the components ------------------------------------------------ */

static const char users_block[] =
    "authorization {\n"
    "  users: [\n"
    "    {user: admin, password: " PASSWORD "}\n"
    "    {user: ledger, password: " PASSWORD "}\n"
    "    {user: victim, password: " PASSWORD "}\n"
    "    {user: guest, password: " PASSWORD
    ", permissions: {publish: {deny: [\"kc.ledger.mint\", \"kc.sys.>\", \"kc.arbiter.>\"]}}}\n"
    "  ]\n"
    "}\n";

static pid_t spawn_kcobra(world *w, const char *part, const char *user, const char *directory)
{
    char log_path[HARNESS_PATH_SIZE_MAX + 32];
    snprintf(log_path, sizeof log_path, "%.200s/%s.log", w->server.directory_path, part);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        if (freopen(log_path, "a", stderr) == NULL) _exit(127);
        execl(kcobra_binary, kcobra_binary, part, "serve", "--server", w->server.url, "--user",
              user, "--password", PASSWORD, "--dir", directory, (char *)NULL);
        _exit(127);
    }
    return pid;
}

static void stop_child(pid_t *pid)
{
    if (*pid <= 0) return;
    kill(*pid, SIGTERM);
    waitpid(*pid, NULL, 0);
    *pid = 0;
}

static natsConnection *connect_as(const world *w, const char *user)
{
    natsOptions *options = NULL;
    natsConnection *connection = NULL;
    assert_int_equal(natsOptions_Create(&options), NATS_OK);
    natsOptions_SetURL(options, w->server.url);
    natsOptions_SetUserInfo(options, user, PASSWORD);
    natsOptions_SetName(options, user);
    assert_int_equal(natsConnection_Connect(&connection, options), NATS_OK);
    natsOptions_Destroy(options);
    return connection;
}

/* victim: answers kc.req.echo with the request's payload */
static void on_echo(natsConnection *connection, natsSubscription *subscription, natsMsg *message,
                    void *closure)
{
    (void)subscription, (void)closure;
    if (natsMsg_GetReply(message) != NULL)
        natsConnection_Publish(connection, natsMsg_GetReply(message), natsMsg_GetData(message),
                               natsMsg_GetDataLength(message));
    natsMsg_Destroy(message);
}

/* Until the persister and the ledger answer (they start after the port). */
static void wait_ready(world *w)
{
    int64_t deadline_ms = harness_now_ms() + READY_TIMEOUT_MS;
    bool queue = false, ledger = false;
    while (!(queue && ledger) && harness_now_ms() < deadline_ms) {
        natsMsg *reply = NULL;
        if (!queue && natsConnection_RequestString(&reply, w->admin, "kc.sys.queue.stats", "",
                                                   500) == NATS_OK)
            queue = !natsMsg_IsNoResponders(reply);
        natsMsg_Destroy(reply);
        reply = NULL;
        char body[128];
        snprintf(body, sizeof body, "{\"wallet\":\"%s\"}", w->wallet);
        if (!ledger && natsConnection_RequestString(&reply, w->admin, "kc.ledger.balance", body,
                                                    500) == NATS_OK)
            ledger = !natsMsg_IsNoResponders(reply);
        natsMsg_Destroy(reply);
        if (!(queue && ledger)) harness_sleep_ms(100);
    }
    assert_true(queue && ledger);
}

static int setup(void **state)
{
    world *w = &the_world;
    memset(w, 0, sizeof *w);
    if (harness_server_init(&w->server, server_binary) != HARNESS_OK) return -1;
    char config[CONFIG_BYTES_MAX];
    if (components_in_server)
        snprintf(config, sizeof config, "%sdata_dir: \"%.200s/data\"\nledger { enabled: true }\n",
                 users_block, w->server.directory_path);
    else
        snprintf(config, sizeof config, "%s", users_block);
    if (harness_server_start(&w->server, config) != HARNESS_OK) return -1;
    if (!components_in_server) {
        char queue_dir[HARNESS_PATH_SIZE_MAX + 16], ledger_dir[HARNESS_PATH_SIZE_MAX + 16];
        snprintf(queue_dir, sizeof queue_dir, "%.200s/queue", w->server.directory_path);
        snprintf(ledger_dir, sizeof ledger_dir, "%.200s/ledger", w->server.directory_path);
        /* "admin" may publish anything: the persister's own checks are
         * all that stand between a client and the control subjects. */
        w->persister_pid = spawn_kcobra(w, "queue", "admin", queue_dir);
        w->ledger_pid = spawn_kcobra(w, "ledger", "ledger", ledger_dir);
    }
    for (int index = 0; index < 64; index++)
        w->wallet[index] = "0123456789abcdef"[(index * 7 + 3) % 16];
    w->admin = connect_as(w, "admin");
    w->guest = connect_as(w, "guest");
    w->victim = connect_as(w, "victim");
    assert_int_equal(
        natsConnection_QueueSubscribe(&w->echo, w->victim, "kc.req.echo", "echo", on_echo, NULL),
        NATS_OK);
    assert_int_equal(natsConnection_FlushTimeout(w->victim, TIMEOUT_MS), NATS_OK);
    wait_ready(w);
    *state = w;
    return 0;
}

static int teardown(void **state)
{
    world *w = *state;
    natsSubscription_Destroy(w->echo);
    natsConnection_Destroy(w->victim);
    natsConnection_Destroy(w->guest);
    natsConnection_Destroy(w->admin);
    stop_child(&w->persister_pid);
    stop_child(&w->ledger_pid);
    harness_server_cleanup(&w->server);
    return 0;
}

/* ---- helpers ---------------------------------------------------------------------- */

static int64_t balance(world *w)
{
    char body[128];
    snprintf(body, sizeof body, "{\"wallet\":\"%s\"}", w->wallet);
    natsMsg *reply = NULL;
    assert_int_equal(
        natsConnection_RequestString(&reply, w->admin, "kc.ledger.balance", body, TIMEOUT_MS),
        NATS_OK);
    json_error_t error;
    json_t *root =
        json_loadb(natsMsg_GetData(reply), (size_t)natsMsg_GetDataLength(reply), 0, &error);
    natsMsg_Destroy(reply);
    assert_non_null(root);
    int64_t value = json_integer_value(json_object_get(root, "balance"));
    json_decref(root);
    return value;
}

/* One number from the persister's kc.sys.queue.stats. */
static int64_t queue_stat(world *w, const char *name)
{
    natsMsg *reply = NULL;
    assert_int_equal(
        natsConnection_RequestString(&reply, w->admin, "kc.sys.queue.stats", "", TIMEOUT_MS),
        NATS_OK);
    json_error_t error;
    json_t *stats =
        json_loadb(natsMsg_GetData(reply), (size_t)natsMsg_GetDataLength(reply), 0, &error);
    natsMsg_Destroy(reply);
    assert_non_null(stats);
    int64_t value = json_integer_value(json_object_get(stats, name));
    json_decref(stats);
    return value;
}

/* The victim is still served (not quarantined by a forged control message). */
static void expect_victim_served(world *w)
{
    natsMsg *reply = NULL;
    assert_int_equal(
        natsConnection_RequestString(&reply, w->admin, "kc.req.echo", "still there", TIMEOUT_MS),
        NATS_OK);
    assert_false(natsMsg_IsNoResponders(reply));
    assert_string_equal(natsMsg_GetData(reply), "still there");
    natsMsg_Destroy(reply);
}

/* A durable submit by the guest; the reply (ack or error) is returned. */
static natsMsg *submit(world *w, const char *notify, const char *payload)
{
    natsMsg *message = NULL, *reply = NULL;
    assert_int_equal(
        natsMsg_Create(&message, "kc.submit.echo", NULL, payload, (int)strlen(payload)), NATS_OK);
    if (notify != NULL) assert_int_equal(natsMsgHeader_Set(message, "Kc-Notify", notify), NATS_OK);
    assert_int_equal(natsConnection_RequestMsg(&reply, w->guest, message, TIMEOUT_MS), NATS_OK);
    natsMsg_Destroy(message);
    return reply;
}

static const char *error_of(natsMsg *reply)
{
    const char *text = NULL;
    if (natsMsgHeader_Get(reply, "Kc-Error", &text) != NATS_OK) return NULL;
    return text;
}

/* Submits payload and waits until the persister has recorded its reply;
 * the id goes to id_out (37 bytes). */
static void submit_replied(world *w, const char *payload, char *id_out)
{
    natsMsg *ack = submit(w, NULL, payload);
    assert_null(error_of(ack));
    const char *id = NULL;
    assert_int_equal(natsMsgHeader_Get(ack, "Kc-Id", &id), NATS_OK);
    snprintf(id_out, 37, "%s", id);
    natsMsg_Destroy(ack);
    int64_t deadline_ms = harness_now_ms() + TIMEOUT_MS;
    bool replied = false;
    while (!replied && harness_now_ms() < deadline_ms) {
        natsMsg *reply = NULL;
        assert_int_equal(
            natsConnection_RequestString(&reply, w->guest, "kc.reply.get", id_out, TIMEOUT_MS),
            NATS_OK);
        replied = error_of(reply) == NULL;
        natsMsg_Destroy(reply);
        if (!replied) harness_sleep_ms(50);
    }
    assert_true(replied);
}

/* ---- cases --------------------------------------------------------------------------- */

static void test_notify_to_control_subjects_refused(void **state)
{
    world *w = *state;
    char mint_body[160];
    snprintf(mint_body, sizeof mint_body, MINT_BODY_FORMAT, w->wallet);
    static const char *const notifies[] = {
        "kc.ledger.mint",
        "kc.sys.quarantine.set",
        "kc.arbiter.vote",
        "a b c",
        "_INBOX.x y",
        "_INBOX.*",
        "_INBOX.>",
        "_INBOX..x",
        "_INBOX.",
        "kc.req.echo",
        "$SYS.REQ.SERVER.PING",
    };
    for (size_t index = 0; index < sizeof notifies / sizeof notifies[0]; index++) {
        bool quarantine = strcmp(notifies[index], "kc.sys.quarantine.set") == 0;
        natsMsg *reply = submit(w, notifies[index], quarantine ? QUARANTINE_BODY : mint_body);
        const char *error = error_of(reply);
        if (error == NULL || strncmp(error, "400 ", 4) != 0)
            fail_msg("Kc-Notify \"%s\": expected a 400 refusal, got %s", notifies[index],
                     error != NULL ? error : "an acknowledgement");
        assert_non_null(strstr(error, "Kc-Notify"));
        natsMsg_Destroy(reply);
    }
    harness_sleep_ms(SETTLE_MS);
    assert_int_equal(balance(w), 0);
    expect_victim_served(w);
}

static void test_reply_get_to_control_subjects_ignored(void **state)
{
    world *w = *state;
    char mint_body[160], mint_id[37], quarantine_id[37];
    snprintf(mint_body, sizeof mint_body, MINT_BODY_FORMAT, w->wallet);
    submit_replied(w, mint_body, mint_id);
    submit_replied(w, QUARANTINE_BODY, quarantine_id);
    /* The guest may not publish there itself, but may ask the persister to. */
    assert_int_equal(
        natsConnection_PublishRequestString(w->guest, "kc.reply.get", "kc.ledger.mint", mint_id),
        NATS_OK);
    assert_int_equal(natsConnection_PublishRequestString(w->guest, "kc.reply.get",
                                                         "kc.sys.quarantine.set", quarantine_id),
                     NATS_OK);
    assert_int_equal(natsConnection_FlushTimeout(w->guest, TIMEOUT_MS), NATS_OK);
    harness_sleep_ms(SETTLE_MS);
    assert_int_equal(balance(w), 0);
    expect_victim_served(w);
    /* The persister says what it refused. */
    assert_true(queue_stat(w, "refused_reply_subjects") >= 2);
}

static void test_submit_reply_to_control_subject_not_stored(void **state)
{
    world *w = *state;
    char mint_body[160];
    snprintf(mint_body, sizeof mint_body, MINT_BODY_FORMAT, w->wallet);
    assert_int_equal(natsConnection_PublishRequestString(w->admin, "kc.submit.echo",
                                                         "kc.ledger.mint", mint_body),
                     NATS_OK);
    assert_int_equal(natsConnection_FlushTimeout(w->admin, TIMEOUT_MS), NATS_OK);
    harness_sleep_ms(SETTLE_MS);
    assert_int_equal(balance(w), 0);
    assert_int_equal(queue_stat(w, "requests"), 0);
    assert_true(queue_stat(w, "refused_reply_subjects") >= 1);
}

static void test_notify_with_spaces_loses_nothing(void **state)
{
    world *w = *state;
    for (int round = 0; round < SPACE_ROUNDS; round++) {
        natsMsg *bad = submit(w, "kc.x y z", "bad");
        assert_non_null(error_of(bad));
        natsMsg_Destroy(bad);
        natsMsg *good = submit(w, NULL, "good");
        if (error_of(good) != NULL)
            fail_msg("round %d: a good submit got %s", round, error_of(good));
        natsMsg_Destroy(good);
    }
}

static void test_notify_to_inbox_forwarded(void **state)
{
    world *w = *state;
    natsSubscription *inbox = NULL;
    assert_int_equal(natsConnection_SubscribeSync(&inbox, w->guest, "_INBOX.guest.notify"),
                     NATS_OK);
    natsMsg *ack = submit(w, "_INBOX.guest.notify", "forward me");
    assert_null(error_of(ack));
    natsMsg_Destroy(ack);
    natsMsg *forwarded = NULL;
    assert_int_equal(natsSubscription_NextMsg(&forwarded, inbox, TIMEOUT_MS), NATS_OK);
    assert_string_equal(natsMsg_GetData(forwarded), "forward me");
    natsMsg_Destroy(forwarded);
    natsSubscription_Destroy(inbox);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s SERVER_BINARY [KCOBRA_BINARY]\n", argv[0]);
        return 2;
    }
    server_binary = argv[1];
    kcobra_binary = argc > 2 ? argv[2] : NULL;
    components_in_server = strstr(server_binary, "kcobrad") != NULL;
    if (!components_in_server && kcobra_binary == NULL) return SKIP_EXIT_CODE;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_notify_to_control_subjects_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reply_get_to_control_subjects_ignored, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_submit_reply_to_control_subject_not_stored, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_notify_with_spaces_loses_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_notify_to_inbox_forwarded, setup, teardown),
    };
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    nats_Close();
    return failed;
}
