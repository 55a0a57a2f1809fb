/* tls.h - the server's OpenSSL context, built from the options.
 *
 * TLS 1.2 or newer, and forward secrecy only: TLS 1.2 with ECDHE key
 * exchange and AEAD ciphers (nats-server's default list), and TLS 1.3. A
 * client that offers only RSA key exchange is refused, as nats-server
 * refuses it. The config's tls block may narrow the TLS 1.2 suites
 * (cipher_suites) and the key-exchange groups (curve_preferences) with
 * nats-server's (Go's) names, mapped here to OpenSSL's; a name that is
 * unknown, or that would weaken the default (RSA key exchange, CBC, RC4,
 * 3DES), is a config error. TLS 1.3's suites are not configurable, as in
 * nats-server.
 *
 * The certificate chain and key come from files; with tls_verify, clients
 * must present a certificate signed by the CA file. Partial writes and
 * moving write buffers are enabled because a client's output buffer may be
 * compacted or grown between two SSL_write calls. */
#ifndef KCI_TLS_H
#define KCI_TLS_H

#include <openssl/ssl.h>
#include <stddef.h>

#include "kingcobra/err.h"
#include "options.h"

/* The TLS 1.2 suites and groups used when the config names none. */
#define KCI_TLS_CIPHERS_DEFAULT                                                                    \
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:ECDHE-ECDSA-AES128-GCM-SHA256:"     \
    "ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384"
#define KCI_TLS_GROUPS_DEFAULT "X25519:P-256:P-384:P-521"

/* The OpenSSL name of a nats-server cipher_suites name (Go's, such as
 * TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256; case-insensitive), or NULL when
 * kcobrad does not accept it; then *known_weak says whether nats-server
 * knows the name (a suite without forward secrecy or AEAD) or not. */
const char *kci_tls_cipher_from_go_name(const char *go_name, bool *known_weak);
/* The OpenSSL group of a curve_preferences name (X25519, CurveP256,
 * CurveP384, CurveP521), or NULL. */
const char *kci_tls_group_from_go_name(const char *go_name);
/* The accepted names, for error messages. */
const char *kci_tls_cipher_names_accepted(void);
const char *kci_tls_group_names_accepted(void);

kc_err kci_tls_context_create(const kci_options *options, SSL_CTX **out, char *error,
                              size_t error_size);

#endif
