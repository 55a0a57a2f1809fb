/* index_test.c - the id index against a plain array model: 200,000 random
 * inserts, finds and removes (backward-shift deletion keeps every remaining
 * id findable through growth), and kci_index_remove_below by segment. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "queue/index.h"

enum { ID_COUNT = 20000, OPERATION_COUNT = 200000 };

static void test_model(void **state)
{
    (void)state;
    kci_index index;
    assert_true(kci_index_init(&index));
    static kci_uuid ids[ID_COUNT];
    static bool present[ID_COUNT];
    for (int slot = 0; slot < ID_COUNT; slot++)
        kci_uuid_v7(&ids[slot]);
    srand(12345);
    uint64_t expected = 0;
    for (int step = 0; step < OPERATION_COUNT; step++) {
        int slot = rand() % ID_COUNT;
        kci_index_entry *entry = kci_index_find(&index, &ids[slot]);
        assert_true((entry != NULL) == present[slot]);
        if (rand() % 3 != 0) {
            bool created = false;
            entry = kci_index_insert(&index, &ids[slot], &created);
            assert_non_null(entry);
            assert_true(created == !present[slot]);
            if (created) {
                entry->state = KCI_ENTRY_PENDING;
                entry->request = kci_position_make((uint32_t)(slot % 10) + 1, (uint32_t)slot);
                expected++;
            }
            present[slot] = true;
        } else if (entry != NULL) {
            kci_index_remove(&index, entry);
            present[slot] = false;
            expected--;
        }
        assert_int_equal(index.count, expected);
    }
    for (int slot = 0; slot < ID_COUNT; slot++) {
        kci_index_entry *entry = kci_index_find(&index, &ids[slot]);
        assert_true((entry != NULL) == present[slot]);
        if (entry != NULL) assert_int_equal(kci_position_offset(entry->request), slot);
    }
    /* Segments 1..5 go; 6..10 stay. */
    kci_index_remove_below(&index, 6, NULL, NULL);
    for (int slot = 0; slot < ID_COUNT; slot++) {
        kci_index_entry *entry = kci_index_find(&index, &ids[slot]);
        bool kept = present[slot] && (slot % 10) + 1 >= 6;
        assert_true((entry != NULL) == kept);
    }
    kci_index_destroy(&index);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_model)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
