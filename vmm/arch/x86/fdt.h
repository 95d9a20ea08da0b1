/* The VM's topology as a flattened device tree (libfdt), handed to the guest as a PVH module. */
#ifndef MEMVISOR_ARCH_X86_FDT_H
#define MEMVISOR_ARCH_X86_FDT_H

#include <stddef.h>
#include "memory/config.h"
#include "memory/layout.h"

/*
 * Write the tree into buf: /memory@ADDR nodes for each boot RAM range and hotplug range,
 * /cpus/cpu@N with numa-node-id, /distance-map. Returns the blob size, or 0 on error (bufsize
 * too small, or guest_numa_ids that are not 0..N-1).
 */
size_t fdt__build(const struct vm_config *cfg, const struct layout *l, void *buf, size_t bufsize);

#endif
