/* fault.h - fault injection through the I/O seam (src/common/io.h), in
 * SQLite's style: a table that counts every call, and can fail the Nth one
 * with one error (EIO, ENOSPC, EINTR, ENOMEM, or a short write).
 *
 * A test runs its scenario once with nothing armed to learn how many calls
 * it makes and of which kinds, then once per (N, error) with call N failed
 * (fault_sweep does the loop). Scenarios with threads (the log's group
 * commit) do not make the same calls every run; so the error tried for N
 * is one that call N's kind can return in the counting run, and when call
 * N of a faulty run is of another kind that cannot return it, EIO (ENOMEM
 * for an allocation) is used instead. The sweep stops at the first N that
 * no run reaches.
 *
 * Crash simulation: the table remembers, per file, the byte ranges written
 * since the file's last successful fsync/fdatasync; fault_crash zeroes
 * them (what a power cut leaves of a write that never reached the disk in a
 * preallocated file; a range at the end of the file is cut off instead).
 * A file open created is removed by fault_crash unless its directory was
 * synced (fsync of the directory) since. Then anything a component
 * acknowledged without a sync is found missing. Known limits: a removal
 * (unlink) whose directory was not synced is not undone; directories made
 * with mkdir are kept. */
#ifndef KC_TEST_FAULT_H
#define KC_TEST_FAULT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum fault_call {
    FAULT_OPEN,
    FAULT_OPENAT,
    FAULT_CLOSE,
    FAULT_PWRITE,
    FAULT_WRITE,
    FAULT_FDATASYNC,
    FAULT_FSYNC,
    FAULT_FTRUNCATE,
    FAULT_FALLOCATE,
    FAULT_RENAME,
    FAULT_UNLINK,
    FAULT_MALLOC,
    FAULT_CALLOC,
    FAULT_CALL_KINDS,
} fault_call;

enum {
    FAULT_SHORT_WRITE = -1, /* an "error": pwrite/write write half and say so */
    FAULT_ERRORS_MAX = 4,   /* errors one kind of call can return, here */
    FAULT_CALLS_MAX = 4096, /* calls of one scenario remembered by kind */
};

/* Installs the counting table (counts reset, nothing armed, nothing dirty). */
void fault_install(void);
/* Back to the real table. */
void fault_remove(void);
/* Fail call number call_number (1-based, counted from install) with error
 * (an errno or FAULT_SHORT_WRITE). */
void fault_arm(uint64_t call_number, int error);
uint64_t fault_call_count(void);
/* The kind of call number call_number (1-based) in this run. */
fault_call fault_call_kind(uint64_t call_number);
/* Whether the armed fault fired; its kind and error. */
bool fault_fired(fault_call *kind, int *error);
/* The errors kind can return, into errors; how many. */
size_t fault_errors(fault_call kind, int errors[FAULT_ERRORS_MAX]);
const char *fault_call_name(fault_call kind);
const char *fault_error_name(int error);
/* Drops what was written and not synced (see above); call after
 * fault_remove, with the files closed. */
void fault_crash(void);
/* Open descriptors of this process (to check a run leaked none). */
int fault_open_descriptors(void);

/* One run of a scenario; error is 0 for the counting run. */
typedef void (*fault_scenario)(void *context, uint64_t call_number, int error);
typedef struct fault_sweep_stats {
    uint64_t calls_counted; /* in the counting run */
    uint64_t runs;          /* faulty runs */
    uint64_t fired;         /* runs whose fault fired */
    uint64_t stride;        /* every stride-th N was tried */
    double seconds;         /* the whole sweep */
} fault_sweep_stats;
/* Runs scenario once to count, then for N = 1, 1 + stride, ... with each
 * error call N's kind can return, until a run does not reach N. The
 * scenario installs the table (fault_install, fault_arm) and checks. */
void fault_sweep(fault_scenario scenario, void *context, uint64_t stride, fault_sweep_stats *stats);
/* "# <name>: <calls> calls counted, <runs> faulty runs (...), <time>", on
 * stdout (the figures docs/queue.md quotes). */
void fault_sweep_print(const char *name, const fault_sweep_stats *stats);

#endif
