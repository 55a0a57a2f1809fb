/* last_error.c - the per-thread error detail (see last_error.h).
 *
 * Design: one fixed buffer per thread (C11 _Thread_local), written with
 * vsnprintf, so recording an error never allocates and cannot fail; a thread
 * that never fails costs nothing but the zeroed TLS block. kc_last_error()
 * returns that buffer, which stays valid until the thread's next failure.
 *
 * Limits: longer texts are truncated (possibly inside a UTF-8 sequence); a
 * NUL inside a %s argument ends that argument as usual. */
#include "service/last_error.h"

#include <assert.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "kingcobra/kingcobra.h"

static _Thread_local char error_text[KCI_ERROR_TEXT_BYTES_MAX];
static _Thread_local kc_err error_code;

static void error_record(kc_err err, const char *format, va_list arguments)
{
    error_code = err;
    if (err == KC_OK) {
        error_text[0] = '\0';
        return;
    }
    if (format == NULL) {
        snprintf(error_text, sizeof error_text, "%s", kc_strerror(err));
        return;
    }
    /* the analyzer misses va_start in the callers */
    int written = vsnprintf(error_text, sizeof error_text, format, arguments); /* NOLINT */
    if (written < 0) snprintf(error_text, sizeof error_text, "%s", kc_strerror(err));
    assert(strlen(error_text) < sizeof error_text);
}

void kci_set_error(kc_err err, const char *format, ...)
{
    va_list arguments;
    va_start(arguments, format);
    error_record(err, format, arguments);
    va_end(arguments);
}

kc_err kci_fail(kc_err err, const char *format, ...)
{
    va_list arguments;
    va_start(arguments, format);
    error_record(err, format, arguments);
    va_end(arguments);
    return err;
}

kc_err kci_last_error_code(void)
{
    return error_code;
}

const char *kc_last_error(void)
{
    return error_text;
}
