/* suggestion_state_test.c - the suggestion state machine
 * (src/keeper/suggestion_state.h): every (status, action) pair against the
 * table of allowed transitions, the book applying a history of changes
 * (and refusing unknown ids, refused transitions and a full history), and
 * the change lines of the file (written, read back, malformed ones). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "keeper/suggestion_state.h"

#define ID "01a2531f-0ec3-7345-bcdb-c18a5640f249"

static void test_transitions(void **state)
{
    (void)state;
    enum { S = 4, A = 4 };
    /* expected next status, or -1: refused */
    static const int table[S][A] = {
        /* columns: accept, reject, done, assign */
        [KCI_SUGGESTION_OPEN] = {KCI_SUGGESTION_ACCEPTED, KCI_SUGGESTION_REJECTED, -1,
                                 KCI_SUGGESTION_OPEN},
        [KCI_SUGGESTION_ACCEPTED] = {-1, KCI_SUGGESTION_REJECTED, KCI_SUGGESTION_DONE,
                                     KCI_SUGGESTION_ACCEPTED},
        [KCI_SUGGESTION_REJECTED] = {-1, -1, -1, -1},
        [KCI_SUGGESTION_DONE] = {-1, -1, -1, -1},
    };
    for (int status = 0; status < S; status++)
        for (int action = 0; action < A; action++) {
            kci_suggestion_status next = KCI_SUGGESTION_OPEN;
            const char *why = NULL;
            bool allowed = kci_suggestion_transition((kci_suggestion_status)status,
                                                     (kci_suggestion_action)action, &next, &why);
            if (table[status][action] < 0) {
                assert_false(allowed);
                assert_non_null(why);
            } else {
                assert_true(allowed);
                assert_null(why);
                assert_int_equal(next, table[status][action]);
            }
        }
}

static void test_names(void **state)
{
    (void)state;
    kci_suggestion_status status;
    kci_suggestion_action action;
    assert_true(kci_suggestion_status_parse("accepted", &status));
    assert_int_equal(status, KCI_SUGGESTION_ACCEPTED);
    assert_false(kci_suggestion_status_parse("closed", &status));
    assert_false(kci_suggestion_status_parse(NULL, &status));
    assert_true(kci_suggestion_action_parse("done", &action));
    assert_int_equal(action, KCI_SUGGESTION_FINISH);
    assert_false(kci_suggestion_action_parse("reopen", &action));
    assert_string_equal(kci_suggestion_action_name(KCI_SUGGESTION_ASSIGN), "assign");
}

static kc_err change(json_t *book, kci_suggestion_action action, const char *assignee)
{
    kci_suggestion_change c = {
        .id = ID, .action = action, .by = "alice", .ts = "5.0", .assignee = assignee};
    return kci_suggestion_book_apply(book, &c);
}

static void test_book(void **state)
{
    (void)state;
    json_t *book = kci_suggestion_book_new();
    assert_int_equal(change(book, KCI_SUGGESTION_ACCEPT, NULL), KC_ERR_NOT_FOUND);
    assert_int_equal(kci_suggestion_book_add(book, ID), KC_OK);
    json_t *entry = json_object_get(book, ID);
    assert_string_equal(json_string_value(json_object_get(entry, "status")), "open");
    assert_true(json_is_null(json_object_get(entry, "assignee")));
    assert_int_equal(change(book, KCI_SUGGESTION_FINISH, NULL), KC_ERR_EXISTS); /* not accepted */
    assert_int_equal(change(book, KCI_SUGGESTION_ASSIGN, "bob"), KC_OK);
    assert_int_equal(change(book, KCI_SUGGESTION_ACCEPT, NULL), KC_OK);
    assert_int_equal(change(book, KCI_SUGGESTION_ACCEPT, NULL), KC_ERR_EXISTS); /* already */
    assert_int_equal(change(book, KCI_SUGGESTION_FINISH, NULL), KC_OK);
    assert_int_equal(change(book, KCI_SUGGESTION_REJECT, NULL), KC_ERR_EXISTS); /* final */
    entry = json_object_get(book, ID);
    assert_string_equal(json_string_value(json_object_get(entry, "status")), "done");
    assert_string_equal(json_string_value(json_object_get(entry, "assignee")), "bob");
    json_t *history = json_object_get(entry, "history");
    assert_int_equal(json_array_size(history), 3); /* refused changes leave no trace */
    assert_string_equal(json_string_value(json_object_get(json_array_get(history, 0), "action")),
                        "assign");
    assert_string_equal(json_string_value(json_object_get(json_array_get(history, 2), "by")),
                        "alice");
    json_decref(book);
}

static void test_history_bound(void **state)
{
    (void)state;
    json_t *book = kci_suggestion_book_new();
    assert_int_equal(kci_suggestion_book_add(book, ID), KC_OK);
    for (int i = 0; i < KCI_SUGGESTION_HISTORY_MAX; i++)
        assert_int_equal(change(book, KCI_SUGGESTION_ASSIGN, "bob"), KC_OK);
    assert_int_equal(change(book, KCI_SUGGESTION_ASSIGN, "bob"), KC_ERR_LIMIT);
    json_decref(book);
}

static void test_lines(void **state)
{
    (void)state;
    kci_suggestion_change written = {.id = ID,
                                     .action = KCI_SUGGESTION_ASSIGN,
                                     .by = "alice",
                                     .ts = "1796690874444.0",
                                     .assignee = "bob",
                                     .note = "has \"quotes\"\nand a newline"};
    char *line = kci_suggestion_change_format(&written);
    assert_non_null(line);
    assert_null(strchr(line, '\n'));
    assert_int_equal(strncmp(line, "{\"change\":\"" ID "\"", 11 + strlen(ID) + 1), 0);
    json_t *root = NULL;
    kci_suggestion_change read;
    assert_true(kci_suggestion_change_parse(line, strlen(line), &root, &read));
    assert_string_equal(read.id, ID);
    assert_int_equal(read.action, KCI_SUGGESTION_ASSIGN);
    assert_string_equal(read.by, "alice");
    assert_string_equal(read.assignee, "bob");
    assert_string_equal(read.note, written.note);
    json_decref(root);
    free(line);
    const char *bad[] = {
        "{\"change\":\"not-a-uuid\",\"action\":\"accept\",\"by\":\"a\",\"ts\":\"1.0\"}",
        "{\"change\":\"" ID "\",\"action\":\"reopen\",\"by\":\"a\",\"ts\":\"1.0\"}",
        "{\"change\":\"" ID "\",\"action\":\"accept\",\"by\":\"a.b\",\"ts\":\"1.0\"}",
        "{\"change\":\"" ID "\",\"action\":\"accept\",\"ts\":\"1.0\"}",
        "{\"change\":\"" ID "\",\"action\":\"assign\",\"by\":\"a\",\"ts\":\"1.0\"}",
        "{\"change\":\"" ID
        "\",\"action\":\"accept\",\"by\":\"a\",\"ts\":\"1.0\",\"assignee\":\"b\"}",
        "{\"change\":\"" ID "\",\"action\":\"accept\",\"by\":\"a\",\"ts\":\"1.0\",\"note\":5}",
        "{\"change\":\"" ID "\",\"action\":\"accept\",\"by\":\"a\",\"ts\":\"1.0\",\"by\":\"b\"}",
        "{\"change\":\"" ID "\",\"action\":\"acc",
        "{\"id\":\"" ID "\",\"ts\":\"1.0\",\"node\":\"n\",\"text\":\"a suggestion\"}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_false(kci_suggestion_change_parse(bad[i], strlen(bad[i]), &root, &read));
        json_decref(root);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_transitions), cmocka_unit_test(test_names),
        cmocka_unit_test(test_book),        cmocka_unit_test(test_history_bound),
        cmocka_unit_test(test_lines),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
