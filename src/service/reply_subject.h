/* reply_subject.h - the subjects a component may publish on a client's
 * behalf (docs/security.md).
 *
 * A component (persister, ledger, keeper, arbiter) answers on the reply
 * subject a client chose, and the persister forwards a recorded reply to
 * the client's Kc-Notify subject. The component publishes with its own
 * identity, so an unchecked subject turns it into a confused deputy: a
 * client that may not publish on kc.sys.quarantine.set or kc.ledger.mint
 * could make the component publish there for it. These subjects must
 * therefore be literal subjects in a client's own reply namespace:
 *
 *   answers (KCI_REPLY_ANSWER)   "_INBOX." (every NATS client's default
 *                                inbox), and "kc.arbiter.log." (the
 *                                arbiters' kc.reply.get lookups, which
 *                                carry the persister's own record)
 *   forwards (KCI_REPLY_NOTIFY)  "_INBOX." only: a forward carries a
 *                                service's payload, which a client may
 *                                control, so it never goes to a subject
 *                                another component trusts
 *
 * A literal subject here: 1..KCI_REPLY_SUBJECT_BYTES_MAX bytes of printable
 * ASCII without spaces, tokens separated by single dots, no empty token,
 * no '*' or '>' anywhere. The check is a single pass over the bytes. */
#ifndef KCI_REPLY_SUBJECT_H
#define KCI_REPLY_SUBJECT_H

#include <stdbool.h>
#include <stddef.h>

enum {
    /* The queue's record field bound (KCI_RECORD_FIELD_BYTES_MAX). */
    KCI_REPLY_SUBJECT_BYTES_MAX = 255,
};

typedef enum kci_reply_use {
    KCI_REPLY_ANSWER = 1, /* an answer to a request on its reply subject */
    KCI_REPLY_NOTIFY = 2, /* a forward to a subject named in a header */
} kci_reply_use;

#define KCI_REPLY_INBOX_PREFIX "_INBOX."
#define KCI_REPLY_ARBITER_LOG_PREFIX "kc.arbiter.log."

/* NULL when subject may carry that use; otherwise why not, as a sentence
 * fragment for an error reply ("the reply subject ..."). */
const char *kci_reply_subject_problem(const char *subject, size_t subject_length,
                                      kci_reply_use use);
/* The same for a NUL-terminated subject; NULL is "no subject". */
bool kci_reply_subject_allowed(const char *subject, kci_reply_use use);

#endif
