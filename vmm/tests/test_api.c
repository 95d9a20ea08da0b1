/*
 * The REST API without KVM: requests answered by api__route (request checks, the hotplug
 * checks behind them, vm.info's JSON), then the server on a real unix socket driven through
 * the main loop (mode 0600, bodies in pieces, 413, shutdown, the socket file's removal).
 */
#include <fcntl.h>
#include <json-c/json.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>

#include "tests/config_checks.h"
#include "tests/tmpdir.h"
#include "api/api.h"
#include "api/routes.h"
#include "memory/hotplug.h"
#include "vm.h"
#include "tests/devices_vm.h"

static struct vm test_vm;

/* A running VM (devices, loop, no KVM) configured by argv and laid out on the test host. */
static struct vm *api_vm(char **argv)
{
	struct host_info h = test_host();
	struct vm *vm = running_vm(&test_vm, SERIAL_OFF, NULL);
	char err[512];

	if (config__parse(&vm->cfg, count(argv), argv, err, sizeof(err)) < 0 ||
	    config__validate(&vm->cfg, &h, err, sizeof(err)) < 0 ||
	    layout__build(&vm->layout, &vm->cfg, err, sizeof(err)) < 0)
		fail_msg("%s", err);
	vm->cfg.serial = SERIAL_OFF;	/* as the devices were started */
	vm->host = h;
	return vm;
}

static void end_vm(struct vm *vm, int status)
{
	vm__stop(vm, status);
	assert_int_equal(vm__teardown(vm), status);
	assert_null(vm->api);
	config__free(&vm->cfg);
}

/* One request through api__route; fails unless status and (when given) the body match. */
static void expect(struct vm *vm, const char *method, const char *url, const char *body,
		   unsigned status, const char *text)
{
	struct api_reply r;

	api__route(vm, method, url, body ? body : "", body ? strlen(body) : 0, &r);
	if (r.status != status || (text && (!r.body || strcmp(r.body, text))))
		fail_msg("%s %s %s\n  got:      %u %s  expected: %u %s", method, url,
			 body ? body : "", r.status, r.body ? r.body : "(no body)\n", status,
			 text ? text : "");
	if (status >= 400) {
		/* One line of text, whatever was asked. */
		assert_non_null(r.body);
		assert_string_equal(r.content_type, "text/plain");
		assert_ptr_equal(strchr(r.body, '\n'), r.body + strlen(r.body) - 1);
	}
	if (status == 204)
		assert_null(r.body);
	assert_false(r.stop);
	api_reply__free(&r);
}

/* PUT requests and what each must get. */
struct put_case {
	const char *url, *body;
	unsigned status;
	const char *text;	/* NULL: any body */
};

static void expect_puts(struct vm *vm, const struct put_case *c, size_t n)
{
	for (size_t i = 0; i < n; i++)
		expect(vm, "PUT", c[i].url, c[i].body, c[i].status, c[i].text);
}

#define VIRTIO_MEM_VM ARGV("--memory", "size=128M,hotplug_method=virtio-mem,hotplug_size=256M", \
			   "--kernel", "k")

static void test_paths_and_methods(void **state)
{
	struct vm *vm = api_vm(VIRTIO_MEM_VM);
	char url[3001], msg[128];
	struct api_reply r;

	(void)state;
	expect(vm, "GET", "/api/v1/nope", NULL, 404, "/api/v1/nope: no such endpoint\n");
	/* what the client sent comes back escaped: one line, nothing for a terminal to obey */
	expect(vm, "GET", "/api/v1/\x1b[2Jx\ry\n", NULL, 404,
	       "/api/v1/\\x1b[2Jx\\ry\\n: no such endpoint\n");
	/* and a long one cut, the reason kept */
	memset(url, 'z', sizeof(url) - 1);
	memcpy(url, "/api/v1/", 8);
	url[sizeof(url) - 1] = '\0';
	snprintf(msg, sizeof(msg), "%.64s...(3000 bytes): no such endpoint\n", url);
	expect(vm, "GET", url, NULL, 404, msg);
	expect(vm, "GET", "/api/v2/vm.info", NULL, 404, NULL);
	expect(vm, "GET", "/api/v1/vm.info/", NULL, 404, NULL);
	expect(vm, "GET", "/vm.info", NULL, 404, NULL);
	expect(vm, "GET", "/api/v1/vm.resize", NULL, 405, "vm.resize: takes PUT, not GET\n");
	expect(vm, "PUT", "/api/v1/vm.info", NULL, 405, NULL);
	expect(vm, "POST", "/api/v1/vmm.ping", NULL, 405, NULL);
	expect(vm, "DELETE", "/api/v1/vm.shutdown", NULL, 405, NULL);
	api__route(vm, "GET", "/api/v1/vmm.shutdown", "", 0, &r);
	assert_int_equal(r.status, 405);
	assert_string_equal(r.allow, "PUT");
	assert_false(r.stop);
	api_reply__free(&r);
	assert_false(vm__stopping(vm));
	end_vm(vm, 0);
}

/* GET answers: 200, JSON parsed back; ping as CH's VmmPingResponse. */
static struct json_object *get_json(struct vm *vm, const char *url)
{
	struct api_reply r;
	struct json_object *o;

	api__route(vm, "GET", url, "", 0, &r);
	assert_int_equal(r.status, 200);
	assert_string_equal(r.content_type, "application/json");
	o = json_tokener_parse(r.body);
	assert_non_null(o);
	api_reply__free(&r);
	return o;
}

static struct json_object *at(struct json_object *o, const char *path)
{
	char buf[128], *save, *key;

	snprintf(buf, sizeof(buf), "%s", path);
	for (key = strtok_r(buf, ".", &save); key; key = strtok_r(NULL, ".", &save))
		if (!json_object_object_get_ex(o, key, &o))
			fail_msg("no %s (at %s)", path, key);
	return o;
}

static uint64_t u64_at(struct json_object *o, const char *path)
{
	struct json_object *v = at(o, path);

	assert_true(json_object_is_type(v, json_type_int));
	return json_object_get_uint64(v);
}

static const char *str_at(struct json_object *o, const char *path)
{
	struct json_object *v = at(o, path);

	assert_true(json_object_is_type(v, json_type_string));
	return json_object_get_string(v);
}

static bool has(struct json_object *o, const char *key)
{
	return json_object_object_get_ex(o, key, NULL);
}

static void test_ping(void **state)
{
	struct vm *vm = api_vm(VIRTIO_MEM_VM);
	struct json_object *o = get_json(vm, "/api/v1/vmm.ping");

	(void)state;
	assert_int_equal(u64_at(o, "pid"), getpid());
	assert_string_equal(str_at(o, "version"), MEMVISOR_VERSION);
	assert_non_null(str_at(o, "build_version"));
	assert_true(json_object_is_type(at(o, "features"), json_type_array));
	assert_int_equal(json_object_array_length(at(o, "features")), 0);
	json_object_put(o);
	end_vm(vm, 0);
}

/* --memory size=N: no zones in the config (CH has none), mem0's region as hotplug_size. */
static void test_info_memory(void **state)
{
	struct vm *vm = api_vm(ARGV("--memory", "size=128M,hotplug_method=virtio-mem,"
				    "hotplug_size=256M,shared=on,thp=off", "--cpus", "boot=2,max=3",
				    "--kernel", "/k/vmlinux", "--cmdline", "a=/b c", "--serial", "off"));
	struct json_object *o = get_json(vm, "/api/v1/vm.info"), *m = at(o, "config.memory");

	(void)state;
	assert_string_equal(str_at(o, "state"), "Running");
	assert_int_equal(u64_at(o, "memory_actual_size"), 128 * MiB);
	assert_int_equal(u64_at(o, "config.cpus.boot_vcpus"), 2);
	assert_int_equal(u64_at(o, "config.cpus.max_vcpus"), 3);
	assert_int_equal(u64_at(m, "size"), 128 * MiB);
	assert_int_equal(u64_at(m, "hotplug_size"), 256 * MiB);
	assert_string_equal(str_at(m, "hotplug_method"), "VirtioMem");
	assert_true(json_object_get_boolean(at(m, "shared")));
	assert_false(json_object_get_boolean(at(m, "thp")));
	assert_false(json_object_get_boolean(at(m, "hugepages")));
	/* Options not given are left out, as CH's skip_serializing_none does. */
	assert_false(has(m, "zones") || has(m, "hugepage_size") || has(m, "hotplugged_size"));
	assert_false(has(at(o, "config"), "balloon") || has(at(o, "config"), "numa"));
	assert_false(has(at(o, "config.payload"), "initramfs"));
	assert_string_equal(str_at(o, "config.payload.kernel"), "/k/vmlinux");
	assert_string_equal(str_at(o, "config.payload.cmdline"), "a=/b c");
	assert_string_equal(str_at(o, "config.serial.mode"), "Off");
	json_object_put(o);
	end_vm(vm, 0);
}

/* User zones, NUMA, balloon, ACPI hotplug: each as CH's config writes it. */
static void test_info_zones(void **state)
{
	struct vm *vm = api_vm(ARGV("--memory", "size=0,hotplug_method=virtio-mem",
				    "--memory-zone", "id=a,size=64M,host_numa_node=1",
				    "id=b,size=64M,hotplug_size=128M,hugepages=on,hugepage_size=2M",
				    "--numa", "guest_numa_id=0,cpus=[0-1],distances=[1@20],memory_zones=a",
				    "guest_numa_id=1,memory_zones=b,distances=[0@20]",
				    "--cpus", "boot=2", "--balloon", "size=16M,deflate_on_oom=on",
				    "--kernel", "k"));
	struct json_object *o = get_json(vm, "/api/v1/vm.info"), *zones, *z, *n;

	(void)state;
	assert_int_equal(u64_at(o, "config.memory.size"), 0);
	zones = at(o, "config.memory.zones");
	assert_int_equal(json_object_array_length(zones), 2);
	z = json_object_array_get_idx(zones, 0);
	assert_string_equal(str_at(z, "id"), "a");
	assert_int_equal(u64_at(z, "size"), 64 * MiB);
	assert_int_equal(u64_at(z, "host_numa_node"), 1);
	assert_false(has(z, "hotplug_size") || has(z, "hotplugged_size") || has(z, "file"));
	z = json_object_array_get_idx(zones, 1);
	assert_string_equal(str_at(z, "id"), "b");
	assert_int_equal(u64_at(z, "hotplug_size"), 128 * MiB);
	assert_int_equal(u64_at(z, "hotplugged_size"), 0);	/* nothing plugged yet */
	assert_int_equal(u64_at(z, "hugepage_size"), 2 * MiB);
	assert_true(json_object_get_boolean(at(z, "hugepages")));
	assert_false(has(z, "host_numa_node"));
	n = json_object_array_get_idx(at(o, "config.numa"), 0);
	assert_int_equal(u64_at(n, "guest_numa_id"), 0);
	assert_int_equal(json_object_array_length(at(n, "cpus")), 2);
	assert_int_equal(u64_at(json_object_array_get_idx(at(n, "distances"), 0), "destination"), 1);
	assert_int_equal(u64_at(json_object_array_get_idx(at(n, "distances"), 0), "distance"), 20);
	assert_string_equal(json_object_get_string(json_object_array_get_idx(at(n, "memory_zones"), 0)),
			    "a");
	assert_int_equal(u64_at(o, "config.balloon.size"), 16 * MiB);
	assert_true(json_object_get_boolean(at(o, "config.balloon.deflate_on_oom")));
	assert_false(json_object_get_boolean(at(o, "config.balloon.free_page_reporting")));
	/* Boot RAM of both zones, nothing plugged, nothing in the balloon yet. */
	assert_int_equal(u64_at(o, "memory_actual_size"), 128 * MiB);
	json_object_put(o);
	end_vm(vm, 0);
}

/* Bodies that are not a JSON object of the right fields: 400, the VM untouched. */
static const struct put_case bad_bodies[] = {
	{ "/api/v1/vm.resize", NULL, 400, "vm.resize: the request needs a JSON body\n" },
	{ "/api/v1/vm.resize", "[1]", 400, "vm.resize: expected a JSON object, got array\n" },
	{ "/api/v1/vm.resize", "{\"a\":1} x", 400,
	  "vm.resize: malformed JSON at byte 8: unexpected character\n" },
	{ "/api/v1/vm.resize", "{\"desired_ram\": \"1\"}", 400,
	  "vm.resize: desired_ram: expected an integer of 0 or more, got string\n" },
	{ "/api/v1/vm.resize", "{\"desired_balloon\": -4096}", 400,
	  "vm.resize: desired_balloon: expected an integer of 0 or more, got a negative number\n" },
	/* serde: an Option may be null or absent, unknown fields are ignored: nothing to do. */
	{ "/api/v1/vm.resize", "{}", 204, NULL },
	{ "/api/v1/vm.resize", "{\"desired_ram\": null, \"desired_balloon\": null}", 204, NULL },
	{ "/api/v1/vm.resize", "{\"foo\": [1, {\"x\": 2}], \"bar\": null}", 204, NULL },
	/* vm.resize-zone's fields are required. */
	{ "/api/v1/vm.resize-zone", "{\"desired_ram\": 268435456}", 400,
	  "vm.resize-zone: missing field 'id'\n" },
	{ "/api/v1/vm.resize-zone", "{\"id\": null, \"desired_ram\": 1}", 400,
	  "vm.resize-zone: missing field 'id'\n" },
	{ "/api/v1/vm.resize-zone", "{\"id\": \"mem0\"}", 400,
	  "vm.resize-zone: missing field 'desired_ram'\n" },
	{ "/api/v1/vm.resize-zone", "{\"id\": \"mem0\", \"desired_ram\": null}", 400,
	  "vm.resize-zone: missing field 'desired_ram'\n" },
	{ "/api/v1/vm.resize-zone", "{\"id\": 3, \"desired_ram\": 1}", 400,
	  "vm.resize-zone: id: expected a string, got int\n" },
	{ "/api/v1/vm.resize-zone", "{\"id\": \"mem0\\u0000x\", \"desired_ram\": 1}", 400,
	  "vm.resize-zone: id: contains a NUL character\n" },
};

static void test_bad_bodies(void **state)
{
	struct vm *vm = api_vm(VIRTIO_MEM_VM);
	static const char *const malformed[] = {
		"{", "{\"desired_ram\": 1", "{\"desired_ram\": 1} x", "{} {}", "[1]", "5", "null",
		"\"s\"", "{\"desired_ram\": 01}", "{desired_ram: 1}",
	};
	static const char *const wrong_type[] = {
		"\"1\"", "-1", "1.0", "1e9", "true", "[1]", "{}",
	};
	char body[128];
	struct api_reply r;

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(malformed); i++)
		expect(vm, "PUT", "/api/v1/vm.resize", malformed[i], 400, NULL);
	for (size_t i = 0; i < ARRAY_SIZE(wrong_type); i++) {
		snprintf(body, sizeof(body), "{\"desired_ram\": %s}", wrong_type[i]);
		expect(vm, "PUT", "/api/v1/vm.resize", body, 400, NULL);
		snprintf(body, sizeof(body), "{\"id\": \"mem0\", \"desired_ram\": %s}",
			 wrong_type[i]);
		expect(vm, "PUT", "/api/v1/vm.resize-zone", body, 400, NULL);
	}
	expect_puts(vm, bad_bodies, ARRAY_SIZE(bad_bodies));
	/* A NUL inside the body ends the JSON early: what follows is refused, not ignored. */
	api__route(vm, "PUT", "/api/v1/vm.resize", "{}\0{\"desired_ram\":1}", 20, &r);
	assert_int_equal(r.status, 400);
	assert_string_equal(r.body, "vm.resize: malformed JSON: trailing characters at byte 2\n");
	api_reply__free(&r);
	/* Nothing was resized, nothing stopped. */
	assert_int_equal(hotplug__ram_size(vm), 128 * MiB);
	assert_false(vm__stopping(vm));
	end_vm(vm, 0);
}

/* Sizes hotplug.c refuses are the request's fault: 400 with its reason. */
static const struct put_case refused_virtio_mem[] = {
	{ "/api/v1/vm.resize", "{\"desired_vcpus\": 2}", 400,
	  "vm.resize: desired_vcpus: memvisor has no CPU hotplug (the VM keeps its 1 vCPUs)\n" },
	{ "/api/v1/vm.resize", "{\"desired_ram\": 67108864}", 400,
	  "vm.resize: desired_ram 64M is below the boot RAM 128M\n" },
	{ "/api/v1/vm.resize", "{\"desired_ram\": 135266304}", 400,
	  "vm.resize: 1M of virtio-mem memory is not a multiple of the block size 2M\n" },
	{ "/api/v1/vm.resize", "{\"desired_ram\": 404750336}", 400,
	  "vm.resize: 258M more than the zone's 384M (size 128M + hotplug_size 256M)\n" },
	/* json-c saturates 2^64 and above to 2^64-1: still refused, never wrapped. */
	{ "/api/v1/vm.resize", "{\"desired_ram\": 99999999999999999999999}", 400, NULL },
	{ "/api/v1/vm.resize", "{\"desired_balloon\": 0}", 400,
	  "vm.resize: desired_balloon needs --balloon\n" },
	{ "/api/v1/vm.resize-zone", "{\"id\": \"nope\", \"desired_ram\": 1}", 400,
	  "vm.resize-zone: no memory zone 'nope'\n" },
	{ "/api/v1/vm.resize-zone", "{\"id\": \"mem0\", \"desired_ram\": 67108864}", 400,
	  "vm.resize-zone: desired_ram 64M is below zone 'mem0''s size 128M\n" },
};

static const struct put_case refused_no_hotplug[] = {
	{ "/api/v1/vm.resize", "{\"desired_ram\": 268435456}", 400,
	  "vm.resize: desired_ram needs --memory hotplug_size\n" },
	{ "/api/v1/vm.resize", "{\"desired_balloon\": 4097}", 400,
	  "vm.resize: desired_balloon 4097 is not a multiple of 4K\n" },
	{ "/api/v1/vm.resize", "{\"desired_balloon\": 268435456}", 400,
	  "vm.resize: desired_balloon 256M is more than the VM's RAM 128M\n" },
};

static const struct put_case refused_zones[] = {
	{ "/api/v1/vm.resize-zone", "{\"id\": \"a\", \"desired_ram\": 134217728}", 400,
	  "vm.resize-zone: zone 'a' has no virtio-mem memory (hotplug_size)\n" },
	{ "/api/v1/vm.resize", "{\"desired_ram\": 268435456}", 400,
	  "vm.resize: desired_ram needs --memory hotplug_size\n" },
};

static void test_refused_sizes(void **state)
{
	struct vm *vm = api_vm(VIRTIO_MEM_VM);

	(void)state;
	expect_puts(vm, refused_virtio_mem, ARRAY_SIZE(refused_virtio_mem));
	assert_false(vm__stopping(vm));
	end_vm(vm, 0);
	vm = api_vm(ARGV("--memory", "size=128M", "--balloon", "size=0", "--kernel", "k"));
	expect_puts(vm, refused_no_hotplug, ARRAY_SIZE(refused_no_hotplug));
	end_vm(vm, 0);
	vm = api_vm(ARGV("--memory", "size=0,hotplug_method=virtio-mem", "--memory-zone",
			 "id=a,size=64M", "id=b,size=64M,hotplug_size=128M", "--kernel", "k"));
	expect_puts(vm, refused_zones, ARRAY_SIZE(refused_zones));
	end_vm(vm, 0);
}

/* Both shutdowns ask for the stop; the route leaves it to the server (after the 204). */
static void test_shutdown_route(void **state)
{
	struct vm *vm = api_vm(VIRTIO_MEM_VM);
	struct api_reply r;

	(void)state;
	for (const char **u = (const char *[]){ "/api/v1/vm.shutdown", "/api/v1/vmm.shutdown",
						 NULL }; *u; u++) {
		api__route(vm, "PUT", *u, "", 0, &r);
		assert_int_equal(r.status, 204);
		assert_null(r.body);
		assert_true(r.stop);
	}
	assert_false(vm__stopping(vm));
	end_vm(vm, 0);
}

/* ---- the server, on a real socket, driven by the main loop ---- */

static struct vm *server_vm(const char *name)
{
	struct vm *vm = api_vm(VIRTIO_MEM_VM);
	char err[512];

	vm->cfg.api_socket = strdup(tmpdir_path(name));
	assert_non_null(vm->cfg.api_socket);
	if (api__start(vm, err, sizeof(err)) < 0)
		fail_msg("api__start: %s", err);
	return vm;
}

static int connect_to(const char *path)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	assert_true(fd >= 0);
	assert_true(strlen(path) < sizeof(sun.sun_path));
	memcpy(sun.sun_path, path, strlen(path) + 1);
	assert_int_equal(connect(fd, (struct sockaddr *)&sun, sizeof(sun)), 0);
	return fd;
}

static void pump(struct vm *vm, int rounds)
{
	char err[256];

	for (int i = 0; i < rounds; i++)
		if (loop__poll(vm, 5, err, sizeof(err)) < 0)
			fail_msg("loop__poll: %s", err);
}

/*
 * Send the pieces on one connection, letting the loop run between them, then read the answer
 * until the server closes (the requests say Connection: close). Returns it, malloc'ed.
 */
static char *exchange(struct vm *vm, const char *path, const char *const *pieces, size_t n)
{
	int fd = connect_to(path);
	size_t len = 0;
	char *out = calloc(1, 65536);
	struct timespec start, now;

	assert_non_null(out);
	for (size_t i = 0; i < n; i++) {
		assert_int_equal(write(fd, pieces[i], strlen(pieces[i])), (ssize_t)strlen(pieces[i]));
		pump(vm, 3);
	}
	assert_int_equal(fcntl(fd, F_SETFL, O_NONBLOCK), 0);
	clock_gettime(CLOCK_MONOTONIC, &start);
	for (;;) {
		ssize_t r = read(fd, out + len, 65535 - len);

		if (r == 0)
			break;
		if (r > 0) {
			len += (size_t)r;
			continue;
		}
		assert_int_equal(errno, EAGAIN);
		clock_gettime(CLOCK_MONOTONIC, &now);
		if (now.tv_sec - start.tv_sec > 10)
			fail_msg("no complete answer after 10 s: '%s'", out);
		pump(vm, 1);
	}
	close(fd);
	return out;
}

static void expect_answer(const char *answer, const char *status_line, const char *body)
{
	const char *b = strstr(answer, "\r\n\r\n");

	if (strncmp(answer, status_line, strlen(status_line)) || !b || strcmp(b + 4, body))
		fail_msg("got:\n%s\nexpected %s ... %s", answer, status_line, body);
}

static void test_server_socket(void **state)
{
	mode_t before = umask(022), after;
	struct vm *vm = server_vm("api.sock");
	const char *path = tmpdir_path("api.sock");
	struct stat st;
	char *a;

	(void)state;
	/* Made 0600 by bind itself, and the umask given back. */
	assert_int_equal(lstat(path, &st), 0);
	assert_true(S_ISSOCK(st.st_mode));
	assert_int_equal(st.st_mode & 07777, 0600);
	after = umask(before);
	assert_int_equal(after, 022);
	a = exchange(vm, path, (const char *[]){ "GET /api/v1/vmm.ping HTTP/1.1\r\nHost: x\r\n"
						  "Connection: close\r\n\r\n" }, 1);
	assert_non_null(strstr(a, "\"version\":\"" MEMVISOR_VERSION "\""));
	expect_answer(a, "HTTP/1.1 200", strstr(a, "{\"build_version\""));
	free(a);
	a = exchange(vm, path, (const char *[]){ "GET /api/v1/nope HTTP/1.1\r\nHost: x\r\n"
						  "Connection: close\r\n\r\n" }, 1);
	expect_answer(a, "HTTP/1.1 404", "/api/v1/nope: no such endpoint\n");
	free(a);
	assert_false(vm__stopping(vm));
	end_vm(vm, 0);
	assert_int_equal(lstat(path, &st), -1);
	assert_int_equal(errno, ENOENT);
}

/* A body in pieces, with the loop running between them, is read whole. */
static void test_server_body_in_pieces(void **state)
{
	struct vm *vm = server_vm("pieces.sock");
	const char *path = tmpdir_path("pieces.sock");
	char *a;

	(void)state;
	a = exchange(vm, path, (const char *[]){
		"PUT /api/v1/vm.resize-zone HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
		"Content-Type: application/json\r\nContent-Length: 49\r\n\r\n",
		"{\"id\": \"zone-", "with-a-long-name\", ", "\"desired_ram\": 1}" }, 4);
	expect_answer(a, "HTTP/1.1 400", "vm.resize-zone: no memory zone 'zone-with-a-long-name'\n");
	free(a);
	a = exchange(vm, path, (const char *[]){
		"PUT /api/v1/vm.resize HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
		"Transfer-Encoding: chunked\r\n\r\n",
		"5\r\n{\"des\r\n", "d\r\nired_ram\": 67\r\n", "7\r\n108864}\r\n", "0\r\n\r\n" }, 5);
	expect_answer(a, "HTTP/1.1 400", "vm.resize: desired_ram 64M is below the boot RAM 128M\n");
	free(a);
	assert_false(vm__stopping(vm));
	end_vm(vm, 0);
}

/* Over 64 KiB: 413 from the Content-Length alone, or once a chunked body passes the limit. */
static void test_server_body_too_large(void **state)
{
	struct vm *vm = server_vm("big.sock");
	const char *path = tmpdir_path("big.sock");
	char *chunk = malloc(3 * 16384), *a;
	size_t n = 0;

	(void)state;
	assert_non_null(chunk);
	a = exchange(vm, path, (const char *[]){
		"PUT /api/v1/vm.resize HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
		"Content-Length: 65536\r\n\r\n" }, 1);
	expect_answer(a, "HTTP/1.1 413", "request body larger than 65535 bytes\n");
	free(a);
	/* 5 chunks of 16000 bytes: the body passes the limit in the fifth. */
	n += (size_t)sprintf(chunk, "%x\r\n", 16000);
	memset(chunk + n, ' ', 16000);
	n += 16000;
	memcpy(chunk + n, "\r\n", 3);
	a = exchange(vm, path, (const char *[]){
		"PUT /api/v1/vm.resize HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
		"Transfer-Encoding: chunked\r\n\r\n", chunk, chunk, chunk, chunk, chunk,
		"0\r\n\r\n" }, 7);
	expect_answer(a, "HTTP/1.1 413", "request body larger than 65535 bytes\n");
	free(a);
	free(chunk);
	assert_false(vm__stopping(vm));
	end_vm(vm, 0);
}

/* vm.shutdown: the 204 reaches the client, then the VM stops with status 0. */
static void test_server_shutdown(void **state)
{
	struct vm *vm = server_vm("stop.sock");
	char *a;

	(void)state;
	a = exchange(vm, tmpdir_path("stop.sock"), (const char *[]){
		"PUT /api/v1/vm.shutdown HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
		"Content-Length: 0\r\n\r\n" }, 1);
	expect_answer(a, "HTTP/1.1 204", "");
	free(a);
	assert_true(vm__stopping(vm));
	assert_int_equal(vm__exit_status(vm), 0);
	end_vm(vm, 0);
}

/* A file at the path is never replaced; a missing directory is named. */
static void test_server_path_refused(void **state)
{
	struct vm *vm = api_vm(VIRTIO_MEM_VM);
	const char *path = tmpdir_write("taken", "keep", 4);
	char err[512], expected[512], buf[8];
	int fd;

	(void)state;
	vm->cfg.api_socket = strdup(path);
	assert_int_equal(api__start(vm, err, sizeof(err)), -1);
	snprintf(expected, sizeof(expected), "--api-socket: %s exists (left by an earlier run? "
		 "memvisor never replaces a file)", path);
	assert_string_equal(err, expected);
	assert_null(vm->api);
	fd = open(path, O_RDONLY);
	assert_int_equal(read(fd, buf, sizeof(buf)), 4);
	assert_memory_equal(buf, "keep", 4);
	close(fd);
	free(vm->cfg.api_socket);
	vm->cfg.api_socket = strdup(tmpdir_path("no-such-dir/api.sock"));
	assert_int_equal(api__start(vm, err, sizeof(err)), -1);
	snprintf(expected, sizeof(expected), "--api-socket: %s: its directory does not exist",
		 tmpdir_path("no-such-dir/api.sock"));
	assert_string_equal(err, expected);
	end_vm(vm, 0);
}

/* The teardown removes the socket it made, and only that file. */
static void test_server_removes_only_its_socket(void **state)
{
	struct vm *vm = server_vm("replaced.sock");
	const char *path = tmpdir_path("replaced.sock");
	struct stat st;
	char err[256];

	(void)state;
	assert_int_equal(unlink(path), 0);
	tmpdir_write("replaced.sock", "other", 5);
	end_vm(vm, 0);
	assert_int_equal(lstat(path, &st), 0);
	assert_true(S_ISREG(st.st_mode));
	assert_int_equal(api__stop(vm, err, sizeof(err)), 0);	/* nothing left to stop */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_paths_and_methods),
		cmocka_unit_test(test_ping),
		cmocka_unit_test(test_info_memory),
		cmocka_unit_test(test_info_zones),
		cmocka_unit_test(test_bad_bodies),
		cmocka_unit_test(test_refused_sizes),
		cmocka_unit_test(test_shutdown_route),
		cmocka_unit_test(test_server_socket),
		cmocka_unit_test(test_server_body_in_pieces),
		cmocka_unit_test(test_server_body_too_large),
		cmocka_unit_test(test_server_shutdown),
		cmocka_unit_test(test_server_path_refused),
		cmocka_unit_test(test_server_removes_only_its_socket),
	};

	return cmocka_run_group_tests_name("api", tests, tmpdir_setup, tmpdir_teardown);
}
