/* result.h - why the ledger refused a request: one exhaustive enum
 * (TigerBeetle's CreateTransferResult), each value with its wire code (the
 * HTTP-like number of Kc-Error and of an error body's "code") and its
 * message.
 *
 * A refusal is a kci_ledger_outcome: the result, and the message sent on
 * the wire. The message is the result's own text unless the refusal names
 * what it refused (a coin, a transfer, an amount): then the call site
 * formats it, so a reply says "double spend refused: coin <id> was already
 * spent by transfer <id>" and a client can act on it. Values are explicit
 * and never reused; the codes are part of the wire format (docs/ledger.md)
 * and several results share one code. */
#ifndef KCI_LEDGER_RESULT_H
#define KCI_LEDGER_RESULT_H

#include <stdbool.h>

#include "ledger/codec.h"

/* HTTP-like codes in Kc-Error and in the "code" of an error body. */
enum {
    KCI_LEDGER_CODE_BAD_REQUEST = 400,   /* malformed, or inconsistent (amount != coins) */
    KCI_LEDGER_CODE_BAD_SIGNATURE = 401, /* the signature does not verify */
    KCI_LEDGER_CODE_UNPAID = 402,        /* a payment claim the transfer does not satisfy */
    KCI_LEDGER_CODE_FORBIDDEN = 403,     /* the mint is not a wallet; minting disabled */
    KCI_LEDGER_CODE_NOT_FOUND = 404,     /* unknown coin or transfer */
    KCI_LEDGER_CODE_CONFLICT = 409,      /* double spend; a reused transfer id; paid already */
    KCI_LEDGER_CODE_TOO_LARGE = 413,
    KCI_LEDGER_CODE_INTERNAL = 500, /* storage failed: nothing of the batch was applied */
    KCI_LEDGER_CODE_BUSY = 503,     /* the request queue is full */
    KCI_LEDGER_CODE_FULL = 507,     /* the LMDB map is full (raise map_size) */
};

typedef enum kci_ledger_result {
    KCI_LEDGER_OK = 0,
    /* The request itself. */
    KCI_LEDGER_BAD_HEADERS = 1,       /* 400: the Kc headers do not parse */
    KCI_LEDGER_MALFORMED = 2,         /* 400: the body does not follow docs/ledger.md */
    KCI_LEDGER_TOO_LARGE = 3,         /* 413: the body is past a named bound */
    KCI_LEDGER_OPERATION_UNKNOWN = 4, /* 404: no such kc.ledger.<operation> */
    /* Transfers and exchanges. */
    KCI_LEDGER_BAD_SIGNATURE = 10,         /* 401: not the payer's signature over it */
    KCI_LEDGER_DENOMINATION_MISMATCH = 11, /* 401: a coin is worth another amount than signed */
    KCI_LEDGER_AMOUNT_MISMATCH = 12,       /* 400: the coins do not add up to the amount */
    KCI_LEDGER_COIN_UNKNOWN = 13,          /* 404 */
    KCI_LEDGER_COIN_NOT_OWNED = 14,        /* 409: the payer never held it */
    KCI_LEDGER_COIN_IS_RETIRED = 15,       /* 409: exchanged, it cannot move */
    KCI_LEDGER_DOUBLE_SPEND = 16,          /* 409: the payer held it and spent it */
    KCI_LEDGER_TRANSFER_ID_REUSED = 17,    /* 409: the id names another transfer */
    KCI_LEDGER_MINT_NOT_A_WALLET = 18,     /* 403: the mint as payer or payee */
    KCI_LEDGER_TRANSFER_UNKNOWN = 19,      /* 404: transfer.get of an unknown id */
    /* Minting. */
    KCI_LEDGER_MINT_DISABLED = 20,   /* 403: another ledger mints */
    KCI_LEDGER_MINT_TO_MINT = 21,    /* 403: the mint cannot mint to itself */
    KCI_LEDGER_SUPPLY_EXCEEDED = 22, /* 400: the total would pass KCI_LEDGER_AMOUNT_MAX */
    /* Payment claims. */
    KCI_LEDGER_PAYMENT_UNKNOWN = 30,      /* 402: no such transfer */
    KCI_LEDGER_PAYMENT_NOT_TRANSFER = 31, /* 402: an issue or an exchange */
    KCI_LEDGER_PAYMENT_WRONG_PAYEE = 32,  /* 402 */
    KCI_LEDGER_PAYMENT_TOO_SMALL = 33,    /* 402: less than the price */
    KCI_LEDGER_PAYMENT_CLAIMED = 34,      /* 409: it paid another request */
    /* The ledger itself. */
    KCI_LEDGER_QUEUE_FULL = 40,     /* 503 */
    KCI_LEDGER_AUDIT_BUSY = 41,     /* 503: one audit at a time */
    KCI_LEDGER_OUT_OF_MEMORY = 42,  /* 500 */
    KCI_LEDGER_STORAGE_FAILED = 43, /* 500: nothing of the batch was applied */
    KCI_LEDGER_STORAGE_FULL = 44,   /* 507: the LMDB map is full */
    KCI_LEDGER_READ_FAILED = 45,    /* 500: a read snapshot could not be taken */
    /* Holds (escrow, store_hold.c). */
    KCI_LEDGER_COIN_IS_HELD = 50,   /* 409: the coin is under a pending hold */
    KCI_LEDGER_HOLD_UNKNOWN = 51,   /* 404: no such hold */
    KCI_LEDGER_HOLD_NOT_PAYEE = 52, /* 403: someone else's hold */
    KCI_LEDGER_HOLD_EXPIRED = 53,   /* 409: past its expiry (the coins went back) */
    KCI_LEDGER_HOLD_POSTED =
        54, /* 409: posted already (void after post; post for another request) */
    KCI_LEDGER_HOLD_VOIDED = 55,     /* 409: voided already (post after void) */
    KCI_LEDGER_HOLD_TOO_SMALL = 56,  /* 402: holds less than the price */
    KCI_LEDGER_HOLD_CLAIMED = 57,    /* 409: claimed for another request */
    KCI_LEDGER_HOLD_BAD_EXPIRY = 58, /* 400: expiry in the past or too far ahead */
} kci_ledger_result;

/* What became of one request: result KCI_LEDGER_OK when it was applied
 * (or replayed), otherwise the refusal and its wire message. */
typedef struct kci_ledger_outcome {
    kci_ledger_result result;
    bool replayed; /* the same transfer was applied before: nothing done again */
    char message[KCI_LEDGER_ERROR_BYTES_MAX];
} kci_ledger_outcome;

/* The wire code of result (0 for KCI_LEDGER_OK). */
int kci_ledger_result_code(kci_ledger_result result);
/* The result's own message (static, never NULL). */
const char *kci_ledger_result_message(kci_ledger_result result);

/* Refuses with the result's own message. */
void kci_ledger_refuse(kci_ledger_outcome *outcome, kci_ledger_result result);
/* Refuses with a message that names what was refused. */
void kci_ledger_refuse_with(kci_ledger_outcome *outcome, kci_ledger_result result,
                            const char *format, ...) __attribute__((format(printf, 3, 4)));

#endif
