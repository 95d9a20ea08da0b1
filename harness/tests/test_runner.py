"""harness/memvisor/runner.py: results stream in order; a frozen test host costs one case.

The frozen test host is real: a case's setup stops the in-host runner (SIGSTOP to its own
parent), so the test host is alive but makes no progress, as in the TCG livelock of issue 9;
the runner must kill it, fail that case with the console, and finish the rest in a fresh one.
"""
from __future__ import annotations

import subprocess
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


def test_frozen_testhost_costs_one_case() -> None:
    log = Path("/dev/null").open("w")
    cases = [_case("before", "echo one"),
             # Stops the in-host runner itself: no progress from then on, the VM still alive.
             _case("freeze", "true", setup=["kill -STOP $PPID"], timeout=5),
             _case("after", "echo two")]
    res = runner.run_cases(cases, "testhost", log=log,
                           opts=runner.TesthostOptions(margin_s=20))
    assert [r["name"] for r in res] == ["before", "freeze", "after"]
    assert res[0]["rc"] == 0 and res[0]["stdout"] == "one\n" and res[0]["testhost_boot"] == 1
    assert res[1]["rc"] is None
    assert "stopped making progress during freeze" in res[1]["lost"]
    assert "TESTHOST-READY" in res[1]["lost"], "the console tail is part of the failure"
    assert "vCPU RIPs, sample 3:" in res[1]["lost"], "the vCPUs' state comes from the monitor"
    assert res[2]["rc"] == 0 and res[2]["stdout"] == "two\n" and res[2]["testhost_boot"] == 2
    left = subprocess.run(["pgrep", "-f", "memvisor.inhost .*batch"], capture_output=True)
    assert left.returncode == 1, f"a test host of this run is still alive: {left.stdout!r}"
