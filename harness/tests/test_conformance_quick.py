"""make test's slice of the conformance matrix: every backing, NUMA, hotplug areas, rejections.

One test-host boot runs the quick cases (python3 -m conformance run --quick); each case is
then one test here. The checks themselves are shown to fail on doctored copies of the real
results, so that a passing case means something.
"""
from __future__ import annotations

import copy
import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

TOP = Path(__file__).resolve().parents[2]
OUT = TOP / "build" / "conformance" / "pytest-quick"
sys.path.insert(0, str(TOP))

from conformance import cases as matrix  # noqa: E402
from conformance.checks import check_boot, check_rejection  # noqa: E402

QUICK = {c.name: c for c in matrix.generate("quick")}


@pytest.fixture(scope="module")
def run() -> dict:
    if not (TOP / "build" / "memvisor").exists() or not (TOP / "build/guests/probe.elf").exists():
        pytest.skip("build/memvisor or the probe guest is not built (run make)")
    env = dict(os.environ, PYTHONPATH=f"{TOP / 'harness'}:{TOP}")
    # Its own session: on the time limit the whole tree goes, test host included.
    proc = subprocess.Popen(["/usr/bin/python3", "-m", "conformance", "run", "--quick", "--out",
                             str(OUT)], cwd=TOP, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        stdout, stderr = proc.communicate(timeout=1500)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        stdout, stderr = proc.communicate()
    p = subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr)
    results = OUT / "results.json"
    assert results.exists(), f"no results (status {p.returncode}):\n{p.stdout[-4000:]}\n{p.stderr[-4000:]}"
    return {"status": p.returncode, "stdout": p.stdout,
            "results": {c["name"]: c for c in json.loads(results.read_text())["cases"]},
            "raw": json.loads((OUT / "raw.json").read_text())}


@pytest.mark.parametrize("name", sorted(QUICK))
def test_case(run: dict, name: str) -> None:
    r = run["results"].get(name)
    assert r is not None, f"case {name} did not run"
    if r["status"] == "skipped" and QUICK[name].guest == "linux":
        # No venue for Linux here (VENUE=native on a KVM that cannot run Debian's kernel,
        # such as PVM): skipped with that reason. In the test host Linux cases run.
        pytest.skip(r["skip_reason"])
    assert r["passed"], "\n".join(r["failures"])


def test_exit_status_and_report(run: dict) -> None:
    failed = [n for n, r in run["results"].items() if r["status"] == "failed"]
    assert run["status"] == (1 if failed else 0)
    assert re.search(r"^\d+ passed, \d+ failed(, \d+ skipped)?$", run["stdout"], re.M)
    assert (OUT / "junit.xml").read_text().count("<testcase") == len(QUICK)


def _boot_failures(run: dict, name: str, mutate) -> list[str]:
    raw = copy.deepcopy(run["raw"][name])
    mutate(raw)
    return check_boot(QUICK[name].expect, raw, None)


def test_checks_see_a_missing_thp_advice(run: dict) -> None:
    def drop_hg(raw: dict) -> None:
        raw["during"]["smaps"] = re.sub(r"(VmFlags:.*) hg", r"\1", raw["during"]["smaps"])
    assert any("'hg'" in f for f in _boot_failures(run, "default", drop_hg))


def test_checks_see_a_private_mapping_where_shared_was_asked(run: dict) -> None:
    def drop_sh(raw: dict) -> None:
        raw["during"]["smaps"] = re.sub(r"(VmFlags:.*) sh", r"\1", raw["during"]["smaps"])
    assert any("'sh'" in f for f in _boot_failures(run, "shmem", drop_sh))


def test_checks_see_a_wrong_slit(run: dict) -> None:
    def bump(raw: dict) -> None:
        raw["stdout"] = re.sub(r"(slit_row [^\n]*?)\b15\b", r"\g<1>16", raw["stdout"], count=1)
    assert any("SLIT" in f for f in _boot_failures(run, "numa3-asym", bump))


def test_checks_see_memory_on_the_wrong_host_node(run: dict) -> None:
    def move(raw: dict) -> None:
        raw["during"]["numa_maps"] = raw["during"]["numa_maps"].replace("bind:1", "bind:0")
    assert any("NUMA policy" in f for f in _boot_failures(run, "host-nodes", move))


def test_checks_see_huge_pages_not_taken(run: dict) -> None:
    def untaken(raw: dict) -> None:
        raw["hp_during"] = dict(raw["hp_before"])
    assert any("pool" in f for f in _boot_failures(run, "hugetlb-2m-zone", untaken))


def test_checks_see_lost_guest_writes(run: dict) -> None:
    def zero(raw: dict) -> None:
        for facts in raw["files_after"].values():
            facts["head_hex"] = "00" * 4096
    assert any("none of the guest's writes" in f for f in _boot_failures(run, "file-shared", zero))


def test_checks_see_a_failed_memory_test(run: dict) -> None:
    def corrupt(raw: dict) -> None:
        raw["stdout"] = re.sub(r"errors=0", "errors=3", raw["stdout"])
    assert any("memory test" in f for f in _boot_failures(run, "anonymous", corrupt))


def test_checks_see_an_accepted_bad_configuration(run: dict) -> None:
    name = next(n for n, c in QUICK.items() if not c.valid)
    raw = copy.deepcopy(run["raw"][name])
    raw["rc"], raw["stderr"] = 0, ""
    failures = check_rejection(QUICK[name].expect, raw)
    assert any("exit status 0" in f for f in failures)
