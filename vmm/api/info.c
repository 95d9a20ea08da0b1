/*
 * The JSON of GET vmm.ping and GET vm.info, shaped as Cloud Hypervisor serializes its
 * VmmPingResponse and VmInfoResponse (vmm/src/api/mod.rs, vmm/src/vm_config.rs): snake_case
 * keys, sizes in bytes, an option that was not given is left out (serde's skip_serializing_none),
 * enums by their Rust names (hotplug_method "Acpi"/"VirtioMem", serial mode "Tty"/"File"/"Off").
 *
 * As CH rewrites its config after a resize, the config reports the memory the VM has now:
 * hotplugged_size is what virtio-mem has plugged, an ACPI-grown VM's size includes its DIMMs.
 */
#include <json-c/json.h>
#include <unistd.h>

#include "api/routes.h"
#include "memory/hotplug.h"
#include "util.h"
#include "vm.h"

/* Adds v under key; a NULL v (json-c out of memory) or a failed add clears *ok. */
static void put(struct json_object *o, const char *key, struct json_object *v, bool *ok)
{
	if (!o || !v || json_object_object_add(o, key, v) < 0) {
		json_object_put(v);
		*ok = false;
	}
}

static void append(struct json_object *a, struct json_object *v, bool *ok)
{
	if (!a || !v || json_object_array_add(a, v) < 0) {
		json_object_put(v);
		*ok = false;
	}
}

static void put_u64(struct json_object *o, const char *key, uint64_t v, bool *ok)
{
	put(o, key, json_object_new_uint64(v), ok);
}

static void put_bool(struct json_object *o, const char *key, bool v, bool *ok)
{
	put(o, key, json_object_new_boolean(v), ok);
}

/* NULL strings are options not given: left out. */
static void put_str(struct json_object *o, const char *key, const char *v, bool *ok)
{
	if (v)
		put(o, key, json_object_new_string(v), ok);
}

/* The root object, or NULL (and nothing leaked) when any part could not be made. */
static struct json_object *finish(struct json_object *root, bool ok)
{
	if (ok && root)
		return root;
	json_object_put(root);
	return NULL;
}

struct json_object *info__ping(void)
{
	struct json_object *o = json_object_new_object();
	bool ok = true;

	put_str(o, "build_version", "v" MEMVISOR_VERSION, &ok);
	put_str(o, "version", MEMVISOR_VERSION, &ok);
	put(o, "pid", json_object_new_int64(getpid()), &ok);
	put(o, "features", json_object_new_array(), &ok);
	return finish(o, ok);
}

static struct json_object *zone_json(const struct vm *vm, int i, bool *ok)
{
	const struct zone_config *z = &vm->cfg.zones[i];
	struct json_object *o = json_object_new_object();

	put_str(o, "id", z->id, ok);
	put_u64(o, "size", z->size, ok);
	put_str(o, "file", z->file, ok);
	put_bool(o, "shared", z->shared, ok);
	put_bool(o, "hugepages", z->hugepages, ok);
	if (z->hugepage_size)
		put_u64(o, "hugepage_size", z->hugepage_size, ok);
	if (z->host_numa_node >= 0)
		put_u64(o, "host_numa_node", (uint64_t)z->host_numa_node, ok);
	if (z->hotplug_size) {
		put_u64(o, "hotplug_size", z->hotplug_size, ok);
		put_u64(o, "hotplugged_size", virtio_mem__plugged(vm, i), ok);
	}
	put_bool(o, "prefault", z->prefault, ok);
	return o;
}

static struct json_object *memory_json(const struct vm *vm, bool *ok)
{
	const struct memory_config *m = &vm->cfg.memory;
	struct json_object *o = json_object_new_object(), *zones;
	bool virtio = m->hotplug_method == HOTPLUG_VIRTIO_MEM;
	uint64_t size = m->size;

	/* CH: an ACPI resize makes desired_ram the new size; virtio-mem keeps size, sets plugged. */
	if (!virtio)
		size += mem_hotplug__plugged(vm);
	put_u64(o, "size", size, ok);
	put_bool(o, "mergeable", m->mergeable, ok);
	put_str(o, "hotplug_method", virtio ? "VirtioMem" : "Acpi", ok);
	if (m->hotplug_size)
		put_u64(o, "hotplug_size", m->hotplug_size, ok);
	if (virtio && m->size && m->hotplug_size) {
		/* --memory size=N made the only zone, DEFAULT_ZONE_ID (config__parse). */
		uint64_t plugged = virtio_mem__plugged(vm, 0);

		if (plugged)
			put_u64(o, "hotplugged_size", plugged, ok);
	}
	put_bool(o, "shared", m->shared, ok);
	put_bool(o, "hugepages", m->hugepages, ok);
	if (m->hugepage_size)
		put_u64(o, "hugepage_size", m->hugepage_size, ok);
	put_bool(o, "prefault", m->prefault, ok);
	put_bool(o, "thp", m->thp, ok);
	/* CH has zones only when the user gave them: not for the zone --memory size=N makes. */
	if (!m->size) {
		zones = json_object_new_array();
		for (int i = 0; i < vm->cfg.nzones; i++)
			append(zones, zone_json(vm, i, ok), ok);
		put(o, "zones", zones, ok);
	}
	return o;
}

static struct json_object *numa_json(const struct numa_config *n, bool *ok)
{
	struct json_object *o = json_object_new_object(), *a;

	put_u64(o, "guest_numa_id", n->guest_numa_id, ok);
	a = json_object_new_array();
	for (unsigned c = 0; c < MAX_VCPUS; c++)
		if (n->cpus[c / 8] & (1u << (c % 8)))
			append(a, json_object_new_uint64(c), ok);
	put(o, "cpus", a, ok);
	if (n->ndistances) {
		a = json_object_new_array();
		for (int i = 0; i < n->ndistances; i++) {
			struct json_object *d = json_object_new_object();

			put_u64(d, "destination", n->distances[i].dest, ok);
			put_u64(d, "distance", n->distances[i].distance, ok);
			append(a, d, ok);
		}
		put(o, "distances", a, ok);
	}
	if (n->nzones) {
		a = json_object_new_array();
		for (int i = 0; i < n->nzones; i++)
			append(a, json_object_new_string(n->zones[i]), ok);
		put(o, "memory_zones", a, ok);
	}
	return o;
}

static struct json_object *config_json(const struct vm *vm, bool *ok)
{
	const struct vm_config *c = &vm->cfg;
	struct json_object *o = json_object_new_object(), *sub;
	static const char *const serial_modes[] = {
		[SERIAL_TTY] = "Tty", [SERIAL_FILE] = "File", [SERIAL_OFF] = "Off",
	};

	sub = json_object_new_object();
	put_u64(sub, "boot_vcpus", c->boot_cpus, ok);
	put_u64(sub, "max_vcpus", c->max_cpus, ok);
	put_bool(sub, "kvm_pv_eoi", c->kvm_pv_eoi, ok);	/* memvisor's own key (--cpus kvm_pv_eoi) */
	put(o, "cpus", sub, ok);
	put(o, "memory", memory_json(vm, ok), ok);
	sub = json_object_new_object();
	put_str(sub, "kernel", c->kernel, ok);
	put_str(sub, "cmdline", c->cmdline, ok);
	put_str(sub, "initramfs", c->initramfs, ok);
	put(o, "payload", sub, ok);
	if (c->balloon.enabled) {
		sub = json_object_new_object();
		put_u64(sub, "size", c->balloon.size, ok);
		put_bool(sub, "deflate_on_oom", c->balloon.deflate_on_oom, ok);
		put_bool(sub, "free_page_reporting", c->balloon.free_page_reporting, ok);
		put(o, "balloon", sub, ok);
	}
	sub = json_object_new_object();
	put_str(sub, "mode", serial_modes[c->serial], ok);
	put_str(sub, "file", c->serial == SERIAL_FILE ? c->serial_file : NULL, ok);
	put(o, "serial", sub, ok);
	if (c->nnuma) {
		sub = json_object_new_array();
		for (int i = 0; i < c->nnuma; i++)
			append(sub, numa_json(&c->numa[i], ok), ok);
		put(o, "numa", sub, ok);
	}
	return o;
}

/* CH's VmState: Created, Running, Shutdown, Paused, BreakPoint (memvisor never pauses). */
static const char *state_name(enum vm_state s)
{
	switch (s) {
	case VM_CREATED:
		return "Created";
	case VM_RUNNING:
		return "Running";
	default:
		return "Shutdown";
	}
}

struct json_object *info__vm(const struct vm *vm)
{
	struct json_object *o = json_object_new_object();
	bool ok = true;

	put(o, "config", config_json(vm, &ok), &ok);
	put_str(o, "state", state_name(vm__state(vm)), &ok);
	put_u64(o, "memory_actual_size", hotplug__actual_size(vm), &ok);
	return finish(o, ok);
}
