/*
 * The REST API's endpoints: a path and a method to a handler, the request's JSON read as Cloud
 * Hypervisor's serde structs read it (VmResizeData, VmResizeZoneData in vmm/src/api/mod.rs:
 * unknown fields ignored, an Option field may be absent or null, a u64 takes only a
 * non-negative integer), then the hotplug or VM call. Status codes as CH's: 200 with JSON for a
 * GET, 204 for a PUT that succeeded; unlike CH, errors are one line of text (the request's fault
 * 400, memvisor's 500), an unknown path 404 and a wrong method 405.
 */
#include <json-c/json.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/routes.h"
#include "memory/hotplug.h"
#include "util.h"
#include "vm.h"

#define HTTP_OK 200
#define HTTP_NO_CONTENT 204
#define HTTP_BAD_REQUEST 400
#define HTTP_NOT_FOUND 404
#define HTTP_METHOD_NOT_ALLOWED 405
#define HTTP_INTERNAL_ERROR 500

void api_reply__free(struct api_reply *reply)
{
	free(reply->body);
	reply->body = NULL;
}

void api_reply__text(struct api_reply *reply, unsigned status, const char *fmt, ...)
{
	char raw[1024], line[1024];
	size_t n;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(raw, sizeof(raw), fmt, ap);
	va_end(ap);
	/* One harmless line whatever a message quoted (a URL, a zone id, a JSON parser's text). */
	error(line, sizeof(line), "%s", raw);
	n = strlen(line);
	api_reply__free(reply);
	*reply = (struct api_reply){ .status = status, .content_type = "text/plain" };
	reply->body = malloc(n + 2);
	if (!reply->body)
		return;		/* the status alone says it */
	memcpy(reply->body, line, n);
	memcpy(reply->body + n, "\n", 2);
}

/* 200 with o serialized (o is consumed); 500 when o or its text could not be made. */
static void reply_json(struct api_reply *reply, const char *what, struct json_object *o)
{
	const char *text = o ? json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN |
							      JSON_C_TO_STRING_NOSLASHESCAPE) : NULL;
	char *body = text ? strdup(text) : NULL;

	json_object_put(o);
	if (!body) {
		api_reply__text(reply, HTTP_INTERNAL_ERROR, "%s: out of memory", what);
		return;
	}
	api_reply__free(reply);
	*reply = (struct api_reply){ .status = HTTP_OK, .body = body,
				     .content_type = "application/json" };
}

static void reply_done(struct api_reply *reply)
{
	api_reply__free(reply);
	*reply = (struct api_reply){ .status = HTTP_NO_CONTENT };
}

/* A hotplug__* result that is not 0: the request's fault or memvisor's. */
static void reply_hotplug(struct api_reply *reply, int ret, const char *err)
{
	api_reply__text(reply, ret == HOTPLUG_REFUSED ? HTTP_BAD_REQUEST : HTTP_INTERNAL_ERROR,
			"%s", err);
}

/*
 * The body as a JSON object, or NULL with a 400 in reply. body[len] is '\0' (server.c): handing
 * it to the parser ends a top-level number, and a NUL inside the body stops the parse early,
 * which the check of the parse end then refuses.
 */
static struct json_object *parse_object(const char *what, const char *body, size_t len,
					struct api_reply *reply)
{
	struct json_tokener *tok;
	struct json_object *o;
	enum json_tokener_error e;
	size_t end;

	if (!len) {
		api_reply__text(reply, HTTP_BAD_REQUEST, "%s: the request needs a JSON body", what);
		return NULL;
	}
	if (len >= API_BODY_MAX || body[len]) {	/* server.c's limits: a caller's bug */
		api_reply__text(reply, HTTP_INTERNAL_ERROR, "%s: body not terminated", what);
		return NULL;
	}
	tok = json_tokener_new();
	if (!tok) {
		api_reply__text(reply, HTTP_INTERNAL_ERROR, "%s: out of memory", what);
		return NULL;
	}
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
	o = json_tokener_parse_ex(tok, body, (int)len + 1);
	e = json_tokener_get_error(tok);
	end = json_tokener_get_parse_end(tok);
	json_tokener_free(tok);
	if (e != json_tokener_success) {
		api_reply__text(reply, HTTP_BAD_REQUEST, "%s: malformed JSON at byte %zu: %s", what,
				end, json_tokener_error_desc(e));
	} else if (end != len) {
		api_reply__text(reply, HTTP_BAD_REQUEST, "%s: malformed JSON: trailing characters "
				"at byte %zu", what, end);
	} else if (!json_object_is_type(o, json_type_object)) {
		api_reply__text(reply, HTTP_BAD_REQUEST, "%s: expected a JSON object, got %s", what,
				json_type_to_name(json_object_get_type(o)));
	} else {
		return o;
	}
	json_object_put(o);
	return NULL;
}

/*
 * A u64 field as serde reads Option<u64>: 1 with *v when it holds an integer of 0 or more,
 * 0 when absent or null, -1 with a 400 in reply for any other value. json-c saturates integers
 * above 2^64-1 to that value, which no size check accepts.
 */
static int field_u64(struct json_object *o, const char *what, const char *key, uint64_t *v,
		     struct api_reply *reply)
{
	struct json_object *f;

	if (!json_object_object_get_ex(o, key, &f) || !f)
		return 0;
	if (!json_object_is_type(f, json_type_int) || json_object_get_int64(f) < 0) {
		api_reply__text(reply, HTTP_BAD_REQUEST, "%s: %s: expected an integer of 0 or more, "
				"got %s", what, key,
				json_object_is_type(f, json_type_int) ? "a negative number" :
				json_type_to_name(json_object_get_type(f)));
		return -1;
	}
	*v = json_object_get_uint64(f);
	return 1;
}

static void vmm_ping(struct vm *vm, struct json_object *req, struct api_reply *reply)
{
	(void)vm, (void)req;
	reply_json(reply, "vmm.ping", info__ping());
}

static void vm_info(struct vm *vm, struct json_object *req, struct api_reply *reply)
{
	(void)req;
	reply_json(reply, "vm.info", info__vm(vm));
}

/*
 * CH's VmResizeData: desired_vcpus, desired_ram, desired_balloon, each optional. Every field is
 * read before anything changes; then RAM before the balloon, as CH's Vm::resize does.
 */
static void vm_resize(struct vm *vm, struct json_object *req, struct api_reply *reply)
{
	uint64_t vcpus, ram, balloon;
	int has_vcpus, has_ram, has_balloon, ret;
	char err[512];

	has_vcpus = field_u64(req, "vm.resize", "desired_vcpus", &vcpus, reply);
	has_ram = has_vcpus < 0 ? -1 : field_u64(req, "vm.resize", "desired_ram", &ram, reply);
	has_balloon = has_ram < 0 ? -1 :
		      field_u64(req, "vm.resize", "desired_balloon", &balloon, reply);
	if (has_balloon < 0)
		return;
	if (has_vcpus) {
		api_reply__text(reply, HTTP_BAD_REQUEST, "vm.resize: desired_vcpus: memvisor has no "
				"CPU hotplug (the VM keeps its %u vCPUs)", vm->cfg.boot_cpus);
		return;
	}
	if (has_ram) {
		ret = hotplug__resize(vm, ram, err, sizeof(err));
		if (ret) {
			reply_hotplug(reply, ret, err);
			return;
		}
	}
	if (has_balloon) {
		ret = hotplug__resize_balloon(vm, balloon, err, sizeof(err));
		if (ret) {
			reply_hotplug(reply, ret, err);
			return;
		}
	}
	reply_done(reply);
}

/* CH's VmResizeZoneData: id and desired_ram, both required. */
static void vm_resize_zone(struct vm *vm, struct json_object *req, struct api_reply *reply)
{
	static const char what[] = "vm.resize-zone";
	struct json_object *id;
	uint64_t ram;
	char err[512];
	int ret;

	if (!json_object_object_get_ex(req, "id", &id) || !id) {
		api_reply__text(reply, HTTP_BAD_REQUEST, "%s: missing field 'id'", what);
		return;
	}
	if (!json_object_is_type(id, json_type_string)) {
		api_reply__text(reply, HTTP_BAD_REQUEST, "%s: id: expected a string, got %s", what,
				json_type_to_name(json_object_get_type(id)));
		return;
	}
	ret = field_u64(req, what, "desired_ram", &ram, reply);
	if (ret <= 0) {
		if (!ret)	/* serde: a u64 that is not an Option must be there */
			api_reply__text(reply, HTTP_BAD_REQUEST, "%s: missing field 'desired_ram'",
					what);
		return;
	}
	/* A zone id never holds a NUL: one inside the JSON string cannot name a zone. */
	if (strlen(json_object_get_string(id)) != (size_t)json_object_get_string_len(id)) {
		api_reply__text(reply, HTTP_BAD_REQUEST, "%s: id: contains a NUL character", what);
		return;
	}
	ret = hotplug__resize_zone(vm, json_object_get_string(id), ram, err, sizeof(err));
	if (ret)
		reply_hotplug(reply, ret, err);
	else
		reply_done(reply);
}

static void vm_power_button(struct vm *vm, struct json_object *req, struct api_reply *reply)
{
	char err[512];

	(void)req;
	if (ged__power_button(vm, err, sizeof(err)) < 0)
		api_reply__text(reply, HTTP_INTERNAL_ERROR, "%s", err);
	else
		reply_done(reply);
}

/*
 * vm.shutdown and vmm.shutdown: memvisor has one VM and no life without it, so both end the VM
 * and memvisor with status 0. The stop waits until the 204 is sent (server.c).
 */
static void vm_shutdown(struct vm *vm, struct json_object *req, struct api_reply *reply)
{
	(void)vm, (void)req;
	reply_done(reply);
	reply->stop = true;
}

static const struct route {
	const char *path;	/* after API_PREFIX */
	const char *method;
	bool body;		/* takes a JSON object */
	void (*handle)(struct vm *vm, struct json_object *req, struct api_reply *reply);
} routes[] = {
	{ "vmm.ping", "GET", false, vmm_ping },
	{ "vmm.shutdown", "PUT", false, vm_shutdown },
	{ "vm.info", "GET", false, vm_info },
	{ "vm.resize", "PUT", true, vm_resize },
	{ "vm.resize-zone", "PUT", true, vm_resize_zone },
	{ "vm.power-button", "PUT", false, vm_power_button },
	{ "vm.shutdown", "PUT", false, vm_shutdown },
};

void api__route(struct vm *vm, const char *method, const char *url, const char *body, size_t len,
		struct api_reply *reply)
{
	const struct route *rt = NULL;
	struct json_object *req = NULL;

	*reply = (struct api_reply){ 0 };
	if (!strncmp(url, API_PREFIX, strlen(API_PREFIX)))
		for (size_t i = 0; i < ARRAY_SIZE(routes) && !rt; i++)
			if (!strcmp(url + strlen(API_PREFIX), routes[i].path))
				rt = &routes[i];
	if (!rt) {
		api_reply__text(reply, HTTP_NOT_FOUND, "%s: no such endpoint", quote(url).s);
		return;
	}
	if (strcmp(method, rt->method)) {
		api_reply__text(reply, HTTP_METHOD_NOT_ALLOWED, "%s: takes %s, not %s", rt->path,
				rt->method, quote(method).s);
		reply->allow = rt->method;
		return;
	}
	if (rt->body) {
		req = parse_object(rt->path, body, len, reply);
		if (!req)
			return;
	}
	rt->handle(vm, req, reply);
	json_object_put(req);
}
