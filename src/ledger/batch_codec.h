/* batch_codec.h - the entries of the ledger's replicated log (storage
 * jetstream, docs/ledger.md "Replicated on JetStream"): one entry is one
 * write batch of the active ledger, with everything applying it needs, so
 * a replica replays it with no clock, no randomness and no signature check
 * and ends with the same bytes as every other replica.
 *
 * An entry (integers big-endian):
 *   head   "KCLB", version u8 (1), 3 zero bytes, entry id (16: the writer
 *          recognises its own entry after an answer was lost), the writer's
 *          lease term u64, now_ms i64 (the batch's clock: history times,
 *          issues' time_ms, the reaper's age), the mint's public key (32),
 *          op count u32
 *   ops    each a kind u8 then:
 *     1 mint      grant count u32; per grant: to (32), coin count u32, issue
 *                 id (16), per coin: id (16), denomination u64
 *     2 transfer  id (16), from (32), to (32), amount u64, time_ms i64,
 *                 coin count u32, per coin: id (16), denomination u64,
 *                 signature (64)
 *     3 exchange  a transfer without "to" (the mint), then asked count u32,
 *                 each asked u64, the issue id (16), one new coin id (16)
 *                 per asked denomination
 *     4 payment   transfer id (16), payee (32), min amount u64, request id
 *                 (16: a UUID, the Kc-Id of the paid request)
 *     5 reap      age_ms i64, count max u32
 *     6 hold      a transfer (as 2), then expires_ms i64
 *     7 settle    settle u8 (1 claim, 2 post, 3 void), hold id (16), payee
 *                 (32), request id (16; all zero: none), min amount u64
 *                 (claim; 0 otherwise), the payee's signature (64)
 *     8 expire    count max u32: holds due at the entry's now_ms go back
 * Expiry is decided only by now_ms, so every replica expires the same
 * holds (docs/ledger.md, "Escrow").
 * An entry with no ops opens the log ("genesis"): it names the mint, and a
 * replica whose mint key differs refuses to follow.
 *
 * The decoder is the parser of bytes from the network: it checks every
 * bound and every rule the state transitions assert (coins sorted, sums,
 * payer and payee apart, counts) and refuses trailing bytes; fuzz target
 * fuzz/fuzz_ledger_batch.c. An entry arrives whole (one stream message),
 * so it is a bounded cursor over a buffer, not a resumable machine. */
#ifndef KCI_LEDGER_BATCH_CODEC_H
#define KCI_LEDGER_BATCH_CODEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kingcobra/err.h"
#include "ledger/codec.h"

#define KCI_LEDGER_LOG_MAGIC "KCLB"

enum {
    KCI_LEDGER_LOG_VERSION = 1,
    KCI_LEDGER_LOG_HEAD_BYTES = 4 + 4 + KCI_LEDGER_ID_BYTES + 8 + 8 + KCI_LEDGER_KEY_BYTES + 4,
    KCI_LEDGER_LOG_OPS_MAX = 65536,              /* ops in one entry */
    KCI_LEDGER_LOG_BYTES_MAX = 64 * 1024 * 1024, /* far above any server's max_payload */
    KCI_LEDGER_LOG_REAP_COUNT_MAX = 1024,        /* coins one reap op may free */
};

typedef enum kci_ledger_log_kind {
    KCI_LEDGER_LOG_MINT = 1,
    KCI_LEDGER_LOG_TRANSFER = 2,
    KCI_LEDGER_LOG_EXCHANGE = 3,
    KCI_LEDGER_LOG_PAYMENT = 4,
    KCI_LEDGER_LOG_REAP = 5,
    KCI_LEDGER_LOG_HOLD = 6,
    KCI_LEDGER_LOG_SETTLE = 7,
    KCI_LEDGER_LOG_EXPIRE = 8,
} kci_ledger_log_kind;

/* One op of an entry, decoded (owns its arrays). */
typedef struct kci_ledger_log_op {
    kci_ledger_log_kind kind;
    kci_ledger_transfer transfer; /* transfer; exchange (to: the entry's mint) */
    uint32_t grant_count;         /* mint */
    kci_ledger_grant *grants;
    uint32_t issue_count;                       /* mint: one per grant; exchange: 1 */
    uint8_t (*issue_ids)[KCI_LEDGER_ID_BYTES];  /* the issues' ids */
    kci_ledger_coin **issued;                   /* their coins, sorted by id */
    uint8_t paid_transfer[KCI_LEDGER_ID_BYTES]; /* payment */
    uint8_t payee[KCI_LEDGER_KEY_BYTES];
    uint64_t min_amount;
    char request_id[37];
    int64_t reap_age_ms; /* reap */
    uint32_t reap_count_max;
    kci_ledger_settle settle; /* settle: paid_transfer is the hold, payee signs */
    uint8_t signature[KCI_LEDGER_SIGNATURE_BYTES];
    uint32_t expire_count_max; /* expire */
} kci_ledger_log_op;

typedef struct kci_ledger_log_entry {
    uint8_t id[KCI_LEDGER_ID_BYTES];
    uint64_t term;
    int64_t now_ms;
    uint8_t mint[KCI_LEDGER_KEY_BYTES];
    uint32_t op_count;
    kci_ledger_log_op *ops;
} kci_ledger_log_entry;

/* Decodes and checks an entry; KC_ERR_PARSE (or KC_ERR_NOMEM) with the
 * reason in error. out is freed with kci_ledger_log_entry_free either way. */
kc_err kci_ledger_log_decode(kci_ledger_log_entry *out, const uint8_t *bytes, size_t length,
                             char *error, size_t error_size);
void kci_ledger_log_entry_free(kci_ledger_log_entry *entry);

/* ---- the writer's side ------------------------------------------------------- */

typedef struct kci_ledger_log_writer {
    uint8_t *bytes;
    size_t length, capacity;
    uint32_t op_count;
    bool failed; /* out of memory: finish reports it */
} kci_ledger_log_writer;

/* Where the writer is, to cut an entry back to it (an op that made it too big). */
typedef struct kci_ledger_log_mark {
    size_t length;
    uint32_t op_count;
} kci_ledger_log_mark;

void kci_ledger_log_begin(kci_ledger_log_writer *writer, const uint8_t id[KCI_LEDGER_ID_BYTES],
                          uint64_t term, int64_t now_ms, const uint8_t mint[KCI_LEDGER_KEY_BYTES]);
/* The callers pass what the state transitions accept (a verified request):
 * the encoder asserts it. */
void kci_ledger_log_put_transfer(kci_ledger_log_writer *writer,
                                 const kci_ledger_transfer *transfer);
void kci_ledger_log_put_exchange(kci_ledger_log_writer *writer, const kci_ledger_transfer *exchange,
                                 const uint8_t issue_id[KCI_LEDGER_ID_BYTES],
                                 const kci_ledger_coin *coins);
void kci_ledger_log_put_mint(kci_ledger_log_writer *writer, const kci_ledger_grant *grants,
                             uint32_t grant_count, const uint8_t (*issue_ids)[KCI_LEDGER_ID_BYTES],
                             kci_ledger_coin *const *coins);
void kci_ledger_log_put_payment(kci_ledger_log_writer *writer,
                                const uint8_t transfer[KCI_LEDGER_ID_BYTES],
                                const uint8_t payee[KCI_LEDGER_KEY_BYTES], uint64_t min_amount,
                                const char *request_id);
void kci_ledger_log_put_reap(kci_ledger_log_writer *writer, int64_t age_ms, uint32_t count_max);
void kci_ledger_log_put_hold(kci_ledger_log_writer *writer, const kci_ledger_transfer *hold);
/* request_id: "" for none. */
void kci_ledger_log_put_settle(kci_ledger_log_writer *writer, kci_ledger_settle settle,
                               const uint8_t hold[KCI_LEDGER_ID_BYTES],
                               const uint8_t payee[KCI_LEDGER_KEY_BYTES], const char *request_id,
                               uint64_t min_amount,
                               const uint8_t signature[KCI_LEDGER_SIGNATURE_BYTES]);
void kci_ledger_log_put_expire(kci_ledger_log_writer *writer, uint32_t count_max);
kci_ledger_log_mark kci_ledger_log_mark_get(const kci_ledger_log_writer *writer);
void kci_ledger_log_cut(kci_ledger_log_writer *writer, kci_ledger_log_mark mark);
/* Writes the op count: the entry is writer->bytes, writer->length bytes.
 * KC_ERR_NOMEM if an append failed. */
kc_err kci_ledger_log_finish(kci_ledger_log_writer *writer);
void kci_ledger_log_writer_free(kci_ledger_log_writer *writer);

#endif
