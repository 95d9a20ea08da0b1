/*
 * Resize requests of a running VM: checked against the configuration and the layout, then
 * handed to the device that owns the memory. The checks are Cloud Hypervisor's
 * (vmm/src/memory_manager.rs: resize, resize_zone, virtio_mem_resize), each answered with a
 * reason instead of CH's silent no-op where CH ignores a request.
 */
#include <inttypes.h>
#include <string.h>

#include "memory/hotplug.h"
#include "util.h"
#include "vm.h"

#define VIRTIO_MEM_BLOCK (2 * MiB)

/* error() with the status of a request refused: the client's fault, HTTP 4xx. */
#define refuse(err, errlen, ...) (error(err, errlen, __VA_ARGS__), HOTPLUG_REFUSED)

uint64_t hotplug__block_size(const struct vm_config *cfg, int zone, const struct host_info *host)
{
	uint64_t page = config__zone_page_size(cfg, &cfg->zones[zone], host);

	return page > VIRTIO_MEM_BLOCK ? page : VIRTIO_MEM_BLOCK;
}

static int zone__find(const struct vm_config *cfg, const char *id)
{
	for (int i = 0; i < cfg->nzones; i++)
		if (!strcmp(cfg->zones[i].id, id))
			return i;
	return -1;
}

/* The zone's virtio-mem memory becomes `plugged` bytes (size checked against the region). */
static int resize_virtio_mem(struct vm *vm, const char *what, int zone, uint64_t plugged,
			     char *err, size_t errlen)
{
	const struct zone_config *z = &vm->cfg.zones[zone];
	uint64_t block = hotplug__block_size(&vm->cfg, zone, &vm->host);

	if (!z->hotplug_size)
		return refuse(err, errlen, "%s: zone '%s' has no virtio-mem memory (hotplug_size)",
			      what, z->id);
	if (plugged > z->hotplug_size)
		return refuse(err, errlen, "%s: %s more than the zone's %s (size %s + hotplug_size %s)",
			      what, config__size_str(plugged).s,
			      config__size_str(z->size + z->hotplug_size).s,
			      config__size_str(z->size).s, config__size_str(z->hotplug_size).s);
	if (plugged % block)
		return refuse(err, errlen, "%s: %s of virtio-mem memory is not a multiple of the block "
			      "size %s", what, config__size_str(plugged).s, config__size_str(block).s);
	return virtio_mem__resize(vm, zone, plugged, err, errlen) < 0 ? HOTPLUG_FAILED : 0;
}

int hotplug__resize(struct vm *vm, uint64_t desired_ram, char *err, size_t errlen)
{
	const struct memory_config *m = &vm->cfg.memory;
	uint64_t boot = vm->layout.boot_ram;

	if (!m->hotplug_size)
		return refuse(err, errlen, "vm.resize: desired_ram needs --memory hotplug_size");
	if (m->hotplug_method == HOTPLUG_VIRTIO_MEM) {
		int zone = zone__find(&vm->cfg, DEFAULT_ZONE_ID);

		if (zone < 0)
			return refuse(err, errlen, "vm.resize: memory zones are resized with "
				      "vm.resize-zone");
		if (desired_ram < boot)
			return refuse(err, errlen, "vm.resize: desired_ram %s is below the boot RAM %s",
				      config__size_str(desired_ram).s, config__size_str(boot).s);
		return resize_virtio_mem(vm, "vm.resize", zone, desired_ram - boot, err, errlen);
	}
	return mem_hotplug__resize(vm, desired_ram, err, errlen);
}

int hotplug__resize_zone(struct vm *vm, const char *id, uint64_t desired_ram, char *err,
			 size_t errlen)
{
	int zone = zone__find(&vm->cfg, id);
	const struct zone_config *z;

	if (zone < 0)
		return refuse(err, errlen, "vm.resize-zone: no memory zone '%s'", id);
	z = &vm->cfg.zones[zone];
	if (desired_ram < z->size)
		return refuse(err, errlen, "vm.resize-zone: desired_ram %s is below zone '%s''s size %s",
			      config__size_str(desired_ram).s, id, config__size_str(z->size).s);
	return resize_virtio_mem(vm, "vm.resize-zone", zone, desired_ram - z->size, err, errlen);
}

int hotplug__resize_balloon(struct vm *vm, uint64_t desired_balloon, char *err, size_t errlen)
{
	if (!vm->cfg.balloon.enabled)
		return refuse(err, errlen, "vm.resize: desired_balloon needs --balloon");
	if (desired_balloon % (4 * KiB))
		return refuse(err, errlen, "vm.resize: desired_balloon %s is not a multiple of 4K",
			      config__size_str(desired_balloon).s);
	if (desired_balloon > hotplug__ram_size(vm))
		return refuse(err, errlen, "vm.resize: desired_balloon %s is more than the VM's RAM %s",
			      config__size_str(desired_balloon).s,
			      config__size_str(hotplug__ram_size(vm)).s);
	return balloon__resize(vm, desired_balloon, err, errlen) < 0 ? HOTPLUG_FAILED : 0;
}

uint64_t hotplug__ram_size(const struct vm *vm)
{
	uint64_t size = vm->layout.boot_ram + mem_hotplug__plugged(vm);

	for (int i = 0; i < vm->cfg.nzones; i++)
		size += virtio_mem__plugged(vm, i);
	return size;
}

uint64_t hotplug__actual_size(const struct vm *vm)
{
	uint64_t ram = hotplug__ram_size(vm), held = balloon__actual(vm);

	return held < ram ? ram - held : 0;
}

