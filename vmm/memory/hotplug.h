/*
 * Resizing a running VM's memory: the requests of the REST API (vm.resize, vm.resize-zone and
 * the balloon part of vm.resize), checked against the configuration here, then carried out by
 * the device that owns the memory (devices/virtio_mem.c, devices/mem_hotplug.c,
 * devices/virtio_balloon.c).
 *
 * Sizes follow Cloud Hypervisor's API: `desired_ram` of vm.resize is the VM's whole RAM (boot
 * RAM plus hotplugged memory), `desired_ram` of vm.resize-zone is the zone's (its size plus its
 * virtio-mem memory), `desired_balloon` is the balloon's size.
 *
 * All of these run on the main thread (the API is served from the main loop); devices guard
 * what their vCPU-side handlers share with them by their own locks.
 */
#ifndef MEMVISOR_MEMORY_HOTPLUG_H
#define MEMVISOR_MEMORY_HOTPLUG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct vm;
struct vm_config;
struct host_info;

/* What a request's failure is: the request's fault (HTTP 4xx) or the VMM's (5xx). */
#define HOTPLUG_REFUSED (-1)
#define HOTPLUG_FAILED (-2)

/*
 * Each returns 0 once the device took the new target (the guest follows in its own time), or
 * HOTPLUG_REFUSED / HOTPLUG_FAILED with one line in err naming the request and the reason.
 * A refused request changes nothing.
 */
int hotplug__resize(struct vm *vm, uint64_t desired_ram, char *err, size_t errlen);
int hotplug__resize_zone(struct vm *vm, const char *id, uint64_t desired_ram, char *err,
			 size_t errlen);
int hotplug__resize_balloon(struct vm *vm, uint64_t desired_balloon, char *err, size_t errlen);

/*
 * The virtio-mem block size of a zone: 2 MiB (Cloud Hypervisor's), or the zone's page size
 * when larger (a hugetlb zone plugs whole huge pages).
 */
uint64_t hotplug__block_size(const struct vm_config *cfg, int zone, const struct host_info *host);

/* RAM the guest has now: boot RAM, plugged virtio-mem blocks, plugged ACPI DIMMs. */
uint64_t hotplug__ram_size(const struct vm *vm);
/* Cloud Hypervisor's memory_actual_size: the RAM above less what the balloon holds. */
uint64_t hotplug__actual_size(const struct vm *vm);

/*
 * Implemented by the devices. A zone without virtio-mem memory, a VM without ACPI hotplug or
 * without a balloon has 0 plugged and 0 held.
 */
/* devices/virtio_mem.c: the zone's device is asked to plug `plugged` bytes (checked above). */
int virtio_mem__resize(struct vm *vm, int zone, uint64_t plugged, char *err, size_t errlen);
uint64_t virtio_mem__plugged(const struct vm *vm, int zone);
/* Whether [off, off + len) of zone's virtio-mem region lies in plugged blocks (any thread). */
bool virtio_mem__range_plugged(struct vm *vm, int zone, uint64_t off, uint64_t len);
/*
 * devices/mem_hotplug.c (ACPI): grow the RAM to desired_ram with new DIMMs; returns 0 or
 * HOTPLUG_REFUSED / HOTPLUG_FAILED (it does its own checks: 128 MiB steps, free slots, growth
 * only).
 */
int mem_hotplug__resize(struct vm *vm, uint64_t desired_ram, char *err, size_t errlen);
uint64_t mem_hotplug__plugged(const struct vm *vm);
/* Host address of [gpa, gpa+len) inside one plugged DIMM, or NULL (vm__gpa_to_hva's). Any thread. */
void *mem_hotplug__gpa_to_hva(const struct vm *vm, uint64_t gpa, uint64_t len);
/* devices/virtio_balloon.c: the balloon's new target, and what the guest gave it so far. */
int balloon__resize(struct vm *vm, uint64_t size, char *err, size_t errlen);
uint64_t balloon__actual(const struct vm *vm);

#endif
