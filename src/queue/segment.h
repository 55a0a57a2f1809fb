/* segment.h - the log's files: a directory of segments named by their
 * number, "<20 digits>.kcq" (00000000000000000001.kcq first), so that a
 * plain `ls` lists them in log order. A position in the log is the segment
 * number and the byte offset in it, packed into one 64-bit value. */
#ifndef KCI_SEGMENT_H
#define KCI_SEGMENT_H

#include <limits.h>
#include <stddef.h>
#include <stdint.h>

#include "kingcobra/err.h"

#define KCI_SEGMENT_SUFFIX ".kcq"
#define KCI_LOCK_FILE_NAME "LOCK"

enum {
    KCI_SEGMENT_NAME_DIGITS = 20,
    KCI_SEGMENT_COUNT_MAX = 1 << 20, /* files listed in one directory */
    KCI_SEGMENT_BYTES_MIN = 64 * 1024,
    KCI_SEGMENT_BYTES_DEFAULT = 64 * 1024 * 1024,
    KCI_SEGMENT_BYTES_MAX = 1024 * 1024 * 1024, /* offsets are 32-bit */
};

typedef uint64_t kci_position;

static inline kci_position kci_position_make(uint32_t segment, uint32_t offset)
{
    return ((uint64_t)segment << 32) | offset;
}
static inline uint32_t kci_position_segment(kci_position position)
{
    return (uint32_t)(position >> 32);
}
static inline uint32_t kci_position_offset(kci_position position)
{
    return (uint32_t)position;
}

/* "<directory>/<number>.kcq"; false if it does not fit. */
int kci_segment_path(char path[PATH_MAX], const char *directory, uint32_t number);
/* The segment numbers in directory, ascending (malloc'd, *count of them).
 * Other files are ignored. A missing directory is KC_ERR_NOT_FOUND. */
kc_err kci_segment_list(const char *directory, uint32_t **numbers, size_t *count, char *error,
                        size_t error_size);
/* mkdir -p. */
kc_err kci_directory_make(const char *directory, char *error, size_t error_size);

#endif
