/* observed.c - plain request/reply traffic kept with record_requests, as
 * the original REQUEST_REPLY.queue did: every kc.req.> message (but the
 * persister's own dispatches, kept as durable requests already) as an
 * observed_request record, and the reply that comes back on its _INBOX.>
 * reply subject as an observed_reply record. They are only kept, never
 * dispatched, and nobody waits for their append.
 *
 * Replies are matched by a direct-mapped table of
 * KCI_PERSISTER_OBSERVED_MAX slots keyed by the 64-bit hash of the reply
 * subject (seeded afresh by each persister), each
 * kept KCI_PERSISTER_OBSERVED_TTL_MS: a later request with a colliding hash
 * takes the slot, and a reply beyond the time is not recorded. Bounded
 * memory was chosen over completeness.
 *
 * A reply can be matched only if its request was seen first: nats.c
 * delivers each subscription on its own thread, so with record_requests
 * the persister's connection delivers all its subscriptions on one thread,
 * in the server's order (src/cmd/components.c, kcobra queue serve). */
#include <assert.h>
#include <string.h>

#include "common/clock.h"
#include "common/hash.h"
#include "common/log.h"
#include "persister_internal.h"

_Static_assert((KCI_PERSISTER_OBSERVED_MAX & (KCI_PERSISTER_OBSERVED_MAX - 1)) == 0,
               "the observed table is indexed by a mask");

static kci_persister_observed_slot *observed_at(kci_persister *persister, uint64_t hash)
{
    assert(persister->observed != NULL); /* allocated with record_requests */
    return &persister->observed[hash & (KCI_PERSISTER_OBSERVED_MAX - 1)];
}

static uint64_t subject_hash(const kci_persister *persister, const char *subject)
{
    uint64_t hash = kci_hash_bytes_seeded(subject, strlen(subject), persister->observed_seed);
    return hash != 0 ? hash : 1; /* 0 marks a free slot */
}

static void observed_request_record(kci_record *record, natsMsg *message, const kci_uuid *id)
{
    const char *subject = natsMsg_GetSubject(message);
    const char *reply = natsMsg_GetReply(message);
    const char *client = NULL;
    if (natsMsgHeader_Get(message, KCI_HEADER_NODE, &client) != NATS_OK || client == NULL)
        client = "";
    *record = (kci_record){.id = *id,
                           .subject = subject,
                           .reply = reply != NULL ? reply : "",
                           .client = client,
                           .payload = natsMsg_GetData(message),
                           .payload_length = (uint32_t)natsMsg_GetDataLength(message)};
    record->subject_length = (uint16_t)strlen(record->subject);
    record->reply_length = (uint16_t)strlen(record->reply);
    record->client_length = (uint16_t)strlen(record->client);
    kci_persister_hlc_now(&record->ts_wall_ms, &record->ts_counter);
}

/* Appends without waiting; a field over its bound (kci_record_size 0) is
 * not kept. */
static void observed_record(kci_persister *persister, natsMsg *message, kci_record_kind kind,
                            const kci_uuid *id)
{
    assert(kind == KCI_RECORD_OBSERVED_REQUEST || kind == KCI_RECORD_OBSERVED_REPLY);
    kci_record record;
    if (kind == KCI_RECORD_OBSERVED_REPLY)
        kci_persister_build_reply_record(&record, message, id);
    else
        observed_request_record(&record, message, id);
    record.kind = kind;
    if (kci_record_size(&record) == 0 ||
        kci_queue_log_append(persister->log, &record, kci_persister_on_marker_done, persister) !=
            KC_OK)
        kci_debug("queue: an observed %s was not kept",
                  kind == KCI_RECORD_OBSERVED_REPLY ? "reply" : "request");
}

void kci_persister_on_observed_request(natsConnection *connection, natsSubscription *subscription,
                                       natsMsg *message, void *closure)
{
    kci_persister *persister = closure;
    const char *reply = natsMsg_GetReply(message);
    size_t inbox_length = strlen(persister->inbox);
    /* Our own dispatches are kept as durable requests already. */
    if (reply != NULL && strncmp(reply, persister->inbox, inbox_length) == 0) {
        natsMsg_Destroy(message);
        return;
    }
    kci_uuid id;
    const char *id_text = NULL;
    if (natsMsgHeader_Get(message, KCI_HEADER_ID, &id_text) != NATS_OK || id_text == NULL ||
        !kci_uuid_parse(id_text, strlen(id_text), &id))
        kci_uuid_v7(&id);
    if (strlen(natsMsg_GetSubject(message)) <= KCI_RECORD_FIELD_BYTES_MAX &&
        (reply == NULL || strlen(reply) <= KCI_RECORD_FIELD_BYTES_MAX)) {
        observed_record(persister, message, KCI_RECORD_OBSERVED_REQUEST, &id);
        if (reply != NULL && reply[0] != '\0') {
            uint64_t hash = subject_hash(persister, reply);
            pthread_mutex_lock(&persister->lock);
            *observed_at(persister, hash) = (kci_persister_observed_slot){
                .subject_hash = hash,
                .id = id,
                .expires_ms = kci_monotonic_ms() + KCI_PERSISTER_OBSERVED_TTL_MS};
            pthread_mutex_unlock(&persister->lock);
        }
    }
    natsMsg_Destroy(message);
}

void kci_persister_on_observed_reply(natsConnection *connection, natsSubscription *subscription,
                                     natsMsg *message, void *closure)
{
    kci_persister *persister = closure;
    uint64_t hash = subject_hash(persister, natsMsg_GetSubject(message));
    pthread_mutex_lock(&persister->lock);
    kci_persister_observed_slot *slot = observed_at(persister, hash);
    bool awaited = slot->subject_hash == hash && slot->expires_ms >= kci_monotonic_ms() &&
                   !natsMsg_IsNoResponders(message);
    kci_uuid id = slot->id;
    if (awaited) slot->subject_hash = 0; /* one reply per request */
    pthread_mutex_unlock(&persister->lock);
    assert(hash != 0); /* so a free slot is never awaited */
    if (awaited && natsMsg_GetDataLength(message) <= KCI_RECORD_PAYLOAD_BYTES_MAX)
        observed_record(persister, message, KCI_RECORD_OBSERVED_REPLY, &id);
    natsMsg_Destroy(message);
}
