/* err.c - texts for the kc_err values. A switch (not a table indexed by the
 * value) so a gap or a reordering can never print the wrong message. */
#include "kingcobra/err.h"

const char *kc_strerror(kc_err err)
{
    switch (err) {
    case KC_OK: return "success";
    case KC_ERR_NOMEM: return "out of memory";
    case KC_ERR_INVALID_ARGUMENT: return "invalid argument";
    case KC_ERR_IO: return "input/output error";
    case KC_ERR_PARSE: return "parse error";
    case KC_ERR_TOO_LARGE: return "too large";
    case KC_ERR_NOT_FOUND: return "not found";
    case KC_ERR_EXISTS: return "already exists";
    case KC_ERR_CONFIG: return "invalid configuration";
    case KC_ERR_TLS: return "TLS error";
    case KC_ERR_AUTH: return "authentication failed";
    case KC_ERR_PERMISSION: return "permission denied";
    case KC_ERR_INVALID_SUBJECT: return "invalid subject";
    case KC_ERR_LIMIT: return "limit reached";
    case KC_ERR_CLOSED: return "closed";
    case KC_ERR_TIMEOUT: return "timed out";
    case KC_ERR_AGAIN: return "try again";
    case KC_ERR_HELP: return "help shown";
    case KC_ERR_CORRUPT: return "data corrupt";
    case KC_ERR_UNSUPPORTED: return "not supported";
    case KC_ERR_NO_RESPONDERS: return "no responders for this request type";
    case KC_ERR_SERVICE: return "the service replied with an error";
    case KC_ERR_NOT_CONNECTED: return "not connected";
    case KC_ERR_BAD_HEADER: return "malformed KingCobra header";
    case KC_ERR_EXPIRED: return "deadline passed";
    case KC_ERR_PAYMENT: return "payment required or refused";
    }
    return "unknown error";
}
