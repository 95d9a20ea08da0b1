"""The oracle's model: host facts, expectations, rejections and the parsed configuration
(constants from the spec). See oracle.py."""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from . import optionspec
from .driver import VmConfig
from .optionspec import ParseError, parse_group, split_options
from .sizes import parse_size

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
# virtio 1.2 section 5 (device ids) and the virtio-mmio register file (spec section 4.1).
VIRTIO_ID_MEM = 24
VIRTIO_ID_BALLOON = 5
VIRTIO_MMIO_MAGIC = 0x74726976       # "virt"
VIRTIO_MMIO_VERSION = 2
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
    # virtio-mmio devices the guest finds (DSDT LNRO0005 and FDT "virtio,mmio"), by device id:
    # one virtio-mem (24) per virtio-mem region (issue 11; spec section 4.2), in layout order,
    # and one virtio-balloon (5) with --balloon, whatever its size (spec section 4.3).
    virtio_devices: tuple[int, ...] = ()

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

