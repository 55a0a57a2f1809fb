/* fuzz_subject.c - libFuzzer target for subject validation and the sublist.
 *
 * Input: the first byte picks how many of the pieces that follow are filters
 * (1 to FUZZ_FILTERS_MAX) and which of them join a queue group; the rest of
 * the input is cut at '\n' into pieces, filters first, then subjects. Each
 * piece is copied into a buffer of exactly its size, so a read past the
 * length is an ASan report. Checks: the validators agree with each other;
 * kci_subject_matches agrees with a plain token-by-token oracle (so it never
 * matches malformed input); the sublist returns
 * exactly the filters kci_subject_matches accepts, on a miss, on a cache hit,
 * after a remove, and a held result stays unchanged until collect. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "broker/subject.h"
#include "broker/sublist.h"

enum {
    FUZZ_FILTERS_MAX = 4,
    FUZZ_PIECES_MAX = 8,
    FUZZ_CACHE_ENTRIES = 2, /* small, so eviction runs too */
};

#define FUZZ_CHECK(condition)                                                                      \
    do {                                                                                           \
        if (!(condition)) abort();                                                                 \
    } while (0)

typedef struct fuzz_piece {
    char *bytes; /* exactly len bytes, no terminator */
    size_t len;
} fuzz_piece;

typedef struct fuzz_input {
    fuzz_piece pieces[FUZZ_PIECES_MAX];
    size_t piece_count;
    size_t filter_count;
    uint8_t queue_flags;
    bool inserted[FUZZ_FILTERS_MAX];
} fuzz_input;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fuzz_split(fuzz_input *input, const uint8_t *data, size_t size)
{
    size_t start = 0;
    for (size_t index = 0; index <= size && input->piece_count < FUZZ_PIECES_MAX; index++) {
        if (index < size && data[index] != '\n') continue;
        fuzz_piece *piece = &input->pieces[input->piece_count++];
        piece->len = index - start;
        piece->bytes = calloc(1, piece->len > 0 ? piece->len : 1);
        FUZZ_CHECK(piece->bytes != NULL);
        if (piece->len > 0) memcpy(piece->bytes, data + start, piece->len);
        start = index + 1;
    }
}

/* A second, plain implementation of matching to compare against: validate
 * both with the validators, then compare token by token. */
static bool oracle_matches(const fuzz_piece *filter, const fuzz_piece *subject)
{
    if (!kci_subject_valid_filter(filter->bytes, filter->len)) return false;
    if (!kci_subject_valid_literal(subject->bytes, subject->len)) return false;
    const char *f = filter->bytes, *f_end = f + filter->len;
    const char *s = subject->bytes, *s_end = s + subject->len;
    for (size_t step = 0; step <= filter->len; step++) {
        const char *f_dot = memchr(f, '.', (size_t)(f_end - f));
        const char *s_dot = memchr(s, '.', (size_t)(s_end - s));
        size_t f_len = (size_t)((f_dot != NULL ? f_dot : f_end) - f);
        size_t s_len = (size_t)((s_dot != NULL ? s_dot : s_end) - s);
        if (f_len == 1 && f[0] == '>') return true;
        bool equal = f_len == s_len && memcmp(f, s, f_len) == 0;
        if (!(f_len == 1 && f[0] == '*') && !equal) return false;
        if (f_dot == NULL || s_dot == NULL) return f_dot == NULL && s_dot == NULL;
        f = f_dot + 1;
        s = s_dot + 1;
    }
    abort(); /* each step consumes at least one byte of the filter */
}

static void fuzz_check_validators(const fuzz_piece *piece)
{
    bool filter = kci_subject_valid_filter(piece->bytes, piece->len);
    bool literal = kci_subject_valid_literal(piece->bytes, piece->len);
    FUZZ_CHECK(!literal || filter);
    FUZZ_CHECK(kci_subject_matches(piece->bytes, piece->len, piece->bytes, piece->len) == literal);
    FUZZ_CHECK(!kci_subject_matches(">", 1, piece->bytes, piece->len) || literal);
}

static void *fuzz_sub(size_t filter_index)
{
    return (void *)(uintptr_t)(filter_index + 1);
}

static const char *fuzz_queue(const fuzz_input *input, size_t filter_index)
{
    if (((input->queue_flags >> filter_index) & 1) == 0) return NULL;
    return filter_index % 2 == 0 ? "q0" : "q1";
}

/* Checks that result holds exactly the inserted filters matching subject,
 * each once, in its queue group if it has one. */
static void fuzz_check_result(const fuzz_input *input, const fuzz_piece *subject,
                              const kci_match *result)
{
    uint32_t seen[FUZZ_FILTERS_MAX] = {0};
    for (uint32_t index = 0; index < result->plain_count; index++) {
        uintptr_t filter_index = (uintptr_t)result->plain[index] - 1;
        FUZZ_CHECK(filter_index < input->filter_count && fuzz_queue(input, filter_index) == NULL);
        seen[filter_index]++;
    }
    for (uint32_t group_index = 0; group_index < result->group_count; group_index++) {
        const kci_match_group *group = &result->groups[group_index];
        for (uint32_t index = 0; index < group->member_count; index++) {
            uintptr_t filter_index = (uintptr_t)group->members[index] - 1;
            FUZZ_CHECK(filter_index < input->filter_count);
            const char *queue = fuzz_queue(input, filter_index);
            FUZZ_CHECK(queue != NULL && group->name_len == strlen(queue));
            FUZZ_CHECK(memcmp(group->name, queue, group->name_len) == 0);
            seen[filter_index]++;
        }
    }
    for (size_t index = 0; index < input->filter_count; index++) {
        const fuzz_piece *filter = &input->pieces[index];
        bool expected = input->inserted[index] && kci_subject_matches(filter->bytes, filter->len,
                                                                      subject->bytes, subject->len);
        FUZZ_CHECK(seen[index] == (expected ? 1u : 0u));
    }
}

static void fuzz_match(kci_sublist *sublist, const fuzz_input *input, const fuzz_piece *subject)
{
    const kci_match *result = NULL;
    kc_err err = kci_sublist_match(sublist, subject->bytes, subject->len, &result);
    if (!kci_subject_valid_literal(subject->bytes, subject->len)) {
        /* wildcard tokens in a subject are matched literally (not checked
         * against the oracle, which only knows literal subjects) */
        bool filter = kci_subject_valid_filter(subject->bytes, subject->len);
        FUZZ_CHECK(err == (filter ? KC_OK : KC_ERR_INVALID_SUBJECT));
        return;
    }
    FUZZ_CHECK(err == KC_OK && result != NULL);
    fuzz_check_result(input, subject, result);
    const kci_match *again = NULL;
    FUZZ_CHECK(kci_sublist_match(sublist, subject->bytes, subject->len, &again) == KC_OK);
    fuzz_check_result(input, subject, again);
}

static void fuzz_insert_all(kci_sublist *sublist, fuzz_input *input)
{
    for (size_t index = 0; index < input->filter_count; index++) {
        const fuzz_piece *filter = &input->pieces[index];
        const char *queue = fuzz_queue(input, index);
        kc_err err = kci_sublist_insert(sublist, filter->bytes, filter->len, queue,
                                        queue != NULL ? strlen(queue) : 0, fuzz_sub(index));
        bool valid = kci_subject_valid_filter(filter->bytes, filter->len);
        FUZZ_CHECK(err == (valid ? KC_OK : KC_ERR_INVALID_SUBJECT));
        input->inserted[index] = valid;
    }
}

static void fuzz_sublist(fuzz_input *input)
{
    kci_sublist *sublist = NULL;
    FUZZ_CHECK(kci_sublist_create(&sublist, FUZZ_CACHE_ENTRIES) == KC_OK);
    fuzz_insert_all(sublist, input);
    for (size_t index = 0; index < input->piece_count; index++)
        fuzz_match(sublist, input, &input->pieces[index]);
    /* Hold a result, change the sublist, and check the held one is intact. */
    const fuzz_piece *last = &input->pieces[input->piece_count - 1];
    const kci_match *held = NULL;
    bool holding = kci_sublist_match(sublist, last->bytes, last->len, &held) == KC_OK;
    uint32_t held_plain_count = holding ? held->plain_count : 0;
    void *held_first = holding && held->plain_count > 0 ? held->plain[0] : NULL;
    for (size_t index = 0; index < input->filter_count; index++) {
        const fuzz_piece *filter = &input->pieces[index];
        const char *queue = fuzz_queue(input, index);
        kc_err err = kci_sublist_remove(sublist, filter->bytes, filter->len, queue,
                                        queue != NULL ? strlen(queue) : 0, fuzz_sub(index));
        FUZZ_CHECK(err == (input->inserted[index] ? KC_OK : KC_ERR_NOT_FOUND));
        input->inserted[index] = false;
        for (size_t subject = input->filter_count; subject < input->piece_count; subject++)
            fuzz_match(sublist, input, &input->pieces[subject]);
    }
    FUZZ_CHECK(!holding || held->plain_count == held_plain_count);
    FUZZ_CHECK(!holding || held->plain_count == 0 || held->plain[0] == held_first);
    FUZZ_CHECK(kci_sublist_node_count(sublist) == 0);
    kci_sublist_collect(sublist);
    kci_sublist_destroy(sublist);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    fuzz_input input;
    memset(&input, 0, sizeof input);
    input.queue_flags = (uint8_t)(data[0] >> 2);
    fuzz_split(&input, data + 1, size - 1);
    input.filter_count = (size_t)(data[0] & 3) + 1;
    if (input.filter_count > input.piece_count) input.filter_count = input.piece_count;
    for (size_t index = 0; index < input.piece_count; index++)
        fuzz_check_validators(&input.pieces[index]);
    for (size_t filter = 0; filter < input.piece_count; filter++)
        for (size_t subject = 0; subject < input.piece_count; subject++) {
            const fuzz_piece *f = &input.pieces[filter];
            const fuzz_piece *s = &input.pieces[subject];
            FUZZ_CHECK(kci_subject_matches(f->bytes, f->len, s->bytes, s->len) ==
                       oracle_matches(f, s));
        }
    fuzz_sublist(&input);
    for (size_t index = 0; index < input.piece_count; index++)
        free(input.pieces[index].bytes);
    return 0;
}
