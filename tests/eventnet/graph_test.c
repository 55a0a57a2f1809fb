/* graph_test.c - the EventNet store and its questions on constructed
 * graphs (src/eventnet/): events and both edge tables read back after a
 * reopen; a second add of an id keeps the first record; walks to a depth
 * over a diamond list each event once and a never-recorded cause as
 * missing; the check passes on a graph in HLC order, and reports an effect
 * stamped no later than its cause (an order violation) and a cause never
 * recorded (missing) without inventing it; retention drops the oldest
 * events and the check then counts a cause behind the horizon as dropped,
 * not missing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "eventnet/graph.h"
#include "eventnet/store.h"

static const int64_t base_ms = 1700000000000;

typedef struct fixture {
    char directory[64];
    kci_eventnet_store *store;
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    if (f == NULL) return -1;
    snprintf(f->directory, sizeof f->directory, "/tmp/eventnet_test.XXXXXX");
    if (mkdtemp(f->directory) == NULL) {
        free(f);
        return -1;
    }
    if (kci_eventnet_store_open(&f->store, f->directory, false, 1000) != KC_OK) return -1;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    kci_eventnet_store_close(f->store);
    char command[128];
    snprintf(command, sizeof command, "rm -rf %s", f->directory);
    if (system(command) != 0) return -1;
    free(f);
    return 0;
}

/* An id whose v7 time is wall_ms (the horizon test needs it). */
static kci_uuid id_at(int64_t wall_ms)
{
    kci_uuid id;
    kci_uuid_v7_at(&id, wall_ms);
    return id;
}

static void add(kci_eventnet_store *store, const kci_uuid *id, int64_t wall_ms, uint32_t counter,
                const kci_uuid *causes, size_t cause_count)
{
    kci_event event = {.id = *id, .ts = {wall_ms, counter}, .cause_count = cause_count};
    snprintf(event.kind, sizeof event.kind, "request");
    snprintf(event.node, sizeof event.node, "n1");
    snprintf(event.subject, sizeof event.subject, "kc.req.test");
    if (cause_count > 0) memcpy(event.causes, causes, cause_count * sizeof causes[0]);
    bool added = false;
    assert_int_equal(kci_eventnet_store_add(store, &event, &added), KC_OK);
    assert_true(added);
}

static void test_store_round_trip(void **state)
{
    fixture *f = *state;
    kci_uuid a = id_at(base_ms), b = id_at(base_ms + 1), c = id_at(base_ms + 2);
    add(f->store, &a, base_ms, 0, NULL, 0);
    add(f->store, &b, base_ms + 1, 0, &a, 1);
    kci_uuid both[] = {a, b};
    add(f->store, &c, base_ms + 1, 1, both, 2);
    /* a second record of an id: the first stands */
    kci_event again = {.id = b, .ts = {base_ms + 50, 0}};
    bool added = true;
    assert_int_equal(kci_eventnet_store_add(f->store, &again, &added), KC_OK);
    assert_false(added);
    kci_eventnet_store_close(f->store);
    assert_int_equal(kci_eventnet_store_open(&f->store, f->directory, true, 1000), KC_OK);
    kci_event event;
    assert_int_equal(kci_eventnet_store_get(f->store, &c, &event), KC_OK);
    assert_int_equal(event.ts.wall_ms, base_ms + 1);
    assert_int_equal(event.ts.counter, 1);
    assert_int_equal(event.cause_count, 2);
    assert_string_equal(event.subject, "kc.req.test");
    assert_int_equal(kci_eventnet_store_get(f->store, &b, &event), KC_OK);
    assert_int_equal(event.ts.wall_ms, base_ms + 1);
    kci_uuid ids[8];
    size_t count = 0;
    assert_int_equal(kci_eventnet_store_neighbours(f->store, &a, true, ids, 8, &count), KC_OK);
    assert_int_equal(count, 2); /* a -> b, a -> c */
    assert_int_equal(kci_eventnet_store_neighbours(f->store, &c, false, ids, 8, &count), KC_OK);
    assert_int_equal(count, 2);
    kci_uuid unknown = id_at(base_ms + 9);
    assert_int_equal(kci_eventnet_store_get(f->store, &unknown, &event), KC_ERR_NOT_FOUND);
}

static size_t walk_count(kci_eventnet_store *store, const kci_uuid *id, bool effects, int depth,
                         size_t *missing)
{
    json_t *walk = NULL;
    assert_int_equal(kci_eventnet_walk(store, id, effects, depth, &walk), KC_OK);
    json_t *events = json_object_get(walk, "events");
    size_t count = json_array_size(events), index;
    json_t *event;
    *missing = 0;
    json_array_foreach(events, index,
                       event) if (json_is_true(json_object_get(event, "missing")))(*missing)++;
    json_decref(walk);
    return count;
}

/* a -> b, a -> c, b -> d, c -> d (a diamond), d names a cause never seen. */
static void test_walks(void **state)
{
    fixture *f = *state;
    kci_uuid a = id_at(base_ms), b = id_at(base_ms + 1), c = id_at(base_ms + 2),
             d = id_at(base_ms + 3), ghost = id_at(base_ms + 2);
    add(f->store, &a, base_ms, 0, NULL, 0);
    add(f->store, &b, base_ms + 1, 0, &a, 1);
    add(f->store, &c, base_ms + 2, 0, &a, 1);
    kci_uuid d_causes[] = {b, c, ghost};
    add(f->store, &d, base_ms + 3, 0, d_causes, 3);
    size_t missing = 0;
    assert_int_equal(walk_count(f->store, &d, false, 10, &missing), 5); /* d b c ghost a */
    assert_int_equal(missing, 1);
    assert_int_equal(walk_count(f->store, &d, false, 1, &missing), 4);
    assert_int_equal(walk_count(f->store, &d, false, 0, &missing), 1);
    assert_int_equal(walk_count(f->store, &a, true, 10, &missing), 4); /* d once */
    assert_int_equal(missing, 0);
    assert_int_equal(walk_count(f->store, &a, true, 1, &missing), 3);
    json_t *walk = NULL;
    assert_int_equal(kci_eventnet_walk(f->store, &a, true, -1, &walk), KC_ERR_INVALID_ARGUMENT);
}

static void test_check(void **state)
{
    fixture *f = *state;
    kci_uuid a = id_at(base_ms), b = id_at(base_ms + 1), c = id_at(base_ms + 2),
             d = id_at(base_ms + 3), never = id_at(base_ms + 5);
    add(f->store, &a, base_ms, 0, NULL, 0);
    add(f->store, &b, base_ms, 1, &a, 1); /* same wall ms, later counter: in order */
    kci_eventnet_check_result result;
    assert_int_equal(kci_eventnet_check(f->store, &result), KC_OK);
    assert_int_equal(result.event_count, 2);
    assert_int_equal(result.edge_count, 1);
    assert_int_equal(result.order_violation_count, 0);
    assert_int_equal(result.missing_cause_count, 0);
    json_decref(result.problems);
    add(f->store, &c, base_ms, 1, &b, 1); /* the same Kc-Ts as its cause: a violation */
    add(f->store, &d, base_ms + 3, 0, &never, 1);
    assert_int_equal(kci_eventnet_check(f->store, &result), KC_OK);
    assert_int_equal(result.order_violation_count, 1);
    assert_int_equal(result.missing_cause_count, 1);
    assert_int_equal(json_array_size(result.problems), 2);
    char never_text[KC_UUID_TEXT_BYTES + 1];
    kci_uuid_format(&never, never_text);
    bool saw_missing = false;
    size_t index;
    json_t *problem;
    json_array_foreach(result.problems, index, problem)
    {
        const char *kind = json_string_value(json_object_get(problem, "problem"));
        if (strcmp(kind, "missing") == 0) {
            assert_string_equal(json_string_value(json_object_get(problem, "cause")), never_text);
            saw_missing = true;
        } else {
            assert_string_equal(kind, "order");
        }
    }
    assert_true(saw_missing);
    json_decref(result.problems);
    /* never invented: the missing cause is still not an event */
    kci_event event;
    assert_int_equal(kci_eventnet_store_get(f->store, &never, &event), KC_ERR_NOT_FOUND);
}

static void test_retention(void **state)
{
    fixture *f = *state;
    kci_eventnet_store_close(f->store);
    assert_int_equal(kci_eventnet_store_open(&f->store, f->directory, false, 3), KC_OK);
    kci_uuid ids[6];
    for (int index = 0; index < 6; index++) {
        ids[index] = id_at(base_ms + index * 10);
        add(f->store, &ids[index], base_ms + index * 10, 0, index > 0 ? &ids[index - 1] : NULL,
            index > 0 ? 1 : 0);
    }
    kci_hlc_timestamp horizon;
    uint64_t count = 0;
    assert_int_equal(kci_eventnet_store_stats(f->store, &horizon, &count), KC_OK);
    assert_int_equal(count, 3);
    assert_int_equal(horizon.wall_ms, base_ms + 20);
    kci_event event;
    assert_int_equal(kci_eventnet_store_get(f->store, &ids[2], &event), KC_ERR_NOT_FOUND);
    assert_int_equal(kci_eventnet_store_get(f->store, &ids[3], &event), KC_OK);
    kci_eventnet_check_result result;
    assert_int_equal(kci_eventnet_check(f->store, &result), KC_OK);
    assert_int_equal(result.event_count, 3);
    assert_int_equal(result.dropped_cause_count, 1); /* ids[3]'s cause ids[2] */
    assert_int_equal(result.missing_cause_count, 0);
    json_decref(result.problems);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_store_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_walks, setup, teardown),
        cmocka_unit_test_setup_teardown(test_check, setup, teardown),
        cmocka_unit_test_setup_teardown(test_retention, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
