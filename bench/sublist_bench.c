/* sublist_bench.c - match throughput of the sublist with ~10,000
 * subscriptions: on a cache hit, on a miss (cache off, and a working set
 * larger than the cache so every miss also evicts), and the cost of a
 * subscription change (literal and wildcard) with a full cache. The peer is a
 * brute-force scan of all filters with kci_subject_matches, measured in the
 * same run; the ratio is printed. Not wired into meson; build with e.g.
 *   gcc -std=c17 -O2 -D_GNU_SOURCE -Iinclude -Isrc src/common/err.c \
 *       src/common/hash.c src/broker/subject.c src/broker/sublist.c \
 *       bench/sublist_bench.c -o /tmp/sublist_bench */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "broker/subject.h"
#include "broker/sublist.h"

enum {
    BENCH_SUBSCRIPTIONS = 10000,
    BENCH_SUBJECT_BYTES_MAX = 64,
    BENCH_HOT_SUBJECTS = 1000,
    BENCH_COLD_SUBJECTS = 100000,
    BENCH_CACHE_ENTRIES = 4096,
    BENCH_HIT_MATCHES = 10000000,
    BENCH_MISS_MATCHES = 500000,
    BENCH_PEER_MATCHES = 2000,
    BENCH_CHANGES = 20000,
    BENCH_COLLECT_EVERY = 1024,
    BENCH_REPEATS = 5, /* each figure is the best of this many runs */
};

typedef struct bench_filter {
    char subject[BENCH_SUBJECT_BYTES_MAX];
    const char *queue;
} bench_filter;

static bench_filter filters[BENCH_SUBSCRIPTIONS];
static char hot[BENCH_HOT_SUBJECTS][BENCH_SUBJECT_BYTES_MAX];
static char cold[BENCH_COLD_SUBJECTS][BENCH_SUBJECT_BYTES_MAX];
static volatile uint64_t bench_sink;

/* CPU time, so other processes on a shared machine distort less. */
static double now_seconds(void)
{
    struct timespec now;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &now);
    return (double)now.tv_sec + (double)now.tv_nsec * 1e-9;
}

static void random_literal(char *buffer, unsigned *seed)
{
    snprintf(buffer, BENCH_SUBJECT_BYTES_MAX, "svc.r%d.service%d.op%d", rand_r(seed) % 10,
             rand_r(seed) % 200, rand_r(seed) % 10);
}

/* 80% literals, 10% "svc.rN.*.opN", 8% "svc.rN.serviceN.>", 2% queue
 * subscribers on literals: the shape of a services deployment. */
static void make_filters(unsigned *seed)
{
    for (int index = 0; index < BENCH_SUBSCRIPTIONS; index++) {
        bench_filter *filter = &filters[index];
        int dice = rand_r(seed) % 100;
        filter->queue = NULL;
        if (dice < 80) {
            random_literal(filter->subject, seed);
        } else if (dice < 90) {
            snprintf(filter->subject, sizeof filter->subject, "svc.r%d.*.op%d", rand_r(seed) % 10,
                     rand_r(seed) % 10);
        } else if (dice < 98) {
            snprintf(filter->subject, sizeof filter->subject, "svc.r%d.service%d.>",
                     rand_r(seed) % 10, rand_r(seed) % 200);
        } else {
            random_literal(filter->subject, seed);
            filter->queue = "workers";
        }
    }
}

static kci_sublist *build(uint32_t cache_entries_max)
{
    kci_sublist *sublist = NULL;
    if (kci_sublist_create(&sublist, cache_entries_max) != KC_OK) abort();
    for (uintptr_t index = 0; index < BENCH_SUBSCRIPTIONS; index++) {
        const bench_filter *filter = &filters[index];
        size_t queue_len = filter->queue != NULL ? strlen(filter->queue) : 0;
        kc_err err = kci_sublist_insert(sublist, filter->subject, strlen(filter->subject),
                                        filter->queue, queue_len, (void *)(index + 1));
        if (err != KC_OK) abort();
    }
    return sublist;
}

static double run_matches(kci_sublist *sublist, char (*subjects)[BENCH_SUBJECT_BYTES_MAX],
                          size_t subject_count, uint64_t match_count)
{
    size_t lengths[BENCH_COLD_SUBJECTS];
    for (size_t index = 0; index < subject_count; index++)
        lengths[index] = strlen(subjects[index]);
    uint64_t total = 0;
    double start = now_seconds();
    for (uint64_t index = 0; index < match_count; index++) {
        size_t subject = (size_t)(index % subject_count);
        const kci_match *result = NULL;
        if (kci_sublist_match(sublist, subjects[subject], lengths[subject], &result) != KC_OK)
            abort();
        total += result->plain_count + result->group_count;
        if (index % BENCH_COLLECT_EVERY == 0) kci_sublist_collect(sublist);
    }
    double elapsed = now_seconds() - start;
    kci_sublist_collect(sublist);
    bench_sink += total;
    return elapsed * 1e9 / (double)match_count;
}

static double run_peer(void)
{
    size_t lengths[BENCH_SUBSCRIPTIONS];
    for (size_t index = 0; index < BENCH_SUBSCRIPTIONS; index++)
        lengths[index] = strlen(filters[index].subject);
    uint64_t total = 0;
    double start = now_seconds();
    for (int match = 0; match < BENCH_PEER_MATCHES; match++) {
        const char *subject = hot[match % BENCH_HOT_SUBJECTS];
        size_t subject_len = strlen(subject);
        for (size_t index = 0; index < BENCH_SUBSCRIPTIONS; index++)
            total +=
                kci_subject_matches(filters[index].subject, lengths[index], subject, subject_len);
    }
    double elapsed = now_seconds() - start;
    bench_sink += total;
    return elapsed * 1e9 / BENCH_PEER_MATCHES;
}

/* Insert then remove one filter with a full cache; returns ns per change. */
static double run_changes(kci_sublist *sublist, const char *filter)
{
    double start = now_seconds();
    for (uintptr_t index = 0; index < BENCH_CHANGES; index++) {
        void *sub = (void *)(UINTPTR_MAX - index);
        if (kci_sublist_insert(sublist, filter, strlen(filter), NULL, 0, sub) != KC_OK) abort();
        if (kci_sublist_remove(sublist, filter, strlen(filter), NULL, 0, sub) != KC_OK) abort();
        if (index % BENCH_COLLECT_EVERY == 0) kci_sublist_collect(sublist);
    }
    double elapsed = now_seconds() - start;
    kci_sublist_collect(sublist);
    return elapsed * 1e9 / (2.0 * BENCH_CHANGES);
}

static double best_matches(kci_sublist *sublist, char (*subjects)[BENCH_SUBJECT_BYTES_MAX],
                           size_t subject_count, uint64_t match_count)
{
    double best = run_matches(sublist, subjects, subject_count, match_count);
    for (int repeat = 1; repeat < BENCH_REPEATS; repeat++) {
        double ns = run_matches(sublist, subjects, subject_count, match_count);
        if (ns < best) best = ns;
    }
    return best;
}

/* Refills the cache with cold subjects before each run of changes. */
static double best_changes(kci_sublist *sublist, const char *filter)
{
    double best = 0;
    for (int repeat = 0; repeat < BENCH_REPEATS; repeat++) {
        run_matches(sublist, cold, BENCH_COLD_SUBJECTS, BENCH_CACHE_ENTRIES);
        double ns = run_changes(sublist, filter);
        if (repeat == 0 || ns < best) best = ns;
    }
    return best;
}

static void report(const char *name, double ns_per_op, double peer_ns)
{
    printf("%-44s %9.1f ns/op %8.2f Mops/s  %7.1fx peer\n", name, ns_per_op, 1e3 / ns_per_op,
           peer_ns / ns_per_op);
}

int main(void)
{
    unsigned seed = 7;
    make_filters(&seed);
    for (int index = 0; index < BENCH_HOT_SUBJECTS; index++)
        random_literal(hot[index], &seed);
    for (int index = 0; index < BENCH_COLD_SUBJECTS; index++)
        random_literal(cold[index], &seed);

    double peer_ns = run_peer();
    for (int repeat = 1; repeat < BENCH_REPEATS; repeat++) {
        double ns = run_peer();
        if (ns < peer_ns) peer_ns = ns;
    }
    kci_sublist *cached = build(BENCH_CACHE_ENTRIES);
    run_matches(cached, hot, BENCH_HOT_SUBJECTS, BENCH_HOT_SUBJECTS); /* warm the cache */
    double hit_ns = best_matches(cached, hot, BENCH_HOT_SUBJECTS, BENCH_HIT_MATCHES);
    double evict_ns = best_matches(cached, cold, BENCH_COLD_SUBJECTS, BENCH_MISS_MATCHES);
    double literal_change_ns = best_changes(cached, "svc.r1.service1.op1");
    double wildcard_change_ns = best_changes(cached, "svc.r1.*.op1");
    double wildcard_other_ns = best_changes(cached, "_INBOX.abc123.*");
    kci_sublist_stats stats;
    kci_sublist_get_stats(cached, &stats);
    kci_sublist *uncached = build(0);
    double miss_ns = best_matches(uncached, hot, BENCH_HOT_SUBJECTS, BENCH_MISS_MATCHES);

    printf("sublist: %d subscriptions, %llu trie nodes, cache %d entries, fanout avg %.2f max %u\n",
           BENCH_SUBSCRIPTIONS, (unsigned long long)kci_sublist_node_count(cached),
           BENCH_CACHE_ENTRIES, stats.fanout_average, stats.fanout_max);
    report("peer: brute-force scan (kci_subject_matches)", peer_ns, peer_ns);
    report("match, cache hit (1,000 hot subjects)", hit_ns, peer_ns);
    report("match, miss (cache off)", miss_ns, peer_ns);
    report("match, miss + evict (100,000 subjects)", evict_ns, peer_ns);
    printf("%-44s %9.1f ns/op\n", "change, literal filter (full cache)", literal_change_ns);
    printf("%-44s %9.1f ns/op\n", "change, svc.r1.*.op1 (full cache scan)", wildcard_change_ns);
    printf("%-44s %9.1f ns/op\n", "change, _INBOX.abc123.* (full cache scan)", wildcard_other_ns);
    kci_sublist_destroy(cached);
    kci_sublist_destroy(uncached);
    return bench_sink == 42 ? 1 : 0;
}
