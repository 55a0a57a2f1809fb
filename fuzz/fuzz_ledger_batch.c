/* fuzz_ledger_batch.c - libFuzzer target for the replicated ledger's log
 * entries (src/ledger/batch_codec.c, kci_ledger_log_decode): the bytes a
 * replica reads from the stream.
 *
 * Checks on what is accepted: every count and amount within its bound,
 * coins sorted without duplicates, an exchange's asked coins adding up to
 * its amount, payer and payee apart, a hold expiring after it was signed, a
 * settle of a known kind (a claim with a request and a price); and the entry, encoded again from
 * what was decoded, is the very same bytes (one encoding per entry, so the
 * chain digest of the bytes means the ops). Refusals come with a message. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ledger/batch_codec.h"

#define FUZZ_CHECK(condition)                                                                      \
    do {                                                                                           \
        if (!(condition)) abort();                                                                 \
    } while (0)

static void check_coins(const kci_ledger_coin *coins, uint32_t count)
{
    for (uint32_t index = 0; index < count; index++) {
        FUZZ_CHECK(coins[index].denomination >= 1 &&
                   coins[index].denomination <= KCI_LEDGER_AMOUNT_MAX);
        FUZZ_CHECK(index == 0 ||
                   memcmp(coins[index - 1].id, coins[index].id, KCI_LEDGER_ID_BYTES) < 0);
    }
}

/* Checks op and encodes it again into writer. */
static void check_and_encode(const kci_ledger_log_op *op, kci_ledger_log_writer *writer)
{
    const kci_ledger_transfer *transfer = &op->transfer;
    switch (op->kind) {
    case KCI_LEDGER_LOG_MINT:
        FUZZ_CHECK(op->grant_count >= 1 && op->grant_count <= KCI_LEDGER_GRANTS_MAX);
        for (uint32_t index = 0; index < op->grant_count; index++)
            check_coins(op->issued[index], op->grants[index].denomination_count);
        kci_ledger_log_put_mint(writer, op->grants, op->grant_count,
                                (const uint8_t(*)[KCI_LEDGER_ID_BYTES])op->issue_ids, op->issued);
        return;
    case KCI_LEDGER_LOG_TRANSFER:
    case KCI_LEDGER_LOG_EXCHANGE:
        FUZZ_CHECK(transfer->amount >= 1 && transfer->amount <= KCI_LEDGER_AMOUNT_MAX);
        FUZZ_CHECK(memcmp(transfer->from, transfer->to, KCI_LEDGER_KEY_BYTES) != 0);
        check_coins(transfer->coins, transfer->coin_count);
        if (op->kind == KCI_LEDGER_LOG_TRANSFER) {
            kci_ledger_log_put_transfer(writer, transfer);
            return;
        }
        uint64_t sum = 0;
        for (uint32_t index = 0; index < transfer->denomination_count; index++)
            sum += transfer->denominations[index];
        FUZZ_CHECK(sum == transfer->amount);
        check_coins(op->issued[0], transfer->denomination_count);
        kci_ledger_log_put_exchange(writer, transfer, op->issue_ids[0], op->issued[0]);
        return;
    case KCI_LEDGER_LOG_PAYMENT:
        FUZZ_CHECK(op->min_amount <= KCI_LEDGER_AMOUNT_MAX);
        kci_ledger_log_put_payment(writer, op->paid_transfer, op->payee, op->min_amount,
                                   op->request_id);
        return;
    case KCI_LEDGER_LOG_REAP:
        FUZZ_CHECK(op->reap_count_max >= 1 && op->reap_count_max <= KCI_LEDGER_LOG_REAP_COUNT_MAX);
        kci_ledger_log_put_reap(writer, op->reap_age_ms, op->reap_count_max);
        return;
    case KCI_LEDGER_LOG_HOLD:
        FUZZ_CHECK(transfer->kind == KCI_LEDGER_KIND_HOLD);
        FUZZ_CHECK(transfer->amount >= 1 && transfer->amount <= KCI_LEDGER_AMOUNT_MAX);
        FUZZ_CHECK(memcmp(transfer->from, transfer->to, KCI_LEDGER_KEY_BYTES) != 0);
        FUZZ_CHECK(transfer->expires_ms > transfer->time_ms &&
                   transfer->expires_ms <= KCI_LEDGER_TIME_MS_MAX);
        check_coins(transfer->coins, transfer->coin_count);
        kci_ledger_log_put_hold(writer, transfer);
        return;
    case KCI_LEDGER_LOG_SETTLE:
        FUZZ_CHECK(op->settle >= KCI_LEDGER_SETTLE_CLAIM && op->settle <= KCI_LEDGER_SETTLE_VOID);
        FUZZ_CHECK((op->min_amount > 0) == (op->settle == KCI_LEDGER_SETTLE_CLAIM));
        FUZZ_CHECK(op->settle != KCI_LEDGER_SETTLE_CLAIM || op->request_id[0] != '\0');
        kci_ledger_log_put_settle(writer, op->settle, op->paid_transfer, op->payee, op->request_id,
                                  op->min_amount, op->signature);
        return;
    case KCI_LEDGER_LOG_EXPIRE:
        FUZZ_CHECK(op->expire_count_max >= 1 &&
                   op->expire_count_max <= KCI_LEDGER_LOG_REAP_COUNT_MAX);
        kci_ledger_log_put_expire(writer, op->expire_count_max);
        return;
    default: FUZZ_CHECK(false);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    kci_ledger_log_entry entry;
    char error[KCI_LEDGER_ERROR_BYTES_MAX] = "";
    kc_err err = kci_ledger_log_decode(&entry, data, size, error, sizeof error);
    if (err != KC_OK) {
        FUZZ_CHECK(error[0] != '\0');
        kci_ledger_log_entry_free(&entry);
        return 0;
    }
    kci_ledger_log_writer writer;
    kci_ledger_log_begin(&writer, entry.id, entry.term, entry.now_ms, entry.mint);
    for (uint32_t index = 0; index < entry.op_count; index++)
        check_and_encode(&entry.ops[index], &writer);
    FUZZ_CHECK(kci_ledger_log_finish(&writer) == KC_OK);
    FUZZ_CHECK(writer.length == size && memcmp(writer.bytes, data, size) == 0);
    kci_ledger_log_writer_free(&writer);
    kci_ledger_log_entry_free(&entry);
    return 0;
}
