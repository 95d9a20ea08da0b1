"""python3 -m bench run|check|baseline (see bench/README.md; `make bench`, `make bench-check`)."""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shutil
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

from . import BUILD, OUT, backings, check, guest, linux, native, qemu, resize, results
from memvisor import venue  # noqa: E402  (bench/__init__ puts harness/ on the path)
from memvisor.runner import run_cases, wait_for_other_testhosts  # noqa: E402
from memvisor.sizes import parse_size  # noqa: E402


def _size(text: str) -> int:
    n = parse_size(text)
    if n <= 0 or n % (2 << 20):
        raise argparse.ArgumentTypeError(f"{text}: not a positive multiple of 2M")
    return n


def _resize_size(text: str) -> int:
    n = parse_size(text)
    if n <= 0 or n % (128 << 20):
        raise argparse.ArgumentTypeError(f"{text}: not a positive multiple of 128M (virtio-mem "
                                         "regions and ACPI DIMMs are 128 MiB aligned)")
    return n


def _only(text: str) -> list[str]:
    names = [n for n in text.split(",") if n]
    for n in names:
        backings.by_name(n)
    return names


PARTS = results.RUN_PARTS


def _parts(text: str) -> list[str]:
    names = [n for n in text.split(",") if n]
    for n in names:
        if n not in PARTS:
            raise argparse.ArgumentTypeError(f"{n}: not one of {', '.join(PARTS)}")
    return names


def run_args(ap: argparse.ArgumentParser) -> None:
    ap.add_argument("--parts", type=_parts, default=list(PARTS),
                    help="parts to run: host (1), guest (2-5), linux (6) [host,guest,linux]")
    ap.add_argument("--linux-accel", choices=("kvm", "tcg"), default="kvm",
                    help="QEMU's accelerator in part 6; tcg only to debug it where KVM cannot "
                         "run Linux (memvisor still needs KVM) [kvm]")
    ap.add_argument("--size", type=_size, default=_size("1G"), help="host populate size per backing [1G]")
    ap.add_argument("--repeat", type=int, default=5, help="timed repeats of everything [5]")
    ap.add_argument("--fault-size", type=_size, default=_size("64M"),
                    help="each region of the fault guest [64M]")
    ap.add_argument("--boot-size", type=_size, default=_size("256M"),
                    help="guest RAM of the boot-time runs, rounded up to the page size [256M]")
    ap.add_argument("--resize-size", type=_resize_size, default=_resize_size("256M"),
                    help="each resize step and the balloon inflation (part 5) [256M]")
    ap.add_argument("--only", type=_only, help="backings to run (others are skipped): a,b,...")
    ap.add_argument("--guest-only", type=_only,
                    help="backings to run in the test host (parts 2-3); default: those of --only")
    ap.add_argument("--tmpfs", default="/dev/shm", help="a tmpfs for the host's file backings")
    ap.add_argument("--no-testhost", action="store_true",
                    help="no test host (parts 2-5 natively only, if at all); implied by VENUE=native")
    ap.add_argument("--no-qemu", action="store_true", help="skip the QEMU comparisons")
    ap.add_argument("--no-native", action="store_true",
                    help="no native guest figures even where /dev/kvm works here")
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
    wait_for_other_testhosts(1800)
    if "host" in a.parts:
        print(f"bench: host part, {a.size >> 20} MiB per backing, {a.repeat} repeats", flush=True)
        recs, pools = native.run(a.size, a.repeat, a.tmpfs, not a.no_warmup, a.only)
        figs, ratios, skipped, host = native.figures(recs)
        host["hugetlb_pools"] = pools
    else:
        figs, ratios, skipped, host = {}, {}, {}, {}
        _skip_all(skipped, ("host",), "not selected (--parts)")
    timing = {"host_s": round(time.monotonic() - t0, 1)}
    if a.only:
        for b in set(backings.names()) - set(a.only):
            skipped[f"host.{b}"] = "not selected (--only)"
    p = guest.Params(repeat=a.repeat, fault_size=a.fault_size, boot_size=a.boot_size,
                     qemu=not a.no_qemu, only=a.guest_only or a.only, resize_size=a.resize_size)
    if os.environ.get("VENUE") == "native" and not a.no_testhost:
        print("bench: VENUE=native: no test host, the guest parts natively", flush=True)
        a.no_testhost = True
    no_guest = "not selected (--parts)" if "guest" not in a.parts else \
        "test-host part not run (--no-testhost or VENUE=native)" if a.no_testhost else None
    if no_guest:
        _skip_all(skipped, ("guest", "boot"), no_guest)
        for part in ("vmm", "resize", "balloon"):
            skipped[part] = no_guest
    else:
        t1 = time.monotonic()
        res, gf, gr, gs = _guest_part(p, "testhost")
        timing.update(testhost_s=round(time.monotonic() - t1, 1), testhost_cases=len(res),
                      testhost_case_s=round(sum(r["seconds"] for r in res), 1))
        lost = [r["name"] for r in res if r.get("lost")]
        if lost:
            ok = False
            timing["testhost_lost_cases"] = lost
        figs.update(gf)
        ratios.update(gr)
        skipped.update(gs)
        if p.only:
            for b in set(backings.names()) - set(p.only):
                for part in ("guest", "boot"):
                    skipped.setdefault(f"{part}.{b}", "not selected (--only/--guest-only)")
    lp = linux.Params(repeat=a.repeat, warmup=not a.no_warmup, accel=a.linux_accel,
                      vmms=linux.VMMS[:1] if a.no_qemu else linux.VMMS)
    if "linux" not in a.parts:
        skipped["linux"] = skipped["native.linux"] = "not selected (--parts)"
    else:
        ok = _linux_part(a, lp, figs, ratios, skipped, timing) and ok
    native_kind = None
    if a.no_native:
        skipped["native"] = "native part not run (--no-native)"
    elif "guest" not in a.parts:
        for part in ("guest", "boot", "vmm", "resize", "balloon"):
            skipped[f"native.{part}"] = "not selected (--parts)"
    else:
        decision = venue.decide("native")
        n = decision.native
        if n is None or not n.usable:
            skipped["native"] = f"no usable KVM on this machine: {decision.reason}"
        else:
            native_kind = n.kind
            # The same guest cases on this machine's own KVM, memvisor only (QEMU's figures
            # stay the test host's): named native.<figure>, compared only with native figures.
            pn = dataclasses.replace(p, qemu=False)
            print(f"bench: native part on {n.kind} KVM", flush=True)
            t2 = time.monotonic()
            res, gf, gr, gs = _guest_part(pn, "native")
            timing["native_s"] = round(time.monotonic() - t2, 1)
            gs = {k: v for k, v in gs.items() if not k.endswith(".qemu")}
            figs.update({f"native.{k}": v for k, v in gf.items()})
            ratios.update({f"native.{k}": _renamed(v) for k, v in gr.items()})
            skipped.update({f"native.{k}": v for k, v in gs.items()})
            skipped["native.boot.qemu"] = skipped["native.vmm.qemu"] = \
                "QEMU is compared in the test host only"
    if native_kind is None and any(n.startswith("native.linux.") for n in figs):
        native_kind = venue.native_kvm().kind     # bench-check compares like with like
    # Resize rates against this machine's limits of the host part, in both venues.
    ratios.update(resize.host_ratios(figs))
    out = {
        "schema": results.SCHEMA, "created": created,
        "duration_s": round(time.monotonic() - t0, 1), "timing": timing,
        "machine": results.machine(),
        "params": {"size": a.size, "repeat": a.repeat, "fault_size": a.fault_size,
                   "boot_size": a.boot_size, "only": a.only, "guest_only": a.guest_only, "tmpfs": a.tmpfs,
                   "testhost": not a.no_testhost, "qemu": not a.no_qemu, "warmup": not a.no_warmup,
                   "native": not a.no_native, "resize_size": a.resize_size,
                   "parts": a.parts, "linux_accel": a.linux_accel,
                   "linux_testhost_cpus": linux.in_testhost(["memvisor"])[-1],
                   "testhost_options": "ci/testhost defaults (2 nodes, 8G, 512x2M, 2x1G)"},
        "host": host,
        "venues": {"testhost": "QEMU TCG test host (ci/testhost), nested KVM",
                   "native": native_kind},
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


def _guest_part(p: guest.Params, where: str) -> tuple[list[dict[str, Any]], dict[str, Any],
                                                     dict[str, Any], dict[str, str]]:
    """The guest cases run where `where` says, and their figures (read while the exchange
    directory with hyperfine's JSON still exists). A case lost to a frozen test host gets one
    more try in a fresh one (its repeat would otherwise be missing), never more."""
    BUILD.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory(dir=BUILD, prefix="bench.") as d:
        p.exchange = Path(d)
        cases = qemu.batch(guest.cases(p), p) + resize.cases(p)
        print(f"bench: {len(cases)} guest cases ({where})", flush=True)

        res = run_cases(cases, where, on_result=_progress(cases))
        again = [i for i, r in enumerate(res) if r.get("lost")]
        if again:
            print(f"bench: {len(again)} lost cases get one more test host", flush=True)
            for i, r in zip(again, run_cases([cases[i] for i in again], where)):
                res[i] = r
        figs, ratios, skipped = guest.figures(res, p)
        qf, qs = qemu.figures(res, p)
        rf, rs = resize.figures(res, p)
        figs = {**figs, **qf, **rf}
        return res, figs, {**ratios, **qemu.ratios(figs)}, {**skipped, **qs, **rs}


def _progress(cases: list[dict[str, Any]]) -> Callable[[int, dict[str, Any]], None]:
    def progress(i: int, r: dict[str, Any]) -> None:
        print(f"bench:   [{i + 1}/{len(cases)}] {r['name']}: rc={r['rc']} {r['seconds']}s"
              + (f" LOST: {r['lost'].splitlines()[0]}" if r.get("lost") else ""),
              file=sys.stderr, flush=True)
    return progress


def _linux_part(a: argparse.Namespace, p: linux.Params, figs: dict[str, Any],
                ratios: dict[str, Any], skipped: dict[str, str], timing: dict[str, Any]) -> bool:
    """Part 6 in the test host (Linux there without paravirtual EOI: conformance/linux.py),
    and natively where this machine's KVM runs Debian's kernel (PVM does not). False when a
    case was lost."""
    ok = True
    venues: list[tuple[str, str, linux.Params]] = []
    if a.no_testhost:
        skipped["linux"] = "test-host part not run (--no-testhost or VENUE=native)"
    else:
        venues.append(("testhost", "", p))
    if a.no_native:
        skipped["native.linux"] = "native part not run (--no-native)"
    else:
        why = venue.native_linux()
        # QEMU under TCG needs no KVM; memvisor (and QEMU under KVM) need one that runs Linux.
        can = [v for v in p.vmms if why is None or (v != "memvisor" and p.accel == "tcg")]
        for v in set(p.vmms) - set(can):
            skipped[f"native.linux.{v}"] = f"this machine's KVM cannot run Linux: {why}"
        if can:
            venues.append(("native", "native.", dataclasses.replace(p, vmms=tuple(can))))
        else:
            skipped["native.linux"] = f"this machine's KVM cannot run Linux: {why}"
    for where, prefix, vp in venues:
        cases = linux.cases(vp, testhost=where == "testhost")
        print(f"bench: Linux boot part, {len(cases)} cases ({where})", flush=True)
        t = time.monotonic()
        res = run_cases(cases, where, on_result=_progress(cases))
        timing[f"linux_{where}_s"] = round(time.monotonic() - t, 1)
        ok = ok and not any(r.get("lost") for r in res)
        f, r, s = linux.renamed(prefix, *linux.figures(res, vp))
        figs.update(f)
        ratios.update(r)
        skipped.update(s)
        for name, fig in f.items():
            for bad in fig.get("invalid", []) if name.endswith(".exit_ms") else []:
                print(f"bench: {name[:-len('.exit_ms')]}: invalid sample, {bad}", file=sys.stderr)
    return ok


def _renamed(r: dict[str, Any]) -> dict[str, Any]:
    return {**r, **{k: f"native.{r[k]}" for k in ("num", "den", "paired") if k in r}}


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
            no_warmup=not bp.get("warmup", True), no_plots=False, out=a.out,
            no_native=not bp.get("native", True),
            resize_size=bp.get("resize_size", _resize_size("256M")),
            parts=bp.get("parts", list(PARTS)), linux_accel=bp.get("linux_accel", "kvm"))
        res, _ = run(ns)
    bad = results.problems(res)
    if bad:
        print("bench-check: results not well-formed:\n  " + "\n  ".join(bad), file=sys.stderr)
        return 1
    text, passed = check.report(check.compare(res, base, a.tolerance))
    print(text)
    new = check.unbaselined(res, base)
    if new:
        print(f"bench-check: {len(new)} ratios of this run are not in the baseline, not compared "
              f"(record one: python3 -m bench baseline): {', '.join(new)}")
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
