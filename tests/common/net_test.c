/* net_test.c - kci_host_is_loopback (src/common/net.h), the one check
 * behind the monitoring's and the ingress's "reachable beyond this host"
 * warnings. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "common/net.h"

static void test_loopback(void **state)
{
    (void)state;
    const char *const loopback[] = {"127.0.0.1", "127.1.2.3", "::1", "localhost"};
    for (size_t i = 0; i < sizeof loopback / sizeof loopback[0]; i++)
        assert_true(kci_host_is_loopback(loopback[i]));
    const char *const reachable[] = {"0.0.0.0",    "::",         "",     "10.0.0.1",
                                     "1270.0.0.1", "localhost2", "::11", "128.0.0.1"};
    for (size_t i = 0; i < sizeof reachable / sizeof reachable[0]; i++)
        assert_false(kci_host_is_loopback(reachable[i]));
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_loopback)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
