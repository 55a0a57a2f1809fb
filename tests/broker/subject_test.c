/* subject_test.c - tables of subjects that must pass and must fail
 * validation, a table of filter/subject pairs with the expected match, the
 * length and token-count bounds at and past the limit, and a randomized
 * comparison of kci_subject_matches with a naive split-and-compare oracle. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "broker/subject.h"

enum {
    ORACLE_TOKENS_MAX = 16,
    RANDOM_ROUNDS = 200000,
    RANDOM_SUBJECT_BYTES_MAX = 64,
};

static const char *const filters_valid[] = {
    "foo",         "foo.bar",
    "foo.bar.baz", "*",
    ">",           "foo.*",
    "*.bar",       "foo.>",
    "*.*.>",       "foo.*.baz.>",
    "a",           "A.B-C_D",
    "foo*",        "*foo",
    "foo>",        ">foo",
    "fo*o.b>r",    "\xc3\xa9t\xc3\xa9.caf\xc3\xa9",
    "$SYS.REQ.>",  "_INBOX.abc123.*",
    "1.2.3",       "**",
    ">>",          "*>",
};

static const char *const filters_invalid[] = {
    "",          ".",       "..",   ".foo",     "foo.",     "foo..bar", "foo. bar",
    "foo bar",   " foo",    "foo ", "foo\tbar", "foo\rbar", "foo\nbar", ">.foo",
    "foo.>.bar", "foo.>.*", ">.>",  "a.b.",     ".a.b",     "a..",
};

static const char *const literals_valid[] = {
    "foo",
    "foo.bar",
    "foo.bar.baz",
    "a",
    "foo*",
    "*foo",
    "foo>",
    ">foo",
    "**",
    ">>",
    "*>",
    "$SYS.REQ.INFO",
    "_INBOX.abc123.1",
    "\xc3\xa9t\xc3\xa9",
};

/* Valid filters that are not valid literals, and malformed subjects. */
static const char *const literals_invalid[] = {
    "*",    ">",    "foo.*",    "*.bar",   "foo.>",    "foo.*.baz", "",      ".",
    "foo.", ".foo", "foo..bar", "foo bar", "foo\tbar", "foo\r",     "\nfoo",
};

typedef struct match_case {
    const char *filter;
    const char *subject;
    bool matches;
} match_case;

static const match_case match_cases[] = {
    {"foo", "foo", true},
    {"foo", "bar", false},
    {"foo", "foo.bar", false},
    {"foo.bar", "foo", false},
    {"foo.bar", "foo.bar", true},
    {"foo.bar", "foo.baz", false},
    {"foo.bar", "foo.ba", false},
    {"foo.ba", "foo.bar", false},
    {"*", "foo", true},
    {"*", "foo.bar", false},
    {"*.bar", "foo.bar", true},
    {"*.bar", "foo.baz", false},
    {"foo.*", "foo.bar", true},
    {"foo.*", "foo", false},
    {"foo.*", "foo.bar.baz", false},
    {"*.*", "a.b", true},
    {"*.*", "a", false},
    {"*.*", "a.b.c", false},
    {">", "foo", true},
    {">", "foo.bar.baz", true},
    {"foo.>", "foo", false},
    {"foo.>", "foo.bar", true},
    {"foo.>", "foo.bar.baz", true},
    {"foo.>", "bar.baz", false},
    {"*.>", "foo", false},
    {"*.>", "foo.bar", true},
    {"foo.*.>", "foo.bar", false},
    {"foo.*.>", "foo.bar.baz", true},
    {"foo.*.baz", "foo.bar.baz", true},
    {"foo.*.baz", "foo.bar.bat", false},
    {"foo*", "foo*", true},  /* partial '*' is an ordinary byte */
    {"foo*", "foox", false}, /* ... so it is no wildcard */
    {"foo>", "foo.bar", false},
    {"foo.bar", "foo.*", false}, /* a subject with a wildcard token is no literal */
    {"foo.*", "foo.*", false},
    {">", ">", false},
    {">", "foo.>", false},
    {"foo.>", "foo.bar.*", false},
    {"foo.>.bar", "foo.x.bar", false}, /* '>' not last: malformed filter */
    {"foo..bar", "foo..bar", false},
    {"foo.", "foo.", false},
    {"", "", false},
    {"foo", "", false},
    {"", "foo", false},
    {"foo bar", "foo bar", false},
};

static void test_filters_valid(void **state)
{
    (void)state;
    for (size_t index = 0; index < sizeof filters_valid / sizeof *filters_valid; index++) {
        const char *subject = filters_valid[index];
        if (!kci_subject_valid_filter(subject, strlen(subject))) fail_msg("filter '%s'", subject);
    }
}

static void test_filters_invalid(void **state)
{
    (void)state;
    for (size_t index = 0; index < sizeof filters_invalid / sizeof *filters_invalid; index++) {
        const char *subject = filters_invalid[index];
        if (kci_subject_valid_filter(subject, strlen(subject))) fail_msg("filter '%s'", subject);
    }
}

static void test_literals_valid(void **state)
{
    (void)state;
    for (size_t index = 0; index < sizeof literals_valid / sizeof *literals_valid; index++) {
        const char *subject = literals_valid[index];
        if (!kci_subject_valid_literal(subject, strlen(subject))) fail_msg("literal '%s'", subject);
        /* Every literal is also a filter, and matches itself. */
        assert_true(kci_subject_valid_filter(subject, strlen(subject)));
        assert_true(kci_subject_matches(subject, strlen(subject), subject, strlen(subject)));
    }
}

static void test_literals_invalid(void **state)
{
    (void)state;
    for (size_t index = 0; index < sizeof literals_invalid / sizeof *literals_invalid; index++) {
        const char *subject = literals_invalid[index];
        if (kci_subject_valid_literal(subject, strlen(subject))) fail_msg("literal '%s'", subject);
    }
}

static void test_embedded_nul_and_length(void **state)
{
    (void)state;
    static const char with_nul[] = "foo\0bar";
    assert_false(kci_subject_valid_filter(with_nul, sizeof with_nul - 1));
    assert_false(kci_subject_valid_literal(with_nul, sizeof with_nul - 1));
    /* Only subject_len bytes count: no NUL terminator needed. */
    assert_true(kci_subject_valid_literal("foo.bar.", 7));
    assert_true(kci_subject_valid_filter("foo.>.bar", 5));
    assert_true(kci_subject_matches("foo.*xx", 5, "foo.bar yy", 7));
    assert_false(kci_subject_valid_filter(NULL, 0));
    assert_false(kci_subject_matches(NULL, 0, "foo", 3));
}

/* Fills buffer with token_count tokens "a.a.a..." and returns its length. */
static size_t subject_of_tokens(char *buffer, size_t token_count)
{
    for (size_t index = 0; index < token_count; index++) {
        buffer[2 * index] = 'a';
        buffer[2 * index + 1] = '.';
    }
    return 2 * token_count - 1;
}

static void test_bounds(void **state)
{
    (void)state;
    static char buffer[2 * KCI_SUBJECT_BYTES_MAX];
    size_t len = subject_of_tokens(buffer, KCI_SUBJECT_TOKENS_MAX);
    assert_true(kci_subject_valid_literal(buffer, len));
    assert_true(kci_subject_matches(buffer, len, buffer, len));
    buffer[len - 1] = '>';
    assert_true(kci_subject_valid_filter(buffer, len));
    buffer[len - 1] = 'a';
    len = subject_of_tokens(buffer, KCI_SUBJECT_TOKENS_MAX + 1);
    assert_false(kci_subject_valid_literal(buffer, len));
    assert_false(kci_subject_valid_filter(buffer, len));
    assert_false(kci_subject_matches(">", 1, buffer, len));
    assert_false(kci_subject_matches(buffer, len, buffer, len));

    memset(buffer, 'x', sizeof buffer);
    assert_true(kci_subject_valid_literal(buffer, KCI_SUBJECT_BYTES_MAX));
    assert_true(kci_subject_matches(">", 1, buffer, KCI_SUBJECT_BYTES_MAX));
    assert_false(kci_subject_valid_literal(buffer, KCI_SUBJECT_BYTES_MAX + 1));
    assert_false(kci_subject_valid_filter(buffer, KCI_SUBJECT_BYTES_MAX + 1));
    assert_false(kci_subject_matches(">", 1, buffer, KCI_SUBJECT_BYTES_MAX + 1));
}

static void test_match_table(void **state)
{
    (void)state;
    for (size_t index = 0; index < sizeof match_cases / sizeof *match_cases; index++) {
        const match_case *c = &match_cases[index];
        bool matches =
            kci_subject_matches(c->filter, strlen(c->filter), c->subject, strlen(c->subject));
        if (matches != c->matches)
            fail_msg("filter '%s' subject '%s': got %d", c->filter, c->subject, matches);
    }
}

/* ---- randomized comparison with a naive oracle ---- */

typedef struct oracle_tokens {
    const char *start[ORACLE_TOKENS_MAX + 1];
    size_t len[ORACLE_TOKENS_MAX + 1];
    size_t count;
    bool ok;
} oracle_tokens;

static void oracle_split(const char *subject, size_t len, oracle_tokens *out)
{
    out->count = 0;
    out->ok = len > 0;
    size_t start = 0;
    for (size_t index = 0; index <= len && out->ok; index++) {
        if (index < len && strchr(" \t\r\n", subject[index]) != NULL) out->ok = false;
        if (index < len && subject[index] == '\0') out->ok = false;
        if (index < len && subject[index] != '.') continue;
        if (index == start || out->count == ORACLE_TOKENS_MAX) out->ok = false;
        if (!out->ok) break;
        out->start[out->count] = subject + start;
        out->len[out->count++] = index - start;
        start = index + 1;
    }
}

static bool oracle_is(const oracle_tokens *tokens, size_t index, char wildcard)
{
    return tokens->len[index] == 1 && tokens->start[index][0] == wildcard;
}

static bool oracle_valid(const char *subject, size_t len, bool wildcards_allowed)
{
    oracle_tokens tokens;
    oracle_split(subject, len, &tokens);
    if (!tokens.ok) return false;
    for (size_t index = 0; index < tokens.count; index++) {
        bool wildcard = oracle_is(&tokens, index, '*') || oracle_is(&tokens, index, '>');
        if (wildcard && !wildcards_allowed) return false;
        if (oracle_is(&tokens, index, '>') && index + 1 < tokens.count) return false;
    }
    return true;
}

static bool oracle_matches(const char *filter, size_t filter_len, const char *subject,
                           size_t subject_len)
{
    oracle_tokens f, s;
    oracle_split(filter, filter_len, &f);
    oracle_split(subject, subject_len, &s);
    if (!f.ok || !s.ok) return false;
    for (size_t index = 0; index < s.count; index++)
        if (oracle_is(&s, index, '*') || oracle_is(&s, index, '>')) return false;
    for (size_t index = 0; index + 1 < f.count; index++)
        if (oracle_is(&f, index, '>')) return false;
    for (size_t index = 0; index < f.count; index++) {
        if (oracle_is(&f, index, '>')) return s.count > index;
        if (index >= s.count) return false;
        if (oracle_is(&f, index, '*')) continue;
        if (f.len[index] != s.len[index]) return false;
        if (memcmp(f.start[index], s.start[index], f.len[index]) != 0) return false;
    }
    return f.count == s.count;
}

static size_t random_subject(char *buffer, unsigned *seed)
{
    static const char alphabet[] = "ab.*> .";
    size_t len = (size_t)rand_r(seed) % 10;
    for (size_t index = 0; index < len; index++)
        buffer[index] = alphabet[(size_t)rand_r(seed) % (sizeof alphabet - 1)];
    return len;
}

static void test_random_against_oracle(void **state)
{
    (void)state;
    unsigned seed = 12345;
    char filter[RANDOM_SUBJECT_BYTES_MAX];
    char subject[RANDOM_SUBJECT_BYTES_MAX];
    uint64_t matched = 0;
    for (int round = 0; round < RANDOM_ROUNDS; round++) {
        size_t filter_len = random_subject(filter, &seed);
        size_t subject_len = round % 3 == 0 ? filter_len : random_subject(subject, &seed);
        if (round % 3 == 0) memcpy(subject, filter, filter_len);
        bool expected = oracle_matches(filter, filter_len, subject, subject_len);
        bool got = kci_subject_matches(filter, filter_len, subject, subject_len);
        if (expected != got)
            fail_msg("filter '%.*s' subject '%.*s': oracle %d, got %d", (int)filter_len, filter,
                     (int)subject_len, subject, expected, got);
        assert_int_equal(oracle_valid(filter, filter_len, true),
                         kci_subject_valid_filter(filter, filter_len));
        assert_int_equal(oracle_valid(filter, filter_len, false),
                         kci_subject_valid_literal(filter, filter_len));
        matched += got;
    }
    assert_true(matched > RANDOM_ROUNDS / 100); /* the generator does make matches */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_filters_valid),
        cmocka_unit_test(test_filters_invalid),
        cmocka_unit_test(test_literals_valid),
        cmocka_unit_test(test_literals_invalid),
        cmocka_unit_test(test_embedded_nul_and_length),
        cmocka_unit_test(test_bounds),
        cmocka_unit_test(test_match_table),
        cmocka_unit_test(test_random_against_oracle),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
