"""bench-check: a run's ratios against bench/baseline.json, with a stated tolerance.

Only ratios are compared (two figures of the same run), never absolute times: the machines are
shared and their speed varies from run to run, a ratio much less. A ratio regresses when it moved
in its worse direction by more than the tolerance (relative to the baseline's value):
    better=higher: current < baseline * (1 - tolerance)
    better=lower:  current > baseline * (1 + tolerance)
A baseline ratio the run lacks fails unless the run says why it was skipped. Native ratios
(`native.*`, guests on this machine's own /dev/kvm) are compared only when the baseline's native
KVM was of the same kind (PVM and hardware KVM differ by orders of magnitude).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from . import TOP

BASELINE = TOP / "bench" / "baseline.json"
BASELINE_SCHEMA = "memvisor-bench-baseline/1"
DEFAULT_TOLERANCE = 0.30


@dataclass(frozen=True)
class Verdict:
    name: str
    status: str        # ok, improved, regression, missing, skipped
    baseline: float
    current: float | None
    tolerance: float
    detail: str = ""

    @property
    def failed(self) -> bool:
        return self.status in ("regression", "missing")

    def line(self) -> str:
        cur = "-" if self.current is None else f"{self.current:.4g}"
        change = "" if self.current is None else f" ({self.current / self.baseline - 1:+.0%})"
        return (f"{self.status.upper():10} {self.name}: {cur} vs baseline {self.baseline:.4g}"
                f"{change}, tolerance {self.tolerance:.0%}{'; ' + self.detail if self.detail else ''}")


def _skip_reason(name: str, skipped: dict[str, str]) -> str | None:
    """The reason given for `name` or for any prefix of it (host.hugetlb_1g covers its ratios)."""
    parts = name.split(".")
    for i in range(len(parts), 0, -1):
        reason = skipped.get(".".join(parts[:i]))
        if reason:
            return reason
    return None


def _skip_for_ratio(name: str, ratio: dict[str, Any], skipped: dict[str, str]) -> str | None:
    for n in (name, ratio.get("num", ""), ratio.get("den", "")):
        reason = _skip_reason(n, skipped)
        if reason:
            return reason
    return None


def compare(results: dict[str, Any], baseline: dict[str, Any],
            tolerance: float | None = None) -> list[Verdict]:
    default = tolerance if tolerance is not None else baseline.get("tolerance", DEFAULT_TOLERANCE)
    overrides = {} if tolerance is not None else baseline.get("tolerances", {})
    out: list[Verdict] = []
    for name, base in sorted(baseline["ratios"].items()):
        tol = overrides.get(name, default)
        b = float(base["value"])
        cur = results["ratios"].get(name)
        here = results.get("venues", {}).get("native")
        if name.startswith("native.") and cur is not None and here != baseline.get("native_kind"):
            # Native figures of PVM and of hardware KVM are different things: like with like.
            out.append(Verdict(name, "skipped", b, float(cur["value"]), tol,
                               f"native KVM here is {here}, the baseline's was "
                               f"{baseline.get('native_kind')}: not comparable"))
            continue
        if cur is None:
            reason = _skip_for_ratio(name, base, results.get("skipped", {}))
            out.append(Verdict(name, "skipped" if reason else "missing", b, None, tol,
                               reason or "not in this run and no reason given"))
            continue
        v = float(cur["value"])
        if base["better"] == "higher":
            status = "regression" if v < b * (1 - tol) else "improved" if v > b * (1 + tol) else "ok"
        else:
            status = "regression" if v > b * (1 + tol) else "improved" if v < b * (1 - tol) else "ok"
        out.append(Verdict(name, status, b, v, tol, f"{base['better']} is better"))
    return out


def unbaselined(results: dict[str, Any], baseline: dict[str, Any]) -> list[str]:
    """Ratios of the run the baseline does not have (figures added since it was recorded, such
    as part 5's): never compared, never failed, only named, until a baseline is recorded."""
    return sorted(n for n in results.get("ratios", {})
                  if n not in baseline["ratios"] and not n.startswith(UNCHECKED))


def load(path: Path) -> dict[str, Any]:
    data = json.loads(path.read_text())
    if data.get("schema") != BASELINE_SCHEMA:
        raise ValueError(f"{path}: schema {data.get('schema')!r}, expected {BASELINE_SCHEMA!r}")
    return data


MAX_TOLERANCE = 0.75
# Properties of the machine, not of memvisor (the kernel's zeroing against memset): reported,
# never checked.
UNCHECKED = ("host.limit.",)


def noise_tolerance(results: dict[str, Any], name: str, tolerance: float) -> float:
    """The tolerance for one ratio: the default, widened to the relative interquartile ranges
    of its two figures in the baseline run when they add up to more (capped at 75%)."""
    r = results["ratios"][name]
    figs = results.get("figures", {})
    iqr = sum((f["q3"] - f["q1"]) / f["median"] for f in (figs.get(r.get("num")), figs.get(r.get("den")))
              if f and f.get("median"))
    return round(min(MAX_TOLERANCE, max(tolerance, iqr)), 2)


def make_baseline(results: dict[str, Any], tolerance: float = DEFAULT_TOLERANCE,
                  tolerances: dict[str, float] | None = None, note: str = "") -> dict[str, Any]:
    """A baseline from one run: its ratios, its parameters (a fresh check repeats them), and
    per-ratio tolerances where that run was noisier than the default allows."""
    ratios = {n: r for n, r in results["ratios"].items() if not n.startswith(UNCHECKED)}
    widened = {n: t for n in ratios
               if (t := noise_tolerance(results, n, tolerance)) > tolerance}
    widened.update(tolerances or {})
    tolerances = widened
    return {
        "schema": BASELINE_SCHEMA,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "from_run": results["created"],
        "machine": results["machine"],
        "params": results["params"],
        "note": note,
        "tolerance": tolerance,
        "native_kind": results.get("venues", {}).get("native"),
        "tolerances": dict(sorted((tolerances or {}).items())),
        "ratios": {n: {"value": r["value"], "better": r["better"]}
                   for n, r in sorted(ratios.items())},
    }


def report(verdicts: list[Verdict]) -> tuple[str, bool]:
    """Text for the terminal, and whether the check passed."""
    failed = [v for v in verdicts if v.failed]
    lines = [v.line() for v in verdicts if v.status != "ok"]
    ok = sum(v.status == "ok" for v in verdicts)
    lines.append(f"bench-check: {len(verdicts)} ratios, {ok} within tolerance, "
                 f"{sum(v.status == 'improved' for v in verdicts)} improved, "
                 f"{sum(v.status == 'skipped' for v in verdicts)} skipped, {len(failed)} failed")
    if failed:
        lines.append("bench-check: FAILED: " + ", ".join(v.name for v in failed))
    return "\n".join(lines), not failed
