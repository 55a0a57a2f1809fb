/*
 * lease.c - the active/standby lease (src/service/lease.h) on a three-server
 * nats-server cluster with JetStream (js_cluster.h), between real processes.
 *
 * Each contender is a lease_contender process (argv[2]) connected first to
 * one server of the cluster; it prints when it acquires and loses the lease
 * and, every 10 ms while it holds it, an "active" sample with the system's
 * monotonic clock. After every case the samples are grouped per (contender,
 * term) into intervals, and no two intervals of different terms may overlap:
 * at no sampled instant did two processes believe they were active. A term
 * belongs to one contender, and terms grow with time.
 *
 * Cases (each with its own bucket "kc_test_<case>", R3, ttl 1200 ms, renew
 * 200 ms, margin 200 ms):
 *  takeover       three contenders on three servers; five times: kill -9 the
 *                 holder, measure until another acquires, start a new
 *                 contender in its place. Prints median and worst.
 *  release        SIGTERM to the holder: it marks the record released and a
 *                 standby takes over at its next read (well under the ttl).
 *  paused         SIGSTOP the holder until a standby took over and a ttl
 *                 more, then SIGCONT: its renewal fails the
 *                 compare-and-set, it reports "deposed", and it never acquires
 *                 again while the new holder lives.
 *  server_killed  kill -9 the nats-server leading the bucket's stream: once
 *                 the other two elect a new leader (4 to 9 s in 2.9), a
 *                 contender holds the lease again. Prints the gap without a
 *                 holder. The server is restarted and the lease still works.
 *  server_paused  SIGSTOP the server the holder is connected to (a partition,
 *                 as the others see it) until a contender holds the lease
 *                 again, then SIGCONT: the old holder has reported its loss
 *                 (it may hold again: its client reconnects elsewhere) and
 *                 the lease stays with one holder.
 *  cas_semantics  what the lease's compare-and-set rests on, pinned on the
 *                 R3 stream of a bucket: of 8 writes in flight together that
 *                 expect the same Nats-Expected-Last-Sequence, exactly one
 *                 succeeds. Also prints how many succeed with the same
 *                 Nats-Expected-Last-Subject-Sequence (kvStore_Update's
 *                 check): more than one on nats-server 2.9.10, which is why
 *                 the lease does not use it.
 *
 * Nothing here asserts a speed: the bounds are liveness bounds, generous for
 * a loaded two-core machine. Typically 45-70 s in all.
 */
/* clang-format off */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
/* clang-format on */

#include <fcntl.h>
#include <nats/nats.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "js_cluster.h"

enum {
    CONTENDERS_MAX = 16,
    SAMPLES_MAX = 16384, /* per contender and case: 10 ms samples over at most ~160 s */
    TERMS_MAX = 64,
    LINE_BYTES_MAX = 256,
    TTL_MS = 1200,
    RENEW_MS = 200,
    MARGIN_MS = 200,
    REPLICAS = 3,
    READY_TIMEOUT_MS = 20000,  /* a contender opened the bucket */
    HOLDER_TIMEOUT_MS = 15000, /* someone acquires a free lease */
    POLL_INTERVAL_MS = 20,
    HOLD_BEFORE_KILL_MS = 1000, /* let renewals happen before each fault */
    TAKEOVER_ROUNDS = 5,
    TAKEOVER_TIMEOUT_MS = 15000, /* ttl + margin + a read, with room for a loaded machine */
    RELEASE_TIMEOUT_MS = 10000,
    PAUSE_AFTER_TAKEOVER_MS = TTL_MS,
    DEPOSED_TIMEOUT_MS = 10000,
    AFTER_RESUME_MS = 1500,
    SERVER_FAILOVER_TIMEOUT_MS = 45000, /* election (4-9 s) + reconnects + ttl */
    LEADER_LOOKUP_TIMEOUT_MS = 10000,
    STOP_TIMEOUT_MS = 5000,
    SKIP_EXIT_CODE = 77,
    /* cas_semantics */
    CAS_CONTENDERS = 8,  /* writes in flight together, expecting one sequence */
    CAS_WAIT_MS = 10000, /* for every publish acknowledgement */
    CAS_STREAM_WAIT_MS = 10000,
    CAS_CONNECT_TIMEOUT_MS = 5000,
};

static const char KEY[] = "role";

typedef struct contender {
    pid_t pid; /* 0: not running */
    int server_index;
    bool paused;
    char output_path[2 * HARNESS_PATH_SIZE_MAX];
} contender;

typedef struct interval {
    int contender_index;
    unsigned long long term;
    long long first_ms, last_ms;
} interval;

/* What a contender printed so far. */
typedef struct transcript {
    int acquired_count;
    unsigned long long acquired_term[TERMS_MAX];
    long long acquired_ms[TERMS_MAX];
    int lost_count;
    unsigned long long lost_term[TERMS_MAX];
    char lost_reason[TERMS_MAX][16];
    bool holding; /* the last event was "acquired" */
    bool closed;
    int interval_count;
    interval intervals[TERMS_MAX];
} transcript;

static const char *contender_binary;
static js_cluster cluster;
static char work_directory[HARNESS_PATH_SIZE_MAX];
static contender contenders[CONTENDERS_MAX];
static int contender_count;
static const char *case_key;

/* ======================================================================= contenders */

static int contender_spawn(int server_index)
{
    assert_true(contender_count < CONTENDERS_MAX);
    int index = contender_count++;
    contender *self = &contenders[index];
    memset(self, 0, sizeof(*self));
    self->server_index = server_index;
    snprintf(self->output_path, sizeof(self->output_path), "%s/%s-%d.out", work_directory, case_key,
             index);
    char urls[JS_CLUSTER_URLS_BYTES_MAX], node[32], ttl[16], renew[16], margin[16], replicas[8];
    char bucket[64];
    js_cluster_urls_from(&cluster, server_index, urls, sizeof(urls));
    snprintf(bucket, sizeof(bucket), "kc_test_%s", case_key); /* one bucket per lease */
    snprintf(node, sizeof(node), "contender-%d", index);
    snprintf(ttl, sizeof(ttl), "%d", TTL_MS);
    snprintf(renew, sizeof(renew), "%d", RENEW_MS);
    snprintf(margin, sizeof(margin), "%d", MARGIN_MS);
    snprintf(replicas, sizeof(replicas), "%d", REPLICAS);
    const char *const argv[] = {contender_binary, urls,     bucket, KEY, node, ttl, renew,
                                margin,           replicas, NULL};
    int output = open(self->output_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(output >= 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        dup2(output, STDOUT_FILENO);
        dup2(output, STDERR_FILENO);
        execv(argv[0], (char *const *)argv);
        _exit(127);
    }
    close(output);
    self->pid = pid;
    return index;
}

static void contender_signal(int index, int signal_number)
{
    assert_true(contenders[index].pid > 0);
    assert_int_equal(kill(contenders[index].pid, signal_number), 0);
}

static void contender_kill(int index)
{
    contender_signal(index, SIGKILL);
    waitpid(contenders[index].pid, NULL, 0);
    contenders[index].pid = 0;
    contenders[index].paused = false;
}

/* SIGTERM and a bounded wait, then SIGKILL. */
static void contender_stop(int index)
{
    contender *self = &contenders[index];
    if (self->pid == 0) return;
    if (self->paused) kill(self->pid, SIGCONT);
    kill(self->pid, SIGTERM);
    int64_t deadline_ms = harness_now_ms() + STOP_TIMEOUT_MS;
    while (harness_now_ms() < deadline_ms && waitpid(self->pid, NULL, WNOHANG) == 0)
        harness_sleep_ms(POLL_INTERVAL_MS);
    if (kill(self->pid, 0) == 0) {
        kill(self->pid, SIGKILL);
        waitpid(self->pid, NULL, 0);
    }
    self->pid = 0;
}

/* ======================================================================= transcripts */

static void transcript_sample(transcript *script, int index, unsigned long long term, long long ms)
{
    interval *last =
        script->interval_count > 0 ? &script->intervals[script->interval_count - 1] : NULL;
    if (last != NULL && last->term == term) {
        last->last_ms = ms;
        return;
    }
    assert_true(script->interval_count < TERMS_MAX);
    script->intervals[script->interval_count++] =
        (interval){.contender_index = index, .term = term, .first_ms = ms, .last_ms = ms};
}

static void transcript_line(transcript *script, int index, const char *line)
{
    unsigned long long term = 0;
    long long ms = 0;
    char reason[16];
    if (sscanf(line, "active %llu %lld", &term, &ms) == 2) {
        transcript_sample(script, index, term, ms);
    } else if (sscanf(line, "acquired %llu %lld", &term, &ms) == 2) {
        assert_true(script->acquired_count < TERMS_MAX);
        script->acquired_term[script->acquired_count] = term;
        script->acquired_ms[script->acquired_count++] = ms;
        script->holding = true;
    } else if (sscanf(line, "lost %llu %15s %lld", &term, reason, &ms) == 3) {
        assert_true(script->lost_count < TERMS_MAX);
        script->lost_term[script->lost_count] = term;
        snprintf(script->lost_reason[script->lost_count++], sizeof(reason), "%s", reason);
        script->holding = false;
    } else if (strcmp(line, "closed") == 0) {
        script->closed = true;
    }
}

static void transcript_read(int index, transcript *script)
{
    memset(script, 0, sizeof(*script));
    FILE *file = fopen(contenders[index].output_path, "r");
    if (file == NULL) return;
    char line[LINE_BYTES_MAX];
    while (fgets(line, sizeof(line), file) != NULL) {
        line[strcspn(line, "\n")] = '\0';
        transcript_line(script, index, line);
    }
    fclose(file);
}

static bool transcript_has(int index, const char *prefix)
{
    FILE *file = fopen(contenders[index].output_path, "r");
    if (file == NULL) return false;
    char line[LINE_BYTES_MAX];
    bool found = false;
    while (!found && fgets(line, sizeof(line), file) != NULL)
        found = strncmp(line, prefix, strlen(prefix)) == 0;
    fclose(file);
    return found;
}

static void wait_ready(int index)
{
    int64_t deadline_ms = harness_now_ms() + READY_TIMEOUT_MS;
    while (!transcript_has(index, "ready") && harness_now_ms() < deadline_ms)
        harness_sleep_ms(POLL_INTERVAL_MS);
    if (!transcript_has(index, "ready"))
        fprintf(stderr, "lease: contender %d not ready, see %s\n", index,
                contenders[index].output_path);
    assert_true(transcript_has(index, "ready"));
}

/* A running contender other than excluded that acquired at or after
 * since_ms; its acquisition time to acquired_ms. -1 after timeout_ms. */
static int wait_acquired(int excluded, long long since_ms, int timeout_ms, long long *acquired_ms)
{
    int64_t deadline_ms = harness_now_ms() + timeout_ms;
    static transcript script;
    do {
        for (int index = 0; index < contender_count; index++) {
            if (index == excluded || contenders[index].pid == 0) continue;
            transcript_read(index, &script);
            for (int event = 0; event < script.acquired_count; event++) {
                if (script.acquired_ms[event] < since_ms) continue;
                *acquired_ms = script.acquired_ms[event];
                return index;
            }
        }
        harness_sleep_ms(POLL_INTERVAL_MS);
    } while (harness_now_ms() < deadline_ms);
    return -1;
}

/* The running, unpaused contender whose last event is "acquired", or -1. */
static int current_holder(void)
{
    static transcript script;
    int holder = -1;
    for (int index = 0; index < contender_count; index++) {
        if (contenders[index].pid == 0 || contenders[index].paused) continue;
        transcript_read(index, &script);
        if (!script.holding) continue;
        assert_int_equal(holder, -1); /* two running holders by their own account */
        holder = index;
    }
    return holder;
}

/* ======================================================================= the check */

/* No two intervals of different terms overlap; a term has one contender;
 * terms grow with time. Returns the number of intervals checked. */
static int check_exclusive(void)
{
    static transcript scripts[CONTENDERS_MAX];
    static interval all[CONTENDERS_MAX * TERMS_MAX];
    int count = 0;
    for (int index = 0; index < contender_count; index++) {
        transcript_read(index, &scripts[index]);
        for (int item = 0; item < scripts[index].interval_count; item++)
            all[count++] = scripts[index].intervals[item];
    }
    for (int a = 0; a < count; a++) {
        for (int b = a + 1; b < count; b++) {
            if (all[a].term == all[b].term) {
                assert_int_equal(all[a].contender_index, all[b].contender_index);
                continue;
            }
            bool disjoint = all[a].last_ms < all[b].first_ms || all[b].last_ms < all[a].first_ms;
            if (!disjoint)
                fprintf(stderr,
                        "lease: contender %d term %llu [%lld, %lld] overlaps contender %d term "
                        "%llu [%lld, %lld]\n",
                        all[a].contender_index, all[a].term, all[a].first_ms, all[a].last_ms,
                        all[b].contender_index, all[b].term, all[b].first_ms, all[b].last_ms);
            assert_true(disjoint);
            bool ordered = (all[a].term < all[b].term) == (all[a].first_ms < all[b].first_ms);
            assert_true(ordered);
        }
    }
    return count;
}

/* ======================================================================= fixtures */

static int group_setup(void **state)
{
    (void)state;
    const char *temporary = getenv("TMPDIR");
    snprintf(work_directory, sizeof(work_directory), "%s/kc-lease-XXXXXX",
             temporary != NULL && temporary[0] != '\0' ? temporary : "/tmp");
    if (mkdtemp(work_directory) == NULL) return -1;
    return js_cluster_start(&cluster, getenv("KC_NATS_SERVER")) == HARNESS_OK ? 0 : -1;
}

static int group_teardown(void **state)
{
    (void)state;
    js_cluster_cleanup(&cluster);
    if (getenv(HARNESS_KEEP_ENVIRONMENT) == NULL) {
        char command[HARNESS_PATH_SIZE_MAX + 16];
        snprintf(command, sizeof(command), "rm -rf '%s'", work_directory);
        if (system(command) != 0) fprintf(stderr, "lease: could not remove %s\n", work_directory);
    } else {
        fprintf(stderr, "lease: kept %s\n", work_directory);
    }
    return 0;
}

/* Restarts what a case killed; every case starts with the whole cluster. */
static int case_setup(void **state)
{
    (void)state;
    contender_count = 0;
    for (int index = 0; index < JS_CLUSTER_SIZE; index++) {
        if (cluster.nodes[index].paused && js_cluster_resume(&cluster, index) != HARNESS_OK)
            return -1;
        if (!js_cluster_running(&cluster, index) &&
            js_cluster_restart(&cluster, index) != HARNESS_OK)
            return -1;
    }
    return js_cluster_wait_ready(&cluster, JS_CLUSTER_READY_TIMEOUT_MS) == HARNESS_OK ? 0 : -1;
}

static int case_teardown(void **state)
{
    (void)state;
    for (int index = 0; index < contender_count; index++)
        contender_stop(index);
    return 0;
}

/* Starts count contenders, contender i on server i % 3, and waits until they
 * are ready and one holds the lease. Returns the holder. */
static int contenders_start(int count)
{
    for (int index = 0; index < count; index++)
        contender_spawn(index % JS_CLUSTER_SIZE);
    for (int index = 0; index < count; index++)
        wait_ready(index);
    long long acquired_ms = 0;
    int holder = wait_acquired(-1, 0, HOLDER_TIMEOUT_MS, &acquired_ms);
    assert_true(holder >= 0);
    return holder;
}

/* ======================================================================= cases */

static int compare_long_long(const void *a, const void *b)
{
    long long x = *(const long long *)a, y = *(const long long *)b;
    return (x > y) - (x < y);
}

static void test_takeover(void **state)
{
    (void)state;
    case_key = "takeover";
    contenders_start(JS_CLUSTER_SIZE);
    long long takeover_ms[TAKEOVER_ROUNDS];
    for (int round = 0; round < TAKEOVER_ROUNDS; round++) {
        harness_sleep_ms(HOLD_BEFORE_KILL_MS);
        int holder = current_holder();
        assert_true(holder >= 0);
        long long killed_ms = harness_now_ms();
        contender_kill(holder);
        long long acquired_ms = 0;
        int successor = wait_acquired(holder, killed_ms, TAKEOVER_TIMEOUT_MS, &acquired_ms);
        assert_true(successor >= 0);
        takeover_ms[round] = acquired_ms - killed_ms;
        fprintf(stderr, "lease: kill -9 of contender %d: contender %d active after %lld ms\n",
                holder, successor, takeover_ms[round]);
        wait_ready(contender_spawn(contenders[holder].server_index));
    }
    qsort(takeover_ms, TAKEOVER_ROUNDS, sizeof(takeover_ms[0]), compare_long_long);
    fprintf(stderr,
            "lease: take-over after kill -9 of the holder (ttl %d ms, renew %d ms, margin %d "
            "ms): median %lld ms, worst %lld ms over %d kills\n",
            TTL_MS, RENEW_MS, MARGIN_MS, takeover_ms[TAKEOVER_ROUNDS / 2],
            takeover_ms[TAKEOVER_ROUNDS - 1], TAKEOVER_ROUNDS);
    assert_true(check_exclusive() >= TAKEOVER_ROUNDS + 1);
}

/* Starts two contenders, lets the holder renew a while, sends it
 * signal_number and waits for the other to acquire: returns the old holder;
 * *elapsed_ms gets the time from the signal to the acquisition. */
static int holder_signalled(int signal_number, int timeout_ms, long long *elapsed_ms)
{
    int holder = contenders_start(2);
    harness_sleep_ms(HOLD_BEFORE_KILL_MS);
    long long signalled_ms = harness_now_ms();
    contender_signal(holder, signal_number);
    contenders[holder].paused = signal_number == SIGSTOP;
    long long acquired_ms = 0;
    int successor = wait_acquired(holder, signalled_ms, timeout_ms, &acquired_ms);
    assert_true(successor >= 0);
    assert_int_equal(successor, 1 - holder);
    *elapsed_ms = acquired_ms - signalled_ms;
    return holder;
}

static void test_release(void **state)
{
    (void)state;
    case_key = "release";
    long long elapsed_ms = 0;
    int holder = holder_signalled(SIGTERM, RELEASE_TIMEOUT_MS, &elapsed_ms);
    fprintf(stderr, "lease: released by SIGTERM: the standby active after %lld ms\n", elapsed_ms);
    contender_stop(holder);
    assert_true(transcript_has(holder, "lost"));
    assert_true(transcript_has(holder, "closed"));
    check_exclusive();
}

static void test_paused(void **state)
{
    (void)state;
    case_key = "paused";
    long long elapsed_ms = 0;
    int holder = holder_signalled(SIGSTOP, TAKEOVER_TIMEOUT_MS, &elapsed_ms);
    int successor = 1 - holder;
    fprintf(stderr, "lease: SIGSTOP of the holder: contender %d active after %lld ms\n", successor,
            elapsed_ms);
    harness_sleep_ms(PAUSE_AFTER_TAKEOVER_MS); /* stopped for well over a ttl in all */
    contender_signal(holder, SIGCONT);
    contenders[holder].paused = false;
    int64_t deadline_ms = harness_now_ms() + DEPOSED_TIMEOUT_MS;
    while (!transcript_has(holder, "lost") && harness_now_ms() < deadline_ms)
        harness_sleep_ms(POLL_INTERVAL_MS);
    harness_sleep_ms(AFTER_RESUME_MS);
    static transcript script;
    transcript_read(holder, &script);
    assert_int_equal(script.lost_count, 1);
    fprintf(stderr, "lease: the resumed holder reported: lost (%s)\n", script.lost_reason[0]);
    assert_string_equal(script.lost_reason[0], "deposed");
    assert_int_equal(script.acquired_count, 1); /* never again while the successor lives */
    assert_int_equal(current_holder(), successor);
    check_exclusive();
}

/* The largest gap between consecutive "active" samples of all contenders
 * together, from from_ms on. */
static long long largest_gap_ms(long long from_ms)
{
    static transcript script;
    static long long samples[CONTENDERS_MAX * TERMS_MAX * 2];
    int count = 0;
    for (int index = 0; index < contender_count; index++) {
        transcript_read(index, &script);
        for (int item = 0; item < script.interval_count; item++) {
            samples[count++] = script.intervals[item].first_ms;
            samples[count++] = script.intervals[item].last_ms;
        }
    }
    qsort(samples, (size_t)count, sizeof(samples[0]), compare_long_long);
    long long gap_ms = 0;
    for (int item = 1; item < count; item++)
        if (samples[item] >= from_ms && samples[item] - samples[item - 1] > gap_ms)
            gap_ms = samples[item] - samples[item - 1];
    return gap_ms;
}

static void test_server_killed(void **state)
{
    (void)state;
    case_key = "failover";
    contenders_start(JS_CLUSTER_SIZE);
    harness_sleep_ms(HOLD_BEFORE_KILL_MS);
    const char *stream = "KV_kc_test_failover";
    int leader = js_cluster_stream_leader(&cluster, stream, LEADER_LOOKUP_TIMEOUT_MS);
    assert_true(leader >= 0);
    long long killed_ms = harness_now_ms();
    assert_int_equal(js_cluster_kill(&cluster, leader), HARNESS_OK);
    /* The holder cannot renew until a new stream leader is elected, longer
     * than the ttl: a contender acquires after the election. */
    long long acquired_ms = 0;
    int successor = wait_acquired(-1, killed_ms, SERVER_FAILOVER_TIMEOUT_MS, &acquired_ms);
    assert_true(successor >= 0);
    harness_sleep_ms(HOLD_BEFORE_KILL_MS);
    fprintf(stderr,
            "lease: kill -9 of %s (leader of %s): contender %d acquired after %lld ms; "
            "largest gap without an active holder %lld ms\n",
            cluster.nodes[leader].name, stream, successor, acquired_ms - killed_ms,
            largest_gap_ms(killed_ms - HOLD_BEFORE_KILL_MS));
    assert_int_equal(js_cluster_restart(&cluster, leader), HARNESS_OK);
    long long restarted_ms = harness_now_ms();
    harness_sleep_ms(HOLD_BEFORE_KILL_MS);
    int holder = current_holder();
    assert_true(holder >= 0);
    static transcript script;
    transcript_read(holder, &script);
    assert_true(script.interval_count > 0);
    assert_true(script.intervals[script.interval_count - 1].last_ms > restarted_ms);
    check_exclusive();
}

/* Pauses the server the holder is connected to until a contender holds the
 * lease again (the old holder too, once its client noticed the silent server
 * by its pings and reconnected elsewhere), then resumes it. */
static void test_server_paused(void **state)
{
    (void)state;
    case_key = "partition";
    int holder = contenders_start(JS_CLUSTER_SIZE);
    harness_sleep_ms(HOLD_BEFORE_KILL_MS);
    int server = contenders[holder].server_index;
    long long paused_ms = harness_now_ms();
    assert_int_equal(js_cluster_pause(&cluster, server), HARNESS_OK);
    long long acquired_ms = 0;
    int successor = wait_acquired(-1, paused_ms, SERVER_FAILOVER_TIMEOUT_MS, &acquired_ms);
    assert_true(successor >= 0);
    harness_sleep_ms(HOLD_BEFORE_KILL_MS);
    assert_int_equal(js_cluster_resume(&cluster, server), HARNESS_OK);
    fprintf(stderr,
            "lease: SIGSTOP of %s (contender %d's server): contender %d acquired after %lld ms\n",
            cluster.nodes[server].name, holder, successor, acquired_ms - paused_ms);
    int64_t deadline_ms = harness_now_ms() + DEPOSED_TIMEOUT_MS;
    while (!transcript_has(holder, "lost") && harness_now_ms() < deadline_ms)
        harness_sleep_ms(POLL_INTERVAL_MS);
    assert_true(transcript_has(holder, "lost"));
    assert_int_equal(js_cluster_wait_ready(&cluster, JS_CLUSTER_READY_TIMEOUT_MS), HARNESS_OK);
    harness_sleep_ms(HOLD_BEFORE_KILL_MS);
    assert_true(current_holder() >= 0);
    check_exclusive();
}

typedef struct cas_count {
    atomic_int succeeded;
    atomic_int refused;
} cas_count;

static void cas_acknowledged(jsCtx *js, natsMsg *message, jsPubAck *ack, jsPubAckErr *error,
                             void *closure)
{
    (void)js;
    cas_count *count = closure;
    if (ack != NULL) atomic_fetch_add(&count->succeeded, 1);
    if (error != NULL) atomic_fetch_add(&count->refused, 1);
    natsMsg_Destroy(message);
}

/* CAS_CONTENDERS writes to subject, in flight together, each expecting what
 * options say. Returns how many succeeded. */
static int cas_race(natsConnection *connection, const char *subject, const jsPubOptions *options)
{
    cas_count count = {0};
    jsOptions js_options;
    jsOptions_Init(&js_options);
    js_options.Wait = CAS_WAIT_MS;
    js_options.PublishAsync.AckHandler = cas_acknowledged;
    js_options.PublishAsync.AckHandlerClosure = &count;
    jsCtx *js = NULL;
    assert_int_equal(natsConnection_JetStream(&js, connection, &js_options), NATS_OK);
    for (int index = 0; index < CAS_CONTENDERS; index++) {
        jsPubOptions each = *options;
        assert_int_equal(js_PublishAsync(js, subject, "x", 1, &each), NATS_OK);
    }
    jsPubOptions wait;
    jsPubOptions_Init(&wait);
    wait.MaxWait = CAS_WAIT_MS;
    assert_int_equal(js_PublishAsyncComplete(js, &wait), NATS_OK);
    jsCtx_Destroy(js);
    assert_int_equal(atomic_load(&count.succeeded) + atomic_load(&count.refused), CAS_CONTENDERS);
    return atomic_load(&count.succeeded);
}

static void test_cas_semantics(void **state)
{
    (void)state;
    case_key = "cas";
    natsConnection *connection = NULL;
    natsOptions *options = NULL;
    assert_int_equal(natsOptions_Create(&options), NATS_OK);
    natsOptions_SetURL(options, cluster.nodes[0].server.url);
    natsOptions_SetTimeout(options, CAS_CONNECT_TIMEOUT_MS);
    assert_int_equal(natsConnection_Connect(&connection, options), NATS_OK);
    natsOptions_Destroy(options);
    jsOptions js_options;
    jsOptions_Init(&js_options);
    js_options.Wait = CAS_STREAM_WAIT_MS;
    jsCtx *js = NULL;
    assert_int_equal(natsConnection_JetStream(&js, connection, &js_options), NATS_OK);
    kvConfig config;
    kvConfig_Init(&config);
    config.Bucket = "kc_test_cas";
    config.Replicas = REPLICAS;
    kvStore *kv = NULL;
    natsStatus status = js_CreateKeyValue(&kv, js, &config);
    if (status != NATS_OK) fprintf(stderr, "lease: bucket: %s\n", nats_GetLastError(NULL));
    assert_int_equal(status, NATS_OK);
    static const char subject[] = "$KV.kc_test_cas.role";
    uint64_t revision = 0;
    assert_int_equal(kvStore_PutString(&revision, kv, "role", "first"), NATS_OK);
    jsPubOptions per_subject;
    jsPubOptions_Init(&per_subject);
    per_subject.ExpectLastSubjectSeq = revision;
    int subject_wins = cas_race(connection, subject, &per_subject);
    kvEntry *entry = NULL;
    assert_int_equal(kvStore_Get(&entry, kv, "role"), NATS_OK);
    jsPubOptions stream_wide;
    jsPubOptions_Init(&stream_wide);
    stream_wide.ExpectLastSeq = kvEntry_Revision(entry);
    kvEntry_Destroy(entry);
    int stream_wins = cas_race(connection, subject, &stream_wide);
    fprintf(stderr,
            "lease: %d writes in flight expecting one revision on an R3 bucket: %d succeeded "
            "with Nats-Expected-Last-Subject-Sequence (kvStore_Update), %d with "
            "Nats-Expected-Last-Sequence\n",
            CAS_CONTENDERS, subject_wins, stream_wins);
    assert_int_equal(stream_wins, 1);
    assert_true(subject_wins >= 1);
    kvStore_Destroy(kv);
    jsCtx_Destroy(js);
    natsConnection_Destroy(connection);
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: %s NATS_SERVER LEASE_CONTENDER\n", argv[0]);
        return SKIP_EXIT_CODE;
    }
    setenv("KC_NATS_SERVER", argv[1], 1);
    contender_binary = argv[2];
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_takeover, case_setup, case_teardown),
        cmocka_unit_test_setup_teardown(test_release, case_setup, case_teardown),
        cmocka_unit_test_setup_teardown(test_paused, case_setup, case_teardown),
        cmocka_unit_test_setup_teardown(test_server_killed, case_setup, case_teardown),
        cmocka_unit_test_setup_teardown(test_server_paused, case_setup, case_teardown),
        cmocka_unit_test_setup_teardown(test_cas_semantics, case_setup, case_teardown),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
