/* console_test.c - the web console's broker side (console.h,
 * console_assets.h, http_header.h): the compiled-in asset table (every
 * file there, served at its path with its content type, / the page), the
 * /console/api/broker document and its rates, a header's value and basic
 * credentials out of a parsed request, and kci_console_authorized with no
 * user, a plain password and a bcrypt one. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "broker/console.h"
#include "broker/console_assets.h"
#include "broker/http_header.h"

/* "pw" with bcrypt, cost 4. */
#define PW_HASH "$2b$04$6JtBwZ4Ohi1KtZsq42GER.73KcrPWU3CXnLQViAB8dRRMi1ZEIor2"

static void test_asset_table_has_the_console(void **state)
{
    (void)state;
    assert_int_equal(kci_console_asset_count, 3);
    const char *const paths[] = {"/console/index.html", "/console/console.css",
                                 "/console/console.js"};
    const char *const types[] = {"text/html", "text/css", "text/javascript"};
    for (size_t i = 0; i < 3; i++) {
        const kci_console_asset *asset = kci_console_asset_find(paths[i], strlen(paths[i]));
        assert_non_null(asset);
        assert_true(strncmp(asset->content_type, types[i], strlen(types[i])) == 0);
        assert_true(asset->len > 100);
    }
    const kci_console_asset *page = kci_console_asset_find("/", 1);
    assert_non_null(page);
    assert_string_equal(page->path, "/console/index.html");
    assert_non_null(memmem(page->bytes, page->len, "/console/console.js", 19));
    assert_null(memmem(page->bytes, page->len, "https://", 8)); /* nothing from elsewhere */
    assert_null(kci_console_asset_find("/console/", 9));
    assert_null(kci_console_asset_find("/console/index.htm", 18));
    /* the path is matched whole, not as a prefix */
    assert_null(kci_console_asset_find("/console/console.jsx", 20));
}

static void test_broker_document_rates(void **state)
{
    (void)state;
    kci_console_traffic before = {
        .wall_ms = 1000, .in_msgs = 100, .out_msgs = 10, .in_bytes = 5000};
    kci_console_traffic now = {.wall_ms = 3000,
                               .connections = 4,
                               .subscriptions = 9,
                               .in_msgs = 300,
                               .out_msgs = 10,
                               .in_bytes = 9000,
                               .slow_consumers = 1};
    json_t *document = kci_console_broker_json(&now, &before);
    assert_non_null(document);
    assert_int_equal(json_integer_value(json_object_get(document, "connections")), 4);
    assert_int_equal(json_integer_value(json_object_get(document, "subscriptions")), 9);
    assert_int_equal(json_integer_value(json_object_get(document, "slow_consumers")), 1);
    assert_int_equal(json_integer_value(json_object_get(document, "rate_window_ms")), 2000);
    assert_float_equal(json_real_value(json_object_get(document, "in_msgs_per_s")), 100.0, 1e-9);
    assert_float_equal(json_real_value(json_object_get(document, "out_msgs_per_s")), 0.0, 1e-9);
    assert_float_equal(json_real_value(json_object_get(document, "in_bytes_per_s")), 2000.0, 1e-9);
    json_decref(document);
    /* no earlier sample: no rate rather than a made-up one */
    kci_console_traffic none = {0};
    document = kci_console_broker_json(&now, &none);
    assert_float_equal(json_real_value(json_object_get(document, "in_msgs_per_s")), 0.0, 1e-9);
    json_decref(document);
}

/* Parses text as a whole request. */
static kci_http_request parsed(const char *text)
{
    kci_http_request request;
    kci_http_parse_init(&request);
    assert_int_equal(kci_http_parse_feed(&request, text, strlen(text)), KCI_HTTP_COMPLETE);
    return request;
}

static void test_header_value(void **state)
{
    (void)state;
    const char *text = "GET / HTTP/1.1\r\nHost: x\r\nauthorization:   Basic abc= \t\r\n"
                       "Authorization: second\r\n\r\n";
    kci_http_request request = parsed(text);
    uint32_t start = 0, len = 0;
    assert_true(kci_http_header_value(&request, text, "Authorization", &start, &len));
    assert_int_equal(len, 10);
    assert_memory_equal(text + start, "Basic abc=", 10);
    assert_true(kci_http_header_value(&request, text, "host", &start, &len));
    assert_memory_equal(text + start, "x", 1);
    assert_false(kci_http_header_value(&request, text, "Auth", &start, &len));
    const char *bare = "GET / HTTP/1.0\r\n\r\n";
    request = parsed(bare);
    assert_false(kci_http_header_value(&request, bare, "Host", &start, &len));
}

static void test_basic_credentials(void **state)
{
    (void)state;
    char user[KCI_HTTP_CREDENTIAL_BYTES_MAX], password[KCI_HTTP_CREDENTIAL_BYTES_MAX];
    const char *good = "Basic b3BzOmE6Yg=="; /* ops:a:b, the password may hold ':' */
    assert_true(kci_http_basic_credentials(good, strlen(good), user, password));
    assert_string_equal(user, "ops");
    assert_string_equal(password, "a:b");
    const char *empty = "basic Og=="; /* ":" */
    assert_true(kci_http_basic_credentials(empty, strlen(empty), user, password));
    assert_string_equal(user, "");
    assert_string_equal(password, "");
    const char *const bad[] = {
        "Bearer b3BzOmE=",      "Basic b3BzOmE",     "Basic b3Bz",
        "Basic ====",           "Basic b3B=OmE=",    "Basic",
        "Basic AA==" /* NUL */, "Basic b3BzAGE6Yg==" /* a NUL in the user */};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (kci_http_basic_credentials(bad[i], strlen(bad[i]), user, password))
            fail_msg("accepted %s", bad[i]);
}

static bool authorized(kci_console *console, const kci_options *options, const char *credentials)
{
    char text[256];
    snprintf(text, sizeof text, "GET /varz HTTP/1.1\r\n%s%s%s\r\n",
             credentials ? "Authorization: Basic " : "", credentials ? credentials : "",
             credentials ? "\r\n" : "");
    kci_http_request request = parsed(text);
    return kci_console_authorized(console, options, &request, text);
}

static void test_authorized(void **state)
{
    (void)state;
    kci_console console = {0};
    kci_options options = {0};
    assert_true(authorized(&console, &options, NULL)); /* no http_user: open */
    options.http_user = "ops";
    options.http_password = "pw";
    assert_false(authorized(&console, &options, NULL));
    assert_true(authorized(&console, &options, "b3BzOnB3"));  /* ops:pw */
    assert_false(authorized(&console, &options, "b3BzOnB4")); /* ops:px */
    assert_false(authorized(&console, &options, "b3B4OnB3")); /* opx:pw */
    options.http_password = PW_HASH;
    assert_true(authorized(&console, &options, "b3BzOnB3"));
    assert_non_null(console.verified_password); /* cached: the next is no bcrypt */
    assert_true(authorized(&console, &options, "b3BzOnB3"));
    assert_false(authorized(&console, &options, "b3BzOnB4"));
    kci_console_free(&console);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_asset_table_has_the_console),
        cmocka_unit_test(test_broker_document_rates),
        cmocka_unit_test(test_header_value),
        cmocka_unit_test(test_basic_credentials),
        cmocka_unit_test(test_authorized),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
