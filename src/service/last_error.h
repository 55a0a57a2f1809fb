/* last_error.h - the per-thread error detail behind kc_last_error().
 *
 * A function that fails records a short English sentence saying what went
 * wrong ("Kc-Ts: not \"<wall ms>.<counter>\": \"12x\"") and returns the kc_err;
 * the caller returns the code and the application reads the sentence with
 * kc_last_error() on the same thread, like nats.c's nats_GetLastError().
 *
 * Limits: the text is cut at KCI_ERROR_TEXT_BYTES_MAX - 1 bytes. A successful
 * call does not clear it, so it is meaningful only right after a call
 * returned an error. */
#ifndef KCI_LAST_ERROR_H
#define KCI_LAST_ERROR_H

#include "kingcobra/err.h"

enum {
    KCI_ERROR_TEXT_BYTES_MAX = 512, /* with the NUL */
};

/* Records err and the formatted detail for this thread. format NULL: the
 * detail is kc_strerror(err). err KC_OK clears the record. */
void kci_set_error(kc_err err, const char *format, ...) __attribute__((format(printf, 2, 3)));
/* The same, returning err, for `return kci_fail(KC_ERR_PARSE, "...", ...);`. */
kc_err kci_fail(kc_err err, const char *format, ...) __attribute__((format(printf, 2, 3)));
/* The code last recorded on this thread (KC_OK if none). */
kc_err kci_last_error_code(void);

#endif
