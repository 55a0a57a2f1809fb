/* subject.h - NATS subjects: validation and wildcard matching.
 *
 * A subject is a non-empty sequence of tokens separated by '.'. A token is a
 * non-empty run of bytes other than '.', ' ', '\t', '\r', '\n' and NUL.
 * In a filter (SUB, permissions), the token "*" matches any one token and the
 * token ">" matches one or more trailing tokens and must be the last token.
 * In a literal subject (PUB), '*' and '>' are ordinary bytes unless they form
 * a whole token, which makes it a filter and so not a valid literal.
 * Subjects are bounded by KCI_SUBJECT_BYTES_MAX and KCI_SUBJECT_TOKENS_MAX. */
#ifndef KCI_SUBJECT_H
#define KCI_SUBJECT_H

#include <stdbool.h>
#include <stddef.h>

enum {
    KCI_SUBJECT_BYTES_MAX = 4096,
    KCI_SUBJECT_TOKENS_MAX = 256,
};

/* True if subject is a well-formed filter (wildcard tokens allowed). */
bool kci_subject_valid_filter(const char *subject, size_t subject_len);
/* True if subject is well formed and contains no wildcard token. */
bool kci_subject_valid_literal(const char *subject, size_t subject_len);
/* True if the literal subject is matched by the filter. Neither needs to be
 * NUL-terminated. Malformed input simply does not match. */
bool kci_subject_matches(const char *filter, size_t filter_len, const char *subject,
                         size_t subject_len);

#endif
