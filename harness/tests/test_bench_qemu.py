"""bench/qemu.py: every backing under memvisor and QEMU in the same batch (issue 12).

The planning (which backings get QEMU cases, their command lines, NotApplicable -> a reason)
and the figures on canned results (times and messages of a native run) are checked without
running anything; one backing is then run natively under both VMMs (a few seconds each; never
the test host). Never a timing assertion.
"""
from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

TOP = Path(__file__).resolve().parents[2]
if str(TOP) not in sys.path:
    sys.path.append(str(TOP))

from bench import backings, guest, qemu, results  # noqa: E402
# pytest puts harness/tests on the path: the canned fault report and smaps of test_bench.py
from test_bench import FAULT_REPORT, SMAPS as TB_SMAPS  # noqa: E402
from memvisor.optionspec import Backing  # noqa: E402
from memvisor.qemuargs import NotApplicable  # noqa: E402

SMALL = guest.Params(repeat=2, fault_size=4 << 20, boot_size=64 << 20)


def _by_name(cases: list[dict]) -> dict[str, dict]:
    return {c["name"]: c for c in cases}


def _value(argv: list[str], flag: str) -> str:
    return argv[argv.index(flag) + 1]


def test_every_backing_gets_qemu_cases_next_to_memvisors() -> None:
    base = guest.cases(SMALL)
    cases = qemu.batch(base, SMALL)
    names = [c["name"] for c in cases]
    # guest.py's own cases are all still there, in their order
    assert [n for n in names if not n.startswith("vm")] == [c["name"] for c in base]
    na = qemu.not_applicable(SMALL)     # none today: each backing is one zone QEMU can write
    for b in (b for b in backings.names() if b not in na):
        for i in range(SMALL.repeat):
            at = names.index(f"fault/{b}/-/{i}")
            assert names[at + 1] == f"vmfault/{b}/qemu/{i}"
            at = names.index(f"boot/{b}/prefault/{i}")
            pair = names[at + 1:at + 3]
            assert sorted(pair) == [f"vmboot/{b}/memvisor/{i}", f"vmboot/{b}/qemu/{i}"]
            # the VMM that goes first alternates between repeats
            assert pair[0].split("/")[2] == qemu.VMMS[i % 2]
        assert names.count(f"vmhold/{b}/memvisor/0") == names.count(f"vmhold/{b}/qemu/0") == 1
    hold = names.index("hold/qemu/-/0")
    holds = names[hold + 1:hold + 1 + 2 * (len(backings.names()) - len(na))]
    assert all(n.startswith("vmhold/") for n in holds)


def test_qemu_gets_the_translation_of_memvisors_own_configuration() -> None:
    cases = _by_name(qemu.batch(guest.cases(SMALL), SMALL))
    na = qemu.not_applicable(SMALL)
    for b in (b for b in backings.all_backings() if b.name not in na):
        cfg = guest.fault_config(b, SMALL)
        mv = cases[f"fault/{b.name}/-/0"]["argv"]
        assert mv[-len(cfg.ch_args()):] == cfg.ch_args()       # memvisor runs this config
        argv = cases[f"vmfault/{b.name}/qemu/0"]["argv"]
        assert argv[:len(guest.FAULT_WRAP)] == guest.FAULT_WRAP  # pinned like memvisor's
        q = argv[len(guest.FAULT_WRAP):]
        assert q[0] == "qemu-system-x86_64"
        assert (_value(q, "-accel"), _value(q, "-cpu")) == ("kvm", "host,+invtsc")
        assert "q35" in q and "isa-debug-exit,iobase=0xf4,iosize=0x04" in q
        assert (_value(q, "-kernel"), _value(q, "-append")) == (str(guest.FAULT), "size=4M")
        assert q[-len(qemu.translated(cfg)):] == qemu.translated(cfg)
        ram = backings.guest_size(b, 2 * SMALL.fault_size + 64 * guest.MiB)
        backend = _value(q, "-object")
        assert f"size={ram >> 20}M" in backend or f"size={ram >> 30}G" in backend, backend
        boot = cases[f"vmboot/{b.name}/qemu/1"]
        assert _value(boot["argv"], "-cpu") == "host" and boot["stamp_lines"]
        assert cases[f"vmboot/{b.name}/memvisor/1"]["argv"][1:3] == ["--serial", "tty"]
        assert _value(cases[f"vmhold/{b.name}/qemu/0"]["argv"], "-append") == "memtest=off hold=1"
    # the backends are the backings' own: a few that differ in kind
    q = {b: _value(cases[f"vmfault/{b}/qemu/0"]["argv"], "-object")
         for b in ("anonymous", "shmem", "file_shared", "hugetlb_2m")}
    assert q["anonymous"].startswith("memory-backend-ram,")
    assert q["shmem"].startswith("memory-backend-memfd,") and "share=on" in q["shmem"]
    assert f"mem-path={guest.ZONE_DIR}" in q["file_shared"] and "share=on" in q["file_shared"]
    assert "hugetlb=on" in q["hugetlb_2m"] and "hugetlbsize=2M" in q["hugetlb_2m"]


def test_no_qemu_runs_no_comparison_case_and_says_why() -> None:
    p = guest.Params(repeat=1, qemu=False, only=["anonymous", "file"])
    base = guest.cases(p)
    assert qemu.batch(base, p) == base
    figs, skipped = qemu.figures([], p)
    assert figs == {}
    assert {k for k in skipped} == {f"{part}.{b}.qemu" for part in ("guest", "boot", "vmm")
                                    for b in ("anonymous", "file")}
    assert all("--no-qemu" in v for v in skipped.values())


def test_a_backing_qemu_cannot_express_is_skipped_with_the_reason(
        monkeypatch: pytest.MonkeyPatch) -> None:
    odd = Backing("odd", (("thp", "maybe"),), 0, "private", "not CH's grammar")
    assert isinstance(qemu.translated(guest.fault_config(odd, SMALL)), NotApplicable)
    real = backings.all_backings()
    monkeypatch.setattr(backings, "all_backings", lambda: real + (odd,))
    p = guest.Params(repeat=1, only=["anonymous", "odd"])
    names = [c["name"] for c in qemu.batch(guest.cases(p), p)]
    assert "fault/odd/-/0" in names and not any(n.startswith("vm") and "/odd/" in n
                                                for n in names)
    assert "vmfault/anonymous/qemu/0" in names
    with pytest.raises(ValueError, match="ch-syntax"):
        qemu.qemu_argv(guest.fault_config(odd, p))
    _, skipped = qemu.figures([], p)
    for part in ("guest", "boot", "vmm"):
        assert skipped[f"{part}.odd.qemu"].startswith("QEMU cannot express this backing: ch-syntax")
        assert f"{part}.anonymous.qemu" not in skipped


# The fault guest's report is the same under both VMMs (test_bench.py's canned one); QEMU's
# 4 KiB first touch is made dearer, as in a native run on PVM (15.7 µs against 5.0 µs).
MEMVISOR_FAULT = FAULT_REPORT
QEMU_FAULT = FAULT_REPORT.replace("ns_avg=5000.500", "ns_avg=15687.057")
FAULT_HOST = "fault-host: thp=madvise numa_balancing=0 cpu=0\n"
NO_POOL = "qemu-system-x86_64: unable to map backing store for guest RAM: Cannot allocate memory\n"
PROBE_OK = "memvisor-probe 1\ncmdline value=\"memtest=off\"\nSUMMARY: ok pass=3 skip=7\n"
ZONE = "memvisor: zone mem0 backing=shmem host=0x7f0000000000 size=134217728 page_size=4096\n"
# test_bench.py's smaps with its guest RAM a memfd, as QEMU's of a shared backing is: not the
# VMM's own memory either.
SMAPS = TB_SMAPS.replace("7f0008000000 rw-p 00000000 00:00 0\n",
                         "7f0008000000 rw-s 00000000 00:01 7    /memfd:mem0 (deleted)\n")
assert "/memfd:" in SMAPS


def test_figures_and_ratios_on_captured_results() -> None:
    p = guest.Params(repeat=1, only=["shmem", "hugetlb_2m"])
    canned = [
        {"name": "fault/shmem/-/0", "rc": 0, "stdout": MEMVISOR_FAULT, "stderr": FAULT_HOST},
        {"name": "vmfault/shmem/qemu/0", "rc": 1, "stdout": QEMU_FAULT, "stderr": FAULT_HOST},
        {"name": "vmboot/shmem/memvisor/0", "rc": 0, "stdout": PROBE_OK, "stderr": "",
         "eof_s": 0.242549, "seconds": 0.301},
        {"name": "vmboot/shmem/qemu/0", "rc": 1, "stdout": PROBE_OK, "stderr": "",
         "eof_s": 3.059304, "seconds": 3.113},
        {"name": "vmhold/shmem/memvisor/0", "rc": 143, "stdout": PROBE_OK, "stderr": ZONE,
         "during": {"smaps": SMAPS}},
        {"name": "vmhold/shmem/qemu/0", "rc": 0, "stdout": PROBE_OK, "stderr": "",
         "during": {"smaps": SMAPS}},
        {"name": "vmfault/hugetlb_2m/qemu/0", "rc": 1, "stdout": "",
         "stderr": FAULT_HOST + NO_POOL},
        # QEMU's own failure exits 1 like the guest's code 0: only the report tells them apart
        {"name": "vmboot/hugetlb_2m/qemu/0", "rc": 1, "stdout": "", "stderr": NO_POOL,
         "eof_s": 0.2, "seconds": 0.213},
        {"name": "vmboot/hugetlb_2m/memvisor/0", "rc": 1, "stdout": "", "seconds": 0.03,
         "stderr": "memvisor: --memory: needs 32 free 2M huge pages, the host has 0\n",
         "eof_s": 0.02},
        {"name": "vmhold/hugetlb_2m/qemu/0", "rc": 1, "stdout": "", "stderr": NO_POOL},
        {"name": "vmhold/hugetlb_2m/memvisor/0", "rc": 0, "stdout": "", "stderr": "",
         "lost": "test host froze"},
    ]
    figs, skipped = qemu.figures(canned, p)
    gf, _, _ = guest.figures(canned, p)
    both = {**gf, **figs}
    ratios = qemu.ratios(both)
    assert figs["guest.shmem.qemu.fault_4k_first"]["samples"] == [15687.057]
    assert figs["guest.shmem.qemu.fault_2m_first"]["per_touch"] == "ok"
    assert figs["guest.shmem.qemu.timer_ns"]["median"] == 2500.0
    assert figs["guest.shmem.qemu.fault_4k_first"]["thp"] == "madvise"
    assert ratios["guest.shmem.memvisor_over_qemu.fault_4k_first"]["value"] == \
        pytest.approx(5000.5 / 15687.057)
    assert ratios["guest.shmem.memvisor_over_qemu.fault_4k_second"]["value"] == 1.0
    # part 2's rules hold for QEMU's report too: a phase that was mostly timer reads
    assert "89%" in skipped["guest.shmem.qemu.fault_2m_second"]
    assert "guest.shmem.memvisor_over_qemu.fault_2m_second" not in ratios
    assert figs["boot.shmem.memvisor.process_ms"]["median"] == pytest.approx(242.549)
    assert figs["boot.shmem.qemu.process_ms"]["median"] == pytest.approx(3059.304)
    assert ratios["boot.shmem.memvisor_over_qemu.process"]["value"] == \
        pytest.approx(242.549 / 3059.304)
    # both VMMs' RSS leaves the guest RAM out: memvisor's by its zone line, QEMU's memfd
    assert figs["vmm.shmem.memvisor.rss_kb"]["median"] == figs["vmm.shmem.qemu.rss_kb"]["median"] \
        == 1024
    assert figs["vmm.shmem.qemu.rss_kb"]["guest_ram_rss_kb"] == 65536
    assert ratios["vmm.shmem.memvisor_over_qemu.rss"]["value"] == 1.0
    # failures: a reason each, no figure
    assert "unable to map backing store" in skipped["guest.hugetlb_2m.qemu"]
    assert "qemu exited 1" in skipped["boot.hugetlb_2m.qemu"]
    assert "huge pages" in skipped["boot.hugetlb_2m.memvisor"]
    assert "unable to map backing store" in skipped["vmm.hugetlb_2m.qemu"]
    assert "test host froze" in skipped["vmm.hugetlb_2m.memvisor"]
    assert not any(n.startswith(("guest.hugetlb_2m", "boot.hugetlb_2m", "vmm.hugetlb_2m"))
                   for n in figs)
    assert not any(".hugetlb_2m." in n for n in ratios)
    rows = results.qemu_rows({"backings": backings.names(), "figures": both, "ratios": ratios})
    assert len(rows) == 4 and rows[-1].split()[0] == "shmem", rows


def test_qemu_status_that_is_not_the_guests_is_a_failure() -> None:
    p = guest.Params(repeat=1, only=["anonymous"])
    # status 0: QEMU ended on a signal; 3: the guest wrote code 1 (a failed check)
    canned = [{"name": f"vmboot/anonymous/qemu/{i}", "rc": rc, "stdout": PROBE_OK, "stderr": "",
               "eof_s": 1.0, "seconds": 1.0} for i, rc in enumerate((0, 3))]
    figs, skipped = qemu.figures(canned, p)
    assert figs == {} and "qemu exited" in skipped["boot.anonymous.qemu"]


def _native_ready() -> str | None:
    if not (guest.MEMVISOR.exists() and guest.FAULT.exists() and guest.PROBE.exists()):
        return "build/memvisor or the guests missing: run `make` first"
    if shutil.which("qemu-system-x86_64") is None:
        return "qemu-system-x86_64 not installed"
    from memvisor import venue
    kvm = venue.native_kvm()
    return None if kvm.usable else f"no usable KVM here: {kvm.detail}"


def test_one_backing_under_both_vmms_natively(tmp_path: Path) -> None:
    """The real thing for `anonymous`, natively (never the test host): ~15 s on PVM."""
    why = _native_ready()
    if why:
        pytest.skip(why)
    from memvisor.runner import run_cases
    p = guest.Params(repeat=1, fault_size=4 << 20, boot_size=64 << 20, only=["anonymous"],
                     exchange=tmp_path)
    keep = ("fault/anonymous/-/0", "vmfault/", "vmboot/", "vmhold/")
    cases = [c for c in qemu.batch(guest.cases(p), p) if c["name"].startswith(keep)]
    assert len(cases) == 6
    res = run_cases(cases, "native")
    gf, _, gs = guest.figures(res, p)
    figs, skipped = qemu.figures(res, p)
    ratios = qemu.ratios({**gf, **figs})
    assert not skipped, skipped
    for name in ("guest.anonymous.qemu.fault_4k_first", "guest.anonymous.qemu.timer_ns",
                 "boot.anonymous.memvisor.process_ms", "boot.anonymous.qemu.process_ms",
                 "vmm.anonymous.memvisor.rss_kb", "vmm.anonymous.qemu.rss_kb"):
        assert figs[name]["median"] > 0, name
    for name in ("guest.anonymous.memvisor_over_qemu.fault_4k_first",
                 "boot.anonymous.memvisor_over_qemu.process",
                 "vmm.anonymous.memvisor_over_qemu.rss"):
        assert ratios[name]["value"] > 0, name
    # each process time is within its case's own wall time (the runner's coarser clock)
    secs = {r["name"]: r["seconds"] for r in res}
    for v in qemu.VMMS:
        wall_ms = secs[f"vmboot/anonymous/{v}/0"] * 1000
        assert figs[f"boot.anonymous.{v}.process_ms"]["median"] <= wall_ms
