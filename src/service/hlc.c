/* hlc.c - the hybrid logical clock (see hlc.h; Kulkarni, Demirbas et al.,
 * "Logical Physical Clocks", OPODIS 2014).
 *
 * A timestamp is (l, c): l, the wall ms, is the largest physical time this
 * node has heard of (its own clock or a received timestamp's), and c counts
 * events that share the same l. With pt the local clock reading:
 *   local or send:  l' = max(l, pt);          c' = (l' == l) ? c + 1 : 0
 *   receive (m):    l' = max(l, m.l, pt);
 *                   c' = l' == l == m.l ? max(c, m.c) + 1
 *                      : l' == l        ? c + 1
 *                      : l' == m.l      ? m.c + 1
 *                      :                  0
 * so every new timestamp is greater than the node's previous one and than the
 * received one, whatever the wall clock does. A counter that would pass
 * UINT32_MAX carries into l (l + 1, c 0), which keeps the order and is the
 * same choice uuid.c makes for its counter.
 *
 * Drift bound: a received l more than drift_ms_max ahead of pt is refused
 * (KC_ERR_BAD_HEADER) and leaves the clock untouched, so one node with a wild
 * clock (or a forged header) cannot drag every clock into the future.
 *
 * Text form: "<l>.<c>" in decimal without sign or leading zeros ("0" alone is
 * the one zero), l at most KCI_HLC_WALL_MS_MAX, c at most UINT32_MAX. The
 * parser accepts exactly what the formatter writes, so format(parse(t)) == t.
 * Like uuid.c's, it takes a whole value (at most KCI_HLC_TEXT_BYTES_MAX - 1
 * bytes, never read past text_len) in one pass, not as a resumable machine.
 *
 * Limits: one mutex per clock; the clock callback runs under it. A wall clock
 * before 1970 reads as 0 and one past KCI_HLC_WALL_MS_MAX as that bound. */
#include "service/hlc.h"

#include <assert.h>
#include <inttypes.h>
#include <time.h>

#include "common/clock.h"
#include "service/last_error.h"

enum {
    HLC_WALL_DIGITS_MAX = 15,    /* KCI_HLC_WALL_MS_MAX = 281474976710655 */
    HLC_COUNTER_DIGITS_MAX = 10, /* UINT32_MAX = 4294967295 */
};

static kci_hlc process_hlc;
static pthread_once_t process_hlc_once = PTHREAD_ONCE_INIT;

int64_t kci_clock_real_ms(void *context)
{
    (void)context;
    return kci_wall_ms();
}

void kci_hlc_init(kci_hlc *hlc, kci_clock_ms clock, void *clock_context, int64_t drift_ms_max)
{
    assert(hlc != NULL && drift_ms_max >= 0);
    pthread_mutex_init(&hlc->lock, NULL);
    hlc->last.wall_ms = 0;
    hlc->last.counter = 0;
    hlc->clock = clock != NULL ? clock : kci_clock_real_ms;
    hlc->clock_context = clock_context;
    if (drift_ms_max == 0) drift_ms_max = KCI_HLC_DRIFT_MS_DEFAULT;
    /* pt + drift_ms_max must not overflow */
    hlc->drift_ms_max = drift_ms_max < KCI_HLC_WALL_MS_MAX ? drift_ms_max : KCI_HLC_WALL_MS_MAX;
}

void kci_hlc_destroy(kci_hlc *hlc)
{
    assert(hlc != NULL);
    pthread_mutex_destroy(&hlc->lock);
}

static void process_hlc_init(void)
{
    kci_hlc_init(&process_hlc, NULL, NULL, KCI_HLC_DRIFT_MS_DEFAULT);
}

kci_hlc *kci_process_hlc(void)
{
    pthread_once(&process_hlc_once, process_hlc_init);
    return &process_hlc;
}

static bool timestamp_valid(const kci_hlc_timestamp *timestamp)
{
    return timestamp->wall_ms >= 0 && timestamp->wall_ms <= KCI_HLC_WALL_MS_MAX;
}

/* The physical clock, clamped into the representable range. Lock held. */
static int64_t physical_ms(kci_hlc *hlc)
{
    int64_t pt = hlc->clock(hlc->clock_context);
    if (pt < 0) return 0;
    if (pt > KCI_HLC_WALL_MS_MAX) return KCI_HLC_WALL_MS_MAX;
    return pt;
}

/* (wall, counter + 1), carrying into wall when the counter is full. */
static kci_hlc_timestamp timestamp_next(int64_t wall_ms, uint32_t counter)
{
    kci_hlc_timestamp next = {.wall_ms = wall_ms, .counter = counter + 1};
    if (counter == UINT32_MAX) {
        next.wall_ms = wall_ms + 1;
        next.counter = 0;
    }
    assert(next.wall_ms <= KCI_HLC_WALL_MS_MAX); /* 2^32 events per ms in year 10889 */
    return next;
}

void kci_hlc_now(kci_hlc *hlc, kci_hlc_timestamp *out)
{
    assert(hlc != NULL && out != NULL);
    pthread_mutex_lock(&hlc->lock);
    kci_hlc_timestamp before = hlc->last;
    int64_t pt = physical_ms(hlc);
    if (pt > before.wall_ms) {
        hlc->last.wall_ms = pt;
        hlc->last.counter = 0;
    } else {
        hlc->last = timestamp_next(before.wall_ms, before.counter);
    }
    *out = hlc->last;
    pthread_mutex_unlock(&hlc->lock);
    assert(kci_hlc_compare(out, &before) > 0);
}

/* The receive rule of the file comment, as a pure function. */
static kci_hlc_timestamp timestamp_merge(const kci_hlc_timestamp *local,
                                         const kci_hlc_timestamp *remote, int64_t pt)
{
    int64_t wall_ms = local->wall_ms;
    if (remote->wall_ms > wall_ms) wall_ms = remote->wall_ms;
    if (pt > wall_ms) wall_ms = pt;
    if (wall_ms == local->wall_ms && wall_ms == remote->wall_ms) {
        uint32_t counter = local->counter > remote->counter ? local->counter : remote->counter;
        return timestamp_next(wall_ms, counter);
    }
    if (wall_ms == local->wall_ms) return timestamp_next(wall_ms, local->counter);
    if (wall_ms == remote->wall_ms) return timestamp_next(wall_ms, remote->counter);
    return (kci_hlc_timestamp){.wall_ms = wall_ms, .counter = 0};
}

kc_err kci_hlc_observe(kci_hlc *hlc, const kci_hlc_timestamp *remote, kci_hlc_timestamp *out)
{
    assert(hlc != NULL && remote != NULL && out != NULL);
    if (!timestamp_valid(remote))
        return kci_fail(KC_ERR_INVALID_ARGUMENT, "hlc: wall time %" PRId64 " out of range",
                        remote->wall_ms);
    pthread_mutex_lock(&hlc->lock);
    int64_t pt = physical_ms(hlc);
    if (remote->wall_ms - pt > hlc->drift_ms_max) {
        int64_t drift_ms_max = hlc->drift_ms_max;
        pthread_mutex_unlock(&hlc->lock);
        return kci_fail(KC_ERR_BAD_HEADER,
                        "Kc-Ts: %" PRId64 " ms ahead of the local clock (at most %" PRId64
                        " ms allowed)",
                        remote->wall_ms - pt, drift_ms_max);
    }
    kci_hlc_timestamp before = hlc->last;
    hlc->last = timestamp_merge(&before, remote, pt);
    *out = hlc->last;
    pthread_mutex_unlock(&hlc->lock);
    assert(kci_hlc_compare(out, &before) > 0 && kci_hlc_compare(out, remote) > 0);
    return KC_OK;
}

int kci_hlc_compare(const kci_hlc_timestamp *a, const kci_hlc_timestamp *b)
{
    assert(a != NULL && b != NULL);
    if (a->wall_ms != b->wall_ms) return a->wall_ms < b->wall_ms ? -1 : 1;
    if (a->counter != b->counter) return a->counter < b->counter ? -1 : 1;
    return 0;
}

/* value in decimal at text, no NUL; returns the digit count. Stamping a
 * message formats two timestamps per round trip, so no snprintf here. */
static size_t decimal_format(uint64_t value, char *text)
{
    char reversed[HLC_WALL_DIGITS_MAX + HLC_COUNTER_DIGITS_MAX];
    size_t digit_count = 0;
    do {
        assert(digit_count < sizeof(reversed));
        reversed[digit_count++] = (char)('0' + value % 10);
        value /= 10;
    } while (value != 0);
    for (size_t index = 0; index < digit_count; index++)
        text[index] = reversed[digit_count - 1 - index];
    return digit_count;
}

size_t kci_hlc_format(const kci_hlc_timestamp *timestamp, char text[KCI_HLC_TEXT_BYTES_MAX])
{
    assert(timestamp != NULL && text != NULL && timestamp_valid(timestamp));
    size_t length = decimal_format((uint64_t)timestamp->wall_ms, text);
    text[length++] = '.';
    length += decimal_format(timestamp->counter, text + length);
    assert(length < KCI_HLC_TEXT_BYTES_MAX); /* at most 15 + 1 + 10 */
    text[length] = '\0';
    return length;
}

/* Canonical unsigned decimal of 1..digits_max digits, no leading zero. */
static bool decimal_parse(const char *text, size_t text_len, size_t digits_max, uint64_t value_max,
                          uint64_t *out)
{
    if (text_len == 0 || text_len > digits_max) return false;
    if (text[0] == '0' && text_len > 1) return false;
    uint64_t value = 0;
    for (size_t index = 0; index < text_len; index++) {
        if (text[index] < '0' || text[index] > '9') return false;
        value = value * 10 + (uint64_t)(text[index] - '0'); /* < 10^15 * 10: no overflow */
    }
    if (value > value_max) return false;
    *out = value;
    return true;
}

bool kci_hlc_parse(const char *text, size_t text_len, kci_hlc_timestamp *out)
{
    assert(out != NULL);
    if (text == NULL || text_len >= KCI_HLC_TEXT_BYTES_MAX) return false;
    size_t dot = 0;
    while (dot < text_len && text[dot] != '.')
        dot++;
    if (dot == text_len) return false;
    uint64_t wall_ms = 0, counter = 0;
    if (!decimal_parse(text, dot, HLC_WALL_DIGITS_MAX, (uint64_t)KCI_HLC_WALL_MS_MAX, &wall_ms))
        return false;
    if (!decimal_parse(text + dot + 1, text_len - dot - 1, HLC_COUNTER_DIGITS_MAX, UINT32_MAX,
                       &counter))
        return false;
    out->wall_ms = (int64_t)wall_ms;
    out->counter = (uint32_t)counter;
    assert(timestamp_valid(out));
    return true;
}
