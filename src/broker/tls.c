/* tls.c - see tls.h. Errors carry OpenSSL's own text, which names the file
 * and the reason (for example a key that does not match the certificate). */
#include "tls.h"

#include <openssl/err.h>
#include <stdio.h>
#include <strings.h>

typedef struct name_pair {
    const char *go_name;
    const char *openssl_name;
} name_pair;

/* ECDHE and AEAD only. Go spells the ChaCha20 suites with and without
 * "_SHA256"; nats-server accepts both. */
static const name_pair ACCEPTED_CIPHERS[] = {
    {"TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256", "ECDHE-ECDSA-AES128-GCM-SHA256"},
    {"TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", "ECDHE-RSA-AES128-GCM-SHA256"},
    {"TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384", "ECDHE-ECDSA-AES256-GCM-SHA384"},
    {"TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384", "ECDHE-RSA-AES256-GCM-SHA384"},
    {"TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256", "ECDHE-ECDSA-CHACHA20-POLY1305"},
    {"TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305", "ECDHE-ECDSA-CHACHA20-POLY1305"},
    {"TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256", "ECDHE-RSA-CHACHA20-POLY1305"},
    {"TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305", "ECDHE-RSA-CHACHA20-POLY1305"},
};

/* Names nats-server knows that kcobrad refuses: no forward secrecy (RSA
 * key exchange), or CBC, RC4 or 3DES. */
static const char *const REFUSED_CIPHERS[] = {
    "TLS_RSA_WITH_RC4_128_SHA",
    "TLS_RSA_WITH_3DES_EDE_CBC_SHA",
    "TLS_RSA_WITH_AES_128_CBC_SHA",
    "TLS_RSA_WITH_AES_256_CBC_SHA",
    "TLS_RSA_WITH_AES_128_CBC_SHA256",
    "TLS_RSA_WITH_AES_128_GCM_SHA256",
    "TLS_RSA_WITH_AES_256_GCM_SHA384",
    "TLS_ECDHE_ECDSA_WITH_RC4_128_SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA",
    "TLS_ECDHE_RSA_WITH_RC4_128_SHA",
    "TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA",
    "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA",
    "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256",
    "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256",
};

static const name_pair ACCEPTED_GROUPS[] = {
    {"X25519", "X25519"},
    {"CurveP256", "P-256"},
    {"CurveP384", "P-384"},
    {"CurveP521", "P-521"},
};

#define COUNT_OF(array) (sizeof(array) / sizeof((array)[0]))

const char *kci_tls_cipher_from_go_name(const char *go_name, bool *known_weak)
{
    *known_weak = false;
    for (size_t i = 0; i < COUNT_OF(ACCEPTED_CIPHERS); i++)
        if (strcasecmp(go_name, ACCEPTED_CIPHERS[i].go_name) == 0)
            return ACCEPTED_CIPHERS[i].openssl_name;
    for (size_t i = 0; i < COUNT_OF(REFUSED_CIPHERS); i++)
        if (strcasecmp(go_name, REFUSED_CIPHERS[i]) == 0) *known_weak = true;
    return NULL;
}

const char *kci_tls_group_from_go_name(const char *go_name)
{
    for (size_t i = 0; i < COUNT_OF(ACCEPTED_GROUPS); i++)
        if (strcasecmp(go_name, ACCEPTED_GROUPS[i].go_name) == 0)
            return ACCEPTED_GROUPS[i].openssl_name;
    return NULL;
}

const char *kci_tls_cipher_names_accepted(void)
{
    return "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256, "
           "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384, TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384, "
           "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256, "
           "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256";
}

const char *kci_tls_group_names_accepted(void)
{
    return "X25519, CurveP256, CurveP384, CurveP521";
}

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
    /* Server preference: the client cannot pick the weakest of the list.
     * No renegotiation: a peer could make the loop redo handshakes. */
    SSL_CTX_set_options(context, SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_NO_RENEGOTIATION);
    const char *ciphers = options->tls_ciphers ? options->tls_ciphers : KCI_TLS_CIPHERS_DEFAULT;
    if (SSL_CTX_set_cipher_list(context, ciphers) != 1)
        return tls_fail(context, "cannot set the cipher suites", ciphers, error, error_size);
    const char *groups = options->tls_groups ? options->tls_groups : KCI_TLS_GROUPS_DEFAULT;
    if (SSL_CTX_set1_groups_list(context, groups) != 1)
        return tls_fail(context, "cannot set the curve preferences", groups, error, error_size);
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
