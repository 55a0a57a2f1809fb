/* replylog.c - asking the persister's log (kc.reply.get, docs/queue.md)
 * about a request the arbiter did not see itself.
 *
 * A problem report may name a request made before this arbiter started, or
 * one that fell out of its observation table. When a persister runs, its
 * log may hold the request and its recorded reply: the arbiter asks
 * kc.reply.get with the id, its reply subject kc.arbiter.log.<arbiter>.<id>,
 * and, on an answer with Kc-Replied-By, enters the reply in its observation
 * table as "from the log" (who replied, Kc-Error, price; no latency), where
 * the report's judgement finds it. An error answer (Kc-Queue-State pending,
 * dead or unknown: e.g. a request that was not durable) teaches nothing.
 * "No responders" means no persister: the arbiter stops asking for
 * LOG_RETRY_MS and judges from what it saw. A report waits at most
 * LOG_WAIT_MS for the answer. */
#include "arbiter_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "common/log.h"
#include "service/headers.h"

#define REPLIED_BY_HEADER "Kc-Replied-By"
#define QUEUE_STATE_HEADER "Kc-Queue-State"
#define PRICE_HEADER "Kc-Price"

enum {
    LOG_WAIT_MS = 1000,
    LOG_RETRY_MS = 60 * 1000,
    LOG_SUBJECT_BYTES_MAX = 64 + KCI_ARBITER_ID_BYTES_MAX + KC_UUID_TEXT_BYTES,
};

void kci_arbiter_log_subject(const kci_arbiter *arbiter, char *subject, size_t size,
                             const char *request_id)
{
    snprintf(subject, size, "kc.arbiter.log.%s.%s", arbiter->id, request_id);
}

bool kci_arbiter_log_ask(kci_arbiter *arbiter, pending_report *report, int64_t now_ms)
{
    if (report->log_asked_ms != 0) return now_ms - report->log_asked_ms < LOG_WAIT_MS;
    if (now_ms < arbiter->log_retry_ms) return false; /* no persister lately */
    char reply[LOG_SUBJECT_BYTES_MAX];
    kci_arbiter_log_subject(arbiter, reply, sizeof reply, report->request_id);
    if (natsConnection_PublishRequestString(arbiter->connection, "kc.reply.get", reply,
                                            report->request_id) != NATS_OK)
        return false;
    report->log_asked_ms = now_ms;
    return true;
}

static double header_price(natsMsg *message)
{
    const char *value = NULL;
    if (natsMsgHeader_Get(message, PRICE_HEADER, &value) != NATS_OK || value == NULL) return -1;
    char *end = NULL;
    double price = strtod(value, &end);
    return end != value && *end == '\0' && isfinite(price) && price >= 0 ? price : -1;
}

static void enter(kci_arbiter *arbiter, const char *request_id, const char *replied_by,
                  natsMsg *message, int64_t now_ms)
{
    kci_kc_headers headers;
    kci_headers_clear(&headers);
    kci_headers_read(message, false, &headers); /* a malformed Kc-Error reads as none */
    kci_observation *seen = kci_observe_get(arbiter->observe, request_id);
    if (seen != NULL && seen->requested_ms != 0 && !seen->from_log) return; /* observed after all */
    if (seen == NULL) seen = kci_observe_put(arbiter->observe, request_id, now_ms);
    seen->from_log = true;
    seen->requested_ms = now_ms;
    seen->replied_ms = now_ms;
    seen->settled = true;
    snprintf(seen->server, sizeof seen->server, "%s", replied_by);
    seen->error_code = headers.error_code;
    seen->price = header_price(message);
}

void kci_arbiter_on_log_reply(natsConnection *connection, natsSubscription *subscription,
                              natsMsg *message, void *closure)
{
    (void)connection, (void)subscription;
    kci_arbiter *arbiter = closure;
    const char *subject = natsMsg_GetSubject(message);
    const char *request_id = strrchr(subject, '.') != NULL ? strrchr(subject, '.') + 1 : "";
    const char *replied_by = NULL, *state = NULL, *reply_to = NULL;
    natsMsgHeader_Get(message, REPLIED_BY_HEADER, &replied_by);
    natsMsgHeader_Get(message, QUEUE_STATE_HEADER, &state);
    natsMsgHeader_Get(message, KCI_HEADER_REPLY_TO, &reply_to);
    int64_t now_ms = kci_monotonic_ms();
    pthread_mutex_lock(&arbiter->lock);
    if (natsMsg_IsNoResponders(message)) {
        if (arbiter->log_retry_ms <= now_ms)
            kci_info("arbiter %s: no persister answers kc.reply.get; judging reports from what it "
                     "observed (asking again in %d s)",
                     arbiter->id, LOG_RETRY_MS / 1000);
        arbiter->log_retry_ms = now_ms + LOG_RETRY_MS;
    } else if (replied_by != NULL && kci_token_valid(replied_by) &&
               strlen(replied_by) <= KC_NODE_BYTES_MAX &&
               strlen(request_id) == KC_UUID_TEXT_BYTES &&
               /* the persister's record of this very request, not another's */
               reply_to != NULL && strcmp(reply_to, request_id) == 0 &&
               (state == NULL || strcmp(state, "replied") == 0)) {
        enter(arbiter, request_id, replied_by, message, now_ms);
    }
    pthread_mutex_unlock(&arbiter->lock);
    natsMsg_Destroy(message);
}
