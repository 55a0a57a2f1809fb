/* arbiter_parts_test.c - the small pieces of the arbiter: reporter
 * credibility and perjury, the rate limit, the quorum count, and the
 * reporting tree's shape and its three renderings, and the parsers of
 * reports and votes (good inputs, and a table of inputs that must fail). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <sodium.h>

#include "arbiter/credibility.h"
#include "arbiter/observe.h"
#include "arbiter/quorum.h"
#include "arbiter/tree.h"
#include "arbiter/vote_sign.h"
#include "arbiter/wire.h"

static void test_credibility(void **state)
{
    (void)state;
    kci_credibility_params params;
    kci_credibility_params_default(&params);
    kci_credibility credibility = {0};
    assert_float_equal(kci_credibility_value(&credibility), 0.5, 0);
    for (int i = 0; i < 4; i++)
        kci_credibility_judge(&credibility, false);
    /* 1 / (1 + 5): low, but only 4 judged reports: not yet a perjurer */
    assert_float_equal(kci_credibility_value(&credibility), 1.0 / 6, 1e-12);
    assert_false(kci_credibility_perjurer(&credibility, &params));
    kci_credibility_judge(&credibility, false);
    assert_true(kci_credibility_perjurer(&credibility, &params));
    kci_credibility honest = {0};
    for (int i = 0; i < 20; i++)
        kci_credibility_judge(&honest, i % 10 != 0); /* 18 right, 2 wrong */
    assert_float_equal(kci_credibility_value(&honest), 19.0 / 22, 1e-12);
    assert_false(kci_credibility_perjurer(&honest, &params));
}

static void test_rate_limit(void **state)
{
    (void)state;
    kci_credibility_params params;
    kci_credibility_params_default(&params);
    params.rate_per_s = 10;
    params.burst = 5;
    kci_credibility credibility = {0};
    int admitted = 0;
    for (int i = 0; i < 100; i++)
        admitted += kci_credibility_admit(&credibility, &params, 1000);
    assert_int_equal(admitted, 5);
    assert_int_equal(credibility.dropped, 95);
    /* 0.5 s later: 5 more tokens */
    admitted = 0;
    for (int i = 0; i < 100; i++)
        admitted += kci_credibility_admit(&credibility, &params, 1500);
    assert_int_equal(admitted, 5);
}

static void test_quorum(void **state)
{
    (void)state;
    assert_int_equal(kci_quorum_needed(1), 1);
    assert_int_equal(kci_quorum_needed(4), 3);
    assert_int_equal(kci_quorum_needed(7), 5);
    assert_int_equal(kci_quorum_needed(3), 1); /* f = 0 */
    kci_quorum quorum = {0};
    assert_true(kci_quorum_vote_set(&quorum, "a", KCI_VOTE_QUARANTINE, 100));
    assert_true(kci_quorum_vote_set(&quorum, "b", KCI_VOTE_QUARANTINE, 100));
    assert_true(kci_quorum_vote_set(&quorum, "a", KCI_VOTE_QUARANTINE, 200)); /* same arbiter */
    assert_int_equal(kci_quorum_count(&quorum, KCI_VOTE_QUARANTINE, 200, 0), 2);
    assert_true(kci_quorum_vote_set(&quorum, "c", KCI_VOTE_CLEAR, 300));
    assert_true(kci_quorum_vote_set(&quorum, "b", KCI_VOTE_CLEAR, 300)); /* changed its mind */
    assert_int_equal(kci_quorum_count(&quorum, KCI_VOTE_QUARANTINE, 300, 0), 1);
    assert_int_equal(kci_quorum_count(&quorum, KCI_VOTE_CLEAR, 300, 0), 2);
    assert_int_equal(kci_quorum_count(&quorum, KCI_VOTE_QUARANTINE, 10000, 1000), 0); /* stale */
    char id[16];
    for (int i = 0; i < KCI_QUORUM_ARBITERS_MAX + 10; i++) {
        snprintf(id, sizeof id, "x%d", i);
        kci_quorum_vote_set(&quorum, id, KCI_VOTE_QUARANTINE, 1);
    }
    assert_int_equal(quorum.vote_count, KCI_QUORUM_ARBITERS_MAX);
}

static void test_tree(void **state)
{
    (void)state;
    kci_tree_node nodes[] = {
        {"d", 0.1, 1}, {"a", 1.0, 1}, {"c", 0.5, 0.2}, {"b", 0.5, 0.9}, {"e", 0.0, 1},
    };
    int32_t parent[5];
    assert_int_equal(kci_tree_build(nodes, parent, 5, 2), KC_OK);
    assert_string_equal(nodes[0].name, "a");
    assert_string_equal(nodes[1].name, "b"); /* same merit as c, better qos */
    assert_string_equal(nodes[2].name, "c");
    assert_int_equal(parent[0], -1);
    assert_int_equal(parent[1], 0);
    assert_int_equal(parent[2], 0);
    assert_int_equal(parent[3], 1);
    assert_int_equal(parent[4], 1);
    json_t *tree = kci_tree_json(nodes, parent, 5);
    assert_string_equal(json_string_value(json_object_get(tree, "root")), "a");
    char *text = NULL, *dot = NULL;
    size_t text_size = 0, dot_size = 0;
    FILE *out = open_memstream(&text, &text_size);
    assert_int_equal(kci_tree_print_text(out, tree), KC_OK);
    fclose(out);
    assert_non_null(strstr(text, "a  merit 1.000"));
    assert_non_null(strstr(text, "\n    d  merit")); /* d under b, two levels down */
    out = open_memstream(&dot, &dot_size);
    assert_int_equal(kci_tree_print_dot(out, tree), KC_OK);
    fclose(out);
    assert_non_null(strstr(dot, "\"b\" -> \"d\";"));
    free(text);
    free(dot);
    json_decref(tree);
    assert_int_equal(kci_tree_build(nodes, parent, 5, 0), KC_ERR_INVALID_ARGUMENT);
    /* a name with a quote is escaped in DOT */
    kci_tree_node odd[] = {{"a\"b", 1, 1}, {"c", 0.5, 1}};
    int32_t odd_parent[2];
    assert_int_equal(kci_tree_build(odd, odd_parent, 2, 2), KC_OK);
    json_t *odd_tree = kci_tree_json(odd, odd_parent, 2);
    out = open_memstream(&dot, &dot_size);
    assert_int_equal(kci_tree_print_dot(out, odd_tree), KC_OK);
    fclose(out);
    assert_non_null(strstr(dot, "\"a\\\"b\" -> \"c\";"));
    free(dot);
    json_decref(odd_tree);
}

static void test_observe(void **state)
{
    (void)state;
    kci_observe *observe = kci_observe_create();
    assert_non_null(observe);
    char id[KC_UUID_TEXT_BYTES + 1];
    enum { IDS = 4 * KCI_OBSERVE_SLOTS };
    for (int i = 0; i < IDS; i++) {
        snprintf(id, sizeof id, "0190b6e2-5c1a-7d3e-9f00-%012d", i);
        kci_observation *entry = kci_observe_put(observe, id, i + 1);
        assert_string_equal(entry->id, id);
        assert_true(kci_observe_put(observe, id, i + 1) == entry); /* the same entry again */
        assert_true(entry->price < 0);
    }
    /* the newest is there; most of the oldest were evicted to make room */
    assert_non_null(kci_observe_get(observe, id));
    int kept = 0;
    for (int i = 0; i < KCI_OBSERVE_SLOTS; i++) {
        snprintf(id, sizeof id, "0190b6e2-5c1a-7d3e-9f00-%012d", i);
        kept += kci_observe_get(observe, id) != NULL;
    }
    assert_true(kept < KCI_OBSERVE_SLOTS / 4);
    kci_observe_destroy(observe);
}

static const char UUID[] = "0190b6e2-5c1a-7d3e-9f00-1234567890ab";

static void test_report_parse(void **state)
{
    (void)state;
    kci_report report;
    const char good[] =
        "{\"node\":\"n1\",\"reason\":\"slow\",\"request_id\":"
        "\"0190b6e2-5c1a-7d3e-9f00-1234567890ab\",\"text\":\"x\",\"reporter\":\"c\"}";
    assert_null(kci_report_parse(&report, "n1", NULL, good, strlen(good)));
    assert_string_equal(report.node, "n1");
    assert_string_equal(report.reporter, "c");
    assert_string_equal(report.request_id, UUID);
    assert_int_equal(report.reason, KC_PROBLEM_SLOW);
    /* the header names the reporter when present */
    assert_null(kci_report_parse(&report, "n1", "from-header", good, strlen(good)));
    assert_string_equal(report.reporter, "from-header");
    const char no_id[] =
        "{\"node\":\"n1\",\"reason\":\"other\",\"request_id\":null,\"reporter\":\"c\"}";
    assert_null(kci_report_parse(&report, "n1", NULL, no_id, strlen(no_id)));
    assert_string_equal(report.request_id, "");
    static const char *const bad[] = {
        "",
        "not json",
        "[1,2]",
        "\"n1\"",
        "{}",
        "{\"node\":\"n2\",\"reason\":\"slow\",\"reporter\":\"c\"}",   /* subject says n1 */
        "{\"node\":\"n1\",\"reason\":\"bored\",\"reporter\":\"c\"}",  /* reason */
        "{\"node\":\"n1\",\"reason\":\"slow\"}",                      /* no reporter */
        "{\"node\":\"n1\",\"reason\":\"slow\",\"reporter\":\"a b\"}", /* not a token */
        "{\"node\":\"n1\",\"reason\":\"slow\",\"reporter\":\"a.b\"}",
        "{\"node\":\"n1\",\"reason\":\"slow\",\"reporter\":\"c\",\"request_id\":\"nope\"}",
        "{\"node\":\"n1\",\"reason\":\"slow\",\"reporter\":\"c\",\"request_id\":7}",
        "{\"node\":\"n1\",\"node\":\"n1\",\"reason\":\"slow\",\"reporter\":\"c\"}", /* duplicate */
        "{\"node\":7,\"reason\":\"slow\",\"reporter\":\"c\"}",
        "{\"node\":\"n1\",\"reason\":\"slow\",\"reporter\":\"\xff\"}", /* bad UTF-8 */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_non_null(kci_report_parse(&report, "n1", NULL, bad[i], strlen(bad[i])));
    char *long_report = calloc(KCI_REPORT_BYTES_MAX + 2, 1);
    memset(long_report, ' ', KCI_REPORT_BYTES_MAX + 1);
    long_report[0] = '{', long_report[KCI_REPORT_BYTES_MAX] = '}';
    assert_non_null(kci_report_parse(&report, "n1", NULL, long_report, KCI_REPORT_BYTES_MAX + 1));
    free(long_report);
}

static void test_vote_parse(void **state)
{
    (void)state;
    kci_vote vote;
    const char good[] = "{\"arbiter\":\"a1\",\"node\":\"n1\",\"vote\":\"quarantine\",\"epoch\":3}";
    assert_null(kci_vote_parse(&vote, good, strlen(good)));
    assert_string_equal(vote.arbiter, "a1");
    assert_string_equal(vote.node, "n1");
    assert_int_equal(vote.kind, KCI_VOTE_QUARANTINE);
    assert_int_equal(vote.epoch, 3);
    static const char *const bad[] = {
        "",
        "{}",
        "{\"arbiter\":\"a1\",\"node\":\"n1\",\"vote\":\"maybe\",\"epoch\":3}",
        "{\"arbiter\":\"a1\",\"node\":\"n1\",\"vote\":\"clear\"}",
        "{\"arbiter\":\"a1\",\"node\":\"n1\",\"vote\":\"clear\",\"epoch\":-1}",
        "{\"arbiter\":\"a1\",\"node\":\"n1\",\"vote\":\"clear\",\"epoch\":1.5}",
        "{\"arbiter\":\"a1\",\"node\":\"n1\",\"vote\":\"clear\",\"epoch\":99999999999}",
        "{\"arbiter\":\"a 1\",\"node\":\"n1\",\"vote\":\"clear\",\"epoch\":1}",
        "{\"arbiter\":\"a1\",\"node\":\"\",\"vote\":\"clear\",\"epoch\":1}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_non_null(kci_vote_parse(&vote, bad[i], strlen(bad[i])));
}

/* Vote keys from the config, signatures over exact bytes, freshness. */
static void test_vote_sign(void **state)
{
    (void)state;
    assert_true(sodium_init() >= 0);
    uint8_t public_key[KCI_LEDGER_KEY_BYTES], secret_key[KCI_LEDGER_SECRET_BYTES];
    crypto_sign_keypair(public_key, secret_key);
    char hex[KCI_VOTE_KEY_TEXT_BYTES], text[KCI_VOTE_KEY_TEXT_BYTES + 16];
    kci_ledger_hex(hex, public_key, sizeof public_key);
    snprintf(text, sizeof text, "p1=%s", hex);
    kci_vote_key key;
    assert_true(kci_vote_key_parse(&key, text));
    assert_string_equal(key.arbiter, "p1");
    assert_memory_equal(key.key, public_key, sizeof public_key);
    const char *bad[] = {"p1", "=abcd", "p1=", "p1=xyz", "p1=00"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_false(kci_vote_key_parse(&key, bad[i]));
    const char body[] = "{\"arbiter\":\"p1\",\"vote\":\"quarantine\"}";
    char signature[KCI_VOTE_SIGNATURE_TEXT_BYTES];
    kci_vote_sign(signature, body, strlen(body), secret_key);
    assert_true(kci_vote_verify(public_key, signature, body, strlen(body)));
    assert_false(kci_vote_verify(public_key, signature, body, strlen(body) - 1)); /* other bytes */
    signature[0] = signature[0] == '0' ? '1' : '0';
    assert_false(kci_vote_verify(public_key, signature, body, strlen(body)));
    assert_false(kci_vote_verify(public_key, "zz", body, strlen(body)));
    assert_false(kci_vote_verify(public_key, NULL, body, strlen(body)));
    assert_true(kci_vote_fresh(100000, 100000));
    assert_false(kci_vote_fresh(100000 - KCI_VOTE_AGE_MS_MAX, 100000));
    assert_false(kci_vote_fresh(100000 + KCI_VOTE_AGE_MS_MAX, 100000));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_credibility), cmocka_unit_test(test_rate_limit),
        cmocka_unit_test(test_quorum),      cmocka_unit_test(test_tree),
        cmocka_unit_test(test_observe),     cmocka_unit_test(test_report_parse),
        cmocka_unit_test(test_vote_parse),  cmocka_unit_test(test_vote_sign),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
