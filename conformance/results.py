"""What a conformance run leaves behind, and the merge of sharded runs.

A run directory (build/conformance/<mode>/ by default) holds:
  results.jsonl   one line per case as soon as it is checked (survives a run that is killed)
  results.json    the whole run: venue decision, shard, coverage, per case status and failures
  raw.json        everything the checks read, per case
  junit.xml       one testcase per case: failure, or skipped with the reason
`python3 -m conformance merge --out DIR SHARD_DIR...` joins the shards of one matrix.
"""
from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from dataclasses import asdict, dataclass, field, is_dataclass
from pathlib import Path
from typing import Any

from . import cases as matrix

PARTS = ("value", "pairwise", "pairwise-forbidden", "scenario", "rule", "linux")


@dataclass
class Outcome:
    case: matrix.Case
    failures: list[str]
    seconds: float
    result: dict = field(default_factory=dict)

    @property
    def status(self) -> str:
        if self.result.get("skipped"):
            return "skipped"
        return "failed" if self.failures else "passed"

    @property
    def passed(self) -> bool:
        return self.status == "passed"


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


def case_record(o: Outcome) -> dict[str, Any]:
    r = o.result
    return {"name": o.case.name, "tags": list(o.case.tags), "status": o.status,
            "passed": o.passed, "failures": o.failures, "seconds": o.seconds,
            "venue": r.get("venue"), "skip_reason": r.get("skipped"),
            "command": r.get("argv"), "exit_status": r.get("rc"),
            "hung_attempts": r.get("hung_attempts") or [],
            "lost_testhosts": r.get("lost_testhosts") or [],
            "expect": _jsonable(o.case.expect)}


def counts(records: list[dict[str, Any]]) -> dict[str, int]:
    return {s: sum(c["status"] == s for c in records) for s in ("passed", "failed", "skipped")}


def write(records: list[dict[str, Any]], raw: dict[str, Any], head: dict[str, Any],
          out: Path) -> dict[str, Any]:
    out.mkdir(parents=True, exist_ok=True)
    doc = {**head, **counts(records), "cases": records}
    (out / "results.json").write_text(json.dumps(doc, indent=1))
    # Everything the checks read, so that a failure can be re-examined without a new boot.
    (out / "raw.json").write_text(json.dumps(raw))
    write_junit(records, raw, out / "junit.xml")
    return doc


def write_junit(records: list[dict[str, Any]], raw: dict[str, Any], path: Path) -> None:
    c = counts(records)
    suite = ET.Element("testsuite", name="conformance", tests=str(len(records)),
                       failures=str(c["failed"]), skipped=str(c["skipped"]),
                       time=str(round(sum(r["seconds"] for r in records), 2)))
    for r in records:
        tc = ET.SubElement(suite, "testcase", classname=f"conformance.{r.get('venue')}",
                           name=r["name"], time=str(r["seconds"]))
        if r["status"] == "skipped":
            ET.SubElement(tc, "skipped", message=r["skip_reason"] or "")
        elif r["failures"]:
            f = ET.SubElement(tc, "failure", message=r["failures"][0][:500])
            f.text = "\n".join(r["failures"])
            res = raw.get(r["name"], {})
            ET.SubElement(tc, "system-out").text = res.get("stdout", "")
            ET.SubElement(tc, "system-err").text = res.get("stderr", "")
    ET.ElementTree(suite).write(path, encoding="unicode", xml_declaration=True)


def explain(o: Outcome) -> str:
    """A failure with everything needed to read it: what failed, guest, VMM, expectation."""
    r = o.result
    parts = [f"=== FAIL {o.case.name} ({r.get('venue')})",
             "command: " + " ".join(r.get("argv") or []),
             *[f"  - {f}" for f in o.failures],
             "--- guest console (last 30 lines)", *r.get("stdout", "").splitlines()[-30:],
             "--- memvisor stderr (last 15 lines)", *r.get("stderr", "").splitlines()[-15:],
             "--- oracle's expectation", json.dumps(_jsonable(o.case.expect), indent=1)[:3000]]
    return "\n".join(parts)


def summary(records: list[dict[str, Any]], cov: dict, out: Path, head: dict[str, Any]) -> str:
    by_part: dict[str, list[dict[str, Any]]] = {}
    for r in records:
        part = next((t for t in r["tags"] if t in PARTS), "other")
        by_part.setdefault(part, []).append(r)
    lines = ["", "part                 cases  passed  failed  skipped  seconds"]
    for part, rs in sorted(by_part.items()):
        c = counts(rs)
        lines.append(f"{part:20} {len(rs):5}  {c['passed']:6}  {c['failed']:6}  {c['skipped']:7}"
                     f"  {sum(r['seconds'] for r in rs):7.1f}")
    venues: dict[str, int] = {}
    for r in records:
        venues[str(r.get("venue"))] = venues.get(str(r.get("venue")), 0) + 1
    lines.append("ran: " + ", ".join(f"{n} {v}" for v, n in sorted(venues.items()))
                 + (f"  ({head['venue']['reason']})" if head.get("venue") else ""))
    lost = [r["name"] for r in records if any(f.startswith("lost:") for f in r["failures"])]
    if lost:
        lines.append(f"lost to a stalled or failed test host: {len(lost)}: {', '.join(lost)}")
    again = [r["name"] for r in records if r.get("lost_testhosts")]
    if again:
        lines.append(f"run again in a fresh test host after theirs froze or stalled (results.json "
                     f"has why): {', '.join(again)}")
    retried = [f"{r['name']} ({len(r['hung_attempts'])})" for r in records if r.get("hung_attempts")]
    if retried:
        lines.append(f"booted again after a hung boot (the test host's nested KVM; results.json "
                     f"has each hang): {', '.join(retried)}")
    skipped = [r for r in records if r["status"] == "skipped"]
    for r in skipped[:10]:
        lines.append(f"skipped {r['name']}: {r['skip_reason']}")
    if len(skipped) > 10:
        lines.append(f"skipped: {len(skipped) - 10} more (results.json has every reason)")
    lines += [
        f"cases: {cov['cases']} ({cov['valid']} boots, {cov['rejections']} rejections, "
        f"{cov['assumption_cases']} resting on assumptions where the spec is silent)",
        f"coverage: option values {cov['values']['covered']}/{cov['values']['total']}, "
        f"backings {cov['backings']['covered']}/{cov['backings']['total']}, "
        f"rejection rules {cov['rules']['covered']}/{cov['rules']['total']}"]
    for group, pw in cov["pairwise"].items():
        lines.append(f"coverage: {group} option pairs {pw['pairs_covered']}/{pw['pairs_valid']} "
                     f"valid ({pw['pairs_total']} in all, {pw['pairs_forbidden']} forbidden by "
                     f"the spec and tested as rejections)")
    c = counts(records)
    lines.append(f"results: {out / 'results.json'}, {out / 'junit.xml'}")
    lines.append(f"{c['passed']} passed, {c['failed']} failed"
                 + (f", {c['skipped']} skipped" if c["skipped"] else ""))
    return "\n".join(lines)


def merge(shards: list[Path], out: Path) -> tuple[dict[str, Any], list[str]]:
    """One report from the shards of one matrix; problems: overlaps, gaps, mixed matrices."""
    problems: list[str] = []
    records: list[dict[str, Any]] = []
    raw: dict[str, Any] = {}
    heads = []
    for d in shards:
        try:
            doc = json.loads((d / "results.json").read_text())
        except (OSError, ValueError) as e:
            problems.append(f"{d}: no readable results.json ({e})")
            continue
        heads.append(doc)
        try:
            raw.update(json.loads((d / "raw.json").read_text()))
        except (OSError, ValueError):
            problems.append(f"{d}: no readable raw.json (failures will lack consoles)")
        records += doc["cases"]
    modes = {h.get("mode") for h in heads}
    if len(modes) > 1:
        problems.append(f"shards of different matrices: {sorted(map(str, modes))}")
    mode = next(iter(modes)) if len(modes) == 1 else "full"
    seen: dict[str, int] = {}
    for r in records:
        seen[r["name"]] = seen.get(r["name"], 0) + 1
    problems += [f"case {n} is in {k} shards" for n, k in seen.items() if k > 1]
    wanted = {c.name: c for c in matrix.generate(mode or "full")}
    if not any(h.get("pattern") for h in heads):
        missing = sorted(set(wanted) - set(seen))
        if missing:
            problems.append(f"{len(missing)} cases of the matrix are in no shard: "
                            + ", ".join(missing[:20]))
    cov = matrix.coverage([wanted[n] for n in seen if n in wanted])
    head = {"mode": mode, "merged_from": [str(d) for d in shards],
            "shards": [h.get("shard") for h in heads], "coverage": cov,
            "venues": [h.get("venue") for h in heads], "problems": problems}
    order = {n: i for i, n in enumerate(wanted)}
    records.sort(key=lambda r: order.get(r["name"], len(order)))
    return write(records, raw, head, out), problems
