/* quorum.c - counting the arbiters' votes (quorum.h). */
#include "quorum.h"

#include <assert.h>
#include <stdio.h>
#include <string.h>

uint32_t kci_quorum_needed(uint32_t arbiter_count)
{
    if (arbiter_count <= 1) return 1;
    uint32_t f = (arbiter_count - 1) / 3;
    return 2 * f + 1;
}

bool kci_quorum_vote_set(kci_quorum *quorum, const char *arbiter, kci_vote_kind kind, int64_t at_ms)
{
    assert(quorum->vote_count <= KCI_QUORUM_ARBITERS_MAX);
    for (uint32_t i = 0; i < quorum->vote_count; i++) {
        if (strcmp(quorum->votes[i].arbiter, arbiter) != 0) continue;
        quorum->votes[i].kind = kind;
        quorum->votes[i].at_ms = at_ms;
        return true;
    }
    if (quorum->vote_count == KCI_QUORUM_ARBITERS_MAX) return false;
    kci_quorum_vote *vote = &quorum->votes[quorum->vote_count++];
    snprintf(vote->arbiter, sizeof vote->arbiter, "%s", arbiter);
    vote->kind = kind;
    vote->at_ms = at_ms;
    return true;
}

static kci_quorum_vote *vote_of(const kci_quorum *quorum, const char *arbiter)
{
    for (uint32_t i = 0; i < quorum->vote_count; i++)
        if (strcmp(quorum->votes[i].arbiter, arbiter) == 0)
            return (kci_quorum_vote *)&quorum->votes[i];
    return NULL;
}

int64_t kci_quorum_vote_ts(const kci_quorum *quorum, const char *arbiter)
{
    const kci_quorum_vote *vote = vote_of(quorum, arbiter);
    return vote != NULL ? vote->ts_ms : 0;
}

void kci_quorum_vote_ts_set(kci_quorum *quorum, const char *arbiter, int64_t ts_ms)
{
    kci_quorum_vote *vote = vote_of(quorum, arbiter);
    if (vote != NULL) vote->ts_ms = ts_ms;
}

uint32_t kci_quorum_count(const kci_quorum *quorum, kci_vote_kind kind, int64_t now_ms,
                          int64_t max_age_ms)
{
    uint32_t count = 0;
    for (uint32_t i = 0; i < quorum->vote_count; i++) {
        const kci_quorum_vote *vote = &quorum->votes[i];
        if (vote->kind != kind) continue;
        if (max_age_ms > 0 && now_ms - vote->at_ms > max_age_ms) continue;
        count++;
    }
    return count;
}
