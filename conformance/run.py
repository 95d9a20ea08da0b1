"""Run the matrix: every case booted (or refused) under one VMM driver, checked, reported.

Runs where /dev/kvm works; `python3 -m conformance run` re-executes itself inside ci/testhost
when this machine has none, so the whole matrix costs one test-host boot.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from dataclasses import asdict, dataclass, field, is_dataclass
from pathlib import Path

from memvisor.driver import BUILD, TOP, MemvisorDriver
from memvisor.inhost import run_case

from . import cases as matrix
from .checks import check_boot, check_rejection

OUT = BUILD / "conformance"


@dataclass
class Outcome:
    case: matrix.Case
    failures: list[str]
    seconds: float
    result: dict = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return not self.failures


def inhost_case(case: matrix.Case, driver: MemvisorDriver) -> dict:
    return {
        "name": case.name,
        "argv": driver.command(case.config),
        "hold_marker": "SUMMARY:" if case.valid else None,
        "setup": list(case.setup),
        "teardown": list(case.teardown),
        "files": list(case.files),
        "timeout": 120,
    }


def layout_of(case: matrix.Case, driver: MemvisorDriver) -> dict | None:
    p = subprocess.run(driver.layout_command(case.config), capture_output=True, text=True,
                       timeout=30)
    if p.returncode != 0:
        return {"error": p.stderr.strip()}
    return json.loads(p.stdout)


def run_one(case: matrix.Case, driver: MemvisorDriver) -> Outcome:
    start = time.monotonic()
    result = run_case(inhost_case(case, driver))
    if case.valid:
        layout = layout_of(case, driver)
        if layout and "error" in layout:
            failures = [f"--print-layout refused a valid configuration: {layout['error']}"]
            failures += check_boot(case.expect, result, None)
        else:
            failures = check_boot(case.expect, result, layout)
    else:
        failures = check_rejection(case.expect, result)
    return Outcome(case, failures, round(time.monotonic() - start, 2), result)


def _jsonable(obj: object) -> object:
    if is_dataclass(obj) and not isinstance(obj, type):
        return {k: _jsonable(v) for k, v in asdict(obj).items()}
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, set, frozenset)):
        return [_jsonable(v) for v in (sorted(obj) if isinstance(obj, (set, frozenset)) else obj)]
    if isinstance(obj, Path):
        return str(obj)
    return obj


def write_results(outcomes: list[Outcome], cov: dict, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    doc = {
        "coverage": cov,
        "passed": sum(o.passed for o in outcomes),
        "failed": sum(not o.passed for o in outcomes),
        "cases": [{
            "name": o.case.name, "tags": list(o.case.tags), "passed": o.passed,
            "failures": o.failures, "seconds": o.seconds,
            "command": o.result.get("argv"), "status": o.result.get("rc"),
            "expect": _jsonable(o.case.expect),
        } for o in outcomes],
    }
    (out / "results.json").write_text(json.dumps(doc, indent=1))
    # Everything the checks read, so that a failure can be re-examined without a new boot.
    (out / "raw.json").write_text(json.dumps({o.case.name: o.result for o in outcomes}))
    suite = ET.Element("testsuite", name="conformance", tests=str(len(outcomes)),
                       failures=str(doc["failed"]),
                       time=str(round(sum(o.seconds for o in outcomes), 2)))
    for o in outcomes:
        tc = ET.SubElement(suite, "testcase", classname="conformance", name=o.case.name,
                           time=str(o.seconds))
        if o.failures:
            f = ET.SubElement(tc, "failure", message=o.failures[0])
            f.text = "\n".join(o.failures)
            ET.SubElement(tc, "system-out").text = o.result.get("stdout", "")
            ET.SubElement(tc, "system-err").text = o.result.get("stderr", "")
    ET.ElementTree(suite).write(out / "junit.xml", encoding="unicode", xml_declaration=True)


def explain(o: Outcome) -> str:
    """A failure with everything needed to read it: what failed, guest, VMM, expectation."""
    r = o.result
    parts = [f"=== FAIL {o.case.name}", "command: " + " ".join(r.get("argv", [])),
             *[f"  - {f}" for f in o.failures],
             "--- guest console (last 30 lines)", *r.get("stdout", "").splitlines()[-30:],
             "--- memvisor stderr (last 15 lines)", *r.get("stderr", "").splitlines()[-15:],
             "--- oracle's expectation", json.dumps(_jsonable(o.case.expect), indent=1)[:3000]]
    return "\n".join(parts)


def run_here(mode: str, pattern: str | None, out: Path) -> int:
    cases = matrix.generate(mode)
    if pattern:
        cases = [c for c in cases if pattern in c.name]
    if not cases:
        print(f"conformance: no case of the {mode} matrix matches {pattern!r}", flush=True)
        return 1
    driver = MemvisorDriver()
    outcomes: list[Outcome] = []
    print(f"conformance: {len(cases)} cases ({mode}) under {driver.name}", flush=True)
    for i, case in enumerate(cases, 1):
        o = run_one(case, driver)
        outcomes.append(o)
        print(f"[{i}/{len(cases)}] {case.name:40} {'PASS' if o.passed else 'FAIL'} "
              f"{o.seconds:6.2f}s", flush=True)
    cov = matrix.coverage(cases)
    write_results(outcomes, cov, out)
    for o in outcomes:
        if not o.passed:
            print(explain(o), flush=True)
    print_summary(outcomes, cov, out)
    return 0 if all(o.passed for o in outcomes) else 1


def print_summary(outcomes: list[Outcome], cov: dict, out: Path) -> None:
    by_part: dict[str, list[Outcome]] = {}
    for o in outcomes:
        part = next((t for t in o.case.tags if t in
                     ("value", "pairwise", "pairwise-forbidden", "scenario", "rule")), "other")
        by_part.setdefault(part, []).append(o)
    print("\npart                 cases  passed  failed  seconds")
    for part, os_ in sorted(by_part.items()):
        print(f"{part:20} {len(os_):5}  {sum(o.passed for o in os_):6}  "
              f"{sum(not o.passed for o in os_):6}  {sum(o.seconds for o in os_):7.1f}")
    print(f"cases: {cov['cases']} ({cov['valid']} boots, {cov['rejections']} rejections, "
          f"{cov['assumption_cases']} resting on assumptions where the spec is silent)")
    print(f"coverage: option values {cov['values']['covered']}/{cov['values']['total']}, "
          f"backings {cov['backings']['covered']}/{cov['backings']['total']}, "
          f"rejection rules {cov['rules']['covered']}/{cov['rules']['total']}")
    for group, pw in cov["pairwise"].items():
        print(f"coverage: {group} option pairs {pw['pairs_covered']}/{pw['pairs_valid']} valid "
              f"({pw['pairs_total']} in all, {pw['pairs_forbidden']} forbidden by the spec and "
              f"tested as rejections)")
    passed = sum(o.passed for o in outcomes)
    print(f"results: {out / 'results.json'}, {out / 'junit.xml'}")
    print(f"{passed} passed, {len(outcomes) - passed} failed")


def main(argv: list[str]) -> int:
    import argparse
    ap = argparse.ArgumentParser(prog="python3 -m conformance")
    ap.add_argument("command", choices=["run", "run-here", "list"])
    ap.add_argument("--quick", action="store_true", help="the representative subset (make test)")
    ap.add_argument("-k", dest="pattern", help="only cases whose name contains this")
    ap.add_argument("--out", type=Path, default=None, help="results directory")
    args = ap.parse_args(argv)
    mode = "quick" if args.quick else "full"
    out = args.out or (OUT / mode)
    if args.command == "list":
        for c in matrix.generate(mode):
            print(c.name, " ".join(c.config.ch_args()))
        return 0
    if args.command == "run-here":
        return run_here(mode, args.pattern, out)
    # One test-host boot for the whole matrix (ci/testhost runs it directly where KVM works).
    cmd = [str(TOP / "ci" / "testhost"), "--", sys.executable, "-m", "conformance", "run-here",
           "--out", str(out)] + (["--quick"] if args.quick else []) + \
          (["-k", args.pattern] if args.pattern else [])
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(TOP / "harness"), str(TOP)]))
    return subprocess.run(cmd, env=env, cwd=TOP).returncode
