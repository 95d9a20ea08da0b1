"""results.json: assembling, checking well-formedness, and the short table printed after a run.

The schema is documented in bench/README.md ("results.json").
"""
from __future__ import annotations

import math
import os
import platform
import re
from pathlib import Path
from typing import Any

from . import backings, linux, resize

SCHEMA = "memvisor-bench/1"
# Parts measured per backing: each backing must have a figure or a skip reason in each.
PARTS = ("host", "guest", "boot")
# What `--parts` selects: part 1, parts 2-5 (test host and native), part 6 (bench/linux.py).
RUN_PARTS = ("host", "guest", "linux")


def _read(path: str) -> str:
    try:
        return Path(path).read_text()
    except OSError:
        return ""


def machine() -> dict[str, Any]:
    """What the figures were measured on (the host; the test host's options are in params)."""
    cpuinfo = _read("/proc/cpuinfo")
    model = re.search(r"^model name\s*:\s*(.*)$", cpuinfo, re.M)
    flags = re.search(r"^flags\s*:\s*(.*)$", cpuinfo, re.M)
    mem = re.search(r"^MemTotal:\s*(\d+) kB", _read("/proc/meminfo"), re.M)
    thp = re.search(r"\[(\w+)\]", _read("/sys/kernel/mm/transparent_hugepage/enabled"))
    return {
        "hostname": platform.node(),
        "kernel": platform.release(),
        "cpu": model.group(1) if model else "unknown",
        "cpus": os.cpu_count(),
        "usable_cpus": len(os.sched_getaffinity(0)),
        "mem_total_kb": int(mem.group(1)) if mem else None,
        "virtualized": bool(flags and "hypervisor" in flags.group(1).split()),
        "kvm": os.path.exists("/dev/kvm"),
        "thp": thp.group(1) if thp else "unknown",
        "python": platform.python_version(),
    }


def coverage_problems(res: dict[str, Any]) -> list[str]:
    """Every backing of backings.def has, in each part, a figure or a reason it was skipped."""
    problems = []
    for b in backings.names():
        for part in PARTS:
            prefix = f"{part}.{b}"
            if any(n.startswith(prefix + ".") for n in res["figures"]):
                continue
            if not res["skipped"].get(prefix):
                problems.append(f"{prefix}: neither measured nor skipped with a reason")
    return problems


def _positive(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) and x > 0


def problems(res: dict[str, Any]) -> list[str]:
    """Why `res` is not a well-formed results.json; empty when it is."""
    out: list[str] = []
    if res.get("schema") != SCHEMA:
        return [f"schema is {res.get('schema')!r}, expected {SCHEMA!r}"]
    for key in ("created", "machine", "params", "backings", "figures", "ratios", "skipped"):
        if key not in res:
            out.append(f"missing key {key!r}")
    if out:
        return out
    if res["backings"] != backings.names():
        out.append(f"backings {res['backings']} differ from backings.def {backings.names()}")
    for name, f in res["figures"].items():
        if not isinstance(f.get("unit"), str) or not f["unit"]:
            out.append(f"figure {name}: no unit")
        if not all(_positive(f.get(k)) for k in ("median", "min", "max", "q1", "q3")):
            out.append(f"figure {name}: median/min/max/q1/q3 not all positive numbers")
        elif not f["min"] <= f["q1"] <= f["median"] <= f["q3"] <= f["max"]:
            out.append(f"figure {name}: min <= q1 <= median <= q3 <= max does not hold")
        samples = f.get("samples")
        if not isinstance(samples, list) or len(samples) != f.get("n") or not samples:
            out.append(f"figure {name}: n and samples disagree")
        elif not all(_positive(s) for s in samples):
            out.append(f"figure {name}: a sample is not a positive number")
    for name, r in res["ratios"].items():
        if not _positive(r.get("value")):
            out.append(f"ratio {name}: value {r.get('value')!r} is not a positive number")
        if r.get("better") not in ("higher", "lower"):
            out.append(f"ratio {name}: better={r.get('better')!r}")
        if "paired" in r and (r["paired"] not in res["figures"]
                              or res["figures"][r["paired"]]["median"] != r.get("value")):
            out.append(f"ratio {name}: paired figure {r['paired']!r} missing or not its median")
        for k in ("num", "den"):
            if r.get(k) not in res["figures"]:
                out.append(f"ratio {name}: {k} {r.get(k)!r} is not a figure")
    for name, reason in res["skipped"].items():
        if not isinstance(reason, str) or not reason.strip():
            out.append(f"skipped {name}: no reason")
    return out + coverage_problems(res)


def _fmt(x: float) -> str:
    if x >= 100:
        return f"{x:.0f}"
    if x >= 1:
        return f"{x:.2f}"
    return f"{x:.3g}"


def _cell(res: dict[str, Any], name: str) -> str:
    f = res["figures"].get(name)
    if not f:
        return "-"
    return f"{_fmt(f['median'])} ({_fmt(f['min'])}-{_fmt(f['max'])})"


def _ratio(res: dict[str, Any], name: str) -> str:
    r = res["ratios"].get(name)
    return _fmt(r["value"]) if r else "-"


def _med(res: dict[str, Any], name: str, width: int) -> str:
    return f"{_cell(res, name).split(' ')[0]:>{width}}"


def resize_rows(res: dict[str, Any]) -> list[str]:
    """Part 5, and part 4 with every device, for each venue that measured them."""
    rows = []
    size = res["params"].get("resize_size", 256 << 20) >> 20
    for prefix, where in (("", "test host"), ("native.", "native")):
        if not any(n.startswith(tuple(prefix + k for k in ("resize.", "balloon.", "vmm.memvisor_")))
                   for n in res["figures"]):
            continue
        for devices, what in (("all_devices", "virtio-mem"), ("acpi_devices", "ACPI hotplug")):
            f = res["figures"].get(f"{prefix}vmm.memvisor_{devices}.rss_kb")
            if f:
                rows.append(f"4. ({where}) VMM RSS with {what}, balloon and API socket in use: "
                            f"{_cell(res, f'{prefix}vmm.memvisor_{devices}.rss_kb')} kB, "
                            + ("under" if f["median"] < resize.VMM_GOAL_KB else "NOT under")
                            + f" the goal of {resize.VMM_GOAL_KB} kB; without devices "
                            f"{_med(res, f'{prefix}vmm.memvisor.rss_kb', 0)} kB, ratio "
                            f"{_ratio(res, f'{prefix}vmm.memvisor_{devices}_over_plain.rss')}")
        rows += ["", f"5. resize ({where}): API call -> the resize guest's report, {size} MiB "
                     "(x1st, xmemset: rate / host first touch of the backing, / memset; same run)",
                 f"   {'kind':14}{'plug ms':>10}{'MiB/s':>9}{'x1st':>8}{'xmemset':>9}"
                 f"{'unplug ms':>11}{'MiB/s':>9}{'RSS drop MiB':>14}"]
        for kind in resize.VIRTIO_MEM + (resize.ACPI,):
            b = f"{prefix}resize.{kind}"
            if not any(n.startswith(b + ".") for n in res["figures"]):
                why = res["skipped"].get(b) or res["skipped"].get(f"{prefix}resize", "-")
                rows.append(f"   {kind:14}skipped: {why[:90]}")
                continue
            rows.append(f"   {kind:14}{_med(res, b + '.plug_ms', 10)}{_med(res, b + '.plug_mibps', 9)}"
                        f"{_ratio(res, b + '.plug.fraction_of_first_touch'):>8}"
                        f"{_ratio(res, b + '.plug.fraction_of_limit'):>9}"
                        f"{_med(res, b + '.unplug_ms', 11)}{_med(res, b + '.unplug_mibps', 9)}"
                        f"{_med(res, b + '.unplug_rss_drop_mib', 14)}")
        b = f"{prefix}balloon"
        if any(n.startswith(b + ".") for n in res["figures"]):
            rows.append(f"   balloon inflate of {size} MiB: {_cell(res, b + '.inflate_ms')} ms, "
                        f"{_cell(res, b + '.inflate_mibps')} MiB/s, host RSS down by "
                        f"{_cell(res, b + '.inflate_rss_drop_mib')} MiB")
        elif res["skipped"].get(b):
            rows.append(f"   balloon: skipped: {res['skipped'][b][:90]}")
    return rows


def host_rows(res: dict[str, Any]) -> list[str]:
    """Part 1."""
    p = res["params"]
    rows = ["", f"1. host populate of {p['size'] >> 20} MiB: ns per 4 KiB page, and as a fraction of "
            "memset over populated memory (1 thread; parallel: all CPUs)"]
    limits = [f"{n[len('host.limit.'):]} {_cell(res, n)} GB/s" for n in res["figures"]
              if n.startswith("host.limit.")]
    rows.append("   limits: " + "; ".join(limits) + "; kernel 2M zeroing = "
                + _ratio(res, "host.limit.kzero_2m.fraction_of_limit") + " of memset")
    modes = ("first_touch", "prefault_serial", "prefault_parallel")
    rows.append(f"   {'backing':14}" + "".join(f"{m:>25}   " for m in modes))
    for b in res["backings"]:
        if f"host.{b}" in res["skipped"]:
            rows.append(f"   {b:14} skipped: {res['skipped'][f'host.{b}'][:80]}")
            continue
        rows.append(f"   {b:14}" + "".join(
            f"{_cell(res, f'host.{b}.{m}.ns_per_page').split(' ')[0]:>10} ns "
            f"{_ratio(res, f'host.{b}.{m}.fraction_of_limit'):>7}x   " for m in modes))
    return rows


def guest_rows(res: dict[str, Any]) -> list[str]:
    """Parts 2-4 in the test host."""
    p = res["params"]
    rows = ["", f"2-3. in the test host: fault guest (ns per touch, 4 KiB stride, regions of "
                f"{p['fault_size'] >> 20} MiB) and boot of the probe ({p['boot_size'] >> 20} MiB; "
                "ms since memvisor started)",
            f"   {'backing':14}{'1st touch':>22}{'2nd touch':>18}{'1st/2nd':>8}{'2M 1st':>10}"
            f"{'entry':>9}{'exit':>9}{'prefault exit':>15}"]
    for b in res["backings"]:
        g = f"guest.{b}"
        rows.append(f"   {b:14}{_cell(res, g + '.fault_4k_first'):>22}"
                    f"{_cell(res, g + '.fault_4k_second'):>18}"
                    f"{_ratio(res, g + '.fault_4k.first_over_second'):>8}"
                    f"{_cell(res, g + '.fault_2m_first').split(' ')[0]:>10}"
                    f"{_cell(res, f'boot.{b}.entry_ms').split(' ')[0]:>9}"
                    f"{_cell(res, f'boot.{b}.exit_ms').split(' ')[0]:>9}"
                    f"{_cell(res, f'boot.{b}.prefault.exit_ms').split(' ')[0]:>15}")
    rows += ["", "   whole process (hyperfine), probe, 128 MiB: memvisor "
             f"{_cell(res, 'boot.memvisor.process_ms')} ms, QEMU {_cell(res, 'boot.qemu.process_ms')}"
             f" ms, ratio {_ratio(res, 'boot.memvisor_over_qemu.process')}",
             f"4. VMM resident memory without guest RAM: memvisor {_cell(res, 'vmm.memvisor.rss_kb')}"
             f" kB, QEMU {_cell(res, 'vmm.qemu.rss_kb')} kB, ratio "
             f"{_ratio(res, 'vmm.memvisor_over_qemu.rss')}"]
    return rows


def qemu_rows(res: dict[str, Any]) -> list[str]:
    """Parts 2-4 per backing under both VMMs (bench/qemu.py): memvisor / QEMU of the same run."""
    have = [b for b in res["backings"]
            if any(n.startswith((f"guest.{b}.memvisor_over_qemu.", f"boot.{b}.memvisor_over_qemu.",
                                 f"vmm.{b}.memvisor_over_qemu.")) for n in res["ratios"])]
    if not have:
        return []
    rows = ["", "2-4. memvisor / QEMU per backing, same run (fault: ns per touch; boot: whole "
                "process to exit; RSS without guest RAM)",
            f"   {'backing':14}{'4k 1st':>8}{'4k 2nd':>8}{'2M 1st':>8}{'2M 2nd':>8}"
            f"{'boot ms':>18}{'ratio':>7}{'RSS kB':>16}{'ratio':>7}"]
    for b in have:
        g, boot, vmm = (f"{part}.{b}.memvisor_over_qemu" for part in ("guest", "boot", "vmm"))
        rows.append(f"   {b:14}" + "".join(f"{_ratio(res, f'{g}.fault_{k}'):>8}"
                                          for k in ("4k_first", "4k_second", "2m_first", "2m_second"))
                    + f"{_med(res, f'boot.{b}.memvisor.process_ms', 8)} /"
                    f"{_med(res, f'boot.{b}.qemu.process_ms', 7)}{_ratio(res, boot + '.process'):>7}"
                    f"{_med(res, f'vmm.{b}.memvisor.rss_kb', 7)} /"
                    f"{_med(res, f'vmm.{b}.qemu.rss_kb', 6)}{_ratio(res, vmm + '.rss'):>7}")
    return rows


def table(res: dict[str, Any]) -> str:
    """The short table: medians, (min-max) over the repeats, ratios of this run."""
    p = res["params"]
    rows = [f"memvisor bench, {res['created']}, {res['machine']['cpu']} x{res['machine']['cpus']}; "
            f"medians (min-max) of {p['repeat']} runs"]
    parts = p.get("parts") or RUN_PARTS
    if "host" in parts:
        rows += host_rows(res)
    if "guest" in parts:
        rows += guest_rows(res) + qemu_rows(res)
    rows += resize_rows(res)
    rows += linux.rows(res)
    by_reason: dict[str, list[str]] = {}
    for k, reason in res["skipped"].items():
        if not (k.startswith("host.") and k.count(".") == 1):  # those are in the host table
            by_reason.setdefault(reason, []).append(k)
    if by_reason:
        rows += ["", "skipped:"] + [f"   {', '.join(ks)}: {r[:100]}" for r, ks in by_reason.items()]
    return "\n".join(rows)
