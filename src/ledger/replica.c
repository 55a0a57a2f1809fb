/* replica.c - the ledger as a replicated state machine on JetStream
 * (storage jetstream; docs/ledger.md "Replicated on JetStream",
 * docs/cluster.md).
 *
 * Several ledgers share one stream, the log; one of them is active, chosen
 * by a lease (src/service/lease.h), the others stand by. The active
 * ledger's writer turns each group of verified requests into one log entry
 * (batch_codec.h: the ops with every id and the clock they need) and
 * publishes it with Nats-Expected-Last-Sequence = the last entry it
 * applied. Only on JetStream's acknowledgement does it apply the entry to
 * its LMDB (batch_apply.h, which records the entry's sequence and the chain
 * digest in the same transaction) and answer. A standby reads the log entry
 * by entry from the stream's leader and applies each the same way, so the
 * state after entry N is the same bytes on every replica.
 *
 * Fencing, not timing: a second writer (a deposed active that was paused)
 * expects an older last sequence and the stream refuses its entry; the
 * history cannot fork. The lease only decides who tries.
 *
 * Answers that were lost: a publish that timed out may or may not be in
 * the log. The writer reads the log from its position: finding its own
 * entry (by the entry id), it applies it and answers from that; not
 * finding it, it publishes again with the same expectation (at most one of
 * the two can land). If it loses the lease meanwhile, it answers 503 and
 * the client retries the same signed transfer, which the ledger answers
 * "replayed" if it was applied (transfers and payment claims are
 * idempotent, and so is a mint with an "id": its issue ids derive from it).
 *
 * Threads: everything here runs on the service's writer thread (the one
 * LMDB writer), except the digest answers (nats.c's delivery thread, read
 * snapshots only) and the lease's renewer. */
#include <assert.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "common/log.h"
#include "ledger/batch_apply.h"
#include "ledger/batch_codec.h"
#include "ledger/serve_internal.h"
#include "service/answer.h"
#include "service/last_error.h"
#include "service/lease.h"
#include "service/lease_settings.h"
#include "service/uuid.h"

enum {
    STREAM_WAIT_MS = 2000,      /* one JetStream request: publish, get, info */
    OPEN_TIMEOUT_MS = 30000,    /* finding or creating the stream, the genesis */
    OPEN_RETRY_MS = 250,        /* between attempts while a leader is elected */
    FOLLOW_PAUSE_MS = 50,       /* a standby at the log's end looks again after */
    FOLLOW_ENTRIES_MAX = 256,   /* entries a standby applies between other duties */
    FOLLOW_GROUP_MAX = 32,      /* entries of a backlog applied in one transaction */
    ACTIVE_WAIT_MS = 100,       /* the active writer waits this long for jobs */
    RETRY_PAUSE_MS = 100,       /* after a publish that failed */
    ENTRY_SLACK_BYTES = 4096,   /* headers and protocol beside an entry's bytes */
    DIGEST_WAIT_MS_MAX = 30000, /* how long a digest request may wait for a sequence */
    DIGEST_POLL_MS = 20,
    SUBJECT_BYTES_MAX = 128,
    HOLDER_BYTES_MAX = 128,
};

#define DIGEST_SUBJECT "kc.sys.ledger.digest"
#define LOG_SUBJECT_PREFIX "kc.ledger_log."

struct kci_ledger_replica {
    kci_ledger *ledger;
    jsCtx *js;
    char stream[SUBJECT_BYTES_MAX];
    char subject[SUBJECT_BYTES_MAX];
    char holder[HOLDER_BYTES_MAX];
    kci_lease *lease;
    kci_subscriptions digest_subscriptions;
    size_t entry_bytes_max;

    pthread_mutex_t serve_lock; /* subscribing to the requests vs. stopping */
    atomic_bool closing;        /* set under serve_lock: never take over again */
    bool subscribed;            /* under serve_lock */

    /* The writer thread's own (the digest reads the atomics). */
    kci_ledger_applied applied;
    _Atomic uint64_t applied_sequence;
    atomic_bool active;
    uint64_t term;
    bool broken; /* the log cannot be followed (another mint, a bad entry) */
    int64_t next_reap_ms;
    int64_t next_tick_ms; /* the next look for expired holds */
};

typedef enum replicate_result {
    REPLICATED = 1,     /* in the log and applied: outcomes are set */
    NOT_REPLICATED = 2, /* not known to be in the log: answer 503, the client retries */
    APPLY_FAILED = 3,   /* in the log but not applied here (storage): 500 */
} replicate_result;

static kc_err nats_fail(natsStatus status, jsErrCode code, const char *what)
{
    return kci_fail(KC_ERR_NOT_CONNECTED, "ledger log: %s: %s (JetStream error %d)", what,
                    natsStatus_GetText(status), (int)code);
}

/* ======================================================================= applying */

/* Decodes and applies entry sequence; outcomes as kci_ledger_log_apply. A
 * log this replica cannot follow (another mint, an entry that does not
 * decode) marks it broken: it stops following and never takes over. */
static kc_err apply_entry(kci_ledger_replica *replica, uint64_t sequence, const uint8_t *bytes,
                          size_t length, const kci_ledger_log_entry *entry,
                          kci_ledger_outcome *outcomes)
{
    char error[KCI_LEDGER_ERROR_BYTES_MAX];
    kci_ledger_log_entry decoded = {0};
    const kci_ledger_log_entry *used = entry != NULL ? entry : &decoded;
    kc_err err = KC_OK;
    if (entry == NULL) err = kci_ledger_log_decode(&decoded, bytes, length, error, sizeof error);
    if (err == KC_ERR_PARSE) {
        kci_error("ledger: log entry %" PRIu64 " of %s: %s; this replica stops following", sequence,
                  replica->stream, error);
        replica->broken = true;
    }
    if (err == KC_OK)
        err = kci_ledger_log_apply(replica->ledger->store, &replica->applied, sequence, used, bytes,
                                   length, outcomes);
    if (err == KC_ERR_CONFIG) {
        kci_error("ledger: %s; this replica stops following", kc_last_error());
        replica->broken = true;
    } else if (err != KC_OK && err != KC_ERR_PARSE) {
        kci_error("ledger: log entry %" PRIu64 " not applied: %s", sequence, kc_last_error());
    }
    if (entry == NULL) kci_ledger_log_entry_free(&decoded);
    atomic_store(&replica->applied_sequence, replica->applied.sequence);
    return err;
}

/* The log entry after the last applied one, read through the stream's
 * leader. KC_ERR_NOT_FOUND at the log's end. */
static kc_err message_at(kci_ledger_replica *replica, uint64_t sequence, natsMsg **out)
{
    jsErrCode code = 0;
    natsStatus status = js_GetMsg(out, replica->js, replica->stream, sequence, NULL, &code);
    if (status == NATS_OK) return KC_OK;
    if (status == NATS_NOT_FOUND) return KC_ERR_NOT_FOUND;
    return nats_fail(status, code, "read");
}

static kc_err next_message(kci_ledger_replica *replica, natsMsg **out)
{
    return message_at(replica, replica->applied.sequence + 1, out);
}

/* A backlog: up to count_max entries that follow, read ahead and applied
 * FOLLOW_GROUP_MAX at a time in one transaction (one sync, and the pages
 * they share written once: kci_ledger_log_apply_group). An entry that does
 * not decode, or a group that fails, goes through apply_entry one by one,
 * which says why and marks the replica broken if it cannot follow. Returns
 * how many were applied; *at_end when the log has nothing after them. */
static uint32_t follow_group(kci_ledger_replica *replica, uint32_t count_max, bool *at_end)
{
    natsMsg *messages[FOLLOW_GROUP_MAX];
    kci_ledger_log_entry entries[FOLLOW_GROUP_MAX];
    kci_ledger_log_item items[FOLLOW_GROUP_MAX];
    uint32_t count = 0;
    char error[KCI_LEDGER_ERROR_BYTES_MAX];
    while (count < FOLLOW_GROUP_MAX && count < count_max) {
        uint64_t sequence = replica->applied.sequence + 1 + count;
        kc_err read = message_at(replica, sequence, &messages[count]);
        if (read != KC_OK) {
            *at_end = count == 0 && read == KC_ERR_NOT_FOUND; /* nothing to read one by one */
            break;
        }
        const uint8_t *bytes = (const uint8_t *)natsMsg_GetData(messages[count]);
        size_t length = (size_t)natsMsg_GetDataLength(messages[count]);
        bool usable =
            natsMsg_GetSequence(messages[count]) == sequence &&
            kci_ledger_log_decode(&entries[count], bytes, length, error, sizeof error) == KC_OK;
        if (!usable) {
            if (natsMsg_GetSequence(messages[count]) == sequence)
                kci_ledger_log_entry_free(&entries[count]);
            natsMsg_Destroy(messages[count]);
            break; /* follow() meets it on its own and says why */
        }
        items[count] =
            (kci_ledger_log_item){.entry = &entries[count], .bytes = bytes, .length = length};
        count++;
    }
    kc_err err = count > 1 ? kci_ledger_log_apply_group(replica->ledger->store, &replica->applied,
                                                        items, count)
                           : KC_ERR_INVALID_ARGUMENT; /* none or one: one by one */
    if (err == KC_OK) atomic_store(&replica->applied_sequence, replica->applied.sequence);
    for (uint32_t index = 0; index < count; index++) {
        kci_ledger_log_entry_free(&entries[index]);
        natsMsg_Destroy(messages[index]);
    }
    return err == KC_OK ? count : 0;
}

/* Applies up to count_max entries that follow. own_id (may be NULL): the
 * id of an entry this writer published in doubt; if it comes, it is
 * applied with own_outcomes and *own_found is set. Returns how many were
 * applied; stops at the end, at a failure, or after own_id's entry. */
static uint32_t follow(kci_ledger_replica *replica, uint32_t count_max, const uint8_t *own_id,
                       kci_ledger_outcome *own_outcomes, bool *own_found)
{
    uint32_t applied = 0;
    bool at_end = false;
    /* Catching up with nothing of its own in doubt: in groups while they go. */
    while (own_id == NULL && !replica->broken && applied < count_max && !at_end) {
        uint32_t step = follow_group(replica, count_max - applied, &at_end);
        if (step == 0) break;
        applied += step;
    }
    if (at_end) return applied;
    while (!replica->broken && applied < count_max && (own_found == NULL || !*own_found)) {
        natsMsg *message = NULL;
        kc_err err = next_message(replica, &message);
        if (err != KC_OK) {
            if (err != KC_ERR_NOT_FOUND) kci_debug("%s", kc_last_error());
            break;
        }
        const uint8_t *bytes = (const uint8_t *)natsMsg_GetData(message);
        size_t length = (size_t)natsMsg_GetDataLength(message);
        uint64_t sequence = natsMsg_GetSequence(message);
        bool own = own_id != NULL && length >= KCI_LEDGER_LOG_HEAD_BYTES &&
                   memcmp(bytes + 8, own_id, KCI_LEDGER_ID_BYTES) == 0;
        err =
            sequence == replica->applied.sequence + 1
                ? apply_entry(replica, sequence, bytes, length, NULL, own ? own_outcomes : NULL)
                : kci_fail(KC_ERR_CORRUPT, "ledger log: asked for entry %" PRIu64 ", got %" PRIu64,
                           replica->applied.sequence + 1, sequence);
        natsMsg_Destroy(message);
        if (err != KC_OK) break;
        applied++;
        if (own) *own_found = true;
    }
    return applied;
}

/* The stream's last sequence, from its leader. */
static kc_err log_end(kci_ledger_replica *replica, uint64_t *last)
{
    jsStreamInfo *info = NULL;
    jsErrCode code = 0;
    natsStatus status = js_GetStreamInfo(&info, replica->js, replica->stream, NULL, &code);
    if (status != NATS_OK) return nats_fail(status, code, "stream info");
    *last = info->State.LastSeq;
    jsStreamInfo_Destroy(info);
    return KC_OK;
}

/* ======================================================================= the active side */

static void requests_unsubscribe(kci_ledger_replica *replica)
{
    pthread_mutex_lock(&replica->serve_lock);
    if (replica->subscribed) {
        kci_ledger *ledger = replica->ledger;
        if (kci_subscriptions_drain(&ledger->subscriptions, 0, KCI_LEDGER_STOP_MARGIN_MS))
            kci_subscriptions_destroy(&ledger->subscriptions);
        kci_subscriptions_init(&ledger->subscriptions);
        replica->subscribed = false;
    }
    pthread_mutex_unlock(&replica->serve_lock);
}

static void step_down(kci_ledger_replica *replica, const char *why)
{
    if (!atomic_load(&replica->active)) return;
    atomic_store(&replica->active, false);
    requests_unsubscribe(replica);
    kci_info("ledger: standing by at log entry %" PRIu64 " (%s)", replica->applied.sequence, why);
}

static bool holds_term(kci_ledger_replica *replica)
{
    uint64_t term = 0;
    return kci_lease_holds(replica->lease, &term) && term == replica->term;
}

/* The lease is ours: read the log to its end, then serve. */
static void take_over(kci_ledger_replica *replica, uint64_t term)
{
    int64_t started_ms = kci_monotonic_ms();
    uint64_t last = 0;
    for (;;) {
        uint64_t term_now = 0;
        if (replica->broken || atomic_load(&replica->closing) ||
            !kci_lease_holds(replica->lease, &term_now) || term_now != term)
            return;
        if (log_end(replica, &last) != KC_OK) {
            kci_debug("%s", kc_last_error());
            nats_Sleep(RETRY_PAUSE_MS);
            continue;
        }
        if (replica->applied.sequence > last) {
            kci_error("ledger: this replica applied %" PRIu64 " entries but %s holds %" PRIu64
                      ": its LMDB follows another log (was the stream deleted?); it stops",
                      replica->applied.sequence, replica->stream, last);
            replica->broken = true;
            return;
        }
        if (replica->applied.sequence == last) break;
        if (follow(replica, FOLLOW_ENTRIES_MAX, NULL, NULL, NULL) == 0) nats_Sleep(RETRY_PAUSE_MS);
    }
    char error[KCI_LEDGER_ERROR_BYTES_MAX] = "";
    pthread_mutex_lock(&replica->serve_lock);
    kc_err err = KC_ERR_CLOSED;
    if (!atomic_load(&replica->closing))
        err = kci_ledger_requests_subscribe(replica->ledger, error, sizeof error);
    replica->subscribed = err == KC_OK;
    pthread_mutex_unlock(&replica->serve_lock);
    if (err != KC_OK) {
        if (err != KC_ERR_CLOSED) kci_warn("%s", error);
        return;
    }
    replica->term = term;
    atomic_store(&replica->active, true);
    kci_info("ledger: active (lease term %" PRIu64 ") at log entry %" PRIu64
             " of %s: caught up in %" PRId64 " ms",
             term, replica->applied.sequence, replica->stream, kci_monotonic_ms() - started_ms);
}

/* Publishes entry (bytes), fenced on the last applied sequence, and applies
 * it once acknowledged; after a refusal or a lost answer, reads the log
 * (finding the entry there, or publishing again while the lease is ours). */
static replicate_result replicate(kci_ledger_replica *replica, const kci_ledger_log_entry *entry,
                                  const uint8_t *bytes, size_t length, kci_ledger_outcome *outcomes)
{
    for (;;) {
        /* Sequence 0 cannot be expected: the genesis is entry 1 (a purged log is not followed). */
        if (!holds_term(replica) || replica->broken || replica->applied.sequence == 0)
            return NOT_REPLICATED;
        jsPubOptions options;
        jsPubOptions_Init(&options);
        options.ExpectLastSeq = replica->applied.sequence;
        jsPubAck *ack = NULL;
        jsErrCode code = 0;
        natsStatus status =
            js_Publish(&ack, replica->js, replica->subject, bytes, (int)length, &options, &code);
        uint64_t sequence = status == NATS_OK ? ack->Sequence : 0;
        jsPubAck_Destroy(ack);
        if (sequence == replica->applied.sequence + 1) {
            kc_err err = apply_entry(replica, sequence, bytes, length, entry, outcomes);
            return err == KC_OK ? REPLICATED : APPLY_FAILED;
        }
        if (code == JSStreamWrongLastSequenceErr)
            kci_info("ledger: the log refused entry %" PRIu64 ": another writer wrote first "
                     "(fenced); reading the log",
                     replica->applied.sequence + 1);
        else if (status != NATS_OK)
            kci_debug("ledger: log entry not acknowledged: %s (JetStream error %d)",
                      natsStatus_GetText(status), (int)code);
        bool found = false;
        uint32_t read = 0, step = 0;
        while ((step = follow(replica, FOLLOW_ENTRIES_MAX, entry->id, outcomes, &found)) > 0 &&
               !found)
            read += step;
        if (found) return REPLICATED;
        if (read == 0) nats_Sleep(RETRY_PAUSE_MS); /* the stream is electing, or unreachable */
    }
    return NOT_REPLICATED; /* the clients send again; a standby may have taken over */
}

/* New ids for the issues of a job that will be applied (a mint; an
 * exchange that passed verification): the entry carries them. */
static void job_ids_make(kci_ledger_job *work)
{
    const kci_ledger_request *request = &work->request;
    if (request->operation == KCI_LEDGER_OP_MINT && request->has_mint_id)
        for (uint32_t index = 0; index < request->grant_count; index++)
            kci_ledger_mint_ids_derive(request->mint_id, index, work->issue_ids[index],
                                       work->issued[index], request->grants[index].denominations,
                                       request->grants[index].denomination_count);
    else if (request->operation == KCI_LEDGER_OP_MINT)
        for (uint32_t index = 0; index < request->grant_count; index++)
            kci_ledger_issue_ids_make(work->issue_ids[index], work->issued[index],
                                      request->grants[index].denominations,
                                      request->grants[index].denomination_count);
    else if (request->operation == KCI_LEDGER_OP_EXCHANGE &&
             work->outcomes[0].result == KCI_LEDGER_OK)
        kci_ledger_issue_ids_make(work->issue_ids[0], work->issued[0],
                                  request->transfers[0].denominations,
                                  request->transfers[0].denomination_count);
}

/* Appends the ops of one job, and the outcome each op answers into. */
static void encode_job(kci_ledger_log_writer *writer, kci_ledger_job *work,
                       kci_ledger_outcome **slots)
{
    const kci_ledger_request *request = &work->request;
    switch (request->operation) {
    case KCI_LEDGER_OP_MINT:
        slots[writer->op_count] = &work->outcomes[0];
        kci_ledger_log_put_mint(writer, request->grants, request->grant_count,
                                (const uint8_t(*)[KCI_LEDGER_ID_BYTES])work->issue_ids,
                                work->issued);
        break;
    case KCI_LEDGER_OP_TRANSFER:
    case KCI_LEDGER_OP_TRANSFER_BATCH:
        for (uint32_t index = 0; index < request->transfer_count; index++)
            if (work->outcomes[index].result == KCI_LEDGER_OK) {
                slots[writer->op_count] = &work->outcomes[index];
                kci_ledger_log_put_transfer(writer, &request->transfers[index]);
            }
        break;
    case KCI_LEDGER_OP_EXCHANGE:
        if (work->outcomes[0].result != KCI_LEDGER_OK) break;
        slots[writer->op_count] = &work->outcomes[0];
        kci_ledger_log_put_exchange(writer, &request->transfers[0], work->issue_ids[0],
                                    work->issued[0]);
        break;
    case KCI_LEDGER_OP_PAYMENT:
        slots[writer->op_count] = &work->outcomes[0];
        kci_ledger_log_put_payment(writer, request->transfer, request->payee, request->min_amount,
                                   request->request_id);
        break;
    case KCI_LEDGER_OP_HOLD:
        if (work->outcomes[0].result != KCI_LEDGER_OK) break;
        slots[writer->op_count] = &work->outcomes[0];
        kci_ledger_log_put_hold(writer, &request->transfers[0]);
        break;
    case KCI_LEDGER_OP_HOLD_CLAIM:
    case KCI_LEDGER_OP_HOLD_POST:
    case KCI_LEDGER_OP_HOLD_VOID:
        slots[writer->op_count] = &work->outcomes[0];
        kci_ledger_log_put_settle(writer, kci_ledger_settle_of(request->operation),
                                  request->transfer, request->payee, request->request_id,
                                  request->min_amount, request->signature);
        break;
    default: assert(false);
    }
}

static void refuse_jobs(kci_ledger *ledger, kci_ledger_job *jobs, kci_ledger_result result,
                        const char *message)
{
    if (jobs == NULL) return;
    kci_ledger_outcome outcome = {0};
    kci_ledger_refuse_with(&outcome, result, "%s", message);
    kci_ledger_jobs_answer(ledger, jobs, &outcome);
}

static const char NOT_ACTIVE[] =
    "this ledger is standing by (storage jetstream): try again; a transfer sent again is "
    "answered as replayed if it was applied";

/* Encodes jobs from *jobs into one entry (as many as fit): the taken jobs
 * leave *jobs; slots gets each op's outcome. A job too large for an entry
 * on its own is answered 413 here. */
static kci_ledger_job *encode_entry(kci_ledger_replica *replica, kci_ledger_log_writer *writer,
                                    kci_ledger_job **jobs, kci_ledger_outcome **slots)
{
    kci_ledger_job *taken = NULL, **tail = &taken;
    while (*jobs != NULL) {
        kci_ledger_job *work = *jobs;
        kci_ledger_log_mark mark = kci_ledger_log_mark_get(writer);
        job_ids_make(work);
        encode_job(writer, work, slots);
        if (writer->length > replica->entry_bytes_max) {
            kci_ledger_log_cut(writer, mark);
            if (taken != NULL) break; /* the next entry starts with it */
            *jobs = work->next;
            work->next = NULL;
            refuse_jobs(replica->ledger, work, KCI_LEDGER_TOO_LARGE,
                        "the request is larger than one entry of the ledger's replicated log");
            continue;
        }
        *jobs = work->next;
        work->next = NULL;
        *tail = work;
        tail = &work->next;
    }
    return taken;
}

/* Replicates and applies one entry of jobs, then answers them. */
static void write_entry(kci_ledger_replica *replica, kci_ledger_job *taken,
                        kci_ledger_log_writer *writer, kci_ledger_outcome **slots)
{
    kci_ledger *ledger = replica->ledger;
    if (kci_ledger_log_finish(writer) != KC_OK) {
        refuse_jobs(ledger, taken, KCI_LEDGER_OUT_OF_MEMORY, "out of memory");
        return;
    }
    kci_ledger_log_entry entry;
    char error[KCI_LEDGER_ERROR_BYTES_MAX];
    kc_err err = kci_ledger_log_decode(&entry, writer->bytes, writer->length, error, sizeof error);
    assert(err != KC_ERR_PARSE); /* what the writer encodes, its decoder takes */
    kci_ledger_outcome *results = calloc(writer->op_count + 1, sizeof *results);
    replicate_result result = NOT_REPLICATED;
    if (err == KC_OK && results != NULL)
        result = replicate(replica, &entry, writer->bytes, writer->length, results);
    kci_ledger_log_entry_free(&entry);
    if (result == REPLICATED) {
        for (uint32_t index = 0; index < writer->op_count; index++)
            *slots[index] = results[index];
        kci_ledger_jobs_answer(ledger, taken, NULL);
    } else if (result == APPLY_FAILED) {
        refuse_jobs(ledger, taken, KCI_LEDGER_STORAGE_FAILED,
                    "the entry is in the replicated log but this ledger could not apply it; "
                    "another ledger takes over");
        step_down(replica, "a log entry could not be applied");
        replica->broken = true; /* the run loop gives the lease up: a healthy replica takes it */
    } else {
        refuse_jobs(ledger, taken, KCI_LEDGER_QUEUE_FULL,
                    err == KC_ERR_NOMEM || results == NULL ? "out of memory" : NOT_ACTIVE);
    }
    free(results);
}

/* Writes jobs as as many entries as they need. */
static void write_jobs(kci_ledger_replica *replica, kci_ledger_job *jobs)
{
    uint32_t ops_max = 1;
    for (kci_ledger_job *work = jobs; work != NULL; work = work->next)
        ops_max += work->request.transfer_count + 1;
    kci_ledger_outcome **slots = calloc(ops_max, sizeof *slots);
    if (slots == NULL) {
        refuse_jobs(replica->ledger, jobs, KCI_LEDGER_OUT_OF_MEMORY, "out of memory");
        return;
    }
    while (jobs != NULL) {
        kci_uuid id;
        kci_uuid_v7(&id);
        kci_ledger_log_writer writer;
        kci_ledger_log_begin(&writer, id.bytes, replica->term, kci_wall_ms(),
                             kci_ledger_store_mint_key(replica->ledger->store));
        kci_ledger_job *taken = encode_entry(replica, &writer, &jobs, slots);
        if (writer.op_count == 0)
            kci_ledger_jobs_answer(replica->ledger, taken, NULL); /* all refused by the workers */
        else
            write_entry(replica, taken, &writer, slots);
        kci_ledger_log_writer_free(&writer);
    }
    free(slots);
}

/* The reaper and the expiry of holds as a log entry: the clock and bounds
 * travel with it, so every replica frees the same coins and returns the
 * same holds. Written only when there is something to do (a dry run
 * first, rolled back). */
static void reap_replicated(kci_ledger_replica *replica, bool reap_due)
{
    kci_ledger *ledger = replica->ledger;
    int64_t now_ms = kci_wall_ms();
    kci_ledger_batch *batch = NULL;
    uint32_t reaped = 0, expired = 0;
    kc_err err = kci_ledger_batch_begin_at(&batch, ledger->store, now_ms);
    if (err == KC_OK) err = kci_ledger_expire(batch, KCI_LEDGER_EXPIRE_COUNT_MAX, &expired);
    if (err == KC_OK && reap_due)
        err =
            kci_ledger_reap(batch, ledger->config.reap_age_ms, KCI_LEDGER_REAP_COUNT_MAX, &reaped);
    kci_ledger_batch_abort(batch);
    if (err != KC_OK || reaped + expired == 0) return;
    kci_uuid id;
    kci_uuid_v7(&id);
    kci_ledger_log_writer writer;
    kci_ledger_log_begin(&writer, id.bytes, replica->term, now_ms,
                         kci_ledger_store_mint_key(ledger->store));
    if (expired > 0) kci_ledger_log_put_expire(&writer, KCI_LEDGER_EXPIRE_COUNT_MAX);
    if (reaped > 0)
        kci_ledger_log_put_reap(&writer, ledger->config.reap_age_ms, KCI_LEDGER_REAP_COUNT_MAX);
    kci_ledger_log_entry entry = {0};
    char error[KCI_LEDGER_ERROR_BYTES_MAX];
    if (kci_ledger_log_finish(&writer) == KC_OK &&
        kci_ledger_log_decode(&entry, writer.bytes, writer.length, error, sizeof error) == KC_OK) {
        kci_ledger_outcome outcomes[2] = {{0}};
        if (replicate(replica, &entry, writer.bytes, writer.length, outcomes) == REPLICATED)
            kci_info("ledger: %" PRIu32 " holds expired; the reaper freed the trails of up to "
                     "%" PRIu32 " retired coins",
                     expired, reaped);
    }
    kci_ledger_log_entry_free(&entry);
    kci_ledger_log_writer_free(&writer);
}

/* ======================================================================= the writer thread */

static void active_step(kci_ledger_replica *replica)
{
    kci_ledger *ledger = replica->ledger;
    kci_ledger_job *jobs = kci_ledger_jobs_take(ledger, ACTIVE_WAIT_MS);
    if (jobs != NULL) write_jobs(replica, jobs); /* a busy ledger still ticks: */
    if (kci_monotonic_ms() >= replica->next_tick_ms) {
        bool reap_due = kci_monotonic_ms() >= replica->next_reap_ms;
        reap_replicated(replica, reap_due);
        if (reap_due) replica->next_reap_ms = kci_monotonic_ms() + ledger->config.reap_interval_ms;
        replica->next_tick_ms = kci_monotonic_ms() + KCI_LEDGER_EXPIRE_INTERVAL_MS;
    }
}

static void standby_step(kci_ledger_replica *replica)
{
    kci_ledger *ledger = replica->ledger;
    refuse_jobs(ledger, kci_ledger_jobs_take(ledger, 0), KCI_LEDGER_QUEUE_FULL, NOT_ACTIVE);
    if (follow(replica, FOLLOW_ENTRIES_MAX, NULL, NULL, NULL) > 0) return;
    /* At the log's end: wait a little (answering what comes meanwhile). */
    refuse_jobs(ledger, kci_ledger_jobs_take(ledger, FOLLOW_PAUSE_MS), KCI_LEDGER_QUEUE_FULL,
                NOT_ACTIVE);
}

void kci_ledger_replica_run(kci_ledger_replica *replica)
{
    kci_ledger *ledger = replica->ledger;
    replica->next_reap_ms = kci_monotonic_ms() + ledger->config.reap_interval_ms;
    while (!kci_ledger_stopped_idle(ledger)) {
        if (replica->broken && replica->lease != NULL) {
            /* It cannot follow the log: it must not hold the lease either. */
            step_down(replica, "this replica cannot follow the log");
            kci_lease_close(replica->lease);
            replica->lease = NULL;
        }
        uint64_t term = 0;
        bool holds = replica->lease != NULL && kci_lease_holds(replica->lease, &term);
        if (atomic_load(&replica->active) && (!holds || term != replica->term))
            step_down(replica, "the lease is lost");
        if (!atomic_load(&replica->active) && holds && !atomic_load(&replica->closing) &&
            !replica->broken)
            take_over(replica, term);
        if (atomic_load(&replica->active))
            active_step(replica);
        else if (replica->broken)
            refuse_jobs(ledger, kci_ledger_jobs_take(ledger, FOLLOW_PAUSE_MS),
                        KCI_LEDGER_QUEUE_FULL, NOT_ACTIVE);
        else
            standby_step(replica);
    }
}

/* ======================================================================= digests */

static void hex_digest(char text[2 * KCI_LEDGER_DIGEST_BYTES + 1], const uint8_t *digest)
{
    kci_ledger_hex(text, digest, KCI_LEDGER_DIGEST_BYTES);
}

/* The answer to kc.sys.ledger.digest, from one read snapshot. */
static json_t *digest_body(kci_ledger_replica *replica, uint64_t at)
{
    kci_ledger_read *read = NULL;
    if (kci_ledger_read_begin(&read, replica->ledger->store) != KC_OK) return NULL;
    kci_ledger_applied applied;
    uint8_t content[KCI_LEDGER_DIGEST_BYTES], chain_at[KCI_LEDGER_DIGEST_BYTES];
    uint64_t entries = 0;
    kc_err err = kci_ledger_applied_get(read, &applied);
    if (err == KC_OK) err = kci_ledger_content_digest(read, content, &entries);
    bool have_at =
        at > 0 && at <= applied.sequence && kci_ledger_chain_get(read, at, chain_at) == KC_OK;
    kci_ledger_read_end(read);
    if (err != KC_OK) return NULL;
    char chain_text[2 * KCI_LEDGER_DIGEST_BYTES + 1], content_text[2 * KCI_LEDGER_DIGEST_BYTES + 1];
    hex_digest(chain_text, applied.chain);
    hex_digest(content_text, content);
    json_t *body =
        json_pack("{s:s, s:s, s:s, s:b, s:I, s:s, s:s, s:I, s:s}", "node", replica->ledger->node,
                  "holder", replica->holder, "stream", replica->stream, "active",
                  atomic_load(&replica->active), "sequence", (json_int_t)applied.sequence, "chain",
                  chain_text, "content", content_text, "entries", (json_int_t)entries, "mint",
                  kci_ledger_store_mint_address(replica->ledger->store));
    if (body != NULL && have_at) {
        hex_digest(chain_text, chain_at);
        json_object_set_new(
            body, "chain_at",
            json_pack("{s:I, s:s}", "sequence", (json_int_t)at, "digest", chain_text));
    }
    return body;
}

/* {"at_least": N, "wait_ms": M}: waits (bounded) until this replica has
 * applied entry N, then answers its digests, with the chain digest at N. */
static void on_digest(natsConnection *connection, natsSubscription *subscription, natsMsg *message,
                      void *closure)
{
    (void)subscription;
    kci_ledger_replica *replica = closure;
    json_t *request =
        json_loadb(natsMsg_GetData(message), (size_t)natsMsg_GetDataLength(message), 0, NULL);
    json_int_t at_least = json_integer_value(json_object_get(request, "at_least"));
    json_int_t wait_ms = json_integer_value(json_object_get(request, "wait_ms"));
    json_decref(request);
    if (wait_ms < 0 || wait_ms > DIGEST_WAIT_MS_MAX) wait_ms = DIGEST_WAIT_MS_MAX;
    int64_t deadline_ms = kci_monotonic_ms() + wait_ms;
    while (at_least > 0 && atomic_load(&replica->applied_sequence) < (uint64_t)at_least &&
           kci_monotonic_ms() < deadline_ms && !atomic_load(&replica->closing))
        nats_Sleep(DIGEST_POLL_MS);
    json_t *body = digest_body(replica, at_least > 0 ? (uint64_t)at_least : 0);
    char *text = body != NULL ? json_dumps(body, JSON_COMPACT) : NULL;
    json_decref(body);
    kci_answer answer = {.node = replica->ledger->node,
                         .type = "ledger",
                         .code = text != NULL ? 0 : KCI_LEDGER_CODE_INTERNAL,
                         .message = text != NULL ? "" : "cannot read the state",
                         .payload = text != NULL ? text : "{}",
                         .payload_length = text != NULL ? strlen(text) : 2};
    kci_answer_send(connection, message, &answer, "ledger");
    free(text);
    natsMsg_Destroy(message);
}

/* ======================================================================= open and close */

/* Finds the stream, or creates it (two ledgers may race: the loser finds it). */
static natsStatus stream_find_or_create(kci_ledger_replica *replica, jsErrCode *code)
{
    jsStreamInfo *info = NULL;
    natsStatus status = js_GetStreamInfo(&info, replica->js, replica->stream, NULL, code);
    jsStreamInfo_Destroy(info);
    if (status != NATS_NOT_FOUND) return status;
    jsStreamConfig config;
    jsStreamConfig_Init(&config);
    const char *subjects[] = {replica->subject};
    config.Name = replica->stream;
    config.Description = "KingCobra ledger log: one entry per write batch (docs/ledger.md)";
    config.Subjects = subjects;
    config.SubjectsLen = 1;
    config.Storage = js_FileStorage;
    config.Replicas = replica->ledger->config.stream_replicas;
    config.Retention = js_LimitsPolicy; /* kept: a replica replays it from the start */
    info = NULL;
    status = js_AddStream(&info, replica->js, &config, NULL, code);
    jsStreamInfo_Destroy(info);
    return status;
}

/* The first entry, naming the mint: written once (expecting no message
 * on the subject, which nats-server checks when it applies the write). */
static natsStatus genesis_write(kci_ledger_replica *replica, jsErrCode *code)
{
    uint64_t last = 0;
    if (log_end(replica, &last) != KC_OK) return NATS_ERR;
    if (last > 0) return NATS_OK;
    kci_uuid id;
    kci_uuid_v7(&id);
    kci_ledger_log_writer writer;
    kci_ledger_log_begin(&writer, id.bytes, 0, kci_wall_ms(),
                         kci_ledger_store_mint_key(replica->ledger->store));
    natsStatus status = NATS_NO_MEMORY;
    if (kci_ledger_log_finish(&writer) == KC_OK) {
        jsPubOptions options;
        jsPubOptions_Init(&options);
        options.ExpectNoMessage = true;
        jsPubAck *ack = NULL;
        status = js_Publish(&ack, replica->js, replica->subject, writer.bytes, (int)writer.length,
                            &options, code);
        jsPubAck_Destroy(ack);
        if (status != NATS_OK && log_end(replica, &last) == KC_OK && last > 0)
            status = NATS_OK; /* another ledger wrote it first */
    }
    kci_ledger_log_writer_free(&writer);
    return status;
}

static kc_err stream_open(kci_ledger_replica *replica)
{
    jsOptions options;
    jsOptions_Init(&options);
    options.Wait = STREAM_WAIT_MS;
    natsStatus status =
        natsConnection_JetStream(&replica->js, replica->ledger->connection, &options);
    if (status != NATS_OK) return nats_fail(status, 0, "JetStream");
    int64_t deadline_ms = kci_monotonic_ms() + OPEN_TIMEOUT_MS;
    jsErrCode code = 0;
    for (;;) {
        status = stream_find_or_create(replica, &code);
        if (status == NATS_OK) status = genesis_write(replica, &code);
        if (status == NATS_OK || kci_monotonic_ms() >= deadline_ms) break;
        nats_Sleep(OPEN_RETRY_MS);
    }
    return status == NATS_OK ? KC_OK : nats_fail(status, code, replica->stream);
}

static kc_err lease_open(kci_ledger_replica *replica)
{
    kci_ledger *ledger = replica->ledger;
    kci_lease_config config;
    kci_lease_config_init(&config);
    kci_lease_settings_apply(ledger->config.lease, &config);
    kci_lease_holder_make(replica->holder, sizeof replica->holder, ledger->node);
    config.key = "ledger";
    config.holder = replica->holder;
    return kci_lease_open(&replica->lease, ledger->connection, &config);
}

/* Where this replica stands in the log, from its LMDB. */
static kc_err position_read(kci_ledger_replica *replica)
{
    kci_ledger_read *read = NULL;
    kc_err err = kci_ledger_read_begin(&read, replica->ledger->store);
    if (err == KC_OK) err = kci_ledger_applied_get(read, &replica->applied);
    kci_ledger_read_end(read);
    atomic_store(&replica->applied_sequence, replica->applied.sequence);
    return err;
}

static kc_err replica_start(kci_ledger_replica *replica)
{
    kci_ledger *ledger = replica->ledger;
    if (ledger->config.stream == NULL || ledger->config.lease == NULL)
        return kci_fail(KC_ERR_CONFIG, "storage jetstream needs a stream and lease settings");
    snprintf(replica->stream, sizeof replica->stream, "%s", ledger->config.stream);
    snprintf(replica->subject, sizeof replica->subject, LOG_SUBJECT_PREFIX "%s",
             ledger->config.stream);
    int64_t payload_max = natsConnection_GetMaxPayload(ledger->connection);
    replica->entry_bytes_max = payload_max > 2 * ENTRY_SLACK_BYTES
                                   ? (size_t)payload_max - ENTRY_SLACK_BYTES
                                   : ENTRY_SLACK_BYTES;
    kc_err err = position_read(replica);
    if (err == KC_OK) err = stream_open(replica);
    if (err == KC_OK) err = lease_open(replica);
    const kci_subscription_spec spec = {.subject = DIGEST_SUBJECT,
                                        .handler = on_digest,
                                        .pending_messages_max = KCI_PENDING_MESSAGES_DEFAULT,
                                        .pending_bytes_max = KCI_PENDING_BYTES_DEFAULT};
    if (err == KC_OK)
        err = kci_subscriptions_add(&replica->digest_subscriptions, ledger->connection, &spec,
                                    replica);
    if (err == KC_OK)
        kci_info("ledger: replica of %s (R%d) at log entry %" PRIu64 ", standing by as %s",
                 replica->stream, ledger->config.stream_replicas, replica->applied.sequence,
                 replica->holder);
    return err;
}

kc_err kci_ledger_replica_open(kci_ledger_replica **out, kci_ledger *ledger, char *error,
                               size_t error_size)
{
    *out = NULL;
    kci_ledger_replica *replica = calloc(1, sizeof *replica);
    if (replica == NULL) return kci_fail(KC_ERR_NOMEM, "out of memory");
    replica->ledger = ledger;
    pthread_mutex_init(&replica->serve_lock, NULL);
    kci_subscriptions_init(&replica->digest_subscriptions);
    kc_err err = replica_start(replica);
    if (err != KC_OK) {
        snprintf(error, error_size, "ledger: %s", kc_last_error());
        kci_ledger_replica_closing(replica);
        kci_ledger_replica_close(replica);
        return err;
    }
    *out = replica;
    return KC_OK;
}

void kci_ledger_replica_closing(kci_ledger_replica *replica)
{
    if (replica == NULL) return;
    pthread_mutex_lock(&replica->serve_lock);
    atomic_store(&replica->closing, true);
    pthread_mutex_unlock(&replica->serve_lock);
}

bool kci_ledger_replica_drain_requests(kci_ledger_replica *replica, int64_t drain_ms)
{
    pthread_mutex_lock(&replica->serve_lock);
    assert(atomic_load(&replica->closing));
    bool drained =
        !replica->subscribed || kci_subscriptions_drain(&replica->ledger->subscriptions, drain_ms,
                                                        KCI_LEDGER_STOP_MARGIN_MS);
    replica->subscribed = false; /* kci_ledger_stop frees the set */
    pthread_mutex_unlock(&replica->serve_lock);
    return drained;
}

void kci_ledger_replica_close(kci_ledger_replica *replica)
{
    if (replica == NULL) return;
    if (kci_subscriptions_drain(&replica->digest_subscriptions, 0, KCI_LEDGER_STOP_MARGIN_MS))
        kci_subscriptions_destroy(&replica->digest_subscriptions);
    kci_lease_close(replica->lease); /* released: a standby takes over at its next look */
    jsCtx_Destroy(replica->js);
    pthread_mutex_destroy(&replica->serve_lock);
    free(replica);
}
