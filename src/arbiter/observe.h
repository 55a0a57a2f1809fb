/* observe.h - the requests and replies the arbiter has seen on the fabric,
 * by Kc-Id: a bounded table the problem reports are checked against.
 *
 * Open addressing over KCI_OBSERVE_SLOTS slots with a probe window of
 * KCI_OBSERVE_PROBES: an insert that finds the window full overwrites the
 * oldest entry in it, so the table never grows and old requests fall out
 * first. The key hash is seeded per table (ids come from the network). */
#ifndef KCI_ARBITER_OBSERVE_H
#define KCI_ARBITER_OBSERVE_H

#include <stdbool.h>
#include <stdint.h>

#include "kingcobra/kingcobra.h"

enum {
    KCI_OBSERVE_SLOTS = 1 << 14, /* about 6 MiB */
    KCI_OBSERVE_PROBES = 16,
    KCI_OBSERVE_TYPE_BYTES_MAX = 64, /* longer types are cut (they only label) */
};

typedef struct kci_observation {
    char id[KC_UUID_TEXT_BYTES + 1]; /* "" : free slot */
    char type[KCI_OBSERVE_TYPE_BYTES_MAX + 1];
    char requester[KC_NODE_BYTES_MAX + 1];
    char server[KC_NODE_BYTES_MAX + 1]; /* who replied; "" until then */
    int64_t requested_ms;               /* monotonic */
    int64_t deadline_wall_ms;           /* Kc-Deadline, 0: none */
    int64_t replied_ms;                 /* 0: no reply seen */
    int64_t replied_wall_ms;
    int error_code;        /* Kc-Error code of the reply */
    double price;          /* < 0: not known */
    double price_declared; /* what the reply declared while the ledger is asked; < 0: none */
    char pay[KC_UUID_TEXT_BYTES + 1]; /* Kc-Pay: the ledger transfer that paid it; "" none */
    bool pay_is_hold;                 /* pay is a Kc-Pay-Hold: charged only once posted */
    bool settled;                     /* replied, or counted as unanswered */
    bool from_log;                    /* learnt from the persister's log: no latency */
} kci_observation;

typedef struct kci_observe kci_observe;

kci_observe *kci_observe_create(void);
void kci_observe_destroy(kci_observe *observe);
/* The entry for id, creating (and possibly evicting) one; never NULL. */
kci_observation *kci_observe_put(kci_observe *observe, const char *id, int64_t now_ms);
/* The entry for id or NULL. */
kci_observation *kci_observe_get(kci_observe *observe, const char *id);
/* Calls visit on every entry older than before_ms that is not settled. */
void kci_observe_expire(kci_observe *observe, int64_t before_ms,
                        void (*visit)(kci_observation *, void *), void *context);

#endif
