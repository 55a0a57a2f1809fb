/* waiting_test.c - the persister's waiting requests (src/queue/waiting.c)
 * on a persister that is never started: its state alone, driven with the
 * clock passed in.
 *
 *   types       the type table: the same name is the same row, prefixes are
 *               other rows, a full table and an over-long name give NONE
 *   parks       "no responders" gives the attempt back once and parks the
 *               request and its type; a new submit of a waiting type is not
 *               dispatched; a type beyond the table only gets its attempt back
 *   probes      one probe per type and interval; a 503 for it keeps the type
 *               waiting, no attempt spent; a probe without a 503 releases
 *               every waiting request of the type at once (the probe's is
 *               counted and waits for its timeout)
 *   candidate   a probe candidate that was answered meanwhile is replaced by
 *               another waiting request; none left: the type is served
 *   requeued    a dead request requeued while its type waits, waits too */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* clang-format off */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
/* clang-format on */

#include "common/clock.h"
#include "queue/persister_internal.h"

enum { INTERVAL_MS = 500, TIMEOUT_MS = 1000 };

static kci_persister *persister_new(void)
{
    kci_persister *persister = calloc(1, sizeof *persister);
    assert_non_null(persister);
    pthread_mutex_init(&persister->lock, NULL);
    persister->config.redelivery_timeout_ms = TIMEOUT_MS;
    persister->config.redelivery_backoff_max_ms = 4 * TIMEOUT_MS;
    persister->config.attempts_max = 3;
    persister->config.probe_interval_ms = INTERVAL_MS;
    persister->pending_due_min_ms = INT64_MAX;
    assert_true(kci_index_init(&persister->index));
    assert_true(kci_persister_types_init(persister));
    return persister;
}

static void persister_free(kci_persister *persister)
{
    for (uint64_t slot = 0; slot < persister->index.capacity; slot++)
        free(persister->index.entries[slot].notify);
    kci_index_destroy(&persister->index);
    kci_persister_types_free(persister);
    free(persister->pending);
    free(persister->segments);
    pthread_mutex_destroy(&persister->lock);
    free(persister);
}

static uint16_t slot_of(kci_persister *persister, const char *type)
{
    return kci_persister_type_slot_locked(persister, type, strlen(type));
}

/* A submit of type made durable; returns whether it is dispatched. */
static bool submit(kci_persister *persister, const char *type, kci_uuid *id, int64_t now_ms)
{
    kci_uuid_v7(id);
    bool created = false;
    kci_index_entry *entry = kci_index_insert(&persister->index, id, &created);
    assert_true(entry != NULL && created);
    kci_persister_entry_storing(entry);
    return kci_persister_entry_stored(persister, entry, kci_position_make(1, 0), NULL,
                                      now_ms + TIMEOUT_MS, slot_of(persister, type));
}

static kci_index_entry *entry_of(kci_persister *persister, const kci_uuid *id)
{
    kci_index_entry *entry = kci_index_find(&persister->index, id);
    assert_non_null(entry);
    return entry;
}

static int64_t due_of(kci_persister *persister, const kci_uuid *id)
{
    kci_index_entry *entry = entry_of(persister, id);
    assert_int_not_equal(entry->pending_slot, KCI_INDEX_NO_SLOT);
    return persister->pending[entry->pending_slot].due_ms;
}

static void test_types(void **state)
{
    kci_persister *persister = persister_new();
    uint16_t a = slot_of(persister, "a");
    assert_int_equal(slot_of(persister, "a"), a);
    assert_int_not_equal(slot_of(persister, "ab"), a);
    assert_int_equal(kci_persister_type_slot_locked(persister, "abc", 2), slot_of(persister, "ab"));
    char long_name[KC_TYPE_BYTES_MAX + 2];
    memset(long_name, 'x', sizeof long_name - 1);
    long_name[sizeof long_name - 1] = '\0';
    assert_int_equal(slot_of(persister, long_name), KCI_PERSISTER_TYPE_NONE);
    assert_int_equal(slot_of(persister, ""), KCI_PERSISTER_TYPE_NONE);
    for (int index = 0; persister->type_count < KCI_PERSISTER_TYPES_MAX; index++) {
        char name[32];
        snprintf(name, sizeof name, "type%d", index);
        assert_int_not_equal(slot_of(persister, name), KCI_PERSISTER_TYPE_NONE);
    }
    assert_int_equal(slot_of(persister, "one-too-many"), KCI_PERSISTER_TYPE_NONE);
    assert_int_equal(slot_of(persister, "a"), a); /* the known ones are still found */
    assert_string_equal(persister->types[a].name, "a");
    persister_free(persister);
}

static void test_parks(void **state)
{
    kci_persister *persister = persister_new();
    int64_t now_ms = kci_monotonic_ms();
    kci_uuid first, second;
    assert_true(submit(persister, "absent", &first, now_ms));
    assert_int_equal(entry_of(persister, &first)->attempts, 1);
    kci_persister_on_no_responders(persister, &first);
    assert_int_equal(entry_of(persister, &first)->attempts, 0);
    assert_true(due_of(persister, &first) == KCI_PERSISTER_WAITING);
    assert_int_equal(persister->types_waiting, 1);
    assert_int_equal(persister->stats.no_responders, 1);
    kci_persister_on_no_responders(persister, &first); /* an older dispatch's: nothing */
    assert_int_equal(entry_of(persister, &first)->attempts, 0);
    assert_int_equal(persister->stats.no_responders, 1);
    assert_false(submit(persister, "absent", &second, now_ms)); /* waits: not dispatched */
    assert_int_equal(entry_of(persister, &second)->attempts, 0);
    assert_true(due_of(persister, &second) == KCI_PERSISTER_WAITING);
    assert_int_equal(kci_persister_waiting_count_locked(persister), 2);

    /* A type beyond the table: its attempt is given back, it is not parked. */
    entry_of(persister, &second)->type_slot = KCI_PERSISTER_TYPE_NONE;
    kci_uuid third;
    assert_true(submit(persister, "other", &third, now_ms));
    entry_of(persister, &third)->type_slot = KCI_PERSISTER_TYPE_NONE;
    kci_persister_on_no_responders(persister, &third);
    assert_int_equal(entry_of(persister, &third)->attempts, 0);
    assert_true(due_of(persister, &third) == now_ms + TIMEOUT_MS);
    persister_free(persister);
}

static void test_probes(void **state)
{
    kci_persister *persister = persister_new();
    int64_t now_ms = kci_monotonic_ms();
    kci_uuid first, second;
    submit(persister, "late", &first, now_ms);
    kci_persister_on_no_responders(persister, &first);
    submit(persister, "late", &second, now_ms);
    kci_persister_probe probes[KCI_PERSISTER_PROBES_MAX];
    uint64_t released = 0;
    /* Not before the interval. */
    assert_int_equal(kci_persister_probes_collect_locked(persister, now_ms, probes,
                                                         KCI_PERSISTER_PROBES_MAX, &released),
                     0);
    int64_t probe_ms = kci_monotonic_ms() + INTERVAL_MS;
    assert_int_equal(kci_persister_probes_collect_locked(persister, probe_ms, probes,
                                                         KCI_PERSISTER_PROBES_MAX, &released),
                     1);
    assert_memory_equal(probes[0].id.bytes, first.bytes, sizeof first.bytes);
    assert_int_equal(persister->stats.probes, 1);
    /* One probe per type: none while it is out. */
    assert_int_equal(kci_persister_probes_collect_locked(persister, probe_ms + 1, probes,
                                                         KCI_PERSISTER_PROBES_MAX, &released),
                     0);
    kci_persister_on_no_responders(persister, &first); /* the probe found nobody */
    assert_int_equal(entry_of(persister, &first)->attempts, 0);
    assert_int_equal(persister->stats.no_responders, 1);
    assert_int_equal(persister->types[probes[0].type_slot].state, KCI_PERSISTER_TYPE_WAITING);

    /* The next probe is not answered with a 503: a service got it. */
    int64_t next_ms = kci_monotonic_ms() + INTERVAL_MS;
    assert_int_equal(kci_persister_probes_collect_locked(persister, next_ms, probes,
                                                         KCI_PERSISTER_PROBES_MAX, &released),
                     1);
    assert_int_equal(released, 0);
    int64_t release_ms = next_ms + KCI_PERSISTER_PROBE_WAIT_MS;
    assert_int_equal(kci_persister_probes_collect_locked(persister, release_ms, probes,
                                                         KCI_PERSISTER_PROBES_MAX, &released),
                     0);
    assert_int_equal(released, 2);
    assert_int_equal(persister->types_waiting, 0);
    assert_true(due_of(persister, &second) == release_ms);
    assert_int_equal(entry_of(persister, &first)->attempts, 1); /* the probe reached a service */
    assert_true(due_of(persister, &first) == release_ms + TIMEOUT_MS);
    assert_true(persister->pending_due_min_ms <= release_ms);
    persister_free(persister);
}

static void test_candidate(void **state)
{
    kci_persister *persister = persister_new();
    int64_t now_ms = kci_monotonic_ms();
    kci_uuid first, second;
    submit(persister, "gone", &first, now_ms);
    kci_persister_on_no_responders(persister, &first);
    submit(persister, "gone", &second, now_ms);
    /* The candidate is answered by an earlier dispatch meanwhile. */
    kci_index_entry *entry = entry_of(persister, &first);
    assert_true(kci_persister_entry_replying(persister, entry));
    free(kci_persister_entry_replied(persister, entry, kci_position_make(1, 100)));
    kci_persister_probe probes[KCI_PERSISTER_PROBES_MAX];
    uint64_t released = 0;
    int64_t probe_ms = kci_monotonic_ms() + INTERVAL_MS;
    assert_int_equal(kci_persister_probes_collect_locked(persister, probe_ms, probes,
                                                         KCI_PERSISTER_PROBES_MAX, &released),
                     1);
    assert_memory_equal(probes[0].id.bytes, second.bytes, sizeof second.bytes);
    /* The probe could not be sent: the type waits for the next interval. */
    kci_persister_probes_unsent(persister, probes, 1);
    assert_int_equal(persister->types[probes[0].type_slot].state, KCI_PERSISTER_TYPE_WAITING);
    /* Answered too: nothing waits, the type is served again. */
    entry = entry_of(persister, &second);
    assert_true(kci_persister_entry_replying(persister, entry));
    free(kci_persister_entry_replied(persister, entry, kci_position_make(1, 200)));
    int64_t later_ms = kci_monotonic_ms() + 2 * INTERVAL_MS;
    assert_int_equal(kci_persister_probes_collect_locked(persister, later_ms, probes,
                                                         KCI_PERSISTER_PROBES_MAX, &released),
                     0);
    assert_int_equal(persister->types_waiting, 0);
    persister_free(persister);
}

static void test_requeued(void **state)
{
    kci_persister *persister = persister_new();
    int64_t now_ms = kci_monotonic_ms();
    kci_uuid dead, waiting;
    submit(persister, "fixed", &dead, now_ms);
    kci_index_entry *entry = entry_of(persister, &dead);
    entry->attempts = (uint16_t)persister->config.attempts_max;
    kci_persister_entry_dead(persister, entry);
    assert_int_equal(persister->stats.dead, 1);
    submit(persister, "fixed", &waiting, now_ms);
    kci_persister_on_no_responders(persister, &waiting);
    kci_persister_entry_requeued(persister, entry_of(persister, &dead), now_ms);
    assert_int_equal(entry_of(persister, &dead)->state, KCI_ENTRY_PENDING);
    assert_int_equal(entry_of(persister, &dead)->attempts, 0);
    assert_true(due_of(persister, &dead) == KCI_PERSISTER_WAITING);
    assert_int_equal(persister->stats.dead, 0);
    assert_int_equal(persister->stats.requeued, 1);
    persister_free(persister);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_types),    cmocka_unit_test(test_parks),
        cmocka_unit_test(test_probes),   cmocka_unit_test(test_candidate),
        cmocka_unit_test(test_requeued),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
