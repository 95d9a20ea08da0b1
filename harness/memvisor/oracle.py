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

from dataclasses import dataclass
from typing import Sequence

from . import optionspec
from .driver import VmConfig
from .oraclemodel import (HOTPLUG_ALIGN, KINDS, MAX_GPA, MMIO_HOLE, RANGE_ALIGN,
                          VIRTIO_ID_BALLOON, VIRTIO_ID_MEM, Config, Expectation, HostFacts,
                          HotplugRange, NodeExpect, Rejection, Zone, ZoneMapping, parse)
from .optionspec import ParseError
from .rules import RULES, Rule, Violation, _hugetlb_pages
from .sizes import format_size

# The model and the rules live in oraclemodel.py and rules.py; callers import from here.
__all__ = ["RULES", "Expectation", "HostFacts", "HotplugRange", "NodeExpect", "Range",
           "Rejection", "Rule", "Violation", "ZoneMapping", "evaluate", "layout_violations",
           "violations"]

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
        assumptions=tuple(dict.fromkeys(assumptions)),
        virtio_devices=tuple(VIRTIO_ID_MEM for h in hotplug if h.kind == "virtio-mem")
        + ((VIRTIO_ID_BALLOON,) if c.balloon_size is not None else ()))


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
