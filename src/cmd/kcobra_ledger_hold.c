/* kcobra_ledger_hold.c - escrow from the command line (docs/ledger.md,
 * "Escrow: holds"):
 *   kcobra ledger hold --from W --to ADDR --amount A [--expires D]
 *       holds A of W's coins for ADDR (picking coins, making change) and
 *       prints the hold's id: a paid request carries it as Kc-Pay-Hold
 *       (`kcobra request --pay-hold ID`);
 *   kcobra ledger post --hold ID --wallet W [--request KC-ID]
 *   kcobra ledger void --hold ID --wallet W [--request KC-ID]
 *       the payee W settles its hold: post takes the coins, void gives
 *       them back. Signed here with W's key; the ledger refuses anyone
 *       else's.
 * Exit status as every ledger command: a refusal is 5 with the ledger's
 * message. */
#include "kcobra_ledger_hold.h"

#include <stdio.h>
#include <string.h>

#include "ledger/settle_sign.h"

enum {
    HOLD_EXPIRES_MS_DEFAULT = 10 * 60 * 1000,
};

static int hold_make(const kcobra_command *command, const kcobra_invocation *invocation,
                     const kcobra_hold_arguments *arguments)
{
    if (arguments->from == NULL || arguments->to == NULL || arguments->amount_text == NULL)
        return kcobra_usage_error(command, "hold needs --from, --to and --amount");
    int64_t hold_ms = arguments->expires_ms > 0 ? arguments->expires_ms : HOLD_EXPIRES_MS_DEFAULT;
    if (hold_ms > KCI_LEDGER_HOLD_MS_MAX)
        return kcobra_usage_error(command, "--expires is at most 7 days");
    return kcobra_ledger_pay_run(command, invocation, arguments->directory, arguments->from,
                                 arguments->to, arguments->amount_text, hold_ms);
}

/* The signed body of a post or void by wallet. */
static json_t *settle_body(kci_ledger_settle settle, const uint8_t hold[KCI_LEDGER_ID_BYTES],
                           const char *request, const kci_wallet *wallet)
{
    uint8_t signature[KCI_LEDGER_SIGNATURE_BYTES];
    kci_ledger_settle_sign(signature, settle, hold, request, 0, wallet->secret_key);
    char hold_text[37], payee[KCI_LEDGER_ADDRESS_TEXT_BYTES + 1];
    char signature_text[KCI_LEDGER_SIGNATURE_TEXT_BYTES + 1];
    kci_ledger_id_text(hold_text, hold);
    kci_ledger_hex(payee, wallet->public_key, KCI_LEDGER_KEY_BYTES);
    kci_ledger_hex(signature_text, signature, KCI_LEDGER_SIGNATURE_BYTES);
    json_t *body = json_pack("{s:s, s:s, s:s}", "hold", hold_text, "payee", payee, "signature",
                             signature_text);
    if (body != NULL && request != NULL && request[0] != '\0')
        json_object_set_new(body, "request", json_string(request));
    return body;
}

static int hold_settle(const kcobra_command *command, const kcobra_invocation *invocation,
                       bool post, const kcobra_hold_arguments *arguments)
{
    uint8_t hold[KCI_LEDGER_ID_BYTES], request_bytes[KCI_LEDGER_ID_BYTES];
    if (arguments->hold == NULL || arguments->wallet == NULL)
        return kcobra_usage_error(command, "%s needs --hold ID and --wallet W (the payee)",
                                  post ? "post" : "void");
    if (!kci_ledger_id_parse(hold, arguments->hold))
        return kcobra_usage_error(command, "--hold: '%s' is not a hold id", arguments->hold);
    if (arguments->request != NULL && !kci_ledger_id_parse(request_bytes, arguments->request))
        return kcobra_usage_error(command, "--request: '%s' is not a Kc-Id", arguments->request);
    kci_wallet wallet;
    int status = kcobra_ledger_wallet_open(&wallet, arguments->directory, arguments->wallet);
    if (status != KCOBRA_EXIT_OK) return status;
    json_t *body = settle_body(post ? KCI_LEDGER_SETTLE_POST : KCI_LEDGER_SETTLE_VOID, hold,
                               arguments->request, &wallet);
    kci_wallet_wipe(&wallet);
    natsConnection *connection = NULL;
    status = kcobra_nats_connect(&connection, &invocation->common);
    if (status != KCOBRA_EXIT_OK) {
        json_decref(body);
        return status;
    }
    json_t *reply = NULL;
    kci_ledger_refusal refusal;
    kc_err err = kci_ledger_call(&reply, connection, post ? "hold.post" : "hold.void", body,
                                 invocation->common.timeout_ms, &refusal);
    kcobra_nats_finish(connection);
    if (err != KC_OK) {
        json_decref(reply); /* a refusal's body */
        return kcobra_ledger_exit_for(err, &refusal);
    }
    if (invocation->common.json)
        status = kcobra_json_print(json_incref(reply));
    else
        printf("hold %s: %s%s\n", arguments->hold,
               json_string_value(json_object_get(reply, "state")),
               json_is_true(json_object_get(reply, "replayed")) ? " (already)" : "");
    json_decref(reply);
    return status;
}

int kcobra_ledger_hold_run(const kcobra_command *command, const kcobra_invocation *invocation,
                           const char *action, const kcobra_hold_arguments *arguments)
{
    if (strcmp(action, "hold") == 0) return hold_make(command, invocation, arguments);
    return hold_settle(command, invocation, strcmp(action, "post") == 0, arguments);
}
