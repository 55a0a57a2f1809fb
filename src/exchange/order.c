/* order.c - parses and validates the exchange's order messages (order.h).
 * jansson does the JSON grammar (with duplicate keys refused and a bound on
 * the length checked first); this file checks every field's type and range
 * so that the book and the ledger only ever see well-formed amounts. */
#include "exchange/order.h"

#include <jansson.h>
#include <string.h>

static const char *const order_fields[] = {"type",     "symbol", "side",  "price",
                                           "quantity", "order",  "wallet"};

static bool field_known(const char *key)
{
    for (size_t i = 0; i < sizeof order_fields / sizeof order_fields[0]; i++)
        if (strcmp(key, order_fields[i]) == 0) return true;
    return false;
}

static bool wallet_valid(const char *wallet)
{
    size_t length = strlen(wallet);
    if (length == 0 || length > KCI_ORDER_WALLET_BYTES_MAX) return false;
    for (size_t i = 0; i < length; i++) {
        char c = wallet[i];
        bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                  c == '_' || c == '-' || c == '.';
        if (!ok) return false;
    }
    return true;
}

/* The refusals of one integer field, in the order they are checked. */
typedef struct amount_refusals {
    kci_order_refusal missing, not_integer, not_positive, overflow;
} amount_refusals;

static kci_order_refusal amount_get(const json_t *object, const char *key,
                                    const amount_refusals *refusals, int64_t *out)
{
    const json_t *value = json_object_get(object, key);
    if (!value) return refusals->missing;
    if (!json_is_integer(value)) return refusals->not_integer;
    json_int_t amount = json_integer_value(value);
    if (amount <= 0) return refusals->not_positive;
    if (amount > KCI_BOOK_PRICE_MAX) return refusals->overflow;
    *out = (int64_t)amount;
    return KCI_ORDER_OK;
}

static const amount_refusals price_refusals = {KCI_ORDER_PRICE_MISSING, KCI_ORDER_PRICE_NOT_INTEGER,
                                               KCI_ORDER_PRICE_NOT_POSITIVE,
                                               KCI_ORDER_PRICE_OVERFLOW};
static const amount_refusals quantity_refusals = {
    KCI_ORDER_QUANTITY_MISSING, KCI_ORDER_QUANTITY_NOT_INTEGER, KCI_ORDER_QUANTITY_NOT_POSITIVE,
    KCI_ORDER_QUANTITY_OVERFLOW};
_Static_assert(KCI_BOOK_PRICE_MAX == KCI_BOOK_QUANTITY_MAX, "amount_get bounds both by one max");

static kci_order_refusal order_new_read(const json_t *object, kci_order_request *request)
{
    if (json_object_get(object, "order")) return KCI_ORDER_FIELD_FORBIDDEN;
    const char *side = json_string_value(json_object_get(object, "side"));
    if (!side) return KCI_ORDER_SIDE_BAD;
    if (strcmp(side, "buy") == 0)
        request->side = KCI_BOOK_BUY;
    else if (strcmp(side, "sell") == 0)
        request->side = KCI_BOOK_SELL;
    else
        return KCI_ORDER_SIDE_BAD;
    kci_order_refusal refusal =
        amount_get(object, "quantity", &quantity_refusals, &request->quantity);
    if (refusal != KCI_ORDER_OK) return refusal;
    if (request->type == KCI_ORDER_MARKET)
        return json_object_get(object, "price") ? KCI_ORDER_PRICE_FORBIDDEN : KCI_ORDER_OK;
    refusal = amount_get(object, "price", &price_refusals, &request->price);
    if (refusal != KCI_ORDER_OK) return refusal;
    int64_t notional;
    if (__builtin_mul_overflow(request->price, request->quantity, &notional))
        return KCI_ORDER_NOTIONAL_OVERFLOW;
    return KCI_ORDER_OK;
}

static kci_order_refusal order_cancel_read(const json_t *object, kci_order_request *request)
{
    if (json_object_get(object, "side") || json_object_get(object, "price") ||
        json_object_get(object, "quantity"))
        return KCI_ORDER_FIELD_FORBIDDEN;
    const json_t *order = json_object_get(object, "order");
    if (!json_is_integer(order) || json_integer_value(order) <= 0) return KCI_ORDER_ID_BAD;
    request->order_id = (uint64_t)json_integer_value(order);
    return KCI_ORDER_OK;
}

static kci_order_refusal order_read(const json_t *object, kci_order_request *request)
{
    const char *key;
    const json_t *value;
    json_object_foreach((json_t *)object, key,
                        value) if (!field_known(key)) return KCI_ORDER_UNKNOWN_FIELD;
    const char *type = json_string_value(json_object_get(object, "type"));
    if (!type) return KCI_ORDER_TYPE_BAD;
    if (strcmp(type, "limit") == 0)
        request->type = KCI_ORDER_LIMIT;
    else if (strcmp(type, "market") == 0)
        request->type = KCI_ORDER_MARKET;
    else if (strcmp(type, "cancel") == 0)
        request->type = KCI_ORDER_CANCEL;
    else
        return KCI_ORDER_TYPE_BAD;
    const char *symbol = json_string_value(json_object_get(object, "symbol"));
    if (!symbol || !kci_book_symbol_valid(symbol)) return KCI_ORDER_SYMBOL_BAD;
    memcpy(request->symbol, symbol, strlen(symbol) + 1);
    const json_t *wallet = json_object_get(object, "wallet");
    if (wallet) {
        /* jansson refuses \u0000 (no JSON_ALLOW_NUL); the length check keeps
         * that true should the flags change. */
        if (!json_is_string(wallet) ||
            strlen(json_string_value(wallet)) != json_string_length(wallet) ||
            !wallet_valid(json_string_value(wallet)))
            return KCI_ORDER_WALLET_BAD;
        memcpy(request->wallet, json_string_value(wallet), json_string_length(wallet) + 1);
    }
    if (request->type == KCI_ORDER_CANCEL) return order_cancel_read(object, request);
    return order_new_read(object, request);
}

kci_order_refusal kci_order_parse(const char *text, size_t length, kci_order_request *request)
{
    *request = (kci_order_request){0};
    if (length > KCI_ORDER_BYTES_MAX) return KCI_ORDER_TOO_LARGE;
    json_error_t error;
    json_t *object = json_loadb(text, length, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &error);
    if (!object)
        return strstr(error.text, "too big") ? KCI_ORDER_NUMBER_OVERFLOW : KCI_ORDER_NOT_JSON;
    kci_order_refusal refusal =
        json_is_object(object) ? order_read(object, request) : KCI_ORDER_NOT_OBJECT;
    json_decref(object);
    if (refusal != KCI_ORDER_OK) *request = (kci_order_request){0};
    return refusal;
}

const char *kci_order_refusal_message(kci_order_refusal refusal)
{
    switch (refusal) {
    case KCI_ORDER_OK: return "ok";
    case KCI_ORDER_TOO_LARGE: return "order message longer than 1024 bytes";
    case KCI_ORDER_NOT_JSON: return "order is not valid JSON (or names a field twice)";
    case KCI_ORDER_NOT_OBJECT: return "order must be a JSON object";
    case KCI_ORDER_UNKNOWN_FIELD:
        return "unknown field (known: type, symbol, side, price, quantity, order, wallet)";
    case KCI_ORDER_NUMBER_OVERFLOW:
        return "a number overflows 64 bits (price or quantity overflow)";
    case KCI_ORDER_TYPE_BAD: return "type must be \"limit\", \"market\" or \"cancel\"";
    case KCI_ORDER_SYMBOL_BAD: return "symbol must be 1 to 12 of A-Z and 0-9";
    case KCI_ORDER_SIDE_BAD: return "side must be \"buy\" or \"sell\"";
    case KCI_ORDER_PRICE_MISSING: return "a limit order needs a price";
    case KCI_ORDER_PRICE_NOT_INTEGER: return "price must be an integer (smallest currency units)";
    case KCI_ORDER_PRICE_NOT_POSITIVE: return "price must be positive";
    case KCI_ORDER_PRICE_OVERFLOW: return "price overflow: more than 10^12";
    case KCI_ORDER_PRICE_FORBIDDEN: return "a market order has no price";
    case KCI_ORDER_QUANTITY_MISSING: return "an order needs a quantity";
    case KCI_ORDER_QUANTITY_NOT_INTEGER: return "quantity must be an integer (whole shares)";
    case KCI_ORDER_QUANTITY_NOT_POSITIVE: return "quantity must be positive";
    case KCI_ORDER_QUANTITY_OVERFLOW: return "quantity overflow: more than 10^12";
    case KCI_ORDER_NOTIONAL_OVERFLOW: return "price x quantity overflows a 64-bit amount";
    case KCI_ORDER_ID_BAD: return "a cancel needs \"order\": the positive id of the order";
    case KCI_ORDER_WALLET_BAD: return "wallet must be 1 to 64 of A-Z a-z 0-9 _ - .";
    case KCI_ORDER_FIELD_FORBIDDEN:
        return "field not allowed for this type (cancel: order; limit/market: side, quantity)";
    }
    return "unknown refusal";
}
