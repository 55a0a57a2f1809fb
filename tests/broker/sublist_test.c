/* sublist_test.c - the subscription trie and its cache: insert, match and
 * remove with and without wildcards, queue groups merged by name, duplicate
 * and unknown subscriptions, cache coherence after every kind of change,
 * results that stay valid until collect, CLOCK eviction, stats, and a churn
 * test of 100,000 random inserts and removes checked against a brute-force
 * oracle built on kci_subject_matches. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "broker/subject.h"
#include "broker/sublist.h"

enum {
    CHURN_OPERATIONS = 100000,
    CHURN_LIVE_TARGET = 500,
    CHURN_SUB_IDS = 64,
    CHURN_HOT_SUBJECTS = 16, /* matched after every change, so the cache hits */
    CHURN_MATCH_EVERY = 20,  /* a subject from the whole space */
    CHURN_COLLECT_EVERY = 500,
    CHURN_CACHE_ENTRIES = 64,
    CHURN_SUBJECT_BYTES_MAX = 64,
    PAIRS_MAX = 4 * CHURN_LIVE_TARGET,
};

/* Any non-NULL pointer identifies a subscription; the sublist never reads it. */
static void *sub_of(uintptr_t id)
{
    return (void *)(id + 1);
}

static kci_sublist *create(uint32_t cache_entries_max)
{
    kci_sublist *sublist = NULL;
    assert_int_equal(kci_sublist_create(&sublist, cache_entries_max), KC_OK);
    assert_non_null(sublist);
    return sublist;
}

static kc_err insert(kci_sublist *sublist, const char *subject, const char *queue, void *sub)
{
    return kci_sublist_insert(sublist, subject, strlen(subject), queue,
                              queue != NULL ? strlen(queue) : 0, sub);
}

static kc_err remove_sub(kci_sublist *sublist, const char *subject, const char *queue, void *sub)
{
    return kci_sublist_remove(sublist, subject, strlen(subject), queue,
                              queue != NULL ? strlen(queue) : 0, sub);
}

static const kci_match *match(kci_sublist *sublist, const char *subject)
{
    const kci_match *result = NULL;
    assert_int_equal(kci_sublist_match(sublist, subject, strlen(subject), &result), KC_OK);
    assert_non_null(result);
    return result;
}

static uint32_t total_of(const kci_match *result)
{
    uint32_t total = result->plain_count;
    for (uint32_t index = 0; index < result->group_count; index++)
        total += result->groups[index].member_count;
    return total;
}

static bool has_plain(const kci_match *result, const void *sub)
{
    for (uint32_t index = 0; index < result->plain_count; index++)
        if (result->plain[index] == sub) return true;
    return false;
}

static const kci_match_group *group_of(const kci_match *result, const char *name)
{
    for (uint32_t index = 0; index < result->group_count; index++) {
        const kci_match_group *group = &result->groups[index];
        if (group->name_len == strlen(name) && memcmp(group->name, name, group->name_len) == 0)
            return group;
    }
    return NULL;
}

static bool group_has(const kci_match_group *group, const void *sub)
{
    for (uint32_t index = 0; index < group->member_count; index++)
        if (group->members[index] == sub) return true;
    return false;
}

static kci_sublist_stats stats_of(const kci_sublist *sublist)
{
    kci_sublist_stats stats;
    kci_sublist_get_stats(sublist, &stats);
    return stats;
}

static void test_create_limits(void **state)
{
    (void)state;
    kci_sublist *sublist = (kci_sublist *)1;
    assert_int_equal(kci_sublist_create(&sublist, UINT32_MAX), KC_ERR_INVALID_ARGUMENT);
    assert_null(sublist);
    sublist = create(0);
    kci_sublist_destroy(sublist);
    sublist = create(KCI_SUBLIST_CACHE_ENTRIES_DEFAULT);
    kci_sublist_destroy(sublist);
    kci_sublist_destroy(NULL);
}

static void test_insert_match_remove(void **state)
{
    (void)state;
    kci_sublist *sublist = create(KCI_SUBLIST_CACHE_ENTRIES_DEFAULT);
    const kci_match *result = match(sublist, "foo.bar");
    assert_int_equal(total_of(result), 0);
    assert_null(result->plain);
    assert_null(result->groups);
    assert_int_equal(insert(sublist, "foo.bar", NULL, sub_of(1)), KC_OK);
    result = match(sublist, "foo.bar");
    assert_int_equal(result->plain_count, 1);
    assert_ptr_equal(result->plain[0], sub_of(1));
    assert_int_equal(total_of(match(sublist, "foo")), 0);
    assert_int_equal(total_of(match(sublist, "foo.bar.baz")), 0);
    assert_int_equal(remove_sub(sublist, "foo.bar", NULL, sub_of(1)), KC_OK);
    assert_int_equal(total_of(match(sublist, "foo.bar")), 0);
    assert_int_equal(kci_sublist_node_count(sublist), 0);
    kci_sublist_destroy(sublist);
}

static void test_wildcards(void **state)
{
    (void)state;
    kci_sublist *sublist = create(KCI_SUBLIST_CACHE_ENTRIES_DEFAULT);
    static const char *const filters[] = {"foo.bar", "foo.*", "foo.>",  ">",
                                          "*.bar",   "*",     "*.*.baz"};
    for (uintptr_t index = 0; index < 7; index++)
        assert_int_equal(insert(sublist, filters[index], NULL, sub_of(index)), KC_OK);
    const kci_match *result = match(sublist, "foo.bar");
    assert_int_equal(total_of(result), 5);
    assert_false(has_plain(result, sub_of(5))); /* "*" is one token only */
    result = match(sublist, "foo");
    assert_int_equal(total_of(result), 2); /* ">" and "*", not "foo.>" */
    assert_true(has_plain(result, sub_of(3)) && has_plain(result, sub_of(5)));
    result = match(sublist, "foo.bar.baz");
    assert_int_equal(total_of(result), 3); /* "foo.>", ">", "*.*.baz" */
    assert_true(has_plain(result, sub_of(2)) && has_plain(result, sub_of(6)));
    result = match(sublist, "x.bar");
    assert_int_equal(total_of(result), 2); /* ">" and "*.bar" */
    assert_int_equal(total_of(match(sublist, "a.b.c.d.e")), 1);
    for (uintptr_t index = 0; index < 7; index++)
        assert_int_equal(remove_sub(sublist, filters[index], NULL, sub_of(index)), KC_OK);
    assert_int_equal(kci_sublist_node_count(sublist), 0);
    assert_int_equal(total_of(match(sublist, "foo.bar")), 0);
    kci_sublist_destroy(sublist);
}

static void test_queue_groups(void **state)
{
    (void)state;
    kci_sublist *sublist = create(KCI_SUBLIST_CACHE_ENTRIES_DEFAULT);
    assert_int_equal(insert(sublist, "foo.bar", "q1", sub_of(1)), KC_OK);
    assert_int_equal(insert(sublist, "foo.*", "q1", sub_of(2)), KC_OK);
    assert_int_equal(insert(sublist, "foo.>", "q1", sub_of(3)), KC_OK);
    assert_int_equal(insert(sublist, "foo.bar", "q2", sub_of(4)), KC_OK);
    assert_int_equal(insert(sublist, "foo.bar", NULL, sub_of(5)), KC_OK);
    assert_int_equal(insert(sublist, "foo.bar", "q2", sub_of(5)), KC_OK); /* same sub, queue too */
    assert_int_equal(insert(sublist, "foo.baz", "q3", sub_of(6)), KC_OK);
    const kci_match *result = match(sublist, "foo.bar");
    assert_int_equal(result->plain_count, 1);
    assert_ptr_equal(result->plain[0], sub_of(5));
    assert_int_equal(result->group_count, 2); /* q1 merged across three nodes */
    const kci_match_group *q1 = group_of(result, "q1");
    const kci_match_group *q2 = group_of(result, "q2");
    assert_non_null(q1);
    assert_non_null(q2);
    assert_null(group_of(result, "q3"));
    assert_int_equal(q1->member_count, 3);
    assert_true(group_has(q1, sub_of(1)) && group_has(q1, sub_of(2)) && group_has(q1, sub_of(3)));
    assert_int_equal(q2->member_count, 2);
    assert_true(group_has(q2, sub_of(4)) && group_has(q2, sub_of(5)));
    /* Removing the last member of a group removes the group. */
    assert_int_equal(remove_sub(sublist, "foo.bar", "q2", sub_of(4)), KC_OK);
    assert_int_equal(remove_sub(sublist, "foo.bar", "q2", sub_of(5)), KC_OK);
    result = match(sublist, "foo.bar");
    assert_int_equal(result->group_count, 1);
    assert_null(group_of(result, "q2"));
    assert_int_equal(remove_sub(sublist, "foo.bar", "q2", sub_of(5)), KC_ERR_NOT_FOUND);
    kci_sublist_destroy(sublist);
}

/* Many queue names on one subject: found by name on change, merged by name
 * across nodes on a match (past the few a scan merges), and removed from
 * the middle of a node's groups. */
static void test_many_queue_groups(void **state)
{
    (void)state;
    enum { GROUPS = 1000, WILDCARD_SUBS = 10000, STRIDE = 7 }; /* STRIDE: coprime to GROUPS */
    kci_sublist *sublist = create(KCI_SUBLIST_CACHE_ENTRIES_DEFAULT);
    char name[16];
    for (uintptr_t index = 0; index < GROUPS; index++) {
        snprintf(name, sizeof name, "g%u", (unsigned)index);
        assert_int_equal(insert(sublist, "foo.bar", name, sub_of(index)), KC_OK);
        if (index % 2 == 0)
            assert_int_equal(insert(sublist, "foo.*", name, sub_of(WILDCARD_SUBS + index)), KC_OK);
    }
    const kci_match *result = match(sublist, "foo.bar");
    assert_int_equal(result->group_count, GROUPS);
    for (uintptr_t index = 0; index < GROUPS; index++) {
        snprintf(name, sizeof name, "g%u", (unsigned)index);
        const kci_match_group *group = group_of(result, name);
        assert_non_null(group);
        assert_int_equal(group->member_count, index % 2 == 0 ? 2 : 1);
        assert_true(group_has(group, sub_of(index)));
    }
    for (uintptr_t step = 0; step < GROUPS; step++) { /* odd names, in a scrambled order */
        uintptr_t index = step * STRIDE % GROUPS;
        if (index % 2 == 0) continue;
        snprintf(name, sizeof name, "g%u", (unsigned)index);
        assert_int_equal(remove_sub(sublist, "foo.bar", name, sub_of(index)), KC_OK);
    }
    result = match(sublist, "foo.bar");
    assert_int_equal(result->group_count, GROUPS / 2);
    assert_int_equal(total_of(result), GROUPS);
    assert_null(group_of(result, "g1"));
    for (uintptr_t index = 0; index < GROUPS; index += 2) {
        snprintf(name, sizeof name, "g%u", (unsigned)index);
        assert_int_equal(remove_sub(sublist, "foo.bar", name, sub_of(index)), KC_OK);
        assert_int_equal(remove_sub(sublist, "foo.*", name, sub_of(WILDCARD_SUBS + index)), KC_OK);
    }
    assert_int_equal(total_of(match(sublist, "foo.bar")), 0);
    assert_int_equal(kci_sublist_node_count(sublist), 0);
    kci_sublist_destroy(sublist);
}

static void test_duplicates(void **state)
{
    (void)state;
    kci_sublist *sublist = create(KCI_SUBLIST_CACHE_ENTRIES_DEFAULT);
    assert_int_equal(insert(sublist, "foo.*", NULL, sub_of(1)), KC_OK);
    assert_int_equal(insert(sublist, "foo.*", NULL, sub_of(1)), KC_ERR_EXISTS);
    assert_int_equal(insert(sublist, "foo.*", "q", sub_of(1)), KC_OK);
    assert_int_equal(insert(sublist, "foo.*", "q", sub_of(1)), KC_ERR_EXISTS);
    assert_int_equal(insert(sublist, "foo.*", "r", sub_of(1)), KC_OK);
    assert_int_equal(insert(sublist, "foo.>", NULL, sub_of(1)), KC_OK);
    assert_int_equal(insert(sublist, "foo.*", NULL, sub_of(2)), KC_OK);
    kci_sublist_stats stats = stats_of(sublist);
    assert_int_equal(stats.subscription_count, 5);
    assert_int_equal(stats.insert_count, 5);
    /* No dedupe across filters: sub 1 arrives through "foo.*" and "foo.>". */
    assert_int_equal(match(sublist, "foo.x")->plain_count, 3);
    kci_sublist_destroy(sublist);
}

static void test_remove_unknown(void **state)
{
    (void)state;
    kci_sublist *sublist = create(KCI_SUBLIST_CACHE_ENTRIES_DEFAULT);
    assert_int_equal(remove_sub(sublist, "foo", NULL, sub_of(1)), KC_ERR_NOT_FOUND);
    assert_int_equal(insert(sublist, "foo.bar", "q", sub_of(1)), KC_OK);
    assert_int_equal(remove_sub(sublist, "foo.bar", NULL, sub_of(1)), KC_ERR_NOT_FOUND);
    assert_int_equal(remove_sub(sublist, "foo.bar", "r", sub_of(1)), KC_ERR_NOT_FOUND);
    assert_int_equal(remove_sub(sublist, "foo.bar", "q", sub_of(2)), KC_ERR_NOT_FOUND);
    assert_int_equal(remove_sub(sublist, "foo", "q", sub_of(1)), KC_ERR_NOT_FOUND);
    assert_int_equal(remove_sub(sublist, "foo.bar.baz", "q", sub_of(1)), KC_ERR_NOT_FOUND);
    assert_int_equal(remove_sub(sublist, "foo.*", "q", sub_of(1)), KC_ERR_NOT_FOUND);
    assert_int_equal(remove_sub(sublist, "foo..bar", "q", sub_of(1)), KC_ERR_NOT_FOUND);
    assert_int_equal(remove_sub(sublist, "foo.bar", "q", NULL), KC_ERR_NOT_FOUND);
    kci_sublist_stats stats = stats_of(sublist);
    assert_int_equal(stats.remove_count, 0);
    assert_int_equal(stats.subscription_count, 1);
    assert_int_equal(remove_sub(sublist, "foo.bar", "q", sub_of(1)), KC_OK);
    assert_int_equal(remove_sub(sublist, "foo.bar", "q", sub_of(1)), KC_ERR_NOT_FOUND);
    assert_int_equal(kci_sublist_node_count(sublist), 0);
    kci_sublist_destroy(sublist);
}

static void test_invalid_input(void **state)
{
    (void)state;
    kci_sublist *sublist = create(KCI_SUBLIST_CACHE_ENTRIES_DEFAULT);
    static const char *const bad[] = {"", "foo.", ".foo", "foo..bar", "foo bar", "foo.>.bar"};
    for (size_t index = 0; index < sizeof bad / sizeof *bad; index++)
        assert_int_equal(insert(sublist, bad[index], NULL, sub_of(1)), KC_ERR_INVALID_SUBJECT);
    assert_int_equal(insert(sublist, "foo", NULL, NULL), KC_ERR_INVALID_ARGUMENT);
    assert_int_equal(kci_sublist_insert(sublist, "foo", 3, NULL, 2, sub_of(1)),
                     KC_ERR_INVALID_ARGUMENT);
    static char long_queue[KCI_SUBJECT_BYTES_MAX + 1];
    memset(long_queue, 'q', sizeof long_queue);
    assert_int_equal(
        kci_sublist_insert(sublist, "foo", 3, long_queue, sizeof long_queue, sub_of(1)),
        KC_ERR_INVALID_ARGUMENT);
    const kci_match *result = NULL;
    assert_int_equal(kci_sublist_match(sublist, "foo..x", 6, &result), KC_ERR_INVALID_SUBJECT);
    assert_int_equal(kci_sublist_match(sublist, "foo.>.x", 7, &result), KC_ERR_INVALID_SUBJECT);
    assert_int_equal(kci_sublist_match(sublist, "", 0, &result), KC_ERR_INVALID_SUBJECT);
    kci_sublist_stats stats = stats_of(sublist);
    assert_int_equal(stats.subscription_count + stats.match_count + stats.insert_count, 0);
    assert_int_equal(kci_sublist_node_count(sublist), 0);
    kci_sublist_destroy(sublist);
}

/* Each step would see a stale result if a change did not reach the cache. */
static void test_cache_coherence(void **state)
{
    (void)state;
    kci_sublist *sublist = create(KCI_SUBLIST_CACHE_ENTRIES_DEFAULT);
    assert_int_equal(insert(sublist, "foo.bar", NULL, sub_of(1)), KC_OK);
    assert_int_equal(total_of(match(sublist, "foo.bar")), 1);
    assert_int_equal(total_of(match(sublist, "baz.qux")), 0);
    assert_int_equal(total_of(match(sublist, "foo.bar")), 1);
    assert_int_equal(stats_of(sublist).cache_hit_count, 1);

    assert_int_equal(insert(sublist, "foo.*", NULL, sub_of(2)), KC_OK); /* wildcard insert */
    assert_int_equal(total_of(match(sublist, "foo.bar")), 2);
    assert_int_equal(total_of(match(sublist, "baz.qux")), 0);
    /* Selective: the unrelated entry survived the insert. */
    assert_int_equal(stats_of(sublist).cache_hit_count, 2);

    assert_int_equal(insert(sublist, "foo.bar", "q", sub_of(3)), KC_OK); /* literal insert */
    const kci_match *result = match(sublist, "foo.bar");
    assert_int_equal(total_of(result), 3);
    assert_non_null(group_of(result, "q"));
    assert_int_equal(insert(sublist, ">", NULL, sub_of(4)), KC_OK); /* reaches every entry */
    assert_int_equal(total_of(match(sublist, "baz.qux")), 1);
    assert_int_equal(total_of(match(sublist, "foo.bar")), 4);

    assert_int_equal(remove_sub(sublist, "foo.*", NULL, sub_of(2)), KC_OK); /* wildcard remove */
    assert_int_equal(total_of(match(sublist, "foo.bar")), 3);
    assert_int_equal(remove_sub(sublist, "foo.bar", "q", sub_of(3)), KC_OK); /* literal remove */
    assert_int_equal(total_of(match(sublist, "foo.bar")), 2);
    assert_int_equal(remove_sub(sublist, ">", NULL, sub_of(4)), KC_OK);
    assert_int_equal(total_of(match(sublist, "baz.qux")), 0);
    assert_int_equal(total_of(match(sublist, "foo.bar")), 1);
    /* A failed change must not disturb the cache either. */
    uint64_t hits = stats_of(sublist).cache_hit_count;
    assert_int_equal(insert(sublist, "foo.bar", NULL, sub_of(1)), KC_ERR_EXISTS);
    assert_int_equal(total_of(match(sublist, "foo.bar")), 1);
    assert_int_equal(stats_of(sublist).cache_hit_count, hits + 1);
    kci_sublist_destroy(sublist);
}

typedef struct result_copy {
    uint32_t plain_count, group_count, member_count;
    void *plain[8];
    void *members[8];
    char name[8];
} result_copy;

static result_copy copy_of(const kci_match *result)
{
    result_copy copy = {result->plain_count, result->group_count, 0, {0}, {0}, {0}};
    assert_true(result->plain_count <= 8 && result->group_count <= 1);
    memcpy(copy.plain, result->plain, result->plain_count * sizeof copy.plain[0]);
    if (result->group_count == 1) {
        copy.member_count = result->groups[0].member_count;
        assert_true(copy.member_count <= 8 && result->groups[0].name_len < 8);
        memcpy(copy.members, result->groups[0].members, copy.member_count * sizeof copy.members[0]);
        memcpy(copy.name, result->groups[0].name, result->groups[0].name_len);
    }
    return copy;
}

static void assert_unchanged(const kci_match *result, const result_copy *copy)
{
    assert_int_equal(result->plain_count, copy->plain_count);
    assert_int_equal(result->group_count, copy->group_count);
    assert_memory_equal(result->plain, copy->plain, copy->plain_count * sizeof(void *));
    if (copy->group_count == 1) {
        assert_int_equal(result->groups[0].member_count, copy->member_count);
        assert_memory_equal(result->groups[0].members, copy->members,
                            copy->member_count * sizeof(void *));
        assert_memory_equal(result->groups[0].name, copy->name, strlen(copy->name));
    }
}

/* Under ASan a freed result read here is a use-after-free report. */
static void test_result_stability(void **state)
{
    (void)state;
    kci_sublist *sublist = create(2);
    assert_int_equal(insert(sublist, "foo.bar", NULL, sub_of(1)), KC_OK);
    assert_int_equal(insert(sublist, "foo.*", "q", sub_of(2)), KC_OK);
    const kci_match *held = match(sublist, "foo.bar");
    result_copy copy = copy_of(held);
    assert_int_equal(copy.member_count, 1);
    assert_int_equal(insert(sublist, "foo.>", NULL, sub_of(3)), KC_OK);
    assert_int_equal(remove_sub(sublist, "foo.bar", NULL, sub_of(1)), KC_OK);
    assert_int_equal(remove_sub(sublist, "foo.*", "q", sub_of(2)), KC_OK); /* its node is freed */
    const kci_match *held_more[16];
    result_copy copies[16];
    for (int index = 0; index < 16; index++) { /* evictions from a cache of 2 */
        char subject[32];
        snprintf(subject, sizeof subject, "foo.s%d", index);
        held_more[index] = match(sublist, subject);
        copies[index] = copy_of(held_more[index]);
        assert_int_equal(insert(sublist, subject, NULL, sub_of(100 + (uintptr_t)index)), KC_OK);
    }
    assert_unchanged(held, &copy);
    for (int index = 0; index < 16; index++)
        assert_unchanged(held_more[index], &copies[index]);
    const kci_match *fresh = match(sublist, "foo.bar");
    assert_int_equal(total_of(fresh), 1);
    assert_true(has_plain(fresh, sub_of(3)));
    kci_sublist_collect(sublist);
    assert_int_equal(total_of(match(sublist, "foo.bar")), 1);
    assert_true(stats_of(sublist).cache_entry_count <= 2);
    kci_sublist_destroy(sublist);
}

static void test_cache_disabled(void **state)
{
    (void)state;
    kci_sublist *sublist = create(0);
    assert_int_equal(insert(sublist, "foo.*", NULL, sub_of(1)), KC_OK);
    const kci_match *first = match(sublist, "foo.bar");
    const kci_match *second = match(sublist, "foo.bar");
    assert_ptr_not_equal(first, second);
    assert_int_equal(remove_sub(sublist, "foo.*", NULL, sub_of(1)), KC_OK);
    assert_true(has_plain(first, sub_of(1)) && has_plain(second, sub_of(1)));
    assert_int_equal(total_of(match(sublist, "foo.bar")), 0);
    kci_sublist_stats stats = stats_of(sublist);
    assert_int_equal(stats.cache_hit_count, 0);
    assert_int_equal(stats.cache_entry_count, 0);
    kci_sublist_collect(sublist);
    kci_sublist_destroy(sublist);
}

/* A subject hit between every miss keeps its CLOCK bit and is never evicted. */
static void test_cache_bounded_clock(void **state)
{
    (void)state;
    enum { CACHE = 8, MISSES = 200 };
    kci_sublist *sublist = create(CACHE);
    assert_int_equal(insert(sublist, "hot", NULL, sub_of(1)), KC_OK);
    match(sublist, "hot");
    for (int index = 0; index < MISSES; index++) {
        char subject[32];
        snprintf(subject, sizeof subject, "cold.%d", index);
        match(sublist, subject);
        assert_int_equal(total_of(match(sublist, "hot")), 1);
        assert_true(stats_of(sublist).cache_entry_count <= CACHE);
        if (index % 50 == 0) kci_sublist_collect(sublist);
    }
    kci_sublist_stats stats = stats_of(sublist);
    assert_int_equal(stats.cache_hit_count, MISSES);
    assert_int_equal(stats.cache_entry_count, CACHE);
    kci_sublist_destroy(sublist);
}

static void test_stats(void **state)
{
    (void)state;
    kci_sublist *sublist = create(KCI_SUBLIST_CACHE_ENTRIES_DEFAULT);
    assert_int_equal(insert(sublist, "a.b", NULL, sub_of(1)), KC_OK);
    assert_int_equal(insert(sublist, "a.*", NULL, sub_of(2)), KC_OK);
    assert_int_equal(insert(sublist, "a.>", "q", sub_of(3)), KC_OK);
    assert_int_equal(insert(sublist, "a.b", NULL, sub_of(1)), KC_ERR_EXISTS);
    assert_int_equal(remove_sub(sublist, "a.*", NULL, sub_of(2)), KC_OK);
    assert_int_equal(remove_sub(sublist, "a.*", NULL, sub_of(2)), KC_ERR_NOT_FOUND);
    match(sublist, "a.b"); /* 2 */
    match(sublist, "a.b"); /* 2, hit */
    match(sublist, "a.c"); /* 1 */
    match(sublist, "z");   /* 0 */
    kci_sublist_stats stats = stats_of(sublist);
    assert_int_equal(stats.subscription_count, 2);
    assert_int_equal(stats.insert_count, 3);
    assert_int_equal(stats.remove_count, 1);
    assert_int_equal(stats.match_count, 4);
    assert_int_equal(stats.cache_hit_count, 1);
    assert_int_equal(stats.cache_entry_count, 3);
    assert_int_equal(stats.fanout_max, 2);
    assert_float_equal(stats.fanout_average, 5.0 / 4.0, 1e-9);
    kci_sublist_destroy(sublist);
}

static void test_nodes_freed(void **state)
{
    (void)state;
    kci_sublist *sublist = create(KCI_SUBLIST_CACHE_ENTRIES_DEFAULT);
    assert_int_equal(insert(sublist, "a.b.c.d", NULL, sub_of(1)), KC_OK);
    assert_int_equal(insert(sublist, "a.b", NULL, sub_of(2)), KC_OK);
    assert_int_equal(insert(sublist, "a.*.c.>", "q", sub_of(3)), KC_OK);
    assert_int_equal(kci_sublist_node_count(sublist), 7);
    assert_int_equal(remove_sub(sublist, "a.b.c.d", NULL, sub_of(1)), KC_OK);
    assert_int_equal(kci_sublist_node_count(sublist), 5); /* "a.b" keeps a and b */
    assert_int_equal(remove_sub(sublist, "a.b", NULL, sub_of(2)), KC_OK);
    assert_int_equal(kci_sublist_node_count(sublist), 4);
    assert_int_equal(remove_sub(sublist, "a.*.c.>", "q", sub_of(3)), KC_OK);
    assert_int_equal(kci_sublist_node_count(sublist), 0);
    /* Many siblings grow the level table; removing them all frees it. */
    char subject[32];
    for (uintptr_t index = 0; index < 1000; index++) {
        snprintf(subject, sizeof subject, "x.%u", (unsigned)index);
        assert_int_equal(insert(sublist, subject, NULL, sub_of(index)), KC_OK);
    }
    assert_int_equal(kci_sublist_node_count(sublist), 1001);
    for (uintptr_t index = 0; index < 1000; index++) {
        snprintf(subject, sizeof subject, "x.%u", (unsigned)index);
        assert_int_equal(remove_sub(sublist, subject, NULL, sub_of(index)), KC_OK);
    }
    assert_int_equal(kci_sublist_node_count(sublist), 0);
    kci_sublist_destroy(sublist);
}

/* ---- churn against a brute-force oracle ----
 *
 * The oracle is kci_subject_matches over every live subscription. Each live
 * subscription also carries a bit per hot subject, computed by the oracle when
 * it is inserted, so checking a hot subject after every change stays cheap. */

typedef struct live_sub {
    char filter[CHURN_SUBJECT_BYTES_MAX];
    size_t filter_len;
    const char *queue; /* NULL, "q1" or "q2" */
    uintptr_t id;
    uint32_t hot_mask; /* bit h: the filter matches hot subject h */
} live_sub;

typedef struct churn_state {
    kci_sublist *sublist;
    live_sub live[PAIRS_MAX];
    size_t live_count;
    char hot[CHURN_HOT_SUBJECTS][CHURN_SUBJECT_BYTES_MAX];
    unsigned seed;
} churn_state;

typedef struct pair {
    const char *queue;
    size_t queue_len;
    uintptr_t sub;
} pair;

static int pair_compare(const void *left_pointer, const void *right_pointer)
{
    const pair *left = left_pointer;
    const pair *right = right_pointer;
    size_t common = left->queue_len < right->queue_len ? left->queue_len : right->queue_len;
    int order = memcmp(left->queue, right->queue, common);
    if (order != 0) return order;
    if (left->queue_len != right->queue_len) return left->queue_len < right->queue_len ? -1 : 1;
    return (left->sub > right->sub) - (left->sub < right->sub);
}

static void random_subject(char *buffer, unsigned *seed, bool filter)
{
    static const char *const tokens[] = {"a", "b", "c", "dd"};
    size_t token_count = 1 + (size_t)rand_r(seed) % 4;
    buffer[0] = '\0';
    for (size_t index = 0; index < token_count; index++) {
        const char *token = tokens[(size_t)rand_r(seed) % 4];
        int dice = rand_r(seed) % 10;
        if (filter && dice < 2) token = "*";
        if (filter && dice == 2 && index + 1 == token_count) token = ">";
        if (index > 0) strcat(buffer, ".");
        strcat(buffer, token);
    }
}

/* hot_index is a hot subject's index, or -1 to run the oracle on subject. */
static size_t oracle_pairs(const churn_state *churn, const char *subject, int hot_index,
                           pair *pairs)
{
    size_t count = 0;
    size_t subject_len = strlen(subject);
    for (size_t index = 0; index < churn->live_count; index++) {
        const live_sub *entry = &churn->live[index];
        bool matches = hot_index >= 0 ? (entry->hot_mask >> hot_index) & 1
                                      : kci_subject_matches(entry->filter, entry->filter_len,
                                                            subject, subject_len);
        if (!matches) continue;
        assert_true(count < PAIRS_MAX);
        const char *queue = entry->queue != NULL ? entry->queue : "";
        pairs[count++] = (pair){queue, strlen(queue), entry->id};
    }
    qsort(pairs, count, sizeof *pairs, pair_compare);
    return count;
}

static size_t result_pairs(const kci_match *result, pair *pairs)
{
    size_t count = 0;
    for (uint32_t index = 0; index < result->plain_count; index++) {
        assert_true(count < PAIRS_MAX);
        pairs[count++] = (pair){"", 0, (uintptr_t)result->plain[index] - 1};
    }
    for (uint32_t group_index = 0; group_index < result->group_count; group_index++) {
        const kci_match_group *group = &result->groups[group_index];
        assert_true(group->name_len > 0 && group->member_count > 0);
        for (uint32_t other = 0; other < group_index; other++) /* grouped by name */
            assert_false(result->groups[other].name_len == group->name_len &&
                         memcmp(result->groups[other].name, group->name, group->name_len) == 0);
        for (uint32_t index = 0; index < group->member_count; index++) {
            assert_true(count < PAIRS_MAX);
            pairs[count++] =
                (pair){group->name, group->name_len, (uintptr_t)group->members[index] - 1};
        }
    }
    qsort(pairs, count, sizeof *pairs, pair_compare);
    return count;
}

static void churn_check_match(const churn_state *churn, const char *subject, int hot_index)
{
    static pair expected[PAIRS_MAX];
    static pair got[PAIRS_MAX];
    size_t expected_count = oracle_pairs(churn, subject, hot_index, expected);
    const kci_match *result = match(churn->sublist, subject);
    size_t got_count = result_pairs(result, got);
    if (expected_count != got_count)
        fail_msg("'%s': oracle %zu, got %zu", subject, expected_count, got_count);
    for (size_t index = 0; index < got_count; index++)
        assert_int_equal(pair_compare(&expected[index], &got[index]), 0);
}

static size_t live_find(const churn_state *churn, const live_sub *wanted)
{
    for (size_t index = 0; index < churn->live_count; index++) {
        const live_sub *entry = &churn->live[index];
        if (entry->id == wanted->id && entry->queue == wanted->queue &&
            entry->filter_len == wanted->filter_len &&
            memcmp(entry->filter, wanted->filter, wanted->filter_len) == 0)
            return index;
    }
    return churn->live_count;
}

static void churn_candidate(churn_state *churn, live_sub *candidate, bool *from_live)
{
    static const char *const queues[] = {NULL, NULL, "q1", "q2"};
    int insert_percent = churn->live_count < CHURN_LIVE_TARGET ? 60 : 40;
    *from_live = rand_r(&churn->seed) % 100 >= insert_percent && churn->live_count > 0;
    if (*from_live) {
        *candidate = churn->live[(size_t)rand_r(&churn->seed) % churn->live_count];
        return;
    }
    *candidate = (live_sub){{0},
                            0,
                            queues[rand_r(&churn->seed) % 4],
                            (uintptr_t)(rand_r(&churn->seed) % CHURN_SUB_IDS),
                            0};
    random_subject(candidate->filter, &churn->seed, true);
    candidate->filter_len = strlen(candidate->filter);
    for (int hot_index = 0; hot_index < CHURN_HOT_SUBJECTS; hot_index++) {
        const char *hot = churn->hot[hot_index];
        if (kci_subject_matches(candidate->filter, candidate->filter_len, hot, strlen(hot)))
            candidate->hot_mask |= UINT32_C(1) << hot_index;
    }
}

/* One random insert or remove; sometimes of something that is (not) there. */
static void churn_step(churn_state *churn)
{
    live_sub candidate;
    bool from_live = false;
    churn_candidate(churn, &candidate, &from_live);
    size_t found = live_find(churn, &candidate);
    bool exists = found < churn->live_count;
    void *sub = sub_of(candidate.id);
    if (from_live || rand_r(&churn->seed) % 10 == 0) {
        kc_err err = remove_sub(churn->sublist, candidate.filter, candidate.queue, sub);
        assert_int_equal(err, exists ? KC_OK : KC_ERR_NOT_FOUND);
        if (exists) churn->live[found] = churn->live[--churn->live_count];
        return;
    }
    kc_err err = insert(churn->sublist, candidate.filter, candidate.queue, sub);
    assert_int_equal(err, exists ? KC_ERR_EXISTS : KC_OK);
    if (exists) return;
    assert_true(churn->live_count < PAIRS_MAX);
    churn->live[churn->live_count++] = candidate;
}

static void test_churn_against_oracle(void **state)
{
    (void)state;
    static churn_state churn;
    churn.seed = 20261121;
    churn.live_count = 0;
    for (int index = 0; index < CHURN_HOT_SUBJECTS; index++)
        random_subject(churn.hot[index], &churn.seed, false);
    churn.sublist = create(CHURN_CACHE_ENTRIES);
    char subject[CHURN_SUBJECT_BYTES_MAX];
    for (int operation = 0; operation < CHURN_OPERATIONS; operation++) {
        churn_step(&churn);
        int hot_index = rand_r(&churn.seed) % CHURN_HOT_SUBJECTS;
        churn_check_match(&churn, churn.hot[hot_index], hot_index);
        if (operation % CHURN_MATCH_EVERY == 0) {
            random_subject(subject, &churn.seed, false);
            churn_check_match(&churn, subject, -1);
        }
        if (operation % CHURN_COLLECT_EVERY == 0) kci_sublist_collect(churn.sublist);
        assert_int_equal(stats_of(churn.sublist).subscription_count, churn.live_count);
    }
    kci_sublist_stats stats = stats_of(churn.sublist);
    print_message("churn: %llu matches, %llu cache hits\n", (unsigned long long)stats.match_count,
                  (unsigned long long)stats.cache_hit_count);
    assert_true(stats.cache_hit_count > stats.match_count / 10); /* the cache was exercised */
    assert_true(stats.cache_entry_count <= CHURN_CACHE_ENTRIES);
    while (churn.live_count > 0) {
        const live_sub *entry = &churn.live[--churn.live_count];
        assert_int_equal(remove_sub(churn.sublist, entry->filter, entry->queue, sub_of(entry->id)),
                         KC_OK);
    }
    assert_int_equal(stats_of(churn.sublist).subscription_count, 0);
    assert_int_equal(kci_sublist_node_count(churn.sublist), 0);
    churn_check_match(&churn, churn.hot[0], -1);
    kci_sublist_destroy(churn.sublist);
}

/* A published subject with '*' or '>' tokens (nats-server lets a
 * non-pedantic client do this) matches with those tokens taken literally:
 * only '*' and '>' filters can match them. Such results are never cached,
 * so a later insert is seen at once. */
static void test_wildcard_subject_matched_literally(void **state)
{
    (void)state;
    kci_sublist *sublist = NULL;
    assert_int_equal(kci_sublist_create(&sublist, 16), KC_OK);
    assert_int_equal(insert(sublist, "foo.bar", NULL, sub_of(1)), KC_OK);
    assert_int_equal(insert(sublist, "foo.*", NULL, sub_of(2)), KC_OK);
    const kci_match *result = NULL;
    assert_int_equal(kci_sublist_match(sublist, "foo.*", 5, &result), KC_OK);
    assert_int_equal(result->plain_count, 1);
    assert_ptr_equal(result->plain[0], sub_of(2));
    assert_int_equal(insert(sublist, "foo.>", NULL, sub_of(3)), KC_OK);
    assert_int_equal(kci_sublist_match(sublist, "foo.*", 5, &result), KC_OK);
    assert_int_equal(result->plain_count, 2);
    kci_sublist_stats stats = stats_of(sublist);
    assert_int_equal(stats.cache_entry_count, 0);
    kci_sublist_collect(sublist);
    kci_sublist_destroy(sublist);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_create_limits),
        cmocka_unit_test(test_insert_match_remove),
        cmocka_unit_test(test_wildcards),
        cmocka_unit_test(test_queue_groups),
        cmocka_unit_test(test_many_queue_groups),
        cmocka_unit_test(test_duplicates),
        cmocka_unit_test(test_remove_unknown),
        cmocka_unit_test(test_invalid_input),
        cmocka_unit_test(test_wildcard_subject_matched_literally),
        cmocka_unit_test(test_cache_coherence),
        cmocka_unit_test(test_result_stability),
        cmocka_unit_test(test_cache_disabled),
        cmocka_unit_test(test_cache_bounded_clock),
        cmocka_unit_test(test_stats),
        cmocka_unit_test(test_nodes_freed),
        cmocka_unit_test(test_churn_against_oracle),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
