/* qos_sample.h - QoS samples signed by the node that reports them
 * (docs/arbiter.md, "Watching is not serving"; the sender's side is
 * src/service/qos_report.h).
 *
 * Where the arbiter cannot watch requests (a nats-server cluster has no
 * tap, and a kc.req.> subscriber would hide "no responders"), it hears of
 * them from the clients: a kc.qos.<node> sample counts, besides those of
 * pre-trusted senders, when its Kc-Node names a reporter with a key in
 * node_keys ("<node>=<hex key>"), Kc-Qos-Signature is that key's Ed25519
 * signature over the exact body, the body names the subject's node and the
 * reporter, and its ts_ms is fresh (KCI_VOTE_AGE_MS_MAX) and not older than
 * the reporter's last counted sample (a replay otherwise). Everything else
 * is dropped and counted. */
#ifndef KCI_ARBITER_QOS_SAMPLE_H
#define KCI_ARBITER_QOS_SAMPLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "arbiter/vote_sign.h"
#include "kingcobra/kingcobra.h"

#define KCI_QOS_SAMPLE_SIGNATURE_HEADER "Kc-Qos-Signature"

enum {
    KCI_ARBITER_NODE_KEYS_MAX = 128, /* node_keys entries */
    KCI_QOS_SAMPLE_TYPE_BYTES_MAX = KC_TYPE_BYTES_MAX,
};

typedef enum kci_qos_sample_status {
    KCI_QOS_SAMPLE_OK = 0,
    KCI_QOS_SAMPLE_UNKNOWN_KEY,   /* no node_keys entry for the reporter */
    KCI_QOS_SAMPLE_BAD_SIGNATURE, /* missing, or not the reporter's key's */
    KCI_QOS_SAMPLE_MALFORMED,     /* signed, but not a sample about this node by this reporter */
    KCI_QOS_SAMPLE_REPLAY,        /* stale, or not newer than the last one counted */
    KCI_QOS_SAMPLE_STATUSES,
} kci_qos_sample_status;

typedef struct kci_qos_signed {
    double latency_ms;
    bool ok;
    int error_code; /* the reply's Kc-Error code, 0 when it answered */
    bool deadline_missed;
    int64_t ts_ms; /* the reporter's wall clock */
    char request_id[KC_UUID_TEXT_BYTES + 1];
    char type[KCI_QOS_SAMPLE_TYPE_BYTES_MAX + 1];
} kci_qos_signed;

/* The last sample counted from one reporter (ts_ms 0: none yet). */
typedef struct kci_qos_last {
    int64_t ts_ms;
    char request_id[KC_UUID_TEXT_BYTES + 1];
} kci_qos_last;

/* Checks a sample on kc.qos.<node> from reporter (its Kc-Node) against the
 * configured keys at now_wall_ms; on KCI_QOS_SAMPLE_OK, *out is the sample
 * and *last is advanced to it. */
kci_qos_sample_status kci_qos_sample_check(kci_qos_signed *out, kci_qos_last *last,
                                           const kci_vote_key *keys, uint32_t key_count,
                                           const char *reporter, const char *node,
                                           const char *signature, const void *body, size_t length,
                                           int64_t now_wall_ms);
/* The status's name for logs and metrics ("ok", "unknown_key"...). */
const char *kci_qos_sample_status_name(kci_qos_sample_status status);

#endif
