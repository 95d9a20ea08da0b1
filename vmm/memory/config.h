/* The VM configuration as given on the command line, parsed and validated. */
#ifndef MEMVISOR_MEMORY_CONFIG_H
#define MEMVISOR_MEMORY_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define MAX_ZONES 32
#define MAX_NUMA_NODES 32
#define MAX_VCPUS 256     /* cpu ids are u8 in the spec */
#define ZONE_ID_MAX 64
#define DEFAULT_ZONE_ID "mem0" /* the zone --memory size=N describes, as in Cloud Hypervisor */

enum hotplug_method { HOTPLUG_ACPI, HOTPLUG_VIRTIO_MEM };
enum serial_mode { SERIAL_TTY, SERIAL_FILE, SERIAL_OFF };

struct memory_config {
	uint64_t size;
	bool mergeable, shared, hugepages, prefault, thp;
	uint64_t hugepage_size;		/* 0: not given */
	enum hotplug_method hotplug_method;
	uint64_t hotplug_size;		/* 0: not given */
	uint64_t hotplugged_size;	/* 0: not given */
};

struct zone_config {
	char id[ZONE_ID_MAX];
	uint64_t size;
	char *file;			/* NULL: none */
	bool shared, hugepages, prefault;
	uint64_t hugepage_size;		/* 0: not given */
	int host_numa_node;		/* -1: none */
	uint64_t hotplug_size;		/* virtio-mem region; 0: none */
	uint64_t hotplugged_size;
	int guest_node;			/* index into vm_config.numa, -1 without --numa; set by validation */
};

struct numa_distance {
	uint32_t dest;
	uint8_t distance;
};

struct numa_config {
	uint32_t guest_numa_id;
	uint8_t cpus[MAX_VCPUS / 8];	/* bitmap */
	int ndistances;
	struct numa_distance distances[MAX_NUMA_NODES];
	int nzones;
	char zones[MAX_ZONES][ZONE_ID_MAX];
};

struct balloon_config {
	bool enabled;
	uint64_t size;
	bool deflate_on_oom, free_page_reporting;
};

struct vm_config {
	struct memory_config memory;
	/*
	 * After config__parse, --memory size=N (N > 0) is represented as one zone DEFAULT_ZONE_ID
	 * carrying --memory's backing options, so that backing and layout see only zones.
	 * memory.mergeable and memory.thp apply to every zone.
	 */
	int nzones;
	struct zone_config zones[MAX_ZONES];
	int nnuma;
	struct numa_config numa[MAX_NUMA_NODES];
	unsigned boot_cpus, max_cpus;
	bool kvm_pv_eoi;		/* --cpus kvm_pv_eoi: KVM_FEATURE_PV_EOI left in the guest's CPUID */
	char *kernel, *cmdline, *initramfs;
	enum serial_mode serial;
	char *serial_file;
	char *api_socket;		/* --api-socket path; NULL: no REST API */
	struct balloon_config balloon;
	bool print_layout;
	bool help, version, verbose;	/* main's own: -h/--help, --version, -v/--verbose */
};

/* What the host offers, read from sysfs by host__probe(); tests fill it by hand. */
#define MAX_HOST_NODES 64
#define MAX_HUGEPAGE_SIZES 4
struct host_info {
	uint64_t page_size;
	uint64_t default_hugepage_size;		/* 0: no hugetlb support */
	int nhugepage_sizes;
	uint64_t hugepage_sizes[MAX_HUGEPAGE_SIZES];
	int nnodes;				/* nodes 0..nnodes-1 that exist on the host */
	bool node_present[MAX_HOST_NODES];
	/* free huge pages per size (index as hugepage_sizes) per node, and in total */
	uint64_t free_hugepages[MAX_HUGEPAGE_SIZES][MAX_HOST_NODES];
	uint64_t free_hugepages_total[MAX_HUGEPAGE_SIZES];
};

/*
 * Parse argv into cfg. Returns 0, or -1 with a one-line message "--option: reason" in err.
 * --help (-h) and --version, where an option may start, set help or version and nothing else.
 */
int config__parse(struct vm_config *cfg, int argc, char **argv, char *err, size_t errlen);

/*
 * Check every rule of the spec against cfg and the host, without touching KVM or mapping
 * memory. Sets zone.guest_node. Returns 0, or -1 with one line in err.
 */
int config__validate(struct vm_config *cfg, const struct host_info *host, char *err, size_t errlen);

/* Effective page size of a zone: its huge page size, or the host's base page size. */
uint64_t config__zone_page_size(const struct vm_config *cfg, const struct zone_config *z,
				const struct host_info *host);

void config__free(struct vm_config *cfg);
void config__print_help(FILE *out);

int host__probe(struct host_info *host, char *err, size_t errlen);
/* The same, reading <root>/proc and <root>/sys (tests point it at a made-up tree). */
int host__probe_at(struct host_info *host, const char *root, char *err, size_t errlen);

/* 2097152 -> "2M": sizes in messages as the user writes them (the largest exact suffix). */
struct size_str { char s[24]; };
struct size_str config__size_str(uint64_t v);

/*
 * One line into err, "--memory: msg" for the zone --memory size=N made, else
 * "--memory-zone: zone 'id': msg"; returns -1. Shared by validation and layout.
 */
int config__zone_error(const struct vm_config *cfg, const struct zone_config *z, char *err,
		       size_t errlen, const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* "512M" -> bytes; returns -1 on a malformed or overflowing size. */
int parse_size(const char *s, uint64_t *out);

#endif
