/* mint_guard_test.c - who may mint through kcobrad (issue 15, finding 10;
 * src/cmd/mint_guard.c). argv[1] is kcobrad (it hosts the ledger; any
 * other server: skipped, exit 77).
 *
 *  - with users and ledger { operators: [admin] }: a PUB on kc.ledger.mint
 *    from alice (no permissions of her own) and from bob (his own
 *    permissions) is refused with the broker's permissions violation, and
 *    admin's mint is answered and issues the coins;
 *  - without users and without mint_open: an anonymous client's mint is
 *    refused (it used to be served: any client could mint);
 *  - mint_open: true opens it again (and kcobrad warns in its log). */
#include <nats/nats.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "fixture.h"

enum {
    EXIT_SKIP = 77,
    REQUEST_TIMEOUT_MS = 5000,
    CONFIG_BYTES_MAX = 2048,
    LOG_BYTES_MAX = 256 * 1024,
};

#define MINT_BODY                                                                                  \
    "{\"to\":\"00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\","                \
    "\"denominations\":[100]}"
#define REFUSED "-ERR 'Permissions Violation for Publish to \"kc.ledger.mint\"'"

static const char USERS[] = "authorization {\n  users: [\n"
                            "    {user: admin, password: s3cr3t}\n"
                            "    {user: alice, password: s3cr3t}\n"
                            "    {user: bob, password: s3cr3t, permissions: {publish: "
                            "{allow: [\"kc.>\", \"_INBOX.>\"]}}}\n"
                            "  ]\n}\n";

static void config_text(fixture *f, char text[CONFIG_BYTES_MAX], const char *users,
                        const char *ledger_keys)
{
    snprintf(text, CONFIG_BYTES_MAX, "%sdata_dir: \"%s/data\"\nledger {\n  enabled: true\n%s}\n",
             users, f->server.directory_path, ledger_keys);
}

/* A raw client logged in as user (NULL: anonymous) publishes a mint and
 * expects line back (the refusal), or a clean round trip (NULL). */
static void raw_mint(fixture *f, const char *user, const char *expected)
{
    char connect[256];
    if (user != NULL)
        snprintf(connect, sizeof connect,
                 "{\"verbose\":false,\"pedantic\":false,\"user\":\"%s\",\"pass\":\"s3cr3t\"}",
                 user);
    else
        snprintf(connect, sizeof connect, "%s", FIXTURE_FAST_CONNECT);
    harness_raw *raw = fixture_raw_handshake(f, connect);
    char publish[512];
    snprintf(publish, sizeof publish, "PUB kc.ledger.mint _INBOX.mint %zu\r\n%s\r\n",
             strlen(MINT_BODY), MINT_BODY);
    fixture_raw_send(raw, publish);
    if (expected != NULL)
        fixture_raw_expect_line(raw, expected);
    else
        fixture_raw_round_trip(raw);
}

/* A nats.c client as user mints; whether the ledger issued the coin. */
static bool mint_as(fixture *f, const char *user)
{
    natsOptions *options = fixture_options(f);
    if (user != NULL) assert_int_equal(natsOptions_SetUserInfo(options, user, "s3cr3t"), NATS_OK);
    natsConnection *connection = fixture_connect_with(f, options);
    natsMsg *reply = NULL;
    natsStatus status = natsConnection_RequestString(&reply, connection, "kc.ledger.mint",
                                                     MINT_BODY, REQUEST_TIMEOUT_MS);
    bool issued = status == NATS_OK && strstr(natsMsg_GetData(reply), "\"issued\"") != NULL;
    natsMsg_Destroy(reply);
    return issued;
}

static void test_operators_only(void **state)
{
    fixture *f = fixture_of(state);
    char config[CONFIG_BYTES_MAX];
    config_text(f, config, USERS, "  operators: [admin]\n");
    fixture_start(f, config);
    raw_mint(f, "alice", REFUSED);
    raw_mint(f, "bob", REFUSED);
    assert_true(mint_as(f, "admin"));
    /* bob may still publish elsewhere, as his permissions say */
    harness_raw *raw = fixture_raw_handshake(
        f, "{\"verbose\":false,\"pedantic\":false,\"user\":\"bob\",\"pass\":\"s3cr3t\"}");
    fixture_raw_send_round_trip(raw, "PUB kc.other 2\r\nhi\r\n");
}

static void test_closed_without_users(void **state)
{
    fixture *f = fixture_of(state);
    char config[CONFIG_BYTES_MAX];
    config_text(f, config, "", "");
    fixture_start(f, config);
    raw_mint(f, NULL, REFUSED);
}

static void test_mint_open(void **state)
{
    fixture *f = fixture_of(state);
    char config[CONFIG_BYTES_MAX];
    config_text(f, config, "", "  mint_open: true\n");
    fixture_start(f, config);
    raw_mint(f, NULL, NULL);
    assert_true(mint_as(f, NULL));
    static char log[LOG_BYTES_MAX];
    FILE *file = fopen(f->server.log_path, "r");
    assert_non_null(file);
    size_t length = fread(log, 1, sizeof log - 1, file);
    fclose(file);
    log[length] = '\0';
    assert_non_null(strstr(log, "any client can mint"));
}

int main(int argc, char **argv)
{
    if (!fixture_parse_arguments(argc, argv)) return 2;
    if (strstr(fixture_server_binary, "kcobrad") == NULL) {
        fprintf(stderr, "mint_guard_test: kcobrad hosts the ledger; skipping\n");
        return EXIT_SKIP;
    }
    const struct CMUnitTest tests[] = {
        FIXTURE_CASE(test_operators_only),
        FIXTURE_CASE(test_closed_without_users),
        FIXTURE_CASE(test_mint_open),
    };
    return cmocka_run_group_tests(tests, fixture_group_setup, fixture_group_teardown);
}
