/* codec.h - the ledger's data on the wire: addresses and signatures as hex,
 * the canonical bytes a transfer signs (docs/ledger.md, "Signing"), and the
 * parser/validator of the JSON request bodies of kc.ledger.* (the fuzz
 * target fuzz/fuzz_ledger.c runs it).
 *
 * Every check on a request that does not need the ledger's state is made
 * here, before the request reaches the writer: ids are UUIDs, addresses and
 * signatures are hex of the right length, amounts are integers in
 * 1 .. KCI_LEDGER_AMOUNT_MAX, lists are non-empty, bounded and without
 * duplicates, sums do not overflow. */
#ifndef KCI_LEDGER_CODEC_H
#define KCI_LEDGER_CODEC_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kingcobra/err.h"
#include "ledger/settle_sign.h"

enum {
    KCI_LEDGER_ID_BYTES = 16,        /* a UUIDv7: coin and transfer ids */
    KCI_LEDGER_KEY_BYTES = 32,       /* an Ed25519 public key: a wallet's address */
    KCI_LEDGER_SECRET_BYTES = 64,    /* libsodium's Ed25519 secret key (seed + public) */
    KCI_LEDGER_SIGNATURE_BYTES = 64, /* Ed25519 detached signature */
    KCI_LEDGER_ADDRESS_TEXT_BYTES = 2 * KCI_LEDGER_KEY_BYTES,         /* hex, without NUL */
    KCI_LEDGER_SIGNATURE_TEXT_BYTES = 2 * KCI_LEDGER_SIGNATURE_BYTES, /* hex, without NUL */
    KCI_LEDGER_COINS_PER_TRANSFER_MAX = 1024,
    KCI_LEDGER_DENOMINATIONS_MAX = 1024, /* coins one mint grant or exchange makes */
    KCI_LEDGER_GRANTS_MAX = 1024,        /* grants in one mint request */
    KCI_LEDGER_BATCH_MAX = 4096,         /* transfers in one transfer.batch */
    KCI_LEDGER_PAGE_MAX = 10000,         /* items in one coins or history page */
    KCI_LEDGER_ERROR_BYTES_MAX = 256,
};

/* 2^53 - 1: every JSON reader holds it exactly. Bounds each amount, each
 * denomination and the total supply (so no balance can overflow either). */
#define KCI_LEDGER_AMOUNT_MAX ((uint64_t)9007199254740991)
/* The largest time_ms accepted: the 48 bits of a UUIDv7's time. */
#define KCI_LEDGER_TIME_MS_MAX ((int64_t)0xFFFFFFFFFFFF)
/* What a transfer's signature begins with (domain separation). */
#define KCI_LEDGER_SIGNING_PREFIX "kingcobra-ledger"
#define KCI_LEDGER_SIGNING_VERSION 1

/* What a signed move is. An issue is the mint's first hop of new coins; an
 * exchange moves coins back to the mint, which retires them and issues
 * coins of the asked denominations (same total) to the owner. */
typedef enum kci_ledger_kind {
    KCI_LEDGER_KIND_ISSUE = 1,
    KCI_LEDGER_KIND_TRANSFER = 2,
    KCI_LEDGER_KIND_EXCHANGE = 3,
    KCI_LEDGER_KIND_HOLD = 4, /* escrow: coins held for the payee until post, void or expiry */
} kci_ledger_kind;

/* A hold lasts at least 1 ms and at most this long from the ledger's clock. */
#define KCI_LEDGER_HOLD_MS_MAX ((int64_t)7 * 24 * 3600 * 1000)

typedef struct kci_ledger_coin {
    uint8_t id[KCI_LEDGER_ID_BYTES];
    uint64_t denomination; /* 0 until looked up (a request names coins by id) */
} kci_ledger_coin;

/* A signed move of coins. coins are sorted by id, without duplicates. For
 * an exchange, to is the mint's address and denominations are the coins
 * asked for in return (their sum is amount). */
typedef struct kci_ledger_transfer {
    uint8_t id[KCI_LEDGER_ID_BYTES];
    uint8_t kind; /* kci_ledger_kind */
    uint8_t from[KCI_LEDGER_KEY_BYTES];
    uint8_t to[KCI_LEDGER_KEY_BYTES];
    uint64_t amount;
    int64_t time_ms;
    int64_t expires_ms; /* a hold: when it returns to the payer (signed); 0 otherwise */
    uint32_t coin_count;
    kci_ledger_coin *coins; /* malloc'd */
    uint32_t denomination_count;
    uint64_t *denominations; /* malloc'd; exchange only */
    uint8_t signature[KCI_LEDGER_SIGNATURE_BYTES];
} kci_ledger_transfer;

void kci_ledger_transfer_free(kci_ledger_transfer *transfer);

/* ---- hex --------------------------------------------------------------- */

/* Lower-case hex of bytes into text (2 * length + 1 bytes). */
void kci_ledger_hex(char *text, const uint8_t *bytes, size_t length);
/* Exactly 2 * length hex digits (either case); false otherwise. */
bool kci_ledger_unhex(uint8_t *bytes, size_t length, const char *text, size_t text_length);
/* An address from its hex text. */
bool kci_ledger_address_parse(uint8_t address[KCI_LEDGER_KEY_BYTES], const char *text);

/* ---- signing ------------------------------------------------------------- */

/* The canonical bytes of transfer (its coins sorted, their denominations
 * known): malloc'd, length in *length. NULL when out of memory. */
uint8_t *kci_ledger_signing_bytes(const kci_ledger_transfer *transfer, size_t *length);
/* Signs transfer with secret_key into transfer->signature. */
kc_err kci_ledger_sign(kci_ledger_transfer *transfer,
                       const uint8_t secret_key[KCI_LEDGER_SECRET_BYTES]);
/* True when transfer->signature is signer's over the canonical bytes. */
bool kci_ledger_verify(const kci_ledger_transfer *transfer,
                       const uint8_t signer[KCI_LEDGER_KEY_BYTES]);
/* Sorts the coins by id; false if two are the same coin. */
bool kci_ledger_coins_sort(kci_ledger_coin *coins, uint32_t coin_count);

/* ---- requests ------------------------------------------------------------ */

typedef enum kci_ledger_operation {
    KCI_LEDGER_OP_UNKNOWN = 0,
    KCI_LEDGER_OP_MINT,
    KCI_LEDGER_OP_EXCHANGE,
    KCI_LEDGER_OP_TRANSFER,
    KCI_LEDGER_OP_TRANSFER_BATCH,
    KCI_LEDGER_OP_BALANCE,
    KCI_LEDGER_OP_COINS,
    KCI_LEDGER_OP_TRAIL,
    KCI_LEDGER_OP_HISTORY,
    KCI_LEDGER_OP_AUDIT,
    KCI_LEDGER_OP_PAYMENT,
    KCI_LEDGER_OP_TRANSFER_GET,
    KCI_LEDGER_OP_HOLD,
    KCI_LEDGER_OP_HOLD_CLAIM,
    KCI_LEDGER_OP_HOLD_POST,
    KCI_LEDGER_OP_HOLD_VOID,
} kci_ledger_operation;

/* Formats a failure's text into error (error_size bytes) and returns err:
 * the one helper for the ledger's functions that report into their
 * caller's buffer (the request parser, the key files). */
kc_err kci_ledger_fail(char *error, size_t error_size, kc_err err, const char *format, ...)
    __attribute__((format(printf, 4, 5)));

/* The operation a subject names ("kc.ledger.transfer.batch" ...). */
kci_ledger_operation kci_ledger_operation_from_subject(const char *subject);
/* The settle an operation names (0 for none). */
kci_ledger_settle kci_ledger_settle_of(kci_ledger_operation operation);
const char *kci_ledger_operation_name(kci_ledger_operation operation);

typedef struct kci_ledger_grant {
    uint8_t to[KCI_LEDGER_KEY_BYTES];
    uint32_t denomination_count;
    uint64_t *denominations; /* malloc'd */
} kci_ledger_grant;

/* A parsed, validated request body. */
typedef struct kci_ledger_request {
    kci_ledger_operation operation;
    /* mint */
    uint32_t grant_count;
    kci_ledger_grant *grants;
    bool has_mint_id; /* "id": the client's; a retry with it mints nothing more */
    uint8_t mint_id[KCI_LEDGER_ID_BYTES];
    /* transfer, exchange (count 1) and transfer.batch */
    uint32_t transfer_count;
    kci_ledger_transfer *transfers;
    /* balance, coins */
    uint8_t wallet[KCI_LEDGER_KEY_BYTES];
    /* trail: coin; payment and transfer.get: transfer */
    uint8_t coin[KCI_LEDGER_ID_BYTES];
    uint8_t transfer[KCI_LEDGER_ID_BYTES];
    /* payment */
    uint8_t payee[KCI_LEDGER_KEY_BYTES];
    uint64_t min_amount;
    char request_id[37]; /* the paid request's Kc-Id, canonical text ("" : none) */
    /* hold.claim, hold.post, hold.void: transfer is the hold, payee signs */
    uint8_t signature[KCI_LEDGER_SIGNATURE_BYTES];
    /* coins, history: paging */
    int64_t since_ms;
    bool has_after;
    uint8_t after[KCI_LEDGER_ID_BYTES]; /* coins: the last coin id of the previous page */
    uint64_t after_sequence;            /* history: the cursor */
    uint32_t limit;
} kci_ledger_request;

/* Parses body for operation; on failure returns KC_ERR_PARSE (or
 * KC_ERR_TOO_LARGE, KC_ERR_INVALID_ARGUMENT) with the reason in error. */
kc_err kci_ledger_request_parse(kci_ledger_request *out, kci_ledger_operation operation,
                                const char *body, size_t body_length, char *error,
                                size_t error_size);
void kci_ledger_request_free(kci_ledger_request *request);

/* ---- building requests (clients: kcobra, the benchmark, tests) ------------ */

/* The JSON object of a signed transfer or exchange (new reference). */
json_t *kci_ledger_transfer_json(const kci_ledger_transfer *transfer);
/* A UUID's canonical text (37 bytes with NUL) and back. */
void kci_ledger_id_text(char text[37], const uint8_t id[KCI_LEDGER_ID_BYTES]);
bool kci_ledger_id_parse(uint8_t id[KCI_LEDGER_ID_BYTES], const char *text);

#endif
