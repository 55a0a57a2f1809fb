/* graph_load_test.c - the edge-file parsers: CSV fed whole and one byte at
 * a time must agree; quoting, CR LF, comments, duplicate summing; a table
 * of inputs that must fail, with the line named; JSON edges. */
/* clang-format off */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
/* clang-format on */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "econ/graph_load.h"

/* Parses text, whole or byte by byte; returns the graph (or the error). */
static kc_err parse_csv(const char *text, bool bytewise, kci_econ_graph *graph,
                        kci_econ_error *error)
{
    kci_econ_builder builder;
    kci_econ_builder_init(&builder);
    kci_econ_csv *csv = malloc(sizeof *csv);
    assert_non_null(csv);
    kci_econ_csv_init(csv, &builder);
    kc_err err = KC_OK;
    size_t length = strlen(text);
    if (bytewise) {
        for (size_t index = 0; index < length && err == KC_OK; index++)
            err = kci_econ_csv_feed(csv, text + index, 1, error);
    } else {
        err = kci_econ_csv_feed(csv, text, length, error);
    }
    if (err == KC_OK) err = kci_econ_csv_finish(csv, error);
    free(csv);
    if (err == KC_OK) err = kci_econ_graph_finish(&builder, graph, error);
    kci_econ_builder_free(&builder);
    return err;
}

static double amount_of(const kci_econ_graph *graph, const char *from, const char *to)
{
    int64_t a = kci_econ_graph_find(graph, from), b = kci_econ_graph_find(graph, to);
    if (a < 0 || b < 0) return -1;
    igraph_integer_t edge = -1;
    igraph_get_eid(&graph->graph, &edge, a, b, IGRAPH_DIRECTED, false);
    return edge < 0 ? -1 : VECTOR(graph->amounts)[edge];
}

static const char GOOD_CSV[] = "# payments of the day\r\n"
                               "time_ms,from,to,amount,transfer\r\n"
                               "1,alice,bob,10,t1\r\n"
                               "\r\n"
                               "2,\"carol, the \"\"big\"\" one\",bob, 2.5 ,t2\n"
                               "3,alice,bob,5,t3\n"
                               "4,bob,bob,7,t4\n"
                               "5,bob,\"multi\nline\",1e2,t5";

static void check_good(kci_econ_graph *graph)
{
    assert_int_equal(graph->node_count, 4);
    assert_int_equal(graph->edge_count, 3);
    assert_int_equal(graph->payments_read, 5);
    assert_true(amount_of(graph, "alice", "bob") == 15); /* 10 + 5 summed */
    assert_true(amount_of(graph, "carol, the \"big\" one", "bob") == 2.5);
    assert_true(amount_of(graph, "bob", "multi\nline") == 100);
    assert_true(amount_of(graph, "bob", "bob") < 0); /* self-payment dropped */
}

static void test_csv_whole_and_bytewise_agree(void **state)
{
    (void)state;
    for (int bytewise = 0; bytewise < 2; bytewise++) {
        kci_econ_graph graph;
        kci_econ_error error = {{0}};
        kc_err err = parse_csv(GOOD_CSV, bytewise, &graph, &error);
        if (err != KC_OK) fail_msg("%s", error.text);
        check_good(&graph);
        kci_econ_graph_free(&graph);
    }
}

typedef struct bad_case {
    const char *text;
    const char *message; /* a substring of the error */
} bad_case;

static const bad_case BAD_CSV[] = {
    {"", "no header"},
    {"from,to\na,b\n", "line 1: the header must name"},
    {"from,to,amount\na,b,-5\n", "line 2: negative amount -5"},
    {"from,to,amount\na,b,5\nc,d,x1\n", "line 3: amount 'x1' is not a decimal number"},
    {"from,to,amount\na,b,nan\n", "line 2: amount 'nan'"},
    {"from,to,amount\na,b,1e999\n", "line 2: amount '1e999'"},
    {"from,to,amount\na,b\n", "line 2: 2 fields where the header has 3 columns"},
    {"from,to,amount\na,b,1,2\n", "line 2: more fields than the header"},
    {"from,to,amount\n\"a,b,1\n", "line 2: the file ends inside a quoted field"},
    {"from,to,amount\n\"a\"x,b,1\n", "line 2: text after a closing quote"},
    {"from,to,amount\na\"b,c,1\n", "line 2: a quote inside an unquoted field"},
    {"from,to,amount\n,b,1\n", "line 2: empty account name"},
    {"from,to,amount\na,b,\n", "line 2: empty amount"},
    {"from,to,amount\na,b,1\rx\n", "line 2: a CR not followed by LF"},
    {"from,from,amount\n", "line 1: a column is named twice"},
    {"from,to,amount\n# ok\n\n\na,b,1\na,b,-1\n", "line 6: negative amount"},
};

static void test_csv_bad_inputs_name_the_line(void **state)
{
    (void)state;
    for (size_t index = 0; index < sizeof BAD_CSV / sizeof BAD_CSV[0]; index++) {
        for (int bytewise = 0; bytewise < 2; bytewise++) {
            kci_econ_graph graph;
            kci_econ_error error = {{0}};
            kc_err err = parse_csv(BAD_CSV[index].text, bytewise, &graph, &error);
            if (err == KC_OK) {
                kci_econ_graph_free(&graph);
                fail_msg("case %zu parsed", index);
            }
            if (strstr(error.text, BAD_CSV[index].message) == NULL)
                fail_msg("case %zu: '%s' lacks '%s'", index, error.text, BAD_CSV[index].message);
        }
    }
}

static void test_csv_long_name_refused(void **state)
{
    (void)state;
    char text[1024] = "from,to,amount\n";
    size_t used = strlen(text);
    memset(text + used, 'x', KCI_ECON_NAME_BYTES_MAX + 1);
    strcpy(text + used + KCI_ECON_NAME_BYTES_MAX + 1, ",b,1\n");
    kci_econ_graph graph;
    kci_econ_error error = {{0}};
    assert_int_equal(parse_csv(text, false, &graph, &error), KC_ERR_TOO_LARGE);
    assert_non_null(strstr(error.text, "line 2: field 1 is longer than 256 bytes"));
}

/* Payments are looked up in batches (graph.c): an error after a few
 * batches still names its own line, and every payment before it counts. */
static void test_error_after_batches_names_its_line(void **state)
{
    (void)state;
    enum { LINES = 3 * KCI_ECON_PENDING_MAX + 5 };
    static char text[LINES * 32 + 64];
    size_t used = (size_t)snprintf(text, sizeof text, "from,to,amount\n");
    for (int line = 0; line < LINES; line++)
        used += (size_t)snprintf(text + used, sizeof text - used, "a%d,b%d,1\n", line % 50, line);
    snprintf(text + used, sizeof text - used, "x,y,-2\n");
    kci_econ_graph graph;
    kci_econ_error error = {{0}};
    assert_int_equal(parse_csv(text, false, &graph, &error), KC_ERR_PARSE);
    char expected[64];
    snprintf(expected, sizeof expected, "line %d: negative amount -2", LINES + 2);
    if (strstr(error.text, expected) == NULL) fail_msg("'%s' lacks '%s'", error.text, expected);
    /* without the bad line: all payments, 50 payers and LINES payees */
    text[used] = '\0';
    assert_int_equal(parse_csv(text, true, &graph, &error), KC_OK);
    assert_int_equal(graph.payments_read, LINES);
    assert_int_equal(graph.node_count, 50 + LINES);
    assert_int_equal(graph.edge_count, LINES);
    kci_econ_graph_free(&graph);
}

static void test_json_edges(void **state)
{
    (void)state;
    const char *texts[] = {
        "{\"edges\":[{\"from\":\"a\",\"to\":\"b\",\"amount\":3},"
        "{\"from\":\"a\",\"to\":\"b\",\"amount\":4.5,\"time_ms\":1}],\"next\":null}",
        "[{\"from\":\"a\",\"to\":\"b\",\"amount\":7.5}]",
    };
    for (int index = 0; index < 2; index++) {
        kci_econ_builder builder;
        kci_econ_builder_init(&builder);
        kci_econ_error error = {{0}};
        assert_int_equal(kci_econ_json_load(texts[index], strlen(texts[index]), &builder, &error),
                         KC_OK);
        kci_econ_graph graph;
        assert_int_equal(kci_econ_graph_finish(&builder, &graph, &error), KC_OK);
        assert_true(amount_of(&graph, "a", "b") == 7.5);
        kci_econ_graph_free(&graph);
        kci_econ_builder_free(&builder);
    }
    const bad_case bad[] = {
        {"{\"edges\":[{\"from\":\"a\",\"to\":\"b\",\"amount\":-1}]}", "edge #1: negative amount"},
        {"{\"edges\":[{\"from\":\"a\",\"to\":\"b\"}]}", "edge #1: needs"},
        {"{\"edges\":\n[\n{\"from\":\"a\",,}]}", "line 3"},
        {"{\"edge\":[]}", "expected {\"edges\""},
    };
    for (size_t index = 0; index < sizeof bad / sizeof bad[0]; index++) {
        kci_econ_builder builder;
        kci_econ_builder_init(&builder);
        kci_econ_error error = {{0}};
        assert_int_not_equal(
            kci_econ_json_load(bad[index].text, strlen(bad[index].text), &builder, &error), KC_OK);
        if (strstr(error.text, bad[index].message) == NULL)
            fail_msg("json case %zu: '%s' lacks '%s'", index, error.text, bad[index].message);
        kci_econ_builder_free(&builder);
    }
}

static void test_many_names_grow_the_tables(void **state)
{
    (void)state;
    kci_econ_builder builder;
    kci_econ_builder_init(&builder);
    kci_econ_error error = {{0}};
    char from[32], to[32];
    for (int index = 0; index < 20000; index++) {
        snprintf(from, sizeof from, "n%d", index % 5000);
        snprintf(to, sizeof to, "n%d", (index * 7 + 1) % 5000);
        assert_int_equal(
            kci_econ_builder_add(&builder, from, strlen(from), to, strlen(to), 1, &error), KC_OK);
    }
    kci_econ_graph graph;
    assert_int_equal(kci_econ_graph_finish(&builder, &graph, &error), KC_OK);
    assert_int_equal(graph.node_count, 5000);
    double total = 0;
    for (int64_t edge = 0; edge < graph.edge_count; edge++)
        total += VECTOR(graph.amounts)[edge];
    assert_true(total == 20000); /* 6i = -1 (mod 5000) has no solution: no self-payment */
    assert_true(kci_econ_graph_find(&graph, "n4999") >= 0);
    assert_true(kci_econ_graph_find(&graph, "n5000") < 0);
    kci_econ_graph_free(&graph);
    kci_econ_builder_free(&builder);
}

/* Payments among few accounts, repeated many times: they are summed in
 * batches while reading (the arrays fill up many times) and once more at
 * the end. Every pair's sum must be exact, each pair one edge, and the
 * edges grouped by payer in vertex order with each payer's payees in the
 * order they first appeared. */
static void test_repeated_payments_summed_in_batches(void **state)
{
    (void)state;
    enum { ACCOUNTS = 60, PAYMENTS = 50000 };
    static double expected[ACCOUNTS][ACCOUNTS];
    static int first_seen[ACCOUNTS][ACCOUNTS];
    memset(expected, 0, sizeof expected);
    memset(first_seen, 0, sizeof first_seen);
    kci_econ_builder builder;
    kci_econ_builder_init(&builder);
    kci_econ_error error = {{0}};
    char from[32], to[32];
    unsigned seed = 12345;
    int distinct = 0;
    for (int index = 0; index < PAYMENTS; index++) {
        seed = seed * 1103515245u + 12345u;
        int a = (int)((seed >> 16) % ACCOUNTS);
        seed = seed * 1103515245u + 12345u;
        int b = (int)((seed >> 16) % ACCOUNTS);
        double amount = (double)(index % 7) + 0.5;
        snprintf(from, sizeof from, "acct%d", a);
        snprintf(to, sizeof to, "acct%d", b);
        assert_int_equal(
            kci_econ_builder_add(&builder, from, strlen(from), to, strlen(to), amount, &error),
            KC_OK);
        if (a == b) continue;
        if (first_seen[a][b] == 0) first_seen[a][b] = ++distinct;
        expected[a][b] += amount;
    }
    kci_econ_graph graph;
    assert_int_equal(kci_econ_graph_finish(&builder, &graph, &error), KC_OK);
    assert_int_equal(graph.payments_read, PAYMENTS);
    assert_int_equal(graph.edge_count, distinct);
    igraph_integer_t last_from = -1;
    int last_seen = 0;
    for (int64_t edge = 0; edge < graph.edge_count; edge++) {
        igraph_integer_t u = IGRAPH_FROM(&graph.graph, edge), v = IGRAPH_TO(&graph.graph, edge);
        int a = atoi(graph.names[u] + 4), b = atoi(graph.names[v] + 4);
        assert_true(VECTOR(graph.amounts)[edge] == expected[a][b]);
        assert_true(u >= last_from);
        if (u != last_from) last_seen = 0;
        assert_true(first_seen[a][b] > last_seen);
        last_from = u;
        last_seen = first_seen[a][b];
    }
    kci_econ_graph_free(&graph);
    kci_econ_builder_free(&builder);
}

/* Only payments to oneself: accounts but no edge (nothing to copy). */
static void test_only_self_payments(void **state)
{
    (void)state;
    kci_econ_graph graph;
    kci_econ_error error = {{0}};
    assert_int_equal(parse_csv("from,to,amount\na,a,5\nb,b,1\n", false, &graph, &error), KC_OK);
    assert_int_equal(graph.node_count, 2);
    assert_int_equal(graph.edge_count, 0);
    assert_int_equal(graph.payments_read, 2);
    kci_econ_graph_free(&graph);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_csv_whole_and_bytewise_agree),
        cmocka_unit_test(test_csv_bad_inputs_name_the_line),
        cmocka_unit_test(test_csv_long_name_refused),
        cmocka_unit_test(test_error_after_batches_names_its_line),
        cmocka_unit_test(test_json_edges),
        cmocka_unit_test(test_many_names_grow_the_tables),
        cmocka_unit_test(test_repeated_payments_summed_in_batches),
        cmocka_unit_test(test_only_self_payments),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
