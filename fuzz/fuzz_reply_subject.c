/* fuzz_reply_subject.c - libFuzzer target for the reply-subject check
 * (src/service/reply_subject.h), against the broker's own rules.
 *
 * Input: the first byte picks the use (answer or notify); the rest is the
 * subject, copied into a buffer of exactly its size (a read past the length
 * is an ASan report). Checks: a subject the check allows is a valid literal
 * subject for the broker (no wildcard, no space, no empty token) and one
 * that kcobrad lets the persister's role publish on (roles.h), so the two
 * layers of the confused-deputy defence agree; a notify subject is always
 * an _INBOX subject; what notify allows, answer allows. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "broker/auth.h"
#include "broker/roles.h"
#include "broker/subject.h"
#include "service/reply_subject.h"

#define FUZZ_CHECK(condition)                                                                      \
    do {                                                                                           \
        if (!(condition)) abort();                                                                 \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0) return 0;
    kci_reply_use use = (data[0] & 1) != 0 ? KCI_REPLY_NOTIFY : KCI_REPLY_ANSWER;
    size_t length = size - 1;
    char *subject = malloc(length > 0 ? length : 1);
    if (subject == NULL) return 0;
    if (length > 0) memcpy(subject, data + 1, length);
    bool allowed = kci_reply_subject_problem(subject, length, use) == NULL;
    if (allowed) {
        FUZZ_CHECK(kci_subject_valid_literal(subject, length));
        FUZZ_CHECK(kci_permissions_allow_publish(kci_role_permissions(KCI_ROLE_PERSISTER), subject,
                                                 length));
        if (use == KCI_REPLY_NOTIFY) {
            FUZZ_CHECK(length > 7 && memcmp(subject, "_INBOX.", 7) == 0);
            FUZZ_CHECK(kci_reply_subject_problem(subject, length, KCI_REPLY_ANSWER) == NULL);
        }
    }
    free(subject);
    return 0;
}
