/* verify_test.c - `kcobra queue verify` finds what checksums cannot: logs
 * whose records all pass their checks but do not agree with one another.
 *
 * Each case writes a log through the real log code (kci_queue_log), then
 * changes it the way a fault would (a reply for an id never stored; a
 * request record overwritten in place by another writer's record of the
 * same size, as two kcobrads on one directory did; a segment deleted from
 * the middle), and runs the kcobra binary (argv[1]): exit 1, "INCONSISTENT"
 * and the missing id named. The checks' details (out of order, stored
 * twice, a second reply, what retention may leave) go through the
 * kci_verify API on the same logs.
 *
 * Usage: queue_verify_test KCOBRA */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <fcntl.h>
#include <pthread.h>
#include <sys/wait.h>
#include <unistd.h>

#include "queue/log.h"
#include "queue/verify.h"

enum { RECORDS_MAX = 64, OUTPUT_BYTES = 16384, PAYLOAD_BYTES = 100 };

static const char *kcobra_path;
static char directory[128];

/* ---- writing a log ---- */

typedef struct written {
    pthread_mutex_t lock;
    pthread_cond_t changed;
    int done_count;
    kci_position positions[RECORDS_MAX];
} written;

typedef struct slot {
    written *owner;
    int index;
} slot;

static void on_done(void *context, kc_err status, kci_position position)
{
    slot *entry = context;
    written *owner = entry->owner;
    pthread_mutex_lock(&owner->lock);
    owner->positions[entry->index] = status == KC_OK ? position : 0;
    owner->done_count++;
    pthread_cond_broadcast(&owner->changed);
    pthread_mutex_unlock(&owner->lock);
}

typedef struct planned {
    kci_record_kind kind;
    int id_number; /* ids[id_number] */
} planned;

static kci_uuid ids[RECORDS_MAX];

static kci_record record_of(kci_record_kind kind, const kci_uuid *id)
{
    static char payload[PAYLOAD_BYTES];
    memset(payload, 'v', sizeof payload);
    bool request = kind == KCI_RECORD_REQUEST;
    return (kci_record){.kind = kind,
                        .id = *id,
                        .ts_wall_ms = 1,
                        .attempt = request ? 1 : 0,
                        .subject = request ? "kc.req.v" : "",
                        .subject_length = request ? 8 : 0,
                        .reply = "",
                        .client = "",
                        .payload = payload,
                        .payload_length = request ? PAYLOAD_BYTES : 0};
}

/* Appends the plan in order (segment_bytes 0: the default); positions out. */
static void write_log(const planned *plan, int count, uint32_t segment_bytes,
                      kci_position *positions)
{
    assert_true(count <= RECORDS_MAX);
    kci_queue_log_config config = {
        .directory = directory, .durability = KCI_DURABILITY_BATCH, .segment_bytes = segment_bytes};
    kci_scan_report report;
    char error[256] = "";
    kci_queue_log *log = NULL;
    assert_int_equal(kci_queue_log_open(&log, &config, NULL, NULL, &report, error, sizeof error),
                     KC_OK);
    written owner = {.lock = PTHREAD_MUTEX_INITIALIZER, .changed = PTHREAD_COND_INITIALIZER};
    slot slots[RECORDS_MAX];
    for (int index = 0; index < count; index++) {
        slots[index] = (slot){.owner = &owner, .index = index};
        kci_record record = record_of(plan[index].kind, &ids[plan[index].id_number]);
        /* One at a time: each in its own batch, in this order. */
        assert_int_equal(kci_queue_log_append(log, &record, on_done, &slots[index]), KC_OK);
        pthread_mutex_lock(&owner.lock);
        while (owner.done_count <= index)
            pthread_cond_wait(&owner.changed, &owner.lock);
        pthread_mutex_unlock(&owner.lock);
        assert_true(owner.positions[index] != 0);
        positions[index] = owner.positions[index];
    }
    kci_queue_log_close(log);
}

/* Writes a record in place at position, as a second writer would. */
static void overwrite(kci_position position, const kci_record *record)
{
    uint8_t bytes[KCI_RECORD_HEADER_BYTES + PAYLOAD_BYTES + 64];
    assert_true(kci_record_size(record) <= sizeof bytes);
    size_t size = kci_record_encode(record, bytes);
    char path[PATH_MAX];
    assert_true(kci_segment_path(path, directory, kci_position_segment(position)));
    int fd = open(path, O_WRONLY);
    assert_true(fd >= 0);
    assert_int_equal(pwrite(fd, bytes, size, kci_position_offset(position)), (ssize_t)size);
    close(fd);
}

/* ---- checking ---- */

static void verify_api(kci_verify_result *out, kci_scan_report *report)
{
    kci_verify verify;
    assert_true(kci_verify_init(&verify));
    kci_scan_options options = {.skip_corrupt = true};
    char error[256] = "";
    assert_int_equal(
        kci_scan(directory, &options, kci_verify_visit, &verify, report, error, sizeof error),
        KC_OK);
    kci_verify_finish(&verify, report);
    *out = verify.result;
    kci_verify_destroy(&verify);
}

static int count_kind(const kci_verify_result *result, kci_verify_problem_kind kind)
{
    int count = 0;
    for (uint64_t index = 0; index < result->problem_count && index < KCI_VERIFY_PROBLEMS_MAX;
         index++)
        count += result->problems[index].kind == kind;
    return count;
}

/* Runs `kcobra queue verify --dir <directory>`: exit status, and stdout
 * and stderr together in output. */
static int run_verify(char *output, size_t output_size)
{
    char command[512];
    snprintf(command, sizeof command, "'%s' queue verify --dir '%s' 2>&1", kcobra_path, directory);
    FILE *pipe = popen(command, "r");
    assert_non_null(pipe);
    size_t got = fread(output, 1, output_size - 1, pipe);
    output[got] = '\0';
    int status = pclose(pipe);
    fprintf(stderr, "%s", output);
    assert_true(WIFEXITED(status));
    return WEXITSTATUS(status);
}

static void expect_verify_names_missing(int id_number)
{
    char output[OUTPUT_BYTES], id[KC_UUID_TEXT_BYTES + 1], expected[128];
    assert_int_equal(run_verify(output, sizeof output), 1);
    kci_uuid_format(&ids[id_number], id);
    snprintf(expected, sizeof expected, "acknowledged request %s is missing", id);
    assert_non_null(strstr(output, expected));
    assert_non_null(strstr(output, "INCONSISTENT"));
    assert_null(strstr(output, ": sound:"));
}

static int setup(void **state)
{
    (void)state;
    snprintf(directory, sizeof directory, "/tmp/kc-verify-test-XXXXXX");
    for (int index = 0; index < RECORDS_MAX; index++)
        kci_uuid_v7(&ids[index]);
    return mkdtemp(directory) != NULL ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    char command[256];
    snprintf(command, sizeof command, "rm -rf '%s'", directory);
    return system(command) == 0 ? 0 : -1;
}

/* ---- cases ---- */

static void test_sound_log(void **state)
{
    (void)state;
    planned plan[] = {{KCI_RECORD_REQUEST, 0},    {KCI_RECORD_REQUEST, 1},
                      {KCI_RECORD_REDELIVERY, 1}, {KCI_RECORD_REPLY, 0},
                      {KCI_RECORD_TOMBSTONE, 1},  {KCI_RECORD_REPLY, 1}}; /* a late reply */
    kci_position positions[RECORDS_MAX];
    write_log(plan, 6, 0, positions);
    kci_verify_result result;
    kci_scan_report report;
    verify_api(&result, &report);
    assert_int_equal(result.problem_count, 0);
    assert_int_equal(result.requests, 2);
    assert_int_equal(result.replied, 2);
    char output[OUTPUT_BYTES];
    assert_int_equal(run_verify(output, sizeof output), 0);
    assert_non_null(strstr(output, ": sound:"));
}

/* A reply for an id that was never stored as a request. */
static void test_reply_without_request(void **state)
{
    (void)state;
    planned plan[] = {{KCI_RECORD_REQUEST, 0}, {KCI_RECORD_REPLY, 0}, {KCI_RECORD_REPLY, 7}};
    kci_position positions[RECORDS_MAX];
    write_log(plan, 3, 0, positions);
    kci_verify_result result;
    kci_scan_report report;
    verify_api(&result, &report);
    assert_int_equal(result.missing_requests, 1);
    assert_int_equal(count_kind(&result, KCI_VERIFY_REQUEST_MISSING), 1);
    assert_true(result.problems[0].position == positions[2]);
    expect_verify_names_missing(7);
}

/* Two writers: the second writes its own request over the first's, record
 * for record (same size, every checksum good); the first's reply remains. */
static void test_request_overwritten_by_a_second_writer(void **state)
{
    (void)state;
    planned plan[] = {{KCI_RECORD_REQUEST, 0}, {KCI_RECORD_REQUEST, 1}, {KCI_RECORD_REQUEST, 2},
                      {KCI_RECORD_REPLY, 0},   {KCI_RECORD_REPLY, 1},   {KCI_RECORD_REPLY, 2}};
    kci_position positions[RECORDS_MAX];
    write_log(plan, 6, 0, positions);
    kci_record other = record_of(KCI_RECORD_REQUEST, &ids[9]);
    overwrite(positions[1], &other);
    kci_scan_report report;
    kci_verify_result result;
    verify_api(&result, &report);
    assert_int_equal(report.corruption_count, 0); /* every checksum passes */
    assert_int_equal(result.missing_requests, 1);
    expect_verify_names_missing(1);
}

static void test_twice_and_out_of_order(void **state)
{
    (void)state;
    planned plan[] = {{KCI_RECORD_REQUEST, 0}, {KCI_RECORD_REQUEST, 0},  /* stored twice */
                      {KCI_RECORD_REPLY, 0},   {KCI_RECORD_REPLY, 0},    /* replied twice */
                      {KCI_RECORD_REPLY, 1},   {KCI_RECORD_REQUEST, 1}}; /* reply first */
    kci_position positions[RECORDS_MAX];
    write_log(plan, 6, 0, positions);
    kci_verify_result result;
    kci_scan_report report;
    verify_api(&result, &report);
    assert_int_equal(result.problem_count, 3);
    assert_int_equal(count_kind(&result, KCI_VERIFY_REQUEST_TWICE), 1);
    assert_int_equal(count_kind(&result, KCI_VERIFY_REPLY_TWICE), 1);
    assert_int_equal(count_kind(&result, KCI_VERIFY_OUT_OF_ORDER), 1);
    assert_int_equal(result.missing_requests, 0);
    char output[OUTPUT_BYTES];
    assert_int_equal(run_verify(output, sizeof output), 1);
    assert_non_null(strstr(output, "is stored twice"));
    assert_non_null(strstr(output, "has a second reply"));
    assert_non_null(strstr(output, "comes before the request"));
}

/* Writes segment `number` afresh holding the plan's records, in order. */
static void write_segment(uint32_t number, const planned *plan, int count)
{
    char path[PATH_MAX];
    assert_true(kci_segment_path(path, directory, number));
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    assert_true(fd >= 0);
    uint8_t bytes[KCI_RECORD_HEADER_BYTES + PAYLOAD_BYTES + 64];
    for (int index = 0; index < count; index++) {
        kci_record record = record_of(plan[index].kind, &ids[plan[index].id_number]);
        size_t size = kci_record_encode(&record, bytes);
        assert_int_equal(write(fd, bytes, size), (ssize_t)size);
    }
    close(fd);
}

/* A segment deleted from the middle: its records are lost. */
static void test_segment_missing(void **state)
{
    (void)state;
    planned first[] = {{KCI_RECORD_REQUEST, 0}, {KCI_RECORD_REPLY, 0}};
    planned third[] = {{KCI_RECORD_REQUEST, 1}};
    write_segment(1, first, 2);
    write_segment(3, third, 1);
    kci_verify_result result;
    kci_scan_report report;
    verify_api(&result, &report);
    assert_int_equal(report.segments_missing, 1);
    assert_int_equal(report.segment_missing_first, 2);
    assert_int_equal(result.problem_count, 1);
    assert_int_equal(count_kind(&result, KCI_VERIFY_SEGMENTS_MISSING), 1);
    char output[OUTPUT_BYTES];
    assert_int_equal(run_verify(output, sizeof output), 1);
    assert_non_null(
        strstr(output, "1 segment is missing from the middle of the log, from number 2 on"));
}

/* After retention removed the oldest segments, a reply may outlive its
 * request: a note, not a problem. A redelivery of a request that has no
 * resolution is still a missing request (retention removes only segments
 * whose requests are resolved). */
static void test_references_after_retention(void **state)
{
    (void)state;
    planned second[] = {{KCI_RECORD_REPLY, 0}, {KCI_RECORD_REDELIVERY, 1}, {KCI_RECORD_REQUEST, 2}};
    write_segment(2, second, 3); /* segment 1 was removed */
    kci_verify_result result;
    kci_scan_report report;
    verify_api(&result, &report);
    assert_int_equal(report.segment_first, 2);
    assert_int_equal(result.references_after_retention, 1);
    assert_int_equal(result.missing_requests, 1);
    assert_int_equal(result.problem_count, 1);
    assert_int_equal(result.problems[0].kind, KCI_VERIFY_REQUEST_MISSING);
    assert_memory_equal(result.problems[0].id.bytes, ids[1].bytes, 16);
    expect_verify_names_missing(1);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: queue_verify_test KCOBRA\n");
        return 2;
    }
    kcobra_path = argv[1];
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_sound_log, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reply_without_request, setup, teardown),
        cmocka_unit_test_setup_teardown(test_request_overwritten_by_a_second_writer, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_twice_and_out_of_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_segment_missing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_references_after_retention, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
