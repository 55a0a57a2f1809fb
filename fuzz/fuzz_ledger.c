/* fuzz_ledger.c - libFuzzer target for the ledger's request validator
 * (src/ledger/codec.c, kci_ledger_request_parse).
 *
 * The first input byte picks the operation (every kc.ledger.* one); the
 * rest is the JSON body. Checks on what is accepted:
 *  - amounts, denominations and limits are within their bounds, lists are
 *    non-empty and bounded, a transfer's coins are sorted without
 *    duplicates, an exchange's denominations add up to its amount;
 *  - an accepted transfer, written back with kci_ledger_transfer_json and
 *    parsed again, gives the same transfer (the writer and the reader agree),
 *    and its signing bytes can be built (a hold with its signed expiry);
 *  - a hold expires after it was signed; a claim names its request and a
 *    price, a post or a void no price.
 * Refusals must come with a message. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ledger/codec.h"

#define FUZZ_CHECK(condition)                                                                      \
    do {                                                                                           \
        if (!(condition)) abort();                                                                 \
    } while (0)

static const kci_ledger_operation OPERATIONS[] = {
    KCI_LEDGER_OP_MINT,           KCI_LEDGER_OP_EXCHANGE,     KCI_LEDGER_OP_TRANSFER,
    KCI_LEDGER_OP_TRANSFER_BATCH, KCI_LEDGER_OP_BALANCE,      KCI_LEDGER_OP_COINS,
    KCI_LEDGER_OP_TRAIL,          KCI_LEDGER_OP_HISTORY,      KCI_LEDGER_OP_AUDIT,
    KCI_LEDGER_OP_PAYMENT,        KCI_LEDGER_OP_TRANSFER_GET, KCI_LEDGER_OP_HOLD,
    KCI_LEDGER_OP_HOLD_CLAIM,     KCI_LEDGER_OP_HOLD_POST,    KCI_LEDGER_OP_HOLD_VOID,
};

static void check_transfer(const kci_ledger_transfer *transfer)
{
    FUZZ_CHECK(transfer->coin_count >= 1 &&
               transfer->coin_count <= KCI_LEDGER_COINS_PER_TRANSFER_MAX);
    FUZZ_CHECK(transfer->amount >= 1 && transfer->amount <= KCI_LEDGER_AMOUNT_MAX);
    FUZZ_CHECK(transfer->time_ms >= 0 && transfer->time_ms <= KCI_LEDGER_TIME_MS_MAX);
    for (uint32_t index = 1; index < transfer->coin_count; index++)
        FUZZ_CHECK(memcmp(transfer->coins[index - 1].id, transfer->coins[index].id,
                          KCI_LEDGER_ID_BYTES) < 0);
    uint64_t sum = 0;
    for (uint32_t index = 0; index < transfer->denomination_count; index++) {
        FUZZ_CHECK(transfer->denominations[index] >= 1 &&
                   transfer->denominations[index] <= KCI_LEDGER_AMOUNT_MAX);
        sum += transfer->denominations[index];
    }
    if (transfer->kind == KCI_LEDGER_KIND_EXCHANGE) FUZZ_CHECK(sum == transfer->amount);
    size_t length = 0;
    uint8_t *bytes = kci_ledger_signing_bytes(transfer, &length);
    FUZZ_CHECK(bytes != NULL && length > 0);
    free(bytes);
}

/* Written back and parsed again: the same transfer. */
static void check_roundtrip(const kci_ledger_transfer *transfer, kci_ledger_operation operation)
{
    json_t *object = kci_ledger_transfer_json(transfer);
    char *text = object != NULL ? json_dumps(object, JSON_COMPACT) : NULL;
    json_decref(object);
    if (text == NULL) return; /* out of memory */
    kci_ledger_request again;
    char error[KCI_LEDGER_ERROR_BYTES_MAX];
    FUZZ_CHECK(kci_ledger_request_parse(&again, operation, text, strlen(text), error,
                                        sizeof error) == KC_OK);
    const kci_ledger_transfer *copy = &again.transfers[0];
    FUZZ_CHECK(memcmp(copy->id, transfer->id, KCI_LEDGER_ID_BYTES) == 0);
    FUZZ_CHECK(memcmp(copy->from, transfer->from, KCI_LEDGER_KEY_BYTES) == 0);
    FUZZ_CHECK(copy->amount == transfer->amount && copy->time_ms == transfer->time_ms);
    FUZZ_CHECK(copy->expires_ms == transfer->expires_ms); /* a hold's (signed) expiry */
    FUZZ_CHECK(copy->coin_count == transfer->coin_count);
    FUZZ_CHECK(memcmp(copy->signature, transfer->signature, KCI_LEDGER_SIGNATURE_BYTES) == 0);
    kci_ledger_request_free(&again);
    free(text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    kci_ledger_operation operation =
        OPERATIONS[data[0] % (sizeof OPERATIONS / sizeof OPERATIONS[0])];
    kci_ledger_request request;
    char error[KCI_LEDGER_ERROR_BYTES_MAX] = {0};
    kc_err err = kci_ledger_request_parse(&request, operation, (const char *)data + 1, size - 1,
                                          error, sizeof error);
    if (err != KC_OK) {
        FUZZ_CHECK(error[0] != '\0');
        return 0;
    }
    for (uint32_t index = 0; index < request.transfer_count; index++)
        check_transfer(&request.transfers[index]);
    if (operation == KCI_LEDGER_OP_TRANSFER || operation == KCI_LEDGER_OP_EXCHANGE ||
        operation == KCI_LEDGER_OP_HOLD)
        check_roundtrip(&request.transfers[0], operation);
    if (operation == KCI_LEDGER_OP_HOLD)
        FUZZ_CHECK(request.transfers[0].expires_ms > request.transfers[0].time_ms);
    /* A claim names its request and a price; a post or void no price. */
    if (operation == KCI_LEDGER_OP_HOLD_CLAIM)
        FUZZ_CHECK(request.request_id[0] != '\0' && request.min_amount >= 1);
    if (operation == KCI_LEDGER_OP_HOLD_POST || operation == KCI_LEDGER_OP_HOLD_VOID)
        FUZZ_CHECK(request.min_amount == 0);
    for (uint32_t index = 0; index < request.grant_count; index++)
        FUZZ_CHECK(request.grants[index].denomination_count >= 1 &&
                   request.grants[index].denomination_count <= KCI_LEDGER_DENOMINATIONS_MAX);
    if (operation == KCI_LEDGER_OP_HISTORY || operation == KCI_LEDGER_OP_COINS)
        FUZZ_CHECK(request.limit >= 1 && request.limit <= KCI_LEDGER_PAGE_MAX);
    kci_ledger_request_free(&request);
    return 0;
}
