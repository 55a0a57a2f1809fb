/* verdict_js.h - the arbiters' verdicts on a JetStream stream
 * (verdict_storage: jetstream), so that every arbiter, and every kcobrad
 * whose hosted arbiter enforces, holds the same quarantined set, after a
 * restart or a server's loss too.
 *
 * Writing: a final verdict (verdict.c's finalize) is not taken at once; it
 * is queued, and a writer thread appends it to the stream (one message per
 * verdict, the same JSON as a line of the local file plus "prev", the hash
 * chain: verdict_chain.h) with Nats-Msg-Id "<node>:<epoch>:<action>", the
 * same at every arbiter, so several arbiters that reach the same quorum
 * store it once, and Nats-Expected-Last-Sequence the last message this
 * arbiter has read, so the chain is the stream's order (a refusal means
 * another arbiter wrote first: it waits to read that, and writes again only
 * if its verdict is still news).
 *
 * Reading: every arbiter follows the stream from its first message (a
 * thread reading it through its leader, woken by a plain subscription to
 * its subject: verdict_js_follow.c) and takes each verdict in the stream's
 * order when it is news for its node (its epoch is above the node's; a duplicate is not).
 * So a verdict is taken, announced (kc.arbiter.verdict) and enforced
 * (kc.sys.quarantine.set) only once the stream holds it, by every arbiter
 * alike, whichever wrote it. At start the arbiter reads the stream up to its
 * last message (bounded by verdict_open_timeout_ms) before it votes or
 * enforces; those verdicts are taken silently, as the file's replay is.
 *
 * Everything under the arbiter's lock but the publish itself. */
#ifndef KCI_VERDICT_JS_H
#define KCI_VERDICT_JS_H

#include <jansson.h>
#include <nats/nats.h>
#include <stddef.h>

#include "arbiter/verdict_chain.h"
#include "kingcobra/err.h"

typedef struct kci_arbiter kci_arbiter;
typedef struct kci_verdict_js kci_verdict_js;

/* Connects (verdict_servers, else the arbiter's connection), finds or
 * creates the stream, follows it and reads it to its end; sets
 * arbiter->verdict_js. */
kc_err kci_verdict_js_open(kci_arbiter *arbiter, char *error, size_t error_size);
/* Stops the writer and the follower; a verdict still queued is dropped (the
 * next start, or another arbiter, votes it again). NULL is fine. */
void kci_verdict_js_close(kci_verdict_js *verdicts);
/* Under the arbiter's lock: queues verdict (owned) about node, the one that
 * takes its epoch to epoch, for the stream; a verdict already queued is not
 * queued twice. */
void kci_verdict_js_append(kci_verdict_js *verdicts, json_t *verdict, const char *node,
                           uint32_t epoch);
/* Under the arbiter's lock: the last verdicts read from the stream (a new
 * reference), oldest first. */
json_t *kci_verdict_js_recent(kci_verdict_js *verdicts);
/* Under the arbiter's lock: adds verdict_stream, verdict_seq (the last
 * message read), verdict_chain_breaks and verdicts_pending to status. */
void kci_verdict_js_describe(kci_verdict_js *verdicts, json_t *status);

/* For `kcobra arbiter verdicts --verify`: reads stream through its leader
 * (js_GetMsg), from its first message to its last, into chain and, each
 * verdict as JSON with its "seq", into list. */
kc_err kci_verdict_js_read_all(natsConnection *connection, const char *stream,
                               kci_verdict_chain *chain, json_t *list, char *error,
                               size_t error_size);

#endif
