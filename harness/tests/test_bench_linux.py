"""bench/linux.py (part 6, Linux boot time): the cases, the reading of a boot's console and exit,
the paired ratios and the table, on canned results; the in-host runner's line times on a real
process; and one real boot under QEMU TCG (no KVM needed). Never a timing assertion."""
from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

TOP = Path(__file__).resolve().parents[2]
if str(TOP) not in sys.path:
    sys.path.append(str(TOP))

from bench import linux, results  # noqa: E402
from memvisor.inhost import run_case  # noqa: E402

# What a good boot prints (trimmed): the kernel, /init's first line, the report, the power-off.
CONSOLE = ["[    0.000000] Linux version 6.1.0\n",
           "[    1.250000] Run /init as init process\n",
           "memvisor-linux-init\n",
           "memvisor-linux 1\n",
           "cmdline value=\"console=ttyS0\"\n",
           "SUMMARY: ok pass=3 skip=1\n",
           "[    2.000000] reboot: Power down\n"]


def boot(name: str, at: list[float], eof: float, rc: int = 0,
         lines: list[str] = CONSOLE, **more: object) -> dict:
    return {"name": name, "rc": rc, "stdout": "".join(lines), "stderr": "", "line_times": at,
            "eof_s": eof, "timed_out": False, "seconds": eof, **more}


def test_cases_interleave_the_vmms_with_the_same_guest() -> None:
    cases = linux.cases(linux.Params(repeat=2))
    assert [c["name"] for c in cases] == [
        f"linux/{v}/{variant}/{i}" for variant, i in (("warmup", 0), ("-", 0), ("-", 1))
        for v in ("memvisor", "qemu_q35", "qemu_microvm")]
    for c in cases:
        a = c["argv"]
        assert c["stamp_lines"] and c["idle_timeout"] == linux.IDLE_S and c["timeout"] >= 120
        line = a[a.index("--cmdline" if a[0].endswith("memvisor") else "-append") + 1]
        assert str(linux.KERNEL) in a and str(linux.INITRAMFS) in a and line == linux.CMDLINE
        assert "size=512M" in a or a[a.index("-m") + 1] == "512M"
    q35, microvm = cases[1]["argv"], cases[2]["argv"]
    assert q35[q35.index("-machine") + 1] == "q35" and microvm[microvm.index("-machine") + 1] == "microvm"
    for q in (q35, microvm):
        for opt, val in (("-accel", "kvm"), ("-cpu", "host"), ("-smp", "1"), ("-serial", "stdio")):
            assert q[q.index(opt) + 1] == val
        assert "-no-reboot" in q and "-nodefaults" in q
    assert linux.cases(linux.Params(repeat=1))[0]["name"] == "linux/memvisor/-/0"   # no warm-up
    tcg = linux.command("qemu_microvm", "tcg")
    assert tcg[tcg.index("-append") + 1].endswith(linux.TCG_WORDS)
    assert linux.command("memvisor", "tcg")[-1].endswith(linux.TCG_WORDS)
    th = linux.cases(linux.Params(repeat=1), testhost=True)
    assert "boot=1,kvm_pv_eoi=off" in th[0]["argv"], "in the test host: no paravirtual EOI"
    assert "host,kvm-pv-eoi=off" in th[1]["argv"], "for QEMU alike"


def test_sample_reads_markers_exit_and_kernel_time() -> None:
    s, why = linux.sample(boot("linux/memvisor/-/0", [0.1, 0.9, 1.5, 1.5, 1.6, 1.8, 2.0], 2.05))
    assert why is None
    assert s == pytest.approx({"init": 1500, "report": 1800, "exit": 2050, "kernel_init": 1250})


@pytest.mark.parametrize("change, reason", [
    ({"rc": 4}, "exited 4, not 0"),
    ({"lines": CONSOLE[:-1]}, "without 'reboot: Power down'"),
    ({"lines": [ln for ln in CONSOLE if ln != "memvisor-linux-init\n"]}, "no 'memvisor-linux-init'"),
    ({"lines": [ln for ln in CONSOLE if not ln.startswith("SUMMARY")]}, "no SUMMARY"),
    ({"timed_out": True, "silent_s": 60}, "hung (no console output for 60 s), killed"),
    ({"lost": "the test host froze\nconsole..."}, "not run: the test host froze"),
    ({"line_times": None}, "no console line times"),
])
def test_invalid_samples_say_why(change: dict, reason: str) -> None:
    lines = change.pop("lines", CONSOLE)
    r = boot("linux/qemu_q35/-/3", [float(i) for i in range(len(lines))], 9.0, lines=lines)
    r.update(change)
    s, why = linux.sample(r)
    assert s is None and why is not None and reason in why, why


def test_figures_pair_rounds_and_report_invalid_samples() -> None:
    t = [0.1, 0.9, 1.5, 1.5, 1.6, 1.8, 2.0]
    res = []
    for i in range(3):
        res.append(boot(f"linux/memvisor/-/{i}", t, 2.0 + i))
        res.append(boot(f"linux/qemu_q35/-/{i}", [x * 2 for x in t], 4.0, rc=1 if i == 1 else 0))
        res.append(boot(f"linux/qemu_microvm/-/{i}", t, 1.0, rc=0, timed_out=i != 2, silent_s=60))
    res.append(boot("linux/memvisor/warmup/0", t, 100.0))        # untimed
    p = linux.Params(repeat=3)
    figs, ratios, skipped = linux.figures(res, p)
    assert figs["linux.memvisor.exit_ms"]["samples"] == [2000, 3000, 4000]
    assert figs["linux.memvisor.init_ms"]["median"] == 1500
    assert figs["linux.qemu_q35.exit_ms"]["n"] == 2
    assert figs["linux.qemu_q35.exit_ms"]["invalid"][0].startswith("repeat 1: exited 1")
    # Round 1 has no valid q35 boot: the pairs are rounds 0 and 2.
    r = ratios["linux.memvisor_over_qemu_q35.exit"]
    assert figs[r["paired"]]["samples"] == [2000 / 4000, 4000 / 4000]
    assert r["value"] == figs[r["paired"]]["median"] and r["better"] == "lower"
    assert ratios["linux.memvisor_over_qemu_q35.init"]["value"] == pytest.approx(0.5)
    bad = figs["linux.qemu_microvm.exit_ms"]["invalid"]
    assert [b.split(":")[0] for b in bad] == ["repeat 0", "repeat 1"]
    assert all("hung (no console output for 60 s), killed" in b for b in bad)
    assert ratios["linux.memvisor_over_qemu_microvm.exit"]["value"] == pytest.approx(4.0)
    assert skipped == {}
    # No valid boot at all: a reason, and no ratio against it.
    only_bad = [r for r in res if "microvm" not in r["name"] or r["name"].endswith("/2")]
    only_bad = [r if "microvm" not in r["name"] else {**r, "rc": 1} for r in only_bad]
    figs2, ratios2, skipped2 = linux.figures(only_bad, p)
    assert "exited 1" in skipped2["linux.qemu_microvm"]
    assert not any("microvm" in n for n in ratios2)


def test_native_names_and_table() -> None:
    t = [0.1, 0.9, 1.5, 1.5, 1.6, 1.8, 2.0]
    res = [boot(f"linux/{v}/-/0", t, 2.0) for v in linux.VMMS]
    figs, ratios, skipped = linux.renamed("native.", *linux.figures(res, linux.Params(repeat=1)))
    assert "native.linux.memvisor.exit_ms" in figs
    r = ratios["native.linux.memvisor_over_qemu_microvm.report"]
    assert r["num"] == "native.linux.memvisor.report_ms" and r["paired"] in figs
    out = {"figures": {**figs}, "ratios": ratios,
           "skipped": {"linux": "test-host part not run (--no-testhost or VENUE=native)"}}
    rows = "\n".join(linux.rows(out))
    assert "6. Linux boot (test host): skipped: test-host part not run" in rows
    assert "6. Linux boot (native)" in rows and "memvisor / qemu_q35: init 1.00" in rows
    assert "1500 (1500-1500)" in rows and "1250" in rows
    res_json = {"schema": results.SCHEMA, "created": "x", "machine": {}, "params": {},
                "backings": [], "figures": figs, "ratios": ratios, "skipped": {}}
    assert not [p for p in results.problems(res_json) if "linux" in p]


def test_inhost_stamps_lines_and_kills_a_silent_boot() -> None:
    r = run_case({"name": "t", "argv": ["sh", "-c", "echo a; sleep 0.3; echo b; sleep 0.3"],
                  "timeout": 20, "idle_timeout": 5, "stamp_lines": True})
    assert r["rc"] == 0 and len(r["line_times"]) == 2
    a, b = r["line_times"]
    assert 0 < a < b and b - a >= 0.25 and r["eof_s"] - b >= 0.25 and r["eof_s"] <= r["seconds"]
    hung = run_case({"name": "h", "argv": ["sh", "-c", "echo booting; exec sleep 30"],
                     "timeout": 20, "idle_timeout": 1, "stamp_lines": True})
    assert hung["timed_out"] and hung["silent_s"] == 1 and hung["seconds"] < 10
    s, why = linux.sample({**hung, "name": "linux/memvisor/-/0"})
    assert s is None and "hung (no console output for 1 s), killed: booting" in why
    plain = run_case({"name": "p", "argv": ["true"], "timeout": 5})
    assert "line_times" not in plain


@pytest.mark.skipif(shutil.which("qemu-system-x86_64") is None, reason="no QEMU (ci/deps.sh)")
def test_microvm_boot_under_tcg_is_a_valid_sample() -> None:
    """The real thing without KVM: Debian's kernel in a QEMU microvm with its defaults powers
    off (ACPI through its GED) and exits 0, and both lines are seen, in order."""
    if not (linux.KERNEL.exists() and linux.INITRAMFS.exists()):
        pytest.skip("build/linux is incomplete: run `make linux-guest`")
    case = linux.cases(linux.Params(repeat=1, accel="tcg", vmms=("qemu_microvm",)))[0]
    case["timeout"] = 300
    r = run_case(case)
    s, why = linux.sample(r)
    assert s is not None, f"{why}\n{r['stdout'][-2000:]}"
    assert 0 < s["init"] < s["report"] <= s["exit"] and s["kernel_init"] > 0


def test_table_shows_only_the_parts_run_and_check_takes_the_skip() -> None:
    from bench import check
    res = {"created": "x", "machine": {"cpu": "c", "cpus": 2},
           "params": {"repeat": 1, "parts": ["linux"]}, "backings": [], "figures": {},
           "ratios": {}, "skipped": {"linux": "test-host part not run (--no-testhost)"}}
    text = results.table(res)
    assert "1. host populate" not in text and "2-3." not in text
    assert "6. Linux boot (test host): skipped: test-host part not run" in text
    base = check.make_baseline({**res, "ratios": {"linux.memvisor_over_qemu_q35.exit": {
        "value": 0.8, "better": "lower", "num": "linux.memvisor.exit_ms",
        "den": "linux.qemu_q35.exit_ms", "paired": "linux.memvisor_over_qemu_q35.exit"}}})
    [v] = check.compare(res, base)
    assert v.status == "skipped" and "--no-testhost" in v.detail
