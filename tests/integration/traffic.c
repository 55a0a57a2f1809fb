/* traffic.c - something for kcobrad's components to show (see traffic.h). */
#include "traffic.h"

#include <sodium.h>
#include <string.h>
#include <time.h>

/* clang-format off */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
/* clang-format on */

#include "ledger/client.h"

static void sleep_ms(int duration_ms)
{
    struct timespec pause = {duration_ms / 1000, (duration_ms % 1000) * 1000000L};
    nanosleep(&pause, NULL);
}

void traffic_echo(const kc_request *request, kc_response *response, void *closure)
{
    if (closure != NULL) sleep_ms(TRAFFIC_SLOW_MS);
    size_t len = 0;
    const void *payload = kc_request_payload(request, &len);
    kc_response_set_payload(response, payload, len);
}

kc_client *traffic_open_client(const char *url, const char *name)
{
    kc_client_options options;
    kc_client_options_init(&options);
    options.servers = url;
    options.node = name;
    options.name = name; /* the broker knows the node by its connection name */
    kc_client *client = NULL;
    assert_int_equal(kc_client_open(&client, &options), KC_OK);
    return client;
}

static json_t *call_ok(natsConnection *connection, const char *operation, json_t *body)
{
    json_t *reply = NULL;
    kci_ledger_refusal refusal;
    kc_err err =
        kci_ledger_call(&reply, connection, operation, body, TRAFFIC_REQUEST_TIMEOUT_MS, &refusal);
    if (err != KC_OK) fail_msg("kc.ledger.%s: %d %s", operation, refusal.code, refusal.message);
    return reply;
}

/* The ledger's Kc-Error code for a transfer (0: applied). */
static int transfer_code(natsConnection *connection, const kci_ledger_transfer *transfer)
{
    json_t *reply = NULL;
    kci_ledger_refusal refusal;
    kc_err err = kci_ledger_call(&reply, connection, "transfer", kci_ledger_transfer_json(transfer),
                                 TRAFFIC_REQUEST_TIMEOUT_MS, &refusal);
    json_decref(reply);
    return err == KC_OK ? 0 : refusal.code;
}

void traffic_drive_ledger(natsConnection *connection)
{
    kci_wallet alice, bob;
    crypto_sign_keypair(alice.public_key, alice.secret_key);
    crypto_sign_keypair(bob.public_key, bob.secret_key);
    char address[65];
    kci_ledger_hex(address, alice.public_key, 32);
    json_t *reply = call_ok(connection, "mint",
                            json_pack("{s:s, s:[i,i]}", "to", address, "denominations", 10, 10));
    json_t *coins = json_object_get(json_array_get(json_object_get(reply, "issued"), 0), "coins");
    kci_ledger_coin coin[2];
    for (size_t i = 0; i < 2; i++) {
        assert_true(kci_ledger_id_parse(
            coin[i].id, json_string_value(json_object_get(json_array_get(coins, i), "id"))));
        coin[i].denomination = 10;
    }
    json_decref(reply);
    kci_ledger_transfer transfer;
    assert_int_equal(kci_ledger_transfer_make(&transfer, &alice, bob.public_key, &coin[0], 1),
                     KC_OK);
    assert_int_equal(transfer_code(connection, &transfer), 0);
    kci_ledger_transfer_free(&transfer);
    assert_int_equal(kci_ledger_transfer_make(&transfer, &alice, bob.public_key, &coin[0], 1),
                     KC_OK);
    assert_int_equal(transfer_code(connection, &transfer), 409); /* spent already */
    kci_ledger_transfer_free(&transfer);
    assert_int_equal(kci_ledger_transfer_make(&transfer, &alice, bob.public_key, &coin[1], 1),
                     KC_OK);
    transfer.signature[5] ^= 1;
    assert_int_equal(transfer_code(connection, &transfer), 401);
    kci_ledger_transfer_free(&transfer);
}

void traffic_drive_arbiter(const char *url, kc_client *requester, bool (*quarantined)(void))
{
    kc_client *good = traffic_open_client(url, "good"), *bad = traffic_open_client(url, "bad");
    kc_service *good_service = NULL, *bad_service = NULL;
    assert_int_equal(kc_service_start(&good_service, good, "t", traffic_echo, NULL, NULL), KC_OK);
    assert_int_equal(kc_service_start(&bad_service, bad, "t", traffic_echo, bad, NULL), KC_OK);
    bool done = false;
    for (int i = 0; i < TRAFFIC_DETECT_REQUESTS_MAX && !done; i++) {
        kc_reply *reply = NULL;
        kc_err err = kc_client_request(&reply, requester, "t", "x", 1, TRAFFIC_REQUEST_TIMEOUT_MS);
        kc_reply_destroy(reply);
        assert_int_equal(err, KC_OK);
        if (i % 10 == 9) done = quarantined();
    }
    assert_true(done);
    kc_service_stop(bad_service);
    kc_service_stop(good_service);
    kc_client_close(bad, 2000);
    kc_client_close(good, 2000);
}
