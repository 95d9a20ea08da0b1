/*
 * The command line -> struct vm_config, and every check made on it before KVM is opened.
 *
 * The keys of --memory, --memory-zone and --numa exist only in memory/options.def: the table
 * opts[] is generated from it, and the parser, the defaults and --help all read that table.
 * The checks made after parsing are in validate.c.
 * The few non-memory keys (--cpus, --balloon) are declared the same way in LOCAL_OPTS below.
 *
 * Syntax, as Cloud Hypervisor's option_parser: "key=value,key=value"; commas inside [ ] or
 * double quotes do not split; double quotes are removed from values; an empty value ("key=")
 * counts as not given; a key given twice keeps its last value. Lists are "[a,b]", or a single
 * element without brackets, or the older "a:b" form (':' separates like ','). Integer lists
 * take ranges "a-b" with a < b.
 */
#include <ctype.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <sys/un.h>
#include "memory/config.h"
#include "util.h"

enum group { G_MEMORY, G_ZONE, G_NUMA, G_CPUS, G_BALLOON };
enum opt_type { T_SIZE, T_BOOL, T_U32, T_STRING, T_ENUM, T_U8_LIST, T_DIST_LIST, T_STRING_LIST };

/* Not memory options, so not in options.def (which the oracle reads as the memory option list). */
#define LOCAL_OPTS(OPT)                                                                            \
	OPT(CPUS, boot, U32, "1", "", "vCPUs running at boot (at least 1)")                        \
	OPT(CPUS, max, U32, "", "", "vCPUs the VM may have (default: boot; at most 255)")         \
	OPT(CPUS, kvm_pv_eoi, BOOL, "on", "on|off", "KVM's paravirtual EOI (off: every EOI exits)") \
	OPT(BALLOON, size, SIZE, "0", "", "Balloon size (smaller than the guest RAM)")            \
	OPT(BALLOON, deflate_on_oom, BOOL, "off", "on|off", "Deflate the balloon on guest OOM")   \
	OPT(BALLOON, free_page_reporting, BOOL, "off", "on|off", "Guest reports its free pages")

enum opt_id {
#define OPT(g, n, t, d, v, h) O_##g##_##n,
#include "memory/options.def"
	LOCAL_OPTS(OPT)
#undef OPT
	O_COUNT
};

static const struct opt_desc {
	enum group group;
	enum opt_type type;
	const char *name, *def, *values, *help;
} opts[O_COUNT] = {
#define OPT(g, n, t, d, v, h) [O_##g##_##n] = { G_##g, T_##t, #n, d, v, h },
#include "memory/options.def"
	LOCAL_OPTS(OPT)
#undef OPT
};

/* The older --numa syntax (cloud-hypervisor-memory-older.md) names guest_numa_id "id". */
static const struct { enum group group; const char *alias; enum opt_id opt; } aliases[] = {
	{ G_NUMA, "id", O_NUMA_guest_numa_id },
};

enum arg_kind { A_KV, A_STRING, A_SERIAL, A_FLAG };
enum arg_id { ARG_MEMORY, ARG_ZONE, ARG_NUMA, ARG_CPUS, ARG_BALLOON, ARG_KERNEL, ARG_CMDLINE,
	      ARG_INITRAMFS, ARG_SERIAL, ARG_API_SOCKET, ARG_PRINT_LAYOUT, ARG_HELP, ARG_VERSION,
	      ARG_VERBOSE, ARG_COUNT };
static const struct arg_desc {
	const char *name;
	enum arg_kind kind;
	enum group group;	/* A_KV only */
	bool multi;		/* repeatable, and takes several values */
	const char *metavar, *help;
} args[ARG_COUNT] = {
	[ARG_MEMORY] = { "memory", A_KV, G_MEMORY, false, "key=value,...", "Guest RAM" },
	[ARG_ZONE] = { "memory-zone", A_KV, G_ZONE, true, "key=value,... [key=value,...]...",
		       "Memory zones (needs --memory size=0); repeat it or give several values" },
	[ARG_NUMA] = { "numa", A_KV, G_NUMA, true, "key=value,... [key=value,...]...",
		       "Guest NUMA nodes, guest_numa_id 0..N-1; repeat it or give several values" },
	[ARG_CPUS] = { "cpus", A_KV, G_CPUS, false, "boot=N[,max=M][,kvm_pv_eoi=on|off]", "vCPUs" },
	[ARG_BALLOON] = { "balloon", A_KV, G_BALLOON, false, "key=value,...", "virtio-balloon" },
	[ARG_KERNEL] = { "kernel", A_STRING, 0, false, "PATH",
			 "Guest kernel: PVH ELF or Linux bzImage (required unless --print-layout)" },
	[ARG_CMDLINE] = { "cmdline", A_STRING, 0, false, "STRING", "Guest kernel command line" },
	[ARG_INITRAMFS] = { "initramfs", A_STRING, 0, false, "PATH", "Initial ramdisk" },
	[ARG_SERIAL] = { "serial", A_SERIAL, 0, false, "tty|file=PATH|off",
			 "Where the 16550 UART writes [default: tty]" },
	[ARG_API_SOCKET] = { "api-socket", A_STRING, 0, false, "path=PATH|PATH",
			     "REST API (Cloud Hypervisor's) on this new unix socket, mode 0600" },
	[ARG_PRINT_LAYOUT] = { "print-layout", A_FLAG, 0, false, "",
			       "Print the guest physical memory layout as JSON" },
	[ARG_HELP] = { "help", A_FLAG, 0, false, "", "This text, and exit (also -h)" },
	[ARG_VERSION] = { "version", A_FLAG, 0, false, "", "memvisor's version, and exit" },
	[ARG_VERBOSE] = { "verbose", A_FLAG, 0, false, "",
			  "Zone mappings and device accesses on stderr (also -v)" },
};

/* One parsed value of a key; the union holds the default when the key was not given. */
struct optval {
	bool given;
	union {
		uint64_t u64;
		bool b;
		uint32_t u32;
		int e;
		char *s;
		struct { int n; uint8_t bits[MAX_VCPUS / 8]; } cpus;
		struct { int n; struct numa_distance d[MAX_NUMA_NODES]; } dist;
		struct { int n; char id[MAX_ZONES][ZONE_ID_MAX]; } ids;
	};
};
struct kv { struct optval v[O_COUNT]; };

int parse_size(const char *s, uint64_t *out)
{
	static const char suffixes[] = "KMGT";
	uint64_t v = 0;
	unsigned shift = 0;
	const char *p = s;

	if (!isdigit((unsigned char)*p))
		return -1;
	for (; isdigit((unsigned char)*p); p++) {
		if (v > (UINT64_MAX - (uint64_t)(*p - '0')) / 10)
			return -1;
		v = v * 10 + (uint64_t)(*p - '0');
	}
	if (*p) {
		const char *suf = strchr(suffixes, toupper((unsigned char)*p));

		if (!suf || p[1])
			return -1;
		shift = 10 * (unsigned)(suf - suffixes + 1);
	}
	if (shift && v > (UINT64_MAX >> shift))
		return -1;
	*out = v << shift;
	return 0;
}

static int parse_u64_max(const char *s, uint64_t max, uint64_t *out)
{
	uint64_t v = 0;

	if (!*s)
		return -1;
	for (; *s; s++) {
		if (!isdigit((unsigned char)*s) || v > (max - (uint64_t)(*s - '0')) / 10)
			return -1;
		v = v * 10 + (uint64_t)(*s - '0');
	}
	*out = v;
	return 0;
}

static int parse_bool(const char *s, bool *out)
{
	if (!strcasecmp(s, "on") || !strcasecmp(s, "true"))
		*out = true;
	else if (!strcasecmp(s, "off") || !strcasecmp(s, "false"))
		*out = false;
	else
		return -1;
	return 0;
}

/* Index of s in "a|b|c", or -1. */
static int enum_index(const char *values, const char *s)
{
	size_t len = strlen(s);
	int i = 0;

	for (const char *p = values; *p; i++) {
		const char *bar = strchrnul(p, '|');

		if ((size_t)(bar - p) == len && !strncmp(p, s, len))
			return i;
		p = *bar ? bar + 1 : bar;
	}
	return -1;
}

/* Splits a list value into a writable copy; strsep(&e->p, ",:") then yields the elements. */
struct elems { char *buf, *p; };

static int elems_init(struct elems *e, const char *val, const char *opt, const char *key,
		      char *err, size_t errlen)
{
	size_t len = strlen(val);
	bool bracket = val[0] == '[';

	if (bracket != (len > 0 && val[len - 1] == ']') || (bracket && len < 2) ||
	    strpbrk(val + bracket, "[") || strchr(val, ']') != (bracket ? val + len - 1 : NULL))
		return error(err, errlen, "%s: %s=%s: a list is [a,b,...] or a single element",
			     opt, key, quote(val).s);
	e->buf = strndup(val + bracket, len - 2 * bracket);
	if (!e->buf)
		return error(err, errlen, "%s: out of memory", opt);
	if (!*e->buf) {
		free(e->buf);
		return error(err, errlen, "%s: %s=%s: empty list", opt, key, quote(val).s);
	}
	e->p = e->buf;
	return 0;
}

/* Next element, NULL at the end; "" (an empty element) is reported by the caller. */
static char *elems_next(struct elems *e)
{
	return e->p ? strsep(&e->p, ",:") : NULL;
}

static int convert_list(int o, const char *key, const char *val, struct optval *out,
			const char *opt, char *err, size_t errlen)
{
	struct elems e;
	char *x;
	int ret = 0;

	if (elems_init(&e, val, opt, key, err, errlen))
		return -1;
	while (!ret && (x = elems_next(&e))) {
		uint64_t a, b, d;
		char *sep;

		if (!*x) {
			ret = error(err, errlen, "%s: %s=%s: empty list element", opt, key, quote(val).s);
			break;
		}
		switch (opts[o].type) {
		case T_U8_LIST:
			sep = strchr(x, '-');
			if (sep)
				*sep++ = '\0';
			if (parse_u64_max(x, UINT64_MAX, &a) ||
			    (sep && parse_u64_max(sep, UINT64_MAX, &b)))
				ret = error(err, errlen, "%s: %s=%s: '%s' is not a number or a range a-b",
					    opt, key, quote(val).s, quote(x).s);
			else if (sep && a >= b)
				ret = error(err, errlen, "%s: %s=%s: range %" PRIu64 "-%" PRIu64
					    " must go upwards", opt, key, quote(val).s, a, b);
			else if ((sep ? b : a) >= MAX_VCPUS)
				ret = error(err, errlen, "%s: %s=%s: vCPU %" PRIu64 " is above 255",
					    opt, key, quote(val).s, sep ? b : a);
			else
				for (uint64_t c = a; c <= (sep ? b : a); c++, out->cpus.n++)
					out->cpus.bits[c / 8] |= (uint8_t)(1u << (c % 8));
			break;
		case T_DIST_LIST:
			sep = strchr(x, '@');
			if (sep)
				*sep++ = '\0';
			if (!sep || parse_u64_max(x, UINT32_MAX, &a) || parse_u64_max(sep, 255, &d))
				ret = error(err, errlen, "%s: %s=%s: expected node@distance with a "
					    "distance of 0-255", opt, key, quote(val).s);
			else if (out->dist.n == MAX_NUMA_NODES)
				ret = error(err, errlen, "%s: %s=%s: more than %d distances", opt,
					    key, quote(val).s, MAX_NUMA_NODES);
			else
				out->dist.d[out->dist.n++] = (struct numa_distance){ (uint32_t)a,
										     (uint8_t)d };
			break;
		case T_STRING_LIST:
			if (strlen(x) >= ZONE_ID_MAX)
				ret = error(err, errlen, "%s: %s=%s: '%s' is longer than %d characters",
					    opt, key, quote(val).s, quote(x).s, ZONE_ID_MAX - 1);
			else if (out->ids.n == MAX_ZONES)
				ret = error(err, errlen, "%s: %s=%s: more than %d elements", opt, key,
					    quote(val).s, MAX_ZONES);
			else
				strcpy(out->ids.id[out->ids.n++], x);
			break;
		default:
			ret = error(err, errlen, "%s: %s: not a list", opt, key);
		}
	}
	free(e.buf);
	return ret;
}

/* Converts val by the type opts[o] declares. */
static int convert(int o, const char *key, const char *val, struct optval *out, const char *opt,
		   char *err, size_t errlen)
{
	const struct opt_desc *d = &opts[o];
	uint64_t u;

	if (d->type == T_STRING)
		free(out->s);
	memset(out, 0, sizeof(*out));
	switch (d->type) {
	case T_SIZE:
		if (parse_size(val, &out->u64))
			return error(err, errlen, "%s: %s=%s: not a size (a number with an optional "
				     "K, M, G or T suffix, below 16E)", opt, key, quote(val).s);
		return 0;
	case T_BOOL:
		if (parse_bool(val, &out->b))
			return error(err, errlen, "%s: %s=%s: expected on, off, true or false", opt,
				     key, quote(val).s);
		return 0;
	case T_U32:
		if (parse_u64_max(val, UINT32_MAX, &u))
			return error(err, errlen, "%s: %s=%s: not a number of 0-4294967295", opt, key,
				     quote(val).s);
		out->u32 = (uint32_t)u;
		return 0;
	case T_STRING:
		out->s = strdup(val);
		return out->s ? 0 : error(err, errlen, "%s: out of memory", opt);
	case T_ENUM:
		out->e = enum_index(d->values, val);
		if (out->e < 0)
			return error(err, errlen, "%s: %s=%s: expected %s", opt, key, quote(val).s, d->values);
		return 0;
	default:
		return convert_list(o, key, val, out, opt, err, errlen);
	}
}

static int find_key(enum group g, const char *key)
{
	for (int o = 0; o < O_COUNT; o++)
		if (opts[o].group == g && !strcmp(opts[o].name, key))
			return o;
	for (size_t i = 0; i < ARRAY_SIZE(aliases); i++)
		if (aliases[i].group == g && !strcmp(aliases[i].alias, key))
			return (int)aliases[i].opt;
	return -1;
}

static void kv_free(struct kv *kv)
{
	if (!kv)
		return;
	for (int o = 0; o < O_COUNT; o++)
		if (opts[o].type == T_STRING)
			free(kv->v[o].s);
	free(kv);
}

/* Parses "key=value,..." for the keys of group g; absent keys get the table's default. */
static struct kv *kv_parse(enum group g, const char *opt, const char *str, char *err,
			   size_t errlen)
{
	struct kv *kv = calloc(1, sizeof(*kv));
	char *buf = strdup(str), *p = buf;
	int depth = 0;
	bool quoted = false;

	if (!kv || !buf) {
		error(err, errlen, "%s: out of memory", opt);
		goto fail;
	}
	for (const char *c = str; *c && depth >= 0; c++) {
		quoted ^= *c == '"';
		depth += !quoted && *c == '[';
		depth -= !quoted && *c == ']';
	}
	if (depth || quoted) {
		error(err, errlen, "%s: unbalanced brackets or quotes in '%s'", opt, quote(str).s);
		goto fail;
	}
	while (*str && p) {
		char *item = p, *eq, *val, *w;
		int o;

		for (depth = 0, quoted = false; *p && (*p != ',' || depth || quoted); p++) {
			quoted ^= *p == '"';
			depth += !quoted && *p == '[';
			depth -= !quoted && *p == ']';
		}
		p = *p ? (*p = '\0', p + 1) : NULL;
		eq = strchr(item, '=');
		if (!eq) {
			error(err, errlen, "%s: '%s' is not key=value", opt, quote(item).s);
			goto fail;
		}
		*eq = '\0';
		for (val = w = eq + 1; *val; val++)
			if (*val != '"')
				*w++ = *val;
		*w = '\0';
		val = eq + 1;
		o = find_key(g, item);
		if (o < 0) {
			char keys[512] = "";
			size_t n = 0;

			for (int k = 0; k < O_COUNT && n < sizeof(keys); k++)
				if (opts[k].group == g)
					n += (size_t)snprintf(keys + n, sizeof(keys) - n, "%s%s",
							      n ? ", " : "", opts[k].name);
			error(err, errlen, "%s: unknown key '%s' (known: %s)", opt, quote(item).s, keys);
			goto fail;
		}
		if (!*val) {	/* "key=" means not given, as in Cloud Hypervisor */
			if (opts[o].type == T_STRING)
				free(kv->v[o].s);
			memset(&kv->v[o], 0, sizeof(kv->v[o]));
			continue;
		}
		if (convert(o, item, val, &kv->v[o], opt, err, errlen))
			goto fail;
		kv->v[o].given = true;
	}
	for (int o = 0; o < O_COUNT; o++)
		if (opts[o].group == g && !kv->v[o].given && *opts[o].def &&
		    convert(o, opts[o].name, opts[o].def, &kv->v[o], opt, err, errlen))
			goto fail;
	free(buf);
	return kv;
fail:
	free(buf);
	kv_free(kv);
	return NULL;
}

/* given: --memory was on the command line (without it, every default applies, size too). */
static int fill_memory(struct vm_config *cfg, const struct kv *kv, bool given, char *err,
		       size_t errlen)
{
	struct memory_config *m = &cfg->memory;

	/* Spec, size: "This option is mandatory when using the --memory parameter." */
	if (given && !kv->v[O_MEMORY_size].given)
		return error(err, errlen, "--memory: size is mandatory");
	m->size = kv->v[O_MEMORY_size].u64;
	m->mergeable = kv->v[O_MEMORY_mergeable].b;
	m->shared = kv->v[O_MEMORY_shared].b;
	m->hugepages = kv->v[O_MEMORY_hugepages].b;
	m->hugepage_size = kv->v[O_MEMORY_hugepage_size].u64;
	m->hotplug_method = kv->v[O_MEMORY_hotplug_method].e == 1 ? HOTPLUG_VIRTIO_MEM : HOTPLUG_ACPI;
	m->hotplug_size = kv->v[O_MEMORY_hotplug_size].u64;
	m->hotplugged_size = kv->v[O_MEMORY_hotplugged_size].u64;
	m->prefault = kv->v[O_MEMORY_prefault].b;
	m->thp = kv->v[O_MEMORY_thp].b;
	/* 0 means "not given" in struct memory_config, so a given 0 is caught here (spec: invalid) */
	if (kv->v[O_MEMORY_hotplug_size].given && !m->hotplug_size)
		return error(err, errlen, "--memory: hotplug_size must not be 0");
	if (kv->v[O_MEMORY_hotplugged_size].given && !m->hotplugged_size)
		return error(err, errlen, "--memory: hotplugged_size must not be 0");
	return 0;
}

static bool valid_zone_id(const char *id)
{
	if (!strncmp(id, "__", 2))	/* reserved by Cloud Hypervisor's validate_identifier */
		return false;
	for (; *id; id++)
		if (!isalnum((unsigned char)*id) && !strchr("_.-", *id))
			return false;
	return true;
}

static int fill_zone(struct zone_config *z, struct kv *kv, const char *str, char *err,
		     size_t errlen)
{
	const char *id = kv->v[O_ZONE_id].s;

	if (!kv->v[O_ZONE_id].given)
		return error(err, errlen, "--memory-zone: missing id in '%s'", quote(str).s);
	if (strlen(id) >= ZONE_ID_MAX)
		return error(err, errlen, "--memory-zone: id '%s' is longer than %d characters", quote(id).s,
			     ZONE_ID_MAX - 1);
	if (!valid_zone_id(id))
		return error(err, errlen, "--memory-zone: id '%s': use letters, digits, '_', '.' "
			     "and '-', not starting with '__'", quote(id).s);
	strcpy(z->id, id);
	if (!kv->v[O_ZONE_size].given)
		return error(err, errlen, "--memory-zone: zone '%s': missing size", id);
	z->size = kv->v[O_ZONE_size].u64;
	z->file = kv->v[O_ZONE_file].s;
	kv->v[O_ZONE_file].s = NULL;
	z->shared = kv->v[O_ZONE_shared].b;
	z->hugepages = kv->v[O_ZONE_hugepages].b;
	z->hugepage_size = kv->v[O_ZONE_hugepage_size].u64;
	if (kv->v[O_ZONE_host_numa_node].given && kv->v[O_ZONE_host_numa_node].u32 > INT_MAX)
		return error(err, errlen, "--memory-zone: zone '%s': host_numa_node %" PRIu32
			     " is not present on the host", id, kv->v[O_ZONE_host_numa_node].u32);
	z->host_numa_node = kv->v[O_ZONE_host_numa_node].given ?
			    (int)kv->v[O_ZONE_host_numa_node].u32 : -1;
	z->hotplug_size = kv->v[O_ZONE_hotplug_size].u64;
	z->hotplugged_size = kv->v[O_ZONE_hotplugged_size].u64;
	z->prefault = kv->v[O_ZONE_prefault].b;
	z->guest_node = -1;
	if (kv->v[O_ZONE_hotplug_size].given && !z->hotplug_size)
		return error(err, errlen, "--memory-zone: zone '%s': hotplug_size must not be 0", id);
	if (kv->v[O_ZONE_hotplugged_size].given && !z->hotplugged_size)
		return error(err, errlen, "--memory-zone: zone '%s': hotplugged_size must not be 0",
			     id);
	return 0;
}

static int fill_numa(struct numa_config *n, const struct kv *kv, const char *str, char *err,
		     size_t errlen)
{
	if (!kv->v[O_NUMA_guest_numa_id].given)
		return error(err, errlen, "--numa: missing guest_numa_id in '%s'", quote(str).s);
	n->guest_numa_id = kv->v[O_NUMA_guest_numa_id].u32;
	memcpy(n->cpus, kv->v[O_NUMA_cpus].cpus.bits, sizeof(n->cpus));
	n->ndistances = kv->v[O_NUMA_distances].dist.n;
	memcpy(n->distances, kv->v[O_NUMA_distances].dist.d, sizeof(n->distances));
	n->nzones = kv->v[O_NUMA_memory_zones].ids.n;
	memcpy(n->zones, kv->v[O_NUMA_memory_zones].ids.id, sizeof(n->zones));
	return 0;
}

static const struct arg_desc *find_arg(const char *name, size_t len)
{
	for (int a = 0; a < ARG_COUNT; a++)
		if (strlen(args[a].name) == len && !strncmp(args[a].name, name, len))
			return &args[a];
	return NULL;
}

/* The argv words given to each option; zones and NUMA nodes may have several. */
struct argv_values {
	int n[ARG_COUNT];
	const char *v[ARG_COUNT][MAX_ZONES > MAX_NUMA_NODES ? MAX_ZONES : MAX_NUMA_NODES];
};

/* Where an option may start: the short forms of --help and --verbose, never an option's value. */
static const char *option_word(const char *w)
{
	return !strcmp(w, "-h") ? "--help" : !strcmp(w, "-v") ? "--verbose" : w;
}

static int collect(struct argv_values *av, int argc, char **argv, char *err, size_t errlen)
{
	for (int i = 1; i < argc; i++) {
		const char *word = option_word(argv[i]), *name, *eq;
		const struct arg_desc *d;
		int a, max;

		if (strncmp(word, "--", 2))
			return error(err, errlen, "'%s': unexpected argument (options start with --)",
				     quote(word).s);
		name = word + 2;
		eq = strchr(name, '=');
		d = find_arg(name, eq ? (size_t)(eq - name) : strlen(name));
		if (!d) {
			char *bad = strndup(name, eq ? (size_t)(eq - name) : strlen(name));

			error(err, errlen, "--%s: unknown option (see --help)", bad ? quote(bad).s : "?");
			free(bad);
			return -1;
		}
		a = (int)(d - args);
		max = a == ARG_ZONE ? MAX_ZONES : a == ARG_NUMA ? MAX_NUMA_NODES : 1;
		if (av->n[a] && !d->multi)
			return error(err, errlen, "--%s: given more than once", d->name);
		if (d->kind == A_FLAG) {
			if (eq)
				return error(err, errlen, "--%s: takes no value", d->name);
			av->n[a] = 1;
			continue;
		}
		if (!eq && (i + 1 == argc || !strncmp(argv[i + 1], "--", 2)))
			return error(err, errlen, "--%s: missing value", d->name);
		do {
			if (av->n[a] == max)
				return error(err, errlen, "--%s: more than %d values", d->name, max);
			av->v[a][av->n[a]++] = eq ? eq + 1 : argv[++i];
			eq = NULL;
		} while (d->multi && i + 1 < argc && strncmp(option_word(argv[i + 1]), "--", 2));
	}
	return 0;
}

static int set_string(char **dst, const struct argv_values *av, int a, char *err, size_t errlen)
{
	if (!av->n[a])
		return 0;
	if (!*av->v[a][0])
		return error(err, errlen, "--%s: empty value", args[a].name);
	*dst = strdup(av->v[a][0]);
	return *dst ? 0 : error(err, errlen, "--%s: out of memory", args[a].name);
}

static int parse_serial(struct vm_config *cfg, const char *v, char *err, size_t errlen)
{
	if (!strcmp(v, "tty")) {
		cfg->serial = SERIAL_TTY;
	} else if (!strcmp(v, "off")) {
		cfg->serial = SERIAL_OFF;
	} else if (!strncmp(v, "file=", 5) && v[5]) {
		cfg->serial = SERIAL_FILE;
		cfg->serial_file = strdup(v + 5);
		if (!cfg->serial_file)
			return error(err, errlen, "--serial: out of memory");
	} else {
		return error(err, errlen, "--serial: '%s': expected tty, off or file=PATH", quote(v).s);
	}
	return 0;
}

/* Cloud Hypervisor's forms: path=PATH, or the bare PATH; fd=N (a socket handed over) is not. */
static int parse_api_socket(struct vm_config *cfg, const char *v, char *err, size_t errlen)
{
	struct sockaddr_un sun;
	const char *path = v;

	if (!strncmp(v, "fd=", 3))
		return error(err, errlen, "--api-socket: '%s': fd= is not supported, give path=PATH", quote(v).s);
	if (!strncmp(v, "path=", 5))
		path = v + 5;
	if (!*path)
		return error(err, errlen, "--api-socket: '%s': expected path=PATH or PATH", quote(v).s);
	if (strlen(path) >= sizeof(sun.sun_path))
		return error(err, errlen, "--api-socket: '%s' is longer than a unix socket's %zu bytes",
			     quote(path).s, sizeof(sun.sun_path) - 1);
	cfg->api_socket = strdup(path);
	return cfg->api_socket ? 0 : error(err, errlen, "--api-socket: out of memory");
}

static int parse_args(struct vm_config *cfg, const struct argv_values *av, char *err,
		      size_t errlen)
{
	struct kv *kv;
	int ret;

	kv = kv_parse(G_MEMORY, "--memory", av->n[ARG_MEMORY] ? av->v[ARG_MEMORY][0] : "", err,
		      errlen);
	if (!kv)
		return -1;
	ret = fill_memory(cfg, kv, av->n[ARG_MEMORY] > 0, err, errlen);
	kv_free(kv);
	if (ret)
		return -1;

	for (int i = 0; i < av->n[ARG_ZONE]; i++) {
		kv = kv_parse(G_ZONE, "--memory-zone", av->v[ARG_ZONE][i], err, errlen);
		if (!kv)
			return -1;
		ret = fill_zone(&cfg->zones[cfg->nzones++], kv, av->v[ARG_ZONE][i], err, errlen);
		kv_free(kv);
		if (ret)
			return -1;
	}
	/* Cloud Hypervisor: "User defined memory regions can't be provided if the memory size is not 0" */
	if (cfg->nzones && cfg->memory.size)
		return error(err, errlen, "--memory-zone: memory zones need --memory size=0");
	if (cfg->memory.size) {
		/* As Cloud Hypervisor's MemoryManager: one zone carries --memory's backing */
		struct zone_config *z = &cfg->zones[cfg->nzones++];
		const struct memory_config *m = &cfg->memory;

		*z = (struct zone_config){ .size = m->size, .shared = m->shared,
					   .hugepages = m->hugepages,
					   .hugepage_size = m->hugepage_size,
					   .prefault = m->prefault, .host_numa_node = -1,
					   .guest_node = -1 };
		strcpy(z->id, DEFAULT_ZONE_ID);
		if (m->hotplug_method == HOTPLUG_VIRTIO_MEM) {
			z->hotplug_size = m->hotplug_size;
			z->hotplugged_size = m->hotplugged_size;
		}
	}

	for (int i = 0; i < av->n[ARG_NUMA]; i++) {
		kv = kv_parse(G_NUMA, "--numa", av->v[ARG_NUMA][i], err, errlen);
		if (!kv)
			return -1;
		ret = fill_numa(&cfg->numa[cfg->nnuma++], kv, av->v[ARG_NUMA][i], err, errlen);
		kv_free(kv);
		if (ret)
			return -1;
	}

	kv = kv_parse(G_CPUS, "--cpus", av->n[ARG_CPUS] ? av->v[ARG_CPUS][0] : "", err, errlen);
	if (!kv)
		return -1;
	cfg->boot_cpus = kv->v[O_CPUS_boot].u32;
	cfg->max_cpus = kv->v[O_CPUS_max].given ? kv->v[O_CPUS_max].u32 : cfg->boot_cpus;
	cfg->kvm_pv_eoi = kv->v[O_CPUS_kvm_pv_eoi].b;
	kv_free(kv);

	kv = kv_parse(G_BALLOON, "--balloon", av->n[ARG_BALLOON] ? av->v[ARG_BALLOON][0] : "",
		      err, errlen);
	if (!kv)
		return -1;
	cfg->balloon = (struct balloon_config){
		.enabled = av->n[ARG_BALLOON] > 0,
		.size = kv->v[O_BALLOON_size].u64,
		.deflate_on_oom = kv->v[O_BALLOON_deflate_on_oom].b,
		.free_page_reporting = kv->v[O_BALLOON_free_page_reporting].b,
	};
	kv_free(kv);

	cfg->serial = SERIAL_TTY;
	if (av->n[ARG_SERIAL] && parse_serial(cfg, av->v[ARG_SERIAL][0], err, errlen))
		return -1;
	if (av->n[ARG_API_SOCKET] && parse_api_socket(cfg, av->v[ARG_API_SOCKET][0], err, errlen))
		return -1;
	if (set_string(&cfg->kernel, av, ARG_KERNEL, err, errlen) ||
	    set_string(&cfg->cmdline, av, ARG_CMDLINE, err, errlen) ||
	    set_string(&cfg->initramfs, av, ARG_INITRAMFS, err, errlen))
		return -1;
	cfg->print_layout = av->n[ARG_PRINT_LAYOUT] > 0;
	return 0;
}

int config__parse(struct vm_config *cfg, int argc, char **argv, char *err, size_t errlen)
{
	struct argv_values *av = calloc(1, sizeof(*av));
	int ret;

	memset(cfg, 0, sizeof(*cfg));
	if (!av)
		return error(err, errlen, "out of memory");
	ret = collect(av, argc, argv, err, errlen);
	cfg->help = av->n[ARG_HELP] > 0;
	cfg->version = av->n[ARG_VERSION] > 0;
	cfg->verbose = av->n[ARG_VERBOSE] > 0;
	/*
	 * --help or --version answers whatever follows it, as GNU tools do: a bad argument after
	 * it stopped collect but is not the question asked. One before it is reported.
	 */
	if (ret && (cfg->help || cfg->version)) {
		ret = 0;
		if (errlen)
			err[0] = '\0';
	}
	if (!ret && !cfg->help && !cfg->version)
		ret = parse_args(cfg, av, err, errlen);
	free(av);
	if (ret)
		config__free(cfg);
	return ret;
}

void config__free(struct vm_config *cfg)
{
	for (int i = 0; i < cfg->nzones && i < MAX_ZONES; i++)
		free(cfg->zones[i].file);
	free(cfg->kernel);
	free(cfg->cmdline);
	free(cfg->initramfs);
	free(cfg->serial_file);
	free(cfg->api_socket);
	memset(cfg, 0, sizeof(*cfg));
}

/* ---- help ---- */

static const char *metavar(const struct opt_desc *d)
{
	switch (d->type) {
	case T_SIZE: return "<size>";
	case T_U32: return "<n>";
	case T_STRING: return "<string>";
	case T_U8_LIST: return "[a-b,c,...]";
	case T_DIST_LIST: return "[node@distance,...]";
	case T_STRING_LIST: return "[id,...]";
	default: return d->values;
	}
}

void config__print_help(FILE *out)
{
	fprintf(out, "Usage: memvisor --kernel PATH [options]   (also --option=value)\n\n");
	for (int a = 0; a < ARG_COUNT; a++) {
		fprintf(out, "  --%s%s%s\n      %s\n", args[a].name, *args[a].metavar ? " " : "",
			args[a].metavar, args[a].help);
		for (int o = 0; args[a].kind == A_KV && o < O_COUNT; o++) {
			char key[64];

			if (opts[o].group != args[a].group)
				continue;
			snprintf(key, sizeof(key), "%s=%s", opts[o].name, metavar(&opts[o]));
			fprintf(out, "        %-34s %s", key, opts[o].help);
			if (*opts[o].def)
				fprintf(out, " [default: %s]", opts[o].def);
			fputc('\n', out);
		}
	}
	fprintf(out, "\n"
		"Sizes are bytes with an optional K, M, G or T suffix (powers of 1024, either case).\n"
		"Booleans: on, off, true, false. Lists: [a,b,...], a single element, or the older\n"
		"a:b:c; vCPU ranges a-b. --numa also accepts the older id= for guest_numa_id.\n"
		"Several --memory-zone or --numa values may follow one option.\n");
}

struct size_str config__size_str(uint64_t v)
{
	static const char suffix[] = "KMGT";
	struct size_str r;
	int i = -1;

	while (i < 3 && v && v % 1024 == 0) {
		v /= 1024;
		i++;
	}
	if (i < 0)
		snprintf(r.s, sizeof(r.s), "%" PRIu64, v);
	else
		snprintf(r.s, sizeof(r.s), "%" PRIu64 "%c", v, suffix[i]);
	return r;
}

int config__zone_error(const struct vm_config *cfg, const struct zone_config *z, char *err,
		       size_t errlen, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (cfg->memory.size)
		return error(err, errlen, "--memory: %s", msg);
	return error(err, errlen, "--memory-zone: zone '%s': %s", z->id, msg);
}
