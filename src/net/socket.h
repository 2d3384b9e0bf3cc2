/* socket: the TCP sockets axllama opens itself, every one close-on-exec (a runtime child must never
 * inherit a listener or a probe): listeners for the HTTP servers, the probe that tells whether
 * something accepts connections on a loopback port, and a free loopback port for a child runtime. */
#ifndef AXLLAMA_NET_SOCKET_H
#define AXLLAMA_NET_SOCKET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/* Binds host:port and listens (backlog SOMAXCONN, SO_REUSEADDR, CLOEXEC, blocking). host "" =
 * all interfaces: IPv6 dual-stack when possible, else IPv4; a name that resolves to both families
 * binds its IPv4 address first; port 0 = an ephemeral port (net_bound_port tells which). Returns
 * the socket, or -1 with a message in err ("cannot listen on 127.0.0.1:8000: Address already in
 * use", "cannot resolve listen address 'x': ..."). */
int net_listen(const char *host, int port, char *err, size_t errlen);

/* The local port of a bound socket (0 on error). */
uint16_t net_bound_port(int fd);

/* Whether a socket address is a loopback one (127.0.0.0/8, ::1, ::ffff:127.x). */
bool net_sockaddr_is_loopback(const struct sockaddr *sa);

/* A TCP port on 127.0.0.1 that nothing listens on right now (0 if none could be had). Another
 * process may take it before the caller binds it: callers that start a child on it detect that
 * (the supervisor refuses a port that already answers). */
int net_free_port(void);

/* True if something accepts a TCP connection on 127.0.0.1:port within timeout_s. A full accept
 * backlog (no answer in time) also means a listener exists. */
bool net_port_answers(int port, double timeout_s);

#endif
