/* reply_subject.c - where a component may publish for a client
 * (reply_subject.h). */
#include "reply_subject.h"

#include <assert.h>
#include <string.h>

static bool has_prefix(const char *subject, size_t subject_length, const char *prefix)
{
    size_t prefix_length = strlen(prefix);
    /* The prefix ends in a dot: at least one token must follow it. */
    return subject_length > prefix_length && memcmp(subject, prefix, prefix_length) == 0;
}

/* A literal subject: printable, no spaces, no wildcards, no empty token. */
static const char *literal_problem(const char *subject, size_t subject_length)
{
    size_t token_length = 0;
    for (size_t index = 0; index < subject_length; index++) {
        unsigned char byte = (unsigned char)subject[index];
        if (byte == '.') {
            if (token_length == 0) return "has an empty token";
            token_length = 0;
            continue;
        }
        if (byte <= ' ' || byte >= 0x7F) return "has a space or a control byte";
        if (byte == '*' || byte == '>') return "has a wildcard";
        token_length++;
    }
    return token_length == 0 ? "has an empty token" : NULL;
}

const char *kci_reply_subject_problem(const char *subject, size_t subject_length, kci_reply_use use)
{
    assert(use == KCI_REPLY_ANSWER || use == KCI_REPLY_NOTIFY);
    if (subject == NULL || subject_length == 0) return "is empty";
    if (subject_length > KCI_REPLY_SUBJECT_BYTES_MAX) return "is too long";
    const char *problem = literal_problem(subject, subject_length);
    if (problem != NULL) return problem;
    if (has_prefix(subject, subject_length, KCI_REPLY_INBOX_PREFIX)) return NULL;
    if (use == KCI_REPLY_ANSWER &&
        has_prefix(subject, subject_length, KCI_REPLY_ARBITER_LOG_PREFIX))
        return NULL;
    return use == KCI_REPLY_ANSWER ? "is not an inbox (_INBOX.>)"
                                   : "is not the client's inbox (_INBOX.>)";
}

bool kci_reply_subject_allowed(const char *subject, kci_reply_use use)
{
    if (subject == NULL) return false;
    size_t length = strnlen(subject, KCI_REPLY_SUBJECT_BYTES_MAX + 1);
    return kci_reply_subject_problem(subject, length, use) == NULL;
}
