/* kcobra_ledger_replicas.c - `kcobra ledger audit --replicas`
 * (kcobra_ledger_replicas.h).
 *
 * Every replica answers kc.sys.ledger.digest (no queue group: all of them)
 * with the log entry it has applied, the chain digest after it
 * (H(previous || entry bytes), so two replicas that applied different
 * entries differ from there on) and a digest of its whole LMDB state. A
 * first round learns who answers and the furthest entry S; the next rounds
 * ask each replica to wait (bounded) until it has applied S and to give
 * its chain digest at S besides its current digests. The chain digests at
 * S must all be equal; the state digests are compared between replicas at
 * the same entry, and the rounds repeat (a few times) while writes move
 * them apart. */
#include "kcobra_ledger_replicas.h"

#include <inttypes.h>
#include <jansson.h>
#include <nats/nats.h>
#include <stdio.h>
#include <string.h>

#include "common/clock.h"

#define DIGEST_SUBJECT "kc.sys.ledger.digest"

enum {
    FIRST_ROUND_MS = 1500,    /* everyone answers a request that waits for nothing */
    CATCH_UP_WAIT_MS = 10000, /* how long a replica may wait for entry S */
    ROUNDS_MAX = 5,
    REPLICAS_MAX = 64,
};

typedef struct round_answers {
    json_t *replies[REPLICAS_MAX];
    int count;
} round_answers;

static void answers_free(round_answers *answers)
{
    for (int index = 0; index < answers->count; index++)
        json_decref(answers->replies[index]);
    answers->count = 0;
}

/* Asks every replica; collects answers until expected have come (0: until
 * the time is up) or collect_ms passed. */
static int ask(natsConnection *connection, uint64_t at_least, int expected, int64_t collect_ms,
               round_answers *answers)
{
    char inbox[128];
    natsInbox *generated = NULL;
    natsSubscription *subscription = NULL;
    if (natsInbox_Create(&generated) != NATS_OK) return KCOBRA_EXIT_FAILURE;
    snprintf(inbox, sizeof inbox, "%s", (const char *)generated);
    natsInbox_Destroy(generated);
    char body[128];
    snprintf(body, sizeof body, "{\"at_least\":%" PRIu64 ",\"wait_ms\":%d}", at_least,
             CATCH_UP_WAIT_MS);
    if (natsConnection_SubscribeSync(&subscription, connection, inbox) != NATS_OK ||
        natsConnection_PublishRequestString(connection, DIGEST_SUBJECT, inbox, body) != NATS_OK) {
        natsSubscription_Destroy(subscription);
        kcobra_error("cannot ask the ledger replicas: %s", kcobra_nats_error(NATS_ERR));
        return KCOBRA_EXIT_FAILURE;
    }
    int64_t deadline_ms = kci_monotonic_ms() + collect_ms;
    while (answers->count < REPLICAS_MAX && (expected == 0 || answers->count < expected)) {
        int64_t left_ms = deadline_ms - kci_monotonic_ms();
        natsMsg *message = NULL;
        if (left_ms <= 0 || natsSubscription_NextMsg(&message, subscription, left_ms) != NATS_OK)
            break;
        json_t *reply =
            json_loadb(natsMsg_GetData(message), (size_t)natsMsg_GetDataLength(message), 0, NULL);
        if (json_is_string(json_object_get(reply, "content")))
            answers->replies[answers->count++] = reply;
        else
            json_decref(reply);
        natsMsg_Destroy(message);
    }
    natsSubscription_Destroy(subscription);
    return KCOBRA_EXIT_OK;
}

static uint64_t sequence_of(const json_t *reply)
{
    return (uint64_t)json_integer_value(json_object_get(reply, "sequence"));
}

static const char *text_of(const json_t *reply, const char *key)
{
    const char *text = json_string_value(json_object_get(reply, key));
    return text != NULL ? text : "";
}

static const char *chain_at(const json_t *reply)
{
    return text_of(json_object_get(reply, "chain_at"), "digest");
}

/* Whether every replica's chain digest at target agrees, and every two at
 * the same entry hold the same state; *settled: all at the same entry. */
static bool compare(const round_answers *answers, uint64_t target, bool *settled)
{
    bool same = true;
    *settled = true;
    for (int index = 0; index < answers->count; index++) {
        const json_t *reply = answers->replies[index], *first = answers->replies[0];
        if (sequence_of(reply) != sequence_of(first)) *settled = false;
        if (strcmp(chain_at(reply), chain_at(first)) != 0 || chain_at(reply)[0] == '\0')
            same = false;
        for (int other = 0; other < index; other++) {
            const json_t *earlier = answers->replies[other];
            if (sequence_of(earlier) == sequence_of(reply) &&
                (strcmp(text_of(earlier, "content"), text_of(reply, "content")) != 0 ||
                 strcmp(text_of(earlier, "chain"), text_of(reply, "chain")) != 0))
                same = false;
        }
    }
    (void)target;
    return same;
}

static int report(const kcobra_common *common, const round_answers *answers, uint64_t target,
                  bool same, bool settled)
{
    bool ok = same && settled;
    if (common->json) {
        json_t *replicas = json_array();
        for (int index = 0; index < answers->count; index++)
            json_array_append(replicas, answers->replies[index]);
        kcobra_json_print(json_pack("{s:b, s:b, s:I, s:i, s:o}", "ok", ok, "settled", settled,
                                    "sequence", (json_int_t)target, "count", answers->count,
                                    "replicas", replicas));
    } else {
        printf("%-24s  %-6s  %-10s  %-16s  %-16s  %s\n", "NODE", "ACTIVE", "ENTRY", "CHAIN",
               "STATE", "CHAIN AT TARGET");
        for (int index = 0; index < answers->count; index++) {
            const json_t *reply = answers->replies[index];
            printf("%-24.24s  %-6s  %-10" PRIu64 "  %-16.16s  %-16.16s  %.16s\n",
                   text_of(reply, "node"),
                   json_is_true(json_object_get(reply, "active")) ? "yes" : "no",
                   sequence_of(reply), text_of(reply, "chain"), text_of(reply, "content"),
                   chain_at(reply));
        }
        printf("replicas %s: %d compared at log entry %" PRIu64 "%s\n", ok ? "agree" : "DIFFER",
               answers->count, target, settled ? "" : " (still moving apart: writes went on)");
    }
    return ok ? KCOBRA_EXIT_OK : KCOBRA_EXIT_FAILURE;
}

int kcobra_ledger_audit_replicas(const kcobra_common *common)
{
    natsConnection *connection = NULL;
    int status = kcobra_nats_connect(&connection, common);
    if (status != KCOBRA_EXIT_OK) return status;
    round_answers answers = {0};
    status = ask(connection, 0, 0, FIRST_ROUND_MS, &answers);
    int replicas = answers.count;
    uint64_t target = 0;
    for (int index = 0; index < answers.count; index++)
        if (sequence_of(answers.replies[index]) > target)
            target = sequence_of(answers.replies[index]);
    bool same = false, settled = false;
    for (int round = 0; status == KCOBRA_EXIT_OK && replicas > 0 && round < ROUNDS_MAX; round++) {
        answers_free(&answers);
        status = ask(connection, target, replicas, CATCH_UP_WAIT_MS + FIRST_ROUND_MS, &answers);
        same = compare(&answers, target, &settled);
        if (!same || settled) break;
        for (int index = 0; index < answers.count; index++)
            if (sequence_of(answers.replies[index]) > target)
                target = sequence_of(answers.replies[index]);
    }
    kcobra_nats_finish(connection);
    if (status == KCOBRA_EXIT_OK && replicas == 0) {
        kcobra_error("no ledger replica answered on %s (is a ledger running with storage "
                     "jetstream?)",
                     DIGEST_SUBJECT);
        status = KCOBRA_EXIT_NO_RESPONDERS;
    } else if (status == KCOBRA_EXIT_OK) {
        if (answers.count < replicas) same = false; /* one stopped answering: say so */
        status = report(common, &answers, target, same, settled);
    }
    answers_free(&answers);
    return status;
}
