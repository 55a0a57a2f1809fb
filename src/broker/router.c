/* router.c - publication delivery (see router.h).
 *
 * The MSG line is written straight into each subscriber's output buffer, so
 * a delivery costs one match (usually a cache hit) and one copy per
 * subscriber. Queue group members are picked at random, as nats-server
 * does, so that a slow member does not pin a rotation. */
#include "router.h"

#include <assert.h>
#include <string.h>

#include "auth.h"
#include "quarantine.h"
#include "subject.h"

enum {
    DECIMAL_DIGITS_MAX = 20,
    /* "HMSG " subject ' ' sid ' ' reply ' ' 20 digits ' ' 20 digits "\r\n" */
    MSG_LINE_FIXED_BYTES = 5 + 4 + 2 * DECIMAL_DIGITS_MAX + 2,
};

static const char NO_RESPONDERS_HEADER[] = "NATS/1.0 503\r\n\r\n";

static uint8_t *put_bytes(uint8_t *at, const void *bytes, size_t len)
{
    memcpy(at, bytes, len);
    return at + len;
}

static uint8_t *put_decimal(uint8_t *at, uint64_t value)
{
    uint8_t digits[DECIMAL_DIGITS_MAX];
    size_t count = 0;
    do {
        digits[count++] = (uint8_t)('0' + value % 10);
        value /= 10;
    } while (value != 0);
    while (count > 0)
        *at++ = digits[--count];
    return at;
}

/* Appends one MSG or HMSG to client's output. header_bytes < 0: no headers. */
static bool append_message(kci_client *client, const kci_subscription *subscription,
                           const kci_pub_args *pub, int64_t header_bytes, const uint8_t *payload,
                           size_t payload_len)
{
    size_t line_max =
        MSG_LINE_FIXED_BYTES + pub->subject_len + subscription->sid_len + pub->reply_len;
    size_t needed = line_max + payload_len + 2;
    uint8_t *start = NULL;
    if (!kci_client_reserve(client, needed, &start)) return false;
    uint8_t *at = start;
    at = header_bytes >= 0 ? put_bytes(at, "HMSG ", 5) : put_bytes(at, "MSG ", 4);
    at = put_bytes(at, pub->subject, pub->subject_len);
    *at++ = ' ';
    at = put_bytes(at, subscription->sid, subscription->sid_len);
    *at++ = ' ';
    if (pub->reply != NULL) {
        at = put_bytes(at, pub->reply, pub->reply_len);
        *at++ = ' ';
    }
    if (header_bytes >= 0) {
        at = put_decimal(at, (uint64_t)header_bytes);
        *at++ = ' ';
    }
    at = put_decimal(at, payload_len);
    at = put_bytes(at, "\r\n", 2);
    at = put_bytes(at, payload, payload_len);
    at = put_bytes(at, "\r\n", 2);
    assert((size_t)(at - start) <= needed);
    kci_client_commit(client, (size_t)(at - start));
    return true;
}

void kci_subscription_remove(kci_subscription *subscription)
{
    if (subscription->removed) return;
    kci_client *client = subscription->client;
    kci_server *server = client->server;
    kc_err err =
        kci_sublist_remove(server->sublist, subscription->subject, subscription->subject_len,
                           subscription->queue, subscription->queue_len, subscription);
    assert(err == KC_OK);
    (void)err;
    subscription->removed = true;
    /* Swap with the last: a client closing with 100,000 subscriptions
     * must not scan them once per subscription. */
    uint32_t slot = subscription->client_index;
    assert(slot < client->subscription_count && client->subscriptions[slot] == subscription);
    kci_subscription *last = client->subscriptions[--client->subscription_count];
    client->subscriptions[slot] = last;
    last->client_index = slot;
    kci_sid_index_remove(&client->sid_index, subscription);
    subscription->next_retired = server->retired_subscriptions;
    server->retired_subscriptions = subscription;
}

/* Delivers to one subscription; false if it was skipped. */
static bool deliver(kci_subscription *subscription, const kci_pub_args *pub)
{
    kci_client *client = subscription->client;
    if (subscription->removed || client->closing) return false;
    if (subscription->max_messages != 0 &&
        subscription->delivered_count >= subscription->max_messages)
        return false;
    if (client->permissions != NULL &&
        !kci_permissions_deliver_allowed(client->permissions, pub->subject, pub->subject_len))
        return false;
    if (client->quarantined && kci_quarantine_blocks(pub)) return false;
    int64_t header_bytes = pub->header_bytes;
    const uint8_t *payload = pub->payload;
    size_t payload_len = pub->payload_len;
    if (header_bytes >= 0 && !client->headers) { /* strip headers for old clients */
        payload += header_bytes;
        payload_len -= (size_t)header_bytes;
        header_bytes = -1;
    }
    if (!append_message(client, subscription, pub, header_bytes, payload, payload_len))
        return false;
    subscription->delivered_count++;
    client->out_msgs++;
    client->out_bytes += payload_len;
    client->server->stats.out_msgs++;
    client->server->stats.out_bytes += payload_len;
    if (subscription->max_messages != 0 &&
        subscription->delivered_count >= subscription->max_messages)
        kci_subscription_remove(subscription);
    return true;
}

static bool skip_for_echo(const kci_subscription *subscription, const kci_client *publisher)
{
    return subscription->client == publisher && !publisher->echo;
}

static bool deliver_to_group(const kci_match_group *group, const kci_client *publisher,
                             const kci_pub_args *pub, uint64_t random)
{
    uint32_t count = group->member_count;
    uint32_t start = (uint32_t)(random % count);
    for (uint32_t k = 0; k < count; k++) {
        kci_subscription *member = group->members[(start + k) % count];
        if (skip_for_echo(member, publisher)) continue;
        if (deliver(member, pub)) return true;
    }
    return false;
}

/* A request nobody could answer: tell the requester through its own
 * subscription on the reply subject, with a 503 status header. */
static void send_no_responders(kci_client *publisher, const kci_pub_args *pub)
{
    if (!kci_subject_valid_literal(pub->reply, pub->reply_len)) return;
    const kci_match *match = NULL;
    if (kci_sublist_match(publisher->server->sublist, pub->reply, pub->reply_len, &match) != KC_OK)
        return;
    for (uint32_t i = 0; i < match->plain_count; i++) {
        kci_subscription *subscription = match->plain[i];
        if (subscription->client != publisher || subscription->removed) continue;
        kci_pub_args status = {
            .subject = pub->reply,
            .subject_len = pub->reply_len,
            .header_bytes = (int64_t)strlen(NO_RESPONDERS_HEADER),
            .payload = (const uint8_t *)NO_RESPONDERS_HEADER,
            .payload_len = strlen(NO_RESPONDERS_HEADER),
        };
        append_message(publisher, subscription, &status, status.header_bytes, status.payload,
                       status.payload_len);
        return;
    }
}

void kci_route_publish(kci_client *publisher, const kci_pub_args *pub)
{
    kci_server *server = publisher->server;
    const kci_match *match = NULL;
    if (kci_sublist_match(server->sublist, pub->subject, pub->subject_len, &match) != KC_OK) return;
    bool delivered = false;
    for (uint32_t i = 0; i < match->plain_count; i++) {
        kci_subscription *subscription = match->plain[i];
        if (skip_for_echo(subscription, publisher)) continue;
        /* A tap (an arbiter watching kc.req.>) is not a responder. */
        if (deliver(subscription, pub) && !subscription->tap) delivered = true;
    }
    for (uint32_t g = 0; g < match->group_count; g++)
        delivered |= deliver_to_group(&match->groups[g], publisher, pub, kci_server_random(server));
    if (!delivered && pub->reply != NULL && publisher->headers && publisher->no_responders)
        send_no_responders(publisher, pub);
}
