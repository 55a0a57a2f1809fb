/* hash.c - kci_hash_bytes: a multiply-fold hash (see hash.h).
 *
 * Design: the core step multiplies two 64-bit words into a 128-bit product
 * and folds the halves together with xor, which spreads every input bit over
 * the whole result in one multiply. Each step absorbs 16 input bytes; the
 * last 1 to 16 bytes are read with two overlapping loads (or three single
 * bytes below 4), so there is no per-byte loop. One lane of each step is
 * keyed by the seed and the other by the running state, so a block cannot
 * zero the state without knowing both; a rotated copy of the state lane is
 * xored back in so that even a zero product keeps what came before. The
 * length enters the final step, so inputs that differ only by trailing zero
 * bytes still differ. The structure follows the idea of wyhash; the code and
 * constants are our own.
 *
 * Limits: reads exactly [data, data + len); loads are memcpy so unaligned
 * input is fine. Results differ between little- and big-endian machines. */
#include "common/hash.h"

#include <assert.h>
#include <string.h>

/* Odd constants with 32 of 64 bits set, drawn at random for this file. */
#define HASH_K0 UINT64_C(0xce62731a50e4cbcd)
#define HASH_K1 UINT64_C(0xec7abb7818c811c7)
#define HASH_K2 UINT64_C(0xb86d3ed891d941c3)
#define HASH_K3 UINT64_C(0x8868ac83d17fd24f)
#define HASH_K4 UINT64_C(0xa5d6ad9a170a0d3b)
#define HASH_SEED_DEFAULT UINT64_C(0x3c9b0a8d5e71f264)

enum {
    HASH_BLOCK_BYTES = 16,
    HASH_STATE_ROTATE_BITS = 23,
};

static uint64_t hash_load64(const unsigned char *bytes)
{
    uint64_t word;
    memcpy(&word, bytes, sizeof word);
    return word;
}

static uint64_t hash_load32(const unsigned char *bytes)
{
    uint32_t word;
    memcpy(&word, bytes, sizeof word);
    return word;
}

/* The 128-bit product of a and b with its halves folded by xor. */
static uint64_t hash_fold(uint64_t a, uint64_t b)
{
#ifdef __SIZEOF_INT128__
    __extension__ typedef unsigned __int128 hash_u128;
    hash_u128 product = (hash_u128)a * b;
    return (uint64_t)product ^ (uint64_t)(product >> 64);
#else
    uint64_t a_low = a & 0xffffffffu, a_high = a >> 32;
    uint64_t b_low = b & 0xffffffffu, b_high = b >> 32;
    uint64_t low_low = a_low * b_low, high_low = a_high * b_low;
    uint64_t low_high = a_low * b_high, high_high = a_high * b_high;
    uint64_t cross = (low_low >> 32) + (high_low & 0xffffffffu) + low_high;
    uint64_t high = high_high + (high_low >> 32) + (cross >> 32);
    uint64_t low = (cross << 32) | (low_low & 0xffffffffu);
    return low ^ high;
#endif
}

/* One step: keyed lane, state lane, and the state lane kept if the product
 * happens to be zero. */
static uint64_t hash_step(uint64_t keyed, uint64_t stated)
{
    uint64_t rotated =
        (stated << HASH_STATE_ROTATE_BITS) | (stated >> (64 - HASH_STATE_ROTATE_BITS));
    return hash_fold(keyed, stated) ^ rotated;
}

uint64_t kci_hash_bytes_seeded(const void *data, size_t len, uint64_t seed)
{
    assert(data != NULL || len == 0);
    const unsigned char *bytes = data;
    uint64_t state = seed ^ HASH_K0;
    size_t remaining = len;
    while (remaining > HASH_BLOCK_BYTES) {
        state = hash_step(hash_load64(bytes) ^ seed ^ HASH_K1, hash_load64(bytes + 8) ^ state);
        bytes += HASH_BLOCK_BYTES;
        remaining -= HASH_BLOCK_BYTES;
    }
    assert(remaining <= HASH_BLOCK_BYTES);
    uint64_t first = 0;
    uint64_t last = 0;
    if (remaining >= 8) {
        first = hash_load64(bytes);
        last = hash_load64(bytes + remaining - 8);
    } else if (remaining >= 4) {
        first = hash_load32(bytes);
        last = hash_load32(bytes + remaining - 4);
    } else if (remaining > 0) {
        first =
            (uint64_t)bytes[0] << 16 | (uint64_t)bytes[remaining / 2] << 8 | bytes[remaining - 1];
    }
    state = hash_step(first ^ seed ^ HASH_K2, last ^ state);
    return hash_fold(state ^ HASH_K3, (uint64_t)len ^ HASH_K4);
}

uint64_t kci_hash_bytes(const void *data, size_t len)
{
    return kci_hash_bytes_seeded(data, len, HASH_SEED_DEFAULT);
}
