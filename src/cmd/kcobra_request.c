/* kcobra_request.c - `kcobra request <type> [payload|-]`: one typed request
 * through libkingcobra (subject kc.req.<type>, with the KingCobra headers),
 * its reply's payload on stdout, byte for byte.
 *
 * The outcome is the exit status, so scripts can tell "nobody serves this"
 * (4) from "too slow" (3) from "the service said no" (5). An error reply's
 * code and message go to stderr (and into the JSON with --json); the reply
 * payload of an error reply is not printed without --json. */
#include <stdio.h>
#include <string.h>

#include "kcobra_common.h"
#include "ledger/wallet.h"

static const char REQUEST_DESCRIPTION[] =
    "Sends a request of <type> on subject kc.req.<type> and waits up to --timeout for the\n"
    "reply, whose payload is printed to stdout as it is (on a terminal a newline is added\n"
    "when it lacks one). The payload is the argument; '-' reads it from stdin, as does\n"
    "giving no payload while stdin is not a terminal.\n"
    "\n"
    "With --json one line is printed:\n"
    "  "
    "{\"id\":...,\"request_id\":...,\"node\":...,\"timestamp\":...,\"payload\":...,\"error\":null}"
    "\n"
    "\"payload\" is \"payload_base64\" when the reply is not valid UTF-8; \"error\" is\n"
    "{\"code\":N,\"message\":...} for an error reply.\n"
    "\n"
    "Examples:\n"
    "  kcobra request echo hello\n"
    "  kcobra request thumbnail - < photo.jpg > thumb.jpg\n"
    "  kcobra request echo hello --json --timeout 500ms\n"
    "  kcobra request translate 'hello' --pay \"$(kcobra pay --from alice --to shop --amount 5)\"\n"
    "\n"
    "  kcobra request translate 'hello' \\\n"
    "      --pay-hold \"$(kcobra ledger hold --from alice --to shop --amount 5)\"\n"
    "\n"
    "--pay-hold ID (the way to pay) sends Kc-Pay-Hold: a ledger hold of the payer's\n"
    "coins (escrow) that the service posts when it answers and voids when it\n"
    "answers an error, so a failed request costs nothing; an unsettled hold\n"
    "returns by itself at its expiry. --pay ID sends Kc-Pay: a transfer already\n"
    "made, which the service keeps whatever it answers (docs/ledger.md). A\n"
    "service that refuses the payment answers error 402 (exit 5).\n";

static json_t *string_or_null(const char *text)
{
    json_t *value = text != NULL ? json_string(text) : NULL;
    return value != NULL ? value : json_null();
}

static int print_reply_json(const kc_reply *reply)
{
    json_t *object = json_object();
    if (object == NULL) return kcobra_json_print(NULL);
    json_object_set_new(object, "id", string_or_null(kc_reply_id(reply)));
    json_object_set_new(object, "request_id", string_or_null(kc_reply_request_id(reply)));
    json_object_set_new(object, "node", string_or_null(kc_reply_node(reply)));
    json_object_set_new(object, "timestamp", string_or_null(kc_reply_timestamp(reply)));
    size_t payload_length = 0;
    const void *payload = kc_reply_payload(reply, &payload_length);
    if (kcobra_json_set_payload(object, payload, payload_length) != 0) {
        json_decref(object);
        return kcobra_json_print(NULL);
    }
    json_t *error = json_null();
    if (kc_reply_error_code(reply) != 0)
        error = json_pack("{s:i,s:o}", "code", kc_reply_error_code(reply), "message",
                          string_or_null(kc_reply_error_message(reply)));
    json_object_set_new(object, "error", error != NULL ? error : json_null());
    return kcobra_json_print(object);
}

static int report_failure(kc_err err, const char *type, const kcobra_common *common)
{
    char timeout_text[KCOBRA_DURATION_TEXT_BYTES];
    kcobra_format_duration_ms(common->timeout_ms, timeout_text);
    const char *detail = kc_last_error();
    switch (err) {
    case KC_ERR_NO_RESPONDERS:
        kcobra_error("no service serves type '%s' (no responders)", type);
        break;
    case KC_ERR_TIMEOUT:
    case KC_ERR_EXPIRED: kcobra_error("timed out after %s (%s)", timeout_text, detail); break;
    case KC_ERR_TOO_LARGE:
    case KC_ERR_LIMIT:
        kcobra_error("request not sent: %s", detail); /* it names max_payload and its value */
        break;
    case KC_ERR_NOT_CONNECTED:
    case KC_ERR_CLOSED:
        kcobra_error("lost the connection to %s: %s", common->server, detail);
        break;
    default:
        kcobra_error("request of type '%s' failed: %s (%s)", type, detail, kc_strerror(err));
        break;
    }
    return kcobra_exit_for_error(err);
}

static int request_send(kc_client *client, const kcobra_invocation *invocation, const char *type,
                        const kcobra_buffer *payload, const char *pay, const char *pay_hold)
{
    kc_reply *reply = NULL;
    int64_t timeout_ms = invocation->common.timeout_ms;
    kc_err err = pay_hold != NULL ? kc_client_request_held(&reply, client, type, payload->bytes,
                                                           payload->length, timeout_ms, pay_hold)
                 : pay != NULL    ? kc_client_request_paid(&reply, client, type, payload->bytes,
                                                           payload->length, timeout_ms, pay)
                                  : kc_client_request(&reply, client, type, payload->bytes,
                                                      payload->length, timeout_ms);
    /* A refused payment is an error reply like any other service error. */
    if (err == KC_ERR_PAYMENT) err = KC_ERR_SERVICE;
    if (err != KC_OK && !(err == KC_ERR_SERVICE && reply != NULL)) {
        if (reply != NULL) kc_reply_destroy(reply);
        return report_failure(err, type, &invocation->common);
    }
    int status = KCOBRA_EXIT_OK;
    if (invocation->common.json) {
        status = print_reply_json(reply);
    } else if (err == KC_OK) {
        size_t reply_length = 0;
        const void *reply_payload = kc_reply_payload(reply, &reply_length);
        status = kcobra_write_payload(reply_payload, reply_length);
    }
    if (err == KC_ERR_SERVICE) {
        const char *message = kc_reply_error_message(reply);
        kcobra_error("service error %d: %s", kc_reply_error_code(reply),
                     message != NULL ? message : "");
        status = KCOBRA_EXIT_SERVICE_ERROR;
    }
    kc_reply_destroy(reply);
    return status;
}

/* --qos-key: the reporter's key, for the client's options (key outlives the
 * client). */
static int qos_key_load(kci_wallet *key, const char *path, kcobra_common *common)
{
    memset(key, 0, sizeof *key);
    if (path == NULL) return KCOBRA_EXIT_OK;
    char error[KCI_LEDGER_ERROR_BYTES_MAX + 256];
    if (kci_wallet_load(key, path, error, sizeof error) != KC_OK) {
        kcobra_error("--qos-key: %s", error);
        return KCOBRA_EXIT_USAGE;
    }
    common->qos_secret_key = key->secret_key;
    return KCOBRA_EXIT_OK;
}

static int run_request(const kcobra_command *command, int argc, char **argv)
{
    const char *pay = NULL, *pay_hold = NULL, *qos_key = NULL;
    const kcobra_flag flags[] = {
        {"qos-key", "FILE", KCOBRA_FLAG_STRING, &qos_key,
         "a key file (kcobra wallet new): report the reply as a signed QoS sample"},
        {"pay", "ID", KCOBRA_FLAG_STRING, &pay,
         "the ledger transfer that paid a paid service (sent as Kc-Pay)"},
        {"pay-hold", "ID", KCOBRA_FLAG_STRING, &pay_hold,
         "a ledger hold for a paid service, settled by its answer (sent as Kc-Pay-Hold)"},
    };
    kcobra_invocation invocation;
    int status = kcobra_parse(command, flags, KCOBRA_ARRAY_COUNT(flags), argc, argv, &invocation);
    if (status != KCOBRA_EXIT_OK || invocation.help) return status;
    const char *type = invocation.positional[0];
    if (pay != NULL && pay_hold != NULL)
        return kcobra_usage_error(command, "--pay and --pay-hold: one payment per request");
    if (!kcobra_token_valid(type, KC_TYPE_BYTES_MAX))
        return kcobra_usage_error(command,
                                  "invalid request type '%s': one subject token of at most %d "
                                  "bytes, without '.', '*', '>' or spaces",
                                  type, KC_TYPE_BYTES_MAX);
    kcobra_buffer payload;
    status = kcobra_read_payload(invocation.positional_count > 1 ? invocation.positional[1] : NULL,
                                 &payload);
    if (status != KCOBRA_EXIT_OK) return status;
    kci_wallet key;
    status = qos_key_load(&key, qos_key, &invocation.common);
    kc_client *client = NULL;
    if (status == KCOBRA_EXIT_OK) status = kcobra_client_open(&client, &invocation.common);
    if (status == KCOBRA_EXIT_OK)
        status = request_send(client, &invocation, type, &payload, pay, pay_hold);
    kcobra_client_close(client);
    kci_wallet_wipe(&key);
    kcobra_buffer_free(&payload);
    return status;
}

const kcobra_command kcobra_command_request = {
    .name = "request",
    .synopsis = "request <type> [payload|-] [--pay-hold ID | --pay ID]",
    .summary = "send a request of <type> and print the reply",
    .description = REQUEST_DESCRIPTION,
    .run = run_request,
    .positional_min = 1,
    .positional_max = 2,
};
