/* codec.c - hex, the canonical signing bytes, and the request parser
 * (codec.h).
 *
 * Signing bytes (version 1), all integers big-endian:
 *   "kingcobra-ledger" NUL   17 bytes, the domain
 *   version u8 (1), kind u8 (1 issue, 2 transfer, 3 exchange)
 *   transfer id (16), from (32), to (32)
 *   coin count u32, then per coin, sorted by id: id (16), denomination u64
 *   amount u64, time_ms u64
 *   denomination count u32, then each u64 (an exchange's asked coins; 0 else)
 *   a hold (kind 4) only: expires_ms u64, so the payer signs how long the
 *   payee may keep the coins waiting
 * Binding the denominations makes the mint's issue hop prove each coin's
 * value; binding the kind keeps an exchange from being replayed as a
 * transfer to the mint.
 *
 * JSON is read with jansson (JSON_REJECT_DUPLICATES): its parser is
 * already a bounded state machine, fuzzed by its authors; what we add is
 * the validation of every field, which fuzz/fuzz_ledger.c exercises. */
#include "codec.h"

#include <assert.h>
#include <inttypes.h>
#include <limits.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "service/uuid.h"

enum {
    REQUEST_BYTES_MAX = 16 * 1024 * 1024, /* above nats' payload limits anyway */
    SIGNING_HEADER_BYTES = 17 + 2 + KCI_LEDGER_ID_BYTES + 2 * KCI_LEDGER_KEY_BYTES + 4,
    SIGNING_COIN_BYTES = KCI_LEDGER_ID_BYTES + 8,
};

void kci_ledger_transfer_free(kci_ledger_transfer *transfer)
{
    if (transfer == NULL) return;
    free(transfer->coins);
    free(transfer->denominations);
    transfer->coins = NULL;
    transfer->denominations = NULL;
}

/* ---- hex ------------------------------------------------------------------ */

void kci_ledger_hex(char *text, const uint8_t *bytes, size_t length)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t index = 0; index < length; index++) {
        text[2 * index] = digits[bytes[index] >> 4];
        text[2 * index + 1] = digits[bytes[index] & 15];
    }
    text[2 * length] = '\0';
}

static int hex_value(char digit)
{
    if (digit >= '0' && digit <= '9') return digit - '0';
    if (digit >= 'a' && digit <= 'f') return digit - 'a' + 10;
    if (digit >= 'A' && digit <= 'F') return digit - 'A' + 10;
    return -1;
}

bool kci_ledger_unhex(uint8_t *bytes, size_t length, const char *text, size_t text_length)
{
    if (text == NULL || text_length != 2 * length) return false;
    for (size_t index = 0; index < length; index++) {
        int high = hex_value(text[2 * index]), low = hex_value(text[2 * index + 1]);
        if (high < 0 || low < 0) return false;
        bytes[index] = (uint8_t)(high << 4 | low);
    }
    return true;
}

bool kci_ledger_address_parse(uint8_t address[KCI_LEDGER_KEY_BYTES], const char *text)
{
    return text != NULL && kci_ledger_unhex(address, KCI_LEDGER_KEY_BYTES, text, strlen(text));
}

void kci_ledger_id_text(char text[37], const uint8_t id[KCI_LEDGER_ID_BYTES])
{
    kci_uuid uuid;
    memcpy(uuid.bytes, id, KCI_LEDGER_ID_BYTES);
    kci_uuid_format(&uuid, text);
}

bool kci_ledger_id_parse(uint8_t id[KCI_LEDGER_ID_BYTES], const char *text)
{
    kci_uuid uuid;
    if (text == NULL || !kci_uuid_parse(text, strlen(text), &uuid) || kci_uuid_is_nil_or_max(&uuid))
        return false;
    memcpy(id, uuid.bytes, KCI_LEDGER_ID_BYTES);
    return true;
}

/* ---- signing ---------------------------------------------------------------- */

static uint8_t *put_u32(uint8_t *cursor, uint32_t value)
{
    for (int shift = 24; shift >= 0; shift -= 8)
        *cursor++ = (uint8_t)(value >> shift);
    return cursor;
}

static uint8_t *put_u64(uint8_t *cursor, uint64_t value)
{
    for (int shift = 56; shift >= 0; shift -= 8)
        *cursor++ = (uint8_t)(value >> shift);
    return cursor;
}

uint8_t *kci_ledger_signing_bytes(const kci_ledger_transfer *transfer, size_t *length)
{
    assert(transfer->coin_count <= KCI_LEDGER_COINS_PER_TRANSFER_MAX);
    assert(transfer->denomination_count <= KCI_LEDGER_DENOMINATIONS_MAX);
    bool hold = transfer->kind == KCI_LEDGER_KIND_HOLD;
    size_t size = SIGNING_HEADER_BYTES + (size_t)transfer->coin_count * SIGNING_COIN_BYTES + 16 +
                  4 + (size_t)transfer->denomination_count * 8 + (hold ? 8 : 0);
    uint8_t *bytes = malloc(size);
    if (bytes == NULL) return NULL;
    uint8_t *cursor = bytes;
    memcpy(cursor, KCI_LEDGER_SIGNING_PREFIX, sizeof KCI_LEDGER_SIGNING_PREFIX); /* with NUL */
    cursor += sizeof KCI_LEDGER_SIGNING_PREFIX;
    *cursor++ = KCI_LEDGER_SIGNING_VERSION;
    *cursor++ = transfer->kind;
    memcpy(cursor, transfer->id, KCI_LEDGER_ID_BYTES);
    cursor += KCI_LEDGER_ID_BYTES;
    memcpy(cursor, transfer->from, KCI_LEDGER_KEY_BYTES);
    cursor += KCI_LEDGER_KEY_BYTES;
    memcpy(cursor, transfer->to, KCI_LEDGER_KEY_BYTES);
    cursor += KCI_LEDGER_KEY_BYTES;
    cursor = put_u32(cursor, transfer->coin_count);
    for (uint32_t index = 0; index < transfer->coin_count; index++) {
        memcpy(cursor, transfer->coins[index].id, KCI_LEDGER_ID_BYTES);
        cursor = put_u64(cursor + KCI_LEDGER_ID_BYTES, transfer->coins[index].denomination);
    }
    cursor = put_u64(cursor, transfer->amount);
    cursor = put_u64(cursor, (uint64_t)transfer->time_ms);
    cursor = put_u32(cursor, transfer->denomination_count);
    for (uint32_t index = 0; index < transfer->denomination_count; index++)
        cursor = put_u64(cursor, transfer->denominations[index]);
    if (hold) cursor = put_u64(cursor, (uint64_t)transfer->expires_ms);
    assert((size_t)(cursor - bytes) == size);
    *length = size;
    return bytes;
}

kc_err kci_ledger_sign(kci_ledger_transfer *transfer,
                       const uint8_t secret_key[KCI_LEDGER_SECRET_BYTES])
{
    size_t length = 0;
    uint8_t *bytes = kci_ledger_signing_bytes(transfer, &length);
    if (bytes == NULL) return KC_ERR_NOMEM;
    crypto_sign_detached(transfer->signature, NULL, bytes, length, secret_key);
    free(bytes);
    return KC_OK;
}

bool kci_ledger_verify(const kci_ledger_transfer *transfer,
                       const uint8_t signer[KCI_LEDGER_KEY_BYTES])
{
    size_t length = 0;
    uint8_t *bytes = kci_ledger_signing_bytes(transfer, &length);
    if (bytes == NULL) return false;
    bool valid = crypto_sign_verify_detached(transfer->signature, bytes, length, signer) == 0;
    free(bytes);
    return valid;
}

kci_ledger_settle kci_ledger_settle_of(kci_ledger_operation operation)
{
    switch (operation) {
    case KCI_LEDGER_OP_HOLD_CLAIM: return KCI_LEDGER_SETTLE_CLAIM;
    case KCI_LEDGER_OP_HOLD_POST: return KCI_LEDGER_SETTLE_POST;
    case KCI_LEDGER_OP_HOLD_VOID: return KCI_LEDGER_SETTLE_VOID;
    default: return (kci_ledger_settle)0;
    }
}

static int coin_compare(const void *a, const void *b)
{
    return memcmp(((const kci_ledger_coin *)a)->id, ((const kci_ledger_coin *)b)->id,
                  KCI_LEDGER_ID_BYTES);
}

bool kci_ledger_coins_sort(kci_ledger_coin *coins, uint32_t coin_count)
{
    qsort(coins, coin_count, sizeof *coins, coin_compare);
    for (uint32_t index = 1; index < coin_count; index++)
        if (coin_compare(&coins[index - 1], &coins[index]) == 0) return false;
    return true;
}

/* ---- operations ------------------------------------------------------------ */

static const struct {
    const char *name; /* after "kc.ledger." */
    kci_ledger_operation operation;
} OPERATIONS[] = {
    {"mint", KCI_LEDGER_OP_MINT},
    {"exchange", KCI_LEDGER_OP_EXCHANGE},
    {"transfer", KCI_LEDGER_OP_TRANSFER},
    {"transfer.batch", KCI_LEDGER_OP_TRANSFER_BATCH},
    {"balance", KCI_LEDGER_OP_BALANCE},
    {"coins", KCI_LEDGER_OP_COINS},
    {"trail", KCI_LEDGER_OP_TRAIL},
    {"history", KCI_LEDGER_OP_HISTORY},
    {"audit", KCI_LEDGER_OP_AUDIT},
    {"payment", KCI_LEDGER_OP_PAYMENT},
    {"transfer.get", KCI_LEDGER_OP_TRANSFER_GET},
    {"hold", KCI_LEDGER_OP_HOLD},
    {"hold.claim", KCI_LEDGER_OP_HOLD_CLAIM},
    {"hold.post", KCI_LEDGER_OP_HOLD_POST},
    {"hold.void", KCI_LEDGER_OP_HOLD_VOID},
};

kci_ledger_operation kci_ledger_operation_from_subject(const char *subject)
{
    static const char prefix[] = "kc.ledger.";
    if (subject == NULL || strncmp(subject, prefix, sizeof prefix - 1) != 0)
        return KCI_LEDGER_OP_UNKNOWN;
    const char *name = subject + sizeof prefix - 1;
    for (size_t index = 0; index < sizeof OPERATIONS / sizeof OPERATIONS[0]; index++)
        if (strcmp(name, OPERATIONS[index].name) == 0) return OPERATIONS[index].operation;
    return KCI_LEDGER_OP_UNKNOWN;
}

const char *kci_ledger_operation_name(kci_ledger_operation operation)
{
    for (size_t index = 0; index < sizeof OPERATIONS / sizeof OPERATIONS[0]; index++)
        if (OPERATIONS[index].operation == operation) return OPERATIONS[index].name;
    return "unknown";
}

/* ---- request validation -------------------------------------------------------- */

kc_err kci_ledger_fail(char *error, size_t error_size, kc_err err, const char *format, ...)
{
    va_list arguments;
    va_start(arguments, format);
    vsnprintf(error, error_size, format, arguments);
    va_end(arguments);
    return err;
}

/* Only the known fields: a typo ("ammount") must not pass silently. */
static kc_err check_fields(json_t *object, const char *const *allowed, const char *what,
                           char *error, size_t error_size)
{
    if (!json_is_object(object))
        return kci_ledger_fail(error, error_size, KC_ERR_PARSE, "%s must be a JSON object", what);
    const char *key;
    json_t *value;
    json_object_foreach(object, key, value)
    {
        bool known = false;
        for (const char *const *name = allowed; *name != NULL && !known; name++)
            known = strcmp(*name, key) == 0;
        if (!known)
            return kci_ledger_fail(error, error_size, KC_ERR_PARSE, "%s: unknown field \"%.64s\"",
                                   what, key);
    }
    return KC_OK;
}

static kc_err get_amount(uint64_t *out, json_t *object, const char *name, bool required,
                         char *error, size_t error_size)
{
    json_t *value = json_object_get(object, name);
    if (value == NULL && !required) return KC_OK;
    if (value == NULL)
        return kci_ledger_fail(error, error_size, KC_ERR_PARSE, "\"%s\" is missing", name);
    if (!json_is_integer(value))
        return kci_ledger_fail(error, error_size, KC_ERR_PARSE,
                               "\"%s\" must be an integer (smallest units)", name);
    json_int_t amount = json_integer_value(value);
    if (amount <= 0)
        return kci_ledger_fail(error, error_size, KC_ERR_PARSE,
                               "\"%s\" must be positive, not %" JSON_INTEGER_FORMAT, name, amount);
    if ((uint64_t)amount > KCI_LEDGER_AMOUNT_MAX)
        return kci_ledger_fail(error, error_size, KC_ERR_PARSE,
                               "\"%s\" %" JSON_INTEGER_FORMAT " is above %" PRIu64, name, amount,
                               KCI_LEDGER_AMOUNT_MAX);
    *out = (uint64_t)amount;
    return KC_OK;
}

static kc_err get_time(int64_t *out, json_t *object, const char *name, bool required, char *error,
                       size_t error_size)
{
    json_t *value = json_object_get(object, name);
    if (value == NULL && !required) return KC_OK;
    if (value == NULL)
        return kci_ledger_fail(error, error_size, KC_ERR_PARSE, "\"%s\" is missing", name);
    json_int_t time_ms = json_integer_value(value);
    if (!json_is_integer(value) || time_ms < 0 || time_ms > KCI_LEDGER_TIME_MS_MAX)
        return kci_ledger_fail(error, error_size, KC_ERR_PARSE, "\"%s\" must be a Unix time in ms",
                               name);
    *out = (int64_t)time_ms;
    return KC_OK;
}

static kc_err get_id(uint8_t id[KCI_LEDGER_ID_BYTES], json_t *object, const char *name, char *error,
                     size_t error_size)
{
    json_t *value = json_object_get(object, name);
    if (value == NULL)
        return kci_ledger_fail(error, error_size, KC_ERR_PARSE, "\"%s\" is missing", name);
    if (!kci_ledger_id_parse(id, json_string_value(value)))
        return kci_ledger_fail(error, error_size, KC_ERR_PARSE, "\"%s\" must be a UUID", name);
    return KC_OK;
}

static kc_err get_address(uint8_t address[KCI_LEDGER_KEY_BYTES], json_t *object, const char *name,
                          char *error, size_t error_size)
{
    json_t *value = json_object_get(object, name);
    if (value == NULL)
        return kci_ledger_fail(error, error_size, KC_ERR_PARSE, "\"%s\" is missing", name);
    if (!kci_ledger_address_parse(address, json_string_value(value)))
        return kci_ledger_fail(error, error_size, KC_ERR_PARSE,
                               "\"%s\" must be a wallet address (%d hex digits)", name,
                               KCI_LEDGER_ADDRESS_TEXT_BYTES);
    return KC_OK;
}

/* A list of denominations, each in range, the sum in range too. */
static kc_err get_denominations(uint64_t **out, uint32_t *count, uint64_t *sum, json_t *object,
                                char *error, size_t error_size)
{
    json_t *list = json_object_get(object, "denominations");
    size_t size = json_array_size(list);
    if (!json_is_array(list) || size == 0)
        return kci_ledger_fail(error, error_size, KC_ERR_PARSE,
                               "\"denominations\" must be a non-empty array of integers");
    if (size > KCI_LEDGER_DENOMINATIONS_MAX)
        return kci_ledger_fail(error, error_size, KC_ERR_PARSE,
                               "%zu denominations: at most %d in one request", size,
                               KCI_LEDGER_DENOMINATIONS_MAX);
    *out = calloc(size, sizeof **out);
    if (*out == NULL) return kci_ledger_fail(error, error_size, KC_ERR_PARSE, "out of memory");
    *count = (uint32_t)size;
    *sum = 0;
    for (size_t index = 0; index < size; index++) {
        json_int_t value = json_integer_value(json_array_get(list, index));
        if (!json_is_integer(json_array_get(list, index)) || value <= 0 ||
            (uint64_t)value > KCI_LEDGER_AMOUNT_MAX)
            return kci_ledger_fail(error, error_size, KC_ERR_PARSE,
                                   "denomination %zu must be an integer in 1..%" PRIu64, index,
                                   KCI_LEDGER_AMOUNT_MAX);
        (*out)[index] = (uint64_t)value;
        *sum += (uint64_t)value; /* both <= 2^53: cannot wrap */
        if (*sum > KCI_LEDGER_AMOUNT_MAX)
            return kci_ledger_fail(error, error_size, KC_ERR_PARSE,
                                   "the denominations add up to more than %" PRIu64,
                                   KCI_LEDGER_AMOUNT_MAX);
    }
    return KC_OK;
}

static kc_err get_coins(kci_ledger_transfer *transfer, json_t *object, char *error,
                        size_t error_size)
{
    json_t *list = json_object_get(object, "coins");
    size_t size = json_array_size(list);
    if (!json_is_array(list) || size == 0)
        return kci_ledger_fail(error, error_size, KC_ERR_PARSE,
                               "\"coins\" must be a non-empty array of coin ids");
    if (size > KCI_LEDGER_COINS_PER_TRANSFER_MAX)
        return kci_ledger_fail(error, error_size, KC_ERR_PARSE,
                               "%zu coins: at most %d in one transfer", size,
                               KCI_LEDGER_COINS_PER_TRANSFER_MAX);
    transfer->coins = calloc(size, sizeof *transfer->coins);
    if (transfer->coins == NULL)
        return kci_ledger_fail(error, error_size, KC_ERR_PARSE, "out of memory");
    transfer->coin_count = (uint32_t)size;
    for (size_t index = 0; index < size; index++)
        if (!kci_ledger_id_parse(transfer->coins[index].id,
                                 json_string_value(json_array_get(list, index))))
            return kci_ledger_fail(error, error_size, KC_ERR_PARSE, "coin %zu is not a UUID",
                                   index);
    if (!kci_ledger_coins_sort(transfer->coins, transfer->coin_count))
        return kci_ledger_fail(error, error_size, KC_ERR_PARSE, "a coin is listed twice");
    return KC_OK;
}

static const char *const TRANSFER_FIELDS[] = {"id",         "from",    "to",        "coins",
                                              "amount",     "time_ms", "signature", "denominations",
                                              "expires_ms", NULL};

/* A transfer (kind TRANSFER), a hold (kind HOLD: a transfer with
 * "expires_ms") or an exchange (kind EXCHANGE: no "to", the mint is the
 * payee and the writer fills it in; "denominations" asked). */
static kc_err parse_transfer(kci_ledger_transfer *out, json_t *object, kci_ledger_kind kind,
                             char *error, size_t error_size)
{
    memset(out, 0, sizeof *out);
    out->kind = (uint8_t)kind;
    kc_err err = check_fields(object, TRANSFER_FIELDS, "a transfer", error, error_size);
    if (err == KC_OK) err = get_id(out->id, object, "id", error, error_size);
    if (err == KC_OK) err = get_address(out->from, object, "from", error, error_size);
    bool has_payee = kind == KCI_LEDGER_KIND_TRANSFER || kind == KCI_LEDGER_KIND_HOLD;
    if (err == KC_OK && has_payee) err = get_address(out->to, object, "to", error, error_size);
    if (err == KC_OK && kind == KCI_LEDGER_KIND_EXCHANGE && json_object_get(object, "to"))
        err = kci_ledger_fail(error, error_size, KC_ERR_PARSE,
                              "an exchange has no \"to\": the mint is the payee");
    if (err == KC_OK && has_payee && memcmp(out->from, out->to, KCI_LEDGER_KEY_BYTES) == 0)
        err = kci_ledger_fail(error, error_size, KC_ERR_PARSE,
                              "\"from\" and \"to\" are the same wallet");
    if (err == KC_OK) err = get_coins(out, object, error, error_size);
    if (err == KC_OK) err = get_amount(&out->amount, object, "amount", true, error, error_size);
    if (err == KC_OK) err = get_time(&out->time_ms, object, "time_ms", true, error, error_size);
    if (err == KC_OK && kind == KCI_LEDGER_KIND_HOLD)
        err = get_time(&out->expires_ms, object, "expires_ms", true, error, error_size);
    else if (err == KC_OK && json_object_get(object, "expires_ms") != NULL)
        err = kci_ledger_fail(error, error_size, KC_ERR_PARSE, "only a hold has \"expires_ms\"");
    if (err == KC_OK && kind == KCI_LEDGER_KIND_HOLD && out->expires_ms <= out->time_ms)
        err = kci_ledger_fail(error, error_size, KC_ERR_PARSE,
                              "\"expires_ms\" must be after \"time_ms\"");
    json_t *signature = json_object_get(object, "signature");
    const char *text = json_string_value(signature);
    if (err == KC_OK && !kci_ledger_unhex(out->signature, KCI_LEDGER_SIGNATURE_BYTES, text,
                                          text != NULL ? strlen(text) : 0))
        err =
            kci_ledger_fail(error, error_size, KC_ERR_PARSE, "\"signature\" must be %d hex digits",
                            KCI_LEDGER_SIGNATURE_TEXT_BYTES);
    uint64_t sum = 0;
    if (err == KC_OK && kind == KCI_LEDGER_KIND_EXCHANGE) {
        err = get_denominations(&out->denominations, &out->denomination_count, &sum, object, error,
                                error_size);
        if (err == KC_OK && sum != out->amount)
            err = kci_ledger_fail(error, error_size, KC_ERR_PARSE,
                                  "the denominations asked add up to %" PRIu64
                                  ", not the amount %" PRIu64,
                                  sum, out->amount);
    } else if (err == KC_OK && json_object_get(object, "denominations") != NULL) {
        err =
            kci_ledger_fail(error, error_size, KC_ERR_PARSE, "a transfer has no \"denominations\"");
    }
    return err;
}

static kc_err parse_transfers(kci_ledger_request *out, json_t *root, char *error, size_t error_size)
{
    static const char *const fields[] = {"transfers", NULL};
    kc_err err = check_fields(root, fields, "a batch", error, error_size);
    json_t *list = json_object_get(root, "transfers");
    size_t size = json_array_size(list);
    if (err == KC_OK && (!json_is_array(list) || size == 0))
        return kci_ledger_fail(error, error_size, KC_ERR_PARSE,
                               "\"transfers\" must be a non-empty array");
    if (err == KC_OK && size > KCI_LEDGER_BATCH_MAX)
        return kci_ledger_fail(error, error_size, KC_ERR_PARSE,
                               "%zu transfers: at most %d in one batch", size,
                               KCI_LEDGER_BATCH_MAX);
    if (err != KC_OK) return err;
    out->transfers = calloc(size, sizeof *out->transfers);
    if (out->transfers == NULL)
        return kci_ledger_fail(error, error_size, KC_ERR_PARSE, "out of memory");
    for (size_t index = 0; index < size && err == KC_OK; index++) {
        out->transfer_count = (uint32_t)index + 1;
        char inner[KCI_LEDGER_ERROR_BYTES_MAX];
        err = parse_transfer(&out->transfers[index], json_array_get(list, index),
                             KCI_LEDGER_KIND_TRANSFER, inner, sizeof inner);
        if (err != KC_OK)
            kci_ledger_fail(error, error_size, KC_ERR_PARSE, "transfer %zu: %s", index, inner);
    }
    return err;
}

static kc_err parse_grant(kci_ledger_grant *out, json_t *object, char *error, size_t error_size)
{
    static const char *const fields[] = {"to", "denominations", NULL};
    uint64_t sum = 0;
    kc_err err = check_fields(object, fields, "a grant", error, error_size);
    if (err == KC_OK) err = get_address(out->to, object, "to", error, error_size);
    if (err == KC_OK)
        err = get_denominations(&out->denominations, &out->denomination_count, &sum, object, error,
                                error_size);
    return err;
}

/* {"to","denominations"} or {"grants":[{"to","denominations"}...]}, each
 * with an optional "id" (a UUID): the mint's, so a retry is not minted
 * again (store.h, kci_ledger_mint_ids_derive). */
static kc_err parse_mint(kci_ledger_request *out, json_t *root, char *error, size_t error_size)
{
    json_t *grants = json_object_get(root, "grants");
    out->has_mint_id = json_object_get(root, "id") != NULL;
    if (out->has_mint_id) {
        kc_err err = get_id(out->mint_id, root, "id", error, error_size);
        if (err != KC_OK) return err;
        json_t *copy = json_copy(root); /* the rest as without an id */
        if (copy == NULL) return kci_ledger_fail(error, error_size, KC_ERR_PARSE, "out of memory");
        json_object_del(copy, "id");
        out->has_mint_id = false;
        err = parse_mint(out, copy, error, error_size);
        json_decref(copy);
        out->has_mint_id = true;
        return err;
    }
    if (grants == NULL) {
        out->grants = calloc(1, sizeof *out->grants);
        if (out->grants == NULL)
            return kci_ledger_fail(error, error_size, KC_ERR_PARSE, "out of memory");
        out->grant_count = 1;
        return parse_grant(&out->grants[0], root, error, error_size);
    }
    if (json_object_size(root) != 1 || !json_is_array(grants) || json_array_size(grants) == 0)
        return kci_ledger_fail(error, error_size, KC_ERR_PARSE,
                               "expected {\"to\",\"denominations\"} or {\"grants\":[...]}");
    if (json_array_size(grants) > KCI_LEDGER_GRANTS_MAX)
        return kci_ledger_fail(error, error_size, KC_ERR_PARSE, "at most %d grants in one mint",
                               KCI_LEDGER_GRANTS_MAX);
    size_t size = json_array_size(grants);
    out->grants = calloc(size, sizeof *out->grants);
    if (out->grants == NULL)
        return kci_ledger_fail(error, error_size, KC_ERR_PARSE, "out of memory");
    kc_err err = KC_OK;
    for (size_t index = 0; index < size && err == KC_OK; index++) {
        out->grant_count = (uint32_t)index + 1;
        char inner[KCI_LEDGER_ERROR_BYTES_MAX];
        err = parse_grant(&out->grants[index], json_array_get(grants, index), inner, sizeof inner);
        if (err != KC_OK)
            kci_ledger_fail(error, error_size, KC_ERR_PARSE, "grant %zu: %s", index, inner);
    }
    return err;
}

static kc_err get_limit(uint32_t *out, json_t *root, char *error, size_t error_size)
{
    *out = KCI_LEDGER_PAGE_MAX;
    json_t *value = json_object_get(root, "limit");
    if (value == NULL) return KC_OK;
    json_int_t limit = json_integer_value(value);
    if (!json_is_integer(value) || limit < 1)
        return kci_ledger_fail(error, error_size, KC_ERR_PARSE,
                               "\"limit\" must be a positive integer");
    *out = limit > KCI_LEDGER_PAGE_MAX ? KCI_LEDGER_PAGE_MAX : (uint32_t)limit;
    return KC_OK;
}

static kc_err parse_history(kci_ledger_request *out, json_t *root, char *error, size_t error_size)
{
    static const char *const fields[] = {"since_ms", "after", "limit", NULL};
    kc_err err = check_fields(root, fields, "a history request", error, error_size);
    if (err == KC_OK) err = get_time(&out->since_ms, root, "since_ms", false, error, error_size);
    if (err == KC_OK) err = get_limit(&out->limit, root, error, error_size);
    json_t *after = json_object_get(root, "after");
    if (err != KC_OK || after == NULL || json_is_null(after)) return err;
    const char *text = json_string_value(after);
    char *end = NULL;
    unsigned long long sequence = text != NULL ? strtoull(text, &end, 10) : 0;
    if (text == NULL || text[0] < '0' || text[0] > '9' || *end != '\0' || sequence == ULLONG_MAX)
        return kci_ledger_fail(error, error_size, KC_ERR_PARSE,
                               "\"after\" must be a cursor from a previous page");
    out->has_after = true;
    out->after_sequence = sequence;
    return KC_OK;
}

static kc_err parse_wallet_query(kci_ledger_request *out, json_t *root, char *error,
                                 size_t error_size)
{
    static const char *const fields[] = {"wallet", "after", "limit", NULL};
    kc_err err = check_fields(root, fields, "a wallet query", error, error_size);
    if (err == KC_OK) err = get_address(out->wallet, root, "wallet", error, error_size);
    if (err == KC_OK) err = get_limit(&out->limit, root, error, error_size);
    if (err == KC_OK && json_object_get(root, "after") != NULL) {
        out->has_after = true;
        err = get_id(out->after, root, "after", error, error_size);
    }
    return err;
}

static kc_err parse_payment(kci_ledger_request *out, json_t *root, char *error, size_t error_size)
{
    static const char *const fields[] = {"transfer", "payee", "min_amount", "request", NULL};
    kc_err err = check_fields(root, fields, "a payment claim", error, error_size);
    if (err == KC_OK) err = get_id(out->transfer, root, "transfer", error, error_size);
    if (err == KC_OK) err = get_address(out->payee, root, "payee", error, error_size);
    if (err == KC_OK)
        err = get_amount(&out->min_amount, root, "min_amount", true, error, error_size);
    uint8_t request[KCI_LEDGER_ID_BYTES];
    if (err == KC_OK) err = get_id(request, root, "request", error, error_size);
    if (err == KC_OK) kci_ledger_id_text(out->request_id, request);
    return err;
}

static kc_err get_signature(uint8_t signature[KCI_LEDGER_SIGNATURE_BYTES], json_t *object,
                            char *error, size_t error_size)
{
    const char *text = json_string_value(json_object_get(object, "signature"));
    if (!kci_ledger_unhex(signature, KCI_LEDGER_SIGNATURE_BYTES, text,
                          text != NULL ? strlen(text) : 0))
        return kci_ledger_fail(error, error_size, KC_ERR_PARSE,
                               "\"signature\" must be %d hex digits",
                               KCI_LEDGER_SIGNATURE_TEXT_BYTES);
    return KC_OK;
}

/* hold.claim {"hold","payee","request","min_amount","signature"}; hold.post
 * and hold.void the same with "request" optional and no "min_amount". */
static kc_err parse_settle(kci_ledger_request *out, json_t *root, char *error, size_t error_size)
{
    static const char *const fields[] = {"hold",       "payee",     "request",
                                         "min_amount", "signature", NULL};
    bool claim = out->operation == KCI_LEDGER_OP_HOLD_CLAIM;
    kc_err err = check_fields(root, fields, "a hold settlement", error, error_size);
    if (err == KC_OK) err = get_id(out->transfer, root, "hold", error, error_size);
    if (err == KC_OK) err = get_address(out->payee, root, "payee", error, error_size);
    if (err == KC_OK && claim)
        err = get_amount(&out->min_amount, root, "min_amount", true, error, error_size);
    else if (err == KC_OK && json_object_get(root, "min_amount") != NULL)
        err =
            kci_ledger_fail(error, error_size, KC_ERR_PARSE, "only hold.claim has \"min_amount\"");
    uint8_t request[KCI_LEDGER_ID_BYTES];
    if (err == KC_OK && (claim || json_object_get(root, "request") != NULL)) {
        err = get_id(request, root, "request", error, error_size);
        if (err == KC_OK) kci_ledger_id_text(out->request_id, request);
    }
    if (err == KC_OK) err = get_signature(out->signature, root, error, error_size);
    return err;
}

static kc_err parse_one_id(uint8_t id[KCI_LEDGER_ID_BYTES], json_t *root, const char *name,
                           char *error, size_t error_size)
{
    const char *const fields[] = {name, NULL};
    kc_err err = check_fields(root, fields, "the request", error, error_size);
    return err == KC_OK ? get_id(id, root, name, error, error_size) : err;
}

static kc_err parse_root(kci_ledger_request *out, json_t *root, char *error, size_t error_size)
{
    switch (out->operation) {
    case KCI_LEDGER_OP_MINT: return parse_mint(out, root, error, error_size);
    case KCI_LEDGER_OP_TRANSFER:
    case KCI_LEDGER_OP_EXCHANGE:
    case KCI_LEDGER_OP_HOLD:
        out->transfers = calloc(1, sizeof *out->transfers);
        if (out->transfers == NULL)
            return kci_ledger_fail(error, error_size, KC_ERR_PARSE, "out of memory");
        out->transfer_count = 1;
        return parse_transfer(out->transfers, root,
                              out->operation == KCI_LEDGER_OP_TRANSFER ? KCI_LEDGER_KIND_TRANSFER
                              : out->operation == KCI_LEDGER_OP_HOLD   ? KCI_LEDGER_KIND_HOLD
                                                                       : KCI_LEDGER_KIND_EXCHANGE,
                              error, error_size);
    case KCI_LEDGER_OP_HOLD_CLAIM:
    case KCI_LEDGER_OP_HOLD_POST:
    case KCI_LEDGER_OP_HOLD_VOID: return parse_settle(out, root, error, error_size);
    case KCI_LEDGER_OP_TRANSFER_BATCH: return parse_transfers(out, root, error, error_size);
    case KCI_LEDGER_OP_BALANCE:
    case KCI_LEDGER_OP_COINS: return parse_wallet_query(out, root, error, error_size);
    case KCI_LEDGER_OP_TRAIL: return parse_one_id(out->coin, root, "coin", error, error_size);
    case KCI_LEDGER_OP_TRANSFER_GET:
        return parse_one_id(out->transfer, root, "transfer", error, error_size);
    case KCI_LEDGER_OP_HISTORY: return parse_history(out, root, error, error_size);
    case KCI_LEDGER_OP_AUDIT:
        return check_fields(root, (const char *const[]){NULL}, "audit", error, error_size);
    case KCI_LEDGER_OP_PAYMENT: return parse_payment(out, root, error, error_size);
    case KCI_LEDGER_OP_UNKNOWN: break;
    }
    return kci_ledger_fail(error, error_size, KC_ERR_PARSE, "unknown operation");
}

kc_err kci_ledger_request_parse(kci_ledger_request *out, kci_ledger_operation operation,
                                const char *body, size_t body_length, char *error,
                                size_t error_size)
{
    memset(out, 0, sizeof *out);
    out->operation = operation;
    if (body_length > REQUEST_BYTES_MAX) {
        snprintf(error, error_size, "the request is %zu bytes: at most %d", body_length,
                 REQUEST_BYTES_MAX);
        return KC_ERR_TOO_LARGE;
    }
    /* An empty body is {} (balance needs a wallet and will say so). */
    json_error_t json_error;
    json_t *root = body_length == 0
                       ? json_object()
                       : json_loadb(body, body_length, JSON_REJECT_DUPLICATES, &json_error);
    if (root == NULL)
        return kci_ledger_fail(error, error_size, KC_ERR_PARSE, "bad JSON: %s", json_error.text);
    kc_err err = json_is_object(root) ? parse_root(out, root, error, error_size)
                                      : kci_ledger_fail(error, error_size, KC_ERR_PARSE,
                                                        "the body must be a JSON object");
    json_decref(root);
    if (err != KC_OK) kci_ledger_request_free(out);
    return err;
}

void kci_ledger_request_free(kci_ledger_request *request)
{
    for (uint32_t index = 0; index < request->grant_count; index++)
        free(request->grants[index].denominations);
    free(request->grants);
    for (uint32_t index = 0; index < request->transfer_count; index++)
        kci_ledger_transfer_free(&request->transfers[index]);
    free(request->transfers);
    request->grants = NULL;
    request->transfers = NULL;
    request->grant_count = 0;
    request->transfer_count = 0;
}

/* ---- building ---------------------------------------------------------------- */

json_t *kci_ledger_transfer_json(const kci_ledger_transfer *transfer)
{
    char id[37], from[KCI_LEDGER_ADDRESS_TEXT_BYTES + 1], to[KCI_LEDGER_ADDRESS_TEXT_BYTES + 1];
    char signature[KCI_LEDGER_SIGNATURE_TEXT_BYTES + 1];
    kci_ledger_id_text(id, transfer->id);
    kci_ledger_hex(from, transfer->from, KCI_LEDGER_KEY_BYTES);
    kci_ledger_hex(to, transfer->to, KCI_LEDGER_KEY_BYTES);
    kci_ledger_hex(signature, transfer->signature, KCI_LEDGER_SIGNATURE_BYTES);
    json_t *coins = json_array();
    for (uint32_t index = 0; coins != NULL && index < transfer->coin_count; index++) {
        char coin[37];
        kci_ledger_id_text(coin, transfer->coins[index].id);
        json_array_append_new(coins, json_string(coin));
    }
    json_t *object = json_pack("{s:s, s:s, s:o, s:I, s:I, s:s}", "id", id, "from", from, "coins",
                               coins, "amount", (json_int_t)transfer->amount, "time_ms",
                               (json_int_t)transfer->time_ms, "signature", signature);
    if (object == NULL) return NULL;
    if (transfer->kind == KCI_LEDGER_KIND_EXCHANGE) {
        json_t *asked = json_array();
        for (uint32_t index = 0; asked != NULL && index < transfer->denomination_count; index++)
            json_array_append_new(asked, json_integer((json_int_t)transfer->denominations[index]));
        json_object_set_new(object, "denominations", asked);
    } else {
        json_object_set_new(object, "to", json_string(to));
    }
    if (transfer->kind == KCI_LEDGER_KIND_HOLD)
        json_object_set_new(object, "expires_ms", json_integer((json_int_t)transfer->expires_ms));
    return object;
}
