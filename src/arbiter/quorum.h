/* quorum.h - when the arbiters' votes about a node make a verdict final.
 *
 * With arbiter_count = 3f + 1 configured arbiters, a verdict is final when
 * 2f + 1 distinct arbiters currently vote for it: any two such quorums
 * share an honest arbiter, so f lying arbiters can neither quarantine an
 * honest node nor keep a bad one serving. Each arbiter's latest vote about
 * a node counts (votes are re-sent every tick and can change: quarantine,
 * then reinstate). Arbiter ids beyond KCI_QUORUM_ARBITERS_MAX per node are
 * dropped, so a flood of made-up ids cannot grow memory. */
#ifndef KCI_ARBITER_QUORUM_H
#define KCI_ARBITER_QUORUM_H

#include <stdbool.h>
#include <stdint.h>

enum {
    KCI_QUORUM_ARBITERS_MAX = 64,
    KCI_ARBITER_ID_BYTES_MAX = 128,
};

typedef enum kci_vote_kind {
    KCI_VOTE_NONE = 0,
    KCI_VOTE_QUARANTINE = 1,
    KCI_VOTE_CLEAR = 2, /* the node is fine (or recovered): reinstate */
} kci_vote_kind;

typedef struct kci_quorum_vote {
    char arbiter[KCI_ARBITER_ID_BYTES_MAX + 1];
    kci_vote_kind kind;
    int64_t at_ms;
    int64_t ts_ms; /* the vote's own timestamp (wall ms), for replays; 0: none */
} kci_quorum_vote;

typedef struct kci_quorum {
    uint32_t vote_count;
    kci_quorum_vote votes[KCI_QUORUM_ARBITERS_MAX];
} kci_quorum;

/* 2f + 1 with f = (arbiter_count - 1) / 3; 1 for a single arbiter. */
uint32_t kci_quorum_needed(uint32_t arbiter_count);
/* Records arbiter's latest vote; false when the table is full. */
bool kci_quorum_vote_set(kci_quorum *quorum, const char *arbiter, kci_vote_kind kind,
                         int64_t at_ms);
/* The ts_ms of arbiter's latest vote (0 when none or unstamped). */
int64_t kci_quorum_vote_ts(const kci_quorum *quorum, const char *arbiter);
/* Sets that vote's ts_ms (after kci_quorum_vote_set). */
void kci_quorum_vote_ts_set(kci_quorum *quorum, const char *arbiter, int64_t ts_ms);
/* Votes of kind no older than max_age_ms (0: any age). */
uint32_t kci_quorum_count(const kci_quorum *quorum, kci_vote_kind kind, int64_t now_ms,
                          int64_t max_age_ms);

#endif
