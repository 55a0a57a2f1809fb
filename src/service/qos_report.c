/* qos_report.c - signed QoS samples a client reports (qos_report.h).
 *
 * The request thread only copies a sample into a ring under the reporter's
 * lock; the reporter's thread formats, signs (an Ed25519 signature costs
 * tens of microseconds, more than a local request) and publishes, so a
 * client pays next to nothing per request for reporting. */
#include "qos_report.h"

#include <assert.h>
#include <jansson.h>
#include <pthread.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "common/log.h"
#include "service/client_internal.h"
#include "service/last_error.h"

struct kci_qos_reporter {
    pthread_mutex_t lock; /* everything below but the key */
    pthread_cond_t changed;
    bool stopping;
    uint32_t head, count; /* ring[head] is the oldest */
    uint64_t dropped, published;
    pthread_t thread;
    uint8_t secret_key[KCI_QOS_SECRET_BYTES];
    char public_hex[2 * KCI_QOS_PUBLIC_BYTES + 1];
    kci_qos_report ring[KCI_QOS_PENDING_MAX];
};

char *kci_qos_report_body(const kci_qos_report *report, const char *reporter)
{
    json_t *root =
        json_pack("{s:s, s:s, s:s, s:s, s:I, s:b, s:i, s:b, s:I}", "node", report->node, "reporter",
                  reporter, "type", report->type, "request_id", report->request_id, "latency_ms",
                  (json_int_t)report->latency_ms, "ok", report->error_code == 0, "error_code",
                  report->error_code, "deadline_missed", 0, "ts_ms", (json_int_t)report->ts_ms);
    char *body = root != NULL ? json_dumps(root, JSON_COMPACT) : NULL;
    json_decref(root);
    return body;
}

void kci_qos_sign(char signature[2 * KCI_QOS_SIGNATURE_BYTES + 1], const char *body,
                  const uint8_t secret_key[KCI_QOS_SECRET_BYTES])
{
    uint8_t bytes[KCI_QOS_SIGNATURE_BYTES];
    crypto_sign_detached(bytes, NULL, (const uint8_t *)body, strlen(body), secret_key);
    sodium_bin2hex(signature, 2 * KCI_QOS_SIGNATURE_BYTES + 1, bytes, sizeof bytes);
}

static void publish_one(kc_client *client, kci_qos_reporter *reporter, const kci_qos_report *report)
{
    char *body = kci_qos_report_body(report, client->node);
    if (body == NULL) return;
    char subject[KCI_SUBJECT_BYTES_MAX], signature[2 * KCI_QOS_SIGNATURE_BYTES + 1];
    snprintf(subject, sizeof subject, KCI_QOS_SUBJECT_PREFIX "%s", report->node);
    kci_qos_sign(signature, body, reporter->secret_key);
    natsMsg *message = NULL;
    natsStatus status = natsMsg_Create(&message, subject, NULL, body, (int)strlen(body));
    if (status == NATS_OK) status = natsMsgHeader_Set(message, KCI_HEADER_NODE, client->node);
    if (status == NATS_OK)
        status = natsMsgHeader_Set(message, KCI_QOS_KEY_HEADER, reporter->public_hex);
    if (status == NATS_OK) status = natsMsgHeader_Set(message, KCI_QOS_SIGNATURE_HEADER, signature);
    if (status == NATS_OK) status = natsConnection_PublishMsg(client->connection, message);
    natsMsg_Destroy(message);
    free(body);
    pthread_mutex_lock(&reporter->lock);
    if (status == NATS_OK)
        reporter->published++;
    else
        reporter->dropped++;
    pthread_mutex_unlock(&reporter->lock);
}

static void *reporter_main(void *argument)
{
    kc_client *client = argument;
    kci_qos_reporter *reporter = client->qos;
    pthread_mutex_lock(&reporter->lock);
    for (;;) {
        while (reporter->count == 0 && !reporter->stopping)
            pthread_cond_wait(&reporter->changed, &reporter->lock);
        if (reporter->count == 0) break; /* stopping, and everything is out */
        kci_qos_report report = reporter->ring[reporter->head];
        reporter->head = (reporter->head + 1) % KCI_QOS_PENDING_MAX;
        reporter->count--;
        pthread_mutex_unlock(&reporter->lock);
        publish_one(client, reporter, &report);
        pthread_mutex_lock(&reporter->lock);
    }
    pthread_mutex_unlock(&reporter->lock);
    return NULL;
}

kc_err kci_qos_reporter_start(kc_client *client, const uint8_t secret_key[KCI_QOS_SECRET_BYTES])
{
    if (sodium_init() < 0) return kci_fail(KC_ERR_IO, "libsodium did not initialise");
    kci_qos_reporter *reporter = calloc(1, sizeof *reporter);
    if (reporter == NULL) return kci_fail(KC_ERR_NOMEM, NULL);
    memcpy(reporter->secret_key, secret_key, KCI_QOS_SECRET_BYTES);
    uint8_t public_key[KCI_QOS_PUBLIC_BYTES];
    crypto_sign_ed25519_sk_to_pk(public_key, secret_key);
    sodium_bin2hex(reporter->public_hex, sizeof reporter->public_hex, public_key,
                   sizeof public_key);
    if (pthread_mutex_init(&reporter->lock, NULL) != 0) {
        free(reporter);
        return kci_fail(KC_ERR_IO, "qos reporter: mutex");
    }
    pthread_cond_init(&reporter->changed, NULL);
    client->qos = reporter;
    if (pthread_create(&reporter->thread, NULL, reporter_main, client) != 0) {
        client->qos = NULL;
        pthread_cond_destroy(&reporter->changed);
        pthread_mutex_destroy(&reporter->lock);
        sodium_memzero(reporter->secret_key, sizeof reporter->secret_key);
        free(reporter);
        return kci_fail(KC_ERR_IO, "qos reporter: cannot start its thread");
    }
    return KC_OK;
}

void kci_qos_reporter_stop(kc_client *client)
{
    kci_qos_reporter *reporter = client->qos;
    if (reporter == NULL) return;
    pthread_mutex_lock(&reporter->lock);
    reporter->stopping = true;
    pthread_cond_signal(&reporter->changed);
    pthread_mutex_unlock(&reporter->lock);
    pthread_join(reporter->thread, NULL);
    client->qos = NULL;
    pthread_cond_destroy(&reporter->changed);
    pthread_mutex_destroy(&reporter->lock);
    sodium_memzero(reporter->secret_key, sizeof reporter->secret_key);
    free(reporter);
}

void kci_qos_report_reply(kc_client *client, const kc_reply *reply, const char *type,
                          const char *request_id, int64_t latency_ms)
{
    kci_qos_reporter *reporter = client->qos;
    if (reporter == NULL || reply == NULL || reply->headers.node[0] == '\0') return;
    pthread_mutex_lock(&reporter->lock);
    if (reporter->count == KCI_QOS_PENDING_MAX || reporter->stopping) {
        if (reporter->dropped++ == 0)
            kci_warn("kingcobra: QoS samples dropped: more than %d queued", KCI_QOS_PENDING_MAX);
        pthread_mutex_unlock(&reporter->lock);
        return;
    }
    kci_qos_report *report =
        &reporter->ring[(reporter->head + reporter->count) % KCI_QOS_PENDING_MAX];
    snprintf(report->node, sizeof report->node, "%s", reply->headers.node);
    snprintf(report->type, sizeof report->type, "%s", type);
    snprintf(report->request_id, sizeof report->request_id, "%s", request_id);
    report->latency_ms = latency_ms < 0 ? 0 : latency_ms;
    report->error_code = reply->headers.error_code;
    report->ts_ms = kci_wall_ms();
    reporter->count++;
    pthread_cond_signal(&reporter->changed);
    pthread_mutex_unlock(&reporter->lock);
}

uint64_t kci_qos_reporter_dropped(const kc_client *client)
{
    kci_qos_reporter *reporter = client->qos;
    if (reporter == NULL) return 0;
    pthread_mutex_lock(&reporter->lock);
    uint64_t dropped = reporter->dropped;
    pthread_mutex_unlock(&reporter->lock);
    return dropped;
}

uint64_t kci_qos_reporter_published(const kc_client *client)
{
    kci_qos_reporter *reporter = client->qos;
    if (reporter == NULL) return 0;
    pthread_mutex_lock(&reporter->lock);
    uint64_t published = reporter->published;
    pthread_mutex_unlock(&reporter->lock);
    return published;
}
