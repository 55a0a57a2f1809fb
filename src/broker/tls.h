/* tls.h - the server's OpenSSL context, built from the options.
 *
 * TLS 1.2 or newer; the certificate chain and key from files; with
 * tls_verify, clients must present a certificate signed by the CA file.
 * Partial writes and moving write buffers are enabled because a client's
 * output buffer may be compacted or grown between two SSL_write calls. */
#ifndef KCI_TLS_H
#define KCI_TLS_H

#include <openssl/ssl.h>
#include <stddef.h>

#include "kingcobra/err.h"
#include "options.h"

kc_err kci_tls_context_create(const kci_options *options, SSL_CTX **out, char *error,
                              size_t error_size);

#endif
