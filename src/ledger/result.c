/* result.c - the wire code and the message of each refusal (result.h).
 *
 * Both are switches without a default, so the compiler (-Wswitch, an
 * error under -Dwerror) names a result added to the enum and forgotten
 * here. */
#include "result.h"

#include <assert.h>
#include <stdarg.h>
#include <stdio.h>

int kci_ledger_result_code(kci_ledger_result result)
{
    switch (result) {
    case KCI_LEDGER_OK: return 0;
    case KCI_LEDGER_BAD_HEADERS:
    case KCI_LEDGER_MALFORMED:
    case KCI_LEDGER_AMOUNT_MISMATCH:
    case KCI_LEDGER_SUPPLY_EXCEEDED:
    case KCI_LEDGER_HOLD_BAD_EXPIRY: return KCI_LEDGER_CODE_BAD_REQUEST;
    case KCI_LEDGER_TOO_LARGE: return KCI_LEDGER_CODE_TOO_LARGE;
    case KCI_LEDGER_BAD_SIGNATURE:
    case KCI_LEDGER_DENOMINATION_MISMATCH: return KCI_LEDGER_CODE_BAD_SIGNATURE;
    case KCI_LEDGER_OPERATION_UNKNOWN:
    case KCI_LEDGER_COIN_UNKNOWN:
    case KCI_LEDGER_TRANSFER_UNKNOWN:
    case KCI_LEDGER_HOLD_UNKNOWN: return KCI_LEDGER_CODE_NOT_FOUND;
    case KCI_LEDGER_COIN_NOT_OWNED:
    case KCI_LEDGER_COIN_IS_RETIRED:
    case KCI_LEDGER_DOUBLE_SPEND:
    case KCI_LEDGER_TRANSFER_ID_REUSED:
    case KCI_LEDGER_PAYMENT_CLAIMED:
    case KCI_LEDGER_COIN_IS_HELD:
    case KCI_LEDGER_HOLD_EXPIRED:
    case KCI_LEDGER_HOLD_POSTED:
    case KCI_LEDGER_HOLD_VOIDED:
    case KCI_LEDGER_HOLD_CLAIMED: return KCI_LEDGER_CODE_CONFLICT;
    case KCI_LEDGER_MINT_NOT_A_WALLET:
    case KCI_LEDGER_MINT_DISABLED:
    case KCI_LEDGER_MINT_TO_MINT:
    case KCI_LEDGER_HOLD_NOT_PAYEE: return KCI_LEDGER_CODE_FORBIDDEN;
    case KCI_LEDGER_PAYMENT_UNKNOWN:
    case KCI_LEDGER_PAYMENT_NOT_TRANSFER:
    case KCI_LEDGER_PAYMENT_WRONG_PAYEE:
    case KCI_LEDGER_PAYMENT_TOO_SMALL:
    case KCI_LEDGER_HOLD_TOO_SMALL: return KCI_LEDGER_CODE_UNPAID;
    case KCI_LEDGER_QUEUE_FULL:
    case KCI_LEDGER_AUDIT_BUSY: return KCI_LEDGER_CODE_BUSY;
    case KCI_LEDGER_OUT_OF_MEMORY:
    case KCI_LEDGER_STORAGE_FAILED:
    case KCI_LEDGER_READ_FAILED: return KCI_LEDGER_CODE_INTERNAL;
    case KCI_LEDGER_STORAGE_FULL: return KCI_LEDGER_CODE_FULL;
    }
    return KCI_LEDGER_CODE_INTERNAL; /* not a result: a bug, but never an answer of 0 */
}

const char *kci_ledger_result_message(kci_ledger_result result)
{
    switch (result) {
    case KCI_LEDGER_OK: return "ok";
    case KCI_LEDGER_BAD_HEADERS: return "the KingCobra headers are not valid";
    case KCI_LEDGER_MALFORMED: return "the request does not follow docs/ledger.md";
    case KCI_LEDGER_TOO_LARGE: return "the request is larger than the ledger takes";
    case KCI_LEDGER_OPERATION_UNKNOWN: return "no such ledger operation (see docs/ledger.md)";
    case KCI_LEDGER_BAD_SIGNATURE:
        return "the signature is not the payer's over this transfer (forged, altered, or signed by "
               "another key)";
    case KCI_LEDGER_DENOMINATION_MISMATCH: return "a coin is worth another amount than signed";
    case KCI_LEDGER_AMOUNT_MISMATCH: return "the coins do not add up to the amount";
    case KCI_LEDGER_COIN_UNKNOWN: return "unknown coin";
    case KCI_LEDGER_COIN_NOT_OWNED: return "the coin is not owned by the signer";
    case KCI_LEDGER_COIN_IS_RETIRED: return "the coin was retired by an exchange and cannot move";
    case KCI_LEDGER_DOUBLE_SPEND: return "double spend refused";
    case KCI_LEDGER_TRANSFER_ID_REUSED:
        return "the transfer id is already used by another transfer";
    case KCI_LEDGER_MINT_NOT_A_WALLET:
        return "the mint is not a wallet: it only issues (mint) and takes coins back (exchange)";
    case KCI_LEDGER_TRANSFER_UNKNOWN: return "unknown transfer";
    case KCI_LEDGER_MINT_DISABLED: return "minting is disabled on this ledger";
    case KCI_LEDGER_MINT_TO_MINT: return "the mint cannot mint to itself";
    case KCI_LEDGER_SUPPLY_EXCEEDED: return "minting would take the total supply above its bound";
    case KCI_LEDGER_PAYMENT_UNKNOWN: return "payment: no such transfer in the ledger";
    case KCI_LEDGER_PAYMENT_NOT_TRANSFER: return "payment: not a transfer between wallets";
    case KCI_LEDGER_PAYMENT_WRONG_PAYEE: return "payment: paid another wallet";
    case KCI_LEDGER_PAYMENT_TOO_SMALL: return "payment: less than the price";
    case KCI_LEDGER_PAYMENT_CLAIMED: return "payment: already paid another request";
    case KCI_LEDGER_QUEUE_FULL: return "the ledger is busy (its request queue is full); try again";
    case KCI_LEDGER_AUDIT_BUSY: return "an audit is already running; try again when it is done";
    case KCI_LEDGER_OUT_OF_MEMORY: return "out of memory";
    case KCI_LEDGER_STORAGE_FAILED: return "the ledger could not store this (nothing was applied)";
    case KCI_LEDGER_STORAGE_FULL:
        return "the ledger could not store this (nothing was applied): its map is full";
    case KCI_LEDGER_READ_FAILED: return "cannot read the ledger";
    case KCI_LEDGER_COIN_IS_HELD: return "the coin is held by a pending hold and cannot move";
    case KCI_LEDGER_HOLD_UNKNOWN: return "no such hold";
    case KCI_LEDGER_HOLD_NOT_PAYEE:
        return "the hold pays another wallet: only its payee settles it";
    case KCI_LEDGER_HOLD_EXPIRED: return "the hold expired: its coins went back to the payer";
    case KCI_LEDGER_HOLD_POSTED: return "the hold was posted already";
    case KCI_LEDGER_HOLD_VOIDED: return "the hold was voided: its coins went back to the payer";
    case KCI_LEDGER_HOLD_TOO_SMALL: return "the hold is less than the price";
    case KCI_LEDGER_HOLD_CLAIMED: return "the hold is claimed for another request";
    case KCI_LEDGER_HOLD_BAD_EXPIRY: return "the hold's expiry is past or too far ahead";
    }
    return "unknown ledger result";
}

void kci_ledger_refuse(kci_ledger_outcome *outcome, kci_ledger_result result)
{
    kci_ledger_refuse_with(outcome, result, "%s", kci_ledger_result_message(result));
}

void kci_ledger_refuse_with(kci_ledger_outcome *outcome, kci_ledger_result result,
                            const char *format, ...)
{
    assert(result != KCI_LEDGER_OK);
    assert(outcome->result == KCI_LEDGER_OK); /* one refusal per request */
    outcome->result = result;
    va_list arguments;
    va_start(arguments, format);
    vsnprintf(outcome->message, sizeof outcome->message, format, arguments);
    va_end(arguments);
}
