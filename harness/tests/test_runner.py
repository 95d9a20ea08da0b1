"""harness/memvisor/runner.py: results stream in order; a frozen test host costs one retry.

The frozen test host is real: a case's setup stops the in-host runner (SIGSTOP to its own
parent), so the test host is alive but makes no progress, as in the TCG livelock of issue 9;
the runner must kill it and run that case again, with the rest, in a fresh one.
"""
from __future__ import annotations

import subprocess
import uuid
from pathlib import Path

import pytest

from memvisor import runner


def _case(name: str, script: str, **kw: object) -> dict:
    return {"name": name, "argv": ["sh", "-c", script], "timeout": 20, **kw}


def test_native_results_in_order_and_streamed() -> None:
    seen: list[tuple[int, str]] = []
    cases = [_case("a", "echo one"), _case("b", "echo two >&2; exit 3"), _case("c", "true")]
    res = runner.run_cases(cases, "native", on_result=lambda i, r: seen.append((i, r["name"])))
    assert seen == [(0, "a"), (1, "b"), (2, "c")]
    assert [r["rc"] for r in res] == [0, 3, 0]
    assert res[0]["stdout"] == "one\n" and res[1]["stderr"] == "two\n"
    assert all(r["venue"] == "native" for r in res)


def test_case_timeout_bounds_the_whole_case() -> None:
    t = runner.run_cases([_case("slow", "sleep 30", timeout=2)], "native")[0]
    assert t["timed_out"] and t["seconds"] < 15


def test_unknown_venue_is_refused() -> None:
    with pytest.raises(ValueError, match="native or testhost"):
        runner.run_cases([_case("a", "true")], "elsewhere")


def test_testhost_that_never_starts_loses_every_case_with_the_reason() -> None:
    cases = [_case("a", "true"), _case("b", "true")]
    res = runner.run_cases(cases, "testhost",
                           opts=runner.TesthostOptions(extra=("--nodes", "x")))
    assert [r["name"] for r in res] == ["a", "b"]
    for r in res:
        assert r["rc"] is None and "--nodes: 'x' is not a number" in r["lost"]


def test_frozen_testhost_costs_one_retry() -> None:
    log = Path("/dev/null").open("w")
    # The work tree is shared with the test host (its /tmp is not): the mark outlives it.
    mark = runner.BUILD / f"froze-once-{uuid.uuid4().hex}"
    cases = [_case("before", "echo one"),
             # Stops the in-host runner itself, the first time only: no progress from then on,
             # the VM still alive.
             _case("freeze", "echo three", timeout=5,
                   setup=[f"test -e {mark} || {{ touch {mark}; kill -STOP $PPID; }}"]),
             _case("after", "echo two")]
    try:
        res = runner.run_cases(cases, "testhost", log=log,
                               opts=runner.TesthostOptions(margin_s=20))
    finally:
        mark.unlink(missing_ok=True)
    assert [r["name"] for r in res] == ["before", "freeze", "after"]
    assert res[0]["rc"] == 0 and res[0]["stdout"] == "one\n" and res[0]["testhost_boot"] == 1
    assert res[1]["rc"] == 0 and res[1]["stdout"] == "three\n" and res[1]["testhost_boot"] == 2
    lost = res[1]["lost_testhosts"]
    assert len(lost) == 1 and "stopped making progress during freeze" in lost[0]
    assert "TESTHOST-READY" in lost[0], "the console tail is kept with the case"
    assert "vCPU RIPs, sample 3:" in lost[0], "the vCPUs' state comes from the monitor"
    assert res[2]["rc"] == 0 and res[2]["stdout"] == "two\n" and res[2]["testhost_boot"] == 2
    left = subprocess.run(["pgrep", "-f", "memvisor.inhost .*batch"], capture_output=True)
    assert left.returncode == 1, f"a test host of this run is still alive: {left.stdout!r}"


def test_case_lost_twice_fails_and_the_rest_go_on(monkeypatch: pytest.MonkeyPatch) -> None:
    """The bookkeeping alone (no test host): case 1 loses its test host every time."""
    boots: list[list[int]] = []

    def one_testhost(cases, todo, deliver, log, opts, boot):   # type: ignore[no-untyped-def]
        boots.append(list(todo))
        done = set()
        for i in todo:
            if i == 1:
                return done, 1, f"frozen in boot {boot}"
            deliver(i, {"name": cases[i]["name"], "rc": 0, "testhost_boot": boot})
            done.add(i)
        return done, None, ""
    monkeypatch.setattr(runner, "_one_testhost", one_testhost)
    res = runner.run_cases([_case(n, "true") for n in "abc"], "testhost",
                           log=Path("/dev/null").open("w"))
    assert boots == [[0, 1, 2], [1, 2], [2]]
    assert res[1]["lost"] == "frozen in boot 2"
    assert res[1]["lost_testhosts"] == ["frozen in boot 1", "frozen in boot 2"]
    assert res[2]["rc"] == 0 and res[2]["testhost_boot"] == 3


# `info registers -a` and `info lapic 1` of a test host frozen in a Linux case (QEMU 10.0 TCG).
REGS = """CPU#0
RAX=0000000000000000 RBX=0000000000000000 RCX=0000000000000000 RDX=0000000000000000
RIP=ffffffff81a592eb RFL=00000216 [----AP-] CPL=0 II=0 A20=1 SMM=0 HLT=1
CPU#1
RAX=0000000000000000 RBX=0000000000000001 RCX=0000000000000000 RDX=0000000000000000
RIP=ffffffff81a592eb RFL=00000202 [-------] CPL=0 II=0 A20=1 SMM=0 HLT=1
"""
LAPIC = {"0": "ISR\t (none)\nIRR\t (none)\nAPR 0x00 TPR 0x10 DFR 0x0f LDR 0x01 PPR 0x10",
         "1": "ISR\t (none)\nIRR\t 236 \nAPR 0x01 TPR 0x10 DFR 0x0f LDR 0x02 PPR 0x10"}


def test_halted_cpu_with_a_pending_interrupt_is_frozen() -> None:
    assert runner.halted_with_pending(REGS, LAPIC.__getitem__) == [
        "CPU 1 halted at ffffffff81a592eb with IF=1, IRR [236], PPR 0x10"]
    # Masked by the priority, or interrupts off, or running: not frozen.
    masked = {**LAPIC, "1": LAPIC["1"].replace("PPR 0x10", "PPR 0xe0")}
    assert runner.halted_with_pending(REGS, masked.__getitem__) == []
    assert runner.halted_with_pending(REGS.replace("RFL=00000202", "RFL=00000002"),
                                      LAPIC.__getitem__) == []
    assert runner.halted_with_pending(REGS.replace("HLT=1", "HLT=0"), LAPIC.__getitem__) == []


def test_a_freeze_is_the_same_state_in_every_reading() -> None:
    frozen = "CPU 1 halted at ffffffff81a592eb with IF=1, IRR [236], PPR 0x10"
    idle = "CPU 0 halted at ffffffff81a592eb with IF=1, IRR [236], PPR 0x10"
    naps: list[float] = []
    assert runner.still_frozen(lambda: [frozen], naps.append) == [frozen]
    assert len(naps) == runner.FREEZE_READINGS - 1
    # An idle CPU caught with its timer pending in some readings only: no freeze.
    readings = iter([[idle, frozen], [frozen], [idle, frozen], [frozen]])
    assert runner.still_frozen(lambda: next(readings), naps.append) == [frozen]
    readings = iter([[idle], [idle], [], [idle]])
    assert runner.still_frozen(lambda: next(readings), naps.append) == []
