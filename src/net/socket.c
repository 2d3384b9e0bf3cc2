/* socket: listeners, probes and free ports, all close-on-exec. See socket.h. */
#include "net/socket.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static int bind_and_listen(int family, const struct sockaddr *addr, socklen_t len, bool dual_stack)
{
    int fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    int one = 1, zero = 0;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (dual_stack)
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero);
    if (bind(fd, addr, len) != 0 || listen(fd, SOMAXCONN) != 0) {
        int saved = errno;
        close(fd);
        errno = saved;
        return -1;
    }
    return fd;
}

int net_listen(const char *host, int port, char *err, size_t errlen)
{
    if (!host)
        host = "127.0.0.1";
    int fd = -1, last_errno = EADDRNOTAVAIL;
    if (!host[0]) {
        struct sockaddr_in6 any6 = {
            .sin6_family = AF_INET6, .sin6_port = htons((uint16_t)port), .sin6_addr = IN6ADDR_ANY_INIT};
        fd = bind_and_listen(AF_INET6, (const struct sockaddr *)&any6, sizeof any6, true);
        if (fd < 0) {
            struct sockaddr_in any4 = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
            fd = bind_and_listen(AF_INET, (const struct sockaddr *)&any4, sizeof any4, false);
        }
        if (fd < 0)
            snprintf(err, errlen, "cannot listen on port %d: %s", port, strerror(errno));
        return fd;
    }
    char service[16];
    snprintf(service, sizeof service, "%d", port);
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV | AI_PASSIVE};
    struct addrinfo *res = NULL;
    int gai = getaddrinfo(host, service, &hints, &res);
    if (gai != 0) {
        snprintf(err, errlen, "cannot resolve listen address '%s': %s", host, gai_strerror(gai));
        return -1;
    }
    for (int want = AF_INET, pass = 0; pass < 2 && fd < 0; pass++, want = AF_INET6)
        for (struct addrinfo *ai = res; ai && fd < 0; ai = ai->ai_next)
            if (ai->ai_family == want) {
                fd = bind_and_listen(ai->ai_family, ai->ai_addr, ai->ai_addrlen, false);
                if (fd < 0)
                    last_errno = errno;
            }
    freeaddrinfo(res);
    if (fd < 0)
        snprintf(err, errlen, "cannot listen on %s:%d: %s", host, port, strerror(last_errno));
    return fd;
}

uint16_t net_bound_port(int fd)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    if (getsockname(fd, (struct sockaddr *)&ss, &len) != 0)
        return 0;
    if (ss.ss_family == AF_INET)
        return ntohs(((const struct sockaddr_in *)(const void *)&ss)->sin_port);
    if (ss.ss_family == AF_INET6)
        return ntohs(((const struct sockaddr_in6 *)(const void *)&ss)->sin6_port);
    return 0;
}

bool net_sockaddr_is_loopback(const struct sockaddr *sa)
{
    if (!sa)
        return false;
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)(const void *)sa;
        return (ntohl(in->sin_addr.s_addr) >> 24) == 127;
    }
    if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)(const void *)sa;
        if (IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr))
            return true;
        return IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr) && in6->sin6_addr.s6_addr[12] == 127;
    }
    return false;
}

int net_free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return 0;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    int port = 0;
    if (bind(fd, (struct sockaddr *)&a, sizeof a) == 0)
        port = net_bound_port(fd);
    close(fd);
    return port;
}

bool net_port_answers(int port, double timeout_s)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0)
        return false;
    struct sockaddr_in addr = {
        .sin_family = AF_INET, .sin_port = htons((uint16_t)port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    bool answers = connect(fd, (struct sockaddr *)&addr, sizeof addr) == 0;
    if (!answers && errno == EINPROGRESS) {
        struct pollfd pfd = {.fd = fd, .events = POLLOUT};
        int rc;
        do
            rc = poll(&pfd, 1, (int)(timeout_s * 1000));
        while (rc < 0 && errno == EINTR);
        int soerr = 0;
        socklen_t len = sizeof soerr;
        if (rc == 0)
            answers = true;
        else if (rc == 1 && getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len) == 0)
            answers = soerr == 0;
    }
    close(fd);
    return answers;
}
