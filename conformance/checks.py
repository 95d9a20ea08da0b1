"""What each case must show: the guest's report and the host's state against the oracle.

Every check returns a list of failures (empty when the case conforms), each one line saying
what was expected and what was seen. The inputs are the raw result of harness/memvisor/inhost.py
(stdout = the guest's serial console, stderr = memvisor's, /proc snapshots while the guest held)
and memvisor's --print-layout JSON.
"""
from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from typing import Callable

from memvisor.hoststate import Mapping, NumaMap, find_mapping, parse_numa_maps, parse_smaps
from memvisor.oracle import Expectation, Range, Rejection, ZoneMapping, layout_violations
from memvisor.oraclemodel import VIRTIO_MMIO_MAGIC, VIRTIO_MMIO_VERSION
from memvisor.report import ProbeReport, ReportError, parse_probe

LEGACY_HOLE = (0xA0000, 0x100000)      # reserved in E820, part of the first zone's RAM
SIGTERM_STATUS = 128 + 15              # memvisor's status when the harness stops a held guest
ZONE_LINE = re.compile(r"^memvisor: zone (\S+) backing=(\S+) host=0x([0-9a-f]+) size=(\d+) "
                       r"page_size=(\d+)$", re.M)


def zone_lines(stderr: str) -> dict[str, tuple[str, int, int, int]]:
    """memvisor -v: zone id -> (backing, host address, size, page size)."""
    return {m[1]: (m[2], int(m[3], 16), int(m[4]), int(m[5])) for m in ZONE_LINE.finditer(stderr)}


def check_rejection(exp: Rejection, result: dict) -> list[str]:
    bad: list[str] = setup_failures(result)
    if result["rc"] != 1:
        bad.append(f"exit status {result['rc']}, expected 1 (rejected configuration)")
    if not exp.matches(result["stderr"]):
        bad.append(f"no line 'memvisor: {exp.option}: ...' containing {list(exp.reason_keywords)}"
                   f" in stderr {result['stderr'].strip()!r}")
    lines = [ln for ln in result["stderr"].splitlines() if ln.strip()]
    if len(lines) != 1:
        bad.append(f"{len(lines)} lines on stderr, expected exactly one")
    if result["stdout"].strip() or "debug-port" in result["stderr"]:
        bad.append("a guest ran: the configuration must be refused before any VM starts")
    if result["hp_before"] != result["hp_after"]:
        bad.append(f"huge page pools changed: {_diff(result['hp_before'], result['hp_after'])}")
    for path, facts in result.get("files_after", {}).items():
        if facts.get("entries"):
            bad.append(f"files left in {path}: {facts['entries']}")
    return bad


def setup_failures(result: dict) -> list[str]:
    return [f"case setup failed: {e}" for e in result.get("setup_errors", [])]


def unstoppable_hangs(result: dict) -> list[str]:
    """A hung attempt that was run again (inhost `attempts`) is the test host's only when
    memvisor still stopped its vCPUs and said where they were; one whose vCPUs it could not
    stop (a lock, a thread stuck in the VMM) is memvisor's, whatever the next attempt did."""
    return [f"memvisor hung in an earlier attempt ({h.get('seconds')} s) and did not stop its "
            "vCPUs: " + " | ".join(h.get("console_tail") or [])[-300:]
            for h in result.get("hung_attempts") or []
            if not any(" at stop: " in v for v in h.get("vcpus") or [])]


def check_boot(exp: Expectation, result: dict, layout: dict | None,
               stop_status: int = SIGTERM_STATUS,
               guest: "Callable[[Expectation, ProbeReport], list[str]] | None" = None,
               host: "Callable[[Expectation, dict], list[str]] | None" = None) -> list[str]:
    """A valid configuration: the guest held after a clean report, the host state matches.
    Without a layout (another VMM) only the guest's and the host's views are checked."""
    if result["timed_out"]:
        vcpus = [ln for ln in result.get("stderr", "").splitlines()
                 if " at stop: " in ln or " stack text:" in ln]
        return ["the guest did not finish its report in time; where memvisor's threads were:",
                result.get("stuck", ""), "and its vCPUs:", *vcpus] + setup_failures(result)
    if "during" not in result:
        return [f"the VMM exited with status {result['rc']} before the guest's report was "
                f"complete"]
    bad: list[str] = setup_failures(result)
    if result["rc"] != stop_status:
        bad.append(f"the VMM's status after SIGTERM was {result['rc']}, expected "
                   f"{stop_status} (a clean stop)")
    try:
        report = parse_probe(result["stdout"])
    except ReportError as e:
        return bad + [f"unreadable probe report: {e}"]
    bad += (guest or check_guest)(exp, report)
    bad += (host or check_host)(exp, result)
    if layout is not None:
        bad += check_layout(exp, layout, report)
    return bad


def check_guest(exp: Expectation, r: ProbeReport) -> list[str]:
    bad: list[str] = []
    if not r.ok:
        bad.append(f"the probe found inconsistencies: {r.summary}; " +
                   "; ".join(f"{c.name}: {c.detail}" for c in r.checks.values() if c.status == "FAIL"))
    if not r.fdt_present:
        bad.append("no FDT module: memvisor hands every guest its topology as a device tree too")
    if r.memtest is None or r.memtest.mode == "off" or r.memtest.errors:
        bad.append(f"memory test did not pass: {r.memtest}")
    hole = LEGACY_HOLE[1] - LEGACY_HOLE[0]
    if r.usable_ram != exp.boot_ram - hole:
        bad.append(f"E820 usable RAM {r.usable_ram:#x}, expected boot RAM {exp.boot_ram:#x} "
                   f"minus the {hole:#x} legacy hole")
    bad += check_virtio(exp, r)
    enabled = [c for c in r.madt_cpus if c.enabled]
    if len(enabled) != exp.boot_cpus or len(r.madt_cpus) != exp.max_cpus:
        bad.append(f"MADT: {len(enabled)} enabled of {len(r.madt_cpus)} CPUs, expected "
                   f"{exp.boot_cpus} of {exp.max_cpus}")
    if not exp.numa:
        if r.srat_mems or r.slit:
            bad.append("SRAT or SLIT present without --numa")
        return bad
    first_node = exp.zones[0].guest_numa_id if exp.zones else None
    for nid, node in exp.numa.items():
        got = r.srat_nodes.get(nid)
        mem = got.mem if got else 0
        # The node holding GPA 0 covers the legacy hole in SRAT, or not: both are correct ACPI.
        allowed = (node.boot_ram, node.boot_ram - hole) if nid == first_node else (node.boot_ram,)
        if mem not in allowed:
            bad.append(f"SRAT node {nid}: {mem:#x} bytes of boot RAM, expected {node.boot_ram:#x}")
        cpus = sorted(c.apic for c in r.srat_cpus if c.node == nid)
        if cpus != sorted(node.cpus):
            bad.append(f"SRAT node {nid}: CPUs {cpus}, expected {sorted(node.cpus)}")
        hot = sorted(m.size for m in r.srat_mems if m.node == nid and m.hotpluggable)
        want = sorted(h.size for h in node.hotplug)
        if hot != want:
            bad.append(f"SRAT node {nid}: hotpluggable ranges {[hex(s) for s in hot]}, expected "
                       f"{[hex(s) for s in want]}")
    extra = set(r.srat_nodes) - set(exp.numa)
    if extra:
        bad.append(f"SRAT has nodes {sorted(extra)} that no --numa defines")
    if [list(row) for row in exp.slit] != (r.slit or []):
        bad.append(f"SLIT {r.slit}, expected {[list(row) for row in exp.slit]}")
    return bad


def check_virtio(exp: Expectation, r: ProbeReport) -> list[str]:
    """Each expected virtio-mmio device is in the DSDT and in the FDT, and its registers answer
    with the v2 magic, version and its device id (spec section 4.1)."""
    bad: list[str] = []
    want = sorted(exp.virtio_devices)
    for src in ("acpi", "fdt"):
        devs = [v for v in r.virtio_mmio if v.src == src]
        got = sorted(v.device_id for v in devs if v.device_id is not None)
        if got != want or len(devs) != len(want):
            bad.append(f"virtio-mmio devices in the {src.upper()}: device ids {got} "
                       f"({len(devs)} found), expected {want}")
        for v in devs:
            if (v.magic, v.version) != (VIRTIO_MMIO_MAGIC, VIRTIO_MMIO_VERSION):
                bad.append(f"virtio-mmio {v.name} ({src}): magic {v.magic}, version "
                           f"{v.version}, expected {VIRTIO_MMIO_MAGIC:#x}, {VIRTIO_MMIO_VERSION}")
    return bad


@dataclass
class Located:
    """A zone's host memory as a VMM shows it: the backing it names (None: it names none),
    the size it mapped, and its mappings in smaps (one, or one per backend under QEMU)."""
    backing: str | None
    size: int
    mappings: list[Mapping]


Locate = Callable[[Expectation, dict, list[Mapping]], "dict[str, Located | str]"]


def memvisor_zones(exp: Expectation, result: dict, maps: list[Mapping]) -> dict[str, Located | str]:
    """memvisor -v logs each zone's backing, host address and size."""
    zones = zone_lines(result["stderr"])
    out: dict[str, Located | str] = {}
    for z in exp.zones:
        if z.zone not in zones:
            out[z.zone] = "memvisor -v did not log its mapping"
            continue
        backing, host, size, _ = zones[z.zone]
        m = find_mapping(maps, host)
        out[z.zone] = (Located(backing, size, [m]) if m else
                       f"no mapping at {host:#x} in /proc/PID/smaps")
    return out


def check_host(exp: Expectation, result: dict, locate: Locate = memvisor_zones) -> list[str]:
    bad: list[str] = []
    during = result["during"]
    maps = parse_smaps(during["smaps"])
    numa = {n.start: n for n in parse_numa_maps(during["numa_maps"])}
    located = locate(exp, result, maps)
    for z in exp.zones:
        got = located.get(z.zone, "not found")
        if isinstance(got, str):
            bad.append(f"zone {z.zone}: {got}")
            continue
        bad += check_zone(z, got, numa)
    bad += check_pools(exp, result)
    bad += check_files(exp, result)
    return bad


def check_zone(z: ZoneMapping, loc: Located, numa: dict[int, NumaMap]) -> list[str]:
    """One zone's mappings against what the oracle says of it."""
    bad: list[str] = []
    where = f"zone {z.zone}"
    if z.backing and loc.backing is not None and loc.backing != z.backing:
        bad.append(f"{where}: backing {loc.backing}, expected {z.backing}")
    if loc.size != z.boot_size + z.hotplug_size:
        bad.append(f"{where}: mapping of {loc.size:#x} bytes, expected "
                   f"{z.boot_size + z.hotplug_size:#x}")
    for m in loc.mappings:
        if m.kb("KernelPageSize") * 1024 != z.page_size:
            bad.append(f"{where}: KernelPageSize {m.kb('KernelPageSize')} kB, expected "
                       f"{z.page_size // 1024} kB")
        for flag in sorted(z.vmflags_present - m.vmflags):
            bad.append(f"{where}: VmFlags lacks '{flag}' ({' '.join(sorted(m.vmflags))})")
        for flag in sorted(z.vmflags_absent & m.vmflags):
            bad.append(f"{where}: VmFlags has '{flag}', which it must not")
        if z.file and not z.file_is_dir and z.file not in m.name:
            bad.append(f"{where}: mapping is {m.name!r}, expected the file {z.file}")
        nm = numa.get(m.start)
        if nm is None:
            bad.append(f"{where}: not in /proc/PID/numa_maps")
        else:
            if nm.policy != z.numa_policy:
                bad.append(f"{where}: NUMA policy {nm.policy}, expected {z.numa_policy}")
            if z.host_numa_node is not None:
                off = {n: c for n, c in nm.pages_per_node.items() if n != z.host_numa_node and c}
                if off:
                    bad.append(f"{where}: pages on nodes {off}, bound to {z.host_numa_node}")
    resident = sum(m.resident_kb for m in loc.mappings)
    if z.prefault and resident * 1024 < z.prefault_bytes:
        bad.append(f"{where}: {resident} kB resident, prefault promises "
                   f"{z.prefault_bytes // 1024} kB")
    # Nothing may populate a virtio-mem region beyond what is plugged at boot.
    if resident * 1024 > z.boot_size + z.hotplugged_size:
        bad.append(f"{where}: {resident} kB resident, more than boot RAM and plugged memory "
                   f"({(z.boot_size + z.hotplugged_size) // 1024} kB)")
    return bad


def check_pools(exp: Expectation, result: dict) -> list[str]:
    """Pages taken from each pool while the guest runs (free drop plus new reservations)."""
    want: Counter[int] = Counter()
    for z in exp.zones:
        if z.hugepages:
            want[z.page_size] += z.hugepages
    bad: list[str] = []
    before, during, after = result["hp_before"], result["hp_during"], result["hp_after"]
    present = {int(k.removeprefix("free_").removesuffix("kB")) * 1024 for k in before
               if k.startswith("free_") and "_node" not in k}
    for size in sorted(present | set(want)):
        size_kb = size // 1024
        key, resv = f"free_{size_kb}kB", f"resv_{size_kb}kB"
        if size not in present:
            bad.append(f"{size_kb} kB pool: the host has no counters for it, "
                       f"{want[size]} pages expected to be taken")
            continue
        taken = (before[key] - during[key]) + (during[resv] - before[resv])
        expected = want.get(size, 0)
        if taken != expected:
            bad.append(f"{size_kb} kB pool: {taken} pages taken while running, expected {expected}")
    if before != after:
        bad.append(f"huge page pools not given back after exit: {_diff(before, after)}")
    return bad


def check_files(exp: Expectation, result: dict) -> list[str]:
    bad: list[str] = []
    files = result.get("files_after", {})
    for z in exp.zones:
        if not z.file:
            continue
        facts = files.get(z.file)
        if facts is None:
            continue
        if z.file_is_dir:
            if facts.get("entries"):
                bad.append(f"zone {z.zone}: files left in {z.file}: {facts['entries']}")
            continue
        if not facts.get("exists") or facts.get("size", 0) < z.boot_size:
            bad.append(f"zone {z.zone}: {z.file} is {facts}, expected >= {z.boot_size} bytes")
            continue
        # The probe's memory test wrote a pattern into every page: with MAP_SHARED it is on
        # disk after the VM exits, with MAP_PRIVATE the file keeps its zeros.
        written = any(int(facts["head_hex"][i:i + 2], 16) for i in range(0, len(facts["head_hex"]), 2))
        if z.shared and not written:
            bad.append(f"zone {z.zone}: shared file {z.file} has none of the guest's writes")
        if not z.shared and written:
            bad.append(f"zone {z.zone}: private file {z.file} was modified by the guest")
    return bad


def check_layout(exp: Expectation, layout: dict, r: ProbeReport) -> list[str]:
    ranges = [Range(x["kind"], x["gpa"], x["size"], x["zone"], x["guest_numa_id"])
              for x in layout["ranges"]]
    bad = [f"--print-layout: {v}" for v in layout_violations(exp, ranges)]
    e820 = [(e["addr"], e["size"], e["type"]) for e in layout["e820"]]
    seen = [(e.addr, e.size, e.type) for e in r.e820]
    if e820 != seen:
        bad.append(f"--print-layout E820 {e820} differs from the guest's {seen}")
    hot = sorted((x.gpa, x.size) for x in ranges if x.kind != "ram")
    srat_hot = sorted((m.base, m.size) for m in r.srat_mems if m.hotpluggable)
    fdt_hot = sorted((m.addr, m.size) for m in r.fdt_mems if m.hotpluggable)
    if exp.numa and hot != srat_hot:
        bad.append(f"hotplug ranges: --print-layout {hot}, SRAT {srat_hot}")
    if hot != fdt_hot:
        bad.append(f"hotplug ranges: --print-layout {hot}, FDT {fdt_hot}")
    return bad


def _diff(a: dict[str, int], b: dict[str, int]) -> str:
    return ", ".join(f"{k}: {a.get(k)} -> {b.get(k)}" for k in sorted(set(a) | set(b))
                     if a.get(k) != b.get(k))
