/* auth_test.c - authentication and permission decisions: tokens, users,
 * constant-time comparison results, allow/deny for publish, subscription
 * cover rules for wildcards, and per-message deny at delivery. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "broker/auth.h"

static bool covers(const char *cover, const char *filter)
{
    return kci_filter_covers(cover, strlen(cover), filter, strlen(filter));
}

static void test_filter_covers(void **state)
{
    (void)state;
    assert_true(covers(">", "foo"));
    assert_true(covers(">", "foo.>"));
    assert_true(covers("foo.>", "foo.bar"));
    assert_true(covers("foo.>", "foo.*"));
    assert_true(covers("foo.>", "foo.>"));
    assert_true(covers("foo.*", "foo.bar"));
    assert_true(covers("foo.*", "foo.*"));
    assert_true(covers("foo.bar", "foo.bar"));
    assert_true(covers("*.bar", "foo.bar"));
    assert_false(covers("foo.>", "foo"));
    assert_false(covers("foo.*", "foo.>"));
    assert_false(covers("foo.*", "foo.bar.baz"));
    assert_false(covers("foo.bar", "foo.*"));
    assert_false(covers("foo.bar", "foo.baz"));
    assert_false(covers("foo.bar", "foo.bar.baz"));
    assert_false(covers("foo", ">"));
    assert_false(covers("foo.bar.baz", "foo.bar"));
}

static char *allow_foo[] = {"foo.>", "_INBOX.>"};
static char *deny_secret[] = {"foo.secret"};
static char *deny_sub[] = {"secret.>"};

static void test_publish_permissions(void **state)
{
    (void)state;
    kci_permissions permissions = {0};
    assert_true(kci_permissions_allow_publish(NULL, "anything", 8));
    permissions.publish = (kci_permission_list){.present = true,
                                                .allow = allow_foo,
                                                .allow_count = 2,
                                                .deny = deny_secret,
                                                .deny_count = 1};
    assert_true(kci_permissions_allow_publish(&permissions, "foo.bar", 7));
    assert_true(kci_permissions_allow_publish(&permissions, "_INBOX.x.y", 10));
    assert_false(kci_permissions_allow_publish(&permissions, "bar", 3));
    assert_false(kci_permissions_allow_publish(&permissions, "foo.secret", 10));
    /* no subscribe list: subscribing is free */
    assert_true(kci_permissions_allow_subscribe(&permissions, "bar.>", 5));
}

static void test_subscribe_permissions(void **state)
{
    (void)state;
    kci_permissions permissions = {0};
    permissions.subscribe =
        (kci_permission_list){.present = true, .deny = deny_sub, .deny_count = 1};
    assert_true(kci_permissions_allow_subscribe(&permissions, "foo", 3));
    assert_false(kci_permissions_allow_subscribe(&permissions, "secret.x", 8));
    assert_false(kci_permissions_allow_subscribe(&permissions, "secret.>", 8));
    /* overlaps but is not covered: allowed, and filtered per message */
    assert_true(kci_permissions_allow_subscribe(&permissions, ">", 1));
    assert_false(kci_permissions_deliver_allowed(&permissions, "secret.plans", 12));
    assert_true(kci_permissions_deliver_allowed(&permissions, "public.plans", 12));
}

static void test_token_and_users(void **state)
{
    (void)state;
    kci_options options;
    memset(&options, 0, sizeof options);
    const kci_user *user = NULL;
    kci_credentials none = {0};
    assert_false(kci_auth_required(&options));
    assert_true(kci_auth_check(&options, &none, &user));

    options.auth_token = "s3cret";
    assert_true(kci_auth_required(&options));
    kci_credentials good_token = {.auth_token = "s3cret"};
    kci_credentials bad_token = {.auth_token = "s3creT"};
    kci_credentials short_token = {.auth_token = "s3cre"};
    assert_true(kci_auth_check(&options, &good_token, &user));
    assert_false(kci_auth_check(&options, &bad_token, &user));
    assert_false(kci_auth_check(&options, &short_token, &user));
    assert_false(kci_auth_check(&options, &none, &user));

    kci_user users[2] = {{.user = "alice", .password = "a1"}, {.user = "bob", .password = "b2"}};
    options.auth_token = NULL;
    options.users = users;
    options.user_count = 2;
    kci_credentials bob = {.user = "bob", .password = "b2"};
    kci_credentials bob_wrong = {.user = "bob", .password = "a1"};
    kci_credentials nobody = {.user = "carol", .password = "b2"};
    assert_true(kci_auth_check(&options, &bob, &user));
    assert_ptr_equal(user, &users[1]);
    assert_false(kci_auth_check(&options, &bob_wrong, &user));
    assert_false(kci_auth_check(&options, &nobody, &user));
    assert_null(kci_permissions_for(&options, &users[0]));
    users[0].permissions.publish =
        (kci_permission_list){.present = true, .allow = allow_foo, .allow_count = 1};
    assert_ptr_equal(kci_permissions_for(&options, &users[0]), &users[0].permissions);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_filter_covers),
        cmocka_unit_test(test_publish_permissions),
        cmocka_unit_test(test_subscribe_permissions),
        cmocka_unit_test(test_token_and_users),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
