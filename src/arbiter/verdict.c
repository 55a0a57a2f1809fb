/* verdict.c - votes, verdicts and quarantine; ranking and the tree; the
 * answers to kc.arbiter.status, .verdicts, .tree and .reinstate.
 *
 * Each tick the arbiter votes on kc.arbiter.vote about every node it holds
 * something against ("quarantine", with its reasons and evidence), and
 * about every quarantined node that has served its time or that an
 * operator asked to reinstate ("clear"). A vote carries the node's epoch
 * (its count of status changes) so that votes from before a change do not
 * count after it. When 2f + 1 arbiters' current votes (younger than
 * ARBITER_VOTE_TTL_TICKS ticks) agree, the verdict is final: quarantine
 * (the quarantine lasts quarantine_ms, doubled for each earlier offence)
 * or reinstatement on probation (the node's record starts afresh; a new
 * offence quarantines it again, probation_ms of good behaviour ends the
 * probation). Every arbiter that sees the quorum appends the verdict to
 * its file (fsync) and, only once it is durable, takes it (the node's
 * status changes) and publishes it on kc.arbiter.verdict; the verdict id
 * "<node>:<epoch>" is the same at every arbiter, so readers de-duplicate.
 * With verdicts on a JetStream stream (verdict_js.h), finalize appends
 * instead, and the verdict is taken when read back from the stream
 * (kci_arbiter_verdict_apply), by every arbiter alike.
 *
 * The verdict file's open, write, fsync and truncation go through the I/O
 * seam (common/io.h). The FILE only holds the descriptor (arbiter.c closes
 * it); lines are written on the descriptor, unbuffered, so a failed append
 * can be cut off whole instead of lingering in a stdio buffer. */
#include "arbiter_internal.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "arbiter/metrics.h"
#include "arbiter/tree.h"
#include "arbiter/wire.h"
#include "common/clock.h"
#include "common/dir.h"
#include "common/io.h"
#include "common/log.h"
#include "service/answer.h"
#include "service/headers.h"

enum {
    VERDICT_LINE_BYTES_MAX = 64 * 1024,
    QUARANTINE_DOUBLINGS_MAX = 10,
};

static const char *const status_names[] = {"active", "quarantined", "probation"};

static int64_t vote_ttl_ms(const kci_arbiter *arbiter)
{
    return ARBITER_VOTE_TTL_TICKS * arbiter->config.tick_ms;
}

/* The quarantine of a node with offences offences (this one included). */
static int64_t quarantine_length_ms(const kci_arbiter *arbiter, uint32_t offences)
{
    uint32_t doublings = offences > 0 ? offences - 1 : 0;
    if (doublings > QUARANTINE_DOUBLINGS_MAX) doublings = QUARANTINE_DOUBLINGS_MAX;
    return arbiter->config.quarantine_ms << doublings;
}

/* ---- node JSON (status, votes, verdict evidence) ---------------------------------- */

/* The evidence of price fairness: per type the node's mean price (what
 * paid requests paid, from the ledger: price.c) against the reference and
 * where that comes from; and the mean over all its priced replies. */
static json_t *prices_json(kci_arbiter *arbiter, const arbiter_node *node, double *mean_out)
{
    json_t *list = json_array();
    double sum = 0;
    uint32_t count = 0;
    for (uint32_t i = 0; i < node->price_type_count; i++) {
        const node_price *price = &node->prices[i];
        sum += price->sum, count += price->count;
        json_array_append_new(
            list,
            json_pack("{s:s, s:f, s:I, s:f, s:s}", "type", price->type, "mean",
                      price->sum / price->count, "count", (json_int_t)price->count, "reference",
                      kci_arbiter_price_reference(arbiter, price->type), "reference_from",
                      kci_arbiter_price_reference_source(arbiter, price->type)));
    }
    *mean_out = count > 0 ? sum / count : 0;
    return list;
}

json_t *kci_arbiter_node_json(kci_arbiter *arbiter, arbiter_node *node, int64_t now_ms)
{
    json_t *reasons = json_array(), *ids = json_array();
    kci_arbiter_reasons_json(reasons, node->reasons);
    for (uint32_t i = 0; i < ARBITER_EVIDENCE_IDS_MAX; i++)
        if (node->evidence_ids[i][0] != '\0')
            json_array_append_new(ids, json_string(node->evidence_ids[i]));
    double price_ratio = 0;
    for (uint32_t i = 0; i < node->price_type_count; i++) {
        double reference = kci_arbiter_price_reference(arbiter, node->prices[i].type);
        double ratio = reference > 0 ? node->prices[i].sum / node->prices[i].count / reference : 0;
        if (ratio > price_ratio) price_ratio = ratio;
    }
    double price_mean = 0;
    json_t *prices = prices_json(arbiter, node, &price_mean);
    json_t *object = json_pack(
        "{s:s, s:s, s:i, s:o, s:f, s:f, s:I, s:f, s:i, s:i, s:[f,f], s:[f,f], s:f, s:f, s:i, s:i, "
        "s:f, s:f, s:o, s:b, s:s, s:I}",
        "name", node->name, "status", status_names[node->status], "epoch", (json_int_t)node->epoch,
        "reasons", reasons, "qos", kci_qos_score(&node->qos, &arbiter->config.qos, now_ms),
        "latency_ms", kci_qos_latency_ms(&node->qos), "samples", (json_int_t)node->qos_samples,
        "credibility", kci_credibility_value(&node->credibility), "fusion_rounds",
        (json_int_t)node->fusion_rounds, "fusion_suspect", (json_int_t)node->fusion_suspect,
        "last_answer", node->fusion_last.low, node->fusion_last.high, "last_fused",
        node->fusion_last_fused.low, node->fusion_last_fused.high, "price_ratio", price_ratio,
        "complaint_weight", node->complaint_weight, "reports_confirmed",
        (json_int_t)node->reports_confirmed, "reports_refuted", (json_int_t)node->reports_refuted,
        "trust", node->trust, "merit", node->merit, "request_ids", ids, "arbiter", node->is_arbiter,
        "role",
        node->is_arbiter ? "arbiter"
        : node->served   ? "service"
                         : "client",
        "refusals_provoked", (json_int_t)node->refusals_provoked);
    if (object != NULL) {
        json_object_set_new(object, "price", json_real(price_mean));
        json_object_set_new(object, "prices", prices);
        /* as a reporter: its signed QoS samples counted (qos_sample.h) */
        json_object_set_new(object, "qos_reported", json_integer((json_int_t)node->qos_reported));
    } else {
        json_decref(prices);
    }
    return object;
}

/* ---- verdicts -------------------------------------------------------------------- */

/* Appends line (with its LF) and syncs. A write or a sync that fails is
 * cut off: the next verdict starts on a line of its own instead of joining a
 * torn one (which would make both unreadable on replay), and a verdict that
 * was not taken (finalize) is not replayed, nor written twice when the next
 * vote retries it (a replay would count the offence twice). Whether the cut
 * reaches the disk before the next sync is not known: at worst a restart
 * replays a verdict this arbiter did not announce, never the reverse. */
static bool append_line(int fd, const char *line, size_t length)
{
    struct stat status;
    if (fstat(fd, &status) != 0) return false;
    if (kci_io_write_all(fd, line, length) == 0 && kci_io_retry_fsync(fd) == 0) return true;
    int saved = errno;
    if (kci_io_retry_ftruncate(fd, status.st_size) != 0)
        kci_warn("arbiter: cannot cut a failed verdict line off: %s", strerror(errno));
    errno = saved;
    return false;
}

/* The line was appended: the chain goes on, and the signed head says so
 * (verdict_log.h). A head that cannot be written leaves the verdict
 * durable; the next append writes it again, and meanwhile `--verify`
 * says the last lines are not covered. */
static void chain_line(kci_arbiter *arbiter, const char *line, size_t length)
{
    kci_verdict_chain *chain = &arbiter->file_chain;
    kci_verdict_chain_add(chain, chain->last_seq + 1, line, length);
    int error =
        kci_verdict_log_head_write(arbiter->verdicts_path, chain->last_seq, chain->last_hash,
                                   arbiter->vote_key.public_key, arbiter->vote_key.secret_key);
    if (error != 0)
        kci_error("arbiter %s: cannot write the signed head of %s: %s", arbiter->id,
                  arbiter->verdicts_path, strerror(error));
}

/* Whether the verdict is durable in the file (or there is no file). */
static bool persist(kci_arbiter *arbiter, json_t *verdict, const char *id)
{
    if (arbiter->verdicts_file == NULL) return true;
    const kci_verdict_chain *chain = &arbiter->file_chain;
    json_object_set_new(verdict, KCI_VERDICT_PREV_KEY,
                        json_string(chain->last_seq > 0 ? chain->last_hash : ""));
    char *line = json_dumps(verdict, JSON_COMPACT);
    size_t length = line != NULL ? strlen(line) : 0;
    char *with_newline = line != NULL ? realloc(line, length + 1) : NULL;
    if (with_newline != NULL) {
        line = with_newline;
        line[length++] = '\n'; /* not a C string from here on */
    } else {
        errno = ENOMEM;
    }
    bool ok = with_newline != NULL && append_line(fileno(arbiter->verdicts_file), line, length);
    if (ok) chain_line(arbiter, line, length - 1);
    if (!ok)
        kci_error("arbiter %s: cannot append verdict %s to %s: %s (not taken; the next vote "
                  "retries it)",
                  arbiter->id, id, arbiter->verdicts_path, strerror(errno));
    free(line);
    return ok;
}

static json_t *votes_json(const kci_arbiter *arbiter, const arbiter_node *node, kci_vote_kind kind,
                          int64_t now_ms)
{
    json_t *list = json_array();
    for (uint32_t i = 0; i < node->quorum.vote_count; i++) {
        const kci_quorum_vote *vote = &node->quorum.votes[i];
        if (vote->kind != kind || now_ms - vote->at_ms > vote_ttl_ms(arbiter)) continue;
        json_array_append_new(list, json_string(vote->arbiter));
    }
    return list;
}

/* The verdict about node, as it will be once taken: epoch and offences
 * are the node's after the verdict, the evidence its record before. */
static json_t *verdict_json(kci_arbiter *arbiter, arbiter_node *node, kci_vote_kind kind,
                            const char *id, uint32_t offences, int64_t now_ms)
{
    json_t *votes = votes_json(arbiter, node, kind, now_ms);
    json_t *evidence = kci_arbiter_node_json(arbiter, node, now_ms);
    int64_t length_ms = kind == KCI_VOTE_QUARANTINE ? quarantine_length_ms(arbiter, offences) : 0;
    return json_pack("{s:s, s:s, s:s, s:i, s:I, s:s, s:i, s:i, s:o, s:b, s:s, s:o, s:i, s:I}", "id",
                     id, "action", kind == KCI_VOTE_QUARANTINE ? "quarantine" : "reinstate", "node",
                     node->name, "epoch", (json_int_t)node->epoch + 1, "ts_ms",
                     (json_int_t)kci_wall_ms(), "arbiter", arbiter->id, "arbiters",
                     (json_int_t)arbiter->config.arbiter_count, "needed",
                     (json_int_t)kci_quorum_needed(arbiter->config.arbiter_count), "votes", votes,
                     "guarantee_holds", arbiter->guarantee_holds, "guarantee",
                     arbiter->guarantee_text, "evidence", evidence, "offences",
                     (json_int_t)offences, "quarantine_ms", (json_int_t)length_ms);
}

/* The node's new status, once its verdict is durable. */
static void take(arbiter_node *node, kci_vote_kind kind, int64_t now_ms)
{
    node->epoch++;
    node->status_since_ms = now_ms;
    memset(&node->quorum, 0, sizeof node->quorum);
    if (kind == KCI_VOTE_QUARANTINE) {
        node->status = NODE_QUARANTINED;
        node->offences++;
    } else {
        /* Probation: the record starts afresh (credibility too). */
        node->status = NODE_PROBATION;
        node->reinstate_requested = false;
        memset(&node->qos, 0, sizeof node->qos);
        node->qos_samples = 0;
        memset(&node->credibility, 0, sizeof node->credibility);
        node->fusion_history = 0, node->fusion_history_count = 0;
        node->price_type_count = 0;
    }
}

/* A quorum agrees. The verdict is taken (the node's status changes, it is
 * published and enforced) only once it is durable in the file: a verdict
 * announced and then lost by a crash would be forgotten by this arbiter's
 * next start. When the append fails, nothing changes and the votes stay:
 * the next vote about the node (every tick) tries again. */
static void finalize(kci_arbiter *arbiter, arbiter_node *node, kci_vote_kind kind, int64_t now_ms)
{
    node->reasons = kci_arbiter_reasons(arbiter, node, now_ms); /* as of now, for the evidence */
    uint32_t epoch_before = node->epoch;
    uint32_t offences = node->offences + (kind == KCI_VOTE_QUARANTINE ? 1 : 0);
    char id[KC_NODE_BYTES_MAX + 16];
    snprintf(id, sizeof id, "%s:%u", node->name, epoch_before + 1);
    json_t *verdict = verdict_json(arbiter, node, kind, id, offences, now_ms);
    if (arbiter->verdict_js != NULL) { /* taken when read back from the stream */
        kci_verdict_js_append(arbiter->verdict_js, verdict, node->name, epoch_before + 1);
        return;
    }
    if (!persist(arbiter, verdict, id)) {
        json_decref(verdict);
        return;
    }
    take(node, kind, now_ms);
    assert(node->epoch == epoch_before + 1 && node->offences == offences);
    arbiter->verdict_count++;
    kci_arbiter_metrics_verdict(kind == KCI_VOTE_QUARANTINE);
    kci_arbiter_metrics_count_nodes(arbiter);
    kci_info("arbiter %s: verdict %s: %s %s", arbiter->id, id,
             kind == KCI_VOTE_QUARANTINE ? "quarantine" : "reinstate (probation)", node->name);
    kci_arbiter_history_add(arbiter, verdict);
    kci_arbiter_publish_verdict(arbiter, verdict);
    arbiter->enforce_dirty = true;
}

/* A vote arrived (or was cast): is a verdict final? */
static void settle_node(kci_arbiter *arbiter, arbiter_node *node, int64_t now_ms)
{
    uint32_t needed = kci_quorum_needed(arbiter->config.arbiter_count);
    int64_t ttl_ms = vote_ttl_ms(arbiter);
    if (node->status != NODE_QUARANTINED &&
        kci_quorum_count(&node->quorum, KCI_VOTE_QUARANTINE, now_ms, ttl_ms) >= needed)
        finalize(arbiter, node, KCI_VOTE_QUARANTINE, now_ms);
    else if (node->status == NODE_QUARANTINED &&
             kci_quorum_count(&node->quorum, KCI_VOTE_CLEAR, now_ms, ttl_ms) >= needed)
        finalize(arbiter, node, KCI_VOTE_CLEAR, now_ms);
    if (arbiter->enforce_dirty) kci_arbiter_enforce(arbiter);
}

void kci_arbiter_enforce(kci_arbiter *arbiter)
{
    arbiter->enforce_dirty = false;
    if (!arbiter->config.enforce) return;
    json_t *nodes = json_array();
    for (uint32_t i = 0; i < arbiter->node_count; i++)
        if (arbiter->nodes[i]->status == NODE_QUARANTINED)
            json_array_append_new(nodes, json_string(arbiter->nodes[i]->name));
    kci_arbiter_publish_json(arbiter, "kc.sys.quarantine.set", json_pack("{s:o}", "nodes", nodes));
}

/* ---- votes ------------------------------------------------------------------------ */

static kci_vote_kind decide(kci_arbiter *arbiter, arbiter_node *node, int64_t now_ms)
{
    node->reasons = kci_arbiter_reasons(arbiter, node, now_ms);
    int64_t in_status_ms = now_ms - node->status_since_ms;
    switch (node->status) {
    case NODE_QUARANTINED:
        if (node->reinstate_requested ||
            in_status_ms >= quarantine_length_ms(arbiter, node->offences))
            return KCI_VOTE_CLEAR;
        return KCI_VOTE_NONE;
    case NODE_PROBATION:
        if (node->reasons != 0) return KCI_VOTE_QUARANTINE;
        if (in_status_ms >= arbiter->config.probation_ms) {
            node->status = NODE_ACTIVE; /* local: probation ends by itself */
            kci_info("arbiter %s: %s ends its probation", arbiter->id, node->name);
        }
        return KCI_VOTE_NONE;
    default: return node->reasons != 0 ? KCI_VOTE_QUARANTINE : KCI_VOTE_NONE;
    }
}

kc_err kci_arbiter_vote_key_open(kci_arbiter *arbiter, char *error, size_t error_size)
{
    const char *directory = arbiter->config.data_dir;
    if (directory == NULL) { /* for this run only: peers cannot be told it in advance */
        crypto_sign_keypair(arbiter->vote_key.public_key, arbiter->vote_key.secret_key);
    } else {
        char path[PATH_MAX];
        int written = snprintf(path, sizeof path, "%s/arbiter-%s.key", directory, arbiter->id);
        if (written < 0 || (size_t)written >= sizeof path) {
            snprintf(error, error_size, "arbiter: the key file's path is too long");
            return KC_ERR_CONFIG;
        }
        char reason[256] = "";
        kc_err err = kci_wallet_load_or_create(&arbiter->vote_key, path, reason, sizeof reason);
        if (err != KC_OK) {
            snprintf(error, error_size, "arbiter: its vote key: %s", reason);
            return err;
        }
    }
    char address[KCI_VOTE_KEY_TEXT_BYTES];
    kci_wallet_address(address, &arbiter->vote_key);
    kci_info("arbiter %s: signs its votes with key %s (peers list it as peer_keys: "
             "[\"%s=%s\"])",
             arbiter->id, address, arbiter->id, address);
    return KC_OK;
}

void kci_arbiter_publish_signed(kci_arbiter *arbiter, const char *subject, json_t *body)
{
    char *text = body != NULL ? json_dumps(body, JSON_COMPACT) : NULL;
    json_decref(body);
    natsMsg *message = NULL;
    if (text == NULL ||
        natsMsg_Create(&message, subject, NULL, text, (int)strlen(text)) != NATS_OK) {
        free(text);
        return;
    }
    char key[KCI_VOTE_KEY_TEXT_BYTES], signature[KCI_VOTE_SIGNATURE_TEXT_BYTES];
    kci_wallet_address(key, &arbiter->vote_key);
    kci_vote_sign(signature, text, strlen(text), arbiter->vote_key.secret_key);
    natsStatus status = natsMsgHeader_Set(message, KCI_VOTE_KEY_HEADER, key);
    if (status == NATS_OK)
        status = natsMsgHeader_Set(message, KCI_VOTE_SIGNATURE_HEADER, signature);
    if (status == NATS_OK) status = natsConnection_PublishMsg(arbiter->connection, message);
    if (status != NATS_OK && kci_arbiter_warn_due(arbiter, kci_monotonic_ms()))
        kci_warn("arbiter %s: cannot publish on %s: %s", arbiter->id, subject,
                 natsStatus_GetText(status));
    natsMsg_Destroy(message);
    free(text);
}

void kci_arbiter_vote_tick(kci_arbiter *arbiter, int64_t now_ms)
{
    for (uint32_t i = 0; i < arbiter->node_count; i++) {
        arbiter_node *node = arbiter->nodes[i];
        kci_vote_kind kind = decide(arbiter, node, now_ms);
        if (kind == KCI_VOTE_NONE) continue;
        json_t *reasons = json_array();
        kci_arbiter_reasons_json(reasons, node->reasons);
        kci_arbiter_publish_signed(
            arbiter, "kc.arbiter.vote",
            json_pack("{s:s, s:s, s:s, s:i, s:o, s:o, s:I}", "arbiter", arbiter->id, "node",
                      node->name, "vote", kind == KCI_VOTE_QUARANTINE ? "quarantine" : "clear",
                      "epoch", (json_int_t)node->epoch, "reasons", reasons, "evidence",
                      kci_arbiter_node_json(arbiter, node, now_ms), "ts_ms",
                      (json_int_t)kci_wall_ms()));
    }
}

/* Its own votes always count; with peers configured, theirs; without, any
 * id's when the cloud has several arbiters, none when it has only this one. */
bool kci_arbiter_peer_allowed(const kci_arbiter *arbiter, const char *id)
{
    if (strcmp(id, arbiter->id) == 0) return true;
    if (arbiter->config.peer_count == 0) return arbiter->config.arbiter_count > 1;
    for (uint32_t i = 0; i < arbiter->config.peer_count; i++)
        if (strcmp(arbiter->config.peers[i], id) == 0) return true;
    return false;
}

/* The key a vote claiming id must be signed with: its own for its own id,
 * the configured one for a peer; NULL when none is known. */
static const uint8_t *expected_key(const kci_arbiter *arbiter, const char *id)
{
    if (strcmp(id, arbiter->id) == 0) return arbiter->vote_key.public_key;
    for (uint32_t i = 0; i < arbiter->config.peer_key_count; i++)
        if (strcmp(arbiter->config.peer_keys[i].arbiter, id) == 0)
            return arbiter->config.peer_keys[i].key;
    return NULL;
}

/* Why a vote's signature does not let it count; NULL when it does. With
 * peer keys configured every vote must be signed by the key of the id it
 * claims (its own id included); without, an unsigned vote from a peer
 * still counts (docs/arbiter.md), but a signature that is there must hold. */
const char *kci_arbiter_signature_problem(const kci_arbiter *arbiter, const char *claimed,
                                          natsMsg *message, size_t length)
{
    const char *key_text = NULL, *signature = NULL;
    if (natsMsgHeader_Get(message, KCI_VOTE_KEY_HEADER, &key_text) != NATS_OK) key_text = NULL;
    if (natsMsgHeader_Get(message, KCI_VOTE_SIGNATURE_HEADER, &signature) != NATS_OK)
        signature = NULL;
    bool keys_required = arbiter->config.peer_key_count > 0 || strcmp(claimed, arbiter->id) == 0;
    const uint8_t *expected = expected_key(arbiter, claimed);
    if (signature == NULL && !keys_required) return NULL;
    if (signature == NULL) return "not signed";
    uint8_t key[KCI_LEDGER_KEY_BYTES];
    if (key_text == NULL || !kci_ledger_address_parse(key, key_text)) return "no valid vote key";
    if (expected != NULL && memcmp(key, expected, sizeof key) != 0)
        return "signed with a key that is not its arbiter's";
    if (expected == NULL && keys_required) return "from an arbiter whose key is not configured";
    if (!kci_vote_verify(key, signature, natsMsg_GetData(message), length))
        return "its signature does not verify";
    return NULL;
}

void kci_arbiter_on_vote(natsConnection *connection, natsSubscription *subscription,
                         natsMsg *message, void *closure)
{
    (void)connection, (void)subscription;
    kci_arbiter *arbiter = closure;
    kci_vote vote;
    int length = natsMsg_GetDataLength(message);
    size_t size = length > 0 ? (size_t)length : 0;
    const char *why = kci_vote_parse(&vote, natsMsg_GetData(message), size);
    if (why == NULL && !kci_arbiter_peer_allowed(arbiter, vote.arbiter))
        why = "from an arbiter not in peers";
    if (why == NULL) why = kci_arbiter_signature_problem(arbiter, vote.arbiter, message, size);
    bool signed_vote = why == NULL && arbiter->config.peer_key_count > 0;
    if (signed_vote && !kci_vote_fresh(vote.ts_ms, kci_wall_ms()))
        why = "too old or from the future (a replay?)";
    int64_t now_ms = kci_monotonic_ms();
    pthread_mutex_lock(&arbiter->lock);
    arbiter_node *node = why == NULL ? kci_arbiter_node(arbiter, vote.node, false) : NULL;
    /* A signed vote counts once: no older than that arbiter's last one. */
    if (node != NULL && signed_vote &&
        vote.ts_ms <= kci_quorum_vote_ts(&node->quorum, vote.arbiter)) {
        why = "not newer than its arbiter's last vote (a replay?)";
        node = NULL;
    }
    if (node != NULL && vote.epoch >= node->epoch) {
        kci_quorum_vote_set(&node->quorum, vote.arbiter, vote.kind, now_ms);
        kci_quorum_vote_ts_set(&node->quorum, vote.arbiter, vote.ts_ms);
        settle_node(arbiter, node, now_ms);
    } else if (why != NULL && kci_arbiter_warn_due(arbiter, now_ms)) {
        kci_warn("arbiter %s: ignored a vote on kc.arbiter.vote: %s", arbiter->id, why);
    }
    pthread_mutex_unlock(&arbiter->lock);
    natsMsg_Destroy(message);
}

/* ---- ranking and tree ---------------------------------------------------------------- */

void kci_arbiter_rank_tick(kci_arbiter *arbiter, int64_t now_ms)
{
    uint32_t n = arbiter->node_count < ARBITER_RANKED_NODES_MAX ? arbiter->node_count
                                                                : ARBITER_RANKED_NODES_MAX;
    if (n == 0) return;
    double *positive = calloc((size_t)n * n, sizeof *positive);
    double *negative = calloc((size_t)n * n, sizeof *negative);
    double *trust = calloc(n, sizeof *trust), *merit = calloc(n, sizeof *merit);
    bool *pretrusted = calloc(n, sizeof *pretrusted);
    kci_tree_node *tree_nodes = calloc(n, sizeof *tree_nodes);
    int32_t *parent = calloc(n, sizeof *parent);
    if (positive && negative && trust && merit && pretrusted && tree_nodes && parent) {
        for (uint32_t i = 0; i < n; i++) {
            const arbiter_node *node = arbiter->nodes[i];
            pretrusted[i] = node->pretrusted || node->is_arbiter;
            for (uint32_t e = 0; e < node->edge_count; e++) {
                if (node->edges[e].to >= n) continue;
                positive[(size_t)i * n + node->edges[e].to] = node->edges[e].positive;
                negative[(size_t)i * n + node->edges[e].to] = node->edges[e].negative;
            }
        }
        if (kci_ranking_compute(trust, merit, positive, negative, pretrusted, n,
                                &arbiter->config.ranking) == KC_OK) {
            uint32_t count = 0;
            for (uint32_t i = 0; i < n; i++) {
                arbiter_node *node = arbiter->nodes[i];
                node->trust = trust[i], node->merit = merit[i];
                if (node->served && node->status != NODE_QUARANTINED)
                    tree_nodes[count++] =
                        (kci_tree_node){node->name, merit[i],
                                        kci_qos_score(&node->qos, &arbiter->config.qos, now_ms)};
            }
            if (kci_tree_build(tree_nodes, parent, count, arbiter->config.tree_fanout) == KC_OK) {
                json_decref(arbiter->tree);
                arbiter->tree = kci_tree_json(tree_nodes, parent, count);
            }
        }
    }
    free(positive), free(negative), free(trust), free(merit), free(pretrusted), free(tree_nodes),
        free(parent);
}

/* ---- requests: status, verdicts, tree, reinstate ---------------------------------------- */

static json_t *status_json(kci_arbiter *arbiter, int64_t now_ms)
{
    json_t *nodes = json_array();
    for (uint32_t i = 0; i < arbiter->node_count; i++)
        json_array_append_new(nodes, kci_arbiter_node_json(arbiter, arbiter->nodes[i], now_ms));
    json_t *status =
        json_pack("{s:s, s:i, s:i, s:b, s:s, s:I, s:I, s:I, s:I, s:I, s:o}", "arbiter", arbiter->id,
                  "arbiters", (json_int_t)arbiter->config.arbiter_count, "needed",
                  (json_int_t)kci_quorum_needed(arbiter->config.arbiter_count), "guarantee_holds",
                  arbiter->guarantee_holds, "guarantee", arbiter->guarantee_text, "uptime_ms",
                  (json_int_t)(now_ms - arbiter->start_ms), "reports_received",
                  (json_int_t)arbiter->reports_received, "reports_malformed",
                  (json_int_t)arbiter->reports_malformed, "reports_dropped",
                  (json_int_t)arbiter->reports_dropped, "verdicts",
                  (json_int_t)arbiter->verdict_count, "nodes", nodes);
    if (status != NULL && arbiter->verdict_js != NULL)
        kci_verdict_js_describe(arbiter->verdict_js, status);
    return status;
}

/* The shared history: the stream's, or the one every arbiter keeps from
 * its file and what it reached or heard (verdict_history.c). */
static json_t *verdicts_json(kci_arbiter *arbiter)
{
    return json_pack("{s:s, s:o}", "arbiter", arbiter->id, "verdicts",
                     arbiter->verdict_js != NULL ? kci_verdict_js_recent(arbiter->verdict_js)
                                                 : kci_arbiter_history_json(arbiter));
}

static json_t *reinstate_json(kci_arbiter *arbiter, natsMsg *message)
{
    json_t *root =
        natsMsg_GetDataLength(message) > 0
            ? json_loadb(natsMsg_GetData(message), (size_t)natsMsg_GetDataLength(message), 0, NULL)
            : NULL;
    const char *name = json_string_value(json_object_get(root, "node"));
    arbiter_node *node = name != NULL ? kci_arbiter_node(arbiter, name, false) : NULL;
    json_t *answer;
    if (node == NULL) {
        answer = json_pack("{s:s, s:s}", "arbiter", arbiter->id, "error",
                           name == NULL ? "the request must be {\"node\": name}" : "unknown node");
    } else {
        node->reinstate_requested = node->status == NODE_QUARANTINED;
        answer =
            json_pack("{s:s, s:s, s:s, s:b}", "arbiter", arbiter->id, "node", node->name, "status",
                      status_names[node->status], "reinstating", node->reinstate_requested);
        kci_info("arbiter %s: asked to reinstate %s (%s)", arbiter->id, node->name,
                 status_names[node->status]);
    }
    json_decref(root);
    return answer;
}

void kci_arbiter_on_request(natsConnection *connection, natsSubscription *subscription,
                            natsMsg *message, void *closure)
{
    (void)subscription;
    kci_arbiter *arbiter = closure;
    const char *subject = natsMsg_GetSubject(message);
    int64_t now_ms = kci_monotonic_ms();
    json_t *answer = NULL;
    pthread_mutex_lock(&arbiter->lock);
    if (strcmp(subject, "kc.arbiter.status") == 0)
        answer = status_json(arbiter, now_ms);
    else if (strcmp(subject, "kc.arbiter.verdicts") == 0)
        answer = verdicts_json(arbiter);
    else if (strcmp(subject, "kc.arbiter.tree") == 0)
        answer = arbiter->tree != NULL ? json_deep_copy(arbiter->tree)
                                       : json_pack("{s:n, s:[]}", "root", "nodes");
    else if (strcmp(subject, "kc.arbiter.reinstate") == 0)
        answer = reinstate_json(arbiter, message);
    pthread_mutex_unlock(&arbiter->lock);
    char *text = answer != NULL ? json_dumps(answer, JSON_COMPACT) : NULL;
    json_decref(answer);
    /* Only to an inbox (answer.h): the arbiter may publish on control
     * subjects, and a client must not choose where its answers go. */
    const char *request_id = NULL;
    if (natsMsgHeader_Get(message, KCI_HEADER_ID, &request_id) != NATS_OK) request_id = NULL;
    kci_answer reply = {.node = arbiter->id,
                        .type = "arbiter",
                        .reply_to = request_id,
                        .payload = text,
                        .payload_length = text != NULL ? strlen(text) : 0};
    if (text != NULL) kci_answer_send(connection, message, &reply, "arbiter");
    free(text);
    natsMsg_Destroy(message);
}

/* ---- restore ----------------------------------------------------------------------------- */

/* How long ago (ms) the verdict was written by its ts_ms, 0 to max_ms. */
static int64_t verdict_age_ms(json_t *verdict, int64_t max_ms)
{
    json_t *written = json_object_get(verdict, "ts_ms");
    int64_t age_ms = json_is_integer(written) ? kci_wall_ms() - json_integer_value(written) : 0;
    return age_ms < 0 ? 0 : age_ms > max_ms ? max_ms : age_ms;
}

bool kci_arbiter_verdict_apply(kci_arbiter *arbiter, json_t *verdict, int64_t now_ms, bool announce)
{
    const char *action = json_string_value(json_object_get(verdict, "action"));
    json_t *epoch = json_object_get(verdict, "epoch"),
           *offences = json_object_get(verdict, "offences");
    bool quarantine = action != NULL && strcmp(action, "quarantine") == 0;
    if (action == NULL || (!quarantine && strcmp(action, "reinstate") != 0) ||
        !json_is_integer(epoch) || json_integer_value(epoch) <= 0 ||
        json_integer_value(epoch) > UINT32_MAX)
        return false;
    arbiter_node *node =
        kci_arbiter_node(arbiter, json_string_value(json_object_get(verdict, "node")), true);
    if (node == NULL || (uint32_t)json_integer_value(epoch) <= node->epoch) return false;
    take(node, quarantine ? KCI_VOTE_QUARANTINE : KCI_VOTE_CLEAR, now_ms);
    node->epoch = (uint32_t)json_integer_value(epoch);
    if (json_is_integer(offences) && json_integer_value(offences) >= 0 &&
        json_integer_value(offences) <= UINT32_MAX)
        node->offences = (uint32_t)json_integer_value(offences);
    /* The time it has served since the verdict counts (the writer's clock). */
    node->status_since_ms = now_ms - verdict_age_ms(verdict, now_ms);
    if (!announce) return true; /* read at start: not counted, as a replayed file is not */
    arbiter->verdict_count++;
    kci_arbiter_metrics_verdict(quarantine);
    kci_arbiter_metrics_count_nodes(arbiter);
    kci_info("arbiter %s: verdict %s: %s %s", arbiter->id,
             json_string_value(json_object_get(verdict, "id")),
             quarantine ? "quarantine" : "reinstate (probation)", node->name);
    kci_arbiter_publish_verdict(arbiter, json_incref(verdict));
    arbiter->enforce_dirty = true;
    return true;
}

static void restore_line(kci_arbiter *arbiter, const char *line, int64_t now_ms)
{
    json_t *verdict = json_loads(line, 0, NULL);
    const char *action = json_string_value(json_object_get(verdict, "action"));
    const char *name = json_string_value(json_object_get(verdict, "node"));
    json_t *epoch = json_object_get(verdict, "epoch");
    arbiter_node *node =
        action != NULL && json_is_integer(epoch) ? kci_arbiter_node(arbiter, name, true) : NULL;
    if (node != NULL) {
        bool quarantine = strcmp(action, "quarantine") == 0;
        node->status = quarantine ? NODE_QUARANTINED : NODE_PROBATION;
        node->epoch = (uint32_t)json_integer_value(epoch);
        node->offences += quarantine;
        node->status_since_ms = now_ms; /* the time served before a restart is not known */
        kci_arbiter_history_add(arbiter, verdict);
    }
    json_decref(verdict);
}

/* Replays the file; the length of its lines up to the last whole one (LF
 * and no NUL) into whole_bytes, or -1 when the file was not read to its
 * end (nothing to cut then). */
static uint32_t replay(kci_arbiter *arbiter, off_t *whole_bytes)
{
    FILE *file = fopen(arbiter->verdicts_path, "r");
    char *line = malloc(VERDICT_LINE_BYTES_MAX);
    uint32_t restored = 0;
    off_t whole = 0;
    while (file != NULL && line != NULL && fgets(line, VERDICT_LINE_BYTES_MAX, file) != NULL) {
        size_t length = strlen(line);
        if (length > 0 && line[length - 1] == '\n') whole = ftello(file);
        restore_line(arbiter, line, kci_monotonic_ms());
        restored++;
    }
    bool read_all = file != NULL && line != NULL && !ferror(file) && whole >= 0;
    *whole_bytes = read_all ? whole : -1;
    free(line);
    if (file != NULL) fclose(file);
    return restored;
}

/* A crash in the middle of an append can leave part of a line at the end
 * (replay skips it): cut it off, or the next verdict would join it and be
 * unreadable on the next replay. 0 or an errno. */
static int cut_torn_tail(kci_arbiter *arbiter, int fd, off_t whole_bytes)
{
    struct stat status;
    if (fstat(fd, &status) != 0) return errno;
    if (whole_bytes < 0 || status.st_size <= whole_bytes) return 0;
    kci_warn("arbiter %s: cutting a torn last line (%lld bytes) off %s", arbiter->id,
             (long long)(status.st_size - whole_bytes), arbiter->verdicts_path);
    if (kci_io_retry_ftruncate(fd, whole_bytes) != 0 || kci_io_retry_fsync(fd) != 0) return errno;
    return 0;
}

/* Where the file's chain ends (new lines go on from there), and whether it
 * and its signed head are intact (verdict_log.h): a break is logged, not
 * refused, as on the stream (the file is still what this arbiter has). */
static kc_err check_chain(kci_arbiter *arbiter, char *error, size_t error_size)
{
    kci_verdict_log_report report;
    kc_err err = kci_verdict_log_verify(arbiter->verdicts_path, NULL, &report, NULL);
    if (err == KC_ERR_NOT_FOUND) err = KC_OK;
    if (err != KC_OK) {
        snprintf(error, error_size, "arbiter: cannot read %s again: %s", arbiter->verdicts_path,
                 kc_strerror(err));
        return err;
    }
    arbiter->file_chain = report.chain;
    if (report.problem[0] != '\0' && report.chain.checked > 0)
        kci_warn("arbiter %s: %s is not intact: %s (kcobra arbiter verdicts --verify)", arbiter->id,
                 arbiter->verdicts_path, report.problem);
    return KC_OK;
}

/* Opens <data_dir>/arbiter-<id>.verdicts.jsonl and replays it: the
 * quarantined set survives a restart. */
kc_err kci_arbiter_restore(kci_arbiter *arbiter, char *error, size_t error_size)
{
    const char *directory = arbiter->config.data_dir;
    if (directory == NULL) return KC_OK;
    if (mkdir(directory, 0755) != 0 && errno != EEXIST) {
        snprintf(error, error_size, "arbiter: cannot create %s: %s", directory, strerror(errno));
        return KC_ERR_IO;
    }
    size_t length = strlen(directory) + strlen(arbiter->id) + 32;
    arbiter->verdicts_path = malloc(length);
    if (arbiter->verdicts_path == NULL) return KC_ERR_NOMEM;
    snprintf(arbiter->verdicts_path, length, "%s/arbiter-%s.verdicts.jsonl", directory,
             arbiter->id);
    off_t whole_bytes;
    uint32_t restored = replay(arbiter, &whole_bytes);
    /* What fopen "a" opens, through the seam. */
    int fd =
        kci_io_retry_open(arbiter->verdicts_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0666);
    int cut_error = fd >= 0 ? cut_torn_tail(arbiter, fd, whole_bytes) : 0;
    arbiter->verdicts_file = fd >= 0 && cut_error == 0 ? fdopen(fd, "a") : NULL;
    if (arbiter->verdicts_file == NULL && fd >= 0) {
        int saved = cut_error != 0 ? cut_error : errno;
        kci_io->close(fd);
        errno = saved;
    }
    if (arbiter->verdicts_file == NULL) {
        snprintf(error, error_size, "arbiter: cannot %s %s: %s",
                 cut_error != 0 ? "cut a torn last line off" : "open", arbiter->verdicts_path,
                 strerror(errno));
        return KC_ERR_IO;
    }
    /* The file's name must be durable before a verdict is: synced at every
     * start, as the suggestion keeper does (a crash could take the file). */
    char synced[PATH_MAX];
    int sync_error = kci_parent_directory_sync(arbiter->verdicts_path, synced, sizeof synced);
    if (sync_error != 0) {
        snprintf(error, error_size, "arbiter: cannot sync directory %s: %s", synced,
                 strerror(sync_error));
        return KC_ERR_IO;
    }
    if (restored > 0)
        kci_info("arbiter %s: replayed %u verdict(s) from %s", arbiter->id, restored,
                 arbiter->verdicts_path);
    return check_chain(arbiter, error, error_size);
}
