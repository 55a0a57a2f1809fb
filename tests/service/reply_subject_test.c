/* reply_subject_test.c - where a component may publish for a client
 * (reply_subject.h): a table of subjects that must be refused for each use,
 * a table that must pass, every cut of a good subject, and random bytes
 * checked against a plain oracle. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "service/reply_subject.h"

static bool allowed(const char *subject, kci_reply_use use)
{
    return kci_reply_subject_problem(subject, strlen(subject), use) == NULL;
}

static void test_refused_for_both_uses(void **state)
{
    (void)state;
    static const char *const refused[] = {
        "",
        "kc.ledger.mint",
        "kc.sys.quarantine.set",
        "kc.arbiter.vote",
        "kc.req.echo",
        "$SYS.REQ.SERVER.PING",
        "_INBOX",
        "_INBOX.",
        "_INBOX..x",
        "_INBOX.x.",
        "_INBOX.x..y",
        "_INBOX.*",
        "_INBOX.>",
        "_INBOX.a.*",
        "_INBOX.a>",
        "_INBOX.a b",
        "_INBOX.a\tb",
        "_INBOX.a\r\nPUB kc.ledger.mint 1",
        "_INBOX.\x7f",
        "_INBOX.\xc3\xa9",
        "_inbox.x",
        " _INBOX.x",
        "x._INBOX.y",
        "kc.arbiter.log",
        "kc.arbiter.log.",
        "kc.arbiter.log.*",
    };
    for (size_t index = 0; index < sizeof refused / sizeof refused[0]; index++) {
        if (allowed(refused[index], KCI_REPLY_ANSWER) || allowed(refused[index], KCI_REPLY_NOTIFY))
            fail_msg("allowed: \"%s\"", refused[index]);
    }
    assert_false(kci_reply_subject_allowed(NULL, KCI_REPLY_ANSWER));
    char long_subject[KCI_REPLY_SUBJECT_BYTES_MAX + 2];
    memset(long_subject, 'a', sizeof long_subject - 1);
    memcpy(long_subject, "_INBOX.", 7);
    long_subject[sizeof long_subject - 1] = '\0';
    assert_false(allowed(long_subject, KCI_REPLY_ANSWER));
    long_subject[KCI_REPLY_SUBJECT_BYTES_MAX] = '\0'; /* exactly the bound */
    assert_true(allowed(long_subject, KCI_REPLY_ANSWER));
}

static void test_allowed(void **state)
{
    (void)state;
    static const char *const inboxes[] = {
        "_INBOX.x",
        "_INBOX.Jk3o2aVZzvLYB4jN0IBqrR.12",
        "_INBOX.guest.notify",
        "_INBOX.a-b_c.~!@#$%^&()",
    };
    for (size_t index = 0; index < sizeof inboxes / sizeof inboxes[0]; index++) {
        assert_true(allowed(inboxes[index], KCI_REPLY_ANSWER));
        assert_true(allowed(inboxes[index], KCI_REPLY_NOTIFY));
    }
    /* The arbiters' log lookups: answers only, never a forwarded payload. */
    assert_true(
        allowed("kc.arbiter.log.a1.019a0000-0000-7000-8000-000000000000", KCI_REPLY_ANSWER));
    assert_false(
        allowed("kc.arbiter.log.a1.019a0000-0000-7000-8000-000000000000", KCI_REPLY_NOTIFY));
}

/* Every prefix of a good subject: the length, not a NUL, ends it. */
static void test_every_cut(void **state)
{
    (void)state;
    const char *good = "_INBOX.abc.def";
    for (size_t length = 0; length <= strlen(good); length++) {
        bool expected = length > 7 && good[length - 1] != '.';
        assert_int_equal(kci_reply_subject_problem(good, length, KCI_REPLY_NOTIFY) == NULL,
                         expected);
    }
}

/* The oracle: split at dots, every token non-empty, printable, no space,
 * no '*' or '>'; first token "_INBOX" and at least two tokens. */
static bool oracle(const char *subject, size_t length)
{
    if (length == 0 || length > KCI_REPLY_SUBJECT_BYTES_MAX) return false;
    size_t tokens = 0, start = 0;
    for (size_t index = 0; index <= length; index++) {
        if (index < length && subject[index] != '.') {
            unsigned char byte = (unsigned char)subject[index];
            if (byte <= 0x20 || byte >= 0x7F || byte == '*' || byte == '>') return false;
            continue;
        }
        if (index == start) return false;
        if (tokens == 0 && (index - start != 6 || memcmp(subject + start, "_INBOX", 6) != 0))
            return false;
        tokens++;
        start = index + 1;
    }
    return tokens >= 2;
}

static void test_random_against_oracle(void **state)
{
    (void)state;
    static const char alphabet[] = "_INBOX.ab*> \x01\x7f\xff";
    char subject[24];
    srand(12345);
    for (int round = 0; round < 200000; round++) {
        size_t length = (size_t)(rand() % (int)sizeof subject);
        size_t start = 0;
        if (rand() % 2 == 0 && length >= 7) { /* half of them start like an inbox */
            memcpy(subject, "_INBOX.", 7);
            start = 7;
        }
        for (size_t index = start; index < length; index++)
            subject[index] = alphabet[rand() % (int)(sizeof alphabet - 1)];
        bool got = kci_reply_subject_problem(subject, length, KCI_REPLY_NOTIFY) == NULL;
        if (got != oracle(subject, length)) fail_msg("round %d: disagrees", round);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_refused_for_both_uses),
        cmocka_unit_test(test_allowed),
        cmocka_unit_test(test_every_cut),
        cmocka_unit_test(test_random_against_oracle),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
