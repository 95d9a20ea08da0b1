"""Hostile guest cases: guests/hostile.c attacks every device it finds, memvisor must survive.

Each case boots the hostile guest with virtio-mem, the balloon and/or ACPI memory hotplug. The
guest reports one `attack` line per attack and its own checks (each device still answers a
valid request afterwards, its RAM kept its pattern). On the host side, a case fails when
memvisor crashed (a signal, a status other than the guest's), hung (the case's timeout), let a
sanitizer speak (MEMVISOR_BIN=build-sanitize/memvisor), did not log a bad request the guest
made, or when the host state shows the attacks: memory resident in an unplugged virtio-mem
region, huge pages missing from the pool after the end.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass

from memvisor.driver import BUILD, VmConfig
from memvisor.oracle import Expectation

from .checks import zone_lines
from .resize import _resident, socket_path

GUEST = BUILD / "guests" / "hostile.elf"
MiB = 1 << 20
HOLD_STATUS = 128 + 15       # a held guest is stopped by the runner's SIGTERM
FLOOD = 2000                 # debug-port writes of the flood attack
# What a zone's virtio-mem region may hold after the guest unplugged everything: a partly
# touched THP at its edge, page tables.
REGION_SLACK = 4 * MiB
SANITIZER = re.compile(r"ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:")
QUICK = ("hostile-vmem-balloon",)


@dataclass(frozen=True)
class HostileCase:
    name: str
    memory: str | None
    zones: tuple[str, ...] = ()
    balloon: str | None = None
    end: str = "exit"        # "exit": the exit port's status; "hold": sampled, then SIGTERM
    api: bool = False        # held: vm.info asked once the attacks are over


VMEM = "size=256M,hotplug_method=virtio-mem,hotplug_size=256M,hotplugged_size=8M"
CASES = (
    HostileCase("hostile-vmem-balloon", VMEM, balloon="size=0,free_page_reporting=on"),
    # The same attacks, then the host's view of the region while the guest holds.
    HostileCase("hostile-vmem-hold", VMEM, balloon="size=0,free_page_reporting=on", end="hold",
                api=True),
    HostileCase("hostile-acpi-balloon", "size=256M,hotplug_method=acpi,hotplug_size=256M",
                balloon="size=0"),
    # hugetlb with an empty pool: a device touching unplugged memory took SIGBUS.
    HostileCase("hostile-vmem-hugetlb", "size=0,hotplug_method=virtio-mem",
                zones=("id=mem0,size=128M,hugepages=on,hotplug_size=128M,hotplugged_size=6M",)),
)


def config(c: HostileCase) -> VmConfig:
    cmdline = f"flood={FLOOD}" + (" hold" if c.end == "hold" else "")
    return VmConfig(memory=c.memory, zones=list(c.zones), kernel=GUEST, cmdline=cmdline,
                    balloon=c.balloon, api_socket=socket_path(c.name) if c.api else None)


def steps(c: HostileCase) -> tuple[dict, ...]:
    """A held case with the API: no call, only vm.info and the host sampled (sequence.py)."""
    return ({"name": "after-attacks", "settle": 0.2},) if c.api else ()


# Each attack and the line memvisor must log for it ({dev}: virtio-mem or virtio-balloon).
# Attacks sharing a pattern need as many lines as there are attacks.
_RAM = r"{dev} queue 0: descriptor \d+: 0x[0-9a-f]+\+\d+ is not in guest RAM"
_RING = r"{dev}@0x[0-9a-f]+: {dev} queue 0: (size \d+ is not a power|descriptor table|" \
        r"available ring|used ring)"
_ABSENT = r"{dev}@0x[0-9a-f]+: write to an absent queue"
_REFUSED = r"virtio-mem \(zone [^)]*\): request \d+ at 0x[0-9a-f]+ for \d+ blocks refused"
_OWN = r"virtio-mem \(zone [^)]*\): unplug of 0x[0-9a-f]+\+0x[0-9a-f]+ of the region refused: " \
       r"it holds the request's own buffers or rings"
_OUTSIDE = r"virtio-balloon: inflated PFN 0x[0-9a-f]+ \(0x[0-9a-f]+\) is not guest RAM"
_REQUEST = r"virtio-balloon: inflate request of \d+ bytes"
EXPECTED_LOGS: dict[str, str] = {
    **{a: _RAM for a in ("desc_beyond_phys", "desc_beyond_ram", "desc_in_hole", "desc_in_mmio",
                         "desc_straddles_ram_end", "desc_huge_len", "desc_wraps",
                         "desc_writable_in_mmio", "desc_writable_wraps",
                         "readable_in_unplugged", "writable_in_unplugged")},
    "chain_loop": r"{dev} queue 0: chain from \d+ loops back",
    "chain_longer_than_queue": r"{dev} queue 0: chain from \d+ (has more than|loops back)",
    "chain_too_many_buffers": r"{dev} queue 0: chain from \d+ (has more than|loops back)",
    "next_beyond_queue": r"{dev} queue 0: descriptor \d+ links to \d+ of a queue of",
    "readable_after_writable": r"{dev} queue 0: readable descriptor \d+ after a writable one",
    "indirect": r"{dev} queue 0: indirect descriptor",
    "head_beyond_queue": r"{dev} queue 0: head descriptor \d+ of a queue of",
    "avail_idx_jump": r"{dev} queue 0: available index moved from",
    **{a: _RING for a in ("queue_size_0", "queue_size_3", "queue_size_too_large",
                          "queue_size_beyond_u16", "desc_table_beyond_ram", "desc_table_unaligned",
                          "avail_ring_odd", "used_ring_unaligned", "used_ring_in_mmio",
                          "used_ring_straddles_ram_end", "ring_in_hole")},
    "absent_queue": _ABSENT,
    "queue_sel_huge": _ABSENT,
    "notify_unset_queues": r"{dev}@0x[0-9a-f]+: notify of an absent or unready queue",
    "ready_queue_changed": r"{dev}@0x[0-9a-f]+: change of a ready queue",
    "register_garbage": r"{dev}@0x[0-9a-f]+: (register (read|write) not 32-bit aligned|write to)",
    "unplug_own_buffers": _OWN,
    "unplug_own_rings": _OWN,
    "rings_unplugged_under_queue": r"{dev} queue \d+: rings no longer in guest RAM",
    **{a: _OUTSIDE for a in ("pfn_beyond_ram", "pfn_in_hole", "pfn_in_mmio", "pfn_max",
                             "pfn_in_unplugged")},
    "too_many_pfns": _REQUEST,
    "pfns_odd_length": _REQUEST,
    "report_in_hole": r"virtio-balloon queue 2: descriptor 0: 0x[0-9a-f]+\+\d+ is not in guest RAM",
    "num_pages_write": r"virtio-balloon: configuration write of 4 bytes at 0x0 ignored",
    "selector_beyond_slots": r"ACPI memory hotplug: the guest selected slot \d+ of 8",
    "eject_all": r"ACPI memory hotplug: the guest ejected DIMM slot",
    "register_garbage@mhpc": r"ACPI memory hotplug: write to read-only offset",
    "register_garbage@ged": r"GED: write of 0x[0-9a-f]+ to its read-only register ignored",
}
_DEV_NAME = {"vmem": "virtio-mem", "balloon": "virtio-balloon"}
_ATTACK = re.compile(r"^attack dev=(([a-z]+)\d*) name=(\w+)(.*)$")
_DEBUG = re.compile(r"^memvisor: debug-port code=", re.M)
_GUEST = re.compile(r"^hostile_guest devices=(\d+) mhpc=0x([0-9a-f]+) ged=0x([0-9a-f]+)", re.M)
_HDEV = re.compile(r"^hostile_dev dev=([a-z]+)\d+ ", re.M)


def attacks(stdout: str) -> list[tuple[str, str, str]]:
    """(device kind, attack, rest of the line) for each attack of the report: an attack may
    print a line of its own before the one every attack ends with; the first one counts."""
    seen: set[tuple[str, str]] = set()
    out = []
    for m in map(_ATTACK.match, stdout.splitlines()):
        if m and (m[1], m[3]) not in seen:
            seen.add((m[1], m[3]))
            out.append((m[2], m[3], m[4]))
    return out


def check_logs(stdout: str, stderr: str) -> list[str]:
    """Every attack that needs a log line has one: as many lines per pattern as attacks."""
    want: dict[str, list[str]] = {}
    for kind, name, rest in attacks(stdout):
        if kind == "vmem" and "answer=" in rest and name not in EXPECTED_LOGS:
            # each ERROR answer (3) of a well-formed request: "answer=error", "answer=0,0,3"
            answers = rest.split("answer=")[1].split()[0].split(",")
            want.setdefault(_REFUSED, []).extend([name] * sum(a in ("error", "3") for a in answers))
            continue
        pattern = EXPECTED_LOGS.get(f"{name}@{kind}", EXPECTED_LOGS.get(name))
        if pattern is None or (kind not in _DEV_NAME and "{dev}" in pattern):
            continue
        want.setdefault(pattern.format(dev=re.escape(_DEV_NAME.get(kind, ""))), []).append(name)
    bad = []
    for pattern, names in want.items():
        found = len(re.findall(f"^memvisor: {pattern}", stderr, re.M))
        if found < len(names):
            bad.append(f"memvisor logged {found} lines like /{pattern}/ for {len(names)} bad "
                       f"requests: {', '.join(sorted(set(names)))}")
    flood = [rest for _, name, rest in attacks(stdout) if name == "flood"]
    if flood:
        n = int(re.search(r"debug_writes=(\d+)", flood[0])[1])
        if len(_DEBUG.findall(stderr)) < n:
            bad.append(f"{len(_DEBUG.findall(stderr))} debug-port lines for {n} writes")
    return bad


def check_status(c: HostileCase, result: dict) -> list[str]:
    """No hang, no crash, no sanitizer report, and the status the guest (or the runner) chose."""
    bad = []
    if result.get("timed_out"):
        bad.append("memvisor hung under the attacks (the case's timeout): "
                   + (result.get("stuck") or ""))
    san = SANITIZER.search(result.get("stderr", ""))
    if san:
        bad.append(f"sanitizer report in memvisor's stderr: {san[0]}")
    rc, out = result.get("rc"), result.get("stdout", "")
    summary = re.search(r"^SUMMARY: (\S+)", out, re.M)
    want = HOLD_STATUS if c.end == "hold" else (0 if summary and summary[1] == "ok" else 1)
    if rc is not None and rc < 0:
        bad.append(f"memvisor was killed by signal {-rc}")
    elif rc != want and not result.get("timed_out"):
        bad.append(f"memvisor exited with status {rc}, expected {want} "
                   f"({'the runner stopped the held guest' if c.end == 'hold' else 'the guest'})")
    if not summary:
        bad.append("the guest's report has no SUMMARY line")
    bad += [f"guest: {ln}" for ln in out.splitlines() if ln.startswith(("FAIL:", "error check="))]
    return bad


def check_devices(exp: Expectation, stdout: str) -> list[str]:
    """The guest attacked every device the configuration has."""
    kinds = _HDEV.findall(stdout)
    bad = []
    vmem = sum(h.kind == "virtio-mem" for h in exp.hotplug)
    if kinds.count("vmem") != vmem:
        bad.append(f"the guest attacked {kinds.count('vmem')} virtio-mem devices, expected {vmem}")
    if kinds.count("balloon") != (exp.balloon_size is not None):
        bad.append(f"the guest attacked {kinds.count('balloon')} balloons")
    g = _GUEST.search(stdout)
    acpi = any(h.kind == "acpi-hotplug" for h in exp.hotplug)
    if g and (int(g[2], 16) != 0) != acpi:
        bad.append(f"memory hotplug controller at 0x{g[2]}, expected {'one' if acpi else 'none'}")
    return bad


def check_host(exp: Expectation, result: dict) -> list[str]:
    """Refused requests left no trace: the virtio-mem regions hold nothing once all is unplugged
    (a held guest), and every huge page taken is back in its pool after the end."""
    bad = []
    zones = zone_lines(result.get("stderr", ""))
    smaps = (result.get("during") or {}).get("smaps")
    for z in exp.zones:
        if not z.hotplug_size or z.zone not in zones or not smaps:
            continue
        host, size = zones[z.zone][1], zones[z.zone][2]
        res = _resident(smaps, host + size - z.hotplug_size, z.hotplug_size)
        if res is not None and res > REGION_SLACK:
            bad.append(f"zone {z.zone}: its virtio-mem region holds {res // 1024} KiB on the host "
                       f"with nothing plugged")
    for step in result.get("steps") or []:
        bad += check_info(exp, step)
    before, after = result.get("hp_before") or {}, result.get("hp_after") or {}
    for key, n in before.items():
        if key.startswith("free_") and key in after and after[key] != n:
            bad.append(f"huge pages {key}: {n} before, {after[key]} after memvisor ended")
    return bad


def _values(obj, key: str) -> list:
    """Every value of `key` anywhere in a JSON document."""
    if isinstance(obj, dict):
        return [v for k, v in obj.items() if k == key] + \
            [x for v in obj.values() for x in _values(v, key)]
    if isinstance(obj, list):
        return [x for v in obj for x in _values(v, key)]
    return []


def check_info(exp: Expectation, step: dict) -> list[str]:
    """vm.info after the attacks: nothing plugged (the guest's last reset unplugged it all), the
    balloon empty (reset), so the guest has its boot RAM, whatever it asked for in between."""
    if step.get("error") or step.get("info_status") != 200:
        return [f"vm.info after the attacks: {step.get('error') or step.get('info_status')} "
                f"{step.get('info')}"]
    try:
        info = json.loads(step["info"]) if isinstance(step["info"], str) else step["info"]
    except ValueError:
        return [f"vm.info after the attacks is not JSON: {step['info']!r}"]
    bad = [f"vm.info: hotplugged_size {v} after the attacks, expected 0"
           for v in _values(info.get("config"), "hotplugged_size") if v]
    if info.get("memory_actual_size") != exp.boot_ram:
        bad.append(f"vm.info: memory_actual_size {info.get('memory_actual_size')}, expected the "
                   f"boot RAM {exp.boot_ram}")
    return bad


def check(c: HostileCase, exp: Expectation, result: dict) -> list[str]:
    bad = check_status(c, result)
    if result.get("rc") is None or result.get("timed_out"):
        return bad
    out, err = result.get("stdout", ""), result.get("stderr", "")
    return bad + check_devices(exp, out) + check_logs(out, err) + check_host(exp, result)


def by_name(name: str) -> HostileCase:
    return next(c for c in CASES if c.name == name)
