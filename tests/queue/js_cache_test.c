/*
 * js_cache_test.c - the request records a persister keeps from its stream's
 * open scan for their first read (src/queue/store_js_cache.c): kept in
 * position order, dropped by id when their reply comes, taken once, a
 * second copy of an id ignored, thousands of them (the id table grows).
 */
/* clang-format off */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
/* clang-format on */

#include <stdio.h>
#include <string.h>

#include "queue/store_js_cache.h"

enum { MANY = 5000, RECORD_BYTES = 64 };

static kci_uuid id_of(unsigned number)
{
    kci_uuid id;
    memset(&id, 0, sizeof id);
    id.bytes[0] = 0x01; /* a UUIDv7's time: the same for all */
    memcpy(id.bytes + 8, &number, sizeof number);
    return id;
}

static void record_of(unsigned number, uint8_t bytes[RECORD_BYTES])
{
    memset(bytes, 0, RECORD_BYTES);
    snprintf((char *)bytes, RECORD_BYTES, "record %u", number);
}

static void test_kept_dropped_taken_once(void **state)
{
    (void)state;
    kci_queue_js_cache *cache = kci_queue_js_cache_new();
    assert_non_null(cache);
    uint8_t bytes[RECORD_BYTES], read[RECORD_BYTES];
    size_t length = 0;
    for (unsigned number = 0; number < 3; number++) {
        record_of(number, bytes);
        kci_uuid id = id_of(number);
        kci_queue_js_cache_put(cache, &id, 16 + number * 8, bytes, sizeof bytes);
    }
    kci_uuid first = id_of(0), second = id_of(1);
    kci_queue_js_cache_drop(cache, &second); /* its reply was read */
    record_of(9, bytes);
    kci_queue_js_cache_put(cache, &first, 64, bytes, sizeof bytes); /* a copy: ignored */
    assert_false(kci_queue_js_cache_take(cache, 24, read, sizeof read, &length));
    assert_false(kci_queue_js_cache_take(cache, 64, read, sizeof read, &length));
    assert_false(kci_queue_js_cache_take(cache, 17, read, sizeof read, &length));
    assert_false(kci_queue_js_cache_take(cache, 16, read, 8, &length)); /* no room */
    assert_true(kci_queue_js_cache_take(cache, 16, read, sizeof read, &length));
    assert_int_equal(length, RECORD_BYTES);
    assert_string_equal((const char *)read, "record 0");
    assert_false(kci_queue_js_cache_take(cache, 16, read, sizeof read, &length)); /* once */
    assert_true(kci_queue_js_cache_take(cache, 32, read, sizeof read, &length));
    assert_string_equal((const char *)read, "record 2");
    kci_queue_js_cache_free(cache);
}

static void test_many(void **state)
{
    (void)state;
    kci_queue_js_cache *cache = kci_queue_js_cache_new();
    assert_non_null(cache);
    uint8_t bytes[RECORD_BYTES], read[RECORD_BYTES];
    for (unsigned number = 0; number < MANY; number++) {
        record_of(number, bytes);
        kci_uuid id = id_of(number);
        kci_queue_js_cache_put(cache, &id, (uint64_t)(number + 1) * 8, bytes, sizeof bytes);
    }
    for (unsigned number = 0; number < MANY; number += 2) {
        kci_uuid id = id_of(number);
        kci_queue_js_cache_drop(cache, &id);
    }
    for (unsigned number = 0; number < MANY; number++) {
        size_t length = 0;
        bool taken =
            kci_queue_js_cache_take(cache, (uint64_t)(number + 1) * 8, read, sizeof read, &length);
        assert_int_equal(taken, number % 2 == 1);
        record_of(number, bytes);
        if (taken) assert_memory_equal(read, bytes, RECORD_BYTES);
    }
    kci_queue_js_cache_free(cache);
    kci_queue_js_cache_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kept_dropped_taken_once),
        cmocka_unit_test(test_many),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
