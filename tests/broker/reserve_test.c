/* reserve_test.c - a publish subject reserved to some users
 * (src/broker/reserve.h), on options read from config text: who may
 * publish kc.ledger.mint after the reservation, and that everything else
 * each login could publish stays as it was. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "broker/auth.h"
#include "broker/reserve.h"
#include "common/conf.h"

enum { ERROR_BYTES = 512 };

static void options_from(kci_options *options, const char *text)
{
    char error[ERROR_BYTES] = "";
    kci_options_init_defaults(options);
    kci_conf_value *root = NULL;
    if (kci_conf_parse(text, strlen(text), &root, error, ERROR_BYTES) != KC_OK ||
        kci_options_apply_conf(options, root, error, ERROR_BYTES) != KC_OK)
        fail_msg("config: %s", error);
    kci_conf_free(root);
}

static const kci_user *user(const kci_options *options, const char *name)
{
    for (size_t i = 0; i < options->user_count; i++)
        if (strcmp(options->users[i].user, name) == 0) return &options->users[i];
    fail_msg("no user %s", name);
    return NULL;
}

static bool may_publish(const kci_options *options, const char *name, const char *subject)
{
    const kci_permissions *permissions =
        kci_permissions_for(options, name != NULL ? user(options, name) : NULL);
    return kci_permissions_allow_publish(permissions, subject, strlen(subject));
}

static char *const operators[] = {"admin", "minter"};

static void test_users(void **state)
{
    (void)state;
    kci_options options;
    options_from(&options,
                 "authorization { users: [\n"
                 "  {user: admin, password: p}\n"
                 "  {user: minter, password: p, permissions: {publish: [\"kc.ledger.>\"]}}\n"
                 "  {user: alice, password: p}\n"
                 "  {user: bob, password: p, permissions: {publish: [\"kc.>\"]}}\n"
                 "  {user: carol, password: p, permissions: {subscribe: [\"x.>\"]}}\n"
                 "]\n default_permissions: {publish: [\"kc.>\", \"_INBOX.>\"]} }\n");
    assert_int_equal(kci_options_reserve_publish(&options, "kc.ledger.mint", operators, 2), KC_OK);
    assert_true(may_publish(&options, "admin", "kc.ledger.mint")); /* the defaults, as its own */
    assert_true(may_publish(&options, "admin", "kc.req.t"));
    assert_false(may_publish(&options, "admin", "other"));
    assert_true(may_publish(&options, "minter", "kc.ledger.mint")); /* its own, unchanged */
    assert_false(may_publish(&options, "alice", "kc.ledger.mint"));
    assert_true(may_publish(&options, "alice", "kc.req.t"));
    assert_false(may_publish(&options, "bob", "kc.ledger.mint"));
    assert_true(may_publish(&options, "bob", "kc.ledger.transfer"));
    assert_false(may_publish(&options, "carol", "kc.ledger.mint"));
    assert_true(may_publish(&options, "carol", "anything"));
    assert_false(may_publish(&options, NULL, "kc.ledger.mint")); /* a token client */
    kci_options_free(&options);
}

static void test_no_users(void **state)
{
    (void)state;
    kci_options options;
    options_from(&options, "port: 4222\n");
    assert_int_equal(kci_options_reserve_publish(&options, "kc.ledger.mint", operators, 2), KC_OK);
    assert_false(may_publish(&options, NULL, "kc.ledger.mint"));
    assert_true(may_publish(&options, NULL, "kc.ledger.transfer"));
    assert_true(may_publish(&options, NULL, "anything.else"));
    kci_options_free(&options);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_users),
        cmocka_unit_test(test_no_users),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
