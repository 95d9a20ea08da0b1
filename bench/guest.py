"""Parts 2-4, inside the test host: guest fault cost, boot time, VMM memory overhead.

The cases run through harness/memvisor/runner.py (one ci/testhost boot, or natively): `cases()` builds
the batch, `figures()` reads its results. Repeats are interleaved (repeat 1 of every backing,
then repeat 2, ...) so that a burst of noise from the shared machine spreads over all backings.
"""
from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from memvisor.driver import BUILD as HBUILD, MemvisorDriver, VmConfig
from memvisor.hoststate import parse_smaps
from memvisor.report import ReportError, parse_fault
from memvisor.sizes import parse_size

from . import backings
from .stats import Figure, Ratio, figure, ratio

MEMVISOR = HBUILD / "memvisor"
# The fault guest's one vCPU thread pinned (a migration mid-phase would time two CPUs' TSCs and
# caches), and the host settings its figures depend on stated on stderr: `fault_figures` records
# them.
FAULT_CPU = 0
FAULT_WRAP = ["sh", "-c", "echo \"fault-host: thp=$(sed 's/.*\\[\\(.*\\)\\].*/\\1/' "
              "/sys/kernel/mm/transparent_hugepage/enabled) numa_balancing=$(cat "
              "/proc/sys/kernel/numa_balancing 2>/dev/null || echo none) "
              f"cpu={FAULT_CPU}\" >&2; exec taskset -c {FAULT_CPU} \"$@\"", "sh"]
_FAULT_HOST = re.compile(r"^fault-host: thp=(\S*) numa_balancing=(\S*) cpu=(\d+)$", re.M)
PROBE = HBUILD / "guests" / "probe.elf"
FAULT = HBUILD / "guests" / "fault.elf"
ZONE_DIR = "/tmp/memvisor-bench"          # tmpfs inside the test host: file backings go here
QEMU_RAM = 128 << 20
QEMU_RUN_S = 60                           # one QEMU start takes ~7-11 s in the test host
HUNG = 128 + 9                            # `timeout -s KILL`'s status for a run it ended
# Automatic NUMA balancing (on by default in the 2-node test host) unmaps guest RAM ~1 s after
# start, so a "second touch" became a nested fault plus a NUMA hinting fault (82.6 µs against
# 0.56 µs without it; bench/README.md). The fault figures measure memvisor's faults: off in the
# test host (TESTHOST=1 there); a native host's own setting is never changed.
NO_NUMA_BALANCING = '[ "$TESTHOST" != 1 ] || echo 0 > /proc/sys/kernel/numa_balancing'
MiB = 1 << 20

_DEBUG = re.compile(r"^memvisor: debug-port code=0x([0-9a-f]{2}) t_us=(\d+)$", re.M)
_ZONE = re.compile(r"^memvisor: zone (\S+) backing=(\S+) host=0x([0-9a-f]+) size=(\d+)", re.M)
# A hot-added ACPI DIMM is a mapping of its own (`-v`): guest RAM too.
_DIMM = re.compile(r"^memvisor: ACPI DIMM \d+: 0x[0-9a-f]+ \+ (\S+), backing=\S+ host=0x([0-9a-f]+)",
                   re.M)
ENTRY, EXIT = 0x01, 0xFE
PARTS = ("fault", "boot", "hyperfine", "hold")      # the case kinds figures() reads


@dataclass
class Params:
    repeat: int = 5
    fault_size: int = 64 * MiB        # each of the fault guest's two regions
    boot_size: int = 256 * MiB        # guest RAM of the boot-time runs (rounded up to the page)
    qemu: bool = True                 # the QEMU comparisons (each QEMU start costs ~7 s in TCG)
    only: list[str] | None = None     # backings to run; None: all of backings.def
    resize_size: int = 256 * MiB      # each resize step and balloon inflation (bench/resize.py)
    exchange: Path = HBUILD / "bench" # where hyperfine writes its JSON (inside the work tree)


def qemu_command(cmdline: str, mem: int = QEMU_RAM) -> list[str]:
    return ["qemu-system-x86_64", "-accel", "kvm", "-machine", "q35", "-cpu", "host",
            "-m", f"{mem // MiB}M", "-kernel", str(PROBE), "-append", cmdline, "-nodefaults",
            "-display", "none", "-serial", "stdio",
            "-device", "isa-debug-exit,iobase=0xf4,iosize=4"]


def memvisor_probe_command() -> list[str]:
    return [str(MEMVISOR), "--memory", f"size={QEMU_RAM // MiB}M", "--kernel", str(PROBE),
            "--cmdline", "memtest=off", "--serial", "off"]


def fault_config(b: backings.Backing, p: Params) -> VmConfig:
    """The fault guest's VM on backing `b` (two regions and room for the guest itself)."""
    return backings.vm_config(b, backings.guest_size(b, 2 * p.fault_size + 64 * MiB), ZONE_DIR,
                              FAULT, f"size={p.fault_size // MiB}M")


def boot_config(b: backings.Backing, p: Params, prefault: bool = False) -> VmConfig:
    """The probe's VM on backing `b`, for the boot times."""
    return backings.vm_config(b, backings.guest_size(b, p.boot_size), ZONE_DIR, PROBE,
                              "memtest=off", prefault)


def selected(p: Params) -> list[backings.Backing]:
    return [b for b in backings.all_backings() if p.only is None or b.name in p.only]


def _hyperfine(name: str, cmd: list[str], p: Params, ignore_failure: bool,
               run_s: int) -> dict[str, Any]:
    out = p.exchange / f"hyperfine-{name}.json"
    argv = ["hyperfine", "-N", "--style", "basic", "--runs", str(p.repeat),
            "--warmup", "1" if p.repeat > 1 else "0",
            "--export-json", str(out)] + (["-i"] if ignore_failure else []) + [shlex.join(cmd)]
    return {"name": f"hyperfine/{name}", "argv": argv, "timeout": 60 + run_s * (p.repeat + 1),
            "setup": [f"rm -f {shlex.quote(str(out))}"]}


def cases(p: Params) -> list[dict[str, Any]]:
    """The batch, in order. Case names are `part/backing/variant/repeat`."""
    out: list[dict[str, Any]] = []
    setup = [f"mkdir -p {ZONE_DIR}"]
    for i in range(p.repeat):
        for b in selected(p):
            argv = MemvisorDriver(MEMVISOR).command(fault_config(b, p))
            out.append({"name": f"fault/{b.name}/-/{i}", "argv": [*FAULT_WRAP, *argv],
                        "timeout": 90, "setup": setup + [NO_NUMA_BALANCING]})
            setup = []
        for b in selected(p):
            for prefault in (False, True):
                argv = [str(MEMVISOR), "--serial", "off", *boot_config(b, p, prefault).ch_args()]
                variant = "prefault" if prefault else "-"
                out.append({"name": f"boot/{b.name}/{variant}/{i}", "argv": argv, "timeout": 90})
    out.append(_hyperfine("memvisor", memvisor_probe_command(), p, False, 15))
    hold = VmConfig(memory=f"size={QEMU_RAM // MiB}M", cmdline="memtest=off hold=1")
    out.append({"name": "hold/memvisor/-/0", "argv": MemvisorDriver(MEMVISOR).command(hold),
                "hold_marker": "SUMMARY", "timeout": 120})
    if p.qemu:
        # A nested QEMU run was once seen never to end (the case's whole budget lost): each run
        # is bounded, and a run killed by the bound is counted, not timed.
        out.append(_hyperfine("qemu", ["timeout", "-s", "KILL", str(QEMU_RUN_S),
                                       *qemu_command("memtest=off")], p, True, 45))
        out.append({"name": "hold/qemu/-/0", "argv": qemu_command("memtest=off hold=1"),
                    "hold_marker": "SUMMARY", "timeout": 300})
    return out


def _tail(text: str, n: int = 3) -> str:
    return " | ".join(text.strip().splitlines()[-n:])


def debug_times(stderr: str) -> dict[int, float]:
    """First time (µs since memvisor started) each debug-port code was written."""
    times: dict[int, float] = {}
    for code, t in _DEBUG.findall(stderr):
        times.setdefault(int(code, 16), float(t))
    return times


def guest_ram(stderr: str) -> list[tuple[int, int]]:
    """[start, end) of every host mapping of guest RAM memvisor -v names: zones (with their
    virtio-mem regions) and ACPI DIMMs."""
    out = [(int(m[3], 16), int(m[3], 16) + int(m[4])) for m in _ZONE.finditer(stderr)]
    return out + [(int(m[2], 16), int(m[2], 16) + parse_size(m[1])) for m in _DIMM.finditer(stderr)]


def overhead_kb(smaps: str, ram: list[tuple[int, int]] | None, ram_size: int) -> dict[str, int]:
    """Rss and Pss of every mapping but guest RAM: those inside the `ram` ranges (memvisor),
    else (QEMU) any mapping at least as large as the guest RAM that is anonymous, a memfd
    (shared=on, hugetlb) or a file in ZONE_DIR (a memory-backend-file's temporary file)."""
    rss = pss = ram_kb = libs = 0
    for m in parse_smaps(smaps):
        is_ram = any(m.start < b and a < m.end for a, b in ram) if ram is not None else \
            (m.size >= ram_size and (not m.name.startswith("/")
                                     or m.name.startswith(("/memfd:", ZONE_DIR + "/"))))
        if is_ram:
            ram_kb += m.resident_kb
        else:
            rss += m.kb("Rss")
            pss += m.kb("Pss")
            libs += m.kb("Rss") if ".so" in m.name else 0
    return {"rss_kb": rss, "pss_kb": pss, "guest_ram_rss_kb": ram_kb, "libs_rss_kb": libs}


class Collector:
    def __init__(self) -> None:
        self.samples: dict[str, list[float]] = {}
        self.units: dict[str, str] = {}
        self.extra: dict[str, dict[str, Any]] = {}
        self.skipped: dict[str, str] = {}

    def add(self, name: str, value: float, unit: str, **extra: Any) -> None:
        self.samples.setdefault(name, []).append(value)
        self.units[name] = unit
        self.extra[name] = extra

    def skip(self, name: str, reason: str) -> None:
        self.skipped.setdefault(name, reason)

    def figures(self) -> dict[str, Figure]:
        return {n: figure(s, self.units[n], **self.extra[n]) for n, s in self.samples.items()}


# Above this share of a phase's cycles spent in timer reads, its per-touch average is the
# difference of two nearly equal numbers and says more about the timer's jitter than the touch.
FAULT_MAX_TIMER_PCT = 50


def fault_figures(c: Collector, b: str, r: dict[str, Any]) -> None:
    """guest.<b>.* from one fault case (b: the backing, or `<backing>.qemu`)."""
    if r["rc"] != 0 or r.get("timed_out"):
        c.skip(f"guest.{b}", f"memvisor exited {r['rc']}: {_tail(r['stderr'])}")
        return
    try:
        rep = parse_fault(r["stdout"])
    except ReportError as e:
        c.skip(f"guest.{b}", f"fault report: {e}")
        return
    if rep.timer is None:
        c.skip(f"guest.{b}", "fault report without a `timer` line: a fault.elf from before batch "
                             "timing, whose figures include one TSC read per touch (run make)")
        return
    if rep.timer.ns is None:
        c.skip(f"guest.{b}", "the guest has no TSC frequency (ns_avg=unknown)")
        return
    m = _FAULT_HOST.search(r["stderr"])
    host = {"thp": m[1], "numa_balancing": m[2], "pinned_cpu": int(m[3])} if m else {}
    c.add(f"guest.{b}.timer_ns", rep.timer.ns, "ns/read", cycles=rep.timer.cycles, **host)
    floor_ns = rep.floor[1] if rep.floor else None
    if floor_ns:    # 0 where a touch takes under a cycle: no figure, every figure is positive
        c.add(f"guest.{b}.touch_floor_ns", floor_ns, "ns/touch")
    for stride, sname in ((0x1000, "4k"), (0x200000, "2m")):
        for touch, tname in ((1, "first"), (2, "second")):
            name = f"guest.{b}.fault_{sname}_{tname}"
            ph = next((p for p in rep.phases if p.stride == stride and p.touch == touch), None)
            if ph is None or ph.ns_avg is None or ph.timer_pct is None:
                c.skip(name, f"no stride={stride:#x} touch={touch} phase with ns_avg in the report")
                continue
            if ph.timer_pct > FAULT_MAX_TIMER_PCT:
                c.skip(name, f"timer reads were {ph.timer_pct}% of the phase (a read: "
                             f"{rep.timer.ns} ns): the per-touch average would be the timer's jitter")
                continue
            if ph.ns_avg <= 0:
                c.skip(name, "ns_avg=0: under a cycle per touch once the timer reads are taken out")
                continue
            c.add(name, ph.ns_avg, "ns/touch", stride=stride, pages=ph.pages,
                  timer_pct=ph.timer_pct, per_touch=ph.per_touch, timer_ns=rep.timer.ns,
                  floor_ns=floor_ns, **host)


def _boot(c: Collector, b: str, variant: str, r: dict[str, Any]) -> None:
    base = f"boot.{b}" + ("" if variant == "-" else f".{variant}")
    times = debug_times(r["stderr"])
    if r["rc"] != 0 or ENTRY not in times or EXIT not in times:
        c.skip(base, f"memvisor exited {r['rc']}, debug-port codes "
                     f"{sorted(hex(k) for k in times)}: {_tail(r['stderr'])}")
        return
    c.add(f"{base}.entry_ms", times[ENTRY] / 1000, "ms")
    c.add(f"{base}.exit_ms", times[EXIT] / 1000, "ms")


def _hyperfine_result(c: Collector, name: str, r: dict[str, Any], path: Path,
                      ok_codes: set[int]) -> None:
    fig = f"boot.{name}.process_ms"
    if r["rc"] != 0 or not path.exists():
        c.skip(fig, f"hyperfine exited {r['rc']}: {_tail(r['stdout'] + r['stderr'])}")
        return
    res = json.loads(path.read_text())["results"][0]
    exits = res.get("exit_codes") or [next(iter(ok_codes))] * len(res["times"])
    if not set(exits) - {HUNG} <= ok_codes:
        c.skip(fig, f"{name} exited with {sorted(set(exits))} under hyperfine")
        return
    times = [t for t, code in zip(res["times"], exits) if code != HUNG]
    if not times:
        c.skip(fig, f"every {name} run was killed after {QEMU_RUN_S} s")
        return
    for t in times:
        c.add(fig, t * 1000, "ms", command=res["command"], hung_runs=len(exits) - len(times))


def hold_figures(c: Collector, name: str, r: dict[str, Any], vmm: str | None = None,
                 ram_size: int = QEMU_RAM) -> None:
    """vmm.<name>.* from one hold case; `vmm` (default: the name's start) says whose."""
    fig = f"vmm.{name}"
    during = r.get("during")
    if not during or not during.get("smaps"):
        c.skip(fig, f"no smaps sampled (rc {r['rc']}): {_tail(r['stdout'] + r['stderr'])}")
        return
    ram = None
    if (vmm or name).startswith("memvisor"):
        ram = guest_ram(r["stderr"])
        if not ram:
            c.skip(fig, "no `memvisor: zone` line on stderr (-v)")
            return
    bad = [s for s in r.get("steps", []) if s.get("error") or not s.get("matched", True)]
    if bad:     # the devices were meant to be in use when sampled
        c.skip(fig, f"resize step {bad[0]['name']} failed: {bad[0].get('error') or 'no report'}")
        return
    kb = overhead_kb(during["smaps"], ram, ram_size)
    # Extras, not figures: guest RAM (often 0: memtest=off), and the shared libraries' part
    # of the Rss (pages shared with every other process using them; Pss shares them out).
    extra = {k: kb.pop(k) for k in ("guest_ram_rss_kb", "libs_rss_kb")}
    for k, v in kb.items():
        c.add(f"{fig}.{k}", v, "kB", **extra)


def figures(results: list[dict[str, Any]], p: Params) -> tuple[dict[str, Figure],
                                                               dict[str, Ratio], dict[str, str]]:
    c = Collector()
    for r in results:
        part, who, variant, _ = (r["name"].split("/") + ["", "", ""])[:4]
        if part not in PARTS:
            continue        # another module's case (bench/resize.py)
        if r.get("lost"):
            prefix = {"fault": f"guest.{who}", "hyperfine": f"boot.{who}.process_ms",
                      "hold": f"vmm.{who}"}.get(part, f"boot.{who}" + (
                          "" if variant == "-" else f".{variant}"))
            c.skip(prefix, f"case {r['name']} not run: {r['lost']}")
        elif part == "fault":
            fault_figures(c, who, r)
        elif part == "boot":
            _boot(c, who, variant, r)
        elif part == "hyperfine":
            _hyperfine_result(c, who, r, p.exchange / f"hyperfine-{who}.json",
                              {0} if who == "memvisor" else {1})
        elif part == "hold":
            hold_figures(c, who, r)
    figs = c.figures()
    skipped = {k: v for k, v in c.skipped.items() if not any(f.startswith(k + ".") for f in figs)}
    if not p.qemu:
        skipped["boot.qemu"] = skipped["vmm.qemu"] = "QEMU comparison not run (--no-qemu)"
    return figs, guest_ratios(figs), skipped


def guest_ratios(figs: dict[str, Figure]) -> dict[str, Ratio]:
    out: dict[str, Ratio] = {}
    qemu = "boot.qemu.process_ms"
    for name in figs:
        parts = name.split(".")
        if name.startswith("guest.") and name.endswith(".fault_4k_first"):
            second = name[:-len("first")] + "second"
            if second in figs:
                out[name[:-len("_first")] + ".first_over_second"] = ratio(name, second, figs, "lower")
        elif parts[0] == "boot" and name.endswith(".exit_ms") and qemu in figs:
            out[name[:-len(".exit_ms")] + ".exit_over_qemu_process"] = ratio(name, qemu, figs, "lower")
    if qemu in figs and "boot.memvisor.process_ms" in figs:
        out["boot.memvisor_over_qemu.process"] = ratio("boot.memvisor.process_ms", qemu, figs, "lower")
    if "vmm.memvisor.rss_kb" in figs and "vmm.qemu.rss_kb" in figs:
        out["vmm.memvisor_over_qemu.rss"] = ratio("vmm.memvisor.rss_kb", "vmm.qemu.rss_kb", figs, "lower")
    for devices in ("all_devices", "acpi_devices"):     # bench/resize.py's hold cases
        if f"vmm.memvisor_{devices}.rss_kb" in figs and "vmm.memvisor.rss_kb" in figs:
            out[f"vmm.memvisor_{devices}_over_plain.rss"] = ratio(
                f"vmm.memvisor_{devices}.rss_kb", "vmm.memvisor.rss_kb", figs, "lower")
    return out
