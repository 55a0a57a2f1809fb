/* fuzz_conf.c - libFuzzer target for the config parser and the options built
 * from its trees.
 *
 * Each input is parsed whole with kci_conf_parse, then again through the
 * resumable parser in pieces whose sizes come from a generator seeded by the
 * input, so splits land at awkward points (inside escapes, between '/' and
 * '/', at the end of a bare value). The two results must be the same: the
 * same code, the same message, the same tree. A tree that parses is applied
 * to default options and validated, which must end in KC_OK or
 * KC_ERR_CONFIG. Include is off in kci_conf_parse, so no file is read; $VAR
 * may read the environment, which stays fixed for a run. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "broker/options.h"
#include "common/conf.h"
#include "common/log.h"

enum {
    FUZZ_PIECE_BYTES_MAX = 17,
    FUZZ_ERROR_BYTES = KCI_CONF_ERROR_BYTES_MAX,
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool values_equal(const kci_conf_value *a, const kci_conf_value *b)
{
    if (a->kind != b->kind || a->line != b->line) return false;
    switch (a->kind) {
    case KCI_CONF_STRING: return strcmp(a->as.string, b->as.string) == 0;
    case KCI_CONF_INTEGER: return a->as.integer == b->as.integer;
    case KCI_CONF_FLOAT: return a->as.real == b->as.real;
    case KCI_CONF_BOOL: return a->as.boolean == b->as.boolean;
    case KCI_CONF_MAP:
        if (a->as.map.count != b->as.map.count) return false;
        for (size_t i = 0; i < a->as.map.count; i++) {
            if (strcmp(a->as.map.entries[i].key, b->as.map.entries[i].key) != 0) return false;
            if (!values_equal(&a->as.map.entries[i].value, &b->as.map.entries[i].value))
                return false;
        }
        return true;
    case KCI_CONF_ARRAY:
        if (a->as.array.count != b->as.array.count) return false;
        for (size_t i = 0; i < a->as.array.count; i++)
            if (!values_equal(&a->as.array.items[i], &b->as.array.items[i])) return false;
        return true;
    }
    return false;
}

/* The same text through the resumable parser in pseudo-random pieces. */
static kc_err parse_in_pieces(const uint8_t *data, size_t size, kci_conf_value **out, char *error)
{
    kci_conf_parser *parser = NULL;
    if (kci_conf_parser_create(&parser, NULL) != KC_OK) abort();
    uint32_t seed = (uint32_t)size * 2654435761u + (size > 0 ? data[0] : 0);
    size_t offset = 0;
    kc_err err = KC_OK;
    while (offset < size && err == KC_OK) { /* each pass feeds at least one byte */
        seed = seed * 1103515245u + 12345u;
        size_t piece = 1 + (seed >> 16) % FUZZ_PIECE_BYTES_MAX;
        if (piece > size - offset) piece = size - offset;
        err = kci_conf_parser_feed(parser, (const char *)data + offset, piece);
        offset += piece;
    }
    if (err == KC_OK) err = kci_conf_parser_finish(parser, out);
    if (err != KC_OK) memcpy(error, kci_conf_parser_error(parser), FUZZ_ERROR_BYTES);
    kci_conf_parser_destroy(parser);
    return err;
}

static void apply_to_options(const kci_conf_value *root)
{
    kci_options options;
    kci_options_init_defaults(&options);
    char error[FUZZ_ERROR_BYTES];
    kc_err err = kci_options_apply_conf(&options, root, error, sizeof error);
    if (err == KC_OK) err = kci_options_validate(&options, error, sizeof error);
    if (err != KC_OK && err != KC_ERR_CONFIG && err != KC_ERR_NOMEM) abort();
    kci_options_free(&options);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static bool quiet;
    if (!quiet) { /* ignored keys warn; that is not news here */
        kci_log_configure(KCI_LOG_ERROR, false);
        quiet = true;
    }
    kci_conf_value *whole = NULL;
    char whole_error[FUZZ_ERROR_BYTES] = "";
    kc_err whole_err = kci_conf_parse(size > 0 ? (const char *)data : "", size, &whole, whole_error,
                                      sizeof whole_error);
    kci_conf_value *pieces = NULL;
    char pieces_error[FUZZ_ERROR_BYTES] = "";
    kc_err pieces_err = parse_in_pieces(data, size, &pieces, pieces_error);
    if (whole_err != pieces_err) abort();
    if (whole_err != KC_OK && strcmp(whole_error, pieces_error) != 0) abort();
    if (whole_err == KC_OK && !values_equal(whole, pieces)) abort();
    if (whole_err == KC_OK) apply_to_options(whole);
    kci_conf_free(whole);
    kci_conf_free(pieces);
    return 0;
}
