/* lease.c - the active/standby lease on a JetStream KV key (lease.h): the
 * bucket, the reads and compare-and-set writes, the renewer thread.
 *
 * One thread (the renewer, or the caller of kci_lease_tick) drives the state;
 * other threads only read it, under the mutex, through kci_lease_holds and
 * friends. The nats.c calls block for at most renew_ms (the jsCtx Wait), so a
 * tick is bounded and a holder reports an expiry at most that long late;
 * kci_lease_holds compares with the clock itself and is never late.
 *
 * Two jsCtx: one with a long Wait for creating the bucket (a clustered stream
 * takes a while to create), one with renew_ms for every read and write after.
 * The kvStore API makes and binds the bucket (binding also checks that the
 * stream is a KV bucket); reads and writes use the JetStream calls underneath
 * it, for the reasons given at lease_read and lease_write. */
#include "service/lease.h"

#include <assert.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "common/log.h"
#include "kingcobra/kingcobra.h"
#include "service/client_internal.h"
#include "service/last_error.h"
#include "service/uuid.h"

enum {
    RENEW_MS_MIN = 10,
    SETUP_WAIT_MS_MAX = 5000,  /* one bucket lookup or creation */
    OPEN_RETRY_PAUSE_MS = 200, /* between attempts while a leader is elected */
    SUBJECT_BYTES_MAX = 4 + KCI_LEASE_NAME_BYTES_MAX + 1 + KCI_LEASE_NAME_BYTES_MAX + 1,
    STREAM_BYTES_MAX = 3 + KCI_LEASE_NAME_BYTES_MAX + 1,
};

static const char KV_OPERATION_HEADER[] = "KV-Operation"; /* DEL or PURGE markers */

struct kci_lease {
    kci_lease_config config; /* strings point into the copies below */
    char bucket[KCI_LEASE_NAME_BYTES_MAX + 1];
    char key[KCI_LEASE_NAME_BYTES_MAX + 1];
    char holder[KCI_LEASE_HOLDER_BYTES_MAX + 1];
    char stream[STREAM_BYTES_MAX];   /* "KV_<bucket>" */
    char subject[SUBJECT_BYTES_MAX]; /* "$KV.<bucket>.<key>" */
    natsConnection *connection;
    jsCtx *js; /* Wait = renew_ms */
    kvStore *kv;
    /* Written by the ticking thread only, under mutex; read by anyone. */
    pthread_mutex_t mutex;
    bool active;
    uint64_t term;
    uint64_t revision;
    int64_t confirmed_ms; /* monotonic send time of the last confirmed write */
    /* The ticking thread's own. */
    kci_lease_observation observation;
    /* The renewer. */
    pthread_cond_t wake;
    bool stopping;
    bool thread_started;
    pthread_t thread;
};

/* What a tick did, reported after the state is updated and the lock dropped. */
typedef struct lease_event {
    bool acquired;
    bool lost;
    kci_lease_loss loss;
    uint64_t term;
} lease_event;

/* ======================================================================= config */

void kci_lease_config_init(kci_lease_config *config)
{
    *config = (kci_lease_config){
        .ttl_ms = KCI_LEASE_TTL_MS_DEFAULT,
        .renew_ms = KCI_LEASE_RENEW_MS_DEFAULT,
        .margin_ms = KCI_LEASE_MARGIN_MS_DEFAULT,
        .replicas = KCI_LEASE_REPLICAS_DEFAULT,
        .open_timeout_ms = KCI_LEASE_OPEN_TIMEOUT_MS_DEFAULT,
    };
}

/* A KV bucket or key: nats.c's rule for buckets ([A-Za-z0-9_-]), which also
 * suits keys, within our bound. */
static bool name_valid(const char *name)
{
    if (name == NULL) return false;
    size_t length = strnlen(name, KCI_LEASE_NAME_BYTES_MAX + 1);
    if (length == 0 || length > KCI_LEASE_NAME_BYTES_MAX) return false;
    for (size_t index = 0; index < length; index++) {
        char byte = name[index];
        bool allowed = (byte >= 'a' && byte <= 'z') || (byte >= 'A' && byte <= 'Z') ||
                       (byte >= '0' && byte <= '9') || byte == '_' || byte == '-';
        if (!allowed) return false;
    }
    return true;
}

kc_err kci_lease_config_check(const kci_lease_config *config)
{
    if (!name_valid(config->bucket) || !name_valid(config->key))
        return kci_fail(KC_ERR_CONFIG, "lease bucket and key must be 1 to %d of A-Z a-z 0-9 _ -",
                        KCI_LEASE_NAME_BYTES_MAX);
    if (!kci_lease_holder_valid(config->holder))
        return kci_fail(KC_ERR_CONFIG, "lease holder must be 1 to %d visible bytes",
                        KCI_LEASE_HOLDER_BYTES_MAX);
    if (config->renew_ms < RENEW_MS_MIN || config->margin_ms < 0 ||
        config->ttl_ms > KCI_LEASE_TTL_MS_MAX ||
        config->ttl_ms < 2 * config->renew_ms + config->margin_ms)
        return kci_fail(KC_ERR_CONFIG,
                        "lease ttl %" PRId64 " ms must be at least 2 x renew (%" PRId64
                        " ms, at least %d) + margin (%" PRId64 " ms)",
                        config->ttl_ms, config->renew_ms, RENEW_MS_MIN, config->margin_ms);
    if (config->replicas < 1 || config->replicas > KCI_LEASE_REPLICAS_MAX)
        return kci_fail(KC_ERR_CONFIG, "lease replicas %d must be 1 to %d", config->replicas,
                        KCI_LEASE_REPLICAS_MAX);
    if (config->open_timeout_ms < 1)
        return kci_fail(KC_ERR_CONFIG, "lease open timeout must be positive");
    return KC_OK;
}

void kci_lease_holder_make(char *out, size_t out_size, const char *node)
{
    assert(out != NULL && out_size > KC_UUID_TEXT_BYTES + 1);
    char uuid[KC_UUID_TEXT_BYTES + 1];
    kci_uuid_v7_text(uuid);
    size_t limit =
        out_size - 1 < KCI_LEASE_HOLDER_BYTES_MAX ? out_size - 1 : KCI_LEASE_HOLDER_BYTES_MAX;
    size_t node_bytes = limit - 1 - KC_UUID_TEXT_BYTES;
    size_t length = 0;
    for (size_t index = 0; node != NULL && node[index] != '\0' && length < node_bytes; index++)
        if (node[index] > ' ' && node[index] <= '~') out[length++] = node[index];
    if (length == 0) out[length++] = '-';
    out[length++] = '/';
    memcpy(out + length, uuid, KC_UUID_TEXT_BYTES + 1);
    assert(kci_lease_holder_valid(out));
}

/* ======================================================================= state */

static bool state_active(kci_lease *lease)
{
    pthread_mutex_lock(&lease->mutex);
    bool active = lease->active;
    pthread_mutex_unlock(&lease->mutex);
    return active;
}

static void state_acquire(kci_lease *lease, uint64_t revision, int64_t sent_ms, lease_event *event)
{
    pthread_mutex_lock(&lease->mutex);
    assert(!lease->active && revision > 0);
    lease->active = true;
    lease->term = revision;
    lease->revision = revision;
    lease->confirmed_ms = sent_ms;
    pthread_mutex_unlock(&lease->mutex);
    lease->observation = (kci_lease_observation){0};
    *event = (lease_event){.acquired = true, .term = revision};
}

static void state_renewed(kci_lease *lease, uint64_t revision, int64_t sent_ms)
{
    pthread_mutex_lock(&lease->mutex);
    assert(lease->active && revision > lease->revision);
    lease->revision = revision;
    lease->confirmed_ms = sent_ms;
    pthread_mutex_unlock(&lease->mutex);
}

/* A renewal of ours was applied though its answer was lost: continue from
 * its revision, without counting it as confirmed (we do not know when). */
static void state_adopt(kci_lease *lease, uint64_t revision)
{
    pthread_mutex_lock(&lease->mutex);
    if (lease->active && revision > lease->revision) lease->revision = revision;
    pthread_mutex_unlock(&lease->mutex);
}

static void state_lose(kci_lease *lease, kci_lease_loss loss, lease_event *event)
{
    pthread_mutex_lock(&lease->mutex);
    assert(lease->active);
    *event = (lease_event){.lost = true, .loss = loss, .term = lease->term};
    lease->active = false;
    lease->term = 0;
    lease->revision = 0;
    pthread_mutex_unlock(&lease->mutex);
}

int64_t kci_lease_valid_until(kci_lease *lease, uint64_t *term_out)
{
    pthread_mutex_lock(&lease->mutex);
    int64_t valid_until_ms =
        lease->active ? kci_lease_valid_until_ms(lease->confirmed_ms, lease->config.ttl_ms,
                                                 lease->config.margin_ms)
                      : 0;
    uint64_t term = lease->term;
    pthread_mutex_unlock(&lease->mutex);
    if (term_out != NULL) *term_out = term;
    return valid_until_ms;
}

bool kci_lease_holds(kci_lease *lease, uint64_t *term_out)
{
    uint64_t term = 0;
    int64_t valid_until_ms = kci_lease_valid_until(lease, &term);
    bool holds = kci_monotonic_ms() < valid_until_ms;
    if (term_out != NULL) *term_out = holds ? term : 0;
    return holds;
}

uint64_t kci_lease_term(kci_lease *lease)
{
    pthread_mutex_lock(&lease->mutex);
    uint64_t term = lease->term;
    pthread_mutex_unlock(&lease->mutex);
    return term;
}

uint64_t kci_lease_revision(kci_lease *lease)
{
    pthread_mutex_lock(&lease->mutex);
    uint64_t revision = lease->revision;
    pthread_mutex_unlock(&lease->mutex);
    return revision;
}

/* ======================================================================= KV I/O */

/* The latest message of the key, from the stream's leader (js_GetLastMsg):
 * not kvStore_Get, whose direct get any replica answers, stale ones too. */
static kc_err lease_read(kci_lease *lease, kci_lease_view *view)
{
    *view = (kci_lease_view){0};
    natsMsg *message = NULL;
    jsErrCode error_code = 0;
    natsStatus status =
        js_GetLastMsg(&message, lease->js, lease->stream, lease->subject, NULL, &error_code);
    if (status == NATS_NOT_FOUND && error_code == JSNoMessageFoundErr)
        return KC_OK; /* never written, or purged */
    if (status != NATS_OK) return kci_nats_fail(status, "lease: read");
    const char *operation = NULL;
    bool marker = natsMsgHeader_Get(message, KV_OPERATION_HEADER, &operation) == NATS_OK;
    view->present = true;
    view->revision = natsMsg_GetSequence(message);
    view->deleted = marker;
    view->parsed = !marker && kci_lease_record_parse(natsMsg_GetData(message),
                                                     (size_t)natsMsg_GetDataLength(message),
                                                     &view->record) == KC_OK;
    natsMsg_Destroy(message);
    assert(!view->present || view->revision > 0);
    return KC_OK;
}

/* Writes our record with a compare-and-set. expected_revision 0: only if the
 * key has no message at all (Nats-Expected-Last-Subject-Sequence: 0, which
 * nats-server 2.9 checks when it applies the write). Otherwise: only if the
 * bucket's last sequence is still expected_revision
 * (Nats-Expected-Last-Sequence, also checked when applied). Not
 * kvStore_Update: its Nats-Expected-Last-Subject-Sequence is checked by a
 * clustered 2.9 stream only before the proposal, against what is applied, so
 * two updates from the same revision in flight together both succeed (the
 * lease test saw two holders that way). The stream-wide check is why a lease
 * bucket holds one key. *revision_out gets the new revision. */
static kc_err lease_write(kci_lease *lease, kci_lease_state state, uint64_t term,
                          uint64_t expected_revision, uint64_t *revision_out)
{
    kci_lease_record record = {.state = state, .term = term, .ttl_ms = lease->config.ttl_ms};
    memcpy(record.holder, lease->holder, sizeof(record.holder));
    char text[KCI_LEASE_RECORD_BYTES_MAX + 1];
    size_t length = 0;
    kc_err err = kci_lease_record_format(&record, text, sizeof(text), &length);
    assert(err == KC_OK); /* the holder was checked at open */
    (void)err;
    jsPubOptions options;
    jsPubOptions_Init(&options);
    options.ExpectNoMessage = expected_revision == 0;
    options.ExpectLastSeq = expected_revision;
    options.ExpectLastSubjectSeq = expected_revision; /* a cheap early refusal */
    jsPubAck *ack = NULL;
    jsErrCode error_code = 0;
    natsStatus status =
        js_Publish(&ack, lease->js, lease->subject, text, (int)length, &options, &error_code);
    *revision_out = status == NATS_OK ? ack->Sequence : 0;
    jsPubAck_Destroy(ack);
    if (status != NATS_OK) return kci_nats_fail(status, "lease: write");
    assert(*revision_out > expected_revision);
    return KC_OK;
}

/* ======================================================================= steps */

static void standby_step(kci_lease *lease, lease_event *event)
{
    kci_lease_view view;
    if (lease_read(lease, &view) != KC_OK) {
        kci_log(KCI_LOG_DEBUG, "%s", kc_last_error());
        return;
    }
    int64_t now_ms = kci_monotonic_ms();
    kci_lease_action action =
        kci_lease_decide(&lease->observation, &view, lease->holder, lease->config.ttl_ms,
                         lease->config.margin_ms, now_ms);
    if (action == KCI_LEASE_WAIT) return;
    uint64_t expected = action == KCI_LEASE_CREATE ? 0 : view.revision;
    uint64_t revision = 0;
    if (lease_write(lease, KCI_LEASE_HELD, 0, expected, &revision) != KC_OK) {
        /* Another standby won, or the write is in doubt: observe afresh. */
        lease->observation = (kci_lease_observation){0};
        kci_log(KCI_LOG_DEBUG, "%s", kc_last_error());
        return;
    }
    state_acquire(lease, revision, now_ms, event);
}

/* A renewal failed: read back whether our record is still the latest. Two
 * tries: a read that times out on a busy server would otherwise turn a
 * "deposed", which the part should hear, into an "expired". */
static void holder_recheck(kci_lease *lease, uint64_t term, lease_event *event)
{
    kci_lease_view view;
    if (lease_read(lease, &view) != KC_OK && lease_read(lease, &view) != KC_OK)
        return; /* unknown: the deadline decides */
    if (kci_lease_judge(&view, lease->holder, term) == KCI_LEASE_DEPOSED) {
        state_lose(lease, KCI_LEASE_LOST_DEPOSED, event);
        return;
    }
    state_adopt(lease, view.revision);
}

/* Renews even past the deadline: a compare-and-set that still succeeds
 * proves nobody took over meanwhile (kci_lease_holds said no in between, so
 * nothing was written under the lease), and one that fails tells a process
 * resumed after SIGSTOP that it was deposed rather than merely late. */
static void holder_step(kci_lease *lease, lease_event *event)
{
    pthread_mutex_lock(&lease->mutex);
    uint64_t term = lease->term, revision = lease->revision;
    pthread_mutex_unlock(&lease->mutex);
    int64_t sent_ms = kci_monotonic_ms();
    uint64_t renewed = 0;
    if (lease_write(lease, KCI_LEASE_HELD, term, revision, &renewed) == KC_OK) {
        state_renewed(lease, renewed, sent_ms);
        return;
    }
    holder_recheck(lease, term, event);
    if (!event->lost && kci_lease_valid_until(lease, NULL) <= kci_monotonic_ms())
        state_lose(lease, KCI_LEASE_LOST_EXPIRED, event);
}

static void lease_report(const kci_lease *lease, const lease_event *event)
{
    if (event->acquired) {
        kci_log(KCI_LOG_INFO, "lease %s/%s: acquired, term %" PRIu64, lease->bucket, lease->key,
                event->term);
        if (lease->config.on_acquired != NULL)
            lease->config.on_acquired(lease->config.closure, event->term);
    }
    if (event->lost) {
        static const char *const reasons[] = {"", "deposed", "expired", "released"};
        kci_log(KCI_LOG_INFO, "lease %s/%s: lost (%s), term %" PRIu64, lease->bucket, lease->key,
                reasons[event->loss], event->term);
        if (lease->config.on_lost != NULL)
            lease->config.on_lost(lease->config.closure, event->term, event->loss);
    }
}

void kci_lease_tick(kci_lease *lease)
{
    lease_event event = {0};
    if (state_active(lease))
        holder_step(lease, &event);
    else
        standby_step(lease, &event);
    lease_report(lease, &event);
}

/* ======================================================================= renewer */

static void *renewer_main(void *argument)
{
    kci_lease *lease = argument;
    pthread_mutex_lock(&lease->mutex);
    while (!lease->stopping) {
        pthread_mutex_unlock(&lease->mutex);
        int64_t started_ms = kci_monotonic_ms();
        kci_lease_tick(lease);
        /* Every renew_ms from the start of the last tick, not after it. */
        int64_t pause_ms = lease->config.renew_ms - (kci_monotonic_ms() - started_ms);
        struct timespec deadline = kci_deadline_after(CLOCK_MONOTONIC, pause_ms > 0 ? pause_ms : 0);
        pthread_mutex_lock(&lease->mutex);
        while (!lease->stopping &&
               pthread_cond_timedwait(&lease->wake, &lease->mutex, &deadline) == 0) {
        }
    }
    pthread_mutex_unlock(&lease->mutex);
    return NULL;
}

/* ======================================================================= open */

/* Binds lease->kv to the bucket through lease->js, creating the bucket with a
 * patient jsCtx first when it does not exist. One attempt. */
static natsStatus bucket_bind(kci_lease *lease, jsCtx *setup)
{
    natsStatus status = js_KeyValue(&lease->kv, lease->js, lease->bucket);
    if (status != NATS_NOT_FOUND) return status;
    kvConfig config;
    kvConfig_Init(&config);
    config.Bucket = lease->bucket;
    config.Description = "KingCobra leases: one active per role (kci_lease)";
    config.History = 1;                  /* a lease needs its latest record only */
    config.StorageType = js_FileStorage; /* terms must survive a full restart */
    config.Replicas = lease->config.replicas;
    kvStore *created = NULL;
    /* Two contenders may create it at once: the loser binds on its next try. */
    status = js_CreateKeyValue(&created, setup, &config);
    kvStore_Destroy(created);
    if (status != NATS_OK) return status;
    return js_KeyValue(&lease->kv, lease->js, lease->bucket);
}

static kc_err bucket_open(kci_lease *lease)
{
    jsOptions options;
    jsOptions_Init(&options);
    options.Wait = lease->config.renew_ms;
    natsStatus status = natsConnection_JetStream(&lease->js, lease->connection, &options);
    if (status != NATS_OK) return kci_nats_fail(status, "lease: JetStream");
    options.Wait = lease->config.open_timeout_ms < SETUP_WAIT_MS_MAX ? lease->config.open_timeout_ms
                                                                     : SETUP_WAIT_MS_MAX;
    jsCtx *setup = NULL;
    status = natsConnection_JetStream(&setup, lease->connection, &options);
    if (status != NATS_OK) return kci_nats_fail(status, "lease: JetStream");
    int64_t deadline_ms = kci_monotonic_ms() + lease->config.open_timeout_ms;
    for (;;) {
        status = bucket_bind(lease, setup);
        if (status == NATS_OK || kci_monotonic_ms() >= deadline_ms) break;
        nats_Sleep(OPEN_RETRY_PAUSE_MS);
    }
    jsCtx_Destroy(setup);
    if (status != NATS_OK) return kci_nats_fail(status, "lease: bucket");
    return KC_OK;
}

static void lease_names(kci_lease *lease, const kci_lease_config *config)
{
    lease->config = *config;
    snprintf(lease->bucket, sizeof(lease->bucket), "%s", config->bucket);
    snprintf(lease->key, sizeof(lease->key), "%s", config->key);
    snprintf(lease->holder, sizeof(lease->holder), "%s", config->holder);
    lease->config.bucket = lease->bucket;
    lease->config.key = lease->key;
    lease->config.holder = lease->holder;
    snprintf(lease->stream, sizeof(lease->stream), "KV_%s", lease->bucket);
    snprintf(lease->subject, sizeof(lease->subject), "$KV.%s.%s", lease->bucket, lease->key);
}

static void lease_free(kci_lease *lease)
{
    kvStore_Destroy(lease->kv);
    jsCtx_Destroy(lease->js);
    pthread_cond_destroy(&lease->wake);
    pthread_mutex_destroy(&lease->mutex);
    free(lease);
}

static kc_err lease_sync_init(kci_lease *lease)
{
    pthread_condattr_t attributes;
    if (pthread_condattr_init(&attributes) != 0) return kci_fail(KC_ERR_NOMEM, "lease: condattr");
    pthread_condattr_setclock(&attributes, CLOCK_MONOTONIC);
    int cond_failed = pthread_cond_init(&lease->wake, &attributes);
    pthread_condattr_destroy(&attributes);
    if (cond_failed != 0) return kci_fail(KC_ERR_NOMEM, "lease: condition variable");
    if (pthread_mutex_init(&lease->mutex, NULL) != 0) {
        pthread_cond_destroy(&lease->wake);
        return kci_fail(KC_ERR_NOMEM, "lease: mutex");
    }
    return KC_OK;
}

kc_err kci_lease_open(kci_lease **lease_out, natsConnection *connection,
                      const kci_lease_config *config)
{
    assert(lease_out != NULL && config != NULL);
    *lease_out = NULL;
    if (connection == NULL) return kci_fail(KC_ERR_INVALID_ARGUMENT, "lease: no connection");
    kc_err err = kci_lease_config_check(config);
    if (err != KC_OK) return err;
    kci_lease *lease = calloc(1, sizeof(*lease));
    if (lease == NULL) return kci_fail(KC_ERR_NOMEM, "lease: out of memory");
    if (lease_sync_init(lease) != KC_OK) {
        free(lease);
        return kci_last_error_code();
    }
    lease->connection = connection;
    lease_names(lease, config);
    err = bucket_open(lease);
    if (err == KC_OK && !config->manual_ticks) {
        if (pthread_create(&lease->thread, NULL, renewer_main, lease) != 0)
            err = kci_fail(KC_ERR_NOMEM, "lease: cannot start the renewer thread");
        lease->thread_started = err == KC_OK;
    }
    if (err != KC_OK) {
        lease_free(lease);
        return err;
    }
    *lease_out = lease;
    return KC_OK;
}

/* Marks our record released, compare-and-set on our last revision: if that
 * fails we were deposed already, or the record waits for its ttl. */
static void lease_release(kci_lease *lease)
{
    lease_event event = {0};
    if (!state_active(lease)) return;
    pthread_mutex_lock(&lease->mutex);
    uint64_t term = lease->term, revision = lease->revision;
    pthread_mutex_unlock(&lease->mutex);
    uint64_t released = 0;
    if (lease_write(lease, KCI_LEASE_RELEASED, term, revision, &released) != KC_OK)
        kci_log(KCI_LOG_DEBUG, "%s", kc_last_error());
    state_lose(lease, KCI_LEASE_LOST_RELEASED, &event);
    lease_report(lease, &event);
}

void kci_lease_close(kci_lease *lease)
{
    if (lease == NULL) return;
    if (lease->thread_started) {
        pthread_mutex_lock(&lease->mutex);
        lease->stopping = true;
        pthread_cond_signal(&lease->wake);
        pthread_mutex_unlock(&lease->mutex);
        pthread_join(lease->thread, NULL);
    }
    lease_release(lease);
    lease_free(lease);
}
