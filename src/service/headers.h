/* headers.h - the KingCobra headers on a nats.c message (see kingcobra.h for
 * their meaning): stamping outgoing messages and reading incoming ones with
 * validation. A malformed header is KC_ERR_BAD_HEADER with the header named
 * in kc_last_error(); absent optional headers are empty strings / 0. */
#ifndef KCI_HEADERS_H
#define KCI_HEADERS_H

#include <nats/nats.h>
#include <stdbool.h>

#include "cause.h"
#include "hlc.h"
#include "kingcobra/kingcobra.h"
#include "uuid.h"

#define KCI_HEADER_ID "Kc-Id"
#define KCI_HEADER_TS "Kc-Ts"
#define KCI_HEADER_NODE "Kc-Node"
#define KCI_HEADER_TYPE "Kc-Type"
#define KCI_HEADER_DEADLINE "Kc-Deadline"
#define KCI_HEADER_REPLY_TO "Kc-Reply-To"
#define KCI_HEADER_ERROR "Kc-Error"
#define KCI_HEADER_PAY "Kc-Pay"
#define KCI_HEADER_PAY_HOLD "Kc-Pay-Hold" /* a ledger hold (escrow) that pays this request */
#define KCI_HEADER_CAUSE "Kc-Cause"

typedef struct kci_kc_headers {
    char id[KC_UUID_TEXT_BYTES + 1];
    char ts[KCI_HLC_TEXT_BYTES_MAX];
    kci_hlc_timestamp timestamp;
    char node[KC_NODE_BYTES_MAX + 1];
    char type[KC_TYPE_BYTES_MAX + 1];
    int64_t deadline_ms; /* 0: none */
    char reply_to[KC_UUID_TEXT_BYTES + 1];
    int error_code; /* 0: not an error reply */
    char error_message[KC_ERROR_MESSAGE_BYTES_MAX];
    char pay[KC_UUID_TEXT_BYTES + 1];
    char pay_hold[KC_UUID_TEXT_BYTES + 1];
    char cause[KCI_CAUSE_TEXT_BYTES_MAX]; /* Kc-Cause, canonical (cause.h); "" none */
} kci_kc_headers;

/* Sets Kc-Id, Kc-Ts, Kc-Node, and Kc-Type/Kc-Deadline/Kc-Reply-To/Kc-Error
 * when the corresponding fields of headers are set; fills in id and ts.
 * The clock is the process's, kci_process_hlc() (one HLC per process: every
 * client in it is the same node as far as causality goes). Also sets Kc-Pay
 * when pay is set, Kc-Cause when cause is set (a reply's Kc-Reply-To is
 * added to its cause: every reply names its request there too), and, on a message stamped before
 * (it carries a Kc-Id), deletes the optional headers whose fields are empty, so a message stamped
 * twice carries only what the struct says. Fields that
 * the reader would refuse are KC_ERR_INVALID_ARGUMENT (node is required);
 * control bytes in error_message become spaces. */
kc_err kci_headers_stamp(natsMsg *message, kci_kc_headers *headers);
/* Reads and validates. require_core: Kc-Id, Kc-Ts and Kc-Node must be
 * present (requests and replies from libkingcobra); otherwise only what is
 * present is validated (a plain NATS client's request). */
kc_err kci_headers_read(natsMsg *message, bool require_core, kci_kc_headers *out);
/* Node names and types must be one valid subject token. */
bool kci_token_valid(const char *token);
/* The default node name: the host name up to its first dot, when that is
 * one valid token (KC_OK); else KC_ERR_CONFIG with the reason, out empty. */
kc_err kci_node_from_host(char out[KC_NODE_BYTES_MAX + 1]);

/* Added by the implementation: */

/* Empties every field (the strings to "", numbers to 0) without zeroing
 * the whole struct: it is about 1 KiB, and there is one or two per message. */
void kci_headers_clear(kci_kc_headers *headers);
/* Copies text into out (out_size > 0 bytes), cut to out_size - 1 bytes and
 * NUL-terminated, like snprintf "%s" without the format parsing; returns the
 * length copied. For the header fields filled on every message. */
size_t kci_text_copy(char *out, size_t out_size, const char *text);

enum {
    KCI_TOKEN_BYTES_MAX = 128, /* == KC_NODE_BYTES_MAX == KC_TYPE_BYTES_MAX */
    KCI_ERROR_CODE_MAX = 2147483647,
};
/* The latest Kc-Deadline accepted, in Unix ms (the HLC's and UUIDv7's range). */
#define KCI_DEADLINE_MS_MAX KCI_HLC_WALL_MS_MAX

/* kci_headers_stamp with the clock passed in (tests; a process hosting
 * several simulated nodes). */
kc_err kci_headers_stamp_with_hlc(natsMsg *message, kci_kc_headers *headers, kci_hlc *hlc);
/* The receive event for headers read by kci_headers_read: moves hlc past
 * their Kc-Ts if they have one, else counts a plain local event. The drift
 * bound applies: KC_ERR_BAD_HEADER if Kc-Ts is too far ahead (the clock is
 * then unchanged). *out (may be NULL) gets the local time of the receive
 * event. kci_headers_read itself touches no clock. */
kc_err kci_headers_observe(kci_hlc *hlc, const kci_kc_headers *headers, kci_hlc_timestamp *out);

#endif
