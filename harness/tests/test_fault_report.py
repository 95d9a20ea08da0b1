"""The fault guest's report (guests/README.md, "fault"): the parser on canned lines, both formats
and malformed ones, and the arithmetic of a real report against the rules the README states.

The real report comes from build/guests/fault.elf under memvisor on /dev/kvm when it can be
opened, and under QEMU (TCG) when it is installed; a venue that is missing is skipped. Nothing
here asserts a timing: only how the figures of one report relate to each other.
"""
from __future__ import annotations

import math
import shutil
import subprocess
from pathlib import Path

import pytest

from memvisor.report import FaultPhase, FaultReport, ReportError, parse_fault
from memvisor.venue import kvm_error

TOP = Path(__file__).resolve().parents[2]
MEMVISOR = TOP / "build" / "memvisor"
FAULT = TOP / "build" / "guests" / "fault.elf"
MiB = 1 << 20

HEAD = """memvisor-fault 1
cmdline value="size=4M"
tsc khz=2000000 source=cpuid-0x40000010 entry=1
fault_region name=a stride=0x1000 base=0x200000 size=0x400000
fault_region name=b stride=0x200000 base=0x600000 size=0x400000
"""
TIMER = "timer source=rdtsc pairs=64 cycles=5000 min=4800 max=6000 loop=64 loop_avg=5100 ns=2500.000\n"
FLOOR = "touch_floor runs=8 touches=512 avg=7000 ns_avg=3500.000\n"
# 4 KiB first touch in batches; 2 MiB first touch read after every touch, cheap enough to say so
BATCHED = ("fault stride=0x1000 touch=1 base=0x200000 size=0x400000 pages=1024 cycles=10561024 "
           "avg=10001 ns_avg=5000.500 reads=65 timer_pct=3 per_touch=unreliable probe=16 "
           "probe_avg=10000 batch=16 batches=63 batch_min=9000 batch_med=10000 batch_max=15000")
PER_TOUCH = ("fault stride=0x200000 touch=1 base=0x600000 size=0x400000 pages=2 cycles=370000 "
             "min=185000 avg=180000 max=185000 ns_avg=90000.000 reads=3 timer_pct=2 per_touch=ok "
             "probe=1 probe_avg=175000 batch=1 batches=1 batch_min=185000 batch_med=185000 "
             "batch_max=185000")
OLD = ("fault stride=0x1000 touch=2 base=0x200000 size=0x400000 pages=1024 cycles=30720000 "
       "min=20000 avg=30000 max=900000 ns_avg=15000.000")


def report(*lines: str, timer: bool = True) -> str:
    return HEAD + (TIMER + FLOOR if timer else "") + "".join(ln + "\n" for ln in lines) + "SUMMARY: ok\n"


def test_batch_timed_report() -> None:
    r = parse_fault(report(BATCHED, PER_TOUCH))
    assert r.timer is not None and (r.timer.cycles, r.timer.min, r.timer.max) == (5000, 4800, 6000)
    assert r.timer.loop_avg == 5100 and r.timer.ns == 2500.0
    assert r.floor == (7000, 3500.0)
    a = r.phase(0x1000, 1)
    assert a.batch_timed and a.per_touch == "unreliable" and a.min is None and a.max is None
    assert (a.avg, a.ns_avg, a.reads, a.timer_pct, a.probe, a.probe_avg) == (10001, 5000.5, 65, 3, 16, 10000)
    assert a.batches is not None and (a.batches.size, a.batches.count) == (16, 63)
    assert (a.batches.min, a.batches.median, a.batches.max) == (9000, 10000, 15000)
    b = r.phase(0x200000, 1)
    assert b.per_touch == "ok" and (b.min, b.avg, b.max) == (185000, 180000, 185000)


def test_unknown_fields_and_a_phase_without_batches_are_fine() -> None:
    only_probe = ("fault stride=0x200000 touch=2 base=0x600000 size=0x200000 pages=1 cycles=9000 "
                  "avg=4000 ns_avg=unknown reads=2 timer_pct=55 per_touch=unreliable probe=1 "
                  "probe_avg=4000 future=1")
    ph = parse_fault(report(only_probe)).phases[0]
    assert ph.batches is None and ph.ns_avg is None and ph.timer_pct == 55


def test_first_format_is_still_read_but_marked() -> None:
    r = parse_fault(report(OLD, timer=False))
    assert r.timer is None and r.floor is None
    ph = r.phases[0]
    assert not ph.batch_timed and ph.per_touch is None and (ph.min, ph.avg, ph.max) == (20000, 30000, 900000)


@pytest.mark.parametrize("text", [
    report(BATCHED.replace("per_touch=unreliable", "per_touch=maybe")),
    report(BATCHED.replace("per_touch=unreliable", "per_touch=unreliable min=1")),   # min without ok
    report(PER_TOUCH.replace(" max=185000", "")),                                  # ok without max
    report(PER_TOUCH.replace("per_touch=ok", "per_touch=unreliable")),             # min/max with unreliable
    report(BATCHED.replace("reads=65", "reads=1")),                                # no interval
    report(BATCHED.replace("timer_pct=3", "timer_pct=101")),
    report(BATCHED.replace("timer_pct=3 ", "")),                                   # a field it always has
    report(BATCHED.replace("avg=10001", "avg=20000")),                             # avg x pages > cycles
    report(BATCHED.replace("batch_med=10000", "batch_med=20000")),                 # median above max
    report(BATCHED.replace(" batch_min=9000", "")),                                # half the batch fields
    report(BATCHED.replace("ns_avg=5000.500", "ns_avg=5000")),                     # not a fraction
    report(BATCHED.replace("ns_avg=5000.500", "ns_avg=fast")),
    report(BATCHED, timer=False),                                                  # batch-timed, no timer
    report(OLD),                                                                   # timer, per-touch line
    report(BATCHED, OLD),                                                          # the two formats mixed
    report(BATCHED).replace("cycles=5000 min=4800", "cycles=5000 min=5001"),        # timer min > median
    report(BATCHED).replace(" loop_avg=5100", ""),
    report(BATCHED).replace("ns=2500.000", "ns=2500"),
], ids=["per_touch_value", "min_unreliable", "ok_no_max", "minmax_unreliable", "reads_1",
        "pct_over_100", "no_timer_pct", "avg_too_big", "batch_order", "batch_partial",
        "ns_integer", "ns_word", "no_timer_line", "old_line_with_timer", "mixed", "timer_order",
        "timer_no_loop_avg", "timer_ns_integer"])
def test_malformed_reports_are_rejected(text: str) -> None:
    with pytest.raises(ReportError):
        parse_fault(text)


# ---- a real report ----

def _run(venue: str, size: int) -> FaultReport:
    if not FAULT.exists():
        pytest.skip("build/guests/fault.elf missing: run `make` first")
    if venue == "kvm":
        if not (MEMVISOR.exists() and kvm_error() is None):
            pytest.skip("no usable /dev/kvm or build/memvisor")
        cmd = [str(MEMVISOR), "--serial", "tty", "--cpus", "boot=1", "--memory",
               f"size={2 * size // MiB + 64}M", "--kernel", str(FAULT), "--cmdline", f"size={size // MiB}M"]
    else:
        qemu = shutil.which("qemu-system-x86_64")
        if qemu is None:
            pytest.skip("qemu-system-x86_64 not installed (ci/deps.sh)")
        cmd = [qemu, "-machine", "q35", "-cpu", "max", "-m", f"{2 * size // MiB + 64}M",
               "-nodefaults", "-display", "none", "-serial", "stdio", "-no-reboot",
               "-device", "isa-debug-exit,iobase=0xf4,iosize=0x04", "-kernel", str(FAULT),
               "-append", f"size={size // MiB}M"]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
    r = parse_fault(p.stdout)     # a missing SUMMARY, a malformed line: ReportError
    assert r.ok, p.stdout + p.stderr
    return r


def _check_phase(ph: FaultPhase, t: int, khz: int | None) -> None:
    assert ph.batch_timed and ph.reads is not None and ph.timer_pct is not None
    assert ph.probe == math.ceil(ph.pages / 64)
    work = max(0, ph.cycles - (ph.reads - 1) * t)
    assert ph.avg == work // ph.pages
    assert ph.timer_pct == (ph.cycles - work) * 100 // ph.cycles
    if khz is None:
        assert ph.ns_avg is None
    else:
        assert ph.ns_avg == pytest.approx(work * 10**9 // khz // ph.pages / 1000, abs=1e-9)
    rest = ph.pages - (ph.probe or 0)
    if rest == 0:
        assert ph.batches is None and ph.reads == 2
        return
    assert ph.batches is not None and 1 <= ph.batches.count <= 63 and ph.batches.size >= (ph.probe or 0)
    assert ph.batches.count == math.ceil(rest / ph.batches.size)
    # one read per batch, or one per touch when the probe showed the timer cheap next to a touch
    per_touch_timed = ph.probe_avg is not None and ph.probe_avg > 10 * t
    assert ph.reads == 2 + (rest if per_touch_timed else ph.batches.count)
    if ph.per_touch == "ok":
        assert per_touch_timed and ph.avg > 10 * t
        assert ph.min is not None and ph.max is not None and ph.min <= ph.max
    else:
        assert ph.per_touch == "unreliable" and ph.min is None and ph.max is None
        assert not per_touch_timed or ph.avg <= 10 * t


@pytest.mark.parametrize("venue", ["kvm", "qemu"])
def test_real_report_follows_the_timing_rules(venue: str) -> None:
    size = 8 * MiB
    r = _run(venue, size)
    assert r.timer is not None and r.timer.min <= r.timer.cycles <= r.timer.max
    assert (r.timer.ns is None) == (r.tsc_khz is None) and r.floor is not None
    assert [(p.stride, p.touch) for p in r.phases] == [(4096, 1), (4096, 2), (2 * MiB, 1), (2 * MiB, 2)]
    for ph in r.phases:
        assert ph.pages == size // ph.stride
        _check_phase(ph, r.timer.cycles, r.tsc_khz)
