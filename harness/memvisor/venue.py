"""Where KVM work runs: natively on this machine's /dev/kvm, or inside ci/testhost.

Decided by trying and measuring, never by CPU flags alone: /dev/kvm may be hardware KVM (fast),
PVM (module kvm_pvm: KVM without VMX/SVM, shadow paging, RDTSC trapping; our guests run, but
slower than in the test host), or missing. The measurement is the probe guest's time to exit
natively, against what a probe case costs inside the test host.

    VENUE=auto      native when the probe runs natively and faster than in the test host
    VENUE=native    native (cases whose host needs this machine cannot meet are skipped)
    VENUE=testhost  always the test host

    python3 -m memvisor.venue            what auto decides here, and why
    python3 -m memvisor.venue --decide   the same on stderr; status 0 for native, 1 for test host

The native measurement is cached in build/venue.json for this boot of this machine and this
build of memvisor (a probe run costs ~4 s on PVM). Whether Debian's kernel (the Linux guest,
guests/linux/) runs natively is a second trial, made only when Linux cases would run natively
and cached the same way in build/venue-linux.json: on PVM it does not (its instruction emulator
fails on the kernel's cmpxchg16b: KVM internal error).
"""
from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from .driver import BUILD

VENUES = ("auto", "native", "testhost")
CACHE = BUILD / "venue.json"
LINUX_CACHE = BUILD / "venue-linux.json"
LINUX_DIR = BUILD / "linux"
TESTHOST_CASES = BUILD / "venue-testhost.json"
# The probe's time to exit (128 MiB) inside the test host, measured on a development machine
# (issue 9: ~1.4 s); replaced by the median of the last test-host run's probe cases when known.
TESTHOST_PROBE_S = 1.4


@dataclass
class NativeKvm:
    usable: bool
    kind: str                 # what the kernel says it is: "hardware (kvm_intel)", "PVM (kvm_pvm)"...
    probe_s: float | None     # the probe guest's time to exit here, when it ran
    detail: str               # why not usable, or what ran


@dataclass
class Decision:
    venue: str                # "native" or "testhost"
    requested: str            # what VENUE asked for
    reason: str
    native: NativeKvm | None
    testhost_probe_s: float

    def line(self) -> str:
        return f"venue: {self.venue} ({'VENUE=' + self.requested}): {self.reason}"


def kvm_kind() -> str:
    """The KVM module loaded here, for the report (the decision never rests on it alone)."""
    for mod, kind in (("kvm_pvm", "PVM"), ("kvm_intel", "hardware"), ("kvm_amd", "hardware")):
        if Path(f"/sys/module/{mod}").exists():
            return f"{kind} ({mod})"
    return "unknown module"


def _boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return ""


def kvm_error() -> str | None:
    """Why /dev/kvm cannot be opened for reading and writing here, or None when it can."""
    try:
        os.close(os.open("/dev/kvm", os.O_RDWR | os.O_CLOEXEC))
    except OSError as e:
        return e.strerror
    return None


def measure_native(memvisor: Path | None = None, probe: Path | None = None) -> NativeKvm:
    """Open /dev/kvm, then boot the probe (128 MiB) natively and time it to its exit."""
    memvisor = memvisor or Path(os.environ.get("MEMVISOR_BIN", BUILD / "memvisor"))
    probe = probe or BUILD / "guests" / "probe.elf"
    why = kvm_error()
    if why:
        return NativeKvm(False, "none", None, f"/dev/kvm: {why}")
    kind = kvm_kind()
    if not memvisor.exists() or not probe.exists():
        return NativeKvm(False, kind, None, f"cannot try: {memvisor} or {probe} is not built")
    argv = [str(memvisor), "--memory", "size=128M", "--kernel", str(probe), "--serial", "tty"]
    t0 = time.monotonic()
    try:
        # stdin: a terminal would otherwise become the guest's input, in raw mode.
        p = subprocess.run(argv, capture_output=True, text=True, timeout=60,
                           stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        return NativeKvm(False, kind, None, "the probe did not exit within 60 s")
    seconds = round(time.monotonic() - t0, 2)
    if p.returncode != 0 or "SUMMARY: ok" not in p.stdout:
        last = (p.stderr.strip().splitlines() or ["(no stderr)"])[-1]
        return NativeKvm(False, kind, None, f"the probe failed natively (status {p.returncode}): "
                                            f"{last}")
    return NativeKvm(True, kind, seconds, f"the probe exited in {seconds} s")


_MISSING = object()


def _cached(path: Path, key: dict, field: str) -> object:
    """A measurement stored under `key` in `path`, or _MISSING (absent, stale or unreadable)."""
    try:
        cached = json.loads(path.read_text())
        if cached.get("key") == key:
            return cached[field]
    except (OSError, ValueError, KeyError, AttributeError):
        pass
    return _MISSING


def _cache(path: Path, key: dict, field: str, value: object) -> None:
    BUILD.mkdir(exist_ok=True)
    path.write_text(json.dumps({"key": key, field: value}, indent=1) + "\n")


def native_kvm(refresh: bool = False) -> NativeKvm:
    memvisor = Path(os.environ.get("MEMVISOR_BIN", BUILD / "memvisor"))
    key = {"schema": 1, "boot_id": _boot_id(),
           "memvisor_mtime": memvisor.stat().st_mtime if memvisor.exists() else None}
    cached = _MISSING if refresh else _cached(CACHE, key, "native")
    if isinstance(cached, dict):
        try:
            return NativeKvm(**cached)
        except TypeError:
            pass
    n = measure_native(memvisor)
    if key["memvisor_mtime"] is not None:
        _cache(CACHE, key, "native", asdict(n))
    return n


def measure_native_linux(memvisor: Path) -> str | None:
    """Why this KVM cannot run Debian's kernel at all, or None. Only a KVM that cannot execute
    it counts (KVM's instruction emulator giving up: what PVM does); any other failure is
    memvisor's or the guest's, for the Linux cases themselves to report, so it is None."""
    kernel, initramfs = LINUX_DIR / "vmlinux", LINUX_DIR / "initramfs.cpio.gz"
    if not kernel.exists() or not initramfs.exists():
        return f"cannot try: {kernel} or {initramfs} is not built (make linux-guest)"
    argv = [str(memvisor), "--memory", "size=512M", "--kernel", str(kernel), "--initramfs",
            str(initramfs), "--serial", "tty", "--cmdline",
            "console=ttyS0 panic=-1 memtest=off end=poweroff"]
    try:
        p = subprocess.run(argv, capture_output=True, text=True, timeout=180,
                           stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        return None
    internal = [ln for ln in p.stderr.splitlines() if "KVM internal error" in ln]
    if p.returncode == 2 and internal:
        return f"KVM could not execute Debian's kernel: {internal[0].strip()}"
    return None


def native_linux(refresh: bool = False) -> str | None:
    """Why the Linux guest cannot run on this machine's KVM, or None when it can."""
    memvisor = Path(os.environ.get("MEMVISOR_BIN", BUILD / "memvisor"))
    n = native_kvm()
    if not n.usable:
        return f"KVM here is not usable: {n.detail}"
    stamp = [str(p.stat().st_mtime) if p.exists() else None
             for p in (memvisor, LINUX_DIR / "vmlinux", LINUX_DIR / "initramfs.cpio.gz")]
    key = {"schema": 1, "boot_id": _boot_id(), "stamp": stamp}
    cached = _MISSING if refresh else _cached(LINUX_CACHE, key, "why_not")
    if isinstance(cached, str):
        return cached
    why_not = measure_native_linux(memvisor)
    if why_not:     # a verdict about this KVM; anything else is tried again next time
        _cache(LINUX_CACHE, key, "why_not", why_not)
    return why_not


def testhost_probe_s() -> float:
    """What one probe case costs in the test host: the last run's median, else the default."""
    try:
        return float(json.loads(TESTHOST_CASES.read_text())["probe_case_s"])
    except (OSError, ValueError, KeyError, TypeError):
        return TESTHOST_PROBE_S


def record_testhost(seconds: list[float]) -> None:
    """Remember the median probe-case time of a test-host run, for the next decision."""
    if len(seconds) >= 5:
        BUILD.mkdir(exist_ok=True)
        TESTHOST_CASES.write_text(json.dumps(
            {"probe_case_s": round(statistics.median(seconds), 2), "cases": len(seconds)}) + "\n")


def requested() -> str:
    v = os.environ.get("VENUE", "") or "auto"
    if v not in VENUES:
        raise ValueError(f"VENUE={v}: not one of {', '.join(VENUES)}")
    return v


def decide(want: str | None = None) -> Decision:
    want = want or requested()
    th = testhost_probe_s()
    if want == "testhost":
        return Decision("testhost", want, "asked for", None, th)
    n = native_kvm()
    if want == "native":
        if not n.usable:
            return Decision("native", want, f"asked for, but KVM here is not usable: {n.detail}",
                            n, th)
        return Decision("native", want, f"asked for; {n.kind} KVM, {n.detail}", n, th)
    if not n.usable:
        return Decision("testhost", want, f"no usable KVM here ({n.kind}: {n.detail})", n, th)
    assert n.probe_s is not None
    if n.probe_s > th:
        return Decision("testhost", want,
                        f"{n.kind} KVM works here but is slower: the probe took {n.probe_s} s "
                        f"natively against {th} s per probe case in the test host", n, th)
    return Decision("native", want, f"{n.kind} KVM works here and is faster: the probe took "
                                    f"{n.probe_s} s natively against {th} s in the test host",
                    n, th)


def main(argv: list[str]) -> int:
    try:
        d = decide()
    except ValueError as e:
        print(f"venue: {e}", file=sys.stderr)
        return 2
    if "--decide" in argv:
        print(d.line(), file=sys.stderr)
        return 0 if d.venue == "native" else 1
    print(d.line())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
