/* verify.c - the log's records checked against one another (see verify.h).
 *
 * One pass over the scan, one kci_index entry per id, its fields used so:
 *   state       always KCI_ENTRY_PENDING (non-zero marks the slot used);
 *   attempts    the ENTRY_* flags below;
 *   request     the request record's position, or, while there is none,
 *               the position of the first record that referred to the id;
 *   reply       the first reply's position;
 *   state_before_reply  the kind of that first referring record. */
#include "verify.h"

#include <assert.h>
#include <stdio.h>
#include <string.h>

enum {
    ENTRY_REQUEST = 1 << 0,    /* a request record was seen */
    ENTRY_REPLY = 1 << 1,      /* a reply was seen */
    ENTRY_TOMBSTONE = 1 << 2,  /* a tombstone was seen */
    ENTRY_REFERENCED = 1 << 3, /* referred to before any request record */
};

bool kci_verify_init(kci_verify *verify)
{
    memset(verify, 0, sizeof *verify);
    return kci_index_init(&verify->index);
}

void kci_verify_destroy(kci_verify *verify)
{
    kci_index_destroy(&verify->index);
}

static void add_problem(kci_verify *verify, const kci_verify_problem *problem)
{
    kci_verify_result *result = &verify->result;
    if (result->problem_count < KCI_VERIFY_PROBLEMS_MAX)
        result->problems[result->problem_count] = *problem;
    result->problem_count++;
}

static void on_request(kci_verify *verify, kci_index_entry *entry, kci_position position)
{
    if (entry->attempts & ENTRY_REQUEST) {
        add_problem(verify, &(kci_verify_problem){.kind = KCI_VERIFY_REQUEST_TWICE,
                                                  .id = entry->id,
                                                  .position = position,
                                                  .other = entry->request});
        return;
    }
    if (entry->attempts & ENTRY_REFERENCED)
        add_problem(verify, &(kci_verify_problem){.kind = KCI_VERIFY_OUT_OF_ORDER,
                                                  .id = entry->id,
                                                  .reference = entry->state_before_reply,
                                                  .position = entry->request,
                                                  .other = position});
    entry->attempts |= ENTRY_REQUEST;
    entry->request = position;
}

/* A reply, redelivery (or requeue) or tombstone. */
static void on_reference(kci_verify *verify, kci_index_entry *entry, const kci_record *record,
                         kci_position position)
{
    if (!(entry->attempts & (ENTRY_REQUEST | ENTRY_REFERENCED))) {
        entry->attempts |= ENTRY_REFERENCED;
        entry->request = position;
        entry->state_before_reply = (uint8_t)record->kind;
    }
    if (record->kind == KCI_RECORD_TOMBSTONE) entry->attempts |= ENTRY_TOMBSTONE;
    if (kci_record_is_requeue(record)) { /* dead no more (until a later tombstone) */
        entry->attempts &= (uint16_t)~ENTRY_TOMBSTONE;
        verify->result.requeues++;
    }
    if (record->kind != KCI_RECORD_REPLY) return;
    if (entry->attempts & ENTRY_REPLY) {
        add_problem(verify, &(kci_verify_problem){.kind = KCI_VERIFY_REPLY_TWICE,
                                                  .id = entry->id,
                                                  .position = position,
                                                  .other = entry->reply});
        return;
    }
    entry->attempts |= ENTRY_REPLY;
    entry->reply = position;
}

kc_err kci_verify_visit(void *context, const kci_record *record, kci_position position)
{
    kci_verify *verify = context;
    switch (record->kind) {
    case KCI_RECORD_REQUEST:
    case KCI_RECORD_REPLY:
    case KCI_RECORD_REDELIVERY:
    case KCI_RECORD_TOMBSTONE: break;
    default: return KC_OK; /* observed traffic, and the reserved ack */
    }
    bool created = false;
    kci_index_entry *entry = kci_index_insert(&verify->index, &record->id, &created);
    if (entry == NULL) return KC_ERR_NOMEM;
    if (created) {
        entry->state = KCI_ENTRY_PENDING;
        entry->attempts = 0;
        entry->request = entry->reply = 0;
    }
    if (record->kind == KCI_RECORD_REQUEST)
        on_request(verify, entry, position);
    else
        on_reference(verify, entry, record, position);
    return KC_OK;
}

/* An id referred to without a request record: missing, unless retention
 * explains it (verify.h). */
static void finish_unrequested(kci_verify *verify, const kci_index_entry *entry, bool retained)
{
    bool resolved = (entry->attempts & (ENTRY_REPLY | ENTRY_TOMBSTONE)) != 0;
    if (retained && resolved) {
        verify->result.references_after_retention++;
        return;
    }
    verify->result.missing_requests++;
    add_problem(verify, &(kci_verify_problem){.kind = KCI_VERIFY_REQUEST_MISSING,
                                              .id = entry->id,
                                              .reference = entry->state_before_reply,
                                              .position = entry->request});
}

void kci_verify_finish(kci_verify *verify, const kci_scan_report *report)
{
    kci_verify_result *result = &verify->result;
    bool retained = report->segment_first > 1; /* segments were removed before it */
    for (uint64_t slot = 0; slot < verify->index.capacity; slot++) {
        const kci_index_entry *entry = &verify->index.entries[slot];
        if (entry->state == 0) continue;
        if (!(entry->attempts & ENTRY_REQUEST)) {
            finish_unrequested(verify, entry, retained);
            continue;
        }
        result->requests++;
        if (entry->attempts & ENTRY_REPLY)
            result->replied++;
        else if (entry->attempts & ENTRY_TOMBSTONE)
            result->dead++;
        else
            result->pending++;
    }
    assert(result->replied + result->dead + result->pending == result->requests);
    if (report->segments_missing > 0)
        add_problem(verify, &(kci_verify_problem){.kind = KCI_VERIFY_SEGMENTS_MISSING,
                                                  .segment = report->segment_missing_first,
                                                  .count = report->segments_missing});
}

void kci_verify_problem_text(const kci_verify_problem *problem, char *text, size_t text_size)
{
    char id[KC_UUID_TEXT_BYTES + 1];
    kci_uuid_format(&problem->id, id);
    const char *reference = kci_record_kind_name(problem->reference);
    if (reference == NULL) reference = "record";
    uint32_t segment = kci_position_segment(problem->position);
    uint32_t offset = kci_position_offset(problem->position);
    uint32_t other_segment = kci_position_segment(problem->other);
    uint32_t other_offset = kci_position_offset(problem->other);
    switch (problem->kind) {
    case KCI_VERIFY_REQUEST_MISSING:
        snprintf(text, text_size,
                 "acknowledged request %s is missing: the %s at segment %u offset %u refers to "
                 "it, and no request record has that id",
                 id, reference, segment, offset);
        return;
    case KCI_VERIFY_OUT_OF_ORDER:
        snprintf(text, text_size,
                 "request %s: its %s at segment %u offset %u comes before the request (segment "
                 "%u offset %u)",
                 id, reference, segment, offset, other_segment, other_offset);
        return;
    case KCI_VERIFY_REQUEST_TWICE:
        snprintf(text, text_size,
                 "request %s is stored twice: segment %u offset %u and segment %u offset %u", id,
                 other_segment, other_offset, segment, offset);
        return;
    case KCI_VERIFY_REPLY_TWICE:
        snprintf(text, text_size,
                 "request %s has a second reply at segment %u offset %u (the first at segment %u "
                 "offset %u)",
                 id, segment, offset, other_segment, other_offset);
        return;
    case KCI_VERIFY_SEGMENTS_MISSING:
        snprintf(text, text_size,
                 "%u segment%s missing from the middle of the log, from number %u on (retention "
                 "removes only the oldest): their records are lost",
                 problem->count, problem->count == 1 ? " is" : "s are", problem->segment);
        return;
    }
    snprintf(text, text_size, "unknown problem %d", (int)problem->kind);
}
