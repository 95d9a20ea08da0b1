/*
 * The main loop: one epoll set on which main waits while the vCPUs run. Every event that can end
 * or steer the VM arrives as a readable file descriptor: the stop eventfd (vm__stop, from any
 * thread), the stop signals (a signalfd), and later the REST API's sockets (loop__add).
 *
 * The stop signals (SIGTERM, SIGINT, SIGHUP) are blocked in every thread from the start of main
 * to its end: none interrupts setup or teardown, and one that comes before the loop runs waits
 * in the signalfd.
 */
#ifndef MEMVISOR_LOOP_H
#define MEMVISOR_LOOP_H

#include <stddef.h>

struct vm;

/* A readable fd's handler: 0, or -1 with one line in err, which ends the VM as a VMM failure. */
typedef int (*loop_ready_fn)(struct vm *vm, int fd, char *err, size_t errlen);

struct loop_source {
	int fd;
	const char *name;	/* for messages; not copied */
	loop_ready_fn ready;	/* NULL once removed (loop__remove) */
};

/* The stop eventfd, the signalfd and room for the API's listening and client sockets. */
#define LOOP_MAX_SOURCES 16

struct loop {
	int epoll_fd;
	int stop_fd;		/* eventfd: vm__stop writes, the loop wakes */
	int signal_fd;		/* the stop signals */
	/* Fixed in place: epoll hands back pointers into this array. */
	struct loop_source sources[LOOP_MAX_SOURCES];
	int nsources;
};

/* A loop that owns nothing: loop__exit and loop__wake are no-ops on it. */
#define LOOP_EMPTY ((struct loop){ .epoll_fd = -1, .stop_fd = -1, .signal_fd = -1 })

/* The exit status for a stop signal, 128 + its number as a shell reports it; -1 for others. */
int loop__signal_status(int sig);

/*
 * Block the stop signals in the calling thread, which must be the only one (threads created
 * later inherit the mask), then create the epoll set, the stop eventfd and the signalfd.
 * On failure nothing is left open (the signals stay blocked): -1, err.
 */
int loop__init(struct loop *l, char *err, size_t errlen);
/* Watch fd for reading; at most LOOP_MAX_SOURCES in all. On failure errno is epoll_ctl's. */
int loop__add(struct loop *l, int fd, const char *name, loop_ready_fn ready, char *err,
	      size_t errlen);
/* Stop watching fd (an input at its end); main thread only. Its slot is not reused. */
int loop__remove(struct loop *l, int fd, char *err, size_t errlen);
/* Make the current or next wait return. Any thread. */
int loop__wake(struct loop *l, char *err, size_t errlen);
/* Wait at most timeout_ms (-1: without limit) for one batch of events and handle them. */
int loop__poll(struct vm *vm, int timeout_ms, char *err, size_t errlen);
/* Handle events until the VM is stopping (vm__stop); its status is then vm__exit_status. */
int loop__run(struct vm *vm, char *err, size_t errlen);
/* Close what loop__init opened; the signals stay blocked (the teardown is not interrupted). */
int loop__exit(struct loop *l, char *err, size_t errlen);

#endif
