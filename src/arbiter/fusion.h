/* fusion.h - Brooks–Iyengar interval fusion and its non-numeric twin, a
 * vote with the same fault bound.
 *
 * Brooks & Iyengar (1996), "Robust distributed computing and sensing
 * algorithm": n replicas each answer a value with an accuracy interval
 * [low, high]; at most f of them are faulty. The line is cut at every
 * interval end; each piece covered by at least n - f intervals is a
 * region, weighted by how many intervals cover it. The fused value is the
 * weighted average of the regions' midpoints, the fused interval runs from
 * the lowest region's low end to the highest region's high end. With
 * n > 3f the fused interval contains the true value whenever the correct
 * replicas' intervals do, and it is at most as wide as the widest correct
 * interval. A replica whose interval does not meet the fused interval is a
 * suspect. */
#ifndef KCI_ARBITER_FUSION_H
#define KCI_ARBITER_FUSION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kingcobra/err.h"

enum {
    KCI_FUSION_REPLICAS_MAX = 256, /* answers fused in one round */
};

typedef struct kci_interval {
    double low;
    double high; /* low <= high */
} kci_interval;

typedef struct kci_fusion_result {
    bool found;         /* some piece was covered by n - f intervals */
    bool bound_met;     /* n > 3f: the algorithm's guarantee holds */
    double value;       /* fused value (when found) */
    kci_interval fused; /* fused interval (when found) */
    uint32_t region_count;
    uint32_t suspect_count;
    bool suspect[KCI_FUSION_REPLICAS_MAX]; /* interval i misses the fused interval */
} kci_fusion_result;

/* The largest f with n > 3f: (n - 1) / 3 (0 when n < 4). */
uint32_t kci_fusion_faults_tolerated(uint32_t n);
/* Fuses n intervals assuming at most f faulty. KC_ERR_INVALID_ARGUMENT when
 * n is 0 or above KCI_FUSION_REPLICAS_MAX, f >= n, an interval has
 * low > high or is not finite. Not finding a region (more than f liars
 * spread apart) is not an error: result->found is false and every
 * replica is a suspect-free unknown. */
kc_err kci_fusion_fuse(kci_fusion_result *result, const kci_interval *intervals, uint32_t n,
                       uint32_t f);

/* Vote over opaque answers (hashes): the answer given by at least n - f
 * replicas wins; the others are suspects. found is false when no answer
 * has that many. The same n > 3f bound applies. */
typedef struct kci_vote_result {
    bool found;
    bool bound_met;
    uint64_t winner;
    uint32_t winner_count;
    uint32_t suspect_count;
    bool suspect[KCI_FUSION_REPLICAS_MAX];
} kci_vote_result;

kc_err kci_fusion_vote(kci_vote_result *result, const uint64_t *answers, uint32_t n, uint32_t f);

#endif
