/* verdict_log.c - the local verdict file's chain and signed head
 * (verdict_log.h). The head's open, write, sync and rename go through the
 * I/O seam (common/io.h), as the file's own do (verdict.c). */
#include "arbiter/verdict_log.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "arbiter/vote_sign.h"
#include "common/dir.h"
#include "common/io.h"

#define HEAD_CONTEXT "kc-verdicts-head"

static void head_signed_bytes(char *out, size_t size, uint64_t lines, const char *hash)
{
    snprintf(out, size, HEAD_CONTEXT ":%" PRIu64 ":%s", lines, hash);
}

int kci_verdict_log_head_write(const char *verdicts_path, uint64_t lines, const char *hash,
                               const uint8_t public_key[KCI_LEDGER_KEY_BYTES],
                               const uint8_t secret_key[KCI_LEDGER_SECRET_BYTES])
{
    char signed_bytes[128], signature[KCI_VOTE_SIGNATURE_TEXT_BYTES];
    char key[KCI_LEDGER_ADDRESS_TEXT_BYTES + 1], head[KCI_VERDICT_LOG_HEAD_BYTES_MAX];
    head_signed_bytes(signed_bytes, sizeof signed_bytes, lines, hash);
    kci_vote_sign(signature, signed_bytes, strlen(signed_bytes), secret_key);
    kci_ledger_hex(key, public_key, KCI_LEDGER_KEY_BYTES);
    int length = snprintf(head, sizeof head,
                          "{\"lines\":%" PRIu64 ",\"hash\":\"%s\",\"key\":\"%s\",\"signature\":"
                          "\"%s\"}\n",
                          lines, hash, key, signature);
    char path[PATH_MAX], temporary[PATH_MAX];
    int written = snprintf(path, sizeof path, "%s" KCI_VERDICT_LOG_HEAD_SUFFIX, verdicts_path);
    int written_temporary = snprintf(temporary, sizeof temporary, "%s.tmp", path);
    if (length < 0 || (size_t)length >= sizeof head || written < 0 ||
        (size_t)written >= sizeof path || written_temporary < 0 ||
        (size_t)written_temporary >= sizeof temporary)
        return ENAMETOOLONG;
    int fd = kci_io_retry_open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) return errno;
    int error = 0;
    if (kci_io_write_all(fd, head, (size_t)length) != 0 || kci_io_retry_fsync(fd) != 0)
        error = errno;
    kci_io->close(fd);
    if (error == 0 && kci_io->rename(temporary, path) != 0) error = errno;
    if (error != 0) {
        kci_io->unlink(temporary);
        return error;
    }
    char directory[PATH_MAX];
    return kci_parent_directory_sync(path, directory, sizeof directory);
}

/* Reads and checks the head against the report's chain. */
static void check_head(const char *verdicts_path, const uint8_t *key,
                       kci_verdict_log_report *report, const char *hash_at_head)
{
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s" KCI_VERDICT_LOG_HEAD_SUFFIX, verdicts_path);
    json_t *head = json_load_file(path, 0, NULL);
    report->head_found = head != NULL;
    const char *hash = json_string_value(json_object_get(head, "hash"));
    const char *named_key = json_string_value(json_object_get(head, "key"));
    const char *signature = json_string_value(json_object_get(head, "signature"));
    json_t *lines = json_object_get(head, "lines");
    uint8_t head_key[KCI_LEDGER_KEY_BYTES];
    if (hash != NULL && signature != NULL && json_is_integer(lines) &&
        json_integer_value(lines) >= 0 && named_key != NULL &&
        kci_ledger_address_parse(head_key, named_key)) {
        char signed_bytes[128];
        report->head_lines = (uint64_t)json_integer_value(lines);
        head_signed_bytes(signed_bytes, sizeof signed_bytes, report->head_lines, hash);
        report->head_valid = kci_vote_verify(key != NULL ? key : head_key, signature, signed_bytes,
                                             strlen(signed_bytes));
        report->head_matches = report->head_lines <= report->chain.checked &&
                               strcmp(hash, report->head_lines == 0 ? "" : hash_at_head) == 0;
    }
    json_decref(head);
}

/* The first problem, in words. */
static void describe(kci_verdict_log_report *report)
{
    const kci_verdict_chain *chain = &report->chain;
    if (chain->broken > 0)
        snprintf(report->problem, sizeof report->problem,
                 "the hash chain breaks at line %" PRIu64 " (%" PRIu64
                 " break(s)): a line was changed, removed or inserted",
                 chain->first_broken_seq, chain->broken);
    else if (!report->head_found)
        snprintf(report->problem, sizeof report->problem, "no signed head (%s)",
                 KCI_VERDICT_LOG_HEAD_SUFFIX);
    else if (!report->head_valid)
        snprintf(report->problem, sizeof report->problem,
                 "the head's signature does not verify with the arbiter's key");
    else if (report->head_lines > chain->checked)
        snprintf(report->problem, sizeof report->problem,
                 "the file has %" PRIu64 " line(s) but its signed head says %" PRIu64
                 ": the file was truncated",
                 chain->checked, report->head_lines);
    else if (!report->head_matches)
        snprintf(report->problem, sizeof report->problem,
                 "line %" PRIu64 " is not the one the signed head names", report->head_lines);
    else if (report->head_lines < chain->checked)
        snprintf(report->problem, sizeof report->problem,
                 "%" PRIu64 " line(s) after the signed head are not covered by it",
                 chain->checked - report->head_lines);
}

kc_err kci_verdict_log_verify(const char *verdicts_path, const uint8_t *key,
                              kci_verdict_log_report *report, json_t *list)
{
    memset(report, 0, sizeof *report);
    FILE *file = fopen(verdicts_path, "r");
    if (file == NULL) return errno == ENOENT ? KC_ERR_NOT_FOUND : KC_ERR_IO;
    char *line = malloc(KCI_VERDICT_LOG_LINE_BYTES_MAX);
    if (line == NULL) {
        fclose(file);
        return KC_ERR_NOMEM;
    }
    /* The hash of every line is needed only at the head's line: kept as
     * the lines go by, whichever line that turns out to be (read first). */
    char head_path[PATH_MAX];
    snprintf(head_path, sizeof head_path, "%s" KCI_VERDICT_LOG_HEAD_SUFFIX, verdicts_path);
    json_t *head = json_load_file(head_path, 0, NULL);
    json_int_t head_lines = json_integer_value(json_object_get(head, "lines"));
    json_decref(head);
    char hash_at_head[KCI_VERDICT_HASH_HEX_BYTES + 1] = "";
    while (fgets(line, KCI_VERDICT_LOG_LINE_BYTES_MAX, file) != NULL) {
        size_t length = strlen(line);
        if (length == 0 || line[length - 1] != '\n') break; /* a torn last line: not a verdict */
        length--;
        kci_verdict_chain_add(&report->chain, report->chain.last_seq + 1, line, length);
        if ((json_int_t)report->chain.last_seq == head_lines)
            snprintf(hash_at_head, sizeof hash_at_head, "%s", report->chain.last_hash);
        json_t *verdict = list != NULL ? json_loadb(line, length, 0, NULL) : NULL;
        if (verdict != NULL) json_array_append_new(list, verdict);
    }
    bool failed = ferror(file) != 0;
    free(line);
    fclose(file);
    if (failed) return KC_ERR_IO;
    check_head(verdicts_path, key, report, hash_at_head);
    describe(report);
    return KC_OK;
}
