/* client.c - calls to the ledger and payment (client.h).
 *
 * Choosing coins: the largest coins first, each taken while it does not
 * overshoot; if that reaches the amount exactly, they are paid as they are.
 * Otherwise the largest coins are taken until they cover the amount, and
 * exchanged at the mint for one coin of the amount and one of the change,
 * then the new coin is paid. Greedy is not optimal (fewest coins), but it
 * always succeeds when the balance suffices. */
#include "client.h"

#include <assert.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "service/call.h"
#include "service/headers.h"
#include "service/uuid.h"

enum {
    SEND_ATTEMPTS_MAX = 3, /* a signed transfer is sent again after a timeout */
};

static kc_err refuse(kci_ledger_refusal *refusal, kc_err err, int code, const char *format, ...)
    __attribute__((format(printf, 4, 5)));

static kc_err refuse(kci_ledger_refusal *refusal, kc_err err, int code, const char *format, ...)
{
    refusal->code = code;
    va_list arguments;
    va_start(arguments, format);
    vsnprintf(refusal->message, sizeof refusal->message, format, arguments);
    va_end(arguments);
    return err;
}

kc_err kci_ledger_call(json_t **out, natsConnection *connection, const char *operation,
                       json_t *body, int64_t timeout_ms, kci_ledger_refusal *refusal)
{
    *out = NULL;
    *refusal = (kci_ledger_refusal){0};
    char subject[64];
    snprintf(subject, sizeof subject, "kc.ledger.%s", operation);
    if (body == NULL) body = json_object();
    char *text = body != NULL ? json_dumps(body, JSON_COMPACT) : NULL;
    json_decref(body);
    if (text == NULL) return refuse(refusal, KC_ERR_NOMEM, 0, "out of memory");
    natsMsg *reply = NULL;
    kci_refusal refused;
    kc_err err = kci_call(&reply, connection, subject, text, strlen(text), timeout_ms, &refused);
    free(text);
    if (err == KC_ERR_TIMEOUT)
        return refuse(refusal, err, 0, "the ledger did not answer %s in time", subject);
    if (err == KC_ERR_NO_RESPONDERS)
        return refuse(refusal, err, 0,
                      "no ledger answers on %s (start kcobrad or kcobra ledger serve)", subject);
    if (err == KC_ERR_PERMISSION) /* e.g. a mint by a client that is not an operator */
        return refuse(refusal, err, 0, "%s", kc_last_error());
    if (err != KC_OK && err != KC_ERR_SERVICE)
        return refuse(refusal, KC_ERR_IO, 0, "%s", kc_last_error());
    if (err == KC_ERR_SERVICE) {
        refusal->code = refused.code;
        kci_text_copy(refusal->message, sizeof refusal->message, refused.message);
    }
    json_error_t json_error;
    *out = json_loadb(natsMsg_GetData(reply), (size_t)natsMsg_GetDataLength(reply), 0, &json_error);
    natsMsg_Destroy(reply);
    if (err == KC_ERR_SERVICE) return err;
    if (*out == NULL)
        return refuse(refusal, KC_ERR_PARSE, 0, "the ledger's answer is not JSON: %s",
                      json_error.text);
    return KC_OK;
}

kc_err kci_ledger_wallet_coins(kci_ledger_coin **coins, uint32_t *count,
                               uint8_t mint[KCI_LEDGER_KEY_BYTES], natsConnection *connection,
                               const uint8_t wallet[KCI_LEDGER_KEY_BYTES], int64_t timeout_ms,
                               kci_ledger_refusal *refusal)
{
    *coins = NULL;
    *count = 0;
    char address[KCI_LEDGER_ADDRESS_TEXT_BYTES + 1];
    kci_ledger_hex(address, wallet, KCI_LEDGER_KEY_BYTES);
    json_t *after = json_null();
    kc_err err = KC_OK;
    while (err == KC_OK) {
        json_t *reply = NULL;
        json_t *body = json_pack("{s:s}", "wallet", address);
        if (!json_is_null(after)) json_object_set(body, "after", after);
        err = kci_ledger_call(&reply, connection, "coins", body, timeout_ms, refusal);
        json_t *page = json_object_get(reply, "coins");
        size_t size = json_array_size(page);
        if (err == KC_OK && *count + size > KCI_LEDGER_CLIENT_COINS_MAX)
            err = refuse(refusal, KC_ERR_LIMIT, 0, "the wallet holds more than %d coins",
                         KCI_LEDGER_CLIENT_COINS_MAX);
        kci_ledger_coin *grown =
            err == KC_OK ? realloc(*coins, (*count + size + 1) * sizeof **coins) : NULL;
        if (err == KC_OK && grown == NULL) err = refuse(refusal, KC_ERR_NOMEM, 0, "out of memory");
        if (grown != NULL) *coins = grown;
        for (size_t index = 0; err == KC_OK && index < size; index++) {
            json_t *entry = json_array_get(page, index);
            kci_ledger_coin *coin = &(*coins)[(*count)++];
            json_int_t denomination = json_integer_value(json_object_get(entry, "denomination"));
            if (!kci_ledger_id_parse(coin->id, json_string_value(json_object_get(entry, "id"))) ||
                denomination <= 0)
                err = refuse(refusal, KC_ERR_PARSE, 0, "the ledger listed a malformed coin");
            coin->denomination = (uint64_t)denomination;
        }
        if (err == KC_OK &&
            !kci_ledger_address_parse(mint, json_string_value(json_object_get(reply, "mint"))))
            err = refuse(refusal, KC_ERR_PARSE, 0, "the ledger did not say its mint's address");
        json_decref(after);
        after = json_incref(json_object_get(reply, "next"));
        json_decref(reply);
        if (after == NULL || json_is_null(after)) break;
    }
    json_decref(after);
    if (err != KC_OK) {
        free(*coins);
        *coins = NULL;
        *count = 0;
    }
    return err;
}

static kc_err transfer_fill(kci_ledger_transfer *out, kci_ledger_kind kind,
                            const kci_wallet *wallet, const uint8_t to[KCI_LEDGER_KEY_BYTES],
                            const kci_ledger_coin *coins, uint32_t coin_count)
{
    memset(out, 0, sizeof *out);
    if (coin_count == 0 || coin_count > KCI_LEDGER_COINS_PER_TRANSFER_MAX)
        return KC_ERR_INVALID_ARGUMENT;
    out->coins = malloc(coin_count * sizeof *out->coins);
    if (out->coins == NULL) return KC_ERR_NOMEM;
    memcpy(out->coins, coins, coin_count * sizeof *coins);
    out->coin_count = coin_count;
    if (!kci_ledger_coins_sort(out->coins, coin_count)) {
        kci_ledger_transfer_free(out);
        return KC_ERR_INVALID_ARGUMENT;
    }
    kci_uuid uuid;
    kci_uuid_v7(&uuid);
    memcpy(out->id, uuid.bytes, KCI_LEDGER_ID_BYTES);
    out->kind = (uint8_t)kind;
    memcpy(out->from, wallet->public_key, KCI_LEDGER_KEY_BYTES);
    memcpy(out->to, to, KCI_LEDGER_KEY_BYTES);
    out->time_ms = kci_wall_ms();
    for (uint32_t index = 0; index < coin_count; index++)
        out->amount += coins[index].denomination;
    return KC_OK;
}

kc_err kci_ledger_transfer_make(kci_ledger_transfer *out, const kci_wallet *wallet,
                                const uint8_t to[KCI_LEDGER_KEY_BYTES],
                                const kci_ledger_coin *coins, uint32_t coin_count)
{
    kc_err err = transfer_fill(out, KCI_LEDGER_KIND_TRANSFER, wallet, to, coins, coin_count);
    if (err == KC_OK) err = kci_ledger_sign(out, wallet->secret_key);
    return err;
}

kc_err kci_ledger_hold_make(kci_ledger_transfer *out, const kci_wallet *wallet,
                            const uint8_t to[KCI_LEDGER_KEY_BYTES], const kci_ledger_coin *coins,
                            uint32_t coin_count, int64_t hold_ms)
{
    if (hold_ms < 1 || hold_ms > KCI_LEDGER_HOLD_MS_MAX) return KC_ERR_INVALID_ARGUMENT;
    kc_err err = transfer_fill(out, KCI_LEDGER_KIND_HOLD, wallet, to, coins, coin_count);
    if (err != KC_OK) return err;
    out->expires_ms = out->time_ms + hold_ms;
    return kci_ledger_sign(out, wallet->secret_key);
}

kc_err kci_ledger_exchange_make(kci_ledger_transfer *out, const kci_wallet *wallet,
                                const uint8_t mint[KCI_LEDGER_KEY_BYTES],
                                const kci_ledger_coin *coins, uint32_t coin_count,
                                const uint64_t *denominations, uint32_t denomination_count)
{
    kc_err err = transfer_fill(out, KCI_LEDGER_KIND_EXCHANGE, wallet, mint, coins, coin_count);
    if (err != KC_OK) return err;
    out->denominations = malloc((denomination_count + 1) * sizeof *out->denominations);
    if (out->denominations == NULL) {
        kci_ledger_transfer_free(out);
        return KC_ERR_NOMEM;
    }
    memcpy(out->denominations, denominations, denomination_count * sizeof *denominations);
    out->denomination_count = denomination_count;
    return kci_ledger_sign(out, wallet->secret_key);
}

static int larger_first(const void *a, const void *b)
{
    uint64_t x = ((const kci_ledger_coin *)a)->denomination;
    uint64_t y = ((const kci_ledger_coin *)b)->denomination;
    return x < y ? 1 : x > y ? -1 : 0;
}

/* Greedy: exact (true) into chosen, or else the coins that cover amount. */
static bool choose_coins(kci_ledger_coin *coins, uint32_t count, uint64_t amount,
                         kci_ledger_coin *chosen, uint32_t *chosen_count, uint64_t *covered)
{
    qsort(coins, count, sizeof *coins, larger_first);
    uint64_t sum = 0;
    *chosen_count = 0;
    for (uint32_t index = 0; index < count && sum < amount; index++)
        if (sum + coins[index].denomination <= amount &&
            *chosen_count < KCI_LEDGER_COINS_PER_TRANSFER_MAX) {
            chosen[(*chosen_count)++] = coins[index];
            sum += coins[index].denomination;
        }
    if (sum == amount) return true;
    sum = 0;
    *chosen_count = 0;
    for (uint32_t index = 0;
         index < count && sum < amount && *chosen_count < KCI_LEDGER_COINS_PER_TRANSFER_MAX;
         index++) {
        chosen[(*chosen_count)++] = coins[index];
        sum += coins[index].denomination;
    }
    *covered = sum;
    return false;
}

/* Sends a signed transfer or exchange. An answer lost to a timeout does not
 * say whether it was applied; sending the very same signed transfer again is
 * safe (the ledger answers a replay without applying it twice), so it is
 * retried a few times before giving up. */
static kc_err send_signed(json_t **out, natsConnection *connection, const char *operation,
                          kci_ledger_transfer *transfer, int64_t timeout_ms,
                          kci_ledger_refusal *refusal)
{
    json_t *body = kci_ledger_transfer_json(transfer);
    kci_ledger_transfer_free(transfer);
    if (body == NULL) return refuse(refusal, KC_ERR_NOMEM, 0, "out of memory");
    kc_err err = KC_ERR_TIMEOUT;
    for (int attempt = 0; attempt < SEND_ATTEMPTS_MAX && err == KC_ERR_TIMEOUT; attempt++)
        err = kci_ledger_call(out, connection, operation, json_incref(body), timeout_ms, refusal);
    json_decref(body);
    return err;
}

/* Exchanges chosen (worth covered) for [amount, covered - amount]; the new
 * coin of amount goes to *paid. */
static kc_err make_change(kci_ledger_coin *paid, natsConnection *connection,
                          const kci_wallet *wallet, const uint8_t mint[KCI_LEDGER_KEY_BYTES],
                          const kci_ledger_coin *chosen, uint32_t chosen_count, uint64_t amount,
                          uint64_t covered, int64_t timeout_ms, kci_ledger_refusal *refusal)
{
    uint64_t asked[2] = {amount, covered - amount};
    kci_ledger_transfer exchange;
    kc_err err = kci_ledger_exchange_make(&exchange, wallet, mint, chosen, chosen_count, asked,
                                          covered > amount ? 2 : 1);
    if (err != KC_OK)
        return refuse(refusal, err, 0, "cannot sign the exchange: %s", kc_strerror(err));
    json_t *reply = NULL;
    err = send_signed(&reply, connection, "exchange", &exchange, timeout_ms, refusal);
    json_t *coins = json_object_get(json_object_get(reply, "issued"), "coins");
    json_t *first = json_array_get(coins, 0);
    if (err == KC_OK && json_is_true(json_object_get(reply, "replayed")))
        err = refuse(refusal, KC_ERR_AGAIN, 0,
                     "the exchange had been applied before its answer was lost; its coins are in "
                     "the wallet now: pay again");
    else if (err == KC_OK &&
             (!kci_ledger_id_parse(paid->id, json_string_value(json_object_get(first, "id"))) ||
              json_integer_value(json_object_get(first, "denomination")) != (json_int_t)amount))
        err = refuse(refusal, KC_ERR_PARSE, 0, "the exchange's answer has no coin of %llu",
                     (unsigned long long)amount);
    paid->denomination = amount;
    json_decref(reply);
    return err;
}

/* Signs and sends the chosen coins as a transfer (hold_ms 0) or a hold. */
static kc_err send_payment(json_t **out, natsConnection *connection, const kci_wallet *wallet,
                           const uint8_t to[KCI_LEDGER_KEY_BYTES], const kci_ledger_coin *chosen,
                           uint32_t chosen_count, int64_t hold_ms, int64_t timeout_ms,
                           kci_ledger_refusal *refusal)
{
    kci_ledger_transfer transfer;
    kc_err err = hold_ms > 0
                     ? kci_ledger_hold_make(&transfer, wallet, to, chosen, chosen_count, hold_ms)
                     : kci_ledger_transfer_make(&transfer, wallet, to, chosen, chosen_count);
    if (err != KC_OK)
        return refuse(refusal, err, 0, "cannot sign the %s: %s", hold_ms > 0 ? "hold" : "transfer",
                      kc_strerror(err));
    return send_signed(out, connection, hold_ms > 0 ? "hold" : "transfer", &transfer, timeout_ms,
                       refusal);
}

static kc_err pay(json_t **out, bool *exchanged, natsConnection *connection,
                  const kci_wallet *wallet, const uint8_t to[KCI_LEDGER_KEY_BYTES], uint64_t amount,
                  int64_t hold_ms, int64_t timeout_ms, kci_ledger_refusal *refusal)
{
    *out = NULL;
    *exchanged = false;
    kci_ledger_coin *coins = NULL;
    uint32_t count = 0;
    uint8_t mint[KCI_LEDGER_KEY_BYTES];
    kc_err err = kci_ledger_wallet_coins(&coins, &count, mint, connection, wallet->public_key,
                                         timeout_ms, refusal);
    if (err != KC_OK) return err;
    uint64_t balance = 0;
    for (uint32_t index = 0; index < count; index++)
        balance += coins[index].denomination;
    kci_ledger_coin *chosen = malloc((KCI_LEDGER_COINS_PER_TRANSFER_MAX + 1) * sizeof *chosen);
    uint32_t chosen_count = 0;
    uint64_t covered = 0;
    if (chosen == NULL)
        err = refuse(refusal, KC_ERR_NOMEM, 0, "out of memory");
    else if (balance < amount)
        err = refuse(refusal, KC_ERR_SERVICE, KCI_LEDGER_CODE_UNPAID,
                     "insufficient funds: the wallet holds %llu, the payment is %llu",
                     (unsigned long long)balance, (unsigned long long)amount);
    else if (!choose_coins(coins, count, amount, chosen, &chosen_count, &covered)) {
        *exchanged = true;
        err = covered < amount
                  ? refuse(refusal, KC_ERR_LIMIT, 0, "the payment needs more than %d coins",
                           KCI_LEDGER_COINS_PER_TRANSFER_MAX)
                  : make_change(&chosen[0], connection, wallet, mint, chosen, chosen_count, amount,
                                covered, timeout_ms, refusal);
        chosen_count = 1;
    }
    if (err == KC_OK)
        err = send_payment(out, connection, wallet, to, chosen, chosen_count, hold_ms, timeout_ms,
                           refusal);
    free(chosen);
    free(coins);
    return err;
}

kc_err kci_ledger_pay(json_t **out, bool *exchanged, natsConnection *connection,
                      const kci_wallet *wallet, const uint8_t to[KCI_LEDGER_KEY_BYTES],
                      uint64_t amount, int64_t timeout_ms, kci_ledger_refusal *refusal)
{
    return pay(out, exchanged, connection, wallet, to, amount, 0, timeout_ms, refusal);
}

kc_err kci_ledger_hold_pay(json_t **out, bool *exchanged, natsConnection *connection,
                           const kci_wallet *wallet, const uint8_t to[KCI_LEDGER_KEY_BYTES],
                           uint64_t amount, int64_t hold_ms, int64_t timeout_ms,
                           kci_ledger_refusal *refusal)
{
    assert(hold_ms > 0);
    return pay(out, exchanged, connection, wallet, to, amount, hold_ms, timeout_ms, refusal);
}
