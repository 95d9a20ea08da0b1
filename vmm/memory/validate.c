/*
 * config__validate(): every rule a configuration must meet, checked against the host before
 * /dev/kvm is opened or any memory is mapped. Each refusal is one line "--option: reason".
 * Rules beyond the spec follow Cloud Hypervisor (vmm/src/config.rs, memory_manager.rs,
 * virtio-devices/src/mem.rs), as the comments at each say.
 */
#include <errno.h>
#include <inttypes.h>
#include <libgen.h>
#include <limits.h>
#include <linux/magic.h>
#include <stdarg.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>
#include "arch/x86/platform.h"
#include "memory/config.h"
#include "memory/numa.h"
#include "util.h"


/* Cloud Hypervisor virtio-devices/src/mem.rs: VIRTIO_MEM_ALIGN_SIZE, VIRTIO_MEM_DEFAULT_BLOCK_SIZE */
#define VIRTIO_MEM_REGION_ALIGN (128 * MiB)
#define VIRTIO_MEM_BLOCK_SIZE (2 * MiB)

static bool is_pow2(uint64_t v)
{
	return v && !(v & (v - 1));
}

static int host_size_index(const struct host_info *host, uint64_t size)
{
	for (int i = 0; i < host->nhugepage_sizes && i < MAX_HUGEPAGE_SIZES; i++)
		if (host->hugepage_sizes[i] == size)
			return i;
	return -1;
}

static uint64_t backing_page_size(bool hugepages, uint64_t hugepage_size,
				  const struct host_info *host)
{
	if (hugepages && hugepage_size)
		return hugepage_size;
	if (hugepages && host->default_hugepage_size)
		return host->default_hugepage_size;
	return host->page_size;
}

uint64_t config__zone_page_size(const struct vm_config *cfg, const struct zone_config *z,
				const struct host_info *host)
{
	struct statfs st;

	(void)cfg;
	/*
	 * A file on hugetlbfs maps in that file system's pages, as Cloud Hypervisor's
	 * memory_zone_get_align_size() finds with statfs; other files use the base page.
	 */
	if (!z->hugepages && z->file && statfs(z->file, &st) == 0 &&
	    (unsigned long)st.f_type == HUGETLBFS_MAGIC && st.f_bsize > 0)
		return (uint64_t)st.f_bsize;
	return backing_page_size(z->hugepages, z->hugepage_size, host);
}


static int check_hugepages(const char *opt, const char *who, bool hugepages, uint64_t size,
			   const struct host_info *host, char *err, size_t errlen)
{
	char list[128] = "";
	size_t n = 0;

	/* Cloud Hypervisor VmConfig::validate: HugePageSizeWithoutHugePages, InvalidHugePageSize */
	if (size && !hugepages)
		return error(err, errlen, "%s: %shugepage_size needs hugepages=on", opt, who);
	if (size && !is_pow2(size))
		return error(err, errlen, "%s: %shugepage_size %s is not a power of two", opt, who,
			     config__size_str(size).s);
	if (!hugepages)
		return 0;
	if (!host->nhugepage_sizes || !host->default_hugepage_size)
		return error(err, errlen, "%s: %shugepages=on but the host has no hugetlb pages",
			     opt, who);
	if (host_size_index(host, size ? size : host->default_hugepage_size) >= 0)
		return 0;
	for (int i = 0; i < host->nhugepage_sizes && i < MAX_HUGEPAGE_SIZES; i++)
		n += (size_t)snprintf(list + n, sizeof(list) - n, "%s%s", i ? ", " : "",
				      config__size_str(host->hugepage_sizes[i]).s);
	return error(err, errlen, "%s: %shugepage_size=%s is not offered by the host (it has %s)",
		     opt, who, config__size_str(size ? size : host->default_hugepage_size).s, list);
}

/*
 * Pseudo file systems whose "regular files" are kernel interfaces, not storage: /proc/self/mem
 * would stat as an empty regular file and fail only at mmap, after earlier zones were made.
 */
static const struct { unsigned long magic; const char *name; } pseudo_fs[] = {
	{ PROC_SUPER_MAGIC, "procfs" }, { SYSFS_MAGIC, "sysfs" }, { DEBUGFS_MAGIC, "debugfs" },
	{ TRACEFS_MAGIC, "tracefs" }, { SECURITYFS_MAGIC, "securityfs" },
	{ CGROUP_SUPER_MAGIC, "cgroupfs" }, { CGROUP2_SUPER_MAGIC, "cgroup2fs" },
	{ BPF_FS_MAGIC, "bpffs" }, { EFIVARFS_MAGIC, "efivarfs" }, { PSTOREFS_MAGIC, "pstorefs" },
	{ SELINUX_MAGIC, "selinuxfs" }, { SMACK_MAGIC, "smackfs" },
};

static int check_file_system(const struct vm_config *cfg, const struct zone_config *z,
			     const char *path, char *err, size_t errlen)
{
	struct statfs fs;

	if (statfs(path, &fs) < 0)
		return config__zone_error(cfg, z, err, errlen, "file '%s': %s", quote(z->file).s,
					  strerror(errno));
	for (size_t i = 0; i < ARRAY_SIZE(pseudo_fs); i++)
		if ((unsigned long)fs.f_type == pseudo_fs[i].magic)
			return config__zone_error(cfg, z, err, errlen, "file '%s': on %s, a kernel "
						  "interface, not storage for guest memory",
						  quote(z->file).s, pseudo_fs[i].name);
	return 0;
}

/*
 * file=: what backing.c will do with the path must be possible, so that a bad file= of a later
 * zone is refused before an earlier zone is mapped and prefaulted. An existing path is opened
 * read-write (a regular file) or gets a temporary file (a directory); a missing one is created.
 */
static int check_file(const struct vm_config *cfg, const struct zone_config *z, char *err,
		      size_t errlen)
{
	const struct quoted file = quote(z->file);
	char parent[PATH_MAX];
	const char *dir;
	struct stat st;

	if (stat(z->file, &st) == 0) {
		if (!S_ISREG(st.st_mode) && !S_ISDIR(st.st_mode))
			return config__zone_error(cfg, z, err, errlen, "file '%s': not a regular file or a "
					  "directory", file.s);
		if (check_file_system(cfg, z, z->file, err, errlen))
			return -1;
		if (access(z->file, S_ISDIR(st.st_mode) ? W_OK | X_OK : R_OK | W_OK) < 0)
			return config__zone_error(cfg, z, err, errlen, "file '%s': %s", file.s,
					  strerror(errno));
		return 0;
	}
	if (errno != ENOENT)
		return config__zone_error(cfg, z, err, errlen, "file '%s': %s", file.s, strerror(errno));
	/* backing.c's O_CREAT | O_EXCL would find the link and its plain open the missing target */
	if (lstat(z->file, &st) == 0)
		return config__zone_error(cfg, z, err, errlen, "file '%s': a symbolic link to a "
					  "missing file", file.s);
	if ((size_t)snprintf(parent, sizeof(parent), "%s", z->file) >= sizeof(parent))
		return config__zone_error(cfg, z, err, errlen, "file '%s': path too long", file.s);
	/* dirname() may modify its argument (it gets the copy) or return a static "." */
	dir = dirname(parent);
	if (stat(dir, &st) < 0 || !S_ISDIR(st.st_mode))
		return config__zone_error(cfg, z, err, errlen, "file '%s': directory '%s' does not exist",
				  file.s, quote(dir).s);
	if (check_file_system(cfg, z, dir, err, errlen))
		return -1;
	if (access(dir, W_OK | X_OK) < 0)
		return config__zone_error(cfg, z, err, errlen, "file '%s': cannot create it in '%s': %s",
				  file.s, quote(dir).s, strerror(errno));
	return 0;
}

/*
 * The file a zone's file= names however it is spelled (hard link, symlink, "./"): an existing
 * file's inode, or where a missing one will be created. False for a directory, where each zone
 * gets a temporary file of its own. check_file has accepted path.
 */
struct file_id { bool exists; dev_t dev; ino_t ino; char path[PATH_MAX]; };

static bool file_id(const char *path, struct file_id *id)
{
	char copy[PATH_MAX], dir[PATH_MAX];
	struct stat st;
	int n;

	if (stat(path, &st) == 0) {
		*id = (struct file_id){ .exists = true, .dev = st.st_dev, .ino = st.st_ino };
		return !S_ISDIR(st.st_mode);
	}
	snprintf(copy, sizeof(copy), "%s", path);
	if (!realpath(dirname(copy), dir))
		return false;
	snprintf(copy, sizeof(copy), "%s", path);
	n = snprintf(id->path, sizeof(id->path), "%s/%s", dir, basename(copy));
	id->exists = false;
	return n > 0 && (size_t)n < sizeof(id->path);
}

/* Two zones on one file would be the same host pages at two guest addresses. */
static int check_file_unshared(const struct vm_config *cfg, const struct zone_config *z,
			       char *err, size_t errlen)
{
	struct file_id a, b;

	if (!file_id(z->file, &a))
		return 0;
	for (const struct zone_config *o = cfg->zones; o < z; o++) {
		if (!o->file || !file_id(o->file, &b) || a.exists != b.exists)
			continue;
		if (a.exists ? a.dev == b.dev && a.ino == b.ino : !strcmp(a.path, b.path))
			return config__zone_error(cfg, z, err, errlen, "file '%s' is the file of zone "
						  "'%s' too (two zones cannot share a backing file)",
						  quote(z->file).s, o->id);
	}
	return 0;
}

static int check_zone(const struct vm_config *cfg, const struct zone_config *z,
		      const struct host_info *host, char *err, size_t errlen)
{
	const bool virtio = cfg->memory.hotplug_method == HOTPLUG_VIRTIO_MEM;
	char who[ZONE_ID_MAX + 16] = "";
	uint64_t page;

	if (!cfg->memory.size)
		snprintf(who, sizeof(who), "zone '%s': ", z->id);
	if (!z->id[0])
		return error(err, errlen, "--memory-zone: missing id");
	if (!z->size)
		return config__zone_error(cfg, z, err, errlen, "size must not be 0");
	/* Cloud Hypervisor would ignore hugepages and map the file: refuse the ambiguity instead */
	if (z->file && z->hugepages)
		return config__zone_error(cfg, z, err, errlen, "file= and hugepages=on exclude each other "
				  "(for huge pages, put the file on hugetlbfs)");
	if (check_hugepages(cfg->memory.size ? "--memory" : "--memory-zone", who, z->hugepages,
			    z->hugepage_size, host, err, errlen))
		return -1;
	if (z->host_numa_node >= 0 &&
	    (z->host_numa_node >= host->nnodes || z->host_numa_node >= MAX_HOST_NODES ||
	     !host->node_present[z->host_numa_node]))
		return config__zone_error(cfg, z, err, errlen, "host_numa_node %d is not present on the host",
				  z->host_numa_node);
	/* Cloud Hypervisor MemoryManager: InvalidSharedMemoryZoneWithHostNuma */
	if (z->host_numa_node >= 0 && z->file && z->shared)
		return config__zone_error(cfg, z, err, errlen, "host_numa_node cannot bind a shared file "
				  "mapping (shared=on with file=)");
	if (z->hotplug_size && !virtio)
		return config__zone_error(cfg, z, err, errlen, "hotplug_size needs --memory "
				  "hotplug_method=virtio-mem");
	if (z->hotplugged_size && !z->hotplug_size)
		return config__zone_error(cfg, z, err, errlen, "hotplugged_size needs hotplug_size");
	if (z->hotplugged_size > z->hotplug_size)
		return config__zone_error(cfg, z, err, errlen, "hotplugged_size %s exceeds hotplug_size %s",
				  config__size_str(z->hotplugged_size).s, config__size_str(z->hotplug_size).s);
	page = config__zone_page_size(cfg, z, host);
	if (z->size % page)
		return config__zone_error(cfg, z, err, errlen, "size %s is not a multiple of the page size %s",
				  config__size_str(z->size).s, config__size_str(page).s);
	if (z->hotplug_size % page)
		return config__zone_error(cfg, z, err, errlen, "hotplug_size %s is not a multiple of the page "
				  "size %s", config__size_str(z->hotplug_size).s, config__size_str(page).s);
	/* Cloud Hypervisor Mem::new refuses a virtio-mem region not aligned to 128 MiB */
	if (z->hotplug_size % VIRTIO_MEM_REGION_ALIGN)
		return config__zone_error(cfg, z, err, errlen, "hotplug_size %s is not a multiple of 128M "
				  "(virtio-mem region alignment)", config__size_str(z->hotplug_size).s);
	if (z->hotplugged_size % page)
		return config__zone_error(cfg, z, err, errlen, "hotplugged_size %s is not a multiple of the "
				  "page size %s", config__size_str(z->hotplugged_size).s, config__size_str(page).s);
	/* Cloud Hypervisor VirtioMemConfig::resize: a multiple of the 2 MiB block size */
	if (z->hotplugged_size % VIRTIO_MEM_BLOCK_SIZE)
		return config__zone_error(cfg, z, err, errlen, "hotplugged_size %s is not a multiple of 2M "
				  "(virtio-mem block size)", config__size_str(z->hotplugged_size).s);
	if (z->file && (check_file(cfg, z, err, errlen) || check_file_unshared(cfg, z, err, errlen)))
		return -1;
	return 0;
}

static int check_memory(const struct vm_config *cfg, const struct host_info *host, char *err,
			size_t errlen)
{
	const struct memory_config *m = &cfg->memory;
	uint64_t page;

	if (!m->size && !cfg->nzones)
		return error(err, errlen, "--memory: size=0 needs at least one --memory-zone");
	if (m->size && (cfg->nzones != 1 || strcmp(cfg->zones[0].id, DEFAULT_ZONE_ID)))
		return error(err, errlen, "--memory-zone: memory zones need --memory size=0");
	if (check_hugepages("--memory", "", m->hugepages, m->hugepage_size, host, err, errlen))
		return -1;
	if (m->hotplugged_size && !m->hotplug_size)
		return error(err, errlen, "--memory: hotplugged_size needs hotplug_size");
	if (m->hotplugged_size && m->hotplug_method == HOTPLUG_ACPI)
		return error(err, errlen, "--memory: hotplugged_size needs hotplug_method=virtio-mem");
	if (m->hotplugged_size > m->hotplug_size)
		return error(err, errlen, "--memory: hotplugged_size %s exceeds hotplug_size %s",
			     config__size_str(m->hotplugged_size).s, config__size_str(m->hotplug_size).s);
	if (m->hotplug_size && m->hotplug_method == HOTPLUG_VIRTIO_MEM && !m->size)
		return error(err, errlen, "--memory: hotplug_size with hotplug_method=virtio-mem and "
			     "memory zones: put hotplug_size on a zone");
	/* The ACPI area is backed like --memory; each DIMM hotplugged later is checked then */
	page = backing_page_size(m->hugepages, m->hugepage_size, host);
	if (m->hotplug_method == HOTPLUG_ACPI && m->hotplug_size % page)
		return error(err, errlen, "--memory: hotplug_size %s is not a multiple of the page "
			     "size %s", config__size_str(m->hotplug_size).s, config__size_str(page).s);
	return 0;
}

static int check_numa(struct vm_config *cfg, char *err, size_t errlen)
{
	int cpu_node[MAX_VCPUS];

	for (int i = 0; i < cfg->nzones; i++)
		cfg->zones[i].guest_node = -1;
	if (!cfg->nnuma)
		return 0;
	/* The SLIT and the FDT distance map are indexed by guest_numa_id (DEVELOPERS.md) */
	if (numa__check_ids(cfg, err, errlen))
		return -1;
	for (int c = 0; c < MAX_VCPUS; c++)
		cpu_node[c] = -1;
	for (int i = 0; i < cfg->nnuma; i++) {
		const struct numa_config *n = &cfg->numa[i];
		const uint32_t id = n->guest_numa_id;

		for (int j = 0; j < n->nzones; j++) {
			int zi;

			for (zi = 0; zi < cfg->nzones; zi++)
				if (!strcmp(cfg->zones[zi].id, n->zones[j]))
					break;
			if (zi == cfg->nzones)
				return error(err, errlen, "--numa: guest_numa_id=%" PRIu32 ": unknown "
					     "memory zone '%s'", id, n->zones[j]);
			if (cfg->zones[zi].guest_node == i)
				return error(err, errlen, "--numa: guest_numa_id=%" PRIu32 ": memory "
					     "zone '%s' listed twice", id, n->zones[j]);
			if (cfg->zones[zi].guest_node >= 0)
				return error(err, errlen, "--numa: memory zone '%s' belongs to guest "
					     "NUMA nodes %" PRIu32 " and %" PRIu32, n->zones[j],
					     cfg->numa[cfg->zones[zi].guest_node].guest_numa_id, id);
			cfg->zones[zi].guest_node = i;
		}
		for (int c = 0; c < MAX_VCPUS; c++) {
			if (!(n->cpus[c / 8] & (1u << (c % 8))))
				continue;
			if ((unsigned)c >= cfg->max_cpus)
				return error(err, errlen, "--numa: guest_numa_id=%" PRIu32 ": vCPU %d "
					     "does not exist (--cpus max=%u)", id, c, cfg->max_cpus);
			if (cpu_node[c] >= 0)
				return error(err, errlen, "--numa: vCPU %d belongs to guest NUMA nodes "
					     "%" PRIu32 " and %" PRIu32, c,
					     cfg->numa[cpu_node[c]].guest_numa_id, id);
			cpu_node[c] = i;
		}
		for (int j = 0; j < n->ndistances; j++) {
			const struct numa_distance *d = &n->distances[j];

			/* the ids are 0..N-1 by now */
			if (d->dest >= (uint32_t)cfg->nnuma)
				return error(err, errlen, "--numa: guest_numa_id=%" PRIu32 ": distance "
					     "to unknown node %" PRIu32, id, d->dest);
			for (int k = 0; k < j; k++)
				if (n->distances[k].dest == d->dest)
					return error(err, errlen, "--numa: guest_numa_id=%" PRIu32 ": "
						     "distance to node %" PRIu32 " given twice", id,
						     d->dest);
			/* ACPI SLIT and Linux (slit_valid, of_numa): 10 is local, others above */
			if (d->dest == id && d->distance != 10)
				return error(err, errlen, "--numa: guest_numa_id=%" PRIu32 ": distance "
					     "to itself must be 10, not %u", id, d->distance);
			if (d->dest != id && d->distance <= 10)
				return error(err, errlen, "--numa: guest_numa_id=%" PRIu32 ": distance "
					     "to node %" PRIu32 " must be 11-255, not %u", id, d->dest,
					     d->distance);
		}
	}
	/* A zone in no --numa joins the default node, as unlisted vCPUs do (numa.h) */
	for (int i = 0; i < cfg->nzones; i++)
		cfg->zones[i].guest_node = numa__zone_node(cfg, i);
	return 0;
}

/* Boot RAM plus what virtio-mem plugs at boot, as Cloud Hypervisor's MemoryConfig::total_size */
static uint64_t boot_ram(const struct vm_config *cfg)
{
	uint64_t total = 0;

	for (int i = 0; i < cfg->nzones; i++) {
		uint64_t z = cfg->zones[i].size + cfg->zones[i].hotplugged_size;

		if (z < cfg->zones[i].size || total + z < total)
			return UINT64_MAX;
		total += z;
	}
	return total;
}

/*
 * The spec leaves a short huge page pool to "strange VMM behaviour"; we refuse it up front.
 * A zone's mapping is its boot RAM plus its whole virtio-mem region (main.c); backing.c
 * reserves pool pages for the boot RAM and the part plugged at boot (hotplugged_size) only, the
 * rest of the region is MAP_NORESERVE until plugged. The ACPI hotplug area is not mapped at boot. Reservations are global, but the pages come
 * from the bound node when the guest touches them, so a bound zone is checked on its node too.
 */
static int check_pools(const struct vm_config *cfg, const struct host_info *host, char *err,
		       size_t errlen)
{
	uint64_t node_need[MAX_HUGEPAGE_SIZES][MAX_HOST_NODES] = { { 0 } };
	uint64_t total_need[MAX_HUGEPAGE_SIZES] = { 0 };

	for (int i = 0; i < cfg->nzones; i++) {
		const struct zone_config *z = &cfg->zones[i];
		uint64_t page, pages, need, avail;
		const char *where = "";
		char on[32] = "";
		int s, node = z->host_numa_node;

		if (!z->hugepages)
			continue;
		page = config__zone_page_size(cfg, z, host);
		s = host_size_index(host, page);
		if (s < 0)
			continue;	/* check_zone refused it */
		pages = z->size / page + z->hotplugged_size / page;
		total_need[s] += pages;
		need = total_need[s];
		avail = host->free_hugepages_total[s];
		if (node >= 0 && node < MAX_HOST_NODES) {
			node_need[s][node] += pages;
			if (node_need[s][node] > host->free_hugepages[s][node]) {
				need = node_need[s][node];
				avail = host->free_hugepages[s][node];
				snprintf(on, sizeof(on), " on host node %d", node);
				where = on;
			}
		}
		if (need <= avail)
			continue;
		if (need == pages)
			return config__zone_error(cfg, z, err, errlen, "needs %" PRIu64 " free %s huge pages%s, "
					  "the host has %" PRIu64, pages, config__size_str(page).s, where, avail);
		return config__zone_error(cfg, z, err, errlen, "needs %" PRIu64 " free %s huge pages%s "
				  "(%" PRIu64 " with the zones before it), the host has %" PRIu64,
				  pages, config__size_str(page).s, where, need, avail);
	}
	return 0;
}

/*
 * Every virtio-mmio device (a virtio-mem region per zone with hotplug_size, the balloon) and the
 * GED take an IOAPIC pin above the ISA IRQs: more than fit is refused here, naming the options
 * that ask for them, not by the device start-up after memory was mapped.
 */
static int check_interrupt_lines(const struct vm_config *cfg, char *err, size_t errlen)
{
	const unsigned lines = IOAPIC_NR_PINS - ISA_NR_IRQS - 1;	/* one for the GED */
	unsigned regions = 0;

	for (int i = 0; i < cfg->nzones; i++)
		regions += cfg->zones[i].hotplug_size != 0;
	if (regions + cfg->balloon.enabled <= lines)
		return 0;
	return error(err, errlen, "%s: %u virtio-mem regions%s need %u interrupt lines, and "
		     "memvisor has %u (IOAPIC pins %u-%u, one taken by the GED)",
		     cfg->balloon.enabled ? "--balloon" : "--memory-zone", regions,
		     cfg->balloon.enabled ? " and the balloon" : "",
		     regions + cfg->balloon.enabled, lines, ISA_NR_IRQS, IOAPIC_NR_PINS - 1);
}

int config__validate(struct vm_config *cfg, const struct host_info *host, char *err, size_t errlen)
{
	uint64_t ram;

	/* main would refuse it too; here it is tested with the other rules */
	if (!cfg->kernel && !cfg->print_layout)
		return error(err, errlen, "--kernel: missing (required unless --print-layout)");
	if (!cfg->boot_cpus)
		return error(err, errlen, "--cpus: boot must be at least 1");
	/*
	 * vCPU ids are u8 in the spec's --numa cpus. max defaults to boot: name what was given
	 * ("max" still in it, the oracle's keyword for the rule).
	 */
	if (cfg->boot_cpus > 255)
		return error(err, errlen, "--cpus: boot=%u is above the maximum of 255",
			     cfg->boot_cpus);
	if (cfg->max_cpus > 255)
		return error(err, errlen, "--cpus: max=%u is above 255", cfg->max_cpus);
	if (cfg->boot_cpus > cfg->max_cpus)
		return error(err, errlen, "--cpus: boot=%u is above max=%u", cfg->boot_cpus,
			     cfg->max_cpus);
	if (cfg->nzones > MAX_ZONES || cfg->nnuma > MAX_NUMA_NODES)
		return error(err, errlen, "--memory-zone: too many zones or NUMA nodes");
	if (check_memory(cfg, host, err, errlen))
		return -1;
	for (int i = 0; i < cfg->nzones; i++) {
		for (int j = 0; j < i; j++)
			if (!strcmp(cfg->zones[i].id, cfg->zones[j].id))
				return error(err, errlen, "--memory-zone: duplicate id '%s'",
					     cfg->zones[i].id);
		if (check_zone(cfg, &cfg->zones[i], host, err, errlen))
			return -1;
	}
	if (check_numa(cfg, err, errlen))
		return -1;
	ram = boot_ram(cfg);
	if (ram == UINT64_MAX)
		return error(err, errlen, "--memory-zone: the total memory size overflows");
	if (cfg->balloon.enabled && cfg->balloon.size >= ram)
		return error(err, errlen, "--balloon: size %s is not smaller than the guest RAM %s",
			     config__size_str(cfg->balloon.size).s, config__size_str(ram).s);
	if (check_interrupt_lines(cfg, err, errlen))
		return -1;
	return check_pools(cfg, host, err, errlen);
}

