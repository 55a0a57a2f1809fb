/* order_test.c - the order message parser (src/exchange/order.c): valid
 * messages of each type, a table of messages that must be refused with
 * their refusal (the bad orders: negative, zero, price overflow,
 * bad symbol), every strict prefix of a valid message refused, and bytes
 * changed one at a time never giving an out-of-range request. */
/* clang-format off */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
/* clang-format on */
#include <string.h>

#include "exchange/order.h"

static kci_order_refusal parse(const char *text, kci_order_request *request)
{
    return kci_order_parse(text, strlen(text), request);
}

static void test_valid_orders(void **state)
{
    (void)state;
    kci_order_request request;
    assert_int_equal(parse("{\"type\":\"limit\",\"symbol\":\"ACME\",\"side\":\"buy\","
                           "\"price\":105,\"quantity\":10,\"wallet\":\"alice\"}",
                           &request),
                     KCI_ORDER_OK);
    assert_int_equal(request.type, KCI_ORDER_LIMIT);
    assert_string_equal(request.symbol, "ACME");
    assert_string_equal(request.wallet, "alice");
    assert_int_equal(request.side, KCI_BOOK_BUY);
    assert_int_equal(request.price, 105);
    assert_int_equal(request.quantity, 10);
    assert_int_equal(parse("{\"type\":\"market\",\"symbol\":\"NODE7\",\"side\":\"sell\","
                           "\"quantity\":1000000000000}",
                           &request),
                     KCI_ORDER_OK);
    assert_int_equal(request.type, KCI_ORDER_MARKET);
    assert_int_equal(request.side, KCI_BOOK_SELL);
    assert_int_equal(request.quantity, KCI_BOOK_QUANTITY_MAX);
    assert_int_equal(request.price, 0);
    assert_string_equal(request.wallet, "");
    assert_int_equal(parse("{\"type\":\"cancel\",\"symbol\":\"ACME\",\"order\":42}", &request),
                     KCI_ORDER_OK);
    assert_int_equal(request.type, KCI_ORDER_CANCEL);
    assert_int_equal(request.order_id, 42);
}

typedef struct refused_case {
    const char *text;
    kci_order_refusal refusal;
} refused_case;

#define LIMIT_BUY "{\"type\":\"limit\",\"symbol\":\"ACME\",\"side\":\"buy\","

static const refused_case refused_cases[] = {
    {"", KCI_ORDER_NOT_JSON},
    {"{", KCI_ORDER_NOT_JSON},
    {"[1,2]", KCI_ORDER_NOT_OBJECT},
    {"\"limit\"", KCI_ORDER_NOT_OBJECT},
    {LIMIT_BUY "\"price\":5,\"quantity\":1,\"colour\":\"red\"}", KCI_ORDER_UNKNOWN_FIELD},
    {LIMIT_BUY "\"price\":5,\"quantity\":1,\"price\":6}", KCI_ORDER_NOT_JSON},
    {LIMIT_BUY "\"price\":99999999999999999999,\"quantity\":1}", KCI_ORDER_NUMBER_OVERFLOW},
    {LIMIT_BUY "\"price\":-99999999999999999999,\"quantity\":1}", KCI_ORDER_NUMBER_OVERFLOW},
    {"{\"type\":\"stop\",\"symbol\":\"ACME\",\"side\":\"buy\",\"quantity\":1}", KCI_ORDER_TYPE_BAD},
    {"{\"symbol\":\"ACME\",\"side\":\"buy\",\"quantity\":1}", KCI_ORDER_TYPE_BAD},
    {"{\"type\":\"limit\",\"symbol\":\"acme\",\"side\":\"buy\",\"price\":5,\"quantity\":1}",
     KCI_ORDER_SYMBOL_BAD},
    {"{\"type\":\"limit\",\"symbol\":\"\",\"side\":\"buy\",\"price\":5,\"quantity\":1}",
     KCI_ORDER_SYMBOL_BAD},
    {"{\"type\":\"limit\",\"symbol\":\"ABCDEFGHIJKLM\",\"side\":\"buy\",\"price\":5,"
     "\"quantity\":1}",
     KCI_ORDER_SYMBOL_BAD},
    {"{\"type\":\"limit\",\"symbol\":7,\"side\":\"buy\",\"price\":5,\"quantity\":1}",
     KCI_ORDER_SYMBOL_BAD},
    {"{\"type\":\"limit\",\"symbol\":\"ACME\",\"side\":\"hold\",\"price\":5,\"quantity\":1}",
     KCI_ORDER_SIDE_BAD},
    {LIMIT_BUY "\"quantity\":1}", KCI_ORDER_PRICE_MISSING},
    {LIMIT_BUY "\"price\":5.5,\"quantity\":1}", KCI_ORDER_PRICE_NOT_INTEGER},
    {LIMIT_BUY "\"price\":5.0,\"quantity\":1}", KCI_ORDER_PRICE_NOT_INTEGER},
    {LIMIT_BUY "\"price\":\"5\",\"quantity\":1}", KCI_ORDER_PRICE_NOT_INTEGER},
    {LIMIT_BUY "\"price\":0,\"quantity\":1}", KCI_ORDER_PRICE_NOT_POSITIVE},
    {LIMIT_BUY "\"price\":-5,\"quantity\":1}", KCI_ORDER_PRICE_NOT_POSITIVE},
    {LIMIT_BUY "\"price\":1000000000001,\"quantity\":1}", KCI_ORDER_PRICE_OVERFLOW},
    {LIMIT_BUY "\"price\":9223372036854775807,\"quantity\":1}", KCI_ORDER_PRICE_OVERFLOW},
    {"{\"type\":\"market\",\"symbol\":\"ACME\",\"side\":\"buy\",\"price\":5,\"quantity\":1}",
     KCI_ORDER_PRICE_FORBIDDEN},
    {LIMIT_BUY "\"price\":5}", KCI_ORDER_QUANTITY_MISSING},
    {LIMIT_BUY "\"price\":5,\"quantity\":1e3}", KCI_ORDER_QUANTITY_NOT_INTEGER},
    {LIMIT_BUY "\"price\":5,\"quantity\":0}", KCI_ORDER_QUANTITY_NOT_POSITIVE},
    {LIMIT_BUY "\"price\":5,\"quantity\":-1}", KCI_ORDER_QUANTITY_NOT_POSITIVE},
    {LIMIT_BUY "\"price\":5,\"quantity\":1000000000001}", KCI_ORDER_QUANTITY_OVERFLOW},
    {LIMIT_BUY "\"price\":1000000000000,\"quantity\":1000000000000}", KCI_ORDER_NOTIONAL_OVERFLOW},
    {"{\"type\":\"cancel\",\"symbol\":\"ACME\"}", KCI_ORDER_ID_BAD},
    {"{\"type\":\"cancel\",\"symbol\":\"ACME\",\"order\":0}", KCI_ORDER_ID_BAD},
    {"{\"type\":\"cancel\",\"symbol\":\"ACME\",\"order\":-4}", KCI_ORDER_ID_BAD},
    {"{\"type\":\"cancel\",\"symbol\":\"ACME\",\"order\":4,\"quantity\":1}",
     KCI_ORDER_FIELD_FORBIDDEN},
    {LIMIT_BUY "\"price\":5,\"quantity\":1,\"order\":3}", KCI_ORDER_FIELD_FORBIDDEN},
    {LIMIT_BUY "\"price\":5,\"quantity\":1,\"wallet\":\"a b\"}", KCI_ORDER_WALLET_BAD},
    {LIMIT_BUY "\"price\":5,\"quantity\":1,\"wallet\":\"a\\u0000b\"}", KCI_ORDER_NOT_JSON},
    {LIMIT_BUY "\"price\":5,\"quantity\":1,\"wallet\":\"\"}", KCI_ORDER_WALLET_BAD},
    {LIMIT_BUY "\"price\":5,\"quantity\":1,\"wallet\":3}", KCI_ORDER_WALLET_BAD},
};

static void test_refused_orders(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof refused_cases / sizeof refused_cases[0]; i++) {
        kci_order_request request;
        kci_order_refusal refusal = parse(refused_cases[i].text, &request);
        if (refusal != refused_cases[i].refusal)
            fail_msg("%s: got %d (%s), want %d", refused_cases[i].text, refusal,
                     kci_order_refusal_message(refusal), refused_cases[i].refusal);
        assert_int_equal(request.quantity, 0);
        assert_int_equal(request.symbol[0], '\0');
    }
    for (int r = 0; r <= KCI_ORDER_FIELD_FORBIDDEN; r++)
        assert_string_not_equal(kci_order_refusal_message((kci_order_refusal)r), "unknown refusal");
}

static void test_length_bound(void **state)
{
    (void)state;
    static char text[KCI_ORDER_BYTES_MAX + 2];
    memset(text, ' ', sizeof text - 1);
    const char *order = "{\"type\":\"cancel\",\"symbol\":\"ACME\",\"order\":1}";
    memcpy(text, order, strlen(order));
    kci_order_request request;
    assert_int_equal(kci_order_parse(text, KCI_ORDER_BYTES_MAX, &request), KCI_ORDER_OK);
    assert_int_equal(kci_order_parse(text, KCI_ORDER_BYTES_MAX + 1, &request), KCI_ORDER_TOO_LARGE);
}

/* Every strict prefix of a valid message is refused (the parser reads only
 * length bytes, so there is no NUL to lean on); changing any one byte to
 * any value gives a refusal or a request within bounds. */
static void test_prefixes_and_changed_bytes(void **state)
{
    (void)state;
    const char *valid = LIMIT_BUY "\"price\":105,\"quantity\":10,\"wallet\":\"w-1\"}";
    size_t length = strlen(valid);
    kci_order_request request;
    for (size_t cut = 0; cut < length; cut++)
        assert_int_not_equal(kci_order_parse(valid, cut, &request), KCI_ORDER_OK);
    char changed[256];
    assert_true(length < sizeof changed);
    for (size_t at = 0; at < length; at++)
        for (int byte = 0; byte < 256; byte++) {
            memcpy(changed, valid, length);
            changed[at] = (char)byte;
            if (kci_order_parse(changed, length, &request) != KCI_ORDER_OK) continue;
            assert_true(request.quantity > 0 && request.quantity <= KCI_BOOK_QUANTITY_MAX);
            assert_true(request.type != KCI_ORDER_LIMIT ||
                        (request.price > 0 && request.price <= KCI_BOOK_PRICE_MAX));
            assert_true(kci_book_symbol_valid(request.symbol));
        }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_orders),
        cmocka_unit_test(test_refused_orders),
        cmocka_unit_test(test_length_bound),
        cmocka_unit_test(test_prefixes_and_changed_bytes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
