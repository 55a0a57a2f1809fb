/* price.c - what paid requests actually cost, read from the ledger, and the
 * market's equilibrium price per request type (docs/arbiter.md, "Price
 * fairness").
 *
 * A paid request carries Kc-Pay, the id of the ledger transfer that paid
 * it; nothing in the reply says what it cost (services charge through the
 * ledger, not through a Kc-Price header), so an arbiter that only read
 * replies saw a service charging 5 coins a request as charging nothing
 * (issue 15, finding 4). When a paid request is served (a reply without
 * Kc-Error: a refused one is not charged), the arbiter asks the ledger
 * kc.ledger.transfer.get {"transfer": <Kc-Pay>} (a read any ledger
 * answers, docs/ledger.md) with the reply subject <inbox>.<request id>, on
 * an inbox of its own made at start, and takes the transfer's "amount" as
 * the request's price: the node's price samples get it, and so does the
 * market below. A transfer that names another request as the one it paid
 * ("paid_request") is not this request's price. A ledger that does not
 * know the transfer (a refusal) leaves the price the reply declared
 * (Kc-Price, a JSON "price"), if any. A request paid by an escrow hold
 * (Kc-Pay-Hold) is asked about the same way, and costs the hold's amount
 * once the service posted it (a voided hold charged nothing). No ledger
 * ("no responders"): the
 * arbiter stops asking for LEDGER_RETRY_MS and uses what replies declare
 * meanwhile.
 *
 * The market: the requesters are the buyers, their budgets what they were
 * seen paying; the request types are the goods, their supply the paid
 * requests served; buyer i's utility for type j is how many requests of
 * type j it made. The Fisher market's equilibrium prices (src/econ/
 * equilibrium.h: Eisenberg-Gale) are what such demand and budgets support:
 * for one type, the money spent over the requests served. They are
 * recomputed at a tick after new payments, for the types with at least
 * MARKET_SAMPLES_MIN paid requests, and are the reference price of those
 * types; other types keep the median of the peers' mean prices (judge.c).
 * Bounds: MARKET_GOODS_MAX types and MARKET_BUYERS_MAX buyers (later ones
 * are pooled in the last buyer), MARKET_ASKS_PER_TICK questions a tick. */
#include "arbiter_internal.h"

#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "common/log.h"
#include "econ/equilibrium.h"
#include "service/headers.h"

enum {
    MARKET_GOODS_MAX = 16,
    MARKET_BUYERS_MAX = 256,
    MARKET_SAMPLES_MIN = 10, /* paid requests of a type before its equilibrium counts */
    MARKET_ASKS_PER_TICK = 4096,
    LEDGER_RETRY_MS = 60 * 1000,
    INBOX_BYTES_MAX = 128,
};

#define TRANSFER_GET_SUBJECT "kc.ledger.transfer.get"

typedef struct market_good {
    char type[KCI_OBSERVE_TYPE_BYTES_MAX + 1];
    double equilibrium; /* 0: none (too few samples, or no solution) */
} market_good;

typedef struct market_buyer {
    char name[KC_NODE_BYTES_MAX + 1];
    double spent[MARKET_GOODS_MAX];
    uint32_t demand[MARKET_GOODS_MAX];
} market_buyer;

struct kci_arbiter_market {
    char inbox[INBOX_BYTES_MAX]; /* answers come on <inbox>.<request id> */
    market_good goods[MARKET_GOODS_MAX];
    uint32_t good_count;
    market_buyer buyers[MARKET_BUYERS_MAX];
    uint32_t buyer_count;
    bool dirty; /* payments since the last solve */
    uint32_t asks_this_tick;
    int64_t ledger_retry_ms;
    uint64_t paid_requests; /* priced from the ledger */
};

kc_err kci_arbiter_market_open(kci_arbiter *arbiter)
{
    arbiter->market = calloc(1, sizeof *arbiter->market);
    if (arbiter->market == NULL) return KC_ERR_NOMEM;
    natsInbox *inbox = NULL;
    if (natsInbox_Create(&inbox) != NATS_OK) return KC_ERR_NOMEM;
    snprintf(arbiter->market->inbox, sizeof arbiter->market->inbox, "%s", inbox);
    natsInbox_Destroy(inbox);
    return KC_OK;
}

void kci_arbiter_market_close(kci_arbiter *arbiter)
{
    free(arbiter->market);
    arbiter->market = NULL;
}

const char *kci_arbiter_market_inbox(const kci_arbiter *arbiter)
{
    return arbiter->market->inbox;
}

bool kci_arbiter_price_ask(kci_arbiter *arbiter, kci_observation *observation, int64_t now_ms)
{
    kci_arbiter_market *market = arbiter->market;
    if (market == NULL || observation->pay[0] == '\0' || observation->error_code != 0 ||
        now_ms < market->ledger_retry_ms || market->asks_this_tick >= MARKET_ASKS_PER_TICK)
        return false;
    char reply[INBOX_BYTES_MAX + KC_UUID_TEXT_BYTES + 2], body[64];
    snprintf(reply, sizeof reply, "%s.%s", market->inbox, observation->id);
    /* pay was parsed as a UUID (headers.h): nothing to escape */
    snprintf(body, sizeof body, "{\"transfer\":\"%s\"}", observation->pay);
    if (natsConnection_PublishRequestString(arbiter->connection, TRANSFER_GET_SUBJECT, reply,
                                            body) != NATS_OK)
        return false;
    market->asks_this_tick++;
    /* what the reply declared gives way to what was paid, unless the
     * ledger does not know the transfer */
    observation->price_declared = observation->price;
    observation->price = -1;
    return true;
}

static market_good *good_of(kci_arbiter_market *market, const char *type, uint32_t *index)
{
    for (uint32_t j = 0; j < market->good_count; j++)
        if (strcmp(market->goods[j].type, type) == 0) return *index = j, &market->goods[j];
    if (market->good_count == MARKET_GOODS_MAX) return NULL;
    *index = market->good_count;
    market_good *good = &market->goods[market->good_count++];
    snprintf(good->type, sizeof good->type, "%s", type);
    return good;
}

static market_buyer *buyer_of(kci_arbiter_market *market, const char *name)
{
    for (uint32_t i = 0; i < market->buyer_count; i++)
        if (strcmp(market->buyers[i].name, name) == 0) return &market->buyers[i];
    if (market->buyer_count == MARKET_BUYERS_MAX) return &market->buyers[MARKET_BUYERS_MAX - 1];
    market_buyer *buyer = &market->buyers[market->buyer_count++];
    snprintf(buyer->name, sizeof buyer->name, "%s", name);
    return buyer;
}

/* The request was paid amount: its server's price sample, the market's. */
static void paid(kci_arbiter *arbiter, kci_observation *observation, double amount)
{
    observation->price = amount;
    arbiter_node *server = kci_arbiter_node(arbiter, observation->server, false);
    if (server != NULL) kci_arbiter_price_add(server, observation->type, amount);
    kci_arbiter_market *market = arbiter->market;
    uint32_t j = 0;
    if (good_of(market, observation->type, &j) == NULL) return;
    market_buyer *buyer = buyer_of(market, observation->requester);
    buyer->spent[j] += amount;
    buyer->demand[j]++;
    market->dirty = true;
    market->paid_requests++;
}

/* The ledger could not say: the reply's declared price counts, as for an
 * unpaid request (not in the market: no money was seen). */
static void declared(kci_arbiter *arbiter, kci_observation *observation)
{
    observation->price = observation->price_declared;
    arbiter_node *server = kci_arbiter_node(arbiter, observation->server, false);
    if (server != NULL) kci_arbiter_price_add(server, observation->type, observation->price);
}

/* The ledger's answer is about this request's transfer, and not another's. */
static double answered_amount(json_t *root, const kci_observation *observation)
{
    const char *transfer = json_string_value(json_object_get(root, "transfer"));
    const char *paid_request = json_string_value(json_object_get(root, "paid_request"));
    json_t *amount = json_object_get(root, "amount");
    if (transfer == NULL || strcmp(transfer, observation->pay) != 0 || !json_is_integer(amount) ||
        json_integer_value(amount) < 0)
        return -1;
    if (paid_request != NULL && strcmp(paid_request, observation->id) != 0) return -1;
    /* A hold charges only once posted (a paid service posts it before it
     * answers); a voided or expired one moved nothing. */
    const char *hold_state =
        json_string_value(json_object_get(json_object_get(root, "hold"), "state"));
    if (observation->pay_is_hold && (hold_state == NULL || strcmp(hold_state, "posted") != 0))
        return -1;
    return (double)json_integer_value(amount);
}

void kci_arbiter_on_price_answer(natsConnection *connection, natsSubscription *subscription,
                                 natsMsg *message, void *closure)
{
    (void)connection, (void)subscription;
    kci_arbiter *arbiter = closure;
    const char *subject = natsMsg_GetSubject(message);
    const char *request_id = strrchr(subject, '.') != NULL ? strrchr(subject, '.') + 1 : "";
    const char *error = NULL;
    if (natsMsgHeader_Get(message, KCI_HEADER_ERROR, &error) != NATS_OK) error = NULL;
    bool refused = error != NULL || natsMsg_IsNoResponders(message);
    json_t *root =
        natsMsg_GetDataLength(message) > 0 && error == NULL
            ? json_loadb(natsMsg_GetData(message), (size_t)natsMsg_GetDataLength(message), 0, NULL)
            : NULL;
    int64_t now_ms = kci_monotonic_ms();
    pthread_mutex_lock(&arbiter->lock);
    if (natsMsg_IsNoResponders(message)) {
        if (arbiter->market->ledger_retry_ms <= now_ms)
            kci_info("arbiter %s: no ledger answers %s; prices from what replies declare "
                     "(asking again in %d s)",
                     arbiter->id, TRANSFER_GET_SUBJECT, LEDGER_RETRY_MS / 1000);
        arbiter->market->ledger_retry_ms = now_ms + LEDGER_RETRY_MS;
    }
    kci_observation *observation = kci_observe_get(arbiter->observe, request_id);
    if (observation != NULL && observation->price < 0 && root != NULL) {
        double amount = answered_amount(root, observation);
        if (amount >= 0) paid(arbiter, observation, amount);
    } else if (observation != NULL && observation->price < 0 && refused &&
               observation->price_declared >= 0) {
        declared(arbiter, observation);
    }
    pthread_mutex_unlock(&arbiter->lock);
    json_decref(root);
    natsMsg_Destroy(message);
}

/* The market of the goods with enough samples, as src/econ/market.h reads
 * it; NULL when there is none. */
static json_t *market_json(const kci_arbiter_market *market, uint32_t *included)
{
    json_t *goods = json_array(), *buyers = json_array();
    uint32_t served[MARKET_GOODS_MAX] = {0};
    for (uint32_t i = 0; i < market->buyer_count; i++)
        for (uint32_t j = 0; j < market->good_count; j++)
            served[j] += market->buyers[i].demand[j];
    for (uint32_t j = 0; j < market->good_count; j++) {
        included[j] = served[j] >= MARKET_SAMPLES_MIN;
        if (included[j])
            json_array_append_new(goods, json_pack("{s:s, s:f}", "name", market->goods[j].type,
                                                   "supply", (double)served[j]));
    }
    for (uint32_t i = 0; i < market->buyer_count; i++) {
        const market_buyer *buyer = &market->buyers[i];
        double budget = 0;
        json_t *utilities = json_object();
        for (uint32_t j = 0; j < market->good_count; j++) {
            if (!included[j] || buyer->demand[j] == 0) continue;
            budget += buyer->spent[j];
            json_object_set_new(utilities, market->goods[j].type,
                                json_real((double)buyer->demand[j]));
        }
        if (budget > 0)
            json_array_append_new(buyers, json_pack("{s:s, s:f, s:o}", "name", buyer->name,
                                                    "budget", budget, "utilities", utilities));
        else
            json_decref(utilities);
    }
    if (json_array_size(goods) == 0 || json_array_size(buyers) == 0) {
        json_decref(goods), json_decref(buyers);
        return NULL;
    }
    return json_pack("{s:o, s:o}", "goods", goods, "buyers", buyers);
}

/* Solves the market again after new payments (src/econ/equilibrium.h). */
static void solve(kci_arbiter *arbiter)
{
    kci_arbiter_market *market = arbiter->market;
    uint32_t included[MARKET_GOODS_MAX] = {0};
    json_t *document = market_json(market, included);
    if (document == NULL) return;
    kci_econ_market parsed;
    kci_econ_error error = {{0}};
    memset(&parsed, 0, sizeof parsed);
    kci_econ_equilibrium result;
    memset(&result, 0, sizeof result);
    if (kci_econ_market_from_json(document, &parsed, &error) == KC_OK &&
        kci_econ_equilibrium_solve(&parsed, 0, NULL, NULL, &result, &error) == KC_OK) {
        for (uint32_t j = 0, k = 0; j < market->good_count; j++)
            if (included[j]) market->goods[j].equilibrium = result.prices[k++];
    } else if (kci_arbiter_warn_due(arbiter, kci_monotonic_ms())) {
        kci_warn("arbiter %s: no equilibrium price for the observed market: %s", arbiter->id,
                 error.text);
    }
    kci_econ_equilibrium_free(&result);
    kci_econ_market_free(&parsed);
    json_decref(document);
}

void kci_arbiter_market_tick(kci_arbiter *arbiter)
{
    kci_arbiter_market *market = arbiter->market;
    if (market == NULL) return;
    market->asks_this_tick = 0;
    if (!market->dirty) return;
    market->dirty = false;
    solve(arbiter);
}

double kci_arbiter_price_equilibrium(const kci_arbiter *arbiter, const char *type)
{
    const kci_arbiter_market *market = arbiter->market;
    for (uint32_t j = 0; market != NULL && j < market->good_count; j++)
        if (strcmp(market->goods[j].type, type) == 0) return market->goods[j].equilibrium;
    return 0;
}

uint64_t kci_arbiter_market_paid_requests(const kci_arbiter *arbiter)
{
    return arbiter->market != NULL ? arbiter->market->paid_requests : 0;
}
