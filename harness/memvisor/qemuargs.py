"""One configuration in Cloud Hypervisor's terms (VmConfig) as a QEMU 7.2 user writes it.

    translate(cfg, rule=None) -> QemuCommand | NotApplicable

Each zone is a memory backend: `memory-backend-file` (mem-path; a directory gets a temporary
file as in CH), `memory-backend-memfd` with `hugetlb`/`hugetlbsize` or `share=on`, else
`memory-backend-ram`; `merge` from `mergeable` (QEMU's default is on, so always written),
`prealloc` + `prealloc-threads` from `prefault`, `host-nodes` + `policy=bind` from
`host_numa_node`. A zone's `hotplug_size` is a second backend of the same kind behind a
`virtio-mem-pci` (`requested-size` = `hotplugged_size`); `--memory hotplug_size` with ACPI is
`-m maxmem`/`slots` for `pc-dimm`s added later over QMP. `--numa` is `-numa node`/`dist`,
`--cpus` is `-smp`, `--balloon` a `virtio-balloon-pci` whose target is set over QMP.

What QEMU cannot say is NotApplicable, naming its entry in differences.DIFFERENCES. Option
names and kinds come from optionspec (options.def) through the oracle's parser: no second list.
Rejection cases are translated only when their rule has a QEMU counterpart (QEMU_RULES); the
QEMU run then shows whether QEMU refuses them too.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from .driver import VmConfig
from .oraclemodel import Config, HostFacts, VIRTIO_MEM_BLOCK, Zone, parse
from .optionspec import ZONE_DIR, ParseError
from .sizes import format_size

ACPI_SLOTS = 8      # CH's memory hotplug controller has 8 PNP0C80 slots; QEMU's `slots` likewise

# Oracle rules (rules.py) whose broken configuration has a QEMU spelling: the same sizes, ids,
# nodes and CPUs written as QEMU options. The others are rules on CH's own grammar or
# defaults, with no QEMU option to break them with ("ch-only-rule").
QEMU_RULES = frozenset({
    "zone_id_unique", "zone_size_not_zero", "memory_hotplugged_within_hotplug_size",
    "zone_hotplugged_within_hotplug_size", "memory_hugepage_size_power_of_two",
    "memory_hugepage_size_offered", "zone_hugepage_size_power_of_two",
    "zone_hugepage_size_offered", "zone_shared_file_not_bound", "memory_sizes_page_multiple",
    "zone_sizes_page_multiple", "virtio_mem_region_aligned", "virtio_mem_plugged_blocks",
    "zone_host_numa_node_present", "numa_id_unique", "numa_ids_dense",
    "numa_zone_single_node", "numa_distance_destination_exists", "numa_cpu_single_node",
    "numa_cpu_exists", "cpus_counts", "layout_boot_ram_minimum", "layout_address_space",
    "hugepage_pool_sufficient",
})


@dataclass(frozen=True)
class NotApplicable:
    difference: str     # the id of its entry in differences.DIFFERENCES
    detail: str         # what in this configuration

    @property
    def reason(self) -> str:
        return f"{self.difference}: {self.detail}"


@dataclass
class QemuCommand:
    args: list[str]                                  # after the fixed head (QemuDriver)
    qmp_start: list[tuple[str, dict]] = field(default_factory=list)  # commands once it runs
    backends: dict[str, list[str]] = field(default_factory=dict)     # zone -> backend ids
    virtio_mem: dict[str, str] = field(default_factory=dict)         # zone -> device id
    boot_sizes: dict[str, int] = field(default_factory=dict)         # zone -> boot RAM
    # ACPI hotplug: the backend of a DIMM added over QMP (object-add), else None
    dimm_backend: dict[str, object] | None = None


def _bool(v: object) -> str:
    return "on" if v else "off"


def backend_props(c: Config, z: Zone, prealloc: bool) -> dict[str, object]:
    """The properties of one backend of zone `z` (its boot RAM, its virtio-mem region, or a
    DIMM added later), "qom-type" first; ids and sizes are the caller's."""
    props: dict[str, object]
    if z.file is not None:
        props = {"qom-type": "memory-backend-file", "mem-path": z.file, "share": z.shared}
    elif z.hugepages:
        props = {"qom-type": "memory-backend-memfd", "hugetlb": True}
        if z.hugepage_size:
            props["hugetlbsize"] = z.hugepage_size
        props["share"] = True
    elif z.shared:
        props = {"qom-type": "memory-backend-memfd", "share": True}
    else:
        props = {"qom-type": "memory-backend-ram"}
    props["merge"] = bool(c.memory["mergeable"])
    if prealloc:
        props.update({"prealloc": True, "prealloc-threads": 2})
    if z.host_numa_node is not None:
        props.update({"host-nodes": [z.host_numa_node], "policy": "bind"})
    return props


def _cli_value(key: str, v: object) -> str:
    if isinstance(v, bool):
        return _bool(v)
    if key == "hugetlbsize":
        return format_size(int(v))                      # type: ignore[call-overload]
    if isinstance(v, list):
        return ",".join(str(x) for x in v)
    return str(v)


def backend(c: Config, z: Zone, oid: str, size: int, prealloc: bool) -> str:
    """The -object value of one backend of zone `z`."""
    props = backend_props(c, z, prealloc)
    kind = props.pop("qom-type")
    return ",".join([str(kind), f"id={oid}", f"size={format_size(size) if size else 0}"]
                    + [f"{k}={_cli_value(k, v)}" for k, v in props.items()])


def _cpu_ranges(cpus: list[int]) -> list[str]:
    """[0,1,2,7] -> ['0-2', '7']: QEMU repeats `cpus=` for each range."""
    out: list[str] = []
    for cpu in cpus:
        if out and "-" not in out[-1] and int(out[-1]) == cpu - 1:
            out[-1] = f"{out[-1]}-{cpu}"
        elif out and "-" in out[-1] and int(out[-1].split("-")[1]) == cpu - 1:
            out[-1] = f"{out[-1].split('-')[0]}-{cpu}"
        else:
            out.append(str(cpu))
    return out


def _not_expressible(c: Config) -> NotApplicable | None:
    zones = c.zones
    if not zones:
        return NotApplicable("ch-syntax", "no boot RAM described")
    if c.numa:
        owner: dict[str, list[int | None]] = {z.id: [] for z in zones}  # type: ignore[misc]
        for n in c.numa:
            if len(n.memory_zones or []) > 1:
                return NotApplicable("qemu-one-memdev-per-node",
                                     f"node {n.guest_numa_id} has zones {n.memory_zones}")
            for zid in n.memory_zones or []:
                owner.setdefault(zid, []).append(n.guest_numa_id)
        unowned = [zid for zid, nodes in owner.items() if not nodes]
        if unowned:
            return NotApplicable("qemu-one-memdev-per-node",
                                 f"zones {unowned} belong to no --numa node")
    elif len(zones) > 1:
        return NotApplicable("qemu-one-ram-backend",
                             f"{len(zones)} zones without --numa")
    for z in zones:
        if z.hotplug_size and z.file is not None and \
                z.file.rstrip("/") not in {d.rstrip("/") for d in c.host.directories}:
            return NotApplicable("qemu-file-offset", f"zone {z.id}: file {z.file} with "
                                 f"hotplug_size")
    return None


def translate(cfg: VmConfig, rule: str | None = None,
              host: HostFacts | None = None) -> QemuCommand | NotApplicable:
    """The QEMU options for `cfg`; `rule` is the oracle rule a rejection case breaks."""
    if rule == "parse":
        return NotApplicable("ch-syntax", "the command line does not parse by CH's grammar")
    if rule is not None and rule not in QEMU_RULES:
        return NotApplicable("ch-only-rule", f"rule {rule}")
    try:
        # Only the page size and which paths are directories matter here.
        c = parse(cfg, host or HostFacts(directories=frozenset({ZONE_DIR})))
    except ParseError as e:
        return NotApplicable("ch-syntax", str(e))
    na = _not_expressible(c)
    if na:
        return na
    zones = c.zones
    boot = sum(z.size or 0 for z in zones)
    acpi = c.memory["hotplug_size"] if c.memory["hotplug_size"] and not c.virtio_mem else 0
    extra = int(acpi or 0) + sum(z.hotplug_size or 0 for z in zones if c.virtio_mem)
    out = QemuCommand([])
    mem = f"size={format_size(boot) if boot else 0}"
    if extra:
        mem += f",slots={ACPI_SLOTS},maxmem={format_size(boot + extra)}"
    out.args += ["-m", mem]
    smp = f"{c.boot_cpus}" + (f",maxcpus={c.max_cpus}" if c.max_cpus != c.boot_cpus else "")
    out.args += ["-smp", smp]
    node_of = {zid: n.guest_numa_id for n in c.numa for zid in n.memory_zones or []}
    for z in zones:
        zid = str(z.id)
        out.args += ["-object", backend(c, z, zid, z.size or 0, z.prefault)]
        out.backends[zid] = [zid]
        out.boot_sizes[zid] = z.size or 0
        if z.hotplug_size and c.virtio_mem:
            vid = f"{zid}-hotplug"
            out.args += ["-object", backend(c, z, vid, z.hotplug_size, False)]
            out.backends[zid].append(vid)
            block = max(VIRTIO_MEM_BLOCK, c.page_size(z) or 0)
            dev = [f"virtio-mem-pci,id=vmem-{zid},memdev={vid}",
                   f"requested-size={format_size(z.hotplugged_size or 0)}",
                   f"block-size={format_size(block)}"]
            if zid in node_of:
                dev.append(f"node={node_of[zid]}")
            if z.prefault:
                dev.append("prealloc=on")
            out.args += ["-device", ",".join(dev)]
            out.virtio_mem[zid] = f"vmem-{zid}"
    if acpi:
        out.dimm_backend = backend_props(c, zones[0], False)
    machine = [] if c.numa else [f"memory-backend={zones[0].id}"]
    if not c.memory["mergeable"]:
        # -machine mem-merge (default on) advises MADV_MERGEABLE whatever a backend's merge.
        machine.append("mem-merge=off")
    if machine:
        out.args += ["-machine", ",".join(machine)]
    for n in c.numa:
        node = [f"node,nodeid={n.guest_numa_id}"]
        node += [f"memdev={zid}" for zid in n.memory_zones or []]
        node += [f"cpus={r}" for r in _cpu_ranges(sorted(n.cpus or []))]
        out.args += ["-numa", ",".join(node)]
    for n in c.numa:
        for dest, dist in n.distances or []:
            out.args += ["-numa", f"dist,src={n.guest_numa_id},dst={dest},val={dist}"]
    if cfg.balloon is not None and c.balloon_size is not None:
        opts = dict(kv.split("=", 1) for kv in cfg.balloon.split(",") if "=" in kv)
        dev = ["virtio-balloon-pci,id=balloon0"]
        for ch, qemu in (("deflate_on_oom", "deflate-on-oom"),
                         ("free_page_reporting", "free-page-reporting")):
            if ch in opts:
                dev.append(f"{qemu}={'on' if opts[ch] in ('on', 'true') else 'off'}")
        out.args += ["-device", ",".join(dev)]
        # QEMU's `balloon` sets the guest's target size, CH's size is what the balloon holds.
        out.qmp_start.append(("balloon", {"value": boot - c.balloon_size}))
    return out
