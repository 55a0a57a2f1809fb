/* uuid.c - UUIDv7 ids (RFC 9562 section 5.7), strictly increasing per process.
 *
 * Layout, most significant byte first:
 *   bytes 0-5   unix_ts_ms   48-bit big-endian Unix time in ms
 *   byte  6     ver | rand_a high nibble   (ver = 0111)
 *   byte  7     rand_a low byte            rand_a = a 12-bit counter
 *   byte  8     var | rand_b 6 bits        (var = 10)
 *   bytes 9-15  rand_b 56 bits             random
 *
 * Monotonicity (RFC 9562 section 6.2, method 1, fixed-length dedicated
 * counter): rand_a is a counter. In a new millisecond it starts at a random
 * value below 2048 (the top bit is the RFC's rollover guard), so at least 2048
 * ids fit in each ms; the next id in the same ms (or after the wall clock
 * stepped back: the time used is max(now, last)) takes counter + 1. When the
 * counter passes 4095 the timestamp is advanced artificially by 1 ms and the
 * counter restarts, so ids stay strictly increasing as 128-bit big-endian
 * numbers, and their text compares the same way.
 *
 * Randomness: rand_b comes from getrandom(2) through a pool of
 * UUID_POOL_BYTES refilled under the generator lock, so one system call
 * serves hundreds of ids. A pthread_atfork handler empties the pool in a
 * child, so parent and child never hand out the same bytes. If getrandom
 * fails with anything but EINTR (a kernel without it), the pool falls back to
 * a splitmix64 stream seeded from the clocks, the pid and an address: ids
 * stay unique and ordered within the process, but are then guessable.
 *
 * Parsing: kci_uuid_parse takes a whole value (nats.c hands headers over
 * complete), so it is one bounded pass over exactly 36 bytes rather than a
 * resumable state machine; it reads no byte past text_len.
 *
 * Limits: one mutex serialises all threads (a few tens of ns uncontended);
 * under a sustained rate above ~2048 ids per ms the embedded time runs ahead
 * of the wall clock until the rate drops; times past KCI_UUID_TIME_MS_MAX
 * (year 10889) are not representable and are a bug (assertion). */
#include "service/uuid.h"
#include "common/clock.h"

#include <assert.h>
#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

enum {
    UUID_POOL_BYTES = 4096,
    UUID_RAND_B_BYTES = 8,            /* 62 bits used */
    UUID_COUNTER_MAX = 0xFFF,         /* rand_a is 12 bits */
    UUID_COUNTER_SEED_MASK = 0x7FF,   /* a fresh counter keeps its top bit 0 */
    UUID_GETRANDOM_ATTEMPTS_MAX = 64, /* EINTR retries before the fallback */
    UUID_VERSION = 7,
    UUID_DASH_0 = 8,
    UUID_DASH_1 = 13,
    UUID_DASH_2 = 18,
    UUID_DASH_3 = 23,
};

typedef struct uuid_generator {
    pthread_mutex_t lock;
    int64_t last_ms; /* the time in the last id; -1 before the first */
    uint32_t counter;
    size_t pool_used; /* bytes of pool handed out; UUID_POOL_BYTES: empty */
    uint64_t fallback_state;
    bool fallback; /* getrandom failed once: use splitmix64 from now on */
    uint8_t pool[UUID_POOL_BYTES];
} uuid_generator;

static uuid_generator generator = {
    .lock = PTHREAD_MUTEX_INITIALIZER,
    .last_ms = -1,
    .pool_used = UUID_POOL_BYTES,
};
static pthread_once_t generator_once = PTHREAD_ONCE_INIT;

/* ---- fork safety ---------------------------------------------------------- */

static void generator_before_fork(void)
{
    pthread_mutex_lock(&generator.lock);
}

static void generator_after_fork_parent(void)
{
    pthread_mutex_unlock(&generator.lock);
}

static void generator_after_fork_child(void)
{
    generator.pool_used = UUID_POOL_BYTES; /* the parent owns those bytes */
    generator.fallback_state = 0;          /* reseed with the child's pid */
    pthread_mutex_unlock(&generator.lock);
}

static void generator_init_once(void)
{
    /* Failure (ENOMEM) only loses the pool reset in children; ids stay unique
     * per process because every child still moves past its own counter. */
    (void)pthread_atfork(generator_before_fork, generator_after_fork_parent,
                         generator_after_fork_child);
}

/* ---- randomness ----------------------------------------------------------- */

static uint64_t splitmix64_next(uint64_t *state)
{
    uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static void pool_fill_fallback(uuid_generator *g)
{
    if (g->fallback_state == 0) {
        struct timespec real, monotonic;
        clock_gettime(CLOCK_REALTIME, &real);
        clock_gettime(CLOCK_MONOTONIC, &monotonic);
        g->fallback_state = (uint64_t)real.tv_nsec ^ ((uint64_t)real.tv_sec << 30) ^
                            (uint64_t)monotonic.tv_nsec ^ ((uint64_t)getpid() << 32) ^
                            (uint64_t)(uintptr_t)g;
    }
    for (size_t offset = 0; offset < UUID_POOL_BYTES; offset += sizeof(uint64_t)) {
        uint64_t word = splitmix64_next(&g->fallback_state);
        memcpy(g->pool + offset, &word, sizeof word);
    }
}

/* Refills the whole pool; called with the lock held. */
static void pool_fill(uuid_generator *g)
{
    size_t filled = 0;
    for (int attempt = 0; !g->fallback && filled < UUID_POOL_BYTES; attempt++) {
        ssize_t got = getrandom(g->pool + filled, UUID_POOL_BYTES - filled, 0);
        if (got > 0) {
            filled += (size_t)got;
        } else if ((got < 0 && errno != EINTR) || attempt >= UUID_GETRANDOM_ATTEMPTS_MAX) {
            g->fallback = true; /* no getrandom, or interrupted without end */
        }
    }
    if (g->fallback) pool_fill_fallback(g);
    g->pool_used = 0;
}

static void pool_take(uuid_generator *g, uint8_t *out, size_t count)
{
    assert(count <= UUID_POOL_BYTES);
    if (UUID_POOL_BYTES - g->pool_used < count) pool_fill(g);
    memcpy(out, g->pool + g->pool_used, count);
    g->pool_used += count;
    assert(g->pool_used <= UUID_POOL_BYTES);
}

static uint32_t counter_seed(uuid_generator *g)
{
    uint8_t bytes[2];
    pool_take(g, bytes, sizeof bytes);
    return (((uint32_t)bytes[0] << 8) | bytes[1]) & UUID_COUNTER_SEED_MASK;
}

/* ---- API ------------------------------------------------------------------ */

static int64_t clock_real_ms(void)
{
    return kci_wall_ms();
}

void kci_uuid_v7_at(kci_uuid *out, int64_t now_ms)
{
    assert(out != NULL);
    if (now_ms < 0) now_ms = 0;
    if (now_ms > KCI_UUID_TIME_MS_MAX) now_ms = KCI_UUID_TIME_MS_MAX;
    pthread_once(&generator_once, generator_init_once);

    uint8_t random_bytes[UUID_RAND_B_BYTES];
    pthread_mutex_lock(&generator.lock);
    if (now_ms > generator.last_ms) {
        generator.last_ms = now_ms;
        generator.counter = counter_seed(&generator);
    } else if (generator.counter < UUID_COUNTER_MAX) {
        generator.counter++;
    } else {
        generator.last_ms++; /* counter rollover: borrow the next ms */
        generator.counter = counter_seed(&generator);
    }
    int64_t time_ms = generator.last_ms;
    uint32_t counter = generator.counter;
    pool_take(&generator, random_bytes, sizeof random_bytes);
    pthread_mutex_unlock(&generator.lock);

    assert(time_ms >= now_ms && time_ms <= KCI_UUID_TIME_MS_MAX);
    assert(counter <= UUID_COUNTER_MAX);
    for (int index = 0; index < 6; index++)
        out->bytes[index] = (uint8_t)((uint64_t)time_ms >> (40 - 8 * index));
    out->bytes[6] = (uint8_t)((UUID_VERSION << 4) | (counter >> 8));
    out->bytes[7] = (uint8_t)(counter & 0xFF);
    out->bytes[8] = (uint8_t)(0x80 | (random_bytes[0] & 0x3F));
    memcpy(out->bytes + 9, random_bytes + 1, 7);
}

void kci_uuid_v7(kci_uuid *out)
{
    kci_uuid_v7_at(out, clock_real_ms());
}

void kci_uuid_format(const kci_uuid *uuid, char text[KC_UUID_TEXT_BYTES + 1])
{
    static const char hex[] = "0123456789abcdef";
    assert(uuid != NULL && text != NULL);
    size_t position = 0;
    for (int index = 0; index < 16; index++) {
        if (index == 4 || index == 6 || index == 8 || index == 10) text[position++] = '-';
        text[position++] = hex[uuid->bytes[index] >> 4];
        text[position++] = hex[uuid->bytes[index] & 0xF];
    }
    assert(position == KC_UUID_TEXT_BYTES);
    text[position] = '\0';
}

/* A hex digit's value + 1, 0 for any other byte: one load per digit. Every
 * request and reply carries two or three ids to parse. */
static const uint8_t HEX_VALUE_PLUS_ONE[256] = {
    ['0'] = 1,  ['1'] = 2,  ['2'] = 3,  ['3'] = 4,  ['4'] = 5,  ['5'] = 6,  ['6'] = 7,  ['7'] = 8,
    ['8'] = 9,  ['9'] = 10, ['a'] = 11, ['b'] = 12, ['c'] = 13, ['d'] = 14, ['e'] = 15, ['f'] = 16,
    ['A'] = 11, ['B'] = 12, ['C'] = 13, ['D'] = 14, ['E'] = 15, ['F'] = 16,
};

/* Where each byte's two digits start in the 8-4-4-4-12 form. */
static const uint8_t BYTE_POSITIONS[16] = {0,  2,  4,  6,  9,  11, 14, 16,
                                           19, 21, 24, 26, 28, 30, 32, 34};

bool kci_uuid_parse(const char *text, size_t text_len, kci_uuid *out)
{
    assert(out != NULL);
    if (text == NULL || text_len != KC_UUID_TEXT_BYTES) return false;
    if (text[UUID_DASH_0] != '-' || text[UUID_DASH_1] != '-' || text[UUID_DASH_2] != '-' ||
        text[UUID_DASH_3] != '-')
        return false;
    kci_uuid parsed;
    size_t byte_index = 0;
    for (; byte_index < sizeof parsed.bytes; byte_index++) {
        const unsigned char *digits = (const unsigned char *)text + BYTE_POSITIONS[byte_index];
        unsigned high = HEX_VALUE_PLUS_ONE[digits[0]];
        unsigned low = HEX_VALUE_PLUS_ONE[digits[1]];
        if (high == 0 || low == 0) return false;
        parsed.bytes[byte_index] = (uint8_t)(((high - 1) << 4) | (low - 1));
    }
    assert(byte_index == sizeof parsed.bytes);
    *out = parsed;
    return true;
}

int64_t kci_uuid_v7_time_ms(const kci_uuid *uuid)
{
    assert(uuid != NULL);
    uint64_t time_ms = 0;
    for (int index = 0; index < 6; index++)
        time_ms = (time_ms << 8) | uuid->bytes[index];
    assert(time_ms <= (uint64_t)KCI_UUID_TIME_MS_MAX);
    return (int64_t)time_ms;
}

void kci_uuid_v7_text(char text[KC_UUID_TEXT_BYTES + 1])
{
    kci_uuid uuid;
    kci_uuid_v7(&uuid);
    kci_uuid_format(&uuid, text);
}

int kci_uuid_version(const kci_uuid *uuid)
{
    assert(uuid != NULL);
    return uuid->bytes[6] >> 4;
}

bool kci_uuid_variant_rfc(const kci_uuid *uuid)
{
    assert(uuid != NULL);
    return (uuid->bytes[8] & 0xC0) == 0x80;
}

bool kci_uuid_is_nil_or_max(const kci_uuid *uuid)
{
    assert(uuid != NULL);
    bool nil = true, max = true;
    for (size_t index = 0; index < sizeof uuid->bytes; index++) {
        nil = nil && uuid->bytes[index] == 0x00;
        max = max && uuid->bytes[index] == 0xFF;
    }
    return nil || max;
}

int kci_uuid_compare(const kci_uuid *a, const kci_uuid *b)
{
    assert(a != NULL && b != NULL);
    return memcmp(a->bytes, b->bytes, sizeof a->bytes);
}
