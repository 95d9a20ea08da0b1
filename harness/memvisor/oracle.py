"""The oracle: what a configuration must give, written from the spec, independent of the VMM.

    evaluate(cfg: VmConfig, host: HostFacts) -> Expectation | Rejection

The spec is ../shared/spec/cloud-hypervisor-memory.md (authoritative). Option names, types and
defaults come from vmm/memory/options.def and the backing names from backings.def (parsed as
text by optionspec); nothing else of the VMM is imported, called or read.

A Rejection names the option the VMM's one-line error `memvisor: --option: reason` must name and
a few words the reason should contain (case-insensitive; wording is not over-fitted). When a
configuration breaks several rules, the first one in RULES is the primary and the others are
`alternatives`: a VMM that checks in another order and reports any of them conforms.

Keywords follow one convention: the offending option key (`hotplug_size`) for rules on values,
the offending value as written (a zone id, a node or cpu number) for rules on references.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

from . import optionspec
from .driver import VmConfig
from .optionspec import ParseError, parse_group, split_options
from .sizes import format_size, parse_size

KiB, MiB, GiB, TiB = 1 << 10, 1 << 20, 1 << 30, 1 << 40

# Guest physical layout (DEVELOPERS.md, "Guest physical layout"): fixed, not the VMM's choice.
MMIO_HOLE = (3 * GiB, 4 * GiB)     # "the 32-bit MMIO hole [3 GiB, 4 GiB) is never RAM"
HOTPLUG_ALIGN = 128 * MiB          # "After RAM, 128 MiB aligned: the ACPI hotplug area ..."
RANGE_ALIGN = 4 * KiB              # every range is a KVM memory slot
MIN_BOOT_RAM = 2 * MiB             # boot data below 1 MiB and the start of a PVH kernel at 1 MiB
MAX_GPA = 1 * TiB                  # 40 physical address bits (test host's TCG "-cpu max")
# Cloud Hypervisor facts (virtio-devices/src/mem.rs): region alignment and block size.
VIRTIO_MEM_ALIGN = 128 * MiB
VIRTIO_MEM_BLOCK = 2 * MiB
DEFAULT_ZONE = "mem0"              # the zone --memory size=N describes, as in Cloud Hypervisor
MAX_VCPUS = 256                    # cpu ids are u8 in the spec

KINDS = ("ram", "acpi-hotplug", "virtio-mem")


# ---------------------------------------------------------------------------------------------
# Host facts and results

@dataclass
class HostFacts:
    page_size: int = 4 * KiB
    default_hugepage_size: int = 2 * MiB          # 0: the host has no hugetlb support
    hugepage_sizes: tuple[int, ...] = (2 * MiB, 1 * GiB)
    free_hugepages: dict[int, dict[int, int]] = field(default_factory=dict)  # size -> node -> n
    nodes: tuple[int, ...] = (0,)
    directories: frozenset[str] = frozenset()     # paths that are directories on the host

    def free_total(self, size: int) -> int:
        return sum(self.free_hugepages.get(size, {}).values())

    def free_on(self, size: int, node: int) -> int:
        return self.free_hugepages.get(size, {}).get(node, 0)

    @classmethod
    def probe(cls, root: Path = Path("/")) -> "HostFacts":
        """The facts of the machine this runs on, from sysfs (e.g. inside the test host)."""
        import os
        hp = root / "sys/kernel/mm/hugepages"
        sizes = sorted(int(d.name.split("-")[1][:-2]) * KiB for d in hp.glob("hugepages-*kB"))
        nodes = tuple(sorted(int(d.name[4:]) for d in (root / "sys/devices/system/node")
                             .glob("node[0-9]*")))
        free: dict[int, dict[int, int]] = {s: {} for s in sizes}
        for n in nodes or (0,):
            for s in sizes:
                f = root / f"sys/devices/system/node/node{n}/hugepages/hugepages-{s // KiB}kB" \
                    / "free_hugepages"
                if f.exists():
                    free[s][n] = int(f.read_text())
        default = 0
        meminfo = root / "proc/meminfo"
        if meminfo.exists():
            m = re.search(r"^Hugepagesize:\s+(\d+) kB", meminfo.read_text(), re.M)
            default = int(m[1]) * KiB if m and sizes else 0
        return cls(os.sysconf("SC_PAGE_SIZE"), default, tuple(sizes), free, nodes or (0,))


@dataclass(frozen=True)
class Rejection:
    option: str                          # "--memory", "--memory-zone", "--numa", "--cpus", ...
    reason_keywords: tuple[str, ...]     # each must appear in the reason (case-insensitive)
    rule: str = ""                       # name of the rule in RULES ("parse" for syntax)
    alternatives: tuple[tuple[str, tuple[str, ...]], ...] = ()  # other (option, keywords)
    assumptions: tuple[str, ...] = ()    # rules taken where the spec is silent

    def matches(self, stderr: str) -> bool:
        """True when one line `memvisor: --option: reason` of stderr fits this rejection."""
        for line in stderr.splitlines():
            m = re.match(r"^memvisor: (--[\w-]+): (.*)$", line.strip())
            if not m:
                continue
            for opt, kws in ((self.option, self.reason_keywords), *self.alternatives):
                if m[1] == opt and all(k.lower() in m[2].lower() for k in kws):
                    return True
        return False


@dataclass(frozen=True)
class HotplugRange:
    kind: str                  # "acpi-hotplug" or "virtio-mem"
    size: int
    zone: str | None           # the zone of a virtio-mem region; None for the ACPI area
    guest_numa_id: int | None  # None without --numa
    plugged: int = 0           # virtio-mem memory plugged at boot (hotplugged_size)


@dataclass(frozen=True)
class ZoneMapping:
    """The host-side mapping of one zone, as /proc/PID/smaps and numa_maps show it."""
    zone: str
    backing: str | None        # name from backings.def
    boot_size: int             # the zone's boot RAM
    hotplug_size: int          # its virtio-mem region (0: none)
    hotplugged_size: int       # plugged at boot
    shared: bool               # MAP_SHARED
    page_size: int
    hugepages: int             # huge pages it takes from the pool at boot (0: not hugetlb)
    host_numa_node: int | None
    numa_policy: str           # numa_maps policy: "default" or "bind:N"
    thp: bool                  # advised MADV_HUGEPAGE: VmFlags "hg"
    mergeable: bool            # MADV_MERGEABLE took effect: VmFlags "mg" (never on MAP_SHARED)
    prefault: bool             # populated before the guest starts
    file: str | None
    file_is_dir: bool          # the file is an unlinked temporary file in this directory
    guest_numa_id: int | None
    vmflags_present: frozenset[str] = frozenset()
    vmflags_absent: frozenset[str] = frozenset()

    @property
    def prefault_bytes(self) -> int:
        """Bytes resident right after boot at least (Rss, or hugetlb pages in use)."""
        return self.boot_size + self.hotplugged_size if self.prefault else 0


@dataclass(frozen=True)
class NodeExpect:
    guest_numa_id: int
    boot_ram: int
    zones: tuple[str, ...]
    cpus: tuple[int, ...]           # every vCPU id of the node, boot and hotpluggable
    hotplug: tuple[HotplugRange, ...]


@dataclass(frozen=True)
class Expectation:
    boot_ram: int                                # sum of the zones' boot RAM
    hotplugged_ram: int                          # virtio-mem memory plugged at boot
    boot_cpus: int
    max_cpus: int
    zones: tuple[ZoneMapping, ...]               # command-line order; --memory size=N is mem0
    hotplug: tuple[HotplugRange, ...]            # layout order: ACPI area, then virtio-mem
    numa: dict[int, NodeExpect]                  # by guest_numa_id; empty without --numa
    slit: tuple[tuple[int, ...], ...]            # indexed by guest_numa_id; () without --numa
    balloon_size: int | None = None
    assumptions: tuple[str, ...] = ()

    def zone(self, zone_id: str) -> ZoneMapping:
        return next(z for z in self.zones if z.zone == zone_id)

    @property
    def backings(self) -> set[str]:
        return {z.backing for z in self.zones if z.backing}


# ---------------------------------------------------------------------------------------------
# Parsing (syntax, by options.def types in optionspec; meaning is checked by RULES)

def _defaults(group: str) -> dict[str, object]:
    return dict(optionspec.defaults(group))


def _simple(flag: str, text: str, keys: tuple[str, ...]) -> dict[str, int | str]:
    out: dict[str, int | str] = {}
    for key, raw in split_options(text):
        if key not in keys:
            raise ParseError(flag, [key])
        out[key] = raw
    return out


@dataclass
class Zone:
    id: str | None
    size: int | None
    file: str | None = None
    shared: bool = False
    hugepages: bool = False
    hugepage_size: int | None = None
    host_numa_node: int | None = None
    hotplug_size: int | None = None
    hotplugged_size: int | None = None
    prefault: bool = False
    implicit: bool = False      # mem0, described by --memory size=N

    @property
    def flag(self) -> str:
        return "--memory" if self.implicit else "--memory-zone"


@dataclass
class Node:
    guest_numa_id: int | None
    cpus: list[int] | None
    distances: list[tuple[int, int]] | None
    memory_zones: list[str] | None


@dataclass
class Config:
    """A parsed configuration: --memory with defaults applied, the zones, NUMA nodes, CPUs."""
    memory: dict[str, object]
    memory_given: set[str]
    memory_flag_given: bool
    user_zones: list[Zone]
    numa: list[Node]
    boot_cpus: int
    max_cpus: int
    balloon_size: int | None
    host: HostFacts

    @property
    def virtio_mem(self) -> bool:
        return self.memory["hotplug_method"] == "virtio-mem"

    @property
    def zones(self) -> list[Zone]:
        """The zones as mapped: the user's, or mem0 for --memory size=N (N > 0)."""
        if self.user_zones or not self.memory["size"]:
            return self.user_zones
        m = self.memory
        return [Zone(DEFAULT_ZONE, m["size"], None, m["shared"], m["hugepages"],  # type: ignore
                     m["hugepage_size"], None,                                     # type: ignore
                     m["hotplug_size"] if self.virtio_mem else None,               # type: ignore
                     m["hotplugged_size"] if self.virtio_mem else None,            # type: ignore
                     m["prefault"], implicit=True)]                                # type: ignore

    def page_size(self, z: Zone) -> int | None:
        """Page size in use by a zone; None when its huge page size is not usable."""
        if not z.hugepages:
            return self.host.page_size
        size = z.hugepage_size or self.host.default_hugepage_size
        return size if size in self.host.hugepage_sizes else None


def parse(cfg: VmConfig, host: HostFacts) -> Config:
    memory = _defaults("MEMORY")
    given: dict[str, object] = {}
    if cfg.memory is not None:
        given = parse_group("MEMORY", cfg.memory)
        memory.update(given)
    zones = []
    for text in cfg.zones:
        z = {**_defaults("ZONE"), **parse_group("ZONE", text)}
        zones.append(Zone(**z))  # type: ignore[arg-type]
    numa = []
    for text in cfg.numa:
        n = {**_defaults("NUMA"), **parse_group("NUMA", text)}
        numa.append(Node(**n))  # type: ignore[arg-type]
    cpus = _simple("--cpus", cfg.cpus or "boot=1", ("boot", "max"))
    try:
        boot = int(str(cpus.get("boot", "1")))
        mx = int(str(cpus.get("max", boot)))
        if not 0 <= boot < 1 << 32 or not 0 <= mx < 1 << 32:
            raise ValueError(cpus)
    except ValueError:
        raise ParseError("--cpus", ["boot" if "max" not in cpus else "max"]) from None
    balloon = None
    if cfg.balloon:
        b = _simple("--balloon", cfg.balloon, ("size", "deflate_on_oom", "free_page_reporting"))
        try:
            balloon = parse_size(str(b.get("size", "0")))
        except ValueError:
            raise ParseError("--balloon", ["size"]) from None
    return Config(memory, set(given), cfg.memory is not None, zones, numa, boot, mx, balloon, host)


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


# ---------------------------------------------------------------------------------------------
# Evaluation

def violations(c: Config) -> list[tuple[Rule, Violation]]:
    out = []
    for r in RULES:
        v = r.check(c)
        if v is not None:
            out.append((r, v))
    return out


def evaluate(cfg: VmConfig, host: HostFacts) -> Expectation | Rejection:
    """What the VMM must do with `cfg` on `host`: boot as described, or reject."""
    try:
        c = parse(cfg, host)
    except ParseError as e:
        return Rejection(e.option, tuple(e.keywords), "parse")
    found = violations(c)
    if found:
        (r0, v0), rest = found[0], found[1:]
        alts: list[tuple[str, tuple[str, ...]]] = []
        for _, v in rest:
            if (v.option, v.keywords) != (v0.option, v0.keywords) and \
                    (v.option, v.keywords) not in alts:
                alts.append((v.option, v.keywords))
        # The rejection rests on assumptions only when no rule the spec states was broken.
        certain = any(not r.assumption for r, _ in found)
        return Rejection(v0.option, v0.keywords, r0.name, tuple(alts),
                         () if certain else tuple(r.name for r, _ in found))
    return _expect(c)


def _backing(c: Config, z: Zone, page: int) -> str | None:
    """The backings.def entry whose selecting options the zone's effective options satisfy.

    Only options that matter for the kind of memory are effective (spec, thp: "private
    anonymous memory for the guest (i.e. `shared=off` and no backing file)"; "If
    `hugepages=on` then the value of `shared` is ignored")."""
    if z.file is not None:
        eff = {"file": "PATH", "shared": "on" if z.shared else "off"}
    elif z.hugepages:
        eff = {"hugepages": "on", "hugepage_size": format_size(page), "shared": "on"}
    elif z.shared:
        eff = {"shared": "on"}
    else:
        eff = {"thp": "on" if c.memory["thp"] else "off"}
    best, best_n = None, 0
    for b in optionspec.backings():
        if all(eff.get(k) == v for k, v in b.selectors) and len(b.selectors) > best_n:
            best, best_n = b.name, len(b.selectors)
    return best


def _expect(c: Config) -> Expectation:
    assumptions: list[str] = []
    zones = c.zones
    ids = sorted(n.guest_numa_id for n in c.numa)  # type: ignore[type-var]
    lowest = ids[0] if ids else None
    zone_node: dict[str, int | None] = {z.id: None for z in zones}  # type: ignore[misc]
    cpu_node: dict[int, int] = {}
    for n in c.numa:
        for zid in n.memory_zones or []:
            zone_node[zid] = n.guest_numa_id
        for cpu in n.cpus or []:
            cpu_node[cpu] = n.guest_numa_id  # type: ignore[assignment]
    if c.numa:
        for zid, node in zone_node.items():
            if node is None:
                # Spec silent: every range needs a proximity domain (DEVELOPERS.md, FDT:
                # "numa-node-id = <guest_numa_id> when NUMA is configured"); mirror the vCPU rule.
                zone_node[zid] = lowest
                assumptions.append("unassigned-zone-on-lowest-node")
        for cpu in range(c.max_cpus):
            # DEVELOPERS.md: "A vCPU listed in no `--numa cpus=` belongs to the node with the
            # lowest `guest_numa_id`."
            cpu_node.setdefault(cpu, lowest)  # type: ignore[arg-type]
    m = c.memory
    if not m["size"] and any(k in c.memory_given for k in
                             ("shared", "hugepages", "hugepage_size", "prefault")):
        # Spec silent; as Cloud Hypervisor: with zones, each zone has its own backing options.
        assumptions.append("memory-backing-options-ignored-with-zones")

    hotplug: list[HotplugRange] = []
    if m["hotplug_size"] and not c.virtio_mem:
        if not m["size"]:
            assumptions.append("acpi-hotplug-with-zones")
        if c.numa:
            assumptions.append("acpi-area-on-lowest-node")
        hotplug.append(HotplugRange("acpi-hotplug", m["hotplug_size"], None,  # type: ignore
                                    lowest if c.numa else None))
    mappings = []
    for z in zones:
        page = c.page_size(z) or c.host.page_size
        node = zone_node[z.id] if c.numa else None  # type: ignore[index]
        if z.hotplug_size:
            hotplug.append(HotplugRange("virtio-mem", z.hotplug_size, z.id, node,
                                        z.hotplugged_size or 0))
        shared = z.hugepages or z.shared
        thp = bool(m["thp"]) and not shared and z.file is None
        # The kernel ignores MADV_MERGEABLE on VM_SHARED/VM_MAYSHARE/VM_HUGETLB mappings
        # (mm/ksm.c), so "mg" shows on private mappings only.
        mergeable = bool(m["mergeable"]) and not shared
        present, absent = set(), set()
        (present if thp else absent).add("hg")
        (present if mergeable else absent).add("mg")
        (present if shared else absent).add("sh")
        (present if z.hugepages else absent).add("ht")
        mappings.append(ZoneMapping(
            zone=z.id, backing=_backing(c, z, page), boot_size=z.size,  # type: ignore[arg-type]
            hotplug_size=z.hotplug_size or 0, hotplugged_size=z.hotplugged_size or 0,
            shared=shared, page_size=page, hugepages=_hugetlb_pages(c, z),
            host_numa_node=z.host_numa_node,
            numa_policy="default" if z.host_numa_node is None else f"bind:{z.host_numa_node}",
            thp=thp, mergeable=mergeable, prefault=z.prefault, file=z.file,
            file_is_dir=z.file is not None and z.file.rstrip("/") in
            {d.rstrip("/") for d in c.host.directories},
            guest_numa_id=node, vmflags_present=frozenset(present),
            vmflags_absent=frozenset(absent)))

    numa: dict[int, NodeExpect] = {}
    for i in ids:
        numa[i] = NodeExpect(
            guest_numa_id=i,
            boot_ram=sum(z.size for z in zones if zone_node[z.id] == i),  # type: ignore
            zones=tuple(z.id for z in zones if zone_node[z.id] == i),     # type: ignore
            cpus=tuple(sorted(cpu for cpu, n in cpu_node.items() if n == i)),
            hotplug=tuple(h for h in hotplug if h.guest_numa_id == i))
    slit, self_given = _slit(c, ids)
    if self_given:
        assumptions.append("self-distance-is-10")
    return Expectation(
        boot_ram=sum(z.size for z in zones), hotplugged_ram=sum(z.hotplugged_size or 0  # type: ignore
                                                                for z in zones),
        boot_cpus=c.boot_cpus, max_cpus=c.max_cpus, zones=tuple(mappings),
        hotplug=tuple(hotplug), numa=numa, slit=slit, balloon_size=c.balloon_size,
        assumptions=tuple(dict.fromkeys(assumptions)))


def _slit(c: Config, ids: list[int]) -> tuple[tuple[tuple[int, ...], ...], bool]:
    """DEVELOPERS.md: "SLIT: 10 on the diagonal; a missing distance takes the reverse
    direction's, else 20." A self-distance given on the command line is ignored (assumed; the
    ACPI SLIT requires 10 on the diagonal, Cloud Hypervisor ignores it too)."""
    given: dict[tuple[int, int], int] = {}
    self_given = False
    for n in c.numa:
        for dest, dist in n.distances or []:
            if dest == n.guest_numa_id:
                self_given = True
            given[(n.guest_numa_id, dest)] = dist  # type: ignore[index]
    rows = []
    for i in ids:
        row = []
        for j in ids:
            row.append(10 if i == j else given.get((i, j), given.get((j, i), 20)))
        rows.append(tuple(row))
    return tuple(rows), self_given


# ---------------------------------------------------------------------------------------------
# Layout invariants (exact addresses are the VMM's choice)

@dataclass(frozen=True)
class Range:
    kind: str                       # "ram", "acpi-hotplug", "virtio-mem"
    gpa: int
    size: int
    zone: str | None = None
    guest_numa_id: int | None = None


def layout_violations(exp: Expectation, ranges: Sequence[Range]) -> list[str]:
    """What is wrong with an actual layout (e.g. --print-layout) given the expectation."""
    bad: list[str] = []
    rs = sorted(ranges, key=lambda r: r.gpa)
    for r in rs:
        if r.kind not in KINDS:
            bad.append(f"unknown kind {r.kind!r}")
        if r.size <= 0 or r.gpa % RANGE_ALIGN or r.size % RANGE_ALIGN:
            bad.append(f"{r.kind} {r.gpa:#x}+{r.size:#x}: not 4 KiB granular")
        if r.gpa < MMIO_HOLE[1] and r.gpa + r.size > MMIO_HOLE[0]:
            bad.append(f"{r.kind} {r.gpa:#x}+{r.size:#x} overlaps the MMIO hole [3G,4G)")
        if r.gpa + r.size > MAX_GPA:
            bad.append(f"{r.kind} {r.gpa:#x}+{r.size:#x} above 1 TiB")
    for a, b in zip(rs, rs[1:]):
        if a.gpa + a.size > b.gpa:
            bad.append(f"{a.kind} {a.gpa:#x}+{a.size:#x} overlaps {b.kind} {b.gpa:#x}")
    ram = [r for r in rs if r.kind == "ram"]
    hot = [r for r in rs if r.kind != "ram"]
    if ram and ram[0].gpa != 0:
        bad.append(f"RAM starts at {ram[0].gpa:#x}, not 0")
    if sum(r.size for r in ram) != exp.boot_ram:
        bad.append(f"RAM {sum(r.size for r in ram):#x} != boot RAM {exp.boot_ram:#x}")
    order = [z.zone for z in exp.zones]
    seen_order = [r.zone for r in ram]
    if any(r.zone not in order for r in ram):
        bad.append(f"RAM of unknown zones: {sorted({str(r.zone) for r in ram} - set(order))}")
    elif [order.index(z) for z in seen_order] != sorted(order.index(z) for z in seen_order):
        bad.append(f"zones not in command-line order: {seen_order}")
    for z in exp.zones:
        got = sum(r.size for r in ram if r.zone == z.zone)
        if got != z.boot_size:
            bad.append(f"zone {z.zone}: RAM {got:#x} != {z.boot_size:#x}")
        if exp.numa:
            nodes = {r.guest_numa_id for r in ram if r.zone == z.zone}
            if nodes - {z.guest_numa_id}:
                bad.append(f"zone {z.zone}: RAM on nodes {nodes}, expected {z.guest_numa_id}")
    ram_end = max((r.gpa + r.size for r in ram), default=0)
    for r in hot:
        if r.gpa % HOTPLUG_ALIGN:
            bad.append(f"{r.kind} at {r.gpa:#x} not 128 MiB aligned")
        if r.gpa < ram_end:
            bad.append(f"{r.kind} at {r.gpa:#x} below the end of RAM {ram_end:#x}")
    got_hot = [(r.kind, r.size, r.zone) for r in hot]
    want_hot = [(h.kind, h.size, h.zone) for h in exp.hotplug]
    if got_hot != want_hot:
        bad.append(f"hotplug areas {got_hot} != expected {want_hot} (in this order)")
    elif exp.numa:
        for r, h in zip(hot, exp.hotplug):
            if r.guest_numa_id is not None and r.guest_numa_id != h.guest_numa_id:
                bad.append(f"{r.kind} of {r.zone}: node {r.guest_numa_id} != {h.guest_numa_id}")
    return bad
