/* waiting.c - requests wait for a service instead of dying.
 *
 * The persister dispatches with "no responders" on: a dispatch that no
 * subscriber receives comes back at once as a 503 status on the
 * persister's inbox (<inbox>.<id>), from kcobrad and from nats-server
 * alike. Such a dispatch was not an attempt: the request's attempts are
 * counted back, it waits (its pending item's due time is
 * KCI_PERSISTER_WAITING, so the redelivery scan passes it by), and so does
 * its type: the type's other requests are not dispatched either when they
 * come due, and new submits of the type are stored and acknowledged but not
 * dispatched. A request dies only after attempts_max dispatches that a
 * service received and did not answer.
 *
 * A waiting type is probed: every probe_interval_ms one of its waiting
 * requests is dispatched (one message per type, however many wait). A 503
 * for the probe: the type keeps waiting. No 503 within
 * KCI_PERSISTER_PROBE_WAIT_MS (the redelivery thread flushes the probe
 * first, so a 503 would already be in; and it probes only once its inbox
 * is subscribed): a service received it, and every
 * waiting request of the type is due at once. So requests go out promptly
 * when a service appears, not after their backoff. After a restart every
 * pending request waits and its type is probed at once (rebuild.c): a
 * restarted persister does not spend attempts before its services are back.
 *
 * The type table: KCI_PERSISTER_TYPES_MAX rows (a type is one subject
 * token, at most KC_TYPE_BYTES_MAX bytes), found through a hash of the name
 * in KCI_PERSISTER_TYPE_SLOTS slots with linear probing; rows are never
 * removed. A request of a type beyond the table (TYPE_NONE) is not parked:
 * its 503 only gives its attempt back, and it waits through its backoff. */
#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "common/log.h"
#include "persister_internal.h"

_Static_assert((KCI_PERSISTER_TYPE_SLOTS & (KCI_PERSISTER_TYPE_SLOTS - 1)) == 0,
               "the type slots are a power of two");
_Static_assert(KCI_PERSISTER_TYPES_MAX < KCI_PERSISTER_TYPE_SLOTS &&
                   KCI_PERSISTER_TYPES_MAX < KCI_PERSISTER_TYPE_NONE,
               "a free slot always exists, and a row number fits a slot");

bool kci_persister_types_init(kci_persister *persister)
{
    persister->types = calloc(KCI_PERSISTER_TYPES_MAX, sizeof *persister->types);
    persister->type_slots = calloc(KCI_PERSISTER_TYPE_SLOTS, sizeof *persister->type_slots);
    return persister->types != NULL && persister->type_slots != NULL;
}

void kci_persister_types_free(kci_persister *persister)
{
    free(persister->types);
    free(persister->type_slots);
    persister->types = NULL;
    persister->type_slots = NULL;
}

static uint32_t name_hash(const char *name, size_t length)
{
    uint32_t hash = 2166136261u; /* FNV-1a */
    for (size_t index = 0; index < length; index++)
        hash = (hash ^ (uint8_t)name[index]) * 16777619u;
    return hash;
}

uint16_t kci_persister_type_slot_locked(kci_persister *persister, const char *type,
                                        size_t type_length)
{
    if (type_length == 0 || type_length > KC_TYPE_BYTES_MAX) return KCI_PERSISTER_TYPE_NONE;
    uint32_t slot = name_hash(type, type_length) & (KCI_PERSISTER_TYPE_SLOTS - 1);
    for (uint32_t probe = 0; probe < KCI_PERSISTER_TYPE_SLOTS; probe++) {
        uint16_t row = persister->type_slots[slot];
        if (row == 0) break;
        const kci_persister_type *known = &persister->types[row - 1];
        if (strncmp(known->name, type, type_length) == 0 && known->name[type_length] == '\0')
            return (uint16_t)(row - 1);
        slot = (slot + 1) & (KCI_PERSISTER_TYPE_SLOTS - 1);
    }
    if (persister->type_count == KCI_PERSISTER_TYPES_MAX) return KCI_PERSISTER_TYPE_NONE;
    assert(persister->type_slots[slot] == 0); /* fewer rows than slots: a free one was met */
    uint16_t row = (uint16_t)persister->type_count++;
    kci_persister_type *added = &persister->types[row];
    memcpy(added->name, type, type_length);
    added->name[type_length] = '\0';
    added->state = KCI_PERSISTER_TYPE_SERVED;
    persister->type_slots[slot] = (uint16_t)(row + 1);
    return row;
}

bool kci_persister_type_waiting_locked(const kci_persister *persister, uint16_t type_slot)
{
    if (type_slot == KCI_PERSISTER_TYPE_NONE) return false;
    assert(type_slot < persister->type_count);
    return persister->types[type_slot].state != KCI_PERSISTER_TYPE_SERVED;
}

bool kci_persister_park_locked(kci_persister *persister, kci_index_entry *entry,
                               int64_t probe_at_ms)
{
    assert(entry->state == KCI_ENTRY_PENDING && entry->pending_slot < persister->pending_count);
    assert(entry->type_slot < persister->type_count);
    persister->pending[entry->pending_slot].due_ms = KCI_PERSISTER_WAITING;
    kci_persister_type *type = &persister->types[entry->type_slot];
    if (type->state != KCI_PERSISTER_TYPE_SERVED) return false;
    type->state = KCI_PERSISTER_TYPE_WAITING;
    type->probe_id = entry->id;
    type->probe_ms = probe_at_ms;
    persister->types_waiting++;
    assert(persister->types_waiting <= persister->type_count);
    return true;
}

static bool same_id(const kci_uuid *a, const kci_uuid *b)
{
    return memcmp(a->bytes, b->bytes, sizeof a->bytes) == 0;
}

void kci_persister_on_no_responders(kci_persister *persister, const kci_uuid *id)
{
    int64_t now_ms = kci_monotonic_ms();
    char waits[KC_TYPE_BYTES_MAX + 1] = ""; /* a type that waits from now */
    pthread_mutex_lock(&persister->lock);
    kci_index_entry *entry = kci_index_find(&persister->index, id);
    bool pending = entry != NULL && entry->state == KCI_ENTRY_PENDING &&
                   entry->pending_slot != KCI_INDEX_NO_SLOT;
    kci_persister_type *type = pending && entry->type_slot != KCI_PERSISTER_TYPE_NONE
                                   ? &persister->types[entry->type_slot]
                                   : NULL;
    if (type != NULL && type->state == KCI_PERSISTER_TYPE_PROBING && same_id(&type->probe_id, id)) {
        /* The probe found nobody: it was no attempt; wait for the next. */
        type->state = KCI_PERSISTER_TYPE_WAITING;
        type->probe_ms = now_ms + persister->config.probe_interval_ms;
    } else if (pending && persister->pending[entry->pending_slot].due_ms != KCI_PERSISTER_WAITING) {
        /* Its attempt is given back once: a second 503 for a waiting
         * request (an older dispatch's) changes nothing. */
        if (entry->attempts > 0) entry->attempts--;
        persister->stats.no_responders++;
        if (type != NULL && kci_persister_park_locked(persister, entry,
                                                      now_ms + persister->config.probe_interval_ms))
            memcpy(waits, type->name, sizeof waits);
    }
    pthread_mutex_unlock(&persister->lock);
    if (waits[0] != '\0')
        kci_info_limited("queue: no service subscribed to kc.req.%s: its requests wait for one "
                         "(probed every %lld ms)",
                         waits, (long long)persister->config.probe_interval_ms);
}

/* The pending entry of id if it still waits as one of type_slot's. */
static kci_index_entry *waiting_entry(kci_persister *persister, const kci_uuid *id,
                                      uint16_t type_slot)
{
    kci_index_entry *entry = kci_index_find(&persister->index, id);
    if (entry == NULL || entry->state != KCI_ENTRY_PENDING ||
        entry->pending_slot == KCI_INDEX_NO_SLOT || entry->type_slot != type_slot)
        return NULL;
    return persister->pending[entry->pending_slot].due_ms == KCI_PERSISTER_WAITING ? entry : NULL;
}

/* The request to probe type_slot with: its candidate, or any waiting one of
 * the type (the candidate was replied or removed meanwhile); NULL: none
 * waits. */
static kci_index_entry *probe_candidate(kci_persister *persister, uint16_t type_slot)
{
    kci_index_entry *entry =
        waiting_entry(persister, &persister->types[type_slot].probe_id, type_slot);
    for (uint32_t slot = 0; entry == NULL && slot < persister->pending_count; slot++)
        if (persister->pending[slot].due_ms == KCI_PERSISTER_WAITING)
            entry = waiting_entry(persister, &persister->pending[slot].id, type_slot);
    return entry;
}

static void type_served(kci_persister *persister, kci_persister_type *type)
{
    assert(type->state != KCI_PERSISTER_TYPE_SERVED && persister->types_waiting > 0);
    type->state = KCI_PERSISTER_TYPE_SERVED;
    persister->types_waiting--;
}

/* A probe of the type was received: every waiting request of it is due
 * now. The probe itself reached a service: it counts as an attempt, and is
 * due after its timeout like any dispatch. Returns how many were released. */
static uint64_t release(kci_persister *persister, uint16_t type_slot, int64_t now_ms)
{
    kci_persister_type *type = &persister->types[type_slot];
    assert(type->state == KCI_PERSISTER_TYPE_PROBING);
    uint64_t released = 0;
    for (uint32_t slot = 0; slot < persister->pending_count; slot++) {
        kci_persister_pending_item *item = &persister->pending[slot];
        if (item->due_ms != KCI_PERSISTER_WAITING) continue;
        kci_index_entry *entry = waiting_entry(persister, &item->id, type_slot);
        if (entry == NULL) continue;
        if (same_id(&item->id, &type->probe_id)) {
            entry->attempts++;
            item->due_ms = now_ms + kci_persister_backoff_ms(persister, entry->attempts);
        } else {
            item->due_ms = now_ms;
        }
        released++;
    }
    persister->pending_due_min_ms = now_ms;
    persister->stats.released += released;
    type_served(persister, type);
    return released;
}

/* A waiting type whose probe is due: the probe to send, or false. */
static bool probe_pick(kci_persister *persister, uint16_t type_slot, int64_t now_ms,
                       kci_persister_probe *probe)
{
    kci_persister_type *type = &persister->types[type_slot];
    kci_index_entry *entry = probe_candidate(persister, type_slot);
    if (entry == NULL) { /* nothing of it waits any more */
        type_served(persister, type);
        return false;
    }
    type->probe_id = entry->id;
    type->state = KCI_PERSISTER_TYPE_PROBING;
    type->probe_ms = now_ms;
    persister->stats.probes++;
    *probe =
        (kci_persister_probe){.id = entry->id, .position = entry->request, .type_slot = type_slot};
    return true;
}

uint32_t kci_persister_probes_collect_locked(kci_persister *persister, int64_t now_ms,
                                             kci_persister_probe *probes, uint32_t bound,
                                             uint64_t *released_out)
{
    *released_out = 0;
    uint32_t count = 0;
    for (uint32_t row = 0; row < persister->type_count && persister->types_waiting > 0; row++) {
        kci_persister_type *type = &persister->types[row];
        if (type->state == KCI_PERSISTER_TYPE_PROBING &&
            now_ms - type->probe_ms >= KCI_PERSISTER_PROBE_WAIT_MS)
            *released_out += release(persister, (uint16_t)row, now_ms);
        else if (type->state == KCI_PERSISTER_TYPE_WAITING && type->probe_ms <= now_ms &&
                 count < bound && probe_pick(persister, (uint16_t)row, now_ms, &probes[count]))
            count++;
    }
    assert(count <= bound);
    return count;
}

void kci_persister_probes_unsent(kci_persister *persister, const kci_persister_probe *probes,
                                 uint32_t count)
{
    int64_t now_ms = kci_monotonic_ms();
    pthread_mutex_lock(&persister->lock);
    for (uint32_t index = 0; index < count; index++) {
        kci_persister_type *type = &persister->types[probes[index].type_slot];
        if (type->state != KCI_PERSISTER_TYPE_PROBING) continue;
        type->state = KCI_PERSISTER_TYPE_WAITING;
        type->probe_ms = now_ms + persister->config.probe_interval_ms;
    }
    pthread_mutex_unlock(&persister->lock);
}

uint64_t kci_persister_waiting_count_locked(const kci_persister *persister)
{
    uint64_t count = 0;
    for (uint32_t slot = 0; slot < persister->pending_count; slot++)
        count += persister->pending[slot].due_ms == KCI_PERSISTER_WAITING;
    return count;
}
