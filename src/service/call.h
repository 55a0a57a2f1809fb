/* call.h - one component calls another with a deadline (the component kit).
 *
 * The ledger's clients (kcobra wallet, pay, mint; a paid service), and the
 * CLI's questions to the persister, the arbiters and the keeper, are
 * request/reply calls on the fabric that end in one of four ways: an
 * answer, a refusal (the answer carries Kc-Error "<code> <message>", read
 * here by the kit's header reader, not by hand), nobody serving the subject
 * (no responders), or no answer by the deadline. kci_call tells them apart
 * so each caller only words them for its user. */
#ifndef KCI_CALL_H
#define KCI_CALL_H

#include <nats/nats.h>
#include <stddef.h>
#include <stdint.h>

#include "kingcobra/kingcobra.h"

/* A component's refusal: its Kc-Error code (> 0) and message. */
typedef struct kci_refusal {
    int code;
    char message[KC_ERROR_MESSAGE_BYTES_MAX];
} kci_refusal;

enum {
    /* A Kc-Error the header reader refuses (not "<code> <message>") is still a
     * refusal: this code, its raw text as the message. */
    KCI_REFUSAL_CODE_UNREADABLE = 500,
};

/* Fills refusal from reply's Kc-Error, when it has one (true). */
bool kci_refusal_read(natsMsg *reply, kci_refusal *refusal);

/* Sends body (body_length bytes; NULL/0 sends an empty body) to subject and
 * waits at most timeout_ms for the answer.
 *   KC_OK                 *reply is the answer, to destroy
 *   KC_ERR_SERVICE        the component refused: refusal filled, and *reply
 *                         is the answer (its body may say more), to destroy
 *   KC_ERR_NO_RESPONDERS  nobody serves subject (*reply NULL)
 *   KC_ERR_TIMEOUT        no answer within timeout_ms
 *   KC_ERR_PERMISSION     no answer, and the server refused our publish on
 *                         subject (its -ERR, the connection's last error)
 *   KC_ERR_NOT_CONNECTED  other failures of the connection
 * Each failure also leaves a sentence in kc_last_error(). */
kc_err kci_call(natsMsg **reply, natsConnection *connection, const char *subject, const void *body,
                size_t body_length, int64_t timeout_ms, kci_refusal *refusal);
/* The same for a request with headers (request is the caller's). */
kc_err kci_call_message(natsMsg **reply, natsConnection *connection, natsMsg *request,
                        int64_t timeout_ms, kci_refusal *refusal);
/* kci_call to a subject that several components answer (every arbiter
 * answers kc.arbiter.status): the first answer, on an inbox of its own that
 * the server closes after one message, so the others are never sent
 * (nats.c 3.4's shared reply subscription could leak a late second answer
 * at close). */
kc_err kci_call_first(natsMsg **reply, natsConnection *connection, const char *subject,
                      const void *body, size_t body_length, int64_t timeout_ms,
                      kci_refusal *refusal);

#endif
