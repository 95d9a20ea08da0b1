/*
 * The REST API's requests and answers, independent of HTTP transport (server.c): what the unit
 * tests drive directly. Paths, methods and bodies are Cloud Hypervisor's
 * (vmm/src/api/openapi/cloud-hypervisor.yaml); errors are one line of plain text.
 */
#ifndef MEMVISOR_API_ROUTES_H
#define MEMVISOR_API_ROUTES_H

#include <stdbool.h>
#include <stddef.h>

struct vm;
struct json_object;

#define API_PREFIX "/api/v1/"
/* Larger request bodies are answered 413 (the largest real one is well under 1 KiB). */
#define API_BODY_MAX (64 * 1024)

struct api_reply {
	unsigned status;		/* HTTP status */
	char *body;			/* malloc'ed, NUL-terminated; NULL: no body (204) */
	const char *content_type;	/* of body: application/json or text/plain */
	const char *allow;		/* 405: the method the path takes */
	bool stop;			/* end the VM (status 0) once the answer has been sent */
};

/*
 * Answer one complete request: method and url as the client sent them (url without the query),
 * body of len bytes followed by a NUL, which the JSON parser reads (server.c's buffer has it;
 * may be NULL when len is 0). Never fails: every outcome, out of memory included, is a status.
 * Main thread.
 */
void api__route(struct vm *vm, const char *method, const char *url, const char *body, size_t len,
		struct api_reply *reply);
/* Fill reply with status and a one-line text body made from fmt. */
void api_reply__text(struct api_reply *reply, unsigned status, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
void api_reply__free(struct api_reply *reply);

/* info.c: the bodies of GET vmm.ping and GET vm.info (CH's VmmPingResponse and VmInfo). */
struct json_object *info__ping(void);
struct json_object *info__vm(const struct vm *vm);

#endif
