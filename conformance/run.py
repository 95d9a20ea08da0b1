"""Run the matrix: every case booted (or refused) where VENUE says, checked, reported.

    python3 -m conformance run [--quick] [-k NAME] [--shard K/N] [--out DIR]
    python3 -m conformance merge --out DIR SHARD_DIR...
    python3 -m conformance list [--quick]
    python3 -m conformance compare [-k NAME] [--shard K/N] [--out DIR]   (conformance/compare.py)

Where cases run (harness/memvisor/venue.py): VENUE=native runs each case this machine can give
what it needs on its own /dev/kvm and skips the others with the reason; VENUE=testhost runs all
in ci/testhost; VENUE=auto (default) uses native KVM where it is faster, the test host for the
rest. Test-host cases go through harness/memvisor/runner.py: a frozen test host costs the case
under way, a fresh one goes on. Each case is checked here, on this side, as its result arrives,
and appended to results.jsonl at once.
"""
from __future__ import annotations

import json
import os
import sys
import zlib
from pathlib import Path

from memvisor import venue as venues
from memvisor.driver import BUILD, MemvisorDriver
from memvisor.runner import run_cases

from . import cases as matrix
from . import needs, results
from . import faults, hostile, linux, resize
from .checks import check_boot, check_host, check_rejection, setup_failures, unstoppable_hangs
from .results import Outcome

OUT = BUILD / "conformance"
CASE_TIMEOUT_S = 90     # a case takes 0.5-5 s in the test host; prefaulting 1 GiB the most


# In the test host a probe or hostile guest that hangs is booted once more, the hung attempt
# kept with where its vCPUs were. In one make test and one make conformance with the other core
# busy (QEMU 10, multi-threaded TCG), a hostile and a probe guest stopped with their vCPU at
# rip=0xffffffffc055120c rsp=0xffa0000001ed7a90 cr4=0x60, "code: unmapped": no address of either
# guest but the test host's own (its kvm_amd module, a kernel stack), as in a hung Linux boot the
# same day: the nested SVM of QEMU's TCG handed the guest its host's state. A hung attempt whose
# vCPUs memvisor could not stop still fails the case (checks.unstoppable_hangs).
TESTHOST_ATTEMPTS = 2


def inhost_case(case: matrix.Case, driver: MemvisorDriver, testhost: bool = False) -> dict:
    """What the runner needs for one case; `testhost`: it runs there (linux.in_testhost)."""
    argv = driver.command(case.config)
    return {
        "name": case.name,
        "argv": linux.in_testhost(argv) if testhost and case.guest == "linux" else argv,
        # A socket left by a killed run would make memvisor refuse --api-socket.
        "setup": list(case.setup) + ([f"rm -f {case.config.api_socket}"]
                                     if case.config.api_socket else []),
        "teardown": list(case.teardown),
        "files": list(case.files),
        **guest_keys(case, testhost),
        "api_socket": case.config.api_socket,
        # --print-layout checks against the host it runs on: the case's own.
        "layout_argv": driver.layout_command(case.config) if case.valid else None,
        **(faults.inhost_extra(faults.by_name(case.name)) if case.guest == "faults" else {}),
    }


def guest_keys(case: matrix.Case, testhost: bool) -> dict:
    """The runner's keys that follow from the guest, whichever VMM runs it: when it holds, its
    budget, its steps and typed input, how often a hung boot is tried."""
    return {
        "hold_marker": "SUMMARY:" if case.valid and case.end in ("hold", "watch") else None,
        "timeout": ((linux.CASE_TIMEOUT_S if case.guest == "linux" else CASE_TIMEOUT_S)
                    + resize.STEP_BUDGET_S * len(case.steps)),
        "steps": [{k: v for k, v in s.items() if not k.startswith("expect")} for s in case.steps],
        "input": ({"after": linux.SHELL_UP, "ready": linux.SHELL_READY,
                   "text": linux.SHELL_INPUT} if case.guest == "linux" and case.end == "shell"
                  else None),
        "attempts": (linux.ATTEMPTS if case.guest == "linux" else
                     TESTHOST_ATTEMPTS if testhost and case.valid and
                     case.guest in ("probe", "hostile") else 1),
        "idle_timeout": linux.IDLE_S if case.guest == "linux" else None,
    }


def check(case: matrix.Case, result: dict) -> list[str]:
    """The failures of one case from its raw result (which may come from any venue)."""
    if result.get("skipped"):
        return []
    if result.get("lost"):
        return [f"lost: {result['lost']}"]
    if not case.valid:
        return check_rejection(case.expect, result)
    return _check_valid(case, result) + unstoppable_hangs(result)


def _check_valid(case: matrix.Case, result: dict) -> list[str]:
    if case.guest == "faults":
        return faults.check(faults.by_name(case.name), result) + setup_failures(result)
    if case.guest == "hostile":
        return hostile.check(hostile.by_name(case.name), case.expect, result) + \
            setup_failures(result)
    if case.steps and case.guest == "linux":
        return resize.check_linux(case.expect, list(case.steps), result, case.config.balloon) + \
            setup_failures(result)
    if case.steps:
        return resize.check(case.expect, list(case.steps), result, case.config.balloon) + \
            setup_failures(result)
    if case.guest == "linux":
        return check_linux(case, result)
    lay = result.get("layout") or {}
    if lay.get("rc") != 0:
        failures = [f"--print-layout refused a valid configuration: {lay.get('stderr', '').strip()}"]
        return failures + check_boot(case.expect, result, None)
    return check_boot(case.expect, result, json.loads(lay["stdout"]))


def check_linux(case: matrix.Case, result: dict) -> list[str]:
    """The Linux guest's report and end; the host while it held, as for the probe."""
    if result["timed_out"]:
        return check_boot(case.expect, result, None)
    bad = linux.check(case.expect, case.end, result)
    if case.end == "hold":
        if "during" in result:
            bad += check_host(case.expect, result)
        else:
            bad.append("the guest never held after its report: no host state was sampled")
    if (result.get("layout") or {}).get("rc") != 0:
        bad.append("--print-layout refused a valid configuration")
    return bad + setup_failures(result)


def shard_of(name: str, n: int) -> int:
    """A case's shard (1..n): from its name alone, so that a slice stays the same slice as the
    matrix grows and every machine of a CI job matrix computes the same split."""
    return zlib.crc32(name.encode()) % n + 1


def parse_shard(text: str) -> tuple[int, int]:
    try:
        k, n = (int(x) for x in text.split("/"))
    except ValueError:
        raise ValueError(f"--shard {text!r}: expected K/N, e.g. 2/4") from None
    if not 1 <= k <= n:
        raise ValueError(f"--shard {text!r}: K must be in 1..N")
    return k, n


def plan(cases: list[matrix.Case], decision: venues.Decision,
         side_by_side: bool = False) -> dict[str, list[matrix.Case]]:
    """Which cases go where; natively unmet ones go to the test host under auto, else skip.
    `side_by_side` (compare, VENUE=auto): what this machine's KVM can run goes native even
    where the test host is faster per case, because the two batches then run at once."""
    groups: dict[str, list[matrix.Case]] = {"native": [], "testhost": [], "skipped": []}
    native_ok = decision.native is not None and decision.native.usable
    if decision.venue == "testhost" and not (side_by_side and decision.requested == "auto"
                                             and native_ok):
        groups["testhost"] = list(cases)
        return groups
    if decision.native is None or not decision.native.usable:
        groups["skipped"] = list(cases)
        return groups
    here = needs.facts_here()
    for c in cases:
        if needs.unmet(c, here) is None:
            groups["native"].append(c)
        else:
            groups["testhost" if decision.requested == "auto" else "skipped"].append(c)
    return groups


def run(mode: str, pattern: str | None, shard: tuple[int, int] | None, out: Path) -> int:
    cases = matrix.generate(mode)
    if pattern:
        cases = [c for c in cases if pattern in c.name]
    if shard:
        cases = [c for c in cases if shard_of(c.name, shard[1]) == shard[0]]
    if not cases:
        print(f"conformance: no case of the {mode} matrix matches {pattern!r}"
              + (f" in shard {shard[0]}/{shard[1]}" if shard else ""), flush=True)
        return 1
    try:
        decision = venues.decide()
    except ValueError as e:
        print(f"conformance: {e}", flush=True)
        return 2
    driver = MemvisorDriver()
    groups = plan(cases, decision)
    print(f"conformance: {len(cases)} cases ({mode}"
          + (f", shard {shard[0]}/{shard[1]}" if shard else "") + f") under {driver.name}; "
          + decision.line(), flush=True)
    print("conformance: " + ", ".join(f"{len(v)} {k}" for k, v in groups.items() if v),
          flush=True)
    out.mkdir(parents=True, exist_ok=True)
    stream = (out / "results.jsonl").open("w")
    outcomes: dict[str, Outcome] = {}
    here = needs.facts_here() if groups["skipped"] and decision.native else None

    def record(case: matrix.Case, result: dict, seconds: float) -> None:
        o = Outcome(case, check(case, result), seconds, result)
        outcomes[case.name] = o
        stream.write(json.dumps(results.case_record(o)) + "\n")
        stream.flush()
        label = {"passed": "PASS", "failed": "FAIL", "skipped": "SKIP"}[o.status]
        hung = len(result.get("hung_attempts") or [])
        lost = len(result.get("lost_testhosts") or [])
        print(f"[{len(outcomes)}/{len(cases)}] {case.name:40} {label} {seconds:6.2f}s "
              f"{result.get('venue') or ''}" + (f" (after {hung} hung boot(s))" if hung else "")
              + (f" (after {lost} lost test host(s))" if lost and not result.get("lost") else ""),
              flush=True)

    for c in groups["skipped"]:
        why = needs.unmet(c, here) if here else None
        record(c, {"name": c.name, "argv": driver.command(c.config), "venue": "native",
                   "skipped": why or f"native KVM is not usable: {decision.reason}"}, 0.0)
    for where in ("native", "testhost"):
        group = groups[where]
        if not group:
            continue
        inhost = [inhost_case(c, driver, where == "testhost") for c in group]
        run_cases(inhost, where,
                  on_result=lambda i, r, g=group: record(g[i], r, float(r.get("seconds", 0.0))))
    stream.close()
    ordered = [outcomes[c.name] for c in cases]
    # The venue compares probe boots: a Linux case's 20-60 s would only skew the median.
    th = [o.result["seconds"] for o in ordered if o.result.get("venue") == "testhost"
          and o.case.valid and o.case.guest == "probe" and not o.failures]
    venues.record_testhost(th)
    cov = matrix.coverage(cases)
    head = {"mode": mode, "pattern": pattern, "shard": list(shard) if shard else None,
            "venue": {"requested": decision.requested, "chosen": decision.venue,
                      "reason": decision.reason}, "coverage": cov}
    records = [results.case_record(o) for o in ordered]
    results.write(records, {o.case.name: o.result for o in ordered}, head, out)
    for o in ordered:
        if o.status == "failed":
            print(results.explain(o), flush=True)
    print(results.summary(records, cov, out, head), flush=True)
    return 1 if any(o.status == "failed" for o in ordered) else 0


def main(argv: list[str]) -> int:
    import argparse
    ap = argparse.ArgumentParser(prog="python3 -m conformance")
    ap.add_argument("command", choices=["run", "list", "merge", "compare"])
    ap.add_argument("dirs", nargs="*", type=Path, help="merge: the shards' result directories")
    ap.add_argument("--quick", action="store_true", help="the representative subset (make test)")
    ap.add_argument("-k", dest="pattern", help="only cases whose name contains this")
    ap.add_argument("--shard", help="K/N: only the K-th of N stable slices of the matrix")
    ap.add_argument("--out", type=Path, default=None, help="results directory")
    args = ap.parse_intermixed_args(argv)
    mode = "quick" if args.quick else "full"
    out = args.out or (OUT / mode)
    if args.command == "list":
        for c in matrix.generate(mode):
            print(c.name, " ".join(c.config.ch_args()))
        return 0
    if args.command == "merge":
        if not args.dirs or args.out is None:
            ap.error("merge: --out DIR and at least one shard directory")
        doc, problems = results.merge(args.dirs, out)
        for p in problems:
            print(f"conformance merge: {p}")
        print(f"conformance merge: {len(doc['cases'])} cases from {len(args.dirs)} shards: "
              f"{doc['passed']} passed, {doc['failed']} failed, {doc['skipped']} skipped; "
              f"{out / 'results.json'}, {out / 'junit.xml'}")
        return 1 if problems or doc["failed"] else 0
    if args.command == "compare":
        from .compare import compare   # it imports this module
        try:
            shard = parse_shard(args.shard) if args.shard else None
        except ValueError as e:
            ap.error(str(e))
        return compare(args.pattern, shard, args.out or OUT)
    if args.dirs:
        ap.error("run: unexpected arguments " + " ".join(map(str, args.dirs)))
    try:
        shard = parse_shard(args.shard) if args.shard else None
    except ValueError as e:
        ap.error(str(e))
    return run(mode, args.pattern, shard, out)
