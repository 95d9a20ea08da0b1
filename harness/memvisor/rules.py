"""The oracle's rules: one small function each, in the order a validator would check them.
See oracle.py."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

from .oraclemodel import (DEFAULT_ZONE, HOTPLUG_ALIGN, MAX_GPA, MAX_VCPUS, MIN_BOOT_RAM,
                          MMIO_HOLE, VIRTIO_MEM_ALIGN, VIRTIO_MEM_BLOCK, Config, Zone)

# ---------------------------------------------------------------------------------------------
# Rules: one small function each, in the order a validator would naturally check them.

@dataclass(frozen=True)
class Violation:
    option: str
    keywords: tuple[str, ...]


@dataclass(frozen=True)
class Rule:
    name: str
    check: Callable[[Config], Violation | None]
    assumption: bool      # the spec is silent; the docstring says what we assume and why
    doc: str


RULES: list[Rule] = []


def rule(assumption: bool = False) -> Callable:
    def deco(fn: Callable[[Config], Violation | None]) -> Callable[[Config], Violation | None]:
        RULES.append(Rule(fn.__name__, fn, assumption, fn.__doc__ or ""))
        return fn
    return deco


def _v(option: str, *keywords: object) -> Violation:
    return Violation(option, tuple(str(k) for k in keywords))


def _first(items, pred: Callable) -> object:
    return next((i for i in items if pred(i)), None)


@rule()
def memory_size_mandatory(c: Config) -> Violation | None:
    """size: "This option is mandatory when using the `--memory` parameter." """
    if c.memory_flag_given and "size" not in c.memory_given:
        return _v("--memory", "size")
    return None


@rule()
def memory_size_zero_needs_zones(c: Config) -> Violation | None:
    """--memory-zone: "It must be used with `--memory size=0`, clearly indicating that the
    memory will be described through advanced parameters." size=0 alone describes no RAM."""
    if c.memory["size"] == 0 and not c.user_zones:
        return _v("--memory", "size")
    return None


@rule()
def zones_need_memory_size_zero(c: Config) -> Violation | None:
    """--memory-zone: "It must be used with `--memory size=0`" (the default size is 512M)."""
    if c.user_zones and c.memory["size"] != 0:
        return _v("--memory-zone", "size")
    return None


@rule()
def zone_id_mandatory(c: Config) -> Violation | None:
    """id: "This option is mandatory when using the `--memory-zone` parameter." """
    return _v("--memory-zone", "id") if any(z.id is None for z in c.user_zones) else None


@rule()
def zone_size_mandatory(c: Config) -> Violation | None:
    """size: "This option is mandatory when using the `--memory-zone` parameter." """
    return _v("--memory-zone", "size") if any(z.size is None for z in c.user_zones) else None


@rule()
def zone_id_unique(c: Config) -> Violation | None:
    """id: "This identifier must be unique, otherwise an error will be returned." """
    seen: set[str] = set()
    for z in c.user_zones:
        if z.id is not None and z.id in seen:
            return _v("--memory-zone", z.id)
        seen.add(z.id or "")
    return None


@rule(assumption=True)
def zone_size_not_zero(c: Config) -> Violation | None:
    """Spec silent on a zone of size 0. Assumed invalid: a zone is "a memory region" the guest
    sees, and a mapping of 0 bytes cannot be created (mmap(2) fails with EINVAL)."""
    return _v("--memory-zone", "size") if any(z.size == 0 for z in c.user_zones) else None


@rule()
def memory_hotplug_size_not_zero(c: Config) -> Violation | None:
    """hotplug_size: "A value of 0 is invalid." """
    return _v("--memory", "hotplug_size") if c.memory["hotplug_size"] == 0 else None


@rule()
def memory_hotplugged_size_not_zero(c: Config) -> Violation | None:
    """hotplugged_size: "A value of 0 is invalid." """
    return _v("--memory", "hotplugged_size") if c.memory["hotplugged_size"] == 0 else None


@rule()
def memory_hotplugged_needs_hotplug_size(c: Config) -> Violation | None:
    """hotplugged_size: "This option is only valid when `hotplug_size` is specified" """
    m = c.memory
    if m["hotplugged_size"] is not None and m["hotplug_size"] is None:
        return _v("--memory", "hotplugged_size")
    return None


@rule()
def memory_hotplugged_needs_virtio_mem(c: Config) -> Violation | None:
    """hotplugged_size: "This is only valid when the `hotplug_method` is `virtio-mem` as it
    does not make sense for the `acpi` use case." """
    if c.memory["hotplugged_size"] is not None and not c.virtio_mem:
        return _v("--memory", "hotplugged_size")
    return None


@rule()
def memory_hotplugged_within_hotplug_size(c: Config) -> Violation | None:
    """hotplugged_size: "its value can't exceed the value of `hotplug_size`." """
    hp, hpd = c.memory["hotplug_size"], c.memory["hotplugged_size"]
    if hp is not None and hpd is not None and hpd > hp:  # type: ignore[operator]
        return _v("--memory", "hotplugged_size")
    return None


@rule(assumption=True)
def memory_virtio_mem_needs_size(c: Config) -> Violation | None:
    """Spec silent on --memory hotplug_size with hotplug_method=virtio-mem and size=0. A
    virtio-mem region belongs to a zone ("Since `virtio-mem` is the only way of resizing a
    memory zone"); with size=0 there is no zone mem0 and each zone has its own hotplug_size.
    Cloud Hypervisor silently ignores the value; we assume a rejection instead."""
    m = c.memory
    if c.virtio_mem and m["size"] == 0 and (m["hotplug_size"] or m["hotplugged_size"]):
        return _v("--memory", "hotplug_size")
    return None


@rule()
def zone_hotplug_size_not_zero(c: Config) -> Violation | None:
    """--memory-zone hotplug_size: "A value of 0 is invalid." """
    z = _first(c.user_zones, lambda z: z.hotplug_size == 0)
    return _v("--memory-zone", "hotplug_size") if z else None


@rule()
def zone_hotplugged_needs_virtio_mem(c: Config) -> Violation | None:
    """--memory-zone hotplugged_size: "This is only valid when the `hotplug_method` is
    `virtio-mem`" """
    if not c.virtio_mem and any(z.hotplugged_size is not None for z in c.user_zones):
        return _v("--memory-zone", "hotplugged_size")
    return None


@rule()
def zone_hotplug_needs_virtio_mem(c: Config) -> Violation | None:
    """--memory-zone hotplug_size: "Since `virtio-mem` is the only way of resizing a memory
    zone, one must specify the `hotplug_method=virtio-mem` to the `--memory` parameter." """
    if not c.virtio_mem and any(z.hotplug_size is not None for z in c.user_zones):
        return _v("--memory-zone", "hotplug_size")
    return None


@rule()
def zone_hotplugged_size_not_zero(c: Config) -> Violation | None:
    """--memory-zone hotplugged_size: "A value of 0 is invalid." """
    z = _first(c.user_zones, lambda z: z.hotplugged_size == 0)
    return _v("--memory-zone", "hotplugged_size") if z else None


@rule()
def zone_hotplugged_needs_hotplug_size(c: Config) -> Violation | None:
    """--memory-zone hotplugged_size: "This option is only valid when `hotplug_size` is
    specified" """
    z = _first(c.user_zones, lambda z: z.hotplugged_size is not None and z.hotplug_size is None)
    return _v("--memory-zone", "hotplugged_size") if z else None


@rule()
def zone_hotplugged_within_hotplug_size(c: Config) -> Violation | None:
    """--memory-zone hotplugged_size: "its value can't exceed the value of `hotplug_size`." """
    z = _first(c.user_zones, lambda z: z.hotplugged_size is not None
               and z.hotplug_size is not None and z.hotplugged_size > z.hotplug_size)
    return _v("--memory-zone", "hotplugged_size") if z else None


def _hugepage_size_rules(flag: str, items: list[tuple[bool, int | None]], c: Config
                         ) -> tuple[Violation | None, Violation | None, Violation | None]:
    """(without hugepages, not a power of two, not offered) for (hugepages, hugepage_size)s."""
    without = pow2 = offered = None
    for on, size in items:
        if size is None:
            continue
        if not on and without is None:
            without = _v(flag, "hugepage_size")
        if size & (size - 1) and pow2 is None:
            pow2 = _v(flag, "hugepage_size")
        if size not in c.host.hugepage_sizes and offered is None:
            offered = _v(flag, "hugepage_size")
    return without, pow2, offered


def _mem_hp(c: Config) -> list[tuple[bool, int | None]]:
    return [(bool(c.memory["hugepages"]), c.memory["hugepage_size"])]  # type: ignore[list-item]


def _zone_hp(c: Config) -> list[tuple[bool, int | None]]:
    return [(z.hugepages, z.hugepage_size) for z in c.user_zones]


@rule()
def memory_hugepage_size_needs_hugepages(c: Config) -> Violation | None:
    """hugepage_size: "Specifies if the memory must be created and `mmap(2)` with `MAP_HUGETLB`
    and size flags" -- the size only means something with hugepages=on (Cloud Hypervisor:
    HugePageSizeWithoutHugePages)."""
    return _hugepage_size_rules("--memory", _mem_hp(c), c)[0]


@rule()
def memory_hugepage_size_power_of_two(c: Config) -> Violation | None:
    """hugepage_size: "This performs a memory mapping relying on the specified huge page
    size." Page sizes are powers of two (Cloud Hypervisor: InvalidHugePageSize)."""
    return _hugepage_size_rules("--memory", _mem_hp(c), c)[1]


@rule()
def memory_hugepage_size_offered(c: Config) -> Violation | None:
    """hugepage_size: "relying on the specified huge page size" -- MAP_HUGETLB with a size the
    host does not offer fails, so it is rejected before any memory is mapped."""
    return _hugepage_size_rules("--memory", _mem_hp(c), c)[2]


@rule()
def zone_hugepage_size_needs_hugepages(c: Config) -> Violation | None:
    """--memory-zone hugepage_size: "Specifies if the memory must be created and `mmap(2)` with
    `MAP_HUGETLB` and size flags" (as memory_hugepage_size_needs_hugepages)."""
    return _hugepage_size_rules("--memory-zone", _zone_hp(c), c)[0]


@rule()
def zone_hugepage_size_power_of_two(c: Config) -> Violation | None:
    """--memory-zone hugepage_size: "This performs a memory mapping relying on the specified huge
    page size." (as memory_hugepage_size_power_of_two)."""
    return _hugepage_size_rules("--memory-zone", _zone_hp(c), c)[1]


@rule()
def zone_hugepage_size_offered(c: Config) -> Violation | None:
    """--memory-zone hugepage_size: "relying on the specified huge page size" (as
    memory_hugepage_size_offered)."""
    return _hugepage_size_rules("--memory-zone", _zone_hp(c), c)[2]


@rule(assumption=True)
def hugepages_need_host_support(c: Config) -> Violation | None:
    """"If no huge page size is supplied the system's default huge page size is used." Spec
    silent when the host has none (no hugetlb): assumed a rejection naming hugepages."""
    if c.host.default_hugepage_size:
        return None
    z = _first(c.zones, lambda z: z.hugepages and z.hugepage_size is None)
    return _v(z.flag, "hugepages") if z else None  # type: ignore[union-attr]


@rule(assumption=True)
def zone_file_excludes_hugepages(c: Config) -> Violation | None:
    """Spec silent on file= with hugepages=on: "The file will be opened and used as the backing
    file for the `mmap(2)` operation" contradicts "the memory must be created and `mmap(2)`
    with `MAP_HUGETLB`", and backings.def has no file+hugetlb backing. Assumed a rejection
    (Cloud Hypervisor lets the file win)."""
    z = _first(c.user_zones, lambda z: z.file is not None and z.hugepages)
    return _v("--memory-zone", "file") if z else None


@rule(assumption=True)
def zone_shared_file_not_bound(c: Config) -> Violation | None:
    """host_numa_node: "After the memory zone is `mmap(2)`, the NUMA policy for this memory
    mapping will be applied through `mbind(2)`". For a MAP_SHARED regular file the page cache
    is allocated by the file's policy, not the mapping's, so the binding could not be honoured:
    assumed a rejection naming host_numa_node (Cloud Hypervisor refuses it too)."""
    z = _first(c.user_zones,
               lambda z: z.file is not None and z.shared and z.host_numa_node is not None)
    return _v("--memory-zone", "host_numa_node", "shared") if z else None


@rule()
def memory_sizes_page_multiple(c: Config) -> Violation | None:
    """hugepages: "This performs a memory mapping relying on the specified huge page size."
    Sizes must be whole pages of the size in use (Cloud Hypervisor: MisalignedMemorySize,
    "Memory size is misaligned with default page size or its hugepage size")."""
    m = c.memory
    page = c.page_size(Zone(DEFAULT_ZONE, 0, None, bool(m["shared"]), bool(m["hugepages"]),
                            m["hugepage_size"])) if m["size"] else c.host.page_size  # type: ignore
    if page is None:
        return None
    for key in ("size", "hotplug_size", "hotplugged_size"):
        v = m[key]
        if v and v % page:  # type: ignore[operator]
            return _v("--memory", key)
    return None


@rule()
def zone_sizes_page_multiple(c: Config) -> Violation | None:
    """--memory-zone: "This performs a memory mapping relying on the specified huge page size."
    (as memory_sizes_page_multiple, with the zone's page size)."""
    for z in c.user_zones:
        page = c.page_size(z)
        for key in ("size", "hotplug_size", "hotplugged_size"):
            v = getattr(z, key)
            if page and v and v % page:
                return _v("--memory-zone", key)
    return None


@rule(assumption=True)
def virtio_mem_region_aligned(c: Config) -> Violation | None:
    """Spec silent on virtio-mem sizes. Cloud Hypervisor's virtio-mem device refuses a region
    that is not a multiple of 128 MiB ("Virtio-mem size is not aligned with 134217728"); the
    layout places virtio-mem regions "128 MiB aligned". Assumed: a virtio-mem hotplug_size
    that is not a multiple of 128 MiB is rejected (ACPI hotplug_size is not concerned)."""
    z = _first(c.zones, lambda z: z.hotplug_size and z.hotplug_size % VIRTIO_MEM_ALIGN)
    return _v(z.flag, "hotplug_size") if z else None  # type: ignore[union-attr]


@rule(assumption=True)
def virtio_mem_plugged_blocks(c: Config) -> Violation | None:
    """Spec silent. virtio-mem plugs whole blocks (2 MiB in Cloud Hypervisor, which refuses a
    requested size that is not a multiple of the block size). Assumed: a hotplugged_size that
    is not a multiple of 2 MiB is rejected."""
    z = _first(c.zones, lambda z: z.hotplugged_size and z.hotplugged_size % VIRTIO_MEM_BLOCK)
    return _v(z.flag, "hotplugged_size") if z else None  # type: ignore[union-attr]


@rule()
def zone_host_numa_node_present(c: Config) -> Violation | None:
    """host_numa_node: "Node identifier of a node present on the host. [...] If the node does
    not exist on the host, the call to `mbind(2)` will fail." """
    z = _first(c.user_zones, lambda z: z.host_numa_node is not None
               and z.host_numa_node not in c.host.nodes)
    return _v("--memory-zone", "host_numa_node") if z else None


@rule()
def numa_id_mandatory(c: Config) -> Violation | None:
    """guest_numa_id: "This option is mandatory when using the `--numa` parameter." """
    return _v("--numa", "guest_numa_id") if any(n.guest_numa_id is None for n in c.numa) else None


@rule()
def numa_id_unique(c: Config) -> Violation | None:
    """guest_numa_id: "This identifier must be unique, otherwise an error will be returned." """
    seen: set[int] = set()
    for n in c.numa:
        if n.guest_numa_id is not None and n.guest_numa_id in seen:
            return _v("--numa", n.guest_numa_id)
        seen.add(n.guest_numa_id)  # type: ignore[arg-type]
    return None


@rule()
def numa_ids_dense(c: Config) -> Violation | None:
    """DEVELOPERS.md: "Proximity domain / node id = `guest_numa_id`; ids must be 0..N-1 (the
    SLIT is indexed by them)." The spec's examples all number nodes from 0."""
    ids = [n.guest_numa_id for n in c.numa if n.guest_numa_id is not None]
    bad = _first(ids, lambda i: i >= len(c.numa))
    return _v("--numa", "guest_numa_id") if bad is not None else None


@rule()
def numa_zone_exists(c: Config) -> Violation | None:
    """memory_zones: "Each value is a string referring to an existing memory zone
    identifier." (--memory size=N is zone mem0.)"""
    known = {z.id for z in c.zones}
    for n in c.numa:
        bad = _first(n.memory_zones or [], lambda z: z not in known)
        if bad:
            return _v("--numa", bad)
    return None


@rule()
def numa_zone_single_node(c: Config) -> Violation | None:
    """memory_zones: "Note that a memory zone must belong to a single NUMA node. The following
    configuration is incorrect, therefore not allowed: `--numa
    guest_numa_id=0,memory_zones=mem0 guest_numa_id=1,memory_zones=mem0`" """
    seen: set[str] = set()
    for n in c.numa:
        for z in n.memory_zones or []:
            if z in seen:
                return _v("--numa", z)
            seen.add(z)
    return None


@rule()
def numa_distance_destination_exists(c: Config) -> Violation | None:
    """distances: "the destination NUMA node `value1` is located at a distance of `value2`" --
    the destination is a guest NUMA node (Cloud Hypervisor: "Unknown destination NUMA node")."""
    ids = {n.guest_numa_id for n in c.numa}
    for n in c.numa:
        bad = _first(n.distances or [], lambda d: d[0] not in ids)
        if bad:
            return _v("--numa", bad[0])  # type: ignore[index]
    return None


@rule(assumption=True)
def numa_distance_destination_once(c: Config) -> Violation | None:
    """Spec silent on a destination listed twice in one node's distances. Assumed a rejection
    (Cloud Hypervisor: "Destination NUMA node has been already set")."""
    for n in c.numa:
        dests = [d for d, _ in n.distances or []]
        bad = _first(dests, lambda d: dests.count(d) > 1)
        if bad is not None:
            return _v("--numa", bad)
    return None


@rule()
def numa_cpu_single_node(c: Config) -> Violation | None:
    """cpus: "List of virtual CPUs attached to the guest NUMA node [...] which must be seen by
    the guest as belonging to the NUMA node `guest_numa_id`." -- one node per CPU."""
    seen: set[int] = set()
    for n in c.numa:
        for cpu in n.cpus or []:
            if cpu in seen:
                return _v("--numa", cpu)
            seen.add(cpu)
    return None


@rule()
def numa_cpu_exists(c: Config) -> Violation | None:
    """cpus: "List of virtual CPUs" -- a vCPU id is below --cpus max (default: boot)."""
    for n in c.numa:
        bad = _first(n.cpus or [], lambda cpu: cpu >= c.max_cpus)
        if bad is not None:
            return _v("--numa", bad)
    return None


@rule(assumption=True)
def cpus_counts(c: Config) -> Violation | None:
    """Not a memory option and the spec is silent on --cpus. Assumed as Cloud Hypervisor's:
    boot >= 1, max >= boot (default: boot); cpu ids are u8, so at most 256 vCPUs."""
    if c.boot_cpus < 1:
        return _v("--cpus", "boot")
    if c.max_cpus < c.boot_cpus or c.max_cpus > MAX_VCPUS:
        return _v("--cpus", "max")
    return None


def _boot_ram(c: Config) -> int:
    return sum(z.size or 0 for z in c.zones)


def layout_end(boot_ram: int, acpi: int, virtio: Sequence[int]) -> int:
    """First address after everything for RAM placed from 0 around the hole, then the ACPI
    area and the virtio-mem regions, each 128 MiB aligned (DEVELOPERS.md)."""
    end = boot_ram if boot_ram <= MMIO_HOLE[0] else boot_ram + (MMIO_HOLE[1] - MMIO_HOLE[0])
    for size in ([acpi] if acpi else []) + [s for s in virtio if s]:
        end = -(-end // HOTPLUG_ALIGN) * HOTPLUG_ALIGN
        if MMIO_HOLE[0] < end + size and end < MMIO_HOLE[1]:
            end = MMIO_HOLE[1]
        end += size
    return end


@rule(assumption=True)
def layout_boot_ram_minimum(c: Config) -> Violation | None:
    """Spec silent. memvisor's layout needs 2 MiB of boot RAM: "2 MiB of boot RAM hold the boot
    data below 1 MiB and the start of a PVH kernel loaded at 1 MiB" (layout limits). Assumed
    reported against --memory (or --memory-zone when zones describe the RAM)."""
    if c.zones and _boot_ram(c) < MIN_BOOT_RAM:
        return _v(c.zones[0].flag, "size")
    return None


@rule(assumption=True)
def layout_address_space(c: Config) -> Violation | None:
    """Spec silent. Everything, hotplug areas included, must end below 1 TiB (40 physical
    address bits, the test host's TCG "-cpu max"). Assumed reported against the option whose
    size overflows (--memory for the RAM and ACPI area, the zone for its virtio-mem region)."""
    acpi = (c.memory["hotplug_size"] or 0) if not c.virtio_mem else 0
    ram_flag = c.zones[0].flag if c.zones else "--memory"
    if layout_end(_boot_ram(c), 0, []) > MAX_GPA:
        return _v(ram_flag, "size")
    if layout_end(_boot_ram(c), acpi, []) > MAX_GPA:  # type: ignore[arg-type]
        return _v("--memory", "hotplug_size")
    if layout_end(_boot_ram(c), acpi, [z.hotplug_size or 0 for z in c.zones]) > MAX_GPA:
        return _v(c.zones[-1].flag if c.zones else "--memory", "hotplug_size")
    return None


def _hugetlb_pages(c: Config, z: Zone) -> int:
    page = c.page_size(z)
    if not z.hugepages or not page:
        return 0
    return ((z.size or 0) + (z.hotplugged_size or 0)) // page


@rule()
def hugepage_pool_sufficient(c: Config) -> Violation | None:
    """hugepages: "The user is responsible for ensuring there are sufficient huge pages of the
    specified size for the VMM to use." Checked before mapping: free pages of that size, on
    host_numa_node when given, else in total, for all zones of that size (boot size plus
    hotplugged_size). The zone that exhausts a pool is named."""
    need_node: dict[tuple[int, int], int] = {}
    need_total: dict[int, int] = {}
    for z in c.zones:
        pages, page = _hugetlb_pages(c, z), c.page_size(z)
        if not pages or page is None:
            continue
        need_total[page] = need_total.get(page, 0) + pages
        if z.host_numa_node is not None:
            key = (page, z.host_numa_node)
            need_node[key] = need_node.get(key, 0) + pages
            if need_node[key] > c.host.free_on(page, z.host_numa_node):
                return _v(z.flag, "huge")
        if need_total[page] > c.host.free_total(page):
            return _v(z.flag, "huge")
    return None


@rule()
def balloon_smaller_than_ram(c: Config) -> Violation | None:
    """--balloon size must be smaller than the RAM, boot RAM plus hotplugged_size (Cloud
    Hypervisor: "Balloon size ({0}) greater than RAM ({1})"; the spec does not describe it)."""
    ram = _boot_ram(c) + sum(z.hotplugged_size or 0 for z in c.zones)
    if c.balloon_size is not None and c.balloon_size >= ram:
        return _v("--balloon", "size")
    return None


RULE_NAMES = tuple(r.name for r in RULES)

