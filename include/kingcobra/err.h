/* err.h - the one error enum of KingCobra.
 *
 * Every fallible function returns a kc_err. Values are explicit and never
 * reused: a value that is retired stays reserved so logs and wire codes from
 * older versions still mean the same thing. kc_strerror() gives a short,
 * lower-case English text for each value. */
#ifndef KINGCOBRA_ERR_H
#define KINGCOBRA_ERR_H

#include "kingcobra/export.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum kc_err {
    KC_OK = 0,
    KC_ERR_NOMEM = 1,            /* an allocation failed */
    KC_ERR_INVALID_ARGUMENT = 2, /* a caller passed a bad value */
    KC_ERR_IO = 3,               /* a system call failed; see errno */
    KC_ERR_PARSE = 4,            /* input does not follow its grammar */
    KC_ERR_TOO_LARGE = 5,        /* input exceeds a named bound */
    KC_ERR_NOT_FOUND = 6,        /* the thing asked for does not exist */
    KC_ERR_EXISTS = 7,           /* the thing to create exists already */
    KC_ERR_CONFIG = 8,           /* the configuration is invalid */
    KC_ERR_TLS = 9,              /* a TLS handshake or record failed */
    KC_ERR_AUTH = 10,            /* authentication failed */
    KC_ERR_PERMISSION = 11,      /* authenticated, but not allowed */
    KC_ERR_INVALID_SUBJECT = 12, /* a subject is not well formed */
    KC_ERR_LIMIT = 13,           /* a configured limit was reached */
    KC_ERR_CLOSED = 14,          /* the connection or object is closed */
    KC_ERR_TIMEOUT = 15,         /* a deadline passed */
    KC_ERR_AGAIN = 16,           /* try again later (would block) */
    KC_ERR_HELP = 17,            /* --help or --version was shown; exit 0 */
    KC_ERR_CORRUPT = 18,         /* stored data failed its checksum */
    KC_ERR_UNSUPPORTED = 19,     /* the operation is not supported here */
    KC_ERR_NO_RESPONDERS = 20,   /* nobody serves the request's type */
    KC_ERR_SERVICE = 21,         /* the service answered with an error reply */
    KC_ERR_NOT_CONNECTED = 22,   /* no connection to the fabric (yet, or any more) */
    KC_ERR_BAD_HEADER = 23,      /* a KingCobra header is missing or malformed */
    KC_ERR_EXPIRED = 24,         /* the request's deadline passed before it was served */
    KC_ERR_PAYMENT = 25,         /* a paid service refused the request's payment (Kc-Pay) */
} kc_err;

/* Returns a static, human-readable text for err (never NULL). */
KC_EXPORT const char *kc_strerror(kc_err err);

#ifdef __cplusplus
}
#endif

#endif
