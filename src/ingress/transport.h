/* transport.h - how the ingress reads and writes a connection: plain TCP,
 * or TLS when `ingress { cert_file, key_file }` are set (docs/ingress.md).
 *
 * TLS runs on the ingress's non-blocking sockets with OpenSSL: the
 * handshake happens inside the first reads and writes (SSL_set_accept_state),
 * and a read or a write that needs the other direction says so
 * (KCI_TRANSPORT_WANT_READ / _WANT_WRITE) so the loop waits for it. TLS 1.2
 * or newer, with the broker's forward-secret AEAD suites (broker/tls.h). */
#ifndef KCI_INGRESS_TRANSPORT_H
#define KCI_INGRESS_TRANSPORT_H

#include <openssl/ssl.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "kingcobra/err.h"

enum {
    KCI_TRANSPORT_CLOSED = 0,      /* the peer is done sending */
    KCI_TRANSPORT_WANT_READ = -1,  /* nothing now: wait until readable */
    KCI_TRANSPORT_WANT_WRITE = -2, /* nothing now: wait until writable (TLS) */
    KCI_TRANSPORT_FAILED = -3,     /* the connection is broken */
};

/* The server context from PEM files; *out NULL without cert_file. */
kc_err kci_transport_tls_create(SSL_CTX **out, const char *cert_file, const char *key_file,
                                char *error, size_t error_size);
void kci_transport_tls_destroy(SSL_CTX *context);
/* A TLS session on fd (NULL on failure); free with kci_transport_close. */
SSL *kci_transport_tls_accept(SSL_CTX *context, int fd);
/* Bytes read (> 0), or one of the values above. ssl NULL: plain read. */
ssize_t kci_transport_read(SSL *ssl, int fd, void *buffer, size_t size);
/* Bytes written (> 0), or WANT_READ / WANT_WRITE / FAILED. */
ssize_t kci_transport_write(SSL *ssl, int fd, const void *bytes, size_t size);
/* Whether ssl holds decrypted bytes not read yet (epoll cannot tell). */
bool kci_transport_pending(SSL *ssl);
void kci_transport_close(SSL *ssl);

#endif
