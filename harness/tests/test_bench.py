"""bench/: the benchmark code runs and writes well-formed results; bench-check flags regressions.

Never a timing assertion (DEVELOPERS.md: benchmarks are never timed tests). The smoke run is the
real thing on a tiny size with ONE test-host boot: host part for every backing, the test-host
part for three backings that cover each way of building the command line (--memory options, a
file zone with PATH replaced, hugetlb), QEMU left out (each QEMU start costs ~7 s there); the
QEMU parsing is checked on canned output below. Part 6 (Linux boot, a test host of its own) is
left out: harness/tests/test_bench_linux.py.
"""
from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

TOP = Path(__file__).resolve().parents[2]
if str(TOP) not in sys.path:
    sys.path.append(str(TOP))

from bench import backings, check, guest, resize, results, stats  # noqa: E402

PYTHON = "/usr/bin/python3"
SMOKE_GUEST = "anonymous,file_shared,hugetlb_2m"


def bench(*args: str, timeout: int = 300) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(TOP / "harness"))
    return subprocess.run([PYTHON, "-m", "bench", *args], cwd=TOP, env=env, capture_output=True,
                          text=True, timeout=timeout)


@pytest.fixture(scope="module")
def smoke(tmp_path_factory: pytest.TempPathFactory) -> tuple[subprocess.CompletedProcess, Path]:
    out = tmp_path_factory.mktemp("bench")
    # Part 5 adds 7 cases of a few TCG seconds each in the test host (128 MiB steps).
    r = bench("run", "--size", "16M", "--repeat", "1", "--fault-size", "4M", "--boot-size", "64M",
              "--resize-size", "128M", "--no-qemu", "--guest-only", SMOKE_GUEST, "--out", str(out),
              "--parts", "host,guest",
              timeout=900)
    return r, out


@pytest.fixture(scope="module")
def smoke_results(smoke: tuple[subprocess.CompletedProcess, Path]) -> dict:
    r, out = smoke
    assert r.returncode == 0, f"bench run failed:\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}"
    return json.loads((out / "results.json").read_text())


def test_smoke_results_well_formed(smoke_results: dict) -> None:
    assert results.problems(smoke_results) == []


def test_every_backing_measured_or_skipped_with_reason(smoke_results: dict) -> None:
    assert smoke_results["backings"] == backings.names()
    for b in backings.names():
        for part in results.PARTS:
            measured = any(n.startswith(f"{part}.{b}.") for n in smoke_results["figures"])
            assert measured or smoke_results["skipped"].get(f"{part}.{b}", "").strip(), (part, b)


def test_smoke_measured_what_every_host_can(smoke_results: dict) -> None:
    figs = smoke_results["figures"]
    for mode in ("first_touch", "prefault_serial", "prefault_parallel"):
        assert figs[f"host.anonymous.{mode}.ns_per_page"]["median"] > 0
        assert smoke_results["ratios"][f"host.anonymous.{mode}.fraction_of_limit"]["value"] > 0
    assert figs["host.limit.memset_1t"]["unit"] == "GB/s"
    # the test-host part ran for the selected backings and only for them
    for b in SMOKE_GUEST.split(","):
        assert f"guest.{b}.fault_4k_first" in figs, smoke_results["skipped"].get(f"guest.{b}")
        assert f"boot.{b}.entry_ms" in figs and f"boot.{b}.prefault.exit_ms" in figs
    assert smoke_results["skipped"]["guest.anonymous_thp"].startswith("not selected")
    assert "boot.memvisor.process_ms" in figs and "vmm.memvisor.rss_kb" in figs
    assert smoke_results["skipped"]["boot.qemu"]
    # part 5: each selected kind timed or skipped with memvisor's reason (hugetlb: its pool)
    for kind in resize.kinds(guest.Params(only=SMOKE_GUEST.split(","))):
        assert f"resize.{kind}.plug_ms" in figs or smoke_results["skipped"].get(f"resize.{kind}")
    assert figs["resize.anonymous.unplug_rss_drop_mib"]["median"] > 0
    assert "balloon.inflate_mibps" in figs and "vmm.memvisor_all_devices.rss_kb" in figs


def test_smoke_plots_and_table(smoke: tuple[subprocess.CompletedProcess, Path],
                               smoke_results: dict) -> None:
    r, out = smoke
    for png in ("host_fault.png", "guest_fault.png", "boot.png", "resize.png"):
        assert (out / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", png
    assert "1. host populate of 16 MiB" in r.stdout
    assert "anonymous" in r.stdout


def test_malformed_results_are_caught(smoke_results: dict) -> None:
    bad = copy.deepcopy(smoke_results)
    name = next(iter(bad["figures"]))
    bad["figures"][name]["median"] = -1
    del bad["skipped"]["guest.anonymous_thp"]
    found = results.problems(bad)
    assert any(name in p for p in found)
    assert any("guest.anonymous_thp" in p for p in found)


# --- bench-check ------------------------------------------------------------------------------

def _run_with(ratios: dict[str, tuple[float, str]], skipped: dict[str, str] | None = None) -> dict:
    return {"created": "x", "machine": {}, "params": {}, "skipped": skipped or {},
            "ratios": {n: {"value": v, "better": b, "num": "a", "den": "b"}
                       for n, (v, b) in ratios.items()}}


BASE = {"host.anonymous.first_touch.fraction_of_limit": (0.5, "higher"),
        "boot.memvisor_over_qemu.process": (0.2, "lower"),
        "host.hugetlb_1g.first_touch.fraction_of_limit": (0.8, "higher")}


def test_check_passes_an_identical_run() -> None:
    base = check.make_baseline(_run_with(BASE))
    verdicts = check.compare(_run_with(BASE), base)
    assert [v.status for v in verdicts] == ["ok"] * 3
    assert check.report(verdicts)[1]


def test_check_flags_regressions_in_the_worse_direction_only() -> None:
    base = check.make_baseline(_run_with(BASE), tolerance=0.3)
    cur = dict(BASE)
    cur["host.anonymous.first_touch.fraction_of_limit"] = (0.5 * 0.6, "higher")   # -40%
    cur["boot.memvisor_over_qemu.process"] = (0.2 * 0.5, "lower")                # better
    cur["host.hugetlb_1g.first_touch.fraction_of_limit"] = (0.8 * 0.8, "higher")  # -20%: noise
    verdicts = {v.name: v for v in check.compare(_run_with(cur), base)}
    assert verdicts["host.anonymous.first_touch.fraction_of_limit"].status == "regression"
    assert verdicts["boot.memvisor_over_qemu.process"].status == "improved"
    assert verdicts["host.hugetlb_1g.first_touch.fraction_of_limit"].status == "ok"
    text, passed = check.report(list(verdicts.values()))
    assert not passed and "FAILED: host.anonymous.first_touch.fraction_of_limit" in text

    cur["boot.memvisor_over_qemu.process"] = (0.2 * 1.5, "lower")                # +50%
    verdicts = {v.name: v for v in check.compare(_run_with(cur), base)}
    assert verdicts["boot.memvisor_over_qemu.process"].status == "regression"
    # a per-ratio tolerance in the baseline widens just that ratio
    wide = check.make_baseline(_run_with(BASE), 0.3, {"boot.memvisor_over_qemu.process": 0.6})
    verdicts = {v.name: v for v in check.compare(_run_with(cur), wide)}
    assert verdicts["boot.memvisor_over_qemu.process"].status == "ok"


def test_check_missing_ratio_fails_unless_skipped_with_reason() -> None:
    base = check.make_baseline(_run_with(BASE))
    cur = {k: v for k, v in BASE.items() if not k.startswith("host.hugetlb_1g")}
    missing = check.compare(_run_with(cur), base)
    assert [v.name for v in missing if v.status == "missing"] == [
        "host.hugetlb_1g.first_touch.fraction_of_limit"]
    assert not check.report(missing)[1]
    skipped = check.compare(_run_with(cur, {"host.hugetlb_1g": "no 1G pages"}), base)
    assert [v.status for v in skipped if v.name.startswith("host.hugetlb_1g")] == ["skipped"]
    assert check.report(skipped)[1]


def test_check_command_exit_status(smoke_results: dict, tmp_path: Path) -> None:
    res = tmp_path / "results.json"
    res.write_text(json.dumps(smoke_results))
    base = tmp_path / "baseline.json"
    base.write_text(json.dumps(check.make_baseline(smoke_results)))
    ok = bench("check", "--results", str(res), "--baseline", str(base))
    assert ok.returncode == 0, ok.stdout + ok.stderr
    worse = copy.deepcopy(smoke_results)
    name, r = next((n, r) for n, r in worse["ratios"].items() if r["better"] == "higher")
    r["value"] /= 3
    if "paired" in r:   # a paired ratio is its figure's median: doctor both, consistently
        fig = worse["figures"][r["paired"]]
        for k in ("min", "q1", "median", "q3", "max"):
            fig[k] /= 3
        fig["samples"] = [v / 3 for v in fig["samples"]]
        r["value"] = fig["median"]
    res.write_text(json.dumps(worse))
    bad = bench("check", "--results", str(res), "--baseline", str(base))
    assert bad.returncode == 1 and name in bad.stdout


def test_stored_baseline_is_usable() -> None:
    base = check.load(check.BASELINE)
    assert 0 < base["tolerance"] < 1 and base["machine"] and base["created"]
    assert base["ratios"] and all(r["better"] in ("higher", "lower") and r["value"] > 0
                                  for r in base["ratios"].values())
    assert {"size", "repeat", "fault_size", "boot_size"} <= set(base["params"])


# --- command lines and parsers, on canned output ---------------------------------------------

@pytest.mark.parametrize("b", backings.all_backings(), ids=lambda b: b.name)
def test_memvisor_accepts_each_backings_options(b: backings.Backing, tmp_path: Path) -> None:
    """The same options string memvisor is given in the test host: parsed and validated
    natively (--print-layout maps nothing); hugetlb may be refused only for its pool."""
    memvisor, kernel = TOP / "build" / "memvisor", TOP / "build" / "guests" / "fault.elf"
    if not memvisor.exists() or not kernel.exists():
        pytest.skip("build/memvisor or the fault guest missing: run `make` first")
    args = backings.memvisor_args(b, backings.guest_size(b, 64 << 20), str(tmp_path), True)
    assert ("PATH" in dict(b.selectors).values()) == (str(tmp_path) in " ".join(args))
    # --print-layout loads the kernel as a run would (it applies every check without KVM).
    r = subprocess.run([str(memvisor), *args, "--kernel", str(kernel), "--print-layout"],
                       capture_output=True, text=True, timeout=30)
    if b.page_size and r.returncode == 1:
        assert "huge page" in r.stderr or "hugepage_size" in r.stderr, r.stderr
    else:
        assert r.returncode == 0, r.stderr
        assert json.loads(r.stdout)


def test_qemu_command_is_pvh_with_kvm() -> None:
    cmd = guest.qemu_command("memtest=off")
    assert cmd[0] == "qemu-system-x86_64"
    for a, v in (("-accel", "kvm"), ("-kernel", str(guest.PROBE)), ("-append", "memtest=off"),
                 ("-m", "128M"), ("-device", "isa-debug-exit,iobase=0xf4,iosize=4")):
        assert cmd[cmd.index(a) + 1] == v
    cases = guest.cases(guest.Params(repeat=2, qemu=True, only=["anonymous"]))
    names = [c["name"] for c in cases]
    assert names.count("fault/anonymous/-/0") == 1 and "boot/anonymous/prefault/1" in names
    hf = next(c for c in cases if c["name"] == "hyperfine/qemu")
    assert "-i" in hf["argv"] and hf["argv"][-1].startswith(
        f"timeout -s KILL {guest.QEMU_RUN_S} qemu-system-x86_64 -accel kvm")
    assert next(c for c in cases if c["name"] == "hold/qemu/-/0")["hold_marker"] == "SUMMARY"


# A batch-timed report (guests/README.md, "fault"): T = 5000 cycles at 2 GHz; the 2 MiB second
# touch is 89% timer reads, too much for a figure.
FAULT_REPORT = """memvisor-fault 1
cmdline value="size=4M"
tsc khz=2000000 source=cpuid-0x40000010 entry=1
timer source=rdtsc pairs=64 cycles=5000 min=4800 max=6000 loop=64 loop_avg=5100 ns=2500.000
touch_floor runs=8 touches=512 avg=7000 ns_avg=3500.000
fault stride=0x1000 touch=1 base=0x200000 size=0x400000 pages=1024 cycles=10561024 avg=10001 ns_avg=5000.500 reads=65 timer_pct=3 per_touch=unreliable probe=16 probe_avg=10000 batch=16 batches=63 batch_min=9000 batch_med=10000 batch_max=15000
fault stride=0x1000 touch=2 base=0x200000 size=0x400000 pages=1024 cycles=567000 avg=500 ns_avg=250.000 reads=12 timer_pct=9 per_touch=unreliable probe=16 probe_avg=480 batch=105 batches=10 batch_min=490 batch_med=500 batch_max=520
fault stride=0x200000 touch=1 base=0x600000 size=0x400000 pages=2 cycles=370000 min=185000 avg=180000 max=185000 ns_avg=90000.000 reads=3 timer_pct=2 per_touch=ok probe=1 probe_avg=175000 batch=1 batches=1 batch_min=185000 batch_med=185000 batch_max=185000
fault stride=0x200000 touch=2 base=0x600000 size=0x400000 pages=2 cycles=11200 avg=600 ns_avg=300.000 reads=3 timer_pct=89 per_touch=unreliable probe=1 probe_avg=600 batch=84 batches=1 batch_min=600 batch_med=600 batch_max=600
SUMMARY: ok
"""

# The first format: one TSC read per touch, the read's cost inside every figure.
FAULT_REPORT_PER_TOUCH = """memvisor-fault 1
cmdline value="size=4M"
tsc khz=2000000 source=cpuid-0x40000010 entry=1
fault stride=0x1000 touch=1 base=0x200000 size=0x400000 pages=1024 cycles=1 min=1 avg=1 max=1 ns_avg=5000.5
fault stride=0x1000 touch=2 base=0x200000 size=0x400000 pages=1024 cycles=1 min=1 avg=1 max=1 ns_avg=250.0
fault stride=0x200000 touch=1 base=0x600000 size=0x400000 pages=2 cycles=1 min=1 avg=1 max=1 ns_avg=90000.0
fault stride=0x200000 touch=2 base=0x600000 size=0x400000 pages=2 cycles=1 min=1 avg=1 max=1 ns_avg=300.0
SUMMARY: ok
"""

SMAPS = """7f0000000000-7f0008000000 rw-p 00000000 00:00 0
Rss:               65536 kB
Pss:               65536 kB
55d000000000-55d000100000 r-xp 00000000 08:01 42    /usr/bin/vmm
Rss:                1000 kB
Pss:                 500 kB
7ffd00000000-7ffd00021000 rw-p 00000000 00:00 0    [stack]
Rss:                  24 kB
Pss:                  24 kB
"""


def test_parsing_canned_testhost_results(tmp_path: Path) -> None:
    p = guest.Params(repeat=1, exchange=tmp_path)
    # QEMU: one run of four hung and was killed by its bound: counted, not timed.
    for name, secs, codes in (("memvisor", [0.4, 0.5, 0.6], [0] * 3),
                              ("qemu", [6.0, 60.0, 7.0, 8.0], [1, guest.HUNG, 1, 1])):
        (tmp_path / f"hyperfine-{name}.json").write_text(json.dumps(
            {"results": [{"command": name, "times": secs, "exit_codes": codes}]}))
    zone = "memvisor: zone mem0 backing=anonymous_thp host=0x7f0000000000 size=134217728 page_size=4096\n"
    debug = "".join(f"memvisor: debug-port code=0x{c:02x} t_us={t}\n"
                    for c, t in ((1, 150000), (2, 150100), (0xfe, 300000)))
    canned = [
        {"name": "fault/anonymous/-/0", "rc": 0, "stdout": FAULT_REPORT, "stderr": zone + debug},
        {"name": "boot/anonymous/-/0", "rc": 0, "stdout": "", "stderr": debug},
        {"name": "boot/anonymous/prefault/0", "rc": 0, "stdout": "", "stderr": debug},
        {"name": "hyperfine/memvisor", "rc": 0, "stdout": "", "stderr": ""},
        {"name": "hyperfine/qemu", "rc": 0, "stdout": "", "stderr": ""},
        {"name": "hold/memvisor/-/0", "rc": 143, "stdout": "SUMMARY: ok", "stderr": zone,
         "during": {"smaps": SMAPS}},
        {"name": "hold/qemu/-/0", "rc": -15, "stdout": "SUMMARY: ok", "stderr": "",
         "during": {"smaps": SMAPS}},
        {"name": "fault/shmem/-/0", "rc": 1, "stdout": "", "stderr": "memvisor: --memory: nope\n"},
    ]
    figs, ratios, skipped = guest.figures(canned, p)
    assert figs["guest.anonymous.fault_4k_first"]["median"] == 5000.5
    assert ratios["guest.anonymous.fault_4k.first_over_second"]["value"] == 5000.5 / 250.0
    assert figs["boot.anonymous.entry_ms"]["median"] == 150.0
    assert figs["boot.anonymous.prefault.exit_ms"]["median"] == 300.0
    assert figs["boot.qemu.process_ms"]["median"] == 7000.0
    assert figs["boot.qemu.process_ms"]["n"] == 3 and figs["boot.qemu.process_ms"]["hung_runs"] == 1
    assert ratios["boot.memvisor_over_qemu.process"]["value"] == pytest.approx(500 / 7000)
    assert ratios["boot.anonymous.exit_over_qemu_process"]["value"] == pytest.approx(300 / 7000)
    assert figs["vmm.memvisor.rss_kb"]["median"] == 1024        # guest RAM left out
    assert figs["vmm.qemu.rss_kb"]["median"] == 1024            # the >= 128 MiB anonymous one too
    assert figs["vmm.memvisor.rss_kb"]["guest_ram_rss_kb"] == 65536
    assert "nope" in skipped["guest.shmem"]


def test_native_records_give_paired_fractions() -> None:
    from bench import native
    recs = native.parse_lines("\n".join(json.dumps(r) for r in (
        {"kind": "host", "cpus": 2},
        {"kind": "limit", "name": "memset_1t", "bytes": 4096 * 100, "threads": 1, "ns": [10, 20]},
        {"kind": "populate", "backing": "anonymous", "mode": "first_touch", "bytes": 4096 * 100,
         "page_size": 4096, "threads": 1, "limit_threads": 1, "limit_ns": [10, 40],
         "ns": [100, 200]},
        {"kind": "skip", "backing": "hugetlb_1g", "mode": "*", "reason": "no 1G pages"},
        {"kind": "skip", "backing": "limit", "mode": "kzero_2m", "reason": "no pool"})))
    figs, ratios, skipped, host = native.figures(recs)
    assert figs["host.anonymous.first_touch.ns_per_page"]["samples"] == [1.0, 2.0]
    frac = ratios["host.anonymous.first_touch.fraction_of_limit"]
    assert frac["value"] == pytest.approx((0.1 + 0.2) / 2) and frac["paired"] in figs
    assert skipped == {"host.hugetlb_1g": "no 1G pages", "host.limit.kzero_2m": "no pool"}
    assert host == {"cpus": 2}


def test_fault_figures_are_batch_timed_and_carry_the_timer(tmp_path: Path) -> None:
    p = guest.Params(repeat=1, exchange=tmp_path)
    figs, ratios, skipped = guest.figures(
        [{"name": "fault/anonymous/-/0", "rc": 0, "stdout": FAULT_REPORT, "stderr": ""},
         {"name": "fault/shmem/-/0", "rc": 0, "stdout": FAULT_REPORT_PER_TOUCH, "stderr": ""}], p)
    # the guest's batch-timed ns_avg, timer reads taken out; how much was taken out comes along
    assert figs["guest.anonymous.fault_4k_second"]["samples"] == [250.0]
    assert figs["guest.anonymous.fault_4k_second"]["timer_pct"] == 9
    assert figs["guest.anonymous.fault_4k_second"]["per_touch"] == "unreliable"
    assert figs["guest.anonymous.fault_2m_first"]["per_touch"] == "ok"
    assert figs["guest.anonymous.timer_ns"]["median"] == 2500.0
    assert figs["guest.anonymous.timer_ns"]["cycles"] == 5000
    assert figs["guest.anonymous.touch_floor_ns"]["median"] == 3500.0
    # a phase that was mostly timer reads gives a reason, not a figure
    assert "guest.anonymous.fault_2m_second" not in figs
    assert "89%" in skipped["guest.anonymous.fault_2m_second"]
    assert ratios["guest.anonymous.fault_4k.first_over_second"]["value"] == 5000.5 / 250.0
    # a fault.elf from before batch timing: its per-touch figures include a TSC read each
    assert not any(n.startswith("guest.shmem.") for n in figs)
    assert "timer" in skipped["guest.shmem"]


# --- part 5: resize --------------------------------------------------------------------------

def _status(rss_kb: int, huge_kb: int = 0) -> dict[str, str]:
    return {"status": f"Name:\tmemvisor\nVmRSS:\t{rss_kb} kB\nHugetlbPages:\t{huge_kb} kB\n"}


def _step(name: str, seconds: float, before: int, after: int, status: int = 204,
          huge: tuple[int, int] = (0, 0)) -> dict:
    return {"name": name, "status": status, "body": "", "matched": True, "match_seconds": seconds,
            "seconds": seconds + 0.5, "sample_before": _status(before, huge[0]),
            "sample_at_match": _status(after, huge[1])}


def test_resize_cases_are_accepted_by_memvisor() -> None:
    """Every resize case's command line parses and validates natively (--print-layout); a
    hugetlb case may be refused only for its pool. Virtio-mem of a file zone is resized per zone."""
    memvisor = TOP / "build" / "memvisor"
    if not memvisor.exists():
        pytest.skip("build/memvisor missing: run `make` first")
    p = guest.Params(repeat=1)
    cases = resize.cases(p)
    names = [c["name"] for c in cases]
    assert [n.split("/")[1] for n in names if n.startswith("resize/")] == resize.kinds(p)
    assert "balloon/anonymous/-/0" in names and "hold/memvisor_all_devices/-/0" in names
    for c in cases:
        assert c["api_socket"] in c["argv"][-1] or f"path={c['api_socket']}" in c["argv"]
        argv = [a for a in c["argv"][4:] if a != "--api-socket" and not a.startswith("path=")]
        r = subprocess.run([str(memvisor), *argv, "--print-layout"], capture_output=True,
                           text=True, timeout=30)
        if "hugetlb" in c["name"] and r.returncode == 1:
            assert "huge page" in r.stderr, r.stderr
        else:
            assert r.returncode == 0, (c["name"], r.stderr)
    fs = next(c for c in cases if c["name"] == "resize/file_shared/-/0")
    assert fs["steps"][0]["call"][1] == "vm.resize-zone" and fs["steps"][0]["call"][2]["id"] == "mem0"
    assert next(c for c in cases if c["name"] == "resize/acpi/-/0")["steps"][0]["wait"].startswith("^dimm")


def test_resize_figures_ratios_and_table_on_canned_results() -> None:
    s = 256 << 20
    p = guest.Params(repeat=1, only=["anonymous", "hugetlb_2m"], resize_size=s)
    mib = 1024
    canned = [
        {"name": "resize/anonymous/-/0", "rc": 143, "stdout": "", "stderr": "",
         "steps": [_step("plug", 0.5, 10 * mib, 266 * mib), _step("unplug", 0.02, 266 * mib, 10 * mib)]},
        # hugetlb: the pages are in HugetlbPages, not VmRSS; this unplug gave nothing back
        {"name": "resize/hugetlb_2m/-/0", "rc": 143, "stdout": "", "stderr": "",
         "steps": [_step("plug", 0.25, 4 * mib, 4 * mib, huge=(0, 256 * mib)),
                   _step("unplug", 0.01, 4 * mib, 4 * mib, huge=(256 * mib, 256 * mib))]},
        {"name": "resize/acpi/-/0", "rc": 143, "stdout": "", "stderr": "",
         "steps": [_step("plug", 1.0, 10 * mib, 10 * mib, status=400)]},
        {"name": "balloon/anonymous/-/0", "rc": 143, "stdout": "", "stderr": "",
         "steps": [_step("inflate", 2.0, 520 * mib, 264 * mib)]},
    ]
    figs, skipped = resize.figures(canned, p)
    assert figs["resize.anonymous.plug_ms"]["samples"] == [500.0]
    assert figs["resize.anonymous.plug_mibps"]["median"] == 512.0
    assert figs["resize.anonymous.unplug_mibps"]["median"] == pytest.approx(256 / 0.02)
    assert figs["resize.anonymous.unplug_rss_drop_mib"]["median"] == 256.0
    assert figs["resize.hugetlb_2m.plug_ms"]["rss_rise_kb"] == 256 * mib
    assert "did not go down" in skipped["resize.hugetlb_2m.unplug_rss_drop_mib"]
    assert "HTTP 400" in skipped["resize.acpi"]
    assert figs["balloon.inflate_mibps"]["median"] == 128.0
    assert figs["balloon.inflate_rss_drop_mib"]["median"] == 256.0
    assert skipped["resize.shmem"].startswith("not selected")
    # against this run's host figures: plug at 512 MiB/s = 0.537 GB/s
    figs["host.limit.memset_1t"] = stats.figure([10.0], "GB/s")
    figs["host.anonymous.first_touch.gbps"] = stats.figure([2.0], "GB/s")
    ratios = resize.host_ratios(figs)
    r = ratios["resize.anonymous.plug.fraction_of_first_touch"]
    assert r["value"] == pytest.approx(512 * (1 << 20) / 1e9 / 2.0) and r["paired"] in figs
    assert ratios["balloon.inflate.fraction_of_limit"]["value"] == pytest.approx(128 * (1 << 20) / 1e10)
    assert "resize.hugetlb_2m.plug.fraction_of_first_touch" not in ratios   # no host figure
    res = {"params": {"resize_size": s}, "figures": figs, "ratios": ratios, "skipped": skipped}
    text = "\n".join(results.resize_rows(res))
    assert "5. resize (test host)" in text and "HTTP 400" in text and "balloon inflate" in text


def test_all_devices_overhead_leaves_out_zones_and_dimms() -> None:
    stderr = ("memvisor: zone mem0 backing=anonymous host=0x7f0000000000 size=134217728 page_size=4096\n"
              "memvisor: ACPI DIMM 0: 0x100000000 + 256M, backing=anonymous host=0x7e0000000000\n")
    smaps = SMAPS + ("7e0000000000-7e0010000000 rw-p 00000000 00:00 0\nRss:  262144 kB\nPss:  262144 kB\n"
                     "7f1000000000-7f1000100000 r-xp 00000000 08:01 7    /usr/lib/libmicrohttpd.so.12\n"
                     "Rss:  100 kB\nPss:  10 kB\n")
    canned = [{"name": "hold/memvisor_acpi_devices/-/0", "rc": 143, "stdout": "", "stderr": stderr,
               "during": {"smaps": smaps}, "steps": [{"name": "plug", "matched": True}]},
              {"name": "hold/memvisor/-/0", "rc": 143, "stdout": "", "stderr": stderr,
               "during": {"smaps": SMAPS}}]
    figs, ratios, _ = guest.figures(canned, guest.Params(repeat=1, qemu=False))
    f = figs["vmm.memvisor_acpi_devices.rss_kb"]
    assert f["median"] == 1124 and f["guest_ram_rss_kb"] == 65536 + 262144 and f["libs_rss_kb"] == 100
    assert ratios["vmm.memvisor_acpi_devices_over_plain.rss"]["value"] == pytest.approx(1124 / 1024)


def test_check_names_ratios_the_baseline_lacks_without_failing() -> None:
    base = check.make_baseline(_run_with(BASE))
    run = _run_with({**BASE, "resize.anonymous.plug.fraction_of_limit": (0.1, "higher")})
    verdicts = check.compare(run, base)
    assert check.report(verdicts)[1] and len(verdicts) == len(BASE)
    assert check.unbaselined(run, base) == ["resize.anonymous.plug.fraction_of_limit"]


def test_run_steps_times_the_matching_line(tmp_path: Path) -> None:
    """sequence.py on a real unix-socket HTTP server: match_seconds is the matching line's
    arrival, not the next poll's, and the samples are taken around the step."""
    import http.server
    import socketserver
    import threading
    import time
    from memvisor.sequence import run_steps

    class Handler(http.server.BaseHTTPRequestHandler):
        def _answer(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            self.send_response(204 if self.command == "PUT" else 200)
            self.send_header("Content-Length", "0")
            self.end_headers()
        do_GET = do_PUT = _answer

        def log_message(self, *a: object) -> None:
            pass

    class Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
        daemon_threads = True

        def get_request(self):  # BaseHTTPRequestHandler wants a client address pair
            conn, _ = super().get_request()
            return conn, ("local", 0)

    sock = str(tmp_path / "api.sock")
    srv = Server(sock, Handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    out: list[str] = []
    times: list[float] = []

    appended: list[float] = []

    def guest() -> None:
        # The line is stamped 0.25 s before it is appended: a match time taken when a poll
        # finds the line would be at least 0.25 s later than the stamp's.
        time.sleep(0.6)
        appended.append(time.monotonic())
        times.append(appended[0] - 0.25)
        out.append("resize seq=1 plugged=0x10000000 \n")
    try:
        threading.Thread(target=guest).start()
        t0 = time.monotonic()
        steps = run_steps({"api_socket": sock, "steps": [
            {"name": "plug", "call": ["PUT", "vm.resize", {"desired_ram": 1}],
             "wait": r"^resize .* plugged=0x10000000 ", "timeout": 5, "sample": ["status"]}]},
            os.getpid(), out, lambda: True, times)
    finally:
        srv.shutdown()
        srv.server_close()
    st = steps[0]
    assert st["status"] == 204 and st["matched"]
    # run_steps starts its clock after t0 (it samples first), so the stamp's time counted
    # from there is at most the stamp's time counted from t0; a poll's would be 0.25 s more.
    assert st["match_seconds"] <= times[0] - t0 + 1e-6
    assert st["match_seconds"] < appended[0] - t0 - 0.2
    assert st["match_seconds"] < st["seconds"] and st["call_seconds"] < st["match_seconds"]
    assert "VmRSS:" in st["sample_before"]["status"] and "VmRSS:" in st["sample_at_match"]["status"]


def test_resize_cases_run_natively() -> None:
    """The real thing where this machine's KVM runs memvisor: the anonymous kinds at 128 MiB.
    Memory unplugged and ballooned is given back by the time the guest reports it."""
    from memvisor import venue
    from memvisor.runner import run_cases
    n = venue.decide("native").native
    if n is None or not n.usable or not resize.GUEST.exists():
        pytest.skip("no usable native KVM or no build/guests/resize.elf")
    p = guest.Params(repeat=1, only=["anonymous"], resize_size=128 << 20)
    cases = [c for c in resize.cases(p) if not c["name"].startswith("hold/memvisor_acpi")]
    res = run_cases(cases, "native")
    figs, skipped = resize.figures(res, p)
    for kind in ("anonymous", "acpi"):
        assert figs[f"resize.{kind}.plug_ms"]["median"] > 0, skipped
    assert figs["resize.anonymous.unplug_rss_drop_mib"]["median"] == pytest.approx(128, abs=8)
    assert figs["balloon.inflate_rss_drop_mib"]["median"] == pytest.approx(128, abs=8)
    gf, _, gs = guest.figures(res, p)
    assert gf["vmm.memvisor_all_devices.rss_kb"]["median"] > 0, gs
