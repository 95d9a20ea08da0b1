"""Part 6: Linux boot time, memvisor against QEMU q35 and QEMU microvm.

Debian's kernel (build/linux/vmlinuz, the bzImage) with the project's initramfs (guests/linux/),
512 MiB and one vCPU, the same command line for all three VMMs. `end=poweroff`: /init prints
`memvisor-linux-init` as its first act, then the `memvisor-linux 1` report, then powers off.
Times are taken by the in-host runner (harness/memvisor/inhost.py, `stamp_lines`): from just
before the VMM process starts to the arrival of each console line and to the end of its output.

    linux/<vmm>/-/<repeat>        a timed boot; repeats interleaved (A B C A B C ...)
    linux/<vmm>/warmup/0          one untimed round first (page cache, the test host's 9p)

A sample is valid only when the VMM exited 0 after the kernel's `reboot: Power down` (QEMU with
-no-reboot also exits 0 on a reboot or a panic) and both lines were seen; any other sample is
missing and its reason is kept with the figure (`invalid`) or, with none valid, in `skipped`.
A boot whose console is silent for IDLE_S is killed by the runner: a missing sample, never a
hung bench.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from conformance.linux import IDLE_S, INITRAMFS, KERNELS, in_testhost

from .guest import MEMVISOR
from .stats import Figure, Ratio, figure

MiB = 1 << 20
VMMS = ("memvisor", "qemu_q35", "qemu_microvm")
QEMU_MACHINE = {"qemu_q35": "q35", "qemu_microvm": "microvm"}
MEMORY = 512 * MiB
KERNEL = KERNELS["bzimage"]
# memtest=off: the report's own memory test (64M by default) is not boot time.
CMDLINE = "console=ttyS0 panic=-1 memtest=off end=poweroff"
# Under TCG (--linux-accel tcg, a debugging aid) a microvm has no PIT speaker gate, HPET or
# PM timer to calibrate the TSC against, and Linux hangs after "Marking TSC unstable"; under
# KVM the kvm-clock gives the TSC's frequency. The same word goes to all three VMMs.
TCG_WORDS = "tsc_early_khz=2000000"
CASE_TIMEOUT_S = 240             # a boot to power-off takes 16-60 s in the test host
INIT_MARK = "memvisor-linux-init"
POWER_DOWN = "reboot: Power down"
_RUN_INIT = re.compile(r"\[\s*(\d+\.\d+)\] Run /init as init process")
TIMES = ("init", "report", "exit")   # the figures compared between VMMs


@dataclass
class Params:
    repeat: int = 5
    warmup: bool = True
    accel: str = "kvm"           # QEMU's; tcg only to debug this part where KVM cannot
    vmms: tuple[str, ...] = VMMS


def cmdline(accel: str) -> str:
    return CMDLINE + (f" {TCG_WORDS}" if accel == "tcg" else "")


def command(vmm: str, accel: str = "kvm") -> list[str]:
    if vmm == "memvisor":
        return [str(MEMVISOR), "--memory", f"size={MEMORY // MiB}M", "--cpus", "boot=1",
                "--kernel", str(KERNEL), "--initramfs", str(INITRAMFS), "--serial", "tty",
                "--cmdline", cmdline(accel)]
    return ["qemu-system-x86_64", "-machine", QEMU_MACHINE[vmm], "-accel", accel,
            "-cpu", "host" if accel == "kvm" else "max", "-smp", "1", "-m", f"{MEMORY // MiB}M",
            "-kernel", str(KERNEL), "-initrd", str(INITRAMFS), "-append", cmdline(accel),
            "-nodefaults", "-display", "none", "-no-reboot", "-serial", "stdio"]


def cases(p: Params, testhost: bool = False) -> list[dict[str, Any]]:
    """The boots, interleaved; in the test host both VMMs give Linux the same CPU there
    (conformance.linux.in_testhost: no paravirtual EOI)."""
    rounds = [("warmup", 0)] if p.warmup and p.repeat > 1 else []
    rounds += [("-", i) for i in range(p.repeat)]
    where = in_testhost if testhost else list
    return [{"name": f"linux/{vmm}/{variant}/{i}", "argv": where(command(vmm, p.accel)),
             "timeout": CASE_TIMEOUT_S, "idle_timeout": IDLE_S, "stamp_lines": True}
            for variant, i in rounds for vmm in p.vmms]


def _tail(text: str, n: int = 2) -> str:
    return " | ".join(text.strip().splitlines()[-n:])


def sample(r: dict[str, Any]) -> tuple[dict[str, float] | None, str | None]:
    """One boot's times in ms ({init, report, exit, kernel_init}), or None and why not."""
    if r.get("lost"):
        return None, f"not run: {r['lost'].splitlines()[0]}"
    if r.get("timed_out"):
        how = f"no console output for {r['silent_s']} s" if r.get("silent_s") else \
            f"not done in {CASE_TIMEOUT_S} s"
        return None, f"hung ({how}), killed: {_tail(r.get('stdout') or r.get('stderr') or '')}"
    lines = r.get("stdout", "").splitlines(keepends=True)
    times = r.get("line_times")
    if times is None or len(times) != len(lines):
        return None, "no console line times (a runner without stamp_lines)"
    if r.get("rc") != 0:
        return None, f"exited {r.get('rc')}, not 0: {_tail(r.get('stderr') or r['stdout'])}"
    if not any(POWER_DOWN in ln for ln in lines):
        return None, f"exited 0 without '{POWER_DOWN}' (a reboot or panic): {_tail(r['stdout'])}"
    init = next((i for i, ln in enumerate(lines) if INIT_MARK in ln), None)
    if init is None:
        return None, f"no '{INIT_MARK}' line (an initramfs from before it: make linux-guest)"
    summary = next((i for i in range(init, len(lines)) if lines[i].startswith("SUMMARY: ")), None)
    if summary is None:
        return None, "no SUMMARY line after /init started"
    if r.get("eof_s") is None:
        return None, "no end-of-output time"
    out = {"init": times[init] * 1000, "report": times[summary] * 1000,
           "exit": r["eof_s"] * 1000}
    m = _RUN_INIT.search(r["stdout"])
    if m and float(m[1]) > 0:
        out["kernel_init"] = float(m[1]) * 1000
    return out, None


def figures(results: list[dict[str, Any]], p: Params) -> tuple[dict[str, Figure],
                                                               dict[str, Ratio], dict[str, str]]:
    """Figures linux.<vmm>.{init,report,exit,kernel_init}_ms, the paired ratios of memvisor
    against each QEMU, and a reason for each VMM without a valid sample."""
    by: dict[str, dict[int, dict[str, float]]] = {v: {} for v in p.vmms}
    invalid: dict[str, list[str]] = {v: [] for v in p.vmms}
    for r in results:
        part, vmm, variant, rep = (r["name"].split("/") + ["", "", ""])[:4]
        if part != "linux" or variant != "-" or vmm not in by:
            continue
        s, why = sample(r)
        if s is None:
            invalid[vmm].append(f"repeat {rep}: {why}")
        else:
            by[vmm][int(rep)] = s
    figs: dict[str, Figure] = {}
    skipped: dict[str, str] = {}
    for vmm in p.vmms:
        got = by[vmm]
        if not got:
            skipped[f"linux.{vmm}"] = "no valid boot: " + "; ".join(invalid[vmm] or ["no result"])
            continue
        extra = {"invalid": invalid[vmm], "command": command(vmm, p.accel), "accel": p.accel}
        for key in (*TIMES, "kernel_init"):
            vals = [s[key] for _, s in sorted(got.items()) if key in s]
            if vals:
                figs[f"linux.{vmm}.{key}_ms"] = figure(vals, "ms", **extra)
            else:
                skipped[f"linux.{vmm}.{key}_ms"] = "no printk time of 'Run /init as init process'"
    return figs, pair_ratios(by, figs), skipped


def pair_ratios(by: dict[str, dict[int, dict[str, float]]],
                figs: dict[str, Figure]) -> dict[str, Ratio]:
    """memvisor / each QEMU, boot by boot of the same round (interleaved, so the pair shared
    the machine's state): a figure of the per-round ratios and a ratio naming it (adds the
    figures to figs)."""
    out: dict[str, Ratio] = {}
    mine = by.get("memvisor", {})
    for q in [v for v in by if v != "memvisor"]:
        for key in TIMES:
            rounds = sorted(set(mine) & set(by[q]))
            if not rounds:
                continue
            name = f"linux.memvisor_over_{q}.{key}"
            figs[name] = figure([mine[i][key] / by[q][i][key] for i in rounds], "x",
                                rounds=rounds)
            out[name] = {"value": figs[name]["median"], "better": "lower",
                         "num": f"linux.memvisor.{key}_ms", "den": f"linux.{q}.{key}_ms",
                         "paired": name}
    return out


def renamed(prefix: str, figs: dict[str, Figure], ratios: dict[str, Ratio],
            skipped: dict[str, str]) -> tuple[dict[str, Figure], dict[str, Ratio], dict[str, str]]:
    """The same under `prefix` (native.): every name and every reference to a figure."""
    return ({prefix + k: v for k, v in figs.items()},
            {prefix + k: {**v, **{f: prefix + v[f] for f in ("num", "den", "paired") if f in v}}
             for k, v in ratios.items()},
            {prefix + k: v for k, v in skipped.items()})


def rows(res: dict[str, Any]) -> list[str]:
    """The table's part 6, for each venue that has Linux figures or a reason."""
    out: list[str] = []
    for prefix, where in (("", "test host"), ("native.", "native")):
        base = prefix + "linux"
        if not any(n.startswith(base + ".") for n in res["figures"]):
            why = res["skipped"].get(base)
            if why:
                out += ["", f"6. Linux boot ({where}): skipped: {why[:100]}"]
            continue
        out += ["", f"6. Linux boot ({where}): Debian's bzImage + initramfs, {MEMORY // MiB} MiB, "
                    "1 vCPU, end=poweroff; ms since the VMM process started",
                f"   {'vmm':14}{'/init':>22}{'report':>22}{'exit':>22}{'kernel /init':>14}"
                f"{'invalid':>9}"]
        for vmm in VMMS:
            b = f"{base}.{vmm}"
            f = res["figures"].get(f"{b}.exit_ms")
            if not f:
                out.append(f"   {vmm:14}skipped: {(res['skipped'].get(b) or '-')[:90]}")
                continue
            cells = []
            for key in TIMES:
                g = res["figures"].get(f"{b}.{key}_ms")
                cells.append(f"{_span(g):>22}")
            k = res["figures"].get(f"{b}.kernel_init_ms")
            kernel = f"{k['median']:.0f}" if k else "-"
            out.append(f"   {vmm:14}{''.join(cells)}{kernel:>14}{len(f.get('invalid', [])):>9}")
        for q in VMMS[1:]:
            vals = [res["ratios"].get(f"{base}.memvisor_over_{q}.{key}") for key in TIMES]
            if any(vals):
                out.append(f"   memvisor / {q}: " + ", ".join(
                    f"{key} {v['value']:.2f}" if v else f"{key} -" for key, v in zip(TIMES, vals))
                    + " (median of per-round ratios)")
    return out


def _span(f: Figure | None) -> str:
    if not f:
        return "-"
    return f"{f['median']:.0f} ({f['min']:.0f}-{f['max']:.0f})"
