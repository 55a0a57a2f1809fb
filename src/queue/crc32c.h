/* crc32c.h - CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), the
 * checksum of every log record. It detects all burst errors up to 32 bits
 * and is what ext4, iSCSI and SCTP use for the same job. Computed with the
 * SSE4.2 crc32 instruction when the CPU has it (checked once at run time),
 * else with slicing-by-8 tables: no dependency either way. */
#ifndef KCI_CRC32C_H
#define KCI_CRC32C_H

#include <stddef.h>
#include <stdint.h>

/* Continues crc over bytes; start with 0. crc32c("123456789") == 0xE3069283. */
uint32_t kci_crc32c(uint32_t crc, const void *bytes, size_t length);
/* The table path alone (the unit test checks both paths agree). */
uint32_t kci_crc32c_software(uint32_t crc, const void *bytes, size_t length);

#endif
