/* verdict_history.c - the verdicts an arbiter answers kc.arbiter.verdicts
 * with, when they are kept in files (verdict_storage local).
 *
 * Each arbiter that reaches a quorum appends the verdict to its own file,
 * but an arbiter without a data directory has no file, and one that missed
 * the quorum (it started later, its votes differed) has not the verdict in
 * its file: `kcobra arbiter verdicts`, answered by whichever arbiter is
 * first, used to print "no verdicts yet" after a quarantine every other
 * arbiter had logged (issue 15, finding 9). So the history is shared: every
 * arbiter keeps, in memory, the last ARBITER_HISTORY_MAX verdicts it
 * replayed from its file, reached itself, or heard on kc.arbiter.verdict
 * from an arbiter whose votes it counts, one per verdict id
 * ("<node>:<epoch>", the same at every arbiter).
 *
 * A verdict heard is believed on the same terms as a vote (verdict.c):
 * from a peer (any arbiter id when no peers are configured and the cloud
 * has several), and with peer_keys configured only when signed with the
 * key of the arbiter it names (every arbiter signs what it publishes on
 * kc.arbiter.verdict with its vote key). It only joins the history: each
 * arbiter still takes a verdict only on its own quorum.
 *
 * With verdicts on a JetStream stream the stream is the shared history
 * (verdict_js.c) and this is not used. */
#include "arbiter_internal.h"

#include <string.h>
#include <sys/types.h>

#include "common/clock.h"
#include "common/log.h"

/* The entry of id in the history, or -1. */
static ssize_t find(const kci_arbiter *arbiter, const char *id)
{
    size_t index;
    json_t *verdict;
    json_array_foreach(arbiter->history, index, verdict)
    {
        const char *other = json_string_value(json_object_get(verdict, "id"));
        if (other != NULL && strcmp(other, id) == 0) return (ssize_t)index;
    }
    return -1;
}

bool kci_arbiter_history_add(kci_arbiter *arbiter, json_t *verdict)
{
    const char *id = json_string_value(json_object_get(verdict, "id"));
    if (arbiter->history == NULL || id == NULL || find(arbiter, id) >= 0) return false;
    json_array_append(arbiter->history, verdict);
    if (json_array_size(arbiter->history) > ARBITER_HISTORY_MAX)
        json_array_remove(arbiter->history, 0);
    return true;
}

json_t *kci_arbiter_history_json(kci_arbiter *arbiter)
{
    return arbiter->history != NULL ? json_deep_copy(arbiter->history) : json_array();
}

/* Its shape as verdict_json (verdict.c) makes it; enough to be listed. */
static const char *shape_problem(json_t *verdict)
{
    const char *action = json_string_value(json_object_get(verdict, "action"));
    if (!json_is_object(verdict)) return "not a JSON object";
    if (json_string_value(json_object_get(verdict, "id")) == NULL ||
        json_string_value(json_object_get(verdict, "node")) == NULL ||
        !json_is_integer(json_object_get(verdict, "epoch")))
        return "no id, node or epoch";
    if (action == NULL || (strcmp(action, "quarantine") != 0 && strcmp(action, "reinstate") != 0))
        return "an unknown action";
    if (json_string_value(json_object_get(verdict, "arbiter")) == NULL) return "no arbiter";
    return NULL;
}

void kci_arbiter_on_verdict(natsConnection *connection, natsSubscription *subscription,
                            natsMsg *message, void *closure)
{
    (void)connection, (void)subscription;
    kci_arbiter *arbiter = closure;
    int length = natsMsg_GetDataLength(message);
    size_t size = length > 0 ? (size_t)length : 0;
    json_t *verdict = size > 0 ? json_loadb(natsMsg_GetData(message), size, 0, NULL) : NULL;
    const char *why = shape_problem(verdict);
    const char *claimed = json_string_value(json_object_get(verdict, "arbiter"));
    if (why == NULL && !kci_arbiter_peer_allowed(arbiter, claimed))
        why = "from an arbiter not in peers";
    if (why == NULL) why = kci_arbiter_signature_problem(arbiter, claimed, message, size);
    int64_t now_ms = kci_monotonic_ms();
    pthread_mutex_lock(&arbiter->lock);
    if (why == NULL)
        kci_arbiter_history_add(arbiter, verdict);
    else if (kci_arbiter_warn_due(arbiter, now_ms))
        kci_warn("arbiter %s: a verdict on kc.arbiter.verdict not kept: %s", arbiter->id, why);
    pthread_mutex_unlock(&arbiter->lock);
    json_decref(verdict);
    natsMsg_Destroy(message);
}
