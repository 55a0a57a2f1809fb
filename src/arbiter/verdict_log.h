/* verdict_log.h - the local verdict file, tamper-evident (docs/arbiter.md,
 * "A tamper-evident file").
 *
 * Each line of <data_dir>/arbiter-<id>.verdicts.jsonl carries "prev", the
 * SHA-256 (hex) of the line before it without its LF ("" for the first),
 * the chain of the JetStream stream (verdict_chain.h) with line numbers
 * for sequences: a line changed, removed or slipped in breaks it. A chain
 * alone cannot show that its last lines were cut off, so after every
 * append the arbiter also writes <file>.head, {"lines", "hash", "key",
 * "signature"}: how many lines there are and the hash of the last, signed
 * with its vote key (vote_sign.h; the signed bytes are
 * "kc-verdicts-head:<lines>:<hash>"), written to a temporary file, synced
 * and renamed over the old head. Truncating the file, or bringing back an
 * older head, needs the arbiter's secret key to go unnoticed... except a
 * rollback of both the file and its head to an earlier state together,
 * which only the other arbiters' histories can show.
 *
 * kci_verdict_log_verify reads a file and its head as `kcobra arbiter
 * verdicts --verify --data-dir D --id ID` does, without the arbiter. */
#ifndef KCI_VERDICT_LOG_H
#define KCI_VERDICT_LOG_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "arbiter/verdict_chain.h"
#include "kingcobra/err.h"
#include "ledger/codec.h"

enum {
    KCI_VERDICT_LOG_LINE_BYTES_MAX = 64 * 1024,
    KCI_VERDICT_LOG_HEAD_BYTES_MAX = 1024,
};

#define KCI_VERDICT_LOG_HEAD_SUFFIX ".head"

typedef struct kci_verdict_log_report {
    kci_verdict_chain chain; /* checked: lines; broken, first_broken_seq: line numbers */
    bool head_found;
    bool head_valid;     /* parsed, and its signature verifies with the key */
    uint64_t head_lines; /* what the head says */
    bool head_matches;   /* the file's line head_lines hashes to the head's hash */
    char problem[256];   /* the first problem, in words; "" when intact */
} kci_verdict_log_report;

/* Writes path's head for a file of lines lines ending with hash, signed
 * with the key pair (public_key, secret_key). 0 or an errno. */
int kci_verdict_log_head_write(const char *verdicts_path, uint64_t lines, const char *hash,
                               const uint8_t public_key[KCI_LEDGER_KEY_BYTES],
                               const uint8_t secret_key[KCI_LEDGER_SECRET_BYTES]);

/* Reads the file at verdicts_path (each verdict appended to list when it
 * is not NULL) and its head, and checks both; the head's signature against
 * key when it is not NULL, else against the key the head names. KC_OK when
 * the file could be read (report says whether it is intact: problem[0] ==
 * '\0'); KC_ERR_NOT_FOUND when there is no file. */
kc_err kci_verdict_log_verify(const char *verdicts_path, const uint8_t *key,
                              kci_verdict_log_report *report, json_t *list);

#endif
