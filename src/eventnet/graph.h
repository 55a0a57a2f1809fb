/* graph.h - questions asked of the EventNet store (docs/eventnet.md): the
 * causes or effects of an event to a depth, and the check that the graph's
 * HLC order agrees with causality. */
#ifndef KCI_EVENTNET_GRAPH_H
#define KCI_EVENTNET_GRAPH_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "eventnet/store.h"

enum {
    KCI_EVENTNET_WALK_NODES_MAX = 10000, /* events one walk visits at most */
    KCI_EVENTNET_FANOUT_MAX = 1024,      /* effects of one event followed at most */
    KCI_EVENTNET_DEPTH_MAX = 1000,
    KCI_EVENTNET_PROBLEMS_MAX = 1000, /* problems a check lists (it counts them all) */
};

/* {"root": id, "direction": "causes"|"effects", "events": [{"id", "ts", "kind",
 * "node", "subject", "depth", "causes": [...]} or {"id", "depth", "missing":
 * true}], "truncated": bool}: breadth first from id, at most depth steps. */
kc_err kci_eventnet_walk(kci_eventnet_store *store, const kci_uuid *id, bool effects, int depth,
                         json_t **out);

typedef struct kci_eventnet_check_result {
    uint64_t event_count;
    uint64_t edge_count;
    uint64_t order_violation_count; /* a cause whose Kc-Ts is not before its effect's */
    uint64_t missing_cause_count;   /* a cause never recorded (and not dropped by retention) */
    uint64_t dropped_cause_count;   /* a cause older than the retention horizon */
    json_t *problems;               /* [{"problem": "order"|"missing", "effect", "cause", ...}] */
} kci_eventnet_check_result;

/* Visits every event; never invents a cause. out->problems is owned by the
 * caller (json_decref). */
kc_err kci_eventnet_check(kci_eventnet_store *store, kci_eventnet_check_result *out);

#endif
