/*
 * memvisor's REST API, Cloud Hypervisor's (--api-socket): an HTTP server on a unix socket, run
 * by libmicrohttpd on the main thread from the main loop (loop.h). Requests: routes.h.
 */
#ifndef MEMVISOR_API_API_H
#define MEMVISOR_API_API_H

#include <stddef.h>

struct vm;

/* Connections served at once; more wait in the socket's backlog or are refused. */
#define API_CONNECTIONS 8
/* An idle connection is closed after this many seconds. */
#define API_IDLE_TIMEOUT_S 30

/*
 * Create the socket vm->cfg.api_socket (mode 0600: only memvisor's user may connect; an
 * existing file at the path is refused, never replaced) and serve it from vm->loop. Nothing
 * without --api-socket. Main thread, while it is the only thread (the socket's mode comes from
 * the process-wide umask). -1 with "--api-socket: reason" in err, nothing left behind.
 */
int api__start(struct vm *vm, char *err, size_t errlen);
/*
 * Close every connection and the socket, remove the socket file (only if it is still the one
 * api__start made); with the loop still open. Nothing when the API is not running. Every step
 * is tried: -1 with the first failure in err.
 */
int api__stop(struct vm *vm, char *err, size_t errlen);

#endif
