/* signed_votes_test.c - arbiter votes are signed (issue 15, finding 7;
 * src/arbiter/vote_sign.h), end to end through kcobrad's hosted arbiter
 * (argv[1] is kcobrad; with any other server the program skips, exit 77).
 *
 * kcobrad's arbiter "arb" is one of four (f = 1: a verdict needs three
 * votes) and is told three peers' keys, made here. It never votes against
 * the node "victim" itself, so a quarantine of victim is made by the three
 * peers' votes alone:
 *  - unsigned votes claiming the peers' ids, and votes signed with a key
 *    that is not the peer's, make no verdict (they used to: any client
 *    allowed on kc.arbiter.vote was as good as an arbiter);
 *  - a replayed vote (a peer's old "quarantine" sent again after it voted
 *    "clear") does not count;
 *  - the peers' properly signed votes do make the verdict. */
#include <jansson.h>
#include <nats/nats.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <sodium.h>

#include "arbiter/vote_sign.h"
#include "common/clock.h"
#include "fixture.h"
#include "kingcobra/kingcobra.h"

enum {
    EXIT_SKIP = 77,
    PEERS = 3,
    REQUEST_TIMEOUT_MS = 3000,
    NO_VERDICT_WAIT_MS = 1000, /* ten of the arbiter's ticks */
    VERDICT_WAIT_MS = 10000,
    CONFIG_BYTES = 2048,
};

typedef struct peer {
    const char *id;
    uint8_t public_key[KCI_LEDGER_KEY_BYTES];
    uint8_t secret_key[KCI_LEDGER_SECRET_BYTES];
} peer;

static peer peers[PEERS] = {{.id = "p1"}, {.id = "p2"}, {.id = "p3"}};
static peer stranger = {.id = "stranger"};

static void handler(const kc_request *request, kc_response *response, void *closure)
{
    (void)request, (void)closure;
    kc_response_set_payload(response, "ok", 2);
}

static void config_text(char text[CONFIG_BYTES])
{
    char keys[PEERS][KCI_VOTE_KEY_TEXT_BYTES];
    for (int i = 0; i < PEERS; i++)
        kci_ledger_hex(keys[i], peers[i].public_key, sizeof peers[i].public_key);
    snprintf(text, CONFIG_BYTES,
             "arbiter {\n  enabled: true\n  id: \"arb\"\n  tick: \"100ms\"\n  arbiters: 4\n"
             "  quarantine: \"1h\"\n  peers: [\"p1\", \"p2\", \"p3\"]\n"
             "  peer_keys: [\"p1=%s\", \"p2=%s\", \"p3=%s\"]\n}\n",
             keys[0], keys[1], keys[2]);
}

/* A vote as an arbiter would publish it; signer NULL: unsigned. */
static void send_vote(natsConnection *connection, const char *id, const char *kind, int64_t ts_ms,
                      const peer *signer, char *body_out, size_t body_size)
{
    char body[512];
    int length = snprintf(body, sizeof body,
                          "{\"arbiter\":\"%s\",\"node\":\"victim\",\"vote\":\"%s\",\"epoch\":0,"
                          "\"reasons\":[\"wrong\"],\"ts_ms\":%lld}",
                          id, kind, (long long)ts_ms);
    if (body_out != NULL) snprintf(body_out, body_size, "%s", body);
    natsMsg *message = NULL;
    assert_int_equal(natsMsg_Create(&message, "kc.arbiter.vote", NULL, body, length), NATS_OK);
    if (signer != NULL) {
        char key[KCI_VOTE_KEY_TEXT_BYTES], signature[KCI_VOTE_SIGNATURE_TEXT_BYTES];
        kci_ledger_hex(key, signer->public_key, sizeof signer->public_key);
        kci_vote_sign(signature, body, (size_t)length, signer->secret_key);
        assert_int_equal(natsMsgHeader_Set(message, KCI_VOTE_KEY_HEADER, key), NATS_OK);
        assert_int_equal(natsMsgHeader_Set(message, KCI_VOTE_SIGNATURE_HEADER, signature), NATS_OK);
    }
    assert_int_equal(natsConnection_PublishMsg(connection, message), NATS_OK);
    natsMsg_Destroy(message);
    assert_int_equal(natsConnection_Flush(connection), NATS_OK);
}

static bool quarantine_seen(natsSubscription *verdicts, int wait_ms)
{
    natsMsg *message = NULL;
    int64_t deadline_ms = kci_monotonic_ms() + wait_ms;
    while (kci_monotonic_ms() < deadline_ms &&
           natsSubscription_NextMsg(&message, verdicts, deadline_ms - kci_monotonic_ms()) ==
               NATS_OK) {
        bool match = strstr(natsMsg_GetData(message), "\"node\":\"victim\"") != NULL &&
                     strstr(natsMsg_GetData(message), "\"action\":\"quarantine\"") != NULL;
        natsMsg_Destroy(message);
        if (match) return true;
    }
    return false;
}

static void test_votes_must_be_signed(void **state)
{
    fixture *f = fixture_of(state);
    char config[CONFIG_BYTES];
    config_text(config);
    fixture_start(f, config);
    natsConnection *voter = fixture_connect(f);
    natsSubscription *verdicts = fixture_subscribe_flushed(f, voter, "kc.arbiter.verdict");
    /* The arbiter learns of victim from its traffic. */
    kc_client_options options;
    kc_client_options_init(&options);
    options.servers = f->server.url;
    options.node = options.name = "victim";
    kc_client *victim = NULL;
    assert_int_equal(kc_client_open(&victim, &options), KC_OK);
    kc_service *service = NULL;
    assert_int_equal(kc_service_start(&service, victim, "t", handler, NULL, NULL), KC_OK);
    for (int i = 0; i < 5; i++) {
        kc_reply *reply = NULL;
        assert_int_equal(kc_client_request(&reply, victim, "t", "x", 1, REQUEST_TIMEOUT_MS), KC_OK);
        kc_reply_destroy(reply);
    }

    /* Forged: unsigned, or signed with a key that is not the peer's. */
    int64_t now_ms = kci_wall_ms();
    for (int i = 0; i < PEERS; i++)
        send_vote(voter, peers[i].id, "quarantine", now_ms, NULL, NULL, 0);
    assert_false(quarantine_seen(verdicts, NO_VERDICT_WAIT_MS));
    for (int i = 0; i < PEERS; i++)
        send_vote(voter, peers[i].id, "quarantine", now_ms + 1, &stranger, NULL, 0);
    assert_false(quarantine_seen(verdicts, NO_VERDICT_WAIT_MS));

    /* Replayed: p1's old quarantine sent again after its clear. */
    now_ms = kci_wall_ms();
    char old_vote[512];
    send_vote(voter, "p1", "quarantine", now_ms - 3000, &peers[0], old_vote, sizeof old_vote);
    send_vote(voter, "p2", "quarantine", now_ms - 2000, &peers[1], NULL, 0);
    send_vote(voter, "p1", "clear", now_ms - 1000, &peers[0], NULL, 0);
    send_vote(voter, "p1", "quarantine", now_ms - 3000, &peers[0], NULL, 0); /* the replay */
    send_vote(voter, "p3", "quarantine", now_ms, &peers[2], NULL, 0);
    assert_false(quarantine_seen(verdicts, NO_VERDICT_WAIT_MS));

    /* New signed votes of all three (a vote counts while it is recent, as
     * arbiters vote every tick): the verdict. */
    for (int i = 0; i < PEERS; i++)
        send_vote(voter, peers[i].id, "quarantine", kci_wall_ms() + 1, &peers[i], NULL, 0);
    assert_true(quarantine_seen(verdicts, VERDICT_WAIT_MS));
    kc_service_stop(service);
    kc_client_close(victim, 2000);
}

int main(int argc, char **argv)
{
    if (!fixture_parse_arguments(argc, argv)) return 2;
    if (strstr(fixture_server_binary, "kcobrad") == NULL) {
        fprintf(stderr, "signed_votes_test: only kcobrad hosts an arbiter; skipping\n");
        return EXIT_SKIP;
    }
    if (sodium_init() < 0) return 1;
    for (int i = 0; i < PEERS; i++)
        crypto_sign_keypair(peers[i].public_key, peers[i].secret_key);
    crypto_sign_keypair(stranger.public_key, stranger.secret_key);
    const struct CMUnitTest tests[] = {
        FIXTURE_CASE(test_votes_must_be_signed),
    };
    return cmocka_run_group_tests(tests, fixture_group_setup, fixture_group_teardown);
}
