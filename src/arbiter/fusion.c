/* fusion.c - Brooks–Iyengar fusion and the bounded vote (fusion.h).
 *
 * The sweep sorts the 2n interval ends, walks them keeping how many
 * intervals are open, and emits each piece between two distinct ends whose
 * cover is at least n - f. A piece of zero width (two intervals touching at
 * a point) is emitted only when every interval is a point, so exact answers
 * (low == high) fuse as a vote on values. O(n log n). */
#include "fusion.h"

#include <assert.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct end_point {
    double at;
    int delta; /* +1 opens, -1 closes */
} end_point;

/* Opens sort before closes at the same point: closed intervals touch. */
static int compare_ends(const void *left, const void *right)
{
    const end_point *a = left, *b = right;
    if (a->at < b->at) return -1;
    if (a->at > b->at) return 1;
    return b->delta - a->delta;
}

uint32_t kci_fusion_faults_tolerated(uint32_t n)
{
    return n == 0 ? 0 : (n - 1) / 3;
}

static kc_err check_intervals(const kci_interval *intervals, uint32_t n, uint32_t f)
{
    if (n == 0 || n > KCI_FUSION_REPLICAS_MAX || f >= n) return KC_ERR_INVALID_ARGUMENT;
    for (uint32_t i = 0; i < n; i++) {
        if (!isfinite(intervals[i].low) || !isfinite(intervals[i].high))
            return KC_ERR_INVALID_ARGUMENT;
        if (intervals[i].low > intervals[i].high) return KC_ERR_INVALID_ARGUMENT;
    }
    return KC_OK;
}

static bool all_points(const kci_interval *intervals, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++)
        if (intervals[i].low != intervals[i].high) return false;
    return true;
}

/* Adds one region [low, high] covered by cover intervals. */
static void add_region(kci_fusion_result *result, double *weighted_sum, uint32_t *weight_total,
                       double low, double high, uint32_t cover)
{
    if (result->region_count == 0 || low < result->fused.low) result->fused.low = low;
    if (result->region_count == 0 || high > result->fused.high) result->fused.high = high;
    *weighted_sum += cover * (low + high) / 2.0;
    *weight_total += cover;
    result->region_count++;
}

static void mark_suspects(kci_fusion_result *result, const kci_interval *intervals, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++) {
        bool misses =
            intervals[i].high < result->fused.low || intervals[i].low > result->fused.high;
        result->suspect[i] = misses;
        result->suspect_count += misses;
    }
}

kc_err kci_fusion_fuse(kci_fusion_result *result, const kci_interval *intervals, uint32_t n,
                       uint32_t f)
{
    memset(result, 0, sizeof *result);
    kc_err err = check_intervals(intervals, n, f);
    if (err != KC_OK) return err;
    result->bound_met = n > 3 * f;
    end_point ends[2 * KCI_FUSION_REPLICAS_MAX] = {{0}};
    for (uint32_t i = 0; i < n; i++) {
        ends[2 * i] = (end_point){intervals[i].low, +1};
        ends[2 * i + 1] = (end_point){intervals[i].high, -1};
    }
    qsort(ends, 2 * (size_t)n, sizeof ends[0], compare_ends);
    bool points = all_points(intervals, n);
    double weighted_sum = 0;
    uint32_t weight_total = 0, open = 0, need = n - f;
    for (uint32_t k = 0; k < 2 * n; k++) {
        if (ends[k].delta > 0) {
            open++;
            /* A point answer: after the last open at this point, before any close. */
            if (points && open >= need && (k + 1 == 2 * n || ends[k + 1].delta < 0))
                add_region(result, &weighted_sum, &weight_total, ends[k].at, ends[k].at, open);
        } else {
            assert(open > 0);
            open--;
        }
        if (points || k + 1 == 2 * n) continue;
        if (open >= need && ends[k + 1].at > ends[k].at)
            add_region(result, &weighted_sum, &weight_total, ends[k].at, ends[k + 1].at, open);
    }
    assert(open == 0);
    if (result->region_count == 0) return KC_OK;
    result->found = true;
    result->value = weighted_sum / weight_total;
    mark_suspects(result, intervals, n);
    return KC_OK;
}

kc_err kci_fusion_vote(kci_vote_result *result, const uint64_t *answers, uint32_t n, uint32_t f)
{
    memset(result, 0, sizeof *result);
    if (n == 0 || n > KCI_FUSION_REPLICAS_MAX || f >= n) return KC_ERR_INVALID_ARGUMENT;
    result->bound_met = n > 3 * f;
    /* O(n^2) on at most KCI_FUSION_REPLICAS_MAX answers: simpler than a map. */
    uint32_t best = 0, best_count = 0;
    for (uint32_t i = 0; i < n; i++) {
        uint32_t count = 0;
        for (uint32_t j = 0; j < n; j++)
            count += answers[j] == answers[i];
        if (count > best_count) best = i, best_count = count;
    }
    if (best_count < n - f) return KC_OK;
    result->found = true;
    result->winner = answers[best];
    result->winner_count = best_count;
    for (uint32_t i = 0; i < n; i++) {
        result->suspect[i] = answers[i] != result->winner;
        result->suspect_count += result->suspect[i];
    }
    return KC_OK;
}
