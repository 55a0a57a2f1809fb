/* tls.c - see tls.h. Errors carry OpenSSL's own text, which names the file
 * and the reason (for example a key that does not match the certificate). */
#include "tls.h"

#include <openssl/err.h>
#include <stdio.h>

static kc_err tls_fail(SSL_CTX *context, const char *what, const char *path, char *error,
                       size_t error_size)
{
    char detail[256];
    ERR_error_string_n(ERR_get_error(), detail, sizeof detail);
    snprintf(error, error_size, "TLS: %s %s: %s", what, path ? path : "", detail);
    SSL_CTX_free(context);
    return KC_ERR_TLS;
}

kc_err kci_tls_context_create(const kci_options *options, SSL_CTX **out, char *error,
                              size_t error_size)
{
    *out = NULL;
    SSL_CTX *context = SSL_CTX_new(TLS_server_method());
    if (context == NULL) return tls_fail(NULL, "cannot create context", NULL, error, error_size);
    SSL_CTX_set_min_proto_version(context, TLS1_2_VERSION);
    SSL_CTX_set_mode(context, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
                                  SSL_MODE_RELEASE_BUFFERS);
    if (SSL_CTX_use_certificate_chain_file(context, options->tls_cert_file) != 1)
        return tls_fail(context, "cannot load certificate", options->tls_cert_file, error,
                        error_size);
    if (SSL_CTX_use_PrivateKey_file(context, options->tls_key_file, SSL_FILETYPE_PEM) != 1)
        return tls_fail(context, "cannot load key", options->tls_key_file, error, error_size);
    if (SSL_CTX_check_private_key(context) != 1)
        return tls_fail(context, "key does not match certificate", options->tls_key_file, error,
                        error_size);
    if (options->tls_ca_file != NULL &&
        SSL_CTX_load_verify_locations(context, options->tls_ca_file, NULL) != 1)
        return tls_fail(context, "cannot load CA", options->tls_ca_file, error, error_size);
    if (options->tls_verify)
        SSL_CTX_set_verify(context, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
    *out = context;
    return KC_OK;
}
