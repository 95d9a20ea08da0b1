"""--cpus kvm_pv_eoi=on|off, as the guest sees it: the KVM feature leaf (CPUID 0x40000001 eax)
that the probe reports, with KVM_FEATURE_PV_EOI (bit 6) there by default and gone with off.

conformance/linux.py gives Linux guests in the test host kvm_pv_eoi=off (why: at TESTHOST_CPUS).
Needs a usable /dev/kvm here (hardware KVM or PVM; PVM honours the VMM's KVM leaves); skipped
without one.
"""
from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from memvisor.report import parse_probe
from memvisor.venue import kvm_error

TOP = Path(__file__).resolve().parents[2]
MEMVISOR = TOP / "build" / "memvisor"
PROBE = TOP / "build" / "guests" / "probe.elf"
KVM_FEATURE_PV_EOI = 1 << 6


def _hv_features(cpus: str) -> int | None:
    p = subprocess.run([str(MEMVISOR), "--memory", "size=64M", "--cpus", cpus,
                        "--kernel", str(PROBE)], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    cpu = parse_probe(p.stdout).cpu
    assert cpu is not None and cpu.hypervisor == "KVMKVMKVM", p.stdout[:400]
    return cpu.hv_features


@pytest.mark.skipif(kvm_error() is not None, reason=f"/dev/kvm: {kvm_error()}")
def test_kvm_pv_eoi_reaches_the_guest_cpuid() -> None:
    default, off = _hv_features("boot=1"), _hv_features("boot=1,kvm_pv_eoi=off")
    assert default is not None and off is not None
    assert default & KVM_FEATURE_PV_EOI, f"KVM offers PV EOI; the guest saw {default:#x}"
    assert off == default & ~KVM_FEATURE_PV_EOI, f"{default:#x} -> {off:#x}"


def test_kvm_pv_eoi_takes_on_or_off_only() -> None:
    p = subprocess.run([str(MEMVISOR), "--cpus", "kvm_pv_eoi=no", "--kernel", str(PROBE)],
                       capture_output=True, text=True, timeout=30)
    assert p.returncode == 1
    assert p.stderr == "memvisor: --cpus: kvm_pv_eoi=no: expected on, off, true or false\n"
