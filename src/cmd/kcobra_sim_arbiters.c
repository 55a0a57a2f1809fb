/* kcobra_sim_arbiters.c - the simulator's arbiters' keys, and its corrupt
 * arbiters.
 *
 * Keys: every arbiter signs its votes (src/arbiter/vote_sign.h), and a
 * vote counts only when signed by the key configured for the id it claims
 * once peer_keys are configured. Without them an arbiter's own valid
 * signature under another arbiter's id would count, so the simulator makes
 * every arbiter's key file (<directory>/data/arbiter-<id>.key, the path
 * the arbiter loads from its data_dir) before kcobrad starts, and tells
 * every arbiter, kcobrad's included, all the peers' keys.
 *
 * A corrupt arbiter (--corrupt-arbiters K, the last K ids) is an insider:
 * its key is a configured one. Instead of judging, it signs wrong votes
 * every SIM_CORRUPT_VOTE_PERIOD_MS: quarantine for every honest node,
 * clear for every corrupt node already quarantined, and the same votes
 * under the other arbiters' ids, signed with its own key (forgeries). With
 * n = 3f + 1 and at most f corrupt, its votes never reach the 2f + 1 a
 * verdict needs unless honest arbiters agree, which is what the CI case
 * checks (no honest node quarantined). */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "arbiter/vote_sign.h"
#include "common/clock.h"
#include "kcobra_sim.h"
#include "ledger/wallet.h"
#include "service/component.h"

void kcobra_sim_arbiter_id(const sim *s, uint32_t index, char id[SIM_NAME_BYTES])
{
    /* With --server, the server may host arbiters of its own: other ids. */
    snprintf(id, SIM_NAME_BYTES, "%sarbiter-%u", s->server_given ? "sim-" : "", index);
}

bool kcobra_sim_arbiter_corrupt(const sim *s, uint32_t index)
{
    return index >= (uint32_t)s->options.arbiters - s->corrupt_arbiter_count;
}

static bool key_path(const sim *s, const char *id, char path[SIM_PATH_BYTES])
{
    int written = snprintf(path, SIM_PATH_BYTES, "%s/arbiter-%s.key", s->data_dir, id);
    return written > 0 && written < SIM_PATH_BYTES;
}

int kcobra_sim_keys_make(sim *s)
{
    if (s->directory[0] == '\0') {
        snprintf(s->directory, sizeof s->directory, "/tmp/kcobra-sim-XXXXXX");
        if (mkdtemp(s->directory) == NULL) {
            kcobra_error("sim: cannot make a temporary directory: %s", strerror(errno));
            s->directory[0] = '\0';
            return KCOBRA_EXIT_FAILURE;
        }
    }
    snprintf(s->data_dir, sizeof s->data_dir, "%.400s/data", s->directory);
    if (mkdir(s->data_dir, 0700) != 0 && errno != EEXIST) {
        kcobra_error("sim: cannot make %s: %s", s->data_dir, strerror(errno));
        return KCOBRA_EXIT_FAILURE;
    }
    for (uint32_t a = 0; a < (uint32_t)s->options.arbiters; a++) {
        char id[SIM_NAME_BYTES], path[SIM_PATH_BYTES], error[256] = "";
        kcobra_sim_arbiter_id(s, a, id);
        kci_wallet wallet;
        if (!key_path(s, id, path) ||
            kci_wallet_load_or_create(&wallet, path, error, sizeof error) != KC_OK) {
            kcobra_error("sim: cannot make %s's vote key: %s", id, error);
            return KCOBRA_EXIT_FAILURE;
        }
        char address[KCI_VOTE_KEY_TEXT_BYTES];
        kci_wallet_address(address, &wallet);
        kci_wallet_wipe(&wallet);
        snprintf(s->peer_keys[a], sizeof s->peer_keys[a], "%s=%s", id, address);
    }
    s->keys_made = true;
    return KCOBRA_EXIT_OK;
}

/* ---- a corrupt arbiter -------------------------------------------------------- */

typedef struct corrupt_context {
    sim *s;
    uint32_t index;
    kci_wallet key;
} corrupt_context;

/* One simulation per process (kcobra sim): its corrupt arbiters' state. */
static corrupt_context contexts[SIM_ARBITERS_MAX];

static void sign_and_publish(corrupt_context *context, const char *claimed, const char *node,
                             bool quarantine, uint32_t epoch)
{
    sim *s = context->s;
    char body[512];
    int length = snprintf(body, sizeof body,
                          "{\"arbiter\":\"%s\",\"node\":\"%s\",\"vote\":\"%s\",\"epoch\":%u,"
                          "\"reasons\":[\"wrong\"],\"ts_ms\":%lld}",
                          claimed, node, quarantine ? "quarantine" : "clear", epoch,
                          (long long)kci_wall_ms());
    natsMsg *message = NULL;
    if (length <= 0 || (size_t)length >= sizeof body ||
        natsMsg_Create(&message, "kc.arbiter.vote", NULL, body, length) != NATS_OK)
        return;
    char key[KCI_VOTE_KEY_TEXT_BYTES], signature[KCI_VOTE_SIGNATURE_TEXT_BYTES];
    kci_wallet_address(key, &context->key);
    kci_vote_sign(signature, body, (size_t)length, context->key.secret_key);
    if (natsMsgHeader_Set(message, KCI_VOTE_KEY_HEADER, key) == NATS_OK &&
        natsMsgHeader_Set(message, KCI_VOTE_SIGNATURE_HEADER, signature) == NATS_OK &&
        natsConnection_PublishMsg(kci_client_connection(s->corrupt_arbiter_clients[context->index]),
                                  message) == NATS_OK)
        atomic_fetch_add(&s->corrupt_votes_sent, 1);
    natsMsg_Destroy(message);
}

/* One round of wrong votes: under its own id, and forged under the others'. */
static void vote_round(corrupt_context *context)
{
    sim *s = context->s;
    char own[SIM_NAME_BYTES];
    kcobra_sim_arbiter_id(s, context->index, own);
    for (uint32_t i = 0; i < s->node_count; i++) {
        pthread_mutex_lock(&s->lock);
        const sim_node *node = &s->nodes[i];
        bool honest = node->behaviour == 0, quarantined = node->quarantined;
        uint32_t epoch = node->epoch;
        pthread_mutex_unlock(&s->lock);
        if (!honest && !quarantined) continue; /* withholds its vote from the corrupt */
        for (uint32_t a = 0; a < (uint32_t)s->options.arbiters; a++) {
            char claimed[SIM_NAME_BYTES];
            kcobra_sim_arbiter_id(s, a, claimed);
            sign_and_publish(context, a == context->index ? own : claimed, node->name, honest,
                             epoch);
        }
    }
}

static void *corrupt_main(void *argument)
{
    corrupt_context *context = argument;
    while (!atomic_load(&context->s->stop)) {
        vote_round(context);
        kcobra_sim_sleep_ms(SIM_CORRUPT_VOTE_PERIOD_MS);
    }
    kci_wallet_wipe(&context->key);
    return NULL;
}

int kcobra_sim_corrupt_arbiter_start(sim *s, uint32_t index, kc_client *client)
{
    char id[SIM_NAME_BYTES], path[SIM_PATH_BYTES], error[256] = "";
    kcobra_sim_arbiter_id(s, index, id);
    corrupt_context *context = &contexts[index];
    context->s = s, context->index = index;
    if (!s->keys_made || !key_path(s, id, path) ||
        kci_wallet_load(&context->key, path, error, sizeof error) != KC_OK) {
        kcobra_error("sim: corrupt %s has no key: %s", id, error);
        return KCOBRA_EXIT_FAILURE;
    }
    s->corrupt_arbiter_clients[index] = client;
    s->corrupt_arbiter_started[index] =
        pthread_create(&s->corrupt_arbiter_threads[index], NULL, corrupt_main, context) == 0;
    return s->corrupt_arbiter_started[index] ? KCOBRA_EXIT_OK : KCOBRA_EXIT_FAILURE;
}

void kcobra_sim_corrupt_arbiters_stop(sim *s)
{
    for (uint32_t a = 0; a < SIM_ARBITERS_MAX; a++) {
        if (s->corrupt_arbiter_started[a]) pthread_join(s->corrupt_arbiter_threads[a], NULL);
        s->corrupt_arbiter_started[a] = false;
        if (s->corrupt_arbiter_clients[a] != NULL)
            kc_client_close(s->corrupt_arbiter_clients[a], SIM_CLOSE_TIMEOUT_MS);
        s->corrupt_arbiter_clients[a] = NULL;
    }
}
