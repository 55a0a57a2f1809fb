/* net.c - see net.h. SO_REUSEADDR so a restarted daemon can bind at once
 * while old connections linger in TIME_WAIT. */
#include "net.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

enum { PORT_TEXT_BYTES = 16 };

static int bound_port(int fd)
{
    struct sockaddr_storage bound = {0};
    socklen_t bound_len = sizeof bound;
    if (getsockname(fd, (struct sockaddr *)&bound, &bound_len) != 0) return -1;
    return ntohs(bound.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&bound)->sin6_port
                                             : ((struct sockaddr_in *)&bound)->sin_port);
}

kc_err kci_listen_tcp(const char *host, int port, int backlog, const char *what, int *fd_out,
                      int *port_out, char *error, size_t error_size)
{
    char port_text[PORT_TEXT_BYTES];
    snprintf(port_text, sizeof port_text, "%d", port < 0 ? 0 : port);
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    struct addrinfo *found = NULL;
    int gai = getaddrinfo(host, port_text, &hints, &found);
    if (gai != 0) {
        snprintf(error, error_size, "cannot resolve the %s listen address %s: %s", what, host,
                 gai_strerror(gai));
        return KC_ERR_CONFIG;
    }
    int fd = socket(found->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    if (fd >= 0) setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    bool failed =
        fd < 0 || bind(fd, found->ai_addr, found->ai_addrlen) != 0 || listen(fd, backlog) != 0;
    freeaddrinfo(found);
    int bound = failed ? -1 : bound_port(fd);
    if (failed || bound < 0) {
        snprintf(error, error_size, "cannot listen for %s connections on %s:%s: %s", what, host,
                 port_text, strerror(errno));
        if (fd >= 0) close(fd);
        return KC_ERR_IO;
    }
    *fd_out = fd;
    *port_out = bound;
    return KC_OK;
}

bool kci_host_is_loopback(const char *host)
{
    return strncmp(host, "127.", 4) == 0 || strcmp(host, "::1") == 0 ||
           strcmp(host, "localhost") == 0;
}
