/* batch_codec.c - the replicated log's entries (batch_codec.h): the
 * encoder the active ledger's writer uses, and the checking decoder every
 * replica runs on what it reads from the stream. */
#include "batch_codec.h"

#include <assert.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "service/uuid.h"

enum {
    LOG_CAPACITY_FIRST = 4096,
    COIN_BYTES = KCI_LEDGER_ID_BYTES + 8,
    OP_COUNT_OFFSET = KCI_LEDGER_LOG_HEAD_BYTES - 4,
    /* The least bytes an op of each kind takes: bounds counts before allocations. */
    TRANSFER_BYTES_MIN = 1 + KCI_LEDGER_ID_BYTES + 2 * KCI_LEDGER_KEY_BYTES + 8 + 8 + 4 +
                         COIN_BYTES + KCI_LEDGER_SIGNATURE_BYTES,
    GRANT_BYTES_MIN = KCI_LEDGER_KEY_BYTES + 4 + KCI_LEDGER_ID_BYTES + COIN_BYTES,
};

_Static_assert(KCI_LEDGER_LOG_HEAD_BYTES == 76, "the entry head's layout");

/* ======================================================================= encoder */

static void put_bytes(kci_ledger_log_writer *writer, const void *bytes, size_t length)
{
    if (writer->failed) return;
    if (writer->length + length > writer->capacity) {
        size_t capacity = writer->capacity > 0 ? writer->capacity : LOG_CAPACITY_FIRST;
        while (capacity < writer->length + length)
            capacity *= 2;
        uint8_t *grown = realloc(writer->bytes, capacity);
        if (grown == NULL) {
            writer->failed = true;
            return;
        }
        writer->bytes = grown;
        writer->capacity = capacity;
    }
    memcpy(writer->bytes + writer->length, bytes, length);
    writer->length += length;
}

static void put_u64(kci_ledger_log_writer *writer, uint64_t value)
{
    uint8_t bytes[8];
    for (int index = 0; index < 8; index++)
        bytes[index] = (uint8_t)(value >> (56 - 8 * index));
    put_bytes(writer, bytes, sizeof bytes);
}

static void put_u32(kci_ledger_log_writer *writer, uint32_t value)
{
    uint8_t bytes[4] = {(uint8_t)(value >> 24), (uint8_t)(value >> 16), (uint8_t)(value >> 8),
                        (uint8_t)value};
    put_bytes(writer, bytes, sizeof bytes);
}

static void put_u8(kci_ledger_log_writer *writer, uint8_t value)
{
    put_bytes(writer, &value, 1);
}

static void put_coins(kci_ledger_log_writer *writer, const kci_ledger_coin *coins, uint32_t count)
{
    for (uint32_t index = 0; index < count; index++) {
        assert(index == 0 || memcmp(coins[index - 1].id, coins[index].id, KCI_LEDGER_ID_BYTES) < 0);
        put_bytes(writer, coins[index].id, KCI_LEDGER_ID_BYTES);
        put_u64(writer, coins[index].denomination);
    }
}

void kci_ledger_log_begin(kci_ledger_log_writer *writer, const uint8_t id[KCI_LEDGER_ID_BYTES],
                          uint64_t term, int64_t now_ms, const uint8_t mint[KCI_LEDGER_KEY_BYTES])
{
    assert(now_ms >= 0 && now_ms <= KCI_LEDGER_TIME_MS_MAX);
    *writer = (kci_ledger_log_writer){0};
    put_bytes(writer, KCI_LEDGER_LOG_MAGIC, 4);
    static const uint8_t version[4] = {KCI_LEDGER_LOG_VERSION, 0, 0, 0};
    put_bytes(writer, version, sizeof version);
    put_bytes(writer, id, KCI_LEDGER_ID_BYTES);
    put_u64(writer, term);
    put_u64(writer, (uint64_t)now_ms);
    put_bytes(writer, mint, KCI_LEDGER_KEY_BYTES);
    put_u32(writer, 0); /* the op count, written by finish */
    assert(writer->failed || writer->length == KCI_LEDGER_LOG_HEAD_BYTES);
}

static void put_transfer_head(kci_ledger_log_writer *writer, const kci_ledger_transfer *transfer,
                              bool with_to)
{
    assert(transfer->coin_count > 0 && transfer->coin_count <= KCI_LEDGER_COINS_PER_TRANSFER_MAX);
    put_bytes(writer, transfer->id, KCI_LEDGER_ID_BYTES);
    put_bytes(writer, transfer->from, KCI_LEDGER_KEY_BYTES);
    if (with_to) put_bytes(writer, transfer->to, KCI_LEDGER_KEY_BYTES);
    put_u64(writer, transfer->amount);
    put_u64(writer, (uint64_t)transfer->time_ms);
    put_u32(writer, transfer->coin_count);
    put_coins(writer, transfer->coins, transfer->coin_count);
    put_bytes(writer, transfer->signature, KCI_LEDGER_SIGNATURE_BYTES);
}

void kci_ledger_log_put_transfer(kci_ledger_log_writer *writer, const kci_ledger_transfer *transfer)
{
    assert(transfer->kind == KCI_LEDGER_KIND_TRANSFER);
    put_u8(writer, KCI_LEDGER_LOG_TRANSFER);
    put_transfer_head(writer, transfer, true);
    writer->op_count++;
}

void kci_ledger_log_put_exchange(kci_ledger_log_writer *writer, const kci_ledger_transfer *exchange,
                                 const uint8_t issue_id[KCI_LEDGER_ID_BYTES],
                                 const kci_ledger_coin *coins)
{
    assert(exchange->kind == KCI_LEDGER_KIND_EXCHANGE && exchange->denomination_count > 0);
    put_u8(writer, KCI_LEDGER_LOG_EXCHANGE);
    put_transfer_head(writer, exchange, false);
    put_u32(writer, exchange->denomination_count);
    for (uint32_t index = 0; index < exchange->denomination_count; index++) {
        assert(coins[index].denomination == exchange->denominations[index]);
        put_u64(writer, exchange->denominations[index]);
    }
    put_bytes(writer, issue_id, KCI_LEDGER_ID_BYTES);
    for (uint32_t index = 0; index < exchange->denomination_count; index++)
        put_bytes(writer, coins[index].id, KCI_LEDGER_ID_BYTES);
    writer->op_count++;
}

void kci_ledger_log_put_mint(kci_ledger_log_writer *writer, const kci_ledger_grant *grants,
                             uint32_t grant_count, const uint8_t (*issue_ids)[KCI_LEDGER_ID_BYTES],
                             kci_ledger_coin *const *coins)
{
    assert(grant_count > 0 && grant_count <= KCI_LEDGER_GRANTS_MAX);
    put_u8(writer, KCI_LEDGER_LOG_MINT);
    put_u32(writer, grant_count);
    for (uint32_t index = 0; index < grant_count; index++) {
        const kci_ledger_grant *grant = &grants[index];
        put_bytes(writer, grant->to, KCI_LEDGER_KEY_BYTES);
        put_u32(writer, grant->denomination_count);
        put_bytes(writer, issue_ids[index], KCI_LEDGER_ID_BYTES);
        put_coins(writer, coins[index], grant->denomination_count);
    }
    writer->op_count++;
}

void kci_ledger_log_put_payment(kci_ledger_log_writer *writer,
                                const uint8_t transfer[KCI_LEDGER_ID_BYTES],
                                const uint8_t payee[KCI_LEDGER_KEY_BYTES], uint64_t min_amount,
                                const char *request_id)
{
    uint8_t request[KCI_LEDGER_ID_BYTES];
    bool parsed = kci_ledger_id_parse(request, request_id);
    assert(parsed); /* the request parser made it canonical UUID text */
    (void)parsed;
    put_u8(writer, KCI_LEDGER_LOG_PAYMENT);
    put_bytes(writer, transfer, KCI_LEDGER_ID_BYTES);
    put_bytes(writer, payee, KCI_LEDGER_KEY_BYTES);
    put_u64(writer, min_amount);
    put_bytes(writer, request, KCI_LEDGER_ID_BYTES);
    writer->op_count++;
}

void kci_ledger_log_put_reap(kci_ledger_log_writer *writer, int64_t age_ms, uint32_t count_max)
{
    assert(age_ms >= 0 && count_max > 0 && count_max <= KCI_LEDGER_LOG_REAP_COUNT_MAX);
    put_u8(writer, KCI_LEDGER_LOG_REAP);
    put_u64(writer, (uint64_t)age_ms);
    put_u32(writer, count_max);
    writer->op_count++;
}

void kci_ledger_log_put_hold(kci_ledger_log_writer *writer, const kci_ledger_transfer *hold)
{
    assert(hold->kind == KCI_LEDGER_KIND_HOLD);
    assert(hold->expires_ms > hold->time_ms && hold->expires_ms <= KCI_LEDGER_TIME_MS_MAX);
    put_u8(writer, KCI_LEDGER_LOG_HOLD);
    put_transfer_head(writer, hold, true);
    put_u64(writer, (uint64_t)hold->expires_ms);
    writer->op_count++;
}

void kci_ledger_log_put_settle(kci_ledger_log_writer *writer, kci_ledger_settle settle,
                               const uint8_t hold[KCI_LEDGER_ID_BYTES],
                               const uint8_t payee[KCI_LEDGER_KEY_BYTES], const char *request_id,
                               uint64_t min_amount,
                               const uint8_t signature[KCI_LEDGER_SIGNATURE_BYTES])
{
    assert(settle >= KCI_LEDGER_SETTLE_CLAIM && settle <= KCI_LEDGER_SETTLE_VOID);
    assert(min_amount <= KCI_LEDGER_AMOUNT_MAX);
    uint8_t request[KCI_LEDGER_ID_BYTES] = {0};
    bool parsed = request_id[0] == '\0' || kci_ledger_id_parse(request, request_id);
    assert(parsed); /* the request parser made it canonical UUID text */
    (void)parsed;
    put_u8(writer, KCI_LEDGER_LOG_SETTLE);
    put_u8(writer, (uint8_t)settle);
    put_bytes(writer, hold, KCI_LEDGER_ID_BYTES);
    put_bytes(writer, payee, KCI_LEDGER_KEY_BYTES);
    put_bytes(writer, request, KCI_LEDGER_ID_BYTES);
    put_u64(writer, min_amount);
    put_bytes(writer, signature, KCI_LEDGER_SIGNATURE_BYTES);
    writer->op_count++;
}

void kci_ledger_log_put_expire(kci_ledger_log_writer *writer, uint32_t count_max)
{
    assert(count_max > 0 && count_max <= KCI_LEDGER_LOG_REAP_COUNT_MAX);
    put_u8(writer, KCI_LEDGER_LOG_EXPIRE);
    put_u32(writer, count_max);
    writer->op_count++;
}

kci_ledger_log_mark kci_ledger_log_mark_get(const kci_ledger_log_writer *writer)
{
    return (kci_ledger_log_mark){.length = writer->length, .op_count = writer->op_count};
}

void kci_ledger_log_cut(kci_ledger_log_writer *writer, kci_ledger_log_mark mark)
{
    assert(mark.length >= KCI_LEDGER_LOG_HEAD_BYTES && mark.length <= writer->length);
    assert(mark.op_count <= writer->op_count);
    writer->length = mark.length;
    writer->op_count = mark.op_count;
}

kc_err kci_ledger_log_finish(kci_ledger_log_writer *writer)
{
    if (writer->failed) return KC_ERR_NOMEM;
    assert(writer->length >= KCI_LEDGER_LOG_HEAD_BYTES);
    assert(writer->op_count <= KCI_LEDGER_LOG_OPS_MAX);
    for (int index = 0; index < 4; index++)
        writer->bytes[OP_COUNT_OFFSET + index] = (uint8_t)(writer->op_count >> (24 - 8 * index));
    return KC_OK;
}

void kci_ledger_log_writer_free(kci_ledger_log_writer *writer)
{
    free(writer->bytes);
    *writer = (kci_ledger_log_writer){0};
}

/* ======================================================================= decoder */

/* A cursor over the entry; the first failure sticks, with its reason. */
typedef struct reader {
    const uint8_t *bytes;
    size_t length, position;
    const char *problem; /* NULL while everything read so far is good */
} reader;

static bool fail(reader *in, const char *problem)
{
    if (in->problem == NULL) in->problem = problem;
    return false;
}

static bool take(reader *in, void *out, size_t length)
{
    if (in->problem != NULL) return false;
    if (in->length - in->position < length) return fail(in, "the entry ends early");
    memcpy(out, in->bytes + in->position, length);
    in->position += length;
    return true;
}

static uint64_t take_u64(reader *in)
{
    uint8_t bytes[8] = {0};
    take(in, bytes, sizeof bytes);
    uint64_t value = 0;
    for (int index = 0; index < 8; index++)
        value = value << 8 | bytes[index];
    return value;
}

static uint32_t take_u32(reader *in)
{
    uint8_t bytes[4] = {0};
    take(in, bytes, sizeof bytes);
    return (uint32_t)bytes[0] << 24 | (uint32_t)bytes[1] << 16 | (uint32_t)bytes[2] << 8 | bytes[3];
}

static size_t left(const reader *in)
{
    return in->length - in->position;
}

/* A count in 1..maximum whose items (item_bytes each at least) fit in
 * what is left: so no allocation is larger than the entry itself. */
static uint32_t take_count(reader *in, uint32_t maximum, size_t item_bytes, const char *what)
{
    uint32_t count = take_u32(in);
    if (in->problem != NULL) return 0;
    if (count == 0 || count > maximum || (size_t)count * item_bytes > left(in)) {
        fail(in, what);
        return 0;
    }
    return count;
}

static bool amount_valid(uint64_t amount)
{
    return amount >= 1 && amount <= KCI_LEDGER_AMOUNT_MAX;
}

/* count coins (ids strictly increasing), with denominations unless
 * denominations_from gives them. */
static bool take_coins(reader *in, kci_ledger_coin *coins, uint32_t count,
                       const uint64_t *denominations_from)
{
    for (uint32_t index = 0; index < count; index++) {
        take(in, coins[index].id, KCI_LEDGER_ID_BYTES);
        coins[index].denomination =
            denominations_from != NULL ? denominations_from[index] : take_u64(in);
        if (in->problem != NULL) return false;
        if (!amount_valid(coins[index].denomination))
            return fail(in, "a coin's denomination is out of range");
        if (index > 0 && memcmp(coins[index - 1].id, coins[index].id, KCI_LEDGER_ID_BYTES) >= 0)
            return fail(in, "coins are not sorted by id, or one is named twice");
    }
    return true;
}

static bool take_transfer(reader *in, kci_ledger_transfer *transfer, kci_ledger_kind kind,
                          const uint8_t mint[KCI_LEDGER_KEY_BYTES])
{
    transfer->kind = (uint8_t)kind;
    take(in, transfer->id, KCI_LEDGER_ID_BYTES);
    take(in, transfer->from, KCI_LEDGER_KEY_BYTES);
    if (kind == KCI_LEDGER_KIND_EXCHANGE)
        memcpy(transfer->to, mint, KCI_LEDGER_KEY_BYTES);
    else
        take(in, transfer->to, KCI_LEDGER_KEY_BYTES);
    transfer->amount = take_u64(in);
    uint64_t time_ms = take_u64(in);
    transfer->time_ms = (int64_t)(time_ms & INT64_MAX);
    transfer->coin_count =
        take_count(in, KCI_LEDGER_COINS_PER_TRANSFER_MAX, COIN_BYTES, "a transfer's coin count");
    if (in->problem != NULL) return false;
    if (!amount_valid(transfer->amount)) return fail(in, "a transfer's amount is out of range");
    if (time_ms > (uint64_t)KCI_LEDGER_TIME_MS_MAX)
        return fail(in, "a transfer's time_ms is out of range");
    if (memcmp(transfer->from, transfer->to, KCI_LEDGER_KEY_BYTES) == 0)
        return fail(in, "a transfer pays its own payer");
    transfer->coins = calloc(transfer->coin_count, sizeof *transfer->coins);
    if (transfer->coins == NULL) return fail(in, "out of memory");
    if (!take_coins(in, transfer->coins, transfer->coin_count, NULL)) return false;
    return take(in, transfer->signature, KCI_LEDGER_SIGNATURE_BYTES);
}

/* The op's issue arrays for count issues. */
static bool issues_alloc(reader *in, kci_ledger_log_op *op, uint32_t count)
{
    op->issue_ids = calloc(count, sizeof *op->issue_ids);
    op->issued = calloc(count, sizeof *op->issued);
    if (op->issue_ids == NULL || op->issued == NULL) return fail(in, "out of memory");
    op->issue_count = count;
    return true;
}

static bool take_exchange(reader *in, kci_ledger_log_op *op, const uint8_t mint[])
{
    kci_ledger_transfer *exchange = &op->transfer;
    if (!take_transfer(in, exchange, KCI_LEDGER_KIND_EXCHANGE, mint)) return false;
    uint32_t count = take_count(in, KCI_LEDGER_DENOMINATIONS_MAX, 8 + KCI_LEDGER_ID_BYTES,
                                "an exchange's asked count");
    if (in->problem != NULL) return false;
    exchange->denomination_count = count;
    exchange->denominations = calloc(count, sizeof *exchange->denominations);
    if (exchange->denominations == NULL) return fail(in, "out of memory");
    uint64_t sum = 0; /* at most 1024 x 2^53: no overflow */
    for (uint32_t index = 0; index < count; index++) {
        exchange->denominations[index] = take_u64(in);
        if (in->problem == NULL && !amount_valid(exchange->denominations[index]))
            return fail(in, "an asked denomination is out of range");
        sum += exchange->denominations[index];
    }
    if (in->problem == NULL && sum != exchange->amount)
        return fail(in, "an exchange's asked coins do not add up to its amount");
    if (!issues_alloc(in, op, 1)) return false;
    op->issued[0] = calloc(count, sizeof(kci_ledger_coin));
    if (op->issued[0] == NULL) return fail(in, "out of memory");
    take(in, op->issue_ids[0], KCI_LEDGER_ID_BYTES);
    return take_coins(in, op->issued[0], count, exchange->denominations);
}

static bool take_grant(reader *in, kci_ledger_log_op *op, uint32_t index)
{
    kci_ledger_grant *grant = &op->grants[index];
    take(in, grant->to, KCI_LEDGER_KEY_BYTES);
    uint32_t count =
        take_count(in, KCI_LEDGER_DENOMINATIONS_MAX, COIN_BYTES, "a grant's coin count");
    take(in, op->issue_ids[index], KCI_LEDGER_ID_BYTES);
    if (in->problem != NULL) return false;
    grant->denomination_count = count;
    grant->denominations = calloc(count, sizeof *grant->denominations);
    op->issued[index] = calloc(count, sizeof(kci_ledger_coin));
    if (grant->denominations == NULL || op->issued[index] == NULL) return fail(in, "out of memory");
    if (!take_coins(in, op->issued[index], count, NULL)) return false;
    uint64_t sum = 0;
    for (uint32_t coin = 0; coin < count; coin++) {
        grant->denominations[coin] = op->issued[index][coin].denomination;
        sum += grant->denominations[coin];
    }
    if (sum > KCI_LEDGER_AMOUNT_MAX) return fail(in, "a grant is worth more than the supply bound");
    return true;
}

static bool take_mint(reader *in, kci_ledger_log_op *op)
{
    uint32_t count = take_count(in, KCI_LEDGER_GRANTS_MAX, GRANT_BYTES_MIN, "a mint's grant count");
    if (in->problem != NULL) return false;
    op->grants = calloc(count, sizeof *op->grants);
    if (op->grants == NULL) return fail(in, "out of memory");
    if (!issues_alloc(in, op, count)) return false;
    for (uint32_t index = 0; index < count; index++) {
        op->grant_count = index + 1; /* what to free */
        if (!take_grant(in, op, index)) return false;
    }
    return true;
}

static bool take_hold(reader *in, kci_ledger_log_op *op, const uint8_t mint[])
{
    if (!take_transfer(in, &op->transfer, KCI_LEDGER_KIND_HOLD, mint)) return false;
    uint64_t expires_ms = take_u64(in);
    op->transfer.expires_ms = (int64_t)(expires_ms & INT64_MAX);
    if (in->problem == NULL && (expires_ms > (uint64_t)KCI_LEDGER_TIME_MS_MAX ||
                                op->transfer.expires_ms <= op->transfer.time_ms))
        return fail(in, "a hold's expiry is out of range");
    return in->problem == NULL;
}

static bool take_settle(reader *in, kci_ledger_log_op *op)
{
    uint8_t settle = 0, request[KCI_LEDGER_ID_BYTES], zero[KCI_LEDGER_ID_BYTES] = {0};
    take(in, &settle, 1);
    op->settle = (kci_ledger_settle)settle;
    take(in, op->paid_transfer, KCI_LEDGER_ID_BYTES);
    take(in, op->payee, KCI_LEDGER_KEY_BYTES);
    take(in, request, sizeof request);
    op->min_amount = take_u64(in);
    take(in, op->signature, KCI_LEDGER_SIGNATURE_BYTES);
    if (in->problem != NULL) return false;
    if (settle < KCI_LEDGER_SETTLE_CLAIM || settle > KCI_LEDGER_SETTLE_VOID)
        return fail(in, "a settle of unknown kind");
    if (op->min_amount > KCI_LEDGER_AMOUNT_MAX ||
        (op->min_amount == 0) != (settle != KCI_LEDGER_SETTLE_CLAIM))
        return fail(in, "a settle's minimum is out of range");
    if (memcmp(request, zero, sizeof zero) == 0) {
        if (settle == KCI_LEDGER_SETTLE_CLAIM) return fail(in, "a claim names no request");
        op->request_id[0] = '\0';
        return true;
    }
    kci_ledger_id_text(op->request_id, request);
    uint8_t parsed[KCI_LEDGER_ID_BYTES];
    if (!kci_ledger_id_parse(parsed, op->request_id))
        return fail(in, "a settle's request id is not a UUID");
    return true;
}

static bool take_op(reader *in, kci_ledger_log_op *op, const uint8_t mint[])
{
    uint8_t kind = 0;
    if (!take(in, &kind, 1)) return false;
    op->kind = (kci_ledger_log_kind)kind;
    switch (kind) {
    case KCI_LEDGER_LOG_MINT: return take_mint(in, op);
    case KCI_LEDGER_LOG_TRANSFER:
        return take_transfer(in, &op->transfer, KCI_LEDGER_KIND_TRANSFER, mint);
    case KCI_LEDGER_LOG_EXCHANGE: return take_exchange(in, op, mint);
    case KCI_LEDGER_LOG_PAYMENT: {
        uint8_t request[KCI_LEDGER_ID_BYTES];
        take(in, op->paid_transfer, KCI_LEDGER_ID_BYTES);
        take(in, op->payee, KCI_LEDGER_KEY_BYTES);
        op->min_amount = take_u64(in);
        take(in, request, sizeof request);
        kci_ledger_id_text(op->request_id, request);
        uint8_t parsed[KCI_LEDGER_ID_BYTES];
        if (in->problem == NULL && op->min_amount > KCI_LEDGER_AMOUNT_MAX)
            return fail(in, "a payment's minimum is out of range");
        /* What the request parser takes for a Kc-Id (not the nil UUID...). */
        if (in->problem == NULL && !kci_ledger_id_parse(parsed, op->request_id))
            return fail(in, "a payment's request id is not a UUID");
        return in->problem == NULL;
    }
    case KCI_LEDGER_LOG_REAP: {
        uint64_t age_ms = take_u64(in);
        op->reap_count_max = take_u32(in);
        op->reap_age_ms = (int64_t)(age_ms & INT64_MAX);
        if (in->problem == NULL &&
            (age_ms > (uint64_t)KCI_LEDGER_TIME_MS_MAX || op->reap_count_max == 0 ||
             op->reap_count_max > KCI_LEDGER_LOG_REAP_COUNT_MAX))
            return fail(in, "a reap's age or count is out of range");
        return in->problem == NULL;
    }
    case KCI_LEDGER_LOG_HOLD: return take_hold(in, op, mint);
    case KCI_LEDGER_LOG_SETTLE: return take_settle(in, op);
    case KCI_LEDGER_LOG_EXPIRE:
        op->expire_count_max = take_u32(in);
        if (in->problem == NULL &&
            (op->expire_count_max == 0 || op->expire_count_max > KCI_LEDGER_LOG_REAP_COUNT_MAX))
            return fail(in, "an expire's count is out of range");
        return in->problem == NULL;
    default: return fail(in, "an op of unknown kind");
    }
}

static bool take_head(reader *in, kci_ledger_log_entry *out)
{
    uint8_t magic[4] = {0}, version[4] = {0};
    take(in, magic, sizeof magic);
    take(in, version, sizeof version);
    if (in->problem != NULL) return false;
    if (memcmp(magic, KCI_LEDGER_LOG_MAGIC, 4) != 0) return fail(in, "not a ledger log entry");
    if (version[0] != KCI_LEDGER_LOG_VERSION || version[1] != 0 || version[2] != 0 ||
        version[3] != 0)
        return fail(in, "a ledger log entry of another version");
    take(in, out->id, KCI_LEDGER_ID_BYTES);
    out->term = take_u64(in);
    uint64_t now_ms = take_u64(in);
    out->now_ms = (int64_t)(now_ms & INT64_MAX);
    take(in, out->mint, KCI_LEDGER_KEY_BYTES);
    uint32_t count = take_u32(in);
    if (in->problem != NULL) return false;
    if (now_ms > (uint64_t)KCI_LEDGER_TIME_MS_MAX)
        return fail(in, "the entry's time is out of range");
    /* Every op takes at least 2 bytes (a kind and something). */
    if (count > KCI_LEDGER_LOG_OPS_MAX || (size_t)count * 2 > left(in))
        return fail(in, "the entry's op count is out of range");
    out->op_count = count;
    return true;
}

kc_err kci_ledger_log_decode(kci_ledger_log_entry *out, const uint8_t *bytes, size_t length,
                             char *error, size_t error_size)
{
    *out = (kci_ledger_log_entry){0};
    reader in = {.bytes = bytes, .length = length};
    if (length > KCI_LEDGER_LOG_BYTES_MAX) fail(&in, "the entry is too large");
    if (take_head(&in, out) && out->op_count > 0) {
        out->ops = calloc(out->op_count, sizeof *out->ops);
        if (out->ops == NULL) fail(&in, "out of memory");
    }
    uint32_t decoded = 0;
    for (; in.problem == NULL && decoded < out->op_count; decoded++)
        take_op(&in, &out->ops[decoded], out->mint);
    if (in.problem == NULL && left(&in) != 0) fail(&in, "bytes after the last op");
    if (in.problem == NULL) return KC_OK;
    snprintf(error, error_size, "ledger log entry: %s (at byte %zu)", in.problem, in.position);
    return strcmp(in.problem, "out of memory") == 0 ? KC_ERR_NOMEM : KC_ERR_PARSE;
}

static void op_free(kci_ledger_log_op *op)
{
    kci_ledger_transfer_free(&op->transfer);
    for (uint32_t index = 0; op->grants != NULL && index < op->grant_count; index++)
        free(op->grants[index].denominations);
    free(op->grants);
    for (uint32_t index = 0; op->issued != NULL && index < op->issue_count; index++)
        free(op->issued[index]);
    free(op->issued);
    free(op->issue_ids);
}

void kci_ledger_log_entry_free(kci_ledger_log_entry *entry)
{
    if (entry == NULL) return;
    for (uint32_t index = 0; entry->ops != NULL && index < entry->op_count; index++)
        op_free(&entry->ops[index]);
    free(entry->ops);
    *entry = (kci_ledger_log_entry){0};
}
