/* store.h - the EventNet graph on disk (docs/eventnet.md): events by Kc-Id
 * with their HLC time, subject, kind and node, and the causal edges both
 * ways (cause -> effect, effect -> cause), in one LMDB environment. The only
 * caller of LMDB for EventNet; LMDB's codes become kc_err here.
 *
 * Bounded: at most events_max events are kept; adding one beyond drops the
 * oldest (by HLC time) with its edge lists, and remembers the newest time
 * dropped (the horizon), so a check can tell a cause dropped by retention
 * from one never seen. */
#ifndef KCI_EVENTNET_STORE_H
#define KCI_EVENTNET_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kingcobra/err.h"
#include "service/cause.h"
#include "service/hlc.h"
#include "service/uuid.h"

enum {
    KCI_EVENT_KIND_BYTES_MAX = 15,
    KCI_EVENT_SUBJECT_BYTES_MAX = 255, /* longer subjects are cut (display only) */
    KCI_EVENT_NODE_BYTES_MAX = 128,
};

typedef struct kci_event {
    kci_uuid id;
    kci_hlc_timestamp ts;
    char kind[KCI_EVENT_KIND_BYTES_MAX + 1];
    char subject[KCI_EVENT_SUBJECT_BYTES_MAX + 1];
    char node[KCI_EVENT_NODE_BYTES_MAX + 1];
    size_t cause_count;
    kci_uuid causes[KCI_CAUSE_IDS_MAX];
} kci_event;

typedef struct kci_eventnet_store kci_eventnet_store;

/* Opens (creating unless read_only) the environment in directory. */
kc_err kci_eventnet_store_open(kci_eventnet_store **out, const char *directory, bool read_only,
                               uint64_t events_max);
void kci_eventnet_store_close(kci_eventnet_store *store);
/* Records the event and its cause edges; *added false (KC_OK) when the id
 * was recorded before (the first record stands: a dispatch carries its
 * submit's id). */
kc_err kci_eventnet_store_add(kci_eventnet_store *store, const kci_event *event, bool *added);
/* KC_ERR_NOT_FOUND if absent. cause_count and causes are filled. */
kc_err kci_eventnet_store_get(kci_eventnet_store *store, const kci_uuid *id, kci_event *out);
/* The ids on the other side of id's edges: its causes, or its effects. At
 * most ids_max; *count may be less than there are (bounded fan-out). */
kc_err kci_eventnet_store_neighbours(kci_eventnet_store *store, const kci_uuid *id, bool effects,
                                     kci_uuid *ids, size_t ids_max, size_t *count);
/* Calls visit for each event in HLC order from since (inclusive; NULL: the
 * start) until it returns false or limit events were visited. */
typedef bool (*kci_event_visit)(const kci_event *event, void *context);
kc_err kci_eventnet_store_scan(kci_eventnet_store *store, const kci_hlc_timestamp *since,
                               uint64_t limit, kci_event_visit visit, void *context);
/* The newest time dropped by retention (0.0: nothing dropped), and the count. */
kc_err kci_eventnet_store_stats(kci_eventnet_store *store, kci_hlc_timestamp *horizon,
                                uint64_t *event_count);

#endif
