/* probes_qos_test.c - the arbiters' own probes are not QoS samples
 * (src/arbiter/arbiter.c, settle; argv[1] is kcobrad, with any other
 * server the program skips, exit 77).
 *
 * A node can tell the arbiters' probes (their requester is an arbiter, or
 * for kcobrad's own the server's node name) from its customers' requests: "cheat" answers the
 * probes well and every customer with error 500 (as a node that takes payment without service
 * would). The arbiter probes it every 100 ms for 2 s first, then a
 * customer sends 15 requests. The probes used to count as good QoS
 * samples and outnumbered the failures (a score near 0.8: no verdict);
 * now the node is judged on its customers' requests alone and is
 * quarantined, the reason "failing". Bounded waits only. */
#include <jansson.h>
#include <nats/nats.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "fixture.h"
#include "kingcobra/kingcobra.h"

enum {
    EXIT_SKIP = 77,
    REQUEST_TIMEOUT_MS = 3000,
    PROBING_FIRST_MS = 2000,
    CUSTOMER_REQUESTS = 15,
    VERDICT_WAIT_MS = 5000,
};

static const char CONFIG[] =
    "arbiter {\n  enabled: true\n  id: \"arb\"\n  tick: \"100ms\"\n  qos_samples: 10\n"
    "  probe_interval: \"100ms\"\n  probe_timeout: \"100ms\"\n  probes: [\"t=1\"]\n"
    "  quarantine: \"1h\"\n}\n";

static void sleep_ms(int duration_ms)
{
    struct timespec pause = {duration_ms / 1000, (duration_ms % 1000) * 1000000L};
    nanosleep(&pause, NULL);
}

/* Fails its customer, serves everyone else: the probes of kcobrad's
 * arbiter carry the server's node name. */
static void cheating_handler(const kc_request *request, kc_response *response, void *closure)
{
    (void)closure;
    const char *requester = kc_request_node(request);
    if (requester != NULL && strcmp(requester, "customer") == 0)
        kc_response_set_error(response, 500, "out of order");
    else
        kc_response_set_payload(response, "3", 1);
}

static kc_client *open_client(fixture *f, const char *name)
{
    kc_client_options options;
    kc_client_options_init(&options);
    options.servers = f->server.url;
    options.node = name;
    options.name = name;
    kc_client *client = NULL;
    assert_int_equal(kc_client_open(&client, &options), KC_OK);
    return client;
}

/* The reasons of the first quarantine verdict about name, or NULL. */
static json_t *quarantine_reasons(natsSubscription *verdicts, const char *name)
{
    natsMsg *message = NULL;
    while (natsSubscription_NextMsg(&message, verdicts, VERDICT_WAIT_MS) == NATS_OK) {
        json_t *root =
            json_loadb(natsMsg_GetData(message), (size_t)natsMsg_GetDataLength(message), 0, NULL);
        natsMsg_Destroy(message);
        const char *node = json_string_value(json_object_get(root, "node"));
        const char *action = json_string_value(json_object_get(root, "action"));
        if (node != NULL && action != NULL && strcmp(node, name) == 0 &&
            strcmp(action, "quarantine") == 0) {
            json_t *reasons =
                json_incref(json_object_get(json_object_get(root, "evidence"), "reasons"));
            json_decref(root);
            return reasons;
        }
        json_decref(root);
    }
    return NULL;
}

static void test_probes_do_not_hide_failures(void **state)
{
    fixture *f = fixture_of(state);
    fixture_start(f, CONFIG);
    natsConnection *watcher = fixture_connect(f);
    natsSubscription *verdicts = fixture_subscribe_flushed(f, watcher, "kc.arbiter.verdict");
    kc_client *cheat = open_client(f, "cheat");
    kc_service *service = NULL;
    assert_int_equal(kc_service_start(&service, cheat, "t", cheating_handler, NULL, NULL), KC_OK);
    sleep_ms(PROBING_FIRST_MS); /* probes: good answers, about 20 rounds */
    kc_client *customer = open_client(f, "customer");
    for (int i = 0; i < CUSTOMER_REQUESTS; i++) {
        kc_reply *reply = NULL;
        kc_err err = kc_client_request(&reply, customer, "t", "1", 1, REQUEST_TIMEOUT_MS);
        kc_reply_destroy(reply);
        if (err == KC_ERR_NO_RESPONDERS) break; /* quarantined already */
        assert_int_equal(err, KC_ERR_SERVICE);
    }
    json_t *reasons = quarantine_reasons(verdicts, "cheat");
    assert_non_null(reasons);
    bool failing = false;
    size_t index;
    json_t *reason;
    json_array_foreach(reasons, index, reason)
    {
        failing |= json_is_string(reason) && strcmp(json_string_value(reason), "failing") == 0;
    }
    json_decref(reasons);
    assert_true(failing);
    kc_client_close(customer, 2000);
    kc_service_stop(service);
    kc_client_close(cheat, 2000);
}

int main(int argc, char **argv)
{
    if (!fixture_parse_arguments(argc, argv)) return 2;
    if (strstr(fixture_server_binary, "kcobrad") == NULL) {
        fprintf(stderr, "probes_qos_test: only kcobrad hosts an arbiter; skipping\n");
        return EXIT_SKIP;
    }
    const struct CMUnitTest tests[] = {
        FIXTURE_CASE(test_probes_do_not_hide_failures),
    };
    return cmocka_run_group_tests(tests, fixture_group_setup, fixture_group_teardown);
}
