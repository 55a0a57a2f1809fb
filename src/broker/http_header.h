/* http_header.h - reading one header of a request http.c parsed (which only
 * counts them) and the credentials of HTTP basic authentication (RFC 7617),
 * for the console's optional password (console.c). */
#ifndef KCI_HTTP_HEADER_H
#define KCI_HTTP_HEADER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "http.h"

enum {
    KCI_HTTP_CREDENTIAL_BYTES_MAX = 256, /* user or password, with its NUL */
};

/* The value of the first header named name (case-insensitive) of a
 * COMPLETE request held in bytes: its offset and length, leading and
 * trailing blanks left out. False when there is no such header. */
bool kci_http_header_value(const kci_http_request *request, const char *bytes, const char *name,
                           uint32_t *value_start, uint32_t *value_len);
/* Decodes "Basic <base64 of user:password>" (value_len bytes) into user
 * and password, NUL-terminated. False for another scheme, bad base64, no
 * ':', a NUL inside, or a part longer than KCI_HTTP_CREDENTIAL_BYTES_MAX - 1. */
bool kci_http_basic_credentials(const char *value, size_t value_len,
                                char user[KCI_HTTP_CREDENTIAL_BYTES_MAX],
                                char password[KCI_HTTP_CREDENTIAL_BYTES_MAX]);

#endif
