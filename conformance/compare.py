"""`make conformance-compare`: the matrix under memvisor and under QEMU, side by side.

    python3 -m conformance compare [-k NAME] [--shard K/N] [--out DIR]

Each case runs under both VMMs where VENUE puts it (native or the test host, one runner batch
for both), is checked against the same oracle, and gets a status per VMM: pass, fail, refused,
n/a (QEMU cannot write it) or skipped (this host cannot give it what it needs). The probe
and Debian's Linux boot under both; a Linux resize sequence plays the same steps under QEMU
over QMP (harness/memvisor/qmpcontrol.py: qom-set requested-size, object-add + device_add
pc-dimm, balloon). Every difference must be explained by harness/memvisor/differences.py; an
unexplained one fails the run. Writes DIR/compare.json and DIR/compare.html, prints a table.
CLOUD_HYPERVISOR=/path adds a column for a cloud-hypervisor binary (probe cases; the guest's
view only).
"""
from __future__ import annotations

import html
import json
import os
import threading
from pathlib import Path

from memvisor import venue as venues
from memvisor.differences import BY_ID, for_status, matching
from memvisor.driver import CloudHypervisorDriver, MemvisorDriver, QemuDriver
from memvisor.qemuargs import NotApplicable, QemuCommand, translate
from memvisor.runner import run_cases

from . import cases as matrix
from . import qemu, run
from .checks import check_boot, check_guest

OUT = run.OUT
COLOURS = {"pass": "#9be39b", "fail": "#f08080", "refused": "#9bc4e3", "n/a": "#dddddd",
           "skipped": "#f5f5f5"}


def qemu_plan(case: matrix.Case) -> QemuCommand | NotApplicable:
    if case.guest in ("resize", "hostile"):
        return NotApplicable("memvisor-devices-guest", f"the {case.guest} guest")
    if case.steps and case.guest != "linux":
        return NotApplicable("fault-steps", f"{len(case.steps)} steps")
    rule = None if case.valid else case.expect.rule  # type: ignore[union-attr]
    return translate(case.config, rule, matrix.testhost_facts())


def qemu_error(result: dict | None) -> str:
    """QEMU's own error line (not its warnings), when it refused."""
    lines = [ln for ln in (result or {}).get("stderr", "").splitlines()
             if ln.startswith("qemu-system") and "warning:" not in ln]
    return lines[-1] if lines else ""


def explain(case: matrix.Case, mv: str, q: str, q_failures: list[str],
            plan: QemuCommand | NotApplicable, q_error: str = "") -> tuple[str, list[str]]:
    """(explanation, unexplained failure lines) of one case's two statuses."""
    # A valid case memvisor refuses is as much its bug (or the oracle's) as a failed one, and
    # stays one whatever QEMU does with the case, n/a included.
    # A fault case (conformance/faults.py) is valid but asks memvisor to refuse: its host
    # cannot give what the case asks for.
    mv_bad = mv == "fail" or (mv == "refused" and case.valid and case.guest != "faults")
    missing: list[str] = []
    if mv_bad:
        missing.append(f"memvisor {'fails' if mv == 'fail' else 'refuses'} this case: a "
                       "memvisor or oracle bug, not a difference")
    if isinstance(plan, NotApplicable):
        d = BY_ID.get(plan.difference)
        if d is None:
            return "", missing + [f"n/a names no known difference: {plan.difference}"]
        return f"n/a [{d.id}] {plan.detail}: {d.text} (source: {d.source})", missing
    if "skipped" in (mv, q):
        return "not run on this host", missing
    if mv == q and not mv_bad:
        return "", []
    parts: list[str] = []
    # A rejection QEMU booted is explained by its rule below, a fault case by its name.
    if q == "fail" and case.valid and case.guest != "faults":
        for f in q_failures:
            d = matching("check", f, case.config, case.expect)  # type: ignore[arg-type]
            if d is None:
                missing.append(f)
            elif f"[{d.id}]" not in " ".join(parts):
                parts.append(f"[{d.id}] {d.text} (source: {d.source})")
    if mv == "pass" and q == "refused":
        d = matching("refusal", q_error, case.config, case.expect)  # type: ignore[arg-type]
        if d is None:
            missing.append(f"QEMU refused what memvisor boots: {q_error or '(no error line)'}")
        else:
            parts.append(f"[{d.id}] {d.text} (source: {d.source})")
    elif mv != q and not (q == "fail" and case.valid and mv == "pass"):
        rule = None if case.valid else case.expect.rule  # type: ignore[union-attr]
        d = for_status(rule, mv, q, case.name)
        if d is None:
            missing.append(f"memvisor {mv}, QEMU {q}: no entry for "
                           + (f"rule {rule}" if case.guest != "faults" else case.name))
        else:
            parts.append(f"[{d.id}] {d.text} (source: {d.source})")
    return "; ".join(parts), missing


def ch_binary() -> tuple[str | None, str]:
    path = os.environ.get("CLOUD_HYPERVISOR")
    if not path:
        return None, ("cloud-hypervisor: not run (give CLOUD_HYPERVISOR=/path/to/cloud-hypervisor; "
                      "none can be built on this machine: no Rust toolchain or crates reachable)")
    if not os.access(path, os.X_OK):
        return None, f"cloud-hypervisor: CLOUD_HYPERVISOR={path} is not an executable: not run"
    return path, f"cloud-hypervisor: {path} (probe cases, the guest's view only)"


def compare(pattern: str | None, shard: tuple[int, int] | None, out: Path) -> int:
    cases = [c for c in matrix.generate("full") if not pattern or pattern in c.name]
    if shard:
        cases = [c for c in cases if run.shard_of(c.name, shard[1]) == shard[0]]
    if not cases:
        print("conformance compare: no case matches", flush=True)
        return 1
    decision = venues.decide()
    groups = run.plan(cases, decision, side_by_side=True)
    mvd, qd = MemvisorDriver(), QemuDriver()
    ch_path, ch_line = ch_binary()
    chd = CloudHypervisorDriver(Path(ch_path)) if ch_path else None
    plans = {c.name: qemu_plan(c) for c in cases}
    print(f"conformance compare: {len(cases)} cases, memvisor and QEMU ({qd.binary}); "
          + decision.line(), flush=True)
    print(ch_line, flush=True)
    results: dict[tuple[str, str], dict] = {}
    batches = {where: batch_of(groups[where], where == "testhost", mvd, qd, chd, plans)
               for where in ("native", "testhost")}
    print("conformance compare: " + ", ".join(f"{len(groups[w])} cases {w} ({len(b)} runs)"
                                              for w, b in batches.items() if b), flush=True)

    def run_batch(where: str, batch: list[tuple[str, matrix.Case, dict]]) -> None:
        def got(i: int, r: dict) -> None:
            vmm, c, _ = batch[i]
            results[(vmm, c.name)] = r
            print(f"  {c.name:40} {vmm:16} rc={r.get('rc')} {r.get('seconds', 0):.2f}s "
                  f"{r.get('venue', '')}", flush=True)
        try:
            run_cases([x[2] for x in batch], where, on_result=got)
        except BaseException as e:      # re-raised below: a batch never fails silently
            errors.append(e)

    errors: list[BaseException] = []
    # The native batch and the test host's at once: one runs on this machine's KVM, the other
    # in its own QEMU, and neither waits for the other.
    threads = [threading.Thread(target=run_batch, args=(w, b)) for w, b in batches.items() if b]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    rows = [row(c, results, plans[c.name], chd is not None) for c in cases]
    doc = summary(rows, decision.line(), ch_line)
    out.mkdir(parents=True, exist_ok=True)
    (out / "compare.json").write_text(json.dumps(doc, indent=1))
    (out / "compare.html").write_text(render_html(doc))
    print(render_table(doc), flush=True)
    print(f"conformance compare: {out / 'compare.json'}, {out / 'compare.html'}", flush=True)
    return 1 if doc["unexplained"] else 0


def batch_of(cases: list[matrix.Case], testhost: bool, mvd: MemvisorDriver, qd: QemuDriver,
             chd: CloudHypervisorDriver | None,
             plans: dict[str, QemuCommand | NotApplicable]) -> list[tuple[str, matrix.Case, dict]]:
    """Each case under memvisor, under QEMU where it translates, and under cloud-hypervisor
    (probe cases) when one is given."""
    batch: list[tuple[str, matrix.Case, dict]] = []
    for c in cases:
        batch.append(("memvisor", c, run.inhost_case(c, mvd, testhost)))
        p = plans[c.name]
        if isinstance(p, QemuCommand):
            batch.append(("qemu", c, qemu.inhost_case(c, qd, p, testhost)))
        if chd and c.guest == "probe" and c.valid and not c.steps:
            batch.append(("cloud-hypervisor", c, {**run.inhost_case(c, chd),
                                                  "name": f"{c.name} (ch)",
                                                  "layout_argv": None}))
    return batch


def row(c: matrix.Case, results: dict, plan: QemuCommand | NotApplicable, ch: bool) -> dict:
    mv_r, q_r = results.get(("memvisor", c.name)), results.get(("qemu", c.name))
    if mv_r is None:
        mv, mv_f = "skipped", []
    else:
        mv_f = run.check(c, mv_r)
        mv = "skipped" if mv_r.get("skipped") else qemu.status(c, mv_r, mv_f)
        if c.guest == "faults" and mv == "refused" and mv_f:
            mv = "fail"     # refused, but not as faults.py asks (the reason, what is left)
    notes: list[str] = []
    if isinstance(plan, NotApplicable):
        q, q_f = "n/a", []
    elif q_r is None:
        q, q_f = "skipped", []
    else:
        q_f, notes = qemu.check(c, q_r, plan)
        q = qemu.status(c, q_r, q_f)
    r = build_row(c, mv, mv_f, q, q_f, notes, plan,
                  q_r.get("argv") if q_r else None, qemu_error(q_r),
                  ch_status(c, results.get(("cloud-hypervisor", c.name))) if ch else None)
    for vmm, res in (("memvisor", mv_r), ("qemu", q_r)):
        # Attempts run again (a hung boot, a run cut short in the test host) stay visible.
        earlier = [{"why": why, **a} for why in ("hung", "cut")
                   for a in (res or {}).get(f"{why}_attempts") or []]
        if earlier:
            r[f"{vmm}_earlier_attempts"] = earlier
    return r


def build_row(c: matrix.Case, mv: str, mv_f: list[str], q: str, q_f: list[str],
              notes: list[str], plan: QemuCommand | NotApplicable, argv: list[str] | None,
              q_error: str = "", ch: str | None = None) -> dict:
    explanation, unexplained = explain(c, mv, q, q_f, plan, q_error)
    r = {"name": c.name, "memvisor": mv, "qemu": q, "same": mv == q,
         "explanation": explanation, "unexplained": unexplained,
         "memvisor_failures": mv_f, "qemu_failures": q_f,
         "qemu_notes": [f"[{d.id}] {f}" for f in notes
                        if (d := matching("platform", f, c.config, c.expect))],  # type: ignore
         "qemu_command": argv, "qemu_error": q_error, "tags": list(c.tags)}
    if ch is not None:
        r["cloud-hypervisor"] = ch
    return r


def ch_status(c: matrix.Case, r: dict | None) -> str:
    if r is None:
        return "n/a"
    if qemu.refused(r):
        return "refused"
    # No exit port, no -v: the guest's report alone.
    bad = check_boot(c.expect, r, None, r.get("rc"), check_guest,  # type: ignore[arg-type]
                     lambda e, res: [])
    return "pass" if not bad else "fail"


def summary(rows: list[dict], venue_line: str, ch_line: str) -> dict:
    both = [r for r in rows if r["memvisor"] not in ("n/a", "skipped")
            and r["qemu"] not in ("n/a", "skipped")]
    return {"venue": venue_line, "cloud_hypervisor": ch_line, "cases": len(rows),
            "run_under_both": len(both), "same": sum(r["same"] for r in both),
            "explained_differences": sum(not r["same"] and not r["unexplained"] for r in both),
            "n/a": sum(r["qemu"] == "n/a" for r in rows),
            "unexplained": [r["name"] for r in rows if r["unexplained"]],
            "rows": rows}


def render_table(doc: dict) -> str:
    lines = [f"{'case':40} {'memvisor':9} {'qemu':9} same  explanation"]
    for r in doc["rows"]:
        why = r["explanation"] or ""
        if r["unexplained"]:
            why = "UNEXPLAINED: " + " | ".join(r["unexplained"])
        lines.append(f"{r['name']:40} {r['memvisor']:9} {r['qemu']:9} "
                     f"{'yes ' if r['same'] else 'no  '}  {why[:110]}")
    lines.append(f"{doc['cases']} cases: {doc['run_under_both']} run under both VMMs, "
                 f"{doc['same']} the same, {doc['explained_differences']} explained "
                 f"differences, {doc['n/a']} n/a under QEMU, {len(doc['unexplained'])} "
                 f"unexplained" + (f": {', '.join(doc['unexplained'])}"
                                   if doc["unexplained"] else ""))
    lines.append(doc["cloud_hypervisor"])
    return "\n".join(lines)


def render_html(doc: dict) -> str:
    vmms = ["memvisor", "qemu"] + (["cloud-hypervisor"] if any("cloud-hypervisor" in r
                                                              for r in doc["rows"]) else [])
    e = html.escape
    head = "".join(f"<th>{v}</th>" for v in vmms)
    body = []
    for r in doc["rows"]:
        cells = "".join(f'<td style="background:{COLOURS.get(r[v], "#fff")}">{e(r[v])}</td>'
                        for v in vmms)
        why = " | ".join(r["unexplained"]) if r["unexplained"] else r["explanation"]
        detail = "\n".join(r["qemu_failures"] + r["qemu_notes"] + r["memvisor_failures"])
        mark = "" if r["same"] else ("&#10007;" if r["unexplained"] else "&#8800;")
        body.append(f'<tr><td title="{e(" ".join(r["qemu_command"] or []))}">{e(r["name"])}'
                    f'</td>{cells}<td>{mark}</td><td title="{e(detail)}">{e(why)}</td></tr>')
    legend = " ".join(f'<span style="background:{c};padding:2px 6px">{e(s)}</span>'
                      for s, c in COLOURS.items())
    return ("<!doctype html><meta charset=utf-8><title>memvisor vs QEMU</title>"
            "<style>body{font:13px sans-serif}td,th{border:1px solid #ccc;padding:2px 6px}"
            "table{border-collapse:collapse}</style>"
            f"<h1>The conformance matrix under memvisor and QEMU</h1><p>{e(doc['venue'])}<br>"
            f"{doc['cases']} cases, {doc['run_under_both']} run under both, {doc['same']} the "
            f"same, {doc['explained_differences']} explained differences, {doc['n/a']} n/a, "
            f"{len(doc['unexplained'])} unexplained.<br>{e(doc['cloud_hypervisor'])}</p>"
            f"<p>{legend} &#8800; explained difference, &#10007; unexplained</p>"
            f"<table><tr><th>case</th>{head}<th></th><th>explanation</th></tr>"
            + "\n".join(body) + "</table>")
