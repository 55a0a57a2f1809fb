/* channel.c - reply channels for synchronous requests (kc_client_request).
 *
 * Why: natsConnection_RequestMsg receives every reply on one wildcard inbox
 * subscription whose callback runs on a nats.c delivery thread and then
 * wakes the waiting caller: two thread wake-ups per reply. A channel is a
 * synchronous subscription of its own on "_INBOX.<nuid>.*"; the caller
 * publishes with reply "_INBOX.<nuid>.<sequence>" and waits in
 * natsSubscription_NextMsg, so nats.c's reader thread hands the reply
 * straight to it: one wake-up, no per-request inbox string or map entry.
 *
 * A channel serves one request at a time. The client keeps the channels it
 * made on a free list (under client->lock), so their number is the most
 * synchronous requests it ever had in flight at once, at most
 * KCI_CHANNELS_MAX; beyond that kci_channel_take gives none and the caller
 * falls back to natsConnection_RequestMsg.
 *
 * A reply that arrives after its request timed out stays in the channel's
 * subscription; the next request on the channel reads past it (its subject
 * names an older sequence) and drops it. The server's no-responders status
 * (Status: 503) arrives on the reply subject like a reply.
 *
 * The subscription needs no flush before the first request: nats.c writes
 * SUB before the PUB that follows it on the same connection, and the server
 * handles a connection's protocol in order. nats.c re-subscribes channels
 * after a reconnect like any other subscription. */
#include <assert.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "service/client_internal.h"
#include "service/last_error.h"

struct kci_channel {
    kci_channel *next; /* on client->channels_free while not in use */
    kci_channel *all_next;
    natsSubscription *subscription;
    uint64_t sequence; /* of the request in flight, or of the last one */
    char inbox[KCI_INBOX_BYTES_MAX];
};

static kc_err channel_subscribe(kc_client *client, kci_channel *channel)
{
    natsInbox *inbox = NULL;
    natsStatus status = natsInbox_Create(&inbox);
    if (status != NATS_OK) return kci_nats_fail(status, "request channel");
    int written = snprintf(channel->inbox, sizeof(channel->inbox), "%s", inbox);
    natsInbox_Destroy(inbox);
    char subject[KCI_INBOX_BYTES_MAX + 2];
    if (written <= 0 || (size_t)written >= sizeof(channel->inbox))
        return kci_fail(KC_ERR_LIMIT, "request channel: inbox name too long");
    snprintf(subject, sizeof(subject), "%s.*", channel->inbox);
    status = natsConnection_SubscribeSync(&channel->subscription, client->connection, subject);
    if (status != NATS_OK) return kci_nats_fail(status, "request channel");
    return KC_OK;
}

kc_err kci_channel_take(kc_client *client, kci_channel **out)
{
    assert(client != NULL && out != NULL);
    *out = NULL;
    pthread_mutex_lock(&client->lock);
    kci_channel *channel = client->channels_free;
    if (channel != NULL) {
        client->channels_free = channel->next;
        channel->next = NULL;
    }
    bool make = channel == NULL && client->channel_count < KCI_CHANNELS_MAX;
    if (make) client->channel_count++; /* reserved; given back if making fails */
    pthread_mutex_unlock(&client->lock);
    if (!make) {
        *out = channel; /* NULL: every channel is busy, the caller falls back */
        return KC_OK;
    }
    channel = calloc(1, sizeof(*channel));
    kc_err err = channel != NULL ? channel_subscribe(client, channel)
                                 : kci_fail(KC_ERR_NOMEM, "request channel");
    pthread_mutex_lock(&client->lock);
    if (err == KC_OK) {
        channel->all_next = client->channels_all;
        client->channels_all = channel;
    } else {
        client->channel_count--;
    }
    pthread_mutex_unlock(&client->lock);
    if (err != KC_OK) {
        free(channel);
        return err;
    }
    *out = channel;
    return KC_OK;
}

void kci_channel_give_back(kc_client *client, kci_channel *channel)
{
    if (channel == NULL) return;
    pthread_mutex_lock(&client->lock);
    channel->next = client->channels_free;
    client->channels_free = channel;
    pthread_mutex_unlock(&client->lock);
}

void kci_channel_reply_subject(kci_channel *channel, char subject[KCI_SUBJECT_BYTES_MAX])
{
    channel->sequence++;
    int written =
        snprintf(subject, KCI_SUBJECT_BYTES_MAX, "%s.%" PRIu64, channel->inbox, channel->sequence);
    assert(written > 0 && written < KCI_SUBJECT_BYTES_MAX);
    (void)written;
}

natsStatus kci_channel_wait(kci_channel *channel, const char *reply_subject, int64_t timeout_ms,
                            natsMsg **reply)
{
    *reply = NULL;
    int64_t deadline_ms = kci_monotonic_ms() + timeout_ms;
    for (;;) {
        int64_t remaining_ms = deadline_ms - kci_monotonic_ms();
        if (remaining_ms <= 0) return NATS_TIMEOUT;
        natsMsg *message = NULL;
        natsStatus status = natsSubscription_NextMsg(&message, channel->subscription, remaining_ms);
        if (status == NATS_SLOW_CONSUMER) continue; /* nats.c dropped some; ours may be next */
        if (status != NATS_OK) return status;
        if (strcmp(natsMsg_GetSubject(message), reply_subject) == 0) {
            *reply = message;
            return NATS_OK;
        }
        natsMsg_Destroy(message); /* a late reply to an earlier request on this channel */
    }
}

void kci_channels_unsubscribe(kc_client *client)
{
    pthread_mutex_lock(&client->lock);
    kci_channel *channel = client->channels_all;
    pthread_mutex_unlock(&client->lock);
    for (; channel != NULL; channel = channel->all_next)
        natsSubscription_Unsubscribe(channel->subscription); /* fails only if closed: fine */
}

void kci_channels_destroy(kc_client *client)
{
    pthread_mutex_lock(&client->lock);
    kci_channel *channel = client->channels_all;
    client->channels_all = NULL;
    client->channels_free = NULL;
    client->channel_count = 0;
    pthread_mutex_unlock(&client->lock);
    while (channel != NULL) {
        kci_channel *next = channel->all_next;
        natsSubscription_Destroy(channel->subscription);
        free(channel);
        channel = next;
    }
}
