/* uuid_test.c - UUIDv7: the RFC 9562 test vector, format/parse round trips,
 * a table of texts that must not parse (and every proper prefix of a good
 * one), version and variant bits, the time an id carries, strict order of
 * 1,000,000 sequential ids, uniqueness and per-thread order under 8 threads
 * x 100,000 ids, a clock that steps back (through kci_uuid_v7_at), counter
 * rollover into the next ms, and a fork that must not repeat random bits.
 *
 * The tests share the process-wide generator, so they run in an order that
 * keeps the generator's time close to the wall clock until the last ones. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <pthread.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "service/uuid.h"

enum {
    SEQUENTIAL_IDS = 1000000,
    THREAD_COUNT = 8,
    THREAD_IDS = 100000,
    ROUND_TRIP_IDS = 1000,
    BACKWARDS_IDS = 10000,
    COUNTER_MAX = 0xFFF,
    COUNTER_SEED_LIMIT = 0x800, /* a fresh counter starts below this */
};

static const char rfc_vector_text[] = "017F22E2-79B0-7CC3-98C4-DC0C0C07398F";
static const int64_t rfc_vector_time_ms = 0x017F22E279B0; /* 2022-02-22 14:22:22 UTC */

static int64_t real_ms(void)
{
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    return (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000;
}

static uint32_t counter_of(const kci_uuid *uuid)
{
    return ((uint32_t)(uuid->bytes[6] & 0x0F) << 8) | uuid->bytes[7];
}

static void test_time_extraction(void **state)
{
    (void)state;
    int64_t before_ms = real_ms();
    kci_uuid uuid;
    kci_uuid_v7(&uuid);
    int64_t after_ms = real_ms();
    int64_t time_ms = kci_uuid_v7_time_ms(&uuid);
    assert_true(time_ms >= before_ms);
    assert_true(time_ms <= after_ms);
}

static void test_rfc_vector(void **state)
{
    (void)state;
    kci_uuid uuid;
    assert_true(kci_uuid_parse(rfc_vector_text, strlen(rfc_vector_text), &uuid));
    assert_int_equal(kci_uuid_v7_time_ms(&uuid), rfc_vector_time_ms);
    assert_int_equal(kci_uuid_version(&uuid), 7);
    assert_true(kci_uuid_variant_rfc(&uuid));
    assert_false(kci_uuid_is_nil_or_max(&uuid));
    char text[KC_UUID_TEXT_BYTES + 1];
    kci_uuid_format(&uuid, text);
    assert_string_equal(text, "017f22e2-79b0-7cc3-98c4-dc0c0c07398f");
}

static void check_text_shape(const char *text)
{
    assert_int_equal(strlen(text), KC_UUID_TEXT_BYTES);
    for (size_t position = 0; position < KC_UUID_TEXT_BYTES; position++) {
        char c = text[position];
        if (position == 8 || position == 13 || position == 18 || position == 23) {
            assert_int_equal(c, '-');
        } else {
            assert_true((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'));
        }
    }
    assert_int_equal(text[14], '7');           /* version */
    assert_non_null(strchr("89ab", text[19])); /* variant 10xx */
}

static void test_format_parse_round_trip(void **state)
{
    (void)state;
    for (int index = 0; index < ROUND_TRIP_IDS; index++) {
        kci_uuid uuid, parsed, parsed_upper;
        char text[KC_UUID_TEXT_BYTES + 1], upper[KC_UUID_TEXT_BYTES + 1];
        kci_uuid_v7(&uuid);
        kci_uuid_format(&uuid, text);
        check_text_shape(text);
        assert_true(kci_uuid_parse(text, KC_UUID_TEXT_BYTES, &parsed));
        assert_memory_equal(uuid.bytes, parsed.bytes, sizeof uuid.bytes);
        for (size_t position = 0; position <= KC_UUID_TEXT_BYTES; position++)
            upper[position] =
                (char)(text[position] >= 'a' && text[position] <= 'f' ? text[position] - 'a' + 'A'
                                                                      : text[position]);
        assert_true(kci_uuid_parse(upper, KC_UUID_TEXT_BYTES, &parsed_upper));
        assert_memory_equal(uuid.bytes, parsed_upper.bytes, sizeof uuid.bytes);
    }
    char text[KC_UUID_TEXT_BYTES + 1];
    kci_uuid_v7_text(text);
    check_text_shape(text);
}

static const char *const texts_invalid[] = {
    "",
    "017f22e2-79b0-7cc3-98c4-dc0c0c07398",   /* 35 */
    "017f22e2-79b0-7cc3-98c4-dc0c0c07398f0", /* 37 */
    "017f22e279b07cc398c4dc0c0c07398f",      /* no dashes */
    "{017f22e2-79b0-7cc3-98c4-dc0c0c07398f}",
    "urn:uuid:017f22e2-79b0-7cc3-98c4-dc0c0c07398f",
    "017f22e2-79b0-7cc3-98c4-dc0c0c07398g",
    "017f22e2-79b0-7cc3-98c4_dc0c0c07398f",
    "017f22e2079b0-7cc3-98c4-dc0c0c07398f",
    "017f22e-279b0-7cc3-98c4-dc0c0c07398f", /* dash one early */
    "017f22e2--9b0-7cc3-98c4-dc0c0c07398f",
    " 17f22e2-79b0-7cc3-98c4-dc0c0c07398f",
    "017f22e2-79b0-7cc3-98c4-dc0c0c07398 ",
    "017f22e2-79b0-7cc3-98c4-dc0c0c0739+f",
    "0x7f22e2-79b0-7cc3-98c4-dc0c0c07398f",
    "017f22e2-79b0-7cc3-98c4-dc0c0c07398\xc3",
};

static void test_parse_must_fail(void **state)
{
    (void)state;
    kci_uuid uuid;
    for (size_t index = 0; index < sizeof texts_invalid / sizeof texts_invalid[0]; index++) {
        const char *text = texts_invalid[index];
        if (kci_uuid_parse(text, strlen(text), &uuid)) fail_msg("parsed \"%s\"", text);
    }
    assert_false(kci_uuid_parse(NULL, KC_UUID_TEXT_BYTES, &uuid));
    /* an embedded NUL, and a good text with the wrong length */
    char with_nul[] = "017f22e2-79b0-7cc3-98c4-dc0c0c07398f";
    with_nul[20] = '\0';
    assert_false(kci_uuid_parse(with_nul, KC_UUID_TEXT_BYTES, &uuid));
    assert_false(kci_uuid_parse(rfc_vector_text, KC_UUID_TEXT_BYTES - 1, &uuid));
    /* every proper prefix, and every single-byte corruption */
    for (size_t length = 0; length < KC_UUID_TEXT_BYTES; length++)
        assert_false(kci_uuid_parse(rfc_vector_text, length, &uuid));
    for (size_t position = 0; position < KC_UUID_TEXT_BYTES; position++) {
        char corrupt[KC_UUID_TEXT_BYTES + 1];
        memcpy(corrupt, rfc_vector_text, sizeof corrupt);
        corrupt[position] = corrupt[position] == '-' ? '0' : 'x';
        assert_false(kci_uuid_parse(corrupt, KC_UUID_TEXT_BYTES, &uuid));
    }
}

static void test_nil_and_max(void **state)
{
    (void)state;
    kci_uuid uuid;
    assert_true(kci_uuid_parse("00000000-0000-0000-0000-000000000000", 36, &uuid));
    assert_true(kci_uuid_is_nil_or_max(&uuid));
    assert_true(kci_uuid_parse("FFFFFFFF-ffff-FFFF-ffff-FFFFFFFFFFFF", 36, &uuid));
    assert_true(kci_uuid_is_nil_or_max(&uuid));
    assert_true(kci_uuid_parse("00000000-0000-0000-0000-000000000001", 36, &uuid));
    assert_false(kci_uuid_is_nil_or_max(&uuid));
}

static void test_version_and_variant(void **state)
{
    (void)state;
    for (int index = 0; index < ROUND_TRIP_IDS; index++) {
        kci_uuid uuid;
        kci_uuid_v7(&uuid);
        assert_int_equal(kci_uuid_version(&uuid), 7);
        assert_int_equal(uuid.bytes[6] >> 4, 0x7);
        assert_int_equal(uuid.bytes[8] >> 6, 0x2);
        assert_true(kci_uuid_variant_rfc(&uuid));
    }
}

static void test_sequential_strict_order(void **state)
{
    (void)state;
    kci_uuid previous, current;
    char previous_text[KC_UUID_TEXT_BYTES + 1], current_text[KC_UUID_TEXT_BYTES + 1];
    kci_uuid_v7(&previous);
    kci_uuid_format(&previous, previous_text);
    for (int index = 0; index < SEQUENTIAL_IDS; index++) {
        kci_uuid_v7(&current);
        kci_uuid_format(&current, current_text);
        if (kci_uuid_compare(&previous, &current) >= 0) fail_msg("id %d not increasing", index);
        if (strcmp(previous_text, current_text) >= 0) fail_msg("text %d not increasing", index);
        assert_true(kci_uuid_v7_time_ms(&current) >= kci_uuid_v7_time_ms(&previous));
        previous = current;
        memcpy(previous_text, current_text, sizeof previous_text);
    }
}

typedef struct thread_work {
    kci_uuid *ids;
    size_t ordered_count; /* ids that were greater than the one before */
} thread_work;

static void *thread_generate(void *argument)
{
    thread_work *work = argument;
    for (size_t index = 0; index < THREAD_IDS; index++) {
        kci_uuid_v7(&work->ids[index]);
        if (index == 0 || kci_uuid_compare(&work->ids[index - 1], &work->ids[index]) < 0)
            work->ordered_count++;
    }
    return NULL;
}

static int uuid_sort_compare(const void *a, const void *b)
{
    return kci_uuid_compare(a, b);
}

static void test_threads_unique_and_ordered(void **state)
{
    (void)state;
    kci_uuid *all = calloc((size_t)THREAD_COUNT * THREAD_IDS, sizeof *all);
    assert_non_null(all);
    pthread_t threads[THREAD_COUNT];
    thread_work works[THREAD_COUNT];
    for (int index = 0; index < THREAD_COUNT; index++) {
        works[index] = (thread_work){.ids = all + (size_t)index * THREAD_IDS};
        assert_int_equal(pthread_create(&threads[index], NULL, thread_generate, &works[index]), 0);
    }
    for (int index = 0; index < THREAD_COUNT; index++) {
        assert_int_equal(pthread_join(threads[index], NULL), 0);
        assert_int_equal(works[index].ordered_count, THREAD_IDS);
    }
    size_t total = (size_t)THREAD_COUNT * THREAD_IDS;
    qsort(all, total, sizeof *all, uuid_sort_compare);
    for (size_t index = 1; index < total; index++)
        if (kci_uuid_compare(&all[index - 1], &all[index]) == 0)
            fail_msg("duplicate at %zu", index);
    free(all);
}

/* Forks after the pool has been used: parent and child must not hand out the
 * same random bits (they would without the atfork reset: same pool, same
 * position). */
static void test_fork_fresh_randomness(void **state)
{
    (void)state;
    kci_uuid first;
    kci_uuid_v7(&first);
    int pipe_fds[2];
    assert_int_equal(pipe(pipe_fds), 0);
    pid_t child = fork();
    assert_true(child >= 0);
    if (child == 0) {
        kci_uuid uuid;
        kci_uuid_v7(&uuid);
        ssize_t written = write(pipe_fds[1], uuid.bytes, sizeof uuid.bytes);
        _exit(written == (ssize_t)sizeof uuid.bytes ? 0 : 1);
    }
    kci_uuid parent_uuid, child_uuid;
    kci_uuid_v7(&parent_uuid);
    assert_int_equal(read(pipe_fds[0], child_uuid.bytes, sizeof child_uuid.bytes),
                     sizeof child_uuid.bytes);
    int status = 0;
    assert_int_equal(waitpid(child, &status, 0), child);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    close(pipe_fds[0]);
    close(pipe_fds[1]);
    assert_memory_not_equal(parent_uuid.bytes + 8, child_uuid.bytes + 8, 8);
    assert_true(kci_uuid_compare(&first, &parent_uuid) < 0);
}

/* The clock steps back 10 s and keeps going back: ids stay increasing, carry
 * the last time seen, and the counter rolls over into borrowed ms. */
static void test_clock_backwards(void **state)
{
    (void)state;
    kci_uuid latest;
    kci_uuid_v7(&latest);
    int64_t time_ms = kci_uuid_v7_time_ms(&latest);
    kci_uuid previous = latest;
    int64_t borrowed_ms = 0;
    for (int index = 0; index < BACKWARDS_IDS; index++) {
        kci_uuid current;
        kci_uuid_v7_at(&current, time_ms - 10000 - index);
        assert_true(kci_uuid_compare(&previous, &current) < 0);
        int64_t previous_ms = kci_uuid_v7_time_ms(&previous);
        int64_t current_ms = kci_uuid_v7_time_ms(&current);
        if (current_ms == previous_ms) {
            assert_int_equal(counter_of(&current), counter_of(&previous) + 1);
        } else {
            /* only a rollover moves the time: by one ms, after a full counter */
            assert_int_equal(current_ms, previous_ms + 1);
            assert_int_equal(counter_of(&previous), COUNTER_MAX);
            assert_true(counter_of(&current) < COUNTER_SEED_LIMIT);
            borrowed_ms++;
        }
        previous = current;
    }
    /* at least 2048 and at most 4096 ids fit in one ms */
    assert_true(borrowed_ms >= BACKWARDS_IDS / (COUNTER_MAX + 1));
    assert_true(borrowed_ms <= BACKWARDS_IDS / COUNTER_SEED_LIMIT + 1);
    /* negative clock readings are clamped, not trusted */
    kci_uuid clamped;
    kci_uuid_v7_at(&clamped, -1);
    assert_true(kci_uuid_compare(&previous, &clamped) < 0);
}

/* A clock that jumps forward: the new time is used at once, with a counter
 * seeded below the rollover guard. Last, since it moves the generator's time
 * ahead of the wall clock. */
static void test_clock_forwards(void **state)
{
    (void)state;
    kci_uuid before, after;
    kci_uuid_v7(&before);
    int64_t jump_ms = kci_uuid_v7_time_ms(&before) + 1000;
    kci_uuid_v7_at(&after, jump_ms);
    assert_int_equal(kci_uuid_v7_time_ms(&after), jump_ms);
    assert_true(counter_of(&after) < COUNTER_SEED_LIMIT);
    assert_true(kci_uuid_compare(&before, &after) < 0);
    kci_uuid top;
    kci_uuid_v7_at(&top, KCI_UUID_TIME_MS_MAX + 5); /* clamped to the 48-bit range */
    assert_int_equal(kci_uuid_v7_time_ms(&top), KCI_UUID_TIME_MS_MAX);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_time_extraction),
        cmocka_unit_test(test_rfc_vector),
        cmocka_unit_test(test_format_parse_round_trip),
        cmocka_unit_test(test_parse_must_fail),
        cmocka_unit_test(test_nil_and_max),
        cmocka_unit_test(test_version_and_variant),
        cmocka_unit_test(test_sequential_strict_order),
        cmocka_unit_test(test_threads_unique_and_ordered),
        cmocka_unit_test(test_fork_fresh_randomness),
        cmocka_unit_test(test_clock_backwards),
        cmocka_unit_test(test_clock_forwards),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
