/*
 * memvisor-remote: the REST API's client, with ch-remote's command line (Cloud Hypervisor's
 * ch-remote: --api-socket, then a subcommand and its flags), so that scripts written for
 * ch-remote work. libcurl over the unix socket; sizes take K/M/G/T suffixes as memvisor's own
 * options do (parse_size, linked from memory/config.o).
 *
 * Exit status: 0 when the server answered 2xx (the body, if any, on stdout); 1 otherwise, with
 * the server's one-line reason, a refused command line, or an unreachable socket on stderr.
 */
#include <curl/curl.h>
#include <errno.h>
#include <json-c/json.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "memory/config.h"

#define RESPONSE_MAX (1 << 20)	/* vm.info is a few KiB */

static const char usage[] =
	"Usage: memvisor-remote --api-socket PATH COMMAND [OPTIONS]\n"
	"\n"
	"Commands (Cloud Hypervisor's ch-remote's):\n"
	"  ping                          memvisor's version and pid (GET vmm.ping)\n"
	"  info                          the VM's configuration, state, memory_actual_size (GET vm.info)\n"
	"  resize [--memory SIZE] [--balloon SIZE] [--cpus N]\n"
	"                                the VM's RAM (boot + hotplugged) and balloon size (PUT vm.resize);\n"
	"                                memvisor refuses --cpus: it has no CPU hotplug\n"
	"  resize-zone --id ID --size SIZE\n"
	"                                a memory zone's size (boot + virtio-mem) (PUT vm.resize-zone)\n"
	"  power-button                  press the ACPI power button (PUT vm.power-button)\n"
	"  shutdown                      end the VM and memvisor, status 0 (PUT vm.shutdown)\n"
	"  shutdown-vmm                  the same (PUT vmm.shutdown)\n"
	"\n"
	"SIZE: bytes with an optional K, M, G or T suffix. Options also as --option=VALUE.\n"
	"Exit status 0 on a 2xx answer (its body on stdout), 1 otherwise (the reason on stderr).\n";

static void fail(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));
static void fail(const char *fmt, ...)
{
	va_list ap;

	fputs("memvisor-remote: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(1);
}

/*
 * argv[*i] is --name VALUE or --name=VALUE: its value (*i moves past it), else NULL (*i
 * unchanged).
 */
static const char *option(int argc, char **argv, int *i, const char *name)
{
	size_t n = strlen(name);

	if (strncmp(argv[*i], name, n))
		return NULL;
	if (argv[*i][n] == '=')
		return argv[(*i)++] + n + 1;
	if (argv[*i][n])
		return NULL;
	if (*i + 1 == argc)
		fail("%s: missing value", name);
	*i += 2;
	return argv[*i - 1];
}

static uint64_t size_arg(const char *name, const char *v)
{
	uint64_t n;

	if (parse_size(v, &n) < 0)
		fail("%s %s: not a size (a number with an optional K, M, G or T suffix)", name, v);
	return n;
}

static void put(struct json_object *o, const char *key, struct json_object *v)
{
	if (!v || json_object_object_add(o, key, v) < 0)
		fail("out of memory");
}

/* The JSON body of resize or resize-zone from the flags after the subcommand. */
static char *resize_body(const char *cmd, int argc, char **argv, int i)
{
	struct json_object *o = json_object_new_object();
	bool zone = !strcmp(cmd, "resize-zone");
	const char *v;
	char *body;

	if (!o)
		fail("out of memory");
	while (i < argc) {
		if (!zone && (v = option(argc, argv, &i, "--memory"))) {
			put(o, "desired_ram", json_object_new_uint64(size_arg("--memory", v)));
		} else if (!zone && (v = option(argc, argv, &i, "--balloon"))) {
			put(o, "desired_balloon", json_object_new_uint64(size_arg("--balloon", v)));
		} else if (!zone && (v = option(argc, argv, &i, "--cpus"))) {
			char *end;
			unsigned long n = strtoul(v, &end, 10);

			if (!*v || *end || *v == '-' || n > UINT32_MAX)
				fail("--cpus %s: not a number of vCPUs", v);
			put(o, "desired_vcpus", json_object_new_uint64(n));
		} else if (zone && (v = option(argc, argv, &i, "--id"))) {
			put(o, "id", json_object_new_string(v));
		} else if (zone && (v = option(argc, argv, &i, "--size"))) {
			put(o, "desired_ram", json_object_new_uint64(size_arg("--size", v)));
		} else {
			fail("%s: unexpected argument '%s' (see --help)", cmd, argv[i]);
		}
	}
	if (zone && (!json_object_object_get_ex(o, "id", NULL) ||
		     !json_object_object_get_ex(o, "desired_ram", NULL)))
		fail("resize-zone: needs --id ID and --size SIZE");
	if (!zone && !json_object_object_length(o))
		fail("resize: needs at least one of --memory, --balloon, --cpus");
	body = strdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
	if (!body)
		fail("out of memory");
	json_object_put(o);
	return body;
}

struct response {
	char *buf;
	size_t len;
};

static size_t collect(char *data, size_t size, size_t n, void *opaque)
{
	struct response *r = opaque;
	size_t len = size * n;
	char *b;

	if (len > RESPONSE_MAX - r->len)
		return 0;	/* curl reports a write error */
	b = realloc(r->buf, r->len + len + 1);
	if (!b)
		return 0;
	memcpy(b + r->len, data, len);
	r->len += len;
	b[r->len] = '\0';
	r->buf = b;
	return len;
}

/* One request; prints the answer as the header comment says and returns the exit status. */
static int request(const char *socket_path, const char *method, const char *endpoint,
		   const char *body)
{
	struct response resp = { 0 };
	struct curl_slist *headers = NULL;
	char url[128], curl_err[CURL_ERROR_SIZE] = "";
	long status = 0;
	CURLcode rc;
	CURL *c;

	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK || !(c = curl_easy_init()))
		fail("libcurl would not start");
	snprintf(url, sizeof(url), "http://localhost/api/v1/%s", endpoint);
	headers = curl_slist_append(headers, "Content-Type: application/json");
	if (!headers)
		fail("out of memory");
	if (curl_easy_setopt(c, CURLOPT_UNIX_SOCKET_PATH, socket_path) != CURLE_OK ||
	    curl_easy_setopt(c, CURLOPT_URL, url) != CURLE_OK ||
	    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, curl_err) != CURLE_OK ||
	    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect) != CURLE_OK ||
	    curl_easy_setopt(c, CURLOPT_WRITEDATA, &resp) != CURLE_OK ||
	    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L) != CURLE_OK ||
	    (!strcmp(method, "PUT") &&
	     (curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, "PUT") != CURLE_OK ||
	      curl_easy_setopt(c, CURLOPT_POSTFIELDS, body ? body : "") != CURLE_OK ||
	      curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers) != CURLE_OK)))
		fail("libcurl refused an option");
	rc = curl_easy_perform(c);
	if (rc == CURLE_OK)
		rc = curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	curl_slist_free_all(headers);
	curl_easy_cleanup(c);
	curl_global_cleanup();
	if (rc != CURLE_OK)
		fail("%s: %s", socket_path, *curl_err ? curl_err : curl_easy_strerror(rc));
	if (status < 200 || status > 299) {
		size_t n = resp.len;

		while (n && (resp.buf[n - 1] == '\n' || resp.buf[n - 1] == '\r'))
			n--;
		/* The reason names the request already (vm.resize: ...). */
		fprintf(stderr, "memvisor-remote: HTTP %ld from %s%s%.*s\n", status, endpoint,
			n ? ": " : "", (int)n, resp.buf ? resp.buf : "");
		free(resp.buf);
		return 1;
	}
	if (resp.len) {
		fputs(resp.buf, stdout);
		if (resp.buf[resp.len - 1] != '\n')
			fputc('\n', stdout);
	}
	free(resp.buf);
	return fflush(stdout) == 0 ? 0 : 1;
}

static const struct command {
	const char *name, *method, *endpoint;
	bool flags;	/* takes resize flags */
} commands[] = {
	{ "ping", "GET", "vmm.ping", false },
	{ "info", "GET", "vm.info", false },
	{ "resize", "PUT", "vm.resize", true },
	{ "resize-zone", "PUT", "vm.resize-zone", true },
	{ "power-button", "PUT", "vm.power-button", false },
	{ "shutdown", "PUT", "vm.shutdown", false },
	{ "shutdown-vmm", "PUT", "vmm.shutdown", false },
};

int main(int argc, char **argv)
{
	const char *socket_path = NULL, *v;
	const struct command *cmd = NULL;
	char *body = NULL;
	struct stat st;
	int i = 1, status;

	while (i < argc && !strncmp(argv[i], "-", 1)) {
		if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
			fputs(usage, stdout);
			return 0;
		}
		v = option(argc, argv, &i, "--api-socket");
		if (!v)
			fail("'%s': unknown option (see --help)", argv[i]);
		if (!*v)
			fail("--api-socket: empty path");
		socket_path = v;
	}
	if (!socket_path)
		fail("--api-socket PATH: missing (see --help)");
	if (i == argc)
		fail("missing command (see --help)");
	for (size_t k = 0; k < sizeof(commands) / sizeof(commands[0]); k++)
		if (!strcmp(argv[i], commands[k].name))
			cmd = &commands[k];
	if (!cmd)
		fail("'%s': unknown command (see --help)", argv[i]);
	if (cmd->flags)
		body = resize_body(cmd->name, argc, argv, i + 1);
	else if (i + 1 < argc)
		fail("%s: unexpected argument '%s'", cmd->name, argv[i + 1]);
	/* Say what is wrong rather than curl's "Couldn't connect to server". */
	if (stat(socket_path, &st) < 0)
		fail("%s: %s (is memvisor running with --api-socket %s?)", socket_path,
		     strerror(errno), socket_path);
	if (!S_ISSOCK(st.st_mode))
		fail("%s: not a socket", socket_path);
	status = request(socket_path, cmd->method, cmd->endpoint, body);
	free(body);
	return status;
}
