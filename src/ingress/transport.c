/* transport.c - plain TCP or TLS for the ingress's connections
 * (transport.h). */
#include "transport.h"

#include <errno.h>
#include <openssl/err.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/socket.h>
#include <unistd.h>

#include "broker/tls.h"

kc_err kci_transport_tls_create(SSL_CTX **out, const char *cert_file, const char *key_file,
                                char *error, size_t error_size)
{
    *out = NULL;
    if (cert_file == NULL && key_file == NULL) return KC_OK;
    if (cert_file == NULL || key_file == NULL) {
        snprintf(error, error_size, "ingress: TLS needs both cert_file and key_file");
        return KC_ERR_CONFIG;
    }
    SSL_CTX *context = SSL_CTX_new(TLS_server_method());
    const char *what = context == NULL ? "cannot make a TLS context" : NULL;
    if (what == NULL && SSL_CTX_set_min_proto_version(context, TLS1_2_VERSION) != 1)
        what = "cannot require TLS 1.2";
    if (what == NULL && SSL_CTX_set_cipher_list(context, KCI_TLS_CIPHERS_DEFAULT) != 1)
        what = "cannot set the cipher suites";
    if (what == NULL && SSL_CTX_use_certificate_chain_file(context, cert_file) != 1)
        what = "cannot load cert_file";
    if (what == NULL && SSL_CTX_use_PrivateKey_file(context, key_file, SSL_FILETYPE_PEM) != 1)
        what = "cannot load key_file";
    if (what == NULL && SSL_CTX_check_private_key(context) != 1)
        what = "key_file does not match cert_file";
    if (what != NULL) {
        char reason[256];
        ERR_error_string_n(ERR_get_error(), reason, sizeof reason);
        snprintf(error, error_size, "ingress: %s (%s, %s): %s", what,
                 cert_file != NULL ? cert_file : "", key_file != NULL ? key_file : "", reason);
        ERR_clear_error();
        SSL_CTX_free(context);
        return KC_ERR_CONFIG;
    }
    /* the output buffer may move between two tries of one write */
    SSL_CTX_set_mode(context, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    *out = context;
    return KC_OK;
}

void kci_transport_tls_destroy(SSL_CTX *context)
{
    SSL_CTX_free(context);
}

SSL *kci_transport_tls_accept(SSL_CTX *context, int fd)
{
    SSL *ssl = SSL_new(context);
    if (ssl == NULL) return NULL;
    if (SSL_set_fd(ssl, fd) != 1) {
        SSL_free(ssl);
        return NULL;
    }
    SSL_set_accept_state(ssl);
    return ssl;
}

static ssize_t tls_outcome(SSL *ssl, int result)
{
    int reason = SSL_get_error(ssl, result);
    ERR_clear_error(); /* the thread's queue: a handshake refused by a client is not ours */
    if (reason == SSL_ERROR_WANT_READ) return KCI_TRANSPORT_WANT_READ;
    if (reason == SSL_ERROR_WANT_WRITE) return KCI_TRANSPORT_WANT_WRITE;
    if (reason == SSL_ERROR_ZERO_RETURN) return KCI_TRANSPORT_CLOSED;
    return KCI_TRANSPORT_FAILED;
}

ssize_t kci_transport_read(SSL *ssl, int fd, void *buffer, size_t size)
{
    if (ssl != NULL) {
        int got = SSL_read(ssl, buffer, size > INT32_MAX ? INT32_MAX : (int)size);
        return got > 0 ? got : tls_outcome(ssl, got);
    }
    for (;;) {
        ssize_t got = read(fd, buffer, size);
        if (got >= 0) return got;
        if (errno == EINTR) continue;
        return errno == EAGAIN || errno == EWOULDBLOCK ? KCI_TRANSPORT_WANT_READ
                                                       : KCI_TRANSPORT_FAILED;
    }
}

ssize_t kci_transport_write(SSL *ssl, int fd, const void *bytes, size_t size)
{
    if (ssl != NULL) {
        int sent = SSL_write(ssl, bytes, size > INT32_MAX ? INT32_MAX : (int)size);
        if (sent > 0) return sent;
        ssize_t outcome = tls_outcome(ssl, sent);
        return outcome == KCI_TRANSPORT_CLOSED ? KCI_TRANSPORT_FAILED : outcome;
    }
    for (;;) {
        ssize_t sent = send(fd, bytes, size, MSG_NOSIGNAL);
        if (sent > 0) return sent;
        if (sent < 0 && errno == EINTR) continue;
        return sent < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) ? KCI_TRANSPORT_WANT_WRITE
                                                                     : KCI_TRANSPORT_FAILED;
    }
}

bool kci_transport_pending(SSL *ssl)
{
    return ssl != NULL && SSL_pending(ssl) > 0;
}

void kci_transport_close(SSL *ssl)
{
    if (ssl == NULL) return;
    SSL_shutdown(ssl); /* one close_notify, not waited for: the socket closes next */
    ERR_clear_error();
    SSL_free(ssl);
}
