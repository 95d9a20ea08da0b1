/* The main loop: epoll over the stop eventfd, the stop signals' signalfd and later the API. */
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "loop.h"
#include "util.h"
#include "vm.h"

/* These end the VM cleanly: shared file-backed zones are synced, nothing leaks. */
static const int stop_signals[] = { SIGTERM, SIGINT, SIGHUP };

int loop__signal_status(int sig)
{
	for (size_t i = 0; i < ARRAY_SIZE(stop_signals); i++)
		if (stop_signals[i] == sig)
			return 128 + sig;
	return -1;
}

static int loop__stop_signal_set(sigset_t *set, char *err, size_t errlen)
{
	if (sigemptyset(set) < 0)
		return error(err, errlen, "sigemptyset: %s", strerror(errno));
	for (size_t i = 0; i < ARRAY_SIZE(stop_signals); i++)
		if (sigaddset(set, stop_signals[i]) < 0)
			return error(err, errlen, "sigaddset: %s", strerror(errno));
	return 0;
}

/* Close *fd unless it is -1, which it is afterwards either way. */
static int loop__close(int *fd, const char *what, char *err, size_t errlen)
{
	int r = 0;

	if (*fd >= 0 && close(*fd) < 0)
		r = error(err, errlen, "close(%s): %s", what, strerror(errno));
	*fd = -1;
	return r;
}

/* The wake-up only needs to make the fd readable: the VM's state says why. */
static int loop__stop_ready(struct vm *vm, int fd, char *err, size_t errlen)
{
	uint64_t n;

	(void)vm;
	if (read(fd, &n, sizeof(n)) < 0 && errno != EAGAIN && errno != EINTR)
		return error(err, errlen, "reading the stop eventfd: %s", strerror(errno));
	return 0;
}

static int loop__signal_ready(struct vm *vm, int fd, char *err, size_t errlen)
{
	struct signalfd_siginfo si;
	ssize_t n;

	/* Non-blocking: drain every signal queued since the last wait. */
	while ((n = read(fd, &si, sizeof(si))) == (ssize_t)sizeof(si)) {
		int status = loop__signal_status((int)si.ssi_signo);

		/* Only stop signals are in the set; a second one changes nothing (first wins). */
		if (status >= 0)
			vm__stop(vm, status);
	}
	if (n < 0 && errno != EAGAIN && errno != EINTR)
		return error(err, errlen, "reading the signalfd: %s", strerror(errno));
	if (n > 0)
		return error(err, errlen, "signalfd: short read of %zd bytes", n);
	return 0;
}

int loop__init(struct loop *l, char *err, size_t errlen)
{
	sigset_t set;
	char ignored[128];
	int e;

	*l = LOOP_EMPTY;
	if (loop__stop_signal_set(&set, err, errlen) < 0)
		return -1;
	e = pthread_sigmask(SIG_BLOCK, &set, NULL);
	if (e)
		return error(err, errlen, "pthread_sigmask: %s", strerror(e));
	l->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
	if (l->epoll_fd < 0)
		return error(err, errlen, "epoll_create1: %s", strerror(errno));
	l->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (l->stop_fd < 0) {
		error(err, errlen, "eventfd: %s", strerror(errno));
		goto fail;
	}
	l->signal_fd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
	if (l->signal_fd < 0) {
		error(err, errlen, "signalfd: %s", strerror(errno));
		goto fail;
	}
	if (loop__add(l, l->stop_fd, "stop eventfd", loop__stop_ready, err, errlen) < 0 ||
	    loop__add(l, l->signal_fd, "signalfd", loop__signal_ready, err, errlen) < 0)
		goto fail;
	return 0;
fail:
	/* The first failure is the one to report; closing fresh fds adds nothing to it. */
	loop__exit(l, ignored, sizeof(ignored));
	return -1;
}

int loop__add(struct loop *l, int fd, const char *name, loop_ready_fn ready, char *err,
	      size_t errlen)
{
	struct loop_source *src;
	struct epoll_event ev = { .events = EPOLLIN };

	if (l->nsources == LOOP_MAX_SOURCES)
		return error(err, errlen, "main loop: no room for %s (%d sources)", name,
			     LOOP_MAX_SOURCES);
	src = &l->sources[l->nsources];
	*src = (struct loop_source){ .fd = fd, .name = name, .ready = ready };
	ev.data.ptr = src;
	if (epoll_ctl(l->epoll_fd, EPOLL_CTL_ADD, fd, &ev) < 0) {
		int e = errno;

		error(err, errlen, "epoll_ctl(ADD %s): %s", name, strerror(e));
		errno = e;	/* callers tell "cannot be watched" (EPERM) from failures */
		return -1;
	}
	l->nsources++;
	return 0;
}

int loop__remove(struct loop *l, int fd, char *err, size_t errlen)
{
	for (int i = 0; i < l->nsources; i++) {
		struct loop_source *src = &l->sources[i];

		if (src->fd != fd || !src->ready)
			continue;
		if (epoll_ctl(l->epoll_fd, EPOLL_CTL_DEL, fd, NULL) < 0)
			return error(err, errlen, "epoll_ctl(DEL %s): %s", src->name,
				     strerror(errno));
		/* The slot stays: epoll may hand back its pointer in the batch being handled. */
		src->ready = NULL;
		return 0;
	}
	return error(err, errlen, "main loop: fd %d is not watched", fd);
}

int loop__wake(struct loop *l, char *err, size_t errlen)
{
	uint64_t one = 1;
	ssize_t n;

	if (l->stop_fd < 0)
		return 0;
	do
		n = write(l->stop_fd, &one, sizeof(one));
	while (n < 0 && errno == EINTR);
	if (n != (ssize_t)sizeof(one))
		return error(err, errlen, "writing the stop eventfd: %s",
			     n < 0 ? strerror(errno) : "short write");
	return 0;
}

int loop__poll(struct vm *vm, int timeout_ms, char *err, size_t errlen)
{
	struct epoll_event events[LOOP_MAX_SOURCES];
	int n = epoll_wait(vm->loop.epoll_fd, events, LOOP_MAX_SOURCES, timeout_ms);

	if (n < 0) {
		/* A signal outside the stop set (the vCPU kick is only sent to vCPU threads). */
		if (errno == EINTR)
			return 0;
		return error(err, errlen, "epoll_wait: %s", strerror(errno));
	}
	for (int i = 0; i < n; i++) {
		const struct loop_source *src = events[i].data.ptr;

		if (src->ready && src->ready(vm, src->fd, err, errlen) < 0)
			return -1;
	}
	return 0;
}

int loop__run(struct vm *vm, char *err, size_t errlen)
{
	while (!vm__stopping(vm))
		if (loop__poll(vm, -1, err, errlen) < 0)
			return -1;
	return 0;
}

int loop__exit(struct loop *l, char *err, size_t errlen)
{
	/* Every fd is closed whatever happens to the others; the first failure is returned. */
	int r = loop__close(&l->signal_fd, "signalfd", err, errlen);

	if (loop__close(&l->stop_fd, "stop eventfd", err, r ? 0 : errlen) < 0)
		r = -1;
	if (loop__close(&l->epoll_fd, "epoll", err, r ? 0 : errlen) < 0)
		r = -1;
	l->nsources = 0;
	return r;
}
