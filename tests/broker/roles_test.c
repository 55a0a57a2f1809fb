/* roles_test.c - kcobrad's components' roles (roles.h): their user names,
 * and that each role's permissions keep it off the control subjects a
 * client could try to reach through it (the confused deputy), while
 * allowing what the component does. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "broker/auth.h"
#include "broker/roles.h"

static bool may_publish(kci_role role, const char *subject)
{
    return kci_permissions_allow_publish(kci_role_permissions(role), subject, strlen(subject));
}

static bool may_subscribe(kci_role role, const char *filter)
{
    return kci_permissions_allow_subscribe(kci_role_permissions(role), filter, strlen(filter));
}

static void test_users(void **state)
{
    (void)state;
    for (int role = KCI_ROLE_PERSISTER; role < KCI_ROLE_COUNT; role++) {
        const char *user = kci_role_user((kci_role)role);
        assert_non_null(user);
        assert_int_equal(kci_role_from_user(user), role);
    }
    assert_null(kci_role_user(KCI_ROLE_NONE));
    assert_int_equal(kci_role_from_user(NULL), KCI_ROLE_NONE);
    assert_int_equal(kci_role_from_user("kcobrad-internal"), KCI_ROLE_NONE); /* the old pass */
    assert_int_equal(kci_role_from_user("kcobrad-persister "), KCI_ROLE_NONE);
    assert_int_equal(kci_role_from_user("admin"), KCI_ROLE_NONE);
}

/* The subjects the attacks reached through the persister. */
static const char *const control_subjects[] = {
    "kc.sys.quarantine.set", "kc.ledger.mint",       "kc.arbiter.vote",
    "kc.arbiter.reinstate",  "kc.sys.queue.compact", "$SYS.REQ.SERVER.PING",
};

static void test_only_the_arbiter_reaches_control_subjects(void **state)
{
    (void)state;
    for (size_t index = 0; index < sizeof control_subjects / sizeof control_subjects[0]; index++) {
        const char *subject = control_subjects[index];
        assert_false(may_publish(KCI_ROLE_PERSISTER, subject));
        assert_false(may_publish(KCI_ROLE_LEDGER, subject));
        assert_false(may_publish(KCI_ROLE_KEEPER, subject));
        assert_false(may_publish(KCI_ROLE_INGRESS, subject));
    }
    assert_true(may_publish(KCI_ROLE_ARBITER, "kc.sys.quarantine.set"));
    assert_true(may_publish(KCI_ROLE_ARBITER, "kc.arbiter.vote"));
    assert_false(may_publish(KCI_ROLE_ARBITER, "kc.ledger.mint"));
    assert_false(may_publish(KCI_ROLE_ARBITER, "kc.sys.queue.compact"));
}

static void test_what_each_component_does(void **state)
{
    (void)state;
    assert_true(may_publish(KCI_ROLE_PERSISTER, "kc.req.echo"));
    assert_true(may_publish(KCI_ROLE_PERSISTER, "_INBOX.abc.1"));
    assert_true(may_publish(KCI_ROLE_PERSISTER, "kc.arbiter.log.a1.0190"));
    assert_true(may_subscribe(KCI_ROLE_PERSISTER, "kc.submit.>"));
    assert_true(may_subscribe(KCI_ROLE_PERSISTER, "kc.reply.get"));
    assert_true(may_subscribe(KCI_ROLE_PERSISTER, "_KCQ.>"));
    assert_true(may_subscribe(KCI_ROLE_PERSISTER, "kc.sys.queue.stats"));
    assert_false(may_subscribe(KCI_ROLE_PERSISTER, "kc.ledger.>"));
    assert_true(may_publish(KCI_ROLE_LEDGER, "_INBOX.x"));
    assert_false(may_publish(KCI_ROLE_LEDGER, "kc.req.echo"));
    assert_true(may_subscribe(KCI_ROLE_LEDGER, "kc.ledger.>"));
    assert_true(may_subscribe(KCI_ROLE_KEEPER, "kc.suggest"));
    assert_true(may_subscribe(KCI_ROLE_KEEPER, "kc.suggest.list"));
    assert_true(may_publish(KCI_ROLE_INGRESS, "kc.req.default"));
    assert_false(may_publish(KCI_ROLE_INGRESS, "_INBOX.x"));
    assert_true(may_subscribe(KCI_ROLE_INGRESS, "_INBOX.abc.*"));
    assert_true(may_subscribe(KCI_ROLE_ARBITER, "kc.req.>"));
    assert_true(may_subscribe(KCI_ROLE_ARBITER, "_KCQ.>"));
    assert_true(may_publish(KCI_ROLE_ARBITER, "kc.reply.get"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_users),
        cmocka_unit_test(test_only_the_arbiter_reaches_control_subjects),
        cmocka_unit_test(test_what_each_component_does),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
