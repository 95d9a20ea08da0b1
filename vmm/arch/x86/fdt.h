/* The VM's topology as a flattened device tree (libfdt), handed to the guest as a PVH module. */
#ifndef MEMVISOR_ARCH_X86_FDT_H
#define MEMVISOR_ARCH_X86_FDT_H

#include <stddef.h>
#include "memory/config.h"
#include "memory/layout.h"

/* Appends the devices' nodes at the root (device.h's devices__fdt, with the vm as ctx). */
typedef int (*fdt_devices_fn)(const void *ctx, void *fdt);

/*
 * Write the tree into buf: /memory@ADDR nodes for each boot RAM range and hotplug range,
 * /cpus/cpu@N with numa-node-id, /distance-map, then devices_fdt's nodes (none when NULL).
 * Returns the blob size, or 0 on error (bufsize too small, guest_numa_ids that are not 0..N-1,
 * or devices_fdt failed).
 */
size_t fdt__build(const struct vm_config *cfg, const struct layout *l, fdt_devices_fn devices_fdt,
		  const void *ctx, void *buf, size_t bufsize);

#endif
