/* observe.c - the bounded table of observed requests (observe.h). */
#include "observe.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "common/hash.h"

struct kci_observe {
    uint64_t seed;
    kci_observation slots[KCI_OBSERVE_SLOTS];
};

kci_observe *kci_observe_create(void)
{
    kci_observe *observe = calloc(1, sizeof *observe);
    if (observe == NULL) return NULL;
    if (getrandom(&observe->seed, sizeof observe->seed, 0) != sizeof observe->seed)
        observe->seed = (uint64_t)(uintptr_t)observe;
    return observe;
}

void kci_observe_destroy(kci_observe *observe)
{
    free(observe);
}

static uint32_t home(const kci_observe *observe, const char *id)
{
    return (uint32_t)(kci_hash_bytes_seeded(id, strlen(id), observe->seed) &
                      (KCI_OBSERVE_SLOTS - 1));
}

kci_observation *kci_observe_get(kci_observe *observe, const char *id)
{
    uint32_t start = home(observe, id);
    for (uint32_t k = 0; k < KCI_OBSERVE_PROBES; k++) {
        kci_observation *slot = &observe->slots[(start + k) & (KCI_OBSERVE_SLOTS - 1)];
        if (slot->id[0] != '\0' && strcmp(slot->id, id) == 0) return slot;
    }
    return NULL;
}

kci_observation *kci_observe_put(kci_observe *observe, const char *id, int64_t now_ms)
{
    kci_observation *found = kci_observe_get(observe, id);
    if (found != NULL) return found;
    uint32_t start = home(observe, id);
    kci_observation *victim = NULL;
    for (uint32_t k = 0; k < KCI_OBSERVE_PROBES; k++) {
        kci_observation *slot = &observe->slots[(start + k) & (KCI_OBSERVE_SLOTS - 1)];
        if (slot->id[0] == '\0') {
            victim = slot;
            break;
        }
        if (victim == NULL || slot->requested_ms < victim->requested_ms) victim = slot;
    }
    assert(victim != NULL);
    memset(victim, 0, sizeof *victim);
    snprintf(victim->id, sizeof victim->id, "%s", id);
    victim->requested_ms = now_ms;
    victim->price = -1;
    victim->price_declared = -1;
    return victim;
}

void kci_observe_expire(kci_observe *observe, int64_t before_ms,
                        void (*visit)(kci_observation *, void *), void *context)
{
    for (uint32_t i = 0; i < KCI_OBSERVE_SLOTS; i++) {
        kci_observation *slot = &observe->slots[i];
        if (slot->id[0] == '\0' || slot->settled || slot->requested_ms >= before_ms) continue;
        visit(slot, context);
    }
}
