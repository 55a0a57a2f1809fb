/* subject.c - NATS subject validation and wildcard matching (see subject.h).
 *
 * Design: the broker validates the subject of every PUB, so each function is
 * one forward pass over its input with no allocation. A 256-entry table
 * classifies each byte with one load, so an ordinary byte costs a load and a
 * branch; token checks (empty, wildcard, '>' last, count) happen only at
 * dots. Matching walks filter and subject in step, comparing a literal token
 * byte by byte while validating it, so it validates both inputs in the same
 * pass that compares them and stops at the first differing token.
 *
 * Limits: a subject longer than KCI_SUBJECT_BYTES_MAX bytes or with more than
 * KCI_SUBJECT_TOKENS_MAX tokens is invalid. Bytes are opaque: there is no
 * UTF-8 check, so any byte other than '.', the whitespace named in subject.h
 * and NUL may appear in a token. */
#include "broker/subject.h"

#include <assert.h>
#include <stdint.h>
#include <string.h>

enum {
    BYTE_ORDINARY = 0,
    BYTE_SEPARATOR = 1,
    BYTE_FORBIDDEN = 2,
};

static const uint8_t subject_byte_class[256] = {
    [0] = BYTE_FORBIDDEN,    ['\t'] = BYTE_FORBIDDEN, ['\n'] = BYTE_FORBIDDEN,
    ['\r'] = BYTE_FORBIDDEN, [' '] = BYTE_FORBIDDEN,  ['.'] = BYTE_SEPARATOR,
};

/* Returned by token_end for a token holding a forbidden byte. */
#define TOKEN_END_BAD SIZE_MAX

static bool length_valid(const char *subject, size_t subject_len)
{
    return subject != NULL && subject_len > 0 && subject_len <= KCI_SUBJECT_BYTES_MAX;
}

/* True if [start, end) is the one-byte token made of wildcard. */
static bool token_is(const unsigned char *bytes, size_t start, size_t end, unsigned char wildcard)
{
    return end - start == 1 && bytes[start] == wildcard;
}

static bool token_valid(const unsigned char *bytes, size_t start, size_t end, bool last,
                        bool wildcards_allowed)
{
    if (end == start) return false; /* a leading, doubled or trailing dot */
    if (token_is(bytes, start, end, '*')) return wildcards_allowed;
    if (token_is(bytes, start, end, '>')) return wildcards_allowed && last;
    return true;
}

/* Validates a whole subject; wildcards_allowed selects filter or literal.
 * Ordinary bytes cost one table load and one branch. */
static bool subject_valid(const char *subject, size_t subject_len, bool wildcards_allowed)
{
    if (!length_valid(subject, subject_len)) return false;
    const unsigned char *bytes = (const unsigned char *)subject;
    size_t token_start = 0;
    uint32_t token_count = 0;
    for (size_t index = 0; index < subject_len; index++) {
        uint8_t byte_class = subject_byte_class[bytes[index]];
        if (byte_class == BYTE_ORDINARY) continue;
        if (byte_class == BYTE_FORBIDDEN) return false;
        if (!token_valid(bytes, token_start, index, false, wildcards_allowed)) return false;
        if (++token_count == KCI_SUBJECT_TOKENS_MAX) return false; /* the last is still to come */
        token_start = index + 1;
    }
    assert(token_start <= subject_len && token_count < KCI_SUBJECT_TOKENS_MAX);
    return token_valid(bytes, token_start, subject_len, true, wildcards_allowed);
}

bool kci_subject_valid_filter(const char *subject, size_t subject_len)
{
    return subject_valid(subject, subject_len, true);
}

bool kci_subject_valid_literal(const char *subject, size_t subject_len)
{
    return subject_valid(subject, subject_len, false);
}

/* The index of the '.' ending the token that starts at start, or len, or
 * TOKEN_END_BAD if the token holds a forbidden byte. */
static size_t token_end(const unsigned char *bytes, size_t start, size_t len)
{
    for (size_t index = start; index < len; index++) {
        uint8_t byte_class = subject_byte_class[bytes[index]];
        if (byte_class == BYTE_SEPARATOR) return index;
        if (byte_class == BYTE_FORBIDDEN) return TOKEN_END_BAD;
    }
    return len;
}

/* True if bytes[start, len) is at most tokens_max well-formed literal tokens. */
static bool rest_is_literal(const unsigned char *bytes, size_t start, size_t len,
                            uint32_t tokens_max)
{
    for (uint32_t token_index = 0; token_index < tokens_max; token_index++) {
        assert(start <= len); /* equal after a trailing dot: an empty token */
        size_t end = token_end(bytes, start, len);
        if (end == TOKEN_END_BAD || !token_valid(bytes, start, end, false, false)) return false;
        if (end == len) return true;
        start = end + 1;
    }
    return false;
}

/* Compares the literal filter token at *filter_at with the subject token at
 * *subject_at byte by byte, validating the filter's bytes as it goes (equal
 * subject bytes are then valid too). Advances both to the token ends. */
static bool literal_token_matches(const unsigned char *filter, size_t filter_len, size_t *filter_at,
                                  const unsigned char *subject, size_t subject_len,
                                  size_t *subject_at)
{
    assert(*filter_at < filter_len && *subject_at < subject_len);
    size_t filter_index = *filter_at;
    size_t subject_index = *subject_at;
    while (filter_index < filter_len && subject_byte_class[filter[filter_index]] == BYTE_ORDINARY) {
        if (subject_index == subject_len || subject[subject_index] != filter[filter_index])
            return false;
        filter_index++;
        subject_index++;
    }
    if (filter_index == *filter_at) return false;                                   /* empty */
    if (filter_index < filter_len && filter[filter_index] != '.') return false;     /* forbidden */
    if (subject_index < subject_len && subject[subject_index] != '.') return false; /* longer */
    *filter_at = filter_index;
    *subject_at = subject_index;
    return true;
}

/* Both inputs are walked once, in step, one token at a time; the first
 * differing token ends the walk, and "true" is only returned once both have
 * been read to the end, so malformed input never matches. */
bool kci_subject_matches(const char *filter, size_t filter_len, const char *subject,
                         size_t subject_len)
{
    if (!length_valid(filter, filter_len) || !length_valid(subject, subject_len)) return false;
    const unsigned char *f = (const unsigned char *)filter;
    const unsigned char *s = (const unsigned char *)subject;
    size_t filter_at = 0; /* both at the start of a token */
    size_t subject_at = 0;
    for (uint32_t token_index = 0; token_index < KCI_SUBJECT_TOKENS_MAX; token_index++) {
        assert(filter_at < filter_len && subject_at < subject_len);
        bool single = filter_at + 1 == filter_len || f[filter_at + 1] == '.';
        if (single && f[filter_at] == '>') {
            if (filter_at + 1 != filter_len) return false; /* '>' must be last */
            return rest_is_literal(s, subject_at, subject_len,
                                   KCI_SUBJECT_TOKENS_MAX - token_index);
        }
        if (single && f[filter_at] == '*') {
            size_t end = token_end(s, subject_at, subject_len);
            if (end == TOKEN_END_BAD || !token_valid(s, subject_at, end, false, false))
                return false;
            filter_at++;
            subject_at = end;
        } else if (!literal_token_matches(f, filter_len, &filter_at, s, subject_len, &subject_at)) {
            return false;
        }
        /* Both tokens ended, at a '.' or at the end of their input. */
        if (filter_at == filter_len || subject_at == subject_len)
            return filter_at == filter_len && subject_at == subject_len;
        filter_at++;
        subject_at++;
        if (filter_at == filter_len || subject_at == subject_len) return false; /* trailing dot */
    }
    return false; /* more than KCI_SUBJECT_TOKENS_MAX tokens */
}
