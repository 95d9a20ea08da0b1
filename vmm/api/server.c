/*
 * The REST API's transport: our own AF_UNIX listening socket (its mode is ours to make) handed
 * to libmicrohttpd (MHD_OPTION_LISTEN_SOCKET: MHD then knows it is not TCP), MHD in external
 * epoll mode. Two main-loop sources and no thread: MHD's epoll fd (the listening socket and the
 * connections), and a timerfd for the deadline MHD_get_timeout asks for (idle connections, and
 * work MHD left for a next run: its sockets are edge-triggered). Requests run on the main
 * thread, between two waits of the loop.
 */
#include <microhttpd.h>
#include <poll.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <sys/un.h>
#include <unistd.h>

#include "api/api.h"
#include "api/routes.h"
#include "util.h"
#include "vm.h"

#define HTTP_PAYLOAD_TOO_LARGE 413

struct api {
	struct vm *vm;
	struct MHD_Daemon *daemon;
	int listen_fd, mhd_fd, timer_fd;	/* listen_fd is MHD's once it started */
	int sock_fd;		/* the listening socket, MHD's: polled, never closed here */
	bool mhd_watched, timer_watched;
	char *path;
	dev_t dev;		/* the socket file bind made: only that one is removed */
	ino_t ino;
};

/* One request's state, from its headers to its answer being sent. */
struct api_request {
	char *body;		/* len bytes and a NUL (routes.h) */
	size_t len;
	bool too_big;		/* the rest of the body is dropped, the answer is 413 */
	bool stop;		/* vm.shutdown: stop once this answer is out */
};

static void api__log(void *cls, const char *fmt, va_list ap)
{
	(void)cls;
	fputs("memvisor: api: ", stderr);
	vfprintf(stderr, fmt, ap);
}

/* Hand reply (its body included) to MHD for c. */
static enum MHD_Result api__send(struct MHD_Connection *c, struct api_reply *reply)
{
	struct MHD_Response *resp;
	enum MHD_Result r;

	if (reply->body) {
		resp = MHD_create_response_from_buffer(strlen(reply->body), reply->body,
						       MHD_RESPMEM_MUST_FREE);
		if (!resp)
			api_reply__free(reply);
		reply->body = NULL;	/* MHD's now */
	} else {
		resp = MHD_create_response_from_buffer(0, NULL, MHD_RESPMEM_PERSISTENT);
	}
	if (!resp)
		return MHD_NO;	/* MHD closes the connection */
	if ((reply->content_type &&
	     MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, reply->content_type) != MHD_YES) ||
	    (reply->allow && MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, reply->allow) != MHD_YES))
		r = MHD_NO;
	else
		r = MHD_queue_response(c, reply->status, resp);
	MHD_destroy_response(resp);
	return r;
}

/* A Content-Length above the limit: answered before any of the body is read. */
static bool api__announced_too_big(struct MHD_Connection *c)
{
	const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
						     MHD_HTTP_HEADER_CONTENT_LENGTH);
	uint64_t n;

	/* MHD itself answers a Content-Length that is not a number. */
	return cl && !parse_size(cl, &n) && n >= API_BODY_MAX;
}

/*
 * MHD calls this once when the headers are in, once per piece of the body, and once at the end
 * (*upload_data_size 0), where the request is answered.
 */
static enum MHD_Result api__access(void *cls, struct MHD_Connection *c, const char *url,
				   const char *method, const char *version,
				   const char *upload_data, size_t *upload_data_size,
				   void **req_cls)
{
	struct api *api = cls;
	struct api_request *rq = *req_cls;
	struct api_reply reply = { 0 };

	(void)version;
	if (!rq) {
		rq = calloc(1, sizeof(*rq));
		if (!rq)
			return MHD_NO;
		*req_cls = rq;
		if (!api__announced_too_big(c))
			return MHD_YES;
		rq->too_big = true;
	} else if (*upload_data_size) {
		size_t n = *upload_data_size;
		char *b;

		*upload_data_size = 0;
		if (rq->too_big || n >= API_BODY_MAX - rq->len) {
			rq->too_big = true;
			return MHD_YES;
		}
		b = realloc(rq->body, rq->len + n + 1);
		if (!b)
			return MHD_NO;
		memcpy(b + rq->len, upload_data, n);
		rq->len += n;
		b[rq->len] = '\0';
		rq->body = b;
		return MHD_YES;
	}
	if (rq->too_big)
		api_reply__text(&reply, HTTP_PAYLOAD_TOO_LARGE, "request body larger than %d bytes",
				API_BODY_MAX - 1);
	else
		api__route(api->vm, method, url, rq->body ? rq->body : "", rq->len, &reply);
	rq->stop = reply.stop;
	return api__send(c, &reply);
}

/* The request is over: its answer sent, or the connection gone. */
static void api__completed(void *cls, struct MHD_Connection *c, void **req_cls,
			   enum MHD_RequestTerminationCode toe)
{
	struct api *api = cls;
	struct api_request *rq = *req_cls;

	(void)c, (void)toe;
	if (!rq)
		return;
	if (rq->stop)
		vm__stop(api->vm, 0);
	free(rq->body);
	free(rq);
	*req_cls = NULL;
}

/*
 * At its connection limit MHD takes the listening socket out of its epoll set, and puts it back
 * only at the start of a later MHD_run. A run that ends connections therefore leaves clients
 * waiting in the backlog with nothing to wake the loop, for good (found with 32 clients at once:
 * conformance/faults.py, fault-api-load). True when there is room and a client waits.
 */
static bool api__backlog_waits(const struct api *api)
{
	const union MHD_DaemonInfo *info =
		MHD_get_daemon_info(api->daemon, MHD_DAEMON_INFO_CURRENT_CONNECTIONS);
	struct pollfd p = { .fd = api->sock_fd, .events = POLLIN };

	return info && info->num_connections < API_CONNECTIONS && poll(&p, 1, 0) == 1 &&
	       (p.revents & POLLIN);
}

/* Let MHD do its work, then arm the timer for when it wants to run next. */
static int api__service(struct api *api, char *err, size_t errlen)
{
	struct itimerspec when = { 0 };
	MHD_UNSIGNED_LONG_LONG ms;

	/* Bounded: a listening socket MHD cannot accept from (EMFILE) must not hold the loop. */
	for (unsigned run = 0; run < API_CONNECTIONS; run++) {
		if (MHD_run(api->daemon) != MHD_YES)
			return error(err, errlen, "api: MHD_run failed");
		if (!api__backlog_waits(api))
			break;
	}
	if (MHD_get_timeout(api->daemon, &ms) == MHD_YES) {
		/* 0: work pending now; a zero it_value would disarm the timer instead. */
		when.it_value.tv_sec = (time_t)(ms / 1000);
		when.it_value.tv_nsec = ms ? (long)(ms % 1000) * 1000000 : 1;
	}
	if (timerfd_settime(api->timer_fd, 0, &when, NULL) < 0)
		return error(err, errlen, "api: timerfd_settime: %s", strerror(errno));
	return 0;
}

static int api__mhd_ready(struct vm *vm, int fd, char *err, size_t errlen)
{
	(void)fd;
	return api__service(vm->api, err, errlen);
}

static int api__timer_ready(struct vm *vm, int fd, char *err, size_t errlen)
{
	uint64_t expirations;

	if (read(fd, &expirations, sizeof(expirations)) < 0 && errno != EAGAIN)
		return error(err, errlen, "api: reading the timerfd: %s", strerror(errno));
	return api__service(vm->api, err, errlen);
}

/*
 * bind makes the socket file with mode 0777 & ~umask: a umask of 0177 gives 0600 with no window
 * in which another user could connect (a chmod after bind would leave one). The umask is the
 * process's: api__start runs while main is the only thread.
 */
static int api__listen(struct api *api, const char *path, char *err, size_t errlen)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	struct stat st;
	mode_t old;
	int r, e;

	if (strlen(path) >= sizeof(sun.sun_path))
		return error(err, errlen, "--api-socket: '%s' is longer than a unix socket's %zu bytes",
			     path, sizeof(sun.sun_path) - 1);
	strcpy(sun.sun_path, path);
	api->listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (api->listen_fd < 0)
		return error(err, errlen, "--api-socket: socket: %s", strerror(errno));
	old = umask(0177);
	r = bind(api->listen_fd, (struct sockaddr *)&sun, sizeof(sun));
	e = errno;
	umask(old);
	if (r < 0) {
		if (e == EADDRINUSE)
			return error(err, errlen, "--api-socket: %s exists (left by an earlier run? "
				     "memvisor never replaces a file)", path);
		if (e == ENOENT || e == ENOTDIR)
			return error(err, errlen, "--api-socket: %s: its directory does not exist",
				     path);
		return error(err, errlen, "--api-socket: %s: %s", path, strerror(e));
	}
	api->path = strdup(path);
	if (!api->path) {
		if (unlink(path) < 0)
			report("--api-socket: removing %s: %s", path, strerror(errno));
		return error(err, errlen, "--api-socket: out of memory");
	}
	if (lstat(path, &st) < 0)
		return error(err, errlen, "--api-socket: %s: %s", path, strerror(errno));
	api->dev = st.st_dev;
	api->ino = st.st_ino;
	if (!S_ISSOCK(st.st_mode) || (st.st_mode & 07777) != 0600)
		return error(err, errlen, "--api-socket: %s: mode %04o after bind, not 0600", path,
			     (unsigned)(st.st_mode & 07777));
	if (listen(api->listen_fd, API_CONNECTIONS) < 0)
		return error(err, errlen, "--api-socket: listen: %s", strerror(errno));
	return 0;
}

static int api__open_mhd(struct api *api, char *err, size_t errlen)
{
	const union MHD_DaemonInfo *info;

	api->daemon = MHD_start_daemon(MHD_USE_EPOLL | MHD_USE_ERROR_LOG, 0, NULL, NULL,
				       api__access, api,
				       MHD_OPTION_EXTERNAL_LOGGER, api__log, api,
				       MHD_OPTION_LISTEN_SOCKET, api->listen_fd,
				       MHD_OPTION_NOTIFY_COMPLETED, api__completed, api,
				       MHD_OPTION_CONNECTION_LIMIT, (unsigned)API_CONNECTIONS,
				       MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)API_IDLE_TIMEOUT_S,
				       MHD_OPTION_END);
	if (!api->daemon)
		return error(err, errlen, "--api-socket: libmicrohttpd would not start");
	api->sock_fd = api->listen_fd;
	api->listen_fd = -1;	/* MHD_stop_daemon closes it */
	info = MHD_get_daemon_info(api->daemon, MHD_DAEMON_INFO_EPOLL_FD);
	if (!info || info->epoll_fd < 0)
		return error(err, errlen, "--api-socket: libmicrohttpd has no epoll fd");
	api->mhd_fd = info->epoll_fd;
	api->timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	if (api->timer_fd < 0)
		return error(err, errlen, "--api-socket: timerfd_create: %s", strerror(errno));
	return 0;
}

int api__start(struct vm *vm, char *err, size_t errlen)
{
	struct api *api;
	char ignored[256];

	if (!vm->cfg.api_socket)
		return 0;
	api = calloc(1, sizeof(*api));
	if (!api)
		return error(err, errlen, "--api-socket: out of memory");
	*api = (struct api){ .vm = vm, .listen_fd = -1, .mhd_fd = -1, .timer_fd = -1,
			     .sock_fd = -1 };
	vm->api = api;
	if (api__listen(api, vm->cfg.api_socket, err, errlen) < 0 ||
	    api__open_mhd(api, err, errlen) < 0)
		goto fail;
	if (loop__add(&vm->loop, api->mhd_fd, "api connections", api__mhd_ready, err, errlen) < 0)
		goto fail;
	api->mhd_watched = true;
	if (loop__add(&vm->loop, api->timer_fd, "api timer", api__timer_ready, err, errlen) < 0)
		goto fail;
	api->timer_watched = true;
	return 0;
fail:
	/* The first failure is the one to report. */
	api__stop(vm, ignored, sizeof(ignored));
	return -1;
}

/* Record a failure of the teardown: the first one goes to err. */
static void api__first(int *r, char *err, size_t errlen, const char *fmt, ...)
	__printf(4, 5);
static void api__first(int *r, char *err, size_t errlen, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (!*r)
		snprintf(err, errlen, "%s", msg);
	*r = -1;
}

int api__stop(struct vm *vm, char *err, size_t errlen)
{
	struct api *api = vm->api;
	char msg[256];
	struct stat st;
	int r = 0;

	if (!api)
		return 0;
	if (api->timer_watched && loop__remove(&vm->loop, api->timer_fd, msg, sizeof(msg)) < 0)
		api__first(&r, err, errlen, "%s", msg);
	if (api->mhd_watched && loop__remove(&vm->loop, api->mhd_fd, msg, sizeof(msg)) < 0)
		api__first(&r, err, errlen, "%s", msg);
	/* Closes the socket, the connections, the epoll fd; pending requests end as terminated. */
	if (api->daemon)
		MHD_stop_daemon(api->daemon);
	if (api->timer_fd >= 0 && close(api->timer_fd) < 0)
		api__first(&r, err, errlen, "api: close(timerfd): %s", strerror(errno));
	if (api->listen_fd >= 0 && close(api->listen_fd) < 0)
		api__first(&r, err, errlen, "api: close(socket): %s", strerror(errno));
	/* Someone may have replaced the file since: theirs is left alone. */
	if (api->path && lstat(api->path, &st) == 0 && st.st_dev == api->dev &&
	    st.st_ino == api->ino && unlink(api->path) < 0)
		api__first(&r, err, errlen, "api: removing %s: %s", api->path, strerror(errno));
	free(api->path);
	free(api);
	vm->api = NULL;
	return r;
}
