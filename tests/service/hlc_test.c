/* hlc_test.c - the hybrid logical clock under a mocked wall clock: now()
 * never goes back when the clock does; every branch of the receive rule; the
 * counter carrying into the wall time; the drift bound; three simulated nodes
 * with skewed clocks (-5 s, 0, +3 s) exchanging messages in a random but
 * seeded order, checking that every receive orders after its send, that each
 * node's own events are strictly increasing, and that no clock runs further
 * ahead of its node's wall clock than the skew allows; tables of texts that
 * must and must not parse; and threads sharing one clock. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <pthread.h>

#include "kingcobra/kingcobra.h"
#include "service/hlc.h"

enum {
    NODE_COUNT = 3,
    SIMULATION_STEPS = 200000,
    INBOX_MESSAGES_MAX = 1024,
    THREAD_COUNT = 4,
    THREAD_EVENTS = 100000,
};

static const int64_t base_ms = 1700000000000;

typedef struct mock_clock {
    int64_t now_ms;
} mock_clock;

static int64_t mock_clock_read(void *context)
{
    return ((mock_clock *)context)->now_ms;
}

static void expect_timestamp(const kci_hlc_timestamp *actual, int64_t wall_ms, uint32_t counter)
{
    assert_int_equal(actual->wall_ms, wall_ms);
    assert_int_equal(actual->counter, counter);
}

static void test_now_clock_backwards(void **state)
{
    (void)state;
    mock_clock clock = {.now_ms = base_ms};
    kci_hlc hlc;
    kci_hlc_init(&hlc, mock_clock_read, &clock, 0);
    assert_int_equal(hlc.drift_ms_max, KCI_HLC_DRIFT_MS_DEFAULT);
    kci_hlc_timestamp timestamp;
    kci_hlc_now(&hlc, &timestamp);
    expect_timestamp(&timestamp, base_ms, 0);
    kci_hlc_now(&hlc, &timestamp);
    expect_timestamp(&timestamp, base_ms, 1);
    clock.now_ms = base_ms - 5000; /* NTP steps the clock back 5 s */
    for (uint32_t counter = 2; counter < 1000; counter++) {
        kci_hlc_now(&hlc, &timestamp);
        expect_timestamp(&timestamp, base_ms, counter);
        clock.now_ms += 1;
    }
    clock.now_ms = base_ms + 1;
    kci_hlc_now(&hlc, &timestamp);
    expect_timestamp(&timestamp, base_ms + 1, 0);
    clock.now_ms = -7; /* before 1970: read as 0, the clock holds */
    kci_hlc_now(&hlc, &timestamp);
    expect_timestamp(&timestamp, base_ms + 1, 1);
    kci_hlc_destroy(&hlc);
}

typedef struct merge_case {
    kci_hlc_timestamp local, remote;
    int64_t pt;
    kci_hlc_timestamp expected;
} merge_case;

/* One row per branch of the receive rule (hlc.c's comment). */
static const merge_case merge_cases[] = {
    /* l' == l == m.l: max of counters + 1 */
    {{1000, 5}, {1000, 7}, 900, {1000, 8}},
    {{1000, 9}, {1000, 2}, 1000, {1000, 10}},
    /* l' == l only */
    {{1000, 5}, {999, 9}, 900, {1000, 6}},
    {{1000, 3}, {900, 9}, 1000, {1000, 4}},
    /* l' == m.l only */
    {{1000, 5}, {1200, 3}, 1100, {1200, 4}},
    {{900, 1}, {1000, 4}, 1000, {1000, 5}},
    /* the wall clock is ahead of both: counter restarts */
    {{1000, 5}, {1100, 3}, 1200, {1200, 0}},
    /* counters that carry into the wall time */
    {{1000, UINT32_MAX}, {999, 0}, 900, {1001, 0}},
    {{999, 0}, {1000, UINT32_MAX}, 900, {1001, 0}},
    {{1000, UINT32_MAX}, {1000, 3}, 1000, {1001, 0}},
};

static void test_observe_rules(void **state)
{
    (void)state;
    for (size_t index = 0; index < sizeof merge_cases / sizeof merge_cases[0]; index++) {
        const merge_case *row = &merge_cases[index];
        mock_clock clock = {.now_ms = row->pt};
        kci_hlc hlc;
        kci_hlc_init(&hlc, mock_clock_read, &clock, 0);
        hlc.last = row->local;
        kci_hlc_timestamp out;
        assert_int_equal(kci_hlc_observe(&hlc, &row->remote, &out), KC_OK);
        if (kci_hlc_compare(&out, &row->expected) != 0)
            fail_msg("row %zu: got %lld.%u", index, (long long)out.wall_ms, out.counter);
        assert_true(kci_hlc_compare(&out, &row->local) > 0);
        assert_true(kci_hlc_compare(&out, &row->remote) > 0);
        expect_timestamp(&hlc.last, out.wall_ms, out.counter);
        kci_hlc_destroy(&hlc);
    }
}

static void test_counter_carry(void **state)
{
    (void)state;
    mock_clock clock = {.now_ms = 500};
    kci_hlc hlc;
    kci_hlc_init(&hlc, mock_clock_read, &clock, 0);
    hlc.last = (kci_hlc_timestamp){.wall_ms = 1000, .counter = UINT32_MAX - 1};
    kci_hlc_timestamp timestamp;
    kci_hlc_now(&hlc, &timestamp);
    expect_timestamp(&timestamp, 1000, UINT32_MAX);
    kci_hlc_now(&hlc, &timestamp);
    expect_timestamp(&timestamp, 1001, 0);
    kci_hlc_now(&hlc, &timestamp);
    expect_timestamp(&timestamp, 1001, 1);
    kci_hlc_destroy(&hlc);
}

static void test_drift_refused(void **state)
{
    (void)state;
    mock_clock clock = {.now_ms = base_ms};
    kci_hlc hlc;
    kci_hlc_init(&hlc, mock_clock_read, &clock, 500);
    kci_hlc_timestamp out = {0, 0};
    kci_hlc_timestamp too_far = {.wall_ms = base_ms + 501, .counter = 0};
    assert_int_equal(kci_hlc_observe(&hlc, &too_far, &out), KC_ERR_BAD_HEADER);
    assert_non_null(strstr(kc_last_error(), "Kc-Ts"));
    assert_non_null(strstr(kc_last_error(), "501 ms ahead"));
    expect_timestamp(&hlc.last, 0, 0); /* untouched */
    kci_hlc_timestamp at_limit = {.wall_ms = base_ms + 500, .counter = 7};
    assert_int_equal(kci_hlc_observe(&hlc, &at_limit, &out), KC_OK);
    expect_timestamp(&out, base_ms + 500, 8);
    /* the clock moved, so what was too far is now within reach */
    clock.now_ms = base_ms + 1;
    assert_int_equal(kci_hlc_observe(&hlc, &too_far, &out), KC_OK);
    expect_timestamp(&out, base_ms + 501, 1);
    /* past timestamps are never refused */
    kci_hlc_timestamp ancient = {.wall_ms = 1, .counter = 0};
    assert_int_equal(kci_hlc_observe(&hlc, &ancient, &out), KC_OK);
    expect_timestamp(&out, base_ms + 501, 2);
    kci_hlc_timestamp negative = {.wall_ms = -1, .counter = 0};
    assert_int_equal(kci_hlc_observe(&hlc, &negative, &out), KC_ERR_INVALID_ARGUMENT);
    kci_hlc_timestamp huge = {.wall_ms = KCI_HLC_WALL_MS_MAX + 1, .counter = 0};
    assert_int_equal(kci_hlc_observe(&hlc, &huge, &out), KC_ERR_INVALID_ARGUMENT);
    kci_hlc_destroy(&hlc);
}

/* ---- three nodes --------------------------------------------------------- */

typedef struct message {
    kci_hlc_timestamp sent;
} message;

typedef struct node {
    mock_clock clock;
    int64_t skew_ms;
    kci_hlc hlc;
    kci_hlc_timestamp last; /* the node's latest event */
    message inbox[INBOX_MESSAGES_MAX];
    size_t inbox_count;
} node;

static uint64_t random_state = 0x2545F4914F6CDD1Dull;

static uint32_t random_below(uint32_t bound)
{
    random_state ^= random_state << 13;
    random_state ^= random_state >> 7;
    random_state ^= random_state << 17;
    return (uint32_t)(random_state % bound);
}

static void node_event_checked(node *self, const kci_hlc_timestamp *event)
{
    assert_true(kci_hlc_compare(&self->last, event) < 0); /* local order */
    /* l never exceeds the largest wall clock of the cloud: here +3 s, so at
     * most 8 s ahead of the slowest node */
    assert_true(event->wall_ms - self->clock.now_ms <= 8000);
    assert_true(event->wall_ms >= self->clock.now_ms);
    self->last = *event;
}

static void simulation_step(node *nodes, int64_t *global_ms)
{
    *global_ms += random_below(3); /* 0, 1 or 2 ms pass */
    for (int index = 0; index < NODE_COUNT; index++)
        nodes[index].clock.now_ms = *global_ms + nodes[index].skew_ms;
    node *self = &nodes[random_below(NODE_COUNT)];
    kci_hlc_timestamp event;
    uint32_t action = random_below(3);
    if (action == 0 || (action == 2 && self->inbox_count == 0)) {
        kci_hlc_now(&self->hlc, &event); /* a local event */
        node_event_checked(self, &event);
    } else if (action == 1) {
        node *peer = &nodes[random_below(NODE_COUNT)];
        if (peer == self || peer->inbox_count == INBOX_MESSAGES_MAX) return;
        kci_hlc_now(&self->hlc, &event); /* a send event */
        node_event_checked(self, &event);
        peer->inbox[peer->inbox_count++] = (message){.sent = event};
    } else {
        /* receive any waiting message: the network reorders */
        size_t pick = random_below((uint32_t)self->inbox_count);
        message received = self->inbox[pick];
        self->inbox[pick] = self->inbox[--self->inbox_count];
        assert_int_equal(kci_hlc_observe(&self->hlc, &received.sent, &event), KC_OK);
        assert_true(kci_hlc_compare(&received.sent, &event) < 0); /* send -> receive */
        node_event_checked(self, &event);
    }
}

static void test_three_skewed_nodes(void **state)
{
    (void)state;
    static node nodes[NODE_COUNT];
    const int64_t skews_ms[NODE_COUNT] = {-5000, 0, 3000};
    int64_t global_ms = base_ms;
    for (int index = 0; index < NODE_COUNT; index++) {
        nodes[index] = (node){.skew_ms = skews_ms[index]};
        nodes[index].clock.now_ms = global_ms + skews_ms[index];
        kci_hlc_init(&nodes[index].hlc, mock_clock_read, &nodes[index].clock, 0);
    }
    for (int step = 0; step < SIMULATION_STEPS; step++)
        simulation_step(nodes, &global_ms);
    /* the slow node was dragged forward by the fast one's messages */
    assert_true(nodes[0].last.wall_ms > nodes[0].clock.now_ms);
    for (int index = 0; index < NODE_COUNT; index++)
        kci_hlc_destroy(&nodes[index].hlc);
}

/* ---- text ---------------------------------------------------------------- */

typedef struct text_case {
    const char *text;
    int64_t wall_ms;
    uint32_t counter;
} text_case;

static const text_case texts_valid[] = {
    {"0.0", 0, 0},
    {"1.0", 1, 0},
    {"0.1", 0, 1},
    {"1700000000000.0", 1700000000000, 0},
    {"1700000000000.42", 1700000000000, 42},
    {"1700000000000.4294967295", 1700000000000, UINT32_MAX},
    {"281474976710655.0", KCI_HLC_WALL_MS_MAX, 0},
    {"281474976710655.4294967295", KCI_HLC_WALL_MS_MAX, UINT32_MAX},
};

static const char *const texts_invalid[] = {
    "",
    ".",
    "1",
    "1.",
    ".1",
    "01.0",
    "00.0",
    "1.01",
    "1.00",
    "-1.0",
    "+1.0",
    "1.-1",
    "1.+1",
    "1.0.0",
    "1..0",
    " 1.0",
    "1.0 ",
    "1 .0",
    "1. 0",
    "1.0\n",
    "1.0\r\n",
    "1,0",
    "1e3.0",
    "0x10.0",
    "1.4294967296",
    "1.99999999999",
    "281474976710656.0",
    "999999999999999.0",
    "1000000000000000.0",
    "99999999999999999999.0",
    "1700000000000.42a",
    "a1700000000000.42",
    "\xef\xbc\x91.0", /* a full-width digit */
    "1234567890123.1234567890123456789",
};

static void test_text_valid(void **state)
{
    (void)state;
    for (size_t index = 0; index < sizeof texts_valid / sizeof texts_valid[0]; index++) {
        const text_case *row = &texts_valid[index];
        kci_hlc_timestamp parsed;
        if (!kci_hlc_parse(row->text, strlen(row->text), &parsed))
            fail_msg("refused \"%s\"", row->text);
        expect_timestamp(&parsed, row->wall_ms, row->counter);
        char text[KCI_HLC_TEXT_BYTES_MAX];
        assert_int_equal(kci_hlc_format(&parsed, text), strlen(row->text));
        assert_string_equal(text, row->text);
    }
}

static void test_text_invalid(void **state)
{
    (void)state;
    kci_hlc_timestamp parsed;
    for (size_t index = 0; index < sizeof texts_invalid / sizeof texts_invalid[0]; index++) {
        const char *text = texts_invalid[index];
        if (kci_hlc_parse(text, strlen(text), &parsed)) fail_msg("parsed \"%s\"", text);
    }
    assert_false(kci_hlc_parse(NULL, 3, &parsed));
    /* the length decides, not a NUL: "1.0" cut short, and an embedded NUL */
    assert_false(kci_hlc_parse("1.0", 2, &parsed));
    assert_false(kci_hlc_parse("1\0.0", 4, &parsed));
    assert_false(kci_hlc_parse("1.0\0", 4, &parsed));
    /* every prefix that ends before the counter's first digit */
    const char *good = "1700000000000.42";
    for (size_t length = 0; length <= 14; length++)
        assert_false(kci_hlc_parse(good, length, &parsed));
    assert_true(kci_hlc_parse(good, 15, &parsed));
    expect_timestamp(&parsed, 1700000000000, 4);
}

/* Format then parse for timestamps from a real clock and random values. */
static void test_text_round_trip(void **state)
{
    (void)state;
    for (int index = 0; index < 100000; index++) {
        kci_hlc_timestamp timestamp = {
            .wall_ms =
                (int64_t)(((uint64_t)random_below(UINT32_MAX) << 16) ^ random_below(1u << 16)),
            .counter = index % 7 == 0 ? 0 : random_below(UINT32_MAX),
        };
        char text[KCI_HLC_TEXT_BYTES_MAX];
        size_t length = kci_hlc_format(&timestamp, text);
        assert_int_equal(length, strlen(text));
        kci_hlc_timestamp parsed;
        assert_true(kci_hlc_parse(text, length, &parsed));
        assert_int_equal(kci_hlc_compare(&parsed, &timestamp), 0);
    }
}

static void test_compare(void **state)
{
    (void)state;
    kci_hlc_timestamp a = {10, 5}, b = {10, 6}, c = {11, 0};
    assert_true(kci_hlc_compare(&a, &b) < 0);
    assert_true(kci_hlc_compare(&b, &a) > 0);
    assert_true(kci_hlc_compare(&b, &c) < 0);
    assert_int_equal(kci_hlc_compare(&a, &a), 0);
}

/* ---- threads and the process clock --------------------------------------- */

typedef struct thread_work {
    kci_hlc *hlc;
    kci_hlc_timestamp *events;
    size_t ordered_count;
} thread_work;

static void *thread_events(void *argument)
{
    thread_work *work = argument;
    for (size_t index = 0; index < THREAD_EVENTS; index++) {
        kci_hlc_now(work->hlc, &work->events[index]);
        if (index == 0 || kci_hlc_compare(&work->events[index - 1], &work->events[index]) < 0)
            work->ordered_count++;
    }
    return NULL;
}

static int timestamp_sort_compare(const void *a, const void *b)
{
    return kci_hlc_compare(a, b);
}

static void test_threads_process_clock(void **state)
{
    (void)state;
    kci_hlc *hlc = kci_process_hlc();
    assert_ptr_equal(hlc, kci_process_hlc());
    size_t total = (size_t)THREAD_COUNT * THREAD_EVENTS;
    kci_hlc_timestamp *events = calloc(total, sizeof *events);
    assert_non_null(events);
    pthread_t threads[THREAD_COUNT];
    thread_work works[THREAD_COUNT];
    int64_t before_ms = kci_clock_real_ms(NULL);
    for (int index = 0; index < THREAD_COUNT; index++) {
        works[index] = (thread_work){.hlc = hlc, .events = events + index * THREAD_EVENTS};
        assert_int_equal(pthread_create(&threads[index], NULL, thread_events, &works[index]), 0);
    }
    for (int index = 0; index < THREAD_COUNT; index++) {
        assert_int_equal(pthread_join(threads[index], NULL), 0);
        assert_int_equal(works[index].ordered_count, THREAD_EVENTS);
    }
    int64_t after_ms = kci_clock_real_ms(NULL);
    qsort(events, total, sizeof *events, timestamp_sort_compare);
    for (size_t index = 1; index < total; index++)
        if (kci_hlc_compare(&events[index - 1], &events[index]) == 0) fail_msg("duplicate");
    assert_true(events[0].wall_ms >= before_ms);
    assert_true(events[total - 1].wall_ms <= after_ms);
    free(events);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_now_clock_backwards),
        cmocka_unit_test(test_observe_rules),
        cmocka_unit_test(test_counter_carry),
        cmocka_unit_test(test_drift_refused),
        cmocka_unit_test(test_three_skewed_nodes),
        cmocka_unit_test(test_text_valid),
        cmocka_unit_test(test_text_invalid),
        cmocka_unit_test(test_text_round_trip),
        cmocka_unit_test(test_compare),
        cmocka_unit_test(test_threads_process_clock),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
