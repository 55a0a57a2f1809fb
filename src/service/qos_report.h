/* qos_report.h - signed QoS samples a client reports about the services that
 * answered it (docs/service.md, "QoS samples"; docs/arbiter.md, "Watching is
 * not serving").
 *
 * On a nats-server cluster the arbiters have no tap: a kc.req.> subscriber
 * would count as a responder and hide "no responders". What they can watch
 * instead is what clients report. A client opened with a QoS key
 * (kc_client_options.qos_secret_key) publishes, for each reply one of its
 * synchronous requests got, a sample on kc.qos.<serving node>:
 *
 *   {"node":"<server>","reporter":"<this node>","type":"<type>",
 *    "request_id":"<Kc-Id>","latency_ms":n,"ok":b,"error_code":n,
 *    "deadline_missed":false,"ts_ms":<wall ms>}
 *
 * signed with Ed25519 over exactly those bytes: the headers Kc-Qos-Key (the
 * reporter's public key, hex) and Kc-Qos-Signature (hex), Kc-Node the
 * reporter. The arbiter believes it when the key configured for the reporter
 * (node_keys) verifies it, the body names the subject's node and ts_ms is
 * fresh and not older than the reporter's last sample.
 *
 * Off the request's path: the request only copies the sample into a bounded
 * queue (KCI_QOS_PENDING_MAX); a thread of its own formats, signs and
 * publishes. A full queue drops the sample and counts it. A timeout names
 * no server (a queue group picked one nobody can see), so it is not
 * reported. */
#ifndef KCI_SERVICE_QOS_REPORT_H
#define KCI_SERVICE_QOS_REPORT_H

#include <stddef.h>
#include <stdint.h>

#include "kingcobra/kingcobra.h"

#define KCI_QOS_SUBJECT_PREFIX "kc.qos."
#define KCI_QOS_KEY_HEADER "Kc-Qos-Key"
#define KCI_QOS_SIGNATURE_HEADER "Kc-Qos-Signature"

enum {
    KCI_QOS_PENDING_MAX = 1024, /* samples queued per client before they are dropped */
    KCI_QOS_SECRET_BYTES = 64,  /* libsodium's Ed25519 secret key */
    KCI_QOS_PUBLIC_BYTES = 32,
    KCI_QOS_SIGNATURE_BYTES = 64,
};

typedef struct kci_qos_reporter kci_qos_reporter;

/* One sample, as the client saw it. */
typedef struct kci_qos_report {
    char node[KC_NODE_BYTES_MAX + 1]; /* who answered (the reply's Kc-Node) */
    char type[KC_TYPE_BYTES_MAX + 1];
    char request_id[KC_UUID_TEXT_BYTES + 1];
    int64_t latency_ms;
    int error_code; /* the reply's Kc-Error code; 0: answered */
    int64_t ts_ms;  /* wall clock when the reply came */
} kci_qos_report;

/* Starts client's reporter with secret_key (copied); KC_ERR_NOMEM or a
 * thread failure otherwise. */
kc_err kci_qos_reporter_start(kc_client *client, const uint8_t secret_key[KCI_QOS_SECRET_BYTES]);
/* Publishes what is queued, stops the thread, wipes the key, frees. Before
 * the connection drains. client->qos may be NULL. */
void kci_qos_reporter_stop(kc_client *client);
/* Queues a sample about the reply (a reply without Kc-Node is skipped). */
void kci_qos_report_reply(kc_client *client, const kc_reply *reply, const char *type,
                          const char *request_id, int64_t latency_ms);
/* Samples dropped because the queue was full, and published. */
uint64_t kci_qos_reporter_dropped(const kc_client *client);
uint64_t kci_qos_reporter_published(const kc_client *client);

/* The signed body of report from reporter (NUL-terminated JSON, malloc'd;
 * NULL without memory). */
char *kci_qos_report_body(const kci_qos_report *report, const char *reporter);
/* The detached signature (hex, 2 * KCI_QOS_SIGNATURE_BYTES + 1) of body. */
void kci_qos_sign(char signature[2 * KCI_QOS_SIGNATURE_BYTES + 1], const char *body,
                  const uint8_t secret_key[KCI_QOS_SECRET_BYTES]);

#endif
