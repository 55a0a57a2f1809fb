/* views.h - the console's documents for nodes, queue and ledger, built
 * from what the components answer (kc.arbiter.status/.verdicts/.tree,
 * kc.sys.queue.stats, kc.ledger.history and kc.ledger.audit). Pure
 * functions of their inputs, so each field is unit-tested; gather.c asks
 * and puts the results in the feed. docs/console.md lists the fields. */
#ifndef KCI_CONSOLE_VIEWS_H
#define KCI_CONSOLE_VIEWS_H

#include <jansson.h>
#include <stdint.h>

enum {
    KCI_CONSOLE_VERDICTS_SHOWN_MAX = 50,
    KCI_CONSOLE_GRAPH_VERTICES_MAX = 60, /* the busiest wallets drawn */
    KCI_CONSOLE_GRAPH_EDGES_MAX = 200,
    KCI_CONSOLE_LARGEST_FLOWS = 10,
    KCI_CONSOLE_HUB_DEGREE_MIN = 3, /* distinct counterparties */
};

/* {"available": false, "error": error, "updated_ms": now_ms}. */
json_t *kci_console_unavailable(const char *error, int64_t now_ms);
/* status, verdicts and tree as the arbiter answers them (verdicts or tree
 * may be NULL). */
json_t *kci_console_nodes_view(const json_t *status, const json_t *verdicts, const json_t *tree,
                               int64_t now_ms);
/* stats as the persister answers; previous (NULL: none) elapsed_ms before,
 * for redeliveries per second. */
json_t *kci_console_queue_view(const json_t *stats, const json_t *previous, int64_t elapsed_ms,
                               int64_t now_ms);
/* edges: kc.ledger.history's edges of the last window_ms; audit: the last
 * kc.ledger.audit answer (NULL: none yet). */
json_t *kci_console_ledger_view(const json_t *edges, const json_t *audit, int64_t window_ms,
                                int64_t now_ms);

#endif
