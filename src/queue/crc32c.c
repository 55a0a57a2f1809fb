/* crc32c.c - CRC-32C (see crc32c.h). The hardware path handles 8 bytes per
 * instruction; the table path (slicing-by-8) is about a third as fast and is
 * also the reference the unit test compares the hardware path against. */
#include "crc32c.h"

#include <pthread.h>
#include <stdbool.h>
#include <string.h>

#define POLYNOMIAL 0x82F63B78u

enum { TABLE_COUNT = 8, TABLE_ENTRIES = 256 };

static uint32_t tables[TABLE_COUNT][TABLE_ENTRIES];
static bool hardware;
static pthread_once_t once = PTHREAD_ONCE_INIT;

static void init_tables(void)
{
    for (uint32_t byte = 0; byte < TABLE_ENTRIES; byte++) {
        uint32_t crc = byte;
        for (int bit = 0; bit < 8; bit++)
            crc = (crc >> 1) ^ (POLYNOMIAL & (0u - (crc & 1u)));
        tables[0][byte] = crc;
    }
    for (uint32_t byte = 0; byte < TABLE_ENTRIES; byte++)
        for (int table = 1; table < TABLE_COUNT; table++)
            tables[table][byte] =
                (tables[table - 1][byte] >> 8) ^ tables[0][tables[table - 1][byte] & 0xFF];
#if defined(__x86_64__)
    __builtin_cpu_init();
    hardware = __builtin_cpu_supports("sse4.2");
#endif
}

static uint32_t crc_software(uint32_t crc, const uint8_t *bytes, size_t length)
{
    while (length >= 8) {
        uint64_t word;
        memcpy(&word, bytes, sizeof word);
        word ^= crc; /* little-endian: the low bytes meet the crc */
        crc = tables[7][word & 0xFF] ^ tables[6][(word >> 8) & 0xFF] ^
              tables[5][(word >> 16) & 0xFF] ^ tables[4][(word >> 24) & 0xFF] ^
              tables[3][(word >> 32) & 0xFF] ^ tables[2][(word >> 40) & 0xFF] ^
              tables[1][(word >> 48) & 0xFF] ^ tables[0][word >> 56];
        bytes += 8;
        length -= 8;
    }
    while (length-- > 0)
        crc = (crc >> 8) ^ tables[0][(crc ^ *bytes++) & 0xFF];
    return crc;
}

#if defined(__x86_64__)
__attribute__((target("sse4.2"))) static uint32_t crc_hardware(uint32_t crc, const uint8_t *bytes,
                                                               size_t length)
{
    uint64_t crc64 = crc;
    while (length >= 8) {
        uint64_t word;
        memcpy(&word, bytes, sizeof word);
        crc64 = __builtin_ia32_crc32di(crc64, word);
        bytes += 8;
        length -= 8;
    }
    uint32_t crc32 = (uint32_t)crc64;
    while (length-- > 0)
        crc32 = __builtin_ia32_crc32qi(crc32, *bytes++);
    return crc32;
}
#endif

uint32_t kci_crc32c(uint32_t crc, const void *bytes, size_t length)
{
    pthread_once(&once, init_tables);
    crc = ~crc;
#if defined(__x86_64__)
    if (hardware) return ~crc_hardware(crc, bytes, length);
#endif
    return ~crc_software(crc, bytes, length);
}

uint32_t kci_crc32c_software(uint32_t crc, const void *bytes, size_t length)
{
    pthread_once(&once, init_tables);
    return ~crc_software(~crc, bytes, length);
}
