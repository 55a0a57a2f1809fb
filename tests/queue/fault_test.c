/* fault_test.c - the queue log under I/O faults, in SQLite's style
 * (tests/common/fault.h): each scenario runs once to count the calls it
 * makes through the I/O seam, then again failing call N, for every N, with
 * each error that call can return (EIO, ENOSPC, EINTR, a short write,
 * ENOMEM for an allocation).
 *
 * Scenarios, with the log API directly: a burst of appends in three groups
 * with group commit (durability "batch"), and a smaller one with a sync per
 * record ("always"); a segment roll-over (64 KiB segments, about four of
 * them); a recovery (a log with a torn tail is opened, repaired and
 * appended to); retention (the segments below the current one removed,
 * then appends).
 *
 * After each faulty run: the open either worked or failed with a message;
 * every append got exactly one done, with its errno when it failed;
 * nothing leaked (descriptors here, memory under ASan); EINTR and short
 * writes changed nothing (all appends acknowledged). Then fault.c simulates
 * a power cut (writes never synced are dropped, files created in a
 * directory never synced are removed) and the log is opened again with the
 * real calls: it must open, every record whose done said KC_OK must be
 * there, at its position, intact (unless retention removed its segment),
 * verify (src/queue/verify.c) must find no problem, the scan no
 * corruption, no damaged tail and no missing segment (a torn tail is
 * allowed: never acknowledged), and an append must work.
 *
 * argv[1] runs one scenario (meson registers one test per scenario). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../common/fault.h"
#include "common/log.h"
#include "queue/log.h"
#include "queue/verify.h"

enum {
    RECORDS_MAX = 256,
    PAYLOAD_BYTES_MAX = 4096,
    TORN_PREFIX_BYTES = 60, /* of a record, left by a "crash" in the recovery scenario */
};

typedef struct outcome {
    struct scenario *owner;
    int number;
    bool appended; /* append returned KC_OK: done must run */
    bool done;
    kc_err status;
    int error_number; /* errno in done, when status is not KC_OK */
    kci_position position;
} outcome;

typedef struct scenario {
    const char *name;
    kci_durability durability;
    uint32_t segment_bytes;
    size_t payload_bytes;
    int group_count, group_records;
    int prepared_count;   /* records written before the faulty run */
    bool torn_tail;       /* and a torn one after them (recovery) */
    bool retention;       /* the faulty run first removes all but the current segment */
    uint64_t call_number; /* the run's fault, for messages */
    fault_call fired_kind;
    int fired_error; /* 0: it did not fire */
    pthread_mutex_t lock;
    pthread_cond_t changed;
    int done_count;
    kci_uuid ids[RECORDS_MAX];
    outcome outcomes[RECORDS_MAX];
    bool found[RECORDS_MAX];
    kci_position found_at[RECORDS_MAX];
} scenario;

static char directory[128];

static void payload_of(int number, size_t payload_bytes, char *out)
{
    for (size_t index = 0; index < payload_bytes; index++)
        out[index] = (char)('a' + (number + (int)index) % 26);
}

static void on_done(void *context, kc_err status, kci_position position)
{
    int error_number = errno;
    outcome *entry = context;
    scenario *owner = entry->owner;
    pthread_mutex_lock(&owner->lock);
    assert_false(entry->done);
    entry->done = true;
    entry->status = status;
    entry->error_number = error_number;
    entry->position = position;
    owner->done_count++;
    pthread_cond_broadcast(&owner->changed);
    pthread_mutex_unlock(&owner->lock);
}

static kci_record record_of(scenario *owner, int number, const char *payload)
{
    return (kci_record){.kind = KCI_RECORD_REQUEST,
                        .id = owner->ids[number],
                        .ts_wall_ms = number,
                        .subject = "kc.req.t",
                        .subject_length = 8,
                        .reply = "",
                        .client = "",
                        .payload = payload,
                        .payload_length = (uint32_t)owner->payload_bytes};
}

/* Appends [first, first + count); false when the log refused one (it is
 * broken after a failed sync). Every accepted append gets its done later. */
static bool append_group(kci_queue_log *log, scenario *owner, int first, int count)
{
    static char payload[PAYLOAD_BYTES_MAX];
    for (int number = first; number < first + count; number++) {
        payload_of(number, owner->payload_bytes, payload);
        kci_uuid_v7(&owner->ids[number]);
        owner->outcomes[number] = (outcome){.owner = owner, .number = number};
        kci_record record = record_of(owner, number, payload);
        kc_err err = kci_queue_log_append(log, &record, on_done, &owner->outcomes[number]);
        assert_true(err == KC_OK || err == KC_ERR_IO);
        if (err != KC_OK) return false;
        owner->outcomes[number].appended = true;
    }
    return true;
}

static int appended_count(const scenario *owner)
{
    int count = 0;
    for (int number = 0; number < RECORDS_MAX; number++)
        count += owner->outcomes[number].appended;
    return count;
}

static void wait_dones(scenario *owner)
{
    int count = appended_count(owner);
    pthread_mutex_lock(&owner->lock);
    while (owner->done_count < count)
        pthread_cond_wait(&owner->changed, &owner->lock);
    pthread_mutex_unlock(&owner->lock);
}

static kc_err open_log(kci_queue_log **log, const scenario *owner, kci_scan_visit visit,
                       void *context, kci_scan_report *report, char *error, size_t error_size)
{
    kci_queue_log_config config = {.directory = directory,
                                   .durability = owner->durability,
                                   .segment_bytes = owner->segment_bytes,
                                   .preallocate = true};
    error[0] = '\0';
    return kci_queue_log_open(log, &config, visit, context, report, error, error_size);
}

static void remove_directory(void)
{
    char command[256];
    snprintf(command, sizeof command, "rm -rf '%s'", directory);
    assert_int_equal(system(command), 0);
}

/* The first bytes of one more record after the last prepared one, and the
 * end of the file there, as a crash in the middle of a write leaves them
 * (log_test.c's torn tail). */
static void tear_tail(scenario *owner)
{
    const outcome *last = &owner->outcomes[owner->prepared_count - 1];
    static char payload[PAYLOAD_BYTES_MAX];
    static uint8_t encoded[PAYLOAD_BYTES_MAX + 1024];
    kci_record torn = record_of(owner, owner->prepared_count, payload);
    size_t size = kci_record_encode(&torn, encoded); /* every record here has this size */
    assert_true(size > TORN_PREFIX_BYTES);
    char path[PATH_MAX];
    assert_true(kci_segment_path(path, directory, kci_position_segment(last->position)));
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    assert_true(fd >= 0);
    off_t end = (off_t)kci_position_offset(last->position) + (off_t)size;
    assert_int_equal(pwrite(fd, encoded, TORN_PREFIX_BYTES, end), TORN_PREFIX_BYTES);
    assert_int_equal(ftruncate(fd, end + TORN_PREFIX_BYTES), 0);
    assert_int_equal(fsync(fd), 0);
    close(fd);
}

/* The starting point: prepared_count acknowledged records (and a torn tail). */
static void prepare(scenario *owner)
{
    remove_directory();
    memset(owner->outcomes, 0, sizeof owner->outcomes);
    owner->done_count = 0;
    if (owner->prepared_count == 0) return;
    kci_queue_log *log = NULL;
    kci_scan_report report;
    char error[256];
    assert_int_equal(open_log(&log, owner, NULL, NULL, &report, error, sizeof error), KC_OK);
    assert_true(append_group(log, owner, 0, owner->prepared_count));
    wait_dones(owner);
    kci_queue_log_close(log);
    for (int number = 0; number < owner->prepared_count; number++)
        assert_int_equal(owner->outcomes[number].status, KC_OK);
    if (owner->torn_tail) tear_tail(owner);
}

/* The run under faults: open, the groups of appends, close. */
static void faulty_run(scenario *owner)
{
    kci_queue_log *log = NULL;
    kci_scan_report report;
    char error[256];
    kc_err err = open_log(&log, owner, NULL, NULL, &report, error, sizeof error);
    if (err != KC_OK) {
        assert_true(error[0] != '\0'); /* a clear error, not a silent one */
        return;
    }
    if (owner->retention) {
        kci_queue_log_stats stats;
        kci_queue_log_stats_get(log, &stats);
        kci_queue_log_remove_segments_below(log, stats.segment_current);
    }
    int first = owner->prepared_count;
    bool serving = true;
    for (int group = 0; group < owner->group_count && serving; group++) {
        serving = append_group(log, owner, first, owner->group_records);
        wait_dones(owner);
        first += owner->group_records;
    }
    kci_queue_log_close(log);
}

typedef struct check_context {
    scenario *owner;
    kci_verify *verify;
} check_context;

static kc_err check_visit(void *context, const kci_record *record, kci_position position)
{
    check_context *check = context;
    scenario *owner = check->owner;
    int number = (int)record->ts_wall_ms;
    if (number < 0 || number >= RECORDS_MAX) {
        fail_msg("record number %d out of range", number);
        return KC_ERR_CORRUPT;
    }
    static char payload[PAYLOAD_BYTES_MAX];
    payload_of(number, owner->payload_bytes, payload);
    if (memcmp(&record->id, &owner->ids[number], sizeof record->id) == 0 &&
        record->payload_length == owner->payload_bytes &&
        memcmp(record->payload, payload, owner->payload_bytes) == 0) {
        owner->found[number] = true;
        owner->found_at[number] = position;
    }
    return kci_verify_visit(check->verify, record, position);
}

static void print_unacknowledged_loss(const scenario *owner, int number)
{
    char text[KC_UUID_TEXT_BYTES + 1];
    kci_uuid_format(&owner->ids[number], text);
    print_error("%s, call %llu (%s) failed with %s: record %d (%s) was acknowledged at segment "
                "%u offset %u and is %s\n",
                owner->name, (unsigned long long)owner->call_number,
                fault_call_name(owner->fired_kind), fault_error_name(owner->fired_error), number,
                text, kci_position_segment(owner->outcomes[number].position),
                kci_position_offset(owner->outcomes[number].position),
                owner->found[number] ? "elsewhere" : "missing");
}

/* After the crash: the log opens with the real calls, holds every
 * acknowledged record where done said, verify is clean, and it serves. */
static void check_recovered(scenario *owner)
{
    memset(owner->found, 0, sizeof owner->found);
    kci_verify *verify = calloc(1, sizeof *verify);
    assert_non_null(verify);
    assert_true(kci_verify_init(verify));
    check_context check = {.owner = owner, .verify = verify};
    kci_queue_log *log = NULL;
    kci_scan_report report;
    char error[256];
    kc_err err = open_log(&log, owner, check_visit, &check, &report, error, sizeof error);
    if (err != KC_OK || report.corruption_count > 0 || report.tail_damaged ||
        report.segments_missing > 0)
        print_error("%s, call %llu (%s) failed with %s: reopen: %s\n", owner->name,
                    (unsigned long long)owner->call_number, fault_call_name(owner->fired_kind),
                    fault_error_name(owner->fired_error), error);
    assert_int_equal(err, KC_OK);
    assert_int_equal(report.corruption_count, 0);
    assert_false(report.tail_damaged);
    assert_int_equal(report.segments_missing, 0);
    kci_verify_finish(verify, &report);
    assert_int_equal(verify->result.problem_count, 0);
    for (int number = 0; number < RECORDS_MAX; number++) {
        const outcome *entry = &owner->outcomes[number];
        if (!entry->done || entry->status != KC_OK) continue;
        /* Retention removed it, with its whole segment: meant to go. */
        if (owner->retention && kci_position_segment(entry->position) < report.segment_first)
            continue;
        if (!owner->found[number] || owner->found_at[number] != entry->position)
            print_unacknowledged_loss(owner, number);
        assert_true(owner->found[number]);
        assert_true(owner->found_at[number] == entry->position);
    }
    owner->outcomes[RECORDS_MAX - 1] = (outcome){0};
    assert_true(append_group(log, owner, RECORDS_MAX - 1, 1));
    kci_queue_log_close(log);
    assert_true(owner->outcomes[RECORDS_MAX - 1].done);
    assert_int_equal(owner->outcomes[RECORDS_MAX - 1].status, KC_OK);
    kci_verify_destroy(verify);
    free(verify);
}

static void check_outcomes(scenario *owner, int error)
{
    int acknowledged = 0;
    for (int number = 0; number < RECORDS_MAX - 1; number++) {
        const outcome *entry = &owner->outcomes[number];
        assert_true(entry->done == entry->appended); /* exactly one done per append */
        if (entry->done && entry->status != KC_OK) assert_int_not_equal(entry->error_number, 0);
        acknowledged += entry->done && entry->status == KC_OK;
    }
    /* Retried or finished by the caller: nothing may fail. */
    if (error == EINTR || error == FAULT_SHORT_WRITE)
        assert_int_equal(acknowledged,
                         owner->prepared_count + owner->group_count * owner->group_records);
}

static void run_scenario(void *context, uint64_t call_number, int error)
{
    scenario *owner = context;
    owner->call_number = call_number;
    prepare(owner);
    int descriptors = fault_open_descriptors();
    fault_install();
    if (call_number > 0) fault_arm(call_number, error);
    faulty_run(owner);
    fault_remove();
    assert_int_equal(fault_open_descriptors(), descriptors);
    owner->fired_error = 0;
    if (!fault_fired(&owner->fired_kind, &owner->fired_error)) owner->fired_error = 0;
    check_outcomes(owner, owner->fired_error);
    fault_crash();
    check_recovered(owner);
}

static void sweep(scenario *owner)
{
    pthread_mutex_init(&owner->lock, NULL);
    pthread_cond_init(&owner->changed, NULL);
    assert_int_equal(kci_log_open_file("/dev/null"), 0); /* thousands of expected errors */
    fault_sweep_stats stats;
    fault_sweep(run_scenario, owner, 1, &stats);
    assert_int_equal(kci_log_open_file("/dev/stderr"), 0);
    fault_sweep_print(owner->name, &stats);
    assert_true(stats.calls_counted > 0);
    assert_true(stats.fired > 0);
    pthread_mutex_destroy(&owner->lock);
    pthread_cond_destroy(&owner->changed);
}

static void test_burst(void **state)
{
    (void)state;
    static scenario owner = {.name = "burst",
                             .segment_bytes = 1024 * 1024,
                             .payload_bytes = 100,
                             .group_count = 3,
                             .group_records = 40};
    sweep(&owner);
}

/* Durability "always": a write and a sync per record. */
static void test_burst_always(void **state)
{
    (void)state;
    static scenario owner = {.name = "burst, always",
                             .durability = KCI_DURABILITY_ALWAYS,
                             .segment_bytes = 1024 * 1024,
                             .payload_bytes = 100,
                             .group_count = 3,
                             .group_records = 8};
    sweep(&owner);
}

static void test_roll_over(void **state)
{
    (void)state;
    static scenario owner = {.name = "roll-over",
                             .segment_bytes = KCI_SEGMENT_BYTES_MIN,
                             .payload_bytes = 3000,
                             .group_count = 4,
                             .group_records = 20};
    sweep(&owner);
}

static void test_recovery(void **state)
{
    (void)state;
    static scenario owner = {.name = "recovery",
                             .segment_bytes = 1024 * 1024,
                             .payload_bytes = 200,
                             .group_count = 2,
                             .group_records = 20,
                             .prepared_count = 30,
                             .torn_tail = true};
    sweep(&owner);
}

/* Retention: the segments below the current one are removed, then appends. */
static void test_retention(void **state)
{
    (void)state;
    static scenario owner = {.name = "retention",
                             .segment_bytes = KCI_SEGMENT_BYTES_MIN,
                             .payload_bytes = 3000,
                             .group_count = 1,
                             .group_records = 10,
                             .prepared_count = 100,
                             .retention = true};
    sweep(&owner);
}

static int setup(void **state)
{
    (void)state;
    /* tmpfs when there is one: thousands of fsyncs. */
    const char *base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
    snprintf(directory, sizeof directory, "%s/kc-fault-test-XXXXXX", base);
    return mkdtemp(directory) != NULL ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    remove_directory();
    return 0;
}

/* argv[1], when given, names the one scenario to run ("test_burst"...):
 * meson runs each as a test of its own, so each stays well inside its time
 * on a loaded machine. */
int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_burst),     cmocka_unit_test(test_burst_always),
        cmocka_unit_test(test_roll_over), cmocka_unit_test(test_recovery),
        cmocka_unit_test(test_retention),
    };
    if (argc > 1) cmocka_set_test_filter(argv[1]);
    return cmocka_run_group_tests(tests, setup, teardown);
}
