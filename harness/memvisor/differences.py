"""The one table of known differences between memvisor (Cloud Hypervisor's behaviour) and QEMU.

Every difference `make conformance-compare` finds must be explained by an entry here, with its
source; a difference no entry explains fails the run. Kinds:
  n/a       QEMU has no way to write the configuration (qemuargs.NotApplicable names the entry);
  platform  a failure line every QEMU boot may show because QEMU's machine is not memvisor's,
            unrelated to the memory options: set aside under QEMU and kept as a note;
  check     a failure line under QEMU that is a real behaviour difference of an option: the
            case fails under QEMU, and this entry is its explanation;
  refusal   QEMU refuses a configuration memvisor boots: `failure` matches QEMU's error line;
  status    memvisor's and QEMU's statuses differ for rejection cases of these oracle rules.
"""
from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from .driver import VmConfig
from .optionspec import ZONE_DIR
from .oraclemodel import Expectation, HostFacts, parse

# platform/check/refusal entries: the cases an entry may explain, from their configuration and
# expectation, so that the same failure line in another case stays unexplained.
Applies = Callable[[VmConfig, Expectation], bool]


def _always(cfg: VmConfig, exp: Expectation) -> bool:
    return True


def _hotplug_without_numa(cfg: VmConfig, exp: Expectation) -> bool:
    return bool(exp.hotplug) and not exp.numa


def _hotplug_with_numa(cfg: VmConfig, exp: Expectation) -> bool:
    return bool(exp.hotplug) and bool(exp.numa)


def _numa_without_distances(cfg: VmConfig, exp: Expectation) -> bool:
    return bool(exp.numa) and not any("distances=" in n for n in cfg.numa)


def _distances_given(cfg: VmConfig, exp: Expectation) -> bool:
    return any("distances=" in n for n in cfg.numa)


def _distance_pair_missing(cfg: VmConfig, exp: Expectation) -> bool:
    """Some distance is given, yet a pair of nodes has none in either direction."""
    nodes = parse(cfg, HostFacts(directories=frozenset({ZONE_DIR}))).numa
    given = {(n.guest_numa_id, d) for n in nodes for d, _ in n.distances or []}
    ids = sorted(n.guest_numa_id for n in nodes)
    return bool(given) and any((a, b) not in given and (b, a) not in given
                               for i, a in enumerate(ids) for b in ids[i + 1:])


def _boot_ram_not_in_node_order(cfg: VmConfig, exp: Expectation) -> bool:
    """The zone CH puts at GPA 0 (the first) is not on the lowest node, which QEMU puts there."""
    return bool(exp.numa) and bool(exp.zones) and exp.zones[0].guest_numa_id != min(exp.numa)


def _prefault_plugged_virtio_mem(cfg: VmConfig, exp: Expectation) -> bool:
    return any(z.prefault and z.hotplugged_size for z in exp.zones)


def _zone_without_thp(cfg: VmConfig, exp: Expectation) -> bool:
    return any(not z.thp for z in exp.zones)


def _acpi_hotplug(cfg: VmConfig, exp: Expectation) -> bool:
    return any(h.kind == "acpi-hotplug" for h in exp.hotplug)


def _hugetlb_virtio_mem_unplugged(cfg: VmConfig, exp: Expectation) -> bool:
    return any(z.hugepages and z.hotplug_size > z.hotplugged_size for z in exp.zones)


def _virtio_devices(cfg: VmConfig, exp: Expectation) -> bool:
    return bool(exp.virtio_devices)


@dataclass(frozen=True)
class Difference:
    id: str
    kind: str                         # "n/a", "platform", "check", "status"
    text: str
    source: str
    failure: str = ""                 # platform/check: regex over a failure line; refusal: over
                                      # QEMU's error line
    rules: tuple[str, ...] = ()       # status: the oracle rules of the rejection cases
    statuses: tuple[str, str] = ("", "")   # status: (memvisor, qemu)
    applies: Applies | None = None    # platform/check/refusal: the cases it may explain
    cases: tuple[str, ...] = ()       # status: fault cases (conformance/faults.py) by name


DIFFERENCES: tuple[Difference, ...] = (
    # ---- configurations QEMU cannot write
    Difference("ch-syntax", "n/a",
               "CH's own command-line grammar (its keys, lists in [], mandatory keys); QEMU's "
               "options are other words, so there is nothing to break the same way",
               "CH docs/memory.md; QEMU docs/system/invocation (qemu-options.hx)"),
    Difference("ch-only-rule", "n/a",
               "a rule on CH's options or defaults (size=0 with zones, hotplug_method, "
               "hotplugged_size without virtio-mem, balloon size at boot...) with no QEMU "
               "option to break it with",
               "CH vmm/src/config.rs validate(); qemuargs.QEMU_RULES lists the rules QEMU can "
               "express"),
    Difference("qemu-one-memdev-per-node", "n/a",
               "a -numa node takes one memdev, and with -numa every RAM backend must be a "
               "node's memdev; CH's memory_zones=[a,b] and zones of no node have no spelling",
               "QEMU hw/core/numa.c parse_numa_node() (one memdev= per node) and "
               "numa_complete_configuration() (the nodes' memdevs must add up to -m; "
               "'-machine memory-backend' and '-numa memdev' are mutually exclusive)"),
    Difference("qemu-one-ram-backend", "n/a",
               "without -numa QEMU's boot RAM is one backend (-machine memory-backend=); "
               "several CH zones would need nodes or DIMMs, which the guest sees otherwise",
               "QEMU hw/core/machine.c machine_run_board_init() (machine->memdev is the "
               "one boot RAM backend); hw/core/numa.c numa_complete_configuration()"),
    Difference("qemu-file-offset", "n/a",
               "a file zone with hotplug_size maps the virtio-mem region from the same file; "
               "QEMU 7.2's memory-backend-file has no offset, two backends would alias",
               "QEMU backends/hostmem-file.c: file_memory_backend_set_offset() (the "
               "`offset` property) came with QEMU 8.1; 7.2 maps every backend from offset 0"),
    Difference("memvisor-devices-guest", "n/a",
               "the resize and hostile guests drive memvisor's own devices: virtio-mmio from "
               "the DSDT and the memory-hotplug controller's MMIO registers. QEMU's virtio "
               "devices are PCI and its DIMM controller is at I/O ports, which they do not "
               "drive. QEMU's resizes are compared with Debian's Linux as the guest instead "
               "(linux-resize-*, linux-balloon-*: the same steps over QMP, qmpcontrol.py)",
               "guests/resize.c, guests/hostile.c; QEMU hw/acpi/memory_hotplug.c "
               "(ACPI_MEMORY_HOTPLUG_BASE 0x0a00), hw/virtio/virtio-mem-pci.c"),
    Difference("fault-steps", "n/a",
               "fault injection during a run (a pool drained or a signal while a resize is "
               "under way, many API clients at once) is judged on memvisor's API answers, "
               "exit status and error lines; no QEMU counterpart of those checks is written",
               "harness limitation (issue 12), not a behaviour of either VMM: "
               "conformance/faults.py"),
    # ---- QEMU's machine is not memvisor's: set aside, kept as notes
    Difference("qemu-no-fdt", "platform",
               "QEMU's PVH boot hands the guest ACPI only; memvisor adds an FDT module",
               "DEVELOPERS.md (FDT as PVH module); QEMU hw/i386/x86.c x86_load_linux() (PVH)",
               failure=r"^no FDT module: ", applies=_always),
    Difference("qemu-virtio-pci", "platform",
               "QEMU's virtio-mem and virtio-balloon are PCI devices, which the probe does not "
               "enumerate; memvisor's are virtio-mmio in the DSDT and FDT. QEMU's are checked "
               "over QMP (query-memory-devices, query-balloon) instead",
               "QEMU hw/virtio/virtio-mem-pci.c, virtio-balloon-pci.c; DEVELOPERS.md "
               "(virtio-mmio)",
               failure=r"^virtio-mmio devices in the (ACPI|FDT): ", applies=_virtio_devices),
    Difference("qemu-firmware-e820", "platform",
               "SeaBIOS reserves the EBDA (the last KiB below 640 KiB) and the top of low RAM "
               "for ACPI tables in the E820 map; the RAM is there, reserved. Checked instead: "
               "usable + reserved-in-RAM = boot RAM",
               "SeaBIOS src/fw/paravirt.c, src/malloc.c (ZoneHigh); QEMU hw/i386/pc.c",
               failure=r"^E820 usable RAM 0x[0-9a-f]+, expected boot RAM ", applies=_always),
    # ---- behaviour differences of options
    Difference("qemu-thp-always", "check",
               "QEMU advises MADV_HUGEPAGE on all guest RAM (also shared memfd), whatever the "
               "user says; CH advises it on private anonymous memory only, and not with "
               "thp=off",
               "QEMU 7.2 softmmu/physmem.c ram_block_add(): qemu_madvise(new_block->host, "
               "max_length, QEMU_MADV_HUGEPAGE) on every RAM block with a host mapping; CH "
               "vmm/src/memory_manager.rs (thp)",
               failure=r"^zone [^:]+: VmFlags has 'hg', which it must not$",
               applies=_zone_without_thp),
    Difference("qemu-srat-for-hotplug", "check",
               "with maxmem QEMU builds an SRAT (its hotpluggable device-memory range) even "
               "without -numa; CH (and the oracle) give no SRAT without --numa",
               "QEMU hw/core/numa.c numa_complete_configuration() adds a node implicitly "
               "with slots/maxmem (auto_enable_numa_with_memhp/_memdev, set in hw/i386/pc.c "
               "pc_machine_class_init()); hw/i386/acpi-build.c acpi_build() builds the SRAT "
               "when numa_state->num_nodes",
               failure=r"^SRAT or SLIT present without --numa$",
               applies=_hotplug_without_numa),
    Difference("qemu-srat-device-memory", "check",
               "QEMU's SRAT has one hotpluggable range for the whole device-memory region "
               "(DIMMs and virtio-mem alike) on the last node; CH puts each virtio-mem region on "
               "its zone's node and the ACPI area on the lowest",
               "QEMU hw/i386/acpi-build.c build_srat(): build_srat_memory(device_memory->"
               "base, its whole size, nb_numa_nodes - 1, MEM_AFFINITY_HOTPLUGGABLE); the "
               "region is maxmem - ram plus 1 GiB per slot (hw/i386/pc.c pc_memory_init())",
               # The probe reads the SRAT ("SRAT node"), Linux's report its nodes' ranges.
               failure=r"^(SRAT )?node \d+: hotpluggable ranges \[.*\], expected \[.*\]$",
               applies=_hotplug_with_numa),
    Difference("qemu-ram-in-node-order", "check",
               "QEMU lays the nodes' memdevs out from GPA 0 in node-id order; CH lays zones out "
               "in command-line order. The node at GPA 0 loses the legacy hole (640 KiB-1 MiB) "
               "in SRAT, which the oracle allows only for the zone CH puts there",
               "QEMU hw/core/numa.c numa_init_memdev_container() (for i in nodes: "
               "memory_region_add_subregion(ram, addr, memdev); addr += size); hw/i386/"
               "acpi-build.c build_srat() (the hole split out of the range at 0)",
               failure=r"^SRAT node \d+: 0x[0-9a-f]+ bytes of boot RAM, expected 0x[0-9a-f]+$",
               applies=_boot_ram_not_in_node_order),
    Difference("qemu-virtio-mem-prealloc-on-plug", "check",
               "QEMU's virtio-mem prealloc=on preallocates a block when the guest driver plugs "
               "it; requested-size is only a request, and the probe has no virtio-pci driver, "
               "so nothing of hotplugged_size is resident. memvisor prefaults the memory "
               "plugged at boot before the guest runs",
               "QEMU hw/virtio/virtio-mem.c virtio_mem_set_block_state() (qemu_prealloc_mem "
               "on plug, from the guest's VIRTIO_MEM_REQ_PLUG)",
               failure=r"^zone [^:]+: \d+ kB resident, prefault promises \d+ kB$",
               applies=_prefault_plugged_virtio_mem),
    Difference("qemu-slit-only-with-dist", "check",
               "QEMU builds a SLIT only when -numa dist is given; CH always has one with "
               "--numa (20 between nodes by default)",
               "QEMU hw/i386/acpi-build.c acpi_build(): build_slit() only if "
               "numa_state->have_numa_distance, which hw/core/numa.c parse_numa_distance() "
               "sets",
               failure=r"^SLIT None, expected ", applies=_numa_without_distances),

    Difference("qemu-dimm-unplug", "check",
               "QEMU takes a DIMM back (device_del: an ACPI eject the guest completes by "
               "offlining its movable memory); CH's ACPI hotplug only adds, so memvisor "
               "refuses a smaller desired_ram and the memory stays",
               "CH docs/memory.md (hotplugged_size: 'When using ACPI, the memory can't be "
               "resized after it has been extended'); QEMU docs/memory-hotplug.txt "
               "(device_del of a pc-dimm)",
               failure=r"^step resize-\d+M: (HTTP 204 \(''\), expected 400|vm\.info "
                       r"memory_actual_size \d+, expected \d+|Linux's memory changed on a "
                       r"request that must change nothing)$",
               applies=_acpi_hotplug),
    Difference("qemu-hugetlb-reserve", "check",
               "QEMU maps a hugetlb backend with its huge pages reserved (the backend's "
               "`reserve`, default on), so a virtio-mem region takes its whole size from the "
               "pool at start; memvisor maps what is not plugged MAP_NORESERVE and takes "
               "only what is plugged (the oracle's pool count)",
               "QEMU qapi/qom.json MemoryBackendProperties 'reserve' (default true, since "
               "6.1) and util/mmap-alloc.c (MAP_NORESERVE only with reserve=off); Linux "
               "Documentation/admin-guide/mm/hugetlbpage.rst (HugePages_Rsvd); "
               "vmm/memory/backing.c (backing__create)",
               failure=r"^2048 kB pool: \d+ pages taken while running, expected \d+$",
               applies=_hugetlb_virtio_mem_unplugged),
    # ---- rejections QEMU does not share (observed with QEMU 7.2.22 on this machine)
    Difference("qemu-virtio-mem-requested", "status",
               "QEMU starts a virtio-mem whose requested-size exceeds its memdev; CH refuses "
               "hotplugged_size above hotplug_size at start",
               "observed (QEMU 7.2.22); QEMU hw/virtio/virtio-mem.c "
               "virtio_mem_set_requested_size() refuses a size above the memdev ('cannot "
               "exceed the memory backend size') only on a realized device, i.e. at qom-set, "
               "not at -device; CH vmm/src/config.rs",
               rules=("memory_hotplugged_within_hotplug_size",
                      "zone_hotplugged_within_hotplug_size"), statuses=("refused", "fail")),
    Difference("qemu-bind-shared-file", "status",
               "QEMU applies host-nodes/policy=bind to any backend, shared files included; CH "
               "refuses host_numa_node on a shared file",
               "QEMU backends/hostmem.c host_memory_backend_memory_complete() (mbind); CH "
               "vmm/src/config.rs", rules=("zone_shared_file_not_bound",),
               statuses=("refused", "fail")),
    Difference("qemu-virtio-mem-block-aligned", "status",
               "QEMU needs a virtio-mem size to be a multiple of its block size (2 MiB) only; "
               "CH aligns regions to 128 MiB",
               "QEMU hw/virtio/virtio-mem.c virtio_mem_device_realize(); CH "
               "virtio-devices/src/mem.rs (VIRTIO_MEM_ALIGN_SIZE)",
               rules=("virtio_mem_region_aligned",), statuses=("refused", "fail")),
    Difference("qemu-no-ram-minimum", "status",
               "QEMU starts with -m 1M (the firmware fails later); the oracle's minimum is "
               "memvisor's boot data plus a PVH kernel",
               "observed (QEMU 7.2.22); oraclemodel.MIN_BOOT_RAM",
               rules=("layout_boot_ram_minimum",), statuses=("refused", "fail")),
    Difference("qemu-address-space", "status",
               "QEMU with -cpu host has the host's 46 physical address bits, so 2 TiB of "
               "hotplug fits; the oracle's 1 TiB limit is the test host's 40 bits",
               "oraclemodel.MAX_GPA; QEMU 7.2 target/i386/host-cpu.c "
               "host_cpu_max_instance_init() sets host-phys-bits for -cpu host/max under KVM",
               rules=("layout_address_space",), statuses=("refused", "fail")),
    Difference("qemu-maxmem-page-aligned", "status",
               "QEMU's maxmem (the ACPI hotplug area) need only be a multiple of 4 KiB: the "
               "huge page size binds each DIMM's backend when it is added, not the area; CH "
               "refuses a hotplug_size that is not a multiple of the zone's page size",
               "observed (QEMU 7.2.22, test host); QEMU hw/i386/pc.c pc_memory_init() "
               "(device memory region sized from maxmem - ram_size); CH vmm/src/config.rs",
               rules=("memory_sizes_page_multiple",), statuses=("refused", "fail")),
    Difference("qemu-file-not-allocated", "status",
               "QEMU sizes a file backend with ftruncate and maps it, allocating nothing "
               "without prealloc: a zone bigger than the tmpfs's free space starts, and a "
               "guest write to a page with no space behind it is a SIGBUS later; memvisor "
               "refuses such a zone at start with ENOSPC naming it",
               "QEMU softmmu/physmem.c file_ram_alloc() (ftruncate only); "
               "conformance/faults.py (tmpfs)",
               cases=("fault-tmpfs-full", "fault-tmpfs-full-dir"),
               statuses=("refused", "fail")),
    # ---- configurations QEMU refuses
    Difference("qemu-numa-distance-every-pair", "refusal",
               "once any -numa dist is given, QEMU needs a distance for every pair of nodes "
               "(one direction suffices); CH takes 20 for a pair given none",
               "QEMU hw/core/numa.c validate_numa_distance() ('The distance between node %d "
               "and %d is missing', exit(EXIT_FAILURE)); spec (--numa distances)",
               failure=r"^qemu-system-x86_64: The distance between node \d+ and \d+ is missing, "
                       r"at least one distance value between each nodes should be provided\.$",
               applies=_distance_pair_missing),
    Difference("qemu-slit-both-directions", "refusal",
               "QEMU refuses an asymmetric SLIT unless every pair is given both ways; CH takes a "
               "missing distance from the reverse direction (else 20)",
               "QEMU hw/core/numa.c validate_numa_distance() (exit(EXIT_FAILURE) when "
               "is_asymmetrical and a distance is 0); spec (--numa distances), "
               "DEVELOPERS.md SLIT rule",
               failure=r"^qemu-system-x86_64: At least one asymmetrical pair of distances is "
                       r"given, please provide distances for both directions",
               applies=_distances_given),
)

BY_ID = {d.id: d for d in DIFFERENCES}


def matching(kind: str, line: str, cfg: VmConfig | None = None,
             exp: Expectation | None = None) -> Difference | None:
    """The entry of `kind` ("platform", "check", "refusal") whose pattern matches `line` and
    that applies to the case (`cfg`, `exp`)."""
    for d in DIFFERENCES:
        if d.kind != kind or not re.search(d.failure, line):
            continue
        if d.applies is not None and cfg is not None and exp is not None and d.applies(cfg, exp):
            return d
    return None


def for_status(rule: str | None, memvisor: str, qemu: str,
               case: str | None = None) -> Difference | None:
    """The status entry for a rejection case of `rule`, or for the fault case named `case`."""
    return next((d for d in DIFFERENCES if d.kind == "status" and d.statuses == (memvisor, qemu)
                 and ((rule is not None and rule in d.rules) or (case and case in d.cases))),
                None)
