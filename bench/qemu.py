"""Parts 2-4 per backing under memvisor and QEMU, in the same batch (issue 12).

For every backing of backings.def the configuration memvisor is given (bench/guest.py's
fault_config, boot_config, and the hold VM) is translated by memvisor.qemuargs into QEMU's
options for the same backing; a backing QEMU cannot express is skipped with qemuargs' reason.
Each QEMU case is put into guest.cases' batch right after the memvisor case it is compared with
(`batch()`), so that repeats stay interleaved and a burst of noise hits both VMMs alike:

  vmfault/<backing>/qemu/<i>      the fault guest under QEMU, after fault/<backing>/-/<i>
  vmboot/<backing>/<vmm>/<i>      the probe to its exit under both VMMs, whole process timed
  vmhold/<backing>/<vmm>/0        the probe held after its report: the VMM's smaps

QEMU is `qemu-system-x86_64 -machine q35 -accel kvm -cpu host` with PVH `-kernel` and
isa-debug-exit (memvisor.driver.QemuDriver.head), the same as the conformance comparison. The
fault guest's QEMU gets `-cpu host,+invtsc`: only then does QEMU give the KVM timing leaf
(CPUID 0x40000010) the guest takes its TSC frequency from; without it ns_avg is unknown.
"""
from __future__ import annotations

from typing import Any

from memvisor.driver import MemvisorDriver, QemuDriver, VmConfig
from memvisor.oraclemodel import HostFacts
from memvisor.qemuargs import NotApplicable, translate

from . import backings, guest
from .stats import Figure, Ratio, ratio

PARTS = ("vmfault", "vmboot", "vmhold")     # the case kinds figures() reads
VMMS = ("memvisor", "qemu")
FAULT_FIGURES = ("fault_4k_first", "fault_4k_second", "fault_2m_first", "fault_2m_second")
FAULT_CPU = "host,+invtsc"
QEMU_FAULT_S = 150          # a QEMU start is ~7-11 s in the test host, the touches more
QEMU_BOOT_S = 120


def hold_config(b: backings.Backing) -> VmConfig:
    """The probe held after its report (hold=1), on backing `b`: guest.QEMU_RAM, whole pages."""
    return backings.vm_config(b, backings.guest_size(b, guest.QEMU_RAM), guest.ZONE_DIR,
                              guest.PROBE, "memtest=off hold=1")


def translated(cfg: VmConfig) -> NotApplicable | list[str]:
    """qemuargs.translate's options for `cfg` (bench's zone directory is a directory)."""
    t = translate(cfg, host=HostFacts(directories=frozenset({guest.ZONE_DIR})))
    return t if isinstance(t, NotApplicable) else t.args


def qemu_argv(cfg: VmConfig, cpu: str | None = None) -> list[str]:
    """QEMU's whole command line for `cfg`; one QEMU cannot express is never planned."""
    t = translated(cfg)
    if isinstance(t, NotApplicable):
        raise ValueError(f"QEMU cannot express this configuration: {t.reason}")
    head = QemuDriver().head(cfg)
    if cpu:
        head[head.index("-cpu") + 1] = cpu
    return head + t


def not_applicable(p: guest.Params) -> dict[str, str]:
    """Backing -> why QEMU cannot express it, for the selected backings (any of its VMs)."""
    out: dict[str, str] = {}
    for b in guest.selected(p):
        for cfg in (guest.fault_config(b, p), guest.boot_config(b, p), hold_config(b)):
            t = translated(cfg)
            if isinstance(t, NotApplicable):
                out.setdefault(b.name, f"QEMU cannot express this backing: {t.reason}")
    return out


def _fault_case(b: backings.Backing, p: guest.Params, i: int) -> dict[str, Any]:
    argv = qemu_argv(guest.fault_config(b, p), FAULT_CPU)
    return {"name": f"vmfault/{b.name}/qemu/{i}", "argv": [*guest.FAULT_WRAP, *argv],
            "timeout": QEMU_FAULT_S,
            "setup": [f"mkdir -p {guest.ZONE_DIR}", guest.NO_NUMA_BALANCING]}


def _boot_cases(b: backings.Backing, p: guest.Params, i: int) -> list[dict[str, Any]]:
    """Both VMMs boot the probe with its console on stdout: the same guest work (its report),
    and the report's SUMMARY tells a guest that ran from a VMM that failed to start (QEMU's
    own errors exit 1, as isa-debug-exit's code 0 does). Which VMM goes first alternates."""
    cfg = guest.boot_config(b, p)
    argv = {"memvisor": [str(guest.MEMVISOR), "--serial", "tty", *cfg.ch_args()],
            "qemu": qemu_argv(cfg)}
    order = VMMS if i % 2 == 0 else VMMS[::-1]
    return [{"name": f"vmboot/{b.name}/{v}/{i}", "argv": argv[v], "stamp_lines": True,
             "timeout": QEMU_BOOT_S, "setup": [f"mkdir -p {guest.ZONE_DIR}"]} for v in order]


def _hold_cases(b: backings.Backing) -> list[dict[str, Any]]:
    cfg = hold_config(b)
    argv = {"memvisor": MemvisorDriver(guest.MEMVISOR).command(cfg), "qemu": qemu_argv(cfg)}
    return [{"name": f"vmhold/{b.name}/{v}/0", "argv": argv[v], "hold_marker": "SUMMARY",
             "timeout": 300, "setup": [f"mkdir -p {guest.ZONE_DIR}"]} for v in VMMS]


def batch(base: list[dict[str, Any]], p: guest.Params) -> list[dict[str, Any]]:
    """guest.cases' batch `base` with the comparison cases put in: QEMU's fault case after
    memvisor's of the same backing and repeat, the boot pair after memvisor's boot cases of
    that backing and repeat, the hold pairs after the default backing's QEMU hold case."""
    if not p.qemu:
        return list(base)
    skip = not_applicable(p)
    after: dict[str, list[dict[str, Any]]] = {}
    for i in range(p.repeat):
        for b in guest.selected(p):
            if b.name not in skip:
                after[f"fault/{b.name}/-/{i}"] = [_fault_case(b, p, i)]
                after[f"boot/{b.name}/prefault/{i}"] = _boot_cases(b, p, i)
    after["hold/qemu/-/0"] = [c for b in guest.selected(p) if b.name not in skip
                              for c in _hold_cases(b)]
    out: list[dict[str, Any]] = []
    for case in base:
        out += [case, *after.get(case["name"], [])]
    return out


def _exit_code(vmm: str, rc: int) -> int | None:
    """The code the guest wrote to the exit port, None when the status is not one it gives."""
    if vmm == "qemu":
        # isa-debug-exit: (code << 1) | 1; 0 is QEMU ending on a signal, never the guest.
        return QemuDriver().guest_exit_code(rc) if rc > 0 and rc % 2 else None
    return MemvisorDriver().guest_exit_code(rc) if rc >= 0 else None


def _failure(vmm: str, r: dict[str, Any]) -> str | None:
    """Why a case's guest did not run to a good end, or None."""
    if r.get("timed_out"):
        return f"{vmm} timed out after {r['seconds']} s: {guest._tail(r['stdout'] + r['stderr'])}"
    if _exit_code(vmm, r["rc"]) != 0 or "\nSUMMARY: ok" not in "\n" + r["stdout"]:
        return f"{vmm} exited {r['rc']}: {guest._tail(r['stdout'] + r['stderr'])}"
    return None


def _fault(c: guest.Collector, b: str, r: dict[str, Any]) -> None:
    why = _failure("qemu", r)
    if why:
        c.skip(f"guest.{b}.qemu", why)
        return
    guest.fault_figures(c, f"{b}.qemu", {**r, "rc": 0})


def _boot(c: guest.Collector, b: str, vmm: str, r: dict[str, Any]) -> None:
    why = _failure(vmm, r)
    if not why and r.get("eof_s") is None:
        why = "no end of the output recorded (stamp_lines)"
    if why:
        c.skip(f"boot.{b}.{vmm}", why)
        return
    c.add(f"boot.{b}.{vmm}.process_ms", r["eof_s"] * 1000, "ms", measured="start to exit")


def _hold(c: guest.Collector, b: str, vmm: str, r: dict[str, Any]) -> None:
    size = backings.guest_size(backings.by_name(b), guest.QEMU_RAM)
    guest.hold_figures(c, f"{b}.{vmm}", r, vmm, size)


def figures(results: list[dict[str, Any]], p: guest.Params) -> tuple[dict[str, Figure],
                                                               dict[str, str]]:
    """The comparison cases' figures and skipped reasons (ratios(): with guest.py's figures)."""
    c = guest.Collector()
    for r in results:
        part, b, vmm, _ = (r["name"].split("/") + ["", "", ""])[:4]
        if part not in PARTS:
            continue
        if r.get("lost"):
            prefix = {"vmfault": "guest", "vmboot": "boot", "vmhold": "vmm"}[part]
            c.skip(f"{prefix}.{b}.{vmm}", f"case {r['name']} not run: {r['lost']}")
        elif part == "vmfault":
            _fault(c, b, r)
        elif part == "vmboot":
            _boot(c, b, vmm, r)
        else:
            _hold(c, b, vmm, r)
    figs = c.figures()
    skipped = {k: v for k, v in c.skipped.items() if not any(f.startswith(k + ".") for f in figs)}
    reasons = not_applicable(p) if p.qemu else \
        {b.name: "QEMU comparison not run (--no-qemu)" for b in guest.selected(p)}
    for b, why in reasons.items():
        for part in ("guest", "boot", "vmm"):
            skipped[f"{part}.{b}.qemu"] = why
    return figs, skipped


def ratios(figs: dict[str, Figure]) -> dict[str, Ratio]:
    """memvisor / QEMU for each backing and figure both have; lower is better for memvisor.
    memvisor's fault figures are guest.py's guest.<backing>.<figure> of the same batch: `figs`
    holds both modules' figures."""
    out: dict[str, Ratio] = {}
    for b in backings.names():
        pairs = [(f"guest.{b}.memvisor_over_qemu.{f}", f"guest.{b}.{f}", f"guest.{b}.qemu.{f}")
                 for f in FAULT_FIGURES]
        pairs += [(f"boot.{b}.memvisor_over_qemu.process", f"boot.{b}.memvisor.process_ms",
                   f"boot.{b}.qemu.process_ms"),
                  (f"vmm.{b}.memvisor_over_qemu.rss", f"vmm.{b}.memvisor.rss_kb",
                   f"vmm.{b}.qemu.rss_kb")]
        for name, num, den in pairs:
            if num in figs and den in figs:
                out[name] = ratio(num, den, figs, "lower")
    return out
