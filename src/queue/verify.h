/* verify.h - what `kcobra queue verify` checks beyond each record's
 * checksum: that the records agree with one another, as one writer's log
 * does.
 *
 * Checksums catch damaged bytes. They cannot catch whole, valid records
 * that are gone or out of place, which is what two writers on one
 * directory leave behind: each overwrites the other's records with its
 * own, and every record still passes its checksum. So, over the whole log:
 *   - every reply, redelivery, requeue and tombstone has its request record, before
 *     it. The persister dispatches only acknowledged requests (and records
 *     a reply or marker only for a request it knows), so a reference to an
 *     id with no request record is an acknowledged request that is missing;
 *     one before its request is out of order;
 *   - no id is stored twice as a request (submits are idempotent by id),
 *     and no request has two replies (a second one is dropped);
 *   - no segment number is missing between the first and the last
 *     (retention removes only the oldest segments).
 * After retention (the first segment is not number 1) a reply or tombstone
 * can outlive its request's removed segment; such a reference is counted
 * (references_after_retention), not reported. A reference to a missing id
 * that is never resolved (no reply, no tombstone) is still a problem:
 * retention removes only segments whose requests are all resolved.
 * A requeue marker after a tombstone makes the request pending again.
 * Observed requests and replies (record_requests) are kept, not
 * acknowledged: they are not checked.
 *
 * Memory: one index entry per id (about 56 bytes), like the persister's. */
#ifndef KCI_VERIFY_H
#define KCI_VERIFY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "index.h"
#include "record.h"
#include "recovery.h"

enum {
    KCI_VERIFY_PROBLEMS_MAX = 32, /* kept to be named; more are counted */
    KCI_VERIFY_PROBLEM_TEXT_BYTES = 256,
};

typedef enum kci_verify_problem_kind {
    KCI_VERIFY_REQUEST_MISSING = 1,  /* position: the first record referring to it */
    KCI_VERIFY_OUT_OF_ORDER = 2,     /* position: the reference; other: its later request */
    KCI_VERIFY_REQUEST_TWICE = 3,    /* position: the second copy; other: the first */
    KCI_VERIFY_REPLY_TWICE = 4,      /* position: the second reply; other: the first */
    KCI_VERIFY_SEGMENTS_MISSING = 5, /* segment: the first missing number; count: how many */
} kci_verify_problem_kind;

typedef struct kci_verify_problem {
    kci_verify_problem_kind kind;
    kci_uuid id;
    kci_record_kind reference; /* REQUEST_MISSING, OUT_OF_ORDER: the referring record's kind */
    kci_position position;
    kci_position other;
    uint32_t segment;
    uint32_t count;
} kci_verify_problem;

typedef struct kci_verify_result {
    uint64_t requests, replied, dead, pending; /* requests with a request record */
    uint64_t requeues;                         /* requeue markers (record.h) */
    uint64_t missing_requests;                 /* referred to, not found */
    uint64_t references_after_retention;       /* see above: not problems */
    uint64_t problem_count;                    /* all; the first ..._MAX are in problems */
    kci_verify_problem problems[KCI_VERIFY_PROBLEMS_MAX];
} kci_verify_result;

typedef struct kci_verify {
    kci_index index;
    kci_verify_result result;
} kci_verify;

/* false: out of memory. */
bool kci_verify_init(kci_verify *verify);
void kci_verify_destroy(kci_verify *verify);
/* A kci_scan_visit (context: the kci_verify); KC_ERR_NOMEM when the index
 * cannot grow. */
kc_err kci_verify_visit(void *context, const kci_record *record, kci_position position);
/* After the scan: the counts, the missing requests and the segment gaps. */
void kci_verify_finish(kci_verify *verify, const kci_scan_report *report);
/* One line, without a newline, e.g. "acknowledged request <id> is missing: ...". */
void kci_verify_problem_text(const kci_verify_problem *problem, char *text, size_t text_size);

#endif
