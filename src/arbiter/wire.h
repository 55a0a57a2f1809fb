/* wire.h - the messages the arbiter reads from the network, parsed and
 * validated in one place (and fuzzed: fuzz/fuzz_arbiter_wire.c):
 *
 *  - a problem report on kc.problem.<node> (docs/service.md):
 *    {"node", "reason", "request_id" (UUID or null), "text", "reporter"};
 *    the reporter is the Kc-Node header when there is one;
 *  - a vote on kc.arbiter.vote:
 *    {"arbiter", "node", "vote": "quarantine"|"clear", "epoch", ...}.
 *
 * Each parse returns NULL or a short reason for the log. Names are checked
 * to be one subject token of at most 128 bytes. */
#ifndef KCI_ARBITER_WIRE_H
#define KCI_ARBITER_WIRE_H

#include <stddef.h>
#include <stdint.h>

#include "arbiter/quorum.h"
#include "kingcobra/kingcobra.h"

enum {
    KCI_REPORT_BYTES_MAX = 20 * 1024, /* 16 KiB of text and the fields */
    KCI_VOTE_BYTES_MAX = 64 * 1024,
};

typedef struct kci_report {
    char node[KC_NODE_BYTES_MAX + 1];
    char reporter[KC_NODE_BYTES_MAX + 1];
    char request_id[KC_UUID_TEXT_BYTES + 1]; /* "": none */
    kc_problem_reason reason;
} kci_report;

typedef struct kci_vote {
    char arbiter[KCI_ARBITER_ID_BYTES_MAX + 1];
    char node[KC_NODE_BYTES_MAX + 1];
    kci_vote_kind kind;
    uint32_t epoch;
    int64_t ts_ms; /* when it was cast (wall ms); 0: not said */
} kci_vote;

/* subject_node: the <node> of the subject; header_node: Kc-Node or NULL. */
const char *kci_report_parse(kci_report *out, const char *subject_node, const char *header_node,
                             const char *data, size_t length);
const char *kci_vote_parse(kci_vote *out, const char *data, size_t length);

#endif
