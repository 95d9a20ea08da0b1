/*
 * REST API requests (api/routes.c) on a running VM without KVM: two zones with virtio-mem
 * regions and a balloon. The first byte picks the route (or a made-up method or URL), the rest
 * is the body: the JSON parsing of vm.resize and vm.resize-zone and the hotplug checks behind
 * them. Every answer must be a known status; an error one line of text; a 204 no body; a 200
 * JSON; and a refused request (4xx) must change nothing vm.info shows. Power button and
 * shutdown are left out: they end the VM this target keeps across inputs.
 */
#include <json-c/json.h>

#include "api/routes.h"
#include "fuzz/fuzz.h"
#include "memory/hotplug.h"
#include "tests/config_checks.h"
#include "vm.h"

static struct vm vm;

static char *const vm_argv[] = {
	"memvisor", "--kernel", "vmlinux", "--memory", "size=0,hotplug_method=virtio-mem",
	"--memory-zone", "id=mem0,size=1G,hotplug_size=1G,hotplugged_size=256M",
	"--memory-zone", "id=z1,size=512M,hotplug_size=512M", "--balloon", "size=0", NULL
};

static const struct { const char *method, *url; } routes[] = {
	{ "PUT", API_PREFIX "vm.resize" },
	{ "PUT", API_PREFIX "vm.resize-zone" },
	{ "GET", API_PREFIX "vm.info" },
	{ "GET", API_PREFIX "vmm.ping" },
	{ "GET", API_PREFIX "vm.resize" },
	{ "PUT", API_PREFIX "vm.nothing" },
};

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	struct host_info h = test_host();
	char err[512];

	(void)argc, (void)argv;
	vm__init(&vm);
	FUZZ_CHECK(clock_gettime(CLOCK_MONOTONIC, &vm.start) == 0, "clock_gettime");
	FUZZ_CHECK(config__parse(&vm.cfg, (int)ARRAY_SIZE(vm_argv) - 1, (char **)vm_argv, err,
				 sizeof(err)) == 0 &&
		   config__validate(&vm.cfg, &h, err, sizeof(err)) == 0 &&
		   layout__build(&vm.layout, &vm.cfg, err, sizeof(err)) == 0, "%s", err);
	vm.cfg.serial = SERIAL_OFF;
	vm.host = h;
	FUZZ_CHECK(loop__init(&vm.loop, err, sizeof(err)) == 0 &&
		   vm__init_devices(&vm, err, sizeof(err)) == 0 &&
		   vm__set_state(&vm, VM_RUNNING, err, sizeof(err)) == 0, "%s", err);
	return 0;
}

static char *info(void)
{
	struct json_object *o = info__vm(&vm);
	char *s;

	FUZZ_CHECK(o, "info__vm");
	s = strdup(json_object_to_json_string(o));
	FUZZ_CHECK(s, "strdup");
	json_object_put(o);
	return s;
}

static void check_reply(const struct api_reply *r)
{
	switch (r->status) {
	case 200:
		FUZZ_CHECK(r->body && !strcmp(r->content_type, "application/json"), "200");
		struct json_object *o = json_tokener_parse(r->body);

		FUZZ_CHECK(o, "200 with no JSON: %s", r->body);
		json_object_put(o);
		break;
	case 204:
		FUZZ_CHECK(!r->body, "204 with a body");
		break;
	case 400: case 404: case 405: case 500:
		FUZZ_CHECK(r->body && !strcmp(r->content_type, "text/plain"), "%u", r->status);
		for (const char *c = r->body; *c; c++)
			FUZZ_CHECK((*c != '\n' || !c[1]) && *c != '\r', "%u: not one line: %s",
				   r->status, r->body);
		FUZZ_CHECK(r->body[0] && r->body[strlen(r->body) - 1] == '\n', "no line: %s",
			   r->body);
		FUZZ_CHECK(r->status != 405 || r->allow, "405 without Allow");
		break;
	default:
		FUZZ_CHECK(false, "status %u", r->status);
	}
	FUZZ_CHECK(!r->stop, "a request stopped the VM");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char method[16], url[128];
	struct api_reply r;
	char *before, *after, *body;
	uint8_t sel = size ? data[0] : 0;
	size_t len = size ? size - 1 : 0;

	/* As server.c hands it over: a NUL after the body (routes.h). */
	body = malloc(len + 1);
	FUZZ_CHECK(body, "malloc");
	memcpy(body, data + (size ? 1 : 0), len);
	body[len] = '\0';

	if (sel % 8 < ARRAY_SIZE(routes)) {
		snprintf(method, sizeof(method), "%s", routes[sel % 8].method);
		snprintf(url, sizeof(url), "%s", routes[sel % 8].url);
	} else {	/* the body is the method or the URL */
		snprintf(sel % 8 == 6 ? method : url, sel % 8 == 6 ? sizeof(method) : sizeof(url),
			 "%.*s", (int)len, body);
		snprintf(sel % 8 == 6 ? url : method, sel % 8 == 6 ? sizeof(url) : sizeof(method),
			 "%s", sel % 8 == 6 ? API_PREFIX "vm.resize" : "PUT");
	}
	before = info();
	api__route(&vm, method, url, body, len, &r);
	check_reply(&r);
	after = info();
	FUZZ_CHECK(r.status < 400 || !strcmp(before, after), "%u changed vm.info", r.status);
	api_reply__free(&r);
	free(before);
	free(after);
	free(body);
	return 0;
}
