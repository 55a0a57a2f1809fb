/* gate_test.c - the ingress's token line (src/ingress/gate.h): byte at a
 * time and whole, the lines that must be refused. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "ingress/gate.h"

static const char TOKEN[] = "s3cr3t";

static kci_gate_state feed_all(const char *text, size_t *consumed)
{
    kci_gate gate;
    kci_gate_init(&gate);
    return kci_gate_feed(&gate, TOKEN, (const uint8_t *)text, strlen(text), consumed);
}

static void test_open(void **state)
{
    (void)state;
    size_t consumed = 0;
    const char text[] = "AUTH#s3cr3t\r\nREQUEST#c#1#x\n";
    assert_int_equal(feed_all(text, &consumed), KCI_GATE_OPEN);
    assert_int_equal(consumed, strlen("AUTH#s3cr3t\r\n")); /* the rest is the parser's */
    assert_int_equal(feed_all("AUTH#s3cr3t\n", &consumed), KCI_GATE_OPEN);
}

static void test_byte_at_a_time(void **state)
{
    (void)state;
    const char text[] = "AUTH#s3cr3t\n";
    kci_gate gate;
    kci_gate_init(&gate);
    for (size_t i = 0; i < strlen(text); i++) {
        size_t consumed = 0;
        kci_gate_state expected = i + 1 == strlen(text) ? KCI_GATE_OPEN : KCI_GATE_READING;
        assert_int_equal(kci_gate_feed(&gate, TOKEN, (const uint8_t *)text + i, 1, &consumed),
                         expected);
        assert_int_equal(consumed, 1);
    }
}

static void test_refused(void **state)
{
    (void)state;
    const char *const refused[] = {
        "\n",
        "AUTH#\n",
        "AUTH#s3cr3\n",
        "AUTH#s3cr3tt\n",
        "auth#s3cr3t\n",
        "AUTH s3cr3t\n",
        "REQUEST#c#1#x\n",
        "AUTH#s3cr3t \n",
        "AUTH#s3cr3t\r\r\n",
        "AUTH#S3CR3T\n",
    };
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
        size_t consumed = 0;
        assert_int_equal(feed_all(refused[i], &consumed), KCI_GATE_REFUSED);
    }
    char long_line[KCI_INGRESS_GATE_LINE_BYTES_MAX + 16];
    memset(long_line, 'A', sizeof long_line - 1);
    long_line[sizeof long_line - 1] = '\0';
    size_t consumed = 0;
    assert_int_equal(feed_all(long_line, &consumed), KCI_GATE_REFUSED);
    assert_int_equal(feed_all("AUTH#s3cr", &consumed), KCI_GATE_READING);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_open),
        cmocka_unit_test(test_byte_at_a_time),
        cmocka_unit_test(test_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
