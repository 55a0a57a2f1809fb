/* idempotence_test.c - the reply cache by Kc-Id: a stored reply comes back
 * unchanged, entries expire after the TTL on an injected clock, the entry
 * and byte bounds evict the least recently used reply, a redelivery that
 * arrives while the first is in progress waits and gets the same reply (or
 * BUSY after its bound, or the claim after an abandon), a full cache of
 * in-progress entries answers UNTRACKED, bad arguments are refused, and
 * eight threads hammering a few hundred ids run each "handler" exactly once. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <pthread.h>
#include <stdatomic.h>
#include <time.h>

#include "common/clock.h"
#include "service/idempotence.h"

enum {
    TTL_MS = 1000,
    ENTRIES = 64,
    BYTES = 1 << 20,
    STRESS_THREADS = 8,
    STRESS_IDS = 300,
    STRESS_ROUNDS = 4000,
    WAIT_GENEROUS_MS = 5000,
    WAIT_SHORT_MS = 50,
    HANDLER_SLEEP_MS = 100,
};

typedef struct fake_clock {
    atomic_llong now_ms;
} fake_clock;

static int64_t fake_clock_read(void *context)
{
    return atomic_load(&((fake_clock *)context)->now_ms);
}

static void sleep_ms(int duration_ms)
{
    struct timespec duration = {duration_ms / 1000, (long)(duration_ms % 1000) * 1000000};
    nanosleep(&duration, NULL);
}

static kci_idempotence *create(uint32_t entries_max, size_t bytes_max, fake_clock *clock)
{
    kci_idempotence *cache = NULL;
    assert_int_equal(kci_idempotence_create(&cache, entries_max, bytes_max, TTL_MS,
                                            clock != NULL ? fake_clock_read : NULL, clock),
                     KC_OK);
    assert_non_null(cache);
    return cache;
}

static kci_idempotence_outcome begin(kci_idempotence *cache, const char *id, int64_t wait_ms,
                                     kci_stored_reply *stored)
{
    kci_idempotence_outcome outcome = 0;
    assert_int_equal(kci_idempotence_begin(cache, id, wait_ms, &outcome, stored), KC_OK);
    return outcome;
}

static void put(kci_idempotence *cache, const char *id, const char *payload)
{
    kci_stored_reply stored;
    assert_int_equal(begin(cache, id, 0, &stored), KCI_IDEMPOTENCE_CLAIMED);
    assert_int_equal(
        kci_idempotence_finish(cache, id, "reply-id", payload, strlen(payload), 0, NULL), KC_OK);
}

static bool present(kci_idempotence *cache, const char *id)
{
    kci_stored_reply stored;
    kci_idempotence_outcome outcome = begin(cache, id, 0, &stored);
    if (outcome == KCI_IDEMPOTENCE_CLAIMED) kci_idempotence_abandon(cache, id);
    kci_stored_reply_clear(&stored);
    return outcome == KCI_IDEMPOTENCE_DONE;
}

static void test_stored_reply_returns(void **state)
{
    (void)state;
    kci_idempotence *cache = create(ENTRIES, BYTES, NULL);
    kci_stored_reply stored;
    assert_int_equal(begin(cache, "a", 0, &stored), KCI_IDEMPOTENCE_CLAIMED);
    assert_int_equal(kci_idempotence_finish(cache, "a", "r1", "oops", 4, 409, "already there"),
                     KC_OK);
    assert_int_equal(begin(cache, "a", 0, &stored), KCI_IDEMPOTENCE_DONE);
    assert_int_equal(stored.payload_len, 4);
    assert_memory_equal(stored.payload, "oops", 4);
    assert_string_equal(stored.reply_id, "r1");
    assert_int_equal(stored.error_code, 409);
    assert_string_equal(stored.error_message, "already there");
    kci_stored_reply_clear(&stored);
    assert_null(stored.payload);

    put(cache, "empty", "");
    assert_int_equal(begin(cache, "empty", 0, &stored), KCI_IDEMPOTENCE_DONE);
    assert_int_equal(stored.payload_len, 0);
    assert_string_equal(stored.error_message, "");
    kci_stored_reply_clear(&stored);

    kci_idempotence_stats stats;
    kci_idempotence_stats_get(cache, &stats);
    assert_int_equal(stats.entry_count, 2);
    assert_int_equal(stats.in_progress_count, 0);
    assert_int_equal(stats.hit_count, 2);
    kci_idempotence_destroy(cache);
}

static void test_ttl_expiry(void **state)
{
    (void)state;
    fake_clock clock = {1000000};
    kci_idempotence *cache = create(ENTRIES, BYTES, &clock);
    put(cache, "a", "x");
    atomic_store(&clock.now_ms, 1000000 + TTL_MS - 1);
    assert_true(present(cache, "a")); /* a hit does not extend the TTL */
    atomic_store(&clock.now_ms, 1000000 + TTL_MS);
    assert_false(present(cache, "a"));
    kci_idempotence_stats stats;
    kci_idempotence_stats_get(cache, &stats);
    assert_int_equal(stats.expiry_count, 1);
    assert_int_equal(stats.entry_count, 0);

    /* Expired entries at the LRU tail make room before anything is evicted. */
    kci_idempotence *small = create(2, BYTES, &clock);
    put(small, "old1", "x");
    put(small, "old2", "x");
    atomic_fetch_add(&clock.now_ms, TTL_MS);
    put(small, "new", "x");
    kci_idempotence_stats_get(small, &stats);
    assert_int_equal(stats.eviction_count, 0);
    assert_int_equal(stats.expiry_count, 2);
    kci_idempotence_destroy(small);
    kci_idempotence_destroy(cache);
}

static void test_entry_bound_evicts_lru(void **state)
{
    (void)state;
    kci_idempotence *cache = create(4, BYTES, NULL);
    put(cache, "1", "one");
    put(cache, "2", "two");
    put(cache, "3", "three");
    put(cache, "4", "four");
    assert_true(present(cache, "1")); /* 1 becomes most recent; 2 is the LRU */
    put(cache, "5", "five");
    /* Looking for an absent id claims it (and may evict): check it last. */
    assert_true(present(cache, "1"));
    assert_true(present(cache, "3"));
    assert_true(present(cache, "4"));
    assert_true(present(cache, "5"));
    assert_false(present(cache, "2"));
    kci_idempotence_stats stats;
    kci_idempotence_stats_get(cache, &stats);
    assert_true(stats.entry_count <= 4);
    assert_true(stats.eviction_count >= 1);
    kci_idempotence_destroy(cache);
}

static void test_byte_bound(void **state)
{
    (void)state;
    enum { PAYLOAD = 100 };
    char payload[PAYLOAD + 1];
    memset(payload, 'p', PAYLOAD);
    payload[PAYLOAD] = '\0';
    /* Room for two replies of 100 bytes plus their empty messages' NULs. */
    kci_idempotence *cache = create(ENTRIES, 2 * ((size_t)PAYLOAD + 1), NULL);
    put(cache, "a", payload);
    put(cache, "b", payload);
    put(cache, "c", payload);
    assert_true(present(cache, "b"));
    assert_true(present(cache, "c"));
    assert_false(present(cache, "a"));
    kci_idempotence_stats stats;
    kci_idempotence_stats_get(cache, &stats);
    assert_true(stats.bytes <= 2 * ((size_t)PAYLOAD + 1));

    /* A reply larger than the whole bound is served but not remembered. */
    char big[3 * PAYLOAD];
    memset(big, 'b', sizeof(big));
    kci_stored_reply stored;
    assert_int_equal(begin(cache, "big", 0, &stored), KCI_IDEMPOTENCE_CLAIMED);
    assert_int_equal(kci_idempotence_finish(cache, "big", "r", big, sizeof(big), 0, ""), KC_OK);
    assert_false(present(cache, "big"));
    assert_true(present(cache, "c"));
    kci_idempotence_destroy(cache);
}

typedef struct finisher {
    kci_idempotence *cache;
    const char *id;
    bool abandon;
} finisher;

static void *finish_later(void *argument)
{
    finisher *job = argument;
    sleep_ms(HANDLER_SLEEP_MS);
    if (job->abandon)
        kci_idempotence_abandon(job->cache, job->id);
    else
        kci_idempotence_finish(job->cache, job->id, "first-reply", "first", 5, 0, "");
    return NULL;
}

static void test_in_progress_waits_for_first(void **state)
{
    (void)state;
    kci_idempotence *cache = create(ENTRIES, BYTES, NULL);
    kci_stored_reply stored;
    assert_int_equal(begin(cache, "r", 0, &stored), KCI_IDEMPOTENCE_CLAIMED);
    finisher job = {cache, "r", false};
    pthread_t thread;
    assert_int_equal(pthread_create(&thread, NULL, finish_later, &job), 0);
    int64_t started_ms = kci_monotonic_ms();
    assert_int_equal(begin(cache, "r", WAIT_GENEROUS_MS, &stored), KCI_IDEMPOTENCE_DONE);
    int64_t waited_ms = kci_monotonic_ms() - started_ms;
    assert_true(waited_ms >= HANDLER_SLEEP_MS / 2 && waited_ms < WAIT_GENEROUS_MS);
    assert_int_equal(stored.payload_len, 5);
    assert_memory_equal(stored.payload, "first", 5);
    assert_string_equal(stored.reply_id, "first-reply");
    kci_stored_reply_clear(&stored);
    pthread_join(thread, NULL);
    kci_idempotence_destroy(cache);
}

static void test_in_progress_busy_after_bound(void **state)
{
    (void)state;
    kci_idempotence *cache = create(ENTRIES, BYTES, NULL);
    kci_stored_reply stored;
    assert_int_equal(begin(cache, "r", 0, &stored), KCI_IDEMPOTENCE_CLAIMED);
    int64_t started_ms = kci_monotonic_ms();
    assert_int_equal(begin(cache, "r", WAIT_SHORT_MS, &stored), KCI_IDEMPOTENCE_BUSY);
    assert_true(kci_monotonic_ms() - started_ms >= WAIT_SHORT_MS - 5);
    assert_int_equal(begin(cache, "r", 0, &stored), KCI_IDEMPOTENCE_BUSY);
    kci_idempotence_abandon(cache, "r");
    kci_idempotence_destroy(cache);
}

static void test_abandon_lets_waiter_claim(void **state)
{
    (void)state;
    kci_idempotence *cache = create(ENTRIES, BYTES, NULL);
    kci_stored_reply stored;
    assert_int_equal(begin(cache, "r", 0, &stored), KCI_IDEMPOTENCE_CLAIMED);
    finisher job = {cache, "r", true};
    pthread_t thread;
    assert_int_equal(pthread_create(&thread, NULL, finish_later, &job), 0);
    assert_int_equal(begin(cache, "r", WAIT_GENEROUS_MS, &stored), KCI_IDEMPOTENCE_CLAIMED);
    pthread_join(thread, NULL);
    kci_idempotence_abandon(cache, "r");
    kci_idempotence_destroy(cache);
}

static void test_untracked_when_all_in_progress(void **state)
{
    (void)state;
    kci_idempotence *cache = create(2, BYTES, NULL);
    kci_stored_reply stored;
    assert_int_equal(begin(cache, "a", 0, &stored), KCI_IDEMPOTENCE_CLAIMED);
    assert_int_equal(begin(cache, "b", 0, &stored), KCI_IDEMPOTENCE_CLAIMED);
    assert_int_equal(begin(cache, "c", 0, &stored), KCI_IDEMPOTENCE_UNTRACKED);
    assert_int_equal(kci_idempotence_finish(cache, "a", "r", "x", 1, 0, ""), KC_OK);
    /* Now a DONE entry can be evicted for c. */
    assert_int_equal(begin(cache, "c", 0, &stored), KCI_IDEMPOTENCE_CLAIMED);
    kci_idempotence_abandon(cache, "b");
    kci_idempotence_abandon(cache, "c");
    kci_idempotence_destroy(cache);
}

static void test_bad_arguments(void **state)
{
    (void)state;
    kci_idempotence *cache = NULL;
    assert_int_equal(kci_idempotence_create(&cache, 0, BYTES, TTL_MS, NULL, NULL),
                     KC_ERR_INVALID_ARGUMENT);
    assert_int_equal(
        kci_idempotence_create(&cache, KCI_IDEMPOTENCE_ENTRIES_MAX + 1, BYTES, TTL_MS, NULL, NULL),
        KC_ERR_INVALID_ARGUMENT);
    assert_int_equal(kci_idempotence_create(&cache, ENTRIES, 0, TTL_MS, NULL, NULL),
                     KC_ERR_INVALID_ARGUMENT);
    assert_int_equal(kci_idempotence_create(&cache, ENTRIES, BYTES, 0, NULL, NULL),
                     KC_ERR_INVALID_ARGUMENT);
    assert_null(cache);
    cache = create(ENTRIES, BYTES, NULL);
    kci_stored_reply stored;
    kci_idempotence_outcome outcome;
    assert_int_equal(kci_idempotence_begin(cache, "", 0, &outcome, &stored),
                     KC_ERR_INVALID_ARGUMENT);
    assert_int_equal(kci_idempotence_begin(cache, NULL, 0, &outcome, &stored),
                     KC_ERR_INVALID_ARGUMENT);
    char long_id[KCI_IDEMPOTENCE_KEY_BYTES_MAX + 2];
    memset(long_id, 'x', sizeof(long_id) - 1);
    long_id[sizeof(long_id) - 1] = '\0';
    assert_int_equal(kci_idempotence_begin(cache, long_id, 0, &outcome, &stored),
                     KC_ERR_INVALID_ARGUMENT);
    long_id[KCI_IDEMPOTENCE_KEY_BYTES_MAX] = '\0';
    assert_int_equal(begin(cache, long_id, 0, &stored), KCI_IDEMPOTENCE_CLAIMED);
    kci_idempotence_abandon(cache, long_id);
    kci_idempotence_destroy(cache);
}

typedef struct stress_shared {
    kci_idempotence *cache;
    atomic_int runs[STRESS_IDS];
    atomic_int mismatches;
} stress_shared;

typedef struct stress_thread {
    stress_shared *shared;
    unsigned seed;
} stress_thread;

static void stress_one(stress_shared *shared, int id_index)
{
    char id[16], expected[16];
    snprintf(id, sizeof(id), "id-%d", id_index);
    snprintf(expected, sizeof(expected), "reply-%d", id_index);
    kci_stored_reply stored;
    kci_idempotence_outcome outcome = 0;
    /* No cmocka assertions off the main thread: count failures instead. */
    if (kci_idempotence_begin(shared->cache, id, WAIT_GENEROUS_MS, &outcome, &stored) != KC_OK) {
        atomic_fetch_add(&shared->mismatches, 1);
        return;
    }
    if (outcome == KCI_IDEMPOTENCE_CLAIMED) {
        atomic_fetch_add(&shared->runs[id_index], 1);
        kci_idempotence_finish(shared->cache, id, id, expected, strlen(expected), 0, "");
        return;
    }
    if (outcome != KCI_IDEMPOTENCE_DONE || stored.payload_len != strlen(expected) ||
        memcmp(stored.payload, expected, stored.payload_len) != 0)
        atomic_fetch_add(&shared->mismatches, 1);
    kci_stored_reply_clear(&stored);
}

static void *stress_run(void *argument)
{
    stress_thread *self = argument;
    for (int round = 0; round < STRESS_ROUNDS; round++)
        stress_one(self->shared, (int)(rand_r(&self->seed) % STRESS_IDS));
    return NULL;
}

static void test_concurrent_handlers_run_once(void **state)
{
    (void)state;
    static stress_shared shared;
    memset(&shared, 0, sizeof(shared));
    shared.cache = create(STRESS_IDS, BYTES, NULL); /* no eviction: every id fits */
    pthread_t threads[STRESS_THREADS];
    stress_thread selves[STRESS_THREADS];
    for (int i = 0; i < STRESS_THREADS; i++) {
        selves[i] = (stress_thread){&shared, (unsigned)(i * 7919 + 1)};
        assert_int_equal(pthread_create(&threads[i], NULL, stress_run, &selves[i]), 0);
    }
    for (int i = 0; i < STRESS_THREADS; i++)
        pthread_join(threads[i], NULL);
    for (int i = 0; i < STRESS_IDS; i++)
        assert_true(atomic_load(&shared.runs[i]) <= 1);
    assert_int_equal(atomic_load(&shared.mismatches), 0);
    kci_idempotence_stats stats;
    kci_idempotence_stats_get(shared.cache, &stats);
    assert_int_equal(stats.in_progress_count, 0);
    assert_int_equal(stats.eviction_count, 0);
    kci_idempotence_destroy(shared.cache);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_stored_reply_returns),
        cmocka_unit_test(test_ttl_expiry),
        cmocka_unit_test(test_entry_bound_evicts_lru),
        cmocka_unit_test(test_byte_bound),
        cmocka_unit_test(test_in_progress_waits_for_first),
        cmocka_unit_test(test_in_progress_busy_after_bound),
        cmocka_unit_test(test_abandon_lets_waiter_claim),
        cmocka_unit_test(test_untracked_when_all_in_progress),
        cmocka_unit_test(test_bad_arguments),
        cmocka_unit_test(test_concurrent_handlers_run_once),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
