"""python3 -m bench run|check|baseline (see bench/README.md; `make bench`, `make bench-check`)."""
from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from . import BUILD, OUT, backings, check, guest, native, results
from memvisor.sizes import parse_size  # noqa: E402  (bench/__init__ puts harness/ on the path)


def _size(text: str) -> int:
    n = parse_size(text)
    if n <= 0 or n % (2 << 20):
        raise argparse.ArgumentTypeError(f"{text}: not a positive multiple of 2M")
    return n


def _only(text: str) -> list[str]:
    names = [n for n in text.split(",") if n]
    for n in names:
        backings.by_name(n)
    return names


def run_args(ap: argparse.ArgumentParser) -> None:
    ap.add_argument("--size", type=_size, default=_size("1G"), help="host populate size per backing [1G]")
    ap.add_argument("--repeat", type=int, default=5, help="timed repeats of everything [5]")
    ap.add_argument("--fault-size", type=_size, default=_size("64M"),
                    help="each region of the fault guest [64M]")
    ap.add_argument("--boot-size", type=_size, default=_size("256M"),
                    help="guest RAM of the boot-time runs, rounded up to the page size [256M]")
    ap.add_argument("--only", type=_only, help="backings to run (others are skipped): a,b,...")
    ap.add_argument("--guest-only", type=_only,
                    help="backings to run in the test host (parts 2-3); default: those of --only")
    ap.add_argument("--tmpfs", default="/dev/shm", help="a tmpfs for the host's file backings")
    ap.add_argument("--no-testhost", action="store_true", help="host part only (parts 2-4 skipped)")
    ap.add_argument("--no-qemu", action="store_true", help="skip the QEMU comparisons")
    ap.add_argument("--no-warmup", action="store_true", help="no untimed first pass on the host")
    ap.add_argument("--no-plots", action="store_true")
    ap.add_argument("--out", type=Path, default=OUT, help=f"results directory [{OUT}]")


def _skip_all(skipped: dict[str, str], parts: tuple[str, ...], reason: str) -> None:
    for b in backings.names():
        for part in parts:
            skipped.setdefault(f"{part}.{b}", reason)


def run(a: argparse.Namespace) -> tuple[dict[str, Any], bool]:
    """One run: every figure, written to a.out/results.json. Returns it and whether all ran."""
    t0 = time.monotonic()
    created = datetime.now(timezone.utc).isoformat(timespec="seconds")
    ok = True
    # A test host (ours or anyone's) would share the 2 cores with every timing below.
    from .batch import wait_for_other_testhosts
    wait_for_other_testhosts(1800)
    print(f"bench: host part, {a.size >> 20} MiB per backing, {a.repeat} repeats", flush=True)
    recs, pools = native.run(a.size, a.repeat, a.tmpfs, not a.no_warmup, a.only)
    figs, ratios, skipped, host = native.figures(recs)
    timing = {"host_s": round(time.monotonic() - t0, 1)}
    host["hugetlb_pools"] = pools
    if a.only:
        for b in set(backings.names()) - set(a.only):
            skipped[f"host.{b}"] = "not selected (--only)"
    p = guest.Params(repeat=a.repeat, fault_size=a.fault_size, boot_size=a.boot_size,
                     qemu=not a.no_qemu, only=a.guest_only or a.only)
    if a.no_testhost:
        _skip_all(skipped, ("guest", "boot"), "test-host part not run (--no-testhost)")
        skipped["vmm"] = "test-host part not run (--no-testhost)"
    else:
        BUILD.mkdir(exist_ok=True)
        with tempfile.TemporaryDirectory(dir=BUILD, prefix="bench.") as d:
            p.exchange = Path(d)
            cases = guest.cases(p)
            print(f"bench: test-host part, {len(cases)} cases in one ci/testhost boot", flush=True)
            from .batch import run_batch
            t1 = time.monotonic()
            try:
                res = run_batch(cases, timeout=_batch_timeout(cases))
                lost = [c for c, r in zip(cases, res) if r.get("lost")]
                if lost:
                    # The test host hangs now and then (a soft lockup of its kernel, seen twice
                    # in ~100 cases): one more boot for what was lost, never more.
                    print(f"bench: retrying the {len(lost)} lost cases in one more boot",
                          flush=True)
                    again = iter(run_batch(lost, timeout=_batch_timeout(lost)))
                    res = [next(again) if r.get("lost") else r for r in res]
                timing.update(testhost_s=round(time.monotonic() - t1, 1), testhost_cases=len(res),
                              testhost_case_s=round(sum(r["seconds"] for r in res), 1))
                lost = [r["name"] for r in res if r.get("lost")]
                if lost:
                    ok = False
                    timing["testhost_lost_cases"] = lost
                gf, gr, gs = guest.figures(res, p)
                figs.update(gf)
                ratios.update(gr)
                skipped.update(gs)
            except (RuntimeError, OSError) as e:
                ok = False
                reason = f"test-host batch failed: {str(e).strip().splitlines()[0]}"
                _skip_all(skipped, ("guest", "boot"), reason)
                skipped["vmm"] = reason
                print(f"bench: {e}", file=sys.stderr)
        if p.only:
            for b in set(backings.names()) - set(p.only):
                for part in ("guest", "boot"):
                    skipped.setdefault(f"{part}.{b}", "not selected (--only/--guest-only)")
    out = {
        "schema": results.SCHEMA, "created": created,
        "duration_s": round(time.monotonic() - t0, 1), "timing": timing,
        "machine": results.machine(),
        "params": {"size": a.size, "repeat": a.repeat, "fault_size": a.fault_size,
                   "boot_size": a.boot_size, "only": a.only, "guest_only": a.guest_only, "tmpfs": a.tmpfs,
                   "testhost": not a.no_testhost, "qemu": not a.no_qemu, "warmup": not a.no_warmup,
                   "testhost_options": "ci/testhost defaults (2 nodes, 8G, 512x2M, 2x1G)"},
        "host": host,
        "backings": backings.names(),
        "figures": dict(sorted(figs.items())),
        "ratios": dict(sorted(ratios.items())),
        "skipped": dict(sorted(skipped.items())),
    }
    a.out.mkdir(parents=True, exist_ok=True)
    (a.out / "results.json").write_text(json.dumps(out, indent=1) + "\n")
    bad = results.problems(out)
    if bad:
        ok = False
        print("bench: results.json is not well-formed:\n  " + "\n  ".join(bad), file=sys.stderr)
    if not a.no_plots:
        from . import plots  # matplotlib is slow to import; not needed for check
        plots.draw_all(out, a.out)
    print(results.table(out))
    print(f"bench: wrote {a.out / 'results.json'}" + ("" if a.no_plots else " and PNGs")
          + f" in {out['duration_s']} s")
    return out, ok


def _batch_timeout(cases: list[dict[str, Any]]) -> int:
    """ci/testhost's limit: the boot, ~10 s a case (they take 0.5-5 s), hyperfine in full."""
    return 300 + sum(int(c["timeout"]) if c["name"].startswith("hyperfine/") else 10
                     for c in cases)


def cmd_run(a: argparse.Namespace) -> int:
    _, ok = run(a)
    return 0 if ok else 1


def cmd_check(a: argparse.Namespace) -> int:
    base = check.load(a.baseline)
    if a.results:
        res = json.loads(a.results.read_text())
    else:
        # A fresh run with the baseline's parameters, so that its ratios are comparable.
        bp = base["params"]
        ns = argparse.Namespace(
            size=bp["size"], repeat=bp["repeat"], fault_size=bp["fault_size"],
            boot_size=bp["boot_size"], only=bp.get("only"), guest_only=bp.get("guest_only"), tmpfs=bp.get("tmpfs", "/dev/shm"),
            no_testhost=not bp["testhost"], no_qemu=not bp["qemu"],
            no_warmup=not bp.get("warmup", True), no_plots=False, out=a.out)
        res, _ = run(ns)
    bad = results.problems(res)
    if bad:
        print("bench-check: results not well-formed:\n  " + "\n  ".join(bad), file=sys.stderr)
        return 1
    text, passed = check.report(check.compare(res, base, a.tolerance))
    print(text)
    return 0 if passed else 1


def cmd_baseline(a: argparse.Namespace) -> int:
    res = json.loads(a.results.read_text())
    bad = results.problems(res)
    if bad:
        print("bench: results not well-formed:\n  " + "\n  ".join(bad), file=sys.stderr)
        return 1
    tolerances = {}
    for item in a.widen or []:
        name, _, tol = item.partition("=")
        tolerances[name] = float(tol)
    data = check.make_baseline(res, a.tolerance, tolerances, a.note)
    a.baseline.write_text(json.dumps(data, indent=1) + "\n")
    print(f"bench: wrote {a.baseline} ({len(data['ratios'])} ratios, tolerance {a.tolerance:.0%})")
    return 0


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="python3 -m bench", description=__doc__)
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run", help="measure everything, write results.json, PNGs and a table")
    run_args(r)
    r.set_defaults(func=cmd_run)
    c = sub.add_parser("check", help="compare a run's ratios with bench/baseline.json")
    c.add_argument("--results", type=Path, help="compare this results.json instead of a fresh run")
    c.add_argument("--baseline", type=Path, default=check.BASELINE)
    c.add_argument("--tolerance", type=float, help="override the baseline's tolerance (0.3 = 30%%)")
    c.add_argument("--out", type=Path, default=OUT, help="where a fresh run writes its results")
    c.set_defaults(func=cmd_check)
    b = sub.add_parser("baseline", help="write bench/baseline.json from a results.json")
    b.add_argument("--results", type=Path, default=OUT / "results.json")
    b.add_argument("--baseline", type=Path, default=check.BASELINE)
    b.add_argument("--tolerance", type=float, default=check.DEFAULT_TOLERANCE)
    b.add_argument("--widen", action="append", metavar="RATIO=TOL",
                   help="a wider tolerance for one noisy ratio")
    b.add_argument("--note", default="", help="free text kept in the baseline (machine, date...)")
    b.set_defaults(func=cmd_baseline)
    a = ap.parse_args(argv)
    if shutil.which("make") is None:
        print("bench: make not found", file=sys.stderr)
        return 1
    return a.func(a)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
