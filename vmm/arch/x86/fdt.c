/*
 * The VM's topology as a flattened device tree: memory ranges with their NUMA nodes, vCPUs and
 * the distance matrix, in the node/property layout DEVELOPERS.md fixes. Our freestanding guests
 * read this instead of parsing ACPI; both descriptions read the same layout and the same NUMA
 * description (numa.h), so they agree.
 *
 * Built with libfdt's sequential-write API: the tree is small and written once, in order.
 */
#include <libfdt.h>

#include "arch/x86/fdt.h"
#include "memory/numa.h"
#include "util.h"

/* Stop at the first libfdt error; the caller only needs to know that it failed. */
#define FDT_TRY(call)                     \
	do {                              \
		if ((call) < 0)           \
			return -1;        \
	} while (0)

static int fdt_reg64(void *fdt, uint64_t addr, uint64_t size)
{
	fdt64_t reg[2] = { cpu_to_fdt64(addr), cpu_to_fdt64(size) };

	return fdt_property(fdt, "reg", reg, sizeof(reg));
}

static int memory_node(void *fdt, const struct numa *numa, const struct layout *l, int i)
{
	const struct mem_range *r = &l->ranges[i];
	char name[32];

	snprintf(name, sizeof(name), "memory@%llx", (unsigned long long)r->gpa);
	FDT_TRY(fdt_begin_node(fdt, name));
	FDT_TRY(fdt_property_string(fdt, "device_type", "memory"));
	FDT_TRY(fdt_reg64(fdt, r->gpa, r->size));
	if (numa->nnodes > 0)
		FDT_TRY(fdt_property_u32(fdt, "numa-node-id", (uint32_t)numa->range_node[i]));
	if (r->kind != RANGE_RAM) {
		FDT_TRY(fdt_property(fdt, "hotpluggable", NULL, 0));
		FDT_TRY(fdt_property_string(fdt, "memvisor,kind", layout__kind_name(r->kind)));
	}
	FDT_TRY(fdt_end_node(fdt));
	return 0;
}

/*
 * Unit addresses are the reg value in hex, as the devicetree specification requires (dtc
 * warns otherwise); they equal the decimal vCPU index below 10.
 */
static int cpus_node(void *fdt, const struct numa *numa)
{
	FDT_TRY(fdt_begin_node(fdt, "cpus"));
	FDT_TRY(fdt_property_u32(fdt, "#address-cells", 1));
	FDT_TRY(fdt_property_u32(fdt, "#size-cells", 0));
	for (unsigned cpu = 0; cpu < numa->nvcpus; cpu++) {
		uint32_t apic = numa->apic_id[cpu];
		char name[24];

		snprintf(name, sizeof(name), "cpu@%x", apic);
		FDT_TRY(fdt_begin_node(fdt, name));
		FDT_TRY(fdt_property_string(fdt, "device_type", "cpu"));
		FDT_TRY(fdt_property_u32(fdt, "reg", apic));
		FDT_TRY(fdt_property_string(fdt, "status",
					    cpu < numa->nboot ? "okay" : "disabled"));
		if (numa->nnodes > 0)
			FDT_TRY(fdt_property_u32(fdt, "numa-node-id",
						 (uint32_t)numa->vcpu_node[cpu]));
		FDT_TRY(fdt_end_node(fdt));
	}
	FDT_TRY(fdt_end_node(fdt));
	return 0;
}

/* Every ordered pair, diagonal included, so a reader never has to apply defaults itself. */
static int distance_map_node(void *fdt, const struct numa *numa)
{
	int n = numa->nnodes, k = 0;
	fdt32_t *cells;
	void *val;

	FDT_TRY(fdt_begin_node(fdt, "distance-map"));
	FDT_TRY(fdt_property_string(fdt, "compatible", "numa-distance-map-v1"));
	FDT_TRY(fdt_property_placeholder(fdt, "distance-matrix",
					 n * n * 3 * (int)sizeof(fdt32_t), &val));
	cells = val;
	for (int from = 0; from < n; from++)
		for (int to = 0; to < n; to++) {
			cells[k++] = cpu_to_fdt32((uint32_t)from);
			cells[k++] = cpu_to_fdt32((uint32_t)to);
			cells[k++] = cpu_to_fdt32(numa->distance[from][to]);
		}
	FDT_TRY(fdt_end_node(fdt));
	return 0;
}

static int build(const struct numa *numa, const struct layout *l, fdt_devices_fn devices_fdt,
		 const void *ctx, void *buf, int size)
{
	FDT_TRY(fdt_create(buf, size));
	FDT_TRY(fdt_finish_reservemap(buf));
	FDT_TRY(fdt_begin_node(buf, ""));
	FDT_TRY(fdt_property_u32(buf, "#address-cells", 2));
	FDT_TRY(fdt_property_u32(buf, "#size-cells", 2));
	FDT_TRY(fdt_property_string(buf, "compatible", "memvisor,vm"));
	for (int i = 0; i < l->nranges; i++)
		FDT_TRY(memory_node(buf, numa, l, i));
	FDT_TRY(cpus_node(buf, numa));
	if (numa->nnodes > 0)
		FDT_TRY(distance_map_node(buf, numa));
	if (devices_fdt)
		FDT_TRY(devices_fdt(ctx, buf));
	FDT_TRY(fdt_end_node(buf));
	FDT_TRY(fdt_finish(buf));
	return 0;
}

size_t fdt__build(const struct vm_config *cfg, const struct layout *l, fdt_devices_fn devices_fdt,
		  const void *ctx, void *buf, size_t bufsize)
{
	struct numa numa;
	char why[128];

	/* The distance map is indexed by guest_numa_id: numa__build refuses anything but 0..N-1. */
	if (bufsize > INT32_MAX || numa__build(&numa, cfg, l, why, sizeof(why)) ||
	    build(&numa, l, devices_fdt, ctx, buf, (int)bufsize) < 0)
		return 0;
	return fdt_totalsize(buf);
}
